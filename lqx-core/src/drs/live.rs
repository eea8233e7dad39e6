//! DRS moves running VMs live only: before planning, the snapshot is narrowed so the planner
//! never proposes a move that would have to stop a guest.
//!
//! - A running VM on a host that cannot live-migrate (its hypervisor has no live migration,
//!   its agent reports no migration URI, or it is not connected) is pinned where it is, and
//!   reported: `lqx drs status` lists it and the alert `drs.vm_not_live_movable` stays open
//!   while it holds.
//! - Hosts that cannot receive a live migration are no target for running VMs; with
//!   host-model guests, neither are hosts of another CPU model.
//!
//! Stopped VMs are unaffected (moving them cold stops nothing).

use std::collections::{BTreeSet, HashMap};

use crate::alert::{conditions, vm_alert, vm_key};
use crate::compute::Compute;
use crate::driver::GuestCpu;
use crate::model::{AlertDraft, AlertKey, AlertSeverity, NodeId, VmId};
use crate::placement::ClusterSnapshot;

/// A running VM DRS leaves where it is because it cannot move live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBlocked {
    pub vm: VmId,
    pub vm_name: String,
    pub node_name: String,
    pub reason: String,
}

impl LiveBlocked {
    pub fn describe(&self) -> String {
        format!("{} on {}: {}", self.vm_name, self.node_name, self.reason)
    }
}

/// What each host allows: why it cannot live-migrate (None: it can) and its CPU model.
pub async fn host_facts(compute: &Compute, snap: &ClusterSnapshot) -> HashMap<NodeId, (Option<String>, String)> {
    let mut out = HashMap::new();
    for n in &snap.nodes {
        let facts = match compute.hosts.get(n.id) {
            Ok(hv) => {
                let cpu = hv.node_info().await.map(|i| i.cpu_model).unwrap_or_default();
                (hv.live_migration_blocker(), cpu)
            }
            Err(_) => (Some(format!("{} is not connected", n.name)), String::new()),
        };
        out.insert(n.id, facts);
    }
    out
}

/// Narrows `snap` to live moves (see the module doc); returns the pinned running VMs.
pub fn restrict(
    snap: &mut ClusterSnapshot,
    facts: &HashMap<NodeId, (Option<String>, String)>,
    cpu: &GuestCpu,
) -> Vec<LiveBlocked> {
    let name_of: HashMap<NodeId, String> = snap.nodes.iter().map(|n| (n.id, n.name.clone())).collect();
    let no_target: Vec<NodeId> = facts
        .iter()
        .filter(|(_, (b, _))| b.is_some())
        .map(|(id, _)| *id)
        .collect();
    let mut blocked = Vec::new();
    for v in snap.vms.iter_mut().filter(|v| v.running) {
        let Some(node) = v.node else { continue };
        let (why, model) = facts.get(&node).cloned().unwrap_or((None, String::new()));
        if let Some(reason) = why {
            v.placement.required_nodes = vec![node];
            blocked.push(LiveBlocked {
                vm: v.id,
                vm_name: v.name.clone(),
                node_name: name_of.get(&node).cloned().unwrap_or_default(),
                reason,
            });
            continue;
        }
        let mut excluded: BTreeSet<NodeId> = no_target.iter().copied().collect();
        if *cpu == GuestCpu::HostModel && !model.is_empty() {
            excluded.extend(
                facts
                    .iter()
                    .filter(|(_, (_, m))| !m.is_empty() && *m != model)
                    .map(|(id, _)| *id),
            );
        }
        excluded.remove(&node);
        for n in excluded {
            if !v.placement.excluded_nodes.contains(&n) {
                v.placement.excluded_nodes.push(n);
            }
        }
    }
    blocked
}

/// The `drs.vm_not_live_movable` alerts: raised for `blocked`, resolved for those of
/// `before` no longer blocked. Returns (raise, resolve, open).
pub fn alerts(blocked: &[LiveBlocked], before: &BTreeSet<VmId>) -> (Vec<AlertDraft>, Vec<AlertKey>, BTreeSet<VmId>) {
    let open: BTreeSet<VmId> = blocked.iter().map(|b| b.vm).collect();
    let raise = blocked
        .iter()
        .map(|b| {
            vm_alert(
                b.vm,
                &b.vm_name,
                AlertSeverity::Warning,
                conditions::DRS_VM_NOT_LIVE_MOVABLE,
                format!("DRS cannot move {} live", b.vm_name),
                format!(
                    "{}; DRS leaves it on {} rather than stopping it. Fix the host's live migration, \
                     or move it by hand with lqx vm migrate --cold if the downtime is acceptable.",
                    b.describe(),
                    b.node_name
                ),
            )
        })
        .collect();
    let resolve = before
        .difference(&open)
        .map(|&v| vm_key(v, conditions::DRS_VM_NOT_LIVE_MOVABLE))
        .collect();
    (raise, resolve, open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{NodeSnapshot, VmSnapshot};

    fn node(name: &str) -> NodeSnapshot {
        NodeSnapshot {
            id: NodeId::new(),
            name: name.into(),
            cpu_cores: 16,
            memory_mib: 65536,
            cpu_overcommit: 1.0,
            memory_overcommit: 1.0,
            labels: Default::default(),
            schedulable: true,
            phase: crate::model::NodePhase::Ready,
            usage: None,
        }
    }

    fn vm(name: &str, node: NodeId, running: bool) -> VmSnapshot {
        VmSnapshot {
            id: VmId::new(),
            name: name.into(),
            node: Some(node),
            cpu_cores: 1,
            memory_mib: 1024,
            running,
            usage: None,
            ha: Default::default(),
            placement: Default::default(),
        }
    }

    #[test]
    fn running_vms_move_live_only_and_the_stuck_ones_are_reported() {
        let (a, b, c, d) = (node("a"), node("b"), node("c"), node("d"));
        let mut snap = ClusterSnapshot {
            vms: vec![vm("on-a", a.id, true), vm("off-a", a.id, false), vm("on-b", b.id, true)],
            nodes: vec![a.clone(), b.clone(), c.clone(), d.clone()],
        };
        let facts: HashMap<NodeId, (Option<String>, String)> = [
            (a.id, (Some("no migration URI".to_string()), "X".to_string())),
            (b.id, (None, "X".to_string())),
            (c.id, (None, "X".to_string())),
            (d.id, (None, "Y".to_string())),
        ]
        .into();
        let blocked = restrict(&mut snap, &facts, &GuestCpu::HostModel);
        assert_eq!(blocked.len(), 1);
        assert_eq!(blocked[0].describe(), "on-a on a: no migration URI");
        assert_eq!(snap.vms[0].placement.required_nodes, vec![a.id], "pinned");
        assert!(
            snap.vms[1].placement.required_nodes.is_empty(),
            "a stopped VM may move cold"
        );
        let mut ex = snap.vms[2].placement.excluded_nodes.clone();
        ex.sort();
        let mut want = vec![a.id, d.id];
        want.sort();
        assert_eq!(ex, want, "no live target, and another CPU model");
        // A named cluster CPU model lifts the CPU rule.
        let mut snap2 = ClusterSnapshot {
            vms: vec![vm("on-b", b.id, true)],
            nodes: vec![a.clone(), b.clone(), c, d],
        };
        restrict(&mut snap2, &facts, &GuestCpu::Model("qemu64".into()));
        assert_eq!(snap2.vms[0].placement.excluded_nodes, vec![a.id]);

        let (raise, resolve, open) = alerts(&blocked, &[VmId::new()].into());
        assert_eq!(raise.len(), 1);
        assert_eq!(raise[0].condition, conditions::DRS_VM_NOT_LIVE_MOVABLE);
        assert_eq!(resolve.len(), 1);
        assert_eq!(open, [snap.vms[0].id].into());
    }
}

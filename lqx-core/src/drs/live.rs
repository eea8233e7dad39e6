//! DRS moves running VMs live only: before planning, the snapshot is narrowed so the planner
//! never proposes a move that would have to stop a guest.
//!
//! - A running VM on a host that cannot live-migrate (its hypervisor has no live migration,
//!   its agent reports no migration URI, or it is not connected) is pinned where it is, and
//!   reported: `lqx drs status` lists it and the alert `drs.vm_not_live_movable` stays open
//!   while it holds.
//! - Hosts that cannot receive a live migration are no target for running VMs; nor are hosts
//!   of the other kind (agent hosts migrate peer to peer among themselves, in-process hosts
//!   through the control plane's own connections: neither can reach the other); with
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

/// What a host allows for live migration.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// Why it cannot live-migrate (None: it can).
    pub blocker: Option<String>,
    /// Its CPU model (empty: unknown).
    pub cpu_model: String,
    /// An agent host (`agent://`): live migrations reach only other agent hosts.
    pub agent: bool,
}

/// What each host allows.
pub async fn host_facts(compute: &Compute, snap: &ClusterSnapshot) -> HashMap<NodeId, HostFacts> {
    let mut out = HashMap::new();
    for n in &snap.nodes {
        let facts = match compute.hosts.get(n.id) {
            Ok(hv) => HostFacts {
                blocker: hv.live_migration_blocker(),
                cpu_model: hv.node_info().await.map(|i| i.cpu_model).unwrap_or_default(),
                agent: hv.uri().starts_with("agent://"),
            },
            Err(_) => HostFacts {
                blocker: Some(format!("{} is not connected", n.name)),
                ..Default::default()
            },
        };
        out.insert(n.id, facts);
    }
    out
}

/// Narrows `snap` to live moves (see the module doc); returns the pinned running VMs.
pub fn restrict(snap: &mut ClusterSnapshot, facts: &HashMap<NodeId, HostFacts>, cpu: &GuestCpu) -> Vec<LiveBlocked> {
    let name_of: HashMap<NodeId, String> = snap.nodes.iter().map(|n| (n.id, n.name.clone())).collect();
    let no_target: Vec<NodeId> = facts
        .iter()
        .filter(|(_, f)| f.blocker.is_some())
        .map(|(id, _)| *id)
        .collect();
    let mut blocked = Vec::new();
    for v in snap.vms.iter_mut().filter(|v| v.running) {
        let Some(node) = v.node else { continue };
        let here = facts.get(&node).cloned().unwrap_or_default();
        if let Some(reason) = here.blocker {
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
        excluded.extend(facts.iter().filter(|(_, f)| f.agent != here.agent).map(|(id, _)| *id));
        if *cpu == GuestCpu::HostModel && !here.cpu_model.is_empty() {
            excluded.extend(
                facts
                    .iter()
                    .filter(|(_, f)| !f.cpu_model.is_empty() && f.cpu_model != here.cpu_model)
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
        let (a, b, c, d, e) = (node("a"), node("b"), node("c"), node("d"), node("e"));
        let mut snap = ClusterSnapshot {
            vms: vec![vm("on-a", a.id, true), vm("off-a", a.id, false), vm("on-b", b.id, true)],
            nodes: vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()],
        };
        let agent = |blocker: Option<&str>, cpu: &str| HostFacts {
            blocker: blocker.map(str::to_string),
            cpu_model: cpu.to_string(),
            agent: true,
        };
        let facts: HashMap<NodeId, HostFacts> = [
            (a.id, agent(Some("no migration URI"), "X")),
            (b.id, agent(None, "X")),
            (c.id, agent(None, "X")),
            (d.id, agent(None, "Y")),
            // An in-process host: live-capable, same CPU, but out of an agent's reach.
            (
                e.id,
                HostFacts {
                    agent: false,
                    ..agent(None, "X")
                },
            ),
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
        let mut want = vec![a.id, d.id, e.id];
        want.sort();
        assert_eq!(ex, want, "no live target, another kind of host, and another CPU model");
        // A named cluster CPU model lifts the CPU rule, not the others.
        let mut snap2 = ClusterSnapshot {
            vms: vec![vm("on-b", b.id, true)],
            nodes: vec![a.clone(), b.clone(), c, d, e.clone()],
        };
        restrict(&mut snap2, &facts, &GuestCpu::Model("qemu64".into()));
        let mut ex2 = snap2.vms[0].placement.excluded_nodes.clone();
        ex2.sort();
        let mut want2 = vec![a.id, e.id];
        want2.sort();
        assert_eq!(ex2, want2);

        let (raise, resolve, open) = alerts(&blocked, &[VmId::new()].into());
        assert_eq!(raise.len(), 1);
        assert_eq!(raise[0].condition, conditions::DRS_VM_NOT_LIVE_MOVABLE);
        assert_eq!(resolve.len(), 1);
        assert_eq!(open, [snap.vms[0].id].into());
    }
}

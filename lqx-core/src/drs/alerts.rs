//! The alerts of the DRS engine, for what an operator must act on because DRS cannot:
//! - `drs.node_unrelieved` (host): a hot node the plan leaves above its threshold with no
//!   move off it and no relief carried to later rounds (every move would make another node
//!   hot or break allocation or placement rules);
//! - `drs.vm_unmovable` (VM): a VM that must move (maintenance, broken placement rules) but
//!   fits on no node, so the evacuation cannot finish;
//! - `drs.apply_failed` (VM): a DRS migration that failed (automatic or not).
//!
//! The first two are raised on every run while they hold (the alert service dedupes them
//! into one open alert with a count) and resolved on the first run where they no longer
//! do; which ones are open is kept with the engine's stored state, so a restart or another
//! replica taking over resolves them too. `drs.apply_failed` is resolved when a later DRS
//! migration of the VM succeeds.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::DrsPlan;
use crate::alert::{conditions, node_alert, node_key, vm_alert, vm_key};
use crate::model::{AlertDraft, AlertKey, AlertSeverity, DrsConfig, DrsRecommendation, NodeId, VmId};

/// The plan conditions alerted on and not resolved yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alerted {
    pub unrelieved: BTreeSet<NodeId>,
    pub unmovable: BTreeSet<VmId>,
    /// Running VMs DRS leaves where they are because they cannot move live.
    #[serde(default)]
    pub not_live: BTreeSet<VmId>,
}

/// What a plan's alerts change: drafts to raise, keys to resolve, and what is open after.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChanges {
    pub raise: Vec<AlertDraft>,
    pub resolve: Vec<AlertKey>,
    pub open: Alerted,
}

/// The alerts `plan` calls for, given those `before` left open.
pub fn plan_alerts(plan: &DrsPlan, config: &DrsConfig, before: &Alerted) -> AlertChanges {
    let mut raise = Vec::new();
    let mut open = Alerted::default();
    for n in &plan.unrelieved {
        let mut over = Vec::new();
        if n.cpu_percent > config.threshold_cpu {
            over.push(format!("CPU {:.1}% > {:.0}%", n.cpu_percent, config.threshold_cpu));
        }
        if n.memory_percent > config.threshold_memory {
            over.push(format!(
                "memory {:.1}% > {:.0}%",
                n.memory_percent, config.threshold_memory
            ));
        }
        raise.push(node_alert(
            n.id,
            &n.name,
            AlertSeverity::Warning,
            conditions::DRS_NODE_UNRELIEVED,
            format!("DRS cannot relieve {}", n.name),
            format!(
                "{} stays hot ({}): DRS found no migration that relieves it without making another \
                 node hot or breaking allocation limits or placement rules. Add capacity, or stop, \
                 resize or move VMs by hand.",
                n.name,
                over.join(", ")
            ),
        ));
        open.unrelieved.insert(n.id);
    }
    for u in &plan.unmovable {
        raise.push(vm_alert(
            u.vm,
            &u.vm_name,
            AlertSeverity::Warning,
            conditions::DRS_VM_UNMOVABLE,
            format!("{} cannot leave {}", u.vm_name, u.node_name),
            // The reason says why it must move and why it cannot.
            format!("{} on {}: {}", u.vm_name, u.node_name, u.reason),
        ));
        open.unmovable.insert(u.vm);
    }
    let mut resolve: Vec<AlertKey> = before
        .unrelieved
        .difference(&open.unrelieved)
        .map(|&n| node_key(n, conditions::DRS_NODE_UNRELIEVED))
        .collect();
    resolve.extend(
        before
            .unmovable
            .difference(&open.unmovable)
            .map(|&v| vm_key(v, conditions::DRS_VM_UNMOVABLE)),
    );
    AlertChanges { raise, resolve, open }
}

/// The alert of a failed DRS migration (`r` as recorded FAILED).
pub fn apply_failed(r: &DrsRecommendation) -> AlertDraft {
    vm_alert(
        r.vm_id,
        &r.vm_name,
        AlertSeverity::Warning,
        conditions::DRS_APPLY_FAILED,
        format!("DRS could not migrate {}", r.vm_name),
        format!(
            "recommendation {}: moving {} from {} to {} failed: {}",
            r.id,
            r.vm_name,
            r.source_node_name,
            r.target_node_name,
            r.failure_reason.as_deref().unwrap_or("unknown error")
        ),
    )
}

/// The key of VM `vm`'s `drs.apply_failed` alert.
pub fn apply_failed_key(vm: VmId) -> AlertKey {
    vm_key(vm, conditions::DRS_APPLY_FAILED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::{ClusterMetrics, NodeMetrics, UnmovableVm};

    fn metrics() -> ClusterMetrics {
        ClusterMetrics {
            nodes: Vec::new(),
            imbalance: 0.0,
            max_cpu_percent: 0.0,
            max_memory_percent: 0.0,
        }
    }

    #[test]
    fn raises_what_holds_and_resolves_what_no_longer_does() {
        let (hot, cooled, node) = (NodeId::new(), NodeId::new(), NodeId::new());
        let (stuck, freed) = (VmId::new(), VmId::new());
        let plan = DrsPlan {
            moves: Vec::new(),
            unmovable: vec![UnmovableVm {
                vm: stuck,
                vm_name: "db-1".into(),
                node,
                node_name: "node-9".into(),
                reason: "node-9 is in maintenance".into(),
            }],
            unrelieved: vec![NodeMetrics {
                id: hot,
                name: "node-1".into(),
                cpu_percent: 91.25,
                memory_percent: 60.0,
            }],
            before: metrics(),
            after: metrics(),
            state: Default::default(),
        };
        let before = Alerted {
            unrelieved: [hot, cooled].into(),
            unmovable: [freed].into(),
            ..Default::default()
        };
        let c = plan_alerts(&plan, &DrsConfig::default(), &before);
        let raised: Vec<(&str, &str)> = c
            .raise
            .iter()
            .map(|d| (d.condition.as_str(), d.source_name.as_str()))
            .collect();
        assert_eq!(
            raised,
            [
                (conditions::DRS_NODE_UNRELIEVED, "node-1"),
                (conditions::DRS_VM_UNMOVABLE, "db-1")
            ]
        );
        assert!(c.raise[0].message.contains("CPU 91.2% > 80%"), "{}", c.raise[0].message);
        assert!(!c.raise[0].message.contains("memory"), "{}", c.raise[0].message);
        assert!(
            c.raise[1].message.contains("node-9 is in maintenance"),
            "{}",
            c.raise[1].message
        );
        let resolved: Vec<(&str, String)> = c
            .resolve
            .iter()
            .map(|k| (k.condition.as_str(), k.source_id.clone()))
            .collect();
        assert_eq!(
            resolved,
            [
                (conditions::DRS_NODE_UNRELIEVED, cooled.to_string()),
                (conditions::DRS_VM_UNMOVABLE, freed.to_string())
            ]
        );
        assert_eq!(
            c.open,
            Alerted {
                unrelieved: [hot].into(),
                unmovable: [stuck].into(),
                ..Default::default()
            }
        );
    }
}

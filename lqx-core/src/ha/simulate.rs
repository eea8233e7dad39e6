//! `lqx ha simulate --cluster FILE --fail NODE`: the failover the leader would plan if a node
//! of a cluster file died, offline, with the same planner (`failover::plan`).
//!
//! The named node is taken as FAILED and fenced, every other node as HEALTHY, and every
//! restart delay as passed; the report lists where each HA VM of the node would restart, the
//! ones that fit nowhere, and the cluster's load after the restarts (the failed node and the
//! VMs left on it are gone), measured like `lqx drs simulate` does.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    HaConfig,
    failover::{self, FailedNode, FailoverInput, RestartBook},
    time::MonoInstant,
};
use crate::{
    cluster_file::{self, ReportMetrics},
    drs::{DrsState, MigrationHistory},
    model::{DrsConfig, NodeId, RestartPriority},
    placement::{ClusterSnapshot, NodeUsageSample},
};

/// One restart in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedPlacement {
    pub vm: String,
    pub from: String,
    pub to: String,
    pub priority: RestartPriority,
    /// The VM's restart delay (it starts this long after the node is declared failed).
    #[serde(rename = "restart_delay_seconds", alias = "restart_delay_secs")]
    pub restart_delay_secs: u32,
}

/// An HA VM that fits nowhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedUnplaced {
    pub vm: String,
    pub reason: String,
}

/// What `lqx ha simulate -o json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaSimulationReport {
    pub failed_node: String,
    pub placements: Vec<SimulatedPlacement>,
    pub unplaced: Vec<SimulatedUnplaced>,
    /// VMs of the failed node that are not HA-protected (they stay down).
    pub not_protected: Vec<String>,
    pub before: ReportMetrics,
    pub after: ReportMetrics,
    /// N+1 before the failure: any single node's loss could be absorbed.
    pub cluster_protected: bool,
    /// Documented bound from host death to its HA VMs running elsewhere with this config
    /// (plus each VM's restart delay).
    #[serde(rename = "failover_bound_seconds", alias = "failover_bound_secs")]
    pub failover_bound_secs: f64,
    /// Time spent planning (not parsing), milliseconds.
    pub elapsed_ms: f64,
}

fn metrics(snap: &ClusterSnapshot) -> ReportMetrics {
    let cfg = DrsConfig::default();
    let plan = crate::drs::plan(
        snap,
        &cfg,
        &DrsState::default(),
        &MigrationHistory::default(),
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    );
    (&plan.before).into()
}

/// Simulates the failure of `node` (its name) in the cluster file `text`.
pub fn simulate_failover(text: &str, node: &str, config: &HaConfig) -> crate::Result<HaSimulationReport> {
    config.validate()?;
    let snap = cluster_file::parse(text)?;
    let failed: NodeId = snap
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.id)
        .ok_or_else(|| crate::Error::invalid("fail", format!("the cluster file has no node named {node}")))?;
    // Wall-clock time only feeds the report's elapsed_ms, never a decision.
    let started = std::time::Instant::now();
    let config = HaConfig {
        enabled: true,
        ..config.clone()
    };
    let max_delay = snap
        .vms
        .iter()
        .filter(|v| v.node == Some(failed) && v.ha.enabled)
        .map(|v| v.ha.restart_delay_secs)
        .max()
        .unwrap_or(0);
    let failed_nodes = [FailedNode {
        node: failed,
        since: MonoInstant::ZERO,
        by_operator: true,
    }];
    let target = |n: NodeId| n != failed;
    let plan = failover::plan(&FailoverInput {
        snapshot: &snap,
        failed: &failed_nodes,
        target: &target,
        restarts: &RestartBook::new(),
        now: MonoInstant::ZERO + Duration::from_secs(u64::from(max_delay)),
        config: &config,
        storm: None,
    });

    let name = |id: NodeId| {
        snap.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    };
    let mut after = snap.clone();
    let mut placements = Vec::new();
    for r in &plan.restarts {
        let Some(v) = after.vms.iter_mut().find(|v| v.id == r.vm) else {
            continue;
        };
        let (cpu, mem) = (v.cpu_load(), v.memory_load_mib());
        v.node = Some(r.to);
        placements.push(SimulatedPlacement {
            vm: r.vm_name.clone(),
            from: name(r.from),
            to: name(r.to),
            priority: r.priority,
            restart_delay_secs: v.ha.restart_delay_secs,
        });
        // Measured node usage grows with the VM's load.
        if let Some(n) = after.nodes.iter_mut().find(|n| n.id == r.to)
            && let Some(u) = &mut n.usage
        {
            let cores = f64::from(n.cpu_cores).max(1e-9);
            *u = NodeUsageSample {
                cpu_percent: (u.cpu_percent + cpu / cores * 100.0).min(100.0),
                memory_used_mib: u.memory_used_mib + mem.round() as u64,
            };
        }
    }
    let not_protected: Vec<String> = snap
        .vms
        .iter()
        .filter(|v| v.node == Some(failed) && v.running && !v.ha.enabled)
        .map(|v| v.name.clone())
        .collect();
    after.nodes.retain(|n| n.id != failed);
    after.vms.retain(|v| v.node != Some(failed));
    let elapsed_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    Ok(HaSimulationReport {
        failed_node: node.to_string(),
        placements,
        unplaced: plan
            .unplaced
            .iter()
            .map(|u| SimulatedUnplaced {
                vm: u.vm_name.clone(),
                reason: u.reason.clone(),
            })
            .chain(plan.held.iter().map(|h| SimulatedUnplaced {
                vm: h.vm_name.clone(),
                reason: h.reason.to_string(),
            }))
            .collect(),
        not_protected,
        before: metrics(&snap),
        after: metrics(&after),
        cluster_protected: failover::admission(&snap).protected,
        failover_bound_secs: config.failover_bound(Duration::ZERO).as_secs_f64(),
        elapsed_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = r#"
nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 32768}
  - {name: node-2, cpu_cores: 16, memory_mib: 32768}
  - {name: node-3, cpu_cores: 4, memory_mib: 8192}
vms:
  - {name: db-1, node: node-1, cpu_cores: 8, memory_mib: 16384, ha: {enabled: true, priority: highest}}
  - {name: web-1, node: node-1, cpu_cores: 4, memory_mib: 8192, ha: {enabled: true, priority: low}}
  - {name: big-1, node: node-1, cpu_cores: 16, memory_mib: 30000, ha: {enabled: true, priority: medium}}
  - {name: tmp-1, node: node-1, cpu_cores: 1, memory_mib: 1024}
  - {name: app-2, node: node-2, cpu_cores: 4, memory_mib: 8192}
"#;

    #[test]
    fn places_by_priority_reports_unplaced_and_load_after() {
        let r = simulate_failover(CLUSTER, "node-1", &HaConfig::default()).unwrap();
        assert_eq!(r.placements[0].vm, "db-1", "highest priority first");
        assert_eq!(r.placements[0].to, "node-2");
        assert!(r.placements.iter().all(|p| p.from == "node-1" && p.to != "node-1"));
        assert_eq!(r.unplaced.len(), 1);
        assert_eq!(r.unplaced[0].vm, "big-1");
        assert_eq!(r.not_protected, vec!["tmp-1".to_string()]);
        assert!(r.after.nodes.iter().all(|n| n.name != "node-1"));
        let n2 = |m: &ReportMetrics| m.nodes.iter().find(|n| n.name == "node-2").unwrap().memory_percent;
        assert!(n2(&r.after) > n2(&r.before), "node-2 takes load");
        assert!(!r.cluster_protected);
        assert_eq!(r.failover_bound_secs, 43.0);
    }

    #[test]
    fn unknown_node_is_an_invalid_argument() {
        let e = simulate_failover(CLUSTER, "node-9", &HaConfig::default()).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
        assert!(e.message.contains("node-9"));
    }
}

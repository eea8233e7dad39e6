//! Failover planning and admission control, pure: snapshot, failed nodes and `now` in, plan out.
//!
//! The rule, in plain words:
//! - Candidates are the HA-enabled VMs that should be running and are assigned to a FAILED
//!   node (proven fenced, see `fence`). Nothing else ever moves.
//! - They are placed in restart-priority order (highest first; then larger memory first, then
//!   name) through the cluster scheduler (`placement::place_many`), onto nodes HA sees as
//!   HEALTHY only; each placement sees the ones before it, so higher priority wins capacity.
//! - A VM whose restart delay has not passed since its node was declared FAILED still takes
//!   its place in that order (capacity is kept for it) but is returned as deferred.
//! - A VM that already restarted `max_restarts` times within `restart_window` is held, as are
//!   all candidates of nodes fenced by lease while a storm pauses failover (an operator's
//!   confirmation overrides the pause for that node).
//! - A VM that fits nowhere is returned unplaced with the scheduler's reason: the manager
//!   raises a CRITICAL alert and the next tick retries, so it restarts once capacity appears.
//! - Admission control (N+1): the cluster is protected when, for every node, its running HA
//!   VMs could all be placed on the others; the reserve is the HA load of the heaviest node.

use std::{
    cmp::Reverse,
    collections::{HashMap, HashSet},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::{config::HaConfig, health::Storm, time::MonoInstant};
use crate::{
    model::{NodeId, NodePhase, RestartPriority, VmId},
    placement::{self, ClusterSnapshot, PlacementRequest, VmSnapshot},
};

/// A node whose HA VMs are to be restarted elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedNode {
    pub node: NodeId,
    /// When it was declared FAILED (control plane clock): restart delays count from here.
    pub since: MonoInstant,
    /// Confirmed down by an operator (proceeds even during a storm pause).
    pub by_operator: bool,
}

/// Everything `plan` looks at.
pub struct FailoverInput<'a> {
    pub snapshot: &'a ClusterSnapshot,
    pub failed: &'a [FailedNode],
    /// Whether HA may restart VMs on a node (HEALTHY in HA's eyes).
    pub target: &'a dyn Fn(NodeId) -> bool,
    pub restarts: &'a RestartBook,
    pub now: MonoInstant,
    pub config: &'a HaConfig,
    pub storm: Option<Storm>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRestart {
    pub vm: VmId,
    pub vm_name: String,
    pub from: NodeId,
    pub to: NodeId,
    pub priority: RestartPriority,
}

/// Placed, but its restart delay runs until `ready_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deferred {
    pub vm: VmId,
    pub vm_name: String,
    pub from: NodeId,
    pub to: NodeId,
    pub ready_at: MonoInstant,
}

/// Fits nowhere now (CRITICAL alert; retried every tick).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unplaced {
    pub vm: VmId,
    pub vm_name: String,
    pub from: NodeId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// Failover is paused by a storm (the text of the cluster alert).
    Storm(String),
    /// The VM restarted too often.
    MaxRestarts { restarts: u32, max: u32 },
}

impl std::fmt::Display for HoldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldReason::Storm(s) => f.write_str(s),
            HoldReason::MaxRestarts { restarts, max } => {
                write!(
                    f,
                    "restarted {restarts} times within the restart window (max_restarts {max})"
                )
            }
        }
    }
}

/// Not restarted on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub vm: VmId,
    pub vm_name: String,
    pub from: NodeId,
    pub reason: HoldReason,
}

/// What to do now. Apply `restarts` in order: set each VM's node to `to` (the target agent
/// starts it at its next heartbeat), then call `HaEngine::restart_committed`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverPlan {
    pub restarts: Vec<PlannedRestart>,
    pub deferred: Vec<Deferred>,
    pub unplaced: Vec<Unplaced>,
    pub held: Vec<Held>,
}

impl FailoverPlan {
    /// The earliest restart delay to expire (wake the manager then).
    pub fn next_ready_at(&self) -> Option<MonoInstant> {
        self.deferred.iter().map(|d| d.ready_at).min()
    }
    pub fn is_empty(&self) -> bool {
        self.restarts.is_empty() && self.deferred.is_empty() && self.unplaced.is_empty() && self.held.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RestartRecord {
    count: u32,
    window_start: MonoInstant,
}

/// HA restarts per VM within the restart window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartBook {
    records: HashMap<VmId, RestartRecord>,
}

/// Persisted restart count of one VM (the window restarts when a control plane restores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartCount {
    pub vm: VmId,
    pub count: u32,
}

impl RestartBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the book after a restart: counts kept, windows start at `now`.
    pub fn restore(now: MonoInstant, counts: &[RestartCount]) -> Self {
        RestartBook {
            records: counts
                .iter()
                .filter(|c| c.count > 0)
                .map(|c| {
                    (
                        c.vm,
                        RestartRecord {
                            count: c.count,
                            window_start: now,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Restarts of `vm` within the window that is current at `now`.
    pub fn count(&self, vm: VmId, now: MonoInstant, window: Duration) -> u32 {
        match self.records.get(&vm) {
            Some(r) if now < r.window_start + window => r.count,
            _ => 0,
        }
    }

    /// Counts one restart of `vm` at `now`.
    pub fn record(&mut self, vm: VmId, now: MonoInstant, window: Duration) {
        let r = self.records.entry(vm).or_insert(RestartRecord {
            count: 0,
            window_start: now,
        });
        if now >= r.window_start + window {
            *r = RestartRecord {
                count: 0,
                window_start: now,
            };
        }
        r.count += 1;
    }

    pub fn forget(&mut self, vm: VmId) {
        self.records.remove(&vm);
    }

    pub fn persisted(&self) -> Vec<RestartCount> {
        let mut v: Vec<RestartCount> = self
            .records
            .iter()
            .map(|(vm, r)| RestartCount {
                vm: *vm,
                count: r.count,
            })
            .collect();
        v.sort_by_key(|c| c.vm);
        v
    }
}

/// Restart order: priority (highest first), then memory (largest first), then name and id.
fn restart_order(a: &VmSnapshot, b: &VmSnapshot) -> std::cmp::Ordering {
    Reverse(a.ha.priority)
        .cmp(&Reverse(b.ha.priority))
        .then(Reverse(a.memory_mib).cmp(&Reverse(b.memory_mib)))
        .then_with(|| a.name.cmp(&b.name))
        .then(a.id.cmp(&b.id))
}

/// The snapshot as HA's placement must see it: nodes that are not targets are NotReady.
fn targets_only(snapshot: &ClusterSnapshot, target: &dyn Fn(NodeId) -> bool) -> ClusterSnapshot {
    let mut s = snapshot.clone();
    for n in &mut s.nodes {
        if !target(n.id) {
            n.phase = NodePhase::NotReady;
        }
    }
    s
}

/// The failover plan at `now` (see the rule at the top of this module).
pub fn plan(input: &FailoverInput<'_>) -> FailoverPlan {
    let mut out = FailoverPlan::default();
    if !input.config.enabled {
        return out;
    }
    let failed: HashMap<NodeId, FailedNode> = input.failed.iter().map(|f| (f.node, *f)).collect();
    let mut candidates: Vec<&VmSnapshot> = input
        .snapshot
        .vms
        .iter()
        .filter(|v| v.ha.enabled && v.running && v.node.is_some_and(|n| failed.contains_key(&n)))
        .collect();
    candidates.sort_by(|a, b| restart_order(a, b));

    let cfg = input.config;
    let mut to_place: Vec<(&VmSnapshot, FailedNode)> = Vec::with_capacity(candidates.len());
    for vm in candidates {
        let from = failed[&vm.node.expect("filtered on node")];
        let max = if vm.ha.max_restarts == 0 {
            cfg.max_restarts
        } else {
            vm.ha.max_restarts
        };
        let restarts = input.restarts.count(vm.id, input.now, cfg.restart_window);
        let hold = if restarts >= max {
            Some(HoldReason::MaxRestarts { restarts, max })
        } else {
            input
                .storm
                .filter(|_| !from.by_operator)
                .map(|s| HoldReason::Storm(s.reason()))
        };
        match hold {
            Some(reason) => out.held.push(Held {
                vm: vm.id,
                vm_name: vm.name.clone(),
                from: from.node,
                reason,
            }),
            None => to_place.push((vm, from)),
        }
    }
    if to_place.is_empty() {
        return out;
    }

    let view = targets_only(input.snapshot, input.target);
    let requests: Vec<PlacementRequest> = to_place.iter().map(|(vm, _)| PlacementRequest::for_vm(vm)).collect();
    let results = placement::place_many(&view, &requests);
    for ((vm, from), result) in to_place.into_iter().zip(results) {
        match result {
            Ok(to) => {
                let ready_at = from.since + Duration::from_secs(u64::from(vm.ha.restart_delay_secs));
                if input.now >= ready_at {
                    out.restarts.push(PlannedRestart {
                        vm: vm.id,
                        vm_name: vm.name.clone(),
                        from: from.node,
                        to,
                        priority: vm.ha.priority,
                    });
                } else {
                    out.deferred.push(Deferred {
                        vm: vm.id,
                        vm_name: vm.name.clone(),
                        from: from.node,
                        to,
                        ready_at,
                    });
                }
            }
            Err(e) => out.unplaced.push(Unplaced {
                vm: vm.id,
                vm_name: vm.name.clone(),
                from: from.node,
                reason: e.to_string(),
            }),
        }
    }
    out
}

/// Whether the cluster can absorb the loss of any single node (N+1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmissionReport {
    pub protected: bool,
    /// Per node whose loss could not be absorbed: the HA VMs that would fit nowhere.
    pub unabsorbable: Vec<(NodeId, Vec<VmId>)>,
    /// The node carrying the most HA load, and that load: what the others must keep free.
    pub heaviest_node: Option<NodeId>,
    pub reserve_cpu_cores: u64,
    pub reserve_memory_mib: u64,
}

/// N+1 check over the nodes that accept VMs (see the rule at the top of this module).
pub fn admission(snapshot: &ClusterSnapshot) -> AdmissionReport {
    let mut report = AdmissionReport {
        protected: true,
        ..AdmissionReport::default()
    };
    let mut view = snapshot.clone();
    let mut heaviest = (0u64, 0u64);
    for i in 0..view.nodes.len() {
        if !view.nodes[i].accepts_vms() {
            continue;
        }
        let id = view.nodes[i].id;
        let mut ha: Vec<&VmSnapshot> = snapshot
            .vms
            .iter()
            .filter(|v| v.ha.enabled && v.running && v.node == Some(id))
            .collect();
        if ha.is_empty() {
            continue;
        }
        ha.sort_by(|a, b| restart_order(a, b));
        let load = (
            ha.iter().map(|v| u64::from(v.cpu_cores)).sum::<u64>(),
            ha.iter().map(|v| v.memory_mib).sum::<u64>(),
        );
        if load.1 > heaviest.1 || (load.1 == heaviest.1 && load.0 > heaviest.0) {
            heaviest = load;
            report.heaviest_node = Some(id);
        }
        let requests: Vec<PlacementRequest> = ha.iter().map(|v| PlacementRequest::for_vm(v)).collect();
        let saved = view.nodes[i].phase;
        view.nodes[i].phase = NodePhase::NotReady;
        let lost: Vec<VmId> = placement::place_many(&view, &requests)
            .into_iter()
            .zip(&ha)
            .filter(|(r, _)| r.is_err())
            .map(|(_, v)| v.id)
            .collect();
        view.nodes[i].phase = saved;
        if !lost.is_empty() {
            report.protected = false;
            report.unabsorbable.push((id, lost));
        }
    }
    (report.reserve_cpu_cores, report.reserve_memory_mib) = heaviest;
    report
}

/// Whether adding `vm` (with its node set) keeps the cluster N+1 protected; VM create and
/// DRS call this when `admission_control` is on. A cluster that already is not protected
/// admits only VMs that do not make it worse (non-HA VMs on nodes with no HA load at risk).
pub fn admits(snapshot: &ClusterSnapshot, vm: &VmSnapshot) -> bool {
    let before = admission(snapshot);
    let mut with = snapshot.clone();
    with.vms.retain(|v| v.id != vm.id);
    with.vms.push(vm.clone());
    let after = admission(&with);
    if before.protected {
        return after.protected;
    }
    let count = |r: &AdmissionReport| r.unabsorbable.iter().map(|(_, v)| v.len()).sum::<usize>();
    let nodes = |r: &AdmissionReport| r.unabsorbable.iter().map(|(n, _)| *n).collect::<HashSet<_>>();
    count(&after) <= count(&before) && nodes(&after).is_subset(&nodes(&before))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::{
        model::{HaPolicy, PlacementPolicy},
        placement::NodeSnapshot,
    };

    fn nid(i: usize) -> NodeId {
        NodeId(Uuid::from_u128(0x1000 + i as u128))
    }
    fn node(i: usize, cpu: u32, mem: u64) -> NodeSnapshot {
        NodeSnapshot {
            id: nid(i),
            name: format!("node-{i}"),
            cpu_cores: cpu,
            memory_mib: mem,
            cpu_overcommit: 1.0,
            memory_overcommit: 1.0,
            labels: Default::default(),
            schedulable: true,
            phase: NodePhase::Ready,
            usage: None,
        }
    }
    fn vm(i: usize, on: usize, cpu: u32, mem: u64, priority: RestartPriority) -> VmSnapshot {
        VmSnapshot {
            id: VmId(Uuid::from_u128(0x2000 + i as u128)),
            name: format!("vm-{i}"),
            node: Some(nid(on)),
            cpu_cores: cpu,
            memory_mib: mem,
            running: true,
            usage: None,
            ha: HaPolicy {
                enabled: true,
                priority,
                restart_delay_secs: 0,
                max_restarts: 0,
            },
            placement: PlacementPolicy::default(),
        }
    }
    fn run(
        s: &ClusterSnapshot,
        failed: &[FailedNode],
        book: &RestartBook,
        now: u64,
        storm: Option<Storm>,
    ) -> FailoverPlan {
        let failed_ids: Vec<NodeId> = failed.iter().map(|f| f.node).collect();
        let target = move |n: NodeId| !failed_ids.contains(&n);
        plan(&FailoverInput {
            snapshot: s,
            failed,
            target: &target,
            restarts: book,
            now: MonoInstant::from_millis(now),
            config: &HaConfig::default(),
            storm,
        })
    }
    fn failed(i: usize) -> FailedNode {
        FailedNode {
            node: nid(i),
            since: MonoInstant::from_millis(1_000),
            by_operator: false,
        }
    }

    #[test]
    fn highest_priority_wins_scarce_capacity_and_the_rest_is_unplaced() {
        let s = ClusterSnapshot {
            nodes: vec![node(0, 16, 16_384), node(1, 16, 16_384)],
            vms: vec![
                vm(1, 0, 4, 8_192, RestartPriority::Low),
                vm(2, 0, 4, 8_192, RestartPriority::Highest),
                vm(3, 0, 4, 8_192, RestartPriority::High),
                vm(4, 1, 4, 4_096, RestartPriority::Medium),
            ],
        };
        let p = run(&s, &[failed(0)], &RestartBook::new(), 2_000, None);
        assert_eq!(
            p.restarts.iter().map(|r| r.vm_name.as_str()).collect::<Vec<_>>(),
            vec!["vm-2"]
        );
        assert_eq!(p.restarts[0].to, nid(1));
        assert_eq!(
            p.unplaced.iter().map(|r| r.vm_name.as_str()).collect::<Vec<_>>(),
            vec!["vm-3", "vm-1"]
        );
        assert!(
            p.unplaced[0].reason.contains("No node has room"),
            "{}",
            p.unplaced[0].reason
        );
    }

    #[test]
    fn only_ha_running_vms_of_failed_nodes_move() {
        let mut s = ClusterSnapshot {
            nodes: vec![node(0, 32, 65_536), node(1, 32, 65_536), node(2, 32, 65_536)],
            vms: vec![
                vm(1, 0, 2, 1_024, RestartPriority::Medium),
                vm(2, 0, 2, 1_024, RestartPriority::Medium),
                vm(3, 1, 2, 1_024, RestartPriority::Medium),
            ],
        };
        s.vms[1].ha.enabled = false;
        s.vms.push(VmSnapshot {
            running: false,
            ..vm(4, 0, 2, 1_024, RestartPriority::High)
        });
        let p = run(&s, &[failed(0)], &RestartBook::new(), 2_000, None);
        assert_eq!(p.restarts.len(), 1);
        assert_eq!(p.restarts[0].vm_name, "vm-1");
        assert_ne!(p.restarts[0].to, nid(0));
    }

    #[test]
    fn restart_delay_defers_but_keeps_capacity() {
        let mut s = ClusterSnapshot {
            nodes: vec![node(0, 16, 16_384), node(1, 16, 8_192)],
            vms: vec![
                vm(1, 0, 4, 8_192, RestartPriority::High),
                vm(2, 0, 4, 8_192, RestartPriority::Low),
            ],
        };
        s.vms[0].ha.restart_delay_secs = 30;
        let p = run(&s, &[failed(0)], &RestartBook::new(), 2_000, None);
        assert!(p.restarts.is_empty());
        assert_eq!(p.deferred.len(), 1);
        assert_eq!(p.deferred[0].ready_at, MonoInstant::from_millis(31_000));
        assert_eq!(p.next_ready_at(), Some(MonoInstant::from_millis(31_000)));
        assert_eq!(
            p.unplaced.iter().map(|u| u.vm_name.as_str()).collect::<Vec<_>>(),
            vec!["vm-2"]
        );
        let p = run(&s, &[failed(0)], &RestartBook::new(), 31_000, None);
        assert_eq!(p.restarts.len(), 1);
    }

    #[test]
    fn max_restarts_and_storm_hold() {
        let s = ClusterSnapshot {
            nodes: vec![node(0, 16, 16_384), node(1, 16, 16_384)],
            vms: vec![
                vm(1, 0, 1, 1_024, RestartPriority::High),
                vm(2, 0, 1, 1_024, RestartPriority::Low),
            ],
        };
        let mut book = RestartBook::new();
        let w = HaConfig::default().restart_window;
        for _ in 0..3 {
            book.record(s.vms[0].id, MonoInstant::from_millis(500), w);
        }
        let p = run(&s, &[failed(0)], &book, 2_000, None);
        assert_eq!(p.held.len(), 1);
        assert_eq!(p.held[0].reason, HoldReason::MaxRestarts { restarts: 3, max: 3 });
        assert_eq!(p.restarts.len(), 1);
        // After the window the count starts again.
        assert_eq!(book.count(s.vms[0].id, MonoInstant::from_millis(500) + w, w), 0);
        let storm = Some(Storm {
            unreachable: 3,
            total: 4,
        });
        let p = run(&s, &[failed(0)], &RestartBook::new(), 2_000, storm);
        assert_eq!(p.held.len(), 2);
        assert!(p.restarts.is_empty());
        let op = FailedNode {
            by_operator: true,
            ..failed(0)
        };
        let p = run(&s, &[op], &RestartBook::new(), 2_000, storm);
        assert_eq!(
            p.restarts.len(),
            2,
            "an operator's confirmation overrides the storm pause"
        );
    }

    #[test]
    fn restart_book_survives_restore_with_counts() {
        let mut b = RestartBook::new();
        let v = VmId(Uuid::from_u128(7));
        b.record(v, MonoInstant::ZERO, Duration::from_secs(60));
        b.record(v, MonoInstant::from_millis(1), Duration::from_secs(60));
        let r = RestartBook::restore(MonoInstant::from_millis(5), &b.persisted());
        assert_eq!(r.count(v, MonoInstant::from_millis(6), Duration::from_secs(60)), 2);
    }

    #[test]
    fn admission_detects_n_plus_one() {
        let s = ClusterSnapshot {
            nodes: vec![node(0, 16, 16_384), node(1, 16, 16_384), node(2, 16, 16_384)],
            vms: vec![
                vm(1, 0, 4, 8_192, RestartPriority::High),
                vm(2, 1, 4, 8_192, RestartPriority::High),
            ],
        };
        let r = admission(&s);
        assert!(r.protected, "{r:?}");
        assert_eq!((r.reserve_cpu_cores, r.reserve_memory_mib), (4, 8_192));
        let big = vm(3, 2, 8, 12_288, RestartPriority::Medium);
        assert!(!admits(&s, &big), "node-2's 12 GiB would fit nowhere if it failed");
        let small = vm(4, 2, 2, 4_096, RestartPriority::Medium);
        assert!(admits(&s, &small));
        let mut full = s.clone();
        full.vms.push(big);
        let r = admission(&full);
        assert!(!r.protected);
        assert_eq!(r.unabsorbable, vec![(nid(2), vec![VmId(Uuid::from_u128(0x2003))])]);
    }

    #[test]
    fn thousand_vms_plan_quickly_and_fit() {
        let mut nodes = vec![];
        let mut vms = vec![];
        for n in 0..100 {
            nodes.push(node(n, 64, 262_144));
        }
        for i in 0..3_000 {
            vms.push(vm(
                i,
                i % 100,
                1,
                2_048,
                [RestartPriority::Low, RestartPriority::High][i % 2],
            ));
        }
        let s = ClusterSnapshot { nodes, vms };
        let failed: Vec<FailedNode> = (0..33).map(failed).collect();
        let p = run(&s, &failed, &RestartBook::new(), 2_000, None);
        assert_eq!(p.restarts.len(), 990);
        assert!(p.unplaced.is_empty());
        let mut load: HashMap<NodeId, u64> = HashMap::new();
        for v in &s.vms {
            if !failed.iter().any(|f| Some(f.node) == v.node) {
                *load.entry(v.node.unwrap()).or_default() += v.memory_mib;
            }
        }
        for r in &p.restarts {
            assert!(!failed.iter().any(|f| f.node == r.to));
            *load.entry(r.to).or_default() += 2_048;
        }
        assert!(load.values().all(|m| *m <= 262_144));
    }
}

//! The HA engine: health tracker, restart book and alert de-duplication in one object that
//! the leader's manager loop drives. Pure like the rest of `ha`: it never reads a clock.
//!
//! The manager loop, per tick (every `check_interval`, and at `TickReport::next_wakeup`):
//! 1. `tick(now, &snapshot)`; raise events/alerts for `transitions`, `storm_changed`,
//!    `new_unplaced`, `new_held`; resolve alerts of `resolved`.
//! 2. If `persist_nodes`, write `persisted()` (node FAILED flags) BEFORE step 3.
//! 3. For each of `plan.restarts`, in order: write the VM's node = `to` (with the leader epoch),
//!    then call `restart_committed(vm, now)` and persist `persisted()` (restart counts).
//! 4. Sleep until `next_wakeup` (or a heartbeat/ManualFailover wakes it).
//!
//! On each heartbeat: `heartbeat(node, now, report)`; on `Verdict::Renewed` answer with the
//! node's desired state, on `MustFence` answer `must_fence` with no domains; when the
//! returned transition's cause is `FenceConfirmed`, persist before answering.
//! On leader change or restart: `restore(config, now, &persisted)`.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::{
    config::HaConfig,
    error::{HaConfigError, HaError},
    failover::{
        self, AdmissionReport, FailedNode, FailoverInput, FailoverPlan, Held, RestartBook, RestartCount, Unplaced,
    },
    fence::{FenceReason, NotConfirmed, ReturnReport},
    health::{HealthTracker, HeartbeatOutcome, NodeHealth, NodeStatus, PersistedNode, Storm, Transition, Verdict},
    time::MonoInstant,
};
use crate::{
    model::{NodeId, VmId},
    placement::ClusterSnapshot,
};

/// Everything HA must find again after a control-plane restart or leader change
/// (besides the VMs' node assignments, which live in the VM records).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedHa {
    pub nodes: Vec<PersistedNode>,
    pub restarts: Vec<RestartCount>,
}

/// What one tick decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub transitions: Vec<Transition>,
    pub storm: Option<Storm>,
    pub storm_changed: bool,
    pub plan: FailoverPlan,
    /// Unplaced VMs to alert about (first time, or the reason changed).
    pub new_unplaced: Vec<Unplaced>,
    /// Held VMs to alert about (first time, or the reason changed).
    pub new_held: Vec<Held>,
    /// VMs that were unplaced or held and no longer are (resolve their alerts).
    pub resolved: Vec<VmId>,
    /// Some node became FAILED: persist `persisted()` before applying the restarts.
    pub persist_nodes: bool,
    /// When to tick again at the latest.
    pub next_wakeup: MonoInstant,
}

/// GetHAStatus in one value.
#[derive(Clone, Debug, PartialEq)]
pub struct HaStatusView {
    pub nodes: Vec<NodeStatus>,
    /// HA-enabled VMs that should be running.
    pub protected_vms: usize,
    pub failover_paused: Option<String>,
    pub admission: AdmissionReport,
}

/// The HA state of one leader.
#[derive(Clone, Debug)]
pub struct HaEngine {
    tracker: HealthTracker,
    restarts: RestartBook,
    unplaced: HashMap<VmId, String>,
    held: HashMap<VmId, String>,
    /// Planned restarts not yet committed, by VM: the node they leave.
    in_flight: HashMap<VmId, NodeId>,
    /// Transitions made between ticks (parking), reported by the next tick.
    pending: Vec<Transition>,
}

impl HaEngine {
    /// A fresh engine for `nodes`, all assumed to have just heartbeated (config validated).
    pub fn new(
        config: HaConfig,
        now: MonoInstant,
        nodes: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, HaConfigError> {
        config.validate()?;
        Ok(HaEngine {
            tracker: HealthTracker::new(config, now, nodes),
            restarts: RestartBook::new(),
            unplaced: HashMap::new(),
            held: HashMap::new(),
            in_flight: HashMap::new(),
            pending: Vec::new(),
        })
    }

    /// The engine of a new leader (or a restarted control plane), from the store.
    pub fn restore(config: HaConfig, now: MonoInstant, state: &PersistedHa) -> Result<Self, HaConfigError> {
        config.validate()?;
        Ok(HaEngine {
            tracker: HealthTracker::restore(config, now, &state.nodes),
            restarts: RestartBook::restore(now, &state.restarts),
            unplaced: HashMap::new(),
            held: HashMap::new(),
            in_flight: HashMap::new(),
            pending: Vec::new(),
        })
    }

    pub fn config(&self) -> &HaConfig {
        self.tracker.config()
    }
    pub fn tracker(&self) -> &HealthTracker {
        &self.tracker
    }
    pub fn health(&self, node: NodeId) -> Option<NodeHealth> {
        self.tracker.health(node)
    }
    /// A node registered (or re-registered).
    pub fn add_node(&mut self, node: NodeId, now: MonoInstant) {
        self.tracker.add_node(node, now);
    }
    pub fn remove_node(&mut self, node: NodeId) {
        self.tracker.remove_node(node);
    }
    /// Parks (standby, powering on/off on lqx's request) or unparks a node: a parked node's
    /// silence is expected, so it is neither declared failed nor waited on to be fenced.
    pub fn set_parked(&mut self, node: NodeId, parked: bool, now: MonoInstant) {
        if let Some(t) = self.tracker.set_parked(node, parked, now) {
            self.pending.push(t);
        }
    }

    /// A heartbeat arrived. A FAILED node is not let back while restarts of its VMs are
    /// planned but not committed (its desired state would still list them).
    pub fn heartbeat(
        &mut self,
        node: NodeId,
        now: MonoInstant,
        report: &ReturnReport,
    ) -> Result<HeartbeatOutcome, HaError> {
        if self.tracker.health(node) == Some(NodeHealth::Failed) && self.in_flight.values().any(|n| *n == node) {
            return Ok(HeartbeatOutcome {
                verdict: Verdict::MustFence(NotConfirmed::FailoverInProgress),
                transition: None,
            });
        }
        self.tracker.heartbeat(node, now, report)
    }

    fn failed_nodes(&self) -> Vec<FailedNode> {
        self.tracker
            .failed()
            .map(|(node, proof)| FailedNode {
                node,
                since: proof.at,
                by_operator: proof.reason == FenceReason::Operator,
            })
            .collect()
    }

    fn plan(&self, now: MonoInstant, snapshot: &ClusterSnapshot, storm: Option<Storm>) -> FailoverPlan {
        let failed = self.failed_nodes();
        let tracker = &self.tracker;
        let target = |n: NodeId| tracker.health(n) == Some(NodeHealth::Healthy) && !tracker.is_parked(n);
        failover::plan(&FailoverInput {
            snapshot,
            failed: &failed,
            target: &target,
            restarts: &self.restarts,
            now,
            config: tracker.config(),
            storm,
        })
    }

    /// One check and failover planning at `now` over the store's current `snapshot`.
    pub fn tick(&mut self, now: MonoInstant, snapshot: &ClusterSnapshot) -> TickReport {
        let mut check = self.tracker.check(now);
        if !self.pending.is_empty() {
            let mut t = std::mem::take(&mut self.pending);
            t.append(&mut check.transitions);
            check.transitions = t;
        }
        let plan = self.plan(now, snapshot, check.storm);
        let persist_nodes = check.transitions.iter().any(|t| t.to == NodeHealth::Failed);
        // The manager ticks only after committing or abandoning the previous plan.
        self.in_flight = plan.restarts.iter().map(|r| (r.vm, r.from)).collect();
        self.report(
            now,
            check.transitions,
            check.storm,
            check.storm_changed,
            plan,
            persist_nodes,
        )
    }

    fn report(
        &mut self,
        now: MonoInstant,
        transitions: Vec<Transition>,
        storm: Option<Storm>,
        storm_changed: bool,
        plan: FailoverPlan,
        persist_nodes: bool,
    ) -> TickReport {
        let unplaced_now: HashMap<VmId, String> = plan.unplaced.iter().map(|u| (u.vm, u.reason.clone())).collect();
        let held_now: HashMap<VmId, String> = plan.held.iter().map(|h| (h.vm, h.reason.to_string())).collect();
        let new_unplaced = plan
            .unplaced
            .iter()
            .filter(|u| self.unplaced.get(&u.vm) != Some(&u.reason))
            .cloned()
            .collect();
        let new_held = plan
            .held
            .iter()
            .filter(|h| self.held.get(&h.vm) != held_now.get(&h.vm))
            .cloned()
            .collect();
        let mut resolved: Vec<VmId> = self
            .unplaced
            .keys()
            .chain(self.held.keys())
            .filter(|vm| !unplaced_now.contains_key(vm) && !held_now.contains_key(vm))
            .copied()
            .collect();
        resolved.sort();
        resolved.dedup();
        self.unplaced = unplaced_now;
        self.held = held_now;

        let ci = self.config().check_interval;
        let mut next_wakeup = now + ci;
        for t in [self.tracker.next_deadline(now), plan.next_ready_at()]
            .into_iter()
            .flatten()
        {
            next_wakeup = next_wakeup.min(t.max(now + Duration::from_millis(1)));
        }
        TickReport {
            transitions,
            storm,
            storm_changed,
            plan,
            new_unplaced,
            new_held,
            resolved,
            persist_nodes,
            next_wakeup,
        }
    }

    /// The manager wrote a planned restart (the VM's node is now the target).
    pub fn restart_committed(&mut self, vm: VmId, now: MonoInstant) {
        let window = self.config().restart_window;
        self.restarts.record(vm, now, window);
        self.in_flight.remove(&vm);
    }

    /// The manager could not write a planned restart (the next tick plans it again).
    pub fn restart_abandoned(&mut self, vm: VmId) {
        self.in_flight.remove(&vm);
    }

    /// ManualFailover: with `confirm_host_down`, declares the node FAILED (refused for a
    /// heartbeating node) and plans at once. Without it, nothing changes.
    pub fn manual_failover(
        &mut self,
        node: NodeId,
        now: MonoInstant,
        confirm_host_down: bool,
        snapshot: &ClusterSnapshot,
    ) -> Result<TickReport, HaError> {
        if !confirm_host_down {
            return Err(HaError::ConfirmationRequired);
        }
        let transition = self.tracker.confirm_down(node, now)?;
        let storm = self.tracker.storm();
        let plan = self.plan(now, snapshot, storm);
        let persist = transition.is_some();
        // A tick's writes may still be in flight: add to them rather than replace.
        self.in_flight.extend(plan.restarts.iter().map(|r| (r.vm, r.from)));
        Ok(self.report(now, transition.into_iter().collect(), storm, false, plan, persist))
    }

    /// What to persist (see the module docs for when).
    pub fn persisted(&self) -> PersistedHa {
        PersistedHa {
            nodes: self.tracker.persisted(),
            restarts: self.restarts.persisted(),
        }
    }

    /// GetHAStatus.
    pub fn status(&self, now: MonoInstant, snapshot: &ClusterSnapshot) -> HaStatusView {
        HaStatusView {
            nodes: self.tracker.status(now),
            protected_vms: snapshot.vms.iter().filter(|v| v.ha.enabled && v.running).count(),
            failover_paused: self.tracker.storm().map(|s| s.reason()),
            admission: failover::admission(snapshot),
        }
    }

    /// Failed nodes by id with the reason (for `lqx ha status`).
    pub fn fenced_nodes(&self) -> BTreeMap<NodeId, FenceReason> {
        self.tracker.failed().map(|(n, p)| (n, p.reason)).collect()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::{
        model::{HaPolicy, NodePhase, PlacementPolicy, RestartPriority},
        placement::{NodeSnapshot, VmSnapshot},
    };

    fn nid(i: usize) -> NodeId {
        NodeId(Uuid::from_u128(0x1000 + i as u128))
    }
    fn snapshot() -> ClusterSnapshot {
        let node = |i: usize| NodeSnapshot {
            id: nid(i),
            name: format!("node-{i}"),
            cpu_cores: 8,
            memory_mib: 8_192,
            cpu_overcommit: 1.0,
            memory_overcommit: 1.0,
            labels: Default::default(),
            schedulable: true,
            phase: NodePhase::Ready,
            usage: None,
        };
        let vm = |i: usize, cpu: u32| VmSnapshot {
            id: VmId(Uuid::from_u128(0x2000 + i as u128)),
            name: format!("vm-{i}"),
            node: Some(nid(0)),
            cpu_cores: cpu,
            memory_mib: 1_024,
            running: true,
            usage: None,
            ha: HaPolicy {
                enabled: true,
                priority: RestartPriority::Medium,
                restart_delay_secs: 0,
                max_restarts: 0,
            },
            placement: PlacementPolicy::default(),
        };
        ClusterSnapshot {
            nodes: vec![node(0), node(1)],
            vms: vec![vm(1, 4), vm(2, 6)],
        }
    }
    fn at(s: u64) -> MonoInstant {
        MonoInstant::from_millis(s * 1000)
    }
    const GONE: ReturnReport = ReturnReport {
        fenced_domains_gone: true,
        ha_domains_present: 0,
    };

    #[test]
    fn tick_declares_failed_plans_and_dedupes_alerts() {
        let mut s = snapshot();
        let mut e = HaEngine::new(HaConfig::default(), at(0), [nid(0), nid(1)]).unwrap();
        let mut now = at(0);
        let report = loop {
            e.heartbeat(nid(1), now, &GONE).unwrap();
            let r = e.tick(now, &s);
            assert!(r.next_wakeup > now && r.next_wakeup <= now + Duration::from_secs(10));
            if !r.plan.is_empty() {
                break r;
            }
            now = r.next_wakeup;
        };
        assert_eq!(now, at(38), "declared at lease + margin exactly");
        assert!(report.persist_nodes);
        assert_eq!(report.plan.restarts.len(), 1);
        assert_eq!(report.new_unplaced.len(), 1, "4 + 6 vCPUs do not fit in 8");
        let moved = report.plan.restarts[0].clone();
        assert_eq!(moved.vm_name, "vm-1", "equal priority and memory: the name decides");
        s.assign(moved.vm, moved.to);
        e.restart_committed(moved.vm, now);
        assert_eq!(e.persisted().restarts, vec![RestartCount { vm: moved.vm, count: 1 }]);
        let r = e.tick(now + Duration::from_secs(1), &s);
        assert!(
            r.plan.restarts.is_empty() && r.new_unplaced.is_empty(),
            "unplaced alert raised once"
        );
        assert_eq!(r.plan.unplaced.len(), 1);
        // The failed node confirms it is back: its unplaced VM is no longer a candidate.
        let o = e.heartbeat(nid(0), now + Duration::from_secs(2), &GONE).unwrap();
        assert_eq!(o.transition.map(|t| t.to), Some(NodeHealth::Healthy));
        let r = e.tick(now + Duration::from_secs(3), &s);
        assert_eq!(r.resolved.len(), 1);
        assert!(e.persisted().nodes.iter().all(|n| n.fenced.is_none()));
    }

    #[test]
    fn failed_node_is_not_let_back_while_its_failover_is_being_written() {
        let s = snapshot();
        let mut e = HaEngine::new(HaConfig::default(), at(0), [nid(0), nid(1)]).unwrap();
        e.heartbeat(nid(1), at(12), &GONE).unwrap();
        let r = e.manual_failover(nid(0), at(12), true, &s).unwrap();
        let vm = r.plan.restarts[0].vm;
        let o = e.heartbeat(nid(0), at(13), &GONE).unwrap();
        assert_eq!(o.verdict, Verdict::MustFence(NotConfirmed::FailoverInProgress));
        e.restart_committed(vm, at(13));
        let o = e.heartbeat(nid(0), at(14), &GONE).unwrap();
        assert!(matches!(o.verdict, Verdict::Renewed { .. }));
    }

    #[test]
    fn manual_failover_needs_confirmation_and_a_silent_node() {
        let s = snapshot();
        let mut e = HaEngine::new(HaConfig::default(), at(0), [nid(0), nid(1)]).unwrap();
        assert_eq!(
            e.manual_failover(nid(0), at(5), false, &s).unwrap_err(),
            HaError::ConfirmationRequired
        );
        assert!(matches!(
            e.manual_failover(nid(0), at(5), true, &s),
            Err(HaError::NodeAlive { .. })
        ));
        e.heartbeat(nid(1), at(12), &GONE).unwrap();
        let r = e.manual_failover(nid(0), at(12), true, &s).unwrap();
        assert!(r.persist_nodes);
        assert_eq!(r.plan.restarts.len(), 1);
        assert_eq!(e.fenced_nodes().get(&nid(0)), Some(&FenceReason::Operator));
    }

    #[test]
    fn restore_resumes_failover_of_a_persisted_failed_node() {
        let s = snapshot();
        let persisted = PersistedHa {
            nodes: vec![
                PersistedNode {
                    node: nid(0),
                    fenced: Some(FenceReason::LeaseExpired),
                },
                PersistedNode {
                    node: nid(1),
                    fenced: None,
                },
            ],
            restarts: vec![],
        };
        let mut e = HaEngine::restore(HaConfig::default(), at(0), &persisted).unwrap();
        let r = e.tick(at(0), &s);
        assert_eq!(r.plan.restarts.len(), 1, "no new wait: the fence proof was persisted");
        assert!(
            HaEngine::new(
                HaConfig {
                    lease_ttl: Duration::from_secs(1),
                    ..HaConfig::default()
                },
                at(0),
                []
            )
            .is_err()
        );
    }

    /// A host in standby never fails over (its VMs are gone anyway) and never takes restarts.
    #[test]
    fn standby_host_is_neither_failed_nor_a_restart_target() {
        let mut s = snapshot();
        // node-2 (standby) is big enough for everything; node-1 is where the VMs are.
        s.nodes.push(NodeSnapshot {
            id: nid(2),
            name: "node-2".into(),
            ..s.nodes[1].clone()
        });
        s.nodes[1].cpu_cores = 64;
        let mut e = HaEngine::new(HaConfig::default(), at(0), [nid(0), nid(1), nid(2)]).unwrap();
        e.set_parked(nid(2), true, at(0));
        let mut planned = None;
        for sec in 1..=120 {
            e.heartbeat(nid(1), at(sec), &GONE).unwrap();
            let r = e.tick(at(sec), &s);
            assert!(r.transitions.iter().all(|t| t.node != nid(2)), "{:?}", r.transitions);
            if !r.plan.restarts.is_empty() && planned.is_none() {
                planned = Some(r.plan.restarts.clone());
            }
        }
        let planned = planned.expect("node-0 failed and its VMs were planned");
        assert!(
            planned.iter().all(|r| r.to == nid(1)),
            "never onto the standby host: {planned:?}"
        );
        assert_eq!(e.health(nid(2)), Some(NodeHealth::Healthy));
        assert_eq!(e.fenced_nodes().keys().copied().collect::<Vec<_>>(), vec![nid(0)]);
    }
}

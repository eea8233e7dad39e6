//! Node health detection: the HA manager's state machine, pure (`now` passed in).
//!
//! The rule, in plain words:
//! - A node's silence is the time since the control plane last accepted a heartbeat from it,
//!   on the control plane's monotonic clock. A new leader (or a restarted control plane) knows
//!   no past instants: it counts silence from its own start and assumes every node was just
//!   granted a lease, which can only make it wait longer, never fail over earlier.
//! - Missed checks are whole `check_interval`s of silence.
//! - HEALTHY: no missed check. UNKNOWN: one or more missed checks, not timed out yet.
//! - Timed out: silence of at least `heartbeat_timeout` and `failure_threshold` missed checks.
//! - UNREACHABLE: timed out, but not (yet) proven fenced, or failover is paused by a storm.
//! - FAILED: timed out and fenced (lease expired plus `fence_margin`, see `fence`), or an
//!   operator confirmed the host is down. FAILED is sticky: it survives control-plane restarts
//!   (persisted) and ends only when the host's heartbeat confirms its HA domains are gone.
//! - Storm: when more than `storm_threshold` of the nodes that are not FAILED are timed out
//!   at the same check, no node is declared FAILED (the control plane is probably the one cut
//!   off); an operator's confirmation still is.
//! - A heartbeat from a node that is not FAILED renews its lease and makes it HEALTHY; a
//!   heartbeat from a FAILED node is answered `must_fence` until it confirms.
//! - Parked: a node lqx powered off on purpose (standby) or is powering on or off. Its silence
//!   is expected: it is never checked (no UNKNOWN/UNREACHABLE/FAILED, no fencing wait), does
//!   not count towards a storm, and takes no restarts. Unparked, its silence counts afresh
//!   from that moment, as for a node that just registered.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    config::HaConfig,
    error::HaError,
    fence::{FenceProof, FenceReason, Lease, NotConfirmed, ReturnReport, confirm_return},
    time::MonoInstant,
};
use crate::model::NodeId;

/// Health of a node as HA sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeHealth {
    Healthy,
    Unknown,
    Unreachable,
    Failed,
}

impl NodeHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeHealth::Healthy => "HEALTHY",
            NodeHealth::Unknown => "UNKNOWN",
            NodeHealth::Unreachable => "UNREACHABLE",
            NodeHealth::Failed => "FAILED",
        }
    }
}

impl fmt::Display for NodeHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a node's health changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Silence reached this many missed checks.
    MissedChecks(u32),
    /// Silence reached the timeout.
    TimedOut,
    /// Timed out and proven fenced (or confirmed down by an operator).
    Fenced(FenceReason),
    /// A heartbeat arrived.
    Heartbeat,
    /// A FAILED node confirmed its fenced domains are gone.
    FenceConfirmed,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::MissedChecks(n) => write!(f, "missed_checks={n}"),
            Cause::TimedOut => f.write_str("timed_out"),
            Cause::Fenced(r) => write!(f, "fenced={}", r.as_str()),
            Cause::Heartbeat => f.write_str("heartbeat"),
            Cause::FenceConfirmed => f.write_str("fence_confirmed"),
        }
    }
}

/// A change of one node's health (raise an event; alerts for UNREACHABLE/FAILED/recovery).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub node: NodeId,
    pub from: NodeHealth,
    pub to: NodeHealth,
    pub at: MonoInstant,
    pub cause: Cause,
}

/// Too many nodes timed out at once: automatic failover is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Storm {
    pub unreachable: usize,
    pub total: usize,
}

impl Storm {
    /// The text of the CRITICAL cluster alert.
    pub fn reason(&self) -> String {
        format!(
            "{} of {} nodes unreachable at once: failover paused (the control plane is probably the one cut off)",
            self.unreachable, self.total
        )
    }
}

/// What the control plane answers a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Lease renewed until `lease_expires_at` (control plane clock); send the desired state.
    Renewed { lease_expires_at: MonoInstant },
    /// The node is FAILED and has not confirmed: reply `must_fence`, no lease, no work.
    MustFence(NotConfirmed),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub verdict: Verdict,
    pub transition: Option<Transition>,
}

/// Result of one check of all nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub transitions: Vec<Transition>,
    /// The storm in force after this check, if any.
    pub storm: Option<Storm>,
    /// The storm started or ended at this check (raise or resolve the cluster alert).
    pub storm_changed: bool,
}

/// The HA state of a node that must survive a control-plane restart or leader change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedNode {
    pub node: NodeId,
    /// Set while the node is FAILED (fenced and not yet confirmed back).
    pub fenced: Option<FenceReason>,
}

/// One node's HA status (for GetHAStatus / `lqx ha status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: NodeId,
    pub health: NodeHealth,
    pub missed_checks: u32,
    /// Time since the last heartbeat (or since this control plane started).
    pub silence: Duration,
    /// Age of the current lease; None while FAILED (no lease).
    pub lease_age: Option<Duration>,
    pub fence: Option<FenceProof>,
}

#[derive(Clone, Debug)]
struct NodeRecord {
    last_heard: MonoInstant,
    lease: Option<Lease>,
    health: NodeHealth,
    fence: Option<FenceProof>,
    /// Powered off (or changing power) on lqx's request: silence expected.
    parked: bool,
}

/// Health of every node; one per leader.
#[derive(Clone, Debug)]
pub struct HealthTracker {
    cfg: HaConfig,
    nodes: BTreeMap<NodeId, NodeRecord>,
    storm: Option<Storm>,
}

impl HealthTracker {
    /// A tracker for `nodes`, all assumed to have just heartbeated at `now`.
    pub fn new(cfg: HaConfig, now: MonoInstant, nodes: impl IntoIterator<Item = NodeId>) -> Self {
        let mut t = HealthTracker {
            cfg,
            nodes: BTreeMap::new(),
            storm: None,
        };
        for n in nodes {
            t.add_node(n, now);
        }
        t
    }

    /// Rebuilds the tracker after a control-plane restart or leader change: FAILED nodes
    /// stay FAILED; every other node is assumed to have just been granted a lease.
    pub fn restore(cfg: HaConfig, now: MonoInstant, persisted: &[PersistedNode]) -> Self {
        let mut t = HealthTracker::new(cfg, now, persisted.iter().map(|p| p.node));
        for p in persisted {
            if let (Some(reason), Some(r)) = (p.fenced, t.nodes.get_mut(&p.node)) {
                r.health = NodeHealth::Failed;
                r.lease = None;
                r.fence = Some(FenceProof { reason, at: now });
            }
        }
        t
    }

    pub fn config(&self) -> &HaConfig {
        &self.cfg
    }

    /// Starts tracking a node (new or re-registered) as if it just heartbeated.
    pub fn add_node(&mut self, node: NodeId, now: MonoInstant) {
        let ttl = self.cfg.lease_ttl;
        self.nodes.entry(node).or_insert(NodeRecord {
            last_heard: now,
            lease: Some(Lease { granted_at: now, ttl }),
            health: NodeHealth::Healthy,
            fence: None,
            parked: false,
        });
    }

    /// Parks a node whose power lqx turned off or is changing (see the module docs), or
    /// unparks it. A FAILED node stays FAILED: its failover goes on. Returns the transition
    /// back to HEALTHY when parking ends an UNKNOWN or UNREACHABLE spell.
    pub fn set_parked(&mut self, node: NodeId, parked: bool, now: MonoInstant) -> Option<Transition> {
        let ttl = self.cfg.lease_ttl;
        let r = self.nodes.get_mut(&node)?;
        if r.parked == parked || r.health == NodeHealth::Failed {
            return None;
        }
        r.parked = parked;
        // Either way its silence so far means nothing: parked, it is expected; unparked, the
        // host just came back from standby.
        r.last_heard = r.last_heard.max(now);
        r.lease = Some(Lease { granted_at: now, ttl });
        let from = r.health;
        r.health = NodeHealth::Healthy;
        (from != NodeHealth::Healthy).then_some(Transition {
            node,
            from,
            to: NodeHealth::Healthy,
            at: now,
            cause: Cause::Heartbeat,
        })
    }

    pub fn is_parked(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|r| r.parked)
    }

    /// Stops tracking a deleted node.
    pub fn remove_node(&mut self, node: NodeId) {
        self.nodes.remove(&node);
    }

    pub fn health(&self, node: NodeId) -> Option<NodeHealth> {
        self.nodes.get(&node).map(|r| r.health)
    }

    /// FAILED nodes with their proof; their HA VMs are to be restarted elsewhere.
    pub fn failed(&self) -> impl Iterator<Item = (NodeId, FenceProof)> + '_ {
        self.nodes
            .iter()
            .filter_map(|(id, r)| r.fence.filter(|_| r.health == NodeHealth::Failed).map(|f| (*id, f)))
    }

    pub fn storm(&self) -> Option<Storm> {
        self.storm
    }

    /// A heartbeat from `node` arrived at `now`.
    pub fn heartbeat(
        &mut self,
        node: NodeId,
        now: MonoInstant,
        report: &ReturnReport,
    ) -> Result<HeartbeatOutcome, HaError> {
        let ttl = self.cfg.lease_ttl;
        let r = self.nodes.get_mut(&node).ok_or(HaError::UnknownNode(node))?;
        // A parked host that heartbeats is up (powering off, or on again): it is tracked
        // normally once its power state says so; meanwhile its lease is renewed as usual.
        r.last_heard = r.last_heard.max(now);
        let from = r.health;
        let cause = if from == NodeHealth::Failed {
            if let Err(why) = confirm_return(report) {
                return Ok(HeartbeatOutcome {
                    verdict: Verdict::MustFence(why),
                    transition: None,
                });
            }
            r.fence = None;
            Cause::FenceConfirmed
        } else {
            Cause::Heartbeat
        };
        let lease = Lease { granted_at: now, ttl };
        r.lease = Some(lease);
        r.health = NodeHealth::Healthy;
        let transition = (from != NodeHealth::Healthy).then_some(Transition {
            node,
            from,
            to: NodeHealth::Healthy,
            at: now,
            cause,
        });
        Ok(HeartbeatOutcome {
            verdict: Verdict::Renewed {
                lease_expires_at: lease.expires_at(),
            },
            transition,
        })
    }

    fn silence(&self, r: &NodeRecord, now: MonoInstant) -> (Duration, u32, bool) {
        let silence = now.saturating_since(r.last_heard);
        let missed =
            u32::try_from(silence.as_millis() / self.cfg.check_interval.as_millis().max(1)).unwrap_or(u32::MAX);
        let timed_out = silence >= self.cfg.heartbeat_timeout && missed >= self.cfg.failure_threshold;
        (silence, missed, timed_out)
    }

    /// Checks every node at `now` (every `check_interval`, and at `next_deadline`).
    pub fn check(&mut self, now: MonoInstant) -> CheckReport {
        let mut total = 0;
        let mut unreachable = 0;
        for r in self
            .nodes
            .values()
            .filter(|r| r.health != NodeHealth::Failed && !r.parked)
        {
            total += 1;
            if self.silence(r, now).2 {
                unreachable += 1;
            }
        }
        let storm = (total > 0 && unreachable as f64 / total as f64 > self.cfg.storm_threshold)
            .then_some(Storm { unreachable, total });
        let storm_changed = storm.is_some() != self.storm.is_some();
        self.storm = storm;

        let margin = self.cfg.fence_margin;
        let mut transitions = Vec::new();
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for node in ids {
            let r = &self.nodes[&node];
            if r.health == NodeHealth::Failed || r.parked {
                continue;
            }
            let (_, missed, timed_out) = self.silence(r, now);
            let fenced = r.lease.is_none_or(|l| l.is_fenced(now, margin));
            let (to, cause) = if !timed_out {
                if missed == 0 {
                    (NodeHealth::Healthy, Cause::Heartbeat)
                } else {
                    (NodeHealth::Unknown, Cause::MissedChecks(missed))
                }
            } else if fenced && storm.is_none() {
                (NodeHealth::Failed, Cause::Fenced(FenceReason::LeaseExpired))
            } else {
                (NodeHealth::Unreachable, Cause::TimedOut)
            };
            let r = self.nodes.get_mut(&node).expect("id taken from the map");
            if to != r.health {
                transitions.push(Transition {
                    node,
                    from: r.health,
                    to,
                    at: now,
                    cause,
                });
                r.health = to;
                if to == NodeHealth::Failed {
                    r.fence = Some(FenceProof {
                        reason: FenceReason::LeaseExpired,
                        at: now,
                    });
                    r.lease = None;
                }
            }
        }
        CheckReport {
            transitions,
            storm,
            storm_changed,
        }
    }

    /// An operator confirmed `node` is powered off (ManualFailover with confirmation).
    /// Refused for a node that is heartbeating. Returns None when it already was FAILED.
    pub fn confirm_down(&mut self, node: NodeId, now: MonoInstant) -> Result<Option<Transition>, HaError> {
        let ci = self.cfg.check_interval;
        let r = self.nodes.get_mut(&node).ok_or(HaError::UnknownNode(node))?;
        // An operator's word overrides parking (a host that never finished powering on).
        r.parked = false;
        if r.health == NodeHealth::Failed {
            return Ok(None);
        }
        let since = now.saturating_since(r.last_heard);
        if since < ci {
            return Err(HaError::NodeAlive { node, since });
        }
        let t = Transition {
            node,
            from: r.health,
            to: NodeHealth::Failed,
            at: now,
            cause: Cause::Fenced(FenceReason::Operator),
        };
        r.health = NodeHealth::Failed;
        r.fence = Some(FenceProof {
            reason: FenceReason::Operator,
            at: now,
        });
        r.lease = None;
        Ok(Some(t))
    }

    /// The earliest instant after `now` at which some node's health can change without a
    /// heartbeat; the manager wakes then (as well as every `check_interval`).
    pub fn next_deadline(&self, now: MonoInstant) -> Option<MonoInstant> {
        let ci = self.cfg.check_interval;
        let mut next: Option<MonoInstant> = None;
        let mut consider = |t: MonoInstant| {
            if t > now && next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        for r in self
            .nodes
            .values()
            .filter(|r| r.health != NodeHealth::Failed && !r.parked)
        {
            let (_, missed, timed_out) = self.silence(r, now);
            if !timed_out {
                consider(r.last_heard + ci * missed.saturating_add(1));
                consider(r.last_heard + self.cfg.heartbeat_timeout);
            }
            if let Some(l) = r.lease {
                consider(l.fenced_at(self.cfg.fence_margin));
            }
        }
        next
    }

    /// Status of every node at `now`.
    pub fn status(&self, now: MonoInstant) -> Vec<NodeStatus> {
        self.nodes
            .iter()
            .map(|(id, r)| {
                let (silence, missed, _) = self.silence(r, now);
                NodeStatus {
                    node: *id,
                    health: r.health,
                    missed_checks: missed,
                    silence,
                    lease_age: r.lease.map(|l| now.saturating_since(l.granted_at)),
                    fence: r.fence,
                }
            })
            .collect()
    }

    /// What to persist (write it when a node becomes FAILED, before its VMs are moved, and
    /// when a FAILED node confirms it is back).
    pub fn persisted(&self) -> Vec<PersistedNode> {
        self.nodes
            .iter()
            .map(|(id, r)| PersistedNode {
                node: *id,
                fenced: r.fence.filter(|_| r.health == NodeHealth::Failed).map(|f| f.reason),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> MonoInstant {
        MonoInstant::from_millis(ms)
    }
    fn ids(n: usize) -> Vec<NodeId> {
        (0..n).map(|i| NodeId(uuid::Uuid::from_u128(i as u128 + 1))).collect()
    }
    const GONE: ReturnReport = ReturnReport {
        fenced_domains_gone: true,
        ha_domains_present: 0,
    };

    /// Runs checks every second from `from` to `to` and returns the transitions.
    fn run(t: &mut HealthTracker, from: u64, to: u64) -> Vec<(u64, NodeHealth)> {
        let mut out = vec![];
        let mut s = from;
        while s <= to {
            for tr in t.check(at(s * 1000)).transitions {
                out.push((s, tr.to));
            }
            s += 1;
        }
        out
    }

    #[test]
    fn dead_node_goes_unknown_unreachable_failed_on_the_default_timeline() {
        let n = ids(3);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        let mut trace = vec![];
        for s in 1..=60u64 {
            for other in &n[1..] {
                t.heartbeat(*other, at(s * 1000), &ReturnReport::default()).unwrap();
            }
            trace.extend(
                t.check(at(s * 1000))
                    .transitions
                    .into_iter()
                    .map(|tr| (s, tr.to, tr.cause)),
            );
        }
        assert_eq!(
            trace,
            vec![
                (10, NodeHealth::Unknown, Cause::MissedChecks(1)),
                (30, NodeHealth::Unreachable, Cause::TimedOut),
                (38, NodeHealth::Failed, Cause::Fenced(FenceReason::LeaseExpired)),
            ]
        );
        assert_eq!(t.failed().map(|(id, _)| id).collect::<Vec<_>>(), vec![n[0]]);
        assert_eq!(t.persisted()[0].fenced, Some(FenceReason::LeaseExpired));
    }

    #[test]
    fn blip_shorter_than_timeout_never_leaves_unknown() {
        let n = ids(2);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        for s in 1..=29u64 {
            t.heartbeat(n[1], at(s * 1000), &GONE).unwrap();
        }
        let tr = run(&mut t, 1, 29);
        assert_eq!(tr.iter().map(|x| x.1).collect::<Vec<_>>(), vec![NodeHealth::Unknown]);
        let back = t.heartbeat(n[0], at(29_500), &ReturnReport::default()).unwrap();
        assert_eq!(back.transition.map(|x| x.to), Some(NodeHealth::Healthy));
        assert!(matches!(back.verdict, Verdict::Renewed { lease_expires_at } if lease_expires_at == at(64_500)));
    }

    #[test]
    fn next_deadline_hits_each_transition_exactly() {
        let n = ids(2);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        let mut now = at(0);
        let mut seen = vec![];
        while let Some(d) = t.next_deadline(now) {
            t.heartbeat(n[1], d, &GONE).unwrap();
            for tr in t.check(d).transitions {
                seen.push((d.as_millis(), tr.to));
            }
            now = d;
            if t.health(n[0]) == Some(NodeHealth::Failed) {
                break;
            }
        }
        assert_eq!(
            seen,
            vec![
                (10_000, NodeHealth::Unknown),
                (30_000, NodeHealth::Unreachable),
                (38_000, NodeHealth::Failed)
            ]
        );
    }

    #[test]
    fn storm_pauses_failure_declaration() {
        let n = ids(4);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        for s in 1..=50u64 {
            t.heartbeat(n[3], at(s * 1000), &GONE).unwrap();
        }
        let r = t.check(at(50_000));
        assert_eq!(
            r.storm,
            Some(Storm {
                unreachable: 3,
                total: 4
            })
        );
        assert!(r.storm_changed);
        assert!(r.transitions.iter().all(|x| x.to == NodeHealth::Unreachable));
        assert_eq!(t.failed().count(), 0);
        // Two come back: 1 of 4 timed out is no storm; the last one is declared FAILED.
        t.heartbeat(n[0], at(51_000), &GONE).unwrap();
        t.heartbeat(n[1], at(51_000), &GONE).unwrap();
        let r = t.check(at(51_000));
        assert!(r.storm.is_none() && r.storm_changed);
        assert_eq!(
            r.transitions.iter().map(|x| (x.node, x.to)).collect::<Vec<_>>(),
            vec![(n[2], NodeHealth::Failed)]
        );
    }

    #[test]
    fn half_is_not_a_storm() {
        let n = ids(4);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        for s in 1..=40u64 {
            t.heartbeat(n[2], at(s * 1000), &GONE).unwrap();
            t.heartbeat(n[3], at(s * 1000), &GONE).unwrap();
        }
        let r = t.check(at(40_000));
        assert!(r.storm.is_none());
        assert_eq!(t.failed().count(), 2);
    }

    #[test]
    fn failed_node_must_confirm_before_it_gets_a_lease() {
        let n = ids(2);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        t.heartbeat(n[1], at(38_000), &GONE).unwrap();
        t.check(at(38_000));
        assert_eq!(t.health(n[0]), Some(NodeHealth::Failed));
        let o = t
            .heartbeat(
                n[0],
                at(60_000),
                &ReturnReport {
                    fenced_domains_gone: false,
                    ha_domains_present: 1,
                },
            )
            .unwrap();
        assert_eq!(o.verdict, Verdict::MustFence(NotConfirmed::NoConfirmation));
        assert_eq!(t.health(n[0]), Some(NodeHealth::Failed));
        let o = t.heartbeat(n[0], at(62_000), &GONE).unwrap();
        assert!(matches!(o.verdict, Verdict::Renewed { .. }));
        assert_eq!(
            o.transition.map(|x| (x.from, x.to, x.cause)),
            Some((NodeHealth::Failed, NodeHealth::Healthy, Cause::FenceConfirmed))
        );
        assert_eq!(t.persisted()[0].fenced, None);
    }

    #[test]
    fn restore_keeps_failed_and_waits_a_full_lease_for_the_rest() {
        let n = ids(3);
        let persisted = vec![
            PersistedNode {
                node: n[0],
                fenced: Some(FenceReason::Operator),
            },
            PersistedNode {
                node: n[1],
                fenced: None,
            },
            PersistedNode {
                node: n[2],
                fenced: None,
            },
        ];
        let mut t = HealthTracker::restore(HaConfig::default(), at(5_000), &persisted);
        assert_eq!(
            t.failed().map(|x| (x.0, x.1.reason)).collect::<Vec<_>>(),
            vec![(n[0], FenceReason::Operator)]
        );
        // n[1] is silent from the restore on: FAILED only 38 s after the restore.
        for s in 6..=43u64 {
            t.heartbeat(n[2], at(s * 1000), &GONE).unwrap();
        }
        let tr = run(&mut t, 6, 42);
        assert!(!tr.contains(&(42, NodeHealth::Failed)));
        assert_eq!(t.health(n[1]), Some(NodeHealth::Unreachable));
        assert_eq!(t.check(at(43_000)).transitions[0].to, NodeHealth::Failed);
    }

    #[test]
    fn operator_confirmation_is_refused_for_a_heartbeating_node() {
        let n = ids(2);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        assert!(matches!(
            t.confirm_down(n[0], at(5_000)),
            Err(HaError::NodeAlive { .. })
        ));
        let tr = t.confirm_down(n[0], at(12_000)).unwrap().unwrap();
        assert_eq!(tr.cause, Cause::Fenced(FenceReason::Operator));
        assert_eq!(t.confirm_down(n[0], at(13_000)), Ok(None));
        assert!(matches!(
            t.confirm_down(ids(3)[2], at(13_000)),
            Err(HaError::UnknownNode(_))
        ));
    }

    #[test]
    fn parked_node_is_never_failed_nor_waited_on_and_counts_afresh_when_unparked() {
        let n = ids(3);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        // n[0] goes to standby at 5 s; n[1] heartbeats throughout; n[2] dies at 0 s.
        t.heartbeat(n[0], at(5_000), &GONE).unwrap();
        assert_eq!(t.set_parked(n[0], true, at(5_000)), None);
        assert!(t.is_parked(n[0]));
        let mut trace = vec![];
        for s in 1..=600u64 {
            t.heartbeat(n[1], at(s * 1000), &GONE).unwrap();
            trace.extend(t.check(at(s * 1000)).transitions.into_iter().map(|tr| (tr.node, tr.to)));
        }
        assert!(
            trace.iter().all(|(node, _)| *node == n[2]),
            "the parked node never changed health in 10 minutes of silence: {trace:?}"
        );
        assert_eq!(t.health(n[0]), Some(NodeHealth::Healthy));
        assert_eq!(
            t.failed().map(|x| x.0).collect::<Vec<_>>(),
            vec![n[2]],
            "the dead one still fails"
        );
        // Its lease deadline is no wake-up either (no fencing wait for a parked host).
        let d = t.next_deadline(at(600_000));
        assert!(d.is_none_or(|d| d.as_millis() % 1000 == 0 || d > at(600_000)));
        // Unparked at 600 s (powered on): silence counts from there, not from 5 s.
        assert_eq!(t.set_parked(n[0], false, at(600_000)), None);
        t.heartbeat(n[1], at(609_000), &GONE).unwrap();
        assert!(
            t.check(at(609_000)).transitions.is_empty(),
            "9 s after the power-on: still healthy"
        );
        let tr = t.check(at(610_000)).transitions;
        assert_eq!(
            tr.iter().map(|x| (x.node, x.to)).collect::<Vec<_>>(),
            vec![(n[0], NodeHealth::Unknown)]
        );
    }

    #[test]
    fn parked_nodes_do_not_make_a_storm_and_failed_stays_failed() {
        let n = ids(5);
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n.clone());
        // Three of five hosts in standby: their silence is no storm (it is not counted at
        // all), so of the two that should talk, the one that dies is declared FAILED on the
        // normal timeline.
        for id in &n[..3] {
            t.set_parked(*id, true, at(0));
        }
        for s in 1..=38u64 {
            t.heartbeat(n[4], at(s * 1000), &GONE).unwrap();
        }
        let r = run(&mut t, 1, 38);
        assert_eq!(t.storm(), None);
        assert_eq!(
            r,
            vec![
                (10, NodeHealth::Unknown),
                (30, NodeHealth::Unreachable),
                (38, NodeHealth::Failed)
            ]
        );
        assert_eq!(t.failed().map(|x| x.0).collect::<Vec<_>>(), vec![n[3]]);
        // Parking a FAILED node changes nothing: its failover goes on.
        assert_eq!(t.set_parked(n[3], true, at(40_000)), None);
        assert!(!t.is_parked(n[3]));
        assert_eq!(t.health(n[3]), Some(NodeHealth::Failed));
        // Parking ends an UNKNOWN spell (a host being powered off stops heartbeating).
        let mut t = HealthTracker::new(HaConfig::default(), at(0), n[..1].to_vec());
        t.check(at(12_000));
        assert_eq!(t.health(n[0]), Some(NodeHealth::Unknown));
        let back = t.set_parked(n[0], true, at(12_000)).unwrap();
        assert_eq!((back.from, back.to), (NodeHealth::Unknown, NodeHealth::Healthy));
    }
}

//! The server's own alerts about its hosts: every `interval`, each attached host (in-process
//! driver or agent link) is asked for its statistics.
//!
//! The rules, in plain words:
//! - A host that fails `failure_threshold` checks in a row (an error or no answer within
//!   `probe_timeout`) gets a CRITICAL `node.unreachable` alert; the first check it answers
//!   resolves it. Nodes in maintenance are not alerted about (they may be down on purpose),
//!   but a recovery still resolves.
//! - A host whose memory use reaches `memory_high_percent` gets a WARNING
//!   `node.memory_high` alert, resolved once use falls below `memory_clear_percent`
//!   (hysteresis, so a host hovering at the threshold does not flap).
//! - Alerts are raised and resolved on changes only, not on every check. The first check
//!   after start-up resolves alerts whose condition is no longer true (they may have been
//!   left open by a previous run).
//! - A node that is deleted gets its alerts resolved.
//!
//! [`assess`] is the pure rule (state, probe -> new state, actions); [`HostMonitor`] runs it.

use super::conditions::{NODE_MEMORY_HIGH, NODE_UNREACHABLE};
use super::service::Alerts;
use super::{node_alert, node_key};
use crate::compute::Compute;
use crate::model::{AlertDraft, AlertKey, AlertSeverity, Node, NodeId, NodePhase};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorConfig {
    pub interval: Duration,
    pub probe_timeout: Duration,
    /// Failed checks in a row before a host is declared unreachable (at least 1).
    pub failure_threshold: u32,
    pub memory_high_percent: f64,
    pub memory_clear_percent: f64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            interval: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(5),
            failure_threshold: 3,
            memory_high_percent: 90.0,
            memory_clear_percent: 85.0,
        }
    }
}

/// What the monitor remembers about one node between checks. `None`: not decided yet
/// (nothing raised or resolved since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeWatch {
    pub failures: u32,
    pub unreachable: Option<bool>,
    pub memory_high: Option<bool>,
}

/// The result of asking a host for its statistics.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Answered {
        memory_used_mib: u64,
        memory_total_mib: u64,
    },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Raise(AlertDraft),
    Clear(AlertKey),
}

/// The rule for one node and one check.
pub fn assess(node: &Node, prev: NodeWatch, probe: &Probe, c: &MonitorConfig) -> (NodeWatch, Vec<Action>) {
    let mut next = prev;
    let mut actions = Vec::new();
    match probe {
        Probe::Failed(why) => {
            next.failures = prev.failures.saturating_add(1);
            let declared = next.failures >= c.failure_threshold.max(1);
            if declared && prev.unreachable != Some(true) && node.phase != NodePhase::Maintenance {
                next.unreachable = Some(true);
                actions.push(Action::Raise(node_alert(
                    node.id,
                    &node.name,
                    AlertSeverity::Critical,
                    NODE_UNREACHABLE,
                    format!("Host {} is not answering", node.name),
                    format!("{} checks in a row failed; last error: {why}", next.failures),
                )));
            }
        }
        Probe::Answered {
            memory_used_mib,
            memory_total_mib,
        } => {
            next.failures = 0;
            if prev.unreachable != Some(false) {
                next.unreachable = Some(false);
                actions.push(Action::Clear(node_key(node.id, NODE_UNREACHABLE)));
            }
            if *memory_total_mib > 0 {
                let pct = *memory_used_mib as f64 * 100.0 / *memory_total_mib as f64;
                if pct >= c.memory_high_percent && prev.memory_high != Some(true) {
                    next.memory_high = Some(true);
                    actions.push(Action::Raise(node_alert(
                        node.id,
                        &node.name,
                        AlertSeverity::Warning,
                        NODE_MEMORY_HIGH,
                        format!("Memory use on {} is high", node.name),
                        format!(
                            "{pct:.0}% of memory in use ({memory_used_mib} of {memory_total_mib} MiB; alert at {:.0}%)",
                            c.memory_high_percent
                        ),
                    )));
                } else if pct < c.memory_clear_percent && prev.memory_high != Some(false) {
                    next.memory_high = Some(false);
                    actions.push(Action::Clear(node_key(node.id, NODE_MEMORY_HIGH)));
                }
            }
        }
    }
    (next, actions)
}

/// The name of the host checks among the background tasks.
pub const TASK: &str = "host-checks";

/// Runs [`assess`] over every node of the store at each interval.
pub struct HostMonitor {
    compute: Compute,
    alerts: Alerts,
    config: MonitorConfig,
    watches: HashMap<NodeId, NodeWatch>,
}

impl HostMonitor {
    pub fn new(compute: Compute, alerts: Alerts, config: MonitorConfig) -> Self {
        HostMonitor {
            compute,
            alerts,
            config,
            watches: HashMap::new(),
        }
    }

    /// Checks every node once and applies the resulting alert changes.
    pub async fn check(&mut self) -> crate::Result<()> {
        let nodes = self.compute.store.all_nodes().await?;
        let probes = futures::future::join_all(nodes.iter().map(|n| self.probe(n.id))).await;
        for (node, probe) in nodes.iter().zip(probes) {
            let Some(probe) = probe else { continue };
            let prev = self.watches.get(&node.id).copied().unwrap_or_default();
            let (next, actions) = assess(node, prev, &probe, &self.config);
            match self.apply(actions).await {
                Ok(()) => {
                    self.watches.insert(node.id, next);
                }
                // Keep the old state: the same change is tried again at the next check.
                Err(e) => tracing::warn!(node = %node.name, error = %e, "applying host alerts failed"),
            }
        }
        let gone: Vec<NodeId> = self
            .watches
            .keys()
            .filter(|id| !nodes.iter().any(|n| n.id == **id))
            .copied()
            .collect();
        for id in gone {
            let r = self
                .apply(vec![
                    Action::Clear(node_key(id, NODE_UNREACHABLE)),
                    Action::Clear(node_key(id, NODE_MEMORY_HIGH)),
                ])
                .await;
            if r.is_ok() {
                self.watches.remove(&id);
            }
        }
        Ok(())
    }

    /// `None` for a node without an attached host (nothing to ask).
    async fn probe(&self, node: NodeId) -> Option<Probe> {
        let hv = self.compute.hosts.get(node).ok()?;
        Some(
            match tokio::time::timeout(self.config.probe_timeout, hv.node_stats()).await {
                Ok(Ok(s)) => Probe::Answered {
                    memory_used_mib: s.memory_used_mib,
                    memory_total_mib: s.memory_total_mib,
                },
                Ok(Err(e)) => Probe::Failed(e.to_string()),
                Err(_) => Probe::Failed(format!(
                    "no answer within {}",
                    humantime::format_duration(self.config.probe_timeout)
                )),
            },
        )
    }

    async fn apply(&self, actions: Vec<Action>) -> crate::Result<()> {
        for a in actions {
            match a {
                Action::Raise(d) => {
                    self.alerts.raise(d).await?;
                }
                Action::Clear(k) => {
                    self.alerts.clear(&k).await?;
                }
            }
        }
        Ok(())
    }

    /// Checks at every interval until the task is aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let task = crate::background::Task::detached(TASK, self.config.interval);
        self.spawn_as(task)
    }

    /// [`HostMonitor::spawn`], registered in `tasks` as `host-checks`.
    pub fn spawn_in(self, tasks: &crate::background::BackgroundTasks) -> tokio::task::JoinHandle<()> {
        let task = tasks.register(TASK, self.config.interval);
        self.spawn_as(task)
    }

    fn spawn_as(mut self, task: crate::background::Task) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(self.config.interval.max(Duration::from_millis(10)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = task.run(self.check()).await {
                    tracing::warn!(error = %e, "host check failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertSourceType, NodeUsage, Resources};

    fn node(phase: NodePhase) -> Node {
        Node {
            id: NodeId::new(),
            name: "node-1".into(),
            hostname: "node-1".into(),
            management_address: String::new(),
            labels: Default::default(),
            capacity: Resources::default(),
            allocatable: Resources::default(),
            cpu_overcommit: 1.0,
            memory_overcommit: 1.0,
            phase,
            schedulable: true,
            libvirt_uri: "sim://node-1".into(),
            last_heartbeat: None,
            usage: NodeUsage::default(),
            resource_version: 1,
            created_at: chrono::DateTime::UNIX_EPOCH,
            cpu_model: String::new(),
            power: Default::default(),
        }
    }

    fn ok(used: u64) -> Probe {
        Probe::Answered {
            memory_used_mib: used,
            memory_total_mib: 1000,
        }
    }

    fn conditions(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Raise(d) => format!("raise {}", d.condition),
                Action::Clear(k) => format!("clear {}", k.condition),
            })
            .collect()
    }

    #[test]
    fn unreachable_after_the_threshold_and_resolved_on_the_first_answer() {
        let n = node(NodePhase::Ready);
        let c = MonitorConfig::default();
        let (w, a) = assess(&n, NodeWatch::default(), &ok(100), &c);
        assert_eq!(conditions(&a), ["clear node.unreachable", "clear node.memory_high"]);
        let fail = Probe::Failed("down".into());
        let (w, a) = assess(&n, w, &fail, &c);
        assert!(a.is_empty());
        let (w, a) = assess(&n, w, &fail, &c);
        assert!(a.is_empty());
        let (w, a) = assess(&n, w, &fail, &c);
        assert_eq!(conditions(&a), ["raise node.unreachable"]);
        match &a[0] {
            Action::Raise(d) => {
                assert_eq!(d.severity, AlertSeverity::Critical);
                assert_eq!(d.source_type, AlertSourceType::Host);
                assert_eq!(d.source_id, n.id.to_string());
                assert!(d.message.contains("down"), "{}", d.message);
            }
            other => panic!("{other:?}"),
        }
        // Still down: nothing new. Back: resolved once.
        let (w, a) = assess(&n, w, &fail, &c);
        assert!(a.is_empty());
        let (w, a) = assess(&n, w, &ok(100), &c);
        assert_eq!(conditions(&a), ["clear node.unreachable"]);
        let (_, a) = assess(&n, w, &ok(100), &c);
        assert!(a.is_empty());
    }

    #[test]
    fn memory_alert_has_hysteresis() {
        let n = node(NodePhase::Ready);
        let c = MonitorConfig::default();
        let w = NodeWatch {
            unreachable: Some(false),
            memory_high: Some(false),
            ..Default::default()
        };
        let (w, a) = assess(&n, w, &ok(950), &c);
        assert_eq!(conditions(&a), ["raise node.memory_high"]);
        let (w, a) = assess(&n, w, &ok(870), &c);
        assert!(a.is_empty(), "between the clear and raise levels nothing changes");
        let (w, a) = assess(&n, w, &ok(960), &c);
        assert!(a.is_empty(), "still high: not raised again");
        let (_, a) = assess(&n, w, &ok(800), &c);
        assert_eq!(conditions(&a), ["clear node.memory_high"]);
    }

    #[test]
    fn maintenance_nodes_are_not_declared_unreachable() {
        let n = node(NodePhase::Maintenance);
        let c = MonitorConfig {
            failure_threshold: 1,
            ..Default::default()
        };
        let (w, a) = assess(&n, NodeWatch::default(), &Probe::Failed("off".into()), &c);
        assert!(a.is_empty());
        assert_eq!(w.failures, 1);
    }
}

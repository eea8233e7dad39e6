//! The HA manager: the leader's loop around [`HaEngine`] (the shell; the decisions are the
//! engine's, see `engine.rs` for the per-tick protocol this follows).
//!
//! The rule, in plain words:
//! - It works only while this replica leads. On becoming leader it restores the engine from
//!   the store (`ha_state`: fenced nodes, restart counts); on losing it, it drops the engine.
//! - One task owns the decisions: ticks (every `check_interval`, and at the engine's next
//!   deadline) and ManualFailover requests (mpsc + oneshot) are serialized in it. Heartbeats
//!   reach the engine under its lock: the agents' heartbeat hook answers at once, and
//!   in-process hosts (simulated, all-in-one) are probed every `heartbeat_interval` (a host
//!   that answers counts as a heartbeat).
//! - Every write the manager makes as leader carries the epoch and is refused once the term
//!   is over: node FAILED flags are persisted BEFORE any of their VMs move, each restart is
//!   one fenced write of the VM's node (then the target starts it), and each tick writes the
//!   status other replicas show. A refused write ends the manager's term at once.
//! - A lease is granted (heartbeat answered with a renewal) only while this replica believes
//!   it leads, checked on every heartbeat; otherwise agents are told to retry elsewhere
//!   ([`HaManager::heartbeat_gate`]) or, in a race, to fence.
//! - A FAILED node that confirms its HA domains are gone gets no lease until that is
//!   persisted; an in-process host is fenced by the manager itself (the domains of VMs
//!   restarted elsewhere are destroyed) before it counts as back.
//! - Every step publishes an HA event, raises or resolves an alert (through [`AlertSink`]),
//!   writes the HA journal (leader-only, fenced) and logs.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};
use tracing::{debug, error, info, warn};

use super::{
    HaConfig, HaEngine, HaError, PersistedHa, TickReport,
    failover::PlannedRestart,
    fence::ReturnReport,
    health::{Cause, NodeHealth, Transition, Verdict},
    time::MonoInstant,
};
use crate::{
    Error, ErrorKind, Result,
    alert::{self, conditions},
    compute::{
        Compute,
        agents::{Agents, HeartbeatHook, HeartbeatReport, LeaseVerdict},
    },
    events::EventBus,
    leader::{Epoch, LeaderHandle},
    model::{
        AlertDraft, AlertKey, AlertSeverity, AlertSourceType, EventDraft, EventType, Node, NodeId, ResourceType, Vm,
        VmId, VmState,
    },
    placement::ClusterSnapshot,
};

/// `ha_state` keys.
const KEY_PERSISTED: &str = "persisted";
const KEY_STATUS: &str = "status";
/// HA alert conditions not in `alert::conditions`.
const COND_FAILOVER_PAUSED: &str = "cluster.failover_paused";
const COND_HA_HELD: &str = "vm.ha_held";

pub use crate::alert::AlertSink;

/// An [`AlertSink`] for when no alert service is wired: each alert becomes an HA event
/// (`payload.alert`) and a log line, and the open ones are kept in memory.
pub struct EventAlerts {
    events: EventBus,
    open: Mutex<HashMap<AlertKey, AlertDraft>>,
}

impl EventAlerts {
    pub fn new(events: EventBus) -> Self {
        EventAlerts {
            events,
            open: Mutex::new(HashMap::new()),
        }
    }
    /// The alerts raised and not resolved.
    pub fn open(&self) -> Vec<AlertDraft> {
        let mut v: Vec<AlertDraft> = lock(&self.open).values().cloned().collect();
        v.sort_by(|a, b| (&a.condition, &a.source_id).cmp(&(&b.condition, &b.source_id)));
        v
    }
}

impl AlertSink for EventAlerts {
    fn raise(&self, draft: AlertDraft) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match draft.severity {
                AlertSeverity::Critical => {
                    error!(condition = %draft.condition, source = %draft.source_name, "{}: {}", draft.title, draft.message)
                }
                AlertSeverity::Warning => {
                    warn!(condition = %draft.condition, source = %draft.source_name, "{}: {}", draft.title, draft.message)
                }
                AlertSeverity::Info => {
                    info!(condition = %draft.condition, source = %draft.source_name, "{}: {}", draft.title, draft.message)
                }
            }
            let payload = serde_json::json!({"alert": {
                "severity": format!("{:?}", draft.severity).to_uppercase(),
                "condition": draft.condition, "title": draft.title, "message": draft.message,
                "source_id": draft.source_id, "source_name": draft.source_name,
            }});
            self.events.publish(
                EventDraft::new(EventType::Failed, ResourceType::Ha, draft.source_id.clone(), Utc::now())
                    .payload(payload),
            );
            lock(&self.open).insert(draft.key(), draft);
        })
    }
    fn resolve(&self, key: AlertKey) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if lock(&self.open).remove(&key).is_some() {
                info!(condition = %key.condition, source = %key.source_id, "alert resolved");
                let payload = serde_json::json!({"alert": {"condition": key.condition, "source_id": key.source_id}});
                self.events.publish(
                    EventDraft::new(EventType::Resolved, ResourceType::Ha, key.source_id.clone(), Utc::now())
                        .payload(payload),
                );
            }
        })
    }
}

/// The name of the in-process host probe among the background tasks.
pub const PROBE_TASK: &str = "ha-probe";

/// How the manager is set up.
pub struct HaManagerOptions {
    pub config: HaConfig,
    pub leader: LeaderHandle,
    /// Remote hosts (their heartbeats come through the hook installed here); the other
    /// connected hosts are probed in-process.
    pub agents: Option<Agents>,
    pub alerts: Arc<dyn AlertSink>,
}

/// One node in GetHAStatus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeHaReport {
    pub node: NodeId,
    pub name: String,
    pub health: NodeHealth,
    pub missed_checks: u32,
    /// Age of the node's lease in milliseconds (None: no lease, fenced).
    pub lease_age_ms: Option<u64>,
    /// HA-enabled VMs placed on it that should be running.
    pub protected_vms: u32,
    pub fenced: bool,
    /// What its agent last reported to this replica (agent nodes only; filled at read time).
    #[serde(default)]
    pub fencing: Option<crate::fence::Fencing>,
}

/// GetHAStatus. Written by the leader at every check; other replicas show the last one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HaStatusReport {
    pub nodes: Vec<NodeHaReport>,
    pub protected_vms: u32,
    /// N+1: the loss of any single node can be absorbed.
    pub cluster_protected: bool,
    pub failover_paused: Option<String>,
    /// Wall-clock time of the check (display only; no decision reads it).
    pub last_check: Option<DateTime<Utc>>,
    /// The lease holder and its epoch (filled at read time from the lease row).
    #[serde(default)]
    pub leader: String,
    #[serde(default)]
    pub leader_epoch: u64,
    /// Whether this replica leads (the status is live rather than the leader's last write).
    #[serde(default)]
    pub live: bool,
    /// HA VMs that a hung agent would not fence (filled at read time).
    #[serde(default)]
    pub weakly_fenced: Vec<WeaklyFenced>,
}

impl HaStatusReport {
    /// HA VMs on nodes whose fencing is weaker than a host watchdog.
    pub fn degraded_fencing_vms(&self) -> u32 {
        self.nodes
            .iter()
            .filter(|n| n.fencing.as_ref().is_some_and(|f| f.is_degraded()))
            .map(|n| n.protected_vms)
            .sum()
    }
}

/// An HA VM protected only by its agent's own watchdog (or by nothing while libvirt hangs):
/// if that agent hangs the VM may run twice, so admission names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeaklyFenced {
    pub vm: VmId,
    pub vm_name: String,
    pub node_name: String,
    pub level: crate::fence::FencingLevel,
}

/// Fills each node's fencing (where `fencing_of` knows it; a replica that does not lead keeps
/// what the leader stored) and names the HA VMs whose fence does not survive a hung agent.
pub fn add_fencing(
    report: &mut HaStatusReport,
    snap: &ClusterSnapshot,
    fencing_of: impl Fn(NodeId) -> Option<crate::fence::Fencing>,
) {
    for n in &mut report.nodes {
        if let Some(f) = fencing_of(n.node) {
            n.fencing = Some(f);
        }
    }
    let fencing: HashMap<NodeId, crate::fence::Fencing> = report
        .nodes
        .iter()
        .filter_map(|n| Some((n.node, n.fencing.clone()?)))
        .collect();
    let names: HashMap<NodeId, &str> = snap.nodes.iter().map(|n| (n.id, n.name.as_str())).collect();
    let mut weak: Vec<WeaklyFenced> = snap
        .vms
        .iter()
        .filter(|v| v.ha.enabled && v.running)
        .filter_map(|v| {
            let node = v.node?;
            let f = fencing.get(&node).filter(|f| !f.level.survives_hung_agent())?;
            Some(WeaklyFenced {
                vm: v.id,
                vm_name: v.name.clone(),
                node_name: names.get(&node).map_or_else(|| node.to_string(), |n| n.to_string()),
                level: f.level,
            })
        })
        .collect();
    weak.sort_by(|a, b| (&a.node_name, &a.vm_name).cmp(&(&b.node_name, &b.vm_name)));
    report.weakly_fenced = weak;
}

/// One restart, by name, for ManualFailover's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub vm: VmId,
    pub vm_name: String,
    pub from: NodeId,
    pub to: NodeId,
    /// Placed, but starts when its restart delay has passed.
    pub deferred: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotPlaced {
    pub vm: VmId,
    pub vm_name: String,
    pub reason: String,
}

/// What ManualFailover did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverOutcome {
    pub placements: Vec<Placement>,
    pub unplaced: Vec<NotPlaced>,
}

enum Request {
    Failover {
        node: String,
        confirm: bool,
        reply: oneshot::Sender<Result<FailoverOutcome>>,
    },
}

struct Shared {
    cfg: HaConfig,
    compute: Compute,
    leader: LeaderHandle,
    agents: Option<Agents>,
    alerts: Arc<dyn AlertSink>,
    origin: Instant,
    /// The engine while this replica leads (None otherwise). Never held across an await.
    engine: Mutex<Option<HaEngine>>,
    /// FAILED nodes that confirmed their fence, refused a lease until that is persisted.
    returning: Mutex<HashSet<NodeId>>,
    /// Held from a tick's plan through its restart writes, and by the in-process probe from
    /// fencing a returning host through its heartbeat: a host cannot come back between.
    gate: tokio::sync::Mutex<()>,
    /// Transitions seen on heartbeats, for the manager task to act on.
    transitions: mpsc::UnboundedSender<Transition>,
    /// The term the engine was restored for.
    term: Mutex<Option<Epoch>>,
}

/// Handle on the HA manager. Cheap to clone.
#[derive(Clone)]
pub struct HaManager {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The HA view of the store: VMs that should run count as running even when their last
/// observed state says otherwise (a VM of a dead host must be restarted, not forgotten).
pub fn ha_snapshot(nodes: &[Node], vms: &[Vm]) -> ClusterSnapshot {
    let mut s = crate::compute::snapshot_of(nodes, vms);
    for (snap, vm) in s.vms.iter_mut().zip(vms) {
        if vm.desired_state == VmState::Running && vm.status.state != VmState::Stopped {
            snap.running = true;
        }
    }
    s
}

impl HaManager {
    /// Validates the configuration, installs the heartbeat hook and starts the manager and
    /// the in-process probe.
    pub fn start(compute: Compute, opts: HaManagerOptions) -> Result<HaManager> {
        HaManager::start_in(compute, opts, None)
    }

    /// [`HaManager::start`], the in-process probe registered in `tasks` as `ha-probe`.
    pub fn start_in(
        compute: Compute,
        opts: HaManagerOptions,
        tasks: Option<&crate::background::BackgroundTasks>,
    ) -> Result<HaManager> {
        opts.config.validate()?;
        // Only ever switched on here (as before: a manager started without it leaves it).
        if opts.config.admission_control {
            compute.set_admission_control(true);
        }
        let (ttx, trx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            cfg: opts.config,
            compute,
            leader: opts.leader,
            agents: opts.agents,
            alerts: opts.alerts,
            origin: Instant::now(),
            engine: Mutex::new(None),
            returning: Mutex::new(HashSet::new()),
            gate: tokio::sync::Mutex::new(()),
            transitions: ttx,
            term: Mutex::new(None),
        });
        let (rtx, rrx) = mpsc::channel(16);
        if let Some(a) = &shared.agents {
            a.set_heartbeat_hook(Arc::new(Hook(shared.clone())));
        }
        tokio::spawn(run(shared.clone(), rrx, trx));
        let task = tasks.map_or_else(
            || crate::background::Task::detached(PROBE_TASK, shared.cfg.heartbeat_interval),
            |t| t.register(PROBE_TASK, shared.cfg.heartbeat_interval),
        );
        tokio::spawn(probe_loop(shared.clone(), task));
        Ok(HaManager { shared, requests: rtx })
    }

    pub fn config(&self) -> &HaConfig {
        &self.shared.cfg
    }

    /// This manager's monotonic clock.
    pub fn now(&self) -> MonoInstant {
        self.shared.mono(Instant::now())
    }

    /// Whether this replica may answer agent heartbeats now: it leads and its engine is
    /// ready. Agent heartbeats that arrive elsewhere get Unavailable (retry another replica):
    /// a lease granted by a replica that does not lead would hide the node from the leader.
    pub fn heartbeat_gate(&self) -> Result<()> {
        if self.shared.leader.is_leader() && lock(&self.shared.engine).is_some() {
            return Ok(());
        }
        Err(
            Error::unavailable("this control plane is not the HA leader; retry (another replica leads)")
                .with_retry_after(1),
        )
    }

    /// The agents' heartbeat hook (installed by `start` when agents are given).
    pub fn on_heartbeat(&self, report: &HeartbeatReport, now: Instant) -> LeaseVerdict {
        self.shared.on_agent_heartbeat(report, now)
    }

    /// ManualFailover: the operator vouches that `node` (name or id) is powered off.
    pub async fn manual_failover(&self, node: &str, confirm_host_down: bool) -> Result<FailoverOutcome> {
        if !confirm_host_down {
            return Err(Error::precondition(
                "confirm_host_down must be set: only confirm when the host is powered off (lqx ha failover NODE --yes)",
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Failover {
                node: node.to_string(),
                confirm: confirm_host_down,
                reply,
            })
            .await
            .map_err(|_| Error::unavailable("the HA manager has stopped"))?;
        rx.await.map_err(|_| Error::unavailable("the HA manager has stopped"))?
    }

    /// Node names by id (for answers that name nodes).
    pub async fn node_names(&self) -> Result<HashMap<NodeId, String>> {
        Ok(self
            .shared
            .compute
            .store
            .all_nodes()
            .await?
            .into_iter()
            .map(|n| (n.id, n.name))
            .collect())
    }

    /// GetHAStatus: live on the leader, the leader's last check elsewhere.
    pub async fn status(&self) -> Result<HaStatusReport> {
        let sh = &self.shared;
        let row = sh.compute.store.leader_row().await?;
        let nodes = sh.compute.store.all_nodes().await?;
        let vms = sh.compute.store.all_vms().await?;
        let snap = ha_snapshot(&nodes, &vms);
        let mut report = if sh.leader.is_leader() && lock(&sh.engine).is_some() {
            match sh.build_status(Instant::now(), &nodes, &snap) {
                Some(mut r) => {
                    r.live = true;
                    r.last_check = sh.compute.store.ha_state_get(KEY_STATUS).await?.and_then(|s| {
                        serde_json::from_str::<HaStatusReport>(&s.value)
                            .ok()
                            .and_then(|r| r.last_check)
                    });
                    r
                }
                None => stored_status(sh).await?,
            }
        } else {
            stored_status(sh).await?
        };
        if row.is_held() {
            report.leader = row.holder;
            report.leader_epoch = row.epoch;
        }
        add_fencing(&mut report, &snap, |n| sh.compute.fencing_of(n));
        Ok(report)
    }
}

async fn stored_status(sh: &Shared) -> Result<HaStatusReport> {
    Ok(match sh.compute.store.ha_state_get(KEY_STATUS).await? {
        Some(s) => serde_json::from_str(&s.value).map_err(Error::internal)?,
        None => HaStatusReport {
            nodes: vec![],
            protected_vms: 0,
            cluster_protected: true,
            failover_paused: None,
            last_check: None,
            leader: String::new(),
            leader_epoch: 0,
            live: false,
            weakly_fenced: vec![],
        },
    })
}

struct Hook(Arc<Shared>);

impl HeartbeatHook for Hook {
    fn on_heartbeat(&self, report: &HeartbeatReport, now: Instant) -> LeaseVerdict {
        self.0.on_agent_heartbeat(report, now)
    }
}

fn mono_to_instant(origin: Instant, t: MonoInstant) -> Instant {
    origin + Duration::from_millis(t.as_millis())
}

impl Shared {
    fn mono(&self, t: Instant) -> MonoInstant {
        MonoInstant::from_duration(t.saturating_duration_since(self.origin))
    }

    fn on_agent_heartbeat(&self, report: &HeartbeatReport, now: Instant) -> LeaseVerdict {
        // A lease is granted only by the leader, checked now (not when the task last looked).
        if !self.leader.is_leader() {
            return LeaseVerdict::MustFence;
        }
        if lock(&self.returning).contains(&report.node) {
            return LeaseVerdict::MustFence;
        }
        let rr = ReturnReport {
            fenced_domains_gone: report.fenced_domains_gone,
            ha_domains_present: report.ha_domains_present,
        };
        match self.heartbeat(report.node, now, &rr) {
            Some(true) => LeaseVerdict::Renew,
            Some(false) | None => LeaseVerdict::MustFence,
        }
    }

    /// Feeds one heartbeat to the engine: Some(true) when it renews the lease, Some(false)
    /// when the node must fence, None when this replica has no engine.
    fn heartbeat(&self, node: NodeId, now: Instant, report: &ReturnReport) -> Option<bool> {
        let now = self.mono(now);
        let mut guard = lock(&self.engine);
        let engine = guard.as_mut()?;
        let outcome = match engine.heartbeat(node, now, report) {
            Ok(o) => o,
            Err(HaError::UnknownNode(_)) => {
                engine.add_node(node, now);
                return Some(true);
            }
            Err(e) => {
                warn!(node = %node, error = %e, "heartbeat refused");
                return Some(false);
            }
        };
        drop(guard);
        if let Some(t) = outcome.transition {
            let confirmed = t.cause == Cause::FenceConfirmed;
            if confirmed {
                // No lease until the node's return is persisted (a restart of the control
                // plane must not find it FAILED again while it runs VMs).
                lock(&self.returning).insert(node);
            }
            let _ = self.transitions.send(t);
            if confirmed {
                return Some(false);
            }
        }
        Some(matches!(outcome.verdict, Verdict::Renewed { .. }))
    }

    fn epoch(&self) -> Option<Epoch> {
        let term = lock(&self.term).clone()?;
        (self.leader.current().as_ref() == Some(&term)).then_some(term)
    }

    fn build_status(&self, now: Instant, nodes: &[Node], snap: &ClusterSnapshot) -> Option<HaStatusReport> {
        let view = {
            let guard = lock(&self.engine);
            guard.as_ref()?.status(self.mono(now), snap)
        };
        let names: HashMap<NodeId, &str> = nodes.iter().map(|n| (n.id, n.name.as_str())).collect();
        let mut per_node: HashMap<NodeId, u32> = HashMap::new();
        for v in snap.vms.iter().filter(|v| v.ha.enabled && v.running) {
            if let Some(n) = v.node {
                *per_node.entry(n).or_default() += 1;
            }
        }
        let mut out: Vec<NodeHaReport> = view
            .nodes
            .iter()
            .map(|s| NodeHaReport {
                node: s.node,
                name: names
                    .get(&s.node)
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| s.node.to_string()),
                health: s.health,
                missed_checks: s.missed_checks,
                lease_age_ms: s.lease_age.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                protected_vms: per_node.get(&s.node).copied().unwrap_or(0),
                fenced: s.fence.is_some() && s.health == NodeHealth::Failed,
                fencing: None,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Some(HaStatusReport {
            nodes: out,
            protected_vms: u32::try_from(view.protected_vms).unwrap_or(u32::MAX),
            cluster_protected: view.admission.protected,
            failover_paused: view.failover_paused,
            last_check: Some(Utc::now()),
            leader: String::new(),
            leader_epoch: 0,
            live: false,
            weakly_fenced: vec![],
        })
    }

    fn event(&self, kind: EventType, id: String, payload: serde_json::Value) {
        self.compute
            .events
            .publish(EventDraft::new(kind, ResourceType::Ha, id, Utc::now()).payload(payload));
    }

    /// Records an HA action: in the HA journal (a write fenced by the epoch, so a stale
    /// leader's action is refused) and then, once accepted, in the audit log under the
    /// system actor `system:ha`.
    async fn journal(&self, epoch: &Epoch, kind: &str, subject: &str, detail: &str) -> Result<()> {
        info!(target: "lqx::ha::audit", epoch = epoch.number, kind, subject, detail, "HA action");
        self.compute
            .store
            .ha_journal_append(epoch, kind, subject, detail)
            .await?;
        let resource_type = match kind.split('.').next() {
            Some("vm") => "vm",
            Some("node") | Some("failover") if subject != "cluster" => "node",
            Some("leader") => "control_plane",
            _ => "cluster",
        };
        let entry = crate::model::AuditEntry::by_system(
            Utc::now(),
            "ha",
            format!("ha/{kind}"),
            (resource_type, subject.to_string()),
            crate::model::AuditResult::Ok,
            format!("epoch {}: {detail}", epoch.number),
        );
        if let Err(e) = self.compute.store.insert_audit(&entry).await {
            tracing::error!(kind, subject, error = %e, "writing the audit entry of an HA action failed");
        }
        Ok(())
    }

    async fn persist(&self, epoch: &Epoch) -> Result<()> {
        let state = match lock(&self.engine).as_ref() {
            Some(e) => e.persisted(),
            None => return Err(Error::unavailable("not leading")),
        };
        let json = serde_json::to_string(&state).map_err(Error::internal)?;
        self.compute.store.ha_state_put(KEY_PERSISTED, &json, epoch).await
    }

    /// Restores the engine for a new term.
    async fn take_over(&self, epoch: &Epoch) -> Result<()> {
        let persisted: PersistedHa = match self.compute.store.ha_state_get(KEY_PERSISTED).await? {
            Some(row) => serde_json::from_str(&row.value).map_err(Error::internal)?,
            None => PersistedHa::default(),
        };
        let nodes = self.compute.store.all_nodes().await?;
        let now = self.mono(Instant::now());
        let mut engine = HaEngine::restore(self.cfg.clone(), now, &persisted)?;
        let live: HashSet<NodeId> = nodes.iter().map(|n| n.id).collect();
        for n in &nodes {
            if engine.health(n.id).is_none() {
                engine.add_node(n.id, now);
            }
        }
        for p in &persisted.nodes {
            if !live.contains(&p.node) {
                engine.remove_node(p.node);
            }
        }
        let failed: Vec<NodeId> = engine.fenced_nodes().keys().copied().collect();
        *lock(&self.engine) = Some(engine);
        *lock(&self.term) = Some(epoch.clone());
        lock(&self.returning).clear();
        self.journal(
            epoch,
            "leader.acquired",
            &epoch.holder,
            &format!("{} node(s), {} still failed", nodes.len(), failed.len()),
        )
        .await?;
        info!(
            epoch = epoch.number,
            nodes = nodes.len(),
            failed = failed.len(),
            "HA manager leads"
        );
        Ok(())
    }

    fn step_down(&self) {
        if lock(&self.engine).take().is_some() {
            info!("HA manager stopped: not the leader");
        }
        *lock(&self.term) = None;
    }

    /// Acts on one health change: node record, events, alerts, journal.
    async fn on_transition(&self, epoch: &Epoch, t: &Transition, names: &HashMap<NodeId, String>) -> Result<()> {
        let name = names.get(&t.node).cloned().unwrap_or_else(|| t.node.to_string());
        let id = t.node.to_string();
        self.compute.set_health(t.node, t.to.as_str());
        info!(node = %name, from = %t.from, to = %t.to, cause = %t.cause, "node health changed");
        let kind = match t.to {
            NodeHealth::Failed => EventType::Fenced,
            NodeHealth::Healthy if t.from != NodeHealth::Unknown => EventType::Recovered,
            _ => EventType::StateChanged,
        };
        self.event(
            kind,
            id.clone(),
            serde_json::json!({"node": id, "node_name": name, "from": t.from, "to": t.to, "cause": t.cause.to_string()}),
        );
        let key = |c: &str| AlertKey {
            source_type: AlertSourceType::Host,
            source_id: id.clone(),
            condition: c.into(),
        };
        match t.to {
            NodeHealth::Unreachable => {
                // The alert monitor owns `node.unreachable`; HA marks the node NotReady.
                let _ = self.compute.set_node_reachable(t.node, false).await;
            }
            NodeHealth::Failed => {
                self.alerts
                    .raise(alert::node_alert(
                        t.node,
                        &name,
                        AlertSeverity::Critical,
                        conditions::NODE_FAILED,
                        format!("Node {name} failed"),
                        format!(
                            "Node {name} was declared failed ({}); its HA VMs are restarted elsewhere",
                            t.cause
                        ),
                    ))
                    .await;
                let _ = self.compute.set_node_reachable(t.node, false).await;
                // Not `running` on a dead host: UNKNOWN with the reason until restarted or back.
                if let Err(e) = self.compute.mark_vms_lost(t.node, &name).await {
                    warn!(node = %name, error = %e, "could not mark the failed node's VMs");
                }
                if let Some(link) = self.agents.as_ref().and_then(|a| a.link(t.node)) {
                    link.forget_recorded();
                }
                self.journal(epoch, "node.failed", &name, &t.cause.to_string()).await?;
            }
            NodeHealth::Healthy => {
                self.alerts.resolve(key(conditions::NODE_FAILED)).await;
                if matches!(t.from, NodeHealth::Unreachable | NodeHealth::Failed) {
                    let _ = self.compute.set_node_reachable(t.node, true).await;
                }
                if t.cause == Cause::FenceConfirmed {
                    // The return is persisted before the node gets a lease again.
                    self.persist(epoch).await?;
                    lock(&self.returning).remove(&t.node);
                    self.journal(epoch, "node.returned", &name, "fenced domains confirmed gone")
                        .await?;
                }
            }
            NodeHealth::Unknown => {}
        }
        Ok(())
    }

    /// Acts on a tick's (or a manual failover's) report, in the order the engine requires:
    /// failures recorded before any VM moves, restarts committed one fenced write each, the
    /// targets started, then what could not move reported.
    async fn apply(&self, epoch: &Epoch, report: TickReport, nodes: &[Node]) -> Result<FailoverOutcome> {
        let names: HashMap<NodeId, String> = nodes.iter().map(|n| (n.id, n.name.clone())).collect();
        // 1. FAILED flags are written before any VM moves.
        self.record_failures(epoch, &report, &names).await?;
        self.announce_storm(epoch, &report).await?;
        // 2. Restarts in priority order, each one fenced write.
        let (committed, mut outcome) = self.commit_restarts(epoch, &report, &names).await?;
        // 3. The targets start them (concurrently; a remote target starts at its next heartbeat).
        self.start_committed(committed, &names);
        // 4. What could not move.
        self.report_unmoved(&report, &names).await;
        outcome.unplaced = not_placed(&report);
        Ok(outcome)
    }

    /// Writes the nodes' HA state and acts on each health transition; on a failure no
    /// restart of this report goes ahead.
    async fn record_failures(&self, epoch: &Epoch, report: &TickReport, names: &HashMap<NodeId, String>) -> Result<()> {
        if report.persist_nodes
            && let Err(e) = self.persist(epoch).await
        {
            self.abandon(report);
            return Err(e);
        }
        for t in &report.transitions {
            if let Err(e) = self.on_transition(epoch, t, names).await {
                self.abandon(report);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Raises or resolves the cluster alert of a failover storm when it starts or ends.
    async fn announce_storm(&self, epoch: &Epoch, report: &TickReport) -> Result<()> {
        if report.storm_changed {
            match &report.storm {
                Some(s) => {
                    let reason = s.reason();
                    self.alerts
                        .raise(alert::cluster_alert(
                            AlertSeverity::Critical,
                            COND_FAILOVER_PAUSED,
                            "HA failover paused",
                            reason.clone(),
                        ))
                        .await;
                    self.event(
                        EventType::StateChanged,
                        "cluster".into(),
                        serde_json::json!({"failover_paused": reason}),
                    );
                    self.journal(epoch, "failover.paused", "cluster", &reason).await?;
                }
                None => {
                    self.alerts
                        .resolve(AlertKey {
                            source_type: AlertSourceType::Cluster,
                            source_id: "cluster".into(),
                            condition: COND_FAILOVER_PAUSED.into(),
                        })
                        .await;
                    self.event(
                        EventType::Recovered,
                        "cluster".into(),
                        serde_json::json!({"failover_paused": null}),
                    );
                    self.journal(epoch, "failover.resumed", "cluster", "").await?;
                }
            }
        }

        Ok(())
    }

    /// Commits each planned restart (the VM's node set to its target, fenced by `epoch`),
    /// in priority order. Returns the committed ones and the placements (deferred ones
    /// included); a lost leadership abandons the rest and is returned as the error.
    async fn commit_restarts(
        &self,
        epoch: &Epoch,
        report: &TickReport,
        names: &HashMap<NodeId, String>,
    ) -> Result<(Vec<PlannedRestart>, FailoverOutcome)> {
        let name_of = |n: NodeId| names.get(&n).cloned().unwrap_or_else(|| n.to_string());
        let mut outcome = FailoverOutcome::default();
        let now = self.mono(Instant::now());
        let mut committed = Vec::new();
        let mut restarts = report.plan.restarts.iter();
        while let Some(r) = restarts.next() {
            match self.compute.failover_commit(r.vm, r.from, r.to, epoch).await {
                Ok(_) => {
                    if let Some(e) = lock(&self.engine).as_mut() {
                        e.restart_committed(r.vm, now);
                    }
                    if let Some(link) = self.agents.as_ref().and_then(|a| a.link(r.from)) {
                        link.forget(r.vm);
                    }
                    let detail = format!("{} -> {}", name_of(r.from), name_of(r.to));
                    if let Err(e) = self.journal(epoch, "vm.restarted", &r.vm_name, &detail).await {
                        warn!(vm = %r.vm_name, error = %e, "could not journal a committed restart");
                    }
                    outcome.placements.push(Placement {
                        vm: r.vm,
                        vm_name: r.vm_name.clone(),
                        from: r.from,
                        to: r.to,
                        deferred: false,
                    });
                    committed.push(r.clone());
                }
                Err(e) if e.kind == ErrorKind::FailedPrecondition && e.message.starts_with("not the leader") => {
                    if let Some(eng) = lock(&self.engine).as_mut() {
                        eng.restart_abandoned(r.vm);
                        for rest in restarts.by_ref() {
                            eng.restart_abandoned(rest.vm);
                        }
                    }
                    error!(vm = %r.vm_name, error = %e, "HA restart refused: not the leader");
                    return Err(e);
                }
                Err(e) => {
                    if let Some(eng) = lock(&self.engine).as_mut() {
                        eng.restart_abandoned(r.vm);
                    }
                    warn!(vm = %r.vm_name, error = %e, "HA restart not written; retried at the next check");
                    self.alerts
                        .raise(alert::vm_alert(
                            r.vm,
                            &r.vm_name,
                            AlertSeverity::Warning,
                            conditions::VM_HA_RESTART_FAILED,
                            format!("HA restart of {} on {} failed", r.vm_name, name_of(r.to)),
                            format!(
                                "Could not restart {} on {}: {e}; retried at the next check",
                                r.vm_name,
                                name_of(r.to)
                            ),
                        ))
                        .await;
                }
            }
        }
        if !committed.is_empty() {
            self.persist(epoch).await?;
        }
        for d in &report.plan.deferred {
            outcome.placements.push(Placement {
                vm: d.vm,
                vm_name: d.vm_name.clone(),
                from: d.from,
                to: d.to,
                deferred: true,
            });
        }

        Ok((committed, outcome))
    }

    /// Starts the committed restarts on their targets in the background, with an alert for
    /// each that runs again or fails to start.
    fn start_committed(&self, committed: Vec<PlannedRestart>, names: &HashMap<NodeId, String>) {
        if !committed.is_empty() {
            let compute = self.compute.clone();
            let alerts = self.alerts.clone();
            let names = names.clone();
            tokio::spawn(async move {
                let starts = committed.iter().map(|r| compute.failover_start(r.vm));
                let results = futures::future::join_all(starts).await;
                for (r, res) in committed.iter().zip(results) {
                    let to = names.get(&r.to).cloned().unwrap_or_else(|| r.to.to_string());
                    let key = AlertKey {
                        source_type: AlertSourceType::Vm,
                        source_id: r.vm.to_string(),
                        condition: conditions::VM_HA_RESTART_FAILED.into(),
                    };
                    match res {
                        Ok(_) => {
                            info!(vm = %r.vm_name, node = %to, "HA VM running again");
                            alerts.resolve(key).await;
                            alerts
                                .raise(alert::vm_alert(
                                    r.vm,
                                    &r.vm_name,
                                    AlertSeverity::Info,
                                    conditions::VM_HA_RESTARTED,
                                    format!("{} restarted by HA", r.vm_name),
                                    format!("{} runs again on {to}", r.vm_name),
                                ))
                                .await;
                        }
                        Err(e) => {
                            error!(vm = %r.vm_name, node = %to, error = %e, "HA restart failed to start");
                            alerts
                                .raise(alert::vm_alert(
                                    r.vm,
                                    &r.vm_name,
                                    AlertSeverity::Critical,
                                    conditions::VM_HA_RESTART_FAILED,
                                    format!("HA restart of {} on {to} failed", r.vm_name),
                                    format!("{} was moved to {to} but did not start: {e}", r.vm_name),
                                ))
                                .await;
                        }
                    }
                }
            });
        }
    }

    /// Alerts and events for VMs that fit nowhere or are held, and resolves those that no
    /// longer are.
    async fn report_unmoved(&self, report: &TickReport, names: &HashMap<NodeId, String>) {
        let name_of = |n: NodeId| names.get(&n).cloned().unwrap_or_else(|| n.to_string());
        for u in &report.new_unplaced {
            self.alerts
                .raise(alert::vm_alert(
                    u.vm,
                    &u.vm_name,
                    AlertSeverity::Critical,
                    conditions::VM_UNPLACEABLE,
                    format!("HA cannot restart {}", u.vm_name),
                    format!(
                        "{} of failed node {} fits on no healthy node: {}; retried when capacity appears",
                        u.vm_name,
                        name_of(u.from),
                        u.reason
                    ),
                ))
                .await;
            self.event(
                EventType::Failed,
                u.vm.to_string(),
                serde_json::json!({"vm": u.vm, "vm_name": u.vm_name, "unplaced": u.reason}),
            );
        }
        for h in &report.new_held {
            if matches!(h.reason, super::HoldReason::Storm(_)) {
                continue; // the cluster alert says why
            }
            self.alerts
                .raise(alert::vm_alert(
                    h.vm,
                    &h.vm_name,
                    AlertSeverity::Warning,
                    COND_HA_HELD,
                    format!("HA holds {}", h.vm_name),
                    format!("{} is not restarted: {}", h.vm_name, h.reason),
                ))
                .await;
        }
        for vm in &report.resolved {
            for c in [conditions::VM_UNPLACEABLE, COND_HA_HELD] {
                self.alerts
                    .resolve(AlertKey {
                        source_type: AlertSourceType::Vm,
                        source_id: vm.to_string(),
                        condition: c.into(),
                    })
                    .await;
            }
        }
    }

    fn abandon(&self, report: &TickReport) {
        if let Some(e) = lock(&self.engine).as_mut() {
            for r in &report.plan.restarts {
                e.restart_abandoned(r.vm);
            }
        }
    }

    /// One check: plan, act, write the status. Returns when to check again.
    async fn tick(&self, epoch: &Epoch) -> Result<Instant> {
        let _gate = self.gate.lock().await;
        let nodes = self.compute.store.all_nodes().await?;
        let vms = self.compute.store.all_vms().await?;
        let snap = ha_snapshot(&nodes, &vms);
        let started = Instant::now();
        let now = self.mono(started);
        let report = {
            let mut guard = lock(&self.engine);
            let Some(engine) = guard.as_mut() else {
                return Err(Error::unavailable("not leading"));
            };
            let live: HashSet<NodeId> = nodes.iter().map(|n| n.id).collect();
            for n in &nodes {
                if engine.health(n.id).is_none() {
                    engine.add_node(n.id, now);
                }
                // Hosts lqx powered off (or is powering on/off) are silent on purpose.
                engine.set_parked(n.id, n.power.is_parked(), now);
            }
            let gone: Vec<NodeId> = engine
                .tracker()
                .status(now)
                .iter()
                .map(|s| s.node)
                .filter(|n| !live.contains(n))
                .collect();
            for n in gone {
                engine.remove_node(n);
            }
            engine.tick(now, &snap)
        };
        let next = mono_to_instant(self.origin, report.next_wakeup);
        let planned = report.plan.restarts.len();
        self.apply(epoch, report, &nodes).await?;
        // Health shown by GetNode/ListNodes, and the status the other replicas show.
        let (nodes, snap) = if planned > 0 {
            let vms = self.compute.store.all_vms().await?;
            let snap = ha_snapshot(&nodes, &vms);
            (nodes, snap)
        } else {
            (nodes, snap)
        };
        if let Some(mut status) = self.build_status(Instant::now(), &nodes, &snap) {
            for n in &status.nodes {
                self.compute.set_health(n.node, n.health.as_str());
            }
            // Stored with the agents' fencing: the other replicas get no heartbeats to read it from.
            add_fencing(&mut status, &snap, |n| self.compute.fencing_of(n));
            let json = serde_json::to_string(&status).map_err(Error::internal)?;
            self.compute.store.ha_state_put(KEY_STATUS, &json, epoch).await?;
        }
        Ok(next.min(started + self.cfg.check_interval))
    }

    async fn manual(&self, epoch: &Epoch, node: &str, confirm: bool) -> Result<FailoverOutcome> {
        let _gate = self.gate.lock().await;
        let n = self.compute.store.resolve_node(node).await?;
        let nodes = self.compute.store.all_nodes().await?;
        let vms = self.compute.store.all_vms().await?;
        let snap = ha_snapshot(&nodes, &vms);
        let now = self.mono(Instant::now());
        let report = {
            let mut guard = lock(&self.engine);
            let engine = guard.as_mut().ok_or_else(|| Error::unavailable("not leading"))?;
            match engine.manual_failover(n.id, now, confirm, &snap) {
                Ok(r) => r,
                Err(HaError::ConfirmationRequired) => {
                    return Err(Error::precondition("confirm_host_down must be set"));
                }
                Err(e) => return Err(e.into()),
            }
        };
        info!(target: "lqx::ha::audit", node = %n.name, "manual failover: operator confirmed the host is down");
        self.journal(epoch, "failover.manual", &n.name, "operator confirmed the host is down")
            .await?;
        self.apply(epoch, report, &nodes).await
    }
}

/// Acts on heartbeat transitions and persists confirmed returns.
async fn drain_transitions(
    sh: &Shared,
    epoch: &Epoch,
    first: Transition,
    rx: &mut mpsc::UnboundedReceiver<Transition>,
) -> Result<()> {
    let _gate = sh.gate.lock().await;
    let names: HashMap<NodeId, String> = sh
        .compute
        .store
        .all_nodes()
        .await?
        .into_iter()
        .map(|n| (n.id, n.name))
        .collect();
    sh.on_transition(epoch, &first, &names).await?;
    while let Ok(t) = rx.try_recv() {
        sh.on_transition(epoch, &t, &names).await?;
    }
    Ok(())
}

fn is_not_leader(e: &Error) -> bool {
    e.kind == ErrorKind::FailedPrecondition && e.message.starts_with("not the leader")
}

async fn run(
    sh: Arc<Shared>,
    mut requests: mpsc::Receiver<Request>,
    mut transitions: mpsc::UnboundedReceiver<Transition>,
) {
    let mut leading: watch::Receiver<Option<Epoch>> = sh.leader.subscribe();
    // A term whose writes were refused: not used again even if the local belief lags.
    let mut refused: Option<Epoch> = None;
    loop {
        // Follow: wait for a term of our own.
        let epoch = loop {
            let current = sh.leader.current();
            if let Some(e) = current.filter(|e| Some(e) != refused.as_ref()) {
                break e;
            }
            tokio::select! {
                r = leading.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(sh.cfg.check_interval) => {}
                req = requests.recv() => match req {
                    Some(Request::Failover { reply, .. }) => {
                        let _ = reply.send(Err(Error::unavailable("this control plane is not the HA leader; retry").with_retry_after(1)));
                    }
                    None => return,
                },
                t = transitions.recv() => if t.is_none() { return },
            }
        };
        if let Err(e) = sh.take_over(&epoch).await {
            warn!(epoch = epoch.number, error = %e, "HA manager could not take over");
            sh.step_down();
            if is_not_leader(&e) {
                refused = Some(epoch);
            }
            tokio::time::sleep(sh.cfg.check_interval.min(Duration::from_secs(1))).await;
            continue;
        }
        let mut next = Instant::now();
        let result: Result<()> = loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {
                    match sh.tick(&epoch).await {
                        Ok(n) => next = n,
                        Err(e) if is_not_leader(&e) => break Err(e),
                        Err(e) => {
                            warn!(error = %e, "HA check failed; retrying");
                            next = Instant::now() + sh.cfg.check_interval.min(Duration::from_secs(1));
                        }
                    }
                }
                req = requests.recv() => match req {
                    Some(Request::Failover { node, confirm, reply }) => {
                        let r = sh.manual(&epoch, &node, confirm).await;
                        let stale = r.as_ref().err().is_some_and(is_not_leader);
                        let _ = reply.send(r);
                        if stale {
                            break Err(Error::precondition("not the leader"));
                        }
                    }
                    None => return,
                },
                t = transitions.recv() => match t {
                    Some(t) => {
                        if let Err(e) = drain_transitions(&sh, &epoch, t, &mut transitions).await {
                            if is_not_leader(&e) {
                                break Err(e);
                            }
                            warn!(error = %e, "could not act on a heartbeat transition");
                        }
                    }
                    None => return,
                },
                r = leading.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if sh.leader.current().as_ref() != Some(&epoch) {
                        break Ok(());
                    }
                }
            }
            if sh.epoch().is_none() {
                break Ok(());
            }
        };
        if let Err(e) = result {
            error!(epoch = epoch.number, error = %e, "leader-only write refused: this control plane is not the leader any more");
            refused = Some(epoch);
        }
        sh.step_down();
    }
}

/// Probes the in-process hosts every `heartbeat_interval`: a host that answers heartbeats.
async fn probe_loop(sh: Arc<Shared>, task: crate::background::Task) {
    let every = sh.cfg.heartbeat_interval;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if lock(&sh.engine).is_none() {
            continue;
        }
        let _ = task
            .run_with(probe(&sh, every), |n| format!("{n} in-process hosts answered"))
            .await;
    }
}

/// One probe of the in-process hosts; how many answered.
async fn probe(sh: &Arc<Shared>, every: std::time::Duration) -> Result<usize> {
    {
        let nodes = match sh.compute.store.all_nodes().await {
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "probe: cannot list nodes");
                return Err(e);
            }
        };
        let in_process: Vec<&Node> = nodes
            .iter()
            .filter(|n| !n.libvirt_uri.starts_with("agent://"))
            .filter(|n| sh.agents.as_ref().is_none_or(|a| a.link(n.id).is_none()))
            .filter(|n| sh.compute.hosts.contains(n.id))
            .collect();
        let probes = in_process.iter().map(|n| {
            let sh = sh.clone();
            let id = n.id;
            async move {
                let hv = sh.compute.hosts.get(id).ok()?;
                let ok = matches!(tokio::time::timeout(every, hv.node_info()).await, Ok(Ok(_)));
                ok.then_some(id)
            }
        });
        let alive: Vec<NodeId> = futures::future::join_all(probes).await.into_iter().flatten().collect();
        let answered = alive.len();
        for node in alive {
            let failed = lock(&sh.engine).as_ref().and_then(|e| e.health(node)) == Some(NodeHealth::Failed);
            if !failed {
                sh.heartbeat(node, Instant::now(), &ReturnReport::default());
                continue;
            }
            // A FAILED in-process host answers again: fence it ourselves, then let it report.
            let _gate = sh.gate.lock().await;
            let report = match sh.compute.fence_in_process(node).await {
                Ok(f) => {
                    if f.destroyed > 0 {
                        info!(node = %node, destroyed = f.destroyed, "fenced a returning in-process host");
                    }
                    ReturnReport {
                        fenced_domains_gone: f.remaining == 0,
                        ha_domains_present: f.remaining,
                    }
                }
                Err(e) => {
                    warn!(node = %node, error = %e, "could not fence a returning in-process host");
                    continue;
                }
            };
            sh.heartbeat(node, Instant::now(), &report);
        }
        Ok(answered)
    }
}

/// The VMs of a report that are not restarted (unplaceable or held), with why.
fn not_placed(report: &TickReport) -> Vec<NotPlaced> {
    let mut unplaced = Vec::new();
    for u in &report.plan.unplaced {
        unplaced.push(NotPlaced {
            vm: u.vm,
            vm_name: u.vm_name.clone(),
            reason: u.reason.clone(),
        });
    }
    for h in &report.plan.held {
        unplaced.push(NotPlaced {
            vm: h.vm,
            vm_name: h.vm_name.clone(),
            reason: h.reason.to_string(),
        });
    }
    unplaced
}

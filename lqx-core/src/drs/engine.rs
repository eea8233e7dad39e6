//! The DRS engine: the thin shell around the pure planner that runs it, keeps what it
//! needs between runs, persists recommendations and applies them.
//!
//! The rule, in plain words:
//! - **When.** Every `interval`, and on demand (RunAnalysis), only while DRS is enabled and
//!   this control plane is the leader. Between runs the engine samples measured usage every
//!   `sample_interval` into an exponentially weighted average (`smoothing_half_life`), so a
//!   burst does not trigger moves. A node whose set of VMs changed (a migration, by DRS or
//!   by hand) starts its average afresh, so the move it made is seen at once, and the
//!   change is recorded as a migration (no ping-pong).
//! - **One open recommendation per VM.** Open means PENDING or APPROVED. A planned move that
//!   matches the open one of its VM (same source and target) refreshes it (priority,
//!   reason, impact) instead of adding another; a PENDING one for a different move is
//!   EXPIRED as superseded; an APPROVED one is an operator's decision and is kept (the plan's
//!   move for that VM is skipped). A PENDING recommendation whose move the plan no longer
//!   makes is EXPIRED. No move is recommended for a VM with one APPLYING.
//! - **Automation.** manual: everything stays PENDING; partial: mandatory moves
//!   (evacuation, broken placement policy) are applied at once; full: every move is. The
//!   engine applies through the same path as ApplyRecommendation, in plan order (mandatory
//!   first, hottest node first, room made before it is used) on every host, and up to
//!   `max_parallel_migrations` (8) at once on disjoint hosts: a move waits while one of its
//!   hosts is migrating or has an earlier move still to make.
//! - **Applying** revalidates against the cluster as it is now: the VM must still exist, be
//!   on the source and (unless the move is mandatory) run; the target must accept VMs and
//!   still fit it (placement on a fresh snapshot, the VM's own allocation excluded).
//!   Otherwise the recommendation is FAILED with the reason and the caller gets
//!   failed_precondition. One exception: when the target has no room yet and an open
//!   recommendation moves a VM off it (room made for this one), the caller gets
//!   failed_precondition naming that recommendation, and this one stays open. Then the
//!   status moves PENDING/APPROVED -> APPLYING by a
//!   compare-and-swap in the store, so of two callers exactly one migrates; the other gets
//!   failed_precondition ("already applying"). A retry with the same `request_id` gets the
//!   recommendation as it is now. The migration ends APPLIED or FAILED (with the reason).
//! - **Clean-up (24 h).** A recommendation still open 24 h after it was made is EXPIRED
//!   (applying it gives failed_precondition from then on); a finished one (APPLIED,
//!   REJECTED, FAILED, EXPIRED) is deleted 24 h after its last change. So the list shows
//!   what happened during the last day and nothing older than two.
//! - **Config.** The file's `drs:` section is the start value; after the first
//!   UpdateDRSConfig the stored config (kv `drs.config`) wins, also over the file after a
//!   restart. The hysteresis state and recent migrations are stored after every run (kv
//!   `drs.state`) and read back before every run, so a restart, or another replica taking
//!   over as leader, keeps the hold counts, the no-ping-pong window and a relief carried
//!   over rounds (and the leader sees an UpdateDRSConfig taken by another replica).
//! - **Alerts** (`drs::alerts`): a hot node DRS cannot relieve, a VM that must move but
//!   fits nowhere, and a failed DRS migration raise an alert; the first two resolve on the
//!   first run where they no longer hold, the last when a later DRS migration of the VM
//!   succeeds.
//! - Every step is logged (`tracing`, target `lqx::drs`) and published as a `drs` event
//!   (CREATED, UPDATED (refreshed or APPLYING), APPROVED, REJECTED, APPLIED, FAILED,
//!   EXPIRED; and STATE_CHANGED for the engine after each run).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::alerts::{self, Alerted};
use super::dpm::{self, DpmPlan, DpmState};
use super::live;
use super::{DrsPlan, DrsState, MigrationHistory, UsageSmoother, plan};
use crate::alert::AlertSink;
use crate::compute::Compute;
use crate::compute::standby::WakeOutcome;
use crate::model::{
    AuditEntry, AuditResult, AutomationLevel, DrsConfig, DrsRecommendation, EventDraft, EventType, NodeId, ProjectId,
    RecommendationId, RecommendationStatus as St, RecommendationType, ResourceType, VmId, VmState,
};
use crate::placement::{ClusterSnapshot, PlacementRequest, place};
use crate::power::{NodePower, PowerState};
use crate::store::{RecommendationPage, Store};
use crate::{Error, ErrorKind, Result};

/// Where the engine reads the time. The system clock in production; tests inject one.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The kv key of the stored config (written by UpdateDRSConfig).
pub const CONFIG_KEY: &str = "drs.config";
/// The kv key of the hysteresis state, recent migrations and last run.
pub const STATE_KEY: &str = "drs.state";
/// Who the engine names as approver/applier of what it applies itself.
pub const ENGINE_ACTOR: &str = "drs";

const LOG: &str = "lqx::drs";
/// The name of the DRS loop among the background tasks.
pub const TASK: &str = "drs";

/// Tuning of the engine (the planner's tuning is the `DrsConfig`).
#[derive(Clone)]
pub struct EngineOptions {
    pub clock: Clock,
    /// Leadership: the engine runs only while this reads true. `None`: always the leader.
    pub leader: Option<watch::Receiver<bool>>,
    /// Half-life of the usage average.
    pub smoothing_half_life: Duration,
    /// How often usage is sampled between runs.
    pub sample_interval: Duration,
    /// Age at which open recommendations expire and finished ones are deleted.
    pub retention: Duration,
    /// Where the engine's alerts go (see `drs::alerts`); none: only logs and events.
    pub alerts: Option<Arc<dyn AlertSink>>,
    /// Migrations automation runs at once (each on hosts no other one touches).
    pub max_parallel_migrations: usize,
    /// Host power for DPM. None: power recommendations are still made and shown, but applying
    /// one fails, naming the node.
    pub power: Option<Arc<dyn NodePower>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            clock: Arc::new(Utc::now),
            leader: None,
            smoothing_half_life: Duration::from_secs(120),
            sample_interval: Duration::from_secs(30),
            retention: Duration::from_secs(24 * 3600),
            alerts: None,
            max_parallel_migrations: 8,
            power: None,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub at: DateTime<Utc>,
    pub imbalance_before: f64,
    pub imbalance_after: f64,
    /// Moves in the plan.
    pub moves: usize,
    /// Recommendations created, refreshed (already open for the same move) and expired.
    pub created: usize,
    pub kept: usize,
    pub expired: usize,
    /// Applied automatically (automation partial/full), and failed doing so.
    pub applied: usize,
    pub failed: usize,
    /// VMs that must move but fit nowhere.
    pub unmovable: usize,
    /// Steps of a relief made over several rounds still to come, and the nodes it relieves.
    #[serde(default)]
    pub staged_steps_left: usize,
    #[serde(default)]
    pub staged_relieves: Vec<String>,
    /// Hot nodes DRS found no relief for (alerted as `drs.node_unrelieved`).
    #[serde(default)]
    pub unrelieved: Vec<String>,
    /// Running VMs left in place because they cannot move live ("vm on node: reason"),
    /// alerted as `drs.vm_not_live_movable`.
    #[serde(default)]
    pub not_live_movable: Vec<String>,
    /// With no move: why (hysteresis hold, nothing over threshold, ...).
    #[serde(default)]
    pub why_no_moves: Option<String>,
    /// DPM (when enabled): what it planned, or why it powers nothing off.
    #[serde(default)]
    pub dpm: Option<String>,
}

impl RunSummary {
    /// One line for status displays.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} move(s) planned: {} new, {} kept, {} expired; imbalance {:.2} -> {:.2}",
            self.moves, self.created, self.kept, self.expired, self.imbalance_before, self.imbalance_after
        );
        if self.applied + self.failed > 0 {
            s.push_str(&format!("; applied {}, failed {}", self.applied, self.failed));
        }
        if self.unmovable > 0 {
            s.push_str(&format!("; {} VM(s) must move but fit nowhere", self.unmovable));
        }
        if self.staged_steps_left > 0 {
            s.push_str(&format!(
                "; relief of {} goes on over the next rounds ({} more move(s))",
                self.staged_relieves.join(", "),
                self.staged_steps_left
            ));
        }
        if !self.unrelieved.is_empty() {
            s.push_str(&format!(
                "; {} stay(s) hot: no relief found",
                self.unrelieved.join(", ")
            ));
        }
        if !self.not_live_movable.is_empty() {
            s.push_str(&format!(
                "; {} running VM(s) cannot move live and stay",
                self.not_live_movable.len()
            ));
        }
        if let Some(d) = &self.dpm {
            s.push_str(&format!("; DPM: {d}"));
        }
        s
    }
}

/// The answer of a run: the summary, the recommendations of this plan as they are after
/// the run (new and kept, with the status automation left them in), and the plan itself.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub summary: RunSummary,
    pub recommendations: Vec<DrsRecommendation>,
    pub plan: DrsPlan,
}

/// GetDRSStatus.
#[derive(Debug, Clone, PartialEq)]
pub struct DrsStatusReport {
    pub config: DrsConfig,
    pub last_run: Option<RunSummary>,
    pub pending: u32,
    pub approved: u32,
    pub applying: u32,
    /// The imbalance now (smoothed usage, placement as it is), so a migration shows at once.
    pub current_imbalance: Option<f64>,
}

impl DrsStatusReport {
    /// The imbalance now, or the one the last run saw (0 before the first run).
    pub fn imbalance(&self) -> f64 {
        self.current_imbalance
            .unwrap_or_else(|| self.last_run.as_ref().map_or(0.0, |r| r.imbalance_before))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    state: DrsState,
    history: MigrationHistory,
    last_run: Option<RunSummary>,
    /// The plan alerts left open (resolved by whichever replica runs next).
    #[serde(default)]
    alerted: Alerted,
    #[serde(default)]
    dpm: DpmState,
}

struct Memory {
    smoother: UsageSmoother,
    state: DrsState,
    history: MigrationHistory,
    /// Where each VM was at the last sample.
    placement: HashMap<VmId, NodeId>,
    last_run: Option<RunSummary>,
    alerted: Alerted,
    dpm: DpmState,
}

/// The note on an APPLYING recommendation whose migration was interrupted after the
/// transfer: recovery decides whether the move happened, and a later run settles it.
pub const AWAITING_RECOVERY: &str = "awaiting recovery: the migration was interrupted after the transfer";

struct Inner {
    compute: Compute,
    opts: EngineOptions,
    config: RwLock<DrsConfig>,
    memory: Mutex<Memory>,
    /// Serializes runs (the loop and RunAnalysis).
    run_lock: tokio::sync::Mutex<()>,
    /// Wakes the loop when the config changes.
    wake: Notify,
    /// Recommendations this process is migrating now (not to be settled from outside).
    migrating: Mutex<HashSet<RecommendationId>>,
}

/// The DRS engine. Cheap to clone.
#[derive(Clone)]
pub struct DrsEngine {
    inner: Arc<Inner>,
}

impl DrsEngine {
    /// The engine over `compute`, with `file_config` unless a config was stored by
    /// UpdateDRSConfig, and the hysteresis state and recent migrations of the last run.
    pub async fn open(compute: Compute, file_config: DrsConfig, opts: EngineOptions) -> Result<DrsEngine> {
        let config = match compute.store.kv_get(CONFIG_KEY).await? {
            Some((v, _)) => match serde_json::from_str::<DrsConfig>(&v) {
                Ok(c) if c.validate().is_ok() => c,
                _ => {
                    tracing::warn!(target: LOG, "stored DRS config is unreadable; using the file's");
                    file_config
                }
            },
            None => file_config,
        };
        config.validate()?;
        let persisted: Persisted = match compute.store.kv_get(STATE_KEY).await? {
            Some((v, _)) => serde_json::from_str(&v).unwrap_or_else(|e| {
                tracing::warn!(target: LOG, error = %e, "stored DRS state is unreadable; starting afresh");
                Persisted::default()
            }),
            None => Persisted::default(),
        };
        let memory = Memory {
            smoother: UsageSmoother::new(opts.smoothing_half_life),
            state: persisted.state,
            history: persisted.history,
            placement: HashMap::new(),
            last_run: persisted.last_run,
            alerted: persisted.alerted,
            dpm: persisted.dpm,
        };
        let engine = DrsEngine {
            inner: Arc::new(Inner {
                compute,
                opts,
                config: RwLock::new(config),
                memory: Mutex::new(memory),
                run_lock: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                migrating: Mutex::default(),
            }),
        };
        engine.recover_interrupted(true).await?;
        engine.wake_dpm_on_standby_demand();
        Ok(engine)
    }

    /// A create or start that fits only on a host in standby runs DPM at once (it plans
    /// POWER_ON for that host; see `compute::standby`). Holds the engine weakly.
    fn wake_dpm_on_standby_demand(&self) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.compute.standby.set_waker(move |_| {
            let Some(inner) = weak.upgrade() else {
                return WakeOutcome::NotManaged;
            };
            let engine = DrsEngine { inner };
            let config = engine.config();
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return WakeOutcome::NotManaged;
            };
            if !config.enabled || !config.dpm.enabled {
                return WakeOutcome::NotManaged;
            }
            if !engine.is_leader() {
                return WakeOutcome::NotLeader;
            }
            rt.spawn(async move {
                if let Err(e) = engine.run_once().await {
                    tracing::warn!(target: LOG, error = %e, "DRS run for a placement on a standby host failed");
                }
            });
            match config.dpm.automation_level {
                AutomationLevel::Manual => WakeOutcome::Recommended,
                _ => WakeOutcome::PoweringOn,
            }
        });
    }

    /// (host, VM) for the placements waiting on a host in standby; demands for hosts now on
    /// are dropped.
    fn standby_demand(&self, power: &HashMap<NodeId, PowerState>) -> Vec<(NodeId, String)> {
        let demand = &self.inner.compute.standby;
        for (id, p) in power {
            if *p == PowerState::On {
                demand.clear(*id);
            }
        }
        demand.current().into_iter().map(|d| (d.node, d.vm_name)).collect()
    }

    /// Settles recommendations left APPLYING whose migration no one runs any more (a control
    /// plane stopped mid-migration, or a step after the transfer failed and left the
    /// operation to recovery): APPLIED when the VM did reach the target, FAILED otherwise, so
    /// the VM can get new recommendations. One whose migration operation is still recorded
    /// stays APPLYING until recovery has finished or undone it. Returns how many it settled.
    ///
    /// At start-up (`all`) every such recommendation is settled; later runs settle only
    /// those whose applier left them to recovery ([`AWAITING_RECOVERY`]), never one another
    /// replica is still applying.
    async fn recover_interrupted(&self, all: bool) -> Result<usize> {
        let now = self.now();
        let mut settled = 0;
        for mut r in self.store().recommendations_with_status(&[St::Applying]).await? {
            if r.recommendation_type != RecommendationType::Migrate
                || (!all && r.failure_reason.as_deref() != Some(AWAITING_RECOVERY))
                || self.migrating().contains(&r.id)
                || self
                    .store()
                    .op_for_vm(r.vm_id, crate::saga::OpKind::MigrateVm)
                    .await?
                    .is_some()
            {
                continue;
            }
            let on_target = self
                .store()
                .get_vm(r.vm_id)
                .await
                .ok()
                .and_then(|vm| vm.status.node_id)
                .is_some_and(|n| n == r.target_node_id);
            let kind = if on_target {
                r.status = St::Applied;
                r.applied_at = Some(now);
                r.failure_reason = None;
                EventType::Applied
            } else {
                r.status = St::Failed;
                r.failure_reason = Some(
                    "interrupted: the migration did not complete (the control plane stopped, or recovery undid it)"
                        .into(),
                );
                EventType::Failed
            };
            tracing::warn!(target: LOG, id = %r.id, vm = %r.vm_name, status = ?r.status, "settled an interrupted DRS recommendation");
            if self.store().update_recommendation_if(&r, &[St::Applying], now).await? {
                self.publish(kind, &r, now);
                settled += 1;
            }
        }
        Ok(settled)
    }

    fn migrating(&self) -> std::sync::MutexGuard<'_, HashSet<RecommendationId>> {
        self.inner.migrating.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> &Store {
        &self.inner.compute.store
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.opts.clock)()
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_leader(&self) -> bool {
        self.inner.opts.leader.as_ref().is_none_or(|l| *l.borrow())
    }

    pub fn config(&self) -> DrsConfig {
        self.inner.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Validates, stores and applies a new config; the loop picks up a new interval at once.
    pub async fn update_config(&self, config: DrsConfig) -> Result<DrsConfig> {
        config.validate()?;
        let text = serde_json::to_string(&config).map_err(Error::internal)?;
        self.store().kv_put(CONFIG_KEY, &text).await?;
        *self.inner.config.write().unwrap_or_else(|p| p.into_inner()) = config.clone();
        self.inner.wake.notify_one();
        tracing::info!(target: LOG, enabled = config.enabled, automation = config.automation_level.as_str(),
            interval = ?config.interval, "DRS config updated");
        self.publish_engine(EventType::Updated, serde_json::to_value(&config).unwrap_or_default());
        Ok(config)
    }

    // ---- reading -------------------------------------------------------------------------

    pub async fn get(&self, id: RecommendationId) -> Result<DrsRecommendation> {
        self.store()
            .get_recommendation(id)
            .await?
            .ok_or_else(|| Error::not_found("recommendation", id))
    }

    pub async fn list(&self, status: Option<St>, page_size: u32, page_token: &str) -> Result<RecommendationPage> {
        self.store().list_recommendations(status, page_size, page_token).await
    }

    pub async fn status(&self) -> Result<DrsStatusReport> {
        let open = self
            .store()
            .recommendations_with_status(&[St::Pending, St::Approved, St::Applying])
            .await?;
        let count = |s: St| open.iter().filter(|r| r.status == s).count() as u32;
        let current_imbalance = match self.inner.compute.snapshot().await {
            Ok(mut snap) => {
                self.memory().smoother.apply(&mut snap);
                Some(super::measure(&snap, &self.config(), self.now()).imbalance)
            }
            Err(e) => {
                tracing::debug!(target: LOG, error = %e, "status: no snapshot, showing the last run's imbalance");
                None
            }
        };
        Ok(DrsStatusReport {
            current_imbalance,
            config: self.config(),
            last_run: self.memory().last_run.clone(),
            pending: count(St::Pending),
            approved: count(St::Approved),
            applying: count(St::Applying),
        })
    }

    // ---- the loop ------------------------------------------------------------------------

    /// Runs the engine until the task is dropped: samples usage every `sample_interval`
    /// and plans every `interval` (the first run one interval after start), while enabled
    /// and the leader. Errors of one run are logged and the next run goes on.
    pub async fn run_loop(self) {
        let task = crate::background::Task::detached(TASK, self.config().interval);
        self.run_loop_as(task).await
    }

    /// [`DrsEngine::run_loop`], each run recorded as the background task `task`.
    pub async fn run_loop_as(self, task: crate::background::Task) {
        use tokio::time::{Instant, sleep_until};
        let mut next_run = Instant::now() + self.config().interval;
        loop {
            let next_sample = Instant::now() + self.inner.opts.sample_interval;
            tokio::select! {
                _ = sleep_until(next_run.min(next_sample)) => {}
                _ = self.inner.wake.notified() => {
                    next_run = Instant::now() + self.config().interval;
                    continue;
                }
            }
            if !self.config().enabled || !self.is_leader() {
                if Instant::now() >= next_run {
                    next_run = Instant::now() + self.config().interval;
                }
                continue;
            }
            if Instant::now() >= next_run {
                task.set_period(self.config().interval);
                if let Err(e) = task.run(self.run_once()).await {
                    tracing::warn!(target: LOG, error = %e, "DRS run failed");
                }
                next_run = Instant::now() + self.config().interval;
            } else if let Err(e) = self.sample().await {
                tracing::debug!(target: LOG, error = %e, "DRS usage sample failed");
            }
        }
    }

    /// Spawns [`DrsEngine::run_loop`] on the current runtime.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().run_loop())
    }

    /// [`DrsEngine::spawn`], registered in `tasks` as `drs`.
    pub fn spawn_in(&self, tasks: &crate::background::BackgroundTasks) -> tokio::task::JoinHandle<()> {
        let task = tasks.register(TASK, self.config().interval);
        tokio::spawn(self.clone().run_loop_as(task))
    }

    /// Feeds the current measured usage into the averages (and notes moved VMs).
    pub async fn sample(&self) -> Result<()> {
        let snap = self.inner.compute.snapshot().await?;
        let now = self.now();
        self.observe(&snap, now);
        Ok(())
    }

    fn observe(&self, snap: &ClusterSnapshot, now: DateTime<Utc>) {
        let mut m = self.memory();
        let mut changed: BTreeSet<NodeId> = BTreeSet::new();
        for v in &snap.vms {
            let Some(node) = v.node else { continue };
            match m.placement.get(&v.id).copied() {
                Some(prev) if prev != node => {
                    changed.insert(prev);
                    changed.insert(node);
                    let known = m
                        .history
                        .records
                        .iter()
                        .rev()
                        .find(|r| r.vm == v.id)
                        .is_some_and(|r| r.target == node);
                    if !known {
                        m.history.record(v.id, prev, node, now);
                    }
                }
                _ => {}
            }
        }
        // Nodes whose VMs changed start their averages afresh; forgetting a node is done
        // through `retain` with a snapshot that lacks it.
        if !changed.is_empty() {
            let keep = ClusterSnapshot {
                nodes: snap
                    .nodes
                    .iter()
                    .filter(|n| !changed.contains(&n.id))
                    .cloned()
                    .collect(),
                vms: snap.vms.clone(),
            };
            m.smoother.retain(&keep);
        }
        m.smoother.retain(snap);
        for n in &snap.nodes {
            if let Some(u) = n.usage {
                m.smoother.observe_node(n.id, now, u.cpu_percent, u.memory_used_mib);
            }
        }
        for v in &snap.vms {
            if let Some(u) = v.usage {
                m.smoother.observe_vm(v.id, now, u.cpu_percent, u.memory_used_mib);
            }
        }
        m.placement = snap.vms.iter().filter_map(|v| v.node.map(|n| (v.id, n))).collect();
    }

    // ---- a run ---------------------------------------------------------------------------

    /// One analysis now (RunAnalysis and the loop): plan, persist, automate, clean up.
    pub async fn run_once(&self) -> Result<RunReport> {
        let _run = self.inner.run_lock.lock().await;
        self.reload_shared().await?;
        let mut config = self.config();
        if !config.enabled {
            return Err(Error::precondition("DRS is disabled; enable it with UpdateDRSConfig"));
        }
        // The per-host migration limit is shared with maintenance and manual moves: a plan
        // beyond it would only see its moves refused.
        let shared = u32::try_from(self.inner.compute.migrations.max_per_host()).unwrap_or(u32::MAX);
        config.max_concurrent_migrations_per_host = config.max_concurrent_migrations_per_host.min(shared);
        if !self.is_leader() {
            return Err(Error::unavailable(
                "this control plane is not the leader; DRS runs on the leader",
            ));
        }
        // Recommendations left APPLYING by an interrupted migration, once it is settled.
        self.recover_interrupted(false).await?;
        let now = self.now();
        let mut snap = self.inner.compute.snapshot().await?;
        self.observe(&snap, now);
        // Running VMs move live or stay: never a move that stops a guest.
        let facts = live::host_facts(&self.inner.compute, &snap).await;
        let live_blocked = live::restrict(&mut snap, &facts, &self.inner.compute.guest_cpu());
        for b in &live_blocked {
            tracing::warn!(target: LOG, vm = %b.vm_name, node = %b.node_name, reason = %b.reason, "running VM cannot move live; DRS leaves it");
        }
        // DPM: hosts in standby, and hosts being emptied for it, take no VM from DRS.
        let open_power: Vec<DrsRecommendation> = self
            .store()
            .recommendations_with_status(&[St::Pending, St::Approved, St::Applying])
            .await?
            .into_iter()
            .filter(|r| r.recommendation_type != RecommendationType::Migrate)
            .collect();
        let power = if config.dpm.enabled {
            self.power_states(&snap).await
        } else {
            HashMap::new()
        };
        let closing: HashSet<NodeId> = open_power
            .iter()
            .filter(|r| r.recommendation_type == RecommendationType::PowerOff)
            .map(|r| r.source_node_id)
            .collect();
        let mut unschedulable: Vec<NodeId> = Vec::new();
        for n in &mut snap.nodes {
            let standby = matches!(power.get(&n.id), Some(PowerState::Standby | PowerState::PoweringOff));
            if n.schedulable && (standby || closing.contains(&n.id)) {
                n.schedulable = false;
                if !standby {
                    unschedulable.push(n.id);
                }
            }
        }
        let (mut plan, dpm_plan) = {
            let mut m = self.memory();
            m.smoother.apply(&mut snap);
            let keep = config.recent_migration_window.max(Duration::from_secs(60));
            m.history.prune(now, keep);
            let p = plan(&snap, &config, &m.state, &m.history, now);
            m.state = p.state.clone();
            let d = config.dpm.enabled.then(|| {
                // DPM sees the cluster as this plan leaves it; a host being emptied is
                // planned again (it is still the emptiest).
                let mut after = snap.clone();
                p.apply(&mut after);
                for n in &mut after.nodes {
                    if unschedulable.contains(&n.id) {
                        n.schedulable = true;
                    }
                }
                let must: Vec<VmId> = p.unmovable.iter().map(|u| u.vm).collect();
                let d = dpm::plan(&after, &config, &power, &m.dpm, &must, &self.standby_demand(&power));
                m.dpm = d.state.clone();
                d
            });
            (p, d)
        };
        let evacuating: HashSet<VmId> = dpm_plan
            .as_ref()
            .map_or_else(HashSet::new, |d| d.evacuations.iter().map(|m| m.vm).collect());
        if let Some(d) = &dpm_plan {
            plan.moves.extend(d.evacuations.iter().cloned());
        }

        let mut summary = RunSummary {
            at: now,
            imbalance_before: plan.before.imbalance,
            imbalance_after: plan.after.imbalance,
            moves: plan.moves.len(),
            created: 0,
            kept: 0,
            expired: 0,
            applied: 0,
            failed: 0,
            unmovable: plan.unmovable.len(),
            staged_steps_left: plan.state.staged.as_ref().map_or(0, |s| s.steps.len()),
            staged_relieves: plan.state.staged.as_ref().map_or_else(Vec::new, |s| {
                s.relieves
                    .iter()
                    .map(|id| snap.node(*id).map_or_else(|| id.to_string(), |n| n.name.clone()))
                    .collect()
            }),
            unrelieved: plan.unrelieved.iter().map(|n| n.name.clone()).collect(),
            not_live_movable: live_blocked.iter().map(live::LiveBlocked::describe).collect(),
            why_no_moves: super::why::why_no_moves(&plan, &config, |id| {
                snap.node(id).map_or_else(|| id.to_string(), |n| n.name.clone())
            }),
            dpm: dpm_plan.as_ref().map(describe_dpm),
        };
        for u in &plan.unmovable {
            tracing::warn!(target: LOG, vm = %u.vm_name, node = %u.node_name, reason = %u.reason, "VM must move but fits nowhere");
        }
        for n in &plan.unrelieved {
            tracing::warn!(target: LOG, node = %n.name, cpu = n.cpu_percent, memory = n.memory_percent, "hot node DRS cannot relieve");
        }
        let changes = {
            let mut m = self.memory();
            let mut changes = alerts::plan_alerts(&plan, &config, &m.alerted);
            let (raise, resolve, open) = live::alerts(&live_blocked, &m.alerted.not_live);
            changes.raise.extend(raise);
            changes.resolve.extend(resolve);
            changes.open.not_live = open;
            m.alerted = changes.open.clone();
            changes
        };
        if let Some(sink) = &self.inner.opts.alerts {
            for d in changes.raise {
                sink.raise(d).await;
            }
            for k in changes.resolve {
                sink.resolve(k).await;
            }
        }

        // Reconcile the plan with the open recommendations (the rule: `drs::reconcile`).
        let open = self
            .store()
            .recommendations_with_status(&[St::Pending, St::Approved, St::Applying])
            .await?;
        let decided = super::reconcile::reconcile(&plan.moves, open, now, RecommendationId::new);
        let mut ours = self.write_reconciled(decided, &mut summary, now).await?;

        let power_recs = match &dpm_plan {
            Some(d) => self.reconcile_power(d, open_power, &mut summary, now).await?,
            None => Vec::new(),
        };
        let automated = |r: &DrsRecommendation, level: AutomationLevel| match level {
            AutomationLevel::Manual => false,
            AutomationLevel::Partial => r.mandatory,
            AutomationLevel::Full => true,
        };
        // Power-on first: capacity comes before the moves that may need it.
        for r in power_recs.iter().filter(|r| {
            r.recommendation_type == RecommendationType::PowerOn && automated(r, config.dpm.automation_level)
        }) {
            self.apply_power_automatically(r.id, config.dpm.automation_level, &mut summary)
                .await?;
        }
        // Automation, in plan order: mandatory moves first, then the hottest node's relief,
        // and a move that makes room always before the move that uses it (sorting by
        // priority alone would run a relief before the room for it is there). A move that
        // empties a host for standby follows DPM's automation level.
        let pending: Vec<(RecommendationId, NodeId, NodeId)> = ours
            .iter()
            .filter(|r| r.status == St::Pending || r.status == St::Approved)
            .filter(|r| {
                if evacuating.contains(&r.vm_id) {
                    config.dpm.automation_level == AutomationLevel::Full
                } else {
                    automated(r, config.automation_level)
                }
            })
            .map(|r| (r.id, r.source_node_id, r.target_node_id))
            .collect();
        self.apply_automatically(pending, config.automation_level, &mut summary)
            .await?;
        // Then standby, for each host its moves emptied.
        for r in power_recs.iter().filter(|r| {
            r.recommendation_type == RecommendationType::PowerOff && automated(r, config.dpm.automation_level)
        }) {
            self.apply_power_automatically(r.id, config.dpm.automation_level, &mut summary)
                .await?;
        }
        ours.extend(power_recs);

        summary.expired += self.cleanup_at(now).await?;

        // The recommendations of this plan, as they are now.
        let mut recommendations = Vec::with_capacity(ours.len());
        for r in &ours {
            recommendations.push(
                self.store()
                    .get_recommendation(r.id)
                    .await?
                    .unwrap_or_else(|| r.clone()),
            );
        }
        self.memory().last_run = Some(summary.clone());
        self.persist().await?;
        tracing::info!(target: LOG, summary = %summary.describe(), automation = config.automation_level.as_str(), "DRS run");
        self.publish_engine(
            EventType::StateChanged,
            serde_json::to_value(&summary).unwrap_or_default(),
        );
        Ok(RunReport {
            summary,
            recommendations,
            plan,
        })
    }

    /// Writes what [`super::reconcile::reconcile`] decided; returns the recommendations of
    /// the plan (kept or created), in plan order.
    async fn write_reconciled(
        &self,
        decided: super::reconcile::Reconciled,
        summary: &mut RunSummary,
        now: DateTime<Utc>,
    ) -> Result<Vec<DrsRecommendation>> {
        use super::reconcile::{NO_LONGER_RECOMMENDED, SUPERSEDED, Step};
        let mut ours = Vec::with_capacity(decided.steps.len());
        for step in decided.steps {
            match step {
                Step::Keep { open, fresh } => {
                    if fresh != open
                        && self
                            .store()
                            .update_recommendation_if(&fresh, &[open.status], now)
                            .await?
                    {
                        self.publish(EventType::Updated, &fresh, now);
                    }
                    summary.kept += 1;
                    ours.push(fresh);
                }
                Step::Create { new, supersedes } => {
                    if let Some(r) = supersedes
                        && self.finish(&r, St::Expired, SUPERSEDED, now).await?.is_some()
                    {
                        summary.expired += 1;
                    }
                    self.store().insert_recommendation(&new).await?;
                    tracing::info!(target: LOG, id = %new.id, vm = %new.vm_name, source = %new.source_node_name,
                        target = %new.target_node_name, priority = %new.priority, mandatory = new.mandatory,
                        reason = %new.reason, "DRS recommendation created");
                    self.publish(EventType::Created, &new, now);
                    summary.created += 1;
                    ours.push(new);
                }
            }
        }
        for r in decided.expire {
            if self
                .finish(&r, St::Expired, NO_LONGER_RECOMMENDED, now)
                .await?
                .is_some()
            {
                summary.expired += 1;
            }
        }
        Ok(ours)
    }

    /// Each node's power as `NodePower` reports it (none configured, or unreadable: absent,
    /// which DPM takes as on).
    async fn power_states(&self, snap: &ClusterSnapshot) -> HashMap<NodeId, PowerState> {
        let mut out = HashMap::new();
        let Some(p) = &self.inner.opts.power else {
            return out;
        };
        for n in &snap.nodes {
            match p.power_state(n.id).await {
                Ok(s) => {
                    out.insert(n.id, s);
                }
                Err(e) => tracing::debug!(target: LOG, node = %n.name, error = %e, "DPM: power state unknown"),
            }
        }
        out
    }

    /// Reconciles DPM's plan with the open POWER_ON/POWER_OFF recommendations (one open per
    /// host and kind): a planned one refreshes the open one or is created; an open PENDING
    /// one the plan no longer makes expires. Returns this plan's recommendations.
    async fn reconcile_power(
        &self,
        d: &DpmPlan,
        open: Vec<DrsRecommendation>,
        summary: &mut RunSummary,
        now: DateTime<Utc>,
    ) -> Result<Vec<DrsRecommendation>> {
        let mut ours = Vec::new();
        let mut matched: HashSet<RecommendationId> = HashSet::new();
        let planned = d
            .power_on
            .iter()
            .map(|a| (RecommendationType::PowerOn, a))
            .chain(d.power_off.iter().map(|a| (RecommendationType::PowerOff, a)));
        for (kind, a) in planned {
            if let Some(r) = open
                .iter()
                .find(|r| r.recommendation_type == kind && r.source_node_id == a.node)
            {
                matched.insert(r.id);
                let mut fresh = r.clone();
                fresh.reason = a.reason.clone();
                fresh.priority = a.priority;
                fresh.mandatory = a.mandatory;
                if r.status != St::Applying
                    && fresh != *r
                    && self.store().update_recommendation_if(&fresh, &[r.status], now).await?
                {
                    self.publish(EventType::Updated, &fresh, now);
                }
                summary.kept += 1;
                ours.push(fresh);
                continue;
            }
            let rec = a.to_recommendation(kind, RecommendationId::new(), now);
            self.store().insert_recommendation(&rec).await?;
            tracing::info!(target: LOG, id = %rec.id, kind = %kind, node = %a.node_name, reason = %a.reason,
                "DPM recommendation created");
            self.publish(EventType::Created, &rec, now);
            summary.created += 1;
            ours.push(rec);
        }
        for r in &open {
            if r.status == St::Pending
                && !matched.contains(&r.id)
                && self
                    .finish(r, St::Expired, "no longer recommended: the cluster changed", now)
                    .await?
                    .is_some()
            {
                summary.expired += 1;
            }
        }
        Ok(ours)
    }

    /// Applies one power recommendation for automation `level`, audited and counted like a
    /// migration. A POWER_OFF whose host still has VMs stays open for the next run.
    async fn apply_power_automatically(
        &self,
        id: RecommendationId,
        level: AutomationLevel,
        summary: &mut RunSummary,
    ) -> Result<()> {
        let who = format!("{ENGINE_ACTOR} (automation {})", level.as_str());
        let res = self.apply(id, &who, None, true).await;
        if matches!(&res, Err(e) if e.kind == ErrorKind::FailedPrecondition && e.message.contains("still has")) {
            return Ok(());
        }
        self.audit_automatic(id, &res, level).await;
        match res {
            Ok(r) if r.status == St::Applied => summary.applied += 1,
            Ok(_) => summary.failed += 1,
            Err(e) if e.kind == ErrorKind::FailedPrecondition => summary.failed += 1,
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Applies a POWER_ON or POWER_OFF: revalidates (a host to power off must hold no VM),
    /// moves it to APPLYING by compare-and-swap, and asks `NodePower`; APPLIED once the
    /// controller accepted, FAILED with its reason otherwise, or when no controller is
    /// configured.
    async fn apply_power(&self, r: DrsRecommendation, by: &str, now: DateTime<Utc>) -> Result<DrsRecommendation> {
        let id = r.id;
        let off = r.recommendation_type == RecommendationType::PowerOff;
        let why = if self.expired_by_age(&r, now) {
            Some((St::Expired, "it is older than 24 h".to_string()))
        } else {
            let snap = self.inner.compute.snapshot().await?;
            match snap.node(r.source_node_id) {
                None => Some((St::Failed, format!("node {} was deleted", r.source_node_name))),
                Some(n) if off => {
                    let left: Vec<&str> = snap
                        .vms
                        .iter()
                        .filter(|v| v.node == Some(n.id))
                        .map(|v| v.name.as_str())
                        .collect();
                    if !left.is_empty() {
                        // Its evacuation is still under way: the recommendation stays open.
                        return Err(Error::precondition(format!(
                            "recommendation {id} cannot be applied yet: {} still has {} VM(s) ({});                              apply its consolidate moves first",
                            n.name,
                            left.len(),
                            left.join(", ")
                        )));
                    }
                    None
                }
                Some(_) => None,
            }
        };
        let why = why.or_else(|| {
            self.inner.opts.power.is_none().then(|| {
                (
                    St::Failed,
                    format!(
                        "no power controller: lqx cannot power {} {} (configure the node's BMC)",
                        r.source_node_name,
                        if off { "off" } else { "on" }
                    ),
                )
            })
        });
        if let Some((to, why)) = why {
            return match self.finish(&r, to, &why, now).await? {
                Some(_) => Err(Error::precondition(format!(
                    "recommendation {id} cannot be applied: {why}"
                ))),
                None => {
                    let cur = self.get(id).await?;
                    Err(not_open(id, cur.status, "applied"))
                }
            };
        }
        let Some(power) = self.inner.opts.power.clone() else {
            // Settled above (no controller: FAILED); here for the type.
            return Err(Error::precondition(format!(
                "no power controller: lqx cannot power {}",
                r.source_node_name
            )));
        };
        let mut a = r.clone();
        a.status = St::Applying;
        a.applied_by = Some(by.to_string());
        // Marked ours before it is APPLYING, so a run never settles it under the migration.
        self.migrating().insert(id);
        let swapped = self
            .store()
            .update_recommendation_if(&a, &[St::Pending, St::Approved], now)
            .await;
        if !matches!(swapped, Ok(true)) {
            self.migrating().remove(&id);
            swapped?;
            let cur = self.get(id).await?;
            return Err(not_open(id, cur.status, "applied"));
        }
        self.publish(EventType::Updated, &a, now);
        let res = if off {
            power.standby(a.source_node_id).await
        } else {
            power.power_on(a.source_node_id).await
        };
        let now = self.now();
        let kind = match res {
            Ok(()) => {
                a.status = St::Applied;
                a.applied_at = Some(now);
                tracing::info!(target: LOG, %id, node = %a.source_node_name, kind = %a.recommendation_type, by,
                    "DPM recommendation applied");
                EventType::Applied
            }
            Err(e) => {
                a.status = St::Failed;
                a.failure_reason = Some(format!(
                    "powering {} {} failed: {e}",
                    a.source_node_name,
                    if off { "off" } else { "on" }
                ));
                tracing::warn!(target: LOG, %id, node = %a.source_node_name, error = %e, "DPM power action failed");
                EventType::Failed
            }
        };
        if !self.store().update_recommendation_if(&a, &[St::Applying], now).await? {
            return self.get(id).await;
        }
        self.publish(kind, &a, now);
        Ok(a)
    }

    /// Applies `pending` (id, source, target; in plan order) as automation `level`: several
    /// at once on disjoint hosts, on each host in plan order (see `startable`). Counts the
    /// outcomes in `summary`; an error other than failed_precondition is returned once every
    /// migration in flight has ended.
    async fn apply_automatically(
        &self,
        mut pending: Vec<(RecommendationId, NodeId, NodeId)>,
        level: AutomationLevel,
        summary: &mut RunSummary,
    ) -> Result<()> {
        let who = format!("{ENGINE_ACTOR} (automation {})", level.as_str());
        let mut running = futures::stream::FuturesUnordered::new();
        let mut busy: HashSet<NodeId> = HashSet::new();
        let mut fatal: Option<Error> = None;
        let cap = self.inner.opts.max_parallel_migrations.max(1);
        loop {
            if fatal.is_none() {
                let hosts: Vec<(NodeId, NodeId)> = pending.iter().map(|&(_, s, t)| (s, t)).collect();
                for i in startable(&hosts, &busy, cap - running.len()).into_iter().rev() {
                    let (id, s, t) = pending.remove(i);
                    busy.extend([s, t]);
                    let who = &who;
                    running.push(async move { (id, s, t, self.apply(id, who, None, true).await) });
                }
            }
            // In-flight migrations always run to their end, even after an error.
            let Some((id, s, t, res)) = futures::StreamExt::next(&mut running).await else {
                break;
            };
            busy.remove(&s);
            busy.remove(&t);
            self.audit_automatic(id, &res, level).await;
            match res {
                Ok(r) if r.status == St::Applied => summary.applied += 1,
                Ok(_) => summary.failed += 1,
                Err(e) if e.kind == ErrorKind::FailedPrecondition => summary.failed += 1,
                Err(e) => {
                    fatal.get_or_insert(e);
                }
            }
        }
        fatal.map_or(Ok(()), Err)
    }

    /// Takes the config and the planner's state (hysteresis counts, recent migrations, a
    /// relief carried over rounds) from the store: another replica may have led (and
    /// changed them) since this one last ran, or taken an UpdateDRSConfig. Unreadable or
    /// absent values leave what this replica holds.
    async fn reload_shared(&self) -> Result<()> {
        if let Some((v, _)) = self.store().kv_get(CONFIG_KEY).await?
            && let Ok(c) = serde_json::from_str::<DrsConfig>(&v)
            && c.validate().is_ok()
        {
            *self.inner.config.write().unwrap_or_else(|p| p.into_inner()) = c;
        }
        if let Some((v, _)) = self.store().kv_get(STATE_KEY).await?
            && let Ok(p) = serde_json::from_str::<Persisted>(&v)
        {
            let mut m = self.memory();
            m.state = p.state;
            m.alerted = p.alerted;
            m.dpm = p.dpm;
            // Migrations sampled here since then are not in the store yet: keep them too.
            let mut records = p.history.records;
            let stored: HashSet<(VmId, DateTime<Utc>)> = records.iter().map(|r| (r.vm, r.at)).collect();
            for r in std::mem::take(&mut m.history.records) {
                if !stored.contains(&(r.vm, r.at)) {
                    records.push(r);
                }
            }
            records.sort_by_key(|r| r.at);
            m.history.records = records;
        }
        Ok(())
    }

    async fn persist(&self) -> Result<()> {
        let text = {
            let m = self.memory();
            serde_json::to_string(&Persisted {
                state: m.state.clone(),
                history: m.history.clone(),
                last_run: m.last_run.clone(),
                alerted: m.alerted.clone(),
                dpm: m.dpm.clone(),
            })
            .map_err(Error::internal)?
        };
        self.store().kv_put(STATE_KEY, &text).await?;
        Ok(())
    }

    /// The 24 h clean-up (see the rule at the top): returns how many open recommendations
    /// expired.
    pub async fn cleanup(&self) -> Result<usize> {
        self.cleanup_at(self.now()).await
    }

    async fn cleanup_at(&self, now: DateTime<Utc>) -> Result<usize> {
        let retention = chrono::Duration::from_std(self.inner.opts.retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = now - retention;
        let mut expired = 0;
        for r in self
            .store()
            .recommendations_with_status(&[St::Pending, St::Approved])
            .await?
        {
            if r.created_at < cutoff && self.finish(&r, St::Expired, "older than 24 h", now).await?.is_some() {
                expired += 1;
            }
        }
        let deleted = self.store().delete_finished_recommendations(cutoff).await?;
        if deleted > 0 {
            tracing::info!(target: LOG, deleted, "finished DRS recommendations older than 24 h deleted");
        }
        Ok(expired)
    }

    /// Moves an open recommendation to a final status with a reason (compare-and-swap from
    /// its current status). Returns the new record, or `None` when it had moved on.
    async fn finish(
        &self,
        r: &DrsRecommendation,
        to: St,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DrsRecommendation>> {
        let mut done = r.clone();
        done.status = to;
        done.failure_reason = Some(why.to_string());
        if !self.store().update_recommendation_if(&done, &[r.status], now).await? {
            return Ok(None);
        }
        tracing::info!(target: LOG, id = %done.id, vm = %done.vm_name, status = %to, reason = why, "DRS recommendation finished");
        let kind = match to {
            St::Expired => EventType::Expired,
            St::Failed => EventType::Failed,
            St::Rejected => EventType::Rejected,
            St::Applied => EventType::Applied,
            _ => EventType::Updated,
        };
        self.publish(kind, &done, now);
        Ok(Some(done))
    }

    // ---- operator actions ----------------------------------------------------------------

    /// PENDING -> APPROVED (recording who and when). Approving an APPROVED one again
    /// returns it unchanged.
    pub async fn approve(&self, id: RecommendationId, by: &str) -> Result<DrsRecommendation> {
        let now = self.now();
        let r = self.get(id).await?;
        match r.status {
            St::Pending => {}
            St::Approved => return Ok(r),
            s => return Err(not_open(id, s, "approved")),
        }
        if self.expired_by_age(&r, now) {
            self.finish(&r, St::Expired, "older than 24 h", now).await?;
            return Err(Error::precondition(format!(
                "recommendation {id} expired: it is older than 24 h"
            )));
        }
        let mut a = r.clone();
        a.status = St::Approved;
        a.approved_at = Some(now);
        a.approved_by = Some(by.to_string());
        if !self.store().update_recommendation_if(&a, &[St::Pending], now).await? {
            let cur = self.get(id).await?;
            return Err(not_open(id, cur.status, "approved"));
        }
        tracing::info!(target: LOG, %id, vm = %a.vm_name, by, "DRS recommendation approved");
        self.publish(EventType::Approved, &a, now);
        Ok(a)
    }

    /// PENDING/APPROVED -> REJECTED. Rejecting a REJECTED one again returns it unchanged.
    pub async fn reject(&self, id: RecommendationId, by: &str, reason: &str) -> Result<DrsRecommendation> {
        let now = self.now();
        let r = self.get(id).await?;
        match r.status {
            St::Pending | St::Approved => {}
            St::Rejected => return Ok(r),
            s => return Err(not_open(id, s, "rejected")),
        }
        let why = if reason.trim().is_empty() {
            format!("rejected by {by}")
        } else {
            format!("rejected by {by}: {}", reason.trim())
        };
        match self.finish(&r, St::Rejected, &why, now).await? {
            Some(done) => Ok(done),
            None => {
                let cur = self.get(id).await?;
                Err(not_open(id, cur.status, "rejected"))
            }
        }
    }

    /// The audit entry of an apply the engine made on its own (operators' applies are audited
    /// by the API layer, as `drs.DRSService/ApplyRecommendation` with their name).
    async fn audit_automatic(&self, id: RecommendationId, res: &Result<DrsRecommendation>, level: AutomationLevel) {
        let (result, detail) = match res {
            Ok(r) if r.recommendation_type != RecommendationType::Migrate => (
                if r.status == St::Applied {
                    AuditResult::Ok
                } else {
                    AuditResult::Error
                },
                format!(
                    "automation {}: {} {}: {}",
                    level.as_str(),
                    r.recommendation_type,
                    r.source_node_name,
                    r.failure_reason.as_deref().unwrap_or(r.status.as_str())
                ),
            ),
            Ok(r) if r.status == St::Applied => (
                AuditResult::Ok,
                format!(
                    "automation {}: VM {} moved from {} to {}",
                    level.as_str(),
                    r.vm_name,
                    r.source_node_name,
                    r.target_node_name
                ),
            ),
            Ok(r) => (
                AuditResult::Error,
                format!(
                    "automation {}: VM {} not moved: {}",
                    level.as_str(),
                    r.vm_name,
                    r.failure_reason.as_deref().unwrap_or("failed")
                ),
            ),
            Err(e) => (AuditResult::Error, format!("automation {}: {e}", level.as_str())),
        };
        let entry = AuditEntry::by_system(
            self.now(),
            ENGINE_ACTOR,
            "drs.DRSService/ApplyRecommendation",
            ("drs_recommendation", id.to_string()),
            result,
            detail,
        );
        if let Err(e) = self.store().insert_audit(&entry).await {
            tracing::error!(target: LOG, %id, error = %e, "writing the audit entry of an automatic apply failed");
        }
    }

    /// Applies a PENDING or APPROVED recommendation: revalidates it, moves it to APPLYING
    /// (once: a compare-and-swap), migrates the VM and records APPLIED or FAILED. With
    /// `wait` it returns the final record; without, the APPLYING record while the migration
    /// goes on in the background. A `request_id` seen before returns the recommendation as
    /// it is now (or carries on applying it if it is still open).
    pub async fn apply(
        &self,
        id: RecommendationId,
        by: &str,
        request_id: Option<&str>,
        wait: bool,
    ) -> Result<DrsRecommendation> {
        let now = self.now();
        if let Some(rid) = request_id {
            let key = format!("drs/ApplyRecommendation/{rid}");
            if let Some(prev) = self.store().claim_idempotency_key(&key, &id.to_string(), now).await? {
                if prev != id.to_string() {
                    return Err(Error::invalid(
                        "request_id",
                        "was already used to apply another recommendation",
                    ));
                }
                let cur = self.get(id).await?;
                if !matches!(cur.status, St::Pending | St::Approved) {
                    return Ok(cur);
                }
            }
        }
        let r = self.get(id).await?;
        match r.status {
            St::Pending | St::Approved => {}
            s => return Err(not_open(id, s, "applied")),
        }
        if r.recommendation_type != RecommendationType::Migrate {
            return self.apply_power(r, by, now).await;
        }
        if let Some((to, why)) = self.revalidate(&r, now).await? {
            if to == St::Failed
                && let Some(first) = self.waits_for(&r).await?
            {
                return Err(Error::precondition(format!(
                    "recommendation {id} cannot be applied yet: its target {} has room for VM {} only \
                     once recommendation {} (VM {} off {}) is applied; apply that one first",
                    r.target_node_name, r.vm_name, first.id, first.vm_name, first.source_node_name
                )));
            }
            let done = self.finish(&r, to, &why, now).await?;
            return match done {
                Some(_) => Err(Error::precondition(format!(
                    "recommendation {id} cannot be applied: {why}"
                ))),
                None => {
                    let cur = self.get(id).await?;
                    Err(not_open(id, cur.status, "applied"))
                }
            };
        }
        let mut a = r.clone();
        a.status = St::Applying;
        a.applied_by = Some(by.to_string());
        if !self
            .store()
            .update_recommendation_if(&a, &[St::Pending, St::Approved], now)
            .await?
        {
            let cur = self.get(id).await?;
            return Err(not_open(id, cur.status, "applied"));
        }
        tracing::info!(target: LOG, %id, vm = %a.vm_name, source = %a.source_node_name, target = %a.target_node_name,
            by, "DRS recommendation applying");
        self.publish(EventType::Updated, &a, now);
        if wait {
            self.migrate(a).await
        } else {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.migrate(a).await {
                    tracing::warn!(target: LOG, %id, error = %e, "recording the DRS migration failed");
                }
            });
            self.get(id).await
        }
    }

    /// Performs the migration of an APPLYING recommendation and records the outcome.
    async fn migrate(&self, a: DrsRecommendation) -> Result<DrsRecommendation> {
        let id = a.id;
        self.migrating().insert(id);
        let r = self.migrate_tracked(a).await;
        self.migrating().remove(&id);
        r
    }

    async fn migrate_tracked(&self, mut a: DrsRecommendation) -> Result<DrsRecommendation> {
        let project = self
            .store()
            .get_vm(a.vm_id)
            .await
            .map_or(ProjectId::DEFAULT, |v| v.project_id);
        let res = self
            .inner
            .compute
            .migrate_vm(
                &a.vm_id.to_string(),
                project,
                Some(&a.target_node_id.to_string()),
                false,
            )
            .await;
        let res = match res {
            // An injected crash (tests): the process is gone, nothing more is recorded.
            Err(e) if crate::saga::is_crash(&e) => return Err(e),
            // A step after the transfer failed: the move may have happened, and recovery
            // decides from what the hosts hold. The recommendation follows that outcome
            // (settled by a later run), not this error.
            Err(e)
                if self
                    .store()
                    .op_for_vm(a.vm_id, crate::saga::OpKind::MigrateVm)
                    .await?
                    .is_some() =>
            {
                tracing::warn!(target: LOG, id = %a.id, vm = %a.vm_name, error = %e,
                    "DRS migration interrupted; APPLYING until recovery settles the move");
                a.failure_reason = Some(AWAITING_RECOVERY.into());
                if self
                    .store()
                    .update_recommendation_if(&a, &[St::Applying], self.now())
                    .await?
                {
                    self.publish(EventType::Updated, &a, self.now());
                }
                return self.get(a.id).await;
            }
            r => r,
        };
        let now = self.now();
        let kind = match res {
            Ok(out) => {
                a.status = St::Applied;
                a.applied_at = Some(now);
                self.memory().history.record(a.vm_id, out.source, out.target, now);
                tracing::info!(target: LOG, id = %a.id, vm = %a.vm_name, target = %a.target_node_name, live = out.live,
                    "DRS recommendation applied");
                EventType::Applied
            }
            Err(e) => {
                a.status = St::Failed;
                a.failure_reason = Some(format!("migration failed: {}", e.message));
                tracing::warn!(target: LOG, id = %a.id, vm = %a.vm_name, error = %e, "DRS migration failed");
                EventType::Failed
            }
        };
        if !self.store().update_recommendation_if(&a, &[St::Applying], now).await? {
            return self.get(a.id).await;
        }
        self.publish(kind, &a, now);
        if let Some(sink) = &self.inner.opts.alerts {
            match a.status {
                St::Failed => sink.raise(alerts::apply_failed(&a)).await,
                _ => sink.resolve(alerts::apply_failed_key(a.vm_id)).await,
            }
        }
        self.persist().await?;
        Ok(a)
    }

    fn expired_by_age(&self, r: &DrsRecommendation, now: DateTime<Utc>) -> bool {
        let retention = chrono::Duration::from_std(self.inner.opts.retention).unwrap_or(chrono::Duration::MAX);
        r.created_at < now - retention
    }

    /// The open recommendation that makes room on `r`'s target, when `r` is still on its
    /// source and does not fit the target yet (a room-making move, or the first half of a
    /// swap or chain, not applied yet): `r` is refused for now and stays open rather than
    /// failing.
    async fn waits_for(&self, r: &DrsRecommendation) -> Result<Option<DrsRecommendation>> {
        let open = self
            .store()
            .recommendations_with_status(&[St::Pending, St::Approved, St::Applying])
            .await?;
        let Some(first) = open
            .into_iter()
            .filter(|o| o.id != r.id && o.source_node_id == r.target_node_id)
            .min_by_key(|o| (o.created_at, o.id.to_string()))
        else {
            return Ok(None);
        };
        let snap = self.inner.compute.snapshot().await?;
        let Some(vs) = snap.vm(r.vm_id).filter(|v| v.node == Some(r.source_node_id)) else {
            return Ok(None);
        };
        let mut req = PlacementRequest::for_vm(vs);
        req.required_nodes = vec![r.target_node_id];
        Ok(place(&snap, &req).is_err().then_some(first))
    }

    /// Why `r` can no longer be applied (the status to record and the reason), if it can't.
    async fn revalidate(&self, r: &DrsRecommendation, now: DateTime<Utc>) -> Result<Option<(St, String)>> {
        if self.expired_by_age(r, now) {
            return Ok(Some((St::Expired, "it is older than 24 h".into())));
        }
        let fail = |why: String| Ok(Some((St::Failed, why)));
        let vm = match self.store().get_vm(r.vm_id).await {
            Ok(vm) => vm,
            Err(e) if e.kind == ErrorKind::NotFound => return fail(format!("VM {} was deleted", r.vm_name)),
            Err(e) => return Err(e),
        };
        let snap = self.inner.compute.snapshot().await?;
        let name_of = |n: NodeId| snap.node(n).map_or_else(|| n.to_string(), |n| n.name.clone());
        match vm.status.node_id {
            Some(n) if n == r.source_node_id => {}
            Some(n) => {
                return fail(format!(
                    "VM {} moved: it is on {} now, not {}",
                    vm.name,
                    name_of(n),
                    r.source_node_name
                ));
            }
            None => return fail(format!("VM {} is no longer placed on a node", vm.name)),
        }
        if vm.status.state == VmState::Migrating {
            return fail(format!("VM {} is being migrated", vm.name));
        }
        if !r.mandatory && vm.status.state != VmState::Running {
            return fail(format!(
                "VM {} is {}, not running: moving it no longer relieves {}",
                vm.name,
                vm.status.state.as_str(),
                r.source_node_name
            ));
        }
        let Some(target) = snap.node(r.target_node_id) else {
            return fail(format!("target node {} was deleted", r.target_node_name));
        };
        if !target.accepts_vms() {
            let why = if target.schedulable {
                target.phase.as_str().to_string()
            } else {
                "cordoned".to_string()
            };
            return fail(format!("target node {} no longer accepts VMs ({why})", target.name));
        }
        let Some(vs) = snap.vm(vm.id) else {
            return fail(format!("VM {} was deleted", r.vm_name));
        };
        let mut req = PlacementRequest::for_vm(vs);
        if !req.required_nodes.is_empty() && !req.required_nodes.contains(&target.id) {
            return fail(format!(
                "target node {} is not among the VM's required nodes",
                target.name
            ));
        }
        req.required_nodes = vec![target.id];
        if let Err(e) = place(&snap, &req) {
            return fail(format!(
                "target node {} no longer fits VM {}: {e}",
                target.name, vm.name
            ));
        }
        Ok(None)
    }

    // ---- events --------------------------------------------------------------------------

    fn publish(&self, kind: EventType, r: &DrsRecommendation, now: DateTime<Utc>) {
        self.inner
            .compute
            .events
            .publish(EventDraft::new(kind, ResourceType::Drs, r.id.to_string(), now).payload_of(r));
    }

    fn publish_engine(&self, kind: EventType, payload: serde_json::Value) {
        self.inner
            .compute
            .events
            .publish(EventDraft::new(kind, ResourceType::Drs, "engine", self.now()).payload(payload));
    }
}

/// Which of `pending` (moves as (source, target), in plan order) may start now, at most
/// `slots` of them, with the `busy` hosts migrating: a move starts when neither of its hosts
/// is busy or touched by an earlier pending move. So on every host the moves keep plan
/// order (room is made before the move that uses it, and each revalidates against the
/// hosts as a one-at-a-time run would leave them), and the moves running at once touch
/// disjoint hosts.
fn startable(pending: &[(NodeId, NodeId)], busy: &HashSet<NodeId>, slots: usize) -> Vec<usize> {
    let mut blocked = busy.clone();
    let mut out = Vec::new();
    for (i, &(s, t)) in pending.iter().enumerate() {
        if out.len() < slots && !blocked.contains(&s) && !blocked.contains(&t) {
            out.push(i);
        }
        blocked.extend([s, t]);
    }
    out
}

/// One line on what DPM planned.
fn describe_dpm(d: &DpmPlan) -> String {
    let names = |a: &[dpm::PowerAction]| a.iter().map(|a| a.node_name.as_str()).collect::<Vec<_>>().join(", ");
    let mut s = format!(
        "{} host(s) on, {:.0}% used on average",
        d.hosts_on_before, d.mean_before
    );
    if !d.power_on.is_empty() {
        s.push_str(&format!("; power on {} ({})", names(&d.power_on), d.power_on[0].reason));
    }
    if !d.power_off.is_empty() {
        s.push_str(&format!(
            "; power off {} after {} move(s), {} host(s) on at {:.0}%",
            names(&d.power_off),
            d.evacuations.len(),
            d.hosts_on_after,
            d.mean_after
        ));
    } else if d.power_on.is_empty()
        && let Some(w) = &d.why_not
    {
        s.push_str(&format!("; nothing to power off: {w}"));
    }
    s
}

fn not_open(id: RecommendationId, status: St, verb: &str) -> Error {
    match status {
        // Messages use the lower-case words the CLI and the JSON print (`applying`).
        St::Applying | St::Applied => Error::precondition(format!(
            "recommendation {id} is already {}",
            status.as_str().to_ascii_lowercase()
        )),
        s => Error::precondition(format!(
            "recommendation {id} is {}; only a pending or approved recommendation can be {verb}",
            s.as_str().to_ascii_lowercase()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startable_keeps_plan_order_per_host_and_disjoint_hosts() {
        let [a, b, c, d, e, f] = [(); 6].map(|_| NodeId::new());
        // a->b, c->d, b->e (waits for a->b: b), e->f (waits: e is in the earlier b->e),
        // d->a (waits: d and a).
        let plan = [(a, b), (c, d), (b, e), (e, f), (d, a)];
        assert_eq!(startable(&plan, &HashSet::new(), 8), [0, 1]);
        // At most `slots`.
        assert_eq!(startable(&plan, &HashSet::new(), 1), [0]);
        assert!(startable(&plan, &HashSet::new(), 0).is_empty());
        // a->b finished, c->d still running: b->e may start; e->f waits for it, d->a for c->d.
        let busy: HashSet<NodeId> = [c, d].into();
        assert_eq!(startable(&plan[2..], &busy, 8), [0]);
        // A host busy from outside the plan holds back every move on it.
        let busy: HashSet<NodeId> = [f].into();
        assert_eq!(startable(&[(e, f), (a, b)], &busy, 8), [1]);
    }
}

//! The driver of a host whose node agent is remote: [`AgentLink`], the node's
//! [`Hypervisor`] in the compute layer's hosts, which drives the host through the agent's
//! heartbeats (see `compute::agents` for the rule; joining, credentials and heartbeat intake
//! live there).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use chrono::Utc;
use futures::{FutureExt, future::BoxFuture};
use tokio::{sync::watch, time::Instant};
use tracing::info;

mod migration;

use crate::{
    agent::{
        DesiredDomain,
        control::{desired_to_pb, driver_error, parse_state},
    },
    api::node::v1 as pb,
    driver::{
        DomainInfo, DomainSpec, DomainState, DomainStats, DriverError, DriverResult, Hypervisor, NodeInfo, NodeStats,
        ProgressFn, VolumeInfo,
    },
    model::{NodeId, VmId, VmState},
};

/// Every agent link of a control plane, by node (a live migration finds its target's here).
pub type Links = RwLock<HashMap<NodeId, Arc<AgentLink>>>;

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Timing of the agent protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentTiming {
    /// How often agents heartbeat (sent to them at join).
    pub heartbeat_interval: Duration,
    /// Lease granted at each accepted heartbeat.
    pub lease_ttl: Duration,
    /// The agent fences itself after this long without a renewal (< `lease_ttl`).
    pub self_fence_after: Duration,
    /// How long a command waits for the agent to report the result.
    pub op_timeout: Duration,
    /// Usage-only changes of a VM are written at most this often.
    pub usage_write_interval: Duration,
    /// The node's `last_heartbeat` and usage are written at most this often.
    pub node_write_interval: Duration,
}

impl Default for AgentTiming {
    fn default() -> Self {
        AgentTiming {
            heartbeat_interval: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(35),
            self_fence_after: Duration::from_secs(33),
            op_timeout: Duration::from_secs(60),
            usage_write_interval: Duration::from_secs(30),
            node_write_interval: Duration::from_secs(15),
        }
    }
}

/// A node's lease: renewed at `last_renewed` (control plane clock), valid for `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseState {
    pub last_renewed: Instant,
    pub ttl: Duration,
}

impl LeaseState {
    pub fn expires_at(&self) -> Instant {
        self.last_renewed + self.ttl
    }
}

/// What a heartbeat says about fencing, for the [`HeartbeatHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatReport {
    pub node: NodeId,
    /// The agent's watchdog fired and has not been cleared.
    pub self_fenced: bool,
    /// After a fence: the agent confirms its HA domains are destroyed.
    pub fenced_domains_gone: bool,
    /// HA-protected domains the heartbeat lists in any state but shut off.
    pub ha_domains_present: usize,
}

/// Whether a heartbeat renews the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseVerdict {
    Renew,
    /// No renewal; the answer tells the agent to destroy its HA domains.
    MustFence,
}

/// Called for every authenticated heartbeat (the HA manager plugs in here).
pub trait HeartbeatHook: Send + Sync + 'static {
    fn on_heartbeat(&self, report: &HeartbeatReport, now: Instant) -> LeaseVerdict;
}

/// The VM state a domain state stands for.
pub fn vm_state_of(s: DomainState) -> VmState {
    match s {
        DomainState::Running => VmState::Running,
        DomainState::Paused => VmState::Paused,
        DomainState::ShuttingDown => VmState::Stopping,
        DomainState::Shutoff => VmState::Stopped,
        DomainState::Crashed => VmState::Failed,
    }
}

/// One domain this node should have.
#[derive(Debug, Clone)]
pub(crate) struct Want {
    pub(crate) d: DesiredDomain,
    pub(crate) reboot_seq: u64,
}

/// One domain as the agent last reported it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) info: DomainInfo,
    pub(crate) cpu_percent: f64,
    pub(crate) cpu_time_ns: u64,
    pub(crate) vcpus: u32,
    pub(crate) memory_mib: u64,
    pub(crate) memory_used_mib: u64,
}

#[derive(Default)]
pub(crate) struct Writes {
    pub(crate) node: bool,
    /// The report's node CPU % is a measured delta (not the first sample).
    pub(crate) node_cpu: bool,
    pub(crate) vms: Vec<VmWrite>,
}

pub(crate) struct VmWrite {
    pub(crate) vm: VmId,
    pub(crate) state: Option<VmState>,
    /// CPU % and memory; None: not measured yet (the first sample of a domain has no CPU
    /// delta), the stored usage is kept.
    pub(crate) usage: Option<(f64, u64)>,
}

pub(crate) struct LinkState {
    pub(crate) generation: u64,
    pub(crate) desired: BTreeMap<VmId, Want>,
    /// Removed together with their volumes; kept until the agent reports them gone.
    pub(crate) purge: BTreeMap<VmId, u64>,
    pub(crate) seen: BTreeMap<VmId, Seen>,
    /// Failures reported per heartbeat: (report number, generation it had applied, VM,
    /// error). Kept for a while so a waiting command sees a failure even when a later report
    /// (after a retry) arrived before it looked.
    pub(crate) failures: std::collections::VecDeque<(u64, u64, VmId, DriverError)>,
    pub(crate) reports: u64,
    /// The generation the agent's last report had applied.
    pub(crate) observed: u64,
    pub(crate) last_heartbeat: Option<Instant>,
    pub(crate) agent_interval: Duration,
    pub(crate) hypervisor_error: Option<String>,
    pub(crate) node_info: NodeInfo,
    pub(crate) node_stats: Option<NodeStats>,
    pub(crate) lease: Option<LeaseState>,
    /// Commands in flight per VM, and until when a finished one keeps heartbeats from writing.
    pub(crate) busy: HashMap<VmId, u32>,
    pub(crate) quiet_until: HashMap<VmId, Instant>,
    /// The state last written to (or read from) each VM record, and when usage was written.
    pub(crate) recorded: HashMap<VmId, VmState>,
    pub(crate) usage_written: HashMap<VmId, Instant>,
    pub(crate) node_written: Option<Instant>,
    /// Where peers live-migrate domains to this host (empty: nowhere), as last reported.
    pub(crate) migration_uri: String,
    /// Live migrations the agent drives, as last reported.
    pub(crate) migrations: HashMap<VmId, pb::MigrationStatus>,
    /// Migrations from here a user cancelled, not ended yet.
    pub(crate) cancelled: std::collections::HashSet<VmId>,
}

/// A remote host, driven through its agent. See the module documentation.
pub struct AgentLink {
    pub(crate) node: NodeId,
    pub(crate) uri: String,
    pub(crate) timing: AgentTiming,
    pub(crate) store: crate::store::Store,
    pub(crate) state: Mutex<LinkState>,
    pub(crate) desired_tx: watch::Sender<u64>,
    pub(crate) report_tx: watch::Sender<u64>,
    pub(crate) peers: std::sync::Weak<Links>,
}

pub(crate) type Undo = Box<dyn FnOnce(&mut LinkState) + Send>;

impl AgentLink {
    pub(crate) fn new(
        node: NodeId,
        name: &str,
        info: NodeInfo,
        timing: AgentTiming,
        store: crate::store::Store,
    ) -> Self {
        AgentLink {
            node,
            uri: format!("agent://{name}"),
            timing,
            store,
            state: Mutex::new(LinkState {
                generation: 1,
                desired: BTreeMap::new(),
                purge: BTreeMap::new(),
                seen: BTreeMap::new(),
                failures: std::collections::VecDeque::new(),
                reports: 0,
                observed: 0,
                last_heartbeat: None,
                agent_interval: timing.heartbeat_interval,
                hypervisor_error: None,
                node_info: info,
                node_stats: None,
                lease: None,
                busy: HashMap::new(),
                quiet_until: HashMap::new(),
                recorded: HashMap::new(),
                usage_written: HashMap::new(),
                node_written: None,
                migration_uri: String::new(),
                migrations: HashMap::new(),
                cancelled: Default::default(),
            }),
            desired_tx: watch::Sender::new(1),
            report_tx: watch::Sender::new(0),
            peers: std::sync::Weak::new(),
        }
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The current desired-state generation.
    pub fn generation(&self) -> u64 {
        lock(&self.state).generation
    }

    /// Follows the desired-state generation (for a push channel to the agent).
    pub fn watch_generation(&self) -> watch::Receiver<u64> {
        self.desired_tx.subscribe()
    }

    /// The desired domains, as the next heartbeat answer will carry them.
    pub fn desired(&self) -> Vec<DesiredDomain> {
        lock(&self.state).desired.values().map(|w| w.d.clone()).collect()
    }

    /// Drops a VM from the desired state without waiting for the agent (the HA manager, when
    /// the VM was restarted elsewhere while this host was away). Its volumes are kept.
    pub fn forget(&self, vm: VmId) {
        let mut st = lock(&self.state);
        if st.desired.remove(&vm).is_some() {
            st.generation += 1;
            let g = st.generation;
            drop(st);
            self.desired_tx.send_replace(g);
        }
    }

    /// Forgets the VM states last written, so the next heartbeat writes every observed state
    /// (after HA marked the node's VMs UNKNOWN behind the link's back).
    pub fn forget_recorded(&self) {
        lock(&self.state).recorded.clear();
    }

    /// Takes the HA flags of the desired domains from their VM records.
    pub(crate) fn refresh_ha(&self, vms: &[crate::model::Vm]) {
        let mut st = lock(&self.state);
        let mut changed = false;
        for vm in vms {
            if let Some(w) = st.desired.get_mut(&vm.id)
                && w.d.ha_protected != vm.spec.ha.enabled
            {
                w.d.ha_protected = vm.spec.ha.enabled;
                changed = true;
            }
        }
        if changed {
            st.generation += 1;
            let g = st.generation;
            drop(st);
            self.desired_tx.send_replace(g);
        }
    }

    /// Replaces the desired state with what the VM records say: the VMs placed on this
    /// node, running when their desired state is Running, each defined as `spec` makes it.
    pub(crate) fn rebuild_from(&self, spec: impl Fn(&crate::model::Vm) -> DomainSpec, vms: &[crate::model::Vm]) {
        let mut st = lock(&self.state);
        st.desired.clear();
        st.recorded.clear();
        for vm in vms.iter().filter(|v| v.status.node_id == Some(self.node)) {
            let mut d = DesiredDomain::new(spec(vm), vm.desired_state == VmState::Running);
            d.ha_protected = vm.spec.ha.enabled;
            st.desired.insert(vm.id, Want { d, reboot_seq: 0 });
            st.recorded.insert(vm.id, vm.status.state);
        }
        st.generation += 1;
        let g = st.generation;
        drop(st);
        self.desired_tx.send_replace(g);
    }

    /// How long without a heartbeat before the agent counts as gone.
    pub(crate) fn stale_after(st: &LinkState) -> Duration {
        (st.agent_interval * 3).max(Duration::from_secs(3))
    }

    pub(crate) fn check_live(&self, st: &LinkState, now: Instant) -> DriverResult<()> {
        match st.last_heartbeat {
            Some(t) if now.duration_since(t) <= Self::stale_after(st) => {}
            Some(t) => {
                return Err(DriverError::Unavailable(format!(
                    "the agent of {} has not sent a heartbeat for {}",
                    self.uri,
                    humantime::format_duration(Duration::from_secs(now.duration_since(t).as_secs()))
                )));
            }
            None => {
                return Err(DriverError::Unavailable(format!(
                    "the agent of {} has not connected since the control plane started",
                    self.uri
                )));
            }
        }
        if let Some(e) = &st.hypervisor_error {
            return Err(DriverError::Unavailable(format!("{}: {e}", self.uri)));
        }
        Ok(())
    }

    /// Handles one heartbeat: records the report, renews the lease, notes what to write, and
    /// builds the answer.
    pub(crate) fn accept(
        &self,
        req: &pb::HeartbeatRequest,
        now: Instant,
        hook: Option<&dyn HeartbeatHook>,
    ) -> (pb::HeartbeatResponse, Writes) {
        let mut st = lock(&self.state);
        st.last_heartbeat = Some(now);
        if req.heartbeat_interval_ms > 0 {
            st.agent_interval = Duration::from_millis(u64::from(req.heartbeat_interval_ms));
        }
        st.observed = req.observed_generation;
        st.migration_uri = req.migration_uri.clone();
        st.migrations = req
            .migrations
            .iter()
            .filter_map(|m| Some((VmId::parse("migrations[].vm_id", &m.vm_id).ok()?, m.clone())))
            .collect();
        let node_measured = st.node_stats.is_some();
        st.node_stats = Some(NodeStats {
            cpu_busy_ns: req.cpu_busy_ns,
            memory_total_mib: req.memory_total_mib,
            memory_used_mib: req.memory_used_mib,
        });
        let mut ha_present = 0;
        let mut measured = std::collections::HashSet::new();
        if req.hypervisor_error.is_empty() {
            st.hypervisor_error = None;
            let mut seen = BTreeMap::new();
            st.reports += 1;
            let (n, observed) = (st.reports, st.observed);
            for d in &req.domains {
                let Ok(id) = VmId::parse("domains[].vm_id", &d.vm_id) else {
                    continue;
                };
                if !d.error.is_empty() {
                    st.failures
                        .push_back((n, observed, id, driver_error(&d.error_kind, d.error.clone())));
                }
                let Some(state) = parse_state(&d.state) else {
                    continue;
                };
                if state != DomainState::Shutoff && st.desired.get(&id).is_some_and(|w| w.d.ha_protected) {
                    ha_present += 1;
                }
                seen.insert(
                    id,
                    Seen {
                        info: DomainInfo {
                            id,
                            name: d.name.clone(),
                            state,
                            managed: d.managed,
                        },
                        cpu_percent: d.cpu_percent,
                        cpu_time_ns: d.cpu_time_ns,
                        vcpus: d.vcpus,
                        memory_mib: d.memory_mib,
                        memory_used_mib: d.memory_used_mib,
                    },
                );
            }
            // Domains active in the previous report too: their CPU % is a measured delta.
            measured = seen
                .keys()
                .filter(|id| st.seen.get(id).is_some_and(|s| s.info.state.is_active()))
                .copied()
                .collect();
            st.seen = seen;
            while st.failures.len() > 1024 {
                st.failures.pop_front();
            }
            // Purged domains the agent no longer has are gone for good.
            let (observed, seen) = (st.observed, &st.seen);
            let done: Vec<VmId> = st
                .purge
                .iter()
                .filter(|(id, g)| observed >= **g && !seen.contains_key(id))
                .map(|(id, _)| *id)
                .collect();
            for id in done {
                st.purge.remove(&id);
            }
        } else {
            st.hypervisor_error = Some(req.hypervisor_error.clone());
        }

        let report = HeartbeatReport {
            node: self.node,
            self_fenced: req.self_fenced,
            fenced_domains_gone: req.fenced_domains_gone,
            ha_domains_present: ha_present,
        };
        let verdict = hook.map_or(LeaseVerdict::Renew, |h| h.on_heartbeat(&report, now));
        if verdict == LeaseVerdict::Renew {
            st.lease = Some(LeaseState {
                last_renewed: now,
                ttl: self.timing.lease_ttl,
            });
        }

        let mut writes = Writes::default();
        if st
            .node_written
            .is_none_or(|t| now.duration_since(t) >= self.timing.node_write_interval)
        {
            // The first report has no CPU delta: written again at the next one.
            if node_measured {
                st.node_written = Some(now);
            }
            writes.node = true;
            writes.node_cpu = node_measured;
        }
        if st.hypervisor_error.is_none() {
            let ids: Vec<VmId> = st.desired.keys().copied().collect();
            for id in ids {
                let Some(seen) = st.seen.get(&id) else { continue };
                if st.busy.contains_key(&id) || st.quiet_until.get(&id).is_some_and(|q| now < *q) {
                    continue;
                }
                let observed = vm_state_of(seen.info.state);
                let state = (st.recorded.get(&id) != Some(&observed)).then_some(observed);
                let usage_due = seen.info.state.is_active()
                    && measured.contains(&id)
                    && st
                        .usage_written
                        .get(&id)
                        .is_none_or(|t| now.duration_since(*t) >= self.timing.usage_write_interval);
                if state.is_some() || usage_due {
                    let usage = if !seen.info.state.is_active() {
                        Some((0.0, 0))
                    } else if measured.contains(&id) {
                        Some((seen.cpu_percent, seen.memory_used_mib))
                    } else {
                        None
                    };
                    writes.vms.push(VmWrite { vm: id, state, usage });
                    if usage_due {
                        // Claimed now so a slow write is not repeated by the next heartbeat.
                        st.usage_written.insert(id, now);
                    }
                }
            }
        }

        let resp = pb::HeartbeatResponse {
            generation: st.generation,
            domains: st.desired.values().map(|w| desired_to_pb(&w.d, w.reboot_seq)).collect(),
            lease_expires_at: Some(crate::api::convert::timestamp(
                Utc::now() + chrono::Duration::from_std(self.timing.lease_ttl).unwrap_or_default(),
            )),
            must_fence: verdict == LeaseVerdict::MustFence,
            purge_vm_ids: st.purge.keys().map(|id| id.to_string()).collect(),
        };
        drop(st);
        self.report_tx.send_modify(|n| *n += 1);
        (resp, writes)
    }

    /// Changes the desired state with `prepare` and waits until `done` says the agent got
    /// there. On failure the change is undone (unless `keep_on_timeout` and it timed out).
    pub(crate) async fn change(
        &self,
        id: VmId,
        limit: Duration,
        keep_on_timeout: bool,
        prepare: impl FnOnce(&mut LinkState) -> DriverResult<Undo>,
        done: impl Fn(&LinkState) -> bool,
    ) -> DriverResult<()> {
        let mut reports = self.report_tx.subscribe();
        let start = Instant::now();
        let (generation, undo, since) = {
            let mut st = lock(&self.state);
            self.check_live(&st, start)?;
            let undo = prepare(&mut st)?;
            st.generation += 1;
            *st.busy.entry(id).or_default() += 1;
            (st.generation, undo, st.reports)
        };
        self.desired_tx.send_replace(generation);
        let deadline = start + limit;
        let result = loop {
            {
                let st = lock(&self.state);
                // A failure of a pass that had applied this change, reported since it was made.
                if let Some((.., e)) = st
                    .failures
                    .iter()
                    .find(|(n, observed, vm, _)| *n > since && *observed >= generation && *vm == id)
                {
                    break Err(e.clone());
                }
                if st.observed >= generation && done(&st) {
                    break Ok(());
                }
                let now = Instant::now();
                if let Err(e) = self.check_live(&st, now) {
                    break Err(e);
                }
                if now >= deadline {
                    break Err(DriverError::Timeout(format!(
                        "the agent of {} did not confirm the change within {}",
                        self.uri,
                        humantime::format_duration(limit)
                    )));
                }
            }
            // Wake on the next report, or in time to notice a silent agent or the deadline.
            let wake = deadline.min(Instant::now() + Duration::from_secs(1));
            let _ = tokio::time::timeout_at(wake, reports.changed()).await;
        };
        let mut st = lock(&self.state);
        let revert = result.is_err() && !(keep_on_timeout && matches!(result, Err(DriverError::Timeout(_))));
        if revert {
            undo(&mut st);
            st.generation += 1;
        }
        if let Some(n) = st.busy.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                st.busy.remove(&id);
            }
        }
        let quiet = Instant::now() + st.agent_interval * 2;
        st.quiet_until.insert(id, quiet);
        st.quiet_until.retain(|_, q| *q > start);
        let g = st.generation;
        drop(st);
        if revert {
            self.desired_tx.send_replace(g);
        }
        result
    }

    pub(crate) fn seen_state(st: &LinkState, id: VmId) -> Option<DomainState> {
        st.seen.get(&id).map(|s| s.info.state)
    }

    pub(crate) fn require(st: &LinkState, id: VmId) -> DriverResult<()> {
        if st.desired.contains_key(&id) {
            Ok(())
        } else {
            Err(DriverError::NotFound(format!("domain {id}")))
        }
    }

    /// Sets the running flag of a desired domain; the undo puts the old flags back.
    pub(crate) fn set_running(st: &mut LinkState, id: VmId, running: bool, force_off: bool) -> DriverResult<Undo> {
        let w = st
            .desired
            .get_mut(&id)
            .ok_or_else(|| DriverError::NotFound(format!("domain {id}")))?;
        let (r, f) = (w.d.running, w.d.force_off);
        w.d.running = running;
        w.d.force_off = force_off;
        Ok(Box::new(move |st: &mut LinkState| {
            if let Some(w) = st.desired.get_mut(&id) {
                w.d.running = r;
                w.d.force_off = f;
            }
        }))
    }
}

fn unsupported<T: Send + 'static>(what: &str) -> BoxFuture<'static, DriverResult<T>> {
    let msg = format!("{what} is not supported on agent hosts");
    async move { Err(DriverError::Unsupported(msg)) }.boxed()
}

impl Hypervisor for AgentLink {
    fn uri(&self) -> &str {
        &self.uri
    }

    /// Live migration between agent hosts goes peer to peer between their libvirtd, to the
    /// URI the target's agent reports (`--migration-uri`).
    fn supports_live_migration(&self) -> bool {
        self.live_migration_blocker().is_none()
    }

    fn live_migration_blocker(&self) -> Option<String> {
        self.migration_blocker()
    }

    fn node_info(&self) -> BoxFuture<'_, DriverResult<NodeInfo>> {
        let info = lock(&self.state).node_info.clone();
        async move { Ok(info) }.boxed()
    }

    fn node_stats(&self) -> BoxFuture<'_, DriverResult<NodeStats>> {
        async move {
            let st = lock(&self.state);
            self.check_live(&st, Instant::now())?;
            st.node_stats
                .ok_or_else(|| DriverError::Unavailable(format!("{}: no statistics yet", self.uri)))
        }
        .boxed()
    }

    fn list_domains(&self) -> BoxFuture<'_, DriverResult<Vec<DomainInfo>>> {
        async move {
            let st = lock(&self.state);
            self.check_live(&st, Instant::now())?;
            Ok(st.seen.values().map(|s| s.info.clone()).collect())
        }
        .boxed()
    }

    fn domain_state(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainState>> {
        async move {
            let st = lock(&self.state);
            self.check_live(&st, Instant::now())?;
            Self::seen_state(&st, id).ok_or_else(|| DriverError::NotFound(format!("domain {id}")))
        }
        .boxed()
    }

    fn domain_spec(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainSpec>> {
        async move {
            let st = lock(&self.state);
            st.desired
                .get(&id)
                .map(|w| w.d.spec.clone().with_effective_macs())
                .ok_or_else(|| DriverError::NotFound(format!("domain {id}")))
        }
        .boxed()
    }

    fn domain_stats(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainStats>> {
        async move {
            let st = lock(&self.state);
            self.check_live(&st, Instant::now())?;
            let s = st
                .seen
                .get(&id)
                .ok_or_else(|| DriverError::NotFound(format!("domain {id}")))?;
            Ok(DomainStats {
                id,
                state: s.info.state,
                vcpus: s.vcpus,
                cpu_time_ns: s.cpu_time_ns,
                memory_mib: s.memory_mib,
                memory_used_mib: s.memory_used_mib,
            })
        }
        .boxed()
    }

    fn define(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            spec.validate()?;
            let id = spec.id;
            // The VM record is written before its domain is defined; its HA policy decides
            // whether the agent fences this domain.
            let ha = self.store.get_vm(id).await.is_ok_and(|v| v.spec.ha.enabled);
            self.change(
                id,
                self.timing.op_timeout,
                false,
                |st| {
                    if st.desired.contains_key(&id) || st.seen.contains_key(&id) {
                        return Err(DriverError::AlreadyExists(format!("domain {id}")));
                    }
                    st.purge.remove(&id);
                    let mut d = DesiredDomain::new(spec, false);
                    d.ha_protected = ha;
                    st.desired.insert(id, Want { d, reboot_seq: 0 });
                    Ok(Box::new(move |st: &mut LinkState| {
                        st.desired.remove(&id);
                    }))
                },
                move |st| st.seen.contains_key(&id),
            )
            .await
        }
        .boxed()
    }

    fn update(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            spec.validate()?;
            let id = spec.id;
            self.change(
                id,
                self.timing.op_timeout,
                false,
                |st| {
                    let w = st
                        .desired
                        .get_mut(&id)
                        .ok_or_else(|| DriverError::NotFound(format!("domain {id}")))?;
                    let old = std::mem::replace(&mut w.d.spec, spec);
                    Ok(Box::new(move |st: &mut LinkState| {
                        if let Some(w) = st.desired.get_mut(&id) {
                            w.d.spec = old;
                        }
                    }))
                },
                |_| true,
            )
            .await
        }
        .boxed()
    }

    fn start(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            self.change(
                id,
                self.timing.op_timeout,
                false,
                |st| {
                    Self::require(st, id)?;
                    if let Some(s @ (DomainState::Running | DomainState::Paused | DomainState::ShuttingDown)) =
                        Self::seen_state(st, id)
                    {
                        return Err(DriverError::InvalidState(format!("domain {id} is {s}, cannot start")));
                    }
                    Self::set_running(st, id, true, false)
                },
                move |st| Self::seen_state(st, id) == Some(DomainState::Running),
            )
            .await
        }
        .boxed()
    }

    fn shutdown(&self, id: VmId, timeout: Duration) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            // The agent powers the guest off after its own stop timeout if it ignores the
            // request; a Timeout here leaves the domain to be stopped (not reverted).
            let limit = timeout + self.timing.heartbeat_interval * 2;
            self.change(
                id,
                limit,
                true,
                |st| {
                    Self::require(st, id)?;
                    match Self::seen_state(st, id) {
                        Some(DomainState::Running | DomainState::ShuttingDown) => {}
                        s => {
                            let s = s.map_or("not defined".to_string(), |s| s.to_string());
                            return Err(DriverError::InvalidState(format!(
                                "domain {id} is {s}, cannot shut down"
                            )));
                        }
                    }
                    Self::set_running(st, id, false, false)
                },
                move |st| Self::seen_state(st, id).is_some_and(|s| !s.is_active()),
            )
            .await
            .map_err(|e| match e {
                DriverError::Timeout(_) => DriverError::Timeout(format!(
                    "domain {id} did not shut down within {}",
                    humantime::format_duration(timeout)
                )),
                e => e,
            })
        }
        .boxed()
    }

    fn destroy(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            self.change(
                id,
                self.timing.op_timeout,
                false,
                |st| {
                    Self::require(st, id)?;
                    if !Self::seen_state(st, id).is_some_and(|s| s.is_active()) {
                        return Err(DriverError::InvalidState(format!(
                            "domain {id} is not running, cannot destroy"
                        )));
                    }
                    Self::set_running(st, id, false, true)
                },
                move |st| Self::seen_state(st, id).is_some_and(|s| !s.is_active()),
            )
            .await
        }
        .boxed()
    }

    fn reboot(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            self.change(
                id,
                self.timing.op_timeout,
                false,
                |st| {
                    Self::require(st, id)?;
                    if Self::seen_state(st, id) != Some(DomainState::Running) {
                        return Err(DriverError::InvalidState(format!(
                            "domain {id} is not running, cannot reboot"
                        )));
                    }
                    if let Some(w) = st.desired.get_mut(&id) {
                        w.reboot_seq += 1;
                    }
                    // A reboot that was sent cannot be taken back; the undo is empty.
                    Ok(Box::new(|_: &mut LinkState| {}))
                },
                |_| true,
            )
            .await
        }
        .boxed()
    }

    fn suspend(&self, _id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        unsupported("suspend")
    }

    fn resume(&self, _id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        unsupported("resume")
    }

    fn undefine(&self, id: VmId, remove_volumes: bool) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            self.change(
                id,
                self.timing.op_timeout,
                false,
                |st| {
                    if !st.desired.contains_key(&id) && !st.seen.contains_key(&id) {
                        return Err(DriverError::NotFound(format!("domain {id}")));
                    }
                    if let Some(s) = Self::seen_state(st, id)
                        && s.is_active()
                    {
                        return Err(DriverError::InvalidState(format!(
                            "domain {id} is {s}, cannot undefine"
                        )));
                    }
                    let old = st.desired.remove(&id);
                    if remove_volumes {
                        // Cleared from purge by the heartbeat that shows it gone.
                        let g = st.generation + 1;
                        st.purge.insert(id, g);
                    }
                    Ok(Box::new(move |st: &mut LinkState| {
                        st.purge.remove(&id);
                        if let Some(w) = old {
                            st.desired.insert(id, w);
                        }
                    }))
                },
                move |st| !st.seen.contains_key(&id),
            )
            .await
        }
        .boxed()
    }

    fn list_volumes(&self, _pool: String) -> BoxFuture<'_, DriverResult<Vec<VolumeInfo>>> {
        unsupported("listing volumes")
    }

    fn migrate_live(
        &self,
        id: VmId,
        dest_uri: String,
        opts: crate::driver::LiveOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'_, DriverResult<()>> {
        self.migrate_to_peer(id, dest_uri, opts, progress).boxed()
    }

    fn abort_migration(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        async move { self.withdraw_migration(id) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_states_map_to_vm_states() {
        assert_eq!(vm_state_of(DomainState::Running), VmState::Running);
        assert_eq!(vm_state_of(DomainState::Shutoff), VmState::Stopped);
        assert_eq!(vm_state_of(DomainState::Crashed), VmState::Failed);
        assert_eq!(vm_state_of(DomainState::ShuttingDown), VmState::Stopping);
    }
}

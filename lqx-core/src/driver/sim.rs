//! `SimHypervisor`: a simulated hypervisor, entirely in memory, for tests, `--dev`/`--sim`
//! playgrounds and DRS/HA simulation. It is not a virtual machine monitor: nothing runs.
//!
//! It keeps the same state rules as libvirt (see [`super::Hypervisor`]), a host capacity
//! (starting a domain beyond the host's memory fails with `Exhausted`; CPU may be
//! overcommitted), storage pools with volumes, and knobs for tests: per-domain CPU/memory usage
//! (CPU time accrues on the tokio clock, so paused-time tests are exact), guests that are slow
//! to or never shut down, crashes, failure injection (fail the next call of an operation, or the
//! whole host goes unavailable), and live migration between simulated hosts of one
//! [`SimRegistry`] (keyed by URI, `sim://node-1`). No sleeps, except `tokio::time` where a
//! duration is the point (a slow guest shutdown, migration at a configured bandwidth).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use super::{
    DomainInfo, DomainSpec, DomainState, DomainStats, DriverError, DriverResult, Hypervisor, LiveOptions,
    MigrationProgress, NodeInfo, NodeStats, ProgressFn, VolumeInfo, xml::volume_name,
};
use crate::model::VmId;

/// URI scheme of simulated hosts.
pub const SCHEME: &str = "sim://";

const MIB: u64 = 1024 * 1024;

/// Capacity and behaviour of one simulated host.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Empty: the URI without `sim://`.
    pub hostname: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub live_migration: bool,
    /// Storage pools that exist (volumes are created in them on define).
    pub pools: Vec<String>,
    /// Live migration copies memory at this rate (MiB per second of tokio time); 0 is instant.
    pub migration_mib_per_sec: u64,
    /// The host CPU model reported; empty: `simulated`.
    pub cpu_model: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            hostname: String::new(),
            cpus: 32,
            memory_mib: 128 * 1024,
            live_migration: true,
            pools: vec![super::default_pool()],
            migration_mib_per_sec: 0,
            cpu_model: String::new(),
        }
    }
}

impl SimConfig {
    pub fn with_capacity(cpus: u32, memory_mib: u64) -> Self {
        SimConfig {
            cpus,
            memory_mib,
            ..Default::default()
        }
    }
}

/// An operation, for [`SimHypervisor::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimOp {
    NodeInfo,
    NodeStats,
    List,
    State,
    Spec,
    Stats,
    Define,
    Update,
    Start,
    Shutdown,
    Destroy,
    Reboot,
    Suspend,
    Resume,
    Undefine,
    Volumes,
    /// A live migration away from this host.
    MigrateOut,
    /// A live migration arriving at this host.
    MigrateIn,
}

/// How a simulated guest answers an ACPI shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownBehavior {
    /// Powers off at once.
    #[default]
    Immediate,
    /// Powers off after this long (tokio time).
    After(Duration),
    /// Ignores it (a hung guest, or one without ACPI).
    Ignore,
}

#[derive(Debug, Clone)]
struct SimDomain {
    spec: DomainSpec,
    state: DomainState,
    /// vCPUs and memory the domain booted with (the spec may change while it runs).
    live_vcpus: u32,
    live_memory_mib: u64,
    /// Share of its vCPUs in use while running, 0-100.
    cpu_percent: f64,
    /// Guest memory in use while running; `None` means all of it.
    memory_used_mib: Option<u64>,
    cpu_ns: f64,
    shutdown: ShutdownBehavior,
}

impl SimDomain {
    fn cpu_rate_ns(&self) -> f64 {
        if matches!(self.state, DomainState::Running | DomainState::ShuttingDown) {
            self.cpu_percent / 100.0 * self.live_vcpus as f64 * 1e9
        } else {
            0.0
        }
    }
    fn memory_in_use(&self) -> u64 {
        if self.state.is_active() {
            self.memory_used_mib
                .unwrap_or(self.live_memory_mib)
                .min(self.live_memory_mib)
        } else {
            0
        }
    }
}

#[derive(Debug)]
struct SimState {
    available: bool,
    /// False while the host's (simulated) power is off: see [`SimHypervisor::set_powered`].
    powered: bool,
    domains: BTreeMap<VmId, SimDomain>,
    /// (pool, volume) -> capacity MiB.
    volumes: BTreeMap<(String, String), u64>,
    failures: HashMap<SimOp, VecDeque<DriverError>>,
    /// Calls of these operations answer only after this long (a slow or hung libvirtd).
    stalls: HashMap<SimOp, Duration>,
    /// Calls started, by operation (what a slow libvirtd would have piling up).
    started: HashMap<SimOp, usize>,
    host_cpu_percent: f64,
    host_memory_mib: u64,
    busy_ns: f64,
    last: Instant,
    /// Live migrations running from this host; true once an abort was asked.
    migrating: HashMap<VmId, bool>,
}

struct SimNode {
    uri: String,
    config: SimConfig,
    state: Mutex<SimState>,
    /// Strong: a host can always find its peers, even when nobody else keeps the registry. (A
    /// registry and its hosts form a cycle and live until the process ends, like hosts do.)
    registry: Option<Arc<RegistryInner>>,
}

/// A simulated hypervisor host. Cheap to clone (a handle to shared state).
#[derive(Clone)]
pub struct SimHypervisor {
    node: Arc<SimNode>,
}

impl std::fmt::Debug for SimHypervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHypervisor").field("uri", &self.node.uri).finish()
    }
}

#[derive(Default)]
struct RegistryInner {
    nodes: Mutex<HashMap<String, Arc<SimNode>>>,
}

/// The simulated hosts that can see each other (live migration looks the destination up by
/// URI here). Cheap to clone.
#[derive(Clone, Default)]
pub struct SimRegistry {
    inner: Arc<RegistryInner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry used by [`super::connect`].
    pub fn global() -> &'static SimRegistry {
        static GLOBAL: OnceLock<SimRegistry> = OnceLock::new();
        GLOBAL.get_or_init(SimRegistry::new)
    }

    /// Adds a host; `AlreadyExists` if the URI is taken.
    pub fn create(&self, uri: &str, config: SimConfig) -> DriverResult<SimHypervisor> {
        check_uri(uri)?;
        let mut nodes = lock(&self.inner.nodes);
        if nodes.contains_key(uri) {
            return Err(DriverError::AlreadyExists(format!("simulated host {uri}")));
        }
        let node = SimNode::new(uri, config, Some(self.inner.clone()));
        nodes.insert(uri.to_string(), node.clone());
        Ok(SimHypervisor { node })
    }

    /// The host at `uri`, created with `config` if missing.
    pub fn get_or_create(&self, uri: &str, config: SimConfig) -> DriverResult<SimHypervisor> {
        check_uri(uri)?;
        let mut nodes = lock(&self.inner.nodes);
        let node = nodes
            .entry(uri.to_string())
            .or_insert_with(|| SimNode::new(uri, config, Some(self.inner.clone())))
            .clone();
        Ok(SimHypervisor { node })
    }

    pub fn get(&self, uri: &str) -> Option<SimHypervisor> {
        lock(&self.inner.nodes)
            .get(uri)
            .map(|node| SimHypervisor { node: node.clone() })
    }

    /// Forgets a host (handles keep working, but nothing can migrate to it any more).
    pub fn remove(&self, uri: &str) -> bool {
        lock(&self.inner.nodes).remove(uri).is_some()
    }
}

fn check_uri(uri: &str) -> DriverResult<()> {
    match uri.strip_prefix(SCHEME) {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err(DriverError::Invalid(format!("{uri:?} is not a sim://NAME URI"))),
    }
}

impl SimNode {
    fn new(uri: &str, config: SimConfig, registry: Option<Arc<RegistryInner>>) -> Arc<Self> {
        Arc::new(SimNode {
            uri: uri.to_string(),
            config,
            state: Mutex::new(SimState {
                available: true,
                powered: true,
                domains: BTreeMap::new(),
                volumes: BTreeMap::new(),
                failures: HashMap::new(),
                stalls: HashMap::new(),
                started: HashMap::new(),
                host_cpu_percent: 0.0,
                host_memory_mib: 0,
                busy_ns: 0.0,
                last: Instant::now(),
                migrating: HashMap::new(),
            }),
            registry,
        })
    }
}

impl SimState {
    /// Answering calls: powered on and reachable.
    fn up(&self) -> bool {
        self.powered && self.available
    }

    /// Accrues CPU time up to now at the current rates.
    fn fold(&mut self, cpus: u32) {
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if dt == 0.0 {
            return;
        }
        let mut rate = self.host_cpu_percent / 100.0 * cpus as f64 * 1e9;
        for d in self.domains.values_mut() {
            let r = d.cpu_rate_ns();
            d.cpu_ns += r * dt;
            rate += r;
        }
        self.busy_ns += rate.min(cpus as f64 * 1e9) * dt;
    }

    fn domain(&mut self, id: VmId) -> DriverResult<&mut SimDomain> {
        self.domains.get_mut(&id).ok_or_else(|| not_found(id))
    }

    fn active_memory_mib(&self) -> u64 {
        self.domains
            .values()
            .filter(|d| d.state.is_active())
            .map(|d| d.live_memory_mib)
            .sum()
    }

    fn ensure_volumes(&mut self, spec: &DomainSpec, pools: &[String]) -> DriverResult<()> {
        for d in &spec.disks {
            if !pools.contains(&d.pool) {
                return Err(DriverError::NotFound(format!("storage pool {}", d.pool)));
            }
        }
        for d in &spec.disks {
            self.volumes
                .entry((d.pool.clone(), volume_name(spec.id, &d.name)))
                .or_insert(d.size_mib);
        }
        Ok(())
    }
}

fn not_found(id: VmId) -> DriverError {
    DriverError::NotFound(format!("domain {id}"))
}

fn wrong_state(id: VmId, state: DomainState, op: &str) -> DriverError {
    DriverError::InvalidState(format!("domain {id} is {state}, cannot {op}"))
}

impl SimHypervisor {
    /// A host outside any registry (it cannot live-migrate).
    pub fn new(uri: &str, config: SimConfig) -> DriverResult<Self> {
        check_uri(uri)?;
        Ok(SimHypervisor {
            node: SimNode::new(uri, config, None),
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.node.config
    }

    /// Locks the state for `op`: fails if the host is unavailable or a failure is queued for
    /// `op`, and brings CPU counters up to now.
    fn begin(&self, op: SimOp) -> DriverResult<MutexGuard<'_, SimState>> {
        let mut st = lock(&self.node.state);
        *st.started.entry(op).or_default() += 1;
        if !st.powered {
            return Err(DriverError::Unavailable(format!(
                "simulated host {} is powered off",
                self.node.uri
            )));
        }
        if !st.available {
            return Err(DriverError::Unavailable(format!(
                "simulated host {} is down",
                self.node.uri
            )));
        }
        if let Some(e) = st.failures.get_mut(&op).and_then(VecDeque::pop_front) {
            return Err(e);
        }
        st.fold(self.node.config.cpus);
        Ok(st)
    }

    fn knobs(&self) -> MutexGuard<'_, SimState> {
        let mut st = lock(&self.node.state);
        st.fold(self.node.config.cpus);
        st
    }

    // ---- knobs for tests and simulations ----

    /// The next call of `op` fails with `err` (queued: call several times for several failures).
    pub fn fail_next(&self, op: SimOp, err: DriverError) {
        lock(&self.node.state).failures.entry(op).or_default().push_back(err);
    }

    /// Every call of `op` answers only after `d` (`None`: at once again): a slow or hung
    /// libvirtd. Implemented for listing and defining domains.
    pub fn stall(&self, op: SimOp, d: Option<Duration>) {
        let mut st = lock(&self.node.state);
        match d {
            Some(d) => st.stalls.insert(op, d),
            None => st.stalls.remove(&op),
        };
    }

    /// How many calls of `op` were started.
    pub fn started(&self, op: SimOp) -> usize {
        lock(&self.node.state).started.get(&op).copied().unwrap_or(0)
    }

    fn stall_of(&self, op: SimOp) -> Option<Duration> {
        lock(&self.node.state).stalls.get(&op).copied()
    }

    /// Drops queued failures.
    pub fn clear_failures(&self) {
        lock(&self.node.state).failures.clear();
    }

    /// An unavailable host fails every call with `Unavailable` (connection lost, host down).
    /// Its domains keep their state (a network cut does not stop guests).
    pub fn set_available(&self, available: bool) {
        lock(&self.node.state).available = available;
    }

    /// Powers the host off or on, as its BMC does (see `crate::power::hosts`). Off, it answers
    /// nothing (every call fails `Unavailable`) and its guests stop: a power cut ends every
    /// running domain, which stays defined and shut off, as after a real host boots again.
    pub fn set_powered(&self, on: bool) {
        let mut st = self.knobs();
        if st.powered == on {
            return;
        }
        st.powered = on;
        if !on {
            for d in st.domains.values_mut() {
                d.state = DomainState::Shutoff;
            }
            // A migration away from a host that lost power does not complete.
            st.migrating.values_mut().for_each(|abort| *abort = true);
        }
    }

    /// Whether the host's power is on ([`SimHypervisor::set_powered`]).
    pub fn is_powered(&self) -> bool {
        lock(&self.node.state).powered
    }

    /// CPU use (% of its vCPUs) and memory use of a domain while it runs.
    pub fn set_usage(&self, id: VmId, cpu_percent: f64, memory_used_mib: Option<u64>) -> DriverResult<()> {
        let mut st = self.knobs();
        let d = st.domain(id)?;
        d.cpu_percent = cpu_percent.clamp(0.0, 100.0);
        d.memory_used_mib = memory_used_mib;
        Ok(())
    }

    /// CPU (% of the host) and memory used by the host itself, outside domains.
    pub fn set_host_overhead(&self, cpu_percent: f64, memory_mib: u64) {
        let mut st = self.knobs();
        st.host_cpu_percent = cpu_percent.clamp(0.0, 100.0);
        st.host_memory_mib = memory_mib;
    }

    pub fn set_shutdown_behavior(&self, id: VmId, behavior: ShutdownBehavior) -> DriverResult<()> {
        self.knobs().domain(id)?.shutdown = behavior;
        Ok(())
    }

    /// The guest crashes (state `crashed`, or restarted if its spec says so).
    pub fn crash(&self, id: VmId) -> DriverResult<()> {
        let mut st = self.knobs();
        let d = st.domain(id)?;
        if !d.state.is_active() {
            return Err(wrong_state(id, d.state, "crash"));
        }
        d.state = match d.spec.on_crash {
            super::CrashAction::Restart => DomainState::Running,
            super::CrashAction::Destroy => DomainState::Shutoff,
            super::CrashAction::Preserve => DomainState::Crashed,
        };
        Ok(())
    }

    /// Number of domains defined (any state).
    pub fn domain_count(&self) -> usize {
        lock(&self.node.state).domains.len()
    }

    fn registry(&self) -> Option<SimRegistry> {
        self.node.registry.clone().map(|inner| SimRegistry { inner })
    }

    // ---- operations (sync parts) ----

    fn transition(&self, op: SimOp, id: VmId, verb: &str, from: &[DomainState], to: DomainState) -> DriverResult<()> {
        let mut st = self.begin(op)?;
        let d = st.domain(id)?;
        if !from.contains(&d.state) {
            return Err(wrong_state(id, d.state, verb));
        }
        d.state = to;
        Ok(())
    }

    fn do_start(&self, id: VmId) -> DriverResult<()> {
        let mut st = self.begin(SimOp::Start)?;
        let used = st.active_memory_mib() + st.host_memory_mib;
        let cap = self.node.config.memory_mib;
        let d = st.domain(id)?;
        if !matches!(d.state, DomainState::Shutoff | DomainState::Crashed) {
            return Err(wrong_state(id, d.state, "start"));
        }
        if used + d.spec.memory_mib > cap {
            return Err(DriverError::Exhausted(format!(
                "domain {id} needs {} MiB, host has {} MiB free",
                d.spec.memory_mib,
                cap.saturating_sub(used)
            )));
        }
        d.live_vcpus = d.spec.vcpus;
        d.live_memory_mib = d.spec.memory_mib;
        d.state = DomainState::Running;
        Ok(())
    }

    fn do_define(&self, spec: DomainSpec, update: bool) -> DriverResult<()> {
        spec.validate()?;
        let mut st = self.begin(if update { SimOp::Update } else { SimOp::Define })?;
        let exists = st.domains.contains_key(&spec.id);
        if update && !exists {
            return Err(not_found(spec.id));
        }
        if !update && exists {
            return Err(DriverError::AlreadyExists(format!("domain {}", spec.id)));
        }
        st.ensure_volumes(&spec, &self.node.config.pools)?;
        let spec = spec.with_effective_macs();
        if let Some(d) = st.domains.get_mut(&spec.id) {
            d.spec = spec;
        } else {
            st.domains.insert(
                spec.id,
                SimDomain {
                    live_vcpus: spec.vcpus,
                    live_memory_mib: spec.memory_mib,
                    spec,
                    state: DomainState::Shutoff,
                    cpu_percent: 100.0,
                    memory_used_mib: None,
                    cpu_ns: 0.0,
                    shutdown: ShutdownBehavior::default(),
                },
            );
        }
        Ok(())
    }

    fn do_undefine(&self, id: VmId, remove_volumes: bool) -> DriverResult<()> {
        let mut st = self.begin(SimOp::Undefine)?;
        let d = st.domain(id)?;
        if d.state.is_active() {
            return Err(wrong_state(id, d.state, "undefine"));
        }
        let spec = d.spec.clone();
        st.domains.remove(&id);
        if remove_volumes {
            for disk in &spec.disks {
                st.volumes.remove(&(disk.pool.clone(), volume_name(id, &disk.name)));
            }
        }
        Ok(())
    }

    async fn do_shutdown(&self, id: VmId, timeout: Duration) -> DriverResult<()> {
        let wait = {
            let mut st = self.begin(SimOp::Shutdown)?;
            let d = st.domain(id)?;
            if d.state != DomainState::Running {
                return Err(wrong_state(id, d.state, "shut down"));
            }
            match d.shutdown {
                ShutdownBehavior::Immediate => {
                    d.state = DomainState::Shutoff;
                    return Ok(());
                }
                ShutdownBehavior::After(t) => Some(t),
                ShutdownBehavior::Ignore => None,
            }
        };
        match wait {
            Some(t) if t <= timeout => {
                tokio::time::sleep(t).await;
                let mut st = self.knobs();
                if let Some(d) = st.domains.get_mut(&id)
                    && d.state == DomainState::Running
                {
                    d.state = DomainState::Shutoff;
                }
                Ok(())
            }
            _ => {
                tokio::time::sleep(timeout).await;
                Err(DriverError::Timeout(format!(
                    "domain {id} did not shut down within {}",
                    humantime::format_duration(timeout)
                )))
            }
        }
    }

    async fn do_migrate(
        &self,
        id: VmId,
        dest_uri: String,
        opts: LiveOptions,
        progress: Option<ProgressFn>,
    ) -> DriverResult<()> {
        {
            let mut st = lock(&self.node.state);
            if st.migrating.contains_key(&id) {
                return Err(DriverError::InvalidState(format!("domain {id} is already migrating")));
            }
            st.migrating.insert(id, false);
        }
        let r = self.do_migrate_inner(id, dest_uri, opts, progress).await;
        lock(&self.node.state).migrating.remove(&id);
        r
    }

    async fn do_migrate_inner(
        &self,
        id: VmId,
        dest_uri: String,
        opts: LiveOptions,
        progress: Option<ProgressFn>,
    ) -> DriverResult<()> {
        if !self.node.config.live_migration {
            return Err(DriverError::Unsupported(format!(
                "simulated host {} has live migration disabled",
                self.node.uri
            )));
        }
        let memory_mib = {
            let mut st = self.begin(SimOp::MigrateOut)?;
            let d = st.domain(id)?;
            if !matches!(d.state, DomainState::Running | DomainState::Paused) {
                return Err(wrong_state(id, d.state, "live-migrate"));
            }
            d.live_memory_mib
        };
        let dest = self
            .registry()
            .and_then(|r| r.get(&dest_uri))
            .ok_or_else(|| DriverError::NotFound(format!("simulated host {dest_uri}")))?;
        if Arc::ptr_eq(&dest.node, &self.node) {
            return Err(DriverError::InvalidState(format!(
                "domain {id} is already on {dest_uri}"
            )));
        }
        if !dest.node.config.live_migration {
            return Err(DriverError::Unsupported(format!(
                "simulated host {dest_uri} has live migration disabled"
            )));
        }
        drop(dest.begin(SimOp::MigrateIn)?);

        let total = memory_mib * MIB;
        let report = |processed: u64| {
            if let Some(p) = &progress {
                p(MigrationProgress {
                    processed_bytes: processed,
                    total_bytes: total,
                    remaining_bytes: total - processed,
                });
            }
        };
        report(0);
        let mut rate = self.node.config.migration_mib_per_sec;
        if opts.bandwidth_mib_per_sec > 0 {
            rate = if rate == 0 {
                opts.bandwidth_mib_per_sec
            } else {
                rate.min(opts.bandwidth_mib_per_sec)
            };
        }
        let started = tokio::time::Instant::now();
        if rate > 0 {
            let mut done = 0;
            while done < memory_mib {
                tokio::time::sleep(Duration::from_secs(1)).await;
                // Checked every second like libvirt's job: an abort, a host that went down, or
                // the timeout end the migration with the domain still here.
                if lock(&self.node.state).migrating.get(&id) == Some(&true) {
                    return Err(DriverError::InvalidState(format!(
                        "migration of domain {id} was aborted"
                    )));
                }
                if !lock(&dest.node.state).up() {
                    return Err(DriverError::Unavailable(format!("simulated host {dest_uri} is down")));
                }
                if let Some(t) = opts.timeout
                    && started.elapsed() >= t
                {
                    if opts.post_copy {
                        break;
                    }
                    return Err(DriverError::Timeout(format!(
                        "live migration of {id} did not finish within {}; aborted, it keeps running here",
                        humantime::format_duration(t)
                    )));
                }
                done = (done + rate).min(memory_mib);
                report(done * MIB);
            }
        }

        // Commit: both hosts locked (in URI order, so two opposite migrations cannot
        // deadlock), everything re-checked, the domain moved in one step.
        let (first, second) = if self.node.uri < dest.node.uri {
            (&self.node, &dest.node)
        } else {
            (&dest.node, &self.node)
        };
        let mut a = lock(&first.state);
        let mut b = lock(&second.state);
        let (src, dst) = if Arc::ptr_eq(first, &self.node) {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        if !src.up() {
            return Err(DriverError::Unavailable(format!(
                "simulated host {} is down",
                self.node.uri
            )));
        }
        if !dst.up() {
            return Err(DriverError::Unavailable(format!("simulated host {dest_uri} is down")));
        }
        src.fold(self.node.config.cpus);
        dst.fold(dest.node.config.cpus);
        let d = src.domain(id)?;
        if !matches!(d.state, DomainState::Running | DomainState::Paused) {
            return Err(wrong_state(id, d.state, "live-migrate"));
        }
        if dst.domains.contains_key(&id) {
            return Err(DriverError::AlreadyExists(format!("domain {id} on {dest_uri}")));
        }
        let free = dest
            .node
            .config
            .memory_mib
            .saturating_sub(dst.active_memory_mib() + dst.host_memory_mib);
        if d.live_memory_mib > free {
            return Err(DriverError::Exhausted(format!(
                "domain {id} needs {} MiB, {dest_uri} has {free} MiB free",
                d.live_memory_mib
            )));
        }
        let spec = d.spec.clone();
        dst.ensure_volumes(&spec, &dest.node.config.pools)?;
        // The disks travel with the domain (as with libvirt's non-shared-storage migration).
        for disk in &spec.disks {
            let key = (disk.pool.clone(), volume_name(id, &disk.name));
            if let Some(size) = src.volumes.remove(&key) {
                dst.volumes.insert(key, size);
            }
        }
        let d = src.domains.remove(&id).ok_or_else(|| not_found(id))?;
        dst.domains.insert(id, d);
        drop((a, b));
        report(total);
        Ok(())
    }
}

impl Hypervisor for SimHypervisor {
    fn uri(&self) -> &str {
        &self.node.uri
    }

    fn supports_live_migration(&self) -> bool {
        self.node.config.live_migration
    }

    fn node_info(&self) -> BoxFuture<'_, DriverResult<NodeInfo>> {
        let r = self.begin(SimOp::NodeInfo).map(|_| {
            let c = &self.node.config;
            let hostname = if c.hostname.is_empty() {
                self.node.uri.trim_start_matches(SCHEME).to_string()
            } else {
                c.hostname.clone()
            };
            NodeInfo {
                hostname,
                cpus: c.cpus,
                memory_mib: c.memory_mib,
                cpu_model: if c.cpu_model.is_empty() {
                    "simulated".into()
                } else {
                    c.cpu_model.clone()
                },
            }
        });
        async move { r }.boxed()
    }

    fn node_stats(&self) -> BoxFuture<'_, DriverResult<NodeStats>> {
        let r = self.begin(SimOp::NodeStats).map(|st| NodeStats {
            cpu_busy_ns: st.busy_ns as u64,
            memory_total_mib: self.node.config.memory_mib,
            memory_used_mib: st.host_memory_mib + st.domains.values().map(SimDomain::memory_in_use).sum::<u64>(),
        });
        async move { r }.boxed()
    }

    fn list_domains(&self) -> BoxFuture<'_, DriverResult<Vec<DomainInfo>>> {
        let r = self.begin(SimOp::List).map(|st| {
            st.domains
                .values()
                .map(|d| DomainInfo {
                    id: d.spec.id,
                    name: d.spec.name.clone(),
                    state: d.state,
                    managed: true,
                })
                .collect()
        });
        let stall = self.stall_of(SimOp::List);
        async move {
            if let Some(d) = stall {
                tokio::time::sleep(d).await;
            }
            r
        }
        .boxed()
    }

    fn domain_state(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainState>> {
        let r = self.begin(SimOp::State).and_then(|mut st| Ok(st.domain(id)?.state));
        async move { r }.boxed()
    }

    fn domain_spec(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainSpec>> {
        let r = self.begin(SimOp::Spec).and_then(|mut st| {
            let mut spec = st.domain(id)?.spec.clone();
            for disk in &mut spec.disks {
                if let Some(size) = st.volumes.get(&(disk.pool.clone(), volume_name(id, &disk.name))) {
                    disk.size_mib = *size;
                }
            }
            Ok(spec)
        });
        async move { r }.boxed()
    }

    fn domain_stats(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainStats>> {
        let r = self.begin(SimOp::Stats).and_then(|mut st| {
            let d = st.domain(id)?;
            Ok(DomainStats {
                id,
                state: d.state,
                vcpus: if d.state.is_active() {
                    d.live_vcpus
                } else {
                    d.spec.vcpus
                },
                cpu_time_ns: d.cpu_ns as u64,
                memory_mib: if d.state.is_active() {
                    d.live_memory_mib
                } else {
                    d.spec.memory_mib
                },
                memory_used_mib: d.memory_in_use(),
            })
        });
        async move { r }.boxed()
    }

    fn define(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        let stall = self.stall_of(SimOp::Define);
        async move {
            if let Some(d) = stall {
                tokio::time::sleep(d).await;
            }
            self.do_define(spec, false)
        }
        .boxed()
    }

    fn update(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        let r = self.do_define(spec, true);
        async move { r }.boxed()
    }

    fn start(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        let r = self.do_start(id);
        async move { r }.boxed()
    }

    fn shutdown(&self, id: VmId, timeout: Duration) -> BoxFuture<'_, DriverResult<()>> {
        self.do_shutdown(id, timeout).boxed()
    }

    fn destroy(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        use DomainState::*;
        let r = self.transition(SimOp::Destroy, id, "destroy", &[Running, Paused, ShuttingDown], Shutoff);
        async move { r }.boxed()
    }

    fn reboot(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        use DomainState::*;
        let r = self.transition(SimOp::Reboot, id, "reboot", &[Running], Running);
        async move { r }.boxed()
    }

    fn suspend(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        use DomainState::*;
        let r = self.transition(SimOp::Suspend, id, "suspend", &[Running], Paused);
        async move { r }.boxed()
    }

    fn resume(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        use DomainState::*;
        let r = self.transition(SimOp::Resume, id, "resume", &[Paused], Running);
        async move { r }.boxed()
    }

    fn undefine(&self, id: VmId, remove_volumes: bool) -> BoxFuture<'_, DriverResult<()>> {
        let r = self.do_undefine(id, remove_volumes);
        async move { r }.boxed()
    }

    fn list_volumes(&self, pool: String) -> BoxFuture<'_, DriverResult<Vec<VolumeInfo>>> {
        let r = self.begin(SimOp::Volumes).and_then(|st| {
            if !self.node.config.pools.contains(&pool) {
                return Err(DriverError::NotFound(format!("storage pool {pool}")));
            }
            Ok(st
                .volumes
                .iter()
                .filter(|((p, _), _)| *p == pool)
                .map(|((_, name), size)| VolumeInfo {
                    name: name.clone(),
                    capacity_mib: *size,
                })
                .collect())
        });
        async move { r }.boxed()
    }

    fn migrate_live(
        &self,
        id: VmId,
        dest_uri: String,
        opts: LiveOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'_, DriverResult<()>> {
        self.do_migrate(id, dest_uri, opts, progress).boxed()
    }

    fn abort_migration(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        let r = match lock(&self.node.state).migrating.get_mut(&id) {
            Some(abort) => {
                *abort = true;
                Ok(())
            }
            None => Err(DriverError::NotFound(format!("no migration of domain {id} runs here"))),
        };
        async move { r }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::DriverErrorKind;

    fn spec(mem: u64) -> DomainSpec {
        DomainSpec::new(VmId::new(), "vm", 2, mem)
    }

    #[tokio::test(start_paused = true)]
    async fn cpu_time_accrues_on_tokio_time() {
        let h = SimHypervisor::new("sim://a", SimConfig::with_capacity(4, 8192)).unwrap();
        let s = spec(1024);
        h.define(s.clone()).await.unwrap();
        h.start(s.id).await.unwrap();
        h.set_usage(s.id, 50.0, Some(256)).unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        let st = h.domain_stats(s.id).await.unwrap();
        // 2 vCPUs at 50% for 10 s = 10 CPU-seconds.
        assert_eq!(st.cpu_time_ns, 10_000_000_000);
        assert_eq!(st.memory_used_mib, 256);
        let n = h.node_stats().await.unwrap();
        assert_eq!(n.cpu_busy_ns, 10_000_000_000);
        assert_eq!(n.memory_used_mib, 256);
        h.suspend(s.id).await.unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            h.domain_stats(s.id).await.unwrap().cpu_time_ns,
            10_000_000_000,
            "paused guests use no CPU"
        );
    }

    #[tokio::test]
    async fn memory_capacity_is_enforced_at_start() {
        let h = SimHypervisor::new("sim://a", SimConfig::with_capacity(4, 2048)).unwrap();
        let (a, b) = (spec(1536), spec(1024));
        h.define(a.clone()).await.unwrap();
        h.define(b.clone()).await.unwrap();
        h.start(a.id).await.unwrap();
        assert_eq!(h.start(b.id).await.unwrap_err().kind(), DriverErrorKind::Exhausted);
        h.destroy(a.id).await.unwrap();
        h.start(b.id).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn slow_and_hung_guests() {
        let h = SimHypervisor::new("sim://a", SimConfig::default()).unwrap();
        let s = spec(512);
        h.define(s.clone()).await.unwrap();
        h.start(s.id).await.unwrap();
        h.set_shutdown_behavior(s.id, ShutdownBehavior::After(Duration::from_secs(5)))
            .unwrap();
        let t0 = Instant::now();
        h.shutdown(s.id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
        assert_eq!(h.domain_state(s.id).await.unwrap(), DomainState::Shutoff);

        h.start(s.id).await.unwrap();
        h.set_shutdown_behavior(s.id, ShutdownBehavior::Ignore).unwrap();
        let t0 = Instant::now();
        let e = h.shutdown(s.id, Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::Timeout);
        assert_eq!(t0.elapsed(), Duration::from_secs(30));
        assert_eq!(h.domain_state(s.id).await.unwrap(), DomainState::Running);
    }

    #[tokio::test]
    async fn failure_injection_and_unavailability() {
        let h = SimHypervisor::new("sim://a", SimConfig::default()).unwrap();
        let s = spec(512);
        h.fail_next(SimOp::Define, DriverError::Other("disk full".into()));
        assert_eq!(
            h.define(s.clone()).await.unwrap_err(),
            DriverError::Other("disk full".into())
        );
        h.define(s.clone()).await.unwrap();
        h.set_available(false);
        assert_eq!(h.list_domains().await.unwrap_err().kind(), DriverErrorKind::Unavailable);
        h.set_available(true);
        assert_eq!(h.list_domains().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_host_powered_off_answers_nothing_and_its_guests_stop() {
        let h = SimHypervisor::new("sim://a", SimConfig::default()).unwrap();
        let s = spec(512);
        h.define(s.clone()).await.unwrap();
        h.start(s.id).await.unwrap();
        h.set_powered(false);
        assert!(!h.is_powered());
        let e = h.list_domains().await.unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::Unavailable);
        assert!(e.to_string().contains("powered off"), "{e}");
        h.set_powered(true);
        // Still defined, no longer running: the power cut ended the guest.
        assert_eq!(h.domain_state(s.id).await.unwrap(), DomainState::Shutoff);
    }

    #[tokio::test]
    async fn crash_follows_on_crash_policy() {
        let h = SimHypervisor::new("sim://a", SimConfig::default()).unwrap();
        let mut s = spec(512);
        s.on_crash = crate::driver::CrashAction::Preserve;
        h.define(s.clone()).await.unwrap();
        h.start(s.id).await.unwrap();
        h.crash(s.id).unwrap();
        assert_eq!(h.domain_state(s.id).await.unwrap(), DomainState::Crashed);
        h.start(s.id).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn live_migration_between_registered_hosts_reports_progress() {
        let reg = SimRegistry::new();
        let cfg = SimConfig {
            migration_mib_per_sec: 256,
            ..SimConfig::default()
        };
        let a = reg.create("sim://a", cfg.clone()).unwrap();
        let b = reg.create("sim://b", cfg).unwrap();
        let mut s = spec(1024);
        s.disks.push(crate::driver::DiskSpec {
            name: "root".into(),
            size_mib: 10,
            pool: "default".into(),
            bus: Default::default(),
        });
        a.define(s.clone()).await.unwrap();
        a.start(s.id).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let progress: ProgressFn = Arc::new(move |p| lock(&sink).push(p.percent()));
        a.migrate_live(s.id, "sim://b".into(), Default::default(), Some(progress))
            .await
            .unwrap();
        assert_eq!(*lock(&seen), vec![0, 25, 50, 75, 100, 100]);
        assert_eq!(
            a.domain_state(s.id).await.unwrap_err().kind(),
            DriverErrorKind::NotFound
        );
        assert_eq!(b.domain_state(s.id).await.unwrap(), DomainState::Running);
        assert_eq!(b.list_volumes("default".into()).await.unwrap().len(), 1);
        assert!(a.list_volumes("default".into()).await.unwrap().is_empty());
        // Unknown destination, and a host outside the registry.
        assert_eq!(
            b.migrate_live(s.id, "sim://nope".into(), Default::default(), None)
                .await
                .unwrap_err()
                .kind(),
            DriverErrorKind::NotFound
        );
    }

    #[tokio::test(start_paused = true)]
    async fn live_migration_honours_bandwidth_timeout_post_copy_and_abort() {
        let reg = SimRegistry::new();
        let a = reg.create("sim://a", SimConfig::default()).unwrap();
        let b = reg.create("sim://b", SimConfig::default()).unwrap();
        let s = spec(1024);
        a.define(s.clone()).await.unwrap();
        a.start(s.id).await.unwrap();
        // 128 MiB/s for 1 GiB takes 8 s: a 3 s timeout aborts it, the domain stays here.
        let slow = LiveOptions {
            bandwidth_mib_per_sec: 128,
            timeout: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let e = a.migrate_live(s.id, "sim://b".into(), slow, None).await.unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::Timeout);
        assert_eq!(a.domain_state(s.id).await.unwrap(), DomainState::Running);
        assert!(b.domain_state(s.id).await.is_err());
        // With post-copy the timeout switches over instead: it finishes.
        let post = LiveOptions {
            post_copy: true,
            ..slow
        };
        let t0 = tokio::time::Instant::now();
        a.migrate_live(s.id, "sim://b".into(), post, None).await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(b.domain_state(s.id).await.unwrap(), DomainState::Running);
        // An abort while it runs: back on the source, untouched.
        let b2 = b.clone();
        let id = s.id;
        let mig = tokio::spawn(async move {
            b2.migrate_live(
                id,
                "sim://a".into(),
                LiveOptions {
                    bandwidth_mib_per_sec: 128,
                    ..Default::default()
                },
                None,
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        b.abort_migration(s.id).await.unwrap();
        assert_eq!(mig.await.unwrap().unwrap_err().kind(), DriverErrorKind::InvalidState);
        assert_eq!(b.domain_state(s.id).await.unwrap(), DomainState::Running);
        assert_eq!(
            b.abort_migration(s.id).await.unwrap_err().kind(),
            DriverErrorKind::NotFound,
            "nothing runs any more"
        );
    }

    #[test]
    fn registry_rejects_duplicates_and_bad_uris() {
        let reg = SimRegistry::new();
        reg.create("sim://a", SimConfig::default()).unwrap();
        assert_eq!(
            reg.create("sim://a", SimConfig::default()).unwrap_err().kind(),
            DriverErrorKind::AlreadyExists
        );
        assert!(reg.create("qemu:///system", SimConfig::default()).is_err());
        assert!(reg.get("sim://a").is_some());
        assert!(reg.remove("sim://a"));
        assert!(reg.get("sim://a").is_none());
    }
}

//! The agent loop: join once, then heartbeat and reconcile until told to stop.
//!
//! The rule, in plain words:
//! - Join: with no identity in the data directory, register with the join token and keep the
//!   node id and credential there (mode 0600). A restart reuses them and never joins again.
//! - Every `heartbeat_interval` (2 s by default), send node and domain usage and states; the
//!   answer carries the
//!   full desired state of the node (level-triggered), which is reconciled into the hypervisor
//!   with [`super::reconcile`]. After a pass that changed something the agent reports again
//!   at once, so the control plane sees the result without waiting a period.
//! - When the control plane cannot be reached, retry with exponential backoff and jitter; the
//!   hypervisor is left as it is (the last desired state stays applied) except for fencing.
//! - Self-fencing ([`super::fence`]) runs in its own task, so a heartbeat stuck on the network
//!   does not delay it; the last desired state is kept on disk, so an agent restarted while the
//!   control plane is away still knows its HA-protected domains.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{sync::Notify, time::Instant};
use tracing::{error, info, warn};

use super::{
    control::{ControlPlane, desired_from_pb},
    fence::{Watchdog, fence_filter},
    identity::{AgentError, Identity},
    migration::Migrator,
    observe::{Sampler, reported_states},
    reconcile::{Action, DesiredDomain, apply, reconcile_with_purge},
};
use crate::{
    ErrorKind,
    api::node::v1 as pb,
    driver::{DomainSpec, DomainState, DriverError, Hypervisor},
    model::{NodeId, VmId},
};

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Node name; empty: the hypervisor's host name.
    pub name: String,
    /// Used once, when there is no identity in `data_dir` yet. Never logged.
    pub join_token: Option<String>,
    pub data_dir: PathBuf,
    pub management_address: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Overrides the control plane's heartbeat interval.
    pub heartbeat_interval: Option<Duration>,
    /// ACPI shutdown timeout before a domain that should stop is powered off.
    pub stop_timeout: Duration,
    /// Upper bound of the reconnect backoff.
    pub max_backoff: Duration,
    /// A heartbeat that takes longer than this counts as failed.
    pub request_timeout: Duration,
    /// The libvirt URI peers' libvirtd use to live-migrate domains here (empty: none).
    pub migration_uri: String,
    /// The fence process's socket (`lqx-server fence`); `None`: the agent's own watchdog is
    /// the only fence, and heartbeats say fencing is degraded.
    pub fence_socket: Option<PathBuf>,
}

impl AgentOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        AgentOptions {
            name: String::new(),
            join_token: None,
            data_dir: data_dir.into(),
            management_address: String::new(),
            labels: Default::default(),
            heartbeat_interval: None,
            stop_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            migration_uri: String::new(),
            fence_socket: None,
        }
    }
}

pub const IDENTITY_FILE: &str = "agent-identity.json";
const DESIRED_FILE: &str = "agent-desired.json";
const REBOOTS_FILE: &str = "agent-reboots.json";
/// Consecutive immediate re-heartbeats after passes that changed something.
const MAX_FAST_PASSES: u32 = 5;

/// The last desired state received, kept on disk for fencing after a restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Remembered {
    generation: u64,
    domains: Vec<(DesiredDomain, u64)>,
    purge: Vec<VmId>,
}

/// The reconnect delay after `failures` failed attempts: exponential from 500 ms up to `max`,
/// scaled by `jitter` (in 0.5..=1.0, random in production) so agents cut off together do not
/// come back in lockstep.
pub fn backoff(failures: u32, max: Duration, jitter: f64) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    base.min(max).mul_f64(jitter.clamp(0.5, 1.0))
}

/// A running agent: one hypervisor, one control plane.
pub struct Agent {
    opts: AgentOptions,
    cp: Arc<dyn ControlPlane>,
    hv: Arc<dyn Hypervisor>,
    migrator: Arc<Migrator>,
}

struct Shared {
    watchdog: Watchdog,
    ha: HashSet<VmId>,
    /// The latest desired state received (or saved by an earlier run).
    desired: Remembered,
    /// A heartbeat was answered since the agent started.
    reachable: bool,
    /// The generation of the last reconcile pass, and its failures.
    applied: u64,
    errors: HashMap<VmId, DriverError>,
    /// Passes done, and the last pass whose outcome went into a heartbeat: a pass waits
    /// until the one before was reported, so no failure is retried before the control plane
    /// saw it.
    passes: u64,
    reported_pass: u64,
}

/// What the reconcile passes learned.
#[derive(Default)]
struct Memory {
    specs: HashMap<VmId, DomainSpec>,
    errors: HashMap<VmId, DriverError>,
    /// Reboot sequence numbers already acted on (kept on disk).
    reboots_done: HashMap<VmId, u64>,
}

impl Agent {
    pub fn new(opts: AgentOptions, cp: Arc<dyn ControlPlane>, hv: Arc<dyn Hypervisor>) -> Self {
        let migrator = Migrator::new(hv.clone(), &opts.data_dir);
        Agent { opts, cp, hv, migrator }
    }

    fn identity_path(&self) -> PathBuf {
        self.opts.data_dir.join(IDENTITY_FILE)
    }

    /// The identity on disk, or a new one from joining (retried while the control plane is
    /// unreachable).
    pub async fn identity(&self) -> Result<Identity, AgentError> {
        let path = self.identity_path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let id: Identity = serde_json::from_slice(&bytes).map_err(|source| AgentError::CorruptIdentity {
                    path: path.clone(),
                    source,
                })?;
                info!(node = %id.node_id, "using the identity from an earlier join");
                return Ok(id);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(AgentError::DataDir { path, source }),
        }
        let token = self.opts.join_token.clone().ok_or(AgentError::NoJoinToken)?;
        let info = self.hv.node_info().await.map_err(AgentError::Hypervisor)?;
        let name = if self.opts.name.is_empty() {
            info.hostname.clone()
        } else {
            self.opts.name.clone()
        };
        let req = pb::RegisterRequest {
            join_token: token,
            name: name.clone(),
            hostname: info.hostname.clone(),
            management_address: self.opts.management_address.clone(),
            cpu_cores: info.cpus,
            memory_mib: info.memory_mib,
            labels: self.opts.labels.clone().into_iter().collect(),
            libvirt_uri: self.hv.uri().to_string(),
            cpu_model: info.cpu_model.clone(),
        };
        let mut failures = 0;
        let resp = loop {
            match self.cp.register(req.clone()).await {
                Ok(r) => break r,
                Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::DeadlineExceeded) => {
                    failures += 1;
                    let d = backoff(failures, self.opts.max_backoff, rand::random_range(0.5..=1.0));
                    warn!(error = %e, retry_in = ?d, "control plane unreachable, retrying the join");
                    tokio::time::sleep(d).await;
                }
                Err(e) => return Err(AgentError::JoinRefused(e)),
            }
        };
        let node_id = NodeId::parse("node_id", &resp.node_id).map_err(AgentError::JoinRefused)?;
        let id = Identity {
            node_id,
            credential: resp.node_credential,
            heartbeat_interval_secs: resp.heartbeat_interval_seconds,
            lease_ttl_secs: resp.lease_ttl_seconds,
            self_fence_after_secs: resp.self_fence_after_seconds,
        };
        write_private(
            &self.opts.data_dir,
            &path,
            &serde_json::to_vec_pretty(&id).unwrap_or_default(),
        )?;
        info!(node = %node_id, %name, "joined the control plane");
        Ok(id)
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
        let ident = self.identity().await?;
        let interval = self
            .opts
            .heartbeat_interval
            .unwrap_or(Duration::from_secs(u64::from(ident.heartbeat_interval_secs.max(1))));
        let self_fence_after = Duration::from_secs(u64::from(ident.self_fence_after_secs.max(1)));
        let remembered = self.load_remembered();
        let shared = Arc::new(Mutex::new(Shared {
            watchdog: Watchdog::new(self_fence_after, Instant::now()),
            ha: ha_set(&remembered),
            desired: remembered,
            reachable: false,
            applied: 0,
            errors: HashMap::new(),
            passes: 0,
            reported_pass: 0,
        }));
        let report_now = Arc::new(Notify::new());
        self.migrator.on_end(report_now.clone());
        let desired_changed = Arc::new(Notify::new());
        let fence = match &self.opts.fence_socket {
            Some(p) => Some(Arc::new(super::fence_link::connect(p, interval, &ident).await?)),
            None => None,
        };
        let this = Arc::new(self);
        let _watchdog = Abort(tokio::spawn(watchdog_task(shared.clone(), this.hv.clone())));
        let lease_ttl = Duration::from_secs(u64::from(ident.lease_ttl_secs.max(1)));
        let _fence_pets = fence.clone().map(|f| {
            let shared = shared.clone();
            Abort(tokio::spawn(async move {
                f.run(crate::fence::PET_INTERVAL.min(interval), || {
                    let s = lock(&shared);
                    super::fence_link::pet_source(&s.watchdog, s.reachable, &s.ha, lease_ttl, Instant::now())
                })
                .await
            }))
        });
        let _reconciler = Abort(tokio::spawn(this.clone().reconcile_task(
            shared.clone(),
            desired_changed.clone(),
            report_now.clone(),
            interval,
        )));
        tokio::pin!(shutdown);

        let mut sampler = Sampler::default();
        let mut failures = 0u32;
        let mut fast = 0u32;
        info!(node = %ident.node_id, hypervisor = %this.hv.uri(), ?interval, "agent running");
        loop {
            let mut req = this.report(&ident, &mut sampler, &shared, interval).await;
            let mut fencing = fence
                .as_ref()
                .map_or_else(crate::fence::client::agent_only, |f| f.status());
            if !req.hypervisor_slow.is_empty() {
                fencing = fencing.with_libvirt_hung(&req.hypervisor_slow);
            }
            req.fencing = fencing.text();
            req.fencing_level = fencing.level.as_str().into();
            let sent_at = Instant::now();
            let answer = tokio::time::timeout(
                this.opts.request_timeout,
                this.cp.heartbeat(ident.credential.clone(), req),
            )
            .await
            .unwrap_or_else(|_| Err(crate::Error::unavailable("heartbeat timed out")));
            let mut next = interval;
            match answer {
                Ok(resp) => {
                    if failures > 0 {
                        info!(after = failures, "control plane reachable again");
                    }
                    failures = 0;
                    let new_generation = {
                        let mut s = lock(&shared);
                        s.watchdog.answered(sent_at, resp.must_fence);
                        let first = !s.reachable;
                        s.reachable = true;
                        first || resp.generation != s.desired.generation
                    };
                    if new_generation {
                        let r = this.remember(resp);
                        let mut s = lock(&shared);
                        s.ha = ha_set(&r);
                        s.desired = r;
                    }
                    // Reconcile after every answer: level-triggered, and cheap when nothing
                    // differs.
                    desired_changed.notify_one();
                }
                Err(e) => {
                    failures += 1;
                    fast = 0;
                    // Capped at one interval: a leader change is not slept through.
                    let cap = this.opts.max_backoff.min(crate::handover::agent_retry_cap(interval));
                    next = backoff(failures, cap, rand::random_range(0.5..=1.0));
                    match e.kind {
                        ErrorKind::Unauthenticated | ErrorKind::PermissionDenied => error!(
                            error = %e,
                            "the control plane refuses this node's credential (node deleted or joined again elsewhere); \
                             to join again remove {} and restart with a new join token",
                            this.identity_path().display()
                        ),
                        _ => warn!(error = %e, attempt = failures, retry_in = ?next, "heartbeat failed"),
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(next) => fast = 0,
                // A pass changed something: report it now (bounded, so a flapping domain cannot
                // turn heartbeats into a busy loop).
                _ = report_now.notified(), if fast < MAX_FAST_PASSES => fast += 1,
                _ = &mut shutdown => break,
            }
        }
        drop(_fence_pets);
        if let Some(f) = &fence {
            let ha = lock(&shared).ha.clone();
            super::fence_link::stop(f, &ha).await;
        }
        info!("agent stopped");
        Ok(())
    }

    /// Applies the latest desired state whenever it arrives, and every `interval` anyway.
    async fn reconcile_task(
        self: Arc<Self>,
        shared: Arc<Mutex<Shared>>,
        desired_changed: Arc<Notify>,
        report_now: Arc<Notify>,
        interval: Duration,
    ) {
        let mut memory = Memory {
            reboots_done: self.load_reboots(),
            ..Default::default()
        };
        loop {
            tokio::select! {
                _ = desired_changed.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
            let (desired, fenced, ready) = {
                let mut s = lock(&shared);
                let f = s.watchdog.check(Instant::now());
                // Nothing confirmed since start: keep the host as it is (fencing aside).
                (s.desired.clone(), f, s.reachable && s.reported_pass >= s.passes)
            };
            if !ready {
                continue;
            }
            let domains: Vec<DesiredDomain> = desired.domains.iter().map(|(d, _)| d.clone()).collect();
            self.migrator.sync(&domains);
            // A domain that just migrated away is not brought back before the control plane
            // has taken the move in.
            let moved = self.migrator.moved_away();
            let mut desired = desired;
            desired.domains.retain(|(d, _)| !moved.contains(&d.spec.id));
            let changed = self.converge(&mut memory, &desired, fenced).await;
            {
                let mut s = lock(&shared);
                s.applied = desired.generation;
                s.errors = memory.errors.clone();
                s.passes += 1;
            }
            if changed {
                report_now.notify_one();
            }
        }
    }

    /// Takes a new desired state from a heartbeat answer and keeps it on disk.
    fn remember(&self, resp: pb::HeartbeatResponse) -> Remembered {
        let mut domains = Vec::with_capacity(resp.domains.len());
        for d in &resp.domains {
            match desired_from_pb(d) {
                Ok(x) => domains.push(x),
                Err(e) => warn!(vm = %d.vm_id, error = %e, "ignoring an invalid desired domain"),
            }
        }
        let purge = resp
            .purge_vm_ids
            .iter()
            .filter_map(|s| VmId::parse("purge_vm_ids", s).ok())
            .collect();
        let r = Remembered {
            generation: resp.generation,
            domains,
            purge,
        };
        self.save_remembered(&r);
        r
    }

    fn load_remembered(&self) -> Remembered {
        let path = self.opts.data_dir.join(DESIRED_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                warn!(error = %e, path = %path.display(), "ignoring an unreadable saved desired state");
                Remembered::default()
            }),
            Err(_) => Remembered::default(),
        }
    }

    fn save_remembered(&self, r: &Remembered) {
        let path = self.opts.data_dir.join(DESIRED_FILE);
        if let Err(e) = write_private(&self.opts.data_dir, &path, &serde_json::to_vec(r).unwrap_or_default()) {
            warn!(error = %e, "cannot save the desired state");
        }
    }

    fn load_reboots(&self) -> HashMap<VmId, u64> {
        std::fs::read(self.opts.data_dir.join(REBOOTS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// One reconcile pass. Returns whether it changed anything.
    async fn converge(&self, memory: &mut Memory, remembered: &Remembered, fenced: bool) -> bool {
        let desired: Vec<DesiredDomain> = remembered.domains.iter().map(|(d, _)| d.clone()).collect();
        let effective = fence_filter(&desired, fenced);
        let actual = match self.hv.list_domains().await {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "cannot list domains; skipping this reconcile pass");
                return false;
            }
        };
        let purge: HashSet<VmId> = remembered.purge.iter().copied().collect();
        let actions = reconcile_with_purge(&effective, &purge, &actual);
        let mut changed = false;
        memory.errors.clear();
        for o in apply(actions, self.hv.as_ref(), self.opts.stop_timeout).await {
            match o.result {
                Ok(()) => {
                    changed = true;
                    if let Action::Define(spec) = &o.action {
                        memory.specs.insert(spec.id, (**spec).clone());
                    }
                }
                Err(e) => {
                    memory.errors.insert(o.action.vm(), e);
                }
            }
        }
        // Definitions changed by the control plane (UpdateVM resizes) are applied in place;
        // they take effect at the domain's next boot.
        for d in &desired {
            let id = d.spec.id;
            if d.hands_off() || memory.errors.contains_key(&id) || !actual.iter().any(|a| a.id == id) {
                continue;
            }
            let differs = match memory.specs.get(&id) {
                Some(s) => s != &d.spec,
                // First sight since the agent started: compare with what the host has.
                None => match self.hv.domain_spec(id).await {
                    Ok(have) => !same_shape(&have, &d.spec),
                    Err(_) => false,
                },
            };
            if differs {
                match self.hv.update(d.spec.clone()).await {
                    Ok(()) => {
                        info!(vm = %id, "definition updated");
                        changed = true;
                    }
                    Err(e) => {
                        memory.errors.insert(id, e);
                        continue;
                    }
                }
            }
            memory.specs.insert(id, d.spec.clone());
        }
        memory.specs.retain(|id, _| desired.iter().any(|d| d.spec.id == *id));
        // Reboots: each sequence number once; one seen first after a restart is assumed done.
        let mut reboots_changed = false;
        for (d, seq) in &remembered.domains {
            let id = d.spec.id;
            let done = memory.reboots_done.entry(id).or_insert(*seq);
            if *seq > *done {
                *done = *seq;
                reboots_changed = true;
                if d.running && !d.hands_off() && !(fenced && d.ha_protected) {
                    match self.hv.reboot(id).await {
                        Ok(()) => {
                            info!(vm = %id, "rebooted");
                            changed = true;
                        }
                        Err(e) => {
                            memory.errors.insert(id, e);
                        }
                    }
                }
            }
        }
        let before = memory.reboots_done.len();
        memory
            .reboots_done
            .retain(|id, _| desired.iter().any(|d| d.spec.id == *id));
        if reboots_changed || before != memory.reboots_done.len() {
            let path = self.opts.data_dir.join(REBOOTS_FILE);
            let bytes = serde_json::to_vec(&memory.reboots_done).unwrap_or_default();
            if let Err(e) = write_private(&self.opts.data_dir, &path, &bytes) {
                warn!(error = %e, "cannot save the reboots done");
            }
        }
        changed
    }

    /// The heartbeat: node usage, every domain's state and usage, errors of the last pass.
    async fn report(
        &self,
        ident: &Identity,
        sampler: &mut Sampler,
        shared: &Mutex<Shared>,
        interval: Duration,
    ) -> pb::HeartbeatRequest {
        let now = Instant::now();
        let (applied, errors, ha, fenced, pass) = {
            let mut s = lock(shared);
            let f = s.watchdog.check(now);
            (s.applied, s.errors.clone(), s.ha.clone(), f, s.passes)
        };
        let mut req = self
            .build_report(ident, sampler, applied, errors, ha, fenced, interval, now)
            .await;
        req.migration_uri = self.opts.migration_uri.clone();
        req.migrations = self.migrator.statuses();
        // Only now may the next pass run: its effects must not leak into this report.
        let mut s = lock(shared);
        s.reported_pass = s.reported_pass.max(pass);
        req
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_report(
        &self,
        ident: &Identity,
        sampler: &mut Sampler,
        applied: u64,
        errors: HashMap<VmId, DriverError>,
        ha: HashSet<VmId>,
        fenced: bool,
        interval: Duration,
        now: Instant,
    ) -> pb::HeartbeatRequest {
        let mut req = sampler.observe(&self.hv, ident.node_id, &errors, interval, now).await;
        req.observed_generation = applied;
        req.self_fenced = fenced;
        req.heartbeat_interval_ms = u32::try_from(interval.as_millis()).unwrap_or(u32::MAX);
        if req.hypervisor_error.is_empty() {
            let seen = reported_states(&req);
            req.fenced_domains_gone =
                fenced && !seen.iter().any(|(id, s)| ha.contains(id) && *s != DomainState::Shutoff);
        }
        req
    }
}

/// Whether two specs agree on what a definition update would change.
fn same_shape(have: &DomainSpec, want: &DomainSpec) -> bool {
    have.vcpus == want.vcpus
        && have.memory_mib == want.memory_mib
        && have
            .disks
            .iter()
            .map(|d| &d.name)
            .eq(want.disks.iter().map(|d| &d.name))
        && have.nics.len() == want.nics.len()
}

fn ha_set(r: &Remembered) -> HashSet<VmId> {
    r.domains
        .iter()
        .filter(|(d, _)| d.ha_protected)
        .map(|(d, _)| d.spec.id)
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Aborts a background task when dropped.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Fires the watchdog: while fenced, HA-protected domains are powered off (checked at least
/// every second, and at the deadline).
async fn watchdog_task(shared: Arc<Mutex<Shared>>, hv: Arc<dyn Hypervisor>) {
    let mut was_fenced = false;
    loop {
        let (fenced, deadline, ha) = {
            let mut s = lock(&shared);
            let f = s.watchdog.check(Instant::now());
            (f, s.watchdog.deadline(), s.ha.clone())
        };
        if fenced {
            if !was_fenced {
                error!(
                    domains = ha.len(),
                    "self-fencing: no lease renewal in time, powering off HA-protected domains"
                );
            }
            fence_now(hv.as_ref(), &ha).await;
        } else if was_fenced {
            info!("lease renewed: fence lifted");
        }
        was_fenced = fenced;
        let now = Instant::now();
        let wake = if deadline > now {
            deadline.min(now + Duration::from_secs(1))
        } else {
            now + Duration::from_secs(1)
        };
        tokio::time::sleep_until(wake).await;
    }
}

/// Powers off every active domain in `ha`.
pub async fn fence_now(hv: &dyn Hypervisor, ha: &HashSet<VmId>) {
    let Ok(domains) = hv.list_domains().await else {
        return;
    };
    for d in domains.iter().filter(|d| ha.contains(&d.id) && d.state.is_active()) {
        match hv.destroy(d.id).await {
            Ok(()) => warn!(vm = %d.id, "fenced: HA-protected domain powered off"),
            Err(e) => error!(vm = %d.id, error = %e, "fencing could not power off a domain"),
        }
    }
}

/// Writes `bytes` to `path` readable by the owner only (write to a temporary file, then
/// rename, so a crash never leaves half a file).
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    let err = |source| AgentError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let max = Duration::from_secs(30);
        assert_eq!(backoff(1, max, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, max, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(4, max, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(20, max, 1.0), max);
        assert_eq!(backoff(20, max, 0.5), max / 2);
        assert_eq!(
            backoff(3, max, 0.1),
            Duration::from_secs(1),
            "jitter is clamped to 0.5..1"
        );
    }

    #[test]
    fn identity_debug_hides_the_credential() {
        let id = Identity {
            node_id: NodeId::new(),
            credential: "lqxnode_secret".into(),
            heartbeat_interval_secs: 2,
            lease_ttl_secs: 35,
            self_fence_after_secs: 33,
        };
        assert!(!format!("{id:?}").contains("secret"));
    }

    #[test]
    fn private_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_private(dir.path(), &p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}

//! Hosts whose node agent is remote: the control plane's half of `limiquantix.node.v1`.
//!
//! The rule, in plain words:
//! - Each agent node has an [`AgentLink`], which is the node's [`Hypervisor`] in [`Hosts`]:
//!   the compute layer drives remote hosts exactly like in-process ones. The link holds the
//!   node's desired state (every domain it should have, running or stopped, with a generation
//!   number bumped on each change) and the states the agent last reported.
//! - A link method changes the desired state, pushes the new generation to the agent, and
//!   waits (bounded, on the tokio clock) until a heartbeat that has applied that generation
//!   shows the domain in the wanted state. If the agent reports a failure, or nothing comes in
//!   time, the change is reverted and the error returned; a node whose agent is silent fails at
//!   once with Unavailable and nothing changes.
//! - Every heartbeat answer carries the full desired state (level-triggered): a lost answer, an
//!   agent restart or a repeated command converge to the same result.
//! - The desired state lives in memory and is rebuilt from the store when the control plane
//!   starts (VMs with `status.node_id` of the node and their `desired_state`).
//! - Joining spends a one-time join token and returns a node credential
//!   (`lqxn_<prefix>_<secret>`, the auth layer's opaque-secret format); only its SHA-256 is
//!   stored, found by its prefix. Joining again replaces the node's credential. A credential
//!   acts only for its own node: a heartbeat for another node is refused with PermissionDenied.
//! - Each accepted heartbeat renews the node's lease, measured on the control plane's
//!   monotonic clock ([`Agents::lease_state`]); an optional [`HeartbeatHook`] (the HA manager)
//!   may refuse the renewal and order the agent to fence itself.
//! - Observed states are written to the VM records when they differ from what is stored,
//!   except for a VM with a command in flight (the command writes it); usage is written at most
//!   every `usage_write_interval`, the node's heartbeat time every `node_write_interval`, so
//!   heartbeats do not turn into a write per second per host.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use chrono::Utc;
use futures::{FutureExt, future::BoxFuture};
use tokio::{sync::watch, time::Instant};
use tracing::{debug, info};

mod migration;
mod orphans;

use super::{Compute, Hosts, NodeRegistration};
use crate::{
    Error, ErrorKind, Result,
    agent::{
        ControlPlane, DesiredDomain,
        control::{desired_to_pb, driver_error, parse_state},
    },
    api::node::v1 as pb,
    auth::{SecretKind, apikey},
    driver::{
        DomainInfo, DomainSpec, DomainState, DomainStats, DriverError, DriverResult, Hypervisor, NodeInfo, NodeStats,
        ProgressFn, VolumeInfo,
    },
    model::{NodeId, NodePhase, VmId, VmState},
};

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

/// The node's current credential: `{"prefix": ..., "hash": ...}`.
fn credential_key(node: NodeId) -> String {
    format!("node_credential/{node}")
}

/// Which node a credential prefix belongs to.
fn prefix_key(prefix: &str) -> String {
    format!("node_credential_prefix/{prefix}")
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct StoredCredential {
    prefix: String,
    /// Hex SHA-256 of the whole credential.
    hash: String,
}

/// The node agents of this control plane. Cheap to clone.
#[derive(Clone)]
pub struct Agents {
    inner: Arc<Inner>,
}

type Links = RwLock<HashMap<NodeId, Arc<AgentLink>>>;

struct Inner {
    compute: Compute,
    timing: AgentTiming,
    /// Shared with every link (weakly): a live migration finds its target's link here.
    links: Arc<Links>,
    /// Credentials already read from the store, by prefix.
    credentials: RwLock<HashMap<String, (NodeId, String)>>,
    hook: RwLock<Option<Arc<dyn HeartbeatHook>>>,
    /// Migrations the previous leader left unsettled ([`orphans`]).
    orphans: Mutex<HashMap<VmId, orphans::Orphan>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Agents {
    pub fn new(compute: Compute, timing: AgentTiming) -> Self {
        Agents {
            inner: Arc::new(Inner {
                compute,
                timing,
                links: Arc::default(),
                credentials: RwLock::default(),
                hook: RwLock::default(),
                orphans: Mutex::default(),
            }),
        }
    }

    pub fn timing(&self) -> AgentTiming {
        self.inner.timing
    }

    fn new_link(&self, node: NodeId, name: &str, info: NodeInfo) -> AgentLink {
        let mut link = AgentLink::new(node, name, info, self.inner.timing, self.inner.compute.store.clone());
        link.peers = Arc::downgrade(&self.inner.links);
        link
    }

    fn hosts(&self) -> &Hosts {
        &self.inner.compute.hosts
    }

    /// Installs the hook consulted on every heartbeat (replaces an earlier one).
    pub fn set_heartbeat_hook(&self, hook: Arc<dyn HeartbeatHook>) {
        *write(&self.inner.hook) = Some(hook);
    }

    /// The link of an agent node.
    pub fn link(&self, node: NodeId) -> Option<Arc<AgentLink>> {
        read(&self.inner.links).get(&node).cloned()
    }

    /// The nodes with an agent link.
    pub fn nodes(&self) -> Vec<NodeId> {
        read(&self.inner.links).keys().copied().collect()
    }

    /// The node's lease as last renewed (None: never renewed since this control plane
    /// started).
    pub fn lease_state(&self, node: NodeId) -> Option<LeaseState> {
        self.link(node).and_then(|l| lock(&l.state).lease)
    }

    /// Re-creates the links of every node that joined through an agent, with their desired
    /// state from the store, and connects them. Called once at start-up.
    pub async fn restore(&self) -> Result<usize> {
        let mut n = 0;
        for node in self.inner.compute.store.all_nodes().await? {
            if self
                .inner
                .compute
                .store
                .kv_get(&credential_key(node.id))
                .await?
                .is_none()
            {
                continue;
            }
            let info = NodeInfo {
                hostname: node.hostname.clone(),
                cpus: node.capacity.cpu_cores,
                memory_mib: node.capacity.memory_mib,
                // As last registered: the live-migration CPU check needs it before the agent
                // registers again (it only heartbeats to a restarted control plane).
                cpu_model: node.cpu_model.clone(),
            };
            let link = self.install(node.id, &node.name, info);
            link.rebuild(&self.inner.compute).await?;
            n += 1;
        }
        if n > 0 {
            self.note_orphans(&self.inner.compute.store.all_vms().await?);
            info!(nodes = n, "agent nodes restored; waiting for their heartbeats");
        }
        Ok(n)
    }

    /// A link for `node` (kept if it exists), connected in [`Hosts`].
    fn install(&self, node: NodeId, name: &str, info: NodeInfo) -> Arc<AgentLink> {
        let link = {
            let mut links = write(&self.inner.links);
            links
                .entry(node)
                .or_insert_with(|| Arc::new(self.new_link(node, name, info.clone())))
                .clone()
        };
        lock(&link.state).node_info = info;
        self.hosts().insert(node, link.clone());
        link
    }

    /// Joins a host: spends the join token, creates or refreshes the node record and
    /// returns the node credential (shown this once).
    pub async fn register(&self, req: pb::RegisterRequest) -> Result<pb::RegisterResponse> {
        crate::model::validate::name("name", &req.name)?;
        if req.cpu_cores == 0 || req.memory_mib == 0 {
            return Err(Error::invalid("cpu_cores", "the host must report its CPUs and memory"));
        }
        self.inner.compute.redeem_join_token(&req.join_token, &req.name).await?;
        let info = NodeInfo {
            hostname: if req.hostname.is_empty() {
                req.name.clone()
            } else {
                req.hostname.clone()
            },
            cpus: req.cpu_cores,
            memory_mib: req.memory_mib,
            cpu_model: req.cpu_model.clone(),
        };
        let mut reg = NodeRegistration::new(req.name.clone(), req.libvirt_uri.clone());
        reg.hostname = info.hostname.clone();
        reg.management_address = req.management_address.clone();
        reg.labels = req.labels.clone().into_iter().collect();
        // attach_node reads the capacity through the Hypervisor trait: a detached link answers
        // node_info from the registration. The real link is installed under the node's id.
        let probe = Arc::new(self.new_link(NodeId::new(), &req.name, info.clone()));
        let node = self.inner.compute.attach_node(reg, probe).await?;

        let secret = apikey::generate(SecretKind::NodeCredential);
        let stored = StoredCredential {
            prefix: secret.prefix.clone(),
            hash: secret.hash.clone(),
        };
        let store = &self.inner.compute.store;
        store.kv_put(&prefix_key(&secret.prefix), &node.id.to_string()).await?;
        // Written last: from here on the old credential (another prefix) is refused.
        store
            .kv_put(
                &credential_key(node.id),
                &serde_json::to_string(&stored).map_err(Error::internal)?,
            )
            .await?;
        write(&self.inner.credentials).retain(|_, (n, _)| *n != node.id);
        write(&self.inner.credentials).insert(secret.prefix.clone(), (node.id, secret.hash.clone()));
        let credential = secret.secret.expose().to_string();

        let link = self.install(node.id, &node.name, info);
        link.rebuild(&self.inner.compute).await?;
        info!(node = %node.id, name = %node.name, "host joined");
        let t = self.inner.timing;
        Ok(pb::RegisterResponse {
            node_id: node.id.to_string(),
            node_credential: credential,
            heartbeat_interval_seconds: secs(t.heartbeat_interval),
            lease_ttl_seconds: secs(t.lease_ttl),
            self_fence_after_seconds: secs(t.self_fence_after),
        })
    }

    /// The node a credential belongs to; Unauthenticated when it is not valid.
    pub async fn authenticate(&self, credential: &str) -> Result<NodeId> {
        let bad = || Error::unauthenticated("invalid node credential");
        let prefix = apikey::parse_secret(SecretKind::NodeCredential, credential).ok_or_else(bad)?;
        let cached = read(&self.inner.credentials).get(prefix).cloned();
        let (node, hash) = match cached {
            Some(c) => c,
            None => {
                let store = &self.inner.compute.store;
                let (node, _) = store.kv_get(&prefix_key(prefix)).await?.ok_or_else(bad)?;
                let node = NodeId::parse("node", &node).map_err(Error::internal)?;
                let (rec, _) = store.kv_get(&credential_key(node)).await?.ok_or_else(bad)?;
                let rec: StoredCredential = serde_json::from_str(&rec).map_err(Error::internal)?;
                if rec.prefix != prefix {
                    // Replaced by a later join.
                    return Err(bad());
                }
                write(&self.inner.credentials).insert(prefix.to_string(), (node, rec.hash.clone()));
                (node, rec.hash)
            }
        };
        if apikey::verify_secret(credential, &hash) {
            Ok(node)
        } else {
            Err(bad())
        }
    }

    /// Authenticates a call made for `claimed` (the request's node id).
    async fn authorize(&self, credential: &str, claimed: &str) -> Result<NodeId> {
        let node = self.authenticate(credential).await?;
        if claimed != node.to_string() {
            return Err(Error::permission_denied(
                "this node credential cannot act for another node",
            ));
        }
        Ok(node)
    }

    /// The link of an authenticated node, restored from the store if needed.
    async fn link_of(&self, node: NodeId) -> Result<Arc<AgentLink>> {
        if let Some(l) = self.link(node) {
            return Ok(l);
        }
        let n = match self.inner.compute.store.get_node(node).await {
            Ok(n) => n,
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(Error::unauthenticated("this node was deleted; join it again"));
            }
            Err(e) => return Err(e),
        };
        let info = NodeInfo {
            hostname: n.hostname.clone(),
            cpus: n.capacity.cpu_cores,
            memory_mib: n.capacity.memory_mib,
            cpu_model: String::new(),
        };
        let link = self.install(node, &n.name, info);
        link.rebuild(&self.inner.compute).await?;
        Ok(link)
    }

    /// One heartbeat: records what the agent reports, renews its lease and answers the full
    /// desired state.
    pub async fn heartbeat(&self, credential: &str, req: pb::HeartbeatRequest) -> Result<pb::HeartbeatResponse> {
        let node = self.authorize(credential, &req.node_id).await?;
        let link = self.link_of(node).await?;
        let now = Instant::now();
        let hook = read(&self.inner.hook).clone();
        let (resp, writes) = link.accept(&req, now, hook.as_deref());
        self.inner.compute.record_agent_report(
            node,
            crate::fence::Fencing::from_report(&req.fencing_level, &req.fencing),
        );
        self.persist(&link, node, &req, writes, now).await;
        if !lock(&self.inner.orphans).is_empty() {
            self.settle_orphans().await;
        }
        Ok(resp)
    }

    /// A link for a node this control plane drives in-process (`crate::compute::in_process`):
    /// it records the node's reports, lease and desired state like an agent's, but is not
    /// the node's [`Hypervisor`] in [`Hosts`] (commands call the driver directly) and has no
    /// credential.
    pub fn attach_in_process(&self, node: NodeId, name: &str, info: NodeInfo) -> Arc<AgentLink> {
        let mut links = write(&self.inner.links);
        links
            .entry(node)
            .or_insert_with(|| Arc::new(self.new_link(node, name, info)))
            .clone()
    }

    /// One heartbeat of an in-process node, over no wire: the desired state is taken from
    /// `vms` (the node's VM records, read by the caller), VMs in `busy` (a command holds
    /// them) are neither written nor reconciled, then the report goes through the same
    /// intake as an agent's (lease, HA hook, node usage, observed VM states).
    pub async fn heartbeat_in_process(
        &self,
        link: &AgentLink,
        vms: &[crate::model::Vm],
        busy: &std::collections::HashSet<VmId>,
        req: pb::HeartbeatRequest,
    ) -> pb::HeartbeatResponse {
        link.rebuild_from(&self.inner.compute, vms);
        {
            let mut st = lock(&link.state);
            for id in busy {
                *st.busy.entry(*id).or_default() += 1;
            }
        }
        let now = Instant::now();
        let hook = read(&self.inner.hook).clone();
        let (resp, writes) = link.accept(&req, now, hook.as_deref());
        self.inner.compute.record_in_process_heartbeat(link.node);
        self.persist(link, link.node, &req, writes, now).await;
        let mut st = lock(&link.state);
        for id in busy {
            if let Some(n) = st.busy.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    st.busy.remove(id);
                }
            }
        }
        resp
    }

    /// Writes what a heartbeat changed to the store. Failures are logged: the heartbeat (and
    /// the lease) does not depend on the database.
    async fn persist(&self, link: &AgentLink, node: NodeId, req: &pb::HeartbeatRequest, writes: Writes, now: Instant) {
        let compute = &self.inner.compute;
        if writes.node {
            // HA policies change without a hypervisor call (UpdateVM): pick them up here.
            let filter = crate::store::VmFilter {
                node_id: Some(node),
                ..Default::default()
            };
            match compute.store.list_vms(&filter, 1000, "").await {
                Ok(page) => link.refresh_ha(&page.vms),
                Err(e) => debug!(node = %node, error = %e, "could not read the node's VMs"),
            }
            let r = modify_node(compute, node, |n| {
                n.last_heartbeat = Some(Utc::now());
                if writes.node_cpu {
                    n.usage.cpu_percent = req.cpu_percent;
                }
                n.usage.memory_used_mib = req.memory_used_mib;
                if n.phase == NodePhase::NotReady {
                    n.phase = NodePhase::Ready;
                }
            })
            .await;
            if let Err(e) = r {
                debug!(node = %node, error = %e, "could not record the heartbeat");
            }
        }
        for w in writes.vms {
            let r = modify_vm(compute, w.vm, node, |vm| {
                if let Some(s) = w.state {
                    if vm.status.state == VmState::Unknown {
                        // Seen again: the reason it was unknown no longer holds.
                        vm.status.message.clear();
                    }
                    vm.status.state = s;
                }
                if let Some((cpu, mem)) = w.usage {
                    vm.status.cpu_usage_percent = cpu;
                    vm.status.memory_used_mib = mem;
                }
            })
            .await;
            match r {
                Ok(true) => {
                    let mut st = lock(&link.state);
                    if let Some(s) = w.state {
                        st.recorded.insert(w.vm, s);
                    }
                    if w.usage.is_some() {
                        st.usage_written.insert(w.vm, now);
                    }
                }
                Ok(false) => {}
                Err(e) => debug!(vm = %w.vm, error = %e, "could not record the VM's observed state"),
            }
        }
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX)
}

/// Retries a conditional write of a node a few times (HA and operators write nodes too).
async fn modify_node(compute: &Compute, node: NodeId, f: impl Fn(&mut crate::model::Node)) -> Result<()> {
    for _ in 0..3 {
        let mut n = compute.store.get_node(node).await?;
        f(&mut n);
        match compute.store.update_node(&n).await {
            Ok(_) => return Ok(()),
            Err(e) if e.kind == ErrorKind::Aborted => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::aborted("node changed concurrently"))
}

/// Writes a VM's observed status if it is still on `node` and not migrating. Returns whether
/// it wrote.
async fn modify_vm(compute: &Compute, vm: VmId, node: NodeId, f: impl Fn(&mut crate::model::Vm)) -> Result<bool> {
    for _ in 0..3 {
        let mut v = match compute.store.get_vm(vm).await {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        // A VM left Migrating by a control plane that stopped mid-way is written again once
        // its outcome is settled (`orphans`).
        if v.status.node_id != Some(node)
            || (v.status.state == VmState::Migrating
                && (compute.migrations.get(vm).is_some() || compute.migrations.is_orphan(vm)))
        {
            return Ok(false);
        }
        let before = v.status.clone();
        f(&mut v);
        if v.status == before {
            return Ok(true);
        }
        match compute.store.update_vm(&v).await {
            Ok(_) => return Ok(true),
            Err(e) if e.kind == ErrorKind::Aborted => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::aborted("VM changed concurrently"))
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
struct Want {
    d: DesiredDomain,
    reboot_seq: u64,
}

/// One domain as the agent last reported it.
#[derive(Debug, Clone)]
struct Seen {
    info: DomainInfo,
    cpu_percent: f64,
    cpu_time_ns: u64,
    vcpus: u32,
    memory_mib: u64,
    memory_used_mib: u64,
}

#[derive(Default)]
struct Writes {
    node: bool,
    /// The report's node CPU % is a measured delta (not the first sample).
    node_cpu: bool,
    vms: Vec<VmWrite>,
}

struct VmWrite {
    vm: VmId,
    state: Option<VmState>,
    /// CPU % and memory; None: not measured yet (the first sample of a domain has no CPU
    /// delta), the stored usage is kept.
    usage: Option<(f64, u64)>,
}

struct LinkState {
    generation: u64,
    desired: BTreeMap<VmId, Want>,
    /// Removed together with their volumes; kept until the agent reports them gone.
    purge: BTreeMap<VmId, u64>,
    seen: BTreeMap<VmId, Seen>,
    /// Failures reported per heartbeat: (report number, generation it had applied, VM,
    /// error). Kept for a while so a waiting command sees a failure even when a later report
    /// (after a retry) arrived before it looked.
    failures: std::collections::VecDeque<(u64, u64, VmId, DriverError)>,
    reports: u64,
    /// The generation the agent's last report had applied.
    observed: u64,
    last_heartbeat: Option<Instant>,
    agent_interval: Duration,
    hypervisor_error: Option<String>,
    node_info: NodeInfo,
    node_stats: Option<NodeStats>,
    lease: Option<LeaseState>,
    /// Commands in flight per VM, and until when a finished one keeps heartbeats from writing.
    busy: HashMap<VmId, u32>,
    quiet_until: HashMap<VmId, Instant>,
    /// The state last written to (or read from) each VM record, and when usage was written.
    recorded: HashMap<VmId, VmState>,
    usage_written: HashMap<VmId, Instant>,
    node_written: Option<Instant>,
    /// Where peers live-migrate domains to this host (empty: nowhere), as last reported.
    migration_uri: String,
    /// Live migrations the agent drives, as last reported.
    migrations: HashMap<VmId, pb::MigrationStatus>,
    /// Migrations from here a user cancelled, not ended yet.
    cancelled: std::collections::HashSet<VmId>,
}

/// A remote host, driven through its agent. See the module documentation.
pub struct AgentLink {
    node: NodeId,
    uri: String,
    timing: AgentTiming,
    store: crate::store::Store,
    state: Mutex<LinkState>,
    desired_tx: watch::Sender<u64>,
    report_tx: watch::Sender<u64>,
    peers: std::sync::Weak<Links>,
}

type Undo = Box<dyn FnOnce(&mut LinkState) + Send>;

impl AgentLink {
    fn new(node: NodeId, name: &str, info: NodeInfo, timing: AgentTiming, store: crate::store::Store) -> Self {
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
    fn refresh_ha(&self, vms: &[crate::model::Vm]) {
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

    /// Replaces the desired state with what the store says: the VMs placed on this node,
    /// running when their desired state is Running.
    async fn rebuild(&self, compute: &Compute) -> Result<()> {
        let vms = compute.store.all_vms().await?;
        self.rebuild_from(compute, &vms);
        Ok(())
    }

    /// [`Self::rebuild`] from VM records already read.
    fn rebuild_from(&self, compute: &Compute, vms: &[crate::model::Vm]) {
        let mut st = lock(&self.state);
        st.desired.clear();
        st.recorded.clear();
        for vm in vms.iter().filter(|v| v.status.node_id == Some(self.node)) {
            let mut d = DesiredDomain::new(compute.domain_spec(vm), vm.desired_state == VmState::Running);
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
    fn stale_after(st: &LinkState) -> Duration {
        (st.agent_interval * 3).max(Duration::from_secs(3))
    }

    fn check_live(&self, st: &LinkState, now: Instant) -> DriverResult<()> {
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
    fn accept(
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
    async fn change(
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

    fn seen_state(st: &LinkState, id: VmId) -> Option<DomainState> {
        st.seen.get(&id).map(|s| s.info.state)
    }

    fn require(st: &LinkState, id: VmId) -> DriverResult<()> {
        if st.desired.contains_key(&id) {
            Ok(())
        } else {
            Err(DriverError::NotFound(format!("domain {id}")))
        }
    }

    /// Sets the running flag of a desired domain; the undo puts the old flags back.
    fn set_running(st: &mut LinkState, id: VmId, running: bool, force_off: bool) -> DriverResult<Undo> {
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

impl ControlPlane for Agents {
    fn register(&self, req: pb::RegisterRequest) -> BoxFuture<'_, Result<pb::RegisterResponse>> {
        Agents::register(self, req).boxed()
    }

    fn heartbeat(&self, credential: String, req: pb::HeartbeatRequest) -> BoxFuture<'_, Result<pb::HeartbeatResponse>> {
        async move { Agents::heartbeat(self, &credential, req).await }.boxed()
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

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
//!
//! Where it lives: the link (a [`Hypervisor`](crate::driver::Hypervisor) driver) in
//! `driver::agent_link`; joining and credentials in `join`; heartbeat intake and its writes
//! in `heartbeat`; migrations a previous leader left in `orphans`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use chrono::Utc;
use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;
use tracing::{debug, info};

mod heartbeat;
mod join;
mod orphans;

pub use crate::driver::agent_link::{
    AgentLink, AgentTiming, HeartbeatHook, HeartbeatReport, LeaseState, LeaseVerdict, vm_state_of,
};
use crate::driver::agent_link::{LinkState, Links, Writes, lock, read};
use join::credential_key;

use super::{Compute, Hosts, NodeRegistration};
use crate::{
    Error, ErrorKind, Result,
    agent::ControlPlane,
    api::node::v1 as pb,
    auth::{SecretKind, apikey},
    driver::{DomainState, NodeInfo},
    model::{NodeId, NodePhase, VmId, VmState},
};

/// The node agents of this control plane. Cheap to clone.
#[derive(Clone)]
pub struct Agents {
    inner: Arc<Inner>,
}

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

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
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

    /// Replaces a link's desired state with what the store says: the VMs placed on its
    /// node, running when their desired state is Running.
    async fn rebuild(&self, link: &AgentLink) -> Result<()> {
        let vms = self.inner.compute.store.all_vms().await?;
        link.rebuild_from(|vm| self.inner.compute.domain_spec(vm), &vms);
        Ok(())
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

    /// Where the leader answers heartbeats (its advertised URL), told to an agent that
    /// reached a replica that does not lead; None while no replica holds the lease.
    pub async fn leader_url(&self) -> Result<Option<String>> {
        crate::handover::leader_url(&self.inner.compute.store).await
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
            self.rebuild(&link).await?;
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
        self.rebuild(&link).await?;
        Ok(link)
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

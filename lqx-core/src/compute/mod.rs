//! The compute application layer: what VMService and NodeService do, independent of
//! transport. Handlers in lqx-server decode a request, call one method here and encode the
//! answer.
//!
//! The store holds the truth about what users asked for (spec, desired state) and what was
//! last observed (status). Hosts are reached through [`hosts::Hosts`]; every operation on
//! one VM is serialized by a per-VM lock so two concurrent commands cannot interleave their
//! hypervisor calls, and every write is conditional on the resource version.

pub mod agents;
pub mod failover;
pub mod hosts;
pub mod in_process;
pub mod inflight;
mod migrate;
pub mod nodes;
mod recover;
mod schedule;
pub mod sim;
pub mod standby;
pub mod vms;

pub use nodes::{NodeFilter, NodePage, NodeRegistration, NodeView};
pub use schedule::snapshot_of;

use crate::model::VmId;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use hosts::Hosts;
pub use migrate::{MigrateOptions, MigrationView};
pub use recover::{OP_REFRESH, Recovery, TAKEOVER_AFTER};
pub use vms::{CreateVm, MigrateOutcome, VmUpdate};

/// Shared handle to the compute layer. Cheap to clone.
#[derive(Clone)]
pub struct Compute {
    pub store: Store,
    pub hosts: Hosts,
    pub events: crate::events::EventBus,
    locks: Arc<Mutex<HashMap<VmId, Arc<tokio::sync::Mutex<()>>>>>,
    /// Held from choosing a node to recording the choice, so two creates cannot both take
    /// the last free slot of a node (one control plane leads scheduling at a time).
    placement_lock: Arc<tokio::sync::Mutex<()>>,
    /// Migrations in flight: the capacity they hold on their targets and per-host limits.
    pub migrations: inflight::Migrations,
    /// The virtual CPU model of every guest defined from now on (cluster-wide).
    guest_cpu: Arc<std::sync::RwLock<crate::driver::GuestCpu>>,
    /// HA health per node as the HA manager last reported it.
    health: Arc<std::sync::RwLock<HashMap<crate::model::NodeId, String>>>,
    /// What each agent's last accepted heartbeat said (in memory: written at every one).
    reports: Arc<std::sync::RwLock<HashMap<crate::model::NodeId, nodes::AgentReport>>>,
    /// HA admission control (N+1) for VM create: a cluster setting the HA manager owns.
    admission: Arc<std::sync::atomic::AtomicBool>,
    /// Names this process in the operations it records (see [`crate::saga`]).
    owner: Arc<str>,
    /// Creates and starts that fit only on a host in DPM standby (DPM wakes it).
    pub standby: standby::StandbyDemands,
    /// How often a running operation's row is refreshed (milliseconds).
    op_refresh_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Compute {
    pub fn new(store: Store, hosts: Hosts, events: crate::events::EventBus) -> Self {
        Compute {
            store,
            hosts,
            events,
            locks: Arc::default(),
            placement_lock: Arc::default(),
            migrations: inflight::Migrations::default(),
            guest_cpu: Arc::default(),
            health: Arc::default(),
            reports: Arc::default(),
            admission: Arc::default(),
            owner: crate::leader::holder_id().into(),
            standby: standby::StandbyDemands::default(),
            op_refresh_ms: Arc::new(std::sync::atomic::AtomicU64::new(
                u64::try_from(recover::OP_REFRESH.as_millis()).unwrap_or(u64::MAX),
            )),
        }
    }

    /// How often a long step of an operation refreshes its row (see
    /// [`Compute::recover_operations`]); tests shorten it.
    pub fn set_operation_refresh(&self, every: std::time::Duration) {
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
        self.op_refresh_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the cluster's guest CPU model (definitions written from now on use it).
    pub fn set_guest_cpu(&self, cpu: crate::driver::GuestCpu) {
        *self.guest_cpu.write().unwrap_or_else(|p| p.into_inner()) = cpu;
    }

    pub fn guest_cpu(&self) -> crate::driver::GuestCpu {
        self.guest_cpu.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What the hypervisor should define for a VM, with the cluster's guest CPU model.
    pub fn domain_spec(&self, vm: &crate::model::Vm) -> crate::driver::DomainSpec {
        let mut s = vms::domain_spec(vm);
        s.cpu = self.guest_cpu();
        s
    }

    /// Serializes operations on one VM.
    async fn lock(&self, id: VmId) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 4096 {
                // Drop locks nobody holds so the map does not grow with every VM ever seen.
                map.retain(|_, m| Arc::strong_count(m) > 1);
            }
            map.entry(id).or_default().clone()
        };
        m.lock_owned().await
    }

    /// The VM's lock if no operation holds it (the in-process reconcile skips busy VMs).
    pub(crate) fn try_lock(&self, id: VmId) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let m = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(id).or_default().clone()
        };
        m.try_lock_owned().ok()
    }

    /// The HA manager's last word on a node's health, if any.
    pub fn health_of_id(&self, node: crate::model::NodeId) -> Option<String> {
        self.health
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
    }
}

//! HA's compute operations: restarting a VM of a fenced host elsewhere, the in-process
//! half of fencing, and admission control (N+1) for VM create.
//!
//! The rule, in plain words:
//! - A restart is committed by ONE leader-only write: the VM's node becomes the target (state
//!   Starting, restart count + 1), conditional on the VM's resource version AND on the leader
//!   epoch. Only then is the VM defined and started on the target. The old host is fenced and
//!   never called: its agent destroyed its HA domains, and the VM is dropped from its desired
//!   state so it does not start there again when it returns.
//! - If the start on the target fails, the VM stays assigned to the target with state
//!   Failed and a message (the caller alerts); it never goes back to the fenced host.
//! - In-process hosts (simulated, all-in-one) have no agent to fence them: when one comes
//!   back after being declared FAILED, the control plane itself destroys the domains of HA
//!   VMs that were restarted elsewhere before the host counts as returned.
//! - Admission control: with it on, a VM create is refused when the cluster would no longer
//!   absorb the loss of any single host (`ha::admits`).

use super::Compute;
use crate::driver::DriverErrorKind;
use crate::leader::Epoch;
use crate::model::*;
use crate::saga::{self, Injected, OpKind, OpParams, Operation};
use crate::{Error, ErrorKind, Result};
use chrono::Utc;
/// What an in-process fence found on a returning host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InProcessFence {
    /// Domains destroyed (their VMs now run elsewhere, or were deleted).
    pub destroyed: usize,
    /// Such domains still present (destroy failed).
    pub remaining: usize,
}

impl Compute {
    /// Turns admission control on or off for VM create (the HA manager sets it from `ha:`).
    pub fn set_admission_control(&self, on: bool) {
        self.admission.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn admission_control(&self) -> bool {
        self.admission.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Commits the HA restart of `vm` from the fenced `from` onto `target` as the leader of
    /// `epoch` (see the module rule). Refused with "not the leader" when the term is over, and
    /// Aborted when the VM is no longer on `from` or changed meanwhile.
    pub async fn failover_commit(&self, vm: VmId, from: NodeId, target: NodeId, epoch: &Epoch) -> Result<Vm> {
        let _g = self.lock(vm).await;
        let mut v = self.store.get_vm(vm).await?;
        if v.status.node_id != Some(from) {
            return Err(Error::aborted(format!("VM {} is no longer on the failed node", v.name)));
        }
        v.status.node_id = Some(target);
        v.status.state = VmState::Starting;
        v.status.restart_count = v.status.restart_count.saturating_add(1);
        v.status.message = format!("HA restart from failed node {from}");
        v.status.cpu_usage_percent = 0.0;
        v.status.memory_used_mib = 0;
        // A saga (see `crate::saga`): recorded before the commit, ended when the start is
        // recorded (by `failover_start`), so a restart interrupted in between is finished.
        const KIND: OpKind = OpKind::HaRestart;
        let op = Operation::new(
            KIND,
            vm,
            &self.owner,
            OpParams {
                source: Some(from),
                target: Some(target),
                ..OpParams::default()
            },
        );
        saga::check(KIND, "record")?;
        self.store.op_begin(&op).await?;
        let committed = match saga::point(KIND, "commit") {
            Err(Injected::Crash) => return Err(Injected::Crash.error(KIND, "commit")),
            Err(i) => Err(i.error(KIND, "commit")),
            Ok(()) => self.store.update_vm_as_leader(&v, epoch).await,
        };
        let v = match committed {
            Ok(v) => v,
            Err(e) => {
                self.store.op_end(&op.id).await?;
                return Err(e);
            }
        };
        self.publish_vm(EventType::Restarted, &v);
        Ok(v)
    }

    /// Marks the VMs of a node just declared FAILED that HA does not restart (not
    /// HA-protected) as UNKNOWN with the reason: they are not running on a dead host. The
    /// host's next report after it returns records what it really runs. HA-protected VMs are
    /// left to HA (restarted, or an alert says why not), whose planner counts them as running.
    /// Returns how many were marked.
    pub async fn mark_vms_lost(&self, node: NodeId, node_name: &str) -> Result<usize> {
        let filter = crate::store::VmFilter {
            node_id: Some(node),
            ..Default::default()
        };
        let mut marked = 0;
        for vm in self.store.list_vms(&filter, 1000, "").await?.vms {
            let _g = self.lock(vm.id).await;
            let mut v = match self.store.get_vm(vm.id).await {
                Ok(v) => v,
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if v.status.node_id != Some(node) || !v.status.state.is_active() || v.spec.ha.enabled {
                continue;
            }
            v.status.state = VmState::Unknown;
            v.status.message =
                format!("node {node_name} failed; not HA-protected, so not restarted: lost until {node_name} returns");
            v.status.cpu_usage_percent = 0.0;
            v.status.memory_used_mib = 0;
            match self.store.update_vm(&v).await {
                Ok(v) => {
                    self.publish_vm(EventType::Failed, &v);
                    marked += 1;
                }
                Err(e) if e.kind == ErrorKind::Aborted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(marked)
    }

    /// Defines and starts a committed restart on the VM's (new) node. On failure the VM is
    /// marked Failed with the reason, and the error returned.
    pub async fn failover_start(&self, vm: VmId) -> Result<Vm> {
        let _g = self.lock(vm).await;
        self.failover_start_locked(vm).await
    }

    /// [`Compute::failover_start`] with the VM's lock held by the caller.
    pub(crate) async fn failover_start_locked(&self, vm: VmId) -> Result<Vm> {
        let v = self.store.get_vm(vm).await?;
        let node = v
            .status
            .node_id
            .ok_or_else(|| Error::precondition(format!("VM {} has no node", v.name)))?;
        const KIND: OpKind = OpKind::HaRestart;
        let op = self.store.op_for_vm(vm, KIND).await?;
        let result = match saga::point(KIND, "start") {
            Err(Injected::Crash) => return Err(Injected::Crash.error(KIND, "start")),
            Err(i) => Err(i.error(KIND, "start")),
            Ok(()) => self.failover_define_start(&v, node).await,
        };
        let end = op.as_ref().map(|o| o.id.as_str());
        let mut v = self.store.get_vm(vm).await?;
        if v.status.node_id != Some(node) {
            if let Some(id) = end {
                self.store.op_end(id).await?;
            }
            return result.map(|()| v);
        }
        match &result {
            Ok(()) => {
                v.status.state = VmState::Running;
                v.status.started_at = Some(Utc::now());
                v.status.message = format!("restarted by HA (restart {})", v.status.restart_count);
            }
            Err(e) => {
                v.status.state = VmState::Failed;
                v.status.message = format!("HA restart failed: {e}");
            }
        }
        let v = self.store.update_vm_op(&v, None, end).await?;
        match result {
            Ok(()) => {
                self.publish_vm(EventType::Started, &v);
                Ok(v)
            }
            Err(e) => {
                self.publish_vm(EventType::Failed, &v);
                Err(e)
            }
        }
    }

    /// Defines (if needed) and starts `v` on `node`.
    async fn failover_define_start(&self, v: &Vm, node: NodeId) -> Result<()> {
        let vm = v.id;
        async {
            let hv = self.hosts.get(node)?;
            match hv.define(self.domain_spec(v)).await {
                Ok(()) => {}
                // A retry, or the domain was kept from an earlier stay on this node.
                Err(e) if e.kind() == DriverErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::from(e)),
            }
            if !hv.domain_state(vm).await?.is_active() {
                hv.start(vm).await?;
            }
            Ok::<(), Error>(())
        }
        .await
    }

    /// The in-process half of fencing, for a host driven directly by this control plane that
    /// answers again after being declared FAILED: destroys (and undefines, keeping volumes)
    /// its domains whose VMs are assigned to another node or no longer exist.
    pub async fn fence_in_process(&self, node: NodeId) -> Result<InProcessFence> {
        let hv = self.hosts.get(node)?;
        let domains = hv.list_domains().await?;
        let mut out = InProcessFence::default();
        for d in domains.into_iter().filter(|d| d.managed) {
            let elsewhere = match self.store.get_vm(d.id).await {
                Ok(v) => v.status.node_id != Some(node),
                Err(e) if e.kind == ErrorKind::NotFound => true,
                Err(e) => return Err(e),
            };
            if !elsewhere {
                continue;
            }
            let mut gone = true;
            if d.state.is_active()
                && let Err(e) = hv.destroy(d.id).await
                && e.kind() != DriverErrorKind::InvalidState
                && e.kind() != DriverErrorKind::NotFound
            {
                tracing::warn!(node = %node, vm = %d.id, error = %e, "fence: could not destroy a domain");
                gone = false;
            }
            if gone {
                let _ = hv.undefine(d.id, false).await;
                out.destroyed += 1;
            } else {
                out.remaining += 1;
            }
        }
        Ok(out)
    }

    /// Marks a node NotReady while HA sees it unreachable or failed (so nothing new is
    /// scheduled there), and Ready again when it is back. Maintenance is left alone.
    pub async fn set_node_reachable(&self, node: NodeId, reachable: bool) -> Result<()> {
        for _ in 0..5 {
            let mut n = self.store.get_node(node).await?;
            let phase = match (n.phase, reachable) {
                (NodePhase::Ready, false) => NodePhase::NotReady,
                (NodePhase::NotReady, true) => NodePhase::Ready,
                _ => return Ok(()),
            };
            n.phase = phase;
            match self.store.update_node(&n).await {
                Ok(n) => {
                    self.publish_node(EventType::StateChanged, &n);
                    return Ok(());
                }
                Err(e) if e.kind == ErrorKind::Aborted => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::aborted("node is changing too fast; retry"))
    }

    /// Admission control for VM create: with it on, refuses `vm` on `node` when the cluster
    /// would no longer absorb the loss of any single host. A no-op when it is off.
    pub async fn admission_check(&self, vm: &Vm, node: NodeId) -> Result<()> {
        if !self.admission_control() {
            return Ok(());
        }
        let snapshot = self.snapshot().await?;
        let candidate = crate::placement::VmSnapshot {
            id: vm.id,
            name: vm.name.clone(),
            node: Some(node),
            cpu_cores: vm.spec.cpu_cores,
            memory_mib: vm.spec.memory_mib,
            running: true,
            usage: None,
            ha: vm.spec.ha.clone(),
            placement: vm.spec.placement.clone(),
        };
        if crate::ha::admits(&snapshot, &candidate) {
            return Ok(());
        }
        Err(Error::exhausted(format!(
            "HA admission control: with VM {} the cluster could no longer absorb the loss of a host (N+1); \
             add capacity, or create it without HA",
            vm.name
        )))
    }
}

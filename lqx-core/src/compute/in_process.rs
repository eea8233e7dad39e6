//! Nodes this control plane drives in-process (`nodes:` in the config, `--dev`, `--sim`),
//! observed and reconciled with the agent's own code: every `interval` a pass
//! - observes the host with [`crate::agent::observe`] (node usage, CPU % from busy-time
//!   deltas, every domain's state and usage) and hands the report to the same intake as an
//!   agent heartbeat ([`Agents::heartbeat_in_process`]: lease, HA health, node usage,
//!   observed VM states), over no wire and with no credential;
//! - reconciles the answer's desired state with [`crate::agent::reconcile`], so a domain
//!   the host lost is defined (and started) again, one running that should not is stopped,
//!   and one whose VM now runs on another node is removed.
//!
//! What differs from an agent, and why: commands (`vm start`, migrate, ...) still call the
//! driver directly (no heartbeat delay, live migration between libvirt hosts), so a pass
//! leaves alone every VM a command holds (its per-VM lock) or is in the middle of (PENDING,
//! STARTING, MIGRATING), and holds the locks of the others while it writes and acts. A host
//! that cannot list its domains sends no heartbeat: for an in-process node the lease stands
//! for the hypervisor answering. A FAILED node told to fence is fenced by the control plane
//! ([`Compute::fence_in_process`]). A `lqx-` domain no VM record knows is reported (log,
//! event, alert) and left as it is.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Compute, agents::Agents};
use crate::{
    Result,
    agent::{
        Action, DesiredDomain, apply,
        control::{desired_from_pb, parse_state},
        observe::Sampler,
        reconcile,
    },
    alert::{conditions, node_alert, service::Alerts, vm_alert},
    driver::{DomainInfo, DriverError, Hypervisor},
    model::{AlertSeverity, EventDraft, EventType, NodeId, ResourceType, VmId, VmState},
    store::VmFilter,
};

/// How an in-process node is observed.
#[derive(Clone)]
pub struct InProcessOptions {
    /// Time between passes (the agents' heartbeat interval).
    pub interval: Duration,
    /// ACPI shutdown timeout before a domain that should stop is powered off.
    pub stop_timeout: Duration,
    /// Where "domain recreated" and "unknown domain" alerts go; none: logs and events only.
    pub alerts: Option<Alerts>,
}

impl Default for InProcessOptions {
    fn default() -> Self {
        InProcessOptions {
            interval: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(60),
            alerts: None,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// The report reached the control plane's intake (false: the host did not answer).
    pub heartbeat: bool,
    /// VMs whose domain was missing on the host and was defined again.
    pub recreated: Vec<VmId>,
    /// Reconcile actions that succeeded.
    pub actions: usize,
    /// `lqx-` domains that no VM record knows (left alone).
    pub unknown: Vec<VmId>,
    /// VMs left alone because a command holds them.
    pub busy: usize,
}

/// Whether a VM whose domain is on `node` has settled on another node (restarted by HA,
/// moved), so the domain here is a leftover to remove. A VM being created, started or moved,
/// or one the record places on `node` itself, is not.
fn settled_elsewhere(state: VmState, on: Option<NodeId>, node: NodeId) -> bool {
    let transient = matches!(state, VmState::Pending | VmState::Starting | VmState::Migrating);
    !transient && on != Some(node)
}

/// One in-process node's observe-and-reconcile loop. [`InProcessNode::pass`] runs one pass
/// (tests drive it step by step); [`InProcessNode::spawn`] runs it every interval.
pub struct InProcessNode {
    compute: Compute,
    agents: Agents,
    node: NodeId,
    name: String,
    hv: Arc<dyn Hypervisor>,
    opts: InProcessOptions,
    link: Arc<super::agents::AgentLink>,
    sampler: Sampler,
    errors: HashMap<VmId, DriverError>,
    /// Unknown domains already reported (once each).
    reported_unknown: HashSet<VmId>,
    /// The last answer told this node to fence.
    must_fence: bool,
    fence: Option<super::failover::InProcessFence>,
}

impl InProcessNode {
    /// The loop of `node`, observed through `hv` (the driver in [`super::Hosts`], or the same
    /// driver with a simulated demand source).
    pub async fn new(
        compute: Compute,
        agents: Agents,
        node: NodeId,
        hv: Arc<dyn Hypervisor>,
        opts: InProcessOptions,
    ) -> Result<Self> {
        let n = compute.store.get_node(node).await?;
        let info = hv.node_info().await.unwrap_or_else(|_| crate::driver::NodeInfo {
            hostname: n.hostname.clone(),
            cpus: n.capacity.cpu_cores,
            memory_mib: n.capacity.memory_mib,
            cpu_model: String::new(),
        });
        let link = agents.attach_in_process(node, &n.name, info);
        Ok(InProcessNode {
            compute,
            agents,
            node,
            name: n.name,
            hv,
            opts,
            link,
            sampler: Sampler::default(),
            errors: HashMap::new(),
            reported_unknown: HashSet::new(),
            must_fence: false,
            fence: None,
        })
    }

    /// Runs a pass every interval until the task is aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let task = crate::background::Task::detached(&self.task_name(), self.opts.interval);
        self.spawn_as(task)
    }

    /// [`InProcessNode::spawn`], registered in `tasks` as `node-observation/<node>`.
    pub fn spawn_in(self, tasks: &crate::background::BackgroundTasks) -> tokio::task::JoinHandle<()> {
        let task = tasks.register(&self.task_name(), self.opts.interval);
        self.spawn_as(task)
    }

    fn task_name(&self) -> String {
        format!("node-observation/{}", self.name)
    }

    fn spawn_as(mut self, task: crate::background::Task) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(self.opts.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = task.run(self.pass()).await {
                    warn!(node = %self.name, error = %e, "in-process node pass failed");
                }
            }
        })
    }

    /// One pass: observe, report, reconcile.
    pub async fn pass(&mut self) -> Result<PassReport> {
        let mut out = PassReport::default();
        let filter = VmFilter {
            node_id: Some(self.node),
            ..Default::default()
        };
        let vms = self.compute.store.list_vms(&filter, 1000, "").await?.vms;
        // Hold every VM no command holds, for the whole pass: a command waits for the pass.
        let mut guards = Vec::with_capacity(vms.len());
        let mut busy = HashSet::new();
        for vm in &vms {
            let transient = matches!(
                vm.status.state,
                VmState::Pending | VmState::Starting | VmState::Migrating
            );
            match self.compute.try_lock(vm.id) {
                Some(g) if !transient => guards.push(g),
                _ => {
                    busy.insert(vm.id);
                }
            }
        }
        out.busy = busy.len();

        if self.must_fence && self.compute.health_of_id(self.node).as_deref() == Some("FAILED") {
            match self.compute.fence_in_process(self.node).await {
                Ok(f) => {
                    if f.destroyed > 0 {
                        info!(node = %self.name, destroyed = f.destroyed, "fenced a returning in-process host");
                    }
                    self.fence = Some(f);
                }
                Err(e) => warn!(node = %self.name, error = %e, "could not fence a returning in-process host"),
            }
        }

        // The host is heard from when its observation began, not when the report is recorded:
        // a host powered off mid-pass must not look heard after it went silent.
        let heard_at = Utc::now();
        let mut req = self
            .sampler
            .observe(&self.hv, self.node, &self.errors, self.opts.interval, Instant::now())
            .await;
        if !req.hypervisor_error.is_empty() {
            // No heartbeat: the lease of an in-process node stands for its host answering.
            warn!(node = %self.name, error = %req.hypervisor_error, "in-process host does not answer");
            return Ok(out);
        }
        req.heartbeat_interval_ms = u32::try_from(self.opts.interval.as_millis()).unwrap_or(u32::MAX);
        if let Some(f) = &self.fence {
            req.self_fenced = true;
            req.fenced_domains_gone = f.remaining == 0;
        }
        let actual: Vec<DomainInfo> = req
            .domains
            .iter()
            .filter_map(|d| {
                Some(DomainInfo {
                    id: VmId::parse("vm_id", &d.vm_id).ok()?,
                    name: d.name.clone(),
                    state: parse_state(&d.state)?,
                    managed: d.managed,
                })
            })
            .collect();
        let resp = self
            .agents
            .heartbeat_in_process(&self.link, &vms, &busy, req, heard_at)
            .await;
        out.heartbeat = true;
        self.must_fence = resp.must_fence;
        if !resp.must_fence {
            self.fence = None;
        }
        if resp.must_fence && self.compute.health_of_id(self.node).as_deref() == Some("FAILED") {
            // Nothing is started on a FAILED node; the next pass fences it.
            return Ok(out);
        }

        let desired: Vec<DesiredDomain> = resp
            .domains
            .iter()
            .filter_map(|d| desired_from_pb(d).ok().map(|(d, _)| d))
            .filter(|d| !busy.contains(&d.spec.id))
            .collect();
        let mine: HashSet<VmId> = vms.iter().map(|v| v.id).collect();
        let mut acted_on = Vec::new();
        for d in actual.iter().filter(|d| !busy.contains(&d.id)) {
            if !d.managed || mine.contains(&d.id) {
                acted_on.push(d.clone());
                continue;
            }
            // A managed domain of a VM not on this node: removed when the VM is settled
            // elsewhere (restarted by HA, moved), left alone while it moves, reported when
            // no VM record knows it.
            match self.compute.store.get_vm(d.id).await {
                Ok(v) if v.status.state == VmState::Migrating => {}
                Ok(v) => {
                    let Some(g) = self.compute.try_lock(v.id) else { continue };
                    // Read again under the lock: the VM may have been created here or have
                    // arrived here (a migration) since this pass listed the node's VMs; the
                    // desired state of this pass does not know it, so it must not be removed.
                    let v = match self.compute.store.get_vm(v.id).await {
                        Ok(v) => v,
                        Err(e) if e.kind == crate::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    };
                    if settled_elsewhere(v.status.state, v.status.node_id, self.node) {
                        guards.push(g);
                        acted_on.push(d.clone());
                    }
                }
                Err(e) if e.kind == crate::ErrorKind::NotFound => {
                    out.unknown.push(d.id);
                    self.report_unknown(d).await;
                }
                Err(e) => return Err(e),
            }
        }
        let missing: HashSet<VmId> = desired
            .iter()
            .map(|d| d.spec.id)
            .filter(|id| !acted_on.iter().any(|a| a.id == *id))
            .collect();
        let actions = reconcile(&desired, &acted_on);
        self.errors.clear();
        for o in apply(actions, self.hv.as_ref(), self.opts.stop_timeout).await {
            match o.result {
                Ok(()) => {
                    out.actions += 1;
                    if let Action::Define(spec) = &o.action
                        && missing.contains(&spec.id)
                    {
                        out.recreated.push(spec.id);
                    }
                }
                Err(e) => {
                    self.errors.insert(o.action.vm(), e);
                }
            }
        }
        for id in &out.recreated {
            if let Some(vm) = vms.iter().find(|v| v.id == *id) {
                self.report_recreated(vm, desired.iter().any(|d| d.spec.id == *id && d.running))
                    .await;
            }
        }
        drop(guards);
        Ok(out)
    }

    async fn report_recreated(&self, vm: &crate::model::Vm, started: bool) {
        let what = if started {
            "defined and started again"
        } else {
            "defined again"
        };
        warn!(node = %self.name, vm = %vm.name, "the host had lost the VM's domain: {what}");
        let mut d = EventDraft::new(EventType::Recovered, ResourceType::Vm, vm.id.to_string(), Utc::now());
        d.project_id = Some(vm.project_id);
        d.payload = serde_json::json!({
            "reason": "domain_recreated",
            "node": self.name,
            "message": format!("the domain of {} was missing on {}: {what}", vm.name, self.name),
        });
        self.compute.events.publish(d);
        if let Some(a) = &self.opts.alerts {
            let draft = vm_alert(
                vm.id,
                &vm.name,
                AlertSeverity::Warning,
                conditions::VM_DOMAIN_RECREATED,
                format!("{}: domain recreated on {}", vm.name, self.name),
                format!(
                    "Host {} no longer had the domain of VM {} (host restarted or domain removed outside lqx); \
                     it was {what} from the VM's record. Guest memory state was lost.",
                    self.name, vm.name
                ),
            );
            if let Err(e) = a.raise(draft).await {
                warn!(error = %e, "could not raise the domain-recreated alert");
            }
        }
    }

    async fn report_unknown(&mut self, d: &DomainInfo) {
        if !self.reported_unknown.insert(d.id) {
            return;
        }
        warn!(node = %self.name, domain = %d.name, "a lqx- domain that no VM record knows; left as it is");
        let mut ev = EventDraft::new(
            EventType::StateChanged,
            ResourceType::Node,
            self.node.to_string(),
            Utc::now(),
        );
        ev.payload = serde_json::json!({
            "reason": "unknown_domain",
            "domain": d.name,
            "vm_id": d.id.to_string(),
            "state": d.state.as_str(),
        });
        self.compute.events.publish(ev);
        if let Some(a) = &self.opts.alerts {
            let draft = node_alert(
                self.node,
                &self.name,
                AlertSeverity::Warning,
                conditions::NODE_UNKNOWN_DOMAIN,
                format!("{}: unknown domain {}", self.name, d.name),
                format!(
                    "Host {} has domain {} ({}) named like an lqx VM, but no VM record knows it. \
                     lqx leaves it alone; remove it with virsh if it is left over.",
                    self.name,
                    d.name,
                    d.state.as_str()
                ),
            );
            if let Err(e) = a.raise(draft).await {
                warn!(error = %e, "could not raise the unknown-domain alert");
            }
        }
    }
}

/// Simulated demand from the VM records' `sim-load-*` labels
/// ([`crate::driver::sim_load`]); a VM that cannot be read gets the default demand.
pub struct VmLabelDemand(pub crate::store::Store);

impl crate::driver::sim_load::DemandSource for VmLabelDemand {
    fn demand(&self, vm: VmId) -> futures::future::BoxFuture<'_, crate::driver::sim_load::Demand> {
        Box::pin(async move {
            match self.0.get_vm(vm).await {
                Ok(v) => crate::driver::sim_load::demand_of(&v.labels),
                Err(_) => Default::default(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_vm_settled_on_another_node_has_its_domain_removed_here() {
        let (here, there) = (NodeId::new(), NodeId::new());
        assert!(settled_elsewhere(VmState::Running, Some(there), here));
        assert!(settled_elsewhere(VmState::Stopped, None, here));
        // Created or arrived here after the pass listed this node's VMs.
        assert!(!settled_elsewhere(VmState::Running, Some(here), here));
        for moving in [VmState::Pending, VmState::Starting, VmState::Migrating] {
            assert!(!settled_elsewhere(moving, Some(there), here));
        }
    }
}

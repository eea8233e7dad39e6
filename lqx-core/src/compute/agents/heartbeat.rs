//! Heartbeat intake: each accepted heartbeat goes to its node's link (which answers it with
//! the desired state) and what it changed is written to the node and VM records, at most as
//! often as the timing allows.

use super::*;
use chrono::DateTime;

impl Agents {
    /// One heartbeat: records what the agent reports, renews its lease and answers the full
    /// desired state.
    pub async fn heartbeat(&self, credential: &str, req: pb::HeartbeatRequest) -> Result<pb::HeartbeatResponse> {
        let heard_at = Utc::now();
        let node = self.authorize(credential, &req.node_id).await?;
        let link = self.link_of(node).await?;
        let now = Instant::now();
        let hook = read(&self.inner.hook).clone();
        let (resp, writes) = link.accept(&req, now, hook.as_deref());
        self.inner.compute.record_agent_report(
            node,
            crate::fence::Fencing::from_report(&req.fencing_level, &req.fencing),
        );
        self.persist(&link, node, &req, writes, now, heard_at).await;
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
    /// intake as an agent's (lease, HA hook, node usage, observed VM states). `heard_at`: when
    /// the observation began (the host answered after it).
    pub async fn heartbeat_in_process(
        &self,
        link: &AgentLink,
        vms: &[crate::model::Vm],
        busy: &std::collections::HashSet<VmId>,
        req: pb::HeartbeatRequest,
        heard_at: DateTime<Utc>,
    ) -> pb::HeartbeatResponse {
        link.rebuild_from(|vm| self.inner.compute.domain_spec(vm), vms);
        {
            let mut st = lock(&link.state);
            for id in busy {
                *st.busy.entry(*id).or_default() += 1;
            }
        }
        let now = Instant::now();
        let hook = read(&self.inner.hook).clone();
        let (resp, writes) = link.accept(&req, now, hook.as_deref());
        self.inner.compute.record_in_process_heartbeat(link.node, heard_at);
        self.persist(link, link.node, &req, writes, now, heard_at).await;
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
    /// the lease) does not depend on the database. `heard_at` is recorded, not the time of the
    /// write: a slow write must not date the host's last report after it went silent.
    async fn persist(
        &self,
        link: &AgentLink,
        node: NodeId,
        req: &pb::HeartbeatRequest,
        writes: Writes,
        now: Instant,
        heard_at: DateTime<Utc>,
    ) {
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
                n.last_heartbeat = n.last_heartbeat.max(Some(heard_at));
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

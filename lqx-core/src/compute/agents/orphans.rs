//! Live migrations a previous leader ordered and did not see end (it stopped, another
//! replica took over): the new leader learns their outcome from the agents before it
//! re-derives the VM's placement.
//!
//! The rule, in plain words:
//! - At start-up, a VM recorded `Migrating` with no migration in flight here is an orphan:
//!   its record still names the source (the node changes only on success), but the domain may
//!   already run on the target. Every other agent host gets the domain as *incoming* (its agent
//!   neither starts nor removes it), so an arrived copy is not destroyed as unassigned; heartbeats
//!   do not overwrite the record's state meanwhile.
//! - The VM moves to the host that runs the domain once the source's agent reports the
//!   migration succeeded, or reports a full domain list without it. It stays on the source
//!   once the source reports the domain active with no migration running and no other host
//!   has it. Until then nothing changes (the source's agent does not define a domain again
//!   for two minutes after it migrated away).
//! - A source that stays silent for a lease (its host died, or fenced itself) cannot run the
//!   VM: the VM goes to the host that runs it, or, when none does, is recorded UNKNOWN on the
//!   source for HA and the operator to act on, as any VM of a silent host.

use std::collections::HashSet;

use super::*;
use crate::model::{EventType, Vm};

/// What the source's agent said about an orphaned migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Orphan {
    pub source: NodeId,
    /// The outcome the source reported (kept: it is reported once, maybe before the target's
    /// heartbeat shows the domain).
    pub succeeded: Option<bool>,
    /// When this control plane found it (a silent source is measured from here).
    pub since: Instant,
}

enum Settle {
    Wait,
    /// It runs on this node now, in this state.
    Moved(NodeId, DomainState),
    /// It stayed on the source, in this state (None: nowhere to be seen).
    Stayed(Option<DomainState>),
}

impl Agents {
    /// Finds the orphaned migrations in `vms` and shields their possible arrived copies.
    pub(super) fn note_orphans(&self, vms: &[Vm]) {
        let compute = &self.inner.compute;
        for vm in vms {
            let Some(source) = vm.status.node_id else { continue };
            if vm.status.state != VmState::Migrating || compute.migrations.get(vm.id).is_some() {
                continue;
            }
            let Some(src) = self.link(source) else { continue };
            let Some(mut want) = lock(&src.state).desired.get(&vm.id).cloned() else {
                continue;
            };
            want.d.incoming = true;
            want.d.running = true;
            want.d.force_off = false;
            want.d.migrate = None;
            for link in read(&self.inner.links).values().filter(|l| l.node != source) {
                let mut st = lock(&link.state);
                st.desired.entry(vm.id).or_insert_with(|| want.clone());
                let g = link.bump(&mut st);
                drop(st);
                link.desired_tx.send_replace(g);
            }
            compute.migrations.set_orphan(vm.id, true);
            lock(&self.inner.orphans).insert(
                vm.id,
                Orphan {
                    source,
                    succeeded: None,
                    since: Instant::now(),
                },
            );
            tracing::warn!(vm = %vm.name, source = %src.uri, "a migration ordered by the previous leader: its outcome is asked of the agents");
        }
    }

    /// Settles the orphaned migrations whose outcome the agents' reports now show.
    pub(super) async fn settle_orphans(&self) {
        let pending: Vec<(VmId, Orphan)> = lock(&self.inner.orphans).iter().map(|(v, o)| (*v, *o)).collect();
        for (vm, o) in pending {
            let verdict = self.judge(vm, o);
            let done = match verdict {
                Settle::Wait => false,
                Settle::Moved(node, state) => self.adopt(vm, o.source, Some(node), Some(state)).await,
                Settle::Stayed(state) => self.adopt(vm, o.source, None, state).await,
            };
            if done {
                lock(&self.inner.orphans).remove(&vm);
                self.inner.compute.migrations.set_orphan(vm, false);
            }
        }
    }

    fn judge(&self, vm: VmId, o: Orphan) -> Settle {
        let Some(src) = self.link(o.source) else {
            return Settle::Wait;
        };
        let (reported, on_source, running, gone) = {
            let st = lock(&src.state);
            let heard = st.last_heartbeat.map_or(o.since, |t| t.max(o.since));
            let gone = Instant::now().duration_since(heard) > self.inner.timing.lease_ttl;
            let phase = st.migrations.get(&vm).map(|m| m.phase.clone());
            let said = match phase.as_deref() {
                Some("succeeded") => Some(true),
                Some("failed") => Some(false),
                _ => None,
            };
            if let Some(s) = said
                && let Some(x) = lock(&self.inner.orphans).get_mut(&vm)
            {
                x.succeeded = Some(s);
            }
            (
                st.last_heartbeat.is_some() && st.hypervisor_error.is_none(),
                Self::seen_active(&st, vm),
                phase.as_deref() == Some("running"),
                gone,
            )
        };
        let succeeded = lock(&self.inner.orphans).get(&vm).and_then(|x| x.succeeded);
        let arrived = read(&self.inner.links)
            .values()
            .filter(|l| l.node != o.source)
            .find_map(|l| Self::seen_active(&lock(&l.state), vm).map(|s| (l.node, s)));
        match (arrived, on_source) {
            (Some((node, s)), None) if succeeded == Some(true) || reported || gone => Settle::Moved(node, s),
            (None, Some(s)) if reported && !running && succeeded != Some(true) && !gone => Settle::Stayed(Some(s)),
            (None, None) if gone || (reported && succeeded == Some(false)) => Settle::Stayed(None),
            _ => Settle::Wait,
        }
    }

    fn seen_active(st: &LinkState, vm: VmId) -> Option<DomainState> {
        AgentLink::seen_state(st, vm).filter(|s| s.is_active())
    }

    /// Writes where the VM is (`to`: the node it moved to; None: it stayed) and sets every
    /// link's desired state to match. Returns whether it is settled.
    async fn adopt(&self, vm: VmId, source: NodeId, to: Option<NodeId>, state: Option<DomainState>) -> bool {
        let compute = &self.inner.compute;
        let mut rec = match compute.store.get_vm(vm).await {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::NotFound => return true,
            Err(e) => {
                debug!(vm = %vm, error = %e, "cannot read an orphaned migration's VM");
                return false;
            }
        };
        let still_orphan = rec.status.state == VmState::Migrating && rec.status.node_id == Some(source);
        if still_orphan {
            if let Some(t) = to {
                rec.status.node_id = Some(t);
            }
            match state {
                Some(s) => {
                    rec.status.state = vm_state_of(s);
                    rec.status.message.clear();
                }
                None => {
                    rec.status.state = VmState::Unknown;
                    rec.status.message = "not seen on any host after a migration the previous leader ordered".into();
                }
            }
            match compute.store.update_vm(&rec).await {
                Ok(v) => {
                    rec = v;
                    if to.is_some() {
                        compute.publish_vm(EventType::Migrated, &rec);
                    }
                }
                Err(e) => {
                    debug!(vm = %vm, error = %e, "cannot record an orphaned migration's outcome");
                    return false;
                }
            }
        }
        let owner = rec.status.node_id;
        let keep: HashSet<NodeId> = owner.into_iter().collect();
        for link in read(&self.inner.links).values() {
            let mut st = lock(&link.state);
            let changed = if keep.contains(&link.node) {
                st.desired.get_mut(&vm).is_some_and(|w| {
                    let was = w.d.incoming;
                    w.d.incoming = false;
                    w.d.running = rec.desired_state == VmState::Running;
                    was
                })
            } else {
                st.desired.remove(&vm).is_some()
            };
            if changed {
                st.recorded.remove(&vm);
                let g = link.bump(&mut st);
                drop(st);
                link.desired_tx.send_replace(g);
            }
        }
        match to {
            Some(_) if still_orphan => {
                info!(vm = %rec.name, "a migration that ended during the leader change completed: the VM runs on its target")
            }
            None if still_orphan => {
                info!(vm = %rec.name, "a migration that ended during the leader change did not complete: the VM stays on its source")
            }
            _ => {}
        }
        true
    }
}

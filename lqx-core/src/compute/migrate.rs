//! VM migration. A running VM moves live (peer-to-peer); it is moved cold (shut down on the
//! source, started on the target) only when the caller asks for it: where live migration is
//! impossible, the migration fails with the reason instead of silently stopping the guest. A
//! stopped VM is moved cold (nothing runs, nothing stops).
//!
//! The target is chosen under the placement lock and reserved in [`super::inflight`] in the
//! same critical section, until the migration ends; the per-host limit of concurrent
//! migrations is checked there too.

use super::inflight::InFlight;
use super::{Compute, MigrateOutcome};
use crate::driver::{GuestCpu, Hypervisor, LiveOptions, MigrationProgress, ProgressFn};
use crate::model::*;
use crate::saga::{self, Injected, OpKind, OpParams, Operation};
use crate::{Error, Result};
use std::sync::Arc;

/// How long a cancel waits for the aborted migration to end before answering.
pub const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How to migrate.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// The node to move to; None: the scheduler picks.
    pub target: Option<String>,
    /// Move a running VM cold (it is shut down and started again on the target).
    pub cold: bool,
    /// Bandwidth, timeout, auto-converge and post-copy of a live migration.
    pub live: LiveOptions,
}

/// A migration in flight as the VM's status shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationView {
    /// The target node's name.
    pub target_node: String,
    pub live: bool,
    pub progress: MigrationProgress,
}

/// Why `src` -> `dst` cannot be live, if it cannot. Agent hosts migrate peer to peer among
/// themselves, in-process hosts through this control plane's connections: neither reaches
/// the other kind.
pub fn live_blocker(src: &dyn Hypervisor, dst: &dyn Hypervisor) -> Option<String> {
    let agent = |h: &dyn Hypervisor| h.uri().starts_with("agent://");
    src.live_migration_blocker()
        .or_else(|| dst.live_migration_blocker())
        .or_else(|| {
            (agent(src) != agent(dst)).then(|| {
                format!(
                    "{} and {} are hosts of different kinds (agent host, in-process host): a live migration \
                     reaches only a host of the same kind",
                    src.uri(),
                    dst.uri()
                )
            })
        })
}

/// Why the guest's CPU cannot move live from `src` to `dst`: with `host-model` guests get
/// the source host's CPU, which a host of another model may not have. Refused here, before
/// anything moves, rather than half-way; with a named cluster model libvirt checks the target.
async fn cpu_blocker(cpu: &GuestCpu, src: &dyn Hypervisor, dst: &dyn Hypervisor) -> Option<String> {
    if *cpu != GuestCpu::HostModel {
        return None;
    }
    let (a, b) = (src.node_info().await.ok()?, dst.node_info().await.ok()?);
    (!a.cpu_model.is_empty() && !b.cpu_model.is_empty() && a.cpu_model != b.cpu_model).then(|| {
        format!(
            "the hosts have different CPUs ({} has {}, {} has {}) and guests use host-model; set a \
             cluster CPU model every host supports (lqx-server --guest-cpu-model NAME)",
            a.hostname, a.cpu_model, b.hostname, b.cpu_model
        )
    })
}

impl Compute {
    /// Migrates a VM to `target` (None: the scheduler picks). Never leaves the VM running
    /// in two places: a cold move stops it on the source before it is started on the target.
    pub async fn migrate_vm(
        &self,
        id_or_name: &str,
        project: ProjectId,
        target: Option<&str>,
        cold: bool,
    ) -> Result<MigrateOutcome> {
        let opts = MigrateOptions {
            target: target.map(str::to_string),
            cold,
            live: LiveOptions::default(),
        };
        self.migrate_vm_with(id_or_name, project, &opts).await
    }

    /// [`Compute::migrate_vm`] with live-migration options.
    pub async fn migrate_vm_with(
        &self,
        id_or_name: &str,
        project: ProjectId,
        opts: &MigrateOptions,
    ) -> Result<MigrateOutcome> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let mut vm = self.store.get_vm(vm.id).await?;
        let source = vm
            .status
            .node_id
            .ok_or_else(|| Error::precondition(format!("VM {} is not placed on a node", vm.name)))?;
        let src = self.hosts.get(source)?;
        let running = src.domain_state(vm.id).await?.is_active();
        let (target, reservation) = {
            let _p = self.placement_lock.lock().await;
            let pinned = match opts.target.as_deref() {
                Some(t) => Some(self.store.resolve_node(t).await?.id),
                None => None,
            };
            let mut probe = vm.clone();
            if pinned.is_none() {
                probe.spec.placement.excluded_nodes.push(source);
            }
            if pinned == Some(source) {
                return Err(Error::precondition(format!("VM {} is already on that node", vm.name)));
            }
            // Left to the scheduler, a running VM goes only where it can arrive live (a host of
            // the same kind, able to receive it, with a CPU the guest can keep).
            let mut not_live = Vec::new();
            if pinned.is_none() && running && !opts.cold && src.live_migration_blocker().is_none() {
                for n in self.store.all_nodes().await?.iter().filter(|n| n.id != source) {
                    let why = match self.hosts.get(n.id) {
                        Ok(dst) => match live_blocker(src.as_ref(), dst.as_ref()) {
                            Some(why) => Some(why),
                            None => cpu_blocker(&self.guest_cpu(), src.as_ref(), dst.as_ref()).await,
                        },
                        Err(e) => Some(e.message),
                    };
                    if let Some(why) = why {
                        probe.spec.placement.excluded_nodes.push(n.id);
                        not_live.push(format!("{} ({why})", n.name));
                    }
                }
            }
            let target = match self.schedule(&probe, pinned, Some(vm.id)).await {
                Ok(t) => t,
                Err(e) if !not_live.is_empty() => {
                    return Err(Error::precondition(format!(
                        "VM {} is running and cannot be live-migrated to any host: {}; hosts it cannot \
                         reach live: {}. It keeps running where it is",
                        vm.name,
                        e.message,
                        not_live.join("; ")
                    )));
                }
                Err(e) => return Err(e),
            };
            let dst = self.hosts.get(target)?;
            if running
                && !opts.cold
                && let Some(why) = live_blocker(src.as_ref(), dst.as_ref())
            {
                return Err(Error::precondition(format!(
                    "VM {} is running and cannot be live-migrated: {why}; migrate it cold (it will be shut \
                     down and started again on the target) only if that downtime is acceptable",
                    vm.name
                )));
            }
            if running
                && !opts.cold
                && let Some(why) = cpu_blocker(&self.guest_cpu(), src.as_ref(), dst.as_ref()).await
            {
                return Err(Error::precondition(format!(
                    "VM {} is running and cannot be live-migrated: {why}",
                    vm.name
                )));
            }
            let nodes = self.store.all_nodes().await?;
            let name_of = |n: NodeId| {
                nodes
                    .iter()
                    .find(|x| x.id == n)
                    .map_or_else(|| n.to_string(), |x| x.name.clone())
            };
            let r = self.migrations.reserve(
                InFlight {
                    vm: vm.id,
                    source,
                    target,
                    cpu_cores: vm.spec.cpu_cores,
                    memory_mib: vm.spec.memory_mib,
                    anti_affinity_group: vm.spec.placement.anti_affinity_group.clone(),
                    live: running && !opts.cold,
                    progress: MigrationProgress::default(),
                },
                name_of,
            )?;
            (target, r)
        };
        let dst = self.hosts.get(target)?;
        let live = running && !opts.cold;

        // A saga (see `crate::saga`): Migrating and the operation are written together;
        // the transfer; the new node and the end of the operation are written together.
        const KIND: OpKind = OpKind::MigrateVm;
        let prev_state = vm.status.state;
        vm.status.state = VmState::Migrating;
        let op = Operation::new(
            KIND,
            vm.id,
            &self.owner,
            OpParams {
                source: Some(source),
                target: Some(target),
                prev_state: Some(prev_state),
                ..OpParams::default()
            },
        );
        saga::check(KIND, "begin")?;
        vm = self.store.update_vm_op(&vm, Some(&op), None).await?;
        let result = match saga::point(KIND, "transfer") {
            Err(Injected::Crash) => return Err(Injected::Crash.error(KIND, "transfer")),
            Err(i) => Err(i.error(KIND, "transfer")),
            Ok(()) => {
                // The long step: the operation's row is refreshed while it runs.
                let transfer = self.transfer(&vm, &src, &dst, target, reservation, running, live, opts);
                self.refreshing(&op.id, transfer).await
            }
        };
        match result {
            Ok(()) => {
                // Past this point the domain is on the target: a failure to record it leaves
                // the operation for recovery, which finishes it from what the hosts hold.
                saga::check(KIND, "commit")?;
                vm = self.store.get_vm(vm.id).await?;
                vm.status.node_id = Some(target);
                vm.status.state = if running { VmState::Running } else { VmState::Stopped };
                vm.status.message.clear();
                let vm = self.store.update_vm_op(&vm, None, Some(&op.id)).await?;
                self.publish_vm(EventType::Migrated, &vm);
                Ok(MigrateOutcome {
                    vm,
                    source,
                    target,
                    live,
                })
            }
            Err(e) => {
                vm = self.store.get_vm(vm.id).await?;
                vm.status.state = prev_state;
                vm.status.message = format!("migration failed: {e}");
                self.store.update_vm_op(&vm, None, Some(&op.id)).await?;
                Err(e)
            }
        }
    }

    /// Moves the domain of `vm` from `src` to `dst`, holding `reservation` until it is done.
    #[allow(clippy::too_many_arguments)]
    async fn transfer(
        &self,
        vm: &Vm,
        src: &Arc<dyn Hypervisor>,
        dst: &Arc<dyn Hypervisor>,
        target: NodeId,
        reservation: super::inflight::Reservation,
        running: bool,
        live: bool,
        opts: &MigrateOptions,
    ) -> Result<()> {
        if live {
            let r = Arc::new(reservation);
            let sink = r.clone();
            // Progress goes to the in-flight table (GetVM shows it) and, every 10 %, into an
            // UPDATED event of the VM with a `migration` object.
            let (events, snapshot) = (self.events.clone(), vm.clone());
            let last_step = std::sync::Mutex::new(None::<u32>);
            let progress: ProgressFn = Arc::new(move |p| {
                sink.set_progress(p);
                let step = p.percent() / 10;
                let mut last = last_step.lock().unwrap_or_else(|e| e.into_inner());
                if *last != Some(step) {
                    *last = Some(step);
                    let mut d = EventDraft::new(
                        EventType::Updated,
                        ResourceType::Vm,
                        snapshot.id.to_string(),
                        chrono::Utc::now(),
                    );
                    d.project_id = Some(snapshot.project_id);
                    let mut payload = serde_json::to_value(&snapshot).unwrap_or_default();
                    if let Some(o) = payload.as_object_mut() {
                        o.insert(
                            "migration".into(),
                            serde_json::json!({
                                "target_node_id": target.to_string(),
                                "percent": p.percent(),
                                "processed_bytes": p.processed_bytes,
                                "total_bytes": p.total_bytes,
                                "remaining_bytes": p.remaining_bytes,
                            }),
                        );
                    }
                    d.payload = payload;
                    events.publish(d);
                }
            });
            let res = src
                .migrate_live(vm.id, dst.uri().to_string(), opts.live, Some(progress))
                .await
                .map_err(|e| {
                    // Hosts word an abort their own way (libvirt: "canceled by client"; the
                    // simulator names the domain id): the caller asked for it, so say so.
                    if r.cancelled() {
                        Error::aborted(format!(
                            "the migration of VM {} was cancelled; it keeps running on its source node",
                            vm.name
                        ))
                        .with_source(e)
                    } else {
                        Error::from(e)
                    }
                });
            drop(r);
            res
        } else {
            let res = crate::driver::migrate::cold_migrate(src.as_ref(), dst.as_ref(), &self.domain_spec(vm), running)
                .await
                .map_err(Error::from);
            drop(reservation);
            res
        }
    }

    /// The migration of `vm` in flight here, as the API shows it in the VM's status (target
    /// by name, bytes copied, total, still to copy); None when it does not migrate.
    pub async fn migration_view(&self, vm: VmId) -> Result<Option<MigrationView>> {
        let Some(f) = self.migrations.get(vm) else {
            return Ok(None);
        };
        let names = self.store.node_names([f.target]).await?;
        Ok(Some(MigrationView {
            target_node: names.get(&f.target).cloned().unwrap_or_default(),
            live: f.live,
            progress: f.progress,
        }))
    }

    /// Aborts the live migration of a VM in flight; the VM keeps running on its source.
    /// Returns once the migration has ended (or after [`CANCEL_WAIT`]), so the VM read next
    /// shows its state from before the migration, not `Migrating`.
    pub async fn cancel_migration(&self, id_or_name: &str, project: ProjectId) -> Result<()> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let f = self
            .migrations
            .get(vm.id)
            .ok_or_else(|| Error::precondition(format!("VM {} is not being migrated", vm.name)))?;
        if !f.live {
            return Err(Error::precondition(format!(
                "VM {} is being migrated cold; a cold migration cannot be cancelled half-way",
                vm.name
            )));
        }
        // Marked before the abort: the migration may fail at once, and must say why.
        self.migrations.set_cancelled(vm.id, true);
        let aborted = match self.hosts.get(f.source) {
            Ok(h) => h.abort_migration(vm.id).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = aborted {
            // Not cancelled: if the migration fails later, its own error is the reason.
            self.migrations.set_cancelled(vm.id, false);
            return Err(e);
        }
        // A host notices the abort at its next progress check; the migration then writes the
        // VM back and releases its lock. A host that stops answering must not hang the caller.
        let _ = tokio::time::timeout(CANCEL_WAIT, self.lock(vm.id)).await;
        Ok(())
    }
}

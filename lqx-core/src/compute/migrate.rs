//! VM migration: live (peer-to-peer) when the VM runs and both hosts support it, cold
//! otherwise or on request.

use super::{Compute, MigrateOutcome};
use crate::model::*;
use crate::{Error, Result};

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
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let mut vm = self.store.get_vm(vm.id).await?;
        let source = vm
            .status
            .node_id
            .ok_or_else(|| Error::precondition(format!("VM {} is not placed on a node", vm.name)))?;
        let target = {
            let _p = self.placement_lock.lock().await;
            let pinned = match target {
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
            self.schedule(&probe, pinned, Some(vm.id)).await?
        };
        let src = self.hosts.get(source)?;
        let dst = self.hosts.get(target)?;
        let running = src.domain_state(vm.id).await?.is_active();
        let live = running && !cold && src.supports_live_migration() && dst.supports_live_migration();

        let prev_state = vm.status.state;
        vm.status.state = VmState::Migrating;
        vm = self.store.update_vm(&vm).await?;
        let result = if live {
            src.migrate_live(vm.id, dst.uri().to_string(), None)
                .await
                .map_err(Error::from)
        } else {
            crate::driver::migrate::cold_migrate(src.as_ref(), dst.as_ref(), &super::vms::domain_spec(&vm), running)
                .await
                .map_err(Error::from)
        };
        match result {
            Ok(()) => {
                vm.status.node_id = Some(target);
                vm.status.state = if running { VmState::Running } else { VmState::Stopped };
                vm.status.message.clear();
                let vm = self.store.update_vm(&vm).await?;
                self.publish_vm(EventType::Migrated, &vm);
                Ok(MigrateOutcome {
                    vm,
                    source,
                    target,
                    live,
                })
            }
            Err(e) => {
                vm.status.state = prev_state;
                vm.status.message = format!("migration failed: {e}");
                self.store.update_vm(&vm).await?;
                Err(e)
            }
        }
    }
}

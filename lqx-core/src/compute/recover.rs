//! Recovery of multi-step operations a control plane left unfinished (see [`crate::saga`]):
//! each is finished or undone from what the store and the hosts hold now.

use super::Compute;
use crate::driver::DriverErrorKind;
use crate::model::*;
use crate::saga::{MigrateResolution, OpKind, Operation, resolve_migration};
use crate::{Error, ErrorKind, Result};
use std::time::Duration;

/// What one recovery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Operations finished (delete, migrate onto its target, HA restart).
    pub completed: usize,
    /// Operations undone (create, migrate back to its source, HA restart never committed).
    pub undone: usize,
    /// Operations that could not be settled now (a host unreachable); tried again next pass.
    pub left: usize,
}

enum Outcome {
    Completed,
    Undone,
}

impl Compute {
    /// Finishes or undoes the operations other processes left behind and have not touched
    /// for `min_age` (zero when this process is the database's only writer, so any row is
    /// from a process that stopped). A running operation touches its row while a long step
    /// runs ([`OP_REFRESH`]), so one still running elsewhere is never taken over. Run at
    /// start-up and on becoming leader.
    pub async fn recover_operations(&self, min_age: Duration) -> Result<Recovery> {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(min_age).unwrap_or(chrono::Duration::MAX);
        let mut out = Recovery::default();
        for op in self.store.op_list().await? {
            if *op.owner == *self.owner || op.updated_at > cutoff {
                continue;
            }
            let _g = self.lock(op.vm).await;
            match self.recover_one(&op).await {
                Ok(Outcome::Completed) => out.completed += 1,
                Ok(Outcome::Undone) => out.undone += 1,
                Err(e) => {
                    tracing::warn!(op = %op.id, kind = op.kind.as_str(), vm = %op.vm, error = %e,
                        "an unfinished operation could not be settled yet");
                    out.left += 1;
                }
            }
        }
        if out != Recovery::default() {
            tracing::info!(
                completed = out.completed,
                undone = out.undone,
                left = out.left,
                "recovered unfinished operations"
            );
        }
        Ok(out)
    }

    async fn recover_one(&self, op: &Operation) -> Result<Outcome> {
        match op.kind {
            OpKind::CreateVm => {
                self.undo_create(op).await?;
                Ok(Outcome::Undone)
            }
            OpKind::DeleteVm => {
                let hv = match op.params.source {
                    Some(node) => Some(self.hosts.get(node)?),
                    None => None,
                };
                let active = match &hv {
                    Some(hv) => match hv.domain_state(op.vm).await {
                        Ok(s) => Some(s.is_active()),
                        Err(e) if e.kind() == DriverErrorKind::NotFound => None,
                        Err(e) => return Err(e.into()),
                    },
                    None => None,
                };
                let host = hv.as_deref().zip(active);
                self.delete_steps(op, host).await?;
                Ok(Outcome::Completed)
            }
            OpKind::MigrateVm => self.recover_migration(op).await,
            OpKind::HaRestart => {
                let vm = match self.store.get_vm(op.vm).await {
                    Ok(v) => v,
                    Err(e) if e.kind == ErrorKind::NotFound => {
                        self.store.op_end(&op.id).await?;
                        return Ok(Outcome::Undone);
                    }
                    Err(e) => return Err(e),
                };
                if vm.status.node_id == op.params.target && vm.status.state == VmState::Starting {
                    // Committed, not started: finish it. A start that fails marks the VM
                    // Failed with the reason (and ends the operation), as it would have.
                    drop(vm);
                    return match self.failover_start_locked(op.vm).await {
                        Ok(_) => Ok(Outcome::Completed),
                        Err(e) if e.kind == ErrorKind::Internal => Err(e),
                        Err(_) => Ok(Outcome::Completed),
                    };
                }
                // Never committed (or already settled): nothing to undo.
                self.store.op_end(&op.id).await?;
                Ok(Outcome::Undone)
            }
        }
    }

    async fn recover_migration(&self, op: &Operation) -> Result<Outcome> {
        let (Some(source), Some(target)) = (op.params.source, op.params.target) else {
            return Err(Error::internal(anyhow::anyhow!(
                "migration operation {} names no hosts",
                op.id
            )));
        };
        let mut vm = match self.store.get_vm(op.vm).await {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::NotFound => {
                self.store.op_end(&op.id).await?;
                return Ok(Outcome::Undone);
            }
            Err(e) => return Err(e),
        };
        let (src, dst) = (self.hosts.get(source)?, self.hosts.get(target)?);
        let held = |r: crate::driver::DriverResult<crate::driver::DomainState>| match r {
            Ok(s) => Ok(Some(s.is_active())),
            Err(e) if e.kind() == DriverErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::from(e)),
        };
        let on_src = held(src.domain_state(op.vm).await)?;
        let on_dst = held(dst.domain_state(op.vm).await)?;
        let drop_copy = |hv: std::sync::Arc<dyn crate::driver::Hypervisor>| async move {
            // Volumes stay: with shared storage they are the guest's disks on the other end.
            if let Err(e) = hv.destroy(op.vm).await
                && !matches!(e.kind(), DriverErrorKind::NotFound | DriverErrorKind::InvalidState)
            {
                return Err(Error::from(e));
            }
            match hv.undefine(op.vm, false).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == DriverErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::from(e)),
            }
        };
        let outcome = match resolve_migration(on_src, on_dst) {
            MigrateResolution::Unknown => {
                return Err(Error::unavailable(format!(
                    "VM {} is on neither end of its interrupted migration",
                    vm.name
                )));
            }
            MigrateResolution::Target { running, drop_source } => {
                if drop_source {
                    drop_copy(src).await?;
                }
                vm.status.node_id = Some(target);
                vm.status.state = if running { VmState::Running } else { VmState::Stopped };
                vm.status.message = "migration finished by recovery".into();
                Outcome::Completed
            }
            MigrateResolution::Source { running, drop_target } => {
                if drop_target {
                    drop_copy(dst).await?;
                }
                vm.status.node_id = Some(source);
                vm.status.state = if running {
                    VmState::Running
                } else {
                    match op.params.prev_state {
                        Some(s) if !s.is_active() => s,
                        _ => VmState::Stopped,
                    }
                };
                vm.status.message = "migration interrupted; undone by recovery".into();
                Outcome::Undone
            }
        };
        let vm = self.store.update_vm_op(&vm, None, Some(&op.id)).await?;
        self.publish_vm(
            match outcome {
                Outcome::Completed => EventType::Migrated,
                Outcome::Undone => EventType::Updated,
            },
            &vm,
        );
        Ok(outcome)
    }
}

/// How long an operation of another replica must stand still before a new leader takes it
/// over. A running operation refreshes its row every [`OP_REFRESH`] while a long step (a
/// live migration of a large guest) runs, so only one whose process stopped gets this old.
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(600);

/// How often a long step refreshes its operation's row: well inside [`TAKEOVER_AFTER`], so
/// a slow database write or two cannot make a running operation look abandoned.
pub const OP_REFRESH: Duration = Duration::from_secs(60);

impl Compute {
    /// Runs `step` of operation `op`, refreshing the operation's row every
    /// [`OP_REFRESH`] (or as set by [`Compute::set_operation_refresh`]) until it ends.
    pub(crate) async fn refreshing<T>(&self, op: &str, step: impl std::future::Future<Output = T>) -> T {
        let every = Duration::from_millis(self.op_refresh_ms.load(std::sync::atomic::Ordering::Relaxed));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(step);
        loop {
            tokio::select! {
                biased;
                r = &mut step => return r,
                _ = tick.tick() => match self.store.op_touch(op, chrono::Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(op, "a running operation's row is gone (taken over?)"),
                    Err(e) => tracing::warn!(op, error = %e, "refreshing a running operation failed"),
                },
            }
        }
    }
}

/// How often recovery tries again while operations are left unsettled.
const RETRY: Duration = Duration::from_secs(30);

/// The name of saga recovery among the background tasks.
pub const RECOVERY_TASK: &str = "saga-recovery";

impl Compute {
    /// Recovery as lqx-server runs it: whenever this replica becomes leader, and then every
    /// 30 s while it leads and operations are left unsettled (a host not connected yet).
    /// `min_age` as in [`Compute::recover_operations`].
    pub fn spawn_recovery(
        &self,
        leading: tokio::sync::watch::Receiver<bool>,
        min_age: Duration,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_recovery_as(
            leading,
            min_age,
            crate::background::Task::detached(RECOVERY_TASK, RETRY),
        )
    }

    /// [`Compute::spawn_recovery`], registered in `tasks` as `saga-recovery`.
    pub fn spawn_recovery_in(
        &self,
        leading: tokio::sync::watch::Receiver<bool>,
        min_age: Duration,
        tasks: &crate::background::BackgroundTasks,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_recovery_as(leading, min_age, tasks.register(RECOVERY_TASK, RETRY))
    }

    fn spawn_recovery_as(
        &self,
        mut leading: tokio::sync::watch::Receiver<bool>,
        min_age: Duration,
        task: crate::background::Task,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if leading.wait_for(|l| *l).await.is_err() {
                    return;
                }
                loop {
                    let run = task.run_with(me.recover_operations(min_age), |r| format!("{} left unsettled", r.left));
                    let left = match run.await {
                        Ok(r) => r.left,
                        Err(e) => {
                            tracing::warn!(error = %e, "recovering unfinished operations failed");
                            1
                        }
                    };
                    if left == 0 {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        r = leading.wait_for(|l| !*l) => if r.is_err() { return } else { break },
                    }
                }
                if leading.wait_for(|l| !*l).await.is_err() {
                    return;
                }
            }
        })
    }
}

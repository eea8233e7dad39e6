//! Durable multi-step operations ("sagas", sized for lqx).
//!
//! An operation that touches the store and a host in several steps (create, delete and
//! migrate a VM, restart one by HA) is recorded in the `operations` table from its first
//! write to its end, in the same transactions as the VM writes it makes. A control plane that
//! stops half-way leaves the row behind, and whoever runs the recovery next
//! ([`crate::compute::Compute::recover_operations`], at start-up and on becoming leader)
//! finishes or undoes it from what the store and the hosts show:
//! - create: undone (the domain undefined, the VM row and its idempotency key removed in one
//!   transaction), since its caller never got an answer and a retry with the same
//!   `request_id` must create it afresh;
//! - delete: finished (a destroyed domain cannot be brought back);
//! - migrate: finished on the target when the domain is there and not on the source, else
//!   undone on the source; the in-memory reservation died with the process;
//! - HA restart: finished (defined and started on the committed target), or dropped when the
//!   commit never happened.
//!
//! Failpoints (the `fail` crate, only with the `failpoints` feature, which tests enable) sit
//! before each step, named `<kind>/<step>`: `return(fail)` makes the step fail as a host or
//! database error would (the operation undoes what it did), `return(crash)` stops the
//! operation there as if the process died (nothing is undone; the row stays for recovery).

use crate::model::{NodeId, VmId, VmState};
use crate::{Error, ErrorKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    CreateVm,
    DeleteVm,
    MigrateVm,
    HaRestart,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::CreateVm => "create_vm",
            OpKind::DeleteVm => "delete_vm",
            OpKind::MigrateVm => "migrate_vm",
            OpKind::HaRestart => "ha_restart",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        [OpKind::CreateVm, OpKind::DeleteVm, OpKind::MigrateVm, OpKind::HaRestart]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What recovery needs to finish or undo an operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpParams {
    /// Create: the idempotency key written with the VM (removed by the undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Migrate and HA restart: where the VM was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<NodeId>,
    /// Create, migrate and HA restart: where it goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<NodeId>,
    /// Migrate: the VM's state before it became Migrating (restored by the undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_state: Option<VmState>,
}

/// One operation in progress, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    pub kind: OpKind,
    pub vm: VmId,
    /// The process running it.
    pub owner: String,
    pub params: OpParams,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Operation {
    pub fn new(kind: OpKind, vm: VmId, owner: &str, params: OpParams) -> Operation {
        let now = Utc::now();
        Operation {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            vm,
            owner: owner.to_string(),
            params,
            created_at: now,
            updated_at: now,
        }
    }
}

/// What a failpoint asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// The step fails; the operation undoes what it did and returns the error.
    Fail,
    /// The process "dies" here: the operation returns at once, undoing nothing.
    Crash,
}

impl Injected {
    pub fn error(self, kind: OpKind, step: &str) -> Error {
        match self {
            Injected::Fail => Error::unavailable(format!("injected failure at {}/{step}", kind.as_str())),
            Injected::Crash => Error::new(ErrorKind::Internal, format!("{CRASH_MARK} at {}/{step}", kind.as_str())),
        }
    }
}

/// Starts the message of the error an injected crash returns.
pub const CRASH_MARK: &str = "injected crash";

/// True for the error of an injected crash (the operation left its row for recovery).
pub fn is_crash(e: &Error) -> bool {
    e.message.starts_with(CRASH_MARK)
}

/// The failpoint before `step` of a `kind` operation. Always `Ok` without the `failpoints`
/// feature.
pub fn point(kind: OpKind, step: &str) -> Result<(), Injected> {
    #[cfg(feature = "failpoints")]
    {
        let name = format!("{}/{step}", kind.as_str());
        let hit = fail::eval(&name, |arg| match arg.as_deref() {
            Some("crash") => Injected::Crash,
            _ => Injected::Fail,
        });
        if let Some(i) = hit {
            return Err(i);
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = (kind, step);
    Ok(())
}

/// [`point`] as an error of the operation.
pub fn check(kind: OpKind, step: &str) -> crate::Result<()> {
    point(kind, step).map_err(|i| i.error(kind, step))
}

/// Where an interrupted migration's VM ends up, from what each end holds (None: the host has
/// no such domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateResolution {
    /// The target holds it and the source does not run it: the move happened.
    Target { running: bool, drop_source: bool },
    /// The source still holds it: the move is undone.
    Source { running: bool, drop_target: bool },
    /// Neither end shows it (a host unreachable or the domain lost): left for a later pass.
    Unknown,
}

/// Decides an interrupted migration (see [`MigrateResolution`]). A domain active on both
/// ends (a live migration's paused incoming copy) stays with the source, which the guest was
/// running on until the hand-over completes.
pub fn resolve_migration(source: Option<bool>, target: Option<bool>) -> MigrateResolution {
    match (source, target) {
        (Some(src_active), Some(dst_active)) if dst_active && !src_active => MigrateResolution::Target {
            running: true,
            drop_source: true,
        },
        (Some(src_active), Some(_)) => MigrateResolution::Source {
            running: src_active,
            drop_target: true,
        },
        (Some(src_active), None) => MigrateResolution::Source {
            running: src_active,
            drop_target: false,
        },
        (None, Some(dst_active)) => MigrateResolution::Target {
            running: dst_active,
            drop_source: false,
        },
        (None, None) => MigrateResolution::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in [OpKind::CreateVm, OpKind::DeleteVm, OpKind::MigrateVm, OpKind::HaRestart] {
            assert_eq!(OpKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(OpKind::parse("nope"), None);
    }

    #[test]
    fn interrupted_migration_goes_where_the_guest_is() {
        use MigrateResolution::*;
        // Not yet moved: the source has it, the target nothing.
        assert_eq!(
            resolve_migration(Some(true), None),
            Source {
                running: true,
                drop_target: false
            }
        );
        // Live hand-over not done: both active; the source keeps it, the copy goes.
        assert_eq!(
            resolve_migration(Some(true), Some(true)),
            Source {
                running: true,
                drop_target: true
            }
        );
        // Cold: defined on the target, source stopped but still defined: the target runs it.
        assert_eq!(
            resolve_migration(Some(false), Some(true)),
            Target {
                running: true,
                drop_source: true
            }
        );
        // Cold, nothing started yet: both defined, neither active: stays on the source.
        assert_eq!(
            resolve_migration(Some(false), Some(false)),
            Source {
                running: false,
                drop_target: true
            }
        );
        // Moved: only the target has it.
        assert_eq!(
            resolve_migration(None, Some(true)),
            Target {
                running: true,
                drop_source: false
            }
        );
        assert_eq!(
            resolve_migration(None, Some(false)),
            Target {
                running: false,
                drop_source: false
            }
        );
        assert_eq!(resolve_migration(None, None), Unknown);
    }

    #[test]
    fn params_are_compact() {
        let p = OpParams::default();
        assert_eq!(serde_json::to_string(&p).unwrap(), "{}");
    }

    #[test]
    fn no_failpoint_means_go() {
        assert_eq!(point(OpKind::CreateVm, "never-configured"), Ok(()));
    }
}

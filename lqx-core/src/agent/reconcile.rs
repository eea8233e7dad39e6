//! Reconciliation: from the desired domains of this node and what the hypervisor reports, the
//! actions that make them agree.
//!
//! The rule, level-triggered: every desired domain is defined (created if missing) and is
//! running or stopped as desired (a crashed one counts as stopped and is started again, a paused
//! one that should run is resumed); every lqx-managed domain that is not desired here is
//! powered off at once (it may already run elsewhere after a failover) and undefined, keeping
//! its volumes (with shared storage they belong to the copy that runs elsewhere). Domains not
//! created by lqx are never touched. Stops come before starts, so capacity is freed first.
//! Two refinements: a domain the control plane marks `force_off` is powered off rather than
//! shut down gracefully, and an unwanted domain listed in `purge` (its VM was deleted) is
//! undefined together with its volumes.
//! Running the planner again on the result gives no action: repeating a command, or restarting
//! the agent, does nothing twice.

use std::{collections::HashSet, time::Duration};

use serde::{Deserialize, Serialize};

use tracing::{info, warn};

use crate::{
    driver::{DomainInfo, DomainSpec, DomainState, DriverError, Hypervisor},
    model::VmId,
};

/// One domain this node should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredDomain {
    pub spec: DomainSpec,
    pub running: bool,
    /// Destroyed (not started again) when the agent fences itself.
    #[serde(default)]
    pub ha_protected: bool,
    /// When it should not run: power it off at once instead of an ACPI shutdown.
    #[serde(default)]
    pub force_off: bool,
    /// Ordered to migrate live away from this host.
    #[serde(default)]
    pub migrate: Option<MigrationOrder>,
    /// Arriving here by a live migration.
    #[serde(default)]
    pub incoming: bool,
}

/// A live migration the control plane orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationOrder {
    pub id: String,
    pub destination_uri: String,
    #[serde(default)]
    pub options: crate::driver::LiveOptions,
}

impl DesiredDomain {
    pub fn new(spec: DomainSpec, running: bool) -> Self {
        DesiredDomain {
            spec,
            running,
            ha_protected: false,
            force_off: false,
            migrate: None,
            incoming: false,
        }
    }

    /// Migrating away or arriving: reconciliation leaves the domain alone (a paused source at
    /// the switch-over must not be resumed, a half-arrived target must not be started).
    pub fn hands_off(&self) -> bool {
        self.migrate.is_some() || self.incoming
    }
}

/// One change to make on the hypervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Define a missing domain (shut off).
    Define(Box<DomainSpec>),
    Start(VmId),
    Resume(VmId),
    /// Graceful shutdown, powered off after the timeout.
    Stop(VmId),
    /// Immediate power off (a domain that should not run here).
    Destroy(VmId),
    /// Remove the definition, keeping volumes.
    Undefine(VmId),
    /// Remove the definition and delete its volumes (the VM was deleted).
    Remove(VmId),
}

impl Action {
    pub fn vm(&self) -> VmId {
        match self {
            Action::Define(s) => s.id,
            Action::Start(id)
            | Action::Resume(id)
            | Action::Stop(id)
            | Action::Destroy(id)
            | Action::Undefine(id)
            | Action::Remove(id) => *id,
        }
    }
}

/// The actions that bring `actual` to `desired`, stops and removals first.
pub fn reconcile(desired: &[DesiredDomain], actual: &[DomainInfo]) -> Vec<Action> {
    reconcile_with_purge(desired, &HashSet::new(), actual)
}

/// [`reconcile`], where unwanted domains in `purge` lose their volumes too.
pub fn reconcile_with_purge(desired: &[DesiredDomain], purge: &HashSet<VmId>, actual: &[DomainInfo]) -> Vec<Action> {
    let mut removals = Vec::new();
    let mut starts = Vec::new();
    let wanted: HashSet<VmId> = desired.iter().map(|d| d.spec.id).collect();
    for a in actual.iter().filter(|a| a.managed && !wanted.contains(&a.id)) {
        if a.state.is_active() {
            removals.push(Action::Destroy(a.id));
        }
        removals.push(if purge.contains(&a.id) {
            Action::Remove(a.id)
        } else {
            Action::Undefine(a.id)
        });
    }
    for d in desired.iter().filter(|d| !d.hands_off()) {
        let id = d.spec.id;
        match actual.iter().find(|a| a.id == id).map(|a| a.state) {
            None => {
                starts.push(Action::Define(Box::new(d.spec.clone())));
                if d.running {
                    starts.push(Action::Start(id));
                }
            }
            Some(s) if d.running => match s {
                DomainState::Shutoff | DomainState::Crashed => starts.push(Action::Start(id)),
                DomainState::Paused => starts.push(Action::Resume(id)),
                DomainState::Running | DomainState::ShuttingDown => {}
            },
            Some(s) if s.is_active() && d.force_off => removals.push(Action::Destroy(id)),
            // A shutdown already in progress is waited for, not requested twice.
            Some(DomainState::ShuttingDown) => {}
            Some(s) if s.is_active() => removals.push(Action::Stop(id)),
            Some(_) => {}
        }
    }
    removals.extend(starts);
    removals
}

/// The result of one action.
#[derive(Debug)]
pub struct Outcome {
    pub action: Action,
    pub result: Result<(), DriverError>,
}

/// Executes `actions` in order; a failed action is reported and the others still run (the
/// next reconciliation retries it). Errors that mean "already done" count as success.
/// A hypervisor action that takes longer is given up (its call goes on in its blocking
/// worker, abandoned) and reported as timed out, so one hung libvirt call does not hold the
/// reconcile loop for ever; a retry finds the domain defined or running and counts it done.
/// Generous: a first `define` on a fresh libvirtd probes QEMU's capabilities for over 30 s.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn apply(actions: Vec<Action>, h: &dyn Hypervisor, stop_timeout: Duration) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        let limit = match &action {
            Action::Stop(_) => stop_timeout + ACTION_TIMEOUT,
            _ => ACTION_TIMEOUT,
        };
        let result = tokio::time::timeout(limit, run(&action, h, stop_timeout))
            .await
            .unwrap_or_else(|_| {
                Err(DriverError::Timeout(format!(
                    "the hypervisor did not finish within {} (libvirtd is slow or hung; the call goes on)",
                    humantime::format_duration(limit)
                )))
            });
        let id = action.vm();
        match &result {
            Ok(()) => info!(vm = %id, ?action, "reconciled"),
            Err(e) => warn!(vm = %id, ?action, error = %e, "reconcile action failed"),
        }
        out.push(Outcome { action, result });
    }
    out
}

async fn run(action: &Action, h: &dyn Hypervisor, stop_timeout: Duration) -> Result<(), DriverError> {
    let id = action.vm();
    match action {
        Action::Define(spec) => ok_if_exists(h.define((**spec).clone()).await),
        Action::Start(_) => ok_if_state(h.start(id).await),
        Action::Resume(_) => ok_if_state(h.resume(id).await),
        Action::Stop(_) => match h.shutdown(id, stop_timeout).await {
            Err(DriverError::Timeout(_)) => {
                warn!(vm = %id, "guest ignored shutdown, powering off");
                ok_if_state(h.destroy(id).await)
            }
            r => ok_if_state(r),
        },
        Action::Destroy(_) => ok_if_state(h.destroy(id).await),
        Action::Undefine(_) => match h.undefine(id, false).await {
            Err(DriverError::NotFound(_)) => Ok(()),
            r => r,
        },
        Action::Remove(_) => match h.undefine(id, true).await {
            Err(DriverError::NotFound(_)) => Ok(()),
            r => r,
        },
    }
}

fn ok_if_exists(r: Result<(), DriverError>) -> Result<(), DriverError> {
    match r {
        Err(DriverError::AlreadyExists(_)) => Ok(()),
        r => r,
    }
}

/// A wrong-state error means someone else got there first; the next pass looks again.
fn ok_if_state(r: Result<(), DriverError>) -> Result<(), DriverError> {
    match r {
        Err(DriverError::InvalidState(_)) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::sim::{SimConfig, SimHypervisor, SimOp};

    #[tokio::test(start_paused = true)]
    async fn a_hung_hypervisor_call_is_given_up_and_the_next_action_runs() {
        let h = SimHypervisor::new("sim://hung", SimConfig::default()).unwrap();
        h.stall(SimOp::Define, Some(Duration::from_secs(3600)));
        let (a, b) = (want("a", false), want("b", false));
        let actions = vec![Action::Define(Box::new(a.spec.clone())), Action::Destroy(b.spec.id)];
        let t0 = tokio::time::Instant::now();
        let out = apply(actions, &h, Duration::from_secs(5)).await;
        assert!(
            matches!(out[0].result, Err(DriverError::Timeout(_))),
            "{:?}",
            out[0].result
        );
        assert_eq!(t0.elapsed(), ACTION_TIMEOUT);
        assert_eq!(out.len(), 2, "the loop goes on after a hung call");
    }

    fn want(name: &str, running: bool) -> DesiredDomain {
        DesiredDomain::new(DomainSpec::new(VmId::new(), name, 1, 256), running)
    }

    async fn converge(desired: &[DesiredDomain], h: &SimHypervisor) -> usize {
        let actual = h.list_domains().await.unwrap();
        let actions = reconcile(desired, &actual);
        let n = actions.len();
        for o in apply(actions, h, Duration::from_secs(5)).await {
            o.result.unwrap();
        }
        n
    }

    #[tokio::test]
    async fn converges_and_then_does_nothing() {
        let h = SimHypervisor::new("sim://n", SimConfig::default()).unwrap();
        let desired = vec![want("a", true), want("b", false)];
        assert_eq!(converge(&desired, &h).await, 3, "define a, start a, define b");
        let states: Vec<_> = h
            .list_domains()
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.name, d.state))
            .collect();
        assert!(states.contains(&("a".into(), DomainState::Running)));
        assert!(states.contains(&("b".into(), DomainState::Shutoff)));
        // The same command again, and an agent restart (fresh planner, same hypervisor).
        assert_eq!(converge(&desired, &h).await, 0);
        assert_eq!(converge(&desired, &h).await, 0);
        assert_eq!(h.domain_count(), 2);
    }

    #[tokio::test]
    async fn domains_in_a_live_migration_are_left_alone() {
        let h = SimHypervisor::new("sim://n", SimConfig::default()).unwrap();
        let mut leaving = want("leaving", true);
        converge(std::slice::from_ref(&leaving), &h).await;
        h.suspend(leaving.spec.id).await.unwrap();
        leaving.migrate = Some(MigrationOrder {
            id: "m".into(),
            destination_uri: "sim://b".into(),
            options: Default::default(),
        });
        let mut arriving = want("arriving", true);
        arriving.incoming = true;
        // Paused at the switch-over: not resumed; the arriving one: not defined nor started.
        let desired = vec![leaving.clone(), arriving];
        assert_eq!(reconcile(&desired, &h.list_domains().await.unwrap()), vec![]);
        // Gone from here after the migration (undefined on the source): not defined again.
        h.destroy(leaving.spec.id).await.unwrap();
        h.undefine(leaving.spec.id, false).await.unwrap();
        assert_eq!(reconcile(&desired, &h.list_domains().await.unwrap()), vec![]);
        // The order withdrawn: reconciled as usual again.
        leaving.migrate = None;
        assert_eq!(reconcile(&[leaving.clone()], &[]).len(), 2);
    }

    #[tokio::test]
    async fn follows_changes_and_removes_what_is_not_wanted() {
        let h = SimHypervisor::new("sim://n", SimConfig::default()).unwrap();
        let mut desired = vec![want("a", true), want("b", true)];
        converge(&desired, &h).await;
        desired[0].running = false;
        let gone = desired.pop().unwrap();
        let actions = reconcile(&desired, &h.list_domains().await.unwrap());
        assert_eq!(
            actions,
            vec![
                Action::Destroy(gone.spec.id),
                Action::Undefine(gone.spec.id),
                Action::Stop(desired[0].spec.id)
            ]
        );
        for o in apply(actions, &h, Duration::from_secs(5)).await {
            o.result.unwrap();
        }
        assert_eq!(h.domain_count(), 1);
        assert_eq!(h.domain_state(desired[0].spec.id).await.unwrap(), DomainState::Shutoff);
        assert_eq!(converge(&desired, &h).await, 0);
    }

    #[tokio::test]
    async fn restarts_crashed_and_resumes_paused() {
        let h = SimHypervisor::new("sim://n", SimConfig::default()).unwrap();
        let mut a = want("a", true);
        a.spec.on_crash = crate::driver::CrashAction::Preserve;
        let b = want("b", true);
        let desired = vec![a.clone(), b.clone()];
        converge(&desired, &h).await;
        h.crash(a.spec.id).unwrap();
        h.suspend(b.spec.id).await.unwrap();
        let actions = reconcile(&desired, &h.list_domains().await.unwrap());
        assert_eq!(actions, vec![Action::Start(a.spec.id), Action::Resume(b.spec.id)]);
        converge(&desired, &h).await;
        assert_eq!(h.domain_state(a.spec.id).await.unwrap(), DomainState::Running);
        assert_eq!(h.domain_state(b.spec.id).await.unwrap(), DomainState::Running);
    }

    #[tokio::test]
    async fn a_failed_action_is_retried_by_the_next_pass() {
        let h = SimHypervisor::new("sim://n", SimConfig::default()).unwrap();
        let desired = vec![want("a", true)];
        h.fail_next(SimOp::Start, DriverError::Unavailable("blip".into()));
        let out = apply(reconcile(&desired, &[]), &h, Duration::from_secs(5)).await;
        assert!(out[0].result.is_ok() && out[1].result.is_err());
        assert_eq!(converge(&desired, &h).await, 1, "only the start is left");
        assert_eq!(h.domain_state(desired[0].spec.id).await.unwrap(), DomainState::Running);
    }

    #[tokio::test]
    async fn force_off_destroys_and_purge_deletes_volumes() {
        let h = SimHypervisor::new("sim://n", SimConfig::default()).unwrap();
        let mut a = want("a", true);
        a.spec.disks.push(crate::driver::DiskSpec {
            name: "root".into(),
            size_mib: 64,
            pool: crate::driver::default_pool(),
            bus: Default::default(),
        });
        let mut b = want("b", true);
        converge(&[a.clone(), b.clone()], &h).await;
        b.running = false;
        b.force_off = true;
        let actual = h.list_domains().await.unwrap();
        assert_eq!(
            reconcile(&[a.clone(), b.clone()], &actual),
            vec![Action::Destroy(b.spec.id)]
        );
        let purge: HashSet<VmId> = [a.spec.id].into();
        let actions = reconcile_with_purge(&[b.clone()], &purge, &actual);
        assert_eq!(
            actions,
            vec![
                Action::Destroy(a.spec.id),
                Action::Remove(a.spec.id),
                Action::Destroy(b.spec.id)
            ]
        );
        for o in apply(actions, &h, Duration::from_secs(5)).await {
            o.result.unwrap();
        }
        assert!(h.list_volumes("default".into()).await.unwrap().is_empty());
        assert_eq!(h.domain_count(), 1);
    }

    #[test]
    fn foreign_domains_are_left_alone() {
        let foreign = DomainInfo {
            id: VmId::new(),
            name: "legacy".into(),
            state: DomainState::Running,
            managed: false,
        };
        assert!(reconcile(&[], &[foreign]).is_empty());
    }
}

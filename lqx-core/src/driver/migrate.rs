//! Migration between two hypervisors: live (peer-to-peer, when both ends support it) or cold.
//!
//! The rule of a cold migration: stop on the source, define on the target, start on the
//! target (only if it was running), undefine on the source. Each step checks what is already
//! true before acting, so repeating a step after a crash does nothing twice. The progress is a
//! plain value ([`ColdMigration`], serde) that the caller stores after every step; after a crash
//! it is loaded and either resumed ([`ColdMigration::advance`]) or undone
//! ([`ColdMigration::undo_step`]). The domain never runs in two places: the target is started
//! only while the source is verified inactive, and the source is restarted on undo only while
//! the target is verified inactive. Volumes are never deleted by a migration step or its undo
//! (with shared storage the target's volume *is* the source's); disk contents are not copied,
//! so a cold migration between hosts with local storage needs the volumes copied beforehand.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{DomainSpec, DomainState, DriverError, DriverResult, Hypervisor, ProgressFn};
use crate::model::VmId;

/// How far a cold migration got. Steps are in order; `SourceUndefined` is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColdStep {
    Pending,
    SourceStopped,
    TargetDefined,
    TargetStarted,
    SourceUndefined,
}

/// How to stop the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColdOptions {
    /// ACPI shutdown timeout.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Power off when the guest ignores the shutdown (else the migration fails, VM untouched).
    pub force: bool,
}

impl Default for ColdOptions {
    fn default() -> Self {
        ColdOptions {
            shutdown_timeout: Duration::from_secs(120),
            force: false,
        }
    }
}

/// A cold migration in progress: store it after every step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColdMigration {
    pub vm: VmId,
    pub source_uri: String,
    pub target_uri: String,
    /// The definition that moves, read from the source when planned.
    pub spec: DomainSpec,
    /// Whether the domain ran before: it is started on the target (or again on the source
    /// when undone).
    pub was_running: bool,
    pub options: ColdOptions,
    pub step: ColdStep,
}

impl ColdMigration {
    /// Reads the domain on `source` and checks that `target` does not have it yet.
    pub async fn plan(
        source: &dyn Hypervisor,
        target: &dyn Hypervisor,
        vm: VmId,
        options: ColdOptions,
    ) -> DriverResult<Self> {
        let state = source.domain_state(vm).await?;
        let was_running = match state {
            DomainState::Running | DomainState::ShuttingDown => true,
            DomainState::Shutoff | DomainState::Crashed => false,
            DomainState::Paused => {
                return Err(DriverError::InvalidState(format!(
                    "domain {vm} is paused: resume or stop it before a cold migration"
                )));
            }
        };
        match target.domain_state(vm).await {
            Ok(_) => {
                return Err(DriverError::AlreadyExists(format!("domain {vm} on {}", target.uri())));
            }
            Err(DriverError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let spec = source.domain_spec(vm).await?;
        Ok(ColdMigration {
            vm,
            source_uri: source.uri().to_string(),
            target_uri: target.uri().to_string(),
            spec,
            was_running,
            options,
            step: ColdStep::Pending,
        })
    }

    pub fn is_done(&self) -> bool {
        self.step == ColdStep::SourceUndefined
    }

    fn check_ends(&self, source: &dyn Hypervisor, target: &dyn Hypervisor) -> DriverResult<()> {
        if source.uri() != self.source_uri || target.uri() != self.target_uri {
            return Err(DriverError::Invalid(format!(
                "migration of {} is from {} to {}, not {} to {}",
                self.vm,
                self.source_uri,
                self.target_uri,
                source.uri(),
                target.uri()
            )));
        }
        Ok(())
    }

    /// Performs the next step and returns the step reached. Safe to call again after any
    /// failure or crash: a step that already happened is recognised and skipped.
    pub async fn advance(&mut self, source: &dyn Hypervisor, target: &dyn Hypervisor) -> DriverResult<ColdStep> {
        self.check_ends(source, target)?;
        let vm = self.vm;
        let next = match self.step {
            ColdStep::Pending => {
                match source.domain_state(vm).await? {
                    DomainState::Shutoff | DomainState::Crashed => {}
                    DomainState::Paused => {
                        return Err(DriverError::InvalidState(format!("domain {vm} is paused")));
                    }
                    DomainState::Running | DomainState::ShuttingDown => {
                        stop(source, vm, self.options).await?;
                    }
                }
                ColdStep::SourceStopped
            }
            ColdStep::SourceStopped => {
                match target.define(self.spec.clone()).await {
                    Ok(()) => {}
                    // Defined before a crash: same id, same spec (nobody else defines lqx ids).
                    Err(DriverError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e),
                }
                ColdStep::TargetDefined
            }
            ColdStep::TargetDefined => {
                if self.was_running {
                    ensure_inactive(source, vm, "start it on the target").await?;
                    match target.domain_state(vm).await? {
                        DomainState::Running | DomainState::ShuttingDown => {}
                        DomainState::Paused => target.resume(vm).await?,
                        DomainState::Shutoff | DomainState::Crashed => target.start(vm).await?,
                    }
                }
                ColdStep::TargetStarted
            }
            ColdStep::TargetStarted => {
                ensure_inactive(source, vm, "undefine it on the source").await?;
                match source.undefine(vm, false).await {
                    Ok(()) | Err(DriverError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                ColdStep::SourceUndefined
            }
            ColdStep::SourceUndefined => ColdStep::SourceUndefined,
        };
        if next != self.step {
            info!(vm = %vm, step = ?next, source = %self.source_uri, target = %self.target_uri, "cold migration step");
        }
        self.step = next;
        Ok(next)
    }

    /// Runs the remaining steps, calling `persist` after each one.
    pub async fn run(
        &mut self,
        source: &dyn Hypervisor,
        target: &dyn Hypervisor,
        persist: &mut (dyn FnMut(&ColdMigration) + Send),
    ) -> DriverResult<()> {
        while !self.is_done() {
            self.advance(source, target).await?;
            persist(self);
        }
        Ok(())
    }

    /// Reverses the last step done and returns the step reached; `Pending` means back where it
    /// started (running on the source if it ran before). A finished migration cannot be undone
    /// (migrate back instead).
    pub async fn undo_step(&mut self, source: &dyn Hypervisor, target: &dyn Hypervisor) -> DriverResult<ColdStep> {
        self.check_ends(source, target)?;
        let vm = self.vm;
        let prev = match self.step {
            ColdStep::SourceUndefined => {
                return Err(DriverError::InvalidState(format!(
                    "migration of {vm} finished; migrate it back instead"
                )));
            }
            ColdStep::TargetStarted => {
                match target.domain_state(vm).await {
                    Ok(s) if s.is_active() => stop(target, vm, self.options).await?,
                    Ok(_) | Err(DriverError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                ColdStep::TargetDefined
            }
            ColdStep::TargetDefined => {
                match target.domain_state(vm).await {
                    Ok(s) if s.is_active() => stop(target, vm, self.options).await?,
                    Ok(_) | Err(DriverError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                match target.undefine(vm, false).await {
                    Ok(()) | Err(DriverError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                ColdStep::SourceStopped
            }
            ColdStep::SourceStopped => {
                if self.was_running {
                    match target.domain_state(vm).await {
                        Err(DriverError::NotFound(_)) => {}
                        Ok(s) if !s.is_active() => {}
                        Ok(s) => {
                            return Err(DriverError::InvalidState(format!(
                                "domain {vm} is {s} on {}; not restarting it on the source",
                                self.target_uri
                            )));
                        }
                        Err(e) => return Err(e),
                    }
                    match source.domain_state(vm).await? {
                        DomainState::Shutoff | DomainState::Crashed => source.start(vm).await?,
                        DomainState::Paused => source.resume(vm).await?,
                        DomainState::Running | DomainState::ShuttingDown => {}
                    }
                }
                ColdStep::Pending
            }
            ColdStep::Pending => ColdStep::Pending,
        };
        if prev != self.step {
            info!(vm = %vm, step = ?prev, "cold migration undone one step");
        }
        self.step = prev;
        Ok(prev)
    }

    /// Undoes every step done, calling `persist` after each one.
    pub async fn undo(
        &mut self,
        source: &dyn Hypervisor,
        target: &dyn Hypervisor,
        persist: &mut (dyn FnMut(&ColdMigration) + Send),
    ) -> DriverResult<()> {
        while self.step != ColdStep::Pending {
            self.undo_step(source, target).await?;
            persist(self);
        }
        Ok(())
    }
}

/// Graceful shutdown, then (if allowed) power off.
async fn stop(h: &dyn Hypervisor, vm: VmId, opts: ColdOptions) -> DriverResult<()> {
    if h.domain_state(vm).await? == DomainState::Paused {
        return h.destroy(vm).await;
    }
    match h.shutdown(vm, opts.shutdown_timeout).await {
        Ok(()) => Ok(()),
        // Already off (it stopped on its own between the two calls).
        Err(DriverError::InvalidState(_)) if !h.domain_state(vm).await?.is_active() => Ok(()),
        Err(DriverError::Timeout(m)) if opts.force => {
            warn!(vm = %vm, host = %h.uri(), "guest ignored shutdown, powering off");
            match h.destroy(vm).await {
                Err(DriverError::InvalidState(_)) if !h.domain_state(vm).await?.is_active() => Ok(()),
                r => r.map_err(|e| DriverError::Other(format!("{m}; power off failed: {e}"))),
            }
        }
        Err(e) => Err(e),
    }
}

async fn ensure_inactive(h: &dyn Hypervisor, vm: VmId, why: &str) -> DriverResult<()> {
    match h.domain_state(vm).await {
        Ok(s) if s.is_active() => Err(DriverError::InvalidState(format!(
            "domain {vm} is {s} on {}; refusing to {why}",
            h.uri()
        ))),
        Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A cold migration of `spec` in one call, for callers that do not store progress. On failure
/// the steps done are undone (best effort), leaving the domain where it was; the first error is
/// returned.
pub async fn cold_migrate(
    source: &dyn Hypervisor,
    target: &dyn Hypervisor,
    spec: &DomainSpec,
    was_running: bool,
) -> DriverResult<()> {
    let mut m = ColdMigration {
        vm: spec.id,
        source_uri: source.uri().to_string(),
        target_uri: target.uri().to_string(),
        spec: spec.clone(),
        was_running,
        options: ColdOptions::default(),
        step: ColdStep::Pending,
    };
    if let Err(e) = m.run(source, target, &mut |_| {}).await {
        if let Err(undo) = m.undo(source, target, &mut |_| {}).await {
            warn!(vm = %spec.id, step = ?m.step, error = %undo, "could not undo a failed cold migration");
        }
        return Err(e);
    }
    Ok(())
}

/// How to migrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationMode {
    /// Live when both ends support it and the domain runs, else cold.
    #[default]
    Auto,
    Live,
    Cold,
}

/// What actually happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationKind {
    Live,
    Cold,
}

/// Moves `vm` from `source` to `target`. Live migration is tried when `mode` allows it, both
/// ends support it and the domain runs; a live attempt refused as Unsupported falls back to
/// cold in `Auto` mode. A cold migration calls `persist` after each step (see the module doc
/// to resume or undo one after a crash).
pub async fn migrate(
    source: &dyn Hypervisor,
    target: &dyn Hypervisor,
    vm: VmId,
    mode: MigrationMode,
    options: ColdOptions,
    progress: Option<ProgressFn>,
    persist: &mut (dyn FnMut(&ColdMigration) + Send),
) -> DriverResult<MigrationKind> {
    let live_possible = source.supports_live_migration() && target.supports_live_migration();
    if mode != MigrationMode::Cold {
        let running = matches!(
            source.domain_state(vm).await?,
            DomainState::Running | DomainState::Paused
        );
        if mode == MigrationMode::Live && !live_possible {
            return Err(DriverError::Unsupported(format!(
                "live migration from {} to {}",
                source.uri(),
                target.uri()
            )));
        }
        if live_possible && running {
            match source
                .migrate_live(vm, target.uri().to_string(), Default::default(), progress)
                .await
            {
                Ok(()) => return Ok(MigrationKind::Live),
                Err(DriverError::Unsupported(why)) if mode == MigrationMode::Auto => {
                    info!(vm = %vm, %why, "live migration refused, migrating cold");
                }
                Err(e) => return Err(e),
            }
        } else if mode == MigrationMode::Live {
            return Err(DriverError::InvalidState(format!("domain {vm} is not running")));
        }
    }
    let mut m = ColdMigration::plan(source, target, vm, options).await?;
    persist(&m);
    m.run(source, target, persist).await?;
    Ok(MigrationKind::Cold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{
        DriverErrorKind,
        sim::{ShutdownBehavior, SimConfig, SimHypervisor, SimOp, SimRegistry},
    };

    struct Pair {
        a: SimHypervisor,
        b: SimHypervisor,
        vm: VmId,
    }

    async fn pair(live: bool) -> Pair {
        let reg = SimRegistry::new();
        let cfg = SimConfig {
            live_migration: live,
            ..SimConfig::default()
        };
        let a = reg.create("sim://a", cfg.clone()).unwrap();
        let b = reg.create("sim://b", cfg).unwrap();
        let mut spec = DomainSpec::new(VmId::new(), "web", 2, 1024);
        spec.disks.push(crate::driver::DiskSpec {
            name: "root".into(),
            size_mib: 64,
            pool: "default".into(),
            bus: Default::default(),
        });
        a.define(spec.clone()).await.unwrap();
        a.start(spec.id).await.unwrap();
        Pair { a, b, vm: spec.id }
    }

    async fn state(h: &SimHypervisor, vm: VmId) -> Option<DomainState> {
        h.domain_state(vm).await.ok()
    }

    /// Never running on both.
    async fn check_invariant(p: &Pair) {
        let (a, b) = (state(&p.a, p.vm).await, state(&p.b, p.vm).await);
        assert!(
            !(a.is_some_and(DomainState::is_active) && b.is_some_and(DomainState::is_active)),
            "running twice: {a:?} {b:?}"
        );
    }

    #[tokio::test]
    async fn cold_migration_moves_a_running_domain() {
        let p = pair(false).await;
        let mut steps = Vec::new();
        let kind = migrate(
            &p.a,
            &p.b,
            p.vm,
            MigrationMode::Auto,
            ColdOptions::default(),
            None,
            &mut |m| steps.push(m.step),
        )
        .await
        .unwrap();
        assert_eq!(kind, MigrationKind::Cold);
        assert_eq!(
            steps,
            [
                ColdStep::Pending,
                ColdStep::SourceStopped,
                ColdStep::TargetDefined,
                ColdStep::TargetStarted,
                ColdStep::SourceUndefined
            ]
        );
        assert_eq!(state(&p.a, p.vm).await, None);
        assert_eq!(state(&p.b, p.vm).await, Some(DomainState::Running));
        assert_eq!(p.b.domain_spec(p.vm).await.unwrap().disks[0].size_mib, 64);
        // Volumes stay on the source (shared storage is the expected setup).
        assert_eq!(p.a.list_volumes("default".into()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn auto_prefers_live_and_live_mode_refuses_without_support() {
        let p = pair(true).await;
        let kind = migrate(
            &p.a,
            &p.b,
            p.vm,
            MigrationMode::Auto,
            ColdOptions::default(),
            None,
            &mut |_| panic!("live migration persists no cold steps"),
        )
        .await
        .unwrap();
        assert_eq!(kind, MigrationKind::Live);
        assert_eq!(state(&p.b, p.vm).await, Some(DomainState::Running));

        let q = pair(false).await;
        let e = migrate(
            &q.a,
            &q.b,
            q.vm,
            MigrationMode::Live,
            ColdOptions::default(),
            None,
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::Unsupported);
        assert_eq!(state(&q.a, q.vm).await, Some(DomainState::Running), "untouched");
    }

    #[tokio::test]
    async fn a_stopped_domain_stays_stopped() {
        let p = pair(false).await;
        p.a.destroy(p.vm).await.unwrap();
        migrate(
            &p.a,
            &p.b,
            p.vm,
            MigrationMode::Auto,
            ColdOptions::default(),
            None,
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!(state(&p.b, p.vm).await, Some(DomainState::Shutoff));
    }

    /// The failure points: which host fails which operation, and the step it stops at.
    fn failure_points() -> Vec<(bool, SimOp, ColdStep)> {
        vec![
            (true, SimOp::Shutdown, ColdStep::Pending),
            (false, SimOp::Define, ColdStep::SourceStopped),
            (false, SimOp::Start, ColdStep::TargetDefined),
            (true, SimOp::Undefine, ColdStep::TargetStarted),
        ]
    }

    #[tokio::test]
    async fn a_failure_at_any_step_can_be_resumed_after_a_crash() {
        for (on_source, op, stuck_at) in failure_points() {
            let p = pair(false).await;
            let h = if on_source { &p.a } else { &p.b };
            h.fail_next(op, DriverError::Unavailable("link down".into()));
            let mut stored = String::new();
            let mut m = ColdMigration::plan(&p.a, &p.b, p.vm, ColdOptions::default())
                .await
                .unwrap();
            let err = m
                .run(&p.a, &p.b, &mut |m| stored = serde_json::to_string(m).unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), DriverErrorKind::Unavailable, "{op:?}");
            assert_eq!(m.step, stuck_at, "{op:?}");
            check_invariant(&p).await;
            // The process dies; a new one loads the stored progress and resumes.
            let mut resumed: ColdMigration = if stored.is_empty() {
                m.clone()
            } else {
                serde_json::from_str(&stored).unwrap()
            };
            assert_eq!(resumed.step, stuck_at);
            while !resumed.is_done() {
                resumed.advance(&p.a, &p.b).await.unwrap();
                check_invariant(&p).await;
            }
            assert_eq!(state(&p.a, p.vm).await, None, "{op:?}");
            assert_eq!(state(&p.b, p.vm).await, Some(DomainState::Running), "{op:?}");
            // Repeating a finished migration does nothing.
            assert_eq!(resumed.advance(&p.a, &p.b).await.unwrap(), ColdStep::SourceUndefined);
            assert_eq!(p.b.domain_count(), 1);
        }
    }

    #[tokio::test]
    async fn a_failure_at_any_step_can_be_undone() {
        for (on_source, op, stuck_at) in failure_points() {
            let p = pair(false).await;
            let h = if on_source { &p.a } else { &p.b };
            h.fail_next(op, DriverError::Other("boom".into()));
            let mut m = ColdMigration::plan(&p.a, &p.b, p.vm, ColdOptions::default())
                .await
                .unwrap();
            assert!(m.run(&p.a, &p.b, &mut |_| {}).await.is_err());
            assert_eq!(m.step, stuck_at);
            m.undo(&p.a, &p.b, &mut |_| {}).await.unwrap();
            assert_eq!(m.step, ColdStep::Pending);
            assert_eq!(state(&p.a, p.vm).await, Some(DomainState::Running), "{op:?}");
            assert_eq!(state(&p.b, p.vm).await, None, "{op:?}");
            check_invariant(&p).await;
        }
    }

    #[tokio::test]
    async fn a_step_repeated_after_a_crash_before_persisting_is_not_done_twice() {
        let p = pair(false).await;
        let mut m = ColdMigration::plan(&p.a, &p.b, p.vm, ColdOptions::default())
            .await
            .unwrap();
        m.advance(&p.a, &p.b).await.unwrap();
        let before_define = m.clone();
        m.advance(&p.a, &p.b).await.unwrap();
        m.advance(&p.a, &p.b).await.unwrap();
        // Crash: the last stored state was before the define; replaying define and start
        // finds both already done.
        let mut replay = before_define;
        while !replay.is_done() {
            replay.advance(&p.a, &p.b).await.unwrap();
        }
        assert_eq!(p.b.domain_count(), 1);
        assert_eq!(state(&p.b, p.vm).await, Some(DomainState::Running));
    }

    #[tokio::test]
    async fn never_starts_on_the_target_while_the_source_runs() {
        let p = pair(false).await;
        let mut m = ColdMigration::plan(&p.a, &p.b, p.vm, ColdOptions::default())
            .await
            .unwrap();
        m.advance(&p.a, &p.b).await.unwrap();
        m.advance(&p.a, &p.b).await.unwrap();
        // Someone restarts the VM on the source meanwhile.
        p.a.start(p.vm).await.unwrap();
        let e = m.advance(&p.a, &p.b).await.unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::InvalidState);
        check_invariant(&p).await;
        assert_eq!(m.step, ColdStep::TargetDefined);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_guest_fails_the_migration_unless_forced() {
        let p = pair(false).await;
        p.a.set_shutdown_behavior(p.vm, ShutdownBehavior::Ignore).unwrap();
        let opts = ColdOptions {
            shutdown_timeout: Duration::from_secs(10),
            force: false,
        };
        let e = migrate(&p.a, &p.b, p.vm, MigrationMode::Cold, opts, None, &mut |_| {})
            .await
            .unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::Timeout);
        assert_eq!(state(&p.a, p.vm).await, Some(DomainState::Running));
        assert_eq!(state(&p.b, p.vm).await, None);
        let opts = ColdOptions { force: true, ..opts };
        migrate(&p.a, &p.b, p.vm, MigrationMode::Cold, opts, None, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(state(&p.b, p.vm).await, Some(DomainState::Running));
    }

    #[tokio::test]
    async fn plan_refuses_a_target_that_has_the_domain_and_wrong_hosts() {
        let p = pair(false).await;
        let spec = p.a.domain_spec(p.vm).await.unwrap();
        p.b.define(spec).await.unwrap();
        let e = ColdMigration::plan(&p.a, &p.b, p.vm, ColdOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), DriverErrorKind::AlreadyExists);
        p.b.undefine(p.vm, false).await.unwrap();
        let mut m = ColdMigration::plan(&p.a, &p.b, p.vm, ColdOptions::default())
            .await
            .unwrap();
        assert_eq!(
            m.advance(&p.b, &p.a).await.unwrap_err().kind(),
            DriverErrorKind::Invalid
        );
        let done = ColdMigration {
            step: ColdStep::SourceUndefined,
            ..m.clone()
        };
        let mut done2 = done.clone();
        assert_eq!(
            done2.undo_step(&p.a, &p.b).await.unwrap_err().kind(),
            DriverErrorKind::InvalidState
        );
    }
}

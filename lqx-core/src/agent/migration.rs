//! The agent's half of live migration: the control plane orders a migration by setting
//! `migrate` on a desired domain; this module drives it (the hypervisor's peer-to-peer
//! migration to the destination's libvirt URI) and reports its phase and progress in every
//! heartbeat until the order is withdrawn.
//!
//! The rule, in plain words:
//! - A new order (an id not seen before) starts one migration. Its id is written to the data
//!   directory first, so an agent restarted mid-way recognises it: such a migration is aborted
//!   (the hypervisor keeps the domain on the source) and reported failed, never re-run blind.
//! - An order withdrawn while its migration runs (the control plane gave up: timeout, target
//!   gone, a new leader that did not order it) aborts it; the domain stays here.
//! - The control plane alone decides where the VM lives afterwards, from the reported phase
//!   and the domains both agents report.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use tracing::{info, warn};

use super::{
    control::error_kind_str,
    reconcile::{DesiredDomain, MigrationOrder},
};
use crate::{
    api::node::v1 as pb,
    driver::{DriverError, Hypervisor, MigrationProgress, ProgressFn},
    model::VmId,
};

const FILE: &str = "agent-migrations.json";

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Running,
    Succeeded,
    Failed(DriverError),
}

#[derive(Debug, Clone)]
struct Job {
    id: String,
    phase: Phase,
    progress: MigrationProgress,
    /// The order was withdrawn: aborted, reported until the migration call has returned.
    withdrawn: bool,
    /// Its final phase went into a heartbeat.
    reported: bool,
}

/// How long a domain that migrated away is kept from being defined here again while the
/// control plane still lists it (it has not taken the success in yet).
const MOVED_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// The migrations this agent drives.
pub struct Migrator {
    hv: Arc<dyn Hypervisor>,
    path: PathBuf,
    jobs: Mutex<HashMap<VmId, Job>>,
    /// Orders started by an earlier run of this agent (read once at start).
    interrupted: Mutex<HashSet<String>>,
    /// The ids last written to the file.
    written: Mutex<Vec<String>>,
    /// Domains that migrated away, and when.
    moved: Mutex<HashMap<VmId, tokio::time::Instant>>,
    /// Notified when a migration ends (the agent reports at once).
    ended: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Migrator {
    pub fn new(hv: Arc<dyn Hypervisor>, data_dir: &std::path::Path) -> Arc<Self> {
        let path = data_dir.join(FILE);
        let interrupted: HashSet<String> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Arc::new(Migrator {
            hv,
            path,
            jobs: Mutex::default(),
            interrupted: Mutex::new(interrupted),
            written: Mutex::new(vec![String::new()]),
            moved: Mutex::default(),
            ended: Mutex::default(),
        })
    }

    /// `n` is notified whenever a migration ends.
    pub fn on_end(&self, n: Arc<tokio::sync::Notify>) {
        *lock(&self.ended) = Some(n);
    }

    /// Follows the desired state: starts new orders, aborts withdrawn ones.
    pub fn sync(self: &Arc<Self>, desired: &[DesiredDomain]) {
        let orders: HashMap<VmId, &MigrationOrder> = desired
            .iter()
            .filter_map(|d| d.migrate.as_ref().map(|m| (d.spec.id, m)))
            .collect();
        let mut jobs = lock(&self.jobs);
        // Withdrawn (or replaced by another order): abort what runs (it is reported until the
        // hypervisor call returns and its outcome was reported once), forget what ended.
        jobs.retain(|vm, j| orders.get(vm).is_some_and(|o| o.id == j.id) || j.phase == Phase::Running || !j.reported);
        let now = tokio::time::Instant::now();
        // A domain arriving back (a move there and back again within the grace) is wanted here
        // again: forgetting it keeps reconcile from removing the arrived copy as unassigned.
        lock(&self.moved).retain(|vm, at| {
            desired.iter().any(|d| d.spec.id == *vm && !d.incoming) && now.duration_since(*at) < MOVED_GRACE
        });
        for (vm, j) in jobs.iter_mut() {
            if orders.get(vm).is_none_or(|o| o.id != j.id) && !j.withdrawn {
                j.withdrawn = true;
                let vm = *vm;
                warn!(vm = %vm, migration = %j.id, "migration order withdrawn: aborting it, the domain stays here");
                let hv = self.hv.clone();
                tokio::spawn(async move {
                    if let Err(e) = hv.abort_migration(vm).await {
                        warn!(vm = %vm, error = %e, "could not abort the migration");
                    }
                });
            }
        }
        let mut started = false;
        for (vm, order) in orders {
            if jobs.contains_key(&vm) {
                continue;
            }
            if lock(&self.interrupted).remove(&order.id) {
                warn!(vm = %vm, migration = %order.id, "the agent restarted during this migration: aborting it");
                let hv = self.hv.clone();
                tokio::spawn(async move {
                    let _ = hv.abort_migration(vm).await;
                });
                jobs.insert(
                    vm,
                    Job {
                        id: order.id.clone(),
                        phase: Phase::Failed(DriverError::InvalidState(
                            "the source agent restarted during the migration".into(),
                        )),
                        progress: MigrationProgress::default(),
                        withdrawn: false,
                        reported: false,
                    },
                );
                continue;
            }
            jobs.insert(
                vm,
                Job {
                    id: order.id.clone(),
                    phase: Phase::Running,
                    progress: MigrationProgress::default(),
                    withdrawn: false,
                    reported: false,
                },
            );
            started = true;
            self.clone().spawn(vm, order.clone());
        }
        let mut ids: Vec<String> = jobs.values().map(|j| j.id.clone()).collect();
        ids.sort();
        let mut written = lock(&self.written);
        if started || *written != ids {
            if let Err(e) = write(&self.path, &serde_json::to_vec(&ids).unwrap_or_default()) {
                warn!(error = %e, "cannot record the migrations in progress");
            }
            *written = ids;
        }
    }

    fn spawn(self: Arc<Self>, vm: VmId, order: MigrationOrder) {
        tokio::spawn(async move {
            info!(vm = %vm, migration = %order.id, to = %order.destination_uri, "live migration started");
            let me = Arc::downgrade(&self);
            let id = order.id.clone();
            let progress: ProgressFn = Arc::new(move |p| {
                if let Some(me) = me.upgrade()
                    && let Some(j) = lock(&me.jobs).get_mut(&vm)
                    && j.id == id
                {
                    j.progress = p;
                }
            });
            let r = self
                .hv
                .migrate_live(vm, order.destination_uri.clone(), order.options, Some(progress))
                .await;
            match &r {
                Ok(()) => info!(vm = %vm, migration = %order.id, "live migration succeeded"),
                Err(e) => warn!(vm = %vm, migration = %order.id, error = %e, "live migration failed"),
            }
            if r.is_ok() {
                lock(&self.moved).insert(vm, tokio::time::Instant::now());
            }
            if let Some(j) = lock(&self.jobs).get_mut(&vm)
                && j.id == order.id
            {
                j.phase = match r {
                    Ok(()) => Phase::Succeeded,
                    Err(e) => Phase::Failed(e),
                };
            }
            if let Some(n) = lock(&self.ended).as_ref() {
                n.notify_one();
            }
        });
    }

    /// Domains that migrated away from here while the control plane still lists them: not to
    /// be defined here again (for a while: should the control plane insist, it is obeyed).
    pub fn moved_away(&self) -> HashSet<VmId> {
        lock(&self.moved).keys().copied().collect()
    }

    /// The heartbeat's view of every migration.
    pub fn statuses(&self) -> Vec<pb::MigrationStatus> {
        lock(&self.jobs)
            .iter_mut()
            .map(|(vm, j)| {
                if j.phase != Phase::Running {
                    j.reported = true;
                }
                let (phase, error, kind) = match &j.phase {
                    Phase::Running => ("running", String::new(), ""),
                    Phase::Succeeded => ("succeeded", String::new(), ""),
                    Phase::Failed(e) => ("failed", e.message().to_string(), error_kind_str(e)),
                };
                pb::MigrationStatus {
                    vm_id: vm.to_string(),
                    migration_id: j.id.clone(),
                    phase: phase.into(),
                    processed_bytes: j.progress.processed_bytes,
                    total_bytes: j.progress.total_bytes,
                    remaining_bytes: j.progress.remaining_bytes,
                    error,
                    error_kind: kind.into(),
                }
            })
            .collect()
    }
}

fn write(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{
        DomainSpec, DomainState,
        sim::{SimConfig, SimRegistry},
    };
    use std::time::Duration;

    fn order(id: &str, to: &str) -> MigrationOrder {
        MigrationOrder {
            id: id.into(),
            destination_uri: to.into(),
            options: Default::default(),
        }
    }

    async fn running_pair() -> (
        crate::driver::sim::SimHypervisor,
        crate::driver::sim::SimHypervisor,
        DesiredDomain,
    ) {
        let reg = SimRegistry::new();
        let cfg = SimConfig {
            migration_mib_per_sec: 64,
            ..SimConfig::default()
        };
        let a = reg.create("sim://a", cfg.clone()).unwrap();
        let b = reg.create("sim://b", cfg).unwrap();
        let spec = DomainSpec::new(VmId::new(), "m", 1, 512);
        a.define(spec.clone()).await.unwrap();
        a.start(spec.id).await.unwrap();
        (a, b, DesiredDomain::new(spec, true))
    }

    async fn phase_of(m: &Migrator) -> String {
        m.statuses().first().map(|s| s.phase.clone()).unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_runs_once_and_reports_progress_and_success() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, mut d) = running_pair().await;
        let m = Migrator::new(Arc::new(a.clone()), dir.path());
        d.migrate = Some(order("m1", "sim://b"));
        m.sync(std::slice::from_ref(&d));
        m.sync(std::slice::from_ref(&d));
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let s = &m.statuses()[0];
        assert_eq!((s.phase.as_str(), s.processed_bytes >> 20), ("running", 256));
        assert_eq!(s.remaining_bytes >> 20, 256);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(phase_of(&m).await, "succeeded");
        assert_eq!(b.domain_state(d.spec.id).await.unwrap(), DomainState::Running);
        assert_eq!(a.domain_count(), 0);
        // Gone from here: while the control plane still lists it (the order withdrawn before
        // it took the success in), it is not to be defined here again...
        d.migrate = None;
        m.sync(std::slice::from_ref(&d));
        assert_eq!(m.moved_away(), [d.spec.id].into());
        // ...unless it is ordered back here: arriving again, it is this host's once more.
        let mut back = d.clone();
        back.incoming = true;
        m.sync(std::slice::from_ref(&back));
        assert!(m.moved_away().is_empty(), "a domain migrating back is not held off");
        // ...and once the control plane drops it, nothing is remembered.
        m.sync(std::slice::from_ref(&d));
        m.sync(&[]);
        assert!(m.moved_away().is_empty());
        assert!(m.statuses().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawn_order_aborts_and_the_domain_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, mut d) = running_pair().await;
        let m = Migrator::new(Arc::new(a.clone()), dir.path());
        d.migrate = Some(order("m1", "sim://b"));
        m.sync(std::slice::from_ref(&d));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        d.migrate = None;
        m.sync(std::slice::from_ref(&d));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(phase_of(&m).await, "failed", "reported until the call returned");
        m.sync(std::slice::from_ref(&d));
        assert!(m.statuses().is_empty());
        assert_eq!(a.domain_state(d.spec.id).await.unwrap(), DomainState::Running);
        assert!(b.domain_state(d.spec.id).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_restart_an_interrupted_order_is_aborted_not_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, mut d) = running_pair().await;
        d.migrate = Some(order("m1", "sim://b"));
        {
            let m = Migrator::new(Arc::new(a.clone()), dir.path());
            m.sync(std::slice::from_ref(&d));
        }
        // The process died: its task went with it (here: the abort the new run sends).
        let m = Migrator::new(Arc::new(a.clone()), dir.path());
        m.sync(std::slice::from_ref(&d));
        let s = &m.statuses()[0];
        assert_eq!(s.phase, "failed");
        assert!(s.error.contains("restarted"), "{}", s.error);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(a.domain_state(d.spec.id).await.unwrap(), DomainState::Running);
        assert!(b.domain_state(d.spec.id).await.is_err());
        // A new order (a new id) runs.
        d.migrate = Some(order("m2", "sim://b"));
        m.sync(std::slice::from_ref(&d));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(phase_of(&m).await, "succeeded");
    }
}

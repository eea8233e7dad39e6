//! Migrations in flight in this control plane: what each holds on its target, how far it got,
//! and the per-host limit of concurrent migrations.
//!
//! The rule: a migration's target is chosen under the placement lock and, in the same critical
//! section, entered here with the VM's vCPUs and memory. Until the entry is dropped (the
//! migration ended, succeeded or failed), placement counts those resources on the target, so a
//! create racing the migration cannot take them. A host takes part in at most
//! `max_per_host` migrations at once, in or out, whoever asked (DRS, maintenance, a user).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::driver::MigrationProgress;
use crate::model::{NodeId, VmId};
use crate::placement::NodeAllocation;
use crate::{Error, Result};

/// Default limit of concurrent migrations per host (in and out together).
pub const DEFAULT_MAX_PER_HOST: usize = 2;

/// The `migration:` section of the server's config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MigrationConfig {
    /// Migrations a host takes part in at once, in or out, whoever asked (DRS, maintenance
    /// evacuation, `lqx vm migrate`); DRS plans no more per round either.
    pub max_per_host: u32,
}

impl Default for MigrationConfig {
    fn default() -> Self {
        MigrationConfig {
            max_per_host: DEFAULT_MAX_PER_HOST as u32,
        }
    }
}

impl MigrationConfig {
    pub fn validate(&self) -> Result<()> {
        if self.max_per_host == 0 {
            return Err(Error::invalid("migration.max_per_host", "must be at least 1"));
        }
        Ok(())
    }
}

/// One migration in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub vm: VmId,
    pub source: NodeId,
    pub target: NodeId,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    pub anti_affinity_group: Option<String>,
    pub live: bool,
    /// Latest progress of a live migration.
    pub progress: MigrationProgress,
}

#[derive(Default)]
struct Inner {
    by_vm: HashMap<VmId, InFlight>,
    max_per_host: usize,
    /// Migrations a previous leader left unsettled: their records are not written from
    /// heartbeats until the agents' reports settle them.
    orphans: std::collections::HashSet<VmId>,
    /// Migrations a user asked to cancel: their failure is reported as the cancel, not as
    /// whatever the host said when it aborted.
    cancelled: std::collections::HashSet<VmId>,
}

/// The table of migrations in flight. Cheap to clone.
#[derive(Clone)]
pub struct Migrations {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Migrations {
    fn default() -> Self {
        Migrations {
            inner: Arc::new(Mutex::new(Inner {
                by_vm: HashMap::new(),
                max_per_host: DEFAULT_MAX_PER_HOST,
                orphans: Default::default(),
                cancelled: Default::default(),
            })),
        }
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Holds a migration's entry; dropping it releases the target's resources and the slots.
pub struct Reservation {
    table: Migrations,
    vm: VmId,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut g = lock(&self.table.inner);
        g.by_vm.remove(&self.vm);
        g.cancelled.remove(&self.vm);
    }
}

impl Reservation {
    pub fn set_progress(&self, p: MigrationProgress) {
        if let Some(f) = lock(&self.table.inner).by_vm.get_mut(&self.vm) {
            f.progress = p;
        }
    }

    /// Whether a cancel of this migration was asked for.
    pub fn cancelled(&self) -> bool {
        lock(&self.table.inner).cancelled.contains(&self.vm)
    }

    pub fn set_live(&self, live: bool) {
        if let Some(f) = lock(&self.table.inner).by_vm.get_mut(&self.vm) {
            f.live = live;
        }
    }
}

impl Migrations {
    /// Sets the per-host limit (at least 1).
    pub fn set_max_per_host(&self, n: usize) {
        lock(&self.inner).max_per_host = n.max(1);
    }

    /// Marks (or clears) a migration a previous leader left unsettled.
    pub fn set_orphan(&self, vm: VmId, orphan: bool) {
        let mut g = lock(&self.inner);
        if orphan {
            g.orphans.insert(vm);
        } else {
            g.orphans.remove(&vm);
        }
    }

    /// Records whether the migration of `vm` in flight is being cancelled (nothing when none
    /// is in flight).
    pub fn set_cancelled(&self, vm: VmId, cancelled: bool) {
        let mut g = lock(&self.inner);
        if !cancelled {
            g.cancelled.remove(&vm);
        } else if g.by_vm.contains_key(&vm) {
            g.cancelled.insert(vm);
        }
    }

    pub fn is_orphan(&self, vm: VmId) -> bool {
        lock(&self.inner).orphans.contains(&vm)
    }

    pub fn max_per_host(&self) -> usize {
        lock(&self.inner).max_per_host
    }

    /// Migrations a host takes part in now (in or out).
    pub fn count_on(&self, node: NodeId) -> usize {
        lock(&self.inner)
            .by_vm
            .values()
            .filter(|f| f.source == node || f.target == node)
            .count()
    }

    /// Enters a migration; refused when the VM already migrates or a host is at its limit.
    /// `names` turns a node id into a name for the message.
    pub fn reserve(&self, f: InFlight, names: impl Fn(NodeId) -> String) -> Result<Reservation> {
        let mut g = lock(&self.inner);
        if g.by_vm.contains_key(&f.vm) {
            return Err(Error::precondition(format!("VM {} is already being migrated", f.vm)));
        }
        let max = g.max_per_host;
        for n in [f.source, f.target] {
            let busy = g.by_vm.values().filter(|x| x.source == n || x.target == n).count();
            if busy >= max {
                return Err(Error::unavailable(format!(
                    "node {} already takes part in {busy} migration(s), the most it may at once; retry when one ends",
                    names(n)
                ))
                .with_retry_after(10));
            }
        }
        let vm = f.vm;
        g.by_vm.insert(vm, f);
        Ok(Reservation {
            table: self.clone(),
            vm,
        })
    }

    pub fn get(&self, vm: VmId) -> Option<InFlight> {
        lock(&self.inner).by_vm.get(&vm).cloned()
    }

    pub fn all(&self) -> Vec<InFlight> {
        lock(&self.inner).by_vm.values().cloned().collect()
    }

    /// Adds what in-flight migrations hold on their targets to per-node totals (`skip`: a VM
    /// being re-placed itself).
    pub fn add_to(&self, allocation: &mut Vec<NodeAllocation>, skip: Option<VmId>) {
        for f in lock(&self.inner).by_vm.values().filter(|f| Some(f.vm) != skip) {
            match allocation.iter_mut().find(|a| a.node == f.target) {
                Some(a) => {
                    a.cpu_cores += u64::from(f.cpu_cores);
                    a.memory_mib += f.memory_mib;
                }
                None => allocation.push(NodeAllocation {
                    node: f.target,
                    cpu_cores: u64::from(f.cpu_cores),
                    memory_mib: f.memory_mib,
                }),
            }
        }
    }

    /// Targets of in-flight migrations of VMs in anti-affinity `group`.
    pub fn group_targets(&self, group: &str, skip: Option<VmId>) -> Vec<NodeId> {
        lock(&self.inner)
            .by_vm
            .values()
            .filter(|f| Some(f.vm) != skip && f.anti_affinity_group.as_deref() == Some(group))
            .map(|f| f.target)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(source: NodeId, target: NodeId) -> InFlight {
        InFlight {
            vm: VmId::new(),
            source,
            target,
            cpu_cores: 2,
            memory_mib: 1024,
            anti_affinity_group: Some("db".into()),
            live: true,
            progress: MigrationProgress::default(),
        }
    }

    #[test]
    fn a_cancel_mark_lives_only_as_long_as_its_migration() {
        let t = Migrations::default();
        let f = flight(NodeId::new(), NodeId::new());
        let vm = f.vm;
        // Nothing in flight: nothing to mark.
        t.set_cancelled(vm, true);
        let r = t.reserve(f.clone(), |n| n.to_string()).unwrap();
        assert!(!r.cancelled());
        t.set_cancelled(vm, true);
        assert!(r.cancelled());
        // An abort the host refused takes the mark back.
        t.set_cancelled(vm, false);
        assert!(!r.cancelled());
        t.set_cancelled(vm, true);
        drop(r);
        // The next migration of the same VM starts unmarked.
        let r = t.reserve(f, |n| n.to_string()).unwrap();
        assert!(!r.cancelled());
    }

    #[test]
    fn a_reservation_holds_the_target_until_dropped() {
        let t = Migrations::default();
        let (a, b) = (NodeId::new(), NodeId::new());
        let f = flight(a, b);
        let vm = f.vm;
        let r = t.reserve(f, |n| n.to_string()).unwrap();
        let mut alloc = vec![NodeAllocation {
            node: b,
            cpu_cores: 1,
            memory_mib: 10,
        }];
        t.add_to(&mut alloc, None);
        assert_eq!((alloc[0].cpu_cores, alloc[0].memory_mib), (3, 1034));
        let mut skipped = vec![];
        t.add_to(&mut skipped, Some(vm));
        assert!(skipped.is_empty(), "the migrating VM itself is not counted twice");
        assert_eq!(t.group_targets("db", None), vec![b]);
        drop(r);
        let mut alloc = vec![];
        t.add_to(&mut alloc, None);
        assert!(alloc.is_empty());
        assert_eq!(t.count_on(b), 0);
    }

    #[test]
    fn hosts_take_part_in_at_most_the_limit_in_and_out() {
        let t = Migrations::default();
        t.set_max_per_host(2);
        let (a, b, c, d) = (NodeId::new(), NodeId::new(), NodeId::new(), NodeId::new());
        let _a_to_b = t.reserve(flight(a, b), |n| n.to_string()).unwrap();
        let c_to_a = t.reserve(flight(c, a), |n| n.to_string()).unwrap();
        // a has one out and one in: a third either way is refused.
        let e = t.reserve(flight(a, d), |_| "a".into()).err().unwrap();
        assert_eq!(e.kind, crate::ErrorKind::Unavailable);
        assert!(e.message.contains("node a"), "{}", e.message);
        assert!(t.reserve(flight(d, a), |n| n.to_string()).is_err());
        // Others are free.
        let _d_to_c = t.reserve(flight(d, c), |n| n.to_string()).unwrap();
        assert_eq!(t.count_on(c), 2);
        drop(c_to_a);
        assert!(t.reserve(flight(d, a), |n| n.to_string()).is_ok());
    }
}

//! An in-process copy of VM records, read before the database. Only sound when this
//! process is the database's only writer (SQLite, which lqx-server locks for itself), so it
//! is off until [`Store::cache_vm_records`] turns it on.
//!
//! Consistency rests on one counter, `generation`, bumped by every finished VM write:
//! - a read that missed fills the cache only if no write finished since the read began
//!   (otherwise it may hold a value older than the database's);
//! - a write puts its new record in only if no other write finished since it began (else
//!   it removes the entry: another write of the same VM may have committed a newer one);
//! - a failed or uncertain write, and a delete, remove the entry.
//!
//! So every entry equals the latest committed record, except in the moment between a
//! write's commit and the write returning, when readers may still see the previous one.

use crate::model::{Vm, VmId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Records kept at most; past this the cache starts over (forgetting is always safe).
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Default)]
pub(crate) struct VmCache {
    enabled: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    records: HashMap<VmId, Vm>,
}

impl Inner {
    fn keep(&mut self, vm: &Vm) {
        if self.records.len() >= MAX_ENTRIES {
            self.records.clear();
        }
        self.records.insert(vm.id, vm.clone());
    }
}

/// Taken before a database read or write; says which writes finished since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl VmCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    pub fn get(&self, id: VmId) -> Option<Vm> {
        if !self.enabled() {
            return None;
        }
        self.lock().records.get(&id).cloned()
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// After a read that missed: keeps `vm` if no write finished since `t`.
    pub fn fill(&self, t: Ticket, vm: &Vm) {
        if !self.enabled() {
            return;
        }
        let mut c = self.lock();
        if c.generation == t.0 {
            c.keep(vm);
        }
    }

    /// After a committed write of `vm` that began at `t`.
    pub fn wrote(&self, t: Ticket, vm: &Vm) {
        let mut c = self.lock();
        c.generation += 1;
        if self.enabled() && c.generation == t.0 + 1 {
            c.keep(vm);
        } else {
            c.records.remove(&vm.id);
        }
    }

    /// After a delete, or a write that failed or may have committed.
    pub fn forget(&self, id: VmId) {
        let mut c = self.lock();
        c.generation += 1;
        c.records.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HaPolicy, PlacementPolicy, ProjectId, VmSpec, VmState, VmStatus};

    fn vm(version: u64) -> Vm {
        let now = chrono::Utc::now();
        Vm {
            id: VmId(uuid::Uuid::from_u128(7)),
            name: "web".into(),
            project_id: ProjectId::DEFAULT,
            description: String::new(),
            labels: Default::default(),
            spec: VmSpec {
                cpu_cores: 1,
                memory_mib: 64,
                disks: vec![],
                nics: vec![],
                ha: HaPolicy::default(),
                placement: PlacementPolicy::default(),
            },
            desired_state: VmState::Stopped,
            status: VmStatus::default(),
            resource_version: version,
            created_at: now,
            updated_at: now,
        }
    }

    fn cached() -> VmCache {
        let c = VmCache::default();
        c.enable();
        c
    }

    #[test]
    fn off_until_enabled() {
        let c = VmCache::default();
        c.fill(c.ticket(), &vm(1));
        assert!(c.get(vm(1).id).is_none());
        c.enable();
        c.fill(c.ticket(), &vm(1));
        assert_eq!(c.get(vm(1).id).unwrap().resource_version, 1);
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let c = cached();
        let read = c.ticket(); // a read begins and sees version 1 in the database...
        let write = c.ticket();
        c.wrote(write, &vm(2)); // ...while a write of version 2 finishes
        c.fill(read, &vm(1));
        assert_eq!(c.get(vm(1).id).unwrap().resource_version, 2);
    }

    #[test]
    fn overlapping_writes_leave_no_entry_rather_than_an_old_one() {
        let c = cached();
        let (w2, w3) = (c.ticket(), c.ticket());
        // Version 3 commits after 2, but its writer records first.
        c.wrote(w3, &vm(3));
        c.wrote(w2, &vm(2));
        assert!(c.get(vm(1).id).is_none(), "the older write must not win");
    }

    #[test]
    fn a_delete_is_not_undone_by_a_late_read() {
        let c = cached();
        c.fill(c.ticket(), &vm(1));
        let read = c.ticket();
        c.forget(vm(1).id);
        c.fill(read, &vm(1));
        assert!(c.get(vm(1).id).is_none());
    }
}

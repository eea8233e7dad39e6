//! What the planner remembers between runs: recent migrations (no ping-pong) and how many
//! consecutive runs each non-mandatory condition has been seen (the hold count).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{NodeId, VmId};

/// One performed migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRecord {
    pub vm: VmId,
    pub source: NodeId,
    pub target: NodeId,
    pub at: DateTime<Utc>,
}

/// Migrations performed recently (by DRS or by hand), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationHistory {
    pub records: Vec<MigrationRecord>,
}

impl MigrationHistory {
    pub fn record(&mut self, vm: VmId, source: NodeId, target: NodeId, at: DateTime<Utc>) {
        self.records.push(MigrationRecord { vm, source, target, at });
    }

    /// Whether `vm` was migrated within `window` before `now`.
    pub fn moved_recently(&self, vm: VmId, now: DateTime<Utc>, window: std::time::Duration) -> bool {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        self.records
            .iter()
            .rev()
            .any(|r| r.vm == vm && now.signed_duration_since(r.at) < window)
    }

    /// The VMs migrated within `window` before `now` (one pass: the planner asks for every
    /// VM, and a busy hour at 1,000 hosts holds some 10,000 records).
    pub fn moved_within(&self, now: DateTime<Utc>, window: std::time::Duration) -> HashSet<VmId> {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        self.records
            .iter()
            .filter(|r| now.signed_duration_since(r.at) < window)
            .map(|r| r.vm)
            .collect()
    }

    /// Drops records older than `keep` before `now`.
    pub fn prune(&mut self, now: DateTime<Utc>, keep: std::time::Duration) {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        self.records.retain(|r| now.signed_duration_since(r.at) < keep);
    }
}

/// Hysteresis state the engine keeps between runs and feeds back into the next `plan`
/// (each plan returns the next one in `DrsPlan::state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrsState {
    /// Consecutive runs in which each node was above a threshold.
    pub hot_streak: BTreeMap<NodeId, u32>,
    /// Consecutive runs in which the imbalance was above the level's tolerance.
    pub imbalance_streak: u32,
    /// Balancing started and has not yet reached its stopping point (`margin` below the
    /// tolerance): the next run goes on even below the tolerance.
    #[serde(default)]
    pub balancing: bool,
    /// A relief made over several rounds: the steps still to come.
    #[serde(default)]
    pub staged: Option<StagedRelief>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn recent_moves_expire_and_prune() {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let (vm, a, b) = (VmId::new(), NodeId::new(), NodeId::new());
        let mut h = MigrationHistory::default();
        h.record(vm, a, b, t0);
        let hour = Duration::from_secs(3600);
        assert!(h.moved_recently(vm, t0 + chrono::Duration::minutes(59), hour));
        assert!(!h.moved_recently(vm, t0 + chrono::Duration::minutes(60), hour));
        assert!(!h.moved_recently(VmId::new(), t0, hour));
        assert!(h.moved_within(t0 + chrono::Duration::minutes(59), hour).contains(&vm));
        assert!(h.moved_within(t0 + chrono::Duration::minutes(60), hour).is_empty());
        h.prune(t0 + chrono::Duration::hours(2), hour);
        assert!(h.records.is_empty());
    }
}

/// The rest of a relief planned over several rounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StagedRelief {
    /// The hot nodes the plan relieves.
    pub relieves: Vec<NodeId>,
    /// Steps not made yet, in order.
    pub steps: Vec<StagedStep>,
    /// Steps of the whole plan (for "step k of n").
    pub total: usize,
    /// Per relieved node, its fuller resource (a fraction) when the plan started, for plans
    /// that may load it again before it sheds (trades through the hot node); empty: none may.
    #[serde(default)]
    pub ceilings: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedStep {
    pub vm: VmId,
    pub source: NodeId,
    pub target: NodeId,
}

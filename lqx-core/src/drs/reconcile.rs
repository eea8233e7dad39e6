//! The plan against the open recommendations: which open migrate recommendations a new plan
//! keeps (refreshed), which it supersedes or no longer makes (expired), and which moves
//! become new recommendations. Pure, so the rule is tested without a database; the engine
//! loads the open recommendations, calls [`reconcile`] and writes what it returns.
//!
//! The rule (one open recommendation per VM):
//! - a VM with one APPLYING, or APPROVED for another target (an operator's decision), keeps
//!   it and the plan's move for it is skipped;
//! - an open one for the same move is kept, refreshed with the plan's priority, reason and
//!   impact;
//! - a PENDING one for a different move is expired as superseded, and the move recommended;
//! - a PENDING one whose VM the plan does not move any more is expired.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::PlannedMove;
use crate::model::{DrsRecommendation, RecommendationId, RecommendationStatus as St, RecommendationType, VmId};

/// Why an open recommendation is expired.
pub const SUPERSEDED: &str = "superseded by a newer recommendation for the VM";
pub const NO_LONGER_RECOMMENDED: &str = "no longer recommended: the cluster changed";

/// What the plan does to one of its moves, in plan order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The open recommendation for this move, and its refreshed copy (equal when nothing
    /// changed: nothing to write).
    Keep {
        open: DrsRecommendation,
        fresh: DrsRecommendation,
    },
    /// A new PENDING recommendation, after expiring the one it supersedes.
    Create {
        new: DrsRecommendation,
        supersedes: Option<DrsRecommendation>,
    },
}

/// The outcome of [`reconcile`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciled {
    /// One per planned move not skipped, in plan order.
    pub steps: Vec<Step>,
    /// PENDING recommendations the plan no longer makes, by id.
    pub expire: Vec<DrsRecommendation>,
}

/// Reconciles `moves` with the `open` recommendations (PENDING, APPROVED, APPLYING; other
/// types are ignored). New recommendations get ids from `new_id` and are made at `now`.
pub fn reconcile(
    moves: &[PlannedMove],
    open: impl IntoIterator<Item = DrsRecommendation>,
    now: DateTime<Utc>,
    mut new_id: impl FnMut() -> RecommendationId,
) -> Reconciled {
    let mut by_vm: BTreeMap<VmId, DrsRecommendation> = BTreeMap::new();
    for r in open
        .into_iter()
        .filter(|r| r.recommendation_type == RecommendationType::Migrate)
        .filter(|r| matches!(r.status, St::Pending | St::Approved | St::Applying))
    {
        // One open per VM is the invariant; should an older duplicate exist, the newest
        // (the later one given) wins.
        by_vm.insert(r.vm_id, r);
    }
    let mut out = Reconciled::default();
    let mut matched: BTreeSet<RecommendationId> = BTreeSet::new();
    for mv in moves {
        match by_vm.get(&mv.vm) {
            Some(r) if r.status == St::Applying || (r.status == St::Approved && r.target_node_id != mv.target) => {
                matched.insert(r.id);
            }
            Some(r) if r.source_node_id == mv.source && r.target_node_id == mv.target => {
                matched.insert(r.id);
                let mut fresh = r.clone();
                fresh.priority = mv.priority;
                fresh.reason = mv.reason.clone();
                fresh.impact_cpu = mv.impact_cpu;
                fresh.impact_memory = mv.impact_memory;
                fresh.estimated_duration_secs = mv.estimated_duration_secs;
                fresh.mandatory = mv.mandatory;
                out.steps.push(Step::Keep { open: r.clone(), fresh });
            }
            other => {
                if let Some(r) = other {
                    matched.insert(r.id);
                }
                out.steps.push(Step::Create {
                    new: mv.to_recommendation(new_id(), now),
                    supersedes: other.cloned(),
                });
            }
        }
    }
    let mut expire: Vec<DrsRecommendation> = by_vm
        .into_values()
        .filter(|r| r.status == St::Pending && !matched.contains(&r.id))
        .collect();
    expire.sort_by_key(|r| r.id);
    out.expire = expire;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::MoveKind;
    use crate::model::{NodeId, Priority};

    fn mv(vm: VmId, source: NodeId, target: NodeId) -> PlannedMove {
        PlannedMove {
            vm,
            vm_name: "vm".into(),
            source,
            source_name: "src".into(),
            target,
            target_name: "dst".into(),
            kind: MoveKind::Relieve,
            priority: Priority::High,
            mandatory: false,
            reason: "node hot".into(),
            impact_cpu: 12.5,
            impact_memory: 3.0,
            memory_mib: 1024,
            estimated_duration_secs: 9,
        }
    }

    fn open(m: &PlannedMove, status: St) -> DrsRecommendation {
        let mut r = m.to_recommendation(RecommendationId::new(), Utc::now());
        r.status = status;
        r.priority = Priority::Low;
        r.reason = "older reason".into();
        r
    }

    fn ids() -> impl FnMut() -> RecommendationId {
        RecommendationId::new
    }

    #[test]
    fn the_same_move_keeps_its_recommendation_refreshed() {
        let (vm, a, b) = (VmId::new(), NodeId::new(), NodeId::new());
        let m = mv(vm, a, b);
        for status in [St::Pending, St::Approved] {
            let r = open(&m, status);
            let out = reconcile(std::slice::from_ref(&m), [r.clone()], Utc::now(), ids());
            let [Step::Keep { open, fresh }] = out.steps.as_slice() else {
                panic!("{out:?}");
            };
            assert_eq!(open, &r);
            assert_eq!((fresh.id, fresh.status), (r.id, status));
            assert_eq!(fresh.priority, Priority::High);
            assert_eq!(fresh.reason, "node hot");
            assert_eq!(fresh.impact_cpu, 12.5);
            assert!(out.expire.is_empty());
        }
    }

    #[test]
    fn a_different_move_supersedes_a_pending_one() {
        let (vm, a, b, c) = (VmId::new(), NodeId::new(), NodeId::new(), NodeId::new());
        let old = open(&mv(vm, a, b), St::Pending);
        let now = Utc::now();
        let out = reconcile(&[mv(vm, a, c)], [old.clone()], now, ids());
        let [Step::Create { new, supersedes }] = out.steps.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(supersedes.as_ref(), Some(&old));
        assert_ne!(new.id, old.id);
        assert_eq!((new.target_node_id, new.status, new.created_at), (c, St::Pending, now));
        // Superseded is not also expired as "no longer recommended".
        assert!(out.expire.is_empty());
    }

    #[test]
    fn applying_and_an_operators_approval_for_elsewhere_skip_the_move() {
        let (vm, a, b, c) = (VmId::new(), NodeId::new(), NodeId::new(), NodeId::new());
        for status in [St::Applying, St::Approved] {
            let r = open(&mv(vm, a, b), status);
            let out = reconcile(&[mv(vm, a, c)], [r], Utc::now(), ids());
            assert_eq!(out, Reconciled::default(), "{status:?}");
        }
        // APPLYING for the very same move is left alone too (not refreshed).
        let m = mv(vm, a, b);
        let out = reconcile(std::slice::from_ref(&m), [open(&m, St::Applying)], Utc::now(), ids());
        assert_eq!(out, Reconciled::default());
    }

    #[test]
    fn only_pending_recommendations_the_plan_dropped_expire() {
        let (a, b) = (NodeId::new(), NodeId::new());
        let pending = open(&mv(VmId::new(), a, b), St::Pending);
        let approved = open(&mv(VmId::new(), a, b), St::Approved);
        let applying = open(&mv(VmId::new(), a, b), St::Applying);
        let mut power = open(&mv(VmId::new(), a, b), St::Pending);
        power.recommendation_type = RecommendationType::PowerOff;
        let fresh = mv(VmId::new(), b, a);
        let out = reconcile(
            std::slice::from_ref(&fresh),
            [pending.clone(), approved, applying, power],
            Utc::now(),
            ids(),
        );
        assert_eq!(out.expire, vec![pending]);
        assert!(matches!(&out.steps[..], [Step::Create { supersedes: None, new }] if new.vm_id == fresh.vm));
    }

    #[test]
    fn steps_follow_plan_order_and_an_empty_plan_expires_every_pending() {
        let (a, b) = (NodeId::new(), NodeId::new());
        let moves: Vec<_> = (0..3).map(|_| mv(VmId::new(), a, b)).collect();
        let kept = open(&moves[1], St::Pending);
        let out = reconcile(&moves, [kept.clone()], Utc::now(), ids());
        let vms: Vec<VmId> = out
            .steps
            .iter()
            .map(|s| match s {
                Step::Keep { fresh, .. } => fresh.vm_id,
                Step::Create { new, .. } => new.vm_id,
            })
            .collect();
        assert_eq!(vms, moves.iter().map(|m| m.vm).collect::<Vec<_>>());
        assert!(matches!(&out.steps[1], Step::Keep { open, .. } if open.id == kept.id));
        let out = reconcile(&[], [kept.clone()], Utc::now(), ids());
        assert_eq!(out.expire, vec![kept]);
        assert!(out.steps.is_empty());
    }
}

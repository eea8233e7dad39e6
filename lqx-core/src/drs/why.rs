//! Why a DRS run recommends nothing: the plan's own bookkeeping read back in words, so an
//! operator running `lqx drs run` on a hot cluster sees "held back" rather than silence.

use super::DrsPlan;
use crate::model::{DrsConfig, NodeId};

/// The reason a plan has no move; `None` when it has moves.
pub fn why_no_moves(plan: &DrsPlan, config: &DrsConfig, name: impl Fn(NodeId) -> String) -> Option<String> {
    if !plan.moves.is_empty() {
        return None;
    }
    let hold = config.hysteresis_hold_count.max(1);
    let level = config.migration_threshold.clamp(1, 5);
    let mut why = Vec::new();
    let held: Vec<String> = plan
        .state
        .hot_streak
        .iter()
        .filter(|(_, s)| **s < hold)
        .map(|(id, s)| format!("{} ({s} of {hold})", name(*id)))
        .collect();
    if !held.is_empty() {
        why.push(format!(
            "held back by hysteresis: {} above a threshold, not yet for {hold} runs in a row",
            held.join(", ")
        ));
    }
    let tolerance = super::planner::tolerance(level);
    if let Some(t) = tolerance
        && plan.state.imbalance_streak > 0
        && plan.state.imbalance_streak < hold
    {
        why.push(format!(
            "held back by hysteresis: imbalance {:.1} above {t} for {} of {hold} runs",
            plan.before.imbalance, plan.state.imbalance_streak
        ));
    }
    if !plan.unrelieved.is_empty() {
        let names: Vec<&str> = plan.unrelieved.iter().map(|n| n.name.as_str()).collect();
        why.push(format!("{} hot but no move relieves it", names.join(", ")));
    }
    if why.is_empty() {
        let hot = plan.state.hot_streak.keys().map(|id| name(*id)).collect::<Vec<_>>();
        if hot.is_empty() {
            why.push(format!(
                "nothing over threshold: no node above CPU {} % or memory {} %",
                config.threshold_cpu, config.threshold_memory
            ));
        } else {
            why.push(format!("no worthwhile move for {}", hot.join(", ")));
        }
        match tolerance {
            Some(t) if plan.before.imbalance <= t => why.push(format!(
                "imbalance {:.1} within the {t} points migration threshold {level} tolerates",
                plan.before.imbalance
            )),
            Some(_) => why.push(format!(
                "imbalance {:.1}: no move improves it enough",
                plan.before.imbalance
            )),
            None => why.push(format!("migration threshold {level} does not balance")),
        }
    }
    Some(format!("No move recommended: {}", why.join("; ")))
}

//! Relief over several rounds. When the only relief of a hot node needs more migrations on
//! some host than one round allows (room made on a full node by moving several VMs off it
//! first), it is planned without the per-host budget (the exact search on small clusters,
//! else room made with several VMs, `room.rs`); this round makes the longest start of it
//! that fits the budget, and the rest is carried in the state to the next rounds. One such
//! relief is carried at a time (carrying several side by side was tried: it undid the
//! 96-host gains and took the anti-correlated 1,000-host round 1 to 246 ms). Carrying it
//! (rather than searching again) matters: the next round's search
//! may not find the same continuation, and the first steps, once the no-ping-pong window
//! has passed, would be undone by balancing and made again for ever.
//!
//! Carried steps are checked again each round against the cluster as it is: the VM still on
//! its source and movable, the target accepting it within allocation and placement policy,
//! and at the end of the round every node a step loaded under its line (or, a hot node
//! that both sheds and takes VMs, cooler than it was). A step that no longer holds drops
//! the rest of the plan, as does a round in which no node it relieves is above its line
//! any more. The nodes of the steps still to come take no other moves meanwhile, so the
//! room made is not taken by something else.
//!
//! Small clusters, a hot node this round does not even start on: the relief greedy and
//! room relief find with no per-host budget (`unbudgeted_relief`) is carried instead when
//! it leaves less heat, and only when a dry run shows it can be made round after round to
//! its end (a plan dropped half way leaves its first steps for balancing to undo, a cycle
//! the settling property test found). Such a plan may trade through the hot node: light VMs
//! come to it to make room elsewhere before its heavy VM leaves, so at a round's end it
//! may be fuller than at the round's start, but never fuller than when the plan began
//! (`ceilings`).

use super::exact::Step;
use super::{CPU, EPS, MEM, MoveKind, Planner};
use crate::drs::history::{StagedRelief, StagedStep};
use crate::model::NodeId;

impl Planner<'_> {
    /// Makes this round's steps of a carried relief; returns what is left to carry (None
    /// when it is done or dropped).
    pub(super) fn continue_staged(&mut self, carried: &StagedRelief) -> Option<StagedRelief> {
        let index = |id: &NodeId| self.occ.index.get(id).copied();
        let relieves: Vec<usize> = carried.relieves.iter().filter_map(index).collect();
        if relieves.len() != carried.relieves.len() || self.residual(&relieves) <= EPS {
            return None;
        }
        let mut steps = Vec::with_capacity(carried.steps.len());
        for s in &carried.steps {
            let v = self.snap.vms.iter().position(|v| v.id == s.vm)?;
            steps.push((v, index(&s.source)?, index(&s.target)?));
        }
        let done = carried.total.saturating_sub(steps.len());
        let ceilings = &carried.ceilings;
        let q = self.staged_start(&relieves, &steps, done, carried.total, ceilings)?;
        *self = q;
        let rest = &steps[self.moves_made_of(&steps)..];
        self.carry(&relieves, rest, carried.total, ceilings.clone())
    }

    /// Starts a relief planned without the per-host budget (`steps`): makes its longest
    /// start that fits this round and returns the rest to carry. With `ceilings`, a hot node
    /// it relieves may take VMs before it sheds, up to how full it is now.
    pub(super) fn start_staged(&mut self, hot: &[usize], steps: &[Step], ceilings: bool) -> Option<StagedRelief> {
        let ceilings: Vec<f64> = if ceilings {
            hot.iter().map(|&h| self.fuller(h)).collect()
        } else {
            Vec::new()
        };
        let q = self.staged_start(hot, steps, 0, steps.len(), &ceilings)?;
        *self = q;
        let made = self.moves_made_of(steps);
        self.carry(hot, &steps[made..], steps.len(), ceilings)
    }

    /// The relief of `hot` that greedy and room relief find with no per-host budget, as
    /// steps in order; None when it would leave at least `than` heat (see `residual`).
    pub(super) fn unbudgeted_relief(&self, hot: &[usize], than: f64) -> Option<Vec<Step>> {
        let mut u = self.clone();
        u.budget = u32::MAX / 2;
        // Nodes out of budget are targets again: no earlier relief target search holds.
        u.departures += 1;
        for i in 0..u.nodes.len() {
            u.index(i);
        }
        let start = u.moves.len();
        u.relieve_best(hot);
        let still: Vec<usize> = hot.iter().copied().filter(|&h| u.residual(&[h]) > EPS).collect();
        if !still.is_empty()
            && let Some(steps) = u.room_relief(&still)
        {
            u.make_steps(&still, &steps, 0, steps.len());
        }
        if u.residual(hot) >= than - EPS {
            return None;
        }
        let index = |id: &NodeId| self.occ.index[id];
        let steps: Vec<Step> = u.moves[start..]
            .iter()
            .filter_map(|m| {
                let v = self.snap.vms.iter().position(|v| v.id == m.vm)?;
                Some((v, index(&m.source), index(&m.target)))
            })
            .collect();
        let ceilings: Vec<f64> = hot.iter().map(|&h| self.fuller(h)).collect();
        self.completes(hot, &steps, &ceilings).then_some(steps)
    }

    /// Whether `steps` can be made round after round, each round's start passing the checks
    /// of `staged_start` on the cluster as the earlier rounds leave it. A plan dropped half
    /// way leaves its first steps for balancing to undo once the no-ping-pong window has
    /// passed, and then starts again: a cycle.
    fn completes(&self, hot: &[usize], steps: &[Step], ceilings: &[f64]) -> bool {
        let mut sim = self.clone();
        let mut done = 0;
        while done < steps.len() {
            let Some(q) = sim.staged_start(hot, &steps[done..], done, steps.len(), ceilings) else {
                return false;
            };
            let made = q.moves_made_of(&steps[done..]);
            if made == 0 {
                return false;
            }
            sim = q;
            sim.used.fill(0);
            for i in 0..sim.nodes.len() {
                sim.index(i);
            }
            done += made;
        }
        true
    }

    fn fuller(&self, i: usize) -> f64 {
        self.nodes[i].util(CPU).max(self.nodes[i].util(MEM))
    }

    /// How many of `steps` (from the first) this plan has made.
    fn moves_made_of(&self, steps: &[Step]) -> usize {
        steps
            .iter()
            .take_while(|&&(v, _, t)| self.moved[v] && self.vm_node[v] == Some(t))
            .count()
    }

    /// What is left after this round: the steps and the hot nodes, their nodes kept free of
    /// other moves this round. None when nothing is left.
    fn carry(&mut self, hot: &[usize], rest: &[Step], total: usize, ceilings: Vec<f64>) -> Option<StagedRelief> {
        if rest.is_empty() {
            return None;
        }
        let max = self.budget;
        for &(_, s, t) in rest {
            for i in [s, t] {
                self.used[i] = self.used[i].max(max);
                self.index(i);
            }
        }
        Some(StagedRelief {
            relieves: hot.iter().map(|&h| self.snap.nodes[h].id).collect(),
            steps: rest
                .iter()
                .map(|&(v, s, t)| StagedStep {
                    vm: self.snap.vms[v].id,
                    source: self.snap.nodes[s].id,
                    target: self.snap.nodes[t].id,
                })
                .collect(),
            total,
            ceilings,
        })
    }

    /// This plan with the longest start of `steps` that is valid now, fits the per-host
    /// budget and leaves every node it loads under its line (or, shedding too, cooler).
    /// `done` steps of `total` were made in earlier rounds. None when not even the first
    /// step can be made.
    fn staged_start(&self, hot: &[usize], steps: &[Step], done: usize, total: usize, ceilings: &[f64]) -> Option<Self> {
        let mut slots: Vec<u32> = (0..self.nodes.len()).map(|i| self.slots(i)).collect();
        let mut occ = self.occ.clone();
        let mut fit = 0;
        for &(v, s, t) in steps {
            let vm = &self.snap.vms[v];
            if self.vm_node[v] != Some(s) || !self.movable(v) || slots[s] == 0 || slots[t] == 0 {
                break;
            }
            // The target's phase, placement policy, anti-affinity and allocation.
            let group = vm.placement.anti_affinity_group.as_deref();
            occ.remove(s, vm.cpu_cores, vm.memory_mib, group);
            if occ.check(self.snap, t, &vm.req()).is_some() {
                break;
            }
            occ.add(t, vm.cpu_cores, vm.memory_mib, group);
            slots[s] -= 1;
            slots[t] -= 1;
            fit += 1;
        }
        (1..=fit).rev().find_map(|take| {
            let mut q = self.clone();
            q.make_steps(hot, &steps[..take], done, total);
            let cool = steps[..take].iter().all(|&(_, _, t)| {
                let under = [CPU, MEM].into_iter().all(|r| q.nodes[t].util(r) <= q.line[r] + EPS);
                let sheds = steps[..take].iter().any(|&(_, s, _)| s == t);
                // A relieved node taking VMs back before it sheds: no fuller than at the start.
                let ceiling = hot.iter().position(|&h| h == t).and_then(|k| ceilings.get(k));
                under
                    || (sheds && q.fuller(t) < self.fuller(t) - EPS)
                    || ceiling.is_some_and(|&c| q.fuller(t) < c - EPS)
            });
            cool.then_some(q)
        })
    }

    /// Makes relief `steps` (exact search order) with their reasons; `done` of `total` steps
    /// were made before (a plan carried over rounds says which step each is).
    pub(super) fn make_steps(&mut self, hot: &[usize], steps: &[Step], done: usize, total: usize) {
        let reasons: Vec<String> = hot.iter().map(|&h| self.hot_reason(h)).collect();
        let names: Vec<&str> = hot.iter().map(|&h| self.snap.nodes[h].name.as_str()).collect();
        let room = format!("making room to relieve {}", names.join(", "));
        for (k, &(v, s, t)) in steps.iter().enumerate() {
            let mut why = match hot.iter().position(|&h| h == s) {
                Some(x) => reasons[x].clone(),
                None => room.clone(),
            };
            if total > steps.len() {
                why.push_str(&format!(" (step {} of {total}, over several rounds)", done + k + 1));
            }
            self.do_move(v, s, t, MoveKind::Relieve, false, why);
        }
    }
}

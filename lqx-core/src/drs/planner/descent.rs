//! Levels 3 and 4: cost-gated peak moves. Relief stops at the relief line and squared-sum
//! balancing at the imbalance tolerance, which can leave the busiest host 20-30 points above
//! where single moves could take it. So, while the busiest host (its fuller resource) is
//! more than `DESCENT_STOP` points above the cluster mean of that resource, the move off it
//! that lowers it most per unit of cost is made, as long as it pays: the drop of the pair's
//! fuller utilization (source before, larger of source and target after), in points, times
//! the level's weight must reach the move's cost in GiB-equivalents (`move_cost`: memory to
//! copy, dirty rate, queueing behind the round's other migrations). Each move lowers the
//! busiest host and leaves its target below where that host was, so the sorted vector of
//! fuller utilizations falls lexicographically: the moves cannot cycle.
//!
//! When no single move pays (typically the busiest host is full in one resource and every
//! node with room for its VMs would end above it in the other), a swap may: the busiest
//! host's VM for one of another node, when the trade lowers both nodes' fuller use (both
//! end below the busiest host's level, so the same order falls) and the drop pays for both
//! moves; each step keeps allocation and the relief line (`swap_order`).
//!
//! Relief fills its targets up to the relief line with VMs the no-ping-pong window then
//! holds, so such a target can end as the busiest host with every VM that would lower it
//! held. When neither a move nor a swap lowers the busiest host, a VM of it moved within the
//! window may move on, by the same peak-move rule, to a node it has not been on within the
//! window: it never goes back, and the sorted fuller utilizations still fall, so nothing
//! cycles.

use super::swap::{Swap, swap_fits_end};
use super::{CPU, EPS, MEM, MoveKind, Planner};

/// Points above the mean (of the busiest host's fuller resource) at which peak moves stop.
pub(super) const DESCENT_STOP: f64 = 2.0;
/// Least drop (points) of the busiest host a peak move must bring.
pub(super) const DESCENT_MIN_DROP: f64 = 0.5;
/// Least drop when the descent goes on from the previous round: what is left then is what
/// the per-host budget cut off, and sub-point drops there cost a migration each for little
/// change of the cluster's peak (many hosts sit within a point of the busiest).
pub(super) const DESCENT_MIN_DROP_LATER: f64 = 1.0;
/// Fixed part of a move's cost when comparing candidates, GiB-equivalents: it favours one
/// bigger drop over several small ones, so the move count stays low.
const DESCENT_MOVE_GIB: f64 = 16.0;
/// VMs of the busiest node a peak swap offers (those that lower it most) and targets it
/// compares.
const DESCENT_SWAP_OFFERS: usize = 8;
const DESCENT_SWAP_TARGETS: usize = 64;
/// (VM, VM) pairs peak swaps may compare per plan.
const DESCENT_SWAP_WORK: u64 = 2_000_000;

/// Points of peak drop a move must bring per GiB-equivalent of cost, levels 3 and 4: the
/// lower the level, the more a move must pay for itself.
fn points_per_gib(level: u8) -> f64 {
    match level {
        3 => 0.1,
        _ => 0.05,
    }
}

impl Planner<'_> {
    /// Node `i`'s fuller utilization with `add` more load, percent.
    fn fuller_with(&self, i: usize, add: [f64; 2]) -> f64 {
        let n = &self.nodes[i];
        [CPU, MEM]
            .into_iter()
            .map(|r| (n.load[r] + add[r]) / n.cap[r].max(EPS) * 100.0)
            .fold(0.0, f64::max)
    }

    /// Levels 3 and 4: whether `d` more load moving from `s` to `t` lowers the larger of
    /// the two nodes' fuller utilization. Balancing moves and swaps keep to it there, so
    /// they too lower the sorted fuller utilizations and never undo a peak move, even once
    /// the no-ping-pong history has aged out.
    pub(super) fn lowers_pair(&self, s: usize, t: usize, d: [f64; 2]) -> bool {
        if !self.pair_peak {
            return true;
        }
        let before = self.fuller_with(s, [0.0; 2]).max(self.fuller_with(t, [0.0; 2]));
        let after = self.fuller_with(s, [-d[CPU], -d[MEM]]).max(self.fuller_with(t, d));
        after < before - 1e-6
    }

    /// The busiest Ready node (fuller resource) and how far it is above the cluster mean of
    /// that resource, points.
    pub(super) fn busiest(&self) -> Option<(usize, f64)> {
        let mean = self.means();
        let mut best: Option<(f64, usize)> = None;
        for i in (0..self.nodes.len()).filter(|&i| self.nodes[i].ready) {
            let u = self.fuller_with(i, [0.0; 2]);
            if best.is_none_or(|b| u > b.0 + EPS) {
                best = Some((u, i));
            }
        }
        let (u, i) = best?;
        let n = &self.nodes[i];
        let r = if n.util(CPU) >= n.util(MEM) { CPU } else { MEM };
        Some((i, u - mean[r] * 100.0))
    }

    /// Peak moves at levels 3 and 4 (see the module comment).
    pub(super) fn descend_peak(&mut self, level: u8, min_drop: f64) {
        let need = points_per_gib(level);
        let mut swap_work = 0u64;
        // Whether VMs that arrived on the busiest host within the window may move on (only
        // once nothing else lowers it; see the module comment).
        let mut onward = false;
        while let Some((s, excess)) = self.busiest() {
            if excess <= DESCENT_STOP || !self.budget_left(s) {
                break;
            }
            let top = self.fuller_with(s, [0.0; 2]);
            let movable: Vec<usize> = self.node_vms[s]
                .iter()
                .copied()
                .filter(|&v| self.movable(v) || (onward && self.onward(v)))
                .collect();
            if movable.is_empty() {
                if onward {
                    break;
                }
                onward = true;
                continue;
            }
            let min_free = movable
                .iter()
                .map(|&v| self.alloc_of(v))
                .fold([f64::INFINITY; 2], |m, a| [m[0].min(a[0]), m[1].min(a[1])]);
            let targets = self.peak_targets(min_free);
            // (score, drop, vm, target)
            let mut best: Option<(f64, f64, usize, usize)> = None;
            for &v in &movable {
                let l = self.vm_load[v];
                let left = self.fuller_with(s, [-l[CPU], -l[MEM]]);
                // No target does better than this VM's own drop at the least cost (an idle
                // target): when even that does not pay, or cannot beat the best found so far,
                // its targets are not compared (the same decisions, a fraction of the work).
                let most = top - left;
                let least = self.move_cost_queued(v, self.used[s]) / 1024.0;
                if most < min_drop
                    || most < least * need
                    || best.is_some_and(|b| most / (least + DESCENT_MOVE_GIB) <= b.0)
                {
                    continue;
                }
                let req = self.snap.vms[v].req();
                // A VM moved within the window goes on to a node it has not been on then.
                let been = self.recent_nodes.get(&v).filter(|_| self.recent[v]);
                for &t in targets
                    .iter()
                    .filter(|&&t| t != s && been.is_none_or(|b| !b.contains(&t)))
                {
                    let drop = top - left.max(self.fuller_with(t, l));
                    if drop < min_drop {
                        continue;
                    }
                    let cost = self.move_cost(v, s, t) / 1024.0;
                    let score = drop / (cost + DESCENT_MOVE_GIB);
                    if drop < cost * need || best.is_some_and(|b| score <= b.0) {
                        continue;
                    }
                    if self.under_line_after(v, t).is_none() || self.occ.check(self.snap, t, &req).is_some() {
                        continue;
                    }
                    best = Some((score, drop, v, t));
                }
            }
            let Some((_, drop, v, t)) = best else {
                // No single move pays: a swap with a VM of another node may (see
                // `best_descent_swap`); else the peak stays where it is.
                if onward {
                    break;
                }
                match self.best_descent_swap(s, top, need, min_drop, &mut swap_work) {
                    Some((sw, drop)) => self.do_descent_swap(sw, top, excess, drop),
                    None => onward = true,
                }
                continue;
            };
            onward = false;
            let reason = format!(
                "peak: {} is the busiest host ({:.0}%, {:.1} points above the cluster mean); moving to {} lowers the pair's fuller use by {:.1} points, worth its {:.1} GiB to copy",
                self.snap.nodes[s].name,
                top,
                excess,
                self.snap.nodes[t].name,
                drop,
                self.vm_load[v][MEM] / 1024.0
            );
            self.do_move(v, s, t, MoveKind::Balance, false, reason);
        }
    }

    /// When no single move off the busiest node `s` (at `top` %) pays: the swap (its VM `a`
    /// to `t`, a VM `b` of `t` back) that lowers the pair's fuller utilization below `top`
    /// by the most per unit of cost, if that drop pays for both moves. Typically `s` is full
    /// in one resource and `t` in the other (CPU-heavy against memory-heavy VMs), and no
    /// single VM fits under the peak on any node. Both nodes end below `top`, so the sorted
    /// fuller utilizations still fall; each step keeps allocation and the relief line
    /// (`swap_order`). Returns the swap and the drop.
    fn best_descent_swap(
        &mut self,
        s: usize,
        top: f64,
        need: f64,
        min_drop: f64,
        work: &mut u64,
    ) -> Option<(Swap, f64)> {
        if self.slots(s) < 2 || *work > DESCENT_SWAP_WORK {
            return None;
        }
        let mut offer: Vec<(f64, usize)> = self.node_vms[s]
            .iter()
            .copied()
            .filter(|&a| self.movable(a))
            .map(|a| {
                let l = self.vm_load[a];
                (self.fuller_with(s, [-l[CPU], -l[MEM]]), a)
            })
            .filter(|&(left, _)| top - left >= min_drop)
            .collect();
        offer.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        offer.truncate(DESCENT_SWAP_OFFERS);
        if offer.is_empty() {
            return None;
        }
        let free_s = self.free_alloc(s);
        let targets: Vec<usize> = self
            .targets
            .iter()
            .map(|&(_, t)| t)
            .filter(|&t| t != s && self.slots(t) >= 2)
            .take(DESCENT_SWAP_TARGETS)
            .collect();
        // (score, a, b, t, drop, a moves first)
        let mut best: Option<(f64, usize, usize, usize, f64, bool)> = None;
        for &t in &targets {
            let (free_t, t_now) = (self.free_alloc(t), self.fuller_with(t, [0.0; 2]));
            let back: Vec<usize> = self.node_vms[t].iter().copied().filter(|&b| self.movable(b)).collect();
            *work += (back.len() * offer.len()) as u64;
            for &(_, a) in &offer {
                let (alloc_a, la) = (self.alloc_of(a), self.vm_load[a]);
                let cost_a = self.move_cost(a, s, t) / 1024.0;
                for &b in &back {
                    if !swap_fits_end(alloc_a, self.alloc_of(b), free_s, free_t) {
                        continue;
                    }
                    let lb = self.vm_load[b];
                    let d = [la[CPU] - lb[CPU], la[MEM] - lb[MEM]];
                    let t_after = self.fuller_with(t, d);
                    let after = self.fuller_with(s, [-d[CPU], -d[MEM]]).max(t_after);
                    let drop = top - after;
                    // A trade: t's fuller use falls too (it gives load of the resource it
                    // is short of for load of the one it has room in).
                    if drop < min_drop || t_after >= t_now - 1e-6 {
                        continue;
                    }
                    let cost = cost_a + self.move_cost(b, t, s) / 1024.0;
                    let score = drop / (cost + 2.0 * DESCENT_MOVE_GIB);
                    if drop < cost * need || best.is_some_and(|x| score <= x.0) {
                        continue;
                    }
                    // Each step alone within allocation and the relief line, in some order.
                    if let Some(a_first) = self.swap_order(a, s, b, t) {
                        best = Some((score, a, b, t, drop, a_first));
                    }
                }
            }
        }
        best.map(|(score, a, b, t, drop, a_first)| ((score, a, s, b, t, a_first), drop))
    }

    fn do_descent_swap(&mut self, sw: Swap, top: f64, excess: f64, drop: f64) {
        let (_, a, s, b, t, _) = sw;
        let reason = format!(
            "peak: {} is the busiest host ({:.0}%, {:.1} points above the cluster mean); swapping {} with {} from {} lowers the pair's fuller use by {:.1} points, worth the two migrations",
            self.snap.nodes[s].name,
            top,
            excess,
            self.snap.vms[a].name,
            self.snap.vms[b].name,
            self.snap.nodes[t].name,
            drop
        );
        self.swap_moves(sw, reason);
    }
}

impl Planner<'_> {
    /// A running VM moved within the window (not yet in this plan): one a peak move may
    /// take on once nothing else lowers the busiest host.
    fn onward(&self, v: usize) -> bool {
        self.vm_running[v] && !self.moved[v] && self.recent[v]
    }
}

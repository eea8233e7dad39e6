//! Level 5 peak moves: lowering the fullest node once the squared-sum objective has nothing
//! worthwhile left. The squared sum trades a node's excess in one resource against its room
//! in the other, and weights big nodes more, so it can leave one node several points above
//! the mean: a VM that would lower it either lowers the sum by less than the smallest gain
//! (its load is mostly in the resource the node has room in) or raises it (a small node's
//! only big VM going to a big node). While the fullest node is more than `SPREAD_STOP`
//! points above the mean of a resource, level 5 puts that first: a move is taken when it
//! lowers the larger excess of its source and target by at least `PEAK_MIN_DROP` points,
//! whatever it does to the squared sum (lexicographic: the peak, then the sum).
//!
//! When no single move to the coolest nodes lowers the fullest ones, in this order: nodes
//! past the coolest that have room for the VM, a peak swap (a dense VM for a sparse one of
//! about the same size), a chain (`chain.rs`: a light VM makes room on a cool full node).
//! Each of them lowers the sorted vector of excesses lexicographically (the source's is
//! the largest involved and all end below it), so they cannot cycle.

use super::swap::{Swap, swap_fits_end};
use super::{CPU, EPS, MEM, MOVE_OVERHEAD_MIB, MoveKind, Planner};

/// Fullest nodes a peak step compares as sources.
const PEAK_SOURCES: usize = 4;
/// Coolest targets a peak step compares, of each node size and in all.
const PEAK_TARGETS_PER_SIZE: usize = 8;
const PEAK_TARGETS: usize = 64;
/// Least drop (points) of the pair's larger excess that is worth a migration. Half a
/// point stalled Zipf 1,000 at 6 points above the mean (twice the 3 the rule aims for),
/// with ~200 hosts within a point of the fullest; a quarter gets it to 4.5, for a third
/// more migrations over the whole settling.
pub(super) const PEAK_MIN_DROP: f64 = 0.25;
/// VMs of a peak source a peak swap offers (the densest in the source's fuller resource).
const PEAK_SWAP_CANDIDATES: usize = 8;
/// Nodes with room for it that a VM of a stuck peak source tries (the coolest such).
const ROOMY_TARGETS: usize = 4;
/// (VM, node) pairs the search for room may compare per plan.
const ROOMY_WORK_BUDGET: u64 = 20_000_000;
/// Candidates peak chains may compare per plan.
const CHAIN_WORK_BUDGET: u64 = 3_000_000;
/// (VM, VM) pairs peak swaps may compare per plan.
const PEAK_WORK_BUDGET: u64 = 2_000_000;

impl Planner<'_> {
    /// Cluster mean utilization per resource over Ready nodes (a fraction).
    pub(super) fn means(&self) -> [f64; 2] {
        [CPU, MEM].map(|r| {
            if self.cap_sum[r] > 0.0 {
                self.load_sum[r] / self.cap_sum[r]
            } else {
                0.0
            }
        })
    }

    /// (source's excess, source, VM, source's excess once the VM has left) for each movable
    /// VM of `sources` whose leaving lowers its source by at least `PEAK_MIN_DROP`.
    pub(super) fn lowering_vms(&self, sources: &[(f64, usize)], mean: [f64; 2]) -> Vec<(f64, usize, usize, f64)> {
        let mut out = Vec::new();
        for &(e_s, s) in sources {
            for &v in self.node_vms[s].iter().filter(|&&v| self.movable(v)) {
                let l = self.vm_load[v];
                let e_left = self.excess(s, [-l[CPU], -l[MEM]], mean);
                if e_s - e_left >= PEAK_MIN_DROP {
                    out.push((e_s, s, v, e_left));
                }
            }
        }
        out
    }

    /// How far node `i`, with `add` more load, is above the mean in its furthest resource,
    /// percentage points.
    pub(super) fn excess(&self, i: usize, add: [f64; 2], mean: [f64; 2]) -> f64 {
        let n = &self.nodes[i];
        [CPU, MEM]
            .into_iter()
            .filter(|&r| self.cap_sum[r] > 0.0)
            .map(|r| ((n.load[r] + add[r]) / n.cap[r].max(EPS) - mean[r]) * 100.0)
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The coolest targets of each node size (the coolest overall may all be small nodes,
    /// and a big VM lowers the peak only on a big one), then the next coolest of any size
    /// up to `PEAK_TARGETS`. Nodes without `min_free` allocation left take no VM of the
    /// sources, nor give room for a swap: they are skipped (the coolest are often full).
    pub(super) fn peak_targets(&self, min_free: [f64; 2]) -> Vec<usize> {
        // Clusters have a handful of node sizes: a short list beats hashing per node (this
        // runs once per peak move).
        let mut per_size: Vec<([u64; 2], usize)> = Vec::new();
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for &(_, i) in &self.targets {
            let n = &self.snap.nodes[i];
            if n.cpu_limit() - self.occ.cpu[i] < min_free[CPU] - 1e-6
                || n.memory_limit_mib() - self.occ.memory[i] < min_free[MEM] - 1e-6
            {
                continue;
            }
            let size = self.nodes[i].cap.map(f64::to_bits);
            let k = match per_size.iter().position(|e| e.0 == size) {
                Some(k) => k,
                None => {
                    per_size.push((size, 0));
                    per_size.len() - 1
                }
            };
            let seen = &mut per_size[k].1;
            if *seen < PEAK_TARGETS_PER_SIZE {
                *seen += 1;
                out.push(i);
                if out.len() >= PEAK_TARGETS {
                    break;
                }
            } else if rest.len() < PEAK_TARGETS {
                rest.push(i);
            }
        }
        let room = PEAK_TARGETS.saturating_sub(out.len());
        out.extend(rest.into_iter().take(room));
        out
    }

    /// Peak moves until no node is more than `spread_stop` points above the mean or none
    /// of the fullest can be lowered (see the module comment).
    pub(super) fn lower_peak(&mut self, spread_stop: f64) {
        // Fullest nodes that nothing lowers in this plan: the next fullest are tried instead
        // (each one lowered still lowers the sorted excesses), within a work budget.
        let mut stuck = vec![false; self.nodes.len()];
        let mut work = 0u64;
        let mut roomy_work = 0u64;
        let mut chain_work = 0u64;
        loop {
            let mean = self.means();
            let mut sources: Vec<(f64, usize)> = (0..self.nodes.len())
                .filter(|&i| !stuck[i] && self.nodes[i].ready && self.budget_left(i))
                .map(|i| (self.excess(i, [0.0; 2], mean), i))
                .filter(|&(e, i)| e > spread_stop && self.node_vms[i].iter().any(|&v| self.movable(v)))
                .collect();
            sources.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            sources.truncate(PEAK_SOURCES);
            if sources.is_empty() {
                break;
            }
            // The least allocation any source VM needs: a target with less takes none of them.
            let min_free = sources
                .iter()
                .flat_map(|&(_, s)| self.node_vms[s].iter().copied().filter(|&v| self.movable(v)))
                .map(|v| self.vm_alloc[v])
                .fold([f64::INFINITY; 2], |m, a| [m[0].min(a[0]), m[1].min(a[1])]);
            let targets = self.peak_targets(min_free);
            // Chains need cool nodes whether or not they have room.
            let cool: Vec<usize> = self.targets.iter().map(|&(_, i)| i).take(PEAK_TARGETS).collect();
            // (drop per cost, drop, vm, source, target)
            let mut best: Option<(f64, f64, usize, usize, usize)> = None;
            for (e_s, s, v, e_left) in self.lowering_vms(&sources, mean) {
                let l = self.vm_load[v];
                let cost = l[MEM] + MOVE_OVERHEAD_MIB;
                let req = self.snap.vms[v].req();
                for &t in targets.iter().filter(|&&t| t != s) {
                    let drop = e_s - e_left.max(self.excess(t, l, mean));
                    if drop < PEAK_MIN_DROP || best.is_some_and(|b| drop / cost <= b.0) {
                        continue;
                    }
                    if self.under_line_after(v, t).is_none() || self.occ.check(self.snap, t, &req).is_some() {
                        continue;
                    }
                    best = Some((drop / cost, drop, v, s, t));
                }
            }
            if best.is_none() && roomy_work <= ROOMY_WORK_BUDGET {
                best = self.best_roomy_move(&sources, mean, &mut roomy_work);
            }
            let Some((_, drop, v, s, t)) = best else {
                // No single VM can go anywhere useful (typically: memory is fully allocated on
                // every cool node): trade a VM for a lighter one of about the same size.
                if let Some(sw) = self.best_peak_swap(&sources, &targets, mean, &mut work) {
                    self.do_peak_swap(sw, mean);
                } else if let Some(ch) = (chain_work <= CHAIN_WORK_BUDGET)
                    .then(|| self.best_peak_chain(&sources, &cool, mean, &mut chain_work))
                    .flatten()
                {
                    self.do_peak_chain(ch, mean);
                } else if work > PEAK_WORK_BUDGET {
                    break;
                } else {
                    sources.iter().for_each(|&(_, i)| stuck[i] = true);
                }
                continue;
            };
            let reason = format!(
                "balance: {} is {:.1} points above the cluster mean, {} takes load off it (the fuller of the two drops by {:.1})",
                self.snap.nodes[s].name,
                self.excess(s, [0.0; 2], mean),
                self.snap.nodes[t].name,
                drop
            );
            self.do_move(v, s, t, MoveKind::Balance, false, reason);
        }
    }
}

impl Planner<'_> {
    /// The swap (VM `a` from a peak source `s` to `t`, VM `b` back from `t` to `s`) with the
    /// most drop of the pair's larger excess per unit of cost, at least `PEAK_MIN_DROP`;
    /// both moves keep allocation limits and the relief line in some order (`swap_order`).
    fn best_peak_swap(
        &mut self,
        sources: &[(f64, usize)],
        targets: &[usize],
        mean: [f64; 2],
        work: &mut u64,
    ) -> Option<Swap> {
        let mut best: Option<Swap> = None;
        for &(e_s, s) in sources {
            if self.slots(s) < 2 {
                continue;
            }
            // The resource that puts s furthest above its mean decides which VMs to offer.
            let r_peak = if self.excess_in(s, CPU, mean) >= self.excess_in(s, MEM, mean) {
                CPU
            } else {
                MEM
            };
            let free_s = self.free_alloc(s);
            // A swap can be performed only if a fits into t's room plus what s can take of
            // b first; offer the VMs that can, densest in the peak resource first (trading
            // a dense VM for a sparse one of the same size drops the most).
            let max_free_t = targets
                .iter()
                .filter(|&&t| t != s)
                .map(|&t| self.free_alloc(t))
                .fold([0.0f64; 2], |m, f| [m[0].max(f[0]), m[1].max(f[1])]);
            let mut offer: Vec<(f64, usize)> = self.node_vms[s]
                .iter()
                .copied()
                .filter(|&a| self.movable(a))
                .filter(|&a| {
                    let alloc = self.alloc_of(a);
                    (0..2).all(|r| alloc[r] <= free_s[r] + max_free_t[r] + 1e-6)
                })
                .map(|a| (self.vm_load[a][r_peak] / self.alloc_of(a)[r_peak].max(EPS), a))
                .collect();
            offer.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            let offer: Vec<usize> = offer.into_iter().take(PEAK_SWAP_CANDIDATES).map(|(_, a)| a).collect();
            for &t in targets {
                if t == s || self.slots(t) < 2 {
                    continue;
                }
                let free_t = self.free_alloc(t);
                let back: Vec<usize> = self.node_vms[t].iter().copied().filter(|&b| self.movable(b)).collect();
                *work += (back.len() * offer.len()) as u64;
                for &a in &offer {
                    let (alloc_a, la) = (self.alloc_of(a), self.vm_load[a]);
                    for &b in &back {
                        // Allocation once both moved (the order is checked below).
                        if !swap_fits_end(alloc_a, self.alloc_of(b), free_s, free_t) {
                            continue;
                        }
                        let lb = self.vm_load[b];
                        let d = [la[CPU] - lb[CPU], la[MEM] - lb[MEM]];
                        let after = self.excess(s, [-d[CPU], -d[MEM]], mean).max(self.excess(t, d, mean));
                        let drop = e_s - after;
                        let cost = la[MEM] + lb[MEM] + 2.0 * MOVE_OVERHEAD_MIB;
                        if drop < PEAK_MIN_DROP || best.is_some_and(|x| drop / cost <= x.0) {
                            continue;
                        }
                        if let Some(a_first) = self.swap_order(a, s, b, t) {
                            best = Some((drop / cost, a, s, b, t, a_first));
                        }
                    }
                }
            }
        }
        best
    }

    /// When none of the coolest nodes has room for a VM of the fullest ones (each has a
    /// few GiB free, less than any VM needs): for each VM that would lower its source, the
    /// coolest few nodes of the whole cluster with room for it.
    fn best_roomy_move(
        &self,
        sources: &[(f64, usize)],
        mean: [f64; 2],
        work: &mut u64,
    ) -> Option<(f64, f64, usize, usize, usize)> {
        // Furthest below the mean first (the peak measure), with the allocation each has
        // free: a cheap filter before `check`.
        let mut free: Vec<(f64, usize, [f64; 2])> = self
            .targets
            .iter()
            .map(|&(_, t)| (self.excess(t, [0.0; 2], mean), t, self.free_alloc(t)))
            .collect();
        free.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut best: Option<(f64, f64, usize, usize, usize)> = None;
        for (e_s, s, v, e_left) in self.lowering_vms(sources, mean) {
            let l = self.vm_load[v];
            let (need, req) = (self.alloc_of(v), self.snap.vms[v].req());
            let cost = l[MEM] + MOVE_OVERHEAD_MIB;
            let mut tried = 0;
            for &(_, t, f) in &free {
                *work += 1;
                if t == s || f[CPU] < need[CPU] - 1e-6 || f[MEM] < need[MEM] - 1e-6 {
                    continue;
                }
                if self.occ.check(self.snap, t, &req).is_some() {
                    continue;
                }
                tried += 1;
                let drop = e_s - e_left.max(self.excess(t, l, mean));
                if drop >= PEAK_MIN_DROP
                    && best.is_none_or(|b| drop / cost > b.0)
                    && self.under_line_after(v, t).is_some()
                {
                    best = Some((drop / cost, drop, v, s, t));
                }
                if tried >= ROOMY_TARGETS {
                    break;
                }
            }
        }
        best
    }

    /// Whether node `i` taking `add` more load stays within the level-5 peak rule: no more
    /// than `peak_stop` points above the mean, or no further above it than it already is.
    /// Balancing moves keep to it, so the sorted excesses (capped at `peak_stop`) never
    /// rise under balancing and fall with every peak move: the two kinds cannot undo each
    /// other, even once the no-ping-pong history has aged out.
    pub(super) fn keeps_peak(&self, i: usize, add: [f64; 2]) -> bool {
        let Some(stop) = self.peak_stop else { return true };
        let mean = self.means();
        self.excess(i, add, mean) <= stop.max(self.excess(i, [0.0; 2], mean)) + EPS
    }

    /// How far node `i` is above the mean in resource `r`, percentage points.
    fn excess_in(&self, i: usize, r: usize, mean: [f64; 2]) -> f64 {
        let n = &self.nodes[i];
        (n.load[r] / n.cap[r].max(EPS) - mean[r]) * 100.0
    }

    fn do_peak_swap(&mut self, sw: Swap, mean: [f64; 2]) {
        let (_, a, s, b, t, _) = sw;
        let reason = format!(
            "balance: {} is {:.1} points above the cluster mean; swap {} with the lighter {} from {}",
            self.snap.nodes[s].name,
            self.excess(s, [0.0; 2], mean),
            self.snap.vms[a].name,
            self.snap.vms[b].name,
            self.snap.nodes[t].name,
        );
        self.swap_moves(sw, reason);
    }
}

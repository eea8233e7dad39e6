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
//! Each peak move lowers the sorted vector of excesses lexicographically (the source's is
//! the pair's larger and both end below it), so peak moves alone cannot cycle.

use std::collections::HashMap;

use super::{CPU, EPS, MEM, MOVE_OVERHEAD_MIB, MoveKind, Planner};

/// Fullest nodes a peak step compares as sources.
const PEAK_SOURCES: usize = 4;
/// Coolest targets a peak step compares, of each node size and in all.
const PEAK_TARGETS_PER_SIZE: usize = 8;
const PEAK_TARGETS: usize = 64;
/// Least drop (points) of the pair's larger excess that is worth a migration.
pub(super) const PEAK_MIN_DROP: f64 = 0.5;

impl Planner<'_> {
    /// Cluster mean utilization per resource over Ready nodes (a fraction).
    fn means(&self) -> [f64; 2] {
        [CPU, MEM].map(|r| {
            if self.cap_sum[r] > 0.0 {
                self.load_sum[r] / self.cap_sum[r]
            } else {
                0.0
            }
        })
    }

    /// How far node `i`, with `add` more load, is above the mean in its furthest resource,
    /// percentage points.
    fn excess(&self, i: usize, add: [f64; 2], mean: [f64; 2]) -> f64 {
        let n = &self.nodes[i];
        [CPU, MEM]
            .into_iter()
            .filter(|&r| self.cap_sum[r] > 0.0)
            .map(|r| ((n.load[r] + add[r]) / n.cap[r].max(EPS) - mean[r]) * 100.0)
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The coolest targets of each node size: the coolest overall may all be small nodes,
    /// and a big VM lowers the peak only on a big one.
    fn peak_targets(&self) -> Vec<usize> {
        let mut per_size: HashMap<[u64; 2], usize> = HashMap::new();
        let mut out = Vec::new();
        for &(_, i) in &self.targets {
            let seen = per_size.entry(self.nodes[i].cap.map(f64::to_bits)).or_default();
            if *seen < PEAK_TARGETS_PER_SIZE {
                *seen += 1;
                out.push(i);
                if out.len() >= PEAK_TARGETS {
                    break;
                }
            }
        }
        out
    }

    /// Peak moves until no node is more than `spread_stop` points above the mean or none
    /// of the fullest can be lowered (see the module comment).
    pub(super) fn lower_peak(&mut self, spread_stop: f64) {
        loop {
            let mean = self.means();
            let mut sources: Vec<(f64, usize)> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].ready && self.budget_left(i))
                .map(|i| (self.excess(i, [0.0; 2], mean), i))
                .filter(|&(e, i)| e > spread_stop && self.node_vms[i].iter().any(|&v| self.movable(v)))
                .collect();
            sources.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            sources.truncate(PEAK_SOURCES);
            let targets = self.peak_targets();
            // (drop per cost, drop, vm, source, target)
            let mut best: Option<(f64, f64, usize, usize, usize)> = None;
            for &(e_s, s) in &sources {
                for &v in &self.node_vms[s] {
                    if !self.movable(v) {
                        continue;
                    }
                    let l = self.vm_load[v];
                    let e_left = self.excess(s, [-l[CPU], -l[MEM]], mean);
                    if e_s - e_left < PEAK_MIN_DROP {
                        continue;
                    }
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
            }
            let Some((_, drop, v, s, t)) = best else { break };
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

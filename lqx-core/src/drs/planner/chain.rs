//! Level 5 peak chains: when neither a single move nor a swap lowers a fullest node, a VM
//! `b` leaves a cool node `t` for a third node `u` to make room, then VM `a` moves from the
//! peak source `s` into that room. Memory is rarely overcommitted, so the nodes that are
//! cool enough to take a big VM are often full, and the nodes with room are not cool
//! enough; moving a lighter VM out of the cool node first uses both. Judged like peak
//! moves: the chain's largest excess afterwards (over `s`, `t` and `u`) must be at least
//! `PEAK_MIN_DROP` below the source's, so chains, like peak moves and swaps, lower the
//! sorted excesses and cannot cycle.

use super::peak::PEAK_MIN_DROP;
use super::{CPU, MEM, MOVE_OVERHEAD_MIB, MoveKind, Planner};

/// VMs of a peak source a chain offers (those that lower it most).
const CHAIN_CANDIDATES: usize = 6;
/// Lightest VMs of a cool node tried as the one that makes room.
const ROOM_MAKERS: usize = 3;
/// Nodes with room for it (in order of excess, lowest first) a room-maker may try.
const ROOM_TARGETS: usize = 64;

/// A planned chain: (drop per cost, drop, a, s, b, t, u): b goes t -> u, then a goes s -> t.
pub(super) type Chain = (f64, f64, usize, usize, usize, usize, usize);

impl Planner<'_> {
    pub(super) fn best_peak_chain(
        &mut self,
        sources: &[(f64, usize)],
        targets: &[usize],
        mean: [f64; 2],
        work: &mut u64,
    ) -> Option<Chain> {
        // Where a room-maker may go: nodes with room, furthest below the mean first.
        let mut dests: Vec<(f64, usize, [f64; 2])> = self
            .targets
            .iter()
            .map(|&(_, u)| (self.excess(u, [0.0; 2], mean), u, self.free_alloc(u)))
            .filter(|&(_, u, f)| self.slots(u) >= 1 && f[CPU] >= 1.0 && f[MEM] >= 1.0)
            .collect();
        dests.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let mut best: Option<Chain> = None;
        for &(e_s, s) in sources {
            if self.slots(s) < 1 {
                continue;
            }
            // The VMs whose leaving lowers s the most.
            let mut offer: Vec<(f64, usize)> = self
                .lowering_vms(&[(e_s, s)], mean)
                .into_iter()
                .map(|(_, _, a, left)| (left, a))
                .collect();
            offer.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            offer.truncate(CHAIN_CANDIDATES);
            for &(e_left, a) in &offer {
                let (la, alloc_a) = (self.vm_load[a], self.alloc_of(a));
                let cost_a = la[MEM] + MOVE_OVERHEAD_MIB;
                for &t in targets {
                    if t == s || self.slots(t) < 2 {
                        continue;
                    }
                    let free_t = self.free_alloc(t);
                    let need = [CPU, MEM].map(|r| alloc_a[r] - free_t[r]);
                    if need.iter().all(|&n| n <= 1e-6) {
                        continue; // a fits as it is: a single move, already considered
                    }
                    // The lightest VMs of t that free enough room.
                    let mut makers: Vec<(f64, usize)> = self.node_vms[t]
                        .iter()
                        .copied()
                        .filter(|&b| self.movable(b))
                        .filter(|&b| {
                            let ab = self.alloc_of(b);
                            (0..2).all(|r| ab[r] + 1e-6 >= need[r])
                        })
                        .map(|b| {
                            let lb = self.vm_load[b];
                            (self.excess(t, [la[CPU] - lb[CPU], la[MEM] - lb[MEM]], mean), b)
                        })
                        .filter(|&(e_t, _)| e_s - e_t.max(e_left) >= PEAK_MIN_DROP)
                        .collect();
                    *work += self.node_vms[t].len() as u64;
                    makers.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                    makers.truncate(ROOM_MAKERS);
                    for &(e_t, b) in &makers {
                        let lb = self.vm_load[b];
                        let cost = cost_a + lb[MEM] + MOVE_OVERHEAD_MIB;
                        let bound = e_s - e_t.max(e_left);
                        if best.is_some_and(|x| bound / cost <= x.0) {
                            continue;
                        }
                        let req_b = self.snap.vms[b].req();
                        let ab = self.alloc_of(b);
                        let mut scanned = 0;
                        for &(_, u, free_u) in &dests {
                            if u == s || u == t || free_u[CPU] < ab[CPU] - 1e-6 || free_u[MEM] < ab[MEM] - 1e-6 {
                                continue;
                            }
                            *work += 1;
                            scanned += 1;
                            if scanned > ROOM_TARGETS {
                                break;
                            }
                            let drop = e_s - e_t.max(e_left).max(self.excess(u, lb, mean));
                            if drop < PEAK_MIN_DROP || best.is_some_and(|x| drop / cost <= x.0) {
                                continue;
                            }
                            if self.under_line_after(b, u).is_none()
                                || self.occ.check(self.snap, u, &req_b).is_some()
                                || !self.chain_fits(a, t, b, u)
                            {
                                continue;
                            }
                            best = Some((drop / cost, drop, a, s, b, t, u));
                            break;
                        }
                    }
                }
            }
        }
        best
    }

    /// Whether `a` fits on `t` (allocation, anti-affinity, the line) once `b` has left
    /// `t` for `u`.
    fn chain_fits(&mut self, a: usize, t: usize, b: usize, u: usize) -> bool {
        let vb = &self.snap.vms[b];
        let (cb, mb, gb) = (vb.cpu_cores, vb.memory_mib, vb.placement.anti_affinity_group.as_deref());
        self.occ.remove(t, cb, mb, gb);
        self.occ.add(u, cb, mb, gb);
        let fits = self.occ.check(self.snap, t, &self.snap.vms[a].req()).is_none();
        self.occ.remove(u, cb, mb, gb);
        self.occ.add(t, cb, mb, gb);
        let n = &self.nodes[t];
        let (la, lb) = (self.vm_load[a], self.vm_load[b]);
        fits && [CPU, MEM]
            .into_iter()
            .all(|r| (n.load[r] - lb[r] + la[r]) / n.cap[r].max(1e-9) <= self.line[r] + 1e-9)
    }

    pub(super) fn do_peak_chain(&mut self, (_, drop, a, s, b, t, u): Chain, mean: [f64; 2]) {
        let reason = format!(
            "balance: {} is {:.1} points above the cluster mean; {} moves to {} once {} has made room there (the fullest of the three drops by {:.1})",
            self.snap.nodes[s].name,
            self.excess(s, [0.0; 2], mean),
            self.snap.vms[a].name,
            self.snap.nodes[t].name,
            self.snap.nodes[u].name,
            drop
        );
        self.do_move(b, t, u, MoveKind::Balance, false, reason.clone());
        self.do_move(a, s, t, MoveKind::Balance, false, reason);
    }
}

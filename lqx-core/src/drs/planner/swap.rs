//! Balancing swaps: VM `a` leaves a hot source `s` for `t` while VM `b` leaves `t` for `s`.
//! Used when no single move is worth it, typically because allocation keeps every VM of
//! `s` off the cool nodes (memory is rarely overcommitted) or because `s` and `t` are hot
//! in different resources. Both moves are planned in an order in which each one alone keeps
//! allocation limits, anti-affinity and its target under the relief line; if neither order
//! works the swap is not made.

use super::{CPU, EPS, MEM, MOVE_OVERHEAD_MIB, MoveKind, Planner};

/// VMs of the source a swap considers (those with the best single-move gain); any VM of
/// the target whose allocation fits may come back.
const SWAP_CANDIDATES: usize = 6;
/// Relief swaps: nodes tried (most headroom in the hot node's hot resources first), nodes
/// with a swap after which the search stops, and (VM, VM) pairs compared per plan at most.
const RELIEF_SWAP_NODES: usize = 24;
const RELIEF_SWAP_FOUND: usize = 2;
const RELIEF_SWAP_WORK: u64 = 5_000_000;
/// ...or this many per hot node when that is more: where most nodes are hot, each needs its
/// swap, and 5 M spread over 926 hot nodes of 1,000 took 3 rounds to relieve them, not 1.
const RELIEF_SWAP_WORK_PER_HOT: u64 = 20_000;

/// The relief swaps' work budget for a plan with `hot` hot nodes.
pub(super) fn relief_swap_budget(hot: usize) -> u64 {
    RELIEF_SWAP_WORK.max(RELIEF_SWAP_WORK_PER_HOT.saturating_mul(hot as u64))
}

/// A planned swap: (gain per cost, a, s, b, t, a moves first).
pub(super) type Swap = (f64, usize, usize, usize, usize, bool);

/// Whether VM `a` (leaving s for t) and VM `b` (leaving t for s) both fit once both have
/// moved: b must free on t what a needs beyond t's room, and fit in what a frees.
pub(super) fn swap_fits_end(alloc_a: [f64; 2], alloc_b: [f64; 2], free_s: [f64; 2], free_t: [f64; 2]) -> bool {
    (0..2).all(|r| alloc_a[r] - alloc_b[r] <= free_t[r] + 1e-6 && alloc_b[r] - alloc_a[r] <= free_s[r] + 1e-6)
}

impl Planner<'_> {
    /// Makes balancing swap `sw`'s two moves in its order, both with `reason`.
    pub(super) fn swap_moves(&mut self, sw: Swap, reason: String) {
        self.swap_moves_as(sw, MoveKind::Balance, reason);
    }

    /// Makes swap `sw`'s two moves in its order, both of `kind` with `reason`.
    pub(super) fn swap_moves_as(&mut self, (_, a, s, b, t, a_first): Swap, kind: MoveKind, reason: String) {
        let (first, second) = if a_first {
            ((a, s, t), (b, t, s))
        } else {
            ((b, t, s), (a, s, t))
        };
        self.do_move(first.0, first.1, first.2, kind, false, reason.clone());
        self.do_move(second.0, second.1, second.2, kind, false, reason);
    }

    /// VM `v`'s allocation: [vCPUs, MiB].
    pub(super) fn alloc_of(&self, v: usize) -> [f64; 2] {
        self.vm_alloc[v]
    }

    /// Allocation left on node `i` (its limits with overcommit): [vCPUs, MiB].
    pub(super) fn free_alloc(&self, i: usize) -> [f64; 2] {
        let n = &self.snap.nodes[i];
        [
            n.cpu_limit() - self.occ.cpu[i],
            n.memory_limit_mib() - self.occ.memory[i],
        ]
    }

    /// The most `gain_delta` any load moved from `s` to `t` can gain (with a margin for
    /// rounding): per resource it is 2·d·(u_s − u_t) − d²·(1/cap_s + 1/cap_t), weighted, and
    /// that is at most (u_s − u_t)² / (1/cap_s + 1/cap_t).
    fn swap_gain_bound(&self, s: usize, t: usize) -> f64 {
        let (a, b) = (&self.nodes[s], &self.nodes[t]);
        let mut g = 0.0;
        for r in [CPU, MEM] {
            if self.cap_sum[r] <= 0.0 {
                continue;
            }
            let (cs, ct) = (a.cap[r].max(EPS), b.cap[r].max(EPS));
            let du = a.load[r] / cs - b.load[r] / ct;
            let avg_cap = self.avg_cap(r);
            g += du * du / (1.0 / cs + 1.0 / ct) / avg_cap * 1e4 / 2.0;
        }
        g * (1.0 + 1e-9) + 1e-6
    }

    /// `gain_from` for a load `d` (per resource, either sign) leaving `s` for `t`.
    pub(super) fn gain_delta(&self, d: [f64; 2], s: usize, t: usize) -> f64 {
        let (a, b) = (&self.nodes[s], &self.nodes[t]);
        let mut g = 0.0;
        for r in [CPU, MEM] {
            let l = d[r];
            if l == 0.0 || self.cap_sum[r] <= 0.0 {
                continue;
            }
            let ds = l * (2.0 * a.load[r] - l) / a.cap[r].max(EPS);
            let dt = l * (2.0 * b.load[r] + l) / b.cap[r].max(EPS);
            let avg_cap = self.avg_cap(r);
            g += (ds - dt) / avg_cap * 1e4 / 2.0;
        }
        g
    }

    /// The `SWAP_CANDIDATES` VMs of `leaving` (movable VMs of `from` with their
    /// `leave_terms`) with the best gain landing on `to`.
    fn top_by_gain(&self, leaving: &[(usize, [f64; 2])], to: usize) -> Vec<usize> {
        let mut c: Vec<(f64, usize)> = leaving
            .iter()
            .map(|&(v, ds)| (self.gain_from(self.vm_load[v], ds, to), v))
            .collect();
        // VMs are unique, so the order is total and the unstable selection exact.
        let by_gain = |x: &(f64, usize), y: &(f64, usize)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
        if c.len() > SWAP_CANDIDATES {
            c.select_nth_unstable_by(SWAP_CANDIDATES, by_gain);
            c.truncate(SWAP_CANDIDATES);
        }
        c.sort_unstable_by(by_gain);
        c.into_iter().map(|(_, v)| v).collect()
    }

    /// The swap with the best gain per unit of cost (at least twice `min_gain`: it is two
    /// moves), between the given hot sources and cool targets.
    pub(super) fn best_swap(&mut self, sources: &[usize], targets: &[usize], min_gain: f64) -> Option<Swap> {
        let mut best: Option<Swap> = None;
        // Per target, its movable VMs with their costs before queueing (built once per call).
        let mut backs: Vec<Option<Vec<(usize, f64)>>> = vec![None; targets.len()];
        for &s in sources {
            if self.slots(s) < 2 {
                continue;
            }
            // s's movable VMs with the source side of their gain (once per source).
            let leaving: Vec<(usize, [f64; 2])> = self.node_vms[s]
                .iter()
                .copied()
                .filter(|&v| self.movable(v))
                .map(|v| (v, self.leave_terms(v, s)))
                .collect();
            // The least a swap off s costs before queueing (b's side at least the overhead).
            let least_copy = leaving
                .iter()
                .map(|&(v, _)| self.copy_cost(v))
                .fold(f64::INFINITY, f64::min)
                + MOVE_OVERHEAD_MIB;
            for (ti, &t) in targets.iter().enumerate() {
                if t == s || self.slots(t) < 2 {
                    continue;
                }
                // No trade between s and t gains more than `swap_gain_bound`: pass over the
                // pair when that is too little, or too little for its least cost to beat the
                // best so far (the tests below would reject every swap).
                let most = self.swap_gain_bound(s, t);
                let least_cost = least_copy * self.queue_factor(self.used[s] + self.used[t]);
                if most < 2.0 * min_gain || (most > 0.0 && best.is_some_and(|x| most / least_cost < x.0)) {
                    continue;
                }
                let out = self.top_by_gain(&leaving, t);
                let back = backs[ti].get_or_insert_with(|| {
                    self.node_vms[t]
                        .iter()
                        .copied()
                        .filter(|&b| self.movable(b))
                        .map(|b| (b, self.copy_cost(b)))
                        .collect()
                });
                let (free_s, free_t) = (self.free_alloc(s), self.free_alloc(t));
                // Both moves wait for the same migrations: those planned on s and t.
                let queue = self.queue_factor(self.used[s] + self.used[t]);
                for &a in &out {
                    let alloc_a = self.alloc_of(a);
                    let copy_a = self.copy_cost(a);
                    for &(b, copy_b) in back.iter() {
                        // Allocation once both moved (the order is checked below).
                        if !swap_fits_end(alloc_a, self.alloc_of(b), free_s, free_t) {
                            continue;
                        }
                        let (la, lb) = (self.vm_load[a], self.vm_load[b]);
                        let d = [la[CPU] - lb[CPU], la[MEM] - lb[MEM]];
                        // The cheap tests first (the outcome does not depend on the order).
                        let g = self.gain_delta(d, s, t);
                        if g < 2.0 * min_gain {
                            continue;
                        }
                        // = move_cost(a, s, t) + move_cost(b, t, s)
                        let cost = copy_a * queue + copy_b * queue;
                        if best.is_some_and(|x| g / cost <= x.0) || !self.pays(g, cost) {
                            continue;
                        }
                        if !self.keeps_peak(t, d)
                            || !self.keeps_peak(s, [-d[CPU], -d[MEM]])
                            || !self.lowers_pair(s, t, d)
                        {
                            continue;
                        }
                        if let Some(a_first) = self.swap_order(a, s, b, t) {
                            best = Some((g / cost, a, s, b, t, a_first));
                        }
                    }
                }
            }
        }
        best
    }

    /// Node `i`'s load in resource `r` with `add` more, as a fraction of its line.
    fn line_ratio(&self, i: usize, r: usize, add: f64) -> f64 {
        let n = &self.nodes[i];
        (n.load[r] + add) / n.cap[r].max(EPS) / self.line[r]
    }

    /// A swap may leave (or briefly take) a node above its line only in a resource that
    /// was above it already and that the swap as a whole lowers: a hot node trades load it
    /// is short of for load it has room for. `now` is the extra load at this step, `end`
    /// once both moves are done.
    fn swap_step_ok(&self, i: usize, now: [f64; 2], end: [f64; 2]) -> bool {
        [CPU, MEM]
            .into_iter()
            .all(|r| self.line_ratio(i, r, now[r]) <= 1.0 + EPS || (self.line_ratio(i, r, 0.0) > 1.0 && end[r] < 0.0))
    }

    /// Some(true) if `a` can move first, Some(false) if `b` must, None if neither order
    /// keeps every step within the rules.
    pub(super) fn swap_order(&mut self, a: usize, s: usize, b: usize, t: usize) -> Option<bool> {
        let (la, lb) = (self.vm_load[a], self.vm_load[b]);
        let t_end = [CPU, MEM].map(|r| la[r] - lb[r]);
        let s_end = [CPU, MEM].map(|r| lb[r] - la[r]);
        if !self.swap_step_ok(t, t_end, t_end) || !self.swap_step_ok(s, s_end, s_end) {
            return None;
        }
        let (va, vb) = (&self.snap.vms[a], &self.snap.vms[b]);
        let (ga, gb) = (
            va.placement.anti_affinity_group.as_deref(),
            vb.placement.anti_affinity_group.as_deref(),
        );
        // a first: t takes a alone, then s (without a) takes b.
        if self.swap_step_ok(t, la, t_end) && self.occ.check(self.snap, t, &va.req()).is_none() {
            self.occ.remove(s, va.cpu_cores, va.memory_mib, ga);
            let ok = self.occ.check(self.snap, s, &vb.req()).is_none();
            self.occ.add(s, va.cpu_cores, va.memory_mib, ga);
            if ok {
                return Some(true);
            }
        }
        // b first: s takes b alone, then t (without b) takes a.
        if self.swap_step_ok(s, lb, s_end) && self.occ.check(self.snap, s, &vb.req()).is_none() {
            self.occ.remove(t, vb.cpu_cores, vb.memory_mib, gb);
            let ok = self.occ.check(self.snap, t, &va.req()).is_none();
            self.occ.add(t, vb.cpu_cores, vb.memory_mib, gb);
            if ok {
                return Some(false);
            }
        }
        None
    }

    /// Relief of hot node `s` by a swap, when no single move relieves it: VM `a` of `s`
    /// goes to a node `t` with headroom in the resources `s` is short of, and a VM `b` of
    /// `t` that is light in them comes back. It needs no free allocation anywhere (b gives
    /// back what a takes), so it works when every node is fully allocated in memory; and
    /// when `t` is hot in the other resource (anti-correlated load), both cool. `s` must
    /// shed excess and `t` end each resource under its line or lower than it was. Nodes
    /// are tried most headroom first, and the search stops once a swap clears all of `s`'s
    /// excess or `RELIEF_SWAP_FOUND` nodes have offered one: of those, the swap that clears
    /// all, else sheds the most heat of both nodes, wins; then the least memory copied.
    pub(super) fn relief_swap(&mut self, s: usize, excess: [f64; 2]) -> Option<Swap> {
        if self.slots(s) < 2 || self.relief_swap_work > self.relief_swap_budget {
            return None;
        }
        let (line, cap_s, load_s) = (self.line, self.nodes[s].cap, self.nodes[s].load);
        let excess_norm: f64 = [CPU, MEM].into_iter().map(|r| excess[r] / cap_s[r].max(EPS)).sum();
        let offer = self.relief_offer(s, excess);
        // Nodes with headroom in every resource s is hot in, the most first.
        let hot = [CPU, MEM].map(|r| excess[r] > EPS);
        let mut nodes: Vec<(f64, usize)> = self
            .targets
            .iter()
            .map(|&(_, t)| t)
            .filter(|&t| t != s && self.slots(t) >= 2)
            .filter_map(|t| {
                let n = &self.nodes[t];
                let head = [CPU, MEM].map(|r| (line[r] * n.cap[r] - n.load[r]) / n.cap[r].max(EPS));
                let ok = (0..2).all(|r| !hot[r] || head[r] > EPS);
                ok.then(|| ((0..2).filter(|&r| hot[r]).map(|r| head[r]).sum(), t))
            })
            .collect();
        self.relief_swap_work += self.targets.len() as u64;
        let by_head = |x: &(f64, usize), y: &(f64, usize)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
        if nodes.len() > RELIEF_SWAP_NODES {
            nodes.select_nth_unstable_by(RELIEF_SWAP_NODES, by_head);
            nodes.truncate(RELIEF_SWAP_NODES);
        }
        nodes.sort_by(by_head);
        let free_s = self.free_alloc(s);
        // (clears all, heat shed, memory copied, swap)
        let mut best: Option<(bool, f64, f64, Swap)> = None;
        let mut found = 0;
        for &(_, t) in &nodes {
            let (cap_t, load_t, free_t) = (self.nodes[t].cap, self.nodes[t].load, self.free_alloc(t));
            // t's VMs by memory allocation: those that can come back for `a` are a window.
            let mut back: Vec<(f64, usize)> = self.node_vms[t]
                .iter()
                .copied()
                .filter(|&b| self.movable(b))
                .map(|b| (self.alloc_of(b)[MEM], b))
                .collect();
            back.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            self.relief_swap_work += back.len() as u64;
            let had = best.as_ref().map(|x| x.3);
            for &a in &offer {
                let (la, alloc_a) = (self.vm_load[a], self.alloc_of(a));
                let from = back.partition_point(|x| x.0 < alloc_a[MEM] - free_t[MEM] - 1e-6);
                for &(mem_b, b) in &back[from..] {
                    if mem_b > alloc_a[MEM] + free_s[MEM] + 1e-6 {
                        break;
                    }
                    self.relief_swap_work += 1;
                    if !swap_fits_end(alloc_a, self.alloc_of(b), free_s, free_t) {
                        continue;
                    }
                    let lb = self.vm_load[b];
                    let (mut left, mut t_gain, mut t_ok) = (0.0, 0.0, true);
                    for r in [CPU, MEM] {
                        left += (load_s[r] - la[r] + lb[r] - line[r] * cap_s[r]).max(0.0) / cap_s[r].max(EPS);
                        let (line_t, after_t) = (line[r] * cap_t[r], load_t[r] - lb[r] + la[r]);
                        t_ok &= after_t <= line_t + EPS || after_t < load_t[r] - EPS;
                        t_gain += ((load_t[r] - line_t).max(0.0) - (after_t - line_t).max(0.0)) / cap_t[r].max(EPS);
                    }
                    if !t_ok || excess_norm - left <= EPS {
                        continue;
                    }
                    let shed = excess_norm - left + t_gain;
                    let (clears, cost) = (left <= EPS, la[MEM] + lb[MEM] + 2.0 * MOVE_OVERHEAD_MIB);
                    let better = best.as_ref().is_none_or(|x| match (clears, x.0) {
                        (true, false) => true,
                        (false, true) => false,
                        _ => shed > x.1 + EPS || ((shed - x.1).abs() <= EPS && cost < x.2),
                    });
                    if better && let Some(a_first) = self.swap_order(a, s, b, t) {
                        best = Some((clears, shed, cost, (shed, a, s, b, t, a_first)));
                    }
                }
            }
            found += usize::from(best.as_ref().map(|x| x.3) != had);
            if best.as_ref().is_some_and(|x| x.0) || found >= RELIEF_SWAP_FOUND {
                break;
            }
        }
        best.map(|x| x.3)
    }

    /// A balancing swap (see the module comment).
    pub(super) fn do_swap(&mut self, (_, a, s, b, t, a_first): Swap) {
        let reason = format!(
            "balance: swap {} ({}) with {} ({}); imbalance {:.1} points",
            self.snap.vms[a].name,
            self.snap.nodes[s].name,
            self.snap.vms[b].name,
            self.snap.nodes[t].name,
            self.imbalance()
        );
        self.swap_moves((0.0, a, s, b, t, a_first), reason);
    }
}

//! Exact relief for small clusters: the fewest moves that bring every hot node under its
//! relief line, by iterative deepening over sets of moves with a lower bound that prunes
//! hard, then an execution order in which every step keeps allocation limits.
//!
//! Bounded twice so large clusters never pay for it: only clusters of at most
//! `MAX_NODES` nodes and `MAX_VMS` movable VMs are searched, and the search gives up after
//! `EXPANSION_BUDGET` expanded states (the caller keeps the greedy plan then).

use super::{CPU, EPS, MEM, Planner};

/// Largest cluster searched exactly.
pub(super) const MAX_NODES: usize = 8;
pub(super) const MAX_VMS: usize = 64;
/// Deepest search (moves) when the greedy plan leaves a node hot.
pub(super) const MAX_DEPTH: usize = 5;
/// Search states expanded per plan at most.
const EXPANSION_BUDGET: u64 = 150_000;

/// One move found by the search: VM, source node, target node (snapshot indices).
pub(super) type Step = (usize, usize, usize);

struct Cand {
    vm: usize,
    origin: usize,
    load: [f64; 2],
    alloc: [f64; 2],
    group: Option<usize>,
    /// Nodes the VM may land on by its placement policy (bit per node).
    allowed: u32,
}

struct Search {
    line_load: Vec<[f64; 2]>,
    limit: Vec<[f64; 2]>,
    /// Must end under the line (the hot nodes being relieved).
    must_cool: Vec<bool>,
    /// Staged (over several rounds): every step leaves its target under its line, so the
    /// plan may stop after any step.
    staged: bool,
    slots: Vec<u32>,
    /// Nodes in order of preference as targets (coolest first).
    target_order: Vec<usize>,
    cands: Vec<Cand>,
    load: Vec<[f64; 2]>,
    alloc: Vec<[f64; 2]>,
    /// Anti-affinity members per group and node.
    groups: Vec<Vec<u32>>,
    received: Vec<u32>,
    used: Vec<u32>,
    at: Vec<usize>,
    moves: Vec<(usize, usize, usize)>,
    expansions: u64,
    /// The moves of the solution, in an order that can be executed.
    found: Option<Vec<(usize, usize, usize)>>,
}

impl Planner<'_> {
    /// The fewest moves (at most `max_moves`) relieving every node of `hot`, none making
    /// another node hot, each step within allocation, anti-affinity and the per-host budget
    /// (`staged`: without that budget, for a relief made over several rounds).
    /// None when there is no such plan, or the cluster is too large, or the budget ran out.
    pub(super) fn exact_relief(&self, hot: &[usize], max_moves: usize, staged: bool) -> Option<Vec<Step>> {
        let n = self.nodes.len();
        if n > MAX_NODES || max_moves == 0 {
            return None;
        }
        let mut groups_named: Vec<&str> = Vec::new();
        let mut cands = Vec::new();
        for (i, vms) in self.node_vms.iter().enumerate() {
            if !self.nodes[i].ready {
                continue;
            }
            for &v in vms {
                if !self.movable(v) {
                    continue;
                }
                let vm = &self.snap.vms[v];
                let group = vm.placement.anti_affinity_group.as_deref().map(|g| {
                    groups_named.iter().position(|x| *x == g).unwrap_or_else(|| {
                        groups_named.push(g);
                        groups_named.len() - 1
                    })
                });
                let mut allowed = 0u32;
                for (t, node) in self.snap.nodes.iter().enumerate() {
                    let p = &vm.placement;
                    let ok = t != i
                        && self.nodes[t].accepts
                        && !p.excluded_nodes.contains(&node.id)
                        && (p.required_nodes.is_empty() || p.required_nodes.contains(&node.id));
                    if ok {
                        allowed |= 1 << t;
                    }
                }
                cands.push(Cand {
                    vm: v,
                    origin: i,
                    load: self.vm_load[v],
                    alloc: [vm.cpu_cores as f64, vm.memory_mib as f64],
                    group,
                    allowed,
                });
            }
        }
        if cands.len() > MAX_VMS {
            return None;
        }
        // Cheapest first, so that among equally short plans the first found copies little.
        cands.sort_by(|a, b| a.load[MEM].total_cmp(&b.load[MEM]).then(a.vm.cmp(&b.vm)));
        let mut target_order: Vec<usize> = (0..n).collect();
        target_order.sort_by(|a, b| self.heat(*a).total_cmp(&self.heat(*b)).then(a.cmp(b)));
        let mut must_cool = vec![false; n];
        for &h in hot {
            must_cool[h] = true;
        }
        let mut s = Search {
            line_load: self
                .nodes
                .iter()
                .map(|l| [CPU, MEM].map(|r| self.line[r] * l.cap[r]))
                .collect(),
            limit: self
                .snap
                .nodes
                .iter()
                .map(|n| [n.cpu_limit(), n.memory_limit_mib()])
                .collect(),
            must_cool,
            staged,
            slots: (0..n)
                .map(|i| if staged { max_moves as u32 } else { self.slots(i) })
                .collect(),
            target_order,
            load: self.nodes.iter().map(|l| l.load).collect(),
            alloc: (0..n).map(|i| [self.occ.cpu[i], self.occ.memory[i]]).collect(),
            groups: groups_named
                .iter()
                .map(|g| (0..n).map(|i| self.occ.group_count(g, i)).collect())
                .collect(),
            received: vec![0; n],
            used: vec![0; n],
            at: cands.iter().map(|c| c.origin).collect(),
            cands,
            moves: Vec::new(),
            expansions: 0,
            found: None,
        };
        let start = s.need(0)?;
        for depth in start.max(1)..=max_moves {
            if s.dfs(0, depth) {
                let steps = s.found.take()?;
                return Some(steps.into_iter().map(|(c, a, b)| (s.cands[c].vm, a, b)).collect());
            }
            if s.expansions > EXPANSION_BUDGET {
                return None;
            }
        }
        None
    }
}

impl Search {
    fn over_line(&self, i: usize, r: usize) -> bool {
        self.load[i][r] > self.line_load[i][r] * (1.0 + EPS) + EPS
    }

    fn over_alloc(&self, i: usize) -> bool {
        (0..2).any(|r| self.alloc[i][r] > self.limit[i][r] + 1e-6)
    }

    /// Whether node `i` must end under its line: hot, or it received a VM.
    fn must_end_under(&self, i: usize) -> bool {
        self.must_cool[i] || self.received[i] > 0
    }

    /// A lower bound on the moves still needed when only candidates `from..` may move: per
    /// node, the fewest of its VMs whose loads cover its excess (or one if it is over its
    /// allocation). None: some node cannot be fixed any more.
    fn need(&self, from: usize) -> Option<usize> {
        let mut total = 0;
        let mut avail: Vec<f64> = Vec::new();
        for i in 0..self.load.len() {
            let mut need_i = 0;
            let under_required = self.must_end_under(i);
            for r in [CPU, MEM] {
                if !under_required || !self.over_line(i, r) {
                    continue;
                }
                let excess = self.load[i][r] - self.line_load[i][r];
                avail.clear();
                avail.extend(
                    (from..self.cands.len())
                        .filter(|&c| self.at[c] == i)
                        .map(|c| self.cands[c].load[r]),
                );
                avail.sort_by(|a, b| b.total_cmp(a));
                let (mut sum, mut k) = (0.0, 0);
                while sum < excess - EPS {
                    let x = *avail.get(k)?;
                    sum += x;
                    k += 1;
                }
                need_i = need_i.max(k);
            }
            if self.over_alloc(i) {
                if !(from..self.cands.len()).any(|c| self.at[c] == i) {
                    return None;
                }
                need_i = need_i.max(1);
            }
            total += need_i;
        }
        Some(total)
    }

    fn node_needs(&self, i: usize) -> bool {
        (self.must_end_under(i) && (self.over_line(i, CPU) || self.over_line(i, MEM))) || self.over_alloc(i)
    }

    fn shift(&mut self, c: usize, from: usize, to: usize) {
        let (l, a, g) = (self.cands[c].load, self.cands[c].alloc, self.cands[c].group);
        for r in [CPU, MEM] {
            self.load[from][r] -= l[r];
            self.load[to][r] += l[r];
            self.alloc[from][r] -= a[r];
            self.alloc[to][r] += a[r];
        }
        if let Some(g) = g {
            self.groups[g][from] -= 1;
            self.groups[g][to] += 1;
        }
        self.at[c] = to;
    }

    /// Sets of moves of exactly `left` more candidates taken in index order from `from` (so
    /// each set is seen once); true when one relieves everything and can be ordered.
    fn dfs(&mut self, from: usize, left: usize) -> bool {
        self.expansions += 1;
        if self.expansions > EXPANSION_BUDGET {
            return false;
        }
        let Some(need) = self.need(from) else {
            return false;
        };
        if need == 0
            && let Some(order) = self.execution_order()
        {
            self.found = Some(order);
            return true;
        }
        if need > left || left == 0 {
            return false;
        }
        for c in from..self.cands.len() {
            let s = self.at[c];
            // With no slack every move must come off a node that still needs relief.
            if need == left && !self.node_needs(s) {
                continue;
            }
            if self.used[s] >= self.slots[s] {
                continue;
            }
            for k in 0..self.target_order.len() {
                let t = self.target_order[k];
                if self.cands[c].allowed & (1 << t) == 0 || self.used[t] >= self.slots[t] {
                    continue;
                }
                if let Some(g) = self.cands[c].group
                    && self.groups[g][t] > 0
                {
                    continue;
                }
                // A target that must end under its line and cannot shed load any more.
                let l = self.cands[c].load;
                let stuck = [CPU, MEM]
                    .into_iter()
                    .any(|r| self.load[t][r] + l[r] > self.line_load[t][r] + EPS)
                    && !(c + 1..self.cands.len()).any(|d| self.at[d] == t);
                if stuck {
                    continue;
                }
                self.shift(c, s, t);
                self.used[s] += 1;
                self.used[t] += 1;
                self.received[t] += 1;
                self.moves.push((c, s, t));
                let ok = self.dfs(c + 1, left - 1);
                self.moves.pop();
                self.received[t] -= 1;
                self.used[t] -= 1;
                self.used[s] -= 1;
                self.shift(c, t, s);
                if ok {
                    return true;
                }
                if self.expansions > EXPANSION_BUDGET {
                    return false;
                }
            }
        }
        false
    }

    /// An order of `self.moves` in which every step keeps the target within its allocation
    /// and anti-affinity, and leaves it under its line unless (not when staged) a later step
    /// takes load off it. Searched from the state before the moves.
    fn execution_order(&mut self) -> Option<Vec<(usize, usize, usize)>> {
        let moves = self.moves.clone();
        // Undo all moves to get the starting state, search, then redo them.
        for &(c, s, t) in moves.iter().rev() {
            self.shift(c, t, s);
        }
        let mut order = Vec::with_capacity(moves.len());
        let mut done = vec![false; moves.len()];
        // On success the ordered moves are applied again; on failure all are undone.
        if self.order_rec(&moves, &mut done, &mut order) {
            return Some(order.into_iter().map(|k| moves[k]).collect());
        }
        for &(c, s, t) in &moves {
            self.shift(c, s, t);
        }
        None
    }

    fn order_rec(&mut self, moves: &[(usize, usize, usize)], done: &mut [bool], order: &mut Vec<usize>) -> bool {
        if order.len() == moves.len() {
            return true;
        }
        for k in 0..moves.len() {
            if done[k] {
                continue;
            }
            let (c, s, t) = moves[k];
            let (l, a) = (self.cands[c].load, self.cands[c].alloc);
            let fits = (0..2).all(|r| self.alloc[t][r] + a[r] <= self.limit[t][r] + 1e-6)
                && self.cands[c].group.is_none_or(|g| self.groups[g][t] == 0);
            let sheds_later = moves.iter().enumerate().any(|(j, m)| j != k && !done[j] && m.1 == t);
            let under = [CPU, MEM]
                .into_iter()
                .all(|r| self.load[t][r] + l[r] <= self.line_load[t][r] * (1.0 + EPS) + EPS);
            if !fits || !(under || (sheds_later && !self.staged)) {
                continue;
            }
            self.shift(c, s, t);
            done[k] = true;
            order.push(k);
            if self.order_rec(moves, done, order) {
                return true;
            }
            order.pop();
            done[k] = false;
            self.shift(c, t, s);
        }
        false
    }
}

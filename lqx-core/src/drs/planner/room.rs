//! Relief by room made with several VMs. When a hot node's VMs fit on no node that they
//! would keep under its line, and one VM leaving first (a room-making pair) is not enough,
//! several light VMs of a cool node leave it for other nodes with room, then a VM of the
//! hot node takes their place. Memory is rarely overcommitted, so the nodes cool enough to
//! take a big VM are often full of small idle ones, and the nodes with room are busy; this
//! uses both. The moves usually need more migrations on the cool node than one round
//! allows, so they are made as a staged relief (see `staged`): the first steps now, the
//! rest in the next rounds, every step leaving its target under its line.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::exact::Step;
use super::{CPU, EPS, MEM, MOVE_OVERHEAD_MIB, Planner};

/// Cool nodes tried as the place to make room in.
const ROOM_NODES: usize = 16;
/// Nodes tried as the destination of each VM that makes room.
const ROOM_DESTINATIONS: usize = 32;
/// VMs that may leave to make room for one VM.
const MAX_MAKERS: usize = 6;
/// Hot nodes tried (the hottest), and (VM, destination) pairs compared per plan at most:
/// with hundreds of hot nodes on fully allocated hosts this search finds little and must
/// not cost the round its time.
const ROOM_HOT: usize = 4;
const ROOM_WORK_BUDGET: u64 = 200_000;

/// Room made in-round on any node under its line (`room_wide`): VMs of the hot node
/// offered, cool nodes tried per VM, and node and VM checks per plan at most.
const WIDE_OFFER: usize = 12;
const WIDE_WORK_PER_VM: u64 = 20_000;
const WIDE_WORK_PER_NODE: u64 = 200_000;
const WIDE_WORK_BUDGET: u64 = 2_000_000;

/// How much of a node's `excess` (per resource, above its line) a VM with load `l` takes
/// away: the sum over the resources in excess of the share each covers (at most 1 each).
pub(super) fn coverage(l: [f64; 2], excess: [f64; 2]) -> f64 {
    [CPU, MEM]
        .into_iter()
        .filter(|&r| excess[r] > EPS)
        .map(|r| l[r].min(excess[r]) / excess[r])
        .sum()
}

impl Planner<'_> {
    /// Room made for hot node `s` on any node under its line, not only the coolest few,
    /// within this round's budget: in a large cluster the coolest nodes are often full in
    /// allocation and the nodes with room close to their line, so light VMs of a cool node
    /// leave it for nodes with room (each staying under its line) and a VM of `s` takes
    /// their place. The VMs of `s` that clear its excess come first (least memory to copy
    /// first), then those that clear the most; for each, the coolest nodes whose headroom
    /// can take it once a few VMs have left; the first that works is taken. Bounded per
    /// plan by `WIDE_WORK_BUDGET`, spent on the hottest nodes first (relief takes them in
    /// that order). The steps in order: makers, then the VM.
    pub(super) fn room_wide(&mut self, s: usize, excess: [f64; 2]) -> Option<Vec<Step>> {
        if self.slots(s) < 1 || self.wide_room_work > WIDE_WORK_BUDGET {
            return None;
        }
        let (line, ns) = (self.line, &self.nodes[s]);
        // (clears all, coverage, memory to copy, a)
        let mut offer: Vec<(bool, f64, f64, usize)> = Vec::new();
        for &a in self.node_vms[s].iter().filter(|&&a| self.movable(a)) {
            let la = self.vm_load[a];
            let coverage = coverage(la, excess);
            let clears = [CPU, MEM]
                .into_iter()
                .all(|r| ns.load[r] - la[r] <= line[r] * ns.cap[r] + EPS);
            if coverage > EPS {
                offer.push((clears, coverage, la[MEM], a));
            }
        }
        offer.sort_by(|x, y| {
            let by_coverage = if x.0 { Ordering::Equal } else { y.1.total_cmp(&x.1) };
            y.0.cmp(&x.0)
                .then(by_coverage)
                .then(x.2.total_cmp(&y.2))
                .then(x.3.cmp(&y.3))
        });
        offer.truncate(WIDE_OFFER);
        // Cool nodes with their headroom under the line and the most load one VM sheds; the
        // nodes with allocation left and budget, where makers may go.
        let mut cool: Vec<(usize, [f64; 2], [f64; 2])> = Vec::new();
        let mut dests: Vec<usize> = Vec::new();
        for &(k, t) in &self.targets {
            if f64::from_bits(k) >= 1.0 {
                break; // this node and every later one is at its relief line
            }
            if t == s {
                continue;
            }
            let free = self.free_alloc(t);
            if free[CPU] >= 1.0 && free[MEM] >= 1.0 {
                dests.push(t);
            }
            let n = &self.nodes[t];
            let mut max_load = [0.0f64; 2];
            for &b in self.node_vms[t].iter().filter(|&&b| self.movable(b)) {
                for r in [CPU, MEM] {
                    max_load[r] = max_load[r].max(self.vm_load[b][r]);
                }
            }
            self.wide_room_work += self.node_vms[t].len() as u64 + 1;
            cool.push((t, [CPU, MEM].map(|r| line[r] * n.cap[r] - n.load[r]), max_load));
        }
        let stop = WIDE_WORK_BUDGET.min(self.wide_room_work + WIDE_WORK_PER_NODE);
        for &(_, _, _, a) in &offer {
            let la = self.vm_load[a];
            let stop_vm = stop.min(self.wide_room_work + WIDE_WORK_PER_VM);
            for &(t, head, max_load) in &cool {
                if self.wide_room_work > stop_vm {
                    break;
                }
                if self.wide_room_work > stop {
                    return None;
                }
                self.wide_room_work += 1;
                // Even its heaviest VMs leaving make too little headroom for a.
                let roomy = (0..2).all(|r| la[r] <= head[r] + max_load[r] * MAX_MAKERS as f64 + EPS);
                if self.slots(t) < 2 || !roomy {
                    continue;
                }
                let mut work = 0;
                let made = self.make_room(a, s, t, &dests, &mut work);
                self.wide_room_work += work;
                if let Some((_, steps)) = made.filter(|(_, steps)| self.fits_budget(steps)) {
                    return Some(steps);
                }
            }
        }
        None
    }

    /// Whether `steps` fit this round's per-host budget.
    fn fits_budget(&self, steps: &[Step]) -> bool {
        let mut count: HashMap<usize, u32> = HashMap::new();
        for &(_, s, t) in steps {
            *count.entry(s).or_default() += 1;
            *count.entry(t).or_default() += 1;
        }
        count.into_iter().all(|(i, k)| self.slots(i) >= k)
    }

    /// The relief of one of `hot` by room made with several VMs that clears the most of
    /// its excess, then copies the least memory: the steps in order (makers, then the VM).
    pub(super) fn room_relief(&mut self, hot: &[usize]) -> Option<Vec<Step>> {
        // (coverage, cost, steps)
        let mut best: Option<(f64, f64, Vec<Step>)> = None;
        let cool: Vec<usize> = self
            .targets
            .iter()
            .map(|&(_, i)| i)
            .take(ROOM_NODES + ROOM_DESTINATIONS + 2)
            .collect();
        let mut hottest = hot.to_vec();
        hottest.sort_by(|a, b| self.heat(*b).total_cmp(&self.heat(*a)).then(a.cmp(b)));
        hottest.truncate(ROOM_HOT);
        let mut work = 0u64;
        for &s in &hottest {
            let l = &self.nodes[s];
            let excess = [CPU, MEM].map(|r| (l.load[r] - self.line[r] * l.cap[r]).max(0.0));
            let movable: Vec<usize> = self.node_vms[s].iter().copied().filter(|&a| self.movable(a)).collect();
            for a in movable {
                let la = self.vm_load[a];
                let coverage = coverage(la, excess);
                if coverage <= EPS || best.as_ref().is_some_and(|b| coverage < b.0 - EPS) {
                    continue;
                }
                for &t in cool.iter().filter(|&&t| t != s).take(ROOM_NODES) {
                    if work > ROOM_WORK_BUDGET {
                        return best.map(|b| b.2);
                    }
                    work += self.node_vms[t].len() as u64;
                    if let Some((cost, steps)) = self.make_room(a, s, t, &cool, &mut work) {
                        let better = best
                            .as_ref()
                            .is_none_or(|b| coverage > b.0 + EPS || ((coverage - b.0).abs() <= EPS && cost < b.1));
                        if better {
                            best = Some((coverage, cost, steps));
                        }
                    }
                }
            }
        }
        best.map(|b| b.2)
    }

    /// VMs of `t` that leave it for other nodes (each staying under its line and within
    /// allocation) until VM `a` of `s` fits on `t` under its line; None when it cannot.
    /// Returns the memory copied and the steps.
    fn make_room(&mut self, a: usize, s: usize, t: usize, cool: &[usize], work: &mut u64) -> Option<(f64, Vec<Step>)> {
        // Every filter but allocation, which the makers are for (a group member on t stays:
        // makers are light VMs, not the ones in the way).
        if self
            .occ
            .check(self.snap, t, &self.snap.vms[a].req())
            .is_some_and(|f| !f.is_capacity())
        {
            return None;
        }
        let (la, alloc_a) = (self.vm_load[a], self.alloc_of(a));
        let free = self.free_alloc(t);
        let need = [CPU, MEM].map(|r| alloc_a[r] - free[r]);
        if need.iter().all(|&n| n <= 1e-6) {
            return None; // fits as it is: a single move's business
        }
        // Lightest first for the allocation they free: the fewest, idlest VMs make room.
        let nt = &self.nodes[t];
        let weight = |b: usize| -> f64 {
            let (lb, ab) = (self.vm_load[b], self.alloc_of(b));
            let load = lb[CPU] / nt.cap[CPU].max(EPS) + lb[MEM] / nt.cap[MEM].max(EPS);
            load / (ab[MEM] / nt.cap[MEM].max(EPS) + ab[CPU] / nt.cap[CPU].max(EPS)).max(EPS)
        };
        let mut makers: Vec<usize> = self.node_vms[t]
            .iter()
            .copied()
            .filter(|&b| self.movable(b) && b != a)
            .collect();
        makers.sort_by(|&x, &y| weight(x).total_cmp(&weight(y)).then(x.cmp(&y)));

        let mut steps: Vec<Step> = Vec::new();
        let mut freed = [0.0; 2];
        let mut shed = [0.0; 2];
        let mut cost = la[MEM] + MOVE_OVERHEAD_MIB;
        let mut backs = 0;
        for b in makers {
            if steps.len() >= MAX_MAKERS || (0..2).all(|r| freed[r] >= need[r] - 1e-6) {
                break;
            }
            let ab = self.alloc_of(b);
            // Only VMs that free what is still missing.
            if (0..2).all(|r| need[r] - freed[r] <= 1e-6 || ab[r] <= 1e-6) {
                continue;
            }
            let req = self.snap.vms[b].req();
            *work += ROOM_DESTINATIONS as u64;
            let dest = cool
                .iter()
                .copied()
                .filter(|&u| u != s && u != t)
                .take(ROOM_DESTINATIONS)
                .find(|&u| self.under_line_after(b, u).is_some() && self.occ.check(self.snap, u, &req).is_none());
            // Failing that, the hot node itself, within its allocation, when the VM is light:
            // a trade, the hot node ending cooler once `a` has left (several for one).
            // At most as many as can go in the round `a` leaves (the hot node must not stay
            // hotter at a round's end).
            let back_room = backs + 1 < self.budget as usize;
            let back = || {
                let lb = self.vm_load[b];
                let light = [CPU, MEM].into_iter().all(|r| lb[r] * 4.0 <= la[r] + EPS);
                (back_room && light && self.occ.check(self.snap, s, &req).is_none()).then_some(s)
            };
            let Some(u) = dest.or_else(back) else {
                continue;
            };
            backs += usize::from(u == s);
            // Book it, so the next maker sees u as it will be.
            let lb = self.vm_load[b];
            let group = self.snap.vms[b].placement.anti_affinity_group.as_deref();
            self.occ
                .add(u, self.snap.vms[b].cpu_cores, self.snap.vms[b].memory_mib, group);
            for r in [CPU, MEM] {
                self.nodes[u].load[r] += lb[r];
                freed[r] += ab[r];
                shed[r] += lb[r];
            }
            cost += lb[MEM] + MOVE_OVERHEAD_MIB;
            steps.push((b, t, u));
        }
        // Undo the bookings.
        for &(b, _, u) in &steps {
            let vm = &self.snap.vms[b];
            self.occ.remove(
                u,
                vm.cpu_cores,
                vm.memory_mib,
                vm.placement.anti_affinity_group.as_deref(),
            );
            for r in [CPU, MEM] {
                self.nodes[u].load[r] -= self.vm_load[b][r];
            }
        }
        let nt = &self.nodes[t];
        let fits = (0..2).all(|r| freed[r] >= need[r] - 1e-6);
        let under = [CPU, MEM]
            .into_iter()
            .all(|r| (nt.load[r] - shed[r] + la[r]) / nt.cap[r].max(EPS) <= self.line[r] + EPS);
        if !fits || !under {
            return None;
        }
        // Makers that go elsewhere first, then those that go to the hot node, then `a`.
        steps.sort_by_key(|&(_, _, u)| u == s);
        steps.push((a, s, t));
        Some((cost, steps))
    }
}

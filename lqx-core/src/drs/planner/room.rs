//! Relief by room made with several VMs. When a hot node's VMs fit on no node that they
//! would keep under its line, and one VM leaving first (a room-making pair) is not enough,
//! several light VMs of a cool node leave it for other nodes with room, then a VM of the
//! hot node takes their place. Memory is rarely overcommitted, so the nodes cool enough to
//! take a big VM are often full of small idle ones, and the nodes with room are busy; this
//! uses both. The moves usually need more migrations on the cool node than one round
//! allows, so they are made as a staged relief (see `staged`): the first steps now, the
//! rest in the next rounds, every step leaving its target under its line.

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

impl Planner<'_> {
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
                let coverage: f64 = [CPU, MEM]
                    .into_iter()
                    .filter(|&r| excess[r] > EPS)
                    .map(|r| la[r].min(excess[r]) / excess[r])
                    .sum();
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

//! The DRS planner (the rule is at the top of `drs/mod.rs`).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::history::{DrsState, MigrationHistory};
use crate::model::{
    DrsConfig, DrsRecommendation, NodeId, NodePhase, Priority, RecommendationId, RecommendationStatus,
    RecommendationType, VmId,
};
use crate::placement::{ClusterSnapshot, NodeUsageSample, Occupancy, PlacementRequest, place_with};

mod chain;
mod descent;
mod exact;
mod peak;
mod room;
mod staged;
mod swap;

pub use super::history::{StagedRelief, StagedStep};

/// Why a move was planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Off a node in maintenance or draining (mandatory).
    Evacuate,
    /// The VM breaks its placement policy where it is (mandatory).
    Constraint,
    /// Off a node above a threshold.
    Relieve,
    /// Evens out load across nodes.
    Balance,
    /// Empties a host DPM puts in standby.
    Consolidate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedMove {
    pub vm: VmId,
    pub vm_name: String,
    pub source: NodeId,
    pub source_name: String,
    pub target: NodeId,
    pub target_name: String,
    pub kind: MoveKind,
    pub priority: Priority,
    pub mandatory: bool,
    pub reason: String,
    /// Expected drop of the source's CPU use, percentage points.
    pub impact_cpu: f64,
    /// Expected drop of the source's memory use, percentage points.
    pub impact_memory: f64,
    /// Memory copied by the migration (in use; 0 for a stopped VM).
    pub memory_mib: u64,
    pub estimated_duration_secs: u64,
}

impl PlannedMove {
    /// The PENDING recommendation the engine persists for this move.
    pub fn to_recommendation(&self, id: RecommendationId, now: DateTime<Utc>) -> DrsRecommendation {
        DrsRecommendation {
            id,
            priority: self.priority,
            recommendation_type: RecommendationType::Migrate,
            reason: self.reason.clone(),
            vm_id: self.vm,
            vm_name: self.vm_name.clone(),
            source_node_id: self.source,
            source_node_name: self.source_name.clone(),
            target_node_id: self.target,
            target_node_name: self.target_name.clone(),
            impact_cpu: self.impact_cpu,
            impact_memory: self.impact_memory,
            estimated_duration_secs: self.estimated_duration_secs,
            mandatory: self.mandatory,
            status: RecommendationStatus::Pending,
            failure_reason: None,
            created_at: now,
            approved_at: None,
            approved_by: None,
            applied_at: None,
            applied_by: None,
        }
    }
}

/// A VM that must move (mandatory) but fits nowhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmovableVm {
    pub vm: VmId,
    pub vm_name: String,
    pub node: NodeId,
    pub node_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeMetrics {
    pub id: NodeId,
    pub name: String,
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterMetrics {
    pub nodes: Vec<NodeMetrics>,
    /// Capacity-weighted standard deviation of Ready nodes' utilization, CPU and memory
    /// pooled, in percentage points.
    pub imbalance: f64,
    pub max_cpu_percent: f64,
    pub max_memory_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrsPlan {
    pub moves: Vec<PlannedMove>,
    pub unmovable: Vec<UnmovableVm>,
    /// Hot nodes (levels 2-5) still above a threshold once the plan is made, with no move
    /// off them and no relief carried to later rounds: DRS found no way to relieve them.
    #[serde(default)]
    pub unrelieved: Vec<NodeMetrics>,
    pub before: ClusterMetrics,
    /// The cluster as it would be after every move.
    pub after: ClusterMetrics,
    /// The hysteresis state to pass to the next `plan`.
    pub state: DrsState,
}

impl DrsPlan {
    pub fn memory_moved_mib(&self) -> u64 {
        self.moves.iter().map(|m| m.memory_mib).sum()
    }

    /// Applies every move to `snapshot`, as if the migrations had completed: the VMs change
    /// node and measured node usage shifts with them.
    pub fn apply(&self, snapshot: &mut ClusterSnapshot) {
        // Indexed once: a plan at 1,000 hosts has thousands of moves over 50,000 VMs.
        let vm_at: HashMap<VmId, usize> = snapshot.vms.iter().enumerate().map(|(i, v)| (v.id, i)).collect();
        let node_at: HashMap<NodeId, usize> = snapshot.nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        for m in &self.moves {
            let Some(v) = vm_at.get(&m.vm).map(|&i| &mut snapshot.vms[i]) else {
                continue;
            };
            let (cpu, mem) = (v.cpu_load(), v.memory_load_mib());
            v.node = Some(m.target);
            for (id, sign) in [(m.source, -1.0), (m.target, 1.0)] {
                let Some(n) = node_at.get(&id).map(|&i| &mut snapshot.nodes[i]) else {
                    continue;
                };
                if let Some(u) = &mut n.usage {
                    let cores = (n.cpu_cores as f64).max(1e-9);
                    *u = NodeUsageSample {
                        cpu_percent: (u.cpu_percent + sign * cpu / cores * 100.0).max(0.0),
                        memory_used_mib: (u.memory_used_mib as f64 + sign * mem).max(0.0).round() as u64,
                    };
                }
            }
        }
    }
}

const CPU: usize = 0;
const MEM: usize = 1;
const EPS: f64 = 1e-9;
/// Fixed cost of any migration, in MiB-equivalents (set-up, switch-over, risk).
const MOVE_OVERHEAD_MIB: f64 = 256.0;
/// How many of the coolest feasible targets a relief move compares.
const RELIEF_TARGETS: usize = 3;
/// Hottest sources and coolest targets a balancing step compares.
const BALANCE_SOURCES: usize = 4;
const BALANCE_TARGETS: usize = 8;
/// Targets a balancing step falls back to when allocation keeps VMs off the coolest.
const BALANCE_WIDE_TARGETS: usize = 32;
/// (VM, target) pairs balancing may spend per plan on sources that turn out stuck.
const WIDE_WORK_BUDGET: u64 = 3_000_000;
/// Level 5: the fullest node's distance above the cluster mean (pp) that starts balancing,
/// and where it stops.
const SPREAD_TRIGGER: f64 = 8.0;
const SPREAD_STOP: f64 = 3.0;
/// Candidate pairs (room-making moves) evaluated per plan at most.
const PAIR_WORK_BUDGET: u64 = 2_000_000;

/// Moves per host this round (see `DrsConfig::round_budget`): the expected migration time
/// is that of the average running VM's memory in use.
pub(crate) fn round_budget(snap: &ClusterSnapshot, cfg: &DrsConfig) -> u32 {
    let (sum, n) = snap
        .vms
        .iter()
        .filter(|v| v.running)
        .fold((0.0, 0usize), |(s, n), v| (s + v.memory_load_mib(), n + 1));
    let avg = if n == 0 { 0.0 } else { sum / n as f64 };
    cfg.round_budget(cfg.expected_migration_secs(avg))
}

/// Imbalance (pp) above which levels 3, 4 and 5 balance.
pub(crate) fn tolerance(level: u8) -> Option<f64> {
    match level {
        3 => Some(10.0),
        4 => Some(5.0),
        5 => Some(2.0),
        _ => None,
    }
}

/// Smallest gain a balancing move must bring at levels 3, 4 and 5.
fn min_gain(level: u8) -> f64 {
    match level {
        3 => 50.0,
        4 => 20.0,
        _ => 5.0,
    }
}

/// Gain units a balancing move must bring per GiB-equivalent of its cost (see
/// `Planner::move_cost`) at levels 3, 4 and 5: the lower the level, the more a move must
/// pay for itself.
fn gain_per_gib(level: u8) -> f64 {
    match level {
        3 => 12.0,
        4 => 6.0,
        _ => 1.5,
    }
}

/// Share of its memory in use a fully busy guest rewrites per second (pre-copy copies that
/// again); scaled by its measured CPU use, the dirty-rate estimate.
const DIRTY_SHARE_PER_SEC: f64 = 0.01;
/// Extra cost per migration already planned on the move's hosts this round, per concurrent
/// slot (it waits for them).
const QUEUE_COST: f64 = 0.05;

/// Target checks of the soft relief (`soft_relief_move`) per plan at most.
const SOFT_RELIEF_WORK: u64 = 5_000_000;

/// How a relief move picks among feasible targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetRule {
    /// The target left least hot, among the few coolest that can take the VM.
    LeastHot,
    /// The fullest target that still stays under its line (keeps big gaps for big VMs).
    BestFit,
}

#[derive(Debug, Clone)]
struct NodeLoad {
    cap: [f64; 2],
    load: [f64; 2],
    ready: bool,
    accepts: bool,
}

/// The cluster's balance as the planner measures it, without planning (cheap: one pass over
/// the snapshot). `drs status` shows it so an apply is reflected at once.
pub fn measure(snapshot: &ClusterSnapshot, config: &DrsConfig, now: DateTime<Utc>) -> ClusterMetrics {
    Planner::new(snapshot, config, &MigrationHistory::default(), now).metrics()
}

/// Plans one DRS round (see the rule in `drs/mod.rs`).
pub fn plan(
    snapshot: &ClusterSnapshot,
    config: &DrsConfig,
    state: &DrsState,
    history: &MigrationHistory,
    now: DateTime<Utc>,
) -> DrsPlan {
    let mut p = Planner::new(snapshot, config, history, now);
    let before = p.metrics();
    let level = config.migration_threshold.clamp(1, 5);
    p.pair_peak = matches!(level, 3 | 4);
    let hold = config.hysteresis_hold_count.max(1);

    // Hysteresis bookkeeping: which conditions have held long enough.
    let mut next = DrsState::default();
    let mut hot = Vec::new();
    for (i, n) in snapshot.nodes.iter().enumerate() {
        let l = &p.nodes[i];
        if l.ready && p.over_threshold(i) {
            let streak = state.hot_streak.get(&n.id).copied().unwrap_or(0) + 1;
            next.hot_streak.insert(n.id, streak);
            if streak >= hold {
                hot.push(i);
            }
        }
    }
    p.relief_swap_budget = swap::relief_swap_budget(hot.len());
    let tol = tolerance(level);
    // At level 5 a node far above the cluster mean also calls for balancing: across many
    // nodes one hot node barely moves the standard deviation.
    let spread_stop = (level >= 5).then_some(SPREAD_STOP);
    let spread_on = spread_stop.is_some() && p.spread() > SPREAD_TRIGGER;
    // Levels 3 and 4: the busiest host well above the mean calls for cost-gated peak moves
    // (see `descent`), held like an imbalance.
    let descent_on = matches!(level, 3 | 4) && p.busiest().is_some_and(|(_, e)| e > descent::DESCENT_STOP);
    let balance_due = tol.is_some_and(|t| before.imbalance > t) || spread_on;
    let imbalance_triggered = match tol {
        Some(_) if balance_due || descent_on => {
            next.imbalance_streak = state.imbalance_streak + 1;
            next.imbalance_streak >= hold
        }
        _ => false,
    };

    p.mandatory();
    if let Some(carried) = &state.staged {
        next.staged = p.continue_staged(carried);
    }
    if level >= 2 && !hot.is_empty() {
        // Hottest first: by how far the node is over its relief line.
        hot.sort_by(|a, b| p.heat(*b).total_cmp(&p.heat(*a)).then(a.cmp(b)));
        let base = p.clone();
        p.relieve_best(&hot);
        // Small clusters: the fewest moves, found exactly, when the greedy plan is not
        // already as short as the lower bound or leaves a node hot.
        if p.nodes.len() <= exact::MAX_NODES {
            let greedy_moves = p.moves.len() - base.moves.len();
            let solved = p.residual(&hot) <= EPS;
            let max = if solved {
                greedy_moves.saturating_sub(1)
            } else {
                exact::MAX_DEPTH
            };
            if let Some(steps) = base.exact_relief(&hot, max, false) {
                let mut q = base.clone();
                q.make_steps(&hot, &steps, 0, steps.len());
                p = q;
            }
        }
        if next.staged.is_none() && p.residual(&hot) > EPS {
            // What is left hot needs more migrations on some host than a round allows:
            // the fewest moves (small clusters), else room made with several VMs; its
            // first steps now, the rest carried to the next rounds (see `staged`).
            let still: Vec<usize> = hot.iter().copied().filter(|&h| p.residual(&[h]) > EPS).collect();
            let steps = p
                .exact_relief(&still, exact::MAX_DEPTH, true)
                .or_else(|| p.room_relief(&still));
            if let Some(steps) = steps {
                let mut q = p.clone();
                let rest = q.start_staged(&still, &steps, false);
                if q.moves.len() > p.moves.len() {
                    p = q;
                    next.staged = rest;
                }
            }
        }
        // A hot node this round's plan does not even start on (its relief needs a trade the
        // per-host budget does not allow)...
        let untouched = hot.iter().any(|&h| {
            let id = snapshot.nodes[h].id;
            p.residual(&[h]) > EPS && !p.moves[base.moves.len()..].iter().any(|m| m.source == id)
        });
        if next.staged.is_none() && untouched && p.nodes.len() <= exact::MAX_NODES {
            // ...in a small cluster: what greedy and room relief do without the budget, made
            // over several rounds (see `staged`), when it leaves less heat in the end.
            if let Some(steps) = base.unbudgeted_relief(&hot, p.residual(&hot)) {
                let mut q = base.clone();
                let rest = q.start_staged(&hot, &steps, true);
                if q.moves.len() > base.moves.len() {
                    p = q;
                    next.staged = rest;
                }
            }
        }
    }
    if let Some(t) = tol {
        // Schmitt trigger: balancing starts above the tolerance and, once started, goes on
        // (over later runs too, if the budget cut it short) until `margin` below it.
        let stop_at = (t - config.hysteresis_margin).max(0.0);
        let continuing = state.balancing && !p.balanced(stop_at, spread_stop);
        // Peak moves first: they lower the imbalance too, often below the tolerance, with
        // fewer and bigger moves than the squared sum would pick.
        if imbalance_triggered && descent_on {
            // Triggered in the previous round too: this round goes on with its descent.
            let later = state.imbalance_streak >= hold;
            p.descend_peak(
                level,
                if later {
                    descent::DESCENT_MIN_DROP_LATER
                } else {
                    descent::DESCENT_MIN_DROP
                },
            );
        }
        let continuing = continuing && !p.balanced(stop_at, spread_stop);
        let balance_due = balance_due && !p.balanced(stop_at, spread_stop);
        if (imbalance_triggered && balance_due) || continuing {
            let planned = p.moves.len();
            p.peak_stop = spread_stop;
            p.balance(stop_at, spread_stop, min_gain(level));
            if let Some(x) = spread_stop.filter(|_| p.moves.len() == planned) {
                // Level 5, once the squared sum has nothing worthwhile left: what it leaves
                // of the fullest node's excess (see `peak`).
                p.lower_peak(x);
            }
            next.balancing = !p.balanced(stop_at, spread_stop);
        }
    }
    let after = p.metrics();
    // A hot node with moves off it this round, or a relief carried to later rounds, is being
    // worked on (the per-host budget may be what keeps it hot for now).
    let relieved_later = next.staged.as_ref().map_or(&[][..], |s| &s.relieves[..]);
    let unrelieved = if level >= 2 {
        hot.iter()
            .map(|&i| (i, snapshot.nodes[i].id))
            .filter(|&(i, id)| {
                p.over_threshold(i) && !relieved_later.contains(&id) && !p.moves.iter().any(|m| m.source == id)
            })
            .map(|(i, _)| after.nodes[i].clone())
            .collect()
    } else {
        Vec::new()
    };
    lift_priorities(&mut p.moves);
    DrsPlan {
        moves: p.moves,
        unmovable: p.unmovable,
        unrelieved,
        before,
        after,
        state: next,
    }
}

impl NodeLoad {
    fn util(&self, r: usize) -> f64 {
        self.load[r] / self.cap[r].max(EPS)
    }
}

/// The room some nodes have, [vCPUs, MiB allocation, CPU load, memory load] each, kept to
/// those no other node has at least as much of in all four: a VM that needs more than each
/// of them in some resource fits none of the nodes. Targets only fill up until a VM leaves
/// one, so a bound taken earlier holds until then.
#[derive(Clone, Default)]
struct RoomBound(Vec<[f64; 4]>);

impl RoomBound {
    fn new(mut rooms: Vec<[f64; 4]>) -> Self {
        // Most room in allocated memory first: a node can only be covered by one before it.
        rooms.sort_by(|a, b| b[1].total_cmp(&a[1]));
        let mut kept: Vec<[f64; 4]> = Vec::new();
        for r in rooms {
            if !kept.iter().any(|k| (0..4).all(|i| k[i] >= r[i])) {
                kept.push(r);
            }
        }
        RoomBound(kept)
    }

    /// False when a VM of this allocation and load certainly fits none of the nodes (with a
    /// margin for the rounding in the exact tests).
    fn may_fit(&self, alloc: [f64; 2], load: [f64; 2]) -> bool {
        let need = [alloc[0], alloc[1], load[0], load[1]];
        self.0
            .iter()
            .any(|k| (0..4).all(|i| need[i] <= k[i] + 1e-6 * (1.0 + k[i].abs())))
    }
}

/// A node's movable VMs, smallest memory allocation first: (allocation, position in
/// `node_vms`, VM).
type MemOrder = Vec<([f64; 2], usize, usize)>;

#[derive(Clone)]
struct Planner<'a> {
    snap: &'a ClusterSnapshot,
    cfg: &'a DrsConfig,
    nodes: Vec<NodeLoad>,
    vm_load: Vec<[f64; 2]>,
    /// Per VM, fixed for the plan and read in every search (compact, unlike the snapshot's
    /// VM records): its allocation [vCPUs, MiB], `copy_cost`, and whether it runs.
    vm_alloc: Vec<[f64; 2]>,
    vm_copy: Vec<f64>,
    vm_running: Vec<bool>,
    vm_node: Vec<Option<usize>>,
    node_vms: Vec<Vec<usize>>,
    /// Per node, its movable VMs as `best_single` searches them; None once a move changed
    /// the node.
    mem_order: Vec<Option<MemOrder>>,
    occ: Occupancy,
    used: Vec<u32>,
    /// Migrations per host in this plan (the config's, or unbounded for a relief planned
    /// over several rounds).
    budget: u32,
    moved: Vec<bool>,
    recent: Vec<bool>,
    /// Relief line per resource, as a fraction: threshold minus margin.
    line: [f64; 2],
    /// Per node, its allocation limits with overcommit: [vCPUs, MiB] (read per target
    /// scanned, without touching the snapshot's node records).
    limit: Vec<[f64; 2]>,
    /// VMs that left a node, in all and per node: a relief target search that found
    /// nothing for a VM of `s` stays empty until a VM leaves a node other than `s`.
    departures: u64,
    departed_from: Vec<u64>,
    /// Per VM, `relief_stamp(its node) + 1` when its relief target search last found
    /// nothing (0: not searched).
    no_target: Vec<u64>,
    /// Nodes that accept VMs and have budget left, coolest first.
    targets: BTreeSet<(u64, usize)>,
    /// Ready nodes with budget left, hottest last.
    sources: BTreeSet<(u64, usize)>,
    key: Vec<u64>,
    /// Each node's fuller resource at the start of the plan, percent (sets priorities).
    initial_percent: Vec<f64>,
    /// Over Ready nodes, per resource: capacity, load, and load²/capacity.
    cap_sum: [f64; 2],
    load_sum: [f64; 2],
    sq_sum: [f64; 2],
    ready_count: usize,
    moves: Vec<PlannedMove>,
    unmovable: Vec<UnmovableVm>,
    /// Pair candidates evaluated so far (bounded by PAIR_WORK_BUDGET).
    pair_work: u64,
    /// (VM, VM) pairs relief swaps compared so far, and at most (`swap::relief_swap_budget`).
    relief_swap_work: u64,
    relief_swap_budget: u64,
    /// Targets the soft relief checked so far (bounded by `SOFT_RELIEF_WORK`).
    soft_relief_work: u64,
    /// Node and VM checks of the in-round room search so far (bounded by
    /// `room::WIDE_WORK_BUDGET`).
    wide_room_work: u64,
    /// Work spent on stuck balancing sources so far (bounded by WIDE_WORK_BUDGET).
    wide_work: u64,
    /// Level 5: balancing moves may not take a node above this many points over the mean
    /// (nor further above it), so peak moves never undo them (see `peak`).
    peak_stop: Option<f64>,
    /// Levels 3 and 4: balancing moves must lower the larger fuller utilization of their
    /// two nodes (see `descent`).
    pair_peak: bool,
    /// Per VM moved within the no-ping-pong window, the nodes it left or went to then:
    /// levels 3 and 4 may move it on (see `descent`), never back to one of them.
    recent_nodes: HashMap<usize, Vec<usize>>,
}

impl<'a> Planner<'a> {
    fn new(snap: &'a ClusterSnapshot, cfg: &'a DrsConfig, history: &MigrationHistory, now: DateTime<Utc>) -> Self {
        let occ = Occupancy::new(snap, &[]);
        let mut nodes: Vec<NodeLoad> = snap
            .nodes
            .iter()
            .map(|n| NodeLoad {
                cap: [n.cpu_cores as f64, n.memory_mib as f64],
                load: [0.0; 2],
                ready: n.phase == NodePhase::Ready,
                accepts: n.accepts_vms(),
            })
            .collect();
        let mut node_vms = vec![Vec::new(); nodes.len()];
        let mut vm_node = Vec::with_capacity(snap.vms.len());
        let mut vm_load = Vec::with_capacity(snap.vms.len());
        for (v, vm) in snap.vms.iter().enumerate() {
            let l = [vm.cpu_load(), vm.memory_load_mib()];
            let at = vm.node.and_then(|id| occ.index.get(&id).copied());
            if let Some(i) = at {
                nodes[i].load[CPU] += l[CPU];
                nodes[i].load[MEM] += l[MEM];
                node_vms[i].push(v);
            }
            vm_node.push(at);
            vm_load.push(l);
        }
        // What the node reports beyond its VMs (host processes, overhead) stays put.
        for (i, n) in snap.nodes.iter().enumerate() {
            if let Some(u) = n.usage {
                let measured = [u.cpu_percent / 100.0 * n.cpu_cores as f64, u.memory_used_mib as f64];
                for r in [CPU, MEM] {
                    nodes[i].load[r] = nodes[i].load[r].max(measured[r]);
                }
            }
        }
        let moved_within = history.moved_within(now, cfg.recent_migration_window);
        let recent = snap.vms.iter().map(|v| moved_within.contains(&v.id)).collect();
        let mut recent_nodes: HashMap<usize, Vec<usize>> = HashMap::new();
        if !moved_within.is_empty() {
            let vm_index: HashMap<VmId, usize> = snap.vms.iter().enumerate().map(|(i, v)| (v.id, i)).collect();
            let window = chrono::Duration::from_std(cfg.recent_migration_window).unwrap_or(chrono::Duration::MAX);
            for r in history
                .records
                .iter()
                .filter(|r| now.signed_duration_since(r.at) < window)
            {
                let Some(&v) = vm_index.get(&r.vm) else { continue };
                let nodes = recent_nodes.entry(v).or_default();
                nodes.extend([r.source, r.target].iter().filter_map(|id| occ.index.get(id).copied()));
            }
        }
        let line = [
            ((cfg.threshold_cpu - cfg.hysteresis_margin) / 100.0).max(0.01),
            ((cfg.threshold_memory - cfg.hysteresis_margin) / 100.0).max(0.01),
        ];
        let mut p = Planner {
            snap,
            cfg,
            key: vec![0; nodes.len()],
            initial_percent: nodes.iter().map(|n| n.util(CPU).max(n.util(MEM)) * 100.0).collect(),
            used: vec![0; nodes.len()],
            budget: round_budget(snap, cfg),
            moved: vec![false; snap.vms.len()],
            recent,
            line,
            limit: snap
                .nodes
                .iter()
                .map(|n| [n.cpu_limit(), n.memory_limit_mib()])
                .collect(),
            departures: 0,
            departed_from: vec![0; nodes.len()],
            no_target: vec![0; snap.vms.len()],
            targets: BTreeSet::new(),
            sources: BTreeSet::new(),
            cap_sum: [0.0; 2],
            load_sum: [0.0; 2],
            sq_sum: [0.0; 2],
            ready_count: 0,
            nodes,
            vm_alloc: snap
                .vms
                .iter()
                .map(|vm| [vm.cpu_cores as f64, vm.memory_mib as f64])
                .collect(),
            vm_copy: snap
                .vms
                .iter()
                .zip(&vm_load)
                .map(|(vm, &l)| copy_cost(l, vm.cpu_cores, cfg))
                .collect(),
            vm_running: snap.vms.iter().map(|vm| vm.running).collect(),
            vm_load,
            vm_node,
            mem_order: vec![None; node_vms.len()],
            node_vms,
            occ,
            moves: Vec::new(),
            unmovable: Vec::new(),
            pair_work: 0,
            relief_swap_work: 0,
            relief_swap_budget: swap::relief_swap_budget(0),
            soft_relief_work: 0,
            wide_room_work: 0,
            wide_work: 0,
            peak_stop: None,
            pair_peak: false,
            recent_nodes,
        };
        for i in 0..p.nodes.len() {
            if p.nodes[i].ready {
                p.ready_count += 1;
                for r in [CPU, MEM] {
                    p.cap_sum[r] += p.nodes[i].cap[r];
                }
                p.add_sums(i, 1.0);
            }
            p.index(i);
        }
        p
    }

    /// How far the node is towards its relief line, the fuller resource counting (1.0: on it).
    fn heat(&self, i: usize) -> f64 {
        let n = &self.nodes[i];
        (n.util(CPU) / self.line[CPU]).max(n.util(MEM) / self.line[MEM])
    }

    fn budget_left(&self, i: usize) -> bool {
        self.used[i] < self.budget
    }

    /// `Occupancy::check`'s CPU and memory tests alone, on the planner's compact arrays:
    /// most targets a search scans fail them, and this spares reading their node records.
    fn alloc_fits(&self, t: usize, req: &crate::placement::ReqRef<'_>) -> bool {
        self.occ.cpu[t] + req.cpu_cores as f64 <= self.limit[t][CPU] + EPS
            && self.occ.memory[t] + req.memory_mib as f64 <= self.limit[t][MEM] + EPS
    }

    /// Changes whenever a VM leaves a node other than `s`: the only thing that can give a
    /// VM of `s` a relief target it did not have (targets only fill up otherwise).
    fn relief_stamp(&self, s: usize) -> u64 {
        self.departures - self.departed_from[s]
    }

    /// (Re)files node `i` in the source and target sets.
    fn index(&mut self, i: usize) {
        let old = (self.key[i], i);
        self.targets.remove(&old);
        self.sources.remove(&old);
        let h = self.heat(i);
        let k = if h.is_finite() {
            h.max(0.0).to_bits()
        } else {
            f64::MAX.to_bits()
        };
        self.key[i] = k;
        if self.budget_left(i) {
            if self.nodes[i].accepts {
                self.targets.insert((k, i));
            }
            if self.nodes[i].ready {
                self.sources.insert((k, i));
            }
        }
    }

    fn add_sums(&mut self, i: usize, sign: f64) {
        let n = &self.nodes[i];
        for r in [CPU, MEM] {
            self.load_sum[r] += sign * n.load[r];
            self.sq_sum[r] += sign * n.load[r] * n.load[r] / n.cap[r].max(EPS);
        }
    }

    fn imbalance(&self) -> f64 {
        let mut var = 0.0;
        for r in [CPU, MEM] {
            if self.cap_sum[r] > 0.0 {
                let mean = self.load_sum[r] / self.cap_sum[r];
                var += (self.sq_sum[r] / self.cap_sum[r] - mean * mean).max(0.0);
            }
        }
        (var / 2.0).sqrt() * 100.0
    }

    fn metrics(&self) -> ClusterMetrics {
        let nodes: Vec<NodeMetrics> = self
            .snap
            .nodes
            .iter()
            .zip(&self.nodes)
            .map(|(n, l)| NodeMetrics {
                id: n.id,
                name: n.name.clone(),
                cpu_percent: round2(l.util(CPU) * 100.0),
                memory_percent: round2(l.util(MEM) * 100.0),
            })
            .collect();
        ClusterMetrics {
            imbalance: round2(self.imbalance()),
            max_cpu_percent: nodes.iter().map(|n| n.cpu_percent).fold(0.0, f64::max),
            max_memory_percent: nodes.iter().map(|n| n.memory_percent).fold(0.0, f64::max),
            nodes,
        }
    }

    /// Above the CPU or the memory threshold (a hot node, once it has held).
    fn over_threshold(&self, i: usize) -> bool {
        let l = &self.nodes[i];
        l.util(CPU) * 100.0 > self.cfg.threshold_cpu || l.util(MEM) * 100.0 > self.cfg.threshold_memory
    }

    fn movable(&self, v: usize) -> bool {
        self.vm_running[v] && !self.moved[v] && !self.recent[v]
    }

    /// Post-move utilization of `t` if `v` lands there, when that stays under the relief line.
    fn under_line_after(&self, v: usize, t: usize) -> Option<f64> {
        let n = &self.nodes[t];
        let mut heat: f64 = 0.0;
        for r in [CPU, MEM] {
            let u = (n.load[r] + self.vm_load[v][r]) / n.cap[r].max(EPS);
            if u > self.line[r] + EPS {
                return None;
            }
            heat = heat.max(u / self.line[r]);
        }
        Some(heat)
    }

    fn heat_after(&self, v: usize, t: usize) -> f64 {
        let n = &self.nodes[t];
        [CPU, MEM]
            .into_iter()
            .map(|r| (n.load[r] + self.vm_load[v][r]) / n.cap[r].max(EPS) / self.line[r])
            .fold(0.0, f64::max)
    }

    // ---- mandatory moves ----

    fn mandatory(&mut self) {
        let snap = self.snap;
        let mut todo: Vec<(usize, MoveKind, String)> = Vec::new();
        // Evacuations: biggest first, so they get the roomiest targets.
        for (i, n) in snap.nodes.iter().enumerate() {
            if !n.is_evacuating() {
                continue;
            }
            let mut vms = self.node_vms[i].clone();
            vms.sort_by(|a, b| snap.vms[*b].memory_mib.cmp(&snap.vms[*a].memory_mib).then(a.cmp(b)));
            let why = match n.phase {
                NodePhase::Draining => format!("{} is draining", n.name),
                _ => format!("{} is in maintenance", n.name),
            };
            todo.extend(vms.into_iter().map(|v| (v, MoveKind::Evacuate, why.clone())));
        }
        // Placement-policy violations on Ready nodes.
        let mut groups: HashMap<(usize, &str), Vec<usize>> = HashMap::new();
        for (v, vm) in snap.vms.iter().enumerate() {
            let Some(i) = self.vm_node[v] else { continue };
            if !self.nodes[i].ready {
                continue;
            }
            let n = &snap.nodes[i];
            if vm.placement.excluded_nodes.contains(&n.id) {
                todo.push((
                    v,
                    MoveKind::Constraint,
                    format!("its placement policy excludes {}", n.name),
                ));
            } else if !vm.placement.required_nodes.is_empty() && !vm.placement.required_nodes.contains(&n.id) {
                todo.push((
                    v,
                    MoveKind::Constraint,
                    format!("{} is not one of its required nodes", n.name),
                ));
            } else if let Some(g) = vm.placement.anti_affinity_group.as_deref() {
                groups.entry((i, g)).or_default().push(v);
            }
        }
        let mut shared: Vec<_> = groups.into_iter().filter(|(_, vs)| vs.len() > 1).collect();
        shared.sort_by_key(|((i, g), _)| (*i, g.to_string()));
        for ((i, g), mut vs) in shared {
            vs.sort_by(|a, b| snap.vms[*a].name.cmp(&snap.vms[*b].name));
            let keeper = &snap.vms[vs[0]].name;
            for &v in &vs[1..] {
                let why = format!(
                    "it shares {} with {keeper} of anti-affinity group {g}",
                    snap.nodes[i].name
                );
                todo.push((v, MoveKind::Constraint, why));
            }
        }
        for (v, kind, why) in todo {
            let Some(s) = self.vm_node[v] else { continue };
            match self.mandatory_target(v, s) {
                Some(t) => self.do_move(v, s, t, kind, true, why),
                None => {
                    let req = PlacementRequest::for_vm(&snap.vms[v]);
                    let cause = match place_with(snap, &self.occ, &req) {
                        Err(e) => e.to_string(),
                        Ok(_) => "No node fits".to_string(),
                    };
                    self.unmovable.push(UnmovableVm {
                        vm: snap.vms[v].id,
                        vm_name: snap.vms[v].name.clone(),
                        node: snap.nodes[s].id,
                        node_name: snap.nodes[s].name.clone(),
                        reason: format!("{why}, but it cannot move: {cause}"),
                    });
                }
            }
        }
    }

    /// The node left least hot, preferring those that stay under the relief line; hard
    /// constraints only (mandatory moves do not wait for budget).
    fn mandatory_target(&self, v: usize, s: usize) -> Option<usize> {
        let req = self.snap.vms[v].req();
        let mut best: Option<(bool, f64, usize)> = None;
        for t in 0..self.nodes.len() {
            if t == s || !self.nodes[t].accepts || self.occ.check(self.snap, t, &req).is_some() {
                continue;
            }
            let cand = (self.under_line_after(v, t).is_none(), self.heat_after(v, t), t);
            if best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                best = Some(cand);
            }
        }
        best.map(|b| b.2)
    }

    // ---- relief ----

    /// The coolest few feasible targets under the relief line; the one left least hot.
    fn relief_target(&self, v: usize, s: usize, rule: TargetRule) -> Option<(usize, f64)> {
        let req = self.snap.vms[v].req();
        let mut best: Option<(usize, f64)> = None;
        let mut found = 0;
        for &(k, t) in &self.targets {
            if f64::from_bits(k) >= 1.0 {
                break; // this node and every later one is already at its relief line
            }
            if t == s || !self.alloc_fits(t, &req) {
                continue;
            }
            let Some(h) = self.under_line_after(v, t) else {
                continue;
            };
            if self.occ.check(self.snap, t, &req).is_some() {
                continue;
            }
            let better = match rule {
                TargetRule::LeastHot => best.is_none_or(|b| h < b.1),
                TargetRule::BestFit => best.is_none_or(|b| h > b.1),
            };
            if better {
                best = Some((t, h));
            }
            found += 1;
            if rule == TargetRule::LeastHot && found >= RELIEF_TARGETS {
                break;
            }
        }
        best
    }

    /// The most allocation and load-under-the-line room any node `relief_target` may pick
    /// for a VM of `s` has, per resource.
    fn relief_room(&self, s: usize) -> RoomBound {
        let rooms = self
            .targets
            .iter()
            .take_while(|&&(k, _)| f64::from_bits(k) < 1.0)
            .filter(|&&(_, t)| t != s)
            .map(|&(_, t)| {
                let n = &self.nodes[t];
                [
                    self.limit[t][CPU] - self.occ.cpu[t],
                    self.limit[t][MEM] - self.occ.memory[t],
                    (self.line[CPU] + EPS) * n.cap[CPU].max(EPS) - n.load[CPU],
                    (self.line[MEM] + EPS) * n.cap[MEM].max(EPS) - n.load[MEM],
                ]
            })
            .collect();
        RoomBound::new(rooms)
    }

    /// Relieves `hot` (hottest first) greedily; when that leaves heat, other node orders (all
    /// of them for a few hot nodes) and the best-fit target rule are tried, and what leaves
    /// the least heat, then the fewest moves, is kept.
    fn relieve_best(&mut self, hot: &[usize]) {
        let base = self.clone();
        self.relieve_all(hot, TargetRule::LeastHot);
        if hot.len() > 4 || self.residual(hot) <= 0.0 {
            return;
        }
        for order in &permutations(hot) {
            for rule in [TargetRule::LeastHot, TargetRule::BestFit] {
                let mut q = base.clone();
                q.relieve_all(order, rule);
                let (rq, rb) = (q.residual(hot), self.residual(hot));
                if rq < rb - EPS || (rq <= rb + EPS && q.moves.len() < self.moves.len()) {
                    *self = q;
                }
                if self.residual(hot) <= 0.0 {
                    return;
                }
            }
        }
    }

    fn relieve_all(&mut self, order: &[usize], rule: TargetRule) {
        for &s in order {
            self.relieve(s, rule);
        }
    }

    /// Heat left above the relief line on `nodes` (0: all relieved).
    fn residual(&self, nodes: &[usize]) -> f64 {
        nodes
            .iter()
            .map(|&i| {
                let n = &self.nodes[i];
                [CPU, MEM]
                    .into_iter()
                    .map(|r| (n.util(r) - self.line[r]).max(0.0))
                    .sum::<f64>()
            })
            .sum()
    }

    /// "node-1 is hot (CPU 92% > 80%)", from the node's current load.
    fn hot_reason(&self, s: usize) -> String {
        {
            let (n, l) = (&self.snap.nodes[s], &self.nodes[s]);
            let mut parts = Vec::new();
            if l.util(CPU) * 100.0 > self.cfg.threshold_cpu {
                parts.push(format!(
                    "CPU {:.0}% > {:.0}%",
                    l.util(CPU) * 100.0,
                    self.cfg.threshold_cpu
                ));
            }
            if l.util(MEM) * 100.0 > self.cfg.threshold_memory {
                parts.push(format!(
                    "memory {:.0}% > {:.0}%",
                    l.util(MEM) * 100.0,
                    self.cfg.threshold_memory
                ));
            }
            if parts.is_empty() {
                // No longer hot, still above its relief line: a relief carried over rounds.
                for (r, what) in [(CPU, "CPU"), (MEM, "memory")] {
                    if l.util(r) > self.line[r] + EPS {
                        parts.push(format!(
                            "{what} {:.0}% > {:.0}%",
                            l.util(r) * 100.0,
                            self.line[r] * 100.0
                        ));
                    }
                }
                return format!("{} is above its relief line ({})", n.name, parts.join(", "));
            }
            format!("{} is hot ({})", n.name, parts.join(", "))
        }
    }

    fn relieve(&mut self, s: usize, rule: TargetRule) {
        let hot_reason = self.hot_reason(s);
        // The last-resort reliefs (swaps, targets above their line) are for a node that is
        // over its threshold when its relief starts; they go on to its line.
        let was_hot = self.over_threshold(s);
        // What the relief targets have room for, at most (see `RoomBound`), and for when.
        let mut room: Option<(u64, RoomBound)> = None;
        while self.budget_left(s) {
            let l = &self.nodes[s];
            let excess = [CPU, MEM].map(|r| (l.load[r] - self.line[r] * l.cap[r]).max(0.0));
            if excess.iter().all(|e| *e <= EPS * 1e3) {
                break;
            }
            // (covers all, coverage, cost, vm, target)
            let mut best: Option<(bool, f64, f64, usize, usize)> = None;
            for &v in &self.node_vms[s] {
                if !self.movable(v) {
                    continue;
                }
                let lv = self.vm_load[v];
                let mut coverage = 0.0;
                let mut covers_all = true;
                for r in [CPU, MEM] {
                    if excess[r] > EPS {
                        coverage += lv[r].min(excess[r]) / excess[r];
                        covers_all &= lv[r] >= excess[r] - EPS;
                    }
                }
                if coverage <= EPS {
                    continue;
                }
                let cost = lv[MEM] + MOVE_OVERHEAD_MIB;
                let better = match &best {
                    None => true,
                    Some(b) => match (covers_all, b.0) {
                        (true, false) => true,
                        (false, true) => false,
                        (true, true) => cost < b.2,
                        (false, false) => coverage > b.1 + EPS || ((coverage - b.1).abs() <= EPS && cost < b.2),
                    },
                };
                if !better {
                    continue;
                }
                let stamp = self.relief_stamp(s) + 1;
                if self.no_target[v] == stamp {
                    continue;
                }
                if room
                    .as_ref()
                    .is_some_and(|r| r.0 == stamp && !r.1.may_fit(self.alloc_of(v), lv))
                {
                    self.no_target[v] = stamp;
                    continue;
                }
                match self.relief_target(v, s, rule) {
                    Some((t, _)) => best = Some((covers_all, coverage, cost, v, t)),
                    None => {
                        self.no_target[v] = stamp;
                        // Searches fail here: the bound spares the next ones the full scan.
                        if room.as_ref().is_none_or(|r| r.0 != stamp) {
                            room = Some((stamp, self.relief_room(s)));
                        }
                    }
                }
            }
            // When no single VM clears the excess, two moves are needed anyway: a pair that
            // makes room on a target and clears it all is as good as it gets.
            let pair = match best {
                Some((true, ..)) => None,
                // Searching pairs is costly: always when stuck, to beat a partial single move
                // only in small clusters, and within a work budget per plan.
                _ if self.pair_work > PAIR_WORK_BUDGET => None,
                None => self.room_making_pair(s, excess),
                Some(_) if self.nodes.len() <= 16 => self.room_making_pair(s, excess).filter(|p| p.4),
                Some(_) => None,
            };
            if pair.is_none() && best.is_none() && self.nodes.len() > exact::MAX_NODES {
                // No VM fits anywhere and the coolest nodes make no room: room made on any
                // node under its line, picked by allocation and headroom (small clusters
                // have the exact search and the unbudgeted relief, which find fewer moves).
                if let Some(steps) = self.room_wide(s, excess) {
                    let t = steps.last().map_or(s, |x| x.2);
                    let why = format!("{} (making room on {})", hot_reason, self.snap.nodes[t].name);
                    for &(v, from, to) in &steps {
                        let reason = if from == s { hot_reason.clone() } else { why.clone() };
                        self.do_move(v, from, to, MoveKind::Relieve, false, reason);
                    }
                    continue;
                }
            }
            if pair.is_none() && best.is_none() && was_hot {
                // Nothing makes room either (every node with headroom is full in allocation,
                // or hot in the other resource): a swap with any node that has headroom
                // where this one is short. Only for a node that was over its threshold when
                // its relief started: one between its relief line and the threshold (a relief
                // carried over rounds) is not worth two moves.
                match self.relief_swap(s, excess) {
                    Some(sw) => {
                        let why = format!("{} (swap with {})", hot_reason, self.snap.nodes[sw.4].name);
                        self.swap_moves_as(sw, MoveKind::Relieve, why);
                        continue;
                    }
                    // Small clusters have the exact search and the staged relief, which keep
                    // every target under its line.
                    None if self.nodes.len() <= exact::MAX_NODES => break,
                    None => match self.soft_relief_move(s, excess) {
                        Some((v, t)) => {
                            self.do_move(v, s, t, MoveKind::Relieve, false, hot_reason.clone());
                            continue;
                        }
                        None => break,
                    },
                }
            }
            match (pair, best) {
                (None, Some((_, _, _, v, t))) => self.do_move(v, s, t, MoveKind::Relieve, false, hot_reason.clone()),
                (None, None) => break,
                (Some((a, t, b, u, _)), _) => {
                    let why = format!("{} (making room on {})", hot_reason, self.snap.nodes[t].name);
                    self.do_move(b, t, u, MoveKind::Relieve, false, why);
                    self.do_move(a, s, t, MoveKind::Relieve, false, hot_reason.clone());
                }
            }
        }
    }

    /// The movable VMs of hot node `s` that take some of its `excess` away, the most first.
    fn relief_offer(&self, s: usize, excess: [f64; 2]) -> Vec<usize> {
        let mut offer: Vec<(f64, usize)> = self.node_vms[s]
            .iter()
            .copied()
            .filter(|&v| self.movable(v))
            .map(|v| (room::coverage(self.vm_load[v], excess), v))
            .filter(|x| x.0 > EPS)
            .collect();
        offer.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        offer.into_iter().map(|x| x.1).collect()
    }

    /// Last resort for a node over its threshold that nothing else relieves: a single move
    /// to a target that ends above its relief line but no more than halfway to its
    /// threshold (still clearly cool), the VM that takes the most excess away first, then
    /// the target left least hot. Where every node with allocation room sits at its relief
    /// line, this is the only relief there is, and a hot host is worse than a target a
    /// point or two above its line.
    fn soft_relief_move(&mut self, s: usize, excess: [f64; 2]) -> Option<(usize, usize)> {
        let thr = [self.cfg.threshold_cpu / 100.0, self.cfg.threshold_memory / 100.0];
        let soft = [CPU, MEM].map(|r| (self.line[r] + thr[r]) / 2.0);
        let max_key = [CPU, MEM]
            .map(|r| soft[r] / self.line[r])
            .into_iter()
            .fold(0.0, f64::max);
        let mut work = 0;
        for v in self.relief_offer(s, excess) {
            let req = self.snap.vms[v].req();
            let mut best: Option<(usize, f64)> = None;
            let mut found = 0;
            for &(k, t) in &self.targets {
                if f64::from_bits(k) > max_key {
                    break;
                }
                work += 1;
                if t == s || !self.alloc_fits(t, &req) {
                    continue;
                }
                let n = &self.nodes[t];
                let after = [CPU, MEM].map(|r| (n.load[r] + self.vm_load[v][r]) / n.cap[r].max(EPS));
                if (0..2).any(|r| after[r] > soft[r] + EPS) || self.occ.check(self.snap, t, &req).is_some() {
                    continue;
                }
                let h = (after[CPU] / soft[CPU]).max(after[MEM] / soft[MEM]);
                if best.is_none_or(|b| h < b.1) {
                    best = Some((t, h));
                }
                found += 1;
                if found >= RELIEF_TARGETS {
                    break;
                }
            }
            if best.is_some() || self.soft_relief_work + work > SOFT_RELIEF_WORK {
                self.soft_relief_work += work;
                return best.map(|(t, _)| (v, t));
            }
        }
        self.soft_relief_work += work;
        None
    }

    fn slots(&self, i: usize) -> u32 {
        self.budget.saturating_sub(self.used[i])
    }

    /// Two moves that together relieve `s` when no single one can: VM `b` leaves target `t`
    /// for `u` (possibly `s` itself: a swap), then VM `a` moves from `s` to `t`. The pair that
    /// clears the most excess wins, then the least memory copied. Looks at the coolest few
    /// targets only.
    /// The last field says whether the pair clears all the excess.
    fn room_making_pair(&mut self, s: usize, excess: [f64; 2]) -> Option<(usize, usize, usize, usize, bool)> {
        const TARGETS: usize = 16;
        let targets: Vec<usize> = self
            .targets
            .iter()
            .map(|&(_, i)| i)
            .filter(|&i| i != s)
            .take(TARGETS)
            .collect();
        let cap_s = self.nodes[s].cap;
        let excess_norm: f64 = [CPU, MEM].into_iter().map(|r| excess[r] / cap_s[r].max(EPS)).sum();
        // (relief, cost, a, t, b, u, clears all)
        let mut best: Option<(f64, f64, usize, usize, usize, usize, bool)> = None;
        let sources: Vec<usize> = self.node_vms[s].iter().copied().filter(|&a| self.movable(a)).collect();
        for &t in &targets {
            if self.slots(t) < 2 {
                continue;
            }
            let on_t: Vec<usize> = self.node_vms[t].iter().copied().filter(|&b| self.movable(b)).collect();
            for &b in &on_t {
                let mut dests = vec![s];
                dests.extend(targets.iter().copied().filter(|&u| u != t));
                for u in dests {
                    let need_s = if u == s { 2 } else { 1 };
                    if self.slots(s) < need_s || (u != s && self.slots(u) < 1) {
                        continue;
                    }
                    let vb = self.snap.vms[b].req();
                    if (u != s && self.under_line_after(b, u).is_none()) || self.occ.check(self.snap, u, &vb).is_some()
                    {
                        continue;
                    }
                    self.pair_work += sources.len() as u64;
                    let lb = self.vm_load[b];
                    let grp_b = self.snap.vms[b].placement.anti_affinity_group.as_deref();
                    let (cb, mb) = (self.snap.vms[b].cpu_cores, self.snap.vms[b].memory_mib);
                    self.occ.remove(t, cb, mb, grp_b);
                    self.occ.add(u, cb, mb, grp_b);
                    for &a in &sources {
                        let la = self.vm_load[a];
                        // t after b leaves and a arrives must stay under the line.
                        // Each resource of t ends under its line or lower than it was (a hot
                        // t may trade: a swap between anti-correlated hosts; one that only
                        // keeps t where it is, above its line, does not cool it).
                        let nt = &self.nodes[t];
                        let fits = [CPU, MEM].into_iter().all(|r| {
                            let after = nt.load[r] - lb[r] + la[r];
                            after / nt.cap[r].max(EPS) <= self.line[r] + EPS || after < nt.load[r] - EPS
                        });
                        if !fits || self.occ.check(self.snap, t, &self.snap.vms[a].req()).is_some() {
                            continue;
                        }
                        // How much of s's excess goes (b comes back to s in a swap).
                        let back = if u == s { lb } else { [0.0; 2] };
                        let mut left = 0.0;
                        let mut t_gain = 0.0;
                        for r in [CPU, MEM] {
                            let after = self.nodes[s].load[r] - la[r] + back[r] - self.line[r] * cap_s[r];
                            left += after.max(0.0) / cap_s[r].max(EPS);
                            // Heat above the line that t sheds (when it was hot itself).
                            let line_t = self.line[r] * nt.cap[r];
                            let (before_t, after_t) = (nt.load[r] - line_t, nt.load[r] - lb[r] + la[r] - line_t);
                            t_gain += (before_t.max(0.0) - after_t.max(0.0)) / nt.cap[r].max(EPS);
                        }
                        // s itself must cool; t's own relief only adds to the score.
                        if excess_norm - left <= EPS {
                            continue;
                        }
                        let relief = excess_norm - left + t_gain;
                        let cost = la[MEM] + lb[MEM] + 2.0 * MOVE_OVERHEAD_MIB;
                        let clears = left <= EPS;
                        let better = best.is_none_or(|x| match (clears, x.6) {
                            (true, false) => true,
                            (false, true) => false,
                            _ => relief > x.0 + EPS || ((relief - x.0).abs() <= EPS && cost < x.1),
                        });
                        if better {
                            best = Some((relief, cost, a, t, b, u, clears));
                        }
                    }
                    self.occ.remove(u, cb, mb, grp_b);
                    self.occ.add(t, cb, mb, grp_b);
                }
            }
        }
        best.map(|(_, _, a, t, b, u, clears)| (a, t, b, u, clears))
    }

    // ---- balancing ----

    /// Capacity of resource `r` per Ready node: the gains are in squared points on a node
    /// of this size.
    fn avg_cap(&self, r: usize) -> f64 {
        self.cap_sum[r] / self.ready_count as f64
    }

    /// The source's side of `gain_from`: Δ(load²/cap) on `s` when `v` leaves it.
    fn leave_terms(&self, v: usize, s: usize) -> [f64; 2] {
        let a = &self.nodes[s];
        [CPU, MEM].map(|r| {
            let l = self.vm_load[v][r];
            l * (2.0 * a.load[r] - l) / a.cap[r].max(EPS)
        })
    }

    /// The gain of moving a VM of load `l`, whose source side is `ds` (`leave_terms`), to
    /// `t`: the reduction of the capacity-weighted sum of squared utilizations, in squared
    /// percentage points on a node of average size, CPU and memory averaged.
    fn gain_from(&self, l: [f64; 2], ds: [f64; 2], t: usize) -> f64 {
        let b = &self.nodes[t];
        let mut g = 0.0;
        for r in [CPU, MEM] {
            if l[r] <= 0.0 || self.cap_sum[r] <= 0.0 {
                continue;
            }
            // Δ(load²/cap) on each side; over the average capacity that is Δ(u²) on an
            // average node.
            let dt = l[r] * (2.0 * b.load[r] + l[r]) / b.cap[r].max(EPS);
            let avg_cap = self.avg_cap(r);
            g += (ds[r] - dt) / avg_cap * 1e4 / 2.0;
        }
        g
    }

    /// What moving `v` from `s` to `t` costs, MiB-equivalents: pre-copy live migration
    /// copies the memory in use, then again what the guest dirties meanwhile (its measured
    /// CPU use scales the dirty rate; at the bandwidth that inflates the copy by 1 / (1 -
    /// dirty / bandwidth)), plus a fixed overhead; migrations already planned on either host
    /// this round run first, so it waits for them.
    pub(super) fn move_cost(&self, v: usize, s: usize, t: usize) -> f64 {
        self.move_cost_queued(v, self.used[s] + self.used[t])
    }

    /// `move_cost` with `queued` migrations already planned on its two hosts (it grows with
    /// them, so `used[s]` alone gives the least cost of any move off `s`).
    pub(super) fn move_cost_queued(&self, v: usize, queued: u32) -> f64 {
        self.copy_cost(v) * self.queue_factor(queued)
    }

    /// `move_cost` before queueing: the copy and the fixed overhead.
    pub(super) fn copy_cost(&self, v: usize) -> f64 {
        self.vm_copy[v]
    }

    /// What `queued` migrations already planned on a move's two hosts multiply its cost by.
    pub(super) fn queue_factor(&self, queued: u32) -> f64 {
        let slots = f64::from(self.cfg.max_concurrent_migrations_per_host.max(1));
        let queued = f64::from(queued) / (2.0 * slots);
        1.0 + QUEUE_COST * queued
    }

    /// Whether a balancing move's gain pays for its cost at this level.
    pub(super) fn pays(&self, gain: f64, cost_mib: f64) -> bool {
        let level = self.cfg.migration_threshold.clamp(3, 5);
        gain >= cost_mib / 1024.0 * gain_per_gib(level)
    }

    /// The single move with the best gain per unit of cost from `sources` to `targets`,
    /// among those whose gain pays for their cost: (gain per cost, vm, source, target).
    fn best_single(&self, sources: &[usize], targets: &[usize], min_gain: f64) -> Option<(f64, usize, usize, usize)> {
        // Most (VM, target) pairs fail on allocation (the coolest nodes are often full):
        // `Occupancy::check`'s CPU and memory tests, with each target's side computed once,
        // come before the gain.
        let room: Vec<(usize, [f64; 2], [f64; 2])> = targets
            .iter()
            .map(|&t| {
                let limit = [self.limit[t][CPU] + EPS, self.limit[t][MEM] + EPS];
                (t, [self.occ.cpu[t], self.occ.memory[t]], limit)
            })
            .collect();
        let mut best: Option<(f64, usize, usize, usize)> = None;
        // Where the best sits in the order (source, VM, target) the candidates are listed in:
        // the first of equal ratios wins, whatever order they are searched in.
        let mut best_at = (0, 0, 0);
        let mut open: Vec<(usize, [f64; 2], [f64; 2])> = Vec::with_capacity(room.len());
        // The movable VMs of a source, smallest memory allocation first: those that fit a
        // target's memory are a prefix, so the many that do not are never visited.
        // Per VM of the source, once one reaches the gain: the source side of its gain and
        // its cost before queueing (computed once, not once per target).
        // ...and an upper bound of its gain per cost on any of the source's targets, so a VM
        // that cannot beat the best so far is passed over without computing its gain.
        let mut terms: Vec<Option<([f64; 2], f64, f64)>> = Vec::new();
        for (si, &s) in sources.iter().enumerate() {
            // (`balance` keeps them sorted; built here only if it did not.)
            let built;
            let vms = match &self.mem_order[s] {
                Some(vms) => vms,
                None => {
                    built = self.mem_order_of(s);
                    &built
                }
            };
            // Targets without room for even the smallest VM of `s` take none of them.
            let small = vms.iter().fold([f64::INFINITY; 2], |m, (a, ..)| {
                [m[CPU].min(a[CPU]), m[MEM].min(a[MEM])]
            });
            open.clear();
            open.extend(room.iter().copied().filter(|&(t, used, limit)| {
                t != s && used[CPU] + small[CPU] <= limit[CPU] && used[MEM] + small[MEM] <= limit[MEM]
            }));
            if open.is_empty() {
                continue;
            }
            terms.clear();
            terms.resize(vms.len(), None);
            let coolest = self.coolest_of(s, open.iter().map(|o| o.0));
            for (ti, &(t, used, limit)) in open.iter().enumerate() {
                let queue = self.queue_factor(self.used[s] + self.used[t]);
                for (k, &(alloc, pos, v)) in vms.iter().enumerate() {
                    // Rounded addition is monotone: the VMs after this one do not fit either.
                    if used[MEM] + alloc[MEM] > limit[MEM] {
                        break;
                    }
                    if used[CPU] + alloc[CPU] > limit[CPU] {
                        continue;
                    }
                    let (ds, copy, most) = *terms[k].get_or_insert_with(|| {
                        let (ds, copy) = (self.leave_terms(v, s), self.copy_cost(v));
                        (ds, copy, self.ratio_bound(v, ds, copy, &coolest))
                    });
                    if best.is_some_and(|b| most < b.0) {
                        continue;
                    }
                    let g = self.gain_from(self.vm_load[v], ds, t);
                    if g < min_gain {
                        continue;
                    }
                    let cost = copy * queue;
                    let at = (si, pos, ti);
                    if best.is_some_and(|b| g / cost < b.0 || (g / cost == b.0 && at > best_at)) || !self.pays(g, cost)
                    {
                        continue;
                    }
                    if self.under_line_after(v, t).is_none()
                        || !self.keeps_peak(t, self.vm_load[v])
                        || !self.lowers_pair(s, t, self.vm_load[v])
                        || self.occ.check(self.snap, t, &self.snap.vms[v].req()).is_some()
                    {
                        continue;
                    }
                    best = Some((g / cost, v, s, t));
                    best_at = at;
                }
            }
        }
        best
    }

    /// Node `s`'s movable VMs, smallest memory allocation first (see `mem_order`).
    fn mem_order_of(&self, s: usize) -> MemOrder {
        let mut vms: Vec<([f64; 2], usize, usize)> = self.node_vms[s]
            .iter()
            .enumerate()
            .filter(|&(_, &v)| self.movable(v))
            .map(|(pos, &v)| (self.alloc_of(v), pos, v))
            .collect();
        // (Unstable is exact: positions are unique.)
        vms.sort_unstable_by(|x, y| x.0[MEM].total_cmp(&y.0[MEM]).then(x.1.cmp(&y.1)));
        vms
    }

    /// For moves off `s` to `targets`: per resource the lowest utilization and the largest
    /// capacity among them, and the least `queue_factor` (see `ratio_bound`).
    fn coolest_of(&self, s: usize, targets: impl Iterator<Item = usize>) -> ([f64; 2], [f64; 2], f64) {
        let (mut util, mut cap, mut queue) = ([f64::INFINITY; 2], [0.0f64; 2], f64::INFINITY);
        for t in targets {
            let n = &self.nodes[t];
            for r in [CPU, MEM] {
                util[r] = util[r].min(n.load[r] / n.cap[r].max(EPS));
                cap[r] = cap[r].max(n.cap[r].max(EPS));
            }
            queue = queue.min(self.queue_factor(self.used[s] + self.used[t]));
        }
        (util, cap, queue)
    }

    /// An upper bound of VM `v`'s gain per cost (`gain_from` over `copy` times the queue
    /// factor) on any target `coolest_of` summarized: a target's term grows with its
    /// utilization and shrinks with its capacity. Infinite when the bound would not be
    /// sound (a gain that may be negative), with a margin for rounding.
    fn ratio_bound(&self, v: usize, ds: [f64; 2], copy: f64, (util, cap, queue): &([f64; 2], [f64; 2], f64)) -> f64 {
        let l = self.vm_load[v];
        let mut g = 0.0;
        let mut size = 0.0;
        for r in [CPU, MEM] {
            if l[r] <= 0.0 || self.cap_sum[r] <= 0.0 {
                continue;
            }
            let dt = l[r] * (2.0 * util[r]) + l[r] * l[r] / cap[r];
            let avg_cap = self.avg_cap(r);
            g += (ds[r] - dt) / avg_cap * 1e4 / 2.0;
            size += (ds[r].abs() + dt.abs()) / avg_cap * 1e4 / 2.0;
        }
        let g = g + 1e-9 * size + 1e-12;
        if g <= 0.0 || copy * queue <= 0.0 {
            return f64::INFINITY;
        }
        g / (copy * queue) * (1.0 + 1e-9)
    }

    /// How far the fullest Ready node is above the cluster mean, percentage points, the
    /// resource that is furthest counting.
    fn spread(&self) -> f64 {
        let mut worst: f64 = 0.0;
        for r in [CPU, MEM] {
            if self.cap_sum[r] <= 0.0 {
                continue;
            }
            let mean = self.load_sum[r] / self.cap_sum[r];
            for n in self.nodes.iter().filter(|n| n.ready) {
                worst = worst.max(n.util(r) - mean);
            }
        }
        worst * 100.0
    }

    /// Imbalance at or below `stop_at` and, when given, spread at or below `spread_stop`.
    fn balanced(&self, stop_at: f64, spread_stop: Option<f64>) -> bool {
        self.imbalance() <= stop_at && spread_stop.is_none_or(|x| self.spread() <= x)
    }

    fn balance(&mut self, stop_at: f64, spread_stop: Option<f64>, min_gain: f64) {
        // Sources that had no worthwhile move or swap in this plan: the next hottest are
        // tried instead, within a work budget.
        let mut stuck = vec![false; self.nodes.len()];
        loop {
            if self.balanced(stop_at, spread_stop) {
                break;
            }
            let sources: Vec<usize> = self
                .sources
                .iter()
                .rev()
                .map(|&(_, i)| i)
                .filter(|&i| !stuck[i] && self.node_vms[i].iter().any(|&v| self.movable(v)))
                .take(BALANCE_SOURCES)
                .collect();
            if sources.is_empty() {
                break;
            }
            for &s in &sources {
                if self.mem_order[s].is_none() {
                    self.mem_order[s] = Some(self.mem_order_of(s));
                }
            }
            let wide: Vec<usize> = self
                .targets
                .iter()
                .map(|&(_, i)| i)
                .take(BALANCE_WIDE_TARGETS)
                .collect();
            let coolest = &wide[..wide.len().min(BALANCE_TARGETS + 1)];
            // The coolest targets first; when allocation keeps every VM off them, warmer
            // ones that still have room (the coolest had no move, so they are not searched
            // again); then a swap.
            let best = self
                .best_single(&sources, coolest, min_gain)
                .map(Ok)
                .or_else(|| self.best_single(&sources, &wide[coolest.len()..], min_gain).map(Ok))
                .or_else(|| self.best_swap(&sources, coolest, min_gain).map(Err));
            let (v, s, t) = match best {
                Some(Ok((_, v, s, t))) => (v, s, t),
                Some(Err(sw)) => {
                    self.do_swap(sw);
                    continue;
                }
                None => {
                    self.wide_work += sources.iter().map(|&i| self.node_vms[i].len() as u64).sum::<u64>()
                        * (wide.len() + coolest.len()) as u64;
                    if self.wide_work > WIDE_WORK_BUDGET {
                        break;
                    }
                    for s in sources {
                        stuck[s] = true;
                    }
                    continue;
                }
            };
            let (a, b) = (&self.nodes[s], &self.nodes[t]);
            let reason = format!(
                "balance: {} at {:.0}% CPU / {:.0}% memory, {} at {:.0}% / {:.0}%; imbalance {:.1} points",
                self.snap.nodes[s].name,
                a.util(CPU) * 100.0,
                a.util(MEM) * 100.0,
                self.snap.nodes[t].name,
                b.util(CPU) * 100.0,
                b.util(MEM) * 100.0,
                self.imbalance()
            );
            self.do_move(v, s, t, MoveKind::Balance, false, reason);
        }
    }

    // ---- applying a move to the model ----

    fn do_move(&mut self, v: usize, s: usize, t: usize, kind: MoveKind, mandatory: bool, reason: String) {
        let vm = &self.snap.vms[v];
        let l = self.vm_load[v];
        let src = &self.nodes[s];
        let source_percent = self.initial_percent[s];
        let impact = [CPU, MEM].map(|r| round2(l[r] / src.cap[r].max(EPS) * 100.0));
        for (i, sign) in [(s, -1.0), (t, 1.0)] {
            let ready = self.nodes[i].ready;
            if ready {
                self.add_sums(i, -1.0);
            }
            for r in [CPU, MEM] {
                self.nodes[i].load[r] = (self.nodes[i].load[r] + sign * l[r]).max(0.0);
            }
            if ready {
                self.add_sums(i, 1.0);
            }
        }
        let group = vm.placement.anti_affinity_group.as_deref();
        self.occ.remove(s, vm.cpu_cores, vm.memory_mib, group);
        self.occ.add(t, vm.cpu_cores, vm.memory_mib, group);
        self.node_vms[s].retain(|&x| x != v);
        self.node_vms[t].push(v);
        self.mem_order[s] = None;
        self.mem_order[t] = None;
        self.vm_node[v] = Some(t);
        self.departures += 1;
        self.departed_from[s] += 1;
        self.moved[v] = true;
        self.used[s] += 1;
        self.used[t] += 1;
        self.index(s);
        self.index(t);
        let memory_mib = l[MEM].round() as u64;
        let bw = self.cfg.migration_bandwidth_mib_per_second.max(1) as u64;
        let estimated_duration_secs = if vm.running { memory_mib.div_ceil(bw) + 1 } else { 1 };
        self.moves.push(PlannedMove {
            vm: vm.id,
            vm_name: vm.name.clone(),
            source: self.snap.nodes[s].id,
            source_name: self.snap.nodes[s].name.clone(),
            target: self.snap.nodes[t].id,
            target_name: self.snap.nodes[t].name.clone(),
            kind,
            priority: Priority::for_move(source_percent, mandatory),
            mandatory,
            reason,
            impact_cpu: impact[CPU],
            impact_memory: impact[MEM],
            memory_mib,
            estimated_duration_secs,
        });
    }
}

/// A move that takes load off a node a later move lands on (room made for it, or the
/// first half of a swap or chain) gets at least that move's priority: worked down by
/// priority, the moves then still run in an order in which each one fits.
/// `Planner::copy_cost` of a VM with load `l` and `cores` vCPUs.
fn copy_cost(l: [f64; 2], cores: u32, cfg: &DrsConfig) -> f64 {
    let mem = l[MEM];
    let busy = (l[CPU] / f64::from(cores.max(1))).clamp(0.0, 1.0);
    let bw = f64::from(cfg.migration_bandwidth_mib_per_second.max(1));
    let ratio = (mem * busy * DIRTY_SHARE_PER_SEC / bw).min(0.9);
    let copied = mem / (1.0 - ratio);
    copied + MOVE_OVERHEAD_MIB
}

fn lift_priorities(moves: &mut [PlannedMove]) {
    let mut later: HashMap<NodeId, Priority> = HashMap::new();
    for m in moves.iter_mut().rev() {
        if let Some(&p) = later.get(&m.source) {
            m.priority = m.priority.min(p);
        }
        let t = later.entry(m.target).or_insert(m.priority);
        *t = (*t).min(m.priority);
    }
}

fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod room_bound_tests {
    use super::RoomBound;

    #[test]
    fn a_vm_with_room_for_each_resource_somewhere_but_on_no_single_node_fits_none() {
        // [vCPUs, MiB allocation, CPU load, memory load] of room: one node has allocation
        // but no CPU headroom, the other CPU headroom but little allocation.
        let rooms = vec![[8.0, 65536.0, 0.1, 60000.0], [1.0, 1024.0, 20.0, 1000.0]];
        let b = RoomBound::new(rooms.clone());
        assert!(!b.may_fit([4.0, 8192.0], [2.0, 4096.0]));
        assert!(b.may_fit([4.0, 8192.0], [0.1, 4096.0]));
        assert!(b.may_fit([1.0, 1024.0], [2.0, 512.0]));
        // A node another has at least as much room as in everything adds nothing.
        let mut more = rooms;
        more.push([4.0, 1024.0, 0.05, 100.0]);
        assert_eq!(RoomBound::new(more).0.len(), 2);
        assert!(!RoomBound::new(Vec::new()).may_fit([0.0; 2], [0.0; 2]));
    }
}

//! DRS planner benchmark: generated clusters (seeded, reproducible) at 3 to 1,000 hosts.
//! For each: imbalance and max node utilization before, after one round and once settled
//! (rounds applied until nothing more moves), the lower bound for max utilization, the max of
//! a from-scratch re-placement within allocation limits, moves, GiB moved and the time of one
//! planning round (median) and of the slowest settling round (one run each). Prints a
//! Markdown table.
//!
//! Run: `cargo bench -p lqx-core --bench drs` (add `-- --quick` for one timing run,
//! `-- --level 5` for another migration threshold level, `--only NAME --hosts N` for one row,
//! and DRS_BENCH_DEBUG=1 to see what keeps the settled hottest host hot; DRS_BENCH_DEBUG=times
//! prints each round's time, moves and hot hosts before and after; DRS_BENCH_SETTLED=FILE
//! writes the settled cluster as JSON lines for offline analysis; DRS_BENCH_ROUNDS=N stops
//! settling after N rounds, e.g. 0 to profile round 1 alone).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lqx_core::drs::dpm::{self, DpmState};
use lqx_core::drs::{DrsState, MigrationHistory, plan};
use lqx_core::model::{DrsConfig, NodeId, NodePhase, VmId};
use lqx_core::placement::{ClusterSnapshot, NodeSnapshot, VmSnapshot, VmUsageSample};
use lqx_core::power::PowerState;
use rand::{Rng, SeedableRng, rngs::StdRng};
use uuid::Uuid;

#[derive(Clone, Copy)]
enum Scenario {
    OneHot,
    Bimodal,
    Gradient,
    Heterogeneous,
    Zipf,
    AntiCorrelated,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::OneHot => "one hot host",
            Scenario::Bimodal => "bimodal 90/10",
            Scenario::Gradient => "linear gradient",
            Scenario::Heterogeneous => "heterogeneous capacities",
            Scenario::Zipf => "Zipf VM sizes",
            Scenario::AntiCorrelated => "CPU- vs memory-heavy",
        }
    }
}

const GIB: u64 = 1024;
/// Settling gives up after this many rounds (the row then says "not settled").
const MAX_ROUNDS: usize = 1000;

fn node(i: usize, cores: u32, memory_gib: u64) -> NodeSnapshot {
    NodeSnapshot {
        id: NodeId(Uuid::from_u128(1 << 64 | i as u128)),
        name: format!("host-{i:04}"),
        cpu_cores: cores,
        memory_mib: memory_gib * GIB,
        cpu_overcommit: 4.0,
        memory_overcommit: 1.0,
        labels: Default::default(),
        schedulable: true,
        phase: NodePhase::Ready,
        usage: None,
    }
}

fn zipf(rng: &mut StdRng, max: u32, s: f64) -> u32 {
    let weights: Vec<f64> = (1..=max).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (k, w) in weights.iter().enumerate() {
        if x < *w {
            return k as u32 + 1;
        }
        x -= w;
    }
    max
}

/// Hosts of 64 cores / 512 GiB (heterogeneous: 16 to 128 cores), each with 10-50 VMs (50 at
/// 1,000 hosts), measured use set so each host lands near the scenario's target.
fn generate(sc: Scenario, hosts: usize, seed: u64) -> ClusterSnapshot {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut nodes = Vec::with_capacity(hosts);
    let mut vms = Vec::new();
    for i in 0..hosts {
        let (cores, mem_gib) = match sc {
            Scenario::Heterogeneous => [(16, 128), (32, 256), (64, 512), (128, 1024)][i % 4],
            _ => (64, 512),
        };
        let n = node(i, cores, mem_gib);
        let count = if hosts >= 1000 { 50 } else { rng.random_range(10..=50) };
        let frac = if hosts > 1 { i as f64 / (hosts - 1) as f64 } else { 0.0 };
        // Target CPU and memory use of the host, and memory per vCPU of its VMs.
        let (tc, tm, gib_per_core) = match sc {
            Scenario::OneHot => (if i == 0 { 0.97 } else { 0.40 }, if i == 0 { 0.80 } else { 0.40 }, 3),
            Scenario::Bimodal => {
                if i % 2 == 0 {
                    (0.90, 0.85, 3)
                } else {
                    (0.10, 0.15, 3)
                }
            }
            Scenario::Gradient => (0.10 + 0.85 * frac, 0.10 + 0.80 * frac, 3),
            // The same load on every host whatever its size (55 % of the mean host): the
            // small hosts run hot, the big ones idle.
            Scenario::Heterogeneous => (
                (0.55 * 60.0 / cores as f64).min(0.98),
                (0.5 * 480.0 / mem_gib as f64).min(0.95),
                3,
            ),
            Scenario::Zipf => (rng.random_range(0.2..0.95), rng.random_range(0.2..0.9), 2),
            Scenario::AntiCorrelated => {
                if i % 2 == 0 {
                    (0.92, 0.20, 1)
                } else {
                    (0.10, 0.92, 4)
                }
            }
        };
        // vCPUs per host ~ 2x its cores (overcommitted), split over `count` VMs.
        let budget_vcpu = 128.0;
        let mut host_vms: Vec<VmSnapshot> = Vec::new();
        let mut alloc_mem = 0u64;
        for _ in 0..count {
            let cores_vm = match sc {
                Scenario::Zipf => zipf(&mut rng, 32, 1.3).max((budget_vcpu / (count as f64 * 4.0)) as u32),
                _ => {
                    let base = [1u32, 2, 4, 8][rng.random_range(0..4)] as f64;
                    ((base * budget_vcpu / (count as f64 * 3.75)).round() as u32).clamp(1, 32)
                }
            };
            let mut mem = cores_vm as u64 * gib_per_core * GIB;
            if alloc_mem + mem > n.memory_mib {
                mem = n.memory_mib - alloc_mem;
                if mem < GIB {
                    break;
                }
            }
            alloc_mem += mem;
            let k = vms.len() + host_vms.len();
            host_vms.push(VmSnapshot {
                id: VmId(Uuid::from_u128(2 << 64 | k as u128)),
                name: format!("vm-{k:06}"),
                node: Some(n.id),
                cpu_cores: cores_vm,
                memory_mib: mem,
                running: true,
                usage: None,
                ha: Default::default(),
                placement: Default::default(),
            });
        }
        let vcpus: f64 = host_vms.iter().map(|v| v.cpu_cores as f64).sum();
        let mems: f64 = host_vms.iter().map(|v| v.memory_mib as f64).sum();
        for v in &mut host_vms {
            let jitter = rng.random_range(0.85..1.15);
            let (cpu_pct, mem_frac) = (
                tc * cores as f64 / vcpus * 100.0 * jitter,
                tm * n.memory_mib as f64 / mems * jitter,
            );
            v.usage = Some(VmUsageSample {
                cpu_percent: cpu_pct.clamp(1.0, 100.0),
                memory_used_mib: (v.memory_mib as f64 * mem_frac.clamp(0.05, 1.0)) as u64,
            });
        }
        vms.extend(host_vms);
        nodes.push(n);
    }
    ClusterSnapshot { nodes, vms }
}

/// The most a node must be used whatever the placement: the cluster mean, or a VM's share
/// of the largest node.
fn lower_bound(s: &ClusterSnapshot) -> f64 {
    let cap_cpu: f64 = s.nodes.iter().map(|n| n.cpu_cores as f64).sum();
    let cap_mem: f64 = s.nodes.iter().map(|n| n.memory_mib as f64).sum();
    let max_cpu = s.nodes.iter().map(|n| n.cpu_cores).max().unwrap_or(1) as f64;
    let max_mem = s.nodes.iter().map(|n| n.memory_mib).max().unwrap_or(1) as f64;
    let load_cpu: f64 = s.vms.iter().map(|v| v.cpu_load()).sum();
    let load_mem: f64 = s.vms.iter().map(|v| v.memory_load_mib()).sum();
    let vm_share = s
        .vms
        .iter()
        .map(|v| (v.cpu_load() / max_cpu).max(v.memory_load_mib() / max_mem))
        .fold(0.0, f64::max);
    (load_cpu / cap_cpu).max(load_mem / cap_mem).max(vm_share) * 100.0
}

/// Whether the lower bound is reachable in the fractional relaxation that keeps allocation
/// limits: give every host the same share of every VM, its share of the cluster's capacity.
/// Then each host's use is exactly the cluster mean (when CPU and memory capacities are in
/// the same proportion across hosts), and its allocation is the same share of the total,
/// within its limit when the total is within the cluster's. When this holds, allocation does
/// not make the lower bound unreachable; only whole VMs and the planner's moves do.
fn fractional_reaches_bound(s: &ClusterSnapshot) -> bool {
    let cap_cpu: f64 = s.nodes.iter().map(|n| n.cpu_cores as f64).sum();
    let cap_mem: f64 = s.nodes.iter().map(|n| n.memory_mib as f64).sum();
    let alloc_cpu: f64 = s.vms.iter().map(|v| v.cpu_cores as f64).sum();
    let alloc_mem: f64 = s.vms.iter().map(|v| v.memory_mib as f64).sum();
    s.nodes.iter().all(|n| {
        let w = n.cpu_cores as f64 / cap_cpu;
        (n.memory_mib as f64 / cap_mem - w).abs() < 1e-9
            && alloc_cpu * w <= n.cpu_limit() + 1e-6
            && alloc_mem * w <= n.memory_limit_mib() + 1e-6
    })
}

/// Max utilization of a full re-placement from scratch (largest VMs first, each to the host
/// left least used that has allocation room): a placement that exists, so the best
/// achievable max is at most this. Ignores how many moves it would take.
fn replacement_max(s: &ClusterSnapshot) -> f64 {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = s.nodes.len();
    let cap: Vec<[f64; 2]> = s
        .nodes
        .iter()
        .map(|x| [x.cpu_cores as f64, x.memory_mib as f64])
        .collect();
    let limit: Vec<[f64; 2]> = s.nodes.iter().map(|x| [x.cpu_limit(), x.memory_limit_mib()]).collect();
    let mut load = vec![[0.0f64; 2]; n];
    let mut alloc = vec![[0.0f64; 2]; n];
    let mut vms: Vec<&VmSnapshot> = s.vms.iter().collect();
    let size = |v: &VmSnapshot| (v.cpu_load() / 64.0).max(v.memory_load_mib() / (512.0 * 1024.0));
    vms.sort_by(|a, b| size(b).total_cmp(&size(a)));
    let util = |l: [f64; 2], c: [f64; 2]| (l[0] / c[0]).max(l[1] / c[1]);
    // Hosts by current utilization (as integer micro-percent for a total order).
    let key = |u: f64| (u * 1e8) as u64;
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = (0..n).map(|i| Reverse((0, i))).collect();
    let mut stale = Vec::new();
    for v in vms {
        let (l, a) = (
            [v.cpu_load(), v.memory_load_mib()],
            [v.cpu_cores as f64, v.memory_mib as f64],
        );
        // The least used hosts first; among the first few that fit, the one left least used.
        let mut best: Option<(f64, usize)> = None;
        let mut looked = 0;
        while let Some(Reverse((k, i))) = heap.pop() {
            stale.push((k, i));
            if alloc[i][0] + a[0] <= limit[i][0] && alloc[i][1] + a[1] <= limit[i][1] {
                let u = util([load[i][0] + l[0], load[i][1] + l[1]], cap[i]);
                if best.is_none_or(|b| u < b.0) {
                    best = Some((u, i));
                }
                looked += 1;
                if looked >= 8 {
                    break;
                }
            }
        }
        for (k, i) in stale.drain(..) {
            if best.is_none_or(|b| b.1 != i) {
                heap.push(Reverse((k, i)));
            }
        }
        let Some((u, i)) = best else { return f64::NAN };
        for r in 0..2 {
            load[i][r] += l[r];
            alloc[i][r] += a[r];
        }
        heap.push(Reverse((key(u), i)));
    }
    (0..n).map(|i| util(load[i], cap[i])).fold(0.0, f64::max) * 100.0
}

fn max_util(m: &lqx_core::drs::ClusterMetrics) -> f64 {
    m.max_cpu_percent.max(m.max_memory_percent)
}

struct Row {
    scenario: &'static str,
    hosts: usize,
    vms: usize,
    imb: [f64; 3],
    max: [f64; 3],
    bound: f64,
    fractional_ok: bool,
    replaced: f64,
    moves_first: usize,
    moves_total: usize,
    rounds: usize,
    gib_moved: f64,
    plan_ms: f64,
    /// The slowest round while settling (one timing each).
    slowest_ms: f64,
}

fn run(sc: Scenario, hosts: usize, quick: bool, level: u8, slots: u32) -> Row {
    let snap = generate(sc, hosts, 42 + hosts as u64);
    let config = DrsConfig {
        hysteresis_hold_count: 1,
        migration_threshold: level,
        max_concurrent_migrations_per_host: 2,
        migrations_per_host_per_round: slots,
        ..DrsConfig::default()
    };
    let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
    let none = MigrationHistory::default();
    // Time one round (median).
    let reps = if quick {
        1
    } else if hosts >= 96 {
        7
    } else {
        31
    };
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let p = plan(&snap, &config, &DrsState::default(), &none, now);
            let d = t.elapsed();
            std::hint::black_box(p);
            d
        })
        .collect();
    times.sort();
    let plan_ms = times[times.len() / 2].as_secs_f64() * 1e3;
    // Settle: apply rounds, one every `interval` as the engine runs them, until nothing
    // moves. The history ages as in a real cluster (a VM may move again once its
    // `recent_migration_window` has passed), so a plan that ping-pongs would not settle.
    let mut s = snap.clone();
    let mut state = DrsState::default();
    let mut history = MigrationHistory::default();
    let mut now = now;
    let first = plan(&s, &config, &state, &history, now);
    let (mut total, mut rounds, mut mib) = (0, 0, 0u64);
    let mut last_after = first.after.clone();
    let mut p = first.clone();
    let mut slowest = Duration::ZERO;
    if std::env::var("DRS_BENCH_DEBUG").is_ok_and(|v| v == "times") {
        eprintln!(
            "round 1: {plan_ms:.1} ms, {} moves, max {:.1} -> {:.1}{}",
            first.moves.len(),
            max_util(&first.before),
            max_util(&first.after),
            if first.state.staged.is_some() {
                ", staged relief carried"
            } else {
                ""
            }
        );
    }
    let max_rounds = std::env::var("DRS_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MAX_ROUNDS);
    while !p.moves.is_empty() && rounds < max_rounds {
        rounds += 1;
        if std::env::var("DRS_BENCH_DEBUG").is_ok_and(|v| v == "moves") {
            for m in &p.moves {
                eprintln!(
                    "round {rounds}: {} {} -> {} ({} MiB): {}",
                    m.vm_name, m.source_name, m.target_name, m.memory_mib, m.reason
                );
            }
        }
        total += p.moves.len();
        mib += p.memory_moved_mib();
        for m in &p.moves {
            history.record(m.vm, m.source, m.target, now);
        }
        p.apply(&mut s);
        state = p.state.clone();
        last_after = p.after.clone();
        now += config.interval;
        history.prune(now, config.recent_migration_window);
        let t = Instant::now();
        p = plan(&s, &config, &state, &history, now);
        slowest = slowest.max(t.elapsed());
        if std::env::var("DRS_BENCH_DEBUG").is_ok_and(|v| v == "times") {
            // Hot hosts (above a threshold) before and after this round's plan, and those
            // the plan reports it found no relief for.
            let hot = |m: &lqx_core::drs::ClusterMetrics| {
                m.nodes
                    .iter()
                    .filter(|n| n.cpu_percent > config.threshold_cpu || n.memory_percent > config.threshold_memory)
                    .count()
            };
            eprintln!(
                "round {}: {:.1} ms, {} moves, hot {} -> {} ({} unrelieved), max {:.1} -> {:.1}{}",
                rounds + 1,
                t.elapsed().as_secs_f64() * 1e3,
                p.moves.len(),
                hot(&p.before),
                hot(&p.after),
                p.unrelieved.len(),
                max_util(&p.before),
                max_util(&p.after),
                if p.state.staged.is_some() {
                    ", staged relief carried"
                } else {
                    ""
                }
            );
        }
    }
    // DRS_BENCH_SETTLED=FILE: the settled cluster as JSON lines (nodes, then VMs with
    // their load and whether the no-ping-pong window holds them), for offline analysis.
    if let Ok(file) = std::env::var("DRS_BENCH_SETTLED") {
        let mut out = String::new();
        for n in &s.nodes {
            out += &format!(
                "{{\"node\": \"{}\", \"cores\": {}, \"mib\": {}}}\n",
                n.name, n.cpu_cores, n.memory_mib
            );
        }
        for v in &s.vms {
            let node = v.node.and_then(|id| s.node(id)).map_or("", |n| n.name.as_str());
            out += &format!(
                "{{\"vm\": \"{}\", \"at\": \"{node}\", \"vcpu\": {}, \"mib\": {}, \"cpu\": {:.4}, \"mem\": {:.1}, \"recent\": {}}}\n",
                v.name,
                v.cpu_cores,
                v.memory_mib,
                v.cpu_load(),
                v.memory_load_mib(),
                history.moved_recently(v.id, now, config.recent_migration_window)
            );
        }
        std::fs::write(&file, out).expect("writing the settled cluster");
    }
    // DRS_BENCH_DEBUG=1: what keeps the settled hottest host where it is.
    if std::env::var("DRS_BENCH_DEBUG").is_ok() {
        let util = |n: &&lqx_core::drs::NodeMetrics| n.cpu_percent.max(n.memory_percent);
        let hottest = last_after
            .nodes
            .iter()
            .max_by(|a, b| util(a).total_cmp(&util(b)))
            .unwrap();
        let on: Vec<_> = s.vms.iter().filter(|v| Some(hottest.id) == v.node).collect();
        let window = config.recent_migration_window;
        let recent = on.iter().filter(|v| history.moved_recently(v.id, now, window)).count();
        let alloc: u64 = on.iter().map(|v| v.memory_mib).sum();
        let cap = s.node(hottest.id).map_or(0, |n| n.memory_mib);
        eprintln!(
            "{} {hosts}: hottest {} at {:.1}% CPU / {:.1}% memory, {} VMs ({recent} moved), {alloc} of {cap} MiB allocated",
            sc.name(),
            hottest.name,
            hottest.cpu_percent,
            hottest.memory_percent,
            on.len()
        );
        // How many hosts are how far above the hottest one's level less 1, 2, 5 points.
        let top = util(&hottest);
        let above = |d: f64| last_after.nodes.iter().filter(|n| util(n) > top - d).count();
        eprintln!(
            "hosts within 1 / 2 / 5 points of the hottest: {} / {} / {}",
            above(1.0),
            above(2.0),
            above(5.0)
        );
        // How much allocation room the cluster has left, and where.
        let mut free: Vec<u64> = s
            .nodes
            .iter()
            .map(|n| {
                let used: u64 = s
                    .vms
                    .iter()
                    .filter(|v| v.node == Some(n.id))
                    .map(|v| v.memory_mib)
                    .sum();
                n.memory_mib.saturating_sub(used)
            })
            .collect();
        free.sort_unstable();
        let total: u64 = free.iter().sum();
        eprintln!(
            "free memory allocation: {} GiB in all; hosts with >= 8 / 16 / 32 / 64 GiB free: {} / {} / {} / {}",
            total / 1024,
            free.iter().filter(|&&f| f >= 8 * 1024).count(),
            free.iter().filter(|&&f| f >= 16 * 1024).count(),
            free.iter().filter(|&&f| f >= 32 * 1024).count(),
            free.iter().filter(|&&f| f >= 64 * 1024).count()
        );
        if hosts <= 8 {
            for n in &last_after.nodes {
                let node = s.node(n.id).unwrap();
                let vms: Vec<_> = s.vms.iter().filter(|v| v.node == Some(n.id)).collect();
                let (c, m): (u64, u64) = (
                    vms.iter().map(|v| v.cpu_cores as u64).sum(),
                    vms.iter().map(|v| v.memory_mib).sum(),
                );
                eprintln!(
                    "  {} {} cores {} MiB: {:.1}% CPU {:.1}% mem, {} VMs, alloc {c} vCPU {m} MiB",
                    n.name,
                    node.cpu_cores,
                    node.memory_mib,
                    n.cpu_percent,
                    n.memory_percent,
                    vms.len()
                );
            }
        }
        // Per VM: nodes with allocation room for it, and of those, the ones it would not
        // take above the hottest host's excess less half a point (a peak move's condition).
        let caps: Vec<[f64; 2]> = last_after
            .nodes
            .iter()
            .map(|n| {
                s.node(n.id)
                    .map_or([0.0; 2], |x| [x.cpu_cores as f64, x.memory_mib as f64])
            })
            .collect();
        let loads: Vec<[f64; 2]> = last_after
            .nodes
            .iter()
            .zip(&caps)
            .map(|(n, c)| [n.cpu_percent / 100.0 * c[0], n.memory_percent / 100.0 * c[1]])
            .collect();
        let mean = [0, 1].map(|r| loads.iter().map(|l| l[r]).sum::<f64>() / caps.iter().map(|c| c[r]).sum::<f64>());
        let excess = |i: usize, add: [f64; 2]| {
            [0, 1]
                .map(|r| ((loads[i][r] + add[r]) / caps[i][r] - mean[r]) * 100.0)
                .into_iter()
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let hi = last_after.nodes.iter().position(|n| n.id == hottest.id).unwrap();
        let e_s = excess(hi, [0.0; 2]);
        let alloc_of = |id| {
            s.vms
                .iter()
                .filter(|v| v.node == Some(id))
                .fold([0u64; 2], |a, v| [a[0] + v.cpu_cores as u64, a[1] + v.memory_mib])
        };
        let allocs: Vec<[u64; 2]> = last_after.nodes.iter().map(|n| alloc_of(n.id)).collect();
        eprintln!(
            "hottest excess {e_s:.2} points (means {:.1}% CPU, {:.1}% memory)",
            mean[0] * 100.0,
            mean[1] * 100.0
        );
        for v in &on {
            let l = [v.cpu_load(), v.memory_load_mib()];
            let left = excess(hi, [-l[0], -l[1]]);
            let mut room = 0;
            let mut lowering = 0;
            for (i, n) in last_after.nodes.iter().enumerate() {
                let node = s.node(n.id).unwrap();
                let fits = allocs[i][0] + v.cpu_cores as u64 <= (node.cpu_cores as f64 * node.cpu_overcommit) as u64
                    && allocs[i][1] + v.memory_mib <= node.memory_mib;
                if i == hi || !fits {
                    continue;
                }
                room += 1;
                if left.max(excess(i, l)) <= e_s - 0.5 {
                    lowering += 1;
                }
            }
            eprintln!(
                "   {} {} vCPU {} MiB, use {:.2} cores {:.0} MiB: source left at {left:.2}; room on {room} nodes, {lowering} of them lower the peak",
                v.name,
                v.cpu_cores,
                v.memory_mib,
                v.cpu_load(),
                v.memory_load_mib()
            );
        }
    }
    Row {
        scenario: sc.name(),
        hosts,
        vms: snap.vms.len(),
        imb: [first.before.imbalance, first.after.imbalance, last_after.imbalance],
        max: [max_util(&first.before), max_util(&first.after), max_util(&last_after)],
        bound: lower_bound(&snap),
        fractional_ok: fractional_reaches_bound(&snap),
        replaced: replacement_max(&snap),
        moves_first: first.moves.len(),
        moves_total: total,
        rounds,
        gib_moved: mib as f64 / 1024.0,
        plan_ms,
        slowest_ms: slowest.as_secs_f64() * 1e3,
    }
}

const SCENARIOS: [Scenario; 6] = [
    Scenario::OneHot,
    Scenario::Bimodal,
    Scenario::Gradient,
    Scenario::Heterogeneous,
    Scenario::Zipf,
    Scenario::AntiCorrelated,
];

/// The cluster the bench generates for `sc` at `hosts` hosts, as a cluster file.
fn cluster_file(sc: Scenario, hosts: usize) -> String {
    let s = generate(sc, hosts, 42 + hosts as u64);
    let mut out = format!(
        "# {} at {hosts} hosts, as the DRS bench generates it (--dump).\nnodes:\n",
        sc.name()
    );
    for n in &s.nodes {
        out += &format!(
            "  - {{name: {}, cpu_cores: {}, memory_mib: {}}}\n",
            n.name, n.cpu_cores, n.memory_mib
        );
    }
    out += "vms:\n";
    for v in &s.vms {
        let node = s.node(v.node.expect("placed")).expect("known").name.clone();
        let u = v.usage.expect("measured");
        out += &format!(
            "  - {{name: {}, node: {node}, cpu_cores: {}, memory_mib: {}, usage: {{cpu_percent: {:.3}, memory_mib: {}}}}}\n",
            v.name, v.cpu_cores, v.memory_mib, u.cpu_percent, u.memory_used_mib
        );
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let level: u8 = args
        .iter()
        .position(|a| a == "--level")
        .and_then(|i| args.get(i + 1))
        .and_then(|l| l.parse().ok())
        .unwrap_or(3);
    // Optional filters: `--only zipf` (scenario name contains), `--hosts 1000`.
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let only = arg("--only").map(|o| o.to_lowercase());
    let only_hosts: Option<usize> = arg("--hosts").and_then(|h| h.parse().ok());
    // `--max-hosts 96`: leave out the larger clusters (a shorter run).
    let max_hosts: usize = arg("--max-hosts").and_then(|h| h.parse().ok()).unwrap_or(usize::MAX);
    // `--slots N`: migrations per host per round (migrations_per_host_per_round; 0: derived
    // from migration capacity, the default config).
    let slots: u32 = arg("--slots").and_then(|h| h.parse().ok()).unwrap_or(0);
    if args.iter().any(|a| a == "--compare") {
        // `--compare --skip-level-5`: the reference and level 3 only (a quicker run).
        // `--age`: settled only once a round plans nothing with no VM held by the window.
        compare(
            only.as_deref(),
            !args.iter().any(|a| a == "--skip-level-5"),
            args.iter().any(|a| a == "--age"),
        );
        return;
    }
    if args.iter().any(|a| a == "--dpm") {
        let watts: f64 = arg("--watts").and_then(|w| w.parse().ok()).unwrap_or(350.0);
        dpm_bench(watts);
        return;
    }
    // `--dump FILE` with `--only` and `--hosts`: writes that cluster as a cluster file (for
    // `lqx drs simulate` or a scenario test) instead of benchmarking.
    if let (Some(file), Some(o), Some(h)) = (arg("--dump"), &only, only_hosts) {
        let sc = SCENARIOS
            .into_iter()
            .find(|sc| sc.name().to_lowercase().contains(o.as_str()))
            .expect("--only names a scenario");
        std::fs::write(&file, cluster_file(sc, h)).expect("writing the cluster file");
        return;
    }
    println!(
        "DRS planner, migration threshold level {level}, otherwise default config (thresholds 80/85, margin 5), {} migrations per host per round.",
        if slots == 0 {
            "derived (migration capacity)".to_string()
        } else {
            slots.to_string()
        }
    );
    println!(
        "Max util: the fuller resource of the busiest host, %. Settled: rounds applied until a round plans nothing."
    );
    println!(
        "Lower bound: cluster mean or one VM's share of the largest host; \"(alloc?)\" marks a cluster where the fractional relaxation under allocation limits was not shown to reach it. Re-placement: max util of a from-scratch packing within allocation (an achievable placement, moves not counted).\n"
    );
    println!(
        "| scenario | hosts | VMs | imbalance before → round 1 → settled | max util before → round 1 → settled | lower bound | re-placement | settled - bound | moves round 1 / settled (rounds) | GiB moved | plan ms (round 1) | slowest round ms |"
    );
    println!("|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|");
    for sc in SCENARIOS {
        if only
            .as_ref()
            .is_some_and(|o| !sc.name().to_lowercase().contains(o.as_str()))
        {
            continue;
        }
        for hosts in [3, 8, 32, 96, 1000] {
            if only_hosts.is_some_and(|h| h != hosts) || hosts > max_hosts {
                continue;
            }
            let r = run(sc, hosts, quick, level, slots);
            println!(
                "| {} | {} | {} | {:.1} → {:.1} → {:.1} | {:.1} → {:.1} → {:.1} | {:.1}{} | {:.1} | {:+.1} | {} / {} ({}{}) | {:.1} | {:.2} | {:.1} |",
                r.scenario,
                r.hosts,
                r.vms,
                r.imb[0],
                r.imb[1],
                r.imb[2],
                r.max[0],
                r.max[1],
                r.max[2],
                r.bound,
                if r.fractional_ok { "" } else { " (alloc?)" },
                r.replaced,
                r.max[2] - r.bound,
                r.moves_first,
                r.moves_total,
                r.rounds,
                if r.rounds >= MAX_ROUNDS { ", not settled" } else { "" },
                r.gib_moved,
                r.plan_ms,
                r.slowest_ms.max(r.plan_ms)
            );
        }
    }
}

// ---- the reference search and the comparison (`--compare`) ----------------------------------

/// Per host (capacity, load, allocation, allocation limit), per resource.
struct Model {
    cap: Vec<[f64; 2]>,
    load: Vec<[f64; 2]>,
    alloc: Vec<[f64; 2]>,
    limit: Vec<[f64; 2]>,
    on: Vec<Vec<usize>>,
}

impl Model {
    fn new(s: &ClusterSnapshot) -> Model {
        let n = s.nodes.len();
        let mut m = Model {
            cap: s
                .nodes
                .iter()
                .map(|x| [x.cpu_cores as f64, x.memory_mib as f64])
                .collect(),
            load: vec![[0.0; 2]; n],
            alloc: vec![[0.0; 2]; n],
            limit: s.nodes.iter().map(|x| [x.cpu_limit(), x.memory_limit_mib()]).collect(),
            on: vec![Vec::new(); n],
        };
        for (k, v) in s.vms.iter().enumerate() {
            let i = s.nodes.iter().position(|x| Some(x.id) == v.node).expect("placed");
            m.load[i][0] += v.cpu_load();
            m.load[i][1] += v.memory_load_mib();
            m.alloc[i][0] += v.cpu_cores as f64;
            m.alloc[i][1] += v.memory_mib as f64;
            m.on[i].push(k);
        }
        m
    }
    fn util(&self, i: usize, d: [f64; 2]) -> f64 {
        ((self.load[i][0] + d[0]) / self.cap[i][0]).max((self.load[i][1] + d[1]) / self.cap[i][1]) * 100.0
    }
    fn peak(&self) -> (usize, f64) {
        (0..self.cap.len())
            .map(|i| (i, self.util(i, [0.0; 2])))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
    }
}

/// The reference: best-improvement greedy on the peak. Each step takes the hottest host and
/// makes the single move (any running VM on it, any host with allocation room) that leaves
/// the larger of the two hosts' utilization lowest (ties: least memory copied), if that is
/// below the hottest's current level; it stops when no move lowers the hottest host.
/// Returns (settled max util, moves, GiB copied).
fn reference_greedy(s: &ClusterSnapshot) -> (f64, usize, f64) {
    let mut m = Model::new(s);
    let (mut moves, mut mib) = (0usize, 0.0f64);
    for _ in 0..200_000 {
        let (h, top) = m.peak();
        let mut best: Option<(f64, f64, usize, usize)> = None;
        for &k in &m.on[h] {
            let v = &s.vms[k];
            if !v.running {
                continue;
            }
            let l = [v.cpu_load(), v.memory_load_mib()];
            let a = [v.cpu_cores as f64, v.memory_mib as f64];
            let src = m.util(h, [-l[0], -l[1]]);
            for t in 0..m.cap.len() {
                if t == h || m.alloc[t][0] + a[0] > m.limit[t][0] + 1e-9 || m.alloc[t][1] + a[1] > m.limit[t][1] + 1e-9
                {
                    continue;
                }
                let after = src.max(m.util(t, l));
                if after >= top - 1e-6 {
                    continue;
                }
                if best.is_none_or(|b| after < b.0 - 1e-9 || ((after - b.0).abs() <= 1e-9 && l[1] < b.1)) {
                    best = Some((after, l[1], k, t));
                }
            }
        }
        let Some((_, mem, k, t)) = best else { break };
        let v = &s.vms[k];
        let (l, a) = (
            [v.cpu_load(), v.memory_load_mib()],
            [v.cpu_cores as f64, v.memory_mib as f64],
        );
        for r in 0..2 {
            m.load[h][r] -= l[r];
            m.load[t][r] += l[r];
            m.alloc[h][r] -= a[r];
            m.alloc[t][r] += a[r];
        }
        m.on[h].retain(|&x| x != k);
        m.on[t].push(k);
        moves += 1;
        mib += mem;
    }
    (m.peak().1, moves, mib / 1024.0)
}

struct Settled {
    peak: f64,
    moves: usize,
    gib: f64,
    rounds: usize,
    /// Rounds until no host is above a threshold (0: none was).
    rounds_to_relief: usize,
}

/// Rounds applied one `interval` apart until a round plans nothing (as `run` settles).
fn settle(snap: &ClusterSnapshot, config: &DrsConfig, age: bool) -> Settled {
    let mut s = snap.clone();
    let mut state = DrsState::default();
    let mut history = MigrationHistory::default();
    let mut now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
    let (mut moves, mut mib, mut rounds, mut relief) = (0, 0u64, 0, None);
    let hot = |m: &lqx_core::drs::ClusterMetrics| {
        m.nodes
            .iter()
            .any(|n| n.cpu_percent > config.threshold_cpu || n.memory_percent > config.threshold_memory)
    };
    let last = loop {
        let p = plan(&s, config, &state, &history, now);
        if relief.is_none() && !hot(&p.before) {
            relief = Some(rounds);
        }
        // `--age`: a round that plans nothing while VMs are still held by the no-ping-pong
        // window is not the end: the engine plans again every `interval`, and once the
        // window has passed those VMs may move again.
        if p.moves.is_empty() && age && !history.records.is_empty() && rounds < MAX_ROUNDS {
            state = p.state.clone();
            now += config.interval;
            history.prune(now, config.recent_migration_window);
            continue;
        }
        if p.moves.is_empty() || rounds >= MAX_ROUNDS {
            break if p.moves.is_empty() { p.before } else { p.after };
        }
        rounds += 1;
        moves += p.moves.len();
        mib += p.memory_moved_mib();
        for m in &p.moves {
            history.record(m.vm, m.source, m.target, now);
        }
        p.apply(&mut s);
        state = p.state.clone();
        now += config.interval;
        history.prune(now, config.recent_migration_window);
    };
    Settled {
        peak: max_util(&last),
        moves,
        gib: mib as f64 / 1024.0,
        rounds,
        rounds_to_relief: relief.unwrap_or(rounds),
    }
}

/// Level 3 and 5 (default config otherwise: the round budget derived from migration
/// capacity) against the reference, on the bench's clusters and on clusters generated with
/// other seeds.
fn compare(only: Option<&str>, with_l5: bool, age: bool) {
    let mut clusters: Vec<(String, ClusterSnapshot)> = Vec::new();
    for sc in SCENARIOS {
        for hosts in [8, 32, 96] {
            clusters.push((
                format!("{} {hosts} (bench)", sc.name()),
                generate(sc, hosts, 42 + hosts as u64),
            ));
        }
    }
    for (sc, hosts, seed) in [
        (Scenario::Zipf, 200, 7),
        (Scenario::Heterogeneous, 7, 11),
        (Scenario::Bimodal, 50, 3),
        (Scenario::Gradient, 40, 5),
        (Scenario::AntiCorrelated, 24, 9),
        (Scenario::OneHot, 20, 13),
    ] {
        clusters.push((
            format!("{} {hosts} (seed {seed})", sc.name()),
            generate(sc, hosts, seed),
        ));
    }
    println!("DRS against the best-improvement greedy reference (peak: max util settled, %).");
    println!(
        "| cluster | peak before | reference: peak / moves / GiB | level 3: peak / moves / GiB (rounds, to relief) | L3 vs ref: peak Δ, moves ×, GiB × | level 5: peak / moves / GiB (rounds) | L3 moves / GiB per point removed | L5 moves / GiB per point removed | ref moves / GiB per point removed |"
    );
    println!("|---|---:|---|---|---|---|---|---|---|");
    let (mut met, mut total, mut below) = (0, 0, 0);
    for (name, snap) in clusters {
        if only.is_some_and(|o| !name.to_lowercase().contains(o)) {
            continue;
        }
        let before = Model::new(&snap).peak().1;
        let (rp, rm, rg) = reference_greedy(&snap);
        let c3 = DrsConfig {
            hysteresis_hold_count: 1,
            ..DrsConfig::default()
        };
        let c5 = DrsConfig {
            migration_threshold: 5,
            ..c3.clone()
        };
        let l3 = settle(&snap, &c3, age);
        let l5 = if with_l5 {
            settle(&snap, &c5, age)
        } else {
            Settled {
                peak: f64::NAN,
                moves: 0,
                gib: 0.0,
                rounds: 0,
                rounds_to_relief: 0,
            }
        };
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                a / b
            } else if a > 0.0 {
                f64::INFINITY
            } else {
                1.0
            }
        };
        let ok = l3.peak <= rp + 5.0 && l3.moves as f64 <= 1.2 * rm as f64 + 1e-9 && l3.gib <= 1.2 * rg + 1e-9;
        total += 1;
        met += ok as usize;
        // Level 3 far below the reference's peak: spent more to remove more; compare what
        // each point removed cost instead.
        let (d3, dr) = ((before - l3.peak).max(1e-9), (before - rp).max(1e-9));
        let better = !ok
            && l3.peak < rp - 5.0
            && l3.moves as f64 / d3 <= 1.2 * rm as f64 / dr + 1e-9
            && l3.gib / d3 <= 1.2 * rg / dr + 1e-9;
        below += better as usize;
        let per = |moves: usize, gib: f64, peak: f64| {
            let d = (before - peak).max(1e-9);
            format!("{:.1} / {:.1}", moves as f64 / d, gib / d)
        };
        println!(
            "| {name} | {before:.1} | {rp:.1} / {rm} / {rg:.0} | {:.1} / {} / {:.0} ({}, {}) | {:+.1}, {:.2}, {:.2}{} | {:.1} / {} / {:.0} ({}) | {} | {} | {} |",
            l3.peak,
            l3.moves,
            l3.gib,
            l3.rounds,
            l3.rounds_to_relief,
            l3.peak - rp,
            ratio(l3.moves as f64, rm as f64),
            ratio(l3.gib, rg),
            if ok {
                ""
            } else if better {
                " (below)"
            } else {
                " ✗"
            },
            l5.peak,
            l5.moves,
            l5.gib,
            l5.rounds,
            per(l3.moves, l3.gib, l3.peak),
            per(l5.moves, l5.gib, l5.peak),
            per(rm, rg, rp),
        );
    }
    println!(
        "\nLevel-3 goal (peak within 5 points of the reference, at most 1.2x its moves and GiB) met on {met} of {total} clusters; \
         on {below} more (marked \"(below)\") level 3 settles more than 5 points below the reference's peak, at no more than 1.2x its moves and GiB per point removed."
    );
}

// ---- DPM (`--dpm`) ---------------------------------------------------------------------------

/// Light-load clusters: hosts of 64 cores / 512 GiB (heterogeneous: 16-128 cores) at 10-35 %
/// use, HA on every VM. DPM (full automation, hold count 1) with DRS at level 3, run until
/// nothing changes: hosts powered off, the energy that saves, the peak after consolidation.
fn dpm_bench(watts: f64) {
    println!(
        "DPM on light-load clusters ({watts:.0} W per host on), DRS level 3, default thresholds (80/85, margin 5), DPM band 45-65 %, N+1."
    );
    println!(
        "| cluster | hosts | VMs | mean use before | hosts off | energy saved | peak before → after | moves | GiB moved | rounds | plan ms (slowest DPM round) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    for (sc, hosts, seed, level) in [
        (Scenario::Gradient, 8, 1, 0.25),
        (Scenario::Gradient, 32, 2, 0.25),
        (Scenario::Zipf, 32, 3, 0.3),
        (Scenario::Heterogeneous, 16, 4, 0.3),
        (Scenario::Gradient, 200, 5, 0.3),
        (Scenario::Zipf, 200, 6, 0.35),
    ] {
        let mut snap = generate(sc, hosts, seed);
        // Scale use down to a light load (about `level` of the generated one's mean).
        for v in &mut snap.vms {
            if let Some(u) = &mut v.usage {
                u.cpu_percent *= level;
                u.memory_used_mib = (u.memory_used_mib as f64 * level) as u64;
            }
            v.ha.enabled = true;
        }
        let config = DrsConfig {
            hysteresis_hold_count: 1,
            dpm: lqx_core::model::DpmConfig {
                enabled: true,
                automation_level: lqx_core::model::AutomationLevel::Full,
                hold_count: 1,
                watts_per_host: watts,
                ..Default::default()
            },
            ..DrsConfig::default()
        };
        let mut power: std::collections::HashMap<NodeId, PowerState> = Default::default();
        let mut state = DrsState::default();
        let mut dstate = DpmState::default();
        let mut history = MigrationHistory::default();
        let mut now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let peak_before = Model::new(&snap).peak().1;
        let mean_before = dpm::plan(&snap, &config, &power, &DpmState::default(), &[], &[]).mean_before;
        let (mut moves, mut mib, mut rounds, mut slowest) = (0usize, 0u64, 0usize, Duration::ZERO);
        loop {
            let p = plan(&snap, &config, &state, &history, now);
            state = p.state.clone();
            p.apply(&mut snap);
            let t = Instant::now();
            let d = dpm::plan(&snap, &config, &power, &dstate, &[], &[]);
            slowest = slowest.max(t.elapsed());
            dstate = d.state.clone();
            for m in p.moves.iter().chain(&d.evacuations) {
                history.record(m.vm, m.source, m.target, now);
            }
            for m in &d.evacuations {
                snap.vms.iter_mut().find(|v| v.id == m.vm).unwrap().node = Some(m.target);
            }
            moves += p.moves.len() + d.evacuations.len();
            mib += p.memory_moved_mib() + d.evacuations.iter().map(|m| m.memory_mib).sum::<u64>();
            for a in &d.power_off {
                power.insert(a.node, PowerState::Standby);
                snap.nodes.iter_mut().find(|n| n.id == a.node).unwrap().phase = NodePhase::NotReady;
            }
            for a in &d.power_on {
                power.insert(a.node, PowerState::On);
                snap.nodes.iter_mut().find(|n| n.id == a.node).unwrap().phase = NodePhase::Ready;
            }
            now += config.interval;
            history.prune(now, config.recent_migration_window);
            let changed =
                !p.moves.is_empty() || !d.evacuations.is_empty() || !d.power_on.is_empty() || !d.power_off.is_empty();
            if !changed || rounds >= 100 {
                break;
            }
            rounds += 1;
        }
        let off = power.values().filter(|p| **p == PowerState::Standby).count();
        let on: Vec<usize> = (0..snap.nodes.len())
            .filter(|&i| snap.nodes[i].phase == NodePhase::Ready)
            .collect();
        let m = Model::new(&snap);
        let peak_after = on.iter().map(|&i| m.util(i, [0.0; 2])).fold(0.0, f64::max);
        assert!(lqx_core::ha::admission(&snap).protected, "N+1 lost");
        println!(
            "| {} (seed {seed}) | {hosts} | {} | {mean_before:.1} % | {off} | {:.1} kW ({:.0} kWh/day) | {peak_before:.1} → {peak_after:.1} | {moves} | {:.0} | {rounds} | {:.2} |",
            sc.name(),
            snap.vms.len(),
            dpm::watts_saved(&config, off) / 1000.0,
            dpm::watts_saved(&config, off) * 24.0 / 1000.0,
            mib as f64 / 1024.0,
            slowest.as_secs_f64() * 1e3,
        );
    }
}

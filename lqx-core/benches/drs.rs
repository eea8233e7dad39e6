//! DRS planner benchmark: generated clusters (seeded, reproducible) at 3 to 1,000 hosts.
//! For each: imbalance and max node utilization before, after one round and once settled
//! (rounds applied until nothing more moves), the lower bound for max utilization, moves,
//! GiB moved and the time of one planning round (median). Prints a Markdown table.
//!
//! Run: `cargo bench -p lqx-core --bench drs` (add `-- --quick` for one timing run, and
//! `-- --level 5` for another migration threshold level).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lqx_core::drs::{DrsState, MigrationHistory, plan};
use lqx_core::model::{DrsConfig, NodeId, NodePhase, VmId};
use lqx_core::placement::{ClusterSnapshot, NodeSnapshot, VmSnapshot, VmUsageSample};
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
    moves_first: usize,
    moves_total: usize,
    rounds: usize,
    gib_moved: f64,
    plan_ms: f64,
}

fn run(sc: Scenario, hosts: usize, quick: bool, level: u8) -> Row {
    let snap = generate(sc, hosts, 42 + hosts as u64);
    let config = DrsConfig {
        hysteresis_hold_count: 1,
        migration_threshold: level,
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
    // Settle: apply rounds until nothing moves (history blocks ping-pong).
    let mut s = snap.clone();
    let mut state = DrsState::default();
    let mut history = MigrationHistory::default();
    let first = plan(&s, &config, &state, &history, now);
    let (mut total, mut rounds, mut mib) = (0, 0, 0u64);
    let mut last_after = first.after.clone();
    let mut p = first.clone();
    while !p.moves.is_empty() && rounds < 500 {
        rounds += 1;
        total += p.moves.len();
        mib += p.memory_moved_mib();
        for m in &p.moves {
            history.record(m.vm, m.source, m.target, now);
        }
        p.apply(&mut s);
        state = p.state.clone();
        last_after = p.after.clone();
        p = plan(&s, &config, &state, &history, now);
    }
    Row {
        scenario: sc.name(),
        hosts,
        vms: snap.vms.len(),
        imb: [first.before.imbalance, first.after.imbalance, last_after.imbalance],
        max: [max_util(&first.before), max_util(&first.after), max_util(&last_after)],
        bound: lower_bound(&snap),
        moves_first: first.moves.len(),
        moves_total: total,
        rounds,
        gib_moved: mib as f64 / 1024.0,
        plan_ms,
    }
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
    let scenarios = [
        Scenario::OneHot,
        Scenario::Bimodal,
        Scenario::Gradient,
        Scenario::Heterogeneous,
        Scenario::Zipf,
        Scenario::AntiCorrelated,
    ];
    println!(
        "DRS planner, migration threshold level {level}, otherwise default config (thresholds 80/85, margin 5, 2 migrations per host per round)."
    );
    println!(
        "Max util: the fuller resource of the busiest host, %. Settled: rounds applied until a round plans nothing.\n"
    );
    println!(
        "| scenario | hosts | VMs | imbalance before → round 1 → settled | max util before → round 1 → settled | lower bound | moves round 1 / settled (rounds) | GiB moved | plan ms (1 round) |"
    );
    println!("|---|---:|---:|---|---|---:|---|---:|---:|");
    for sc in scenarios {
        for hosts in [3, 8, 32, 96, 1000] {
            let r = run(sc, hosts, quick, level);
            println!(
                "| {} | {} | {} | {:.1} → {:.1} → {:.1} | {:.1} → {:.1} → {:.1} | {:.1} | {} / {} ({}) | {:.1} | {:.2} |",
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
                r.moves_first,
                r.moves_total,
                r.rounds,
                r.gib_moved,
                r.plan_ms
            );
        }
    }
}

//! HA benchmarks: failover planning for 1,000 HA VMs, simulated host death to VMs running
//! (defaults and the most aggressive safe tuning), and many random fault seeds.
//!
//! `cargo bench -p lqx-core --bench ha` (set LQX_HA_SEEDS for the seed count, default 20000).
//! Wall-clock timing here only measures the planner; every decision inside uses virtual time.

use std::time::{Duration, Instant};

use lqx_core::{
    ha::{
        FailedNode, FailoverInput, HaConfig, MonoInstant, RestartBook, SimSpec, failover,
        scenario::{ClusterFile, Fault, FileHa, FileNode, FileVm, SimParams, TimedFault},
        sim,
    },
    model::{HaPolicy, NodeId, NodePhase, PlacementPolicy, RestartPriority, VmId},
    placement::{ClusterSnapshot, NodeSnapshot, VmSnapshot},
};
use uuid::Uuid;

fn planning_snapshot() -> (ClusterSnapshot, Vec<FailedNode>) {
    let nid = |i: usize| NodeId(Uuid::from_u128(0x1000 + i as u128));
    let nodes = (0..100)
        .map(|i| NodeSnapshot {
            id: nid(i),
            name: format!("node-{i:03}"),
            cpu_cores: 64,
            memory_mib: 524_288,
            cpu_overcommit: 4.0,
            memory_overcommit: 1.0,
            labels: Default::default(),
            schedulable: true,
            phase: NodePhase::Ready,
            usage: None,
        })
        .collect();
    let prios = [
        RestartPriority::Low,
        RestartPriority::Medium,
        RestartPriority::High,
        RestartPriority::Highest,
    ];
    // 50 VMs per node; the first 20 nodes fail, carrying 1,000 HA VMs.
    let vms = (0..5_000)
        .map(|i| VmSnapshot {
            id: VmId(Uuid::from_u128(0x10_0000 + i as u128)),
            name: format!("vm-{i:05}"),
            node: Some(nid(i % 100)),
            cpu_cores: 1 + (i % 4) as u32,
            memory_mib: 1_024 * (1 + (i % 8) as u64),
            running: true,
            usage: None,
            ha: HaPolicy {
                enabled: true,
                priority: prios[i % 4],
                restart_delay_secs: 0,
                max_restarts: 0,
            },
            placement: PlacementPolicy {
                anti_affinity_group: (i % 10 == 0).then(|| format!("group-{}", i % 50)),
                ..PlacementPolicy::default()
            },
        })
        .collect();
    let failed = (0..20)
        .map(|i| FailedNode {
            node: nid(i),
            since: MonoInstant::ZERO,
            by_operator: false,
        })
        .collect();
    (ClusterSnapshot { nodes, vms }, failed)
}

fn bench_planning() {
    let (snapshot, failed) = planning_snapshot();
    let failed_ids: Vec<NodeId> = failed.iter().map(|f| f.node).collect();
    let target = |n: NodeId| !failed_ids.contains(&n);
    let book = RestartBook::new();
    let cfg = HaConfig::default();
    let input = FailoverInput {
        snapshot: &snapshot,
        failed: &failed,
        target: &target,
        restarts: &book,
        now: MonoInstant::from_millis(1_000),
        config: &cfg,
        storm: None,
    };
    let mut times = vec![];
    let mut planned = 0;
    for _ in 0..30 {
        let t = Instant::now();
        let plan = failover::plan(&input);
        times.push(t.elapsed());
        planned = plan.restarts.len() + plan.unplaced.len();
        assert_eq!(plan.restarts.len(), 1_000);
    }
    times.sort();
    println!(
        "failover planning, {planned} HA VMs from 20 of 100 nodes (5,000 VMs): median {:.2} ms, max {:.2} ms",
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap())
    );
    let t = Instant::now();
    let report = failover::admission(&snapshot);
    println!(
        "admission check (N+1 over 100 nodes, 5,000 HA VMs): {:.1} ms, protected: {}",
        ms(t.elapsed()),
        report.protected
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Host death to HA VMs running elsewhere, over many heartbeat phases and death instants.
fn bench_detection(label: &str, config: HaConfig) {
    let hb = config.heartbeat_interval.as_millis() as u64;
    let mut downs = vec![];
    for k in 0..50u64 {
        let file = ClusterFile {
            nodes: (1..=3)
                .map(|i| FileNode {
                    name: format!("node-{i}"),
                    cpu_cores: 16,
                    memory_mib: 32_768,
                    labels: Default::default(),
                    maintenance: false,
                    cpu_overcommit: 1.0,
                    memory_overcommit: 1.0,
                })
                .collect(),
            vms: (0..4)
                .map(|i| FileVm {
                    name: format!("vm-{i}"),
                    node: "node-1".into(),
                    cpu_cores: 2,
                    memory_mib: 2_048,
                    running: true,
                    usage: None,
                    ha: Some(FileHa {
                        enabled: true,
                        priority: RestartPriority::Medium,
                        restart_delay: Duration::ZERO,
                        max_restarts: 0,
                    }),
                    placement: None,
                })
                .collect(),
        };
        let death = 20_000 + k * hb / 50 * 3 + k;
        let mut params = SimParams {
            duration: Duration::from_millis(death + 120_000),
            ..SimParams::default()
        };
        for (i, n) in ["node-1", "node-2", "node-3"].iter().enumerate() {
            params
                .heartbeat_phase
                .insert(n.to_string(), Duration::from_millis((k * 37 + i as u64 * 411) % hb));
        }
        let spec = SimSpec {
            cluster: file.to_snapshot().unwrap(),
            config: config.clone(),
            params,
            faults: vec![TimedFault {
                at: Duration::from_millis(death),
                fault: Fault::PowerOff("node-1".into()),
            }],
        };
        let r = sim::run(&spec);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        downs.extend(r.downtimes.iter().filter_map(|d| d.to_ms.map(|t| t - d.from_ms)));
    }
    downs.sort();
    let avg = downs.iter().sum::<u64>() as f64 / downs.len() as f64 / 1_000.0;
    println!(
        "host death -> HA VMs running elsewhere, {label}: min {:.2} s, mean {avg:.2} s, max {:.2} s (documented bound {} s)",
        downs[0] as f64 / 1_000.0,
        *downs.last().unwrap() as f64 / 1_000.0,
        config.failover_bound(Duration::ZERO).as_secs()
    );
}

fn bench_seeds() {
    let seeds: u64 = std::env::var("LQX_HA_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let t = Instant::now();
    let mut restarts = 0;
    for seed in 0..seeds {
        let r = sim::run(&SimSpec::random(seed));
        restarts += r.restarts;
        if let Some(v) = r.violations.first() {
            panic!(
                "seed {seed}: {v}\n  replay: LQX_HA_SEED={seed} cargo test -p lqx-core --test ha_scenarios replay -- --nocapture"
            );
        }
    }
    println!(
        "random fault seeds: {seeds} runs, {restarts} failover restarts, no invariant broken, {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    bench_planning();
    bench_detection("defaults", HaConfig::default());
    bench_detection("aggressive", HaConfig::aggressive());
    bench_seeds();
}

//! DPM scenarios over checked-in cluster files (tests/data/dpm/), run as a simulated
//! timeline: each run plans DRS, then DPM on the cluster the DRS plan leaves, and the
//! simulation performs both (migrations complete, a host powered off is in standby, a host
//! powered on boots during the next interval). A property test checks that DPM never powers
//! off a host whose VMs cannot all be placed elsewhere within thresholds and admission
//! control.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use lqx_core::cluster_file::{self, node_id_for};
use lqx_core::drs::dpm::{self, DpmPlan, DpmState};
use lqx_core::drs::{DrsState, MigrationHistory, plan};
use lqx_core::ha::admission;
use lqx_core::model::{AutomationLevel, DpmConfig, DrsConfig, HaPolicy, NodeId, NodePhase, PlacementPolicy, VmId};
use lqx_core::placement::{ClusterSnapshot, NodeSnapshot, VmSnapshot, VmUsageSample};
use lqx_core::power::PowerState;
use proptest::prelude::*;
use uuid::Uuid;

fn load(name: &str) -> String {
    let path = format!("{}/tests/data/dpm/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config() -> DrsConfig {
    DrsConfig {
        hysteresis_hold_count: 1,
        max_concurrent_migrations_per_host: 8,
        dpm: DpmConfig {
            enabled: true,
            automation_level: AutomationLevel::Full,
            hold_count: 2,
            ..DpmConfig::default()
        },
        ..DrsConfig::default()
    }
}

/// The simulated cluster: a snapshot, each host's power, and the planners' memories.
struct Sim {
    snap: ClusterSnapshot,
    power: HashMap<NodeId, PowerState>,
    cfg: DrsConfig,
    drs: DrsState,
    dpm: DpmState,
    history: MigrationHistory,
    now: DateTime<Utc>,
    powered_off: Vec<String>,
    powered_on: Vec<String>,
    last_on: Vec<String>,
}

impl Sim {
    fn new(file: &str, cfg: DrsConfig) -> Sim {
        let text = load(file);
        Sim {
            snap: cluster_file::parse(&text).unwrap(),
            power: cluster_file::power_states(&text).unwrap(),
            cfg,
            drs: DrsState::default(),
            dpm: DpmState::default(),
            history: MigrationHistory::default(),
            now: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            powered_off: Vec::new(),
            powered_on: Vec::new(),
            last_on: Vec::new(),
        }
    }

    fn state(&self, name: &str) -> PowerState {
        self.power.get(&node_id_for(name)).copied().unwrap_or(PowerState::On)
    }

    /// One engine run, every recommendation performed (automation full).
    fn run(&mut self) -> DpmPlan {
        // A host woken last run has booted.
        for n in &mut self.snap.nodes {
            if self.power.get(&n.id) == Some(&PowerState::PoweringOn) {
                self.power.insert(n.id, PowerState::On);
                n.phase = NodePhase::Ready;
            }
        }
        let p = plan(&self.snap, &self.cfg, &self.drs, &self.history, self.now);
        self.drs = p.state.clone();
        p.apply(&mut self.snap);
        for m in &p.moves {
            self.history.record(m.vm, m.source, m.target, self.now);
        }
        let must: Vec<VmId> = p.unmovable.iter().map(|u| u.vm).collect();
        let d = dpm::plan(&self.snap, &self.cfg, &self.power, &self.dpm, &must, &[]);
        self.dpm = d.state.clone();
        for m in &d.evacuations {
            let v = self.snap.vms.iter_mut().find(|v| v.id == m.vm).unwrap();
            assert_eq!(v.node, Some(m.source));
            v.node = Some(m.target);
            self.history.record(m.vm, m.source, m.target, self.now);
        }
        for a in &d.power_off {
            assert!(
                !self.snap.vms.iter().any(|v| v.node == Some(a.node)),
                "{} powered off with VMs on it",
                a.node_name
            );
            self.power.insert(a.node, PowerState::Standby);
            self.snap.nodes.iter_mut().find(|n| n.id == a.node).unwrap().phase = NodePhase::NotReady;
            self.powered_off.push(a.node_name.clone());
        }
        for a in &d.power_on {
            self.power.insert(a.node, PowerState::PoweringOn);
            self.powered_on.push(a.node_name.clone());
            self.last_on.push(a.reason.clone());
        }
        self.now += Duration::seconds(self.cfg.interval.as_secs() as i64);
        d
    }

    fn hosts_on(&self) -> usize {
        self.snap
            .nodes
            .iter()
            .filter(|n| n.phase == NodePhase::Ready && self.state(&n.name) == PowerState::On)
            .count()
    }

    /// Each Ready host's (CPU %, memory %) use.
    fn use_of(&self) -> Vec<(String, f64, f64)> {
        self.snap
            .nodes
            .iter()
            .filter(|n| n.phase == NodePhase::Ready)
            .map(|n| {
                let vms = self.snap.vms.iter().filter(|v| v.node == Some(n.id));
                let (c, m) = vms.fold((0.0, 0.0), |(c, m), v| (c + v.cpu_load(), m + v.memory_load_mib()));
                (
                    n.name.clone(),
                    c / n.cpu_cores as f64 * 100.0,
                    m / n.memory_mib as f64 * 100.0,
                )
            })
            .collect()
    }
}

#[test]
fn light_load_consolidates_within_thresholds_and_keeps_n_plus_one() {
    let mut sim = Sim::new("light-load.yaml", config());
    assert_eq!(sim.hosts_on(), 8);
    let first = sim.run();
    // The hold count (2 runs) keeps the first run from powering anything off.
    assert!(first.power_off.is_empty(), "{first:?}");
    assert!(
        first.why_not.as_deref().unwrap().contains("1 of 2 runs"),
        "{:?}",
        first.why_not
    );
    for _ in 0..10 {
        sim.run();
    }
    let on = sim.hosts_on();
    assert!((3..8).contains(&on), "{on} hosts on; powered off {:?}", sim.powered_off);
    assert!(
        sim.powered_on.is_empty(),
        "no flapping: woke {:?} ({:?})",
        sim.powered_on,
        sim.last_on
    );
    // No host went off twice (no flapping), and the cluster settled.
    let mut off = sim.powered_off.clone();
    off.sort();
    off.dedup();
    assert_eq!(off.len(), sim.powered_off.len());
    assert_eq!(off.len(), 8 - on);
    let settled = sim.run();
    assert!(
        settled.power_off.is_empty() && settled.power_on.is_empty(),
        "{settled:?}"
    );
    // Within the relief line (80 - 5 / 85 - 5), and N+1 on the hosts on.
    for (name, cpu, mem) in sim.use_of() {
        assert!(
            cpu <= 75.0 + 1e-6 && mem <= 80.0 + 1e-6,
            "{name}: {cpu:.1}% / {mem:.1}%"
        );
    }
    let report = admission(&sim.snap);
    assert!(report.protected, "{report:?}");
    // Every VM still runs on a host that is on.
    for v in &sim.snap.vms {
        let n = sim.snap.nodes.iter().find(|n| Some(n.id) == v.node).unwrap();
        assert_eq!(n.phase, NodePhase::Ready, "{} is on {}", v.name, n.name);
    }
}

#[test]
fn opted_out_and_minimum_hosts_stay_on() {
    let mut cfg = config();
    cfg.dpm.min_hosts_on = 6;
    cfg.dpm.opt_out = vec!["node-1".into(), "node-2".into()];
    let mut sim = Sim::new("light-load.yaml", cfg);
    for _ in 0..8 {
        sim.run();
    }
    assert_eq!(sim.hosts_on(), 6, "powered off {:?}", sim.powered_off);
    assert!(!sim.powered_off.iter().any(|n| n == "node-1" || n == "node-2"));
}

#[test]
fn dpm_disabled_or_manual_level_is_respected_by_the_plan() {
    let mut cfg = config();
    cfg.dpm.enabled = false;
    let mut sim = Sim::new("light-load.yaml", cfg);
    for _ in 0..4 {
        let d = sim.run();
        assert!(d.power_off.is_empty() && d.evacuations.is_empty());
    }
    assert_eq!(sim.hosts_on(), 8);
}

#[test]
fn rising_load_powers_hosts_on_before_any_host_crosses_the_threshold() {
    let mut sim = Sim::new("rising-load.yaml", config());
    assert_eq!(sim.hosts_on(), 3);
    let mut max_seen: f64 = 0.0;
    // CPU demand grows 6 % a run, from about 40 % of the 3 hosts on to 40 % x 1.06^14 ≈ 90 %
    // of them: without DPM the 3 hosts would pass 80 % at run 12.
    for run in 0..15 {
        for (name, cpu, mem) in sim.use_of() {
            assert!(
                cpu <= sim.cfg.threshold_cpu && mem <= sim.cfg.threshold_memory,
                "run {run}: {name} is at {cpu:.1}% CPU / {mem:.1}% memory; woken {:?}",
                sim.powered_on
            );
            max_seen = max_seen.max(cpu);
        }
        sim.run();
        for v in &mut sim.snap.vms {
            let u = v.usage.as_mut().unwrap();
            u.cpu_percent = (u.cpu_percent * 1.06).min(100.0);
        }
    }
    eprintln!(
        "woken: {:?} {:?}; max CPU seen {max_seen:.1}",
        sim.powered_on, sim.last_on
    );
    assert!(!sim.powered_on.is_empty(), "demand grew but nothing was powered on");
    assert!(sim.hosts_on() > 3);
    assert!(
        sim.powered_off.is_empty(),
        "rising load never powers off: {:?}",
        sim.powered_off
    );
    assert!(max_seen > 50.0, "the load did rise ({max_seen:.1}%)");
}

#[test]
fn ha_failure_while_hosts_are_in_standby_powers_one_on() {
    let mut sim = Sim::new("ha-failure-standby.yaml", config());
    assert_eq!(sim.state("node-4"), PowerState::Standby);
    let d = sim.run();
    assert_eq!(d.power_on.len(), 1, "{d:?}");
    let woken = &d.power_on[0];
    assert!(woken.mandatory);
    assert!(
        woken.reason.contains("HA failover capacity is short"),
        "{}",
        woken.reason
    );
    assert!(woken.node_name == "node-4" || woken.node_name == "node-5");
    assert!(d.power_off.is_empty());
    // Once it has booted the hosts on absorb a failure again, and nothing more is woken.
    let d = sim.run();
    assert!(d.power_on.is_empty(), "{d:?}");
    let mut view = sim.snap.clone();
    for n in &mut view.nodes {
        if sim.power.get(&n.id) == Some(&PowerState::Standby) {
            n.phase = NodePhase::NotReady;
        }
    }
    assert!(admission(&view).protected);
}

// ---- property: DPM never strands a VM ------------------------------------------------------

fn nid(i: usize) -> NodeId {
    NodeId(Uuid::from_u128(0xd000 + i as u128))
}

prop_compose! {
    fn cluster()(
        hosts in 3usize..7,
        vms in proptest::collection::vec((0usize..7, 1u32..9, 1u64..24, 5.0f64..100.0, 0.2f64..1.0, any::<bool>(), 0u8..10), 0..28),
    ) -> ClusterSnapshot {
        let nodes: Vec<NodeSnapshot> = (0..hosts).map(|i| NodeSnapshot {
            id: nid(i),
            name: format!("node-{i}"),
            cpu_cores: if i % 2 == 0 { 16 } else { 32 },
            memory_mib: if i % 2 == 0 { 65536 } else { 131072 },
            cpu_overcommit: 2.0,
            memory_overcommit: 1.0,
            labels: Default::default(),
            schedulable: true,
            phase: NodePhase::Ready,
            usage: None,
        }).collect();
        let mut out = ClusterSnapshot { nodes, vms: Vec::new() };
        let mut alloc = vec![(0u32, 0u64); hosts];
        for (k, (h, cores, gib, cpu, mem_frac, ha, extra)) in vms.into_iter().enumerate() {
            let h = h % hosts;
            let mem = gib * 1024;
            let n = &out.nodes[h];
            // Keep the generated cluster within allocation limits.
            if alloc[h].0 + cores > n.cpu_cores * 2 || alloc[h].1 + mem > n.memory_mib {
                continue;
            }
            alloc[h].0 += cores;
            alloc[h].1 += mem;
            let placement = match extra {
                0 => PlacementPolicy { anti_affinity_group: Some("g".into()), ..Default::default() },
                1 => PlacementPolicy { required_nodes: vec![nid(h)], ..Default::default() },
                2 => PlacementPolicy { excluded_nodes: vec![nid((h + 1) % hosts)], ..Default::default() },
                _ => PlacementPolicy::default(),
            };
            out.vms.push(VmSnapshot {
                id: VmId(Uuid::from_u128(0xe000 + k as u128)),
                name: format!("vm-{k}"),
                node: Some(nid(h)),
                cpu_cores: cores,
                memory_mib: mem,
                running: extra != 9,
                usage: Some(VmUsageSample { cpu_percent: cpu, memory_used_mib: (mem as f64 * mem_frac) as u64 }),
                ha: HaPolicy { enabled: ha, ..Default::default() },
                placement,
            });
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dpm_never_powers_off_a_host_whose_vms_cannot_all_go_elsewhere(
        snap in cluster(),
        low_threshold in 0u8..2,
        standby_last in any::<bool>(),
    ) {
        let mut cfg = config();
        cfg.dpm.hold_count = 1;
        cfg.dpm.min_hosts_on = 1;
        // Wide band: DPM tries hard to consolidate.
        cfg.dpm.power_off_below = 60.0;
        cfg.dpm.power_on_above = 70.0 + 5.0 * f64::from(low_threshold);
        let mut snap = snap;
        let mut power = HashMap::new();
        if standby_last {
            let last = snap.nodes.len() - 1;
            if !snap.vms.iter().any(|v| v.node == Some(nid(last))) {
                power.insert(nid(last), PowerState::Standby);
                snap.nodes[last].phase = NodePhase::NotReady;
            }
        }
        let before_protected = {
            let r = admission(&snap);
            r.protected
        };
        let d = dpm::plan(&snap, &cfg, &power, &DpmState::default(), &[], &[]);
        let off: Vec<NodeId> = d.power_off.iter().map(|a| a.node).collect();
        prop_assert!(d.power_on.is_empty() || off.is_empty());
        if off.is_empty() {
            return Ok(());
        }
        prop_assert!(before_protected, "powered off while N+1 did not hold");
        // Perform the evacuations: each from the host it names, each VM once.
        let mut after = snap.clone();
        let mut seen = std::collections::HashSet::new();
        for m in &d.evacuations {
            prop_assert!(seen.insert(m.vm), "{} moved twice", m.vm_name);
            prop_assert!(off.contains(&m.source));
            prop_assert!(!off.contains(&m.target), "{} moved onto a host going off", m.vm_name);
            let v = after.vms.iter_mut().find(|v| v.id == m.vm).unwrap();
            prop_assert_eq!(v.node, Some(m.source));
            v.node = Some(m.target);
        }
        for n in &off {
            prop_assert!(!after.vms.iter().any(|v| v.node == Some(*n)), "a VM stays on a host going off");
        }
        // Every host left on: within allocation, the relief line and placement policy.
        let line_cpu = cfg.threshold_cpu - cfg.hysteresis_margin;
        let line_mem = cfg.threshold_memory - cfg.hysteresis_margin;
        for n in after.nodes.iter().filter(|n| n.phase == NodePhase::Ready && !off.contains(&n.id)) {
            let vms: Vec<&VmSnapshot> = after.vms.iter().filter(|v| v.node == Some(n.id)).collect();
            let cores: u32 = vms.iter().map(|v| v.cpu_cores).sum();
            let mem: u64 = vms.iter().map(|v| v.memory_mib).sum();
            prop_assert!(f64::from(cores) <= f64::from(n.cpu_cores) * n.cpu_overcommit + 1e-9);
            prop_assert!(mem as f64 <= n.memory_mib as f64 * n.memory_overcommit + 1e-9);
            let received = d.evacuations.iter().any(|m| m.target == n.id);
            if received {
                let cpu: f64 = vms.iter().map(|v| v.cpu_load()).sum::<f64>() / f64::from(n.cpu_cores) * 100.0;
                let memu: f64 = vms.iter().map(|v| v.memory_load_mib()).sum::<f64>() / n.memory_mib as f64 * 100.0;
                prop_assert!(cpu <= line_cpu + 1e-6 && memu <= line_mem + 1e-6, "{}: {cpu:.1}/{memu:.1}", n.name);
            }
            for v in &vms {
                prop_assert!(v.placement.required_nodes.is_empty() || v.placement.required_nodes.contains(&n.id));
                prop_assert!(!v.placement.excluded_nodes.contains(&n.id));
            }
            let group = vms.iter().filter(|v| v.placement.anti_affinity_group.is_some()).count();
            let moved_in_group = d.evacuations.iter().any(|m| m.target == n.id
                && after.vms.iter().any(|v| v.id == m.vm && v.placement.anti_affinity_group.is_some()));
            prop_assert!(!moved_in_group || group <= 1, "anti-affinity broken on {}", n.name);
        }
        // Admission control (N+1) on the hosts left on.
        for n in &mut after.nodes {
            if off.contains(&n.id) {
                n.phase = NodePhase::NotReady;
            }
        }
        prop_assert!(admission(&after).protected, "N+1 lost");
    }
}

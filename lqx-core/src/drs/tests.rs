use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::model::{DrsConfig, NodeId, NodePhase, Priority};
use crate::placement::testutil::*;
use crate::placement::{ClusterSnapshot, NodeUsageSample, VmSnapshot};

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap()
}

fn cfg() -> DrsConfig {
    DrsConfig {
        hysteresis_hold_count: 1,
        ..DrsConfig::default()
    }
}

fn run(s: &ClusterSnapshot, c: &DrsConfig) -> DrsPlan {
    plan(s, c, &DrsState::default(), &MigrationHistory::default(), t0())
}

/// Three 16-core / 64 GiB nodes; `per_node[i]` VMs of 2 vCPU / 4 GiB, fully used, on node i.
fn three_nodes(per_node: [usize; 3]) -> ClusterSnapshot {
    let nodes = (0..3).map(|i| node(i, 16, 65536)).collect();
    let mut vms = Vec::new();
    for (n, &k) in per_node.iter().enumerate() {
        for _ in 0..k {
            let i = vms.len();
            vms.push(vm(i, Some(n), 2, 4096));
        }
    }
    snapshot(nodes, vms)
}

#[test]
fn a_hot_node_is_relieved_without_making_another_hot() {
    // node-0: 8 VMs x 2 cores = 16/16 cores busy (100 %); the others idle.
    let s = three_nodes([8, 0, 0]);
    let c = DrsConfig {
        max_concurrent_migrations_per_host: 10,
        migrations_per_host_per_round: 10,
        ..cfg()
    };
    let p = run(&s, &c);
    assert_eq!(p.before.max_cpu_percent, 100.0);
    // 100 % -> at most 75 % (80 - 5 margin) needs 2 VMs out; balancing then evens out further.
    let relieve = p.moves.iter().filter(|m| m.kind == MoveKind::Relieve).count();
    assert_eq!(relieve, 2, "{:#?}", p.moves);
    assert!(p.moves.iter().all(|m| m.source == node_id(0)));
    assert!(p.after.nodes.iter().all(|n| n.cpu_percent <= 75.0), "{:?}", p.after);
    assert!(p.after.imbalance < p.before.imbalance);
    let first = &p.moves[0];
    assert_eq!(first.priority, Priority::Critical);
    assert!(!first.mandatory);
    assert_eq!(first.impact_cpu, 12.5);
    assert_eq!(first.memory_mib, 4096);
    assert_eq!(first.estimated_duration_secs, 6); // 4096 MiB at 1000 MiB/s, + 1 s
    assert!(
        first.reason.contains("node-0 is hot (CPU 100% > 80%)"),
        "{}",
        first.reason
    );
}

#[test]
fn concurrency_limit_bounds_non_mandatory_moves_per_host() {
    let s = three_nodes([8, 0, 0]);
    let c = DrsConfig {
        migrations_per_host_per_round: 2,
        ..cfg()
    };
    let p = run(&s, &c);
    // 2 per host per round, so node-0 sheds only 2 VMs this round.
    assert_eq!(p.moves.len(), 2);
}

#[test]
fn round_budget_derives_from_migration_capacity() {
    // 4 GiB in use per VM at 1,000 MiB/s: about 5 s a migration; 2 at once over 300 s allows
    // 2 x 300 / 5.1 = 117 moves, capped at 64.
    let c = cfg();
    assert_eq!(c.round_budget(c.expected_migration_secs(4096.0)), 64);
    // 64 GiB VMs over 100 MiB/s: 656 s each, so never fewer than the concurrency.
    let slow = DrsConfig {
        migration_bandwidth_mib_per_second: 100,
        ..cfg()
    };
    assert_eq!(slow.round_budget(slow.expected_migration_secs(65536.0)), 2);
    // 8 GiB at 1,000 MiB/s, 3 at once, a 60 s interval: 3 x 60 / 9.19 = 19.
    let c3 = DrsConfig {
        max_concurrent_migrations_per_host: 3,
        interval: std::time::Duration::from_secs(60),
        ..cfg()
    };
    assert_eq!(c3.round_budget(c3.expected_migration_secs(8192.0)), 19);
    // Configured: as given.
    let fixed = DrsConfig {
        migrations_per_host_per_round: 5,
        ..cfg()
    };
    assert_eq!(fixed.round_budget(1.0), 5);
    // The derived budget relieves and balances the 8-VM node in one round, not 2 moves at a
    // time.
    let s = three_nodes([8, 0, 0]);
    let p = run(&s, &cfg());
    assert!(p.moves.len() > 2, "{:#?}", p.moves);
    assert!(p.after.nodes.iter().all(|n| n.cpu_percent <= 75.0), "{:?}", p.after);
}

#[test]
fn maintenance_is_evacuated_at_once_and_mandatory() {
    let mut s = three_nodes([3, 0, 0]);
    s.nodes[0].phase = NodePhase::Maintenance;
    let c = DrsConfig {
        migration_threshold: 1,
        ..cfg()
    };
    let p = run(&s, &c);
    assert_eq!(p.moves.len(), 3, "every VM leaves, beyond the per-host budget");
    for m in &p.moves {
        assert!(m.mandatory);
        assert_eq!(m.kind, MoveKind::Evacuate);
        assert_eq!(m.priority, Priority::High);
        assert_eq!(m.reason, "node-0 is in maintenance");
        assert_ne!(m.target, node_id(0));
    }
    // Spread over both targets, not piled on one.
    assert!(p.moves.iter().any(|m| m.target == node_id(1)));
    assert!(p.moves.iter().any(|m| m.target == node_id(2)));
}

#[test]
fn evacuation_that_fits_nowhere_is_reported() {
    let mut s = three_nodes([1, 0, 0]);
    s.nodes[0].phase = NodePhase::Draining;
    s.nodes[1].schedulable = false;
    s.nodes[2].phase = NodePhase::NotReady;
    let p = run(&s, &cfg());
    assert!(p.moves.is_empty());
    assert_eq!(p.unmovable.len(), 1);
    assert_eq!(
        p.unmovable[0].reason,
        "node-0 is draining, but it cannot move: No node fits: 1 not ready, 1 draining, 1 unschedulable"
    );
}

#[test]
fn placement_violations_are_mandatory_moves() {
    let mut s = three_nodes([2, 1, 0]);
    s.vms[0].placement.anti_affinity_group = Some("db".into());
    s.vms[1].placement.anti_affinity_group = Some("db".into());
    s.vms[2].placement.excluded_nodes = vec![node_id(1)];
    let c = DrsConfig {
        migration_threshold: 1,
        ..cfg()
    };
    let p = run(&s, &c);
    assert_eq!(p.moves.len(), 2, "{:#?}", p.moves);
    let excluded = p.moves.iter().find(|m| m.vm == vm_id(2)).unwrap();
    assert_eq!(excluded.reason, "its placement policy excludes node-1");
    let db = p.moves.iter().find(|m| m.vm == vm_id(1)).unwrap();
    assert_eq!(db.reason, "it shares node-0 with vm-0 of anti-affinity group db");
    assert!(p.moves.iter().all(|m| m.mandatory && m.kind == MoveKind::Constraint));
    // vm-1 (db) must not land next to vm-0.
    assert_ne!(db.target, node_id(0));
}

#[test]
fn level_one_makes_no_load_moves_and_level_two_no_balancing() {
    let s = three_nodes([8, 0, 0]);
    let p = run(
        &s,
        &DrsConfig {
            migration_threshold: 1,
            ..cfg()
        },
    );
    assert!(p.moves.is_empty());
    // 5 VMs: 62.5 % CPU, not hot but very uneven.
    let s = three_nodes([5, 0, 0]);
    let p = run(
        &s,
        &DrsConfig {
            migration_threshold: 2,
            ..cfg()
        },
    );
    assert!(p.moves.is_empty());
    let p = run(
        &s,
        &DrsConfig {
            migration_threshold: 3,
            ..cfg()
        },
    );
    assert!(!p.moves.is_empty());
    assert!(
        p.moves
            .iter()
            .all(|m| m.kind == MoveKind::Balance && m.priority == Priority::Low)
    );
}

#[test]
fn hold_count_waits_for_a_condition_to_persist() {
    let s = three_nodes([8, 0, 0]);
    let c = DrsConfig {
        hysteresis_hold_count: 2,
        ..DrsConfig::default()
    };
    let h = MigrationHistory::default();
    let first = plan(&s, &c, &DrsState::default(), &h, t0());
    assert!(first.moves.is_empty());
    assert_eq!(first.state.hot_streak.get(&node_id(0)), Some(&1));
    assert_eq!(first.state.imbalance_streak, 1);
    let second = plan(&s, &c, &first.state, &h, t0());
    assert!(!second.moves.is_empty());
    // A node that cooled down resets its streak.
    let cool = three_nodes([3, 3, 2]);
    let p = plan(&cool, &c, &second.state, &h, t0());
    assert!(p.state.hot_streak.is_empty());
}

#[test]
fn recently_moved_vms_move_only_if_mandatory_or_on_by_a_peak_move() {
    let s = three_nodes([8, 0, 0]);
    let mut h = MigrationHistory::default();
    for v in &s.vms {
        h.record(v.id, node_id(1), node_id(0), t0() - chrono::Duration::minutes(10));
    }
    // Relief (level 2) leaves them; a peak move (level 3) may take one on, never back.
    let l2 = DrsConfig {
        migration_threshold: 2,
        ..cfg()
    };
    let p = plan(&s, &l2, &DrsState::default(), &h, t0());
    assert!(p.moves.is_empty(), "{:#?}", p.moves);
    let p = plan(&s, &cfg(), &DrsState::default(), &h, t0());
    assert!(
        p.moves
            .iter()
            .all(|m| m.target != node_id(1) && m.reason.starts_with("peak:")),
        "{:#?}",
        p.moves
    );
    // After the window they may move again.
    let later = t0() + chrono::Duration::hours(1);
    assert!(!plan(&s, &cfg(), &DrsState::default(), &h, later).moves.is_empty());
    // Maintenance overrides it.
    let mut m = s.clone();
    m.nodes[0].phase = NodePhase::Maintenance;
    assert_eq!(plan(&m, &cfg(), &DrsState::default(), &h, t0()).moves.len(), 8);
}

#[test]
fn one_vm_too_big_to_move_usefully_stays() {
    // node-0 runs one 14-core VM at full use (87.5 %); moving it would only make node-1 hot.
    let nodes = vec![node(0, 16, 65536), node(1, 16, 65536)];
    let s = snapshot(nodes, vec![vm(0, Some(0), 14, 8192)]);
    let p = run(
        &s,
        &DrsConfig {
            migration_threshold: 5,
            ..cfg()
        },
    );
    assert!(p.moves.is_empty(), "{:#?}", p.moves);
    assert_eq!(p.before, p.after);
}

#[test]
fn node_reported_usage_counts_as_fixed_overhead() {
    let mut s = three_nodes([2, 0, 0]);
    // The node reports 90 % CPU, only 25 % of which its VMs explain.
    s.nodes[0].usage = Some(NodeUsageSample {
        cpu_percent: 90.0,
        memory_used_mib: 8192,
    });
    let p = run(
        &s,
        &DrsConfig {
            max_concurrent_migrations_per_host: 10,
            migrations_per_host_per_round: 10,
            ..cfg()
        },
    );
    assert_eq!(p.before.nodes[0].cpu_percent, 90.0);
    // Both VMs leave, but 65 % stays: that load cannot be moved.
    assert_eq!(p.moves.len(), 2);
    assert_eq!(p.after.nodes[0].cpu_percent, 65.0);
    let mut applied = s.clone();
    p.apply(&mut applied);
    assert_eq!(applied.nodes[0].usage.unwrap().cpu_percent, 65.0);
}

#[test]
fn recommendation_carries_the_move() {
    let s = three_nodes([8, 0, 0]);
    let p = run(&s, &cfg());
    let id = crate::model::RecommendationId::new();
    let r = p.moves[0].to_recommendation(id, t0());
    assert_eq!(r.id, id);
    assert_eq!(r.vm_id, p.moves[0].vm);
    assert_eq!(r.status, crate::model::RecommendationStatus::Pending);
    assert_eq!(r.source_node_name, "node-0");
    assert_eq!(r.estimated_duration_human(), "6s");
}

/// Allocation (vCPUs, MiB) of every node after each move in turn, checked against limits.
fn assert_each_step_fits(s: &ClusterSnapshot, p: &DrsPlan) {
    let mut cur = s.clone();
    for (k, m) in p.moves.iter().enumerate() {
        let one = DrsPlan {
            moves: vec![m.clone()],
            ..p.clone()
        };
        one.apply(&mut cur);
        for n in &cur.nodes {
            let on: Vec<_> = cur.vms.iter().filter(|v| v.node == Some(n.id)).collect();
            let cpu: u32 = on.iter().map(|v| v.cpu_cores).sum();
            let mem: u64 = on.iter().map(|v| v.memory_mib).sum();
            assert!(
                cpu as f64 <= n.cpu_limit() && mem as f64 <= n.memory_limit_mib(),
                "after move {k} {} is over its allocation: {cpu} vCPUs, {mem} MiB",
                n.name
            );
        }
    }
}

#[test]
fn exact_search_finds_a_three_move_chain() {
    // Four 16-core / 32 GiB nodes, memory not overcommitted. node-0 is at 100 % CPU. Its
    // 4-core VM `a` fits only on node-1 (allocation full), once node-1's `d` went to node-2,
    // which has room for it only once its `g` went to node-3. Nothing shorter works: `c`
    // (12 cores) would make any node hot, `a` would make node-2 or node-3 hot, and no single move or
    // room-making pair frees 16 GiB where `a` can go.
    const GIB: u64 = 1024;
    let nodes: Vec<_> = (0..4).map(|i| node(i, 16, 32 * GIB)).collect();
    let vms = vec![
        with_usage(vm(0, Some(0), 4, 16 * GIB), 100.0, 4 * GIB),  // a
        with_usage(vm(1, Some(0), 12, 16 * GIB), 100.0, 4 * GIB), // c
        with_usage(vm(2, Some(1), 1, 16 * GIB), 10.0, 4 * GIB),   // d
        with_usage(vm(3, Some(1), 1, 16 * GIB), 10.0, 4 * GIB),   // e
        with_usage(vm(4, Some(2), 1, 8 * GIB), 10.0, 4 * GIB),    // g
        with_usage(vm(5, Some(2), 10, 8 * GIB), 100.0, 4 * GIB),  // keeps `a` off node-2
        with_usage(vm(6, Some(2), 1, 8 * GIB), 10.0, 4 * GIB),
        with_usage(vm(7, Some(3), 11, 24 * GIB), 100.0, 8 * GIB), // x
    ];
    let s = snapshot(nodes, vms);
    let c = DrsConfig {
        migration_threshold: 2,
        max_concurrent_migrations_per_host: 10,
        migrations_per_host_per_round: 10,
        ..cfg()
    };
    let p = run(&s, &c);
    let got: Vec<_> = p
        .moves
        .iter()
        .map(|m| (m.vm_name.as_str(), m.target_name.as_str()))
        .collect();
    assert_eq!(
        got,
        [("vm-4", "node-3"), ("vm-2", "node-2"), ("vm-0", "node-1")],
        "{:#?}",
        p.moves
    );
    assert!(p.moves.iter().all(|m| m.kind == MoveKind::Relieve && !m.mandatory));
    assert!(
        p.moves[0].reason.starts_with("making room to relieve node-0"),
        "{}",
        p.moves[0].reason
    );
    assert!(
        p.moves[2].reason.starts_with("node-0 is hot (CPU 100% > 80%)"),
        "{}",
        p.moves[2].reason
    );
    assert!(
        p.after
            .nodes
            .iter()
            .all(|n| n.cpu_percent <= 75.0 && n.memory_percent <= 80.0),
        "{:?}",
        p.after
    );
    assert_each_step_fits(&s, &p);
    // With a per-host budget of 1 the chain cannot run in one round (node-2 is both source
    // and target): it is made over three rounds, one step each, never breaking the budget.
    let c1 = DrsConfig {
        max_concurrent_migrations_per_host: 1,
        migrations_per_host_per_round: 1,
        ..c.clone()
    };
    let p1 = run(&s, &c1);
    assert_eq!(p1.moves.len(), 1, "{:#?}", p1.moves);
    assert!(
        p1.moves[0].reason.contains("(step 1 of 3, over several rounds)"),
        "{}",
        p1.moves[0].reason
    );
    assert_eq!(p1.state.staged.as_ref().map(|s| s.steps.len()), Some(2));
    let all = settle(&s, &c1);
    let got: Vec<_> = all
        .iter()
        .map(|m| (m.vm_name.as_str(), m.target_name.as_str()))
        .collect();
    assert_eq!(got, [("vm-4", "node-3"), ("vm-2", "node-2"), ("vm-0", "node-1")]);
    assert!(all[2].reason.contains("(step 3 of 3"), "{}", all[2].reason);
}

#[test]
fn balancing_swaps_when_allocation_blocks_single_moves() {
    // Two 16-core / 32 GiB nodes, memory not overcommitted, 8 GiB free on each. node-0 runs
    // two busy 4-core VMs (one pinned there), node-1 two idle ones. The busy 16 GiB VM fits
    // on node-1 only once node-1's 8 GiB VM has left, and that one fits only on node-0: a
    // swap, the small VM first.
    const GIB: u64 = 1024;
    let nodes = vec![node(0, 16, 32 * GIB), node(1, 16, 32 * GIB)];
    let mut pinned = with_usage(vm(1, Some(0), 4, 8 * GIB), 100.0, 4 * GIB);
    pinned.placement.required_nodes = vec![node_id(0)];
    let vms = vec![
        with_usage(vm(0, Some(0), 4, 16 * GIB), 100.0, 8 * GIB),
        pinned,
        with_usage(vm(2, Some(1), 4, 16 * GIB), 5.0, 8 * GIB),
        with_usage(vm(3, Some(1), 1, 8 * GIB), 5.0, 4 * GIB),
    ];
    let s = snapshot(nodes, vms);
    let c = DrsConfig {
        migration_threshold: 5,
        ..cfg()
    };
    let p = run(&s, &c);
    let got: Vec<_> = p
        .moves
        .iter()
        .map(|m| (m.vm_name.as_str(), m.target_name.as_str()))
        .collect();
    assert_eq!(got, [("vm-3", "node-0"), ("vm-0", "node-1")], "{:#?}", p.moves);
    assert!(p.moves.iter().all(|m| m.kind == MoveKind::Balance && !m.mandatory));
    // A peak swap at level 5 (node-1 would end more than 3 points above the CPU mean,
    // which the squared-sum swap may not do there).
    let r = &p.moves[0].reason;
    assert!(r.contains("swap vm-0") && r.contains("vm-3"), "{r}");
    assert_each_step_fits(&s, &p);
    assert_eq!(p.before.max_cpu_percent, 50.0);
    assert!(p.after.max_cpu_percent < 30.0, "{:?}", p.after);
    assert!(p.after.imbalance < p.before.imbalance);
    // Level 2 does not balance (nothing is hot): nothing moves.
    let p2 = run(
        &s,
        &DrsConfig {
            migration_threshold: 2,
            ..cfg()
        },
    );
    assert!(p2.moves.is_empty(), "{:#?}", p2.moves);
}

#[test]
fn level_five_balances_one_hot_node_among_many() {
    // 60 nodes of 16 cores: node-0 at 35 % CPU, the others at 20 %. Nothing is hot and the
    // deviation (under 2 points) is within even level 5's tolerance; only node-0's distance
    // above the mean (about 15 points) calls for balancing.
    let nodes: Vec<_> = (0..60).map(|i| node(i, 16, 65536)).collect();
    let mut vms = Vec::new();
    for n in 0..60 {
        for _ in 0..(if n == 0 { 7 } else { 4 }) {
            let i = vms.len();
            vms.push(with_usage(vm(i, Some(n), 1, 4096), 80.0, 2048));
        }
    }
    let s = snapshot(nodes, vms);
    let c = DrsConfig {
        migration_threshold: 5,
        max_concurrent_migrations_per_host: 10,
        migrations_per_host_per_round: 10,
        ..cfg()
    };
    let p = run(&s, &c);
    assert!(p.before.imbalance < 2.0, "{}", p.before.imbalance);
    assert_eq!(p.before.max_cpu_percent, 35.0);
    // Two VMs (5 points each) go to two different nodes; a third would gain nothing.
    assert_eq!(p.moves.len(), 2, "{:#?}", p.moves);
    assert!(
        p.moves
            .iter()
            .all(|m| m.source == node_id(0) && m.kind == MoveKind::Balance)
    );
    assert_ne!(p.moves[0].target, p.moves[1].target);
    assert_eq!(p.after.nodes[0].cpu_percent, 25.0);
    // Level 4 has no spread trigger (the deviation is under its tolerance), but its
    // cost-gated peak moves make the same two moves: each lowers node-0 by 5 points for 2
    // GiB copied, well worth it.
    let p4 = run(
        &s,
        &DrsConfig {
            migration_threshold: 4,
            ..c.clone()
        },
    );
    assert_eq!(p4.moves.len(), 2, "{:#?}", p4.moves);
    assert!(
        p4.moves
            .iter()
            .all(|m| m.source == node_id(0) && m.reason.starts_with("peak: node-0 is the busiest host"))
    );
    assert_eq!(p4.after.nodes[0].cpu_percent, 25.0);
}

// ---- properties ----

#[derive(Debug, Clone)]
struct Case {
    snap: ClusterSnapshot,
    level: u8,
    budget: u32,
}

fn arb_case() -> impl Strategy<Value = Case> {
    let nodes = prop::collection::vec((4u32..33, 8u64..129, 0u8..12), 2..7);
    let vms = prop::collection::vec((1u32..9, 1u64..17, 5u8..101, 0u8..8, 0u8..100), 0..36);
    (nodes, vms, 1u8..6, 1u32..4).prop_map(|(nodes, vms, level, budget)| {
        let n = nodes.len();
        let nodes: Vec<_> = nodes
            .into_iter()
            .enumerate()
            .map(|(i, (c, m, ph))| {
                let mut nd = node(i, c, m * 1024);
                nd.cpu_overcommit = 2.0;
                nd.phase = match ph {
                    0 => NodePhase::Maintenance,
                    1 => NodePhase::NotReady,
                    _ => NodePhase::Ready,
                };
                nd.schedulable = ph != 2;
                nd
            })
            .collect();
        let mut snap = snapshot(nodes, vec![]);
        for (i, (c, m, use_pct, kind, at)) in vms.into_iter().enumerate() {
            let mut v = with_usage(
                vm(i, None, c, m * 1024),
                use_pct as f64,
                m * 1024 * use_pct as u64 / 100,
            );
            match kind {
                0 => v.placement.anti_affinity_group = Some("a".into()),
                1 => v.placement.anti_affinity_group = Some("b".into()),
                2 => v.placement.excluded_nodes = vec![node_id(i % n)],
                3 => v.placement.required_nodes = vec![node_id(i % n), node_id((i + 1) % n)],
                4 => v.running = false,
                _ => {}
            }
            // Assign where it fits by allocation (possibly breaking its policy, which DRS fixes).
            let target = at as usize % n;
            let occ = crate::placement::Occupancy::new(&snap, &[]);
            let nd = &snap.nodes[target];
            if occ.cpu[target] + c as f64 <= nd.cpu_limit()
                && occ.memory[target] + v.memory_mib as f64 <= nd.memory_limit_mib()
            {
                v.node = Some(nd.id);
                snap.vms.push(v);
            }
        }
        Case { snap, level, budget }
    })
}

fn check_plan(case: &Case, c: &DrsConfig, p: &DrsPlan) -> Result<(), TestCaseError> {
    check_plan_from(case, c, &DrsState::default(), p)
}

/// `check_plan` for a plan made from `state` (a relief carried from earlier rounds).
fn check_plan_from(case: &Case, c: &DrsConfig, state: &DrsState, p: &DrsPlan) -> Result<(), TestCaseError> {
    let s = &case.snap;
    let mut after = s.clone();
    p.apply(&mut after);
    let occ = crate::placement::Occupancy::new(&after, &[]);
    let mut seen = std::collections::HashSet::new();
    let mut touches: HashMap<NodeId, u32> = HashMap::new();
    let line = [
        c.threshold_cpu - c.hysteresis_margin,
        c.threshold_memory - c.hysteresis_margin,
    ];
    // A relief that nothing else gives may leave its target above the line, no more than
    // halfway to the threshold.
    let soft = [
        c.threshold_cpu - c.hysteresis_margin / 2.0,
        c.threshold_memory - c.hysteresis_margin / 2.0,
    ];
    // The cluster once the mandatory moves are done: they may have to leave a node above its
    // line, and a later swap only has to cool it from there.
    let mandatory_done = {
        let mut mid = s.clone();
        DrsPlan {
            moves: p.moves.iter().filter(|m| m.mandatory).cloned().collect(),
            ..p.clone()
        }
        .apply(&mut mid);
        plan(
            &mid,
            &DrsConfig {
                migration_threshold: 1,
                ..c.clone()
            },
            &DrsState::default(),
            &MigrationHistory::default(),
            t0(),
        )
        .before
    };
    for m in &p.moves {
        prop_assert!(seen.insert(m.vm), "{} moved twice", m.vm_name);
        let vm = s.vm(m.vm).unwrap();
        prop_assert_eq!(vm.node, Some(m.source));
        prop_assert!(vm.running || m.mandatory, "stopped VM moved for load");
        let ti = occ.index[&m.target];
        let t = &after.nodes[ti];
        prop_assert!(t.accepts_vms());
        prop_assert!(occ.cpu[ti] <= t.cpu_limit() + 1e-6, "{} over CPU allocation", t.name);
        prop_assert!(
            occ.memory[ti] <= t.memory_limit_mib() + 1e-6,
            "{} over memory allocation",
            t.name
        );
        prop_assert!(!vm.placement.excluded_nodes.contains(&m.target));
        prop_assert!(vm.placement.required_nodes.is_empty() || vm.placement.required_nodes.contains(&m.target));
        if let Some(g) = &vm.placement.anti_affinity_group {
            prop_assert_eq!(occ.group_count(g, ti), 1, "group {} doubled on {}", g, t.name);
        }
        if !m.mandatory {
            *touches.entry(m.source).or_default() += 1;
            *touches.entry(m.target).or_default() += 1;
            let tm = &p.after.nodes[ti];
            let limit = if m.kind == MoveKind::Relieve { soft } else { line };
            let under = tm.cpu_percent <= limit[0] + 0.01 && tm.memory_percent <= limit[1] + 0.01;
            // A swap sends a VM back to the hot node being relieved: it only has to cool.
            let b = &mandatory_done.nodes[ti];
            let swap_back = p.moves.iter().any(|o| o.source == m.target && !o.mandatory)
                && tm.cpu_percent.max(tm.memory_percent) < b.cpu_percent.max(b.memory_percent);
            // A relief over several rounds that trades through the hot node it relieves may
            // load it again before it sheds, never above how full it was when it started.
            let ceiling = [state.staged.as_ref(), p.state.staged.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let k = r.relieves.iter().position(|&n| n == m.target)?;
                    r.ceilings.get(k).copied()
                })
                .fold(f64::NEG_INFINITY, f64::max);
            let below_ceiling = tm.cpu_percent.max(tm.memory_percent) < ceiling * 100.0;
            prop_assert!(
                under || swap_back || below_ceiling,
                "{:?} made hot by {:#?}",
                tm,
                p.moves
            );
        }
    }
    for (n, k) in touches {
        prop_assert!(k <= case.budget, "{} non-mandatory moves on {}", k, n);
    }
    // Reported unrelieved: above a threshold once the plan is made, nothing planned off it,
    // and every hot node that ends so is reported (levels 2-5).
    let over = |n: &crate::drs::NodeMetrics| n.cpu_percent > c.threshold_cpu || n.memory_percent > c.threshold_memory;
    // Metrics are rounded to hundredths: 80.004 % is hot and reads 80.0.
    let over_rounded = |n: &crate::drs::NodeMetrics| {
        n.cpu_percent >= c.threshold_cpu - 0.005 || n.memory_percent >= c.threshold_memory - 0.005
    };
    for u in &p.unrelieved {
        prop_assert!(over_rounded(u), "{:?} reported unrelieved but not hot", u);
        prop_assert!(
            !p.moves.iter().any(|m| m.source == u.id),
            "{} unrelieved with a move off it",
            u.name
        );
    }
    if c.migration_threshold >= 2 && p.state.staged.is_none() {
        for (b, a) in p.before.nodes.iter().zip(&p.after.nodes) {
            let ready = s.node(a.id).is_some_and(|n| n.phase == crate::model::NodePhase::Ready);
            if ready && over(b) && over(a) && !p.moves.iter().any(|m| m.source == a.id) {
                prop_assert!(
                    p.unrelieved.iter().any(|u| u.id == a.id),
                    "{} stays hot unreported",
                    a.name
                );
            }
        }
    }
    // `after` is what the snapshot looks like once applied.
    let again = plan(
        &after,
        &DrsConfig {
            migration_threshold: 1,
            ..c.clone()
        },
        &DrsState::default(),
        &MigrationHistory::default(),
        t0(),
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 0.02;
    prop_assert!(close(again.before.imbalance, p.after.imbalance));
    for (a, b) in again.before.nodes.iter().zip(&p.after.nodes) {
        prop_assert!(
            close(a.cpu_percent, b.cpu_percent) && close(a.memory_percent, b.memory_percent),
            "{:?} vs {:?}",
            a,
            b
        );
    }
    Ok(())
}

/// 200 cases each by default; `PROPTEST_CASES=3000` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn plans_keep_capacity_constraints_and_budgets(case in arb_case()) {
        let c = DrsConfig {
            migration_threshold: case.level,
            max_concurrent_migrations_per_host: case.budget,
            migrations_per_host_per_round: case.budget,
            hysteresis_hold_count: 1,
            ..DrsConfig::default()
        };
        let p = run(&case.snap, &c);
        check_plan(&case, &c, &p)?;
    }

    #[test]
    fn plans_converge(case in arb_case()) {
        let c = DrsConfig {
            migration_threshold: case.level,
            max_concurrent_migrations_per_host: case.budget,
            migrations_per_host_per_round: case.budget,
            hysteresis_hold_count: 1,
            ..DrsConfig::default()
        };
        let mut snap = case.snap.clone();
        let mut state = DrsState::default();
        let mut history = MigrationHistory::default();
        let mut rounds = 0;
        loop {
            let p = plan(&snap, &c, &state, &history, t0());
            if p.moves.is_empty() {
                break;
            }
            rounds += 1;
            prop_assert!(rounds <= 40, "no convergence after 40 rounds");
            check_plan_from(&Case { snap: snap.clone(), ..case.clone() }, &c, &state, &p)?;
            for m in &p.moves {
                history.record(m.vm, m.source, m.target, t0());
            }
            p.apply(&mut snap);
            state = p.state;
        }
        // Stationary from here on.
        for _ in 0..3 {
            let p = plan(&snap, &c, &state, &history, t0());
            prop_assert!(p.moves.is_empty());
            state = p.state;
        }
    }

    /// As the engine runs: one round every `interval`, so the no-ping-pong history ages out
    /// (the window is 12 intervals) and VMs may move again. Every kind of move lowers its
    /// own measure (the squared sum, or the sorted excesses above the mean), so even then
    /// the rounds end: no VM goes back and forth for ever.
    #[test]
    fn plans_settle_with_history_ageing(case in arb_case()) {
        let c = DrsConfig {
            migration_threshold: case.level,
            max_concurrent_migrations_per_host: case.budget,
            migrations_per_host_per_round: case.budget,
            hysteresis_hold_count: 1,
            ..DrsConfig::default()
        };
        let mut snap = case.snap.clone();
        let mut state = DrsState::default();
        let mut history = MigrationHistory::default();
        let mut now = t0();
        let mut quiet = 0;
        let mut last = Vec::new();
        for round in 0..200 {
            let p = plan(&snap, &c, &state, &history, now);
            last.extend(p.moves.iter().map(|m| format!("{round}: {} {}->{}: {}", m.vm_name, m.source_name, m.target_name, m.reason)));
            quiet = if p.moves.is_empty() { quiet + 1 } else { 0 };
            // Settled: nothing planned for longer than the history window.
            if quiet > 13 {
                return Ok(());
            }
            for m in &p.moves {
                history.record(m.vm, m.source, m.target, now);
            }
            p.apply(&mut snap);
            state = p.state;
            now += c.interval;
            history.prune(now, c.recent_migration_window);
        }
        prop_assert!(false, "still moving after 200 rounds: {:#?}", &last[last.len().saturating_sub(8)..]);
    }
}

/// Plans, applies and records rounds until one plans nothing; then checks three more runs
/// plan nothing either. Returns every move made.
fn settle(s: &ClusterSnapshot, c: &DrsConfig) -> Vec<PlannedMove> {
    let (mut snap, mut state, mut history) = (s.clone(), DrsState::default(), MigrationHistory::default());
    let mut all = Vec::new();
    for _ in 0..20 {
        let p = plan(&snap, c, &state, &history, t0());
        state = p.state.clone();
        if p.moves.is_empty() {
            for _ in 0..3 {
                let q = plan(&snap, c, &state, &history, t0());
                assert!(q.moves.is_empty(), "{:#?}", q.moves);
                state = q.state;
            }
            return all;
        }
        for m in &p.moves {
            history.record(m.vm, m.source, m.target, t0());
        }
        p.apply(&mut snap);
        all.extend(p.moves);
    }
    panic!("no convergence after 20 rounds");
}

#[test]
fn level_five_lowers_the_peak_where_the_squared_sum_gains_nothing() {
    // 40 nodes of 16 cores / 64 GiB. node-0 runs 7 VMs of 1 vCPU / 9 GiB, each using a core
    // and 4 GiB (44 % CPU, 44 % memory: 18 points above the CPU mean, below the memory
    // mean); the others run 4 VMs of 1 vCPU / 12 GiB using a core and 9.6 GiB (25 %, 60 %).
    // Any move off node-0 trades CPU it has too much of for memory it has too little of:
    // the squared sum rises, and allocation rules out swaps (node-0 has 1 GiB free).
    let nodes: Vec<_> = (0..40).map(|i| node(i, 16, 65536)).collect();
    let mut vms = Vec::new();
    for n in 0..40 {
        for _ in 0..(if n == 0 { 7 } else { 4 }) {
            let i = vms.len();
            vms.push(if n == 0 {
                with_usage(vm(i, Some(n), 1, 9 * 1024), 100.0, 4096)
            } else {
                with_usage(vm(i, Some(n), 1, 12 * 1024), 100.0, 9830)
            });
        }
    }
    let s = snapshot(nodes, vms);
    let c = DrsConfig {
        migration_threshold: 5,
        max_concurrent_migrations_per_host: 10,
        migrations_per_host_per_round: 10,
        ..cfg()
    };
    let p = run(&s, &c);
    assert_eq!(p.before.max_cpu_percent, 43.75);
    // Two VMs go, to two nodes (each then 31 % CPU, 66 % memory); a third would leave its
    // target further above the memory mean than node-0 is above the CPU mean.
    assert!(p.moves.len() >= 2, "{:#?}", p.moves);
    assert!(
        p.moves[..2]
            .iter()
            .all(|m| m.source == node_id(0) && m.kind == MoveKind::Balance)
    );
    assert_ne!(p.moves[0].target, p.moves[1].target);
    // Those two targets are now the fullest (memory): each trades a memory-heavy VM for
    // one of node-0's light ones (allocation allows no single move back), which lowers
    // them and keeps node-0 at 31 % CPU.
    let rest = &p.moves[2..];
    assert_eq!(rest.len(), 4, "{rest:#?}");
    assert!(
        rest.iter()
            .all(|m| m.reason.contains("swap") && m.kind == MoveKind::Balance)
    );
    assert!(rest.iter().all(|m| m.source == node_id(0) || m.target == node_id(0)));
    assert_eq!(p.after.nodes[0].cpu_percent, 31.25);
    assert!(p.after.max_memory_percent < 66.0, "{:?}", p.after);
    // Level 4 minimises the squared sum only: nothing is worth it.
    let p4 = run(
        &s,
        &DrsConfig {
            migration_threshold: 4,
            ..c.clone()
        },
    );
    assert!(p4.moves.is_empty(), "{:#?}", p4.moves);
    // Settles (later rounds even out the two targets' memory): then nothing more moves.
    let all = settle(&s, &c);
    assert!(all.len() >= 2 && all.iter().all(|m| !m.mandatory), "{all:#?}");
}

#[test]
fn level_five_moves_a_small_nodes_big_vm_to_a_big_node() {
    // node-0 and node-1: 16 cores / 64 GiB; node-2 and node-3: 64 cores / 256 GiB. node-0
    // runs one 12 vCPU / 40 GiB VM using 7.2 cores and 36 GiB (56 % memory, 27 points above
    // the mean); every other VM is 2 vCPU / 8 GiB using 1.4 cores and 7 GiB. Moving the big
    // VM to a big node lowers the peak to 41 % but raises the capacity-weighted squared sum
    // (node-0 ends far below the mean, and the big node counts four times), so only level
    // 5's peak rule moves it.
    let nodes = vec![
        node(0, 16, 65536),
        node(1, 16, 65536),
        node(2, 64, 262144),
        node(3, 64, 262144),
    ];
    let mut vms = vec![with_usage(vm(0, Some(0), 12, 40 * 1024), 60.0, 36 * 1024)];
    for (n, k) in [(1, 2), (2, 10), (3, 10)] {
        for _ in 0..k {
            let i = vms.len();
            vms.push(with_usage(vm(i, Some(n), 2, 8 * 1024), 70.0, 7 * 1024));
        }
    }
    let s = snapshot(nodes, vms);
    let c = DrsConfig {
        migration_threshold: 5,
        ..cfg()
    };
    let p = run(&s, &c);
    assert_eq!(p.before.max_memory_percent, 56.25);
    let first = &p.moves[0];
    assert_eq!(
        (first.vm_name.as_str(), first.source),
        ("vm-0", node_id(0)),
        "{:#?}",
        p.moves
    );
    assert!(first.target == node_id(2) || first.target == node_id(3));
    let max = |m: &ClusterMetrics| m.max_cpu_percent.max(m.max_memory_percent);
    assert!(max(&p.after) < 45.0, "{:#?}", p.after);
    // Level 4 balances too (the imbalance is above its tolerance): the squared sum gains
    // nothing, but the move pays for itself as a peak move (14.8 points for 36 GiB).
    let p4 = run(
        &s,
        &DrsConfig {
            migration_threshold: 4,
            ..c.clone()
        },
    );
    assert!(p4.before.imbalance > 5.0, "{}", p4.before.imbalance);
    assert_eq!(p4.moves[0].vm_name, "vm-0", "{:#?}", p4.moves);
    assert!(p4.moves[0].reason.starts_with("peak:"), "{}", p4.moves[0].reason);
    assert!(max(&p4.after) < 45.0, "{:#?}", p4.after);
    assert!(settle(&s, &c).iter().any(|m| m.vm_name == "vm-0"));
}

#[test]
fn level_five_makes_room_on_a_cool_full_node_for_a_peak_vm() {
    // Three 16-core / 64 GiB nodes, memory fully allocated except 32 GiB on node-2.
    // node-0 (75 % memory, 32 points above the mean) runs two 32 GiB VMs using 24 GiB each;
    // node-1 (6 %) two idle 32 GiB VMs; node-2 (47 %) one 32 GiB VM using 30 GiB. A VM of
    // node-0 fits only on node-2, which it would take over its 80 % line; no swap has an
    // order that keeps allocation. The chain: an idle VM leaves node-1 for node-2's room,
    // then a busy one takes its place.
    const GIB: u64 = 1024;
    let nodes = (0..3).map(|i| node(i, 16, 64 * GIB)).collect();
    let vms = vec![
        with_usage(vm(0, Some(0), 2, 32 * GIB), 10.0, 24 * GIB),
        with_usage(vm(1, Some(0), 2, 32 * GIB), 10.0, 24 * GIB),
        with_usage(vm(2, Some(1), 2, 32 * GIB), 10.0, 2 * GIB),
        with_usage(vm(3, Some(1), 2, 32 * GIB), 10.0, 2 * GIB),
        with_usage(vm(4, Some(2), 2, 32 * GIB), 10.0, 30 * GIB),
    ];
    let s = snapshot(nodes, vms);
    let c = DrsConfig {
        migration_threshold: 5,
        ..cfg()
    };
    let p = run(&s, &c);
    let hops: Vec<_> = p
        .moves
        .iter()
        .map(|m| (m.source_name.as_str(), m.target_name.as_str()))
        .collect();
    assert_eq!(hops, [("node-1", "node-2"), ("node-0", "node-1")], "{:#?}", p.moves);
    assert!(p.moves[1].reason.contains("has made room"), "{}", p.moves[1].reason);
    assert!(p.moves.iter().all(|m| m.kind == MoveKind::Balance && !m.mandatory));
    assert_each_step_fits(&s, &p);
    assert_eq!(p.before.max_memory_percent, 75.0);
    assert_eq!(p.after.nodes[0].memory_percent, 37.5);
    assert!(p.after.max_memory_percent <= 50.0, "{:?}", p.after);
    // Level 4 has no peak rule: the squared sum finds nothing worth it.
    let p4 = run(
        &s,
        &DrsConfig {
            migration_threshold: 4,
            ..cfg()
        },
    );
    assert!(p4.moves.is_empty(), "{:#?}", p4.moves);
    // And it settles.
    let all = settle(&s, &c);
    assert!(all.len() >= 2);
}

#[test]
fn level_five_looks_past_the_coolest_nodes_for_room() {
    // 80 nodes of 16 cores / 64 GiB. node-0 (75 % memory) runs three 16 GiB VMs, fully
    // used, and a tiny pinned one. Nodes 1-70 are the coolest (10 %) but full: one 62 GiB VM
    // each, 2 GiB free. Nodes 71-79 are warmer (30 %) with 32 GiB free. The 64 coolest
    // nodes with room for node-0's smallest VM are all full ones, where its big VMs do not
    // fit; the planner must look further, to the warmer nodes with room.
    const GIB: u64 = 1024;
    let nodes = (0..80).map(|i| node(i, 16, 64 * GIB)).collect();
    let mut vms = Vec::new();
    for _ in 0..3 {
        vms.push(with_usage(vm(vms.len(), Some(0), 2, 16 * GIB), 10.0, 16 * GIB));
    }
    // Pinned: it cannot move, but it is the smallest VM of the fullest node.
    let mut tiny = with_usage(vm(vms.len(), Some(0), 1, GIB), 1.0, 100);
    tiny.placement.required_nodes = vec![node_id(0)];
    vms.push(tiny);
    for n in 1..80 {
        vms.push(if n <= 70 {
            with_usage(vm(vms.len(), Some(n), 2, 62 * GIB), 10.0, 6554)
        } else {
            with_usage(vm(vms.len(), Some(n), 2, 32 * GIB), 10.0, 19661)
        });
    }
    let s = snapshot(nodes, vms);
    let c = DrsConfig {
        migration_threshold: 5,
        ..cfg()
    };
    let p = run(&s, &c);
    let off_0: Vec<_> = p.moves.iter().filter(|m| m.source == node_id(0)).collect();
    assert!(!off_0.is_empty(), "{:#?}", p.moves);
    let warm: Vec<NodeId> = (71..80).map(node_id).collect();
    assert!(off_0.iter().all(|m| warm.contains(&m.target)), "{off_0:#?}");
    assert!(p.after.nodes[0].memory_percent < 51.0, "{:?}", p.after.nodes[0]);
    assert_each_step_fits(&s, &p);
}

const GIB: u64 = 1024;

/// On 16-core / 64 GiB nodes: node-0 hot (87.5 % memory) with two busy VMs of 32 and 26 GiB
/// (vm-0, vm-1), node-1 cool but fully allocated by eight idle 8 GiB VMs (vm-2..9).
fn hot_node_and_full_cool_node() -> Vec<VmSnapshot> {
    let mut vms = vec![
        with_usage(vm(0, Some(0), 4, 32 * GIB), 100.0, 30 * GIB),
        with_usage(vm(1, Some(0), 4, 26 * GIB), 100.0, 26 * GIB),
    ];
    for _ in 0..8 {
        vms.push(with_usage(vm(vms.len(), Some(1), 1, 8 * GIB), 10.0, GIB));
    }
    vms
}

/// After `moves`, no node is hot and a new plan moves nothing.
fn assert_relieved_after(s: &ClusterSnapshot, c: &DrsConfig, moves: &[PlannedMove]) {
    let mut end = s.clone();
    for m in moves {
        end.vms.iter_mut().find(|v| v.id == m.vm).unwrap().node = Some(m.target);
    }
    let after = run(&end, c);
    assert!(after.moves.is_empty(), "{:#?}", after.moves);
    assert!(after.before.max_memory_percent < 85.0, "{:?}", after.before);
    assert!(after.before.max_cpu_percent <= 75.0, "{:?}", after.before);
}

#[test]
fn relief_that_needs_more_moves_than_a_round_allows_is_carried_over_rounds() {
    // Three 16-core / 64 GiB nodes, 2 migrations per host per round. node-0 is hot (87.5 %
    // memory): two busy VMs of 32 and 26 GiB. node-1 is cool but fully allocated: eight idle
    // 8 GiB VMs. node-2 has 40 GiB free but 70 % CPU, so neither busy VM (4 cores) may land
    // there, nor trade places with node-2's one VM. The only relief: four idle VMs leave
    // node-1 for node-2, then the 26 GiB VM takes their room: five moves, four of them on
    // node-1, more than one round allows.
    let mut vms = hot_node_and_full_cool_node();
    vms.push(with_usage(vm(10, Some(2), 12, 24 * GIB), 93.34, 24 * GIB));
    let s = snapshot((0..3).map(|i| node(i, 16, 64 * GIB)).collect(), vms);
    let c = DrsConfig {
        migration_threshold: 2,
        migrations_per_host_per_round: 2,
        ..cfg()
    };
    let first = run(&s, &c);
    let hops: Vec<_> = first
        .moves
        .iter()
        .map(|m| (m.source_name.as_str(), m.target_name.as_str()))
        .collect();
    assert_eq!(hops, [("node-1", "node-2"); 2], "{:#?}", first.moves);
    assert!(
        first.moves[0]
            .reason
            .contains("making room to relieve node-0 (step 1 of 5, over several rounds)"),
        "{}",
        first.moves[0].reason
    );
    assert_each_step_fits(&s, &first);
    assert!(first.after.nodes[2].cpu_percent <= 75.0, "{:?}", first.after.nodes[2]);
    let carried = first.state.staged.clone().expect("the rest is carried");
    assert_eq!((carried.steps.len(), carried.total), (3, 5));

    let all = settle(&s, &c);
    assert_eq!(all.len(), 5, "{all:#?}");
    let last = all.last().unwrap();
    assert_eq!((last.vm_name.as_str(), last.target_name.as_str()), ("vm-1", "node-1"));
    assert!(last.reason.contains("(step 5 of 5"), "{}", last.reason);
    assert_relieved_after(&s, &c, &all);

    // A carried plan whose next step no longer holds is dropped, not forced: here the
    // cluster changed under it (node-2 filled up), so the third step cannot be made.
    let mut mid = s.clone();
    for m in &first.moves {
        mid.vms.iter_mut().find(|v| v.id == m.vm).unwrap().node = Some(m.target);
    }
    let filler = with_usage(vm(11, Some(2), 1, 24 * GIB), 1.0, GIB);
    mid.vms.push(filler);
    let mut history = MigrationHistory::default();
    for m in &first.moves {
        history.record(m.vm, m.source, m.target, t0());
    }
    let next = plan(&mid, &c, &first.state, &history, t0());
    assert!(
        next.moves.iter().all(|m| !m.reason.contains("step 3 of 5")),
        "{:#?}",
        next.moves
    );
    assert!(
        next.state.staged.as_ref().is_none_or(|s| s.total != 5),
        "{:?}",
        next.state.staged
    );
}

#[test]
fn room_made_with_several_vms_relieves_a_hot_node_in_a_large_cluster() {
    // Ten 16-core / 64 GiB nodes (too many for the exact search). node-0 is hot (87.5 %
    // memory) with two busy VMs of 32 and 26 GiB. node-1 is cool but fully allocated: eight
    // idle 8 GiB VMs. node-2..9 each run one busy VM (70 % CPU) and have 8 GiB free: room
    // for one idle VM each, none for a busy one. Relief: four idle VMs leave node-1, one to
    // each of four busy nodes, then the 26 GiB VM takes their room; node-1 takes part in
    // five moves, so it is made over three rounds.
    let mut vms = hot_node_and_full_cool_node();
    for n in 2..10 {
        vms.push(with_usage(vm(vms.len(), Some(n), 12, 56 * GIB), 93.34, 24 * GIB));
    }
    let s = snapshot((0..10).map(|i| node(i, 16, 64 * GIB)).collect(), vms);
    let c = DrsConfig {
        migration_threshold: 2,
        migrations_per_host_per_round: 2,
        ..cfg()
    };
    let first = run(&s, &c);
    assert_eq!(first.moves.len(), 2, "{:#?}", first.moves);
    assert!(first.moves.iter().all(|m| m.source_name == "node-1"));
    assert!(
        first.moves[0]
            .reason
            .contains("making room to relieve node-0 (step 1 of 5"),
        "{}",
        first.moves[0].reason
    );
    assert_each_step_fits(&s, &first);

    let all = settle(&s, &c);
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_eq!(
        (all[4].vm_name.as_str(), all[4].target_name.as_str()),
        ("vm-1", "node-1")
    );
    let targets: BTreeSet<&str> = all[..4].iter().map(|m| m.target_name.as_str()).collect();
    assert_eq!(targets.len(), 4, "one idle VM per busy node: {all:#?}");
    assert_relieved_after(&s, &c, &all);
}

/// node-0 (16 cores / 64 GiB) runs one movable VM using 24 GiB and reports 40 GiB in use
/// (16 GiB that does not move): 62.5 % memory. node-1 and node-2 each run a VM using
/// `others_mib`. Nothing is hot.
fn one_busy_host(others_mib: u64) -> ClusterSnapshot {
    busy_host(24 * 1024, 20 * 1024, others_mib)
}

/// node-0 (16 cores / 64 GiB) runs one movable VM of `moving_mib` and reports 40 GiB in use:
/// 62.5 % memory. node-1 and node-2 each run a VM of `others_alloc_mib` using `others_mib`.
fn busy_host(moving_mib: u64, others_alloc_mib: u64, others_mib: u64) -> ClusterSnapshot {
    let nodes: Vec<_> = (0..3).map(|i| node(i, 16, 65536)).collect();
    let vms = vec![
        with_usage(vm(0, Some(0), 2, moving_mib), 5.0, moving_mib),
        with_usage(vm(1, Some(1), 2, others_alloc_mib), 5.0, others_mib),
        with_usage(vm(2, Some(2), 2, others_alloc_mib), 5.0, others_mib),
    ];
    let mut s = snapshot(nodes, vms);
    s.nodes[0].usage = Some(NodeUsageSample {
        cpu_percent: 1.0,
        memory_used_mib: 40 * 1024,
    });
    s
}

#[test]
fn levels_three_and_four_make_peak_moves_that_pay_for_themselves() {
    let level = |l: u8| DrsConfig {
        migration_threshold: l,
        ..cfg()
    };
    // The others at 10 %: moving vm-0 lowers the pair's fuller use from 62.5 % to 47.5 %,
    // 15 points for about 24.5 GiB copied. Level 3 makes it (it needs 0.1 point per GiB);
    // level 2 makes no peak moves.
    let s = one_busy_host(6554);
    let p = run(&s, &level(3));
    let m = &p.moves[0];
    assert_eq!((m.vm_name.as_str(), m.source), ("vm-0", node_id(0)));
    assert!(
        m.reason.starts_with("peak: node-0 is the busiest host (62%"),
        "{}",
        m.reason
    );
    assert_eq!(m.kind, MoveKind::Balance);
    assert!(p.after.nodes[0].memory_percent < 26.0, "{:?}", p.after);
    assert!(p.after.max_memory_percent < 48.0, "{:?}", p.after);
    assert!(run(&s, &level(2)).moves.is_empty());
    // The others at 23 %: the same move lowers the pair by 2 points only (the target ends
    // at 60.5 %). Not worth 24.5 GiB at level 3 (nor as balancing); worth it at level 4
    // (0.05 point per GiB).
    let s = one_busy_host(15_073);
    let p3 = run(&s, &level(3));
    assert!(p3.moves.is_empty(), "{:#?}", p3.moves);
    let p4 = run(&s, &level(4));
    assert_eq!(p4.moves[0].vm_name, "vm-0", "{:#?}", p4.moves);
    assert!(p4.moves[0].reason.contains("by 2.0 points"), "{}", p4.moves[0].reason);
}

#[test]
fn level_three_moves_a_vm_held_by_the_window_on_but_never_back() {
    // vm-0 came to node-0 from node-1 ten minutes ago and is all that would lower node-0,
    // the busiest host (62.5 % memory): relief fills targets with such VMs, and holding
    // them left the settled peak 20 points above where peak moves could take it. The peak
    // move takes it on to node-2, never back to node-1.
    let s = one_busy_host(6554);
    let ago = t0() - chrono::Duration::minutes(10);
    let mut h = MigrationHistory::default();
    h.record(vm_id(0), node_id(1), node_id(0), ago);
    let p = plan(&s, &cfg(), &DrsState::default(), &h, t0());
    assert!(!p.moves.is_empty());
    assert!(
        p.moves.iter().all(|m| m.vm_name != "vm-0" || m.target == node_id(2)),
        "{:#?}",
        p.moves
    );
    let m = &p.moves[0];
    assert_eq!(
        (m.vm_name.as_str(), m.source, m.target),
        ("vm-0", node_id(0), node_id(2))
    );
    assert!(m.reason.starts_with("peak: node-0 is the busiest host"), "{}", m.reason);
    // It has been on both other nodes within the window: it stays.
    h.record(vm_id(0), node_id(2), node_id(1), ago - chrono::Duration::minutes(10));
    let p = plan(&s, &cfg(), &DrsState::default(), &h, t0());
    assert!(p.moves.is_empty(), "{:#?}", p.moves);
}

#[test]
fn level_three_trades_a_cpu_heavy_vm_for_a_memory_heavy_one_when_no_single_move_lowers_the_peak() {
    // 16-core / 64 GiB nodes. node-0 is CPU-heavy (70 % CPU, 9 % memory), node-1
    // memory-heavy (69 % memory, 1 % CPU), node-2 has all its memory allocated (no VM fits
    // on it). Off node-0, vm-0 (8 cores) or vm-1 (3.2 cores) would take node-1 to 75 % or
    // 72 % memory, above node-0's 70 %: no single move lowers the peak, and level 3 used
    // to stop there. Trading vm-1 for node-1's vm-3 (20 GiB, nearly idle) lowers both:
    // node-0 to about 51 % CPU, node-1 to about 41 % memory.
    let nodes: Vec<_> = (0..3).map(|i| node(i, 16, 65536)).collect();
    let vms = vec![
        with_usage(vm(0, Some(0), 8, 4096), 100.0, 4096),
        with_usage(vm(1, Some(0), 4, 2048), 80.0, 2048),
        with_usage(vm(2, Some(1), 2, 24 * 1024), 5.0, 24 * 1024),
        with_usage(vm(3, Some(1), 2, 20 * 1024), 5.0, 20 * 1024),
        with_usage(vm(4, Some(2), 4, 64 * 1024), 30.0, 30 * 1024),
    ];
    let s = snapshot(nodes, vms);
    let fuller = |m: &ClusterMetrics| m.max_cpu_percent.max(m.max_memory_percent);
    let p = run(&s, &cfg());
    assert!((fuller(&p.before) - 70.0).abs() < 0.1, "{:?}", p.before);
    let swap: Vec<_> = p.moves.iter().filter(|m| m.reason.contains("swapping")).collect();
    assert_eq!(swap.len(), 2, "{:#?}", p.moves);
    let names: BTreeSet<_> = swap.iter().map(|m| m.vm_name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["vm-1", "vm-3"]), "{:#?}", p.moves);
    assert!(
        swap.iter()
            .all(|m| m.reason.starts_with("peak: node-0 is the busiest host (70%"))
    );
    assert!(fuller(&p.after) < 55.0, "{:?}", p.after);
    // Every step keeps allocation, and no node goes above its relief line (75 % CPU, 80 %
    // memory) at any step.
    assert_each_step_fits(&s, &p);
    let mut cur = s.clone();
    for m in &p.moves {
        DrsPlan {
            moves: vec![m.clone()],
            ..p.clone()
        }
        .apply(&mut cur);
        let now = measure(&cur, &cfg(), t0());
        assert!(now.max_cpu_percent <= 75.0 && now.max_memory_percent <= 80.0, "{now:?}");
    }
    // Level 2 makes no peak moves.
    let l2 = DrsConfig {
        migration_threshold: 2,
        ..cfg()
    };
    assert!(run(&s, &l2).moves.is_empty());
}

#[test]
fn relief_makes_room_on_a_full_cool_node_past_the_coolest_sixteen() {
    // 26 nodes of 16 cores / 64 GiB. node-0 is hot (87.5 % memory): two busy VMs of 32 and
    // 26 GiB. node-1..20 are the coolest (10 % memory) but full: one idle 64 GiB VM each, no
    // room anywhere for it. node-21 (41 % memory) is full too: an idle 32 GiB VM and four
    // 8 GiB VMs using 6 GiB each. node-22..25 have 40 GiB free but run at 70 % CPU, so
    // neither busy VM (4 cores) may land there. The only relief: the idle 32 GiB VM leaves
    // node-21 for a busy node, then the 26 GiB VM takes its place; node-21 is only the 21st
    // coolest node.
    let mut vms = vec![
        with_usage(vm(0, Some(0), 4, 32 * GIB), 100.0, 30 * GIB),
        with_usage(vm(1, Some(0), 4, 26 * GIB), 100.0, 26 * GIB),
    ];
    for n in 1..=20 {
        vms.push(with_usage(vm(vms.len(), Some(n), 2, 64 * GIB), 10.0, 6554));
    }
    let idle = vms.len();
    vms.push(with_usage(vm(idle, Some(21), 2, 32 * GIB), 10.0, 2 * GIB));
    for _ in 0..4 {
        vms.push(with_usage(vm(vms.len(), Some(21), 1, 8 * GIB), 10.0, 6 * GIB));
    }
    for n in 22..26 {
        vms.push(with_usage(vm(vms.len(), Some(n), 12, 24 * GIB), 93.34, 24 * GIB));
    }
    let s = snapshot((0..26).map(|i| node(i, 16, 64 * GIB)).collect(), vms);
    let c = DrsConfig {
        migration_threshold: 2,
        migrations_per_host_per_round: 2,
        ..cfg()
    };
    let p = run(&s, &c);
    let fuller = |n: &NodeMetrics| n.cpu_percent.max(n.memory_percent);
    let cooler = p
        .before
        .nodes
        .iter()
        .filter(|n| fuller(n) < fuller(&p.before.nodes[21]))
        .count();
    assert!(
        cooler >= 16,
        "node-21 is not past the coolest 16: {cooler} cooler nodes"
    );
    let hops: Vec<_> = p
        .moves
        .iter()
        .map(|m| (m.vm_name.as_str(), m.source_name.as_str(), m.target_name.as_str()))
        .collect();
    assert_eq!(hops.len(), 2, "{:#?}", p.moves);
    let maker = format!("vm-{idle}");
    assert_eq!((hops[0].0, hops[0].1), (maker.as_str(), "node-21"), "{:#?}", p.moves);
    assert!((22..26).any(|n| hops[0].2 == format!("node-{n}")), "{hops:?}");
    assert_eq!(hops[1], ("vm-1", "node-0", "node-21"));
    assert!(p.moves.iter().all(|m| m.kind == MoveKind::Relieve && !m.mandatory));
    assert!(
        p.moves[0].reason.contains("making room on node-21"),
        "{}",
        p.moves[0].reason
    );
    assert_each_step_fits(&s, &p);
    assert!(p.unrelieved.is_empty(), "{:?}", p.unrelieved);
    assert!(p.after.nodes[0].memory_percent <= 80.0, "{:?}", p.after.nodes[0]);
    assert_relieved_after(&s, &c, &p.moves);
}

#[test]
fn level_three_takes_sub_point_peak_moves_only_in_the_round_that_starts_the_descent() {
    // node-0 at 62.5 % memory (a 4 GiB VM and 36 GiB that does not move), node-1 and
    // node-2 at 55.5 %: moving vm-0 lowers the pair's fuller use by 0.8 points, which pays
    // for its 4 GiB at level 3. When the descent goes on from the previous round (what the
    // per-host budget cut off), a move must lower the busiest host by a point.
    let s = busy_host(4096, 40 * 1024, 36_352);
    let first = run(&s, &cfg());
    assert_eq!(first.moves.len(), 1, "{:#?}", first.moves);
    let m = &first.moves[0];
    assert_eq!((m.vm_name.as_str(), m.source), ("vm-0", node_id(0)));
    assert!(m.reason.contains("by 0.8 points"), "{}", m.reason);
    let going_on = DrsState {
        imbalance_streak: 1,
        ..DrsState::default()
    };
    let later = plan(&s, &cfg(), &going_on, &MigrationHistory::default(), t0());
    assert!(later.moves.is_empty(), "{:#?}", later.moves);
}

#[test]
fn anti_correlated_hot_nodes_are_relieved_by_a_swap_when_nothing_has_room() {
    // Twenty 16-core / 64 GiB nodes. node-0 is hot in CPU (85 %: two busy 8 GiB VMs) with
    // 24 GiB of allocation free; node-1 is hot in memory (89 %: three idle 19 GiB VMs), its
    // CPU idle. The other eighteen are fully allocated and sit just under the CPU relief
    // line, so no VM fits anywhere, no room can be made, and the room-making pair (which
    // looks at the sixteen coolest) finds nothing. Trading a busy VM of node-0 for an idle
    // one of node-1 cools both.
    let mut vms = vec![
        with_usage(vm(0, Some(0), 8, 8 * GIB), 85.0, 8 * GIB),
        with_usage(vm(1, Some(0), 8, 8 * GIB), 85.0, 8 * GIB),
        with_usage(vm(2, Some(0), 2, 12 * GIB), 0.0, 4 * GIB),
        with_usage(vm(3, Some(0), 2, 12 * GIB), 0.0, 4 * GIB),
    ];
    for _ in 0..3 {
        vms.push(with_usage(vm(vms.len(), Some(1), 2, 19 * GIB), 1.0, 19 * GIB));
    }
    for n in 2..20 {
        for _ in 0..4 {
            vms.push(with_usage(vm(vms.len(), Some(n), 4, 16 * GIB), 74.0, 8 * GIB));
        }
    }
    let s = snapshot((0..20).map(|i| node(i, 16, 64 * GIB)).collect(), vms);
    // Level 2: relief only, so the plan is the relief and nothing else.
    let c = DrsConfig {
        migration_threshold: 2,
        ..cfg()
    };
    let p = run(&s, &c);
    assert_eq!(p.moves.len(), 2, "{:#?}", p.moves);
    assert!(
        p.moves.iter().all(|m| m.reason.contains("(swap with node-")),
        "{:#?}",
        p.moves
    );
    // The idle VM goes first: node-1 has no room for a busy one until it has left.
    let (first, second) = (&p.moves[0], &p.moves[1]);
    assert_eq!(
        (first.source_name.as_str(), first.target_name.as_str()),
        ("node-1", "node-0")
    );
    assert_eq!(
        (second.source_name.as_str(), second.target_name.as_str()),
        ("node-0", "node-1")
    );
    assert!(["vm-0", "vm-1"].contains(&second.vm_name.as_str()), "{second:#?}");
    assert_each_step_fits(&s, &p);
    let mut end = s.clone();
    p.apply(&mut end);
    let after = run(&end, &c);
    assert!(after.moves.is_empty(), "{:#?}", after.moves);
    assert!(after.before.max_cpu_percent < 80.0, "{:?}", after.before);
    assert!(after.before.max_memory_percent < 85.0, "{:?}", after.before);
}

#[test]
fn a_hot_node_nothing_else_relieves_sends_a_vm_above_a_targets_line_not_past_halfway() {
    // Twelve 16-core / 64 GiB nodes (too many for the exact search). node-0 is hot in memory
    // (93.75 %: four 15 GiB VMs, nearly idle, 4 GiB of allocation free). Every other node
    // sits exactly at its CPU relief line (75 %: two busy 24 GiB VMs) with 16 GiB free, so
    // no target stays under its line, no VM of theirs fits on node-0 for a swap, and moving
    // theirs anywhere makes things worse. One idle VM going to a node that ends at 76.6 % CPU
    // (above its 75 % line, under the 77.5 % halfway mark to the 80 % threshold) relieves it.
    let mut vms = Vec::new();
    for _ in 0..4 {
        vms.push(with_usage(vm(vms.len(), Some(0), 1, 15 * GIB), 25.0, 15 * GIB));
    }
    for n in 1..12 {
        for _ in 0..2 {
            vms.push(with_usage(vm(vms.len(), Some(n), 6, 24 * GIB), 100.0, 15 * GIB));
        }
    }
    let s = snapshot((0..12).map(|i| node(i, 16, 64 * GIB)).collect(), vms);
    let c = DrsConfig {
        migration_threshold: 2,
        ..cfg()
    };
    let p = run(&s, &c);
    assert_eq!(p.moves.len(), 1, "{:#?}", p.moves);
    let m = &p.moves[0];
    assert_eq!(
        (m.kind, m.source_name.as_str()),
        (MoveKind::Relieve, "node-0"),
        "{m:#?}"
    );
    let after = |name: &str| p.after.nodes.iter().find(|n| n.name == name).unwrap().clone();
    assert!(after("node-0").memory_percent < 80.0, "{:?}", after("node-0"));
    let t = after(&m.target_name);
    assert!(t.cpu_percent > 75.0 && t.cpu_percent <= 77.5, "{t:?}");
    // Nothing is hot afterwards, and the next plan leaves the target where it is.
    let mut end = s.clone();
    p.apply(&mut end);
    let next = run(&end, &c);
    assert!(next.moves.is_empty(), "{:#?}", next.moves);
    assert!(next.unrelieved.is_empty(), "{:?}", next.unrelieved);
}

//! HA in virtual time: scenario folders (cluster, timed faults, expected event log) and
//! randomized fault runs with the simulator's invariant checker.
//!
//! - `cargo test -p lqx-core --test ha_scenarios`
//! - Re-bless expected logs after a reviewed behaviour change: `LQX_HA_BLESS=1 cargo test ...`
//! - More random seeds: `LQX_HA_SEEDS=100000 LQX_HA_SEED_BASE=0 cargo test --release ...`
//! - Replay one seed: `LQX_HA_SEED=1234 cargo test -p lqx-core --test ha_scenarios replay -- --nocapture`

use std::{
    fs,
    path::{Path, PathBuf},
};

use lqx_core::ha::{SimSpec, sim};

fn scenario_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ha");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("faults.yaml").exists())
        .collect();
    dirs.sort();
    dirs
}

/// Log lines without comments and blank lines.
fn significant(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn run_dir(dir: &Path) -> sim::SimReport {
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()));
    let spec = SimSpec::from_files(&read("cluster.yaml"), &read("faults.yaml"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    sim::run(&spec)
}

#[test]
fn scenarios_match_their_expected_logs() {
    let bless = std::env::var_os("LQX_HA_BLESS").is_some();
    let dirs = scenario_dirs();
    assert!(dirs.len() >= 15, "only {} scenarios", dirs.len());
    let mut failures = vec![];
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let report = run_dir(dir);
        for v in &report.violations {
            failures.push(format!("{name}: invariant broken {v}"));
        }
        let actual = report.log_text();
        let path = dir.join("expected.log");
        let expected = fs::read_to_string(&path).unwrap_or_default();
        if bless {
            let header: String = expected
                .lines()
                .take_while(|l| l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect();
            fs::write(&path, format!("{header}{actual}")).unwrap();
            continue;
        }
        let (want, got) = (significant(&expected), significant(&actual));
        if want != got {
            let i = want.iter().zip(&got).take_while(|(a, b)| a == b).count();
            failures.push(format!(
                "{name}: log differs at line {} of {} (expected) / {} (actual)\n  expected: {}\n  actual:   {}\n--- full actual log ---\n{actual}",
                i + 1,
                want.len(),
                got.len(),
                want.get(i).map_or("<end>", String::as_str),
                got.get(i).map_or("<end>", String::as_str),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn kinds<'a>(r: &'a sim::SimReport, kind: &str) -> Vec<&'a sim::LogLine> {
    r.log.iter().filter(|l| l.kind == kind).collect()
}

fn scenario(name: &str) -> sim::SimReport {
    run_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ha").join(name))
}

#[test]
fn scenario_properties_hold_independently_of_the_logs() {
    // A blip shorter than the timeout: nothing restarts, nothing is fenced.
    let r = scenario("blip_shorter_than_timeout");
    assert!(kinds(&r, "failover_restart").is_empty() && kinds(&r, "vm_stopped").is_empty());
    assert!(kinds(&r, "node_unreachable").is_empty());

    // A long partition: exactly one restart per HA VM, after the old host fenced itself.
    let r = scenario("long_partition");
    let fenced = kinds(&r, "agent_self_fenced");
    assert_eq!(fenced.len(), 1);
    let restarts = kinds(&r, "failover_restart");
    assert_eq!(restarts.len(), 2);
    assert!(restarts.iter().all(|x| x.at_ms > fenced[0].at_ms));
    assert!(
        kinds(&r, "vm_started").iter().all(|x| x.node != "node-1"),
        "the old host never restarts them"
    );

    // An agent paused past its lease: its fence process fences (the agent's own watchdog is
    // stopped with it); the stale reply is ignored.
    let r = scenario("agent_paused_past_lease");
    assert_eq!(kinds(&r, "fence_process_fenced").len(), 1);
    assert!(kinds(&r, "agent_self_fenced").is_empty());
    assert_eq!(kinds(&r, "failover_restart").len(), 2);

    // More than half the hosts unreachable: no failover at all, VMs come back in place.
    let r = scenario("storm_more_than_half_unreachable");
    assert_eq!(kinds(&r, "failover_paused").len(), 1);
    assert!(kinds(&r, "failover_restart").is_empty());

    // Not enough capacity: the lower priority VM is unplaced, then restarts when its host returns.
    let r = scenario("not_enough_capacity");
    assert!(!kinds(&r, "failover_unplaced").is_empty());
    assert!(kinds(&r, "vm_started").iter().any(|x| x.node == "node-1"));

    // The control plane killed mid-failover: every HA VM runs exactly once in the end.
    let r = scenario("control_plane_killed_mid_failover");
    assert_eq!(kinds(&r, "cp_up").len(), 1);
    assert_eq!(kinds(&r, "vm_started").len(), 2);
    assert_eq!(kinds(&r, "failover_restart").len(), 2);
}

#[test]
fn random_faults_keep_the_invariants() {
    let seeds: u64 = std::env::var("LQX_HA_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    let base: u64 = std::env::var("LQX_HA_SEED_BASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut failed = vec![];
    let mut restarts = 0;
    for seed in base..base + seeds {
        let r = sim::run(&SimSpec::random(seed));
        restarts += r.restarts;
        if let Some(v) = r.violations.first() {
            failed.push(format!(
                "seed {seed}: {v}\n  replay: LQX_HA_SEED={seed} cargo test -p lqx-core --test ha_scenarios replay -- --nocapture"
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {seeds} seeds broke an invariant:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(
        restarts > seeds as usize / 10,
        "the random faults must actually cause failovers ({restarts})"
    );
}

#[test]
fn replay() {
    let seed: u64 = std::env::var("LQX_HA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let spec = SimSpec::random(seed);
    let r = sim::run(&spec);
    println!("seed {seed}: config {:?}\nparams {:?}", spec.config, spec.params);
    for f in &spec.faults {
        println!("  fault {:?}", f);
    }
    print!("{}", r.log_text());
    let again = sim::run(&spec);
    assert_eq!(r.log, again.log, "a seed must replay identically");
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
}

/// The hung agent: SIGSTOP holds its in-process watchdog too. Without the fence process the
/// HA VM runs on two hosts (the double run seen on real hosts); with it, never.
#[test]
fn a_stopped_agent_is_fenced_only_by_the_fence_process() {
    let cluster = "nodes:\n  - {name: node-1, cpu_cores: 8, memory_mib: 8192}\n  - {name: node-2, cpu_cores: 8, memory_mib: 8192}\nvms:\n  - {name: db-1, node: node-1, cpu_cores: 2, memory_mib: 1024, ha: {enabled: true}}\n";
    let faults =
        "sim: {duration: 200s}\nfaults:\n  - {at: 10s, pause_agent: node-1}\n  - {at: 130s, resume_agent: node-1}\n";
    let mut spec = SimSpec::from_files(cluster, faults).unwrap();
    spec.params.fence_process = false;
    let r = sim::run(&spec);
    assert!(
        r.violations.iter().any(|v| v.what.contains("while it runs on node-1")),
        "without the fence process the VM must run twice: {:#?}\n{}",
        r.violations,
        r.log_text()
    );
    spec.params.fence_process = true;
    let r = sim::run(&spec);
    assert!(r.violations.is_empty(), "{:#?}\n{}", r.violations, r.log_text());
    assert!(r.log_text().contains("fence_process_fenced"), "{}", r.log_text());

    // Both stopped: with a host watchdog the host resets in time; without one nothing fences.
    let faults = "sim: {duration: 300s}\nfaults:\n  - {at: 10s, pause_agent: node-1}\n  - {at: 10s, pause_fence: node-1}\n  - {at: 130s, resume_agent: node-1}\n  - {at: 130s, resume_fence: node-1}\n";
    let mut spec = SimSpec::from_files(cluster, faults).unwrap();
    spec.params.host_watchdog = true;
    let r = sim::run(&spec);
    assert!(r.violations.is_empty(), "{:#?}\n{}", r.violations, r.log_text());
    assert!(r.log_text().contains("host_watchdog_reset"), "{}", r.log_text());
    spec.params.host_watchdog = false;
    assert!(
        !sim::run(&spec).violations.is_empty(),
        "no watchdog, both stopped: nothing fences"
    );
}

/// The random seeds include stopped agents: without the fence process some of them break the
/// invariant (so the clean runs above do cover the case).
#[test]
fn random_seeds_catch_the_double_run_without_the_fence_process() {
    let failing = (0..300u64).find(|seed| {
        let mut spec = SimSpec::random(*seed);
        spec.params.fence_process = false;
        !sim::run(&spec).violations.is_empty() && sim::run(&SimSpec::random(*seed)).violations.is_empty()
    });
    let seed = failing.expect("a seed whose stopped agent runs a VM twice without the fence process");
    eprintln!("seed {seed} runs a VM twice without the fence process, and is clean with it");
}

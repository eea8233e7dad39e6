//! The DRS engine over a real store (SQLite in a temp dir) and simulated hosts: automation
//! levels, applying (once, revalidated), clean-up, hysteresis across restarts, the loop.
//!
//! Measured usage is written into the VM records as the agents' heartbeats would; time is
//! an injected clock, so the 24 h clean-up needs no waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lqx_core::ErrorKind;
use lqx_core::alert::conditions;
use lqx_core::compute::{Compute, Hosts};
use lqx_core::driver::DriverError;
use lqx_core::driver::sim::{SimOp, SimRegistry};
use lqx_core::drs::engine::{DrsEngine, EngineOptions};
use lqx_core::events::{EventBus, EventBusConfig};
use lqx_core::ha::manager::EventAlerts;
use lqx_core::model::{
    AlertSeverity, AuditFilter, AuditResult, AutomationLevel, DrsConfig, EventType, ProjectId,
    RecommendationStatus as St, ResourceType, SubscriptionFilter,
};
use lqx_core::store::Store;

mod engine_fixtures;
use engine_fixtures::cluster;

/// A settable clock.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(Mutex::new(
            DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
        )))
    }
    fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += chrono::Duration::from_std(d).unwrap();
    }
    fn clock(&self) -> lqx_core::drs::engine::Clock {
        let t = self.0.clone();
        Arc::new(move || *t.lock().unwrap())
    }
}

struct Env {
    _dir: tempfile::TempDir,
    compute: Compute,
    _sims: SimRegistry,
    clock: TestClock,
}

impl Env {
    async fn new(yaml: &str) -> Env {
        Env::with_sims(yaml, SimRegistry::new()).await
    }

    /// Like `new`, on hosts already in `sims` (made with their own `SimConfig`) where named so.
    async fn with_sims(yaml: &str, sims: SimRegistry) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("lqx.db").to_str().unwrap()).await.unwrap();
        let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
        engine_fixtures::load(&compute, &sims, yaml).await;
        Env {
            _dir: dir,
            compute,
            _sims: sims,
            clock: TestClock::new(),
        }
    }

    fn options(&self) -> EngineOptions {
        EngineOptions {
            clock: self.clock.clock(),
            ..EngineOptions::default()
        }
    }

    async fn engine(&self, level: AutomationLevel) -> DrsEngine {
        self.engine_with(config(level)).await
    }

    async fn engine_with(&self, config: DrsConfig) -> DrsEngine {
        DrsEngine::open(self.compute.clone(), config, self.options())
            .await
            .unwrap()
    }

    async fn node_of(&self, vm: &str) -> String {
        let v = self.compute.get_vm(vm, ProjectId::DEFAULT).await.unwrap();
        let n = v.status.node_id.unwrap();
        self.compute.get_node(&n.to_string()).await.unwrap().name
    }

    fn migrations_since(&self, seq: u64) -> usize {
        let f = SubscriptionFilter::all()
            .resource_type(ResourceType::Vm)
            .event_type(EventType::Migrated);
        self.compute.events.recent(&f, seq, 10_000).len()
    }
}

/// Hold count 1, so one run acts on what it sees.
fn config(level: AutomationLevel) -> DrsConfig {
    DrsConfig {
        automation_level: level,
        hysteresis_hold_count: 1,
        ..DrsConfig::default()
    }
}

#[tokio::test]
async fn manual_mode_keeps_recommendations_pending_and_does_not_duplicate_them() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let seq = env.compute.events.last_sequence();
    let first = engine.run_once().await.unwrap();
    assert!(!first.recommendations.is_empty(), "{:?}", first.summary);
    assert!(first.summary.imbalance_before > first.summary.imbalance_after);
    for r in &first.recommendations {
        assert_eq!(r.status, St::Pending);
        assert_eq!(r.source_node_name, "node-1");
        assert_ne!(r.target_node_name, "node-1");
        assert!(r.vm_name.starts_with("hot-"), "{}", r.vm_name);
        assert_eq!(
            env.node_of(&r.vm_name).await,
            "node-1",
            "manual mode must not move anything"
        );
    }
    assert_eq!(env.migrations_since(seq), 0);
    let created = SubscriptionFilter::all()
        .resource_type(ResourceType::Drs)
        .event_type(EventType::Created);
    assert_eq!(
        env.compute.events.recent(&created, seq, 100).len(),
        first.recommendations.len()
    );

    // The cluster did not change: the same recommendations are kept, none added.
    for _ in 0..5 {
        env.clock.advance(Duration::from_secs(300));
        let again = engine.run_once().await.unwrap();
        assert_eq!(again.summary.created, 0, "{:?}", again.summary);
        assert_eq!(again.summary.expired, 0);
        let ids: Vec<_> = again.recommendations.iter().map(|r| r.id).collect();
        let first_ids: Vec<_> = first.recommendations.iter().map(|r| r.id).collect();
        assert_eq!(ids, first_ids);
    }
    let status = engine.status().await.unwrap();
    assert_eq!(status.pending as usize, first.recommendations.len());
    assert_eq!(status.applying, 0);
    assert!(status.last_run.is_some());
    let page = engine.list(Some(St::Pending), 0, "").await.unwrap();
    assert_eq!(page.recommendations.len(), first.recommendations.len());
}

#[tokio::test]
async fn partial_applies_only_mandatory_moves() {
    let env = Env::new(&cluster("hot-and-maintenance")).await;
    env.compute.enter_maintenance("node-4", false).await.unwrap();
    let engine = env.engine(AutomationLevel::Partial).await;
    let report = engine.run_once().await.unwrap();
    let evac: Vec<_> = report.recommendations.iter().filter(|r| r.mandatory).collect();
    let relief: Vec<_> = report.recommendations.iter().filter(|r| !r.mandatory).collect();
    assert_eq!(evac.len(), 1, "{:?}", report.recommendations);
    assert_eq!(evac[0].vm_name, "maint-1");
    assert_eq!(evac[0].status, St::Applied);
    assert_eq!(evac[0].applied_by.as_deref(), Some("drs (automation partial)"));
    assert!(evac[0].applied_at.is_some());
    assert_ne!(env.node_of("maint-1").await, "node-4");
    assert!(!relief.is_empty());
    for r in relief {
        assert_eq!(r.status, St::Pending, "{r:?}");
        assert_eq!(env.node_of(&r.vm_name).await, "node-1");
    }
    assert_eq!(report.summary.applied, 1);
    // The engine's own apply is in the audit log, under the system actor.
    let audit = env
        .compute
        .store
        .list_audit(&AuditFilter::default(), 100, "")
        .await
        .unwrap()
        .entries;
    let auto: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "drs.DRSService/ApplyRecommendation")
        .collect();
    assert_eq!(auto.len(), 1, "{audit:?}");
    assert_eq!(auto[0].actor.display_name(), "system:drs");
    assert_eq!(auto[0].resource_id, evac[0].id.to_string());
    assert_eq!(auto[0].result, AuditResult::Ok);
    assert!(
        auto[0]
            .detail
            .contains("automation partial: VM maint-1 moved from node-4"),
        "{}",
        auto[0].detail
    );
}

#[tokio::test]
async fn full_applies_everything_and_then_the_cluster_stays_put() {
    let env = Env::new(&cluster("hot-and-maintenance")).await;
    env.compute.enter_maintenance("node-4", false).await.unwrap();
    let engine = env.engine(AutomationLevel::Full).await;
    let seq = env.compute.events.last_sequence();
    let report = engine.run_once().await.unwrap();
    assert!(report.recommendations.len() >= 2, "{:?}", report.recommendations);
    for r in &report.recommendations {
        assert_eq!(r.status, St::Applied, "{r:?}");
        assert_eq!(env.node_of(&r.vm_name).await, r.target_node_name);
    }
    assert_eq!(env.migrations_since(seq), report.recommendations.len());
    assert_ne!(env.node_of("maint-1").await, "node-4");

    // Each round moves at most `max_concurrent_migrations_per_host` VMs per host, so
    // balancing may take a few more rounds; then the cluster is stationary: ten more runs
    // recommend nothing.
    let mut moved = report.recommendations.len();
    let mut rounds = 1;
    loop {
        env.clock.advance(Duration::from_secs(300));
        let next = engine.run_once().await.unwrap();
        if next.recommendations.is_empty() {
            break;
        }
        assert!(
            next.recommendations.iter().all(|r| r.status == St::Applied),
            "{:?}",
            next.recommendations
        );
        moved += next.recommendations.len();
        rounds += 1;
        assert!(rounds <= 5, "no convergence after 5 rounds");
    }
    let after = engine.run_once().await.unwrap().plan.before;
    assert!(after.max_cpu_percent <= 80.0, "{after:?}");
    for i in 0..10 {
        env.clock.advance(Duration::from_secs(300));
        let again = engine.run_once().await.unwrap();
        assert!(again.recommendations.is_empty(), "run {i}: {:?}", again.recommendations);
        assert_eq!(again.summary.created, 0);
    }
    assert_eq!(env.migrations_since(seq), moved);
}

#[tokio::test]
async fn applying_twice_migrates_once() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    assert!(!recs.is_empty());
    let id = recs[0].id;
    let seq = env.compute.events.last_sequence();
    let (a, b) = tokio::join!(
        engine.apply(id, "alice", None, true),
        engine.apply(id, "bob", None, true)
    );
    let (ok, err) = match (a, b) {
        (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
        other => panic!("exactly one apply must win: {other:?}"),
    };
    assert_eq!(ok.status, St::Applied);
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    assert!(err.message.contains("already"), "{}", err.message);
    assert_eq!(env.migrations_since(seq), 1);
    assert_eq!(env.node_of(&recs[0].vm_name).await, recs[0].target_node_name);

    // Once applied, applying again is refused and migrates nothing.
    let again = engine.apply(id, "alice", None, true).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::FailedPrecondition);
    assert!(again.message.contains("already applied"), "{}", again.message);
    assert_eq!(env.migrations_since(seq), 1);
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_returns_the_recommendation() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    let id = recs[0].id;
    let seq = env.compute.events.last_sequence();
    let first = engine.apply(id, "alice", Some("req-1"), true).await.unwrap();
    assert_eq!(first.status, St::Applied);
    let retry = engine.apply(id, "alice", Some("req-1"), true).await.unwrap();
    assert_eq!(retry.id, id);
    assert_eq!(retry.status, St::Applied);
    assert_eq!(env.migrations_since(seq), 1);
    if let Some(other) = recs.get(1) {
        let e = engine.apply(other.id, "alice", Some("req-1"), true).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
    }
}

#[tokio::test]
async fn background_apply_answers_applying_and_ends_applied() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    let id = recs[0].id;
    let approved = engine.approve(id, "alice").await.unwrap();
    assert_eq!(approved.status, St::Approved);
    assert_eq!(approved.approved_by.as_deref(), Some("alice"));
    assert!(approved.approved_at.is_some());
    let mut events = env
        .compute
        .events
        .subscribe(
            SubscriptionFilter::all()
                .resource_type(ResourceType::Drs)
                .resource_id(id.to_string()),
            None,
        )
        .unwrap();
    let r = engine.apply(id, "alice", None, false).await.unwrap();
    assert!(matches!(r.status, St::Applying | St::Applied), "{r:?}");
    // Follow the events to the end of the migration.
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Some(lqx_core::events::SubscriptionItem::Event(e)) if e.event_type == EventType::Applied => break,
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    })
    .await;
    assert!(done.is_ok(), "no APPLIED event");
    let r = engine.get(id).await.unwrap();
    assert_eq!(r.status, St::Applied);
    assert_eq!(r.applied_by.as_deref(), Some("alice"));
    assert_eq!(env.node_of(&r.vm_name).await, r.target_node_name);
}

#[tokio::test]
async fn revalidation_fails_deleted_moved_and_no_longer_fitting() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    assert!(recs.len() >= 2, "{recs:?}");

    // Deleted.
    let r = &recs[0];
    env.compute
        .delete_vm(&r.vm_name, ProjectId::DEFAULT, true)
        .await
        .unwrap();
    let e = engine.apply(r.id, "alice", None, true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("deleted"), "{}", e.message);
    let got = engine.get(r.id).await.unwrap();
    assert_eq!(got.status, St::Failed);
    assert!(got.failure_reason.unwrap().contains("deleted"));

    // Moved by hand to a node other than the target.
    let r = &recs[1];
    let elsewhere = ["node-2", "node-3"]
        .into_iter()
        .find(|n| *n != r.target_node_name)
        .unwrap();
    env.compute
        .migrate_vm(&r.vm_name, ProjectId::DEFAULT, Some(elsewhere), false)
        .await
        .unwrap();
    let e = engine.apply(r.id, "alice", None, true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("moved"), "{}", e.message);
    assert_eq!(engine.get(r.id).await.unwrap().status, St::Failed);
    assert_eq!(env.node_of(&r.vm_name).await, elsewhere);

    // The target filled up: a run makes fresh recommendations, then a big VM takes the
    // target's memory before one is applied.
    env.clock.advance(Duration::from_secs(300));
    let recs = engine.run_once().await.unwrap().recommendations;
    let Some(r) = recs.iter().find(|r| r.status == St::Pending) else {
        panic!("no fresh recommendation: {recs:?}")
    };
    let target = env.compute.get_node(&r.target_node_name).await.unwrap();
    let used: u64 = env
        .compute
        .store
        .all_vms()
        .await
        .unwrap()
        .iter()
        .filter(|v| v.status.node_id == Some(target.id))
        .map(|v| v.spec.memory_mib)
        .sum();
    let free = target.allocatable.memory_mib - used;
    let filler = lqx_core::compute::CreateVm {
        name: "filler".into(),
        project_id: ProjectId::DEFAULT,
        description: String::new(),
        labels: Default::default(),
        spec: lqx_core::model::VmSpec {
            cpu_cores: 1,
            memory_mib: free - 1024,
            disks: vec![],
            nics: vec![],
            ha: Default::default(),
            placement: Default::default(),
        },
        node: Some(target.id),
        start: false,
        request_id: None,
    };
    env.compute.create_vm(filler).await.unwrap();
    let e = engine.apply(r.id, "alice", None, true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("no longer fits"), "{}", e.message);
    assert_eq!(engine.get(r.id).await.unwrap().status, St::Failed);
    assert_eq!(env.node_of(&r.vm_name).await, r.source_node_name);
}

#[tokio::test]
async fn stale_and_unknown_recommendations_are_refused() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    let id = recs[0].id;
    let rejected = engine.reject(id, "alice", "not now").await.unwrap();
    assert_eq!(rejected.status, St::Rejected);
    assert_eq!(rejected.failure_reason.as_deref(), Some("rejected by alice: not now"));
    for e in [
        engine.apply(id, "alice", None, true).await.unwrap_err(),
        engine.approve(id, "alice").await.unwrap_err(),
    ] {
        assert_eq!(e.kind, ErrorKind::FailedPrecondition);
        assert!(e.message.contains("rejected"), "{}", e.message);
    }
    let unknown = lqx_core::model::RecommendationId::new();
    assert_eq!(
        engine.apply(unknown, "alice", None, true).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(engine.get(unknown).await.unwrap_err().kind, ErrorKind::NotFound);

    // The rejected record stays as history; a later run that plans the move again makes a
    // new PENDING recommendation instead of reviving it.
    env.clock.advance(Duration::from_secs(300));
    let again = engine.run_once().await.unwrap();
    assert!(again.recommendations.iter().all(|r| r.id != id));
    assert_eq!(engine.get(id).await.unwrap().status, St::Rejected);
}

#[tokio::test]
async fn open_recommendations_expire_after_24h_and_finished_ones_are_deleted() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    assert!(recs.len() >= 2, "{recs:?}");
    engine.approve(recs[1].id, "alice").await.unwrap();

    env.clock.advance(Duration::from_secs(23 * 3600));
    assert_eq!(engine.cleanup().await.unwrap(), 0, "nothing is 24 h old yet");

    env.clock.advance(Duration::from_secs(2 * 3600));
    // Applying one that is past 24 h expires it on the spot.
    let e = engine.apply(recs[0].id, "alice", None, true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("24 h"), "{}", e.message);
    assert_eq!(engine.get(recs[0].id).await.unwrap().status, St::Expired);
    // The clean-up expires the rest, approved ones too.
    let expired = engine.cleanup().await.unwrap();
    assert_eq!(expired, recs.len() - 1);
    for r in &recs {
        let got = engine.get(r.id).await.unwrap();
        assert_eq!(got.status, St::Expired);
        assert!(got.failure_reason.is_some());
    }
    // 24 h after they finished, they are gone.
    env.clock.advance(Duration::from_secs(25 * 3600));
    engine.cleanup().await.unwrap();
    for r in &recs {
        assert_eq!(engine.get(r.id).await.unwrap_err().kind, ErrorKind::NotFound);
    }
}

#[tokio::test]
async fn hysteresis_state_and_config_survive_a_restart() {
    let env = Env::new(&cluster("hot")).await;
    let held = DrsConfig {
        hysteresis_hold_count: 2,
        ..DrsConfig::default()
    };
    let engine = DrsEngine::open(env.compute.clone(), held.clone(), env.options())
        .await
        .unwrap();
    let first = engine.run_once().await.unwrap();
    assert!(
        first.recommendations.is_empty(),
        "hold count 2: the first sighting only counts"
    );
    drop(engine);

    // A new engine (a restart) remembers the first sighting.
    let engine = DrsEngine::open(env.compute.clone(), held.clone(), env.options())
        .await
        .unwrap();
    env.clock.advance(Duration::from_secs(300));
    let second = engine.run_once().await.unwrap();
    assert!(!second.recommendations.is_empty());

    // A stored config wins over the file's on the next start.
    let stored = DrsConfig {
        threshold_cpu: 70.0,
        ..held.clone()
    };
    engine.update_config(stored.clone()).await.unwrap();
    let bad = DrsConfig {
        migration_threshold: 9,
        ..held.clone()
    };
    assert_eq!(
        engine.update_config(bad).await.unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    let engine = DrsEngine::open(env.compute.clone(), held, env.options()).await.unwrap();
    assert_eq!(engine.config(), stored);
}

#[tokio::test]
async fn disabled_or_not_leader_does_not_run() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env
        .engine_with(DrsConfig {
            enabled: false,
            ..config(AutomationLevel::Manual)
        })
        .await;
    assert_eq!(engine.run_once().await.unwrap_err().kind, ErrorKind::FailedPrecondition);

    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = EngineOptions {
        leader: Some(rx),
        ..env.options()
    };
    let follower = DrsEngine::open(env.compute.clone(), config(AutomationLevel::Manual), opts)
        .await
        .unwrap();
    assert!(!follower.is_leader());
    assert_eq!(follower.run_once().await.unwrap_err().kind, ErrorKind::Unavailable);
    assert!(engine.list(None, 0, "").await.unwrap().recommendations.is_empty());
}

#[tokio::test]
async fn the_loop_runs_every_interval_while_leader() {
    let env = Env::new(&cluster("hot")).await;
    let cfg = DrsConfig {
        interval: Duration::from_secs(1),
        ..config(AutomationLevel::Manual)
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let opts = EngineOptions {
        leader: Some(rx),
        sample_interval: Duration::from_millis(200),
        ..env.options()
    };
    let engine = DrsEngine::open(env.compute.clone(), cfg, opts).await.unwrap();
    let mut events = env
        .compute
        .events
        .subscribe(
            // The engine's STATE_CHANGED event ends each run.
            SubscriptionFilter::all()
                .resource_type(ResourceType::Drs)
                .resource_id("engine")
                .event_type(EventType::StateChanged),
            None,
        )
        .unwrap();
    let task = engine.spawn();
    // A follower: no run in three intervals.
    let idle = tokio::time::timeout(Duration::from_secs(3), events.recv()).await;
    assert!(idle.is_err(), "a follower must not run: {idle:?}");
    tx.send(true).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    assert!(
        matches!(got, Ok(Some(lqx_core::events::SubscriptionItem::Event(_)))),
        "{got:?}"
    );
    assert!(engine.status().await.unwrap().last_run.is_some());
    assert!(
        !engine
            .list(Some(St::Pending), 0, "")
            .await
            .unwrap()
            .recommendations
            .is_empty()
    );
    task.abort();
}

/// The cost of one engine run over a real store (numbers for docs/BENCHMARKS-drs.md):
/// `cargo test --release -p lqx-core --test drs_engine -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "measurement; run by hand"]
async fn measure_run_time() {
    use std::fmt::Write as _;
    let nodes = 32;
    let per_node = 10;
    let mut yaml = String::from("nodes:\n");
    for n in 1..=nodes {
        writeln!(yaml, "  - {{name: node-{n}, cpu_cores: 32, memory_mib: 131072}}").unwrap();
    }
    yaml.push_str("vms:\n");
    for n in 1..=nodes {
        // A gradient: node-1 busiest.
        let pct = 95 - (n * 80 / nodes);
        for i in 1..=per_node {
            writeln!(
                yaml,
                "  - {{name: vm-{n}-{i}, node: node-{n}, cpu_cores: 3, memory_mib: 8192, usage: {{cpu_percent: {pct}, memory_mib: 6144}}}}"
            )
            .unwrap();
        }
    }
    let t = std::time::Instant::now();
    let env = Env::new(&yaml).await;
    let load = t.elapsed();
    let engine = env.engine(AutomationLevel::Manual).await;
    let mut times = Vec::new();
    let mut first = None;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let r = engine.run_once().await.unwrap();
        times.push(t.elapsed());
        first.get_or_insert(r.summary);
        env.clock.advance(Duration::from_secs(300));
    }
    let first = first.unwrap();
    let t = std::time::Instant::now();
    let full = DrsEngine::open(env.compute.clone(), config(AutomationLevel::Full), env.options())
        .await
        .unwrap();
    let applied = full.run_once().await.unwrap();
    let apply_time = t.elapsed();
    println!(
        "{nodes} nodes, {} VMs (loaded in {load:?}); manual run: first {:?}, repeats {:?}; \
         {} moves planned (imbalance {:.1} -> {:.1}); full run applying {} migrations: {apply_time:?}",
        nodes * per_node,
        times[0],
        &times[1..],
        first.moves,
        first.imbalance_before,
        first.imbalance_after,
        applied.summary.applied,
    );
    assert!(first.moves > 0);
    assert!(times.iter().all(|t| *t < Duration::from_secs(5)), "{times:?}");
}

/// A recommendation left APPLYING by a control plane that stopped mid-migration is settled
/// when the engine opens again: FAILED (the VM never moved), so the VM is not blocked.
#[tokio::test]
async fn interrupted_applying_is_settled_on_restart() {
    let env = Env::new(&cluster("hot")).await;
    let engine = env.engine(AutomationLevel::Manual).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    let mut stuck = recs[0].clone();
    let now = (env.clock.clock())();
    stuck.status = St::Applying;
    assert!(
        env.compute
            .store
            .update_recommendation_if(&stuck, &[St::Pending], now)
            .await
            .unwrap()
    );
    drop(engine);

    let engine = env.engine(AutomationLevel::Manual).await;
    let settled = engine.get(stuck.id).await.unwrap();
    assert_eq!(settled.status, St::Failed);
    assert!(settled.failure_reason.unwrap_or_default().contains("interrupted"));
}

#[tokio::test]
async fn full_automation_applies_room_making_moves_before_the_moves_they_serve() {
    let env = Env::new(&cluster("chain")).await;
    let engine = env
        .engine_with(DrsConfig {
            max_concurrent_migrations_per_host: 10,
            migrations_per_host_per_round: 10,
            ..config(AutomationLevel::Full)
        })
        .await;
    let report = engine.run_once().await.unwrap();
    let got: Vec<_> = report
        .recommendations
        .iter()
        .map(|r| (r.vm_name.as_str(), r.target_node_name.as_str(), r.status))
        .collect();
    assert_eq!(
        got,
        [
            ("g", "node-4", St::Applied),
            ("d", "node-3", St::Applied),
            ("a", "node-2", St::Applied)
        ]
    );
    assert_eq!(report.summary.applied, 3);
    // The room-making moves carry the priority of the relief they make possible, so an
    // operator working down the list by priority meets them first too.
    let p: Vec<_> = report.recommendations.iter().map(|r| r.priority).collect();
    assert!(p.iter().all(|x| *x == p[2]), "{p:?}");
    assert_eq!(env.node_of("a").await, "node-2");
}

#[tokio::test]
async fn applying_a_move_before_the_room_for_it_is_made_waits_and_names_the_room_maker() {
    let env = Env::new(&cluster("chain")).await;
    let engine = env
        .engine_with(DrsConfig {
            max_concurrent_migrations_per_host: 10,
            migrations_per_host_per_round: 10,
            ..config(AutomationLevel::Manual)
        })
        .await;
    let report = engine.run_once().await.unwrap();
    let id = |vm: &str| report.recommendations.iter().find(|r| r.vm_name == vm).unwrap().id;
    let (g, d, a) = (id("g"), id("d"), id("a"));
    // Listed in the order to apply them in (one page, and page by page).
    let listed: Vec<_> = engine
        .list(None, 100, "")
        .await
        .unwrap()
        .recommendations
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [g, d, a]);
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = engine.list(None, 1, &token).await.unwrap();
        paged.extend(page.recommendations.iter().map(|r| r.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, [g, d, a]);
    // `a` first: refused, naming `d` (which makes room on node-2), and still PENDING.
    let err = engine.apply(a, "alice", None, true).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    assert!(err.message.contains(&d.to_string()), "{}", err.message);
    assert!(err.message.contains("apply that one first"), "{}", err.message);
    assert_eq!(engine.get(a).await.unwrap().status, St::Pending);
    assert_eq!(env.node_of("a").await, "node-1");
    // In order, all three go through.
    for r in [g, d, a] {
        assert_eq!(engine.apply(r, "alice", None, true).await.unwrap().status, St::Applied);
    }
    assert_eq!(env.node_of("a").await, "node-2");
}

/// node-1 is hot (87.5 % memory); node-2 is cool but fully allocated by eight idle VMs;
/// node-3 has room but no CPU to spare. Relief: four idle VMs leave node-2 for node-3, then
/// big-2 takes their room: four migrations on node-2, two per round (see the planner test
/// `relief_that_needs_more_moves_than_a_round_allows_is_carried_over_rounds`).
const STAGED: &str = "
nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 65536}
  - {name: node-2, cpu_cores: 16, memory_mib: 65536}
  - {name: node-3, cpu_cores: 16, memory_mib: 65536}
vms:
  - {name: big-1, node: node-1, cpu_cores: 4, memory_mib: 32768, usage: {cpu_percent: 100, memory_mib: 30720}}
  - {name: big-2, node: node-1, cpu_cores: 4, memory_mib: 26624, usage: {cpu_percent: 100, memory_mib: 26624}}
  - {name: idle-1, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: idle-2, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: idle-3, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: idle-4, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: idle-5, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: idle-6, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: idle-7, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: idle-8, node: node-2, cpu_cores: 1, memory_mib: 8192, usage: {cpu_percent: 10, memory_mib: 1024}}
  - {name: busy, node: node-3, cpu_cores: 12, memory_mib: 24576, usage: {cpu_percent: 93.34, memory_mib: 24576}}
";

#[tokio::test]
async fn full_automation_carries_a_relief_over_rounds_and_status_says_so() {
    let env = Env::new(STAGED).await;
    let engine = env
        .engine_with(DrsConfig {
            migration_threshold: 2,
            migrations_per_host_per_round: 2,
            ..config(AutomationLevel::Full)
        })
        .await;
    let first = engine.run_once().await.unwrap();
    assert_eq!(first.summary.applied, 2, "{:?}", first.recommendations);
    assert_eq!(first.summary.staged_steps_left, 3);
    let status = engine.status().await.unwrap();
    let line = status.last_run.as_ref().unwrap().describe();
    assert!(
        line.contains("relief of node-1 goes on over the next rounds (3 more move(s))"),
        "{line}"
    );

    // The state (with the rest of the relief) survives a restart of the engine.
    drop(engine);
    let engine = env
        .engine_with(DrsConfig {
            migration_threshold: 2,
            migrations_per_host_per_round: 2,
            ..config(AutomationLevel::Full)
        })
        .await;
    let mut applied = first.summary.applied;
    for _ in 0..4 {
        env.clock.advance(Duration::from_secs(300));
        let r = engine.run_once().await.unwrap();
        assert_eq!(r.summary.failed, 0, "{:?}", r.recommendations);
        applied += r.summary.applied;
        if r.summary.staged_steps_left == 0 && r.summary.moves == 0 {
            break;
        }
    }
    assert_eq!(applied, 5);
    assert_eq!(env.node_of("big-2").await, "node-2");
    let after = engine.run_once().await.unwrap().plan.before;
    assert!(after.max_memory_percent < 85.0, "{after:?}");
}

#[tokio::test]
async fn a_replica_taking_over_plans_from_the_state_and_config_the_last_leader_stored() {
    // Two replicas over one store, both opened at start-up; A leads first, then B.
    let env = Env::new(&cluster("hot")).await;
    let held = DrsConfig {
        hysteresis_hold_count: 2,
        ..DrsConfig::default()
    };
    let a = env.engine_with(held.clone()).await;
    let b = env.engine_with(held.clone()).await;
    let first = a.run_once().await.unwrap();
    assert!(
        first.recommendations.is_empty(),
        "hold count 2: the first sighting only counts"
    );
    // An UpdateDRSConfig taken by A (say, the replica the CLI reached).
    let stored = DrsConfig {
        migration_threshold: 2,
        ..held.clone()
    };
    a.update_config(stored.clone()).await.unwrap();

    // B takes over: it plans with A's hold count (second sighting) and A's config.
    env.clock.advance(Duration::from_secs(300));
    let second = b.run_once().await.unwrap();
    assert!(!second.recommendations.is_empty(), "B must see A's first sighting");
    assert_eq!(b.config(), stored);
}

/// node-1 runs one VM using 28 of its 32 cores (87.5 %): moving it would make node-2 as hot.
const TOO_LARGE: &str = include_str!("data/drs/too-large.yaml");

impl Env {
    /// An engine in manual mode whose alerts go to `sink` (kept in memory by `EventAlerts`).
    async fn alerting_engine(&self, sink: &Arc<EventAlerts>) -> DrsEngine {
        let opts = EngineOptions {
            alerts: Some(sink.clone()),
            ..self.options()
        };
        DrsEngine::open(self.compute.clone(), config(AutomationLevel::Manual), opts)
            .await
            .unwrap()
    }

    fn alert_sink(&self) -> Arc<EventAlerts> {
        Arc::new(EventAlerts::new(self.compute.events.clone()))
    }
}

fn open_alerts(sink: &EventAlerts, condition: &str) -> Vec<String> {
    sink.open()
        .into_iter()
        .filter(|a| a.condition == condition)
        .map(|a| a.source_name)
        .collect()
}

#[tokio::test]
async fn a_hot_node_drs_cannot_relieve_is_alerted_until_it_is_not_hot() {
    let env = Env::new(TOO_LARGE).await;
    let sink = env.alert_sink();
    let engine = env.alerting_engine(&sink).await;
    let r = engine.run_once().await.unwrap();
    assert!(r.recommendations.is_empty(), "{:?}", r.recommendations);
    let names: Vec<&str> = r.plan.unrelieved.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-1"]);
    assert_eq!(open_alerts(&sink, conditions::DRS_NODE_UNRELIEVED), ["node-1"]);
    let alert = sink.open().remove(0);
    assert!(alert.message.contains("CPU 87.5% > 80%"), "{}", alert.message);
    assert_eq!(alert.severity, AlertSeverity::Warning);
    let status = engine.status().await.unwrap();
    let line = status.last_run.unwrap().describe();
    assert!(line.contains("node-1 stay(s) hot: no relief found"), "{line}");

    // Still hot: the same alert stays open (one per node).
    env.clock.advance(Duration::from_secs(300));
    engine.run_once().await.unwrap();
    assert_eq!(open_alerts(&sink, conditions::DRS_NODE_UNRELIEVED), ["node-1"]);

    // Another engine (a restart, or a replica taking over) knows the alert is open and
    // resolves it once the node no longer counts as hot (an operator raised the threshold).
    let next = env.alerting_engine(&sink).await;
    next.update_config(DrsConfig {
        threshold_cpu: 90.0,
        ..config(AutomationLevel::Manual)
    })
    .await
    .unwrap();
    env.clock.advance(Duration::from_secs(300));
    let r = next.run_once().await.unwrap();
    assert!(r.plan.unrelieved.is_empty());
    assert!(sink.open().is_empty(), "{:?}", sink.open());
}

#[tokio::test]
async fn a_relieved_hot_node_raises_no_alert() {
    let env = Env::new(&cluster("hot")).await;
    let sink = env.alert_sink();
    let engine = env.alerting_engine(&sink).await;
    let r = engine.run_once().await.unwrap();
    assert!(!r.recommendations.is_empty());
    assert!(r.plan.unrelieved.is_empty(), "{:?}", r.plan.unrelieved);
    assert!(sink.open().is_empty(), "{:?}", sink.open());
}

#[tokio::test]
async fn a_failed_drs_migration_is_alerted_until_one_of_the_vm_succeeds() {
    let env = Env::new(&cluster("hot")).await;
    let sink = env.alert_sink();
    let engine = env.alerting_engine(&sink).await;
    let recs = engine.run_once().await.unwrap().recommendations;
    let first = recs[0].clone();
    let source = env._sims.get("sim://node-1").unwrap();
    for op in [SimOp::MigrateOut, SimOp::Define] {
        source.fail_next(op, DriverError::Unavailable("link down".into()));
    }
    let failed = engine.apply(first.id, "alice", None, true).await.unwrap();
    assert_eq!(failed.status, St::Failed, "{failed:?}");
    let failed_alerts = open_alerts(&sink, conditions::DRS_APPLY_FAILED);
    assert_eq!(failed_alerts, std::slice::from_ref(&first.vm_name));
    let alert = sink.open().remove(0);
    assert!(alert.message.contains(&first.id.to_string()), "{}", alert.message);
    assert!(alert.message.contains("link down"), "{}", alert.message);

    // The next run recommends the move again; this time it goes through and the alert is
    // resolved.
    source.clear_failures();
    env.clock.advance(Duration::from_secs(300));
    let again = engine.run_once().await.unwrap().recommendations;
    let retry = again
        .iter()
        .find(|r| r.vm_id == first.vm_id)
        .expect("the move is recommended again");
    let done = engine.apply(retry.id, "alice", None, true).await.unwrap();
    assert_eq!(done.status, St::Applied, "{done:?}");
    assert!(
        open_alerts(&sink, conditions::DRS_APPLY_FAILED).is_empty(),
        "{:?}",
        sink.open()
    );
}

/// node-1 goes into maintenance; its VM needs 96 GiB and node-2 has 64 GiB free until
/// `filler` is deleted.
const NOWHERE_TO_GO: &str = "
nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 131072}
  - {name: node-2, cpu_cores: 16, memory_mib: 131072}
vms:
  - {name: big, node: node-1, cpu_cores: 4, memory_mib: 98304, usage: {cpu_percent: 10, memory_mib: 8192}}
  - {name: filler, node: node-2, cpu_cores: 2, memory_mib: 65536, usage: {cpu_percent: 10, memory_mib: 4096}}
";

#[tokio::test]
async fn a_vm_that_must_move_but_fits_nowhere_is_alerted_until_it_fits() {
    let env = Env::new(NOWHERE_TO_GO).await;
    let sink = env.alert_sink();
    let engine = env.alerting_engine(&sink).await;
    env.compute.enter_maintenance("node-1", false).await.unwrap();
    let r = engine.run_once().await.unwrap();
    assert!(r.recommendations.is_empty(), "{:?}", r.recommendations);
    assert_eq!(open_alerts(&sink, conditions::DRS_VM_UNMOVABLE), ["big"]);
    let alert = sink.open().remove(0);
    assert!(
        alert
            .message
            .starts_with("big on node-1: node-1 is in maintenance, but it cannot move"),
        "{}",
        alert.message
    );

    // Room appears: the evacuation is recommended and the alert resolved.
    env.compute.delete_vm("filler", ProjectId::DEFAULT, true).await.unwrap();
    env.clock.advance(Duration::from_secs(300));
    let r = engine.run_once().await.unwrap();
    assert_eq!(r.recommendations.len(), 1, "{:?}", r.summary);
    assert!(r.recommendations[0].mandatory);
    assert!(sink.open().is_empty(), "{:?}", sink.open());
}

/// node-1 and node-2 go into maintenance; their VMs fit one per remaining node, so the two
/// evacuations touch disjoint hosts.
const TWO_DISJOINT_MOVES: &str = "
nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 16384}
  - {name: node-2, cpu_cores: 16, memory_mib: 16384}
  - {name: node-3, cpu_cores: 16, memory_mib: 16384}
  - {name: node-4, cpu_cores: 16, memory_mib: 16384}
vms:
  - {name: x, node: node-1, cpu_cores: 2, memory_mib: 12288}
  - {name: y, node: node-2, cpu_cores: 2, memory_mib: 12288}
";

#[tokio::test]
async fn automation_migrates_on_disjoint_hosts_at_once() {
    // Live migration copies 16 GiB a second: each move takes 0.75 s.
    let sims = SimRegistry::new();
    for n in ["node-1", "node-2", "node-3", "node-4"] {
        let c = lqx_core::driver::sim::SimConfig {
            migration_mib_per_sec: 16 * 1024,
            ..lqx_core::driver::sim::SimConfig::with_capacity(16, 16384)
        };
        sims.get_or_create(&format!("sim://{n}"), c).unwrap();
    }
    let env = Env::with_sims(TWO_DISJOINT_MOVES, sims).await;
    let engine = env.engine(AutomationLevel::Partial).await;
    for n in ["node-1", "node-2"] {
        env.compute.enter_maintenance(n, false).await.unwrap();
    }
    let seq = env.compute.events.last_sequence();
    let r = engine.run_once().await.unwrap();
    assert_eq!(r.summary.applied, 2, "{:?}", r.summary);
    let mut ends = [env.node_of("x").await, env.node_of("y").await];
    ends.sort();
    assert_eq!(ends, ["node-3", "node-4"]);
    // Both went APPLYING before either was APPLIED (one at a time: APPLYING, APPLIED,
    // APPLYING, APPLIED).
    let f = SubscriptionFilter::all().resource_type(ResourceType::Drs);
    let steps: Vec<EventType> = env
        .compute
        .events
        .recent(&f, seq, 100)
        .into_iter()
        .map(|e| e.event_type)
        .filter(|t| matches!(t, EventType::Updated | EventType::Applied))
        .collect();
    assert_eq!(
        steps,
        [
            EventType::Updated,
            EventType::Updated,
            EventType::Applied,
            EventType::Applied
        ]
    );
}

#[tokio::test]
async fn running_vms_that_cannot_move_live_are_not_moved_but_reported() {
    // node-1 is hot, but its hypervisor cannot live-migrate: DRS in full automation must not
    // stop its guests to move them.
    let sims = SimRegistry::new();
    let c = lqx_core::driver::sim::SimConfig {
        live_migration: false,
        ..lqx_core::driver::sim::SimConfig::with_capacity(16, 65536)
    };
    sims.get_or_create("sim://node-1", c).unwrap();
    let env = Env::with_sims(&cluster("hot"), sims).await;
    let sink = env.alert_sink();
    let engine = DrsEngine::open(
        env.compute.clone(),
        config(AutomationLevel::Full),
        EngineOptions {
            alerts: Some(sink.clone()),
            ..env.options()
        },
    )
    .await
    .unwrap();
    let seq = env.compute.events.last_sequence();
    let r = engine.run_once().await.unwrap();
    assert!(
        r.recommendations.iter().all(|x| !x.vm_name.starts_with("hot-")),
        "{:?}",
        r.recommendations
    );
    assert_eq!(env.migrations_since(seq), 0);
    for i in 1..=7 {
        assert_eq!(env.node_of(&format!("hot-{i}")).await, "node-1");
    }
    assert_eq!(r.summary.not_live_movable.len(), 7, "{:?}", r.summary);
    assert!(
        r.summary.not_live_movable[0].contains("no live-migration support"),
        "{:?}",
        r.summary.not_live_movable
    );
    let line = engine.status().await.unwrap().last_run.unwrap().describe();
    assert!(line.contains("7 running VM(s) cannot move live"), "{line}");
    assert_eq!(open_alerts(&sink, conditions::DRS_VM_NOT_LIVE_MOVABLE).len(), 7);
}

#[tokio::test]
async fn maintenance_evacuation_never_stops_a_running_vm_and_names_those_left() {
    // node-1 cannot live-migrate: its stopped VM moves (cold, nothing stops), its running one
    // stays where it is and the evacuation says so.
    let sims = SimRegistry::new();
    let c = lqx_core::driver::sim::SimConfig {
        live_migration: false,
        ..lqx_core::driver::sim::SimConfig::with_capacity(16, 65536)
    };
    sims.get_or_create("sim://node-1", c).unwrap();
    let env = Env::with_sims(
        "
nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 65536}
  - {name: node-2, cpu_cores: 16, memory_mib: 65536}
vms:
  - {name: up, node: node-1, cpu_cores: 2, memory_mib: 4096}
  - {name: down, node: node-1, cpu_cores: 2, memory_mib: 4096, running: false}
",
        sims,
    )
    .await;
    let e = env.compute.enter_maintenance("node-1", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("up: "), "{}", e.message);
    assert!(e.message.contains("cannot be live-migrated"), "{}", e.message);
    assert!(!e.message.contains("down:"), "{}", e.message);
    assert_eq!(env.node_of("up").await, "node-1");
    let up = env.compute.get_vm("up", ProjectId::DEFAULT).await.unwrap();
    assert_eq!(up.status.state, lqx_core::model::VmState::Running);
    assert_eq!(env.node_of("down").await, "node-2");
    // Asked for explicitly, the running VM moves cold.
    let out = env
        .compute
        .migrate_vm("up", ProjectId::DEFAULT, Some("node-2"), true)
        .await
        .unwrap();
    assert!(!out.live);
    assert_eq!(out.vm.status.state, lqx_core::model::VmState::Running);
}

/// The per-host migration limit (`migration.max_per_host`) is shared with maintenance and
/// manual moves: DRS plans no more moves per host and round than it, whatever its own
/// `max_concurrent_migrations_per_host` says.
#[tokio::test]
async fn drs_plans_within_the_shared_per_host_migration_limit() {
    // node-1 at 100 % CPU: relieving it to 75 % takes two moves.
    const FULL: &str = "
nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 65536}
  - {name: node-2, cpu_cores: 16, memory_mib: 65536}
  - {name: node-3, cpu_cores: 16, memory_mib: 65536}
vms:
  - {name: hot-1, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-2, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-3, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-4, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-5, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-6, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-7, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-8, node: node-1, cpu_cores: 2, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
";
    let planned = async |shared: usize| {
        let env = Env::new(FULL).await;
        env.compute.migrations.set_max_per_host(shared);
        let engine = env
            .engine_with(DrsConfig {
                max_concurrent_migrations_per_host: 10,
                // Migrations slower than a round (4 GiB at 10 MiB/s): the derived per-round
                // budget is the concurrency itself, which the shared limit caps.
                migration_bandwidth_mib_per_second: 10,
                ..config(AutomationLevel::Manual)
            })
            .await;
        let r = engine.run_once().await.unwrap();
        r.recommendations
            .iter()
            .filter(|r| r.source_node_name == "node-1")
            .count()
    };
    assert!(planned(10).await >= 2, "the relief takes two moves");
    assert_eq!(planned(1).await, 1, "one migration per host at once");
}

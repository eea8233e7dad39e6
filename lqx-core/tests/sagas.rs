//! Multi-step operations under failure (see `lqx_core::saga`): each step of create, delete,
//! migrate and HA restart is made to fail, and to "crash" (the operation stops there and the
//! control plane restarts), in turn. A failure undoes what the operation did; a crash leaves
//! it to the recovery of the next control plane, which finishes or undoes it. Either way no
//! VM record, idempotency key, domain, allocation or operation is left half-done.
//!
//! Runs with `--features failpoints` (scripts/test.sh does); failpoints are process-wide, so
//! each test holds a `FailScenario` (they run one at a time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lqx_core::{
    ErrorKind,
    compute::{Compute, CreateVm, Hosts, NodeRegistration},
    driver::{Hypervisor, sim::SimConfig, sim::SimHypervisor, sim::SimRegistry},
    events::{EventBus, EventBusConfig},
    leader::Epoch,
    model::{NodeId, ProjectId, VmId, VmSpec, VmState},
    saga,
    store::{Store, testing},
};

struct Cluster {
    store: Store,
    compute: Compute,
    nodes: Vec<(NodeId, SimHypervisor)>,
}

impl Cluster {
    async fn new(store: Store, sims: &SimRegistry) -> Cluster {
        let compute = Compute::new(
            store.clone(),
            Hosts::default(),
            EventBus::new(EventBusConfig::default()),
        );
        let mut nodes = Vec::new();
        for name in ["a", "b"] {
            let uri = format!("sim://saga-{}-{name}", uuid::Uuid::new_v4().simple());
            let sim = sims.create(&uri, SimConfig::with_capacity(8, 16_384)).unwrap();
            let n = compute
                .attach_node(NodeRegistration::new(name, uri), Arc::new(sim.clone()))
                .await
                .unwrap();
            nodes.push((n.id, sim));
        }
        Cluster { store, compute, nodes }
    }

    /// A new control plane on the same database and hosts, as after a restart.
    fn restarted(&self) -> Compute {
        let hosts = Hosts::default();
        for (id, sim) in &self.nodes {
            hosts.insert(*id, Arc::new(sim.clone()));
        }
        Compute::new(self.store.clone(), hosts, EventBus::new(EventBusConfig::default()))
    }

    async fn recover(&self) -> lqx_core::compute::Recovery {
        self.restarted().recover_operations(Duration::ZERO).await.unwrap()
    }

    /// The hosts that hold a domain of `vm`, and whether it runs there.
    async fn holders(&self, vm: VmId) -> Vec<(NodeId, bool)> {
        let mut v = Vec::new();
        for (id, sim) in &self.nodes {
            if let Ok(s) = sim.domain_state(vm).await {
                v.push((*id, s.is_active()));
            }
        }
        v
    }

    fn domains(&self) -> usize {
        self.nodes.iter().map(|(_, s)| s.domain_count()).sum()
    }

    /// Memory allocated in the store, over all nodes.
    async fn allocated_mib(&self) -> u64 {
        self.store
            .allocation_by_node(None)
            .await
            .unwrap()
            .iter()
            .map(|a| a.memory_mib)
            .sum()
    }

    async fn no_operations(&self) {
        let ops = self.store.op_list().await.unwrap();
        assert!(ops.is_empty(), "operations left: {ops:?}");
    }
}

fn create(name: &str, node: Option<NodeId>, start: bool, request_id: Option<&str>) -> CreateVm {
    CreateVm {
        name: name.into(),
        project_id: ProjectId::DEFAULT,
        description: String::new(),
        labels: Default::default(),
        spec: VmSpec {
            cpu_cores: 1,
            memory_mib: 1024,
            disks: vec![],
            nics: vec![],
            ha: Default::default(),
            placement: Default::default(),
        },
        node,
        start,
        request_id: request_id.map(str::to_string),
    }
}

const MODES: [&str; 2] = ["fail", "crash"];

/// Makes `kind/step` fail or crash once.
fn inject(kind: saga::OpKind, step: &str, mode: &str) {
    fail::cfg(format!("{}/{step}", kind.as_str()), &format!("1*return({mode})")).unwrap();
}

#[tokio::test]
async fn create_unwinds_at_every_step_and_a_retry_creates_the_vm() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        for step in ["record", "define", "finish"] {
            for mode in MODES {
                let name = format!("c-{step}-{mode}");
                let rid = format!("rid-{engine}-{step}-{mode}");
                inject(saga::OpKind::CreateVm, step, mode);
                let err = c
                    .compute
                    .create_vm(create(&name, None, false, Some(&rid)))
                    .await
                    .unwrap_err();
                assert_eq!(saga::is_crash(&err), mode == "crash", "{engine} {step} {mode}: {err}");
                if mode == "crash" {
                    let r = c.recover().await;
                    assert_eq!(r.left, 0, "{engine} {step}: {r:?}");
                }
                // Unwound: no record, key, domain, allocation or operation.
                let got = c.compute.get_vm(&name, ProjectId::DEFAULT).await.unwrap_err();
                assert_eq!(got.kind, ErrorKind::NotFound, "{engine} {step} {mode}");
                assert_eq!(c.store.idempotent_get(&format!("CreateVM/{rid}")).await.unwrap(), None);
                assert_eq!(c.domains(), 0, "{engine} {step} {mode}");
                assert_eq!(c.allocated_mib().await, 0, "{engine} {step} {mode}");
                c.no_operations().await;
                // A retry with the same request_id creates it (it used to get not_found).
                let vm = c.compute.create_vm(create(&name, None, true, Some(&rid))).await;
                let vm = vm.unwrap_or_else(|e| panic!("{engine} {step} {mode}: retry: {e}"));
                assert_eq!(vm.status.state, VmState::Running);
                assert_eq!(c.holders(vm.id).await.len(), 1);
                c.compute.delete_vm(&name, ProjectId::DEFAULT, true).await.unwrap();
                c.no_operations().await;
            }
        }
    }
}

#[tokio::test]
async fn a_retry_after_a_failed_define_creates_the_vm() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        // A host refusal (not a failpoint): the define fails as libvirt's would.
        c.nodes[0].1.fail_next(
            lqx_core::driver::sim::SimOp::Define,
            lqx_core::driver::DriverError::Unavailable("host busy".into()),
        );
        let req = create("retry-1", Some(c.nodes[0].0), false, Some("retry-after-define"));
        let err = c.compute.create_vm(req.clone()).await.unwrap_err();
        assert_ne!(err.kind, ErrorKind::NotFound, "{engine}: {err}");
        let vm = c.compute.create_vm(req.clone()).await.unwrap();
        assert_eq!(vm.name, "retry-1", "{engine}");
        // And the key now answers with that VM.
        assert_eq!(c.compute.create_vm(req).await.unwrap().id, vm.id, "{engine}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_creates_with_one_request_id_make_one_vm() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        // Two replicas (their own placement locks) both past the key lookup before either
        // writes: the check-then-act race the key's transaction closes.
        let other = c.restarted();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let b = barrier.clone();
        fail::cfg_callback("create_vm/record", move || {
            b.wait();
        })
        .unwrap();
        let req = create("twin", None, false, Some(&format!("twin-{engine}")));
        // Each on a thread of its own, as the barrier blocks the thread.
        let rt = tokio::runtime::Handle::current();
        let (x, y) = tokio::join!(
            tokio::task::spawn_blocking({
                let (c, r, rt) = (c.compute.clone(), req.clone(), rt.clone());
                move || rt.block_on(c.create_vm(r))
            }),
            tokio::task::spawn_blocking({
                let r = req.clone();
                move || rt.block_on(other.create_vm(r))
            })
        );
        fail::remove("create_vm/record");
        let (x, y) = (x.unwrap(), y.unwrap());
        let (x, y) = (
            x.unwrap_or_else(|e| panic!("{engine}: first: {e}")),
            y.unwrap_or_else(|e| panic!("{engine}: second: {e}")),
        );
        assert_eq!(x.id, y.id, "{engine}: both answers name one VM");
        let page = c.store.list_vms(&Default::default(), 100, "").await.unwrap();
        assert_eq!(page.vms.iter().filter(|v| v.name == "twin").count(), 1, "{engine}");
        assert_eq!(c.domains(), 1, "{engine}");
        c.no_operations().await;
    }
}

#[tokio::test]
async fn delete_fails_cleanly_or_is_finished_after_a_crash_at_every_step() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        for step in ["destroy", "undefine", "remove"] {
            for mode in MODES {
                let name = format!("d-{step}-{mode}");
                let vm = c.compute.create_vm(create(&name, None, true, None)).await.unwrap();
                inject(saga::OpKind::DeleteVm, step, mode);
                let err = c.compute.delete_vm(&name, ProjectId::DEFAULT, true).await.unwrap_err();
                assert_eq!(saga::is_crash(&err), mode == "crash", "{engine} {step} {mode}: {err}");
                if mode == "crash" {
                    let r = c.recover().await;
                    assert_eq!((r.completed, r.left), (1, 0), "{engine} {step}: {r:?}");
                } else {
                    // Failed with the reason and nothing recorded as in progress; asked
                    // again, it goes through.
                    c.no_operations().await;
                    c.compute.delete_vm(&name, ProjectId::DEFAULT, true).await.unwrap();
                }
                let got = c.store.get_vm(vm.id).await.unwrap_err();
                assert_eq!(got.kind, ErrorKind::NotFound, "{engine} {step} {mode}");
                assert!(c.holders(vm.id).await.is_empty(), "{engine} {step} {mode}");
                assert_eq!(c.allocated_mib().await, 0, "{engine} {step} {mode}");
                c.no_operations().await;
            }
        }
    }
}

#[tokio::test]
async fn migrate_unwinds_or_completes_at_every_step() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        let (a, b) = (c.nodes[0].0, c.nodes[1].0);
        for running in [true, false] {
            for step in ["begin", "transfer", "commit"] {
                for mode in MODES {
                    let name = format!("m-{step}-{mode}-{running}");
                    let vm = c
                        .compute
                        .create_vm(create(&name, Some(a), running, None))
                        .await
                        .unwrap();
                    inject(saga::OpKind::MigrateVm, step, mode);
                    let res = c
                        .compute
                        .migrate_vm(&name, ProjectId::DEFAULT, Some("b"), !running)
                        .await;
                    let ctx = format!("{engine} {step} {mode} running={running}");
                    let err = res.expect_err(&ctx);
                    // A failed commit leaves the moved domain to recovery, as a crash does.
                    let left = mode == "crash" || step == "commit";
                    assert_eq!(saga::is_crash(&err), mode == "crash", "{ctx}: {err}");
                    if left {
                        let r = c.recover().await;
                        assert_eq!(r.left, 0, "{ctx}: {r:?}");
                    }
                    c.no_operations().await;
                    // One host holds it, and the record says that host, in the state the
                    // guest is in: nothing moved before the transfer, everything after it.
                    let want = if step == "commit" { b } else { a };
                    assert_eq!(c.holders(vm.id).await, vec![(want, running)], "{ctx}");
                    let now = c.store.get_vm(vm.id).await.unwrap();
                    assert_eq!(now.status.node_id, Some(want), "{ctx}");
                    let state = if running { VmState::Running } else { VmState::Stopped };
                    assert_eq!(now.status.state, state, "{ctx}");
                    // Allocated once, and no reservation outlives the migration.
                    assert_eq!(c.allocated_mib().await, 1024, "{ctx}");
                    assert!(c.compute.migrations.get(vm.id).is_none(), "{ctx}");
                    // And it can move again.
                    let to = if want == a { "b" } else { "a" };
                    c.compute
                        .migrate_vm(&name, ProjectId::DEFAULT, Some(to), !running)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: again: {e}"));
                    c.compute.delete_vm(&name, ProjectId::DEFAULT, true).await.unwrap();
                    c.no_operations().await;
                }
            }
        }
    }
}

#[tokio::test]
async fn ha_restart_is_finished_or_dropped_at_every_step() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        let (a, b) = (c.nodes[0].0, c.nodes[1].0);
        let holder = format!("saga-test-{engine}");
        let number = c
            .store
            .leader_acquire(&holder, Duration::from_secs(600))
            .await
            .unwrap()
            .expect("the lease is free");
        let epoch = Epoch {
            number,
            holder: holder.into(),
        };
        for step in ["record", "commit", "start"] {
            for mode in MODES {
                let name = format!("h-{step}-{mode}");
                let vm = c.compute.create_vm(create(&name, Some(a), true, None)).await.unwrap();
                // Host a has failed: its domain is gone (fenced).
                c.nodes[0].1.destroy(vm.id).await.unwrap();
                c.nodes[0].1.undefine(vm.id, false).await.unwrap();
                inject(saga::OpKind::HaRestart, step, mode);
                let ctx = format!("{engine} {step} {mode}");
                let res = match c.compute.failover_commit(vm.id, a, b, &epoch).await {
                    Ok(_) => c.compute.failover_start(vm.id).await,
                    Err(e) => Err(e),
                };
                let err = res.expect_err(&ctx);
                assert_eq!(saga::is_crash(&err), mode == "crash", "{ctx}: {err}");
                if mode == "crash" {
                    let r = c.recover().await;
                    assert_eq!(r.left, 0, "{ctx}: {r:?}");
                }
                c.no_operations().await;
                let now = c.store.get_vm(vm.id).await.unwrap();
                match (step, mode) {
                    // Never committed: still on the failed host, for the next HA pass.
                    ("record" | "commit", _) => {
                        assert_eq!(now.status.node_id, Some(a), "{ctx}");
                        assert!(c.holders(vm.id).await.is_empty(), "{ctx}");
                    }
                    // The start failed: Failed on the target with the reason.
                    ("start", "fail") => {
                        assert_eq!(now.status.node_id, Some(b), "{ctx}");
                        assert_eq!(now.status.state, VmState::Failed, "{ctx}");
                        assert!(now.status.message.contains("HA restart failed"), "{ctx}");
                    }
                    // Interrupted after the commit: recovery started it on the target.
                    _ => {
                        assert_eq!(now.status.node_id, Some(b), "{ctx}");
                        assert_eq!(now.status.state, VmState::Running, "{ctx}");
                        assert_eq!(c.holders(vm.id).await, vec![(b, true)], "{ctx}");
                    }
                }
                c.compute.delete_vm(&name, ProjectId::DEFAULT, true).await.unwrap();
                c.no_operations().await;
                assert_eq!(c.allocated_mib().await, 0, "{ctx}");
            }
        }
    }
}

#[tokio::test]
async fn recovery_leaves_a_live_owners_recent_operations_alone() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        inject(saga::OpKind::CreateVm, "define", "crash");
        c.compute
            .create_vm(create("young", None, false, None))
            .await
            .unwrap_err();
        // Another replica may still be running it: not touched before `min_age`.
        let r = c
            .restarted()
            .recover_operations(Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(r, Default::default(), "{engine}");
        // Nor by its own process.
        let r = c.compute.recover_operations(Duration::ZERO).await.unwrap();
        assert_eq!(r, Default::default(), "{engine}");
        assert_eq!(c.store.op_list().await.unwrap().len(), 1, "{engine}");
        assert_eq!(c.recover().await.undone, 1, "{engine}");
        c.no_operations().await;
    }
}

/// A long step refreshes its operation's row, so another replica's recovery with a short
/// staleness window leaves a migration that is still running alone; once the process has
/// stopped refreshing (a crash), the same window takes it over.
#[tokio::test]
async fn a_running_migration_is_refreshed_and_not_taken_over() {
    let _fp = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let sims = SimRegistry::new();
    for (engine, store) in testing::engines(dir.path()).await {
        let c = Cluster::new(store, &sims).await;
        let window = Duration::from_millis(800);
        c.compute.set_operation_refresh(Duration::from_millis(150));
        let a = c.nodes[0].0;
        c.compute.create_vm(create("slow", Some(a), true, None)).await.unwrap();
        // 1024 MiB at 256 MiB/s: about four seconds of transfer.
        let opts = lqx_core::compute::MigrateOptions {
            target: Some("b".into()),
            cold: false,
            live: lqx_core::driver::LiveOptions {
                bandwidth_mib_per_sec: 256,
                ..Default::default()
            },
        };
        let compute = c.compute.clone();
        let moving = tokio::spawn(async move { compute.migrate_vm_with("slow", ProjectId::DEFAULT, &opts).await });
        // Its row refreshed for a while (each refresh moves updated_at on), and still running.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(!moving.is_finished(), "{engine}: the migration was not slow");
            let op = c.store.op_list().await.unwrap().pop();
            if op
                .as_ref()
                .is_some_and(|op| op.updated_at - op.created_at >= chrono::Duration::milliseconds(1500))
            {
                break;
            }
            assert!(Instant::now() < deadline, "{engine}: not refreshed: {op:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Almost twice the window since it began: a row never refreshed would be taken.
        let r = c.restarted().recover_operations(window).await.unwrap();
        assert_eq!(r, Default::default(), "{engine}");
        let out = moving.await.unwrap().unwrap();
        assert_eq!(out.vm.status.node_id, Some(c.nodes[1].0), "{engine}");
        c.no_operations().await;

        // A crashed migration stops refreshing: after the window it is taken over.
        inject(saga::OpKind::MigrateVm, "transfer", "crash");
        c.compute
            .migrate_vm("slow", ProjectId::DEFAULT, Some("a"), false)
            .await
            .unwrap_err();
        let deadline = Instant::now() + window + Duration::from_secs(20);
        let r = loop {
            let r = c.restarted().recover_operations(window).await.unwrap();
            if r != Default::default() {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "{engine}: the crashed migration was never taken over"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((r.undone, r.left), (1, 0), "{engine}");
        c.no_operations().await;
    }
}

/// DRS apply is a recommendation (APPLYING once) around a migration saga. Interrupted, the
/// migration is settled first and then the recommendation, from where the VM ended up; a
/// failed step leaves the VM on its source and the recommendation FAILED.
#[tokio::test]
async fn drs_apply_settles_the_vm_and_then_the_recommendation() {
    use lqx_core::drs::engine::{DrsEngine, EngineOptions};
    use lqx_core::model::{AutomationLevel, DrsConfig, RecommendationStatus as St};
    const HOT: &str = "
nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 65536}
  - {name: node-2, cpu_cores: 16, memory_mib: 65536}
vms:
  - {name: hot-1, node: node-1, cpu_cores: 4, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-2, node: node-1, cpu_cores: 4, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-3, node: node-1, cpu_cores: 4, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
  - {name: hot-4, node: node-1, cpu_cores: 3, memory_mib: 4096, usage: {cpu_percent: 100, memory_mib: 4096}}
";
    let _fp = fail::FailScenario::setup();
    let config = DrsConfig {
        automation_level: AutomationLevel::Manual,
        hysteresis_hold_count: 1,
        ..DrsConfig::default()
    };
    for (step, mode) in [
        ("begin", "fail"),
        ("transfer", "fail"),
        ("begin", "crash"),
        ("transfer", "crash"),
        ("commit", "crash"),
        ("commit", "fail"),
    ] {
        let ctx = format!("{step} {mode}");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("lqx.db").to_str().unwrap()).await.unwrap();
        let sims = SimRegistry::new();
        let compute = Compute::new(
            store.clone(),
            Hosts::default(),
            EventBus::new(EventBusConfig::default()),
        );
        let snap = lqx_core::cluster_file::parse(HOT).unwrap();
        lqx_core::compute::sim::load_cluster(&compute, &sims, &snap)
            .await
            .unwrap();
        let engine = DrsEngine::open(compute.clone(), config.clone(), EngineOptions::default())
            .await
            .unwrap();
        let rec = engine.run_once().await.unwrap().recommendations[0].clone();
        inject(saga::OpKind::MigrateVm, step, mode);
        let applied = engine.apply(rec.id, "test", None, true).await;
        if mode == "crash" {
            assert!(saga::is_crash(&applied.expect_err(&ctx)), "{ctx}");
            assert_eq!(engine.get(rec.id).await.unwrap().status, St::Applying, "{ctx}");
            drop(engine);
            // Restart: hosts again, operations recovered, then the engine opens.
            let hosts = Hosts::default();
            for n in store.all_nodes().await.unwrap() {
                hosts.insert(n.id, Arc::new(sims.get(&n.libvirt_uri).unwrap()));
            }
            let compute = Compute::new(store.clone(), hosts, EventBus::new(EventBusConfig::default()));
            assert_eq!(
                compute.recover_operations(Duration::ZERO).await.unwrap().left,
                0,
                "{ctx}"
            );
            let engine = DrsEngine::open(compute, config.clone(), EngineOptions::default())
                .await
                .unwrap();
            let settled = engine.get(rec.id).await.unwrap();
            let want = if step == "commit" { St::Applied } else { St::Failed };
            assert_eq!(settled.status, want, "{ctx}");
        } else if step == "commit" {
            // The domain is on the target but the record says otherwise: the outcome is
            // recovery's, and the recommendation waits for it instead of failing.
            let waiting = applied.unwrap();
            assert_eq!(waiting.status, St::Applying, "{ctx}");
            assert_eq!(
                waiting.failure_reason.as_deref(),
                Some(lqx_core::drs::engine::AWAITING_RECOVERY),
                "{ctx}"
            );
            engine.run_once().await.unwrap();
            assert_eq!(engine.get(rec.id).await.unwrap().status, St::Applying, "{ctx}");
            let hosts = Hosts::default();
            for n in store.all_nodes().await.unwrap() {
                hosts.insert(n.id, Arc::new(sims.get(&n.libvirt_uri).unwrap()));
            }
            let other = Compute::new(store.clone(), hosts, EventBus::new(EventBusConfig::default()));
            let r = other.recover_operations(Duration::ZERO).await.unwrap();
            assert_eq!((r.completed, r.left), (1, 0), "{ctx}");
            // The next run settles it from where the VM ended up.
            engine.run_once().await.unwrap();
            let settled = engine.get(rec.id).await.unwrap();
            assert_eq!(settled.status, St::Applied, "{ctx}: {settled:?}");
            assert_eq!(settled.failure_reason, None, "{ctx}");
        } else {
            assert_eq!(applied.unwrap().status, St::Failed, "{ctx}");
        }
        assert!(store.op_list().await.unwrap().is_empty(), "{ctx}");
        // The VM is where the recommendation says, and only there.
        let vm = store.get_vm(rec.vm_id).await.unwrap();
        let moved = step == "commit";
        let want = if moved { rec.target_node_id } else { rec.source_node_id };
        assert_eq!(vm.status.node_id, Some(want), "{ctx}");
        assert_eq!(vm.status.state, VmState::Running, "{ctx}");
        let mut holders = Vec::new();
        for n in store.all_nodes().await.unwrap() {
            if sims.get(&n.libvirt_uri).unwrap().domain_state(vm.id).await.is_ok() {
                holders.push(n.id);
            }
        }
        assert_eq!(holders, vec![want], "{ctx}");
    }
}

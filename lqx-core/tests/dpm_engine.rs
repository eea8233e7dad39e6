//! DPM through the DRS engine over a real store (SQLite in a temp dir) and simulated hosts:
//! POWER_OFF after the host's VMs were moved by live migration, power through a simulated
//! `NodePower`, automation levels, and a clear failure when a host has no power controller.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lqx_core::ErrorKind;
use lqx_core::compute::{Compute, Hosts};
use lqx_core::driver::sim::SimRegistry;
use lqx_core::drs::engine::{DrsEngine, EngineOptions};
use lqx_core::events::{EventBus, EventBusConfig};
use lqx_core::model::{
    AutomationLevel, DpmConfig, DrsConfig, DrsRecommendation, NodeId, ProjectId, RecommendationStatus as St,
    RecommendationType,
};
use lqx_core::power::{NodePower, PowerError, PowerState};
use lqx_core::store::Store;

mod engine_fixtures;
use engine_fixtures::cluster;

/// Simulated host power: every node starts on; nodes in `no_controller` have no BMC.
#[derive(Default)]
struct SimulatedPower {
    state: Mutex<HashMap<NodeId, PowerState>>,
    no_controller: HashSet<NodeId>,
    calls: Mutex<Vec<(NodeId, &'static str)>>,
}

impl NodePower for SimulatedPower {
    fn power_state(&self, node: NodeId) -> BoxFuture<'_, Result<PowerState, PowerError>> {
        let s = self.state.lock().unwrap().get(&node).copied().unwrap_or(PowerState::On);
        Box::pin(async move { Ok(s) })
    }
    fn power_on(&self, node: NodeId) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async move { self.set(node, "on", PowerState::PoweringOn) })
    }
    fn standby(&self, node: NodeId) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async move { self.set(node, "standby", PowerState::Standby) })
    }
}

impl SimulatedPower {
    fn set(&self, node: NodeId, what: &'static str, to: PowerState) -> Result<(), PowerError> {
        if self.no_controller.contains(&node) {
            return Err(PowerError::Unsupported(format!(
                "node {node} has no power controller configured"
            )));
        }
        self.calls.lock().unwrap().push((node, what));
        self.state.lock().unwrap().insert(node, to);
        Ok(())
    }
}

struct Env {
    _dir: tempfile::TempDir,
    compute: Compute,
    _sims: SimRegistry,
    ids: HashMap<String, NodeId>,
}

impl Env {
    async fn new(yaml: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("lqx.db").to_str().unwrap()).await.unwrap();
        let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
        let sims = SimRegistry::new();
        engine_fixtures::load(&compute, &sims, yaml).await;
        let now = compute.snapshot().await.unwrap();
        let ids = now.nodes.iter().map(|n| (n.name.clone(), n.id)).collect();
        Env {
            _dir: dir,
            compute,
            _sims: sims,
            ids,
        }
    }

    async fn engine(&self, dpm: AutomationLevel, power: Option<Arc<dyn NodePower>>) -> DrsEngine {
        self.engine_leading(dpm, power, None).await
    }

    /// [`Self::engine`], leading while `leader` reads true (None: always).
    async fn engine_leading(
        &self,
        dpm: AutomationLevel,
        power: Option<Arc<dyn NodePower>>,
        leader: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> DrsEngine {
        let config = DrsConfig {
            hysteresis_hold_count: 1,
            dpm: DpmConfig {
                enabled: true,
                automation_level: dpm,
                hold_count: 1,
                ..DpmConfig::default()
            },
            ..DrsConfig::default()
        };
        let t = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap();
        let opts = EngineOptions {
            clock: Arc::new(move || t),
            power,
            leader,
            ..EngineOptions::default()
        };
        DrsEngine::open(self.compute.clone(), config, opts).await.unwrap()
    }

    async fn vms_on(&self, node: &str) -> usize {
        let id = self.ids[node];
        let snap = self.compute.snapshot().await.unwrap();
        snap.vms.iter().filter(|v| v.node == Some(id)).count()
    }
}

fn of(recs: &[DrsRecommendation], kind: RecommendationType) -> Vec<&DrsRecommendation> {
    recs.iter().filter(|r| r.recommendation_type == kind).collect()
}

#[tokio::test]
async fn full_automation_evacuates_by_live_migration_then_puts_hosts_in_standby() {
    let env = Env::new(&cluster("light")).await;
    let power = Arc::new(SimulatedPower::default());
    let engine = env.engine(AutomationLevel::Full, Some(power.clone())).await;
    let run = engine.run_once().await.unwrap();
    let off = of(&run.recommendations, RecommendationType::PowerOff);
    assert!(!off.is_empty(), "{:#?}", run.recommendations);
    // Two hosts stay on (the minimum, and N+1 for the rest).
    assert!(off.len() <= 2);
    for r in &off {
        assert_eq!(r.status, St::Applied, "{r:?}");
        assert!(r.reason.starts_with("consolidate:"), "{}", r.reason);
        assert_eq!(
            env.vms_on(&r.source_node_name).await,
            0,
            "{} still has VMs",
            r.source_node_name
        );
        assert_eq!(
            power.state.lock().unwrap().get(&r.source_node_id),
            Some(&PowerState::Standby)
        );
    }
    let moves = of(&run.recommendations, RecommendationType::Migrate);
    assert!(moves.iter().all(|m| m.status == St::Applied), "{moves:#?}");
    assert!(moves.iter().any(|m| m.reason.starts_with("consolidate:")));
    let line = run.summary.describe();
    assert!(
        line.contains("DPM: 4 host(s) on") && line.contains("power off"),
        "{line}"
    );
    // The next run sees the hosts in standby, wakes none and moves nothing onto them.
    let again = engine.run_once().await.unwrap();
    assert!(of(&again.recommendations, RecommendationType::PowerOn).is_empty());
    for r in &off {
        assert_eq!(env.vms_on(&r.source_node_name).await, 0);
    }
}

#[tokio::test]
async fn manual_level_recommends_and_applying_without_a_controller_fails_naming_the_node() {
    let env = Env::new(&cluster("light")).await;
    let engine = env.engine(AutomationLevel::Manual, None).await;
    let run = engine.run_once().await.unwrap();
    let off = of(&run.recommendations, RecommendationType::PowerOff);
    assert!(!off.is_empty(), "{:#?}", run.recommendations);
    assert!(run.recommendations.iter().all(|r| r.status == St::Pending));
    let host = off[0].clone();
    // Refused while the host still has VMs; it stays PENDING.
    let e = engine.apply(host.id, "op", None, true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("still has 2 VM(s)"), "{}", e.message);
    assert_eq!(engine.get(host.id).await.unwrap().status, St::Pending);
    // A re-run keeps the same open recommendation (one per host), not a second one.
    let rerun = engine.run_once().await.unwrap();
    let again = of(&rerun.recommendations, RecommendationType::PowerOff);
    assert!(again.iter().any(|r| r.id == host.id), "{again:#?}");
    // The operator applies its evacuation moves, then the POWER_OFF: no controller.
    for m in of(&rerun.recommendations, RecommendationType::Migrate) {
        if m.source_node_id == host.source_node_id {
            let done = engine.apply(m.id, "op", None, true).await.unwrap();
            assert_eq!(done.status, St::Applied, "{done:?}");
        }
    }
    assert_eq!(env.vms_on(&host.source_node_name).await, 0);
    let e = engine.apply(host.id, "op", None, true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(
        e.message.contains("no power controller") && e.message.contains(&host.source_node_name),
        "{}",
        e.message
    );
    let failed = engine.get(host.id).await.unwrap();
    assert_eq!(failed.status, St::Failed);
    assert!(failed.failure_reason.unwrap().contains(&host.source_node_name));
}

#[tokio::test]
async fn a_node_without_a_bmc_fails_with_the_controllers_reason() {
    let env = Env::new(&cluster("light")).await;
    let power = Arc::new(SimulatedPower {
        no_controller: env.ids.values().copied().collect(),
        ..SimulatedPower::default()
    });
    let engine = env.engine(AutomationLevel::Full, Some(power.clone())).await;
    let run = engine.run_once().await.unwrap();
    let off = of(&run.recommendations, RecommendationType::PowerOff);
    assert!(!off.is_empty());
    for r in off {
        assert_eq!(r.status, St::Failed, "{r:?}");
        let why = r.failure_reason.as_deref().unwrap();
        assert!(
            why.contains(&format!("powering {} off failed", r.source_node_name)) && why.contains("no power controller"),
            "{why}"
        );
    }
    assert!(power.calls.lock().unwrap().is_empty());
}

/// A 2 vCPU / 32 GiB VM, no node chosen: it fits only on an empty host.
fn big(start: bool) -> lqx_core::compute::vms::CreateVm {
    lqx_core::compute::vms::CreateVm {
        name: "big".into(),
        project_id: ProjectId::DEFAULT,
        description: String::new(),
        labels: Default::default(),
        spec: lqx_core::model::VmSpec {
            cpu_cores: 2,
            memory_mib: 32768,
            disks: vec![],
            nics: vec![],
            ha: Default::default(),
            placement: Default::default(),
        },
        node: None,
        start,
        request_id: None,
    }
}

impl Env {
    /// Puts `node` in standby, as DPM leaves a host: powered off, not Ready.
    async fn standby(&self, node: &str, power: &SimulatedPower) {
        let mut n = self.compute.store.get_node(self.ids[node]).await.unwrap();
        n.power = PowerState::Standby;
        n.phase = lqx_core::model::NodePhase::NotReady;
        self.compute.store.update_node(&n).await.unwrap();
        power.state.lock().unwrap().insert(n.id, PowerState::Standby);
    }

    /// Creates `big` (it fails).
    async fn create_big(&self) -> lqx_core::Error {
        self.compute.create_vm(big(true)).await.unwrap_err()
    }
}

#[tokio::test]
async fn a_create_that_fits_only_a_standby_host_wakes_it_and_fails_saying_so() {
    let env = Env::new(&cluster("full-but-one-asleep")).await;
    let power = Arc::new(SimulatedPower::default());
    env.standby("node-4", &power).await;
    let engine = env.engine(AutomationLevel::Full, Some(power.clone())).await;
    // Nothing wakes node-4 by itself: use is low and nothing must move.
    let quiet = engine.run_once().await.unwrap();
    assert!(
        of(&quiet.recommendations, RecommendationType::PowerOn).is_empty(),
        "{:#?}",
        quiet.recommendations
    );
    let e = env.create_big().await;
    assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{}", e.message);
    assert!(
        e.message
            .contains("host node-4 fits it and is in standby: DPM is powering it on"),
        "{}",
        e.message
    );
    assert_eq!(e.retry_after, Some(lqx_core::compute::standby::BOOT_RETRY_SECS));
    // The create ran DPM at once (no waiting for the next interval): node-4 is powered on
    // through its controller, and the POWER_ON names the VM.
    let node4 = env.ids["node-4"];
    for _ in 0..100 {
        if power.calls.lock().unwrap().contains(&(node4, "on")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(power.calls.lock().unwrap().as_slice(), &[(node4, "on")]);
    let all = engine.list(None, 100, "").await.unwrap().recommendations;
    let on = of(&all, RecommendationType::PowerOn);
    assert_eq!(on.len(), 1, "{on:#?}");
    assert_eq!((on[0].source_node_id, on[0].status), (node4, St::Applied));
    assert!(on[0].reason.contains("VM big found no room"), "{}", on[0].reason);
    // While it boots, a retry says so and asks for nothing more.
    let mut n = env.compute.store.get_node(node4).await.unwrap();
    n.power = PowerState::PoweringOn;
    env.compute.store.update_node(&n).await.unwrap();
    let e = env.create_big().await;
    assert_eq!(e.kind, ErrorKind::ResourceExhausted);
    assert!(
        e.message.contains("host node-4 fits it and is powering on"),
        "{}",
        e.message
    );
    // Once it is on (Ready), the create lands there.
    let mut n = env.compute.store.get_node(node4).await.unwrap();
    n.power = PowerState::On;
    n.phase = lqx_core::model::NodePhase::Ready;
    env.compute.store.update_node(&n).await.unwrap();
    let vm = env.compute.create_vm(big(false)).await.unwrap();
    assert_eq!(vm.status.node_id, Some(node4));
}

#[tokio::test]
async fn at_manual_automation_the_create_names_the_power_on_to_approve() {
    let env = Env::new(&cluster("full-but-one-asleep")).await;
    let power = Arc::new(SimulatedPower::default());
    env.standby("node-4", &power).await;
    let engine = env.engine(AutomationLevel::Manual, Some(power.clone())).await;
    let e = env.create_big().await;
    assert_eq!(e.kind, ErrorKind::ResourceExhausted);
    assert!(
        e.message.contains("DPM recommends powering it on") && e.message.contains("lqx node power on node-4"),
        "{}",
        e.message
    );
    // The next run (or the one the create started) recommends POWER_ON and performs nothing.
    let run = engine.run_once().await.unwrap();
    let on = of(&run.recommendations, RecommendationType::PowerOn);
    assert_eq!(on.len(), 1, "{:#?}", run.recommendations);
    assert_eq!((on[0].source_node_name.as_str(), on[0].status), ("node-4", St::Pending));
    assert!(power.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_dpm_the_create_says_the_host_is_in_standby() {
    let env = Env::new(&cluster("full-but-one-asleep")).await;
    let power = SimulatedPower::default();
    env.standby("node-4", &power).await;
    // No DRS engine: nothing wakes hosts.
    let e = env.create_big().await;
    assert_eq!(e.kind, ErrorKind::ResourceExhausted);
    assert!(
        e.message.contains("in standby and DPM is off") && e.message.contains("lqx node power on node-4"),
        "{}",
        e.message
    );
}

/// A replica that does not lead runs no DPM: its create says so, not "DPM is off", and
/// powers nothing on.
#[tokio::test]
async fn on_a_replica_that_does_not_lead_the_create_says_dpm_runs_on_the_leader() {
    let env = Env::new(&cluster("full-but-one-asleep")).await;
    let power = Arc::new(SimulatedPower::default());
    env.standby("node-4", &power).await;
    let (_leads, follower) = tokio::sync::watch::channel(false);
    let _engine = env
        .engine_leading(AutomationLevel::Full, Some(power.clone()), Some(follower))
        .await;
    let e = env.create_big().await;
    assert_eq!(e.kind, ErrorKind::ResourceExhausted);
    assert!(
        e.message.contains("DPM runs on the leading replica") && e.message.contains("lqx node power on node-4"),
        "{}",
        e.message
    );
    assert!(power.calls.lock().unwrap().is_empty());
}

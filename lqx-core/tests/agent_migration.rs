//! Live migration between two agent hosts: the real agent loops (`lqx_core::agent::Agent`)
//! against an in-process control plane, on simulated hypervisors that migrate memory at a
//! configured rate (so a migration takes seconds and things can happen meanwhile).
//!
//! Real clock with 100 ms heartbeats (the store is SQLite on a worker thread); every wait is
//! bounded.

use std::{sync::Arc, time::Duration};

use lqx_core::{
    ErrorKind,
    agent::ControlPlane,
    compute::{
        Compute, Hosts, MigrateOptions,
        agents::{AgentTiming, Agents},
    },
    driver::{
        DomainState, Hypervisor, LiveOptions,
        sim::{SimConfig, SimHypervisor, SimRegistry},
    },
    events::{EventBus, EventBusConfig},
    model::{NodeId, ProjectId, VmState},
    store::Store,
};

mod common;
use common::{RunningAgent, eventually, heartbeats, vm};

struct Cluster {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    compute: Compute,
    agents: Agents,
    src: SimHypervisor,
    dst: SimHypervisor,
    src_agent: Option<RunningAgent>,
    dst_agent: Option<RunningAgent>,
    s: NodeId,
    d: NodeId,
    /// What the agents started by `cluster` talk to.
    cp: Switch,
}

/// The control plane the agents talk to, which a test can take away and replace (a leader
/// change without restarting the agents).
#[derive(Clone, Default)]
struct Switch(Arc<std::sync::Mutex<Option<Agents>>>);

impl Switch {
    fn set(&self, cp: Option<Agents>) {
        *self.0.lock().unwrap() = cp;
    }
    fn current(&self) -> lqx_core::Result<Agents> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| lqx_core::Error::unavailable("no control plane answers"))
    }
}

impl ControlPlane for Switch {
    fn register(
        &self,
        req: lqx_core::api::node::v1::RegisterRequest,
    ) -> futures::future::BoxFuture<'_, lqx_core::Result<lqx_core::api::node::v1::RegisterResponse>> {
        Box::pin(async move { ControlPlane::register(&self.current()?, req).await })
    }
    fn heartbeat(
        &self,
        credential: String,
        req: lqx_core::api::node::v1::HeartbeatRequest,
    ) -> futures::future::BoxFuture<'_, lqx_core::Result<lqx_core::api::node::v1::HeartbeatResponse>> {
        Box::pin(async move { ControlPlane::heartbeat(&self.current()?, credential, req).await })
    }
}

/// An agent as `common::start_agent`, reporting its simulated host's URI as its migration
/// URI (the simulated hypervisors find each other by URI in their registry).
fn start_agent(
    cp: Arc<dyn ControlPlane>,
    hv: &SimHypervisor,
    dir: &std::path::Path,
    name: &str,
    token: Option<String>,
) -> RunningAgent {
    let mut opts = common::agent_options(dir, name, token);
    opts.migration_uri = hv.uri().to_string();
    common::spawn_agent(opts, cp, hv)
}

/// Two hosts of 4 vCPUs / 4 GiB whose memory moves at 512 MiB/s.
async fn cluster() -> Cluster {
    cluster_with_cpus("", "").await
}

async fn cluster_with_cpus(cpu_src: &str, cpu_dst: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let store = Store::open(path.join("lqx.db").to_str().unwrap()).await.unwrap();
    let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
    let timing = AgentTiming {
        heartbeat_interval: Duration::from_secs(1),
        op_timeout: Duration::from_secs(10),
        ..AgentTiming::default()
    };
    let agents = Agents::new(compute.clone(), timing);
    let reg = SimRegistry::new();
    let cfg = SimConfig {
        migration_mib_per_sec: 512,
        ..SimConfig::with_capacity(4, 4096)
    };
    let src = reg
        .create(
            "sim://src",
            SimConfig {
                cpu_model: cpu_src.into(),
                ..cfg.clone()
            },
        )
        .unwrap();
    let dst = reg
        .create(
            "sim://dst",
            SimConfig {
                cpu_model: cpu_dst.into(),
                ..cfg
            },
        )
        .unwrap();
    let mut running = vec![];
    let cp = Switch::default();
    cp.set(Some(agents.clone()));
    for (hv, name) in [(&src, "src"), (&dst, "dst")] {
        let (token, _) = compute.create_join_token(600, name).await.unwrap();
        running.push(start_agent(
            Arc::new(cp.clone()),
            hv,
            &path.join(name),
            name,
            Some(token),
        ));
    }
    let mut ids = vec![];
    for name in ["src", "dst"] {
        let mut id = None;
        eventually("the node joins", async || {
            match compute.store.resolve_node(name).await {
                Ok(n) if agents.lease_state(n.id).is_some() => {
                    id = Some(n.id);
                    true
                }
                _ => false,
            }
        })
        .await;
        ids.push(id.unwrap());
    }
    // Both report their migration URI.
    eventually("migration URIs reported", async || {
        compute.hosts.get(ids[0]).unwrap().supports_live_migration()
            && compute.hosts.get(ids[1]).unwrap().supports_live_migration()
    })
    .await;
    let dst_agent = running.pop();
    let src_agent = running.pop();
    Cluster {
        _dir: dir,
        dir: path,
        compute,
        agents,
        src,
        dst,
        src_agent,
        dst_agent,
        s: ids[0],
        d: ids[1],
        cp,
    }
}

fn to_dst() -> MigrateOptions {
    MigrateOptions {
        target: Some("dst".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_running_vm_moves_live_between_agent_hosts_and_stays_running() {
    let c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 1024)).await.unwrap();
    // Watch the source: the domain must never be seen shut off there.
    let src = c.src.clone();
    let id = v.id;
    let watcher = tokio::spawn(async move {
        let mut states = vec![];
        for _ in 0..200 {
            if let Ok(s) = src.domain_state(id).await {
                states.push(s);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        states
    });
    let out = c
        .compute
        .migrate_vm_with("web", ProjectId::DEFAULT, &to_dst())
        .await
        .unwrap();
    assert!(out.live);
    assert_eq!(out.vm.status.node_id, Some(c.d));
    assert_eq!(out.vm.status.state, VmState::Running);
    assert_eq!(c.dst.domain_state(v.id).await.unwrap(), DomainState::Running);
    assert_eq!(c.src.domain_count(), 0);
    let seen = watcher.await.unwrap();
    assert!(seen.iter().all(|s| *s == DomainState::Running), "{seen:?}");
    // Later heartbeats neither bring it back to the source nor disturb it on the target.
    heartbeats(&c.agents, c.s, 5).await;
    heartbeats(&c.agents, c.d, 5).await;
    assert_eq!(c.src.domain_count(), 0);
    assert_eq!(c.dst.domain_state(v.id).await.unwrap(), DomainState::Running);
    let rec = c.compute.store.get_vm(v.id).await.unwrap();
    assert_eq!((rec.status.node_id, rec.status.state), (Some(c.d), VmState::Running));
    // Commands go to the new host.
    c.compute
        .stop_vm("web", ProjectId::DEFAULT, true, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(c.dst.domain_state(v.id).await.unwrap(), DomainState::Shutoff);
}

#[tokio::test]
async fn unlike_cpus_are_refused_up_front_unless_the_cluster_names_a_model() {
    let c = cluster_with_cpus("Intel Skylake-Client", "AMD EPYC-Rome").await;
    let v = c.compute.create_vm(vm("web", c.s, 512)).await.unwrap();
    let e = c
        .compute
        .migrate_vm_with("web", ProjectId::DEFAULT, &to_dst())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("different CPUs"), "{}", e.message);
    assert!(c.compute.migrations.all().is_empty(), "nothing started");
    assert_eq!(c.src.domain_state(v.id).await.unwrap(), DomainState::Running);
    // A cluster-wide named model both hosts run: the guest moves, defined with that model.
    c.compute
        .set_guest_cpu(lqx_core::driver::GuestCpu::parse("x86-64-v2").unwrap());
    let out = c
        .compute
        .migrate_vm_with("web", ProjectId::DEFAULT, &to_dst())
        .await
        .unwrap();
    assert!(out.live);
    assert_eq!(c.dst.domain_state(v.id).await.unwrap(), DomainState::Running);
}

#[tokio::test]
async fn the_target_capacity_is_held_while_the_migration_runs() {
    let c = cluster().await;
    // 3 GiB on the source; the target has 4 GiB: after the move, 1 GiB is left there.
    c.compute.create_vm(vm("big", c.s, 3072)).await.unwrap();
    let compute = c.compute.clone();
    let mig = tokio::spawn(async move { compute.migrate_vm_with("big", ProjectId::DEFAULT, &to_dst()).await });
    eventually("the migration is in flight", async || {
        !c.compute.migrations.all().is_empty()
    })
    .await;
    // A create that would fit the target only without the migrating VM is refused there.
    let e = c.compute.create_vm(vm("racer", c.d, 2048)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{}", e.message);
    // One that fits next to it is placed.
    c.compute.create_vm(vm("small", c.d, 512)).await.unwrap();
    let out = mig.await.unwrap().unwrap();
    assert_eq!(out.vm.status.node_id, Some(c.d));
    assert_eq!(c.compute.migrations.all().len(), 0, "released at the end");
    // Released on failure too: nothing is held now, a 512 MiB VM still fits on the target.
    c.compute.create_vm(vm("after", c.d, 512)).await.unwrap();
}

#[tokio::test]
async fn a_cancelled_migration_leaves_the_vm_running_on_the_source() {
    let c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 2048)).await.unwrap();
    let compute = c.compute.clone();
    let mig = tokio::spawn(async move { compute.migrate_vm_with("web", ProjectId::DEFAULT, &to_dst()).await });
    eventually("progress reported", async || {
        c.compute
            .migrations
            .get(v.id)
            .is_some_and(|f| f.progress.processed_bytes > 0)
    })
    .await;
    // What `lqx vm get` shows while it runs: the target by name and how far.
    let view = c.compute.migration_view(v.id).await.unwrap().expect("in flight");
    assert_eq!(view.target_node, "dst");
    let p = view.progress;
    assert!(view.live && p.processed_bytes > 0 && p.total_bytes >= p.processed_bytes);
    c.compute.cancel_migration("web", ProjectId::DEFAULT).await.unwrap();
    let now = c.compute.get_vm("web", ProjectId::DEFAULT).await.unwrap();
    assert_eq!(now.status.node_id, Some(c.s), "still on its source");
    let e = mig.await.unwrap().unwrap_err();
    assert_eq!(e.kind, lqx_core::ErrorKind::Aborted, "{e:?}");
    assert!(e.message.contains("migration of VM web was cancelled"), "{}", e.message);
    assert_on_source(&c, v.id).await;
    assert_eq!(c.compute.migration_view(v.id).await.unwrap(), None);
}

#[tokio::test]
async fn the_migration_aborts_cleanly_when_the_target_dies() {
    let mut c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 2048)).await.unwrap();
    let compute = c.compute.clone();
    let mig = tokio::spawn(async move { compute.migrate_vm_with("web", ProjectId::DEFAULT, &to_dst()).await });
    eventually("in flight", async || c.compute.migrations.get(v.id).is_some()).await;
    // The target host goes down with its agent.
    c.dst.set_available(false);
    drop(c.dst_agent.take());
    let e = mig.await.unwrap().unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal),
        "{:?} {}",
        e.kind,
        e.message
    );
    assert_on_source(&c, v.id).await;
}

#[tokio::test]
async fn the_migration_aborts_cleanly_when_the_source_agent_restarts() {
    let mut c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 4000)).await.unwrap();
    let compute = c.compute.clone();
    let mig = tokio::spawn(async move {
        let opts = MigrateOptions {
            live: LiveOptions {
                bandwidth_mib_per_sec: 256,
                ..Default::default()
            },
            ..to_dst()
        };
        compute.migrate_vm_with("web", ProjectId::DEFAULT, &opts).await
    });
    eventually("progress reported", async || {
        c.compute
            .migrations
            .get(v.id)
            .is_some_and(|f| f.progress.processed_bytes > 0)
    })
    .await;
    // The agent process dies and comes back (its identity and the started order on disk).
    drop(c.src_agent.take());
    c.src_agent = Some(start_agent(
        Arc::new(c.agents.clone()),
        &c.src,
        &c.dir.join("src"),
        "src",
        None,
    ));
    let e = mig.await.unwrap().unwrap_err();
    assert!(e.message.contains("restarted"), "{}", e.message);
    assert_on_source(&c, v.id).await;
}

#[tokio::test]
async fn a_new_leader_that_did_not_order_the_migration_has_it_aborted() {
    let mut c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 4000)).await.unwrap();
    let compute = c.compute.clone();
    let mig = tokio::spawn(async move { compute.migrate_vm_with("web", ProjectId::DEFAULT, &to_dst()).await });
    eventually("progress reported", async || {
        c.compute
            .migrations
            .get(v.id)
            .is_some_and(|f| f.progress.processed_bytes > 0)
    })
    .await;
    // The leader stops mid-way; a new control plane on the same store takes over and the
    // agents reconnect to it.
    mig.abort();
    drop(c.src_agent.take());
    drop(c.dst_agent.take());
    let compute = Compute::new(
        c.compute.store.clone(),
        Hosts::default(),
        EventBus::new(EventBusConfig::default()),
    );
    let agents = Agents::new(
        compute.clone(),
        AgentTiming {
            heartbeat_interval: Duration::from_secs(1),
            op_timeout: Duration::from_secs(10),
            ..AgentTiming::default()
        },
    );
    agents.restore().await.unwrap();
    c.src_agent = Some(start_agent(
        Arc::new(agents.clone()),
        &c.src,
        &c.dir.join("src"),
        "src",
        None,
    ));
    c.dst_agent = Some(start_agent(
        Arc::new(agents.clone()),
        &c.dst,
        &c.dir.join("dst"),
        "dst",
        None,
    ));
    c.compute = compute;
    c.agents = agents;
    assert_on_source(&c, v.id).await;
}

async fn assert_on_source(c: &Cluster, id: lqx_core::model::VmId) {
    // The source keeps it running, the target never keeps a copy, the record says so.
    eventually("the VM is back to normal on the source", async || {
        let rec = c.compute.store.get_vm(id).await.unwrap();
        rec.status.node_id == Some(c.s) && rec.status.state == VmState::Running && c.dst.domain_state(id).await.is_err()
    })
    .await;
    assert_eq!(c.src.domain_state(id).await.unwrap(), DomainState::Running);
    // The source's agent answers twice more (each answer carries the settled desired state,
    // applied by the next report), then nothing has changed.
    for _ in 0..2 {
        let mark = tokio::time::Instant::now();
        eventually("the source's agent heartbeats again", async || {
            c.agents.lease_state(c.s).is_some_and(|l| l.last_renewed > mark)
        })
        .await;
    }
    assert_eq!(
        c.src.domain_state(id).await.unwrap(),
        DomainState::Running,
        "still running"
    );
    assert!(c.dst.domain_state(id).await.is_err());
}

/// A migration that completes exactly while the control-plane leader changes: the new
/// leader learns the outcome from the agents before it places the VM, so the VM ends on the
/// target, running once, its arrived copy never destroyed (nor restarted on the source).
/// Starts moving `v` to dst and, once memory is being copied, stops the leader that ordered
/// it (the agents go on without answers).
async fn migrate_then_lose_the_leader(c: &Cluster, v: lqx_core::model::VmId) {
    let compute = c.compute.clone();
    let mig = tokio::spawn(async move { compute.migrate_vm_with("web", ProjectId::DEFAULT, &to_dst()).await });
    eventually("progress reported", async || {
        c.compute
            .migrations
            .get(v)
            .is_some_and(|f| f.progress.processed_bytes > 0)
    })
    .await;
    c.cp.set(None);
    mig.abort();
}

/// A new leader on the same store, which the same agents reach; `lease`: its lease (the
/// default otherwise).
async fn new_leader(c: &Cluster, lease: Option<Duration>) -> Compute {
    let compute = Compute::new(
        c.compute.store.clone(),
        Hosts::default(),
        EventBus::new(EventBusConfig::default()),
    );
    let mut timing = AgentTiming {
        heartbeat_interval: Duration::from_secs(1),
        op_timeout: Duration::from_secs(10),
        ..AgentTiming::default()
    };
    if let Some(l) = lease {
        timing.lease_ttl = l;
        timing.self_fence_after = l - Duration::from_millis(500);
    }
    let agents = Agents::new(compute.clone(), timing);
    agents.restore().await.unwrap();
    c.cp.set(Some(agents));
    compute
}

#[tokio::test]
async fn a_migration_that_completes_during_a_leader_change_ends_on_the_target() {
    let c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 2048)).await.unwrap();
    // The leader stops; the agents go on without answers, and the migration completes.
    migrate_then_lose_the_leader(&c, v.id).await;
    eventually("the domain arrived on the target", async || {
        c.dst.domain_state(v.id).await.is_ok_and(|s| s == DomainState::Running)
            && c.src.domain_state(v.id).await.is_err()
    })
    .await;
    assert_eq!(
        c.compute.store.get_vm(v.id).await.unwrap().status.node_id,
        Some(c.s),
        "the stopped leader never learnt it"
    );
    let compute = new_leader(&c, None).await;
    // Every poll: the arrived copy still runs, the source has none.
    let settled = async || {
        assert_eq!(
            c.dst.domain_state(v.id).await.ok(),
            Some(DomainState::Running),
            "the arrived copy was touched"
        );
        assert!(c.src.domain_state(v.id).await.is_err(), "defined again on the source");
        let rec = compute.store.get_vm(v.id).await.unwrap();
        rec.status.node_id == Some(c.d) && rec.status.state == VmState::Running
    };
    eventually("the new leader places the VM on the target", async || settled().await).await;
    // And it stays so over several heartbeats of both agents.
    let agents = c.cp.current().unwrap();
    for _ in 0..10 {
        heartbeats(&agents, c.s, 1).await;
        heartbeats(&agents, c.d, 1).await;
        assert!(settled().await, "the record moved again");
    }
    assert!(!compute.migrations.is_orphan(v.id));
}

/// Maintenance evacuation moves a running VM only to a host that can take it live, of the
/// same kind: from an agent host to the other agent host, never to the roomier in-process
/// host; where none can, the VM is named and keeps running.
#[tokio::test]
async fn evacuation_moves_running_vms_live_to_hosts_of_the_same_kind_only() {
    let c = cluster().await;
    // An in-process host with far more room than the agent hosts.
    let local = SimHypervisor::new("sim://evac-local", SimConfig::with_capacity(64, 262_144)).unwrap();
    c.compute
        .attach_node(
            lqx_core::compute::NodeRegistration::new("local", "sim://evac-local"),
            Arc::new(local.clone()),
        )
        .await
        .unwrap();
    let v = c.compute.create_vm(vm("web", c.s, 1024)).await.unwrap();
    let n = c.compute.enter_maintenance("src", true).await.unwrap();
    assert_eq!(n.phase, lqx_core::model::NodePhase::Maintenance);
    let rec = c.compute.store.get_vm(v.id).await.unwrap();
    assert_eq!((rec.status.node_id, rec.status.state), (Some(c.d), VmState::Running));
    assert_eq!(c.dst.domain_state(v.id).await.unwrap(), DomainState::Running);
    assert!(local.domain_state(v.id).await.is_err(), "never to the other kind");

    eventually("the target's agent reports the VM", async || {
        c.compute.hosts.get(c.d).unwrap().domain_state(v.id).await.is_ok()
    })
    .await;
    // Now dst: src is in maintenance and local is of the other kind: nowhere to go live.
    let e = c.compute.enter_maintenance("dst", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{}", e.message);
    assert!(e.message.contains("could not move web"), "{}", e.message);
    assert!(e.message.contains("different kinds"), "{}", e.message);
    assert_eq!(
        c.dst.domain_state(v.id).await.unwrap(),
        DomainState::Running,
        "never stopped"
    );
    let rec = c.compute.store.get_vm(v.id).await.unwrap();
    assert_eq!((rec.status.node_id, rec.status.state), (Some(c.d), VmState::Running));
    assert!(local.domain_state(v.id).await.is_err());
}

/// The leader stops during a migration that then completes, and the source's host dies
/// with it: the new leader never hears the source. It waits a whole lease (the source could
/// still run the VM), then settles the VM on the host that runs the arrived copy, once.
#[tokio::test]
async fn an_orphaned_migration_whose_source_stays_silent_settles_on_the_arrived_copy() {
    let mut c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 2048)).await.unwrap();
    migrate_then_lose_the_leader(&c, v.id).await;
    eventually("the domain arrived on the target", async || {
        c.dst.domain_state(v.id).await.is_ok_and(|s| s == DomainState::Running)
            && c.src.domain_state(v.id).await.is_err()
    })
    .await;
    // The source's host goes silent for good.
    drop(c.src_agent.take());
    let lease = Duration::from_secs(2);
    let started = tokio::time::Instant::now();
    let compute = new_leader(&c, Some(lease)).await;
    eventually("the new leader places the VM on the target", async || {
        let rec = compute.store.get_vm(v.id).await.unwrap();
        if rec.status.node_id == Some(c.s) {
            assert_eq!(rec.status.state, VmState::Migrating, "unsettled until then");
            return false;
        }
        assert_eq!((rec.status.node_id, rec.status.state), (Some(c.d), VmState::Running));
        true
    })
    .await;
    assert!(
        started.elapsed() >= lease,
        "settled after {:?}, before a lease of silence ({lease:?}) had passed",
        started.elapsed()
    );
    assert_eq!(c.dst.domain_state(v.id).await.ok(), Some(DomainState::Running));
    assert!(c.src.domain_state(v.id).await.is_err(), "one copy only");
    // The record is written first, then the orphan mark goes.
    eventually("no longer an orphan", async || !compute.migrations.is_orphan(v.id)).await;
}

/// As above, but the source's host dies before the migration completes: no copy arrived
/// anywhere. After a lease of silence the VM is recorded UNKNOWN on the source, as any VM of
/// a silent host (HA and the operator act on it), and no copy is started anywhere.
#[tokio::test]
async fn an_orphaned_migration_whose_source_died_first_is_unknown_on_the_source() {
    let mut c = cluster().await;
    let v = c.compute.create_vm(vm("web", c.s, 2048)).await.unwrap();
    // Leader and source host die together, mid-copy.
    migrate_then_lose_the_leader(&c, v.id).await;
    c.src.set_available(false);
    drop(c.src_agent.take());
    let compute = new_leader(&c, Some(Duration::from_secs(2))).await;
    eventually("the VM is recorded unknown on its source", async || {
        let rec = compute.store.get_vm(v.id).await.unwrap();
        assert_eq!(rec.status.node_id, Some(c.s), "never moved without a copy");
        rec.status.state == VmState::Unknown
    })
    .await;
    // Over several heartbeats of the target: no copy is started there.
    let agents = c.cp.current().unwrap();
    for _ in 0..10 {
        assert!(c.dst.domain_state(v.id).await.is_err(), "a copy on the target");
        heartbeats(&agents, c.d, 1).await;
    }
    // The record is written first, then the orphan mark goes.
    eventually("no longer an orphan", async || !compute.migrations.is_orphan(v.id)).await;
}

//! The node agent against an in-process control plane: the real agent loop
//! (`lqx_core::agent::Agent`) talks to `compute::agents::Agents` through the `ControlPlane`
//! trait, and drives a simulated hypervisor. The control plane drives the agent's host
//! through the same `Compute` calls as any host.
//!
//! These tests run on tokio's real clock with 100 ms heartbeats (the store is SQLite on a
//! worker thread, which paused time would skip over); every wait is bounded.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use lqx_core::{
    ErrorKind, Result,
    agent::ControlPlane,
    api::node::v1 as pb,
    compute::{
        Compute, CreateVm, Hosts,
        agents::{AgentTiming, Agents},
    },
    driver::{
        DomainState, Hypervisor,
        sim::{SimConfig, SimHypervisor, SimOp},
    },
    events::{EventBus, EventBusConfig},
    model::{NodeId, ProjectId, Vm, VmState},
    store::Store,
};

mod common;
use common::{BEAT, eventually, heartbeats, reports, start_agent};

fn timing() -> AgentTiming {
    AgentTiming {
        heartbeat_interval: Duration::from_secs(1),
        op_timeout: Duration::from_secs(10),
        ..AgentTiming::default()
    }
}

struct ControlPlaneUnderTest {
    compute: Compute,
    agents: Agents,
}

async fn control_plane(db: &std::path::Path, timing: AgentTiming) -> ControlPlaneUnderTest {
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
    let agents = Agents::new(compute.clone(), timing);
    agents.restore().await.unwrap();
    ControlPlaneUnderTest { compute, agents }
}

/// A control plane that can be cut off (a network partition).
struct Partitionable {
    inner: Agents,
    cut: AtomicBool,
}

impl Partitionable {
    fn check(&self) -> Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(lqx_core::Error::unavailable("partitioned"))
        } else {
            Ok(())
        }
    }
}

impl ControlPlane for Partitionable {
    fn register(&self, req: pb::RegisterRequest) -> BoxFuture<'_, Result<pb::RegisterResponse>> {
        async move {
            self.check()?;
            self.inner.register(req).await
        }
        .boxed()
    }
    fn heartbeat(&self, credential: String, req: pb::HeartbeatRequest) -> BoxFuture<'_, Result<pb::HeartbeatResponse>> {
        async move {
            self.check()?;
            self.inner.heartbeat(&credential, req).await
        }
        .boxed()
    }
}

async fn joined(cp: &ControlPlaneUnderTest, name: &str) -> NodeId {
    let mut id = None;
    eventually("the node joins and heartbeats", async || {
        match cp.compute.store.resolve_node(name).await {
            Ok(n) if cp.agents.lease_state(n.id).is_some() => {
                id = Some(n.id);
                true
            }
            _ => false,
        }
    })
    .await;
    id.unwrap()
}

fn create(name: &str, node: NodeId, start: bool, ha: bool) -> CreateVm {
    let mut c = common::vm(name, node, 256);
    c.start = start;
    c.spec.ha.enabled = ha;
    c
}

async fn state_on(hv: &SimHypervisor, vm: &Vm) -> Option<DomainState> {
    hv.domain_state(vm.id).await.ok()
}

#[tokio::test]
async fn join_heartbeat_commands_and_agent_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cp = control_plane(&dir.path().join("lqx.db"), timing()).await;
    let hv = SimHypervisor::new("sim://host-a", SimConfig::with_capacity(8, 16_384)).unwrap();
    let (token, _) = cp.compute.create_join_token(600, "").await.unwrap();
    let agent_dir = dir.path().join("agent");
    let agent = start_agent(
        Arc::new(cp.agents.clone()),
        &hv,
        &agent_dir,
        "host-a",
        Some(token.clone()),
    );
    let node = joined(&cp, "host-a").await;

    // Join: capacity from the host, identity kept private on disk, lease renewed.
    let n = cp.compute.store.get_node(node).await.unwrap();
    assert_eq!((n.capacity.cpu_cores, n.capacity.memory_mib), (8, 16_384));
    let ident = agent_dir.join(lqx_core::agent::runner::IDENTITY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&ident).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let first = cp.agents.lease_state(node).unwrap();
    eventually("the lease is renewed by later heartbeats", async || {
        cp.agents.lease_state(node).unwrap().last_renewed > first.last_renewed
    })
    .await;
    // The join token was spent.
    let again = cp.compute.redeem_join_token(&token, "host-a").await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::Unauthenticated);

    // Commands go through the agent; the compute layer sees the result.
    let vm = cp.compute.create_vm(create("web-1", node, true, false)).await.unwrap();
    assert_eq!(vm.status.state, VmState::Running);
    assert_eq!(state_on(&hv, &vm).await, Some(DomainState::Running));
    // A repeated command does nothing twice.
    let vm = cp.compute.start_vm("web-1", ProjectId::DEFAULT).await.unwrap();
    assert_eq!(vm.status.state, VmState::Running);
    assert_eq!(hv.domain_count(), 1);
    let stopped = cp
        .compute
        .stop_vm("web-1", ProjectId::DEFAULT, false, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(stopped.status.state, VmState::Stopped);
    assert_eq!(state_on(&hv, &vm).await, Some(DomainState::Shutoff));
    cp.compute
        .stop_vm("web-1", ProjectId::DEFAULT, false, None)
        .await
        .unwrap();
    cp.compute.start_vm("web-1", ProjectId::DEFAULT).await.unwrap();

    // Usage flows back: the heartbeat writes observed usage to the VM record.
    hv.set_usage(vm.id, 50.0, Some(128)).unwrap();
    eventually("usage reaches the VM record", async || {
        let v = cp.compute.store.get_vm(vm.id).await.unwrap();
        v.status.memory_used_mib == 128 && v.status.cpu_usage_percent > 10.0
    })
    .await;

    // Agent restart: same identity (the join token is spent, so a re-join would fail), same
    // domains, nothing duplicated or restarted.
    agent.stop().await;
    let agent = start_agent(Arc::new(cp.agents.clone()), &hv, &agent_dir, "host-a", None);
    let renewed = cp.agents.lease_state(node).unwrap();
    eventually("the restarted agent heartbeats", async || {
        cp.agents.lease_state(node).unwrap().last_renewed > renewed.last_renewed
    })
    .await;
    heartbeats(&cp.agents, node, 5).await;
    assert_eq!(hv.domain_count(), 1);
    assert_eq!(state_on(&hv, &vm).await, Some(DomainState::Running));
    assert_eq!(cp.compute.store.all_nodes().await.unwrap().len(), 1, "no second node");

    // A domain that went away behind the control plane's back is recreated (level-triggered).
    hv.destroy(vm.id).await.unwrap();
    hv.undefine(vm.id, false).await.unwrap();
    eventually("the agent recreates and restarts the domain", async || {
        state_on(&hv, &vm).await == Some(DomainState::Running)
    })
    .await;

    // Delete: undefined on the host, volumes too; deleting again is NotFound.
    cp.compute.delete_vm("web-1", ProjectId::DEFAULT, true).await.unwrap();
    assert_eq!(hv.domain_count(), 0);
    let e = cp
        .compute
        .delete_vm("web-1", ProjectId::DEFAULT, true)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    agent.stop().await;
}

#[tokio::test]
async fn host_errors_come_back_and_undo_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let cp = control_plane(&dir.path().join("lqx.db"), timing()).await;
    let hv = SimHypervisor::new("sim://host-e", SimConfig::with_capacity(8, 16_384)).unwrap();
    let (token, _) = cp.compute.create_join_token(600, "host-e").await.unwrap();
    let _agent = start_agent(
        Arc::new(cp.agents.clone()),
        &hv,
        &dir.path().join("a"),
        "host-e",
        Some(token),
    );
    let node = joined(&cp, "host-e").await;

    hv.fail_next(
        SimOp::Define,
        lqx_core::driver::DriverError::Exhausted("no room".into()),
    );
    let e = cp
        .compute
        .create_vm(create("big", node, false, false))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{e}");
    assert!(
        cp.agents.link(node).unwrap().desired().is_empty(),
        "the failed define is undone"
    );
    assert!(cp.compute.store.resolve_vm("big", ProjectId::DEFAULT).await.is_err());
    // The next attempt works and the failure is not replayed.
    cp.compute.create_vm(create("big", node, true, false)).await.unwrap();
    assert_eq!(hv.domain_count(), 1);
}

#[tokio::test]
async fn control_plane_restart_rebuilds_the_desired_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lqx.db");
    let hv = SimHypervisor::new("sim://host-b", SimConfig::with_capacity(8, 16_384)).unwrap();
    let agent_dir = dir.path().join("agent");
    let (vm, stopped, node) = {
        let cp = control_plane(&db, timing()).await;
        let (token, _) = cp.compute.create_join_token(600, "").await.unwrap();
        let agent = start_agent(Arc::new(cp.agents.clone()), &hv, &agent_dir, "host-b", Some(token));
        let node = joined(&cp, "host-b").await;
        let vm = cp.compute.create_vm(create("db-1", node, true, false)).await.unwrap();
        let stopped = cp.compute.create_vm(create("db-2", node, false, false)).await.unwrap();
        agent.stop().await;
        cp.compute.store.close().await;
        (vm, stopped, node)
    };

    // A new control plane on the same database: the node is an agent node again, its
    // desired state comes from the VM records, and until the agent is back it is Unavailable.
    let cp = control_plane(&db, timing()).await;
    let link = cp.agents.link(node).expect("link restored");
    let mut desired: Vec<_> = link.desired().into_iter().map(|d| (d.spec.id, d.running)).collect();
    desired.sort();
    let mut expected = vec![(vm.id, true), (stopped.id, false)];
    expected.sort();
    assert_eq!(desired, expected);
    let e = cp.compute.start_vm("db-2", ProjectId::DEFAULT).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");

    let _agent = start_agent(Arc::new(cp.agents.clone()), &hv, &agent_dir, "host-b", None);
    eventually("the agent heartbeats the new control plane", async || {
        cp.agents.lease_state(node).is_some()
    })
    .await;
    cp.compute.start_vm("db-2", ProjectId::DEFAULT).await.unwrap();
    assert_eq!(hv.domain_count(), 2, "nothing was defined twice");
    assert_eq!(state_on(&hv, &vm).await, Some(DomainState::Running));
    assert_eq!(state_on(&hv, &stopped).await, Some(DomainState::Running));
}

#[tokio::test]
async fn credentials_act_only_for_their_own_node() {
    let dir = tempfile::tempdir().unwrap();
    let cp = control_plane(&dir.path().join("lqx.db"), timing()).await;
    let mut creds = vec![];
    for name in ["n-a", "n-b"] {
        let (token, _) = cp.compute.create_join_token(600, name).await.unwrap();
        let r = cp
            .agents
            .register(pb::RegisterRequest {
                join_token: token,
                name: name.into(),
                cpu_cores: 4,
                memory_mib: 4096,
                ..Default::default()
            })
            .await
            .unwrap();
        creds.push((r.node_id, r.node_credential));
    }
    let (a, cred_a) = &creds[0];
    let (b, _) = &creds[1];
    let hb = |node: &str| pb::HeartbeatRequest {
        node_id: node.into(),
        ..Default::default()
    };
    cp.agents.heartbeat(cred_a, hb(a)).await.unwrap();
    let e = cp.agents.heartbeat(cred_a, hb(b)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    let last = if cred_a.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &cred_a[..cred_a.len() - 1]);
    assert_eq!(
        cp.agents.heartbeat(&forged, hb(a)).await.unwrap_err().kind,
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        cp.agents.heartbeat("nonsense", hb(a)).await.unwrap_err().kind,
        ErrorKind::Unauthenticated
    );
    // A token made for another name does not admit this one.
    let (token, _) = cp.compute.create_join_token(600, "n-c").await.unwrap();
    let e = cp
        .agents
        .register(pb::RegisterRequest {
            join_token: token,
            name: "n-d".into(),
            cpu_cores: 4,
            memory_mib: 4096,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    // The credential is stored hashed, not in clear, in the auth layer's format.
    assert!(cred_a.starts_with("lqxn_"));
    let stored = cp
        .compute
        .store
        .kv_get(&format!("node_credential/{a}"))
        .await
        .unwrap()
        .unwrap()
        .0;
    assert!(!stored.contains(&cred_a[12..]));
    // Joining again replaces the credential: the old one stops working.
    let (token, _) = cp.compute.create_join_token(600, "n-a").await.unwrap();
    let r = cp
        .agents
        .register(pb::RegisterRequest {
            join_token: token,
            name: "n-a".into(),
            cpu_cores: 4,
            memory_mib: 4096,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(&r.node_id, a, "same node");
    assert_eq!(
        cp.agents.heartbeat(cred_a, hb(a)).await.unwrap_err().kind,
        ErrorKind::Unauthenticated
    );
    cp.agents.heartbeat(&r.node_credential, hb(a)).await.unwrap();
}

#[tokio::test]
async fn cold_migration_between_two_agent_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let cp = control_plane(&dir.path().join("lqx.db"), timing()).await;
    let src = SimHypervisor::new("sim://src", SimConfig::with_capacity(8, 16_384)).unwrap();
    let dst = SimHypervisor::new("sim://dst", SimConfig::with_capacity(8, 16_384)).unwrap();
    let mut agents = vec![];
    for (hv, name) in [(&src, "src"), (&dst, "dst")] {
        let (token, _) = cp.compute.create_join_token(600, name).await.unwrap();
        agents.push(start_agent(
            Arc::new(cp.agents.clone()),
            hv,
            &dir.path().join(name),
            name,
            Some(token),
        ));
    }
    let s = joined(&cp, "src").await;
    let d = joined(&cp, "dst").await;
    let vm = cp.compute.create_vm(create("mover", s, true, false)).await.unwrap();
    // No migration URI reported: live is impossible, and nothing is stopped silently.
    let e = cp
        .compute
        .migrate_vm("mover", ProjectId::DEFAULT, Some("dst"), false)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("--migration-uri"), "{}", e.message);
    assert_eq!(state_on(&src, &vm).await, Some(DomainState::Running));
    let out = cp
        .compute
        .migrate_vm("mover", ProjectId::DEFAULT, Some("dst"), true)
        .await
        .unwrap();
    assert!(!out.live, "asked cold");
    assert_eq!(out.vm.status.node_id, Some(d));
    assert_eq!(out.vm.status.state, VmState::Running);
    assert_eq!(state_on(&dst, &vm).await, Some(DomainState::Running));
    assert_eq!(src.domain_count(), 0, "undefined on the source");
    // Stays where it is: a later heartbeat from the source does not bring it back.
    heartbeats(&cp.agents, s, 5).await;
    assert_eq!(src.domain_count(), 0);
    assert_eq!(dst.domain_count(), 1);
}

#[tokio::test]
async fn a_cut_off_agent_fences_its_ha_domains_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let t = AgentTiming {
        lease_ttl: Duration::from_secs(2),
        self_fence_after: Duration::from_secs(1),
        ..timing()
    };
    let cp = control_plane(&dir.path().join("lqx.db"), t).await;
    let hv = SimHypervisor::new("sim://host-f", SimConfig::with_capacity(8, 16_384)).unwrap();
    let (token, _) = cp.compute.create_join_token(600, "").await.unwrap();
    let net = Arc::new(Partitionable {
        inner: cp.agents.clone(),
        cut: AtomicBool::new(false),
    });
    let _agent = start_agent(net.clone(), &hv, &dir.path().join("a"), "host-f", Some(token));
    let node = joined(&cp, "host-f").await;
    let ha = cp.compute.create_vm(create("ha-1", node, true, true)).await.unwrap();
    let plain = cp
        .compute
        .create_vm(create("plain-1", node, true, false))
        .await
        .unwrap();

    net.cut.store(true, Ordering::SeqCst);
    eventually("the HA domain is fenced", async || {
        state_on(&hv, &ha).await == Some(DomainState::Shutoff)
    })
    .await;
    assert_eq!(
        state_on(&hv, &plain).await,
        Some(DomainState::Running),
        "only HA domains are fenced"
    );
    // Still cut off: it is not started again.
    reports(&hv, 5).await;
    assert_eq!(state_on(&hv, &ha).await, Some(DomainState::Shutoff));

    net.cut.store(false, Ordering::SeqCst);
    eventually("the renewed agent runs the HA domain again", async || {
        state_on(&hv, &ha).await == Some(DomainState::Running)
    })
    .await;
}

/// A slow libvirtd (listing domains takes 30 s) does not silence the agent: heartbeats go on
/// every interval with the last domain list, and the node's fencing says libvirt is not
/// answering.
#[tokio::test]
async fn heartbeats_go_on_while_the_hypervisor_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let cp = control_plane(&dir.path().join("lqx.db"), timing()).await;
    let hv = SimHypervisor::new("sim://host-slow", SimConfig::with_capacity(8, 16_384)).unwrap();
    let (token, _) = cp.compute.create_join_token(600, "").await.unwrap();
    let agent = start_agent(
        Arc::new(cp.agents.clone()),
        &hv,
        &dir.path().join("agent"),
        "host-slow",
        Some(token),
    );
    let node = joined(&cp, "host-slow").await;
    eventually("an agent-only fencing report", async || {
        cp.compute.fencing_of(node).is_some_and(|f| {
            f.level == lqx_core::fence::FencingLevel::AgentOnly && f.text().starts_with("degraded: no fence process")
        })
    })
    .await;
    hv.stall(SimOp::List, Some(Duration::from_secs(30)));
    eventually("the hypervisor reported slow", async || {
        cp.compute.fencing_of(node).is_some_and(|f| {
            f.level == lqx_core::fence::FencingLevel::None && f.text().starts_with("degraded: libvirt is not answering")
        })
    })
    .await;
    // One list call is in flight; the next heartbeats do not start more behind it.
    let lists = hv.started(SimOp::List);
    // Heartbeats keep coming while libvirt hangs.
    heartbeats(&cp.agents, node, 15).await;
    assert!(cp.agents.lease_state(node).is_some());
    // 15 heartbeats later: no more list calls, except at most the reconcile pass's own one
    // (it waits for its answer; before, every heartbeat started another).
    let more = hv.started(SimOp::List) - lists;
    assert!(more <= 1, "{more} reads piled up behind the hung one");
    assert!(
        cp.compute
            .fencing_of(node)
            .is_some_and(|f| f.reason.contains("in flight for")),
        "{:?}",
        cp.compute.fencing_of(node)
    );
    hv.stall(SimOp::List, None);
    agent.stop().await;
}

/// The CPU model an agent reports at join is kept with the node: a restarted control plane
/// knows it (for the live-migration CPU check) before the agent, which only heartbeats to
/// it, says it again. On SQLite and PostgreSQL.
#[tokio::test]
async fn cpu_models_survive_a_control_plane_restart() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in lqx_core::store::testing::engines(dir.path()).await {
        let compute = Compute::new(
            store.clone(),
            Hosts::default(),
            EventBus::new(EventBusConfig::default()),
        );
        let agents = Agents::new(compute.clone(), timing());
        let (token, _) = compute.create_join_token(600, "").await.unwrap();
        let joined = agents
            .register(lqx_core::api::node::v1::RegisterRequest {
                join_token: token,
                name: "host-cpu".into(),
                cpu_cores: 8,
                memory_mib: 16_384,
                libvirt_uri: "qemu:///system".into(),
                cpu_model: "Skylake-Server-IBRS".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let node = NodeId::parse("node", &joined.node_id).unwrap();
        drop((agents, compute));

        let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
        let agents = Agents::new(compute.clone(), timing());
        agents.restore().await.unwrap();
        let info = compute.hosts.get(node).unwrap().node_info().await.unwrap();
        assert_eq!(info.cpu_model, "Skylake-Server-IBRS", "{engine}");
        assert_eq!(
            compute.store.get_node(node).await.unwrap().cpu_model,
            "Skylake-Server-IBRS",
            "{engine}"
        );
    }
}

/// One control-plane replica served over real gRPC (as `lqx-server` serves it): it
/// registers agents and, while `leads` is false, refuses heartbeats the way a replica that
/// does not lead does.
struct ReplicaApi {
    agents: Agents,
    leads: Arc<std::sync::atomic::AtomicBool>,
    heartbeats: Arc<std::sync::atomic::AtomicUsize>,
}

#[tonic::async_trait]
impl lqx_core::api::node::v1::agent_service_server::AgentService for ReplicaApi {
    async fn register(
        &self,
        req: tonic::Request<lqx_core::api::node::v1::RegisterRequest>,
    ) -> Result<tonic::Response<lqx_core::api::node::v1::RegisterResponse>, tonic::Status> {
        let r = self.agents.register(req.into_inner()).await;
        r.map(tonic::Response::new)
            .map_err(|e| tonic::Status::unavailable(e.message))
    }

    async fn heartbeat(
        &self,
        req: tonic::Request<lqx_core::api::node::v1::HeartbeatRequest>,
    ) -> Result<tonic::Response<lqx_core::api::node::v1::HeartbeatResponse>, tonic::Status> {
        use std::sync::atomic::Ordering;
        if !self.leads.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable(
                "this control plane is not the HA leader; retry (another replica leads)",
            ));
        }
        let cred = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
        let r = self.agents.heartbeat(&cred, req.into_inner()).await;
        r.map(tonic::Response::new)
            .map_err(|e| tonic::Status::unavailable(e.message))
    }
}

/// `--control-plane http://NAME:PORT` where NAME resolves to two addresses (127.0.0.1 and
/// ::1), each a replica on the same port: the agent tries both like two listed URLs, so it
/// heartbeats to whichever leads, and follows a leader change, with no load balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_several_addresses_is_several_replicas() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let cp = control_plane(&dir.path().join("lqx.db"), timing()).await;
    // Both replicas on one port, one per loopback address.
    let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = v4.local_addr().unwrap().port();
    let v6 = tokio::net::TcpListener::bind(("::1", port)).await.unwrap();
    let mut replicas = vec![];
    for l in [v4, v6] {
        let leads = Arc::new(AtomicBool::new(false));
        let heartbeats = Arc::new(AtomicUsize::new(0));
        let api = ReplicaApi {
            agents: cp.agents.clone(),
            leads: leads.clone(),
            heartbeats: heartbeats.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(lqx_core::api::node::v1::agent_service_server::AgentServiceServer::new(
                    api,
                ))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
        );
        replicas.push((leads, heartbeats));
    }
    // The ::1 replica leads.
    replicas[1].0.store(true, Ordering::SeqCst);
    // The name, as a resolver that knows it would answer (one name, both addresses).
    let resolve: lqx_core::agent::follow::Resolve = Arc::new(|host, _port| {
        Box::pin(async move {
            assert_eq!(host, "cp.lqx.test");
            Ok(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()])
        })
    });
    let connect: lqx_core::agent::follow::Connect = Arc::new(|url: &str, tls_name: Option<&str>| {
        assert_eq!(tls_name, Some("cp.lqx.test"));
        Ok(tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| lqx_core::Error::invalid("url", e.to_string()))?
            .connect_lazy())
    });
    let url = format!("http://cp.lqx.test:{port}");
    let follow = lqx_core::agent::follow::FollowLeader::with_names(&[url], connect, resolve)
        .await
        .unwrap()
        .with_call_timeout(Duration::from_secs(2));
    assert_eq!(
        follow.replicas(),
        vec![format!("http://127.0.0.1:{port}"), format!("http://[::1]:{port}")]
    );
    let hv = SimHypervisor::new("sim://host-dns", SimConfig::with_capacity(8, 16_384)).unwrap();
    let (token, _) = cp.compute.create_join_token(600, "").await.unwrap();
    let agent = start_agent(
        Arc::new(follow),
        &hv,
        &dir.path().join("agent"),
        "host-dns",
        Some(token),
    );
    let node = joined(&cp, "host-dns").await;
    eventually("heartbeats reach the ::1 replica", async || {
        replicas[1].1.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert_eq!(replicas[0].1.load(Ordering::SeqCst), 0);
    // The leader changes: 127.0.0.1 leads now. The agent follows within a heartbeat or two,
    // its lease never lapsing.
    replicas[1].0.store(false, Ordering::SeqCst);
    replicas[0].0.store(true, Ordering::SeqCst);
    eventually("heartbeats reach the 127.0.0.1 replica", async || {
        replicas[0].1.load(Ordering::SeqCst) >= 3
    })
    .await;
    let lease = cp.agents.lease_state(node).expect("a lease");
    assert!(
        lease.last_renewed.elapsed() < BEAT * 5,
        "{:?}",
        lease.last_renewed.elapsed()
    );
    agent.stop().await;
}

/// The system resolver, as the agent uses it: `localhost` gives loopback addresses, a URL
/// with an address is kept as it is.
#[tokio::test]
async fn control_plane_names_resolve_through_the_system_resolver() {
    use lqx_core::agent::follow::{expand, system_resolver};
    let r = system_resolver();
    let addrs = r("localhost".into(), 8080).await.unwrap();
    assert!(!addrs.is_empty() && addrs.iter().all(|a| a.is_loopback()), "{addrs:?}");
    let out = expand(&["http://127.0.0.1:8080/".into(), "http://localhost:8080".into()], &r).await;
    assert_eq!(out[0].url, "http://127.0.0.1:8080");
    assert_eq!(out[0].tls_name, None);
    if addrs.len() > 1 {
        assert!(
            out.len() == 1 + addrs.len() && out[1].tls_name.as_deref() == Some("localhost"),
            "{out:?}"
        );
    } else {
        assert_eq!(out[1].url, "http://localhost:8080");
    }
}

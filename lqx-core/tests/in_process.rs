//! In-process nodes observed and reconciled with the agent's code
//! (`compute::in_process`), one pass at a time over a simulated host: a domain that
//! disappears from the host comes back (defined and started, with an event), one running
//! that should not is stopped, an unknown `lqx-` domain is reported and left alone, usage
//! and the heartbeat reach the node and VM records.

use std::sync::Arc;

use lqx_core::{
    compute::{
        Compute, CreateVm, Hosts, NodeRegistration,
        agents::{AgentTiming, Agents},
        in_process::{InProcessNode, InProcessOptions},
    },
    driver::{
        DomainSpec, DomainState, Hypervisor,
        sim::{SimConfig, SimHypervisor},
    },
    events::{EventBus, EventBusConfig},
    model::{EventType, ProjectId, SubscriptionFilter, VmId, VmState},
    store::Store,
};

mod common;

fn create(name: &str, node: lqx_core::model::NodeId, start: bool) -> CreateVm {
    CreateVm {
        start,
        ..common::vm(name, node, 256)
    }
}

async fn setup() -> (
    tempfile::TempDir,
    Compute,
    SimHypervisor,
    InProcessNode,
    lqx_core::model::NodeId,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db.sqlite").to_str().unwrap())
        .await
        .unwrap();
    let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
    let sim = SimHypervisor::new("sim://ip-1", SimConfig::with_capacity(8, 16_384)).unwrap();
    let node = compute
        .attach_node(NodeRegistration::new("ip-1", "sim://ip-1"), Arc::new(sim.clone()))
        .await
        .unwrap()
        .id;
    let agents = Agents::new(compute.clone(), AgentTiming::default());
    let hv: Arc<dyn Hypervisor> = Arc::new(sim.clone());
    let loop_ = InProcessNode::new(compute.clone(), agents, node, hv, InProcessOptions::default())
        .await
        .unwrap();
    (dir, compute, sim, loop_, node)
}

#[tokio::test]
async fn a_domain_the_host_lost_comes_back() {
    let (_dir, compute, sim, mut node_loop, node) = setup().await;
    let vm = compute.create_vm(create("web-1", node, true)).await.unwrap();
    let idle = compute.create_vm(create("idle-1", node, false)).await.unwrap();
    let first = node_loop.pass().await.unwrap();
    assert!(first.heartbeat);
    assert_eq!(first.actions, 0, "nothing to do on a host that agrees: {first:?}");

    // The host loses both domains (a host restart, `virsh undefine`).
    sim.destroy(vm.id).await.unwrap();
    sim.undefine(vm.id, false).await.unwrap();
    sim.undefine(idle.id, false).await.unwrap();
    assert_eq!(sim.domain_count(), 0);
    let pass = node_loop.pass().await.unwrap();
    let mut recreated = pass.recreated.clone();
    recreated.sort();
    let mut want = vec![vm.id, idle.id];
    want.sort();
    assert_eq!(recreated, want, "{pass:?}");
    assert_eq!(sim.domain_state(vm.id).await.unwrap(), DomainState::Running);
    assert_eq!(
        sim.domain_state(idle.id).await.unwrap(),
        DomainState::Shutoff,
        "stays stopped"
    );
    let events = compute.events.recent(&SubscriptionFilter::default(), 0, 1000);
    assert!(
        events
            .iter()
            .any(|e| e.event_type == EventType::Recovered && e.resource_id == vm.id.to_string()),
        "a RECOVERED event names the VM"
    );
    // Converged: the next pass does nothing, and commands work on the domain again.
    assert_eq!(node_loop.pass().await.unwrap().actions, 0);
    compute
        .stop_vm(&vm.id.to_string(), ProjectId::DEFAULT, true, None)
        .await
        .unwrap();
    assert_eq!(sim.domain_state(vm.id).await.unwrap(), DomainState::Shutoff);
}

#[tokio::test]
async fn stops_what_should_not_run_and_reports_unknown_domains() {
    let (_dir, compute, sim, mut node_loop, node) = setup().await;
    let vm = compute.create_vm(create("db-1", node, false)).await.unwrap();
    // Started behind lqx's back.
    sim.start(vm.id).await.unwrap();
    // A domain no VM record knows.
    let stray = DomainSpec::new(VmId::new(), "stray", 1, 128);
    sim.define(stray.clone()).await.unwrap();
    sim.start(stray.id).await.unwrap();

    let pass = node_loop.pass().await.unwrap();
    assert_eq!(pass.unknown, vec![stray.id], "{pass:?}");
    assert_eq!(sim.domain_state(vm.id).await.unwrap(), DomainState::Shutoff, "stopped");
    assert_eq!(
        sim.domain_state(stray.id).await.unwrap(),
        DomainState::Running,
        "an unknown domain is left alone"
    );
    let n = compute.store.get_node(node).await.unwrap();
    assert!(n.last_heartbeat.is_some(), "the pass is a heartbeat");
    // A pass reports what it found before it acts; the next one records the result.
    node_loop.pass().await.unwrap();
    let v = compute.store.get_vm(vm.id).await.unwrap();
    assert_eq!(v.status.state, VmState::Stopped);
}

#[tokio::test]
async fn a_vm_a_command_holds_is_left_alone() {
    let (_dir, compute, sim, mut node_loop, node) = setup().await;
    let vm = compute.create_vm(create("app-1", node, true)).await.unwrap();
    // A VM in the middle of a command (here: being placed) is not touched.
    let mut v = compute.store.get_vm(vm.id).await.unwrap();
    v.status.state = VmState::Migrating;
    compute.store.update_vm(&v).await.unwrap();
    sim.destroy(vm.id).await.unwrap();
    sim.undefine(vm.id, false).await.unwrap();
    let pass = node_loop.pass().await.unwrap();
    assert_eq!(pass.busy, 1);
    assert!(pass.recreated.is_empty(), "{pass:?}");
    assert_eq!(sim.domain_count(), 0);
}

/// The node's heartbeat as node views show it (`lqx node list`'s HEARTBEAT) follows every
/// pass, as the lease does, although the record is written only every `node_write_interval`.
#[tokio::test]
async fn the_heartbeat_node_views_show_follows_every_pass() {
    let (_dir, compute, _sim, mut node_loop, node) = setup().await;
    // The first two passes write the record (the first has no CPU delta); then it rests
    // for `node_write_interval` (15 s by default).
    node_loop.pass().await.unwrap();
    node_loop.pass().await.unwrap();
    let written = compute.store.get_node(node).await.unwrap().last_heartbeat.unwrap();
    for _ in 0..3 {
        // Time between passes, so a shown heartbeat that did not follow them would be old.
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        node_loop.pass().await.unwrap();
        let n = compute.store.get_node(node).await.unwrap();
        let shown = compute
            .node_view(&n, Default::default())
            .to_proto()
            .last_heartbeat
            .unwrap();
        let shown = chrono::DateTime::from_timestamp(shown.seconds, shown.nanos as u32).unwrap();
        let age = chrono::Utc::now() - shown;
        assert!(
            age < chrono::Duration::milliseconds(500),
            "the shown heartbeat is {age} old just after a pass"
        );
        assert!(compute.last_heard(&n).unwrap() >= shown);
    }
    let n = compute.store.get_node(node).await.unwrap();
    assert_eq!(n.last_heartbeat, Some(written), "the record rests meanwhile");
    assert!(
        compute
            .node_view(&n, Default::default())
            .to_proto()
            .fencing_level
            .is_empty(),
        "an in-process node reports no fencing status"
    );
}

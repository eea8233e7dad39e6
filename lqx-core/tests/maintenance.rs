//! Entering maintenance with evacuation: every VM that can move moves; one that fits
//! nowhere is named, the call fails (FailedPrecondition, the CLI's conflict exit code), and
//! the node stays DRAINING (no new VMs, DRS keeps evacuating) instead of claiming
//! maintenance with VMs still on it.

use std::sync::Arc;

use lqx_core::{
    ErrorKind,
    compute::{Compute, Hosts, NodeRegistration},
    driver::sim::{SimConfig, SimRegistry},
    events::{EventBus, EventBusConfig},
    model::{NodePhase, ProjectId},
    store::Store,
};

mod common;
use common::vm;

#[tokio::test]
async fn a_vm_that_cannot_move_is_named_and_the_node_stays_draining() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db.sqlite").to_str().unwrap())
        .await
        .unwrap();
    let compute = Compute::new(store, Hosts::default(), EventBus::new(EventBusConfig::default()));
    let sims = SimRegistry::new();
    let mut ids = Vec::new();
    for (name, mem) in [("m-1", 16_384), ("m-2", 4_096)] {
        let uri = format!("sim://{name}");
        let sim = sims.create(&uri, SimConfig::with_capacity(8, mem)).unwrap();
        let n = compute
            .attach_node(NodeRegistration::new(name, uri), Arc::new(sim))
            .await
            .unwrap();
        ids.push(n.id);
    }
    compute.create_vm(vm("small", ids[0], 1024)).await.unwrap();
    compute.create_vm(vm("large", ids[0], 12_288)).await.unwrap();

    let err = compute.enter_maintenance("m-1", true).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition, "{err}");
    assert!(err.message.contains("moved small"), "{}", err.message);
    assert!(err.message.contains("could not move large"), "{}", err.message);
    let n = compute.store.resolve_node("m-1").await.unwrap();
    assert_eq!(n.phase, NodePhase::Draining);
    let small = compute.get_vm("small", ProjectId::DEFAULT).await.unwrap();
    assert_eq!(small.status.node_id, Some(ids[1]));

    // With the large VM gone, entering again finishes: MAINTENANCE.
    compute.delete_vm("large", ProjectId::DEFAULT, true).await.unwrap();
    let n = compute.enter_maintenance("m-1", true).await.unwrap();
    assert_eq!(n.phase, NodePhase::Maintenance);
}

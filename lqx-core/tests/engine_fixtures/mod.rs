//! Clusters the DRS and DPM engine tests share: cluster files (the format of
//! `lqx drs simulate`, lqx_core::cluster_file) under tests/data/engine, loaded onto simulated
//! hosts over a real store.

// Each test crate uses its own subset.
#![allow(dead_code)]

use lqx_core::{
    cluster_file, compute::Compute, driver::sim::SimRegistry, model::ProjectId, placement::ClusterSnapshot,
};

/// The text of tests/data/engine/NAME.yaml.
pub fn cluster(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/engine")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads cluster file `yaml` into `compute`: one simulated host of `sims` per node (those
/// already in `sims` are used as they are), its VMs on them, and each VM's measured usage
/// written into its record, as the agents' heartbeats would.
pub async fn load(compute: &Compute, sims: &SimRegistry, yaml: &str) -> ClusterSnapshot {
    let snap = cluster_file::parse(yaml).unwrap();
    lqx_core::compute::sim::load_cluster(compute, sims, &snap)
        .await
        .unwrap();
    for v in &snap.vms {
        if let Some(u) = v.usage {
            let mut vm = compute.get_vm(&v.name, ProjectId::DEFAULT).await.unwrap();
            vm.status.cpu_usage_percent = u.cpu_percent;
            vm.status.memory_used_mib = u.memory_used_mib;
            compute.store.update_vm(&vm).await.unwrap();
        }
    }
    snap
}

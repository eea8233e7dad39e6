//! Loading a cluster file (docs/architecture.md) onto simulated hosts, for `lqx-server --sim`.

use super::{Compute, CreateVm, NodeRegistration};
use crate::driver::sim::{SimConfig, SimRegistry};
use crate::model::*;
use crate::placement::ClusterSnapshot;
use crate::{Error, Result};
use std::sync::Arc;

/// One simulated host per node of the snapshot, and its VMs created on their nodes (running
/// when the snapshot says so, with their measured usage set on the simulated host; a
/// running VM without usage runs at 100 % of its vCPUs and memory).
pub async fn load_cluster(compute: &Compute, sims: &SimRegistry, cluster: &ClusterSnapshot) -> Result<()> {
    let mut node_ids = std::collections::HashMap::new();
    for n in &cluster.nodes {
        let uri = format!("sim://{}", n.name);
        let sim = sims.get_or_create(&uri, SimConfig::with_capacity(n.cpu_cores, n.memory_mib))?;
        let mut reg = NodeRegistration::new(n.name.clone(), uri);
        reg.labels = n.labels.clone();
        reg.cpu_overcommit = n.cpu_overcommit;
        reg.memory_overcommit = n.memory_overcommit;
        reg.maintenance = n.phase == NodePhase::Maintenance;
        let node = compute.attach_node(reg, Arc::new(sim.clone())).await?;
        node_ids.insert(n.id, (node.id, sim));
    }
    for v in &cluster.vms {
        if compute.store.resolve_vm(&v.name, ProjectId::DEFAULT).await.is_ok() {
            continue; // already loaded by an earlier start
        }
        let (node, sim) = v
            .node
            .and_then(|n| node_ids.get(&n))
            .ok_or_else(|| Error::invalid("vms[].node", format!("VM {} names no node of the file", v.name)))?;
        let map = |ids: &[NodeId]| ids.iter().filter_map(|i| node_ids.get(i).map(|(n, _)| *n)).collect();
        let spec = VmSpec {
            cpu_cores: v.cpu_cores,
            memory_mib: v.memory_mib,
            disks: vec![],
            nics: vec![],
            ha: v.ha.clone(),
            placement: PlacementPolicy {
                required_nodes: map(&v.placement.required_nodes),
                excluded_nodes: map(&v.placement.excluded_nodes),
                anti_affinity_group: v.placement.anti_affinity_group.clone(),
            },
        };
        let vm = compute
            .create_vm(CreateVm {
                name: v.name.clone(),
                project_id: ProjectId::DEFAULT,
                description: String::new(),
                labels: Default::default(),
                spec,
                node: Some(*node),
                start: v.running,
                request_id: None,
            })
            .await?;
        if v.usage.is_none() && v.running {
            // No usage in the file: the VM counts as fully used (its allocation), and the
            // simulated host runs it so, for observation to measure the same.
            sim.set_usage(vm.id, 100.0, None)?;
        }
        if let Some(u) = v.usage {
            sim.set_usage(vm.id, u.cpu_percent, Some(u.memory_used_mib))?;
            // What a heartbeat would report, so planners see the measured usage at once.
            let mut vm = vm;
            vm.status.cpu_usage_percent = u.cpu_percent;
            vm.status.memory_used_mib = u.memory_used_mib;
            compute.store.update_vm(&vm).await?;
        }
    }
    Ok(())
}

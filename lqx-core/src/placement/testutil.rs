//! Builders for planner tests (placement, DRS).

use uuid::Uuid;

use super::{ClusterSnapshot, NodeSnapshot, VmSnapshot, VmUsageSample};
use crate::model::{HaPolicy, NodeId, NodePhase, PlacementPolicy, VmId};

pub fn node_id(i: usize) -> NodeId {
    NodeId(Uuid::from_u128(0x1000_0000 + i as u128))
}

pub fn vm_id(i: usize) -> VmId {
    VmId(Uuid::from_u128(0x2000_0000 + i as u128))
}

pub fn node(i: usize, cpu_cores: u32, memory_mib: u64) -> NodeSnapshot {
    NodeSnapshot {
        id: node_id(i),
        name: format!("node-{i}"),
        cpu_cores,
        memory_mib,
        cpu_overcommit: 4.0,
        memory_overcommit: 1.0,
        labels: Default::default(),
        schedulable: true,
        phase: NodePhase::Ready,
        usage: None,
    }
}

pub fn vm(i: usize, on: Option<usize>, cpu_cores: u32, memory_mib: u64) -> VmSnapshot {
    VmSnapshot {
        id: vm_id(i),
        name: format!("vm-{i}"),
        node: on.map(node_id),
        cpu_cores,
        memory_mib,
        running: true,
        usage: None,
        ha: HaPolicy::default(),
        placement: PlacementPolicy::default(),
    }
}

pub fn with_usage(mut v: VmSnapshot, cpu_percent: f64, memory_used_mib: u64) -> VmSnapshot {
    v.usage = Some(VmUsageSample {
        cpu_percent,
        memory_used_mib,
    });
    v
}

pub fn snapshot(nodes: Vec<NodeSnapshot>, vms: Vec<VmSnapshot>) -> ClusterSnapshot {
    ClusterSnapshot { nodes, vms }
}

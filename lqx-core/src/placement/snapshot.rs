//! The pure input every planner shares (placement, DRS, HA failover): nodes and VMs as they
//! are at one moment, with capacity, constraints and (optionally) measured usage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{HaPolicy, NodeId, NodePhase, PlacementPolicy, VmId};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    pub nodes: Vec<NodeSnapshot>,
    pub vms: Vec<VmSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub id: NodeId,
    pub name: String,
    /// Allocatable physical cores.
    pub cpu_cores: u32,
    /// Allocatable memory.
    pub memory_mib: u64,
    /// Allocated vCPUs may reach `cpu_cores * cpu_overcommit`.
    pub cpu_overcommit: f64,
    /// Allocated memory may reach `memory_mib * memory_overcommit`.
    pub memory_overcommit: f64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub schedulable: bool,
    pub phase: NodePhase,
    /// Measured (smoothed) usage of the whole node; None: the sum of its VMs' usage.
    #[serde(default)]
    pub usage: Option<NodeUsageSample>,
}

/// Measured use of a node: CPU as a percentage of its cores, memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeUsageSample {
    pub cpu_percent: f64,
    pub memory_used_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSnapshot {
    pub id: VmId,
    pub name: String,
    /// The node the VM is assigned to (it counts against that node's allocation).
    pub node: Option<NodeId>,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    /// Only running VMs load their node and are live-migrated for balance.
    pub running: bool,
    /// Measured (smoothed) usage; None: fully used (every vCPU busy, all memory touched).
    #[serde(default)]
    pub usage: Option<VmUsageSample>,
    #[serde(default)]
    pub ha: HaPolicy,
    #[serde(default)]
    pub placement: PlacementPolicy,
}

/// Measured use of a VM: CPU as a percentage of its vCPUs, memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VmUsageSample {
    pub cpu_percent: f64,
    pub memory_used_mib: u64,
}

impl NodeSnapshot {
    /// vCPUs that may be allocated here, overcommit included.
    pub fn cpu_limit(&self) -> f64 {
        self.cpu_cores as f64 * self.cpu_overcommit
    }
    /// MiB that may be allocated here, overcommit included.
    pub fn memory_limit_mib(&self) -> f64 {
        self.memory_mib as f64 * self.memory_overcommit
    }
    /// Ready and schedulable: new VMs (and migrations) may land here.
    pub fn accepts_vms(&self) -> bool {
        self.phase == NodePhase::Ready && self.schedulable
    }
    /// Maintenance or draining: every VM must leave.
    pub fn is_evacuating(&self) -> bool {
        matches!(self.phase, NodePhase::Maintenance | NodePhase::Draining)
    }
}

impl VmSnapshot {
    /// CPU load in cores (0 when stopped).
    pub fn cpu_load(&self) -> f64 {
        if !self.running {
            return 0.0;
        }
        let pct = self.usage.map_or(100.0, |u| u.cpu_percent.clamp(0.0, 100.0));
        self.cpu_cores as f64 * pct / 100.0
    }
    /// Memory load in MiB (0 when stopped).
    pub fn memory_load_mib(&self) -> f64 {
        if !self.running {
            return 0.0;
        }
        self.usage
            .map_or(self.memory_mib, |u| u.memory_used_mib.min(self.memory_mib)) as f64
    }
}

impl ClusterSnapshot {
    pub fn node(&self, id: NodeId) -> Option<&NodeSnapshot> {
        self.nodes.iter().find(|n| n.id == id)
    }
    pub fn vm(&self, id: VmId) -> Option<&VmSnapshot> {
        self.vms.iter().find(|v| v.id == id)
    }
    pub fn node_by_name(&self, name: &str) -> Option<&NodeSnapshot> {
        self.nodes.iter().find(|n| n.name == name)
    }
    pub fn vm_by_name(&self, name: &str) -> Option<&VmSnapshot> {
        self.vms.iter().find(|v| v.name == name)
    }
    /// Moves a VM to `node` (the effect of an applied migration or placement).
    /// Returns false when the VM is not in the snapshot.
    pub fn assign(&mut self, vm: VmId, node: NodeId) -> bool {
        match self.vms.iter_mut().find(|v| v.id == vm) {
            Some(v) => {
                v.node = Some(node);
                true
            }
            None => false,
        }
    }
}

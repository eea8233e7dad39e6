//! Hypervisor hosts. Capacity is physical; allocatable is what VMs may use; overcommit
//! ratios scale allocatable for admission (vCPUs are commonly overcommitted, memory rarely).

use super::{NodeId, validate};
use crate::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodePhase {
    #[default]
    Ready,
    NotReady,
    Maintenance,
    Draining,
}

impl NodePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            NodePhase::Ready => "READY",
            NodePhase::NotReady => "NOT_READY",
            NodePhase::Maintenance => "MAINTENANCE",
            NodePhase::Draining => "DRAINING",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "READY" => NodePhase::Ready,
            "NOT_READY" => NodePhase::NotReady,
            "MAINTENANCE" => NodePhase::Maintenance,
            "DRAINING" => NodePhase::Draining,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Resources {
    pub cpu_cores: u32,
    pub memory_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeUsage {
    pub cpu_percent: f64,
    pub memory_used_mib: u64,
    pub running_vms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub hostname: String,
    pub management_address: String,
    pub labels: BTreeMap<String, String>,
    pub capacity: Resources,
    pub allocatable: Resources,
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub phase: NodePhase,
    /// False when an operator disabled (cordoned) the node: no new VMs land here.
    pub schedulable: bool,
    pub libvirt_uri: String,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub usage: NodeUsage,
    pub resource_version: u64,
    pub created_at: DateTime<Utc>,
    /// The host's CPU model as its hypervisor (or agent) reported it, for the live-migration
    /// CPU check; kept so a restarted control plane knows it before the agent says it again.
    #[serde(default)]
    pub cpu_model: String,
    /// Power as lqx last set or saw it (records written before power control read as on).
    #[serde(default)]
    pub power: crate::power::PowerState,
}

pub const DEFAULT_CPU_OVERCOMMIT: f64 = 4.0;
pub const DEFAULT_MEMORY_OVERCOMMIT: f64 = 1.0;

impl Node {
    pub fn validate(&self) -> Result<()> {
        validate::name("name", &self.name)?;
        validate::labels("labels", &self.labels)?;
        validate::range("capacity.cpu_cores", self.capacity.cpu_cores, 1, 65_536, "")?;
        validate::range("capacity.memory_mib", self.capacity.memory_mib, 64, 1 << 40, " MiB")?;
        validate::range("cpu_overcommit", self.cpu_overcommit, 1.0, 64.0, "")?;
        validate::range("memory_overcommit", self.memory_overcommit, 1.0, 4.0, "")?;
        Ok(())
    }

    /// vCPUs that may be allocated here, overcommit included.
    pub fn cpu_limit(&self) -> u64 {
        (self.allocatable.cpu_cores as f64 * self.cpu_overcommit).floor() as u64
    }
    /// Memory that may be allocated here, overcommit included.
    pub fn memory_limit_mib(&self) -> u64 {
        (self.allocatable.memory_mib as f64 * self.memory_overcommit).floor() as u64
    }
}

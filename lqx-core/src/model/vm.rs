//! Virtual machines: what the user asked for (spec, desired state) and what is observed
//! (status). The resource version increments on every write and guards updates.

use super::{NodeId, ProjectId, VmId, validate};
use crate::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MIN_CPU: u32 = 1;
pub const MAX_CPU: u32 = 512;
pub const MIN_MEMORY_MIB: u64 = 64;
pub const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024; // 16 TiB
pub const MAX_DISKS: usize = 16;
pub const MAX_NICS: usize = 16;
pub const MAX_DISK_MIB: u64 = 64 * 1024 * 1024; // 64 TiB

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VmState {
    #[default]
    Pending,
    Stopped,
    Starting,
    Running,
    Stopping,
    Migrating,
    Paused,
    Failed,
    Unknown,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Pending => "PENDING",
            VmState::Stopped => "STOPPED",
            VmState::Starting => "STARTING",
            VmState::Running => "RUNNING",
            VmState::Stopping => "STOPPING",
            VmState::Migrating => "MIGRATING",
            VmState::Paused => "PAUSED",
            VmState::Failed => "FAILED",
            VmState::Unknown => "UNKNOWN",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "PENDING" => VmState::Pending,
            "STOPPED" => VmState::Stopped,
            "STARTING" => VmState::Starting,
            "RUNNING" => VmState::Running,
            "STOPPING" => VmState::Stopping,
            "MIGRATING" => VmState::Migrating,
            "PAUSED" => VmState::Paused,
            "FAILED" => VmState::Failed,
            "UNKNOWN" => VmState::Unknown,
            _ => return None,
        })
    }
    /// Whether the VM occupies a host's CPU and memory in this state.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            VmState::Starting | VmState::Running | VmState::Stopping | VmState::Migrating | VmState::Paused
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RestartPriority {
    Low,
    #[default]
    Medium,
    High,
    Highest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub name: String,
    pub size_mib: u64,
    #[serde(default)]
    pub pool: String,
    #[serde(default)]
    pub bus: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Nic {
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HaPolicy {
    pub enabled: bool,
    pub priority: RestartPriority,
    pub restart_delay_secs: u32,
    /// 0: the cluster default.
    pub max_restarts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlacementPolicy {
    pub required_nodes: Vec<NodeId>,
    pub excluded_nodes: Vec<NodeId>,
    pub anti_affinity_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    pub cpu_cores: u32,
    pub memory_mib: u64,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub ha: HaPolicy,
    pub placement: PlacementPolicy,
}

impl VmSpec {
    pub fn validate(&self) -> Result<()> {
        validate::range("spec.cpu_cores", self.cpu_cores, MIN_CPU, MAX_CPU, "")?;
        validate::range(
            "spec.memory_mib",
            self.memory_mib,
            MIN_MEMORY_MIB,
            MAX_MEMORY_MIB,
            " MiB",
        )?;
        if self.disks.len() > MAX_DISKS {
            return Err(crate::Error::invalid(
                "spec.disks",
                format!("at most {MAX_DISKS} disks"),
            ));
        }
        for (i, d) in self.disks.iter().enumerate() {
            validate::range(
                &format!("spec.disks[{i}].size_mib"),
                d.size_mib,
                1,
                MAX_DISK_MIB,
                " MiB",
            )?;
            if !d.name.is_empty() {
                validate::name(&format!("spec.disks[{i}].name"), &d.name)?;
            }
            if !matches!(d.bus.as_str(), "" | "virtio" | "sata" | "scsi") {
                return Err(crate::Error::invalid(
                    &format!("spec.disks[{i}].bus"),
                    "must be virtio, sata or scsi",
                ));
            }
        }
        if self.nics.len() > MAX_NICS {
            return Err(crate::Error::invalid("spec.nics", format!("at most {MAX_NICS} NICs")));
        }
        for (i, n) in self.nics.iter().enumerate() {
            // Like disk buses: an unknown model is refused, never silently run as virtio.
            if !matches!(n.model.as_str(), "" | "virtio" | "e1000" | "rtl8139") {
                return Err(crate::Error::invalid(
                    &format!("spec.nics[{i}].model"),
                    "must be virtio, e1000 or rtl8139",
                ));
            }
            if !n.mac.is_empty() && !is_mac(&n.mac) {
                return Err(crate::Error::invalid(
                    &format!("spec.nics[{i}].mac"),
                    format!("{:?} is not a MAC address", n.mac),
                ));
            }
        }
        if let Some(g) = &self.placement.anti_affinity_group {
            validate::name("spec.placement.anti_affinity_group", g)?;
        }
        if let Some(n) = self
            .placement
            .required_nodes
            .iter()
            .find(|n| self.placement.excluded_nodes.contains(n))
        {
            return Err(crate::Error::invalid(
                "spec.placement",
                format!("node {n} is both required and excluded"),
            ));
        }
        Ok(())
    }
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<_> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VmStatus {
    pub state: VmState,
    pub node_id: Option<NodeId>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub message: String,
    pub cpu_usage_percent: f64,
    pub memory_used_mib: u64,
    pub restart_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub id: VmId,
    pub name: String,
    pub project_id: ProjectId,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub spec: VmSpec,
    pub desired_state: VmState,
    pub status: VmStatus,
    pub resource_version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Vm {
    /// Validates everything a client can set.
    pub fn validate(&self) -> Result<()> {
        validate::name("name", &self.name)?;
        validate::description("description", &self.description)?;
        validate::labels("labels", &self.labels)?;
        self.spec.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            cpu_cores: 2,
            memory_mib: 2048,
            disks: vec![Disk {
                name: "root".into(),
                size_mib: 10240,
                pool: String::new(),
                bus: String::new(),
            }],
            nics: vec![Nic::default()],
            ha: HaPolicy::default(),
            placement: PlacementPolicy::default(),
        }
    }

    #[test]
    fn spec_bounds_name_the_field() {
        spec().validate().unwrap();
        for (s, field) in [
            (VmSpec { cpu_cores: 0, ..spec() }, "spec.cpu_cores"),
            (
                VmSpec {
                    cpu_cores: 513,
                    ..spec()
                },
                "spec.cpu_cores",
            ),
            (
                VmSpec {
                    memory_mib: 63,
                    ..spec()
                },
                "spec.memory_mib",
            ),
            (
                VmSpec {
                    memory_mib: MAX_MEMORY_MIB + 1,
                    ..spec()
                },
                "spec.memory_mib",
            ),
        ] {
            let e = s.validate().unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
            assert!(e.message.starts_with(field), "{}", e.message);
        }
        let mut s = spec();
        s.nics[0].mac = "zz".into();
        assert!(s.validate().unwrap_err().message.starts_with("spec.nics[0].mac"));
        let n = NodeId::new();
        s = spec();
        s.placement.required_nodes = vec![n];
        s.placement.excluded_nodes = vec![n];
        assert!(s.validate().is_err());
    }

    #[test]
    fn state_round_trip() {
        for s in [VmState::Pending, VmState::Running, VmState::Stopped, VmState::Migrating] {
            assert_eq!(VmState::parse(s.as_str()), Some(s));
        }
        assert_eq!(VmState::parse("running"), Some(VmState::Running));
        assert_eq!(VmState::parse("nope"), None);
    }
}

//! `limiquantix.compute.v1` (VMService, NodeService) <-> the VM and node model.

use super::{labels_out, opt_timestamp, timestamp};
use crate::api::compute::v1 as pb;
use crate::model::{self, NodeId};
use crate::{Error, Result};

pub fn vm_state_out(s: model::VmState) -> pb::VmState {
    use model::VmState as M;
    match s {
        M::Pending => pb::VmState::Pending,
        M::Stopped => pb::VmState::Stopped,
        M::Starting => pb::VmState::Starting,
        M::Running => pb::VmState::Running,
        M::Stopping => pb::VmState::Stopping,
        M::Migrating => pb::VmState::Migrating,
        M::Paused => pb::VmState::Paused,
        M::Failed => pb::VmState::Failed,
        M::Unknown => pb::VmState::Unknown,
    }
}

/// None for UNSPECIFIED (no filter); an error for a number outside the enum.
pub fn vm_state_in(field: &str, v: i32) -> Result<Option<model::VmState>> {
    use model::VmState as M;
    let s = pb::VmState::try_from(v).map_err(|_| Error::invalid(field, format!("unknown VM state {v}")))?;
    Ok(match s {
        pb::VmState::Unspecified => None,
        pb::VmState::Pending => Some(M::Pending),
        pb::VmState::Stopped => Some(M::Stopped),
        pb::VmState::Starting => Some(M::Starting),
        pb::VmState::Running => Some(M::Running),
        pb::VmState::Stopping => Some(M::Stopping),
        pb::VmState::Migrating => Some(M::Migrating),
        pb::VmState::Paused => Some(M::Paused),
        pb::VmState::Failed => Some(M::Failed),
        pb::VmState::Unknown => Some(M::Unknown),
    })
}

pub fn node_phase_out(p: model::NodePhase) -> pb::NodePhase {
    match p {
        model::NodePhase::Ready => pb::NodePhase::Ready,
        model::NodePhase::NotReady => pb::NodePhase::NotReady,
        model::NodePhase::Maintenance => pb::NodePhase::Maintenance,
        model::NodePhase::Draining => pb::NodePhase::Draining,
    }
}

pub fn node_phase_in(field: &str, v: i32) -> Result<Option<model::NodePhase>> {
    let p = pb::NodePhase::try_from(v).map_err(|_| Error::invalid(field, format!("unknown node phase {v}")))?;
    Ok(match p {
        pb::NodePhase::Unspecified => None,
        pb::NodePhase::Ready => Some(model::NodePhase::Ready),
        pb::NodePhase::NotReady => Some(model::NodePhase::NotReady),
        pb::NodePhase::Maintenance => Some(model::NodePhase::Maintenance),
        pb::NodePhase::Draining => Some(model::NodePhase::Draining),
    })
}

fn priority_out(p: model::RestartPriority) -> pb::HaRestartPriority {
    match p {
        model::RestartPriority::Low => pb::HaRestartPriority::Low,
        model::RestartPriority::Medium => pb::HaRestartPriority::Medium,
        model::RestartPriority::High => pb::HaRestartPriority::High,
        model::RestartPriority::Highest => pb::HaRestartPriority::Highest,
    }
}

fn priority_in(v: i32) -> Result<model::RestartPriority> {
    let p = pb::HaRestartPriority::try_from(v)
        .map_err(|_| Error::invalid("spec.ha.priority", format!("unknown priority {v}")))?;
    Ok(match p {
        pb::HaRestartPriority::Unspecified | pb::HaRestartPriority::Medium => model::RestartPriority::Medium,
        pb::HaRestartPriority::Low => model::RestartPriority::Low,
        pb::HaRestartPriority::High => model::RestartPriority::High,
        pb::HaRestartPriority::Highest => model::RestartPriority::Highest,
    })
}

pub fn ha_in(h: &pb::HaPolicy) -> Result<model::HaPolicy> {
    Ok(model::HaPolicy {
        enabled: h.enabled,
        priority: priority_in(h.priority)?,
        restart_delay_secs: h.restart_delay_seconds,
        max_restarts: h.max_restarts,
    })
}

/// Placement constraints name nodes by name or id; `resolve` maps one to a node id.
pub fn placement_in(
    p: &pb::PlacementPolicy,
    resolve: &dyn Fn(&str) -> Option<NodeId>,
) -> Result<model::PlacementPolicy> {
    let nodes = |field: &str, v: &[String]| -> Result<Vec<NodeId>> {
        v.iter()
            .map(|n| resolve(n).ok_or_else(|| Error::invalid(field, format!("unknown node {n:?}"))))
            .collect()
    };
    Ok(model::PlacementPolicy {
        required_nodes: nodes("spec.placement.required_nodes", &p.required_nodes)?,
        excluded_nodes: nodes("spec.placement.excluded_nodes", &p.excluded_nodes)?,
        anti_affinity_group: (!p.anti_affinity_group.is_empty()).then(|| p.anti_affinity_group.clone()),
    })
}

/// A VmSpec from the wire. Sizes are checked by [`model::VmSpec::validate`].
pub fn vm_spec_in(s: Option<&pb::VmSpec>, resolve: &dyn Fn(&str) -> Option<NodeId>) -> Result<model::VmSpec> {
    let s = s.ok_or_else(|| Error::invalid("spec", "is required"))?;
    Ok(model::VmSpec {
        cpu_cores: s.cpu_cores,
        memory_mib: s.memory_mib,
        disks: s
            .disks
            .iter()
            .map(|d| model::Disk {
                name: d.name.clone(),
                size_mib: d.size_mib,
                pool: d.pool.clone(),
                bus: d.bus.clone(),
            })
            .collect(),
        nics: s
            .nics
            .iter()
            .map(|n| model::Nic {
                network: n.network.clone(),
                mac: n.mac.clone(),
                model: n.model.clone(),
            })
            .collect(),
        ha: s.ha.as_ref().map(ha_in).transpose()?.unwrap_or_default(),
        placement: s
            .placement
            .as_ref()
            .map(|p| placement_in(p, resolve))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// `names` maps node ids to names for display.
pub fn vm_out(v: &model::Vm, names: &dyn Fn(NodeId) -> String) -> pb::Vm {
    pb::Vm {
        id: v.id.to_string(),
        name: v.name.clone(),
        project_id: v.project_id.to_string(),
        description: v.description.clone(),
        labels: labels_out(&v.labels),
        spec: Some(pb::VmSpec {
            cpu_cores: v.spec.cpu_cores,
            memory_mib: v.spec.memory_mib,
            disks: v
                .spec
                .disks
                .iter()
                .map(|d| pb::Disk {
                    name: d.name.clone(),
                    size_mib: d.size_mib,
                    pool: d.pool.clone(),
                    bus: d.bus.clone(),
                })
                .collect(),
            nics: v
                .spec
                .nics
                .iter()
                .map(|n| pb::Nic {
                    network: n.network.clone(),
                    mac: n.mac.clone(),
                    model: n.model.clone(),
                })
                .collect(),
            ha: Some(pb::HaPolicy {
                enabled: v.spec.ha.enabled,
                priority: priority_out(v.spec.ha.priority) as i32,
                restart_delay_seconds: v.spec.ha.restart_delay_secs,
                max_restarts: v.spec.ha.max_restarts,
            }),
            placement: Some(pb::PlacementPolicy {
                required_nodes: v.spec.placement.required_nodes.iter().map(|n| names(*n)).collect(),
                excluded_nodes: v.spec.placement.excluded_nodes.iter().map(|n| names(*n)).collect(),
                anti_affinity_group: v.spec.placement.anti_affinity_group.clone().unwrap_or_default(),
            }),
        }),
        status: Some(pb::VmStatus {
            state: vm_state_out(v.status.state) as i32,
            node_id: v.status.node_id.map(|n| n.to_string()).unwrap_or_default(),
            node_name: v.status.node_id.map(names).unwrap_or_default(),
            started_at: opt_timestamp(v.status.started_at),
            stopped_at: opt_timestamp(v.status.stopped_at),
            message: v.status.message.clone(),
            cpu_usage_percent: v.status.cpu_usage_percent,
            memory_used_mib: v.status.memory_used_mib,
            restart_count: v.status.restart_count,
            // Filled in by the VM service while a migration runs (it lives in memory).
            migration: None,
        }),
        desired_state: vm_state_out(v.desired_state) as i32,
        resource_version: v.resource_version,
        created_at: Some(timestamp(v.created_at)),
        updated_at: Some(timestamp(v.updated_at)),
    }
}

/// `allocated`: the sum of the specs of the VMs on the node; `health`: the HA view.
pub fn node_out(n: &model::Node, allocated: model::Resources, health: &str) -> pb::Node {
    let res = |r: model::Resources| pb::Resources {
        cpu_cores: r.cpu_cores,
        memory_mib: r.memory_mib,
    };
    pb::Node {
        id: n.id.to_string(),
        name: n.name.clone(),
        hostname: n.hostname.clone(),
        management_address: n.management_address.clone(),
        labels: labels_out(&n.labels),
        capacity: Some(res(n.capacity)),
        allocatable: Some(res(n.allocatable)),
        cpu_overcommit: n.cpu_overcommit,
        memory_overcommit: n.memory_overcommit,
        allocated: Some(res(allocated)),
        phase: node_phase_out(n.phase) as i32,
        schedulable: n.schedulable,
        last_heartbeat: opt_timestamp(n.last_heartbeat),
        usage: Some(pb::NodeUsage {
            cpu_percent: n.usage.cpu_percent,
            memory_used_mib: n.usage.memory_used_mib,
            running_vms: n.usage.running_vms,
        }),
        libvirt_uri: n.libvirt_uri.clone(),
        health: health.to_string(),
        resource_version: n.resource_version,
        created_at: Some(timestamp(n.created_at)),
        fencing: String::new(),
        fencing_level: String::new(),
        power_state: n.power.as_str().to_string(),
    }
}

// Views of the control plane's compute (server-only types).
#[cfg(feature = "server")]
impl crate::compute::NodeView {
    /// The record's fields, then the heartbeat and fencing status last reported.
    pub fn to_proto(&self) -> pb::Node {
        let mut out = node_out(&self.node, self.allocated, &self.health);
        out.last_heartbeat = opt_timestamp(self.last_heartbeat);
        if let Some(f) = &self.fencing {
            out.fencing = f.text();
            out.fencing_level = f.level.as_str().into();
        }
        out
    }
}

#[cfg(feature = "server")]
impl crate::compute::MigrationView {
    pub fn to_proto(&self) -> pb::VmMigration {
        pb::VmMigration {
            target_node: self.target_node.clone(),
            live: self.live,
            processed_bytes: self.progress.processed_bytes,
            total_bytes: self.progress.total_bytes,
            remaining_bytes: self.progress.remaining_bytes,
        }
    }
}

#[cfg(feature = "server")]
impl crate::compute::MigrateOutcome {
    /// The answer to a migration that ended: the VM as it is now, and both nodes by name.
    pub fn to_proto(&self, names: &dyn Fn(NodeId) -> String) -> pb::MigrateVmResponse {
        pb::MigrateVmResponse {
            vm: Some(vm_out(&self.vm, names)),
            migration_id: uuid::Uuid::now_v7().to_string(),
            source_node: names(self.source),
            target_node: names(self.target),
            live: self.live,
        }
    }
}

/// The updatable fields of a VM (UpdateVM's mask paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmField {
    Description,
    Labels,
    CpuCores,
    MemoryMib,
    Ha,
    Placement,
}

/// The mask path of each field, the one place they are spelled.
pub const VM_FIELDS: [(&str, VmField); 6] = [
    ("description", VmField::Description),
    ("labels", VmField::Labels),
    ("spec.cpu_cores", VmField::CpuCores),
    ("spec.memory_mib", VmField::MemoryMib),
    ("spec.ha", VmField::Ha),
    ("spec.placement", VmField::Placement),
];

impl VmField {
    /// The field's mask path (snake_case).
    pub fn path(self) -> &'static str {
        VM_FIELDS.iter().find(|(_, f)| *f == self).map_or("", |(p, _)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_reject_unknown_numbers() {
        assert!(vm_state_in("state", 99).unwrap_err().message.starts_with("state:"));
        assert_eq!(vm_state_in("state", 0).unwrap(), None);
        assert_eq!(
            vm_state_in("state", pb::VmState::Running as i32).unwrap(),
            Some(model::VmState::Running)
        );
        assert!(node_phase_in("phase", -1).is_err());
    }

    #[test]
    fn spec_requires_presence_and_known_nodes() {
        let none = |_: &str| None;
        assert!(vm_spec_in(None, &none).unwrap_err().message.starts_with("spec:"));
        let s = pb::VmSpec {
            cpu_cores: 1,
            memory_mib: 128,
            placement: Some(pb::PlacementPolicy {
                required_nodes: vec!["ghost".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = vm_spec_in(Some(&s), &none).unwrap_err();
        assert!(
            e.message.contains("required_nodes") && e.message.contains("ghost"),
            "{}",
            e.message
        );
    }

    /// A node view shows the heartbeat and fencing status last reported over the record's.
    #[cfg(feature = "server")]
    #[test]
    fn node_view_overlays_the_last_report() {
        use crate::fence::{Fencing, FencingLevel};
        let at = |s| chrono::DateTime::from_timestamp(s, 500).unwrap();
        let node = model::Node {
            id: NodeId::new(),
            name: "n1".into(),
            hostname: "n1.example".into(),
            management_address: String::new(),
            labels: Default::default(),
            capacity: model::Resources {
                cpu_cores: 8,
                memory_mib: 16384,
            },
            allocatable: model::Resources {
                cpu_cores: 8,
                memory_mib: 16384,
            },
            cpu_overcommit: 1.0,
            memory_overcommit: 1.0,
            phase: model::NodePhase::Ready,
            schedulable: true,
            libvirt_uri: String::new(),
            last_heartbeat: Some(at(100)),
            usage: Default::default(),
            resource_version: 3,
            created_at: at(1),
            cpu_model: String::new(),
            power: Default::default(),
        };
        let allocated = model::Resources {
            cpu_cores: 2,
            memory_mib: 1024,
        };
        let mut view = crate::compute::NodeView {
            node: node.clone(),
            allocated,
            health: "HEALTHY".into(),
            last_heartbeat: Some(at(160)),
            fencing: Some(Fencing::new(FencingLevel::FenceProcess, "fence process")),
        };
        let out = view.to_proto();
        assert_eq!(out.last_heartbeat, Some(timestamp(at(160))));
        assert_eq!(out.fencing, "degraded: fence process");
        assert_eq!(out.fencing_level, "fence-process");
        assert_eq!(out.health, "HEALTHY");
        assert_eq!(out.allocated.map(|r| r.cpu_cores), Some(2));
        // Without a report: the record's fields as they are.
        view.fencing = None;
        view.last_heartbeat = node.last_heartbeat;
        assert_eq!(view.to_proto(), node_out(&node, allocated, "HEALTHY"));
    }

    #[cfg(feature = "server")]
    #[test]
    fn migration_view_carries_target_and_progress() {
        let view = crate::compute::MigrationView {
            target_node: "dst".into(),
            live: true,
            progress: crate::driver::MigrationProgress {
                processed_bytes: 10,
                total_bytes: 40,
                remaining_bytes: 30,
            },
        };
        assert_eq!(
            view.to_proto(),
            pb::VmMigration {
                target_node: "dst".into(),
                live: true,
                processed_bytes: 10,
                total_bytes: 40,
                remaining_bytes: 30,
            }
        );
    }
}

//! `limiquantix.ha.v1` (HAService) <-> the HA model.

use crate::api::ha::v1 as pb;
use crate::ha::{HaConfig, NodeHealth};

pub fn health_out(h: NodeHealth) -> pb::NodeHealth {
    match h {
        NodeHealth::Healthy => pb::NodeHealth::Healthy,
        NodeHealth::Unknown => pb::NodeHealth::Unknown,
        NodeHealth::Unreachable => pb::NodeHealth::Unreachable,
        NodeHealth::Failed => pb::NodeHealth::Failed,
    }
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

pub fn config_out(c: &HaConfig) -> pb::HaConfig {
    pb::HaConfig {
        enabled: c.enabled,
        check_interval_seconds: secs(c.check_interval),
        heartbeat_timeout_seconds: secs(c.heartbeat_timeout),
        failure_threshold: c.failure_threshold,
        lease_ttl_seconds: secs(c.lease_ttl),
        self_fence_after_seconds: secs(c.self_fence_after),
        admission_control: c.admission_control,
        storm_threshold: c.storm_threshold,
    }
}

#[cfg(feature = "server")]
pub use server::*;

#[cfg(feature = "server")]
mod server {
    use super::{config_out, health_out, pb};
    use crate::api::convert::opt_timestamp;
    use crate::ha::HaConfig;
    use crate::ha::manager::{FailoverOutcome, HaStatusReport};
    use crate::model::NodeId;

    pub fn status_out(c: &HaConfig, s: &HaStatusReport) -> pb::HaStatus {
        pb::HaStatus {
            config: Some(config_out(c)),
            nodes: s
                .nodes
                .iter()
                .map(|n| pb::NodeHaStatus {
                    node_id: n.node.to_string(),
                    node_name: n.name.clone(),
                    health: health_out(n.health) as i32,
                    missed_checks: n.missed_checks,
                    lease_age_seconds: n.lease_age_ms.map_or(0.0, |ms| ms as f64 / 1000.0),
                    protected_vms: n.protected_vms,
                    fenced: n.fenced,
                    fencing: n.fencing.as_ref().map(|f| f.text()).unwrap_or_default(),
                    fencing_level: n.fencing.as_ref().map(|f| f.level.as_str().into()).unwrap_or_default(),
                })
                .collect(),
            protected_vms: s.protected_vms,
            cluster_protected: s.cluster_protected,
            failover_paused: s.failover_paused.is_some(),
            paused_reason: s.failover_paused.clone().unwrap_or_default(),
            leader: s.leader.clone(),
            leader_epoch: s.leader_epoch,
            last_check: opt_timestamp(s.last_check),
            degraded_fencing_vms: s.degraded_fencing_vms(),
            agent_fence_only_vms: s
                .weakly_fenced
                .iter()
                .map(|w| pb::WeaklyFencedVm {
                    vm_id: w.vm.to_string(),
                    vm_name: w.vm_name.clone(),
                    node_name: w.node_name.clone(),
                    fencing_level: w.level.as_str().into(),
                })
                .collect(),
        }
    }

    /// `name`: a node's name for display.
    pub fn failover_out(out: &FailoverOutcome, name: &dyn Fn(&NodeId) -> String) -> pb::ManualFailoverResponse {
        pb::ManualFailoverResponse {
            placements: out
                .placements
                .iter()
                .map(|p| pb::Placement {
                    vm_id: p.vm.to_string(),
                    vm_name: p.vm_name.clone(),
                    from_node: name(&p.from),
                    to_node: name(&p.to),
                })
                .collect(),
            unplaced: out
                .unplaced
                .iter()
                .map(|u| pb::Unplaced {
                    vm_id: u.vm.to_string(),
                    vm_name: u.vm_name.clone(),
                    reason: u.reason.clone(),
                })
                .collect(),
        }
    }
}

//! limiquantix.ha.v1.HAService: decode, call the HA manager (lqx-core `ha::manager`),
//! encode.

use super::{request_id, st};
use lqx_core::api::convert::opt_timestamp;
use lqx_core::api::ha::v1::{self as pb, ha_service_server::HaService};
use lqx_core::ha::NodeHealth;
use lqx_core::ha::manager::{HaManager, HaStatusReport};
use tonic::{Request, Response, Status};

pub struct HaApi {
    pub manager: HaManager,
}

/// Starts the HA manager (leader-only work) with the agents' heartbeats hooked in (the
/// agent service holds it for the heartbeat gate).
pub fn start(
    config: &crate::config::Config,
    compute: &lqx_core::compute::Compute,
    leader: &lqx_core::leader::LeaderHandle,
    agents: &lqx_core::compute::agents::Agents,
    alerts: &lqx_core::alert::service::Alerts,
    tasks: &lqx_core::background::BackgroundTasks,
) -> anyhow::Result<HaManager> {
    let ha = &config.ha;
    // A leader handover must finish before agents fence themselves for want of a renewal.
    let handover = config.leader.lease_ttl + config.leader.renew_interval() + ha.heartbeat_interval * 2;
    if handover >= ha.self_fence_after {
        tracing::warn!(
            handover = ?handover,
            self_fence_after = ?ha.self_fence_after,
            "leader.lease_ttl is long against ha.self_fence_after: a leader change may make agents fence their HA VMs"
        );
    }
    if config
        .nodes
        .iter()
        .any(|n| !n.uri.starts_with(lqx_core::driver::sim::SCHEME) && !n.uri.starts_with("test://"))
        && ha.enabled
    {
        tracing::warn!(
            "in-process libvirt hosts have no agent to fence them: HA treats their lease expiry as fenced; \
             run `lqx-server agent` on hosts whose VMs must never run twice"
        );
    }
    let manager = HaManager::start_in(
        compute.clone(),
        lqx_core::ha::manager::HaManagerOptions {
            config: ha.clone(),
            leader: leader.clone(),
            agents: Some(agents.clone()),
            alerts: std::sync::Arc::new(alerts.clone()),
        },
        Some(tasks),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(manager)
}

fn health_out(h: NodeHealth) -> pb::NodeHealth {
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

fn status_out(m: &HaManager, s: &HaStatusReport) -> pb::HaStatus {
    let c = m.config();
    pb::HaStatus {
        config: Some(pb::HaConfig {
            enabled: c.enabled,
            check_interval_seconds: secs(c.check_interval),
            heartbeat_timeout_seconds: secs(c.heartbeat_timeout),
            failure_threshold: c.failure_threshold,
            lease_ttl_seconds: secs(c.lease_ttl),
            self_fence_after_seconds: secs(c.self_fence_after),
            admission_control: c.admission_control,
            storm_threshold: c.storm_threshold,
        }),
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

#[tonic::async_trait]
impl HaService for HaApi {
    async fn get_ha_status(&self, _req: Request<pb::GetHaStatusRequest>) -> Result<Response<pb::HaStatus>, Status> {
        let s = self.manager.status().await.map_err(st)?;
        Ok(Response::new(status_out(&self.manager, &s)))
    }

    async fn manual_failover(
        &self,
        req: Request<pb::ManualFailoverRequest>,
    ) -> Result<Response<pb::ManualFailoverResponse>, Status> {
        let r = req.into_inner();
        request_id(&r.request_id)?;
        if r.node.is_empty() {
            return Err(st(lqx_core::Error::invalid("node", "is required")));
        }
        let out = self
            .manager
            .manual_failover(&r.node, r.confirm_host_down)
            .await
            .map_err(st)?;
        let names = self.manager.node_names().await.map_err(st)?;
        let name = |id: &lqx_core::model::NodeId| names.get(id).cloned().unwrap_or_else(|| id.to_string());
        Ok(Response::new(pb::ManualFailoverResponse {
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
        }))
    }
}

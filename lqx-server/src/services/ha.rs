//! limiquantix.ha.v1.HAService: decode, call the HA manager (lqx-core `ha::manager`),
//! encode.

use super::{request_id, st};
use lqx_core::api::convert::ha::{failover_out, status_out};
use lqx_core::api::ha::v1::{self as pb, ha_service_server::HaService};
use lqx_core::ha::manager::HaManager;
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
    let libvirt_in_process = config
        .nodes
        .iter()
        .any(|n| !n.uri.starts_with(lqx_core::driver::sim::SCHEME) && !n.uri.starts_with("test://"));
    for w in ha.warnings(
        config.leader.lease_ttl,
        config.leader.renew_interval(),
        libvirt_in_process,
    ) {
        tracing::warn!("{w}");
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

#[tonic::async_trait]
impl HaService for HaApi {
    async fn get_ha_status(&self, _req: Request<pb::GetHaStatusRequest>) -> Result<Response<pb::HaStatus>, Status> {
        let s = self.manager.status().await.map_err(st)?;
        Ok(Response::new(status_out(self.manager.config(), &s)))
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
        Ok(Response::new(failover_out(&out, &name)))
    }
}

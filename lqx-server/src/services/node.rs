//! limiquantix.compute.v1.NodeService

use super::{Stream, st};
use lqx_core::api::compute::v1::{self as pb, node_service_server::NodeService};
use lqx_core::api::convert;
use lqx_core::compute::{Compute, NodeFilter};
use lqx_core::model::Node;
use lqx_core::{Error, Result};
use tonic::{Request, Response, Status};

pub struct NodeApi {
    pub compute: Compute,
    pub power: std::sync::Arc<lqx_core::power::hosts::HostPower>,
}

impl NodeApi {
    async fn out(&self, nodes: &[Node]) -> Result<Vec<pb::Node>> {
        let alloc = self.compute.allocations().await?;
        Ok(nodes
            .iter()
            .map(|n| {
                self.compute
                    .node_view(n, alloc.get(&n.id).copied().unwrap_or_default())
                    .to_proto()
            })
            .collect())
    }

    async fn one(&self, n: Node) -> Result<Response<pb::Node>, Status> {
        let mut v = self.out(std::slice::from_ref(&n)).await.map_err(st)?;
        Ok(Response::new(v.remove(0)))
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn get_node(&self, req: Request<pb::GetNodeRequest>) -> Result<Response<pb::Node>, Status> {
        let n = self.compute.get_node(&req.into_inner().id).await.map_err(st)?;
        self.one(n).await
    }

    async fn list_nodes(&self, req: Request<pb::ListNodesRequest>) -> Result<Response<pb::ListNodesResponse>, Status> {
        let r = req.into_inner();
        let filter = NodeFilter {
            phase: convert::compute::node_phase_in("phase", r.phase).map_err(st)?,
            labels: convert::labels_in(&r.labels),
        };
        let page = self
            .compute
            .list_nodes(&filter, r.page_size, &r.page_token)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListNodesResponse {
            nodes: self.out(&page.nodes).await.map_err(st)?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn enable_node(&self, req: Request<pb::NodeRequest>) -> Result<Response<pb::Node>, Status> {
        super::auth::note(&req).resource("node", &req.get_ref().id);
        let n = self.compute.enable_node(&req.into_inner().id).await.map_err(st)?;
        self.one(n).await
    }

    async fn disable_node(&self, req: Request<pb::NodeRequest>) -> Result<Response<pb::Node>, Status> {
        super::auth::note(&req).resource("node", &req.get_ref().id);
        let n = self.compute.disable_node(&req.into_inner().id).await.map_err(st)?;
        self.one(n).await
    }

    async fn enter_maintenance(&self, req: Request<pb::EnterMaintenanceRequest>) -> Result<Response<pb::Node>, Status> {
        super::auth::note(&req).resource("node", &req.get_ref().id);
        let r = req.into_inner();
        let n = self.compute.enter_maintenance(&r.id, r.evacuate).await.map_err(st)?;
        self.one(n).await
    }

    async fn exit_maintenance(&self, req: Request<pb::NodeRequest>) -> Result<Response<pb::Node>, Status> {
        super::auth::note(&req).resource("node", &req.get_ref().id);
        let n = self.compute.exit_maintenance(&req.into_inner().id).await.map_err(st)?;
        self.one(n).await
    }

    async fn create_join_token(
        &self,
        req: Request<pb::CreateJoinTokenRequest>,
    ) -> Result<Response<pb::CreateJoinTokenResponse>, Status> {
        let r = req.into_inner();
        let (token, expires) = self
            .compute
            .create_join_token(r.ttl_seconds, &r.node_name)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::CreateJoinTokenResponse {
            token,
            expires_at: Some(convert::timestamp(expires)),
        }))
    }

    async fn delete_node(
        &self,
        req: Request<pb::DeleteNodeRequest>,
    ) -> Result<Response<pb::DeleteNodeResponse>, Status> {
        let audit = super::auth::note(&req);
        let r = req.into_inner();
        audit.resource("node", &r.id);
        if r.id.is_empty() {
            return Err(st(Error::invalid("id", "is required")));
        }
        let id = self.compute.delete_node(&r.id, r.force).await.map_err(st)?;
        audit.resource("node", id);
        Ok(Response::new(pb::DeleteNodeResponse { id: id.to_string() }))
    }

    async fn power_on_node(&self, req: Request<pb::NodeRequest>) -> Result<Response<pb::Node>, Status> {
        super::auth::note(&req).resource("node", &req.get_ref().id);
        let n = self.power.power_on_node(&req.into_inner().id).await.map_err(st)?;
        self.one(n).await
    }

    async fn power_off_node(&self, req: Request<pb::PowerOffNodeRequest>) -> Result<Response<pb::Node>, Status> {
        super::auth::note(&req).resource("node", &req.get_ref().id);
        let r = req.into_inner();
        let n = self.power.power_off_node(&r.id, r.force).await.map_err(st)?;
        self.one(n).await
    }

    async fn get_node_power(&self, req: Request<pb::GetNodeRequest>) -> Result<Response<pb::NodePowerStatus>, Status> {
        let s = self.power.status_of(&req.into_inner().id).await.map_err(st)?;
        let node = self.one(s.node).await?.into_inner();
        Ok(Response::new(pb::NodePowerStatus {
            node: Some(node),
            controller: s.controller.map(|k| k.as_str().to_string()).unwrap_or_default(),
            bmc_power_state: s.bmc.map(|p| p.as_str().to_string()).unwrap_or_default(),
            bmc_error: s.bmc_error.unwrap_or_default(),
        }))
    }

    type WatchNodeStream = Stream<pb::NodeEvent>;
    async fn watch_node(&self, req: Request<pb::WatchNodeRequest>) -> Result<Response<Self::WatchNodeStream>, Status> {
        crate::watch::watch_node(&self.compute, req.into_inner()).await
    }

    type WatchNodesStream = Stream<pb::NodeEvent>;
    async fn watch_nodes(
        &self,
        req: Request<pb::WatchNodesRequest>,
    ) -> Result<Response<Self::WatchNodesStream>, Status> {
        crate::watch::watch_nodes(&self.compute, req.into_inner()).await
    }
}

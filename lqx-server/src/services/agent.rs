//! limiquantix.node.v1.AgentService: the node agents' channel. Register is public (the join
//! token is the guard); Heartbeat is authenticated here by the node
//! credential in `authorization: Bearer`, which can act only for its own node. The logic is in
//! `lqx_core::compute::agents`.

use super::st;
use lqx_core::api::node::v1::{self as pb, agent_service_server::AgentService};
use lqx_core::compute::agents::Agents;
use tonic::{Request, Response, Status};

pub struct AgentApi {
    pub agents: Agents,
    /// Agent heartbeats are answered only by the HA leader: elsewhere they get Unavailable
    /// and the agent retries (a lease granted by a replica that does not lead would hide the
    /// node from the leader).
    pub ha: lqx_core::ha::manager::HaManager,
}

/// The bearer credential of a request (never logged).
fn credential<T>(req: &Request<T>) -> Result<String, Status> {
    let v = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Status::unauthenticated("missing node credential (authorization: Bearer ...)"))?;
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or_else(|| Status::unauthenticated("the authorization header must be a Bearer credential"))?;
    Ok(token.trim().to_string())
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = self.agents.register(req.into_inner()).await.map_err(st)?;
        Ok(Response::new(r))
    }

    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let cred = credential(&req)?;
        if let Err(mut refused) = self.ha.heartbeat_gate().map_err(st) {
            // Not the leader: say where it is, so the agent switches within this heartbeat.
            if let Ok(Some(url)) = self.agents.leader_url().await
                && let Ok(v) = url.parse()
            {
                refused.metadata_mut().insert(lqx_core::handover::LEADER_URL_HEADER, v);
            }
            return Err(refused);
        }
        let r = self.agents.heartbeat(&cred, req.into_inner()).await.map_err(st)?;
        Ok(Response::new(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_bearer_header() {
        let mut r = Request::new(());
        assert_eq!(credential(&r).unwrap_err().code(), tonic::Code::Unauthenticated);
        r.metadata_mut().insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(credential(&r).unwrap_err().code(), tonic::Code::Unauthenticated);
        r.metadata_mut()
            .insert("authorization", "Bearer lqxnode_x".parse().unwrap());
        assert_eq!(credential(&r).unwrap(), "lqxnode_x");
    }
}

//! The control plane as several replicas: the agent's [`ControlPlane`] over a list of URLs
//! that follows the HA leader.
//!
//! - Heartbeats go to the replica that answered last. A replica that does not lead refuses
//!   with the leader's URL (`crate::handover::LEADER_URL_HEADER`): the agent sends the same
//!   heartbeat there at once (a URL not in the list is added). A replica that cannot be
//!   reached (refused, or no answer within `crate::handover::agent_call_timeout`) is skipped
//!   for the next, all of them in one attempt, and is left out (also as a leader hint) for
//!   a few call timeouts: a stopped leader must not cost every attempt a timeout while
//!   another replica takes over.
//! - Registration goes to the first replica that answers (any replica registers).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use tonic::{Code, transport::Channel};
use tracing::info;

use super::control::{ControlPlane, authorized, from_status};
use crate::{
    Result,
    api::node::v1::{self as pb, agent_service_client::AgentServiceClient},
    handover::LEADER_URL_HEADER,
};

/// Opens a (lazy) channel to a URL, with the agent's TLS settings.
pub type Connect = Arc<dyn Fn(&str) -> Result<Channel> + Send + Sync>;

pub struct FollowLeader {
    connect: Connect,
    /// Known replicas, in order; `current` answered last.
    replicas: Mutex<Vec<(String, AgentServiceClient<Channel>)>>,
    current: Mutex<String>,
    call_timeout: Duration,
    /// Replicas that did not answer, and when they may be tried again.
    down: Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
}

fn normalize(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// Whether another replica may answer where this one did not.
fn try_another(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}

impl FollowLeader {
    /// Over `urls` (at least one).
    pub fn new(urls: &[String], connect: Connect) -> Result<Self> {
        let mut replicas = Vec::new();
        for u in urls.iter().map(|u| normalize(u)) {
            if !replicas.iter().any(|(k, _)| *k == u) {
                let ch = connect(&u)?;
                replicas.push((u, AgentServiceClient::new(ch)));
            }
        }
        let first = replicas
            .first()
            .map(|(u, _)| u.clone())
            .ok_or_else(|| crate::Error::invalid("control_plane", "at least one URL is needed"))?;
        Ok(FollowLeader {
            connect,
            replicas: Mutex::new(replicas),
            current: Mutex::new(first),
            call_timeout: crate::handover::agent_call_timeout(Duration::from_secs(2)),
            down: Mutex::new(Default::default()),
        })
    }

    pub fn with_call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = d;
        self
    }

    /// The replica heartbeats go to now.
    pub fn current(&self) -> String {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn client(&self, url: &str) -> Result<AgentServiceClient<Channel>> {
        let mut r = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = r.iter().find(|(u, _)| u == url) {
            return Ok(c.clone());
        }
        let c = AgentServiceClient::new((self.connect)(url)?);
        r.push((url.to_string(), c.clone()));
        Ok(c)
    }

    /// The order to try replicas in: the current one, then the rest as listed; those that
    /// did not answer lately left out (unless that leaves none).
    fn order(&self) -> Vec<String> {
        let cur = self.current();
        let all: Vec<String> = {
            let r = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
            std::iter::once(cur.clone())
                .chain(r.iter().map(|(u, _)| u.clone()).filter(|u| *u != cur))
                .collect()
        };
        let up: Vec<String> = all.iter().filter(|u| !self.is_down(u)).cloned().collect();
        if up.is_empty() { all } else { up }
    }

    fn is_down(&self, url: &str) -> bool {
        let mut d = self.down.lock().unwrap_or_else(|p| p.into_inner());
        match d.get(url) {
            Some(until) if *until > tokio::time::Instant::now() => true,
            Some(_) => {
                d.remove(url);
                false
            }
            None => false,
        }
    }

    fn mark(&self, url: &str, answered: bool) {
        let mut d = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if answered {
            d.remove(url);
        } else {
            d.insert(url.to_string(), tokio::time::Instant::now() + self.call_timeout * 3);
        }
    }

    fn set_current(&self, url: &str) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if *cur != url {
            info!(from = %cur, to = %url, "following the control plane's leader: heartbeats go to another replica");
            *cur = url.to_string();
        }
    }

    async fn heartbeat_any(&self, credential: String, req: pb::HeartbeatRequest) -> Result<pb::HeartbeatResponse> {
        let mut queue = self.order();
        let mut tried: Vec<String> = Vec::new();
        let mut last = None;
        let mut alive = None;
        while let Some(url) = (!queue.is_empty()).then(|| queue.remove(0)) {
            if tried.contains(&url) {
                continue;
            }
            tried.push(url.clone());
            let mut c = self.client(&url)?;
            let call = c.heartbeat(authorized(&credential, req.clone())?);
            let status = match tokio::time::timeout(self.call_timeout, call).await {
                Ok(Ok(r)) => {
                    self.mark(&url, true);
                    self.set_current(&url);
                    return Ok(r.into_inner());
                }
                Ok(Err(s)) => s,
                Err(_) => tonic::Status::deadline_exceeded(format!("{url} did not answer in time")),
            };
            if !try_another(status.code()) {
                return Err(from_status(status));
            }
            let hint = status
                .metadata()
                .get(LEADER_URL_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(normalize);
            // A replica that refused as not the leader is alive (a dead one never says so).
            let answered = hint.is_some() || status.message().contains("not the HA leader");
            self.mark(&url, answered);
            if answered && alive.is_none() {
                alive = Some(url.clone());
            }
            if let Some(leader) = hint
                && !tried.contains(&leader)
                && !self.is_down(&leader)
            {
                queue.insert(0, leader);
            }
            last = Some(status);
        }
        // Nobody renewed: start next time from a replica that answered, if any.
        if let Some(a) = alive {
            self.set_current(&a);
        } else if let Some(next) = self.order().into_iter().find(|u| *u != self.current()) {
            self.set_current(&next);
        }
        Err(from_status(last.unwrap_or_else(|| {
            tonic::Status::unavailable("no control plane replica")
        })))
    }

    async fn register_any(&self, req: pb::RegisterRequest) -> Result<pb::RegisterResponse> {
        let mut last = None;
        for url in self.order() {
            let mut c = self.client(&url)?;
            match tokio::time::timeout(self.call_timeout, c.register(req.clone())).await {
                Ok(Ok(r)) => {
                    self.set_current(&url);
                    return Ok(r.into_inner());
                }
                Ok(Err(s)) if try_another(s.code()) => last = Some(s),
                Ok(Err(s)) => return Err(from_status(s)),
                Err(_) => {
                    last = Some(tonic::Status::deadline_exceeded(format!(
                        "{url} did not answer in time"
                    )))
                }
            }
        }
        Err(from_status(last.unwrap_or_else(|| {
            tonic::Status::unavailable("no control plane replica")
        })))
    }
}

impl ControlPlane for FollowLeader {
    fn register(&self, req: pb::RegisterRequest) -> BoxFuture<'_, Result<pb::RegisterResponse>> {
        Box::pin(self.register_any(req))
    }

    fn heartbeat(&self, credential: String, req: pb::HeartbeatRequest) -> BoxFuture<'_, Result<pb::HeartbeatResponse>> {
        Box::pin(self.heartbeat_any(credential, req))
    }
}

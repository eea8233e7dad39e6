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
//! - A URL whose host is a DNS name with several addresses stands for that many replicas
//!   ([`expand`]): each address is tried like a listed URL (TLS still checks the certificate
//!   against the name), so agents follow the leader behind one name without a load
//!   balancer. When no replica answers at all, the names are resolved again.

use std::{
    net::IpAddr,
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

/// Opens a (lazy) channel to a URL, with the agent's TLS settings; the second argument is
/// the name to check the server's certificate against when the URL holds an address.
pub type Connect = Arc<dyn Fn(&str, Option<&str>) -> Result<Channel> + Send + Sync>;

/// Resolves a host name and port to its addresses.
pub type Resolve = Arc<dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> + Send + Sync>;

/// The system's resolver (`getaddrinfo`: /etc/hosts, DNS).
pub fn system_resolver() -> Resolve {
    Arc::new(|host, port| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    })
}

/// One replica to try: the URL dialled and, when it is one address of a DNS name, that name
/// (for TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub url: String,
    pub tls_name: Option<String>,
}

/// The replicas `urls` stand for: a URL whose host name resolves to several addresses
/// becomes one replica per address; the others stay as given (a name that does not
/// resolve now is left for the channel to resolve when it connects).
pub async fn expand(urls: &[String], resolve: &Resolve) -> Vec<Replica> {
    let mut out: Vec<Replica> = Vec::new();
    for u in urls.iter().map(|u| normalize(u)) {
        let as_given = Replica {
            url: u.clone(),
            tls_name: None,
        };
        let Ok(uri) = u.parse::<tonic::codegen::http::Uri>() else {
            out.push(as_given);
            continue;
        };
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            out.push(as_given);
            continue;
        };
        if host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
        {
            out.push(as_given);
            continue;
        }
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let mut addrs = match resolve(host.to_string(), port).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(url = %u, error = %e, "cannot resolve the control plane's name now");
                vec![]
            }
        };
        addrs.sort();
        addrs.dedup();
        if addrs.len() < 2 {
            out.push(as_given);
            continue;
        }
        let path = uri.path().trim_end_matches('/');
        for a in addrs {
            let ip = match a {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            out.push(Replica {
                url: format!("{scheme}://{ip}:{port}{path}"),
                tls_name: Some(host.to_string()),
            });
        }
    }
    out.dedup_by(|a, b| a.url == b.url);
    out
}

pub struct FollowLeader {
    connect: Connect,
    /// The URLs as configured and how to resolve them again ([`Self::with_names`]).
    names: Option<(Vec<String>, Resolve)>,
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
    /// Over `urls` (at least one), as given.
    pub fn new(urls: &[String], connect: Connect) -> Result<Self> {
        let replicas: Vec<Replica> = urls
            .iter()
            .map(|u| Replica {
                url: normalize(u),
                tls_name: None,
            })
            .collect();
        Self::over(&replicas, connect)
    }

    /// Over what `urls` stand for ([`expand`]); names are resolved again when no replica
    /// answers.
    pub async fn with_names(urls: &[String], connect: Connect, resolve: Resolve) -> Result<Self> {
        let replicas = expand(urls, &resolve).await;
        let mut f = Self::over(&replicas, connect)?;
        f.names = Some((urls.to_vec(), resolve));
        Ok(f)
    }

    fn over(list: &[Replica], connect: Connect) -> Result<Self> {
        let mut replicas = Vec::new();
        for r in list {
            if !replicas.iter().any(|(k, _)| *k == r.url) {
                let ch = connect(&r.url, r.tls_name.as_deref())?;
                replicas.push((r.url.clone(), AgentServiceClient::new(ch)));
            }
        }
        let first = replicas
            .first()
            .map(|(u, _)| u.clone())
            .ok_or_else(|| crate::Error::invalid("control_plane", "at least one URL is needed"))?;
        Ok(FollowLeader {
            connect,
            names: None,
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
        let c = AgentServiceClient::new((self.connect)(url, None)?);
        r.push((url.to_string(), c.clone()));
        Ok(c)
    }

    /// The replicas tried now, in order.
    pub fn replicas(&self) -> Vec<String> {
        let r = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        r.iter().map(|(u, _)| u.clone()).collect()
    }

    /// Resolves the configured names again and adds addresses not known yet.
    async fn reresolve(&self) {
        let Some((urls, resolve)) = &self.names else { return };
        for rep in expand(urls, resolve).await {
            let mut r = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
            if r.iter().any(|(u, _)| *u == rep.url) {
                continue;
            }
            match (self.connect)(&rep.url, rep.tls_name.as_deref()) {
                Ok(ch) => {
                    info!(url = %rep.url, "a control plane replica found by its name");
                    r.push((rep.url, AgentServiceClient::new(ch)));
                }
                Err(e) => tracing::warn!(url = %rep.url, error = %e, "cannot use a resolved replica address"),
            }
        }
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
        } else {
            // None answered: the name may point elsewhere now.
            self.reresolve().await;
            if let Some(next) = self.order().into_iter().find(|u| *u != self.current()) {
                self.set_current(&next);
            }
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

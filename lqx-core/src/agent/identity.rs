//! What the agent keeps from joining, and what can stop it (apart from the loop in
//! `runner`, so the fence link can name them without importing the loop).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{ErrorKind, driver::DriverError, model::NodeId};

/// What can stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Cannot use the agent's data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The agent identity in {path} is unreadable; remove it and join again")]
    CorruptIdentity {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("No join token: this host has not joined yet (pass --join-token or LQX_JOIN_TOKEN)")]
    NoJoinToken,
    #[error("The control plane refused to let this host join")]
    JoinRefused(#[source] crate::Error),
    #[error("Cannot read the host from the hypervisor")]
    Hypervisor(#[source] DriverError),
    #[error("The fence process cannot fence in time with these settings: {0}")]
    FenceTiming(String),
}

impl From<AgentError> for crate::Error {
    fn from(e: AgentError) -> Self {
        let kind = match &e {
            AgentError::NoJoinToken | AgentError::FenceTiming(_) => ErrorKind::InvalidArgument,
            AgentError::JoinRefused(inner) => inner.kind,
            AgentError::Hypervisor(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        crate::Error::new(kind, e.to_string()).with_source(e)
    }
}

/// What the agent keeps from joining (`<data_dir>/agent-identity.json`, mode 0600).
#[derive(Clone, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: NodeId,
    pub credential: String,
    pub heartbeat_interval_secs: u32,
    pub lease_ttl_secs: u32,
    pub self_fence_after_secs: u32,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .field("credential", &"<redacted>")
            .finish()
    }
}

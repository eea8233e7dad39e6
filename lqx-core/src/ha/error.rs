//! HA errors: configuration (refused at start-up) and runtime requests.

use std::time::Duration;

use crate::model::NodeId;

/// A timing rule of the `ha:` section is broken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HaConfigError {
    #[error("{field} must be greater than zero")]
    Zero { field: &'static str },
    #[error("heartbeat_interval ({heartbeat_interval:?}) must be shorter than check_interval ({check_interval:?})")]
    HeartbeatSlowerThanCheck {
        heartbeat_interval: Duration,
        check_interval: Duration,
    },
    #[error(
        "heartbeat_timeout ({heartbeat_timeout:?}) must be at least two heartbeat intervals ({heartbeat_interval:?} each)"
    )]
    TimeoutTooShort {
        heartbeat_timeout: Duration,
        heartbeat_interval: Duration,
    },
    #[error(
        "self_fence_after ({self_fence_after:?}) must be shorter than lease_ttl ({lease_ttl:?}): an agent must destroy its HA domains before the control plane may restart them"
    )]
    SelfFenceNotBeforeLease {
        self_fence_after: Duration,
        lease_ttl: Duration,
    },
    #[error(
        "self_fence_after ({self_fence_after:?}) must be at least the node timeout plus one heartbeat interval ({tolerated:?}): an agent would fence itself during a gap the control plane tolerates"
    )]
    SelfFenceTooEarly {
        self_fence_after: Duration,
        tolerated: Duration,
    },
    #[error("storm_threshold ({0}) must be above 0 and at most 1")]
    StormThreshold(f64),
}

impl HaConfigError {
    /// The configuration key at fault.
    pub fn field(&self) -> &'static str {
        match self {
            HaConfigError::Zero { field } => field,
            HaConfigError::HeartbeatSlowerThanCheck { .. } => "heartbeat_interval",
            HaConfigError::TimeoutTooShort { .. } => "heartbeat_timeout",
            HaConfigError::SelfFenceNotBeforeLease { .. } | HaConfigError::SelfFenceTooEarly { .. } => {
                "self_fence_after"
            }
            HaConfigError::StormThreshold(_) => "storm_threshold",
        }
    }
}

impl From<HaConfigError> for crate::Error {
    fn from(e: HaConfigError) -> Self {
        crate::Error::invalid(&format!("ha.{}", e.field()), &e)
    }
}

/// A runtime HA request that cannot be done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HaError {
    #[error("Node {0} is not tracked by HA")]
    UnknownNode(NodeId),
    #[error("Manual failover needs the operator to confirm the host is powered off")]
    ConfirmationRequired,
    #[error(
        "Node {node} heartbeated {since:?} ago: a live host cannot be declared down (use maintenance to evacuate it)"
    )]
    NodeAlive { node: NodeId, since: Duration },
}

impl From<HaError> for crate::Error {
    fn from(e: HaError) -> Self {
        match e {
            HaError::UnknownNode(id) => crate::Error::not_found("node", id),
            HaError::ConfirmationRequired => crate::Error::invalid("confirm_host_down", &e),
            HaError::NodeAlive { .. } => crate::Error::precondition(e.to_string()),
        }
    }
}

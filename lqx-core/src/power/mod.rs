//! Host power: a node's power state and the controllers that change it (a BMC over Redfish or
//! IPMI, or Wake-on-LAN for power-on only). DPM decides *when* a host goes to standby or comes
//! back; this module only knows *how*.

use std::fmt;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::ids::NodeId;

pub mod config;
#[cfg(feature = "server")]
pub mod hosts;
#[cfg(feature = "server")]
pub mod ipmi;
#[cfg(feature = "server")]
pub mod redfish;
#[cfg(feature = "server")]
pub mod wol;

pub use config::{BmcConfig, BmcKind, PowerConfig};

/// A host's power as lqx knows it. `Standby` is a host DPM (or an operator) powered off on
/// purpose: HA never treats it as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    #[default]
    On,
    Standby,
    PoweringOn,
    PoweringOff,
    Unknown,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Standby => "standby",
            PowerState::PoweringOn => "powering_on",
            PowerState::PoweringOff => "powering_off",
            PowerState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "on" => PowerState::On,
            "standby" => PowerState::Standby,
            "powering_on" => PowerState::PoweringOn,
            "powering_off" => PowerState::PoweringOff,
            "unknown" => PowerState::Unknown,
            _ => return None,
        })
    }

    /// Off or changing on lqx's request: silence from such a host is expected, so HA neither
    /// counts it as failed nor waits to fence it, and nothing is placed on it.
    pub fn is_parked(self) -> bool {
        matches!(
            self,
            PowerState::Standby | PowerState::PoweringOn | PowerState::PoweringOff
        )
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a power operation failed, in words for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowerError {
    /// The node has no controller configured, or its controller cannot do this (Wake-on-LAN
    /// cannot power off).
    #[error("{0}")]
    Unsupported(String),
    /// The BMC refused or could not be reached.
    #[error("{0}")]
    Controller(String),
}

/// One host's management interface.
pub trait PowerController: Send + Sync + 'static {
    /// Powers the host on; Ok once the BMC accepted the request.
    fn power_on(&self) -> BoxFuture<'_, Result<(), PowerError>>;
    /// Asks the host's OS to shut down (graceful); Ok once the BMC accepted the request.
    fn power_off(&self) -> BoxFuture<'_, Result<(), PowerError>>;
    /// The power state the BMC reports.
    fn status(&self) -> BoxFuture<'_, Result<PowerState, PowerError>>;
    /// Cuts the host's power without asking its OS (only when an operator asks for it).
    fn force_off(&self) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async {
            Err(PowerError::Unsupported(
                "this controller cannot force a host off".into(),
            ))
        })
    }
}

/// What DPM needs from the rest of the system to put a host in standby or wake it: node power
/// through the configured controllers, with the node record's power state kept up to date.
pub trait NodePower: Send + Sync + 'static {
    fn power_state(&self, node: NodeId) -> BoxFuture<'_, Result<PowerState, PowerError>>;
    /// Wakes a host in standby.
    fn power_on(&self, node: NodeId) -> BoxFuture<'_, Result<(), PowerError>>;
    /// Puts an evacuated host in standby (the caller has moved its VMs away first).
    fn standby(&self, node: NodeId) -> BoxFuture<'_, Result<(), PowerError>>;
}

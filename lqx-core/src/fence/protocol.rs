//! The fence socket's messages: one JSON object per line each way. Every request gets one
//! [`Reply`].

use serde::{Deserialize, Serialize};

use crate::model::VmId;

/// What the agent sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// "Fence in `fence_in_ms` unless petted again."
    Pet(Pet),
    /// The agent stops cleanly holding no HA-protected domain: stop watching.
    Disarm,
    /// Only the reply.
    Status,
}

/// One pet: deadlines are durations from now on the agent's monotonic clock (the two
/// processes share the host's clock, not its wall time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pet {
    /// Destroy the domains after this long without another pet (the agent's watchdog deadline).
    pub fence_in_ms: u64,
    /// The lease the control plane granted ends in this long; the host watchdog is not petted
    /// past it.
    pub lease_left_ms: u64,
    /// The HA-protected domains of this host.
    pub vms: Vec<VmId>,
    /// The deadline comes from a lease renewal in the agent's current run. A pet without
    /// one (an agent restarted and not yet answered) may bring the deadline closer, never
    /// push it back.
    pub renewed: bool,
}

/// The fence process's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// A deadline is set.
    pub armed: bool,
    /// The deadline passed: HA domains are being destroyed.
    pub fenced: bool,
    /// HA-protected domains it guards.
    #[serde(default)]
    pub domains: usize,
    /// The host watchdog device, when one is open.
    pub watchdog: Option<String>,
    /// Its timeout in ms.
    pub watchdog_timeout_ms: Option<u64>,
    /// Why fencing is weaker than it should be (no watchdog device), for the node's status.
    pub degraded: Option<String>,
    /// The request was not understood.
    pub error: Option<String>,
}

//! The node agent: one per hypervisor host. It joins the control plane with a one-time join
//! token, heartbeats with usage and domain states, and reconciles the hypervisor to the desired
//! state the control plane assigns (level-triggered and idempotent), fencing itself when it
//! cannot renew its lease.
//!
//! - [`reconcile`]: the pure planner (desired + actual -> actions) and its executor.
//! - [`fence`]: the self-fencing watchdog, a pure state machine.
//! - `fence_link`: the agent's use of the separate fence process (`crate::fence`).
//! - [`metrics`]: CPU % from cumulative counters.
//! - [`migration`]: live migrations ordered away from this host.
//! - [`follow`]: several control-plane replicas, following the leader.
//! - [`observe`]: the heartbeat report read from the hypervisor (also used for in-process nodes).
//! - [`control`]: the [`ControlPlane`] trait, its gRPC client and the wire conversions.
//! - [`identity`]: what the agent keeps from joining, and the errors that stop it.
//! - [`runner`]: the agent loop ([`Agent::run`]).

pub mod control;
pub mod fence;
mod fence_link;
pub mod follow;
pub mod identity;
pub mod metrics;
pub mod migration;
pub mod observe;
pub mod reconcile;
pub mod runner;

pub use control::{ControlPlane, GrpcControlPlane};
pub use fence::Watchdog;
pub use follow::FollowLeader;
pub use identity::{AgentError, Identity};
pub use reconcile::{Action, DesiredDomain, Outcome, apply, reconcile, reconcile_with_purge};
pub use runner::{Agent, AgentOptions};

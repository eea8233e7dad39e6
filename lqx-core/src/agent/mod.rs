//! The node agent: reconciles one hypervisor to the desired state the control plane assigns.
//! So far: the pure reconciliation planner and its executor ([`reconcile`]); joining,
//! heartbeats and the lease come with the agent loop.

pub mod reconcile;

pub use reconcile::{Action, DesiredDomain, Outcome, apply, reconcile};

//! High availability: detect failed hosts, prove they are fenced, restart their HA VMs
//! elsewhere, and never run a VM twice.
//!
//! Everything here is pure (snapshot and `now` in, decisions out) and compiles without the
//! `server` feature, so `lqx ha simulate` and the fault simulator run the same code as the
//! leader's HA manager loop.
//!
//! - [`config`]: the `ha:` section and its start-up timing rules.
//! - [`health`]: the detection state machine (HEALTHY, UNKNOWN, UNREACHABLE, FAILED).
//! - [`fence`]: leases, the agent's self-fence, operator confirmation, the return gate.
//! - [`failover`]: restart planning, storm pause, admission control (N+1).
//! - [`engine`]: the one object the manager loop drives each tick.
//! - [`sim`]: a discrete-event fault simulator in virtual time with an invariant checker.
//! - [`simulate`]: `lqx ha simulate`, the failover of one node of a cluster file.
//! - `manager` (feature `server`): the leader's loop around the engine.

pub mod config;
pub mod engine;
pub mod error;
pub mod failover;
pub mod fence;
pub mod health;
#[cfg(feature = "server")]
pub mod manager;
pub mod scenario;
pub mod sim;
pub mod simulate;
pub mod time;

pub use config::HaConfig;
pub use engine::{HaEngine, HaStatusView, PersistedHa, TickReport};
pub use error::{HaConfigError, HaError};
pub use failover::{
    AdmissionReport, Deferred, FailedNode, FailoverInput, FailoverPlan, Held, HoldReason, PlannedRestart, RestartBook,
    RestartCount, Unplaced, admission, admits,
};
pub use fence::{AgentLease, FenceProof, FenceReason, Lease, NotConfirmed, Renewal, ReturnReport};
pub use health::{
    Cause, CheckReport, HealthTracker, HeartbeatOutcome, NodeHealth, NodeStatus, PersistedNode, Storm, Transition,
    Verdict,
};
pub use scenario::{Fault, ScenarioError, SimParams, SimSpec, TimedFault};
pub use sim::{LogLine, SimReport, Violation};
pub use simulate::{HaSimulationReport, SimulatedPlacement, SimulatedUnplaced, simulate_failover};
pub use time::MonoInstant;

//! The domain model: typed ids and the resources lqx manages. Plain data with validation;
//! behaviour lives in the service modules.

pub mod alert;
pub mod audit_action;
pub mod drs;
pub mod event;
pub mod ids;
pub mod node;
pub mod project;
pub mod user;
pub mod validate;
pub mod vm;

pub use alert::*;
pub use drs::*;
pub use event::*;
pub use ids::*;
pub use node::*;
pub use project::*;
pub use user::*;
pub use vm::*;

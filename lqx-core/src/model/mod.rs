//! The domain model: typed ids and the resources lqx manages.

pub mod ids;

pub use ids::*;

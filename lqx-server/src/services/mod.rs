//! gRPC service implementations: decode, authorize (done by the auth layer), call
//! lqx-core, encode. No business logic here.

pub mod agent;
pub mod alert;
pub mod auth;
pub mod drs;
pub mod events;
pub mod ha;
pub mod node;
pub mod vm;

use lqx_core::model::ProjectId;
use std::pin::Pin;
use tonic::Status;

pub type Stream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Maps an lqx error to a status (the one mapping lives in `crate::status`).
pub fn st(e: lqx_core::Error) -> Status {
    crate::status::to_status(e)
}

/// The project named in a request (empty: the default project).
pub fn project(s: &str) -> Result<ProjectId, Status> {
    if s.is_empty() || s == "default" {
        Ok(ProjectId::DEFAULT)
    } else {
        ProjectId::parse("project_id", s).map_err(st)
    }
}

/// An optional idempotency key, bounded.
pub fn request_id(s: &str) -> Result<Option<String>, Status> {
    match s.len() {
        0 => Ok(None),
        1..=128 => Ok(Some(s.to_string())),
        _ => Err(st(lqx_core::Error::invalid(
            "request_id",
            "must be at most 128 characters",
        ))),
    }
}

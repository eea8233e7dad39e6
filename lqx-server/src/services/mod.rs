//! gRPC service implementations: decode, authorize (done by the auth layer), call
//! lqx-core, encode. No business logic here.

pub mod agent;
pub mod alert;
pub mod auth;
pub mod drs;
pub mod events;
pub mod ha;
pub mod node;
pub mod project;
pub mod vm;

use lqx_core::auth::{Access, AuthError, AuthService, Principal};
use lqx_core::model::{Permission, ProjectId};
use std::pin::Pin;
use tonic::{Request, Status};

/// The header naming the project of a project-scoped request (name or id) where the
/// request message has no project field; absent: the default project.
pub const PROJECT_HEADER: &str = "lqx-project";

/// The `lqx-project` header's value, put into the request's extensions by the auth layer.
#[derive(Debug, Clone)]
pub struct NamedProject(pub String);

/// The caller, as the auth layer verified it.
pub fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| st(AuthError::MissingCredentials.into()))
}

/// The project named by the request: `body` (its project field) if set, else the
/// `lqx-project` header; empty: the default project.
pub fn named_project<T>(req: &Request<T>, body: &str) -> String {
    if !body.is_empty() {
        return body.to_string();
    }
    req.extensions()
        .get::<NamedProject>()
        .map(|n| n.0.clone())
        .unwrap_or_default()
}

/// Whether the request named a project at all (lists of alerts and audit entries cover
/// every project of the caller when it did not).
pub fn names_project<T>(req: &Request<T>) -> bool {
    req.extensions().get::<NamedProject>().is_some_and(|n| !n.0.is_empty())
}

/// The project a project-scoped request acts in, checked for the permission the RBAC table
/// requires of this RPC: a project the caller is not a member of is not found.
pub async fn scoped<T>(auth: &AuthService, req: &Request<T>, body: &str) -> Result<ProjectId, Status> {
    let p = principal(req)?;
    let perm = match req.extensions().get::<Access>() {
        Some(Access::Permission(perm)) => *perm,
        // Authenticated-only project RPCs need to see the project (any role).
        _ => Permission::VmRead,
    };
    let note = auth::note(req);
    auth.project_for(&p, &named_project(req, body), perm, &note)
        .await
        .map(|project| project.id)
        .map_err(st)
}

pub type Stream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Maps an lqx error to a status (the one mapping lives in `crate::status`).
pub fn st(e: lqx_core::Error) -> Status {
    crate::status::to_status(e)
}

/// An optional idempotency key, bounded.
pub fn request_id(s: &str) -> Result<Option<String>, Status> {
    lqx_core::api::convert::request_id_in(s).map_err(st)
}

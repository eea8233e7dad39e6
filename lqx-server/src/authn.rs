//! The auth layer in front of every RPC of both protocols (called by the listener, `server`):
//! credential check and the RBAC table (`AuthService::admit`), the `Principal` and the
//! request's `AuditNote` put into the request extensions, and the one audit entry of every
//! mutating RPC written once the answer is known. Also the start-up of the auth service:
//! table completeness, signing key, bootstrap admin.

use crate::config::Config;
use crate::gateway;
use crate::request::{ClientAddr, result_code, timed_out};
use axum::body::Body;
use http::{HeaderValue, Request, Response, header};
use lqx_core::auth::audit::{self, AuditNote};
use lqx_core::auth::service::{BootstrapPassword, Bootstrapped, DEV_ADMIN_PASSWORD};
use lqx_core::auth::{AuthService, Secret, SigningKey, rbac};
use lqx_core::model::Actor;
use lqx_core::store::{Backend, Store};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for an audit write before the answer goes out anyway (the write goes on).
const AUDIT_WAIT: Duration = Duration::from_millis(500);
/// The environment variable that gives the bootstrap admin's password.
pub const BOOTSTRAP_PASSWORD_ENV: &str = "LQX_BOOTSTRAP_ADMIN_PASSWORD";

/// Authenticates, authorizes, hands the request to `dispatch` (within `time_limit`) and
/// audits it. The listener passes its router in, so this layer does not depend on it.
pub async fn guard<F, Fut>(
    auth: Arc<AuthService>,
    mut req: Request<Body>,
    path: &str,
    grpc: bool,
    time_limit: Option<Duration>,
    dispatch: F,
) -> Response<Body>
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: std::future::Future<Output = Response<Body>>,
{
    let time = auth.now();
    let request_id = audit::request_id(req.headers().get("x-request-id").and_then(|v| v.to_str().ok()));
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    // A header that is not even ASCII is garbage, not "no credential".
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
    let note = AuditNote::default();
    req.extensions_mut().insert(note.clone());
    // The project a project-scoped request acts in, for the handler to check (gRPC and
    // Connect alike: both reach the handler through the extensions).
    if let Some(v) = req.headers().get(crate::services::PROJECT_HEADER) {
        let named = v.to_str().unwrap_or("\u{fffd}").to_string();
        req.extensions_mut().insert(crate::services::NamedProject(named));
    }

    let admission = auth.admit(path, authorization.as_deref()).await;
    let actor = admission.principal.as_ref().map(|p| p.actor());
    let (mut resp, refusal) = match admission.verdict {
        Ok(access) => {
            req.extensions_mut().insert(access);
            if let Some(p) = admission.principal {
                tracing::debug!(user = %p.username, method = %path, "admitted");
                req.extensions_mut().insert(p);
            }
            let work = dispatch(req);
            let resp = match time_limit {
                None => work.await,
                Some(limit) => match tokio::time::timeout(limit, work).await {
                    Ok(r) => r,
                    Err(_) => {
                        // The work was cut off at an unknown point: say so in the audit.
                        note.detail("request timed out; it may have taken effect in part");
                        timed_out(grpc)
                    }
                },
            };
            (resp, None)
        }
        Err(e) => {
            let msg = e.message.clone();
            if e.kind == lqx_core::ErrorKind::Internal {
                tracing::error!(method = %path, "credential check failed");
            }
            (refusal(e, grpc), Some(msg))
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if audit::is_audited(path) {
        let entry = audit::entry(audit::Finished {
            time,
            method_path: path,
            actor: actor.unwrap_or(Actor::Anonymous { claimed: None }),
            code: result_code(&resp, grpc),
            refusal: refusal.as_deref(),
            client_address: client,
            request_id,
            note: note.fields(),
        });
        let write = tokio::spawn(async move {
            if let Err(e) = auth.record_request_audit(&entry).await {
                tracing::error!(error = %e, action = %entry.action, request_id = %entry.request_id, "writing the audit entry failed");
            }
        });
        // Normally the entry is stored before the answer leaves (a client that reads the
        // audit log right after sees it); a slow database delays the answer at most this.
        let _ = tokio::time::timeout(AUDIT_WAIT, write).await;
    }
    resp
}

/// The answer to a request the auth layer refused, in the request's protocol.
fn refusal(e: lqx_core::Error, grpc: bool) -> Response<Body> {
    let unauthenticated = e.kind == lqx_core::ErrorKind::Unauthenticated;
    let status = crate::status::to_status(e);
    let mut r = if grpc {
        let mut r = Response::new(Body::empty());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        let _ = status.add_header(r.headers_mut());
        r
    } else {
        gateway::status_response(&status)
    };
    if unauthenticated && !grpc {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// Every RPC declared in proto/ (a superset of those served) must be in the RBAC table.
pub fn check_table() -> anyhow::Result<()> {
    check_table_of(&rbac::declared_method_paths())
}

fn check_table_of(paths: &[String]) -> anyhow::Result<()> {
    rbac::check_complete(paths).map_err(|missing| {
        anyhow::anyhow!(
            "refusing to start: these RPCs are missing from the authorization table (lqx-core auth/rbac.rs): {}",
            missing.join(", ")
        )
    })
}

/// The signing key: the configured file; else with PostgreSQL the key shared by all
/// replicas through the database; else `<data_dir>/jwt.key` (generated at first start).
///
/// Why the database for PostgreSQL: replicas behind one load balancer must verify each
/// other's tokens, and the database is the one thing they already share, so a fresh HA
/// install works with no extra step (the first replica writes the key with an insert that
/// only one can win, the others read it). Whoever can read that table can mint tokens, but
/// whoever can write the database owns the users table anyway. Operators who keep keys out
/// of the database set `auth.signing_key_file` to a file distributed to every replica.
async fn signing_key(config: &Config, store: &Store) -> anyhow::Result<SigningKey> {
    if let Some(path) = &config.auth.signing_key_file {
        return Ok(SigningKey::load(path)?);
    }
    match store.backend() {
        Backend::Postgres => Ok(lqx_core::auth::service::shared_signing_key(store).await?),
        Backend::Sqlite => Ok(SigningKey::load_or_generate(&config.data_dir)?),
    }
}

/// The names of auth's loops among the background tasks.
pub const DENIAL_TASK: &str = "denial-summaries";
pub const AUDIT_TASK: &str = "audit-pruning";

/// Builds the auth service: checks the table, loads the key, creates the first admin on
/// an empty store (printing its password once when it was not given).
pub async fn start(
    config: &Config,
    store: &Store,
    dev: bool,
    tasks: &lqx_core::background::BackgroundTasks,
) -> anyhow::Result<Arc<AuthService>> {
    check_table()?;
    lqx_core::auth::install_crypto_provider();
    let key = signing_key(config, store).await?;
    let auth = Arc::new(AuthService::new(store.clone(), &key, config.auth.settings()));
    let loopback = config.listen.ip().is_loopback();
    let source = match std::env::var(BOOTSTRAP_PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => BootstrapPassword::Given(Secret::new(p)),
        _ if dev && loopback => BootstrapPassword::Dev,
        _ => {
            if dev {
                tracing::warn!(
                    "--dev on a non-loopback address: the admin gets a random password, not the development one"
                );
            }
            BootstrapPassword::Generated
        }
    };
    if let Some(b) = auth.bootstrap_admin(source, &config.data_dir).await? {
        banner(&b);
    }
    // Every minute: summaries of anonymous refusals not recorded one by one. Every hour
    // (and at start): audit entries past their retention (ended sessions:
    // `lqx_core::retention`). Any replica may prune: the deletes are idempotent, and each
    // replica records what it removed itself.
    let flusher = auth.clone();
    tasks.spawn(DENIAL_TASK, Duration::from_secs(60), move || {
        let a = flusher.clone();
        async move {
            a.flush_suppressed_denials()
                .await
                .map(|n| format!("{n} summaries written"))
        }
    });
    let pruner = auth.clone();
    let retention = config.audit.retention();
    tasks.spawn(AUDIT_TASK, Duration::from_secs(3600), move || {
        let a = pruner.clone();
        async move {
            let n = a.prune_audit(&retention).await?;
            if n > 0 {
                tracing::info!(removed = n, "pruned the audit log");
            }
            Ok::<_, lqx_core::Error>(format!("{n} audit entries deleted"))
        }
    });
    Ok(auth)
}

/// Prints the bootstrap admin's password once, on stderr (never through the log).
fn banner(b: &Bootstrapped) {
    let Some(pw) = &b.password else {
        eprintln!(
            "lqx-server: created the admin account '{}' with the password from {BOOTSTRAP_PASSWORD_ENV}",
            b.username
        );
        return;
    };
    let line = "=".repeat(72);
    let origin = if pw.expose() == DEV_ADMIN_PASSWORD {
        "the documented development password (--dev on loopback only)".to_string()
    } else {
        match &b.file {
            Some(f) => format!("a random password, also written to {} (mode 0600)", f.display()),
            None => "a random password".to_string(),
        }
    };
    eprintln!(
        "{line}\n  lqx-server: first start, created the admin account.\n    username: {}\n    password: {}\n  This is {origin}.\n  It is shown only this once: log in and change it (lqx user passwd).\n{line}",
        b.username,
        pw.expose()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_refuses_an_rpc_missing_from_the_table() {
        check_table().unwrap();
        let mut paths = rbac::declared_method_paths();
        paths.push("/limiquantix.compute.v1.VMService/FormatDisk".into());
        let e = check_table_of(&paths).unwrap_err().to_string();
        assert!(
            e.contains("refusing to start") && e.contains("VMService/FormatDisk"),
            "{e}"
        );
    }
}

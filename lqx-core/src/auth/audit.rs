//! What the audit log records, decided in one place.
//!
//! Rule, in plain words:
//! - Every RPC that may change something is audited, allowed or denied, with exactly one
//!   entry written after the answer is known. Reads (methods named Get*, List*, Watch*,
//!   WhoAmI, Subscribe), health checks and reflection are not audited; neither are the
//!   agents' own status reports (Heartbeat), which come every few seconds and change only
//!   telemetry.
//! - The result is `denied` for unauthenticated and permission_denied, `ok` for success,
//!   `error` for anything else; `detail` holds the code name and, for refusals made by the
//!   auth layer, its fixed message. Never a request body, a password, a token or a key.
//! - Services add what only they know (the resource created or deleted, the user a login
//!   was for) through the request's [`AuditNote`].

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::model::{Actor, AuditEntry, AuditId, AuditResult};

/// Method-name prefixes (and names) of RPCs that only read.
const READ_PREFIXES: &[&str] = &["Get", "List", "Watch"];
const READ_METHODS: &[&str] = &["WhoAmI", "Subscribe"];
/// RPCs that change only telemetry, sent by agents every few seconds.
const TELEMETRY: &[&str] = &["/limiquantix.node.v1.AgentService/Heartbeat"];

/// The method name of a full path (`/pkg.Service/Method` -> `Method`).
fn method_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// True for RPCs that only read (by their name).
pub fn is_read_only(method_path: &str) -> bool {
    let m = method_name(method_path);
    READ_PREFIXES.iter().any(|p| m.starts_with(p)) || READ_METHODS.contains(&m)
}

/// True when a request to `method_path` must leave an audit entry.
pub fn is_audited(method_path: &str) -> bool {
    let well_formed = method_path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .is_some_and(|(svc, m)| svc.contains('.') && !m.is_empty() && !m.contains('/'));
    well_formed
        && !is_read_only(method_path)
        && !crate::auth::rbac::PUBLIC_PREFIXES
            .iter()
            .any(|p| method_path.starts_with(p))
        && !TELEMETRY.contains(&method_path)
}

/// Longest `action` kept: a path a client made up is stored once, cut to this.
pub const MAX_ACTION_LEN: usize = 128;

/// The `action` of an entry: `/limiquantix.compute.v1.VMService/CreateVM` becomes
/// `compute.VMService/CreateVM`. Also accepts the short form (for filters) unchanged.
/// At most [`MAX_ACTION_LEN`] bytes (longer ones are cut and end in `...`).
pub fn action_name(method_path: &str) -> String {
    let mut a = full_action_name(method_path);
    if a.len() > MAX_ACTION_LEN {
        let mut cut = MAX_ACTION_LEN - 3;
        while !a.is_char_boundary(cut) {
            cut -= 1;
        }
        a.truncate(cut);
        a.push_str("...");
    }
    a
}

fn full_action_name(method_path: &str) -> String {
    let p = method_path.trim().trim_start_matches('/');
    let p = p.strip_prefix("limiquantix.").unwrap_or(p);
    match p.split_once('/') {
        Some((svc, m)) => {
            let svc: Vec<&str> = svc.split('.').filter(|part| !is_version(part)).collect();
            format!("{}/{m}", svc.join("."))
        }
        None => p.to_string(),
    }
}

fn is_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()) && rest.as_bytes()[0].is_ascii_digit()
    })
}

/// The audit result of a Connect code name (`ok`, `permission_denied`, ...).
pub fn result_of(code: &str) -> AuditResult {
    match code {
        "ok" => AuditResult::Ok,
        "unauthenticated" | "permission_denied" => AuditResult::Denied,
        _ => AuditResult::Error,
    }
}

/// Longest request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id of a request: the client's `x-request-id` when it is short and plain
/// (letters, digits, `-_.:`), otherwise a fresh one.
pub fn request_id(header: Option<&str>) -> String {
    match header {
        Some(h)
            if !h.is_empty()
                && h.len() <= MAX_REQUEST_ID_LEN
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            h.to_string()
        }
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

/// What a service learned while handling a request, for its audit entry. The auth layer
/// puts one into every request's extensions; services fill it through
/// `req.extensions().get::<AuditNote>()`. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct AuditNote(Arc<Mutex<NoteFields>>);

/// The fields of an [`AuditNote`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteFields {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Overrides the actor the auth layer knows (a login knows its user only once done).
    pub actor: Option<Actor>,
    /// A short, safe remark (e.g. "refresh token reuse: session revoked").
    pub detail: Option<String>,
    /// The project a project-scoped request acted in (once resolved and allowed).
    pub project_id: Option<crate::model::ProjectId>,
}

impl AuditNote {
    fn with<R>(&self, f: impl FnOnce(&mut NoteFields) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// The resource the request acted on.
    pub fn resource(&self, kind: &str, id: impl std::fmt::Display) {
        self.with(|n| {
            n.resource_type = Some(kind.to_string());
            n.resource_id = Some(id.to_string());
        });
    }

    pub fn actor(&self, actor: Actor) {
        self.with(|n| n.actor = Some(actor));
    }

    pub fn project(&self, project: crate::model::ProjectId) {
        self.with(|n| n.project_id = Some(project));
    }

    pub fn detail(&self, detail: impl Into<String>) {
        self.with(|n| n.detail = Some(detail.into()));
    }

    pub fn fields(&self) -> NoteFields {
        self.with(|n| n.clone())
    }
}

/// Everything the auth layer knows about one finished request.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub time: DateTime<Utc>,
    pub method_path: &'a str,
    pub actor: Actor,
    /// Connect code name of the answer (`ok`, `not_found`, ...).
    pub code: &'a str,
    /// The auth layer's own refusal message, if it refused.
    pub refusal: Option<&'a str>,
    pub client_address: String,
    pub request_id: String,
    pub note: NoteFields,
}

/// The one audit entry of a finished request.
pub fn entry(f: Finished<'_>) -> AuditEntry {
    let result = result_of(f.code);
    let mut detail = match (result, f.refusal) {
        (AuditResult::Ok, _) => String::new(),
        (_, Some(msg)) => format!("{}: {msg}", f.code),
        (_, None) => f.code.to_string(),
    };
    if let Some(d) = f.note.detail {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(&d);
    }
    AuditEntry {
        id: AuditId::new(),
        time: f.time,
        actor: f.note.actor.unwrap_or(f.actor),
        action: action_name(f.method_path),
        resource_type: f.note.resource_type.unwrap_or_default(),
        resource_id: f.note.resource_id.unwrap_or_default(),
        result,
        detail,
        client_address: f.client_address,
        request_id: f.request_id,
        project_id: f.note.project_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rbac;

    #[test]
    fn reads_are_not_audited_and_everything_else_is() {
        let mut audited = 0;
        for p in rbac::declared_method_paths() {
            let m = method_name(&p);
            let read = ["Get", "List", "Watch"].iter().any(|x| m.starts_with(x)) || m == "WhoAmI" || m == "Subscribe";
            assert_eq!(is_read_only(&p), read, "{p}");
            let expect = !read && m != "Heartbeat";
            assert_eq!(is_audited(&p), expect, "{p}");
            audited += usize::from(expect);
        }
        assert!(audited >= 25, "only {audited} audited RPCs");
        for p in [
            "/limiquantix.auth.v1.AuthService/Login",
            "/limiquantix.auth.v1.AuthService/RefreshToken",
            "/limiquantix.auth.v1.AuthService/Logout",
            "/limiquantix.compute.v1.VMService/CreateVM",
            "/limiquantix.node.v1.AgentService/Register",
            // Not in the table, but a mutation attempt all the same.
            "/limiquantix.compute.v1.VMService/FormatDisk",
        ] {
            assert!(is_audited(p), "{p}");
        }
        for p in [
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/limiquantix.auth.v1.AuthService/ListAuditEntries",
            "/limiquantix.node.v1.AgentService/Heartbeat",
            "/wp-login.php",
            "/a/b/c",
        ] {
            assert!(!is_audited(p), "{p}");
        }
    }

    #[test]
    fn action_names_are_short_and_idempotent() {
        let a = action_name("/limiquantix.compute.v1.VMService/CreateVM");
        assert_eq!(a, "compute.VMService/CreateVM");
        assert_eq!(action_name(&a), a);
        assert_eq!(
            action_name("/limiquantix.auth.v1.AuthService/Login"),
            "auth.AuthService/Login"
        );
        assert_eq!(
            action_name("/limiquantix.node.v1beta2.AgentService/Register"),
            "node.AgentService/Register"
        );
        // "vm" or "v" alone are not versions.
        assert_eq!(action_name("/x.vm.v/Do"), "x.vm.v/Do");
        // A made-up path is kept short.
        let long = action_name(&format!("/limiquantix.x.v1.Svc/{}", "é".repeat(4000)));
        assert!(long.len() <= MAX_ACTION_LEN && long.ends_with("..."), "{}", long.len());
    }

    /// Every RPC that leaves an audit entry has a readable action (`lqx audit list`).
    #[test]
    fn every_audited_rpc_has_a_readable_action() {
        use crate::model::audit_action::{AUDIT_ACTIONS, readable_action};
        let audited: Vec<String> = crate::auth::rbac::RULES
            .iter()
            .map(|(p, _, _)| *p)
            .filter(|p| is_audited(p))
            .map(action_name)
            .collect();
        assert!(audited.len() > 30, "{audited:?}");
        for a in &audited {
            assert_ne!(readable_action(a), a, "no readable action for {a}");
        }
        let own = [
            crate::auth::audit_volume::SUPPRESSED_ACTION,
            crate::auth::audit_volume::PRUNE_ACTION,
        ];
        for a in own {
            assert_ne!(readable_action(a), a, "no readable action for {a}");
        }
        for (rpc, _) in AUDIT_ACTIONS {
            assert!(
                audited.iter().any(|a| a == rpc) || own.contains(rpc),
                "{rpc} is not an audited RPC"
            );
        }
    }

    #[test]
    fn results_and_details() {
        assert_eq!(result_of("ok"), AuditResult::Ok);
        assert_eq!(result_of("unauthenticated"), AuditResult::Denied);
        assert_eq!(result_of("permission_denied"), AuditResult::Denied);
        assert_eq!(result_of("not_found"), AuditResult::Error);
        let note = AuditNote::default();
        note.resource("vm", "vm-1");
        note.detail("created");
        let e = entry(Finished {
            time: Utc::now(),
            method_path: "/limiquantix.compute.v1.VMService/CreateVM",
            actor: Actor::Anonymous { claimed: None },
            code: "permission_denied",
            refusal: Some("Permission denied: vm:create required"),
            client_address: "127.0.0.1".into(),
            request_id: "r-1".into(),
            note: note.clone().fields(),
        });
        assert_eq!(e.result, AuditResult::Denied);
        assert_eq!(
            e.detail,
            "permission_denied: Permission denied: vm:create required; created"
        );
        assert_eq!((e.resource_type.as_str(), e.resource_id.as_str()), ("vm", "vm-1"));
        assert_eq!(e.action, "compute.VMService/CreateVM");
        // A clone shares the note.
        let other = note.clone();
        other.actor(Actor::Anonymous {
            claimed: Some("bob".into()),
        });
        assert!(note.fields().actor.is_some());
    }

    #[test]
    fn request_ids_are_kept_when_plain() {
        assert_eq!(request_id(Some("abc-123")), "abc-123");
        for bad in [None, Some(""), Some("a b"), Some("x\ny")] {
            let id = request_id(bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} -> {id}");
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        assert_ne!(request_id(Some(&long)), long);
    }
}

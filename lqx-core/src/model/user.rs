//! Users, roles, permissions, API keys, login sessions and audit entries: plain data.
//!
//! Which role holds which permission, and which RPC needs which permission, is decided in
//! one place: `auth::rbac` (server side). Records that hold a secret (a password hash, an
//! API key hash) implement `Debug` by hand so the secret never reaches a log line.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{ApiKeyId, AuditId, NodeId, ProjectId, SessionId, UserId};

/// A role. Ordered by power: `Admin > Operator > Viewer > None`, so "no higher than" is `<=`.
///
/// A user holds one global role (cluster-scoped RPCs: nodes, DRS, HA, users, settings) and
/// one role per project it is a member of (project-scoped RPCs: VMs, alerts, audit, keys).
/// `None` is only a global role: a project member with no cluster rights at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    None,
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Viewer, Role::None];
    /// The roles a user may hold in a project.
    pub const PROJECT: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name (case-insensitive), with an InvalidArgument error naming `field`.
    pub fn parse(field: &str, s: &str) -> crate::Result<Role> {
        s.parse()
            .map_err(|_| crate::Error::invalid(field, format!("{s:?} is not a role (admin, operator, viewer, none)")))
    }

    /// Parses a role in a project (admin, operator or viewer).
    pub fn parse_project(field: &str, s: &str) -> crate::Result<Role> {
        match s.parse() {
            Ok(r) if r != Role::None => Ok(r),
            _ => Err(crate::Error::invalid(
                field,
                format!("{s:?} is not a project role (admin, operator, viewer)"),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a role or permission name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown {what} {name:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownName {
                what: "role",
                name: s.to_owned(),
            })
    }
}

/// A permission an RPC may require. Names follow `resource:verb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    VmCreate,
    VmRead,
    VmUpdate,
    VmDelete,
    VmPower,
    VmMigrate,
    NodeRead,
    NodeManage,
    AlertRead,
    AlertManage,
    DrsRead,
    DrsApprove,
    DrsApply,
    HaRead,
    HaFailover,
    UserManage,
    AuditRead,
    /// Create, list and revoke one's own API keys. Never held by an API key itself, so a
    /// leaked key cannot mint its own successors.
    ApiKeyManage,
    /// Cluster-wide settings: DRS configuration, alert webhooks.
    SettingsManage,
    /// Create, change (quotas) and delete projects (global); manage a project's members
    /// (in that project).
    ProjectManage,
}

impl Permission {
    pub const ALL: [Permission; 20] = [
        Permission::VmCreate,
        Permission::VmRead,
        Permission::VmUpdate,
        Permission::VmDelete,
        Permission::VmPower,
        Permission::VmMigrate,
        Permission::NodeRead,
        Permission::NodeManage,
        Permission::AlertRead,
        Permission::AlertManage,
        Permission::DrsRead,
        Permission::DrsApprove,
        Permission::DrsApply,
        Permission::HaRead,
        Permission::HaFailover,
        Permission::UserManage,
        Permission::AuditRead,
        Permission::ApiKeyManage,
        Permission::SettingsManage,
        Permission::ProjectManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::VmCreate => "vm:create",
            Permission::VmRead => "vm:read",
            Permission::VmUpdate => "vm:update",
            Permission::VmDelete => "vm:delete",
            Permission::VmPower => "vm:power",
            Permission::VmMigrate => "vm:migrate",
            Permission::NodeRead => "node:read",
            Permission::NodeManage => "node:manage",
            Permission::AlertRead => "alert:read",
            Permission::AlertManage => "alert:manage",
            Permission::DrsRead => "drs:read",
            Permission::DrsApprove => "drs:approve",
            Permission::DrsApply => "drs:apply",
            Permission::HaRead => "ha:read",
            Permission::HaFailover => "ha:failover",
            Permission::UserManage => "user:manage",
            Permission::AuditRead => "audit:read",
            Permission::ApiKeyManage => "apikey:manage",
            Permission::SettingsManage => "settings:manage",
            Permission::ProjectManage => "project:manage",
        }
    }

    /// Parses a permission name such as `vm:create`, with an InvalidArgument error naming `field`.
    pub fn parse(field: &str, s: &str) -> crate::Result<Permission> {
        s.parse()
            .map_err(|_| crate::Error::invalid(field, format!("{s:?} is not a permission")))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| UnknownName {
                what: "permission",
                name: s.to_owned(),
            })
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Longest username accepted.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest email accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Usernames are compared case-insensitively; this is the stored and compared form.
pub fn normalize_username(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// Checks a (normalized) username: 1-64 of `a-z 0-9 . _ -`, starting with a letter or digit.
/// A narrow alphabet keeps look-alike names (Unicode confusables, spaces) out.
pub fn validate_username(field: &str, s: &str) -> crate::Result<()> {
    if s.is_empty() || s.len() > MAX_USERNAME_LEN {
        return Err(crate::Error::invalid(
            field,
            format!("must be 1 to {MAX_USERNAME_LEN} characters"),
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(crate::Error::invalid(
            field,
            "must start with a lowercase letter or a digit",
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return Err(crate::Error::invalid(field, "may only hold a-z, 0-9, '.', '_' and '-'"));
    }
    Ok(())
}

/// Checks an email address loosely (one `@`, something on both sides, no spaces). Empty is
/// allowed: the bootstrap admin has none.
pub fn validate_email(field: &str, s: &str) -> crate::Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    let ok = s.len() <= MAX_EMAIL_LEN
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(crate::Error::invalid(field, "is not an email address"))
    }
}

/// A user account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// Normalized (see [`normalize_username`]); unique.
    pub username: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    /// Argon2id hash in PHC format. Never sent to a client, never logged.
    pub password_hash: String,
    /// Bumped on password change, role change, disable and delete: every token carries the
    /// version it was issued under and is rejected once the user's version has moved on.
    pub token_version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// A new enabled account with the given password hash, at its first token version.
    pub fn new(username: String, email: String, role: Role, password_hash: String, now: DateTime<Utc>) -> Self {
        Self {
            id: UserId::new(),
            username,
            email,
            role,
            disabled: false,
            password_hash,
            token_version: 1,
            created_at: now,
            updated_at: now,
            password_changed_at: now,
            last_login_at: None,
        }
    }

    /// Makes every token issued so far invalid (call on password/role change, disable, delete).
    pub fn invalidate_tokens(&mut self) {
        self.token_version = self.token_version.wrapping_add(1);
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("password_hash", &"<redacted>")
            .field("token_version", &self.token_version)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("password_changed_at", &self.password_changed_at)
            .field("last_login_at", &self.last_login_at)
            .finish()
    }
}

/// An API key for CI and automation. The secret is shown once at creation; only its hash
/// is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub owner_id: UserId,
    /// No higher than the owner's role when it was created.
    pub role: Role,
    /// The one project the key acts in (keys made before projects: the default project).
    #[serde(default = "super::ids::default_project")]
    pub project_id: ProjectId,
    /// The public part of the secret (`lqx_<prefix>_...`), unique; used to look the key up.
    pub prefix: String,
    /// Hex SHA-256 of the whole secret.
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Not revoked and not expired at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("owner_id", &self.owner_id)
            .field("role", &self.role)
            .field("project_id", &self.project_id)
            .field("prefix", &self.prefix)
            .field("secret_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// Why a login session (refresh-token family) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    LogoutAll,
    /// A refresh token of this family was presented a second time.
    RefreshReuse,
    PasswordChanged,
    RoleChanged,
    UserDisabled,
    UserDeleted,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::LogoutAll => "logout_all",
            RevokeReason::RefreshReuse => "refresh_reuse",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::RoleChanged => "role_changed",
            RevokeReason::UserDisabled => "user_disabled",
            RevokeReason::UserDeleted => "user_deleted",
        }
    }
}

impl FromStr for RevokeReason {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use RevokeReason::*;
        [
            Logout,
            LogoutAll,
            RefreshReuse,
            PasswordChanged,
            RoleChanged,
            UserDisabled,
            UserDeleted,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| UnknownName {
            what: "revoke reason",
            name: s.to_owned(),
        })
    }
}

/// One login: the family of refresh tokens descending from one Login. Only the refresh
/// token whose `jti` is `current_jti` may be exchanged; the store updates this record with
/// compare-and-swap on `(current_jti, generation)` (see `auth::session`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSession {
    pub id: SessionId,
    pub user_id: UserId,
    /// The `jti` of the one refresh token of this family that is still unused.
    pub current_jti: Uuid,
    /// How many times the family has rotated; part of the compare-and-swap.
    pub generation: u64,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: DateTime<Utc>,
    /// Absolute end of the family, however often it rotates.
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<RevokeReason>,
    pub client_address: String,
}

impl AuthSession {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// The outcome recorded in an audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    Ok,
    Denied,
    Error,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Denied => "denied",
            AuditResult::Error => "error",
        }
    }
}

impl FromStr for AuditResult {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [AuditResult::Ok, AuditResult::Denied, AuditResult::Error]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "audit result",
                name: s.to_owned(),
            })
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// No valid credential (a failed login, a denied unauthenticated call).
    Anonymous {
        /// The username a failed login claimed, only when that user exists: people type
        /// passwords into the username field, and those must not land in the audit log.
        claimed: Option<String>,
    },
    User {
        id: UserId,
        username: String,
    },
    ApiKey {
        id: ApiKeyId,
        name: String,
        owner_id: UserId,
    },
    Node {
        id: NodeId,
    },
    /// The control plane acting on its own (e.g. `drs` applying a recommendation under
    /// automation).
    System {
        component: String,
    },
}

impl Actor {
    /// The `actor` column: a username, `apikey:<name>`, `node:<id>`, `system:<component>` or
    /// `anonymous`.
    pub fn display_name(&self) -> String {
        match self {
            Actor::Anonymous { claimed: None } => "anonymous".into(),
            Actor::Anonymous { claimed: Some(u) } => format!("anonymous ({u})"),
            Actor::User { username, .. } => username.clone(),
            Actor::ApiKey { name, .. } => format!("apikey:{name}"),
            Actor::Node { id } => format!("node:{id}"),
            Actor::System { component } => format!("system:{component}"),
        }
    }

    /// The `actor_id` column: the user, key or node id; empty when anonymous.
    pub fn id_string(&self) -> String {
        match self {
            Actor::Anonymous { .. } => String::new(),
            Actor::User { id, .. } => id.to_string(),
            Actor::ApiKey { id, .. } => id.to_string(),
            Actor::Node { id } => id.to_string(),
            Actor::System { .. } => String::new(),
        }
    }
}

/// One audited request. Holds no password, token or key: `detail` is a short, safe text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: AuditId,
    pub time: DateTime<Utc>,
    pub actor: Actor,
    /// The RPC, e.g. `compute.VMService/CreateVM`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub result: AuditResult,
    pub detail: String,
    pub client_address: String,
    pub request_id: String,
    /// The project of a project-scoped request; `None` for cluster-wide actions.
    #[serde(default)]
    pub project_id: Option<ProjectId>,
}

impl AuditEntry {
    /// An entry for something the control plane did on its own (`system:<component>`):
    /// no client address or request id.
    pub fn by_system(
        time: DateTime<Utc>,
        component: &str,
        action: impl Into<String>,
        resource: (&str, String),
        result: AuditResult,
        detail: String,
    ) -> AuditEntry {
        AuditEntry {
            id: AuditId::new(),
            time,
            actor: Actor::System {
                component: component.into(),
            },
            action: action.into(),
            resource_type: resource.0.into(),
            resource_id: resource.1,
            result,
            detail,
            client_address: String::new(),
            request_id: String::new(),
            project_id: None,
        }
    }
}

/// The filter of ListAuditEntries. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Username or actor id.
    pub user: Option<String>,
    pub action: Option<String>,
    pub resource_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub result: Option<AuditResult>,
    /// Only entries of these projects (a project member's view); `None`: everything.
    pub projects: Option<Vec<ProjectId>>,
}

impl AuditFilter {
    pub fn matches(&self, e: &AuditEntry) -> bool {
        let user_ok = self.user.as_deref().is_none_or(|u| {
            u == e.actor.id_string()
                || matches!(&e.actor, Actor::User { username, .. } if username == u)
                || e.actor.display_name() == u
        });
        user_ok
            && self.action.as_deref().is_none_or(|a| a == e.action)
            && self.resource_id.as_deref().is_none_or(|r| r == e.resource_id)
            && self.since.is_none_or(|s| e.time >= s)
            && self.result.is_none_or(|r| r == e.result)
            && self
                .projects
                .as_ref()
                .is_none_or(|ps| e.project_id.is_some_and(|p| ps.contains(&p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin > Role::Operator);
        assert!(Role::Operator > Role::Viewer);
        assert!(Role::Admin > Role::Viewer);
        let mut v = vec![Role::Admin, Role::Viewer, Role::Operator];
        v.sort();
        assert_eq!(v, [Role::Viewer, Role::Operator, Role::Admin]);
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&format!("\"{r}\"")).unwrap(), r);
        }
        assert_eq!(" Admin ".parse::<Role>().unwrap(), Role::Admin);
        let err = Role::parse("role", "root").unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::InvalidArgument);
        assert!(err.message.starts_with("role:"), "{}", err.message);
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }

    #[test]
    fn permission_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in Permission::ALL {
            assert!(seen.insert(p.as_str()), "duplicate name {p}");
            let (resource, verb) = p.as_str().split_once(':').expect("resource:verb");
            assert!(!resource.is_empty() && !verb.is_empty());
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Permission>(&json).unwrap(), p);
        }
        assert_eq!(Permission::VmCreate.as_str(), "vm:create");
        assert_eq!(Permission::AuditRead.as_str(), "audit:read");
        assert!(Permission::parse("permission", "vm:fly").is_err());
        assert!(serde_json::from_str::<Permission>("\"vm:fly\"").is_err());
    }

    #[test]
    fn usernames_are_normalized_and_checked() {
        assert_eq!(normalize_username("  Admin "), "admin");
        for ok in ["admin", "ci-bot", "j.doe_2", "0ps"] {
            validate_username("username", ok).unwrap();
        }
        for bad in ["", "Admin", "-x", ".x", "a b", "ädmin", "a/b", &"a".repeat(65)] {
            let err = validate_username("username", bad).unwrap_err();
            assert!(err.message.starts_with("username:"), "{bad:?}: {}", err.message);
        }
    }

    #[test]
    fn emails_are_checked_loosely() {
        for ok in ["", "a@b", "ops@example.com"] {
            validate_email("email", ok).unwrap();
        }
        for bad in ["nope", "@x", "x@", "a@b@c", "a b@c", "a@b\n"] {
            assert!(validate_email("email", bad).is_err(), "{bad:?}");
        }
    }

    fn user() -> User {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        User {
            id: UserId::new(),
            username: "alice".into(),
            email: "alice@example.com".into(),
            role: Role::Operator,
            disabled: false,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$SECRETHASH".into(),
            token_version: 7,
            created_at: t,
            updated_at: t,
            password_changed_at: t,
            last_login_at: None,
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let u = user();
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("SECRETHASH") && !dbg.contains("argon2"), "{dbg}");
        assert!(dbg.contains("alice"));
        let k = ApiKey {
            id: ApiKeyId::new(),
            name: "ci".into(),
            owner_id: u.id,
            role: Role::Viewer,
            project_id: ProjectId::DEFAULT,
            prefix: "abcd1234".into(),
            secret_hash: "deadbeefcafe".into(),
            created_at: u.created_at,
            expires_at: u.created_at,
            last_used_at: None,
            revoked_at: None,
        };
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("deadbeefcafe"), "{dbg}");
        assert!(dbg.contains("abcd1234"));
    }

    #[test]
    fn invalidate_tokens_moves_the_version() {
        let mut u = user();
        u.invalidate_tokens();
        assert_eq!(u.token_version, 8);
        u.token_version = u64::MAX;
        u.invalidate_tokens();
        assert_eq!(u.token_version, 0, "wraps instead of panicking");
    }

    #[test]
    fn api_key_activity_follows_expiry_and_revocation() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let mut k = ApiKey {
            id: ApiKeyId::new(),
            name: "ci".into(),
            owner_id: UserId::new(),
            role: Role::Viewer,
            project_id: ProjectId::DEFAULT,
            prefix: "abcd1234".into(),
            secret_hash: String::new(),
            created_at: t,
            expires_at: t + chrono::Duration::days(1),
            last_used_at: None,
            revoked_at: None,
        };
        assert!(k.is_active(t));
        assert!(!k.is_active(t + chrono::Duration::days(1)));
        k.revoked_at = Some(t);
        assert!(!k.is_active(t));
    }

    #[test]
    fn audit_filter_matches_by_every_field() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let uid = UserId::new();
        let e = AuditEntry {
            id: AuditId::new(),
            time: t,
            actor: Actor::User {
                id: uid,
                username: "alice".into(),
            },
            action: "compute.VMService/CreateVM".into(),
            resource_type: "vm".into(),
            resource_id: "vm-1".into(),
            result: AuditResult::Denied,
            detail: String::new(),
            client_address: "10.0.0.1".into(),
            request_id: "r1".into(),
            project_id: None,
        };
        assert!(AuditFilter::default().matches(&e));
        assert!(
            AuditFilter {
                user: Some("alice".into()),
                ..Default::default()
            }
            .matches(&e)
        );
        assert!(
            AuditFilter {
                user: Some(uid.to_string()),
                ..Default::default()
            }
            .matches(&e)
        );
        assert!(
            !AuditFilter {
                user: Some("bob".into()),
                ..Default::default()
            }
            .matches(&e)
        );
        assert!(
            !AuditFilter {
                result: Some(AuditResult::Ok),
                ..Default::default()
            }
            .matches(&e)
        );
        assert!(
            AuditFilter {
                since: Some(t),
                ..Default::default()
            }
            .matches(&e)
        );
        assert!(
            !AuditFilter {
                since: Some(t + chrono::Duration::seconds(1)),
                ..Default::default()
            }
            .matches(&e)
        );
        assert!(
            !AuditFilter {
                action: Some("x".into()),
                ..Default::default()
            }
            .matches(&e)
        );
        assert!(
            !AuditFilter {
                resource_id: Some("vm-2".into()),
                ..Default::default()
            }
            .matches(&e)
        );
        let key = Actor::ApiKey {
            id: ApiKeyId::new(),
            name: "ci".into(),
            owner_id: uid,
        };
        assert_eq!(key.display_name(), "apikey:ci");
        assert_eq!(Actor::Anonymous { claimed: None }.id_string(), "");
    }

    #[test]
    fn reasons_and_results_round_trip() {
        for r in [AuditResult::Ok, AuditResult::Denied, AuditResult::Error] {
            assert_eq!(r.as_str().parse::<AuditResult>().unwrap(), r);
        }
        use RevokeReason::*;
        for r in [
            Logout,
            LogoutAll,
            RefreshReuse,
            PasswordChanged,
            RoleChanged,
            UserDisabled,
            UserDeleted,
        ] {
            assert_eq!(r.as_str().parse::<RevokeReason>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.as_str()));
        }
    }
}

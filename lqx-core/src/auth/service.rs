//! The AuthService application logic, one module per concern: the per-request credential
//! check (`authenticate`, with its cache), sessions (`sessions`: login, refresh, logout),
//! user administration (`users`), API keys (`api_keys`), the audit log (`audit_log`) and
//! start-up (`bootstrap`: the first admin, the shared signing key). The gRPC/Connect layer
//! only decodes, calls these and encodes.
//!
//! Rule, in plain words:
//! - Every request's credential is checked against the store (session, user, key). The
//!   session and user read for an access token is cached for at most `session_recheck`
//!   (1 s by default), and every change to sessions or users made through this replica
//!   clears the cache at once, so logout, password and role changes, disabling and deleting
//!   take effect on the next request here, and within `session_recheck` on other replicas.
//!   That costs at most one indexed read per session per `session_recheck`.
//! - Login: throttle first (no password check while waiting), then one argon2 verification
//!   whether the user exists or not, then a new session. Failed logins name the user in the
//!   audit log only when it exists.
//! - Refresh: see [`super::session`]; persisted with compare-and-swap.
//! - A change to a user that should end its sessions (password, role, disable, delete)
//!   bumps its token version and revokes its sessions.
//! - The last enabled admin cannot be demoted, disabled or deleted, and nobody deletes
//!   themselves: an installation must never lock itself out.
//! - API keys act with the lower of their own role and their owner's current role, and die
//!   with their owner (disabled or deleted).

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, LazyLock, Mutex},
};

use chrono::{DateTime, Utc};

use super::{
    AuthError, Secret,
    apikey::{self, Bearer},
    audit::AuditNote,
    jwt::{Claims, JwtConfig, JwtManager, SigningKey, TokenPair, TokenSubject},
    password, rbac,
    rbac::{Access, Caller, Scope},
    session::{self, RefreshDecision, SessionPolicy},
    throttle::{LoginThrottle, ThrottlePolicy},
};
use crate::model::{
    Actor, ApiKey, ApiKeyId, AuditEntry, AuditFilter, AuthSession, Permission, ProjectId, RevokeReason, Role,
    SessionId, User, UserId, normalize_username, validate_email, validate_username,
};
use crate::store::{AuditPage, Store, UserPage};
use crate::{Error, Result};

mod api_keys;
mod audit_log;
mod authenticate;
mod bootstrap;
mod sessions;
mod users;

use authenticate::Checks;
pub use bootstrap::{shared_signing_key, write_private_file};

/// The username of the account created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";
/// The documented development password `--dev` may give the bootstrap admin (loopback only).
pub const DEV_ADMIN_PASSWORD: &str = "lqx-dev-password";
/// File in the data dir holding a generated bootstrap password (mode 0600).
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// Key of the shared signing key in the store's kv table (PostgreSQL replicas).
pub const SIGNING_KEY_KV: &str = "auth.jwt_signing_key";
/// Length of generated passwords.
pub const GENERATED_PASSWORD_LEN: usize = 24;
/// An API key's last-used time is written at most this often.
pub const KEY_TOUCH_GRANULARITY_SECS: i64 = 60;

/// Settings of the auth service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    pub jwt: JwtConfig,
    pub session: SessionPolicy,
    pub throttle: ThrottlePolicy,
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
        }
    }
}

/// The verified caller of a request, put into the request's extensions by the auth layer.
/// Services read it with `req.extensions().get::<Principal>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub email: String,
    /// The global role in effect (for an API key: the lower of the key's and its owner's).
    pub role: Role,
    /// The projects the caller may act in, with its role in each (for an API key: only the
    /// key's project, with the lower of the key's role and its owner's there). A global
    /// admin (user session) is admin in every project, listed or not.
    pub projects: Vec<(ProjectId, Role)>,
    pub method: AuthMethod,
    pub api_key_id: Option<ApiKeyId>,
    pub api_key_name: Option<String>,
    /// The login session of a JWT.
    pub session_id: Option<SessionId>,
    /// When the credential expires.
    pub expires_at: DateTime<Utc>,
}

impl Principal {
    /// The caller as the RBAC table sees it for an RPC of `scope`: its global role for
    /// cluster and account RPCs; for project RPCs its highest project role (the handler then
    /// checks the role in the project the request names, see [`Principal::project_access`]).
    pub fn caller_for(&self, scope: Scope) -> Caller {
        let role = match scope {
            Scope::Project => self.best_project_role(),
            Scope::Cluster | Scope::Account => self.role,
        };
        match self.method {
            AuthMethod::Jwt => Caller::User(role),
            AuthMethod::ApiKey => Caller::ApiKey(role),
        }
    }

    pub fn caller(&self) -> Caller {
        self.caller_for(Scope::Cluster)
    }

    fn cluster_admin_everywhere(&self) -> bool {
        self.method == AuthMethod::Jwt && self.role == Role::Admin
    }

    fn best_project_role(&self) -> Role {
        if self.cluster_admin_everywhere() {
            return Role::Admin;
        }
        self.projects.iter().map(|(_, r)| *r).max().unwrap_or(Role::None)
    }

    /// The caller's role in `project`; `None` when it may not even see the project.
    pub fn role_in(&self, project: ProjectId) -> Option<Role> {
        if self.cluster_admin_everywhere() {
            return Some(Role::Admin);
        }
        self.projects.iter().find(|(p, _)| *p == project).map(|(_, r)| *r)
    }

    /// Whether the caller holds `perm` in `project`.
    pub fn can_in(&self, project: ProjectId, perm: Permission) -> bool {
        self.role_in(project).is_some_and(|r| match self.method {
            AuthMethod::Jwt => rbac::role_allows(r, perm),
            AuthMethod::ApiKey => rbac::api_key_allows(r, perm),
        })
    }

    /// The projects where the caller holds `perm`; `None` means every project (a global
    /// admin). For list filters.
    pub fn projects_with(&self, perm: Permission) -> Option<Vec<ProjectId>> {
        if self.cluster_admin_everywhere() {
            return None;
        }
        Some(
            self.projects
                .iter()
                .map(|(p, _)| *p)
                .filter(|p| self.can_in(*p, perm))
                .collect(),
        )
    }

    /// Whether `project` may be acted in with `perm`: a project the caller is not a member of
    /// is not found (as if it did not exist: `what`/`name` make the message), a member
    /// without the permission is denied.
    pub fn project_access(&self, project: ProjectId, name: &str, perm: Permission) -> Result<()> {
        match self.role_in(project) {
            None => Err(Error::not_found("project", name)),
            Some(_) if self.can_in(project, perm) => Ok(()),
            Some(_) => Err(AuthError::PermissionDenied { permission: perm }.into()),
        }
    }

    /// Whether the caller may see an event: project events by its role in their project,
    /// cluster events (no project) by its global role.
    pub fn sees_event(&self, e: &crate::model::Event) -> bool {
        let Some(perm) = rbac::read_permission_for_resource(e.resource_type.as_str()) else {
            return self.can(Permission::SettingsManage);
        };
        match e.project_id {
            Some(p) => self.can_in(p, perm),
            None => self.can(perm),
        }
    }

    pub fn actor(&self) -> Actor {
        match (self.method, self.api_key_id) {
            (AuthMethod::ApiKey, Some(id)) => Actor::ApiKey {
                id,
                name: self.api_key_name.clone().unwrap_or_default(),
                owner_id: self.user_id,
            },
            _ => Actor::User {
                id: self.user_id,
                username: self.username.clone(),
            },
        }
    }

    /// Whether this caller holds `p` (API keys never hold `apikey:manage`).
    pub fn can(&self, p: Permission) -> bool {
        match self.method {
            AuthMethod::Jwt => rbac::role_allows(self.role, p),
            AuthMethod::ApiKey => rbac::api_key_allows(self.role, p),
        }
    }

    fn require(&self, p: Permission) -> Result<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied { permission: p }.into())
        }
    }
}

/// A verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    User(Principal),
    /// A well-formed node credential; the agent service verifies it.
    Node,
}

/// What the auth layer decided about one request.
#[derive(Debug)]
pub struct Admission {
    /// The verified user or key, when the RPC needed one and it verified (also when the
    /// table then refused it: the audit log names who was refused).
    pub principal: Option<Principal>,
    /// What the RPC requires, or the refusal.
    pub verdict: Result<Access>,
}

impl Admission {
    /// The principal if admitted, the refusal otherwise.
    pub fn into_result(self) -> Result<Option<Principal>> {
        self.verdict.map(|_| self.principal)
    }
}

/// Services and methods declared in proto/.
static DECLARED: LazyLock<(HashSet<String>, HashSet<String>)> = LazyLock::new(|| {
    let methods: HashSet<String> = rbac::declared_method_paths().into_iter().collect();
    let services = methods
        .iter()
        .filter_map(|m| m.rsplit_once('/').map(|(svc, _)| svc.to_string()))
        .collect();
    (services, methods)
});

/// True for `/<a service declared in proto/>/<a method it does not have>`.
pub fn is_missing_method_of_declared_service(method_path: &str) -> bool {
    let (services, methods) = &*DECLARED;
    method_path
        .rsplit_once('/')
        .is_some_and(|(svc, _)| services.contains(svc) && !methods.contains(method_path))
}

/// A login or refresh: the new pair and the user it is for.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub pair: TokenPair,
    pub user: User,
}

/// WhoAmI.
#[derive(Debug, Clone)]
pub struct WhoAmI {
    pub user: User,
    pub permissions: Vec<Permission>,
    pub method: AuthMethod,
    pub api_key_id: Option<ApiKeyId>,
    pub expires_at: DateTime<Utc>,
}

/// CreateUser.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: Secret,
    /// Empty: viewer.
    pub role: String,
    pub request_id: Option<String>,
}

/// UpdateUser: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub email: Option<String>,
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// Where the bootstrap admin's password comes from.
#[derive(Debug, Clone)]
pub enum BootstrapPassword {
    /// `LQX_BOOTSTRAP_ADMIN_PASSWORD`.
    Given(Secret),
    /// `--dev` on loopback: [`DEV_ADMIN_PASSWORD`].
    Dev,
    /// A random password, printed once and written to the data dir.
    Generated,
}

/// What the bootstrap did.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub username: String,
    /// The password to show once (generated or dev); `None` when it was given.
    pub password: Option<Secret>,
    /// Where a generated password was written.
    pub file: Option<PathBuf>,
}

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The auth service. Shared (`Arc`) by the interceptor and the AuthService RPCs.
pub struct AuthService {
    store: Store,
    jwt: JwtManager,
    settings: AuthSettings,
    throttle: Mutex<LoginThrottle>,
    started: tokio::time::Instant,
    clock: Clock,
    /// API key id -> when its last use was written (by this replica).
    key_touched: Mutex<HashMap<ApiKeyId, DateTime<Utc>>>,
    /// Recent session+user reads for access tokens, reused for `session.recheck`.
    checked: Mutex<Checks>,
    /// How many refusals of callers without a credential are recorded one by one.
    denials: Mutex<super::audit_volume::DenialLimiter>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("jwt", &self.jwt)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuthService {
    pub fn new(store: Store, key: &SigningKey, settings: AuthSettings) -> Self {
        AuthService {
            jwt: JwtManager::new(key, settings.jwt.clone()),
            throttle: Mutex::new(LoginThrottle::new(settings.throttle)),
            settings,
            store,
            started: tokio::time::Instant::now(),
            clock: Arc::new(Utc::now),
            key_touched: Mutex::new(HashMap::new()),
            checked: Mutex::new(Checks::default()),
            denials: Mutex::new(super::audit_volume::DenialLimiter::default()),
        }
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn jwt(&self) -> &JwtManager {
        &self.jwt
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::audit::AuditNote;
    use crate::auth::jwt::TokenType;

    async fn service(dir: &Path) -> AuthService {
        let store = Store::open(dir.join("auth.db").to_str().unwrap()).await.unwrap();
        AuthService::new(
            store,
            &SigningKey::from_bytes(vec![7; 32]).unwrap(),
            AuthSettings::default(),
        )
    }

    async fn admin(svc: &AuthService, dir: &Path) -> Principal {
        svc.bootstrap_admin(BootstrapPassword::Given(Secret::new("correct horse battery")), dir)
            .await
            .unwrap()
            .unwrap();
        let out = svc
            .login(
                "admin",
                Secret::new("correct horse battery"),
                None,
                &AuditNote::default(),
            )
            .await
            .unwrap();
        principal(svc, out.pair.access_token.expose()).await
    }

    async fn principal(svc: &AuthService, token: &str) -> Principal {
        match svc.authenticate(Some(&format!("Bearer {token}"))).await.unwrap() {
            Credential::User(p) => p,
            other => panic!("{other:?}"),
        }
    }

    /// Retention removes by age and by count, and the removal is itself on record; a flood of
    /// anonymous refusals writes a bounded number of entries plus one summary per address.
    #[tokio::test]
    async fn audit_retention_and_anonymous_refusals_are_bounded() {
        use crate::auth::audit_volume::{PRUNE_ACTION, Retention, SUPPRESSED_ACTION};
        use crate::model::{Actor, AuditFilter, AuditId, AuditResult};
        let dir = tempfile::tempdir().unwrap();
        let mut svc = service(dir.path()).await;
        let now = Utc::now();
        let entry = |age_days: i64, result: AuditResult| AuditEntry {
            id: AuditId::new(),
            time: now - chrono::Duration::days(age_days),
            actor: Actor::Anonymous { claimed: None },
            action: "compute.VMService/CreateVM".into(),
            resource_type: String::new(),
            resource_id: String::new(),
            result,
            detail: String::new(),
            client_address: "10.0.0.9".into(),
            request_id: String::new(),
            project_id: None,
        };
        for age in [400, 300, 10, 5, 1] {
            svc.record_audit(&entry(age, AuditResult::Ok)).await.unwrap();
        }
        let store = svc.store().clone();
        let count = |filter: AuditFilter| {
            let store = store.clone();
            async move { store.list_audit(&filter, 1000, "").await.unwrap().entries }
        };
        let removed = svc
            .prune_audit(&Retention {
                max_age: Some(std::time::Duration::from_secs(365 * 86_400)),
                max_entries: Some(3),
            })
            .await
            .unwrap();
        assert_eq!(removed, 2, "one too old, one beyond the newest 3");
        let left = count(AuditFilter::default()).await;
        assert_eq!(left.len(), 4, "3 kept + the pruning's own entry");
        let prune = left.iter().find(|e| e.action == PRUNE_ACTION).expect("pruning audited");
        assert!(prune.detail.contains("removed 2"), "{}", prune.detail);
        // Nothing to remove: no new entry.
        assert_eq!(svc.prune_audit(&Retention::default()).await.unwrap(), 0);
        assert_eq!(count(AuditFilter::default()).await.len(), 4);

        let mut written = 0;
        for _ in 0..500 {
            written += usize::from(svc.record_request_audit(&entry(0, AuditResult::Denied)).await.unwrap());
        }
        assert_eq!(written, 20, "per-address allowance per minute");
        // An authenticated caller's refusals are always recorded.
        let mut user = entry(0, AuditResult::Denied);
        user.actor = Actor::System { component: "t".into() };
        assert!(svc.record_request_audit(&user).await.unwrap());
        assert_eq!(svc.flush_suppressed_denials().await.unwrap(), 0, "window not over yet");
        // A minute later (on the service's monotonic clock).
        svc.started -= std::time::Duration::from_secs(61);
        assert_eq!(svc.flush_suppressed_denials().await.unwrap(), 1);
        let summaries = count(AuditFilter {
            action: Some(SUPPRESSED_ACTION.into()),
            ..Default::default()
        })
        .await;
        assert_eq!(summaries.len(), 1);
        assert!(summaries[0].detail.starts_with("480 more"), "{}", summaries[0].detail);
        assert_eq!(summaries[0].client_address, "10.0.0.9");
    }

    #[tokio::test]
    async fn login_refresh_reuse_and_user_changes() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        let admin = admin(&svc, dir.path()).await;
        assert_eq!(admin.role, Role::Admin);
        // A second bootstrap does nothing.
        assert!(
            svc.bootstrap_admin(BootstrapPassword::Generated, dir.path())
                .await
                .unwrap()
                .is_none()
        );
        let note = AuditNote::default();
        svc.create_user(
            &admin,
            NewUser {
                username: "Alice".into(),
                email: "alice@example.com".into(),
                password: Secret::new("wonderland-secret"),
                role: "operator".into(),
                request_id: Some("r1".into()),
            },
            &note,
        )
        .await
        .unwrap();
        // Same request id: same user, no error.
        let again = svc
            .create_user(
                &admin,
                NewUser {
                    username: "alice".into(),
                    email: String::new(),
                    password: Secret::new("wonderland-secret"),
                    role: "operator".into(),
                    request_id: Some("r1".into()),
                },
                &note,
            )
            .await
            .unwrap();
        assert_eq!(again.username, "alice");

        let bad = svc
            .login("alice", Secret::new("wrong-password!"), None, &note)
            .await
            .unwrap_err();
        assert_eq!(bad.kind, crate::ErrorKind::Unauthenticated);
        assert_eq!(
            note.fields().actor,
            Some(Actor::Anonymous {
                claimed: Some("alice".into())
            })
        );
        let unknown = svc
            .login("mallory", Secret::new("wrong-password!"), None, &note)
            .await
            .unwrap_err();
        assert_eq!(unknown.message, bad.message, "unknown user answers alike");

        let l1 = svc
            .login("alice", Secret::new("wonderland-secret"), None, &note)
            .await
            .unwrap();
        let rt1 = l1.pair.refresh_token.clone();
        let l2 = svc.refresh(rt1.expose(), &note).await.unwrap();
        assert_eq!(l2.pair.refresh.typ, TokenType::Refresh);
        // Replaying RT1 revokes the family: RT2 and the new access token die too.
        let e = svc.refresh(rt1.expose(), &note).await.unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unauthenticated);
        assert!(note.fields().detail.unwrap().contains("reuse"));
        assert!(svc.refresh(l2.pair.refresh_token.expose(), &note).await.is_err());
        assert!(
            svc.authenticate(Some(&format!("Bearer {}", l2.pair.access_token.expose())))
                .await
                .is_err()
        );

        // A role change ends alice's sessions at once.
        let l3 = svc
            .login("alice", Secret::new("wonderland-secret"), None, &note)
            .await
            .unwrap();
        let alice = principal(&svc, l3.pair.access_token.expose()).await;
        assert_eq!(alice.role, Role::Operator);
        svc.update_user(
            &admin,
            "alice",
            UserChange {
                role: Some("viewer".into()),
                ..Default::default()
            },
            &note,
        )
        .await
        .unwrap();
        let e = svc
            .authenticate(Some(&format!("Bearer {}", l3.pair.access_token.expose())))
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unauthenticated);

        // The last admin stays.
        let e = svc
            .update_user(
                &admin,
                "admin",
                UserChange {
                    disabled: Some(true),
                    ..Default::default()
                },
                &note,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::FailedPrecondition);
        let e = svc.delete_user(&admin, "admin", &note).await.unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::FailedPrecondition);
    }

    #[tokio::test]
    async fn api_keys_are_capped_by_role_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        let admin = admin(&svc, dir.path()).await;
        let note = AuditNote::default();
        let (key, secret) = svc
            .create_api_key(&admin, "ci", "operator", "", 0, &note)
            .await
            .unwrap();
        assert!(!format!("{key:?}").contains(secret.expose()));
        let p = principal(&svc, secret.expose()).await;
        assert_eq!(
            (p.method, p.role, p.api_key_id),
            (AuthMethod::ApiKey, Role::Operator, Some(key.id))
        );
        assert!(!p.can(Permission::ApiKeyManage), "keys cannot mint keys");
        let listed = svc.list_api_keys(&admin, false).await.unwrap();
        assert!(listed[0].last_used_at.is_some(), "use is recorded");
        svc.revoke_api_key(&admin, &key.id.to_string(), &note).await.unwrap();
        let e = svc
            .authenticate(Some(&format!("Bearer {}", secret.expose())))
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unauthenticated);

        // An operator cannot make an admin key.
        svc.create_user(
            &admin,
            NewUser {
                username: "op".into(),
                email: String::new(),
                password: Secret::new("operator-password"),
                role: "operator".into(),
                request_id: None,
            },
            &note,
        )
        .await
        .unwrap();
        let l = svc
            .login("op", Secret::new("operator-password"), None, &note)
            .await
            .unwrap();
        let op = principal(&svc, l.pair.access_token.expose()).await;
        let e = svc.create_api_key(&op, "x", "admin", "", 0, &note).await.unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::PermissionDenied);
        // Nor see or revoke another user's key.
        let e = svc.revoke_api_key(&op, &key.id.to_string(), &note).await.unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::NotFound);
        assert!(svc.list_api_keys(&op, true).await.is_err());
    }

    #[tokio::test]
    async fn admission_keeps_unauthenticated_and_denied_apart() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        let _ = admin(&svc, dir.path()).await;
        let note = AuditNote::default();
        let l = svc
            .login("admin", Secret::new("correct horse battery"), None, &note)
            .await
            .unwrap();
        let bearer = format!("Bearer {}", l.pair.access_token.expose());
        let create = "/limiquantix.compute.v1.VMService/CreateVM";
        let ok = svc.admit(create, Some(&bearer)).await.into_result().unwrap();
        assert_eq!(ok.unwrap().username, "admin");
        // A refusal by the table still names who was refused.
        let denied = svc
            .admit("/limiquantix.compute.v1.DiskService/FormatDisk", Some(&bearer))
            .await;
        assert_eq!(denied.principal.as_ref().map(|p| p.username.as_str()), Some("admin"));
        assert!(denied.verdict.is_err());
        let e = svc.admit(create, None).await.into_result().unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unauthenticated);
        let e = svc
            .admit(create, Some("Bearer garbage"))
            .await
            .into_result()
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unauthenticated);
        // Refresh token as access token.
        let rt = format!("Bearer {}", l.pair.refresh_token.expose());
        let e = svc.admit(create, Some(&rt)).await.into_result().unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unauthenticated);
        // Not in the table: denied, even for an admin.
        let e = svc
            .admit("/limiquantix.compute.v1.DiskService/FormatDisk", Some(&bearer))
            .await
            .into_result()
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::PermissionDenied);
        // A method a known service lacks goes on to the router (unimplemented).
        assert!(is_missing_method_of_declared_service(
            "/limiquantix.compute.v1.VMService/FormatDisk"
        ));
        assert!(!is_missing_method_of_declared_service(create));
        assert!(!is_missing_method_of_declared_service(
            "/limiquantix.compute.v1.DiskService/FormatDisk"
        ));
        svc.admit("/limiquantix.compute.v1.VMService/FormatDisk", None)
            .await
            .into_result()
            .unwrap();
        // Login with a garbage token attached still works.
        svc.admit("/limiquantix.auth.v1.AuthService/Login", Some("Bearer garbage"))
            .await
            .into_result()
            .unwrap();
        // Logout ends the session for every later request.
        let p = ok_principal(&svc, &bearer).await;
        svc.logout(&p, "", false).await.unwrap();
        let e = svc.admit(create, Some(&bearer)).await.into_result().unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Unauthenticated);
    }

    async fn ok_principal(svc: &AuthService, bearer: &str) -> Principal {
        match svc.authenticate(Some(bearer)).await.unwrap() {
            Credential::User(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn generated_bootstrap_password_is_written_private() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        let b = svc
            .bootstrap_admin(BootstrapPassword::Generated, dir.path())
            .await
            .unwrap()
            .unwrap();
        let pw = b.password.unwrap();
        assert!(pw.expose().len() >= GENERATED_PASSWORD_LEN);
        let file = b.file.unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), pw.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        svc.login("admin", pw, None, &AuditNote::default()).await.unwrap();
    }

    #[tokio::test]
    async fn weak_given_bootstrap_password_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path()).await;
        for bad in ["tiny", " Admin "] {
            let e = svc
                .bootstrap_admin(BootstrapPassword::Given(Secret::new(bad)), dir.path())
                .await
                .unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
            assert!(!e.message.contains(bad), "{}", e.message);
        }
        assert_eq!(svc.store().count_users().await.unwrap(), 0);
    }
}

//! The AuthService application logic: login, refresh, logout, users, API keys, audit, and
//! the per-request credential check. The gRPC/Connect layer only decodes, calls these and
//! encodes.
//!
//! Rule, in plain words:
//! - Every request's credential is checked against the store (session, user, key) with no
//!   cache, so logout, password and role changes, disabling and deleting take effect on the
//!   very next request, on every replica. That costs one indexed read per request.
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

#[derive(Default)]
struct Checks {
    /// Bumped by every change to sessions or users: a read that began before a change is
    /// not kept after it.
    generation: u64,
    entries: HashMap<SessionId, Checked>,
}

/// A session and its user as read for an access-token check, and when.
struct Checked {
    session: Option<AuthSession>,
    user: Option<User>,
    at: tokio::time::Instant,
}

/// Drops the cached session checks when it goes out of scope, whatever path a change to
/// sessions or users takes (a failed step may still have committed earlier ones).
struct ForgetChecks<'a>(&'a Mutex<Checks>);

impl Drop for ForgetChecks<'_> {
    fn drop(&mut self) {
        let mut c = lock(self.0);
        c.generation += 1;
        c.entries.clear();
    }
}

/// Entries kept at most; past this the cache starts over (a burst of logins must not grow
/// it without bound).
const CHECKED_MAX: usize = 100_000;

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

    // ---- the per-request check ------------------------------------------------------

    /// Verifies an `Authorization` header value. No header is `Anonymous`; a header that
    /// does not verify is an error (unauthenticated).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Credential> {
        let bearer = match apikey::parse_authorization(authorization) {
            Ok(b) => b,
            Err(AuthError::MissingCredentials) => return Ok(Credential::Anonymous),
            Err(e) => return Err(e.into()),
        };
        let now = self.now();
        match bearer {
            Bearer::Jwt(token) => {
                let claims = self.jwt.verify_access(token, now)?;
                let (s, u) = self.session_and_user(&claims).await?;
                session::check_access(&claims, s.as_ref(), u.as_ref(), now)?;
                let u = u.ok_or(AuthError::SessionRevoked)?;
                let projects = self.store.project_roles(u.id).await?;
                Ok(Credential::User(Principal {
                    projects,
                    user_id: u.id,
                    username: u.username,
                    email: u.email,
                    role: u.role,
                    method: AuthMethod::Jwt,
                    api_key_id: None,
                    api_key_name: None,
                    session_id: Some(claims.sid),
                    expires_at: claims.expires_at(),
                }))
            }
            Bearer::ApiKey { prefix, secret } => {
                let key = self
                    .store
                    .get_api_key_by_prefix(prefix)
                    .await?
                    .ok_or(AuthError::InvalidApiKey)?;
                apikey::check_key(&key, secret, now)?;
                let owner = match self.store.get_user(key.owner_id).await? {
                    Some(o) if !o.disabled => o,
                    // The secret checked out: the key is real, its owner may not act.
                    Some(o) => return Err(AuthError::AccountDisabled { username: o.username }.into()),
                    None => return Err(AuthError::InvalidApiKey.into()),
                };
                self.touch_key(key.id, now).await;
                // A key acts in its own project only.
                let owner_there = if owner.role == Role::Admin {
                    Some(Role::Admin)
                } else {
                    self.store
                        .project_roles(owner.id)
                        .await?
                        .into_iter()
                        .find(|(p, _)| *p == key.project_id)
                        .map(|(_, r)| r)
                };
                let projects = owner_there
                    .map(|r| vec![(key.project_id, r.min(key.role))])
                    .unwrap_or_default();
                Ok(Credential::User(Principal {
                    projects,
                    user_id: owner.id,
                    username: owner.username,
                    email: owner.email,
                    role: key.role.min(owner.role),
                    method: AuthMethod::ApiKey,
                    api_key_id: Some(key.id),
                    api_key_name: Some(key.name),
                    session_id: None,
                    expires_at: key.expires_at,
                }))
            }
            Bearer::NodeCredential { .. } => Ok(Credential::Node),
        }
    }

    /// The session and user of an access token: a recent read (within `session.recheck`)
    /// or a fresh one. Every change this service makes to sessions or users drops the
    /// reads ([`Self::forget_checks`]), so only other replicas' changes can wait.
    async fn session_and_user(&self, claims: &Claims) -> Result<(Option<AuthSession>, Option<User>)> {
        let recheck = self.settings.session.recheck;
        let generation = {
            let c = lock(&self.checked);
            if let Some(e) = c.entries.get(&claims.sid)
                && e.at.elapsed() < recheck
                && e.user.as_ref().is_none_or(|u| u.id == claims.sub)
            {
                return Ok((e.session.clone(), e.user.clone()));
            }
            c.generation
        };
        let at = tokio::time::Instant::now();
        let (s, u) = self.store.session_and_user(claims.sid, claims.sub).await?;
        if !recheck.is_zero() {
            let mut c = lock(&self.checked);
            if c.generation == generation {
                if c.entries.len() >= CHECKED_MAX {
                    c.entries.clear();
                }
                let entry = Checked {
                    session: s.clone(),
                    user: u.clone(),
                    at,
                };
                c.entries.insert(claims.sid, entry);
            }
        }
        Ok((s, u))
    }

    /// A guard that drops every cached session check when the change it covers is over.
    fn changing_sessions(&self) -> ForgetChecks<'_> {
        ForgetChecks(&self.checked)
    }

    /// Drops every cached session check now (a change to users made outside this service,
    /// e.g. by an SSO login updating a role).
    pub(crate) fn forget_session_checks(&self) {
        drop(self.changing_sessions());
    }

    async fn touch_key(&self, id: ApiKeyId, now: DateTime<Utc>) {
        let every = chrono::Duration::seconds(KEY_TOUCH_GRANULARITY_SECS);
        let due = lock(&self.key_touched).get(&id).is_none_or(|t| now - *t >= every);
        if !due {
            return;
        }
        match self.store.touch_api_key(id, now, every).await {
            Ok(_) => {
                let mut m = lock(&self.key_touched);
                if m.len() > 100_000 {
                    m.clear();
                }
                m.insert(id, now);
            }
            // Bookkeeping only: the request goes on.
            Err(e) => tracing::warn!(key = %id, error = %e, "recording API key use failed"),
        }
    }

    /// The whole decision for one request: what the RPC needs, the caller's credential
    /// (only verified when the RPC needs one), and the table's verdict. Errors keep
    /// unauthenticated (no or bad credential) apart from permission_denied (not enough).
    pub async fn admit(&self, method_path: &str, authorization: Option<&str>) -> Admission {
        match rbac::required(method_path) {
            // A stale token sent along with a login must not make the login fail.
            Some(access @ (Access::Public | Access::JoinToken)) => {
                return Admission {
                    principal: None,
                    verdict: Ok(access),
                };
            }
            // A method that a service of proto/ does not have reaches no handler: let the
            // router answer unimplemented. Unknown services stay denied (deny by default).
            None if is_missing_method_of_declared_service(method_path) => {
                // Still named in the audit entry when the caller has a valid credential.
                let principal = match self.authenticate(authorization).await {
                    Ok(Credential::User(p)) => Some(p),
                    _ => None,
                };
                return Admission {
                    principal,
                    verdict: Ok(Access::Public),
                };
            }
            _ => {}
        }
        let (caller, principal) = match self.authenticate(authorization).await {
            Ok(Credential::Anonymous) => (Caller::Anonymous, None),
            Ok(Credential::Node) => (Caller::Node, None),
            Ok(Credential::User(p)) => (p.caller_for(rbac::scope(method_path)), Some(p)),
            Err(e) => {
                return Admission {
                    principal: None,
                    verdict: Err(e),
                };
            }
        };
        // An RPC missing from the table is refused here too (after the credential check,
        // so that the audit entry names who tried).
        Admission {
            verdict: rbac::authorize(method_path, caller).map_err(Into::into),
            principal,
        }
    }

    // ---- sessions -------------------------------------------------------------------

    /// Login. `client` is the client's address (throttling, session record).
    pub async fn login(
        &self,
        username: &str,
        password: Secret,
        client: Option<IpAddr>,
        note: &AuditNote,
    ) -> Result<LoginOutcome> {
        let name = normalize_username(username);
        if name.is_empty() || password.expose().is_empty() {
            return Err(Error::invalid("username", "username and password are required"));
        }
        lock(&self.throttle).begin(&name, client, self.now_ms())?;
        // A name that cannot be a username is looked up as nobody (same cost, same answer).
        let user = if validate_username("username", &name).is_ok() {
            self.store.get_user_by_name(&name).await?
        } else {
            None
        };
        let ok =
            password::verify_password_async(password.clone(), user.as_ref().map(|u| u.password_hash.clone())).await?;
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            // Said only to whoever knows the password: it reveals nothing to a guesser.
            Some(u) if ok => {
                note.actor(Actor::User {
                    id: u.id,
                    username: u.username.clone(),
                });
                return Err(AuthError::AccountDisabled { username: u.username }.into());
            }
            other => {
                // Only an existing name goes into the audit log: people type passwords into
                // the username field.
                note.actor(Actor::Anonymous {
                    claimed: other.map(|u| u.username),
                });
                return Err(AuthError::InvalidCredentials.into());
            }
        };
        lock(&self.throttle).succeeded(&name, client, self.now_ms());
        note.actor(Actor::User {
            id: user.id,
            username: user.username.clone(),
        });
        let now = self.now();
        let rehash = if password::needs_rehash(&user.password_hash) {
            Some(password::hash_password_async(password).await?)
        } else {
            None
        };
        let (_, user) = self
            .store
            .modify_user(user.id, |u| {
                u.last_login_at = Some(now);
                if let Some(h) = &rehash {
                    u.password_hash = h.clone();
                }
                Ok(())
            })
            .await?;
        let pair = self.jwt.issue_pair(&TokenSubject::from(&user), SessionId::new(), now)?;
        let addr = client.map(|a| a.to_string()).unwrap_or_default();
        let s = session::start(&pair.refresh, &addr, &self.settings.session, now);
        self.store.insert_session(&s).await?;
        note.resource("session", s.id);
        tracing::info!(user = %user.username, session = %s.id, "login");
        Ok(LoginOutcome { pair, user })
    }

    /// RefreshToken: rotates the family, or detects reuse and revokes it.
    pub async fn refresh(&self, refresh_token: &str, note: &AuditNote) -> Result<LoginOutcome> {
        let _forget = self.changing_sessions();
        let now = self.now();
        if refresh_token.is_empty() {
            return Err(Error::invalid("refresh_token", "is required"));
        }
        let claims = self.jwt.verify_refresh(refresh_token, now)?;
        note.actor(Actor::User {
            id: claims.sub,
            username: claims.username.clone(),
        });
        note.resource("session", claims.sid);
        for _ in 0..4 {
            let (s, u) = self.store.session_and_user(claims.sid, claims.sub).await?;
            let decision = session::decide_refresh(&claims, s.as_ref(), u.as_ref(), now);
            match (decision, s, u) {
                (
                    RefreshDecision::Rotate {
                        expected_jti,
                        expected_generation,
                    },
                    Some(s),
                    Some(user),
                ) => {
                    let pair = self.jwt.issue_pair(&TokenSubject::from(&user), s.id, now)?;
                    let next = session::rotated(&s, &pair.refresh, now);
                    if self
                        .store
                        .rotate_session(expected_jti, expected_generation, &next)
                        .await?
                    {
                        return Ok(LoginOutcome { pair, user });
                    }
                    // Lost the race: read again and decide again (now: reuse).
                }
                (RefreshDecision::ReuseDetected, _, _) => {
                    self.store
                        .revoke_session(claims.sid, RevokeReason::RefreshReuse, now)
                        .await?;
                    tracing::warn!(
                        session = %claims.sid,
                        user = %claims.username,
                        "refresh token reuse: session revoked"
                    );
                    note.detail("refresh token reuse: session revoked");
                    return Err(AuthError::RefreshReuse.into());
                }
                (d, _, _) => {
                    return Err(d.error().unwrap_or(AuthError::SessionRevoked).into());
                }
            }
        }
        Err(Error::aborted("session is being refreshed concurrently"))
    }

    /// Logout: the caller's session, the session of `refresh_token`, or (`all`) every
    /// session of the caller.
    pub async fn logout(&self, p: &Principal, refresh_token: &str, all: bool) -> Result<u64> {
        let _forget = self.changing_sessions();
        let now = self.now();
        if all {
            return self
                .store
                .revoke_user_sessions(p.user_id, RevokeReason::LogoutAll, now)
                .await;
        }
        let sid = if refresh_token.is_empty() {
            p.session_id.ok_or(AuthError::Forbidden("a user session is required"))?
        } else {
            let claims = self.jwt.verify_refresh(refresh_token, now)?;
            if claims.sub != p.user_id {
                return Err(AuthError::Forbidden("not your session").into());
            }
            claims.sid
        };
        Ok(u64::from(
            self.store.revoke_session(sid, RevokeReason::Logout, now).await?,
        ))
    }

    pub async fn whoami(&self, p: &Principal) -> Result<WhoAmI> {
        let mut user = self.store.get_user(p.user_id).await?.ok_or(AuthError::SessionRevoked)?;
        // The role this credential acts with: for an API key, the lower of its own role and
        // its owner's, not the owner's.
        user.role = p.role;
        let permissions = Permission::ALL.into_iter().filter(|x| p.can(*x)).collect();
        Ok(WhoAmI {
            user,
            permissions,
            method: p.method,
            api_key_id: p.api_key_id,
            expires_at: p.expires_at,
        })
    }

    // ---- users ----------------------------------------------------------------------

    /// ChangePassword: one's own (with the old password), or, with `user:manage`, another
    /// user's (`target` = id or username). Ends every session of the user.
    pub async fn change_password(
        &self,
        p: &Principal,
        target: &str,
        old: Secret,
        new: Secret,
        client: Option<IpAddr>,
        note: &AuditNote,
    ) -> Result<()> {
        let _forget = self.changing_sessions();
        let own = target.is_empty() || target == p.username || target == p.user_id.to_string();
        // Someone else's password needs user:manage; refused before the lookup, so the
        // answer does not tell whether such a user exists.
        if !own {
            p.require(Permission::UserManage)?;
        }
        let target = if target.is_empty() {
            self.store.get_user(p.user_id).await?.ok_or(AuthError::SessionRevoked)?
        } else {
            self.store.resolve_user(target).await?
        };
        note.resource("user", target.id);
        if target.id == p.user_id {
            if old.expose().is_empty() {
                return Err(Error::invalid(
                    "old_password",
                    "is required to change your own password",
                ));
            }
            // A stolen access token must not become a password oracle.
            lock(&self.throttle).begin(&target.username, client, self.now_ms())?;
            let ok = password::verify_password_async(old, Some(target.password_hash.clone())).await?;
            if !ok {
                return Err(Error::invalid("old_password", "is wrong"));
            }
            lock(&self.throttle).succeeded(&target.username, client, self.now_ms());
        } else {
            p.require(Permission::UserManage)?;
        }
        password::check_policy(&target.username, new.expose())?;
        let hash = password::hash_password_async(new).await?;
        let now = self.now();
        self.store
            .modify_user(target.id, |u| {
                u.password_hash = hash.clone();
                u.password_changed_at = now;
                u.updated_at = now;
                u.invalidate_tokens();
                Ok(())
            })
            .await?;
        self.store
            .revoke_user_sessions(target.id, RevokeReason::PasswordChanged, now)
            .await?;
        tracing::info!(user = %target.username, by = %p.username, "password changed");
        Ok(())
    }

    fn idempotency_key(p: &Principal, request_id: &str) -> String {
        format!("auth.CreateUser:{}:{request_id}", p.user_id)
    }

    pub async fn create_user(&self, p: &Principal, req: NewUser, note: &AuditNote) -> Result<User> {
        p.require(Permission::UserManage)?;
        if let Some(rid) = &req.request_id
            && let Some(id) = self.store.idempotent_get(&Self::idempotency_key(p, rid)).await?
            && let Some(u) = self.store.get_user(UserId::parse("request_id", &id)?).await?
        {
            note.resource("user", u.id);
            return Ok(u);
        }
        let username = normalize_username(&req.username);
        validate_username("username", &username)?;
        let email = req.email.trim().to_string();
        validate_email("email", &email)?;
        let role = if req.role.is_empty() {
            Role::Viewer
        } else {
            Role::parse("role", &req.role)?
        };
        password::check_policy(&username, req.password.expose())?;
        let hash = password::hash_password_async(req.password).await?;
        let now = self.now();
        let user = User {
            id: UserId::new(),
            username,
            email,
            role,
            disabled: false,
            password_hash: hash,
            token_version: 1,
            created_at: now,
            updated_at: now,
            password_changed_at: now,
            last_login_at: None,
        };
        self.store.create_user(&user).await?;
        // As before projects existed, a user with a global role works in the default
        // project with that role; `none` makes a member of no project until added to one.
        if role != Role::None {
            self.store.set_project_member(ProjectId::DEFAULT, user.id, role).await?;
        }
        if let Some(rid) = &req.request_id {
            self.store
                .idempotent_put(&Self::idempotency_key(p, rid), &user.id.to_string())
                .await?;
        }
        note.resource("user", user.id);
        tracing::info!(user = %user.username, role = %user.role, by = %p.username, "user created");
        Ok(user)
    }

    pub async fn list_users(&self, p: &Principal, page_size: u32, token: &str) -> Result<UserPage> {
        p.require(Permission::UserManage)?;
        self.store.list_users(page_size, token).await
    }

    /// Refuses to take away the last enabled admin.
    async fn keep_an_admin(&self, target: &User, what: &str) -> Result<()> {
        if target.role == Role::Admin && !target.disabled && self.store.count_enabled_with_role(Role::Admin).await? <= 1
        {
            return Err(Error::precondition(format!(
                "cannot {what} {}: it is the last enabled admin",
                target.username
            )));
        }
        Ok(())
    }

    pub async fn update_user(
        &self,
        p: &Principal,
        id_or_name: &str,
        change: UserChange,
        note: &AuditNote,
    ) -> Result<User> {
        let _forget = self.changing_sessions();
        p.require(Permission::UserManage)?;
        let target = self.store.resolve_user(id_or_name).await?;
        note.resource("user", target.id);
        let role = change.role.as_deref().map(|r| Role::parse("role", r)).transpose()?;
        let email = change.email.map(|e| e.trim().to_string());
        if let Some(e) = &email {
            validate_email("email", e)?;
        }
        let demoted = role.is_some_and(|r| r != Role::Admin);
        let disabling = change.disabled == Some(true);
        if demoted || disabling {
            self.keep_an_admin(&target, if disabling { "disable" } else { "demote" })
                .await?;
        }
        let now = self.now();
        let (before, after) = self
            .store
            .modify_user(target.id, |u| {
                let old_role = u.role;
                let was_disabled = u.disabled;
                if let Some(r) = role {
                    u.role = r;
                }
                if let Some(e) = &email {
                    u.email = e.clone();
                }
                if let Some(d) = change.disabled {
                    u.disabled = d;
                }
                if u.role != old_role || (u.disabled && !was_disabled) {
                    u.invalidate_tokens();
                }
                if *u != target {
                    u.updated_at = now;
                }
                Ok(())
            })
            .await?;
        let reason = if after.disabled && !before.disabled {
            Some(RevokeReason::UserDisabled)
        } else if after.role != before.role {
            Some(RevokeReason::RoleChanged)
        } else {
            None
        };
        if let Some(r) = reason {
            self.store.revoke_user_sessions(after.id, r, now).await?;
            tracing::info!(user = %after.username, reason = r.as_str(), by = %p.username, "sessions revoked");
        }
        Ok(after)
    }

    pub async fn delete_user(&self, p: &Principal, id_or_name: &str, note: &AuditNote) -> Result<()> {
        let _forget = self.changing_sessions();
        p.require(Permission::UserManage)?;
        let target = self.store.resolve_user(id_or_name).await?;
        note.resource("user", target.id);
        if target.id == p.user_id {
            return Err(Error::precondition("cannot delete your own account"));
        }
        self.keep_an_admin(&target, "delete").await?;
        self.store
            .revoke_user_sessions(target.id, RevokeReason::UserDeleted, self.now())
            .await?;
        if !self.store.delete_user(target.id).await? {
            return Err(Error::not_found("user", id_or_name));
        }
        tracing::info!(user = %target.username, by = %p.username, "user deleted");
        Ok(())
    }

    // ---- API keys -------------------------------------------------------------------

    /// CreateAPIKey: a key for the caller acting in `project` (name or id; empty: the
    /// default) with `role` (empty: the caller's own there) no higher than the caller's role
    /// there. The secret is returned once and never stored.
    pub async fn create_api_key(
        &self,
        p: &Principal,
        name: &str,
        role: &str,
        project: &str,
        ttl_seconds: u64,
        note: &AuditNote,
    ) -> Result<(ApiKey, Secret)> {
        let project = self.project_for(p, project, Permission::ApiKeyManage, note).await?;
        let mut creator = self.store.get_user(p.user_id).await?.ok_or(AuthError::SessionRevoked)?;
        // The cap is the creator's role in the key's project.
        creator.role = p.role_in(project.id).unwrap_or(Role::None);
        let role = if role.is_empty() {
            creator.role
        } else {
            Role::parse("role", role)?
        };
        // A prefix collision (1 in 36^8 per pair) gets a fresh key.
        for _ in 0..3 {
            let (key, secret) = apikey::new_api_key(&creator, name, role, project.id, ttl_seconds, self.now())?;
            match self.store.create_api_key(&key).await {
                Ok(()) => {
                    note.resource("api_key", key.id);
                    tracing::info!(key = %key.id, name = %key.name, role = %key.role, owner = %creator.username, "API key created");
                    return Ok((key, secret));
                }
                Err(e) if e.kind == crate::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal(anyhow::anyhow!("API key prefixes kept colliding")))
    }

    /// The caller's keys, or (`all`, with `user:manage`) everybody's.
    pub async fn list_api_keys(&self, p: &Principal, all: bool) -> Result<Vec<ApiKey>> {
        p.require(Permission::ApiKeyManage)?;
        if all {
            p.require(Permission::UserManage)?;
            self.store.list_api_keys(None).await
        } else {
            self.store.list_api_keys(Some(p.user_id)).await
        }
    }

    /// Revokes one of the caller's keys (any key with `user:manage`). Revoking twice is fine.
    pub async fn revoke_api_key(&self, p: &Principal, id: &str, note: &AuditNote) -> Result<()> {
        p.require(Permission::ApiKeyManage)?;
        let id = ApiKeyId::parse("id", id)?;
        note.resource("api_key", id);
        let key = self
            .store
            .get_api_key(id)
            .await?
            .filter(|k| k.owner_id == p.user_id || p.can(Permission::UserManage))
            .ok_or_else(|| Error::not_found("API key", id))?;
        if self.store.revoke_api_key(key.id, self.now()).await? {
            tracing::info!(key = %key.id, name = %key.name, by = %p.username, "API key revoked");
        }
        Ok(())
    }

    // ---- audit ----------------------------------------------------------------------

    pub async fn record_audit(&self, e: &AuditEntry) -> Result<()> {
        self.store.insert_audit(e).await
    }

    /// Records the entry of a finished request, except a refusal of a caller without a
    /// credential beyond the limits of [`super::audit_volume`] (counted for a summary
    /// instead). Returns whether the entry was written.
    pub async fn record_request_audit(&self, e: &AuditEntry) -> Result<bool> {
        let anonymous_refusal =
            matches!(e.actor, crate::model::Actor::Anonymous { .. }) && e.result != crate::model::AuditResult::Ok;
        if anonymous_refusal && !lock(&self.denials).admit(&e.client_address, self.now_ms()) {
            return Ok(false);
        }
        self.store.insert_audit(e).await?;
        Ok(true)
    }

    /// Writes the summaries of refusals not recorded one by one in windows that have ended.
    pub async fn flush_suppressed_denials(&self) -> Result<usize> {
        let summaries = lock(&self.denials).take_summaries(self.now_ms());
        let now = self.now();
        for s in &summaries {
            self.store
                .insert_audit(&super::audit_volume::summary_entry(now, s))
                .await?;
        }
        Ok(summaries.len())
    }

    /// Deletes audit entries past `retention`, and records that it did (when it did).
    pub async fn prune_audit(&self, retention: &super::audit_volume::Retention) -> Result<u64> {
        let now = self.now();
        let removed = self
            .store
            .prune_audit(retention.cutoff(now), retention.max_entries)
            .await?;
        if removed > 0 {
            self.store
                .insert_audit(&super::audit_volume::prune_entry(now, removed, retention))
                .await?;
        }
        Ok(removed)
    }

    pub async fn list_audit(
        &self,
        p: &Principal,
        mut filter: AuditFilter,
        page_size: u32,
        token: &str,
    ) -> Result<AuditPage> {
        // Global audit readers see everything (optionally narrowed by `filter.projects`);
        // project members see the entries of their projects where they hold audit:read.
        if !p.can(Permission::AuditRead) {
            let mine = p.projects_with(Permission::AuditRead).unwrap_or_default();
            if mine.is_empty() {
                return Err(AuthError::PermissionDenied {
                    permission: Permission::AuditRead,
                }
                .into());
            }
            filter.projects = Some(match filter.projects {
                Some(asked) => asked.into_iter().filter(|a| mine.contains(a)).collect(),
                None => mine,
            });
        }
        filter.action = filter
            .action
            .filter(|a| !a.is_empty())
            .map(|a| super::audit::action_name(&a));
        self.store.list_audit(&filter, page_size, token).await
    }

    // ---- start-up -------------------------------------------------------------------

    /// Creates the admin account when the store has no user at all. Returns what it did,
    /// or `None` when users exist (or another replica bootstrapped at the same moment).
    /// A generated password is written 0600 to `<data_dir>/admin-password`.
    pub async fn bootstrap_admin(&self, source: BootstrapPassword, data_dir: &Path) -> Result<Option<Bootstrapped>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let (password, show) = match source {
            BootstrapPassword::Given(s) => {
                // The operator chose it: the length rule and "not the username" apply.
                let len = s.expose().chars().count();
                if len < password::MIN_PASSWORD_LEN || normalize_username(s.expose()) == BOOTSTRAP_ADMIN {
                    return Err(Error::invalid(
                        "LQX_BOOTSTRAP_ADMIN_PASSWORD",
                        format!(
                            "must be at least {} characters and not the username",
                            password::MIN_PASSWORD_LEN
                        ),
                    ));
                }
                (s, false)
            }
            BootstrapPassword::Dev => (Secret::new(DEV_ADMIN_PASSWORD), true),
            BootstrapPassword::Generated => (password::generate_password(GENERATED_PASSWORD_LEN), true),
        };
        let generated = show && password.expose() != DEV_ADMIN_PASSWORD;
        let hash = password::hash_password_async(password.clone()).await?;
        let now = self.now();
        let admin = User {
            id: UserId::new(),
            username: BOOTSTRAP_ADMIN.into(),
            email: String::new(),
            role: Role::Admin,
            disabled: false,
            password_hash: hash,
            token_version: 1,
            created_at: now,
            updated_at: now,
            password_changed_at: now,
            last_login_at: None,
        };
        match self.store.create_user(&admin).await {
            Ok(()) => {}
            Err(e) if e.kind == crate::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e),
        }
        let file = if generated {
            let path = data_dir.join(ADMIN_PASSWORD_FILE);
            write_private_file(&path, format!("{}\n", password.expose()).as_bytes())
                .map_err(|e| Error::precondition(format!("cannot write {}", path.display())).with_source(e))?;
            Some(path)
        } else {
            None
        };
        tracing::info!(user = BOOTSTRAP_ADMIN, "bootstrap admin created");
        Ok(Some(Bootstrapped {
            username: BOOTSTRAP_ADMIN.into(),
            password: show.then_some(password),
            file,
        }))
    }
}

/// The signing key shared by every replica through the store (kv table): the first
/// replica to start generates it, the others read it. Used with PostgreSQL, where several
/// replicas serve one database.
pub async fn shared_signing_key(store: &Store) -> Result<SigningKey> {
    for _ in 0..3 {
        if let Some((v, _)) = store.kv_get(SIGNING_KEY_KV).await? {
            return Ok(SigningKey::from_base64(&v)?);
        }
        let key = SigningKey::generate();
        if store.kv_cas(SIGNING_KEY_KV, 0, key.to_base64().expose()).await? {
            tracing::info!("generated the shared JWT signing key");
            return Ok(key);
        }
    }
    Err(Error::internal(anyhow::anyhow!(
        "the shared signing key could not be read or written"
    )))
}

/// Writes `data` to `path` readable by the owner only (0600), replacing an old file.
pub fn write_private_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    #[cfg(unix)]
    {
        // An older file keeps its mode through open(): set it.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(data)?;
    f.sync_all()
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

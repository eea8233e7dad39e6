//! Request authentication: every request's credential (access token or API key) checked
//! against the store, with a short cache of session and user reads (`session_recheck`),
//! which every change to sessions or users clears (see the module documentation above).

use super::*;

#[derive(Default)]
pub(super) struct Checks {
    /// Bumped by every change to sessions or users: a read that began before a change is
    /// not kept after it.
    pub(super) generation: u64,
    pub(super) entries: HashMap<SessionId, Checked>,
}

/// A session and its user as read for an access-token check, and when.
pub(super) struct Checked {
    pub(super) session: Option<AuthSession>,
    pub(super) user: Option<User>,
    pub(super) at: tokio::time::Instant,
}

/// Drops the cached session checks when it goes out of scope, whatever path a change to
/// sessions or users takes (a failed step may still have committed earlier ones).
pub(super) struct ForgetChecks<'a>(&'a Mutex<Checks>);

impl Drop for ForgetChecks<'_> {
    fn drop(&mut self) {
        let mut c = lock(self.0);
        c.generation += 1;
        c.entries.clear();
    }
}

/// Entries kept at most; past this the cache starts over (a burst of logins must not grow
/// it without bound).
pub(super) const CHECKED_MAX: usize = 100_000;

impl AuthService {
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
    pub(super) async fn session_and_user(&self, claims: &Claims) -> Result<(Option<AuthSession>, Option<User>)> {
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
    pub(super) fn changing_sessions(&self) -> ForgetChecks<'_> {
        ForgetChecks(&self.checked)
    }

    /// Drops every cached session check now (a change to users made outside this service,
    /// e.g. by an SSO login updating a role).
    pub(crate) fn forget_session_checks(&self) {
        drop(self.changing_sessions());
    }

    pub(super) async fn touch_key(&self, id: ApiKeyId, now: DateTime<Utc>) {
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
}

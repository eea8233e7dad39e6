//! Sessions: login (throttled), refresh (rotation with reuse detection), logout, whoami.

use super::*;

impl AuthService {
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
}

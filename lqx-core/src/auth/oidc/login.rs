//! The SSO exchange: a provider token in, an lqx session out.
//!
//! - Throttled like a password login (same policy), per client address: a failed
//!   verification counts as a failed login.
//! - A user is found by the token's (issuer, subject) only. The first login creates the
//!   user, named after the token's username claim, or that name with a number when the name
//!   is taken: a provider user called `admin` never becomes the local `admin`.
//! - The provider's groups are the authority on the role: each login sets it from the rules,
//!   and a change ends the user's other sessions (as an admin's role change does). A user
//!   no rule maps (and no default role) is refused.
//! - Disabled users stay disabled: lqx's own switch wins over the provider.

use std::{net::IpAddr, sync::Mutex};

use chrono::{DateTime, Utc};

use super::{
    config::OidcConfig,
    mapping::map_groups,
    provider::ProviderKeys,
    verify::{IdClaims, verify_token},
};
use crate::auth::{
    AuditNote, AuthService, Secret,
    jwt::TokenSubject,
    password,
    service::LoginOutcome,
    session,
    throttle::{LoginThrottle, ThrottlePolicy},
};
use crate::model::{Actor, RevokeReason, SessionId, User, UserId, normalize_username, validate_username};
use crate::store::SsoCreate;
use crate::{Error, Result};

/// What a client needs to log in: the provider and the client id (the public `GetSSOConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoPublicSettings {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// SSO login for one configured provider.
pub struct SsoLogin {
    config: OidcConfig,
    keys: ProviderKeys,
    throttle: Mutex<LoginThrottle>,
    started: tokio::time::Instant,
}

impl std::fmt::Debug for SsoLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoLogin")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The first free-looking username from the token: its username claim, else the local part
/// of its email, else `sso-user`, cut to what usernames allow.
fn base_username(c: &IdClaims) -> String {
    let clean = |s: &str| -> String {
        let s: String = normalize_username(s)
            .chars()
            .map(|ch| {
                if ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-') {
                    ch
                } else {
                    '-'
                }
            })
            .take(48)
            .collect();
        s.trim_start_matches(['.', '_', '-']).to_string()
    };
    [clean(&c.username), clean(c.email.split('@').next().unwrap_or(""))]
        .into_iter()
        .find(|s| validate_username("username", s).is_ok())
        .unwrap_or_else(|| "sso-user".into())
}

impl SsoLogin {
    pub fn new(config: OidcConfig, throttle: ThrottlePolicy) -> Result<Self> {
        config.validate()?;
        crate::auth::install_crypto_provider();
        let keys = ProviderKeys::new(
            &config.issuer,
            config.jwks_min_refetch,
            config.jwks_max_age,
            config.ca_cert.as_deref(),
        )?;
        Ok(SsoLogin {
            config,
            keys,
            throttle: Mutex::new(LoginThrottle::new(throttle)),
            started: tokio::time::Instant::now(),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub fn keys(&self) -> &ProviderKeys {
        &self.keys
    }

    pub fn public_settings(&self) -> SsoPublicSettings {
        SsoPublicSettings {
            issuer: self.config.issuer.clone(),
            client_id: self.config.client_id.clone(),
            scopes: self.config.scopes.clone(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Verifies a provider token at `now` (no login).
    pub async fn verify(&self, token: &str, nonce: Option<&str>, now: DateTime<Utc>) -> Result<IdClaims> {
        verify_token(token, &self.config, &self.keys, nonce, now).await
    }

    /// Exchanges a provider token (and the nonce of a browser login) for an lqx session.
    pub async fn login(
        &self,
        auth: &AuthService,
        token: &Secret,
        nonce: Option<&str>,
        client: Option<IpAddr>,
        note: &AuditNote,
    ) -> Result<LoginOutcome> {
        if token.expose().is_empty() {
            return Err(Error::invalid("id_token", "is required"));
        }
        // The throttle's "account" is the address too: failures from one address must not
        // slow down everybody else's SSO logins.
        let key = format!("sso:{}", client.map(|a| a.to_string()).unwrap_or_default());
        lock(&self.throttle).begin(&key, client, self.now_ms())?;
        let now = auth.now();
        let claims = match self.verify(token.expose(), nonce, now).await {
            Ok(c) => c,
            Err(e) => {
                note.actor(Actor::Anonymous { claimed: None });
                if e.kind == crate::ErrorKind::Unavailable {
                    // The provider being down is not the caller's failure.
                    lock(&self.throttle).succeeded(&key, client, self.now_ms());
                }
                return Err(e);
            }
        };
        lock(&self.throttle).succeeded(&key, client, self.now_ms());
        // One login per token: a token seen in a log or by a proxy cannot be replayed.
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.expose().as_bytes()));
        if !auth.store().consume_sso_token(&hash, claims.expires_at, now).await? {
            note.actor(Actor::Anonymous {
                claimed: Some(claims.username.clone()),
            });
            note.detail(format!("SSO subject {:?}: ID token replayed", claims.subject));
            return Err(Error::unauthenticated(
                "This ID token was already used to log in; log in again with the provider",
            ));
        }
        let mapped = map_groups(&self.config.role_rules, self.config.default_role, &claims.groups);
        // Only project rules match: a tenant, with no global role beyond its projects.
        let global = mapped
            .global
            .or_else(|| (!mapped.projects.is_empty()).then_some(crate::model::Role::None));
        let Some(role) = global else {
            note.actor(Actor::Anonymous {
                claimed: Some(claims.username.clone()),
            });
            note.detail(format!(
                "SSO subject {:?}: no role rule matches its groups",
                claims.subject
            ));
            return Err(Error::permission_denied(
                "Permission denied: none of your groups maps to an lqx role; ask an administrator",
            ));
        };
        let user = self.user_for(auth, &claims, role, now).await?;
        self.sync_project_roles(auth, user.id, &mapped.projects).await?;
        note.actor(Actor::User {
            id: user.id,
            username: user.username.clone(),
        });
        if user.disabled {
            return Err(crate::auth::AuthError::AccountDisabled {
                username: user.username.clone(),
            }
            .into());
        }
        let pair = auth
            .jwt()
            .issue_pair(&TokenSubject::from(&user), SessionId::new(), now)?;
        let addr = client.map(|a| a.to_string()).unwrap_or_default();
        let mut s = session::start(&pair.refresh, &addr, &auth.settings().session, now);
        // Refreshing never asks the provider: the session ends sooner, and the user logs in
        // there again, where a removal or a changed group takes effect.
        let cap = chrono::Duration::from_std(self.config.session_max_age).unwrap_or(chrono::Duration::MAX);
        s.expires_at = s.expires_at.min(now.checked_add_signed(cap).unwrap_or(s.expires_at));
        auth.store().insert_session(&s).await?;
        note.resource("session", s.id);
        note.detail(format!("sso issuer={} subject={}", claims.issuer, claims.subject));
        tracing::info!(user = %user.username, session = %s.id, issuer = %claims.issuer, "SSO login");
        Ok(LoginOutcome { pair, user })
    }

    /// Brings the user's roles in the projects the rules name in line with its groups: the
    /// mapped role in each matched project, and no membership in a project a rule names but
    /// none of its groups matches any more (memberships in projects no rule names are left to
    /// the project admins). A rule naming a project that does not exist is skipped, loudly.
    async fn sync_project_roles(
        &self,
        auth: &AuthService,
        user: UserId,
        mapped: &std::collections::BTreeMap<String, crate::model::Role>,
    ) -> Result<()> {
        let named: std::collections::BTreeSet<&str> = self
            .config
            .role_rules
            .iter()
            .filter_map(|r| r.project.as_deref())
            .collect();
        for name in named {
            let Some(project) = auth.store().get_project(name).await? else {
                tracing::warn!(project = %name, "auth.oidc.role_rules names a project that does not exist; rule skipped");
                continue;
            };
            match mapped.get(name) {
                Some(role) => auth.set_project_role(user, project.id, *role).await?,
                None => {
                    auth.remove_project_role(user, project.id).await?;
                }
            }
        }
        Ok(())
    }

    /// The user linked to the token's identity, created on first login, with its role
    /// brought in line with the provider's groups.
    async fn user_for(
        &self,
        auth: &AuthService,
        c: &IdClaims,
        role: crate::model::Role,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let store = auth.store();
        for _ in 0..3 {
            if let Some(u) = store.sso_user(&c.issuer, &c.subject).await? {
                let (before, after) = store
                    .modify_user(u.id, |u| {
                        u.last_login_at = Some(now);
                        if !c.email.is_empty() {
                            u.email = c.email.clone();
                        }
                        if u.role != role {
                            u.role = role;
                            u.invalidate_tokens();
                            u.updated_at = now;
                        }
                        Ok(())
                    })
                    .await?;
                if before.role != after.role {
                    auth.forget_session_checks();
                    store
                        .revoke_user_sessions(after.id, RevokeReason::RoleChanged, now)
                        .await?;
                    tracing::info!(user = %after.username, from = %before.role, to = %after.role, "SSO groups changed the role");
                }
                return Ok(after);
            }
            // A password nobody knows: the account is for SSO (an admin may still set one).
            let hash = password::hash_password_async(password::generate_password(32)).await?;
            let base = base_username(c);
            for n in 1..=50u32 {
                let username = if n == 1 { base.clone() } else { format!("{base}-{n}") };
                let user = User {
                    last_login_at: Some(now),
                    ..User::new(username, c.email.clone(), role, hash.clone(), now)
                };
                match store.create_sso_user(&user, &c.issuer, &c.subject).await? {
                    SsoCreate::Created => {
                        tracing::info!(user = %user.username, role = %role, issuer = %c.issuer, "SSO user created");
                        return Ok(user);
                    }
                    SsoCreate::UsernameTaken => continue,
                    // A concurrent first login linked it: use that user.
                    SsoCreate::IdentityTaken => break,
                }
            }
        }
        Err(Error::aborted("could not create the SSO user; try again"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_come_from_the_claims_and_stay_valid() {
        let c = |username: &str, email: &str| IdClaims {
            issuer: "i".into(),
            subject: "s".into(),
            username: username.into(),
            email: email.into(),
            groups: vec![],
            expires_at: Utc::now(),
        };
        assert_eq!(base_username(&c("Alice", "")), "alice");
        assert_eq!(base_username(&c("", "bob.b@example.com")), "bob.b");
        assert_eq!(base_username(&c("Jöhn Doe", "")), "j-hn-doe");
        assert_eq!(base_username(&c("..", "")), "sso-user");
        assert_eq!(base_username(&c(&"x".repeat(200), "")).len(), 48);
    }
}

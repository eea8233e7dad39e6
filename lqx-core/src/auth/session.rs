//! Login sessions: refresh-token rotation with reuse detection, as pure decisions.
//!
//! Rule, in plain words:
//! - Login starts a session (a refresh-token family, [`AuthSession`]) whose `current_jti` is
//!   the refresh token just issued.
//! - A refresh token works once. Presenting the current one rotates the family: a new pair is
//!   issued in the same session and `current_jti` moves to the new refresh token.
//! - Presenting any other refresh token of the family (one already used) is reuse: someone
//!   holds a copy. The whole family is revoked, including the newest tokens, and it is
//!   audited. The legitimate user logs in again; the thief is out.
//! - Concurrent refreshes with one token: exactly one wins. The store writes the rotation
//!   with compare-and-swap on `(id, current_jti, generation, not revoked)`; the loser's
//!   write matches no row, it reads the record again and decides again, which now says
//!   [`RefreshDecision::ReuseDetected`]: the loser gets `unauthenticated` and the family
//!   (the winner's new tokens too) is revoked. There is no grace window: a client that
//!   retries a refresh whose answer was lost must log in again. We chose strictness because a
//!   race between a thief and the owner looks exactly like a double send.
//! - A session also ends at its absolute expiry however often it rotates, on logout, and when
//!   its user changes (password, role, disabled, deleted: the user's token version moves on).
//! - Access tokens are checked against the session and the user on every request
//!   ([`check_access`]), so logout and user changes take effect at once, not after 15 min.
//!
//! Storage is the store's business: these functions take the records and `now` and return
//! what to do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AuthError, jwt::Claims, jwt::TokenType};
use crate::model::{AuthSession, RevokeReason, User};

/// Session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A family ends this long after login, however often it rotates.
    pub absolute_ttl: Duration,
    /// How long a replica may reuse its check of an access token's session and user. A
    /// revocation made through this replica takes effect at once; one made through another
    /// replica within this time. Zero: read both on every request.
    pub recheck: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            absolute_ttl: Duration::from_secs(30 * 24 * 3600),
            recheck: Duration::from_secs(1),
        }
    }
}

fn add(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The session record to insert at login, for the refresh token just issued.
pub fn start(refresh: &Claims, client_address: &str, policy: &SessionPolicy, now: DateTime<Utc>) -> AuthSession {
    debug_assert_eq!(refresh.typ, TokenType::Refresh);
    AuthSession {
        id: refresh.sid,
        user_id: refresh.sub,
        current_jti: refresh.jti,
        generation: 0,
        created_at: now,
        refreshed_at: now,
        expires_at: add(now, policy.absolute_ttl),
        revoked_at: None,
        revoke_reason: None,
        client_address: client_address.to_owned(),
    }
}

/// What to do with a presented (signature-checked) refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Issue a new pair in this session, then write [`rotated`] with compare-and-swap on
    /// `(current_jti == expected_jti, generation == expected_generation, not revoked)`. If the
    /// swap matches nothing, read the record again and call [`decide_refresh`] again.
    Rotate {
        expected_jti: Uuid,
        expected_generation: u64,
    },
    /// An already used token: write [`revoked`] with [`RevokeReason::RefreshReuse`], audit it,
    /// answer [`AuthError::RefreshReuse`].
    ReuseDetected,
    /// The family was revoked earlier (logout, reuse, user change).
    Revoked,
    /// The family reached its absolute expiry.
    Expired,
    /// The user is gone, or its token version moved on: revoke the family.
    UserInvalid,
    /// The user is disabled (its sessions were revoked when it was): said so.
    UserDisabled { username: String },
    /// No such session (or not this user's).
    Unknown,
}

impl RefreshDecision {
    /// The answer for every decision but `Rotate`.
    pub fn error(self) -> Option<AuthError> {
        match self {
            RefreshDecision::Rotate { .. } => None,
            RefreshDecision::UserDisabled { username } => Some(AuthError::AccountDisabled { username }),
            RefreshDecision::ReuseDetected => Some(AuthError::RefreshReuse),
            RefreshDecision::Revoked
            | RefreshDecision::Expired
            | RefreshDecision::UserInvalid
            | RefreshDecision::Unknown => Some(AuthError::SessionRevoked),
        }
    }
}

/// Decides on a refresh. `claims` come from `JwtManager::verify_refresh`; `session` is the
/// stored record of `claims.sid`; `user` the stored user `claims.sub`.
pub fn decide_refresh(
    claims: &Claims,
    session: Option<&AuthSession>,
    user: Option<&User>,
    now: DateTime<Utc>,
) -> RefreshDecision {
    let Some(s) = session else {
        return RefreshDecision::Unknown;
    };
    if s.id != claims.sid || s.user_id != claims.sub || claims.typ != TokenType::Refresh {
        return RefreshDecision::Unknown;
    }
    // Before "revoked": disabling revokes every session, and "revoked" would hide why.
    if let Some(u) = user.filter(|u| u.id == claims.sub && u.disabled) {
        return RefreshDecision::UserDisabled {
            username: u.username.clone(),
        };
    }
    if s.is_revoked() {
        return RefreshDecision::Revoked;
    }
    match user {
        Some(u) if !u.disabled && u.token_version == claims.ver && u.id == claims.sub => {}
        _ => return RefreshDecision::UserInvalid,
    }
    if now >= s.expires_at {
        return RefreshDecision::Expired;
    }
    if claims.jti != s.current_jti {
        return RefreshDecision::ReuseDetected;
    }
    RefreshDecision::Rotate {
        expected_jti: s.current_jti,
        expected_generation: s.generation,
    }
}

/// The record after a rotation to `new_refresh` (from the pair issued on `Rotate`).
pub fn rotated(session: &AuthSession, new_refresh: &Claims, now: DateTime<Utc>) -> AuthSession {
    debug_assert_eq!(new_refresh.sid, session.id);
    AuthSession {
        current_jti: new_refresh.jti,
        generation: session.generation + 1,
        refreshed_at: now,
        ..session.clone()
    }
}

/// The record after revocation. Revoking twice keeps the first time and reason.
pub fn revoked(session: &AuthSession, reason: RevokeReason, now: DateTime<Utc>) -> AuthSession {
    if session.is_revoked() {
        return session.clone();
    }
    AuthSession {
        revoked_at: Some(now),
        revoke_reason: Some(reason),
        ..session.clone()
    }
}

/// The check the interceptor makes after `JwtManager::verify_access`: the session is live and
/// the user still exists, is enabled, and has the token version and role the token names.
pub fn check_access(
    claims: &Claims,
    session: Option<&AuthSession>,
    user: Option<&User>,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    // The token is verified, so saying the account is disabled tells its holder nothing new.
    if let Some(u) = user.filter(|u| u.id == claims.sub && u.disabled) {
        return Err(AuthError::AccountDisabled {
            username: u.username.clone(),
        });
    }
    let user_ok = user
        .is_some_and(|u| u.id == claims.sub && !u.disabled && u.token_version == claims.ver && u.role == claims.role);
    let session_ok =
        session.is_some_and(|s| s.id == claims.sid && s.user_id == claims.sub && !s.is_revoked() && now < s.expires_at);
    if user_ok && session_ok {
        Ok(())
    } else {
        Err(AuthError::SessionRevoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::{JwtConfig, JwtManager, SigningKey, TokenPair, TokenSubject};
    use crate::model::{Role, SessionId, UserId};
    use std::sync::Mutex;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    fn user() -> User {
        User {
            id: UserId::new(),
            username: "alice".into(),
            email: String::new(),
            role: Role::Operator,
            disabled: false,
            password_hash: String::new(),
            token_version: 1,
            created_at: t0(),
            updated_at: t0(),
            password_changed_at: t0(),
            last_login_at: None,
        }
    }

    fn jwt() -> JwtManager {
        JwtManager::new(&SigningKey::from_bytes(vec![42; 32]).unwrap(), JwtConfig::default())
    }

    /// Login: a pair and the session record.
    fn login(m: &JwtManager, u: &User) -> (TokenPair, AuthSession) {
        let pair = m.issue_pair(&TokenSubject::from(u), SessionId::new(), t0()).unwrap();
        let s = start(&pair.refresh, "10.0.0.1", &SessionPolicy::default(), t0());
        (pair, s)
    }

    /// A stand-in for the store's row: compare-and-swap as the SQL `UPDATE ... WHERE` does.
    struct Row(Mutex<AuthSession>);

    impl Row {
        fn read(&self) -> AuthSession {
            self.0.lock().unwrap().clone()
        }
        fn cas(&self, expected_jti: Uuid, expected_generation: u64, next: AuthSession) -> bool {
            let mut cur = self.0.lock().unwrap();
            if cur.current_jti == expected_jti && cur.generation == expected_generation && !cur.is_revoked() {
                *cur = next;
                true
            } else {
                false
            }
        }
        fn revoke(&self, reason: RevokeReason, now: DateTime<Utc>) {
            let mut cur = self.0.lock().unwrap();
            *cur = revoked(&cur, reason, now);
        }
    }

    /// The refresh flow as the AuthService runs it, over `Row`.
    fn refresh(m: &JwtManager, row: &Row, u: &User, token: &str, now: DateTime<Utc>) -> Result<TokenPair, AuthError> {
        let claims = m.verify_refresh(token, now)?;
        loop {
            let s = row.read();
            match decide_refresh(&claims, Some(&s), Some(u), now) {
                RefreshDecision::Rotate {
                    expected_jti,
                    expected_generation,
                } => {
                    let pair = m.issue_pair(&TokenSubject::from(u), s.id, now)?;
                    if row.cas(expected_jti, expected_generation, rotated(&s, &pair.refresh, now)) {
                        return Ok(pair);
                    }
                    // Lost a race: decide again on the fresh record.
                }
                RefreshDecision::ReuseDetected => {
                    row.revoke(RevokeReason::RefreshReuse, now);
                    return Err(AuthError::RefreshReuse);
                }
                other => return Err(other.error().unwrap()),
            }
        }
    }

    #[test]
    fn rotation_then_replay_kills_the_family() {
        let m = jwt();
        let u = user();
        let (p1, s) = login(&m, &u);
        let row = Row(Mutex::new(s));
        let later = t0() + chrono::Duration::minutes(20);
        // RT1 -> RT2
        let p2 = refresh(&m, &row, &u, p1.refresh_token.expose(), later).unwrap();
        assert_eq!(p2.refresh.sid, p1.refresh.sid);
        assert_eq!(row.read().generation, 1);
        assert_eq!(row.read().current_jti, p2.refresh.jti);
        check_access(&p2.access, Some(&row.read()), Some(&u), later).unwrap();
        // Replaying RT1 fails and is reuse.
        assert!(matches!(
            refresh(&m, &row, &u, p1.refresh_token.expose(), later),
            Err(AuthError::RefreshReuse)
        ));
        let s = row.read();
        assert_eq!(s.revoke_reason, Some(RevokeReason::RefreshReuse));
        // RT2 is dead too, and so is the access token issued with it.
        assert!(matches!(
            refresh(&m, &row, &u, p2.refresh_token.expose(), later),
            Err(AuthError::SessionRevoked)
        ));
        assert!(matches!(
            check_access(&p2.access, Some(&s), Some(&u), later),
            Err(AuthError::SessionRevoked)
        ));
    }

    #[test]
    fn concurrent_refreshes_of_one_token_exactly_one_wins_then_the_family_dies() {
        let m = jwt();
        let u = user();
        let (p1, s) = login(&m, &u);
        let row = Row(Mutex::new(s.clone()));
        let now = t0() + chrono::Duration::minutes(1);
        let claims = m.verify_refresh(p1.refresh_token.expose(), now).unwrap();
        // Both requests read the record before either writes: both are told to rotate.
        let d1 = decide_refresh(&claims, Some(&s), Some(&u), now);
        let d2 = decide_refresh(&claims, Some(&s), Some(&u), now);
        assert_eq!(d1, d2);
        let RefreshDecision::Rotate {
            expected_jti,
            expected_generation,
        } = d1
        else {
            panic!("{d1:?}")
        };
        let win = m.issue_pair(&TokenSubject::from(&u), s.id, now).unwrap();
        let lose = m.issue_pair(&TokenSubject::from(&u), s.id, now).unwrap();
        assert!(row.cas(expected_jti, expected_generation, rotated(&s, &win.refresh, now)));
        assert!(
            !row.cas(expected_jti, expected_generation, rotated(&s, &lose.refresh, now)),
            "the loser's swap must fail"
        );
        // The loser reads again and decides again: reuse.
        assert_eq!(
            decide_refresh(&claims, Some(&row.read()), Some(&u), now),
            RefreshDecision::ReuseDetected
        );
    }

    #[test]
    fn concurrent_refreshes_on_threads() {
        let m = jwt();
        let u = user();
        let (p1, s) = login(&m, &u);
        let row = Row(Mutex::new(s));
        let now = t0() + chrono::Duration::minutes(1);
        let results: Vec<Result<TokenPair, AuthError>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| sc.spawn(|| refresh(&m, &row, &u, p1.refresh_token.expose(), now)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = results.iter().filter(|r| r.is_ok()).count();
        let reuse = results
            .iter()
            .filter(|r| matches!(r, Err(AuthError::RefreshReuse)))
            .count();
        let revoked = results
            .iter()
            .filter(|r| matches!(r, Err(AuthError::SessionRevoked)))
            .count();
        assert_eq!(winners, 1, "{results:?}");
        // Every loser either saw the rotation (reuse) or arrived after the family was revoked.
        assert!(reuse >= 1);
        assert_eq!(winners + reuse + revoked, 8);
        assert!(row.read().is_revoked());
        let winner = results.into_iter().find_map(Result::ok).unwrap();
        assert!(check_access(&winner.access, Some(&row.read()), Some(&u), now).is_err());
    }

    #[test]
    fn logout_revokes_refresh_and_access() {
        let m = jwt();
        let u = user();
        let (p1, s) = login(&m, &u);
        let row = Row(Mutex::new(s));
        row.revoke(RevokeReason::Logout, t0());
        assert!(matches!(
            refresh(&m, &row, &u, p1.refresh_token.expose(), t0()),
            Err(AuthError::SessionRevoked)
        ));
        assert!(check_access(&p1.access, Some(&row.read()), Some(&u), t0()).is_err());
        // Revoking again keeps the first reason.
        let again = revoked(
            &row.read(),
            RevokeReason::PasswordChanged,
            t0() + chrono::Duration::hours(1),
        );
        assert_eq!(again.revoke_reason, Some(RevokeReason::Logout));
        assert_eq!(again.revoked_at, Some(t0()));
    }

    #[test]
    fn user_changes_kill_tokens_issued_before() {
        let m = jwt();
        let u = user();
        let (p1, s) = login(&m, &u);
        check_access(&p1.access, Some(&s), Some(&u), t0()).unwrap();
        let claims = m.verify_refresh(p1.refresh_token.expose(), t0()).unwrap();

        let mut changed = u.clone();
        changed.invalidate_tokens(); // password change
        assert!(check_access(&p1.access, Some(&s), Some(&changed), t0()).is_err());
        assert_eq!(
            decide_refresh(&claims, Some(&s), Some(&changed), t0()),
            RefreshDecision::UserInvalid
        );

        let mut disabled = u.clone();
        disabled.disabled = true;
        // Said so, also once disabling has revoked the session.
        let dead = revoked(&s, RevokeReason::UserDisabled, t0());
        for s in [&s, &dead] {
            assert!(matches!(
                check_access(&p1.access, Some(s), Some(&disabled), t0()),
                Err(AuthError::AccountDisabled { .. })
            ));
            let d = decide_refresh(&claims, Some(s), Some(&disabled), t0());
            assert_eq!(
                d,
                RefreshDecision::UserDisabled {
                    username: u.username.clone()
                }
            );
            assert!(matches!(d.error(), Some(AuthError::AccountDisabled { .. })));
        }

        // Deleted.
        assert!(check_access(&p1.access, Some(&s), None, t0()).is_err());
        assert_eq!(
            decide_refresh(&claims, Some(&s), None, t0()),
            RefreshDecision::UserInvalid
        );

        // A role changed without a version bump (a store bug) is still refused.
        let mut demoted = u.clone();
        demoted.role = Role::Viewer;
        assert!(check_access(&p1.access, Some(&s), Some(&demoted), t0()).is_err());
    }

    #[test]
    fn sessions_end_at_their_absolute_expiry() {
        let m = jwt();
        let u = user();
        let (p1, s) = login(&m, &u);
        assert_eq!(s.expires_at, t0() + chrono::Duration::days(30));
        let claims = m.verify_refresh(p1.refresh_token.expose(), t0()).unwrap();
        let end = s.expires_at;
        assert!(matches!(
            decide_refresh(&claims, Some(&s), Some(&u), end - chrono::Duration::seconds(1)),
            RefreshDecision::Rotate { .. }
        ));
        assert_eq!(
            decide_refresh(&claims, Some(&s), Some(&u), end),
            RefreshDecision::Expired
        );
        assert!(check_access(&p1.access, Some(&s), Some(&u), end).is_err());
    }

    #[test]
    fn unknown_or_foreign_sessions_are_refused() {
        let m = jwt();
        let u = user();
        let (p1, s) = login(&m, &u);
        let claims = m.verify_refresh(p1.refresh_token.expose(), t0()).unwrap();
        assert_eq!(decide_refresh(&claims, None, Some(&u), t0()), RefreshDecision::Unknown);
        let (_, other) = login(&m, &u);
        assert_eq!(
            decide_refresh(&claims, Some(&other), Some(&u), t0()),
            RefreshDecision::Unknown
        );
        let foreign = AuthSession {
            user_id: UserId::new(),
            ..s.clone()
        };
        assert_eq!(
            decide_refresh(&claims, Some(&foreign), Some(&u), t0()),
            RefreshDecision::Unknown
        );
        assert!(check_access(&p1.access, None, Some(&u), t0()).is_err());
        assert!(check_access(&p1.access, Some(&other), Some(&u), t0()).is_err());
        // An access token presented as refresh claims is not a refresh.
        assert_eq!(
            decide_refresh(&p1.access, Some(&s), Some(&u), t0()),
            RefreshDecision::Unknown
        );
        assert!(matches!(
            RefreshDecision::Unknown.error(),
            Some(AuthError::SessionRevoked)
        ));
        assert!(matches!(
            RefreshDecision::ReuseDetected.error(),
            Some(AuthError::RefreshReuse)
        ));
    }
}

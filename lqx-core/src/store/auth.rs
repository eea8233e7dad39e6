//! Users, login sessions, API keys and the audit log.
//!
//! Users are written with optimistic concurrency (a `version` column): [`Store::modify_user`]
//! reads, applies a pure change and writes back only if nobody wrote in between, retrying a
//! few times. Session rotation is a compare-and-swap on `(id, current_jti, generation, not
//! revoked)`, so of two concurrent refreshes with one token exactly one wins.

use chrono::{DateTime, Utc};

use super::{Sql, Store, StoreError, is_unique_violation, millis, page_token, push_in};
use crate::model::{
    ApiKey, ApiKeyId, AuditEntry, AuditFilter, AuthSession, RevokeReason, Role, SessionId, User, UserId,
};
use crate::{Error, Result};

/// Largest page of users or audit entries.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Page size when the request gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// How often [`Store::modify_user`] retries a lost race before giving up with `Aborted`.
const MODIFY_RETRIES: usize = 8;

fn page_size(n: u32) -> i64 {
    i64::from(match n {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    })
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn db(e: sqlx::Error) -> Error {
    StoreError::from(e).into()
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::from(e).into())
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::from(e).into())
}

/// A page of users, ordered by username.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_page_token: String,
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_page_token: String,
}

type SessionRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

const SESSION_COLUMNS: &str = "s.id, s.user_id, s.current_jti, s.generation, s.created_at, \
     s.refreshed_at, s.expires_at, s.revoked_at, s.revoke_reason, s.client_address";

fn session_from_row(r: SessionRow) -> Result<AuthSession> {
    let corrupt = |what: &str| Error::internal(anyhow::anyhow!("stored session has a bad {what}"));
    let (id, user_id, jti, generation, created, refreshed, expires, revoked_at, reason, addr) = r;
    Ok(AuthSession {
        id: id.parse().map_err(|_| corrupt("id"))?,
        user_id: user_id.parse().map_err(|_| corrupt("user id"))?,
        current_jti: jti.parse().map_err(|_| corrupt("jti"))?,
        generation: u64::try_from(generation).map_err(|_| corrupt("generation"))?,
        created_at: time(created),
        refreshed_at: time(refreshed),
        expires_at: time(expires),
        revoked_at: revoked_at.map(time),
        revoke_reason: reason
            .map(|r| r.parse::<RevokeReason>())
            .transpose()
            .map_err(|_| corrupt("revoke reason"))?,
        client_address: addr,
    })
}

fn api_key_from_row(data: &str, last_used: Option<i64>, revoked: Option<i64>) -> Result<ApiKey> {
    let mut k: ApiKey = parse(data)?;
    k.last_used_at = last_used.map(time);
    k.revoked_at = revoked.map(time);
    Ok(k)
}

impl Store {
    // ---- users ----------------------------------------------------------------------

    /// Inserts a new user; `AlreadyExists` when the username is taken.
    pub async fn create_user(&self, u: &User) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO users (id, username, role, disabled, version, data, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $6)",
        )
        .bind(u.id.to_string())
        .bind(&u.username)
        .bind(u.role.as_str())
        .bind(i64::from(u.disabled))
        .bind(json(u)?)
        .bind(millis(u.created_at))
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::already_exists("user", &u.username)),
            Err(e) => Err(db(e)),
        }
    }

    pub async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.get_user_versioned(id).await?.map(|(u, _)| u))
    }

    async fn get_user_versioned(&self, id: UserId) -> Result<Option<(User, i64)>> {
        let row: Option<(String, i64)> = sqlx::query_as("SELECT data, version FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(d, v)| Ok((parse(&d)?, v))).transpose()
    }

    /// A user by (normalized) username.
    pub async fn get_user_by_name(&self, username: &str) -> Result<Option<User>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT data FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(d,)| parse(&d)).transpose()
    }

    /// A user by id or, failing that, by username; `NotFound` otherwise.
    pub async fn resolve_user(&self, id_or_name: &str) -> Result<User> {
        if let Ok(id) = id_or_name.parse::<UserId>()
            && let Some(u) = self.get_user(id).await?
        {
            return Ok(u);
        }
        let name = crate::model::normalize_username(id_or_name);
        self.get_user_by_name(&name)
            .await?
            .ok_or_else(|| Error::not_found("user", id_or_name))
    }

    pub async fn count_users(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Enabled users holding `role`.
    pub async fn count_enabled_with_role(&self, role: Role) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = $1 AND disabled = 0")
            .bind(role.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Reads user `id`, applies `change` (pure; it may refuse with an error) and writes the
    /// result back if nobody wrote the user in between; retries a lost race. Returns the
    /// user before and after. `NotFound` when there is no such user.
    pub async fn modify_user<F>(&self, id: UserId, mut change: F) -> Result<(User, User)>
    where
        F: FnMut(&mut User) -> Result<()>,
    {
        for _ in 0..MODIFY_RETRIES {
            let (before, version) = self
                .get_user_versioned(id)
                .await?
                .ok_or_else(|| Error::not_found("user", id))?;
            let mut after = before.clone();
            change(&mut after)?;
            if after == before {
                return Ok((before, after));
            }
            let r = sqlx::query(
                "UPDATE users SET role = $1, disabled = $2, data = $3, version = version + 1 \
                 WHERE id = $4 AND version = $5",
            )
            .bind(after.role.as_str())
            .bind(i64::from(after.disabled))
            .bind(json(&after)?)
            .bind(id.to_string())
            .bind(version)
            .execute(&self.pool)
            .await
            .map_err(db)?;
            if r.rows_affected() == 1 {
                return Ok((before, after));
            }
        }
        Err(Error::aborted(format!(
            "user {id} is being changed concurrently; try again"
        )))
    }

    /// Deletes a user with its sessions and API keys. Returns false when there was none.
    pub async fn delete_user(&self, id: UserId) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for sql in [
            "DELETE FROM auth_sessions WHERE user_id = $1",
            "DELETE FROM api_keys WHERE owner_id = $1",
            "DELETE FROM sso_identities WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let r = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    /// One page of users ordered by username.
    pub async fn list_users(&self, page_size: u32, token: &str) -> Result<UserPage> {
        let size = self::page_size(page_size);
        let mut q = Sql::new("SELECT data, username FROM users");
        if !token.is_empty() {
            let (after, _) = page_token::decode(token)?;
            q.push(" WHERE username > ").bind(after);
        }
        q.push(" ORDER BY username LIMIT ").bind(size + 1);
        let rows: Vec<(String, String)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        let more = rows.len() as i64 > size;
        let rows = &rows[..rows.len().min(size as usize)];
        let next_page_token = match (more, rows.last()) {
            (true, Some((_, name))) => page_token::encode(name, ""),
            _ => String::new(),
        };
        let users = rows.iter().map(|(d, _)| parse(d)).collect::<Result<_>>()?;
        Ok(UserPage { users, next_page_token })
    }

    // ---- sessions -------------------------------------------------------------------

    pub async fn insert_session(&self, s: &AuthSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_sessions (id, user_id, current_jti, generation, created_at, \
             refreshed_at, expires_at, revoked_at, revoke_reason, client_address) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.current_jti.to_string())
        .bind(i64::try_from(s.generation).unwrap_or(i64::MAX))
        .bind(millis(s.created_at))
        .bind(millis(s.refreshed_at))
        .bind(millis(s.expires_at))
        .bind(s.revoked_at.map(millis))
        .bind(s.revoke_reason.map(|r| r.as_str().to_string()))
        .bind(&s.client_address)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub async fn get_session(&self, id: SessionId) -> Result<Option<AuthSession>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.id = $1");
        let row: Option<SessionRow> = sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(session_from_row).transpose()
    }

    /// A session and its user in one round trip (the per-request check of an access token).
    /// Either is `None` when missing.
    pub async fn session_and_user(
        &self,
        session: SessionId,
        user: UserId,
    ) -> Result<(Option<AuthSession>, Option<User>)> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, u.data FROM users u \
             LEFT JOIN auth_sessions s ON s.id = $1 AND s.user_id = u.id WHERE u.id = $2"
        );
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
            String,
        );
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(session.to_string())
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(r) = row else {
            return Ok((None, None));
        };
        let user: User = parse(&r.10)?;
        let session = match r {
            (Some(id), Some(uid), Some(jti), Some(g), Some(c), Some(rf), Some(e), rv, reason, Some(addr), _) => {
                Some(session_from_row((id, uid, jti, g, c, rf, e, rv, reason, addr))?)
            }
            _ => None,
        };
        Ok((session, Some(user)))
    }

    /// Writes a rotated session if the stored one still has `expected_jti` and
    /// `expected_generation` and is not revoked. False: someone else rotated or revoked it.
    pub async fn rotate_session(
        &self,
        expected_jti: uuid::Uuid,
        expected_generation: u64,
        next: &AuthSession,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE auth_sessions SET current_jti = $1, generation = $2, refreshed_at = $3 \
             WHERE id = $4 AND current_jti = $5 AND generation = $6 AND revoked_at IS NULL",
        )
        .bind(next.current_jti.to_string())
        .bind(i64::try_from(next.generation).unwrap_or(i64::MAX))
        .bind(millis(next.refreshed_at))
        .bind(next.id.to_string())
        .bind(expected_jti.to_string())
        .bind(i64::try_from(expected_generation).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes one session (if not revoked already). True when this call revoked it.
    pub async fn revoke_session(&self, id: SessionId, reason: RevokeReason, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $1, revoke_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(millis(now))
        .bind(reason.as_str())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes every live session of a user; returns how many.
    pub async fn revoke_user_sessions(&self, user: UserId, reason: RevokeReason, now: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $1, revoke_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL",
        )
        .bind(millis(now))
        .bind(reason.as_str())
        .bind(user.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.rows_affected())
    }

    /// Deletes sessions that ended (expired or revoked) before `before`.
    pub async fn prune_sessions(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM auth_sessions WHERE expires_at < $1 OR revoked_at < $1")
            .bind(millis(before))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected())
    }

    // ---- API keys -------------------------------------------------------------------

    /// Inserts a key; `AlreadyExists` when its prefix is taken (the caller makes a new one).
    pub async fn create_api_key(&self, k: &ApiKey) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO api_keys (id, owner_id, prefix, data, created_at, last_used_at, revoked_at, project_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(k.id.to_string())
        .bind(k.owner_id.to_string())
        .bind(&k.prefix)
        .bind(json(k)?)
        .bind(millis(k.created_at))
        .bind(k.last_used_at.map(millis))
        .bind(k.revoked_at.map(millis))
        .bind(k.project_id.to_string())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::already_exists("API key", &k.prefix)),
            Err(e) => Err(db(e)),
        }
    }

    pub async fn get_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKey>> {
        self.find_api_key("id", &id.to_string()).await
    }

    /// The key with this public prefix (the lookup of a presented key).
    pub async fn get_api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        self.find_api_key("prefix", prefix).await
    }

    async fn find_api_key(&self, column: &str, value: &str) -> Result<Option<ApiKey>> {
        let sql = format!("SELECT data, last_used_at, revoked_at FROM api_keys WHERE {column} = $1");
        let row: Option<(String, Option<i64>, Option<i64>)> = sqlx::query_as(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(d, l, r)| api_key_from_row(&d, l, r)).transpose()
    }

    /// Keys of `owner` (every key when `None`), newest first.
    pub async fn list_api_keys(&self, owner: Option<UserId>) -> Result<Vec<ApiKey>> {
        let mut q = Sql::new("SELECT data, last_used_at, revoked_at FROM api_keys");
        if let Some(o) = owner {
            q.push(" WHERE owner_id = ").bind(o.to_string());
        }
        q.push(" ORDER BY created_at DESC, id DESC");
        let rows: Vec<(String, Option<i64>, Option<i64>)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(|(d, l, r)| api_key_from_row(d, *l, *r)).collect()
    }

    /// Revokes a key (if not revoked already). True when this call revoked it.
    pub async fn revoke_api_key(&self, id: ApiKeyId, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(millis(now))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a use of a key at `now`, unless one was recorded less than `granularity` ago
    /// (keeps a busy CI job from writing on every request). True when written.
    pub async fn touch_api_key(&self, id: ApiKeyId, now: DateTime<Utc>, granularity: chrono::Duration) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(millis(now))
        .bind(id.to_string())
        .bind(millis(now - granularity))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    // ---- audit ----------------------------------------------------------------------

    pub async fn insert_audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, time, actor, actor_id, action, resource_id, result, data, project_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.id.to_string())
        .bind(millis(e.time))
        .bind(e.actor.display_name())
        .bind(e.actor.id_string())
        .bind(&e.action)
        .bind(&e.resource_id)
        .bind(e.result.as_str())
        .bind(json(e)?)
        .bind(e.project_id.map(|p| p.to_string()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Deletes entries older than `before` and all but the newest `keep_newest`; returns how
    /// many went.
    pub async fn prune_audit(&self, before: Option<DateTime<Utc>>, keep_newest: Option<u64>) -> Result<u64> {
        let mut removed = 0;
        if let Some(b) = before {
            let r = sqlx::query("DELETE FROM audit_log WHERE time < $1")
                .bind(millis(b))
                .execute(&self.pool)
                .await
                .map_err(db)?;
            removed += r.rows_affected();
        }
        if let Some(n) = keep_newest {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            let oldest_dropped: Option<(i64, String)> =
                sqlx::query_as("SELECT time, id FROM audit_log ORDER BY time DESC, id DESC LIMIT 1 OFFSET $1")
                    .bind(n)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
            if let Some((t, id)) = oldest_dropped {
                let r = sqlx::query("DELETE FROM audit_log WHERE time < $1 OR (time = $1 AND id <= $2)")
                    .bind(t)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                removed += r.rows_affected();
            }
        }
        Ok(removed)
    }

    /// One page of audit entries matching `filter`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter, page_size: u32, token: &str) -> Result<AuditPage> {
        let size = self::page_size(page_size);
        let mut q = Sql::new("SELECT data, time, id FROM audit_log WHERE 1=1");
        if let Some(u) = &filter.user {
            q.push(" AND (actor_id = ")
                .bind(u.as_str())
                .push(" OR actor = ")
                .bind(u.as_str())
                .push(")");
        }
        if let Some(a) = &filter.action {
            q.push(" AND action = ").bind(a.as_str());
        }
        if let Some(r) = &filter.resource_id {
            q.push(" AND resource_id = ").bind(r.as_str());
        }
        if let Some(s) = filter.since {
            q.push(" AND time >= ").bind(millis(s));
        }
        if let Some(r) = filter.result {
            q.push(" AND result = ").bind(r.as_str());
        }
        if let Some(ps) = &filter.projects {
            push_in(&mut q, "project_id", ps);
        }
        if !token.is_empty() {
            let (t, id) = page_token::decode(token)?;
            let t: i64 = t
                .parse()
                .map_err(|_| Error::invalid("page_token", "malformed page token"))?;
            q.push(" AND (time < ")
                .bind(t)
                .push(" OR (time = ")
                .bind(t)
                .push(" AND id < ")
                .bind(id)
                .push("))");
        }
        q.push(" ORDER BY time DESC, id DESC LIMIT ").bind(size + 1);
        let rows: Vec<(String, i64, String)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        let more = rows.len() as i64 > size;
        let rows = &rows[..rows.len().min(size as usize)];
        let next_page_token = match (more, rows.last()) {
            (true, Some((_, t, id))) => page_token::encode(&t.to_string(), id),
            _ => String::new(),
        };
        let entries = rows.iter().map(|(d, _, _)| parse(d)).collect::<Result<_>>()?;
        Ok(AuditPage {
            entries,
            next_page_token,
        })
    }
}

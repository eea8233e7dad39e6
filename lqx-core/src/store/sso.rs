//! Users linked to an OpenID provider's (issuer, subject).

use super::{Store, StoreError, is_unique_violation, millis};
use crate::model::User;
use crate::{Error, Result};

fn db(e: sqlx::Error) -> Error {
    StoreError::from(e).into()
}

/// Why [`Store::create_sso_user`] did not create the user.
#[derive(Debug)]
pub enum SsoCreate {
    Created,
    /// The username is taken: pick another.
    UsernameTaken,
    /// The identity got linked meanwhile (a concurrent first login): read it again.
    IdentityTaken,
}

impl Store {
    /// Records that the provider token with SHA-256 `token_hash` (valid until `expires_at`)
    /// was used to log in; false when it was used before. Expired records go on the way.
    pub async fn consume_sso_token(
        &self,
        token_hash: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM sso_used_tokens WHERE expires_at < $1")
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let r = sqlx::query("INSERT INTO sso_used_tokens (token_hash, expires_at) VALUES ($1, $2)")
            .bind(token_hash)
            .bind(millis(expires_at))
            .execute(&mut *tx)
            .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(db(e)),
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// The user linked to (`issuer`, `subject`), if any.
    pub async fn sso_user(&self, issuer: &str, subject: &str) -> Result<Option<User>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT u.data FROM sso_identities i JOIN users u ON u.id = i.user_id \
             WHERE i.issuer = $1 AND i.subject = $2",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|(d,)| serde_json::from_str(&d).map_err(|e| StoreError::from(e).into()))
            .transpose()
    }

    /// Creates `user` linked to (`issuer`, `subject`), both or neither.
    pub async fn create_sso_user(&self, user: &User, issuer: &str, subject: &str) -> Result<SsoCreate> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // A link left by a user deleted before this table's clean-up existed goes first.
        sqlx::query(
            "DELETE FROM sso_identities WHERE issuer = $1 AND subject = $2 \
             AND user_id NOT IN (SELECT id FROM users)",
        )
        .bind(issuer)
        .bind(subject)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let r =
            sqlx::query("INSERT INTO sso_identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(issuer)
                .bind(subject)
                .bind(user.id.to_string())
                .bind(millis(user.created_at))
                .execute(&mut *tx)
                .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(SsoCreate::IdentityTaken),
            Err(e) => return Err(db(e)),
        }
        let data = serde_json::to_string(user).map_err(|e| Error::from(StoreError::from(e)))?;
        let r = sqlx::query(
            "INSERT INTO users (id, username, role, disabled, version, data, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $6)",
        )
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(user.role.as_str())
        .bind(i64::from(user.disabled))
        .bind(data)
        .bind(millis(user.created_at))
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(SsoCreate::UsernameTaken),
            Err(e) => return Err(db(e)),
        }
        tx.commit().await.map_err(db)?;
        Ok(SsoCreate::Created)
    }
}

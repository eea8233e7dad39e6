//! Projects, idempotency records and small named values.

use super::{Store, StoreError, millis};
use crate::model::{Project, ProjectId};
use chrono::Utc;

impl Store {
    pub(super) async fn ensure_default_project(&self) -> Result<(), StoreError> {
        let p = Project {
            id: ProjectId::DEFAULT,
            name: Project::DEFAULT_NAME.into(),
            description: "The default project".into(),
            created_at: Utc::now(),
            quota: Default::default(),
        };
        sqlx::query("INSERT INTO projects (id, name, data, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(p.id.to_string())
            .bind(&p.name)
            .bind(serde_json::to_string(&p)?)
            .bind(millis(p.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get_project(&self, id_or_name: &str) -> Result<Option<Project>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT data FROM projects WHERE id = $1 OR name = $1")
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(d,)| serde_json::from_str(&d).map_err(StoreError::from))
            .transpose()
    }

    /// The stored answer of an earlier request with this idempotency key, if any.
    pub async fn idempotent_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT response FROM idempotency WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Records the answer for an idempotency key; the first writer wins.
    pub async fn idempotent_put(&self, key: &str, response: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO idempotency (key, response, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(response)
            .bind(millis(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops idempotency records older than `max_age`.
    pub async fn idempotent_gc(&self, max_age: chrono::Duration) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(millis(Utc::now() - max_age))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// A named value and its version (0 when absent).
    pub async fn kv_get(&self, key: &str) -> Result<Option<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT value, version FROM kv WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets a named value if its version is still `expected` (0: must not exist yet).
    /// Returns false when someone else wrote it first.
    pub async fn kv_cas(&self, key: &str, expected: i64, value: &str) -> Result<bool, StoreError> {
        let r = if expected == 0 {
            sqlx::query("INSERT INTO kv (key, value, version) VALUES ($1, $2, 1) ON CONFLICT DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?
        } else {
            sqlx::query("UPDATE kv SET value = $2, version = version + 1 WHERE key = $1 AND version = $3")
                .bind(key)
                .bind(value)
                .bind(expected)
                .execute(&self.pool)
                .await?
        };
        Ok(r.rows_affected() == 1)
    }

    /// Sets a named value unconditionally.
    pub async fn kv_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kv (key, value, version) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = kv.version + 1",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

//! DRS recommendations.
//!
//! A status change is a compare-and-swap on the `status` column
//! ([`Store::update_recommendation_if`]): of two callers moving one recommendation from
//! PENDING/APPROVED to APPLYING, exactly one wins, so applying twice migrates once.

use chrono::{DateTime, Utc};

use super::{Sql, Store, StoreError, millis, page_token};
use crate::model::{DrsRecommendation, RecommendationId, RecommendationStatus};
use crate::{Error, Result};

/// Largest page of recommendations.
pub const MAX_RECOMMENDATION_PAGE: u32 = 1000;
/// Page size when the request gives none.
pub const DEFAULT_RECOMMENDATION_PAGE: u32 = 100;

/// A page of recommendations, newest run first, each run in plan order.
#[derive(Debug, Clone)]
pub struct RecommendationPage {
    pub recommendations: Vec<DrsRecommendation>,
    pub next_page_token: String,
}

fn db(e: sqlx::Error) -> Error {
    StoreError::from(e).into()
}

fn json(r: &DrsRecommendation) -> Result<String> {
    serde_json::to_string(r).map_err(|e| StoreError::from(e).into())
}

fn parse(s: &str) -> Result<DrsRecommendation> {
    serde_json::from_str(s).map_err(|e| StoreError::from(e).into())
}

impl Store {
    pub async fn insert_recommendation(&self, r: &DrsRecommendation) -> Result<()> {
        sqlx::query(
            "INSERT INTO drs_recommendations (id, vm_id, status, created_at, updated_at, data) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.id.to_string())
        .bind(r.vm_id.to_string())
        .bind(r.status.as_str())
        .bind(millis(r.created_at))
        .bind(millis(r.created_at))
        .bind(json(r)?)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub async fn get_recommendation(&self, id: RecommendationId) -> Result<Option<DrsRecommendation>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT data FROM drs_recommendations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(d,)| parse(&d)).transpose()
    }

    /// Writes `r` (changed at `now`) only if the stored status is one of `from` (at most
    /// three). Returns false when it is not (someone else moved it first, or it is gone).
    pub async fn update_recommendation_if(
        &self,
        r: &DrsRecommendation,
        from: &[RecommendationStatus],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(first) = from.first() else {
            return Ok(false);
        };
        let status = |i: usize| from.get(i).unwrap_or(first).as_str();
        let done = sqlx::query(
            "UPDATE drs_recommendations SET status = $2, updated_at = $3, data = $4 \
             WHERE id = $1 AND status IN ($5, $6, $7)",
        )
        .bind(r.id.to_string())
        .bind(r.status.as_str())
        .bind(millis(now))
        .bind(json(r)?)
        .bind(status(0))
        .bind(status(1))
        .bind(status(2))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    /// Every recommendation in one of `statuses`, oldest first.
    pub async fn recommendations_with_status(
        &self,
        statuses: &[RecommendationStatus],
    ) -> Result<Vec<DrsRecommendation>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT data FROM drs_recommendations WHERE status IN (");
        for (i, s) in statuses.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind(s.as_str());
        }
        q.push(") ORDER BY created_at, id");
        let rows: Vec<(String,)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(|(d,)| parse(d)).collect()
    }

    /// One page of recommendations (all, or those in `status`), newest run first, and
    /// within a run in the plan's order (ids are time-ordered): the order to apply them in.
    pub async fn list_recommendations(
        &self,
        status: Option<RecommendationStatus>,
        page_size: u32,
        token: &str,
    ) -> Result<RecommendationPage> {
        let size = match page_size {
            0 => DEFAULT_RECOMMENDATION_PAGE,
            n => n.min(MAX_RECOMMENDATION_PAGE),
        };
        let mut q = Sql::new("SELECT data, created_at, id FROM drs_recommendations WHERE 1=1");
        if let Some(s) = status {
            q.push(" AND status = ").bind(s.as_str());
        }
        if !token.is_empty() {
            let (at, id) = page_token::decode(token)?;
            let at: i64 = at
                .parse()
                .map_err(|_| Error::invalid("page_token", "malformed page token"))?;
            q.push(" AND (created_at < ")
                .bind(at)
                .push(" OR (created_at = ")
                .bind(at);
            q.push(" AND id > ").bind(id).push("))");
        }
        q.push(" ORDER BY created_at DESC, id ASC LIMIT ")
            .bind(i64::from(size) + 1);
        let rows: Vec<(String, i64, String)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        let more = rows.len() > size as usize;
        let rows = &rows[..rows.len().min(size as usize)];
        let next_page_token = match (more, rows.last()) {
            (true, Some((_, at, id))) => page_token::encode(&at.to_string(), id),
            _ => String::new(),
        };
        Ok(RecommendationPage {
            recommendations: rows.iter().map(|(d, _, _)| parse(d)).collect::<Result<_>>()?,
            next_page_token,
        })
    }

    /// Deletes recommendations in a final state (APPLIED, REJECTED, FAILED, EXPIRED) whose
    /// last change is before `cutoff`. Returns how many went.
    pub async fn delete_finished_recommendations(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM drs_recommendations WHERE updated_at < $1 AND status IN ($2, $3, $4, $5)")
            .bind(millis(cutoff))
            .bind(RecommendationStatus::Applied.as_str())
            .bind(RecommendationStatus::Rejected.as_str())
            .bind(RecommendationStatus::Failed.as_str())
            .bind(RecommendationStatus::Expired.as_str())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    /// Claims an idempotency key for `value` (first writer wins). Returns the value of the
    /// earlier claim when there is one, `None` when this call made the claim.
    pub async fn claim_idempotency_key(&self, key: &str, value: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let done = sqlx::query(
            "INSERT INTO idempotency (key, response, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            return Ok(None);
        }
        Ok(self.idempotent_get(key).await?)
    }
}

//! Alerts, webhook receivers and the webhook delivery log.
//!
//! At most one open alert exists per (source type, source id, condition): a partial unique
//! index enforces it on both engines, so [`Store::insert_alert`] of a second open alert with
//! the same key fails (returns `false`) and the caller updates the open one instead. Every
//! alert update is a compare-and-swap on the row's `version`
//! ([`Store::update_alert_if`]), so two concurrent raises of the same alert both count.
//! A webhook's secret is a column of its own and never part of the listed `data`.

use chrono::{DateTime, Utc};

use super::{Sql, Store, StoreError, is_unique_violation, millis, page_token};
use crate::model::{
    Alert, AlertFilter, AlertId, AlertKey, AlertSeverity, AlertSummary, Webhook, WebhookDelivery, WebhookId,
};
use crate::{Error, Result};

/// Largest page of alerts.
pub const MAX_ALERT_PAGE: u32 = 1000;
/// Page size when the request gives none.
pub const DEFAULT_ALERT_PAGE: u32 = 100;

/// A page of alerts, newest first.
#[derive(Debug, Clone)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    pub next_page_token: String,
}

/// An alert as stored, with the version its next update must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    pub alert: Alert,
    pub version: i64,
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

fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Appends the filter's conditions (`AND ...`) to a query over `alerts`.
fn push_filter(q: &mut Sql, f: &AlertFilter) {
    if let Some(ps) = &f.projects {
        super::push_in(q, "project_id", ps);
    }
    if let Some(s) = f.severity {
        q.push(" AND severity = ").bind(s.as_str());
    }
    if let Some(t) = f.source_type {
        q.push(" AND source_type = ").bind(t.as_str());
    }
    if let Some(id) = &f.source_id {
        q.push(" AND source_id = ").bind(id.as_str());
    }
    if let Some(a) = f.acknowledged {
        q.push(" AND acknowledged = ").bind(flag(a));
    }
    if let Some(r) = f.resolved {
        q.push(" AND resolved = ").bind(flag(r));
    }
}

impl Store {
    /// The open alert with this key, if any.
    pub async fn open_alert(&self, key: &AlertKey) -> Result<Option<StoredAlert>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT data, version FROM alerts \
             WHERE source_type = $1 AND source_id = $2 AND condition = $3 AND resolved = 0",
        )
        .bind(key.source_type.as_str())
        .bind(&key.source_id)
        .bind(&key.condition)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|(d, version)| {
            Ok(StoredAlert {
                alert: parse(&d)?,
                version,
            })
        })
        .transpose()
    }

    pub async fn get_alert(&self, id: AlertId) -> Result<Option<StoredAlert>> {
        let row: Option<(String, i64)> = sqlx::query_as("SELECT data, version FROM alerts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(d, version)| {
            Ok(StoredAlert {
                alert: parse(&d)?,
                version,
            })
        })
        .transpose()
    }

    /// Inserts a new alert (version 1). Returns `false` when an open alert with the same
    /// key already exists (another raise won the race): update that one instead.
    pub async fn insert_alert(&self, a: &Alert) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO alerts (id, severity, source_type, source_id, condition, acknowledged, resolved, \
             created_at, updated_at, resolved_at, version, data, project_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12)",
        )
        .bind(a.id.to_string())
        .bind(a.severity.as_str())
        .bind(a.source_type.as_str())
        .bind(&a.source_id)
        .bind(&a.condition)
        .bind(flag(a.acknowledged))
        .bind(flag(a.resolved))
        .bind(millis(a.created_at))
        .bind(millis(a.updated_at))
        .bind(a.resolved_at.map(millis))
        .bind(json(a)?)
        .bind(a.project_id.to_string())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db(e)),
        }
    }

    /// Writes `a` if the stored version is still `expected`; returns the new version, or
    /// `None` when someone else wrote the alert first (read it again and retry).
    pub async fn update_alert_if(&self, a: &Alert, expected: i64) -> Result<Option<i64>> {
        let r = sqlx::query(
            "UPDATE alerts SET severity = $2, acknowledged = $3, resolved = $4, updated_at = $5, resolved_at = $6, \
             version = version + 1, data = $7 WHERE id = $1 AND version = $8",
        )
        .bind(a.id.to_string())
        .bind(a.severity.as_str())
        .bind(flag(a.acknowledged))
        .bind(flag(a.resolved))
        .bind(millis(a.updated_at))
        .bind(a.resolved_at.map(millis))
        .bind(json(a)?)
        .bind(expected)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok((r.rows_affected() == 1).then_some(expected + 1))
    }

    /// One page of the alerts matching `filter`, newest first (by creation, then id).
    pub async fn list_alerts(&self, filter: &AlertFilter, page_size: u32, token: &str) -> Result<AlertPage> {
        let size = match page_size {
            0 => DEFAULT_ALERT_PAGE,
            n => n.min(MAX_ALERT_PAGE),
        };
        let mut q = Sql::new("SELECT data, created_at, id FROM alerts WHERE 1=1");
        push_filter(&mut q, filter);
        if !token.is_empty() {
            let (at, id) = page_token::decode(token)?;
            let at: i64 = at
                .parse()
                .map_err(|_| Error::invalid("page_token", "malformed page token"))?;
            q.push(" AND (created_at < ")
                .bind(at)
                .push(" OR (created_at = ")
                .bind(at);
            q.push(" AND id < ").bind(id).push("))");
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(i64::from(size) + 1);
        let rows: Vec<(String, i64, String)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        let more = rows.len() > size as usize;
        let rows = &rows[..rows.len().min(size as usize)];
        let next_page_token = match (more, rows.last()) {
            (true, Some((_, at, id))) => page_token::encode(&at.to_string(), id),
            _ => String::new(),
        };
        Ok(AlertPage {
            alerts: rows.iter().map(|(d, _, _)| parse(d)).collect::<Result<_>>()?,
            next_page_token,
        })
    }

    /// Every alert matching `filter` (meant for open alerts, which are few), oldest first.
    pub async fn all_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let mut q = Sql::new("SELECT data FROM alerts WHERE 1=1");
        push_filter(&mut q, filter);
        q.push(" ORDER BY created_at, id");
        let rows: Vec<(String,)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(|(d,)| parse(d)).collect()
    }

    /// Counts of open alerts by severity (and unacknowledged), of these projects (`None`:
    /// every project).
    pub async fn alert_summary(&self, projects: Option<&[crate::model::ProjectId]>) -> Result<AlertSummary> {
        let mut q = Sql::new("SELECT severity, acknowledged, COUNT(*) FROM alerts WHERE resolved = 0");
        if let Some(ps) = projects {
            super::push_in(&mut q, "project_id", ps);
        }
        q.push(" GROUP BY severity, acknowledged");
        let rows: Vec<(String, i64, i64)> = q.query_as().fetch_all(&self.pool).await.map_err(db)?;
        let mut s = AlertSummary::default();
        for (severity, acknowledged, n) in rows {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            match AlertSeverity::parse(&severity) {
                Some(AlertSeverity::Critical) => s.critical += n,
                Some(AlertSeverity::Warning) => s.warning += n,
                Some(AlertSeverity::Info) => s.info += n,
                None => tracing::warn!(severity, "alert with an unknown severity in the store"),
            }
            if acknowledged == 0 {
                s.unacknowledged += n;
            }
            s.total_open += n;
        }
        Ok(s)
    }

    /// Deletes resolved alerts resolved before `cutoff`. Returns how many went.
    pub async fn delete_resolved_alerts(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM alerts WHERE resolved = 1 AND resolved_at < $1")
            .bind(millis(cutoff))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected())
    }

    // ---- webhooks ----

    pub async fn insert_webhook(&self, w: &Webhook) -> Result<()> {
        sqlx::query("INSERT INTO webhooks (id, url, secret, created_at, data) VALUES ($1, $2, $3, $4, $5)")
            .bind(w.id.to_string())
            .bind(&w.url)
            .bind(w.secret.clone().filter(|s| !s.is_empty()))
            .bind(millis(w.created_at))
            .bind(json(w)?)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Every webhook, oldest first, with its secret (for signing; never return it).
    pub async fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT data, secret FROM webhooks ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter()
            .map(|(d, secret)| {
                let mut w: Webhook = parse(&d)?;
                w.secret = secret;
                Ok(w)
            })
            .collect()
    }

    pub async fn get_webhook(&self, id: WebhookId) -> Result<Option<Webhook>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as("SELECT data, secret FROM webhooks WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(d, secret)| {
            let mut w: Webhook = parse(&d)?;
            w.secret = secret;
            Ok(w)
        })
        .transpose()
    }

    /// Deletes a webhook and its delivery log. Returns false when there was none.
    pub async fn delete_webhook(&self, id: WebhookId) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Explicit as well as ON DELETE CASCADE: SQLite enforces foreign keys only when
        // the connection enabled them.
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let r = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    /// Appends one attempt to the delivery log and records it as the webhook's last
    /// delivery. Returns false when the webhook is gone (the row is not kept).
    pub async fn record_webhook_delivery(&self, d: &WebhookDelivery) -> Result<bool> {
        let Some(mut w) = self.get_webhook(d.webhook_id).await? else {
            return Ok(false);
        };
        let r = sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, attempt, webhook_id, alert_id, status, time, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(d.delivery_id.to_string())
        .bind(i64::from(d.attempt))
        .bind(d.webhook_id.to_string())
        .bind(d.alert_id.map(|a| a.to_string()))
        .bind(d.status.as_str())
        .bind(millis(d.time))
        .bind(json(d)?)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => {}
            // The webhook was deleted in between (foreign key).
            Err(sqlx::Error::Database(e)) if e.message().to_ascii_lowercase().contains("foreign key") => {
                return Ok(false);
            }
            Err(e) => return Err(db(e)),
        }
        if w.last_delivery_at.is_none_or(|t| t <= d.time) {
            w.last_delivery_at = Some(d.time);
            w.last_delivery_status = Some(d.status);
            sqlx::query("UPDATE webhooks SET data = $2 WHERE id = $1")
                .bind(w.id.to_string())
                .bind(json(&w)?)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        }
        Ok(true)
    }

    /// The newest `limit` delivery attempts of a webhook, newest first.
    pub async fn webhook_deliveries(&self, id: WebhookId, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT data FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY time DESC, delivery_id DESC, attempt DESC LIMIT $2",
        )
        .bind(id.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|(d,)| parse(d)).collect()
    }

    /// Drops delivery-log rows older than `cutoff`. Returns how many went.
    pub async fn prune_webhook_deliveries(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM webhook_deliveries WHERE time < $1")
            .bind(millis(cutoff))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected())
    }
}

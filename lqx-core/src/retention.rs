//! Retention of what the control plane keeps only for a while: ended login sessions (and
//! with them their refresh tokens), resolved alerts and the webhook delivery log. Two
//! background tasks delete what is past its retention (`session-pruning`,
//! `alert-pruning`). Any replica may run them: the deletes are idempotent.

use crate::Result;
use crate::background::BackgroundTasks;
use crate::store::Store;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `retention:` section of the server config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Sessions that ended (expired or revoked) are deleted this long after they ended;
    /// until then `lqx auth sessions` can still show them.
    #[serde(with = "humantime_serde")]
    pub sessions: Duration,
    /// Resolved alerts are deleted this long after they were resolved.
    #[serde(with = "humantime_serde")]
    pub resolved_alerts: Duration,
    /// Webhook delivery attempts are kept this long.
    #[serde(with = "humantime_serde")]
    pub webhook_deliveries: Duration,
    /// How often the pruning runs.
    #[serde(with = "humantime_serde")]
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            sessions: Duration::from_secs(24 * 3600),
            resolved_alerts: Duration::from_secs(30 * 24 * 3600),
            webhook_deliveries: Duration::from_secs(7 * 24 * 3600),
            every: Duration::from_secs(3600),
        }
    }
}

/// The names of the tasks among the background tasks.
pub const SESSION_TASK: &str = "session-pruning";
pub const ALERT_TASK: &str = "alert-pruning";

fn before(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
}

/// Deletes the sessions that ended more than `sessions` before `now`; returns how many.
pub async fn prune_sessions(store: &Store, r: &Retention, now: DateTime<Utc>) -> Result<u64> {
    store.prune_sessions(before(now, r.sessions)).await
}

/// Deletes old resolved alerts and webhook deliveries; returns how many of each.
pub async fn prune_alerts(store: &Store, r: &Retention, now: DateTime<Utc>) -> Result<(u64, u64)> {
    let alerts = store.delete_resolved_alerts(before(now, r.resolved_alerts)).await?;
    let deliveries = store
        .prune_webhook_deliveries(before(now, r.webhook_deliveries))
        .await?;
    Ok((alerts, deliveries))
}

/// Registers and starts both pruning tasks (the first run at once).
pub fn spawn_in(store: &Store, r: Retention, tasks: &BackgroundTasks) -> Vec<tokio::task::JoinHandle<()>> {
    let every = r.every.max(Duration::from_secs(1));
    let s = store.clone();
    let sessions = tasks.spawn(SESSION_TASK, every, move || {
        let s = s.clone();
        async move {
            let n = prune_sessions(&s, &r, Utc::now()).await?;
            Ok::<_, crate::Error>(format!("{n} ended sessions deleted"))
        }
    });
    let s = store.clone();
    let alerts = tasks.spawn(ALERT_TASK, every, move || {
        let s = s.clone();
        async move {
            let (a, d) = prune_alerts(&s, &r, Utc::now()).await?;
            Ok::<_, crate::Error>(format!("{a} resolved alerts, {d} webhook deliveries deleted"))
        }
    });
    vec![sessions, alerts]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Alert, AlertId, AlertSeverity, AlertSourceType, AuthSession, ProjectId, RevokeReason, SessionId, UserId,
    };

    fn session(created: DateTime<Utc>, expires: DateTime<Utc>, revoked: Option<DateTime<Utc>>) -> AuthSession {
        AuthSession {
            id: SessionId::new(),
            user_id: UserId::new(),
            current_jti: uuid::Uuid::new_v4(),
            generation: 0,
            created_at: created,
            refreshed_at: created,
            expires_at: expires,
            revoked_at: revoked,
            revoke_reason: revoked.map(|_| RevokeReason::Logout),
            client_address: "127.0.0.1".into(),
        }
    }

    fn alert(condition: &str, resolved_at: Option<DateTime<Utc>>, created: DateTime<Utc>) -> Alert {
        Alert {
            id: AlertId::new(),
            severity: AlertSeverity::Warning,
            title: "t".into(),
            message: "m".into(),
            source_type: AlertSourceType::Host,
            source_id: "node-1".into(),
            source_name: "node-1".into(),
            condition: condition.into(),
            count: 1,
            acknowledged: false,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved: resolved_at.is_some(),
            resolved_at,
            created_at: created,
            updated_at: resolved_at.unwrap_or(created),
            project_id: ProjectId::DEFAULT,
        }
    }

    #[tokio::test]
    async fn pruning_removes_only_what_is_past_its_retention() {
        let dir = tempfile::tempdir().unwrap();
        let r = Retention::default();
        for (engine, store) in crate::store::testing::engines(dir.path()).await {
            let now = Utc::now();
            let h = chrono::Duration::hours;
            let d = chrono::Duration::days;
            // Sessions: ended two days ago (expired, revoked) go; one that ended an hour
            // ago, and a live one, stay.
            let old_expired = session(now - d(10), now - d(2), None);
            let old_revoked = session(now - d(3), now + d(4), Some(now - d(2)));
            let recent = session(now - d(1), now - h(1), None);
            let live = session(now - d(1), now + d(6), None);
            for s in [&old_expired, &old_revoked, &recent, &live] {
                store.insert_session(s).await.unwrap();
            }
            assert_eq!(prune_sessions(&store, &r, now).await.unwrap(), 2, "{engine}");
            for (s, kept) in [
                (&old_expired, false),
                (&old_revoked, false),
                (&recent, true),
                (&live, true),
            ] {
                assert_eq!(
                    store.get_session(s.id).await.unwrap().is_some(),
                    kept,
                    "{engine}: {s:?}"
                );
            }
            // Alerts: resolved 31 days ago goes; resolved yesterday and an old open one stay.
            let gone = alert("old-resolved", Some(now - d(31)), now - d(40));
            let fresh = alert("new-resolved", Some(now - d(1)), now - d(40));
            let open = alert("still-open", None, now - d(90));
            for a in [&gone, &fresh, &open] {
                assert!(store.insert_alert(a).await.unwrap(), "{engine}");
            }
            let (alerts, deliveries) = prune_alerts(&store, &r, now).await.unwrap();
            assert_eq!((alerts, deliveries), (1, 0), "{engine}");
            for (a, kept) in [(&gone, false), (&fresh, true), (&open, true)] {
                assert_eq!(
                    store.get_alert(a.id).await.unwrap().is_some(),
                    kept,
                    "{engine}: {}",
                    a.condition
                );
            }
            // Again: nothing more.
            assert_eq!(prune_sessions(&store, &r, now).await.unwrap(), 0, "{engine}");
            assert_eq!(prune_alerts(&store, &r, now).await.unwrap(), (0, 0), "{engine}");
        }
    }

    #[tokio::test]
    async fn both_tasks_are_registered_and_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("lqx.db").to_str().unwrap()).await.unwrap();
        let now = Utc::now();
        store
            .insert_session(&session(
                now - chrono::Duration::days(5),
                now - chrono::Duration::days(3),
                None,
            ))
            .await
            .unwrap();
        let tasks = BackgroundTasks::new();
        let handles = spawn_in(&store, Retention::default(), &tasks);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let list = tasks.list();
            let ran = |n: &str| list.iter().any(|t| t.name == n && t.runs >= 1);
            if ran(SESSION_TASK) && ran(ALERT_TASK) {
                let s = list.iter().find(|t| t.name == SESSION_TASK).unwrap();
                assert_eq!(s.period, Duration::from_secs(3600));
                assert_eq!(
                    s.last_result,
                    Some(crate::background::Outcome::Ok("1 ended sessions deleted".into()))
                );
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not run: {list:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for h in handles {
            h.abort();
        }
    }
}

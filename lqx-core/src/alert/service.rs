//! The alert service: the dedupe rules of [`crate::alert`] applied to the store, with every
//! change published on the event bus and sent to the webhooks that want its severity.
//!
//! How components raise alerts (HA, DRS, agents, the server's own checks):
//!
//! ```ignore
//! use lqx_core::alert::{self, conditions, service::Alerts};
//! // when the condition is seen (again):
//! alerts.raise(alert::node_alert(node.id, &node.name, AlertSeverity::Critical,
//!     conditions::NODE_UNREACHABLE, "Node unreachable", "no heartbeat for 30s")).await?;
//! // when it clears (auto-resolve; nothing happens when no alert is open):
//! alerts.clear(&alert::node_key(node.id, conditions::NODE_UNREACHABLE)).await?;
//! // from code that must not wait or fail (a tick loop): queued, applied in order
//! alerts.raise_later(draft);
//! alerts.clear_later(key);
//! ```
//!
//! Concurrency: raising is read-open-alert, decide, write; the write is an insert that the
//! partial unique index refuses when another raise created the open alert first, or an
//! update that is a compare-and-swap on the row version. A lost race is retried from the
//! read, so two concurrent raises of one condition give one alert with count 2, on one
//! server or several sharing PostgreSQL.
//!
//! Webhooks never hold alerting up: notifications are queued to the dispatcher (dropped with
//! a log row when its queue is full), and the delivery log is written by a background task.

use super::AlertChange;
use super::webhook::{DispatcherConfig, RetryPolicy, WebhookDispatcher, WebhookSender, validate_secret, validate_url};
use crate::events::EventBus;
use crate::model::{
    Alert, AlertDraft, AlertFilter, AlertId, AlertKey, AlertSeverity, AlertSourceType, AlertSummary, EventType,
    ProjectId, Webhook, WebhookDelivery, WebhookEvent, WebhookId,
};
use crate::store::{AlertPage, Store};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Attempts at a compare-and-swap write before giving up with `Aborted`.
const CAS_ATTEMPTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertsConfig {
    /// Retries of alert notifications.
    pub retry: RetryPolicy,
    /// TestWebhook's retries (short: the caller waits for the answer).
    pub test_retry: RetryPolicy,
    pub dispatcher: DispatcherConfig,
    /// Operations queued by `raise_later` / `clear_later` before new ones are dropped.
    pub later_queue: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            retry: RetryPolicy::default(),
            test_retry: RetryPolicy {
                max_attempts: 2,
                initial_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(1),
                request_timeout: Duration::from_secs(5),
            },
            dispatcher: DispatcherConfig::default(),
            later_queue: 4_096,
        }
    }
}

/// The alert service. Cheap to clone; all clones share the store, bus and dispatcher.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    events: EventBus,
    dispatcher: WebhookDispatcher,
    test_sender: WebhookSender,
    later: mpsc::Sender<Later>,
}

enum Later {
    Raise(AlertDraft),
    Clear(AlertKey),
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

impl Alerts {
    /// Starts the service on the current tokio runtime: the webhook dispatcher, the task
    /// that persists its delivery log and the queue of `raise_later`/`clear_later`. Old
    /// delivery rows and resolved alerts are pruned by [`crate::retention`].
    pub fn start(store: Store, events: EventBus, config: AlertsConfig) -> Result<Alerts> {
        let (dispatcher, mut log) = WebhookDispatcher::start(WebhookSender::new(config.retry)?, config.dispatcher);
        let (later, mut later_rx) = mpsc::channel(config.later_queue.max(1));
        let alerts = Alerts {
            inner: Arc::new(Inner {
                store: store.clone(),
                events,
                dispatcher,
                test_sender: WebhookSender::new(config.test_retry)?,
                later,
            }),
        };
        let log_store = store.clone();
        tokio::spawn(async move {
            while let Some(d) = log.recv().await {
                persist_delivery(&log_store, &d).await;
            }
        });
        // The queue task holds only a weak handle: it ends once every `Alerts` is dropped.
        let weak = Arc::downgrade(&alerts.inner);
        tokio::spawn(async move {
            while let Some(op) = later_rx.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                let a = Alerts { inner };
                let r = match op {
                    Later::Raise(d) => a.raise(d).await.map(|_| ()),
                    Later::Clear(k) => a.clear(&k).await.map(|_| ()),
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "applying a queued alert change failed");
                }
            }
        });
        Ok(alerts)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Webhook delivery as a background task (each delivery is one run).
    pub fn delivery_task(&self) -> crate::background::Task {
        self.inner.dispatcher.task().clone()
    }

    /// Raises an alert: creates it, or bumps the open alert with the same source and
    /// condition (escalating it when the severity went up). Returns the alert as stored.
    pub async fn raise(&self, draft: AlertDraft) -> Result<Alert> {
        let draft = draft.validated()?;
        let key = draft.key();
        let project = self.project_of(&draft).await;
        for _ in 0..CAS_ATTEMPTS {
            let open = self.inner.store.open_alert(&key).await?;
            if let Some(s) = &open
                && super::supersedes(&s.alert, &draft)
            {
                // Resolved as it was raised (its node in its text), then the new one.
                if let Some(change) = super::clear(Some(&s.alert), now())
                    && self
                        .inner
                        .store
                        .update_alert_if(change.alert(), s.version)
                        .await?
                        .is_some()
                {
                    self.announce(&change);
                }
                continue;
            }
            let mut change = super::raise(open.as_ref().map(|s| &s.alert), draft.clone(), now());
            if let AlertChange::Created(a) = &mut change {
                a.project_id = project;
            }
            let written = match (&change, &open) {
                (AlertChange::Updated { alert, .. }, Some(s)) => {
                    self.inner.store.update_alert_if(alert, s.version).await?.is_some()
                }
                _ => self.inner.store.insert_alert(change.alert()).await?,
            };
            if written {
                self.announce(&change);
                return Ok(change.into_alert());
            }
        }
        Err(Error::aborted(format!("alert {key} is changing too fast; retry")))
    }

    /// The project an alert belongs to: its VM's, else (cluster alerts, a VM already gone)
    /// the default project.
    async fn project_of(&self, draft: &AlertDraft) -> ProjectId {
        if draft.source_type != AlertSourceType::Vm {
            return ProjectId::DEFAULT;
        }
        match draft.source_id.parse() {
            Ok(id) => match self.inner.store.get_vm(id).await {
                Ok(vm) => vm.project_id,
                Err(_) => ProjectId::DEFAULT,
            },
            Err(_) => ProjectId::DEFAULT,
        }
    }

    /// Auto-resolve: the condition of `key` cleared. Returns the resolved alert, `None` when
    /// none was open.
    pub async fn clear(&self, key: &AlertKey) -> Result<Option<Alert>> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(open) = self.inner.store.open_alert(key).await? else {
                return Ok(None);
            };
            let Some(change) = super::clear(Some(&open.alert), now()) else {
                return Ok(None);
            };
            if self
                .inner
                .store
                .update_alert_if(change.alert(), open.version)
                .await?
                .is_some()
            {
                self.announce(&change);
                return Ok(Some(change.into_alert()));
            }
        }
        Err(Error::aborted(format!("alert {key} is changing too fast; retry")))
    }

    /// [`raise`](Self::raise) from code that must neither wait nor fail: queued and applied
    /// in order (with `clear_later`) by a background task; errors are logged.
    pub fn raise_later(&self, draft: AlertDraft) {
        self.queue(Later::Raise(draft));
    }

    /// [`clear`](Self::clear), queued like [`raise_later`](Self::raise_later).
    pub fn clear_later(&self, key: AlertKey) {
        self.queue(Later::Clear(key));
    }

    fn queue(&self, op: Later) {
        if let Err(e) = self.inner.later.try_send(op) {
            let what = match e.into_inner() {
                Later::Raise(d) => format!("raise {}", d.key()),
                Later::Clear(k) => format!("clear {k}"),
            };
            tracing::error!(op = %what, "alert queue full; alert change dropped");
        }
    }

    /// Level-triggered alerting for a checker that owns the alerts matching `scope` (e.g.
    /// every `node.unreachable`): `active` are the conditions it sees now. Open alerts in
    /// scope that are not active are resolved; active ones are raised when not open yet or
    /// when their severity changed (an unchanged open alert is left alone, so a checker
    /// running every few seconds does not bump counts or notify on every run). Returns the
    /// alerts that changed.
    pub async fn reconcile(&self, scope: &AlertFilter, active: Vec<AlertDraft>) -> Result<Vec<Alert>> {
        let scope = AlertFilter {
            resolved: Some(false),
            ..scope.clone()
        };
        let open: BTreeMap<AlertKey, Alert> = self
            .inner
            .store
            .all_alerts(&scope)
            .await?
            .into_iter()
            .map(|a| (a.key(), a))
            .collect();
        let mut wanted: BTreeMap<AlertKey, AlertDraft> = BTreeMap::new();
        for d in active {
            wanted.insert(d.key(), d);
        }
        let mut changed = Vec::new();
        for key in open.keys().filter(|k| !wanted.contains_key(*k)) {
            if let Some(a) = self.clear(key).await? {
                changed.push(a);
            }
        }
        for (key, d) in wanted {
            if open.get(&key).is_some_and(|a| a.severity == d.severity) {
                continue;
            }
            changed.push(self.raise(d).await?);
        }
        Ok(changed)
    }

    pub async fn get(&self, id: AlertId) -> Result<Alert> {
        self.inner
            .store
            .get_alert(id)
            .await?
            .map(|s| s.alert)
            .ok_or_else(|| Error::not_found("alert", id))
    }

    pub async fn list(&self, filter: &AlertFilter, page_size: u32, page_token: &str) -> Result<AlertPage> {
        self.inner.store.list_alerts(filter, page_size, page_token).await
    }

    /// Counts of open alerts by severity, of these projects (`None`: every project).
    pub async fn summary(&self, projects: Option<&[ProjectId]>) -> Result<AlertSummary> {
        self.inner.store.alert_summary(projects).await
    }

    /// AcknowledgeAlert: records who and when (the first acknowledgement is kept).
    pub async fn acknowledge(&self, id: AlertId, by: &str) -> Result<Alert> {
        self.modify(id, EventType::Acknowledged, WebhookEvent::AlertAcknowledged, |a, t| {
            super::acknowledge(a, by, t)
        })
        .await
    }

    /// ResolveAlert: resolves an alert by hand (resolving twice keeps the first time).
    pub async fn resolve(&self, id: AlertId) -> Result<Alert> {
        self.modify(id, EventType::Resolved, WebhookEvent::AlertResolved, super::resolve)
            .await
    }

    async fn modify(
        &self,
        id: AlertId,
        event: EventType,
        hook_event: WebhookEvent,
        f: impl Fn(&Alert, DateTime<Utc>) -> Alert,
    ) -> Result<Alert> {
        for _ in 0..CAS_ATTEMPTS {
            let stored = self
                .inner
                .store
                .get_alert(id)
                .await?
                .ok_or_else(|| Error::not_found("alert", id))?;
            let next = f(&stored.alert, now());
            if next == stored.alert {
                return Ok(next); // idempotent: nothing changed
            }
            if self.inner.store.update_alert_if(&next, stored.version).await?.is_some() {
                self.inner.events.publish_alert(event, &next);
                self.notify(hook_event, &next);
                return Ok(next);
            }
        }
        Err(Error::aborted(format!("alert {id} is changing too fast; retry")))
    }

    /// Publishes a stored change and queues its webhook notification.
    fn announce(&self, change: &AlertChange) {
        let alert = change.alert();
        self.inner.events.publish_alert(change.event_type(), alert);
        match change {
            AlertChange::Created(_) => {
                tracing::warn!(alert = %alert.id, key = %alert.key(), severity = %alert.severity, title = %alert.title, "alert raised")
            }
            AlertChange::Resolved(_) => tracing::info!(alert = %alert.id, key = %alert.key(), "alert resolved"),
            AlertChange::Updated { .. } => {
                tracing::debug!(alert = %alert.id, count = alert.count, "alert raised again")
            }
        }
        if let Some(ev) = change.webhook_event() {
            self.notify(ev, alert);
        }
    }

    /// Queues `event` to every webhook that wants the alert's severity. Reading the list
    /// and queueing happen in a task: the caller never waits for the store or a receiver.
    fn notify(&self, event: WebhookEvent, alert: &Alert) {
        let inner = Arc::clone(&self.inner);
        let alert = alert.clone();
        tokio::spawn(async move {
            match inner.store.all_webhooks().await {
                Ok(hooks) => {
                    inner.dispatcher.notify(&hooks, event, &alert);
                }
                Err(e) => tracing::error!(error = %e, alert = %alert.id, "reading webhooks to notify failed"),
            }
        });
    }

    // ---- webhooks ----

    /// CreateWebhook: `severities` empty means all; `secret` empty means unsigned.
    pub async fn create_webhook(&self, url: &str, severities: Vec<AlertSeverity>, secret: &str) -> Result<Webhook> {
        let url = validate_url(url)?;
        validate_secret(secret)?;
        let mut severities = severities;
        severities.dedup();
        let w = Webhook {
            id: WebhookId::new(),
            url,
            severities,
            secret: (!secret.is_empty()).then(|| secret.to_string()),
            created_at: now(),
            last_delivery_at: None,
            last_delivery_status: None,
        };
        self.inner.store.insert_webhook(&w).await?;
        tracing::info!(webhook = %w.id, signed = w.has_secret(), "webhook created");
        Ok(w)
    }

    /// Every webhook (their secrets included: convert with `Webhook::to_proto`, which
    /// leaves them out).
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        self.inner.store.all_webhooks().await
    }

    pub async fn get_webhook(&self, id: WebhookId) -> Result<Webhook> {
        self.inner
            .store
            .get_webhook(id)
            .await?
            .ok_or_else(|| Error::not_found("webhook", id))
    }

    pub async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        if !self.inner.store.delete_webhook(id).await? {
            return Err(Error::not_found("webhook", id));
        }
        Ok(())
    }

    /// TestWebhook: sends a `webhook.test` delivery now (short retries) and returns its
    /// attempts, which also go to the delivery log.
    pub async fn test_webhook(&self, id: WebhookId) -> Result<Vec<WebhookDelivery>> {
        let hook = self.get_webhook(id).await?;
        let report = self.inner.test_sender.deliver(&hook, WebhookEvent::Test, None).await;
        for d in &report.attempts {
            persist_delivery(&self.inner.store, d).await;
        }
        Ok(report.attempts)
    }

    /// The newest delivery attempts of a webhook, newest first.
    pub async fn deliveries(&self, id: WebhookId, limit: u32) -> Result<Vec<WebhookDelivery>> {
        self.inner.store.webhook_deliveries(id, limit).await
    }

    /// Notifications dropped because the dispatcher's queue was full, since start.
    pub fn dropped_notifications(&self) -> u64 {
        self.inner.dispatcher.dropped()
    }
}

/// HA's and DRS's alerts go through the service (dedupe, events, webhooks); failures are
/// logged, never returned to their loops.
impl super::AlertSink for Alerts {
    fn raise(&self, draft: AlertDraft) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let key = draft.key();
            if let Err(e) = Alerts::raise(self, draft).await {
                tracing::error!(error = %e, %key, "raising an alert failed");
            }
        })
    }

    fn resolve(&self, key: AlertKey) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.clear(&key).await {
                tracing::error!(error = %e, %key, "resolving an alert failed");
            }
        })
    }
}

async fn persist_delivery(store: &Store, d: &WebhookDelivery) {
    if let Err(e) = store.record_webhook_delivery(d).await {
        tracing::warn!(error = %e, webhook = %d.webhook_id, delivery_id = %d.delivery_id, attempt = d.attempt,
            "writing the webhook delivery log failed");
    }
}

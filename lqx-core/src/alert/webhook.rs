//! Webhook delivery: signed JSON POSTs with retries, and a dispatcher that runs them in the
//! background so a slow or failing receiver never holds up alerting.
//!
//! What a receiver gets: `POST <url>` with `Content-Type: application/json` and
//!
//! ```text
//! X-Lqx-Event:      alert.created | alert.escalated | alert.acknowledged | alert.resolved | webhook.test
//! X-Lqx-Delivery:   <uuid, the same on every retry of one notification: dedupe on it>
//! X-Lqx-Timestamp:  <unix seconds when this attempt was sent>
//! X-Lqx-Signature:  sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>   (only with a secret)
//!
//! {"event": "alert.created", "delivery_id": "...", "sent_at": "<RFC 3339>", "alert": {...}}
//! ```
//!
//! The signature covers the timestamp and the exact body bytes, so a receiver that checks
//! it (see [`verify_signature`]) and rejects timestamps more than a few minutes from its own
//! clock cannot be fed a replayed or altered request. Each retry is signed afresh.
//!
//! Retries: a connection error, a timeout, 408, 429 or any 5xx is retried with exponential
//! backoff (`initial_backoff` doubling up to `max_backoff`, at least a receiver's
//! `Retry-After`), up to `max_attempts`; any other answer outside 2xx (a 4xx: the receiver
//! refused the request, retrying will not change its mind; a 3xx: redirects are not
//! followed) fails at once. Every attempt yields a [`WebhookDelivery`] row for the delivery
//! log.

use super::AlertError;
use crate::model::{Alert, Webhook, WebhookDelivery, WebhookDeliveryStatus, WebhookEvent};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

pub const SIGNATURE_HEADER: &str = "X-Lqx-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Lqx-Timestamp";
pub const EVENT_HEADER: &str = "X-Lqx-Event";
pub const DELIVERY_HEADER: &str = "X-Lqx-Delivery";
/// How far a receiver should accept a timestamp from its own clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_SECRET_LEN: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// Checks a webhook URL: absolute http or https with a host, no credentials (they would be
/// shown by ListWebhooks; use the secret instead). Returns it normalized.
///
/// Private and loopback addresses are allowed on purpose: webhooks are created by
/// administrators (`alert:manage`) and commonly point at an internal receiver.
pub fn validate_url(url: &str) -> Result<String, AlertError> {
    let url = url.trim();
    if url.len() > MAX_URL_LEN {
        return Err(AlertError::InvalidUrl(format!("longer than {MAX_URL_LEN} characters")));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| AlertError::InvalidUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AlertError::InvalidUrl(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(AlertError::InvalidUrl("no host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(AlertError::InvalidUrl(
            "credentials in the URL are not allowed; use the webhook secret".into(),
        ));
    }
    Ok(parsed.to_string())
}

pub fn validate_secret(secret: &str) -> Result<(), AlertError> {
    if secret.len() > MAX_SECRET_LEN {
        Err(AlertError::SecretTooLong)
    } else {
        Ok(())
    }
}

/// The `X-Lqx-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Malformed timestamp header")]
    BadTimestamp,
    #[error("Timestamp outside the accepted window")]
    Stale,
    #[error("Malformed signature header (expected sha256=<hex>)")]
    BadSignature,
    #[error("Signature does not match")]
    Mismatch,
}

/// For receivers: checks the headers of a delivery against the shared secret. The
/// comparison is constant-time; `now` is the receiver's clock and `tolerance` how far the
/// timestamp may be from it.
pub fn verify_signature(
    secret: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now.timestamp().abs_diff(ts) > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    let hex_sig = signature_header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::BadSignature)?;
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::BadSignature)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

/// The JSON body of a delivery.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookPayload<'a> {
    pub event: &'static str,
    pub delivery_id: Uuid,
    pub sent_at: DateTime<Utc>,
    /// Absent for `webhook.test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<&'a Alert>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Per attempt, connect to last byte.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): initial, 2x, 4x, ... capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// The attempts of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivery_id: Uuid,
    pub attempts: Vec<WebhookDelivery>,
}

impl DeliveryReport {
    pub fn delivered(&self) -> bool {
        self.attempts
            .last()
            .is_some_and(|a| a.status == WebhookDeliveryStatus::Delivered)
    }
    pub fn last(&self) -> Option<&WebhookDelivery> {
        self.attempts.last()
    }
}

/// Sends one notification, with retries. Cheap to clone (shares the HTTP client).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    policy: RetryPolicy,
}

enum Outcome {
    Delivered(u16),
    /// Worth another attempt; with the receiver's Retry-After, if any.
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    Fatal {
        status: Option<u16>,
        error: String,
    },
}

impl WebhookSender {
    pub fn new(policy: RetryPolicy) -> crate::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("lqx-webhook/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.request_timeout)
            .build()
            .map_err(crate::Error::internal)?;
        Ok(WebhookSender {
            client,
            policy: RetryPolicy {
                max_attempts: policy.max_attempts.max(1),
                ..policy
            },
        })
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Delivers `event` (about `alert`, none for a test) to `hook`, retrying per the
    /// policy; returns every attempt.
    pub async fn deliver(&self, hook: &Webhook, event: WebhookEvent, alert: Option<&Alert>) -> DeliveryReport {
        let delivery_id = Uuid::now_v7();
        let mut attempts = Vec::new();
        self.deliver_with(hook, event, alert, delivery_id, &mut |d| attempts.push(d))
            .await;
        DeliveryReport { delivery_id, attempts }
    }

    /// [`deliver`](Self::deliver), handing each attempt's record to `on_attempt` as soon as
    /// it is known (the dispatcher logs them while retries are still pending).
    pub async fn deliver_with(
        &self,
        hook: &Webhook,
        event: WebhookEvent,
        alert: Option<&Alert>,
        delivery_id: Uuid,
        on_attempt: &mut (dyn FnMut(WebhookDelivery) + Send),
    ) {
        for attempt in 1..=self.policy.max_attempts {
            let started = tokio::time::Instant::now();
            let outcome = self.attempt(hook, event, alert, delivery_id).await;
            let last = attempt == self.policy.max_attempts;
            let (status, http_status, error, wait) = match outcome {
                Outcome::Delivered(code) => (WebhookDeliveryStatus::Delivered, Some(code), None, None),
                Outcome::Fatal { status, error } => (WebhookDeliveryStatus::Failed, status, Some(error), None),
                Outcome::Retry { status, error, .. } if last => {
                    (WebhookDeliveryStatus::Failed, status, Some(error), None)
                }
                Outcome::Retry {
                    status,
                    error,
                    retry_after,
                } => {
                    let wait = self
                        .policy
                        .backoff(attempt)
                        .max(retry_after.unwrap_or_default().min(self.policy.max_backoff));
                    (WebhookDeliveryStatus::Retrying, status, Some(error), Some(wait))
                }
            };
            if status != WebhookDeliveryStatus::Delivered {
                tracing::warn!(webhook = %hook.id, %delivery_id, attempt, status = %status, error = error.as_deref().unwrap_or(""),
                    "webhook delivery attempt failed");
            }
            on_attempt(WebhookDelivery {
                delivery_id,
                webhook_id: hook.id,
                alert_id: alert.map(|a| a.id),
                event,
                attempt,
                status,
                http_status,
                error,
                duration_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
                time: Utc::now(),
            });
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return,
            }
        }
    }

    async fn attempt(&self, hook: &Webhook, event: WebhookEvent, alert: Option<&Alert>, delivery_id: Uuid) -> Outcome {
        let now = Utc::now();
        let payload = WebhookPayload {
            event: event.as_str(),
            delivery_id,
            sent_at: now,
            alert,
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Fatal {
                    status: None,
                    error: format!("cannot encode payload: {e}"),
                };
            }
        };
        let timestamp = now.timestamp();
        let mut req = self
            .client
            .post(&hook.url)
            .timeout(self.policy.request_timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.as_str())
            .header(DELIVERY_HEADER, delivery_id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string());
        if let Some(secret) = hook.secret.as_deref().filter(|s| !s.is_empty()) {
            req = req.header(SIGNATURE_HEADER, sign(secret.as_bytes(), timestamp, &body));
        }
        match req.body(body).send().await {
            Ok(resp) => {
                let code = resp.status();
                if code.is_success() {
                    return Outcome::Delivered(code.as_u16());
                }
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let status = Some(code.as_u16());
                let error = format!("HTTP {code}");
                if code.is_server_error()
                    || code == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || code == reqwest::StatusCode::REQUEST_TIMEOUT
                {
                    Outcome::Retry {
                        status,
                        error,
                        retry_after,
                    }
                } else {
                    Outcome::Fatal { status, error }
                }
            }
            Err(e) => Outcome::Retry {
                status: None,
                error: describe(e, self.policy.request_timeout),
                retry_after: None,
            },
        }
    }
}

/// A transport error for the delivery log: without the URL, with its causes.
fn describe(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {}", humantime::format_duration(timeout));
    }
    let kind = if e.is_connect() {
        "connect error"
    } else {
        "request error"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Notifications waiting to be sent; when full, new ones are dropped (and logged).
    pub queue: usize,
    /// Deliveries in flight at once (each may be waiting out a timeout or a backoff).
    pub concurrency: usize,
    /// Delivery-log rows waiting for the owner to persist them; when full, rows are dropped
    /// (and logged), never the notifications.
    pub log_queue: usize,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            queue: 1_024,
            concurrency: 16,
            log_queue: 4_096,
        }
    }
}

struct Job {
    hook: Webhook,
    event: WebhookEvent,
    alert: Option<Alert>,
    delivery_id: Uuid,
}

/// Runs deliveries in background tasks. [`notify`](Self::notify) never waits: it queues
/// or, when the queue is full, drops with a warning and a `Dropped` row in the log. The
/// owner reads the delivery log from the receiver returned by [`start`](Self::start) and
/// persists it (and `last_delivery_at/status` of the webhook).
#[derive(Clone)]
pub struct WebhookDispatcher {
    jobs: mpsc::Sender<Job>,
    log: mpsc::Sender<WebhookDelivery>,
    dropped: Arc<AtomicU64>,
    /// Every delivery is one run of this task (on demand: no period).
    task: crate::background::Task,
}

/// The name of webhook delivery among the background tasks.
pub const DELIVERY_TASK: &str = "webhook-delivery";

/// One job's delivery, with every attempt logged: the attempts it took, or why it failed.
async fn deliver(sender: &WebhookSender, job: &Job, log: &mpsc::Sender<WebhookDelivery>) -> Result<u32, String> {
    let mut last: Option<(WebhookDeliveryStatus, Option<String>, u32)> = None;
    sender
        .deliver_with(&job.hook, job.event, job.alert.as_ref(), job.delivery_id, &mut |d| {
            last = Some((d.status, d.error.clone(), d.attempt));
            record(log, d)
        })
        .await;
    match last {
        Some((WebhookDeliveryStatus::Delivered, _, n)) => Ok(n),
        Some((status, error, n)) => Err(format!(
            "webhook {}: {status:?} after {n} attempts: {}",
            job.hook.id,
            error.unwrap_or_default()
        )),
        None => Err(format!("webhook {}: no attempt made", job.hook.id)),
    }
}

impl WebhookDispatcher {
    /// Starts the dispatcher task on the current tokio runtime. It stops when every clone
    /// of the dispatcher is dropped and the queue is drained.
    pub fn start(sender: WebhookSender, config: DispatcherConfig) -> (Self, mpsc::Receiver<WebhookDelivery>) {
        let (jobs, mut rx) = mpsc::channel::<Job>(config.queue.max(1));
        let (log, log_rx) = mpsc::channel(config.log_queue.max(1));
        let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let task_log = log.clone();
        let task = crate::background::Task::detached(DELIVERY_TASK, Duration::ZERO);
        let deliveries = task.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                    return;
                };
                let sender = sender.clone();
                let log = task_log.clone();
                let task = deliveries.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = task
                        .run_with(deliver(&sender, &job, &log), |n| format!("delivered ({n} attempts)"))
                        .await;
                });
            }
        });
        (
            WebhookDispatcher {
                jobs,
                log,
                dropped: Arc::new(AtomicU64::new(0)),
                task,
            },
            log_rx,
        )
    }

    /// The task every delivery runs as (to register among the background tasks).
    pub fn task(&self) -> &crate::background::Task {
        &self.task
    }

    /// Queues `event` about `alert` for every hook that wants its severity; returns how
    /// many were queued.
    pub fn notify(&self, hooks: &[Webhook], event: WebhookEvent, alert: &Alert) -> usize {
        hooks
            .iter()
            .filter(|h| h.wants(alert.severity))
            .filter(|h| self.enqueue((*h).clone(), event, Some(alert.clone())))
            .count()
    }

    /// Queues one delivery; `false` if it was dropped because the queue is full.
    pub fn enqueue(&self, hook: Webhook, event: WebhookEvent, alert: Option<Alert>) -> bool {
        let delivery_id = Uuid::now_v7();
        match self.jobs.try_send(Job {
            hook,
            event,
            alert,
            delivery_id,
        }) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(webhook = %job.hook.id, %delivery_id, event = job.event.as_str(),
                    "webhook delivery queue full; notification dropped");
                record(
                    &self.log,
                    WebhookDelivery {
                        delivery_id,
                        webhook_id: job.hook.id,
                        alert_id: job.alert.as_ref().map(|a| a.id),
                        event: job.event,
                        attempt: 0,
                        status: WebhookDeliveryStatus::Dropped,
                        http_status: None,
                        error: Some("delivery queue full".into()),
                        duration_ms: 0,
                        time: Utc::now(),
                    },
                );
                false
            }
        }
    }

    /// Notifications dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn record(log: &mpsc::Sender<WebhookDelivery>, d: WebhookDelivery) {
    if let Err(e) = log.try_send(d) {
        let d = match e {
            mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
        };
        tracing::warn!(webhook = %d.webhook_id, delivery_id = %d.delivery_id, attempt = d.attempt, status = %d.status,
            "webhook delivery log full; row dropped");
    }
}

#[cfg(test)]
mod tests;

pub mod testing;

//! Alerts, webhook receivers and their delivery log: plain data. The dedupe and
//! auto-resolve rules live in `crate::alert`.

use super::{AlertId, WebhookId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertSeverity {
    Critical,
    Warning,
    Info,
}

impl AlertSeverity {
    pub const ALL: [AlertSeverity; 3] = [AlertSeverity::Critical, AlertSeverity::Warning, AlertSeverity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Critical => "CRITICAL",
            AlertSeverity::Warning => "WARNING",
            AlertSeverity::Info => "INFO",
        }
    }
    /// Case-insensitive; the proto spelling `ALERT_SEVERITY_CRITICAL` is accepted too.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_uppercase();
        let s = s.strip_prefix("ALERT_SEVERITY_").unwrap_or(&s);
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
    /// Higher is more severe (Critical 3, Warning 2, Info 1).
    pub fn rank(self) -> u8 {
        match self {
            AlertSeverity::Critical => 3,
            AlertSeverity::Warning => 2,
            AlertSeverity::Info => 1,
        }
    }
}

impl fmt::Display for AlertSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertSourceType {
    Vm,
    Host,
    Storage,
    Network,
    Cluster,
    System,
}

impl AlertSourceType {
    pub const ALL: [AlertSourceType; 6] = [
        AlertSourceType::Vm,
        AlertSourceType::Host,
        AlertSourceType::Storage,
        AlertSourceType::Network,
        AlertSourceType::Cluster,
        AlertSourceType::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertSourceType::Vm => "VM",
            AlertSourceType::Host => "HOST",
            AlertSourceType::Storage => "STORAGE",
            AlertSourceType::Network => "NETWORK",
            AlertSourceType::Cluster => "CLUSTER",
            AlertSourceType::System => "SYSTEM",
        }
    }
    /// Case-insensitive; `node` means HOST, and the proto spelling
    /// `ALERT_SOURCE_TYPE_VM` is accepted too.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_uppercase();
        let s = s.strip_prefix("ALERT_SOURCE_TYPE_").unwrap_or(&s);
        if s == "NODE" {
            return Some(AlertSourceType::Host);
        }
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for AlertSourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies "the same alert": while an alert with this key is open, raising it again
/// updates that alert instead of creating another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    pub source_type: AlertSourceType,
    pub source_id: String,
    /// e.g. `node.unreachable`, `vm.ha_restart_failed`.
    pub condition: String,
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.source_type, self.source_id, self.condition)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub severity: AlertSeverity,
    pub title: String,
    pub message: String,
    pub source_type: AlertSourceType,
    /// The VM or node id, the storage pool or network name, `cluster`, or the component.
    pub source_id: String,
    pub source_name: String,
    /// Dedupe key together with the source.
    pub condition: String,
    /// Times raised while open (1 when created).
    pub count: u32,
    pub acknowledged: bool,
    /// Username of who acknowledged it.
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved: bool,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The VM's project for a VM alert; the default project for cluster alerts (nodes,
    /// components), which only cluster staff and default-project members see.
    #[serde(default = "super::ids::default_project")]
    pub project_id: super::ProjectId,
}

impl Alert {
    pub fn key(&self) -> AlertKey {
        AlertKey {
            source_type: self.source_type,
            source_id: self.source_id.clone(),
            condition: self.condition.clone(),
        }
    }
    pub fn is_open(&self) -> bool {
        !self.resolved
    }
}

/// An alert as a component raises it, before dedupe decides whether it is new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDraft {
    pub severity: AlertSeverity,
    pub title: String,
    pub message: String,
    pub source_type: AlertSourceType,
    pub source_id: String,
    pub source_name: String,
    pub condition: String,
}

impl AlertDraft {
    pub fn key(&self) -> AlertKey {
        AlertKey {
            source_type: self.source_type,
            source_id: self.source_id.clone(),
            condition: self.condition.clone(),
        }
    }
}

/// Counts of open (unresolved) alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSummary {
    pub critical: u32,
    pub warning: u32,
    pub info: u32,
    /// Open and not acknowledged.
    pub unacknowledged: u32,
    pub total_open: u32,
}

/// ListAlerts filters; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFilter {
    pub severity: Option<AlertSeverity>,
    pub source_type: Option<AlertSourceType>,
    pub source_id: Option<String>,
    pub acknowledged: Option<bool>,
    pub resolved: Option<bool>,
    /// Only alerts of these projects (the caller's); `None`: every project.
    pub projects: Option<Vec<super::ProjectId>>,
}

impl AlertFilter {
    pub fn matches(&self, a: &Alert) -> bool {
        self.projects.as_ref().is_none_or(|ps| ps.contains(&a.project_id))
            && self.severity.is_none_or(|s| a.severity == s)
            && self.source_type.is_none_or(|t| a.source_type == t)
            && self.source_id.as_deref().is_none_or(|id| a.source_id == id)
            && self.acknowledged.is_none_or(|v| a.acknowledged == v)
            && self.resolved.is_none_or(|v| a.resolved == v)
    }
}

/// A webhook receiver of alert notifications.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    /// http or https.
    pub url: String,
    /// Severities to notify about; empty: all.
    #[serde(default)]
    pub severities: Vec<AlertSeverity>,
    /// HMAC-SHA256 key of the signature header. Stored, never returned and never
    /// serialized: the store persists it as a column of its own.
    #[serde(skip)]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_delivery_status: Option<WebhookDeliveryStatus>,
}

impl Webhook {
    pub fn has_secret(&self) -> bool {
        self.secret.as_deref().is_some_and(|s| !s.is_empty())
    }
    /// Whether an alert of this severity is sent to this receiver.
    pub fn wants(&self, severity: AlertSeverity) -> bool {
        self.severities.is_empty() || self.severities.contains(&severity)
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("severities", &self.severities)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("created_at", &self.created_at)
            .field("last_delivery_at", &self.last_delivery_at)
            .field("last_delivery_status", &self.last_delivery_status)
            .finish()
    }
}

/// Why a webhook is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A new alert.
    AlertCreated,
    /// An open alert was raised again with a higher severity.
    AlertEscalated,
    AlertAcknowledged,
    AlertResolved,
    /// TestWebhook.
    Test,
}

impl WebhookEvent {
    /// As sent in the payload's `event` field and the `X-Lqx-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::AlertCreated => "alert.created",
            WebhookEvent::AlertEscalated => "alert.escalated",
            WebhookEvent::AlertAcknowledged => "alert.acknowledged",
            WebhookEvent::AlertResolved => "alert.resolved",
            WebhookEvent::Test => "webhook.test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebhookDeliveryStatus {
    /// The receiver answered 2xx.
    Delivered,
    /// This attempt failed; another follows.
    Retrying,
    /// This attempt failed and it was the last one (or the receiver refused with a 4xx).
    Failed,
    /// Never sent: the delivery queue was full.
    Dropped,
}

impl WebhookDeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Delivered => "DELIVERED",
            WebhookDeliveryStatus::Retrying => "RETRYING",
            WebhookDeliveryStatus::Failed => "FAILED",
            WebhookDeliveryStatus::Dropped => "DROPPED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "DELIVERED" => WebhookDeliveryStatus::Delivered,
            "RETRYING" => WebhookDeliveryStatus::Retrying,
            "FAILED" => WebhookDeliveryStatus::Failed,
            "DROPPED" => WebhookDeliveryStatus::Dropped,
            _ => return None,
        })
    }
}

impl fmt::Display for WebhookDeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt to deliver one notification: a row of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Same for every attempt of one notification (also sent as `X-Lqx-Delivery`).
    pub delivery_id: uuid::Uuid,
    pub webhook_id: WebhookId,
    /// `None` for a test delivery.
    pub alert_id: Option<AlertId>,
    pub event: WebhookEvent,
    /// 1-based.
    pub attempt: u32,
    pub status: WebhookDeliveryStatus,
    pub http_status: Option<u16>,
    /// Why the attempt failed (connect error, timeout, `HTTP 500`); never holds the secret.
    pub error: Option<String>,
    pub duration_ms: u64,
    pub time: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        for s in AlertSeverity::ALL {
            assert_eq!(AlertSeverity::parse(s.as_str()), Some(s));
            assert_eq!(AlertSeverity::parse(&s.as_str().to_lowercase()), Some(s));
            assert_eq!(AlertSeverity::parse(&format!("ALERT_SEVERITY_{}", s.as_str())), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        for t in AlertSourceType::ALL {
            assert_eq!(AlertSourceType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        assert_eq!(AlertSourceType::parse("node"), Some(AlertSourceType::Host));
        assert_eq!(AlertSourceType::parse("disk"), None);
        assert!(AlertSeverity::Critical.rank() > AlertSeverity::Warning.rank());
        assert!(AlertSeverity::Warning.rank() > AlertSeverity::Info.rank());
    }

    #[test]
    fn webhook_never_shows_its_secret() {
        let w = Webhook {
            id: WebhookId::new(),
            url: "https://example.test/hook".into(),
            severities: vec![AlertSeverity::Critical],
            secret: Some("s3cr3t-value".into()),
            created_at: DateTime::UNIX_EPOCH,
            last_delivery_at: None,
            last_delivery_status: None,
        };
        assert!(!format!("{w:?}").contains("s3cr3t-value"));
        assert!(!serde_json::to_string(&w).unwrap().contains("s3cr3t-value"));
        assert!(w.has_secret());
        assert!(w.wants(AlertSeverity::Critical));
        assert!(!w.wants(AlertSeverity::Info));
    }
}

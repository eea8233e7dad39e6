//! Alerts: the dedupe and auto-resolve rules (pure functions over the open alert and `now`),
//! the helpers components raise alerts with, list filtering and the summary, and (feature
//! `server`) webhook delivery. Their proto conversions are in `api::convert::alert`.
//!
//! The rules, in plain words:
//! - An alert is identified by its source (type + id) and its condition (e.g.
//!   `node.unreachable`). While an alert with that key is open (not resolved), raising it
//!   again updates that alert (latest title, message, severity and source name; `count`
//!   bumped, `updated_at` = now) instead of creating a second one. A repeat with another
//!   title is about another subject (titles name the host: "domain recreated on host-b"):
//!   it supersedes the open alert, which is resolved with its text intact, and a new alert
//!   is created, so an alert's text always names the node it was raised for.
//! - If the new severity is higher than the open alert's, the alert is escalated: a previous
//!   acknowledgement is cleared (the operator acknowledged something milder) and webhooks
//!   are notified again. A plain repeat does not notify.
//! - When the condition clears, the open alert is resolved (`resolved_at` = now). After that,
//!   raising the same key creates a new alert.
//! - Level-triggered checkers use [`reconcile`]: given the open alerts a checker owns and
//!   the conditions it sees active now, it raises the active ones and resolves the rest.
//! - Acknowledge and resolve are idempotent: doing it twice keeps the first who/when.

#[cfg(feature = "server")]
pub mod monitor;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod webhook;

/// Where a leader loop's alerts go (HA, DRS): the alert service when there is one.
pub trait AlertSink: Send + Sync + 'static {
    /// Raises (or refreshes, dedupe is the sink's) an alert.
    fn raise(&self, draft: AlertDraft) -> futures::future::BoxFuture<'_, ()>;
    /// The condition cleared: resolve its open alert, if any.
    fn resolve(&self, key: AlertKey) -> futures::future::BoxFuture<'_, ()>;
}

use crate::model::{
    Alert, AlertDraft, AlertFilter, AlertId, AlertKey, AlertSeverity, AlertSourceType, AlertSummary, NodeId, VmId,
    WebhookEvent,
};
use chrono::{DateTime, Utc};

/// Well-known conditions (the dedupe key together with the source). Components may use
/// others; keep them `area.what` in lowercase.
pub mod conditions {
    pub const VM_FAILED: &str = "vm.failed";
    pub const VM_HA_RESTART_FAILED: &str = "vm.ha_restart_failed";
    pub const VM_HA_RESTARTED: &str = "vm.ha_restarted";
    pub const VM_MIGRATION_FAILED: &str = "vm.migration_failed";
    pub const VM_UNPLACEABLE: &str = "vm.unplaceable";
    /// The host had lost the VM's domain; it was defined (and started) again.
    pub const VM_DOMAIN_RECREATED: &str = "vm.domain_recreated";
    pub const NODE_UNREACHABLE: &str = "node.unreachable";
    pub const NODE_FAILED: &str = "node.failed";
    pub const NODE_FENCED: &str = "node.fenced";
    /// A host has an `lqx-` domain no VM record knows.
    pub const NODE_UNKNOWN_DOMAIN: &str = "node.unknown_domain";
    pub const NODE_CPU_HIGH: &str = "node.cpu_high";
    pub const NODE_MEMORY_HIGH: &str = "node.memory_high";
    pub const STORAGE_LOW: &str = "storage.low";
    pub const CLUSTER_CAPACITY_LOW: &str = "cluster.capacity_low";
    pub const CLUSTER_IMBALANCED: &str = "cluster.imbalanced";
    pub const DRS_APPLY_FAILED: &str = "drs.apply_failed";
    pub const DRS_NODE_UNRELIEVED: &str = "drs.node_unrelieved";
    pub const DRS_VM_UNMOVABLE: &str = "drs.vm_unmovable";
    pub const DRS_VM_NOT_LIVE_MOVABLE: &str = "drs.vm_not_live_movable";
    pub const SYSTEM_LEADER_LOST: &str = "system.leader_lost";
    pub const SYSTEM_WEBHOOK_FAILING: &str = "system.webhook_failing";
}

/// Longest condition accepted.
pub const MAX_CONDITION_LEN: usize = 128;
/// Longest title; longer ones are cut (alerts must never fail to be raised over a title).
pub const MAX_TITLE_LEN: usize = 256;
/// Longest message; longer ones are cut.
pub const MAX_MESSAGE_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("Invalid condition {0:?}: use lowercase letters, digits, '.', '_' or '-' (at most 128)")]
    InvalidCondition(String),
    #[error("Alert source id is empty")]
    EmptySource,
    #[error("Invalid webhook URL: {0}")]
    InvalidUrl(String),
    #[error("Webhook secret is too long (at most 1024 bytes)")]
    SecretTooLong,
    #[error("Invalid severity {0:?} (expected critical, warning or info)")]
    InvalidSeverity(String),
    #[error("Invalid source type {0:?} (expected vm, host, storage, network, cluster or system)")]
    InvalidSourceType(String),
}

impl From<AlertError> for crate::Error {
    fn from(e: AlertError) -> Self {
        let field = match &e {
            AlertError::InvalidCondition(_) => "condition",
            AlertError::EmptySource => "source_id",
            AlertError::InvalidUrl(_) => "url",
            AlertError::SecretTooLong => "secret",
            AlertError::InvalidSeverity(_) => "severity",
            AlertError::InvalidSourceType(_) => "source_type",
        };
        crate::Error::invalid(field, e)
    }
}

/// What raising, resolving or reconciling did to the alert list; the caller persists it
/// and publishes it (event bus, webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    /// Insert this new alert.
    Created(Alert),
    /// Update this existing open alert (count bumped). `escalated`: its severity went up.
    Updated { alert: Alert, escalated: bool },
    /// Update this alert: now resolved.
    Resolved(Alert),
}

impl AlertChange {
    pub fn alert(&self) -> &Alert {
        match self {
            AlertChange::Created(a) | AlertChange::Updated { alert: a, .. } | AlertChange::Resolved(a) => a,
        }
    }
    pub fn into_alert(self) -> Alert {
        match self {
            AlertChange::Created(a) | AlertChange::Updated { alert: a, .. } | AlertChange::Resolved(a) => a,
        }
    }
    /// The webhook notification this change deserves, if any (repeats of an open alert
    /// at the same or a lower severity send none).
    pub fn webhook_event(&self) -> Option<WebhookEvent> {
        match self {
            AlertChange::Created(_) => Some(WebhookEvent::AlertCreated),
            AlertChange::Updated { escalated: true, .. } => Some(WebhookEvent::AlertEscalated),
            AlertChange::Updated { escalated: false, .. } => None,
            AlertChange::Resolved(_) => Some(WebhookEvent::AlertResolved),
        }
    }
    /// The event-bus type of this change.
    pub fn event_type(&self) -> crate::model::EventType {
        use crate::model::EventType;
        match self {
            AlertChange::Created(_) => EventType::Created,
            AlertChange::Updated { .. } => EventType::Updated,
            AlertChange::Resolved(_) => EventType::Resolved,
        }
    }
}

impl AlertDraft {
    /// Checks the key; cuts an overlong title or message (with an ellipsis) rather than
    /// refusing the alert.
    pub fn validated(mut self) -> Result<AlertDraft, AlertError> {
        validate_condition(&self.condition)?;
        if self.source_id.trim().is_empty() {
            return Err(AlertError::EmptySource);
        }
        truncate(&mut self.title, MAX_TITLE_LEN);
        truncate(&mut self.message, MAX_MESSAGE_LEN);
        Ok(self)
    }
}

pub fn validate_condition(condition: &str) -> Result<(), AlertError> {
    let ok = !condition.is_empty()
        && condition.len() <= MAX_CONDITION_LEN
        && condition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AlertError::InvalidCondition(condition.to_string()))
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max.saturating_sub('…'.len_utf8());
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
}

/// The dedupe rule. `existing_open` is the open alert with the draft's key, if the store
/// has one. Returns the alert to insert (Created) or the updated alert (Updated).
///
/// An `existing_open` that is resolved or has another key is ignored (a new alert is
/// created): the caller looked up the wrong alert, and an alert must never be lost for it.
pub fn raise(existing_open: Option<&Alert>, draft: AlertDraft, now: DateTime<Utc>) -> AlertChange {
    match existing_open {
        Some(open) if supersedes(open, &draft) => AlertChange::Created(new_alert(draft, now)),
        Some(open) if open.is_open() && open.key() == draft.key() => {
            let mut alert = open.clone();
            let escalated = draft.severity.rank() > open.severity.rank();
            alert.severity = draft.severity;
            alert.title = draft.title;
            alert.message = draft.message;
            alert.source_name = draft.source_name;
            alert.count = alert.count.saturating_add(1);
            alert.updated_at = now;
            if escalated {
                alert.acknowledged = false;
                alert.acknowledged_by = None;
                alert.acknowledged_at = None;
            }
            AlertChange::Updated { alert, escalated }
        }
        other => {
            if let Some(a) = other {
                tracing::warn!(alert = %a.id, key = %a.key(), wanted = %draft.key(), resolved = a.resolved,
                    "raise() given an alert that is not the open alert of this key; creating a new one");
            }
            AlertChange::Created(new_alert(draft, now))
        }
    }
}

/// Whether `draft` is about another subject than the open alert of its key (another title:
/// titles name the host an alert was raised for). The caller resolves `open` first; updating
/// it in place would make its text, count and creation time describe another host.
pub fn supersedes(open: &Alert, draft: &AlertDraft) -> bool {
    open.is_open() && open.key() == draft.key() && open.title != draft.title
}

fn new_alert(d: AlertDraft, now: DateTime<Utc>) -> Alert {
    Alert {
        id: AlertId::new(),
        severity: d.severity,
        title: d.title,
        message: d.message,
        source_type: d.source_type,
        source_id: d.source_id,
        source_name: d.source_name,
        condition: d.condition,
        count: 1,
        acknowledged: false,
        acknowledged_by: None,
        acknowledged_at: None,
        resolved: false,
        resolved_at: None,
        created_at: now,
        updated_at: now,
        project_id: crate::model::ProjectId::DEFAULT,
    }
}

/// Auto-resolve: the condition of `existing_open` cleared. Returns the resolved alert, or
/// `None` when there was nothing open.
pub fn clear(existing_open: Option<&Alert>, now: DateTime<Utc>) -> Option<AlertChange> {
    existing_open
        .filter(|a| a.is_open())
        .map(|a| AlertChange::Resolved(resolve(a, now)))
}

/// ResolveAlert: the alert resolved at `now`; an already resolved alert is returned as is.
pub fn resolve(alert: &Alert, now: DateTime<Utc>) -> Alert {
    let mut a = alert.clone();
    if !a.resolved {
        a.resolved = true;
        a.resolved_at = Some(now);
        a.updated_at = now;
    }
    a
}

/// AcknowledgeAlert: records who and when; an already acknowledged alert keeps its first
/// acknowledgement.
pub fn acknowledge(alert: &Alert, by: &str, now: DateTime<Utc>) -> Alert {
    let mut a = alert.clone();
    if !a.acknowledged {
        a.acknowledged = true;
        a.acknowledged_by = Some(by.to_string());
        a.acknowledged_at = Some(now);
        a.updated_at = now;
    }
    a
}

/// Level-triggered alerting for a checker that owns some keys (e.g. the HA manager owns
/// `node.unreachable` for every node): `open` are the open alerts it owns, `active` every
/// condition it sees now. Active ones are raised (created or bumped), open ones no longer
/// active are resolved. Drafts with the same key are merged (the last wins).
pub fn reconcile(open: &[Alert], active: Vec<AlertDraft>, now: DateTime<Utc>) -> Vec<AlertChange> {
    use std::collections::BTreeMap;
    let mut wanted: BTreeMap<AlertKey, AlertDraft> = BTreeMap::new();
    for d in active {
        wanted.insert(d.key(), d);
    }
    let open_by_key: BTreeMap<AlertKey, &Alert> = open.iter().filter(|a| a.is_open()).map(|a| (a.key(), a)).collect();
    let mut changes: Vec<AlertChange> = open_by_key
        .iter()
        .filter(|(k, _)| !wanted.contains_key(*k))
        .filter_map(|(_, a)| clear(Some(a), now))
        .collect();
    changes.extend(
        wanted
            .into_iter()
            .map(|(k, d)| raise(open_by_key.get(&k).copied(), d, now)),
    );
    changes
}

/// Counts by severity of the open alerts among `alerts`.
pub fn summarize<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> AlertSummary {
    let mut s = AlertSummary::default();
    for a in alerts.into_iter().filter(|a| a.is_open()) {
        match a.severity {
            AlertSeverity::Critical => s.critical += 1,
            AlertSeverity::Warning => s.warning += 1,
            AlertSeverity::Info => s.info += 1,
        }
        if !a.acknowledged {
            s.unacknowledged += 1;
        }
        s.total_open += 1;
    }
    s
}

/// Filters an in-memory list, newest first (by creation, then id).
pub fn list<'a>(alerts: impl IntoIterator<Item = &'a Alert>, filter: &AlertFilter) -> Vec<&'a Alert> {
    let mut out: Vec<&Alert> = alerts.into_iter().filter(|a| filter.matches(a)).collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    out
}

/// The dedupe key of an alert (what `service::Alerts::clear` takes).
pub fn key(source_type: AlertSourceType, source_id: impl Into<String>, condition: &str) -> AlertKey {
    AlertKey {
        source_type,
        source_id: source_id.into(),
        condition: condition.to_string(),
    }
}

/// The key of a VM alert (see [`vm_alert`]).
pub fn vm_key(vm: VmId, condition: &str) -> AlertKey {
    key(AlertSourceType::Vm, vm.to_string(), condition)
}

/// The key of a host alert (see [`node_alert`]).
pub fn node_key(node: NodeId, condition: &str) -> AlertKey {
    key(AlertSourceType::Host, node.to_string(), condition)
}

/// The key of a cluster alert (see [`cluster_alert`]).
pub fn cluster_key(condition: &str) -> AlertKey {
    key(AlertSourceType::Cluster, "cluster", condition)
}

fn draft(
    source_type: AlertSourceType,
    source_id: String,
    source_name: &str,
    severity: AlertSeverity,
    condition: &str,
    title: String,
    message: String,
) -> AlertDraft {
    AlertDraft {
        severity,
        title,
        message,
        source_type,
        source_id,
        source_name: source_name.to_string(),
        condition: condition.to_string(),
    }
}

/// An alert about a VM.
pub fn vm_alert(
    vm: VmId,
    vm_name: &str,
    severity: AlertSeverity,
    condition: &str,
    title: impl Into<String>,
    message: impl Into<String>,
) -> AlertDraft {
    draft(
        AlertSourceType::Vm,
        vm.to_string(),
        vm_name,
        severity,
        condition,
        title.into(),
        message.into(),
    )
}

/// An alert about a host (node).
pub fn node_alert(
    node: NodeId,
    node_name: &str,
    severity: AlertSeverity,
    condition: &str,
    title: impl Into<String>,
    message: impl Into<String>,
) -> AlertDraft {
    draft(
        AlertSourceType::Host,
        node.to_string(),
        node_name,
        severity,
        condition,
        title.into(),
        message.into(),
    )
}

/// An alert about a storage pool or volume (`pool` is its id or name, unique per cluster).
pub fn storage_alert(
    pool: &str,
    severity: AlertSeverity,
    condition: &str,
    title: impl Into<String>,
    message: impl Into<String>,
) -> AlertDraft {
    draft(
        AlertSourceType::Storage,
        pool.to_string(),
        pool,
        severity,
        condition,
        title.into(),
        message.into(),
    )
}

/// An alert about a network (`network` is its name).
pub fn network_alert(
    network: &str,
    severity: AlertSeverity,
    condition: &str,
    title: impl Into<String>,
    message: impl Into<String>,
) -> AlertDraft {
    draft(
        AlertSourceType::Network,
        network.to_string(),
        network,
        severity,
        condition,
        title.into(),
        message.into(),
    )
}

/// An alert about the cluster as a whole (capacity, balance); the source id is `cluster`.
pub fn cluster_alert(
    severity: AlertSeverity,
    condition: &str,
    title: impl Into<String>,
    message: impl Into<String>,
) -> AlertDraft {
    draft(
        AlertSourceType::Cluster,
        "cluster".into(),
        "cluster",
        severity,
        condition,
        title.into(),
        message.into(),
    )
}

/// An alert about lqx itself (`component`: `server`, `store`, `webhooks`, `leader`, ...).
pub fn system_alert(
    component: &str,
    severity: AlertSeverity,
    condition: &str,
    title: impl Into<String>,
    message: impl Into<String>,
) -> AlertDraft {
    draft(
        AlertSourceType::System,
        component.to_string(),
        component,
        severity,
        condition,
        title.into(),
        message.into(),
    )
}

#[cfg(test)]
mod tests;

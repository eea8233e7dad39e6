//! Events: one record per state change (a VM created, a node failed, an alert raised, ...),
//! numbered by the event bus, and the filter a subscriber watches them through.

use super::ProjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What happened to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Created,
    Updated,
    Deleted,
    Started,
    Stopped,
    Restarted,
    /// A guest reboot (the VM kept running).
    Rebooted,
    Migrated,
    Failed,
    /// A node was made schedulable again / cordoned.
    Enabled,
    Disabled,
    MaintenanceEntered,
    MaintenanceExited,
    /// A health or phase transition (node HEALTHY -> UNKNOWN, HA state, ...).
    StateChanged,
    /// A node was fenced (HA).
    Fenced,
    /// A failed resource came back (node recovered, VM restarted elsewhere).
    Recovered,
    Acknowledged,
    Resolved,
    Approved,
    Rejected,
    Applied,
    Expired,
}

impl EventType {
    pub const ALL: [EventType; 22] = [
        EventType::Created,
        EventType::Updated,
        EventType::Deleted,
        EventType::Started,
        EventType::Stopped,
        EventType::Restarted,
        EventType::Rebooted,
        EventType::Migrated,
        EventType::Failed,
        EventType::Enabled,
        EventType::Disabled,
        EventType::MaintenanceEntered,
        EventType::MaintenanceExited,
        EventType::StateChanged,
        EventType::Fenced,
        EventType::Recovered,
        EventType::Acknowledged,
        EventType::Resolved,
        EventType::Approved,
        EventType::Rejected,
        EventType::Applied,
        EventType::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "CREATED",
            EventType::Updated => "UPDATED",
            EventType::Deleted => "DELETED",
            EventType::Started => "STARTED",
            EventType::Stopped => "STOPPED",
            EventType::Restarted => "RESTARTED",
            EventType::Rebooted => "REBOOTED",
            EventType::Migrated => "MIGRATED",
            EventType::Failed => "FAILED",
            EventType::Enabled => "ENABLED",
            EventType::Disabled => "DISABLED",
            EventType::MaintenanceEntered => "MAINTENANCE_ENTERED",
            EventType::MaintenanceExited => "MAINTENANCE_EXITED",
            EventType::StateChanged => "STATE_CHANGED",
            EventType::Fenced => "FENCED",
            EventType::Recovered => "RECOVERED",
            EventType::Acknowledged => "ACKNOWLEDGED",
            EventType::Resolved => "RESOLVED",
            EventType::Approved => "APPROVED",
            EventType::Rejected => "REJECTED",
            EventType::Applied => "APPLIED",
            EventType::Expired => "EXPIRED",
        }
    }

    /// Case-insensitive; `-` is accepted for `_` (`state-changed`).
    pub fn parse(s: &str) -> Option<Self> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL.into_iter().find(|t| t.as_str() == wanted)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of resource an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    Vm,
    Node,
    Alert,
    /// A DRS recommendation or the DRS engine.
    Drs,
    /// HA state of a node or of the HA manager.
    Ha,
}

impl ResourceType {
    pub const ALL: [ResourceType; 5] = [
        ResourceType::Vm,
        ResourceType::Node,
        ResourceType::Alert,
        ResourceType::Drs,
        ResourceType::Ha,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Vm => "vm",
            ResourceType::Node => "node",
            ResourceType::Alert => "alert",
            ResourceType::Drs => "drs",
            ResourceType::Ha => "ha",
        }
    }

    /// Case-insensitive; accepts the plural too (`vms`, `nodes`, `alerts`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let singular = s.strip_suffix('s').unwrap_or(&s);
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .or_else(|| Self::ALL.into_iter().find(|t| t.as_str() == singular))
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published state change. `sequence` is assigned by the event bus: strictly increasing,
/// never reused (also across restarts when the server restores the next sequence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub sequence: u64,
    pub event_type: EventType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    /// The project of the resource; `None` for resources outside projects (nodes, cluster).
    pub project_id: Option<ProjectId>,
    /// The resource (or the part that changed) as JSON; `null` when there is nothing to add.
    pub payload: serde_json::Value,
    pub time: DateTime<Utc>,
}

/// An event before the bus numbers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDraft {
    pub event_type: EventType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub project_id: Option<ProjectId>,
    pub payload: serde_json::Value,
    pub time: DateTime<Utc>,
}

impl EventDraft {
    /// A draft stamped with `time`, no project and a `null` payload.
    pub fn new(
        event_type: EventType,
        resource_type: ResourceType,
        resource_id: impl Into<String>,
        time: DateTime<Utc>,
    ) -> Self {
        EventDraft {
            event_type,
            resource_type,
            resource_id: resource_id.into(),
            project_id: None,
            payload: serde_json::Value::Null,
            time,
        }
    }
    pub fn project(mut self, project: ProjectId) -> Self {
        self.project_id = Some(project);
        self
    }
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
    /// Serializes `value` as the payload; a value that cannot be serialized gives `null`
    /// (model types always can).
    pub fn payload_of<T: Serialize>(mut self, value: &T) -> Self {
        self.payload = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self
    }
    pub fn into_event(self, sequence: u64) -> Event {
        Event {
            sequence,
            event_type: self.event_type,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            project_id: self.project_id,
            payload: self.payload,
            time: self.time,
        }
    }
}

/// What a subscriber wants to see. Every list that is empty matches anything; a non-empty
/// list matches when the event's value is in it. All parts must match. A `project_id` filter
/// matches only events of that project: events without a project (nodes, DRS, HA) do not
/// match it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    #[serde(default)]
    pub resource_types: Vec<ResourceType>,
    #[serde(default)]
    pub resource_ids: Vec<String>,
    #[serde(default)]
    pub event_types: Vec<EventType>,
    #[serde(default)]
    pub project_id: Option<ProjectId>,
}

impl SubscriptionFilter {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }
    pub fn resource_type(mut self, t: ResourceType) -> Self {
        self.resource_types.push(t);
        self
    }
    pub fn resource_id(mut self, id: impl Into<String>) -> Self {
        self.resource_ids.push(id.into());
        self
    }
    pub fn event_type(mut self, t: EventType) -> Self {
        self.event_types.push(t);
        self
    }
    pub fn project(mut self, project: ProjectId) -> Self {
        self.project_id = Some(project);
        self
    }

    pub fn matches(&self, event: &Event) -> bool {
        (self.resource_types.is_empty() || self.resource_types.contains(&event.resource_type))
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && (self.resource_ids.is_empty() || self.resource_ids.contains(&event.resource_id))
            && self.project_id.is_none_or(|p| event.project_id == Some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(t: EventType, r: ResourceType, id: &str, project: Option<ProjectId>) -> Event {
        let time = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let mut d = EventDraft::new(t, r, id, time);
        d.project_id = project;
        d.into_event(1)
    }

    #[test]
    fn names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(EventType::parse(&t.as_str().to_lowercase()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        assert_eq!(EventType::parse("state-changed"), Some(EventType::StateChanged));
        assert_eq!(EventType::parse("nope"), None);
        for r in ResourceType::ALL {
            assert_eq!(ResourceType::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(r.as_str()));
        }
        assert_eq!(ResourceType::parse("VMs"), Some(ResourceType::Vm));
        assert_eq!(ResourceType::parse("nodes"), Some(ResourceType::Node));
        assert_eq!(ResourceType::parse("ha"), Some(ResourceType::Ha));
        assert_eq!(ResourceType::parse("s"), None);
        assert_eq!(ResourceType::parse("disk"), None);
    }

    #[test]
    fn empty_filter_matches_everything() {
        let f = SubscriptionFilter::all();
        assert!(f.matches(&event(EventType::Created, ResourceType::Vm, "a", None)));
        assert!(f.matches(&event(
            EventType::Failed,
            ResourceType::Node,
            "n",
            Some(ProjectId::DEFAULT)
        )));
    }

    #[test]
    fn every_part_of_the_filter_must_match() {
        let p = ProjectId::new();
        let f = SubscriptionFilter::all()
            .resource_type(ResourceType::Vm)
            .event_type(EventType::Started)
            .event_type(EventType::Stopped)
            .resource_id("vm-1")
            .project(p);
        assert!(f.matches(&event(EventType::Stopped, ResourceType::Vm, "vm-1", Some(p))));
        assert!(f.matches(&event(EventType::Started, ResourceType::Vm, "vm-1", Some(p))));
        assert!(
            !f.matches(&event(EventType::Created, ResourceType::Vm, "vm-1", Some(p))),
            "event type"
        );
        assert!(
            !f.matches(&event(EventType::Started, ResourceType::Node, "vm-1", Some(p))),
            "resource type"
        );
        assert!(
            !f.matches(&event(EventType::Started, ResourceType::Vm, "vm-2", Some(p))),
            "resource id"
        );
        assert!(
            !f.matches(&event(
                EventType::Started,
                ResourceType::Vm,
                "vm-1",
                Some(ProjectId::new())
            )),
            "project"
        );
        assert!(
            !f.matches(&event(EventType::Started, ResourceType::Vm, "vm-1", None)),
            "no project"
        );
    }

    #[test]
    fn filter_deserializes_with_defaults() {
        let f: SubscriptionFilter = serde_json::from_str(r#"{"resource_types":["vm"]}"#).unwrap();
        assert_eq!(f, SubscriptionFilter::all().resource_type(ResourceType::Vm));
    }
}

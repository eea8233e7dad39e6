//! Shorthands for the publishers: one call per state change of a VM, node or alert, with
//! the resource itself as the payload.

use super::EventBus;
use crate::model::{Alert, EventDraft, EventType, Node, ResourceType, Vm};
use chrono::Utc;

impl EventBus {
    /// Publishes `kind` (an [`EventType`] name such as `"STARTED"`) for a VM, with the VM
    /// as payload and its project. An unknown kind is published as UPDATED (and logged):
    /// a state change is never lost over a name.
    pub fn publish_vm(&self, kind: &str, vm: &Vm) -> u64 {
        let draft = EventDraft::new(event_type(kind), ResourceType::Vm, vm.id.to_string(), Utc::now())
            .project(vm.project_id)
            .payload_of(vm);
        self.publish(draft)
    }

    /// Publishes `kind` for a node, with the node as payload (nodes have no project).
    pub fn publish_node(&self, kind: &str, node: &Node) -> u64 {
        self.publish(
            EventDraft::new(event_type(kind), ResourceType::Node, node.id.to_string(), Utc::now()).payload_of(node),
        )
    }

    /// Publishes an alert change (CREATED, UPDATED, ACKNOWLEDGED, RESOLVED).
    pub fn publish_alert(&self, event_type: EventType, alert: &Alert) -> u64 {
        self.publish(
            EventDraft::new(event_type, ResourceType::Alert, alert.id.to_string(), Utc::now())
                .project(alert.project_id)
                .payload_of(alert),
        )
    }
}

fn event_type(kind: &str) -> EventType {
    EventType::parse(kind).unwrap_or_else(|| {
        tracing::warn!(kind, "unknown event kind; published as UPDATED");
        EventType::Updated
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_event_types() {
        assert_eq!(event_type("REBOOTED"), EventType::Rebooted);
        assert_eq!(event_type("MAINTENANCE_ENTERED"), EventType::MaintenanceEntered);
        assert_eq!(event_type("SOMETHING_NEW"), EventType::Updated);
    }
}

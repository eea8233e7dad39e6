//! limiquantix.events.v1.EventService: Subscribe, a server stream over the event bus.
//!
//! The request's filter and resume point go to the bus; a subscriber only sees events of
//! resource types its role may read (`rbac::read_permission_for_resource`), filtered on the
//! bus so hidden events neither reach the stream nor fill its buffer. A subscriber that falls
//! behind gets an in-band `SubscribeResponse { lag }` naming the sequence to resume from,
//! and the stream then ends. Resuming from a sequence no longer retained fails with
//! `failed_precondition` ("resync required: ...").

use super::{Stream, st};
use futures::StreamExt;
use lqx_core::api::events::v1::{self as pb, event_service_server::EventService};
use lqx_core::auth::{Principal, rbac};
use lqx_core::events::sequence::SequenceReservation;
use lqx_core::events::{EventBus, EventBusConfig, Visibility, resume_point};
use lqx_core::model::{Event, ResourceType, Role, SubscriptionFilter};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct EventApi {
    pub events: EventBus,
}

/// The server's event bus, numbering on from the high-water mark in the store (so a
/// sequence is never reused across restarts), with a task keeping the mark ahead.
pub async fn start_bus(store: &lqx_core::store::Store) -> lqx_core::Result<EventBus> {
    let reservation = SequenceReservation::start(store).await?;
    let bus = EventBus::new(EventBusConfig {
        first_sequence: reservation.first_sequence(),
        ..Default::default()
    });
    tracing::debug!(
        first_sequence = reservation.first_sequence(),
        reserved = reservation.reserved(),
        "event sequence restored"
    );
    reservation.keep_ahead(&bus, std::time::Duration::from_secs(1));
    Ok(bus)
}

/// What a role may see of the event stream: one flag per resource type, computed once per
/// subscription (the predicate runs for every event).
pub fn visibility(role: Role) -> Visibility {
    let allowed: Vec<ResourceType> = ResourceType::ALL
        .into_iter()
        .filter(|t| rbac::read_permission_for_resource(t.as_str()).is_some_and(|p| rbac::role_allows(role, p)))
        .collect();
    Arc::new(move |e: &Event| allowed.contains(&e.resource_type))
}

#[tonic::async_trait]
impl EventService for EventApi {
    type SubscribeStream = Stream<pb::SubscribeResponse>;

    async fn subscribe(&self, req: Request<pb::SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        // Without an auth layer in front (no principal) nothing is hidden.
        let visible = req.extensions().get::<Principal>().map(|p| visibility(p.role));
        let r = req.into_inner();
        let filter = match &r.filter {
            Some(f) => SubscriptionFilter::from_proto(f).map_err(|e| st(e.into()))?,
            None => SubscriptionFilter::all(),
        };
        let sub = self
            .events
            .subscribe_with(filter, resume_point(r.resume_from_sequence), visible)
            .map_err(|e| st(e.into()))?;
        // The subscription yields its lag notice as its last item and then ends.
        Ok(Response::new(Box::pin(sub.map(|item| Ok(item.to_proto())))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lqx_core::model::{EventDraft, EventType};

    fn event(t: ResourceType) -> Event {
        EventDraft::new(EventType::Created, t, "x", chrono::Utc::now()).into_event(1)
    }

    #[test]
    fn roles_see_what_they_may_read() {
        let viewer = visibility(Role::Viewer);
        let admin = visibility(Role::Admin);
        for t in ResourceType::ALL {
            assert!(admin(&event(t)), "admin sees {t}");
        }
        assert!(viewer(&event(ResourceType::Vm)));
        assert!(viewer(&event(ResourceType::Alert)));
        // Whatever the table says for viewers, the predicate follows it exactly.
        for t in ResourceType::ALL {
            let expected =
                rbac::read_permission_for_resource(t.as_str()).is_some_and(|p| rbac::role_allows(Role::Viewer, p));
            assert_eq!(viewer(&event(t)), expected, "{t}");
        }
    }
}

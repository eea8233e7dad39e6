//! limiquantix.events.v1.EventService: Subscribe, a server stream over the event bus.
//!
//! The request's filter and resume point go to the bus; a subscriber only sees events it
//! may read: project events by its role in their project, cluster events by its global role
//! (`Principal::sees_event`), filtered on the bus so hidden events neither reach the stream
//! nor fill its buffer. A subscriber that falls behind gets an in-band `SubscribeResponse { lag }` naming the sequence to resume from,
//! and the stream then ends. Resuming from a sequence no longer retained fails with
//! `failed_precondition` ("resync required: ...").

use super::{Stream, st};
use futures::StreamExt;
use lqx_core::api::convert::events::resume_point;
use lqx_core::api::events::v1::{self as pb, event_service_server::EventService};
use lqx_core::auth::Principal;
use lqx_core::events::sequence::SequenceReservation;
use lqx_core::events::{EventBus, EventBusConfig, Visibility};
use lqx_core::model::{Event, SubscriptionFilter};
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

/// What a caller may see of the event stream: project events by its role in their project,
/// cluster events by its global role (`Principal::sees_event`).
pub fn visibility_of(p: Principal) -> Visibility {
    Arc::new(move |e: &Event| p.sees_event(e))
}

#[tonic::async_trait]
impl EventService for EventApi {
    type SubscribeStream = Stream<pb::SubscribeResponse>;

    async fn subscribe(&self, req: Request<pb::SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        // Without an auth layer in front (no principal) nothing is hidden.
        let visible = req.extensions().get::<Principal>().map(|p| visibility_of(p.clone()));
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

//! Events: the bus every state change is published on, subscriptions with filters and
//! resume. Their proto conversions are in `api::convert::events`.
//!
//! Publishers (VM and node services, HA, DRS, alerting) call [`EventBus::publish`]; Watch
//! RPCs call [`EventBus::subscribe_with`] with the request's filter, resume point and a
//! visibility predicate for the caller's role, and forward the [`Subscription`] stream.

mod bus;
mod publish;
#[cfg(feature = "server")]
pub mod sequence;

pub use bus::{EventBus, EventBusConfig, EventBusStats, Subscription, SubscriptionItem, Visibility, WeakEventBus};

/// Errors of subscribing and of decoding event protos.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The client resumes from a point whose following events are gone: it must re-read
    /// the current state (Get/List) and subscribe afresh.
    #[error(
        "Resync required: events after sequence {requested} are no longer retained (oldest retained is {oldest_retained})"
    )]
    ResyncRequired { requested: u64, oldest_retained: u64 },
    /// The client resumes from a sequence this bus never published (another server, or
    /// state lost in a restart).
    #[error("Resync required: sequence {requested} was never published (newest is {last})")]
    SequenceAhead { requested: u64, last: u64 },
    #[error("Unknown resource type {0:?} (expected vm, node, alert, drs or ha)")]
    UnknownResourceType(String),
    #[error("Unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("Invalid {field}: {value:?}")]
    InvalidField { field: &'static str, value: String },
}

impl From<EventError> for crate::Error {
    fn from(e: EventError) -> Self {
        match e {
            EventError::ResyncRequired { .. } | EventError::SequenceAhead { .. } => {
                crate::Error::precondition(lowercase_first(&e.to_string()))
            }
            EventError::UnknownResourceType(_) => {
                crate::Error::invalid("filter.resource_types", lowercase_first(&e.to_string()))
            }
            EventError::UnknownEventType(_) => {
                crate::Error::invalid("filter.event_types", lowercase_first(&e.to_string()))
            }
            EventError::InvalidField { field, value } => {
                crate::Error::invalid(field, format!("{value:?} is not valid"))
            }
        }
    }
}

/// Client messages read "resync required: ..." (the phrase clients look for).
fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

//! Conversions between the event model and `limiquantix.events.v1` messages, used by the
//! server (Subscribe, WatchVM(s), WatchNode(s)) and by the CLI (`lqx watch`).

use crate::api::events::v1 as pb;
use crate::events::{EventError, SubscriptionItem};
use crate::model::{Event, EventType, ProjectId, ResourceType, SubscriptionFilter};
use chrono::{DateTime, Utc};

impl Event {
    pub fn to_proto(&self) -> pb::Event {
        pb::Event {
            sequence: self.sequence,
            r#type: self.event_type.as_str().to_string(),
            resource_type: self.resource_type.as_str().to_string(),
            resource_id: self.resource_id.clone(),
            project_id: self.project_id.map(|p| p.to_string()).unwrap_or_default(),
            payload: json_to_struct(&self.payload),
            time: Some(self.time.into()),
        }
    }

    /// Decodes an event received from the server.
    pub fn from_proto(e: &pb::Event) -> Result<Event, EventError> {
        let event_type = EventType::parse(&e.r#type).ok_or_else(|| EventError::UnknownEventType(e.r#type.clone()))?;
        let resource_type = ResourceType::parse(&e.resource_type)
            .ok_or_else(|| EventError::UnknownResourceType(e.resource_type.clone()))?;
        let time = match e.time {
            Some(t) => DateTime::<Utc>::try_from(t).map_err(|_| EventError::InvalidField {
                field: "time",
                value: format!("{}s {}ns", t.seconds, t.nanos),
            })?,
            None => DateTime::UNIX_EPOCH,
        };
        Ok(Event {
            sequence: e.sequence,
            event_type,
            resource_type,
            resource_id: e.resource_id.clone(),
            project_id: parse_project(&e.project_id, "project_id")?,
            payload: e
                .payload
                .as_ref()
                .map(struct_to_json)
                .unwrap_or(serde_json::Value::Null),
            time,
        })
    }
}

impl SubscriptionFilter {
    /// Parses a request filter; names are case-insensitive, unknown names are an error (a
    /// typo must not silently watch nothing).
    pub fn from_proto(f: &pb::SubscriptionFilter) -> Result<Self, EventError> {
        let resource_types = f
            .resource_types
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| ResourceType::parse(s).ok_or_else(|| EventError::UnknownResourceType(s.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let event_types = f
            .event_types
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| EventType::parse(s).ok_or_else(|| EventError::UnknownEventType(s.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let resource_ids = f
            .resource_ids
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
            .collect();
        Ok(SubscriptionFilter {
            resource_types,
            resource_ids,
            event_types,
            project_id: parse_project(&f.project_id, "filter.project_id")?,
        })
    }

    pub fn to_proto(&self) -> pb::SubscriptionFilter {
        pb::SubscriptionFilter {
            resource_types: self.resource_types.iter().map(|t| t.as_str().to_string()).collect(),
            resource_ids: self.resource_ids.clone(),
            event_types: self.event_types.iter().map(|t| t.as_str().to_string()).collect(),
            project_id: self.project_id.map(|p| p.to_string()).unwrap_or_default(),
        }
    }
}

impl SubscriptionItem {
    /// One message of the Subscribe / Watch stream.
    pub fn to_proto(&self) -> pb::SubscribeResponse {
        match self {
            SubscriptionItem::Event(e) => pb::SubscribeResponse {
                event: Some(e.to_proto()),
                lag: None,
            },
            SubscriptionItem::Lagged { resume_from } => pb::SubscribeResponse {
                event: None,
                lag: Some(pb::LagNotice {
                    resume_from_sequence: *resume_from,
                    message: format!(
                        "subscriber fell behind and was disconnected; resubscribe with resume_from_sequence {resume_from}"
                    ),
                }),
            },
        }
    }
}

/// `resume_from_sequence` of a request as the `resume_from` of
/// [`EventBus::subscribe`](crate::events::EventBus::subscribe): 0 means "only new events".
pub fn resume_point(sequence: u64) -> Option<u64> {
    (sequence > 0).then_some(sequence)
}

fn parse_project(s: &str, field: &'static str) -> Result<Option<ProjectId>, EventError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| EventError::InvalidField {
        field,
        value: s.to_string(),
    })
}

/// A JSON payload as a `google.protobuf.Struct`: `null` gives none, an object maps field by
/// field, any other value is wrapped as `{"value": ...}` (a Struct must be an object).
pub fn json_to_struct(v: &serde_json::Value) -> Option<pbjson_types::Struct> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::Object(map) => Some(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect::<pbjson_types::Struct>(),
        ),
        other => Some([("value".to_string(), json_to_value(other))].into_iter().collect()),
    }
}

/// The inverse of [`json_to_struct`] for objects (numbers come back as floats, as in JSON).
pub fn struct_to_json(s: &pbjson_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect())
}

fn json_to_value(v: &serde_json::Value) -> pbjson_types::Value {
    use serde_json::Value as J;
    match v {
        J::Null => ().into(),
        J::Bool(b) => (*b).into(),
        J::Number(n) => n.as_f64().unwrap_or(0.0).into(),
        J::String(s) => s.clone().into(),
        J::Array(a) => a.iter().map(json_to_value).collect::<Vec<_>>().into(),
        J::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect::<pbjson_types::Struct>()
            .into(),
    }
}

fn value_to_json(v: &pbjson_types::Value) -> serde_json::Value {
    use pbjson_types::value::Kind;
    use serde_json::Value as J;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        // A Struct holds every number as a double; integral ones (counts, MiB, seconds)
        // come back as JSON integers, as they were sent (2^53 bounds exact doubles).
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
            J::Number(serde_json::Number::from(*n as i64))
        }
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
        Some(Kind::StringValue(s)) => J::String(s.clone()),
        Some(Kind::ListValue(l)) => J::Array(l.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventDraft;
    use chrono::TimeZone;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn event_round_trips_through_proto() {
        let time = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let p = ProjectId::new();
        let e = EventDraft::new(EventType::Stopped, ResourceType::Vm, "vm-1", time)
            .project(p)
            .payload(
                json!({"name": "web-1", "state": "STOPPED", "cpu": 2, "load": 0.5, "tags": ["a", null], "nested": {"ok": true}}),
            )
            .into_event(42);
        let pb = e.to_proto();
        assert_eq!(pb.r#type, "STOPPED");
        assert_eq!(pb.resource_type, "vm");
        assert_eq!(pb.project_id, p.to_string());
        assert_eq!(Event::from_proto(&pb).unwrap(), e);
    }

    #[test]
    fn integers_stay_integers_through_the_struct() {
        let s = json_to_struct(&json!({"cpu_cores": 1, "memory_mib": 4096, "percent": 12.5})).unwrap();
        let back = serde_json::to_string(&struct_to_json(&s)).unwrap();
        assert_eq!(back, r#"{"cpu_cores":1,"memory_mib":4096,"percent":12.5}"#);
    }

    #[test]
    fn non_object_payloads_are_wrapped_and_null_is_absent() {
        assert_eq!(json_to_struct(&serde_json::Value::Null), None);
        let s = json_to_struct(&json!("hello")).unwrap();
        assert_eq!(struct_to_json(&s), json!({"value": "hello"}));
    }

    #[test]
    fn filter_from_proto_rejects_unknown_names() {
        let f = pb::SubscriptionFilter {
            resource_types: vec!["VMs".into(), "node".into()],
            resource_ids: vec![" vm-1 ".into(), "".into()],
            event_types: vec!["stopped".into()],
            project_id: String::new(),
        };
        let parsed = SubscriptionFilter::from_proto(&f).unwrap();
        assert_eq!(parsed.resource_types, vec![ResourceType::Vm, ResourceType::Node]);
        assert_eq!(parsed.resource_ids, vec!["vm-1".to_string()]);
        assert_eq!(parsed.event_types, vec![EventType::Stopped]);
        assert_eq!(parsed.project_id, None);
        assert_eq!(SubscriptionFilter::from_proto(&parsed.to_proto()).unwrap(), parsed);

        let bad = pb::SubscriptionFilter {
            resource_types: vec!["disk".into()],
            ..Default::default()
        };
        let err: crate::Error = SubscriptionFilter::from_proto(&bad).unwrap_err().into();
        assert_eq!(err.kind, crate::ErrorKind::InvalidArgument);
        assert!(err.message.contains("disk"), "{}", err.message);
        let bad = pb::SubscriptionFilter {
            event_types: vec!["EXPLODED".into()],
            ..Default::default()
        };
        assert_eq!(
            SubscriptionFilter::from_proto(&bad),
            Err(EventError::UnknownEventType("EXPLODED".into()))
        );
        let bad = pb::SubscriptionFilter {
            project_id: "nope".into(),
            ..Default::default()
        };
        assert!(matches!(
            SubscriptionFilter::from_proto(&bad),
            Err(EventError::InvalidField { .. })
        ));
    }

    #[test]
    fn lag_notice_carries_the_resume_point() {
        let msg = SubscriptionItem::Lagged { resume_from: 17 }.to_proto();
        assert!(msg.event.is_none());
        assert_eq!(msg.lag.unwrap().resume_from_sequence, 17);
        let e =
            Arc::new(EventDraft::new(EventType::Created, ResourceType::Node, "n", DateTime::UNIX_EPOCH).into_event(3));
        assert_eq!(SubscriptionItem::Event(e).to_proto().event.unwrap().sequence, 3);
        assert_eq!(resume_point(0), None);
        assert_eq!(resume_point(9), Some(9));
    }
}

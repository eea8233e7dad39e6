//! Conversions between the alert model and `limiquantix.alert.v1` messages.

use crate::alert::AlertError;
use crate::api::alert::v1 as pb;
use crate::model::{
    Alert, AlertFilter, AlertId, AlertSeverity, AlertSourceType, AlertSummary, Webhook, WebhookDelivery,
    WebhookDeliveryStatus,
};
use chrono::{DateTime, Utc};

impl AlertSeverity {
    pub fn to_proto(self) -> pb::AlertSeverity {
        match self {
            AlertSeverity::Critical => pb::AlertSeverity::Critical,
            AlertSeverity::Warning => pb::AlertSeverity::Warning,
            AlertSeverity::Info => pb::AlertSeverity::Info,
        }
    }
    /// `None` for UNSPECIFIED (0: "any" in filters); an unknown number is an error.
    pub fn from_proto(v: i32) -> Result<Option<AlertSeverity>, AlertError> {
        match pb::AlertSeverity::try_from(v) {
            Ok(pb::AlertSeverity::Unspecified) => Ok(None),
            Ok(pb::AlertSeverity::Critical) => Ok(Some(AlertSeverity::Critical)),
            Ok(pb::AlertSeverity::Warning) => Ok(Some(AlertSeverity::Warning)),
            Ok(pb::AlertSeverity::Info) => Ok(Some(AlertSeverity::Info)),
            Err(_) => Err(AlertError::InvalidSeverity(v.to_string())),
        }
    }
}

impl AlertSourceType {
    pub fn to_proto(self) -> pb::AlertSourceType {
        match self {
            AlertSourceType::Vm => pb::AlertSourceType::Vm,
            AlertSourceType::Host => pb::AlertSourceType::Host,
            AlertSourceType::Storage => pb::AlertSourceType::Storage,
            AlertSourceType::Network => pb::AlertSourceType::Network,
            AlertSourceType::Cluster => pb::AlertSourceType::Cluster,
            AlertSourceType::System => pb::AlertSourceType::System,
        }
    }
    /// `None` for UNSPECIFIED; an unknown number is an error.
    pub fn from_proto(v: i32) -> Result<Option<AlertSourceType>, AlertError> {
        match pb::AlertSourceType::try_from(v) {
            Ok(pb::AlertSourceType::Unspecified) => Ok(None),
            Ok(pb::AlertSourceType::Vm) => Ok(Some(AlertSourceType::Vm)),
            Ok(pb::AlertSourceType::Host) => Ok(Some(AlertSourceType::Host)),
            Ok(pb::AlertSourceType::Storage) => Ok(Some(AlertSourceType::Storage)),
            Ok(pb::AlertSourceType::Network) => Ok(Some(AlertSourceType::Network)),
            Ok(pb::AlertSourceType::Cluster) => Ok(Some(AlertSourceType::Cluster)),
            Ok(pb::AlertSourceType::System) => Ok(Some(AlertSourceType::System)),
            Err(_) => Err(AlertError::InvalidSourceType(v.to_string())),
        }
    }
}

fn ts(t: DateTime<Utc>) -> pbjson_types::Timestamp {
    t.into()
}

fn from_ts(t: Option<pbjson_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::<Utc>::try_from(t).ok())
}

impl Alert {
    pub fn to_proto(&self) -> pb::Alert {
        pb::Alert {
            id: self.id.to_string(),
            severity: self.severity.to_proto() as i32,
            title: self.title.clone(),
            message: self.message.clone(),
            source_type: self.source_type.to_proto() as i32,
            source_id: self.source_id.clone(),
            source_name: self.source_name.clone(),
            condition: self.condition.clone(),
            count: self.count,
            acknowledged: self.acknowledged,
            acknowledged_by: self.acknowledged_by.clone().unwrap_or_default(),
            acknowledged_at: self.acknowledged_at.map(ts),
            resolved: self.resolved,
            resolved_at: self.resolved_at.map(ts),
            created_at: Some(ts(self.created_at)),
            updated_at: Some(ts(self.updated_at)),
            project_id: self.project_id.to_string(),
        }
    }

    /// Decodes an alert received from the server (the CLI).
    pub fn from_proto(a: &pb::Alert) -> crate::Result<Alert> {
        let created_at = from_ts(a.created_at).unwrap_or(DateTime::UNIX_EPOCH);
        Ok(Alert {
            id: AlertId::parse("id", &a.id)?,
            severity: AlertSeverity::from_proto(a.severity)?.unwrap_or(AlertSeverity::Info),
            title: a.title.clone(),
            message: a.message.clone(),
            source_type: AlertSourceType::from_proto(a.source_type)?.unwrap_or(AlertSourceType::System),
            source_id: a.source_id.clone(),
            source_name: a.source_name.clone(),
            condition: a.condition.clone(),
            count: a.count,
            acknowledged: a.acknowledged,
            acknowledged_by: Some(a.acknowledged_by.clone()).filter(|s| !s.is_empty()),
            acknowledged_at: from_ts(a.acknowledged_at),
            resolved: a.resolved,
            resolved_at: from_ts(a.resolved_at),
            created_at,
            updated_at: from_ts(a.updated_at).unwrap_or(created_at),
            project_id: crate::model::ProjectId::parse("project_id", &a.project_id)
                .unwrap_or(crate::model::ProjectId::DEFAULT),
        })
    }
}

impl AlertFilter {
    /// The filters of a ListAlerts request (paging is the store's).
    pub fn from_proto(r: &pb::ListAlertsRequest) -> Result<AlertFilter, AlertError> {
        Ok(AlertFilter {
            severity: AlertSeverity::from_proto(r.severity)?,
            source_type: AlertSourceType::from_proto(r.source_type)?,
            source_id: Some(r.source_id.trim().to_string()).filter(|s| !s.is_empty()),
            acknowledged: r.acknowledged,
            resolved: r.resolved,
            projects: None,
        })
    }
}

impl AlertSummary {
    pub fn to_proto(&self) -> pb::AlertSummary {
        pb::AlertSummary {
            critical: self.critical,
            warning: self.warning,
            info: self.info,
            unacknowledged: self.unacknowledged,
            total_open: self.total_open,
        }
    }
}

impl Webhook {
    /// Never includes the secret, only whether there is one.
    pub fn to_proto(&self) -> pb::Webhook {
        pb::Webhook {
            id: self.id.to_string(),
            url: self.url.clone(),
            severities: self.severities.iter().map(|s| s.to_proto() as i32).collect(),
            has_secret: self.has_secret(),
            created_at: Some(ts(self.created_at)),
            last_delivery_at: self.last_delivery_at.map(ts),
            last_delivery_status: self
                .last_delivery_status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        }
    }
}

/// The severities of a CreateWebhook request (UNSPECIFIED entries are ignored; none: all).
pub fn severities_from_proto(v: &[i32]) -> Result<Vec<AlertSeverity>, AlertError> {
    let mut out = Vec::new();
    for s in v {
        if let Some(s) = AlertSeverity::from_proto(*s)?
            && !out.contains(&s)
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// TestWebhook's answer from the attempts of one test delivery.
pub fn test_response(attempts: &[WebhookDelivery]) -> pb::TestWebhookResponse {
    let last = attempts.last();
    pb::TestWebhookResponse {
        delivered: last.is_some_and(|d| d.status == WebhookDeliveryStatus::Delivered),
        http_status: last.and_then(|d| d.http_status).map(u32::from).unwrap_or(0),
        error: last.and_then(|d| d.error.clone()).unwrap_or_default(),
        attempts: attempts.len() as u32,
    }
}

#[cfg(feature = "server")]
impl crate::background::TaskStatus {
    /// The wire form (AlertService.ListBackgroundTasks).
    pub fn to_proto(&self) -> pb::BackgroundTask {
        let dur = |d: std::time::Duration| pbjson_types::Duration {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        };
        let (last_ok, last_summary) = match &self.last_result {
            Some(crate::background::Outcome::Ok(s)) => (true, s.clone()),
            Some(crate::background::Outcome::Error(e)) => (false, e.clone()),
            None => (false, String::new()),
        };
        pb::BackgroundTask {
            name: self.name.clone(),
            period: (!self.period.is_zero()).then(|| dur(self.period)),
            running: self.running,
            last_start: self.last_start.map(Into::into),
            last_end: self.last_end.map(Into::into),
            last_duration: self.last_duration.map(dur),
            last_ok,
            last_summary,
            last_error_time: self.last_error.as_ref().map(|e| e.0.into()),
            last_error: self.last_error.as_ref().map(|e| e.1.clone()).unwrap_or_default(),
            runs: self.runs,
            errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{acknowledge, node_alert, raise};
    use crate::model::{NodeId, WebhookId};

    #[test]
    fn alert_round_trips_through_proto() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let d = node_alert(
            NodeId::new(),
            "node-1",
            AlertSeverity::Critical,
            "node.unreachable",
            "down",
            "no heartbeat",
        );
        let a = acknowledge(
            &raise(None, d, t0).into_alert(),
            "alice",
            t0 + chrono::Duration::seconds(5),
        );
        let pb = a.to_proto();
        assert_eq!(pb.severity, pb::AlertSeverity::Critical as i32);
        assert_eq!(pb.source_type, pb::AlertSourceType::Host as i32);
        assert_eq!(pb.acknowledged_by, "alice");
        assert_eq!(Alert::from_proto(&pb).unwrap(), a);
    }

    #[test]
    fn list_request_becomes_a_filter() {
        let r = pb::ListAlertsRequest {
            severity: pb::AlertSeverity::Warning as i32,
            source_type: 0,
            source_id: " vm-1 ".into(),
            acknowledged: Some(false),
            resolved: None,
            page_size: 10,
            page_token: String::new(),
        };
        let f = AlertFilter::from_proto(&r).unwrap();
        assert_eq!(f.severity, Some(AlertSeverity::Warning));
        assert_eq!(f.source_type, None);
        assert_eq!(f.source_id.as_deref(), Some("vm-1"));
        assert_eq!(f.acknowledged, Some(false));
        let bad = pb::ListAlertsRequest { severity: 99, ..r };
        let err: crate::Error = AlertFilter::from_proto(&bad).unwrap_err().into();
        assert_eq!(err.kind, crate::ErrorKind::InvalidArgument);
        assert!(err.message.starts_with("severity:"), "{}", err.message);
    }

    #[test]
    fn webhook_proto_hides_the_secret_and_severities_dedupe() {
        let w = Webhook {
            id: WebhookId::new(),
            url: "http://127.0.0.1:9/x".into(),
            severities: severities_from_proto(&[1, 0, 1, 3]).unwrap(),
            secret: Some("k".into()),
            created_at: DateTime::UNIX_EPOCH,
            last_delivery_at: None,
            last_delivery_status: Some(WebhookDeliveryStatus::Failed),
        };
        assert_eq!(w.severities, vec![AlertSeverity::Critical, AlertSeverity::Info]);
        let pb = w.to_proto();
        assert!(pb.has_secret);
        assert_eq!(pb.last_delivery_status, "FAILED");
        assert!(severities_from_proto(&[7]).is_err());
    }

    #[test]
    fn test_response_reports_the_last_attempt() {
        let row = |attempt, status, http_status: Option<u16>| WebhookDelivery {
            delivery_id: uuid::Uuid::nil(),
            webhook_id: WebhookId::new(),
            alert_id: None,
            event: crate::model::WebhookEvent::Test,
            attempt,
            status,
            http_status,
            error: (status != WebhookDeliveryStatus::Delivered).then(|| "HTTP 500".to_string()),
            duration_ms: 1,
            time: DateTime::UNIX_EPOCH,
        };
        let r = test_response(&[
            row(1, WebhookDeliveryStatus::Retrying, Some(500)),
            row(2, WebhookDeliveryStatus::Delivered, Some(200)),
        ]);
        assert_eq!(
            (r.delivered, r.http_status, r.attempts, r.error.as_str()),
            (true, 200, 2, "")
        );
        let r = test_response(&[row(1, WebhookDeliveryStatus::Failed, Some(500))]);
        assert_eq!(
            (r.delivered, r.http_status, r.attempts, r.error.as_str()),
            (false, 500, 1, "HTTP 500")
        );
    }
}

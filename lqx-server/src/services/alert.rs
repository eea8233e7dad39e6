//! limiquantix.alert.v1.AlertService: decode, call `lqx_core::alert::service::Alerts`,
//! encode. The auth layer checked `alert:read` / `alert:manage` before we get here.

use super::st;
use lqx_core::alert::monitor::{HostMonitor, MonitorConfig};
use lqx_core::alert::service::{Alerts, AlertsConfig};
use lqx_core::alert::{severities_from_proto, test_response};
use lqx_core::api::alert::v1::{self as pb, alert_service_server::AlertService};
use lqx_core::auth::Principal;
use lqx_core::compute::Compute;
use lqx_core::model::{AlertFilter, AlertId, WebhookId};
use tonic::{Request, Response, Status};

pub struct AlertApi {
    pub alerts: Alerts,
}

/// Starts the alert service and the server's own host checks (`LQX_HOST_CHECK_INTERVAL`,
/// e.g. `2s`, overrides how often hosts are checked; 10 s by default, 2 s in the `--dev`
/// playground).
pub fn start(compute: &Compute, dev: bool) -> lqx_core::Result<Alerts> {
    let alerts = Alerts::start(compute.store.clone(), compute.events.clone(), AlertsConfig::default())?;
    let mut config = MonitorConfig::default();
    if dev {
        config.interval = std::time::Duration::from_secs(2);
    }
    if let Ok(v) = std::env::var("LQX_HOST_CHECK_INTERVAL") {
        match humantime::parse_duration(v.trim()) {
            Ok(d) if !d.is_zero() => config.interval = d,
            _ => tracing::warn!(value = %v, "ignoring LQX_HOST_CHECK_INTERVAL: not a duration like 10s"),
        }
    }
    HostMonitor::new(compute.clone(), alerts.clone(), config).spawn();
    Ok(alerts)
}

fn alert_id(id: &str) -> Result<AlertId, Status> {
    AlertId::parse("id", id.trim()).map_err(st)
}

fn webhook_id(id: &str) -> Result<WebhookId, Status> {
    WebhookId::parse("id", id.trim()).map_err(st)
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn list_alerts(
        &self,
        req: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let r = req.into_inner();
        let filter = AlertFilter::from_proto(&r).map_err(|e| st(e.into()))?;
        let page = self
            .alerts
            .list(&filter, r.page_size, &r.page_token)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: page.alerts.iter().map(|a| a.to_proto()).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_alert(&self, req: Request<pb::GetAlertRequest>) -> Result<Response<pb::Alert>, Status> {
        let id = alert_id(&req.into_inner().id)?;
        Ok(Response::new(self.alerts.get(id).await.map_err(st)?.to_proto()))
    }

    async fn acknowledge_alert(
        &self,
        req: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        let audit = super::auth::note(&req);
        // Who acknowledged: the caller's username (an API key acts for its owner).
        let by = req
            .extensions()
            .get::<Principal>()
            .map(|p| p.username.clone())
            .unwrap_or_else(|| "anonymous".into());
        let id = alert_id(&req.into_inner().id)?;
        audit.resource("alert", id);
        Ok(Response::new(
            self.alerts.acknowledge(id, &by).await.map_err(st)?.to_proto(),
        ))
    }

    async fn resolve_alert(&self, req: Request<pb::ResolveAlertRequest>) -> Result<Response<pb::Alert>, Status> {
        let audit = super::auth::note(&req);
        let id = alert_id(&req.into_inner().id)?;
        audit.resource("alert", id);
        Ok(Response::new(self.alerts.resolve(id).await.map_err(st)?.to_proto()))
    }

    async fn get_alert_summary(
        &self,
        _req: Request<pb::GetAlertSummaryRequest>,
    ) -> Result<Response<pb::AlertSummary>, Status> {
        Ok(Response::new(self.alerts.summary().await.map_err(st)?.to_proto()))
    }

    async fn create_webhook(&self, req: Request<pb::CreateWebhookRequest>) -> Result<Response<pb::Webhook>, Status> {
        let audit = super::auth::note(&req);
        let r = req.into_inner();
        let severities = severities_from_proto(&r.severities).map_err(|e| st(e.into()))?;
        let w = self
            .alerts
            .create_webhook(&r.url, severities, &r.secret)
            .await
            .map_err(st)?;
        audit.resource("webhook", w.id);
        Ok(Response::new(w.to_proto()))
    }

    async fn list_webhooks(
        &self,
        _req: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let hooks = self.alerts.list_webhooks().await.map_err(st)?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks: hooks.iter().map(|w| w.to_proto()).collect(),
        }))
    }

    async fn delete_webhook(
        &self,
        req: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let audit = super::auth::note(&req);
        let id = webhook_id(&req.into_inner().id)?;
        audit.resource("webhook", id);
        self.alerts.delete_webhook(id).await.map_err(st)?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn test_webhook(
        &self,
        req: Request<pb::TestWebhookRequest>,
    ) -> Result<Response<pb::TestWebhookResponse>, Status> {
        let audit = super::auth::note(&req);
        let id = webhook_id(&req.into_inner().id)?;
        audit.resource("webhook", id);
        let attempts = self.alerts.test_webhook(id).await.map_err(st)?;
        Ok(Response::new(test_response(&attempts)))
    }
}

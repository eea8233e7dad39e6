//! limiquantix.alert.v1.AlertService: decode, call `lqx_core::alert::service::Alerts`,
//! encode. The auth layer checked `alert:read` / `alert:manage` before we get here.

use super::{named_project, names_project, principal, st};
use lqx_core::alert::monitor::{HostMonitor, MonitorConfig};
use lqx_core::alert::service::{Alerts, AlertsConfig};
use lqx_core::api::alert::v1::{self as pb, alert_service_server::AlertService};
use lqx_core::api::convert::alert::{severities_from_proto, test_response};
use lqx_core::auth::AuthService;
use lqx_core::auth::Principal;
use lqx_core::background::BackgroundTasks;
use lqx_core::compute::Compute;
use lqx_core::model::Permission;
use lqx_core::model::{AlertFilter, AlertId, WebhookId};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct AlertApi {
    pub alerts: Alerts,
    pub auth: Arc<AuthService>,
    /// This replica's background loops (ListBackgroundTasks).
    pub tasks: BackgroundTasks,
}

impl AlertApi {
    /// The projects a list of alerts covers for this caller (see `AuthService::list_scope`).
    async fn scope<T>(&self, req: &Request<T>) -> Result<Option<Vec<lqx_core::model::ProjectId>>, Status> {
        let p = principal(req)?;
        let named = names_project(req).then(|| named_project(req, ""));
        self.auth
            .list_scope(&p, named.as_deref(), Permission::AlertRead, &super::auth::note(req))
            .await
            .map_err(st)
    }

    /// The alert, if the caller may `perm` in its project (else not found / denied).
    async fn alert_for<T>(&self, req: &Request<T>, id: AlertId, perm: Permission) -> Result<(), Status> {
        let p = principal(req)?;
        let a = self.alerts.get(id).await.map_err(st)?;
        self.auth
            .resource_access(
                &p,
                a.project_id,
                "alert",
                &id.to_string(),
                perm,
                &super::auth::note(req),
            )
            .map_err(st)
    }
}

/// Starts the alert service and the server's own host checks (`LQX_HOST_CHECK_INTERVAL`,
/// e.g. `2s`, overrides how often hosts are checked; 10 s by default, 2 s in the `--dev`
/// playground).
pub fn start(compute: &Compute, dev: bool, tasks: &BackgroundTasks) -> lqx_core::Result<Alerts> {
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
    HostMonitor::new(compute.clone(), alerts.clone(), config).spawn_in(tasks);
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
        let projects = self.scope(&req).await?;
        let r = req.into_inner();
        let mut filter = AlertFilter::from_proto(&r).map_err(|e| st(e.into()))?;
        filter.projects = projects;
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
        let id = alert_id(&req.get_ref().id)?;
        self.alert_for(&req, id, Permission::AlertRead).await?;
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
        let id = alert_id(&req.get_ref().id)?;
        audit.resource("alert", id);
        self.alert_for(&req, id, Permission::AlertManage).await?;
        Ok(Response::new(
            self.alerts.acknowledge(id, &by).await.map_err(st)?.to_proto(),
        ))
    }

    async fn resolve_alert(&self, req: Request<pb::ResolveAlertRequest>) -> Result<Response<pb::Alert>, Status> {
        let audit = super::auth::note(&req);
        let id = alert_id(&req.get_ref().id)?;
        audit.resource("alert", id);
        self.alert_for(&req, id, Permission::AlertManage).await?;
        Ok(Response::new(self.alerts.resolve(id).await.map_err(st)?.to_proto()))
    }

    async fn list_background_tasks(
        &self,
        _req: Request<pb::ListBackgroundTasksRequest>,
    ) -> Result<Response<pb::ListBackgroundTasksResponse>, Status> {
        let tasks = self.tasks.list().iter().map(|t| t.to_proto()).collect();
        Ok(Response::new(pb::ListBackgroundTasksResponse { tasks }))
    }

    async fn get_alert_summary(
        &self,
        req: Request<pb::GetAlertSummaryRequest>,
    ) -> Result<Response<pb::AlertSummary>, Status> {
        let projects = self.scope(&req).await?;
        Ok(Response::new(
            self.alerts.summary(projects.as_deref()).await.map_err(st)?.to_proto(),
        ))
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

//! `lqx alert ...`: AlertService.

use lqx_core::api::alert::v1 as pb;
use lqx_core::api::alert::v1::alert_service_client::AlertServiceClient;

use crate::app::{App, read_stdin_line};
use crate::cli::{AlertCmd, SeverityArg, SourceTypeArg, WebhookCmd};
use crate::error::CliResult;
use crate::rpc;
use crate::views::{AlertSummaryView, AlertView, WebhookTestView, WebhookView};

fn severity(s: SeverityArg) -> pb::AlertSeverity {
    match s {
        SeverityArg::Critical => pb::AlertSeverity::Critical,
        SeverityArg::Warning => pb::AlertSeverity::Warning,
        SeverityArg::Info => pb::AlertSeverity::Info,
    }
}

fn source_type(s: SourceTypeArg) -> pb::AlertSourceType {
    match s {
        SourceTypeArg::Vm => pb::AlertSourceType::Vm,
        SourceTypeArg::Host => pb::AlertSourceType::Host,
        SourceTypeArg::Storage => pb::AlertSourceType::Storage,
        SourceTypeArg::Network => pb::AlertSourceType::Network,
        SourceTypeArg::Cluster => pb::AlertSourceType::Cluster,
        SourceTypeArg::System => pb::AlertSourceType::System,
    }
}

pub async fn run(app: App, c: AlertCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    match c {
        AlertCmd::List {
            severity: sev,
            unresolved,
            unacknowledged,
            source_type: st,
            source,
        } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let req = pb::ListAlertsRequest {
                    severity: sev.map_or(pb::AlertSeverity::Unspecified, severity) as i32,
                    source_type: st.map_or(pb::AlertSourceType::Unspecified, source_type) as i32,
                    source_id: source.clone().unwrap_or_default(),
                    acknowledged: unacknowledged.then_some(false),
                    resolved: unresolved.then_some(false),
                    page_size: 1000,
                    page_token: token.clone(),
                };
                let resp = rpc!(sess, AlertServiceClient, list_alerts, req)?;
                all.extend(resp.alerts.iter().map(AlertView::from));
                if resp.next_page_token.is_empty() || resp.next_page_token == token {
                    break;
                }
                token = resp.next_page_token;
            }
            app.printer.list(&all)
        }
        AlertCmd::Get { id } => {
            let id = resolve_alert(&mut sess, &id).await?;
            let a = rpc!(sess, AlertServiceClient, get_alert, pb::GetAlertRequest { id })?;
            app.printer.one(&AlertView::from(&a))
        }
        AlertCmd::Ack { id } => {
            let id = resolve_alert(&mut sess, &id).await?;
            let a = rpc!(
                sess,
                AlertServiceClient,
                acknowledge_alert,
                pb::AcknowledgeAlertRequest { id }
            )?;
            app.printer.one(&AlertView::from(&a))
        }
        AlertCmd::Resolve { id } => {
            let id = resolve_alert(&mut sess, &id).await?;
            let a = rpc!(sess, AlertServiceClient, resolve_alert, pb::ResolveAlertRequest { id })?;
            app.printer.one(&AlertView::from(&a))
        }
        AlertCmd::Summary => {
            let s = rpc!(
                sess,
                AlertServiceClient,
                get_alert_summary,
                pb::GetAlertSummaryRequest {}
            )?;
            app.printer.one(&AlertSummaryView::from(&s))
        }
        AlertCmd::Webhook(w) => match w {
            WebhookCmd::Add {
                url,
                severity: sevs,
                secret_stdin,
            } => {
                let secret = if secret_stdin {
                    read_stdin_line("webhook secret")?
                } else {
                    String::new()
                };
                let req = pb::CreateWebhookRequest {
                    url,
                    severities: sevs.into_iter().map(|s| severity(s) as i32).collect(),
                    secret,
                };
                let h = rpc!(sess, AlertServiceClient, create_webhook, req)?;
                app.printer.one(&WebhookView::from(&h))
            }
            WebhookCmd::List => {
                let resp = rpc!(sess, AlertServiceClient, list_webhooks, pb::ListWebhooksRequest {})?;
                let v: Vec<WebhookView> = resp.webhooks.iter().map(WebhookView::from).collect();
                app.printer.list(&v)
            }
            WebhookCmd::Delete { id, yes } => {
                app.can_confirm(&format!("Delete webhook {id}"), yes)?;
                let id = resolve_webhook(&mut sess, &id).await?;
                app.confirm(&format!("Delete webhook {id}?"), yes)?;
                rpc!(
                    sess,
                    AlertServiceClient,
                    delete_webhook,
                    pb::DeleteWebhookRequest { id: id.clone() }
                )?;
                app.printer.info(&format!("Deleted webhook {id}"));
                Ok(())
            }
            WebhookCmd::Test { id } => {
                let id = resolve_webhook(&mut sess, &id).await?;
                let r = rpc!(
                    sess,
                    AlertServiceClient,
                    test_webhook,
                    pb::TestWebhookRequest { id: id.clone() }
                )?;
                let v = WebhookTestView {
                    id,
                    delivered: r.delivered,
                    http_status: r.http_status,
                    error: r.error,
                    attempts: r.attempts,
                };
                app.printer.one(&v)?;
                if !v.delivered {
                    return Err(crate::error::CliError::general(format!(
                        "The test delivery to webhook {} failed",
                        v.id
                    )));
                }
                Ok(())
            }
        },
    }
}

/// An alert by full id or id prefix (alerts have no names).
async fn resolve_alert(sess: &mut crate::client::Session, q: &str) -> CliResult<String> {
    use crate::resolve::{Candidate, is_full_id, pick};
    if is_full_id(q) {
        return Ok(q.to_string());
    }
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let req = pb::ListAlertsRequest {
            page_size: 1000,
            page_token: token.clone(),
            ..Default::default()
        };
        let resp = rpc!(sess, AlertServiceClient, list_alerts, req)?;
        items.extend(resp.alerts.iter().map(|a| Candidate {
            id: a.id.clone(),
            name: String::new(),
        }));
        if resp.next_page_token.is_empty() || resp.next_page_token == token {
            break;
        }
        token = resp.next_page_token;
    }
    pick("alert", q, &items)
}

/// A webhook by full id or id prefix.
async fn resolve_webhook(sess: &mut crate::client::Session, q: &str) -> CliResult<String> {
    use crate::resolve::{Candidate, is_full_id, pick};
    if is_full_id(q) {
        return Ok(q.to_string());
    }
    let resp = rpc!(sess, AlertServiceClient, list_webhooks, pb::ListWebhooksRequest {})?;
    let items: Vec<Candidate> = resp
        .webhooks
        .iter()
        .map(|w| Candidate {
            id: w.id.clone(),
            name: w.url.clone(),
        })
        .collect();
    pick("webhook", q, &items)
}

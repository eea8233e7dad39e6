//! `lqx drs ...`: DRSService.

use lqx_core::api::drs::v1 as pb;
use lqx_core::api::drs::v1::drs_service_client::DrsServiceClient;
use pb::RecommendationStatus as St;

use super::new_request_id;
use crate::app::App;
use crate::cli::{AutomationArg, DrsCmd, DrsConfigureArgs, RecStatusArg};
use crate::client::Session;
use crate::error::{CliError, CliResult, ExitCode};
use crate::rpc;
use crate::views::{DrsConfigView, DrsStatusView, RecommendationView, enum_word};

fn status_of(s: RecStatusArg) -> St {
    match s {
        RecStatusArg::Pending => St::Pending,
        RecStatusArg::Approved => St::Approved,
        RecStatusArg::Applying => St::Applying,
        RecStatusArg::Applied => St::Applied,
        RecStatusArg::Rejected => St::Rejected,
        RecStatusArg::Failed => St::Failed,
        RecStatusArg::Expired => St::Expired,
    }
}

pub async fn run(app: App, c: DrsCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    match c {
        DrsCmd::Status => {
            let s = rpc!(
                sess,
                DrsServiceClient,
                get_drs_status,
                pb::GetDrsStatusRequest {}
            )?;
            app.printer.one(&DrsStatusView::from(&s))
        }
        DrsCmd::List { status } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let req = pb::ListRecommendationsRequest {
                    status: status.map_or(St::Unspecified, status_of) as i32,
                    page_size: 1000,
                    page_token: token.clone(),
                };
                let resp = rpc!(sess, DrsServiceClient, list_recommendations, req)?;
                all.extend(resp.recommendations.iter().map(RecommendationView::from));
                if resp.next_page_token.is_empty() || resp.next_page_token == token {
                    break;
                }
                token = resp.next_page_token;
            }
            app.printer.list(&all)
        }
        DrsCmd::Get { id } => {
            let r = get(&mut sess, &id).await?;
            app.printer.one(&RecommendationView::from(&r))
        }
        DrsCmd::Approve { id } => {
            let r = rpc!(
                sess,
                DrsServiceClient,
                approve_recommendation,
                pb::ApproveRecommendationRequest { id }
            )?;
            app.printer.one(&RecommendationView::from(&r))
        }
        DrsCmd::Apply { id, wait } => {
            let mut r = rpc!(
                sess,
                DrsServiceClient,
                apply_recommendation,
                pb::ApplyRecommendationRequest {
                    id: id.clone(),
                    request_id: new_request_id()
                }
            )?;
            if app.wants_wait(wait) {
                let mut w = app.waiter(format!("waiting for recommendation {id} to be applied"));
                loop {
                    match r.status() {
                        St::Applied => break,
                        St::Failed | St::Rejected | St::Expired => {
                            w.finish();
                            return Err(CliError::new(
                                ExitCode::Conflict,
                                format!(
                                    "Recommendation {id} ended {}{}",
                                    enum_word(r.status().as_str_name(), "RECOMMENDATION_STATUS_"),
                                    if r.failure_reason.is_empty() {
                                        String::new()
                                    } else {
                                        format!(": {}", r.failure_reason)
                                    }
                                ),
                            ));
                        }
                        other => {
                            w.pending(&enum_word(other.as_str_name(), "RECOMMENDATION_STATUS_"))
                                .await?
                        }
                    }
                    r = get(&mut sess, &id).await?;
                }
            }
            app.printer.one(&RecommendationView::from(&r))
        }
        DrsCmd::Reject { id, reason } => {
            let r = rpc!(
                sess,
                DrsServiceClient,
                reject_recommendation,
                pb::RejectRecommendationRequest {
                    id,
                    reason: reason.unwrap_or_default()
                }
            )?;
            app.printer.one(&RecommendationView::from(&r))
        }
        DrsCmd::Run => {
            let r = rpc!(
                sess,
                DrsServiceClient,
                run_analysis,
                pb::RunAnalysisRequest {}
            )?;
            let v: Vec<RecommendationView> = r
                .recommendations
                .iter()
                .map(RecommendationView::from)
                .collect();
            if !app.printer.is_structured() {
                app.printer.info(&format!(
                    "Imbalance {:.3} now, {:.3} after these {} recommendation(s)",
                    r.imbalance_before,
                    r.imbalance_after,
                    v.len()
                ));
            }
            app.printer.list(&v)
        }
        DrsCmd::Configure(a) => configure(&app, &mut sess, a).await,
    }
}

async fn get(sess: &mut Session, id: &str) -> CliResult<pb::Recommendation> {
    rpc!(
        sess,
        DrsServiceClient,
        get_recommendation,
        pb::GetRecommendationRequest { id: id.to_string() }
    )
}

async fn configure(app: &App, sess: &mut Session, a: DrsConfigureArgs) -> CliResult<()> {
    let mut c = pb::DrsConfig::default();
    let mut mask = Vec::new();
    if let Some(v) = a.enabled {
        c.enabled = v;
        mask.push("enabled");
    }
    if let Some(v) = a.automation {
        c.automation_level = match v {
            AutomationArg::Manual => pb::AutomationLevel::Manual,
            AutomationArg::Partial => pb::AutomationLevel::Partial,
            AutomationArg::Full => pb::AutomationLevel::Full,
        } as i32;
        mask.push("automation_level");
    }
    if let Some(v) = a.interval {
        c.interval_seconds = u32::try_from(v.as_secs()).unwrap_or(u32::MAX);
        mask.push("interval_seconds");
    }
    if let Some(v) = a.threshold_cpu {
        c.threshold_cpu = v;
        mask.push("threshold_cpu");
    }
    if let Some(v) = a.threshold_memory {
        c.threshold_memory = v;
        mask.push("threshold_memory");
    }
    if let Some(v) = a.migration_threshold {
        c.migration_threshold = v;
        mask.push("migration_threshold");
    }
    if let Some(v) = a.max_migrations_per_host {
        c.max_concurrent_migrations_per_host = v;
        mask.push("max_concurrent_migrations_per_host");
    }
    if mask.is_empty() {
        return Err(CliError::usage("Nothing to change")
            .hint("`lqx drs configure --help` lists the settings"));
    }
    let req = pb::UpdateDrsConfigRequest {
        config: Some(c),
        update_mask: mask.into_iter().map(String::from).collect(),
    };
    let cfg = rpc!(sess, DrsServiceClient, update_drs_config, req)?;
    app.printer.one(&DrsConfigView::from(&cfg))
}

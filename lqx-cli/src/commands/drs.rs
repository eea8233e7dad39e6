//! `lqx drs ...`: DRSService.

use lqx_core::api::drs::v1 as pb;
use lqx_core::api::drs::v1::drs_service_client::DrsServiceClient;
use pb::RecommendationStatus as St;

use super::new_request_id;
use crate::app::App;
use crate::cli::{AutomationArg, DrsCmd, DrsConfigureArgs, DrsSimulateArgs, RecStatusArg};
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
    if let DrsCmd::Simulate(a) = c {
        return simulate(&app, a);
    }
    let mut sess = app.session()?;
    match c {
        DrsCmd::Status => {
            let s = rpc!(sess, DrsServiceClient, get_drs_status, pb::GetDrsStatusRequest {})?;
            app.printer.one(&DrsStatusView::from(&s))?;
            for n in &s.unrelieved_nodes {
                app.printer.warn(&format!(
                    "{n} stays hot: DRS found no relief (alert drs.node_unrelieved)"
                ));
            }
            for v in &s.not_live_movable {
                app.printer.warn(&format!(
                    "{v}: DRS leaves it in place rather than stop it (alert drs.vm_not_live_movable)"
                ));
            }
            Ok(())
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
            let id = resolve(&mut sess, &id).await?;
            let r = get(&mut sess, &id).await?;
            app.printer.one(&RecommendationView::from(&r))
        }
        DrsCmd::Approve { id } => {
            let id = resolve(&mut sess, &id).await?;
            let r = rpc!(
                sess,
                DrsServiceClient,
                approve_recommendation,
                pb::ApproveRecommendationRequest { id }
            )?;
            app.printer.one(&RecommendationView::from(&r))
        }
        DrsCmd::Apply { id, wait } => {
            let id = resolve(&mut sess, &id).await?;
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
            let id = resolve(&mut sess, &id).await?;
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
            let r = rpc!(sess, DrsServiceClient, run_analysis, pb::RunAnalysisRequest {})?;
            let v: Vec<RecommendationView> = r.recommendations.iter().map(RecommendationView::from).collect();
            if !app.printer.is_structured() {
                app.printer.info(&format!(
                    "Imbalance {:.3} now, {:.3} after these {} recommendation(s)",
                    r.imbalance_before,
                    r.imbalance_after,
                    v.len()
                ));
                if v.is_empty() && !r.why_no_moves.is_empty() {
                    app.printer.info(&r.why_no_moves);
                }
            }
            app.printer.list(&v)
        }
        DrsCmd::Configure(a) => configure(&app, &mut sess, a).await,
        DrsCmd::Simulate(a) => simulate(&app, a),
    }
}

/// A recommendation by full id or id prefix.
async fn resolve(sess: &mut Session, q: &str) -> CliResult<String> {
    use crate::resolve::{Candidate, is_full_id, pick};
    if is_full_id(q) {
        return Ok(q.to_string());
    }
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let req = pb::ListRecommendationsRequest {
            status: St::Unspecified as i32,
            page_size: 1000,
            page_token: token.clone(),
        };
        let resp = rpc!(sess, DrsServiceClient, list_recommendations, req)?;
        items.extend(resp.recommendations.iter().map(|r| Candidate {
            id: r.id.clone(),
            name: String::new(),
        }));
        if resp.next_page_token.is_empty() || resp.next_page_token == token {
            break;
        }
        token = resp.next_page_token;
    }
    pick("recommendation", q, &items)
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
    use lqx_core::api::convert::drs::ConfigField as F;
    let mut mask = Vec::new();
    if let Some(v) = a.enabled {
        c.enabled = v;
        mask.push(F::Enabled.path());
    }
    if let Some(v) = a.automation {
        c.automation_level = match v {
            AutomationArg::Manual => pb::AutomationLevel::Manual,
            AutomationArg::Partial => pb::AutomationLevel::Partial,
            AutomationArg::Full => pb::AutomationLevel::Full,
        } as i32;
        mask.push(F::AutomationLevel.path());
    }
    if let Some(v) = a.interval {
        c.interval_seconds = u32::try_from(v.as_secs()).unwrap_or(u32::MAX);
        mask.push(F::IntervalSeconds.path());
    }
    if let Some(v) = a.threshold_cpu {
        c.threshold_cpu = v;
        mask.push(F::ThresholdCpu.path());
    }
    if let Some(v) = a.threshold_memory {
        c.threshold_memory = v;
        mask.push(F::ThresholdMemory.path());
    }
    if let Some(v) = a.migration_threshold {
        c.migration_threshold = v;
        mask.push(F::MigrationThreshold.path());
    }
    if let Some(v) = a.max_migrations_per_host {
        c.max_concurrent_migrations_per_host = v;
        mask.push(F::MaxConcurrentMigrationsPerHost.path());
    }
    if let Some(v) = a.migrations_per_round {
        c.migrations_per_host_per_round = v;
        mask.push(F::MigrationsPerHostPerRound.path());
    }
    if let Some(v) = a.dpm {
        c.dpm_enabled = v;
        mask.push(F::DpmEnabled.path());
    }
    if let Some(v) = a.dpm_automation {
        c.dpm_automation_level = match v {
            AutomationArg::Manual => pb::AutomationLevel::Manual,
            AutomationArg::Partial => pb::AutomationLevel::Partial,
            AutomationArg::Full => pb::AutomationLevel::Full,
        } as i32;
        mask.push(F::DpmAutomationLevel.path());
    }
    if let Some(v) = a.dpm_power_off_below {
        c.dpm_power_off_below = v;
        mask.push(F::DpmPowerOffBelow.path());
    }
    if let Some(v) = a.dpm_power_on_above {
        c.dpm_power_on_above = v;
        mask.push(F::DpmPowerOnAbove.path());
    }
    if let Some(v) = a.dpm_min_hosts_on {
        c.dpm_min_hosts_on = v;
        mask.push(F::DpmMinHostsOn.path());
    }
    if let Some(v) = a.dpm_opt_out {
        c.dpm_opt_out = v
            .into_iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        mask.push(F::DpmOptOut.path());
    }
    if let Some(v) = a.dpm_watts_per_host {
        c.dpm_watts_per_host = v;
        mask.push(F::DpmWattsPerHost.path());
    }
    if mask.is_empty() {
        return Err(CliError::usage("Nothing to change").hint("`lqx drs configure --help` lists the settings"));
    }
    let req = pb::UpdateDrsConfigRequest {
        config: Some(c),
        update_mask: mask.into_iter().map(String::from).collect(),
    };
    let cfg = rpc!(sess, DrsServiceClient, update_drs_config, req)?;
    app.printer.one(&DrsConfigView::from(&cfg))
}

/// `lqx drs simulate`: the same planner as the server, offline over a cluster file
/// (`lqx_core::cluster_file::simulate_drs_rounds`). JSON/YAML print the core's report as
/// is (the field names lqx-cli/README.md lists).
fn simulate(app: &App, a: DrsSimulateArgs) -> CliResult<()> {
    use lqx_core::cluster_file::{SimulatedRecommendation, simulate_drs_rounds};
    let text = std::fs::read_to_string(&a.cluster).map_err(|e| {
        CliError::new(
            ExitCode::NotFound,
            format!("Cannot read the cluster file {}", a.cluster.display()),
        )
        .with_source(e)
    })?;
    let mut cfg = lqx_core::model::drs::DrsConfig::default();
    if let Some(v) = a.threshold_cpu {
        cfg.threshold_cpu = v;
    }
    if let Some(v) = a.threshold_memory {
        cfg.threshold_memory = v;
    }
    if let Some(v) = a.migration_threshold {
        cfg.migration_threshold = v;
    }
    let report = simulate_drs_rounds(&text, &cfg, a.rounds).map_err(|e| {
        let code = if e.kind == lqx_core::ErrorKind::InvalidArgument {
            ExitCode::Usage
        } else {
            ExitCode::Error
        };
        CliError::new(code, format!("{}: {}", a.cluster.display(), e.message))
    })?;
    match app.printer.format {
        crate::output::Format::Json => crate::output::out(&(crate::output::json_pretty(&report)? + "\n")),
        crate::output::Format::Yaml => crate::output::out(&serde_norway::to_string(&report).unwrap_or_default()),
        _ => {
            let word = |v: &SimulatedRecommendation| {
                let s = |x: serde_json::Value| x.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
                (
                    s(serde_json::to_value(v.priority).unwrap_or_default()),
                    s(serde_json::to_value(v.recommendation_type).unwrap_or_default()),
                )
            };
            let recs: Vec<SimRecView> = report
                .recommendations
                .iter()
                .map(|r| {
                    let (priority, kind) = word(r);
                    SimRecView {
                        vm: r.vm.clone(),
                        source: r.source.clone(),
                        target: r.target.clone(),
                        priority,
                        kind,
                        impact_cpu: r.impact_cpu,
                        impact_memory: r.impact_memory,
                        reason: r.reason.clone(),
                    }
                })
                .collect();
            app.printer.list(&recs)?;
            let nodes: Vec<NodeLoadView> = report
                .before
                .nodes
                .iter()
                .map(|b| {
                    let after = report.after.nodes.iter().find(|n| n.name == b.name);
                    NodeLoadView {
                        node: b.name.clone(),
                        cpu_before: b.cpu_percent,
                        cpu_after: after.map_or(b.cpu_percent, |n| n.cpu_percent),
                        memory_before: b.memory_percent,
                        memory_after: after.map_or(b.memory_percent, |n| n.memory_percent),
                    }
                })
                .collect();
            crate::output::out("\n");
            app.printer.list(&nodes)?;
            app.printer.info(&format!(
                "{} move(s), {} moved; imbalance {:.3} -> {:.3}; planned in {:.1} ms",
                report.moves,
                crate::parse::format_mib(report.memory_moved_mib),
                report.before.imbalance,
                report.after.imbalance,
                report.elapsed_ms
            ));
            for u in &report.unmovable {
                app.printer
                    .warn(&format!("{} on {} cannot move: {}", u.vm, u.node, u.reason));
            }
            for n in &report.unrelieved {
                app.printer.warn(&format!(
                    "{} stays hot ({:.1}% CPU, {:.1}% memory): no relief found",
                    n.node, n.cpu_percent, n.memory_percent
                ));
            }
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct SimRecView {
    vm: String,
    source: String,
    target: String,
    priority: String,
    #[serde(rename = "type")]
    kind: String,
    impact_cpu: f64,
    impact_memory: f64,
    reason: String,
}

impl crate::output::View for SimRecView {
    fn columns() -> &'static [crate::output::Column] {
        use crate::output::{col, wide};
        const C: &[crate::output::Column] = &[
            col("VM"),
            col("SOURCE"),
            col("TARGET"),
            col("PRIORITY"),
            col("IMPACT-CPU"),
            col("IMPACT-MEM"),
            wide("TYPE"),
            wide("REASON"),
        ];
        C
    }
    fn cell(&self, c: &str) -> String {
        match c {
            "VM" => self.vm.clone(),
            "SOURCE" => self.source.clone(),
            "TARGET" => self.target.clone(),
            "PRIORITY" => self.priority.clone(),
            "IMPACT-CPU" => format!("{:.1}", self.impact_cpu),
            "IMPACT-MEM" => format!("{:.1}", self.impact_memory),
            "TYPE" => self.kind.clone(),
            "REASON" => self.reason.clone(),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.vm.clone()
    }
}

#[derive(serde::Serialize)]
struct NodeLoadView {
    node: String,
    cpu_before: f64,
    cpu_after: f64,
    memory_before: f64,
    memory_after: f64,
}

impl crate::output::View for NodeLoadView {
    fn columns() -> &'static [crate::output::Column] {
        use crate::output::col;
        const C: &[crate::output::Column] = &[
            col("NODE"),
            col("CPU%-BEFORE"),
            col("CPU%-AFTER"),
            col("MEM%-BEFORE"),
            col("MEM%-AFTER"),
        ];
        C
    }
    fn cell(&self, c: &str) -> String {
        match c {
            "NODE" => self.node.clone(),
            "CPU%-BEFORE" => format!("{:.1}", self.cpu_before),
            "CPU%-AFTER" => format!("{:.1}", self.cpu_after),
            "MEM%-BEFORE" => format!("{:.1}", self.memory_before),
            "MEM%-AFTER" => format!("{:.1}", self.memory_after),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.node.clone()
    }
}

//! `lqx ha ...`: HAService.

use lqx_core::api::ha::v1 as pb;
use lqx_core::api::ha::v1::ha_service_client::HaServiceClient;

use super::new_request_id;
use crate::app::App;
use crate::cli::{HaCmd, HaSimulateArgs};
use crate::error::{CliError, CliResult, ExitCode};
use crate::output::{Format, out};
use crate::rpc;
use crate::views::{FailoverView, HaStatusView};

pub async fn run(app: App, c: HaCmd) -> CliResult<()> {
    if let HaCmd::Simulate(a) = c {
        return simulate(&app, a);
    }
    let mut sess = app.session()?;
    match c {
        HaCmd::Simulate(_) => unreachable_simulate(),
        HaCmd::Status => {
            let s = rpc!(sess, HaServiceClient, get_ha_status, pb::GetHaStatusRequest {})?;
            let v = HaStatusView::from(&s);
            match app.printer.format {
                Format::Table | Format::Wide if app.global.columns.is_none() => {
                    // The cluster line, then the per-node table.
                    app.printer.one(&v)?;
                    out("\n");
                    app.printer.list(&v.nodes)
                }
                _ => app.printer.one(&v),
            }
        }
        HaCmd::Failover { node, yes } => {
            app.confirm(
                &format!("Declare node {node} down and restart its HA VMs elsewhere? Only confirm if the host is powered off."),
                yes,
            )?;
            let req = pb::ManualFailoverRequest {
                node: node.clone(),
                confirm_host_down: true,
                request_id: new_request_id(),
            };
            let r = rpc!(sess, HaServiceClient, manual_failover, req)?;
            let v = FailoverView::from(&r);
            if app.printer.is_structured() {
                let s = if app.printer.format == Format::Json {
                    crate::output::json_pretty(&v)? + "\n"
                } else {
                    serde_norway::to_string(&v).unwrap_or_default()
                };
                out(&s);
            } else {
                let mut rows = v.placements.clone();
                rows.extend(v.unplaced.iter().cloned());
                app.printer.list(&rows)?;
                if !v.unplaced.is_empty() {
                    app.printer.warn(&format!(
                        "{} VM(s) could not be placed; they are retried when capacity appears",
                        v.unplaced.len()
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Handled before a session is opened.
fn unreachable_simulate() -> CliResult<()> {
    Err(CliError::new(ExitCode::Error, "ha simulate runs offline"))
}

/// `lqx ha simulate`: the failover the leader would plan, offline over a cluster file, with
/// the same lqx-core planner (`lqx_core::ha::simulate_failover`). JSON/YAML print the core's
/// report as is (the field names lqx-cli/README.md lists).
fn simulate(app: &App, a: HaSimulateArgs) -> CliResult<()> {
    let text = std::fs::read_to_string(&a.cluster).map_err(|e| {
        CliError::new(
            ExitCode::NotFound,
            format!("Cannot read the cluster file {}", a.cluster.display()),
        )
        .with_source(e)
    })?;
    let report = lqx_core::ha::simulate_failover(&text, &a.fail, &lqx_core::ha::HaConfig::default()).map_err(|e| {
        let code = if e.kind == lqx_core::ErrorKind::InvalidArgument {
            ExitCode::Usage
        } else {
            ExitCode::Error
        };
        CliError::new(code, format!("{}: {}", a.cluster.display(), e.message))
    })?;
    match app.printer.format {
        Format::Json => crate::output::out(&(crate::output::json_pretty(&report)? + "\n")),
        Format::Yaml => crate::output::out(&serde_norway::to_string(&report).unwrap_or_default()),
        _ => {
            let rows: Vec<SimPlacementView> = report
                .placements
                .iter()
                .map(|p| SimPlacementView {
                    vm: p.vm.clone(),
                    from: p.from.clone(),
                    to: p.to.clone(),
                    priority: serde_json::to_value(p.priority)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    delay: p.restart_delay_secs,
                })
                .collect();
            app.printer.list(&rows)?;
            let nodes: Vec<SimNodeView> = report
                .before
                .nodes
                .iter()
                .map(|b| {
                    let after = report.after.nodes.iter().find(|n| n.name == b.name);
                    SimNodeView {
                        node: b.name.clone(),
                        cpu_before: b.cpu_percent,
                        cpu_after: after.map(|n| n.cpu_percent),
                        memory_before: b.memory_percent,
                        memory_after: after.map(|n| n.memory_percent),
                    }
                })
                .collect();
            out("\n");
            app.printer.list(&nodes)?;
            app.printer.info(&format!(
                "{} HA VM(s) restart elsewhere within {:.0} s of {} failing (plus their restart delays); cluster N+1 protected before: {}",
                report.placements.len(),
                report.failover_bound_secs,
                report.failed_node,
                if report.cluster_protected { "yes" } else { "no" }
            ));
            for u in &report.unplaced {
                app.printer.warn(&format!("{} fits nowhere: {}", u.vm, u.reason));
            }
            if !report.not_protected.is_empty() {
                app.printer.warn(&format!(
                    "not HA-protected, they stay down: {}",
                    report.not_protected.join(", ")
                ));
            }
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct SimPlacementView {
    vm: String,
    from: String,
    to: String,
    priority: String,
    delay: u32,
}

impl crate::output::View for SimPlacementView {
    fn columns() -> &'static [crate::output::Column] {
        use crate::output::{col, wide};
        const C: &[crate::output::Column] = &[col("VM"), col("FROM"), col("TO"), col("PRIORITY"), wide("DELAY")];
        C
    }
    fn cell(&self, c: &str) -> String {
        match c {
            "VM" => self.vm.clone(),
            "FROM" => self.from.clone(),
            "TO" => self.to.clone(),
            "PRIORITY" => self.priority.clone(),
            "DELAY" => format!("{}s", self.delay),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.vm.clone()
    }
}

#[derive(serde::Serialize)]
struct SimNodeView {
    node: String,
    cpu_before: f64,
    cpu_after: Option<f64>,
    memory_before: f64,
    memory_after: Option<f64>,
}

impl crate::output::View for SimNodeView {
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
        let pct = |v: Option<f64>| v.map_or_else(|| "failed".to_string(), |v| format!("{v:.1}"));
        match c {
            "NODE" => self.node.clone(),
            "CPU%-BEFORE" => format!("{:.1}", self.cpu_before),
            "CPU%-AFTER" => pct(self.cpu_after),
            "MEM%-BEFORE" => format!("{:.1}", self.memory_before),
            "MEM%-AFTER" => pct(self.memory_after),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.node.clone()
    }
}

//! `lqx ha ...`: HAService.

use lqx_core::api::ha::v1 as pb;
use lqx_core::api::ha::v1::ha_service_client::HaServiceClient;

use super::new_request_id;
use crate::app::App;
use crate::cli::HaCmd;
use crate::error::CliResult;
use crate::output::{Format, out};
use crate::rpc;
use crate::views::{FailoverView, HaStatusView};

pub async fn run(app: App, c: HaCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    match c {
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
                    serde_yaml::to_string(&v).unwrap_or_default()
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

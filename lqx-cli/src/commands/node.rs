//! `lqx node ...`: NodeService. Nodes are named by name or id.

use lqx_core::api::compute::v1 as pb;
use lqx_core::api::compute::v1::node_service_client::NodeServiceClient;

use super::new_request_id;
use crate::app::App;
use crate::cli::{MaintenanceCmd, NodeCmd, NodePhaseArg, PowerCmd};
use crate::error::CliResult;
use crate::rpc;
use crate::views::{JoinTokenView, NodePowerView, NodeView, enum_word, time};

pub async fn run(app: App, c: NodeCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    match c {
        NodeCmd::List { phase, label } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let req = pb::ListNodesRequest {
                    phase: phase.map_or(pb::NodePhase::Unspecified, |p| match p {
                        NodePhaseArg::Ready => pb::NodePhase::Ready,
                        NodePhaseArg::NotReady => pb::NodePhase::NotReady,
                        NodePhaseArg::Maintenance => pb::NodePhase::Maintenance,
                        NodePhaseArg::Draining => pb::NodePhase::Draining,
                    }) as i32,
                    labels: label.iter().cloned().collect(),
                    page_size: 1000,
                    page_token: token.clone(),
                };
                let resp = rpc!(sess, NodeServiceClient, list_nodes, req)?;
                all.extend(resp.nodes.iter().map(NodeView::from));
                if resp.next_page_token.is_empty() || resp.next_page_token == token {
                    break;
                }
                token = resp.next_page_token;
            }
            app.printer.list(&all)
        }
        NodeCmd::Get { node } => {
            let n = rpc!(sess, NodeServiceClient, get_node, pb::GetNodeRequest { id: node })?;
            app.printer.one(&NodeView::from(&n))
        }
        NodeCmd::Enable { node } => {
            let n = rpc!(
                sess,
                NodeServiceClient,
                enable_node,
                pb::NodeRequest {
                    id: node,
                    request_id: new_request_id()
                }
            )?;
            app.printer.one(&NodeView::from(&n))
        }
        NodeCmd::Disable { node } => {
            let n = rpc!(
                sess,
                NodeServiceClient,
                disable_node,
                pb::NodeRequest {
                    id: node,
                    request_id: new_request_id()
                }
            )?;
            app.printer.one(&NodeView::from(&n))
        }
        NodeCmd::Maintenance(MaintenanceCmd::Enter {
            node,
            no_evacuate,
            wait,
        }) => {
            let req = pb::EnterMaintenanceRequest {
                id: node.clone(),
                evacuate: !no_evacuate,
                request_id: new_request_id(),
            };
            let mut n = rpc!(sess, NodeServiceClient, enter_maintenance, req)?;
            if app.wants_wait(wait) {
                let mut w = app.waiter(format!("waiting for node {node} to enter maintenance"));
                while n.phase() != pb::NodePhase::Maintenance {
                    let running = n.usage.map_or(0, |u| u.running_vms);
                    w.pending(&format!(
                        "{}, {running} VMs running",
                        enum_word(n.phase().as_str_name(), "NODE_PHASE_")
                    ))
                    .await?;
                    n = rpc!(
                        sess,
                        NodeServiceClient,
                        get_node,
                        pb::GetNodeRequest { id: n.id.clone() }
                    )?;
                }
                w.finish();
            }
            app.printer.one(&NodeView::from(&n))
        }
        NodeCmd::Maintenance(MaintenanceCmd::Exit { node }) => {
            let n = rpc!(
                sess,
                NodeServiceClient,
                exit_maintenance,
                pb::NodeRequest {
                    id: node,
                    request_id: new_request_id()
                }
            )?;
            app.printer.one(&NodeView::from(&n))
        }
        NodeCmd::Power(PowerCmd::On { node }) => {
            let req = pb::NodeRequest {
                id: node,
                request_id: new_request_id(),
            };
            let n = rpc!(sess, NodeServiceClient, power_on_node, req)?;
            app.printer.one(&NodeView::from(&n))
        }
        NodeCmd::Power(PowerCmd::Off { node, force }) => {
            let req = pb::PowerOffNodeRequest {
                id: node,
                force,
                request_id: new_request_id(),
            };
            let n = rpc!(sess, NodeServiceClient, power_off_node, req)?;
            app.printer.one(&NodeView::from(&n))
        }
        NodeCmd::Power(PowerCmd::Status { node }) => {
            let s = rpc!(sess, NodeServiceClient, get_node_power, pb::GetNodeRequest { id: node })?;
            let n = s.node.unwrap_or_default();
            app.printer.one(&NodePowerView {
                node: n.name,
                power_state: n.power_state,
                controller: s.controller,
                bmc_power_state: s.bmc_power_state,
                bmc_error: s.bmc_error,
            })
        }
        NodeCmd::JoinToken { ttl, node_name } => {
            let req = pb::CreateJoinTokenRequest {
                ttl_seconds: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX),
                node_name: node_name.unwrap_or_default(),
            };
            let resp = rpc!(sess, NodeServiceClient, create_join_token, req)?;
            let v = JoinTokenView {
                token: resp.token,
                expires_at: time(&resp.expires_at),
            };
            if app.printer.is_structured() {
                app.printer.one(&v)
            } else {
                // The token alone on stdout, so `$(lqx node join-token)` works.
                app.printer.line(&v.token);
                if let Some(t) = v.expires_at {
                    app.printer
                        .info(&format!("The token is shown once and expires at {}", t.to_rfc3339()));
                }
                Ok(())
            }
        }
        NodeCmd::Delete { node, force, yes } => {
            app.confirm(&format!("Delete node {node}?"), yes)?;
            let resp = rpc!(
                sess,
                NodeServiceClient,
                delete_node,
                pb::DeleteNodeRequest {
                    id: node.clone(),
                    force,
                    request_id: new_request_id()
                }
            )?;
            if app.printer.is_structured() {
                app.printer.line(&crate::output::json_line(
                    &serde_json::json!({"id": resp.id, "deleted": true}),
                )?);
            } else {
                app.printer.info(&format!("Deleted node {node}"));
            }
            Ok(())
        }
        NodeCmd::Watch { node, resume_from } => {
            super::watch::nodes(&app, &mut sess, node, resume_from.unwrap_or(0)).await
        }
    }
}

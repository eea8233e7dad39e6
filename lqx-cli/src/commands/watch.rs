//! Streams: `lqx watch` (EventService.Subscribe), `lqx vm watch`, `lqx node watch`.
//! On a terminal each event is a table row (aligned as a stream: `StreamTable`, with the
//! VM's or node's name, not its id); otherwise (or with `-o json`) one JSON object per line. A subscriber that fell behind gets a lag notice and is resumed from the
//! sequence the server names.

use lqx_core::api::compute::v1 as computepb;
use lqx_core::api::compute::v1::node_service_client::NodeServiceClient;
use lqx_core::api::compute::v1::vm_service_client::VmServiceClient;
use lqx_core::api::events::v1 as pb;
use lqx_core::api::events::v1::event_service_client::EventServiceClient;

use crate::app::App;
use crate::cli::WatchArgs;
use crate::client::Session;
use crate::error::CliResult;
use crate::output::{Format, StreamTable, View, json_line};
use crate::rpc;
use crate::views::{EventView, NodeEventView, NodeView, VmEventView, VmView};

/// Prints one event at a time in the chosen format.
struct StreamOut<'a> {
    app: &'a App,
    json: bool,
    table: StreamTable,
}

impl<'a> StreamOut<'a> {
    fn new(app: &'a App) -> Self {
        let json = match app.global.output {
            Some(Format::Json) => true,
            Some(_) => false,
            None => !app.printer.stdout_tty,
        };
        StreamOut {
            app,
            json,
            table: StreamTable::default(),
        }
    }

    fn emit<T: View>(&mut self, item: &T) -> CliResult<()> {
        if self.json {
            self.app.printer.line(&json_line(item)?);
            return Ok(());
        }
        match self.app.printer.format {
            Format::Table | Format::Wide => self.app.printer.stream_row(&mut self.table, item),
            Format::Yaml => {
                crate::output::out("---\n");
                self.app.printer.one(item)
            }
            Format::Json | Format::Name => self.app.printer.one(item),
        }
    }
}

/// The names of the VMs and nodes events are about, for the table: from the event's
/// payload when it carries the resource, else asked of the server once per id (an HA or
/// recovery event carries only a reason). A resource that cannot be read (deleted) keeps
/// its id.
#[derive(Default)]
struct Names {
    known: std::collections::HashMap<String, String>,
}

impl Names {
    async fn fill(&mut self, sess: &mut Session, e: &mut EventView) {
        if let Some(n) = e.payload_name() {
            e.name = n.to_string();
            self.known.insert(e.resource_id.clone(), e.name.clone());
            return;
        }
        if let Some(n) = self.known.get(&e.resource_id) {
            e.name = n.clone();
            return;
        }
        let id = e.resource_id.clone();
        let name = match e.resource_type.as_str() {
            "vm" => rpc!(
                sess,
                VmServiceClient,
                get_vm,
                computepb::GetVmRequest {
                    id: id.clone(),
                    project_id: String::new()
                }
            )
            .ok()
            .map(|v| v.name),
            "node" => rpc!(
                sess,
                NodeServiceClient,
                get_node,
                computepb::GetNodeRequest { id: id.clone() }
            )
            .ok()
            .map(|n| n.name),
            _ => None,
        };
        e.name = name.unwrap_or_default();
        self.known.insert(id, e.name.clone());
    }
}

/// The server's "resync required" answer (`failed_precondition`) to a resume from a
/// sequence it does not hold.
fn is_resync(message: &str) -> bool {
    message.to_ascii_lowercase().starts_with("resync required")
}

/// The "(oldest retained is N)" of a resync answer.
fn oldest_retained(message: &str) -> Option<u64> {
    let rest = message.split("oldest retained is ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// A dropped connection (the server restarting, a network blip): `lqx watch` reconnects
/// and resumes after the last sequence it printed, so no event is lost or repeated.
fn reconnectable(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Unavailable | tonic::Code::Unknown)
}

pub async fn events(app: App, a: WatchArgs) -> CliResult<()> {
    let mut sess = app.session()?;
    // --project narrows the stream to one project (by id, as events carry it); without it
    // the stream holds everything the caller may see.
    let project_id = match app.global.project.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) => {
            use lqx_core::api::project::v1::{GetProjectRequest, project_service_client::ProjectServiceClient};
            let req = GetProjectRequest { project: p.to_string() };
            rpc!(sess, ProjectServiceClient, get_project, req)?.id
        }
        None => String::new(),
    };
    let mut resume = a.resume_from.unwrap_or(0);
    let mut out = StreamOut::new(&app);
    let mut names = Names::default();
    // Reconnect attempts back off up to 5 s and give up after --timeout without a stream.
    let mut down_since: Option<tokio::time::Instant> = None;
    let mut backoff = std::time::Duration::from_millis(250);
    let mut resynced = false;
    loop {
        let req = pb::SubscribeRequest {
            filter: Some(pb::SubscriptionFilter {
                resource_types: crate::parse::list(&a.types)
                    .into_iter()
                    .map(|s| s.to_ascii_lowercase())
                    .collect(),
                resource_ids: a.ids.clone(),
                event_types: crate::parse::list(&a.events)
                    .into_iter()
                    .map(|s| s.to_ascii_uppercase())
                    .collect(),
                project_id: project_id.clone(),
            }),
            resume_from_sequence: resume,
        };
        let lost: tonic::Status = match rpc!(sess, EventServiceClient, subscribe, req) {
            Ok(mut stream) => {
                down_since = None;
                resynced = false;
                backoff = std::time::Duration::from_millis(250);
                let mut lagged = false;
                let ended = loop {
                    match stream.message().await {
                        Ok(Some(msg)) => {
                            if let Some(e) = &msg.event {
                                resume = e.sequence;
                                let mut view = EventView::from(e);
                                if !out.json {
                                    names.fill(&mut sess, &mut view).await;
                                }
                                out.emit(&view)?;
                            }
                            if let Some(lag) = &msg.lag {
                                app.printer.warn(&format!(
                                    "fell behind the event stream ({}); resuming from sequence {}",
                                    lag.message, lag.resume_from_sequence
                                ));
                                resume = lag.resume_from_sequence;
                                lagged = true;
                                break None;
                            }
                        }
                        Ok(None) => break None,
                        Err(s) if reconnectable(s.code()) => break Some(s),
                        Err(s) => return Err(sess.status_error(s)),
                    }
                };
                match ended {
                    Some(s) => s,
                    None if lagged => continue,
                    None => return Ok(()),
                }
            }
            Err(e) if e.code == crate::error::ExitCode::Error && down_since.is_some() => {
                tonic::Status::unavailable(e.message)
            }
            // Back after a restart: the server kept no events of its earlier run, so it asks
            // for a resync. Say what was lost and go on from the oldest event it has (live,
            // if it does not say, or if that was refused too).
            Err(e) if down_since.is_some() && is_resync(&e.message) => {
                let from = if resynced {
                    0
                } else {
                    oldest_retained(&e.message).map_or(0, |o| o.saturating_sub(1))
                };
                resynced = true;
                app.printer.warn(&format!(
                    "the server kept no events from before it came back: events after sequence {resume} \
                     until then are lost; going on from {}",
                    if from == 0 {
                        "its new events".to_string()
                    } else {
                        format!("sequence {from}")
                    }
                ));
                resume = from;
                continue;
            }
            Err(e) => return Err(e),
        };
        let first = down_since.is_none();
        let since = *down_since.get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() >= app.global.timeout {
            return Err(sess.status_error(lost));
        }
        if first {
            app.printer.warn(&format!(
                "lost the event stream ({}); reconnecting after sequence {resume}",
                lost.message()
            ));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}

pub async fn vms(app: &App, sess: &mut Session, vm: Option<String>, resume: u64) -> CliResult<()> {
    let mut stream = match vm {
        Some(id) => rpc!(
            sess,
            VmServiceClient,
            watch_vm,
            computepb::WatchVmRequest {
                id,
                resume_from_sequence: resume
            }
        )?,
        None => rpc!(
            sess,
            VmServiceClient,
            watch_v_ms,
            computepb::WatchVMsRequest {
                project_id: String::new(),
                resume_from_sequence: resume
            }
        )?,
    };
    let mut out = StreamOut::new(app);
    while let Some(ev) = stream.message().await.map_err(|s| sess.status_error(s))? {
        out.emit(&VmEventView {
            event: ev.event.as_ref().map(EventView::from),
            vm: ev.vm.as_ref().map(VmView::from),
        })?;
    }
    Ok(())
}

pub async fn nodes(app: &App, sess: &mut Session, node: Option<String>, resume: u64) -> CliResult<()> {
    let mut stream = match node {
        Some(id) => rpc!(
            sess,
            NodeServiceClient,
            watch_node,
            computepb::WatchNodeRequest {
                id,
                resume_from_sequence: resume
            }
        )?,
        None => rpc!(
            sess,
            NodeServiceClient,
            watch_nodes,
            computepb::WatchNodesRequest {
                resume_from_sequence: resume
            }
        )?,
    };
    let mut out = StreamOut::new(app);
    while let Some(ev) = stream.message().await.map_err(|s| sess.status_error(s))? {
        out.emit(&NodeEventView {
            event: ev.event.as_ref().map(EventView::from),
            node: ev.node.as_ref().map(NodeView::from),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_answers_are_recognised_with_their_oldest_sequence() {
        let m = "resync required: events after sequence 12 are no longer retained (oldest retained is 2000015)";
        assert!(is_resync(m));
        assert_eq!(oldest_retained(m), Some(2_000_015));
        let m = "Resync required: sequence 12 was never published (newest is 9)";
        assert!(is_resync(m));
        assert_eq!(oldest_retained(m), None);
        assert!(!is_resync("server shutting down"));
    }
}

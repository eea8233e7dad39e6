//! Watch streams of VMService and NodeService over the event bus: a filter on one resource
//! type (and id), resumable from a sequence number. A subscriber that falls behind gets an
//! `aborted` status naming the sequence to resume from, never a silent gap.

use crate::services::{Stream, st};
use futures::StreamExt;
use lqx_core::api::compute::v1 as pb;
use lqx_core::api::convert::compute::vm_out;
use lqx_core::compute::Compute;
use lqx_core::events::SubscriptionItem;
use lqx_core::model::{Node, ProjectId, ResourceType, SubscriptionFilter, Vm};
use tonic::{Response, Status};

fn lagged(resume_from: u64) -> Status {
    let mut s = Status::aborted(format!("watcher fell behind; resume from sequence {resume_from}"));
    if let Ok(v) = resume_from.to_string().parse() {
        s.metadata_mut().insert("resume-from", v);
    }
    s
}

async fn vm_stream(
    compute: &Compute,
    filter: SubscriptionFilter,
    resume: u64,
) -> Result<Response<Stream<pb::VmEvent>>, Status> {
    let sub = compute
        .events
        .subscribe(filter, (resume > 0).then_some(resume))
        .map_err(|e| st(e.into()))?;
    let names = compute.all_node_names().await.map_err(st)?;
    let s = sub.map(move |item| match item {
        SubscriptionItem::Event(e) => {
            let vm = serde_json::from_value::<Vm>(e.payload.clone())
                .ok()
                .filter(|_| e.event_type != lqx_core::model::EventType::Deleted)
                .map(|v| vm_out(&v, &|id| names.get(&id).cloned().unwrap_or_default()));
            Ok(pb::VmEvent {
                event: Some(e.to_proto()),
                vm,
            })
        }
        SubscriptionItem::Lagged { resume_from } => Err(lagged(resume_from)),
    });
    Ok(Response::new(Box::pin(s)))
}

pub async fn watch_vm(
    compute: &Compute,
    project: ProjectId,
    r: pb::WatchVmRequest,
) -> Result<Response<Stream<pb::VmEvent>>, Status> {
    let vm = compute.get_vm(&r.id, project).await.map_err(st)?;
    let filter = SubscriptionFilter {
        resource_types: vec![ResourceType::Vm],
        resource_ids: vec![vm.id.to_string()],
        ..Default::default()
    };
    vm_stream(compute, filter, r.resume_from_sequence).await
}

/// The VM events of one project (the caller's, checked by the handler).
pub async fn watch_vms(
    compute: &Compute,
    project: ProjectId,
    r: pb::WatchVMsRequest,
) -> Result<Response<Stream<pb::VmEvent>>, Status> {
    let filter = SubscriptionFilter {
        resource_types: vec![ResourceType::Vm],
        project_id: Some(project),
        ..Default::default()
    };
    vm_stream(compute, filter, r.resume_from_sequence).await
}

async fn node_stream(
    compute: &Compute,
    filter: SubscriptionFilter,
    resume: u64,
) -> Result<Response<Stream<pb::NodeEvent>>, Status> {
    let sub = compute
        .events
        .subscribe(filter, (resume > 0).then_some(resume))
        .map_err(|e| st(e.into()))?;
    let compute = compute.clone();
    let s = sub.map(move |item| match item {
        SubscriptionItem::Event(e) => {
            let node = serde_json::from_value::<Node>(e.payload.clone())
                .ok()
                .map(|n| compute.node_view(&n, Default::default()).to_proto());
            Ok(pb::NodeEvent {
                event: Some(e.to_proto()),
                node,
            })
        }
        SubscriptionItem::Lagged { resume_from } => Err(lagged(resume_from)),
    });
    Ok(Response::new(Box::pin(s)))
}

pub async fn watch_node(compute: &Compute, r: pb::WatchNodeRequest) -> Result<Response<Stream<pb::NodeEvent>>, Status> {
    let n = compute.resolve_node(&r.id).await.map_err(st)?;
    let filter = SubscriptionFilter {
        resource_types: vec![ResourceType::Node],
        resource_ids: vec![n.id.to_string()],
        ..Default::default()
    };
    node_stream(compute, filter, r.resume_from_sequence).await
}

pub async fn watch_nodes(
    compute: &Compute,
    r: pb::WatchNodesRequest,
) -> Result<Response<Stream<pb::NodeEvent>>, Status> {
    let filter = SubscriptionFilter {
        resource_types: vec![ResourceType::Node],
        ..Default::default()
    };
    node_stream(compute, filter, r.resume_from_sequence).await
}

//! limiquantix.compute.v1.VMService

use super::{Stream, scoped, st};
use lqx_core::Result;
use lqx_core::api::compute::v1::{self as pb, vm_service_server::VmService};
use lqx_core::api::convert::compute as convert;
use lqx_core::api::convert::labels_in;
use lqx_core::api::convert::vm_requests::{create_in, migrate_in, update_in};
use lqx_core::auth::AuthService;
use lqx_core::compute::Compute;
use lqx_core::model::{NodeId, Vm};
use lqx_core::store::VmFilter;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub struct VmApi {
    pub compute: Compute,
    pub auth: Arc<AuthService>,
}

impl VmApi {
    /// Names of the nodes these VMs are on (the store caches them: names never change).
    async fn node_names<'a>(&self, vms: impl IntoIterator<Item = &'a Vm>) -> Result<HashMap<NodeId, String>> {
        self.compute
            .node_names(vms.into_iter().filter_map(|v| v.status.node_id))
            .await
    }

    async fn out(&self, vm: &Vm) -> Result<pb::Vm> {
        let names = self.node_names([vm]).await?;
        self.out_named(vm, &|id| names.get(&id).cloned().unwrap_or_default())
            .await
    }

    /// A VM as GetVM and ListVMs show it: its record, with its migration in flight if any
    /// (an in-memory lookup).
    async fn out_named(&self, vm: &Vm, name: &(dyn Fn(NodeId) -> String + Sync)) -> Result<pb::Vm> {
        let mut out = convert::vm_out(vm, name);
        if let Some(st) = out.status.as_mut() {
            st.migration = self.compute.migration_view(vm.id).await?.map(|m| m.to_proto());
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl VmService for VmApi {
    async fn create_vm(&self, req: Request<pb::CreateVmRequest>) -> Result<Response<pb::Vm>, Status> {
        let audit = super::auth::note(&req);
        let project_id = scoped(&self.auth, &req, &req.get_ref().project_id).await?;
        let r = req.into_inner();
        let resolve = self.compute.node_resolver().await.map_err(st)?;
        let create = create_in(r, project_id, &resolve).map_err(st)?;
        let vm = self.compute.create_vm(create).await.map_err(st)?;
        audit.resource("vm", vm.id);
        Ok(Response::new(self.out(&vm).await.map_err(st)?))
    }

    async fn get_vm(&self, req: Request<pb::GetVmRequest>) -> Result<Response<pb::Vm>, Status> {
        let project = scoped(&self.auth, &req, &req.get_ref().project_id).await?;
        let r = req.into_inner();
        let vm = self.compute.get_vm(&r.id, project).await.map_err(st)?;
        Ok(Response::new(self.out(&vm).await.map_err(st)?))
    }

    async fn list_v_ms(&self, req: Request<pb::ListVMsRequest>) -> Result<Response<pb::ListVMsResponse>, Status> {
        let project = scoped(&self.auth, &req, &req.get_ref().project_id).await?;
        let r = req.into_inner();
        let node_id = match r.node.as_str() {
            "" => None,
            n => Some(self.compute.resolve_node(n).await.map_err(st)?.id),
        };
        let filter = VmFilter {
            project_id: Some(project),
            node_id,
            state: convert::vm_state_in("state", r.state).map_err(st)?,
            labels: labels_in(&r.labels),
            name_prefix: (!r.name_prefix.is_empty()).then_some(r.name_prefix),
        };
        let page = self
            .compute
            .list_vms(&filter, r.page_size, &r.page_token)
            .await
            .map_err(st)?;
        let names = self.node_names(&page.vms).await.map_err(st)?;
        let name = |id: NodeId| names.get(&id).cloned().unwrap_or_default();
        let mut vms = Vec::with_capacity(page.vms.len());
        for v in &page.vms {
            vms.push(self.out_named(v, &name).await.map_err(st)?);
        }
        Ok(Response::new(pb::ListVMsResponse {
            vms,
            next_page_token: page.next_page_token,
            total_count: page.total_count,
        }))
    }

    async fn update_vm(&self, req: Request<pb::UpdateVmRequest>) -> Result<Response<pb::Vm>, Status> {
        super::auth::note(&req).resource("vm", &req.get_ref().id);
        let project = scoped(&self.auth, &req, "").await?;
        let r = req.into_inner();
        let resolve = self.compute.node_resolver().await.map_err(st)?;
        let upd = update_in(&r, &resolve).map_err(st)?;
        let vm = self.compute.update_vm(&r.id, project, upd).await.map_err(st)?;
        Ok(Response::new(self.out(&vm).await.map_err(st)?))
    }

    async fn delete_vm(&self, req: Request<pb::DeleteVmRequest>) -> Result<Response<pb::DeleteVmResponse>, Status> {
        let audit = super::auth::note(&req);
        let project = scoped(&self.auth, &req, "").await?;
        let r = req.into_inner();
        audit.resource("vm", &r.id);
        let id = self.compute.delete_vm(&r.id, project, r.force).await.map_err(st)?;
        audit.resource("vm", id);
        Ok(Response::new(pb::DeleteVmResponse { id: id.to_string() }))
    }

    async fn start_vm(&self, req: Request<pb::StartVmRequest>) -> Result<Response<pb::Vm>, Status> {
        super::auth::note(&req).resource("vm", &req.get_ref().id);
        let project = scoped(&self.auth, &req, "").await?;
        let r = req.into_inner();
        let vm = self.compute.start_vm(&r.id, project).await.map_err(st)?;
        Ok(Response::new(self.out(&vm).await.map_err(st)?))
    }

    async fn stop_vm(&self, req: Request<pb::StopVmRequest>) -> Result<Response<pb::Vm>, Status> {
        super::auth::note(&req).resource("vm", &req.get_ref().id);
        let project = scoped(&self.auth, &req, "").await?;
        let r = req.into_inner();
        let timeout = (r.timeout_seconds > 0).then(|| Duration::from_secs(r.timeout_seconds.into()));
        let vm = self
            .compute
            .stop_vm(&r.id, project, r.force, timeout)
            .await
            .map_err(st)?;
        Ok(Response::new(self.out(&vm).await.map_err(st)?))
    }

    async fn reboot_vm(&self, req: Request<pb::RebootVmRequest>) -> Result<Response<pb::Vm>, Status> {
        super::auth::note(&req).resource("vm", &req.get_ref().id);
        let project = scoped(&self.auth, &req, "").await?;
        let r = req.into_inner();
        let vm = self.compute.reboot_vm(&r.id, project).await.map_err(st)?;
        Ok(Response::new(self.out(&vm).await.map_err(st)?))
    }

    async fn migrate_vm(&self, req: Request<pb::MigrateVmRequest>) -> Result<Response<pb::MigrateVmResponse>, Status> {
        let audit = super::auth::note(&req);
        audit.resource("vm", &req.get_ref().id);
        let project = scoped(&self.auth, &req, "").await?;
        let r = req.into_inner();
        if r.cancel {
            // One RPC both starts and cancels migrations: the entry says which.
            audit.detail("cancel");
            self.compute.cancel_migration(&r.id, project).await.map_err(st)?;
            // The VM as it is now, back on its source (the migration's own call ends with
            // the cancellation); as GetVM shows it, so a host still winding the migration
            // down past the cancel's wait shows it still in flight.
            let vm = self.compute.get_vm(&r.id, project).await.map_err(st)?;
            return Ok(Response::new(pb::MigrateVmResponse {
                vm: Some(self.out(&vm).await.map_err(st)?),
                ..Default::default()
            }));
        }
        let opts = migrate_in(&r);
        let out = self.compute.migrate_vm_with(&r.id, project, &opts).await.map_err(st)?;
        let names = self.compute.node_names([out.source, out.target]).await.map_err(st)?;
        Ok(Response::new(
            out.to_proto(&|id| names.get(&id).cloned().unwrap_or_default()),
        ))
    }

    type WatchVMStream = Stream<pb::VmEvent>;
    async fn watch_vm(&self, req: Request<pb::WatchVmRequest>) -> Result<Response<Self::WatchVMStream>, Status> {
        let project = scoped(&self.auth, &req, "").await?;
        crate::watch::watch_vm(&self.compute, project, req.into_inner()).await
    }

    type WatchVMsStream = Stream<pb::VmEvent>;
    async fn watch_v_ms(&self, req: Request<pb::WatchVMsRequest>) -> Result<Response<Self::WatchVMsStream>, Status> {
        let project = scoped(&self.auth, &req, &req.get_ref().project_id).await?;
        crate::watch::watch_vms(&self.compute, project, req.into_inner()).await
    }
}

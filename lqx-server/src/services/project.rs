//! limiquantix.project.v1.ProjectService: decode, call `lqx_core::auth::AuthService`'s
//! project operations, encode.

use super::{principal, st};
use lqx_core::api::convert::timestamp;
use lqx_core::api::project::v1::{self as pb, project_service_server::ProjectService};
use lqx_core::auth::AuthService;
use lqx_core::auth::projects::{ProjectChange, ProjectView};
use lqx_core::model::{ProjectMember, Quota};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ProjectApi {
    pub auth: Arc<AuthService>,
}

/// 0 on the wire is "no limit".
fn limit(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

fn quota_in(q: Option<&pb::Quota>) -> Quota {
    let q = q.copied().unwrap_or_default();
    Quota {
        vcpus: limit(q.vcpus),
        memory_mib: limit(q.memory_mib),
        vms: limit(q.vms),
    }
}

fn project_out(v: &ProjectView) -> pb::Project {
    let q = v.project.quota;
    pb::Project {
        id: v.project.id.to_string(),
        name: v.project.name.clone(),
        description: v.project.description.clone(),
        quota: Some(pb::Quota {
            vcpus: q.vcpus.unwrap_or(0),
            memory_mib: q.memory_mib.unwrap_or(0),
            vms: q.vms.unwrap_or(0),
        }),
        usage: Some(pb::Usage {
            vcpus: v.usage.vcpus,
            memory_mib: v.usage.memory_mib,
            vms: v.usage.vms,
        }),
        created_at: Some(timestamp(v.project.created_at)),
        my_role: v.role.map(|r| r.as_str().to_string()).unwrap_or_default(),
    }
}

fn member_out(m: &ProjectMember) -> pb::ProjectMember {
    pb::ProjectMember {
        user_id: m.user_id.to_string(),
        username: m.username.clone(),
        role: m.role.as_str().into(),
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    async fn create_project(&self, req: Request<pb::CreateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let (p, note) = (principal(&req)?, super::auth::note(&req));
        let r = req.into_inner();
        let v = self
            .auth
            .create_project(&p, &r.name, &r.description, quota_in(r.quota.as_ref()), &note)
            .await
            .map_err(st)?;
        Ok(Response::new(project_out(&v)))
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let p = principal(&req)?;
        let all = self.auth.list_projects(&p).await.map_err(st)?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: all.iter().map(project_out).collect(),
        }))
    }

    async fn get_project(&self, req: Request<pb::GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let p = principal(&req)?;
        let v = self.auth.get_project(&p, &req.into_inner().project).await.map_err(st)?;
        Ok(Response::new(project_out(&v)))
    }

    async fn update_project(&self, req: Request<pb::UpdateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let (p, note) = (principal(&req)?, super::auth::note(&req));
        let r = req.into_inner();
        if r.update_mask.is_empty() {
            return Err(st(lqx_core::Error::invalid(
                "update_mask",
                "name at least one field to change",
            )));
        }
        let q = r.quota.unwrap_or_default();
        let mut change = ProjectChange::default();
        for field in &r.update_mask {
            match field.as_str() {
                "name" => change.name = Some(r.name.clone()),
                "description" => change.description = Some(r.description.clone()),
                "quota.vcpus" => change.vcpus = Some(limit(q.vcpus)),
                "quota.memory_mib" | "quota.memoryMib" => change.memory_mib = Some(limit(q.memory_mib)),
                "quota.vms" => change.vms = Some(limit(q.vms)),
                other => {
                    return Err(st(lqx_core::Error::invalid(
                        "update_mask",
                        format!("{other:?} cannot be updated"),
                    )));
                }
            }
        }
        let v = self
            .auth
            .update_project(&p, &r.project, change, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(project_out(&v)))
    }

    async fn delete_project(
        &self,
        req: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        let (p, note) = (principal(&req)?, super::auth::note(&req));
        let id = self
            .auth
            .delete_project(&p, &req.into_inner().project, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeleteProjectResponse { id: id.to_string() }))
    }

    async fn set_project_member(
        &self,
        req: Request<pb::SetProjectMemberRequest>,
    ) -> Result<Response<pb::ProjectMember>, Status> {
        let (p, note) = (principal(&req)?, super::auth::note(&req));
        let r = req.into_inner();
        let m = self
            .auth
            .set_member(&p, &r.project, &r.user, &r.role, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(member_out(&m)))
    }

    async fn remove_project_member(
        &self,
        req: Request<pb::RemoveProjectMemberRequest>,
    ) -> Result<Response<pb::RemoveProjectMemberResponse>, Status> {
        let (p, note) = (principal(&req)?, super::auth::note(&req));
        let r = req.into_inner();
        self.auth
            .remove_member(&p, &r.project, &r.user, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::RemoveProjectMemberResponse {}))
    }

    async fn list_project_members(
        &self,
        req: Request<pb::ListProjectMembersRequest>,
    ) -> Result<Response<pb::ListProjectMembersResponse>, Status> {
        let p = principal(&req)?;
        let members = self
            .auth
            .list_members(&p, &req.into_inner().project)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListProjectMembersResponse {
            members: members.iter().map(member_out).collect(),
        }))
    }
}

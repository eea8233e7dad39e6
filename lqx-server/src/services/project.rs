//! limiquantix.project.v1.ProjectService: decode, call `lqx_core::auth::AuthService`'s
//! project operations, encode.

use super::{principal, st};
use lqx_core::api::convert::project::{change_in, member_out, project_out, quota_in};
use lqx_core::api::project::v1::{self as pb, project_service_server::ProjectService};
use lqx_core::auth::AuthService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ProjectApi {
    pub auth: Arc<AuthService>,
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
        let change = change_in(&r).map_err(st)?;
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

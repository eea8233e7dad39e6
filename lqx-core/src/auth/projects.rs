//! Projects and their members, as the auth service sees them: who may act in which
//! project, and the ProjectService operations.
//!
//! Rule, in plain words:
//! - A request names its project (empty: the default project). A project the caller is not
//!   a member of answers not_found, exactly as a project that does not exist, so names of
//!   other tenants' projects cannot be probed; a member without the permission is denied.
//! - A global admin (user session) is admin in every project. API keys act in their one
//!   project only.
//! - Creating and deleting projects and setting quotas is the cluster admin's
//!   (`project:manage` held globally); a project admin manages its project's members.
//! - [`AuthService::set_project_role`] is the one way a role in a project is granted (the
//!   SetProjectMember RPC and sign-in mappings both use it).

use super::{AuditNote, AuthError, AuthService, Principal};
use crate::model::{Permission, Project, ProjectId, ProjectMember, Quota, Role, Usage, UserId};
use crate::{Error, Result};

/// A project with its usage and the caller's role there, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectView {
    pub project: Project,
    pub usage: Usage,
    pub role: Option<Role>,
}

/// UpdateProject: `None` leaves a field alone; in a quota, `Some(None)` lifts a limit.
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub vcpus: Option<Option<u64>>,
    pub memory_mib: Option<Option<u64>>,
    pub vms: Option<Option<u64>>,
}

impl AuthService {
    /// Looks up the project a request names (empty: the default project) for a caller who
    /// needs `perm` there, and notes it for the audit entry. Not a member: not_found.
    pub async fn project_for(&self, p: &Principal, name: &str, perm: Permission, note: &AuditNote) -> Result<Project> {
        let project = self.visible_project(p, name).await?;
        p.project_access(project.id, shown(name), perm)?;
        note.project(project.id);
        Ok(project)
    }

    /// The projects a list covers: the one the request names (checked for `perm`), else
    /// every project where the caller holds `perm` (`None`: every project, a global admin).
    pub async fn list_scope(
        &self,
        p: &Principal,
        named: Option<&str>,
        perm: Permission,
        note: &AuditNote,
    ) -> Result<Option<Vec<ProjectId>>> {
        match named {
            Some(n) => Ok(Some(vec![self.project_for(p, n, perm, note).await?.id])),
            None => Ok(p.projects_with(perm)),
        }
    }

    /// Checks that the caller may `perm` on a resource of `project` named `what`/`id`: not
    /// found when it is not a member there (the resource stays invisible), denied when it is
    /// a member without the permission.
    pub fn resource_access(
        &self,
        p: &Principal,
        project: ProjectId,
        what: &str,
        id: &str,
        perm: Permission,
        note: &AuditNote,
    ) -> Result<()> {
        if p.role_in(project).is_none() {
            return Err(Error::not_found(what, id));
        }
        p.project_access(project, "", perm)?;
        note.project(project);
        Ok(())
    }

    /// The project named (empty: default) if the caller may see it; not_found otherwise.
    async fn visible_project(&self, p: &Principal, name: &str) -> Result<Project> {
        let name = shown(name);
        let project = self.store().get_project(name).await?;
        match project {
            Some(project) if p.role_in(project.id).is_some() => Ok(project),
            _ => Err(Error::not_found("project", name)),
        }
    }

    /// Gives `user` `role` (admin, operator or viewer) in `project`, replacing its role
    /// there. Takes effect on the user's next request. No caller check: callers are the
    /// SetProjectMember RPC (checked) and the server's own sign-in mappings.
    pub async fn set_project_role(&self, user: UserId, project: ProjectId, role: Role) -> Result<()> {
        if role == Role::None {
            return Err(Error::invalid("role", "a project role is admin, operator or viewer"));
        }
        if self.store().get_project(&project.to_string()).await?.is_none() {
            return Err(Error::not_found("project", project));
        }
        if self.store().get_user(user).await?.is_none() {
            return Err(Error::not_found("user", user));
        }
        self.store().set_project_member(project, user, role).await
    }

    /// Takes `user` out of `project`; true when it was a member.
    pub async fn remove_project_role(&self, user: UserId, project: ProjectId) -> Result<bool> {
        self.store().remove_project_member(project, user).await
    }

    // ---- ProjectService -------------------------------------------------------------

    pub async fn create_project(
        &self,
        p: &Principal,
        name: &str,
        description: &str,
        quota: Quota,
        note: &AuditNote,
    ) -> Result<ProjectView> {
        require_global(p, Permission::ProjectManage)?;
        let name = name.trim();
        Project::validate_name("name", name)?;
        crate::model::validate::description("description", description)?;
        if name.parse::<ProjectId>().is_ok() {
            return Err(Error::invalid("name", "must not look like a project id"));
        }
        let project = Project {
            id: ProjectId::new(),
            name: name.to_string(),
            description: description.to_string(),
            created_at: self.now(),
            quota,
        };
        self.store().create_project(&project).await?;
        note.resource("project", project.id);
        note.project(project.id);
        tracing::info!(project = %project.name, by = %p.username, "project created");
        Ok(ProjectView {
            role: p.role_in(project.id),
            project,
            usage: Usage::default(),
        })
    }

    /// The projects the caller is a member of (every project for a global admin).
    pub async fn list_projects(&self, p: &Principal) -> Result<Vec<ProjectView>> {
        let mut out = Vec::new();
        for project in self.store().list_projects().await? {
            if let Some(role) = p.role_in(project.id) {
                let usage = self.store().project_usage(project.id).await?;
                out.push(ProjectView {
                    project,
                    usage,
                    role: Some(role),
                });
            }
        }
        Ok(out)
    }

    pub async fn get_project(&self, p: &Principal, name: &str) -> Result<ProjectView> {
        let project = self.visible_project(p, name).await?;
        let usage = self.store().project_usage(project.id).await?;
        Ok(ProjectView {
            role: p.role_in(project.id),
            project,
            usage,
        })
    }

    pub async fn update_project(
        &self,
        p: &Principal,
        name: &str,
        change: ProjectChange,
        note: &AuditNote,
    ) -> Result<ProjectView> {
        require_global(p, Permission::ProjectManage)?;
        let mut project = self.visible_project(p, name).await?;
        note.resource("project", project.id);
        note.project(project.id);
        if let Some(n) = change.name {
            let n = n.trim().to_string();
            Project::validate_name("name", &n)?;
            if project.id == ProjectId::DEFAULT && n != Project::DEFAULT_NAME {
                return Err(Error::invalid("name", "the default project keeps its name"));
            }
            project.name = n;
        }
        if let Some(d) = change.description {
            crate::model::validate::description("description", &d)?;
            project.description = d;
        }
        if let Some(v) = change.vcpus {
            project.quota.vcpus = v;
        }
        if let Some(v) = change.memory_mib {
            project.quota.memory_mib = v;
        }
        if let Some(v) = change.vms {
            project.quota.vms = v;
        }
        self.store().update_project(&project).await?;
        tracing::info!(project = %project.name, by = %p.username, quota = ?project.quota, "project updated");
        self.get_project(p, &project.id.to_string()).await
    }

    /// Deletes an empty project (refused, with the reason, while it holds VMs; the default
    /// project stays).
    pub async fn delete_project(&self, p: &Principal, name: &str, note: &AuditNote) -> Result<ProjectId> {
        require_global(p, Permission::ProjectManage)?;
        let project = self.visible_project(p, name).await?;
        note.resource("project", project.id);
        note.project(project.id);
        if project.id == ProjectId::DEFAULT {
            return Err(Error::precondition("the default project cannot be deleted"));
        }
        self.store().delete_project(project.id).await?;
        tracing::info!(project = %project.name, by = %p.username, "project deleted");
        Ok(project.id)
    }

    /// SetProjectMember: needs `project:manage` in the project (its admins, global admins).
    pub async fn set_member(
        &self,
        p: &Principal,
        project: &str,
        user: &str,
        role: &str,
        note: &AuditNote,
    ) -> Result<ProjectMember> {
        let project = self.project_for(p, project, Permission::ProjectManage, note).await?;
        let role = Role::parse_project("role", role)?;
        let user = self.store().resolve_user(user).await?;
        note.resource("user", user.id);
        self.set_project_role(user.id, project.id, role).await?;
        tracing::info!(project = %project.name, user = %user.username, %role, by = %p.username, "project member set");
        Ok(ProjectMember {
            project_id: project.id,
            user_id: user.id,
            username: user.username,
            role,
        })
    }

    pub async fn remove_member(&self, p: &Principal, project: &str, user: &str, note: &AuditNote) -> Result<()> {
        let project = self.project_for(p, project, Permission::ProjectManage, note).await?;
        let user = self.store().resolve_user(user).await?;
        note.resource("user", user.id);
        if !self.remove_project_role(user.id, project.id).await? {
            return Err(Error::not_found("member", &user.username));
        }
        tracing::info!(project = %project.name, user = %user.username, by = %p.username, "project member removed");
        Ok(())
    }

    /// The members of a project the caller may see.
    pub async fn list_members(&self, p: &Principal, project: &str) -> Result<Vec<ProjectMember>> {
        let project = self.visible_project(p, project).await?;
        self.store().project_members(project.id).await
    }
}

/// The name a request gave, or the default project's.
fn shown(name: &str) -> &str {
    match name.trim() {
        "" => Project::DEFAULT_NAME,
        n => n,
    }
}

fn require_global(p: &Principal, perm: Permission) -> Result<()> {
    if p.can(perm) {
        Ok(())
    } else {
        Err(AuthError::PermissionDenied { permission: perm }.into())
    }
}

//! `lqx project`: projects, their members and quotas (ProjectService).

use lqx_core::api::project::v1 as pb;
use lqx_core::api::project::v1::project_service_client::ProjectServiceClient;

use crate::app::App;
use crate::cli::{MemberCmd, ProjectCmd, QuotaArgs};
use crate::error::{CliError, CliResult};
use crate::rpc;
use crate::views::{MemberView, ProjectView};

fn quota(q: QuotaArgs) -> pb::Quota {
    pb::Quota {
        vcpus: q.vcpus.unwrap_or(0),
        memory_mib: q.memory.unwrap_or(0),
        vms: q.max_vms.unwrap_or(0),
    }
}

pub async fn run(app: App, c: ProjectCmd) -> CliResult<()> {
    if let ProjectCmd::Use { project } = c {
        return use_project(app, project);
    }
    let mut sess = app.session()?;
    // The project `member` commands and `get` act on: --project or the context's.
    let current = sess.project.clone().unwrap_or_default();
    match c {
        ProjectCmd::Create {
            name,
            description,
            quota: q,
        } => {
            let req = pb::CreateProjectRequest {
                name,
                description,
                quota: Some(quota(q)),
            };
            let p = rpc!(sess, ProjectServiceClient, create_project, req)?;
            app.printer.one(&ProjectView::from(&p))
        }
        ProjectCmd::List => {
            let r = rpc!(sess, ProjectServiceClient, list_projects, pb::ListProjectsRequest {})?;
            let all: Vec<ProjectView> = r.projects.iter().map(ProjectView::from).collect();
            app.printer.list(&all)
        }
        ProjectCmd::Get { project } => {
            let req = pb::GetProjectRequest {
                project: project.unwrap_or(current),
            };
            let p = rpc!(sess, ProjectServiceClient, get_project, req)?;
            app.printer.one(&ProjectView::from(&p))
        }
        ProjectCmd::Update {
            project,
            name,
            description,
            quota: q,
        } => {
            use lqx_core::api::convert::project::ProjectField as F;
            let mut mask = Vec::new();
            for (set, field) in [
                (name.is_some(), F::Name),
                (description.is_some(), F::Description),
                (q.vcpus.is_some(), F::QuotaVcpus),
                (q.memory.is_some(), F::QuotaMemoryMib),
                (q.max_vms.is_some(), F::QuotaVms),
            ] {
                if set {
                    mask.push(field.path().to_string());
                }
            }
            if mask.is_empty() {
                return Err(CliError::usage(
                    "Nothing to change: give --name, --description, --vcpus, --memory or --max-vms",
                ));
            }
            let req = pb::UpdateProjectRequest {
                project,
                update_mask: mask,
                name: name.unwrap_or_default(),
                description: description.unwrap_or_default(),
                quota: Some(quota(q)),
            };
            let p = rpc!(sess, ProjectServiceClient, update_project, req)?;
            app.printer.one(&ProjectView::from(&p))
        }
        ProjectCmd::Delete { project, yes } => {
            app.confirm(&format!("Delete project {project}?"), yes)?;
            let req = pb::DeleteProjectRequest {
                project: project.clone(),
            };
            rpc!(sess, ProjectServiceClient, delete_project, req)?;
            app.printer.info(&format!("Project {project} deleted"));
            Ok(())
        }
        ProjectCmd::Member(m) => match m {
            MemberCmd::Add { user, role } => {
                let req = pb::SetProjectMemberRequest {
                    project: current,
                    user,
                    role: role.as_str().into(),
                };
                let m = rpc!(sess, ProjectServiceClient, set_project_member, req)?;
                app.printer.one(&MemberView::from(&m))
            }
            MemberCmd::Remove { user } => {
                let req = pb::RemoveProjectMemberRequest {
                    project: current,
                    user: user.clone(),
                };
                rpc!(sess, ProjectServiceClient, remove_project_member, req)?;
                app.printer.info(&format!("{user} removed from the project"));
                Ok(())
            }
            MemberCmd::List => {
                let req = pb::ListProjectMembersRequest { project: current };
                let r = rpc!(sess, ProjectServiceClient, list_project_members, req)?;
                let all: Vec<MemberView> = r.members.iter().map(MemberView::from).collect();
                app.printer.list(&all)
            }
        },
        ProjectCmd::Use { .. } => unreachable!("handled above"),
    }
}

/// Records `project` as the selected context's default project.
fn use_project(mut app: App, project: String) -> CliResult<()> {
    let t = app.target()?;
    let Some(name) = t.context_name else {
        return Err(CliError::usage("No context to set a project on").hint("run `lqx login` first, or use --project"));
    };
    if let Some(c) = app.config.contexts.get_mut(&name) {
        c.project = Some(project.clone()).filter(|p| !p.trim().is_empty());
    }
    app.config.save(&app.config_dir)?;
    app.printer
        .info(&format!("Context {name} now acts in project {project}"));
    Ok(())
}

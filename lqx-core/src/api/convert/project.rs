//! `limiquantix.project.v1` (ProjectService) <-> the project model.

use crate::api::project::v1 as pb;
use crate::model::Quota;

/// 0 on the wire is "no limit".
fn limit(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

pub fn quota_in(q: Option<&pb::Quota>) -> Quota {
    let q = q.copied().unwrap_or_default();
    Quota {
        vcpus: limit(q.vcpus),
        memory_mib: limit(q.memory_mib),
        vms: limit(q.vms),
    }
}

pub fn quota_out(q: &Quota) -> pb::Quota {
    pb::Quota {
        vcpus: q.vcpus.unwrap_or(0),
        memory_mib: q.memory_mib.unwrap_or(0),
        vms: q.vms.unwrap_or(0),
    }
}

/// The updatable fields of a project (UpdateProject's mask paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectField {
    Name,
    Description,
    QuotaVcpus,
    QuotaMemoryMib,
    QuotaVms,
}

/// The mask path of each field, the one place they are spelled.
pub const PROJECT_FIELDS: [(&str, ProjectField); 5] = [
    ("name", ProjectField::Name),
    ("description", ProjectField::Description),
    ("quota.vcpus", ProjectField::QuotaVcpus),
    ("quota.memory_mib", ProjectField::QuotaMemoryMib),
    ("quota.vms", ProjectField::QuotaVms),
];

impl ProjectField {
    /// The field's mask path (snake_case).
    pub fn path(self) -> &'static str {
        PROJECT_FIELDS.iter().find(|(_, f)| *f == self).map_or("", |(p, _)| p)
    }
}

#[cfg(feature = "server")]
pub use server::*;

#[cfg(feature = "server")]
mod server {
    use super::{ProjectField, limit, pb, quota_out};
    use crate::Result;
    use crate::api::convert::{mask, timestamp};
    use crate::auth::projects::{ProjectChange, ProjectView};
    use crate::model::ProjectMember;

    pub fn project_out(v: &ProjectView) -> pb::Project {
        pb::Project {
            id: v.project.id.to_string(),
            name: v.project.name.clone(),
            description: v.project.description.clone(),
            quota: Some(quota_out(&v.project.quota)),
            usage: Some(pb::Usage {
                vcpus: v.usage.vcpus,
                memory_mib: v.usage.memory_mib,
                vms: v.usage.vms,
            }),
            created_at: Some(timestamp(v.project.created_at)),
            my_role: v.role.map(|r| r.as_str().to_string()).unwrap_or_default(),
        }
    }

    pub fn member_out(m: &ProjectMember) -> pb::ProjectMember {
        pb::ProjectMember {
            user_id: m.user_id.to_string(),
            username: m.username.clone(),
            role: m.role.as_str().into(),
        }
    }

    /// The change an UpdateProject request asks for (the mask rule is [`mask::resolve`]'s).
    pub fn change_in(r: &pb::UpdateProjectRequest) -> Result<ProjectChange> {
        use ProjectField as F;
        let q = r.quota.unwrap_or_default();
        let populated = |f: F| match f {
            F::Name => !r.name.is_empty(),
            F::Description => !r.description.is_empty(),
            F::QuotaVcpus => q.vcpus != 0,
            F::QuotaMemoryMib => q.memory_mib != 0,
            F::QuotaVms => q.vms != 0,
        };
        let mut change = ProjectChange::default();
        for f in mask::resolve("project", &r.update_mask, &super::PROJECT_FIELDS, populated)? {
            match f {
                F::Name => change.name = Some(r.name.clone()),
                F::Description => change.description = Some(r.description.clone()),
                F::QuotaVcpus => change.vcpus = Some(limit(q.vcpus)),
                F::QuotaMemoryMib => change.memory_mib = Some(limit(q.memory_mib)),
                F::QuotaVms => change.vms = Some(limit(q.vms)),
            }
        }
        Ok(change)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_zero_quota_named_in_the_mask_removes_the_limit() {
            let r = pb::UpdateProjectRequest {
                project: "p".into(),
                update_mask: vec!["quota.memoryMib".into(), "description".into()],
                quota: Some(pb::Quota {
                    vcpus: 4,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let c = change_in(&r).unwrap();
            assert_eq!(c.memory_mib, Some(None));
            assert_eq!(c.description, Some(String::new()));
            assert_eq!((c.vcpus, c.name), (None, None));
        }
    }
}

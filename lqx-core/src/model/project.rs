//! Projects: the namespace VMs, alerts, audit entries, events and API keys live in, with
//! their members and quotas. A default project always exists.

use super::{ProjectId, Role, UserId, validate};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// Limits on what the project's VMs may hold together (records from before quotas:
    /// unlimited).
    #[serde(default)]
    pub quota: Quota,
}

impl Project {
    pub const DEFAULT_NAME: &'static str = "default";

    /// Checks a project name: the same alphabet as VM names (lower-case DNS label).
    pub fn validate_name(field: &str, name: &str) -> crate::Result<()> {
        validate::name(field, name)
    }
}

/// A project's limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub vcpus: Option<u64>,
    pub memory_mib: Option<u64>,
    pub vms: Option<u64>,
}

/// What a project's VMs hold together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub vcpus: u64,
    pub memory_mib: u64,
    pub vms: u64,
}

impl Quota {
    /// Why `after` would not fit where `before` did (a request that does not grow a
    /// dimension is never refused for it, so lowering a quota below usage does not block
    /// shrinking or deleting); `None` when it fits.
    pub fn refusal(&self, project: &str, before: Usage, after: Usage) -> Option<String> {
        let over = |what: &str, limit: Option<u64>, b: u64, a: u64| {
            limit
                .filter(|l| a > *l && a > b)
                .map(|l| format!("project {project} quota exceeded: {what} would be {a}, the limit is {l}"))
        };
        over("vCPUs", self.vcpus, before.vcpus, after.vcpus)
            .or_else(|| over("memory (MiB)", self.memory_mib, before.memory_mib, after.memory_mib))
            .or_else(|| over("VM count", self.vms, before.vms, after.vms))
    }
}

/// A user's role in a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectMember {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_refuses_only_growth_past_a_limit() {
        let q = Quota {
            vcpus: Some(4),
            memory_mib: None,
            vms: Some(2),
        };
        let u = |vcpus, vms| Usage {
            vcpus,
            memory_mib: 1 << 20,
            vms,
        };
        assert_eq!(q.refusal("a", u(2, 1), u(4, 2)), None, "exactly at the limit fits");
        let why = q.refusal("a", u(2, 1), u(5, 2)).unwrap();
        assert!(why.contains("vCPUs would be 5, the limit is 4"), "{why}");
        assert!(q.refusal("a", u(4, 1), u(6, 2)).unwrap().contains("vCPUs"));
        assert!(q.refusal("a", u(2, 2), u(2, 3)).unwrap().contains("VM count"));
        // Already over (quota lowered): shrinking is allowed.
        assert_eq!(q.refusal("a", u(8, 3), u(6, 3)), None);
        assert_eq!(Quota::default().refusal("a", u(0, 0), u(1000, 1000)), None);
    }
}

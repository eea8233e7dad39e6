//! The provider's groups to lqx roles.

use std::collections::BTreeMap;

use super::config::RoleRule;
use crate::model::Role;

/// The roles a user's groups give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapped {
    /// The highest global role of the matching rules, else the default role.
    pub global: Option<Role>,
    /// Per project, the highest role of the matching rules naming it.
    pub projects: BTreeMap<String, Role>,
}

/// Applies `rules` to `groups` (exact, case-sensitive names: providers treat group names as
/// identifiers, and `Admins` need not be `admins`).
pub fn map_groups(rules: &[RoleRule], default_role: Option<Role>, groups: &[String]) -> Mapped {
    let mut out = Mapped::default();
    for r in rules.iter().filter(|r| groups.contains(&r.group)) {
        match &r.project {
            None => out.global = out.global.max(Some(r.role)),
            Some(p) => {
                let e = out.projects.entry(p.clone()).or_insert(r.role);
                *e = (*e).max(r.role);
            }
        }
    }
    if out.global.is_none() {
        out.global = default_role;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, role: Role, project: Option<&str>) -> RoleRule {
        RoleRule {
            group: group.into(),
            role,
            project: project.map(String::from),
        }
    }

    #[test]
    fn highest_matching_role_wins_and_default_fills_in() {
        let rules = [
            rule("ops", Role::Operator, None),
            rule("admins", Role::Admin, None),
            rule("viewers", Role::Viewer, None),
            rule("team-a", Role::Operator, Some("a")),
            rule("team-a-leads", Role::Admin, Some("a")),
        ];
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let m = map_groups(&rules, None, &g(&["viewers", "ops"]));
        assert_eq!(m.global, Some(Role::Operator));
        assert!(m.projects.is_empty());
        let m = map_groups(&rules, None, &g(&["admins", "viewers"]));
        assert_eq!(m.global, Some(Role::Admin));
        let m = map_groups(&rules, None, &g(&["team-a", "team-a-leads"]));
        assert_eq!((m.global, m.projects.get("a")), (None, Some(&Role::Admin)));
        assert_eq!(map_groups(&rules, None, &g(&["Admins"])).global, None, "case-sensitive");
        assert_eq!(map_groups(&rules, Some(Role::Viewer), &[]).global, Some(Role::Viewer));
    }
}

//! The one authorization table: every RPC -> what it needs; every role -> what it holds.
//!
//! Rule, in plain words:
//! - An RPC that is not in [`RULES`] is denied (and the server refuses to start while one is
//!   missing: [`check_complete`]).
//! - `Public` RPCs (Login, RefreshToken, health, reflection) need no credential.
//! - `JoinToken` (AgentService/Register) needs no user credential: the join token in the
//!   request body is checked by the handler. `NodeCredential` (Heartbeat) needs the node's
//!   own credential; user tokens and API keys are refused there, and node credentials are
//!   refused everywhere else.
//! - `Authenticated` RPCs take any valid user token or API key, whatever the role.
//! - `UserSession` RPCs (Logout, ChangePassword) take a user access token only, not an API key.
//! - `Permission(p)` RPCs take a user token or API key whose role holds `p`. API keys never
//!   hold `apikey:manage`, so a leaked key cannot mint successors.
//! - Roles: admin holds everything; operator everything but `user:manage`,
//!   `settings:manage` and `project:manage`; viewer only the `*:read` permissions of resources
//!   (not `audit:read`); `none` nothing.
//! - Every RPC also states its [`Scope`]. A user holds a global role (cluster RPCs) and a role
//!   per project it is a member of (project RPCs); see [`Scope::Project`] for how a
//!   project-scoped call is checked against the project the request names.
//!
//! Some checks depend on the request body and are left to the handler, using
//! [`role_allows`]: ChangePassword for another user (admin reset) needs `user:manage`;
//! ListAPIKeys with `all` and revoking another user's key need `user:manage`; EventService
//! Subscribe drops events whose resource the caller cannot read
//! ([`read_permission_for_resource`]).

use std::{collections::HashMap, sync::LazyLock};

use super::AuthError;
use crate::model::{Permission, Role};

/// What an RPC requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// No credential at all.
    Public,
    /// No user credential; the handler checks the join token in the request.
    JoinToken,
    /// The calling node's own credential.
    NodeCredential,
    /// Any valid user access token or API key.
    Authenticated,
    /// A user access token (not an API key).
    UserSession,
    /// A user access token or API key whose role holds the permission.
    Permission(Permission),
}

/// Who is calling, as far as authorization cares (after the credential was verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    /// No credential, or one that failed verification is reported as an error before this.
    Anonymous,
    /// A verified user access token.
    User(Role),
    /// A verified, active API key.
    ApiKey(Role),
    /// A verified node credential.
    Node,
}

/// Where an RPC acts, which decides the role that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The caller's own account or session (login, WhoAmI, own API keys): no resource.
    Account,
    /// The whole cluster (nodes, DRS, HA, users, webhooks, projects themselves): the
    /// caller's global role.
    Cluster,
    /// One project's resources (VMs, alerts, audit, API keys, events): the caller's role in
    /// the project the request names. The table's check passes when the caller holds the
    /// permission in some project; the handler then checks the named project, and answers
    /// not_found for a project (or a resource of one) the caller is not a member of.
    Project,
}

use Access::{Authenticated, JoinToken, NodeCredential, Public, UserSession};
use Permission as P;
use Scope::{Account, Cluster, Project};

const fn perm(p: Permission) -> Access {
    Access::Permission(p)
}

/// Every RPC of every service in proto/, by full method path.
pub const RULES: &[(&str, Access, Scope)] = &[
    // limiquantix.auth.v1.AuthService
    ("/limiquantix.auth.v1.AuthService/Login", Public, Account),
    ("/limiquantix.auth.v1.AuthService/RefreshToken", Public, Account),
    ("/limiquantix.auth.v1.AuthService/Logout", UserSession, Account),
    ("/limiquantix.auth.v1.AuthService/WhoAmI", Authenticated, Account),
    // Self-service with the old password; an admin reset (user_id set) also needs
    // user:manage, checked by the handler.
    ("/limiquantix.auth.v1.AuthService/ChangePassword", UserSession, Account),
    (
        "/limiquantix.auth.v1.AuthService/CreateUser",
        perm(P::UserManage),
        Cluster,
    ),
    (
        "/limiquantix.auth.v1.AuthService/ListUsers",
        perm(P::UserManage),
        Cluster,
    ),
    (
        "/limiquantix.auth.v1.AuthService/UpdateUser",
        perm(P::UserManage),
        Cluster,
    ),
    (
        "/limiquantix.auth.v1.AuthService/DeleteUser",
        perm(P::UserManage),
        Cluster,
    ),
    (
        "/limiquantix.auth.v1.AuthService/CreateAPIKey",
        perm(P::ApiKeyManage),
        Project,
    ),
    (
        "/limiquantix.auth.v1.AuthService/ListAPIKeys",
        perm(P::ApiKeyManage),
        Account,
    ),
    (
        "/limiquantix.auth.v1.AuthService/RevokeAPIKey",
        perm(P::ApiKeyManage),
        Account,
    ),
    (
        "/limiquantix.auth.v1.AuthService/ListAuditEntries",
        perm(P::AuditRead),
        Project,
    ),
    // SSO: the provider's settings and the token exchange (a login; the token is the credential).
    ("/limiquantix.auth.v1.AuthService/GetSSOConfig", Public, Account),
    ("/limiquantix.auth.v1.AuthService/GetServerInfo", Public, Account),
    ("/limiquantix.auth.v1.AuthService/SSOLogin", Public, Account),
    // limiquantix.compute.v1.VMService
    ("/limiquantix.compute.v1.VMService/CreateVM", perm(P::VmCreate), Project),
    ("/limiquantix.compute.v1.VMService/GetVM", perm(P::VmRead), Project),
    ("/limiquantix.compute.v1.VMService/ListVMs", perm(P::VmRead), Project),
    ("/limiquantix.compute.v1.VMService/UpdateVM", perm(P::VmUpdate), Project),
    ("/limiquantix.compute.v1.VMService/DeleteVM", perm(P::VmDelete), Project),
    ("/limiquantix.compute.v1.VMService/StartVM", perm(P::VmPower), Project),
    ("/limiquantix.compute.v1.VMService/StopVM", perm(P::VmPower), Project),
    ("/limiquantix.compute.v1.VMService/RebootVM", perm(P::VmPower), Project),
    (
        "/limiquantix.compute.v1.VMService/MigrateVM",
        perm(P::VmMigrate),
        Project,
    ),
    ("/limiquantix.compute.v1.VMService/WatchVM", perm(P::VmRead), Project),
    ("/limiquantix.compute.v1.VMService/WatchVMs", perm(P::VmRead), Project),
    // limiquantix.compute.v1.NodeService
    (
        "/limiquantix.compute.v1.NodeService/GetNode",
        perm(P::NodeRead),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/ListNodes",
        perm(P::NodeRead),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/EnableNode",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/DisableNode",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/EnterMaintenance",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/ExitMaintenance",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/CreateJoinToken",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/DeleteNode",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/WatchNode",
        perm(P::NodeRead),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/WatchNodes",
        perm(P::NodeRead),
        Cluster,
    ),
    // Host power goes with maintenance: operators and admins.
    (
        "/limiquantix.compute.v1.NodeService/PowerOnNode",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/PowerOffNode",
        perm(P::NodeManage),
        Cluster,
    ),
    (
        "/limiquantix.compute.v1.NodeService/GetNodePower",
        perm(P::NodeRead),
        Cluster,
    ),
    // limiquantix.node.v1.AgentService
    ("/limiquantix.node.v1.AgentService/Register", JoinToken, Cluster),
    ("/limiquantix.node.v1.AgentService/Heartbeat", NodeCredential, Cluster),
    // limiquantix.alert.v1.AlertService
    (
        "/limiquantix.alert.v1.AlertService/ListAlerts",
        perm(P::AlertRead),
        Project,
    ),
    (
        "/limiquantix.alert.v1.AlertService/GetAlert",
        perm(P::AlertRead),
        Project,
    ),
    (
        "/limiquantix.alert.v1.AlertService/AcknowledgeAlert",
        perm(P::AlertManage),
        Project,
    ),
    (
        "/limiquantix.alert.v1.AlertService/ResolveAlert",
        perm(P::AlertManage),
        Project,
    ),
    (
        "/limiquantix.alert.v1.AlertService/GetAlertSummary",
        perm(P::AlertRead),
        Project,
    ),
    // Webhooks send cluster data to arbitrary URLs: a setting. Their URLs often embed a
    // secret (Slack, Teams), so even listing them is kept from viewers.
    (
        "/limiquantix.alert.v1.AlertService/CreateWebhook",
        perm(P::SettingsManage),
        Cluster,
    ),
    (
        "/limiquantix.alert.v1.AlertService/ListWebhooks",
        perm(P::AlertManage),
        Cluster,
    ),
    (
        "/limiquantix.alert.v1.AlertService/DeleteWebhook",
        perm(P::SettingsManage),
        Cluster,
    ),
    (
        "/limiquantix.alert.v1.AlertService/TestWebhook",
        perm(P::SettingsManage),
        Cluster,
    ),
    // The control plane's own loops: a cluster-level read (the global role's alert:read).
    (
        "/limiquantix.alert.v1.AlertService/ListBackgroundTasks",
        perm(P::AlertRead),
        Cluster,
    ),
    // limiquantix.drs.v1.DRSService
    (
        "/limiquantix.drs.v1.DRSService/ListRecommendations",
        perm(P::DrsRead),
        Cluster,
    ),
    (
        "/limiquantix.drs.v1.DRSService/GetRecommendation",
        perm(P::DrsRead),
        Cluster,
    ),
    (
        "/limiquantix.drs.v1.DRSService/ApproveRecommendation",
        perm(P::DrsApprove),
        Cluster,
    ),
    (
        "/limiquantix.drs.v1.DRSService/ApplyRecommendation",
        perm(P::DrsApply),
        Cluster,
    ),
    (
        "/limiquantix.drs.v1.DRSService/RejectRecommendation",
        perm(P::DrsApprove),
        Cluster,
    ),
    // An analysis run may lead straight to migrations under full automation.
    ("/limiquantix.drs.v1.DRSService/RunAnalysis", perm(P::DrsApply), Cluster),
    ("/limiquantix.drs.v1.DRSService/GetDRSStatus", perm(P::DrsRead), Cluster),
    (
        "/limiquantix.drs.v1.DRSService/UpdateDRSConfig",
        perm(P::SettingsManage),
        Cluster,
    ),
    // limiquantix.ha.v1.HAService
    ("/limiquantix.ha.v1.HAService/GetHAStatus", perm(P::HaRead), Cluster),
    (
        "/limiquantix.ha.v1.HAService/ManualFailover",
        perm(P::HaFailover),
        Cluster,
    ),
    // limiquantix.events.v1.EventService: the handler filters events by the caller's role.
    ("/limiquantix.events.v1.EventService/Subscribe", Authenticated, Project),
    // limiquantix.project.v1.ProjectService: creating, deleting and setting quotas is the
    // cluster admin's; members see their projects (the handler hides the others as not
    // found); a project admin manages its members.
    (
        "/limiquantix.project.v1.ProjectService/CreateProject",
        perm(P::ProjectManage),
        Cluster,
    ),
    (
        "/limiquantix.project.v1.ProjectService/ListProjects",
        Authenticated,
        Account,
    ),
    (
        "/limiquantix.project.v1.ProjectService/GetProject",
        Authenticated,
        Project,
    ),
    (
        "/limiquantix.project.v1.ProjectService/UpdateProject",
        perm(P::ProjectManage),
        Cluster,
    ),
    (
        "/limiquantix.project.v1.ProjectService/DeleteProject",
        perm(P::ProjectManage),
        Cluster,
    ),
    (
        "/limiquantix.project.v1.ProjectService/SetProjectMember",
        perm(P::ProjectManage),
        Project,
    ),
    (
        "/limiquantix.project.v1.ProjectService/RemoveProjectMember",
        perm(P::ProjectManage),
        Project,
    ),
    (
        "/limiquantix.project.v1.ProjectService/ListProjectMembers",
        Authenticated,
        Project,
    ),
];

/// Services outside proto/ that are public as a whole: health checks and reflection.
pub const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The roles' permissions: the one place that says who may do what.
pub const ADMIN_PERMISSIONS: &[Permission] = &Permission::ALL;
pub const OPERATOR_PERMISSIONS: &[Permission] = &[
    P::VmCreate,
    P::VmRead,
    P::VmUpdate,
    P::VmDelete,
    P::VmPower,
    P::VmMigrate,
    P::NodeRead,
    P::NodeManage,
    P::AlertRead,
    P::AlertManage,
    P::DrsRead,
    P::DrsApprove,
    P::DrsApply,
    P::HaRead,
    P::HaFailover,
    P::AuditRead,
    P::ApiKeyManage,
];
pub const VIEWER_PERMISSIONS: &[Permission] = &[P::VmRead, P::NodeRead, P::AlertRead, P::DrsRead, P::HaRead];

/// The permissions a role holds.
pub fn permissions(role: Role) -> &'static [Permission] {
    match role {
        Role::None => &[],
        Role::Admin => ADMIN_PERMISSIONS,
        Role::Operator => OPERATOR_PERMISSIONS,
        Role::Viewer => VIEWER_PERMISSIONS,
    }
}

pub fn role_allows(role: Role, perm: Permission) -> bool {
    permissions(role).contains(&perm)
}

/// The permissions an API key with this role holds: the role's, minus `apikey:manage`.
pub fn api_key_allows(role: Role, perm: Permission) -> bool {
    perm != P::ApiKeyManage && role_allows(role, perm)
}

/// The permission needed to see events and resources of a resource type (`vm`, `node`,
/// `alert`, `drs`, `ha`), for filtering streams; `None` for an unknown type (show to nobody
/// but admins).
pub fn read_permission_for_resource(resource_type: &str) -> Option<Permission> {
    match resource_type {
        "vm" => Some(P::VmRead),
        "node" => Some(P::NodeRead),
        "alert" => Some(P::AlertRead),
        "drs" => Some(P::DrsRead),
        "ha" => Some(P::HaRead),
        _ => None,
    }
}

static INDEX: LazyLock<HashMap<&'static str, (Access, Scope)>> =
    LazyLock::new(|| RULES.iter().map(|(p, a, s)| (*p, (*a, *s))).collect());

/// Where `method_path` acts (see [`Scope`]); RPCs outside the table count as cluster-wide.
pub fn scope(method_path: &str) -> Scope {
    INDEX.get(method_path).map_or(Cluster, |(_, s)| *s)
}

/// What `method_path` (e.g. `/limiquantix.compute.v1.VMService/CreateVM`) requires; `None`
/// for an RPC that is not in the table, which must be denied.
pub fn required(method_path: &str) -> Option<Access> {
    if let Some((a, _)) = INDEX.get(method_path) {
        return Some(*a);
    }
    PUBLIC_PREFIXES
        .iter()
        .any(|p| method_path.starts_with(p))
        .then_some(Public)
}

/// Decides whether `caller` may call `method_path`. Keeps the two refusals apart: no
/// credential where one is needed is `Unauthenticated`; a credential that is not enough is
/// `PermissionDenied`.
pub fn authorize(method_path: &str, caller: Caller) -> Result<Access, AuthError> {
    let access = required(method_path).ok_or(AuthError::UnknownMethod)?;
    let ok = match (access, caller) {
        (Public | JoinToken, _) => true,
        (_, Caller::Anonymous) => return Err(AuthError::MissingCredentials),
        (NodeCredential, Caller::Node) => true,
        (NodeCredential, _) => return Err(AuthError::Forbidden("node credential required")),
        // Not a credential for this API at all (whether or not it is a real node's):
        // unauthenticated, like a missing one, not permission_denied.
        (_, Caller::Node) => return Err(AuthError::NodeCredentialElsewhere),
        (Authenticated, Caller::User(_) | Caller::ApiKey(_)) => true,
        (UserSession, Caller::User(_)) => true,
        (UserSession, Caller::ApiKey(_)) => {
            return Err(AuthError::Forbidden("a user session is required, not an API key"));
        }
        (Access::Permission(p), Caller::User(role)) => role_allows(role, p),
        (Access::Permission(p), Caller::ApiKey(role)) => api_key_allows(role, p),
    };
    match (ok, access) {
        (true, _) => Ok(access),
        (false, Access::Permission(permission)) => Err(AuthError::PermissionDenied { permission }),
        (false, _) => Err(AuthError::Forbidden("not allowed")),
    }
}

/// Checks that every served RPC is in the table. The server calls this at start-up with
/// the paths it serves (or [`declared_method_paths`]) and refuses to start on `Err`, which
/// lists the missing paths.
pub fn check_complete<S: AsRef<str>>(all_method_paths: &[S]) -> Result<(), Vec<String>> {
    let missing: Vec<String> = all_method_paths
        .iter()
        .map(AsRef::as_ref)
        .filter(|m| required(m).is_none())
        .map(str::to_owned)
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(missing) }
}

/// Every RPC declared in proto/ (from the compiled descriptor set), as full method paths.
pub fn declared_method_paths() -> Vec<String> {
    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(crate::api::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set is generated by build.rs and always decodes");
    let mut out = Vec::new();
    for file in &fds.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                out.push(format!("/{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_declared_rpc_is_in_the_table_and_nothing_else() {
        let declared = declared_method_paths();
        assert!(declared.len() >= 50, "descriptor lists only {} RPCs", declared.len());
        check_complete(&declared).unwrap();
        assert_eq!(declared.len(), RULES.len());
        let declared: HashSet<&str> = declared.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        for (path, _, _) in RULES {
            assert!(seen.insert(*path), "{path} is listed twice");
            assert!(declared.contains(path), "{path} is in the table but not in proto/");
        }
    }

    #[test]
    fn a_missing_rpc_is_reported_and_denied() {
        let paths = [
            "/limiquantix.compute.v1.VMService/GetVM",
            "/limiquantix.compute.v1.VMService/FormatDisk",
        ];
        assert_eq!(
            check_complete(&paths),
            Err(vec!["/limiquantix.compute.v1.VMService/FormatDisk".to_string()])
        );
        assert_eq!(required("/limiquantix.compute.v1.VMService/FormatDisk"), None);
        assert!(matches!(
            authorize(
                "/limiquantix.compute.v1.VMService/FormatDisk",
                Caller::User(Role::Admin)
            ),
            Err(AuthError::UnknownMethod)
        ));
        // Near misses of a real path are not matched.
        assert_eq!(required("/limiquantix.compute.v1.VMService/GetVM/"), None);
        assert_eq!(required("limiquantix.compute.v1.VMService/GetVM"), None);
        assert_eq!(required("/limiquantix.compute.v1.vmservice/getvm"), None);
    }

    #[test]
    fn only_login_refresh_sso_health_and_reflection_are_public() {
        let public: Vec<&str> = RULES
            .iter()
            .filter(|(_, a, _)| *a == Public)
            .map(|(p, _, _)| *p)
            .collect();
        assert_eq!(
            public,
            [
                "/limiquantix.auth.v1.AuthService/Login",
                "/limiquantix.auth.v1.AuthService/RefreshToken",
                "/limiquantix.auth.v1.AuthService/GetSSOConfig",
                "/limiquantix.auth.v1.AuthService/GetServerInfo",
                "/limiquantix.auth.v1.AuthService/SSOLogin"
            ]
        );
        for p in [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(required(p), Some(Public), "{p}");
            assert!(authorize(p, Caller::Anonymous).is_ok());
        }
        assert_eq!(required("/grpc.health.v2.Health/Check"), None);
    }

    #[test]
    fn roles_hold_what_the_design_says() {
        for p in Permission::ALL {
            assert!(role_allows(Role::Admin, p), "admin lacks {p}");
        }
        for p in Permission::ALL {
            let expected = !matches!(p, P::UserManage | P::SettingsManage | P::ProjectManage);
            assert_eq!(role_allows(Role::Operator, p), expected, "operator {p}");
        }
        for p in Permission::ALL {
            let expected = p.as_str().ends_with(":read") && p != P::AuditRead;
            assert_eq!(role_allows(Role::Viewer, p), expected, "viewer {p}");
        }
        assert!(permissions(Role::None).is_empty());
        // A higher role holds everything a lower one does.
        for p in Permission::ALL {
            if role_allows(Role::Viewer, p) {
                assert!(role_allows(Role::Operator, p));
            }
            if role_allows(Role::Operator, p) {
                assert!(role_allows(Role::Admin, p));
            }
        }
    }

    /// What the design expects of each kind of RPC, written independently of the table.
    fn expected(path: &str, caller: Caller) -> Result<(), &'static str> {
        let method = path.rsplit('/').next().unwrap();
        let service = path.split('/').nth(1).unwrap();
        if ["Login", "RefreshToken", "GetSSOConfig", "SSOLogin", "GetServerInfo"].contains(&method)
            && service.ends_with("AuthService")
        {
            return Ok(());
        }
        if method == "Register" {
            return Ok(());
        }
        let role = match caller {
            Caller::Anonymous => return Err("unauthenticated"),
            Caller::Node => {
                return if method == "Heartbeat" {
                    Ok(())
                } else {
                    Err("unauthenticated")
                };
            }
            Caller::User(r) | Caller::ApiKey(r) => r,
        };
        if method == "Heartbeat" {
            return Err("denied");
        }
        let is_key = matches!(caller, Caller::ApiKey(_));
        if ["Logout", "ChangePassword"].contains(&method) {
            return if is_key { Err("denied") } else { Ok(()) };
        }
        if [
            "WhoAmI",
            "Subscribe",
            "ListProjects",
            "GetProject",
            "ListProjectMembers",
        ]
        .contains(&method)
        {
            return Ok(());
        }
        let admin_only = ["CreateUser", "ListUsers", "UpdateUser", "DeleteUser", "UpdateDRSConfig"].contains(&method)
            || ["CreateWebhook", "DeleteWebhook", "TestWebhook"].contains(&method)
            || method.ends_with("Project")
            || method.ends_with("ProjectMember");
        let key_mgmt = method.ends_with("APIKey") || method == "ListAPIKeys";
        let read_only = ["Get", "List", "Watch"].iter().any(|v| method.starts_with(v))
            && method != "ListWebhooks"
            && method != "ListAuditEntries"
            && !key_mgmt
            && !admin_only;
        let key_refused = key_mgmt && is_key;
        let allowed = match role {
            Role::Admin => !key_refused,
            Role::Operator => !admin_only && !key_refused,
            Role::Viewer => read_only,
            Role::None => false,
        };
        if allowed { Ok(()) } else { Err("denied") }
    }

    #[test]
    fn every_rpc_times_every_caller() {
        let callers = [
            Caller::Anonymous,
            Caller::Node,
            Caller::User(Role::Admin),
            Caller::User(Role::Operator),
            Caller::User(Role::Viewer),
            Caller::ApiKey(Role::Admin),
            Caller::ApiKey(Role::Operator),
            Caller::ApiKey(Role::Viewer),
            Caller::User(Role::None),
            Caller::ApiKey(Role::None),
        ];
        let mut checked = 0;
        for path in declared_method_paths() {
            for caller in callers {
                let got = authorize(&path, caller);
                match (expected(&path, caller), &got) {
                    (Ok(()), Ok(_)) => {}
                    (
                        Err("unauthenticated"),
                        Err(AuthError::MissingCredentials | AuthError::NodeCredentialElsewhere),
                    ) => {}
                    (Err("denied"), Err(AuthError::PermissionDenied { .. } | AuthError::Forbidden(_))) => {}
                    (want, got) => panic!("{path} as {caller:?}: expected {want:?}, got {got:?}"),
                }
                // The mapping to the transport-agnostic error keeps the two refusals apart.
                if let Err(e) = got {
                    let kind = crate::Error::from(e).kind;
                    let want = if matches!(caller, Caller::Anonymous | Caller::Node) {
                        crate::ErrorKind::Unauthenticated
                    } else {
                        crate::ErrorKind::PermissionDenied
                    };
                    assert_eq!(kind, want, "{path} as {caller:?}");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, RULES.len() * callers.len());
    }

    /// Every RPC states where it acts, and the split is the documented one: VMs, alerts,
    /// audit and events per project; nodes, DRS, HA, users, webhooks and projects
    /// themselves cluster-wide; sessions and one's own keys per account.
    #[test]
    fn every_rpc_states_its_scope() {
        for path in declared_method_paths() {
            let (_, access, scope) = RULES.iter().find(|(p, _, _)| *p == path).unwrap();
            let service = path.split('/').nth(1).unwrap();
            let method = path.rsplit('/').next().unwrap();
            let want = match service.rsplit('.').next().unwrap() {
                "VMService" | "EventService" => Scope::Project,
                "NodeService" | "AgentService" | "DRSService" | "HAService" => Scope::Cluster,
                "AlertService" if method.contains("Webhook") || method == "ListBackgroundTasks" => Scope::Cluster,
                "AlertService" => Scope::Project,
                "ProjectService" if ["CreateProject", "UpdateProject", "DeleteProject"].contains(&method) => {
                    Scope::Cluster
                }
                "ProjectService" if method == "ListProjects" => Scope::Account,
                "ProjectService" => Scope::Project,
                "AuthService" if ["CreateAPIKey", "ListAuditEntries"].contains(&method) => Scope::Project,
                "AuthService" if method.contains("User") && method != "WhoAmI" => Scope::Cluster,
                "AuthService" => Scope::Account,
                other => panic!("{path}: service {other} has no expected scope here"),
            };
            assert_eq!(*scope, want, "{path}");
            assert_eq!(self::scope(&path), want, "{path}");
            // A project-scoped RPC needs a permission or a member (checked by the handler).
            if want == Scope::Project {
                assert!(
                    matches!(access, Access::Permission(_) | Authenticated),
                    "{path}: {access:?}"
                );
            }
        }
        assert_eq!(scope("/limiquantix.compute.v1.VMService/FormatDisk"), Scope::Cluster);
    }

    #[test]
    fn resource_types_map_to_read_permissions() {
        assert_eq!(read_permission_for_resource("vm"), Some(P::VmRead));
        assert_eq!(read_permission_for_resource("ha"), Some(P::HaRead));
        assert_eq!(read_permission_for_resource("user"), None);
        for t in ["vm", "node", "alert", "drs", "ha"] {
            assert!(role_allows(Role::Viewer, read_permission_for_resource(t).unwrap()));
        }
    }
}

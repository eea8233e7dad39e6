//! Readable names of audited actions. An audit entry records the RPC it answered, in the
//! short form `compute.VMService/StartVM`; people read `vm.start`. One table for both
//! directions, so `lqx audit list --action vm.start` filters by the name the table shows.
//! An RPC missing here is shown as its RPC name (never hidden); the server's tests check
//! that every audited RPC is here. The server's own entries (`audit/Prune`, ...) are too.

/// (RPC as an audit entry records it, readable action).
pub const AUDIT_ACTIONS: &[(&str, &str)] = &[
    ("auth.AuthService/Login", "auth.login"),
    ("auth.AuthService/RefreshToken", "auth.refresh"),
    ("auth.AuthService/Logout", "auth.logout"),
    ("auth.AuthService/SSOLogin", "auth.sso-login"),
    ("auth.AuthService/ChangePassword", "user.change-password"),
    ("auth.AuthService/CreateUser", "user.create"),
    ("auth.AuthService/UpdateUser", "user.update"),
    ("auth.AuthService/DeleteUser", "user.delete"),
    ("auth.AuthService/CreateAPIKey", "apikey.create"),
    ("auth.AuthService/RevokeAPIKey", "apikey.revoke"),
    ("compute.VMService/CreateVM", "vm.create"),
    ("compute.VMService/UpdateVM", "vm.update"),
    ("compute.VMService/DeleteVM", "vm.delete"),
    ("compute.VMService/StartVM", "vm.start"),
    ("compute.VMService/StopVM", "vm.stop"),
    ("compute.VMService/RebootVM", "vm.reboot"),
    ("compute.VMService/MigrateVM", "vm.migrate"),
    ("compute.NodeService/EnableNode", "node.enable"),
    ("compute.NodeService/DisableNode", "node.disable"),
    ("compute.NodeService/EnterMaintenance", "node.maintenance-enter"),
    ("compute.NodeService/ExitMaintenance", "node.maintenance-exit"),
    ("compute.NodeService/CreateJoinToken", "node.join-token"),
    ("compute.NodeService/DeleteNode", "node.delete"),
    ("compute.NodeService/PowerOnNode", "node.power-on"),
    ("compute.NodeService/PowerOffNode", "node.power-off"),
    ("node.AgentService/Register", "node.register"),
    ("alert.AlertService/AcknowledgeAlert", "alert.acknowledge"),
    ("alert.AlertService/ResolveAlert", "alert.resolve"),
    ("alert.AlertService/CreateWebhook", "webhook.create"),
    ("alert.AlertService/DeleteWebhook", "webhook.delete"),
    ("alert.AlertService/TestWebhook", "webhook.test"),
    ("drs.DRSService/ApproveRecommendation", "drs.approve"),
    ("drs.DRSService/ApplyRecommendation", "drs.apply"),
    ("drs.DRSService/RejectRecommendation", "drs.reject"),
    ("drs.DRSService/RunAnalysis", "drs.analyze"),
    ("drs.DRSService/UpdateDRSConfig", "drs.config-update"),
    ("ha.HAService/ManualFailover", "ha.failover"),
    ("project.ProjectService/CreateProject", "project.create"),
    ("project.ProjectService/UpdateProject", "project.update"),
    ("project.ProjectService/DeleteProject", "project.delete"),
    ("project.ProjectService/SetProjectMember", "project.member-set"),
    ("project.ProjectService/RemoveProjectMember", "project.member-remove"),
    // Written by the server itself, not for an RPC.
    ("audit/SuppressedDenials", "audit.suppressed-denials"),
    ("audit/Prune", "audit.prune"),
];

/// The readable action of an entry's recorded RPC (`compute.VMService/StartVM` ->
/// `vm.start`); an RPC not in the table is returned as it is.
pub fn readable_action(rpc: &str) -> &str {
    AUDIT_ACTIONS.iter().find(|(r, _)| *r == rpc).map_or(rpc, |(_, a)| a)
}

/// The recorded RPC of a readable action (`vm.start` -> `compute.VMService/StartVM`), for
/// filters; anything else (an RPC name already) is returned as it is.
pub fn action_rpc(action: &str) -> &str {
    AUDIT_ACTIONS
        .iter()
        .find(|(_, a)| *a == action)
        .map_or(action, |(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_actions_map_both_ways_and_are_unique() {
        assert_eq!(readable_action("compute.VMService/StartVM"), "vm.start");
        assert_eq!(action_rpc("vm.start"), "compute.VMService/StartVM");
        assert_eq!(readable_action("x.Svc/New"), "x.Svc/New", "unknown RPCs stay visible");
        assert_eq!(action_rpc("compute.VMService/StopVM"), "compute.VMService/StopVM");
        let mut rpcs: Vec<_> = AUDIT_ACTIONS.iter().map(|(r, _)| *r).collect();
        let mut names: Vec<_> = AUDIT_ACTIONS.iter().map(|(_, a)| *a).collect();
        rpcs.sort_unstable();
        rpcs.dedup();
        names.sort_unstable();
        names.dedup();
        assert_eq!((rpcs.len(), names.len()), (AUDIT_ACTIONS.len(), AUDIT_ACTIONS.len()));
        for (r, a) in AUDIT_ACTIONS {
            assert_eq!(action_rpc(readable_action(r)), *r);
            let (noun, verb) = a.split_once('.').expect("noun.verb");
            assert!(!noun.is_empty() && !verb.is_empty() && !a.contains('/'), "{a}");
            assert!(
                a.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'-'),
                "{a}"
            );
        }
    }
}

//! `limiquantix.auth.v1` (AuthService) <-> users, API keys, sessions and the audit log.

use super::{from_timestamp, opt_timestamp, timestamp};
use crate::api::auth::v1 as pb;
use crate::auth::service::LoginOutcome;
use crate::model::{ApiKey, AuditEntry, AuditFilter, AuditResult, ProjectId, User};
use crate::{Error, Result};

pub fn user_out(u: &User) -> pb::User {
    pb::User {
        id: u.id.to_string(),
        username: u.username.clone(),
        email: u.email.clone(),
        role: u.role.as_str().into(),
        disabled: u.disabled,
        created_at: Some(timestamp(u.created_at)),
        last_login_at: opt_timestamp(u.last_login_at),
    }
}

pub fn key_out(k: &ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.to_string(),
        name: k.name.clone(),
        role: k.role.as_str().into(),
        prefix: format!("lqx_{}", k.prefix),
        owner_id: k.owner_id.to_string(),
        created_at: Some(timestamp(k.created_at)),
        expires_at: Some(timestamp(k.expires_at)),
        last_used_at: opt_timestamp(k.last_used_at),
        revoked: k.revoked_at.is_some(),
        project_id: k.project_id.to_string(),
    }
}

pub fn login_out(o: LoginOutcome) -> pb::LoginResponse {
    let a = &o.pair.access;
    pb::LoginResponse {
        token_type: "Bearer".into(),
        expires_in: u64::try_from(a.exp - a.iat).unwrap_or(0),
        access_expires_at: Some(timestamp(a.expires_at())),
        refresh_expires_at: Some(timestamp(o.pair.refresh.expires_at())),
        user: Some(user_out(&o.user)),
        access_token: o.pair.access_token.into_inner(),
        refresh_token: o.pair.refresh_token.into_inner(),
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The filter of ListAuditEntries over `projects` (None: every project the caller sees).
pub fn audit_filter_in(r: &pb::ListAuditEntriesRequest, projects: Option<Vec<ProjectId>>) -> Result<AuditFilter> {
    let result = match r.result.as_str() {
        "" => None,
        s => Some(
            s.parse::<AuditResult>()
                .map_err(|_| Error::invalid("result", format!("{s:?} is not one of ok, denied, error")))?,
        ),
    };
    Ok(AuditFilter {
        user: opt(&r.user),
        action: opt(&r.action),
        resource_id: opt(&r.resource_id),
        since: r.since.as_ref().map(|t| from_timestamp("since", t)).transpose()?,
        result,
        projects,
    })
}

pub fn audit_entry_out(e: &AuditEntry) -> pb::AuditEntry {
    pb::AuditEntry {
        id: e.id.to_string(),
        time: Some(timestamp(e.time)),
        actor: e.actor.display_name(),
        actor_id: e.actor.id_string(),
        action: e.action.clone(),
        resource_type: e.resource_type.clone(),
        resource_id: e.resource_id.clone(),
        result: e.result.as_str().into(),
        detail: e.detail.clone(),
        client_address: e.client_address.clone(),
        request_id: e.request_id.clone(),
        project_id: e.project_id.map(|p| p.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_filter_names_a_bad_result() {
        let r = pb::ListAuditEntriesRequest {
            result: "maybe".into(),
            ..Default::default()
        };
        let e = audit_filter_in(&r, None).unwrap_err();
        assert!(
            e.message.starts_with("result:") && e.message.contains("maybe"),
            "{}",
            e.message
        );
        let r = pb::ListAuditEntriesRequest {
            result: "denied".into(),
            user: "bob".into(),
            ..Default::default()
        };
        let f = audit_filter_in(&r, None).unwrap();
        assert_eq!(
            (f.result, f.user.as_deref(), f.action),
            (Some(AuditResult::Denied), Some("bob"), None)
        );
    }
}

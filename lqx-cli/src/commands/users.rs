//! `lqx user`, `lqx apikey`, `lqx audit`: AuthService administration.

use lqx_core::api::auth::v1 as pb;
use lqx_core::api::auth::v1::auth_service_client::AuthServiceClient;

use super::new_request_id;
use crate::app::{App, read_stdin_line};
use crate::cli::{ApikeyCmd, AuditCmd, UserCmd};
use crate::error::{CliError, CliResult};
use crate::rpc;
use crate::views::{ApiKeyCreatedView, ApiKeyView, AuditView, UserView, to_timestamp};

/// A new password: from stdin, or typed twice at a hidden prompt.
fn new_password(app: &App, from_stdin: bool) -> CliResult<String> {
    if from_stdin {
        return read_stdin_line("password");
    }
    let p1 = app.prompt_secret("New password: ", "--password-stdin")?;
    let p2 = app.prompt_secret("Repeat it: ", "--password-stdin")?;
    if p1 != p2 {
        return Err(CliError::usage("The passwords differ"));
    }
    Ok(p1)
}

pub async fn user(app: App, c: UserCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    match c {
        UserCmd::Create {
            username,
            role,
            email,
            password_stdin,
        } => {
            let password = new_password(&app, password_stdin)?;
            let req = pb::CreateUserRequest {
                username,
                email: email.unwrap_or_default(),
                password,
                role: role.as_str().to_string(),
                request_id: new_request_id(),
            };
            let u = rpc!(sess, AuthServiceClient, create_user, req)?;
            app.printer.one(&UserView::from(&u))
        }
        UserCmd::List => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let resp = rpc!(
                    sess,
                    AuthServiceClient,
                    list_users,
                    pb::ListUsersRequest {
                        page_size: 1000,
                        page_token: token.clone()
                    }
                )?;
                all.extend(resp.users.iter().map(UserView::from));
                if resp.next_page_token.is_empty() || resp.next_page_token == token {
                    break;
                }
                token = resp.next_page_token;
            }
            app.printer.list(&all)
        }
        UserCmd::Update {
            user,
            email,
            role,
            disable,
            enable,
        } => {
            if email.is_none() && role.is_none() && !disable && !enable {
                return Err(CliError::usage("Nothing to change").hint("pass --email, --role, --disable or --enable"));
            }
            let req = pb::UpdateUserRequest {
                id: user,
                email,
                role: role.map(|r| r.as_str().to_string()),
                disabled: if disable {
                    Some(true)
                } else if enable {
                    Some(false)
                } else {
                    None
                },
            };
            let u = rpc!(sess, AuthServiceClient, update_user, req)?;
            app.printer.one(&UserView::from(&u))
        }
        UserCmd::Delete { user, yes } => {
            app.confirm(&format!("Delete user {user}?"), yes)?;
            rpc!(
                sess,
                AuthServiceClient,
                delete_user,
                pb::DeleteUserRequest { id: user.clone() }
            )?;
            app.printer.info(&format!("Deleted user {user}"));
            Ok(())
        }
        UserCmd::Passwd { user, password_stdin } => {
            let (old_password, new) = match (&user, password_stdin) {
                (Some(_), true) => (String::new(), read_stdin_line("new password")?),
                (Some(_), false) => (String::new(), new_password(&app, false)?),
                (None, true) => (read_stdin_line("old password")?, read_stdin_line("new password")?),
                (None, false) => (
                    app.prompt_secret("Current password: ", "--password-stdin")?,
                    new_password(&app, false)?,
                ),
            };
            let req = pb::ChangePasswordRequest {
                old_password,
                new_password: new,
                user_id: user.clone().unwrap_or_default(),
            };
            rpc!(sess, AuthServiceClient, change_password, req)?;
            app.printer.info(&match user {
                Some(u) => format!("Password of {u} changed"),
                None => "Password changed; other sessions of yours have ended".to_string(),
            });
            Ok(())
        }
    }
}

pub async fn apikey(app: App, c: ApikeyCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    match c {
        ApikeyCmd::Create { name, role, ttl } => {
            let req = pb::CreateApiKeyRequest {
                name,
                role: role.as_str().to_string(),
                ttl_seconds: ttl.as_secs(),
            };
            let resp = rpc!(sess, AuthServiceClient, create_api_key, req)?;
            let key = resp
                .key
                .as_ref()
                .map(ApiKeyView::from)
                .ok_or_else(|| CliError::general("The server sent no key"))?;
            let v = ApiKeyCreatedView {
                key,
                secret: resp.secret,
            };
            if app.printer.is_structured() {
                app.printer.one(&v)?;
                app.printer.info(&format!(
                    "API key {} created; its secret is shown once, in the output above",
                    v.key.name
                ));
            } else {
                // Every plain format (table, wide, name) prints the secret alone: that is
                // what a script captures, and the note says so.
                app.printer.line(&v.secret);
                app.printer.info(&format!(
                    "API key {} ({}) created; the line above is its secret, shown once. Use it with `lqx login --with-token` or LQX_TOKEN.",
                    v.key.name, v.key.id
                ));
            }
            Ok(())
        }
        ApikeyCmd::List { all } => {
            let resp = rpc!(sess, AuthServiceClient, list_api_keys, pb::ListApiKeysRequest { all })?;
            let v: Vec<ApiKeyView> = resp.keys.iter().map(ApiKeyView::from).collect();
            app.printer.list(&v)
        }
        ApikeyCmd::Revoke { id, yes } => {
            app.can_confirm(&format!("Revoke API key {id}"), yes)?;
            let id = resolve_api_key(&mut sess, &id).await?;
            app.confirm(&format!("Revoke API key {id}? Jobs using it will fail."), yes)?;
            rpc!(
                sess,
                AuthServiceClient,
                revoke_api_key,
                pb::RevokeApiKeyRequest { id: id.clone() }
            )?;
            app.printer.info(&format!("Revoked API key {id}"));
            Ok(())
        }
    }
}

/// An API key by name, full id or id prefix: an admin's keys of every user, else your own.
async fn resolve_api_key(sess: &mut crate::client::Session, q: &str) -> CliResult<String> {
    use crate::resolve::{Candidate, is_full_id, pick};
    if is_full_id(q) {
        return Ok(q.to_string());
    }
    let resp = match rpc!(
        sess,
        AuthServiceClient,
        list_api_keys,
        pb::ListApiKeysRequest { all: true }
    ) {
        Ok(r) => r,
        Err(e) if e.code == crate::error::ExitCode::PermissionDenied => rpc!(
            sess,
            AuthServiceClient,
            list_api_keys,
            pb::ListApiKeysRequest { all: false }
        )?,
        Err(e) => return Err(e),
    };
    let items: Vec<Candidate> = resp
        .keys
        .iter()
        .filter(|k| !k.revoked)
        .map(|k| Candidate {
            id: k.id.clone(),
            name: k.name.clone(),
        })
        .collect();
    pick("API key", q, &items)
}

pub async fn audit(app: App, c: AuditCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    let AuditCmd::List {
        user,
        action,
        resource,
        result,
        since,
        limit,
    } = c;
    let since = since.map(|d| {
        let back = chrono::Duration::from_std(d).ok();
        let t = back.and_then(|b| chrono::Utc::now().checked_sub_signed(b));
        to_timestamp(t.unwrap_or(chrono::DateTime::UNIX_EPOCH))
    });
    // --limit 0: every entry.
    let cap = if limit == 0 { usize::MAX } else { limit as usize };
    let mut all = Vec::new();
    let mut token = String::new();
    let mut more = false;
    while all.len() < cap {
        let req = pb::ListAuditEntriesRequest {
            user: user.clone().unwrap_or_default(),
            // The server filters by RPC: `vm.start` is `compute.VMService/StartVM`.
            action: action
                .as_deref()
                .map(|a| lqx_core::model::audit_action::action_rpc(a).to_string())
                .unwrap_or_default(),
            resource_id: resource.clone().unwrap_or_default(),
            since,
            result: result.clone().unwrap_or_default(),
            page_size: (cap - all.len()).min(1000) as u32,
            page_token: token.clone(),
        };
        let resp = rpc!(sess, AuthServiceClient, list_audit_entries, req)?;
        all.extend(resp.entries.iter().map(AuditView::from));
        if resp.next_page_token.is_empty() || resp.next_page_token == token {
            break;
        }
        token = resp.next_page_token;
        more = all.len() >= cap;
    }
    more |= all.len() > cap;
    all.truncate(cap);
    app.printer.list(&all)?;
    if more {
        app.printer.warn(&format!(
            "showing the newest {cap} entries; there are more (--limit N, or --limit 0 for all)"
        ));
    }
    Ok(())
}

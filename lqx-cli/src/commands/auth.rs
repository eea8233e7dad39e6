//! login, logout, auth status/token, and contexts.

use lqx_core::api::auth::v1 as authpb;
use lqx_core::api::auth::v1::auth_service_client::AuthServiceClient;

use crate::app::{App, read_stdin_line};
use crate::cli::{AuthCmd, ContextCmd, LoginArgs};
use crate::client::{TokenSource, credentials_from_login};
use crate::config::{self, Context, DEFAULT_SERVER, StorageKind};
use crate::creds::{Credentials, TokenKind, TokenStore};
use crate::error::{CliError, CliResult, ExitCode};
use crate::rpc;
use crate::views::{AuthStatusView, ContextView, time};

pub async fn login(mut app: App, a: LoginArgs) -> CliResult<()> {
    let existing = app.config.selected(app.global.context.as_deref()).ok().flatten();
    let server = match (&a.server, &app.global.server, &existing) {
        (Some(s), _, _) | (None, Some(s), _) => config::normalize_server(s)?,
        (None, None, Some((_, c))) => c.server.clone(),
        (None, None, None) => DEFAULT_SERVER.to_string(),
    };
    // The context to write: --context, else the one already for this server, else host:port.
    let ctx_name = app.global.context.clone().unwrap_or_else(|| {
        app.config
            .contexts
            .iter()
            .find(|(_, c)| c.server == server)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| config::context_name_for(&server))
    });
    let old = app.config.contexts.get(&ctx_name).cloned();
    // Logging in again keeps what the context chose unless a flag says otherwise.
    let storage = if a.insecure_storage {
        StorageKind::File
    } else {
        a.token_storage
            .or_else(|| old.as_ref().map(|c| c.token_storage))
            .unwrap_or(StorageKind::Keyring)
    };
    let ca_cert = app
        .global
        .ca_cert
        .clone()
        .or_else(|| old.as_ref().and_then(|c| c.ca_cert.clone()));
    let mut sess = app.anonymous_session(&server, ca_cert.clone())?;

    let (creds, username) = if a.with_token {
        let token = read_stdin_line("API key")?;
        sess.creds = Some(Credentials {
            access_token: token.clone(),
            refresh_token: None,
            access_expires_at: None,
            refresh_expires_at: None,
            username: None,
            role: None,
            kind: TokenKind::ApiKey,
        });
        // Check the key before storing it.
        let who = rpc!(sess, AuthServiceClient, who_am_i, authpb::WhoAmIRequest {})?;
        let user = who.user.unwrap_or_default();
        let creds = Credentials {
            access_token: token,
            refresh_token: None,
            access_expires_at: time(&who.expires_at),
            refresh_expires_at: None,
            username: Some(user.username.clone()),
            role: Some(user.role.clone()),
            kind: TokenKind::ApiKey,
        };
        let store = TokenStore::new(storage, &server, &user.username, &ctx_name, &app.config_dir);
        store.probe()?;
        (creds, user.username)
    } else if a.sso {
        let cfg = rpc!(sess, AuthServiceClient, get_sso_config, authpb::GetSsoConfigRequest {})?;
        if !cfg.enabled {
            return Err(CliError::new(
                ExitCode::Conflict,
                format!("Single sign-on is not configured on {server}"),
            )
            .hint("log in with a username and password, or ask the operator to set auth.oidc"));
        }
        // Fail on an unusable keyring before the server creates a session we could not keep.
        TokenStore::new(storage, &server, "sso", &ctx_name, &app.config_dir).probe()?;
        let provider = super::sso::Provider {
            issuer: cfg.issuer,
            client_id: cfg.client_id,
            scopes: cfg.scopes,
        };
        let t = super::sso::id_token(
            &provider,
            super::sso::choose_flow(a.browser, a.device),
            a.sso_ca_cert.as_deref(),
        )
        .await?;
        let req = authpb::SsoLoginRequest {
            id_token: t.id_token,
            nonce: t.nonce.unwrap_or_default(),
        };
        let resp = rpc!(sess, AuthServiceClient, sso_login, req)?;
        let username = resp.user.as_ref().map(|u| u.username.clone()).unwrap_or_default();
        (credentials_from_login(&resp, TokenKind::Session, None), username)
    } else {
        let remembered = old
            .as_ref()
            .filter(|c| c.server == server)
            .and_then(|c| c.username.clone());
        let username = match (&a.username, remembered) {
            (Some(u), _) => u.clone(),
            (None, Some(u)) => u,
            (None, None) if a.password_stdin || !app.interactive() => {
                return Err(CliError::usage("A username is needed").hint("pass --username (or LQX_USERNAME)"));
            }
            (None, None) => app.prompt_line("Username: ")?,
        };
        // Fail on an unusable keyring before the server creates a session we could not keep.
        TokenStore::new(storage, &server, &username, &ctx_name, &app.config_dir).probe()?;
        let password = if a.password_stdin {
            read_stdin_line("password")?
        } else {
            app.prompt_secret("Password: ", "--password-stdin")?
        };
        let resp = rpc!(
            sess,
            AuthServiceClient,
            login,
            authpb::LoginRequest {
                username: username.clone(),
                password
            }
        )?;
        (credentials_from_login(&resp, TokenKind::Session, None), username)
    };

    let store = TokenStore::new(storage, &server, &username, &ctx_name, &app.config_dir);
    store.save(&creds)?;
    // A different account or store of the same context leaves no token behind.
    if let Some(old) = &old {
        let prev = TokenStore::new(
            old.token_storage,
            &old.server,
            old.username.as_deref().unwrap_or(&ctx_name),
            &ctx_name,
            &app.config_dir,
        );
        if prev.describe() != store.describe()
            && let Err(e) = prev.delete()
        {
            app.printer
                .warn(&format!("could not delete the previous token: {}", e.message));
        }
    }
    // A new login keeps the context's default project.
    let project = app.config.contexts.get(&ctx_name).and_then(|c| c.project.clone());
    app.config.contexts.insert(
        ctx_name.clone(),
        Context {
            server: server.clone(),
            username: Some(username.clone()),
            token_storage: storage,
            ca_cert,
            project,
        },
    );
    app.config.current_context = Some(ctx_name.clone());
    app.config.save(&app.config_dir)?;
    let role = creds.role.clone().unwrap_or_default();
    app.printer.info(&format!(
        "Logged in to {server} as {username}{} (context {ctx_name}); token stored in the {}",
        if role.is_empty() {
            String::new()
        } else {
            format!(" ({role})")
        },
        store.describe()
    ));
    Ok(())
}

pub async fn logout(app: App, all: bool) -> CliResult<()> {
    let t = app.target()?;
    if std::env::var_os("LQX_TOKEN").is_some() {
        app.printer
            .warn("LQX_TOKEN is set; logout ends the stored session only, unset LQX_TOKEN yourself");
    }
    let Some(store) = app.store_for(&t) else {
        app.printer.info(&format!("Not logged in to {}", t.server));
        return Ok(());
    };
    let Some(creds) = store.load()? else {
        app.printer.info(&format!("Not logged in to {}", t.server));
        return Ok(());
    };
    if creds.kind == TokenKind::Session {
        let mut sess = crate::client::Session::new(
            t.server.clone(),
            app.ca_cert(&t),
            Some(creds.clone()),
            TokenSource::Store(store.clone()),
            app.global.timeout,
        )?;
        let req = authpb::LogoutRequest {
            refresh_token: creds.refresh_token.clone().unwrap_or_default(),
            all,
        };
        match rpc!(sess, AuthServiceClient, logout, req) {
            Ok(_) => {}
            // An expired session is as good as ended.
            Err(e) if e.code == ExitCode::Unauthenticated => {}
            Err(e) => app.printer.warn(&format!(
                "could not end the session on the server ({}); the token stays valid until it expires",
                e.message
            )),
        }
    } else {
        app.printer
            .info("This was an API key: it stays valid; `lqx apikey revoke ID` revokes it");
    }
    store.delete()?;
    app.printer.info(&format!(
        "Logged out of {}{}",
        t.server,
        if all { " (every session)" } else { "" }
    ));
    Ok(())
}

pub async fn auth(app: App, c: AuthCmd) -> CliResult<()> {
    match c {
        AuthCmd::Status { show_token } => {
            let t = app.target()?;
            let mut sess = app.session()?;
            let who = rpc!(sess, AuthServiceClient, who_am_i, authpb::WhoAmIRequest {})?;
            let user = who.user.unwrap_or_default();
            let creds = sess.creds.clone().unwrap_or_else(|| Credentials {
                access_token: String::new(),
                refresh_token: None,
                access_expires_at: None,
                refresh_expires_at: None,
                username: None,
                role: None,
                kind: TokenKind::ApiKey,
            });
            let view = AuthStatusView {
                context: t.context_name.clone().unwrap_or_default(),
                server: sess.server.clone(),
                username: user.username,
                role: user.role,
                auth_method: who.auth_method,
                token_source: sess.source.describe(),
                expires_at: time(&who.expires_at).or(creds.access_expires_at),
                refresh_expires_at: creds.refresh_expires_at,
                permissions: who.permissions,
                token: show_token.then(|| creds.access_token.clone()),
            };
            if app.printer.is_structured() || app.global.columns.is_some() {
                app.printer.one(&view)
            } else {
                // A readable block for people.
                let mut lines = vec![
                    format!("Server:       {}", view.server),
                    format!(
                        "Context:      {}",
                        if view.context.is_empty() { "-" } else { &view.context }
                    ),
                    format!("User:         {} ({})", view.username, view.role),
                    format!("Auth:         {}", view.auth_method),
                    format!("Token store:  {}", view.token_source),
                    format!(
                        "Expires:      {}",
                        view.expires_at
                            .map_or("never".into(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    ),
                ];
                if let Some(r) = view.refresh_expires_at {
                    lines.push(format!(
                        "Session ends: {}",
                        r.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ));
                }
                if let Some(tok) = &view.token {
                    lines.push(format!("Token:        {tok}"));
                }
                app.printer.line(&lines.join("\n"));
                Ok(())
            }
        }
        AuthCmd::Token => {
            let mut sess = app.session()?;
            let expiring = sess
                .creds
                .as_ref()
                .is_some_and(|c| c.access_expiring(chrono::Utc::now(), chrono::Duration::seconds(30)));
            if expiring && matches!(sess.source, TokenSource::Store(_)) {
                sess.refresh().await?;
            }
            let tok = sess.creds.as_ref().map(|c| c.access_token.clone()).unwrap_or_default();
            app.printer.line(&tok);
            Ok(())
        }
    }
}

fn context_view(app: &App, name: &str, c: &Context) -> ContextView {
    ContextView {
        name: name.to_string(),
        current: app.config.current_context.as_deref() == Some(name),
        server: c.server.clone(),
        username: c.username.clone().unwrap_or_default(),
        token_storage: c.token_storage.as_str().to_string(),
        ca_cert: c.ca_cert.as_ref().map(|p| p.display().to_string()),
    }
}

pub fn context(mut app: App, c: ContextCmd) -> CliResult<()> {
    match c {
        ContextCmd::List => {
            let views: Vec<ContextView> = app
                .config
                .contexts
                .iter()
                .map(|(n, c)| context_view(&app, n, c))
                .collect();
            app.printer.list(&views)
        }
        ContextCmd::Use { name } => {
            if !app.config.contexts.contains_key(&name) {
                return Err(CliError::new(ExitCode::NotFound, format!("No context named {name:?}"))
                    .hint("`lqx context list` shows the contexts"));
            }
            app.config.current_context = Some(name.clone());
            app.config.save(&app.config_dir)?;
            app.printer.info(&format!("Now using context {name}"));
            Ok(())
        }
        ContextCmd::Show { name } => {
            let sel = app.config.selected(name.as_deref().or(app.global.context.as_deref()))?;
            let Some((n, c)) = sel else {
                return Err(
                    CliError::new(ExitCode::NotFound, "No current context").hint("run `lqx login` to create one")
                );
            };
            let v = context_view(&app, &n, &c);
            app.printer.one(&v)
        }
        ContextCmd::Delete { name, yes } => {
            let Some(c) = app.config.contexts.get(&name).cloned() else {
                return Err(CliError::new(ExitCode::NotFound, format!("No context named {name:?}")));
            };
            app.confirm(&format!("Delete context {name} and its stored token?"), yes)?;
            let store = TokenStore::new(
                c.token_storage,
                &c.server,
                c.username.as_deref().unwrap_or(&name),
                &name,
                &app.config_dir,
            );
            if let Err(e) = store.delete() {
                app.printer
                    .warn(&format!("could not delete the stored token: {}", e.message));
            }
            app.config.contexts.remove(&name);
            if app.config.current_context.as_deref() == Some(name.as_str()) {
                app.config.current_context = None;
            }
            app.config.save(&app.config_dir)?;
            app.printer.info(&format!("Deleted context {name}"));
            Ok(())
        }
    }
}

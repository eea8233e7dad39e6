//! `lqx --version`: the client's version, then the server's (`GetServerInfo`, public, so
//! no login is needed) at the server the current context (or `--server`) names. A server
//! that does not answer within a few seconds is said to be unreachable; the exit code is 0
//! either way, as `kubectl version` prints its own version with the server down.

use std::ffi::OsString;
use std::time::Duration;

use clap::Parser;
use lqx_core::api::auth::v1 as authpb;
use lqx_core::api::auth::v1::auth_service_client::AuthServiceClient;
use serde::Serialize;

use crate::app::App;
use crate::cli::GlobalArgs;
use crate::output::{Format, json_pretty, out};

/// The global options of a command line that asked for `--version` (which clap answers
/// before it parses them): the rest is ignored.
#[derive(Debug, Parser)]
#[command(
    name = "lqx",
    ignore_errors = true,
    disable_version_flag = true,
    disable_help_flag = true
)]
struct VersionArgs {
    #[command(flatten)]
    global: GlobalArgs,
    #[arg(short = 'V', long = "version")]
    _version: bool,
    _rest: Vec<String>,
}

/// How long `--version` waits for the server.
const SERVER_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize)]
struct VersionView {
    client: ClientVersion,
    server: ServerVersion,
}

#[derive(Debug, Serialize)]
struct ClientVersion {
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct ServerVersion {
    address: String,
    reachable: bool,
    version: String,
    commit: String,
    /// Why the server's version is unknown.
    error: String,
}

/// Prints the versions; `args` is the whole command line.
pub fn show(args: &[OsString]) {
    let global = VersionArgs::try_parse_from(args)
        .or_else(|_| VersionArgs::try_parse_from(["lqx"]))
        .map(|a| a.global)
        .ok();
    let json = global.as_ref().is_some_and(|g| g.output == Some(Format::Json));
    let server = match global {
        Some(g) => server_version(g),
        None => ServerVersion {
            address: String::new(),
            reachable: false,
            version: String::new(),
            commit: String::new(),
            error: "cannot read the options".into(),
        },
    };
    let v = VersionView {
        client: ClientVersion {
            version: env!("CARGO_PKG_VERSION"),
        },
        server,
    };
    if json && let Ok(s) = json_pretty(&v) {
        out(&(s + "\n"));
        return;
    }
    let s = &v.server;
    let server_line = if s.reachable {
        let commit = if s.commit.is_empty() {
            String::new()
        } else {
            format!(" (commit {})", s.commit)
        };
        format!("server {}: lqx-server {}{commit}", s.address, s.version)
    } else {
        format!("server {}: unreachable ({})", s.address, s.error)
    };
    out(&format!("lqx {}\n{server_line}\n", v.client.version));
}

fn server_version(mut global: GlobalArgs) -> ServerVersion {
    global.timeout = global.timeout.min(SERVER_WAIT);
    let mut v = ServerVersion {
        address: String::new(),
        reachable: false,
        version: String::new(),
        commit: String::new(),
        error: String::new(),
    };
    let asked = (|| {
        let app = App::new(global)?;
        let t = app.target()?;
        v.address = t.server.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::error::CliError::general(format!("cannot start the runtime: {e}")))?;
        rt.block_on(async {
            // The channel needs the runtime.
            let mut sess = app.anonymous_session(&t.server, app.ca_cert(&t))?;
            let call = sess.call(authpb::GetServerInfoRequest {}, &|ch, r| async move {
                AuthServiceClient::new(ch).get_server_info(r).await
            });
            match tokio::time::timeout(SERVER_WAIT, call).await {
                Ok(r) => r,
                Err(_) => Err(crate::error::CliError::general(format!(
                    "no answer within {}",
                    humantime::format_duration(SERVER_WAIT)
                ))),
            }
        })
    })();
    match asked {
        Ok(info) => {
            v.reachable = true;
            v.version = info.version;
            v.commit = info.commit;
        }
        Err(e) => v.error = e.message,
    }
    v
}

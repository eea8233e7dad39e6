//! Command handlers: each parses nothing (clap and `parse` did), calls the API, and prints
//! through the printer. No business logic lives here.

mod alert;
mod auth;
pub mod docs;
mod drs;
mod ha;
mod node;
mod project;
mod sso;
mod users;
pub mod version;
mod vm;
mod watch;

use crate::app::App;
use crate::cli::{Cli, Command};
use crate::error::CliResult;

/// One RPC through the session (token, refresh, retry once on `unauthenticated`).
#[macro_export]
macro_rules! rpc {
    ($sess:expr, $client:ident, $method:ident, $req:expr) => {
        $sess
            .call_retrying(
                $crate::client::is_idempotent(stringify!($method)),
                $req,
                |ch, r| async move { $client::new(ch).max_decoding_message_size(64 << 20).$method(r).await },
            )
            .await
    };
}

pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn run(cli: Cli) -> CliResult<()> {
    // Commands that need no config or server.
    match &cli.command {
        Command::Completion { shell } => return docs::completion(*shell),
        Command::Help { topic } => return docs::help(topic),
        _ => {}
    }
    let app = App::new(cli.global.clone())?;
    match cli.command {
        Command::Login(a) => auth::login(app, a).await,
        Command::Logout { all } => auth::logout(app, all).await,
        Command::Auth(c) => auth::auth(app, c).await,
        Command::Context(c) => auth::context(app, c),
        Command::Vm(c) => vm::run(app, c).await,
        Command::Node(c) => node::run(app, c).await,
        Command::User(c) => users::user(app, c).await,
        Command::Project(c) => project::run(app, c).await,
        Command::Apikey(c) => users::apikey(app, c).await,
        Command::Audit(c) => users::audit(app, c).await,
        Command::Alert(c) => alert::run(app, c).await,
        Command::Drs(c) => drs::run(app, c).await,
        Command::Ha(c) => ha::run(app, c).await,
        Command::Watch(a) => watch::events(app, a).await,
        Command::Completion { .. } | Command::Help { .. } => Ok(()),
    }
}

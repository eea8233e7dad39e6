//! The options several commands share, apart from the command tree (`cli`), which the
//! session set-up (`app`) and name completion (`complete`) read without the whole tree.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;

use crate::output::Format;
use crate::parse::clap_duration;

/// Shown under their own heading, apart from each command's options.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080
    #[arg(long, global = true, env = "LQX_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// Context (server and account) from the config to use
    #[arg(long, global = true, env = "LQX_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// Project to act in (name or id); default: the context's project (`lqx project use`),
    /// else the default project
    #[arg(long, global = true, env = "LQX_PROJECT", value_name = "NAME")]
    pub project: Option<String>,

    /// Output format [default: table]
    #[arg(short = 'o', long, global = true, env = "LQX_OUTPUT", value_enum)]
    pub output: Option<Format>,

    /// Table columns to show, comma-separated (e.g. name,state,node)
    #[arg(long, global = true, env = "LQX_COLUMNS", value_name = "COLS", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,

    /// Leave out the table header line
    #[arg(long, global = true, env = "LQX_NO_HEADERS", value_parser = BoolishValueParser::new())]
    pub no_headers: bool,

    /// Never prompt; fail where input would be needed
    #[arg(long, global = true, env = "LQX_NO_INPUT", value_parser = BoolishValueParser::new())]
    pub no_input: bool,

    /// Show the full error chain and debug logs on stderr
    #[arg(long, global = true, env = "LQX_DEBUG", value_parser = BoolishValueParser::new())]
    pub debug: bool,

    /// Give up after this long: RPCs and --wait (e.g. 30s, 5m)
    #[arg(long, global = true, env = "LQX_TIMEOUT", value_name = "DURATION", value_parser = clap_duration, default_value = "5m")]
    pub timeout: Duration,

    /// CA certificate (PEM) to trust for an https:// server with a private CA
    #[arg(long, global = true, env = "LQX_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// `--wait` / `--no-wait`: wait by default, in a terminal and in a script alike.
#[derive(Debug, Args, Clone, Copy)]
pub struct WaitArgs {
    /// Wait until the operation is done (the default; LQX_WAIT=0 makes --no-wait the default)
    #[arg(long, overrides_with = "no_wait", env = "LQX_WAIT", value_parser = BoolishValueParser::new(), default_value = "true")]
    pub wait: bool,
    /// Return as soon as the server accepted the request
    #[arg(long, overrides_with = "wait")]
    pub no_wait: bool,
}

impl WaitArgs {
    pub fn waits(self) -> bool {
        self.wait && !self.no_wait
    }
}

/// Confirmation for destructive commands.
#[derive(Debug, Args, Clone, Copy)]
pub struct YesArgs {
    /// Do not ask for confirmation (required when not interactive)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

//! `lqx`: the command line for the lqx control plane. The binary is thin: clap parses
//! (`cli`), values are validated (`parse`), commands call the API (`commands`) and print
//! through one printer (`output`). Exit codes: see `error::ExitCode`.

mod app;
mod args;
mod cli;
mod client;
mod commands;
mod complete;
mod config;
mod creds;
mod error;
mod examples;
mod output;
mod parse;
mod resolve;
mod views;

use clap::Parser;

use crate::error::ExitCode;
use crate::output::{Format, Printer};

fn init_logging(debug: bool) {
    let filter = std::env::var("LQX_LOG")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| if debug { "debug".into() } else { "warn".into() });
    // Colour only on a terminal, never with NO_COLOR or TERM=dumb (piped --debug logs stay plain).
    let ansi = output::color_wanted(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var("NO_COLOR").ok().as_deref(),
    ) && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() -> std::process::ExitCode {
    // `COMPLETE=bash lqx -- ...` from a completion script: answer and exit.
    // A completion request (COMPLETE set by the shell's registration script): answer, exit.
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .var(complete::VAR)
        .complete();
    // `lqx __generate-docs DIR` (packaging) is outside the command tree, so no help or
    // completion ever offers it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "__generate-docs") {
        let Some(dir) = args.get(2) else {
            output::err_line("usage: lqx __generate-docs DIR");
            return std::process::ExitCode::from(ExitCode::Usage.code());
        };
        return match commands::docs::generate(std::path::Path::new(dir)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                output::err_line(&format!("error: {}", e.message));
                std::process::ExitCode::from(e.code.code())
            }
        };
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            // The client's version, and the server's when it answers; 0 either way.
            commands::version::show(&args);
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            // --help goes to stdout with 0; usage errors to stderr with 2.
            let code = if e.use_stderr() { ExitCode::Usage } else { ExitCode::Ok };
            let colour = output::color_wanted(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                std::env::var("NO_COLOR").ok().as_deref(),
            );
            let rendered = if e.use_stderr() && colour {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            if e.use_stderr() {
                output::err_line(rendered.trim_end());
            } else {
                output::out(&rendered);
            }
            return std::process::ExitCode::from(code.code());
        }
    };
    let debug = cli.global.debug || std::env::var("LQX_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("debug"));
    init_logging(cli.global.debug);
    let printer = Printer::new(cli.global.output.unwrap_or(Format::Table), None, false);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::err_line(&format!("error: cannot start the runtime: {e}"));
            return std::process::ExitCode::from(ExitCode::Error.code());
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            printer.error(&e, debug);
            std::process::ExitCode::from(e.code.code())
        }
    }
}

//! `lqx-server`: the lqx control plane (`serve`, the default) and node agent (`agent`).

mod agent;
mod authn;
mod body_deadline;
mod config;
mod conn;
mod drain;
mod fence;
mod gateway;
mod metrics;
mod request;
mod server;
mod services;
mod startup;
mod status;
mod status_command;
mod watch;

use clap::{Parser, Subcommand};
use config::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "lqx-server", version, about = "lqx control plane for KVM/libvirt hosts")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the control plane (the default).
    Serve(ServeArgs),
    /// Run the node agent of this hypervisor host.
    Agent(agent::AgentArgs),
    /// Run the fence process of an agent host: destroys its HA-protected domains when the
    /// agent stops renewing its lease, and pets the host watchdog.
    Fence(fence::FenceArgs),
    /// Show a running control plane's background tasks: period, last run, result, errors.
    Status(status_command::StatusArgs),
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// YAML configuration file.
    #[arg(long, env = "LQX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address for gRPC and Connect JSON [default: 127.0.0.1:8080].
    #[arg(long, env = "LQX_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve /metrics on this address (plaintext) instead of on the API port.
    #[arg(long, env = "LQX_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Data directory (embedded database, keys) [default: ./lqx-data].
    #[arg(long, env = "LQX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://...); default: SQLite in the data directory.
    #[arg(long, env = "LQX_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Development playground: SQLite in the data dir, three hosts, an admin account.
    #[arg(long, env = "LQX_DEV", value_parser = clap::builder::BoolishValueParser::new())]
    pub dev: bool,
    /// Run on simulated hosts loaded from a cluster file (nodes and VMs).
    #[arg(long, env = "LQX_SIM", value_name = "FILE")]
    pub sim: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "LQX_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Allow plaintext on a non-loopback address.
    #[arg(long, env = "LQX_INSECURE_LISTEN", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure_listen: bool,
    /// URL agents reach this replica at; another replica tells agents that heartbeat to it
    /// where the leader is [default: the listen address].
    #[arg(long, env = "LQX_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// TLS certificate (PEM).
    #[arg(long, env = "LQX_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "LQX_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Virtual CPU of every guest: host-model (the host's CPU; live migration only between
    /// hosts of the same CPU model) or a QEMU model every host supports (e.g. x86-64-v2,
    /// Haswell-noTSX) so guests move live between unlike hosts.
    #[arg(long, env = "LQX_GUEST_CPU_MODEL", default_value = "host-model", value_parser = parse_guest_cpu)]
    pub guest_cpu_model: lqx_core::driver::GuestCpu,
}

fn parse_guest_cpu(s: &str) -> Result<lqx_core::driver::GuestCpu, String> {
    lqx_core::driver::GuestCpu::parse(s).map_err(|e| e.message().to_string())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        Some(Command::Agent(a)) => return agent::main(a),
        Some(Command::Fence(a)) => return fence::main(a),
        Some(Command::Status(a)) => return status_command::main(a),
        None => cli.serve,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(startup::serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

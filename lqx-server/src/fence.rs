//! `lqx-server fence`: the fence process of an agent host (see `lqx_core::fence`). Parses
//! flags, locks its memory, opens its own libvirt connection, and serves the fence socket
//! until SIGINT/SIGTERM.

use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct FenceArgs {
    /// The socket the agent pets (created mode 0600; the agent's --fence-socket).
    #[arg(long, env = "LQX_FENCE_SOCKET", default_value = "/run/lqx/fence.sock")]
    pub socket: PathBuf,
    /// libvirt URI of this host (the fence process opens its own connection).
    #[arg(long, env = "LQX_LIBVIRT_URI", default_value = "qemu:///system")]
    pub libvirt: String,
    /// Host watchdog device to pet (softdog or hardware, e.g. /dev/watchdog). Opening it arms
    /// a host reset if this process stops petting it. Without one, fencing is degraded: a hung
    /// fence process or libvirtd does not fence.
    #[arg(long, env = "LQX_WATCHDOG_DEVICE")]
    pub watchdog_device: Option<PathBuf>,
    /// The device's timeout, when /sys/class/watchdog does not report it.
    #[arg(long, env = "LQX_WATCHDOG_TIMEOUT", value_parser = humantime::parse_duration)]
    pub watchdog_timeout: Option<Duration>,
    /// Log format.
    #[arg(long, env = "LQX_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::config::LogFormat,
}

/// Keeps the process in RAM: a fence that waits for swap-in under memory pressure is late.
fn lock_memory() {
    use nix::sys::mman::{MlockAllFlags, mlockall};
    match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        Ok(()) => tracing::info!("memory locked (mlockall)"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot lock memory (mlockall); the fence may be late under memory pressure")
        }
    }
}

async fn run(args: FenceArgs) -> anyhow::Result<()> {
    crate::agent::init_logging(args.log_format);
    lock_memory();
    let hv = lqx_core::driver::connect(&args.libvirt)
        .await
        .with_context(|| format!("connecting to libvirt at {}", args.libvirt))?;
    let mut opts = lqx_core::fence::FenceOptions::new(&args.socket);
    opts.watchdog_device = args.watchdog_device.clone();
    opts.watchdog_timeout = args.watchdog_timeout;
    tracing::info!(libvirt = %args.libvirt, socket = %args.socket.display(), "lqx fence process starting");
    lqx_core::fence::serve(opts, hv, crate::agent::shutdown_signal())
        .await
        .map_err(anyhow::Error::new)
}

/// Entry point of `lqx-server fence`.
pub fn main(args: FenceArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

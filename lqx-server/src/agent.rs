//! `lqx-server agent`: the node agent's command line. Parses flags, connects libvirt and the
//! control plane, and runs `lqx_core::agent::Agent` until SIGINT/SIGTERM.

use anyhow::Context;
use lqx_core::agent::{Agent, AgentOptions, FollowLeader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct AgentArgs {
    /// Control plane URL (http://host:8080 or https://host:8443); several replicas:
    /// comma-separated or the flag repeated, or a DNS name with one address per replica.
    /// Heartbeats follow the HA leader among them.
    #[arg(long, env = "LQX_CONTROL_PLANE", value_delimiter = ',', required = true)]
    pub control_plane: Vec<String>,
    /// One-time join token (`lqx node join-token`); only needed for the first start. Prefer
    /// LQX_JOIN_TOKEN or --join-token-file: flags are visible in the process list.
    #[arg(long, env = "LQX_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// File holding the join token.
    #[arg(long, env = "LQX_JOIN_TOKEN_FILE", conflicts_with = "join_token")]
    pub join_token_file: Option<PathBuf>,
    /// libvirt URI of this host.
    #[arg(long, env = "LQX_LIBVIRT_URI", default_value = "qemu:///system")]
    pub libvirt: String,
    /// libvirt URI at which other hosts' libvirtd reach this host's libvirtd for live
    /// migration (e.g. qemu+tls://host-a.example/system); without it, VMs cannot be
    /// live-migrated to this host.
    #[arg(long, env = "LQX_MIGRATION_URI")]
    pub migration_uri: Option<String>,
    /// Where the node identity and the last desired state are kept.
    #[arg(long, env = "LQX_AGENT_DATA_DIR", default_value = "/var/lib/lqx-agent")]
    pub data_dir: PathBuf,
    /// Node name [default: the host name].
    #[arg(long, env = "LQX_NODE_NAME")]
    pub name: Option<String>,
    /// Address the control plane and peers reach this host at.
    #[arg(long, env = "LQX_MANAGEMENT_ADDRESS", default_value = "")]
    pub management_address: String,
    /// Node label KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Heartbeat period [default: the control plane's, 2s].
    #[arg(long, env = "LQX_HEARTBEAT_INTERVAL", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Option<Duration>,
    /// ACPI shutdown timeout before a domain that should stop is powered off.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub stop_timeout: Duration,
    /// Socket of this host's fence process (`lqx-server fence --socket`). Optional: without
    /// it the agent's own watchdog is the only fence (a hung agent does not fence) and the
    /// node reports its fencing as degraded.
    #[arg(long, env = "LQX_FENCE_SOCKET")]
    pub fence_socket: Option<PathBuf>,
    /// CA certificate (PEM) to verify an https control plane with, besides the system roots.
    #[arg(long, env = "LQX_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "LQX_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::config::LogFormat,
}

impl std::fmt::Debug for AgentArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentArgs")
            .field("control_plane", &self.control_plane)
            .field("join_token", &self.join_token.as_ref().map(|_| "<redacted>"))
            .field("libvirt", &self.libvirt)
            .field("data_dir", &self.data_dir)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

pub fn init_logging(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LQX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,h2=warn,hyper=warn,tower=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Json => b.json().try_init(),
        crate::config::LogFormat::Text => b.try_init(),
    };
}

/// The gRPC channel to one control plane replica; reconnects by itself (lazily).
pub(crate) fn channel(
    url: &str,
    tls_name: Option<&str>,
    ca_cert: Option<&std::path::Path>,
) -> anyhow::Result<tonic::transport::Channel> {
    let mut ep = tonic::transport::Endpoint::from_shared(url.to_string())
        .with_context(|| format!("{url:?} is not a URL"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(15))
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        // One address of a name: the certificate is checked against the name.
        if let Some(name) = tls_name {
            tls = tls.domain_name(name);
        }
        ep = ep.tls_config(tls).context("TLS configuration")?;
    } else if ca_cert.is_some() {
        anyhow::bail!("--ca-cert needs an https:// control plane URL");
    }
    Ok(ep.connect_lazy())
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let join_token = match (&args.join_token, &args.join_token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the join token from {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let hv = lqx_core::driver::connect(&args.libvirt)
        .await
        .with_context(|| format!("connecting to libvirt at {}", args.libvirt))?;
    let ca = args.ca_cert.clone();
    for u in &args.control_plane {
        channel(u, None, ca.as_deref())?;
    }
    let connect: lqx_core::agent::follow::Connect = Arc::new(move |url: &str, tls_name: Option<&str>| {
        channel(url, tls_name, ca.as_deref()).map_err(|e| lqx_core::Error::invalid("control_plane", format!("{e:#}")))
    });
    // A name with several addresses is that many replicas (no load balancer needed).
    let mut follow =
        FollowLeader::with_names(&args.control_plane, connect, lqx_core::agent::follow::system_resolver()).await?;
    tracing::info!(replicas = %follow.replicas().join(","), "control plane replicas");
    if let Some(i) = args.heartbeat_interval {
        follow = follow.with_call_timeout(lqx_core::handover::agent_call_timeout(i));
    }
    let cp = Arc::new(follow);
    let mut opts = AgentOptions::new(&args.data_dir);
    opts.name = args.name.clone().unwrap_or_default();
    opts.join_token = join_token;
    opts.management_address = args.management_address.clone();
    opts.labels = args.labels.iter().cloned().collect();
    opts.heartbeat_interval = args.heartbeat_interval;
    opts.stop_timeout = args.stop_timeout;
    opts.migration_uri = args.migration_uri.clone().unwrap_or_default();
    opts.fence_socket = args.fence_socket.clone();
    tracing::info!(control_plane = %args.control_plane.join(","), libvirt = %args.libvirt, data_dir = %args.data_dir.display(), "lqx agent starting");
    Agent::new(opts, cp, hv)
        .run(shutdown_signal())
        .await
        .map_err(anyhow::Error::new)?;
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Entry point of `lqx-server agent`.
pub fn main(args: AgentArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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

/// The URI of `--dev` node `i`: a private libvirt test-driver file in the data directory when
/// this build has libvirt, else a simulated host.
pub fn dev_node_uri(data_dir: &std::path::Path, i: u32) -> String {
    if cfg!(feature = "libvirt") {
        let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        format!("test://{}", dir.join(format!("dev-node-{i}.xml")).display())
    } else {
        format!("sim://dev-node-{i}")
    }
}

/// Writes the node files of `--dev` test-driver nodes that do not exist yet (16 CPUs, 64 GiB,
/// a 1 TiB `default` pool and a `default` network each), and says which hosts `--dev` runs on.
pub fn prepare_dev_nodes(config: &crate::config::Config) -> anyhow::Result<()> {
    let mut test_nodes = 0;
    for n in &config.nodes {
        let Some(path) = n.uri.strip_prefix("test://") else {
            continue;
        };
        let path = std::path::Path::new(path);
        let is_dev = path
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with("dev-node-"));
        if !is_dev || path.exists() {
            continue;
        }
        let xml = lqx_core::driver::xml::test_node_xml(&lqx_core::driver::xml::TestNode {
            cpus: 16,
            memory_mib: 65_536,
            pool_capacity_gib: 1024,
        });
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
        test_nodes += 1;
    }
    if config.nodes.iter().any(|n| n.uri.starts_with("test://")) {
        tracing::info!(
            written = test_nodes,
            "dev nodes run on libvirt's test driver (state lives in this process)"
        );
    } else if config.nodes.iter().any(|n| n.uri.starts_with("sim://dev-node-")) {
        tracing::info!("dev nodes are simulated: this build has no libvirt (feature \"libvirt\")");
    }
    Ok(())
}

/// Agent protocol timing: lease and self-fence timing from the `ha:` section (defaults when
/// absent or unreadable; the HA manager reports a bad section itself).
pub fn timing(config: &crate::config::Config) -> lqx_core::compute::agents::AgentTiming {
    let ha = config.ha.clone();
    lqx_core::compute::agents::AgentTiming {
        heartbeat_interval: ha.heartbeat_interval,
        lease_ttl: ha.lease_ttl,
        self_fence_after: ha.self_fence_after,
        ..Default::default()
    }
}

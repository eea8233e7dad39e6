//! Start-up: configuration, logging, store, hosts, services, listener.

use crate::ServeArgs;
use crate::config::{Config, LogFormat, NodeConfig, TlsConfig};
use crate::server::{self, Api};
use crate::services::{drs::DrsApi, node::NodeApi, vm::VmApi};
use anyhow::Context;
use lqx_core::compute::{Compute, Hosts, NodeRegistration};
use lqx_core::driver::sim::{SimConfig, SimRegistry};
use lqx_core::store::Store;
use std::sync::Arc;

/// Builds the configuration: file, then environment and flags (clap merged those two).
pub fn config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut c = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        c.listen = l;
    }
    if let Some(d) = &args.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(m) = args.metrics_listen {
        c.metrics_listen = Some(m);
    }
    if let Some(u) = &args.database_url {
        c.database_url = u.clone();
    }
    if let Some(f) = args.log_format {
        c.log_format = f;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        c.tls = Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    c.insecure_listen |= args.insecure_listen;
    if args.dev && c.nodes.is_empty() {
        c.nodes = (1..=3)
            .map(|i| NodeConfig {
                name: format!("node-{i}"),
                uri: crate::agent::dev_node_uri(&c.data_dir, i),
                labels: Default::default(),
                cpu_overcommit: None,
                memory_overcommit: None,
            })
            .collect();
    }
    c.validate()?;
    Ok(c)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LQX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,h2=warn,hyper=warn,tower=warn"));
    // Colour codes only on a terminal: a redirected log file or journald gets plain text
    // (and NO_COLOR / TERM=dumb turn them off everywhere).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    init_logging(config.log_format);
    create_private_dir(&config.data_dir)?;
    crate::agent::prepare_dev_nodes(&config)?;

    let db = config.database_url();
    let store = Store::open(&db)
        .await
        .with_context(|| format!("opening the database {}", lqx_core::store::redact(&db)))?;
    // SQLite is one server's database: hold its lock for the life of the process, which
    // also makes this process the only writer, so VM reads can be served from memory.
    let sqlite_lock = store.become_only_writer()?;
    // Every loop started below is registered here: ListBackgroundTasks and /metrics show them.
    let tasks = lqx_core::background::BackgroundTasks::new();
    let auth = crate::authn::start(&config, &store, args.dev, &tasks)
        .await
        .context("starting authentication")?;
    // Sequences go on from the high-water mark in the store: never reused after a restart.
    let events = crate::services::events::start_bus(&store)
        .await
        .context("restoring the event sequence")?;
    let compute = Compute::new(store.clone(), Hosts::default(), events.clone());
    compute.set_guest_cpu(args.guest_cpu_model.clone());
    compute
        .migrations
        .set_max_per_host(config.migration.max_per_host as usize);

    let sims = SimRegistry::new();
    if let Some(file) = &args.sim {
        load_sim(&compute, &sims, file).await?;
    }
    let dev_peers = lqx_core::driver::sim_load::DevPeers::default();
    for n in &config.nodes {
        let mut hv = if n.uri.starts_with(lqx_core::driver::sim::SCHEME) {
            let sim = sims.get_or_create(&n.uri, SimConfig::with_capacity(16, 65_536))?;
            Arc::new(sim) as Arc<dyn lqx_core::driver::Hypervisor>
        } else {
            lqx_core::driver::connect(&n.uri)
                .await
                .with_context(|| format!("connecting node {} at {}", n.name, n.uri))?
        };
        if args.dev && is_dev_node(&n.uri) {
            // The playground's guests do nothing: their usage is simulated demand.
            // `touch <data_dir>/<node>.off` cuts its power (HA demo); removing it restores it.
            let power = config.data_dir.join(format!("{}.off", n.name));
            hv = Arc::new(
                lqx_core::driver::sim_load::SimulatedDemand::new(
                    hv,
                    Arc::new(lqx_core::compute::in_process::VmLabelDemand(store.clone())),
                )
                .with_power_file(power)
                .with_peers(dev_peers.clone()),
            );
        }
        let mut reg = NodeRegistration::new(n.name.clone(), n.uri.clone());
        reg.labels = n.labels.clone();
        if let Some(o) = n.cpu_overcommit {
            reg.cpu_overcommit = o;
        }
        if let Some(o) = n.memory_overcommit {
            reg.memory_overcommit = o;
        }
        compute
            .attach_node(reg, hv)
            .await
            .with_context(|| format!("registering node {}", n.name))?;
    }

    // Operations a stopped control plane left half-done (see lqx_core::saga). As the only
    // writer every one is orphaned and settled now, before DRS settles the recommendations
    // they applied; on PostgreSQL the leader takes over those that stood still long enough.
    let recovery_age = if sqlite_lock.is_some() {
        std::time::Duration::ZERO
    } else {
        lqx_core::compute::TAKEOVER_AFTER
    };
    if sqlite_lock.is_some() {
        compute
            .recover_operations(recovery_age)
            .await
            .context("recovering unfinished operations")?;
    }

    // DRS: the file's `drs:` config until UpdateDRSConfig stores one (which then wins).
    // Leader election through the database's lease row (SQLite: this one replica leads).
    // DRS and HA run only on the leader.
    // With several replicas (PostgreSQL), a leader change must not make agents fence.
    if config.ha.enabled && store_kind(&db) == "postgresql" {
        lqx_core::handover::check_handover(&config.leader, &config.ha).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let holder = lqx_core::leader::holder_id();
    let leader = lqx_core::leader::LeaderHandle::start_in(store.clone(), config.leader.clone(), holder.clone(), &tasks);
    // Alerts (with webhooks) and the server's own host checks; DRS and HA raise them too.
    let alerts = crate::services::alert::start(&compute, args.dev, &tasks).context("starting alerts")?;
    tasks.adopt(&alerts.delivery_task());
    // Ended sessions, resolved alerts and the webhook delivery log past their retention.
    let _pruning = lqx_core::retention::spawn_in(&store, config.retention, &tasks);
    // Host power through the BMCs of `power:`; node records follow every change.
    let power =
        Arc::new(lqx_core::power::hosts::HostPower::new(compute.clone(), &config.power).context("the power: section")?);
    // A simulated host behind a BMC is powered as that BMC reports, as a real one would be.
    let linked = power
        .link_simulated_hosts(&sims)
        .await
        .context("linking simulated hosts to their BMCs")?;
    if !linked.is_empty() {
        tracing::info!(nodes = %linked.join(", "), "simulated hosts follow their BMC's power state");
    }
    let _power_loop = power.spawn_in(&tasks);
    let mut drs_options = lqx_core::drs::engine::EngineOptions {
        leader: Some(leader.leading()),
        // DPM puts hosts in standby and wakes them through the same controllers.
        power: Some(power.clone() as Arc<dyn lqx_core::power::NodePower>),
        alerts: Some(std::sync::Arc::new(alerts.clone())),
        ..Default::default()
    };
    if args.dev {
        // The playground shows a change of load within seconds, not minutes.
        drs_options.sample_interval = std::time::Duration::from_secs(2);
        drs_options.smoothing_half_life = std::time::Duration::from_secs(5);
    }
    let drs = lqx_core::drs::engine::DrsEngine::open(compute.clone(), config.drs.clone(), drs_options)
        .await
        .context("starting DRS")?;
    let _drs_loop = drs.spawn_in(&tasks);

    // Remote hosts: their agents' links, desired state rebuilt from the store.
    let mut timing = crate::agent::timing(&config);
    if args.dev {
        timing.usage_write_interval = timing.heartbeat_interval * 2;
        timing.node_write_interval = timing.heartbeat_interval * 2;
    }
    let agents = lqx_core::compute::agents::Agents::new(compute.clone(), timing);
    agents.restore().await.context("restoring agent nodes")?;
    let ha = crate::services::ha::start(&config, &compute, &leader, &agents, &alerts, &tasks)?;
    let _recovery = compute.spawn_recovery_in(leader.leading(), recovery_age, &tasks);
    // In-process hosts: observed and reconciled like agent hosts (same report, same intake).
    let _in_process = start_in_process(&compute, &agents, &alerts, timing.heartbeat_interval, &tasks).await?;
    let api = Api::new(
        config.clone(),
        Arc::new(VmApi {
            compute: compute.clone(),
            auth: auth.clone(),
        }),
        Arc::new(NodeApi {
            compute: compute.clone(),
            power,
        }),
        Arc::new(DrsApi { engine: drs.clone() }),
        auth.clone(),
        Arc::new(crate::services::agent::AgentApi { agents, ha: ha.clone() }),
        Arc::new(crate::services::ha::HaApi { manager: ha }),
        Arc::new(crate::services::alert::AlertApi {
            alerts,
            auth: auth.clone(),
            tasks: tasks.clone(),
        }),
        Arc::new(crate::services::events::EventApi { events: events.clone() }),
    )?;
    let tls = match &config.tls {
        Some(t) => Some(server::tls_acceptor(&t.cert, &t.key)?),
        None => None,
    };
    if !config.listen.ip().is_loopback() && tls.is_none() {
        tracing::warn!(listen = %config.listen, "serving plaintext on a non-loopback address (--insecure-listen)");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let advertise = args
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    if let Err(e) = lqx_core::handover::advertise(&store, &holder, &advertise).await {
        tracing::warn!(error = %e, "cannot record this replica's URL: agents heartbeating here are not redirected to it");
    }
    tracing::info!(%addr, database = %store_kind(&db), nodes = config.nodes.len(), "lqx-server listening");
    if let Some(m) = config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(m)
            .await
            .with_context(|| format!("listening on {m} for metrics"))?;
        eprintln!("lqx-server metrics on http://{}/metrics", metrics.local_addr()?);
        tokio::spawn(server::serve_metrics(api.clone(), metrics));
    }
    eprintln!("lqx-server listening on {scheme}://{addr}");
    server::serve(api, listener, tls, shutdown_signal()).await?;
    leader.shutdown().await;
    store.close().await;
    Ok(())
}

/// Starts the observe-and-reconcile loop of every host driven in this process.
async fn start_in_process(
    compute: &Compute,
    agents: &lqx_core::compute::agents::Agents,
    alerts: &lqx_core::alert::service::Alerts,
    interval: std::time::Duration,
    tasks: &lqx_core::background::BackgroundTasks,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use lqx_core::compute::in_process::{InProcessNode, InProcessOptions};
    let mut loops = Vec::new();
    for n in compute.store.all_nodes().await? {
        if agents.link(n.id).is_some() {
            continue;
        }
        let Ok(hv) = compute.hosts.get(n.id) else {
            continue;
        };
        let opts = InProcessOptions {
            interval,
            alerts: Some(alerts.clone()),
            ..Default::default()
        };
        let mut node = InProcessNode::new(compute.clone(), agents.clone(), n.id, hv, opts)
            .await
            .with_context(|| format!("observing node {}", n.name))?;
        // One pass before serving: a host that lost its domains (the test driver after a
        // restart) has them back before the first command.
        if let Err(e) = node.pass().await {
            tracing::warn!(node = %n.name, error = %e, "first pass over an in-process node failed");
        }
        loops.push(node.spawn_in(tasks));
    }
    Ok(loops)
}

/// A host `--dev` made (`dev_node_uri`): test driver or simulated.
fn is_dev_node(uri: &str) -> bool {
    uri.rsplit('/').next().is_some_and(|f| f.starts_with("dev-node-"))
}

fn store_kind(url: &str) -> &'static str {
    if url.starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    }
}

/// Loads a cluster file: one simulated host per node, and its VMs defined (and running
/// when the file gives them usage or says nothing) on their nodes.
async fn load_sim(compute: &Compute, sims: &SimRegistry, file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let cluster = lqx_core::cluster_file::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    lqx_core::compute::sim::load_cluster(compute, sims, &cluster)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

async fn shutdown_signal() {
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
    tracing::info!("shutdown signal received");
}

//! The libvirt driver (feature `libvirt`), over the `virt` crate: one connection per URI
//! (`qemu:///system` on a host, `qemu+ssh://host/system` remotely, `test:///path/node.xml` for
//! libvirt's test driver; never the shared `test:///default` in tests).
//!
//! libvirt calls block, so every call runs on tokio's blocking pool. libvirt errors are mapped
//! to [`DriverError`] kinds by their virErrorNumber; because drivers disagree on codes for
//! wrong-state calls (the test driver reports "domain not running" as an internal error), the
//! state rules of [`Hypervisor`] are checked here before acting. Disks are qcow2 volumes
//! created in their storage pool; a missing `default` pool is created as a directory pool in
//! /var/lib/libvirt/images. Live migration is peer-to-peer (`LIVE | PEER2PEER | PERSIST_DEST |
//! UNDEFINE_SOURCE`) to a destination URI that the source libvirtd can reach, on QEMU only:
//! elsewhere it is `Unsupported` so callers fall back to a cold migration.
//!
//! `virt` 0.4 rather than 0.5: 0.5 pins `libc` to one exact version, which would freeze every
//! other crate of the workspace on it; the API lqx uses is the same.

use std::{
    sync::{Arc, Mutex, Once},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use tracing::{debug, info, warn};
use virt::{
    connect::Connect, domain::Domain, error::ErrorNumber, storage_pool::StoragePool, storage_vol::StorageVol, sys,
};

use super::{
    DomainInfo, DomainSpec, DomainState, DomainStats, DriverError, DriverResult, Hypervisor, LiveOptions,
    MigrationProgress, NodeInfo, NodeStats, ProgressFn, VolumeInfo,
    xml::{self, DomainType},
};
use crate::model::VmId;

const MIB: u64 = 1024 * 1024;
/// How often shutdown waits re-check the domain, and migration progress is polled.
const POLL: Duration = Duration::from_millis(500);

/// Which libvirt driver is behind the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Qemu,
    Test,
    Other,
}

/// A connection, closed when the last user drops it (`virt::Connect` does not close itself).
struct Conn(Connect);

impl Drop for Conn {
    fn drop(&mut self) {
        if let Err(e) = self.0.close() {
            debug!(error = %e, "closing libvirt connection");
        }
    }
}

/// A libvirt host.
pub struct LibvirtHypervisor {
    uri: String,
    backend: Backend,
    domain_type: DomainType,
    /// Local host (no host part in the URI): node stats come from /proc, which sees the whole
    /// host and not only the domains.
    local: bool,
    /// The host CPU's model name from the capabilities, read once at connect: asking for the
    /// capabilities can make libvirtd re-probe QEMU (seconds) and node info is read at every
    /// heartbeat, whose reads are given up (but go on) after a short budget; they piled up.
    host_cpu: Option<String>,
    /// `None` after the connection was lost; reopened on the next call. Never reset for the
    /// test driver, whose state lives in the connection.
    conn: Mutex<Option<Arc<Conn>>>,
}

impl std::fmt::Debug for LibvirtHypervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibvirtHypervisor")
            .field("uri", &self.uri)
            .field("backend", &self.backend)
            .finish()
    }
}

/// Maps a libvirt error to a driver error kind.
pub fn map_error(e: virt::error::Error) -> DriverError {
    let msg = e.message().to_string();
    use ErrorNumber::*;
    match e.code() {
        NoDomain | NoStoragePool | NoStorageVolume | NoNetwork | NoInterface | NoNode | NoSecret | NoDomainSnapshot
        | NoNodeDevice | NoStorage => DriverError::NotFound(msg),
        DomExist | StorageVolExist | NetworkExist | StoragePoolBuilt => DriverError::AlreadyExists(msg),
        OperationInvalid => DriverError::InvalidState(msg),
        NoSupport | ArgumentUnsupported | OperationUnsupported | ConfigUnsupported | MigrateUnsafe
        | CpuIncompatible => DriverError::Unsupported(msg),
        NoConnect | InvalidConn | Rpc | AuthUnavailable | NoServer | NoClient | Ssh | Libssh | UnknownHost
        | GnutlsError => DriverError::Unavailable(msg),
        OperationTimeout | AgentUnresponsive | AgentCommandTimeout => DriverError::Timeout(msg),
        XmlError | XmlDetail | XmlInvalidSchema | InvalidArg | InvalidMac => DriverError::Invalid(msg),
        _ => DriverError::Other(msg),
    }
}

fn join_error(e: tokio::task::JoinError) -> DriverError {
    DriverError::Other(format!("libvirt call failed: {e}"))
}

fn state_of(s: sys::virDomainState) -> DomainState {
    match s {
        sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_BLOCKED => DomainState::Running,
        sys::VIR_DOMAIN_PAUSED | sys::VIR_DOMAIN_PMSUSPENDED => DomainState::Paused,
        sys::VIR_DOMAIN_SHUTDOWN => DomainState::ShuttingDown,
        sys::VIR_DOMAIN_CRASHED => DomainState::Crashed,
        _ => DomainState::Shutoff,
    }
}

fn lookup(c: &Connect, id: VmId) -> DriverResult<Domain> {
    Domain::lookup_by_uuid(c, id.as_uuid()).map_err(|e| match e.code() {
        ErrorNumber::NoDomain => DriverError::NotFound(format!("domain {id}")),
        _ => map_error(e),
    })
}

fn state(d: &Domain) -> DriverResult<DomainState> {
    d.get_state().map(|(s, _)| state_of(s)).map_err(map_error)
}

/// Looks a domain up and checks its state is one of `allowed`.
fn lookup_in(c: &Connect, id: VmId, allowed: &[DomainState], verb: &str) -> DriverResult<Domain> {
    let d = lookup(c, id)?;
    let s = state(&d)?;
    if !allowed.contains(&s) {
        return Err(DriverError::InvalidState(format!("domain {id} is {s}, cannot {verb}")));
    }
    Ok(d)
}

/// The pool by name, started if inactive; a missing `default` pool is created.
fn pool(c: &Connect, name: &str) -> DriverResult<StoragePool> {
    let p = match StoragePool::lookup_by_name(c, name) {
        Ok(p) => p,
        Err(e) if e.code() == ErrorNumber::NoStoragePool && name == "default" => {
            warn!("storage pool default is missing; creating it in /var/lib/libvirt/images");
            let p = StoragePool::define_xml(c, &xml::dir_pool_xml(name, "/var/lib/libvirt/images"), 0)
                .map_err(map_error)?;
            p.build(0).map_err(map_error)?;
            if let Err(e) = p.set_autostart(true) {
                debug!(error = %e, "storage pool autostart");
            }
            p
        }
        Err(e) if e.code() == ErrorNumber::NoStoragePool => {
            return Err(DriverError::NotFound(format!("storage pool {name}")));
        }
        Err(e) => return Err(map_error(e)),
    };
    if !p.is_active().map_err(map_error)? {
        p.create(0).map_err(map_error)?;
    }
    Ok(p)
}

/// Creates the spec's missing volumes; returns those it created (to undo on failure).
fn ensure_volumes(c: &Connect, spec: &DomainSpec) -> DriverResult<Vec<StorageVol>> {
    let mut created = Vec::new();
    let res = (|| {
        for d in &spec.disks {
            let p = pool(c, &d.pool)?;
            let name = xml::volume_name(spec.id, &d.name);
            match StorageVol::lookup_by_name(&p, &name) {
                Ok(_) => {}
                Err(e) if e.code() == ErrorNumber::NoStorageVolume => {
                    let v = StorageVol::create_xml(&p, &xml::volume_xml(&name, d.size_mib), 0).map_err(map_error)?;
                    created.push(v);
                }
                Err(e) => return Err(map_error(e)),
            }
        }
        Ok(())
    })();
    match res {
        Ok(()) => Ok(created),
        Err(e) => {
            delete_volumes(&created);
            Err(e)
        }
    }
}

fn delete_volumes(vols: &[StorageVol]) {
    for v in vols {
        if let Err(e) = v.delete(0) {
            warn!(error = %e, "could not delete a volume");
        }
    }
}

fn parse(d: &Domain) -> DriverResult<xml::ParsedDomain> {
    let text = d.get_xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).map_err(map_error)?;
    xml::parse_domain_xml(&text)
}

impl LibvirtHypervisor {
    /// Opens `uri`. Fails with `Unavailable` when libvirt cannot be reached.
    pub async fn connect(uri: &str) -> DriverResult<Self> {
        static QUIET: Once = Once::new();
        // libvirt prints every error to stderr by default; errors are returned instead.
        QUIET.call_once(virt::error::clear_error_callback);
        if uri.contains('\0') {
            return Err(DriverError::Invalid("libvirt URI contains a NUL byte".into()));
        }
        let owned = uri.to_string();
        let (conn, backend, domain_type, host_cpu) = tokio::task::spawn_blocking(move || -> DriverResult<_> {
            let conn = open(&owned)?;
            let ty = conn.0.get_type().map_err(map_error)?;
            let backend = match ty.to_ascii_uppercase().as_str() {
                "QEMU" => Backend::Qemu,
                "TEST" => Backend::Test,
                _ => Backend::Other,
            };
            let domain_type = match backend {
                Backend::Test => DomainType::Test,
                _ => pick_domain_type(&conn.0, &owned),
            };
            let host_cpu = conn.0.get_capabilities().ok().and_then(|caps| host_cpu_model(&caps));
            Ok((conn, backend, domain_type, host_cpu))
        })
        .await
        .map_err(join_error)??;
        let local = uri.split_once("://").is_some_and(|(_, rest)| rest.starts_with('/'));
        debug!(uri, ?backend, ?domain_type, "libvirt connected");
        Ok(LibvirtHypervisor {
            uri: uri.to_string(),
            backend,
            domain_type,
            local,
            host_cpu,
            conn: Mutex::new(Some(Arc::new(conn))),
        })
    }

    /// The persistent definition as libvirt has it (`virsh dumpxml --inactive`).
    pub async fn domain_xml(&self, id: VmId) -> DriverResult<String> {
        self.call(move |c| {
            lookup(c, id)?
                .get_xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
                .map_err(map_error)
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Conn>>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn connection(&self) -> DriverResult<Arc<Conn>> {
        if let Some(c) = self.lock().as_ref() {
            return Ok(c.clone());
        }
        let uri = self.uri.clone();
        let c = Arc::new(
            tokio::task::spawn_blocking(move || open(&uri))
                .await
                .map_err(join_error)??,
        );
        debug!(uri = %self.uri, "libvirt reconnected");
        *self.lock() = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on the blocking pool with the connection; forgets the connection when it was
    /// lost, so the next call reconnects.
    async fn call<T, F>(&self, f: F) -> DriverResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> DriverResult<T> + Send + 'static,
    {
        let conn = self.connection().await?;
        let alive = conn.clone();
        let res = tokio::task::spawn_blocking(move || f(&conn.0))
            .await
            .map_err(join_error)?;
        if let Err(DriverError::Unavailable(_)) = &res
            && self.backend != Backend::Test
        {
            let mut g = self.lock();
            if g.as_ref().is_some_and(|c| Arc::ptr_eq(c, &alive)) {
                warn!(uri = %self.uri, "libvirt connection lost");
                *g = None;
            }
        }
        res
    }

    async fn wait_inactive(&self, id: VmId, timeout: Duration) -> DriverResult<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.call(move |c| state(&lookup(c, id)?)).await?;
            if !s.is_active() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(DriverError::Timeout(format!(
                    "domain {id} did not shut down within {}",
                    humantime::format_duration(timeout)
                )));
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
    }

    async fn do_migrate(
        &self,
        id: VmId,
        dest: String,
        opts: LiveOptions,
        progress: Option<ProgressFn>,
    ) -> DriverResult<()> {
        if !self.supports_live_migration() {
            return Err(DriverError::Unsupported(format!("live migration from {}", self.uri)));
        }
        if dest.contains('\0') {
            return Err(DriverError::Invalid("destination URI contains a NUL byte".into()));
        }
        // A connection of its own: the migration call blocks for its whole length, and the
        // agent's other reads (its heartbeat) must not queue behind it.
        let uri = self.uri.clone();
        let (conn, dom) = tokio::task::spawn_blocking(move || {
            let conn = open(&uri)?;
            let dom = lookup_in(
                &conn.0,
                id,
                &[DomainState::Running, DomainState::Paused],
                "live-migrate",
            )?;
            Ok::<_, DriverError>((conn, dom))
        })
        .await
        .map_err(join_error)??;
        let _conn = Arc::new(conn);
        let dom = Arc::new(dom);
        let mut flags = sys::VIR_MIGRATE_LIVE
            | sys::VIR_MIGRATE_PEER2PEER
            | sys::VIR_MIGRATE_PERSIST_DEST
            | sys::VIR_MIGRATE_UNDEFINE_SOURCE
            | sys::VIR_MIGRATE_ABORT_ON_ERROR;
        if opts.tunnelled {
            flags |= sys::VIR_MIGRATE_TUNNELLED;
        }
        if opts.auto_converge {
            flags |= sys::VIR_MIGRATE_AUTO_CONVERGE;
        }
        if opts.post_copy {
            flags |= sys::VIR_MIGRATE_POSTCOPY;
        }
        let params = virt::domain::MigrateParameters {
            bandwidth: (opts.bandwidth_mib_per_sec > 0).then_some(opts.bandwidth_mib_per_sec),
            ..Default::default()
        };
        let mut job = tokio::task::spawn_blocking({
            let dom = dom.clone();
            move || {
                dom.migrate_to_uri3(Some(dest.as_str()), params, flags)
                    .map_err(map_error)
            }
        });
        let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
        let (mut deadline_hit, mut timed_out) = (false, false);
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                r = &mut job => {
                    let r = r.map_err(join_error)?;
                    return match r {
                        Err(e) if timed_out => Err(DriverError::Timeout(format!(
                            "live migration of {id} did not finish within {}; aborted, it keeps running here ({e})",
                            humantime::format_duration(opts.timeout.unwrap_or_default())
                        ))),
                        r => r,
                    };
                }
                _ = tick.tick() => {
                    if !deadline_hit && deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        deadline_hit = true;
                        let dom = dom.clone();
                        let post = opts.post_copy;
                        let r = tokio::task::spawn_blocking(move || {
                            if post { start_post_copy(&dom) } else { abort_job(&dom) }
                        })
                        .await;
                        // Post-copy finishes the migration: not a failure.
                        timed_out = !post;
                        warn!(vm = %id, post_copy = post, result = ?r.map(|r| r.map_err(|e| e.to_string())),
                            "live migration reached its timeout");
                    }
                    let Some(p) = &progress else { continue };
                    let dom = dom.clone();
                    // virDomainGetJobInfo, not GetJobStats: the `virt` crate's job-stats wrapper
                    // builds a Vec from a null pointer when the job has just ended (and aborts).
                    let stats = tokio::task::spawn_blocking(move || dom.get_job_info()).await;
                    if let Ok(Ok(s)) = stats
                        && s.r#type != sys::VIR_DOMAIN_JOB_NONE as i32
                        && let (Some(done), Some(total)) = (s.data_processed, s.data_total)
                    {
                        p(MigrationProgress {
                            processed_bytes: done,
                            total_bytes: total,
                            remaining_bytes: s.data_remaining.unwrap_or(0),
                        });
                    }
                }
            }
        }
    }
}

/// `virDomainAbortJob` (not wrapped by the `virt` crate).
fn abort_job(d: &Domain) -> DriverResult<()> {
    // SAFETY: `d` owns a valid domain pointer for the duration of the call; libvirt does not
    // keep it.
    #[allow(unsafe_code)]
    let r = unsafe { sys::virDomainAbortJob(d.as_ptr()) };
    if r < 0 {
        return Err(map_error(virt::error::Error::last_error()));
    }
    Ok(())
}

/// `virDomainMigrateStartPostCopy` (not wrapped by the `virt` crate).
fn start_post_copy(d: &Domain) -> DriverResult<()> {
    // SAFETY: as in `abort_job`.
    #[allow(unsafe_code)]
    let r = unsafe { sys::virDomainMigrateStartPostCopy(d.as_ptr(), 0) };
    if r < 0 {
        return Err(map_error(virt::error::Error::last_error()));
    }
    Ok(())
}

/// KVM when libvirt says it can run KVM guests here, else QEMU (TCG). The domain
/// capabilities, not the host capabilities, are asked: they fail or lack `kvm` when /dev/kvm
/// exists but is not usable by libvirt's QEMU (wrong group, nested virtualization off), where
/// a KVM domain would only fail at start ("Could not access KVM kernel module").
fn pick_domain_type(c: &Connect, uri: &str) -> DomainType {
    match c.get_domain_capabilities(None, None, None, Some("kvm"), 0) {
        Ok(caps) if domcaps_allow_kvm(&caps) => DomainType::Kvm,
        Ok(_) => {
            info!(
                uri,
                "KVM is not usable through libvirt here; guests run on QEMU TCG (slow)"
            );
            DomainType::Qemu
        }
        Err(e) => {
            info!(uri, reason = %e.message(), "KVM is not usable through libvirt here; guests run on QEMU TCG (slow)");
            DomainType::Qemu
        }
    }
}

/// Whether a domain-capabilities document (asked for virttype kvm) says KVM guests can run.
fn domcaps_allow_kvm(caps: &str) -> bool {
    caps.contains("<domain>kvm</domain>")
}

fn open(uri: &str) -> DriverResult<Conn> {
    Connect::open(Some(uri))
        .map(Conn)
        .map_err(|e| DriverError::Unavailable(format!("cannot connect to {uri}: {}", e.message())))
}

fn node_info_of(c: &Connect, host_cpu: Option<String>) -> DriverResult<NodeInfo> {
    let n = c.get_node_info().map_err(map_error)?;
    // The host CPU's model name (what host-model guests get), else the architecture.
    let model = host_cpu.unwrap_or(n.model);
    Ok(NodeInfo {
        hostname: c.get_hostname().map_err(map_error)?,
        cpus: n.cpus,
        memory_mib: n.memory / 1024,
        cpu_model: model,
    })
}

/// `vendor model` of `<host><cpu>` in a capabilities document.
fn host_cpu_model(caps: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(caps).ok()?;
    let cpu = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("host"))?
        .children()
        .find(|n| n.has_tag_name("cpu"))?;
    let text = |name: &str| {
        cpu.children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let model = text("model")?;
    Some(match text("vendor") {
        Some(v) => format!("{v} {model}"),
        None => model.to_string(),
    })
}

/// Busy CPU time and memory from /proc (local hosts). USER_HZ is 100 on every Linux lqx runs on.
fn proc_stats() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mem = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_proc(&stat, &mem)
}

/// `(cpu busy ns, memory total MiB, memory used MiB)`.
fn parse_proc(stat: &str, meminfo: &str) -> Option<(u64, u64, u64)> {
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse::<u64>().ok())
    };
    let total = field("MemTotal:")?;
    let avail = field("MemAvailable:")?;
    Some((busy * 10_000_000, total / 1024, total.saturating_sub(avail) / 1024))
}

impl Hypervisor for LibvirtHypervisor {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn supports_live_migration(&self) -> bool {
        self.backend == Backend::Qemu
    }

    fn node_info(&self) -> BoxFuture<'_, DriverResult<NodeInfo>> {
        let host_cpu = self.host_cpu.clone();
        self.call(move |c| node_info_of(c, host_cpu)).boxed()
    }

    fn node_stats(&self) -> BoxFuture<'_, DriverResult<NodeStats>> {
        let local = self.local && self.backend != Backend::Test;
        self.call(move |c| {
            if local && let Some((busy, total, used)) = proc_stats() {
                return Ok(NodeStats {
                    cpu_busy_ns: busy,
                    memory_total_mib: total,
                    memory_used_mib: used,
                });
            }
            // Remote or test driver: what the domains use.
            let total = c.get_node_info().map_err(map_error)?.memory / 1024;
            let (mut busy, mut used) = (0u64, 0u64);
            for d in c
                .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                .map_err(map_error)?
            {
                if let Ok(i) = d.get_info() {
                    busy += i.cpu_time;
                    used += i.memory / 1024;
                }
            }
            Ok(NodeStats {
                cpu_busy_ns: busy,
                memory_total_mib: total,
                memory_used_mib: used.min(total),
            })
        })
        .boxed()
    }

    fn list_domains(&self) -> BoxFuture<'_, DriverResult<Vec<DomainInfo>>> {
        self.call(|c| {
            let mut out = Vec::new();
            for d in c.list_all_domains(0).map_err(map_error)? {
                // A domain undefined between the listing and these calls is skipped.
                let (Ok(uuid), Ok(name), Ok(s)) = (d.get_uuid(), d.get_name(), state(&d)) else {
                    continue;
                };
                let title = d
                    .get_metadata(sys::VIR_DOMAIN_METADATA_TITLE as i32, None, 0)
                    .ok()
                    .filter(|t| !t.is_empty());
                out.push(DomainInfo {
                    id: VmId::from(uuid),
                    managed: name.starts_with(xml::DOMAIN_PREFIX),
                    name: title.unwrap_or(name),
                    state: s,
                });
            }
            out.sort_by_key(|d| d.id);
            Ok(out)
        })
        .boxed()
    }

    fn domain_state(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainState>> {
        self.call(move |c| state(&lookup(c, id)?)).boxed()
    }

    fn domain_spec(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainSpec>> {
        self.call(move |c| {
            let p = parse(&lookup(c, id)?)?;
            let mut spec = p.spec;
            for (disk, (pool_name, vol)) in spec.disks.iter_mut().zip(&p.volumes) {
                let size = StoragePool::lookup_by_name(c, pool_name)
                    .and_then(|p| StorageVol::lookup_by_name(&p, vol))
                    .and_then(|v| v.get_info());
                if let Ok(info) = size {
                    disk.size_mib = info.capacity / MIB;
                }
            }
            Ok(spec)
        })
        .boxed()
    }

    fn domain_stats(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainStats>> {
        self.call(move |c| {
            let d = lookup(c, id)?;
            let i = d.get_info().map_err(map_error)?;
            let s = state_of(i.state);
            let mut used = if s.is_active() { i.memory / 1024 } else { 0 };
            if s.is_active()
                && let Ok(stats) = d.memory_stats(0)
            {
                let tag = |t: u32| stats.iter().find(|m| m.tag == t).map(|m| m.val);
                // The guest's own view (balloon driver), else the QEMU process's RSS.
                if let (Some(avail), Some(unused)) = (
                    tag(sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE),
                    tag(sys::VIR_DOMAIN_MEMORY_STAT_UNUSED),
                ) {
                    used = avail.saturating_sub(unused) / 1024;
                } else if let Some(rss) = tag(sys::VIR_DOMAIN_MEMORY_STAT_RSS) {
                    used = rss / 1024;
                }
            }
            Ok(DomainStats {
                id,
                state: s,
                vcpus: i.nr_virt_cpu,
                cpu_time_ns: i.cpu_time,
                memory_mib: i.max_mem / 1024,
                memory_used_mib: used,
            })
        })
        .boxed()
    }

    fn define(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        let ty = self.domain_type;
        async move {
            spec.validate()?;
            self.call(move |c| {
                match lookup(c, spec.id) {
                    Ok(_) => return Err(DriverError::AlreadyExists(format!("domain {}", spec.id))),
                    Err(DriverError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                let created = ensure_volumes(c, &spec)?;
                if let Err(e) = Domain::define_xml(c, &xml::domain_xml(&spec, ty)) {
                    delete_volumes(&created);
                    return Err(map_error(e));
                }
                Ok(())
            })
            .await
        }
        .boxed()
    }

    fn update(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        let ty = self.domain_type;
        async move {
            spec.validate()?;
            self.call(move |c| {
                lookup(c, spec.id)?;
                let created = ensure_volumes(c, &spec)?;
                if let Err(e) = Domain::define_xml(c, &xml::domain_xml(&spec, ty)) {
                    delete_volumes(&created);
                    return Err(map_error(e));
                }
                Ok(())
            })
            .await
        }
        .boxed()
    }

    fn start(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        self.call(move |c| {
            let d = lookup_in(c, id, &[DomainState::Shutoff, DomainState::Crashed], "start")?;
            d.create().map(drop).map_err(map_error)
        })
        .boxed()
    }

    fn shutdown(&self, id: VmId, timeout: Duration) -> BoxFuture<'_, DriverResult<()>> {
        async move {
            self.call(move |c| {
                let d = lookup_in(c, id, &[DomainState::Running], "shut down")?;
                d.shutdown().map(drop).map_err(map_error)
            })
            .await?;
            self.wait_inactive(id, timeout).await
        }
        .boxed()
    }

    fn destroy(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        self.call(move |c| {
            use DomainState::*;
            let d = lookup_in(c, id, &[Running, Paused, ShuttingDown], "destroy")?;
            d.destroy().map_err(map_error)
        })
        .boxed()
    }

    fn reboot(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        self.call(move |c| {
            let d = lookup_in(c, id, &[DomainState::Running], "reboot")?;
            d.reboot(0).map_err(map_error)
        })
        .boxed()
    }

    fn suspend(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        self.call(move |c| {
            let d = lookup_in(c, id, &[DomainState::Running], "suspend")?;
            d.suspend().map(drop).map_err(map_error)
        })
        .boxed()
    }

    fn resume(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        self.call(move |c| {
            let d = lookup_in(c, id, &[DomainState::Paused], "resume")?;
            d.resume().map(drop).map_err(map_error)
        })
        .boxed()
    }

    fn undefine(&self, id: VmId, remove_volumes: bool) -> BoxFuture<'_, DriverResult<()>> {
        self.call(move |c| {
            use DomainState::*;
            let d = lookup_in(c, id, &[Shutoff, Crashed], "undefine")?;
            let volumes = if remove_volumes { parse(&d)?.volumes } else { Vec::new() };
            d.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
                .map_err(map_error)?;
            for (pool_name, vol) in volumes {
                match StoragePool::lookup_by_name(c, &pool_name).and_then(|p| StorageVol::lookup_by_name(&p, &vol)) {
                    Ok(v) => v.delete(0).map_err(map_error)?,
                    Err(e) if matches!(e.code(), ErrorNumber::NoStorageVolume | ErrorNumber::NoStoragePool) => {}
                    Err(e) => return Err(map_error(e)),
                }
            }
            Ok(())
        })
        .boxed()
    }

    fn list_volumes(&self, pool_name: String) -> BoxFuture<'_, DriverResult<Vec<VolumeInfo>>> {
        self.call(move |c| {
            let p = StoragePool::lookup_by_name(c, &pool_name).map_err(|e| match e.code() {
                ErrorNumber::NoStoragePool => DriverError::NotFound(format!("storage pool {pool_name}")),
                _ => map_error(e),
            })?;
            let mut out = Vec::new();
            for v in p.list_all_volumes(0).map_err(map_error)? {
                out.push(VolumeInfo {
                    name: v.get_name().map_err(map_error)?,
                    capacity_mib: v.get_info().map_err(map_error)?.capacity / MIB,
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .boxed()
    }

    fn migrate_live(
        &self,
        id: VmId,
        dest_uri: String,
        opts: LiveOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'_, DriverResult<()>> {
        self.do_migrate(id, dest_uri, opts, progress).boxed()
    }

    fn abort_migration(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        self.call(move |c| abort_job(&lookup(c, id)?)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        let stat = "cpu  100 5 50 1000 10 1 2 3 0 0\ncpu0 1 2 3 4\n";
        let mem = "MemTotal:       8388608 kB\nMemFree:  100 kB\nMemAvailable:   4194304 kB\n";
        let (busy, total, used) = parse_proc(stat, mem).unwrap();
        assert_eq!(busy, (100 + 5 + 50 + 1 + 2 + 3) * 10_000_000);
        assert_eq!(total, 8192);
        assert_eq!(used, 4096);
        assert!(parse_proc("", mem).is_none());
    }

    #[test]
    fn kvm_is_chosen_only_when_the_domain_capabilities_allow_it() {
        let kvm = "<domainCapabilities>\n  <path>/usr/bin/qemu-system-x86_64</path>\n  <domain>kvm</domain>\n</domainCapabilities>";
        assert!(domcaps_allow_kvm(kvm));
        let tcg = "<domainCapabilities>\n  <domain>qemu</domain>\n</domainCapabilities>";
        assert!(!domcaps_allow_kvm(tcg));
    }

    #[test]
    fn host_cpu_model_comes_from_the_capabilities() {
        let caps = "<capabilities><host><uuid>x</uuid><cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model>\
                    <vendor>Intel</vendor></cpu></host><guest/></capabilities>";
        assert_eq!(host_cpu_model(caps).as_deref(), Some("Intel Skylake-Client-IBRS"));
        assert_eq!(host_cpu_model("<capabilities><host/></capabilities>"), None);
    }

    #[test]
    fn states() {
        assert_eq!(state_of(sys::VIR_DOMAIN_RUNNING), DomainState::Running);
        assert_eq!(state_of(sys::VIR_DOMAIN_PMSUSPENDED), DomainState::Paused);
        assert_eq!(state_of(sys::VIR_DOMAIN_NOSTATE), DomainState::Shutoff);
    }
}

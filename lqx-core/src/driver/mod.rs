//! Hypervisor drivers: the [`Hypervisor`] trait every backend implements, the simulated
//! hypervisor ([`sim::SimHypervisor`], in memory), the libvirt driver (`libvirt.rs`, feature
//! `libvirt`), libvirt domain XML ([`xml`]) and migration ([`migrate`]).
//!
//! The backend is chosen at run time from a URI with [`connect`]: `sim://NAME` gives a
//! simulated host from the process-wide [`sim::SimRegistry::global`]; anything else
//! (`qemu:///system`, `test:///path/node.xml`, `qemu+ssh://host/system`) is a libvirt URI.
//!
//! # Why boxed futures
//! The control plane and the agent hold the backend as `Arc<dyn Hypervisor>`, so the trait must
//! be dyn-compatible; `async fn` in traits is not. Each method therefore returns a
//! [`BoxFuture`]. The alternative, sync methods that callers wrap in `spawn_blocking`, would
//! push the blocking concern onto every caller and would stop the simulated hypervisor from
//! using `tokio::time` (paused-time tests of shutdown timeouts and migration progress). The
//! libvirt driver keeps its blocking C calls on the blocking pool itself.
//!
//! # Domain identity
//! A domain is identified by its libvirt UUID, which is the VM id. Its libvirt name is
//! `lqx-<uuid>` ([`xml::domain_name`]): always unique and safe, whatever the display name is;
//! the display name is kept (escaped) in `<title>`. Domains whose name does not start with
//! `lqx-` are reported with `managed: false` and must never be touched by reconciliation.

pub mod agent_link;
pub mod error;
pub mod migrate;
pub mod sim;
pub mod sim_load;
pub mod xml;

#[cfg(feature = "libvirt")]
pub mod libvirt;

use std::{sync::Arc, time::Duration};

pub use error::{DriverError, DriverErrorKind};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::VmId;

pub type DriverResult<T> = Result<T, DriverError>;

/// Called with migration progress while a live migration runs.
pub type ProgressFn = Arc<dyn Fn(MigrationProgress) + Send + Sync>;

/// What a domain should look like. The id is the libvirt UUID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSpec {
    pub id: VmId,
    /// Display name (free text, escaped into `<title>`); not the libvirt domain name.
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// A serial port on a pty, also the domain's console.
    #[serde(default = "yes")]
    pub serial_console: bool,
    #[serde(default)]
    pub on_crash: CrashAction,
    /// The virtual CPU the guest sees (the cluster's setting).
    #[serde(default)]
    pub cpu: GuestCpu,
}

/// The virtual CPU model of guests, one setting for the cluster: live migration needs the
/// guest's CPU to exist on the target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestCpu {
    /// The host's CPU model as libvirt names it (KVM only; QEMU's default under TCG). Fast,
    /// but a guest moves live only between hosts of the same CPU model.
    #[default]
    HostModel,
    /// A named QEMU model (e.g. `Haswell-noTSX`, `x86-64-v2`) every host must support: guests
    /// move live between unlike hosts, with the model's features only.
    Model(String),
}

impl GuestCpu {
    /// `host-model`, or a model name.
    pub fn parse(s: &str) -> DriverResult<Self> {
        if s == "host-model" {
            return Ok(GuestCpu::HostModel);
        }
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(DriverError::Invalid(format!(
                "CPU model {s:?}: host-model or a model name of 1-64 letters, digits, '-', '_', '.'"
            )));
        }
        Ok(GuestCpu::Model(s.to_string()))
    }

    pub fn name(&self) -> &str {
        match self {
            GuestCpu::HostModel => "host-model",
            GuestCpu::Model(m) => m,
        }
    }
}

fn yes() -> bool {
    true
}

/// A qcow2 volume in a libvirt storage pool, attached as a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// Short name, unique within the domain: 1-32 of `a-z 0-9 - _`. The volume is named
    /// `lqx-<vm id>-<name>.qcow2` ([`xml::volume_name`]).
    pub name: String,
    pub size_mib: u64,
    /// Storage pool; `default` (a directory pool) unless told otherwise.
    #[serde(default = "default_pool")]
    pub pool: String,
    #[serde(default)]
    pub bus: DiskBus,
}

pub fn default_pool() -> String {
    "default".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskBus {
    #[default]
    Virtio,
    Sata,
    Scsi,
}

impl DiskBus {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Sata => "sata",
            DiskBus::Scsi => "scsi",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "virtio" => Some(DiskBus::Virtio),
            "sata" => Some(DiskBus::Sata),
            "scsi" => Some(DiskBus::Scsi),
            _ => None,
        }
    }
}

/// A network interface on a libvirt network or a host bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicSpec {
    pub source: NicSource,
    /// `52:54:00:xx:xx:xx` style; `None` derives a stable one from the VM id and the index
    /// ([`NicSpec::effective_mac`]), so redefining never changes the guest's MAC.
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub model: NicModel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicSource {
    Network(String),
    Bridge(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicModel {
    #[default]
    Virtio,
    E1000,
    Rtl8139,
}

impl NicModel {
    pub fn as_str(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::Rtl8139 => "rtl8139",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "virtio" => Some(NicModel::Virtio),
            "e1000" => Some(NicModel::E1000),
            "rtl8139" => Some(NicModel::Rtl8139),
            _ => None,
        }
    }
}

impl NicSpec {
    /// The MAC the domain gets: the configured one, or one derived from the VM id and the
    /// NIC's index (locally administered QEMU prefix 52:54:00).
    pub fn effective_mac(&self, vm: VmId, index: usize) -> String {
        if let Some(mac) = &self.mac {
            return mac.to_ascii_lowercase();
        }
        let b = vm.as_uuid().into_bytes();
        // The last bytes of a v7 uuid are random; mix the index in so NICs differ.
        let x = b[13] ^ ((index as u8).wrapping_mul(0x3b));
        format!("52:54:00:{x:02x}:{:02x}:{:02x}", b[14], b[15].wrapping_add(index as u8))
    }
}

/// What libvirt does when the guest crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashAction {
    /// Stop it: the control plane sees it stopped and its HA policy decides (the default).
    #[default]
    Destroy,
    Restart,
    /// Keep the crashed guest for inspection.
    Preserve,
}

impl CrashAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CrashAction::Destroy => "destroy",
            CrashAction::Restart => "restart",
            CrashAction::Preserve => "preserve",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "destroy" => Some(CrashAction::Destroy),
            "restart" => Some(CrashAction::Restart),
            "preserve" => Some(CrashAction::Preserve),
            _ => None,
        }
    }
}

impl DomainSpec {
    /// A spec with no disks or NICs and a serial console.
    pub fn new(id: VmId, name: impl Into<String>, vcpus: u32, memory_mib: u64) -> Self {
        DomainSpec {
            id,
            name: name.into(),
            vcpus,
            memory_mib,
            disks: Vec::new(),
            nics: Vec::new(),
            serial_console: true,
            on_crash: CrashAction::default(),
            cpu: GuestCpu::default(),
        }
    }

    /// The spec with every NIC's MAC filled in, as the hypervisor reports it back.
    pub fn with_effective_macs(mut self) -> Self {
        let id = self.id;
        for (i, n) in self.nics.iter_mut().enumerate() {
            n.mac = Some(n.effective_mac(id, i));
        }
        self
    }

    /// Checks what libvirt would reject, or what could break the XML or a volume path.
    pub fn validate(&self) -> DriverResult<()> {
        let bad = |why: String| Err(DriverError::Invalid(why));
        if self.name.is_empty() || self.name.chars().count() > 256 {
            return bad("name must be 1-256 characters".into());
        }
        if self.name.chars().any(char::is_control) {
            return bad("name must not contain control characters".into());
        }
        if !(1..=512).contains(&self.vcpus) {
            return bad(format!("vcpus {} out of range 1-512", self.vcpus));
        }
        if !(1..=16 * 1024 * 1024).contains(&self.memory_mib) {
            return bad(format!("memory_mib {} out of range 1-16777216", self.memory_mib));
        }
        if let GuestCpu::Model(m) = &self.cpu {
            GuestCpu::parse(m)?;
        }
        if self.disks.len() > 26 {
            return bad("at most 26 disks".into());
        }
        for (i, d) in self.disks.iter().enumerate() {
            if !is_short_name(&d.name, 32) {
                return bad(format!("disk name {:?} must be 1-32 of a-z 0-9 - _", d.name));
            }
            if self.disks[..i].iter().any(|o| o.name == d.name) {
                return bad(format!("disk name {:?} used twice", d.name));
            }
            if d.size_mib == 0 {
                return bad(format!("disk {} has size 0", d.name));
            }
            if !is_libvirt_object_name(&d.pool) {
                return bad(format!("storage pool name {:?} is not valid", d.pool));
            }
        }
        for (i, n) in self.nics.iter().enumerate() {
            let name = match &n.source {
                NicSource::Network(s) | NicSource::Bridge(s) => s,
            };
            if !is_libvirt_object_name(name) {
                return bad(format!("nic {i}: network/bridge name {name:?} is not valid"));
            }
            if let Some(mac) = &n.mac
                && !is_unicast_mac(mac)
            {
                return bad(format!("nic {i}: {mac:?} is not a unicast MAC address"));
            }
        }
        Ok(())
    }
}

fn is_short_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Pool, network and bridge names: printable ASCII without '/' or whitespace.
fn is_libvirt_object_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

fn is_unicast_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

/// A domain's power state, as libvirt reports it (collapsed to what lqx acts on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainState {
    Running,
    Paused,
    /// An ACPI shutdown is in progress.
    ShuttingDown,
    Shutoff,
    Crashed,
}

impl DomainState {
    /// The string used on the wire (`DomainStatus.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::Running => "running",
            DomainState::Paused => "paused",
            DomainState::ShuttingDown => "shutting_down",
            DomainState::Shutoff => "shutoff",
            DomainState::Crashed => "crashed",
        }
    }
    /// Whether the domain holds host resources (a QEMU process exists).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            DomainState::Running | DomainState::Paused | DomainState::ShuttingDown
        )
    }
}

impl std::fmt::Display for DomainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One domain as listed by the hypervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    pub id: VmId,
    /// The display name (the `<title>`), or the libvirt name when there is none.
    pub name: String,
    pub state: DomainState,
    /// Created by lqx (libvirt name `lqx-<uuid>`). Others must be left alone.
    pub managed: bool,
}

/// The host, as the hypervisor describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub hostname: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub cpu_model: String,
}

/// Host counters. CPU is cumulative busy time over all CPUs, so a caller computes
/// `cpu % = Δcpu_busy_ns / (Δwall_ns × cpus)` between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    pub cpu_busy_ns: u64,
    pub memory_total_mib: u64,
    pub memory_used_mib: u64,
}

/// Per-domain counters; `cpu_time_ns` is cumulative over all vCPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainStats {
    pub id: VmId,
    pub state: DomainState,
    pub vcpus: u32,
    pub cpu_time_ns: u64,
    pub memory_mib: u64,
    pub memory_used_mib: u64,
}

/// A storage volume in a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    pub capacity_mib: u64,
}

/// Live-migration progress (memory pages copied so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MigrationProgress {
    pub processed_bytes: u64,
    pub total_bytes: u64,
    /// Still to copy (dirtied pages make this grow again while the guest writes).
    #[serde(default)]
    pub remaining_bytes: u64,
}

/// How a live migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LiveOptions {
    /// Bandwidth cap in MiB/s; 0: unlimited.
    #[serde(default)]
    pub bandwidth_mib_per_sec: u64,
    /// After this long the migration is aborted (the domain keeps running on the source), or
    /// with `post_copy` switched to post-copy so it finishes. None: no limit.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Throttle the guest's vCPUs when it dirties memory faster than it is copied.
    #[serde(default)]
    pub auto_converge: bool,
    /// Allow switching to post-copy at the timeout (the guest runs on the target while the
    /// rest of its memory is fetched; a network failure then loses the guest).
    #[serde(default)]
    pub post_copy: bool,
    /// Carry the migration stream inside the libvirtd connection (one port, its TLS or SSH
    /// security) instead of a direct QEMU-to-QEMU connection.
    #[serde(default)]
    pub tunnelled: bool,
}

impl MigrationProgress {
    /// 0-100; 0 while the total is not known yet.
    pub fn percent(&self) -> u32 {
        if self.total_bytes == 0 {
            return 0;
        }
        ((self.processed_bytes.min(self.total_bytes) as u128 * 100) / self.total_bytes as u128) as u32
    }
}

/// A hypervisor host: the simulated one or libvirt. All domain operations take the VM id.
///
/// State rules every backend keeps (checked by the contract suite): `define` needs the id to
/// be free (`AlreadyExists`); `start` needs shutoff or crashed; `shutdown`, `reboot` and
/// `suspend` need running; `resume` needs paused; `destroy` needs an active domain; `undefine`
/// needs an inactive one; any other state gives `InvalidState`, an unknown id `NotFound`.
pub trait Hypervisor: Send + Sync + 'static {
    /// The URI this backend was opened with (`sim://node-1`, `qemu:///system`, ...).
    fn uri(&self) -> &str;

    /// Whether [`Hypervisor::migrate_live`] can work here; when false it returns Unsupported
    /// and callers use [`migrate::ColdMigration`].
    fn supports_live_migration(&self) -> bool;

    /// Why a live migration from or to this host cannot work now (None: it can), in words for
    /// an operator.
    fn live_migration_blocker(&self) -> Option<String> {
        (!self.supports_live_migration()).then(|| format!("{} has no live-migration support", self.uri()))
    }

    fn node_info(&self) -> BoxFuture<'_, DriverResult<NodeInfo>>;
    fn node_stats(&self) -> BoxFuture<'_, DriverResult<NodeStats>>;

    fn list_domains(&self) -> BoxFuture<'_, DriverResult<Vec<DomainInfo>>>;
    fn domain_state(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainState>>;
    /// The definition read back from the hypervisor (disk sizes from the volumes).
    fn domain_spec(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainSpec>>;
    fn domain_stats(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainStats>>;

    /// Defines a new (shut off) domain, creating its missing volumes; existing volumes of the
    /// same name are reused (shared storage, or a retry).
    fn define(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>>;
    /// Replaces the definition of an existing domain (effective at its next boot); creates
    /// volumes for new disks. Volumes of removed disks are kept.
    fn update(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>>;
    fn start(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>>;
    /// ACPI shutdown, waiting up to `timeout` for the domain to be off; `Timeout` after that
    /// (the domain keeps running: the caller may [`Hypervisor::destroy`] it).
    fn shutdown(&self, id: VmId, timeout: Duration) -> BoxFuture<'_, DriverResult<()>>;
    /// Hard power off.
    fn destroy(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>>;
    fn reboot(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>>;
    fn suspend(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>>;
    fn resume(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>>;
    /// Removes the definition; with `remove_volumes`, also deletes its disks' volumes.
    fn undefine(&self, id: VmId, remove_volumes: bool) -> BoxFuture<'_, DriverResult<()>>;

    fn list_volumes(&self, pool: String) -> BoxFuture<'_, DriverResult<Vec<VolumeInfo>>>;

    /// Live peer-to-peer migration to the host at `dest_uri`: afterwards the domain runs and is
    /// defined there and is gone here. `progress` is called while memory is copied. On any
    /// failure (including the timeout of `opts`) the domain keeps running here.
    fn migrate_live(
        &self,
        id: VmId,
        dest_uri: String,
        opts: LiveOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'_, DriverResult<()>>;

    /// Aborts the live migration of `id` running from this host (the domain stays here).
    /// NotFound when none runs.
    fn abort_migration(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        let msg = format!("aborting the migration of {id} on {}", self.uri());
        Box::pin(async move { Err(DriverError::Unsupported(msg)) })
    }
}

/// Opens the backend for `uri`: `sim://NAME` from [`sim::SimRegistry::global`] (created with
/// [`sim::SimConfig::default`] capacity on first use), anything else with libvirt.
pub async fn connect(uri: &str) -> DriverResult<Arc<dyn Hypervisor>> {
    connect_with(uri, sim::SimRegistry::global()).await
}

/// Like [`connect`], with simulated hosts from `registry` (tests use a private one).
pub async fn connect_with(uri: &str, registry: &sim::SimRegistry) -> DriverResult<Arc<dyn Hypervisor>> {
    if uri.starts_with(sim::SCHEME) {
        return Ok(Arc::new(registry.get_or_create(uri, sim::SimConfig::default())?));
    }
    open_libvirt(uri).await
}

#[cfg(feature = "libvirt")]
async fn open_libvirt(uri: &str) -> DriverResult<Arc<dyn Hypervisor>> {
    Ok(Arc::new(libvirt::LibvirtHypervisor::connect(uri).await?))
}

#[cfg(not(feature = "libvirt"))]
async fn open_libvirt(uri: &str) -> DriverResult<Arc<dyn Hypervisor>> {
    Err(DriverError::Unsupported(format!(
        "{uri}: this build has no libvirt support (feature \"libvirt\")"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DomainSpec {
        let mut s = DomainSpec::new(VmId::new(), "web-1", 2, 1024);
        s.disks.push(DiskSpec {
            name: "root".into(),
            size_mib: 1024,
            pool: default_pool(),
            bus: DiskBus::Virtio,
        });
        s.nics.push(NicSpec {
            source: NicSource::Network("default".into()),
            mac: None,
            model: NicModel::Virtio,
        });
        s
    }

    #[test]
    fn validation_rejects_what_libvirt_would() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.name = "a<b&\"c'".into();
        assert!(s.validate().is_ok(), "markup characters are escaped, not refused");
        s.name = "a\nb".into();
        assert_eq!(s.validate().unwrap_err().kind(), DriverErrorKind::Invalid);
        let mut s = spec();
        s.disks[0].name = "../etc".into();
        assert_eq!(s.validate().unwrap_err().kind(), DriverErrorKind::Invalid);
        let mut s = spec();
        s.disks.push(s.disks[0].clone());
        assert!(s.validate().unwrap_err().message().contains("twice"));
        let mut s = spec();
        s.nics[0].mac = Some("01:00:5e:00:00:01".into());
        assert!(s.validate().is_err(), "multicast MAC");
        let mut s = spec();
        s.vcpus = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn derived_macs_are_stable_distinct_and_valid() {
        let s = spec();
        let a = s.nics[0].effective_mac(s.id, 0);
        assert_eq!(a, s.nics[0].effective_mac(s.id, 0));
        assert_ne!(a, s.nics[0].effective_mac(s.id, 1));
        assert!(is_unicast_mac(&a), "{a}");
        assert!(a.starts_with("52:54:00:"));
    }

    #[test]
    fn progress_percent() {
        let p = MigrationProgress {
            processed_bytes: 50,
            total_bytes: 200,
            remaining_bytes: 150,
        };
        assert_eq!(p.percent(), 25);
        assert_eq!(MigrationProgress::default().percent(), 0);
    }

    #[tokio::test]
    async fn connect_picks_sim_by_scheme() {
        let reg = sim::SimRegistry::new();
        let h = connect_with("sim://n1", &reg).await.unwrap();
        assert_eq!(h.uri(), "sim://n1");
        #[cfg(not(feature = "libvirt"))]
        {
            let e = connect_with("qemu:///system", &reg).await.err().unwrap();
            assert_eq!(e.kind(), DriverErrorKind::Unsupported);
        }
    }
}

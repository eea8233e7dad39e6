//! Simulated demand: a real driver whose usage counters are replaced by a demand profile per
//! VM, for playgrounds (`lqx-server --dev`) where guests do nothing and the libvirt test
//! driver reports no load. Everything else (domains, states, migration) is the wrapped
//! driver's. The profile is read from the VM's labels:
//! - `sim-load-cpu=P`: the VM keeps P % of its vCPUs busy (default [`DEFAULT_CPU_PERCENT`]);
//! - `sim-load-memory=P`: the guest uses P % of its memory (default [`DEFAULT_MEMORY_PERCENT`]).
//!
//! CPU time accrues on the tokio clock at the demanded rate while the domain is active, so
//! the usage measured from it (CPU % from CPU-time deltas, as for any host) is the demand.
//! The node's busy time and memory use are the sums over its active domains.
//!
//! Simulated live migration between the hosts of one [`DevPeers`] set
//! ([`SimulatedDemand::with_peers`]): the libvirt test driver cannot live-migrate, and its
//! guests run nothing, so moving one stops nothing; the move is made with the driver's cold
//! steps (define on the target, start, remove here). Only the `--dev` playground uses it.
//!
//! A simulated power switch ([`SimulatedDemand::with_power_file`]): while that file exists
//! the host answers nothing (every call fails Unavailable), as a host that lost power; its
//! domains are still there when the file is removed, as after a power cut that HA fenced.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use super::{
    DomainInfo, DomainSpec, DomainState, DomainStats, DriverResult, Hypervisor, LiveOptions, NodeInfo, NodeStats,
    ProgressFn, VolumeInfo,
};
use crate::model::VmId;

pub const CPU_LABEL: &str = "sim-load-cpu";
pub const MEMORY_LABEL: &str = "sim-load-memory";
pub const DEFAULT_CPU_PERCENT: f64 = 5.0;
pub const DEFAULT_MEMORY_PERCENT: f64 = 25.0;

/// What a VM demands, in percent of its vCPUs and of its memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

impl Default for Demand {
    fn default() -> Self {
        Demand {
            cpu_percent: DEFAULT_CPU_PERCENT,
            memory_percent: DEFAULT_MEMORY_PERCENT,
        }
    }
}

/// The demand a VM's labels ask for; a missing or unreadable label keeps the default.
pub fn demand_of(labels: &BTreeMap<String, String>) -> Demand {
    let pct = |k: &str, d: f64| {
        labels
            .get(k)
            .and_then(|v| v.trim().trim_end_matches('%').parse::<f64>().ok())
            .filter(|p| p.is_finite())
            .map_or(d, |p| p.clamp(0.0, 100.0))
    };
    Demand {
        cpu_percent: pct(CPU_LABEL, DEFAULT_CPU_PERCENT),
        memory_percent: pct(MEMORY_LABEL, DEFAULT_MEMORY_PERCENT),
    }
}

/// Where the demand of a VM comes from (the VM records, in the server).
pub trait DemandSource: Send + Sync + 'static {
    fn demand(&self, vm: VmId) -> BoxFuture<'_, Demand>;
}

#[derive(Default)]
struct Counters {
    /// Per domain: when its CPU time was last brought up to date, and the time accrued.
    cpu: HashMap<VmId, (Instant, f64)>,
    /// All CPU time accrued on this host (stays when a domain leaves: a cumulative counter
    /// never goes back).
    node_busy: f64,
}

/// A driver with simulated demand. See the module documentation.
pub struct SimulatedDemand {
    inner: Arc<dyn Hypervisor>,
    source: Arc<dyn DemandSource>,
    counters: Mutex<Counters>,
    power_file: Option<std::path::PathBuf>,
    peers: Option<DevPeers>,
}

/// The playground hosts that migrate to each other, by URI (the wrapped drivers).
#[derive(Clone, Default)]
pub struct DevPeers(Arc<Mutex<HashMap<String, Arc<dyn Hypervisor>>>>);

impl DevPeers {
    pub fn add(&self, hv: Arc<dyn Hypervisor>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(hv.uri().to_string(), hv);
    }

    fn get(&self, uri: &str) -> Option<Arc<dyn Hypervisor>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(uri).cloned()
    }
}

impl SimulatedDemand {
    pub fn new(inner: Arc<dyn Hypervisor>, source: Arc<dyn DemandSource>) -> Self {
        SimulatedDemand {
            inner,
            source,
            counters: Mutex::default(),
            power_file: None,
            peers: None,
        }
    }

    /// Live migration (simulated, see the module documentation) to the hosts of `peers`;
    /// adds this host's driver to them.
    pub fn with_peers(mut self, peers: DevPeers) -> Self {
        peers.add(self.inner.clone());
        self.peers = Some(peers);
        self
    }

    /// While `file` exists the host is "powered off" (see the module documentation).
    pub fn with_power_file(mut self, file: std::path::PathBuf) -> Self {
        self.power_file = Some(file);
        self
    }

    fn off<T: Send + 'static>(&self) -> Option<BoxFuture<'static, DriverResult<T>>> {
        let f = self.power_file.as_ref().filter(|f| f.exists())?;
        let msg = format!("simulated power failure: {} exists", f.display());
        Some(async move { Err(super::DriverError::Unavailable(msg)) }.boxed())
    }

    /// Brings a domain's CPU time up to now and returns its stats with the demand applied.
    async fn simulated(&self, real: DomainStats) -> DomainStats {
        let d = self.source.demand(real.id).await;
        let now = Instant::now();
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let e = c.cpu.entry(real.id).or_insert((now, 0.0));
        let mut gained = 0.0;
        if real.state.is_active() {
            let elapsed: Duration = now - e.0;
            gained = elapsed.as_nanos() as f64 * f64::from(real.vcpus.max(1)) * d.cpu_percent / 100.0;
            e.1 += gained;
        }
        e.0 = now;
        let cpu_time_ns = e.1 as u64;
        c.node_busy += gained;
        DomainStats {
            cpu_time_ns,
            memory_used_mib: if real.state.is_active() {
                (real.memory_mib as f64 * d.memory_percent / 100.0) as u64
            } else {
                0
            },
            ..real
        }
    }
}

impl Hypervisor for SimulatedDemand {
    fn uri(&self) -> &str {
        self.inner.uri()
    }
    fn supports_live_migration(&self) -> bool {
        self.peers.is_some() || self.inner.supports_live_migration()
    }
    fn live_migration_blocker(&self) -> Option<String> {
        if self.peers.is_some() {
            return None;
        }
        self.inner.live_migration_blocker()
    }
    fn node_info(&self) -> BoxFuture<'_, DriverResult<NodeInfo>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.node_info()
    }
    fn node_stats(&self) -> BoxFuture<'_, DriverResult<NodeStats>> {
        if let Some(e) = self.off() {
            return e;
        }
        async move {
            let real = self.inner.node_stats().await?;
            let mut used = 0u64;
            for d in self.inner.list_domains().await? {
                if !d.managed || !d.state.is_active() {
                    continue;
                }
                if let Ok(s) = self.domain_stats(d.id).await {
                    used += s.memory_used_mib;
                }
            }
            let busy = self.counters.lock().unwrap_or_else(|p| p.into_inner()).node_busy;
            Ok(NodeStats {
                cpu_busy_ns: busy as u64,
                memory_total_mib: real.memory_total_mib,
                memory_used_mib: used.min(real.memory_total_mib),
            })
        }
        .boxed()
    }
    fn list_domains(&self) -> BoxFuture<'_, DriverResult<Vec<DomainInfo>>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.list_domains()
    }
    fn domain_state(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainState>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.domain_state(id)
    }
    fn domain_spec(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainSpec>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.domain_spec(id)
    }
    fn domain_stats(&self, id: VmId) -> BoxFuture<'_, DriverResult<DomainStats>> {
        if let Some(e) = self.off() {
            return e;
        }
        async move {
            let real = self.inner.domain_stats(id).await?;
            Ok(self.simulated(real).await)
        }
        .boxed()
    }
    fn define(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.define(spec)
    }
    fn update(&self, spec: DomainSpec) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.update(spec)
    }
    fn start(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.start(id)
    }
    fn shutdown(&self, id: VmId, timeout: Duration) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.shutdown(id, timeout)
    }
    fn destroy(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.destroy(id)
    }
    fn reboot(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.reboot(id)
    }
    fn suspend(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.suspend(id)
    }
    fn resume(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.resume(id)
    }
    fn undefine(&self, id: VmId, remove_volumes: bool) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.undefine(id, remove_volumes)
    }
    fn list_volumes(&self, pool: String) -> BoxFuture<'_, DriverResult<Vec<VolumeInfo>>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.list_volumes(pool)
    }
    fn migrate_live(
        &self,
        id: VmId,
        dest_uri: String,
        opts: LiveOptions,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        let Some(peers) = &self.peers else {
            return self.inner.migrate_live(id, dest_uri, opts, progress);
        };
        let target = peers.get(&dest_uri);
        async move {
            let target = target.ok_or_else(|| {
                super::DriverError::NotFound(format!("{dest_uri} is not a playground host to migrate to"))
            })?;
            let spec = self.inner.domain_spec(id).await?;
            super::migrate::cold_migrate(self.inner.as_ref(), target.as_ref(), &spec, true).await
        }
        .boxed()
    }
    fn abort_migration(&self, id: VmId) -> BoxFuture<'_, DriverResult<()>> {
        if let Some(e) = self.off() {
            return e;
        }
        self.inner.abort_migration(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::sim::{SimConfig, SimHypervisor};

    struct Fixed(Demand);
    impl DemandSource for Fixed {
        fn demand(&self, _vm: VmId) -> BoxFuture<'_, Demand> {
            let d = self.0;
            async move { d }.boxed()
        }
    }

    #[test]
    fn labels_give_the_demand() {
        let mut l = BTreeMap::new();
        assert_eq!(demand_of(&l), Demand::default());
        l.insert(CPU_LABEL.into(), "90".into());
        l.insert(MEMORY_LABEL.into(), "150".into());
        assert_eq!(
            demand_of(&l),
            Demand {
                cpu_percent: 90.0,
                memory_percent: 100.0
            }
        );
        l.insert(CPU_LABEL.into(), "lots".into());
        assert_eq!(demand_of(&l).cpu_percent, DEFAULT_CPU_PERCENT);
    }

    #[tokio::test(start_paused = true)]
    async fn measured_usage_is_the_demand() {
        let sim = Arc::new(SimHypervisor::new("sim://d", SimConfig::with_capacity(16, 65_536)).unwrap());
        let spec = DomainSpec::new(VmId::new(), "a", 4, 1024);
        sim.define(spec.clone()).await.unwrap();
        sim.start(spec.id).await.unwrap();
        let hv = SimulatedDemand::new(
            sim.clone(),
            Arc::new(Fixed(Demand {
                cpu_percent: 50.0,
                memory_percent: 80.0,
            })),
        );
        let a = hv.domain_stats(spec.id).await.unwrap();
        let n0 = hv.node_stats().await.unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        let b = hv.domain_stats(spec.id).await.unwrap();
        let pct = crate::agent::metrics::cpu_percent(a.cpu_time_ns, b.cpu_time_ns, Duration::from_secs(10), 4);
        assert!((pct - 50.0).abs() < 0.01, "{pct}");
        assert_eq!(b.memory_used_mib, 819);
        let n1 = hv.node_stats().await.unwrap();
        let node_pct = crate::agent::metrics::cpu_percent(n0.cpu_busy_ns, n1.cpu_busy_ns, Duration::from_secs(10), 16);
        assert!((node_pct - 12.5).abs() < 0.01, "{node_pct}");
        assert_eq!(n1.memory_used_mib, 819);
        assert_eq!(hv.uri(), "sim://d", "the wrapped driver's URI (migration uses it)");
    }
}

//! Observation: what a node reports at each heartbeat, read from its hypervisor. Node usage
//! (CPU % from the busy-time delta since the last sample, memory), and every domain's state
//! and usage (CPU % from the CPU-time delta over its vCPUs, memory), with the failures of the
//! last reconcile pass attached to their domains. The agent process and the control plane's
//! in-process nodes (`crate::compute::in_process`) observe with this same code.
//!
//! A read that outlasts its budget is not dropped: it goes on as a task (a libvirt call
//! cannot be taken back), and no read of the same kind starts until it ends, so a slow
//! libvirtd gets one call of each kind at a time, not one more at every heartbeat.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::time::Instant;
use tracing::debug;

use super::{control::error_kind_str, metrics::cpu_percent};
use crate::{
    api::node::v1 as pb,
    driver::{DomainState, DriverError, Hypervisor},
    model::{NodeId, VmId},
};

/// A hypervisor read for the heartbeat that takes longer is given up (the call goes on in its
/// blocking worker, abandoned): a slow or hung hypervisor must not delay heartbeats (the lease
/// is about the agent; the report says the hypervisor is stuck). The budget per read is half
/// the heartbeat interval, within these bounds.
pub const HYPERVISOR_READ_TIMEOUT: Duration = Duration::from_secs(5);
const HYPERVISOR_READ_MIN: Duration = Duration::from_millis(250);

/// The CPU counters of the previous sample, for the deltas.
#[derive(Default)]
pub struct Sampler {
    /// The host's CPU count (it does not change while the node runs).
    cpus: Option<u32>,
    /// The last complete domain list, reported again while the hypervisor is slow.
    domains_seen: Option<Vec<crate::driver::DomainInfo>>,
    node: Option<(Instant, u64)>,
    domains: HashMap<VmId, (Instant, u64)>,
    /// Reads that outlasted their budget and are still running.
    info_read: Option<InFlight<crate::driver::NodeInfo>>,
    stats_read: Option<InFlight<crate::driver::NodeStats>>,
    list_read: Option<InFlight<Vec<crate::driver::DomainInfo>>>,
    domain_reads: HashMap<VmId, InFlight<crate::driver::DomainStats>>,
}

/// A hypervisor read still running after its budget, and since when.
struct InFlight<T> {
    since: Instant,
    task: tokio::task::JoinHandle<Result<T, DriverError>>,
}

/// One read of a kind: none is started while the last one of that kind is in flight (the
/// answer then says since when); one that takes longer than `limit` is kept in `slot`.
async fn read<T: Send + 'static>(
    slot: &mut Option<InFlight<T>>,
    limit: Duration,
    what: &str,
    start: impl FnOnce() -> futures::future::BoxFuture<'static, Result<T, DriverError>>,
) -> Result<T, DriverError> {
    let mut f = match slot.take() {
        Some(f) if !f.task.is_finished() => {
            let since = Instant::now().saturating_duration_since(f.since);
            *slot = Some(f);
            return Err(DriverError::Timeout(format!(
                "{what} in flight for {} (libvirtd is slow or hung; not asked again until it answers)",
                humantime::format_duration(Duration::from_secs(since.as_secs()))
            )));
        }
        // Ended since: its answer is stale, ask again.
        _ => InFlight {
            since: Instant::now(),
            task: tokio::spawn(start()),
        },
    };
    match tokio::time::timeout(limit, &mut f.task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(DriverError::Other(format!("{what}: {e}"))),
        Err(_) => {
            *slot = Some(f);
            Err(DriverError::Timeout(format!(
                "{what}: the hypervisor did not answer within {} (the call is still in flight: libvirtd is slow or hung)",
                humantime::format_duration(limit)
            )))
        }
    }
}

impl Sampler {
    /// A report of `node` as `hv` shows it at `now`: node and domain usage and states, and
    /// `errors` (failures of the last reconcile pass). `hypervisor_error` is set (and no
    /// domain listed) when the hypervisor cannot list its domains; `hypervisor_slow` when it
    /// did not answer in time and the last list is reported again. All reads together stay
    /// within one heartbeat `interval` (domain stats are skipped beyond it).
    pub async fn observe(
        &mut self,
        hv: &Arc<dyn Hypervisor>,
        node: NodeId,
        errors: &HashMap<VmId, DriverError>,
        interval: Duration,
        now: Instant,
    ) -> pb::HeartbeatRequest {
        let mut req = pb::HeartbeatRequest {
            node_id: node.to_string(),
            ..Default::default()
        };
        let budget = (interval / 2).clamp(HYPERVISOR_READ_MIN, HYPERVISOR_READ_TIMEOUT);
        let stats_until = now + interval.max(HYPERVISOR_READ_MIN * 2);
        if self.cpus.is_none() {
            let h = hv.clone();
            self.cpus = read(&mut self.info_read, budget, "node info", move || {
                Box::pin(async move { h.node_info().await })
            })
            .await
            .ok()
            .map(|i| i.cpus);
        }
        let cpus = self.cpus.unwrap_or(1);
        let h = hv.clone();
        match read(&mut self.stats_read, budget, "node stats", move || {
            Box::pin(async move { h.node_stats().await })
        })
        .await
        {
            Ok(s) => {
                // Timed when the counter was read, not when the pass began: a slow read
                // before it would otherwise skew the rate.
                let read_at = Instant::now();
                if let Some((t, busy)) = self.node {
                    req.cpu_percent = cpu_percent(busy, s.cpu_busy_ns, read_at - t, cpus);
                }
                self.node = Some((read_at, s.cpu_busy_ns));
                req.cpu_busy_ns = s.cpu_busy_ns;
                req.memory_used_mib = s.memory_used_mib;
                req.memory_total_mib = s.memory_total_mib;
            }
            Err(e) => debug!(error = %e, "node stats unavailable"),
        }
        let h = hv.clone();
        let listed = read(&mut self.list_read, budget, "domain list", move || {
            Box::pin(async move { h.list_domains().await })
        })
        .await;
        let domains = match listed {
            Ok(d) => {
                self.domains_seen = Some(d.clone());
                d
            }
            // Slow, not broken (a define or start holds libvirt up): the last list, marked.
            Err(DriverError::Timeout(e)) if self.domains_seen.is_some() => {
                req.hypervisor_slow = e;
                self.domains_seen.clone().unwrap_or_default()
            }
            Err(e) => {
                req.hypervisor_error = e.to_string();
                return req;
            }
        };
        let mut seen = HashMap::new();
        for d in &domains {
            let mut st = pb::DomainStatus {
                vm_id: d.id.to_string(),
                state: d.state.as_str().into(),
                name: d.name.clone(),
                managed: d.managed,
                ..Default::default()
            };
            if d.managed
                && d.state.is_active()
                && Instant::now() < stats_until
                && let Ok(s) = {
                    let mut slot = self.domain_reads.remove(&d.id);
                    let (h, id) = (hv.clone(), d.id);
                    let r = read(&mut slot, budget, "domain stats", move || {
                        Box::pin(async move { h.domain_stats(id).await })
                    })
                    .await;
                    if let Some(f) = slot {
                        self.domain_reads.insert(d.id, f);
                    }
                    r
                }
            {
                let read_at = Instant::now();
                if let Some((t, ns)) = self.domains.get(&d.id) {
                    st.cpu_percent = cpu_percent(*ns, s.cpu_time_ns, read_at - *t, s.vcpus);
                }
                self.domains.insert(d.id, (read_at, s.cpu_time_ns));
                st.cpu_time_ns = s.cpu_time_ns;
                st.vcpus = s.vcpus;
                st.memory_mib = s.memory_mib;
                st.memory_used_mib = s.memory_used_mib;
            }
            if let Some(e) = errors.get(&d.id) {
                st.error = e.message().to_string();
                st.error_kind = error_kind_str(e).into();
            }
            seen.insert(d.id, d.state);
            req.domains.push(st);
        }
        self.domains.retain(|id, _| seen.get(id).is_some_and(|s| s.is_active()));
        self.domain_reads
            .retain(|id, f| seen.contains_key(id) || !f.task.is_finished());
        // Failures on domains that do not exist (a define that failed).
        for (id, e) in errors {
            if !seen.contains_key(id) {
                req.domains.push(pb::DomainStatus {
                    vm_id: id.to_string(),
                    error: e.message().to_string(),
                    error_kind: error_kind_str(e).into(),
                    ..Default::default()
                });
            }
        }
        req
    }
}

/// The states a report lists, by domain (domains with only an error are left out).
pub fn reported_states(req: &pb::HeartbeatRequest) -> HashMap<VmId, DomainState> {
    req.domains
        .iter()
        .filter_map(|d| {
            let id = VmId::parse("vm_id", &d.vm_id).ok()?;
            Some((id, super::control::parse_state(&d.state)?))
        })
        .collect()
}

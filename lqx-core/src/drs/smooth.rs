//! Smoothing of measured usage, so that a burst does not trigger migrations. The engine feeds
//! every heartbeat sample in and builds the snapshot's usage from the smoothed values.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::model::{NodeId, VmId};
use crate::placement::{ClusterSnapshot, NodeUsageSample, VmUsageSample};

/// A time-aware exponentially weighted moving average: a sample `half_life` old weighs half
/// as much as a fresh one, whatever the spacing of the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Smoother {
    half_life_secs: f64,
    value: Option<f64>,
    last: Option<DateTime<Utc>>,
}

impl Smoother {
    pub fn new(half_life: std::time::Duration) -> Self {
        Smoother {
            half_life_secs: half_life.as_secs_f64().max(1e-3),
            value: None,
            last: None,
        }
    }

    /// Adds a sample taken at `at` and returns the smoothed value. Samples older than the
    /// last one are ignored.
    pub fn observe(&mut self, at: DateTime<Utc>, sample: f64) -> f64 {
        let v = match (self.value, self.last) {
            (Some(v), Some(last)) => {
                if at < last {
                    return v;
                }
                let dt = at.signed_duration_since(last).num_milliseconds() as f64 / 1000.0;
                let alpha = 1.0 - 0.5f64.powf(dt / self.half_life_secs);
                v + alpha * (sample - v)
            }
            _ => sample,
        };
        self.value = Some(v);
        self.last = Some(at);
        v
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Smoothed CPU and memory per node and per VM.
#[derive(Debug, Clone)]
pub struct UsageSmoother {
    half_life: std::time::Duration,
    nodes: HashMap<NodeId, (Smoother, Smoother)>,
    vms: HashMap<VmId, (Smoother, Smoother)>,
}

impl UsageSmoother {
    pub fn new(half_life: std::time::Duration) -> Self {
        UsageSmoother {
            half_life,
            nodes: HashMap::new(),
            vms: HashMap::new(),
        }
    }

    pub fn observe_node(&mut self, node: NodeId, at: DateTime<Utc>, cpu_percent: f64, memory_used_mib: u64) {
        let h = self.half_life;
        let (c, m) = self
            .nodes
            .entry(node)
            .or_insert_with(|| (Smoother::new(h), Smoother::new(h)));
        c.observe(at, cpu_percent);
        m.observe(at, memory_used_mib as f64);
    }

    pub fn observe_vm(&mut self, vm: VmId, at: DateTime<Utc>, cpu_percent: f64, memory_used_mib: u64) {
        let h = self.half_life;
        let (c, m) = self
            .vms
            .entry(vm)
            .or_insert_with(|| (Smoother::new(h), Smoother::new(h)));
        c.observe(at, cpu_percent);
        m.observe(at, memory_used_mib as f64);
    }

    /// Forgets nodes and VMs that are no longer in the cluster.
    pub fn retain(&mut self, snapshot: &ClusterSnapshot) {
        self.nodes.retain(|id, _| snapshot.nodes.iter().any(|n| n.id == *id));
        self.vms.retain(|id, _| snapshot.vms.iter().any(|v| v.id == *id));
    }

    /// Writes the smoothed usage into the snapshot (nodes and VMs without samples keep theirs).
    pub fn apply(&self, snapshot: &mut ClusterSnapshot) {
        for n in &mut snapshot.nodes {
            if let Some((c, m)) = self.nodes.get(&n.id)
                && let (Some(c), Some(m)) = (c.value(), m.value())
            {
                n.usage = Some(NodeUsageSample {
                    cpu_percent: c,
                    memory_used_mib: m.round() as u64,
                });
            }
        }
        for v in &mut snapshot.vms {
            if let Some((c, m)) = self.vms.get(&v.id)
                && let (Some(c), Some(m)) = (c.value(), m.value())
            {
                v.usage = Some(VmUsageSample {
                    cpu_percent: c,
                    memory_used_mib: m.round() as u64,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_moves_the_average_only_a_little() {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let mut s = Smoother::new(Duration::from_secs(60));
        for i in 0..30 {
            s.observe(t0 + chrono::Duration::seconds(10 * i), 40.0);
        }
        // One 10 s burst to 100 %.
        let v = s.observe(t0 + chrono::Duration::seconds(300), 100.0);
        assert!(v > 40.0 && v < 50.0, "{v}");
        // A sample one half-life later moves it half way.
        let mut h = Smoother::new(Duration::from_secs(60));
        h.observe(t0, 0.0);
        let v = h.observe(t0 + chrono::Duration::seconds(60), 100.0);
        assert!((v - 50.0).abs() < 1e-9, "{v}");
        // Out-of-order samples are ignored.
        assert_eq!(h.observe(t0, 1000.0), v);
    }

    #[test]
    fn apply_writes_smoothed_usage() {
        use crate::placement::testutil::*;
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let mut snap = snapshot(vec![node(1, 8, 8192)], vec![vm(1, Some(1), 2, 2048)]);
        let mut u = UsageSmoother::new(Duration::from_secs(60));
        u.observe_vm(vm_id(1), t0, 50.0, 1024);
        u.observe_node(node_id(1), t0, 20.0, 3000);
        u.apply(&mut snap);
        assert_eq!(
            snap.vms[0].usage,
            Some(VmUsageSample {
                cpu_percent: 50.0,
                memory_used_mib: 1024
            })
        );
        assert_eq!(
            snap.nodes[0].usage,
            Some(NodeUsageSample {
                cpu_percent: 20.0,
                memory_used_mib: 3000
            })
        );
    }
}

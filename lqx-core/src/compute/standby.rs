//! Placements that fit only on a host in DPM standby. A create or start that finds no room on
//! the hosts that are on, but would fit a host in standby, records that host here and asks
//! DPM (through the waker the DRS engine registers) to run at once: DPM then plans POWER_ON
//! for it, applied at automation partial and full, recommended at manual. The request
//! itself fails at once with resource_exhausted saying so, with a retry-after of about a
//! host's boot: a create never blocks for minutes on a host booting, and the client (or
//! operator) retries once it is on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::NodeId;

/// How long a recorded placement keeps asking DPM for its host (a client that gave up does
/// not keep a host awake for ever).
const DEMAND_TTL: Duration = Duration::from_secs(15 * 60);
/// Seconds a client is told to wait: about a host's boot.
pub const BOOT_RETRY_SECS: u64 = 120;

/// One placement that fits only on `node`, in standby.
#[derive(Debug, Clone, PartialEq)]
pub struct StandbyDemand {
    pub node: NodeId,
    pub node_name: String,
    pub vm_name: String,
}

/// What the waker did with a demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeOutcome {
    /// DPM runs now and powers the host on (automation partial or full).
    PoweringOn,
    /// DPM runs now and recommends POWER_ON (automation manual): an operator applies it.
    Recommended,
    /// DPM is off (or no DRS engine runs here): nothing powers the host on by itself.
    NotManaged,
    /// DPM is on, but another replica leads and runs it: demands are this replica's own, so
    /// the leader does not see this one.
    NotLeader,
}

type Waker = Arc<dyn Fn(&StandbyDemand) -> WakeOutcome + Send + Sync>;

/// Placement demand for hosts in standby (cheap to clone; shared by `Compute` and the DRS
/// engine).
#[derive(Clone, Default)]
pub struct StandbyDemands {
    open: Arc<Mutex<Vec<(StandbyDemand, Instant)>>>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl StandbyDemands {
    /// Registers what wakes DPM (the DRS engine does, when it opens).
    pub fn set_waker(&self, waker: impl Fn(&StandbyDemand) -> WakeOutcome + Send + Sync + 'static) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(waker));
    }

    /// Records `d` (refreshing an earlier one for the same VM and host) and wakes DPM.
    pub fn record(&self, d: StandbyDemand) -> WakeOutcome {
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.retain(|(o, _)| !(o.node == d.node && o.vm_name == d.vm_name));
            open.push((d.clone(), Instant::now()));
        }
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).clone();
        waker.map_or(WakeOutcome::NotManaged, |w| w(&d))
    }

    /// The demands recorded within the last 15 minutes (older ones are dropped).
    pub fn current(&self) -> Vec<StandbyDemand> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, at)| at.elapsed() < DEMAND_TTL);
        open.iter().map(|(d, _)| d.clone()).collect()
    }

    /// Drops the demands for `node` (it is on: creates place there by themselves).
    pub fn clear(&self, node: NodeId) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(d, _)| d.node != node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demand_is_kept_once_per_vm_and_host_and_wakes_through_the_waker() {
        let s = StandbyDemands::default();
        let node = NodeId::new();
        let d = StandbyDemand {
            node,
            node_name: "node-4".into(),
            vm_name: "web".into(),
        };
        assert_eq!(s.record(d.clone()), WakeOutcome::NotManaged);
        s.set_waker(|d| {
            if d.node_name == "node-4" {
                WakeOutcome::PoweringOn
            } else {
                WakeOutcome::NotManaged
            }
        });
        assert_eq!(s.record(d.clone()), WakeOutcome::PoweringOn);
        assert_eq!(s.current(), vec![d]);
        s.clear(node);
        assert!(s.current().is_empty());
    }
}

//! The agent and its fence process (`crate::fence`): the start-up timing check, what each
//! pet says, and the clean stop.
//!
//! The agent keeps its own watchdog too: with a fence process both fire at the same deadline
//! (`self_fence_after` after the send of the last renewed heartbeat), whichever runs.

use std::{collections::HashSet, path::Path, time::Duration};

use tokio::time::Instant;
use tracing::{info, warn};

use super::{Identity, Watchdog, identity::AgentError};
use crate::{
    fence::{FenceClient, PetSource, Request, check_timing},
    model::VmId,
};

/// The fence client, after checking that the fence process can act within the lease. A
/// fence process that is not up yet is not fatal (the agent reports fencing as degraded and
/// keeps trying); settings that cannot work are.
pub async fn connect(path: &Path, interval: Duration, ident: &Identity) -> Result<FenceClient, AgentError> {
    let lease_ttl = Duration::from_secs(u64::from(ident.lease_ttl_secs.max(1)));
    let sfa = Duration::from_secs(u64::from(ident.self_fence_after_secs.max(1)));
    check_timing(interval, lease_ttl, sfa, None).map_err(AgentError::FenceTiming)?;
    let client = FenceClient::new(path);
    match client.request(&Request::Status).await {
        Ok(reply) => {
            let wd = reply.watchdog_timeout_ms.map(Duration::from_millis);
            check_timing(interval, lease_ttl, sfa, wd).map_err(AgentError::FenceTiming)?;
            info!(socket = %path.display(), status = %crate::fence::client::status_of(&reply), "fence process reached");
        }
        Err(e) => warn!(
            socket = %path.display(),
            error = %e,
            "the fence process is not reachable yet: fencing is degraded until it is"
        ),
    }
    Ok(client)
}

/// The pet for the agent's state at `now`: its watchdog's deadline (now, when it already
/// fired or was ordered), the lease's end `lease_ttl - self_fence_after` later, its HA
/// domains. `renewed`: a heartbeat was answered in this run.
pub fn pet_source(w: &Watchdog, renewed: bool, ha: &HashSet<VmId>, lease_ttl: Duration, now: Instant) -> PetSource {
    let fence_in = if w.is_fenced() {
        Duration::ZERO
    } else {
        w.deadline().saturating_duration_since(now)
    };
    let mut vms: Vec<VmId> = ha.iter().copied().collect();
    vms.sort();
    PetSource {
        fence_in,
        lease_left: fence_in + lease_ttl.saturating_sub(w.self_fence_after()),
        vms,
        renewed,
    }
}

/// A clean stop: without HA domains the fence process stops watching; with some it keeps
/// its deadline (the control plane restarts them elsewhere once the lease lapses, so they
/// must be gone by then unless the agent comes back).
pub async fn stop(f: &FenceClient, ha: &HashSet<VmId>) {
    if ha.is_empty() {
        // Twice: the pet loop was stopped mid-request maybe, leaving the connection unusable.
        if f.disarm().await.is_err()
            && let Err(e) = f.disarm().await
        {
            warn!(error = %e, "cannot disarm the fence process");
        }
    } else {
        warn!(
            domains = ha.len(),
            "stopping with HA-protected domains: the fence process destroys them at the lease deadline unless the agent is back"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pets_carry_the_watchdog_deadline_and_the_lease_end() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_secs(33), t0);
        let vm = VmId::new();
        let ha = HashSet::from([vm]);
        let p = pet_source(&w, false, &ha, Duration::from_secs(35), t0 + Duration::from_secs(3));
        assert_eq!(p.fence_in, Duration::from_secs(30));
        assert_eq!(p.lease_left, Duration::from_secs(32));
        assert_eq!(p.vms, vec![vm]);
        assert!(!p.renewed);
        w.answered(t0 + Duration::from_secs(1), true);
        let p = pet_source(&w, true, &ha, Duration::from_secs(35), t0 + Duration::from_secs(3));
        assert_eq!(p.fence_in, Duration::ZERO, "ordered to fence: fence now");
    }
}

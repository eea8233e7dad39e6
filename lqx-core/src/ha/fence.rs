//! Proof of fencing: when the control plane may believe a host can no longer run a VM.
//!
//! The rule, in plain words:
//! - The control plane grants an agent a lease at every heartbeat it accepts, valid
//!   `lease_ttl` from the instant it accepted it, measured on the control plane's clock.
//! - The agent re-arms a watchdog at every renewal it receives: `self_fence_after` from the
//!   instant it SENT that heartbeat, measured on its own clock. When the watchdog fires it
//!   destroys the host's HA domains, and the agent starts no HA domain until a new renewal.
//!   The watchdog is not the agent's main loop (in production a separate fencing helper or a
//!   kernel watchdog), so a stopped agent (SIGSTOP) still fences.
//! - The send happens before the grant and `self_fence_after < lease_ttl`, so the watchdog
//!   fires before the lease expires; `fence_margin` covers the destroy itself and the rate
//!   difference between two monotonic clocks. Each side only measures durations on its own
//!   clock: no reading of one machine's clock is ever compared with another's.
//! - A host is therefore fenced once `now >= granted_at + lease_ttl + fence_margin`, or
//!   when an operator confirms it is powered off (ManualFailover with confirmation).
//! - A fenced host gets no lease and no work until a heartbeat confirms its HA domains are
//!   gone: `fenced_domains_gone` set and no HA domain in its report. Until then every reply
//!   says `must_fence`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::time::MonoInstant;

/// A lease as the control plane granted it (its own clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub granted_at: MonoInstant,
    pub ttl: Duration,
}

impl Lease {
    pub fn expires_at(&self) -> MonoInstant {
        self.granted_at + self.ttl
    }
    /// The first instant at which the holder is proven fenced.
    pub fn fenced_at(&self, margin: Duration) -> MonoInstant {
        self.expires_at() + margin
    }
    pub fn is_fenced(&self, now: MonoInstant, margin: Duration) -> bool {
        now >= self.fenced_at(margin)
    }
}

/// Why a host counts as fenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceReason {
    /// Its lease expired plus the margin: its watchdog has destroyed its HA domains.
    LeaseExpired,
    /// An operator confirmed the host is powered off.
    Operator,
}

impl FenceReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceReason::LeaseExpired => "lease_expired",
            FenceReason::Operator => "operator",
        }
    }
}

/// A fact: from `at` (control plane clock) the host cannot run HA domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FenceProof {
    pub reason: FenceReason,
    pub at: MonoInstant,
}

/// What a heartbeat of a fenced host says about its HA domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReturnReport {
    /// `fenced_domains_gone` of the heartbeat.
    pub fenced_domains_gone: bool,
    /// HA-protected domains the heartbeat lists as present (any state but shut off).
    pub ha_domains_present: usize,
}

/// Why a returning fenced host does not get work yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotConfirmed {
    #[error("Agent has not confirmed its fenced domains are gone")]
    NoConfirmation,
    #[error("Agent still reports {0} HA domains")]
    DomainsPresent(usize),
    /// The leader is still writing the restarts of this node's VMs elsewhere: answering now
    /// with the node's (not yet updated) desired state could start a VM twice.
    #[error("Failover of its VMs is being written")]
    FailoverInProgress,
}

/// The gate a fenced host passes before it gets a lease and work again.
pub fn confirm_return(report: &ReturnReport) -> Result<(), NotConfirmed> {
    if !report.fenced_domains_gone {
        return Err(NotConfirmed::NoConfirmation);
    }
    if report.ha_domains_present > 0 {
        return Err(NotConfirmed::DomainsPresent(report.ha_domains_present));
    }
    Ok(())
}

/// The agent's side of the lease, on the agent's own monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentLease {
    self_fence_after: Duration,
    /// Send instant of the latest heartbeat whose renewal arrived.
    renewed_sent_at: Option<MonoInstant>,
    /// Fenced: no valid lease; HA domains are (being) destroyed and none may start.
    fenced: bool,
    /// Renewals of heartbeats sent before this instant are refused (set by `must_fence`).
    floor: Option<MonoInstant>,
}

/// The agent's verdict on a renewal it received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Valid: re-arm the watchdog at `deadline` (agent clock); HA domains may run until then.
    Accepted { deadline: MonoInstant },
    /// It arrived after its own deadline (a delayed reply, or the agent was stopped):
    /// acting on it could start a VM the control plane already restarted elsewhere.
    Stale,
}

impl AgentLease {
    /// A freshly booted agent: no lease yet, so it may start no HA domain.
    pub fn new(self_fence_after: Duration) -> Self {
        AgentLease {
            self_fence_after,
            renewed_sent_at: None,
            fenced: true,
            floor: None,
        }
    }

    /// An agent holding a lease renewed by the heartbeat it sent at `sent_at`.
    pub fn renewed(self_fence_after: Duration, sent_at: MonoInstant) -> Self {
        AgentLease {
            self_fence_after,
            renewed_sent_at: Some(sent_at),
            fenced: false,
            floor: None,
        }
    }

    /// The watchdog deadline, if a lease is held.
    pub fn deadline(&self) -> Option<MonoInstant> {
        match (self.fenced, self.renewed_sent_at) {
            (false, Some(s)) => Some(s + self.self_fence_after),
            _ => None,
        }
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// Whether the agent may start or keep HA domains at `now` (agent clock).
    pub fn may_run_ha(&self, now: MonoInstant) -> bool {
        self.deadline().is_some_and(|d| now < d)
    }

    /// A renewal arrived at `now` for the heartbeat sent at `sent_at`.
    pub fn on_renewal(&mut self, sent_at: MonoInstant, now: MonoInstant) -> Renewal {
        let deadline = sent_at + self.self_fence_after;
        if now >= deadline || self.floor.is_some_and(|f| sent_at < f) {
            return Renewal::Stale;
        }
        // Replies can be reordered: never move the reference backwards.
        let reference = self
            .renewed_sent_at
            .map_or(sent_at, |s| if self.fenced { sent_at } else { s.max(sent_at) });
        self.renewed_sent_at = Some(reference);
        self.fenced = false;
        Renewal::Accepted {
            deadline: reference + self.self_fence_after,
        }
    }

    /// The watchdog timer went off at `now`; true when the agent must fence now.
    pub fn on_watchdog(&mut self, now: MonoInstant) -> bool {
        match self.deadline() {
            Some(d) if now >= d => {
                self.fenced = true;
                true
            }
            _ => false,
        }
    }

    /// The control plane answered `must_fence` (received at `now`): a reply to an earlier
    /// heartbeat, delivered late, must not lift the fence.
    pub fn on_must_fence(&mut self, now: MonoInstant) {
        self.fenced = true;
        self.floor = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }
    fn at(x: u64) -> MonoInstant {
        MonoInstant::from_millis(x * 1000)
    }

    #[test]
    fn lease_is_fenced_only_after_ttl_plus_margin() {
        let l = Lease {
            granted_at: at(100),
            ttl: s(35),
        };
        assert_eq!(l.expires_at(), at(135));
        assert!(!l.is_fenced(at(137) + Duration::from_millis(999), s(3)));
        assert!(l.is_fenced(at(138), s(3)));
    }

    #[test]
    fn agent_fences_before_the_control_plane_may_restart() {
        // Agent sends at its 50s, the control plane grants at its 1000s (unrelated clocks).
        let mut agent = AgentLease::new(s(33));
        assert!(!agent.may_run_ha(at(50)));
        assert_eq!(
            agent.on_renewal(at(50), at(50) + Duration::from_millis(100)),
            Renewal::Accepted { deadline: at(83) }
        );
        assert!(agent.may_run_ha(at(82)));
        assert!(!agent.on_watchdog(at(82)));
        assert!(agent.on_watchdog(at(83)));
        assert!(agent.is_fenced() && !agent.may_run_ha(at(83)));
        // The deadline (33 s after the send) is before the control plane's proof (38 s after
        // the grant, which came after the send) even with the agent clock 1% slow.
        let cp = Lease {
            granted_at: at(1000),
            ttl: s(35),
        };
        let agent_fence_real = 33.0 / 0.99;
        let cp_proof = cp.fenced_at(s(3)).saturating_since(cp.granted_at).as_secs_f64();
        assert!(agent_fence_real < cp_proof);
    }

    #[test]
    fn stale_and_reordered_renewals() {
        let mut agent = AgentLease::renewed(s(33), at(10));
        // A reply that sat in a buffer while the agent was stopped.
        assert_eq!(agent.on_renewal(at(12), at(45)), Renewal::Stale);
        assert_eq!(agent.on_renewal(at(14), at(15)), Renewal::Accepted { deadline: at(47) });
        // An older reply arriving late does not shorten or extend anything wrongly.
        assert_eq!(agent.on_renewal(at(12), at(16)), Renewal::Accepted { deadline: at(47) });
        agent.on_must_fence(at(17));
        assert!(agent.is_fenced() && agent.deadline().is_none());
        assert_eq!(
            agent.on_renewal(at(16), at(18)),
            Renewal::Stale,
            "sent before the must_fence"
        );
        assert_eq!(agent.on_renewal(at(20), at(21)), Renewal::Accepted { deadline: at(53) });
    }

    #[test]
    fn return_gate_needs_flag_and_no_ha_domains() {
        assert_eq!(
            confirm_return(&ReturnReport::default()),
            Err(NotConfirmed::NoConfirmation)
        );
        assert_eq!(
            confirm_return(&ReturnReport {
                fenced_domains_gone: true,
                ha_domains_present: 2
            }),
            Err(NotConfirmed::DomainsPresent(2))
        );
        assert_eq!(
            confirm_return(&ReturnReport {
                fenced_domains_gone: true,
                ha_domains_present: 0
            }),
            Ok(())
        );
    }
}

//! The agent's self-fencing watchdog, as a pure state machine over instants of the agent's
//! own monotonic clock (the caller passes `now`; nothing here reads a clock).
//!
//! The rule, in plain words (the control plane's half is in `crate::ha::fence`):
//! - Every renewal the agent receives re-arms the watchdog: the deadline becomes
//!   `self_fence_after` after the instant the agent SENT the heartbeat that was answered (not
//!   when the answer arrived), so a slow answer can never stretch the deadline past the lease
//!   the control plane granted when it received that heartbeat.
//! - At start the watchdog is armed from the start instant: an agent that restarts while the
//!   control plane is unreachable still fences in time.
//! - When the deadline passes, or the control plane answers `must_fence`, the agent is fenced:
//!   it destroys its HA-protected domains and starts none of them until a renewal without
//!   `must_fence` arrives. Other domains are left alone.

use std::time::Duration;

use tokio::time::Instant;

use super::reconcile::DesiredDomain;

/// The watchdog of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchdog {
    self_fence_after: Duration,
    deadline: Instant,
    /// Fenced by the control plane's `must_fence` (cleared only by a plain renewal).
    ordered: bool,
    /// Fenced because the deadline passed (cleared by any later renewal).
    expired: bool,
}

impl Watchdog {
    /// Armed from `started`.
    pub fn new(self_fence_after: Duration, started: Instant) -> Self {
        Watchdog {
            self_fence_after,
            deadline: started + self_fence_after,
            ordered: false,
            expired: false,
        }
    }

    pub fn self_fence_after(&self) -> Duration {
        self.self_fence_after
    }

    /// A new `self_fence_after` (from the control plane's RegisterResponse); keeps the
    /// deadline no later than the new rule allows from the last arming.
    pub fn set_self_fence_after(&mut self, d: Duration) {
        let armed_at = self.deadline - self.self_fence_after;
        self.self_fence_after = d;
        self.deadline = armed_at + d;
    }

    /// The instant the watchdog fires if no renewal arrives.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A heartbeat sent at `sent_at` was answered. `must_fence`: the control plane refused to
    /// renew the lease and orders the HA domains destroyed.
    pub fn answered(&mut self, sent_at: Instant, must_fence: bool) {
        if must_fence {
            self.ordered = true;
            return;
        }
        self.ordered = false;
        self.expired = false;
        self.deadline = self.deadline.max(sent_at + self.self_fence_after);
    }

    /// Whether the agent is fenced at `now` (fires the watchdog when the deadline passed).
    pub fn check(&mut self, now: Instant) -> bool {
        if now >= self.deadline {
            self.expired = true;
        }
        self.is_fenced()
    }

    pub fn is_fenced(&self) -> bool {
        self.ordered || self.expired
    }
}

/// The desired state as the agent may apply it: while fenced, HA-protected domains are to be
/// powered off at once and are not started.
pub fn fence_filter(desired: &[DesiredDomain], fenced: bool) -> Vec<DesiredDomain> {
    desired
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if fenced && d.ha_protected {
                d.running = false;
                d.force_off = true;
            }
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{driver::DomainSpec, model::VmId};

    const AFTER: Duration = Duration::from_secs(33);

    #[tokio::test(start_paused = true)]
    async fn fires_after_self_fence_after_without_renewal() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(AFTER, t0);
        assert!(!w.check(t0 + Duration::from_secs(32)));
        assert!(w.check(t0 + AFTER));
        // A renewal clears it and re-arms from the send instant.
        let sent = t0 + Duration::from_secs(40);
        w.answered(sent, false);
        assert!(!w.check(sent + Duration::from_secs(1)));
        assert_eq!(w.deadline(), sent + AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_counts_from_the_send_not_the_answer() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(AFTER, t0);
        let sent = t0 + Duration::from_secs(2);
        // The answer took 20 s to arrive: the deadline is still sent + 33 s.
        w.answered(sent, false);
        assert!(w.check(sent + AFTER));
        assert!(!Watchdog::new(AFTER, t0).check(sent + Duration::from_secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_answer_never_moves_the_deadline_back() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(AFTER, t0);
        w.answered(t0 + Duration::from_secs(10), false);
        w.answered(t0 + Duration::from_secs(4), false);
        assert_eq!(w.deadline(), t0 + Duration::from_secs(43));
    }

    #[tokio::test(start_paused = true)]
    async fn must_fence_holds_until_a_plain_renewal() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(AFTER, t0);
        w.answered(t0 + Duration::from_secs(1), true);
        assert!(w.check(t0 + Duration::from_secs(2)));
        w.answered(t0 + Duration::from_secs(3), true);
        assert!(w.check(t0 + Duration::from_secs(4)));
        w.answered(t0 + Duration::from_secs(5), false);
        assert!(!w.check(t0 + Duration::from_secs(6)));
    }

    #[test]
    fn fenced_agents_power_off_only_ha_domains() {
        let mut ha = DesiredDomain::new(DomainSpec::new(VmId::new(), "ha", 1, 64), true);
        ha.ha_protected = true;
        let plain = DesiredDomain::new(DomainSpec::new(VmId::new(), "plain", 1, 64), true);
        let out = fence_filter(&[ha.clone(), plain.clone()], true);
        assert!(!out[0].running && out[0].force_off);
        assert_eq!(out[1], plain);
        assert_eq!(fence_filter(&[ha.clone()], false), vec![ha]);
    }
}

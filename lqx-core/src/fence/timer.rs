//! The fence process's rule, as a pure state machine over instants of the host's monotonic
//! clock (the caller passes `now`).
//!
//! - A pet sets the deadline (`now + fence_in`) and the domains. A pet that is not
//!   `renewed` (an agent restarted and not yet answered by the control plane) may only bring
//!   the deadline closer and add domains: a restart never buys time the lease did not grant.
//! - At the deadline the timer fires: the HA domains are destroyed (the caller does it, and
//!   repeats while fired). A renewed pet with a deadline ahead lifts it.
//! - A connection closed without [`FenceTimer::disarm`] changes nothing: the deadline stays
//!   (an agent that crashed, or was stopped holding HA domains, is fenced at its deadline
//!   unless it comes back and pets again).
//! - The host watchdog is petted only while a reset could not come after the lease's end,
//!   or when nothing needs fencing: if the fence process hangs, or cannot destroy a domain,
//!   the host resets before the control plane restarts the domains elsewhere.

use std::{collections::BTreeSet, time::Duration};

use tokio::time::Instant;

use super::protocol::Pet;
use crate::model::VmId;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FenceTimer {
    deadline: Option<Instant>,
    lease_end: Option<Instant>,
    vms: BTreeSet<VmId>,
    fired: bool,
    /// After firing: every domain was seen gone.
    done: bool,
}

impl FenceTimer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn pet(&mut self, now: Instant, p: &Pet) {
        let deadline = now + Duration::from_millis(p.fence_in_ms);
        let lease_end = now + Duration::from_millis(p.lease_left_ms.max(p.fence_in_ms));
        match (self.deadline, p.renewed) {
            (Some(old), false) => {
                self.deadline = Some(old.min(deadline));
                self.lease_end = Some(self.lease_end.map_or(lease_end, |l| l.min(lease_end)));
                self.vms.extend(p.vms.iter().copied());
            }
            _ => {
                self.deadline = Some(deadline);
                self.lease_end = Some(lease_end);
                self.vms = p.vms.iter().copied().collect();
                if deadline > now {
                    self.fired = false;
                    self.done = false;
                }
            }
        }
    }

    /// A clean stop of an agent without HA domains.
    pub fn disarm(&mut self) {
        *self = Self::default();
    }

    /// Whether the domains are to be destroyed at `now` (fires at the deadline).
    pub fn check(&mut self, now: Instant) -> bool {
        if let Some(d) = self.deadline
            && now >= d
            && !self.fired
        {
            self.fired = true;
            self.done = false;
        }
        self.fired
    }

    /// The fired fence destroyed everything it had to (or found it gone).
    pub fn all_gone(&mut self) {
        if self.fired {
            self.done = true;
        }
    }

    pub fn is_fired(&self) -> bool {
        self.fired
    }

    pub fn is_armed(&self) -> bool {
        self.deadline.is_some()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn vms(&self) -> &BTreeSet<VmId> {
        &self.vms
    }

    /// Whether the host watchdog (timeout `timeout`) may be petted at `now`.
    pub fn may_pet_watchdog(&self, now: Instant, timeout: Duration) -> bool {
        if self.vms.is_empty() || self.done {
            return true;
        }
        match self.lease_end {
            None => true,
            Some(end) => now + timeout <= end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pet(fence_in: u64, lease_left: u64, vms: &[VmId], renewed: bool) -> Pet {
        Pet {
            fence_in_ms: fence_in * 1000,
            lease_left_ms: lease_left * 1000,
            vms: vms.to_vec(),
            renewed,
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_unless_petted() {
        let t0 = Instant::now();
        let vm = VmId::new();
        let mut t = FenceTimer::new();
        assert!(!t.check(t0 + S(100)), "never armed: never fires");
        t.pet(t0, &pet(33, 35, &[vm], true));
        assert!(!t.check(t0 + S(32)));
        t.pet(t0 + S(2), &pet(33, 35, &[vm], true));
        assert!(!t.check(t0 + S(34)), "the pet moved the deadline");
        assert!(t.check(t0 + S(35)));
        assert!(t.check(t0 + S(36)), "stays fired");
        // A renewed pet with time ahead lifts it.
        t.pet(t0 + S(40), &pet(33, 35, &[vm], true));
        assert!(!t.check(t0 + S(41)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unrenewed_pet_never_pushes_the_deadline_back() {
        let t0 = Instant::now();
        let (a, b) = (VmId::new(), VmId::new());
        let mut t = FenceTimer::new();
        t.pet(t0, &pet(10, 12, &[a], true));
        // The agent restarted at t0+5 and arms 33 s from its start: the old deadline holds.
        t.pet(t0 + S(5), &pet(33, 35, &[b], false));
        assert_eq!(t.deadline(), Some(t0 + S(10)));
        assert!(t.vms().contains(&a) && t.vms().contains(&b));
        assert!(t.check(t0 + S(10)));
        // Not renewed: does not lift a fired fence either.
        t.pet(t0 + S(11), &pet(33, 35, &[b], false));
        assert!(t.check(t0 + S(11)));
        // With nothing armed, an unrenewed pet arms.
        let mut t = FenceTimer::new();
        t.pet(t0, &pet(33, 35, &[a], false));
        assert_eq!(t.deadline(), Some(t0 + S(33)));
    }

    #[tokio::test(start_paused = true)]
    async fn disarm_stops_watching() {
        let t0 = Instant::now();
        let mut t = FenceTimer::new();
        t.pet(t0, &pet(1, 2, &[VmId::new()], true));
        t.disarm();
        assert!(!t.check(t0 + S(10)));
        assert!(!t.is_armed());
    }

    #[tokio::test(start_paused = true)]
    async fn host_watchdog_is_petted_only_while_a_reset_lands_inside_the_lease() {
        let t0 = Instant::now();
        let vm = VmId::new();
        let mut t = FenceTimer::new();
        assert!(t.may_pet_watchdog(t0, S(10)), "nothing to fence");
        t.pet(t0, &pet(33, 35, &[vm], true));
        assert!(t.may_pet_watchdog(t0 + S(25), S(10)));
        assert!(
            !t.may_pet_watchdog(t0 + S(26), S(10)),
            "a reset at +36 s would be too late"
        );
        // Fired, and the domains are gone: the host is safe, keep it up.
        assert!(t.check(t0 + S(33)));
        assert!(!t.may_pet_watchdog(t0 + S(33), S(10)));
        t.all_gone();
        assert!(t.may_pet_watchdog(t0 + S(33), S(10)));
        // No HA domains at all: always.
        let mut t = FenceTimer::new();
        t.pet(t0, &pet(33, 35, &[], true));
        assert!(t.may_pet_watchdog(t0 + S(100), S(10)));
    }
}

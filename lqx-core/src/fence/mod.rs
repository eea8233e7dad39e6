//! The fence process (`lqx-server fence`): fencing that does not live inside the agent.
//!
//! The agent's own watchdog is a task in the agent: whatever stops the agent (SIGSTOP, a
//! deadlock, a swap storm) stops it too, while QEMU goes on running under libvirtd. So a
//! small separate process, with its own libvirt connection, holds the agent's lease deadline:
//!
//! ```text
//! agent --pet (Unix socket, every second)--> fence process --pet--> /dev/watchdog
//!   "fence in N ms unless petted again;                     (host reset if the fence
//!    these HA-protected domains"                             process itself hangs)
//! ```
//!
//! - [`protocol`]: the messages on the socket (JSON lines).
//! - [`timer`]: the pure rule: when to destroy, and when the host watchdog may be petted.
//! - [`device`]: the host watchdog device (`/dev/watchdog`, softdog or hardware).
//! - [`server`]: the fence process itself.
//! - [`client`]: the agent's side (pets, and the fencing status it reports).
//! - [`level`]: that status, typed: host watchdog, fence process only, agent only, none.

pub mod client;
pub mod device;
pub mod level;
pub mod protocol;
pub mod server;
pub mod timer;

pub use client::{FenceClient, PetSource};
pub use level::{Fencing, FencingLevel};
pub use protocol::{Pet, Reply, Request};
pub use server::{FenceError, FenceOptions, serve};
pub use timer::FenceTimer;

use std::time::Duration;

/// Time the fence process is given to destroy the domains (QEMU under TCG on a busy
/// machine took up to 1.6 s; keep `lease_ttl - self_fence_after` at 2 s as the defaults do) between its deadline
/// (`self_fence_after`) and the lease's end (`lease_ttl`): the agent refuses to start with a
/// fence process when `lease_ttl - self_fence_after` is shorter.
pub const DESTROY_BUDGET: Duration = Duration::from_secs(1);

/// How often the agent pets the fence process.
pub const PET_INTERVAL: Duration = Duration::from_secs(1);

/// Checks that the fence process can act in time with these lease timings; `watchdog` is the
/// host watchdog's timeout when the fence process has one.
///
/// - The fence fires at `self_fence_after` and must be done before `lease_ttl`.
/// - The host watchdog is petted only while a reset would still come before the lease's
///   end, so on a healthy host (lease at least `lease_ttl - heartbeat_interval` ahead) its
///   timeout plus a pet period must fit in that: else healthy hosts would reset.
pub fn check_timing(
    heartbeat_interval: Duration,
    lease_ttl: Duration,
    self_fence_after: Duration,
    watchdog: Option<Duration>,
) -> Result<(), String> {
    if self_fence_after + DESTROY_BUDGET > lease_ttl {
        return Err(format!(
            "self_fence_after ({}) must come at least {} before lease_ttl ({}): the fence process needs that long to destroy the domains",
            humantime::format_duration(self_fence_after),
            humantime::format_duration(DESTROY_BUDGET),
            humantime::format_duration(lease_ttl)
        ));
    }
    if let Some(t) = watchdog {
        let need = t + heartbeat_interval + PET_INTERVAL;
        if need >= lease_ttl {
            return Err(format!(
                "the host watchdog's timeout ({}) is too long for lease_ttl ({}): timeout + heartbeat interval + {} must be shorter than the lease (e.g. modprobe softdog soft_margin=10)",
                humantime::format_duration(t),
                humantime::format_duration(lease_ttl),
                humantime::format_duration(PET_INTERVAL)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn timing_rules() {
        check_timing(S(2), S(35), S(33), Some(S(10))).unwrap();
        check_timing(S(2), S(35), S(33), None).unwrap();
        check_timing(S(1), S(8), S(7), Some(S(5))).unwrap();
        // softdog's default 60 s outlives the lease: healthy hosts would reset.
        assert!(check_timing(S(2), S(35), S(33), Some(S(60))).is_err());
        assert!(check_timing(S(2), S(35), S(33), Some(S(32))).is_err());
        assert!(check_timing(S(2), Duration::from_millis(33_900), S(33), None).is_err());
    }
}

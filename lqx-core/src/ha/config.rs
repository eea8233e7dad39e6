//! The `ha:` section of the configuration, with the timing rules checked at start-up.
//!
//! Default timeline after a host dies (t = the control plane's last accepted heartbeat):
//!
//! ```text
//! t+10s  UNKNOWN        one check interval without a heartbeat
//! t+30s  UNREACHABLE    heartbeat_timeout and failure_threshold checks missed
//! t+33s  the agent's watchdog destroys its HA domains (self_fence_after, agent's clock,
//!        counted from the SEND of its last renewed heartbeat, which precedes t)
//! t+35s  lease expires (lease_ttl, control plane's clock)
//! t+38s  FAILED: lease + fence_margin; failover planned and written
//! t+40s  the target agent picks its new VM up at its next heartbeat (heartbeat_interval),
//!        defines and starts it
//! t+42s  its next heartbeat reports it running (heartbeat_interval)
//! ```
//!
//! So host death to HA VMs running elsewhere (as the control plane sees it) is at most
//! `failover_bound()` = 43 s with the defaults (goal: 45 s), plus the VM's own restart delay.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::HaConfigError;

/// HA settings (YAML `ha:` section; durations like `10s`, `500ms`, `1m`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HaConfig {
    pub enabled: bool,
    /// How often the leader checks every node (it also wakes at exact deadlines).
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// Silence after which a node is UNREACHABLE (together with `failure_threshold`).
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Missed checks (check intervals without a heartbeat) before a node is UNREACHABLE.
    pub failure_threshold: u32,
    /// How often agents heartbeat; every accepted heartbeat renews the lease.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Lease granted at each accepted heartbeat, on the control plane's clock.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// The agent destroys its HA domains after this long without a renewal (its clock).
    #[serde(with = "humantime_serde")]
    pub self_fence_after: Duration,
    /// Added to lease expiry before a host counts as fenced: covers the agent's destroy
    /// and the rate difference between two monotonic clocks.
    #[serde(with = "humantime_serde")]
    pub fence_margin: Duration,
    /// Share of nodes unreachable at once above which failover pauses.
    pub storm_threshold: f64,
    /// Keep enough free capacity to absorb any single host failure (N+1).
    pub admission_control: bool,
    /// Restarts of one VM within `restart_window` before HA gives up on it.
    pub max_restarts: u32,
    #[serde(with = "humantime_serde")]
    pub restart_window: Duration,
}

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            enabled: true,
            check_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            failure_threshold: 3,
            heartbeat_interval: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(35),
            self_fence_after: Duration::from_secs(33),
            fence_margin: Duration::from_secs(3),
            storm_threshold: 0.5,
            admission_control: false,
            max_restarts: 3,
            restart_window: Duration::from_secs(3600),
        }
    }
}

/// One second of slack in `failover_bound` for network round trips and clock-rate error.
const BOUND_SLACK: Duration = Duration::from_secs(1);

impl HaConfig {
    /// The fastest tuning that still passes `validate` with whole-second values:
    /// host death to HA VMs running elsewhere in at most 12 s. It trades false
    /// failovers on short network trouble for speed; the safety rules still hold.
    pub fn aggressive() -> Self {
        HaConfig {
            check_interval: Duration::from_secs(2),
            heartbeat_timeout: Duration::from_secs(6),
            failure_threshold: 3,
            heartbeat_interval: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(8),
            self_fence_after: Duration::from_secs(7),
            fence_margin: Duration::from_secs(1),
            ..HaConfig::default()
        }
    }

    /// Silence after which a node is timed out: both `heartbeat_timeout` and
    /// `failure_threshold` whole check intervals.
    pub fn timeout(&self) -> Duration {
        self.heartbeat_timeout.max(self.check_interval * self.failure_threshold)
    }

    /// Silence after which a dead host is declared FAILED (timed out and fenced).
    pub fn detection_time(&self) -> Duration {
        self.timeout().max(self.lease_ttl + self.fence_margin)
    }

    /// Documented bound from a host's death (or its VM's self-fence) to that VM running
    /// elsewhere, when capacity exists and the control plane stays up: detection, the
    /// VM's restart delay, the target agent's next heartbeat (which brings the VM: define,
    /// start), the heartbeat after it (which reports it running), and slack for round trips.
    pub fn failover_bound(&self, restart_delay: Duration) -> Duration {
        self.detection_time() + restart_delay + self.heartbeat_interval * 2 + BOUND_SLACK
    }

    /// Checks the timing rules; lqx-server refuses to start when this fails.
    pub fn validate(&self) -> Result<(), HaConfigError> {
        for (field, d) in [
            ("check_interval", self.check_interval),
            ("heartbeat_timeout", self.heartbeat_timeout),
            ("heartbeat_interval", self.heartbeat_interval),
            ("lease_ttl", self.lease_ttl),
            ("self_fence_after", self.self_fence_after),
            ("fence_margin", self.fence_margin),
            ("restart_window", self.restart_window),
        ] {
            if d.is_zero() {
                return Err(HaConfigError::Zero { field });
            }
        }
        if self.failure_threshold == 0 {
            return Err(HaConfigError::Zero {
                field: "failure_threshold",
            });
        }
        if self.max_restarts == 0 {
            return Err(HaConfigError::Zero { field: "max_restarts" });
        }
        if self.heartbeat_interval >= self.check_interval {
            return Err(HaConfigError::HeartbeatSlowerThanCheck {
                heartbeat_interval: self.heartbeat_interval,
                check_interval: self.check_interval,
            });
        }
        if self.heartbeat_timeout < self.heartbeat_interval * 2 {
            return Err(HaConfigError::TimeoutTooShort {
                heartbeat_timeout: self.heartbeat_timeout,
                heartbeat_interval: self.heartbeat_interval,
            });
        }
        if self.self_fence_after >= self.lease_ttl {
            return Err(HaConfigError::SelfFenceNotBeforeLease {
                self_fence_after: self.self_fence_after,
                lease_ttl: self.lease_ttl,
            });
        }
        let tolerated = self.timeout() + self.heartbeat_interval;
        if self.self_fence_after < tolerated {
            return Err(HaConfigError::SelfFenceTooEarly {
                self_fence_after: self.self_fence_after,
                tolerated,
            });
        }
        if !(self.storm_threshold > 0.0 && self.storm_threshold <= 1.0) {
            return Err(HaConfigError::StormThreshold(self.storm_threshold));
        }
        Ok(())
    }
}

/// Settings that are valid but risky, warned about at start-up (the server logs them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaWarning {
    /// A leader handover (lease expiry, the next renewal attempt and two heartbeats) takes
    /// at least `self_fence_after`: agents may fence their HA VMs during one.
    SlowHandover {
        handover: Duration,
        self_fence_after: Duration,
    },
    /// HA is on with in-process libvirt hosts: nothing fences them, so their lease expiry
    /// is taken as fenced.
    UnfencedInProcessHosts,
}

impl std::fmt::Display for HaWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HaWarning::SlowHandover {
                handover,
                self_fence_after,
            } => write!(
                f,
                "leader.lease_ttl is long against ha.self_fence_after ({handover:?} >= {self_fence_after:?}): \
                 a leader change may make agents fence their HA VMs"
            ),
            HaWarning::UnfencedInProcessHosts => f.write_str(
                "in-process libvirt hosts have no agent to fence them: HA treats their lease expiry as fenced; \
                 run `lqx-server agent` on hosts whose VMs must never run twice",
            ),
        }
    }
}

impl HaConfig {
    /// The warnings for these settings with a leader lease of `lease_ttl` renewed every
    /// `renew_interval`, and `libvirt_in_process`: whether an in-process host is real
    /// libvirt (neither simulated nor the libvirt test driver).
    pub fn warnings(&self, lease_ttl: Duration, renew_interval: Duration, libvirt_in_process: bool) -> Vec<HaWarning> {
        let mut out = Vec::new();
        // A leader handover must finish before agents fence themselves for want of a renewal.
        let handover = lease_ttl + renew_interval + self.heartbeat_interval * 2;
        if handover >= self.self_fence_after {
            out.push(HaWarning::SlowHandover {
                handover,
                self_fence_after: self.self_fence_after,
            });
        }
        if self.enabled && libvirt_in_process {
            out.push(HaWarning::UnfencedInProcessHosts);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_aggressive_are_valid_and_meet_the_goal() {
        let d = HaConfig::default();
        d.validate().unwrap();
        assert!(d.failover_bound(Duration::ZERO) <= Duration::from_secs(45));
        assert_eq!(d.failover_bound(Duration::ZERO), Duration::from_secs(43));
        let a = HaConfig::aggressive();
        a.validate().unwrap();
        assert_eq!(a.failover_bound(Duration::ZERO), Duration::from_secs(12));
    }

    #[test]
    fn self_fence_must_come_before_the_lease_expires() {
        let c = HaConfig {
            self_fence_after: Duration::from_secs(35),
            ..HaConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(HaConfigError::SelfFenceNotBeforeLease { .. })
        ));
        let c = HaConfig {
            self_fence_after: Duration::from_secs(40),
            ..HaConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(HaConfigError::SelfFenceNotBeforeLease { .. })
        ));
    }

    #[test]
    fn self_fence_must_not_fire_inside_a_tolerated_gap() {
        let c = HaConfig {
            self_fence_after: Duration::from_secs(20),
            ..HaConfig::default()
        };
        assert!(matches!(c.validate(), Err(HaConfigError::SelfFenceTooEarly { .. })));
    }

    #[test]
    fn other_rules_are_enforced() {
        let bad = [
            HaConfig {
                fence_margin: Duration::ZERO,
                ..HaConfig::default()
            },
            HaConfig {
                failure_threshold: 0,
                ..HaConfig::default()
            },
            HaConfig {
                heartbeat_interval: Duration::from_secs(10),
                ..HaConfig::default()
            },
            HaConfig {
                storm_threshold: 0.0,
                ..HaConfig::default()
            },
            HaConfig {
                storm_threshold: 1.5,
                ..HaConfig::default()
            },
            HaConfig {
                heartbeat_timeout: Duration::from_secs(1),
                ..HaConfig::aggressive()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?} should be refused");
        }
    }

    #[test]
    fn parses_the_phase4_section_and_fills_defaults() {
        let yaml = "enabled: true\ncheck_interval: 10s\nheartbeat_timeout: 30s\nfailure_threshold: 3\n";
        let c: HaConfig = serde_norway::from_str(yaml).unwrap();
        assert_eq!(c, HaConfig::default());
        let c: HaConfig = serde_norway::from_str("lease_ttl: 40s\nself_fence_after: 36s\nfence_margin: 500ms").unwrap();
        assert_eq!(c.lease_ttl, Duration::from_secs(40));
        assert_eq!(c.fence_margin, Duration::from_millis(500));
        c.validate().unwrap();
        assert!(
            serde_norway::from_str::<HaConfig>("lease_tll: 40s").is_err(),
            "typos are refused"
        );
    }

    #[test]
    fn timeout_is_the_later_of_time_and_checks() {
        let c = HaConfig {
            heartbeat_timeout: Duration::from_secs(25),
            ..HaConfig::default()
        };
        assert_eq!(c.timeout(), Duration::from_secs(30));
        let c = HaConfig {
            heartbeat_timeout: Duration::from_secs(32),
            ..HaConfig::default()
        };
        assert_eq!(c.timeout(), Duration::from_secs(32));
    }

    #[test]
    fn warns_of_a_slow_handover_and_of_unfenced_in_process_hosts() {
        let c = HaConfig::default();
        assert_eq!(
            c.warnings(Duration::from_secs(1), Duration::from_millis(333), false),
            vec![]
        );
        let w = c.warnings(c.self_fence_after, Duration::from_secs(1), false);
        assert!(matches!(w.as_slice(), [HaWarning::SlowHandover { .. }]), "{w:?}");
        assert!(w[0].to_string().contains("leader.lease_ttl"), "{}", w[0]);
        let on = HaConfig {
            enabled: true,
            ..c.clone()
        };
        assert_eq!(
            on.warnings(Duration::from_secs(1), Duration::from_millis(333), true),
            vec![HaWarning::UnfencedInProcessHosts]
        );
        let off = HaConfig { enabled: false, ..c };
        assert_eq!(
            off.warnings(Duration::from_secs(1), Duration::from_millis(333), true),
            vec![]
        );
    }
}

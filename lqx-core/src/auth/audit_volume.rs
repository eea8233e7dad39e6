//! How much the audit log may hold and what a client without credentials may make it write.
//!
//! Rule, in plain words:
//! - Unauthenticated requests that are denied are recorded one by one only up to
//!   `per_address` per address per window (default 20 a minute) and `total` per window over
//!   all addresses (default 300); the rest are counted, and once the window is over one
//!   summary entry per address says how many were not recorded one by one. Authenticated
//!   callers and allowed requests are always recorded in full: they are accountable.
//! - Retention: entries older than `retention` are deleted, and past `max_entries` the oldest
//!   go first. The pruning runs periodically and writes an entry of its own saying what it
//!   removed, so a gap in the log is itself on record.
//!
//! Memory is bounded: at most `max_addresses` addresses are tracked per window; beyond that
//! every further address shares one counter (`*`).
//!
//! Time is an argument (`now_ms`, a monotonic clock), so the rule is tested without waiting.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{Actor, AuditEntry, AuditId, AuditResult};

/// The address key of denials beyond `max_addresses`.
pub const OTHER_ADDRESSES: &str = "*";
/// The `action` of a summary entry.
pub const SUPPRESSED_ACTION: &str = "audit/SuppressedDenials";
/// The `action` of a pruning entry.
pub const PRUNE_ACTION: &str = "audit/Prune";

/// Limits on unauthenticated denials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenialPolicy {
    pub window_ms: u64,
    pub per_address: u32,
    pub total: u32,
    pub max_addresses: usize,
}

impl Default for DenialPolicy {
    fn default() -> Self {
        DenialPolicy {
            window_ms: 60_000,
            per_address: 20,
            total: 300,
            max_addresses: 10_000,
        }
    }
}

/// Counts unauthenticated denials per address in fixed windows.
#[derive(Debug, Default)]
pub struct DenialLimiter {
    policy: DenialPolicy,
    window_start_ms: u64,
    written: u32,
    /// Address -> (written, suppressed) in the current window.
    counts: HashMap<String, (u32, u64)>,
    /// Summaries of finished windows not yet taken.
    pending: Vec<Suppressed>,
}

/// Denials from one address not recorded one by one in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub client_address: String,
    pub count: u64,
    pub window_ms: u64,
}

impl DenialLimiter {
    pub fn new(policy: DenialPolicy) -> Self {
        DenialLimiter {
            policy,
            ..Default::default()
        }
    }

    fn roll(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.window_start_ms) < self.policy.window_ms {
            return;
        }
        for (addr, (_, suppressed)) in self.counts.drain() {
            if suppressed > 0 {
                self.pending.push(Suppressed {
                    client_address: addr,
                    count: suppressed,
                    window_ms: self.policy.window_ms,
                });
            }
        }
        self.pending.sort_by(|a, b| a.client_address.cmp(&b.client_address));
        self.written = 0;
        self.window_start_ms = now_ms;
    }

    /// Whether an unauthenticated denial from `client` is recorded one by one; if not, it is
    /// counted for the window's summary.
    pub fn admit(&mut self, client: &str, now_ms: u64) -> bool {
        self.roll(now_ms);
        let key = if self.counts.contains_key(client) || self.counts.len() < self.policy.max_addresses {
            client
        } else {
            OTHER_ADDRESSES
        };
        let global_room = self.written < self.policy.total;
        let c = self.counts.entry(key.to_string()).or_default();
        if global_room && c.0 < self.policy.per_address {
            c.0 += 1;
            self.written += 1;
            true
        } else {
            c.1 += 1;
            false
        }
    }

    /// The summaries of windows that have ended (each returned once).
    pub fn take_summaries(&mut self, now_ms: u64) -> Vec<Suppressed> {
        self.roll(now_ms);
        std::mem::take(&mut self.pending)
    }
}

/// The summary entry of suppressed denials.
pub fn summary_entry(time: DateTime<Utc>, s: &Suppressed) -> AuditEntry {
    let from = if s.client_address == OTHER_ADDRESSES {
        "addresses beyond the tracked limit".to_string()
    } else {
        "this address".to_string()
    };
    AuditEntry {
        project_id: None,
        id: AuditId::new(),
        time,
        actor: Actor::Anonymous { claimed: None },
        action: SUPPRESSED_ACTION.into(),
        resource_type: String::new(),
        resource_id: String::new(),
        result: AuditResult::Denied,
        detail: format!(
            "{} more unauthenticated denied requests from {from} within {}s were not recorded one by one",
            s.count,
            s.window_ms / 1000
        ),
        client_address: if s.client_address == OTHER_ADDRESSES {
            String::new()
        } else {
            s.client_address.clone()
        },
        request_id: String::new(),
    }
}

/// How long and how many audit entries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Entries older than this are deleted; `None`: kept regardless of age.
    pub max_age: Option<Duration>,
    /// Past this many entries the oldest are deleted; `None`: no count limit.
    pub max_entries: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Some(Duration::from_secs(365 * 24 * 3600)),
            max_entries: Some(10_000_000),
        }
    }
}

impl Retention {
    /// The time before which entries are deleted at `now`, if any.
    pub fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let age = chrono::Duration::from_std(self.max_age?).ok()?;
        now.checked_sub_signed(age)
    }
}

/// The entry a pruning run leaves.
pub fn prune_entry(time: DateTime<Utc>, removed: u64, r: &Retention) -> AuditEntry {
    let mut why = vec![];
    if let Some(a) = r.max_age {
        why.push(format!("older than {}", humantime::format_duration(a)));
    }
    if let Some(n) = r.max_entries {
        why.push(format!("beyond the newest {n}"));
    }
    AuditEntry::by_system(
        time,
        "audit",
        PRUNE_ACTION,
        ("", String::new()),
        AuditResult::Ok,
        format!(
            "removed {removed} entries ({}) under the retention policy",
            why.join(" or ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DenialPolicy {
        DenialPolicy {
            window_ms: 60_000,
            per_address: 3,
            total: 5,
            max_addresses: 2,
        }
    }

    #[test]
    fn denials_are_recorded_up_to_the_limits_then_summarized_once() {
        let mut l = DenialLimiter::new(policy());
        let admitted: Vec<bool> = (0..5).map(|i| l.admit("10.0.0.1", i)).collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        // Another address has its own allowance, up to the total.
        assert!(l.admit("10.0.0.2", 10));
        assert!(l.admit("10.0.0.2", 11));
        assert!(!l.admit("10.0.0.2", 12), "total of 5 reached");
        // A third address shares the overflow counter.
        assert!(!l.admit("10.0.0.3", 13));
        assert!(l.take_summaries(59_999).is_empty(), "window not over");
        let s = l.take_summaries(60_000);
        assert_eq!(
            s.iter()
                .map(|s| (s.client_address.as_str(), s.count))
                .collect::<Vec<_>>(),
            [(OTHER_ADDRESSES, 1), ("10.0.0.1", 2), ("10.0.0.2", 1)]
        );
        assert!(l.take_summaries(60_001).is_empty(), "each summary once");
        // A new window starts over.
        assert!(l.admit("10.0.0.1", 60_002));
    }

    #[test]
    fn a_flood_writes_a_bounded_number_of_entries() {
        let mut l = DenialLimiter::new(DenialPolicy::default());
        let mut rows = 0u64;
        for i in 0..100_000u64 {
            // 100,000 requests from 50,000 addresses within one minute.
            if l.admit(&format!("10.{}.{}.1", i % 250, (i / 250) % 200), i / 2) {
                rows += 1;
            }
        }
        let summaries = l.take_summaries(61_000);
        let p = DenialPolicy::default();
        assert!(rows <= u64::from(p.total), "{rows}");
        assert!(summaries.len() <= p.max_addresses + 1, "{}", summaries.len());
        let suppressed: u64 = summaries.iter().map(|s| s.count).sum();
        assert_eq!(rows + suppressed, 100_000, "every denial is accounted for");
    }

    #[test]
    fn entries_say_what_they_stand_for() {
        let t = Utc::now();
        let e = summary_entry(
            t,
            &Suppressed {
                client_address: "10.0.0.1".into(),
                count: 42,
                window_ms: 60_000,
            },
        );
        assert_eq!((e.action.as_str(), e.result), (SUPPRESSED_ACTION, AuditResult::Denied));
        assert!(e.detail.starts_with("42 more"), "{}", e.detail);
        let r = Retention {
            max_age: Some(Duration::from_secs(86_400)),
            max_entries: Some(1000),
        };
        assert_eq!(r.cutoff(t), Some(t - chrono::Duration::days(1)));
        let p = prune_entry(t, 7, &r);
        assert_eq!(p.action, PRUNE_ACTION);
        assert!(
            p.detail.contains("removed 7") && p.detail.contains("1day") && p.detail.contains("1000"),
            "{}",
            p.detail
        );
        assert_eq!(
            Retention {
                max_age: None,
                max_entries: None
            }
            .cutoff(t),
            None
        );
    }
}

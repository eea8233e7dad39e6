//! DRS data: the configuration (the `drs:` section of the YAML config) and the persisted
//! recommendation. Plain serde data; the planner lives in `crate::drs`, the engine that
//! persists and applies recommendations in the server.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{NodeId, RecommendationId, VmId};

/// What the engine does with the recommendations it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutomationLevel {
    /// Every recommendation stays PENDING for an operator.
    #[default]
    Manual,
    /// Mandatory moves (evacuation, broken constraints) are applied automatically.
    Partial,
    /// Every recommendation within the migration threshold is applied automatically.
    Full,
}

impl AutomationLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AutomationLevel::Manual => "manual",
            AutomationLevel::Partial => "partial",
            AutomationLevel::Full => "full",
        }
    }
}

/// How urgent a recommendation is: from how hot its source node is and whether it is mandatory.
/// Ordered from the most urgent (`Critical < High < ...` in `Ord`, so sorting puts it first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Critical,
    High,
    Medium,
    Low,
}

impl Priority {
    /// The priority of a move off a node whose hottest resource is at `source_percent`:
    /// CRITICAL ≥ 95, HIGH ≥ 90, MEDIUM ≥ 85, LOW below. A mandatory move is at least HIGH
    /// (and CRITICAL when its source is that hot anyway).
    pub fn for_move(source_percent: f64, mandatory: bool) -> Priority {
        let by_heat = if source_percent >= 95.0 {
            Priority::Critical
        } else if source_percent >= 90.0 {
            Priority::High
        } else if source_percent >= 85.0 {
            Priority::Medium
        } else {
            Priority::Low
        };
        if mandatory {
            by_heat.min(Priority::High)
        } else {
            by_heat
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "CRITICAL",
            Priority::High => "HIGH",
            Priority::Medium => "MEDIUM",
            Priority::Low => "LOW",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecommendationType {
    #[default]
    Migrate,
    PowerOn,
    PowerOff,
}

impl RecommendationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecommendationType::Migrate => "MIGRATE",
            RecommendationType::PowerOn => "POWER_ON",
            RecommendationType::PowerOff => "POWER_OFF",
        }
    }
}

impl fmt::Display for RecommendationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// PENDING → APPROVED → APPLYING → APPLIED | FAILED; PENDING/APPROVED → REJECTED | EXPIRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecommendationStatus {
    #[default]
    Pending,
    Approved,
    Applying,
    Applied,
    Rejected,
    Failed,
    Expired,
}

impl RecommendationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecommendationStatus::Pending => "PENDING",
            RecommendationStatus::Approved => "APPROVED",
            RecommendationStatus::Applying => "APPLYING",
            RecommendationStatus::Applied => "APPLIED",
            RecommendationStatus::Rejected => "REJECTED",
            RecommendationStatus::Failed => "FAILED",
            RecommendationStatus::Expired => "EXPIRED",
        }
    }

    /// No further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RecommendationStatus::Applied
                | RecommendationStatus::Rejected
                | RecommendationStatus::Failed
                | RecommendationStatus::Expired
        )
    }
}

impl fmt::Display for RecommendationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `drs:` section of the config. Every field has a default, so `drs: {}` is valid and
/// a short section (`enabled`, `interval: 5m`, `automation_level`, `threshold_cpu`,
/// `threshold_memory`) reads as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrsConfig {
    pub enabled: bool,
    /// How often the engine analyses the cluster (`5m`, `30s`, ...).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub automation_level: AutomationLevel,
    /// A node whose smoothed CPU use is above this percentage is hot.
    pub threshold_cpu: f64,
    /// A node whose smoothed memory use is above this percentage is hot.
    pub threshold_memory: f64,
    /// 1: mandatory moves only; 2: also relieve hot nodes; 3: also balance a clearly
    /// uneven cluster; 4: balance a mildly uneven one; 5: any worthwhile improvement.
    pub migration_threshold: u8,
    /// Live migrations one host runs at once. With `migrations_per_host_per_round` at 0 it
    /// sets how many moves a round may start or end on a host (mandatory moves are all listed,
    /// but count against it).
    pub max_concurrent_migrations_per_host: u32,
    /// Moves per round that may start or end on one host. 0: derived from migration capacity,
    /// `max_concurrent_migrations_per_host` x `interval` / the expected migration time (the
    /// average running VM's memory in use over `migration_bandwidth_mib_per_second`, plus a
    /// second), at least `max_concurrent_migrations_per_host` and at most 64.
    pub migrations_per_host_per_round: u32,
    /// Percentage points: a hot node is relieved down to `threshold - margin`, and a move may
    /// not bring its target above `threshold - margin`; balancing stops `margin` below the
    /// imbalance that triggers it.
    pub hysteresis_margin: f64,
    /// How many consecutive analyses a non-mandatory condition (hot node, imbalance) must be
    /// seen before a move is recommended for it.
    pub hysteresis_hold_count: u32,
    /// Used for estimated durations: memory copied per second by a live migration.
    pub migration_bandwidth_mib_per_second: u32,
    /// A VM migrated less than this long ago is not moved again unless the move is mandatory
    /// (or, at levels 3-4, a peak move nothing else can make, to a node it was not on then).
    #[serde(with = "humantime_serde")]
    pub recent_migration_window: Duration,
    /// Distributed power management: hosts put in standby when the cluster can run on fewer,
    /// and woken when it needs them (see `drs::dpm`).
    pub dpm: DpmConfig,
}

/// The `drs.dpm:` section. Off by default; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpmConfig {
    pub enabled: bool,
    /// manual: POWER_ON/POWER_OFF stay PENDING; partial: POWER_ON is applied at once (it only
    /// adds capacity); full: both are, POWER_OFF once its host is evacuated.
    pub automation_level: AutomationLevel,
    /// Consolidation is considered while the powered-on hosts' mean use (the fuller of CPU and
    /// memory, percent) stays below this, for `hold_count` consecutive runs.
    pub power_off_below: f64,
    /// A standby host is woken when the powered-on hosts' mean use is above this, or will be
    /// by the next run at the current rate of growth. Must be below both thresholds, so
    /// capacity comes back before a host turns hot.
    pub power_on_above: f64,
    /// Never fewer hosts powered on than this.
    pub min_hosts_on: u32,
    /// Consecutive runs of low use before a host is powered off (power-on never waits).
    pub hold_count: u32,
    /// Host names DPM never powers off.
    pub opt_out: Vec<String>,
    /// Host failures the powered-on hosts must absorb (HA admission control: 1 is N+1).
    pub failover_hosts: u32,
    /// Estimated draw of a powered-on host, watts (for the energy estimate).
    pub watts_per_host: f64,
}

impl Default for DpmConfig {
    fn default() -> Self {
        DpmConfig {
            enabled: false,
            automation_level: AutomationLevel::Manual,
            power_off_below: 45.0,
            power_on_above: 65.0,
            min_hosts_on: 2,
            hold_count: 3,
            opt_out: Vec::new(),
            failover_hosts: 1,
            watts_per_host: 350.0,
        }
    }
}

impl DpmConfig {
    fn validate(&self, threshold: f64) -> crate::Result<()> {
        for (field, v) in [
            ("drs.dpm.power_off_below", self.power_off_below),
            ("drs.dpm.power_on_above", self.power_on_above),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 100.0) {
                return Err(crate::Error::invalid(
                    field,
                    format!("{v} is not a percentage in (0, 100)"),
                ));
            }
        }
        if self.power_off_below >= self.power_on_above {
            return Err(crate::Error::invalid(
                "drs.dpm.power_off_below",
                format!(
                    "{} must be below power_on_above ({}), or hosts would flap",
                    self.power_off_below, self.power_on_above
                ),
            ));
        }
        if self.power_on_above >= threshold {
            return Err(crate::Error::invalid(
                "drs.dpm.power_on_above",
                format!(
                    "{} must be below the lower DRS threshold ({threshold}), so hosts wake before one turns hot",
                    self.power_on_above
                ),
            ));
        }
        if self.min_hosts_on == 0 {
            return Err(crate::Error::invalid("drs.dpm.min_hosts_on", "must be at least 1"));
        }
        if self.hold_count == 0 {
            return Err(crate::Error::invalid("drs.dpm.hold_count", "must be at least 1"));
        }
        if !(self.watts_per_host.is_finite() && self.watts_per_host >= 0.0) {
            return Err(crate::Error::invalid("drs.dpm.watts_per_host", "must be 0 or more"));
        }
        Ok(())
    }
}

impl Default for DrsConfig {
    fn default() -> Self {
        DrsConfig {
            enabled: true,
            interval: Duration::from_secs(300),
            automation_level: AutomationLevel::Manual,
            threshold_cpu: 80.0,
            threshold_memory: 85.0,
            migration_threshold: 3,
            max_concurrent_migrations_per_host: 2,
            migrations_per_host_per_round: 0,
            hysteresis_margin: 5.0,
            hysteresis_hold_count: 2,
            migration_bandwidth_mib_per_second: 1000,
            recent_migration_window: Duration::from_secs(3600),
            dpm: DpmConfig::default(),
        }
    }
}

/// The most moves per host per round a derived budget allows (bounds planning work and how
/// far a round's plan runs ahead of the cluster it was made for).
pub const MAX_DERIVED_ROUND_BUDGET: u32 = 64;

impl DrsConfig {
    /// Moves per host per round: the configured `migrations_per_host_per_round`, or derived
    /// from migration capacity when it is 0 (see the field), for migrations expected to
    /// take `expected_secs` each.
    pub fn round_budget(&self, expected_secs: f64) -> u32 {
        if self.migrations_per_host_per_round > 0 {
            return self.migrations_per_host_per_round;
        }
        let conc = self.max_concurrent_migrations_per_host.max(1);
        let derived = f64::from(conc) * self.interval.as_secs_f64() / expected_secs.max(1.0);
        (derived.floor() as u32).clamp(conc, MAX_DERIVED_ROUND_BUDGET.max(conc))
    }

    /// Seconds a live migration of a VM with `memory_mib` in use is expected to take.
    pub fn expected_migration_secs(&self, memory_mib: f64) -> f64 {
        memory_mib / f64::from(self.migration_bandwidth_mib_per_second.max(1)) + 1.0
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> crate::Result<()> {
        if self.interval < Duration::from_secs(1) {
            return Err(crate::Error::invalid("drs.interval", "must be at least 1s"));
        }
        for (field, v) in [
            ("drs.threshold_cpu", self.threshold_cpu),
            ("drs.threshold_memory", self.threshold_memory),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 100.0) {
                return Err(crate::Error::invalid(
                    field,
                    format!("{v} is not a percentage in (0, 100]"),
                ));
            }
        }
        if !(1..=5).contains(&self.migration_threshold) {
            return Err(crate::Error::invalid(
                "drs.migration_threshold",
                format!("{} is not a level from 1 to 5", self.migration_threshold),
            ));
        }
        if self.max_concurrent_migrations_per_host == 0 {
            return Err(crate::Error::invalid(
                "drs.max_concurrent_migrations_per_host",
                "must be at least 1",
            ));
        }
        if !(self.hysteresis_margin.is_finite() && (0.0..=50.0).contains(&self.hysteresis_margin)) {
            return Err(crate::Error::invalid(
                "drs.hysteresis_margin",
                format!("{} is not between 0 and 50 percentage points", self.hysteresis_margin),
            ));
        }
        if self.hysteresis_hold_count == 0 {
            return Err(crate::Error::invalid("drs.hysteresis_hold_count", "must be at least 1"));
        }
        if self.migration_bandwidth_mib_per_second == 0 {
            return Err(crate::Error::invalid(
                "drs.migration_bandwidth_mib_per_second",
                "must be at least 1",
            ));
        }
        self.dpm.validate(self.threshold_cpu.min(self.threshold_memory))?;
        Ok(())
    }
}

/// A persisted recommendation (the proto `Recommendation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrsRecommendation {
    pub id: RecommendationId,
    pub priority: Priority,
    #[serde(rename = "type")]
    pub recommendation_type: RecommendationType,
    pub reason: String,
    pub vm_id: VmId,
    pub vm_name: String,
    pub source_node_id: NodeId,
    pub source_node_name: String,
    pub target_node_id: NodeId,
    pub target_node_name: String,
    /// Expected improvement on the source, percentage points of CPU.
    pub impact_cpu: f64,
    /// Expected improvement on the source, percentage points of memory.
    pub impact_memory: f64,
    pub estimated_duration_secs: u64,
    pub mandatory: bool,
    pub status: RecommendationStatus,
    /// Why it failed or expired, when it did.
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub applied_at: Option<DateTime<Utc>>,
    pub applied_by: Option<String>,
}

impl DrsRecommendation {
    /// The estimated duration as a human string, e.g. `2m 30s`.
    pub fn estimated_duration_human(&self) -> String {
        humantime::format_duration(Duration::from_secs(self.estimated_duration_secs)).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase4_yaml_reads_and_defaults_fill_the_rest() {
        let yaml = "enabled: true\ninterval: 5m\nautomation_level: partial\nthreshold_cpu: 75\nthreshold_memory: 85\n";
        let c: DrsConfig = serde_norway::from_str(yaml).unwrap();
        assert_eq!(c.interval, Duration::from_secs(300));
        assert_eq!(c.automation_level, AutomationLevel::Partial);
        assert_eq!(c.threshold_cpu, 75.0);
        assert_eq!(c.migration_threshold, 3);
        assert_eq!(c.hysteresis_hold_count, 2);
        c.validate().unwrap();
        let empty: DrsConfig = serde_norway::from_str("{}").unwrap();
        assert_eq!(empty, DrsConfig::default());
    }

    #[test]
    fn unknown_and_bad_fields_are_named() {
        let err = serde_norway::from_str::<DrsConfig>("threshold_cpuu: 80").unwrap_err();
        assert!(err.to_string().contains("threshold_cpuu"), "{err}");
        let c = DrsConfig {
            migration_threshold: 6,
            ..DrsConfig::default()
        };
        let err = c.validate().unwrap_err();
        assert!(err.message.starts_with("drs.migration_threshold"), "{}", err.message);
        let c = DrsConfig {
            threshold_memory: 120.0,
            ..DrsConfig::default()
        };
        assert!(c.validate().unwrap_err().message.starts_with("drs.threshold_memory"));
    }

    #[test]
    fn priority_follows_source_heat_and_mandatory() {
        assert_eq!(Priority::for_move(96.0, false), Priority::Critical);
        assert_eq!(Priority::for_move(90.0, false), Priority::High);
        assert_eq!(Priority::for_move(85.0, false), Priority::Medium);
        assert_eq!(Priority::for_move(84.9, false), Priority::Low);
        assert_eq!(Priority::for_move(10.0, true), Priority::High);
        assert_eq!(Priority::for_move(99.0, true), Priority::Critical);
        assert_eq!(serde_json::to_string(&Priority::High).unwrap(), "\"HIGH\"");
        assert_eq!(
            serde_json::to_string(&RecommendationType::PowerOff).unwrap(),
            "\"POWER_OFF\""
        );
    }
}

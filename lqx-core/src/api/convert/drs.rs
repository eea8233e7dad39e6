//! `limiquantix.drs.v1` (DRSService) <-> the DRS model.

use super::mask;
use super::{opt_timestamp, timestamp};
use crate::api::drs::v1 as pb;
use crate::model::{
    AutomationLevel, DrsConfig, DrsRecommendation, Priority, RecommendationId, RecommendationStatus as St,
    RecommendationType,
};
use crate::{Error, Result};
use std::time::Duration;

/// A recommendation id from a request (required).
pub fn rec_id_in(s: &str) -> Result<RecommendationId> {
    if s.is_empty() {
        return Err(Error::invalid("id", "is required"));
    }
    RecommendationId::parse("id", s)
}

pub fn rec_out(r: &DrsRecommendation) -> pb::Recommendation {
    pb::Recommendation {
        id: r.id.to_string(),
        priority: priority_out(r.priority) as i32,
        r#type: match r.recommendation_type {
            RecommendationType::Migrate => pb::RecommendationType::Migrate,
            RecommendationType::PowerOn => pb::RecommendationType::PowerOn,
            RecommendationType::PowerOff => pb::RecommendationType::PowerOff,
        } as i32,
        reason: r.reason.clone(),
        // A power recommendation names no VM.
        vm_id: if r.recommendation_type == RecommendationType::Migrate {
            r.vm_id.to_string()
        } else {
            String::new()
        },
        vm_name: r.vm_name.clone(),
        source_node_id: r.source_node_id.to_string(),
        source_node_name: r.source_node_name.clone(),
        target_node_id: r.target_node_id.to_string(),
        target_node_name: r.target_node_name.clone(),
        impact_cpu: r.impact_cpu,
        impact_memory: r.impact_memory,
        estimated_duration_seconds: u32::try_from(r.estimated_duration_secs).unwrap_or(u32::MAX),
        status: rec_status_out(r.status) as i32,
        mandatory: r.mandatory,
        failure_reason: r.failure_reason.clone().unwrap_or_default(),
        created_at: Some(timestamp(r.created_at)),
        approved_at: opt_timestamp(r.approved_at),
        approved_by: r.approved_by.clone().unwrap_or_default(),
        applied_at: opt_timestamp(r.applied_at),
        applied_by: r.applied_by.clone().unwrap_or_default(),
    }
}

fn priority_out(p: Priority) -> pb::Priority {
    match p {
        Priority::Critical => pb::Priority::Critical,
        Priority::High => pb::Priority::High,
        Priority::Medium => pb::Priority::Medium,
        Priority::Low => pb::Priority::Low,
    }
}

fn rec_status_out(s: St) -> pb::RecommendationStatus {
    use pb::RecommendationStatus as P;
    match s {
        St::Pending => P::Pending,
        St::Approved => P::Approved,
        St::Applying => P::Applying,
        St::Applied => P::Applied,
        St::Rejected => P::Rejected,
        St::Failed => P::Failed,
        St::Expired => P::Expired,
    }
}

/// The status filter of ListRecommendations (UNSPECIFIED: all).
pub fn status_in(v: i32) -> Result<Option<St>> {
    use pb::RecommendationStatus as P;
    Ok(
        match P::try_from(v).map_err(|_| Error::invalid("status", format!("{v} is not a recommendation status")))? {
            P::Unspecified => None,
            P::Pending => Some(St::Pending),
            P::Approved => Some(St::Approved),
            P::Applying => Some(St::Applying),
            P::Applied => Some(St::Applied),
            P::Rejected => Some(St::Rejected),
            P::Failed => Some(St::Failed),
            P::Expired => Some(St::Expired),
        },
    )
}

#[cfg(feature = "server")]
pub fn status_out(s: &crate::drs::engine::DrsStatusReport) -> pb::DrsStatus {
    pb::DrsStatus {
        config: Some(config_out(&s.config)),
        last_run: s.last_run.as_ref().map(|r| timestamp(r.at)),
        imbalance: s.imbalance(),
        // Waiting for an operator or an apply: PENDING and APPROVED.
        pending_count: s.pending + s.approved,
        applying_count: s.applying,
        last_run_summary: s.last_run.as_ref().map(|r| r.describe()).unwrap_or_default(),
        unrelieved_nodes: s.last_run.as_ref().map(|r| r.unrelieved.clone()).unwrap_or_default(),
        not_live_movable: s
            .last_run
            .as_ref()
            .map(|r| r.not_live_movable.clone())
            .unwrap_or_default(),
    }
}

pub fn config_out(c: &DrsConfig) -> pb::DrsConfig {
    pb::DrsConfig {
        enabled: c.enabled,
        interval_seconds: u32::try_from(c.interval.as_secs()).unwrap_or(u32::MAX),
        automation_level: level_out(c.automation_level) as i32,
        threshold_cpu: c.threshold_cpu,
        threshold_memory: c.threshold_memory,
        migration_threshold: u32::from(c.migration_threshold),
        max_concurrent_migrations_per_host: c.max_concurrent_migrations_per_host,
        hysteresis_margin: c.hysteresis_margin,
        hysteresis_hold_count: c.hysteresis_hold_count,
        migration_bandwidth_mib_per_second: c.migration_bandwidth_mib_per_second,
        dpm_enabled: c.dpm.enabled,
        dpm_automation_level: level_out(c.dpm.automation_level) as i32,
        dpm_power_off_below: c.dpm.power_off_below,
        dpm_power_on_above: c.dpm.power_on_above,
        dpm_min_hosts_on: c.dpm.min_hosts_on,
        dpm_hold_count: c.dpm.hold_count,
        dpm_opt_out: c.dpm.opt_out.clone(),
        dpm_failover_hosts: c.dpm.failover_hosts,
        dpm_watts_per_host: c.dpm.watts_per_host,
        migrations_per_host_per_round: c.migrations_per_host_per_round,
    }
}

fn level_out(l: AutomationLevel) -> pb::AutomationLevel {
    match l {
        AutomationLevel::Manual => pb::AutomationLevel::Manual,
        AutomationLevel::Partial => pb::AutomationLevel::Partial,
        AutomationLevel::Full => pb::AutomationLevel::Full,
    }
}

fn level_in(field: &str, v: i32) -> Result<AutomationLevel> {
    match pb::AutomationLevel::try_from(v) {
        Ok(pb::AutomationLevel::Manual) => Ok(AutomationLevel::Manual),
        Ok(pb::AutomationLevel::Partial) => Ok(AutomationLevel::Partial),
        Ok(pb::AutomationLevel::Full) => Ok(AutomationLevel::Full),
        _ => Err(Error::invalid(
            field,
            "must be AUTOMATION_LEVEL_MANUAL, _PARTIAL or _FULL",
        )),
    }
}

/// The updatable fields of a DrsConfig (UpdateDRSConfig's mask paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigField {
    Enabled,
    IntervalSeconds,
    AutomationLevel,
    ThresholdCpu,
    ThresholdMemory,
    MigrationThreshold,
    MaxConcurrentMigrationsPerHost,
    HysteresisMargin,
    HysteresisHoldCount,
    MigrationBandwidthMibPerSecond,
    DpmEnabled,
    DpmAutomationLevel,
    DpmPowerOffBelow,
    DpmPowerOnAbove,
    DpmMinHostsOn,
    DpmHoldCount,
    DpmOptOut,
    DpmFailoverHosts,
    DpmWattsPerHost,
    MigrationsPerHostPerRound,
}

/// The mask path of each field, the one place they are spelled.
pub const CONFIG_FIELDS: [(&str, ConfigField); 20] = {
    use ConfigField as F;
    [
        ("enabled", F::Enabled),
        ("interval_seconds", F::IntervalSeconds),
        ("automation_level", F::AutomationLevel),
        ("threshold_cpu", F::ThresholdCpu),
        ("threshold_memory", F::ThresholdMemory),
        ("migration_threshold", F::MigrationThreshold),
        ("max_concurrent_migrations_per_host", F::MaxConcurrentMigrationsPerHost),
        ("hysteresis_margin", F::HysteresisMargin),
        ("hysteresis_hold_count", F::HysteresisHoldCount),
        ("migration_bandwidth_mib_per_second", F::MigrationBandwidthMibPerSecond),
        ("dpm_enabled", F::DpmEnabled),
        ("dpm_automation_level", F::DpmAutomationLevel),
        ("dpm_power_off_below", F::DpmPowerOffBelow),
        ("dpm_power_on_above", F::DpmPowerOnAbove),
        ("dpm_min_hosts_on", F::DpmMinHostsOn),
        ("dpm_hold_count", F::DpmHoldCount),
        ("dpm_opt_out", F::DpmOptOut),
        ("dpm_failover_hosts", F::DpmFailoverHosts),
        ("dpm_watts_per_host", F::DpmWattsPerHost),
        ("migrations_per_host_per_round", F::MigrationsPerHostPerRound),
    ]
};

impl ConfigField {
    /// The field's mask path (snake_case).
    pub fn path(self) -> &'static str {
        CONFIG_FIELDS.iter().find(|(_, f)| *f == self).map_or("", |(p, _)| p)
    }

    /// Whether `c` gives this field a non-default value (an empty mask takes those).
    fn populated(self, c: &pb::DrsConfig) -> bool {
        use ConfigField as F;
        match self {
            F::Enabled => c.enabled,
            F::IntervalSeconds => c.interval_seconds != 0,
            F::AutomationLevel => c.automation_level != 0,
            F::ThresholdCpu => c.threshold_cpu != 0.0,
            F::ThresholdMemory => c.threshold_memory != 0.0,
            F::MigrationThreshold => c.migration_threshold != 0,
            F::MaxConcurrentMigrationsPerHost => c.max_concurrent_migrations_per_host != 0,
            F::HysteresisMargin => c.hysteresis_margin != 0.0,
            F::HysteresisHoldCount => c.hysteresis_hold_count != 0,
            F::MigrationBandwidthMibPerSecond => c.migration_bandwidth_mib_per_second != 0,
            F::DpmEnabled => c.dpm_enabled,
            F::DpmAutomationLevel => c.dpm_automation_level != 0,
            F::DpmPowerOffBelow => c.dpm_power_off_below != 0.0,
            F::DpmPowerOnAbove => c.dpm_power_on_above != 0.0,
            F::DpmMinHostsOn => c.dpm_min_hosts_on != 0,
            F::DpmHoldCount => c.dpm_hold_count != 0,
            F::DpmOptOut => !c.dpm_opt_out.is_empty(),
            F::DpmFailoverHosts => c.dpm_failover_hosts != 0,
            F::DpmWattsPerHost => c.dpm_watts_per_host != 0.0,
            F::MigrationsPerHostPerRound => c.migrations_per_host_per_round != 0,
        }
    }
}

/// The fields of `update_mask` taken from `given` (the rule is [`mask::resolve`]'s), the
/// rest kept from `current`. Validation is the engine's (`DrsConfig::validate`).
pub fn config_in(current: &DrsConfig, given: &pb::DrsConfig, update_mask: &[String]) -> Result<DrsConfig> {
    use ConfigField as F;
    let fields = mask::resolve("DRS config", update_mask, &CONFIG_FIELDS, |f| f.populated(given))?;
    let mut c = current.clone();
    for f in fields {
        match f {
            F::Enabled => c.enabled = given.enabled,
            F::IntervalSeconds => c.interval = Duration::from_secs(u64::from(given.interval_seconds)),
            F::AutomationLevel => c.automation_level = level_in("config.automation_level", given.automation_level)?,
            F::ThresholdCpu => c.threshold_cpu = given.threshold_cpu,
            F::ThresholdMemory => c.threshold_memory = given.threshold_memory,
            F::MigrationThreshold => {
                c.migration_threshold = u8::try_from(given.migration_threshold).unwrap_or(u8::MAX);
            }
            F::MaxConcurrentMigrationsPerHost => {
                c.max_concurrent_migrations_per_host = given.max_concurrent_migrations_per_host;
            }
            F::HysteresisMargin => c.hysteresis_margin = given.hysteresis_margin,
            F::HysteresisHoldCount => c.hysteresis_hold_count = given.hysteresis_hold_count,
            F::MigrationBandwidthMibPerSecond => {
                c.migration_bandwidth_mib_per_second = given.migration_bandwidth_mib_per_second;
            }
            F::DpmEnabled => c.dpm.enabled = given.dpm_enabled,
            F::DpmAutomationLevel => {
                c.dpm.automation_level = level_in("config.dpm_automation_level", given.dpm_automation_level)?;
            }
            F::DpmPowerOffBelow => c.dpm.power_off_below = given.dpm_power_off_below,
            F::DpmPowerOnAbove => c.dpm.power_on_above = given.dpm_power_on_above,
            F::DpmMinHostsOn => c.dpm.min_hosts_on = given.dpm_min_hosts_on,
            F::DpmHoldCount => c.dpm.hold_count = given.dpm_hold_count,
            F::DpmOptOut => c.dpm.opt_out = given.dpm_opt_out.clone(),
            F::DpmFailoverHosts => c.dpm.failover_hosts = given.dpm_failover_hosts,
            F::DpmWattsPerHost => c.dpm.watts_per_host = given.dpm_watts_per_host,
            F::MigrationsPerHostPerRound => c.migrations_per_host_per_round = given.migrations_per_host_per_round,
        }
    }
    c.validate()?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_takes_named_fields_in_either_spelling() {
        let cur = DrsConfig::default();
        let given = pb::DrsConfig {
            automation_level: pb::AutomationLevel::Full as i32,
            threshold_cpu: 70.0,
            ..Default::default()
        };
        let c = config_in(&cur, &given, &["automationLevel".into(), "threshold_cpu".into()]).unwrap();
        assert_eq!(c.automation_level, AutomationLevel::Full);
        assert_eq!(c.threshold_cpu, 70.0);
        assert_eq!(c.threshold_memory, cur.threshold_memory);
        let e = config_in(&cur, &given, &["threshold_gpu".into()]).unwrap_err();
        assert!(e.message.contains("threshold_gpu"), "{}", e.message);
        // `*` takes every field, so zeros fail validation.
        assert!(config_in(&cur, &given, &["*".into()]).is_err());
        let back = config_in(&cur, &config_out(&cur), &["*".into()]).unwrap();
        assert_eq!(back, cur);
    }

    #[test]
    fn an_empty_mask_takes_the_fields_given() {
        let cur = DrsConfig::default();
        let given = pb::DrsConfig {
            threshold_cpu: 70.0,
            ..Default::default()
        };
        let c = config_in(&cur, &given, &[]).unwrap();
        assert_eq!(c.threshold_cpu, 70.0);
        assert_eq!(
            DrsConfig {
                threshold_cpu: cur.threshold_cpu,
                ..c
            },
            cur
        );
        assert_eq!(ConfigField::ThresholdCpu.path(), "threshold_cpu");
    }
}

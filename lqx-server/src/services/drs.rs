//! limiquantix.drs.v1.DRSService: decode, call the DRS engine (lqx-core `drs::engine`),
//! encode.

use super::{request_id, st};
use lqx_core::api::convert::{opt_timestamp, timestamp};
use lqx_core::api::drs::v1::{self as pb, drs_service_server::DrsService};
use lqx_core::drs::engine::{DrsEngine, DrsStatusReport};
use lqx_core::model::{
    AutomationLevel, DrsConfig, DrsRecommendation, Priority, RecommendationId, RecommendationStatus as St,
    RecommendationType,
};
use lqx_core::{Error, Result};
use std::time::Duration;
use tonic::{Request, Response, Status};

pub struct DrsApi {
    pub engine: DrsEngine,
}

/// Who is calling: the authenticated user or key, else "anonymous".
fn caller<T>(req: &Request<T>) -> String {
    req.extensions()
        .get::<lqx_core::auth::service::Principal>()
        .map_or_else(|| "anonymous".to_string(), |p| p.actor().display_name())
}

fn rec_id(s: &str) -> Result<RecommendationId> {
    if s.is_empty() {
        return Err(Error::invalid("id", "is required"));
    }
    RecommendationId::parse("id", s)
}

#[tonic::async_trait]
impl DrsService for DrsApi {
    async fn list_recommendations(
        &self,
        req: Request<pb::ListRecommendationsRequest>,
    ) -> Result<Response<pb::ListRecommendationsResponse>, Status> {
        let r = req.into_inner();
        let status = status_in(r.status).map_err(st)?;
        let page = self.engine.list(status, r.page_size, &r.page_token).await.map_err(st)?;
        Ok(Response::new(pb::ListRecommendationsResponse {
            recommendations: page.recommendations.iter().map(rec_out).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_recommendation(
        &self,
        req: Request<pb::GetRecommendationRequest>,
    ) -> Result<Response<pb::Recommendation>, Status> {
        let id = rec_id(&req.get_ref().id).map_err(st)?;
        let r = self.engine.get(id).await.map_err(st)?;
        Ok(Response::new(rec_out(&r)))
    }

    async fn approve_recommendation(
        &self,
        req: Request<pb::ApproveRecommendationRequest>,
    ) -> Result<Response<pb::Recommendation>, Status> {
        super::auth::note(&req).resource("drs_recommendation", &req.get_ref().id);
        let by = caller(&req);
        let id = rec_id(&req.get_ref().id).map_err(st)?;
        let r = self.engine.approve(id, &by).await.map_err(st)?;
        Ok(Response::new(rec_out(&r)))
    }

    /// Answers once the migration has started (APPLYING); GetRecommendation follows it to
    /// APPLIED or FAILED (`lqx drs apply --wait` does).
    async fn apply_recommendation(
        &self,
        req: Request<pb::ApplyRecommendationRequest>,
    ) -> Result<Response<pb::Recommendation>, Status> {
        super::auth::note(&req).resource("drs_recommendation", &req.get_ref().id);
        let by = caller(&req);
        let r = req.into_inner();
        let id = rec_id(&r.id).map_err(st)?;
        let rid = request_id(&r.request_id)?;
        let rec = self.engine.apply(id, &by, rid.as_deref(), false).await.map_err(st)?;
        Ok(Response::new(rec_out(&rec)))
    }

    async fn reject_recommendation(
        &self,
        req: Request<pb::RejectRecommendationRequest>,
    ) -> Result<Response<pb::Recommendation>, Status> {
        super::auth::note(&req).resource("drs_recommendation", &req.get_ref().id);
        let by = caller(&req);
        let r = req.into_inner();
        let id = rec_id(&r.id).map_err(st)?;
        if r.reason.len() > 1024 {
            return Err(st(Error::invalid("reason", "must be at most 1024 characters")));
        }
        let rec = self.engine.reject(id, &by, &r.reason).await.map_err(st)?;
        Ok(Response::new(rec_out(&rec)))
    }

    async fn run_analysis(
        &self,
        _req: Request<pb::RunAnalysisRequest>,
    ) -> Result<Response<pb::RunAnalysisResponse>, Status> {
        let report = self.engine.run_once().await.map_err(st)?;
        Ok(Response::new(pb::RunAnalysisResponse {
            recommendations: report.recommendations.iter().map(rec_out).collect(),
            imbalance_before: report.summary.imbalance_before,
            imbalance_after: report.summary.imbalance_after,
            why_no_moves: report.summary.why_no_moves.clone().unwrap_or_default(),
        }))
    }

    async fn get_drs_status(&self, _req: Request<pb::GetDrsStatusRequest>) -> Result<Response<pb::DrsStatus>, Status> {
        let s = self.engine.status().await.map_err(st)?;
        Ok(Response::new(status_out(&s)))
    }

    async fn update_drs_config(
        &self,
        req: Request<pb::UpdateDrsConfigRequest>,
    ) -> Result<Response<pb::DrsConfig>, Status> {
        let r = req.into_inner();
        let given = r.config.ok_or_else(|| st(Error::invalid("config", "is required")))?;
        let next = config_in(&self.engine.config(), &given, &r.update_mask).map_err(st)?;
        let saved = self.engine.update_config(next).await.map_err(st)?;
        Ok(Response::new(config_out(&saved)))
    }
}

// ---- conversions ----------------------------------------------------------------------

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
fn status_in(v: i32) -> Result<Option<St>> {
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

fn status_out(s: &DrsStatusReport) -> pb::DrsStatus {
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
        automation_level: match c.automation_level {
            AutomationLevel::Manual => pb::AutomationLevel::Manual,
            AutomationLevel::Partial => pb::AutomationLevel::Partial,
            AutomationLevel::Full => pb::AutomationLevel::Full,
        } as i32,
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

/// The fields of `update_mask` (snake_case or camelCase) taken from `given`, the rest kept
/// from `current`; an empty mask takes every field. Validation is the engine's
/// (`DrsConfig::validate`).
pub fn config_in(current: &DrsConfig, given: &pb::DrsConfig, mask: &[String]) -> Result<DrsConfig> {
    const FIELDS: [&str; 20] = [
        "enabled",
        "interval_seconds",
        "automation_level",
        "threshold_cpu",
        "threshold_memory",
        "migration_threshold",
        "max_concurrent_migrations_per_host",
        "hysteresis_margin",
        "hysteresis_hold_count",
        "migration_bandwidth_mib_per_second",
        "dpm_enabled",
        "dpm_automation_level",
        "dpm_power_off_below",
        "dpm_power_on_above",
        "dpm_min_hosts_on",
        "dpm_hold_count",
        "dpm_opt_out",
        "dpm_failover_hosts",
        "dpm_watts_per_host",
        "migrations_per_host_per_round",
    ];
    let mut fields = Vec::new();
    for m in mask {
        let snake = to_snake(m.trim());
        let f = FIELDS
            .iter()
            .find(|f| **f == snake)
            .ok_or_else(|| Error::invalid("update_mask", format!("{m:?} is not a DRS config field")))?;
        fields.push(*f);
    }
    if mask.is_empty() {
        fields.extend(FIELDS);
    }
    let mut c = current.clone();
    for f in fields {
        match f {
            "enabled" => c.enabled = given.enabled,
            "interval_seconds" => c.interval = Duration::from_secs(u64::from(given.interval_seconds)),
            "automation_level" => {
                c.automation_level = match pb::AutomationLevel::try_from(given.automation_level) {
                    Ok(pb::AutomationLevel::Manual) => AutomationLevel::Manual,
                    Ok(pb::AutomationLevel::Partial) => AutomationLevel::Partial,
                    Ok(pb::AutomationLevel::Full) => AutomationLevel::Full,
                    _ => {
                        return Err(Error::invalid(
                            "config.automation_level",
                            "must be AUTOMATION_LEVEL_MANUAL, _PARTIAL or _FULL",
                        ));
                    }
                }
            }
            "threshold_cpu" => c.threshold_cpu = given.threshold_cpu,
            "threshold_memory" => c.threshold_memory = given.threshold_memory,
            "migration_threshold" => {
                c.migration_threshold = u8::try_from(given.migration_threshold).unwrap_or(u8::MAX);
            }
            "max_concurrent_migrations_per_host" => {
                c.max_concurrent_migrations_per_host = given.max_concurrent_migrations_per_host;
            }
            "hysteresis_margin" => c.hysteresis_margin = given.hysteresis_margin,
            "hysteresis_hold_count" => c.hysteresis_hold_count = given.hysteresis_hold_count,
            "migration_bandwidth_mib_per_second" => {
                c.migration_bandwidth_mib_per_second = given.migration_bandwidth_mib_per_second;
            }
            "dpm_enabled" => c.dpm.enabled = given.dpm_enabled,
            "dpm_automation_level" => {
                c.dpm.automation_level = level_in("config.dpm_automation_level", given.dpm_automation_level)?;
            }
            "dpm_power_off_below" => c.dpm.power_off_below = given.dpm_power_off_below,
            "dpm_power_on_above" => c.dpm.power_on_above = given.dpm_power_on_above,
            "dpm_min_hosts_on" => c.dpm.min_hosts_on = given.dpm_min_hosts_on,
            "dpm_hold_count" => c.dpm.hold_count = given.dpm_hold_count,
            "dpm_opt_out" => c.dpm.opt_out = given.dpm_opt_out.clone(),
            "dpm_failover_hosts" => c.dpm.failover_hosts = given.dpm_failover_hosts,
            "dpm_watts_per_host" => c.dpm.watts_per_host = given.dpm_watts_per_host,
            "migrations_per_host_per_round" => c.migrations_per_host_per_round = given.migrations_per_host_per_round,
            _ => {}
        }
    }
    c.validate()?;
    Ok(c)
}

fn to_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for ch in s.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
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
        // An empty mask takes every field, so zeros fail validation.
        assert!(config_in(&cur, &given, &[]).is_err());
        let back = config_in(&cur, &config_out(&cur), &[]).unwrap();
        assert_eq!(back, cur);
    }
}

//! limiquantix.drs.v1.DRSService: decode, call the DRS engine (lqx-core `drs::engine`),
//! encode.

use super::{request_id, st};
use lqx_core::Error;
use lqx_core::api::convert::drs::{config_in, config_out, rec_id_in as rec_id, rec_out, status_in, status_out};
use lqx_core::api::drs::v1::{self as pb, drs_service_server::DrsService};
use lqx_core::drs::engine::DrsEngine;
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

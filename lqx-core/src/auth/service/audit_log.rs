//! The audit log: recording (anonymous refusals summarised), listing and retention.

use super::*;

impl AuthService {
    pub async fn record_audit(&self, e: &AuditEntry) -> Result<()> {
        self.store.insert_audit(e).await
    }

    /// Records the entry of a finished request, except a refusal of a caller without a
    /// credential beyond the limits of [`super::audit_volume`] (counted for a summary
    /// instead). Returns whether the entry was written.
    pub async fn record_request_audit(&self, e: &AuditEntry) -> Result<bool> {
        let anonymous_refusal =
            matches!(e.actor, crate::model::Actor::Anonymous { .. }) && e.result != crate::model::AuditResult::Ok;
        if anonymous_refusal && !lock(&self.denials).admit(&e.client_address, self.now_ms()) {
            return Ok(false);
        }
        self.store.insert_audit(e).await?;
        Ok(true)
    }

    /// Writes the summaries of refusals not recorded one by one in windows that have ended.
    pub async fn flush_suppressed_denials(&self) -> Result<usize> {
        let summaries = lock(&self.denials).take_summaries(self.now_ms());
        let now = self.now();
        for s in &summaries {
            self.store
                .insert_audit(&crate::auth::audit_volume::summary_entry(now, s))
                .await?;
        }
        Ok(summaries.len())
    }

    /// Deletes audit entries past `retention`, and records that it did (when it did).
    pub async fn prune_audit(&self, retention: &crate::auth::audit_volume::Retention) -> Result<u64> {
        let now = self.now();
        let removed = self
            .store
            .prune_audit(retention.cutoff(now), retention.max_entries)
            .await?;
        if removed > 0 {
            self.store
                .insert_audit(&crate::auth::audit_volume::prune_entry(now, removed, retention))
                .await?;
        }
        Ok(removed)
    }

    pub async fn list_audit(
        &self,
        p: &Principal,
        mut filter: AuditFilter,
        page_size: u32,
        token: &str,
    ) -> Result<AuditPage> {
        // Global audit readers see everything (optionally narrowed by `filter.projects`);
        // project members see the entries of their projects where they hold audit:read.
        if !p.can(Permission::AuditRead) {
            let mine = p.projects_with(Permission::AuditRead).unwrap_or_default();
            if mine.is_empty() {
                return Err(AuthError::PermissionDenied {
                    permission: Permission::AuditRead,
                }
                .into());
            }
            filter.projects = Some(match filter.projects {
                Some(asked) => asked.into_iter().filter(|a| mine.contains(a)).collect(),
                None => mine,
            });
        }
        filter.action = filter
            .action
            .filter(|a| !a.is_empty())
            .map(|a| crate::auth::audit::action_name(&a));
        self.store.list_audit(&filter, page_size, token).await
    }
}

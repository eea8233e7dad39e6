//! API keys: created for their owner, capped by the owner's role, revocable.

use super::*;

impl AuthService {
    /// CreateAPIKey: a key for the caller acting in `project` (name or id; empty: the
    /// default) with `role` (empty: the caller's own there) no higher than the caller's role
    /// there. The secret is returned once and never stored.
    pub async fn create_api_key(
        &self,
        p: &Principal,
        name: &str,
        role: &str,
        project: &str,
        ttl_seconds: u64,
        note: &AuditNote,
    ) -> Result<(ApiKey, Secret)> {
        let project = self.project_for(p, project, Permission::ApiKeyManage, note).await?;
        let mut creator = self.store.get_user(p.user_id).await?.ok_or(AuthError::SessionRevoked)?;
        // The cap is the creator's role in the key's project.
        creator.role = p.role_in(project.id).unwrap_or(Role::None);
        let role = if role.is_empty() {
            creator.role
        } else {
            Role::parse("role", role)?
        };
        // A prefix collision (1 in 36^8 per pair) gets a fresh key.
        for _ in 0..3 {
            let (key, secret) = apikey::new_api_key(&creator, name, role, project.id, ttl_seconds, self.now())?;
            match self.store.create_api_key(&key).await {
                Ok(()) => {
                    note.resource("api_key", key.id);
                    tracing::info!(key = %key.id, name = %key.name, role = %key.role, owner = %creator.username, "API key created");
                    return Ok((key, secret));
                }
                Err(e) if e.kind == crate::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal(anyhow::anyhow!("API key prefixes kept colliding")))
    }

    /// The caller's keys, or (`all`, with `user:manage`) everybody's.
    pub async fn list_api_keys(&self, p: &Principal, all: bool) -> Result<Vec<ApiKey>> {
        p.require(Permission::ApiKeyManage)?;
        if all {
            p.require(Permission::UserManage)?;
            self.store.list_api_keys(None).await
        } else {
            self.store.list_api_keys(Some(p.user_id)).await
        }
    }

    /// Revokes one of the caller's keys (any key with `user:manage`). Revoking twice is fine.
    pub async fn revoke_api_key(&self, p: &Principal, id: &str, note: &AuditNote) -> Result<()> {
        p.require(Permission::ApiKeyManage)?;
        let id = ApiKeyId::parse("id", id)?;
        note.resource("api_key", id);
        let key = self
            .store
            .get_api_key(id)
            .await?
            .filter(|k| k.owner_id == p.user_id || p.can(Permission::UserManage))
            .ok_or_else(|| Error::not_found("API key", id))?;
        if self.store.revoke_api_key(key.id, self.now()).await? {
            tracing::info!(key = %key.id, name = %key.name, by = %p.username, "API key revoked");
        }
        Ok(())
    }
}

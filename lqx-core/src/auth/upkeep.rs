//! Periodic upkeep of the auth tables, run by the server's pruning loop.

use super::service::AuthService;
use crate::Result;

/// How long an ended session is kept for inspection before it is pruned.
const ENDED_SESSIONS_KEPT: chrono::Duration = chrono::Duration::days(1);

impl AuthService {
    /// Removes sessions that ended more than a day ago; the number removed. Idempotent, so
    /// any replica may run it.
    pub async fn prune_ended_sessions(&self) -> Result<u64> {
        self.store().prune_sessions(self.now() - ENDED_SESSIONS_KEPT).await
    }
}

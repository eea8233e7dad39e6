//! Agents that follow the leader: where each control-plane replica can be reached, which
//! one leads, and whether a leader change fits inside the agents' self-fence deadline.
//!
//! - Each replica records its advertised URL under its leader-election holder id at start.
//! - Agent heartbeats are answered only by the leader (see `crate::ha::manager`); another
//!   replica refuses them with the leader's URL ([`leader_url`]), and the agent switches to it
//!   within the same heartbeat.
//! - A new leader starts every node's clock at its takeover (`crate::ha::health`), so the
//!   gap is not counted as the agents' silence; what must fit within `self_fence_after` is the
//!   takeover itself plus the agents' switch ([`check_handover`]).

use std::time::Duration;

use crate::{ha::HaConfig, leader::LeaderConfig, store::Store};

const URL_KEY: &str = "replica-url/";

/// The gRPC status metadata key with the leader's URL, on a refused heartbeat.
pub const LEADER_URL_HEADER: &str = "lqx-leader-url";

/// The longest an agent waits between heartbeat attempts while it cannot renew: one
/// heartbeat interval (jittered down to half), so it reaches a new leader within one
/// interval of the takeover.
pub fn agent_retry_cap(heartbeat_interval: Duration) -> Duration {
    heartbeat_interval.max(Duration::from_millis(100))
}

/// How long one heartbeat attempt to one replica may take before the agent tries the next
/// (a stopped replica accepts connections and never answers).
pub fn agent_call_timeout(heartbeat_interval: Duration) -> Duration {
    heartbeat_interval.clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// Records the URL agents reach replica `holder` at.
pub async fn advertise(store: &Store, holder: &str, url: &str) -> crate::Result<()> {
    store
        .kv_put(&format!("{URL_KEY}{holder}"), url)
        .await
        .map_err(crate::Error::from)
}

/// The current leader's advertised URL, when a replica holds an unexpired lease.
pub async fn leader_url(store: &Store) -> crate::Result<Option<String>> {
    let row = store.leader_row().await?;
    if row.holder.is_empty() || row.expires_in_ms <= 0 {
        return Ok(None);
    }
    Ok(store
        .kv_get(&format!("{URL_KEY}{}", row.holder))
        .await
        .map_err(crate::Error::from)?
        .map(|(v, _)| v))
}

/// Worst case from a leader's death to every agent renewed by the new one: the lease runs
/// out, a replica's next attempt takes it (a renew interval), its HA manager answers, and an
/// agent that just failed waits its retry delay, may be waiting on a stopped replica (call
/// timeout) and is redirected: two heartbeat intervals of slack.
pub fn handover_time(leader: &LeaderConfig, ha: &HaConfig) -> Duration {
    leader.lease_ttl
        + leader.renew_interval()
        + agent_retry_cap(ha.heartbeat_interval)
        + agent_call_timeout(ha.heartbeat_interval)
        + ha.heartbeat_interval * 2
}

/// Refuses settings where a leader change could make healthy agents fence themselves.
pub fn check_handover(leader: &LeaderConfig, ha: &HaConfig) -> Result<(), String> {
    let t = handover_time(leader, ha);
    if t >= ha.self_fence_after {
        return Err(format!(
            "a leader change can take {} (leader.lease_ttl {} + renew interval {} + agent retry {} + call timeout {} + 2 heartbeat intervals), \
             not less than ha.self_fence_after ({}): agents would fence their HA VMs; shorten leader.lease_ttl or lengthen self_fence_after and lease_ttl",
            humantime::format_duration(t),
            humantime::format_duration(leader.lease_ttl),
            humantime::format_duration(leader.renew_interval()),
            humantime::format_duration(agent_retry_cap(ha.heartbeat_interval)),
            humantime::format_duration(agent_call_timeout(ha.heartbeat_interval)),
            humantime::format_duration(ha.self_fence_after)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_and_a_long_leader_lease_is_refused() {
        let (l, h) = (LeaderConfig::default(), HaConfig::default());
        // 15 + 5 + 2 + 2 + 4 = 28 s < 33 s.
        assert_eq!(handover_time(&l, &h), Duration::from_secs(28));
        check_handover(&l, &h).unwrap();
        let long = LeaderConfig {
            lease_ttl: Duration::from_secs(21),
        };
        assert!(check_handover(&long, &h).unwrap_err().contains("leader.lease_ttl"));
    }

    #[tokio::test]
    async fn the_leader_url_follows_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        for (_, store) in crate::store::testing::engines(dir.path()).await {
            assert_eq!(leader_url(&store).await.unwrap(), None);
            advertise(&store, "a/1/x", "http://10.0.0.1:8080").await.unwrap();
            advertise(&store, "b/2/y", "http://10.0.0.2:8080").await.unwrap();
            store
                .leader_acquire("b/2/y", Duration::from_secs(5))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                leader_url(&store).await.unwrap().as_deref(),
                Some("http://10.0.0.2:8080")
            );
        }
    }
}

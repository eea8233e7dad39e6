//! Leader lease, HA state and the journal of leader-only actions.
//!
//! Times here are the DATABASE's clock (unix milliseconds), read inside the statements that
//! use them, so replicas never compare their own clocks. Every leader-only write is
//! conditional, in the same statement, on the lease row still naming the writer's holder and
//! epoch with an unexpired lease: a leader that was paused past its lease and resumes has
//! every write refused, whatever its own clock says.

use super::{Backend, Store, StoreError};
use crate::leader::Epoch;
use crate::model::Vm;
use crate::{Error, Result};
use std::time::Duration;

/// The lease row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRow {
    /// Empty when no control plane ever led (or the last one released).
    pub holder: String,
    pub epoch: u64,
    /// Milliseconds until the lease expires, by the database's clock (negative: expired).
    pub expires_in_ms: i64,
    /// When the current term began (database clock, unix ms).
    pub acquired_at_ms: i64,
}

impl LeaderRow {
    /// Someone holds an unexpired lease.
    pub fn is_held(&self) -> bool {
        !self.holder.is_empty() && self.expires_in_ms > 0
    }
}

/// A value of `ha_state` with the term that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaStateRow {
    pub value: String,
    pub epoch: u64,
    pub holder: String,
    /// Database clock, unix ms.
    pub updated_at_ms: i64,
}

/// One leader-only action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub seq: i64,
    pub epoch: u64,
    pub holder: String,
    /// Database clock, unix ms.
    pub at_ms: i64,
    pub kind: String,
    pub subject: String,
    pub detail: String,
}

/// The refusal every stale leader-only write gets.
pub fn not_the_leader(epoch: &Epoch) -> Error {
    Error::precondition(format!(
        "not the leader: epoch {} of {} is no longer the current term",
        epoch.number, epoch.holder
    ))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// The database's clock as a SQL expression (unix milliseconds).
    fn db_now(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        }
    }

    /// The fencing condition with the epoch at `$e` and the holder at `$h`.
    fn fence(&self, e: usize, h: usize) -> String {
        format!(
            "EXISTS (SELECT 1 FROM leader WHERE id = 1 AND epoch = ${e} AND holder = ${h} AND expires_at > {})",
            self.db_now()
        )
    }

    /// The database's clock now (unix ms).
    pub async fn db_now_ms(&self) -> Result<i64> {
        let (t,): (i64,) = sqlx::query_as(&format!("SELECT {}", self.db_now()))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(t)
    }

    /// Takes or renews the lease for `holder` for `ttl`: granted when `holder` already holds
    /// it or it has expired. A new term (another holder, or an expired lease) bumps the
    /// epoch. Returns the epoch, or None when someone else holds an unexpired lease.
    pub async fn leader_acquire(&self, holder: &str, ttl: Duration) -> Result<Option<u64>> {
        let now = self.db_now();
        let sql = format!(
            "UPDATE leader SET \
               epoch = CASE WHEN holder = $1 AND expires_at > {now} THEN epoch ELSE epoch + 1 END, \
               acquired_at = CASE WHEN holder = $1 AND expires_at > {now} THEN acquired_at ELSE {now} END, \
               holder = $1, \
               expires_at = {now} + $2 \
             WHERE id = 1 AND (holder = $1 OR expires_at <= {now}) \
             RETURNING epoch"
        );
        let row: Option<(i64,)> = sqlx::query_as(&sql)
            .bind(holder)
            .bind(ms(ttl))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(row.map(|(e,)| e as u64))
    }

    /// Gives the lease up (graceful shutdown) so another replica leads at once.
    pub async fn leader_release(&self, epoch: &Epoch) -> Result<bool> {
        let r = sqlx::query("UPDATE leader SET expires_at = 0 WHERE id = 1 AND epoch = $1 AND holder = $2")
            .bind(epoch.number as i64)
            .bind(&*epoch.holder)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn leader_row(&self) -> Result<LeaderRow> {
        let sql = format!(
            "SELECT holder, epoch, expires_at - {}, acquired_at FROM leader WHERE id = 1",
            self.db_now()
        );
        let (holder, epoch, expires_in_ms, acquired_at_ms): (String, i64, i64, i64) = sqlx::query_as(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(LeaderRow {
            holder,
            epoch: epoch as u64,
            expires_in_ms,
            acquired_at_ms,
        })
    }

    /// Ok when `epoch` is the current, unexpired term; the refusal otherwise.
    pub async fn leader_check(&self, epoch: &Epoch) -> Result<()> {
        let sql = format!(
            "SELECT COUNT(*) FROM leader WHERE id = 1 AND epoch = $1 AND holder = $2 AND expires_at > {}",
            self.db_now()
        );
        let (n,): (i64,) = sqlx::query_as(&sql)
            .bind(epoch.number as i64)
            .bind(&*epoch.holder)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)?;
        if n == 1 { Ok(()) } else { Err(not_the_leader(epoch)) }
    }

    /// Sets `key` in `ha_state` as the leader of `epoch` (refused when stale).
    pub async fn ha_state_put(&self, key: &str, value: &str, epoch: &Epoch) -> Result<()> {
        let sql = format!(
            "INSERT INTO ha_state (key, value, epoch, holder, updated_at) \
             SELECT $1, $2, $3, $4, {} WHERE {} \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, epoch = excluded.epoch, \
               holder = excluded.holder, updated_at = excluded.updated_at",
            self.db_now(),
            self.fence(3, 4)
        );
        let r = sqlx::query(&sql)
            .bind(key)
            .bind(value)
            .bind(epoch.number as i64)
            .bind(&*epoch.holder)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        if r.rows_affected() == 0 {
            return Err(not_the_leader(epoch));
        }
        Ok(())
    }

    pub async fn ha_state_get(&self, key: &str) -> Result<Option<HaStateRow>> {
        let row: Option<(String, i64, String, i64)> =
            sqlx::query_as("SELECT value, epoch, holder, updated_at FROM ha_state WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?;
        Ok(row.map(|(value, epoch, holder, updated_at_ms)| HaStateRow {
            value,
            epoch: epoch as u64,
            holder,
            updated_at_ms,
        }))
    }

    /// Appends a leader-only action to the journal (refused when `epoch` is stale).
    pub async fn ha_journal_append(&self, epoch: &Epoch, kind: &str, subject: &str, detail: &str) -> Result<()> {
        let sql = format!(
            "INSERT INTO ha_journal (epoch, holder, at, kind, subject, detail) \
             SELECT $1, $2, {}, $3, $4, $5 WHERE {}",
            self.db_now(),
            self.fence(1, 2)
        );
        let r = sqlx::query(&sql)
            .bind(epoch.number as i64)
            .bind(&*epoch.holder)
            .bind(kind)
            .bind(subject)
            .bind(detail)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        if r.rows_affected() == 0 {
            return Err(not_the_leader(epoch));
        }
        Ok(())
    }

    /// The latest `limit` journal entries, oldest first.
    pub async fn ha_journal(&self, limit: u32) -> Result<Vec<JournalEntry>> {
        let rows: Vec<(i64, i64, String, i64, String, String, String)> = sqlx::query_as(
            "SELECT seq, epoch, holder, at, kind, subject, detail FROM ha_journal ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        let mut v: Vec<JournalEntry> = rows
            .into_iter()
            .map(|(seq, epoch, holder, at_ms, kind, subject, detail)| JournalEntry {
                seq,
                epoch: epoch as u64,
                holder,
                at_ms,
                kind,
                subject,
                detail,
            })
            .collect();
        v.reverse();
        Ok(v)
    }

    /// Writes `vm` (conditional on its resource version) as the leader of `epoch`: refused
    /// with "not the leader" when the term is over, Aborted when the VM changed meanwhile.
    /// Labels are not rewritten (leader-only writes never change them).
    pub async fn update_vm_as_leader(&self, vm: &Vm, epoch: &Epoch) -> Result<Vm> {
        let t = self.vm_cache.ticket();
        let r = self.write_vm_as_leader(vm, epoch).await;
        match &r {
            Ok(next) => self.vm_cache.wrote(t, next),
            Err(_) => self.vm_cache.forget(vm.id),
        }
        r
    }

    async fn write_vm_as_leader(&self, vm: &Vm, epoch: &Epoch) -> Result<Vm> {
        let mut next = vm.clone();
        next.resource_version += 1;
        next.updated_at = chrono::Utc::now();
        let sql = format!(
            "UPDATE vms SET node_id = $1, state = $2, data = $3, resource_version = $4 \
             WHERE id = $5 AND resource_version = $6 AND {}",
            self.fence(7, 8)
        );
        let r = sqlx::query(&sql)
            .bind(next.status.node_id.map(|n| n.to_string()))
            .bind(next.status.state.as_str())
            .bind(serde_json::to_string(&next).map_err(StoreError::from)?)
            .bind(next.resource_version as i64)
            .bind(vm.id.to_string())
            .bind(vm.resource_version as i64)
            .bind(epoch.number as i64)
            .bind(&*epoch.holder)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        if r.rows_affected() == 0 {
            self.leader_check(epoch).await?;
            self.vm_stored(vm.id).await?;
            return Err(Error::aborted(format!(
                "VM {} was changed concurrently (resource version {} is stale)",
                vm.name, vm.resource_version
            )));
        }
        Ok(next)
    }
}

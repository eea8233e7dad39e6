//! The log of multi-step operations in progress (see [`crate::saga`]), and the VM writes that
//! begin or end one in the same transaction.

use super::{Store, StoreError, is_unique_violation, millis};
use crate::model::{Vm, VmId};
use crate::saga::{OpKind, OpParams, Operation};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// What [`Store::create_vm_recorded`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Created,
    /// The idempotency key was taken first (by a concurrent request with the same key): its
    /// stored answer; nothing was written.
    KeyTaken(String),
}

type Row = (String, String, String, String, String, i64, i64);

fn from_row((id, kind, vm, owner, data, created, updated): Row) -> Result<Operation> {
    let kind =
        OpKind::parse(&kind).ok_or_else(|| Error::internal(anyhow::anyhow!("unknown operation kind {kind:?}")))?;
    let params: OpParams = serde_json::from_str(&data).map_err(StoreError::from)?;
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    Ok(Operation {
        id,
        kind,
        vm: VmId::parse("vm_id", &vm)?,
        owner,
        params,
        created_at: at(created),
        updated_at: at(updated),
    })
}

async fn insert_op(conn: &mut AnyConnection, op: &Operation) -> Result<()> {
    sqlx::query(
        "INSERT INTO operations (id, kind, vm_id, owner, data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&op.id)
    .bind(op.kind.as_str())
    .bind(op.vm.to_string())
    .bind(&op.owner)
    .bind(serde_json::to_string(&op.params).map_err(StoreError::from)?)
    .bind(millis(op.created_at))
    .bind(millis(op.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

async fn delete_op(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM operations WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map_err(StoreError::from)?;
    Ok(())
}

impl Store {
    /// Records an operation on its own (its first write is not a VM write).
    pub async fn op_begin(&self, op: &Operation) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        insert_op(&mut conn, op).await
    }

    /// Ends an operation (finished or undone).
    pub async fn op_end(&self, id: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        delete_op(&mut conn, id).await
    }

    /// Marks an operation as still running (its `updated_at`), so recovery elsewhere leaves
    /// it alone; false when it has ended.
    pub async fn op_touch(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query("UPDATE operations SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(millis(at))
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(r.rows_affected() > 0)
    }

    /// The operation of `kind` in progress on `vm`, if any.
    pub async fn op_for_vm(&self, vm: VmId, kind: OpKind) -> Result<Option<Operation>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, kind, vm_id, owner, data, created_at, updated_at FROM operations \
             WHERE vm_id = $1 AND kind = $2 ORDER BY created_at LIMIT 1",
        )
        .bind(vm.to_string())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        row.map(from_row).transpose()
    }

    /// Operations in progress, oldest first.
    pub async fn op_list(&self) -> Result<Vec<Operation>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, kind, vm_id, owner, data, created_at, updated_at FROM operations ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        rows.into_iter().map(from_row).collect()
    }

    /// Inserts a new VM together with its idempotency key (if any) and the operation that
    /// creates it, in one transaction: the key can never name a VM that was not written, and
    /// of two requests with the same key exactly one writes.
    pub async fn create_vm_recorded(&self, vm: &Vm, key: Option<(&str, &str)>, op: &Operation) -> Result<Recorded> {
        let t = self.vm_cache.ticket();
        let r = async {
            let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
            if let Some((key, response)) = key {
                // Plain INSERT: a key already taken fails the statement and the transaction.
                let ins = sqlx::query("INSERT INTO idempotency (key, response, created_at) VALUES ($1, $2, $3)")
                    .bind(key)
                    .bind(response)
                    .bind(millis(Utc::now()))
                    .execute(&mut *tx)
                    .await;
                match ins {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        drop(tx);
                        let stored = self.idempotent_get(key).await?.unwrap_or_default();
                        return Ok(Recorded::KeyTaken(stored));
                    }
                    Err(e) => return Err(StoreError::from(e).into()),
                }
            }
            // The project's quota, checked under its row lock in this transaction (as every
            // VM write does): concurrent creates at the edge never exceed it.
            super::projects::admit_new_vm(&mut tx, vm).await?;
            Self::insert_vm_in(&mut tx, vm).await?;
            insert_op(&mut tx, op).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(Recorded::Created)
        }
        .await;
        match &r {
            Ok(Recorded::Created) => self.vm_cache.wrote(t, vm),
            _ => self.vm_cache.forget(vm.id),
        }
        r
    }

    /// Undoes a create: removes the VM, its idempotency key and the operation, in one
    /// transaction. A VM already gone is fine.
    pub async fn undo_create_vm(&self, op: &Operation) -> Result<()> {
        let r = async {
            let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
            sqlx::query("DELETE FROM vms WHERE id = $1")
                .bind(op.vm.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            if let Some(key) = &op.params.idempotency_key {
                sqlx::query("DELETE FROM idempotency WHERE key = $1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
            }
            delete_op(&mut tx, &op.id).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(())
        }
        .await;
        self.vm_cache.forget(op.vm);
        r
    }

    /// Writes `vm` (conditional on its resource version, as [`Store::update_vm`]) and, in
    /// the same transaction, begins `begin` and ends the operation `end`.
    pub async fn update_vm_op(&self, vm: &Vm, begin: Option<&Operation>, end: Option<&str>) -> Result<Vm> {
        let t = self.vm_cache.ticket();
        let r = async {
            let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
            let next = match Self::write_vm_in(&mut tx, vm).await? {
                Some(next) => next,
                None => {
                    drop(tx);
                    return Err(self.stale_vm(vm).await);
                }
            };
            if let Some(op) = begin {
                insert_op(&mut tx, op).await?;
            }
            if let Some(id) = end {
                delete_op(&mut tx, id).await?;
            }
            tx.commit().await.map_err(StoreError::from)?;
            Ok(next)
        }
        .await;
        match &r {
            Ok(next) => self.vm_cache.wrote(t, next),
            Err(_) => self.vm_cache.forget(vm.id),
        }
        r
    }

    /// Deletes a VM (whatever its version) and ends the operation `end` in one transaction.
    pub async fn delete_vm_op(&self, id: VmId, end: &str) -> Result<()> {
        let r = async {
            let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
            sqlx::query("DELETE FROM vms WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            delete_op(&mut tx, end).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(())
        }
        .await;
        self.vm_cache.forget(id);
        r
    }
}

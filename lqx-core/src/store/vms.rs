//! VM records.

use super::Sql;
use super::{Store, StoreError, is_unique_violation, millis, page_token};
use crate::model::{NodeId, ProjectId, Vm, VmId, VmState};
use crate::placement::NodeAllocation;
use crate::{Error, Result};
use sqlx::AnyConnection;
use std::collections::BTreeMap;

/// Filters of ListVMs; all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct VmFilter {
    pub project_id: Option<ProjectId>,
    pub node_id: Option<NodeId>,
    pub state: Option<VmState>,
    pub labels: BTreeMap<String, String>,
    pub name_prefix: Option<String>,
}

#[derive(Debug, Clone)]
pub struct VmPage {
    pub vms: Vec<Vm>,
    pub next_page_token: String,
    pub total_count: u64,
}

pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 100;

impl Store {
    pub async fn create_vm(&self, vm: &Vm) -> Result<()> {
        let t = self.vm_cache.ticket();
        let r = self.insert_vm(vm).await;
        match &r {
            Ok(()) => self.vm_cache.wrote(t, vm),
            Err(_) => self.vm_cache.forget(vm.id),
        }
        r
    }

    async fn insert_vm(&self, vm: &Vm) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        super::projects::admit_new_vm(&mut tx, vm).await?;
        Self::insert_vm_in(&mut tx, vm).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Inserts a VM and its labels on `conn` (inside the caller's transaction).
    pub(super) async fn insert_vm_in(conn: &mut AnyConnection, vm: &Vm) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO vms (id, project_id, name, node_id, state, data, resource_version, created_at, \
             cpu_cores, memory_mib, anti_affinity_group) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(vm.id.to_string())
        .bind(vm.project_id.to_string())
        .bind(&vm.name)
        .bind(vm.status.node_id.map(|n| n.to_string()))
        .bind(vm.status.state.as_str())
        .bind(serde_json::to_string(vm).map_err(StoreError::from)?)
        .bind(vm.resource_version as i64)
        .bind(millis(vm.created_at))
        .bind(vm.spec.cpu_cores as i64)
        .bind(vm.spec.memory_mib as i64)
        .bind(vm.spec.placement.anti_affinity_group.clone())
        .execute(&mut *conn)
        .await;
        if let Err(e) = r {
            if is_unique_violation(&e) {
                return Err(Error::already_exists("VM", &vm.name));
            }
            return Err(StoreError::from(e).into());
        }
        for (k, v) in &vm.labels {
            sqlx::query("INSERT INTO vm_labels (vm_id, key, value) VALUES ($1, $2, $3)")
                .bind(vm.id.to_string())
                .bind(k)
                .bind(v)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from)?;
        }
        Ok(())
    }

    pub async fn get_vm(&self, id: VmId) -> Result<Vm> {
        self.find_vm_by_id(id).await?.ok_or_else(|| Error::not_found("VM", id))
    }

    /// Looks a VM up by id or, failing that, by name within a project. A VM of another
    /// project is not found, whether named by id or by name.
    pub async fn resolve_vm(&self, id_or_name: &str, project: ProjectId) -> Result<Vm> {
        if id_or_name.trim().is_empty() {
            return Err(Error::invalid("id", "is required: a VM id or name"));
        }
        if let Ok(id) = id_or_name.parse::<VmId>()
            && let Some(vm) = self.find_vm_by_id(id).await?
            && vm.project_id == project
        {
            return Ok(vm);
        }
        self.find_vm("name = $1 AND project_id = $2", id_or_name, Some(&project.to_string()))
            .await?
            .ok_or_else(|| Error::not_found("VM", id_or_name))
    }

    /// Not found unless the database holds this VM (never the cache: after a failed write).
    pub(super) async fn vm_stored(&self, id: VmId) -> Result<()> {
        self.find_vm("id = $1", &id.to_string(), None)
            .await?
            .map(|_| ())
            .ok_or_else(|| Error::not_found("VM", id))
    }

    /// The VM with this id: from the cache when on, else (filling it) from the database.
    async fn find_vm_by_id(&self, id: VmId) -> Result<Option<Vm>> {
        if let Some(vm) = self.vm_cache.get(id) {
            return Ok(Some(vm));
        }
        let t = self.vm_cache.ticket();
        let vm = self.find_vm("id = $1", &id.to_string(), None).await?;
        if let Some(vm) = &vm {
            self.vm_cache.fill(t, vm);
        }
        Ok(vm)
    }

    async fn find_vm(&self, cond: &str, a: &str, b: Option<&str>) -> Result<Option<Vm>> {
        let sql = format!("SELECT data FROM vms WHERE {cond}");
        let mut q = sqlx::query_as::<_, (String,)>(&sql).bind(a);
        if let Some(b) = b {
            q = q.bind(b);
        }
        let row = q.fetch_optional(&self.pool).await.map_err(StoreError::from)?;
        Ok(row
            .map(|(d,)| serde_json::from_str(&d))
            .transpose()
            .map_err(StoreError::from)?)
    }

    /// Writes `vm` if the stored resource version is still `vm.resource_version`; the
    /// returned record carries the new version. A lost race gives `Aborted`.
    pub async fn update_vm(&self, vm: &Vm) -> Result<Vm> {
        self.update_vm_from(vm, None).await
    }

    /// [`Store::update_vm`] of a VM whose vCPUs/memory were `before` (as read at
    /// `vm.resource_version`): refused with resource_exhausted when the growth would take
    /// its project past its quota, checked in the write's transaction.
    pub async fn resize_vm(&self, vm: &Vm, before: (u64, u64)) -> Result<Vm> {
        self.update_vm_from(vm, Some(before)).await
    }

    async fn update_vm_from(&self, vm: &Vm, resized_from: Option<(u64, u64)>) -> Result<Vm> {
        let t = self.vm_cache.ticket();
        let r = self.write_vm(vm, resized_from).await;
        match &r {
            Ok(next) => self.vm_cache.wrote(t, next),
            Err(_) => self.vm_cache.forget(vm.id),
        }
        r
    }

    async fn write_vm(&self, vm: &Vm, resized_from: Option<(u64, u64)>) -> Result<Vm> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        if let Some(before) = resized_from {
            let project = super::projects::lock_project(&mut tx, vm.project_id)
                .await?
                .ok_or_else(|| Error::not_found("project", vm.project_id))?;
            let after = (u64::from(vm.spec.cpu_cores), vm.spec.memory_mib);
            super::projects::check_quota(&mut tx, &project, vm.id, Some(before), after).await?;
        }
        let Some(next) = Self::write_vm_in(&mut tx, vm).await? else {
            drop(tx);
            return Err(self.stale_vm(vm).await);
        };
        tx.commit().await.map_err(StoreError::from)?;
        Ok(next)
    }

    /// Why a conditional write of `vm` matched no row: gone (NotFound) or changed (Aborted).
    pub(super) async fn stale_vm(&self, vm: &Vm) -> Error {
        if let Err(e) = self.vm_stored(vm.id).await {
            return e;
        }
        Error::aborted(format!(
            "VM {} was changed concurrently (resource version {} is stale); read it again and retry",
            vm.name, vm.resource_version
        ))
    }

    /// Writes `vm` on `conn` if it is still at its resource version: the record as written,
    /// or None when the version did not match.
    pub(super) async fn write_vm_in(conn: &mut AnyConnection, vm: &Vm) -> Result<Option<Vm>> {
        let mut next = vm.clone();
        next.resource_version += 1;
        next.updated_at = chrono::Utc::now();
        let r = sqlx::query(
            "UPDATE vms SET name = $1, node_id = $2, state = $3, data = $4, resource_version = $5, \
             cpu_cores = $6, memory_mib = $7, anti_affinity_group = $8 WHERE id = $9 AND resource_version = $10",
        )
        .bind(&next.name)
        .bind(next.status.node_id.map(|n| n.to_string()))
        .bind(next.status.state.as_str())
        .bind(serde_json::to_string(&next).map_err(StoreError::from)?)
        .bind(next.resource_version as i64)
        .bind(next.spec.cpu_cores as i64)
        .bind(next.spec.memory_mib as i64)
        .bind(next.spec.placement.anti_affinity_group.clone())
        .bind(vm.id.to_string())
        .bind(vm.resource_version as i64)
        .execute(&mut *conn)
        .await;
        let r = match r {
            Ok(r) => r,
            Err(e) if is_unique_violation(&e) => return Err(Error::already_exists("VM", &vm.name)),
            Err(e) => return Err(StoreError::from(e).into()),
        };
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM vm_labels WHERE vm_id = $1")
            .bind(vm.id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        for (k, v) in &next.labels {
            sqlx::query("INSERT INTO vm_labels (vm_id, key, value) VALUES ($1, $2, $3)")
                .bind(vm.id.to_string())
                .bind(k)
                .bind(v)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from)?;
        }
        Ok(Some(next))
    }

    /// Deletes a VM at the given resource version (None: whatever the version).
    pub async fn delete_vm(&self, id: VmId, expected_version: Option<u64>) -> Result<()> {
        let r = self.remove_vm(id, expected_version).await;
        self.vm_cache.forget(id);
        r
    }

    async fn remove_vm(&self, id: VmId, expected_version: Option<u64>) -> Result<()> {
        let r = match expected_version {
            Some(v) => {
                sqlx::query("DELETE FROM vms WHERE id = $1 AND resource_version = $2")
                    .bind(id.to_string())
                    .bind(v as i64)
                    .execute(&self.pool)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM vms WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
            }
        }
        .map_err(StoreError::from)?;
        if r.rows_affected() == 0 {
            self.vm_stored(id).await?;
            return Err(Error::aborted(format!(
                "VM {id} was changed concurrently; read it again and retry"
            )));
        }
        Ok(())
    }

    /// One page of VMs ordered by name then id, and the total matching the filter.
    pub async fn list_vms(&self, filter: &VmFilter, page_size: u32, page_token: &str) -> Result<VmPage> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(page_token::decode(page_token)?)
        };

        let mut q = Sql::new("SELECT data, name, id FROM vms WHERE 1=1");
        push_filter(&mut q, filter);
        if let Some((name, id)) = &after {
            q.push(" AND (name > ")
                .bind(name.clone())
                .push(" OR (name = ")
                .bind(name.clone());
            q.push(" AND id > ").bind(id.clone()).push("))");
        }
        q.push(" ORDER BY name, id LIMIT ").bind(size as i64 + 1);
        let rows: Vec<(String, String, String)> = q.query_as().fetch_all(&self.pool).await.map_err(StoreError::from)?;

        let mut c = Sql::new("SELECT COUNT(*) FROM vms WHERE 1=1");
        push_filter(&mut c, filter);
        let (total,): (i64,) = c.query_as().fetch_one(&self.pool).await.map_err(StoreError::from)?;

        let more = rows.len() > size as usize;
        let rows = &rows[..rows.len().min(size as usize)];
        let next_page_token = match (more, rows.last()) {
            (true, Some((_, name, id))) => page_token::encode(name, id),
            _ => String::new(),
        };
        let vms = rows
            .iter()
            .map(|(d, _, _)| serde_json::from_str(d))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?;
        Ok(VmPage {
            vms,
            next_page_token,
            total_count: total as u64,
        })
    }

    /// The vCPUs and memory allocated on each node that holds VMs, leaving out `skip` (a VM
    /// being re-placed): what placement needs without reading every VM record.
    pub async fn allocation_by_node(&self, skip: Option<VmId>) -> Result<Vec<NodeAllocation>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT node_id, CAST(SUM(cpu_cores) AS BIGINT), CAST(SUM(memory_mib) AS BIGINT) FROM vms \
             WHERE node_id IS NOT NULL AND id <> $1 GROUP BY node_id",
        )
        .bind(skip.map(|v| v.to_string()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        rows.into_iter()
            .map(|(n, cpu, mem)| {
                Ok(NodeAllocation {
                    node: NodeId::parse("node_id", &n)?,
                    cpu_cores: cpu.max(0) as u64,
                    memory_mib: mem.max(0) as u64,
                })
            })
            .collect()
    }

    /// The nodes holding a VM of anti-affinity `group`, leaving out `skip`.
    pub async fn nodes_with_group(&self, group: &str, skip: Option<VmId>) -> Result<Vec<NodeId>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT node_id FROM vms WHERE anti_affinity_group = $1 AND node_id IS NOT NULL AND id <> $2",
        )
        .bind(group)
        .bind(skip.map(|v| v.to_string()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        rows.iter().map(|(n,)| NodeId::parse("node_id", n)).collect()
    }

    /// Every VM (for scheduling snapshots).
    pub async fn all_vms(&self) -> Result<Vec<Vm>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT data FROM vms ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(rows
            .iter()
            .map(|(d,)| serde_json::from_str(d))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?)
    }
}

fn push_filter(q: &mut Sql, f: &VmFilter) {
    if let Some(p) = f.project_id {
        q.push(" AND project_id = ").bind(p.to_string());
    }
    if let Some(n) = f.node_id {
        q.push(" AND node_id = ").bind(n.to_string());
    }
    if let Some(s) = f.state {
        q.push(" AND state = ").bind(s.as_str());
    }
    if let Some(prefix) = &f.name_prefix {
        // Names hold only [a-z0-9-], so no LIKE wildcard can hide in the prefix; checked
        // anyway so a bad filter matches nothing rather than everything.
        if prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            q.push(" AND name LIKE ").bind(format!("{prefix}%"));
        } else {
            q.push(" AND 1=0");
        }
    }
    for (k, v) in &f.labels {
        q.push(" AND EXISTS (SELECT 1 FROM vm_labels l WHERE l.vm_id = vms.id AND l.key = ")
            .bind(k.clone())
            .push(" AND l.value = ")
            .bind(v.clone())
            .push(")");
    }
}

//! Projects, their members, and quota checks inside VM write transactions.
//!
//! Quotas hold under concurrency because every VM create and resize in a project first
//! takes the project's row with a no-op write in its own transaction: on PostgreSQL that is
//! the row lock (creates in one project queue up, other projects go on), on SQLite the
//! database write lock. Usage is then summed and the VM written before the lock is let go.

use super::{Store, StoreError, is_unique_violation, millis};
use crate::model::{Project, ProjectId, ProjectMember, Role, Usage, UserId, VmId};
use crate::{Error, Result};
use sqlx::{Any, Transaction};

fn db(e: sqlx::Error) -> Error {
    StoreError::from(e).into()
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::from(e).into())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::from(e).into())
}

/// Takes `project`'s row for the rest of `tx` and returns it; `None` when there is no such
/// project. Must be the transaction's first statement (on SQLite a read first would make
/// the later write fail instead of wait when another writer came in between).
pub(super) async fn lock_project(tx: &mut Transaction<'_, Any>, project: ProjectId) -> Result<Option<Project>> {
    let r = sqlx::query("UPDATE projects SET created_at = created_at WHERE id = $1")
        .bind(project.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let (d,): (String,) = sqlx::query_as("SELECT data FROM projects WHERE id = $1")
        .bind(project.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
    parse(&d).map(Some)
}

/// What the project's VMs hold, leaving out `skip`.
pub(super) async fn usage_in(tx: &mut Transaction<'_, Any>, project: ProjectId, skip: Option<VmId>) -> Result<Usage> {
    let (n, cpu, mem): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(cpu_cores), 0) AS BIGINT), CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT) \
         FROM vms WHERE project_id = $1 AND id <> $2",
    )
    .bind(project.to_string())
    .bind(skip.map(|v| v.to_string()).unwrap_or_default())
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    Ok(Usage {
        vcpus: cpu.max(0) as u64,
        memory_mib: mem.max(0) as u64,
        vms: n.max(0) as u64,
    })
}

/// Locks a new VM's project and checks that the VM fits its quota, inside the transaction
/// that writes the VM (every VM create goes through here).
pub(super) async fn admit_new_vm(tx: &mut Transaction<'_, Any>, vm: &crate::model::Vm) -> Result<()> {
    let project = lock_project(tx, vm.project_id)
        .await?
        .ok_or_else(|| crate::Error::not_found("project", vm.project_id))?;
    check_quota(
        tx,
        &project,
        vm.id,
        None,
        (u64::from(vm.spec.cpu_cores), vm.spec.memory_mib),
    )
    .await
}

/// Refuses (resource_exhausted) when the VM going from `before` (`None`: a new VM) to
/// `after` vCPUs/MiB would take the project past its quota. Call after [`lock_project`].
pub(super) async fn check_quota(
    tx: &mut Transaction<'_, Any>,
    project: &Project,
    vm: VmId,
    before: Option<(u64, u64)>,
    after: (u64, u64),
) -> Result<()> {
    let q = project.quota;
    if q == Default::default() {
        return Ok(());
    }
    let others = usage_in(tx, project.id, Some(vm)).await?;
    let with = |v: Option<(u64, u64)>| match v {
        Some((cpu, mem)) => Usage {
            vcpus: others.vcpus + cpu,
            memory_mib: others.memory_mib + mem,
            vms: others.vms + 1,
        },
        None => others,
    };
    match q.refusal(&project.name, with(before), with(Some(after))) {
        Some(why) => Err(Error::exhausted(why)),
        None => Ok(()),
    }
}

impl Store {
    pub async fn create_project(&self, p: &Project) -> Result<()> {
        let r = sqlx::query("INSERT INTO projects (id, name, data, created_at) VALUES ($1, $2, $3, $4)")
            .bind(p.id.to_string())
            .bind(&p.name)
            .bind(json(p)?)
            .bind(millis(p.created_at))
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::already_exists("project", &p.name)),
            Err(e) => Err(db(e)),
        }
    }

    /// Every project, by name.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT data FROM projects ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|(d,)| parse(d)).collect()
    }

    /// Writes a changed project (name, description, quota).
    pub async fn update_project(&self, p: &Project) -> Result<()> {
        let r = sqlx::query("UPDATE projects SET name = $1, data = $2 WHERE id = $3")
            .bind(&p.name)
            .bind(json(p)?)
            .bind(p.id.to_string())
            .execute(&self.pool)
            .await;
        match r {
            Ok(r) if r.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(Error::not_found("project", &p.name)),
            Err(e) if is_unique_violation(&e) => Err(Error::already_exists("project", &p.name)),
            Err(e) => Err(db(e)),
        }
    }

    /// Deletes an empty project: refused while it holds VMs (checked under the project's
    /// lock, so no create slips in). Its members go with it, its API keys are revoked and
    /// its alerts removed; its audit entries stay.
    pub async fn delete_project(&self, id: ProjectId) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let p = lock_project(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("project", id))?;
        let usage = usage_in(&mut tx, id, None).await?;
        if usage.vms > 0 {
            return Err(Error::precondition(format!(
                "project {} still holds {} VM(s); delete or move them first",
                p.name, usage.vms
            )));
        }
        let now = millis(chrono::Utc::now());
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE project_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for sql in [
            "DELETE FROM alerts WHERE project_id = $1",
            "DELETE FROM project_members WHERE project_id = $1",
            "DELETE FROM projects WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// What the project's VMs hold.
    pub async fn project_usage(&self, id: ProjectId) -> Result<Usage> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let u = usage_in(&mut tx, id, None).await?;
        tx.rollback().await.map_err(db)?;
        Ok(u)
    }

    // ---- members --------------------------------------------------------------------

    /// Gives `user` `role` in `project` (replacing any role it had there).
    pub async fn set_project_member(&self, project: ProjectId, user: UserId, role: Role) -> Result<()> {
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(project.to_string())
        .bind(user.to_string())
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Takes `user` out of `project`; true when it was a member.
    pub async fn remove_project_member(&self, project: ProjectId, user: UserId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
            .bind(project.to_string())
            .bind(user.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    /// The members of a project, by username.
    pub async fn project_members(&self, project: ProjectId) -> Result<Vec<ProjectMember>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT m.user_id, u.username, m.role FROM project_members m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 ORDER BY u.username",
        )
        .bind(project.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(id, username, role)| {
                Ok(ProjectMember {
                    project_id: project,
                    user_id: UserId::parse("user_id", &id)?,
                    username,
                    role: Role::parse("role", &role)?,
                })
            })
            .collect()
    }

    /// The projects `user` is a member of, with its role in each.
    pub async fn project_roles(&self, user: UserId) -> Result<Vec<(ProjectId, Role)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT project_id, role FROM project_members WHERE user_id = $1 ORDER BY project_id")
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.iter()
            .map(|(p, r)| Ok((ProjectId::parse("project_id", p)?, Role::parse("role", r)?)))
            .collect()
    }
}

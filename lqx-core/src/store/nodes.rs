//! Node records.

use super::{Store, StoreError, is_unique_violation, millis};
use crate::model::{Node, NodeId};
use crate::power::PowerState;
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};

impl Store {
    pub async fn create_node(&self, node: &Node) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO nodes (id, name, phase, data, resource_version, created_at, power_state) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(node.id.to_string())
        .bind(&node.name)
        .bind(node.phase.as_str())
        .bind(serde_json::to_string(node).map_err(StoreError::from)?)
        .bind(node.resource_version as i64)
        .bind(millis(node.created_at))
        .bind(node.power.as_str())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::already_exists("node", &node.name)),
            Err(e) => Err(StoreError::from(e).into()),
        }
    }

    pub async fn get_node(&self, id: NodeId) -> Result<Node> {
        self.find_node("id = $1", &id.to_string())
            .await?
            .ok_or_else(|| Error::not_found("node", id))
    }

    /// Looks a node up by id or name.
    pub async fn resolve_node(&self, id_or_name: &str) -> Result<Node> {
        if id_or_name.trim().is_empty() {
            return Err(Error::invalid("id", "is required: a node id or name"));
        }
        if let Ok(id) = id_or_name.parse::<NodeId>()
            && let Some(n) = self.find_node("id = $1", &id.to_string()).await?
        {
            return Ok(n);
        }
        self.find_node("name = $1", id_or_name)
            .await?
            .ok_or_else(|| Error::not_found("node", id_or_name))
    }

    async fn find_node(&self, cond: &str, a: &str) -> Result<Option<Node>> {
        let sql = format!("SELECT data FROM nodes WHERE {cond}");
        let row: Option<(String,)> = sqlx::query_as(&sql)
            .bind(a)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(row
            .map(|(d,)| serde_json::from_str(&d))
            .transpose()
            .map_err(StoreError::from)?)
    }

    /// Conditional write, as for VMs.
    pub async fn update_node(&self, node: &Node) -> Result<Node> {
        let mut next = node.clone();
        next.resource_version += 1;
        let r = sqlx::query(
            "UPDATE nodes SET phase = $1, data = $2, resource_version = $3, power_state = $6 WHERE id = $4 AND resource_version = $5",
        )
        .bind(next.phase.as_str())
        .bind(serde_json::to_string(&next).map_err(StoreError::from)?)
        .bind(next.resource_version as i64)
        .bind(node.id.to_string())
        .bind(node.resource_version as i64)
        .bind(next.power.as_str())
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        if r.rows_affected() == 0 {
            self.get_node(node.id).await?;
            return Err(Error::aborted(format!(
                "node {} was changed concurrently; read it again and retry",
                node.name
            )));
        }
        Ok(next)
    }

    pub async fn delete_node(&self, id: NodeId) -> Result<()> {
        let r = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found("node", id));
        }
        Ok(())
    }

    /// Every node, ordered by name.
    pub async fn all_nodes(&self) -> Result<Vec<Node>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT data FROM nodes ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(rows
            .iter()
            .map(|(d,)| serde_json::from_str(d))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?)
    }

    /// The nodes whose power state is not `on` (standby or changing), by name, with their
    /// state: what HA and DPM look up on every round.
    pub async fn nodes_not_powered_on(&self) -> Result<Vec<(NodeId, PowerState)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, power_state FROM nodes WHERE power_state <> 'on' ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::from)?;
        rows.into_iter()
            .map(|(id, p)| {
                let id = id
                    .parse()
                    .map_err(|_| Error::internal(anyhow::anyhow!("bad node id in the store: {id}")))?;
                let p = PowerState::parse(&p)
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("bad power state in the store: {p}")))?;
                Ok((id, p))
            })
            .collect()
    }

    /// The names of the given nodes (unknown ids are left out), from a process-wide cache
    /// filled by one indexed read per node not seen before.
    pub async fn node_names(&self, ids: impl IntoIterator<Item = NodeId>) -> Result<HashMap<NodeId, String>> {
        let mut out = HashMap::new();
        let mut missing = HashSet::new();
        {
            let cache = self.node_names.read().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                match cache.get(&id) {
                    Some(n) => {
                        out.insert(id, n.clone());
                    }
                    None => {
                        missing.insert(id);
                    }
                }
            }
        }
        for id in missing {
            let row: Option<(String,)> = sqlx::query_as("SELECT name FROM nodes WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from)?;
            if let Some((name,)) = row {
                self.node_names
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, name.clone());
                out.insert(id, name);
            }
        }
        Ok(out)
    }
}

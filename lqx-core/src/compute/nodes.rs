//! Node operations.

use super::Compute;
use crate::driver::Hypervisor;
use crate::model::*;
use crate::{Error, Result};
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The filter of ListNodes: none set, every node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFilter {
    pub phase: Option<NodePhase>,
    /// Every one of these labels, with this value.
    pub labels: BTreeMap<String, String>,
}

impl NodeFilter {
    fn matches(&self, n: &Node) -> bool {
        self.phase.is_none_or(|p| n.phase == p) && self.labels.iter().all(|(k, v)| n.labels.get(k) == Some(v))
    }
}

/// One page of nodes, in name order; `next_page_token` is empty on the last page.
#[derive(Debug, Clone, Default)]
pub struct NodePage {
    pub nodes: Vec<Node>,
    pub next_page_token: String,
}

/// Page size of ListNodes when none is asked for, and the most one page holds.
const DEFAULT_NODE_PAGE: usize = 500;
const MAX_NODE_PAGE: usize = 1000;

/// The page of `nodes` (in name order) after `page_token` (the last name of the page
/// before). Nodes are few (hundreds), so they are filtered and paged in memory.
fn page_nodes(nodes: Vec<Node>, filter: &NodeFilter, page_size: u32, page_token: &str) -> NodePage {
    let mut nodes: Vec<Node> = nodes
        .into_iter()
        .filter(|n| filter.matches(n))
        .filter(|n| page_token.is_empty() || n.name.as_str() > page_token)
        .collect();
    let size = match page_size {
        0 => DEFAULT_NODE_PAGE,
        n => (n as usize).min(MAX_NODE_PAGE),
    };
    let next_page_token = if nodes.len() > size {
        nodes[size - 1].name.clone()
    } else {
        String::new()
    };
    nodes.truncate(size);
    NodePage { nodes, next_page_token }
}

/// A node as configured or as an agent registers it.
#[derive(Debug, Clone)]
pub struct NodeRegistration {
    pub name: String,
    pub hostname: String,
    pub management_address: String,
    pub labels: BTreeMap<String, String>,
    pub libvirt_uri: String,
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    /// Kept back for the host itself (not allocatable to VMs).
    pub reserved: Resources,
    pub maintenance: bool,
}

impl NodeRegistration {
    pub fn new(name: impl Into<String>, uri: impl Into<String>) -> Self {
        let name = name.into();
        NodeRegistration {
            hostname: name.clone(),
            name,
            management_address: String::new(),
            labels: BTreeMap::new(),
            libvirt_uri: uri.into(),
            cpu_overcommit: DEFAULT_CPU_OVERCOMMIT,
            memory_overcommit: DEFAULT_MEMORY_OVERCOMMIT,
            reserved: Resources::default(),
            maintenance: false,
        }
    }
}

impl Compute {
    /// Registers (or re-attaches) an in-process host: reads its capacity from the
    /// hypervisor, creates or refreshes the node record and connects it.
    pub async fn attach_node(&self, reg: NodeRegistration, hv: Arc<dyn Hypervisor>) -> Result<Node> {
        let info = hv.node_info().await?;
        let capacity = Resources {
            cpu_cores: info.cpus,
            memory_mib: info.memory_mib,
        };
        let allocatable = Resources {
            cpu_cores: capacity.cpu_cores.saturating_sub(reg.reserved.cpu_cores).max(1),
            memory_mib: capacity.memory_mib.saturating_sub(reg.reserved.memory_mib).max(64),
        };
        let node = match self.store.resolve_node(&reg.name).await {
            Ok(mut n) => {
                n.capacity = capacity;
                n.allocatable = allocatable;
                n.libvirt_uri = reg.libvirt_uri.clone();
                if !info.cpu_model.is_empty() {
                    n.cpu_model = info.cpu_model.clone();
                }
                n.last_heartbeat = Some(Utc::now());
                if n.phase == NodePhase::NotReady {
                    n.phase = NodePhase::Ready;
                }
                self.store.update_node(&n).await?
            }
            Err(e) if e.kind == crate::ErrorKind::NotFound => {
                let n = Node {
                    id: NodeId::new(),
                    name: reg.name.clone(),
                    hostname: if info.hostname.is_empty() {
                        reg.hostname.clone()
                    } else {
                        info.hostname.clone()
                    },
                    management_address: reg.management_address.clone(),
                    labels: reg.labels.clone(),
                    capacity,
                    allocatable,
                    cpu_overcommit: reg.cpu_overcommit,
                    memory_overcommit: reg.memory_overcommit,
                    phase: if reg.maintenance {
                        NodePhase::Maintenance
                    } else {
                        NodePhase::Ready
                    },
                    schedulable: true,
                    libvirt_uri: reg.libvirt_uri.clone(),
                    last_heartbeat: Some(Utc::now()),
                    usage: NodeUsage::default(),
                    resource_version: 1,
                    created_at: Utc::now(),
                    cpu_model: info.cpu_model.clone(),
                    power: crate::power::PowerState::On,
                };
                n.validate()?;
                self.store.create_node(&n).await?;
                self.publish_node(EventType::Created, &n);
                n
            }
            Err(e) => return Err(e),
        };
        self.hosts.insert(node.id, hv);
        Ok(node)
    }

    pub async fn get_node(&self, id_or_name: &str) -> Result<Node> {
        let mut n = self.store.resolve_node(id_or_name).await?;
        self.fill_usage(std::slice::from_mut(&mut n)).await?;
        Ok(n)
    }

    /// One page of the nodes `filter` selects, in name order.
    pub async fn list_nodes(&self, filter: &NodeFilter, page_size: u32, page_token: &str) -> Result<NodePage> {
        let mut nodes = self.store.all_nodes().await?;
        self.fill_usage(&mut nodes).await?;
        Ok(page_nodes(nodes, filter, page_size, page_token))
    }

    /// The node a request names (by name or id), without its usage.
    pub async fn resolve_node(&self, id_or_name: &str) -> Result<Node> {
        self.store.resolve_node(id_or_name).await
    }

    /// A resolver of node names and ids to ids, over the nodes as they are now (for
    /// requests that name several nodes, e.g. placement constraints).
    pub async fn node_resolver(&self) -> Result<impl Fn(&str) -> Option<NodeId> + use<>> {
        let nodes = self.store.all_nodes().await?;
        Ok(move |s: &str| {
            nodes
                .iter()
                .find(|n| n.name == s || n.id.to_string() == s)
                .map(|n| n.id)
        })
    }

    /// The names of these nodes (cached: a node's name never changes).
    pub async fn node_names(&self, ids: impl IntoIterator<Item = NodeId>) -> Result<HashMap<NodeId, String>> {
        self.store.node_names(ids).await
    }

    /// The names of every node.
    pub async fn all_node_names(&self) -> Result<HashMap<NodeId, String>> {
        Ok(self
            .store
            .all_nodes()
            .await?
            .into_iter()
            .map(|n| (n.id, n.name))
            .collect())
    }

    /// Allocation per node (sum of the specs of the VMs placed there).
    pub async fn allocations(&self) -> Result<BTreeMap<NodeId, Resources>> {
        let mut out: BTreeMap<NodeId, Resources> = BTreeMap::new();
        for vm in self.store.all_vms().await? {
            if let Some(n) = vm.status.node_id {
                let r = out.entry(n).or_default();
                r.cpu_cores += vm.spec.cpu_cores;
                r.memory_mib += vm.spec.memory_mib;
            }
        }
        Ok(out)
    }

    async fn fill_usage(&self, nodes: &mut [Node]) -> Result<()> {
        let vms = self.store.all_vms().await?;
        for n in nodes.iter_mut() {
            n.usage.running_vms = vms
                .iter()
                .filter(|v| v.status.node_id == Some(n.id) && v.status.state.is_active())
                .count() as u32;
        }
        Ok(())
    }

    pub(crate) async fn modify_node(&self, id_or_name: &str, kind: EventType, f: impl Fn(&mut Node)) -> Result<Node> {
        // Retried on a concurrent write (heartbeats update nodes all the time).
        for _ in 0..5 {
            let mut n = self.store.resolve_node(id_or_name).await?;
            let before = n.clone();
            f(&mut n);
            if n == before {
                return Ok(n);
            }
            match self.store.update_node(&n).await {
                Ok(n) => {
                    self.publish_node(kind, &n);
                    return Ok(n);
                }
                Err(e) if e.kind == crate::ErrorKind::Aborted => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::aborted("node is changing too fast; retry"))
    }

    pub async fn enable_node(&self, id_or_name: &str) -> Result<Node> {
        self.modify_node(id_or_name, EventType::Enabled, |n| n.schedulable = true)
            .await
    }

    pub async fn disable_node(&self, id_or_name: &str) -> Result<Node> {
        self.modify_node(id_or_name, EventType::Disabled, |n| n.schedulable = false)
            .await
    }

    /// Puts a node in maintenance: no new VMs land on it, and DRS evacuates its running
    /// VMs as mandatory moves. With `evacuate`, its VMs are migrated away now: the node is
    /// DRAINING meanwhile, and MAINTENANCE once empty. A VM that cannot move leaves it
    /// DRAINING (still excluded from placement, DRS keeps evacuating it) and the call fails
    /// with FailedPrecondition naming what moved and what did not.
    pub async fn enter_maintenance(&self, id_or_name: &str, evacuate: bool) -> Result<Node> {
        if !evacuate {
            return self
                .modify_node(id_or_name, EventType::MaintenanceEntered, |n| {
                    n.phase = NodePhase::Maintenance
                })
                .await;
        }
        let n = self
            .modify_node(id_or_name, EventType::StateChanged, |n| n.phase = NodePhase::Draining)
            .await?;
        // Running VMs move live only (never stopped to be moved); each VM is tried, and those
        // that could not move are named with the reason.
        let vms = self.store.all_vms().await?;
        let (mut moved, mut stuck) = (Vec::new(), Vec::new());
        for vm in vms.iter().filter(|v| v.status.node_id == Some(n.id)) {
            match self.migrate_vm(&vm.id.to_string(), vm.project_id, None, false).await {
                Ok(_) => moved.push(vm.name.clone()),
                Err(e) => stuck.push(format!("{}: {}", vm.name, e.message)),
            }
        }
        if stuck.is_empty() {
            return self
                .modify_node(id_or_name, EventType::MaintenanceEntered, |n| {
                    n.phase = NodePhase::Maintenance
                })
                .await;
        }
        let moved = if moved.is_empty() {
            "nothing moved".to_string()
        } else {
            format!("moved {}", moved.join(", "))
        };
        Err(Error::precondition(format!(
            "node {} is DRAINING, not in maintenance: {moved}; could not move {}. \
             Move or stop those VMs, then run maintenance enter again",
            n.name,
            stuck.join("; ")
        )))
    }

    pub async fn exit_maintenance(&self, id_or_name: &str) -> Result<Node> {
        self.modify_node(id_or_name, EventType::MaintenanceExited, |n| n.phase = NodePhase::Ready)
            .await
    }

    /// Deletes a node record. With VMs still assigned it needs `force`, and those VMs are
    /// left unplaced (PENDING) for the scheduler.
    pub async fn delete_node(&self, id_or_name: &str, force: bool) -> Result<NodeId> {
        let n = self.store.resolve_node(id_or_name).await?;
        let vms: Vec<Vm> = self
            .store
            .all_vms()
            .await?
            .into_iter()
            .filter(|v| v.status.node_id == Some(n.id))
            .collect();
        if !vms.is_empty() && !force {
            return Err(Error::precondition(format!(
                "node {} still has {} VM(s); migrate them away or delete with force",
                n.name,
                vms.len()
            )));
        }
        for mut vm in vms {
            vm.status.node_id = None;
            vm.status.state = VmState::Pending;
            self.store.update_vm(&vm).await?;
        }
        self.store.delete_node(n.id).await?;
        self.hosts.remove(n.id);
        self.publish_node(EventType::Deleted, &n);
        Ok(n.id)
    }

    pub(crate) fn publish_node(&self, kind: EventType, n: &Node) {
        let mut d = EventDraft::new(kind, ResourceType::Node, n.id.to_string(), Utc::now());
        d.payload = serde_json::to_value(n).unwrap_or_default();
        self.events.publish(d);
    }
}

/// Join tokens are random secrets shown once; only their SHA-256 is stored.
pub const JOIN_TOKEN_PREFIX: &str = "lqxjoin_";

#[derive(serde::Serialize, serde::Deserialize)]
struct JoinTokenRecord {
    expires_at: chrono::DateTime<Utc>,
    node_name: String,
}

impl Compute {
    /// The HA view of a node's health until the HA manager reports one.
    pub fn health_of(&self, n: &Node) -> String {
        if let Some(h) = self.health.read().unwrap_or_else(|p| p.into_inner()).get(&n.id) {
            return h.clone();
        }
        if self.hosts.contains(n.id) {
            "HEALTHY"
        } else {
            "UNKNOWN"
        }
        .to_string()
    }

    /// Records an accepted agent heartbeat: its time and fencing status. The store's
    /// `last_heartbeat` is written at most every `node_write_interval`; node views show this.
    pub fn record_agent_report(&self, node: NodeId, fencing: crate::fence::Fencing) {
        let r = AgentReport {
            last_heartbeat: Utc::now(),
            fencing: Some(fencing),
        };
        self.reports.write().unwrap_or_else(|p| p.into_inner()).insert(node, r);
    }

    /// Records a pass of an in-process node (its heartbeat over no wire) that observed the
    /// host from `heard_at`: only its time, so node views show as fresh a heartbeat as the
    /// lease `ha status` shows, not the record's (written every `node_write_interval`). Such a
    /// node reports no fencing status.
    pub fn record_in_process_heartbeat(&self, node: NodeId, heard_at: chrono::DateTime<Utc>) {
        let mut reports = self.reports.write().unwrap_or_else(|p| p.into_inner());
        reports
            .entry(node)
            .and_modify(|r| r.last_heartbeat = r.last_heartbeat.max(heard_at))
            .or_insert(AgentReport {
                last_heartbeat: heard_at,
                fencing: None,
            });
    }

    /// A node as the API shows it, with what the last heartbeat said on top of the record.
    pub fn node_view(&self, n: &Node, allocated: Resources) -> NodeView {
        NodeView {
            node: n.clone(),
            allocated,
            health: self.health_of(n),
            last_heartbeat: self.last_heard(n),
            fencing: self.fencing_of(n.id),
        }
    }

    /// When the node was last heard from: its record's heartbeat or, newer, the last one
    /// accepted in memory (the record is written at most every `node_write_interval`).
    pub fn last_heard(&self, n: &Node) -> Option<chrono::DateTime<Utc>> {
        let mem = self
            .reports
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&n.id)
            .map(|r| r.last_heartbeat);
        n.last_heartbeat.max(mem)
    }

    /// The fencing status the node's agent last reported (agent nodes only).
    pub fn fencing_of(&self, node: NodeId) -> Option<crate::fence::Fencing> {
        self.reports
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .and_then(|r| r.fencing.clone())
    }

    /// Records the HA manager's view of a node's health (shown by GetNode/ListNodes).
    pub fn set_health(&self, node: NodeId, health: &str) {
        self.health
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, health.to_string());
    }

    /// Creates a one-time join token for a new host (default TTL one hour, at most a day).
    pub async fn create_join_token(&self, ttl_secs: u32, node_name: &str) -> Result<(String, chrono::DateTime<Utc>)> {
        if !node_name.is_empty() {
            crate::model::validate::name("node_name", node_name)?;
        }
        let ttl = match ttl_secs {
            0 => 3600,
            t if t > 86_400 => return Err(Error::invalid("ttl_seconds", "must be at most 86400 (one day)")),
            t => t,
        };
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = format!("{JOIN_TOKEN_PREFIX}{}", hex::encode(raw));
        let expires_at = Utc::now() + chrono::Duration::seconds(ttl.into());
        let rec = JoinTokenRecord {
            expires_at,
            node_name: node_name.to_string(),
        };
        let key = format!(
            "join_token/{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()))
        );
        self.store
            .kv_put(&key, &serde_json::to_string(&rec).map_err(Error::internal)?)
            .await?;
        Ok((token, expires_at))
    }

    /// Spends a join token: valid once, before it expires, for the name it was made for.
    pub async fn redeem_join_token(&self, token: &str, node_name: &str) -> Result<()> {
        let bad = || Error::unauthenticated("invalid or expired join token");
        if !token.starts_with(JOIN_TOKEN_PREFIX) || token.len() > 128 {
            return Err(bad());
        }
        let key = format!(
            "join_token/{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()))
        );
        let (value, version) = self.store.kv_get(&key).await?.ok_or_else(bad)?;
        let rec: JoinTokenRecord = serde_json::from_str(&value).map_err(Error::internal)?;
        if rec.expires_at < Utc::now() || rec.node_name == "\0used" {
            return Err(bad());
        }
        if !rec.node_name.is_empty() && rec.node_name != node_name {
            return Err(Error::permission_denied(format!(
                "this join token is for node {}",
                rec.node_name
            )));
        }
        let used = JoinTokenRecord {
            expires_at: rec.expires_at,
            node_name: "\0used".into(),
        };
        // Compare-and-swap: two agents racing with one token cannot both join.
        if !self
            .store
            .kv_cas(&key, version, &serde_json::to_string(&used).map_err(Error::internal)?)
            .await?
        {
            return Err(bad());
        }
        Ok(())
    }
}

/// A node as the API shows it: its record, what its VMs take, the HA view of its health, and
/// what its last accepted heartbeat said (fresher than the record, written only every
/// `node_write_interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub node: Node,
    /// The sum of the specs of the VMs on the node.
    pub allocated: Resources,
    pub health: String,
    /// The record's heartbeat or, newer, the last one accepted in memory.
    pub last_heartbeat: Option<chrono::DateTime<Utc>>,
    /// What the node's agent last reported; none for an in-process node.
    pub fencing: Option<crate::fence::Fencing>,
}

/// The last accepted heartbeat of a node (an agent's, or an in-process node's pass).
#[derive(Debug, Clone)]
pub struct AgentReport {
    pub last_heartbeat: chrono::DateTime<Utc>,
    /// What the agent reported; none for an in-process node.
    pub fencing: Option<crate::fence::Fencing>,
}

#[cfg(test)]
mod page_tests {
    use super::*;

    fn node(name: &str, phase: NodePhase, label: Option<(&str, &str)>) -> Node {
        Node {
            id: NodeId::new(),
            name: name.into(),
            hostname: name.into(),
            management_address: String::new(),
            labels: label.map(|(k, v)| (k.to_string(), v.to_string())).into_iter().collect(),
            capacity: Resources::default(),
            allocatable: Resources::default(),
            cpu_overcommit: 1.0,
            memory_overcommit: 1.0,
            phase,
            schedulable: true,
            libvirt_uri: "test:///default".into(),
            last_heartbeat: None,
            usage: NodeUsage::default(),
            resource_version: 1,
            created_at: chrono::DateTime::UNIX_EPOCH,
            cpu_model: String::new(),
            power: Default::default(),
        }
    }

    fn names(p: &NodePage) -> Vec<&str> {
        p.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn nodes_are_filtered_then_paged_by_name() {
        let all = || {
            vec![
                node("a", NodePhase::Ready, Some(("rack", "1"))),
                node("b", NodePhase::Maintenance, Some(("rack", "1"))),
                node("c", NodePhase::Ready, None),
                node("d", NodePhase::Ready, Some(("rack", "1"))),
            ]
        };
        let ready = NodeFilter {
            phase: Some(NodePhase::Ready),
            ..Default::default()
        };
        let p = page_nodes(all(), &ready, 2, "");
        assert_eq!((names(&p), p.next_page_token.as_str()), (vec!["a", "c"], "c"));
        let p = page_nodes(all(), &ready, 2, "c");
        assert_eq!((names(&p), p.next_page_token.as_str()), (vec!["d"], ""));
        let rack = NodeFilter {
            labels: [("rack".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(names(&page_nodes(all(), &rack, 0, "")), vec!["a", "b", "d"]);
        // An exactly full page has no next page.
        assert_eq!(page_nodes(all(), &NodeFilter::default(), 4, "").next_page_token, "");
    }
}

//! The objects the CLI prints, mapped from the API's proto messages. Their serde field names
//! are the CLI's stable JSON/YAML interface (snake_case; enums as lower-case words such as
//! `running`; times as RFC 3339 UTC strings; sizes in MiB with a `_mib` suffix). A list in
//! JSON is an array of the same objects `get` prints. docs: see `lqx-cli/README.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use lqx_core::api::alert::v1 as alertpb;
use lqx_core::api::auth::v1 as authpb;
use lqx_core::api::compute::v1 as computepb;
use lqx_core::api::drs::v1 as drspb;
use lqx_core::api::events::v1 as eventspb;
use lqx_core::api::ha::v1 as hapb;
use lqx_core::api::project::v1 as projectpb;

use crate::output::{Column, View, col, wide};
use crate::parse::format_mib;

// ------------------------------------------------------------------ helpers

pub fn time(t: &Option<pbjson_types::Timestamp>) -> Option<DateTime<Utc>> {
    let t = t.as_ref()?;
    if t.seconds == 0 && t.nanos == 0 {
        return None;
    }
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
}

pub fn to_timestamp(t: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// `VM_STATE_RUNNING` with prefix `VM_STATE_` → `running`; the unspecified value → "".
pub fn enum_word(name: &str, prefix: &str) -> String {
    let w = name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase();
    if w == "unspecified" { String::new() } else { w }
}

/// How long ago, as an operator reads it in a table: `45s`, `12m`, `3h`, `5d`; `-` for none.
pub fn age(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = t else { return "-".into() };
    let secs = (now - t).num_seconds();
    if secs < 0 {
        return format!("in {}", short_secs(-secs));
    }
    short_secs(secs)
}

fn short_secs(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.to_string() }
}

fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn labels_text(l: &BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return "-".into();
    }
    l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

fn sorted(m: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

macro_rules! columns {
    ($($c:expr),* $(,)?) => {
        fn columns() -> &'static [Column] {
            const C: &[Column] = &[$($c),*];
            C
        }
    };
}

// ------------------------------------------------------------------ VMs

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VmView {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub desired_state: String,
    pub node_id: String,
    pub node: String,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    pub disks: Vec<DiskView>,
    pub nics: Vec<NicView>,
    pub ha: HaPolicyView,
    pub placement: PlacementView,
    pub cpu_usage_percent: f64,
    pub memory_used_mib: u64,
    pub restart_count: u32,
    pub message: String,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub resource_version: u64,
    /// While it is being migrated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<VmMigrationView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VmMigrationView {
    pub target_node: String,
    pub live: bool,
    pub percent: u64,
    pub processed_bytes: u64,
    pub total_bytes: u64,
    pub remaining_bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DiskView {
    pub name: String,
    pub size_mib: u64,
    pub pool: String,
    pub bus: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NicView {
    pub network: String,
    pub mac: String,
    pub model: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HaPolicyView {
    pub enabled: bool,
    pub priority: String,
    pub restart_delay_seconds: u32,
    pub max_restarts: u32,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PlacementView {
    pub required_nodes: Vec<String>,
    pub excluded_nodes: Vec<String>,
    pub anti_affinity_group: String,
}

pub fn vm_state_word(s: computepb::VmState) -> String {
    enum_word(s.as_str_name(), "VM_STATE_")
}

impl From<&computepb::Vm> for VmView {
    fn from(v: &computepb::Vm) -> Self {
        let spec = v.spec.clone().unwrap_or_default();
        let status = v.status.clone().unwrap_or_default();
        let ha = spec.ha.map(|h| HaPolicyView {
            enabled: h.enabled,
            priority: enum_word(h.priority().as_str_name(), "HA_RESTART_PRIORITY_"),
            restart_delay_seconds: h.restart_delay_seconds,
            max_restarts: h.max_restarts,
        });
        let placement = spec.placement.clone().map(|p| PlacementView {
            required_nodes: p.required_nodes,
            excluded_nodes: p.excluded_nodes,
            anti_affinity_group: p.anti_affinity_group,
        });
        VmView {
            id: v.id.clone(),
            name: v.name.clone(),
            project_id: v.project_id.clone(),
            description: v.description.clone(),
            labels: sorted(&v.labels),
            state: vm_state_word(status.state()),
            desired_state: vm_state_word(v.desired_state()),
            node_id: status.node_id.clone(),
            node: status.node_name.clone(),
            cpu_cores: spec.cpu_cores,
            memory_mib: spec.memory_mib,
            disks: spec
                .disks
                .iter()
                .map(|d| DiskView {
                    name: d.name.clone(),
                    size_mib: d.size_mib,
                    pool: d.pool.clone(),
                    bus: d.bus.clone(),
                })
                .collect(),
            nics: spec
                .nics
                .iter()
                .map(|n| NicView {
                    network: n.network.clone(),
                    mac: n.mac.clone(),
                    model: n.model.clone(),
                })
                .collect(),
            ha: ha.unwrap_or_default(),
            placement: placement.unwrap_or_default(),
            cpu_usage_percent: status.cpu_usage_percent,
            memory_used_mib: status.memory_used_mib,
            restart_count: status.restart_count,
            message: status.message.clone(),
            started_at: time(&status.started_at),
            stopped_at: time(&status.stopped_at),
            created_at: time(&v.created_at),
            updated_at: time(&v.updated_at),
            resource_version: v.resource_version,
            migration: status.migration.as_ref().map(|m| VmMigrationView {
                target_node: m.target_node.clone(),
                live: m.live,
                percent: (m.processed_bytes.min(m.total_bytes) * 100)
                    .checked_div(m.total_bytes)
                    .unwrap_or(0),
                processed_bytes: m.processed_bytes,
                total_bytes: m.total_bytes,
                remaining_bytes: m.remaining_bytes,
            }),
        }
    }
}

impl VmView {
    /// `vm get` on a terminal or in a table format: every field as `Key: value` lines, not
    /// the list's row.
    pub fn detail(&self) -> String {
        let mut rows: Vec<(&str, String)> = vec![
            ("Name", self.name.clone()),
            ("ID", self.id.clone()),
            ("State", format!("{} (desired: {})", self.state, self.desired_state)),
            ("Node", or_dash(&self.node)),
            (
                "CPU",
                format!("{} cores, {:.1}% used", self.cpu_cores, self.cpu_usage_percent),
            ),
            (
                "Memory",
                format!(
                    "{} ({} used)",
                    format_mib(self.memory_mib),
                    format_mib(self.memory_used_mib)
                ),
            ),
        ];
        for d in &self.disks {
            rows.push((
                "Disk",
                format!(
                    "{} {} pool {} bus {}",
                    d.name,
                    format_mib(d.size_mib),
                    or_dash(&d.pool),
                    or_dash(&d.bus)
                ),
            ));
        }
        for n in &self.nics {
            rows.push((
                "NIC",
                format!("{} {} {}", n.network, or_dash(&n.mac), or_dash(&n.model)),
            ));
        }
        rows.push((
            "HA",
            if self.ha.enabled {
                format!(
                    "on, priority {}, {} restart(s) so far",
                    or_dash(&self.ha.priority),
                    self.restart_count
                )
            } else {
                "off".into()
            },
        ));
        if !self.placement.anti_affinity_group.is_empty() {
            rows.push(("Anti-affinity", self.placement.anti_affinity_group.clone()));
        }
        rows.push(("Labels", labels_text(&self.labels)));
        rows.push(("Project", or_dash(&self.project_id)));
        rows.push(("Description", or_dash(&self.description)));
        if !self.message.is_empty() {
            rows.push(("Message", self.message.clone()));
        }
        if let Some(m) = &self.migration {
            rows.push(("Migrating", format!("to {}, {}%", m.target_node, m.percent)));
        }
        rows.push(("Started", fmt_time(self.started_at)));
        rows.push(("Created", fmt_time(self.created_at)));
        rows.push(("Updated", fmt_time(self.updated_at)));
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
        rows.iter()
            .map(|(k, v)| format!("{:<w$}{v}\n", format!("{k}:")))
            .collect()
    }
}

impl View for VmView {
    columns!(
        col("NAME"),
        col("STATE"),
        col("NODE"),
        col("CPU"),
        col("MEMORY"),
        col("AGE"),
        wide("ID"),
        wide("DESIRED"),
        wide("DISK"),
        wide("HA"),
        wide("CPU%"),
        wide("MEM-USED"),
        wide("LABELS"),
        wide("PROJECT"),
        wide("MESSAGE"),
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "NAME" => self.name.clone(),
            "STATE" => match &self.migration {
                Some(m) => format!("{} {}% -> {}", self.state, m.percent, m.target_node),
                None => or_dash(&self.state),
            },
            "NODE" => or_dash(&self.node),
            "CPU" => self.cpu_cores.to_string(),
            "MEMORY" => format_mib(self.memory_mib),
            "AGE" => age(self.created_at, now()),
            "ID" => self.id.clone(),
            "DESIRED" => or_dash(&self.desired_state),
            "DISK" => {
                let total: u64 = self.disks.iter().map(|d| d.size_mib).sum();
                if total == 0 { "-".into() } else { format_mib(total) }
            }
            "HA" => {
                if self.ha.enabled {
                    or_dash(&self.ha.priority).replace('-', "on")
                } else {
                    "off".into()
                }
            }
            "CPU%" => format!("{:.0}", self.cpu_usage_percent),
            "MEM-USED" => format_mib(self.memory_used_mib),
            "LABELS" => labels_text(&self.labels),
            "PROJECT" => or_dash(&self.project_id),
            "MESSAGE" => or_dash(&self.message),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationView {
    pub vm: VmView,
    pub migration_id: String,
    pub source_node: String,
    pub target_node: String,
    pub live: bool,
}

impl From<&computepb::MigrateVmResponse> for MigrationView {
    fn from(r: &computepb::MigrateVmResponse) -> Self {
        MigrationView {
            vm: r
                .vm
                .as_ref()
                .map(VmView::from)
                .unwrap_or_else(|| VmView::from(&computepb::Vm::default())),
            migration_id: r.migration_id.clone(),
            source_node: r.source_node.clone(),
            target_node: r.target_node.clone(),
            live: r.live,
        }
    }
}

impl View for MigrationView {
    columns!(
        col("VM"),
        col("FROM"),
        col("TO"),
        col("LIVE"),
        col("STATE"),
        wide("MIGRATION")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "VM" => self.vm.name.clone(),
            "FROM" => or_dash(&self.source_node),
            "TO" => or_dash(&self.target_node),
            "LIVE" => yes_no(self.live),
            "STATE" => or_dash(&self.vm.state),
            "MIGRATION" => or_dash(&self.migration_id),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.vm.name.clone()
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

// ------------------------------------------------------------------ nodes

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeView {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub management_address: String,
    pub labels: BTreeMap<String, String>,
    pub phase: String,
    pub schedulable: bool,
    pub health: String,
    /// on, standby, powering_on, powering_off, unknown.
    pub power_state: String,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    pub allocatable_cpu_cores: u32,
    pub allocatable_memory_mib: u64,
    pub allocated_cpu_cores: u32,
    pub allocated_memory_mib: u64,
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub cpu_percent: f64,
    pub memory_used_mib: u64,
    pub running_vms: u32,
    pub libvirt_uri: String,
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Agent nodes: host-watchdog, fence-process, agent-only or none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fencing_level: String,
    /// Agent nodes: "ok: ..." or "degraded: why" (fence process, host watchdog).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fencing: String,
    pub created_at: Option<DateTime<Utc>>,
    pub resource_version: u64,
}

impl From<&computepb::Node> for NodeView {
    fn from(n: &computepb::Node) -> Self {
        let cap = n.capacity.unwrap_or_default();
        let alloc = n.allocatable.unwrap_or_default();
        let used = n.allocated.unwrap_or_default();
        let usage = n.usage.unwrap_or_default();
        NodeView {
            id: n.id.clone(),
            name: n.name.clone(),
            hostname: n.hostname.clone(),
            management_address: n.management_address.clone(),
            labels: sorted(&n.labels),
            phase: enum_word(n.phase().as_str_name(), "NODE_PHASE_"),
            // Whether the scheduler may place new VMs there: not on a node in maintenance or
            // draining, whatever its cordon flag says.
            schedulable: n.schedulable
                && !matches!(
                    n.phase(),
                    computepb::NodePhase::Maintenance | computepb::NodePhase::Draining
                ),
            health: n.health.to_ascii_lowercase(),
            power_state: n.power_state.clone(),
            cpu_cores: cap.cpu_cores,
            memory_mib: cap.memory_mib,
            allocatable_cpu_cores: alloc.cpu_cores,
            allocatable_memory_mib: alloc.memory_mib,
            allocated_cpu_cores: used.cpu_cores,
            allocated_memory_mib: used.memory_mib,
            cpu_overcommit: n.cpu_overcommit,
            memory_overcommit: n.memory_overcommit,
            cpu_percent: usage.cpu_percent,
            memory_used_mib: usage.memory_used_mib,
            running_vms: usage.running_vms,
            libvirt_uri: n.libvirt_uri.clone(),
            last_heartbeat: time(&n.last_heartbeat),
            fencing_level: n.fencing_level.clone(),
            fencing: n.fencing.clone(),
            created_at: time(&n.created_at),
            resource_version: n.resource_version,
        }
    }
}

impl View for NodeView {
    columns!(
        col("NAME"),
        col("PHASE"),
        col("SCHEDULABLE"),
        col("HEALTH"),
        col("POWER"),
        col("FENCING"),
        col("VMS"),
        col("CPU"),
        col("MEMORY"),
        col("HEARTBEAT"),
        wide("ID"),
        wide("ADDRESS"),
        wide("CPU%"),
        wide("MEM-USED"),
        wide("LABELS"),
        wide("URI"),
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "NAME" => self.name.clone(),
            "PHASE" => or_dash(&self.phase),
            // A node in maintenance or draining takes no new VMs whatever its cordon says.
            "SCHEDULABLE" => yes_no(self.schedulable),
            "HEALTH" => or_dash(&self.health),
            "POWER" => or_dash(&self.power_state),
            // The level; -o yaml shows why.
            "FENCING" => or_dash(&self.fencing_level),
            "VMS" => self.running_vms.to_string(),
            "CPU" => format!("{}/{}", self.allocated_cpu_cores, self.allocatable_cpu_cores),
            "MEMORY" => format!(
                "{}/{}",
                format_mib(self.allocated_memory_mib),
                format_mib(self.allocatable_memory_mib)
            ),
            "HEARTBEAT" => age(self.last_heartbeat, now()),
            "ID" => self.id.clone(),
            "ADDRESS" => or_dash(&self.management_address),
            "CPU%" => format!("{:.0}", self.cpu_percent),
            "MEM-USED" => format_mib(self.memory_used_mib),
            "LABELS" => labels_text(&self.labels),
            "URI" => or_dash(&self.libvirt_uri),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// `lqx node power status`.
#[derive(Debug, Clone, Serialize)]
pub struct NodePowerView {
    pub node: String,
    /// What lqx records: on, standby, powering_on, powering_off, unknown.
    pub power_state: String,
    /// redfish, ipmi, wol; empty when the node has none.
    pub controller: String,
    /// What the BMC reports now (empty when it could not be read).
    pub bmc_power_state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bmc_error: String,
}

impl View for NodePowerView {
    columns!(col("NODE"), col("POWER"), col("CONTROLLER"), col("BMC"), col("ERROR"));
    fn cell(&self, c: &str) -> String {
        match c {
            "NODE" => self.node.clone(),
            "POWER" => or_dash(&self.power_state),
            "CONTROLLER" => or_dash(&self.controller),
            "BMC" => or_dash(&self.bmc_power_state),
            "ERROR" => or_dash(&self.bmc_error),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.node.clone()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinTokenView {
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl View for JoinTokenView {
    columns!(col("TOKEN"), col("EXPIRES"));
    fn cell(&self, c: &str) -> String {
        match c {
            "TOKEN" => self.token.clone(),
            "EXPIRES" => fmt_time(self.expires_at),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.token.clone()
    }
}

// ------------------------------------------------------------------ users, keys, audit

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<&authpb::User> for UserView {
    fn from(u: &authpb::User) -> Self {
        UserView {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            role: u.role.clone(),
            disabled: u.disabled,
            created_at: time(&u.created_at),
            last_login_at: time(&u.last_login_at),
        }
    }
}

impl View for UserView {
    columns!(
        col("USERNAME"),
        col("ROLE"),
        col("EMAIL"),
        col("DISABLED"),
        col("LAST-LOGIN"),
        wide("ID"),
        wide("CREATED")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "USERNAME" => self.username.clone(),
            "ROLE" => self.role.clone(),
            "EMAIL" => or_dash(&self.email),
            "DISABLED" => yes_no(self.disabled),
            "LAST-LOGIN" => age(self.last_login_at, now()),
            "ID" => self.id.clone(),
            "CREATED" => fmt_time(self.created_at),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.username.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub owner_id: String,
    pub revoked: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&authpb::ApiKey> for ApiKeyView {
    fn from(k: &authpb::ApiKey) -> Self {
        ApiKeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            role: k.role.clone(),
            prefix: k.prefix.clone(),
            owner_id: k.owner_id.clone(),
            revoked: k.revoked,
            created_at: time(&k.created_at),
            expires_at: time(&k.expires_at),
            last_used_at: time(&k.last_used_at),
        }
    }
}

impl View for ApiKeyView {
    columns!(
        col("ID"),
        col("NAME"),
        col("ROLE"),
        col("PREFIX"),
        col("EXPIRES"),
        col("LAST-USED"),
        col("REVOKED"),
        wide("OWNER")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "ID" => self.id.clone(),
            "NAME" => self.name.clone(),
            "ROLE" => self.role.clone(),
            "PREFIX" => or_dash(&self.prefix),
            "EXPIRES" => fmt_time(self.expires_at),
            "LAST-USED" => age(self.last_used_at, now()),
            "REVOKED" => yes_no(self.revoked),
            "OWNER" => or_dash(&self.owner_id),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.id.clone()
    }
}

/// `apikey create`: the key and its secret, which the server shows only once.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyCreatedView {
    #[serde(flatten)]
    pub key: ApiKeyView,
    pub secret: String,
}

impl View for ApiKeyCreatedView {
    columns!(col("ID"), col("NAME"), col("ROLE"), col("EXPIRES"), col("SECRET"));
    fn cell(&self, c: &str) -> String {
        if c == "SECRET" {
            self.secret.clone()
        } else {
            self.key.cell(c)
        }
    }
    fn name(&self) -> String {
        self.key.id.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditView {
    pub id: String,
    pub time: Option<DateTime<Utc>>,
    pub actor: String,
    pub actor_id: String,
    /// Readable (`vm.start`); `method` is the RPC the entry recorded.
    pub action: String,
    pub method: String,
    pub resource_type: String,
    pub resource_id: String,
    pub result: String,
    pub detail: String,
    pub client_address: String,
    pub request_id: String,
}

impl From<&authpb::AuditEntry> for AuditView {
    fn from(a: &authpb::AuditEntry) -> Self {
        AuditView {
            id: a.id.clone(),
            time: time(&a.time),
            actor: a.actor.clone(),
            actor_id: a.actor_id.clone(),
            action: lqx_core::model::audit_action::readable_action(&a.action).to_string(),
            method: a.action.clone(),
            resource_type: a.resource_type.clone(),
            resource_id: a.resource_id.clone(),
            result: a.result.clone(),
            detail: a.detail.clone(),
            client_address: a.client_address.clone(),
            request_id: a.request_id.clone(),
        }
    }
}

impl View for AuditView {
    columns!(
        col("TIME"),
        col("ACTOR"),
        col("ACTION"),
        col("RESOURCE"),
        col("RESULT"),
        wide("METHOD"),
        wide("DETAIL"),
        wide("CLIENT"),
        wide("ID")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "TIME" => fmt_time(self.time),
            "ACTOR" => self.actor.clone(),
            "ACTION" => self.action.clone(),
            "RESOURCE" => {
                if self.resource_id.is_empty() {
                    or_dash(&self.resource_type)
                } else {
                    format!("{}/{}", self.resource_type, self.resource_id)
                }
            }
            "RESULT" => self.result.clone(),
            "METHOD" => self.method.clone(),
            "DETAIL" => or_dash(&self.detail),
            "CLIENT" => or_dash(&self.client_address),
            "ID" => self.id.clone(),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.id.clone()
    }
}

// ------------------------------------------------------------------ alerts

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertView {
    pub id: String,
    pub severity: String,
    pub title: String,
    pub message: String,
    pub source_type: String,
    pub source_id: String,
    pub source_name: String,
    pub condition: String,
    pub count: u32,
    pub acknowledged: bool,
    pub acknowledged_by: String,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved: bool,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<&alertpb::Alert> for AlertView {
    fn from(a: &alertpb::Alert) -> Self {
        AlertView {
            id: a.id.clone(),
            severity: enum_word(a.severity().as_str_name(), "ALERT_SEVERITY_"),
            title: a.title.clone(),
            message: a.message.clone(),
            source_type: enum_word(a.source_type().as_str_name(), "ALERT_SOURCE_TYPE_"),
            source_id: a.source_id.clone(),
            source_name: a.source_name.clone(),
            condition: a.condition.clone(),
            count: a.count,
            acknowledged: a.acknowledged,
            acknowledged_by: a.acknowledged_by.clone(),
            acknowledged_at: time(&a.acknowledged_at),
            resolved: a.resolved,
            resolved_at: time(&a.resolved_at),
            created_at: time(&a.created_at),
            updated_at: time(&a.updated_at),
        }
    }
}

impl View for AlertView {
    columns!(
        col("ID"),
        col("SEVERITY"),
        col("SOURCE"),
        col("TITLE"),
        col("ACK"),
        col("RESOLVED"),
        col("AGE"),
        wide("COUNT"),
        wide("CONDITION"),
        wide("MESSAGE")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "ID" => self.id.clone(),
            "SEVERITY" => or_dash(&self.severity),
            "SOURCE" => {
                let n = if self.source_name.is_empty() {
                    &self.source_id
                } else {
                    &self.source_name
                };
                if n.is_empty() {
                    or_dash(&self.source_type)
                } else {
                    format!("{}/{}", self.source_type, n)
                }
            }
            "TITLE" => self.title.clone(),
            "ACK" => {
                if self.acknowledged {
                    or_dash(&self.acknowledged_by)
                } else {
                    "no".into()
                }
            }
            "RESOLVED" => yes_no(self.resolved),
            "AGE" => age(self.created_at, now()),
            "COUNT" => self.count.to_string(),
            "CONDITION" => or_dash(&self.condition),
            "MESSAGE" => or_dash(&self.message),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.id.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertSummaryView {
    pub critical: u32,
    pub warning: u32,
    pub info: u32,
    pub unacknowledged: u32,
    pub total_open: u32,
}

impl From<&alertpb::AlertSummary> for AlertSummaryView {
    fn from(s: &alertpb::AlertSummary) -> Self {
        AlertSummaryView {
            critical: s.critical,
            warning: s.warning,
            info: s.info,
            unacknowledged: s.unacknowledged,
            total_open: s.total_open,
        }
    }
}

impl View for AlertSummaryView {
    columns!(
        col("CRITICAL"),
        col("WARNING"),
        col("INFO"),
        col("UNACKNOWLEDGED"),
        col("OPEN")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "CRITICAL" => self.critical.to_string(),
            "WARNING" => self.warning.to_string(),
            "INFO" => self.info.to_string(),
            "UNACKNOWLEDGED" => self.unacknowledged.to_string(),
            "OPEN" => self.total_open.to_string(),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.total_open.to_string()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub severities: Vec<String>,
    pub has_secret: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_delivery_status: String,
}

impl From<&alertpb::Webhook> for WebhookView {
    fn from(w: &alertpb::Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            severities: w
                .severities()
                .map(|s| enum_word(s.as_str_name(), "ALERT_SEVERITY_"))
                .collect(),
            has_secret: w.has_secret,
            created_at: time(&w.created_at),
            last_delivery_at: time(&w.last_delivery_at),
            last_delivery_status: w.last_delivery_status.clone(),
        }
    }
}

impl View for WebhookView {
    columns!(
        col("ID"),
        col("URL"),
        col("SEVERITIES"),
        col("SIGNED"),
        col("LAST-DELIVERY"),
        col("STATUS")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "ID" => self.id.clone(),
            "URL" => self.url.clone(),
            "SEVERITIES" => {
                if self.severities.is_empty() {
                    "all".into()
                } else {
                    self.severities.join(",")
                }
            }
            "SIGNED" => yes_no(self.has_secret),
            "LAST-DELIVERY" => age(self.last_delivery_at, now()),
            "STATUS" => or_dash(&self.last_delivery_status),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.id.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WebhookTestView {
    pub id: String,
    pub delivered: bool,
    pub http_status: u32,
    pub error: String,
    pub attempts: u32,
}

impl View for WebhookTestView {
    columns!(col("ID"), col("DELIVERED"), col("HTTP"), col("ATTEMPTS"), col("ERROR"));
    fn cell(&self, c: &str) -> String {
        match c {
            "ID" => self.id.clone(),
            "DELIVERED" => yes_no(self.delivered),
            "HTTP" => {
                if self.http_status == 0 {
                    "-".into()
                } else {
                    self.http_status.to_string()
                }
            }
            "ATTEMPTS" => self.attempts.to_string(),
            "ERROR" => or_dash(&self.error),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.id.clone()
    }
}

// ------------------------------------------------------------------ DRS

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecommendationView {
    pub id: String,
    pub priority: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub mandatory: bool,
    pub reason: String,
    pub vm_id: String,
    pub vm: String,
    pub source_node_id: String,
    pub source: String,
    pub target_node_id: String,
    pub target: String,
    pub impact_cpu: f64,
    pub impact_memory: f64,
    pub estimated_duration_seconds: u32,
    pub failure_reason: String,
    pub created_at: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: String,
    pub applied_at: Option<DateTime<Utc>>,
    pub applied_by: String,
}

impl From<&drspb::Recommendation> for RecommendationView {
    fn from(r: &drspb::Recommendation) -> Self {
        RecommendationView {
            id: r.id.clone(),
            priority: enum_word(r.priority().as_str_name(), "PRIORITY_"),
            kind: enum_word(r.r#type().as_str_name(), "RECOMMENDATION_TYPE_"),
            status: enum_word(r.status().as_str_name(), "RECOMMENDATION_STATUS_"),
            mandatory: r.mandatory,
            reason: r.reason.clone(),
            vm_id: r.vm_id.clone(),
            vm: r.vm_name.clone(),
            source_node_id: r.source_node_id.clone(),
            source: r.source_node_name.clone(),
            target_node_id: r.target_node_id.clone(),
            target: r.target_node_name.clone(),
            impact_cpu: r.impact_cpu,
            impact_memory: r.impact_memory,
            estimated_duration_seconds: r.estimated_duration_seconds,
            failure_reason: r.failure_reason.clone(),
            created_at: time(&r.created_at),
            approved_at: time(&r.approved_at),
            approved_by: r.approved_by.clone(),
            applied_at: time(&r.applied_at),
            applied_by: r.applied_by.clone(),
        }
    }
}

/// From the stored recommendation (DRS event payloads), the same object as from the API.
impl From<&lqx_core::model::DrsRecommendation> for RecommendationView {
    fn from(r: &lqx_core::model::DrsRecommendation) -> Self {
        RecommendationView {
            id: r.id.to_string(),
            priority: r.priority.as_str().to_ascii_lowercase(),
            kind: r.recommendation_type.as_str().to_ascii_lowercase(),
            status: r.status.as_str().to_ascii_lowercase(),
            mandatory: r.mandatory,
            reason: r.reason.clone(),
            vm_id: r.vm_id.to_string(),
            vm: r.vm_name.clone(),
            source_node_id: r.source_node_id.to_string(),
            source: r.source_node_name.clone(),
            target_node_id: r.target_node_id.to_string(),
            target: r.target_node_name.clone(),
            impact_cpu: r.impact_cpu,
            impact_memory: r.impact_memory,
            estimated_duration_seconds: u32::try_from(r.estimated_duration_secs).unwrap_or(u32::MAX),
            failure_reason: r.failure_reason.clone().unwrap_or_default(),
            created_at: Some(r.created_at),
            approved_at: r.approved_at,
            approved_by: r.approved_by.clone().unwrap_or_default(),
            applied_at: r.applied_at,
            applied_by: r.applied_by.clone().unwrap_or_default(),
        }
    }
}

impl View for RecommendationView {
    columns!(
        col("ID"),
        col("PRIORITY"),
        col("TYPE"),
        col("VM"),
        col("SOURCE"),
        col("TARGET"),
        col("STATUS"),
        col("AGE"),
        wide("IMPACT-CPU"),
        wide("IMPACT-MEM"),
        wide("DURATION"),
        wide("REASON"),
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "ID" => self.id.clone(),
            "PRIORITY" => or_dash(&self.priority),
            "TYPE" => or_dash(&self.kind),
            "VM" => or_dash(&self.vm),
            "SOURCE" => or_dash(&self.source),
            "TARGET" => or_dash(&self.target),
            "STATUS" => or_dash(&self.status),
            "AGE" => age(self.created_at, now()),
            "IMPACT-CPU" => format!("{:.1}", self.impact_cpu),
            "IMPACT-MEM" => format!("{:.1}", self.impact_memory),
            "DURATION" => format!("{}s", self.estimated_duration_seconds),
            "REASON" => or_dash(&self.reason),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.id.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrsConfigView {
    pub enabled: bool,
    pub interval_seconds: u32,
    pub automation_level: String,
    pub threshold_cpu: f64,
    pub threshold_memory: f64,
    pub migration_threshold: u32,
    pub max_concurrent_migrations_per_host: u32,
    pub hysteresis_margin: f64,
    pub hysteresis_hold_count: u32,
    pub migration_bandwidth_mib_per_second: u32,
    pub migrations_per_host_per_round: u32,
    pub dpm: DpmConfigView,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DpmConfigView {
    pub enabled: bool,
    pub automation_level: String,
    pub power_off_below: f64,
    pub power_on_above: f64,
    pub min_hosts_on: u32,
    pub hold_count: u32,
    pub opt_out: Vec<String>,
    pub failover_hosts: u32,
    pub watts_per_host: f64,
}

impl From<&drspb::DrsConfig> for DrsConfigView {
    fn from(c: &drspb::DrsConfig) -> Self {
        DrsConfigView {
            enabled: c.enabled,
            interval_seconds: c.interval_seconds,
            automation_level: enum_word(c.automation_level().as_str_name(), "AUTOMATION_LEVEL_"),
            threshold_cpu: c.threshold_cpu,
            threshold_memory: c.threshold_memory,
            migration_threshold: c.migration_threshold,
            max_concurrent_migrations_per_host: c.max_concurrent_migrations_per_host,
            hysteresis_margin: c.hysteresis_margin,
            hysteresis_hold_count: c.hysteresis_hold_count,
            migration_bandwidth_mib_per_second: c.migration_bandwidth_mib_per_second,
            migrations_per_host_per_round: c.migrations_per_host_per_round,
            dpm: DpmConfigView {
                enabled: c.dpm_enabled,
                automation_level: enum_word(c.dpm_automation_level().as_str_name(), "AUTOMATION_LEVEL_"),
                power_off_below: c.dpm_power_off_below,
                power_on_above: c.dpm_power_on_above,
                min_hosts_on: c.dpm_min_hosts_on,
                hold_count: c.dpm_hold_count,
                opt_out: c.dpm_opt_out.clone(),
                failover_hosts: c.dpm_failover_hosts,
                watts_per_host: c.dpm_watts_per_host,
            },
        }
    }
}

impl View for DrsConfigView {
    columns!(
        col("ENABLED"),
        col("AUTOMATION"),
        col("INTERVAL"),
        col("CPU%"),
        col("MEMORY%"),
        col("MIGRATION-THRESHOLD"),
        wide("MAX-PER-HOST"),
        wide("HYSTERESIS"),
        col("DPM")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "ENABLED" => yes_no(self.enabled),
            "AUTOMATION" => or_dash(&self.automation_level),
            "INTERVAL" => format!("{}s", self.interval_seconds),
            "CPU%" => format!("{:.0}", self.threshold_cpu),
            "MEMORY%" => format!("{:.0}", self.threshold_memory),
            "MIGRATION-THRESHOLD" => self.migration_threshold.to_string(),
            "MAX-PER-HOST" => self.max_concurrent_migrations_per_host.to_string(),
            "HYSTERESIS" => format!("{:.1}pp x{}", self.hysteresis_margin, self.hysteresis_hold_count),
            "DPM" if !self.dpm.enabled => "off".into(),
            "DPM" => format!(
                "{} {:.0}-{:.0}% min {}",
                self.dpm.automation_level, self.dpm.power_off_below, self.dpm.power_on_above, self.dpm.min_hosts_on
            ),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        "drs".into()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrsStatusView {
    pub config: Option<DrsConfigView>,
    pub last_run: Option<DateTime<Utc>>,
    pub imbalance: f64,
    pub pending_count: u32,
    pub applying_count: u32,
    pub last_run_summary: String,
    /// Hot nodes the last run found no relief for.
    pub unrelieved_nodes: Vec<String>,
}

impl From<&drspb::DrsStatus> for DrsStatusView {
    fn from(s: &drspb::DrsStatus) -> Self {
        DrsStatusView {
            config: s.config.as_ref().map(DrsConfigView::from),
            last_run: time(&s.last_run),
            imbalance: s.imbalance,
            pending_count: s.pending_count,
            applying_count: s.applying_count,
            last_run_summary: s.last_run_summary.clone(),
            unrelieved_nodes: s.unrelieved_nodes.clone(),
        }
    }
}

impl View for DrsStatusView {
    columns!(
        col("ENABLED"),
        col("AUTOMATION"),
        col("IMBALANCE"),
        col("PENDING"),
        col("APPLYING"),
        col("LAST-RUN"),
        wide("SUMMARY")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "ENABLED" => self.config.as_ref().map_or("-".into(), |c| yes_no(c.enabled)),
            "AUTOMATION" => self
                .config
                .as_ref()
                .map_or("-".into(), |c| or_dash(&c.automation_level)),
            "IMBALANCE" => format!("{:.3}", self.imbalance),
            "PENDING" => self.pending_count.to_string(),
            "APPLYING" => self.applying_count.to_string(),
            "LAST-RUN" => age(self.last_run, now()),
            "SUMMARY" => or_dash(&self.last_run_summary),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        "drs".into()
    }
}

// ------------------------------------------------------------------ HA

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeHaView {
    pub node_id: String,
    pub node: String,
    pub health: String,
    pub missed_checks: u32,
    pub lease_age_seconds: f64,
    pub protected_vms: u32,
    pub fenced: bool,
    /// Agent nodes: host-watchdog, fence-process, agent-only or none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fencing_level: String,
    /// Agent nodes: "ok: ..." or "degraded: why".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fencing: String,
}

impl From<&hapb::NodeHaStatus> for NodeHaView {
    fn from(n: &hapb::NodeHaStatus) -> Self {
        NodeHaView {
            node_id: n.node_id.clone(),
            node: n.node_name.clone(),
            health: enum_word(n.health().as_str_name(), "NODE_HEALTH_"),
            missed_checks: n.missed_checks,
            lease_age_seconds: n.lease_age_seconds,
            protected_vms: n.protected_vms,
            fenced: n.fenced,
            fencing_level: n.fencing_level.clone(),
            fencing: n.fencing.clone(),
        }
    }
}

impl View for NodeHaView {
    columns!(
        col("NODE"),
        col("HEALTH"),
        col("MISSED"),
        col("LEASE-AGE"),
        col("HA-VMS"),
        col("FENCED"),
        col("FENCING"),
        wide("ID")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "NODE" => self.node.clone(),
            "HEALTH" => or_dash(&self.health),
            "MISSED" => self.missed_checks.to_string(),
            "LEASE-AGE" => format!("{:.1}s", self.lease_age_seconds),
            "HA-VMS" => self.protected_vms.to_string(),
            "FENCED" => yes_no(self.fenced),
            "FENCING" => or_dash(&self.fencing_level),
            "ID" => self.node_id.clone(),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.node.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HaConfigView {
    pub enabled: bool,
    pub check_interval_seconds: u32,
    pub heartbeat_timeout_seconds: u32,
    pub failure_threshold: u32,
    pub lease_ttl_seconds: u32,
    pub self_fence_after_seconds: u32,
    pub admission_control: bool,
    pub storm_threshold: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HaStatusView {
    pub config: Option<HaConfigView>,
    pub cluster_protected: bool,
    pub protected_vms: u32,
    pub failover_paused: bool,
    pub paused_reason: String,
    pub leader: String,
    pub leader_epoch: u64,
    pub last_check: Option<DateTime<Utc>>,
    /// HA VMs protected only by a degraded fence (agent-level only, no host watchdog).
    #[serde(skip_serializing_if = "is_zero")]
    pub degraded_fencing_vms: u32,
    /// By name: HA VMs a hung agent would not fence ("vm on node (level)").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agent_fence_only: Vec<String>,
    pub nodes: Vec<NodeHaView>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl From<&hapb::HaStatus> for HaStatusView {
    fn from(s: &hapb::HaStatus) -> Self {
        HaStatusView {
            config: s.config.as_ref().map(|c| HaConfigView {
                enabled: c.enabled,
                check_interval_seconds: c.check_interval_seconds,
                heartbeat_timeout_seconds: c.heartbeat_timeout_seconds,
                failure_threshold: c.failure_threshold,
                lease_ttl_seconds: c.lease_ttl_seconds,
                self_fence_after_seconds: c.self_fence_after_seconds,
                admission_control: c.admission_control,
                storm_threshold: c.storm_threshold,
            }),
            cluster_protected: s.cluster_protected,
            protected_vms: s.protected_vms,
            failover_paused: s.failover_paused,
            paused_reason: s.paused_reason.clone(),
            leader: s.leader.clone(),
            leader_epoch: s.leader_epoch,
            last_check: time(&s.last_check),
            degraded_fencing_vms: s.degraded_fencing_vms,
            agent_fence_only: s
                .agent_fence_only_vms
                .iter()
                .map(|w| format!("{} on {} ({})", w.vm_name, w.node_name, w.fencing_level))
                .collect(),
            nodes: s.nodes.iter().map(NodeHaView::from).collect(),
        }
    }
}

impl View for HaStatusView {
    columns!(
        col("ENABLED"),
        col("PROTECTED"),
        col("HA-VMS"),
        col("FAILOVER"),
        col("LEADER"),
        col("LAST-CHECK"),
        col("AGENT-FENCE-ONLY"),
        wide("EPOCH")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "ENABLED" => self.config.as_ref().map_or("-".into(), |c| yes_no(c.enabled)),
            "PROTECTED" => {
                if self.cluster_protected {
                    "yes (N+1)".into()
                } else {
                    "no".into()
                }
            }
            "HA-VMS" if self.degraded_fencing_vms > 0 => format!(
                "{} ({} with degraded fencing)",
                self.protected_vms, self.degraded_fencing_vms
            ),
            "HA-VMS" => self.protected_vms.to_string(),
            "FAILOVER" => {
                if self.failover_paused {
                    format!("paused: {}", self.paused_reason)
                } else {
                    "active".into()
                }
            }
            "LEADER" => or_dash(&self.leader),
            "LAST-CHECK" => age(self.last_check, now()),
            "AGENT-FENCE-ONLY" => or_dash(&self.agent_fence_only.join(", ")),
            "EPOCH" => self.leader_epoch.to_string(),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        "ha".into()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlacementResultView {
    pub vm_id: String,
    pub vm: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

impl View for PlacementResultView {
    columns!(col("VM"), col("FROM"), col("TO"), col("REASON"), wide("VM-ID"));
    fn cell(&self, c: &str) -> String {
        match c {
            "VM" => self.vm.clone(),
            "FROM" => or_dash(&self.from),
            "TO" => {
                if self.to.is_empty() {
                    "UNPLACED".into()
                } else {
                    self.to.clone()
                }
            }
            "REASON" => or_dash(&self.reason),
            "VM-ID" => self.vm_id.clone(),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.vm.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailoverView {
    pub placements: Vec<PlacementResultView>,
    pub unplaced: Vec<PlacementResultView>,
}

impl From<&hapb::ManualFailoverResponse> for FailoverView {
    fn from(r: &hapb::ManualFailoverResponse) -> Self {
        FailoverView {
            placements: r
                .placements
                .iter()
                .map(|p| PlacementResultView {
                    vm_id: p.vm_id.clone(),
                    vm: p.vm_name.clone(),
                    from: p.from_node.clone(),
                    to: p.to_node.clone(),
                    reason: String::new(),
                })
                .collect(),
            unplaced: r
                .unplaced
                .iter()
                .map(|u| PlacementResultView {
                    vm_id: u.vm_id.clone(),
                    vm: u.vm_name.clone(),
                    from: String::new(),
                    to: String::new(),
                    reason: u.reason.clone(),
                })
                .collect(),
        }
    }
}

// ------------------------------------------------------------------ events

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventView {
    pub sequence: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub resource_type: String,
    pub resource_id: String,
    pub project_id: String,
    pub time: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
    /// The resource's name for the table (`lqx watch` resolves it), not in JSON: the
    /// payload carries the resource.
    #[serde(skip)]
    pub name: String,
}

impl EventView {
    /// The name the event's payload gives its VM or node, if any.
    pub fn payload_name(&self) -> Option<&str> {
        matches!(self.resource_type.as_str(), "vm" | "node")
            .then(|| self.payload.get("name").and_then(|n| n.as_str()))
            .flatten()
            .filter(|n| !n.is_empty())
    }
}

impl From<&eventspb::Event> for EventView {
    fn from(e: &eventspb::Event) -> Self {
        EventView {
            sequence: e.sequence,
            kind: e.r#type.to_ascii_lowercase(),
            resource_type: e.resource_type.clone(),
            resource_id: e.resource_id.clone(),
            project_id: e.project_id.clone(),
            time: time(&e.time),
            payload: e.payload.as_ref().map_or(serde_json::Value::Null, |p| {
                event_payload(&e.resource_type, lqx_core::api::convert::events::struct_to_json(p))
            }),
            name: String::new(),
        }
    }
}

/// An event's payload in the shape `get` prints for that resource: a VM event carries the
/// VM as `vm get -o json` prints it, a node event the node, an alert event the alert, a DRS
/// event the recommendation (lower-case enum words, `_seconds`, integers as integers). Node
/// events do not know the node's allocation and HA health, so those fields are left out;
/// a VM event's `node` (name) is empty, its `node_id` is set. Other payloads (engine runs,
/// HA) pass as they are.
pub fn event_payload(resource_type: &str, p: serde_json::Value) -> serde_json::Value {
    use lqx_core::model;
    let shaped = match resource_type {
        "vm" => serde_json::from_value::<model::Vm>(p.clone())
            .ok()
            .map(|v| VmView::from(&lqx_core::api::convert::compute::vm_out(&v, &|_| String::new())))
            .and_then(|v| serde_json::to_value(v).ok()),
        "node" => serde_json::from_value::<model::Node>(p.clone())
            .ok()
            .map(|n| {
                NodeView::from(&lqx_core::api::convert::compute::node_out(
                    &n,
                    model::Resources::default(),
                    "",
                ))
            })
            .and_then(|n| serde_json::to_value(n).ok())
            .map(|mut v| {
                if let Some(o) = v.as_object_mut() {
                    for unknown in ["health", "allocated_cpu_cores", "allocated_memory_mib"] {
                        o.remove(unknown);
                    }
                }
                v
            }),
        "alert" => serde_json::from_value::<model::Alert>(p.clone())
            .ok()
            .and_then(|a| serde_json::to_value(AlertView::from(&a.to_proto())).ok()),
        "drs" => serde_json::from_value::<model::DrsRecommendation>(p.clone())
            .ok()
            .and_then(|r| serde_json::to_value(RecommendationView::from(&r)).ok()),
        _ => None,
    };
    shaped.unwrap_or(p)
}

impl View for EventView {
    columns!(
        col("TIME"),
        col("SEQ"),
        col("RESOURCE"),
        col("NAME"),
        col("EVENT"),
        wide("ID"),
        wide("PROJECT")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "TIME" => fmt_time(self.time),
            "SEQ" => self.sequence.to_string(),
            "RESOURCE" => self.resource_type.clone(),
            // A resource without a name (an alert, a DRS run) is known by its short id.
            "NAME" if self.name.is_empty() => crate::output::short_id(&self.resource_id),
            "NAME" => self.name.clone(),
            "ID" => self.resource_id.clone(),
            "EVENT" => self.kind.clone(),
            "PROJECT" => or_dash(&self.project_id),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.resource_id.clone()
    }
}

/// One line of `lqx vm watch`: the event and the VM after it (absent when deleted).
#[derive(Debug, Clone, Serialize)]
pub struct VmEventView {
    pub event: Option<EventView>,
    pub vm: Option<VmView>,
}

impl View for VmEventView {
    columns!(
        col("TIME"),
        col("EVENT"),
        col("NAME"),
        col("STATE"),
        col("NODE"),
        wide("SEQ")
    );
    fn cell(&self, c: &str) -> String {
        let vm = self.vm.as_ref();
        match c {
            "TIME" => self.event.as_ref().map_or("-".into(), |e| fmt_time(e.time)),
            "EVENT" => self.event.as_ref().map_or("-".into(), |e| e.kind.clone()),
            "NAME" => vm
                .map(|v| v.name.clone())
                .or_else(|| self.event.as_ref().map(|e| e.resource_id.clone()))
                .unwrap_or_default(),
            "STATE" => vm.map_or("-".into(), |v| or_dash(&v.state)),
            "NODE" => vm.map_or("-".into(), |v| or_dash(&v.node)),
            "SEQ" => self.event.as_ref().map_or("-".into(), |e| e.sequence.to_string()),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.vm.as_ref().map(|v| v.name.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeEventView {
    pub event: Option<EventView>,
    pub node: Option<NodeView>,
}

impl View for NodeEventView {
    columns!(
        col("TIME"),
        col("EVENT"),
        col("NAME"),
        col("PHASE"),
        col("HEALTH"),
        wide("SEQ")
    );
    fn cell(&self, c: &str) -> String {
        let n = self.node.as_ref();
        match c {
            "TIME" => self.event.as_ref().map_or("-".into(), |e| fmt_time(e.time)),
            "EVENT" => self.event.as_ref().map_or("-".into(), |e| e.kind.clone()),
            "NAME" => n
                .map(|v| v.name.clone())
                .or_else(|| self.event.as_ref().map(|e| e.resource_id.clone()))
                .unwrap_or_default(),
            "PHASE" => n.map_or("-".into(), |v| or_dash(&v.phase)),
            "HEALTH" => n.map_or("-".into(), |v| or_dash(&v.health)),
            "SEQ" => self.event.as_ref().map_or("-".into(), |e| e.sequence.to_string()),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.node.as_ref().map(|v| v.name.clone()).unwrap_or_default()
    }
}

// ------------------------------------------------------------------ auth status, contexts

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuthStatusView {
    pub context: String,
    pub server: String,
    pub username: String,
    pub role: String,
    pub auth_method: String,
    pub token_source: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl View for AuthStatusView {
    columns!(
        col("SERVER"),
        col("USER"),
        col("ROLE"),
        col("EXPIRES"),
        col("TOKEN-STORE"),
        wide("CONTEXT"),
        wide("METHOD"),
        wide("TOKEN")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "SERVER" => self.server.clone(),
            "USER" => or_dash(&self.username),
            "ROLE" => or_dash(&self.role),
            "EXPIRES" => fmt_time(self.expires_at),
            "TOKEN-STORE" => self.token_source.clone(),
            "CONTEXT" => or_dash(&self.context),
            "METHOD" => or_dash(&self.auth_method),
            "TOKEN" => self.token.clone().unwrap_or_else(|| "-".into()),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.username.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContextView {
    pub name: String,
    pub current: bool,
    pub server: String,
    pub username: String,
    pub token_storage: String,
    pub ca_cert: Option<String>,
}

impl View for ContextView {
    columns!(
        col("CURRENT"),
        col("NAME"),
        col("SERVER"),
        col("USER"),
        col("STORAGE"),
        wide("CA-CERT")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "CURRENT" => {
                if self.current {
                    "*".into()
                } else {
                    String::new()
                }
            }
            "NAME" => self.name.clone(),
            "SERVER" => self.server.clone(),
            "USER" => or_dash(&self.username),
            "STORAGE" => self.token_storage.clone(),
            "CA-CERT" => self.ca_cert.clone().unwrap_or_else(|| "-".into()),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Format, Printer};

    fn vm() -> computepb::Vm {
        computepb::Vm {
            id: "0190a0b0-0000-7000-8000-000000000001".into(),
            name: "web-1".into(),
            project_id: "default".into(),
            labels: [("tier".to_string(), "web".to_string())].into(),
            spec: Some(computepb::VmSpec {
                cpu_cores: 2,
                memory_mib: 4096,
                disks: vec![computepb::Disk {
                    name: "root".into(),
                    size_mib: 20480,
                    ..Default::default()
                }],
                ha: Some(computepb::HaPolicy {
                    enabled: true,
                    priority: computepb::HaRestartPriority::High as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(computepb::VmStatus {
                state: computepb::VmState::Running as i32,
                node_name: "node-1".into(),
                node_id: "n1".into(),
                ..Default::default()
            }),
            desired_state: computepb::VmState::Running as i32,
            created_at: Some(pbjson_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    /// The documented JSON field names of a VM. Changing them breaks scripts: update
    /// lqx-cli/README.md and this list together, on purpose.
    #[test]
    fn vm_json_field_names_are_stable() {
        let v = serde_json::to_value(VmView::from(&vm())).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "id",
            "name",
            "project_id",
            "description",
            "labels",
            "state",
            "desired_state",
            "node_id",
            "node",
            "cpu_cores",
            "memory_mib",
            "disks",
            "nics",
            "ha",
            "placement",
            "cpu_usage_percent",
            "memory_used_mib",
            "restart_count",
            "message",
            "started_at",
            "stopped_at",
            "created_at",
            "updated_at",
            "resource_version",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(v["state"], "running");
        assert_eq!(v["ha"]["priority"], "high");
        assert_eq!(v["disks"][0]["size_mib"], 20480);
        assert_eq!(v["created_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["started_at"], serde_json::Value::Null);
        assert_eq!(v["labels"]["tier"], "web");
    }

    #[test]
    fn vm_table_row() {
        let mut p = Printer::plain(Format::Table);
        p.columns = Some(vec!["name,state,node,cpu,memory,disk,ha".into()]);
        let s = p.render_one(&VmView::from(&vm())).unwrap();
        assert_eq!(
            s,
            "NAME    STATE     NODE     CPU   MEMORY   DISK    HA\nweb-1   running   node-1   2     4GiB     20GiB   high\n"
        );
    }

    #[test]
    fn recommendation_json_uses_simulate_names() {
        let r = drspb::Recommendation {
            id: "r1".into(),
            vm_name: "web-1".into(),
            source_node_name: "a".into(),
            target_node_name: "b".into(),
            priority: drspb::Priority::High as i32,
            r#type: drspb::RecommendationType::Migrate as i32,
            status: drspb::RecommendationStatus::Pending as i32,
            impact_cpu: 12.5,
            ..Default::default()
        };
        let v = serde_json::to_value(RecommendationView::from(&r)).unwrap();
        for k in [
            "vm",
            "source",
            "target",
            "priority",
            "type",
            "reason",
            "impact_cpu",
            "impact_memory",
            "status",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["type"], "migrate");
        assert_eq!(v["priority"], "high");
        assert_eq!(v["status"], "pending");
    }

    #[test]
    fn enum_words_and_ages() {
        assert_eq!(enum_word("VM_STATE_RUNNING", "VM_STATE_"), "running");
        assert_eq!(enum_word("VM_STATE_UNSPECIFIED", "VM_STATE_"), "");
        let now: DateTime<Utc> = "2024-01-02T00:00:00Z".parse().unwrap();
        assert_eq!(age(Some("2024-01-01T23:59:15Z".parse().unwrap()), now), "45s");
        assert_eq!(age(Some("2024-01-01T23:00:00Z".parse().unwrap()), now), "60m");
        assert_eq!(age(Some("2023-12-30T00:00:00Z".parse().unwrap()), now), "3d");
        assert_eq!(age(None, now), "-");
        assert_eq!(time(&Some(to_timestamp(now))), Some(now));
    }
}

// ------------------------------------------------------------------ projects

/// A limit and what is used of it; `None` limit: unlimited.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Used {
    pub used: u64,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub my_role: String,
    pub vcpus: Used,
    pub memory_mib: Used,
    pub vms: Used,
    pub created_at: Option<DateTime<Utc>>,
}

impl From<&projectpb::Project> for ProjectView {
    fn from(p: &projectpb::Project) -> Self {
        let q = p.quota.unwrap_or_default();
        let u = p.usage.unwrap_or_default();
        let used = |used, limit: u64| Used {
            used,
            limit: (limit > 0).then_some(limit),
        };
        ProjectView {
            id: p.id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            my_role: p.my_role.clone(),
            vcpus: used(u.vcpus, q.vcpus),
            memory_mib: used(u.memory_mib, q.memory_mib),
            vms: used(u.vms, q.vms),
            created_at: time(&p.created_at),
        }
    }
}

/// `used/limit`, or `used/-` without a limit.
fn of(u: &Used, show: fn(u64) -> String) -> String {
    format!("{}/{}", show(u.used), u.limit.map_or_else(|| "-".to_string(), show))
}

impl View for ProjectView {
    columns!(
        col("NAME"),
        col("ROLE"),
        col("VMS"),
        col("VCPUS"),
        col("MEMORY"),
        wide("DESCRIPTION"),
        wide("ID"),
        wide("CREATED")
    );
    fn cell(&self, c: &str) -> String {
        match c {
            "NAME" => self.name.clone(),
            "ROLE" => or_dash(&self.my_role),
            "VMS" => of(&self.vms, |n| n.to_string()),
            "VCPUS" => of(&self.vcpus, |n| n.to_string()),
            "MEMORY" => of(&self.memory_mib, format_mib),
            "DESCRIPTION" => or_dash(&self.description),
            "ID" => self.id.clone(),
            "CREATED" => fmt_time(self.created_at),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemberView {
    pub user_id: String,
    pub username: String,
    pub role: String,
}

impl From<&projectpb::ProjectMember> for MemberView {
    fn from(m: &projectpb::ProjectMember) -> Self {
        MemberView {
            user_id: m.user_id.clone(),
            username: m.username.clone(),
            role: m.role.clone(),
        }
    }
}

impl View for MemberView {
    columns!(col("USER"), col("ROLE"), wide("USER-ID"));
    fn cell(&self, c: &str) -> String {
        match c {
            "USER" => self.username.clone(),
            "ROLE" => self.role.clone(),
            "USER-ID" => self.user_id.clone(),
            _ => String::new(),
        }
    }
    fn name(&self) -> String {
        self.username.clone()
    }
}

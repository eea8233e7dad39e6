//! Cluster files: nodes and VMs for simulation and what-if planning (format in docs/architecture.md), and the
//! report `lqx drs simulate -o json` prints.
//!
//! Ids are derived from names (`node_id_for`, `vm_id_for`), so the same file always gives
//! the same snapshot and runs are reproducible.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::drs::{self, ClusterMetrics, DrsPlan, DrsState, MigrationHistory};
use crate::model::{
    DrsConfig, HaPolicy, NodeId, NodePhase, PlacementPolicy, Priority, RecommendationType, RestartPriority, VmId,
    validate,
};
use crate::placement::{ClusterSnapshot, NodeSnapshot, NodeUsageSample, VmSnapshot, VmUsageSample};

// ---- the file ----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    #[serde(default)]
    pub vms: Vec<VmEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub name: String,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub maintenance: bool,
    /// READY (default), NOT_READY, MAINTENANCE or DRAINING; `maintenance: true` wins.
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default = "yes")]
    pub schedulable: bool,
    #[serde(default)]
    pub cpu_overcommit: Option<f64>,
    #[serde(default)]
    pub memory_overcommit: Option<f64>,
    /// Measured use of the whole node; default: the sum of its VMs.
    #[serde(default)]
    pub usage: Option<UsageEntry>,
    /// Host power (on, standby, ...), for DPM; default: on.
    #[serde(default)]
    pub power: Option<crate::power::PowerState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmEntry {
    pub name: String,
    #[serde(default)]
    pub node: Option<String>,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    #[serde(default = "yes")]
    pub running: bool,
    /// Measured use; default: fully used.
    #[serde(default)]
    pub usage: Option<UsageEntry>,
    #[serde(default)]
    pub ha: Option<HaEntry>,
    #[serde(default)]
    pub placement: Option<PlacementEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEntry {
    pub cpu_percent: f64,
    pub memory_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaEntry {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub priority: RestartPriority,
    #[serde(default, with = "humantime_serde")]
    pub restart_delay: Option<std::time::Duration>,
    #[serde(default)]
    pub max_restarts: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementEntry {
    #[serde(default)]
    pub anti_affinity_group: Option<String>,
    #[serde(default)]
    pub required_nodes: Vec<String>,
    #[serde(default)]
    pub excluded_nodes: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    #[error("Cannot read the cluster file")]
    Parse(#[source] serde_norway::Error),
    #[error("{message}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid { message: String, line: Option<usize> },
}

impl From<ClusterFileError> for crate::Error {
    fn from(e: ClusterFileError) -> Self {
        match &e {
            // The YAML error says where (line and column); the client needs to see it.
            ClusterFileError::Parse(source) => crate::Error::invalid("cluster", source),
            ClusterFileError::Invalid { .. } => crate::Error::new(crate::ErrorKind::InvalidArgument, e.to_string()),
        }
    }
}

/// The id a node named `name` gets in a cluster file.
pub fn node_id_for(name: &str) -> NodeId {
    NodeId(name_uuid("node", name))
}

/// The id a VM named `name` gets in a cluster file.
pub fn vm_id_for(name: &str) -> VmId {
    VmId(name_uuid("vm", name))
}

/// A version-8 (custom) UUID from two FNV-1a 64 hashes of `kind:name`: stable across runs,
/// platforms and releases.
fn name_uuid(kind: &str, name: &str) -> Uuid {
    fn fnv(seed: u64, parts: &[&[u8]]) -> u64 {
        let mut h = seed;
        for p in parts {
            for &b in *p {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
    let parts: [&[u8]; 3] = [kind.as_bytes(), b":", name.as_bytes()];
    let hi = fnv(0xcbf2_9ce4_8422_2325, &parts);
    let lo = fnv(0x6c62_272e_07bb_0142, &parts);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Parses and validates a cluster file into a snapshot.
pub fn parse(text: &str) -> Result<ClusterSnapshot, ClusterFileError> {
    let file: ClusterFile = serde_norway::from_str(text).map_err(ClusterFileError::Parse)?;
    to_snapshot(&file, text)
}

/// The power state each node of a cluster file declares (`power:`); nodes without one are
/// absent (on).
pub fn power_states(text: &str) -> Result<HashMap<NodeId, crate::power::PowerState>, ClusterFileError> {
    let file: ClusterFile = serde_norway::from_str(text).map_err(ClusterFileError::Parse)?;
    Ok(file
        .nodes
        .iter()
        .filter_map(|n| n.power.map(|p| (node_id_for(&n.name), p)))
        .collect())
}

/// The first line (1-based) that sets `name: <name>`, to point errors at the entry.
fn line_of(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches("- ").trim_start();
            l.strip_prefix("name:")
                .map(|rest| rest.trim().trim_matches(|c| c == '"' || c == '\'') == name)
                .unwrap_or(false)
        })
        .map(|i| i + 1)
}

fn to_snapshot(file: &ClusterFile, text: &str) -> Result<ClusterSnapshot, ClusterFileError> {
    let invalid = |message: String, name: &str| ClusterFileError::Invalid {
        message,
        line: line_of(text, name),
    };
    let wrap = |e: crate::Error, name: &str| invalid(e.message, name);
    if file.nodes.is_empty() {
        return Err(ClusterFileError::Invalid {
            message: "nodes: at least one node is required".into(),
            line: None,
        });
    }
    let mut node_ids: HashMap<&str, NodeId> = HashMap::new();
    let mut nodes = Vec::with_capacity(file.nodes.len());
    for (i, n) in file.nodes.iter().enumerate() {
        let f = |field: &str| format!("nodes[{i}].{field}");
        validate::name(&f("name"), &n.name).map_err(|e| wrap(e, &n.name))?;
        if node_ids.insert(&n.name, node_id_for(&n.name)).is_some() {
            return Err(invalid(
                format!("{}: node {:?} is defined twice", f("name"), n.name),
                &n.name,
            ));
        }
        validate::labels(&f("labels"), &n.labels).map_err(|e| wrap(e, &n.name))?;
        validate::range(&f("cpu_cores"), n.cpu_cores, 1, 65_536, "").map_err(|e| wrap(e, &n.name))?;
        validate::range(&f("memory_mib"), n.memory_mib, 64, 1 << 40, " MiB").map_err(|e| wrap(e, &n.name))?;
        let cpu_overcommit = n.cpu_overcommit.unwrap_or(crate::model::DEFAULT_CPU_OVERCOMMIT);
        let memory_overcommit = n.memory_overcommit.unwrap_or(crate::model::DEFAULT_MEMORY_OVERCOMMIT);
        validate::range(&f("cpu_overcommit"), cpu_overcommit, 1.0, 64.0, "").map_err(|e| wrap(e, &n.name))?;
        validate::range(&f("memory_overcommit"), memory_overcommit, 1.0, 4.0, "").map_err(|e| wrap(e, &n.name))?;
        let mut phase = match &n.phase {
            None => NodePhase::Ready,
            Some(p) => NodePhase::parse(p).ok_or_else(|| {
                invalid(
                    format!("{}: {p:?} is not READY, NOT_READY, MAINTENANCE or DRAINING", f("phase")),
                    &n.name,
                )
            })?,
        };
        if n.maintenance {
            phase = NodePhase::Maintenance;
        }
        let usage = match n.usage {
            None => None,
            Some(u) => Some(usage(&f("usage"), u, n.memory_mib).map_err(|m| invalid(m, &n.name))?),
        }
        .map(|(cpu_percent, memory_used_mib)| NodeUsageSample {
            cpu_percent,
            memory_used_mib,
        });
        nodes.push(NodeSnapshot {
            id: node_id_for(&n.name),
            name: n.name.clone(),
            cpu_cores: n.cpu_cores,
            memory_mib: n.memory_mib,
            cpu_overcommit,
            memory_overcommit,
            labels: n.labels.clone(),
            schedulable: n.schedulable,
            phase,
            usage,
        });
    }
    let mut vm_names = HashSet::new();
    let mut vms = Vec::with_capacity(file.vms.len());
    for (i, v) in file.vms.iter().enumerate() {
        let f = |field: &str| format!("vms[{i}].{field}");
        validate::name(&f("name"), &v.name).map_err(|e| wrap(e, &v.name))?;
        if !vm_names.insert(v.name.as_str()) {
            return Err(invalid(
                format!("{}: VM {:?} is defined twice", f("name"), v.name),
                &v.name,
            ));
        }
        validate::range(
            &f("cpu_cores"),
            v.cpu_cores,
            crate::model::MIN_CPU,
            crate::model::MAX_CPU,
            "",
        )
        .map_err(|e| wrap(e, &v.name))?;
        validate::range(
            &f("memory_mib"),
            v.memory_mib,
            crate::model::MIN_MEMORY_MIB,
            crate::model::MAX_MEMORY_MIB,
            " MiB",
        )
        .map_err(|e| wrap(e, &v.name))?;
        let lookup = |field: String, name: &str| {
            node_ids
                .get(name)
                .copied()
                .ok_or_else(|| invalid(format!("{field}: node {name:?} is not defined in nodes"), &v.name))
        };
        let node = v.node.as_deref().map(|n| lookup(f("node"), n)).transpose()?;
        let usage = match v.usage {
            None => None,
            Some(u) => Some(usage(&f("usage"), u, v.memory_mib).map_err(|m| invalid(m, &v.name))?),
        }
        .map(|(cpu_percent, memory_used_mib)| VmUsageSample {
            cpu_percent,
            memory_used_mib,
        });
        let ha =
            v.ha.as_ref()
                .map(|h| HaPolicy {
                    enabled: h.enabled,
                    priority: h.priority,
                    restart_delay_secs: h.restart_delay.map_or(0, |d| d.as_secs().min(u32::MAX as u64) as u32),
                    max_restarts: h.max_restarts,
                })
                .unwrap_or_default();
        let mut placement = PlacementPolicy::default();
        if let Some(p) = &v.placement {
            if let Some(g) = &p.anti_affinity_group {
                validate::name(&f("placement.anti_affinity_group"), g).map_err(|e| wrap(e, &v.name))?;
            }
            placement.anti_affinity_group = p.anti_affinity_group.clone();
            for (k, n) in p.required_nodes.iter().enumerate() {
                placement
                    .required_nodes
                    .push(lookup(f(&format!("placement.required_nodes[{k}]")), n)?);
            }
            for (k, n) in p.excluded_nodes.iter().enumerate() {
                placement
                    .excluded_nodes
                    .push(lookup(f(&format!("placement.excluded_nodes[{k}]")), n)?);
            }
            if let Some(n) = p.required_nodes.iter().find(|n| p.excluded_nodes.contains(n)) {
                return Err(invalid(
                    format!("{}: node {n:?} is both required and excluded", f("placement")),
                    &v.name,
                ));
            }
        }
        vms.push(VmSnapshot {
            id: vm_id_for(&v.name),
            name: v.name.clone(),
            node,
            cpu_cores: v.cpu_cores,
            memory_mib: v.memory_mib,
            running: v.running,
            usage,
            ha,
            placement,
        });
    }
    Ok(ClusterSnapshot { nodes, vms })
}

fn usage(field: &str, u: UsageEntry, memory_mib: u64) -> Result<(f64, u64), String> {
    if !(u.cpu_percent.is_finite() && (0.0..=100.0).contains(&u.cpu_percent)) {
        return Err(format!(
            "{field}.cpu_percent: must be between 0 and 100, got {}",
            u.cpu_percent
        ));
    }
    if u.memory_mib > memory_mib {
        return Err(format!(
            "{field}.memory_mib: {} is more than the {memory_mib} MiB it has",
            u.memory_mib
        ));
    }
    Ok((u.cpu_percent, u.memory_mib))
}

// ---- reports ----

/// One node in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportNode {
    pub name: String,
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

/// The cluster's load in a report (`before` / `after`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMetrics {
    pub nodes: Vec<ReportNode>,
    pub imbalance: f64,
    pub max_cpu_percent: f64,
    pub max_memory_percent: f64,
}

impl From<&ClusterMetrics> for ReportMetrics {
    fn from(m: &ClusterMetrics) -> Self {
        ReportMetrics {
            nodes: m
                .nodes
                .iter()
                .map(|n| ReportNode {
                    name: n.name.clone(),
                    cpu_percent: n.cpu_percent,
                    memory_percent: n.memory_percent,
                })
                .collect(),
            imbalance: m.imbalance,
            max_cpu_percent: m.max_cpu_percent,
            max_memory_percent: m.max_memory_percent,
        }
    }
}

/// One recommendation in `lqx drs simulate -o json` (names, not ids). Field names and enum
/// words are those of `lqx drs list -o json` (`critical`, `migrate`, `_seconds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedRecommendation {
    pub vm: String,
    pub source: String,
    pub target: String,
    #[serde(with = "lower_word")]
    pub priority: Priority,
    #[serde(rename = "type", with = "lower_word")]
    pub recommendation_type: RecommendationType,
    pub reason: String,
    pub impact_cpu: f64,
    pub impact_memory: f64,
    pub mandatory: bool,
    #[serde(rename = "estimated_duration_seconds", alias = "estimated_duration_secs")]
    pub estimated_duration_secs: u64,
}

/// An enum as the lower-case word reports print (`CRITICAL` → `critical`); either case reads.
pub(crate) mod lower_word {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::to_value(v) {
            Ok(serde_json::Value::String(w)) => s.serialize_str(&w.to_ascii_lowercase()),
            _ => Err(S::Error::custom("not an enum word")),
        }
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let w = String::deserialize(d)?;
        serde_json::from_value(serde_json::Value::String(w.to_ascii_uppercase())).map_err(D::Error::custom)
    }
}

/// A VM that had to move but could not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmovableReport {
    pub vm: String,
    pub node: String,
    pub reason: String,
}

/// A hot node DRS found no relief for (its use once the planned moves are made).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnrelievedReport {
    pub node: String,
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

/// What `lqx drs simulate --cluster FILE -o json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationReport {
    pub recommendations: Vec<SimulatedRecommendation>,
    pub unmovable: Vec<UnmovableReport>,
    /// Hot nodes still above a threshold where the simulation ends.
    #[serde(default)]
    pub unrelieved: Vec<UnrelievedReport>,
    pub before: ReportMetrics,
    pub after: ReportMetrics,
    pub moves: usize,
    pub memory_moved_mib: u64,
    /// Analysis rounds simulated (1 unless asked for more).
    pub rounds: u32,
    /// Time spent planning (not parsing), milliseconds.
    pub elapsed_ms: f64,
}

/// Plans one DRS round over a cluster file: the recommendations the engine would make on
/// its next run, once the snapshot's conditions have held (the file is taken as already
/// smoothed, so the hold count is not waited for).
pub fn simulate_drs(file_contents: &str, config: &DrsConfig) -> crate::Result<SimulationReport> {
    simulate_drs_rounds(file_contents, config, 1)
}

/// Like `simulate_drs`, but applies each round's moves and plans again, up to `max_rounds`
/// or until a round recommends nothing: where the cluster settles.
pub fn simulate_drs_rounds(
    file_contents: &str,
    config: &DrsConfig,
    max_rounds: u32,
) -> crate::Result<SimulationReport> {
    config.validate()?;
    let mut snap = parse(file_contents)?;
    let config = DrsConfig {
        hysteresis_hold_count: 1,
        ..config.clone()
    };
    // Wall-clock time only feeds the report's elapsed_ms, never a decision.
    let started = std::time::Instant::now();
    let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let mut state = DrsState::default();
    let mut history = MigrationHistory::default();
    let mut plans: Vec<DrsPlan> = Vec::new();
    for _ in 0..max_rounds.max(1) {
        let p = drs::plan(&snap, &config, &state, &history, now);
        let done = p.moves.is_empty();
        for m in &p.moves {
            history.record(m.vm, m.source, m.target, now);
        }
        p.apply(&mut snap);
        state = p.state.clone();
        plans.push(p);
        if done {
            break;
        }
    }
    let elapsed_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let first = &plans[0];
    let last = &plans[plans.len() - 1];
    let rounds = plans.iter().filter(|p| !p.moves.is_empty()).count().max(1) as u32;
    let recommendations: Vec<_> = plans
        .iter()
        .flat_map(|p| &p.moves)
        .map(|m| SimulatedRecommendation {
            vm: m.vm_name.clone(),
            source: m.source_name.clone(),
            target: m.target_name.clone(),
            priority: m.priority,
            recommendation_type: RecommendationType::Migrate,
            reason: m.reason.clone(),
            impact_cpu: m.impact_cpu,
            impact_memory: m.impact_memory,
            mandatory: m.mandatory,
            estimated_duration_secs: m.estimated_duration_secs,
        })
        .collect();
    Ok(SimulationReport {
        moves: recommendations.len(),
        memory_moved_mib: plans.iter().map(DrsPlan::memory_moved_mib).sum(),
        recommendations,
        unmovable: last
            .unmovable
            .iter()
            .map(|u| UnmovableReport {
                vm: u.vm_name.clone(),
                node: u.node_name.clone(),
                reason: u.reason.clone(),
            })
            .collect(),
        unrelieved: last
            .unrelieved
            .iter()
            .map(|n| UnrelievedReport {
                node: n.name.clone(),
                cpu_percent: n.cpu_percent,
                memory_percent: n.memory_percent,
            })
            .collect(),
        before: (&first.before).into(),
        after: (&last.after).into(),
        rounds,
        elapsed_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
nodes:
  - name: node-1
    cpu_cores: 32
    memory_mib: 131072
    labels: {rack: a}          # optional
    maintenance: false         # optional
  - name: node-2
    cpu_cores: 32
    memory_mib: 131072
vms:
  - name: web-1
    node: node-1
    cpu_cores: 4
    memory_mib: 8192
    usage: {cpu_percent: 60, memory_mib: 6144}   # optional measured usage; default: fully used
    ha: {enabled: true, priority: high}           # optional
    placement: {anti_affinity_group: web, required_nodes: [], excluded_nodes: []}  # optional
"#;

    #[test]
    fn the_design_example_parses_with_stable_ids() {
        let s = parse(EXAMPLE).unwrap();
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(s.nodes[0].labels.get("rack").map(String::as_str), Some("a"));
        assert_eq!(s.nodes[0].phase, NodePhase::Ready);
        assert_eq!(s.nodes[0].cpu_overcommit, 4.0);
        let web = &s.vms[0];
        assert_eq!(web.node, Some(node_id_for("node-1")));
        assert_eq!(
            web.usage,
            Some(VmUsageSample {
                cpu_percent: 60.0,
                memory_used_mib: 6144
            })
        );
        assert!(web.ha.enabled);
        assert_eq!(web.ha.priority, RestartPriority::High);
        assert_eq!(web.placement.anti_affinity_group.as_deref(), Some("web"));
        assert!(web.running);
        // Same names, same ids, on every run; different names, different ids.
        assert_eq!(parse(EXAMPLE).unwrap(), s);
        assert_eq!(web.id, vm_id_for("web-1"));
        assert_ne!(node_id_for("node-1"), node_id_for("node-2"));
        assert_ne!(node_id_for("web-1").0, vm_id_for("web-1").0);
        assert_eq!(node_id_for("node-1").0.get_version_num(), 8);
    }

    #[test]
    fn errors_name_the_field_and_line() {
        let bad_ref = "nodes:\n  - name: a\n    cpu_cores: 4\n    memory_mib: 4096\nvms:\n  - name: v\n    node: b\n    cpu_cores: 1\n    memory_mib: 512\n";
        let err = parse(bad_ref).unwrap_err();
        assert_eq!(
            err.to_string(),
            "vms[0].node: node \"b\" is not defined in nodes (line 6)"
        );
        let e: crate::Error = err.into();
        assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);

        let typo = "nodes:\n  - name: a\n    cpu_cores: 4\n    memory_mb: 4096\n";
        let err = parse(typo).unwrap_err();
        assert!(matches!(err, ClusterFileError::Parse(_)));
        let e: crate::Error = err.into();
        assert!(
            e.message.contains("memory_mb") && e.message.contains("line 4"),
            "{}",
            e.message
        );

        let small = "nodes:\n  - name: a\n    cpu_cores: 0\n    memory_mib: 4096\n";
        assert_eq!(
            parse(small).unwrap_err().to_string(),
            "nodes[0].cpu_cores: must be between 1 and 65536, got 0 (line 2)"
        );
        let dup = "nodes:\n  - name: a\n    cpu_cores: 1\n    memory_mib: 4096\n  - name: a\n    cpu_cores: 1\n    memory_mib: 4096\n";
        assert!(
            parse(dup)
                .unwrap_err()
                .to_string()
                .starts_with("nodes[1].name: node \"a\" is defined twice")
        );
        let contradictory = "nodes:\n  - name: a\n    cpu_cores: 1\n    memory_mib: 4096\nvms:\n  - name: v\n    cpu_cores: 1\n    memory_mib: 512\n    placement: {required_nodes: [a], excluded_nodes: [a]}\n";
        assert_eq!(
            parse(contradictory).unwrap_err().to_string(),
            "vms[0].placement: node \"a\" is both required and excluded (line 6)"
        );
        let over = "nodes:\n  - name: a\n    cpu_cores: 1\n    memory_mib: 4096\nvms:\n  - name: v\n    cpu_cores: 1\n    memory_mib: 512\n    usage: {cpu_percent: 10, memory_mib: 600}\n";
        assert!(
            parse(over)
                .unwrap_err()
                .to_string()
                .starts_with("vms[0].usage.memory_mib: 600 is more than")
        );
        assert!(
            parse("vms: []")
                .unwrap_err()
                .to_string()
                .starts_with("nodes: at least one node")
        );
        let phase = "nodes:\n  - name: a\n    cpu_cores: 1\n    memory_mib: 4096\n    phase: broken\n";
        assert!(parse(phase).unwrap_err().to_string().contains("nodes[0].phase"));
    }

    #[test]
    fn simulate_report_has_the_documented_fields() {
        let file = "nodes:\n  - {name: a, cpu_cores: 8, memory_mib: 16384, maintenance: true}\n  - {name: b, cpu_cores: 8, memory_mib: 16384}\nvms:\n  - {name: v1, node: a, cpu_cores: 2, memory_mib: 2048}\n  - {name: v2, node: a, cpu_cores: 2, memory_mib: 2048, running: false}\n";
        let r = simulate_drs(file, &DrsConfig::default()).unwrap();
        assert_eq!(r.moves, 2);
        assert_eq!(r.memory_moved_mib, 2048, "the stopped VM copies no memory");
        assert_eq!(r.before.nodes[0].cpu_percent, 25.0);
        assert_eq!(r.after.nodes[0].cpu_percent, 0.0);
        assert_eq!(r.after.nodes[1].cpu_percent, 25.0);
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "recommendations",
            "before",
            "after",
            "moves",
            "memory_moved_mib",
            "elapsed_ms",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let rec = &json["recommendations"][0];
        for key in [
            "vm",
            "source",
            "target",
            "priority",
            "type",
            "reason",
            "impact_cpu",
            "impact_memory",
            "estimated_duration_seconds",
        ] {
            assert!(rec.get(key).is_some(), "{key}");
        }
        // The words and names `lqx drs list -o json` prints.
        assert_eq!(rec["type"], "migrate");
        assert_eq!(rec["priority"], "high");
        let back: SimulationReport = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.recommendations[0].priority, Priority::High);
        assert_eq!(rec["source"], "a");
        for key in ["nodes", "imbalance", "max_cpu_percent", "max_memory_percent"] {
            assert!(json["before"].get(key).is_some(), "{key}");
        }
        assert_eq!(json["before"]["nodes"][0]["name"], "a");
        // Bad config is refused before anything is planned.
        let bad = DrsConfig {
            migration_threshold: 0,
            ..DrsConfig::default()
        };
        assert_eq!(
            simulate_drs(file, &bad).unwrap_err().kind,
            crate::ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn more_rounds_settle_the_cluster() {
        let mut file = String::from("nodes:\n");
        for n in ["a", "b", "c"] {
            file += &format!("  - {{name: {n}, cpu_cores: 16, memory_mib: 65536}}\n");
        }
        file += "vms:\n";
        for i in 0..12 {
            file += &format!(
                "  - {{name: v{i}, node: a, cpu_cores: 2, memory_mib: 4096, usage: {{cpu_percent: 60, memory_mib: 2048}}}}\n"
            );
        }
        // A budget of 2 moves per host per round (the default derives a larger one).
        let c = DrsConfig {
            migrations_per_host_per_round: 2,
            ..DrsConfig::default()
        };
        let one = simulate_drs(&file, &c).unwrap();
        assert_eq!(one.moves, 2, "one round: the per-host budget");
        let settled = simulate_drs_rounds(&file, &c, 50).unwrap();
        assert!(settled.rounds > 1);
        assert!(settled.after.max_cpu_percent <= 75.0, "{:?}", settled.after);
        assert!(settled.after.imbalance < one.after.imbalance);
    }
}

//! Inputs of the fault simulator: the cluster file subset it needs (docs/architecture.md), the timed
//! fault list, simulator parameters, and random scenarios for many-seed runs.

use std::{collections::BTreeMap, time::Duration};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::config::HaConfig;
use crate::{
    model::{HaPolicy, NodeId, NodePhase, PlacementPolicy, RestartPriority, VmId},
    placement::{ClusterSnapshot, NodeSnapshot, VmSnapshot},
};

/// Why a scenario cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("Invalid {file}: {message}")]
    Parse { file: &'static str, message: String },
    #[error("Unknown node {0:?}")]
    UnknownNode(String),
    #[error("Invalid HA config")]
    Config(#[source] super::error::HaConfigError),
}

/// A node of a cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileNode {
    pub name: String,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub maintenance: bool,
    #[serde(default = "one")]
    pub cpu_overcommit: f64,
    #[serde(default = "one")]
    pub memory_overcommit: f64,
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// The `ha:` of a VM in a cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileHa {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub priority: RestartPriority,
    #[serde(default, with = "humantime_serde")]
    pub restart_delay: Duration,
    /// 0: the cluster default.
    #[serde(default)]
    pub max_restarts: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FilePlacement {
    #[serde(default)]
    pub anti_affinity_group: Option<String>,
    #[serde(default)]
    pub required_nodes: Vec<String>,
    #[serde(default)]
    pub excluded_nodes: Vec<String>,
}

/// A VM of a cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileVm {
    pub name: String,
    pub node: String,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    #[serde(default = "yes")]
    pub running: bool,
    #[serde(default)]
    pub usage: Option<serde_norway::Value>,
    #[serde(default)]
    pub ha: Option<FileHa>,
    #[serde(default)]
    pub placement: Option<FilePlacement>,
}

/// A cluster file (the part HA simulation needs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterFile {
    pub nodes: Vec<FileNode>,
    #[serde(default)]
    pub vms: Vec<FileVm>,
}

/// Deterministic ids, so simulated runs are reproducible.
pub fn sim_node_id(i: usize) -> NodeId {
    NodeId(Uuid::from_u128(0x5100_0000_0000_7000_8000_0000_0000_0000 + i as u128))
}
pub fn sim_vm_id(i: usize) -> VmId {
    VmId(Uuid::from_u128(0x5200_0000_0000_7000_8000_0000_0000_0000 + i as u128))
}

impl ClusterFile {
    pub fn parse(yaml: &str) -> Result<Self, ScenarioError> {
        serde_norway::from_str(yaml).map_err(|e| ScenarioError::Parse {
            file: "cluster file",
            message: e.to_string(),
        })
    }

    /// The snapshot with deterministic ids (node i, VM i in file order).
    pub fn to_snapshot(&self) -> Result<ClusterSnapshot, ScenarioError> {
        let id_of = |name: &str| {
            self.nodes
                .iter()
                .position(|n| n.name == name)
                .map(sim_node_id)
                .ok_or_else(|| ScenarioError::UnknownNode(name.to_string()))
        };
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeSnapshot {
                id: sim_node_id(i),
                name: n.name.clone(),
                cpu_cores: n.cpu_cores,
                memory_mib: n.memory_mib,
                cpu_overcommit: n.cpu_overcommit,
                memory_overcommit: n.memory_overcommit,
                labels: n.labels.clone(),
                schedulable: true,
                phase: if n.maintenance {
                    NodePhase::Maintenance
                } else {
                    NodePhase::Ready
                },
                usage: None,
            })
            .collect();
        let mut vms = Vec::with_capacity(self.vms.len());
        for (i, v) in self.vms.iter().enumerate() {
            let p = v.placement.clone().unwrap_or_default();
            let ids = |names: &[String]| names.iter().map(|n| id_of(n)).collect::<Result<Vec<_>, _>>();
            vms.push(VmSnapshot {
                id: sim_vm_id(i),
                name: v.name.clone(),
                node: Some(id_of(&v.node)?),
                cpu_cores: v.cpu_cores,
                memory_mib: v.memory_mib,
                running: v.running,
                usage: None,
                ha: v.ha.as_ref().map_or_else(HaPolicy::default, |h| HaPolicy {
                    enabled: h.enabled,
                    priority: h.priority,
                    restart_delay_secs: u32::try_from(h.restart_delay.as_secs()).unwrap_or(u32::MAX),
                    max_restarts: h.max_restarts,
                }),
                placement: PlacementPolicy {
                    required_nodes: ids(&p.required_nodes)?,
                    excluded_nodes: ids(&p.excluded_nodes)?,
                    anti_affinity_group: p.anti_affinity_group,
                },
            });
        }
        Ok(ClusterSnapshot { nodes, vms })
    }
}

/// One fault, at a time of the simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    PowerOff(String),
    PowerOn(String),
    /// Cuts the network between the host and the control plane (both ways).
    CutNetwork(String),
    Heal(String),
    /// Stops the agent process (SIGSTOP): its VMs keep running, its in-process watchdog
    /// stops with it (the fence process, when the host runs one, still fences).
    PauseAgent(String),
    ResumeAgent(String),
    /// Stops the host's fence process (`lqx-server fence`): it neither fences nor pets the
    /// host watchdog.
    PauseFence(String),
    ResumeFence(String),
    /// The control plane dies (state lost) and comes back after this downtime.
    RestartControlPlane(#[serde(with = "humantime_serde")] Duration),
    /// An operator confirms the host is down (`lqx ha failover NODE --yes`).
    ManualFailover(String),
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::PowerOff(_) => "power_off",
            Fault::PowerOn(_) => "power_on",
            Fault::CutNetwork(_) => "cut_network",
            Fault::Heal(_) => "heal",
            Fault::PauseAgent(_) => "pause_agent",
            Fault::ResumeAgent(_) => "resume_agent",
            Fault::PauseFence(_) => "pause_fence",
            Fault::ResumeFence(_) => "resume_fence",
            Fault::RestartControlPlane(_) => "restart_control_plane",
            Fault::ManualFailover(_) => "manual_failover",
        }
    }
    pub fn node(&self) -> Option<&str> {
        match self {
            Fault::PowerOff(n)
            | Fault::PowerOn(n)
            | Fault::CutNetwork(n)
            | Fault::Heal(n)
            | Fault::PauseAgent(n)
            | Fault::ResumeAgent(n)
            | Fault::PauseFence(n)
            | Fault::ResumeFence(n)
            | Fault::ManualFailover(n) => Some(n),
            Fault::RestartControlPlane(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedFault {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(flatten)]
    pub fault: Fault,
}

/// Simulator knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimParams {
    /// Simulated time to run.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// One-way delay of every message between an agent and the control plane.
    #[serde(with = "humantime_serde")]
    pub network_delay: Duration,
    /// Time of one store write of the control plane.
    #[serde(with = "humantime_serde")]
    pub store_write: Duration,
    /// Clock-rate error of a host's monotonic clock, parts per million (by node name).
    pub clock_ppm: BTreeMap<String, i32>,
    /// First heartbeat of each node after start (by name); default: spread over one interval.
    #[serde(with = "humantime_map")]
    pub heartbeat_phase: BTreeMap<String, Duration>,
    /// Check at the end that every VM that should run runs exactly once, where assigned.
    pub expect_settled: bool,
    /// Hosts run the separate fence process (`lqx-server fence`): it fences while the agent
    /// is stopped. Without it only the agent's in-process watchdog fences.
    pub fence_process: bool,
    /// The fence process pets a host watchdog device: when it is stopped too, the host resets
    /// before the lease ends.
    pub host_watchdog: bool,
    /// A host reset by its watchdog is back after this long.
    #[serde(with = "humantime_serde")]
    pub reboot_time: Duration,
}

fn millis_of(d: Duration) -> u64 {
    d.as_millis() as u64
}

mod humantime_map {
    use std::{collections::BTreeMap, time::Duration};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct D(#[serde(with = "humantime_serde")] Duration);

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Duration>, s: S) -> Result<S::Ok, S::Error> {
        m.iter()
            .map(|(k, v)| (k.clone(), D(*v)))
            .collect::<BTreeMap<_, _>>()
            .serialize(s)
    }
    pub fn deserialize<'de, De: Deserializer<'de>>(d: De) -> Result<BTreeMap<String, Duration>, De::Error> {
        Ok(BTreeMap::<String, D>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect())
    }
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            duration: Duration::from_secs(300),
            network_delay: Duration::from_millis(50),
            store_write: Duration::from_millis(20),
            clock_ppm: BTreeMap::new(),
            heartbeat_phase: BTreeMap::new(),
            expect_settled: false,
            fence_process: true,
            host_watchdog: false,
            reboot_time: Duration::from_secs(60),
        }
    }
}

/// `faults.yaml`: optional HA config (over the defaults, or over `profile: aggressive`),
/// simulator parameters and the timed faults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsFile {
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub config: Option<serde_norway::Mapping>,
    #[serde(default)]
    pub sim: SimParams,
    #[serde(default)]
    pub faults: Vec<TimedFault>,
}

impl FaultsFile {
    pub fn parse(yaml: &str) -> Result<Self, ScenarioError> {
        serde_norway::from_str(yaml).map_err(|e| ScenarioError::Parse {
            file: "faults file",
            message: e.to_string(),
        })
    }

    /// The HA config: the profile's values with `config:` laid over them, validated.
    pub fn ha_config(&self) -> Result<HaConfig, ScenarioError> {
        let base = match self.profile.as_deref() {
            None | Some("default") => HaConfig::default(),
            Some("aggressive") => HaConfig::aggressive(),
            Some(p) => {
                return Err(ScenarioError::Parse {
                    file: "faults file",
                    message: format!("unknown profile {p:?} (default, aggressive)"),
                });
            }
        };
        let bad = |e: serde_norway::Error| ScenarioError::Parse {
            file: "faults file",
            message: e.to_string(),
        };
        let cfg = match &self.config {
            None => base,
            Some(over) => {
                let mut m = match serde_norway::to_value(&base).map_err(bad)? {
                    serde_norway::Value::Mapping(m) => m,
                    _ => serde_norway::Mapping::new(),
                };
                for (k, v) in over {
                    m.insert(k.clone(), v.clone());
                }
                serde_norway::from_value(serde_norway::Value::Mapping(m)).map_err(bad)?
            }
        };
        cfg.validate().map_err(ScenarioError::Config)?;
        Ok(cfg)
    }
}

/// Everything one simulation run needs.
#[derive(Clone, Debug)]
pub struct SimSpec {
    pub cluster: ClusterSnapshot,
    pub config: HaConfig,
    pub params: SimParams,
    pub faults: Vec<TimedFault>,
}

impl SimSpec {
    /// From the texts of `cluster.yaml` and `faults.yaml`.
    pub fn from_files(cluster_yaml: &str, faults_yaml: &str) -> Result<Self, ScenarioError> {
        let cluster = ClusterFile::parse(cluster_yaml)?.to_snapshot()?;
        let faults = FaultsFile::parse(faults_yaml)?;
        for f in &faults.faults {
            if let Some(n) = f.fault.node()
                && cluster.node_by_name(n).is_none()
            {
                return Err(ScenarioError::UnknownNode(n.to_string()));
            }
        }
        Ok(SimSpec {
            config: faults.ha_config()?,
            cluster,
            params: faults.sim.clone(),
            faults: faults.faults,
        })
    }

    /// A random scenario: 3 to 6 nodes loaded to about half, 1 to 5 fault episodes (power
    /// cycles, partitions, agent and fence-process pauses (both at once only on hosts with a
    /// host watchdog), control-plane restarts, operator failovers of
    /// powered-off hosts) of random lengths, everything healed at the end, and enough
    /// quiet time after that for the cluster to settle. Deterministic in `seed`.
    pub fn random(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = if rng.random_bool(0.3) {
            HaConfig::aggressive()
        } else {
            HaConfig::default()
        };
        let bound = config.failover_bound(Duration::ZERO).as_millis() as u64;
        let n_nodes = rng.random_range(3..=6usize);
        let mut file = ClusterFile {
            nodes: vec![],
            vms: vec![],
        };
        for i in 0..n_nodes {
            file.nodes.push(FileNode {
                name: format!("node-{}", i + 1),
                cpu_cores: 16,
                memory_mib: 32_768,
                labels: BTreeMap::new(),
                maintenance: false,
                cpu_overcommit: 1.0,
                memory_overcommit: 1.0,
            });
        }
        let prios = [
            RestartPriority::Low,
            RestartPriority::Medium,
            RestartPriority::High,
            RestartPriority::Highest,
        ];
        let mut k = 0;
        for i in 0..n_nodes {
            for _ in 0..rng.random_range(1..=4) {
                k += 1;
                let ha = rng.random_bool(0.8).then(|| FileHa {
                    enabled: true,
                    priority: prios[rng.random_range(0..prios.len())],
                    restart_delay: if rng.random_bool(0.15) {
                        Duration::from_secs(5)
                    } else {
                        Duration::ZERO
                    },
                    max_restarts: 0,
                });
                file.vms.push(FileVm {
                    name: format!("vm-{k}"),
                    node: format!("node-{}", i + 1),
                    cpu_cores: rng.random_range(1..=4),
                    memory_mib: 1_024 * rng.random_range(1..=4),
                    running: true,
                    usage: None,
                    ha,
                    placement: None,
                });
            }
        }
        let cluster = file.to_snapshot().expect("generated names are consistent");
        let node = |rng: &mut StdRng| format!("node-{}", rng.random_range(1..=n_nodes));
        let mut faults = vec![];
        let mut both_paused = false;
        let mut last_end = 0u64;
        let horizon = 6 * bound;
        for _ in 0..rng.random_range(1..=5) {
            let start = rng.random_range(1_000..horizon);
            // Lengths from well under the timeout to well over the failover bound.
            let len = rng.random_range(200..(2 * bound + 10_000));
            let at = Duration::from_millis;
            let (a, b) = match rng.random_range(0..10) {
                0..=2 => {
                    let n = node(&mut rng);
                    if rng.random_bool(0.3) {
                        let op = rng.random_range(100..len.max(101));
                        faults.push(TimedFault {
                            at: at(start + op),
                            fault: Fault::ManualFailover(n.clone()),
                        });
                    }
                    (Fault::PowerOff(n.clone()), Fault::PowerOn(n))
                }
                3..=5 => {
                    let n = node(&mut rng);
                    (Fault::CutNetwork(n.clone()), Fault::Heal(n))
                }
                6..=8 => {
                    let n = node(&mut rng);
                    // The agent, its fence process, or both (then the host watchdog resets
                    // the host: only hosts with one may lose both).
                    // (Episodes may overlap: any stopped fence process may meet a stopped
                    // agent, so such hosts have a watchdog.)
                    match rng.random_range(0..4) {
                        0 => {
                            both_paused = true;
                            (Fault::PauseFence(n.clone()), Fault::ResumeFence(n))
                        }
                        1 => {
                            both_paused = true;
                            faults.push(TimedFault {
                                at: at(start),
                                fault: Fault::PauseFence(n.clone()),
                            });
                            faults.push(TimedFault {
                                at: at(start + len),
                                fault: Fault::ResumeFence(n.clone()),
                            });
                            (Fault::PauseAgent(n.clone()), Fault::ResumeAgent(n))
                        }
                        _ => (Fault::PauseAgent(n.clone()), Fault::ResumeAgent(n)),
                    }
                }
                _ => {
                    let down = Duration::from_millis(rng.random_range(100..(bound + 20_000)));
                    faults.push(TimedFault {
                        at: at(start),
                        fault: Fault::RestartControlPlane(down),
                    });
                    last_end = last_end.max(start + down.as_millis() as u64);
                    continue;
                }
            };
            faults.push(TimedFault {
                at: at(start),
                fault: a,
            });
            faults.push(TimedFault {
                at: at(start + len),
                fault: b,
            });
            last_end = last_end.max(start + len);
        }
        faults.sort_by_key(|f| f.at);
        // The operator confirms only hosts that really are off (a wrong confirmation is the
        // operator's error, which no software fencing can undo).
        let mut off = std::collections::BTreeSet::new();
        faults.retain(|f| match &f.fault {
            Fault::PowerOff(n) => {
                off.insert(n.clone());
                true
            }
            Fault::PowerOn(n) => {
                off.remove(n);
                true
            }
            Fault::ManualFailover(n) => off.contains(n),
            _ => true,
        });
        // A host reset by its watchdog is back a reboot later, maybe after the last fault.
        let reboot = if both_paused {
            millis_of(SimParams::default().reboot_time)
        } else {
            0
        };
        let mut params = SimParams {
            duration: Duration::from_millis(last_end + reboot + 3 * bound + 10_000),
            network_delay: Duration::from_millis(rng.random_range(1..=150)),
            expect_settled: true,
            host_watchdog: both_paused,
            ..SimParams::default()
        };
        for n in &cluster.nodes {
            params.clock_ppm.insert(n.name.clone(), rng.random_range(-500..=500));
            let hb = config.heartbeat_interval.as_millis() as u64;
            params
                .heartbeat_phase
                .insert(n.name.clone(), Duration::from_millis(rng.random_range(0..hb)));
        }
        SimSpec {
            cluster,
            config,
            params,
            faults,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_and_faults_files() {
        let cluster = "nodes:\n  - {name: node-1, cpu_cores: 8, memory_mib: 8192}\n  - {name: node-2, cpu_cores: 8, memory_mib: 8192, labels: {rack: a}}\nvms:\n  - {name: web-1, node: node-1, cpu_cores: 2, memory_mib: 1024, ha: {enabled: true, priority: high, restart_delay: 10s}, usage: {cpu_percent: 50}}\n  - {name: db-1, node: node-2, cpu_cores: 2, memory_mib: 1024, placement: {excluded_nodes: [node-1]}}\n";
        let faults = "profile: aggressive\nconfig: {fence_margin: 2s}\nsim: {duration: 60s, clock_ppm: {node-1: 300}}\nfaults:\n  - {at: 10s, power_off: node-1}\n  - {at: 20s, restart_control_plane: 5s}\n  - {at: 30s, power_on: node-1}\n";
        let spec = SimSpec::from_files(cluster, faults).unwrap();
        assert_eq!(spec.cluster.nodes.len(), 2);
        assert_eq!(spec.cluster.vms[0].ha.priority, RestartPriority::High);
        assert_eq!(spec.cluster.vms[0].ha.restart_delay_secs, 10);
        assert!(!spec.cluster.vms[1].ha.enabled);
        assert_eq!(spec.cluster.vms[1].placement.excluded_nodes, vec![sim_node_id(0)]);
        assert_eq!(spec.config.fence_margin, Duration::from_secs(2));
        assert_eq!(spec.config.lease_ttl, HaConfig::aggressive().lease_ttl);
        assert_eq!(spec.params.duration, Duration::from_secs(60));
        assert_eq!(spec.faults[1].fault, Fault::RestartControlPlane(Duration::from_secs(5)));
        assert!(SimSpec::from_files(cluster, "faults:\n  - {at: 1s, power_off: node-9}\n").is_err());
        assert!(SimSpec::from_files(cluster, "config: {self_fence_after: 40s}\n").is_err());
    }

    #[test]
    fn random_specs_are_deterministic() {
        let a = SimSpec::random(42);
        let b = SimSpec::random(42);
        assert_eq!(a.faults, b.faults);
        assert_eq!(a.cluster, b.cluster);
        assert!(a.config.validate().is_ok());
    }
}

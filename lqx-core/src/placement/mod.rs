//! The scheduler: picks the node for a VM. Used by VM create, HA failover and DRS.
//!
//! The rule, in plain words:
//! 1. A node is a candidate only if it is Ready and schedulable, is one of the VM's required
//!    nodes (when it has any), is not one of its excluded nodes, holds no other VM of its
//!    anti-affinity group, and still has room for it: the vCPUs of the VMs assigned to it plus
//!    the new ones stay within `cpu_cores * cpu_overcommit`, and their memory within
//!    `memory_mib * memory_overcommit`. Allocation counts every VM assigned to the node,
//!    running or not, since a stopped VM may start again at any time.
//! 2. Among candidates, the one whose fuller resource (CPU or memory allocation ratio, after
//!    placing the VM) is lowest wins: that spreads load and keeps both resources balanced.
//!    Ties go to the lower sum of both ratios, then to the node name, so the choice is
//!    deterministic.
//! 3. If no node is a candidate the error says why: contradictory constraints are the
//!    caller's mistake (InvalidArgument); a cluster whose eligible nodes are all full is out
//!    of capacity (ResourceExhausted); otherwise it counts why each node was filtered out
//!    (FailedPrecondition), e.g. "No node fits: 2 in maintenance, 1 lacks memory".

mod snapshot;

use std::{collections::HashMap, fmt};

pub use snapshot::{ClusterSnapshot, NodeSnapshot, NodeUsageSample, VmSnapshot, VmUsageSample};

use crate::model::{NodeId, NodePhase, VmId};

/// What to place: sizes and constraints of one VM.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlacementRequest {
    pub cpu_cores: u32,
    pub memory_mib: u64,
    pub required_nodes: Vec<NodeId>,
    pub excluded_nodes: Vec<NodeId>,
    pub anti_affinity_group: Option<String>,
    /// The VM being re-placed, when it is already in the snapshot: its current allocation
    /// and group membership are not counted against it.
    pub vm: Option<VmId>,
}

impl PlacementRequest {
    /// A request to (re)place an existing VM with its own sizes and constraints.
    pub fn for_vm(vm: &VmSnapshot) -> Self {
        PlacementRequest {
            cpu_cores: vm.cpu_cores,
            memory_mib: vm.memory_mib,
            required_nodes: vm.placement.required_nodes.clone(),
            excluded_nodes: vm.placement.excluded_nodes.clone(),
            anti_affinity_group: vm.placement.anti_affinity_group.clone(),
            vm: Some(vm.id),
        }
    }
}

/// A borrowed view of a request, so planners can check VMs without cloning their lists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReqRef<'a> {
    pub cpu_cores: u32,
    pub memory_mib: u64,
    pub required_nodes: &'a [NodeId],
    pub excluded_nodes: &'a [NodeId],
    pub anti_affinity_group: Option<&'a str>,
}

impl PlacementRequest {
    pub(crate) fn view(&self) -> ReqRef<'_> {
        ReqRef {
            cpu_cores: self.cpu_cores,
            memory_mib: self.memory_mib,
            required_nodes: &self.required_nodes,
            excluded_nodes: &self.excluded_nodes,
            anti_affinity_group: self.anti_affinity_group.as_deref(),
        }
    }
}

impl VmSnapshot {
    pub(crate) fn req(&self) -> ReqRef<'_> {
        ReqRef {
            cpu_cores: self.cpu_cores,
            memory_mib: self.memory_mib,
            required_nodes: &self.placement.required_nodes,
            excluded_nodes: &self.placement.excluded_nodes,
            anti_affinity_group: self.placement.anti_affinity_group.as_deref(),
        }
    }
}

/// Why nodes were filtered out, one count per filter (each node counts once, for the first
/// filter it failed, in the order of the fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterCounts {
    pub not_ready: u32,
    pub maintenance: u32,
    pub draining: u32,
    pub unschedulable: u32,
    pub not_required: u32,
    pub excluded: u32,
    pub anti_affinity: u32,
    pub lacks_cpu: u32,
    pub lacks_memory: u32,
}

impl FilterCounts {
    fn add(&mut self, f: Filter) {
        match f {
            Filter::NotReady => self.not_ready += 1,
            Filter::Maintenance => self.maintenance += 1,
            Filter::Draining => self.draining += 1,
            Filter::Unschedulable => self.unschedulable += 1,
            Filter::NotRequired => self.not_required += 1,
            Filter::Excluded => self.excluded += 1,
            Filter::AntiAffinity => self.anti_affinity += 1,
            Filter::Cpu => self.lacks_cpu += 1,
            Filter::Memory => self.lacks_memory += 1,
        }
    }
    pub fn total(&self) -> u32 {
        self.not_ready
            + self.maintenance
            + self.draining
            + self.unschedulable
            + self.not_required
            + self.excluded
            + self.anti_affinity
            + self.lacks_cpu
            + self.lacks_memory
    }
}

impl fmt::Display for FilterCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.not_ready, "not ready"),
            (self.maintenance, "in maintenance"),
            (self.draining, "draining"),
            (self.unschedulable, "unschedulable"),
            (self.not_required, "not a required node"),
            (self.excluded, "excluded"),
            (self.anti_affinity, "holds a VM of the same anti-affinity group"),
            (self.lacks_cpu, "lacks CPU"),
            (self.lacks_memory, "lacks memory"),
        ];
        let mut first = true;
        for (n, what) in parts.into_iter().filter(|(n, _)| *n > 0) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{n} {what}")?;
        }
        if first {
            f.write_str("no nodes")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    #[error("No nodes in the cluster")]
    NoNodes,
    #[error(
        "No node has room for {needed_cpu} vCPU and {needed_memory_mib} MiB \
         (at most {best_free_cpu} vCPU and {best_free_memory_mib} MiB free)"
    )]
    NoCapacity {
        needed_cpu: u32,
        needed_memory_mib: u64,
        /// The most vCPUs free on any otherwise eligible node.
        best_free_cpu: u64,
        /// The most memory free on any otherwise eligible node.
        best_free_memory_mib: u64,
        filtered: FilterCounts,
    },
    #[error("Contradictory placement constraints: {0}")]
    Constraints(String),
    #[error("No node fits: {0}")]
    AllFiltered(FilterCounts),
}

impl From<PlacementError> for crate::Error {
    fn from(e: PlacementError) -> Self {
        match &e {
            PlacementError::NoNodes | PlacementError::AllFiltered(_) => crate::Error::precondition(e.to_string()),
            PlacementError::NoCapacity { .. } => crate::Error::exhausted(e.to_string()),
            PlacementError::Constraints(_) => crate::Error::invalid("spec.placement", e.to_string()),
        }
    }
}

/// The first filter a node fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    NotReady,
    Maintenance,
    Draining,
    Unschedulable,
    NotRequired,
    Excluded,
    AntiAffinity,
    Cpu,
    Memory,
}

impl Filter {
    pub(crate) fn is_capacity(self) -> bool {
        matches!(self, Filter::Cpu | Filter::Memory)
    }
}

/// Allocation per node, indexed like `snapshot.nodes`, plus anti-affinity membership.
/// Built once per snapshot and updated as VMs are placed or moved.
#[derive(Debug, Clone)]
pub(crate) struct Occupancy {
    pub index: HashMap<NodeId, usize>,
    pub cpu: Vec<f64>,
    pub memory: Vec<f64>,
    groups: HashMap<String, HashMap<usize, u32>>,
}

impl Occupancy {
    /// Counts every VM assigned to a known node, except those in `skip`.
    pub fn new(snapshot: &ClusterSnapshot, skip: &[VmId]) -> Self {
        let mut occ = Occupancy::empty(snapshot);
        for vm in &snapshot.vms {
            if skip.contains(&vm.id) {
                continue;
            }
            if let Some(&i) = vm.node.as_ref().and_then(|n| occ.index.get(n)) {
                occ.add(
                    i,
                    vm.cpu_cores,
                    vm.memory_mib,
                    vm.placement.anti_affinity_group.as_deref(),
                );
            }
        }
        occ
    }

    /// Nothing allocated on the snapshot's nodes.
    fn empty(snapshot: &ClusterSnapshot) -> Self {
        Occupancy {
            index: snapshot.nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect(),
            cpu: vec![0.0; snapshot.nodes.len()],
            memory: vec![0.0; snapshot.nodes.len()],
            groups: HashMap::new(),
        }
    }

    /// From per-node totals; `group` is present on each of `group_nodes`.
    pub fn from_totals(
        snapshot: &ClusterSnapshot,
        allocation: &[NodeAllocation],
        group: Option<&str>,
        group_nodes: &[NodeId],
    ) -> Self {
        let mut occ = Occupancy::empty(snapshot);
        for a in allocation {
            if let Some(&i) = occ.index.get(&a.node) {
                occ.cpu[i] += a.cpu_cores as f64;
                occ.memory[i] += a.memory_mib as f64;
            }
        }
        if let Some(g) = group {
            for n in group_nodes {
                if let Some(&i) = occ.index.get(n) {
                    occ.add(i, 0, 0, Some(g));
                }
            }
        }
        occ
    }

    pub fn add(&mut self, node: usize, cpu: u32, memory_mib: u64, group: Option<&str>) {
        self.cpu[node] += cpu as f64;
        self.memory[node] += memory_mib as f64;
        if let Some(g) = group {
            *self.groups.entry(g.to_string()).or_default().entry(node).or_default() += 1;
        }
    }

    pub fn remove(&mut self, node: usize, cpu: u32, memory_mib: u64, group: Option<&str>) {
        self.cpu[node] -= cpu as f64;
        self.memory[node] -= memory_mib as f64;
        if let Some(c) = group
            .and_then(|g| self.groups.get_mut(g))
            .and_then(|m| m.get_mut(&node))
        {
            *c = c.saturating_sub(1);
        }
    }

    /// VMs of `group` assigned to `node`.
    pub fn group_count(&self, group: &str, node: usize) -> u32 {
        self.groups.get(group).and_then(|m| m.get(&node)).copied().unwrap_or(0)
    }

    /// The first filter `node` fails for `req` (the VM not yet counted on it), or None.
    pub fn check(&self, snapshot: &ClusterSnapshot, node: usize, req: &ReqRef<'_>) -> Option<Filter> {
        let n = &snapshot.nodes[node];
        match n.phase {
            NodePhase::Ready => {}
            NodePhase::NotReady => return Some(Filter::NotReady),
            NodePhase::Maintenance => return Some(Filter::Maintenance),
            NodePhase::Draining => return Some(Filter::Draining),
        }
        if !n.schedulable {
            return Some(Filter::Unschedulable);
        }
        if !req.required_nodes.is_empty() && !req.required_nodes.contains(&n.id) {
            return Some(Filter::NotRequired);
        }
        if req.excluded_nodes.contains(&n.id) {
            return Some(Filter::Excluded);
        }
        if let Some(g) = req.anti_affinity_group
            && self.group_count(g, node) > 0
        {
            return Some(Filter::AntiAffinity);
        }
        if self.cpu[node] + req.cpu_cores as f64 > n.cpu_limit() + EPS {
            return Some(Filter::Cpu);
        }
        if self.memory[node] + req.memory_mib as f64 > n.memory_limit_mib() + EPS {
            return Some(Filter::Memory);
        }
        None
    }

    /// The allocation ratio of the fuller resource and the sum of both, after adding `req`.
    pub fn score(&self, snapshot: &ClusterSnapshot, node: usize, req: &ReqRef<'_>) -> (f64, f64) {
        let n = &snapshot.nodes[node];
        let c = (self.cpu[node] + req.cpu_cores as f64) / n.cpu_limit().max(EPS);
        let m = (self.memory[node] + req.memory_mib as f64) / n.memory_limit_mib().max(EPS);
        (c.max(m), c + m)
    }
}

const EPS: f64 = 1e-9;

/// Picks the node for one VM (see the rule at the top of this module).
pub fn place(snapshot: &ClusterSnapshot, request: &PlacementRequest) -> Result<NodeId, PlacementError> {
    let skip: Vec<VmId> = request.vm.into_iter().collect();
    let occ = Occupancy::new(snapshot, &skip);
    place_with(snapshot, &occ, request).map(|i| snapshot.nodes[i].id)
}

/// What is already allocated on one node: the sum over the VMs assigned to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAllocation {
    pub node: NodeId,
    pub cpu_cores: u64,
    pub memory_mib: u64,
}

/// [`place`] from per-node totals instead of every VM: `snapshot` gives the nodes (its VMs
/// are ignored), `allocation` what each node already holds and `group_nodes` the nodes
/// holding another VM of the request's anti-affinity group. Same rule, same answer; lets
/// VM create stay fast however many VMs there are.
pub fn place_on(
    snapshot: &ClusterSnapshot,
    allocation: &[NodeAllocation],
    group_nodes: &[NodeId],
    request: &PlacementRequest,
) -> Result<NodeId, PlacementError> {
    let occ = Occupancy::from_totals(
        snapshot,
        allocation,
        request.anti_affinity_group.as_deref(),
        group_nodes,
    );
    place_with(snapshot, &occ, request).map(|i| snapshot.nodes[i].id)
}

/// Places several VMs in the given order (e.g. HA restart priority), each seeing the ones
/// placed before it. The VMs named in the requests are not counted where they are now
/// (they are being re-placed). One result per request, in order.
pub fn place_many(snapshot: &ClusterSnapshot, requests: &[PlacementRequest]) -> Vec<Result<NodeId, PlacementError>> {
    let skip: Vec<VmId> = requests.iter().filter_map(|r| r.vm).collect();
    let mut occ = Occupancy::new(snapshot, &skip);
    requests
        .iter()
        .map(|req| {
            let i = place_with(snapshot, &occ, req)?;
            occ.add(i, req.cpu_cores, req.memory_mib, req.anti_affinity_group.as_deref());
            Ok(snapshot.nodes[i].id)
        })
        .collect()
}

pub(crate) fn place_with(
    snapshot: &ClusterSnapshot,
    occ: &Occupancy,
    req: &PlacementRequest,
) -> Result<usize, PlacementError> {
    if snapshot.nodes.is_empty() {
        return Err(PlacementError::NoNodes);
    }
    if !req.required_nodes.is_empty() && req.required_nodes.iter().all(|n| req.excluded_nodes.contains(n)) {
        return Err(PlacementError::Constraints(
            "every required node is also excluded".into(),
        ));
    }
    let rr = req.view();
    let mut counts = FilterCounts::default();
    let mut best: Option<(usize, (f64, f64))> = None;
    let mut capacity_only = false;
    let (mut free_cpu, mut free_mem) = (0.0f64, 0.0f64);
    for i in 0..snapshot.nodes.len() {
        match occ.check(snapshot, i, &rr) {
            Some(f) => {
                counts.add(f);
                if f.is_capacity() {
                    capacity_only = true;
                    let n = &snapshot.nodes[i];
                    free_cpu = free_cpu.max(n.cpu_limit() - occ.cpu[i]);
                    free_mem = free_mem.max(n.memory_limit_mib() - occ.memory[i]);
                }
            }
            None => {
                let s = occ.score(snapshot, i, &rr);
                let better = match &best {
                    None => true,
                    Some((b, bs)) => match s.0.total_cmp(&bs.0).then(s.1.total_cmp(&bs.1)) {
                        std::cmp::Ordering::Less => true,
                        std::cmp::Ordering::Greater => false,
                        std::cmp::Ordering::Equal => snapshot.nodes[i].name < snapshot.nodes[*b].name,
                    },
                };
                if better {
                    best = Some((i, s));
                }
            }
        }
    }
    match best {
        Some((i, _)) => Ok(i),
        None if capacity_only => Err(PlacementError::NoCapacity {
            needed_cpu: req.cpu_cores,
            needed_memory_mib: req.memory_mib,
            best_free_cpu: free_cpu.max(0.0).floor() as u64,
            best_free_memory_mib: free_mem.max(0.0).floor() as u64,
            filtered: counts,
        }),
        None => Err(PlacementError::AllFiltered(counts)),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

//! Glue between the store and the pure scheduler: builds a [`ClusterSnapshot`] and asks
//! [`crate::placement`] for a node. Placing one VM reads the nodes and per-node allocation
//! totals (summed in SQL), not every VM, so it costs the same with 10 or 100,000 VMs.

use super::{Compute, standby};
use crate::model::*;
use crate::placement::PlacementError;
use crate::placement::{
    self, ClusterSnapshot, NodeSnapshot, NodeUsageSample, PlacementRequest, VmSnapshot, VmUsageSample,
};
use crate::power::PowerState;
use crate::{Error, Result};

impl Compute {
    /// The cluster as the planners see it now.
    pub async fn snapshot(&self) -> Result<ClusterSnapshot> {
        let nodes = self.store.all_nodes().await?;
        let vms = self.store.all_vms().await?;
        Ok(snapshot_of(&nodes, &vms))
    }

    /// Chooses a node for `vm` (`pinned`: only that node). `existing`: the VM is already
    /// placed and being re-checked (its own allocation is not counted against it).
    pub(crate) async fn schedule(&self, vm: &Vm, pinned: Option<NodeId>, existing: Option<VmId>) -> Result<NodeId> {
        let all_nodes = self.store.all_nodes().await?;
        let nodes = snapshot_of(&all_nodes, &[]);
        let mut allocation = self.store.allocation_by_node(existing).await?;
        // Migrations in flight hold their targets' capacity until they end.
        self.migrations.add_to(&mut allocation, existing);
        let group_nodes = match &vm.spec.placement.anti_affinity_group {
            Some(g) => {
                let mut n = self.store.nodes_with_group(g, existing).await?;
                n.extend(self.migrations.group_targets(g, existing));
                n
            }
            None => vec![],
        };
        let mut req = PlacementRequest {
            cpu_cores: vm.spec.cpu_cores,
            memory_mib: vm.spec.memory_mib,
            required_nodes: vm.spec.placement.required_nodes.clone(),
            excluded_nodes: vm.spec.placement.excluded_nodes.clone(),
            anti_affinity_group: vm.spec.placement.anti_affinity_group.clone(),
            vm: existing,
        };
        if let Some(p) = pinned {
            if !req.required_nodes.is_empty() && !req.required_nodes.contains(&p) {
                return Err(Error::invalid(
                    "node",
                    "the chosen node is not among the VM's required nodes",
                ));
            }
            req.required_nodes = vec![p];
        }
        let err = match placement::place_on(&nodes, &allocation, &group_nodes, &req) {
            Ok(n) => return Ok(n),
            Err(e) => e,
        };
        // No room on the hosts that are on: would a host in standby (or waking) take it?
        if matches!(err, PlacementError::NoCapacity { .. } | PlacementError::AllFiltered(_)) {
            let mut woken = nodes.clone();
            // Not one an operator cordoned or put in maintenance.
            let asleep: Vec<NodeId> = all_nodes
                .iter()
                .filter(|n| {
                    matches!(n.power, PowerState::Standby | PowerState::PoweringOn)
                        && n.schedulable
                        && !matches!(n.phase, NodePhase::Maintenance | NodePhase::Draining)
                })
                .map(|n| n.id)
                .collect();
            for n in woken.nodes.iter_mut().filter(|n| asleep.contains(&n.id)) {
                n.schedulable = true;
                n.phase = NodePhase::Ready;
            }
            if let Ok(id) = placement::place_on(&woken, &allocation, &group_nodes, &req) {
                return Err(self.standby_refusal(vm, &woken, id, &err).await?);
            }
        }
        Err(Error::from(err))
    }

    /// The resource_exhausted error for a VM that fits only on standby host `node`, having
    /// asked DPM to wake it (see [`super::standby`]).
    async fn standby_refusal(
        &self,
        vm: &Vm,
        woken: &ClusterSnapshot,
        node: NodeId,
        err: &PlacementError,
    ) -> Result<Error> {
        let name = woken.node(node).map_or_else(|| node.to_string(), |n| n.name.clone());
        let waking = self.store.get_node(node).await?.power == PowerState::PoweringOn;
        let what = if waking {
            format!("host {name} fits it and is powering on")
        } else {
            let d = standby::StandbyDemand {
                node,
                node_name: name.clone(),
                vm_name: vm.name.clone(),
            };
            match self.standby.record(d) {
                standby::WakeOutcome::PoweringOn => {
                    format!("host {name} fits it and is in standby: DPM is powering it on")
                }
                standby::WakeOutcome::Recommended => format!(
                    "host {name} fits it and is in standby: DPM recommends powering it on \
                     (automation manual: approve and apply the POWER_ON recommendation, or `lqx node power on {name}`)"
                ),
                standby::WakeOutcome::NotManaged => format!(
                    "host {name} fits it but is in standby and DPM is off: power it on with `lqx node power on {name}`"
                ),
                standby::WakeOutcome::NotLeader => format!(
                    "host {name} fits it but is in standby, and DPM runs on the leading replica, not this one: \
                     power it on with `lqx node power on {name}`"
                ),
            }
        };
        Ok(Error::exhausted(format!(
            "No host that is on has room for VM {} ({err}); {what}; retry once it is on",
            vm.name
        ))
        .with_retry_after(standby::BOOT_RETRY_SECS))
    }
}

pub fn snapshot_of(nodes: &[Node], vms: &[Vm]) -> ClusterSnapshot {
    ClusterSnapshot {
        nodes: nodes
            .iter()
            .map(|n| NodeSnapshot {
                id: n.id,
                name: n.name.clone(),
                cpu_cores: n.allocatable.cpu_cores,
                memory_mib: n.allocatable.memory_mib,
                cpu_overcommit: n.cpu_overcommit,
                memory_overcommit: n.memory_overcommit,
                labels: n.labels.clone(),
                // A host in standby (or changing power) takes no VMs until it is on.
                schedulable: n.schedulable && n.power == crate::power::PowerState::On,
                phase: n.phase,
                usage: n
                    .last_heartbeat
                    .filter(|_| n.usage.memory_used_mib > 0)
                    .map(|_| NodeUsageSample {
                        cpu_percent: n.usage.cpu_percent,
                        memory_used_mib: n.usage.memory_used_mib,
                    }),
            })
            .collect(),
        vms: vms
            .iter()
            .map(|v| VmSnapshot {
                id: v.id,
                name: v.name.clone(),
                node: v.status.node_id,
                cpu_cores: v.spec.cpu_cores,
                memory_mib: v.spec.memory_mib,
                running: v.status.state.is_active(),
                usage: (v.status.memory_used_mib > 0).then_some(VmUsageSample {
                    cpu_percent: v.status.cpu_usage_percent,
                    memory_used_mib: v.status.memory_used_mib,
                }),
                ha: v.spec.ha.clone(),
                placement: v.spec.placement.clone(),
            })
            .collect(),
    }
}

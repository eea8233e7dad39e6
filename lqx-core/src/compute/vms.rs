//! VM operations.

use super::Compute;
use crate::driver::{DiskBus, DiskSpec, DomainSpec, DomainState, NicModel, NicSource, NicSpec};
use crate::model::*;
use crate::store::{VmFilter, VmPage};
use crate::{Error, ErrorKind, Result};
use chrono::Utc;
use std::collections::BTreeMap;
use std::time::Duration;

/// A validated CreateVM request.
#[derive(Debug, Clone)]
pub struct CreateVm {
    pub name: String,
    pub project_id: ProjectId,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub spec: VmSpec,
    /// Pin to this node (already resolved); None: the scheduler decides.
    pub node: Option<NodeId>,
    pub start: bool,
    pub request_id: Option<String>,
}

impl CreateVm {
    /// A stable digest of everything the request asks for (64-bit FNV-1a of its JSON): a
    /// retry with the same request_id must match it.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(&(
            &self.name,
            self.project_id.to_string(),
            &self.description,
            &self.labels,
            &self.spec,
            self.node.map(|n| n.to_string()),
            self.start,
        ))
        .unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in json {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// The fields of UpdateVM that were named in the update mask.
#[derive(Debug, Clone, Default)]
pub struct VmUpdate {
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub cpu_cores: Option<u32>,
    pub memory_mib: Option<u64>,
    pub ha: Option<HaPolicy>,
    pub placement: Option<PlacementPolicy>,
    pub expected_resource_version: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct MigrateOutcome {
    pub vm: Vm,
    pub source: NodeId,
    pub target: NodeId,
    pub live: bool,
}

pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl Compute {
    pub async fn create_vm(&self, req: CreateVm) -> Result<Vm> {
        let fingerprint = req.fingerprint();
        if let Some(rid) = &req.request_id
            && let Some(stored) = self.store.idempotent_get(&format!("CreateVM/{rid}")).await?
        {
            // Stored as "<vm id> <fingerprint>" (older entries: the id alone).
            let (id, first) = stored.split_once(' ').unwrap_or((&stored, ""));
            let vm = self.store.get_vm(VmId::parse("request_id", id)?).await?;
            if !first.is_empty() && first != fingerprint {
                return Err(Error::precondition(format!(
                    "request_id {rid:?} was already used by a different CreateVM request (it created VM {}); \
                     a retry must send the same request, a new request needs a new request_id",
                    vm.name
                )));
            }
            return Ok(vm);
        }
        let now = Utc::now();
        let mut vm = Vm {
            id: VmId::new(),
            name: req.name,
            project_id: req.project_id,
            description: req.description,
            labels: req.labels,
            spec: req.spec,
            desired_state: if req.start { VmState::Running } else { VmState::Stopped },
            status: VmStatus::default(),
            resource_version: 1,
            created_at: now,
            updated_at: now,
        };
        vm.validate()?;
        if self.store.get_project(&vm.project_id.to_string()).await?.is_none() {
            return Err(Error::not_found("project", vm.project_id));
        }
        let _guard = self.placement_lock.lock().await;
        let node = self.schedule(&vm, req.node, None).await?;
        self.admission_check(&vm, node).await?;
        vm.status.node_id = Some(node);
        vm.status.state = VmState::Pending;
        self.store.create_vm(&vm).await?;
        if let Some(rid) = &req.request_id {
            self.store
                .idempotent_put(&format!("CreateVM/{rid}"), &format!("{} {fingerprint}", vm.id))
                .await?;
        }
        drop(_guard);

        // Define on the host. If that fails nothing is left behind: the record is removed.
        let hv = match self.hosts.get(node) {
            Ok(hv) => hv,
            Err(e) => {
                self.store.delete_vm(vm.id, None).await?;
                return Err(e);
            }
        };
        if let Err(e) = hv.define(self.domain_spec(&vm)).await {
            self.store.delete_vm(vm.id, None).await?;
            return Err(Error::from(e));
        }
        vm.status.state = VmState::Stopped;
        vm = self.store.update_vm(&vm).await?;
        self.publish_vm(EventType::Created, &vm);
        if req.start {
            vm = self.start_vm(&vm.id.to_string(), vm.project_id).await?;
        }
        Ok(vm)
    }

    pub async fn get_vm(&self, id_or_name: &str, project: ProjectId) -> Result<Vm> {
        self.store.resolve_vm(id_or_name, project).await
    }

    pub async fn list_vms(&self, filter: &VmFilter, page_size: u32, page_token: &str) -> Result<VmPage> {
        self.store.list_vms(filter, page_size, page_token).await
    }

    pub async fn update_vm(&self, id_or_name: &str, project: ProjectId, upd: VmUpdate) -> Result<Vm> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let mut vm = self.store.get_vm(vm.id).await?;
        if let Some(v) = upd.expected_resource_version
            && v != vm.resource_version
        {
            return Err(Error::aborted(format!(
                "VM {} is at resource version {}, not {v}; read it again and retry",
                vm.name, vm.resource_version
            )));
        }
        let before = vm.spec.clone();
        if let Some(d) = upd.description {
            vm.description = d;
        }
        if let Some(l) = upd.labels {
            vm.labels = l;
        }
        if let Some(c) = upd.cpu_cores {
            vm.spec.cpu_cores = c;
        }
        if let Some(m) = upd.memory_mib {
            vm.spec.memory_mib = m;
        }
        if let Some(h) = upd.ha {
            vm.spec.ha = h;
        }
        if let Some(p) = upd.placement {
            vm.spec.placement = p;
        }
        vm.validate()?;
        let resized = vm.spec.cpu_cores != before.cpu_cores || vm.spec.memory_mib != before.memory_mib;
        // A resized VM must still fit where it is; the placement lock is held until the new
        // size is recorded, as for a create.
        let _placement = if resized {
            let node = vm.status.node_id.ok_or_else(|| Error::precondition("VM has no node"))?;
            let guard = self.placement_lock.lock().await;
            self.schedule(&vm, Some(node), Some(vm.id)).await?;
            self.hosts.get(node)?.update(self.domain_spec(&vm)).await?;
            Some(guard)
        } else {
            None
        };
        let vm = self.store.update_vm(&vm).await?;
        self.publish_vm(EventType::Updated, &vm);
        Ok(vm)
    }

    pub async fn start_vm(&self, id_or_name: &str, project: ProjectId) -> Result<Vm> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let mut vm = self.store.get_vm(vm.id).await?;
        let node = vm
            .status
            .node_id
            .ok_or_else(|| Error::precondition(format!("VM {} is not placed on a node", vm.name)))?;
        let hv = self.hosts.get(node)?;
        match hv.domain_state(vm.id).await? {
            s if s.is_active() => {} // already running: starting again does nothing
            _ => hv.start(vm.id).await?,
        }
        vm.desired_state = VmState::Running;
        vm.status.state = VmState::Running;
        vm.status.started_at = Some(Utc::now());
        vm.status.message.clear();
        let vm = self.store.update_vm(&vm).await?;
        self.publish_vm(EventType::Started, &vm);
        Ok(vm)
    }

    pub async fn stop_vm(
        &self,
        id_or_name: &str,
        project: ProjectId,
        force: bool,
        timeout: Option<Duration>,
    ) -> Result<Vm> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let mut vm = self.store.get_vm(vm.id).await?;
        if let Some(node) = vm.status.node_id {
            let hv = self.hosts.get(node)?;
            if hv.domain_state(vm.id).await?.is_active() {
                if force {
                    hv.destroy(vm.id).await?;
                } else {
                    match hv.shutdown(vm.id, timeout.unwrap_or(DEFAULT_STOP_TIMEOUT)).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == crate::driver::DriverErrorKind::Timeout => {
                            return Err(Error::new(
                                ErrorKind::DeadlineExceeded,
                                format!("VM {} did not shut down in time; use force to power it off", vm.name),
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        vm.desired_state = VmState::Stopped;
        vm.status.state = VmState::Stopped;
        vm.status.stopped_at = Some(Utc::now());
        let vm = self.store.update_vm(&vm).await?;
        self.publish_vm(EventType::Stopped, &vm);
        Ok(vm)
    }

    pub async fn reboot_vm(&self, id_or_name: &str, project: ProjectId) -> Result<Vm> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let vm = self.store.get_vm(vm.id).await?;
        let node = vm
            .status
            .node_id
            .ok_or_else(|| Error::precondition(format!("VM {} is not placed on a node", vm.name)))?;
        let hv = self.hosts.get(node)?;
        if hv.domain_state(vm.id).await? != DomainState::Running {
            return Err(Error::precondition(format!("VM {} is not running", vm.name)));
        }
        hv.reboot(vm.id).await?;
        self.publish_vm(EventType::Rebooted, &vm);
        Ok(vm)
    }

    /// Deletes a VM: a running one only with `force` (it is powered off first).
    pub async fn delete_vm(&self, id_or_name: &str, project: ProjectId, force: bool) -> Result<VmId> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let vm = self.store.get_vm(vm.id).await?;
        if let Some(node) = vm.status.node_id {
            let hv = self.hosts.get(node)?;
            match hv.domain_state(vm.id).await {
                Ok(s) => {
                    if s.is_active() {
                        if !force {
                            return Err(Error::precondition(format!(
                                "VM {} is running; stop it first or delete with force",
                                vm.name
                            )));
                        }
                        hv.destroy(vm.id).await?;
                    }
                    hv.undefine(vm.id, true).await?;
                }
                Err(e) if e.kind() == crate::driver::DriverErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.store.delete_vm(vm.id, None).await?;
        self.publish_vm(EventType::Deleted, &vm);
        Ok(vm.id)
    }

    /// Publishes a VM event; the payload is the VM as stored.
    pub(crate) fn publish_vm(&self, kind: EventType, vm: &Vm) {
        let mut d = EventDraft::new(kind, ResourceType::Vm, vm.id.to_string(), Utc::now());
        d.project_id = Some(vm.project_id);
        d.payload = serde_json::to_value(vm).unwrap_or_default();
        self.events.publish(d);
    }
}

/// What the hypervisor should define for a VM.
pub fn domain_spec(vm: &Vm) -> DomainSpec {
    let mut spec = DomainSpec::new(vm.id, vm.name.clone(), vm.spec.cpu_cores, vm.spec.memory_mib);
    spec.disks = vm
        .spec
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| DiskSpec {
            name: if d.name.is_empty() {
                format!("disk{i}")
            } else {
                d.name.clone()
            },
            size_mib: d.size_mib,
            pool: if d.pool.is_empty() {
                crate::driver::default_pool()
            } else {
                d.pool.clone()
            },
            bus: DiskBus::parse(&d.bus).unwrap_or_default(),
        })
        .collect();
    spec.nics = vm
        .spec
        .nics
        .iter()
        .map(|n| NicSpec {
            source: match n.network.strip_prefix("bridge:") {
                Some(br) => NicSource::Bridge(br.to_string()),
                None if n.network.is_empty() => NicSource::Network("default".into()),
                None => NicSource::Network(n.network.clone()),
            },
            mac: (!n.mac.is_empty()).then(|| n.mac.clone()),
            model: match n.model.as_str() {
                "e1000" => NicModel::E1000,
                "rtl8139" => NicModel::Rtl8139,
                _ => NicModel::Virtio,
            },
        })
        .collect();
    spec
}

//! VM operations.

use super::Compute;
use crate::driver::{DiskBus, DiskSpec, DomainSpec, DomainState, NicModel, NicSource, NicSpec};
use crate::model::*;
use crate::saga::{self, Injected, OpKind, OpParams, Operation};
use crate::store::Recorded;
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
    /// Creates a VM: one saga (see [`crate::saga`]). Its first step writes the VM (Pending),
    /// its idempotency key and the operation in one transaction; the second defines it on the
    /// host; the last records it Stopped and ends the operation. A failed step undoes the ones
    /// before it, so a retry with the same `request_id` creates the VM afresh.
    pub async fn create_vm(&self, req: CreateVm) -> Result<Vm> {
        const KIND: OpKind = OpKind::CreateVm;
        let fingerprint = req.fingerprint();
        let key = req.request_id.as_ref().map(|rid| format!("CreateVM/{rid}"));
        if let Some(key) = &key
            && let Some(stored) = self.store.idempotent_get(key).await?
        {
            return self.replay_create(key, &stored, &fingerprint).await;
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
        let placement = self.placement_lock.lock().await;
        let node = self.schedule(&vm, req.node, None).await?;
        self.admission_check(&vm, node).await?;
        vm.status.node_id = Some(node);
        vm.status.state = VmState::Pending;
        let op = Operation::new(
            KIND,
            vm.id,
            &self.owner,
            OpParams {
                idempotency_key: key.clone(),
                target: Some(node),
                ..OpParams::default()
            },
        );
        let response = format!("{} {fingerprint}", vm.id);
        saga::check(KIND, "record")?;
        let recorded = self
            .store
            .create_vm_recorded(&vm, key.as_deref().map(|k| (k, response.as_str())), &op)
            .await?;
        drop(placement);
        if let (Recorded::KeyTaken(stored), Some(key)) = (recorded, &key) {
            // A concurrent request with the same key wrote first: answer as it did.
            return self.replay_create(key, &stored, &fingerprint).await;
        }
        let _g = self.lock(vm.id).await;

        let defined = match saga::point(KIND, "define") {
            Err(Injected::Crash) => return Err(Injected::Crash.error(KIND, "define")),
            Err(i) => Err(i.error(KIND, "define")),
            Ok(()) => async { Ok(self.hosts.get(node)?.define(self.domain_spec(&vm)).await?) }.await,
        };
        let finished = match defined {
            Ok(()) => match saga::point(KIND, "finish") {
                Err(Injected::Crash) => return Err(Injected::Crash.error(KIND, "finish")),
                Err(i) => Err(i.error(KIND, "finish")),
                Ok(()) => {
                    vm.status.state = VmState::Stopped;
                    self.store.update_vm_op(&vm, None, Some(&op.id)).await
                }
            },
            Err(e) => Err(e),
        };
        match finished {
            Ok(v) => vm = v,
            Err(e) => {
                // Nothing is left behind: not the domain, the record nor the key.
                if let Err(undo) = self.undo_create(&op).await {
                    tracing::warn!(vm = %vm.id, error = %undo, "undoing a failed create failed; recovery retries it");
                }
                return Err(e);
            }
        }
        drop(_g);
        self.publish_vm(EventType::Created, &vm);
        if req.start {
            vm = self.start_vm(&vm.id.to_string(), vm.project_id).await?;
        }
        Ok(vm)
    }

    /// The answer to a CreateVM whose idempotency key is taken: the VM it created, if the
    /// request is the same.
    async fn replay_create(&self, key: &str, stored: &str, fingerprint: &str) -> Result<Vm> {
        let rid = key.strip_prefix("CreateVM/").unwrap_or(key);
        // Stored as "<vm id> <fingerprint>" (older entries: the id alone).
        let (id, first) = stored.split_once(' ').unwrap_or((stored, ""));
        let vm = self.store.get_vm(VmId::parse("request_id", id)?).await?;
        if !first.is_empty() && first != fingerprint {
            return Err(Error::precondition(format!(
                "request_id {rid:?} was already used by a different CreateVM request (it created VM {}); \
                 a retry must send the same request, a new request needs a new request_id",
                vm.name
            )));
        }
        Ok(vm)
    }

    /// Undoes a create: the domain (if it was defined), then the record, key and operation
    /// in one transaction.
    pub(crate) async fn undo_create(&self, op: &Operation) -> Result<()> {
        if let Some(node) = op.params.target {
            match self.hosts.get(node)?.undefine(op.vm, true).await {
                Ok(()) => {}
                Err(e) if e.kind() == crate::driver::DriverErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.store.undo_create_vm(op).await
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
        let old = vm.clone();
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
            Some((guard, node))
        } else {
            None
        };
        let written = match &_placement {
            // The project's quota is checked in the write's transaction.
            Some(_) => {
                let from = (u64::from(before.cpu_cores), before.memory_mib);
                self.store.resize_vm(&vm, from).await
            }
            None => self.store.update_vm(&vm).await,
        };
        let vm = match (written, &_placement) {
            (Ok(vm), _) => vm,
            (Err(e), Some((_, node))) => {
                // Not recorded (quota, lost race): the host goes back to the recorded size.
                if let Err(undo) = self.hosts.get(*node)?.update(self.domain_spec(&old)).await {
                    tracing::error!(vm = %old.name, error = %undo, "reverting a refused resize on the host failed");
                }
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        };
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

    /// Deletes a VM: a running one only with `force` (it is powered off first). A saga that
    /// only goes forward (a destroyed domain cannot be brought back): a step that fails ends
    /// it with the error, and one interrupted by a crash is finished by recovery.
    pub async fn delete_vm(&self, id_or_name: &str, project: ProjectId, force: bool) -> Result<VmId> {
        let vm = self.store.resolve_vm(id_or_name, project).await?;
        let _g = self.lock(vm.id).await;
        let vm = self.store.get_vm(vm.id).await?;
        let hv = match vm.status.node_id {
            Some(node) => {
                let hv = self.hosts.get(node)?;
                match hv.domain_state(vm.id).await {
                    Ok(s) if s.is_active() && !force => {
                        return Err(Error::precondition(format!(
                            "VM {} is running; stop it first or delete with force",
                            vm.name
                        )));
                    }
                    Ok(s) => Some((hv, s.is_active())),
                    Err(e) if e.kind() == crate::driver::DriverErrorKind::NotFound => None,
                    Err(e) => return Err(e.into()),
                }
            }
            None => None,
        };
        let op = Operation::new(
            OpKind::DeleteVm,
            vm.id,
            &self.owner,
            OpParams {
                source: vm.status.node_id,
                ..OpParams::default()
            },
        );
        self.store.op_begin(&op).await?;
        match self.delete_steps(&op, hv.as_ref().map(|(h, a)| (h.as_ref(), *a))).await {
            Ok(()) => {}
            Err(e) if saga::is_crash(&e) => return Err(e),
            Err(e) => {
                self.store.op_end(&op.id).await?;
                return Err(e);
            }
        }
        self.publish_vm(EventType::Deleted, &vm);
        Ok(vm.id)
    }

    /// The steps of a delete: power off, undefine, remove the record (ending `op`).
    pub(crate) async fn delete_steps(
        &self,
        op: &Operation,
        hv: Option<(&dyn crate::driver::Hypervisor, bool)>,
    ) -> Result<()> {
        const KIND: OpKind = OpKind::DeleteVm;
        if let Some((hv, active)) = hv {
            saga::check(KIND, "destroy")?;
            if active {
                match hv.destroy(op.vm).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == crate::driver::DriverErrorKind::NotFound => {}
                    Err(e) if e.kind() == crate::driver::DriverErrorKind::InvalidState => {}
                    Err(e) => return Err(e.into()),
                }
            }
            saga::check(KIND, "undefine")?;
            match hv.undefine(op.vm, true).await {
                Ok(()) => {}
                Err(e) if e.kind() == crate::driver::DriverErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        saga::check(KIND, "remove")?;
        self.store.delete_vm_op(op.vm, &op.id).await
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

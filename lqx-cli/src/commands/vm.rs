//! `lqx vm ...`: VMService. A VM is named by name or id everywhere; the server resolves it.

use lqx_core::api::compute::v1 as pb;
use lqx_core::api::compute::v1::vm_service_client::VmServiceClient;
use pb::VmState;

use super::new_request_id;
use crate::app::App;
use crate::cli::{HaPriorityArg, VmCmd, VmCreateArgs, VmListArgs, VmStateArg, VmUpdateArgs};
use crate::client::Session;
use crate::error::{CliError, CliResult, ExitCode};
use crate::rpc;
use crate::views::{MigrationView, VmView, vm_state_word};

pub fn state_of(s: VmStateArg) -> VmState {
    match s {
        VmStateArg::Pending => VmState::Pending,
        VmStateArg::Stopped => VmState::Stopped,
        VmStateArg::Starting => VmState::Starting,
        VmStateArg::Running => VmState::Running,
        VmStateArg::Stopping => VmState::Stopping,
        VmStateArg::Migrating => VmState::Migrating,
        VmStateArg::Paused => VmState::Paused,
        VmStateArg::Failed => VmState::Failed,
        VmStateArg::Unknown => VmState::Unknown,
    }
}

fn priority_of(p: HaPriorityArg) -> pb::HaRestartPriority {
    match p {
        HaPriorityArg::Low => pb::HaRestartPriority::Low,
        HaPriorityArg::Medium => pb::HaRestartPriority::Medium,
        HaPriorityArg::High => pb::HaRestartPriority::High,
        HaPriorityArg::Highest => pb::HaRestartPriority::Highest,
    }
}

pub async fn run(app: App, c: VmCmd) -> CliResult<()> {
    let mut sess = app.session()?;
    match c {
        VmCmd::Create(a) => create(&app, &mut sess, a).await,
        VmCmd::List(a) => list(&app, &mut sess, a).await,
        VmCmd::Get { vm } => {
            let v = VmView::from(&get(&mut sess, &vm).await?);
            if app.printer.format == crate::output::Format::Table && app.global.columns.is_none() {
                crate::output::out(&v.detail());
                return Ok(());
            }
            app.printer.one(&v)
        }
        VmCmd::Update(a) => update(&app, &mut sess, a).await,
        VmCmd::Start { vm, wait } => {
            let v = rpc!(
                sess,
                VmServiceClient,
                start_vm,
                pb::StartVmRequest {
                    id: vm.clone(),
                    request_id: new_request_id()
                }
            )?;
            let v = if app.wants_wait(wait) {
                wait_state(&app, &mut sess, &v.id, &v.name, VmState::Running).await?
            } else {
                v
            };
            app.printer.one(&VmView::from(&v))
        }
        VmCmd::Stop { vm, force, wait } => {
            let req = pb::StopVmRequest {
                id: vm.clone(),
                force,
                timeout_seconds: u32::try_from(app.remaining().as_secs()).unwrap_or(u32::MAX),
                request_id: new_request_id(),
            };
            let v = rpc!(sess, VmServiceClient, stop_vm, req)?;
            let v = if app.wants_wait(wait) {
                wait_state(&app, &mut sess, &v.id, &v.name, VmState::Stopped).await?
            } else {
                v
            };
            app.printer.one(&VmView::from(&v))
        }
        VmCmd::Reboot { vm, wait } => {
            let v = rpc!(
                sess,
                VmServiceClient,
                reboot_vm,
                pb::RebootVmRequest {
                    id: vm.clone(),
                    request_id: new_request_id()
                }
            )?;
            let v = if app.wants_wait(wait) {
                wait_state(&app, &mut sess, &v.id, &v.name, VmState::Running).await?
            } else {
                v
            };
            app.printer.one(&VmView::from(&v))
        }
        VmCmd::Delete { vm, force, yes, wait } => {
            app.confirm(&format!("Delete VM {vm}?"), yes)?;
            let resp = rpc!(
                sess,
                VmServiceClient,
                delete_vm,
                pb::DeleteVmRequest {
                    id: vm.clone(),
                    force,
                    request_id: new_request_id()
                }
            )?;
            let id = if resp.id.is_empty() { vm.clone() } else { resp.id };
            if app.wants_wait(wait) {
                wait_gone(&app, &mut sess, &id, &vm).await?;
            }
            if app.printer.is_structured() {
                app.printer.line(&crate::output::json_line(
                    &serde_json::json!({"id": id, "deleted": true}),
                )?);
            } else {
                app.printer.info(&format!("Deleted VM {vm}"));
            }
            Ok(())
        }
        VmCmd::Migrate {
            vm,
            to,
            cold,
            cancel,
            bandwidth,
            timeout,
            auto_converge,
            post_copy,
            tunnelled,
            wait,
        } => {
            if cancel {
                let req = pb::MigrateVmRequest {
                    id: vm.clone(),
                    cancel: true,
                    request_id: new_request_id(),
                    ..Default::default()
                };
                let resp = rpc!(sess, VmServiceClient, migrate_vm, req)?;
                if app.printer.is_structured() {
                    // The VM as the server has it after the cancel, as `vm get` shows it.
                    let v = resp.vm.unwrap_or_default();
                    return app.printer.one(&VmView::from(&v));
                }
                app.printer
                    .info(&format!("Migration of VM {vm} cancelled; it keeps running on its node"));
                return Ok(());
            }
            let req = pb::MigrateVmRequest {
                id: vm.clone(),
                target_node: to.clone().unwrap_or_default(),
                cold,
                request_id: new_request_id(),
                cancel: false,
                bandwidth_mib_per_second: bandwidth.unwrap_or(0),
                timeout_seconds: timeout.map_or(0, |t| u32::try_from(t.as_secs().max(1)).unwrap_or(u32::MAX)),
                auto_converge,
                post_copy,
                tunnelled,
            };
            let waiting = app.wants_wait(wait);
            let resp = if waiting {
                // The call returns when the migration has ended; meanwhile its progress is
                // polled on a second connection.
                let mut poll = app.session()?;
                let call = async { rpc!(sess, VmServiceClient, migrate_vm, req) };
                tokio::select! {
                    r = call => r?,
                    _ = show_progress(&app, &mut poll, &vm) => unreachable!("progress polling never ends"),
                }
            } else {
                rpc!(sess, VmServiceClient, migrate_vm, req)?
            };
            let mut view = MigrationView::from(&resp);
            if app.wants_wait(wait) {
                let target = if resp.target_node.is_empty() {
                    to.unwrap_or_default()
                } else {
                    resp.target_node.clone()
                };
                let id = resp.vm.as_ref().map_or(vm.clone(), |v| v.id.clone());
                let done = wait_migrated(&app, &mut sess, &id, &vm, &target).await?;
                view.vm = VmView::from(&done);
            }
            app.printer.one(&view)
        }
        VmCmd::Watch { vm, resume_from } => super::watch::vms(&app, &mut sess, vm, resume_from.unwrap_or(0)).await,
    }
}

pub async fn get(sess: &mut Session, vm: &str) -> CliResult<pb::Vm> {
    rpc!(
        sess,
        VmServiceClient,
        get_vm,
        pb::GetVmRequest {
            id: vm.to_string(),
            project_id: String::new()
        }
    )
}

async fn create(app: &App, sess: &mut Session, a: VmCreateArgs) -> CliResult<()> {
    if a.cpu == 0 {
        return Err(CliError::usage("--cpu must be at least 1"));
    }
    if a.memory == 0 {
        return Err(CliError::usage("--memory must be more than 0"));
    }
    let disks = a
        .disk
        .iter()
        .enumerate()
        .map(|(i, size)| pb::Disk {
            name: if i == 0 { "root".into() } else { format!("disk{i}") },
            size_mib: *size,
            pool: a.pool.clone().unwrap_or_default(),
            bus: String::new(),
        })
        .collect();
    let nics = a
        .network
        .iter()
        .map(|n| pb::Nic {
            network: n.clone(),
            ..Default::default()
        })
        .collect();
    let spec = pb::VmSpec {
        cpu_cores: a.cpu,
        memory_mib: a.memory,
        disks,
        nics,
        ha: a.ha.then(|| pb::HaPolicy {
            enabled: true,
            priority: a.ha_priority.map_or(pb::HaRestartPriority::Medium, priority_of) as i32,
            ..Default::default()
        }),
        placement: a.anti_affinity.clone().map(|g| pb::PlacementPolicy {
            anti_affinity_group: g,
            ..Default::default()
        }),
    };
    let req = pb::CreateVmRequest {
        name: a.name.clone(),
        // The project goes in the lqx-project header (--project, the context's).
        project_id: String::new(),
        description: a.description.clone().unwrap_or_default(),
        labels: a.label.iter().cloned().collect(),
        spec: Some(spec),
        node: a.node.clone().unwrap_or_default(),
        start: a.start,
        request_id: new_request_id(),
    };
    let vm = rpc!(sess, VmServiceClient, create_vm, req)?;
    let vm = if app.wants_wait(a.wait) {
        let want = if a.start { VmState::Running } else { VmState::Stopped };
        wait_state(app, sess, &vm.id, &vm.name, want).await?
    } else {
        vm
    };
    app.printer.one(&VmView::from(&vm))
}

async fn list(app: &App, sess: &mut Session, a: VmListArgs) -> CliResult<()> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let req = pb::ListVMsRequest {
            project_id: String::new(),
            node: a.node.clone().unwrap_or_default(),
            state: a.state.map_or(VmState::Unspecified, state_of) as i32,
            labels: a.label.iter().cloned().collect(),
            name_prefix: a.name_prefix.clone().unwrap_or_default(),
            page_size: 1000,
            page_token: token.clone(),
        };
        let resp = rpc!(sess, VmServiceClient, list_v_ms, req)?;
        all.extend(resp.vms.iter().map(VmView::from));
        if resp.next_page_token.is_empty() || resp.next_page_token == token {
            break;
        }
        token = resp.next_page_token;
    }
    app.printer.list(&all)
}

async fn update(app: &App, sess: &mut Session, a: VmUpdateArgs) -> CliResult<()> {
    let current = get(sess, &a.vm).await?;
    let mut spec = current.spec.clone().unwrap_or_default();
    use lqx_core::api::convert::compute::VmField as F;
    let mut mask = Vec::new();
    if let Some(c) = a.cpu {
        spec.cpu_cores = c;
        mask.push(F::CpuCores.path().to_string());
    }
    if let Some(m) = a.memory {
        spec.memory_mib = m;
        mask.push(F::MemoryMib.path().to_string());
    }
    if a.description.is_some() {
        mask.push(F::Description.path().to_string());
    }
    if !a.label.is_empty() {
        mask.push(F::Labels.path().to_string());
    }
    if mask.is_empty() {
        return Err(CliError::usage("Nothing to change").hint("pass --cpu, --memory, --description or --label"));
    }
    let req = pb::UpdateVmRequest {
        id: current.id.clone(),
        description: a.description.clone().unwrap_or_default(),
        labels: a.label.iter().cloned().collect(),
        spec: Some(spec),
        update_mask: mask,
        expected_resource_version: current.resource_version,
        request_id: new_request_id(),
    };
    let vm = rpc!(sess, VmServiceClient, update_vm, req)?;
    app.printer.one(&VmView::from(&vm))
}

fn state_of_vm(v: &pb::Vm) -> VmState {
    v.status.as_ref().map_or(VmState::Unspecified, |s| s.state())
}

/// Polls GetVM until the VM reaches `want`; a FAILED VM ends the wait with its message.
pub async fn wait_state(app: &App, sess: &mut Session, id: &str, name: &str, want: VmState) -> CliResult<pb::Vm> {
    let mut w = app.waiter(format!("waiting for VM {name} to be {}", vm_state_word(want)));
    loop {
        let v = get(sess, id).await?;
        let st = state_of_vm(&v);
        if st == want {
            w.finish();
            return Ok(v);
        }
        if st == VmState::Failed {
            w.finish();
            let msg = v.status.as_ref().map(|s| s.message.clone()).unwrap_or_default();
            return Err(CliError::general(format!(
                "VM {name} failed{}",
                if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                }
            ))
            .hint(format!(
                "`lqx vm get {name}` and `lqx audit list --resource {id}` show more"
            )));
        }
        w.pending(&vm_state_word(st)).await?;
    }
}

async fn wait_gone(app: &App, sess: &mut Session, id: &str, name: &str) -> CliResult<()> {
    let mut w = app.waiter(format!("waiting for VM {name} to be deleted"));
    loop {
        match get(sess, id).await {
            Err(e) if e.code == ExitCode::NotFound => return Ok(()),
            Err(e) => return Err(e),
            Ok(v) => w.pending(&vm_state_word(state_of_vm(&v))).await?,
        }
    }
}

/// A progress bar erased when it goes away.
struct ClearOnDrop(indicatif::ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Shows a migration's progress until dropped: a bar on a terminal, else a line per 10 %.
async fn show_progress(app: &App, sess: &mut Session, vm: &str) {
    let bar = app.printer.stderr_tty.then(|| {
        let b = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(format!("migrating {vm}"));
        ClearOnDrop(b)
    });
    let mut last_step = None;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let Ok(v) = get(sess, vm).await else { continue };
        let Some(m) = v.status.and_then(|s| s.migration) else {
            continue;
        };
        if let Some(ClearOnDrop(b)) = &bar {
            b.set_message(format!("migrating {vm} to {}", m.target_node));
            b.set_length(m.total_bytes);
            b.set_position(m.processed_bytes.min(m.total_bytes));
        } else if let Some(pct) = (m.processed_bytes.min(m.total_bytes) * 100).checked_div(m.total_bytes)
            && last_step != Some(pct / 10)
        {
            last_step = Some(pct / 10);
            app.printer.info(&format!(
                "migrating {vm} to {}: {pct}% ({} of {} MiB copied, {} MiB to go)",
                m.target_node,
                m.processed_bytes >> 20,
                m.total_bytes >> 20,
                m.remaining_bytes >> 20
            ));
        }
    }
}

async fn wait_migrated(app: &App, sess: &mut Session, id: &str, name: &str, target: &str) -> CliResult<pb::Vm> {
    let mut w = app.waiter(format!("waiting for VM {name} to migrate"));
    loop {
        let v = get(sess, id).await?;
        let st = state_of_vm(&v);
        let status = v.status.clone().unwrap_or_default();
        let on_target = target.is_empty() || status.node_name == target || status.node_id == target;
        if st != VmState::Migrating && on_target && st != VmState::Pending {
            return Ok(v);
        }
        if st == VmState::Failed {
            return Err(CliError::general(format!(
                "Migration of VM {name} failed: {}",
                status.message
            )));
        }
        w.pending(&format!("{} on {}", vm_state_word(st), status.node_name))
            .await?;
    }
}

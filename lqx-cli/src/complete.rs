//! Dynamic shell completion (clap_complete's `CompleteEnv`): the shell script `lqx completion
//! SHELL` prints calls `COMPLETE=SHELL lqx -- ...` back at each TAB, so commands, flags and
//! also VM, node and API-key names come from the binary itself, names from the server of the
//! current context. A server that is down or a missing login gives no names, never an error
//! or a delay past `NAMES_TIMEOUT`. `__generate-docs` is outside the command tree (see main), so it is never offered.

use std::time::Duration;

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use crate::args::GlobalArgs;

/// The variable the registration scripts set when calling back.
pub const VAR: &str = "COMPLETE";
const NAMES_TIMEOUT: Duration = Duration::from_secs(2);

/// The registration script for `shell` (what `lqx completion SHELL` prints).
pub fn registration(shell: &str) -> String {
    let mut buf = Vec::new();
    if let Some(s) = clap_complete::env::Shells::builtins().completer(shell) {
        let _ = s.write_registration(VAR, "lqx", "lqx", "lqx", &mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The global options alone, to read them from the environment.
#[derive(clap::Parser)]
struct Globals {
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Clone, Copy)]
enum Kind {
    Vm,
    Node,
    ApiKey,
}

pub fn vm_names() -> ArgValueCandidates {
    ArgValueCandidates::new(|| names(Kind::Vm))
}
pub fn node_names() -> ArgValueCandidates {
    ArgValueCandidates::new(|| names(Kind::Node))
}
pub fn api_key_names() -> ArgValueCandidates {
    ArgValueCandidates::new(|| names(Kind::ApiKey))
}

fn names(kind: Kind) -> Vec<CompletionCandidate> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Vec::new();
    };
    rt.block_on(async { tokio::time::timeout(NAMES_TIMEOUT, fetch(kind)).await })
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .map(|(name, help)| CompletionCandidate::new(name).help(Some(help.into())))
        .collect()
}

async fn fetch(kind: Kind) -> Option<Vec<(String, String)>> {
    use lqx_core::api::auth::v1::auth_service_client::AuthServiceClient;
    use lqx_core::api::compute::v1 as computepb;
    use lqx_core::api::compute::v1::node_service_client::NodeServiceClient;
    use lqx_core::api::compute::v1::vm_service_client::VmServiceClient;
    use lqx_core::api::{auth::v1 as authpb, compute::v1::VmState};

    use crate::rpc;
    // The global options as the environment sets them (LQX_SERVER, LQX_CONTEXT, ...).
    let global = <Globals as clap::Parser>::try_parse_from(["lqx"]).ok()?.global;
    let app = crate::app::App::new(global).ok()?;
    let mut sess = app.session().ok()?;
    let out = match kind {
        Kind::Vm => {
            let resp = rpc!(
                sess,
                VmServiceClient,
                list_v_ms,
                computepb::ListVMsRequest {
                    page_size: 1000,
                    ..Default::default()
                }
            )
            .ok()?;
            resp.vms
                .iter()
                .map(|v| {
                    let st = v.status.as_ref().map_or(VmState::Unspecified, |s| s.state());
                    (v.name.clone(), crate::views::vm_state_word(st))
                })
                .collect()
        }
        Kind::Node => {
            let resp = rpc!(
                sess,
                NodeServiceClient,
                list_nodes,
                computepb::ListNodesRequest {
                    page_size: 1000,
                    ..Default::default()
                }
            )
            .ok()?;
            resp.nodes
                .iter()
                .map(|n| (n.name.clone(), n.hostname.clone()))
                .collect()
        }
        Kind::ApiKey => {
            let resp = rpc!(
                sess,
                AuthServiceClient,
                list_api_keys,
                authpb::ListApiKeysRequest { all: false }
            )
            .ok()?;
            resp.keys
                .iter()
                .filter(|k| !k.revoked)
                .map(|k| (k.name.clone(), k.role.clone()))
                .collect()
        }
    };
    Some(out)
}

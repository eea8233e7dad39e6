//! Fixtures the integration tests share: VM requests, agents run in-process against a
//! control plane, bounded waits.

// Each test crate uses its own subset.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use lqx_core::{
    agent::{Agent, AgentError, AgentOptions, ControlPlane},
    compute::CreateVm,
    driver::{Hypervisor, sim::SimHypervisor},
    model::{NodeId, ProjectId, VmSpec},
};
use tokio::sync::oneshot;

/// The agents' heartbeat interval in these tests.
pub const BEAT: Duration = Duration::from_millis(100);

/// A started VM of one vCPU and `memory_mib` on `node`.
pub fn vm(name: &str, node: NodeId, memory_mib: u64) -> CreateVm {
    CreateVm {
        name: name.into(),
        project_id: ProjectId::DEFAULT,
        description: String::new(),
        labels: Default::default(),
        spec: VmSpec {
            cpu_cores: 1,
            memory_mib,
            disks: vec![],
            nics: vec![],
            ha: Default::default(),
            placement: Default::default(),
        },
        node: Some(node),
        start: true,
        request_id: None,
    }
}

/// A running agent; stops (aborted) when dropped.
pub struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), AgentError>>,
}

impl RunningAgent {
    /// A clean stop, which must succeed.
    pub async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        (&mut self.task).await.unwrap().unwrap();
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The agent options of these tests: [`BEAT`] heartbeats, a quick stop and back-off.
pub fn agent_options(dir: &std::path::Path, name: &str, token: Option<String>) -> AgentOptions {
    let mut opts = AgentOptions::new(dir);
    opts.name = name.into();
    opts.join_token = token;
    opts.heartbeat_interval = Some(BEAT);
    opts.stop_timeout = Duration::from_secs(2);
    opts.max_backoff = Duration::from_millis(400);
    opts
}

/// Runs an agent over `hv` with `opts`, talking to `cp`.
pub fn spawn_agent(opts: AgentOptions, cp: Arc<dyn ControlPlane>, hv: &SimHypervisor) -> RunningAgent {
    let hv: Arc<dyn Hypervisor> = Arc::new(hv.clone());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(Agent::new(opts, cp, hv).run(async {
        let _ = rx.await;
    }));
    RunningAgent { stop: Some(tx), task }
}

/// [`spawn_agent`] with [`agent_options`].
pub fn start_agent(
    cp: Arc<dyn ControlPlane>,
    hv: &SimHypervisor,
    dir: &std::path::Path,
    name: &str,
    token: Option<String>,
) -> RunningAgent {
    spawn_agent(agent_options(dir, name, token), cp, hv)
}

/// Waits (at most 20 s, polling every 20 ms) until `f` holds.
pub async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the control plane has heard `node`'s agent `n` more times (its lease renewed
/// at each heartbeat): a check that something does *not* happen then covers `n` heartbeats,
/// however slow the machine, where a fixed sleep may cover none.
pub async fn heartbeats(agents: &lqx_core::compute::agents::Agents, node: NodeId, n: usize) {
    let mut last = agents.lease_state(node).map(|l| l.last_renewed);
    for i in 0..n {
        eventually(&format!("heartbeat {} of {n}", i + 1), async || {
            let now = agents.lease_state(node).map(|l| l.last_renewed);
            let moved = now > last;
            last = now;
            moved
        })
        .await;
    }
}

/// Waits until the agent over `hv` has built `n` more reports (each lists the host's
/// domains), heard or not: for checks that something does not happen while it is cut off.
pub async fn reports(hv: &SimHypervisor, n: usize) {
    let from = hv.started(lqx_core::driver::sim::SimOp::List);
    eventually(&format!("{n} reports"), async || {
        hv.started(lqx_core::driver::sim::SimOp::List) >= from + n
    })
    .await;
}

//! [`HostPower`]: node power through the configured controllers, with each node record's
//! power state kept up to date (and an event at every change).
//!
//! The record's state moves like this:
//! - power on: `standby`/`unknown` -> `powering_on` (written before the BMC is asked, so HA
//!   already expects silence) -> `on` once the host is *heard* (a heartbeat after the request).
//!   The BMC saying "on" is not enough: the OS boots for minutes, and HA counts silence from
//!   the moment a host is `on`.
//! - power off / standby: refused while VMs run (or should run) there; `on` -> `powering_off`
//!   (nothing is placed on it from then) -> `standby` once the BMC reports it off.
//! - A change not done within `transition_timeout` ends in `unknown`, with an event: HA then
//!   treats the host like any other (a silent host is a failed host).
//! - A host in `standby` that is heard again (powered on by hand) is `on`.
//!
//! A simulated host (`sim://`) that has a controller can be linked to it
//! ([`HostPower::link_simulated_hosts`]): it is then powered as its BMC reports, read every
//! `poll_interval`, so it goes silent (and its guests stop) while the BMC says off and reports
//! again once the BMC says on, as the real machine behind a BMC would.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tracing::{info, warn};

use super::{BmcKind, NodePower, PowerConfig, PowerController, PowerError, PowerState};
use crate::{
    Error, Result,
    compute::Compute,
    driver::sim::{SimHypervisor, SimRegistry},
    model::{EventType, Node, NodeId, VmState},
};

struct Controller {
    kind: BmcKind,
    ctl: Arc<dyn PowerController>,
}

/// What `lqx node power status` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerStatus {
    pub node: Node,
    /// `redfish`, `ipmi`, `wol`, or None when the node has no controller.
    pub controller: Option<BmcKind>,
    /// What the BMC reports now (None when it could not say; `bmc_error` says why).
    pub bmc: Option<PowerState>,
    pub bmc_error: Option<String>,
}

/// Node power for the API, DPM and HA; one per control plane.
pub struct HostPower {
    compute: Compute,
    controllers: BTreeMap<String, Controller>,
    poll_interval: Duration,
    transition_timeout: Duration,
    /// When each node's current change was asked for (or first seen, after a restart).
    since: Mutex<HashMap<NodeId, DateTime<Utc>>>,
    /// Simulated hosts powered as their node's BMC reports (see the module docs).
    simulated: Mutex<HashMap<NodeId, SimHypervisor>>,
}

impl From<PowerError> for Error {
    fn from(e: PowerError) -> Self {
        match e {
            PowerError::Unsupported(m) => Error::precondition(m),
            PowerError::Controller(m) => Error::unavailable(m),
        }
    }
}

impl HostPower {
    /// Builds every configured controller (bad addresses, unreadable password or CA files
    /// fail here, at start-up, naming the node).
    pub fn new(compute: Compute, cfg: &PowerConfig) -> Result<HostPower> {
        let mut controllers = BTreeMap::new();
        for (name, c) in &cfg.nodes {
            let built: std::result::Result<Arc<dyn PowerController>, PowerError> = match c.kind {
                BmcKind::Redfish => super::redfish::Redfish::new(c).map(|x| Arc::new(x) as _),
                BmcKind::Ipmi => super::ipmi::Ipmi::new(c).map(|x| Arc::new(x) as _),
                BmcKind::Wol => super::wol::WakeOnLan::new(c).map(|x| Arc::new(x) as _),
            };
            let ctl = built.map_err(|e| Error::invalid(&format!("power.nodes.{name}"), e))?;
            controllers.insert(name.clone(), Controller { kind: c.kind, ctl });
        }
        Ok(HostPower {
            compute,
            controllers,
            poll_interval: cfg.poll_interval,
            transition_timeout: cfg.transition_timeout,
            since: Mutex::default(),
            simulated: Mutex::default(),
        })
    }

    /// Links every node that has a BMC (Redfish or IPMI) and runs on a simulated host of
    /// `sims` to that host, and powers the host as its BMC reports now (a BMC that cannot be
    /// read leaves it as it is, with a warning). Wake-on-LAN cannot report power, so such a
    /// host is not linked. Returns the names of the nodes linked.
    pub async fn link_simulated_hosts(&self, sims: &SimRegistry) -> Result<Vec<String>> {
        let mut linked = vec![];
        for (name, c) in &self.controllers {
            if c.kind == BmcKind::Wol {
                continue;
            }
            let n = match self.compute.store.resolve_node(name).await {
                Ok(n) => n,
                Err(e) if e.kind == crate::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // Keyed by URI: a node on a real hypervisor has none there.
            let Some(sim) = sims.get(&n.libvirt_uri) else {
                continue;
            };
            self.simulated
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(n.id, sim);
            if let Err(e) = self.bmc_status(&n, c).await {
                warn!(node = %n.name, error = %e, "could not read the BMC's power state: the simulated host stays as it is");
            }
            linked.push(n.name);
        }
        Ok(linked)
    }

    fn simulated(&self, node: NodeId) -> Option<SimHypervisor> {
        self.simulated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
    }

    /// What the node's BMC reports; a linked simulated host is powered accordingly, before
    /// this returns (so nothing heard from it later predates the BMC's answer).
    async fn bmc_status(&self, n: &Node, c: &Controller) -> std::result::Result<PowerState, PowerError> {
        let s = c.ctl.status().await?;
        if let Some(sim) = self.simulated(n.id) {
            match s {
                // Shutting down still runs; booting does not answer yet.
                PowerState::On | PowerState::PoweringOff => sim.set_powered(true),
                PowerState::Standby | PowerState::PoweringOn => sim.set_powered(false),
                PowerState::Unknown => {}
            }
        }
        Ok(s)
    }

    /// Powers each linked simulated host whose record says on as its BMC reports: one powered
    /// off outside lqx goes silent, as a real host would (and HA then treats it as failed).
    async fn follow_simulated(&self, skip: &[(NodeId, PowerState)]) {
        let ids: Vec<NodeId> = self
            .simulated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|id| !skip.iter().any(|(s, _)| s == *id))
            .copied()
            .collect();
        for id in ids {
            let Ok(n) = self.compute.store.get_node(id).await else {
                continue;
            };
            let Some(c) = self.controllers.get(&n.name) else {
                continue;
            };
            if let Err(e) = self.bmc_status(&n, c).await {
                tracing::debug!(node = %n.name, error = %e, "could not read the BMC's power state");
            }
        }
    }

    /// Adds (or replaces) one node's controller (tests, and hosts added at run time).
    pub fn with_controller(mut self, node: &str, kind: BmcKind, ctl: Arc<dyn PowerController>) -> Self {
        self.controllers.insert(node.to_string(), Controller { kind, ctl });
        self
    }

    pub fn has_controller(&self, node_name: &str) -> bool {
        self.controllers.contains_key(node_name)
    }

    fn controller(&self, n: &Node) -> Result<&Controller> {
        self.controllers.get(&n.name).ok_or_else(|| {
            Error::precondition(format!(
                "node {} has no power controller: add it under power.nodes in the server config",
                n.name
            ))
        })
    }

    fn mark(&self, node: NodeId, at: DateTime<Utc>) {
        self.since.lock().unwrap_or_else(|p| p.into_inner()).insert(node, at);
    }

    fn since(&self, node: NodeId) -> Option<DateTime<Utc>> {
        self.since.lock().unwrap_or_else(|p| p.into_inner()).get(&node).copied()
    }

    /// Writes the node's power state (with an event) when it changes.
    async fn set(&self, id_or_name: &str, to: PowerState, only_from: &[PowerState]) -> Result<Node> {
        let n = self
            .compute
            .modify_node(id_or_name, EventType::StateChanged, |n| {
                if only_from.is_empty() || only_from.contains(&n.power) {
                    n.power = to;
                }
            })
            .await?;
        Ok(n)
    }

    /// Wakes a node (standby, unknown, or already on: then nothing is sent).
    pub async fn power_on_node(&self, id_or_name: &str) -> Result<Node> {
        let n = self.compute.store.resolve_node(id_or_name).await?;
        let c = self.controller(&n)?;
        if matches!(n.power, PowerState::On | PowerState::PoweringOn) {
            return Ok(n);
        }
        let before = n.power;
        let now = Utc::now();
        self.mark(n.id, now);
        let n = self.set(&n.id.to_string(), PowerState::PoweringOn, &[]).await?;
        if let Err(e) = c.ctl.power_on().await {
            // Not sent: the host is where it was.
            self.set(&n.id.to_string(), before, &[PowerState::PoweringOn]).await?;
            return Err(e.into());
        }
        info!(node = %n.name, controller = c.kind.as_str(), "power on requested");
        Ok(n)
    }

    /// Powers a node off (gracefully; `force`: hard off) after checking nothing runs there.
    pub async fn power_off_node(&self, id_or_name: &str, force: bool) -> Result<Node> {
        let n = self.compute.store.resolve_node(id_or_name).await?;
        let c = self.controller(&n)?;
        if c.kind == BmcKind::Wol {
            return Err(PowerError::Unsupported(format!(
                "node {} is woken by Wake-on-LAN, which cannot power a host off; configure its BMC (redfish or ipmi)",
                n.name
            ))
            .into());
        }
        if n.power == PowerState::Standby {
            return Ok(n);
        }
        self.refuse_if_busy(&n).await?;
        let before = n.power;
        self.mark(n.id, Utc::now());
        // Written first: from here nothing new is placed on it; then look again, in case a
        // VM landed between the check and the write.
        let n = self.set(&n.id.to_string(), PowerState::PoweringOff, &[]).await?;
        if let Err(e) = self.refuse_if_busy(&n).await {
            self.set(&n.id.to_string(), before, &[PowerState::PoweringOff]).await?;
            return Err(e);
        }
        let r = if force {
            c.ctl.force_off().await
        } else {
            c.ctl.power_off().await
        };
        if let Err(e) = r {
            self.set(&n.id.to_string(), before, &[PowerState::PoweringOff]).await?;
            return Err(e.into());
        }
        info!(node = %n.name, controller = c.kind.as_str(), force, "power off requested");
        Ok(n)
    }

    async fn refuse_if_busy(&self, n: &Node) -> Result<()> {
        let vms = self.compute.store.all_vms().await?;
        let busy: Vec<&str> = vms
            .iter()
            .filter(|v| v.status.node_id == Some(n.id))
            .filter(|v| v.status.state.is_active() || v.desired_state == VmState::Running)
            .map(|v| v.name.as_str())
            .collect();
        if busy.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = busy.iter().take(5).copied().collect();
        let more = if busy.len() > 5 {
            format!(" and {} more", busy.len() - 5)
        } else {
            String::new()
        };
        Err(Error::precondition(format!(
            "node {} still runs {} VM(s) ({}{more}): powering it off would stop them. \
             Evacuate it first (lqx node maintenance enter {}), then power it off",
            n.name,
            busy.len(),
            shown.join(", "),
            n.name
        )))
    }

    /// The node's record and what its BMC says now.
    pub async fn status_of(&self, id_or_name: &str) -> Result<PowerStatus> {
        let node = self.compute.store.resolve_node(id_or_name).await?;
        let Some(c) = self.controllers.get(&node.name) else {
            return Ok(PowerStatus {
                node,
                controller: None,
                bmc: None,
                bmc_error: None,
            });
        };
        let (bmc, bmc_error) = match c.ctl.status().await {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(PowerStatus {
            controller: Some(c.kind),
            node,
            bmc,
            bmc_error,
        })
    }

    /// One pass over the nodes that are changing (or in standby): moves each record on when
    /// its change is done or timed out. Returns the nodes whose state changed.
    pub async fn refresh(&self) -> Result<Vec<(String, PowerState)>> {
        let mut changed = vec![];
        let parked = self.compute.store.nodes_not_powered_on().await?;
        self.follow_simulated(&parked).await;
        for (id, state) in parked {
            let n = match self.compute.store.get_node(id).await {
                Ok(n) => n,
                Err(e) if e.kind == crate::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let now = Utc::now();
            let since = self.since(id).unwrap_or_else(|| {
                self.mark(id, now);
                now
            });
            // Read before `heard`: a linked simulated host is powered on (or off) by it.
            let bmc = match self.controllers.get(&n.name) {
                Some(c) if state == PowerState::PoweringOff || self.simulated(id).is_some() => {
                    Some(self.bmc_status(&n, c).await)
                }
                _ => None,
            };
            let heard = self.compute.last_heard(&n).is_some_and(|t| t > since);
            let next = match (state, bmc) {
                (PowerState::PoweringOn | PowerState::Standby | PowerState::Unknown, _) if heard => {
                    Some(PowerState::On)
                }
                (PowerState::PoweringOff, Some(Ok(PowerState::Standby))) => Some(PowerState::Standby),
                (PowerState::PoweringOff, Some(Err(e))) => {
                    warn!(node = %n.name, error = %e, "could not read the BMC's power state");
                    None
                }
                _ => None,
            };
            let timed_out = matches!(state, PowerState::PoweringOn | PowerState::PoweringOff)
                && (now - since).to_std().unwrap_or_default() >= self.transition_timeout;
            let next = match next {
                Some(s) => s,
                None if timed_out => {
                    warn!(node = %n.name, from = %state, "power change not done within the timeout: state unknown");
                    PowerState::Unknown
                }
                None => continue,
            };
            self.set(&id.to_string(), next, &[state]).await?;
            // From now, not from before the BMC was read: a heartbeat the host sent while it
            // shut down must not count as the host heard again after its standby.
            self.mark(id, Utc::now());
            changed.push((n.name.clone(), next));
        }
        Ok(changed)
    }

    /// [`HostPower::spawn`] registered among the background tasks as `host-power`.
    pub fn spawn_in(self: &Arc<Self>, tasks: &crate::background::BackgroundTasks) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tasks.spawn(POWER_TASK, self.poll_interval, move || {
            let me = Arc::clone(&me);
            async move {
                let changed = me.refresh().await?;
                Ok::<_, Error>(match changed.len() {
                    0 => "no change".to_string(),
                    _ => changed
                        .iter()
                        .map(|(n, s)| format!("{n}: {s}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        })
    }

    /// Follows power changes every `poll_interval` until the process ends.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.refresh().await {
                    warn!(error = %e, "power state refresh failed");
                }
            }
        })
    }
}

/// The name of the power-state loop among the background tasks.
pub const POWER_TASK: &str = "host-power";

fn power_err(e: Error) -> PowerError {
    match e.kind {
        crate::ErrorKind::FailedPrecondition | crate::ErrorKind::NotFound | crate::ErrorKind::InvalidArgument => {
            PowerError::Unsupported(e.message)
        }
        _ => PowerError::Controller(e.message),
    }
}

impl NodePower for HostPower {
    fn power_state(&self, node: NodeId) -> BoxFuture<'_, Result<PowerState, PowerError>> {
        Box::pin(async move {
            let n = self.compute.store.get_node(node).await.map_err(power_err)?;
            Ok(n.power)
        })
    }

    fn power_on(&self, node: NodeId) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async move { self.power_on_node(&node.to_string()).await.map(drop).map_err(power_err) })
    }

    fn standby(&self, node: NodeId) -> BoxFuture<'_, Result<(), PowerError>> {
        Box::pin(async move {
            self.power_off_node(&node.to_string(), false)
                .await
                .map(drop)
                .map_err(power_err)
        })
    }
}

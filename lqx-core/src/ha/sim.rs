//! A discrete-event fault simulator for HA, in virtual time (milliseconds).
//!
//! Hosts run agents (heartbeat every interval, lease renewal, a watchdog that self-fences,
//! level-triggered reconcile of the desired domains), the control plane runs the real
//! `HaEngine` and writes its decisions to a store one write at a time, and faults come from a
//! timed list: power off/on, network cut/heal between a host and the control plane, agent
//! pause/resume (SIGSTOP: the VMs keep running, the agent's in-process watchdog stops; the
//! fence process, with `SimParams::fence_process`, fences at the same deadline), fence process
//! pause/resume (with both stopped, a host watchdog resets the host at the deadline, or
//! nothing fences until one resumes), control-plane restart (state lost, rebuilt from the
//! store, on a new monotonic clock) and operator failover.
//!
//! Each host's monotonic clock may run fast or slow (ppm) and starts at its boot: nothing
//! ever compares two machines' clock readings. The run is deterministic: events at the same
//! instant are processed in the order they were scheduled.
//!
//! The invariant checker watches the ground truth (which host runs which domain):
//! - no VM ever runs on two hosts at the same instant;
//! - a restart elsewhere is decided only when the old host cannot run the VM: it does not,
//!   its agent holds no valid lease, and no control plane has renewed its lease for at least
//!   the node timeout (unless an operator confirmed it down);
//! - every HA VM runs again within `HaConfig::failover_bound` after it stopped, unless capacity
//!   was missing, failover was paused or held, the control plane restarted (the bound then
//!   counts from its return) or another host was in trouble meanwhile;
//! - with `expect_settled`, at the end every VM that should run runs exactly once, where the
//!   store says.

use std::{
    cmp::Ordering,
    collections::{BTreeSet, BinaryHeap, HashMap},
    fmt,
    time::Duration,
};

use super::{
    config::HaConfig,
    engine::{HaEngine, PersistedHa, TickReport},
    fence::{AgentLease, FenceReason, Renewal, ReturnReport},
    health::{NodeHealth, Verdict},
    scenario::{Fault, SimSpec},
    time::{MonoInstant, millis},
};
use crate::{model::NodeId, placement::ClusterSnapshot};

/// One line of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub at_ms: u64,
    pub kind: &'static str,
    pub node: String,
    pub vm: String,
    pub detail: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = format!(
            "{:>8} {:<22} {:<8} {:<8} {}",
            format!("{}.{:03}", self.at_ms / 1000, self.at_ms % 1000),
            self.kind,
            if self.node.is_empty() { "-" } else { &self.node },
            if self.vm.is_empty() { "-" } else { &self.vm },
            self.detail
        );
        f.write_str(line.trim_end())
    }
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub at_ms: u64,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}.{:03}s: {}", self.at_ms / 1000, self.at_ms % 1000, self.what)
    }
}

/// A stretch of time during which an HA VM that should run ran nowhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downtime {
    pub vm: String,
    pub host: String,
    pub from_ms: u64,
    pub to_ms: Option<u64>,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    pub log: Vec<LogLine>,
    pub violations: Vec<Violation>,
    pub downtimes: Vec<Downtime>,
    /// Restarts written by the control plane (failover_restart lines).
    pub restarts: usize,
}

impl SimReport {
    /// The log as text, one line per event.
    pub fn log_text(&self) -> String {
        self.log.iter().map(|l| format!("{l}\n")).collect()
    }
    /// The longest downtime of an HA VM that ended (ms).
    pub fn max_downtime_ms(&self) -> Option<u64> {
        self.downtimes
            .iter()
            .filter_map(|d| d.to_ms.map(|t| t - d.from_ms))
            .max()
    }
}

#[derive(Clone, Debug)]
enum Resp {
    Renewed { desired: Vec<usize> },
    MustFence,
}

#[derive(Clone, Debug)]
enum Write {
    Nodes,
    Assign { vm: usize, from: usize, to: usize },
}

#[derive(Clone, Debug)]
enum Ev {
    Fault(usize),
    HbTimer {
        host: usize,
        boot: u32,
    },
    HbArrive {
        host: usize,
        boot: u32,
        sent: MonoInstant,
        report: ReturnReport,
    },
    RespArrive {
        host: usize,
        boot: u32,
        sent: MonoInstant,
        resp: Resp,
    },
    Watchdog {
        host: usize,
        boot: u32,
        arm: u64,
    },
    /// A host reset by its watchdog boots again.
    Rebooted {
        host: usize,
        boot: u32,
    },
    CpTick {
        inc: u32,
        token: u64,
    },
    CpWrite {
        inc: u32,
        write: Write,
    },
    CpUp {
        inc: u32,
    },
}

struct Item {
    at: u64,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Host {
    id: NodeId,
    name: String,
    powered: bool,
    boot: u32,
    boot_at: u64,
    ppm: i64,
    cut: bool,
    paused: bool,
    /// The fence process is stopped.
    fence_paused: bool,
    /// The lease deadline passed while nothing could fence: whichever resumes first does.
    fence_missed: bool,
    hb_due: bool,
    inbox: Vec<(MonoInstant, Resp)>,
    lease: AgentLease,
    arm: u64,
    domains: BTreeSet<usize>,
    /// (time, faulted) changes, for the checker.
    trouble: Vec<(u64, bool)>,
    /// Last time any control plane renewed this host's lease (for the checker).
    last_heard: Option<u64>,
}

impl Host {
    fn faulted(&self) -> bool {
        !self.powered || self.cut || self.paused
    }
    /// This host's monotonic clock at virtual time `t`.
    fn clock(&self, t: u64) -> MonoInstant {
        let e = t.saturating_sub(self.boot_at) as i128;
        MonoInstant::from_millis((e * (1_000_000 + self.ppm as i128) / 1_000_000) as u64)
    }
    /// The virtual time at which this host's clock reads `c`.
    fn real(&self, c: MonoInstant) -> u64 {
        let c = c.as_millis() as i128;
        let rate = 1_000_000 + self.ppm as i128;
        self.boot_at + ((c * 1_000_000 + rate - 1) / rate) as u64
    }
    /// Virtual duration of `d` of this host's clock.
    fn span(&self, d: Duration) -> u64 {
        let rate = 1_000_000 + self.ppm as i128;
        ((millis(d) as i128 * 1_000_000 + rate - 1) / rate) as u64
    }
}

struct Cp {
    up: bool,
    inc: u32,
    origin: u64,
    engine: Option<HaEngine>,
    pending: usize,
    token: u64,
    wake: u64,
    storm: bool,
}

/// The simulation state; `run` drives it.
struct Sim<'a> {
    spec: &'a SimSpec,
    cfg: HaConfig,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Item>,
    hosts: Vec<Host>,
    cp: Cp,
    assign: Vec<Option<usize>>,
    persisted: PersistedHa,
    report: SimReport,
    down: Vec<Option<(u64, usize)>>,
    excuses: Vec<Vec<u64>>,
    cp_ups: Vec<u64>,
    storms: Vec<(u64, u64)>,
    storm_since: Option<u64>,
}

/// Runs one scenario to its end and checks the invariants.
pub fn run(spec: &SimSpec) -> SimReport {
    let mut sim = Sim::new(spec);
    sim.run();
    sim.report
}

impl<'a> Sim<'a> {
    fn new(spec: &'a SimSpec) -> Self {
        let cfg = spec.config.clone();
        let n = spec.cluster.nodes.len();
        let index: HashMap<NodeId, usize> = spec.cluster.nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let mut hosts: Vec<Host> = spec
            .cluster
            .nodes
            .iter()
            .map(|nd| Host {
                id: nd.id,
                name: nd.name.clone(),
                powered: true,
                boot: 0,
                boot_at: 0,
                ppm: i64::from(spec.params.clock_ppm.get(&nd.name).copied().unwrap_or(0)),
                cut: false,
                paused: false,
                fence_paused: false,
                fence_missed: false,
                hb_due: false,
                inbox: vec![],
                lease: AgentLease::renewed(cfg.self_fence_after, MonoInstant::ZERO),
                arm: 0,
                domains: BTreeSet::new(),
                trouble: vec![(0, false)],
                last_heard: Some(0),
            })
            .collect();
        let assign: Vec<Option<usize>> = spec
            .cluster
            .vms
            .iter()
            .map(|v| v.node.and_then(|id| index.get(&id).copied()))
            .collect();
        for (vm, a) in assign.iter().enumerate() {
            if let Some(h) = a
                && spec.cluster.vms[vm].running
            {
                hosts[*h].domains.insert(vm);
            }
        }
        let engine = HaEngine::new(cfg.clone(), MonoInstant::ZERO, hosts.iter().map(|h| h.id))
            .expect("the scenario's config was validated");
        let persisted = engine.persisted();
        let mut sim = Sim {
            spec,
            cfg,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            hosts,
            cp: Cp {
                up: true,
                inc: 0,
                origin: 0,
                engine: Some(engine),
                pending: 0,
                token: 0,
                wake: 0,
                storm: false,
            },
            assign,
            persisted,
            report: SimReport::default(),
            down: vec![None; spec.cluster.vms.len()],
            excuses: vec![vec![]; spec.cluster.vms.len()],
            cp_ups: vec![0],
            storms: vec![],
            storm_since: None,
        };
        for (i, f) in spec.faults.iter().enumerate() {
            sim.push(millis(f.at), Ev::Fault(i));
        }
        let hb = millis(sim.cfg.heartbeat_interval);
        for i in 0..n {
            let phase = spec
                .params
                .heartbeat_phase
                .get(&sim.hosts[i].name)
                .map_or(hb * i as u64 / n as u64, |d| millis(*d));
            sim.push(phase, Ev::HbTimer { host: i, boot: 0 });
            sim.arm_watchdog(i);
        }
        sim.schedule_tick(0);
        sim
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Item { at, seq: self.seq, ev });
    }

    fn log(&mut self, kind: &'static str, node: &str, vm: &str, detail: impl Into<String>) {
        self.report.log.push(LogLine {
            at_ms: self.now,
            kind,
            node: node.to_string(),
            vm: vm.to_string(),
            detail: detail.into(),
        });
    }

    fn violation(&mut self, what: String) {
        self.report.violations.push(Violation { at_ms: self.now, what });
    }

    fn vm_name(&self, vm: usize) -> String {
        self.spec.cluster.vms[vm].name.clone()
    }
    fn is_ha(&self, vm: usize) -> bool {
        self.spec.cluster.vms[vm].ha.enabled
    }
    fn host_of(&self, id: NodeId) -> usize {
        self.hosts
            .iter()
            .position(|h| h.id == id)
            .expect("engine only knows simulated nodes")
    }
    fn vm_of(&self, id: crate::model::VmId) -> usize {
        self.spec
            .cluster
            .vms
            .iter()
            .position(|v| v.id == id)
            .expect("engine only knows simulated VMs")
    }
    fn cp_clock(&self) -> MonoInstant {
        MonoInstant::from_millis(self.now - self.cp.origin)
    }

    fn run(&mut self) {
        let end = millis(self.spec.params.duration);
        while let Some(item) = self.queue.pop() {
            if item.at > end {
                break;
            }
            self.now = item.at;
            self.handle(item.ev);
        }
        self.now = end;
        self.finish();
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Fault(i) => self.fault(i),
            Ev::HbTimer { host, boot } => self.hb_timer(host, boot),
            Ev::HbArrive {
                host,
                boot,
                sent,
                report,
            } => self.hb_arrive(host, boot, sent, report),
            Ev::RespArrive { host, boot, sent, resp } => {
                let h = &mut self.hosts[host];
                if h.boot != boot || !h.powered || h.cut {
                    return;
                }
                if h.paused {
                    h.inbox.push((sent, resp));
                    return;
                }
                self.response(host, sent, resp);
            }
            Ev::Watchdog { host, boot, arm } => {
                let h = &self.hosts[host];
                if h.boot != boot || h.arm != arm || !h.powered {
                    return;
                }
                let clock = h.clock(self.now);
                if self.hosts[host].lease.on_watchdog(clock) {
                    let name = self.hosts[host].name.clone();
                    let (agent, fence) = (
                        !self.hosts[host].paused,
                        self.spec.params.fence_process && !self.hosts[host].fence_paused,
                    );
                    if agent || fence {
                        let n = self.destroy_ha(host, "self_fence");
                        let by = if agent {
                            "agent_self_fenced"
                        } else {
                            "fence_process_fenced"
                        };
                        self.log(by, &name, "", format!("destroyed {n} HA domains"));
                    } else if self.spec.params.fence_process && self.spec.params.host_watchdog {
                        // The fence process stopped petting in time: the host resets.
                        self.log("host_watchdog_reset", &name, "", "");
                        self.power_off(host);
                        let boot = self.hosts[host].boot;
                        self.push(
                            self.now + millis(self.spec.params.reboot_time),
                            Ev::Rebooted { host, boot },
                        );
                    } else {
                        self.hosts[host].fence_missed = true;
                        self.log("fence_missed", &name, "", "nothing runs to fence this host");
                    }
                }
            }
            Ev::Rebooted { host, boot } => {
                if self.hosts[host].boot == boot && !self.hosts[host].powered {
                    let name = self.hosts[host].name.clone();
                    self.log("host_rebooted", &name, "", "");
                    self.power_on(host);
                }
            }
            Ev::CpTick { inc, token } => {
                if inc != self.cp.inc || !self.cp.up || token != self.cp.token || self.cp.pending > 0 {
                    return;
                }
                let snap = self.snapshot();
                let now = self.cp_clock();
                let report = self.cp.engine.as_mut().expect("up").tick(now, &snap);
                self.apply(report);
            }
            Ev::CpWrite { inc, write } => self.cp_write(inc, write),
            Ev::CpUp { inc } => {
                if inc != self.cp.inc {
                    return;
                }
                self.cp.up = true;
                self.cp.origin = self.now;
                self.cp.storm = false;
                self.end_storm();
                self.cp.engine = Some(
                    HaEngine::restore(self.cfg.clone(), MonoInstant::ZERO, &self.persisted).expect("config validated"),
                );
                self.cp_ups.push(self.now);
                self.log("cp_up", "", "", "state rebuilt from the store");
                self.schedule_tick(self.now);
            }
        }
    }

    fn set_trouble(&mut self, host: usize) {
        let f = self.hosts[host].faulted();
        let now = self.now;
        let t = &mut self.hosts[host].trouble;
        if t.last().map(|x| x.1) != Some(f) {
            t.push((now, f));
        }
    }

    fn fault(&mut self, i: usize) {
        let fault = self.spec.faults[i].fault.clone();
        let host = fault.node().map(|n| {
            self.hosts
                .iter()
                .position(|h| h.name == n)
                .expect("validated node name")
        });
        let name = fault.node().unwrap_or("").to_string();
        let detail = match &fault {
            Fault::RestartControlPlane(d) => format!("down for {}", humantime::format_duration(*d)),
            _ => String::new(),
        };
        self.log(fault.kind(), &name, "", detail);
        match (fault, host) {
            (Fault::PowerOff(_), Some(h)) if self.hosts[h].powered => self.power_off(h),
            (Fault::PowerOn(_), Some(h)) if !self.hosts[h].powered => self.power_on(h),
            (Fault::CutNetwork(_), Some(h)) => self.hosts[h].cut = true,
            (Fault::Heal(_), Some(h)) => self.hosts[h].cut = false,
            (Fault::PauseAgent(_), Some(h)) => self.hosts[h].paused = self.hosts[h].powered,
            (Fault::PauseFence(_), Some(h)) => self.hosts[h].fence_paused = self.hosts[h].powered,
            (Fault::ResumeFence(_), Some(h)) if self.hosts[h].fence_paused => {
                self.hosts[h].fence_paused = false;
                if self.spec.params.fence_process {
                    self.late_fence(h, "fence_process_fenced");
                }
            }
            (Fault::ResumeAgent(_), Some(h)) if self.hosts[h].paused => {
                self.hosts[h].paused = false;
                // Its watchdog fires now if the deadline passed while it was stopped.
                self.late_fence(h, "agent_self_fenced");
                for (sent, resp) in std::mem::take(&mut self.hosts[h].inbox) {
                    self.response(h, sent, resp);
                }
                if std::mem::take(&mut self.hosts[h].hb_due) {
                    let boot = self.hosts[h].boot;
                    self.hb_timer(h, boot);
                }
            }
            (Fault::RestartControlPlane(down), _) if self.cp.up => {
                self.cp.up = false;
                self.cp.inc += 1;
                self.cp.engine = None;
                self.cp.pending = 0;
                let inc = self.cp.inc;
                self.push(self.now + millis(down), Ev::CpUp { inc });
            }
            (Fault::ManualFailover(_), Some(h)) => {
                if !self.cp.up {
                    self.log("manual_failover_refused", &name, "", "control plane is down");
                } else {
                    let snap = self.snapshot();
                    let now = self.cp_clock();
                    let id = self.hosts[h].id;
                    match self
                        .cp
                        .engine
                        .as_mut()
                        .expect("up")
                        .manual_failover(id, now, true, &snap)
                    {
                        Ok(report) => self.apply(report),
                        Err(e) => self.log("manual_failover_refused", &name, "", e.to_string()),
                    }
                }
            }
            _ => {}
        }
        if let Some(h) = host {
            self.set_trouble(h);
        }
    }

    fn hb_timer(&mut self, host: usize, boot: u32) {
        let h = &mut self.hosts[host];
        if h.boot != boot || !h.powered {
            return;
        }
        if h.paused {
            h.hb_due = true;
            return;
        }
        let period = h.span(self.cfg.heartbeat_interval);
        let sent = h.clock(self.now);
        let ha_present = h
            .domains
            .iter()
            .filter(|vm| self.spec.cluster.vms[**vm].ha.enabled)
            .count();
        let report = ReturnReport {
            fenced_domains_gone: h.lease.is_fenced() && ha_present == 0,
            ha_domains_present: ha_present,
        };
        let cut = h.cut;
        self.push(self.now + period, Ev::HbTimer { host, boot });
        if !cut {
            let d = millis(self.spec.params.network_delay);
            self.push(
                self.now + d,
                Ev::HbArrive {
                    host,
                    boot,
                    sent,
                    report,
                },
            );
        }
    }

    fn hb_arrive(&mut self, host: usize, boot: u32, sent: MonoInstant, report: ReturnReport) {
        if self.hosts[host].cut || !self.cp.up {
            return;
        }
        let id = self.hosts[host].id;
        let now = self.cp_clock();
        let outcome = match self.cp.engine.as_mut().expect("up").heartbeat(id, now, &report) {
            Ok(o) => o,
            Err(e) => {
                let name = self.hosts[host].name.clone();
                self.violation(format!("heartbeat of {name} refused: {e}"));
                return;
            }
        };
        if let Some(t) = outcome.transition {
            self.log_transition(host, t.to, &t.cause.to_string());
            if t.from == NodeHealth::Failed {
                // Written before the reply, so a restarted control plane never fences it again.
                self.persisted.nodes = self.cp.engine.as_ref().expect("up").persisted().nodes;
            }
        }
        if matches!(outcome.verdict, Verdict::Renewed { .. }) {
            self.hosts[host].last_heard = Some(self.now);
        }
        let resp = match outcome.verdict {
            Verdict::Renewed { .. } => Resp::Renewed {
                desired: (0..self.assign.len())
                    .filter(|vm| self.assign[*vm] == Some(host) && self.spec.cluster.vms[*vm].running)
                    .collect(),
            },
            Verdict::MustFence(_) => Resp::MustFence,
        };
        let d = millis(self.spec.params.network_delay);
        self.push(self.now + d, Ev::RespArrive { host, boot, sent, resp });
    }

    fn response(&mut self, host: usize, sent: MonoInstant, resp: Resp) {
        let name = self.hosts[host].name.clone();
        let clock = self.hosts[host].clock(self.now);
        match resp {
            Resp::MustFence => {
                self.hosts[host].lease.on_must_fence(clock);
                let n = self.destroy_ha(host, "must_fence");
                self.log("agent_must_fence", &name, "", format!("destroyed {n} HA domains"));
            }
            Resp::Renewed { desired } => match self.hosts[host].lease.on_renewal(sent, clock) {
                Renewal::Stale => self.log("stale_reply_ignored", &name, "", ""),
                Renewal::Accepted { .. } => {
                    self.arm_watchdog(host);
                    let running: Vec<usize> = self.hosts[host].domains.iter().copied().collect();
                    for vm in running {
                        if !desired.contains(&vm) {
                            self.stop(host, vm, "not_desired");
                        }
                    }
                    for vm in desired {
                        let may = !self.is_ha(vm) || self.hosts[host].lease.may_run_ha(clock);
                        if may && !self.hosts[host].domains.contains(&vm) {
                            self.start(host, vm);
                        }
                    }
                }
            },
        }
    }

    fn power_off(&mut self, h: usize) {
        let gone: Vec<usize> = self.hosts[h].domains.iter().copied().collect();
        for vm in gone {
            self.stop(h, vm, "power_off");
        }
        let host = &mut self.hosts[h];
        host.powered = false;
        host.boot += 1;
        host.paused = false;
        host.fence_paused = false;
        host.fence_missed = false;
        host.hb_due = false;
        host.inbox.clear();
    }

    fn power_on(&mut self, h: usize) {
        let sfa = self.cfg.self_fence_after;
        let now = self.now;
        let host = &mut self.hosts[h];
        host.powered = true;
        host.boot += 1;
        host.boot_at = now;
        host.lease = AgentLease::new(sfa);
        let boot = host.boot;
        self.push(now, Ev::HbTimer { host: h, boot });
    }

    /// A fence that was missed (nothing ran at the deadline) happens when something resumes.
    fn late_fence(&mut self, h: usize, by: &'static str) {
        if std::mem::take(&mut self.hosts[h].fence_missed) {
            let n = self.destroy_ha(h, "self_fence");
            let name = self.hosts[h].name.clone();
            self.log(by, &name, "", format!("late: destroyed {n} HA domains"));
        }
    }

    fn arm_watchdog(&mut self, host: usize) {
        let h = &mut self.hosts[host];
        h.arm += 1;
        if let Some(deadline) = h.lease.deadline() {
            let (at, boot, arm) = (h.real(deadline), h.boot, h.arm);
            self.push(at.max(self.now), Ev::Watchdog { host, boot, arm });
        }
    }

    fn destroy_ha(&mut self, host: usize, why: &'static str) -> usize {
        let ha: Vec<usize> = self.hosts[host]
            .domains
            .iter()
            .copied()
            .filter(|vm| self.is_ha(*vm))
            .collect();
        for vm in &ha {
            self.stop(host, *vm, why);
        }
        ha.len()
    }

    fn running_on(&self, vm: usize) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|h| self.hosts[*h].domains.contains(&vm))
            .collect()
    }

    fn stop(&mut self, host: usize, vm: usize, why: &'static str) {
        self.hosts[host].domains.remove(&vm);
        let (hn, vn) = (self.hosts[host].name.clone(), self.vm_name(vm));
        self.log("vm_stopped", &hn, &vn, why);
        if self.running_on(vm).is_empty() && self.down[vm].is_none() {
            self.down[vm] = Some((self.now, host));
        }
    }

    fn start(&mut self, host: usize, vm: usize) {
        self.hosts[host].domains.insert(vm);
        let (hn, vn) = (self.hosts[host].name.clone(), self.vm_name(vm));
        self.log("vm_started", &hn, &vn, "");
        let on = self.running_on(vm);
        if on.len() > 1 {
            let names: Vec<String> = on.iter().map(|h| self.hosts[*h].name.clone()).collect();
            self.violation(format!("{vn} runs on {} at once", names.join(" and ")));
        }
        if let Some((from, old)) = self.down[vm].take() {
            self.check_downtime(vm, old, from, Some(self.now));
        }
    }

    fn log_transition(&mut self, host: usize, to: NodeHealth, cause: &str) {
        let kind = match to {
            NodeHealth::Healthy => "node_healthy",
            NodeHealth::Unknown => "node_unknown",
            NodeHealth::Unreachable => "node_unreachable",
            NodeHealth::Failed => "node_failed",
        };
        let name = self.hosts[host].name.clone();
        self.log(kind, &name, "", cause);
    }

    fn snapshot(&self) -> ClusterSnapshot {
        let mut s = self.spec.cluster.clone();
        for (vm, a) in self.assign.iter().enumerate() {
            s.vms[vm].node = a.map(|h| self.hosts[h].id);
        }
        s
    }

    fn end_storm(&mut self) {
        if let Some(s) = self.storm_since.take() {
            self.storms.push((s, self.now));
        }
    }

    fn schedule_tick(&mut self, at: u64) {
        self.cp.token += 1;
        let (inc, token) = (self.cp.inc, self.cp.token);
        self.push(at.max(self.now), Ev::CpTick { inc, token });
    }

    /// Logs a tick's (or a manual failover's) decisions and schedules its writes.
    fn apply(&mut self, r: TickReport) {
        for t in &r.transitions {
            let h = self.host_of(t.node);
            self.log_transition(h, t.to, &t.cause.to_string());
        }
        if r.storm_changed {
            match r.storm {
                Some(s) => {
                    self.log("failover_paused", "", "", s.reason());
                    self.storm_since = Some(self.now);
                }
                None => {
                    self.log("failover_resumed", "", "", "");
                    self.end_storm();
                }
            }
        }
        self.cp.storm = r.storm.is_some();
        for u in &r.plan.unplaced {
            let vm = self.vm_of(u.vm);
            self.excuses[vm].push(self.now);
        }
        for h in &r.plan.held {
            let vm = self.vm_of(h.vm);
            self.excuses[vm].push(self.now);
        }
        for u in &r.new_unplaced {
            let (h, vm) = (self.host_of(u.from), self.vm_of(u.vm));
            let (hn, vn) = (self.hosts[h].name.clone(), self.vm_name(vm));
            self.log("failover_unplaced", &hn, &vn, u.reason.clone());
        }
        for held in &r.new_held {
            let (h, vm) = (self.host_of(held.from), self.vm_of(held.vm));
            let (hn, vn) = (self.hosts[h].name.clone(), self.vm_name(vm));
            self.log("failover_held", &hn, &vn, held.reason.to_string());
        }
        let mut writes = vec![];
        if r.persist_nodes {
            writes.push(Write::Nodes);
        }
        let fenced = self.cp.engine.as_ref().expect("up").fenced_nodes();
        for p in &r.plan.restarts {
            let (from, to, vm) = (self.host_of(p.from), self.host_of(p.to), self.vm_of(p.vm));
            self.check_restart_decision(vm, from, fenced.get(&p.from).copied());
            writes.push(Write::Assign { vm, from, to });
        }
        self.cp.wake = r.next_wakeup.as_millis() + self.cp.origin;
        if writes.is_empty() {
            self.schedule_tick(self.cp.wake);
            return;
        }
        self.cp.token += 1; // no tick runs while the writes are in flight
        self.cp.pending += writes.len();
        let step = millis(self.spec.params.store_write).max(1);
        let inc = self.cp.inc;
        for (k, w) in writes.into_iter().enumerate() {
            self.push(self.now + step * (k as u64 + 1), Ev::CpWrite { inc, write: w });
        }
    }

    fn cp_write(&mut self, inc: u32, write: Write) {
        if inc != self.cp.inc || !self.cp.up {
            return; // the control plane died: this write never happened
        }
        let now = self.cp_clock();
        match write {
            Write::Nodes => self.persisted.nodes = self.cp.engine.as_ref().expect("up").persisted().nodes,
            Write::Assign { vm, from, to } => {
                self.assign[vm] = Some(to);
                let engine = self.cp.engine.as_mut().expect("up");
                engine.restart_committed(self.spec.cluster.vms[vm].id, now);
                self.persisted.restarts = engine.persisted().restarts;
                self.report.restarts += 1;
                let (fname, tname, vn) = (
                    self.hosts[from].name.clone(),
                    self.hosts[to].name.clone(),
                    self.vm_name(vm),
                );
                self.log("failover_restart", &fname, &vn, format!("-> {tname}"));
            }
        }
        self.cp.pending -= 1;
        if self.cp.pending == 0 {
            self.schedule_tick(self.cp.wake.max(self.now));
        }
    }

    fn check_restart_decision(&mut self, vm: usize, from: usize, fence: Option<FenceReason>) {
        let vn = self.vm_name(vm);
        let h = &self.hosts[from];
        let name = h.name.clone();
        let holds_lease = h.powered && h.lease.may_run_ha(h.clock(self.now));
        let gap = h.last_heard.map_or(u64::MAX, |t| self.now - t);
        let on: Vec<String> = self
            .running_on(vm)
            .iter()
            .map(|x| self.hosts[*x].name.clone())
            .collect();
        if !on.is_empty() {
            self.violation(format!("restart of {vn} decided while it runs on {}", on.join(", ")));
        }
        if fence == Some(FenceReason::Operator) {
            return;
        }
        if holds_lease {
            self.violation(format!(
                "restart of {vn} decided while {name}'s agent still holds a lease"
            ));
        }
        if gap < millis(self.cfg.timeout()) {
            self.violation(format!("restart of {vn} after a gap of only {gap} ms from {name}"));
        }
    }

    /// Whether `host` was in trouble at any time in [a, b].
    fn troubled(&self, host: usize, a: u64, b: u64) -> bool {
        let t = &self.hosts[host].trouble;
        let at_a = t.iter().take_while(|x| x.0 <= a).last().is_some_and(|x| x.1);
        at_a || t.iter().any(|x| x.0 > a && x.0 <= b)
    }

    fn check_downtime(&mut self, vm: usize, host: usize, from: u64, to: Option<u64>) {
        self.report.downtimes.push(Downtime {
            vm: self.vm_name(vm),
            host: self.hosts[host].name.clone(),
            from_ms: from,
            to_ms: to,
        });
        if !self.is_ha(vm) {
            return;
        }
        let end = to.unwrap_or(self.now);
        let delay = Duration::from_secs(u64::from(self.spec.cluster.vms[vm].ha.restart_delay_secs));
        let bound = millis(self.cfg.failover_bound(delay));
        let mut deadline = from + bound;
        // A host that came back and was renewed after the VM stopped there (powered on, then
        // cut off before it restarted it) died again at that renewal: the bound counts from it.
        if let Some(heard) = self.hosts[host].last_heard
            && heard > from
            && heard <= end
        {
            deadline = deadline.max(heard + bound);
        }
        for &u in &self.cp_ups {
            if u + bound > from && u <= end {
                deadline = deadline.max(u + bound);
            }
        }
        if end <= deadline {
            return;
        }
        let excused = self.excuses[vm]
            .iter()
            .any(|t| *t >= from.saturating_sub(bound) && *t <= end)
            || self.storms.iter().any(|(a, b)| *a <= end && *b >= from)
            || self.storm_since.is_some_and(|a| a <= end)
            || (0..self.hosts.len()).any(|h| h != host && self.troubled(h, from.saturating_sub(bound), end));
        if !excused {
            let vn = self.vm_name(vm);
            let hn = self.hosts[host].name.clone();
            self.report.violations.push(Violation {
                at_ms: end,
                what: format!(
                    "{vn} (was on {hn}) ran nowhere for {} ms, bound {} ms",
                    end - from,
                    deadline - from
                ),
            });
        }
    }

    fn finish(&mut self) {
        for vm in 0..self.down.len() {
            if let Some((from, host)) = self.down[vm].take() {
                self.check_downtime(vm, host, from, None);
            }
        }
        if self.spec.params.expect_settled {
            for (vm, v) in self.spec.cluster.vms.iter().enumerate() {
                if !v.running {
                    continue;
                }
                let on = self.running_on(vm);
                let want = self.assign[vm];
                if on.len() != 1 || want != Some(on[0]) {
                    let names: Vec<String> = on.iter().map(|h| self.hosts[*h].name.clone()).collect();
                    let want = want.map_or("nowhere".to_string(), |h| self.hosts[h].name.clone());
                    self.violation(format!(
                        "{} runs on [{}] at the end, assigned to {want}",
                        v.name,
                        names.join(", ")
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::scenario::SimSpec;

    const CLUSTER: &str = "nodes:\n  - {name: node-1, cpu_cores: 16, memory_mib: 16384}\n  - {name: node-2, cpu_cores: 16, memory_mib: 16384}\n  - {name: node-3, cpu_cores: 16, memory_mib: 16384}\nvms:\n  - {name: web-1, node: node-1, cpu_cores: 2, memory_mib: 2048, ha: {priority: high}}\n  - {name: batch-1, node: node-1, cpu_cores: 2, memory_mib: 2048}\n";

    #[test]
    fn power_loss_restarts_the_ha_vm_once_within_the_bound() {
        let spec = SimSpec::from_files(
            CLUSTER,
            "sim: {duration: 120s}\nfaults:\n  - {at: 10s, power_off: node-1}\n",
        )
        .unwrap();
        let r = run(&spec);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.restarts, 1);
        let started: Vec<&LogLine> = r.log.iter().filter(|l| l.kind == "vm_started").collect();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].vm, "web-1");
        let down = r.max_downtime_ms().unwrap();
        assert!(down <= 41_000, "{down}");
        assert!(down >= 36_000, "{down}");
    }

    #[test]
    fn checker_catches_a_restart_slower_than_the_bound() {
        let faults = "sim: {duration: 200s, store_write: 30s}\nfaults:\n  - {at: 10s, power_off: node-1}\n";
        let r = run(&SimSpec::from_files(CLUSTER, faults).unwrap());
        assert!(
            r.violations
                .iter()
                .any(|v| v.what.contains("web-1 (was on node-1) ran nowhere")),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn checker_catches_an_unsafe_config() {
        // Skip validation: a self-fence later than the lease lets the VM run twice.
        let spec = SimSpec::from_files(
            CLUSTER,
            "sim: {duration: 120s}\nfaults:\n  - {at: 10s, cut_network: node-1}\n",
        )
        .unwrap();
        let mut sim = Sim::new(&spec);
        sim.cfg.self_fence_after = Duration::from_secs(60);
        for h in 0..sim.hosts.len() {
            sim.hosts[h].lease = AgentLease::renewed(Duration::from_secs(60), MonoInstant::ZERO);
            sim.arm_watchdog(h);
        }
        sim.run();
        let v = sim.report.violations;
        assert!(v.iter().any(|v| v.what.contains("runs on node-1 and")), "{v:?}");
        assert!(v.iter().any(|v| v.what.contains("still holds a lease")), "{v:?}");
    }
}

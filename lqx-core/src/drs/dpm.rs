//! DPM, distributed power management: pure planning of POWER_ON and POWER_OFF (a snapshot,
//! the config, each host's power state, the hysteresis state in; a plan out). The engine
//! persists its recommendations and performs them through [`crate::power::NodePower`].
//!
//! The rule, in plain words:
//! - **Hosts on** are Ready, schedulable hosts whose power is on (a host with no known
//!   power state counts as on). **Standby** hosts are those in standby (or powering off).
//!   Use is measured as DRS measures it (smoothed VM use, or what the host reports if more);
//!   the cluster's use is the hosts-on mean of the fuller resource, capacity-weighted.
//! - **POWER_ON** (mandatory: automation partial and full apply it at once), the first that
//!   holds, never waiting for a hold count:
//!   fewer hosts on than `min_hosts_on`; HA admission control (`failover_hosts` failures)
//!   no longer holds on the hosts on and a standby host would restore it; a VM that must
//!   move fits nowhere on the hosts on but fits a standby host; a create or start found no
//!   room on the hosts on but fits a standby host (`compute::standby`: the request fails
//!   with resource_exhausted saying the host is being woken); the mean use is above
//!   `power_on_above`, or will be by the next run at the rate it grew since the last one, or
//!   a host is still above its relief line (threshold - margin) after the DRS plan. Enough
//!   hosts (largest first) are woken to bring the mean down to the middle of the
//!   `power_off_below`..`power_on_above` band. DRS then moves VMs onto them.
//! - **POWER_OFF**, only when nothing is powering on or off and no POWER_ON is planned: the
//!   mean use has been below `power_off_below` for `hold_count` consecutive runs. Hosts not
//!   opted out are taken emptiest first (fewest VMs, then least memory allocated); a host
//!   goes when every one of its VMs (running or stopped) can move to another host that
//!   stays on, within allocation, placement policy and the relief line of both resources;
//!   the mean use of the hosts left stays at or below the middle of the band (so the next
//!   run does not wake it again: hysteresis); at least `min_hosts_on` stay on; and HA
//!   admission control still holds on the hosts left. Its VMs are evacuated by live
//!   migration (MIGRATE recommendations, kind `consolidate`), then the host goes to standby.
//!   Several hosts may go in one run (of the 8 emptiest considered), each checked against
//!   the cluster the earlier ones leave.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::planner::{MoveKind, PlannedMove};
use crate::ha::admission;
use crate::model::{
    DrsConfig, DrsRecommendation, NodeId, NodePhase, Priority, RecommendationId, RecommendationStatus,
    RecommendationType, VmId,
};
use crate::placement::{ClusterSnapshot, Occupancy};
use crate::power::PowerState;

const CPU: usize = 0;
const MEM: usize = 1;
const EPS: f64 = 1e-9;
/// Hosts one run considers powering off (each costs an evacuation plan and an admission
/// check over the whole cluster); a large cluster consolidates over several runs.
const MAX_CANDIDATES: usize = 8;
/// Standby hosts one run tries, largest first, to restore HA admission control.
const MAX_WAKE_TRIES: usize = 4;

/// What DPM remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DpmState {
    /// Consecutive runs with the mean use below `power_off_below`.
    pub low_streak: u32,
    /// The hosts-on mean use of the last run, percent (the growth rate for power-on).
    pub last_mean: Option<f64>,
}

/// One host to power on or off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerAction {
    pub node: NodeId,
    pub node_name: String,
    pub reason: String,
    /// A POWER_ON the cluster needs (capacity, HA, a placement); applied at automation
    /// partial too.
    pub mandatory: bool,
    pub priority: Priority,
}

impl PowerAction {
    /// The PENDING recommendation for this action. It names no VM (the nil id).
    pub fn to_recommendation(
        &self,
        kind: RecommendationType,
        id: RecommendationId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> DrsRecommendation {
        DrsRecommendation {
            id,
            priority: self.priority,
            recommendation_type: kind,
            reason: self.reason.clone(),
            vm_id: VmId(uuid::Uuid::nil()),
            vm_name: String::new(),
            source_node_id: self.node,
            source_node_name: self.node_name.clone(),
            target_node_id: self.node,
            target_node_name: self.node_name.clone(),
            impact_cpu: 0.0,
            impact_memory: 0.0,
            estimated_duration_secs: 0,
            mandatory: self.mandatory,
            status: RecommendationStatus::Pending,
            failure_reason: None,
            created_at: now,
            approved_at: None,
            approved_by: None,
            applied_at: None,
            applied_by: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DpmPlan {
    pub power_on: Vec<PowerAction>,
    pub power_off: Vec<PowerAction>,
    /// The moves that empty the hosts of `power_off` (in order).
    pub evacuations: Vec<PlannedMove>,
    /// Hosts on before and after the plan.
    pub hosts_on_before: usize,
    pub hosts_on_after: usize,
    /// Hosts-on mean use (fuller resource, percent) before and after the plan.
    pub mean_before: f64,
    pub mean_after: f64,
    /// Why nothing is powered off, when nothing is (for status displays).
    pub why_not: Option<String>,
    pub state: DpmState,
}

/// The powered state DPM assumes for `node` (none known: on).
fn power_of(power: &HashMap<NodeId, PowerState>, node: NodeId) -> PowerState {
    power.get(&node).copied().unwrap_or(PowerState::On)
}

fn is_standby(p: PowerState) -> bool {
    matches!(p, PowerState::Standby | PowerState::PoweringOff)
}

/// Per node, (capacity, load) in cores and MiB.
struct Loads {
    cap: Vec<[f64; 2]>,
    load: Vec<[f64; 2]>,
}

fn loads(snap: &ClusterSnapshot) -> Loads {
    let index: HashMap<NodeId, usize> = snap.nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let cap = snap
        .nodes
        .iter()
        .map(|n| [n.cpu_cores as f64, n.memory_mib as f64])
        .collect();
    let mut load = vec![[0.0; 2]; snap.nodes.len()];
    for v in &snap.vms {
        if let Some(&i) = v.node.as_ref().and_then(|n| index.get(n)) {
            load[i][CPU] += v.cpu_load();
            load[i][MEM] += v.memory_load_mib();
        }
    }
    for (i, n) in snap.nodes.iter().enumerate() {
        if let Some(u) = n.usage {
            load[i][CPU] = load[i][CPU].max(u.cpu_percent / 100.0 * n.cpu_cores as f64);
            load[i][MEM] = load[i][MEM].max(u.memory_used_mib as f64);
        }
    }
    Loads { cap, load }
}

/// Capacity-weighted mean use of `on`, fuller resource, percent.
fn mean(l: &Loads, on: &[usize]) -> f64 {
    let mut worst: f64 = 0.0;
    for r in [CPU, MEM] {
        let cap: f64 = on.iter().map(|&i| l.cap[i][r]).sum();
        let load: f64 = on.iter().map(|&i| l.load[i][r]).sum();
        if cap > EPS {
            worst = worst.max(load / cap);
        }
    }
    worst * 100.0
}

/// Plans one DPM run (the rule is at the top of this module). `snap` is the cluster as the
/// DRS plan of this run leaves it; `must_place` are VMs that must move but fit nowhere;
/// `wake_for` are (host in standby, VM name) for creates and starts that found no room on
/// the hosts on but fit that host.
pub fn plan(
    snap: &ClusterSnapshot,
    cfg: &DrsConfig,
    power: &HashMap<NodeId, PowerState>,
    state: &DpmState,
    must_place: &[VmId],
    wake_for: &[(NodeId, String)],
) -> DpmPlan {
    let d = &cfg.dpm;
    let l = loads(snap);
    let on: Vec<usize> = (0..snap.nodes.len())
        .filter(|&i| snap.nodes[i].accepts_vms() && !is_standby(power_of(power, snap.nodes[i].id)))
        .collect();
    let standby: Vec<usize> = (0..snap.nodes.len())
        .filter(|&i| power_of(power, snap.nodes[i].id) == PowerState::Standby)
        .collect();
    let transitioning = snap
        .nodes
        .iter()
        .any(|n| matches!(power_of(power, n.id), PowerState::PoweringOn | PowerState::PoweringOff));
    let mean_before = mean(&l, &on);
    // Hosts already waking count as capacity for the power-on decision (no second wake-up
    // for the same demand while the first host boots).
    let coming: Vec<usize> = (0..snap.nodes.len())
        .filter(|&i| power_of(power, snap.nodes[i].id) == PowerState::PoweringOn && !on.contains(&i))
        .collect();
    let on_or_coming: Vec<usize> = on.iter().chain(&coming).copied().collect();
    let demand = mean(&l, &on_or_coming);
    let mut out = DpmPlan {
        hosts_on_before: on.len(),
        hosts_on_after: on.len(),
        mean_before: round2(mean_before),
        mean_after: round2(mean_before),
        state: DpmState {
            low_streak: 0,
            last_mean: Some(mean_before),
        },
        ..DpmPlan::default()
    };
    if !d.enabled {
        out.why_not = Some("DPM is disabled".into());
        return out;
    }
    let band_mid = (d.power_off_below + d.power_on_above) / 2.0;
    let line = [
        cfg.threshold_cpu - cfg.hysteresis_margin,
        cfg.threshold_memory - cfg.hysteresis_margin,
    ];

    // ---- power on ----
    let mut wake: Vec<(usize, String)> = Vec::new();
    let mut by_size = standby.clone();
    by_size.sort_by(|&a, &b| {
        (l.cap[b][CPU], l.cap[b][MEM])
            .partial_cmp(&(l.cap[a][CPU], l.cap[a][MEM]))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    if !by_size.is_empty() {
        if on_or_coming.len() < d.min_hosts_on as usize {
            let want = d.min_hosts_on as usize - on_or_coming.len();
            for &i in by_size.iter().take(want) {
                wake.push((
                    i,
                    format!("fewer hosts on ({}) than the minimum of {}", on.len(), d.min_hosts_on),
                ));
            }
        } else if d.failover_hosts > 0 && coming.is_empty() && !protected(snap, power, &[]) {
            // The smallest wake-up that restores N+1, if any does.
            if let Some(&i) = by_size
                .iter()
                .take(MAX_WAKE_TRIES)
                .find(|&&i| protected(snap, power, &[i]))
            {
                wake.push((
                    i,
                    "HA failover capacity is short: the hosts on cannot absorb a host failure".into(),
                ));
            }
        } else if let Some((i, vm)) = must_place.iter().find_map(|vm| {
            let v = snap.vms.iter().position(|x| x.id == *vm)?;
            fits_standby(snap, &by_size, v).map(|i| (i, snap.vms[v].name.clone()))
        }) {
            wake.push((i, format!("VM {vm} must move and fits only on a host in standby")));
        } else if let Some((i, vm)) = wake_for
            .iter()
            .find_map(|(n, vm)| by_size.iter().find(|&&i| snap.nodes[i].id == *n).map(|&i| (i, vm)))
        {
            wake.push((
                i,
                format!("VM {vm} found no room on the hosts on and fits only on a host in standby"),
            ));
        } else {
            let growth = state.last_mean.map_or(0.0, |m| (mean_before - m).max(0.0));
            let hot = on.iter().find(|&&i| {
                [CPU, MEM]
                    .into_iter()
                    .any(|r| l.load[i][r] / l.cap[i][r].max(EPS) * 100.0 > line[r] + EPS)
            });
            let why = if demand > d.power_on_above {
                Some(format!(
                    "demand is up: hosts on are {demand:.0}% used on average, above {:.0}%",
                    d.power_on_above
                ))
            } else if demand + growth > d.power_on_above {
                Some(format!(
                    "demand is rising: {demand:.0}% on average, {:.0}% by the next run at this rate (above {:.0}%)",
                    demand + growth,
                    d.power_on_above
                ))
            } else if coming.is_empty() {
                hot.map(|&i| format!("{} stays above its relief line after DRS", snap.nodes[i].name))
            } else {
                None
            };
            if let Some(why) = why {
                // Enough hosts, largest first, to bring the projected mean to the band's middle.
                let mut with = on_or_coming.clone();
                let target = band_mid.min(d.power_on_above);
                for &i in &by_size {
                    with.push(i);
                    wake.push((i, why.clone()));
                    if mean(&l, &with) + growth <= target {
                        break;
                    }
                }
            }
        }
    }
    if !wake.is_empty() {
        let mut with = on.clone();
        for (i, why) in wake {
            with.push(i);
            out.power_on.push(PowerAction {
                node: snap.nodes[i].id,
                node_name: snap.nodes[i].name.clone(),
                reason: why,
                mandatory: true,
                priority: Priority::High,
            });
        }
        out.hosts_on_after = with.len();
        out.mean_after = round2(mean(&l, &with));
        out.why_not = Some("hosts are being powered on".into());
        return out;
    }

    // ---- power off ----
    if transitioning {
        out.why_not = Some("a host is powering on or off".into());
        return out;
    }
    if mean_before >= d.power_off_below {
        out.why_not = Some(format!(
            "hosts on are {mean_before:.0}% used on average, not below {:.0}%",
            d.power_off_below
        ));
        return out;
    }
    out.state.low_streak = state.low_streak + 1;
    if out.state.low_streak < d.hold_count {
        out.why_not = Some(format!(
            "low use seen in {} of {} runs",
            out.state.low_streak, d.hold_count
        ));
        return out;
    }
    let mut view = snap.clone();
    let mut occ = Occupancy::new(&view, &[]);
    let mut load = l.load.clone();
    let mut kept: Vec<usize> = on.clone();
    let mut gone: Vec<usize> = Vec::new();
    let mut cands: Vec<usize> = on
        .iter()
        .copied()
        .filter(|&i| !d.opt_out.iter().any(|n| *n == snap.nodes[i].name))
        .collect();
    let vms_on = |v: &ClusterSnapshot, i: usize| -> Vec<usize> {
        let id = v.nodes[i].id;
        (0..v.vms.len()).filter(|&k| v.vms[k].node == Some(id)).collect()
    };
    cands.sort_by_key(|&i| {
        let vs = vms_on(snap, i);
        (vs.len(), vs.iter().map(|&k| snap.vms[k].memory_mib).sum::<u64>(), i)
    });
    let mut last_reason = None;
    // A host that takes VMs in this run stays on (a VM moves once per run).
    let mut received: Vec<usize> = Vec::new();
    for h in cands.into_iter().take(MAX_CANDIDATES) {
        if received.contains(&h) {
            continue;
        }
        if kept.len() <= d.min_hosts_on as usize {
            last_reason.get_or_insert_with(|| format!("{} hosts on is the minimum", d.min_hosts_on));
            break;
        }
        let rest: Vec<usize> = kept.iter().copied().filter(|&i| i != h).collect();
        let l_rest = Loads {
            cap: l.cap.clone(),
            load: {
                let mut x = load.clone();
                for r in [CPU, MEM] {
                    let moved = load[h][r];
                    // The host's load spreads over the rest (for the mean only).
                    x[h][r] = 0.0;
                    if let Some(&first) = rest.first() {
                        x[first][r] += moved;
                    }
                }
                x
            },
        };
        let mean_rest = mean(&l_rest, &rest);
        if mean_rest > band_mid + EPS {
            last_reason.get_or_insert_with(|| {
                format!("without another host the rest would be {mean_rest:.0}% used (above {band_mid:.0}%)")
            });
            break;
        }
        // Evacuate h onto `rest`, biggest VM first, each to the host left least used.
        let mut trial_view = view.clone();
        let mut trial_occ = occ.clone();
        let mut trial_load = load.clone();
        let mut moves: Vec<(usize, usize)> = Vec::new();
        let mut vs = vms_on(&view, h);
        vs.sort_by(|&a, &b| view.vms[b].memory_mib.cmp(&view.vms[a].memory_mib).then(a.cmp(&b)));
        let mut ok = true;
        for v in vs {
            let vm = &view.vms[v];
            let lv = [vm.cpu_load(), vm.memory_load_mib()];
            let mut best: Option<(f64, usize)> = None;
            for &t in &rest {
                if trial_occ.check(&trial_view, t, &vm.req()).is_some() {
                    continue;
                }
                let heat = [CPU, MEM]
                    .into_iter()
                    .map(|r| (trial_load[t][r] + lv[r]) / l.cap[t][r].max(EPS) * 100.0 / line[r].max(EPS))
                    .fold(0.0, f64::max);
                if heat > 1.0 + EPS {
                    continue;
                }
                if best.is_none_or(|b| heat < b.0) {
                    best = Some((heat, t));
                }
            }
            let Some((_, t)) = best else {
                ok = false;
                last_reason.get_or_insert_with(|| {
                    format!(
                        "VM {} of {} fits on no other host within thresholds",
                        vm.name, snap.nodes[h].name
                    )
                });
                break;
            };
            let group = vm.placement.anti_affinity_group.as_deref();
            trial_occ.remove(h, vm.cpu_cores, vm.memory_mib, group);
            trial_occ.add(t, vm.cpu_cores, vm.memory_mib, group);
            for r in [CPU, MEM] {
                trial_load[h][r] -= lv[r];
                trial_load[t][r] += lv[r];
            }
            trial_view.vms[v].node = Some(trial_view.nodes[t].id);
            moves.push((v, t));
        }
        if !ok {
            continue;
        }
        // HA admission control on the hosts left.
        if d.failover_hosts > 0 {
            let mut ha_view = trial_view.clone();
            ha_view.nodes[h].phase = NodePhase::NotReady;
            for &g in &gone {
                ha_view.nodes[g].phase = NodePhase::NotReady;
            }
            if !protected(&ha_view, power, &[]) {
                last_reason.get_or_insert_with(|| {
                    format!(
                        "without {} HA admission control (N+{}) would not hold",
                        snap.nodes[h].name, d.failover_hosts
                    )
                });
                continue;
            }
        }
        // Commit.
        trial_load[h] = [0.0; 2];
        for (v, t) in moves {
            received.push(t);
            let vm = &snap.vms[v];
            let mem = vm.memory_load_mib().round() as u64;
            let bw = cfg.migration_bandwidth_mib_per_second.max(1) as u64;
            let (pct, _) = node_pct(&l.cap[h], &load[h]);
            out.evacuations.push(PlannedMove {
                vm: vm.id,
                vm_name: vm.name.clone(),
                source: snap.nodes[h].id,
                source_name: snap.nodes[h].name.clone(),
                target: snap.nodes[t].id,
                target_name: snap.nodes[t].name.clone(),
                kind: MoveKind::Consolidate,
                priority: Priority::Low,
                mandatory: false,
                reason: format!(
                    "consolidate: {} ({pct:.0}% used) goes to standby; hosts on are {mean_before:.0}% used on average",
                    snap.nodes[h].name
                ),
                impact_cpu: round2(vm.cpu_load() / l.cap[h][CPU].max(EPS) * 100.0),
                impact_memory: round2(vm.memory_load_mib() / l.cap[h][MEM].max(EPS) * 100.0),
                memory_mib: mem,
                estimated_duration_secs: if vm.running { mem.div_ceil(bw) + 1 } else { 1 },
            });
        }
        view = trial_view;
        view.nodes[h].schedulable = false;
        occ = trial_occ;
        load = trial_load;
        kept = rest;
        gone.push(h);
        out.power_off.push(PowerAction {
            node: snap.nodes[h].id,
            node_name: snap.nodes[h].name.clone(),
            reason: format!(
                "consolidate: hosts on are {mean_before:.0}% used on average (below {:.0}%); \
                 the others take its VMs within thresholds and keep N+{}",
                d.power_off_below, d.failover_hosts
            ),
            mandatory: false,
            priority: Priority::Low,
        });
    }
    let final_loads = Loads {
        cap: l.cap.clone(),
        load,
    };
    out.hosts_on_after = kept.len();
    out.mean_after = round2(mean(&final_loads, &kept));
    if out.power_off.is_empty() {
        out.why_not = last_reason.or(Some("no host can be emptied".into()));
    }
    out
}

/// HA admission control over the hosts on, with `extra` standby hosts woken.
fn protected(snap: &ClusterSnapshot, power: &HashMap<NodeId, PowerState>, extra: &[usize]) -> bool {
    let mut v = snap.clone();
    for (i, n) in v.nodes.iter_mut().enumerate() {
        if extra.contains(&i) {
            n.phase = NodePhase::Ready;
            n.schedulable = true;
        } else if is_standby(power_of(power, n.id)) {
            n.phase = NodePhase::NotReady;
        }
    }
    admission(&v).protected
}

/// The first of `standby` (largest first) that VM `v` would fit on, once woken.
fn fits_standby(snap: &ClusterSnapshot, standby: &[usize], v: usize) -> Option<usize> {
    let mut view = snap.clone();
    for &i in standby {
        view.nodes[i].phase = NodePhase::Ready;
        view.nodes[i].schedulable = true;
    }
    let occ = Occupancy::new(&view, &[view.vms[v].id]);
    let req = view.vms[v].req();
    standby.iter().copied().find(|&i| occ.check(&view, i, &req).is_none())
}

fn node_pct(cap: &[f64; 2], load: &[f64; 2]) -> (f64, f64) {
    let c = load[CPU] / cap[CPU].max(EPS) * 100.0;
    let m = load[MEM] / cap[MEM].max(EPS) * 100.0;
    (c.max(m), c.min(m))
}

/// Estimated power saved by `hosts_off` hosts in standby, watts.
pub fn watts_saved(cfg: &DrsConfig, hosts_off: usize) -> f64 {
    cfg.dpm.watts_per_host * hosts_off as f64
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

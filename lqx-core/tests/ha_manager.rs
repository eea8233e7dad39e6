//! The HA manager over a real store and simulated hosts: host death, blips, storms, manual
//! failover, and the leader epoch fencing every leader-only write.
//!
//! These tests run on tokio's real clock with HA timings in milliseconds (the store is SQLite
//! on a worker thread, which paused time would skip over: the clock would jump to the next
//! timer during every database call and distort exactly the bounds under test). Every wait is
//! bounded and every bound is the documented one (`HaConfig::failover_bound`).

use std::{sync::Arc, time::Duration};

use lqx_core::{
    ErrorKind,
    compute::{Compute, CreateVm, Hosts, NodeRegistration},
    driver::{
        Hypervisor,
        sim::{SimConfig, SimHypervisor},
    },
    events::{EventBus, EventBusConfig},
    ha::{
        HaConfig, NodeHealth,
        manager::{EventAlerts, HaManager, HaManagerOptions, HaStatusReport},
    },
    leader::{Epoch, LeaderConfig, LeaderHandle},
    model::{AuditFilter, HaPolicy, NodeId, ProjectId, RestartPriority, Vm, VmId, VmSpec, VmState},
    store::Store,
};
use tokio::time::Instant;

/// Fast but valid timings: timed out after 600 ms, fenced 900 ms after the last heartbeat.
fn fast() -> HaConfig {
    HaConfig {
        check_interval: Duration::from_millis(200),
        heartbeat_timeout: Duration::from_millis(600),
        failure_threshold: 3,
        heartbeat_interval: Duration::from_millis(100),
        lease_ttl: Duration::from_millis(800),
        self_fence_after: Duration::from_millis(700),
        fence_margin: Duration::from_millis(100),
        ..HaConfig::default()
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    compute: Compute,
    sims: Vec<SimHypervisor>,
    nodes: Vec<NodeId>,
    ha: HaManager,
    alerts: Arc<EventAlerts>,
    leader: LeaderHandle,
}

impl Cluster {
    async fn new(n: usize, config: HaConfig) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("lqx.db").to_str().unwrap()).await.unwrap();
        let events = EventBus::new(EventBusConfig::default());
        let compute = Compute::new(store.clone(), Hosts::default(), events.clone());
        let mut sims = Vec::new();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let uri = format!("sim://ha-test-{}-node-{i}", uuid::Uuid::new_v4().simple());
            let sim = SimHypervisor::new(&uri, SimConfig::with_capacity(16, 32_768)).unwrap();
            let node = compute
                .attach_node(NodeRegistration::new(format!("node-{i}"), uri), Arc::new(sim.clone()))
                .await
                .unwrap();
            sims.push(sim);
            nodes.push(node.id);
        }
        let leader = LeaderHandle::start(
            store,
            LeaderConfig {
                lease_ttl: Duration::from_secs(2),
            },
            "test-replica",
        );
        leader
            .wait_leading(Duration::from_secs(5))
            .await
            .expect("the only replica leads");
        let alerts = Arc::new(EventAlerts::new(events));
        let ha = HaManager::start(
            compute.clone(),
            HaManagerOptions {
                config,
                leader: leader.clone(),
                agents: None,
                alerts: alerts.clone(),
            },
        )
        .unwrap();
        let c = Cluster {
            _dir: dir,
            compute,
            sims,
            nodes,
            ha,
            alerts,
            leader,
        };
        c.wait_until(Duration::from_secs(5), "the manager checks", |s| {
            s.nodes.len() == n && s.live
        })
        .await;
        c
    }

    async fn vm(&self, name: &str, node: usize, ha: bool, priority: RestartPriority) -> Vm {
        self.vm_sized(name, node, ha, priority, 2048).await.unwrap()
    }

    async fn vm_sized(
        &self,
        name: &str,
        node: usize,
        ha: bool,
        priority: RestartPriority,
        memory_mib: u64,
    ) -> lqx_core::Result<Vm> {
        self.compute
            .create_vm(CreateVm {
                name: name.into(),
                project_id: ProjectId::DEFAULT,
                description: String::new(),
                labels: Default::default(),
                spec: VmSpec {
                    cpu_cores: 2,
                    memory_mib,
                    disks: vec![],
                    nics: vec![],
                    ha: HaPolicy {
                        enabled: ha,
                        priority,
                        restart_delay_secs: 0,
                        max_restarts: 0,
                    },
                    placement: Default::default(),
                },
                node: Some(self.nodes[node]),
                start: true,
                request_id: None,
            })
            .await
    }

    async fn get(&self, vm: VmId) -> Vm {
        self.compute.store.get_vm(vm).await.unwrap()
    }

    /// Hosts (among the available ones) on which the VM's domain is active.
    async fn running_on(&self, vm: VmId) -> Vec<usize> {
        let mut out = vec![];
        for (i, s) in self.sims.iter().enumerate() {
            if let Ok(st) = s.domain_state(vm).await
                && st.is_active()
            {
                out.push(i);
            }
        }
        out
    }

    async fn wait_until(&self, limit: Duration, what: &str, f: impl Fn(&HaStatusReport) -> bool) -> HaStatusReport {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.ha.status().await.unwrap();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {what}; last status {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `n` more HA checks (each stamps `last_check`): a check that something does
    /// not happen then covers them, however slow the machine.
    async fn checks(&self, n: usize) {
        let mut last = self.ha.status().await.unwrap().last_check;
        for i in 0..n {
            let s = self
                .wait_until(Duration::from_secs(20), &format!("HA check {} of {n}", i + 1), |s| {
                    s.last_check > last
                })
                .await;
            last = s.last_check;
        }
    }

    fn health(s: &HaStatusReport, node: NodeId) -> NodeHealth {
        s.nodes.iter().find(|n| n.node == node).map(|n| n.health).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_host_vms_restart_elsewhere_exactly_once_within_the_bound() {
    let cfg = fast();
    let bound = cfg.failover_bound(Duration::ZERO);
    let c = Cluster::new(3, cfg).await;
    let db = c.vm("db-1", 0, true, RestartPriority::Highest).await;
    let web = c.vm("web-1", 0, true, RestartPriority::Low).await;
    let scratch = c.vm("scratch-1", 0, false, RestartPriority::Medium).await;
    assert_eq!(c.running_on(db.id).await, vec![0]);

    // When node-1's lease was last renewed, at the latest (its age as of a moment no earlier
    // than `asked`). The probe that renews it may lag its interval on a loaded machine, so
    // the fence point is measured from here, not from the power loss.
    let asked = Instant::now();
    let age =
        c.ha.status()
            .await
            .unwrap()
            .nodes
            .iter()
            .find(|n| n.node == c.nodes[0])
            .unwrap()
            .lease_age_ms;
    let renewed_by = asked - Duration::from_millis(age.expect("node-1 holds a lease"));

    // Power loss: the host stops answering.
    c.sims[0].set_available(false);
    let died = Instant::now();
    let deadline = died + bound;
    loop {
        let a = c.get(db.id).await;
        let b = c.get(web.id).await;
        if a.status.state == VmState::Running
            && b.status.state == VmState::Running
            && a.status.node_id != Some(c.nodes[0])
            && b.status.node_id != Some(c.nodes[0])
        {
            break;
        }
        assert!(
            Instant::now() < deadline + Duration::from_millis(300),
            "HA VMs not running elsewhere within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = died.elapsed();
    assert!(
        took <= bound + Duration::from_millis(300),
        "failover took {took:?}, bound {bound:?}"
    );
    // Never before the lease plus the fence margin after the last renewal (which was no
    // earlier than `renewed_by`; the 5 ms cover the millisecond rounding of the lease age).
    let since_renewal = renewed_by.elapsed();
    assert!(
        since_renewal + Duration::from_millis(5) >= fast().lease_ttl + fast().fence_margin,
        "failover {since_renewal:?} after the last lease renewal"
    );
    for vm in [db.id, web.id] {
        let v = c.get(vm).await;
        let on = c.running_on(vm).await;
        assert_eq!(on.len(), 1, "{} runs on exactly one reachable host", v.name);
        assert_eq!(Some(c.nodes[on[0]]), v.status.node_id);
        assert_eq!(v.status.restart_count, 1);
    }
    assert_eq!(
        c.get(scratch.id).await.status.node_id,
        Some(c.nodes[0]),
        "non-HA VMs stay"
    );
    let s = c.ha.status().await.unwrap();
    assert_eq!(Cluster::health(&s, c.nodes[0]), NodeHealth::Failed);
    assert!(s.nodes.iter().find(|n| n.node == c.nodes[0]).unwrap().fenced);
    let open = c.alerts.open();
    assert!(
        open.iter()
            .any(|a| a.condition == "node.failed" && a.source_id == c.nodes[0].to_string())
    );
    let journal = c.compute.store.ha_journal(100).await.unwrap();
    let epoch = c.leader.current().unwrap().number;
    assert_eq!(journal.iter().filter(|j| j.kind == "vm.restarted").count(), 2);
    assert!(journal.iter().all(|j| j.epoch == epoch));
    // Each restart is in the audit log too, under the system actor.
    let audit = c
        .compute
        .store
        .list_audit(&AuditFilter::default(), 100, "")
        .await
        .unwrap()
        .entries;
    let restarts: Vec<_> = audit.iter().filter(|e| e.action == "ha/vm.restarted").collect();
    assert_eq!(restarts.len(), 2, "{audit:?}");
    assert!(
        restarts
            .iter()
            .all(|e| e.actor.display_name() == "system:ha" && e.resource_type == "vm")
    );

    // The host comes back: its stale copies are destroyed before it counts as healthy.
    c.sims[0].set_available(true);
    c.wait_until(Duration::from_secs(3), "node-1 healthy again", |s| {
        Cluster::health(s, c.nodes[0]) == NodeHealth::Healthy
    })
    .await;
    for vm in [db.id, web.id] {
        assert_eq!(c.running_on(vm).await.len(), 1, "exactly once after the host returned");
    }
    assert!(
        c.sims[0].domain_state(db.id).await.is_err(),
        "the fenced copy is undefined"
    );
    assert!(c.running_on(scratch.id).await == vec![0], "its own VM keeps running");
    assert!(
        !c.alerts.open().iter().any(|a| a.condition == "node.failed"),
        "recovery resolves the alert"
    );
    c.checks(3).await;
    assert_eq!(c.get(db.id).await.status.restart_count, 1, "no second restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blip_shorter_than_the_timeout_restarts_nothing() {
    let c = Cluster::new(3, fast()).await;
    let vm = c.vm("db-1", 0, true, RestartPriority::High).await;
    c.sims[0].set_available(false);
    // The blip's length: under the 600 ms heartbeat timeout.
    tokio::time::sleep(Duration::from_millis(350)).await;
    c.sims[0].set_available(true);
    // Time past the failover bound: a blip taken for a failure would have moved it by then.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let v = c.get(vm.id).await;
    assert_eq!(v.status.node_id, Some(c.nodes[0]));
    assert_eq!(v.status.restart_count, 0);
    assert_eq!(c.running_on(vm.id).await, vec![0]);
    let s = c.ha.status().await.unwrap();
    assert_eq!(Cluster::health(&s, c.nodes[0]), NodeHealth::Healthy);
    assert!(
        c.compute
            .store
            .ha_journal(100)
            .await
            .unwrap()
            .iter()
            .all(|j| j.kind != "vm.restarted")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_pauses_failover_with_a_critical_alert() {
    let c = Cluster::new(3, fast()).await;
    let a = c.vm("a-1", 0, true, RestartPriority::High).await;
    let b = c.vm("b-1", 1, true, RestartPriority::High).await;
    c.sims[0].set_available(false);
    c.sims[1].set_available(false);
    let s = c
        .wait_until(Duration::from_secs(3), "failover paused", |s| {
            s.failover_paused.is_some()
        })
        .await;
    assert!(
        s.failover_paused
            .as_deref()
            .unwrap()
            .contains("2 of 3 nodes unreachable")
    );
    // The status shows the pause as soon as it is decided; the alert follows it.
    let mut alert = None;
    for _ in 0..60 {
        alert = c
            .alerts
            .open()
            .into_iter()
            .find(|a| a.condition == "cluster.failover_paused");
        if alert.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alert = alert.expect("cluster alert");
    assert_eq!(alert.severity, lqx_core::model::AlertSeverity::Critical);
    // Well past the bound (time must pass for that): nothing moved, nodes unreachable but not failed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.get(a.id).await.status.node_id, Some(c.nodes[0]));
    assert_eq!(c.get(b.id).await.status.node_id, Some(c.nodes[1]));
    let s = c.ha.status().await.unwrap();
    assert_eq!(Cluster::health(&s, c.nodes[0]), NodeHealth::Unreachable);
    // The network heals: the pause ends and its alert is resolved, nothing restarted.
    c.sims[0].set_available(true);
    c.sims[1].set_available(true);
    c.wait_until(Duration::from_secs(3), "pause over", |s| s.failover_paused.is_none())
        .await;
    assert!(!c.alerts.open().iter().any(|a| a.condition == "cluster.failover_paused"));
    assert_eq!(c.get(a.id).await.status.restart_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_needs_confirmation_and_a_silent_host() {
    let c = Cluster::new(2, HaConfig::default()).await;
    let vm = c.vm("db-1", 0, true, RestartPriority::High).await;
    let e = c.ha.manual_failover("node-1", false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    // Heard at every check so far (Cluster::new waited for one): refused even with confirmation.
    let e = c.ha.manual_failover("node-1", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{e}");
    // Powered off: the operator's word is enough once one check interval passed in silence,
    // well before the lease would prove it (350 ms here against 900 ms).
    drop(c);
    let c = Cluster::new(2, fast()).await;
    let vm2 = c.vm("db-2", 0, true, RestartPriority::High).await;
    c.sims[0].set_available(false);
    // The silence must last one check interval (200 ms).
    tokio::time::sleep(Duration::from_millis(350)).await;
    let out = c.ha.manual_failover("node-1", true).await.unwrap();
    assert_eq!(out.placements.len(), 1);
    assert_eq!(out.placements[0].vm, vm2.id);
    assert_eq!(out.placements[0].to, c.nodes[1]);
    let s = c.ha.status().await.unwrap();
    assert_eq!(Cluster::health(&s, c.nodes[0]), NodeHealth::Failed);
    assert_eq!(c.get(vm2.id).await.status.node_id, Some(c.nodes[1]));
    let _ = vm;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_epoch_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("lqx.db").to_str().unwrap()).await.unwrap();
    let ttl = Duration::from_millis(400);
    let a = store
        .leader_acquire("replica-a", ttl)
        .await
        .unwrap()
        .expect("free lease");
    assert_eq!(store.leader_acquire("replica-b", ttl).await.unwrap(), None, "held by a");
    assert_eq!(
        store.leader_acquire("replica-a", ttl).await.unwrap(),
        Some(a),
        "renewal keeps the epoch"
    );
    let old = Epoch {
        number: a,
        holder: "replica-a".into(),
    };
    store.ha_state_put("k", "from a", &old).await.unwrap();
    // a stops renewing (paused); b takes over once the lease has expired by the DB's clock.
    // (A sleep: the lease must expire.)
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let b = store
        .leader_acquire("replica-b", ttl)
        .await
        .unwrap()
        .expect("expired lease");
    assert_eq!(b, a + 1, "a new holder is a new epoch");
    let new = Epoch {
        number: b,
        holder: "replica-b".into(),
    };
    // a resumes: every kind of leader-only write it tries is refused.
    let e = store.ha_state_put("k", "stale", &old).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.starts_with("not the leader"));
    assert!(store.ha_journal_append(&old, "vm.restarted", "x", "").await.is_err());
    assert!(store.leader_check(&old).await.is_err());
    assert_eq!(
        store.leader_acquire("replica-a", ttl).await.unwrap(),
        None,
        "b holds it now"
    );
    store.ha_state_put("k", "from b", &new).await.unwrap();
    let row = store.ha_state_get("k").await.unwrap().unwrap();
    assert_eq!((row.value.as_str(), row.epoch), ("from b", b));
    assert!(store.ha_journal(10).await.unwrap().is_empty());
    // Same holder after its own lease lapsed (a sleep: it must lapse): a new term too.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(store.leader_acquire("replica-b", ttl).await.unwrap(), Some(b + 1));
    let r = store.leader_row().await.unwrap();
    assert!(r.is_held() && r.holder == "replica-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_refuses_failover_on_a_replica_that_does_not_lead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lqx.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    // Another replica holds the lease for a long time.
    store
        .leader_acquire("other-replica", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let events = EventBus::new(EventBusConfig::default());
    let compute = Compute::new(store.clone(), Hosts::default(), events.clone());
    let leader = LeaderHandle::start(
        store,
        LeaderConfig {
            lease_ttl: Duration::from_secs(2),
        },
        "follower",
    );
    let ha = HaManager::start(
        compute,
        HaManagerOptions {
            config: fast(),
            leader: leader.clone(),
            agents: None,
            alerts: Arc::new(EventAlerts::new(events)),
        },
    )
    .unwrap();
    // Time for its election attempts (none can win while the other holds the lease).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!leader.is_leader());
    assert_eq!(ha.heartbeat_gate().unwrap_err().kind, ErrorKind::Unavailable);
    let e = ha.manual_failover("node-1", true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    let s = ha.status().await.unwrap();
    assert_eq!(s.leader, "other-replica");
    assert!(!s.live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_control_keeps_room_for_one_host_failure() {
    // Two nodes of 32 GiB. (Admission control is process-wide; the clusters of the other
    // tests in this binary stay N+1 protected, so turning it on does not disturb them.)
    let c = Cluster::new(
        2,
        HaConfig {
            admission_control: true,
            ..fast()
        },
    )
    .await;
    c.vm_sized("db-1", 0, true, RestartPriority::High, 20_000)
        .await
        .unwrap();
    // Small, not HA: node-2 can still take db-1 if node-1 dies.
    c.vm_sized("tmp-1", 1, false, RestartPriority::Low, 1_024)
        .await
        .unwrap();
    // Another big HA VM would leave no room to absorb either node's loss.
    let e = c
        .vm_sized("db-2", 1, true, RestartPriority::High, 20_000)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{e}");
    assert!(e.message.contains("N+1"), "{e}");
    assert!(
        c.compute.store.resolve_vm("db-2", ProjectId::DEFAULT).await.is_err(),
        "nothing left behind"
    );
    let s = c
        .wait_until(Duration::from_secs(2), "status", |s| s.protected_vms == 1)
        .await;
    assert!(s.cluster_protected);
}

/// HA admission names the HA VMs whose host a hung agent would not fence (agent-level fence
/// only, or none), not just counts them; a host watchdog or a fence process protects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_status_names_the_vms_protected_only_by_the_agent_level_fence() {
    use lqx_core::fence::{Fencing, FencingLevel};
    let c = Cluster::new(3, fast()).await;
    c.vm("db-1", 0, true, RestartPriority::High).await;
    c.vm("scratch-1", 0, false, RestartPriority::Medium).await;
    c.vm("web-1", 1, true, RestartPriority::High).await;
    c.vm("cache-1", 2, true, RestartPriority::High).await;
    // What the agents' heartbeats report.
    c.compute
        .record_agent_report(c.nodes[0], Fencing::new(FencingLevel::AgentOnly, "no fence process"));
    c.compute
        .record_agent_report(c.nodes[1], Fencing::new(FencingLevel::FenceProcess, "no host watchdog"));
    c.compute.record_agent_report(
        c.nodes[2],
        Fencing::new(FencingLevel::HostWatchdog, "fence process and host watchdog"),
    );
    let s = c
        .wait_until(Duration::from_secs(5), "three HA VMs counted", |s| s.protected_vms == 3)
        .await;
    let named: Vec<(&str, &str, FencingLevel)> = s
        .weakly_fenced
        .iter()
        .map(|w| (w.vm_name.as_str(), w.node_name.as_str(), w.level))
        .collect();
    assert_eq!(named, vec![("db-1", "node-1", FencingLevel::AgentOnly)], "{s:#?}");
    assert_eq!(s.degraded_fencing_vms(), 2, "agent-only and fence-process-only nodes");
    let n0 = s.nodes.iter().find(|n| n.node == c.nodes[0]).unwrap();
    assert_eq!(n0.fencing.as_ref().map(|f| f.level), Some(FencingLevel::AgentOnly));

    // libvirt hangs on the fence-process host: nothing fences it now.
    c.compute.record_agent_report(
        c.nodes[1],
        Fencing::new(FencingLevel::FenceProcess, "x").with_libvirt_hung("list: 5s"),
    );
    let s = c.ha.status().await.unwrap();
    let names: Vec<&str> = s.weakly_fenced.iter().map(|w| w.vm_name.as_str()).collect();
    assert_eq!(names, vec!["db-1", "web-1"]);
    assert_eq!(s.weakly_fenced[1].level, FencingLevel::None);
}

/// A host lqx put in standby is silent on purpose: never declared failed (no fencing wait, no
/// storm), and no restart lands on it; a host that really dies at the same time still fails
/// over, onto the host that is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_host_is_never_failed_and_takes_no_restarts() {
    let c = Cluster::new(3, fast()).await;
    let vm = c.vm("db-1", 1, true, RestartPriority::High).await;
    let mut n = c.compute.store.get_node(c.nodes[2]).await.unwrap();
    n.power = lqx_core::power::PowerState::Standby;
    c.compute.store.update_node(&n).await.unwrap();
    // A check that began after the write has read it: node-3 is parked.
    c.checks(2).await;
    c.sims[2].set_available(false);
    c.sims[1].set_available(false);
    let s = c
        .wait_until(fast().failover_bound(Duration::ZERO) * 3, "node-2 failed", |s| {
            Cluster::health(s, c.nodes[1]) == NodeHealth::Failed
        })
        .await;
    assert_eq!(Cluster::health(&s, c.nodes[2]), NodeHealth::Healthy, "{s:#?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.get(vm.id).await.status.node_id != Some(c.nodes[0]) {
        assert!(Instant::now() < deadline, "db-1 not restarted on node-1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long after (time must pass beyond the failover bound): the standby host is still not failed.
    tokio::time::sleep(fast().failover_bound(Duration::ZERO) * 2).await;
    let s = c.ha.status().await.unwrap();
    assert_eq!(Cluster::health(&s, c.nodes[2]), NodeHealth::Healthy, "{s:#?}");
    assert!(s.failover_paused.is_none(), "no storm: {s:#?}");
}

//! Agents that follow the leader, end to end on PostgreSQL: two `lqx-server` replicas share
//! one database, a real `lqx-server agent` (libvirt test driver) is given both URLs and runs
//! an HA VM. The leader is stopped past its lease (SIGSTOP), then killed (kill -9): each time
//! the other replica takes over, the agent follows it within a heartbeat interval, never
//! fences, and the VM is never restarted.

use lqx_e2e::{Engine, Options, Proc, Server, bin};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const VMS: &str = "limiquantix.compute.v1.VMService";
const NODES: &str = "limiquantix.compute.v1.NodeService";
const HA: &str = "limiquantix.ha.v1.HAService";

/// Leader lease 3 s; a leader change (3 s + 1 s renew + agent retry and call timeout + two
/// heartbeats = 6.5 s) fits in self_fence_after (8 s), as start-up checks.
const CONFIG: &str = "\
leader:
  lease_ttl: 3s
ha:
  check_interval: 1s
  heartbeat_timeout: 3s
  failure_threshold: 3
  heartbeat_interval: 500ms
  lease_ttl: 10s
  self_fence_after: 8s
  fence_margin: 500ms
";
const INTERVAL: Duration = Duration::from_millis(500);

async fn replica(url: &str) -> Server {
    let mut s = Server::start(
        Engine::Sqlite, // the database is passed here
        Options {
            args: vec!["--database-url".into(), url.into()],
            config: Some(CONFIG.into()),
            env: vec![("NO_COLOR".into(), "1".into())],
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    s
}

async fn ok(s: &Server, method: &str, body: Value) -> Value {
    let (st, v) = s.call(method, body.clone()).await;
    assert_eq!(st, 200, "{method} {body}: {v}");
    v
}

/// The pid of the replica `s` says leads.
async fn leader_pid(s: &Server) -> Option<u32> {
    let (st, v) = s.call(&format!("{HA}/GetHAStatus"), json!({})).await;
    if st != 200 {
        return None;
    }
    v["leader"].as_str()?.split('/').nth(1)?.parse().ok()
}

/// Waits until `s` leads; returns when it was first seen leading.
async fn wait_leads(s: &Server, limit: Duration) -> Instant {
    let start = Instant::now();
    loop {
        if leader_pid(s).await == Some(s.pid()) {
            return Instant::now();
        }
        assert!(start.elapsed() < limit, "pid {} did not lead within {limit:?}", s.pid());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When `s` (the leader) records a heartbeat of `node` sent after `after` (wall clock).
async fn wait_heartbeat(s: &Server, node: &str, after: chrono::DateTime<chrono::Utc>, limit: Duration) -> Instant {
    let start = Instant::now();
    loop {
        let (st, v) = s.call(&format!("{NODES}/GetNode"), json!({"id": node})).await;
        if st == 200
            && let Some(t) = v["lastHeartbeat"].as_str()
            && chrono::DateTime::parse_from_rfc3339(t).is_ok_and(|t| t > after)
        {
            return Instant::now();
        }
        assert!(start.elapsed() < limit, "no heartbeat from {node} at pid {}", s.pid());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn vm_intact(s: &Server) {
    let v = ok(s, &format!("{VMS}/GetVM"), json!({"id": "steady"})).await;
    assert_eq!(v["status"]["state"], "VM_STATE_RUNNING", "{v}");
    assert_eq!(v["status"]["nodeName"], "edge-1", "{v}");
    assert_eq!(v["status"]["restartCount"].as_u64().unwrap_or(0), 0, "restarted: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_follow_the_leader_through_pause_and_kill_on_postgres() {
    let Some(admin) = lqx_core::store::testing::postgres_admin_url() else {
        eprintln!("skipped: LQX_TEST_DATABASE_URL is not set");
        return;
    };
    let url = lqx_core::store::testing::fresh_postgres_database(&admin).await.unwrap();
    let a = replica(&url).await;
    let b = replica(&url).await;
    let first = wait_leads(&a, Duration::from_secs(10)).await;
    let _ = first;
    let (leader, other) = (a, b);

    let tok = ok(
        &leader,
        &format!("{NODES}/CreateJoinToken"),
        json!({"nodeName": "edge-1"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("edge-1.xml");
    std::fs::write(
        &xml,
        lqx_core::driver::xml::test_node_xml(&lqx_core::driver::xml::TestNode {
            cpus: 8,
            memory_mib: 16_384,
            pool_capacity_gib: 100,
        }),
    )
    .unwrap();
    let mut cmd = Command::new(bin("lqx-server"));
    cmd.arg("agent")
        // The replica that does not lead first: the agent is redirected at its first heartbeat.
        .args(["--control-plane", &format!("{},{}", other.addr, leader.addr)])
        .args(["--libvirt", &format!("test://{}", xml.display()), "--name", "edge-1"])
        .args(["--heartbeat-interval", "500ms"])
        .arg("--data-dir")
        .arg(dir.path().join("agent"))
        .env("LQX_JOIN_TOKEN", tok["token"].as_str().unwrap())
        .env("LQX_LOG", "info")
        .env("NO_COLOR", "1");
    let agent = Proc::spawn("agent", cmd);
    let t = chrono::Utc::now();
    wait_heartbeat(&leader, "edge-1", t, Duration::from_secs(20)).await;
    let start = Instant::now();
    while !agent.logs().contains("following the control plane's leader") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not redirected:\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let vm = ok(
        &leader,
        &format!("{VMS}/CreateVM"),
        json!({"name": "steady", "node": "edge-1", "start": true,
               "spec": {"cpuCores": 1, "memoryMib": 256, "ha": {"enabled": true}}}),
    )
    .await;
    assert_eq!(vm["status"]["state"], "VM_STATE_RUNNING", "{vm}");

    // 1. SIGSTOP the leader past its lease: the other takes over; the agent follows.
    let stopped_at = chrono::Utc::now();
    let t0 = Instant::now();
    Command::new("kill")
        .args(["-STOP", &leader.pid().to_string()])
        .status()
        .unwrap();
    let took_over = wait_leads(&other, Duration::from_secs(15)).await;
    let renewed = wait_heartbeat(&other, "edge-1", stopped_at, Duration::from_secs(15)).await;
    let (takeover, follow) = (took_over - t0, renewed.saturating_duration_since(took_over));
    eprintln!(
        "SIGSTOP: takeover after {takeover:?}; agent renewed by the new leader {follow:?} after it was seen leading"
    );
    assert!(
        follow <= INTERVAL + Duration::from_millis(600),
        "agent took {follow:?} to follow"
    );
    Command::new("kill")
        .args(["-CONT", &leader.pid().to_string()])
        .status()
        .unwrap();
    // Two heartbeats after the resume: the resumed replica disturbed nothing.
    let resumed = chrono::Utc::now();
    wait_heartbeat(&other, "edge-1", resumed, Duration::from_secs(15)).await;
    wait_heartbeat(&other, "edge-1", chrono::Utc::now(), Duration::from_secs(15)).await;
    vm_intact(&other).await;

    // 2. kill -9 the new leader: the first replica (resumed, no longer leading) takes over.
    let killed_at = chrono::Utc::now();
    let t0 = Instant::now();
    Command::new("kill")
        .args(["-KILL", &other.pid().to_string()])
        .status()
        .unwrap();
    let took_over = wait_leads(&leader, Duration::from_secs(15)).await;
    let renewed = wait_heartbeat(&leader, "edge-1", killed_at, Duration::from_secs(15)).await;
    let (takeover, follow) = (took_over - t0, renewed.saturating_duration_since(took_over));
    eprintln!(
        "kill -9: takeover after {takeover:?}; agent renewed by the new leader {follow:?} after it was seen leading"
    );
    assert!(
        follow <= INTERVAL + Duration::from_millis(600),
        "agent took {follow:?} to follow"
    );
    wait_heartbeat(&leader, "edge-1", chrono::Utc::now(), Duration::from_secs(15)).await;
    wait_heartbeat(&leader, "edge-1", chrono::Utc::now(), Duration::from_secs(15)).await;
    vm_intact(&leader).await;

    let logs = agent.logs();
    assert!(!logs.contains("self-fencing"), "the agent fenced:\n{logs}");
    assert!(!logs.contains("must_fence"), "{logs}");
    drop(other);
}

//! HA end to end: leader election between real `lqx-server` processes sharing one
//! PostgreSQL database (kill -9 the leader; SIGSTOP it past its lease and resume it: none of
//! its leader-only writes is accepted), HA status and manual failover over Connect JSON, and
//! `lqx ha simulate` through the real `lqx` binary.

use lqx_core::leader::Epoch;
use lqx_core::store::Store;
use lqx_e2e::{Engine, Options, Server, bin, engines};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const HA: &str = "limiquantix.ha.v1.HAService";

/// Leader lease 3 s (renewed every second); HA checks every second.
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
const LEASE: Duration = Duration::from_secs(3);

const CLUSTER: &str = "
nodes:
  - {name: node-1, cpu_cores: 32, memory_mib: 65536}
  - {name: node-2, cpu_cores: 16, memory_mib: 32768}
  - {name: node-3, cpu_cores: 8, memory_mib: 16384}
vms:
  - {name: db-1, node: node-1, cpu_cores: 8, memory_mib: 16384, ha: {enabled: true, priority: highest}}
  - {name: web-1, node: node-1, cpu_cores: 4, memory_mib: 8192, ha: {enabled: true, priority: low}}
  - {name: big-1, node: node-1, cpu_cores: 16, memory_mib: 30000, ha: {enabled: true, priority: medium}}
  - {name: tmp-1, node: node-1, cpu_cores: 1, memory_mib: 1024}
  - {name: app-2, node: node-2, cpu_cores: 4, memory_mib: 8192}
";

/// A replica on `database_url` with its own data directory.
async fn replica(database_url: &str, config: &std::path::Path) -> Server {
    let mut s = Server::start(
        Engine::Sqlite, // the harness adds no database; the shared one is passed here
        Options {
            args: vec![
                "--database-url".into(),
                database_url.into(),
                "--config".into(),
                config.display().to_string(),
            ],
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    assert!(s.token().is_some(), "login failed:\n{}", s.logs());
    s
}

async fn status(s: &Server) -> Value {
    let (code, v) = s.call(&format!("{HA}/GetHAStatus"), json!({})).await;
    assert_eq!(code, 200, "{v}");
    v
}

/// The lease holder's pid and epoch as `s` reports them.
async fn leader(s: &Server) -> Option<(u32, u64, String)> {
    let v = status(s).await;
    let holder = v["leader"].as_str().unwrap_or_default().to_string();
    let pid = holder.split('/').nth(1)?.parse().ok()?;
    let epoch = v["leaderEpoch"].as_str().and_then(|e| e.parse().ok()).unwrap_or(0);
    Some((pid, epoch, holder))
}

async fn wait_leader(s: &Server, pid: u32, limit: Duration) -> (u64, String, Duration) {
    let start = Instant::now();
    loop {
        if let Some((p, epoch, holder)) = leader(s).await
            && p == pid
        {
            return (epoch, holder, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "pid {pid} did not lead within {limit:?}:\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_on_postgres_kill_and_pause() {
    let Some(admin) = lqx_core::store::testing::postgres_admin_url() else {
        eprintln!("skipped: LQX_TEST_DATABASE_URL is not set");
        return;
    };
    let url = lqx_core::store::testing::fresh_postgres_database(&admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lqx.yaml");
    std::fs::write(&cfg, CONFIG).unwrap();

    let a = replica(&url, &cfg).await;
    let b = replica(&url, &cfg).await;
    let start = Instant::now();
    let (first, e1) = loop {
        if let Some((pid, epoch, _)) = leader(&b).await {
            break (pid, epoch);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "nobody leads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(first == a.pid() || first == b.pid(), "the leader is one of the two");
    assert_eq!(
        leader(&a).await.map(|l| l.0),
        Some(first),
        "both replicas agree on the leader"
    );
    let (dead, survivor) = if first == a.pid() { (a, b) } else { (b, a) };

    // 1. kill -9 the leader: the other leads within the lease (plus one renewal interval).
    signal(dead.pid(), "KILL");
    let (e2, survivor_holder, took) = wait_leader(&survivor, survivor.pid(), LEASE * 3).await;
    assert!(e2 > e1, "a new term: epoch {e2} after {e1}");
    assert!(
        took <= LEASE + LEASE / 3 + Duration::from_secs(1),
        "takeover took {took:?}"
    );
    eprintln!("takeover after kill -9: {took:?} (lease {LEASE:?})");
    drop(dead);

    // 2. SIGSTOP the leader past its lease; a third replica takes over; resume the first.
    let third = replica(&url, &cfg).await;
    wait_leader(&third, survivor.pid(), Duration::from_secs(5)).await;
    signal(survivor.pid(), "STOP");
    let (e3, third_holder, took) = wait_leader(&third, third.pid(), LEASE * 3).await;
    assert!(e3 > e2);
    eprintln!("takeover after SIGSTOP: {took:?}");
    // Stopped a while longer, so its timers are well overdue when it resumes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(survivor.pid(), "CONT");
    // Let the resumed replica run its overdue timers: ticks, renewals, writes.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let store = Store::open(&url).await.unwrap();
    let row = store.leader_row().await.unwrap();
    assert_eq!(
        (row.holder.as_str(), row.epoch),
        (third_holder.as_str(), e3),
        "the third replica still leads"
    );
    // Nothing the resumed replica wrote after the takeover was accepted.
    let journal = store.ha_journal(10_000).await.unwrap();
    let takeover = journal
        .iter()
        .find(|j| j.epoch == e3 && j.kind == "leader.acquired")
        .expect("the new leader journaled its term")
        .at_ms;
    for j in journal.iter().filter(|j| j.epoch == e2) {
        assert!(j.at_ms < takeover, "a stale write was accepted: {j:?}");
    }
    let st = store.ha_state_get("status").await.unwrap().unwrap();
    assert_eq!((st.epoch, st.holder.as_str()), (e3, third_holder.as_str()));
    // Its fencing token is refused by the database, whatever the replica believes.
    let stale = Epoch {
        number: e2,
        holder: survivor_holder.clone().into(),
    };
    let err = store.ha_state_put("status", "{}", &stale).await.unwrap_err();
    assert!(err.message.starts_with("not the leader"), "{err}");
    // And the replica itself knows it no longer leads.
    let v = status(&survivor).await;
    assert_eq!(v["leader"], json!(third_holder));
    let logs = survivor.logs();
    assert!(
        logs.contains("lost leadership") || logs.contains("not the leader"),
        "the resumed replica did not notice it lost the lease:\n{logs}"
    );
    eprintln!(
        "resumed replica log excerpt: {}",
        logs.lines().rfind(|l| l.contains("leader")).unwrap_or("")
    );
}

#[tokio::test]
async fn ha_status_and_manual_failover_over_connect() {
    for engine in engines() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("lqx.yaml");
        std::fs::write(&cfg, CONFIG).unwrap();
        let mut s = Server::start(
            engine,
            Options {
                args: vec!["--config".into(), cfg.display().to_string()],
                sim: Some(CLUSTER.into()),
                ..Default::default()
            },
        )
        .await;
        s.login_admin().await;
        let start = Instant::now();
        let v = loop {
            let v = status(&s).await;
            if v["nodes"].as_array().is_some_and(|n| n.len() == 3) {
                break v;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no HA status: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(v["leaderEpoch"], json!("1"), "{engine:?}: the only replica leads");
        assert_eq!(v["protectedVms"], json!(3));
        assert!(
            v["clusterProtected"].is_null() || v["clusterProtected"] == json!(false),
            "big-1 cannot be absorbed"
        );
        let n1 = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["nodeName"] == "node-1")
            .unwrap()
            .clone();
        assert_eq!(n1["health"], json!("NODE_HEALTH_HEALTHY"));
        assert_eq!(n1["protectedVms"], json!(3));

        // Without the operator's confirmation: failed_precondition.
        let (code, e) = s.call(&format!("{HA}/ManualFailover"), json!({"node": "node-1"})).await;
        assert_eq!(e["code"], json!("failed_precondition"), "{code} {e}");
        // Confirmed, but the host still answers: refused too.
        let (code, e) = s
            .call(
                &format!("{HA}/ManualFailover"),
                json!({"node": "node-1", "confirm_host_down": true}),
            )
            .await;
        assert_eq!(e["code"], json!("failed_precondition"), "{code} {e}");
        assert!(e["message"].as_str().unwrap().contains("heartbeated"), "{e}");
        // Unknown node.
        let (code, _) = s
            .call(
                &format!("{HA}/ManualFailover"),
                json!({"node": "node-9", "confirm_host_down": true}),
            )
            .await;
        assert_eq!(code, 404);
        s.terminate().await;
    }
}

#[test]
fn lqx_ha_simulate_prints_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, CLUSTER).unwrap();
    let out = Command::new(bin("lqx"))
        .args(["ha", "simulate", "--cluster"])
        .arg(&file)
        .args(["--fail", "node-1", "-o", "json"])
        .env("LQX_CONFIG_DIR", dir.path())
        .env("LQX_NO_INPUT", "true")
        .env_remove("LQX_SERVER")
        .env_remove("LQX_TOKEN")
        .env_remove("LQX_OUTPUT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let placements = v["placements"].as_array().unwrap();
    assert_eq!(placements.len(), 2);
    assert_eq!(placements[0]["vm"], "db-1", "highest priority first");
    assert_eq!(placements[0]["priority"], "highest");
    assert_eq!(placements[1]["vm"], "web-1");
    assert!(placements.iter().all(|p| p["from"] == "node-1" && p["to"] != "node-1"));
    assert_eq!(v["unplaced"].as_array().unwrap().len(), 1);
    assert_eq!(v["unplaced"][0]["vm"], "big-1");
    assert!(v["unplaced"][0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let after = &v["after"];
    for k in ["imbalance", "max_cpu_percent", "max_memory_percent"] {
        assert!(after[k].is_number(), "after.{k} missing: {after}");
    }
    let names: Vec<&str> = after["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-2", "node-3"], "the failed node is gone after");
    let cpu = |m: &Value, n: &str| {
        m["nodes"].as_array().unwrap().iter().find(|x| x["name"] == n).unwrap()["cpu_percent"]
            .as_f64()
            .unwrap()
    };
    let before = &v["before"];
    assert!(
        cpu(after, "node-2") + cpu(after, "node-3") > cpu(before, "node-2") + cpu(before, "node-3"),
        "the survivors take the load"
    );

    // A node the file does not have: a usage error naming it.
    let out = Command::new(bin("lqx"))
        .args(["ha", "simulate", "--cluster"])
        .arg(&file)
        .args(["--fail", "node-9"])
        .env("LQX_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("node-9"));
}

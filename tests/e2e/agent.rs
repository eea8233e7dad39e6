//! The node agent end to end: the real `lqx-server --dev` (three in-process nodes on libvirt's
//! test driver) and a real `lqx-server agent` process joining it with a join token from
//! NodeService/CreateJoinToken, its host a private libvirt test-driver file. VMs are created,
//! started, stopped, migrated (cold) and deleted over Connect JSON, as curl would.

use lqx_core::api::node::v1::{self as pb, agent_service_client::AgentServiceClient};
use lqx_e2e::{Engine, Server, bin};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const VMS: &str = "limiquantix.compute.v1.VMService";
const NODES: &str = "limiquantix.compute.v1.NodeService";

/// A running `lqx-server agent`; killed when dropped.
struct AgentProcess {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl AgentProcess {
    fn start(server: &Server, data_dir: &std::path::Path, libvirt: &str, token: Option<&str>) -> AgentProcess {
        let mut cmd = Command::new(bin("lqx-server"));
        cmd.arg("agent")
            .arg("--control-plane")
            .arg(&server.addr)
            .arg("--libvirt")
            .arg(libvirt)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--name")
            .arg("edge-1")
            .arg("--heartbeat-interval")
            .arg("300ms")
            .env("LQX_LOG", "info")
            .env_remove("LQX_JOIN_TOKEN");
        if let Some(t) = token {
            cmd.env("LQX_JOIN_TOKEN", t);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start lqx-server agent");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = l2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        AgentProcess { child, log }
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    async fn terminate(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let status = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("agent exits on SIGTERM")
        .unwrap()
        .unwrap();
        assert!(status.success(), "agent exit status {status}:\n{}", self.logs());
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- agent log ----\n{}", self.logs());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ok(s: &Server, method: &str, body: Value) -> Value {
    let (st, v) = s.call(method, body.clone()).await;
    assert_eq!(st, 200, "{method} {body}: {v}");
    v
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn state(vm: &Value) -> &str {
    vm["status"]["state"].as_str().unwrap_or("")
}

#[tokio::test]
async fn agent_joins_and_runs_vms_end_to_end() {
    let mut s = Server::dev(Engine::Sqlite).await;
    s.login_admin().await;
    assert!(
        s.logs().contains("test driver"),
        "--dev runs on libvirt's test driver:\n{}",
        s.logs()
    );

    // The agent's host: a private test-driver file.
    let host = tempfile::tempdir().unwrap();
    let node_xml = host.path().join("edge-1.xml");
    std::fs::write(
        &node_xml,
        lqx_core::driver::xml::test_node_xml(&lqx_core::driver::xml::TestNode {
            cpus: 8,
            memory_mib: 16_384,
            pool_capacity_gib: 100,
        }),
    )
    .unwrap();
    let libvirt = format!("test://{}", node_xml.display());
    let agent_dir = host.path().join("agent");

    let tok = ok(
        &s,
        &format!("{NODES}/CreateJoinToken"),
        json!({"ttlSeconds": 600, "nodeName": "edge-1"}),
    )
    .await;
    let token = tok["token"].as_str().unwrap().to_string();
    let agent = AgentProcess::start(&s, &agent_dir, &libvirt, Some(&token));
    eventually("edge-1 joins", async || {
        let (st, n) = s.call(&format!("{NODES}/GetNode"), json!({"id": "edge-1"})).await;
        st == 200 && n["name"] == "edge-1"
    })
    .await;
    assert!(!agent.logs().contains(&token), "the join token is never logged");
    // The node exists once the server accepted the join; the agent writes its identity when
    // the answer reaches it, a moment later.
    let identity_file = agent_dir.join("agent-identity.json");
    eventually("the agent keeps its identity", async || identity_file.exists()).await;
    let identity = std::fs::read_to_string(&identity_file).unwrap();
    assert!(identity.contains("lqxn_"));

    // Create and start on the agent's host; stop; start again (twice: nothing doubles).
    let body = json!({"name": "edge-vm", "node": "edge-1", "spec": {"cpuCores": 1, "memoryMib": 256, "disks": [{"name": "root", "sizeMib": 1024}]}});
    let vm = ok(&s, &format!("{VMS}/CreateVM"), body).await;
    assert_eq!(state(&vm), "VM_STATE_STOPPED", "{vm}");
    assert_eq!(vm["status"]["nodeName"], "edge-1");
    let vm = ok(&s, &format!("{VMS}/StartVM"), json!({"id": "edge-vm"})).await;
    assert_eq!(state(&vm), "VM_STATE_RUNNING", "{vm}");
    ok(&s, &format!("{VMS}/StartVM"), json!({"id": "edge-vm"})).await;
    let vm = ok(&s, &format!("{VMS}/StopVM"), json!({"id": "edge-vm", "force": true})).await;
    assert_eq!(state(&vm), "VM_STATE_STOPPED", "{vm}");
    ok(&s, &format!("{VMS}/StartVM"), json!({"id": "edge-vm"})).await;

    // The agent restarts: same identity (no token), the VM still runs, commands still work.
    agent.terminate().await;
    let agent = AgentProcess::start(&s, &agent_dir, &libvirt, None);
    eventually("the restarted agent takes commands", async || {
        let (st, _) = s
            .call(&format!("{VMS}/StopVM"), json!({"id": "edge-vm", "force": true}))
            .await;
        st == 200
    })
    .await;
    // The test driver's state lives in the agent process: the restarted agent recreated the
    // domain from the desired state, and stopped it on request.
    let vm = ok(&s, &format!("{VMS}/GetVM"), json!({"id": "edge-vm"})).await;
    assert_eq!(state(&vm), "VM_STATE_STOPPED", "{vm}");

    // Cold migration to an in-process node and back, running.
    ok(&s, &format!("{VMS}/StartVM"), json!({"id": "edge-vm"})).await;
    let m = ok(
        &s,
        &format!("{VMS}/MigrateVM"),
        json!({"id": "edge-vm", "targetNode": "node-1", "cold": true}),
    )
    .await;
    assert_eq!(m["vm"]["status"]["nodeName"], "node-1", "{m}");
    assert_eq!(state(&m["vm"]), "VM_STATE_RUNNING", "{m}");
    let m = ok(
        &s,
        &format!("{VMS}/MigrateVM"),
        json!({"id": "edge-vm", "targetNode": "edge-1", "cold": true}),
    )
    .await;
    assert_eq!(m["vm"]["status"]["nodeName"], "edge-1", "{m}");
    assert_eq!(state(&m["vm"]), "VM_STATE_RUNNING", "{m}");

    // The observed state flows back by heartbeat too: the record stays RUNNING.
    s.heartbeats("edge-1", 2).await;
    let vm = ok(&s, &format!("{VMS}/GetVM"), json!({"id": "edge-vm"})).await;
    assert_eq!(state(&vm), "VM_STATE_RUNNING", "{vm}");

    // A node credential acts only for its own node, over gRPC through the auth layer.
    let mut client = AgentServiceClient::new(s.channel().await);
    let tok = ok(&s, &format!("{NODES}/CreateJoinToken"), json!({"nodeName": "edge-2"})).await;
    let reg = client
        .register(pb::RegisterRequest {
            join_token: tok["token"].as_str().unwrap().into(),
            name: "edge-2".into(),
            cpu_cores: 2,
            memory_mib: 2048,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let edge1 = ok(&s, &format!("{NODES}/GetNode"), json!({"id": "edge-1"})).await;
    let mut hb = tonic::Request::new(pb::HeartbeatRequest {
        node_id: edge1["id"].as_str().unwrap().into(),
        ..Default::default()
    });
    hb.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", reg.node_credential).parse().unwrap(),
    );
    let e = client.heartbeat(hb).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let mut hb = tonic::Request::new(pb::HeartbeatRequest {
        node_id: reg.node_id.clone(),
        ..Default::default()
    });
    hb.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", reg.node_credential).parse().unwrap(),
    );
    client.heartbeat(hb).await.unwrap();

    // Delete: gone from the record and from the host (the agent reports it gone).
    let (st, err) = s.call(&format!("{VMS}/DeleteVM"), json!({"id": "edge-vm"})).await;
    assert_eq!(st, 412, "running VMs need force: {err}");
    ok(&s, &format!("{VMS}/DeleteVM"), json!({"id": "edge-vm", "force": true})).await;
    let (st, _) = s.call(&format!("{VMS}/GetVM"), json!({"id": "edge-vm"})).await;
    assert_eq!(st, 404);
    let desired = std::fs::read_to_string(agent_dir.join("agent-desired.json")).unwrap();
    assert!(desired.contains("\"domains\":[]"), "{desired}");
    agent.terminate().await;
}

/// Benchmark (ignored; run by hand, numbers in docs/BENCHMARKS-agent.md): the control plane's
/// CPU for 1,000 agents heartbeating every 2 s over loopback gRPC, measured from the server
/// process's own CPU time, and the heartbeats that failed or came later than the lease allows.
///
/// `cargo test -p lqx-e2e --release --test e2e -- --ignored --nocapture bench_1000_agents`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_1000_agents_heartbeat() {
    const AGENTS: usize = 1000;
    const PERIOD: Duration = Duration::from_secs(2);
    const WARMUP: Duration = Duration::from_secs(10);
    const MEASURE: Duration = Duration::from_secs(30);
    let mut s = Server::start(Engine::Sqlite, Default::default()).await;
    s.login_admin().await;
    let channels: Vec<_> = futures::future::join_all((0..8).map(|_| s.channel())).await;
    let mut nodes = Vec::with_capacity(AGENTS);
    for i in 0..AGENTS {
        let name = format!("bench-{i:04}");
        let tok = ok(&s, &format!("{NODES}/CreateJoinToken"), json!({"nodeName": name})).await;
        let mut c = AgentServiceClient::new(channels[i % channels.len()].clone());
        let r = c
            .register(pb::RegisterRequest {
                join_token: tok["token"].as_str().unwrap().into(),
                name,
                cpu_cores: 32,
                memory_mib: 131_072,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        nodes.push((r.node_id, r.node_credential));
    }
    let start = tokio::time::Instant::now();
    let stats = Arc::new(Mutex::new((0u64, 0u64, Duration::ZERO, Vec::<Duration>::new())));
    let mut tasks = Vec::new();
    for (i, (node, cred)) in nodes.into_iter().enumerate() {
        let mut c = AgentServiceClient::new(channels[i % channels.len()].clone());
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            // Spread the agents over the period, as real hosts would be.
            tokio::time::sleep(PERIOD * i as u32 / AGENTS as u32).await;
            let mut tick = tokio::time::interval(PERIOD);
            let mut last_ok = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                let domains = (0..4)
                    .map(|d| pb::DomainStatus {
                        vm_id: format!("01a21b00-0000-7000-8000-{:012}", i * 4 + d),
                        state: "running".into(),
                        cpu_percent: 12.5,
                        memory_used_mib: 1024,
                        managed: true,
                        ..Default::default()
                    })
                    .collect();
                let mut req = tonic::Request::new(pb::HeartbeatRequest {
                    node_id: node.clone(),
                    cpu_percent: 20.0,
                    memory_used_mib: 65_536,
                    memory_total_mib: 131_072,
                    domains,
                    heartbeat_interval_ms: 2000,
                    ..Default::default()
                });
                req.metadata_mut()
                    .insert("authorization", format!("Bearer {cred}").parse().unwrap());
                let t = tokio::time::Instant::now();
                let r = c.heartbeat(req).await;
                let now = tokio::time::Instant::now();
                let measuring = now.duration_since(start) >= WARMUP;
                let mut st = stats.lock().unwrap();
                match r {
                    Ok(_) => {
                        if measuring {
                            st.0 += 1;
                            st.2 = st.2.max(now.duration_since(last_ok));
                            st.3.push(now - t);
                        }
                        last_ok = now;
                    }
                    Err(_) if measuring => st.1 += 1,
                    Err(_) => {}
                }
            }
        }));
    }
    tokio::time::sleep_until(start + WARMUP).await;
    let cpu = |pid: u32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        // utime and stime, fields 14 and 15 of stat (clock ticks of 10 ms).
        (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
    };
    let (c0, t0) = (cpu(s.pid()), tokio::time::Instant::now());
    // The measurement window (a benchmark: the server's CPU over a fixed time).
    tokio::time::sleep(MEASURE).await;
    let (c1, t1) = (cpu(s.pid()), tokio::time::Instant::now());
    for t in &tasks {
        t.abort();
    }
    let (okn, failed, max_gap, mut lat) = stats.lock().unwrap().clone();
    lat.sort();
    let p = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let cpu_pct = (c1 - c0) / (t1 - t0).as_secs_f64() * 100.0;
    println!(
        "agents={AGENTS} period={PERIOD:?} window={MEASURE:?} heartbeats_ok={okn} failed={failed} \
         rate={:.0}/s server_cpu={cpu_pct:.1}% of one core ({:.1}% of 2 cores) \
         latency p50={:?} p99={:?} max={:?} max_gap_between_ok={max_gap:?}",
        okn as f64 / MEASURE.as_secs_f64(),
        cpu_pct / 2.0,
        p(0.5),
        p(0.99),
        lat.last().copied().unwrap_or_default(),
    );
    assert_eq!(failed, 0, "heartbeats failed");
    assert!(
        max_gap < Duration::from_secs(35),
        "a lease would have expired: gap {max_gap:?}"
    );
}

/// Benchmark (ignored): CreateVM with start over Connect JSON on `--dev` (libvirt's test
/// driver, in-process nodes) and on an agent node (test driver in the agent process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_create_start_on_test_driver() {
    const N: usize = 50;
    let mut s = Server::dev(Engine::Sqlite).await;
    s.login_admin().await;
    let host = tempfile::tempdir().unwrap();
    let node_xml = host.path().join("edge-1.xml");
    std::fs::write(
        &node_xml,
        lqx_core::driver::xml::test_node_xml(&lqx_core::driver::xml::TestNode {
            cpus: 64,
            memory_mib: 262_144,
            pool_capacity_gib: 1000,
        }),
    )
    .unwrap();
    let tok = ok(&s, &format!("{NODES}/CreateJoinToken"), json!({"nodeName": "edge-1"})).await;
    let _agent = AgentProcess::start(
        &s,
        &host.path().join("agent"),
        &format!("test://{}", node_xml.display()),
        tok["token"].as_str(),
    );
    eventually("edge-1 joins", async || {
        s.call(&format!("{NODES}/GetNode"), json!({"id": "edge-1"})).await.0 == 200
    })
    .await;
    for (label, node) in [
        ("in-process test driver (node-1)", "node-1"),
        ("agent test driver (edge-1, 300ms heartbeat)", "edge-1"),
    ] {
        let mut times = Vec::new();
        for i in 0..N {
            let body = json!({"name": format!("b-{node}-{i}"), "node": node, "start": true,
                "spec": {"cpuCores": 1, "memoryMib": 256, "disks": [{"name": "root", "sizeMib": 1024}]}});
            let t = tokio::time::Instant::now();
            let vm = ok(&s, &format!("{VMS}/CreateVM"), body).await;
            times.push(t.elapsed());
            assert_eq!(state(&vm), "VM_STATE_RUNNING");
        }
        times.sort();
        println!(
            "create+start {label}: n={N} p50={:?} p90={:?} max={:?}",
            times[N / 2],
            times[N * 9 / 10],
            times[N - 1]
        );
    }
}

//! Fencing by the separate fence process, end to end on a real libvirtd and QEMU: a control
//! plane, an agent and `lqx-server fence` on one host (a private libvirtd, isolated in its own
//! mount namespace by scripts/isolated-libvirtd.sh), a second agent on libvirt's test driver.
//! The first agent is stopped with SIGSTOP: its in-process watchdog stops with it, the fence
//! process destroys the HA domain, and only then does the control plane restart it on the
//! other host. Needs root, libvirtd and qemu-system-x86 (scripts/setup-deps.sh installs
//! them); skipped without them, except in CI.

use lqx_e2e::{Engine, Options, Proc, Server, bin};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const VMS: &str = "limiquantix.compute.v1.VMService";
const NODES: &str = "limiquantix.compute.v1.NodeService";

/// Shortened HA timings: the agent's watchdog and the fence process fire 4 s after the send
/// of the last renewed heartbeat; the lease ends 2 s later (as with the defaults: QEMU under
/// TCG on a busy machine took up to 1.6 s to be destroyed); FAILED (and a restart elsewhere)
/// no earlier than 6.5 s after the last heartbeat the control plane accepted.
const CONFIG: &str = "\
limits:
  request_timeout: 3m
ha:
  check_interval: 1s
  heartbeat_timeout: 3s
  failure_threshold: 3
  heartbeat_interval: 500ms
  lease_ttl: 6s
  self_fence_after: 4s
  fence_margin: 500ms
";

/// A control plane on SQLite with the short HA timings above, the admin logged in.
async fn control_plane() -> Server {
    let mut s = Server::start(
        Engine::Sqlite,
        Options {
            config: Some(CONFIG.into()),
            env: vec![("NO_COLOR".into(), "1".into())],
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    s
}

const SELF_FENCE_AFTER: Duration = Duration::from_secs(4);
const LEASE_TTL: Duration = Duration::from_secs(6);

/// A private libvirtd (scripts/isolated-libvirtd.sh); its domains destroyed and the daemon
/// stopped when dropped.
struct Libvirtd {
    dir: tempfile::TempDir,
    uri: String,
}

impl Libvirtd {
    fn start() -> Libvirtd {
        let dir = tempfile::Builder::new().prefix("lqx-libvirtd").tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/isolated-libvirtd.sh");
        let out = Command::new("bash").arg(script).arg(dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "private libvirtd did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uri = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let lv = Libvirtd { dir, uri };
        // Warm up: the first domain makes libvirtd probe QEMU (over a minute on a busy
        // machine), longer than a command may wait for its agent.
        let xml = lv.dir.path().join("warmup.xml");
        std::fs::write(
            &xml,
            "<domain type='qemu'><name>warmup</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
        let xml = xml.display().to_string();
        lv.virsh_ok(&["define", &xml]);
        lv.virsh_ok(&["start", "warmup"]);
        lv.virsh_ok(&["destroy", "warmup"]);
        lv.virsh_ok(&["undefine", "warmup"]);
        lv
    }

    fn run_virsh(&self, args: &[&str]) -> std::process::Output {
        Command::new("virsh")
            .arg("-c")
            .arg(&self.uri)
            .args(args)
            .output()
            .unwrap()
    }

    /// `virsh` that must succeed: a warm-up that silently failed would warm nothing up.
    fn virsh_ok(&self, args: &[&str]) {
        let out = self.run_virsh(args);
        assert!(
            out.status.success(),
            "virsh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn virsh(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run_virsh(args).stdout).trim().to_string()
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        for name in self.virsh(&["list", "--name"]).lines().filter(|l| !l.is_empty()) {
            self.virsh(&["destroy", name]);
        }
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("libvirtd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Whether the programs are installed (libvirtd, virsh, QEMU, unshare).
fn real_libvirt_installed() -> bool {
    let have = |c: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    have("libvirtd") && have("virsh") && have("qemu-system-x86_64") && have("unshare")
}

/// Whether this process may make a private mount namespace (root, and not a container
/// without CAP_SYS_ADMIN).
fn may_isolate() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

async fn ok(s: &Server, method: &str, body: Value) -> Value {
    let (st, v) = s.call(method, body.clone()).await;
    assert_eq!(st, 200, "{method} {body}: {v}");
    v
}

async fn eventually(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn agent(s: &Server, name: &str, libvirt: &str, dir: &Path, token: &str, fence: Option<&Path>) -> Proc {
    let mut cmd = Command::new(bin("lqx-server"));
    cmd.arg("agent")
        .args(["--control-plane", &s.addr, "--libvirt", libvirt, "--name", name])
        .args(["--heartbeat-interval", "500ms"])
        .arg("--data-dir")
        .arg(dir.join(name))
        .env("LQX_JOIN_TOKEN", token)
        .env("LQX_LOG", "info")
        .env("NO_COLOR", "1");
    if let Some(f) = fence {
        cmd.arg("--fence-socket").arg(f);
    }
    Proc::spawn(name, cmd)
}

/// The wall-clock time of the first log line containing `needle` (tracing's RFC 3339 prefix).
fn logged_at(log: &str, needle: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let line = log.lines().find(|l| l.contains(needle))?;
    chrono::DateTime::parse_from_rfc3339(line.split_whitespace().next()?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_agent_is_fenced_by_the_fence_process_before_failover() {
    if !real_libvirt_installed() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test: scripts/setup-deps.sh installs libvirtd and QEMU"
        );
        eprintln!("skipped: needs libvirtd, virsh, qemu-system-x86_64 and unshare");
        return;
    }
    if !may_isolate() {
        eprintln!("SKIPPED: a private libvirtd needs root with CAP_SYS_ADMIN (unshare --mount failed)");
        return;
    }
    let lv = Libvirtd::start();
    let dir = tempfile::tempdir().unwrap();
    let s = control_plane().await;
    let token = async |name: &str| {
        let t = ok(
            &s,
            &format!("{NODES}/CreateJoinToken"),
            json!({"ttlSeconds": 600, "nodeName": name}),
        )
        .await;
        t["token"].as_str().unwrap().to_string()
    };
    let (ta, tb) = (token("host-a").await, token("host-b").await);

    // host-a: the real libvirtd, an agent and its fence process (no watchdog device here).
    let sock = dir.path().join("fence.sock");
    let mut cmd = Command::new(bin("lqx-server"));
    cmd.arg("fence")
        .arg("--socket")
        .arg(&sock)
        .args(["--libvirt", &lv.uri])
        .env("LQX_LOG", "info")
        .env("NO_COLOR", "1");
    let fence = Proc::spawn("fence", cmd);
    let client = lqx_core::fence::FenceClient::new(&sock);
    eventually("the fence process listens", Duration::from_secs(30), async || {
        client.request(&lqx_core::fence::Request::Status).await.is_ok()
    })
    .await;
    let agent_a = agent(&s, "host-a", &lv.uri, dir.path(), &ta, Some(&sock));
    // host-b: libvirt's test driver.
    let node_xml = dir.path().join("host-b.xml");
    std::fs::write(
        &node_xml,
        lqx_core::driver::xml::test_node_xml(&lqx_core::driver::xml::TestNode {
            cpus: 8,
            memory_mib: 16_384,
            pool_capacity_gib: 100,
        }),
    )
    .unwrap();
    let _agent_b = agent(
        &s,
        "host-b",
        &format!("test://{}", node_xml.display()),
        dir.path(),
        &tb,
        None,
    );
    for n in ["host-a", "host-b"] {
        eventually(&format!("{n} heartbeats"), Duration::from_secs(60), async || {
            let (st, v) = s.call(&format!("{NODES}/GetNode"), json!({"id": n})).await;
            st == 200 && !v["fencing"].as_str().unwrap_or("").is_empty()
        })
        .await;
    }
    let a = ok(&s, &format!("{NODES}/GetNode"), json!({"id": "host-a"})).await;
    assert!(
        a["fencing"].as_str().unwrap().starts_with("degraded: no host watchdog"),
        "{a}"
    );
    assert_eq!(a["fencingLevel"], "fence-process", "{a}");
    let b = ok(&s, &format!("{NODES}/GetNode"), json!({"id": "host-b"})).await;
    assert!(
        b["fencing"].as_str().unwrap().starts_with("degraded: no fence process"),
        "{b}"
    );
    assert_eq!(b["fencingLevel"], "agent-only", "{b}");

    // An HA VM on host-a, running under QEMU.
    // Defined, then started: on a fresh libvirtd on a busy machine each step can take tens
    // of seconds (QEMU's capabilities are probed at the first define).
    let t = Instant::now();
    let vm = ok(
        &s,
        &format!("{VMS}/CreateVM"),
        json!({"name": "guarded", "node": "host-a",
               "spec": {"cpuCores": 1, "memoryMib": 64, "ha": {"enabled": true}}}),
    )
    .await;
    eprintln!("defined on the real libvirtd in {:?}", t.elapsed());
    let t = Instant::now();
    let vm = {
        let _ = vm;
        ok(&s, &format!("{VMS}/StartVM"), json!({"id": "guarded"})).await
    };
    eprintln!("started in {:?}", t.elapsed());
    assert_eq!(vm["status"]["state"], "VM_STATE_RUNNING", "{vm}");
    let domain = format!("lqx-{}", vm["id"].as_str().unwrap());
    assert_eq!(lv.virsh(&["domstate", &domain]), "running");
    eventually("the fence process guards the VM", Duration::from_secs(10), async || {
        client
            .request(&lqx_core::fence::Request::Status)
            .await
            .is_ok_and(|r| r.domains == 1 && r.armed)
    })
    .await;
    drop(client);
    // HA status names the VMs whose fence is degraded (no host watchdog here).
    eventually(
        "HA status counts the degraded fence",
        Duration::from_secs(10),
        async || {
            let (_, st) = s.call("limiquantix.ha.v1.HAService/GetHAStatus", json!({})).await;
            let a = st["nodes"]
                .as_array()
                .and_then(|n| n.iter().find(|n| n["nodeName"] == "host-a").cloned())
                .unwrap_or_default();
            st["degradedFencingVms"] == 1
                && a["fencing"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("degraded: no host watchdog"))
        },
    )
    .await;

    // The agent hangs.
    agent_a.signal("STOP");
    let t0 = Instant::now();
    let t0_wall = chrono::Utc::now();
    eprintln!("+0.000s  SIGSTOP host-a's agent");
    let (mut gone_a, mut moved, mut running_b) = (None, None, None);
    while running_b.is_none() {
        let t = t0.elapsed();
        assert!(t < Duration::from_secs(40), "no failover within 40 s");
        if gone_a.is_none() && lv.virsh(&["domstate", &domain]) == "shut off" {
            gone_a = Some(t);
            eprintln!(
                "+{:.3}s  host-a (real libvirt): {domain} no longer running",
                t.as_secs_f64()
            );
        }
        let (_, v) = s.call(&format!("{VMS}/GetVM"), json!({"id": "guarded"})).await;
        if v["status"]["nodeName"] == "host-b" {
            if moved.is_none() {
                moved = Some(t);
                eprintln!("+{:.3}s  control plane: guarded placed on host-b", t.as_secs_f64());
            }
            if v["status"]["state"] == "VM_STATE_RUNNING" {
                running_b = Some(t);
                eprintln!("+{:.3}s  control plane: guarded running on host-b", t.as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone_a = gone_a.expect("the domain on host-a was never fenced");
    // The fence process's and the control plane's own clocks (same host) say the same.
    let fenced_at = logged_at(&fence.logs(), "fenced: HA-protected domain destroyed")
        .expect("the fence process logged the destroy");
    let failed_at = logged_at(&s.logs(), "to=FAILED").expect("the control plane logged FAILED");
    eprintln!(
        "fence process destroyed the domain at +{:.3}s; control plane declared host-a FAILED at +{:.3}s",
        (fenced_at - t0_wall).as_seconds_f64(),
        (failed_at - t0_wall).as_seconds_f64()
    );
    let fired_at = logged_at(&fence.logs(), "FENCING: the agent's lease deadline passed").expect("the fence fired");
    eprintln!("fence process fired at +{:.3}s", (fired_at - t0_wall).as_seconds_f64());
    // It fires self_fence_after after the send of the agent's last renewed heartbeat (before
    // the SIGSTOP), and is done before the lease ends.
    assert!(
        (fired_at - t0_wall).to_std().unwrap_or_default() <= SELF_FENCE_AFTER + Duration::from_millis(300),
        "fired late"
    );
    assert!(
        (fenced_at - t0_wall).to_std().unwrap_or_default() < LEASE_TTL,
        "destroyed after the lease ended"
    );
    assert!(
        gone_a < LEASE_TTL + Duration::from_millis(500),
        "virsh saw it gone at +{gone_a:?}"
    );
    assert!(
        fenced_at < failed_at,
        "the domain was destroyed before host-a was declared FAILED"
    );
    assert!(
        gone_a < moved.unwrap(),
        "double run: placed on host-b before host-a's copy was gone"
    );
    assert!(fence.logs().contains("FENCING: the agent's lease deadline passed"));
    assert!(
        !agent_a.logs().contains("self-fencing"),
        "the stopped agent did nothing itself"
    );

    // The agent resumes: it must not start its copy again.
    agent_a.signal("CONT");
    eventually("host-a heartbeats again", Duration::from_secs(20), async || {
        let (_, v) = s.call(&format!("{NODES}/GetNode"), json!({"id": "host-a"})).await;
        v["health"] == "HEALTHY"
    })
    .await;
    s.heartbeats("host-a", 3).await;
    assert_ne!(
        lv.virsh(&["domstate", &domain]),
        "running",
        "the resumed agent restarted its copy"
    );
    let v = ok(&s, &format!("{VMS}/GetVM"), json!({"id": "guarded"})).await;
    assert_eq!(v["status"]["nodeName"], "host-b", "{v}");
    assert_eq!(v["status"]["state"], "VM_STATE_RUNNING", "{v}");
}

/// A TCP forwarder between an agent and the control plane that can black-hole the link
/// (bytes are no longer passed either way, connections stay open: a partition, not a reset).
struct Link {
    addr: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Link {
    async fn to(server: &str) -> Link {
        use std::sync::atomic::Ordering;
        let target = server.trim_start_matches("http://").to_string();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = l.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let pump = async |r: &mut tokio::net::tcp::OwnedReadHalf,
                                      w: &mut tokio::net::tcp::OwnedWriteHalf,
                                      c: &std::sync::atomic::AtomicBool| {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match r.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if c.load(Ordering::SeqCst) {
                                continue; // dropped on the floor
                            }
                            if w.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::join!(pump(&mut ri, &mut wo, &c), pump(&mut ro, &mut wi, &c));
                });
            }
        });
        Link { addr, cut, _task: task }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A network partition between a host and the control plane, real processes on libvirt's
/// test driver: the cut-off agent's own watchdog fences its HA domain before the control
/// plane declares the host FAILED and restarts the VM on the other host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_agent_fences_itself_before_failover() {
    let dir = tempfile::tempdir().unwrap();
    let s = control_plane().await;
    let link = Link::to(&s.addr).await;
    let agents = [
        test_agent(&s, dir.path(), "host-a", &link.addr).await,
        test_agent(&s, dir.path(), "host-b", &s.addr).await,
    ];
    let vm = ok(
        &s,
        &format!("{VMS}/CreateVM"),
        json!({"name": "cut-off", "node": "host-a", "start": true,
               "spec": {"cpuCores": 1, "memoryMib": 256, "ha": {"enabled": true}}}),
    )
    .await;
    assert_eq!(vm["status"]["state"], "VM_STATE_RUNNING", "{vm}");

    link.cut();
    let t0 = Instant::now();
    let t0_wall = chrono::Utc::now();
    eprintln!("+0.000s  host-a cut off from the control plane");
    let running_b = loop {
        assert!(t0.elapsed() < Duration::from_secs(40), "no failover within 40 s");
        let (_, v) = s.call(&format!("{VMS}/GetVM"), json!({"id": "cut-off"})).await;
        if v["status"]["nodeName"] == "host-b" && v["status"]["state"] == "VM_STATE_RUNNING" {
            break t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fenced = logged_at(&agents[0].logs(), "fenced: HA-protected domain powered off").expect("host-a fenced");
    let failed = logged_at(&s.logs(), "to=FAILED").expect("FAILED logged");
    let secs = |t: chrono::DateTime<chrono::Utc>| (t - t0_wall).as_seconds_f64();
    eprintln!(
        "+{:.3}s  host-a's agent destroyed its HA domain\n+{:.3}s  control plane: host-a FAILED\n+{:.3}s  control plane: cut-off running on host-b",
        secs(fenced),
        secs(failed),
        running_b.as_secs_f64()
    );
    assert!(fenced < failed, "fenced before the host was declared FAILED");
    assert!(
        (fenced - t0_wall).to_std().unwrap_or_default() <= SELF_FENCE_AFTER + Duration::from_millis(500),
        "fenced late"
    );
}

/// An agent named `name` on a private test-driver host, reaching the control plane at `via`;
/// returns once it heartbeats.
async fn test_agent(s: &Server, dir: &Path, name: &str, via: &str) -> Proc {
    let t = ok(s, &format!("{NODES}/CreateJoinToken"), json!({"nodeName": name})).await;
    let xml = dir.join(format!("{name}.xml"));
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
        .args(["--control-plane", via, "--name", name, "--heartbeat-interval", "500ms"])
        .arg("--libvirt")
        .arg(format!("test://{}", xml.display()))
        .arg("--data-dir")
        .arg(dir.join(name))
        .env("LQX_JOIN_TOKEN", t["token"].as_str().unwrap())
        .env("LQX_LOG", "info")
        .env("NO_COLOR", "1");
    let p = Proc::spawn(name, cmd);
    eventually(&format!("{name} heartbeats"), Duration::from_secs(30), async || {
        let (st, v) = s.call(&format!("{NODES}/GetNode"), json!({"id": name})).await;
        st == 200 && !v["fencing"].as_str().unwrap_or("").is_empty()
    })
    .await;
    p
}

/// Host death, real processes: the agent of a test-driver host is killed with SIGKILL (its
/// domains live in its process: they die with it, as on a power loss); the control plane
/// restarts the HA VM on the other host once the lease and the margin have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_host_has_its_ha_vm_restarted_after_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let s = control_plane().await;
    let a = test_agent(&s, dir.path(), "host-a", &s.addr).await;
    let _b = test_agent(&s, dir.path(), "host-b", &s.addr).await;
    let vm = ok(
        &s,
        &format!("{VMS}/CreateVM"),
        json!({"name": "lost", "node": "host-a", "start": true,
               "spec": {"cpuCores": 1, "memoryMib": 256, "ha": {"enabled": true}}}),
    )
    .await;
    assert_eq!(vm["status"]["state"], "VM_STATE_RUNNING", "{vm}");
    a.signal("KILL");
    let t0 = Instant::now();
    let t0_wall = chrono::Utc::now();
    eprintln!("+0.000s  host-a dies (its agent and its test-driver domains)");
    let running_b = loop {
        assert!(t0.elapsed() < Duration::from_secs(40), "no failover within 40 s");
        let (_, v) = s.call(&format!("{VMS}/GetVM"), json!({"id": "lost"})).await;
        if v["status"]["nodeName"] == "host-b" && v["status"]["state"] == "VM_STATE_RUNNING" {
            break t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let failed = logged_at(&s.logs(), "to=FAILED").expect("FAILED logged");
    eprintln!(
        "+{:.3}s  control plane: host-a FAILED\n+{:.3}s  control plane: lost running on host-b",
        (failed - t0_wall).as_seconds_f64(),
        running_b.as_secs_f64()
    );
    // Bound with these timings: lease 6 s + margin 0.5 s + 2 heartbeats + 1 s.
    assert!(running_b <= Duration::from_millis(8_500), "took {running_b:?}");
}

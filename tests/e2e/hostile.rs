//! Hostile and careless clients: requests aborted at random points (TCP reset, HTTP/2
//! RST_STREAM) over both protocols, and a bounded loopback mix of idle connections, slow
//! headers and bodies, junk paths and aborted logins next to a well-behaved client.

use lqx_core::api::compute::v1 as pb;
use lqx_e2e::{ADMIN_PASSWORD, Engine, Options, Server};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const VMS: &str = "limiquantix.compute.v1.VMService";
const AUTH: &str = "limiquantix.auth.v1.AuthService";

/// A small xorshift generator: random abort points without a dependency; the seed is
/// printed so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("LQX_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("abort points seeded with LQX_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn host_port(s: &Server) -> String {
    s.addr.trim_start_matches("http://").to_string()
}

/// Sends one HTTP/1.1 Connect request over a fresh connection, waits `after`, then resets
/// the connection (SO_LINGER 0: the kernel sends RST, not FIN).
async fn reset_after(addr: &str, path: &str, token: Option<&str>, body: &str, after: Duration) {
    let Ok(mut c) = TcpStream::connect(addr).await else {
        return;
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: lqx\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = c.write_all(req.as_bytes()).await;
    tokio::time::sleep(after).await;
    let _ = c.set_zero_linger();
    drop(c);
}

/// The value of an unlabelled gauge in the `/metrics` text.
fn gauge(metrics: &str, name: &str) -> Option<i64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits (bounded) until `/metrics` shows no request in flight; returns the last value seen.
async fn in_flight_settles(s: &Server) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = s.get("/metrics").await;
        let n = gauge(&m, "lqx_requests_in_flight").expect("in-flight gauge");
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn all_audit(s: &Server, filter: Value) -> Vec<Value> {
    let mut out = vec![];
    let mut token = String::new();
    loop {
        let mut f = filter.clone();
        f["pageSize"] = json!(500);
        f["pageToken"] = json!(token);
        let (st, page) = s.call(&format!("{AUTH}/ListAuditEntries"), f).await;
        assert_eq!(st, 200, "{page}");
        out.extend(page["entries"].as_array().cloned().unwrap_or_default());
        token = page["nextPageToken"].as_str().unwrap_or("").to_string();
        if token.is_empty() {
            return out;
        }
    }
}

async fn all_vms(s: &Server) -> Vec<Value> {
    let mut out = vec![];
    let mut token = String::new();
    loop {
        let (st, page) = s
            .call(&format!("{VMS}/ListVMs"), json!({"pageSize": 500, "pageToken": token}))
            .await;
        assert_eq!(st, 200, "{page}");
        out.extend(page["vms"].as_array().cloned().unwrap_or_default());
        token = page["nextPageToken"].as_str().unwrap_or("").to_string();
        if token.is_empty() {
            return out;
        }
    }
}

/// Requests cut off at random points, over Connect JSON (TCP reset) and gRPC (the call
/// dropped: RST_STREAM), with a concurrency limit of 8: afterwards nothing is held (in-flight
/// gauge back to 0, the server answers more than 8 requests at once), every VM that exists
/// has exactly one audit entry for its creation, and every VM an aborted delete removed has
/// exactly one for its deletion.
#[tokio::test]
async fn aborted_requests_leak_nothing_and_every_created_vm_is_audited_once() {
    let mut s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            config: Some("limits:\n  max_concurrent_requests: 8\n".into()),
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    let token = s.token().unwrap().to_string();
    let addr = host_port(&s);
    let channel = s.channel().await;
    let mut rng = Rng::seeded();
    for round in 0..8 {
        let mut tasks = vec![];
        for i in 0..10 {
            let after = Duration::from_micros(rng.below(25_000));
            let name = format!("ab-{round}-{i}");
            let (addr, token, channel) = (addr.clone(), token.clone(), channel.clone());
            tasks.push(tokio::spawn(async move {
                match i % 3 {
                    0 => {
                        let body = json!({"name": name, "spec": {"cpuCores": 1, "memoryMib": 256,
                            "disks": [{"name": "root", "sizeMib": 1024}]}});
                        reset_after(
                            &addr,
                            &format!("{VMS}/CreateVM"),
                            Some(&token),
                            &body.to_string(),
                            after,
                        )
                        .await;
                    }
                    1 => {
                        let mut c = pb::vm_service_client::VmServiceClient::new(channel);
                        let mut r = tonic::Request::new(pb::CreateVmRequest {
                            name,
                            spec: Some(pb::VmSpec {
                                cpu_cores: 1,
                                memory_mib: 256,
                                ..Default::default()
                            }),
                            ..Default::default()
                        });
                        r.metadata_mut()
                            .insert("authorization", format!("Bearer {token}").parse().unwrap());
                        // Dropping the unfinished call resets its HTTP/2 stream.
                        let _ = tokio::time::timeout(after, c.create_vm(r)).await;
                    }
                    _ => {
                        // Unauthenticated, and a login costs an argon2 check: a long window.
                        let body = json!({"username": format!("nobody-{round}-{i}"), "password": "wrong-password-1"});
                        reset_after(&addr, &format!("{AUTH}/Login"), None, &body.to_string(), after).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    assert_eq!(in_flight_settles(&s).await, 0, "requests left in flight");
    // More than the limit at once all get answers: no permit was lost.
    let list = format!("{VMS}/ListVMs");
    let mut calls = vec![];
    for _ in 0..3 {
        for _ in 0..8 {
            calls.push(s.call(&list, json!({})));
        }
        for (st, b) in futures::future::join_all(calls.drain(..)).await {
            assert_eq!(st, 200, "{b}");
        }
    }
    let (st, b) = s
        .call(
            &format!("{AUTH}/Login"),
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    let vms = all_vms(&s).await;
    let creates = all_audit(&s, json!({"action": "compute.VMService/CreateVM", "result": "ok"})).await;
    let mut per_vm: HashMap<&str, usize> = HashMap::new();
    for e in &creates {
        *per_vm.entry(e["resourceId"].as_str().unwrap_or("")).or_default() += 1;
    }
    let ours: Vec<&Value> = vms
        .iter()
        .filter(|v| v["name"].as_str().unwrap_or("").starts_with("ab-"))
        .collect();
    eprintln!(
        "{} aborted creates took effect; {} create entries",
        ours.len(),
        creates.len()
    );
    for v in &ours {
        let id = v["id"].as_str().unwrap();
        assert_eq!(
            per_vm.get(id).copied().unwrap_or(0),
            1,
            "VM {} has not exactly one create entry",
            v["name"]
        );
    }
    assert!(
        !ours.is_empty(),
        "no aborted create took effect: the abort points are all too early"
    );

    // Deletes cut off the same ways: every VM that is gone has exactly one delete entry.
    let ids: Vec<String> = ours.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    let mut tasks = vec![];
    for (i, id) in ids.iter().enumerate() {
        let after = Duration::from_micros(rng.below(25_000));
        let (addr, token, channel, id) = (addr.clone(), token.clone(), channel.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let body = json!({"id": id, "force": true}).to_string();
                reset_after(&addr, &format!("{VMS}/DeleteVM"), Some(&token), &body, after).await;
            } else {
                let mut c = pb::vm_service_client::VmServiceClient::new(channel);
                let mut r = tonic::Request::new(pb::DeleteVmRequest {
                    id,
                    force: true,
                    ..Default::default()
                });
                r.metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
                let _ = tokio::time::timeout(after, c.delete_vm(r)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(in_flight_settles(&s).await, 0, "deletes left in flight");
    let left: Vec<String> = all_vms(&s)
        .await
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let deletes = all_audit(&s, json!({"action": "compute.VMService/DeleteVM", "result": "ok"})).await;
    let mut gone = 0;
    for id in &ids {
        let n = deletes.iter().filter(|e| e["resourceId"] == id.as_str()).count();
        let expected = usize::from(!left.contains(id));
        gone += expected;
        assert_eq!(n, expected, "VM {id}: {n} delete entries, deleted: {}", expected == 1);
    }
    eprintln!("{gone} of {} aborted deletes took effect", ids.len());
}

/// Reads until the server closes the connection (EOF or reset); `None` if it stayed open
/// past `within`.
async fn closed_within(c: &mut TcpStream, within: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A bounded loopback mix of hostile clients (idle connections, headers and bodies sent a
/// byte at a time, unique junk paths, logins reset mid-way) next to a well-behaved client:
/// the well-behaved client gets every answer, the server closes what it should, and the
/// metrics and the audit log grow by a bounded amount however many junk requests came.
#[tokio::test]
async fn hostile_clients_leave_well_behaved_ones_served_and_bounded() {
    let mut s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            config: Some(
                "limits:\n  max_concurrent_requests: 64\n  body_read_timeout: 1s\n  header_read_timeout: 1s\n  idle_timeout: 2s\n  max_connections: 600\n"
                    .into(),
            ),
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    let token = s.token().unwrap().to_string();
    let (st, vm) = s
        .call(
            &format!("{VMS}/CreateVM"),
            json!({"name": "good", "spec": {"cpuCores": 1, "memoryMib": 256, "disks": [{"name": "root", "sizeMib": 1024}]}}),
        )
        .await;
    assert_eq!(st, 200, "{vm}");
    let audit_before = all_audit(&s, json!({})).await.len();
    let addr = host_port(&s);

    // Idle connections and slow headers: all closed by the server, not by us.
    let mut holders = vec![];
    for i in 0..200 {
        let addr = addr.clone();
        holders.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(&addr).await.unwrap();
            if i % 4 == 0 {
                // Slowloris: a header line a byte at a time.
                let _ = c
                    .write_all(b"POST /limiquantix.auth.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await;
                let drip = async {
                    loop {
                        if c.write_all(b"a").await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(15), drip).await.is_ok()
            } else {
                closed_within(&mut c, Duration::from_secs(15)).await.is_some()
            }
        }));
    }
    // Slow bodies: answered (deadline exceeded) after the body timeout, not the handler's.
    let mut slow = vec![];
    for _ in 0..40 {
        let addr = addr.clone();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut c = TcpStream::connect(&addr).await.unwrap();
            c.write_all(b"POST /limiquantix.auth.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"user")
                .await
                .unwrap();
            use tokio::io::AsyncReadExt;
            let mut head = vec![0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(15), c.read(&mut head))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            (String::from_utf8_lossy(&head[..n]).to_string(), started.elapsed())
        }));
    }
    // Junk paths and aborted logins.
    let junk = {
        let base = s.addr.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            for chunk in 0..50 {
                let mut calls = vec![];
                for i in 0..8 {
                    let path = if i % 2 == 0 {
                        format!("limiquantix.compute.v1.VMService/X{chunk}-{i}{}", "a".repeat(4000))
                    } else {
                        format!("limiquantix.junk{chunk}x{i}.Svc/{}", rng.below(u64::MAX))
                    };
                    calls.push(
                        http.post(format!("{base}/{path}"))
                            .header("content-type", "application/json")
                            .body("{}")
                            .send(),
                    );
                }
                for r in futures::future::join_all(calls).await {
                    let _ = r.map(|r| r.status());
                }
            }
        })
    };
    let aborted = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut rng = Rng(12345);
            for i in 0..60 {
                let body = json!({"username": format!("guess-{i}"), "password": "not-the-password"});
                reset_after(
                    &addr,
                    &format!("{AUTH}/Login"),
                    None,
                    &body.to_string(),
                    Duration::from_micros(rng.below(20_000)),
                )
                .await;
            }
        })
    };

    // The well-behaved client, all along.
    let mut latencies = vec![];
    for i in 0..150 {
        let started = Instant::now();
        let (st, b) = if i % 2 == 0 {
            s.call(&format!("{VMS}/GetVM"), json!({"id": "good"})).await
        } else {
            s.call(&format!("{VMS}/ListVMs"), json!({})).await
        };
        latencies.push(started.elapsed());
        assert_eq!(st, 200, "well-behaved call {i}: {b}");
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!("well-behaved p99 {p99:?}, max {:?}", latencies.last().unwrap());
    assert!(p99 < Duration::from_secs(2), "p99 {p99:?}");

    junk.await.unwrap();
    aborted.await.unwrap();
    for (head, took) in futures::future::join_all(slow).await.into_iter().map(Result::unwrap) {
        assert!(
            head.contains("deadline_exceeded") || head.starts_with("HTTP/1.1 504"),
            "{head}"
        );
        assert!(took < Duration::from_secs(10), "slow body answered after {took:?}");
    }
    let closed = futures::future::join_all(holders)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(closed, 200, "idle and slow-header connections closed by the server");

    assert_eq!(in_flight_settles(&s).await, 0);
    let (_, m) = s.get("/metrics").await;
    let series = m.lines().filter(|l| l.starts_with("lqx_requests_total")).count();
    eprintln!("/metrics: {} bytes, {series} request series", m.len());
    assert!(m.len() < 64 * 1024 && series < 40, "{m}");
    assert!(m.contains("method=\"unknown\""), "{m}");

    s.set_token(Some(token));
    let after = all_audit(&s, json!({})).await;
    let hostile = 400 + 60 + 40;
    let new_rows = after.len() - audit_before;
    eprintln!(
        "audit: {new_rows} rows for {hostile} hostile requests ({:.3} per request); peak RSS {} MiB",
        new_rows as f64 / hostile as f64,
        peak_rss_kib(s.pid()) / 1024
    );
    assert!(
        new_rows <= 25,
        "{new_rows} audit rows: {:?}",
        &after[..new_rows.min(30)]
    );
    assert!(after.iter().all(|e| e["action"].as_str().unwrap_or("").len() <= 128));
    assert!(
        peak_rss_kib(s.pid()) < 1024 * 1024,
        "peak RSS {} KiB",
        peak_rss_kib(s.pid())
    );
}

/// Careless requests get clear answers with the right code, and the audit log keeps apart
/// what the codes keep apart.
#[tokio::test]
async fn careless_requests_get_clear_answers() {
    let mut s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            // Accepted like the other boolean variables (on loopback it changes nothing).
            env: vec![("LQX_INSECURE_LISTEN".into(), "1".into())],
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    let create = format!("{VMS}/CreateVM");
    let body = |name: &str, cpu: u32| json!({"name": name, "requestId": "careless-1", "spec": {"cpuCores": cpu, "memoryMib": 256, "disks": [{"name": "root", "sizeMib": 1024}]}});
    let (st, first) = s.call(&create, body("one", 1)).await;
    assert_eq!(st, 200, "{first}");
    // A retry of the same request is the same VM; a different request under the same id
    // is refused, saying why.
    let (st, again) = s.call(&create, body("one", 1)).await;
    assert_eq!((st, &again["id"]), (200, &first["id"]));
    let (st, e) = s.call(&create, body("two", 2)).await;
    assert_eq!((st, e["code"].as_str()), (412, Some("failed_precondition")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("request_id"), "{e}");
    let (_, two) = s.call(&format!("{VMS}/GetVM"), json!({"id": "two"})).await;
    assert_eq!(two["code"], "not_found", "the second VM was not created: {two}");

    // Unknown NIC models are refused like unknown disk buses.
    let mut b = body("nic", 1);
    b["requestId"] = json!("");
    b["spec"]["nics"] = json!([{"network": "default", "model": "ne2k"}]);
    let (st, e) = s.call(&create, b).await;
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("nics[0].model"), "{e}");

    // An empty id is a bad argument, not a missing VM.
    let (st, e) = s.call(&format!("{VMS}/GetVM"), json!({"id": ""})).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("invalid_argument")), "{e}");

    // A value of the wrong type names its field.
    let (st, e) = s
        .call(&create, json!({"name": "x", "spec": {"cpuCores": {"many": true}}}))
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("spec.cpuCores"), "{e}");

    // A made-up node credential is no credential: 401, not 403.
    let admin = s.token().unwrap().to_string();
    s.set_token(Some(format!("lqxn_abcdefgh_{}", "A".repeat(43))));
    let (st, e) = s.call(&format!("{VMS}/ListVMs"), json!({})).await;
    assert_eq!((st, e["code"].as_str()), (401, Some("unauthenticated")), "{e}");
    s.set_token(Some(admin));

    // An admin calling a method the service lacks is audited under the admin's name.
    let (st, e) = s.call(&format!("{VMS}/FormatDisk"), json!({})).await;
    assert_eq!((st, e["code"].as_str()), (404, Some("unimplemented")), "{e}");
    let e = all_audit(&s, json!({"action": "compute.VMService/FormatDisk"})).await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["actor"], "admin", "{:?}", e[0]);

    // already_exists and aborted are told apart in the audit log.
    let (st, _) = s
        .call(
            &create,
            json!({"name": "one", "spec": {"cpuCores": 1, "memoryMib": 256}}),
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = s
        .call(
            &format!("{VMS}/UpdateVM"),
            json!({"id": "one", "description": "d", "updateMask": ["description"], "expectedResourceVersion": 999}),
        )
        .await;
    assert_eq!(st, 409);
    let created = all_audit(&s, json!({"action": "compute.VMService/CreateVM", "result": "error"})).await;
    assert!(
        created
            .iter()
            .any(|e| e["detail"].as_str().unwrap().starts_with("already_exists")),
        "{created:?}"
    );
    let updated = all_audit(&s, json!({"action": "compute.VMService/UpdateVM", "result": "error"})).await;
    assert!(
        updated
            .iter()
            .any(|e| e["detail"].as_str().unwrap().starts_with("aborted")),
        "{updated:?}"
    );
}

/// Out of file descriptors, the accept loop backs off and logs a line now and then instead
/// of spinning (it wrote millions of lines before), and the server answers again once
/// clients let go.
#[tokio::test]
async fn out_of_descriptors_the_server_backs_off_and_recovers() {
    let s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            // Above what the descriptor limit set below allows, so accept itself fails.
            config: Some("limits:\n  max_connections: 5000\n".into()),
            ..Default::default()
        },
    )
    .await;
    let st = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", s.pid()))
        .arg("--nofile=128:128")
        .status()
        .expect("prlimit (util-linux)");
    assert!(st.success());
    let addr = host_port(&s);
    let mut held = vec![];
    let started = Instant::now();
    for _ in 0..200 {
        // Past the listen backlog, connecting waits on SYN retries: skip those.
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(&addr)).await {
            held.push(c);
        }
    }
    eprintln!("{} connections in {:?}", held.len(), started.elapsed());
    // A few seconds at the limit: the loop must idle, not spin.
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let lines = || s.logs().matches("accepting a connection failed").count();
    let (before, lines_before) = (cpu(s.pid()), lines());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ticks = cpu(s.pid()) - before;
    let failures = lines() - lines_before;
    eprintln!("at the descriptor limit: {ticks} CPU ticks in 3 s, {failures} accept-failure log lines");
    assert!(failures <= 1, "{failures} log lines in 3 s:\n{}", s.logs());
    assert!(lines() >= 1, "the failure is logged");
    assert!(ticks < 150, "{ticks} ticks of CPU in 3 s: the accept loop spins");
    drop(held);
    let healthz = || async {
        use tokio::io::AsyncReadExt;
        let mut c = TcpStream::connect(&addr).await.ok()?;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = String::new();
        c.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(2), healthz())
            .await
            .ok()
            .flatten();
        if answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(Instant::now() < deadline, "no answer after the clients left");
    }
}

/// With `--metrics-listen`, `/metrics` is served there and no longer on the API port.
#[tokio::test]
async fn metrics_can_move_to_their_own_listener() {
    let s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--metrics-listen".into(), "127.0.0.1:0".into()],
            ..Default::default()
        },
    )
    .await;
    let logs = s.logs();
    let metrics_url = logs
        .split("metrics on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{logs}"))
        .to_string();
    let _ = s.call(&format!("{VMS}/ListVMs"), json!({})).await;
    let (st, _) = s.get("/metrics").await;
    assert_eq!(st, 404, "not on the API port");
    let r = reqwest::get(&metrics_url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("lqx_requests_in_flight 0"), "{text}");
    assert!(
        text.contains("method=\"/limiquantix.compute.v1.VMService/ListVMs\""),
        "{text}"
    );
}

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
/// gauge back to 0, the server answers more than 8 requests at once), and every VM that
/// exists has exactly one audit entry for its creation.
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
}

//! Event streams and alerts end to end: `lqx watch -o json` against the real server, the
//! Subscribe stream's resume and resync errors, sequences across a restart, streams under
//! RBAC, and an alert the server raises (and resolves) by itself.

use futures::StreamExt;
use lqx_core::api::events::v1 as pb;
use lqx_core::api::events::v1::event_service_client::EventServiceClient;
use lqx_e2e::{Engine, Options, Server, bin, engines};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const VMS: &str = "limiquantix.compute.v1.VMService";
const ALERTS: &str = "limiquantix.alert.v1.AlertService";

async fn dev(engine: Engine, env: Vec<(String, String)>) -> Server {
    let mut s = Server::start(
        engine,
        Options {
            args: vec!["--dev".into()],
            env,
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    s
}

fn vm_body(name: &str, mem: u64) -> Value {
    json!({"name": name, "spec": {"cpuCores": 1, "memoryMib": mem}})
}

async fn subscribe(
    s: &Server,
    filter: pb::SubscriptionFilter,
    resume: u64,
) -> Result<tonic::Streaming<pb::SubscribeResponse>, tonic::Status> {
    let mut c = EventServiceClient::new(s.channel().await);
    c.subscribe(s.grpc(pb::SubscribeRequest {
        filter: Some(filter),
        resume_from_sequence: resume,
    }))
    .await
    .map(|r| r.into_inner())
}

fn vms_only() -> pb::SubscriptionFilter {
    pb::SubscriptionFilter {
        resource_types: vec!["vm".into()],
        ..Default::default()
    }
}

/// The next event of a stream (within 20 s).
async fn next_event(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::Event {
    let msg = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("an event within 20 s")
        .expect("stream open")
        .expect("no error");
    msg.event.expect("an event, not a lag notice")
}

#[tokio::test]
async fn lqx_watch_json_sees_a_vm_created_and_stopped_by_another_client() {
    for engine in engines() {
        let s = dev(engine, vec![]).await;
        // Watch from a known point, so the VM below is seen however fast the CLI connects.
        let from = s.mark("marker").await;
        let cfg = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin("lqx"))
            .args([
                "watch",
                "--type",
                "vm",
                "-o",
                "json",
                "--resume-from",
                &from.to_string(),
                "--server",
                &s.addr,
            ])
            .env("LQX_TOKEN", s.token().expect("admin token"))
            .env("LQX_CONFIG_DIR", cfg.path())
            .env("LQX_TOKEN_STORAGE", "file")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lqx watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });

        // Another client (Connect JSON, as curl) creates, starts and stops a VM.
        let (st, vm) = s.call(&format!("{VMS}/CreateVM"), vm_body("watched", 512)).await;
        assert_eq!(st, 200, "{vm}");
        let id = vm["id"].as_str().unwrap().to_string();
        assert_eq!(s.call(&format!("{VMS}/StartVM"), json!({"id": id})).await.0, 200);
        assert_eq!(
            s.call(&format!("{VMS}/StopVM"), json!({"id": id, "force": true}))
                .await
                .0,
            200
        );

        let mut kinds = Vec::new();
        let mut last_seq = from;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !kinds.contains(&"stopped".to_string()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("{engine:?}: lqx watch printed no STOPPED event; saw {kinds:?}")
            });
            // One JSON object per line when stdout is not a terminal.
            let e: Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("not one JSON object per line: {line:?}: {err}"));
            let seq = e["sequence"].as_u64().expect("sequence");
            assert!(seq > last_seq, "sequences increase: {seq} after {last_seq}");
            last_seq = seq;
            assert_eq!(e["resource_type"], "vm", "{line}");
            if e["resource_id"] == id.as_str() {
                kinds.push(e["type"].as_str().unwrap().to_string());
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(kinds, ["created", "started", "stopped"], "{engine:?}");
    }
}

#[tokio::test]
async fn subscribe_resumes_from_a_sequence_and_refuses_unknown_ones() {
    for engine in engines() {
        let s = dev(engine, vec![]).await;
        let from = s.mark("first").await;
        for name in ["a", "b", "c"] {
            assert_eq!(s.call(&format!("{VMS}/CreateVM"), vm_body(name, 256)).await.0, 200);
        }
        // Resuming replays what came after, in order, then continues live.
        let mut stream = subscribe(&s, vms_only(), from).await.unwrap();
        let mut names = Vec::new();
        let mut seq = from;
        for _ in 0..3 {
            let e = next_event(&mut stream).await;
            assert_eq!(e.sequence, seq + 1, "{engine:?}: no gap, no duplicate");
            seq = e.sequence;
            names.push(e.payload.unwrap().fields["name"].kind.clone());
        }
        assert_eq!(names.len(), 3);
        assert_eq!(s.call(&format!("{VMS}/CreateVM"), vm_body("live", 256)).await.0, 200);
        assert_eq!(next_event(&mut stream).await.sequence, seq + 1);

        // A sequence this server never published: resync required.
        let err = subscribe(&s, vms_only(), seq + 1_000_000_000).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
        assert!(err.message().starts_with("resync required"), "{}", err.message());
        // A bad filter is refused, not silently empty.
        let bad = pb::SubscriptionFilter {
            resource_types: vec!["disk".into()],
            ..Default::default()
        };
        assert_eq!(
            subscribe(&s, bad, 0).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}

#[tokio::test]
async fn sequences_go_on_after_a_restart_and_old_ones_need_a_resync() {
    // SQLite in a directory of the test's own, so a second server opens the same database.
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("lqx.db").display());
    let opts = Options {
        args: vec!["--dev".into(), "--database-url".into(), url],
        ..Default::default()
    };
    let mut s = Server::start(Engine::Sqlite, opts.clone()).await;
    s.login_admin().await;
    let before = s.mark("before").await;
    s.terminate().await;

    let mut s = Server::start(Engine::Sqlite, opts).await;
    s.login_admin().await;
    let after = s.mark("after").await;
    assert!(
        after > before + 1_000,
        "sequences are never reused: {after} after {before}"
    );
    let err = subscribe(&s, vms_only(), before).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().starts_with("resync required"), "{}", err.message());
}

#[tokio::test]
async fn streams_need_a_credential_and_show_a_viewer_what_it_may_read() {
    for engine in engines() {
        let mut s = dev(engine, vec![]).await;
        let (st, u) = s
            .call(
                "limiquantix.auth.v1.AuthService/CreateUser",
                json!({"username": "watcher", "email": "w@example.test", "password": "viewer-password-123", "role": "viewer"}),
            )
            .await;
        assert_eq!(st, 200, "{u}");
        let admin = s.token().unwrap().to_string();
        let from = s.mark("seed").await;

        // No credential: refused.
        s.set_token(None);
        let err = subscribe(&s, pb::SubscriptionFilter::default(), 0).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");

        // A viewer holds vm:read: it may watch VMs (and sees the replay).
        let (st, login) = s
            .call(
                "limiquantix.auth.v1.AuthService/Login",
                json!({"username": "watcher", "password": "viewer-password-123"}),
            )
            .await;
        assert_eq!(st, 200, "{login}");
        s.set_token(login["accessToken"].as_str().map(str::to_string));
        let mut stream = subscribe(&s, pb::SubscriptionFilter::default(), from - 1)
            .await
            .unwrap();
        let e = next_event(&mut stream).await;
        assert_eq!((e.sequence, e.resource_type.as_str()), (from, "vm"), "{engine:?}");
        // ...but may not change anything.
        let (st, _) = s.call(&format!("{VMS}/CreateVM"), vm_body("nope", 256)).await;
        assert_eq!(st, 403);
        s.set_token(Some(admin));
    }
}

#[tokio::test]
async fn the_server_raises_and_resolves_a_memory_alert_by_itself() {
    for engine in engines() {
        // Hosts are checked every 300 ms instead of every 10 s.
        let s = dev(engine, vec![("LQX_HOST_CHECK_INTERVAL".into(), "300ms".into())]).await;
        let mut alerts_stream = subscribe(
            &s,
            pb::SubscriptionFilter {
                resource_types: vec!["alert".into()],
                ..Default::default()
            },
            0,
        )
        .await
        .unwrap();
        // A dev node has 64 GiB: a running 60 GiB VM whose simulated demand is all of its
        // memory uses ~94 % of it.
        let (st, vm) = s
            .call(
                &format!("{VMS}/CreateVM"),
                json!({"name": "big", "start": true, "labels": {"sim-load-memory": "100"},
                       "spec": {"cpuCores": 2, "memoryMib": 61440}}),
            )
            .await;
        assert_eq!(st, 200, "{vm}");
        let node = vm["status"]["nodeId"].as_str().unwrap().to_string();

        let created = next_event(&mut alerts_stream).await;
        assert_eq!(created.r#type, "CREATED", "{engine:?}");
        let alert_id = created.resource_id.clone();

        // `lqx alert list -o json` shows it.
        let cfg = tempfile::tempdir().unwrap();
        let out = Command::new(bin("lqx"))
            .args(["alert", "list", "--unresolved", "-o", "json", "--server", &s.addr])
            .env("LQX_TOKEN", s.token().unwrap())
            .env("LQX_CONFIG_DIR", cfg.path())
            .output()
            .expect("run lqx");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let list: Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
        let a = list
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == alert_id.as_str())
            .unwrap_or_else(|| panic!("alert {alert_id} not listed: {list}"));
        assert_eq!(a["condition"], "node.memory_high");
        assert_eq!(a["source_id"], node.as_str());
        assert_eq!(a["resolved"], false);

        // Acknowledged over Connect JSON: who and when are recorded.
        let (st, acked) = s
            .call(&format!("{ALERTS}/AcknowledgeAlert"), json!({"id": alert_id}))
            .await;
        assert_eq!(st, 200, "{acked}");
        assert_eq!(acked["acknowledgedBy"], "admin");
        assert!(acked["acknowledgedAt"].is_string());
        let (st, summary) = s.call(&format!("{ALERTS}/GetAlertSummary"), json!({})).await;
        assert_eq!(st, 200);
        assert!(summary["warning"].as_u64().unwrap_or(0) >= 1, "{summary}");

        // The VM stops: the condition clears and the alert resolves by itself.
        assert_eq!(
            s.call(&format!("{VMS}/StopVM"), json!({"id": "big", "force": true}))
                .await
                .0,
            200
        );
        loop {
            let e = next_event(&mut alerts_stream).await;
            if e.resource_id == alert_id && e.r#type == "RESOLVED" {
                break;
            }
        }
        let (st, got) = s.call(&format!("{ALERTS}/GetAlert"), json!({"id": alert_id})).await;
        assert_eq!(st, 200);
        assert_eq!(got["resolved"], true, "{engine:?}: {got}");
        assert!(got["resolvedAt"].is_string());
    }
}

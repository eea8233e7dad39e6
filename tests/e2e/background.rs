//! Background tasks end to end: the server's loops are listed with a last run by
//! ListBackgroundTasks, `lqx-server status` and `/metrics`.

use lqx_e2e::{Engine, Options, Server, bin};
use serde_json::{Value, json};
use std::time::Duration;

const LIST: &str = "limiquantix.alert.v1.AlertService/ListBackgroundTasks";

fn task<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["tasks"].as_array()?.iter().find(|t| t["name"] == name)
}

#[tokio::test]
async fn the_servers_loops_are_listed_with_their_last_run() {
    let mut s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            ..Default::default()
        },
    )
    .await;
    // Without a token: refused like every other read.
    assert_eq!(s.call(LIST, json!({})).await.0, 401);
    s.login_admin().await;

    // The loops that run at once (lease, host checks, node observation) have run within
    // a few of their periods; the others are registered with their period.
    let ran = [
        "leader-lease",
        "host-checks",
        "node-observation/node-1",
        "host-power",
        "session-pruning",
        "alert-pruning",
        "denial-summaries",
        "audit-pruning",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let list = loop {
        let (st, list) = s.call(LIST, json!({})).await;
        assert_eq!(st, 200, "{list}");
        let done = ran
            .iter()
            .all(|n| task(&list, n).is_some_and(|t| t["lastOk"] == true && t["lastEnd"].is_string()));
        if done {
            break list;
        }
        assert!(tokio::time::Instant::now() < deadline, "tasks have not run: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for name in [
        "drs",
        "ha-probe",
        "saga-recovery",
        "leader-lease",
        "host-checks",
        "host-power",
        "alert-pruning",
    ] {
        let t = task(&list, name).unwrap_or_else(|| panic!("{name} not listed: {list}"));
        assert!(t["period"].is_string(), "{name} has no period: {t}");
    }
    // Webhook delivery runs on demand: listed, without a period.
    let hooks = task(&list, "webhook-delivery").unwrap_or_else(|| panic!("webhook-delivery not listed: {list}"));
    assert!(hooks["period"].is_null(), "{hooks}");
    let pruned = task(&list, "session-pruning").unwrap();
    assert!(
        pruned["lastSummary"]
            .as_str()
            .unwrap()
            .contains("ended sessions deleted"),
        "{pruned}"
    );
    let lease = task(&list, "leader-lease").unwrap();
    assert!(
        lease["runs"].as_str().unwrap_or("0").parse::<u64>().unwrap() >= 1,
        "{lease}"
    );
    assert!(lease["lastSummary"].as_str().unwrap().starts_with("leader"), "{lease}");

    // The same through `lqx-server status`.
    let out = tokio::process::Command::new(bin("lqx-server"))
        .arg("status")
        .env("LQX_SERVER", &s.addr)
        .env("LQX_TOKEN", s.token().unwrap())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let lease_line = text
        .lines()
        .find(|l| l.starts_with("leader-lease"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        lease_line.contains("ago") && lease_line.contains("ok: leader"),
        "{text}"
    );
    // Without a token it fails with the reason.
    let out = tokio::process::Command::new(bin("lqx-server"))
        .arg("status")
        .env("LQX_SERVER", &s.addr)
        .env_remove("LQX_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthenticated"));

    // And per task in /metrics.
    let (st, m) = s.get("/metrics").await;
    assert_eq!(st, 200);
    assert!(
        m.contains("lqx_background_task_runs_total{task=\"leader-lease\"}"),
        "{m}"
    );
    assert!(
        m.contains("lqx_background_task_last_run_timestamp_seconds{task=\"host-checks\"}"),
        "{m}"
    );
}

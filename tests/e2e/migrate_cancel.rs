//! `lqx vm migrate VM --cancel` through the real server: a live migration between simulated
//! hosts (a `--sim` cluster file), held in flight by its own `--bandwidth` cap, is cancelled
//! by a second `lqx` process. The VM stays running on its source, the migration is gone from
//! `vm get` and `vm list`, the audit log records the cancel, and a cancel with nothing in
//! flight fails with the precondition exit code.

use crate::cli::{Lqx, Out};
use lqx_e2e::{Engine, Options, Server};
use serde_json::Value;
use std::time::Duration;

/// Two hosts; `web` (4 GiB, running) on node-1. At 1 MiB/s its migration takes over an hour.
const CLUSTER: &str = "\
nodes:
  - {name: node-1, cpu_cores: 8, memory_mib: 16384}
  - {name: node-2, cpu_cores: 8, memory_mib: 16384}
vms:
  - {name: web, node: node-1, cpu_cores: 2, memory_mib: 4096}
";

/// Starts `lqx vm migrate web --to node-2 --bandwidth 1` in the background and waits until
/// `vm get` shows it copying; returns the running command.
async fn start_slow_migration(a: &Lqx) -> tokio::task::JoinHandle<Out> {
    let args = ["vm", "migrate", "web", "--to", "node-2", "--bandwidth", "1"];
    let cmd = a.spawn(&args);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let vm = a.json(&["vm", "get", "web"]).await;
        let m = &vm["migration"];
        if m["processed_bytes"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(m["target_node"], "node-2", "{vm}");
            assert_eq!(m["live"], true, "{vm}");
            assert_eq!(m["total_bytes"], 4096u64 * 1024 * 1024, "{vm}");
            assert_eq!(vm["state"], "migrating", "{vm}");
            assert_eq!(vm["node"], "node-1", "{vm}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the migration never showed progress: {vm}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cmd
}

/// `web` back where it was: running on node-1, no migration in `vm get` or `vm list`.
#[track_caller]
fn assert_on_source(vm: &Value) {
    assert_eq!(vm["name"], "web", "{vm}");
    assert_eq!(vm["node"], "node-1", "{vm}");
    assert_eq!(vm["state"], "running", "{vm}");
    assert!(vm.get("migration").is_none(), "a migration is still shown: {vm}");
}

#[tokio::test]
async fn cli_cancels_a_live_migration_in_flight() {
    let s = Server::start(
        Engine::Sqlite,
        Options {
            sim: Some(CLUSTER.into()),
            ..Default::default()
        },
    )
    .await;
    let a = Lqx::admin(&s).await;

    // Nothing in flight: a conflict (exit 6) that says so, and nothing on stdout.
    let out = a.run(&["vm", "migrate", "web", "--cancel"]).await;
    out.expect_error(6, "cancel with nothing in flight", None);
    assert!(out.stderr.contains("VM web is not being migrated"), "{}", out.stderr);
    // An unknown VM: not found (exit 3).
    a.run(&["vm", "migrate", "nope", "--cancel"])
        .await
        .expect_error(3, "cancel of an unknown VM", None);

    // Text output: the cancel is reported on stderr, the migration's own command fails.
    let migrating = start_slow_migration(&a).await;
    let list = a.ok(&["vm", "list"]).await;
    let row = list
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("-> node-2"), "vm list shows the migration: {row}");
    let out = a.run(&["vm", "migrate", "web", "--cancel"]).await;
    out.expect_code(0, "cancel");
    assert_eq!(out.stdout, "", "text mode prints no data");
    assert!(
        out.stderr
            .contains("Migration of VM web cancelled; it keeps running on its node"),
        "{}",
        out.stderr
    );
    // The cancel answers once the migration has ended: the VM reads back as it was at once.
    assert_on_source(&a.json(&["vm", "get", "web"]).await);
    let list = a.json(&["vm", "list"]).await;
    let web = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "web")
        .unwrap_or_else(|| panic!("{list}"));
    assert_on_source(web);
    let text = a.ok(&["vm", "list"]).await;
    assert!(!text.contains("->"), "no migration in the table: {text}");
    let mig = tokio::time::timeout(Duration::from_secs(30), migrating)
        .await
        .expect("the migrating command ends after the cancel")
        .unwrap();
    // It printed its progress, then that the migration was cancelled (a conflict, exit 6).
    mig.expect_code(6, "the cancelled migration's own command");
    let last = mig.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("migration of VM web was cancelled; it keeps running"),
        "{}",
        mig.stderr
    );

    // JSON output: the VM as `vm get -o json` shows it, back on its source.
    let migrating = start_slow_migration(&a).await;
    let vm = a.json(&["vm", "migrate", "web", "--cancel"]).await;
    assert_on_source(&vm);
    assert_eq!(vm["cpu_cores"], 2, "{vm}");
    assert_eq!(vm["memory_mib"], 4096, "{vm}");
    tokio::time::timeout(Duration::from_secs(30), migrating)
        .await
        .expect("the second migrating command ends")
        .unwrap()
        .expect_code(6, "the second cancelled migration");
    assert_on_source(&a.json(&["vm", "get", "web"]).await);

    // A later migration is not hindered by the cancelled ones (the target is free again).
    let moved = a.json(&["vm", "migrate", "web", "--to", "node-2", "--wait"]).await;
    assert_eq!(moved["vm"]["node"], "node-2", "{moved}");
    assert_eq!(moved["vm"]["state"], "running", "{moved}");

    // The audit log tells cancels from migrations: two cancels ok, one refused, one unknown VM.
    let entries = a
        .json(&["audit", "list", "--action", "vm.migrate", "--limit", "0"])
        .await;
    let entries = entries.as_array().unwrap();
    let cancels: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["detail"].as_str().is_some_and(|d| d.ends_with("cancel")))
        .map(|e| (e["result"].as_str().unwrap(), e["resource_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cancels,
        [("ok", "web"), ("ok", "web"), ("error", "nope"), ("error", "web")],
        "newest first: {entries:#?}"
    );
    let migrations = entries
        .iter()
        .filter(|e| !e["detail"].as_str().unwrap_or("").contains("cancel"))
        .count();
    assert_eq!(migrations, 3, "two cancelled, one done: {entries:#?}");
}

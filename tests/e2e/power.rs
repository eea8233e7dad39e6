//! Host power through the real server and CLI, against the Redfish emulator (sushy-emulator,
//! HTTPS, basic auth): `lqx node power off` is refused while a VM runs there, then puts the
//! host in standby (shown by `lqx node list`), where the simulated host behind the BMC is
//! silent; `lqx node power on` brings it back once the host is heard; every power RPC is
//! audited.

#[path = "../../lqx-core/tests/bmc/mod.rs"]
mod bmc;

use std::{process::Command, time::Duration};

use lqx_e2e::{Options, Server, bin, engines};
use serde_json::{Value, json};

const NODES: &str = "limiquantix.compute.v1.NodeService";

async fn node(s: &Server, name: &str) -> Value {
    let (st, v) = s.call(&format!("{NODES}/GetNode"), json!({"id": name})).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn lqx(s: &Server, args: &[&str]) -> std::process::Output {
    Command::new(bin("lqx"))
        .args(args)
        .env("LQX_SERVER", &s.addr)
        .env("LQX_TOKEN", s.token().unwrap())
        .env("LQX_NO_INPUT", "true")
        .env("NO_COLOR", "1")
        .env_remove("LQX_CONTEXT")
        .env_remove("LQX_OUTPUT")
        .output()
        .unwrap()
}

#[tokio::test]
async fn node_power_off_and_on_through_a_redfish_bmc() {
    for engine in engines() {
        let Some(bmc) = bmc::Sushy::start("On").await else {
            return;
        };
        let c = bmc.config();
        let config = format!(
            "nodes:\n  - {{name: node-1, uri: 'sim://node-1'}}\n  - {{name: node-2, uri: 'sim://node-2'}}\n\
             power:\n  poll_interval: 200ms\n  nodes:\n    node-1: {{kind: redfish, address: '{}', username: {}, \
             password_file: '{}', ca_file: '{}'}}\n",
            c.address,
            bmc::USER,
            c.password_file.unwrap().display(),
            c.ca_file.unwrap().display()
        );
        let mut s = Server::start(
            engine,
            Options {
                config: Some(config),
                ..Default::default()
            },
        )
        .await;
        s.login_admin().await;
        assert_eq!(node(&s, "node-1").await["powerState"], "on", "{engine:?}");

        let (st, v) = s
            .call(
                "limiquantix.compute.v1.VMService/CreateVM",
                json!({"name": "web-1", "spec": {"cpuCores": 1, "memoryMib": 512}, "node": "node-1", "start": true}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let vm_id = v["id"].as_str().unwrap().to_string();
        // Refused with the reason while the VM runs; the CLI exits with the conflict code.
        let out = lqx(&s, &["node", "power", "off", "node-1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{err}");
        assert!(
            err.contains("web-1") && err.contains("maintenance enter node-1"),
            "{err}"
        );
        assert_eq!(node(&s, "node-1").await["powerState"], "on");
        // A node without a controller is refused, naming the fix.
        let (st, v) = s.call(&format!("{NODES}/PowerOffNode"), json!({"id": "node-2"})).await;
        assert_eq!((st, v["code"].as_str()), (412, Some("failed_precondition")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("power.nodes"), "{v}");

        let (st, v) = s
            .call(
                "limiquantix.compute.v1.VMService/StopVM",
                json!({"id": vm_id, "force": true}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let (st, v) = s
            .call("limiquantix.compute.v1.VMService/DeleteVM", json!({"id": vm_id}))
            .await;
        assert_eq!(st, 200, "{v}");
        let out = lqx(&s, &["node", "power", "off", "node-1", "-o", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["power_state"], "powering_off");
        let deadline = std::time::Instant::now() + Duration::from_secs(25);
        while node(&s, "node-1").await["powerState"] != "standby" {
            assert!(std::time::Instant::now() < deadline, "node-1 not in standby");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let out = lqx(&s, &["node", "list"]);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.lines().next().unwrap().contains("POWER"), "{table}");
        let row = table.lines().find(|l| l.starts_with("node-1")).unwrap();
        assert!(row.contains("standby"), "{table}");
        let out = lqx(&s, &["node", "power", "status", "node-1", "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (&v["power_state"], &v["controller"], &v["bmc_power_state"]),
            (&json!("standby"), &json!("redfish"), &json!("standby"))
        );
        // Nothing is placed on a host in standby.
        let (st, v) = s
            .call(
                "limiquantix.compute.v1.VMService/CreateVM",
                json!({"name": "web-2", "spec": {"cpuCores": 1, "memoryMib": 512}, "node": "node-1"}),
            )
            .await;
        assert_ne!(st, 200, "placed on node-1 in standby: {v}");
        // The simulated host follows its BMC: powered off, it is silent. Two reports of node-2
        // later node-1 has sent none and is still in standby (HA leaves it alone).
        s.heartbeats("node-2", 1).await;
        let silent_since = node(&s, "node-1").await["lastHeartbeat"].clone();
        s.heartbeats("node-2", 2).await;
        let v = node(&s, "node-1").await;
        assert_eq!(
            (&v["powerState"], &v["lastHeartbeat"]),
            (&json!("standby"), &silent_since),
            "{v}"
        );
        assert_ne!(v["health"], "FAILED", "{v}");

        // On again: powering_on until the host is heard (once its BMC says on).
        let out = lqx(&s, &["node", "power", "on", "node-1", "-o", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let deadline = std::time::Instant::now() + Duration::from_secs(25);
        while node(&s, "node-1").await["powerState"] != "on" {
            assert!(std::time::Instant::now() < deadline, "node-1 not on again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let v = node(&s, "node-1").await;
        assert_ne!(v["lastHeartbeat"], silent_since, "heard again after the power-on: {v}");
        assert_ne!(v["health"], "FAILED", "{v}");

        let (st, v) = s
            .call(
                "limiquantix.auth.v1.AuthService/ListAuditEntries",
                json!({"pageSize": 1000}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let actions: Vec<(String, String)> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"].as_str().unwrap_or_default().contains("Power"))
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["resourceId"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for a in ["compute.NodeService/PowerOffNode", "compute.NodeService/PowerOnNode"] {
            assert!(
                actions.iter().any(|(x, r)| x == a && r == "node-1"),
                "{a} audited: {actions:?}"
            );
        }
        s.terminate().await;
    }
}

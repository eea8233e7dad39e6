//! VMs and nodes over Connect JSON (as curl) and gRPC, on every engine.

use lqx_core::api::compute::v1 as pb;
use lqx_e2e::{Engine, Options, Server, engines};
use serde_json::{Value, json};

const VMS: &str = "limiquantix.compute.v1.VMService";
const NODES: &str = "limiquantix.compute.v1.NodeService";

async fn dev(engine: Engine) -> Server {
    let mut s = Server::dev(engine).await;
    s.login_admin().await;
    s
}

fn vm_body(name: &str, cpu: u32, mem: u64) -> Value {
    json!({"name": name, "spec": {"cpuCores": cpu, "memoryMib": mem, "disks": [{"name": "root", "sizeMib": 10240}]}})
}

#[tokio::test]
async fn vm_lifecycle_over_connect_json() {
    for engine in engines() {
        let s = dev(engine).await;
        let (st, vm) = s.call(&format!("{VMS}/CreateVM"), vm_body("web-1", 2, 2048)).await;
        assert_eq!(st, 200, "{engine:?}: {vm}");
        assert_eq!(vm["name"], "web-1");
        assert_eq!(vm["status"]["state"], "VM_STATE_STOPPED");
        assert!(vm["status"]["nodeName"].as_str().unwrap().starts_with("node-"), "{vm}");
        let id = vm["id"].as_str().unwrap().to_string();

        let (st, started) = s.call(&format!("{VMS}/StartVM"), json!({"id": "web-1"})).await;
        assert_eq!(st, 200, "{started}");
        assert_eq!(started["status"]["state"], "VM_STATE_RUNNING");
        // Starting again is a no-op, not an error.
        let (st, _) = s.call(&format!("{VMS}/StartVM"), json!({"id": id})).await;
        assert_eq!(st, 200);

        // A running VM is not deleted without force.
        let (st, err) = s.call(&format!("{VMS}/DeleteVM"), json!({"id": id})).await;
        assert_eq!(st, 412, "{err}");
        assert_eq!(err["code"], "failed_precondition");

        let (st, stopped) = s.call(&format!("{VMS}/StopVM"), json!({"id": id, "force": true})).await;
        assert_eq!(st, 200, "{stopped}");
        assert_eq!(stopped["status"]["state"], "VM_STATE_STOPPED");

        let (st, got) = s.call(&format!("{VMS}/GetVM"), json!({"id": id})).await;
        assert_eq!(st, 200);
        assert_eq!(
            got["spec"]["memoryMib"], "2048",
            "uint64 is a JSON string in proto3 JSON"
        );

        let (st, _) = s.call(&format!("{VMS}/DeleteVM"), json!({"id": id})).await;
        assert_eq!(st, 200);
        let (st, err) = s.call(&format!("{VMS}/GetVM"), json!({"id": id})).await;
        assert_eq!(st, 404);
        assert_eq!(err["code"], "not_found");
    }
}

#[tokio::test]
async fn list_pages_and_filters() {
    for engine in engines() {
        let s = dev(engine).await;
        for i in 0..12 {
            let mut b = vm_body(&format!("app-{i:02}"), 1, 256);
            b["labels"] = json!({"tier": if i % 3 == 0 { "db" } else { "web" }});
            b["start"] = json!(i % 2 == 0);
            let (st, v) = s.call(&format!("{VMS}/CreateVM"), b).await;
            assert_eq!(st, 200, "{v}");
        }
        let mut names = vec![];
        let mut token = String::new();
        loop {
            let (st, page) = s
                .call(&format!("{VMS}/ListVMs"), json!({"pageSize": 5, "pageToken": token}))
                .await;
            assert_eq!(st, 200, "{page}");
            assert_eq!(page["totalCount"], "12");
            for v in page["vms"].as_array().unwrap() {
                names.push(v["name"].as_str().unwrap().to_string());
            }
            token = page["nextPageToken"].as_str().unwrap_or("").to_string();
            if token.is_empty() {
                break;
            }
        }
        let want: Vec<_> = (0..12).map(|i| format!("app-{i:02}")).collect();
        assert_eq!(names, want, "{engine:?}");

        let (_, running) = s
            .call(&format!("{VMS}/ListVMs"), json!({"state": "VM_STATE_RUNNING"}))
            .await;
        assert_eq!(running["vms"].as_array().unwrap().len(), 6);
        let (_, db) = s
            .call(&format!("{VMS}/ListVMs"), json!({"labels": {"tier": "db"}}))
            .await;
        assert_eq!(db["vms"].as_array().unwrap().len(), 4);
        let (_, n1) = s.call(&format!("{VMS}/ListVMs"), json!({"node": "node-1"})).await;
        let (_, n2) = s.call(&format!("{VMS}/ListVMs"), json!({"node": "node-2"})).await;
        let (_, n3) = s.call(&format!("{VMS}/ListVMs"), json!({"node": "node-3"})).await;
        let count = |v: &Value| v["vms"].as_array().map_or(0, Vec::len);
        assert_eq!(count(&n1) + count(&n2) + count(&n3), 12);
        assert!(
            count(&n1) >= 3 && count(&n2) >= 3 && count(&n3) >= 3,
            "the scheduler spreads VMs"
        );
    }
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let s = dev(Engine::Sqlite).await;
    let create = format!("{VMS}/CreateVM");
    let (st, e) = s.raw(&create, "application/json", b"{not json".to_vec()).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("invalid_argument")), "{e}");
    let (st, e) = s
        .call(&create, json!({"name": "x", "spec": {"cpuCores": "many"}}))
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = s.raw(&create, "text/plain", b"{}".to_vec()).await;
    assert_eq!(st, 415, "{e}");
    let big = vec![b' '; 5 * 1024 * 1024];
    let (st, e) = s.raw(&create, "application/json", big).await;
    assert_eq!((st, e["code"].as_str()), (429, Some("resource_exhausted")), "{e}");
    let (st, e) = s.call(&create, vm_body("Bad_Name", 1, 256)).await;
    assert_eq!(st, 400);
    assert!(e["message"].as_str().unwrap().starts_with("name:"), "{e}");
    let (st, e) = s.call(&create, vm_body("huge", 1, 1 << 40)).await;
    assert_eq!(st, 400);
    assert!(e["message"].as_str().unwrap().contains("spec.memory_mib"), "{e}");
    let (st, e) = s.call(&create, vm_body("zero", 0, 256)).await;
    assert!(
        st == 400 && e["message"].as_str().unwrap().contains("spec.cpu_cores"),
        "{e}"
    );
    // Valid, but fits no node (each dev node has 64 GiB).
    let (st, e) = s.call(&create, vm_body("too-big", 4, 200_000)).await;
    assert_eq!((st, e["code"].as_str()), (429, Some("resource_exhausted")), "{e}");
    let (st, e) = s
        .call(
            &format!("{VMS}/GetVM"),
            json!({"id": "01890000-0000-7000-8000-000000000000"}),
        )
        .await;
    assert_eq!((st, e["code"].as_str()), (404, Some("not_found")));
    let (st, _) = s.call(&format!("{VMS}/NoSuchMethod"), json!({})).await;
    assert_eq!(st, 404);
    let (st, e) = s.call(&format!("{VMS}/ListVMs"), json!({"pageToken": "garbage"})).await;
    assert_eq!(st, 400, "{e}");
    // Nothing half-written: only what succeeded exists.
    let (_, list) = s.call(&format!("{VMS}/ListVMs"), json!({})).await;
    assert!(list["vms"].as_array().is_none_or(Vec::is_empty), "{list}");
    // The server survived all of it.
    let (st, _) = s.get("/healthz").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn maintenance_keeps_new_vms_off_a_node() {
    for engine in engines() {
        let s = dev(engine).await;
        let (st, n) = s
            .call(&format!("{NODES}/EnterMaintenance"), json!({"id": "node-2"}))
            .await;
        assert_eq!(st, 200, "{n}");
        assert_eq!(n["phase"], "NODE_PHASE_MAINTENANCE");
        let (st, _) = s.call(&format!("{NODES}/DisableNode"), json!({"id": "node-3"})).await;
        assert_eq!(st, 200);
        for i in 0..6 {
            let (st, v) = s
                .call(&format!("{VMS}/CreateVM"), vm_body(&format!("m-{i}"), 1, 512))
                .await;
            assert_eq!(st, 200, "{v}");
            assert_eq!(v["status"]["nodeName"], "node-1", "{engine:?}");
        }
        // Pinning to a node in maintenance is refused with the reason.
        let mut b = vm_body("pinned", 1, 512);
        b["node"] = json!("node-2");
        let (st, e) = s.call(&format!("{VMS}/CreateVM"), b).await;
        assert_eq!(st, 412, "{e}");
        let (st, n) = s
            .call(&format!("{NODES}/ExitMaintenance"), json!({"id": "node-2"}))
            .await;
        assert_eq!((st, n["phase"].as_str()), (200, Some("NODE_PHASE_READY")));
        let (_, nodes) = s.call(&format!("{NODES}/ListNodes"), json!({})).await;
        let nodes = nodes["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 3);
        let n1 = nodes.iter().find(|n| n["name"] == "node-1").unwrap();
        assert_eq!(n1["allocated"]["memoryMib"], "3072");
    }
}

#[tokio::test]
async fn grpc_create_list_start_stop_delete() {
    for engine in engines() {
        let s = dev(engine).await;
        let mut vms = pb::vm_service_client::VmServiceClient::new(s.channel().await);
        let spec = pb::VmSpec {
            cpu_cores: 2,
            memory_mib: 1024,
            ..Default::default()
        };
        for i in 0..3 {
            let req = pb::CreateVmRequest {
                name: format!("g-{i}"),
                spec: Some(spec.clone()),
                ..Default::default()
            };
            vms.create_vm(s.grpc(req)).await.unwrap();
        }
        let page = vms
            .list_v_ms(s.grpc(pb::ListVMsRequest {
                page_size: 2,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.vms.len(), 2);
        assert!(!page.next_page_token.is_empty());
        let vm = vms
            .start_vm(s.grpc(pb::StartVmRequest {
                id: "g-1".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(vm.status.unwrap().state, pb::VmState::Running as i32);
        let vm = vms
            .stop_vm(s.grpc(pb::StopVmRequest {
                id: "g-1".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(vm.status.unwrap().state, pb::VmState::Stopped as i32);
        vms.delete_vm(s.grpc(pb::DeleteVmRequest {
            id: "g-1".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
        let err = vms
            .get_vm(s.grpc(pb::GetVmRequest {
                id: "g-1".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound, "{engine:?}");
        // The same idempotency key gives the same VM, created once.
        let req = pb::CreateVmRequest {
            name: "idem".into(),
            spec: Some(spec.clone()),
            request_id: "req-42".into(),
            ..Default::default()
        };
        let a = vms.create_vm(s.grpc(req.clone())).await.unwrap().into_inner();
        let b = vms.create_vm(s.grpc(req)).await.unwrap().into_inner();
        assert_eq!(a.id, b.id);
    }
}

#[tokio::test]
async fn metrics_and_graceful_shutdown() {
    let s = dev(Engine::Sqlite).await;
    let _ = s.call(&format!("{VMS}/ListVMs"), json!({})).await;
    let (st, text) = s.get("/metrics").await;
    assert_eq!(st, 200);
    assert!(
        text.contains("lqx_requests_total{method=\"/limiquantix.compute.v1.VMService/ListVMs\""),
        "{text}"
    );
    let status = s.terminate().await;
    assert!(status.success(), "exit on SIGTERM: {status:?}");
}

#[tokio::test]
async fn sim_cluster_file_loads_nodes_and_vms() {
    let cluster = r#"
nodes:
  - {name: host-a, cpu_cores: 8, memory_mib: 16384}
  - {name: host-b, cpu_cores: 8, memory_mib: 16384, labels: {rack: b}}
vms:
  - {name: web-1, node: host-a, cpu_cores: 2, memory_mib: 2048}
  - {name: web-2, node: host-b, cpu_cores: 2, memory_mib: 2048, usage: {cpu_percent: 50, memory_mib: 1024}}
"#;
    let mut s = Server::start(
        Engine::Sqlite,
        Options {
            sim: Some(cluster.into()),
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    let (_, nodes) = s.call(&format!("{NODES}/ListNodes"), json!({})).await;
    let names: Vec<_> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["host-a", "host-b"]);
    let (_, vm) = s.call(&format!("{VMS}/GetVM"), json!({"id": "web-2"})).await;
    assert_eq!(vm["status"]["nodeName"], "host-b");
    assert_eq!(vm["status"]["state"], "VM_STATE_RUNNING");
}

#[tokio::test]
async fn a_second_server_on_the_same_sqlite_file_is_refused() {
    let s = dev(Engine::Sqlite).await;
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(lqx_e2e::bin("lqx-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(s.data_dir.path())
            .env("LQX_BOOTSTRAP_ADMIN_PASSWORD", lqx_e2e::ADMIN_PASSWORD)
            .output(),
    )
    .await
    .expect("the second server must stop at once")
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("another lqx-server is using the database"),
        "{err}"
    );
    // The first server is unharmed and its VM reads (served from memory) still agree with
    // what it writes.
    let (st, vm) = s.call(&format!("{VMS}/CreateVM"), vm_body("after-1", 1, 512)).await;
    assert_eq!(st, 200, "{vm}");
    let (st, got) = s.call(&format!("{VMS}/GetVM"), json!({"id": vm["id"]})).await;
    assert_eq!((st, &got["name"]), (200, &json!("after-1")));
    let (st, _) = s
        .call(
            &format!("{VMS}/UpdateVM"),
            json!({"id": vm["id"], "description": "changed", "updateMask": ["description"]}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, got) = s.call(&format!("{VMS}/GetVM"), json!({"id": vm["id"]})).await;
    assert_eq!(got["description"], "changed");
}

#[tokio::test]
async fn update_resizes_within_capacity_and_refuses_impossible_sizes() {
    let s = dev(Engine::Sqlite).await;
    let (st, vm) = s.call(&format!("{VMS}/CreateVM"), vm_body("resize-1", 1, 256)).await;
    assert_eq!(st, 200, "{vm}");
    let update = |cpu: u32, mem: u64| {
        json!({"id": "resize-1", "spec": {"cpuCores": cpu, "memoryMib": mem},
               "updateMask": ["spec.cpu_cores", "spec.memory_mib"]})
    };
    let (st, got) = s.call(&format!("{VMS}/UpdateVM"), update(2, 512)).await;
    assert_eq!(st, 200, "{got}");
    let (_, got) = s.call(&format!("{VMS}/GetVM"), json!({"id": "resize-1"})).await;
    assert_eq!(
        (&got["spec"]["cpuCores"], &got["spec"]["memoryMib"]),
        (&json!(2), &json!("512"))
    );
    // Below the minimum, and more than any node has: refused, the VM unchanged.
    let (st, err) = s.call(&format!("{VMS}/UpdateVM"), update(2, 16)).await;
    assert_eq!(st, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("spec.memory_mib"), "{err}");
    let (st, err) = s.call(&format!("{VMS}/UpdateVM"), update(2, 1 << 40)).await;
    assert!(st == 400 || st == 412 || st == 429, "{st} {err}");
    let (_, got) = s.call(&format!("{VMS}/GetVM"), json!({"id": "resize-1"})).await;
    assert_eq!(got["spec"]["memoryMib"], "512");
}

/// UpdateVM, UpdateProject and UpdateDRSConfig read `update_mask` by one rule: snake_case or
/// lowerCamelCase paths, an unknown path refused by name, `*` for every field, and an empty
/// mask for the fields the request gives.
#[tokio::test]
async fn every_update_rpc_reads_its_mask_by_one_rule() {
    const PROJECTS: &str = "limiquantix.project.v1.ProjectService";
    const DRS: &str = "limiquantix.drs.v1.DRSService";
    let s = dev(Engine::Sqlite).await;
    let (st, vm) = s.call(&format!("{VMS}/CreateVM"), vm_body("mask-1", 1, 256)).await;
    assert_eq!(st, 200, "{vm}");

    // An empty mask takes what is given: the description, not the (absent) spec.
    let (st, got) = s
        .call(
            &format!("{VMS}/UpdateVM"),
            json!({"id": "mask-1", "description": "given"}),
        )
        .await;
    assert_eq!(st, 200, "{got}");
    assert_eq!(
        (&got["description"], &got["spec"]["cpuCores"]),
        (&json!("given"), &json!(1))
    );
    // Nothing named and nothing given, or an unknown path: invalid_argument.
    let (st, err) = s.call(&format!("{VMS}/UpdateVM"), json!({"id": "mask-1"})).await;
    assert_eq!((st, err["code"].as_str()), (400, Some("invalid_argument")), "{err}");
    for (rpc, body) in [
        ("VMService", json!({"id": "mask-1", "updateMask": ["spec.gpuCount"]})),
        (
            "ProjectService",
            json!({"project": "default", "updateMask": ["spec.gpuCount"]}),
        ),
        ("DRSService", json!({"config": {}, "updateMask": ["spec.gpuCount"]})),
    ] {
        let path = match rpc {
            "VMService" => format!("{VMS}/UpdateVM"),
            "ProjectService" => format!("{PROJECTS}/UpdateProject"),
            _ => format!("{DRS}/UpdateDRSConfig"),
        };
        let (st, err) = s.call(&path, body).await;
        assert_eq!(st, 400, "{rpc}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains("\"spec.gpuCount\""),
            "{rpc}: {err}"
        );
    }

    // The same for a project, in lowerCamelCase.
    let (st, p) = s
        .call(&format!("{PROJECTS}/CreateProject"), json!({"name": "mask-p"}))
        .await;
    assert_eq!(st, 200, "{p}");
    let (st, p) = s
        .call(
            &format!("{PROJECTS}/UpdateProject"),
            json!({"project": "mask-p", "quota": {"memoryMib": 4096}, "updateMask": ["quota.memoryMib"]}),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["quota"]["memoryMib"], "4096");

    // And for the DRS configuration: an empty mask changes only the given threshold.
    let (_, before) = s.call(&format!("{DRS}/GetDRSStatus"), json!({})).await;
    let (st, cfg) = s
        .call(
            &format!("{DRS}/UpdateDRSConfig"),
            json!({"config": {"thresholdCpu": 71.0}}),
        )
        .await;
    assert_eq!(st, 200, "{cfg}");
    assert_eq!(cfg["thresholdCpu"], 71.0);
    assert_eq!(cfg["thresholdMemory"], before["config"]["thresholdMemory"], "{before}");
    assert_eq!(cfg["intervalSeconds"], before["config"]["intervalSeconds"], "{before}");
}

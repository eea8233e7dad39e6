//! Projects end to end on the real server (every engine): two tenants whose users have no
//! global role. For every RPC in the RBAC table, a member of project A naming project B's
//! VM, project and users gets the very answer it gets for names that do not exist (so it
//! can neither see nor guess them), its event stream and audit log hold nothing of B, and
//! quotas, `lqx project` and `--project` work through the real `lqx` binary.

use futures::StreamExt;
use lqx_core::api::events::v1 as evpb;
use lqx_core::api::events::v1::event_service_client::EventServiceClient;
use lqx_core::auth::rbac::{self, Access};
use lqx_e2e::{ADMIN_PASSWORD, Engine, Server, bin, engines};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const AUTH: &str = "limiquantix.auth.v1.AuthService";
const VMS: &str = "limiquantix.compute.v1.VMService";
const PROJECTS: &str = "limiquantix.project.v1.ProjectService";

/// A Connect JSON call with a token and an optional `lqx-project` header: status and body.
async fn call(s: &Server, token: &str, project: Option<&str>, method: &str, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/{method}", s.addr))
        .header("Content-Type", "application/json")
        .bearer_auth(token)
        .body(body.to_string());
    if let Some(p) = project {
        req = req.header("lqx-project", p);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn ok(s: &Server, token: &str, project: Option<&str>, method: &str, body: Value) -> Value {
    let (st, b) = call(s, token, project, method, &body).await;
    assert_eq!(st, 200, "{method}: {b}");
    b
}

async fn login(s: &Server, user: &str, password: &str) -> String {
    let b = reqwest::Client::new()
        .post(format!("{}/{AUTH}/Login", s.addr))
        .header("Content-Type", "application/json")
        .body(json!({"username": user, "password": password}).to_string())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    b["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("login {user}: {b}"))
        .to_string()
}

/// The identifiers a request may name: project B's real ones, or made-up ones.
struct Names {
    vm_id: String,
    vm_name: String,
    project: String,
    project_id: String,
    user: String,
}

impl Names {
    /// Every field any request message has that names something, filled with these names
    /// (unknown fields are ignored by the server).
    fn body(&self) -> Value {
        json!({
            "id": self.vm_id, "name": self.vm_name, "projectId": self.project_id,
            "project": self.project, "user": self.user, "userId": self.user,
            "resourceId": self.vm_id, "sourceId": self.vm_id, "vmId": self.vm_id,
            "spec": {"cpuCores": 1, "memoryMib": 256}, "updateMask": ["description"],
            "description": "probe", "role": "admin", "password": "probe-password-123",
        })
    }

    /// `text` with these names replaced by placeholders, so answers for real and made-up
    /// names can be compared.
    fn mask(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (v, k) in [
            (&self.vm_id, "<vm-id>"),
            (&self.project_id, "<project-id>"),
            (&self.vm_name, "<vm>"),
            (&self.project, "<project>"),
            (&self.user, "<user>"),
        ] {
            t = t.replace(v.as_str(), k);
        }
        t
    }

    fn leaked_in(&self, text: &str) -> Option<&str> {
        [&self.vm_id, &self.project_id, &self.vm_name, &self.user]
            .into_iter()
            .find(|v| text.contains(v.as_str()))
            .map(String::as_str)
    }
}

struct Tenants {
    admin: String,
    alice: String,
    a_vm: String,
    b: Names,
}

/// Projects team-a (alice, admin there) and team-b (bob), each with a VM; alice and bob
/// have no global role.
async fn tenants(s: &Server) -> Tenants {
    let admin = login(s, "admin", ADMIN_PASSWORD).await;
    for (p, quota) in [("team-a", json!({"vms": 2})), ("team-b", json!({}))] {
        ok(
            s,
            &admin,
            None,
            &format!("{PROJECTS}/CreateProject"),
            json!({"name": p, "quota": quota}),
        )
        .await;
    }
    let b_project = ok(
        s,
        &admin,
        None,
        &format!("{PROJECTS}/GetProject"),
        json!({"project": "team-b"}),
    )
    .await;
    for (user, project) in [("alice", "team-a"), ("bob", "team-b")] {
        ok(
            s,
            &admin,
            None,
            &format!("{AUTH}/CreateUser"),
            json!({"username": user, "password": format!("pw-of-{}-123456", user.len()), "role": "none"}),
        )
        .await;
        ok(
            s,
            &admin,
            None,
            &format!("{PROJECTS}/SetProjectMember"),
            json!({"project": project, "user": user, "role": "admin"}),
        )
        .await;
    }
    let vm = |name: &str| json!({"name": name, "spec": {"cpuCores": 1, "memoryMib": 256}});
    let a_vm = ok(s, &admin, Some("team-a"), &format!("{VMS}/CreateVM"), vm("app-a")).await;
    let b_vm = ok(s, &admin, Some("team-b"), &format!("{VMS}/CreateVM"), vm("secret-b")).await;
    assert_eq!(b_vm["projectId"], b_project["id"]);
    let alice = login(s, "alice", "pw-of-5-123456").await;
    Tenants {
        admin,
        alice,
        a_vm: a_vm["id"].as_str().unwrap().to_string(),
        b: Names {
            vm_id: b_vm["id"].as_str().unwrap().to_string(),
            vm_name: "secret-b".into(),
            project: "team-b".into(),
            project_id: b_project["id"].as_str().unwrap().to_string(),
            user: "bob".into(),
        },
    }
}

fn made_up() -> Names {
    Names {
        vm_id: lqx_core::model::VmId::new().to_string(),
        vm_name: "nosuch-vm".into(),
        project: "nosuch-project".into(),
        project_id: lqx_core::model::VmId::new().to_string(),
        user: "nosuch-user".into(),
    }
}

#[tokio::test]
async fn a_member_of_one_project_cannot_see_or_guess_another_over_any_rpc() {
    for engine in engines() {
        isolation(engine).await;
    }
}

async fn isolation(engine: Engine) {
    let s = Server::dev(engine).await;
    let t = tenants(&s).await;
    let fake = made_up();

    // Alice's event stream, open before anything happens in either project.
    let mut c = EventServiceClient::new(s.channel().await);
    let mut req = tonic::Request::new(evpb::SubscribeRequest::default());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {}", t.alice).parse().unwrap());
    let mut events = c.subscribe(req).await.expect("alice may subscribe").into_inner();

    // Every RPC, named by B's real identifiers and by made-up ones, with the project in the
    // header (B's, or the made-up one) and without (alice's default: not hers either).
    let skip = ["Login", "RefreshToken", "Logout", "Register", "Heartbeat"];
    let streams = ["WatchVM", "WatchVMs", "WatchNode", "WatchNodes", "Subscribe"];
    let mut probed = 0;
    for (path, access, _) in rbac::RULES {
        let method = path.rsplit('/').next().unwrap();
        if skip.contains(&method) || streams.contains(&method) || *access == Access::Public {
            continue;
        }
        let path = path.trim_start_matches('/');
        for with_header in [true, false] {
            let (real_h, fake_h) = match with_header {
                true => (Some(t.b.project.as_str()), Some(fake.project.as_str())),
                false => (None, None),
            };
            let (st_real, real) = call(&s, &t.alice, real_h, path, &t.b.body()).await;
            let (st_fake, made) = call(&s, &t.alice, fake_h, path, &fake.body()).await;
            let (real, made) = (real.to_string(), made.to_string());
            assert_eq!(
                st_real, st_fake,
                "{engine:?} {path} (header: {with_header}): B's names answer {real}, made-up ones {made}"
            );
            if st_real == 200 {
                // An answer about alice's own things: nothing of B's in it.
                assert_eq!(t.b.leaked_in(&real), None, "{engine:?} {path}: {real}");
            } else {
                assert_eq!(
                    t.b.mask(&real),
                    fake.mask(&made),
                    "{engine:?} {path} (header: {with_header}): the refusal differs for B's names"
                );
                if with_header && rbac::scope(&format!("/{path}")) == rbac::Scope::Project {
                    assert_eq!(st_real, 404, "{engine:?} {path}: another project is not found: {real}");
                }
            }
            probed += 1;
        }
    }
    assert!(probed > 100, "{probed} probes");

    // Watches over gRPC: B's VM and B's project are not found, like made-up ones.
    use lqx_core::api::compute::v1 as cpb;
    use lqx_core::api::compute::v1::vm_service_client::VmServiceClient;
    let mut vms = VmServiceClient::new(s.channel().await);
    for (id, header) in [(&t.b.vm_id, None), (&fake.vm_id, None), (&t.a_vm, Some("team-b"))] {
        let mut r = tonic::Request::new(cpb::WatchVmRequest {
            id: id.clone(),
            resume_from_sequence: 0,
        });
        r.metadata_mut()
            .insert("authorization", format!("Bearer {}", t.alice).parse().unwrap());
        if let Some(h) = header {
            r.metadata_mut().insert("lqx-project", h.parse().unwrap());
        }
        let Err(e) = vms.watch_vm(r).await else {
            panic!("{id}: a watch opened");
        };
        assert_eq!(e.code(), tonic::Code::NotFound, "{id}: {e:?}");
        assert!(!e.message().contains(&t.b.project_id));
    }

    // Things happen in both projects; alice's stream shows only hers.
    ok(
        &s,
        &t.admin,
        Some("team-b"),
        &format!("{VMS}/UpdateVM"),
        json!({"id": t.b.vm_id, "updateMask": ["description"], "description": "b changed"}),
    )
    .await;
    ok(
        &s,
        &t.admin,
        Some("team-a"),
        &format!("{VMS}/UpdateVM"),
        json!({"id": t.a_vm, "updateMask": ["description"], "description": "a changed"}),
    )
    .await;
    loop {
        let item = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("alice's own event within 20 s")
            .expect("stream open")
            .expect("no error");
        let e = item.event.expect("an event");
        let text = format!("{e:?}");
        assert_eq!(t.b.leaked_in(&text), None, "alice saw {text}");
        if e.resource_id == t.a_vm && text.contains("a changed") {
            break;
        }
    }

    // Her audit log (she is admin of team-a) holds nothing of B, though it was busy.
    let audit = ok(
        &s,
        &t.alice,
        None,
        &format!("{AUTH}/ListAuditEntries"),
        json!({"pageSize": 1000}),
    )
    .await;
    let text = audit.to_string();
    assert_eq!(t.b.leaked_in(&text), None, "{text}");
    assert!(
        text.contains(&t.a_vm),
        "alice's own project's entries are there: {text}"
    );
    // The admin sees B's entries.
    let all = ok(
        &s,
        &t.admin,
        None,
        &format!("{AUTH}/ListAuditEntries"),
        json!({"pageSize": 1000}),
    )
    .await;
    assert!(all.to_string().contains(&t.b.vm_id));

    // Alice lists only her project and her VMs.
    let projects = ok(&s, &t.alice, None, &format!("{PROJECTS}/ListProjects"), json!({})).await;
    let names: Vec<&str> = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team-a"]);
    let list = ok(&s, &t.alice, Some("team-a"), &format!("{VMS}/ListVMs"), json!({})).await;
    assert_eq!(list["vms"].as_array().unwrap().len(), 1, "{list}");
    // Open streams would hold the server's graceful shutdown.
    drop((events, c, vms));
    s.terminate().await;
}

/// Quota at create and resize, a non-empty project refused deletion, and `lqx project`
/// plus `--project` through the real CLI.
#[tokio::test]
async fn quotas_and_the_project_commands() {
    let s = Server::dev(Engine::Sqlite).await;
    let t = tenants(&s).await;
    let vm = |name: &str, cpu: u32| json!({"name": name, "spec": {"cpuCores": cpu, "memoryMib": 256}});
    // team-a allows 2 VMs and holds 1: one more fits, the third is refused.
    ok(&s, &t.alice, Some("team-a"), &format!("{VMS}/CreateVM"), vm("two", 1)).await;
    let (st, e) = call(
        &s,
        &t.alice,
        Some("team-a"),
        &format!("{VMS}/CreateVM"),
        &vm("three", 1),
    )
    .await;
    assert_eq!((st, e["code"].as_str()), (429, Some("resource_exhausted")), "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("VM count would be 3, the limit is 2"),
        "{e}"
    );
    // A vCPU limit refuses a resize past it.
    ok(
        &s,
        &t.admin,
        None,
        &format!("{PROJECTS}/UpdateProject"),
        json!({"project": "team-a", "updateMask": ["quota.vcpus"], "quota": {"vcpus": 3}}),
    )
    .await;
    let (st, e) = call(
        &s,
        &t.alice,
        Some("team-a"),
        &format!("{VMS}/UpdateVM"),
        &json!({"id": "two", "updateMask": ["spec.cpu_cores"], "spec": {"cpuCores": 4}}),
    )
    .await;
    assert_eq!(e["code"].as_str(), Some("resource_exhausted"), "{st} {e}");
    // The project still holds VMs: deleting it is refused with the reason.
    let (st, e) = call(
        &s,
        &t.admin,
        None,
        &format!("{PROJECTS}/DeleteProject"),
        &json!({"project": "team-b"}),
    )
    .await;
    assert_eq!(e["code"].as_str(), Some("failed_precondition"), "{st} {e}");
    assert!(e["message"].as_str().unwrap().contains("still holds 1 VM"), "{e}");

    // The CLI: --project on a command, `project use` as the context default, `project get`.
    let cfg = tempfile::tempdir().unwrap();
    let lqx = |args: &[&str], token: &str| {
        let out = Command::new(bin("lqx"))
            .args(args)
            .env("LQX_CONFIG_DIR", cfg.path())
            .env("LQX_SERVER", &s.addr)
            .env("LQX_TOKEN", token)
            .env_remove("LQX_PROJECT")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = lqx(&["--project", "team-a", "project", "get", "-o", "json"], &t.alice);
    assert_eq!(code, Some(0), "{err}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["name"], "team-a");
    assert_eq!(p["vms"], json!({"used": 2, "limit": 2}), "{out}");
    assert_eq!(p["vcpus"], json!({"used": 2, "limit": 3}), "{out}");
    assert_eq!(p["my_role"], "admin");
    let (code, out, _) = lqx(&["--project", "team-a", "vm", "list", "-o", "name"], &t.alice);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["app-a", "two"]);
    // Without a project alice acts in the default one, where she is nobody: not found.
    let (code, _, err) = lqx(&["vm", "get", "app-a"], &t.alice);
    assert_eq!(code, Some(3), "{err}");
    let (code, _, err) = lqx(&["--project", "team-b", "vm", "get", "secret-b"], &t.alice);
    assert_eq!(code, Some(3), "{err}");
    assert!(!err.contains(&t.b.vm_id), "{err}");
    // Members: the admin adds bob to team-a as a viewer.
    let (code, _, err) = lqx(
        &[
            "--project",
            "team-a",
            "project",
            "member",
            "add",
            "bob",
            "--role",
            "viewer",
        ],
        &t.admin,
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = lqx(
        &["--project", "team-a", "project", "member", "list", "-o", "json"],
        &t.alice,
    );
    assert_eq!(code, Some(0));
    let members: Value = serde_json::from_str(&out).unwrap();
    let roles: Vec<(String, String)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("alice".into(), "admin".into()), ("bob".into(), "viewer".into())]
    );
    // Creating projects is the cluster admin's.
    let (code, _, err) = lqx(&["project", "create", "mine"], &t.alice);
    assert_eq!(code, Some(5), "{err}");
    let (code, out, err) = lqx(
        &["project", "create", "team-c", "--max-vms", "1", "-o", "json"],
        &t.admin,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["vms"],
        json!({"used": 0, "limit": 1})
    );
    let (code, _, err) = lqx(&["project", "delete", "team-c", "--yes"], &t.admin);
    assert_eq!(code, Some(0), "{err}");
    s.terminate().await;
}

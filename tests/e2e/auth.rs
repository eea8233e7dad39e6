//! Authentication, authorization and audit end to end: the real server over Connect JSON
//! (as curl) and gRPC, on every engine.

use chrono::Utc;
use lqx_core::auth::jwt::{JwtConfig, JwtManager, SigningKey, TokenSubject, TokenType};
use lqx_core::auth::rbac::{self, Access, Caller};
use lqx_core::model::Role;
use lqx_e2e::{ADMIN_PASSWORD, Engine, Options, Server, engines};
use serde_json::{Value, json};
use std::path::PathBuf;

const AUTH: &str = "limiquantix.auth.v1.AuthService";
const VMS: &str = "limiquantix.compute.v1.VMService";

/// A Connect JSON call with an explicit credential (or none), as curl would make it.
/// Returns the status, the `Retry-After` header and the body.
async fn call_as(s: &Server, token: Option<&str>, method: &str, body: Value) -> (u16, Option<String>, Value) {
    call_with(&reqwest::Client::new(), &s.addr, token, method, body, &[]).await
}

async fn call_with(
    http: &reqwest::Client,
    addr: &str,
    token: Option<&str>,
    method: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut req = http
        .post(format!("{addr}/{method}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn login(s: &Server, user: &str, password: &str) -> (String, String) {
    let (st, _, b) = call_as(
        s,
        None,
        &format!("{AUTH}/Login"),
        json!({"username": user, "password": password}),
    )
    .await;
    assert_eq!(st, 200, "login {user}: {b}");
    (
        b["accessToken"].as_str().unwrap().to_string(),
        b["refreshToken"].as_str().unwrap().to_string(),
    )
}

async fn create_user(s: &Server, admin: &str, name: &str, role: &str, password: &str) -> String {
    let (st, _, u) = call_as(
        s,
        Some(admin),
        &format!("{AUTH}/CreateUser"),
        json!({"username": name, "password": password, "role": role, "email": format!("{name}@example.com")}),
    )
    .await;
    assert_eq!(st, 200, "{u}");
    u["id"].as_str().unwrap().to_string()
}

async fn api_key(s: &Server, token: &str, name: &str, role: &str) -> (String, String) {
    let (st, _, k) = call_as(
        s,
        Some(token),
        &format!("{AUTH}/CreateAPIKey"),
        json!({"name": name, "role": role}),
    )
    .await;
    assert_eq!(st, 200, "{k}");
    (
        k["key"]["id"].as_str().unwrap().to_string(),
        k["secret"].as_str().unwrap().to_string(),
    )
}

/// A server whose signing key the test knows (to mint an expired token), on `engine`.
async fn server_with_known_key(engine: Engine) -> (Server, SigningKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let key_file = dir.path().join("jwt.key");
    lqx_core::auth::service::write_private_file(&key_file, key.to_base64().expose().as_bytes()).unwrap();
    let config = dir.path().join("lqx.yaml");
    std::fs::write(&config, format!("auth:\n  signing_key_file: {}\n", key_file.display())).unwrap();
    let s = Server::start(
        engine,
        Options {
            args: vec!["--dev".into(), "--config".into(), config.display().to_string()],
            ..Default::default()
        },
    )
    .await;
    (s, key, dir)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Unauthenticated,
    Denied,
}

fn observed(status: u16, body: &Value) -> Outcome {
    match (status, body["code"].as_str()) {
        (401, Some("unauthenticated")) => Outcome::Unauthenticated,
        (403, Some("permission_denied")) => Outcome::Denied,
        (401 | 403, _) => panic!("{status} without the matching Connect code: {body}"),
        _ => Outcome::Allowed,
    }
}

/// What the table says for a verified caller.
fn expected_for(path: &str, caller: Caller) -> Outcome {
    match rbac::authorize(path, caller) {
        Ok(_) => Outcome::Allowed,
        Err(e) => match lqx_core::Error::from(e).kind {
            lqx_core::ErrorKind::Unauthenticated => Outcome::Unauthenticated,
            _ => Outcome::Denied,
        },
    }
}

/// What a caller whose credential does not verify (or who has none) gets.
fn expected_without_credential(path: &str) -> Outcome {
    match rbac::required(path) {
        Some(Access::Public | Access::JoinToken) => Outcome::Allowed,
        Some(_) => Outcome::Unauthenticated,
        None => Outcome::Denied,
    }
}

/// Every RPC in proto/ x every kind of caller, over Connect JSON.
#[tokio::test]
async fn every_rpc_times_every_caller() {
    for engine in engines() {
        let (s, key, _dir) = server_with_known_key(engine).await;
        let (admin, _) = login(&s, "admin", ADMIN_PASSWORD).await;
        create_user(&s, &admin, "op1", "operator", "operator-pass-1").await;
        create_user(&s, &admin, "view1", "viewer", "viewer-pass-12").await;
        let pw_user = create_user(&s, &admin, "pwuser", "operator", "first-pass-123").await;
        let (operator, operator_rt) = login(&s, "op1", "operator-pass-1").await;
        let (viewer, _) = login(&s, "view1", "viewer-pass-12").await;
        let keys = [
            (Role::Admin, api_key(&s, &admin, "k-admin", "admin").await.1),
            (Role::Operator, api_key(&s, &admin, "k-operator", "operator").await.1),
            (Role::Viewer, api_key(&s, &admin, "k-viewer", "viewer").await.1),
        ];

        // Expired: the viewer's own session and version, signed with the server's key, but
        // issued two hours ago.
        let jwt = JwtManager::new(&key, JwtConfig::default());
        let (fresh, _) = login(&s, "view1", "viewer-pass-12").await;
        let c = jwt.verify_access(&fresh, Utc::now()).unwrap();
        let subject = TokenSubject {
            user_id: c.sub,
            username: c.username.clone(),
            email: c.email.clone(),
            role: c.role,
            token_version: c.ver,
        };
        let (expired, _) = jwt
            .issue(
                &subject,
                c.sid,
                TokenType::Access,
                Utc::now() - chrono::Duration::hours(2),
            )
            .unwrap();
        let (st, _, b) = call_as(&s, Some(&fresh), &format!("{VMS}/ListVMs"), json!({})).await;
        assert_eq!(st, 200, "the session behind the expired token is live: {b}");

        // Logged out.
        let (logged_out, _) = login(&s, "op1", "operator-pass-1").await;
        let (st, _, b) = call_as(&s, Some(&logged_out), &format!("{AUTH}/Logout"), json!({})).await;
        assert_eq!(st, 200, "{b}");
        // Issued before a password change (an admin reset).
        let (before_change, _) = login(&s, "pwuser", "first-pass-123").await;
        let (st, _, b) = call_as(
            &s,
            Some(&admin),
            &format!("{AUTH}/ChangePassword"),
            json!({"userId": pw_user, "newPassword": "second-pass-456"}),
        )
        .await;
        assert_eq!(st, 200, "{b}");

        let mut callers: Vec<(&str, Option<String>, Option<Caller>)> = vec![
            ("admin", Some(admin.clone()), Some(Caller::User(Role::Admin))),
            ("operator", Some(operator.clone()), Some(Caller::User(Role::Operator))),
            ("viewer", Some(viewer.clone()), Some(Caller::User(Role::Viewer))),
        ];
        for (role, secret) in &keys {
            callers.push(("api key", Some(secret.clone()), Some(Caller::ApiKey(*role))));
        }
        callers.extend([
            ("no token", None, None),
            ("expired", Some(expired.expose().to_string()), None),
            ("refresh token as access", Some(operator_rt.clone()), None),
            ("revoked by logout", Some(logged_out.clone()), None),
            ("issued before a password change", Some(before_change.clone()), None),
        ]);

        // Logout last: it ends the caller's session.
        let mut paths = rbac::declared_method_paths();
        paths.sort_by_key(|p| (p.ends_with("/Logout"), p.clone()));
        let mut checked = 0;
        for path in &paths {
            for (name, token, caller) in &callers {
                let want = match caller {
                    Some(c) => expected_for(path, *c),
                    None => expected_without_credential(path),
                };
                let (st, _, body) = call_as(&s, token.as_deref(), path.trim_start_matches('/'), json!({})).await;
                let got = observed(st, &body);
                // The join token is in the body and checked by the agent service itself,
                // which may well answer unauthenticated to `{}`: the auth layer let it by.
                let join = rbac::required(path) == Some(Access::JoinToken);
                if join && got == Outcome::Unauthenticated {
                    checked += 1;
                    continue;
                }
                assert_eq!(got, want, "{engine:?}: {path} as {name} {caller:?}: {st} {body}");
                checked += 1;
            }
        }
        assert_eq!(checked, paths.len() * callers.len());
        assert!(paths.len() >= 50, "{} RPCs", paths.len());

        // Anything missing from the table is denied, even to an admin key; a method that a
        // known service does not have is simply unimplemented.
        let (st, _, b) = call_as(
            &s,
            Some(&keys[0].1),
            "limiquantix.compute.v1.DiskService/FormatDisk",
            json!({}),
        )
        .await;
        assert_eq!((st, b["code"].as_str()), (403, Some("permission_denied")), "{b}");
        let (st, _, b) = call_as(&s, None, &format!("{VMS}/FormatDisk"), json!({})).await;
        assert_eq!((st, b["code"].as_str()), (404, Some("unimplemented")), "{b}");
    }
}

/// The same refusals over gRPC: trailers-only errors with the right codes.
#[tokio::test]
async fn grpc_keeps_unauthenticated_and_denied_apart() {
    use lqx_core::api::compute::v1 as pb;
    let s = Server::dev(Engine::Sqlite).await;
    let (admin, _) = login(&s, "admin", ADMIN_PASSWORD).await;
    create_user(&s, &admin, "view1", "viewer", "viewer-pass-12").await;
    let (viewer, _) = login(&s, "view1", "viewer-pass-12").await;
    let mut c = pb::vm_service_client::VmServiceClient::new(s.channel().await);
    let with = |token: Option<&str>| {
        let mut r = tonic::Request::new(pb::CreateVmRequest {
            name: "x".into(),
            ..Default::default()
        });
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    };
    assert_eq!(
        c.create_vm(with(None)).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        c.create_vm(with(Some("not-a-token"))).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let e = c.create_vm(with(Some(&viewer))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(e.message().contains("vm:create"), "{}", e.message());
    // Allowed through to the service, which then checks the body.
    let e = c.create_vm(with(Some(&admin))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let mut r = tonic::Request::new(pb::ListVMsRequest::default());
    r.metadata_mut()
        .insert("authorization", format!("Bearer {viewer}").parse().unwrap());
    c.list_v_ms(r).await.unwrap();
    // Health stays public.
    let mut h = tonic_health::pb::health_client::HealthClient::new(s.channel().await);
    h.check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap();
}

/// The README's curl examples, then refresh rotation, reuse detection and concurrency.
#[tokio::test]
async fn curl_examples_and_refresh_rotation() {
    for engine in engines() {
        let s = Server::dev(engine).await;
        let http = reqwest::Client::new();
        // curl -X POST .../Login -H "Content-Type: application/json" -d '{"username": "admin", "password": "..."}'
        let resp = http
            .post(format!("{}/limiquantix.auth.v1.AuthService/Login", s.addr))
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"username": "admin", "password": "{ADMIN_PASSWORD}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["tokenType"], "Bearer", "{b}");
        assert_eq!(b["user"]["username"], "admin");
        assert_eq!(b["user"]["role"], "admin");
        assert_eq!(b["expiresIn"], "900", "15 minutes (uint64 is a JSON string)");
        let at = b["accessToken"].as_str().unwrap().to_string();
        let rt1 = b["refreshToken"].as_str().unwrap().to_string();
        // curl .../ListVMs -H "Authorization: Bearer <access_token>" -H "Content-Type: application/json" -d '{}'
        let resp = http
            .post(format!("{}/limiquantix.compute.v1.VMService/ListVMs", s.addr))
            .header("Authorization", format!("Bearer {at}"))
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // curl -X POST .../RefreshToken -H "Content-Type: application/json" -d '{"refresh_token": "<refresh_token>"}'
        let (st, _, b) = call_as(&s, None, &format!("{AUTH}/RefreshToken"), json!({"refresh_token": rt1})).await;
        assert_eq!(st, 200, "{engine:?}: {b}");
        let rt2 = b["refreshToken"].as_str().unwrap().to_string();
        let at2 = b["accessToken"].as_str().unwrap().to_string();
        assert_ne!(rt2, rt1);
        let (st, _, _) = call_as(&s, Some(&at2), &format!("{AUTH}/WhoAmI"), json!({})).await;
        assert_eq!(st, 200);
        // Replaying RT1 fails and kills the family: RT2 and its access token are dead too.
        let (st, _, b) = call_as(&s, None, &format!("{AUTH}/RefreshToken"), json!({"refreshToken": rt1})).await;
        assert_eq!((st, b["code"].as_str()), (401, Some("unauthenticated")), "{b}");
        let (st, _, _) = call_as(&s, None, &format!("{AUTH}/RefreshToken"), json!({"refreshToken": rt2})).await;
        assert_eq!(st, 401, "{engine:?}: RT2 dies with its family");
        let (st, _, _) = call_as(&s, Some(&at2), &format!("{AUTH}/WhoAmI"), json!({})).await;
        assert_eq!(st, 401);

        // Concurrent refreshes of one token: exactly one wins, then the family is revoked.
        let (_, rt) = login(&s, "admin", ADMIN_PASSWORD).await;
        let calls = (0..6).map(|_| {
            call_as(
                &s,
                None,
                "limiquantix.auth.v1.AuthService/RefreshToken",
                json!({"refreshToken": rt}),
            )
        });
        let results = futures::future::join_all(calls).await;
        let wins: Vec<&Value> = results
            .iter()
            .filter(|(st, _, _)| *st == 200)
            .map(|(_, _, b)| b)
            .collect();
        assert_eq!(wins.len(), 1, "{engine:?}: {results:?}");
        assert!(results.iter().all(|(st, _, _)| *st == 200 || *st == 401));
        let winner_rt = wins[0]["refreshToken"].as_str().unwrap();
        let (st, _, _) = call_as(
            &s,
            None,
            &format!("{AUTH}/RefreshToken"),
            json!({"refreshToken": winner_rt}),
        )
        .await;
        assert_eq!(st, 401, "the winner's tokens die with the family");
    }
}

/// Every mutating RPC leaves exactly one audit entry; reads leave none; no secret lands in
/// the log or the audit entries.
#[tokio::test]
async fn audit_log_and_no_secrets_anywhere() {
    for engine in engines() {
        let s = Server::dev(engine).await;
        let wrong = "Wr0ng-Guess-7f3a9c";
        let (st, _, _) = call_as(
            &s,
            None,
            &format!("{AUTH}/Login"),
            json!({"username": "admin", "password": wrong}),
        )
        .await;
        assert_eq!(st, 401);
        // A password typed into the username field must not be logged either.
        let (st, _, _) = call_as(
            &s,
            None,
            &format!("{AUTH}/Login"),
            json!({"username": "Typo-Pass-5521", "password": wrong}),
        )
        .await;
        assert_eq!(st, 401);
        let (admin, rt) = login(&s, "admin", ADMIN_PASSWORD).await;
        create_user(&s, &admin, "view1", "viewer", "viewer-pass-12").await;
        let (viewer, _) = login(&s, "view1", "viewer-pass-12").await;
        let (_, key) = api_key(&s, &admin, "ci", "operator").await;

        let http = reqwest::Client::new();
        let body = json!({"name": "audited-1", "spec": {"cpuCores": 1, "memoryMib": 256}});
        let (st, _, vm) = call_with(
            &http,
            &s.addr,
            Some(&key),
            &format!("{VMS}/CreateVM"),
            body,
            &[("x-request-id", "e2e-req-42")],
        )
        .await;
        assert_eq!(st, 200, "{vm}");
        let vm_id = vm["id"].as_str().unwrap().to_string();
        let (st, _, _) = call_as(&s, Some(&viewer), &format!("{VMS}/CreateVM"), json!({"name": "nope"})).await;
        assert_eq!(st, 403);
        let (st, _, _) = call_as(&s, None, &format!("{VMS}/DeleteVM"), json!({"id": vm_id})).await;
        assert_eq!(st, 401);
        let (st, _, _) = call_as(&s, Some(&admin), &format!("{VMS}/DeleteVM"), json!({"id": vm_id})).await;
        assert_eq!(st, 200);
        for _ in 0..3 {
            let (st, _, _) = call_as(&s, Some(&admin), &format!("{VMS}/ListVMs"), json!({})).await;
            assert_eq!(st, 200);
        }

        let list = |filter: Value| {
            let (s, admin) = (&s, admin.clone());
            async move {
                let (st, _, b) = call_as(s, Some(&admin), &format!("{AUTH}/ListAuditEntries"), filter).await;
                assert_eq!(st, 200, "{b}");
                b["entries"].as_array().cloned().unwrap_or_default()
            }
        };
        let all = list(json!({"pageSize": 1000})).await;
        let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert!(
            !actions.iter().any(|a| a.contains("/List") || a.contains("/Get")),
            "reads are not audited: {actions:?}"
        );
        let count = |action: &str| actions.iter().filter(|a| **a == action).count();
        assert_eq!(count("auth.AuthService/Login"), 4, "{engine:?}: {actions:?}");
        assert_eq!(count("compute.VMService/CreateVM"), 2);
        assert_eq!(count("compute.VMService/DeleteVM"), 2);
        assert_eq!(count("auth.AuthService/CreateUser"), 1);
        assert_eq!(count("auth.AuthService/CreateAPIKey"), 1);

        let created = list(json!({"action": "compute.VMService/CreateVM", "result": "ok"})).await;
        assert_eq!(created.len(), 1);
        let e = &created[0];
        assert_eq!(e["actor"], "apikey:ci");
        assert_eq!(e["resourceType"], "vm");
        assert_eq!(e["resourceId"], vm_id.as_str());
        assert_eq!(e["requestId"], "e2e-req-42");
        assert_eq!(e["clientAddress"], "127.0.0.1");
        let denied = list(json!({"result": "denied", "action": "/limiquantix.compute.v1.VMService/CreateVM"})).await;
        assert_eq!(denied.len(), 1, "the full method path works as a filter too");
        assert_eq!(denied[0]["actor"], "view1");
        assert!(
            denied[0]["detail"].as_str().unwrap().starts_with("permission_denied"),
            "{}",
            denied[0]
        );
        let named = list(json!({"resourceId": vm_id})).await;
        assert_eq!(named.len(), 2, "create and delete name the VM: {named:?}");
        // Refused before any handler ran: the actor is known, the resource is not.
        let anon = list(json!({"action": "compute.VMService/DeleteVM", "result": "denied"})).await;
        assert_eq!(anon.len(), 1);
        assert_eq!(anon[0]["actor"], "anonymous");
        assert!(
            anon[0]["detail"].as_str().unwrap().starts_with("unauthenticated"),
            "{}",
            anon[0]
        );
        let failed = list(json!({"action": "auth.AuthService/Login", "result": "denied"})).await;
        assert_eq!(failed.len(), 2);
        let claimed: Vec<&str> = failed.iter().map(|e| e["actor"].as_str().unwrap()).collect();
        assert!(
            claimed.contains(&"anonymous (admin)") && claimed.contains(&"anonymous"),
            "{claimed:?}"
        );
        // Pages.
        let (st, _, p1) = call_as(
            &s,
            Some(&admin),
            &format!("{AUTH}/ListAuditEntries"),
            json!({"pageSize": 3}),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(p1["entries"].as_array().unwrap().len(), 3);
        let token = p1["nextPageToken"].as_str().unwrap();
        let (_, _, p2) = call_as(
            &s,
            Some(&admin),
            &format!("{AUTH}/ListAuditEntries"),
            json!({"pageSize": 3, "pageToken": token}),
        )
        .await;
        assert_ne!(p1["entries"][0]["id"], p2["entries"][0]["id"]);
        // Viewers cannot read the audit log.
        let (st, _, _) = call_as(&s, Some(&viewer), &format!("{AUTH}/ListAuditEntries"), json!({})).await;
        assert_eq!(st, 403);

        let everything = format!("{}\n{}", s.logs(), serde_json::to_string(&all).unwrap());
        for secret in [
            ADMIN_PASSWORD,
            wrong,
            "Typo-Pass-5521",
            "viewer-pass-12",
            admin.as_str(),
            rt.as_str(),
            viewer.as_str(),
            key.as_str(),
        ] {
            assert!(
                !everything.contains(secret),
                "{engine:?}: a secret leaked into the log or audit: {secret:.12}..."
            );
        }
        // The key's public prefix is fine to show, its secret part is not.
        // (The body is base64url, so it may itself hold '_': split off tag and prefix only.)
        let secret_part = key.splitn(3, '_').nth(2).unwrap();
        assert_eq!(secret_part.len(), 43, "{key:.8}...");
        assert!(!everything.contains(secret_part));
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_with_retry_after() {
    let s = Server::dev(Engine::Sqlite).await;
    let mut last = (0, None, Value::Null);
    for i in 0..7 {
        last = call_as(
            &s,
            None,
            &format!("{AUTH}/Login"),
            json!({"username": "admin", "password": format!("wrong-guess-{i:04}")}),
        )
        .await;
        if i < 6 {
            assert_eq!(last.0, 401, "attempt {i}: {:?}", last.2);
        }
    }
    let (st, retry, body) = last;
    assert_eq!((st, body["code"].as_str()), (429, Some("resource_exhausted")), "{body}");
    let secs: u64 = retry.expect("Retry-After header").parse().unwrap();
    assert!((1..=900).contains(&secs), "{secs}");
    // While waiting, even the right password is not checked.
    let (st, _, _) = call_as(
        &s,
        None,
        &format!("{AUTH}/Login"),
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(st, 429);
    // Another account from the same address is not held up.
    let (st, _, b) = call_as(
        &s,
        None,
        &format!("{AUTH}/Login"),
        json!({"username": "nobody", "password": "whatever-123"}),
    )
    .await;
    assert_eq!(st, 401, "{b}");
}

#[tokio::test]
async fn api_key_as_bearer_is_scoped_and_revocable() {
    let s = Server::dev(Engine::Sqlite).await;
    let (admin, _) = login(&s, "admin", ADMIN_PASSWORD).await;
    let (id, key) = api_key(&s, &admin, "ci-job", "viewer").await;
    assert!(key.starts_with("lqx_"), "recognisable by secret scanners");
    let (st, _, who) = call_as(&s, Some(&key), &format!("{AUTH}/WhoAmI"), json!({})).await;
    assert_eq!(st, 200, "{who}");
    assert_eq!(
        (who["authMethod"].as_str(), who["apiKeyId"].as_str()),
        (Some("api_key"), Some(id.as_str()))
    );
    assert_eq!(who["user"]["username"], "admin");
    assert_eq!(who["user"]["role"], "viewer", "the key's role, not its owner's: {who}");
    let (st, _, _) = call_as(&s, Some(&key), &format!("{VMS}/ListVMs"), json!({})).await;
    assert_eq!(st, 200);
    let (st, _, _) = call_as(&s, Some(&key), &format!("{VMS}/CreateVM"), json!({"name": "x"})).await;
    assert_eq!(st, 403, "a viewer key cannot create");
    // Keys cannot mint keys, whatever their role.
    let (_, admin_key) = api_key(&s, &admin, "ci-admin", "admin").await;
    let (st, _, _) = call_as(
        &s,
        Some(&admin_key),
        &format!("{AUTH}/CreateAPIKey"),
        json!({"name": "child"}),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _, list) = call_as(&s, Some(&admin), &format!("{AUTH}/ListAPIKeys"), json!({})).await;
    assert_eq!(st, 200);
    let k = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(k["lastUsedAt"].is_string(), "last use kept: {k}");
    assert!(
        !list.to_string().contains(key.splitn(3, '_').nth(2).unwrap()),
        "the secret is shown once only"
    );
    let (st, _, _) = call_as(&s, Some(&admin), &format!("{AUTH}/RevokeAPIKey"), json!({"id": id})).await;
    assert_eq!(st, 200);
    let (st, _, b) = call_as(&s, Some(&key), &format!("{VMS}/ListVMs"), json!({})).await;
    assert_eq!((st, b["code"].as_str()), (401, Some("unauthenticated")));
}

#[tokio::test]
async fn bootstrap_password_is_random_printed_once_and_private() {
    // No password given, not --dev: a random one, on stderr once and in a 0600 file.
    let s = Server::start(
        Engine::Sqlite,
        Options {
            env: vec![("LQX_BOOTSTRAP_ADMIN_PASSWORD".into(), String::new())],
            ..Default::default()
        },
    )
    .await;
    let file: PathBuf = s.data_dir.path().join("admin-password");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 20, "{}", password.len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The banner (on stderr, not a log line) shows it exactly once.
    assert_eq!(s.logs().matches(&password).count(), 1, "{}", s.logs());
    login(&s, "admin", &password).await;
    let (st, _, _) = call_as(
        &s,
        None,
        &format!("{AUTH}/Login"),
        json!({"username": "admin", "password": "lqx-dev-password"}),
    )
    .await;
    assert_eq!(st, 401, "not the development password");

    // --dev on loopback: the documented development password, said so in the banner.
    let d = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            env: vec![("LQX_BOOTSTRAP_ADMIN_PASSWORD".into(), String::new())],
            ..Default::default()
        },
    )
    .await;
    login(&d, "admin", "lqx-dev-password").await;
    assert!(d.logs().contains("development password"), "{}", d.logs());
    assert!(!d.data_dir.path().join("admin-password").exists());
}

#[tokio::test]
async fn login_over_tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec![
                "--dev".into(),
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ],
            ..Default::default()
        },
    )
    .await;
    assert!(s.addr.starts_with("https://"), "{}", s.addr);
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let (st, _, b) = call_with(
        &https,
        &s.addr,
        None,
        &format!("{AUTH}/Login"),
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
        &[],
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let token = b["accessToken"].as_str().unwrap();
    let (st, _, _) = call_with(&https, &s.addr, Some(token), &format!("{AUTH}/WhoAmI"), json!({}), &[]).await;
    assert_eq!(st, 200);
    // A client that does not trust the certificate gets no answer at all.
    let plain = reqwest::Client::new();
    assert!(
        plain
            .post(format!("{}/{AUTH}/Login", s.addr))
            .body("{}")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_request_that_runs_out_of_time_is_still_audited() {
    // 1 ms is far less than a login takes (argon2id), so the login times out.
    let s = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            config: Some("limits:\n  request_timeout: 1ms\n".into()),
            ..Default::default()
        },
    )
    .await;
    let (st, _, body) = call_as(
        &s,
        None,
        &format!("{AUTH}/Login"),
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(st, 504, "{body}");
    assert_eq!(body["code"], "deadline_exceeded");
    // Read the audit log from the database itself (every API call here would time out).
    let store = lqx_core::store::Store::open(s.data_dir.path().join("lqx.db").to_str().unwrap())
        .await
        .unwrap();
    let filter = lqx_core::model::AuditFilter {
        action: Some("auth.AuthService/Login".into()),
        ..Default::default()
    };
    let mut entries = vec![];
    for _ in 0..50 {
        entries = store.list_audit(&filter, 10, "").await.unwrap().entries;
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].result, lqx_core::model::AuditResult::Error);
    assert!(entries[0].detail.contains("timed out"), "{:?}", entries[0]);
}

#[tokio::test]
async fn changes_name_what_they_changed_in_the_audit_log() {
    let mut s = Server::dev(Engine::Sqlite).await;
    s.login_admin().await;
    let (st, vm) = s
        .call(
            &format!("{VMS}/CreateVM"),
            json!({"name": "audited-1", "spec": {"cpuCores": 1, "memoryMib": 256}}),
        )
        .await;
    assert_eq!(st, 200, "{vm}");
    let (st, _) = s.call(&format!("{VMS}/StartVM"), json!({"id": "audited-1"})).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .call(
            "limiquantix.compute.v1.NodeService/DisableNode",
            json!({"id": "no-such-node"}),
        )
        .await;
    assert_eq!(st, 404);
    for (action, resource) in [
        ("compute.VMService/StartVM", "audited-1"),
        ("compute.NodeService/DisableNode", "no-such-node"),
    ] {
        let (st, page) = s
            .call(&format!("{AUTH}/ListAuditEntries"), json!({"action": action}))
            .await;
        assert_eq!(st, 200, "{page}");
        let e = &page["entries"][0];
        assert_eq!(e["resourceId"], resource, "{page}");
    }
}

/// A disabled user is told so, with permission_denied (403, exit 5): the identity is proven
/// (token, refresh token, key or password) and a new login would not help, as GitHub answers
/// 403 for a suspended account. Not "Session revoked", not "Invalid username or password".
#[tokio::test]
async fn a_disabled_user_is_told_the_account_is_disabled() {
    for engine in engines() {
        let s = Server::dev(engine).await;
        let (admin, _) = login(&s, "admin", ADMIN_PASSWORD).await;
        create_user(&s, &admin, "bob", "operator", "secret-pass-123").await;
        let (access, refresh) = login(&s, "bob", "secret-pass-123").await;
        let (_, key) = api_key(&s, &access, "bob-ci", "viewer").await;
        let cli = crate::cli::Lqx::new();
        cli.login(&s.addr, "bob", "secret-pass-123")
            .await
            .expect_code(0, "bob logs in");
        cli.ok(&["vm", "list"]).await;

        let (st, _, b) = call_as(
            &s,
            Some(&admin),
            &format!("{AUTH}/UpdateUser"),
            json!({"id": "bob", "disabled": true}),
        )
        .await;
        assert_eq!(st, 200, "{b}");

        let disabled = |what: &str, st: u16, b: &Value| {
            assert_eq!(
                (st, b["code"].as_str()),
                (403, Some("permission_denied")),
                "{engine:?} {what}: {b}"
            );
            let msg = b["message"].as_str().unwrap_or_default();
            assert!(msg.contains("Account bob is disabled"), "{engine:?} {what}: {msg}");
        };
        let (st, _, b) = call_as(&s, Some(&access), &format!("{VMS}/ListVMs"), json!({})).await;
        disabled("access token", st, &b);
        let (st, _, b) = call_as(
            &s,
            None,
            &format!("{AUTH}/RefreshToken"),
            json!({"refreshToken": refresh}),
        )
        .await;
        disabled("refresh token", st, &b);
        let (st, _, b) = call_as(&s, Some(&key), &format!("{VMS}/ListVMs"), json!({})).await;
        disabled("API key", st, &b);
        let (st, _, b) = call_as(
            &s,
            None,
            &format!("{AUTH}/Login"),
            json!({"username": "bob", "password": "secret-pass-123"}),
        )
        .await;
        disabled("login with the right password", st, &b);
        // A wrong password learns nothing about the account.
        let (st, _, b) = call_as(
            &s,
            None,
            &format!("{AUTH}/Login"),
            json!({"username": "bob", "password": "wrong-pass-1234"}),
        )
        .await;
        assert_eq!(st, 401, "{b}");
        assert!(!b.to_string().contains("disabled"), "{b}");

        // The CLI prints it: with its access token, and through a refresh (the access token
        // spoilt, so the server refuses it and lqx refreshes).
        let out = cli.run(&["vm", "list"]).await;
        out.expect_error(5, "a disabled user's lqx", Some("administrator must enable"));
        assert!(out.stderr.contains("Account bob is disabled"), "{}", out.stderr);
        let file = cli.credentials_file(&s);
        let mut stored = cli.stored(&s);
        stored["access_token"] = json!("not.a.token");
        std::fs::write(&file, stored.to_string()).unwrap();
        let out = cli.run(&["vm", "list"]).await;
        out.expect_error(
            5,
            "a disabled user's lqx, refreshing",
            Some("administrator must enable"),
        );
        assert!(out.stderr.contains("Account bob is disabled"), "{}", out.stderr);
        assert!(!out.stderr.contains("revoked"), "{}", out.stderr);
    }
}

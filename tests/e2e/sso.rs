//! Single sign-on against a real OpenID provider (panva's oidc-provider, tests/oidc): the
//! token checks with the provider's own tokens and tampered copies of them, key rotation,
//! group -> role mapping, linking by (issuer, subject), and `lqx login --sso` with the
//! device flow and the browser flow, run as the real binaries.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use lqx_core::auth::ThrottlePolicy;
use lqx_core::auth::oidc::{OidcConfig, SsoLogin};
use lqx_core::model::Role;
use lqx_e2e::oidc_provider::{OidcProvider, oidc_dir};
use lqx_e2e::{Engine, Options, Server, bin, engines};
use serde_json::{Value, json};

const AUTH: &str = "limiquantix.auth.v1.AuthService";

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: issuer.into(),
        client_id: "lqx-cli".into(),
        leeway: Duration::from_secs(60),
        default_role: Some(Role::Viewer),
        ..Default::default()
    }
}

fn parts(token: &str) -> (Value, Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    let dec = |s: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (dec(p[0]), dec(p[1]), p[2].to_string())
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// The provider's real tokens pass; every tampered or misaddressed one fails, and a token
/// naming an unknown key costs the provider at most one JWKS fetch per interval.
#[tokio::test]
async fn sso_provider_tokens_attack_battery() {
    let op = OidcProvider::start();
    let other = OidcProvider::start();
    let cfg = OidcConfig {
        jwks_min_refetch: Duration::from_secs(3600),
        ..config(&op.issuer)
    };
    let sso = SsoLogin::new(cfg, ThrottlePolicy::default()).unwrap();
    let token = op.id_token("lqx-cli", "alice");
    let (header, payload, sig) = parts(&token);
    let (iat, exp) = (payload["iat"].as_i64().unwrap(), payload["exp"].as_i64().unwrap());
    let now = at(iat + 5);

    let ok = sso.verify(&token, None, now).await.unwrap();
    assert_eq!((ok.subject.as_str(), ok.username.as_str()), ("alice", "alice"));
    assert!(ok.groups.contains(&"lqx-admins".to_string()), "{:?}", ok.groups);
    assert_eq!(sso.keys().fetches(), 1);

    let refused = |e: lqx_core::Error, msg: &str, what: &str| {
        assert_eq!(e.kind, lqx_core::ErrorKind::Unauthenticated, "{what}: {e:?}");
        assert_eq!(e.message, msg, "{what}");
    };
    // Time, with the configured 60 s leeway.
    sso.verify(&token, None, at(exp + 59)).await.unwrap();
    refused(
        sso.verify(&token, None, at(exp + 61)).await.unwrap_err(),
        "Token expired",
        "expired",
    );
    sso.verify(&token, None, at(iat - 59)).await.unwrap();
    refused(
        sso.verify(&token, None, at(iat - 61)).await.unwrap_err(),
        "Token not yet valid",
        "issued in the future",
    );

    let invalid = |t: String, what: &'static str| {
        let sso = &sso;
        async move { refused(sso.verify(&t, None, now).await.unwrap_err(), "Invalid token", what) }
    };
    // Another client's token (wrong audience) from the same provider, validly signed.
    invalid(op.id_token("other-client", "alice"), "wrong audience").await;
    // Another provider's token (wrong issuer, keys lqx does not trust).
    invalid(other.id_token("lqx-cli", "alice"), "other issuer").await;
    // The other provider's token with our provider's kid: the signature does not verify.
    let (_, p2, s2) = parts(&other.id_token("lqx-cli", "alice"));
    let mut p2 = p2;
    p2["iss"] = json!(op.issuer);
    invalid(format!("{}.{}.{s2}", b64(&header), b64(&p2)), "foreign signature").await;
    // Bad signature; tampered payload (bob promotes himself).
    let mut bad_sig = sig.clone().into_bytes();
    bad_sig[10] = if bad_sig[10] == b'A' { b'B' } else { b'A' };
    invalid(
        format!(
            "{}.{}.{}",
            b64(&header),
            b64(&payload),
            String::from_utf8(bad_sig).unwrap()
        ),
        "bad signature",
    )
    .await;
    let bob = op.id_token("lqx-cli", "bob");
    let (bh, mut bp, bs) = parts(&bob);
    bp["groups"] = json!(["lqx-admins"]);
    invalid(format!("{}.{}.{bs}", b64(&bh), b64(&bp)), "tampered payload").await;
    let mut late = payload.clone();
    late["exp"] = json!(exp + 86_400);
    invalid(format!("{}.{}.{sig}", b64(&header), b64(&late)), "extended expiry").await;
    // alg none, with and without a signature.
    let none = json!({"alg": "none", "kid": header["kid"]});
    invalid(format!("{}.{}.", b64(&none), b64(&payload)), "alg none").await;
    invalid(
        format!("{}.{}.{sig}", b64(&none), b64(&payload)),
        "alg none with signature",
    )
    .await;
    // Algorithm confusion: HS256 keyed with the provider's public key (as JWK JSON and as the
    // modulus bytes), naming the real kid.
    let jwks = op.jwks().await;
    let jwk = jwks["keys"][0].clone();
    assert_eq!(jwk["kid"], header["kid"]);
    let hs = jsonwebtoken::Header {
        kid: header["kid"].as_str().map(String::from),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    lqx_core::auth::install_crypto_provider();
    for secret in [
        jwk.to_string().into_bytes(),
        URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap(),
    ] {
        let forged = jsonwebtoken::encode(&hs, &payload, &jsonwebtoken::EncodingKey::from_secret(&secret)).unwrap();
        invalid(forged, "HS256 with the public key").await;
    }
    // Another asymmetric algorithm than the key's (PS256 on an RS256 key).
    let ps = json!({"alg": "PS256", "kid": header["kid"]});
    invalid(format!("{}.{}.{sig}", b64(&ps), b64(&payload)), "PS256 on an RS256 key").await;
    // Unknown kid: refused, and within the refetch interval no new fetch.
    let before = sso.keys().fetches();
    for kid in ["rotated-1", "rotated-2", "rotated-3"] {
        let h = json!({"alg": "RS256", "kid": kid});
        invalid(format!("{}.{}.{sig}", b64(&h), b64(&payload)), "unknown kid").await;
    }
    assert_eq!(sso.keys().fetches(), before, "made-up kids do not hammer the provider");
    // A nonce is required when the token has one, and refused when it has none.
    refused(
        sso.verify(&token, Some("n-1"), now).await.unwrap_err(),
        "Invalid token",
        "nonce",
    );
    // Garbage and oversized tokens.
    invalid("not.a.jwt".into(), "garbage").await;
    let big = format!("{}.{}.{sig}", b64(&header), "A".repeat(9000));
    refused(
        sso.verify(&big, None, now).await.unwrap_err(),
        "Token too large",
        "oversized",
    );
    // The real token still passes after all that.
    sso.verify(&token, None, now).await.unwrap();
}

/// The provider rotates its keys: a token signed with the new key makes lqx fetch the keys
/// again and pass; tokens of the old key (still published) keep passing.
#[tokio::test]
async fn sso_key_rotation_fetches_the_new_key() {
    let mut op = OidcProvider::start();
    let cfg = OidcConfig {
        jwks_min_refetch: Duration::from_millis(1),
        ..config(&op.issuer)
    };
    let sso = SsoLogin::new(cfg, ThrottlePolicy::default()).unwrap();
    let old = op.id_token("lqx-cli", "alice");
    sso.verify(&old, None, Utc::now()).await.unwrap();
    assert_eq!(sso.keys().fetches(), 1);
    op.restart(true);
    let new = op.id_token("lqx-cli", "bob");
    assert_ne!(
        parts(&new).0["kid"],
        parts(&old).0["kid"],
        "the provider signs with the new key"
    );
    let c = sso.verify(&new, None, Utc::now()).await.unwrap();
    assert_eq!(c.subject, "bob");
    assert_eq!(sso.keys().fetches(), 2, "the unknown kid was fetched");
    sso.verify(&old, None, Utc::now()).await.unwrap();
    assert_eq!(sso.keys().fetches(), 2, "known kids need no fetch");

    // The provider goes away: keys past their age are kept rather than failing every login;
    // a key lqx never saw cannot be fetched, and that is "unavailable", not "invalid".
    let cfg = OidcConfig {
        jwks_min_refetch: Duration::from_millis(1),
        jwks_max_age: Duration::from_millis(1),
        ..config(&op.issuer)
    };
    let sso = SsoLogin::new(cfg, ThrottlePolicy::default()).unwrap();
    sso.verify(&new, None, Utc::now()).await.unwrap();
    op.stop();
    // Let the 1 ms jwks_max_age pass: the keys are now past their age.
    tokio::time::sleep(Duration::from_millis(5)).await;
    sso.verify(&new, None, Utc::now()).await.unwrap();
    let (h, p, s) = parts(&new);
    let mut h = h;
    h["kid"] = json!("never-seen");
    // Past the 1 ms refetch interval, so this miss does try the provider.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = sso
        .verify(&format!("{}.{}.{s}", b64(&h), b64(&p)), None, Utc::now())
        .await
        .unwrap_err();
    assert_eq!(e.kind, lqx_core::ErrorKind::Unavailable, "{e:?}");
}

fn server_config(issuer: &str) -> String {
    format!(
        "auth:\n  oidc:\n    issuer: {issuer}\n    client_id: lqx-cli\n    role_rules:\n      \
         - {{group: lqx-admins, role: admin}}\n      - {{group: lqx-operators, role: operator}}\n      \
         - {{group: lqx-viewers, role: viewer}}\n      \
         - {{group: lqx-operators, role: admin, project: default}}\n"
    )
}

async fn sso_server(engine: Engine, issuer: &str) -> Server {
    Server::start(
        engine,
        Options {
            config: Some(server_config(issuer)),
            ..Default::default()
        },
    )
    .await
}

/// A call to any service (`service/Method`) with a token.
async fn call_at(s: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/{path}", s.addr))
        .header("Content-Type", "application/json")
        .bearer_auth(token)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

async fn call(s: &Server, token: Option<&str>, method: &str, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/{AUTH}/{method}", s.addr))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

/// SSOLogin over the API: groups map to roles, users are linked by (issuer, subject) and
/// never to a local user of the same name, unmapped users and bad tokens are refused,
/// failures are throttled, and logins are audited. SQLite and PostgreSQL.
#[tokio::test]
async fn sso_login_rpc_maps_groups_and_links_by_subject() {
    let op = OidcProvider::start();
    let (alice, bob, carol, admin) = (
        op.id_token("lqx-cli", "alice"),
        op.id_token("lqx-cli", "bob"),
        op.id_token("lqx-cli", "carol"),
        op.id_token("lqx-cli", "admin"),
    );
    for engine in engines() {
        let mut s = sso_server(engine, &op.issuer).await;
        s.login_admin().await;
        let local_admin = s.token().unwrap().to_string();
        let (st, cfg) = call(&s, None, "GetSSOConfig", json!({})).await;
        assert_eq!(st, 200);
        assert_eq!(
            (cfg["enabled"].as_bool(), cfg["issuer"].as_str()),
            (Some(true), Some(op.issuer.as_str()))
        );
        assert_eq!(cfg["clientId"], "lqx-cli");

        let login = |t: &str| call(&s, None, "SSOLogin", json!({"idToken": t}));
        let (st, a) = login(&alice).await;
        assert_eq!(st, 200, "{a}");
        assert_eq!(
            (a["user"]["username"].as_str(), a["user"]["role"].as_str()),
            (Some("alice"), Some("admin"))
        );
        let (st, who) = call(&s, a["accessToken"].as_str(), "WhoAmI", json!({})).await;
        assert_eq!((st, who["user"]["role"].as_str()), (200, Some("admin")));
        // The refresh token works as for a password login.
        let (st, r) = call(&s, None, "RefreshToken", json!({"refreshToken": a["refreshToken"]})).await;
        assert_eq!(st, 200, "{r}");
        // A token is good for one login: replayed, it is refused.
        let (st, replay) = login(&alice).await;
        assert_eq!(st, 401, "{replay}");
        assert!(replay["message"].as_str().unwrap().contains("already used"), "{replay}");
        // A second login, with a new token, is the same user.
        let (_, a2) = login(&op.id_token("lqx-cli", "alice")).await;
        assert_eq!(a2["user"]["id"], a["user"]["id"]);
        let (st, b) = login(&bob).await;
        assert_eq!((st, b["user"]["role"].as_str()), (200, Some("operator")));
        // A rule naming a project makes bob admin of that project, alice (no such group) not.
        let (st, m) = call_at(
            &s,
            &local_admin,
            "limiquantix.project.v1.ProjectService/ListProjectMembers",
            json!({"project": "default"}),
        )
        .await;
        assert_eq!(st, 200, "{m}");
        let role_of = |name: &str| {
            m["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["username"] == name)
                .map(|x| x["role"].as_str().unwrap_or_default().to_string())
        };
        assert_eq!(role_of("bob").as_deref(), Some("admin"), "{m}");
        assert_eq!(role_of("alice"), None, "{m}");
        // No rule for carol's groups (and no default role): refused.
        let (st, c) = login(&carol).await;
        assert_eq!(st, 403, "{c}");
        assert!(c["message"].as_str().unwrap().contains("none of your groups"), "{c}");
        // The provider's "admin" is not the local admin: another user, with its own role.
        let (st, imp) = login(&admin).await;
        assert_eq!(st, 200, "{imp}");
        assert_eq!(
            (imp["user"]["username"].as_str(), imp["user"]["role"].as_str()),
            (Some("admin-2"), Some("viewer"))
        );
        let (_, me) = call(&s, Some(&local_admin), "WhoAmI", json!({})).await;
        assert_eq!(
            (me["user"]["username"].as_str(), me["user"]["role"].as_str()),
            (Some("admin"), Some("admin"))
        );
        // A tampered token is refused as unauthenticated.
        let (h, mut p, sig) = parts(&carol);
        p["groups"] = json!(["lqx-admins"]);
        let (st, _) = login(&format!("{}.{}.{sig}", b64(&h), b64(&p))).await;
        assert_eq!(st, 401);
        // Audited: successes name the user, with the provider's identity.
        let (st, audit) = call(
            &s,
            Some(&local_admin),
            "ListAuditEntries",
            json!({"action": "auth.AuthService/SSOLogin", "pageSize": 100}),
        )
        .await;
        assert_eq!(st, 200, "{audit}");
        let entries = audit["entries"].as_array().unwrap();
        let ok_bob = entries
            .iter()
            .find(|e| e["actor"] == "bob")
            .expect("bob's login audited");
        assert_eq!(ok_bob["result"], "ok");
        assert!(
            ok_bob["detail"].as_str().unwrap_or_default().contains("subject=bob"),
            "{audit}"
        );
        assert!(
            entries
                .iter()
                .any(|e| e["result"] == "denied" || e["result"] == "error"),
            "{audit}"
        );
        // Failed exchanges are throttled like failed password logins.
        let mut throttled = false;
        for _ in 0..12 {
            let (st, _) = login("garbage.token.here").await;
            if st == 429 {
                throttled = true;
                break;
            }
            assert_eq!(st, 401);
        }
        assert!(throttled, "bad tokens were never throttled");
        // Provider tokens never reach the log or the audit trail.
        let sig = bob.rsplit('.').next().unwrap();
        assert!(!s.logs().contains(sig), "a provider token in the server log");
        assert!(!audit.to_string().contains(sig), "a provider token in the audit log");
        s.terminate().await;
    }
}

/// Runs `lqx login SERVER --sso ARGS` and, once it prints its user code, has `approver`
/// approve it at the provider. Returns (exit code, stderr).
fn cli_login(
    server: &Server,
    config_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    approver: impl FnOnce(&str),
) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin("lqx"));
    cmd.args(["login", &server.addr, "--sso"]).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LQX_") {
            cmd.env_remove(&k);
        }
    }
    for k in ["DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "DBUS_SESSION_BUS_ADDRESS"] {
        cmd.env_remove(k);
    }
    cmd.env("LQX_CONFIG_DIR", config_dir)
        .env("HOME", config_dir)
        .env("LQX_TOKEN_STORAGE", "file")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    let mut line = String::new();
    let mut approver = Some(approver);
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(code) = line.split("enter the code ").nth(1)
            && let Some(a) = approver.take()
        {
            a(code.trim());
        }
        text.push_str(&line);
        line.clear();
    }
    (child.wait().unwrap().code(), text)
}

/// `lqx login --sso` on a machine without a browser: the device flow, approved at the
/// provider's pages; the session is stored and works; a refusal at the provider exits 5.
#[tokio::test]
async fn sso_cli_device_flow_end_to_end() {
    let op = OidcProvider::start();
    let s = sso_server(Engine::Sqlite, &op.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // The CLI and the provider are processes of their own: blocking this thread is fine.
    let (code, err) = cli_login(&s, &path, &[], &[], |c| op.approve_device(c, "bob", false));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("To log in, open http://127.0.0.1:"), "{err}");
    assert!(err.contains("as bob (operator)"), "{err}");
    // The stored session is used by the next command.
    let out = Command::new(bin("lqx"))
        .args(["auth", "status", "-o", "json"])
        .env("LQX_CONFIG_DIR", &path)
        .env("HOME", &path)
        .env("LQX_TOKEN_STORAGE", "file")
        .env_remove("LQX_SERVER")
        .output()
        .unwrap();
    let status: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        (status["username"].as_str(), status["role"].as_str()),
        (Some("bob"), Some("operator")),
        "{status}"
    );
    assert_eq!(status["server"], s.addr.as_str());
    // Refused at the provider: access_denied, exit code 5.
    let (code, err) = cli_login(&s, &path, &["--device"], &[], |c| op.approve_device(c, "bob", true));
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("denied at the provider"), "{err}");
}

/// `lqx login --sso --browser`: the loopback redirect with PKCE and a nonce; the "browser"
/// ($BROWSER) is the test's user, filling in the provider's login page over HTTP.
#[tokio::test]
async fn sso_cli_browser_flow_with_pkce() {
    let op = OidcProvider::start();
    let s = sso_server(Engine::Sqlite, &op.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let browser = dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\ncd '{}' && exec node drive.mjs browser \"$1\" alice >'{}' 2>&1\n",
            oidc_dir().display(),
            dir.path().join("browser.log").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let b = browser.to_str().unwrap().to_string();
    let (code, err) = cli_login(&s, dir.path(), &[], &[("BROWSER", &b)], |_| {});
    let log = std::fs::read_to_string(dir.path().join("browser.log")).unwrap_or_default();
    assert_eq!(code, Some(0), "{err}\nbrowser: {log}");
    assert!(err.contains("as alice (admin)"), "{err}");
    assert!(log.starts_with("200 "), "the callback page answered: {log}");
    assert!(err.contains("code_challenge_method=S256"), "{err}");
}

/// Refreshing never asks the provider, so an SSO session ends after `session_max_age`: the
/// user logs in at the provider again, where a removal or a changed group takes effect.
#[tokio::test]
async fn sso_sessions_end_after_session_max_age() {
    let op = OidcProvider::start();
    let s = Server::start(
        Engine::Sqlite,
        Options {
            config: Some(format!("{}    session_max_age: 2s\n", server_config(&op.issuer))),
            ..Default::default()
        },
    )
    .await;
    let (st, a) = call(
        &s,
        None,
        "SSOLogin",
        json!({"idToken": op.id_token("lqx-cli", "alice")}),
    )
    .await;
    assert_eq!(st, 200, "{a}");
    let (st, r) = call(&s, None, "RefreshToken", json!({"refreshToken": a["refreshToken"]})).await;
    assert_eq!(st, 200, "within the age a refresh works: {r}");
    // Refreshes keep working until the age is reached, then the session is over.
    let mut refresh = r["refreshToken"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (st, r) = call(&s, None, "RefreshToken", json!({"refreshToken": refresh})).await;
        if st == 401 {
            break;
        }
        assert_eq!(st, 200, "a refresh either works or is refused: {r}");
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived session_max_age: {r}"
        );
        refresh = r["refreshToken"].clone();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A provider behind a private CA: neither the server nor the CLI trusts it until told
/// (`auth.oidc.ca_cert`, `lqx login --sso --sso-ca-cert`); then the whole device flow works.
#[tokio::test]
async fn sso_provider_behind_a_private_ca() {
    let op = OidcProvider::start_tls();
    assert!(op.issuer.starts_with("https://127.0.0.1:"), "{}", op.issuer);
    let ca = op.ca_cert.clone().unwrap();
    let ca = ca.display().to_string();
    let token = op.id_token("lqx-cli", "bob");

    // The server without the CA cannot read the provider's keys: unavailable, not a login.
    let s = sso_server(Engine::Sqlite, &op.issuer).await;
    let (st, e) = call(&s, None, "SSOLogin", json!({"idToken": token})).await;
    assert_eq!(st, 503, "{e}");
    drop(s);

    let s = Server::start(
        Engine::Sqlite,
        Options {
            config: Some(format!("{}    ca_cert: {ca}\n", server_config(&op.issuer))),
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // The CLI without the CA refuses the provider's certificate.
    let (code, err) = cli_login(&s, &path, &["--device"], &[], |_| {});
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("OpenID provider"), "{err}");
    let (code, err) = cli_login(&s, &path, &["--device", "--sso-ca-cert", &ca], &[], |c| {
        op.approve_device(c, "bob", false)
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("as bob (operator)"), "{err}");
}

//! Auth costs per request and per login, in process. Prints a markdown table.
//!
//!     cargo bench -p lqx-core --bench auth        # LQX_BENCH_SECS=2 per row by default
//!
//! - `verify_access`: signature, claims and time checks of one access token (the JWT part
//!   of every authenticated request; the interceptor adds one indexed store read).
//! - `parse_authorization` and the API key hash check (the key part of a request).
//! - `check_access` and `rbac::authorize`: the pure decisions after the store read.
//! - argon2id verify (m=19 MiB, t=2): the cost of one login, and logins/s on all cores.
//! - `AuthService::authenticate` end to end on SQLite (JWT and API key), store read included.

use chrono::Utc;
use lqx_core::auth::audit::AuditNote;
use lqx_core::auth::service::{BootstrapPassword, Credential};
use lqx_core::auth::{
    AuthService, AuthSettings, Caller, JwtConfig, JwtManager, Secret, SigningKey, TokenSubject, apikey, check_access,
    password, rbac, session,
};
use lqx_core::model::{Role, SessionId, User, UserId};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn budget() -> Duration {
    let secs = std::env::var("LQX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

/// Runs `f` in batches until the budget is spent; returns nanoseconds per call.
fn per_call(mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget() {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn row(what: &str, ns: f64) {
    let (v, unit) = if ns >= 1e6 { (ns / 1e6, "ms") } else { (ns / 1e3, "µs") };
    println!("| {what} | {v:.2} {unit} | {:.0} |", 1e9 / ns);
}

fn user() -> User {
    let t = Utc::now();
    User {
        id: UserId::new(),
        username: "alice".into(),
        email: "alice@example.com".into(),
        role: Role::Operator,
        disabled: false,
        password_hash: String::new(),
        token_version: 1,
        created_at: t,
        updated_at: t,
        password_changed_at: t,
        last_login_at: None,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!("| operation | time per call | calls/s (one core) |\n|---|---|---|");
    let jwt = JwtManager::new(&SigningKey::generate(), JwtConfig::default());
    let u = user();
    let now = Utc::now();
    let pair = jwt.issue_pair(&TokenSubject::from(&u), SessionId::new(), now).unwrap();
    let token = pair.access_token.expose().to_string();
    row(
        "JwtManager::verify_access",
        per_call(|| {
            black_box(jwt.verify_access(black_box(&token), now).unwrap());
        }),
    );
    row(
        "JwtManager::issue_pair (login/refresh)",
        per_call(|| {
            black_box(jwt.issue_pair(&TokenSubject::from(&u), SessionId::new(), now).unwrap());
        }),
    );
    let header = format!("Bearer {token}");
    row(
        "apikey::parse_authorization (JWT)",
        per_call(|| {
            black_box(apikey::parse_authorization(Some(black_box(&header))).unwrap());
        }),
    );
    let s = session::start(&pair.refresh, "127.0.0.1", &Default::default(), now);
    row(
        "session::check_access",
        per_call(|| {
            check_access(black_box(&pair.access), Some(&s), Some(&u), now).unwrap();
        }),
    );
    row(
        "rbac::authorize",
        per_call(|| {
            black_box(
                rbac::authorize(
                    black_box("/limiquantix.compute.v1.VMService/GetVM"),
                    Caller::User(Role::Viewer),
                )
                .unwrap(),
            );
        }),
    );
    let (key, secret) =
        apikey::new_api_key(&u, "ci", Role::Viewer, lqx_core::model::ProjectId::DEFAULT, 0, now).unwrap();
    row(
        "apikey::check_key (SHA-256, constant-time compare)",
        per_call(|| {
            apikey::check_key(&key, black_box(secret.expose()), now).unwrap();
        }),
    );

    // One argon2id verification = the CPU cost of one login (right or wrong password).
    let hash = password::hash_password("correct horse battery").unwrap();
    let one = {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < budget() || n < 5 {
            assert!(password::verify_password(black_box("correct horse battery"), Some(&hash)).unwrap());
            n += 1;
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    };
    row("argon2id verify (one login)", one);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cores {
        let hash = hash.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            let t = Instant::now();
            while t.elapsed() < budget() {
                assert!(password::verify_password("correct horse battery", Some(&hash)).unwrap());
                n += 1;
            }
            n
        }));
    }
    let mut logins = 0;
    for t in tasks {
        logins += t.await.unwrap();
    }
    println!(
        "| argon2id verify on all {cores} cores | | {:.1} logins/s |",
        logins as f64 / start.elapsed().as_secs_f64()
    );

    // The interceptor's credential check end to end, with the store read (SQLite).
    let dir = tempfile::tempdir().unwrap();
    let store = lqx_core::store::Store::open(dir.path().join("b.db").to_str().unwrap())
        .await
        .unwrap();
    let svc = AuthService::new(store, &SigningKey::generate(), AuthSettings::default());
    svc.bootstrap_admin(BootstrapPassword::Given(Secret::new("bench-password-1")), dir.path())
        .await
        .unwrap();
    let l = svc
        .login("admin", Secret::new("bench-password-1"), None, &AuditNote::default())
        .await
        .unwrap();
    let admin = match svc
        .authenticate(Some(&format!("Bearer {}", l.pair.access_token.expose())))
        .await
        .unwrap()
    {
        Credential::User(p) => p,
        other => panic!("{other:?}"),
    };
    let (_, key_secret) = svc
        .create_api_key(&admin, "bench", "viewer", "", 0, &AuditNote::default())
        .await
        .unwrap();
    for (what, h) in [
        (
            "AuthService::authenticate, JWT (SQLite read)",
            format!("Bearer {}", l.pair.access_token.expose()),
        ),
        (
            "AuthService::authenticate, API key (SQLite reads)",
            format!("Bearer {}", key_secret.expose()),
        ),
    ] {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget() {
            black_box(svc.authenticate(Some(&h)).await.unwrap());
            n += 1;
        }
        row(what, start.elapsed().as_nanos() as f64 / n as f64);
    }
}

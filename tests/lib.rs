//! Harness for the end-to-end tests: starts the real `lqx-server` binary on a free port
//! with a private data directory (SQLite) or a fresh PostgreSQL database, and talks to it
//! over HTTP JSON (as curl would) and gRPC.

pub mod oidc_provider;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The admin password the harness bootstraps every server with.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password-0123";

/// Path of a binary built in this workspace (next to the test executable's directory).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run the tests with `cargo test --workspace`",
        p.display()
    );
    p
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The engines to run against: SQLite always, PostgreSQL when `LQX_TEST_DATABASE_URL` is
/// set (required in CI).
pub fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Sqlite];
    if lqx_core::store::testing::postgres_admin_url().is_some() {
        v.push(Engine::Postgres);
    }
    v
}

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: tempfile::TempDir,
    pub log: Arc<Mutex<String>>,
    pub engine: Engine,
    http: reqwest::Client,
    token: Option<String>,
}

#[derive(Default, Clone)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// A cluster file's text for `--sim`.
    pub sim: Option<String>,
    /// A config file's text for `--config`.
    pub config: Option<String>,
    /// Run on this data directory (kept across servers) instead of a fresh one.
    pub data_dir: Option<std::path::PathBuf>,
    /// Listen here (a restarted server on the same port) instead of a free port.
    pub listen: Option<String>,
}

impl Server {
    /// `lqx-server --dev` on `engine`.
    pub async fn dev(engine: Engine) -> Server {
        Self::start(
            engine,
            Options {
                args: vec!["--dev".into()],
                ..Default::default()
            },
        )
        .await
    }

    pub async fn start(engine: Engine, opts: Options) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin("lqx-server"));
        cmd.arg("--listen")
            .arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--data-dir")
            .arg(opts.data_dir.as_deref().unwrap_or(data_dir.path()));
        if engine == Engine::Postgres {
            let admin = lqx_core::store::testing::postgres_admin_url().expect("PostgreSQL for tests");
            let url = lqx_core::store::testing::fresh_postgres_database(&admin).await.unwrap();
            cmd.arg("--database-url").arg(url);
        }
        if let Some(sim) = &opts.sim {
            let f = data_dir.path().join("cluster.yaml");
            std::fs::write(&f, sim).unwrap();
            cmd.arg("--sim").arg(f);
        }
        if let Some(config) = &opts.config {
            let f = data_dir.path().join("lqx-server.yaml");
            std::fs::write(&f, config).unwrap();
            cmd.arg("--config").arg(f);
        }
        cmd.args(&opts.args);
        cmd.env("LQX_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LQX_LOG", "info");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start lqx-server");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim().to_string());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("lqx-server did not start:\n{}", log.lock().unwrap()));
        Server {
            child: Some(child),
            addr,
            data_dir,
            log,
            engine,
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// Logs in as the bootstrap admin (when the server has authentication) and keeps the
    /// access token for later calls.
    pub async fn login_admin(&mut self) {
        let (status, body) = self
            .call(
                "limiquantix.auth.v1.AuthService/Login",
                json!({"username": "admin", "password": ADMIN_PASSWORD}),
            )
            .await;
        if status == 200 {
            self.token = body["accessToken"].as_str().map(str::to_string);
        }
    }

    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A Connect JSON call, as curl would make it: returns the HTTP status and the body.
    pub async fn call(&self, method: &str, body: Value) -> (u16, Value) {
        self.raw(method, "application/json", body.to_string().into_bytes())
            .await
    }

    pub async fn raw(&self, method: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/{method}", self.addr))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// A gRPC channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.addr.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A gRPC request with the current token attached.
    pub fn grpc<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = &self.token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.addr)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most 20 s each) until node `name` has been heard `n` more times (GetNode's
    /// `lastHeartbeat` moves on): a check that something does *not* happen then covers `n`
    /// heartbeats, however slow the machine, where a fixed sleep may cover none.
    pub async fn heartbeats(&self, name: &str, n: usize) {
        let heard = async || {
            let (st, v) = self
                .call(
                    "limiquantix.compute.v1.NodeService/GetNode",
                    serde_json::json!({"id": name}),
                )
                .await;
            assert_eq!(st, 200, "{v}");
            v["lastHeartbeat"].clone()
        };
        let mut last = heard().await;
        for i in 0..n {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let now = heard().await;
                if now != last {
                    last = now;
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name}: heartbeat {} of {n} never came",
                    i + 1
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Sends SIGTERM and waits (up to 30 s) for the process to exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running server");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let waited = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await;
        waited
            .expect("lqx-server did not exit within 30 s of SIGTERM")
            .unwrap()
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sequence of the newest event the server has, found by publishing one (creating VM
    /// `name`, 1 vCPU, 256 MiB). A watch that resumes from it (`--resume-from`) sees every
    /// later event however long it takes to subscribe; one that resumes from the sequence
    /// before it prints this VM's `created` event first, once its stream is live.
    pub async fn mark(&self, name: &str) -> u64 {
        use lqx_core::api::events::v1 as pb;
        let mut c = pb::event_service_client::EventServiceClient::new(self.channel().await);
        let req = pb::SubscribeRequest {
            filter: Some(pb::SubscriptionFilter {
                resource_types: vec!["vm".into()],
                ..Default::default()
            }),
            resume_from_sequence: 0,
        };
        let mut stream = c
            .subscribe(self.grpc(req))
            .await
            .expect("subscribe (as the admin: login_admin first)")
            .into_inner();
        let (st, vm) = self
            .call(
                "limiquantix.compute.v1.VMService/CreateVM",
                json!({"name": name, "spec": {"cpuCores": 1, "memoryMib": 256}}),
            )
            .await;
        assert_eq!(st, 200, "{vm}");
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), stream.message())
                .await
                .expect("an event within 20 s")
                .expect("no error")
                .expect("stream open");
            if let Some(e) = msg.event
                && e.resource_id == vm["id"].as_str().unwrap_or_default()
            {
                return e.sequence;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- lqx-server log ({:?}) ----\n{}", self.engine, self.logs());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A helper process of a test (an agent, a fence process), its stderr collected; killed when
/// dropped (resumed first, in case a test stopped it).
pub struct Proc {
    child: Child,
    pub name: String,
    log: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = l2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Proc {
            child,
            name: name.to_string(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `kill -SIG pid`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {} ({})", self.pid(), self.name);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.logs());
        }
        let _ = Command::new("kill").arg("-CONT").arg(self.pid().to_string()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

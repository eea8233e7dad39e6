//! The real `lqx` binary against a real `lqx-server` (SQLite): every command is a separate
//! process with no terminal, a private config dir and the file token store, as in a CI job.
//! Covers login, VM and node commands, JSON/YAML/table/name output, the exit codes of real
//! server answers, token refresh (also by processes running at once), logout and revoked
//! sessions, API keys for CI, a closed stdout, and a real Secret Service round trip when
//! gnome-keyring is installed.

use lqx_e2e::{ADMIN_PASSWORD, Engine, Options, Server, bin};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const AUTH: &str = "limiquantix.auth.v1.AuthService";

/// The documented JSON fields (lqx-cli/README.md, Output).
const VM_FIELDS: &[&str] = &[
    "id",
    "name",
    "project_id",
    "description",
    "labels",
    "state",
    "desired_state",
    "node_id",
    "node",
    "cpu_cores",
    "memory_mib",
    "disks",
    "nics",
    "ha",
    "placement",
    "cpu_usage_percent",
    "memory_used_mib",
    "restart_count",
    "message",
    "started_at",
    "stopped_at",
    "created_at",
    "updated_at",
    "resource_version",
];
const NODE_FIELDS: &[&str] = &[
    "id",
    "name",
    "hostname",
    "management_address",
    "labels",
    "phase",
    "schedulable",
    "health",
    "power_state",
    "cpu_cores",
    "memory_mib",
    "allocatable_cpu_cores",
    "allocatable_memory_mib",
    "allocated_cpu_cores",
    "allocated_memory_mib",
    "cpu_overcommit",
    "memory_overcommit",
    "cpu_percent",
    "memory_used_mib",
    "running_vms",
    "libvirt_uri",
    "last_heartbeat",
    "created_at",
    "resource_version",
];
const APIKEY_FIELDS: &[&str] = &[
    "id",
    "name",
    "role",
    "prefix",
    "owner_id",
    "revoked",
    "created_at",
    "expires_at",
    "last_used_at",
];
const AUTH_STATUS_FIELDS: &[&str] = &[
    "context",
    "server",
    "username",
    "role",
    "auth_method",
    "token_source",
    "expires_at",
    "refresh_expires_at",
    "permissions",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn fields(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// What one `lqx` process did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// An error exit: one `error:` line, and a hint naming `want_hint` when given.
    #[track_caller]
    pub(crate) fn expect_error(&self, code: i32, what: &str, want_hint: Option<&str>) -> &Self {
        self.expect_code(code, what);
        assert!(self.stdout.is_empty(), "{what}: data on stdout: {}", self.stdout);
        assert!(self.stderr.starts_with("error: "), "{what}: {}", self.stderr);
        if let Some(h) = want_hint {
            let hint = self
                .stderr
                .lines()
                .find(|l| l.starts_with("hint: "))
                .unwrap_or_else(|| {
                    panic!("{what}: no hint line: {}", self.stderr);
                });
            assert!(hint.contains(h), "{what}: hint {hint:?} does not name {h:?}");
        }
        self
    }
}

/// `lqx` with a private config dir, the file token store (unless `keyring`), and none of
/// the caller's `LQX_*` settings.
pub(crate) struct Lqx {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    keyring: bool,
}

impl Lqx {
    /// A CLI with its own config, logged in to `s` as the bootstrap admin.
    pub(crate) async fn admin(s: &Server) -> Lqx {
        let lqx = Lqx::new();
        lqx.login(&s.addr, "admin", ADMIN_PASSWORD)
            .await
            .expect_code(0, "login");
        lqx
    }

    pub(crate) fn new() -> Lqx {
        Lqx {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
            keyring: false,
        }
    }

    fn env(mut self, k: &str, v: &str) -> Lqx {
        self.env.push((k.into(), v.into()));
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("lqx"));
        c.args(args);
        self.apply_env(&mut c);
        c
    }

    /// The environment of every `lqx` run, also for a shell that runs `lqx`.
    fn apply_env(&self, c: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("LQX_") {
                c.env_remove(&k);
            }
        }
        c.env("LQX_CONFIG_DIR", self.dir.path())
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !self.keyring {
            c.env("LQX_TOKEN_STORAGE", "file");
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    /// Runs `lqx ARGS` off the async runtime, with `stdin` piped in when given.
    async fn run_with(&self, args: &[&str], stdin: Option<String>) -> Out {
        let mut cmd = self.command(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let out = tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("start lqx");
            if let Some(text) = stdin {
                let mut i = child.stdin.take().unwrap();
                i.write_all(text.as_bytes()).unwrap();
            }
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        Out {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Starts `lqx ARGS` and returns at once; the handle yields what it did once it ends.
    pub(crate) fn spawn(&self, args: &[&str]) -> tokio::task::JoinHandle<Out> {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || {
            let out = cmd.output().expect("start lqx");
            Out {
                code: out.status.code(),
                stdout: String::from_utf8(out.stdout).unwrap(),
                stderr: String::from_utf8(out.stderr).unwrap(),
            }
        })
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None).await
    }

    /// Runs and requires exit 0; returns stdout.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        out.expect_code(0, &format!("lqx {}", args.join(" ")));
        out.stdout
    }

    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.ok(&a).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("lqx {}: not JSON ({e}):\n{out}", args.join(" ")))
    }

    pub(crate) async fn login(&self, server: &str, user: &str, password: &str) -> Out {
        self.run_with(
            &["login", server, "--username", user, "--password-stdin"],
            Some(format!("{password}\n")),
        )
        .await
    }

    pub(crate) fn credentials_file(&self, server: &Server) -> PathBuf {
        let ctx = server.addr.trim_start_matches("http://").replace(':', "_");
        self.dir.path().join("credentials").join(format!("{ctx}.json"))
    }

    pub(crate) fn stored(&self, server: &Server) -> Value {
        let text = std::fs::read_to_string(self.credentials_file(server)).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// Snapshot filters: ids, times, ports and ages vary from run to run.
fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[ID]");
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"127\.0\.0\.1_\d+", "127.0.0.1_[PORT]");
    // Ages ("3s", "1m") and the padding after them at the end of a table line.
    s.add_filter(r"(?m)\b\d+[smhd] *$", "[AGE]");
    s
}

async fn dev_server() -> Server {
    let mut s = Server::dev(Engine::Sqlite).await;
    s.login_admin().await;
    assert!(s.token().is_some(), "the dev server has no AuthService:\n{}", s.logs());
    s
}

#[tokio::test]
async fn cli_vm_lifecycle_output_and_exit_codes() {
    let s = dev_server().await;
    let admin = Lqx::new();

    // Login from stdin, no terminal; the token goes to the 0600 file store.
    let out = admin.login(&s.addr, "admin", ADMIN_PASSWORD).await;
    out.expect_code(0, "login");
    assert!(out.stdout.is_empty(), "login printed data: {}", out.stdout);
    assert!(
        out.stderr.contains("Logged in to") && out.stderr.contains("as admin"),
        "{}",
        out.stderr
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(admin.credentials_file(&s))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let stored = admin.stored(&s);
    assert_eq!(stored["kind"], "session");
    assert!(stored["refresh_token"].is_string());

    // auth status: a readable block, and the documented JSON.
    let status = admin.ok(&["auth", "status"]).await;
    assert!(status.contains("User:         admin (admin)"), "{status}");
    assert!(status.contains("Token store:  file "), "{status}");
    snapshot_settings().bind(|| {
        let shown = status.replace(&admin.path().display().to_string(), "[CONFIG]");
        insta::assert_snapshot!("auth_status_block", shown);
    });
    let st = admin.json(&["auth", "status"]).await;
    assert_eq!(keys(&st), fields(AUTH_STATUS_FIELDS), "{st}");
    assert_eq!(st["server"], s.addr.as_str());
    assert_eq!(
        (st["username"].as_str(), st["role"].as_str()),
        (Some("admin"), Some("admin"))
    );
    assert_eq!(st["auth_method"], "jwt");
    assert!(st["token_source"].as_str().unwrap().starts_with("file "), "{st}");
    assert!(
        st["expires_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    assert!(st["permissions"].as_array().unwrap().iter().any(|p| p == "vm:create"));

    // Create: human sizes, started, on a chosen node; a second, stopped VM with a label.
    let web = admin
        .json(&[
            "vm", "create", "web-1", "--cpu", "2", "--memory", "2GiB", "--node", "node-1", "--start", "--wait",
        ])
        .await;
    assert_eq!(keys(&web), fields(VM_FIELDS), "{web}");
    assert_eq!(
        (web["name"].as_str(), web["state"].as_str(), web["node"].as_str()),
        (Some("web-1"), Some("running"), Some("node-1"))
    );
    assert_eq!(
        (web["cpu_cores"].as_u64(), web["memory_mib"].as_u64()),
        (Some(2), Some(2048))
    );
    let web_id = web["id"].as_str().unwrap().to_string();
    admin
        .ok(&[
            "vm", "create", "db-1", "--cpu", "4", "--memory", "8GiB", "--disk", "20GiB", "--node", "node-2", "-l",
            "tier=db",
        ])
        .await;

    // list -o json: an array of the objects `get` prints.
    let list = admin.json(&["vm", "list"]).await;
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 2, "{list:?}");
    for v in list {
        assert_eq!(keys(v), fields(VM_FIELDS), "{v}");
    }
    let db = list.iter().find(|v| v["name"] == "db-1").expect("db-1 listed");
    assert_eq!(db["state"], "stopped");
    assert_eq!(db["node"], "node-2");
    assert_eq!(db["labels"], json!({"tier": "db"}));
    assert_eq!(db["disks"][0]["size_mib"], 20480);
    assert_eq!(db["memory_mib"], 8192);
    let get = admin.json(&["vm", "get", "web-1"]).await;
    let listed = list.iter().find(|v| v["name"] == "web-1").unwrap();
    assert_eq!(get["id"], listed["id"]);
    assert_eq!(get["created_at"], listed["created_at"]);

    // Filters reach the server.
    assert_eq!(
        admin.ok(&["vm", "list", "--state", "running", "-o", "name"]).await,
        "web-1\n"
    );
    assert_eq!(admin.ok(&["vm", "list", "-l", "tier=db", "-o", "name"]).await, "db-1\n");
    assert_eq!(
        admin.ok(&["vm", "list", "--node", "node-2", "-o", "name"]).await,
        "db-1\n"
    );
    let mut names: Vec<String> = admin
        .ok(&["vm", "list", "-o", "name"])
        .await
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["db-1", "web-1"]);

    // Tables: snapshot, --columns (any order, any case), --no-headers.
    let table = admin.ok(&["vm", "list"]).await;
    assert!(table.starts_with("NAME "), "{table}");
    let mut sorted: Vec<&str> = table.lines().skip(1).collect();
    sorted.sort();
    let table = std::iter::once(table.lines().next().unwrap())
        .chain(sorted)
        .collect::<Vec<_>>()
        .join("\n");
    snapshot_settings().bind(|| insta::assert_snapshot!("vm_list_table", table));
    let cols = admin
        .ok(&[
            "vm",
            "list",
            "--columns",
            "NODE,name,state",
            "--no-headers",
            "--state",
            "running",
        ])
        .await;
    let words: Vec<&str> = cols.split_whitespace().collect();
    assert_eq!(words, ["node-1", "web-1", "running"], "{cols}");
    let unknown = admin.run(&["vm", "list", "--columns", "name,bogus"]).await;
    unknown.expect_error(2, "unknown column", None);

    // get by id, YAML with the same fields.
    let yaml = admin.ok(&["vm", "get", &web_id, "-o", "yaml"]).await;
    let y: Value = serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("not YAML ({e}): {yaml}"));
    assert_eq!(keys(&y), fields(VM_FIELDS));
    assert_eq!(y["name"], "web-1");
    assert_eq!(y["state"], "running");

    // Nodes.
    let nodes = admin.json(&["node", "list"]).await;
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(keys(n), fields(NODE_FIELDS), "{n}");
        assert_eq!(n["phase"], "ready");
    }
    let n1 = nodes.iter().find(|n| n["name"] == "node-1").unwrap();
    assert_eq!(n1["allocated_cpu_cores"], 2, "{n1}");
    let node_table = admin.ok(&["node", "list"]).await;
    snapshot_settings().bind(|| insta::assert_snapshot!("node_list_table", node_table));

    // Cold migration with --wait: the answer shows the VM on its new node.
    let m = admin
        .json(&["vm", "migrate", "web-1", "--to", "node-2", "--cold", "--wait"])
        .await;
    assert_eq!(
        keys(&m),
        fields(&["vm", "migration_id", "source_node", "target_node", "live"]),
        "{m}"
    );
    assert_eq!(m["live"], false);
    assert_eq!(m["vm"]["node"], "node-2", "{m}");
    assert_eq!(admin.json(&["vm", "get", "web-1"]).await["node"], "node-2");

    // Stop and wait.
    let stopped = admin.json(&["vm", "stop", "web-1", "--wait"]).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");

    // Exit codes from real answers.
    admin
        .run(&["vm", "get", "nope"])
        .await
        .expect_error(3, "vm get nope", None);
    admin
        .run(&["vm", "create", "web-1", "--cpu", "1", "--memory", "1GiB"])
        .await
        .expect_error(6, "create the same VM twice", None);
    admin
        .run(&["vm", "create", "x", "--cpu", "two", "--memory", "1GiB"])
        .await
        .expect_code(2, "--cpu two");
    admin
        .run(&["vm", "create", "x", "--cpu", "1", "--memory", "4XB"])
        .await
        .expect_code(2, "--memory 4XB");
    admin.run(&["vm", "lst"]).await.expect_code(2, "unknown command");
    admin
        .run(&["vm", "delete", "web-1"])
        .await
        .expect_error(2, "delete without --yes", Some("--yes"));

    // No credentials, a bad LQX_TOKEN: 4 with a hint to log in.
    let anon = Lqx::new();
    anon.run(&["vm", "list", "--server", &s.addr])
        .await
        .expect_error(4, "no credentials", Some("lqx login"));
    let bad = Lqx::new().env("LQX_TOKEN", "not-a-token").env("LQX_SERVER", &s.addr);
    bad.run(&["vm", "list"])
        .await
        .expect_error(4, "bad LQX_TOKEN", Some("LQX_TOKEN"));

    // A viewer may read but not create or delete: 5.
    let out = admin
        .run_with(
            &["user", "create", "vera", "--role", "viewer", "--password-stdin"],
            Some("viewer-password-123\n".into()),
        )
        .await;
    out.expect_code(0, "user create");
    let users = admin.json(&["user", "list"]).await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "vera" && u["role"] == "viewer"),
        "{users}"
    );
    let viewer = Lqx::new();
    viewer
        .login(&s.addr, "vera", "viewer-password-123")
        .await
        .expect_code(0, "viewer login");
    assert_eq!(viewer.json(&["vm", "list"]).await.as_array().unwrap().len(), 2);
    viewer
        .run(&["vm", "create", "v-1", "--cpu", "1", "--memory", "1GiB"])
        .await
        .expect_error(5, "viewer creates a VM", Some("role"));
    viewer
        .run(&["vm", "delete", "db-1", "--yes"])
        .await
        .expect_error(5, "viewer deletes a VM", None);
    viewer
        .run(&["user", "list"])
        .await
        .expect_error(5, "viewer lists users", None);
    viewer
        .run(&["login", &s.addr, "--username", "vera", "--password-stdin"])
        .await
        .expect_code(2, "empty stdin");
    viewer
        .login(&s.addr, "vera", "wrong-password-123")
        .await
        .expect_error(4, "wrong password", None);

    // Delete with --yes; JSON says so; then it is gone.
    let del = admin.json(&["vm", "delete", "web-1", "--yes", "--wait"]).await;
    assert_eq!(del, json!({"id": web_id, "deleted": true}));
    admin
        .run(&["vm", "get", "web-1"])
        .await
        .expect_error(3, "deleted VM", None);
    admin
        .run(&["vm", "delete", "web-1", "--yes"])
        .await
        .expect_error(3, "delete twice", None);
    assert_eq!(admin.ok(&["vm", "list", "-o", "name"]).await, "db-1\n");
}

#[tokio::test]
async fn cli_ci_script_with_an_api_key() {
    let s = dev_server().await;
    let admin = Lqx::admin(&s).await;

    // The secret is in the JSON once; the note goes to stderr.
    let out = admin
        .run(&["apikey", "create", "ci", "--role", "operator", "-o", "json"])
        .await;
    out.expect_code(0, "apikey create");
    assert!(out.stderr.contains("shown once"), "{}", out.stderr);
    let created: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut want = fields(APIKEY_FIELDS);
    want.insert("secret".into());
    assert_eq!(keys(&created), want, "{created}");
    assert_eq!(created["role"], "operator");
    let key = created["secret"].as_str().unwrap().to_string();
    assert!(key.starts_with(created["prefix"].as_str().unwrap()), "{created}");
    let listed = admin.json(&["apikey", "list"]).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(keys(&listed[0]), fields(APIKEY_FIELDS), "no secret in list");
    assert!(!admin.ok(&["apikey", "list", "-o", "yaml"]).await.contains(&key));

    // The CI job: a fresh machine, the key from a variable on stdin, no terminal.
    let ci = Lqx::new().env("KEY", &key).env("SERVER", &s.addr);
    let mut sh = Command::new("sh");
    ci.apply_env(&mut sh);
    sh.env("LQX", bin("lqx")).args([
        "-c",
        r#"echo "$KEY" | "$LQX" login "$SERVER" --with-token && "$LQX" vm list -o json"#,
    ]);
    let script = tokio::task::spawn_blocking(move || sh.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&script.stdout);
    let stderr = String::from_utf8_lossy(&script.stderr);
    assert!(script.status.success(), "CI script failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("Logged in to"), "{stderr}");
    let vms: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(vms, json!([]));
    assert!(
        !std::fs::read_to_string(ci.path().join("config.toml"))
            .unwrap()
            .contains(&key),
        "key in the config"
    );
    let st = ci.json(&["auth", "status"]).await;
    assert_eq!(st["auth_method"], "api_key");
    assert!(st["token_source"].as_str().unwrap().starts_with("file "));

    // An operator key creates VMs but cannot manage users.
    let vm = ci
        .json(&["vm", "create", "ci-1", "--cpu", "1", "--memory", "512MiB"])
        .await;
    assert_eq!(vm["memory_mib"], 512);
    ci.run_with(
        &["user", "create", "eve", "--password-stdin"],
        Some("eve-password-1234\n".into()),
    )
    .await
    .expect_error(5, "operator key creates a user", None);
    // Logging out of an API key context keeps the key valid and says so.
    let out = ci.run(&["logout"]).await;
    out.expect_code(0, "logout of an API key");
    assert!(out.stderr.contains("apikey revoke"), "{}", out.stderr);
    ci.run(&["vm", "list"])
        .await
        .expect_error(4, "after logout", Some("lqx login"));

    // LQX_TOKEN alone, no login, no config.
    let env_only = Lqx::new().env("LQX_TOKEN", &key).env("LQX_SERVER", &s.addr);
    let vms = env_only.json(&["vm", "list"]).await;
    assert_eq!(vms.as_array().unwrap().len(), 1);
    assert_eq!(vms[0]["name"], "ci-1");
    assert_eq!(
        env_only.json(&["auth", "status"]).await["token_source"],
        "environment (LQX_TOKEN)"
    );
    assert!(!env_only.path().join("config.toml").exists());
    // LQX_TOKEN wins over a stored session.
    let both = Lqx::admin(&s).await;
    let both = both.env("LQX_TOKEN", &key);
    assert_eq!(both.json(&["auth", "status"]).await["auth_method"], "api_key");

    // A revoked key: 4.
    let id = created["id"].as_str().unwrap();
    admin.ok(&["apikey", "revoke", id, "--yes"]).await;
    env_only
        .run(&["vm", "list"])
        .await
        .expect_error(4, "revoked key", Some("LQX_TOKEN"));
    // The audit log shows the key's work.
    let audit = admin
        .json(&["audit", "list", "--resource", vm["id"].as_str().unwrap()])
        .await;
    assert!(
        !audit.as_array().unwrap().is_empty(),
        "no audit entry for the VM the key created"
    );
    // Readable actions in the table, the RPC too in JSON and `-o wide`; `--action` takes both.
    let vm_id = vm["id"].as_str().unwrap();
    let created = audit.as_array().unwrap().iter().find(|e| e["action"] == "vm.create");
    let created = created.unwrap_or_else(|| panic!("no vm.create entry: {audit}"));
    assert_eq!(created["method"], "compute.VMService/CreateVM", "{created}");
    let table = admin.ok(&["audit", "list", "--resource", vm_id]).await;
    assert!(table.contains("vm.create"), "{table}");
    assert!(!table.contains("VMService"), "raw RPC names in the table: {table}");
    let wide = admin.ok(&["audit", "list", "--resource", vm_id, "-o", "wide"]).await;
    assert!(
        wide.contains("METHOD") && wide.contains("compute.VMService/CreateVM"),
        "{wide}"
    );
    for filter in ["vm.create", "compute.VMService/CreateVM"] {
        let only = admin
            .json(&["audit", "list", "--resource", vm_id, "--action", filter])
            .await;
        let actions: Vec<_> = only.as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
        assert!(
            !actions.is_empty() && actions.iter().all(|a| a == "vm.create"),
            "--action {filter}: {only}"
        );
    }
}

/// A server whose access tokens live 2 s, with no leeway.
async fn short_token_server() -> Server {
    Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            config: Some("auth:\n  access_ttl: 2s\n  refresh_ttl: 1h\n  leeway: 0s\n".into()),
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn cli_refreshes_tokens_and_sends_dead_sessions_to_login() {
    let mut s = short_token_server().await;
    let a = Lqx::admin(&s).await;
    let first = a.stored(&s);
    let old_access = first["access_token"].as_str().unwrap().to_string();

    // Let the access token expire (JWT times are whole seconds: 2-3 s after login) until the
    // server refuses it; then lqx must refresh by itself.
    s.set_token(Some(old_access.clone()));
    let mut waited = Duration::ZERO;
    loop {
        let (st, _) = s.call(&format!("{AUTH}/WhoAmI"), json!({})).await;
        if st == 401 {
            break;
        }
        assert_eq!(st, 200);
        assert!(
            waited < Duration::from_secs(10),
            "the 2 s access token still works after {waited:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += Duration::from_millis(200);
    }
    assert_eq!(a.json(&["vm", "list"]).await, json!([]));
    let second = a.stored(&s);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"], "refresh tokens rotate");

    // `lqx auth token` hands out a token that works for curl.
    let tok = a.ok(&["auth", "token"]).await;
    let tok = tok.trim();
    assert_eq!(tok.split('.').count(), 3, "{tok}");
    s.set_token(Some(tok.to_string()));
    let (st, who) = s.call(&format!("{AUTH}/WhoAmI"), json!({})).await;
    assert_eq!(st, 200, "{who}");

    // Eight processes refresh at once: rotation with reuse detection must not end the
    // session (they take turns and reuse the newest token).
    let runs: Vec<_> = (0..8).map(|_| a.run(&["node", "list", "-o", "name"])).collect();
    for out in futures::future::join_all(runs).await {
        out.expect_code(0, "parallel lqx");
        assert_eq!(out.stdout.lines().count(), 3);
    }
    a.ok(&["vm", "list"]).await;

    // `lqx logout` ends the session on the server and locally.
    let spent_refresh = a.stored(&s)["refresh_token"].as_str().unwrap().to_string();
    a.ok(&["logout"]).await;
    assert!(!a.credentials_file(&s).exists());
    s.set_token(None);
    let (st, _) = s
        .call(&format!("{AUTH}/RefreshToken"), json!({"refreshToken": spent_refresh}))
        .await;
    assert_eq!(st, 401, "the refresh token survived logout");
    a.run(&["vm", "list"])
        .await
        .expect_error(4, "after logout", Some("lqx login"));

    // A session revoked elsewhere (`logout --all` on another machine): exit 4 and login.
    let b = Lqx::new();
    let c = Lqx::new();
    b.login(&s.addr, "admin", ADMIN_PASSWORD)
        .await
        .expect_code(0, "login b");
    c.login(&s.addr, "admin", ADMIN_PASSWORD)
        .await
        .expect_code(0, "login c");
    let out = c.run(&["logout", "--all"]).await;
    out.expect_code(0, "logout --all");
    assert!(out.stderr.contains("every session"), "{}", out.stderr);
    b.run(&["vm", "list"])
        .await
        .expect_error(4, "revoked session", Some("lqx login"));
    b.run(&["auth", "status"])
        .await
        .expect_error(4, "auth status of a revoked session", Some("lqx login"));
    // Logging in again fixes it.
    b.login(&s.addr, "admin", ADMIN_PASSWORD)
        .await
        .expect_code(0, "login again");
    b.ok(&["vm", "list"]).await;
}

#[tokio::test]
async fn cli_closed_stdout_exits_quietly_with_a_long_list() {
    // Enough VMs that `vm list -o json` is far larger than a pipe buffer.
    let mut cluster = String::from("nodes:\n  - {name: node-1, cpu_cores: 512, memory_mib: 1048576}\nvms:\n");
    for i in 0..120 {
        cluster.push_str(&format!(
            "  - {{name: vm-{i:03}, node: node-1, cpu_cores: 1, memory_mib: 512}}\n"
        ));
    }
    let s = Server::start(
        Engine::Sqlite,
        Options {
            sim: Some(cluster),
            ..Default::default()
        },
    )
    .await;
    let a = Lqx::admin(&s).await;
    let all = a.json(&["vm", "list"]).await;
    assert_eq!(all.as_array().unwrap().len(), 120);

    // `lqx vm list -o json | head -c 16`: read a little, close the pipe.
    let mut cmd = a.command(&["vm", "list", "-o", "json"]);
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        (first, child.wait_with_output().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(&out.0[..1], b"[");
    assert_eq!(
        out.1.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.1.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.1.stderr), "");
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|f| f.is_file())
}

/// A private D-Bus session with an unlocked gnome-keyring; ends when dropped.
struct SecretService {
    child: std::process::Child,
    bus: String,
    _home: tempfile::TempDir,
}

impl SecretService {
    fn start() -> SecretService {
        let home = tempfile::tempdir().unwrap();
        let run = home.path().join("run");
        std::fs::create_dir(&run).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let script = "printf '%s' e2e-keyring | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
                      || exit 1; echo \"$DBUS_SESSION_BUS_ADDRESS\"; read _";
        let mut child = Command::new("dbus-run-session")
            .args(["--", "sh", "-c", script])
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &run)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-run-session");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let bus = line.trim().to_string();
        assert!(!bus.is_empty(), "gnome-keyring did not start in a D-Bus session");
        SecretService {
            child,
            bus,
            _home: home,
        }
    }

    fn secret_tool(&self, args: &[&str]) -> Option<String> {
        on_path("secret-tool")?;
        let out = Command::new("secret-tool")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        // Closing stdin ends the shell; dbus-run-session then stops the bus.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn cli_secret_service_round_trip() {
    if on_path("gnome-keyring-daemon").is_none() || on_path("dbus-run-session").is_none() {
        eprintln!("skipped: needs gnome-keyring-daemon and dbus-run-session (apt-get install gnome-keyring dbus)");
        return;
    }
    let s = dev_server().await;
    let keyring = tokio::task::spawn_blocking(SecretService::start).await.unwrap();
    let mut a = Lqx::new().env("DBUS_SESSION_BUS_ADDRESS", &keyring.bus);
    a.keyring = true;

    let out = a.login(&s.addr, "admin", ADMIN_PASSWORD).await;
    out.expect_code(0, "login into the keyring");
    assert!(out.stderr.contains("keyring (service lqx:"), "{}", out.stderr);
    assert!(!a.path().join("credentials").join("127.0.0.1.json").exists());
    let plaintext: Vec<_> = std::fs::read_dir(a.path().join("credentials"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(plaintext.is_empty(), "a token file next to the keyring: {plaintext:?}");
    let st = a.json(&["auth", "status"]).await;
    assert_eq!(
        st["token_source"],
        format!("keyring (service lqx:{}, account admin)", s.addr)
    );
    assert_eq!(a.json(&["vm", "list"]).await, json!([]));
    let service = format!("lqx:{}", s.addr);
    if let Some(found) = keyring.secret_tool(&["search", "--all", "service", &service]) {
        assert!(found.contains("access_token"), "not in the Secret Service: {found}");
    }

    a.ok(&["logout"]).await;
    if let Some(found) = keyring.secret_tool(&["search", "--all", "service", &service]) {
        assert!(
            !found.contains("access_token"),
            "still in the Secret Service after logout: {found}"
        );
    }
    a.run(&["vm", "list"])
        .await
        .expect_error(4, "after logout", Some("lqx login"));

    // Without a D-Bus session the same login stops and names the ways out.
    let none = Lqx {
        keyring: true,
        ..Lqx::new()
    };
    let out = none.login(&s.addr, "admin", ADMIN_PASSWORD).await;
    out.expect_error(1, "no keyring", Some("--insecure-storage"));
    assert!(out.stderr.contains("LQX_TOKEN"), "{}", out.stderr);
    assert!(
        !none.path().join("credentials").exists(),
        "wrote a token without a keyring"
    );
}

// ------------------------------------------------------------------ operator UX (issue 17)

/// Table snapshots keep the layout's choices (which columns, what is cut) but not the exact
/// padding, which follows values that change from run to run (ages, key prefixes).
/// Runs of 2+ spaces → "  ", short ids → [SHORT], ages → [AGE].
fn table_shape(t: &str) -> String {
    let mut out = String::new();
    for line in t.lines() {
        let words: Vec<String> = line
            .split("  ")
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| {
                let short =
                    |x: &str| x.len() == 8 && x.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
                if short(w) {
                    "[SHORT]".to_string()
                } else if let Some((kind, id)) = w.split_once('/')
                    && short(id)
                {
                    format!("{kind}/[SHORT]")
                } else if w.starts_with("lqx_") && w.len() == 12 {
                    "lqx_[KEY-PREFIX]".to_string()
                } else if is_age(w) {
                    "[AGE]".to_string()
                } else {
                    w.to_string()
                }
            })
            .collect();
        out.push_str(&words.join("  "));
        out.push('\n');
    }
    out
}

fn is_age(w: &str) -> bool {
    let w = w.strip_prefix("in ").unwrap_or(w);
    w.strip_suffix(['s', 'm', 'h', 'd'])
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Every line within `width` unless the key columns alone are wider; ids and names whole.
#[track_caller]
fn assert_fits(table: &str, width: Option<usize>, whole: &[String], what: &str) {
    if let Some(w) = width {
        for l in table.lines() {
            assert!(l.chars().count() <= w, "{what}: a line is wider than {w}:\n{table}");
        }
    }
    for s in whole {
        assert!(
            table.split_whitespace().any(|word| word == s),
            "{what}: {s:?} is not whole in:\n{table}"
        );
    }
}

#[tokio::test]
async fn cli_list_tables_never_wrap_at_80_120_and_without_a_terminal() {
    let s = dev_server().await;
    let admin = Lqx::admin(&s).await;
    admin
        .ok(&[
            "vm",
            "create",
            "web-frontend-production-eu-west-01",
            "--cpu",
            "2",
            "--memory",
            "2GiB",
            "--node",
            "node-1",
            "--description",
            "the public web tier of the production shop, behind the load balancer",
            "-l",
            "tier=web",
            "-l",
            "env=production",
            "-l",
            "team=storefront",
        ])
        .await;
    admin
        .ok(&["vm", "create", "db-1", "--cpu", "4", "--memory", "8GiB", "--no-wait"])
        .await;
    admin
        .run_with(
            &["user", "create", "vera", "--role", "viewer", "--password-stdin"],
            Some("viewer-password-123\n".into()),
        )
        .await
        .expect_code(0, "user create");
    for k in ["ci", "deploy-pipeline-nightly"] {
        admin
            .run(&["apikey", "create", k, "--role", "viewer"])
            .await
            .expect_code(0, "apikey create");
    }
    admin
        .ok(&[
            "alert",
            "webhook",
            "add",
            "http://127.0.0.1:9/hooks/a-rather-long-path/for-alerts",
        ])
        .await;

    let vm_ids: Vec<String> = admin
        .json(&["vm", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    let key_ids: Vec<String> = admin
        .json(&["apikey", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap()[24..32].to_string())
        .collect();
    let hook_ids: Vec<String> = admin
        .json(&["alert", "webhook", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap()[24..32].to_string())
        .collect();
    let cases: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        ("vm_list", vec!["vm", "list"], vm_ids.clone()),
        ("vm_list_wide", vec!["vm", "list", "-o", "wide"], vm_ids),
        (
            "node_list",
            vec!["node", "list"],
            vec!["node-1".into(), "node-2".into()],
        ),
        ("user_list", vec!["user", "list"], vec!["vera".into()]),
        ("apikey_list", vec!["apikey", "list"], key_ids),
        ("audit_list", vec!["audit", "list", "--limit", "5"], vec![]),
        ("alert_list", vec!["alert", "list"], vec![]),
        ("webhook_list", vec!["alert", "webhook", "list"], hook_ids),
        ("drs_list", vec!["drs", "list"], vec![]),
        ("context_list", vec!["context", "list"], vec![]),
    ];
    for (name, args, whole) in cases {
        for width in [Some(80), Some(120), None] {
            let lqx = Lqx {
                dir: tempfile::tempdir().unwrap(),
                env: vec![],
                keyring: false,
            };
            // Same config and token, with COLUMNS set or not.
            copy_dir(admin.path(), lqx.path());
            let lqx = match width {
                Some(w) => lqx.env("COLUMNS", &w.to_string()),
                None => lqx,
            };
            let table = lqx.ok(&args).await;
            let what = format!("{name} at {width:?}");
            assert_fits(&table, width, &whole, &what);
            let label = format!("{name}_{}", width.map_or("unlimited".to_string(), |w| w.to_string()));
            snapshot_settings().bind(|| insta::assert_snapshot!(label, table_shape(&table)));
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o700)).unwrap();
            }
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[tokio::test]
async fn cli_login_errors_contexts_exit_codes_and_waiting() {
    let s = dev_server().await;
    let ops = Lqx::new();
    // A wrong password shows the server's refusal, not "Not logged in".
    let out = ops.login(&s.addr, "admin", "wrong-password-123").await;
    out.expect_error(4, "wrong password", Some("password"));
    assert!(out.stderr.contains("Invalid username or password"), "{}", out.stderr);
    assert!(!out.stderr.contains("Not logged in"), "{}", out.stderr);

    // Logging in again reuses the context's username and token storage.
    ops.run_with(
        &["login", &s.addr, "-u", "admin", "--password-stdin"],
        Some(format!("{ADMIN_PASSWORD}\n")),
    )
    .await
    .expect_code(0, "first login");
    ops.ok(&["logout"]).await;
    let again = Lqx {
        dir: tempfile::tempdir().unwrap(),
        env: vec![],
        // No LQX_TOKEN_STORAGE=file: the context's storage must be what is used.
        keyring: true,
    };
    copy_dir(ops.path(), again.path());
    let out = again
        .run_with(&["login", "--password-stdin"], Some(format!("{ADMIN_PASSWORD}\n")))
        .await;
    out.expect_code(0, "login again without -u");
    assert!(
        out.stderr.contains("as admin") && out.stderr.contains("file"),
        "{}",
        out.stderr
    );
    again.ok(&["vm", "list"]).await;

    // --wait is the default without a terminal too: start returns a running VM.
    let vm = again
        .json(&["vm", "create", "w1", "--cpu", "1", "--memory", "512MiB", "--start"])
        .await;
    assert_eq!(vm["state"], "running", "{vm}");
    let stopped = again.json(&["vm", "stop", "w1"]).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");

    // No room: resource exhausted is 6 (conflict or precondition), not 1.
    let out = again
        .run(&["vm", "create", "huge", "--cpu", "4096", "--memory", "64TiB", "--start"])
        .await;
    assert!(matches!(out.code, Some(6) | Some(2)), "no room: {out:?}");
    // An RPC past its deadline is 7 (timed out), not 1.
    let slow = again.run(&["vm", "list", "--timeout", "1ms"]).await;
    slow.expect_error(7, "RPC deadline", Some("--timeout"));
}

#[tokio::test]
async fn cli_names_short_ids_and_prefixes() {
    let s = dev_server().await;
    let admin = Lqx::admin(&s).await;
    for k in ["ci", "nightly"] {
        admin
            .run(&["apikey", "create", k, "--role", "viewer"])
            .await
            .expect_code(0, "apikey create");
    }
    for u in ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"] {
        admin.ok(&["alert", "webhook", "add", u]).await;
    }
    // The table's short id is the random tail, and works wherever an id is taken.
    let hooks = admin.json(&["alert", "webhook", "list"]).await;
    let ids: Vec<String> = hooks
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    let table = admin.ok(&["alert", "webhook", "list"]).await;
    for id in &ids {
        assert!(table.contains(&id[24..32]) && !table.contains(id.as_str()), "{table}");
    }
    // (Nothing listens there: the delivery fails, exit 1, but the short id found the hook.)
    let tested = admin
        .run(&["alert", "webhook", "test", &ids[0][24..32], "-o", "json"])
        .await;
    let tested: Value = serde_json::from_str(&tested.stdout).unwrap();
    assert_eq!(tested["id"], ids[0].as_str(), "{tested}");
    // A prefix both share (UUIDv7 ids made together share their time) is ambiguous: 2, both listed.
    let common: String = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let out = admin
        .run(&["alert", "webhook", "delete", &common[..common.len().min(8)], "--yes"])
        .await;
    out.expect_error(2, "ambiguous prefix", Some("more characters"));
    assert!(
        out.stderr.contains(&ids[0]) && out.stderr.contains(&ids[1]),
        "{}",
        out.stderr
    );
    admin
        .run(&["alert", "webhook", "delete", "ffffffff", "--yes"])
        .await
        .expect_error(3, "no such prefix", None);
    admin
        .ok(&["alert", "webhook", "delete", &ids[1][24..30], "--yes"])
        .await;
    assert_eq!(
        admin
            .json(&["alert", "webhook", "list"])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // API keys by name.
    admin.ok(&["apikey", "revoke", "ci", "--yes"]).await;
    let keys = admin.json(&["apikey", "list"]).await;
    let ci = keys.as_array().unwrap().iter().find(|k| k["name"] == "ci").unwrap();
    assert_eq!(ci["revoked"], true, "{keys}");
    admin
        .run(&["drs", "get", "0000"])
        .await
        .expect_error(3, "no recommendation", None);

    // Dynamic completion: names from the server; hidden commands never offered.
    let complete = |args: &[&str]| {
        let mut c = admin.command(&[]);
        c.env("COMPLETE", "fish").arg("--").args(args);
        c
    };
    let run = |mut c: Command| async move {
        let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    admin
        .ok(&[
            "vm",
            "create",
            "db-east",
            "--cpu",
            "1",
            "--memory",
            "512MiB",
            "--no-wait",
        ])
        .await;
    let vms = run(complete(&["lqx", "vm", "start", "d"])).await;
    assert!(vms.lines().any(|l| l.starts_with("db-east")), "{vms}");
    let nodes = run(complete(&["lqx", "node", "get", ""])).await;
    assert!(nodes.lines().any(|l| l.starts_with("node-1")), "{nodes}");
    let keys = run(complete(&["lqx", "apikey", "revoke", "n"])).await;
    assert!(keys.lines().any(|l| l.starts_with("nightly")), "{keys}");
    let top = run(complete(&["lqx", ""])).await;
    assert!(top.lines().any(|l| l.starts_with("vm")), "{top}");
    assert!(!top.contains("__generate-docs"), "{top}");
    let top = run(complete(&["lqx", "__"])).await;
    assert!(!top.contains("__generate-docs"), "{top}");
}

/// The object a field holds, by JSON type: integers and floats differ.
fn shape(v: &Value) -> BTreeSet<(String, &'static str)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let t = match v {
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "integer",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            (k.clone(), t)
        })
        .collect()
}

/// The lines a child prints, read on a thread until it closes its stdout (a watch is never
/// left blocked on a full pipe).
fn lines_of(out: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    rx
}

#[tokio::test]
async fn cli_one_json_shape_across_get_list_watch_and_simulate() {
    let s = dev_server().await;
    let admin = Lqx::admin(&s).await;
    // A watch that records VM events as JSON lines, from a known point, so the VM below is
    // seen however fast the CLI subscribes.
    let from = s.mark("marker").await.to_string();
    let mut w = admin.command(&["watch", "--type", "vm", "-o", "json", "--resume-from", &from]);
    let mut child = w.spawn().unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    let created = admin
        .json(&[
            "vm",
            "create",
            "shape-1",
            "--cpu",
            "1",
            "--memory",
            "1GiB",
            "--description",
            "d",
        ])
        .await;
    let got = admin.json(&["vm", "get", "shape-1"]).await;
    let listed = admin.json(&["vm", "list"]).await;
    let listed = listed
        .as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == "shape-1"))
        .unwrap_or_else(|| panic!("shape-1 not listed: {listed}"))
        .clone();
    let event: Value = tokio::task::spawn_blocking(move || {
        loop {
            let l = rx.recv_timeout(Duration::from_secs(20)).expect("a vm event");
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["type"] == "created" {
                return v;
            }
        }
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let payload = &event["payload"];
    assert_eq!(keys(payload), fields(VM_FIELDS), "{payload}");
    assert_eq!(payload["cpu_cores"], json!(1), "integers stay integers: {payload}");
    assert_eq!(payload["memory_mib"], json!(1024));
    assert_eq!(payload["id"], created["id"]);
    for v in [&got, &listed, payload] {
        assert_eq!(shape(v), shape(&created), "{v}");
        let state = v["state"].as_str().unwrap();
        assert_eq!(state, state.to_ascii_lowercase(), "lower-case enum words: {v}");
    }

    // drs simulate's recommendations use the names and words of `drs list`.
    let cluster = s.data_dir.path().join("cluster.yaml");
    std::fs::write(&cluster, HOT_CLUSTER).unwrap();
    let sim = admin
        .json(&["drs", "simulate", "--cluster", cluster.to_str().unwrap()])
        .await;
    let rec = &sim["recommendations"][0];
    assert!(rec.is_object(), "no recommendation: {sim}");
    for k in ["priority", "type"] {
        let w = rec[k].as_str().unwrap();
        assert_eq!(w, w.to_ascii_lowercase(), "{k}: {rec}");
    }
    assert!(
        rec.get("estimated_duration_seconds").is_some_and(Value::is_u64),
        "{rec}"
    );
    assert!(rec.get("estimated_duration_secs").is_none(), "{rec}");
}

/// Every VM on one node: DRS moves some away.
const HOT_CLUSTER: &str = "nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 65536}
  - {name: node-2, cpu_cores: 16, memory_mib: 65536}
  - {name: node-3, cpu_cores: 16, memory_mib: 65536}
vms:
  - {name: web-1, node: node-1, cpu_cores: 4, memory_mib: 16384}
  - {name: web-2, node: node-1, cpu_cores: 4, memory_mib: 16384}
  - {name: web-3, node: node-1, cpu_cores: 4, memory_mib: 16384}
  - {name: web-4, node: node-1, cpu_cores: 4, memory_mib: 12288}
";

#[tokio::test]
async fn cli_watch_survives_server_shutdown_promptly() {
    let s = dev_server().await;
    let admin = Lqx::admin(&s).await;
    // Resumed from just before the marker VM's event: the watch prints it once its stream is
    // live, which is when the shutdown below must find it open.
    let from = (s.mark("marker").await - 1).to_string();
    let mut w = admin.command(&["watch", "-o", "json", "--timeout", "3s", "--resume-from", &from]);
    let mut child = w.spawn().unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let first = tokio::task::spawn_blocking(move || lines.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(first.is_ok(), "the watch printed nothing");
    // The open watch does not hold the shutdown for the drain timeout (30 s).
    let started = std::time::Instant::now();
    let status = s.terminate().await;
    assert!(status.success() || status.code().is_some(), "{status:?}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "shutdown took {took:?} with a watch open"
    );
    // The watch says what happened and tries to reconnect (until --timeout), not an h2 error.
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server shutting down"), "{stderr}");
    assert!(stderr.contains("reconnecting after sequence"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}

/// The `lqx watch` table (`-o table`, as on a terminal) names VMs and nodes, not ids, and
/// its columns line up although each row is printed as its event arrives.
#[tokio::test]
async fn cli_watch_table_shows_names_in_aligned_columns() {
    let s = dev_server().await;
    let admin = Lqx::admin(&s).await;
    // From a known point, so the VMs below are seen however fast the CLI subscribes.
    let from = s.mark("marker").await.to_string();
    let mut child = admin
        .command(&["watch", "-o", "table", "--resume-from", &from])
        .spawn()
        .unwrap();
    let printed = lines_of(child.stdout.take().unwrap());
    let short = admin.json(&["vm", "create", "w1"]).await;
    let long = admin.json(&["vm", "create", "web-frontend-long-12"]).await;
    admin.ok(&["vm", "start", "w1"]).await;
    let rows_in =
        |lines: &[String], name: &str| lines.iter().filter(|l| l.split_whitespace().any(|w| w == name)).count();
    // Until the rows checked below are printed: w1 created and started, the long one created.
    let lines = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        while rows_in(&lines, "w1") < 2 || rows_in(&lines, "web-frontend-long-12") < 1 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match printed.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => panic!(
                    "no rows of w1 created and started and web-frontend-long-12 created:\n{}",
                    lines.join("\n")
                ),
            }
        }
        lines
    })
    .await
    .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let table = lines.join("\n");
    assert!(lines.len() >= 4, "{table}");
    let header = &lines[0];
    assert!(header.starts_with("TIME") && header.contains("NAME"), "{table}");
    for id in [&short["id"], &long["id"]] {
        let id = id.as_str().unwrap();
        assert!(!table.contains(id), "an id in the table: {table}");
        assert!(!table.contains(&id[24..32]), "a short id in the table: {table}");
    }
    // Every row's columns start where the header's do.
    let starts: Vec<usize> = ["SEQ", "RESOURCE", "NAME", "EVENT"]
        .iter()
        .map(|c| header.find(c).unwrap())
        .collect();
    for l in &lines[1..] {
        for &at in &starts {
            let b = l.as_bytes();
            assert!(
                b.len() > at && b[at] != b' ' && b[at - 1] == b' ',
                "column at {at} misaligned:\n{header}\n{l}"
            );
        }
    }
}

/// `lqx --version` shows the client's version and the server's (asked without a login), and
/// says when the server is unreachable: exit 0 in every case, and quickly.
#[tokio::test]
async fn cli_version_shows_the_servers_version_or_that_it_is_unreachable() {
    let client = env!("CARGO_PKG_VERSION");
    let s = dev_server().await;
    let admin = Lqx::admin(&s).await;
    let out = admin.ok(&["--version"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("lqx {client}"), "{out}");
    // Built from a git checkout, the server names its commit (build.rs), as git does here.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let suffix = commit.as_ref().map(|c| format!(" (commit {c})")).unwrap_or_default();
    assert_eq!(
        lines[1],
        format!("server {}: lqx-server {client}{suffix}", s.addr),
        "{out}"
    );
    let v = admin.json(&["--version"]).await;
    assert_eq!(
        (
            &v["client"]["version"],
            &v["server"]["version"],
            &v["server"]["reachable"]
        ),
        (&json!(client), &json!(client), &json!(true)),
        "{v}"
    );
    assert_eq!(v["server"]["commit"], json!(commit.unwrap_or_default()), "{v}");
    // Not logged in: the version is public.
    let anon = Lqx::new().env("LQX_SERVER", &s.addr);
    assert!(anon.ok(&["vm", "--version"]).await.contains("lqx-server"));

    // Nothing listens there: the client's version, "unreachable", exit 0.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Lqx::new().env("LQX_SERVER", &format!("http://127.0.0.1:{port}"));
    let started = std::time::Instant::now();
    let out = down.run(&["--version"]).await;
    out.expect_code(0, "--version with the server down");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("lqx {client}"), "{}", out.stdout);
    assert!(
        lines[1].starts_with(&format!("server http://127.0.0.1:{port}: unreachable")),
        "{}",
        out.stdout
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// The main commands' `--help` ends with examples.
#[tokio::test]
async fn cli_help_has_examples() {
    let lqx = Lqx::new();
    for cmd in [
        vec!["vm", "create", "--help"],
        vec!["vm", "list", "--help"],
        vec!["login", "--help"],
        vec!["watch", "--help"],
        vec!["ha", "status", "--help"],
    ] {
        let help = lqx.ok(&cmd).await;
        let at = help.find("Examples:\n").unwrap_or_else(|| panic!("{cmd:?}: {help}"));
        assert!(help[at..].contains(&format!("lqx {}", cmd[0])), "{cmd:?}: {help}");
    }
}

/// `lqx watch` across a real restart: lqx-server stopped and started again on the same data
/// directory and port. The watch reconnects by itself, says what it could not get back
/// (the server keeps no events of its earlier run), and prints the new run's events, in
/// sequence order, none twice.
#[tokio::test]
async fn cli_watch_goes_on_across_a_real_server_restart() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = Options {
        args: vec!["--dev".into()],
        data_dir: Some(data.path().to_path_buf()),
        listen: Some(format!("127.0.0.1:{port}")),
        ..Default::default()
    };
    let mut s = Server::start(Engine::Sqlite, opts.clone()).await;
    s.login_admin().await;
    let admin = Lqx::admin(&s).await;
    // From a known point, so before-1 is seen however fast the CLI subscribes.
    let from = s.mark("marker").await.to_string();
    let mut child = admin
        .command(&[
            "watch",
            "--type",
            "vm",
            "-o",
            "json",
            "--timeout",
            "60s",
            "--resume-from",
            &from,
        ])
        .spawn()
        .unwrap();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(lines_of(child.stdout.take().unwrap())));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    // Waits until the watch has printed an event about VM `name`.
    let wait_for = |name: &'static str| {
        let (rx, seen) = (rx.clone(), seen.clone());
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                if seen.lock().unwrap().iter().any(|e| e["payload"]["name"] == name) {
                    return;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.lock().unwrap().recv_timeout(left) {
                    Ok(line) => {
                        if let Ok(v) = serde_json::from_str::<Value>(&line) {
                            seen.lock().unwrap().push(v);
                        }
                    }
                    Err(_) => panic!("no event about {name}: {:?}", seen.lock().unwrap()),
                }
            }
        })
    };
    admin.ok(&["vm", "create", "before-1"]).await;
    wait_for("before-1").await.unwrap();

    let stopped = s.terminate().await;
    assert!(stopped.code().is_some(), "{stopped:?}");
    let s = Server::start(Engine::Sqlite, opts).await;
    assert_eq!(s.addr, format!("http://127.0.0.1:{port}"));
    admin.ok(&["vm", "create", "after-1"]).await;
    wait_for("after-1").await.unwrap();
    child.kill().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reconnecting after sequence"), "{stderr}");
    assert!(stderr.contains("kept no events from before it came back"), "{stderr}");
    let seqs: Vec<u64> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, none twice: {seqs:?}");
    drop(s);
}

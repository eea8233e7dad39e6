//! The README's quick start and tour, run as written against `lqx-server --dev` (real
//! binaries, SQLite), in order: each line of the README's code blocks is one `bash -c` in a
//! directory whose `lqx-data` is the server's data directory. HA runs on short timings
//! (a `--config` with an `ha:` section) so the node-failure part takes seconds; every wait in
//! the tour is a condition with a timeout, not a guess. Also: restarting the playground on
//! the same data directory recreates the hosts' domains (the test driver forgets them) and
//! every command still works.

use lqx_e2e::{ADMIN_PASSWORD, Engine, Options, Server, bin};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAST_HA: &str = "\
ha:
  check_interval: 1s
  heartbeat_timeout: 3s
  failure_threshold: 3
  heartbeat_interval: 500ms
  lease_ttl: 5s
  self_fence_after: 4s
  fence_margin: 500ms
";

/// The lines of the README code block that follows `marker` (comments and blank lines
/// dropped, trailing comments kept: bash ignores them).
fn block_after(readme: &str, marker: &str) -> Vec<String> {
    let rest = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no {marker:?}"))..];
    let start = rest.find("```sh\n").expect("a sh block") + 6;
    let end = rest[start..].find("```").expect("the block's end") + start;
    rest[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// `lqx watch` as the README's third terminal runs it, stdout piped.
fn watch_command(cwd: &Path, config: &Path) -> Command {
    let mut c = lqx_env(Command::new(bin("lqx")), cwd, config);
    c.args(["watch", "--type", "vm,node,alert,drs,ha"])
        .stdout(Stdio::piped());
    c
}

/// Runs one README line with the binaries on PATH and a private CLI config dir.
fn run_line(line: &str, cwd: &Path, config: &Path) -> (bool, String) {
    let mut c = Command::new("bash");
    c.arg("-c").arg(line);
    let mut c = lqx_env(c, cwd, config);
    let out = c.output().expect("run bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The environment of the README's terminals: the binaries on PATH, a private CLI config.
fn lqx_env(mut c: Command, cwd: &Path, config: &Path) -> Command {
    let bin_dir = bin("lqx").parent().unwrap().to_path_buf();
    c.current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("LQX_") {
            c.env_remove(&k);
        }
    }
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    c.env("PATH", path)
        .env("LQX_CONFIG_DIR", config)
        .env("HOME", config)
        .env("NO_COLOR", "1")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_quick_start_and_tour_run_as_written() {
    let server = Server::start(
        Engine::Sqlite,
        Options {
            args: vec!["--dev".into()],
            config: Some(FAST_HA.into()),
            ..Default::default()
        },
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(server.data_dir.path(), work.path().join("lqx-data")).unwrap();
    let config = tempfile::tempdir().unwrap();
    let text = readme();
    let url = format!("http://{}", server.addr.trim_start_matches("http://"));
    let mut lines: Vec<String> = block_after(&text, "In another terminal")
        .into_iter()
        .filter(|l| !l.starts_with("export PATH"))
        .map(|l| {
            l.replace("http://127.0.0.1:8080", &url)
                .replace("lqx-dev-password", ADMIN_PASSWORD)
        })
        .collect();
    lines.extend(block_after(&text, "<!-- tour:begin -->"));
    assert!(lines.len() > 20, "the tour is there: {lines:?}");
    let mut transcript = String::new();
    let mut watch = None;
    for line in &lines {
        if watch.is_none() && !line.contains("lqx login") {
            // What the README's third terminal runs.
            watch = Some(watch_command(work.path(), config.path()).spawn().expect("lqx watch"));
        }
        let t = Instant::now();
        let (ok, out) = tokio::task::block_in_place(|| run_line(line, work.path(), config.path()));
        transcript.push_str(&format!("$ {line}   ({:.1}s)\n{out}", t.elapsed().as_secs_f64()));
        assert!(
            ok,
            "README line failed: {line}\n--- transcript ---\n{transcript}\n--- server ---\n{}",
            server.logs()
        );
    }
    // What the tour claims to show, shown: a DRS move applied, the alert raised and
    // resolved, db-1 restarted by HA away from node-2 (then deleted by the tour), hot-1 lost.
    for want in [
        "applied",
        "Memory use on node-3",
        "restarted by HA",
        "not HA-protected",
        "No move recommended: held back by hysteresis",
        "could not move spread-3",
        "draining",
        "exit 6",
    ] {
        assert!(
            transcript.contains(want),
            "{want:?} not in the transcript:\n{transcript}"
        );
    }
    // `lqx watch` (started after login) saw all of it.
    let watch = watch.expect("started");
    let _ = std::process::Command::new("kill").arg(watch.id().to_string()).status();
    let seen = String::from_utf8_lossy(&watch.wait_with_output().unwrap().stdout).to_string();
    for want in [
        "\"resource_type\":\"drs\"",
        "\"type\":\"applied\"",
        "node.memory_high",
        "\"type\":\"resolved\"",
        "\"resource_type\":\"ha\"",
        "\"type\":\"restarted\"",
    ] {
        assert!(seen.contains(want), "lqx watch did not show {want}:\n{seen}");
    }
    eprintln!("{transcript}");
}

/// Stops the playground and starts it again on the same data directory: the test driver
/// has forgotten every domain, the first pass over each host defines and starts them again
/// (with an alert), and stop/start/migrate work on them.
#[tokio::test(flavor = "multi_thread")]
async fn restarting_the_playground_recreates_domains() {
    let data = tempfile::tempdir().unwrap();
    let dev = |data: &Path| Options {
        args: vec!["--dev".into()],
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    };
    let work = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let login = |server: &Server| {
        format!(
            "echo {ADMIN_PASSWORD} | lqx login http://{} --username admin --password-stdin --insecure-storage",
            server.addr.trim_start_matches("http://")
        )
    };
    let sh = |line: &str| {
        let (ok, out) = tokio::task::block_in_place(|| run_line(line, work.path(), config.path()));
        assert!(ok, "{line}:\n{out}");
        out
    };
    let first = Server::start(Engine::Sqlite, dev(data.path())).await;
    sh(&login(&first));
    sh("lqx vm create web-1 --cpu 2 --memory 1GiB --node node-1 --start");
    sh("lqx vm create db-1 --cpu 2 --memory 1GiB --node node-2");
    assert!(first.terminate().await.success());

    let second = Server::start(Engine::Sqlite, dev(data.path())).await;
    sh(&login(&second));
    let list = sh("lqx vm list --no-headers");
    assert!(list.contains("web-1") && list.contains("running"), "{list}");
    // The domains are back before the first command (one pass runs before serving).
    sh("lqx vm stop web-1");
    sh("lqx vm start web-1");
    sh("lqx vm start db-1");
    sh("lqx vm migrate web-1 --to node-3 --cold --wait");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts = sh("lqx alert list --unresolved");
        if alerts.contains("domain recreated") {
            break;
        }
        assert!(Instant::now() < deadline, "no domain_recreated alert:\n{alerts}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(second.terminate().await.success());
}

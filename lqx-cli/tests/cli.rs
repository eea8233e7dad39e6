//! Binary-level tests of `lqx` (one test binary for the crate, modules by topic). These run
//! the real binary with assert_cmd and need no server; the tests against a real lqx-server
//! live in the workspace's end-to-end suite.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use predicates::prelude::*;

/// `lqx` with a private, empty config dir and none of the caller's LQX_* settings.
fn lqx(config_dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lqx").expect("lqx binary");
    for (k, _) in std::env::vars() {
        if k.starts_with("LQX_") {
            c.env_remove(&k);
        }
    }
    c.env("LQX_CONFIG_DIR", config_dir)
        .env("HOME", config_dir)
        .env_remove("NO_COLOR");
    c
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

mod help {
    use super::*;

    #[test]
    fn root_help_snapshot() {
        let d = tmp();
        let out = lqx(d.path())
            .arg("--help")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        insta::assert_snapshot!("root_help", String::from_utf8(out).unwrap());
    }

    #[test]
    fn vm_create_help_snapshot() {
        let d = tmp();
        let out = lqx(d.path())
            .args(["vm", "create", "--help"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        insta::assert_snapshot!("vm_create_help", String::from_utf8(out).unwrap());
    }

    #[test]
    fn help_exit_codes_prints_the_table() {
        let d = tmp();
        let out = lqx(d.path())
            .args(["help", "exit-codes"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let s = String::from_utf8(out).unwrap();
        insta::assert_snapshot!("exit_codes", s);
        for (code, word) in [
            (0, "success"),
            (2, "usage"),
            (3, "not found"),
            (4, "not authenticated"),
            (5, "permission denied"),
            (6, "conflict"),
            (7, "timed out"),
        ] {
            assert!(
                s.lines()
                    .any(|l| l.starts_with(&format!("  {code}  ")) && l.contains(word)),
                "{code} {word}\n{s}"
            );
        }
    }

    #[test]
    fn help_topic_for_a_command_and_unknown_topic() {
        let d = tmp();
        lqx(d.path())
            .args(["help", "vm", "migrate"])
            .assert()
            .success()
            .stdout(predicate::str::contains("--cold"));
        lqx(d.path())
            .args(["help", "nonsense"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("error: No help topic"));
    }

    #[test]
    fn version() {
        let d = tmp();
        lqx(d.path())
            .arg("--version")
            .assert()
            .success()
            .stdout(predicate::str::starts_with("lqx "));
    }
}

mod usage {
    use super::*;

    #[test]
    fn bad_size_is_a_usage_error_naming_the_flag() {
        let d = tmp();
        lqx(d.path())
            .args(["vm", "create", "web", "--memory", "4 parsecs"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("--memory").and(predicate::str::contains("4GiB")))
            // Not a terminal: no colours.
            .stderr(predicate::str::contains("\x1b[").not());
    }

    #[test]
    fn bad_duration_and_unknown_command() {
        let d = tmp();
        lqx(d.path())
            .args(["--timeout", "soon", "vm", "list"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("5m"));
        lqx(d.path()).args(["vmm", "list"]).assert().code(2);
        lqx(d.path()).args(["vm", "list", "-o", "xml"]).assert().code(2);
    }

    #[test]
    fn unknown_column_lists_the_columns() {
        let d = tmp();
        lqx(d.path())
            .args(["context", "list", "--columns", "name,colour"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("error: Unknown column \"colour\""))
            .stderr(predicate::str::contains("hint: columns: current, name, server"));
    }

    #[test]
    fn destructive_commands_need_yes_without_a_terminal() {
        let d = tmp();
        lqx(d.path())
            .env("LQX_TOKEN", "t")
            .args(["vm", "delete", "web-1"])
            .write_stdin("y\n")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--yes"));
        lqx(d.path())
            .env("LQX_TOKEN", "t")
            .args(["ha", "failover", "node-1"])
            .assert()
            .code(2);
        lqx(d.path())
            .env("LQX_TOKEN", "t")
            .args(["apikey", "revoke", "k1"])
            .assert()
            .code(2);
    }

    #[test]
    fn secrets_are_not_flags() {
        let d = tmp();
        lqx(d.path()).args(["login", "--password", "hunter2"]).assert().code(2);
        lqx(d.path())
            .env("LQX_TOKEN", "t")
            .args(["user", "create", "bob", "--password", "x"])
            .assert()
            .code(2);
    }
}

mod auth {
    use super::*;

    #[test]
    fn without_credentials_exit_4_with_login_hint() {
        let d = tmp();
        lqx(d.path())
            .args(["vm", "list"])
            .assert()
            .code(4)
            .stdout("")
            .stderr(predicate::str::contains(
                "error: Not logged in to http://127.0.0.1:8080",
            ))
            .stderr(predicate::str::contains("hint: run `lqx login`"));
    }

    #[test]
    fn unreachable_server_is_exit_1_with_hint() {
        let d = tmp();
        lqx(d.path())
            .env("LQX_TOKEN", "t")
            .args(["--server", "http://127.0.0.1:9", "node", "list"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("error: Cannot reach http://127.0.0.1:9"))
            .stderr(predicate::str::contains("hint: is lqx-server running"));
    }

    #[test]
    fn debug_shows_the_chain() {
        let d = tmp();
        lqx(d.path())
            .env("LQX_TOKEN", "t")
            .args(["--debug", "--server", "http://127.0.0.1:9", "node", "list"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("caused by"))
            .stderr(predicate::str::contains("exit code: 1"));
    }

    fn no_keyring_login(d: &Path, dbus: Option<&str>) -> assert_cmd::assert::Assert {
        let mut c = lqx(d);
        match dbus {
            Some(a) => c.env("DBUS_SESSION_BUS_ADDRESS", a),
            None => c.env_remove("DBUS_SESSION_BUS_ADDRESS"),
        };
        c.env_remove("DISPLAY")
            .args(["login", "http://127.0.0.1:9", "--username", "admin", "--password-stdin"])
            .write_stdin("secret\n")
            .timeout(std::time::Duration::from_secs(20))
            .assert()
    }

    #[test]
    fn no_dbus_session_names_the_ways_out_and_writes_nothing() {
        for dbus in [None, Some("unix:path=/nonexistent/lqx-test-bus")] {
            let d = tmp();
            no_keyring_login(d.path(), dbus)
                .code(1)
                .stderr(predicate::str::contains("error: No usable OS keyring"))
                .stderr(predicate::str::contains("--insecure-storage"))
                .stderr(predicate::str::contains("LQX_TOKEN_STORAGE=file"))
                .stderr(predicate::str::contains("LQX_TOKEN"));
            // Nothing written: no config, no plaintext token.
            assert!(!d.path().join("config.toml").exists());
            assert!(!d.path().join("credentials").exists());
        }
    }

    /// A context whose token sits in a file store, as `lqx login --insecure-storage` leaves it.
    fn file_context(d: &Path, mode: u32) -> PathBuf {
        std::fs::write(
            d.join("config.toml"),
            "current_context = \"lab\"\n[contexts.lab]\nserver = \"http://127.0.0.1:9\"\nusername = \"ops\"\ntoken_storage = \"file\"\n",
        )
        .unwrap();
        let creds = d.join("credentials");
        std::fs::create_dir_all(&creds).unwrap();
        let f = creds.join("lab.json");
        std::fs::write(
            &f,
            r#"{"access_token":"tok-from-file","kind":"api_key","username":"ops"}"#,
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        f
    }

    #[test]
    fn file_store_token_is_used_and_wide_mode_warns() {
        let d = tmp();
        file_context(d.path(), 0o600);
        lqx(d.path())
            .args(["auth", "token"])
            .assert()
            .success()
            .stdout("tok-from-file\n")
            .stderr("");
        let d = tmp();
        let f = file_context(d.path(), 0o644);
        lqx(d.path())
            .args(["auth", "token"])
            .assert()
            .success()
            .stdout("tok-from-file\n")
            .stderr(predicate::str::contains(format!("warning: {}", f.display())))
            .stderr(predicate::str::contains("chmod 600"));
    }

    #[test]
    fn lqx_token_wins_over_stored_credentials() {
        let d = tmp();
        file_context(d.path(), 0o600);
        lqx(d.path())
            .env("LQX_TOKEN", "from-env")
            .args(["auth", "token"])
            .assert()
            .success()
            .stdout("from-env\n");
    }
}

mod contexts {
    use super::*;

    fn two_contexts(d: &Path) {
        std::fs::write(
            d.join("config.toml"),
            "current_context = \"a\"\n\
             [contexts.a]\nserver = \"http://127.0.0.1:8080\"\nusername = \"admin\"\n\
             [contexts.b]\nserver = \"https://lqx.example.com\"\nusername = \"ci\"\ntoken_storage = \"file\"\nca_cert = \"/etc/lqx/ca.pem\"\n",
        )
        .unwrap();
    }

    #[test]
    fn list_use_show() {
        let d = tmp();
        two_contexts(d.path());
        let out = lqx(d.path())
            .args(["context", "list", "-o", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["name"], "a");
        assert_eq!(v[0]["current"], true);
        assert_eq!(v[1]["token_storage"], "file");
        assert_eq!(v[1]["ca_cert"], "/etc/lqx/ca.pem");

        lqx(d.path())
            .args(["context", "use", "b"])
            .assert()
            .success()
            .stderr(predicate::str::contains("Now using context b"));
        let out = lqx(d.path())
            .args(["context", "show", "-o", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["name"], "b");
        assert_eq!(v["server"], "https://lqx.example.com");
        lqx(d.path()).args(["context", "use", "zzz"]).assert().code(3);
        lqx(d.path())
            .env("LQX_CONTEXT", "zzz")
            .args(["vm", "list"])
            .assert()
            .code(3);
    }

    #[test]
    fn table_name_and_no_headers() {
        let d = tmp();
        two_contexts(d.path());
        lqx(d.path())
            .args(["context", "list", "--columns", "name,server", "--no-headers"])
            .assert()
            .success()
            .stdout("a   http://127.0.0.1:8080\nb   https://lqx.example.com\n");
        lqx(d.path())
            .args(["context", "list", "-o", "name"])
            .assert()
            .success()
            .stdout("a\nb\n");
        let out = lqx(d.path())
            .args(["context", "list"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        insta::assert_snapshot!("context_table", String::from_utf8(out).unwrap());
    }
}

mod pipes {
    use super::*;

    /// `lqx ... | head -1`: the reader goes away; lqx exits 0 without a panic or an error.
    #[test]
    fn closed_stdout_exits_quietly() {
        let d = tmp();
        let bin = assert_cmd::cargo::cargo_bin("lqx");
        let mut child = std::process::Command::new(bin)
            .env("LQX_CONFIG_DIR", d.path())
            .args(["completion", "bash"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read a little, then close the pipe (the script is far larger than a pipe buffer).
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
}

mod docs {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The committed completions/ and man/lqx*.1 match what the binary generates.
    /// Regenerate with `cargo run -p lqx-cli -- __generate-docs .` or LQX_REGENERATE=1.
    #[test]
    fn generated_files_are_fresh() {
        let root = repo_root();
        if std::env::var_os("LQX_REGENERATE").is_some() {
            lqx(&root).args(["__generate-docs"]).arg(&root).assert().success();
        }
        let d = tmp();
        lqx(d.path()).args(["__generate-docs"]).arg(d.path()).assert().success();
        let mut stale = Vec::new();
        for sub in ["completions", "man"] {
            let fresh = d.path().join(sub);
            for f in files(&fresh) {
                let want = std::fs::read(fresh.join(&f)).unwrap();
                if std::fs::read(root.join(sub).join(&f)).ok().as_deref() != Some(&want[..]) {
                    stale.push(format!("{sub}/{f}"));
                }
            }
        }
        // Pages of commands that no longer exist.
        let generated = files(&d.path().join("man"));
        for f in files(&root.join("man")) {
            if f.starts_with("lqx") && f.ends_with(".1") && !generated.contains(&f) {
                stale.push(format!("man/{f} (no such command)"));
            }
        }
        assert!(
            stale.is_empty(),
            "stale generated files: {stale:?}\nrun `cargo run -p lqx-cli -- __generate-docs .` from the repository root"
        );
        assert!(generated.len() > 40, "one page per command: {generated:?}");
        let root_page = std::fs::read_to_string(d.path().join("man/lqx.1")).unwrap();
        assert!(root_page.contains(".SH \"EXIT STATUS\""));
    }

    #[test]
    fn completion_scripts_for_every_shell() {
        let d = tmp();
        // Each script registers the shell's completer and calls `COMPLETE=SHELL lqx` back.
        for (shell, marker) in [
            ("bash", "_clap_complete_lqx()"),
            ("zsh", "#compdef lqx"),
            ("fish", "complete --keep-order --exclusive --command lqx"),
            ("powershell", "Register-ArgumentCompleter"),
            ("elvish", "edit:completion:arg-completer[lqx]"),
        ] {
            lqx(d.path())
                .args(["completion", shell])
                .assert()
                .success()
                .stdout(predicate::str::contains(marker))
                .stdout(predicate::str::contains("COMPLETE"));
        }
    }

    /// Commands and flags complete from the binary; the packaging command never shows.
    #[test]
    fn dynamic_completion_offers_commands_but_not_generate_docs() {
        let d = tmp();
        let ask = |words: &[&str]| {
            let out = lqx(d.path())
                .env("COMPLETE", "fish")
                .arg("--")
                .args(words)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let top = ask(&["lqx", ""]);
        assert!(top.lines().any(|l| l.starts_with("vm\t")), "{top}");
        for prefix in ["", "_", "__"] {
            assert!(
                !ask(&["lqx", prefix]).contains("generate-docs"),
                "offered for {prefix:?}"
            );
        }
        let flags = ask(&["lqx", "vm", "stop", "--"]);
        assert!(flags.contains("--force") && flags.contains("--no-wait"), "{flags}");
        // Without a server, names are simply not offered (no error, no hang).
        let names = ask(&["lqx", "vm", "start", ""]);
        assert!(names.lines().all(|l| l.starts_with('-')), "{names}");
    }
}

mod deps {
    use super::*;

    /// The CLI links the model and API client only: no libvirt, no database, no password
    /// hashing.
    #[test]
    fn cli_does_not_link_server_dependencies() {
        let out = std::process::Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .args(["tree", "-p", "lqx-cli", "-e", "normal", "--prefix", "none", "--offline"])
            .output()
            .expect("cargo tree");
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8(out.stdout).unwrap();
        assert!(tree.contains("lqx-core"), "{tree}");
        assert!(tree.contains("keyring"), "{tree}");
        let banned = [
            "sqlx",
            "sqlx-core",
            "argon2",
            "virt",
            "virt-sys",
            "libsqlite3-sys",
            "jsonwebtoken",
        ];
        let hits: Vec<&str> = tree
            .lines()
            .filter(|l| l.split_whitespace().next().is_some_and(|name| banned.contains(&name)))
            .collect();
        assert!(hits.is_empty(), "lqx-cli links server-only crates: {hits:?}");
    }
}

mod simulate {
    use super::*;

    const CLUSTER: &str = "nodes:
  - {name: node-1, cpu_cores: 16, memory_mib: 65536}
  - {name: node-2, cpu_cores: 16, memory_mib: 65536}
  - {name: node-3, cpu_cores: 16, memory_mib: 65536}
vms:
  - {name: web-1, node: node-1, cpu_cores: 4, memory_mib: 16384}
  - {name: web-2, node: node-1, cpu_cores: 4, memory_mib: 16384}
  - {name: web-3, node: node-1, cpu_cores: 4, memory_mib: 16384}
  - {name: web-4, node: node-1, cpu_cores: 4, memory_mib: 12288}
";

    /// Offline: no server, no login. Every VM on one node: DRS moves some away.
    #[test]
    fn drs_simulate_json_has_the_design_fields() {
        let d = tmp();
        let f = d.path().join("cluster.yaml");
        std::fs::write(&f, CLUSTER).unwrap();
        let out = lqx(d.path())
            .args(["drs", "simulate", "-o", "json", "--cluster"])
            .arg(&f)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for k in [
            "recommendations",
            "before",
            "after",
            "moves",
            "memory_moved_mib",
            "elapsed_ms",
        ] {
            assert!(v.get(k).is_some(), "missing {k}: {v}");
        }
        let recs = v["recommendations"].as_array().unwrap();
        assert!(!recs.is_empty());
        assert!(recs.iter().all(|r| r["source"] == "node-1"));
        let max_before = v["before"]["max_cpu_percent"].as_f64().unwrap();
        let max_after = v["after"]["max_cpu_percent"].as_f64().unwrap();
        assert!(max_after < max_before, "{max_before} -> {max_after}");
    }

    #[test]
    fn drs_simulate_errors() {
        let d = tmp();
        lqx(d.path())
            .args(["drs", "simulate", "--cluster", "/nonexistent/cluster.yaml"])
            .assert()
            .code(3);
        let f = d.path().join("bad.yaml");
        std::fs::write(&f, "nodes: [{name: a}]\nvms: 7\n").unwrap();
        lqx(d.path())
            .args(["drs", "simulate", "--cluster"])
            .arg(&f)
            .assert()
            .failure()
            .stderr(predicate::str::contains("error: "));
    }
}

//! Shared by the BMC tests (lqx-core/tests/power_bmc.rs, tests/e2e/power.rs): finding the
//! emulators scripts/setup-deps.sh installs, and running sushy-emulator.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lqx_core::power::{BmcConfig, BmcKind};

/// A BMC tool: from $LQX_BMC_VENV/bin, /opt/lqx-bmc/bin or PATH. None (after a loud message)
/// when missing outside CI; a failure in CI.
pub fn tool(name: &str) -> Option<PathBuf> {
    let venv = std::env::var("LQX_BMC_VENV").unwrap_or_else(|_| "/opt/lqx-bmc".into());
    let candidates = [Path::new(&venv).join("bin").join(name)];
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Some(p.clone());
    }
    let on_path = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if on_path.is_some() {
        return on_path;
    }
    let msg = format!("{name} is not installed: run scripts/setup-deps.sh (BMC emulators for the power tests)");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    None
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child (and waits for it) when dropped.
/// A BMC emulator started in its own process group (see [`Proc::spawn`]); dropping it kills
/// the whole group, because vbmcd forks one process per BMC and those outlive a killed parent.
pub struct Proc(Child);
impl Proc {
    pub fn spawn(cmd: &mut std::process::Command) -> Proc {
        use std::os::unix::process::CommandExt;
        Proc(cmd.process_group(0).spawn().unwrap())
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn wait_for(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

pub const USER: &str = "lqx";
pub const PASSWORD: &str = "bmc-secret";

/// sushy-emulator with its fake driver (one system, off) on HTTPS with a self-signed
/// certificate for 127.0.0.1 and basic authentication (bcrypt htpasswd).
pub struct Sushy {
    pub dir: tempfile::TempDir,
    pub url: String,
    _proc: Proc,
}

impl Sushy {
    /// `power_state`: the system's power at start (`On` or `Off`).
    pub async fn start(power_state: &str) -> Option<Sushy> {
        let bin = tool("sushy-emulator")?;
        let python = bin.with_file_name("python");
        let dir = tempfile::Builder::new().prefix("lqx-sushy").tempdir().unwrap();
        let d = dir.path();
        // A CA and a server certificate it signed (a self-signed CA certificate cannot
        // serve as the server's own: rustls refuses a CA used as an end entity).
        test_ca(d);
        let htpasswd = Command::new(&python)
            .args([
                "-c",
                &format!("import bcrypt; print('{USER}:' + bcrypt.hashpw(b'{PASSWORD}', bcrypt.gensalt(4)).decode())"),
            ])
            .output()
            .unwrap();
        assert!(htpasswd.status.success(), "bcrypt (a sushy-tools dependency) missing");
        std::fs::write(d.join("htpasswd"), &htpasswd.stdout).unwrap();
        std::fs::write(d.join("password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(
            d.join("conf.py"),
            format!(
                "SUSHY_EMULATOR_AUTH_FILE = '{}'\nSUSHY_EMULATOR_STATE_DIR = '{}'\n\
                 SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': '27946b59-9e44-4fa7-8e91-f3527a1ef094', \
                 'name': 'host-1', 'power_state': '{power_state}', 'nics': []}}]\n",
                d.join("htpasswd").display(),
                d.join("state").display()
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Proc::spawn(
            Command::new(&bin)
                .args(["--fake", "-i", "127.0.0.1", "-p", &port.to_string()])
                .arg("--ssl-certificate")
                .arg(d.join("cert.pem"))
                .arg("--ssl-key")
                .arg(d.join("key.pem"))
                .arg("--config")
                .arg(d.join("conf.py"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let s = Sushy {
            url: format!("https://127.0.0.1:{port}"),
            dir,
            _proc: child,
        };
        wait_for("sushy-emulator answers", Duration::from_secs(30), async || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        Some(s)
    }

    /// A config that verifies the emulator's certificate against its CA file.
    pub fn config(&self) -> BmcConfig {
        let mut c = BmcConfig::new(BmcKind::Redfish, &self.url);
        c.username = Some(USER.into());
        c.password_file = Some(self.dir.path().join("password"));
        c.ca_file = Some(self.dir.path().join("ca.pem"));
        c.timeout = Duration::from_secs(5);
        c
    }
}

/// scripts/test-ca.sh: a private CA (`ca.pem`) and a certificate for 127.0.0.1 it signed
/// (`cert.pem`, `key.pem`) in `dir`.
pub fn test_ca(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-ca.sh");
    let out = Command::new("bash").arg(script).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "test-ca.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! A real OpenID provider for the SSO tests: panva's `oidc-provider` (npm, installed into
//! tests/oidc by scripts/setup-deps.sh), run by tests/oidc/provider.mjs on a free port. The
//! tests act as its users through tests/oidc/drive.mjs, which fills in the provider's own
//! login and device pages over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// tests/oidc.
pub fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

pub struct OidcProvider {
    child: Option<Child>,
    pub issuer: String,
    port: u16,
    dir: tempfile::TempDir,
    /// HTTPS: the test CA that signed the provider's certificate (PEM).
    pub ca_cert: Option<PathBuf>,
}

impl OidcProvider {
    /// Starts the provider on a free port with a fresh signing key.
    pub fn start() -> OidcProvider {
        assert!(
            oidc_dir().join("node_modules/oidc-provider").is_dir(),
            "the test OpenID provider is not installed: run scripts/setup-deps.sh (npm ci in tests/oidc)"
        );
        Self::start_with(None)
    }

    /// Starts the provider over HTTPS, with a certificate from a private test CA
    /// ([`Self::ca_cert`]) that neither lqx nor Node trusts unless told.
    pub fn start_tls() -> OidcProvider {
        let dir = tempfile::tempdir().unwrap();
        test_ca(dir.path());
        Self::start_with(Some(dir))
    }

    fn start_with(tls: Option<tempfile::TempDir>) -> OidcProvider {
        assert!(
            oidc_dir().join("node_modules/oidc-provider").is_dir(),
            "the test OpenID provider is not installed: run scripts/setup-deps.sh (npm ci in tests/oidc)"
        );
        let dir = tls.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let ca_cert = dir.path().join("ca.pem");
        let ca_cert = ca_cert.exists().then_some(ca_cert);
        let (child, issuer) = spawn(&dir, 0, false, ca_cert.is_some());
        let port = issuer.rsplit(':').next().unwrap().parse().unwrap();
        OidcProvider {
            child: Some(child),
            issuer,
            port,
            dir,
            ca_cert,
        }
    }

    /// Restarts on the same port (same issuer); `rotate`: with a new signing key in front of
    /// the old one, as a provider rotating its keys publishes both for a while.
    pub fn restart(&mut self, rotate: bool) {
        self.stop();
        let (child, issuer) = spawn(&self.dir, self.port, rotate, self.ca_cert.is_some());
        assert_eq!(issuer, self.issuer);
        self.child = Some(child);
    }

    /// Stops the provider (it is unreachable until [`Self::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A whole device flow as `login` for `client_id`: the token endpoint's answer.
    pub fn tokens(&self, client_id: &str, login: &str) -> serde_json::Value {
        let out = drive(&["token", &self.issuer, client_id, login], self.ca_cert.as_deref());
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("token answer ({e}): {out}"))
    }

    /// An ID token of `login` for `client_id`.
    pub fn id_token(&self, client_id: &str, login: &str) -> String {
        let t = self.tokens(client_id, login);
        t["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_token: {t}"))
            .to_string()
    }

    /// Approves (or, `abort`, refuses) a device code as `login`, through the provider's pages.
    pub fn approve_device(&self, user_code: &str, login: &str, abort: bool) {
        let mut args = vec!["device", &self.issuer, user_code, login];
        if abort {
            args.push("--abort");
        }
        drive(&args, self.ca_cert.as_deref());
    }

    /// The provider's published keys (JWKS).
    pub async fn jwks(&self) -> serde_json::Value {
        let url = format!("{}/jwks", self.issuer);
        reqwest::get(&url).await.unwrap().json().await.unwrap()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(dir: &tempfile::TempDir, port: u16, rotate: bool, tls: bool) -> (Child, String) {
    let mut cmd = Command::new("node");
    if tls {
        cmd.env("OIDC_TLS_DIR", dir.path());
    }
    cmd.current_dir(oidc_dir())
        .arg("provider.mjs")
        .arg(dir.path().join("keys.json"))
        .arg(port.to_string());
    if rotate {
        cmd.arg("--rotate");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node (install Node.js: scripts/setup-deps.sh)");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(iss) = line.strip_prefix("ready ") {
                let _ = tx.send(iss.to_string());
            }
        }
    });
    let issuer = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the OpenID provider did not start");
    (child, issuer)
}

/// Runs tests/oidc/drive.mjs, trusting `ca_cert` (a provider over HTTPS with a private CA);
/// panics with its output when it fails.
pub fn drive(args: &[&str], ca_cert: Option<&Path>) -> String {
    let mut cmd = Command::new("node");
    if let Some(ca) = ca_cert {
        cmd.env("NODE_EXTRA_CA_CERTS", ca);
    }
    let out = cmd
        .current_dir(oidc_dir())
        .arg("drive.mjs")
        .args(args)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "drive.mjs {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// scripts/test-ca.sh: a private CA (`ca.pem`) and a certificate for 127.0.0.1 it signed
/// (`cert.pem`, `key.pem`) in `dir`.
fn test_ca(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-ca.sh");
    let out = Command::new("bash").arg(script).arg(dir).output().expect("run bash");
    assert!(
        out.status.success(),
        "test-ca.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

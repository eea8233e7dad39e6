//! `lqx login --sso`: gets an ID token from the server's OpenID provider, which the caller
//! then exchanges for an lqx session (`SSOLogin`).
//!
//! The server names the provider and the client id (`GetSSOConfig`), so users type nothing
//! but `lqx login --sso`. Two flows, both for a public client (no secret on the user's
//! machine):
//! - Browser (RFC 8252 + RFC 7636): a one-shot listener on 127.0.0.1, the provider's login
//!   page opened in the browser with a PKCE S256 challenge, `state` and `nonce`; the code
//!   comes back to the listener and is exchanged with the verifier.
//! - Device (RFC 8628): for terminals without a browser (SSH sessions, servers). The
//!   verification URI and user code go to stderr; the token endpoint is polled at the
//!   interval the provider gives, slower on `slow_down`.
//!
//! Default: the browser when one can be opened (`$BROWSER`, or a desktop session with
//! xdg-open, or macOS) and the session is not over SSH; the device flow otherwise.
//! `--browser` and `--device` choose explicitly.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{CliError, CliResult, ExitCode};

/// What the server says about its provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// The ID token and the nonce it must carry (browser flow).
#[derive(Debug)]
pub struct IdToken {
    pub id_token: String,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Device,
    Browser,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    #[serde(default)]
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: String,
}

#[derive(Debug, Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

fn provider_error(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::general(format!("OpenID provider: {what}: {e}"))
}

/// The command that opens a URL in a browser, if this session has one.
fn browser_opener() -> Option<Vec<String>> {
    if let Ok(b) = std::env::var("BROWSER")
        && !b.trim().is_empty()
    {
        return Some(b.split_whitespace().map(String::from).collect());
    }
    if std::env::var_os("SSH_CONNECTION").is_some() || std::env::var_os("SSH_TTY").is_some() {
        return None;
    }
    if cfg!(target_os = "macos") {
        return Some(vec!["open".into()]);
    }
    let desktop = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let xdg = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("xdg-open").is_file()));
    (desktop && xdg).then(|| vec!["xdg-open".into()])
}

/// The flow `--browser`/`--device` ask for, else the browser when one can be opened.
pub fn choose_flow(browser: bool, device: bool) -> Flow {
    if device {
        Flow::Device
    } else if browser || browser_opener().is_some() {
        Flow::Browser
    } else {
        Flow::Device
    }
}

fn http(ca_cert: Option<&std::path::Path>) -> CliResult<reqwest::Client> {
    let mut b = reqwest::Client::builder();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::new(ExitCode::Usage, format!("--sso-ca-cert {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                CliError::new(
                    ExitCode::Usage,
                    format!("--sso-ca-cert {}: no PEM certificate in it", path.display()),
                )
            })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| provider_error("HTTP client", e))
}

async fn discover(http: &reqwest::Client, issuer: &str) -> CliResult<Discovery> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let d: Discovery = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| provider_error(&format!("cannot read {url}"), e))?
        .json()
        .await
        .map_err(|e| provider_error("bad discovery document", e))?;
    if d.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(provider_error(
            "discovery document",
            format!("it names issuer {}, not {issuer}", d.issuer),
        ));
    }
    Ok(d)
}

async fn post_token(http: &reqwest::Client, endpoint: &str, form: &[(&str, &str)]) -> CliResult<TokenResponse> {
    let resp = http
        .post(endpoint)
        .form(form)
        .send()
        .await
        .map_err(|e| provider_error("token endpoint", e))?;
    let status = resp.status();
    let body: TokenResponse = resp.json().await.unwrap_or_default();
    if !status.is_success() && body.error.is_none() {
        return Err(provider_error("token endpoint", format!("HTTP {status}")));
    }
    Ok(body)
}

/// One poll's verdict (RFC 8628 3.5).
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    Done(String),
    /// Not yet: wait this long, then poll again.
    Wait(Duration),
    Failed(ExitCode, String),
}

/// What a token-endpoint answer means for the device flow; `interval` grows on `slow_down`.
fn device_poll(r: TokenResponse, interval: &mut Duration) -> Poll {
    match (r.id_token, r.error.as_deref()) {
        (Some(t), None) => Poll::Done(t),
        (_, Some("authorization_pending")) => Poll::Wait(*interval),
        (_, Some("slow_down")) => {
            *interval += Duration::from_secs(5);
            Poll::Wait(*interval)
        }
        (_, Some("expired_token")) => Poll::Failed(
            ExitCode::Timeout,
            "The login code expired before it was approved; run `lqx login --sso` again".into(),
        ),
        (_, Some("access_denied")) => Poll::Failed(
            ExitCode::PermissionDenied,
            "The login was denied at the provider".into(),
        ),
        (_, Some(e)) => Poll::Failed(
            ExitCode::Error,
            format!(
                "OpenID provider refused the login: {e}{}",
                r.error_description.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        ),
        (None, None) => Poll::Failed(ExitCode::Error, "OpenID provider answered without an ID token".into()),
    }
}

async fn device_flow(http: &reqwest::Client, p: &Provider, d: &Discovery) -> CliResult<IdToken> {
    if d.device_authorization_endpoint.is_empty() {
        return Err(CliError::usage("The OpenID provider does not offer the device flow")
            .hint("use `lqx login --sso --browser` on a machine with a browser"));
    }
    let scope = p.scopes.join(" ");
    let auth: DeviceAuthorization = http
        .post(&d.device_authorization_endpoint)
        .form(&[("client_id", p.client_id.as_str()), ("scope", scope.as_str())])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| provider_error("device authorization", e))?
        .json()
        .await
        .map_err(|e| provider_error("device authorization", e))?;
    eprintln!(
        "To log in, open {} and enter the code {}",
        auth.verification_uri, auth.user_code
    );
    if let Some(c) = &auth.verification_uri_complete {
        eprintln!("(or open {c})");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(auth.expires_in.max(1));
    let mut interval = Duration::from_secs(auth.interval.unwrap_or(5).max(1));
    loop {
        tokio::time::sleep(interval).await;
        let r = post_token(
            http,
            &d.token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", auth.device_code.as_str()),
                ("client_id", p.client_id.as_str()),
            ],
        )
        .await?;
        match device_poll(r, &mut interval) {
            Poll::Done(id_token) => return Ok(IdToken { id_token, nonce: None }),
            Poll::Wait(_) if tokio::time::Instant::now() >= deadline => {
                return Err(CliError::new(
                    ExitCode::Timeout,
                    "The login code expired before it was approved; run `lqx login --sso` again",
                ));
            }
            Poll::Wait(_) => {}
            Poll::Failed(code, msg) => return Err(CliError::new(code, msg)),
        }
    }
}

fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The query of a request line `GET /callback?a=b HTTP/1.1`, if it is for the callback.
fn callback_query(request_line: &str) -> Option<Vec<(String, String)>> {
    let target = request_line.strip_prefix("GET ")?.split(' ').next()?;
    let url = reqwest::Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
    (url.path() == "/callback").then(|| url.query_pairs().into_owned().collect())
}

async fn respond(conn: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body = format!("<!DOCTYPE html><html><body><p>{text}</p></body></html>");
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes()).await;
}

/// Waits for the provider's redirect to the loopback listener; returns the code.
async fn wait_for_code(listener: tokio::net::TcpListener, state: &str) -> CliResult<String> {
    loop {
        let (mut conn, _) = listener
            .accept()
            .await
            .map_err(|e| CliError::general(format!("login callback listener: {e}")))?;
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        let Some(q) = callback_query(head.lines().next().unwrap_or("")) else {
            respond(&mut conn, "404 Not Found", "Not found").await;
            continue;
        };
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        // A callback without our state is not our login (or a forged one): ignore it.
        if get("state").as_deref() != Some(state) {
            respond(
                &mut conn,
                "400 Bad Request",
                "This login response is not for this lqx login.",
            )
            .await;
            continue;
        }
        if let Some(e) = get("error") {
            respond(&mut conn, "200 OK", "Login failed; see the terminal.").await;
            let code = if e == "access_denied" {
                ExitCode::PermissionDenied
            } else {
                ExitCode::Error
            };
            let desc = get("error_description").map(|d| format!(" ({d})")).unwrap_or_default();
            return Err(CliError::new(
                code,
                format!("The OpenID provider refused the login: {e}{desc}"),
            ));
        }
        let Some(code) = get("code") else {
            respond(&mut conn, "400 Bad Request", "No authorization code.").await;
            continue;
        };
        respond(&mut conn, "200 OK", "Logged in to lqx. You can close this window.").await;
        return Ok(code);
    }
}

async fn browser_flow(http: &reqwest::Client, p: &Provider, d: &Discovery) -> CliResult<IdToken> {
    if d.authorization_endpoint.is_empty() {
        return Err(provider_error("discovery document", "no authorization_endpoint"));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::general(format!("cannot listen on 127.0.0.1 for the login callback: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::general(format!("login callback listener: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let (verifier, state, nonce) = (random(32), random(16), random(16));
    let url = reqwest::Url::parse_with_params(
        &d.authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", p.client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", p.scopes.join(" ").as_str()),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", pkce_challenge(&verifier).as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .map_err(|e| provider_error("authorization_endpoint", e))?;
    eprintln!("Opening the browser to log in. If it does not open, visit:\n{url}");
    if let Some(cmd) = browser_opener() {
        let spawned = std::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .arg(url.as_str())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            eprintln!("(could not start {}: {e})", cmd[0]);
        }
    }
    let code = tokio::time::timeout(Duration::from_secs(300), wait_for_code(listener, &state))
        .await
        .map_err(|_| CliError::new(ExitCode::Timeout, "No login arrived from the browser within 5 minutes"))??;
    let r = post_token(
        http,
        &d.token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", p.client_id.as_str()),
            ("code_verifier", verifier.as_str()),
        ],
    )
    .await?;
    match (r.id_token, r.error) {
        (Some(id_token), None) => Ok(IdToken {
            id_token,
            nonce: Some(nonce),
        }),
        (_, Some(e)) => Err(provider_error("code exchange refused", e)),
        (None, None) => Err(provider_error("code exchange", "no ID token in the answer")),
    }
}

/// Runs `flow` against the provider and returns its ID token; `ca_cert`: CAs trusted for
/// the provider besides the web roots.
pub async fn id_token(p: &Provider, flow: Flow, ca_cert: Option<&std::path::Path>) -> CliResult<IdToken> {
    let http = http(ca_cert)?;
    let d = discover(&http, &p.issuer).await?;
    match flow {
        Flow::Device => device_flow(&http, p, &d).await,
        Flow::Browser => browser_flow(&http, p, &d).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> TokenResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn device_poll_follows_rfc_8628() {
        let mut i = Duration::from_secs(2);
        assert_eq!(
            device_poll(answer(r#"{"error":"authorization_pending"}"#), &mut i),
            Poll::Wait(Duration::from_secs(2))
        );
        assert_eq!(
            device_poll(answer(r#"{"error":"slow_down"}"#), &mut i),
            Poll::Wait(Duration::from_secs(7))
        );
        assert_eq!(i, Duration::from_secs(7), "the slower interval stays");
        assert!(matches!(
            device_poll(answer(r#"{"error":"expired_token"}"#), &mut i),
            Poll::Failed(ExitCode::Timeout, _)
        ));
        assert!(matches!(
            device_poll(answer(r#"{"error":"access_denied"}"#), &mut i),
            Poll::Failed(ExitCode::PermissionDenied, _)
        ));
        assert_eq!(
            device_poll(answer(r#"{"id_token":"t"}"#), &mut i),
            Poll::Done("t".into())
        );
        assert!(matches!(
            device_poll(answer("{}"), &mut i),
            Poll::Failed(ExitCode::Error, _)
        ));
    }

    #[test]
    fn pkce_s256_is_unpadded_base64url_of_sha256() {
        // Expected value from an independent implementation (Python hashlib + base64).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ0o8Fp5dNz1hCbpSCvBu7aOJ2rkWk"),
            "USPLEnwVD0yyeO45ZGW72SwDJpjMGWxj2mWGvWdZuzs"
        );
        let v = random(32);
        assert_eq!(v.len(), 43, "RFC 7636: 43-128 characters");
        assert!(v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn only_the_callback_path_is_taken() {
        let q = callback_query("GET /callback?code=abc&state=s%20t HTTP/1.1").unwrap();
        assert_eq!(q, vec![("code".into(), "abc".into()), ("state".into(), "s t".into())]);
        assert!(callback_query("GET /favicon.ico HTTP/1.1").is_none());
        assert!(callback_query("POST /callback?code=x HTTP/1.1").is_none());
    }
}

//! The connection to lqx-server: a tonic channel (plain `http://` or TLS for `https://`,
//! with an optional private CA), the bearer token, and the refresh dance: a token that is
//! about to expire is refreshed first, and an `unauthenticated` answer is retried once after
//! a refresh. A refresh token the server refuses ends with exit code 4 and `lqx login`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use lqx_core::api::auth::v1 as authpb;
use lqx_core::api::auth::v1::auth_service_client::AuthServiceClient;

use crate::creds::{Credentials, RefreshLock, TokenKind, TokenStore};
use crate::error::{CliError, CliResult, ExitCode};

/// Refresh when the access token has less than this left.
const REFRESH_MARGIN_SECS: i64 = 30;
/// Longest single unary RPC; waits are loops of short calls.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// Retries of a read the server answered `unavailable`/`resource_exhausted`, and the most
/// time spent waiting between them.
const RETRIES: u32 = 3;
const RETRY_WAIT_MAX: Duration = Duration::from_secs(30);

/// Reads (Get*, List*, WhoAmI) may be sent again; changes never are.
pub fn is_idempotent(method: &str) -> bool {
    method.starts_with("get_") || method.starts_with("list_") || method == "who_am_i"
}

/// How long to wait before another try, or `None` when this answer is not worth retrying:
/// the server's `retry-after` seconds, else 250 ms doubling. A connection refused (no server)
/// is not retried: it would only delay the error.
fn retry_delay(s: &tonic::Status, attempt: u32) -> Option<Duration> {
    if !matches!(s.code(), tonic::Code::Unavailable | tonic::Code::ResourceExhausted) {
        return None;
    }
    if let Some(secs) = s
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(secs));
    }
    if s.code() == tonic::Code::Unavailable && s.message().contains("connect") {
        return None;
    }
    Some(Duration::from_millis(250) * 2u32.pow(attempt.min(4)))
}

/// Where the token of a session came from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    Env,
    Store(TokenStore),
    None,
}

impl TokenSource {
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Env => "environment (LQX_TOKEN)".into(),
            TokenSource::Store(s) => s.describe(),
            TokenSource::None => "none".into(),
        }
    }
}

pub struct Session {
    pub server: String,
    channel: Channel,
    pub creds: Option<Credentials>,
    pub source: TokenSource,
    /// A login session: an `unauthenticated` answer is the server's verdict on the
    /// password or key (shown as is), not a missing login.
    pub logging_in: bool,
    /// The status of the last failed call (for retries).
    last_status: Option<tonic::Status>,
    /// The project sent with every request (`lqx-project`), if any.
    pub project: Option<String>,
}

/// Builds a lazily connecting channel; connection errors surface as `unavailable` on the
/// first call.
pub fn channel(server: &str, ca_cert: Option<&Path>, rpc_timeout: Duration) -> CliResult<Channel> {
    let mut ep = Endpoint::from_shared(server.to_string())
        .map_err(|e| CliError::usage(format!("{server:?} is not a server address")).with_source(e))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(rpc_timeout.min(RPC_TIMEOUT))
        .tcp_nodelay(true);
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::usage(format!("Cannot read the CA certificate {}", path.display())).with_source(e)
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        ep = ep
            .tls_config(tls)
            .map_err(|e| CliError::general("Cannot set up TLS").with_source(e))?;
    } else if ca_cert.is_some() {
        tracing::debug!("--ca-cert ignored for a plain http:// server");
    }
    Ok(ep.connect_lazy())
}

impl Session {
    pub fn new(
        server: String,
        ca_cert: Option<PathBuf>,
        creds: Option<Credentials>,
        source: TokenSource,
        rpc_timeout: Duration,
    ) -> CliResult<Self> {
        let channel = channel(&server, ca_cert.as_deref(), rpc_timeout)?;
        Ok(Session {
            server,
            channel,
            creds,
            source,
            logging_in: false,
            last_status: None,
            project: None,
        })
    }

    fn request<T>(&self, msg: T) -> CliResult<tonic::Request<T>> {
        let mut req = tonic::Request::new(msg);
        if let Some(c) = &self.creds {
            let v = format!("Bearer {}", c.access_token).parse().map_err(|_| {
                CliError::new(ExitCode::Unauthenticated, "The stored token is not valid header text")
                    .hint("run `lqx login`")
            })?;
            req.metadata_mut().insert("authorization", v);
        }
        if let Some(p) = &self.project {
            let v = p
                .parse()
                .map_err(|_| CliError::usage(format!("{p:?} is not a project name")))?;
            req.metadata_mut().insert("lqx-project", v);
        }
        Ok(req)
    }

    fn can_refresh(&self) -> bool {
        matches!(self.source, TokenSource::Store(_))
            && self
                .creds
                .as_ref()
                .is_some_and(|c| c.kind == TokenKind::Session && c.refresh_token.is_some())
    }

    /// Refreshes the access token with the refresh token and stores the new pair.
    pub async fn refresh(&mut self) -> CliResult<()> {
        let Some(mut creds) = self.creds.clone() else {
            return Err(CliError::not_logged_in(&self.server));
        };
        let _lock = match &self.source {
            TokenSource::Store(store) => Some(RefreshLock::acquire(&store.lock_path()).await),
            _ => None,
        };
        // Another lqx may have refreshed while we waited: its refresh token is the live one
        // (ours is spent), and its access token may be good enough.
        if let TokenSource::Store(store) = &self.source
            && let Some(stored) = store.load()?
            && stored.kind == TokenKind::Session
            && stored.refresh_token.is_some()
            && stored.refresh_token != creds.refresh_token
        {
            tracing::debug!("using the token another lqx process refreshed");
            let usable = !stored.access_expiring(Utc::now(), chrono::Duration::seconds(1));
            self.creds = Some(stored.clone());
            if usable {
                return Ok(());
            }
            creds = stored;
        }
        let Some(refresh) = creds.refresh_token.clone() else {
            return Err(CliError::new(ExitCode::Unauthenticated, "The session has expired").hint("run `lqx login`"));
        };
        tracing::debug!("refreshing the access token");
        let mut client = AuthServiceClient::new(self.channel.clone());
        let resp = match client
            .refresh_token(authpb::RefreshTokenRequest { refresh_token: refresh })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => {
                let e = CliError::from_status(s.clone(), &self.server);
                // A disabled account is permission denied: a new login would not help.
                if matches!(e.code, ExitCode::Error | ExitCode::Timeout | ExitCode::PermissionDenied) {
                    return Err(e);
                }
                // Refused, expired, revoked or unknown: only a new login helps.
                return Err(CliError::new(
                    ExitCode::Unauthenticated,
                    format!("The session on {} has expired: {}", self.server, s.message()),
                )
                .hint("run `lqx login`")
                .with_source(anyhow::Error::msg(format!("{s:?}"))));
            }
        };
        let new = credentials_from_login(&resp, TokenKind::Session, Some(&creds));
        if let TokenSource::Store(store) = &self.source {
            store.save(&new)?;
        }
        self.creds = Some(new);
        Ok(())
    }

    async fn refresh_if_expiring(&mut self) -> CliResult<()> {
        let expiring = self
            .creds
            .as_ref()
            .is_some_and(|c| c.access_expiring(Utc::now(), chrono::Duration::seconds(REFRESH_MARGIN_SECS)));
        if expiring && self.can_refresh() {
            self.refresh().await?;
        }
        Ok(())
    }

    /// One unary call with the token, refreshed before when it is about to expire and once
    /// more after an `unauthenticated` answer.
    pub async fn call<Req, Resp, F, Fut>(&mut self, msg: Req, f: &F) -> CliResult<Resp>
    where
        Req: Clone,
        F: Fn(Channel, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.refresh_if_expiring().await?;
        match f(self.channel.clone(), self.request(msg.clone())?).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) if s.code() == tonic::Code::Unauthenticated && self.can_refresh() => {
                self.refresh().await?;
                f(self.channel.clone(), self.request(msg)?)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| {
                        self.last_status = Some(s.clone());
                        self.status_error(s)
                    })
            }
            Err(s) => {
                self.last_status = Some(s.clone());
                Err(self.status_error(s))
            }
        }
    }

    /// `call`, and for a read (`idempotent`) answered `unavailable` or `resource_exhausted`,
    /// up to `RETRIES` more tries after the server's `retry-after` (else a short backoff),
    /// never past `RETRY_WAIT_MAX` in all. A change is never sent twice.
    pub async fn call_retrying<Req, Resp, F, Fut>(&mut self, idempotent: bool, msg: Req, f: F) -> CliResult<Resp>
    where
        Req: Clone,
        F: Fn(Channel, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            self.last_status = None;
            match self.call(msg.clone(), &f).await {
                Err(e) if idempotent && attempt < RETRIES => {
                    let Some(delay) = self.last_status.as_ref().and_then(|s| retry_delay(s, attempt)) else {
                        return Err(e);
                    };
                    if waited + delay > RETRY_WAIT_MAX {
                        return Err(e);
                    }
                    tracing::debug!(?delay, "retrying after: {}", e.message);
                    tokio::time::sleep(delay).await;
                    waited += delay;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    pub fn status_error(&self, s: tonic::Status) -> CliError {
        if s.code() == tonic::Code::Unauthenticated && self.creds.is_none() && !self.logging_in {
            return CliError::not_logged_in(&self.server).with_source(anyhow::Error::msg(format!("{s:?}")));
        }
        let mut e = CliError::from_status(s, &self.server);
        if self.logging_in && e.code == ExitCode::Unauthenticated {
            return e.hint("check the username and password (or the API key) and try again");
        }
        if e.code == ExitCode::Unauthenticated && matches!(self.source, TokenSource::Env) {
            e = e.hint("LQX_TOKEN was refused: check or unset it");
        }
        e
    }
}

/// Credentials from a Login or RefreshToken answer; fields the answer leaves empty keep
/// their previous value.
pub fn credentials_from_login(
    resp: &authpb::LoginResponse,
    kind: TokenKind,
    prev: Option<&Credentials>,
) -> Credentials {
    use crate::views::time;
    let user = resp.user.as_ref();
    let non_empty = |s: &str| {
        if s.is_empty() { None } else { Some(s.to_string()) }
    };
    let access_expires_at = time(&resp.access_expires_at).or_else(|| {
        (resp.expires_in > 0)
            .then(|| Utc::now() + chrono::Duration::seconds(i64::try_from(resp.expires_in).unwrap_or(i64::MAX / 2)))
    });
    Credentials {
        access_token: resp.access_token.clone(),
        refresh_token: non_empty(&resp.refresh_token).or_else(|| prev.and_then(|p| p.refresh_token.clone())),
        access_expires_at,
        refresh_expires_at: time(&resp.refresh_expires_at).or_else(|| prev.and_then(|p| p.refresh_expires_at)),
        username: user
            .and_then(|u| non_empty(&u.username))
            .or_else(|| prev.and_then(|p| p.username.clone())),
        role: user
            .and_then(|u| non_empty(&u.role))
            .or_else(|| prev.and_then(|p| p.role.clone())),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_keeps_what_the_answer_omits() {
        let prev = Credentials {
            access_token: "old".into(),
            refresh_token: Some("r1".into()),
            access_expires_at: None,
            refresh_expires_at: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            username: Some("ops".into()),
            role: Some("operator".into()),
            kind: TokenKind::Session,
        };
        let resp = authpb::LoginResponse {
            access_token: "new".into(),
            expires_in: 900,
            ..Default::default()
        };
        let c = credentials_from_login(&resp, TokenKind::Session, Some(&prev));
        assert_eq!(c.access_token, "new");
        assert_eq!(c.refresh_token.as_deref(), Some("r1"));
        assert_eq!(c.username.as_deref(), Some("ops"));
        let left = c.access_expires_at.unwrap() - Utc::now();
        assert!(left.num_seconds() > 800 && left.num_seconds() <= 900);
    }

    #[test]
    fn only_reads_retry_and_retry_after_is_honoured() {
        assert!(is_idempotent("list_v_ms") && is_idempotent("get_vm") && is_idempotent("who_am_i"));
        assert!(!is_idempotent("create_vm") && !is_idempotent("revoke_api_key"));
        let mut busy = tonic::Status::resource_exhausted("slow down");
        busy.metadata_mut().insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_delay(&busy, 0), Some(Duration::from_secs(7)));
        let limit = tonic::Status::unavailable("server is at its concurrency limit, retry shortly");
        assert_eq!(retry_delay(&limit, 1), Some(Duration::from_millis(500)));
        assert_eq!(retry_delay(&tonic::Status::unavailable("tcp connect error"), 0), None);
        assert_eq!(retry_delay(&tonic::Status::not_found("x"), 0), None);
    }

    #[tokio::test]
    async fn https_channel_builds_with_tls_and_rejects_bad_ca_path() {
        assert!(channel("https://lqx.example.com:8443", None, Duration::from_secs(5)).is_ok());
        let e = channel(
            "https://x",
            Some(Path::new("/nonexistent/ca.pem")),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert_eq!(e.code, ExitCode::Usage);
        assert!(channel("http://127.0.0.1:8080", None, Duration::from_secs(5)).is_ok());
    }
}

//! Server configuration: one YAML file, overridden by `LQX_*` environment variables and
//! flags (clap handles those two), parsed into plain data first and validated in one place.

use lqx_core::model::DrsConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the API (gRPC and Connect JSON on one port).
    pub listen: SocketAddr,
    /// Serve `/metrics` (and `/healthz`) on this address only, plaintext, instead of on the
    /// API port; none: on the API port.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the embedded database, the signing key and generated files live.
    pub data_dir: PathBuf,
    /// `postgres://...` for PostgreSQL; empty: SQLite at `<data_dir>/lqx.db`.
    pub database_url: String,
    pub log_format: LogFormat,
    pub tls: Option<TlsConfig>,
    /// Listen on a non-loopback address without TLS (not recommended).
    pub insecure_listen: bool,
    pub limits: Limits,
    /// Hosts driven in-process by this control plane (all-in-one): libvirt URIs or
    /// `sim://NAME` simulated hosts.
    pub nodes: Vec<NodeConfig>,
    pub drs: DrsConfig,
    /// HA: detection, fencing and failover timing (validated at start-up).
    pub ha: lqx_core::ha::HaConfig,
    /// Leader election among replicas sharing one database (PostgreSQL).
    pub leader: lqx_core::leader::LeaderConfig,
    /// Tokens, sessions, login throttling and the signing key.
    pub auth: AuthConfig,
    /// How long audit entries are kept.
    pub audit: AuditConfig,
    /// How long ended sessions, resolved alerts and webhook deliveries are kept.
    pub retention: lqx_core::retention::Retention,
    /// Live migration: the per-host limit of concurrent migrations.
    pub migration: lqx_core::compute::inflight::MigrationConfig,
    /// Host power: each node's BMC (Redfish, IPMI) or Wake-on-LAN, by node name.
    pub power: lqx_core::power::PowerConfig,
}

/// The `audit:` section: retention of the audit log (pruned hourly, the pruning audited).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this are deleted; 0s keeps them regardless of age.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Past this many entries the oldest are deleted; 0: no limit.
    pub max_entries: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        let r = lqx_core::auth::audit_volume::Retention::default();
        AuditConfig {
            retention: r.max_age.unwrap_or_default(),
            max_entries: r.max_entries.unwrap_or_default(),
        }
    }
}

impl AuditConfig {
    pub fn retention(&self) -> lqx_core::auth::audit_volume::Retention {
        lqx_core::auth::audit_volume::Retention {
            max_age: (!self.retention.is_zero()).then_some(self.retention),
            max_entries: (self.max_entries > 0).then_some(self.max_entries),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request or response message, either protocol.
    pub max_message_bytes: usize,
    /// Unary requests served at once; more are refused with `unavailable`.
    pub max_concurrent_requests: usize,
    /// Open watch streams at once.
    pub max_streams: usize,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest time a request body may take to arrive (a slow body holds a permit).
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Longest time for a request's headers (HTTP/1) or a TLS handshake.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no traffic and no request in progress this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Client connections open at once; more wait in the listen backlog. 0: three quarters
    /// of the open-file limit (less a reserve), at most 10,000.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 512,
            max_streams: 4096,
            request_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: 0,
        }
    }
}

/// The `auth:` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of access tokens.
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens (each refresh issues a new one).
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// A login session ends this long after login, however often it is refreshed.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How long a replica may reuse its check that an access token's session and user are
    /// still valid (revocations through another replica take effect within this; through
    /// this one, at once). 0s: read them on every request.
    #[serde(with = "humantime_serde")]
    pub session_recheck: Duration,
    /// Clock skew tolerated when checking token times.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// HS256 key file (base64 of at least 32 bytes, mode 0600). Default: `<data_dir>/jwt.key`,
    /// generated at first start with SQLite; with PostgreSQL the key is kept in the database
    /// so that every replica shares it.
    pub signing_key_file: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub throttle: ThrottleConfig,
    /// Single sign-on with an OpenID provider (`lqx login --sso`); none: password logins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<lqx_core::auth::oidc::OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let jwt = lqx_core::auth::JwtConfig::default();
        AuthConfig {
            access_ttl: jwt.access_ttl,
            refresh_ttl: jwt.refresh_ttl,
            session_ttl: lqx_core::auth::SessionPolicy::default().absolute_ttl,
            session_recheck: lqx_core::auth::SessionPolicy::default().recheck,
            leeway: jwt.leeway,
            signing_key_file: None,
            issuer: jwt.issuer,
            audience: jwt.audience,
            throttle: ThrottleConfig::default(),
            oidc: None,
        }
    }
}

/// `auth.throttle`: failed logins allowed before delays start, and the delays.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Per (account, client address).
    pub pair_free_failures: u32,
    /// Per client address, across accounts.
    pub address_free_failures: u32,
    /// Per account, across addresses (not counted from addresses the account logged in from).
    pub account_free_failures: u32,
    /// First delay; each further failure doubles it.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        let p = lqx_core::auth::ThrottlePolicy::default();
        ThrottleConfig {
            pair_free_failures: p.pair_free_failures,
            address_free_failures: p.address_free_failures,
            account_free_failures: p.account_free_failures,
            base_delay: Duration::from_millis(p.base_delay_ms),
            max_delay: Duration::from_millis(p.max_delay_ms),
        }
    }
}

impl AuthConfig {
    /// The settings of the auth service.
    pub fn settings(&self) -> lqx_core::auth::AuthSettings {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        lqx_core::auth::AuthSettings {
            jwt: lqx_core::auth::JwtConfig {
                issuer: self.issuer.clone(),
                audience: self.audience.clone(),
                access_ttl: self.access_ttl,
                refresh_ttl: self.refresh_ttl,
                leeway: self.leeway,
            },
            session: lqx_core::auth::SessionPolicy {
                absolute_ttl: self.session_ttl,
                recheck: self.session_recheck,
            },
            throttle: lqx_core::auth::ThrottlePolicy {
                pair_free_failures: self.throttle.pair_free_failures,
                address_free_failures: self.throttle.address_free_failures,
                account_free_failures: self.throttle.account_free_failures,
                base_delay_ms: ms(self.throttle.base_delay),
                max_delay_ms: ms(self.throttle.max_delay),
                ..Default::default()
            },
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.access_ttl < Duration::from_secs(1) {
            anyhow::bail!("auth.access_ttl must be at least 1s");
        }
        if self.refresh_ttl < self.access_ttl {
            anyhow::bail!("auth.refresh_ttl must be at least auth.access_ttl");
        }
        if self.session_ttl < self.refresh_ttl {
            anyhow::bail!("auth.session_ttl must be at least auth.refresh_ttl");
        }
        if self.session_recheck > Duration::from_secs(60) {
            anyhow::bail!("auth.session_recheck must be at most 1m (it delays revocations across replicas)");
        }
        if self.leeway > Duration::from_secs(300) {
            anyhow::bail!("auth.leeway must be at most 5m");
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            anyhow::bail!("auth.issuer and auth.audience must not be empty");
        }
        if self.throttle.base_delay.is_zero() || self.throttle.max_delay < self.throttle.base_delay {
            anyhow::bail!("auth.throttle: base_delay must be > 0 and at most max_delay");
        }
        if let Some(o) = &self.oidc {
            o.validate().map_err(|e| anyhow::anyhow!("{}", e.message))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    pub uri: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub cpu_overcommit: Option<f64>,
    #[serde(default)]
    pub memory_overcommit: Option<f64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            metrics_listen: None,
            data_dir: PathBuf::from("lqx-data"),
            database_url: String::new(),
            log_format: LogFormat::Text,
            tls: None,
            insecure_listen: false,
            limits: Limits::default(),
            nodes: Vec::new(),
            drs: DrsConfig::default(),
            ha: lqx_core::ha::HaConfig::default(),
            leader: lqx_core::leader::LeaderConfig::default(),
            auth: AuthConfig::default(),
            audit: AuditConfig::default(),
            retention: lqx_core::retention::Retention::default(),
            migration: Default::default(),
            power: lqx_core::power::PowerConfig::default(),
        }
    }
}

impl Config {
    pub fn from_yaml(text: &str) -> anyhow::Result<Config> {
        Ok(serde_norway::from_str(text)?)
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            self.data_dir.join("lqx.db").display().to_string()
        } else {
            self.database_url.clone()
        }
    }

    /// Checks what serde cannot: one place, for the file, env and flags alike.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && self.tls.is_none() && !self.insecure_listen {
            anyhow::bail!(
                "refusing to listen on {} without TLS: set tls.cert and tls.key, or pass --insecure-listen",
                self.listen
            );
        }
        self.auth.validate()?;
        self.ha
            .validate()
            .map_err(|e| anyhow::anyhow!("ha.{}: {e}", e.field()))?;
        self.leader.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.migration.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        if self.limits.max_message_bytes < 1024 {
            anyhow::bail!("limits.max_message_bytes must be at least 1024");
        }
        if self.limits.max_concurrent_requests == 0 {
            anyhow::bail!("limits.max_concurrent_requests must be at least 1");
        }
        for (name, d) in [
            ("body_read_timeout", self.limits.body_read_timeout),
            ("header_read_timeout", self.limits.header_read_timeout),
            ("idle_timeout", self.limits.idle_timeout),
        ] {
            if d.is_zero() {
                anyhow::bail!("limits.{name} must be more than 0s");
            }
        }
        let mut names = std::collections::HashSet::new();
        for n in &self.nodes {
            lqx_core::model::validate::name("nodes[].name", &n.name).map_err(|e| anyhow::anyhow!("{e}"))?;
            if !names.insert(&n.name) {
                anyhow::bail!("nodes: {} is listed twice", n.name);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_oidc_section_parses_and_is_checked() {
        let c = Config::from_yaml(
            "auth:\n  oidc:\n    issuer: https://id.example.com\n    client_id: lqx\n    role_rules: [{group: ops, role: operator}]\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.auth.oidc.unwrap().role_rules[0].group, "ops");
        for bad in [
            "auth: {oidc: {issuer: 'http://id.example.com', client_id: lqx, default_role: viewer}}",
            "auth: {oidc: {issuer: 'https://id.example.com', client_id: lqx, default_role: viewer, algorithms: [HS256]}}",
            "auth: {oidc: {issuer: 'https://id.example.com', client_id: lqx}}",
        ] {
            assert!(Config::from_yaml(bad).and_then(|c| c.validate()).is_err(), "{bad}");
        }
    }

    #[test]
    fn example_config_parses_and_validates() {
        let text = include_str!("../../examples/lqx-server.yaml");
        let c = Config::from_yaml(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert!(!c.nodes.is_empty());
    }

    #[test]
    fn refuses_plaintext_outside_loopback() {
        let c = Config {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("without TLS"));
        let c = Config {
            insecure_listen: true,
            ..c
        };
        c.validate().unwrap();
    }

    #[test]
    fn auth_section_parses_and_is_checked() {
        let c = Config::from_yaml(
            "auth:\n  access_ttl: 5m\n  refresh_ttl: 1d\n  signing_key_file: /etc/lqx/jwt.key\n  throttle: {base_delay: 2s}\n",
        )
        .unwrap();
        c.validate().unwrap();
        let s = c.auth.settings();
        assert_eq!(s.jwt.access_ttl, Duration::from_secs(300));
        assert_eq!(s.jwt.refresh_ttl, Duration::from_secs(86_400));
        assert_eq!(s.throttle.base_delay_ms, 2000);
        assert_eq!(s.throttle.pair_free_failures, 5, "defaults kept");
        let bad = Config::from_yaml("auth: {access_ttl: 2h, refresh_ttl: 1h}").unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("refresh_ttl"));
        assert!(Config::from_yaml("auth: {acces_ttl: 1m}").is_err());
    }

    #[test]
    fn retention_parses_with_defaults() {
        let c = Config::from_yaml("retention: {sessions: 2h, resolved_alerts: 90d}").unwrap();
        assert_eq!(c.retention.sessions, Duration::from_secs(7200));
        assert_eq!(c.retention.resolved_alerts, Duration::from_secs(90 * 86400));
        let d = lqx_core::retention::Retention::default();
        assert_eq!(c.retention.webhook_deliveries, d.webhook_deliveries);
        assert_eq!(d.sessions, Duration::from_secs(86400));
        assert!(Config::from_yaml("retention: {session: 2h}").is_err());
    }

    #[test]
    fn audit_retention_parses() {
        let c = Config::from_yaml("audit: {retention: 30d, max_entries: 0}").unwrap();
        let r = c.audit.retention();
        assert_eq!(r.max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(r.max_entries, None);
        assert!(Config::default().audit.retention().max_age.is_some());
    }

    #[test]
    fn migration_section_parses_and_is_checked() {
        assert_eq!(Config::default().migration.max_per_host, 2);
        let c = Config::from_yaml("migration: {max_per_host: 4}\n").unwrap();
        assert_eq!(c.migration.max_per_host, 4);
        c.validate().unwrap();
        let c = Config::from_yaml("migration: {max_per_host: 0}\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("migration.max_per_host"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Config::from_yaml("listne: 1.2.3.4:5").is_err());
    }
}

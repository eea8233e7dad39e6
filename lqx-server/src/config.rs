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
    /// The HA section, read by the HA manager.
    pub ha: serde_yaml::Value,
    /// The auth section, read by the auth service.
    pub auth: serde_yaml::Value,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 512,
            max_streams: 4096,
            request_timeout: Duration::from_secs(60),
        }
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
            data_dir: PathBuf::from("lqx-data"),
            database_url: String::new(),
            log_format: LogFormat::Text,
            tls: None,
            insecure_listen: false,
            limits: Limits::default(),
            nodes: Vec::new(),
            drs: DrsConfig::default(),
            ha: serde_yaml::Value::Null,
            auth: serde_yaml::Value::Null,
        }
    }
}

impl Config {
    pub fn from_yaml(text: &str) -> anyhow::Result<Config> {
        Ok(serde_yaml::from_str(text)?)
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
        if self.limits.max_message_bytes < 1024 {
            anyhow::bail!("limits.max_message_bytes must be at least 1024");
        }
        if self.limits.max_concurrent_requests == 0 {
            anyhow::bail!("limits.max_concurrent_requests must be at least 1");
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
    fn example_config_parses_and_validates() {
        let text = include_str!("../../examples/lqx-server.yaml");
        let c = Config::from_yaml(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert!(!c.nodes.is_empty());
    }

    #[test]
    fn refuses_plaintext_outside_loopback() {
        let c = Config { listen: "0.0.0.0:8080".parse().unwrap(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("without TLS"));
        let c = Config { insecure_listen: true, ..c };
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Config::from_yaml("listne: 1.2.3.4:5").is_err());
    }
}

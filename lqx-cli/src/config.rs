//! The CLI's configuration: `config.toml` under the config dir (`LQX_CONFIG_DIR`, default
//! the platform config dir, e.g. `~/.config/lqx`), holding named contexts (server URL,
//! username, where the token is stored, CA certificate) and the current one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Context {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub token_storage: StorageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// The project commands act in unless `--project` names one (`lqx project use`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// Where a context's token lives.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The OS keyring (Secret Service, macOS Keychain, Windows Credential Manager)
    #[default]
    Keyring,
    /// A 0600 file under the config dir (--insecure-storage)
    File,
}

impl StorageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Keyring => "keyring",
            StorageKind::File => "file",
        }
    }
}

/// The config dir: `LQX_CONFIG_DIR`, else the platform's config dir for lqx.
pub fn config_dir() -> CliResult<PathBuf> {
    if let Some(d) = std::env::var_os("LQX_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    directories::ProjectDirs::from("", "", "lqx")
        .map(|p| p.config_dir().to_path_buf())
        .ok_or_else(|| CliError::general("Cannot find a home directory for the lqx config").hint("set LQX_CONFIG_DIR"))
}

impl Config {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }

    pub fn load(dir: &Path) -> CliResult<Config> {
        let path = Self::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(s) => toml::from_str(&s).map_err(|e| {
                CliError::general(format!("Cannot read {}", path.display()))
                    .hint("fix or delete the file; `lqx login` writes a new one")
                    .with_source(e)
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(CliError::general(format!("Cannot read {}", path.display())).with_source(e)),
        }
    }

    pub fn save(&self, dir: &Path) -> CliResult<()> {
        let s =
            toml::to_string_pretty(self).map_err(|e| CliError::general("Cannot encode the config").with_source(e))?;
        write_atomic(&Self::path(dir), s.as_bytes(), 0o600)
    }

    /// The context to use: `--context`/`LQX_CONTEXT`, else the current one.
    pub fn selected(&self, name: Option<&str>) -> CliResult<Option<(String, Context)>> {
        match name {
            Some(n) => match self.contexts.get(n) {
                Some(c) => Ok(Some((n.to_string(), c.clone()))),
                None => Err(
                    CliError::new(crate::error::ExitCode::NotFound, format!("No context named {n:?}"))
                        .hint("`lqx context list` shows the contexts; `lqx login SERVER --context NAME` creates one"),
                ),
            },
            None => Ok(self
                .current_context
                .as_ref()
                .and_then(|n| self.contexts.get(n).map(|c| (n.clone(), c.clone())))),
        }
    }
}

/// A context name for a server URL: its host and port (`lqx.example.com`, `127.0.0.1:8080`).
pub fn context_name_for(server: &str) -> String {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    rest.trim_end_matches('/').split('/').next().unwrap_or(rest).to_string()
}

/// Normalises a server argument: adds `https://` when no scheme is given, except for
/// loopback addresses, which get `http://`.
pub fn normalize_server(raw: &str) -> CliResult<String> {
    let s = raw.trim().trim_end_matches('/');
    if s.is_empty() {
        return Err(CliError::usage("Empty server address"));
    }
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        let host = s.split(':').next().unwrap_or(s);
        if host == "localhost" || host.starts_with("127.") || s.starts_with("[::1]") {
            format!("http://{s}")
        } else {
            format!("https://{s}")
        }
    };
    if !(with_scheme.starts_with("http://") || with_scheme.starts_with("https://")) {
        return Err(CliError::usage(format!(
            "{raw:?} is not an http:// or https:// address"
        )));
    }
    with_scheme
        .parse::<http::Uri>()
        .map_err(|e| CliError::usage(format!("{raw:?} is not a server address")).with_source(e))?;
    Ok(with_scheme)
}

/// Writes a file through a temporary file and a rename, created with `mode` on Unix.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> CliResult<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("lqx"),
        std::process::id()
    ));
    let fail = |e: std::io::Error| CliError::general(format!("Cannot write {}", path.display())).with_source(e);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(fail)?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

pub fn create_private_dir(dir: &Path) -> CliResult<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| CliError::general(format!("Cannot create {}", dir.display())).with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.contexts.insert(
            "prod".into(),
            Context {
                server: "https://lqx.example.com".into(),
                username: Some("ops".into()),
                token_storage: StorageKind::File,
                ca_cert: Some("/etc/lqx/ca.pem".into()),
                project: Some("team-a".into()),
            },
        );
        c.current_context = Some("prod".into());
        c.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(Config::path(dir.path())).unwrap();
        assert!(text.contains("token_storage = \"file\""), "{text}");
        assert_eq!(Config::load(dir.path()).unwrap(), c);
        let (name, ctx) = c.selected(None).unwrap().unwrap();
        assert_eq!(name, "prod");
        assert_eq!(ctx.username.as_deref(), Some("ops"));
        assert_eq!(c.selected(Some("nope")).unwrap_err().code.code(), 3);
    }

    #[test]
    fn missing_config_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
    }

    #[test]
    fn servers_normalised() {
        assert_eq!(normalize_server("127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(normalize_server("localhost:8080/").unwrap(), "http://localhost:8080");
        assert_eq!(normalize_server("lqx.example.com").unwrap(), "https://lqx.example.com");
        assert_eq!(
            normalize_server("http://10.0.0.1:8080").unwrap(),
            "http://10.0.0.1:8080"
        );
        assert_eq!(normalize_server("ftp://x").unwrap_err().code.code(), 2);
        assert_eq!(
            context_name_for("https://lqx.example.com:8443/"),
            "lqx.example.com:8443"
        );
    }
}

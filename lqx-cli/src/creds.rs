//! Where tokens live: the OS keyring (service `lqx:<server>`, account = username; every call
//! bounded by a 3 s timeout), or, only when asked for (`--insecure-storage`,
//! `LQX_TOKEN_STORAGE=file`), a 0600 JSON file under the config dir. The CLI never falls back
//! to the file by itself.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{StorageKind, write_atomic};
use crate::error::{CliError, CliResult};

/// A keyring call that has not answered by then is treated as "no keyring".
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

/// What `lqx login` stores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    /// A JWT access token, or an API key (`kind = api_key`).
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub kind: TokenKind,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    #[default]
    Session,
    ApiKey,
}

impl Credentials {
    /// True when the access token is expired or expires within `margin` of `now`.
    pub fn access_expiring(&self, now: DateTime<Utc>, margin: chrono::Duration) -> bool {
        self.access_expires_at.is_some_and(|t| t <= now + margin)
    }
}

/// A token store for one context.
#[derive(Debug, Clone)]
pub enum TokenStore {
    /// `lock`: the file that serialises refreshes (see [`RefreshLock`]).
    Keyring {
        service: String,
        account: String,
        lock: PathBuf,
    },
    File {
        path: PathBuf,
    },
}

/// The message when no keyring can be used: names the two ways out and never picks one.
pub fn no_keyring_error(reason: &str) -> CliError {
    CliError::general(format!("No usable OS keyring to store the token: {reason}")).hint(
        "on a headless machine or in CI, store it in a 0600 file with `--insecure-storage` \
         (or LQX_TOKEN_STORAGE=file), or skip storage and set LQX_TOKEN",
    )
}

impl TokenStore {
    pub fn new(kind: StorageKind, server: &str, account: &str, context: &str, config_dir: &Path) -> Self {
        match kind {
            StorageKind::Keyring => TokenStore::Keyring {
                service: format!("lqx:{server}"),
                account: account.to_string(),
                lock: file_path(config_dir, context).with_extension("lock"),
            },
            StorageKind::File => TokenStore::File {
                path: file_path(config_dir, context),
            },
        }
    }

    /// Where the token is, for `lqx auth status`.
    pub fn describe(&self) -> String {
        match self {
            TokenStore::Keyring { service, account, .. } => {
                format!("keyring (service {service}, account {account})")
            }
            TokenStore::File { path } => format!("file {}", path.display()),
        }
    }

    /// The lock file taken while this store's session is refreshed.
    pub fn lock_path(&self) -> PathBuf {
        match self {
            TokenStore::Keyring { lock, .. } => lock.clone(),
            TokenStore::File { path } => path.with_extension("lock"),
        }
    }

    /// Checks the store can be used before a login creates a session it could not keep.
    pub fn probe(&self) -> CliResult<()> {
        match self {
            TokenStore::Keyring { .. } => self.keyring_get().map(|_| ()),
            TokenStore::File { .. } => Ok(()),
        }
    }

    pub fn load(&self) -> CliResult<Option<Credentials>> {
        let text = match self {
            TokenStore::Keyring { .. } => self.keyring_get()?,
            TokenStore::File { path } => match std::fs::read_to_string(path) {
                Ok(s) => {
                    if let Some(w) = file_mode_warning(path) {
                        crate::output::err_line(&format!("warning: {w}"));
                    }
                    Some(s)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(CliError::general(format!("Cannot read {}", path.display())).with_source(e));
                }
            },
        };
        match text {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| {
                CliError::general(format!(
                    "The stored credentials in the {} are unreadable",
                    self.describe()
                ))
                .hint("run `lqx login` again")
                .with_source(e)
            }),
        }
    }

    pub fn save(&self, creds: &Credentials) -> CliResult<()> {
        let text =
            serde_json::to_string(creds).map_err(|e| CliError::general("Cannot encode credentials").with_source(e))?;
        match self {
            TokenStore::Keyring { .. } => {
                let entry = self.entry()?;
                keyring_call(move || entry.set_password(&text))?.map_err(keyring_error)
            }
            TokenStore::File { path } => write_atomic(path, text.as_bytes(), 0o600),
        }
    }

    /// Deletes the stored token; a missing one is fine.
    pub fn delete(&self) -> CliResult<()> {
        match self {
            TokenStore::Keyring { .. } => {
                let entry = self.entry()?;
                match keyring_call(move || entry.delete_credential())? {
                    Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                    Err(e) => Err(keyring_error(e)),
                }
            }
            TokenStore::File { path } => match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(CliError::general(format!("Cannot delete {}", path.display())).with_source(e)),
            },
        }
    }

    fn entry(&self) -> CliResult<keyring::Entry> {
        let TokenStore::Keyring { service, account, .. } = self else {
            return Err(CliError::general("Not a keyring store"));
        };
        let (s, a) = (service.clone(), account.clone());
        keyring_call(move || keyring::Entry::new(&s, &a))?.map_err(keyring_error)
    }

    fn keyring_get(&self) -> CliResult<Option<String>> {
        let entry = self.entry()?;
        match keyring_call(move || entry.get_password())? {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// Held while one process refreshes a stored session. Refresh tokens rotate, and the server
/// revokes the whole session when an old refresh token is used twice; so `lqx` processes
/// started together (`xargs -P`, `&`) take turns, and the later ones use the token the first
/// one stored instead of refreshing with the spent one. An advisory `flock` on a file next to
/// the credentials; released when dropped (or when the process dies).
pub struct RefreshLock {
    _file: Option<std::fs::File>,
}

/// Longest wait for another process's refresh; after that we go ahead without the lock.
const REFRESH_LOCK_WAIT: Duration = Duration::from_secs(15);

impl RefreshLock {
    pub async fn acquire(path: &Path) -> RefreshLock {
        #[cfg(unix)]
        {
            use rustix::fs::{FlockOperation, flock};
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = path.parent()
                && let Err(e) = crate::config::create_private_dir(dir)
            {
                tracing::debug!("refresh lock: {}", e.message);
                return RefreshLock { _file: None };
            }
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
            {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!("refresh lock {}: {e}", path.display());
                    return RefreshLock { _file: None };
                }
            };
            let deadline = tokio::time::Instant::now() + REFRESH_LOCK_WAIT;
            loop {
                match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => return RefreshLock { _file: Some(file) },
                    Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR)
                        if tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => {
                        tracing::debug!("refresh lock {}: {e}; refreshing without it", path.display());
                        return RefreshLock { _file: None };
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            RefreshLock { _file: None }
        }
    }

    #[cfg(test)]
    pub fn held(&self) -> bool {
        self._file.is_some()
    }
}

/// Runs a keyring call on its own thread and gives up after [`KEYRING_TIMEOUT`]; a D-Bus
/// call to a locked or absent Secret Service can otherwise hang for the D-Bus timeout
/// (25 s) or longer. A call that times out is left to finish on its thread.
fn keyring_call<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> CliResult<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("lqx-keyring".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| CliError::general("Cannot start the keyring thread").with_source(e))?;
    rx.recv_timeout(KEYRING_TIMEOUT).map_err(|_| {
        no_keyring_error(&format!(
            "the keyring did not answer within {}s (locked or hung?)",
            KEYRING_TIMEOUT.as_secs()
        ))
    })
}

fn keyring_error(e: keyring::Error) -> CliError {
    let reason = match &e {
        keyring::Error::PlatformFailure(inner) => {
            let s = inner.to_string();
            if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
                format!("no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set): {s}")
            } else {
                s
            }
        }
        keyring::Error::NoStorageAccess(inner) => {
            format!("access denied or keyring locked: {inner}")
        }
        other => other.to_string(),
    };
    no_keyring_error(&reason).with_source(e)
}

/// The credentials file of a context: `<config dir>/credentials/<context>.json`.
pub fn file_path(config_dir: &Path, context: &str) -> PathBuf {
    let safe: String = context
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    config_dir.join("credentials").join(format!("{safe}.json"))
}

/// A warning when a token file can be read or written by others than its owner.
pub fn file_mode_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Some(format!(
                "{} holds a token and has mode {mode:04o}, readable by others; run `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            access_token: "acc".into(),
            refresh_token: Some("ref".into()),
            access_expires_at: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            refresh_expires_at: None,
            username: Some("admin".into()),
            role: Some("admin".into()),
            kind: TokenKind::Session,
        }
    }

    #[cfg(unix)]
    #[test]
    fn file_store_is_0600_and_warns_when_wider() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(StorageKind::File, "http://x", "admin", "ctx/1", dir.path());
        store.save(&sample()).unwrap();
        let TokenStore::File { path } = &store else {
            panic!("file store")
        };
        assert!(path.ends_with("credentials/ctx_1.json"));
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(file_mode_warning(path), None);
        assert_eq!(store.load().unwrap(), Some(sample()));

        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = file_mode_warning(path).expect("warning for 0644");
        assert!(w.contains("0644") && w.contains("chmod 600"), "{w}");
        // Saving again restores 0600.
        store.save(&sample()).unwrap();
        assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);

        store.delete().unwrap();
        assert_eq!(store.load().unwrap(), None);
        store.delete().unwrap();
    }

    #[cfg(unix)]
    #[tokio::test(start_paused = true)]
    async fn refresh_lock_is_exclusive_and_gives_up_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(StorageKind::Keyring, "http://x", "admin", "ctx", dir.path());
        let path = store.lock_path();
        assert!(path.ends_with("credentials/ctx.lock"), "{}", path.display());
        let first = RefreshLock::acquire(&path).await;
        assert!(first.held());
        let started = tokio::time::Instant::now();
        let second = RefreshLock::acquire(&path).await;
        assert!(!second.held(), "a second holder while the first holds it");
        assert!(started.elapsed() >= REFRESH_LOCK_WAIT);
        drop(first);
        assert!(RefreshLock::acquire(&path).await.held());
    }

    #[test]
    fn expiry_margin() {
        let c = sample();
        let t: DateTime<Utc> = "2029-12-31T23:59:50Z".parse().unwrap();
        assert!(c.access_expiring(t, chrono::Duration::seconds(30)));
        assert!(!c.access_expiring(t, chrono::Duration::seconds(5)));
        let key = Credentials {
            access_expires_at: None,
            ..sample()
        };
        assert!(!key.access_expiring(t, chrono::Duration::seconds(30)));
    }

    #[test]
    fn no_keyring_message_names_the_ways_out() {
        let e = no_keyring_error("no D-Bus session");
        let hint = e.hint.clone().unwrap();
        assert!(hint.contains("--insecure-storage"));
        assert!(hint.contains("LQX_TOKEN_STORAGE=file"));
        assert!(hint.contains("LQX_TOKEN"));
        assert_eq!(e.code.code(), 1);
    }
}

//! Start-up: the bootstrap admin, the signing key shared by replicas, private files.

use super::*;

impl AuthService {
    /// Creates the admin account when the store has no user at all. Returns what it did,
    /// or `None` when users exist (or another replica bootstrapped at the same moment).
    /// A generated password is written 0600 to `<data_dir>/admin-password`.
    pub async fn bootstrap_admin(&self, source: BootstrapPassword, data_dir: &Path) -> Result<Option<Bootstrapped>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let (password, show) = match source {
            BootstrapPassword::Given(s) => {
                // The operator chose it: the length rule and "not the username" apply.
                let len = s.expose().chars().count();
                if len < password::MIN_PASSWORD_LEN || normalize_username(s.expose()) == BOOTSTRAP_ADMIN {
                    return Err(Error::invalid(
                        "LQX_BOOTSTRAP_ADMIN_PASSWORD",
                        format!(
                            "must be at least {} characters and not the username",
                            password::MIN_PASSWORD_LEN
                        ),
                    ));
                }
                (s, false)
            }
            BootstrapPassword::Dev => (Secret::new(DEV_ADMIN_PASSWORD), true),
            BootstrapPassword::Generated => (password::generate_password(GENERATED_PASSWORD_LEN), true),
        };
        let generated = show && password.expose() != DEV_ADMIN_PASSWORD;
        let hash = password::hash_password_async(password.clone()).await?;
        let now = self.now();
        let admin = User::new(BOOTSTRAP_ADMIN.into(), String::new(), Role::Admin, hash, now);
        match self.store.create_user(&admin).await {
            Ok(()) => {}
            Err(e) if e.kind == crate::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e),
        }
        let file = if generated {
            let path = data_dir.join(ADMIN_PASSWORD_FILE);
            write_private_file(&path, format!("{}\n", password.expose()).as_bytes())
                .map_err(|e| Error::precondition(format!("cannot write {}", path.display())).with_source(e))?;
            Some(path)
        } else {
            None
        };
        tracing::info!(user = BOOTSTRAP_ADMIN, "bootstrap admin created");
        Ok(Some(Bootstrapped {
            username: BOOTSTRAP_ADMIN.into(),
            password: show.then_some(password),
            file,
        }))
    }
}

/// The signing key shared by every replica through the store (kv table): the first
/// replica to start generates it, the others read it. Used with PostgreSQL, where several
/// replicas serve one database.
pub async fn shared_signing_key(store: &Store) -> Result<SigningKey> {
    for _ in 0..3 {
        if let Some((v, _)) = store.kv_get(SIGNING_KEY_KV).await? {
            return Ok(SigningKey::from_base64(&v)?);
        }
        let key = SigningKey::generate();
        if store.kv_cas(SIGNING_KEY_KV, 0, key.to_base64().expose()).await? {
            tracing::info!("generated the shared JWT signing key");
            return Ok(key);
        }
    }
    Err(Error::internal(anyhow::anyhow!(
        "the shared signing key could not be read or written"
    )))
}

/// Writes `data` to `path` readable by the owner only (0600), replacing an old file.
pub fn write_private_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    #[cfg(unix)]
    {
        // An older file keeps its mode through open(): set it.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(data)?;
    f.sync_all()
}

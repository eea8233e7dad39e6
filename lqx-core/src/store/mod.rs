//! One Store API over two real engines: SQLite (embedded default) and PostgreSQL.
//!
//! Both engines run the same SQL through sqlx's `Any` driver: the schema keeps to types
//! both understand (TEXT, BIGINT, DOUBLE PRECISION, BOOLEAN), placeholders are `$n`
//! (SQLite accepts them too), and each engine has its own migration folder for the few DDL
//! differences. Records are stored whole as JSON in `data`, next to the columns queries
//! filter, sort and enforce uniqueness on. Writes of versioned resources are conditional on
//! the resource version (optimistic concurrency): a concurrent update loses with `Aborted`
//! instead of overwriting.

mod alerts;
mod auth;
mod drs;
mod ha;
mod kv;
mod nodes;
mod operations;
mod projects;
mod sso;
mod vm_cache;
mod vms;

pub use alerts::{AlertPage, StoredAlert};
pub use auth::{AuditPage, UserPage};
pub use drs::RecommendationPage;
pub use ha::{HaStateRow, JournalEntry, LeaderRow, not_the_leader};
pub use operations::Recorded;
pub use sso::SsoCreate;
pub use vms::{VmFilter, VmPage};

use crate::model::NodeId;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Database error")]
    Database(#[from] sqlx::Error),
    #[error("Migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("Stored record is corrupt")]
    Corrupt(#[from] serde_json::Error),
    #[error("Unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error(
        "Another lqx-server is using the database {0}; SQLite serves one server (run several replicas on PostgreSQL)"
    )]
    InUse(String),
    #[error("Cannot lock {path}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<StoreError> for crate::Error {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Database(sqlx::Error::PoolTimedOut) => crate::Error::unavailable("database busy, try again")
                .with_retry_after(1)
                .with_source(e),
            StoreError::UnsupportedUrl(_) => crate::Error::invalid("database_url", e.to_string()),
            _ => crate::Error::internal(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Node names by id. Sound to keep for the life of the process on every replica: a
    /// node's name never changes and ids are never reused.
    node_names: Arc<RwLock<HashMap<NodeId, String>>>,
    /// VM records, when this process is the only writer ([`Store::cache_vm_records`]).
    vm_cache: Arc<vm_cache::VmCache>,
    /// The database file, for SQLite on disk.
    sqlite_path: Option<Arc<str>>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`:
    /// `sqlite://PATH` (or a bare path) or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let (backend, sqlite_path) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, None)
        } else if let Some(path) = url.strip_prefix("sqlite://").or(url.strip_prefix("sqlite:")) {
            (Backend::Sqlite, Some(path))
        } else if !url.contains("://") {
            (Backend::Sqlite, Some(url))
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let url = sqlite_path.map_or_else(|| url.to_string(), sqlite_url);
        let sqlite_path = sqlite_path.map(|p| p.split('?').next().unwrap_or(p).to_string());
        let opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                opts.max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL for concurrent readers; FULL so a committed write survives
                            // power loss; foreign keys are off by default in SQLite.
                            conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => opts.max_connections(16).connect(&url).await?,
        };
        let store = Store {
            pool,
            backend,
            node_names: Default::default(),
            vm_cache: Default::default(),
            sqlite_path: sqlite_path.filter(|p| !p.starts_with(":memory:")).map(Arc::from),
        };
        store.migrate().await?;
        store.ensure_default_project().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Serves VM reads by id from memory, kept in step by this store's writes. Only for a
    /// database no other process writes (see [`Store::become_only_writer`]).
    pub fn cache_vm_records(&self) {
        self.vm_cache.enable();
    }

    /// For SQLite on disk: takes `<file>.lock`, so no other lqx-server writes this database
    /// while the returned file is open, and then serves VM reads from memory. `None` for
    /// PostgreSQL (several replicas write) and in-memory SQLite.
    pub fn become_only_writer(&self) -> Result<Option<std::fs::File>, StoreError> {
        let Some(path) = &self.sqlite_path else {
            return Ok(None);
        };
        let lock_path = format!("{path}.lock");
        let lock_err = |source| StoreError::Lock {
            path: lock_path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::InUse(path.to_string())),
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_err(e)),
        }
        self.cache_vm_records();
        Ok(Some(file))
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_url(path: &str) -> String {
    if path == ":memory:" {
        return "sqlite::memory:".into();
    }
    format!("sqlite://{path}?mode=rwc")
}

/// A URL fit for an error message: any password is replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

pub(crate) fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// True when the error is a unique-constraint violation (both engines).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation() || db.message().contains("UNIQUE constraint failed"),
        _ => false,
    }
}

/// A query assembled from pieces with `$n` placeholders, which both engines accept (sqlx's
/// `QueryBuilder` would write `?` for the Any driver, which PostgreSQL rejects).
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}
impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}
impl From<i64> for Arg {
    fn from(i: i64) -> Self {
        Arg::Int(i)
    }
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    pub fn bind(&mut self, a: impl Into<Arg>) -> &mut Self {
        self.args.push(a.into());
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }
    pub fn query_as<'q, O>(&'q self) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut q = sqlx::query_as(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// ` AND column IN (...)` over ids; an empty list matches nothing.
pub(crate) fn push_in<T: std::fmt::Display>(q: &mut Sql, column: &str, ids: &[T]) {
    if ids.is_empty() {
        q.push(" AND 1=0");
        return;
    }
    q.push(&format!(" AND {column} IN ("));
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind(id.to_string());
    }
    q.push(")");
}

/// Keyset page token: opaque to clients, hex of "sort-key\0id".
pub(crate) mod page_token {
    use crate::{Error, Result};

    pub fn encode(key: &str, id: &str) -> String {
        let mut s = String::with_capacity((key.len() + id.len() + 1) * 2);
        for b in key.bytes().chain([0u8]).chain(id.bytes()) {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    pub fn decode(token: &str) -> Result<(String, String)> {
        let bad = || Error::invalid("page_token", "malformed page token");
        if !token.len().is_multiple_of(2) || token.len() > 1024 {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let s = String::from_utf8(bytes).map_err(|_| bad())?;
        let (k, id) = s.split_once('\0').ok_or_else(bad)?;
        Ok((k.to_string(), id.to_string()))
    }

    #[cfg(test)]
    #[test]
    fn round_trip() {
        let t = encode("web-1", "abc");
        assert_eq!(decode(&t).unwrap(), ("web-1".into(), "abc".into()));
        assert!(decode("zz").is_err());
        assert!(decode("abc").is_err());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("/tmp/x.db"), "/tmp/x.db");
    }
}

/// Helpers for tests that need a database of their own (store suite, end-to-end tests).
pub mod testing {
    use super::{Store, StoreError};
    use sqlx::{Connection, Executor};

    /// The PostgreSQL server for tests: `LQX_TEST_DATABASE_URL`. When unset, tests skip the
    /// PostgreSQL half locally, but in CI (`CI` set) a missing server is a failure.
    pub fn postgres_admin_url() -> Option<String> {
        match std::env::var("LQX_TEST_DATABASE_URL") {
            Ok(u) if !u.is_empty() => Some(u),
            _ if std::env::var_os("CI").is_some() => {
                panic!("LQX_TEST_DATABASE_URL is not set in CI: .ci/run must start PostgreSQL")
            }
            _ => None,
        }
    }

    /// Creates an empty database on the server at `admin_url` and returns its URL.
    pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, StoreError> {
        let name = format!("lqx_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        conn.close().await?;
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
        Ok(format!("{base}/{name}"))
    }

    /// A fresh store on each available engine: SQLite in `dir`, and PostgreSQL when available.
    pub async fn engines(dir: &std::path::Path) -> Vec<(&'static str, Store)> {
        // SQLite as lqx-server runs it: the only writer, VM records cached.
        let sqlite = Store::open(dir.join("lqx.db").to_str().unwrap()).await.unwrap();
        sqlite.cache_vm_records();
        let mut v = vec![("sqlite", sqlite)];
        if let Some(admin) = postgres_admin_url() {
            let url = fresh_postgres_database(&admin).await.unwrap();
            v.push(("postgres", Store::open(&url).await.unwrap()));
        }
        v
    }
}

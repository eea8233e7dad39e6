//! Leader election among control-plane replicas sharing one database.
//!
//! The rule, in plain words:
//! - One row (`leader`) holds the lease: holder, epoch and expiry, the expiry by the
//!   DATABASE's clock. A replica takes the lease when it has expired and renews it while it
//!   holds it, every `lease_ttl / 3`; every new term (another holder, or a lapsed lease) bumps
//!   the epoch. With SQLite there is one replica and it leads through the same row.
//! - A replica believes it leads from a successful renewal until `lease_ttl` after it SENT
//!   that renewal, on its own monotonic clock (the database granted the lease later, so the
//!   replica's belief ends first); a refused renewal ends it at once.
//! - That belief only decides whether to start leader-only work. What makes the work safe is
//!   the epoch, a fencing token: every leader-only write (HA restarts and fences, HA state,
//!   lease grants, DRS applies) is conditional, in the same statement, on the row still naming
//!   the writer's holder and epoch with an unexpired lease (see `store::ha`). A leader that was
//!   paused past its lease and resumes believes it leads for a moment, and every write it
//!   attempts is refused with "not the leader".

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};
use tracing::{info, warn};

use crate::store::Store;

/// A term of leadership: the fencing token of every leader-only write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Epoch {
    pub number: u64,
    /// The replica that holds the term (unique per process run).
    pub holder: Arc<str>,
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {} ({})", self.number, self.holder)
    }
}

/// The `leader:` section of the server configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderConfig {
    /// How long a lease lasts without renewal: the longest a dead leader keeps the others
    /// from leading (renewed every third of it).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            lease_ttl: Duration::from_secs(15),
        }
    }
}

impl LeaderConfig {
    /// How often the leader renews and the others try to take over.
    pub fn renew_interval(&self) -> Duration {
        self.lease_ttl / 3
    }

    pub fn validate(&self) -> crate::Result<()> {
        if self.lease_ttl < Duration::from_millis(300) {
            return Err(crate::Error::invalid("leader.lease_ttl", "must be at least 300ms"));
        }
        if self.lease_ttl > Duration::from_secs(600) {
            return Err(crate::Error::invalid("leader.lease_ttl", "must be at most 10m"));
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A holder name unique to this process run: host, pid and a random suffix.
pub fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lqx".into());
    let mut r = [0u8; 4];
    rand::fill(&mut r);
    format!("{host}/{}/{}", std::process::id(), hex::encode(r))
}

/// This replica's view of leadership. Cheap to clone.
#[derive(Clone)]
pub struct LeaderHandle {
    rx: watch::Receiver<Option<Epoch>>,
    /// End of the current belief (own clock): checked on every read, so a replica resuming
    /// from a pause does not act on a belief its campaign task has not yet revised.
    until: Arc<Mutex<Option<Instant>>>,
    holder: Arc<str>,
    store: Store,
    stop: Arc<Notify>,
}

impl LeaderHandle {
    /// Starts campaigning for (and renewing) the lease as `holder`.
    pub fn start(store: Store, config: LeaderConfig, holder: impl Into<String>) -> LeaderHandle {
        let task = crate::background::Task::detached(TASK, config.renew_interval());
        LeaderHandle::start_as(store, config, holder, task)
    }

    /// [`LeaderHandle::start`], each renewal recorded in `tasks` as `leader-lease`.
    pub fn start_in(
        store: Store,
        config: LeaderConfig,
        holder: impl Into<String>,
        tasks: &crate::background::BackgroundTasks,
    ) -> LeaderHandle {
        let task = tasks.register(TASK, config.renew_interval());
        LeaderHandle::start_as(store, config, holder, task)
    }

    fn start_as(
        store: Store,
        config: LeaderConfig,
        holder: impl Into<String>,
        task: crate::background::Task,
    ) -> LeaderHandle {
        let holder: Arc<str> = Arc::from(holder.into());
        let (tx, rx) = watch::channel(None);
        let stop = Arc::new(Notify::new());
        let until = Arc::new(Mutex::new(None));
        tokio::spawn(campaign(
            store.clone(),
            config,
            holder.clone(),
            tx,
            until.clone(),
            stop.clone(),
            task,
        ));
        LeaderHandle {
            rx,
            until,
            holder,
            store,
            stop,
        }
    }

    /// The current term while this replica leads.
    pub fn current(&self) -> Option<Epoch> {
        let valid = lock(&self.until).is_some_and(|t| Instant::now() < t);
        if valid { self.rx.borrow().clone() } else { None }
    }

    pub fn is_leader(&self) -> bool {
        self.current().is_some()
    }

    /// Leadership as it changes (None: not the leader).
    pub fn subscribe(&self) -> watch::Receiver<Option<Epoch>> {
        self.rx.clone()
    }

    /// Leadership as a flag (for loops that only need to know whether to run).
    pub fn leading(&self) -> watch::Receiver<bool> {
        let mut rx = self.rx.clone();
        let (tx, out) = watch::channel(rx.borrow().is_some());
        tokio::spawn(async move {
            loop {
                let leading = rx.borrow_and_update().is_some();
                tx.send_if_modified(|v| std::mem::replace(v, leading) != leading);
                tokio::select! {
                    r = rx.changed() => if r.is_err() { break },
                    _ = tx.closed() => break,
                }
            }
        });
        out
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Waits until this replica leads (or `limit` passes).
    pub async fn wait_leading(&self, limit: Duration) -> Option<Epoch> {
        let mut rx = self.rx.clone();
        let r = tokio::time::timeout(limit, rx.wait_for(|e| e.is_some())).await;
        match r {
            Ok(Ok(e)) => e.clone(),
            _ => None,
        }
    }

    /// Stops campaigning and gives the lease up, so another replica leads at once.
    pub async fn shutdown(&self) {
        self.stop.notify_one();
        if let Some(e) = self.current() {
            match self.store.leader_release(&e).await {
                Ok(true) => info!(epoch = e.number, "leader lease released"),
                Ok(false) => {}
                Err(err) => warn!(error = %err, "could not release the leader lease"),
            }
        }
    }
}

/// The name of the lease renewal among the background tasks.
pub const TASK: &str = "leader-lease";

async fn campaign(
    store: Store,
    config: LeaderConfig,
    holder: Arc<str>,
    tx: watch::Sender<Option<Epoch>>,
    until: Arc<Mutex<Option<Instant>>>,
    stop: Arc<Notify>,
    task: crate::background::Task,
) {
    let ttl = config.lease_ttl;
    let every = config.renew_interval();
    // Until when this replica may believe it leads (its own clock).
    let mut believed_until: Option<Instant> = None;
    let step_down = |tx: &watch::Sender<Option<Epoch>>, why: &str| {
        if let Some(e) = tx.borrow().clone() {
            warn!(
                epoch = e.number,
                reason = why,
                "lost leadership: leader-only work stops"
            );
        }
        tx.send_if_modified(|v| v.take().is_some());
    };
    loop {
        *lock(&until) = believed_until;
        let sent = Instant::now();
        let attempt = async {
            match tokio::time::timeout(every, store.leader_acquire(&holder, ttl)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("renewing the leader lease timed out".to_string()),
            }
        };
        let summary = |r: &Option<_>| match r {
            Some(n) => format!("leader (epoch {n})"),
            None => "another control plane leads".to_string(),
        };
        match task.run_with(attempt, summary).await {
            Ok(Some(number)) => {
                let term = Epoch {
                    number,
                    holder: holder.clone(),
                };
                believed_until = Some(sent + ttl);
                *lock(&until) = believed_until;
                if tx.borrow().as_ref() != Some(&term) {
                    info!(epoch = number, holder = %holder, "became the leader");
                    tx.send_replace(Some(term));
                }
            }
            Ok(None) => {
                believed_until = None;
                step_down(&tx, "another control plane holds the lease");
            }
            Err(e) => warn!(error = %e, "could not renew the leader lease"),
        }
        if believed_until.is_some_and(|t| Instant::now() >= t) {
            believed_until = None;
            step_down(&tx, "the lease ran out before a renewal succeeded");
        }
        let next = sent + every;
        let deadline = believed_until.filter(|t| *t < next);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                believed_until = None;
                step_down(&tx, "the lease ran out before a renewal succeeded");
            }
            _ = stop.notified() => {
                *lock(&until) = None;
                tx.send_replace(None);
                return;
            }
        }
    }
}

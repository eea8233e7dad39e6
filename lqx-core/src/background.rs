//! Background tasks: every loop the control plane runs (DRS, HA probes, host checks, leader
//! lease, node observation, saga recovery, retention), registered by name and period, with
//! the start, end and result of its last run and its last error, so an operator can see
//! that a loop runs and why it fails without reading logs (`ListBackgroundTasks`, metrics).
//!
//! A loop keeps its own timing (some wake on events as well as on a period, DRS samples
//! between runs): it holds a [`Task`] and wraps each activation in [`Task::run`]. Simple
//! periodic loops use [`BackgroundTasks::spawn`], which also owns the ticking.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The result of one activation: a short summary of what it did, or the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Error(String),
}

/// What is known about one task (a snapshot).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskStatus {
    pub name: String,
    /// How often it runs; zero for a task that runs on demand (e.g. per queued item).
    pub period: Duration,
    /// An activation has started and not ended.
    pub running: bool,
    pub last_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    pub last_duration: Option<Duration>,
    pub last_result: Option<Outcome>,
    /// The most recent error (kept after later runs succeed) and when it ended.
    pub last_error: Option<(DateTime<Utc>, String)>,
    pub runs: u64,
    pub errors: u64,
}

impl TaskStatus {
    fn new(name: &str, period: Duration) -> TaskStatus {
        TaskStatus {
            name: name.to_string(),
            period,
            running: false,
            last_start: None,
            last_end: None,
            last_duration: None,
            last_result: None,
            last_error: None,
            runs: 0,
            errors: 0,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The registry of a process's tasks. Cheap to clone; clones share the registry.
#[derive(Clone, Default)]
pub struct BackgroundTasks {
    tasks: Arc<Mutex<BTreeMap<String, Task>>>,
}

impl BackgroundTasks {
    pub fn new() -> BackgroundTasks {
        BackgroundTasks::default()
    }

    /// Registers a task. A name registered again gets the same status back (a loop that is
    /// restarted goes on counting), with the new period.
    pub fn register(&self, name: &str, period: Duration) -> Task {
        let mut tasks = lock(&self.tasks);
        let t = tasks
            .entry(name.to_string())
            .or_insert_with(|| Task::detached(name, period));
        t.set_period(period);
        t.clone()
    }

    /// Registers a task made elsewhere (a detached one, e.g. by a service that runs it on
    /// demand), replacing any of the same name.
    pub fn adopt(&self, task: &Task) {
        lock(&self.tasks).insert(task.name(), task.clone());
    }

    /// Every task, by name.
    pub fn list(&self) -> Vec<TaskStatus> {
        lock(&self.tasks).values().map(Task::status).collect()
    }

    /// Registers `name` and runs `activate` every `period` (the first at once; a late tick
    /// is delayed, never bunched) until the returned task is aborted.
    pub fn spawn<F, Fut, E>(&self, name: &str, period: Duration, mut activate: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<String, E>> + Send,
        E: Display,
    {
        let task = self.register(name, period);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period.max(Duration::from_millis(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = task.run_with(activate(), |s| s.clone()).await {
                    tracing::warn!(task = %task.name(), error = %e, "background task failed");
                }
            }
        })
    }
}

/// One task's handle: records its activations. A detached task (not in a registry) records
/// all the same, for loops started outside the server (tests, tools).
#[derive(Clone)]
pub struct Task {
    status: Arc<Mutex<TaskStatus>>,
}

impl Task {
    pub fn detached(name: &str, period: Duration) -> Task {
        Task {
            status: Arc::new(Mutex::new(TaskStatus::new(name, period))),
        }
    }

    pub fn name(&self) -> String {
        lock(&self.status).name.clone()
    }

    /// For loops whose period is configurable at run time (DRS).
    pub fn set_period(&self, period: Duration) {
        lock(&self.status).period = period;
    }

    pub fn status(&self) -> TaskStatus {
        lock(&self.status).clone()
    }

    /// Runs one activation and records it, with an empty summary on success.
    pub async fn run<T, E: Display>(&self, activation: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        self.run_with(activation, |_| String::new()).await
    }

    /// Runs one activation and records it; `summary` says in a few words what it did.
    pub async fn run_with<T, E: Display>(
        &self,
        activation: impl Future<Output = Result<T, E>>,
        summary: impl FnOnce(&T) -> String,
    ) -> Result<T, E> {
        let started = tokio::time::Instant::now();
        {
            let mut s = lock(&self.status);
            s.running = true;
            s.last_start = Some(Utc::now());
        }
        // Cut off mid-run (the loop aborted): not running any more, nothing recorded.
        struct Running<'a>(&'a Mutex<TaskStatus>);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                lock(self.0).running = false;
            }
        }
        let _running = Running(&self.status);
        let r = activation.await;
        let mut s = lock(&self.status);
        let end = Utc::now();
        s.last_end = Some(end);
        s.last_duration = Some(started.elapsed());
        s.runs += 1;
        s.last_result = Some(match &r {
            Ok(v) => Outcome::Ok(summary(v)),
            Err(e) => {
                let msg = short(&e.to_string());
                s.errors += 1;
                s.last_error = Some((end, msg.clone()));
                Outcome::Error(msg)
            }
        });
        r
    }
}

/// Errors are shown in a table and a metric-free RPC: one line, bounded.
fn short(msg: &str) -> String {
    const MAX: usize = 300;
    let line = msg.lines().next().unwrap_or_default();
    if line.len() <= MAX {
        return line.to_string();
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn spawned_task_runs_every_period_and_records_results() {
        let tasks = BackgroundTasks::new();
        let n = Arc::new(AtomicU32::new(0));
        let c = n.clone();
        let h = tasks.spawn("counter", Duration::from_secs(10), move || {
            let i = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if i == 1 {
                    Err(anyhow::anyhow!("second run fails\nwith detail"))
                } else {
                    Ok(format!("run {i}"))
                }
            }
        });
        // The first run at once.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let s = &tasks.list()[0];
        assert_eq!(s.name, "counter");
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!((s.runs, s.errors), (1, 0));
        assert_eq!(s.last_result, Some(Outcome::Ok("run 0".into())));
        assert!(s.last_error.is_none());
        assert!(!s.running);
        // Nothing more before the period is up.
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(tasks.list()[0].runs, 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = &tasks.list()[0];
        assert_eq!((s.runs, s.errors), (2, 1));
        assert_eq!(s.last_result, Some(Outcome::Error("second run fails".into())));
        assert_eq!(s.last_error.as_ref().map(|e| e.1.as_str()), Some("second run fails"));
        // A later success keeps the last error.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let s = &tasks.list()[0];
        assert_eq!((s.runs, s.errors), (3, 1));
        assert_eq!(s.last_result, Some(Outcome::Ok("run 2".into())));
        assert!(s.last_error.is_some());
        assert!(s.last_start <= s.last_end);
        h.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn run_records_duration_and_running() {
        let tasks = BackgroundTasks::new();
        let t = tasks.register("slow", Duration::ZERO);
        let t2 = t.clone();
        let h = tokio::spawn(async move {
            t2.run(async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok::<_, String>(())
            })
            .await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(t.status().running);
        assert_eq!(t.status().runs, 0);
        h.await.unwrap().unwrap();
        let s = t.status();
        assert!(!s.running);
        assert_eq!(s.runs, 1);
        assert_eq!(s.last_duration, Some(Duration::from_secs(3)));
        assert_eq!(s.last_result, Some(Outcome::Ok(String::new())));
    }

    #[tokio::test(start_paused = true)]
    async fn aborted_run_is_not_left_running() {
        let tasks = BackgroundTasks::new();
        let t = tasks.register("stuck", Duration::from_secs(1));
        let t2 = t.clone();
        let h = tokio::spawn(async move { t2.run(std::future::pending::<Result<(), String>>()).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(t.status().running);
        h.abort();
        let _ = h.await;
        assert!(!t.status().running);
        assert_eq!(t.status().runs, 0);
    }

    #[test]
    fn registering_again_shares_the_status_and_lists_by_name() {
        let tasks = BackgroundTasks::new();
        let a = tasks.register("b-task", Duration::from_secs(1));
        tasks.register("a-task", Duration::from_secs(2));
        let again = tasks.register("b-task", Duration::from_secs(5));
        again.set_period(Duration::from_secs(6));
        assert_eq!(a.status().period, Duration::from_secs(6));
        let names: Vec<_> = tasks.list().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["a-task", "b-task"]);
    }

    #[test]
    fn long_errors_are_one_bounded_line() {
        let s = short(&format!("{}\nsecond", "é".repeat(400)));
        assert!(s.len() <= 304 && !s.contains('\n') && s.ends_with('…'));
    }
}

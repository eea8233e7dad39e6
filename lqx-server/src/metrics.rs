//! Prometheus metrics at `/metrics`: request counts by method and code, latency histogram,
//! requests in flight, open connections. Hand-rolled (a few atomics and a map) to keep the
//! dependency tree small.
//!
//! Cardinality is bounded by construction: the `method` label is one of the RPCs the server
//! declares (plus health and reflection) or `unknown`, and `code` is one of a fixed set, so
//! no client can add a series.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The label of every path that is not a declared method.
pub const UNKNOWN_METHOD: &str = "unknown";

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

pub struct Metrics {
    /// The method paths that get their own label.
    known: HashSet<String>,
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    in_flight: Arc<AtomicI64>,
    connections: Arc<AtomicI64>,
}

/// One unit of a gauge, given back when dropped: a request or connection cut off at any
/// await point still leaves the gauge right.
pub struct GaugeGuard(Arc<AtomicI64>);

impl GaugeGuard {
    fn new(g: &Arc<AtomicI64>) -> GaugeGuard {
        g.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Metrics labelled by `known` method paths; every other path counts as `unknown`.
    pub fn new(known: impl IntoIterator<Item = String>) -> Metrics {
        Metrics {
            known: known.into_iter().collect(),
            requests: Mutex::default(),
            latency: Mutex::default(),
            in_flight: Arc::default(),
            connections: Arc::default(),
        }
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn in_flight(&self) -> GaugeGuard {
        GaugeGuard::new(&self.in_flight)
    }

    /// Counts an open connection until the guard is dropped.
    pub fn connection(&self) -> GaugeGuard {
        GaugeGuard::new(&self.connections)
    }

    /// The label of a request path.
    pub fn label<'a>(&self, path: &'a str) -> &'a str {
        if self.known.contains(path) {
            path
        } else {
            UNKNOWN_METHOD
        }
    }

    pub fn record(&self, method: &str, code: &'static str, elapsed: Duration) {
        let method = self.label(method);
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_string(), code))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut lat = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = lat.entry(method.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP lqx_requests_total API requests by method and result code.\n# TYPE lqx_requests_total counter\n",
        );
        for ((m, c), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "lqx_requests_total{{method=\"{m}\",code=\"{c}\"}} {n}");
        }
        out.push_str(
            "# HELP lqx_request_duration_seconds API request latency.\n# TYPE lqx_request_duration_seconds histogram\n",
        );
        for (m, h) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "lqx_request_duration_seconds_bucket{{method=\"{m}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "lqx_request_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "lqx_request_duration_seconds_sum{{method=\"{m}\"}} {}", h.sum);
            let _ = writeln!(out, "lqx_request_duration_seconds_count{{method=\"{m}\"}} {}", h.count);
        }
        out.push_str("# HELP lqx_requests_in_flight Requests being served.\n# TYPE lqx_requests_in_flight gauge\n");
        let _ = writeln!(out, "lqx_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        out.push_str("# HELP lqx_connections_open Client connections open.\n# TYPE lqx_connections_open gauge\n");
        let _ = writeln!(out, "lqx_connections_open {}", self.connections.load(Ordering::Relaxed));
        out
    }
}

/// The background tasks' series (one per task: the names are the server's own).
pub fn render_tasks(tasks: &[lqx_core::background::TaskStatus]) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP lqx_background_task_last_run_timestamp_seconds When the task's last run ended (Unix time).\n\
         # TYPE lqx_background_task_last_run_timestamp_seconds gauge\n",
    );
    for t in tasks {
        if let Some(end) = t.last_end {
            let secs = end.timestamp_millis() as f64 / 1000.0;
            let _ = writeln!(
                out,
                "lqx_background_task_last_run_timestamp_seconds{{task=\"{}\"}} {secs}",
                t.name
            );
        }
    }
    out.push_str(
        "# HELP lqx_background_task_last_run_duration_seconds How long the task's last run took.\n\
         # TYPE lqx_background_task_last_run_duration_seconds gauge\n",
    );
    for t in tasks {
        if let Some(d) = t.last_duration {
            let _ = writeln!(
                out,
                "lqx_background_task_last_run_duration_seconds{{task=\"{}\"}} {}",
                t.name,
                d.as_secs_f64()
            );
        }
    }
    out.push_str(
        "# HELP lqx_background_task_runs_total Runs of the task.\n# TYPE lqx_background_task_runs_total counter\n",
    );
    for t in tasks {
        let _ = writeln!(out, "lqx_background_task_runs_total{{task=\"{}\"}} {}", t.name, t.runs);
    }
    out.push_str(
        "# HELP lqx_background_task_errors_total Runs of the task that failed.\n# TYPE lqx_background_task_errors_total counter\n",
    );
    for t in tasks {
        let _ = writeln!(
            out,
            "lqx_background_task_errors_total{{task=\"{}\"}} {}",
            t.name, t.errors
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_background_tasks() {
        let tasks = lqx_core::background::BackgroundTasks::new();
        tasks.register("never-ran", std::time::Duration::from_secs(1));
        let t = tasks.register("drs", std::time::Duration::from_secs(300));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _ = rt.block_on(t.run(async { Err::<(), _>("store down") }));
        let out = super::render_tasks(&tasks.list());
        assert!(
            out.contains("lqx_background_task_errors_total{task=\"drs\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("lqx_background_task_runs_total{task=\"never-ran\"} 0"),
            "{out}"
        );
        assert!(
            out.contains("lqx_background_task_last_run_timestamp_seconds{task=\"drs\"} "),
            "{out}"
        );
        assert!(!out.contains("last_run_timestamp_seconds{task=\"never-ran\"}"), "{out}");
        assert!(
            out.contains("lqx_background_task_last_run_duration_seconds{task=\"drs\"} "),
            "{out}"
        );
    }

    #[test]
    fn renders_counts_and_buckets() {
        let m = super::Metrics::new(["/limiquantix.compute.v1.VMService/GetVM".to_string()]);
        let g = m.in_flight();
        m.record(
            "/limiquantix.compute.v1.VMService/GetVM",
            "ok",
            std::time::Duration::from_millis(2),
        );
        drop(g);
        {
            let _g = m.in_flight();
            assert!(m.render().contains("lqx_requests_in_flight 1"));
        }
        m.record("/evil/path", "not_found", std::time::Duration::from_millis(2));
        let t = m.render();
        assert!(
            t.contains("lqx_requests_total{method=\"/limiquantix.compute.v1.VMService/GetVM\",code=\"ok\"} 1"),
            "{t}"
        );
        assert!(t.contains("method=\"unknown\""));
        assert!(t.contains("le=\"0.0025\"} 1"));
        assert!(t.contains("lqx_requests_in_flight 0"));
    }

    /// Unique junk paths, even ones that look like real services, add no series.
    #[test]
    fn unknown_paths_share_one_label() {
        let m = super::Metrics::new(lqx_core::auth::rbac::declared_method_paths());
        for i in 0..2000 {
            let junk = format!("/limiquantix.compute.v1.VMService/X{i}{}", "a".repeat(100));
            m.record(&junk, "unimplemented", std::time::Duration::from_millis(1));
            m.record(
                &format!("/grpc.x{i}/Y"),
                "unauthenticated",
                std::time::Duration::from_millis(1),
            );
        }
        m.record(
            "/limiquantix.compute.v1.VMService/ListVMs",
            "ok",
            std::time::Duration::from_millis(1),
        );
        let t = m.render();
        assert!(t.len() < 8_000, "{} bytes", t.len());
        assert!(t.contains("method=\"/limiquantix.compute.v1.VMService/ListVMs\""));
        assert!(
            t.contains("lqx_requests_total{method=\"unknown\",code=\"unimplemented\"} 2000"),
            "{t}"
        );
    }
}

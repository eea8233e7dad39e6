//! Prometheus metrics at `/metrics`: request counts by method and code, latency histogram,
//! requests in flight. Hand-rolled (a few atomics and a map) to keep the dependency tree small.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    in_flight: AtomicI64,
}

impl Metrics {
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finish(&self, method: &str, code: &'static str, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        // Unknown paths are folded into one series so a scanner cannot grow the map.
        let method = if method.starts_with("/limiquantix.") || method.starts_with("/grpc.") {
            method
        } else {
            "other"
        };
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
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_counts_and_buckets() {
        let m = super::Metrics::default();
        m.start();
        m.finish(
            "/limiquantix.compute.v1.VMService/GetVM",
            "ok",
            std::time::Duration::from_millis(2),
        );
        m.start();
        m.finish("/evil/path", "not_found", std::time::Duration::from_millis(2));
        let t = m.render();
        assert!(
            t.contains("lqx_requests_total{method=\"/limiquantix.compute.v1.VMService/GetVM\",code=\"ok\"} 1"),
            "{t}"
        );
        assert!(t.contains("method=\"other\""));
        assert!(t.contains("le=\"0.0025\"} 1"));
        assert!(t.contains("lqx_requests_in_flight 0"));
    }
}

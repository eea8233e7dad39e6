//! Event-bus fan-out benchmark: 1,000 subscribers, 10,000 events/s, on a 2-worker tokio
//! runtime. Prints a markdown table: publish latency (one `publish` call), delivery latency
//! (publish start to the subscriber task holding the event), lagged subscribers and memory.
//!
//!     cargo bench -p lqx-core --bench events            # LQX_BENCH_SECS=5 by default

use lqx_core::events::{EventBus, EventBusConfig, SubscriptionItem};
use lqx_core::model::{EventDraft, EventType, ProjectId, ResourceType, SubscriptionFilter};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Log-linear histogram of nanoseconds (8 sub-buckets per power of two, ~12% resolution).
#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

impl Hist {
    fn new() -> Self {
        Hist {
            counts: vec![0; 64 * 8],
            n: 0,
            max: 0,
        }
    }
    fn index(ns: u64) -> usize {
        if ns < 8 {
            return ns as usize;
        }
        let b = 63 - ns.leading_zeros() as usize;
        let m = ((ns >> (b - 3)) & 7) as usize;
        (b - 2) * 8 + m
    }
    fn upper(i: usize) -> u64 {
        if i < 8 {
            return i as u64;
        }
        let b = i / 8 + 2;
        let m = (i % 8) as u64;
        ((8 | m) + 1) << (b - 3)
    }
    fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.n += 1;
        self.max = self.max.max(ns);
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.max = self.max.max(o.max);
    }
    fn quantile(&self, q: f64) -> u64 {
        let target = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
}

fn fmt_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    subscribers: usize,
    /// Subscribers (among `subscribers`) that never read.
    never_read: usize,
    /// Each subscriber watches one VM instead of everything.
    per_vm: bool,
    /// Events per second; 0 = as fast as possible.
    rate: u64,
    secs: u64,
}

struct Report {
    published: u64,
    elapsed: Duration,
    publish: Hist,
    delivery: Hist,
    delivered: u64,
    expected: u64,
    lagged: u64,
    rss_start: u64,
    rss_peak: u64,
}

fn vm_payload(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": format!("0190b7a4-1c2e-7000-8000-{i:012}"), "name": format!("web-{i}"),
        "project_id": ProjectId::DEFAULT, "desired_state": "RUNNING",
        "spec": {"cpu_cores": 4, "memory_mib": 8192, "disks": [{"size_mib": 20480}], "nics": [{"network": "default"}]},
        "status": {"state": "RUNNING", "node_id": "0190b7a4-1c2e-7000-8000-000000000001", "cpu_usage_percent": 42.5,
                   "memory_used_mib": 6144, "restart_count": 0},
        "resource_version": 7
    })
}

async fn run(s: Scenario) -> Report {
    let total = if s.rate == 0 { 200_000 } else { s.rate * s.secs };
    let bus = EventBus::new(EventBusConfig::default());
    let vms = 1_000usize;
    let drafts: Vec<EventDraft> = (0..vms)
        .map(|i| {
            EventDraft::new(
                EventType::Updated,
                ResourceType::Vm,
                format!("vm-{i}"),
                chrono::Utc::now(),
            )
            .project(ProjectId::DEFAULT)
            .payload(vm_payload(i))
        })
        .collect();
    let start = Instant::now();
    let published_at: Arc<Vec<AtomicU64>> = Arc::new((0..=total + 1).map(|_| AtomicU64::new(0)).collect());
    let rss_start = rss_kib();

    let mut idle = Vec::new();
    let mut consumers = Vec::new();
    for i in 0..s.subscribers {
        let filter = if s.per_vm {
            SubscriptionFilter::all().resource_id(format!("vm-{}", i % vms))
        } else {
            SubscriptionFilter::all()
        };
        let mut sub = bus.subscribe(filter, None).expect("subscribe");
        if i < s.never_read {
            idle.push(sub);
            continue;
        }
        let published_at = Arc::clone(&published_at);
        consumers.push(tokio::spawn(async move {
            let mut h = Hist::new();
            let mut lagged = false;
            // Wait for the next item, then take everything already queued with the same
            // clock reading: those events were all in the subscriber's hands at that moment.
            while let Some(first) = sub.recv().await {
                let now = start.elapsed().as_nanos() as u64;
                let mut item = Some(first);
                while let Some(it) = item {
                    match it {
                        SubscriptionItem::Event(e) => {
                            h.record(now.saturating_sub(published_at[e.sequence as usize].load(Ordering::Relaxed)));
                        }
                        SubscriptionItem::Lagged { .. } => lagged = true,
                    }
                    // Whatever is queued already, without waiting (nor fanning out: that is
                    // the bus's fan-out task's job).
                    item = futures::FutureExt::now_or_never(sub.recv()).flatten();
                }
            }
            (h, lagged)
        }));
    }

    let peak = Arc::new(AtomicU64::new(rss_start));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let publisher = {
        let bus = bus.clone();
        let published_at = Arc::clone(&published_at);
        tokio::spawn(async move {
            let mut lat = Hist::new();
            let per_tick = if s.rate == 0 { 1_000 } else { (s.rate / 1_000).max(1) };
            let mut ticker = tokio::time::interval(Duration::from_millis(1));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let t0 = Instant::now();
            let mut k = 0u64;
            while k < total {
                if s.rate > 0 {
                    ticker.tick().await;
                } else {
                    tokio::task::yield_now().await;
                }
                for _ in 0..per_tick.min(total - k) {
                    let draft = drafts[(k as usize) % vms].clone();
                    let seq = k + 1;
                    published_at[seq as usize].store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    let t = Instant::now();
                    let got = bus.publish(draft);
                    lat.record(t.elapsed().as_nanos() as u64);
                    debug_assert_eq!(got, seq);
                    k += 1;
                }
            }
            (lat, t0.elapsed())
        })
    };
    let (publish, elapsed) = publisher.await.expect("publisher");
    // Let consumers drain, then close every stream by dropping the bus.
    let expected_per_fast = if s.per_vm { total / vms as u64 } else { total };
    let deadline = Instant::now() + Duration::from_secs(30);
    while bus.stats().delivered < expected_per_fast * (s.subscribers - s.never_read) as u64 && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = bus.stats();
    let rss_peak = peak.load(Ordering::Relaxed).max(rss_kib());
    drop(bus);
    drop(idle);
    let mut delivery = Hist::new();
    for c in consumers {
        let (h, _lagged) = c.await.expect("consumer");
        delivery.merge(&h);
    }
    sampler.abort();
    Report {
        published: stats.published,
        elapsed,
        publish,
        delivered: delivery.n,
        delivery,
        expected: expected_per_fast * (s.subscribers - s.never_read) as u64,
        lagged: stats.lagged,
        rss_start,
        rss_peak,
    }
}

fn main() {
    let secs: u64 = std::env::var("LQX_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sc = |name, subscribers, never_read, per_vm, rate| Scenario {
        name,
        subscribers,
        never_read,
        per_vm,
        rate,
        secs,
    };
    let scenarios = [
        sc("1,000 subscribers, all events", 1_000, 0, false, 10_000),
        sc("1,000 subscribers, one VM each", 1_000, 0, true, 10_000),
        sc("900 reading + 100 never reading, all events", 1_000, 100, false, 10_000),
        sc("1,000 subscribers, one VM each, unpaced", 1_000, 0, true, 0),
        sc("1,000 subscribers, all events, 1,000 events/s", 1_000, 0, false, 1_000),
        sc("100 subscribers, all events", 100, 0, false, 10_000),
    ];
    println!(
        "config: {:?}, tokio workers: 2, available cores: {}",
        EventBusConfig::default(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| scenario | events | rate achieved | publish p50 | publish p99 | publish max | delivery p50 | delivery p99 | delivered / expected | lagged subs | RSS start → peak |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for s in scenarios {
        let r = rt.block_on(run(s));
        println!(
            "| {} | {} | {:.0}/s | {} | {} | {} | {} | {} | {} / {} | {} | {} → {} MiB |",
            s.name,
            r.published,
            r.published as f64 / r.elapsed.as_secs_f64(),
            fmt_ns(r.publish.quantile(0.50)),
            fmt_ns(r.publish.quantile(0.99)),
            fmt_ns(r.publish.max),
            fmt_ns(r.delivery.quantile(0.50)),
            fmt_ns(r.delivery.quantile(0.99)),
            r.delivered,
            r.expected,
            r.lagged,
            r.rss_start / 1024,
            r.rss_peak / 1024,
        );
    }
}

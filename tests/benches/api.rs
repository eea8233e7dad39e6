//! API benchmark over loopback, against the real `lqx-server` binary (build it in release
//! first): `cargo build --release -p lqx-server && cargo bench -p lqx-e2e --bench api`.
//!
//! 1. GetVM throughput over gRPC (authenticated), compared in the same run with a trivial
//!    tonic handler (the standard health service, `lqx-bench-trivial`, its own process),
//!    in interleaved rounds.
//! 2. ListVMs, a page of 100 out of 10,000 VMs, over Connect JSON: p50/p99 latency.
//! 3. Authenticated GetVM vs unauthenticated health on the real server.

use lqx_core::api::compute::v1 as pb;
use lqx_e2e::{Engine, Options, Server};
use serde_json::json;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;
const RUN: Duration = Duration::from_secs(3);
const ROUNDS: usize = 5;

#[tokio::main]
async fn main() {
    let engine = if std::env::var("LQX_BENCH_POSTGRES").is_ok() {
        Engine::Postgres
    } else {
        Engine::Sqlite
    };
    // Simulated hosts large enough for 10,000 small VMs.
    let cluster = "nodes:\n  - {name: big-1, cpu_cores: 4096, memory_mib: 4194304}\n  - {name: big-2, cpu_cores: 4096, memory_mib: 4194304}\n";
    let mut s = Server::start(
        engine,
        Options {
            sim: Some(cluster.into()),
            ..Default::default()
        },
    )
    .await;
    s.login_admin().await;
    println!(
        "engine: {engine:?}, concurrency {CONCURRENCY}, {}s per measurement",
        RUN.as_secs()
    );

    // Fill: 10,000 VMs (small, stopped) over gRPC (LQX_BENCH_VMS: fewer, for profiling).
    let count: usize = std::env::var("LQX_BENCH_VMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let ch = s.channel().await;
    let mut vms = pb::vm_service_client::VmServiceClient::new(ch.clone());
    let fill = Instant::now();
    let mut tasks = vec![];
    for w in 0..16 {
        let mut c = vms.clone();
        let token = s.token().map(str::to_string);
        tasks.push(tokio::spawn(async move {
            for i in (w..count).step_by(16) {
                let mut r = tonic::Request::new(pb::CreateVmRequest {
                    name: format!("vm-{i:05}"),
                    spec: Some(pb::VmSpec {
                        cpu_cores: 1,
                        memory_mib: 64,
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                if let Some(t) = &token {
                    r.metadata_mut()
                        .insert("authorization", format!("Bearer {t}").parse().unwrap());
                }
                c.create_vm(r).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "created {count} VMs in {:.1}s ({:.0}/s)",
        fill.elapsed().as_secs_f64(),
        count as f64 / fill.elapsed().as_secs_f64()
    );
    let id = vms
        .get_vm(s.grpc(pb::GetVmRequest {
            id: format!("vm-{:05}", count / 2),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .id;

    // 1. GetVM vs a trivial tonic handler, each in its own process. Interleaved rounds, so
    //    both see the same background load; the ratio is the median of the rounds.
    let (trivial_ch, _trivial) = trivial_server().await;
    let token = s.token().map(str::to_string);
    let get_vm = || {
        let mut c = vms.clone();
        let id = id.clone();
        let token = token.clone();
        async move {
            let mut r = tonic::Request::new(pb::GetVmRequest {
                id,
                ..Default::default()
            });
            if let Some(t) = &token {
                r.metadata_mut()
                    .insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            c.get_vm(r).await.is_ok()
        }
    };
    let check = |ch: &tonic::transport::Channel| {
        let mut c = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        async move {
            c.check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await
                .is_ok()
        }
    };
    let mut rounds = vec![];
    for _ in 0..ROUNDS {
        let g = measure(get_vm).await;
        let t = measure(|| check(&trivial_ch)).await;
        rounds.push((g, t));
    }
    let health = measure(|| check(&ch)).await;
    let mut ratios: Vec<f64> = rounds.iter().map(|(g, t)| g.rate / t.rate).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let (get_vm, trivial) = rounds.into_iter().find(|(g, t)| g.rate / t.rate == median).unwrap();
    println!("\n| call | req/s | p50 | p99 |\n|---|---|---|---|");
    println!(
        "| GetVM (lqx-server, authenticated) | {:.0} | {} | {} |",
        get_vm.rate,
        ms(get_vm.p50),
        ms(get_vm.p99)
    );
    println!(
        "| Health/Check (lqx-server, public) | {:.0} | {} | {} |",
        health.rate,
        ms(health.p50),
        ms(health.p99)
    );
    println!(
        "| Health/Check (trivial tonic server, own process) | {:.0} | {} | {} |",
        trivial.rate,
        ms(trivial.p50),
        ms(trivial.p99)
    );
    let all: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "\nGetVM / trivial handler: {median:.2}x (median of {ROUNDS} interleaved rounds: {})",
        all.join(", ")
    );

    // 2. ListVMs page of 100 out of 10,000 over Connect JSON, one client at a time.
    let mut lat = vec![];
    let start = Instant::now();
    let mut token_page = String::new();
    while start.elapsed() < RUN {
        let t = Instant::now();
        let (st, page) = s
            .call(
                "limiquantix.compute.v1.VMService/ListVMs",
                json!({"pageSize": 100, "pageToken": token_page}),
            )
            .await;
        lat.push(t.elapsed());
        assert_eq!(st, 200);
        token_page = page["nextPageToken"].as_str().unwrap_or("").to_string();
    }
    lat.sort();
    println!(
        "\nListVMs (100 of {count}, Connect JSON): {} calls, p50 {}, p99 {}",
        lat.len(),
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() * 99 / 100])
    );
}

struct Result {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(make: F) -> Result
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    // Warm up, then run CONCURRENCY workers for RUN.
    for _ in 0..200 {
        assert!(make().await);
    }
    let deadline = Instant::now() + RUN;
    let mut workers = vec![];
    for _ in 0..CONCURRENCY {
        let make_one = &make;
        let mut lat = Vec::new();
        let mut n = 0u64;
        let fut = async move {
            while Instant::now() < deadline {
                let t = Instant::now();
                assert!(make_one().await);
                lat.push(t.elapsed());
                n += 1;
            }
            (n, lat)
        };
        workers.push(fut);
    }
    let started = Instant::now();
    let results = futures::future::join_all(workers).await;
    let secs = started.elapsed().as_secs_f64();
    let total: u64 = results.iter().map(|r| r.0).sum();
    let mut lat: Vec<Duration> = results.into_iter().flat_map(|r| r.1).collect();
    lat.sort();
    Result {
        rate: total as f64 / secs,
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
    }
}

/// The trivial handler (`lqx-bench-trivial`: the standard health service alone) in its own
/// process; killed when the returned child is dropped.
async fn trivial_server() -> (tonic::transport::Channel, tokio::process::Child) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lqx-bench-trivial"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start lqx-bench-trivial");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("the trivial server's address");
    let url = line
        .strip_prefix("listening on ")
        .expect("listening on URL")
        .to_string();
    let ch = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    (ch, child)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

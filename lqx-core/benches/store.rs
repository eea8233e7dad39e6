//! Store throughput on SQLite and PostgreSQL: VM inserts/s and point reads/s.
//! `cargo bench -p lqx-core --bench store` (PostgreSQL too when LQX_TEST_DATABASE_URL is set;
//! `eval "$(bash .ci/start-postgres.sh)"` starts one).

use chrono::Utc;
use lqx_core::model::*;
use lqx_core::store::Store;
use std::collections::BTreeMap;
use std::time::Instant;

const N: usize = 5_000;
const WRITERS: usize = 8;

fn vm(i: usize) -> Vm {
    let now = Utc::now();
    Vm {
        id: VmId::new(),
        name: format!("bench-{i:06}"),
        project_id: ProjectId::DEFAULT,
        description: String::new(),
        labels: BTreeMap::from([("tier".to_string(), "web".to_string())]),
        spec: VmSpec {
            cpu_cores: 2,
            memory_mib: 2048,
            disks: vec![],
            nics: vec![],
            ha: HaPolicy::default(),
            placement: PlacementPolicy::default(),
        },
        desired_state: VmState::Stopped,
        status: VmStatus::default(),
        resource_version: 1,
        created_at: now,
        updated_at: now,
    }
}

async fn run(name: &str, store: Store) {
    let vms: Vec<Vm> = (0..N).map(vm).collect();
    let ids: Vec<VmId> = vms.iter().map(|v| v.id).collect();
    let t = Instant::now();
    let chunks: Vec<Vec<Vm>> = vms.chunks(N / WRITERS).map(<[Vm]>::to_vec).collect();
    let mut tasks = vec![];
    for chunk in chunks {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for v in chunk {
                s.create_vm(&v).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let inserts = N as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut tasks = vec![];
    for w in 0..WRITERS {
        let s = store.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..N * 4).step_by(WRITERS) {
                s.get_vm(ids[i % N]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let reads = (N * 4) as f64 / t.elapsed().as_secs_f64();
    println!("| {name} | {inserts:.0} | {reads:.0} |");
    store.close().await;
}

#[tokio::main]
async fn main() {
    println!(
        "{N} VM inserts and {} point reads by id, {WRITERS} concurrent tasks\n",
        N * 4
    );
    println!("| engine | inserts/s | point reads/s |\n|---|---|---|");
    let dir = tempfile::tempdir().unwrap();
    run(
        "SQLite (WAL, synchronous=FULL)",
        Store::open(dir.path().join("bench.db").to_str().unwrap())
            .await
            .unwrap(),
    )
    .await;
    if let Ok(admin) = std::env::var("LQX_TEST_DATABASE_URL") {
        let url = lqx_core::store::testing::fresh_postgres_database(&admin).await.unwrap();
        run("PostgreSQL 15 (loopback)", Store::open(&url).await.unwrap()).await;
    }
}

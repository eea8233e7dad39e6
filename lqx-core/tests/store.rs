//! The store suite: every test runs against SQLite and a real PostgreSQL
//! (`LQX_TEST_DATABASE_URL`, started by .ci/run; required when CI is set).

use chrono::Utc;
use lqx_core::ErrorKind;
use lqx_core::model::*;
use lqx_core::store::{Store, VmFilter, testing::engines};
use std::collections::BTreeMap;

fn vm(name: &str) -> Vm {
    let now = Utc::now();
    Vm {
        id: VmId::new(),
        name: name.into(),
        project_id: ProjectId::DEFAULT,
        description: String::new(),
        labels: BTreeMap::new(),
        spec: VmSpec {
            cpu_cores: 2,
            memory_mib: 1024,
            disks: vec![],
            nics: vec![],
            ha: HaPolicy::default(),
            placement: PlacementPolicy::default(),
        },
        desired_state: VmState::Stopped,
        status: VmStatus {
            state: VmState::Stopped,
            ..Default::default()
        },
        resource_version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn node(name: &str) -> Node {
    Node {
        id: NodeId::new(),
        name: name.into(),
        hostname: name.into(),
        management_address: "127.0.0.1".into(),
        labels: BTreeMap::new(),
        capacity: Resources {
            cpu_cores: 16,
            memory_mib: 65536,
        },
        allocatable: Resources {
            cpu_cores: 16,
            memory_mib: 65536,
        },
        cpu_overcommit: 4.0,
        memory_overcommit: 1.0,
        phase: NodePhase::Ready,
        schedulable: true,
        libvirt_uri: String::new(),
        last_heartbeat: None,
        usage: NodeUsage::default(),
        resource_version: 1,
        created_at: Utc::now(),
        cpu_model: String::new(),
        power: Default::default(),
    }
}

async fn each(f: impl AsyncFn(&'static str, Store)) {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        f(engine, store.clone()).await;
        store.close().await;
    }
}

#[tokio::test]
async fn vm_crud_and_unique_names() {
    each(async |engine, s| {
        let a = vm("web-1");
        s.create_vm(&a).await.unwrap();
        let got = s.get_vm(a.id).await.unwrap();
        assert_eq!(got.id, a.id, "{engine}");
        assert_eq!(got.spec, a.spec, "{engine}");
        assert_eq!(s.resolve_vm("web-1", ProjectId::DEFAULT).await.unwrap().id, a.id);
        assert_eq!(
            s.resolve_vm(&a.id.to_string(), ProjectId::DEFAULT).await.unwrap().id,
            a.id
        );
        let dup = s.create_vm(&vm("web-1")).await.unwrap_err();
        assert_eq!(dup.kind, ErrorKind::AlreadyExists, "{engine}");
        assert_eq!(s.get_vm(VmId::new()).await.unwrap_err().kind, ErrorKind::NotFound);
        s.delete_vm(a.id, Some(a.resource_version)).await.unwrap();
        assert_eq!(s.get_vm(a.id).await.unwrap_err().kind, ErrorKind::NotFound, "{engine}");
        assert_eq!(s.delete_vm(a.id, None).await.unwrap_err().kind, ErrorKind::NotFound);
    })
    .await;
}

#[tokio::test]
async fn concurrent_updates_one_wins() {
    each(async |engine, s| {
        let a = vm("db-1");
        s.create_vm(&a).await.unwrap();
        let mut x = a.clone();
        x.description = "x".into();
        let mut y = a.clone();
        y.description = "y".into();
        let (rx, ry) = tokio::join!(s.update_vm(&x), s.update_vm(&y));
        let oks = [rx.is_ok(), ry.is_ok()].iter().filter(|b| **b).count();
        assert_eq!(oks, 1, "{engine}: exactly one update must win");
        let loser = rx.err().or(ry.err()).unwrap();
        assert_eq!(loser.kind, ErrorKind::Aborted, "{engine}");
        let stored = s.get_vm(a.id).await.unwrap();
        assert_eq!(stored.resource_version, 2);
        assert!(stored.description == "x" || stored.description == "y");
        // A stale write after the fact is refused too.
        assert_eq!(s.update_vm(&a).await.unwrap_err().kind, ErrorKind::Aborted);
        assert_eq!(s.delete_vm(a.id, Some(1)).await.unwrap_err().kind, ErrorKind::Aborted);
    })
    .await;
}

#[tokio::test]
async fn list_filters_and_pages() {
    each(async |engine, s| {
        let n = node("node-1");
        s.create_node(&n).await.unwrap();
        for i in 0..25 {
            let mut v = vm(&format!("vm-{i:02}"));
            if i % 2 == 0 {
                v.status.node_id = Some(n.id);
                v.status.state = VmState::Running;
                v.labels.insert("tier".into(), "web".into());
            }
            s.create_vm(&v).await.unwrap();
        }
        let mut seen = vec![];
        let mut token = String::new();
        loop {
            let page = s.list_vms(&VmFilter::default(), 10, &token).await.unwrap();
            assert_eq!(page.total_count, 25);
            assert!(page.vms.len() <= 10);
            seen.extend(page.vms.into_iter().map(|v| v.name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let expected: Vec<_> = (0..25).map(|i| format!("vm-{i:02}")).collect();
        assert_eq!(seen, expected, "{engine}: pages must cover every VM once, in order");

        let f = VmFilter {
            node_id: Some(n.id),
            state: Some(VmState::Running),
            ..Default::default()
        };
        assert_eq!(s.list_vms(&f, 100, "").await.unwrap().vms.len(), 13);
        let mut labels = BTreeMap::new();
        labels.insert("tier".to_string(), "web".to_string());
        let f = VmFilter {
            labels,
            ..Default::default()
        };
        assert_eq!(s.list_vms(&f, 100, "").await.unwrap().total_count, 13);
        let f = VmFilter {
            name_prefix: Some("vm-1".into()),
            ..Default::default()
        };
        assert_eq!(s.list_vms(&f, 100, "").await.unwrap().total_count, 10);
        let f = VmFilter {
            name_prefix: Some("%".into()),
            ..Default::default()
        };
        assert_eq!(s.list_vms(&f, 100, "").await.unwrap().total_count, 0);
        assert_eq!(
            s.list_vms(&VmFilter::default(), 10, "zz").await.unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
    })
    .await;
}

#[tokio::test]
async fn nodes_and_kv() {
    each(async |engine, s| {
        let n = node("node-a");
        s.create_node(&n).await.unwrap();
        assert_eq!(
            s.create_node(&node("node-a")).await.unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
        let mut m = s.resolve_node("node-a").await.unwrap();
        m.phase = NodePhase::Maintenance;
        let m2 = s.update_node(&m).await.unwrap();
        assert_eq!(m2.resource_version, 2);
        assert_eq!(
            s.update_node(&m).await.unwrap_err().kind,
            ErrorKind::Aborted,
            "{engine}"
        );
        assert_eq!(s.get_node(n.id).await.unwrap().phase, NodePhase::Maintenance);
        assert_eq!(s.all_nodes().await.unwrap().len(), 1);

        assert!(s.kv_cas("k", 0, "a").await.unwrap());
        assert!(!s.kv_cas("k", 0, "b").await.unwrap());
        assert!(s.kv_cas("k", 1, "c").await.unwrap());
        assert_eq!(s.kv_get("k").await.unwrap(), Some(("c".into(), 2)));
        s.idempotent_put("r1", "{}").await.unwrap();
        s.idempotent_put("r1", "other").await.unwrap();
        assert_eq!(s.idempotent_get("r1").await.unwrap().as_deref(), Some("{}"));
        assert!(s.get_project("default").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn allocation_per_node_and_anti_affinity_members() {
    each(async |engine, s| {
        let (n1, n2) = (node("alloc-1"), node("alloc-2"));
        s.create_node(&n1).await.unwrap();
        s.create_node(&n2).await.unwrap();
        let on = |name: &str, n: &Node, cpu: u32, mem: u64, group: Option<&str>| {
            let mut v = vm(name);
            v.spec.cpu_cores = cpu;
            v.spec.memory_mib = mem;
            v.spec.placement.anti_affinity_group = group.map(str::to_string);
            v.status.node_id = Some(n.id);
            v
        };
        let a = on("a", &n1, 2, 1024, Some("db"));
        let b = on("b", &n1, 4, 2048, None);
        let c = on("c", &n2, 1, 512, Some("db"));
        let unplaced = vm("d");
        for v in [&a, &b, &c, &unplaced] {
            s.create_vm(v).await.unwrap();
        }
        let totals = |skip: Option<VmId>| {
            let s = s.clone();
            async move {
                let mut t: Vec<(NodeId, u64, u64)> = s
                    .allocation_by_node(skip)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| (a.node, a.cpu_cores, a.memory_mib))
                    .collect();
                t.sort();
                t
            }
        };
        let mut want = vec![(n1.id, 6, 3072), (n2.id, 1, 512)];
        want.sort();
        assert_eq!(totals(None).await, want, "{engine}");
        let mut want = vec![(n1.id, 4, 2048), (n2.id, 1, 512)];
        want.sort();
        assert_eq!(totals(Some(a.id)).await, want, "{engine}: skip leaves a VM out");
        let mut g = s.nodes_with_group("db", None).await.unwrap();
        g.sort();
        let mut want = vec![n1.id, n2.id];
        want.sort();
        assert_eq!(g, want, "{engine}");
        assert_eq!(s.nodes_with_group("db", Some(c.id)).await.unwrap(), vec![n1.id]);
        assert!(s.nodes_with_group("web", None).await.unwrap().is_empty());

        // A resize and a group change are reflected; so is a delete.
        let mut bigger = s.get_vm(b.id).await.unwrap();
        bigger.spec.cpu_cores = 8;
        bigger.spec.placement.anti_affinity_group = Some("web".into());
        s.update_vm(&bigger).await.unwrap();
        s.delete_vm(c.id, None).await.unwrap();
        assert_eq!(totals(None).await, vec![(n1.id, 10, 3072)], "{engine}");
        assert_eq!(s.nodes_with_group("web", None).await.unwrap(), vec![n1.id]);

        // The migration's backfill derives the columns from the stored records.
        sqlx::query("UPDATE vms SET cpu_cores = 0, memory_mib = 0, anti_affinity_group = NULL")
            .execute(s.pool())
            .await
            .unwrap();
        let migration = match s.backend() {
            lqx_core::store::Backend::Sqlite => include_str!("../migrations/sqlite/0006_vm_allocation.sql"),
            lqx_core::store::Backend::Postgres => include_str!("../migrations/postgres/0006_vm_allocation.sql"),
        };
        let backfill = migration
            .split(';')
            .find(|stmt| stmt.trim_start().lines().any(|l| l.starts_with("UPDATE vms SET")))
            .unwrap();
        sqlx::query(backfill).execute(s.pool()).await.unwrap();
        assert_eq!(totals(None).await, vec![(n1.id, 10, 3072)], "{engine}: backfill");
        let mut g = s.nodes_with_group("db", None).await.unwrap();
        g.sort();
        assert_eq!(g, vec![n1.id], "{engine}: backfill");
    })
    .await;
}

#[tokio::test]
async fn node_power_state_is_kept_and_listed() {
    each(async |engine, s| {
        let (a, b) = (node("pw-1"), node("pw-2"));
        s.create_node(&a).await.unwrap();
        s.create_node(&b).await.unwrap();
        assert!(s.nodes_not_powered_on().await.unwrap().is_empty(), "{engine}");
        let mut m = s.resolve_node("pw-2").await.unwrap();
        m.power = lqx_core::power::PowerState::Standby;
        s.update_node(&m).await.unwrap();
        assert_eq!(
            s.nodes_not_powered_on().await.unwrap(),
            vec![(b.id, lqx_core::power::PowerState::Standby)],
            "{engine}"
        );
        assert_eq!(
            s.get_node(b.id).await.unwrap().power,
            lqx_core::power::PowerState::Standby,
            "{engine}"
        );
    })
    .await;
}

//! Projects in the store, on SQLite and a real PostgreSQL: quotas hold under concurrent
//! creates and resizes, ids of another project are not found, non-empty projects are not
//! deleted, and migration 0009 puts existing data in the default project.

use chrono::Utc;
use lqx_core::ErrorKind;
use lqx_core::model::*;
use lqx_core::store::{Store, testing};
use std::collections::BTreeMap;

fn vm(name: &str, project: ProjectId, cpu: u32) -> Vm {
    let now = Utc::now();
    Vm {
        id: VmId::new(),
        name: name.into(),
        project_id: project,
        description: String::new(),
        labels: BTreeMap::new(),
        spec: VmSpec {
            cpu_cores: cpu,
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

fn project(name: &str, quota: Quota) -> Project {
    Project {
        id: ProjectId::new(),
        name: name.into(),
        description: String::new(),
        created_at: Utc::now(),
        quota,
    }
}

async fn each(f: impl AsyncFn(&'static str, Store)) {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in testing::engines(dir.path()).await {
        f(engine, store.clone()).await;
        store.close().await;
    }
}

/// 16 concurrent creates of 2-vCPU VMs against a quota of 4 VMs and 9 vCPUs: exactly 4
/// land (the VM count binds first), the others are refused with resource_exhausted, and
/// the usage never passes the quota.
#[tokio::test]
async fn concurrent_creates_at_the_quota_edge_never_exceed_it() {
    each(async |engine, s| {
        let p = project(
            "race",
            Quota {
                vcpus: Some(9),
                memory_mib: None,
                vms: Some(4),
            },
        );
        s.create_project(&p).await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let s = s.clone();
                let v = vm(&format!("vm-{i}"), p.id, 2);
                tokio::spawn(async move { s.create_vm(&v).await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{engine}: {e}");
                    assert!(
                        e.message.contains("project race quota exceeded"),
                        "{engine}: {}",
                        e.message
                    );
                }
            }
        }
        assert_eq!(ok, 4, "{engine}");
        let u = s.project_usage(p.id).await.unwrap();
        assert_eq!((u.vms, u.vcpus), (4, 8), "{engine}");

        // Resizes race too: two VMs grow at once, only one fits under the 9 vCPUs.
        let q = project(
            "resize",
            Quota {
                vcpus: Some(9),
                memory_mib: None,
                vms: None,
            },
        );
        s.create_project(&q).await.unwrap();
        let (a, b) = (vm("a", q.id, 2), vm("b", q.id, 2));
        s.create_vm(&a).await.unwrap();
        s.create_vm(&b).await.unwrap();
        let grow = |mut v: Vm| {
            let s = s.clone();
            tokio::spawn(async move {
                v.spec.cpu_cores = 6;
                s.resize_vm(&v, (2, 1024)).await
            })
        };
        let (ra, rb) = (grow(a.clone()), grow(b.clone()));
        let results = [ra.await.unwrap(), rb.await.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{engine}: {results:?}");
        let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(refused.kind, ErrorKind::ResourceExhausted, "{engine}");
        assert_eq!(s.project_usage(q.id).await.unwrap().vcpus, 8, "{engine}");
        // Shrinking is never refused, even over a lowered quota.
        let mut lowered = q.clone();
        lowered.quota.vcpus = Some(1);
        s.update_project(&lowered).await.unwrap();
        let mut big = s
            .list_vms(
                &lqx_core::store::VmFilter {
                    project_id: Some(q.id),
                    ..Default::default()
                },
                10,
                "",
            )
            .await
            .unwrap()
            .vms
            .into_iter()
            .find(|v| v.spec.cpu_cores == 6)
            .unwrap();
        big.spec.cpu_cores = 4;
        s.resize_vm(&big, (6, 1024)).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn other_projects_ids_are_not_found_and_names_are_per_project() {
    each(async |engine, s| {
        let a = project("team-a", Quota::default());
        let b = project("team-b", Quota::default());
        s.create_project(&a).await.unwrap();
        s.create_project(&b).await.unwrap();
        let va = vm("web", a.id, 1);
        let vb = vm("web", b.id, 1);
        s.create_vm(&va).await.unwrap();
        s.create_vm(&vb).await.unwrap();
        assert_eq!(s.resolve_vm("web", a.id).await.unwrap().id, va.id, "{engine}");
        assert_eq!(s.resolve_vm("web", b.id).await.unwrap().id, vb.id, "{engine}");
        let e = s.resolve_vm(&vb.id.to_string(), a.id).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{engine}");
        assert!(!e.message.contains("team-b"), "{}", e.message);
        assert_eq!(
            s.create_vm(&vm("web", a.id, 1)).await.unwrap_err().kind,
            ErrorKind::AlreadyExists,
            "{engine}"
        );
        // A project with VMs is not deleted, and says why.
        let e = s.delete_project(a.id).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{engine}");
        assert!(e.message.contains("still holds 1 VM"), "{}", e.message);
        s.delete_vm(va.id, None).await.unwrap();
        s.delete_project(a.id).await.unwrap();
        assert!(s.get_project("team-a").await.unwrap().is_none(), "{engine}");
        // A VM cannot be created in a project that is gone.
        let e = s.create_vm(&vm("late", a.id, 1)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{engine}");
    })
    .await;
}

/// A database written before projects (schema up to 0006) opened by this version: users
/// keep their global role and get it in the default project; VMs, alerts, audit entries and
/// API keys land in the default project.
#[tokio::test]
async fn migration_puts_existing_data_in_the_default_project() {
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
        dir.path().join("old.db").display().to_string(),
    )];
    if let Some(admin) = testing::postgres_admin_url() {
        let url = testing::fresh_postgres_database(&admin).await.unwrap();
        targets.push(("postgres", url.clone(), url));
    }
    for (engine, url, open_as) in targets {
        // The old schema, from this repository's own migration files up to 0006.
        let old = tempfile::tempdir().unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(engine);
        for f in std::fs::read_dir(&src).unwrap() {
            let f = f.unwrap().path();
            let n = f.file_name().unwrap().to_string_lossy().to_string();
            if n.as_str() < "0007" {
                std::fs::copy(&f, old.path().join(&n)).unwrap();
            }
        }
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let default = ProjectId::DEFAULT.to_string();
        sqlx::query("INSERT INTO projects (id, name, data, created_at) VALUES ($1, 'default', $2, 0)")
            .bind(&default)
            .bind(format!(
                r#"{{"id":"{default}","name":"default","description":"","created_at":"1970-01-01T00:00:00Z"}}"#
            ))
            .execute(&pool)
            .await
            .unwrap();
        let now = Utc::now();
        let user = User {
            id: UserId::new(),
            username: "ops".into(),
            email: String::new(),
            role: Role::Operator,
            disabled: false,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            token_version: 1,
            created_at: now,
            updated_at: now,
            password_changed_at: now,
            last_login_at: None,
        };
        sqlx::query("INSERT INTO users (id, username, role, disabled, version, data, created_at) VALUES ($1, 'ops', 'operator', 0, 1, $2, 0)")
            .bind(user.id.to_string())
            .bind(serde_json::to_string(&user).unwrap())
            .execute(&pool)
            .await
            .unwrap();
        // Records as the old version wrote them: no project in their JSON.
        let strip = |mut v: serde_json::Value| {
            v.as_object_mut().unwrap().remove("project_id");
            v.to_string()
        };
        let alert_id = AlertId::new();
        let alert = Alert {
            id: alert_id,
            severity: AlertSeverity::Warning,
            title: "t".into(),
            message: "m".into(),
            source_type: AlertSourceType::Host,
            source_id: "n1".into(),
            source_name: "n1".into(),
            condition: "c".into(),
            count: 1,
            acknowledged: false,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved: false,
            resolved_at: None,
            created_at: now,
            updated_at: now,
            project_id: ProjectId::new(),
        };
        sqlx::query("INSERT INTO alerts (id, severity, source_type, source_id, condition, acknowledged, resolved, created_at, updated_at, version, data) VALUES ($1, 'WARNING', 'HOST', 'n1', 'c', 0, 0, 0, 0, 1, $2)")
            .bind(alert_id.to_string())
            .bind(strip(serde_json::to_value(&alert).unwrap()))
            .execute(&pool)
            .await
            .unwrap();
        let audit = AuditEntry::by_system(
            now,
            "t",
            "old.Action",
            ("vm", "x".into()),
            AuditResult::Ok,
            String::new(),
        );
        sqlx::query("INSERT INTO audit_log (id, time, actor, actor_id, action, resource_id, result, data) VALUES ($1, $2, 'system:t', 't', 'old.Action', 'x', 'ok', $3)")
            .bind(audit.id.to_string())
            .bind(now.timestamp_millis())
            .bind(strip(serde_json::to_value(&audit).unwrap()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        let s = Store::open(&open_as).await.unwrap();
        assert_eq!(
            s.project_roles(user.id).await.unwrap(),
            vec![(ProjectId::DEFAULT, Role::Operator)],
            "{engine}"
        );
        assert_eq!(
            s.get_user(user.id).await.unwrap().unwrap().role,
            Role::Operator,
            "{engine}"
        );
        let alerts = s
            .all_alerts(&AlertFilter {
                projects: Some(vec![ProjectId::DEFAULT]),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(alerts.len(), 1, "{engine}");
        assert_eq!(alerts[0].project_id, ProjectId::DEFAULT, "{engine}");
        let audit_in_default = s
            .list_audit(
                &AuditFilter {
                    projects: Some(vec![ProjectId::DEFAULT]),
                    ..Default::default()
                },
                10,
                "",
            )
            .await
            .unwrap();
        assert_eq!(audit_in_default.entries.len(), 1, "{engine}");
        let other = s
            .list_audit(
                &AuditFilter {
                    projects: Some(vec![ProjectId::new()]),
                    ..Default::default()
                },
                10,
                "",
            )
            .await
            .unwrap();
        assert!(other.entries.is_empty(), "{engine}");
        s.close().await;
    }
}

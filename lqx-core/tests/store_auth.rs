//! Users, sessions, API keys and the audit log in the store, on SQLite and a real
//! PostgreSQL (`LQX_TEST_DATABASE_URL`; required when CI is set). Also the AuthService
//! flows whose correctness rests on the store: concurrent refresh and the shared key.

use chrono::{DateTime, Duration, Utc};
use lqx_core::ErrorKind;
use lqx_core::auth::audit::AuditNote;
use lqx_core::auth::service::{BootstrapPassword, Credential, shared_signing_key};
use lqx_core::auth::{AuthService, AuthSettings, Secret, SigningKey};
use lqx_core::model::*;
use lqx_core::store::testing::engines;

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + s, 0).unwrap()
}

fn user(name: &str, role: Role) -> User {
    User {
        id: UserId::new(),
        username: name.into(),
        email: format!("{name}@example.com"),
        role,
        disabled: false,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        token_version: 1,
        created_at: t(0),
        updated_at: t(0),
        password_changed_at: t(0),
        last_login_at: None,
    }
}

fn session(u: &User) -> AuthSession {
    AuthSession {
        id: SessionId::new(),
        user_id: u.id,
        current_jti: uuid::Uuid::new_v4(),
        generation: 0,
        created_at: t(0),
        refreshed_at: t(0),
        expires_at: t(3600),
        revoked_at: None,
        revoke_reason: None,
        client_address: "10.0.0.1".into(),
    }
}

#[tokio::test]
async fn users_crud_unique_names_and_optimistic_writes() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let alice = user("alice", Role::Operator);
        store.create_user(&alice).await.unwrap();
        let dup = user("alice", Role::Viewer);
        let e = store.create_user(&dup).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists, "{engine}");

        assert_eq!(
            store.get_user(alice.id).await.unwrap().as_ref(),
            Some(&alice),
            "{engine}"
        );
        assert_eq!(store.get_user_by_name("alice").await.unwrap().unwrap().id, alice.id);
        assert_eq!(store.resolve_user(&alice.id.to_string()).await.unwrap().id, alice.id);
        assert_eq!(store.resolve_user("ALICE").await.unwrap().id, alice.id);
        assert_eq!(store.resolve_user("bob").await.unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(store.count_users().await.unwrap(), 1);

        let (before, after) = store
            .modify_user(alice.id, |u| {
                u.role = Role::Admin;
                u.invalidate_tokens();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!((before.role, after.role), (Role::Operator, Role::Admin));
        assert_eq!(after.token_version, 2);
        assert_eq!(store.count_enabled_with_role(Role::Admin).await.unwrap(), 1, "{engine}");
        // A change that refuses leaves the record alone.
        let e = store
            .modify_user(alice.id, |_| Err(lqx_core::Error::precondition("no")))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::FailedPrecondition);
        assert_eq!(store.get_user(alice.id).await.unwrap().unwrap(), after);

        // Concurrent modifications all land (each retries its lost races).
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.modify_user(alice.id, |u| {
                    u.invalidate_tokens();
                    Ok(())
                })
                .await
            }));
        }
        let mut landed = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                landed += 1;
            }
        }
        let v = store.get_user(alice.id).await.unwrap().unwrap().token_version;
        assert_eq!(v, 2 + landed, "{engine}: every landed write counted once");
        assert!(landed >= 1, "{engine}");

        // Pages by username.
        for n in ["bob", "carol", "dave"] {
            store.create_user(&user(n, Role::Viewer)).await.unwrap();
        }
        let p1 = store.list_users(2, "").await.unwrap();
        let names: Vec<_> = p1.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["alice", "bob"], "{engine}");
        let p2 = store.list_users(2, &p1.next_page_token).await.unwrap();
        let names: Vec<_> = p2.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["carol", "dave"]);
        assert!(p2.next_page_token.is_empty());

        // Deleting takes the user's sessions and keys along.
        let s = session(&alice);
        store.insert_session(&s).await.unwrap();
        assert!(store.delete_user(alice.id).await.unwrap());
        assert!(!store.delete_user(alice.id).await.unwrap());
        assert!(store.get_session(s.id).await.unwrap().is_none(), "{engine}");
        assert!(store.get_user(alice.id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn session_rotation_is_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let u = user("alice", Role::Viewer);
        store.create_user(&u).await.unwrap();
        let s = session(&u);
        store.insert_session(&s).await.unwrap();
        assert_eq!(store.get_session(s.id).await.unwrap().as_ref(), Some(&s), "{engine}");
        let (got_s, got_u) = store.session_and_user(s.id, u.id).await.unwrap();
        assert_eq!((got_s.as_ref(), got_u.as_ref()), (Some(&s), Some(&u)));
        // Another user's id does not find this session.
        let (none, _) = store.session_and_user(s.id, UserId::new()).await.unwrap();
        assert!(none.is_none());
        let (none, u2) = store.session_and_user(SessionId::new(), u.id).await.unwrap();
        assert!(none.is_none() && u2.is_some());

        let next = AuthSession {
            current_jti: uuid::Uuid::new_v4(),
            generation: 1,
            refreshed_at: t(10),
            ..s.clone()
        };
        assert!(store.rotate_session(s.current_jti, 0, &next).await.unwrap());
        // The same expectation again loses: exactly one rotation per token.
        let other = AuthSession {
            current_jti: uuid::Uuid::new_v4(),
            ..next.clone()
        };
        assert!(
            !store.rotate_session(s.current_jti, 0, &other).await.unwrap(),
            "{engine}"
        );
        assert_eq!(store.get_session(s.id).await.unwrap().unwrap(), next);

        assert!(
            store
                .revoke_session(s.id, RevokeReason::RefreshReuse, t(20))
                .await
                .unwrap()
        );
        // Revoking again keeps the first reason and time.
        assert!(!store.revoke_session(s.id, RevokeReason::Logout, t(30)).await.unwrap());
        let got = store.get_session(s.id).await.unwrap().unwrap();
        assert_eq!(got.revoked_at, Some(t(20)));
        assert_eq!(got.revoke_reason, Some(RevokeReason::RefreshReuse));
        // No rotation of a revoked session.
        let after = AuthSession {
            current_jti: uuid::Uuid::new_v4(),
            generation: 2,
            ..next.clone()
        };
        assert!(!store.rotate_session(next.current_jti, 1, &after).await.unwrap());

        // Revoke-all touches live sessions only.
        let a = session(&u);
        let b = session(&u);
        store.insert_session(&a).await.unwrap();
        store.insert_session(&b).await.unwrap();
        let n = store
            .revoke_user_sessions(u.id, RevokeReason::PasswordChanged, t(40))
            .await
            .unwrap();
        assert_eq!(n, 2, "{engine}");
        assert_eq!(
            store.get_session(a.id).await.unwrap().unwrap().revoke_reason,
            Some(RevokeReason::PasswordChanged)
        );
        assert_eq!(store.prune_sessions(t(100_000)).await.unwrap(), 3);
    }
}

#[tokio::test]
async fn api_keys_by_prefix_revocation_and_last_use() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let owner = user("ci-owner", Role::Operator);
        store.create_user(&owner).await.unwrap();
        let (key, secret) =
            lqx_core::auth::apikey::new_api_key(&owner, "ci", Role::Viewer, ProjectId::DEFAULT, 0, t(0)).unwrap();
        store.create_api_key(&key).await.unwrap();
        let again = ApiKey {
            id: ApiKeyId::new(),
            ..key.clone()
        };
        assert_eq!(
            store.create_api_key(&again).await.unwrap_err().kind,
            ErrorKind::AlreadyExists
        );

        let found = store.get_api_key_by_prefix(&key.prefix).await.unwrap().unwrap();
        assert_eq!(found, key, "{engine}");
        lqx_core::auth::apikey::check_key(&found, secret.expose(), t(1)).unwrap();
        // Nothing stored holds the secret.
        let raw: Vec<(String,)> = sqlx::query_as("SELECT data FROM api_keys")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(!raw[0].0.contains(secret.expose()));

        let minute = Duration::seconds(60);
        assert!(store.touch_api_key(key.id, t(10), minute).await.unwrap());
        assert!(!store.touch_api_key(key.id, t(30), minute).await.unwrap(), "too soon");
        assert!(store.touch_api_key(key.id, t(80), minute).await.unwrap());
        assert_eq!(
            store.get_api_key(key.id).await.unwrap().unwrap().last_used_at,
            Some(t(80))
        );

        assert!(store.revoke_api_key(key.id, t(90)).await.unwrap());
        assert!(!store.revoke_api_key(key.id, t(95)).await.unwrap());
        let k = store.get_api_key(key.id).await.unwrap().unwrap();
        assert_eq!(k.revoked_at, Some(t(90)), "{engine}");
        assert!(lqx_core::auth::apikey::check_key(&k, secret.expose(), t(91)).is_err());

        let other = user("someone", Role::Admin);
        store.create_user(&other).await.unwrap();
        let (k2, _) =
            lqx_core::auth::apikey::new_api_key(&other, "ops", Role::Admin, ProjectId::DEFAULT, 0, t(5)).unwrap();
        store.create_api_key(&k2).await.unwrap();
        assert_eq!(store.list_api_keys(Some(owner.id)).await.unwrap().len(), 1);
        let all = store.list_api_keys(None).await.unwrap();
        assert_eq!(
            all.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            ["ops", "ci"],
            "newest first"
        );
    }
}

fn entry(i: i64, actor: Actor, action: &str, result: AuditResult) -> AuditEntry {
    AuditEntry {
        id: AuditId::new(),
        time: t(i),
        actor,
        action: action.into(),
        resource_type: "vm".into(),
        resource_id: format!("vm-{}", i % 3),
        result,
        detail: String::new(),
        client_address: "127.0.0.1".into(),
        request_id: format!("r{i}"),
        project_id: None,
    }
}

#[tokio::test]
async fn audit_filters_and_pages_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let alice = Actor::User {
            id: UserId::new(),
            username: "alice".into(),
        };
        let key = Actor::ApiKey {
            id: ApiKeyId::new(),
            name: "ci".into(),
            owner_id: UserId::new(),
        };
        let mut all = Vec::new();
        for i in 0..10 {
            let (actor, action, result) = match i % 2 {
                0 => (alice.clone(), "compute.VMService/CreateVM", AuditResult::Ok),
                _ => (key.clone(), "compute.VMService/DeleteVM", AuditResult::Denied),
            };
            let e = entry(i, actor, action, result);
            store.insert_audit(&e).await.unwrap();
            all.push(e);
        }
        // Two at the same millisecond still page without loss or repetition.
        let same = entry(9, alice.clone(), "auth.AuthService/Login", AuditResult::Error);
        store.insert_audit(&same).await.unwrap();
        all.push(same);

        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let p = store.list_audit(&AuditFilter::default(), 4, &token).await.unwrap();
            seen.extend(p.entries);
            if p.next_page_token.is_empty() {
                break;
            }
            token = p.next_page_token;
        }
        assert_eq!(seen.len(), all.len(), "{engine}");
        assert!(
            seen.windows(2).all(|w| (w[0].time, w[0].id) > (w[1].time, w[1].id)),
            "{engine}"
        );
        let mut expected = all.clone();
        expected.sort_by_key(|e| std::cmp::Reverse((e.time, e.id)));
        assert_eq!(seen, expected, "entries round-trip whole");

        let filters = [
            AuditFilter {
                user: Some("alice".into()),
                ..Default::default()
            },
            AuditFilter {
                user: Some(key.id_string()),
                ..Default::default()
            },
            AuditFilter {
                user: Some("apikey:ci".into()),
                ..Default::default()
            },
            AuditFilter {
                action: Some("compute.VMService/DeleteVM".into()),
                ..Default::default()
            },
            AuditFilter {
                resource_id: Some("vm-1".into()),
                ..Default::default()
            },
            AuditFilter {
                since: Some(t(7)),
                ..Default::default()
            },
            AuditFilter {
                result: Some(AuditResult::Denied),
                ..Default::default()
            },
            AuditFilter {
                user: Some("alice".into()),
                result: Some(AuditResult::Ok),
                since: Some(t(4)),
                ..Default::default()
            },
        ];
        for f in filters {
            let got = store.list_audit(&f, 100, "").await.unwrap().entries;
            let want: Vec<_> = expected.iter().filter(|e| f.matches(e)).cloned().collect();
            assert!(!want.is_empty(), "{f:?} matches something");
            assert_eq!(got, want, "{engine}: {f:?}");
        }
        let e = store.list_audit(&AuditFilter::default(), 10, "zz").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
    }
}

/// Concurrent refreshes with one token: exactly one wins; the others see reuse, and the
/// family (with the winner's new tokens) is revoked.
#[tokio::test]
async fn concurrent_refreshes_have_one_winner_then_the_family_dies() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let svc = std::sync::Arc::new(AuthService::new(
            store,
            &SigningKey::generate(),
            AuthSettings::default(),
        ));
        svc.bootstrap_admin(BootstrapPassword::Given(Secret::new("bootstrap-pass-123")), dir.path())
            .await
            .unwrap();
        let note = AuditNote::default();
        let l = svc
            .login("admin", Secret::new("bootstrap-pass-123"), None, &note)
            .await
            .unwrap();
        let rt = l.pair.refresh_token.expose().to_string();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (svc, rt) = (svc.clone(), rt.clone());
            tasks.push(tokio::spawn(
                async move { svc.refresh(&rt, &AuditNote::default()).await },
            ));
        }
        let mut winners = Vec::new();
        let mut losers = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(out) => winners.push(out),
                Err(e) => {
                    assert_eq!(e.kind, ErrorKind::Unauthenticated, "{engine}: {e}");
                    losers += 1;
                }
            }
        }
        assert_eq!(winners.len(), 1, "{engine}: exactly one refresh wins");
        assert_eq!(losers, 7);
        let w = &winners[0];
        assert!(
            svc.refresh(w.pair.refresh_token.expose(), &note).await.is_err(),
            "{engine}"
        );
        let bearer = format!("Bearer {}", w.pair.access_token.expose());
        assert!(svc.authenticate(Some(&bearer)).await.is_err());
        let s = svc.store().get_session(l.pair.refresh.sid).await.unwrap().unwrap();
        assert_eq!(s.revoke_reason, Some(RevokeReason::RefreshReuse), "{engine}");
    }
}

#[tokio::test]
async fn replicas_share_one_signing_key_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (a, b) = tokio::join!(shared_signing_key(&store), shared_signing_key(&store));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b, "{engine}");
        assert_eq!(shared_signing_key(&store).await.unwrap(), a);
        // A token issued by one replica verifies on another.
        let one = AuthService::new(store.clone(), &a, AuthSettings::default());
        let two = AuthService::new(store.clone(), &b, AuthSettings::default());
        one.bootstrap_admin(BootstrapPassword::Given(Secret::new("bootstrap-pass-123")), dir.path())
            .await
            .unwrap();
        let l = one
            .login("admin", Secret::new("bootstrap-pass-123"), None, &AuditNote::default())
            .await
            .unwrap();
        let got = two
            .authenticate(Some(&format!("Bearer {}", l.pair.access_token.expose())))
            .await
            .unwrap();
        assert!(matches!(got, Credential::User(p) if p.username == "admin"), "{engine}");
    }
}

#[tokio::test]
async fn a_revocation_reaches_other_replicas_within_the_recheck_interval() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let key = shared_signing_key(&store).await.unwrap();
        let settings = |recheck_ms: u64| {
            let mut s = AuthSettings::default();
            s.session.recheck = std::time::Duration::from_millis(recheck_ms);
            s
        };
        let one = AuthService::new(store.clone(), &key, settings(400));
        let two = AuthService::new(store.clone(), &key, settings(400));
        let strict = AuthService::new(store.clone(), &key, settings(0));
        one.bootstrap_admin(BootstrapPassword::Given(Secret::new("bootstrap-pass-123")), dir.path())
            .await
            .unwrap();
        let l = one
            .login("admin", Secret::new("bootstrap-pass-123"), None, &AuditNote::default())
            .await
            .unwrap();
        let bearer = format!("Bearer {}", l.pair.access_token.expose());
        let Credential::User(p) = one.authenticate(Some(&bearer)).await.unwrap() else {
            panic!("{engine}: not a user");
        };
        assert!(two.authenticate(Some(&bearer)).await.is_ok(), "{engine}");
        assert!(strict.authenticate(Some(&bearer)).await.is_ok(), "{engine}");

        let revoked_at = std::time::Instant::now();
        assert_eq!(one.logout(&p, "", false).await.unwrap(), 1, "{engine}");
        // The replica that revoked refuses at once, as does one that does not reuse checks.
        assert!(one.authenticate(Some(&bearer)).await.is_err(), "{engine}");
        assert!(strict.authenticate(Some(&bearer)).await.is_err(), "{engine}");
        // Another replica refuses once its recent check is older than the interval.
        loop {
            match two.authenticate(Some(&bearer)).await {
                Err(e) => {
                    assert_eq!(e.kind, ErrorKind::Unauthenticated, "{engine}");
                    break;
                }
                Ok(_) => assert!(
                    revoked_at.elapsed() < std::time::Duration::from_millis(400),
                    "{engine}: a revoked token was still accepted after the recheck interval"
                ),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Audit retention on both engines: by age, then by count (ties on the same millisecond
/// broken by id, as pages are), never more than asked.
#[tokio::test]
async fn audit_prune_by_age_and_count() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let anon = Actor::Anonymous { claimed: None };
        for i in 0..10 {
            store
                .insert_audit(&entry(i, anon.clone(), "compute.VMService/CreateVM", AuditResult::Ok))
                .await
                .unwrap();
        }
        // Two more in the newest second.
        for _ in 0..2 {
            store
                .insert_audit(&entry(9, anon.clone(), "compute.VMService/CreateVM", AuditResult::Ok))
                .await
                .unwrap();
        }
        let left = |store: lqx_core::store::Store| async move {
            store
                .list_audit(&AuditFilter::default(), 1000, "")
                .await
                .unwrap()
                .entries
        };
        assert_eq!(store.prune_audit(Some(t(3)), None).await.unwrap(), 3, "{engine:?}");
        assert_eq!(left(store.clone()).await.len(), 9);
        assert_eq!(store.prune_audit(None, Some(4)).await.unwrap(), 5, "{engine:?}");
        let kept = left(store.clone()).await;
        assert_eq!(kept.len(), 4, "{engine:?}");
        assert!(kept.iter().all(|e| e.time >= t(8)), "{engine:?}: the newest are kept");
        assert_eq!(store.prune_audit(Some(t(0)), Some(100)).await.unwrap(), 0, "{engine:?}");
    }
}

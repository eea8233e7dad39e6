//! Users linked to an OpenID provider's (issuer, subject), on SQLite and a real PostgreSQL
//! (`LQX_TEST_DATABASE_URL`; required when CI is set).

use chrono::{DateTime, Utc};
use lqx_core::model::*;
use lqx_core::store::SsoCreate;
use lqx_core::store::testing::engines;

fn user(name: &str) -> User {
    let t = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap();
    User {
        id: UserId::new(),
        username: name.into(),
        email: String::new(),
        role: Role::Viewer,
        disabled: false,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        token_version: 1,
        created_at: t,
        updated_at: t,
        password_changed_at: t,
        last_login_at: None,
    }
}

#[tokio::test]
async fn sso_users_are_linked_by_issuer_and_subject_atomically() {
    let dir = tempfile::tempdir().unwrap();
    const ISS: &str = "https://id.example.com";
    for (engine, store) in engines(dir.path()).await {
        let local = user("admin");
        store.create_user(&local).await.unwrap();
        // The name is taken by a local user: nothing is created or linked.
        let a = user("admin");
        assert!(
            matches!(
                store.create_sso_user(&a, ISS, "s-1").await.unwrap(),
                SsoCreate::UsernameTaken
            ),
            "{engine}"
        );
        assert_eq!(
            store.sso_user(ISS, "s-1").await.unwrap(),
            None,
            "{engine}: no link without its user"
        );
        assert_eq!(store.get_user(a.id).await.unwrap(), None, "{engine}");
        let a = user("admin-2");
        assert!(matches!(
            store.create_sso_user(&a, ISS, "s-1").await.unwrap(),
            SsoCreate::Created
        ));
        assert_eq!(
            store.sso_user(ISS, "s-1").await.unwrap().map(|u| u.id),
            Some(a.id),
            "{engine}"
        );
        // The same subject of another issuer is someone else.
        assert_eq!(store.sso_user("https://other.example.com", "s-1").await.unwrap(), None);
        // A second link of the same identity loses (a concurrent first login).
        let b = user("admin-3");
        assert!(matches!(
            store.create_sso_user(&b, ISS, "s-1").await.unwrap(),
            SsoCreate::IdentityTaken
        ));
        assert_eq!(store.get_user(b.id).await.unwrap(), None, "{engine}");
        // Deleting the user removes its link: the identity starts over as a new user.
        assert!(store.delete_user(a.id).await.unwrap());
        assert_eq!(store.sso_user(ISS, "s-1").await.unwrap(), None, "{engine}");
        let c = user("admin-2");
        assert!(
            matches!(store.create_sso_user(&c, ISS, "s-1").await.unwrap(), SsoCreate::Created),
            "{engine}"
        );
    }
}

#[tokio::test]
async fn a_provider_token_is_consumed_once_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let at = |s: i64| DateTime::<Utc>::from_timestamp(1_750_000_000 + s, 0).unwrap();
    for (engine, store) in engines(dir.path()).await {
        assert!(store.consume_sso_token("h1", at(300), at(0)).await.unwrap(), "{engine}");
        assert!(
            !store.consume_sso_token("h1", at(300), at(10)).await.unwrap(),
            "{engine}: replay"
        );
        assert!(
            store.consume_sso_token("h2", at(300), at(10)).await.unwrap(),
            "{engine}"
        );
        // Once expired, the record goes (the token itself is refused as expired by then).
        assert!(
            store.consume_sso_token("h3", at(900), at(301)).await.unwrap(),
            "{engine}"
        );
        assert!(
            store.consume_sso_token("h1", at(1200), at(302)).await.unwrap(),
            "{engine}: pruned"
        );
    }
}

use super::*;
use crate::model::AlertKey;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

fn unreachable(node: NodeId, severity: AlertSeverity) -> AlertDraft {
    node_alert(
        node,
        "node-1",
        severity,
        conditions::NODE_UNREACHABLE,
        "Node unreachable",
        "no heartbeat for 30s",
    )
}

#[test]
fn raising_an_open_alert_again_updates_and_counts_it() {
    let node = NodeId::new();
    let first = raise(None, unreachable(node, AlertSeverity::Warning), t(0));
    let AlertChange::Created(a) = first.clone() else {
        panic!("{first:?}")
    };
    assert_eq!((a.count, a.created_at, a.updated_at), (1, t(0), t(0)));
    assert_eq!(first.webhook_event(), Some(WebhookEvent::AlertCreated));

    let mut again = unreachable(node, AlertSeverity::Warning);
    again.message = "no heartbeat for 60s".into();
    let second = raise(Some(&a), again, t(30));
    let AlertChange::Updated {
        alert: b,
        escalated: false,
    } = second.clone()
    else {
        panic!("{second:?}")
    };
    assert_eq!(b.id, a.id, "same alert, not a duplicate");
    assert_eq!(b.count, 2);
    assert_eq!(b.message, "no heartbeat for 60s");
    assert_eq!((b.created_at, b.updated_at), (t(0), t(30)));
    assert_eq!(second.webhook_event(), None, "a plain repeat does not notify");
    assert_eq!(second.event_type(), crate::model::EventType::Updated);
}

#[test]
fn escalation_clears_the_acknowledgement_and_notifies() {
    let node = NodeId::new();
    let a = raise(None, unreachable(node, AlertSeverity::Warning), t(0)).into_alert();
    let a = acknowledge(&a, "alice", t(10));
    assert!(a.acknowledged);
    let change = raise(Some(&a), unreachable(node, AlertSeverity::Critical), t(20));
    let AlertChange::Updated { alert, escalated: true } = change.clone() else {
        panic!("{change:?}")
    };
    assert_eq!(alert.severity, AlertSeverity::Critical);
    assert!(!alert.acknowledged);
    assert_eq!((alert.acknowledged_by.as_deref(), alert.acknowledged_at), (None, None));
    assert_eq!(change.webhook_event(), Some(WebhookEvent::AlertEscalated));

    // Going down in severity is an update, not an escalation, and keeps an ack.
    let acked = acknowledge(&alert, "bob", t(25));
    let change = raise(Some(&acked), unreachable(node, AlertSeverity::Info), t(30));
    let AlertChange::Updated {
        alert,
        escalated: false,
    } = change
    else {
        panic!()
    };
    assert_eq!(alert.severity, AlertSeverity::Info);
    assert_eq!(alert.acknowledged_by.as_deref(), Some("bob"));
}

#[test]
fn a_resolved_or_foreign_alert_is_never_reopened() {
    let node = NodeId::new();
    let a = raise(None, unreachable(node, AlertSeverity::Warning), t(0)).into_alert();
    let resolved = resolve(&a, t(5));
    let change = raise(Some(&resolved), unreachable(node, AlertSeverity::Warning), t(10));
    let AlertChange::Created(b) = change else {
        panic!("{change:?}")
    };
    assert_ne!(b.id, a.id);
    assert_eq!(b.count, 1);

    let other_node = raise(Some(&b), unreachable(NodeId::new(), AlertSeverity::Warning), t(11));
    assert!(matches!(other_node, AlertChange::Created(ref c) if c.id != b.id));
}

#[test]
fn clearing_a_condition_resolves_its_open_alert() {
    let node = NodeId::new();
    let a = raise(None, unreachable(node, AlertSeverity::Critical), t(0)).into_alert();
    let change = clear(Some(&a), t(60)).expect("resolved");
    assert_eq!(change.webhook_event(), Some(WebhookEvent::AlertResolved));
    let r = change.into_alert();
    assert!(r.resolved);
    assert_eq!(r.resolved_at, Some(t(60)));
    assert_eq!(r.id, a.id);
    assert_eq!(clear(Some(&r), t(70)), None, "nothing open any more");
    assert_eq!(clear(None, t(70)), None);
}

#[test]
fn acknowledge_and_resolve_are_idempotent() {
    let a = raise(
        None,
        cluster_alert(AlertSeverity::Info, "cluster.imbalanced", "Imbalanced", "x"),
        t(0),
    )
    .into_alert();
    let once = acknowledge(&a, "alice", t(1));
    let twice = acknowledge(&once, "bob", t(2));
    assert_eq!(twice, once);
    assert_eq!(twice.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(twice.acknowledged_at, Some(t(1)));
    let r1 = resolve(&twice, t(3));
    assert_eq!(resolve(&r1, t(4)), r1);
    assert_eq!(r1.resolved_at, Some(t(3)));
}

#[test]
fn reconcile_raises_active_conditions_and_resolves_cleared_ones() {
    let (n1, n2, n3) = (NodeId::new(), NodeId::new(), NodeId::new());
    let open1 = raise(None, unreachable(n1, AlertSeverity::Warning), t(0)).into_alert();
    let open2 = raise(None, unreachable(n2, AlertSeverity::Warning), t(0)).into_alert();
    // n1 still down (reported twice: merged), n2 recovered, n3 newly down.
    let active = vec![
        unreachable(n1, AlertSeverity::Warning),
        unreachable(n1, AlertSeverity::Critical),
        unreachable(n3, AlertSeverity::Warning),
    ];
    let changes = reconcile(&[open1.clone(), open2.clone()], active, t(30));
    assert_eq!(changes.len(), 3, "{changes:?}");
    let by_source = |id: NodeId| changes.iter().find(|c| c.alert().source_id == id.to_string()).unwrap();
    assert!(
        matches!(by_source(n1), AlertChange::Updated { alert, escalated: true } if alert.id == open1.id && alert.count == 2)
    );
    assert!(matches!(by_source(n2), AlertChange::Resolved(a) if a.id == open2.id && a.resolved_at == Some(t(30))));
    assert!(matches!(by_source(n3), AlertChange::Created(a) if a.count == 1));

    // Nothing active and nothing open: nothing to do.
    assert!(reconcile(&[], vec![], t(40)).is_empty());
}

#[test]
fn summary_counts_open_alerts_by_severity() {
    let mk = |sev, cond: &str| raise(None, system_alert("server", sev, cond, "t", "m"), t(0)).into_alert();
    let crit = mk(AlertSeverity::Critical, "a");
    let warn = acknowledge(&mk(AlertSeverity::Warning, "b"), "alice", t(1));
    let info = mk(AlertSeverity::Info, "c");
    let gone = resolve(&mk(AlertSeverity::Critical, "d"), t(2));
    let s = summarize([&crit, &warn, &info, &gone]);
    assert_eq!(
        s,
        AlertSummary {
            critical: 1,
            warning: 1,
            info: 1,
            unacknowledged: 2,
            total_open: 3
        }
    );
}

#[test]
fn list_filters_and_orders_newest_first() {
    let vm = VmId::new();
    let a = raise(
        None,
        vm_alert(vm, "web-1", AlertSeverity::Critical, conditions::VM_FAILED, "t", "m"),
        t(0),
    )
    .into_alert();
    let b = raise(
        None,
        storage_alert("pool-a", AlertSeverity::Warning, conditions::STORAGE_LOW, "t", "m"),
        t(10),
    )
    .into_alert();
    let c = resolve(
        &raise(
            None,
            network_alert("br0", AlertSeverity::Warning, "network.down", "t", "m"),
            t(20),
        )
        .into_alert(),
        t(21),
    );
    let all = [a.clone(), b.clone(), c.clone()];
    let ids = |f: AlertFilter| list(&all, &f).iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(ids(AlertFilter::default()), vec![c.id, b.id, a.id]);
    assert_eq!(
        ids(AlertFilter {
            severity: Some(AlertSeverity::Warning),
            ..Default::default()
        }),
        vec![c.id, b.id]
    );
    assert_eq!(
        ids(AlertFilter {
            resolved: Some(false),
            ..Default::default()
        }),
        vec![b.id, a.id]
    );
    assert_eq!(
        ids(AlertFilter {
            source_type: Some(AlertSourceType::Vm),
            ..Default::default()
        }),
        vec![a.id]
    );
    assert_eq!(
        ids(AlertFilter {
            source_id: Some(vm.to_string()),
            ..Default::default()
        }),
        vec![a.id]
    );
    assert_eq!(
        ids(AlertFilter {
            acknowledged: Some(true),
            ..Default::default()
        }),
        Vec::<AlertId>::new()
    );
}

#[test]
fn helpers_fill_the_source() {
    let vm = VmId::new();
    let d = vm_alert(
        vm,
        "web-1",
        AlertSeverity::Critical,
        conditions::VM_HA_RESTART_FAILED,
        "t",
        "m",
    );
    assert_eq!(
        d.key(),
        AlertKey {
            source_type: AlertSourceType::Vm,
            source_id: vm.to_string(),
            condition: "vm.ha_restart_failed".into()
        }
    );
    assert_eq!(d.source_name, "web-1");
    let c = cluster_alert(AlertSeverity::Warning, conditions::CLUSTER_CAPACITY_LOW, "t", "m");
    assert_eq!(
        (c.source_type, c.source_id.as_str()),
        (AlertSourceType::Cluster, "cluster")
    );
    let s = system_alert(
        "webhooks",
        AlertSeverity::Info,
        conditions::SYSTEM_WEBHOOK_FAILING,
        "t",
        "m",
    );
    assert_eq!(
        (s.source_type, s.source_id.as_str()),
        (AlertSourceType::System, "webhooks")
    );
    let st = storage_alert("pool-a", AlertSeverity::Info, conditions::STORAGE_LOW, "t", "m");
    assert_eq!(st.source_type, AlertSourceType::Storage);
}

#[test]
fn drafts_are_validated_and_long_texts_cut() {
    let node = NodeId::new();
    let mut d = unreachable(node, AlertSeverity::Info);
    d.title = "é".repeat(500);
    d.message = "x".repeat(10_000);
    let v = d.clone().validated().unwrap();
    assert!(v.title.len() <= MAX_TITLE_LEN && v.title.ends_with('…'));
    assert!(v.message.len() <= MAX_MESSAGE_LEN);

    for bad in ["", "Node.Down", "node down", &"a".repeat(129)] {
        let mut d = d.clone();
        d.condition = bad.to_string();
        let err: crate::Error = d.validated().unwrap_err().into();
        assert!(err.message.starts_with("condition:"), "{}", err.message);
    }
    let mut d = d.clone();
    d.source_id = " ".into();
    assert_eq!(d.validated(), Err(AlertError::EmptySource));
}

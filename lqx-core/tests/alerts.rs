//! The alert service over the store, on SQLite and PostgreSQL (`LQX_TEST_DATABASE_URL`):
//! dedupe, auto-resolve, acknowledgement, summary, listing, events on the bus, webhooks with
//! a real HTTP receiver, the server's host checks, and the event sequence high-water mark.

use lqx_core::alert::monitor::{HostMonitor, MonitorConfig};
use lqx_core::alert::service::{Alerts, AlertsConfig};
use lqx_core::alert::webhook::testing::receiver;
use lqx_core::alert::webhook::{RetryPolicy, verify_signature};
use lqx_core::alert::{self, conditions};
use lqx_core::compute::{Compute, Hosts, NodeRegistration};
use lqx_core::driver::sim::{SimConfig, SimHypervisor};
use lqx_core::events::sequence::{BLOCK, SequenceReservation};
use lqx_core::events::{EventBus, EventBusConfig, SubscriptionItem};
use lqx_core::model::*;
use lqx_core::store::{Store, testing::engines};
use std::sync::Arc;
use std::time::Duration;

fn config() -> AlertsConfig {
    AlertsConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(50),
            request_timeout: Duration::from_secs(5),
        },
        ..Default::default()
    }
}

fn service(store: &Store) -> (Alerts, EventBus) {
    let bus = EventBus::new(EventBusConfig::default());
    (Alerts::start(store.clone(), bus.clone(), config()).unwrap(), bus)
}

fn unreachable(node: NodeId, severity: AlertSeverity) -> AlertDraft {
    alert::node_alert(
        node,
        "node-1",
        severity,
        conditions::NODE_UNREACHABLE,
        "Node unreachable",
        "no heartbeat",
    )
}

#[tokio::test]
async fn the_same_condition_twice_is_one_alert_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        let node = NodeId::new();
        let first = alerts.raise(unreachable(node, AlertSeverity::Warning)).await.unwrap();
        let second = alerts.raise(unreachable(node, AlertSeverity::Warning)).await.unwrap();
        assert_eq!(first.id, second.id, "{engine}");
        assert_eq!(second.count, 2, "{engine}");
        // Another condition or another source is another alert.
        let other = alerts
            .raise(alert::node_alert(
                node,
                "node-1",
                AlertSeverity::Info,
                "node.cpu_high",
                "CPU",
                "busy",
            ))
            .await
            .unwrap();
        assert_ne!(other.id, first.id);
        let page = alerts.list(&AlertFilter::default(), 0, "").await.unwrap();
        assert_eq!(page.alerts.len(), 2, "{engine}");
        assert_eq!(alerts.get(first.id).await.unwrap().count, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_raises_never_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        let node = NodeId::new();
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let a = alerts.clone();
                tokio::spawn(async move { a.raise(unreachable(node, AlertSeverity::Critical)).await.unwrap() })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{engine}: one alert");
        let open = store
            .all_alerts(&AlertFilter {
                resolved: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(open.len(), 1, "{engine}");
        assert_eq!(open[0].count, 12, "{engine}: every raise counted");
    }
}

#[tokio::test]
async fn a_cleared_condition_resolves_and_a_new_one_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, bus) = service(&store);
        let mut sub = bus
            .subscribe(SubscriptionFilter::all().resource_type(ResourceType::Alert), None)
            .unwrap();
        let node = NodeId::new();
        let key = alert::node_key(node, conditions::NODE_UNREACHABLE);
        assert_eq!(alerts.clear(&key).await.unwrap(), None, "nothing open: nothing to do");
        let a = alerts.raise(unreachable(node, AlertSeverity::Critical)).await.unwrap();
        alerts.raise(unreachable(node, AlertSeverity::Critical)).await.unwrap();
        let resolved = alerts.clear(&key).await.unwrap().expect("resolved");
        assert_eq!(resolved.id, a.id);
        assert!(resolved.resolved && resolved.resolved_at.is_some(), "{engine}");
        assert_eq!(alerts.clear(&key).await.unwrap(), None);
        let again = alerts.raise(unreachable(node, AlertSeverity::Critical)).await.unwrap();
        assert_ne!(again.id, a.id, "{engine}");
        assert_eq!(again.count, 1);

        let mut types = Vec::new();
        while let Some(SubscriptionItem::Event(e)) = sub.try_recv() {
            types.push(e.event_type);
        }
        assert_eq!(
            types,
            [
                EventType::Created,
                EventType::Updated,
                EventType::Resolved,
                EventType::Created
            ],
            "{engine}"
        );
    }
}

#[tokio::test]
async fn acknowledge_records_who_and_when_and_escalation_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        let node = NodeId::new();
        let a = alerts.raise(unreachable(node, AlertSeverity::Warning)).await.unwrap();
        let before = chrono::Utc::now();
        let acked = alerts.acknowledge(a.id, "alice").await.unwrap();
        assert!(acked.acknowledged, "{engine}");
        assert_eq!(acked.acknowledged_by.as_deref(), Some("alice"));
        let at = acked.acknowledged_at.expect("when");
        assert!(at >= before - chrono::Duration::seconds(1) && at <= chrono::Utc::now());
        // A second acknowledgement keeps the first.
        let again = alerts.acknowledge(a.id, "bob").await.unwrap();
        assert_eq!(again.acknowledged_by.as_deref(), Some("alice"));
        assert_eq!(alerts.get(a.id).await.unwrap().acknowledged_at, Some(at));
        // Worse now: the acknowledgement no longer holds.
        let worse = alerts.raise(unreachable(node, AlertSeverity::Critical)).await.unwrap();
        assert!(!worse.acknowledged && worse.acknowledged_by.is_none(), "{engine}");
        let r = alerts.resolve(a.id).await.unwrap();
        assert!(r.resolved);
        let err = alerts.acknowledge(AlertId::new(), "x").await.unwrap_err();
        assert_eq!(err.kind, lqx_core::ErrorKind::NotFound);
    }
}

#[tokio::test]
async fn summary_counts_open_alerts_and_list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        let mut ids = Vec::new();
        for (i, sev) in [
            AlertSeverity::Critical,
            AlertSeverity::Critical,
            AlertSeverity::Warning,
            AlertSeverity::Info,
            AlertSeverity::Info,
        ]
        .into_iter()
        .enumerate()
        {
            let a = alerts
                .raise(alert::storage_alert(
                    &format!("pool-{i}"),
                    sev,
                    conditions::STORAGE_LOW,
                    "low",
                    "low",
                ))
                .await
                .unwrap();
            ids.push(a.id);
            tokio::time::sleep(Duration::from_millis(3)).await; // distinct creation times
        }
        alerts.acknowledge(ids[0], "alice").await.unwrap();
        alerts.resolve(ids[3]).await.unwrap();
        let s = alerts.summary(None).await.unwrap();
        assert_eq!(
            (s.critical, s.warning, s.info, s.unacknowledged, s.total_open),
            (2, 1, 1, 3, 4),
            "{engine}"
        );

        let crit = alerts
            .list(
                &AlertFilter {
                    severity: Some(AlertSeverity::Critical),
                    ..Default::default()
                },
                0,
                "",
            )
            .await
            .unwrap();
        assert_eq!(crit.alerts.len(), 2);
        let unacked_open = AlertFilter {
            acknowledged: Some(false),
            resolved: Some(false),
            ..Default::default()
        };
        assert_eq!(alerts.list(&unacked_open, 0, "").await.unwrap().alerts.len(), 3);
        let by_source = AlertFilter {
            source_type: Some(AlertSourceType::Storage),
            source_id: Some("pool-2".into()),
            ..Default::default()
        };
        assert_eq!(alerts.list(&by_source, 0, "").await.unwrap().alerts[0].id, ids[2]);

        // Pages of two, newest first, all five once.
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let p = alerts.list(&AlertFilter::default(), 2, &token).await.unwrap();
            seen.extend(p.alerts.iter().map(|a| a.id));
            if p.next_page_token.is_empty() {
                break;
            }
            token = p.next_page_token;
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first, "{engine}");
    }
}

#[tokio::test]
async fn reconcile_raises_new_conditions_and_resolves_gone_ones_without_churn() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        let (a, b) = (NodeId::new(), NodeId::new());
        let scope = AlertFilter {
            source_type: Some(AlertSourceType::Host),
            ..Default::default()
        };
        let changed = alerts
            .reconcile(&scope, vec![unreachable(a, AlertSeverity::Critical)])
            .await
            .unwrap();
        assert_eq!(changed.len(), 1);
        // Same conditions again: nothing changes (no count bump on every check).
        assert!(
            alerts
                .reconcile(&scope, vec![unreachable(a, AlertSeverity::Critical)])
                .await
                .unwrap()
                .is_empty()
        );
        let changed = alerts
            .reconcile(&scope, vec![unreachable(b, AlertSeverity::Critical)])
            .await
            .unwrap();
        assert_eq!(changed.len(), 2, "{engine}: a resolved, b raised");
        let open = store
            .all_alerts(&AlertFilter {
                resolved: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].source_id, b.to_string());
        assert_eq!(open[0].count, 1);
    }
}

// ---- webhooks ----

async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn webhooks_get_signed_notifications_with_a_retry_and_a_delivery_log() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        // The first attempt fails with a 503, the retry is accepted.
        let (url, got) = receiver(vec![Some(503), Some(200)]).await;
        let hook = alerts
            .create_webhook(&url, vec![AlertSeverity::Critical], "shared-secret")
            .await
            .unwrap();
        // A receiver that only wants warnings is not called for a critical alert.
        let (other_url, other_got) = receiver(vec![Some(200)]).await;
        alerts
            .create_webhook(&other_url, vec![AlertSeverity::Warning], "")
            .await
            .unwrap();
        assert!(!hook.to_proto().url.is_empty() && hook.to_proto().has_secret);
        let listed = alerts.list_webhooks().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(
            !format!("{:?}", listed.iter().map(|w| w.to_proto()).collect::<Vec<_>>()).contains("shared-secret"),
            "{engine}: the secret is never listed"
        );

        let a = alerts
            .raise(unreachable(NodeId::new(), AlertSeverity::Critical))
            .await
            .unwrap();
        wait_for("two attempts", async || got.lock().unwrap().len() >= 2).await;
        let received = got.lock().unwrap().clone();
        assert_eq!(received.len(), 2, "{engine}: one failure, one retry");
        for r in &received {
            verify_signature(
                b"shared-secret",
                &r.headers["x-lqx-timestamp"],
                &r.headers["x-lqx-signature"],
                &r.body,
                chrono::Utc::now(),
                Duration::from_secs(300),
            )
            .expect("valid signature");
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["event"], "alert.created");
            assert_eq!(body["alert"]["id"], a.id.to_string());
        }
        assert_eq!(
            received[0].headers["x-lqx-delivery"], received[1].headers["x-lqx-delivery"],
            "a retry is the same delivery"
        );
        // A repeat of the open alert notifies nobody.
        alerts
            .raise(unreachable(a.source_id.parse().unwrap(), AlertSeverity::Critical))
            .await
            .unwrap();

        wait_for("the delivery log", async || {
            alerts.deliveries(hook.id, 10).await.unwrap().len() >= 2
        })
        .await;
        let log = alerts.deliveries(hook.id, 10).await.unwrap();
        let statuses: Vec<_> = log.iter().map(|d| (d.attempt, d.status, d.http_status)).collect();
        assert!(
            statuses.contains(&(1, WebhookDeliveryStatus::Retrying, Some(503))),
            "{engine}: {statuses:?}"
        );
        assert!(
            statuses.contains(&(2, WebhookDeliveryStatus::Delivered, Some(200))),
            "{statuses:?}"
        );
        // The webhook's summary is written by the same background task, after the rows.
        wait_for("the webhook's last delivery status", async || {
            alerts.get_webhook(hook.id).await.unwrap().last_delivery_status == Some(WebhookDeliveryStatus::Delivered)
        })
        .await;
        let stored = alerts.get_webhook(hook.id).await.unwrap();
        assert_eq!(stored.last_delivery_status, Some(WebhookDeliveryStatus::Delivered));
        assert_eq!(stored.secret.as_deref(), Some("shared-secret"), "kept for signing");

        // TestWebhook goes out at once and is logged too.
        let attempts = alerts.test_webhook(hook.id).await.unwrap();
        assert_eq!(
            attempts.last().unwrap().status,
            WebhookDeliveryStatus::Delivered,
            "{engine}"
        );
        assert_eq!(got.lock().unwrap().len(), 3, "no notification for the repeat");
        assert!(other_got.lock().unwrap().is_empty(), "severity filter");

        alerts.delete_webhook(hook.id).await.unwrap();
        assert!(
            alerts.deliveries(hook.id, 10).await.unwrap().is_empty(),
            "log goes with the webhook"
        );
        assert_eq!(
            alerts.delete_webhook(hook.id).await.unwrap_err().kind,
            lqx_core::ErrorKind::NotFound
        );
        let bad = alerts.create_webhook("ftp://x", vec![], "").await.unwrap_err();
        assert_eq!(bad.kind, lqx_core::ErrorKind::InvalidArgument);
    }
}

// ---- the server's own checks ----

#[tokio::test]
async fn an_unanswering_host_raises_an_alert_that_resolves_when_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        let compute = Compute::new(
            store.clone(),
            Hosts::default(),
            EventBus::new(EventBusConfig::default()),
        );
        let sim = SimHypervisor::new("sim://mon-1", SimConfig::with_capacity(4, 1000)).unwrap();
        let node = compute
            .attach_node(NodeRegistration::new("mon-1", "sim://mon-1"), Arc::new(sim.clone()))
            .await
            .unwrap();
        let mut monitor = HostMonitor::new(
            compute.clone(),
            alerts.clone(),
            MonitorConfig {
                failure_threshold: 2,
                ..Default::default()
            },
        );
        let open = async || {
            store
                .all_alerts(&AlertFilter {
                    resolved: Some(false),
                    ..Default::default()
                })
                .await
                .unwrap()
        };
        monitor.check().await.unwrap();
        assert!(open().await.is_empty(), "{engine}");
        sim.set_available(false);
        monitor.check().await.unwrap();
        assert!(open().await.is_empty(), "one failed check is not enough");
        monitor.check().await.unwrap();
        let now_open = open().await;
        assert_eq!(now_open.len(), 1, "{engine}");
        assert_eq!(now_open[0].condition, conditions::NODE_UNREACHABLE);
        assert_eq!(now_open[0].source_id, node.id.to_string());
        assert_eq!(now_open[0].severity, AlertSeverity::Critical);
        monitor.check().await.unwrap();
        assert_eq!(open().await[0].count, 1, "not raised again while down");
        sim.set_available(true);
        monitor.check().await.unwrap();
        assert!(open().await.is_empty(), "{engine}: resolved when it answers");
        let all = alerts.list(&AlertFilter::default(), 0, "").await.unwrap().alerts;
        assert!(all[0].resolved);
    }
}

// ---- event sequences ----

#[tokio::test]
async fn event_sequences_are_never_reused_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let first = SequenceReservation::start(&store).await.unwrap();
        assert_eq!(first.first_sequence(), 1, "{engine}");
        assert_eq!(first.reserved(), BLOCK);
        // A crash after publishing some events: the next run starts after the whole block.
        let second = SequenceReservation::start(&store).await.unwrap();
        assert_eq!(second.first_sequence(), BLOCK + 1, "{engine}");
        let mut second = second;
        assert!(!second.extend_if_needed(BLOCK + 10).await.unwrap());
        assert!(second.extend_if_needed(2 * BLOCK - 10).await.unwrap());
        assert_eq!(second.reserved(), 3 * BLOCK);
        let third = SequenceReservation::start(&store).await.unwrap();
        assert_eq!(third.first_sequence(), 3 * BLOCK + 1, "{engine}");
        let bus = EventBus::new(EventBusConfig {
            first_sequence: third.first_sequence(),
            ..Default::default()
        });
        let d = EventDraft::new(EventType::Created, ResourceType::Vm, "x", chrono::Utc::now());
        assert_eq!(bus.publish(d), 3 * BLOCK + 1);
    }
}

/// An alert's text keeps the node it was raised for: a VM's domain recreated on host-a,
/// then (the alert still open) on host-b, leaves the host-a alert as it was (resolved) and
/// opens one naming host-b, instead of rewriting the first into host-b's.
#[tokio::test]
async fn an_alerts_text_keeps_the_node_it_was_raised_for() {
    let dir = tempfile::tempdir().unwrap();
    for (engine, store) in engines(dir.path()).await {
        let (alerts, _) = service(&store);
        let vm = VmId::new();
        let on = |host: &str| {
            alert::vm_alert(
                vm,
                "web-1",
                AlertSeverity::Warning,
                conditions::VM_DOMAIN_RECREATED,
                format!("web-1: domain recreated on {host}"),
                format!("Host {host} no longer had the domain of VM web-1"),
            )
        };
        let a = alerts.raise(on("host-a")).await.unwrap();
        let again = alerts.raise(on("host-a")).await.unwrap();
        assert_eq!((again.id, again.count), (a.id, 2), "{engine}: a plain repeat counts");
        let b = alerts.raise(on("host-b")).await.unwrap();
        assert_ne!(b.id, a.id, "{engine}");
        assert!(b.message.contains("host-b") && b.count == 1, "{engine}: {b:?}");
        let a = alerts.get(a.id).await.unwrap();
        assert!(a.resolved, "{engine}: superseded");
        assert!(
            a.title.ends_with("host-a") && a.message.contains("host-a") && !a.message.contains("host-b"),
            "{engine}: {a:?}"
        );
        assert_eq!(a.count, 2, "{engine}");
        let open = alerts
            .list(
                &AlertFilter {
                    resolved: Some(false),
                    ..Default::default()
                },
                0,
                "",
            )
            .await
            .unwrap();
        assert_eq!(
            open.alerts.iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![b.id],
            "{engine}"
        );
    }
}

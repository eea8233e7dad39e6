//! Webhook tests against a real HTTP receiver on 127.0.0.1 (a tiny HTTP/1.1 responder).
//! They run in real time with millisecond backoffs: paused time would let the clock jump
//! to the request timeout while the runtime waits on real sockets.

use super::testing::receiver;
use super::*;
use crate::alert::{node_alert, raise};
use crate::model::{AlertSeverity, NodeId, WebhookId};

fn hook(url: &str, secret: Option<&str>) -> Webhook {
    Webhook {
        id: WebhookId::new(),
        url: url.to_string(),
        severities: vec![],
        secret: secret.map(str::to_string),
        created_at: DateTime::UNIX_EPOCH,
        last_delivery_at: None,
        last_delivery_status: None,
    }
}

fn alert(severity: AlertSeverity) -> Alert {
    let d = node_alert(
        NodeId::new(),
        "node-1",
        severity,
        "node.unreachable",
        "Node unreachable",
        "no heartbeat",
    );
    raise(None, d, DateTime::UNIX_EPOCH).into_alert()
}

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        request_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn delivers_a_signed_payload_the_receiver_can_verify() {
    let (url, got) = receiver(vec![Some(200)]).await;
    let sender = WebhookSender::new(fast_policy(3)).unwrap();
    let a = alert(AlertSeverity::Critical);
    let report = sender
        .deliver(&hook(&url, Some("topsecret")), WebhookEvent::AlertCreated, Some(&a))
        .await;
    assert!(report.delivered(), "{report:?}");
    assert_eq!(report.attempts.len(), 1);
    let d = report.last().unwrap();
    assert_eq!((d.attempt, d.http_status, d.alert_id), (1, Some(200), Some(a.id)));

    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    let ts = &r.headers["x-lqx-timestamp"];
    let sig = &r.headers["x-lqx-signature"];
    assert!(sig.starts_with("sha256="), "{sig}");
    assert_eq!(r.headers["x-lqx-event"], "alert.created");
    assert_eq!(r.headers["x-lqx-delivery"], report.delivery_id.to_string());
    assert_eq!(r.headers["content-type"], "application/json");
    let now = DateTime::from_timestamp(ts.parse().unwrap(), 0).unwrap();
    assert_eq!(
        verify_signature(b"topsecret", ts, sig, &r.body, now, DEFAULT_TOLERANCE),
        Ok(())
    );
    assert_eq!(
        verify_signature(b"wrong", ts, sig, &r.body, now, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch)
    );
    let mut tampered = r.body.clone();
    tampered[0] = b' ';
    assert_eq!(
        verify_signature(b"topsecret", ts, sig, &tampered, now, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch)
    );

    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["event"], "alert.created");
    assert_eq!(body["delivery_id"], report.delivery_id.to_string());
    assert_eq!(body["alert"]["id"], a.id.to_string());
    assert_eq!(body["alert"]["severity"], "CRITICAL");
    assert_eq!(body["alert"]["condition"], "node.unreachable");
}

#[tokio::test]
async fn a_failing_first_attempt_is_retried() {
    let (url, got) = receiver(vec![Some(500), Some(200)]).await;
    let sender = WebhookSender::new(fast_policy(4)).unwrap();
    let a = alert(AlertSeverity::Warning);
    let report = sender
        .deliver(&hook(&url, Some("k")), WebhookEvent::AlertCreated, Some(&a))
        .await;
    let statuses: Vec<_> = report
        .attempts
        .iter()
        .map(|d| (d.attempt, d.status, d.http_status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, WebhookDeliveryStatus::Retrying, Some(500)),
            (2, WebhookDeliveryStatus::Delivered, Some(200))
        ]
    );
    assert_eq!(
        report.attempts[0].error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert!(report.delivered());
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    // Same delivery id on the retry (receivers dedupe on it), each attempt signed afresh.
    assert_eq!(got[0].headers["x-lqx-delivery"], got[1].headers["x-lqx-delivery"]);
    for r in &got {
        let now = DateTime::from_timestamp(r.headers["x-lqx-timestamp"].parse().unwrap(), 0).unwrap();
        verify_signature(
            b"k",
            &r.headers["x-lqx-timestamp"],
            &r.headers["x-lqx-signature"],
            &r.body,
            now,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_never_retries_a_4xx() {
    let (url, got) = receiver(vec![Some(503)]).await;
    let sender = WebhookSender::new(fast_policy(3)).unwrap();
    let report = sender.deliver(&hook(&url, None), WebhookEvent::Test, None).await;
    let statuses: Vec<_> = report.attempts.iter().map(|d| d.status).collect();
    use WebhookDeliveryStatus::*;
    assert_eq!(statuses, vec![Retrying, Retrying, Failed]);
    assert!(!report.delivered());
    assert_eq!(got.lock().unwrap().len(), 3);
    assert!(
        got.lock()
            .unwrap()
            .iter()
            .all(|r| !r.headers.contains_key("x-lqx-signature")),
        "no secret, no signature"
    );
    assert!(
        report
            .attempts
            .iter()
            .all(|d| d.alert_id.is_none() && d.event == WebhookEvent::Test)
    );

    let (url, got) = receiver(vec![Some(401)]).await;
    let report = sender.deliver(&hook(&url, None), WebhookEvent::Test, None).await;
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.last().unwrap().status, Failed);
    assert_eq!(report.last().unwrap().http_status, Some(401));
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn connection_errors_and_timeouts_are_recorded() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sender = WebhookSender::new(fast_policy(2)).unwrap();
    let report = sender
        .deliver(
            &hook(&format!("http://127.0.0.1:{port}/x"), Some("k")),
            WebhookEvent::Test,
            None,
        )
        .await;
    assert_eq!(report.attempts.len(), 2);
    let err = report.last().unwrap().error.clone().unwrap();
    assert!(err.starts_with("connect error"), "{err}");
    assert!(!err.contains("127.0.0.1"), "the URL stays out of the log: {err}");

    let (url, _) = receiver(vec![None]).await;
    let sender = WebhookSender::new(RetryPolicy {
        request_timeout: Duration::from_millis(200),
        ..fast_policy(1)
    })
    .unwrap();
    let report = sender.deliver(&hook(&url, None), WebhookEvent::Test, None).await;
    let last = report.last().unwrap();
    assert_eq!(last.status, WebhookDeliveryStatus::Failed);
    assert_eq!(last.error.as_deref(), Some("timed out after 200ms"));
}

#[tokio::test]
async fn dispatcher_delivers_in_the_background_and_logs_each_attempt() {
    let (url, got) = receiver(vec![Some(500), Some(204)]).await;
    let (dispatcher, mut log) =
        WebhookDispatcher::start(WebhookSender::new(fast_policy(3)).unwrap(), DispatcherConfig::default());
    let mut critical_only = hook(&url, Some("k"));
    critical_only.severities = vec![AlertSeverity::Critical];
    let everything = hook(&url, Some("k"));
    let a = alert(AlertSeverity::Warning);
    assert_eq!(
        dispatcher.notify(&[critical_only, everything.clone()], WebhookEvent::AlertCreated, &a),
        1
    );
    let first = log.recv().await.unwrap();
    let second = log.recv().await.unwrap();
    assert_eq!((first.attempt, first.status), (1, WebhookDeliveryStatus::Retrying));
    assert_eq!(
        (second.attempt, second.status, second.http_status),
        (2, WebhookDeliveryStatus::Delivered, Some(204))
    );
    assert_eq!((second.webhook_id, second.alert_id), (everything.id, Some(a.id)));
    assert_eq!(got.lock().unwrap().len(), 2);
    // The delivery is one run of the webhook-delivery background task.
    let task = dispatcher.task().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while task.status().runs == 0 {
        assert!(tokio::time::Instant::now() < deadline, "delivery not recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = task.status();
    assert_eq!((s.name.as_str(), s.runs, s.errors), (DELIVERY_TASK, 1, 0));
    assert_eq!(
        s.last_result,
        Some(crate::background::Outcome::Ok("delivered (2 attempts)".into()))
    );
}

#[tokio::test]
async fn a_full_queue_drops_without_blocking_and_logs_the_drop() {
    // The receiver never answers: the one delivery in flight holds the only slot.
    let (url, _) = receiver(vec![None]).await;
    let sender = WebhookSender::new(RetryPolicy {
        request_timeout: Duration::from_secs(30),
        ..fast_policy(1)
    })
    .unwrap();
    let (dispatcher, mut log) = WebhookDispatcher::start(
        sender,
        DispatcherConfig {
            queue: 1,
            concurrency: 1,
            log_queue: 100,
        },
    );
    let h = hook(&url, None);
    let a = alert(AlertSeverity::Critical);
    let queued = (0..10)
        .filter(|_| dispatcher.enqueue(h.clone(), WebhookEvent::AlertCreated, Some(a.clone())))
        .count();
    // At most: one in flight, one held by the dispatcher waiting for a slot, one queued.
    assert!((1..=3).contains(&queued), "queued {queued}");
    assert_eq!(dispatcher.dropped(), 10 - queued as u64);
    let mut dropped_rows = 0;
    while let Ok(row) = log.try_recv() {
        assert_eq!(row.status, WebhookDeliveryStatus::Dropped);
        assert_eq!(row.error.as_deref(), Some("delivery queue full"));
        dropped_rows += 1;
    }
    assert_eq!(dropped_rows, 10 - queued);
}

#[test]
fn signature_checks_reject_stale_and_malformed_headers() {
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let body = br#"{"event":"webhook.test"}"#;
    let sig = sign(b"k", now.timestamp(), body);
    let ts = now.timestamp().to_string();
    assert_eq!(verify_signature(b"k", &ts, &sig, body, now, DEFAULT_TOLERANCE), Ok(()));
    let later = now + chrono::Duration::seconds(301);
    assert_eq!(
        verify_signature(b"k", &ts, &sig, body, later, DEFAULT_TOLERANCE),
        Err(SignatureError::Stale)
    );
    // The timestamp is part of the signed content: moving it forward breaks the signature.
    let moved = (now.timestamp() + 10).to_string();
    assert_eq!(
        verify_signature(b"k", &moved, &sig, body, now, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(b"k", "soon", &sig, body, now, DEFAULT_TOLERANCE),
        Err(SignatureError::BadTimestamp)
    );
    assert_eq!(
        verify_signature(b"k", &ts, "md5=abc", body, now, DEFAULT_TOLERANCE),
        Err(SignatureError::BadSignature)
    );
    assert_eq!(
        verify_signature(b"k", &ts, "sha256=zz", body, now, DEFAULT_TOLERANCE),
        Err(SignatureError::BadSignature)
    );
}

#[test]
fn urls_must_be_http_or_https_with_a_host_and_no_credentials() {
    assert_eq!(
        validate_url(" https://hooks.example.com/lqx ").unwrap(),
        "https://hooks.example.com/lqx"
    );
    assert!(validate_url("http://127.0.0.1:8080/x").is_ok());
    for bad in [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "example.com/x",
        "http://",
        "https://user:pw@example.com/",
    ] {
        let err: crate::Error = validate_url(bad).unwrap_err().into();
        assert!(err.message.starts_with("url:"), "{bad}: {}", err.message);
    }
    assert!(validate_secret(&"x".repeat(MAX_SECRET_LEN)).is_ok());
    assert_eq!(
        validate_secret(&"x".repeat(MAX_SECRET_LEN + 1)),
        Err(AlertError::SecretTooLong)
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let p = RetryPolicy {
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(10),
        ..Default::default()
    };
    let waits: Vec<u64> = (1..=6).map(|a| p.backoff(a).as_secs()).collect();
    assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
    assert_eq!(p.backoff(200), Duration::from_secs(10));
}

use super::*;
use crate::model::{EventDraft, EventType, ProjectId, ResourceType, SubscriptionFilter};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

fn draft(t: EventType, r: ResourceType, id: &str) -> EventDraft {
    EventDraft::new(t, r, id, DateTime::<Utc>::UNIX_EPOCH)
}

fn vm(id: &str) -> EventDraft {
    draft(EventType::Updated, ResourceType::Vm, id)
}

fn bus(retention: usize, buffer: usize) -> EventBus {
    EventBus::new(EventBusConfig {
        retention,
        subscriber_buffer: buffer,
        first_sequence: 1,
    })
}

/// Reads everything ready now; panics on a lag notice.
fn drain(sub: &mut Subscription) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(item) = sub.try_recv() {
        match item {
            SubscriptionItem::Event(e) => out.push(e.sequence),
            SubscriptionItem::Lagged { resume_from } => panic!("unexpected lag at {resume_from}"),
        }
    }
    out
}

#[test]
fn sequences_are_consecutive_from_the_configured_start() {
    let b = EventBus::new(EventBusConfig {
        first_sequence: 501,
        ..Default::default()
    });
    assert_eq!(b.last_sequence(), 500);
    assert_eq!(b.publish(vm("a")), 501);
    assert_eq!(b.publish(vm("a")), 502);
    assert_eq!(b.last_sequence(), 502);
    // A client that saw 500 before the restart missed nothing; one that saw 499 did.
    assert_eq!(
        drain(&mut b.subscribe(SubscriptionFilter::all(), Some(500)).unwrap()),
        vec![501, 502]
    );
    assert_eq!(
        b.subscribe(SubscriptionFilter::all(), Some(499)).unwrap_err(),
        EventError::ResyncRequired {
            requested: 499,
            oldest_retained: 501
        }
    );
}

#[test]
fn filters_select_what_a_subscriber_receives() {
    let b = bus(100, 100);
    let p = ProjectId::new();
    let mut vm1 = b
        .subscribe(SubscriptionFilter::all().resource_id("vm-1"), None)
        .unwrap();
    let mut nodes = b
        .subscribe(SubscriptionFilter::all().resource_type(ResourceType::Node), None)
        .unwrap();
    let mut stops = b
        .subscribe(SubscriptionFilter::all().event_type(EventType::Stopped), None)
        .unwrap();
    let mut project = b.subscribe(SubscriptionFilter::all().project(p), None).unwrap();
    let mut all = b.subscribe(SubscriptionFilter::all(), None).unwrap();

    let s1 = b.publish(vm("vm-1").project(p));
    let s2 = b.publish(draft(EventType::Stopped, ResourceType::Vm, "vm-2"));
    let s3 = b.publish(draft(EventType::Failed, ResourceType::Node, "node-1"));
    let s4 = b.publish(draft(EventType::Stopped, ResourceType::Vm, "vm-1"));

    assert_eq!(drain(&mut vm1), vec![s1, s4]);
    assert_eq!(drain(&mut nodes), vec![s3]);
    assert_eq!(drain(&mut stops), vec![s2, s4]);
    assert_eq!(drain(&mut project), vec![s1]);
    assert_eq!(drain(&mut all), vec![s1, s2, s3, s4]);
    assert_eq!(b.stats().delivered, 2 + 1 + 2 + 1 + 4);
}

#[test]
fn resume_replays_then_continues_live_without_gap_or_duplicate() {
    let b = bus(100, 100);
    for i in 0..10 {
        b.publish(vm(if i % 2 == 0 { "even" } else { "odd" }));
    }
    let mut sub = b.subscribe(SubscriptionFilter::all(), Some(4)).unwrap();
    let mut even = b
        .subscribe(SubscriptionFilter::all().resource_id("even"), Some(4))
        .unwrap();
    assert_eq!(sub.last_sequence(), 4);
    b.publish(vm("even"));
    b.publish(vm("odd"));
    assert_eq!(drain(&mut sub), (5..=12).collect::<Vec<_>>());
    assert_eq!(drain(&mut even), vec![5, 7, 9, 11]);
    assert_eq!(sub.last_sequence(), 12);

    // Resuming from the newest sequence replays nothing; 0 and None mean live only.
    let mut at_head = b.subscribe(SubscriptionFilter::all(), Some(12)).unwrap();
    let mut zero = b.subscribe(SubscriptionFilter::all(), Some(0)).unwrap();
    let mut live = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    assert_eq!(
        live.last_sequence(),
        12,
        "a live subscription can resume from where it started"
    );
    b.publish(vm("x"));
    assert_eq!(drain(&mut at_head), vec![13]);
    assert_eq!(drain(&mut zero), vec![13]);
    assert_eq!(drain(&mut live), vec![13]);
}

#[test]
fn resuming_from_before_the_ring_requires_a_resync() {
    let b = bus(5, 10);
    for _ in 0..20 {
        b.publish(vm("a"));
    }
    assert_eq!(b.stats().oldest_retained, Some(16));
    assert_eq!(b.stats().retained, 5);
    let err = b.subscribe(SubscriptionFilter::all(), Some(10)).unwrap_err();
    assert_eq!(
        err,
        EventError::ResyncRequired {
            requested: 10,
            oldest_retained: 16
        }
    );
    let err: crate::Error = err.into();
    assert_eq!(err.kind, crate::ErrorKind::FailedPrecondition);
    assert!(err.message.starts_with("resync required"), "{}", err.message);

    // The oldest resumable point is the one right before the oldest retained event.
    assert_eq!(
        drain(&mut b.subscribe(SubscriptionFilter::all(), Some(15)).unwrap()),
        vec![16, 17, 18, 19, 20]
    );
    assert!(b.subscribe(SubscriptionFilter::all(), Some(14)).is_err());

    let err: crate::Error = b.subscribe(SubscriptionFilter::all(), Some(21)).unwrap_err().into();
    assert_eq!(err.kind, crate::ErrorKind::FailedPrecondition);
    assert!(err.message.starts_with("resync required"), "{}", err.message);
}

#[test]
fn a_slow_subscriber_is_cut_off_with_a_resume_point_and_a_fast_one_is_unaffected() {
    let b = bus(1_000, 4);
    let mut slow = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    let mut fast = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    let mut fast_seen = Vec::new();
    for _ in 0..10 {
        b.publish(vm("a"));
        fast_seen.extend(drain(&mut fast));
    }
    assert_eq!(fast_seen, (1..=10).collect::<Vec<_>>());
    assert_eq!(b.stats().lagged, 1);
    assert_eq!(b.stats().subscribers, 1, "the slow subscriber is removed from the bus");

    // The slow one gets what was queued, then the notice, then the end of the stream.
    let mut items = Vec::new();
    while let Some(item) = slow.try_recv() {
        items.push(item);
    }
    let seqs: Vec<u64> = items
        .iter()
        .filter_map(|i| match i {
            SubscriptionItem::Event(e) => Some(e.sequence),
            SubscriptionItem::Lagged { .. } => None,
        })
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(items.last(), Some(&SubscriptionItem::Lagged { resume_from: 4 }));
    assert_eq!(slow.try_recv(), None);

    // Resuming from the notice's point continues exactly where it stopped.
    let mut again = b.subscribe(SubscriptionFilter::all(), Some(4)).unwrap();
    assert_eq!(drain(&mut again), (5..=10).collect::<Vec<_>>());
}

#[test]
fn a_cut_off_subscribers_backlog_is_released_at_once() {
    let b = bus(1_000, 4);
    b.publish(vm("a"));
    let mut slow = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    for _ in 0..9 {
        b.publish(vm("a"));
    }
    // Queued 2..=5, cut off at 6: the backlog is freed, the notice points before it.
    assert_eq!(slow.pending(), 0);
    assert_eq!(slow.try_recv(), Some(SubscriptionItem::Lagged { resume_from: 1 }));
    assert_eq!(slow.try_recv(), None);
    let mut again = b.subscribe(SubscriptionFilter::all(), Some(1)).unwrap();
    assert_eq!(drain(&mut again), (2..=10).collect::<Vec<_>>());
}

#[test]
fn only_wanted_events_count_against_a_subscribers_buffer() {
    let b = bus(1_000, 2);
    let mut narrow = b
        .subscribe(SubscriptionFilter::all().resource_id("quiet"), None)
        .unwrap();
    for _ in 0..500 {
        b.publish(vm("busy"));
    }
    let s = b.publish(vm("quiet"));
    assert_eq!(drain(&mut narrow), vec![s]);
    assert_eq!(b.stats().lagged, 0);
}

#[test]
fn memory_stays_bounded_with_a_subscriber_that_never_reads() {
    let b = bus(1_000, 64);
    b.publish(vm("a"));
    let never = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    let mut fast = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    for i in 0..100_000u64 {
        b.publish(vm("a"));
        if i % 32 == 0 {
            drain(&mut fast);
        }
    }
    drain(&mut fast);
    let stats = b.stats();
    assert_eq!(stats.published, 100_001);
    assert_eq!(stats.retained, 1_000);
    assert_eq!(never.pending(), 0, "cut off and released");
    assert_eq!(fast.last_sequence(), 100_001);
    assert_eq!(stats.subscribers, 1);
}

#[test]
fn visibility_hides_events_from_replay_and_live() {
    let b = bus(100, 1);
    b.publish(draft(EventType::Updated, ResourceType::Ha, "cluster"));
    let s2 = b.publish(draft(EventType::Created, ResourceType::Vm, "vm-1"));
    b.publish(draft(EventType::Created, ResourceType::Node, "node-1"));
    let vms_only: Visibility = Arc::new(|e: &crate::model::Event| e.resource_type == ResourceType::Vm);
    let mut replayed = b
        .subscribe_with(SubscriptionFilter::all(), Some(1), Some(vms_only.clone()))
        .unwrap();
    let mut live = b
        .subscribe_with(SubscriptionFilter::all(), None, Some(vms_only))
        .unwrap();
    assert_eq!(drain(&mut replayed), vec![s2]);
    // Hidden events are not queued: with a buffer of 1 they would otherwise cut it off.
    b.publish(draft(EventType::Failed, ResourceType::Node, "node-1"));
    let s5 = b.publish(draft(EventType::Started, ResourceType::Vm, "vm-1"));
    assert_eq!(drain(&mut replayed), vec![s5]);
    assert_eq!(drain(&mut live), vec![s5]);
    assert_eq!(b.stats().lagged, 0);
}

#[test]
fn dropping_a_subscription_unsubscribes_and_dropping_the_bus_ends_streams() {
    let b = bus(10, 10);
    let sub = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    let mut other = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    assert_eq!(b.stats().subscribers, 2);
    drop(sub);
    assert_eq!(b.stats().subscribers, 1);
    b.publish(vm("a"));
    drop(b);
    assert_eq!(drain(&mut other), vec![1]);
    assert_eq!(other.try_recv(), None, "the stream ends without a lag notice");
}

#[test]
fn recent_returns_the_newest_matching_events_in_order() {
    let b = bus(10, 10);
    for i in 0..8 {
        b.publish(vm(if i % 2 == 0 { "a" } else { "b" }));
    }
    let got: Vec<u64> = b
        .recent(&SubscriptionFilter::all().resource_id("a"), 1, 2)
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(got, vec![5, 7]);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_subscriber_is_woken_by_a_publish() {
    let b = bus(10, 10);
    let mut sub = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    let publisher = b.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        publisher.publish(vm("a"))
    });
    let start = tokio::time::Instant::now();
    let item = tokio::time::timeout(Duration::from_secs(60), sub.next())
        .await
        .expect("woken");
    assert!(
        matches!(item, Some(SubscriptionItem::Event(ref e)) if e.sequence == 1),
        "{item:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(task.await.unwrap(), 1);
    // And recv() waits the same way.
    assert!(tokio::time::timeout(Duration::from_secs(1), sub.recv()).await.is_err());
}

/// Publishers on another thread while subscribers join with resume points taken from a
/// first subscriber: whatever the interleaving, each one sees consecutive sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publish_and_resume_never_gap_or_duplicate() {
    const N: u64 = 20_000;
    let b = bus(N as usize, N as usize);
    let mut first = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    let publisher = b.clone();
    let handle = std::thread::spawn(move || {
        for _ in 0..N {
            publisher.publish(vm("a"));
        }
    });
    let mut joined = Vec::new();
    let mut seen = 0u64;
    while seen < N {
        match first.recv().await {
            Some(SubscriptionItem::Event(e)) => {
                assert_eq!(e.sequence, seen + 1);
                seen = e.sequence;
                if seen.is_multiple_of(2_000) {
                    let resume = seen.saturating_sub(50);
                    joined.push((resume, b.subscribe(SubscriptionFilter::all(), Some(resume)).unwrap()));
                }
            }
            other => panic!("{other:?}"),
        }
    }
    handle.join().unwrap();
    assert!(!joined.is_empty());
    for (resume, mut sub) in joined {
        let got = drain(&mut sub);
        let expected: Vec<u64> = (resume + 1..=N).collect();
        let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            got == expected,
            "resumed from {resume}: got {} events ({:?}..{:?}), first difference at {first_diff:?}",
            got.len(),
            got.first(),
            got.last()
        );
    }
}

#[test]
fn subscriptions_can_be_moved_into_server_streams() {
    fn stream_like<T: futures::Stream<Item = SubscriptionItem> + Send + Sync + Unpin + 'static>() {}
    fn shared<T: Clone + Send + Sync + 'static>() {}
    stream_like::<Subscription>();
    shared::<EventBus>();
    // The proto stream a Subscribe handler returns.
    let b = bus(10, 10);
    let sub = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    let mut protos = sub.map(|item| item.to_proto());
    b.publish(vm("a"));
    drop(b);
    let first = futures::executor::block_on(protos.next()).unwrap();
    assert_eq!(first.event.unwrap().sequence, 1);
    assert!(futures::executor::block_on(protos.next()).is_none());
}

/// With the fan-out task (bus created inside a runtime), async readers get every event in
/// order, and `publish` does not deliver on the publisher's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fan_out_task_delivers_to_async_readers() {
    const N: u64 = 5_000;
    let b = bus(10_000, 10_000);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let mut sub = b.subscribe(SubscriptionFilter::all(), None).unwrap();
            tokio::spawn(async move {
                let mut next = 1;
                while next <= N {
                    match sub.recv().await {
                        Some(SubscriptionItem::Event(e)) => {
                            assert_eq!(e.sequence, next);
                            next += 1;
                        }
                        other => panic!("{other:?}"),
                    }
                }
                next - 1
            })
        })
        .collect();
    for i in 0..N {
        b.publish(vm("a"));
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for r in readers {
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(30), r).await.unwrap().unwrap(),
            N
        );
    }
    let stats = b.stats();
    assert_eq!(stats.fanned_out, N);
    assert_eq!(stats.delivered, N * 50);
}

/// A publisher that never yields starves the fan-out task: publishers then fan out
/// themselves before the ring could evict an undelivered event, so nothing is lost.
#[tokio::test(flavor = "current_thread")]
async fn backpressure_keeps_a_starved_fan_out_gapless() {
    let b = bus(100, 10_000);
    let mut sub = b.subscribe(SubscriptionFilter::all(), None).unwrap();
    for _ in 0..1_000 {
        b.publish(vm("a"));
        assert!(b.stats().last_sequence - b.stats().fanned_out <= 50);
    }
    assert_eq!(drain(&mut sub), (1..=1_000).collect::<Vec<_>>());
    assert_eq!(b.stats().lagged, 0);
}

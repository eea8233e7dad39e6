//! The event bus: numbers every published event, keeps the last `retention` of them for
//! resume, and fans them out to subscribers.
//!
//! The rule: a publisher never waits for a subscriber. `publish` numbers the event and
//! appends it to the retention ring, and that is all it does on its own thread: the fan-out
//! (offering new events to the subscribers) is done by a fan-out task that takes every event
//! published since its last pass in one batch. Each subscriber has its own bounded queue;
//! the fan-out appends the batch's events its filter (and visibility predicate) wants and
//! wakes it once per batch. When a queue is full the subscriber is cut off: it is removed
//! from the bus, its queued events are released, and its next item is a
//! `Lagged { resume_from }` notice, after which its stream ends. `resume_from` is the last
//! sequence before the first event it did not get, so `subscribe(filter, Some(resume_from))`
//! continues without a gap (the released events are replayed from the retention ring, which
//! is larger than any queue). Nothing is ever dropped without the subscriber being told.
//!
//! Why a fan-out task: with 1,000 subscribers that each want every event, fanning out on the
//! publisher's thread costs ~1,000 queue pushes and wake-ups per `publish` (tens of
//! microseconds, milliseconds at the tail on a loaded machine). Batched, `publish` is O(1)
//! and each subscriber is touched once per batch instead of once per event.
//!
//! Why per-subscriber queues and not `tokio::sync::broadcast` or one shared ring with a
//! cursor per subscriber: with those every subscriber walks and wakes on every event, so
//! 1,000 `WatchVM` streams each watching one VM would cost 1,000 wake-ups per event, and a
//! narrow subscriber would be declared lagged because of traffic it does not even watch.
//! Here the fan-out evaluates the filter (a few comparisons) and touches only the
//! subscribers that want the event; a queue's bound counts only events its subscriber wants.
//! The queue is a mutex-guarded `VecDeque` so that the consumer takes its whole backlog in
//! one lock and one wake-up, and a cut-off subscriber's backlog is freed at once.
//!
//! Who fans out: the fan-out task (spawned when the bus is created inside a tokio runtime),
//! or the publisher itself when there is no task (a bus created outside a runtime, or whose
//! runtime is gone) or when the task has fallen `retention / 2` events behind (backpressure:
//! events are never evicted from the ring before they were fanned out). `try_recv` on an
//! empty queue while events wait to be fanned out runs a pass itself, so `try_recv` right
//! after `publish` sees the event whatever the scheduling. After each pass the task yields,
//! so under load the woken readers run before the next pass and batches grow.
//!
//! Memory is bounded whatever the subscribers do: the retention ring, plus per subscriber at
//! most `subscriber_buffer` queued `Arc<Event>` pointers and one batch of the same size being
//! read. A subscriber that never reads is cut off (and freed) once its queue is full.
//!
//! Ordering and resume: sequences are assigned under the ring lock; passes run one at a time
//! under the fan-out lock, in sequence order, so every subscriber sees events in sequence
//! order. `subscribe` holds the fan-out lock: it copies the replay (retained events after
//! `resume_from` up to the last fanned-out one) and registers for the following ones in one
//! critical section, so nothing falls between replay and live and nothing appears in both.
//!
//! The bus does no I/O. Sequences survive restarts because the owner passes the first
//! sequence to use to [`EventBus::new`] (restored from the store); the retained events do
//! not, so a client resuming from before the restart is told to resync.

use super::EventError;
use crate::model::{Event, EventDraft, SubscriptionFilter};
use futures::Stream;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// Decides whether a subscriber may see an event (e.g. its role's read permissions).
/// Runs on the fan-out path under the fan-out lock: it must be cheap, must not block and
/// must not panic.
pub type Visibility = Arc<dyn Fn(&Event) -> bool + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBusConfig {
    /// Events kept for resume. A client can resume from any sequence at most this many
    /// events behind the newest.
    pub retention: usize,
    /// Per-subscriber queue: how many wanted events a subscriber may fall behind before it
    /// is cut off with a lag notice. Keep it well below `retention` so that the point a
    /// lagged subscriber is told to resume from is still retained when it comes back.
    pub subscriber_buffer: usize,
    /// The sequence of the first event published (>= 1). The server passes the sequence
    /// after the highest one it ever handed out, restored from the store.
    pub first_sequence: u64,
}

impl Default for EventBusConfig {
    fn default() -> Self {
        EventBusConfig {
            retention: 10_000,
            subscriber_buffer: 1_024,
            first_sequence: 1,
        }
    }
}

/// One item of a subscription stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionItem {
    Event(Arc<Event>),
    /// This subscriber fell behind and was cut off; the stream ends after this item.
    /// Subscribe again with `resume_from` to continue exactly where it stopped.
    Lagged {
        resume_from: u64,
    },
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventBusStats {
    /// Sequence of the newest event; `first_sequence - 1` before any.
    pub last_sequence: u64,
    /// Oldest retained sequence; `None` while nothing is retained.
    pub oldest_retained: Option<u64>,
    pub retained: usize,
    pub subscribers: usize,
    pub published: u64,
    /// Event copies handed to subscriber queues.
    pub delivered: u64,
    /// Sequence of the newest event handed to the subscribers (equal to `last_sequence`
    /// once the fan-out caught up).
    pub fanned_out: u64,
    /// Subscribers cut off for lagging, since start.
    pub lagged: u64,
}

/// Cheap to clone: all clones publish into the same bus.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: EventBusConfig,
    /// Publisher side: numbering and retention. Held for a push, never during a fan-out.
    ring: Mutex<Ring>,
    /// Fan-out side: the subscribers. Held for one pass; lock order is `fanout`, then `ring`.
    fanout: Mutex<Fanout>,
    /// Sequence of the newest published event (written under the ring lock).
    head: AtomicU64,
    /// Sequence of the newest fanned-out event (written under the fan-out lock).
    fanned: AtomicU64,
    /// Wakes the fan-out task.
    notify: Arc<Notify>,
    /// The fan-out task is running; when not, publishers fan out themselves.
    task_alive: Arc<AtomicBool>,
}

struct Ring {
    /// Sequence the next event gets.
    next_sequence: u64,
    /// Retained events, oldest first, consecutive sequences ending at `next_sequence - 1`.
    events: VecDeque<Arc<Event>>,
    published: u64,
}

struct Fanout {
    subscribers: Vec<Subscriber>,
    next_subscriber_id: u64,
    /// Every event up to this sequence has been offered to every subscriber.
    fanned_upto: u64,
    delivered: u64,
    lagged: u64,
}

struct Subscriber {
    id: u64,
    filter: SubscriptionFilter,
    visible: Option<Visibility>,
    /// Events up to this sequence were replayed or predate the subscription: skip them.
    after: u64,
    queue: Arc<Mutex<Queue>>,
}

/// What the bus and one subscription share.
#[derive(Default)]
struct Queue {
    events: VecDeque<Arc<Event>>,
    waker: Option<Waker>,
    /// Set when cut off for lagging: the `resume_from` of the notice.
    lagged: Option<u64>,
    /// The bus is gone.
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every mutation under these locks is a single step, so the data stays consistent even
    // if a visibility predicate panicked while the lock was held.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wants(filter: &SubscriptionFilter, visible: Option<&Visibility>, event: &Event) -> bool {
    filter.matches(event) && visible.is_none_or(|v| v(event))
}

/// Clears `task_alive` when the fan-out task ends, however it ends (runtime shut down).
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl EventBus {
    /// A bus with the given configuration; `retention` and `subscriber_buffer` are at least
    /// 1 and `first_sequence` at least 1. Inside a tokio runtime it spawns its fan-out task
    /// there (ending when the bus is dropped); outside one, publishers fan out themselves.
    pub fn new(config: EventBusConfig) -> Self {
        let config = EventBusConfig {
            retention: config.retention.max(1),
            subscriber_buffer: config.subscriber_buffer.max(1),
            first_sequence: config.first_sequence.max(1),
        };
        let last = config.first_sequence - 1;
        let inner = Arc::new(Inner {
            config,
            ring: Mutex::new(Ring {
                next_sequence: config.first_sequence,
                events: VecDeque::with_capacity(config.retention),
                published: 0,
            }),
            fanout: Mutex::new(Fanout {
                subscribers: Vec::new(),
                next_subscriber_id: 1,
                fanned_upto: last,
                delivered: 0,
                lagged: 0,
            }),
            head: AtomicU64::new(last),
            fanned: AtomicU64::new(last),
            notify: Arc::new(Notify::new()),
            task_alive: Arc::new(AtomicBool::new(false)),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            inner.task_alive.store(true, Ordering::Release);
            let guard = AliveGuard(Arc::clone(&inner.task_alive));
            let notify = Arc::clone(&inner.notify);
            let weak = Arc::downgrade(&inner);
            rt.spawn(async move {
                let _guard = guard;
                loop {
                    notify.notified().await;
                    let Some(inner) = weak.upgrade() else { return };
                    inner.fan_out();
                    drop(inner);
                    // Let the woken readers run before the next pass: under load the
                    // batches grow instead of every reader being woken for every event.
                    tokio::task::yield_now().await;
                }
            });
        }
        EventBus { inner }
    }

    pub fn config(&self) -> EventBusConfig {
        self.inner.config
    }

    /// Numbers the event and retains it; the subscribers that want it get it from the
    /// fan-out. Never waits for a subscriber. Returns the sequence assigned.
    pub fn publish(&self, draft: EventDraft) -> u64 {
        let inner = &*self.inner;
        let task = inner.task_alive.load(Ordering::Acquire);
        // Backpressure: the ring must never evict an event that was not fanned out yet.
        let backlog = inner.head.load(Ordering::Acquire) - inner.fanned.load(Ordering::Acquire);
        if task && backlog as usize >= (inner.config.retention / 2).max(1) {
            inner.fan_out();
        }
        let mut ring = lock(&inner.ring);
        let sequence = ring.next_sequence;
        ring.next_sequence += 1;
        // The evicted event (often its last reference) is freed after the lock is released.
        let evicted = if ring.events.len() == inner.config.retention {
            ring.events.pop_front()
        } else {
            None
        };
        ring.events.push_back(Arc::new(draft.into_event(sequence)));
        ring.published += 1;
        inner.head.store(sequence, Ordering::Release);
        drop(ring);
        drop(evicted);
        if task {
            inner.notify.notify_one();
        } else {
            inner.fan_out();
        }
        sequence
    }

    /// Subscribes to events matching `filter`. With `resume_from: Some(s)` (the last
    /// sequence the client saw), first replays the retained matching events after `s`,
    /// then continues live, without gap or duplicate. `None` (or `Some(0)`): live events
    /// only. Fails with [`EventError::ResyncRequired`] when events after `s` are no longer
    /// retained, and [`EventError::SequenceAhead`] when `s` was never published.
    pub fn subscribe(&self, filter: SubscriptionFilter, resume_from: Option<u64>) -> Result<Subscription, EventError> {
        self.subscribe_with(filter, resume_from, None)
    }

    /// [`subscribe`](Self::subscribe) with a visibility predicate: events it rejects are
    /// neither replayed nor delivered (and do not count against the subscriber's buffer).
    /// The replay is copied under the bus locks (at most `retention` pointers).
    pub fn subscribe_with(
        &self,
        filter: SubscriptionFilter,
        resume_from: Option<u64>,
        visible: Option<Visibility>,
    ) -> Result<Subscription, EventError> {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let mut fan = lock(&self.inner.fanout);
        let ring = lock(&self.inner.ring);
        let last = ring.next_sequence - 1;
        let mut replay = VecDeque::new();
        let after = match resume_from.filter(|s| *s > 0) {
            Some(from) => {
                if from > last {
                    return Err(EventError::SequenceAhead { requested: from, last });
                }
                // Retained events are consecutive and end at `last`; with none retained the
                // oldest we could replay is the next one.
                let oldest = ring.events.front().map_or(ring.next_sequence, |e| e.sequence);
                if from + 1 < oldest {
                    return Err(EventError::ResyncRequired {
                        requested: from,
                        oldest_retained: oldest,
                    });
                }
                // Replay what the fan-out already passed; it delivers the rest.
                let skip = (from + 1 - oldest) as usize;
                replay.extend(
                    ring.events
                        .iter()
                        .skip(skip)
                        .take_while(|e| e.sequence <= fan.fanned_upto)
                        .filter(|e| wants(&filter, visible.as_ref(), e))
                        .cloned(),
                );
                from.max(fan.fanned_upto)
            }
            None => last,
        };
        drop(ring);
        let id = fan.next_subscriber_id;
        fan.next_subscriber_id += 1;
        fan.subscribers.push(Subscriber {
            id,
            filter,
            visible,
            after,
            queue: Arc::clone(&queue),
        });
        drop(fan);
        Ok(Subscription {
            id,
            bus: Arc::downgrade(&self.inner),
            batch: replay,
            queue,
            last_sequence: match resume_from {
                Some(from) if from > 0 => from,
                _ => last,
            },
            finished: false,
        })
    }

    /// Sequence of the newest event (`first_sequence - 1` before any): what the server
    /// persists so sequences survive a restart.
    pub fn last_sequence(&self) -> u64 {
        lock(&self.inner.ring).next_sequence - 1
    }

    pub fn stats(&self) -> EventBusStats {
        let fan = lock(&self.inner.fanout);
        let ring = lock(&self.inner.ring);
        EventBusStats {
            last_sequence: ring.next_sequence - 1,
            oldest_retained: ring.events.front().map(|e| e.sequence),
            retained: ring.events.len(),
            subscribers: fan.subscribers.len(),
            published: ring.published,
            delivered: fan.delivered,
            fanned_out: fan.fanned_upto,
            lagged: fan.lagged,
        }
    }

    /// Retained events after `after` matching `filter` (newest last), at most `limit`:
    /// for a "recent events" view without subscribing.
    pub fn recent(&self, filter: &SubscriptionFilter, after: u64, limit: usize) -> Vec<Arc<Event>> {
        let ring = lock(&self.inner.ring);
        let mut out: Vec<Arc<Event>> = ring
            .events
            .iter()
            .rev()
            .filter(|e| e.sequence > after && filter.matches(e))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}

/// A handle that does not keep the bus alive (for background tasks).
#[derive(Clone)]
pub struct WeakEventBus(Weak<Inner>);

impl WeakEventBus {
    pub fn upgrade(&self) -> Option<EventBus> {
        self.0.upgrade().map(|inner| EventBus { inner })
    }
    /// [`EventBus::last_sequence`], `None` once the bus is gone.
    pub fn last_sequence(&self) -> Option<u64> {
        self.upgrade().map(|b| b.last_sequence())
    }
}

impl EventBus {
    pub fn downgrade(&self) -> WeakEventBus {
        WeakEventBus(Arc::downgrade(&self.inner))
    }
}

impl Inner {
    fn behind(&self) -> bool {
        self.fanned.load(Ordering::Acquire) < self.head.load(Ordering::Acquire)
    }

    /// One fan-out pass, waiting for a pass in progress to finish first.
    fn fan_out(&self) {
        let fan = lock(&self.fanout);
        self.pass(fan);
    }

    /// Offers every event published since the last pass to every subscriber, then wakes
    /// the subscribers that got something (after releasing the lock).
    fn pass(&self, mut fan: MutexGuard<'_, Fanout>) {
        let cap = self.config.subscriber_buffer;
        let batch: Vec<Arc<Event>> = {
            let ring = lock(&self.ring);
            let head = ring.next_sequence - 1;
            if fan.fanned_upto >= head {
                return;
            }
            let oldest = ring.events.front().map_or(ring.next_sequence, |e| e.sequence);
            // Backpressure in `publish` keeps unfanned events retained; should they ever be
            // evicted, the gap is reported as lag below rather than skipped silently.
            let skip = (fan.fanned_upto + 1).saturating_sub(oldest) as usize;
            ring.events.iter().skip(skip).cloned().collect()
        };
        let Some(first) = batch.first().map(|e| e.sequence) else {
            return;
        };
        let gap = first > fan.fanned_upto + 1;
        let fanned_upto = fan.fanned_upto;
        let mut delivered = 0u64;
        let mut cut_off = 0u64;
        let mut released = Vec::new();
        let mut wakers = Vec::new();
        fan.subscribers.retain(|sub| {
            let mut q = lock(&sub.queue);
            let mut keep = true;
            let mut got = false;
            if gap && sub.after < first - 1 {
                // Not reached in practice (see above): tell the subscriber instead of a gap.
                q.lagged = Some(sub.after.max(fanned_upto));
                keep = false;
            }
            for event in batch.iter() {
                if !keep {
                    break;
                }
                if event.sequence <= sub.after || !wants(&sub.filter, sub.visible.as_ref(), event) {
                    continue;
                }
                if q.events.len() < cap {
                    q.events.push_back(Arc::clone(event));
                    delivered += 1;
                    got = true;
                    continue;
                }
                // Release the backlog and tell the subscriber to resume right before it.
                // On a fresh bus the backlog may start at sequence 1, and 0 cannot be
                // resumed from (it means "live only"): then the backlog is delivered first
                // and the notice points right before this event.
                let resume_from = match q.events.front().map(|e| e.sequence) {
                    Some(first) if first > 1 => {
                        released.push(std::mem::take(&mut q.events));
                        first - 1
                    }
                    _ => event.sequence - 1,
                };
                q.lagged = Some(resume_from);
                tracing::warn!(
                    subscriber = sub.id,
                    resume_from,
                    "event subscriber fell behind; cut off"
                );
                keep = false;
            }
            if !keep {
                cut_off += 1;
            }
            if got || !keep {
                wakers.extend(q.waker.take());
            }
            keep
        });
        let last = batch.last().map_or(fanned_upto, |e| e.sequence);
        fan.fanned_upto = last;
        fan.delivered += delivered;
        fan.lagged += cut_off;
        self.fanned.store(last, Ordering::Release);
        drop(fan);
        for w in wakers {
            w.wake();
        }
        drop(released);
    }
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Inner {
    /// The last handle to the bus is gone: what was published is fanned out, then every
    /// open stream ends after its queue.
    fn drop(&mut self) {
        self.fan_out();
        self.notify.notify_one(); // lets the fan-out task see the bus is gone and end
        let fan = self.fanout.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        for sub in fan.subscribers.drain(..) {
            let mut q = lock(&sub.queue);
            q.closed = true;
            let waker = q.waker.take();
            drop(q);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// A live subscription: a [`Stream`] of [`SubscriptionItem`]s (also [`recv`](Self::recv)).
/// Ends after a `Lagged` item, or when the bus is dropped. Dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    bus: Weak<Inner>,
    /// Events taken from the queue (or replayed) and not yet yielded.
    batch: VecDeque<Arc<Event>>,
    queue: Arc<Mutex<Queue>>,
    last_sequence: u64,
    finished: bool,
}

impl Subscription {
    /// The next item; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<SubscriptionItem> {
        std::future::poll_fn(|cx| self.poll_item(Some(cx))).await
    }

    /// The next item if one is ready now, without waiting for a publisher. An event
    /// published before the call is seen: if the fan-out task has not delivered it yet,
    /// this runs the fan-out pass itself (waiting for one in progress), which makes it a
    /// tool for tests and synchronous callers; async readers use [`recv`](Self::recv) or
    /// the `Stream`.
    pub fn try_recv(&mut self) -> Option<SubscriptionItem> {
        match self.poll_item(None) {
            Poll::Ready(item) => item,
            Poll::Pending => None,
        }
    }

    /// Sequence of the last event this subscription yielded (or the resume point before
    /// any): what to resume from after a disconnect.
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Events delivered to this subscription and not yet read.
    pub fn pending(&self) -> usize {
        self.batch.len() + lock(&self.queue).events.len()
    }

    /// Takes the queue's backlog, or the end of the stream; `None` when there is nothing.
    fn take(&mut self) -> Option<Poll<Option<SubscriptionItem>>> {
        let mut q = lock(&self.queue);
        if !q.events.is_empty() {
            // Take the whole backlog in one go; the queue keeps our empty buffer.
            std::mem::swap(&mut self.batch, &mut q.events);
            None
        } else if let Some(resume_from) = q.lagged {
            self.finished = true;
            Some(Poll::Ready(Some(SubscriptionItem::Lagged { resume_from })))
        } else if q.closed {
            self.finished = true;
            Some(Poll::Ready(None))
        } else {
            Some(Poll::Pending)
        }
    }

    /// With `cx: None`, never registers a waker (try_recv).
    fn poll_item(&mut self, cx: Option<&mut Context<'_>>) -> Poll<Option<SubscriptionItem>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.batch.is_empty() {
            match self.take() {
                None => {}
                Some(Poll::Ready(item)) => return Poll::Ready(item),
                Some(Poll::Pending) => {
                    // try_recv: events published before the call may still wait for the
                    // fan-out task; run the pass here so they are seen. (An async reader
                    // never does: with 1,000 readers each running passes, they would wake
                    // each other in a storm. The task wakes it.)
                    if cx.is_none()
                        && let Some(inner) = self.bus.upgrade().filter(|i| i.behind())
                    {
                        inner.fan_out();
                    }
                    let mut q = lock(&self.queue);
                    if !q.events.is_empty() || q.lagged.is_some() || q.closed {
                        drop(q);
                        if let Some(Poll::Ready(item)) = self.take() {
                            return Poll::Ready(item);
                        }
                    } else {
                        // Registered under the queue lock: a pass that queues an event
                        // after this sees the waker.
                        if let Some(cx) = cx
                            && !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
                        {
                            q.waker = Some(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                }
            }
        }
        match self.batch.pop_front() {
            Some(event) => {
                self.last_sequence = event.sequence;
                Poll::Ready(Some(SubscriptionItem::Event(event)))
            }
            // Not reached: the batch was non-empty or has just been refilled.
            None => Poll::Ready(None),
        }
    }
}

impl Stream for Subscription {
    type Item = SubscriptionItem;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubscriptionItem>> {
        self.get_mut().poll_item(Some(cx))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.bus.upgrade() {
            let mut fan = lock(&inner.fanout);
            if let Some(i) = fan.subscribers.iter().position(|s| s.id == self.id) {
                fan.subscribers.swap_remove(i);
            }
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("last_sequence", &self.last_sequence)
            .field("pending", &self.pending())
            .field("finished", &self.finished)
            .finish()
    }
}

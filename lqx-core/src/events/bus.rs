//! The event bus: numbers every published event, keeps the last `retention` of them for
//! resume, and fans them out to subscribers.
//!
//! The rule: a publisher never waits for a subscriber. Each subscriber has its own bounded
//! queue; `publish` appends the event to the queue of every subscriber whose filter (and
//! visibility predicate) matches. When a queue is full the subscriber is cut off: it is
//! removed from the bus, its queued events are released, and its next item is a
//! `Lagged { resume_from }` notice, after which its stream ends. `resume_from` is the last
//! sequence before the first event it did not get, so `subscribe(filter, Some(resume_from))`
//! continues without a gap (the released events are replayed from the retention ring, which
//! is larger than any queue). Nothing is ever dropped without the subscriber being told.
//!
//! Why per-subscriber queues and not `tokio::sync::broadcast` or one shared ring with a
//! cursor per subscriber: with those every subscriber walks and wakes on every event, so
//! 1,000 `WatchVM` streams each watching one VM would cost 1,000 wake-ups per event (10
//! million per second at 10,000 events/s), and a narrow subscriber would be declared lagged
//! because of traffic it does not even watch. Here the publisher evaluates the filter (a few
//! comparisons) and touches only the subscribers that want the event; a queue's bound counts
//! only events its subscriber wants. The queue is a mutex-guarded `VecDeque` rather than a
//! `tokio::sync::mpsc` channel so that (1) the consumer takes the whole backlog in one lock
//! (one wake-up and one lock per batch, not per event) and (2) a cut-off subscriber's backlog
//! is freed at once instead of staying pinned until its stream is dropped.
//!
//! Memory is bounded whatever the subscribers do: the retention ring, plus per subscriber at
//! most `subscriber_buffer` queued `Arc<Event>` pointers and one batch of the same size being
//! read. A subscriber that never reads is cut off (and freed) once its queue is full.
//!
//! Ordering and resume: sequence assignment, the retention ring and the fan-out happen
//! under one mutex, so every subscriber sees events in sequence order, and `subscribe`
//! copies the replay (retained events after `resume_from`) and registers for live events in
//! the same critical section: nothing published can fall between replay and live, and
//! nothing appears in both.
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
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

/// Decides whether a subscriber may see an event (e.g. its role's read permissions).
/// Runs on the publisher's path under the bus lock: it must be cheap, must not block and
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
    state: Mutex<State>,
}

struct State {
    /// Sequence the next event gets.
    next_sequence: u64,
    /// Retained events, oldest first, consecutive sequences ending at `next_sequence - 1`.
    ring: VecDeque<Arc<Event>>,
    subscribers: Vec<Subscriber>,
    next_subscriber_id: u64,
    published: u64,
    delivered: u64,
    lagged: u64,
}

struct Subscriber {
    id: u64,
    filter: SubscriptionFilter,
    visible: Option<Visibility>,
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

impl EventBus {
    /// A bus with the given configuration; `retention` and `subscriber_buffer` are at least
    /// 1 and `first_sequence` at least 1.
    pub fn new(config: EventBusConfig) -> Self {
        let config = EventBusConfig {
            retention: config.retention.max(1),
            subscriber_buffer: config.subscriber_buffer.max(1),
            first_sequence: config.first_sequence.max(1),
        };
        let state = State {
            next_sequence: config.first_sequence,
            ring: VecDeque::with_capacity(config.retention),
            subscribers: Vec::new(),
            next_subscriber_id: 1,
            published: 0,
            delivered: 0,
            lagged: 0,
        };
        EventBus {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
            }),
        }
    }

    pub fn config(&self) -> EventBusConfig {
        self.inner.config
    }

    /// Numbers the event, retains it and offers it to every interested subscriber, without
    /// ever waiting for one. Returns the sequence assigned.
    pub fn publish(&self, draft: EventDraft) -> u64 {
        let cap = self.inner.config.subscriber_buffer;
        let mut st = lock(&self.inner.state);
        let sequence = st.next_sequence;
        st.next_sequence += 1;
        let event = Arc::new(draft.into_event(sequence));
        // The evicted event (often its last reference) is freed after the lock is released.
        let evicted = if st.ring.len() == self.inner.config.retention {
            st.ring.pop_front()
        } else {
            None
        };
        st.ring.push_back(Arc::clone(&event));
        st.published += 1;

        let mut delivered = 0u64;
        let mut cut_off = 0u64;
        let mut released = Vec::new();
        st.subscribers.retain(|sub| {
            if !wants(&sub.filter, sub.visible.as_ref(), &event) {
                return true;
            }
            let mut q = lock(&sub.queue);
            let keep = if q.events.len() < cap {
                q.events.push_back(Arc::clone(&event));
                delivered += 1;
                true
            } else {
                // Release the backlog and tell the subscriber to resume right before it.
                // On a fresh bus the backlog may start at sequence 1, and 0 cannot be
                // resumed from (it means "live only"): then the backlog is delivered first
                // and the notice points right before this event.
                let resume_from = match q.events.front().map(|e| e.sequence) {
                    Some(first) if first > 1 => {
                        released.push(std::mem::take(&mut q.events));
                        first - 1
                    }
                    _ => sequence - 1,
                };
                q.lagged = Some(resume_from);
                cut_off += 1;
                tracing::warn!(
                    subscriber = sub.id,
                    resume_from,
                    "event subscriber fell behind; cut off"
                );
                false
            };
            let waker = q.waker.take();
            drop(q);
            if let Some(w) = waker {
                w.wake();
            }
            keep
        });
        st.delivered += delivered;
        st.lagged += cut_off;
        drop(st);
        drop(evicted);
        drop(released);
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
    /// The replay is copied under the bus lock (at most `retention` pointers).
    pub fn subscribe_with(
        &self,
        filter: SubscriptionFilter,
        resume_from: Option<u64>,
        visible: Option<Visibility>,
    ) -> Result<Subscription, EventError> {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let mut st = lock(&self.inner.state);
        let last = st.next_sequence - 1;
        let mut replay = VecDeque::new();
        if let Some(from) = resume_from.filter(|s| *s > 0) {
            if from > last {
                return Err(EventError::SequenceAhead { requested: from, last });
            }
            // Retained events are consecutive and end at `last`; with none retained the
            // oldest we could replay is the next one.
            let oldest = st.ring.front().map_or(st.next_sequence, |e| e.sequence);
            if from + 1 < oldest {
                return Err(EventError::ResyncRequired {
                    requested: from,
                    oldest_retained: oldest,
                });
            }
            let skip = (from + 1 - oldest) as usize;
            replay.extend(
                st.ring
                    .iter()
                    .skip(skip)
                    .filter(|e| wants(&filter, visible.as_ref(), e))
                    .cloned(),
            );
        }
        let id = st.next_subscriber_id;
        st.next_subscriber_id += 1;
        st.subscribers.push(Subscriber {
            id,
            filter,
            visible,
            queue: Arc::clone(&queue),
        });
        drop(st);
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
        lock(&self.inner.state).next_sequence - 1
    }

    pub fn stats(&self) -> EventBusStats {
        let st = lock(&self.inner.state);
        EventBusStats {
            last_sequence: st.next_sequence - 1,
            oldest_retained: st.ring.front().map(|e| e.sequence),
            retained: st.ring.len(),
            subscribers: st.subscribers.len(),
            published: st.published,
            delivered: st.delivered,
            lagged: st.lagged,
        }
    }

    /// Retained events after `after` matching `filter` (newest last), at most `limit`:
    /// for a "recent events" view without subscribing.
    pub fn recent(&self, filter: &SubscriptionFilter, after: u64, limit: usize) -> Vec<Arc<Event>> {
        let st = lock(&self.inner.state);
        let mut out: Vec<Arc<Event>> = st
            .ring
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

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Inner {
    /// The last handle to the bus is gone: every open stream ends after its queue.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        for sub in st.subscribers.drain(..) {
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

    /// The next item if one is ready now, without waiting.
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

    /// With `cx: None`, never registers a waker (try_recv).
    fn poll_item(&mut self, cx: Option<&mut Context<'_>>) -> Poll<Option<SubscriptionItem>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.batch.is_empty() {
            let mut q = lock(&self.queue);
            if !q.events.is_empty() {
                // Take the whole backlog in one go; the queue keeps our empty buffer.
                std::mem::swap(&mut self.batch, &mut q.events);
            } else if let Some(resume_from) = q.lagged {
                self.finished = true;
                return Poll::Ready(Some(SubscriptionItem::Lagged { resume_from }));
            } else if q.closed {
                self.finished = true;
                return Poll::Ready(None);
            } else {
                if let Some(cx) = cx
                    && !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
                {
                    q.waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
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
            let mut st = lock(&inner.state);
            if let Some(i) = st.subscribers.iter().position(|s| s.id == self.id) {
                st.subscribers.swap_remove(i);
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

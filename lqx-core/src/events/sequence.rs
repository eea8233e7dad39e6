//! Event sequences that survive restarts: a high-water mark in the store.
//!
//! The rule: the store holds a sequence at least as high as any this server ever handed
//! out. At start the bus begins right after it, and the mark is moved a block
//! (`BLOCK`, one million) ahead before anything is published; while running, the mark is
//! moved another block ahead whenever the bus gets within half a block of it. Writing once
//! per block instead of once per event keeps publishing free of I/O; after a crash the
//! unused rest of the block is skipped, so a sequence is never handed out twice and a client
//! resuming from before the restart is told to resync instead of seeing other events under
//! numbers it already saw.

use super::EventBus;
use crate::store::Store;
use std::time::Duration;

/// The kv key of the high-water mark.
pub const SEQUENCE_KEY: &str = "events.sequence_reserved";
/// Sequences reserved per store write.
pub const BLOCK: u64 = 1_000_000;

/// The reserved range of this run: `first..=reserved`.
#[derive(Debug, Clone)]
pub struct SequenceReservation {
    store: Store,
    first: u64,
    reserved: u64,
    version: i64,
}

impl SequenceReservation {
    /// Reads the mark and reserves the first block after it.
    pub async fn start(store: &Store) -> crate::Result<SequenceReservation> {
        for _ in 0..8 {
            let (mark, version) = match store.kv_get(SEQUENCE_KEY).await? {
                Some((v, version)) => (
                    v.trim().parse::<u64>().map_err(|_| {
                        crate::Error::internal(anyhow::anyhow!("stored {SEQUENCE_KEY} {v:?} is not a number"))
                    })?,
                    version,
                ),
                None => (0, 0),
            };
            let reserved = mark + BLOCK;
            if store.kv_cas(SEQUENCE_KEY, version, &reserved.to_string()).await? {
                return Ok(SequenceReservation {
                    store: store.clone(),
                    first: mark + 1,
                    reserved,
                    version: version + 1,
                });
            }
        }
        Err(crate::Error::aborted("the event sequence mark is changing too fast"))
    }

    /// The sequence the bus must start at (`EventBusConfig::first_sequence`).
    pub fn first_sequence(&self) -> u64 {
        self.first
    }

    /// The highest sequence reserved so far.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Moves the mark a block ahead if `last_published` is within half a block of it.
    /// Returns whether it moved.
    pub async fn extend_if_needed(&mut self, last_published: u64) -> crate::Result<bool> {
        if last_published + BLOCK / 2 < self.reserved {
            return Ok(false);
        }
        let next = last_published.max(self.reserved) + BLOCK;
        // Another writer of the same key (a second server on the same database) is fine:
        // re-read and move from the higher of the two marks.
        for _ in 0..8 {
            if self.store.kv_cas(SEQUENCE_KEY, self.version, &next.to_string()).await? {
                self.version += 1;
                self.reserved = next;
                return Ok(true);
            }
            let (v, version) = self
                .store
                .kv_get(SEQUENCE_KEY)
                .await?
                .ok_or_else(|| crate::Error::internal(anyhow::anyhow!("{SEQUENCE_KEY} disappeared")))?;
            let theirs: u64 = v.trim().parse().unwrap_or(0);
            self.version = version;
            if theirs >= next {
                self.reserved = self.reserved.max(last_published);
                return Ok(false);
            }
        }
        Err(crate::Error::aborted("the event sequence mark is changing too fast"))
    }

    /// Checks `bus` every `every` and keeps the mark ahead of it, until the bus is dropped.
    pub fn keep_ahead(mut self, bus: &EventBus, every: Duration) -> tokio::task::JoinHandle<()> {
        let bus = bus.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(last) = bus.last_sequence() else { return };
                if let Err(e) = self.extend_if_needed(last).await {
                    tracing::error!(error = %e, "moving the event sequence mark failed; retrying");
                }
            }
        })
    }
}

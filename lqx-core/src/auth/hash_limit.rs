//! A cap on concurrent password hashing: each argon2 check holds 19 MiB and a core for tens
//! of milliseconds, so without a cap a burst of logins takes as many blocking threads (and
//! their memory) as tokio allows.
//!
//! Rule: as many checks run at once as there are cores; up to `2 x cores` more wait their
//! turn; any further request is refused at once with `resource_exhausted` and a retry-after
//! of one second, before any hashing. The slot is held by the blocking task itself, so a
//! request dropped while its check runs does not free room for another one early.

use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AuthError;

/// Seconds a refused caller is told to wait.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Running and waiting slots.
#[derive(Debug)]
pub struct HashLimiter {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

/// The right to run one check; give it to the blocking task.
#[derive(Debug)]
pub struct HashSlot {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

impl HashLimiter {
    pub fn new(running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        HashLimiter {
            admitted: Arc::new(Semaphore::new(running + waiting)),
            running: Arc::new(Semaphore::new(running)),
        }
    }

    /// Waits for a slot if there is room in the queue; refuses at once otherwise.
    pub async fn acquire(&self) -> Result<HashSlot, AuthError> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| AuthError::Busy {
            retry_after: RETRY_AFTER_SECS,
        })?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Busy {
                retry_after: RETRY_AFTER_SECS,
            })?;
        Ok(HashSlot {
            _admitted: admitted,
            _running: running,
        })
    }
}

/// The process-wide limiter (the cores are process-wide too).
pub fn global() -> &'static HashLimiter {
    static L: OnceLock<HashLimiter> = OnceLock::new();
    L.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        HashLimiter::new(cores, 2 * cores)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_cores_queues_a_few_and_refuses_the_rest() {
        let l = HashLimiter::new(2, 1);
        let a = l.acquire().await.unwrap();
        let _b = l.acquire().await.unwrap();
        // The third waits for a running slot.
        let waiting = l.acquire();
        tokio::pin!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        // The fourth finds the queue full.
        match l.acquire().await {
            Err(AuthError::Busy { retry_after }) => assert_eq!(retry_after, RETRY_AFTER_SECS),
            other => panic!("expected busy, got {other:?}"),
        }
        drop(a);
        let _c = waiting.await.unwrap();
        // Refusal is an answer with a retry-after, not an internal error.
        let e: crate::Error = AuthError::Busy { retry_after: 1 }.into();
        assert_eq!((e.kind, e.retry_after), (crate::ErrorKind::ResourceExhausted, Some(1)));
    }
}

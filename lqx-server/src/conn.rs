//! Connection hygiene: an idle timeout on the socket itself, a limit on open connections
//! below the process's file-descriptor limit, and an accept loop that backs off (and logs
//! once in a while, not once per failure) when the process is out of descriptors.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests of one connection still being answered (a response body still streaming
/// counts): a connection with none is idle.
#[derive(Clone, Default)]
pub struct Active(Arc<AtomicUsize>);

/// One request of a connection, until dropped.
pub struct ActiveGuard(Arc<AtomicUsize>);

impl Active {
    pub fn begin(&self) -> ActiveGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that reads as closed once nothing has moved over it for `idle` while no request
/// of its connection is being answered: hyper then closes the connection. This covers what
/// hyper's own timers do not: a client that connects and never sends a byte, and idle
/// HTTP/2 connections.
pub struct IdleIo<T> {
    inner: T,
    idle: Duration,
    active: Active,
    deadline: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    pub fn new(inner: T, idle: Duration, active: Active) -> Self {
        IdleIo {
            inner,
            idle,
            active,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => loop {
                if self.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if self.active.idle() {
                    // End of stream: hyper closes the connection.
                    return Poll::Ready(Ok(()));
                }
                // Busy answering: look again one idle period later.
                self.touch();
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that keeps its connection's request count while it streams.
pub struct Tracked<B> {
    inner: B,
    _active: ActiveGuard,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, active: ActiveGuard) -> Self {
        Tracked { inner, _active: active }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Descriptors kept free for the database, log files, host connections and the like.
const FD_RESERVE: usize = 256;

/// The default connection limit: three quarters of the open-file limit less a reserve,
/// at most 10,000 (Linux reads the limit from /proc; elsewhere 1024 is assumed).
pub fn default_max_connections() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| open_files_limit(&t))
        .unwrap_or(1024);
    (limit.saturating_sub(FD_RESERVE) * 3 / 4).clamp(16, 10_000)
}

/// The soft "Max open files" of a /proc/<pid>/limits text.
fn open_files_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(usize::MAX);
    }
    soft.parse().ok()
}

/// True for accept errors that mean the process or system is out of something (descriptors,
/// memory): waiting helps, retrying at once only spins.
pub fn is_resource_error(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// The back-off after `failures` resource errors in a row: 10 ms doubling to 1 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_millis(10u64.saturating_mul(1 << failures.min(7))).min(Duration::from_secs(1))
}

/// Lets a message through at most once per `every`, counting the rest.
pub struct LogEvery {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogEvery {
    pub fn new(every: Duration) -> Self {
        LogEvery {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log now, `n` messages were held back since the last one.
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn limits_backoff_and_log_rate() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(open_files_limit(text), Some(1024));
        assert!(default_max_connections() >= 16);
        assert_eq!(backoff(0), Duration::from_millis(10));
        assert_eq!(backoff(3), Duration::from_millis(80));
        assert_eq!(backoff(30), Duration::from_secs(1));
        assert!(is_resource_error(&io::Error::from_raw_os_error(24)));
        assert!(!is_resource_error(&io::Error::from_raw_os_error(103)));
        let t = Instant::now();
        let mut l = LogEvery::new(Duration::from_secs(10));
        assert_eq!(l.check(t), Some(0));
        assert_eq!(l.check(t + Duration::from_secs(1)), None);
        assert_eq!(l.check(t + Duration::from_secs(2)), None);
        assert_eq!(l.check(t + Duration::from_secs(11)), Some(2));
    }

    /// An idle socket reads as closed after the idle time, unless a request is in progress.
    #[tokio::test(start_paused = true)]
    async fn idle_sockets_end_but_busy_ones_do_not() {
        let (client, server) = tokio::io::duplex(64);
        let active = Active::default();
        let mut io = IdleIo::new(server, Duration::from_secs(30), active.clone());
        let busy = active.begin();
        let mut buf = [0u8; 8];
        // Busy: still open after several idle periods.
        let read = tokio::time::timeout(Duration::from_secs(100), io.read(&mut buf)).await;
        assert!(read.is_err(), "a connection with a request in progress stays open");
        drop(busy);
        let started = Instant::now();
        assert_eq!(io.read(&mut buf).await.unwrap(), 0, "idle: end of stream");
        assert!(started.elapsed() <= Duration::from_secs(30));
        // Traffic resets the clock.
        let (mut client2, server2) = tokio::io::duplex(64);
        let mut io = IdleIo::new(server2, Duration::from_secs(30), Active::default());
        tokio::time::advance(Duration::from_secs(20)).await;
        client2.write_all(b"x").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        let started = Instant::now();
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        drop(client);
    }
}

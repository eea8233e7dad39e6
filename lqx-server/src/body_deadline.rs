//! A request body that must arrive in full before a deadline: a client sending its body a
//! few bytes at a time holds a concurrency permit at most this long, whatever the handler's
//! own time limit.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The error of a body that was still arriving at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

pub struct DeadlineBody<B> {
    inner: B,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
            done: false,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => Poll::Ready(Some(r.map_err(Into::into))),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// True when `e` (as the body's reader got it) is a body deadline.
pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that never finishes errs at its deadline; one that finishes is untouched.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_errs_at_the_deadline() {
        use futures::StreamExt;
        let stalled = futures::stream::iter([Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(
            b"abc",
        )))])
        .chain(futures::stream::pending());
        let mut b = DeadlineBody::new(http_body_util::StreamBody::new(stalled), Duration::from_secs(10));
        let first = b.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "abc");
        let started = tokio::time::Instant::now();
        let e = b.frame().await.unwrap().unwrap_err();
        assert!(is_timeout(&*e), "{e}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));

        let full = DeadlineBody::new(
            http_body_util::Full::new(Bytes::from_static(b"x")),
            Duration::from_secs(1),
        );
        assert_eq!(full.collect().await.unwrap().to_bytes(), "x");
    }
}

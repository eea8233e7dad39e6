//! Graceful shutdown of long streams (watch/subscribe): once shutdown begins, each open
//! gRPC stream ends at its next frame boundary with `unavailable: server shutting down`
//! in its trailers, so clients learn at once and reconnect (resuming from their last
//! sequence) instead of holding the connection, and every new call, until the drain
//! timeout.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::watch;

/// Fires once for the whole server.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Sender<bool>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown(watch::channel(false).0)
    }
}

impl Shutdown {
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    fn signal(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            // A dropped sender ends the server too.
            let _ = rx.wait_for(|down| *down).await;
        })
    }

    /// `inner` (a streaming gRPC response body) until shutdown, then the closing trailers.
    pub fn body<B>(&self, inner: B) -> DrainBody<B> {
        DrainBody {
            inner,
            signal: self.signal(),
            done: false,
        }
    }
}

pub struct DrainBody<B> {
    inner: B,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    done: bool,
}

fn closing_trailers() -> http::HeaderMap {
    let mut t = http::HeaderMap::new();
    t.insert("grpc-status", http::HeaderValue::from_static("14")); // UNAVAILABLE
    t.insert(
        "grpc-message",
        http::HeaderValue::from_static("server%20shutting%20down"),
    );
    t
}

impl<B> Body for DrainBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

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
            Poll::Ready(Some(Ok(f))) => {
                if f.is_trailers() {
                    this.done = true;
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Pending => match this.signal.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Ok(Frame::trailers(closing_trailers()))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that never sends anything, like a watch with no events.
    struct Idle;
    impl Body for Idle {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn an_idle_stream_ends_with_unavailable_at_shutdown() {
        let sd = Shutdown::default();
        let mut body = sd.body(Idle);
        let waiting = tokio::spawn(async move { body.frame().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        sd.begin();
        let frame = waiting.await.unwrap().unwrap().unwrap();
        let t = frame.into_trailers().unwrap();
        assert_eq!(t["grpc-status"], "14");
        assert_eq!(t["grpc-message"], "server%20shutting%20down");
    }

    #[tokio::test]
    async fn a_stream_that_starts_after_shutdown_ends_at_once() {
        let sd = Shutdown::default();
        sd.begin();
        let frame = sd.body(Idle).frame().await.unwrap().unwrap();
        assert!(frame.is_trailers());
    }
}

//! Deadlines on request bodies. hyper bounds the time to read a request head, but once the head is
//! in, a body that trickles (or stops) would hold its connection slot for as long as the peer
//! likes: the slowloris variant that sends `Content-Length: 1000` and six bytes. Every body is
//! wrapped here with an idle deadline (no byte for `BODY_IDLE_TIMEOUT` fails it), and bodies on
//! routes that anyone may call before logging in also need a minimum average rate, so an
//! unauthenticated peer cannot keep a slot busy by sending one byte every few seconds.
//!
//! A failed body surfaces to the handler as a body error (an extractor rejection, or an interrupted
//! upload in the vault); hyper then closes the connection because the body was not read to its end.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A body that makes no progress for this long is given up. Long enough for a client stalled by
/// a busy network or a full disk on its side, short enough that stalled peers free their slots.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Unauthenticated bodies (login forms, second-factor codes) are a few hundred bytes; after this
/// grace they must keep up `UNAUTHENTICATED_MIN_RATE` on average.
pub const UNAUTHENTICATED_GRACE: Duration = Duration::from_secs(5);
/// Bytes per second an unauthenticated body must average after the grace period: even a modem
/// manages 1 KiB/s, and our largest unauthenticated form (64 KiB) then takes at most ~70 s.
pub const UNAUTHENTICATED_MIN_RATE: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyDeadline {
    #[error("request body stalled: no data for {} s", BODY_IDLE_TIMEOUT.as_secs())]
    Idle,
    #[error("request body too slow: under {UNAUTHENTICATED_MIN_RATE} bytes/s before sign-in")]
    TooSlow,
}

/// The deadlines one body is held to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    idle: Duration,
    /// `(grace, bytes per second)`, for bodies sent before authentication.
    min_rate: Option<(Duration, u64)>,
}

pub struct GuardedBody {
    inner: Body,
    limits: Limits,
    started: Instant,
    last_progress: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
}

impl GuardedBody {
    fn new(inner: Body, limits: Limits) -> GuardedBody {
        let now = Instant::now();
        GuardedBody {
            inner,
            limits,
            started: now,
            last_progress: now,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(now + limits.idle)),
        }
    }

    /// The moment this body fails unless more bytes arrive, and which deadline that is.
    fn deadline(&self) -> (Instant, BodyDeadline) {
        let idle = self.last_progress + self.limits.idle;
        if let Some((grace, rate)) = self.limits.min_rate {
            // By `started + grace + received / rate` the next byte must be in, or the average
            // rate since the start has fallen below `rate`.
            let allowed = Duration::from_secs_f64(self.received as f64 / rate.max(1) as f64);
            let slow = self.started + grace + allowed;
            if slow < idle {
                return (slow, BodyDeadline::TooSlow);
            }
        }
        (idle, BodyDeadline::Idle)
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if !data.is_empty() {
                        this.received += data.len() as u64;
                        this.last_progress = Instant::now();
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => {
                if other.is_pending() {
                    let (at, why) = this.deadline();
                    if Instant::now() >= at {
                        return Poll::Ready(Some(Err(axum::Error::new(why))));
                    }
                    this.timer.as_mut().reset(at);
                    if this.timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(axum::Error::new(why))));
                    }
                }
                other
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Every request body gets the idle deadline (the listener wraps each request).
pub fn with_idle_deadline(body: Body) -> Body {
    Body::new(GuardedBody::new(
        body,
        Limits {
            idle: BODY_IDLE_TIMEOUT,
            min_rate: None,
        },
    ))
}

/// Bodies of routes anyone may call before signing in also get the minimum rate.
pub fn unauthenticated(body: Body) -> Body {
    Body::new(GuardedBody::new(
        body,
        Limits {
            idle: BODY_IDLE_TIMEOUT,
            min_rate: Some((UNAUTHENTICATED_GRACE, UNAUTHENTICATED_MIN_RATE)),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn trickle(chunks: Vec<(Duration, &'static [u8])>) -> Body {
        let stream = futures_util::stream::unfold(chunks.into_iter(), |mut it| async move {
            let (wait, data) = it.next()?;
            tokio::time::sleep(wait).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(data)), it))
        });
        Body::from_stream(stream)
    }

    fn stalled() -> Body {
        Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>())
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_timeout() {
        let err = with_idle_deadline(stalled()).collect().await.err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("stalled"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_is_read_whole() {
        let body = trickle(vec![(Duration::from_secs(15), b"abc"); 4]);
        let got = with_idle_deadline(body).collect().await;
        assert_eq!(got.map(|b| b.to_bytes().len()).ok(), Some(12));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unauthenticated_trickle_fails_on_rate() {
        // One byte every 4 s never trips the idle deadline but averages 0.25 B/s.
        let body = trickle(vec![(Duration::from_secs(4), b"x"); 10]);
        let err = unauthenticated(body).collect().await.err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("too slow"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unauthenticated_form_in_time_is_fine() {
        let body = trickle(vec![
            (Duration::from_secs(1), b"user=alice&"),
            (Duration::from_secs(1), b"password=x"),
        ]);
        assert!(unauthenticated(body).collect().await.is_ok());
    }
}

//! Serving a router on a TCP listener with the limits a server on the internet needs: a cap on
//! open connections (past it a new connection is closed at once, so that held sockets cannot
//! take the process's file descriptors from the other listener), a deadline for each request's
//! head (which also closes idle keep-alive connections), and a guard on each request body: it
//! must arrive within a deadline and no slower than a minimum rate. Both the Tracking API and
//! the admin API run through [`serve_router`], each with its own limits.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections open at once at most; a connection past it is closed as soon as it is
    /// accepted.
    pub max_connections: usize,
    /// The time a client has to send a request's head: from the connection's start, or from the
    /// end of the previous answer on a kept-alive connection (so it bounds idle connections
    /// too).
    pub header_timeout: Duration,
    /// The time a client has to send a whole request body.
    pub body_timeout: Duration,
    /// The slowest a body may arrive, in bytes per second, once [`MIN_RATE_GRACE`] has passed.
    /// 0 turns the check off.
    pub min_body_rate: u64,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            min_body_rate: 1024,
        }
    }
}

/// How long a body may take before the minimum rate is enforced: a slow start (TCP's) is not a
/// slow client.
pub const MIN_RATE_GRACE: Duration = Duration::from_secs(5);

/// What one listener has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

impl ConnectionStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at once because the listener was at its cap.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections closed because a request's head did not arrive in time (slow or idle).
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting and returns once every connection has finished its requests in flight.
pub async fn serve_router<F>(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    stats: Arc<ConnectionStats>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    let name = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |address| address.to_string());
    let mut refusals_logged_at: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, say: a busy loop would make it worse. Accepting again
                // a little later is what every server does.
                tracing::warn!(listener = %name, error = %err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            if refusals_logged_at.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10))
            {
                refusals_logged_at = Some(now);
                tracing::warn!(
                    listener = %name,
                    max_connections = limits.max_connections,
                    refused_so_far = stats.refused(),
                    "connection limit reached: new connections are closed at once"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let request = guard(request, limits);
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let stats = Arc::clone(&stats);
        stats.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let Err(err) = connection.await
                && err.is_timeout()
            {
                stats.timed_out.fetch_add(1, Ordering::Relaxed);
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The request as the router sees it: its body guarded, and its `Content-Encoding` lower-cased
/// (codings are case-insensitive, and the decompression layer compares them exactly).
fn guard(request: Request<Incoming>, limits: ListenerLimits) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    if let Some(coding) = parts.headers.get(header::CONTENT_ENCODING)
        && coding.as_bytes().iter().any(u8::is_ascii_uppercase)
        && let Ok(lower) = HeaderValue::from_bytes(&coding.as_bytes().to_ascii_lowercase())
    {
        parts.headers.insert(header::CONTENT_ENCODING, lower);
    }
    Request::from_parts(parts, Body::new(GuardedBody::new(body, limits)))
}

/// Why a request body was cut off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyTimeout {
    /// The whole body did not arrive within the deadline.
    #[error("the request body did not arrive within {0} s")]
    Deadline(u64),
    /// The body arrived slower than the minimum rate.
    #[error("the request body arrived slower than {0} bytes per second")]
    TooSlow(u64),
}

/// A request body that fails with [`BodyTimeout`] when it does not arrive in time.
struct GuardedBody<B> {
    inner: B,
    started: Instant,
    deadline: Instant,
    min_rate: u64,
    received: u64,
    /// Fires when the body is behind: at the deadline, or when the bytes received so far fall
    /// below the minimum rate.
    alarm: Pin<Box<Sleep>>,
}

impl<B> GuardedBody<B> {
    fn new(inner: B, limits: ListenerLimits) -> Self {
        let started = Instant::now();
        let deadline = started + limits.body_timeout;
        let mut body = GuardedBody {
            inner,
            started,
            deadline,
            min_rate: limits.min_body_rate,
            received: 0,
            alarm: Box::pin(tokio::time::sleep_until(deadline)),
        };
        body.rearm();
        body
    }

    /// When the body falls behind with what it has received: the deadline, or the moment the
    /// minimum rate requires more than that (never before the grace period).
    fn behind_at(&self) -> Instant {
        if self.min_rate == 0 {
            return self.deadline;
        }
        let owed = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        (self.started + owed.max(MIN_RATE_GRACE)).min(self.deadline)
    }

    fn rearm(&mut self) {
        let at = self.behind_at();
        self.alarm.as_mut().reset(at);
    }

    fn why(&self, now: Instant) -> BodyTimeout {
        if now >= self.deadline {
            BodyTimeout::Deadline(self.deadline.duration_since(self.started).as_secs())
        } else {
            BodyTimeout::TooSlow(self.min_rate)
        }
    }
}

impl<B> HttpBody for GuardedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                    this.rearm();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.alarm.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let why = this.why(Instant::now());
                    Poll::Ready(Some(Err(Box::new(why))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, StreamBody};

    fn limits(body_timeout: Duration, min_body_rate: u64) -> ListenerLimits {
        ListenerLimits {
            body_timeout,
            min_body_rate,
            ..ListenerLimits::default()
        }
    }

    /// A body of `chunks`, each sent after its delay.
    fn trickle(
        chunks: Vec<(Duration, &'static [u8])>,
    ) -> impl HttpBody<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let stream = futures_util::stream::unfold(chunks.into_iter(), |mut chunks| async move {
            let (delay, bytes) = chunks.next()?;
            tokio::time::sleep(delay).await;
            Some((
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(bytes))),
                chunks,
            ))
        });
        StreamBody::new(Box::pin(stream))
    }

    async fn read(
        body: impl HttpBody<Data = Bytes, Error = axum::BoxError>,
    ) -> Result<usize, String> {
        body.collect()
            .await
            .map(|collected| collected.to_bytes().len())
            .map_err(|err| err.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_passes() {
        let body = trickle(vec![
            (Duration::from_secs(1), b"abc"),
            (Duration::from_secs(1), b"de"),
        ]);
        let guarded = GuardedBody::new(body, limits(Duration::from_secs(30), 1));
        assert_eq!(read(guarded).await, Ok(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_is_cut_at_the_rate_or_the_deadline() {
        // Ten bytes, then nothing: at 1 KiB/s it is behind once the grace period ends.
        let body = trickle(vec![
            (Duration::ZERO, b"0123456789"),
            (Duration::from_secs(3600), b"never"),
        ]);
        let started = Instant::now();
        let guarded = GuardedBody::new(body, limits(Duration::from_secs(30), 1024));
        assert_eq!(
            read(guarded).await,
            Err("the request body arrived slower than 1024 bytes per second".to_owned())
        );
        assert_eq!(started.elapsed(), MIN_RATE_GRACE);

        // Without a minimum rate, the deadline cuts it.
        let body = trickle(vec![(Duration::from_secs(3600), b"never")]);
        let guarded = GuardedBody::new(body, limits(Duration::from_secs(30), 0));
        assert_eq!(
            read(guarded).await,
            Err("the request body did not arrive within 30 s".to_owned())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_under_the_rate_is_cut_when_it_falls_behind() {
        // 100 bytes every 2 s is 50 B/s, under 64 B/s: behind after 100/64 s of credit per
        // chunk, so cut well before the deadline.
        static CHUNK: [u8; 100] = [b'x'; 100];
        let chunks: Vec<(Duration, &'static [u8])> = (0..100)
            .map(|_| (Duration::from_secs(2), &CHUNK[..]))
            .collect();
        let started = Instant::now();
        let guarded = GuardedBody::new(trickle(chunks), limits(Duration::from_secs(60), 64));
        assert_eq!(
            read(guarded).await,
            Err("the request body arrived slower than 64 bytes per second".to_owned())
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}

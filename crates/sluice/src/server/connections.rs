//! Accepting and serving connections (HTTP/1.1): a cap on connections served at once, timeouts
//! for clients that stop sending or stop reading, accept errors with back-off, graceful shutdown.
//!
//! What each timeout covers, and why long waits for media are not cut:
//! - `header_timeout` is hyper's header-read timeout. hyper 1.x starts it when it begins to read
//!   a request head: when the connection opens and again as soon as a response is complete
//!   (`proto/h1/conn.rs`, `State::idle` sets `notify_read` so the next read arms the timer), so
//!   it bounds both a half-sent head and an idle keep-alive connection. It stops once the head
//!   is parsed, so a request parked by a blocking playlist reload is not affected.
//! - `body_timeout` bounds the time without progress while the server waits on the client: a
//!   request body that stops arriving (tower-http's `TimeoutBody`, reset on every chunk) and a
//!   response the client stops taking ([`StallGuard`], armed only while a write is blocked). A
//!   long media response to a client that keeps reading never trips it, and neither does a
//!   parked request, which writes nothing.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;
use tracing::{debug, error, info, warn};

use crate::config::ServerConfig;

/// The connection limits, from the `server:` section.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// See [`ServerConfig::header_timeout`].
    pub header_timeout: Duration,
    /// See [`ServerConfig::body_timeout`].
    pub body_timeout: Duration,
    /// See [`ServerConfig::max_connections`]; lowered by [`connection_budget`].
    pub max_connections: usize,
}

impl Limits {
    /// The limits a validated config asks for.
    pub fn of(config: &ServerConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_secs_f64(config.header_timeout),
            body_timeout: Duration::from_secs_f64(config.body_timeout),
            max_connections: config.max_connections,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish (idle connections close at once) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let max = connection_budget(limits.max_connections);
    let permits = Arc::new(Semaphore::new(max));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = pin!(shutdown);
    let mut at_limit = LimitLog::default();
    let mut failures = AcceptFailures::default();
    loop {
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                at_limit.reached(max);
                tokio::select! {
                    permit = Arc::clone(&permits).acquire_owned() => {
                        permit.expect("the semaphore is never closed")
                    }
                    () = &mut shutdown => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                let pause = failures.failed(&e, max);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        failures.recovered();
        let body_timeout = limits.body_timeout;
        let service = app.clone().map_request(move |req: Request<Incoming>| {
            req.map(|body| Body::new(TimeoutBody::new(body_timeout, body)))
        });
        let io = TokioIo::new(StallGuard::new(stream, body_timeout));
        let connection =
            graceful.watch(http.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(%peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors that concern one connection only (the peer went away before `accept`).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Logs reaching the connection limit once, not once per waiting connection: again only after
/// a minute.
#[derive(Default)]
struct LimitLog {
    last: Option<Instant>,
}

impl LimitLog {
    const QUIET: Duration = Duration::from_secs(60);

    fn reached(&mut self, max: usize) {
        if self.last.is_some_and(|t| t.elapsed() < Self::QUIET) {
            return;
        }
        self.last = Some(Instant::now());
        warn!(
            "connection limit reached: {max} connections open (server.max_connections); new \
             connections wait until one closes"
        );
    }
}

/// Accept failures that are not about one connection (EMFILE: out of file descriptors; ENFILE,
/// ENOBUFS, ENOMEM): one log line per run of failures, and a growing pause instead of a spin.
#[derive(Default)]
struct AcceptFailures {
    count: u32,
}

impl AcceptFailures {
    fn failed(&mut self, e: &io::Error, max: usize) -> Duration {
        if self.count == 0 {
            let hint = if is_out_of_descriptors(e) {
                format!(
                    ": out of file descriptors; raise the open-file limit (ulimit -n, \
                     LimitNOFILE=) or lower server.max_connections ({max})"
                )
            } else {
                String::new()
            };
            error!("cannot accept connections: {e}{hint}; retrying");
        }
        self.count = self.count.saturating_add(1);
        Duration::from_millis(10 << self.count.min(7))
    }

    fn recovered(&mut self) {
        if self.count > 0 {
            info!(
                "accepting connections again after {} failed attempts",
                self.count
            );
            self.count = 0;
        }
    }
}

/// EMFILE: the process has as many files open as `RLIMIT_NOFILE` allows.
fn is_out_of_descriptors(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Descriptors kept for everything but client connections (cameras, recordings, the log):
/// a quarter of the limit, between 16 and 256.
fn reserved_descriptors(limit: u64) -> u64 {
    (limit / 4).clamp(16, 256)
}

/// `max_connections`, lowered (with a warning) to stay under the open-file limit
/// (`RLIMIT_NOFILE`) minus a reserve (a quarter of it, 16 to 256); at least 1.
pub fn connection_budget(max_connections: usize) -> usize {
    let Some(limit) = open_file_limit() else {
        return max_connections;
    };
    let reserve = reserved_descriptors(limit);
    let budget = usize::try_from(limit.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1);
    if max_connections > budget {
        warn!(
            "server.max_connections {max_connections} lowered to {budget}: the process may \
             open {limit} files (RLIMIT_NOFILE) and keeps {reserve} for cameras and files; \
             raise the limit (ulimit -n, LimitNOFILE=) to serve more"
        );
        budget
    } else {
        max_connections
    }
}

/// The soft open-file limit, if there is one.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard limit (many systems start processes at 1024
/// with a much higher hard limit), so the connection cap rather than `accept` failing is what
/// bounds connections.
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        // An unlimited hard limit (macOS) is left alone: the kernel caps the soft limit lower.
        if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
            && current < maximum
        {
            let raised = Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                debug!("cannot raise the open-file limit to the hard limit: {e}");
            }
        }
    }
}

/// A connection's socket that fails a write (and so closes the connection) when the client has
/// taken no data for `timeout` while the server had data to send. Nothing is timed while no
/// write is blocked.
pub struct StallGuard<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallGuard<S> {
    /// Wraps a socket.
    pub fn new(inner: S, timeout: Duration) -> StallGuard<S> {
        StallGuard {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Arms the timer when a write is blocked, disarms it on progress, and turns a blocked
    /// write whose timer ran out into an error.
    fn watch<T>(&mut self, poll: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took no data for {:.1} s (server.body_timeout)",
                    timeout.as_secs_f64()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(poll, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(poll, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(poll, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_fails_the_write_after_the_timeout() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(server, Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        // The client reads a little, then nothing: the pipe fills and the write blocks.
        let mut first = [0u8; 512];
        let (written, read) = tokio::join!(guarded.write_all(&[7u8; 1 << 20]), async {
            client.read_exact(&mut first).await
        });
        read.unwrap();
        let error = written.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            error.to_string(),
            "the client took no data for 5.0 s (server.body_timeout)"
        );
        // Paused time: the clock only moved for the timer.
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(server, Duration::from_secs(5));
        let reader = async move {
            let mut total = 0;
            let mut buf = [0u8; 1024];
            loop {
                // Takes a chunk every 4 s: always under the 5 s timeout, 64 s in all.
                tokio::time::sleep(Duration::from_secs(4)).await;
                match client.read(&mut buf).await.unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        };
        let writer = async move {
            guarded.write_all(&[1u8; 16 * 1024]).await.unwrap();
            guarded.shutdown().await.unwrap();
        };
        let (total, ()) = tokio::join!(reader, writer);
        assert_eq!(total, 16 * 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_timed_while_no_write_is_blocked() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(server, Duration::from_secs(5));
        guarded.write_all(b"first").await.unwrap();
        // An hour without writing (a parked request) and then more data: no error.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        guarded.write_all(b" second").await.unwrap();
        drop(guarded);
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "first second");
    }

    #[test]
    fn reserve_is_a_quarter_of_the_limit_within_bounds() {
        assert_eq!(reserved_descriptors(1024), 256);
        assert_eq!(reserved_descriptors(1 << 20), 256);
        assert_eq!(reserved_descriptors(128), 32);
        assert_eq!(reserved_descriptors(20), 16);
    }
}

//! One HTTP server loop for every HTTP port a node serves (`--metrics-listen`
//! and `--http-listen`): hyper's HTTP/1 connections over an axum router,
//! TLS with the node's certificate when it has one, and the bounds every
//! port keeps whatever it serves:
//! - at most `max_connections` open; one more is answered 503 (in plain
//!   text, without reading it) and closed, or just closed over TLS;
//! - a request head of at most `max_head_bytes`, read within
//!   `head_timeout`, which is also how long a keep-alive connection may sit
//!   idle between requests (hyper starts the timer as soon as it waits for
//!   a head): a slowloris holds a slot for that long and no more;
//! - a TLS handshake within `head_timeout`, on the node's handshake thread;
//! - an answer the client does not read: once the socket takes no byte for
//!   `head_timeout`, the connection is closed (`Stalls`), so that a reader
//!   that never reads gives back its slot and what its answer holds.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use std::future::Future;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use super::super::shared::Shared;

/// Connections refused for the cap that are still being told so.
const REFUSALS_IN_FLIGHT: usize = 64;

/// How one HTTP port is served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    /// What the port is for, in log lines ("metrics", "HTTP API").
    pub name: &'static str,
    /// Connections open at once.
    pub max_connections: usize,
    /// Largest request head (hyper's read buffer: a longer head is 431).
    pub max_head_bytes: usize,
    /// Time to send a request head, and to stay idle between requests.
    pub head_timeout: Duration,
    /// Whether a connection may carry more than one request.
    pub keep_alive: bool,
    /// Longest a whole connection may last (a scrape), if bounded.
    pub max_life: Option<Duration>,
    /// Whether to serve over TLS when the node has a certificate.
    pub tls: bool,
}

/// Serves `router` on `listener` under `limits` until the node stops.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    router: Router,
    limits: ServeLimits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let service = hyper_util::service::TowerToHyperService::new(router);
    loop {
        let (stream, addr) = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if let Some(more) = shared.throttle.allow("http-accept") {
                        warn!(error = %e, suppressed = more, "cannot accept a {} connection", limits.name);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(more) = shared.throttle.allow("http-max-connections") {
                warn!(peer = %addr, suppressed = more, "refusing a {} connection: {} are open", limits.name, limits.max_connections);
            }
            let plain = !(limits.tls && shared.cfg.tls.is_some());
            if let (true, Ok(permit)) = (plain, refusals.clone().try_acquire_owned()) {
                shared.tracker.spawn(refuse(stream, permit));
            }
            continue;
        };
        let (shared2, service) = (shared.clone(), service.clone());
        shared.tracker.spawn(async move {
            let served = connection(stream, &shared2, service, limits, slot);
            match limits.max_life {
                Some(life) => {
                    if tokio::time::timeout(life, served).await.is_err() {
                        debug!(peer = %addr, "{} connection lasted too long", limits.name);
                    }
                }
                None => served.await,
            }
        });
    }
}

/// Tells a connection over the cap why it is closed, without reading it.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let body = "{\"error\":\"too_many_connections\",\"message\":\"this node has as many HTTP connections open as it takes (--max-connections); retry shortly\"}\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// One connection: the TLS handshake if the port has one, then HTTP/1 until
/// the peer goes, idles past the head timeout, or the node stops (requests
/// under way finish first).
async fn connection<S>(
    stream: TcpStream,
    shared: &Arc<Shared>,
    service: S,
    limits: ServeLimits,
    _slot: OwnedSemaphorePermit,
) where
    S: hyper::service::HttpService<hyper::body::Incoming> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = shared.cfg.tls.clone().filter(|_| limits.tls);
    let Some(tls) = tls else {
        return http1(stream, shared, service, limits).await;
    };
    let accept = tokio::time::timeout(limits.head_timeout, tls.acceptor.accept(stream));
    let handshake = match super::super::connection::handshakes() {
        Some(runtime) => match runtime.spawn(accept).await {
            Ok(handshake) => handshake,
            Err(_) => return,
        },
        None => accept.await,
    };
    match handshake {
        Ok(Ok(stream)) => http1(stream, shared, service, limits).await,
        Ok(Err(e)) => {
            if let Some(more) = shared.throttle.allow("http-tls") {
                debug!(error = %e, suppressed = more, "{} TLS handshake failed", limits.name);
            }
        }
        Err(_) => debug!("no {} TLS handshake in time", limits.name),
    }
}

/// HTTP/1 on an open (and, if need be, decrypted) stream.
async fn http1<IO, S>(io: IO, shared: &Arc<Shared>, service: S, limits: ServeLimits)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_head_bytes)
        .keep_alive(limits.keep_alive);
    let io = Stalls::new(io, limits.head_timeout);
    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shared.shutdown.cancelled() => {
            // Requests under way are answered; no new one is read.
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.head_timeout, conn).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "{} connection ended", limits.name);
    }
}

/// A stream whose writes fail once the peer has taken no byte for `limit`:
/// hyper then ends the connection.
struct Stalls<IO> {
    io: IO,
    limit: Duration,
    /// Since when writes have waited, as a timer; `None` while they go.
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<IO> Stalls<IO> {
    fn new(io: IO, limit: Duration) -> Self {
        Stalls {
            io,
            limit,
            stalled: None,
        }
    }

    /// What a write that returned `poll` means: the peer's stall counted,
    /// or ended.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        poll: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing of its answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Stalls<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Stalls<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

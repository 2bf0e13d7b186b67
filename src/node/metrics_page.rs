//! The `/metrics` page (`--metrics-listen`): a small HTTP responder with
//! bounded requests, deadlines and scrapes in flight, serving what
//! `metrics` encodes from the node loop's health report and the log.
//!
//! It is deliberately small: one request per connection, a head of at most
//! [`MAX_REQUEST_BYTES`] read within [`REQUEST_TIMEOUT`], at most
//! [`SCRAPES_IN_FLIGHT`] at once (more are closed unanswered), and only
//! `GET /metrics` answered with metrics.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tracing::{debug, warn};

use super::metrics::LogFigures;
use super::shared::{Input, Shared};

/// Largest request head read.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Time a scraper has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes answered at once.
const SCRAPES_IN_FLIGHT: usize = 4;

/// The metrics page: the state asked of the node loop and the log, then
/// everything encoded. `None` once the node is stopping.
async fn render(shared: &Arc<Shared>) -> Option<String> {
    let (tx, rx) = oneshot::channel();
    shared.requests.send(Input::Health { tx }).await.ok()?;
    let report = rx.await.ok()?;
    // Off the runtime's threads: the lock waits while the loop writes.
    let (first, last, bytes) = shared
        .read_log(|log| Ok((log.first(), log.last().seq, log.bytes())))
        .await
        .ok()?;
    let figures = LogFigures {
        entries: if first == 0 { 0 } else { last + 1 - first },
        bytes,
        first,
        last,
        committed: *shared.committed.borrow(),
    };
    shared.metrics.set_state(&report, figures);
    Some(shared.metrics.encode())
}

/// Serves scrapes on `listener` until the node stops.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(SCRAPES_IN_FLIGHT));
    loop {
        let (stream, addr) = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "cannot accept a metrics connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(peer = %addr, "too many scrapes at once: closing one");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // A scraper that does not read its answer gives its slot back.
            match tokio::time::timeout(2 * REQUEST_TIMEOUT, answer(stream, &shared)).await {
                Ok(Err(e)) => debug!(peer = %addr, error = %e, "metrics request failed"),
                Err(_) => debug!(peer = %addr, "metrics request timed out"),
                Ok(Ok(())) => {}
            }
        });
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: tokio::net::TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_REQUEST_BYTES {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next(), words.next());
    let (status, kind, body) = match (method, path) {
        (Some("GET"), Some("/metrics")) => match render(shared).await {
            Some(text) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            None => (
                "503 Service Unavailable",
                "text/plain",
                "the node is stopping\n".into(),
            ),
        },
        (Some("GET"), _) => (
            "404 Not Found",
            "text/plain",
            "replog serves its metrics at /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics is served here\n".into(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

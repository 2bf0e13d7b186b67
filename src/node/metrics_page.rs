//! The `/metrics` page (`--metrics-listen`), served by hyper with an axum
//! router, bounded as the hand-written responder it replaces was: one
//! request per connection (no keep-alive), a head of at most
//! [`MAX_REQUEST_BYTES`] read within [`REQUEST_TIMEOUT`], at most
//! [`SCRAPES_IN_FLIGHT`] at once (more are closed unanswered), and only
//! `GET /metrics` answered with metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tracing::{debug, warn};

use super::metrics::LogFigures;
use super::shared::{Input, Shared};

/// Largest request head read (hyper's smallest read buffer: a longer head
/// is answered 431).
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

/// The page's routes: `GET /metrics`; any other path is 404, any other
/// method 405, each with a sentence.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                match render(&shared).await {
                    Some(text) => (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                        .into_response(),
                    None => plain(StatusCode::SERVICE_UNAVAILABLE, "the node is stopping\n"),
                }
            }),
        )
        .fallback(|| async {
            plain(
                StatusCode::NOT_FOUND,
                "replog serves its metrics at /metrics\n",
            )
        })
        .method_not_allowed_fallback(|| async {
            plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET /metrics is served here\n",
            )
        })
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

/// Serves scrapes on `listener` until the node stops.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(SCRAPES_IN_FLIGHT));
    let service = hyper_util::service::TowerToHyperService::new(router(shared.clone()));
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
        let service = service.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .max_buf_size(MAX_REQUEST_BYTES)
                .keep_alive(false);
            let io = hyper_util::rt::TokioIo::new(stream);
            // A scraper that does not read its answer gives its slot back.
            let serving = http.serve_connection(io, service);
            match tokio::time::timeout(2 * REQUEST_TIMEOUT, serving).await {
                Ok(Err(e)) => debug!(peer = %addr, error = %e, "metrics request failed"),
                Err(_) => debug!(peer = %addr, "metrics request timed out"),
                Ok(Ok(())) => {}
            }
        });
    }
}

//! The `/metrics` page (`--metrics-listen`), served by hyper with an axum
//! router, bounded as the hand-written responder it replaces was: one
//! request per connection (no keep-alive), a head of at most
//! [`MAX_REQUEST_BYTES`] read within [`REQUEST_TIMEOUT`], at most
//! [`SCRAPES_IN_FLIGHT`] at once (more are answered 503 unread), and only
//! `GET /metrics` answered with metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::super::log_metrics::LogFigure;
use super::super::metrics::LogFigures;
use super::super::shared::{Input, Shared};
use super::server::ServeLimits;

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
    let (logs, groups) = tokio::join!(log_figures(shared), groups(shared));
    shared.metrics.logs.set(&logs, &groups);
    Some(shared.metrics.encode())
}

/// Each log's figures, as this node holds it (none if it cannot be read).
async fn log_figures(shared: &Arc<Shared>) -> Vec<LogFigure> {
    let logs = shared.logs();
    let upto = *shared.visible.borrow();
    let read = shared.read_log(move |l| {
        (logs.all().into_iter())
            .map(|(name, id)| {
                Ok(LogFigure {
                    name,
                    first: l.first_number(id),
                    last: l.number_at(id, upto)?,
                    bytes: l.log_bytes(id),
                })
            })
            .collect()
    });
    read.await.unwrap_or_default()
}

/// The groups' positions this node knows (none if it cannot say now).
async fn groups(shared: &Arc<Shared>) -> Vec<crate::wire::GroupStatus> {
    match super::super::groups::list_groups(shared, None).await {
        Some(Ok(groups)) => groups,
        _ => Vec::new(),
    }
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
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let limits = ServeLimits {
        name: "metrics",
        max_connections: SCRAPES_IN_FLIGHT,
        max_head_bytes: MAX_REQUEST_BYTES,
        head_timeout: REQUEST_TIMEOUT,
        keep_alive: false,
        // A scraper that does not read its answer gives its slot back.
        max_life: Some(2 * REQUEST_TIMEOUT),
        // The page has always been plain HTTP, for Prometheus as it is
        // usually configured.
        tls: false,
    };
    super::server::serve(listener, shared.clone(), router(shared), limits).await
}

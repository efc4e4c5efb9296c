//! The HTTP side of Junction: the Segment Tracking API and the admin API, each on its own
//! listener. [`app`] builds the router over an [`AppState`]; [`serve`] runs it until a shutdown
//! signal, letting requests in flight finish (their commits included).
//!
//! Layers, outermost first: CORS (browsers' analytics.js, preflight included), gzip
//! decompression, then the handler, which reads the body with the size limit, so that every
//! limit counts decompressed bytes.
//!
//! **Architecture Invariant:** the only crate that knows HTTP: status codes, headers and wire
//! shapes live here and nowhere else. It parses nothing itself (junction-event does), decides no
//! routing (junction-workspace does) and never touches a database (the `Store` trait does).

mod admin;
mod app;
mod error;
mod extract;
mod listener;
mod live;
mod metrics;
mod privacy;
mod rejections;
mod routes;
mod state;
mod tracking;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;

use crate::routes::{Route, router};

pub use admin::{AdminState, admin_app, admin_routes, is_sandbox_url, sandbox_url};
pub use error::{ApiError, RejectedItem, event_rejection_code};
pub use extract::{ApiJson, read_limited};
pub use listener::{BodyTimeout, ConnectionStats, ListenerLimits, MIN_RATE_GRACE, serve_router};
pub use live::{LiveEvent, LiveEvents, Subscription};
pub use metrics::{AtomicHistogram, Metrics};
pub use privacy::follow_regulations;
pub use rejections::{IngestTotals, RejectionCount, RejectionRecord, Rejections};
pub use routes::ServedRoute;
pub use state::{AppState, TrackingConfig};

/// The Tracking API router: `POST /v1/{identify,track,page,screen,group,alias,batch,import}` and
/// analytics.js's `/v1/{i,t,p,s,g,a,b}`, with CORS and gzip request bodies.
pub fn app(state: AppState) -> Router {
    router(tracking_table())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Unsupported codings pass through with their header, so the handler refuses them in
        // our error format rather than the layer answering a bare 415.
        .layer(RequestDecompressionLayer::new().pass_through_unaccepted(true))
        .layer(cors())
}

/// Every route [`app`] serves; only analytics.js's telemetry (`/v1/m`) needs no write key.
pub fn tracking_routes() -> Vec<ServedRoute> {
    tracking_table()
        .iter()
        .map(|route| {
            let served = route.served(false);
            route.served(served.path == "/v1/m")
        })
        .collect()
}

/// Every Tracking API endpoint's path: one route each, so that each is documented (and checked)
/// with the body it takes. The handler reads the endpoint from the path.
pub const TRACKING_PATHS: [&str; 15] = [
    "/v1/identify",
    "/v1/track",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
    "/v1/import",
    "/v1/i",
    "/v1/t",
    "/v1/p",
    "/v1/s",
    "/v1/g",
    "/v1/a",
    "/v1/b",
];

fn tracking_table() -> Vec<Route<AppState>> {
    TRACKING_PATHS
        .into_iter()
        .map(|path| Route::post(path, tracking::track))
        // analytics.js posts its own telemetry here every 30 s: not events, and no write key.
        .chain([Route::post("/v1/m", tracking::client_metrics)])
        .collect()
}

/// Serves `state`'s Tracking API on `listener` within `limits` until `shutdown` completes; then
/// stops accepting connections and returns once every request in flight has been answered (so
/// their commits are done). Closing the store is the caller's job, after this returns.
pub async fn serve<F>(
    listener: TcpListener,
    state: AppState,
    limits: ListenerLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let stats = state.metrics().listener("tracking");
    serve_router(listener, app(state), limits, stats, shutdown).await
}

/// Serves the admin API on `listener` within `limits` until `shutdown` completes, like
/// [`serve`].
pub async fn serve_admin<F>(
    listener: TcpListener,
    state: AdminState,
    limits: ListenerLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let stats = state.metrics().listener("admin");
    serve_router(listener, admin_app(state), limits, stats, shutdown).await
}

/// analytics.js posts from any web page: every origin may send, without credentials (the write
/// key is in the body). Preflights are answered by the layer and cached for a day.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::CONTENT_ENCODING,
            HeaderName::from_static("x-retry-count"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(24 * 60 * 60))
}

async fn not_found(uri: Uri) -> Response {
    ApiError::NotFound(uri.path().to_owned()).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

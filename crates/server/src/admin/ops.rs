//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the store answers a cheap
//! read and a configuration is loaded) and `/metrics` (Prometheus text format). The first two are
//! open, so that probes need no token; `/metrics` is authenticated like every admin route.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use serde_json::json;

use super::{AdminError, AdminState};
use crate::metrics::ScrapeInput;
use crate::routes::Route;

/// How long `/readyz` waits for the store before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The routes that need no token (probes).
pub(super) fn public_routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/healthz", healthz),
        Route::get("/readyz", readyz),
    ]
}

/// The routes authenticated like the rest of the admin API.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![Route::get("/metrics", metrics)]
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// 200 once the store answers a cheap read and a workspace snapshot is in force; 503 with the
/// reason otherwise.
async fn readyz(State(state): State<AdminState>) -> Response {
    let snapshot = state.app.snapshot();
    let store = tokio::time::timeout(READY_TIMEOUT, state.app.store().counts())
        .await
        .map_err(|_| format!("no answer within {} s", READY_TIMEOUT.as_secs()))
        .and_then(|counts| counts.map(|_| ()).map_err(|err| err.to_string()));
    let config = json!({
        "sources": snapshot.sources().len(),
        "destinations": snapshot.destinations().len(),
    });
    let (status, body) = readiness(store, config);
    (status, Json(body)).into_response()
}

/// The answer of `/readyz` given the store's answer (or why it gave none) and the configuration
/// in force.
fn readiness(
    store: Result<(), String>,
    config: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    match store {
        Ok(()) => (
            StatusCode::OK,
            json!({"status": "ok", "store": "ok", "config": config}),
        ),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "reason": format!("store unreachable: {why}")}),
        ),
    }
}

/// The Prometheus exposition of every metric.
async fn metrics(State(state): State<AdminState>) -> Result<Response, AdminError> {
    let app = &state.app;
    // The store's lanes feed the backlog gauge; a store that cannot answer only leaves it out.
    let lanes_due = tokio::time::timeout(READY_TIMEOUT, app.store().lanes())
        .await
        .ok()
        .and_then(Result::ok);
    let lane_backlogs = tokio::time::timeout(READY_TIMEOUT, app.store().lane_backlogs())
        .await
        .ok()
        .and_then(Result::ok);
    let input = ScrapeInput {
        rejections: app.rejections().counts(),
        totals: app.stats(),
        store: app.store().stats(),
        lanes_due,
        lane_backlogs,
        now: now_ms(),
    };
    let text = app.metrics().render(&input).map_err(|err| {
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode the metrics: {err}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_store::StoreError;

    #[test]
    fn an_unreachable_store_is_not_ready() {
        let (status, body) = readiness(Err(StoreError::Closed.to_string()), json!({}));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unavailable");
        assert!(
            body["reason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("store unreachable: ")),
            "{body}"
        );
        let (status, body) = readiness(Ok(()), json!({"sources": 1}));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["config"]["sources"], 1);
    }
}

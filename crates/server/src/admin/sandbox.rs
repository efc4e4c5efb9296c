//! The sandbox webhook: a ChartMogul-like endpoint of Junction's own, on the admin listener, so
//! that a first run delivers somewhere visible without a ChartMogul account. It accepts a POST
//! of a JSON object at `/sandbox/chartmogul/{token}` when a destination of the workspace points
//! at that path, answers as ChartMogul's webhook does (`200 {}`; `403` with ChartMogul's error
//! shape for a URL no destination uses; `400` for a body that is not a JSON object), and keeps
//! the last [`KEPT`] requests in memory for `GET /api/v1/sandbox/requests` (and `junction
//! sandbox`).
//!
//! The receiving route needs no admin token (deliveries carry none); its URL's token, like a
//! real webhook URL's, is what a sender must know, and the URL is masked wherever it is shown.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use junction_store::UnixMillis;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminError, AdminState};
use crate::routes::Route;

/// The receiving path's prefix; the token follows it.
pub const SANDBOX_PATH: &str = "/sandbox/chartmogul/";

/// How many received requests are kept (the oldest go first).
pub const KEPT: usize = 1_000;

/// The most requests one listing returns.
const MAX_LIST: usize = 1_000;

/// The sandbox URL for a destination on an admin listener at `admin_address`, with `token`.
pub fn sandbox_url(admin_address: &str, token: &str) -> String {
    format!("http://{admin_address}{SANDBOX_PATH}{token}")
}

/// Whether `url` is a sandbox URL (of any listener): the banner and the app say so plainly.
pub fn is_sandbox_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|parsed| {
        parsed.scheme() == "http"
            && parsed
                .path()
                .strip_prefix(SANDBOX_PATH)
                .is_some_and(|token| !token.is_empty() && !token.contains('/'))
    })
}

/// The public route (deliveries) and the authenticated ones (what was received).
pub(super) fn public_routes() -> Vec<Route<AdminState>> {
    vec![Route::post("/sandbox/chartmogul/{token}", receive)]
}

/// The routes behind the admin token.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/api/v1/sandbox/requests", list),
        Route::delete("/api/v1/sandbox/requests", clear),
    ]
}

/// One request the sandbox received.
#[derive(Debug, Clone)]
struct Received {
    id: u64,
    received_at: UnixMillis,
    /// The destination whose URL it was sent to; none when no destination uses that URL.
    destination_id: Option<String>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

/// What the sandbox keeps: the last [`KEPT`] requests, and how many came in all.
#[derive(Debug, Default)]
pub struct Sandbox {
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    next_id: u64,
    requests: VecDeque<Received>,
}

impl Sandbox {
    fn keep(&self, mut request: Received) {
        let mut kept = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        kept.next_id += 1;
        request.id = kept.next_id;
        if kept.requests.len() == KEPT {
            kept.requests.pop_front();
        }
        kept.requests.push_back(request);
    }
}

fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// ChartMogul's error shape: `{"errors": [{"field": null, "message": …}]}`.
fn chartmogul_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"field": null, "message": message}]})),
    )
        .into_response()
}

/// The destination of the workspace whose settings hold a URL with this path, if any.
fn destination_for(state: &AdminState, path: &str) -> Option<String> {
    let snapshot = state.app.snapshot();
    snapshot
        .destinations()
        .iter()
        .find(|destination| {
            destination.settings().as_map().values().any(|value| {
                value
                    .as_str()
                    .and_then(|text| url::Url::parse(text).ok())
                    .is_some_and(|url| is_sandbox_url(url.as_str()) && url.path() == path)
            })
        })
        .map(|destination| destination.id().to_owned())
}

/// A delivery to the sandbox: kept, and answered as ChartMogul would.
async fn receive(
    State(state): State<AdminState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let destination_id = destination_for(&state, uri.path());
    let parsed: Result<Value, String> =
        serde_json::from_slice(&body).map_err(|err| format!("the body is not JSON: {err}"));
    let (status, answer) = match (&destination_id, parsed) {
        (None, parsed) => (
            StatusCode::FORBIDDEN,
            (parsed.unwrap_or(Value::Null), Some("access forbidden")),
        ),
        (Some(_), Ok(object @ Value::Object(_))) => (StatusCode::OK, (object, None)),
        (Some(_), Ok(other)) => (
            StatusCode::BAD_REQUEST,
            (other, Some("the body is not a JSON object")),
        ),
        (Some(_), Err(_)) => (
            StatusCode::BAD_REQUEST,
            (
                Value::String(String::from_utf8_lossy(&body).into_owned()),
                Some("the body is not JSON"),
            ),
        ),
    };
    let (body, error) = answer;
    state.sandbox.keep(Received {
        id: 0,
        received_at: now_ms(),
        destination_id,
        status: status.as_u16(),
        headers: headers
            .iter()
            .filter(|(name, _)| *name != axum::http::header::AUTHORIZATION)
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    });
    match error {
        Some(message) => chartmogul_error(status, message),
        None => (StatusCode::OK, Json(json!({}))).into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    destination_id: Option<String>,
    limit: Option<usize>,
}

/// What the sandbox received, newest first.
async fn list(
    State(state): State<AdminState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(query) = query.map_err(|err| AdminError::invalid("query", err.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(AdminError::invalid(
            "limit",
            format!("limit must be from 1 to {MAX_LIST}"),
        ));
    }
    let kept = state
        .sandbox
        .inner
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let requests: Vec<Value> = kept
        .requests
        .iter()
        .rev()
        .filter(|request| {
            query
                .destination_id
                .as_deref()
                .is_none_or(|id| request.destination_id.as_deref() == Some(id))
        })
        .take(limit)
        .map(|request| {
            json!({
                "id": request.id,
                "received_at": request.received_at,
                "destination_id": request.destination_id,
                "status": request.status,
                "headers": request.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                "body": request.body,
            })
        })
        .collect();
    Ok(Json(json!({
        "data": requests,
        "received": kept.next_id,
        "kept": kept.requests.len(),
    })))
}

/// Forgets every kept request.
async fn clear(State(state): State<AdminState>) -> Json<Value> {
    let mut kept = state
        .sandbox
        .inner
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let cleared = kept.requests.len();
    kept.requests.clear();
    Json(json!({"data": {"cleared": cleared}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_urls_are_recognised() {
        let url = sandbox_url("127.0.0.1:8081", "sample-workspace");
        assert_eq!(
            url,
            "http://127.0.0.1:8081/sandbox/chartmogul/sample-workspace"
        );
        assert!(is_sandbox_url(&url));
        assert!(is_sandbox_url("http://[::1]:9/sandbox/chartmogul/t"));
        for other in [
            "https://app.chartmogul.com/sandbox/chartmogul/t",
            "http://127.0.0.1:8081/sandbox/chartmogul/",
            "http://127.0.0.1:8081/sandbox/chartmogul/a/b",
            "http://127.0.0.1:8081/api/v1/sources",
            "not a url",
        ] {
            assert!(!is_sandbox_url(other), "{other}");
        }
    }

    #[test]
    fn the_oldest_requests_go_first() {
        let sandbox = Sandbox::default();
        for n in 0..(KEPT + 5) {
            sandbox.keep(Received {
                id: 0,
                received_at: 0,
                destination_id: None,
                status: 200,
                headers: Vec::new(),
                body: json!({"n": n}),
            });
        }
        let kept = sandbox.inner.lock().unwrap();
        assert_eq!(kept.requests.len(), KEPT);
        assert_eq!(kept.next_id, (KEPT + 5) as u64);
        assert_eq!(kept.requests[0].body, json!({"n": 5}));
    }
}

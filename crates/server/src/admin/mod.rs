//! The admin API (on its own listener, under `/api/v1`): configuration, testing, observing and
//! repairing Junction while it runs. Responses are wrapped in `{"data": …}`; errors are
//! `{"errors": [{"type", "message", "field"?}]}`, as Segment's Public API shapes them.
//!
//! Every route but `/healthz`, `/readyz`, `/api/v1/openapi.json` and the sandbox webhook's
//! `/sandbox/chartmogul/{token}` requires `Authorization:
//! Bearer <token>` when a token is configured; a wrong or missing token gets a bare 401 that
//! reveals nothing about what exists. Webhook URLs carry a secret token in their path and query,
//! so every URL shown is masked.
//!
//! One module per area: `config` (sources, destinations, mappings, the catalog), `story` (event
//! lookup), `dead_letter` (list, replay), `testers` (test authentication, event and mapping
//! testers), `overview` (delivery overview and time series), `debugger` (the source debugger's
//! live stream and recent events), `ops` (health, readiness, metrics), `openapi` (the OpenAPI
//! document of both APIs), `sandbox` (the ChartMogul-like webhook a first run delivers to, and
//! what it received), `regulations` (deleting and suppressing a person: the audit log). Each
//! contributes its table of [`Route`]s to [`admin_app`], which is
//! built from those tables only, so that [`admin_routes`] lists exactly what it serves.

pub(crate) mod audiences;
pub(crate) mod config;
pub(crate) mod dead_letter;
pub(crate) mod debugger;
mod openapi;
mod ops;
pub(crate) mod overview;
mod regulations;
pub(crate) mod samples;
mod sandbox;
pub(crate) mod story;
pub(crate) mod testers;

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use junction_delivery::HttpSender;
use junction_store::StoreError;
use serde_json::{Value, json};

pub use sandbox::{is_sandbox_url, sandbox_url};

use crate::routes::{Route, ServedRoute, router};
use crate::state::AppState;

/// What the admin routes share.
#[derive(Clone)]
pub struct AdminState {
    pub(crate) app: AppState,
    pub(crate) sender: Arc<HttpSender>,
    pub(crate) token: Option<Arc<str>>,
    /// Serialises configuration changes: each one reads the workspace in force, changes, compiles,
    /// stores and swaps it, and none may start from a workspace another is replacing.
    config_lock: Arc<tokio::sync::Mutex<()>>,
    /// What the sandbox webhook received.
    sandbox: Arc<sandbox::Sandbox>,
    /// This process's profile worker (absent in tests that run none).
    profiles: Option<Arc<junction_profiles::WorkerHandle>>,
    /// The app's signed-in browsers.
    pub(crate) sessions: Arc<crate::app::Sessions>,
}

impl AdminState {
    /// Admin routes over `app`'s store and snapshot; `sender` makes test requests the way
    /// deliveries go out; `token`, when set, is required as a bearer token.
    pub fn new(app: AppState, sender: Arc<HttpSender>, token: Option<String>) -> Self {
        let sessions = Arc::new(crate::app::Sessions::new(token.as_deref()));
        Self {
            app,
            sender,
            token: token.map(Arc::from),
            config_lock: Arc::default(),
            sandbox: Arc::default(),
            profiles: None,
            sessions,
        }
    }

    /// The same, with this process's profile worker: its syncs can be asked for now.
    #[must_use]
    pub fn with_profiles(mut self, profiles: Arc<junction_profiles::WorkerHandle>) -> Self {
        self.profiles = Some(profiles);
        self
    }

    /// The metrics of the server this admin API belongs to.
    pub fn metrics(&self) -> &crate::Metrics {
        self.app.metrics()
    }
}

/// The admin router.
pub fn admin_app(state: AdminState) -> Router {
    router(authenticated_routes())
        .fallback(|| async { AdminError::not_found("no such admin route") })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // Merged after the layer: probes (`/healthz`, `/readyz`) and the OpenAPI document need
        // no token.
        .merge(router(public_routes()))
        // The app (`/`, pages and forms for a browser): its own sign-in (a session cookie for
        // the admin token), CSRF check and security headers, see `crate::app`.
        .merge(crate::app::router(state.clone()))
        // No admin request carries more than a change of one object: a whole workspace is
        // applied step by step (junction apply), and its limits are far below this.
        .layer(axum::extract::DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        // Every error in our JSON shape, including axum's own rejections (a query string or a
        // path segment that does not parse, a wrong method), which are plain text.
        .layer(middleware::from_fn(json_errors))
        // Outermost, for every route: without a token, only requests addressed to a loopback
        // host are answered.
        .layer(middleware::from_fn_with_state(state.clone(), loopback_host))
        .with_state(state)
}

/// The largest admin request body, in bytes.
pub const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// The most of a plain-text error body kept when it is turned into JSON.
const PLAIN_ERROR_LIMIT: usize = 16 * 1024;

/// Turns an error answered in plain text (axum's extractor rejections, its 405) into the admin
/// API's error shape, keeping the status and the headers (`Allow`). JSON, HTML and streams pass
/// untouched.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|kind| kind.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, PLAIN_ERROR_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let kind = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "validation",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        _ if status.is_server_error() => "internal",
        _ => "error",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let body = Json(json!({"errors": [{"type": kind, "message": message}]})).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, body.into_body())
}

/// Without a token the admin API listens on loopback only, but a web page the operator visits
/// can still reach it through DNS rebinding (a name of the attacker's that resolves to
/// 127.0.0.1): the browser then sends the attacker's name as `Host`. So, without a token, only a
/// loopback `Host` is answered.
async fn loopback_host(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    if state.token.is_some() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        });
    match host {
        Some(host) if is_loopback_host(host) => next.run(request).await,
        other => AdminError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "without an admin token this API answers only requests addressed to a loopback \
                 host (127.0.0.1, [::1] or localhost), not {}; set an admin token to serve other \
                 names",
                other.map_or_else(
                    || "a request without Host".to_owned(),
                    |host| format!("{host:?}")
                )
            ),
        )
        .into_response(),
    }
}

/// Whether a `Host` value (`name[:port]`) names a loopback host: `localhost` or a name under
/// `.localhost` (RFC 6761 keeps them on loopback), `127.0.0.0/8` or `[::1]`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Every route [`admin_app`] serves, in its tables' order; `public` ones need no token.
pub fn admin_routes() -> Vec<ServedRoute> {
    let authenticated = authenticated_routes().into_iter().map(|r| r.served(false));
    let public = public_routes().into_iter().map(|r| r.served(true));
    authenticated.chain(public).collect()
}

/// The routes behind the token check (when a token is configured).
fn authenticated_routes() -> Vec<Route<AdminState>> {
    [
        story::routes(),
        dead_letter::routes(),
        testers::routes(),
        config::routes(),
        audiences::routes(),
        regulations::routes(),
        samples::routes(),
        debugger::routes(),
        ops::routes(),
        overview::routes(),
        sandbox::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The routes answered without a token.
fn public_routes() -> Vec<Route<AdminState>> {
    [
        ops::public_routes(),
        openapi::routes(),
        sandbox::public_routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

async fn authenticate(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())) {
            return AdminError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized")
                .into_response();
        }
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive, as
/// HTTP says (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
        .filter(|token| !token.is_empty())
}

/// Compares without stopping at the first difference, so that timing tells nothing of the token.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An admin error: status and one `{"type", "message", "field"?}`.
#[derive(Debug)]
pub(crate) struct AdminError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    field: Option<Cow<'static, str>>,
    /// Further errors of the same type, `(message, field)`, when one answer lists several (a
    /// configuration with more than one problem).
    more: Vec<(String, Option<String>)>,
}

impl AdminError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            field: None,
            more: Vec::new(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(Cow::Borrowed(field)),
            ..Self::new(StatusCode::BAD_REQUEST, "validation", message)
        }
    }

    /// A 409: the id (or write key) is already taken.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// The answer's status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// Every message with the field it belongs to, as the API lists them.
    pub(crate) fn messages(&self) -> Vec<(String, Option<String>)> {
        let first = (
            self.message.clone(),
            self.field.as_ref().map(|field| field.to_string()),
        );
        std::iter::once(first).chain(self.more.clone()).collect()
    }

    /// A 400 listing validation errors, each `(message, field)`; `None` when there is none.
    pub(crate) fn validation(errors: Vec<(String, Option<String>)>) -> Option<Self> {
        let mut errors = errors.into_iter();
        let (message, field) = errors.next()?;
        Some(Self {
            field: field.map(Cow::Owned),
            more: errors.collect(),
            ..Self::new(StatusCode::BAD_REQUEST, "validation", message)
        })
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what } => Self::not_found(format!("{what} not found")),
            StoreError::InvalidRequest { detail } => {
                Self::new(StatusCode::BAD_REQUEST, "validation", detail)
            }
            err if err.is_retryable() => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                err.to_string(),
            ),
            err => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                err.to_string(),
            ),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let kind = self.kind;
        let view = |message: String, field: Option<String>| {
            let mut error = json!({"type": kind, "message": message});
            if let (Some(field), Some(object)) = (field, error.as_object_mut()) {
                object.insert("field".to_owned(), Value::from(field));
            }
            error
        };
        let mut errors = vec![view(self.message, self.field.map(Cow::into_owned))];
        errors.extend(
            self.more
                .into_iter()
                .map(|(message, field)| view(message, field)),
        );
        (self.status, Json(json!({"errors": errors}))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_loopback() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8081",
            "127.1.2.3:9",
            "localhost",
            "LOCALHOST:8081",
            "app.localhost:8081",
            "[::1]:8081",
            "[::1]",
            "localhost.",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "rebind.attacker.example",
            "rebind.attacker.example:8081",
            "localhost.attacker.example",
            "10.0.0.1:8081",
            "[::2]:8081",
            "0.0.0.0:8081",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER   abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

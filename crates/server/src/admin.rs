//! The admin API (on its own listener, under `/api/v1`): what an operator needs to see where an
//! event went and to repair failed deliveries. Responses are wrapped in `{"data": …}`; errors are
//! `{"errors": [{"type", "message", "field"?}]}`, as Segment's Public API shapes them.
//!
//! Every route requires `Authorization: Bearer <token>` when a token is configured; a wrong or
//! missing token gets a bare 401 that reveals nothing about what exists. Webhook URLs carry a
//! secret token in their path and query, so every URL shown is masked.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use junction_delivery::{HttpSender, ReplayMode, replay, test_authentication};
use junction_store::{
    AttemptRecord, DeadJob, DeadLetterFilter, EventRecord, Job, JobId, JobRecord, JobState,
    StoreError,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::AppState;

/// The most dead-letter jobs listed or replayed in one request.
const MAX_PAGE: usize = 1_000;

/// What the admin routes share.
#[derive(Clone)]
pub struct AdminState {
    app: AppState,
    sender: Arc<HttpSender>,
    token: Option<Arc<str>>,
}

impl AdminState {
    /// Admin routes over `app`'s store and snapshot; `sender` makes test requests the way
    /// deliveries go out; `token`, when set, is required as a bearer token.
    pub fn new(app: AppState, sender: Arc<HttpSender>, token: Option<String>) -> Self {
        Self {
            app,
            sender,
            token: token.map(Arc::from),
        }
    }
}

/// The admin router.
pub fn admin_app(state: AdminState) -> Router {
    Router::new()
        .route("/api/v1/events/{message_id}", get(lookup))
        .route("/api/v1/dead-letter", get(list_dead_letter))
        .route("/api/v1/dead-letter/replay", post(replay_dead_letter))
        .route(
            "/api/v1/destinations/{id}/test-authentication",
            post(test_destination_authentication),
        )
        .fallback(|| async { AdminError::not_found("no such admin route") })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

async fn authenticate(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())) {
            return AdminError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized")
                .into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so that timing tells nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An admin error: status and one `{"type", "message", "field"?}`.
#[derive(Debug)]
struct AdminError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl AdminError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            field: None,
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "validation", message)
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what } => Self::not_found(format!("{what} not found")),
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
        let mut error = json!({"type": self.kind, "message": self.message});
        if let (Some(field), Some(object)) = (self.field, error.as_object_mut()) {
            object.insert("field".to_owned(), Value::from(field));
        }
        (self.status, Json(json!({"errors": [error]}))).into_response()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    source: Option<String>,
}

/// The whole story of a `messageId`: each stored event with that id (per source), its duplicates,
/// routing outcomes, jobs with their transitions and attempts.
async fn lookup(
    State(state): State<AdminState>,
    Path(message_id): Path<String>,
    Query(query): Query<LookupQuery>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let sources: Vec<String> = match query.source {
        Some(source) => vec![source],
        None => snapshot
            .sources()
            .iter()
            .map(|s| s.id().to_owned())
            .collect(),
    };
    let mut events = Vec::new();
    for source in sources {
        let records = state
            .app
            .store()
            .events_by_message_id(&source, &message_id)
            .await?;
        events.extend(records.iter().map(event_view));
    }
    if events.is_empty() {
        return Err(AdminError::not_found(format!(
            "no event with messageId \"{message_id}\""
        )));
    }
    Ok(Json(
        json!({"data": {"message_id": message_id, "events": events}}),
    ))
}

fn event_view(record: &EventRecord) -> Value {
    let payload: Value = serde_json::from_slice(&record.payload).unwrap_or(Value::Null);
    json!({
        "id": record.id,
        "source_id": record.source_id,
        "received_at": record.received_at,
        "event": payload,
        "duplicates": record.duplicates,
        "discards": record.discards.iter().map(|discard| json!({
            "destination_id": discard.destination_id,
            "mapping_id": discard.subscription_id,
            "reason": discard.reason,
            "message": discard.message,
        })).collect::<Vec<_>>(),
        "jobs": record.jobs.iter().map(job_story).collect::<Vec<_>>(),
    })
}

fn job_story(record: &JobRecord) -> Value {
    let state = record
        .transitions
        .last()
        .map_or(JobState::Pending, |transition| transition.state);
    let mut view = job_view(&record.job);
    if let Some(object) = view.as_object_mut() {
        object.insert("state".to_owned(), json!(state));
        object.insert(
            "transitions".to_owned(),
            record
                .transitions
                .iter()
                .map(|t| {
                    json!({"seq": t.seq, "state": t.state, "at": t.at, "next_at": t.next_at,
                           "attempt": t.attempt, "detail": t.detail})
                })
                .collect(),
        );
        object.insert(
            "attempts".to_owned(),
            record.attempts.iter().map(attempt_view).collect(),
        );
    }
    view
}

fn job_view(job: &Job) -> Value {
    json!({
        "id": job.id,
        "event_id": job.event_id,
        "destination_id": job.destination_id,
        "mapping_id": job.subscription_id,
        "endpoint": job.endpoint,
        "created_at": job.created_at,
        "replay_of": job.replay_of,
        "request": {
            "method": job.method,
            "url": mask_url(&job.url),
            "headers": job.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": body_view(&job.body),
        },
    })
}

fn attempt_view(attempt: &AttemptRecord) -> Value {
    json!({
        "attempt": attempt.attempt,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "status": attempt.status,
        "error_class": attempt.error_class,
        "response_headers": attempt.response_headers.iter().map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>(),
        "response_excerpt": String::from_utf8_lossy(&attempt.response_excerpt),
    })
}

/// A body shown as JSON when it is, else as text.
fn body_view(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// `scheme://host/…`: the path and query of a webhook URL carry its secret token.
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if rest.len() > authority.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

/// Dead-letter filters, as query parameters or inside a replay request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterQuery {
    destination_id: Option<String>,
    mapping_id: Option<String>,
    state: Option<String>,
    error_class: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    #[serde(default)]
    include_replayed: bool,
    after: Option<i64>,
    limit: Option<usize>,
}

impl DeadLetterQuery {
    fn filter(self, job_ids: Vec<JobId>) -> Result<DeadLetterFilter, AdminError> {
        let state = match self.state.as_deref() {
            None => None,
            Some("discarded") => Some(JobState::Discarded),
            Some("expired") => Some(JobState::Expired),
            Some(other) => {
                return Err(AdminError::invalid(
                    "state",
                    format!("unknown state \"{other}\": expected discarded or expired"),
                ));
            }
        };
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_PAGE {
            return Err(AdminError::invalid(
                "limit",
                format!("limit must be from 1 to {MAX_PAGE}"),
            ));
        }
        Ok(DeadLetterFilter {
            job_ids,
            destination_id: self.destination_id,
            subscription_id: self.mapping_id,
            state,
            error_class: self.error_class,
            since: self.since,
            until: self.until,
            include_replayed: self.include_replayed,
            after: self.after.map(JobId),
            limit,
        })
    }
}

fn dead_view(dead: &DeadJob) -> Value {
    let mut view = job_view(&dead.job);
    if let Some(object) = view.as_object_mut() {
        for (key, value) in [
            ("state", json!(dead.state)),
            ("dead_at", json!(dead.at)),
            ("attempts", json!(dead.attempts)),
            ("status", json!(dead.status)),
            ("error_class", json!(dead.error_class)),
            ("detail", json!(dead.detail)),
            ("replayed_by", json!(dead.replayed_by)),
        ] {
            object.insert(key.to_owned(), value);
        }
    }
    view
}

/// Lists dead-letter jobs, filtered, by job id; `next` is the cursor of the following page.
async fn list_dead_letter(
    State(state): State<AdminState>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<Value>, AdminError> {
    let filter = query.filter(Vec::new())?;
    let limit = filter.limit;
    let jobs = state.app.store().dead_letter(filter).await?;
    let next = (jobs.len() == limit)
        .then(|| jobs.last().map(|dead| dead.job.id))
        .flatten();
    Ok(Json(json!({
        "data": jobs.iter().map(dead_view).collect::<Vec<_>>(),
        "pagination": {"next": next},
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    /// The jobs to replay; or, without it, those `filter` selects.
    #[serde(default)]
    job_ids: Vec<i64>,
    #[serde(default)]
    filter: Option<DeadLetterQuery>,
    mode: ReplayMode,
}

/// Replays a selection of the dead letter, as-is or re-mapped.
async fn replay_dead_letter(
    State(state): State<AdminState>,
    body: Result<Json<ReplayRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AdminError> {
    let Json(request) = body.map_err(|err| AdminError::invalid("body", err.body_text()))?;
    if request.job_ids.is_empty() && request.filter.is_none() {
        return Err(AdminError::invalid(
            "job_ids",
            "give job_ids, or a filter selecting the jobs to replay",
        ));
    }
    let mut query = request.filter.unwrap_or_default();
    if !request.job_ids.is_empty() {
        query.limit = Some(query.limit.unwrap_or(request.job_ids.len().min(MAX_PAGE)));
    }
    let filter = query.filter(request.job_ids.into_iter().map(JobId).collect())?;
    let snapshot = state.app.snapshot();
    let report = replay(&**state.app.store(), &snapshot, filter, request.mode).await?;
    Ok(Json(json!({"data": report})))
}

/// Sends the destination type's authentication test with the destination's settings.
async fn test_destination_authentication(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let Some(config) = snapshot.config().destinations.iter().find(|d| d.id == id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    let Some(destination) = snapshot.destination(&id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    let outcome =
        test_authentication(&state.sender, destination.definition(), &config.settings).await;
    let data = match outcome {
        Ok(true) => json!({"status": "success"}),
        Ok(false) => json!({"status": "not_supported",
                            "message": "this destination type has no authentication test"}),
        Err(err) => json!({"status": "failure", "message": err.to_string()}),
    };
    Ok(Json(json!({"data": data})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked_after_the_host() {
        assert_eq!(
            mask_url("https://user:pw@hooks.example/v1/segment/secret?x=1"),
            "https://hooks.example/…"
        );
        assert_eq!(mask_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(mask_url("nonsense"), "…");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

//! Event lookup: the whole story of a `messageId` (received, routed, each attempt, final state),
//! and the JSON views of jobs and attempts other admin modules reuse.

use axum::Json;
use axum::extract::{Path, Query, State};
use junction_store::{AttemptRecord, EventRecord, Job, JobRecord, JobState, JobUrl};
use junction_workspace::Snapshot;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminError, AdminState};
use crate::routes::Route;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![Route::get("/api/v1/events/{message_id}", lookup)]
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
    let data = story(&state, &message_id, query.source).await?;
    Ok(Json(json!({"data": data})))
}

/// The whole story of `message_id` (in `source`, or in every source): `{message_id, events}`.
pub(crate) async fn story(
    state: &AdminState,
    message_id: &str,
    source: Option<String>,
) -> Result<Value, AdminError> {
    let snapshot = state.app.snapshot();
    let sources: Vec<String> = match source {
        Some(source) => vec![source],
        // Audience syncs are stored under a source of their own.
        None => snapshot
            .sources()
            .iter()
            .map(|s| s.id().to_owned())
            .chain(std::iter::once(
                junction_profiles::PERSONAS_SOURCE.to_owned(),
            ))
            .collect(),
    };
    let mut events = Vec::new();
    for source in sources {
        let records = state
            .app
            .store()
            .events_by_message_id(&source, message_id)
            .await?;
        events.extend(records.iter().map(|record| event_view(&snapshot, record)));
    }
    if events.is_empty() {
        return Err(AdminError::not_found(format!(
            "no event with messageId \"{message_id}\""
        )));
    }
    Ok(json!({"message_id": message_id, "events": events}))
}

fn event_view(snapshot: &Snapshot, record: &EventRecord) -> Value {
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
        "jobs": record.jobs.iter().map(|job| job_story(snapshot, job)).collect::<Vec<_>>(),
    })
}

fn job_story(snapshot: &Snapshot, record: &JobRecord) -> Value {
    let state = record
        .transitions
        .last()
        .map_or(JobState::Pending, |transition| transition.state);
    let mut view = job_view(snapshot, &record.job);
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
            record
                .attempts
                .iter()
                .map(|attempt| attempt_view(attempt, attempt_reason(record, attempt.attempt)))
                .collect(),
        );
    }
    view
}

/// Why attempt `number` failed: the detail of the transition it led to (the completion records
/// the attempt and its transition together; a success has none).
fn attempt_reason(record: &JobRecord, number: u32) -> Option<&str> {
    record
        .transitions
        .iter()
        .rev()
        .find(|transition| transition.attempt == number && transition.state != JobState::Pending)
        .and_then(|transition| transition.detail.as_deref())
}

/// A job's request as shown: its URL masked after the host. A job addressed to a URL setting
/// shows the setting's value now (where it will go, or went last) and names the setting.
pub(super) fn job_view(snapshot: &Snapshot, job: &Job) -> Value {
    let (url, url_setting) = match &job.url {
        JobUrl::Fixed(url) => (Some(mask_url(url)), None),
        JobUrl::Setting(key) => (
            snapshot
                .setting_url(&job.destination_id, key)
                .ok()
                .map(mask_url),
            Some(key.as_str()),
        ),
    };
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
            "url": url,
            "url_setting": url_setting,
            "headers": job.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": body_view(&job.body),
        },
    })
}

fn attempt_view(attempt: &AttemptRecord, reason: Option<&str>) -> Value {
    json!({
        "attempt": attempt.attempt,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "status": attempt.status,
        "error_class": attempt.error_class,
        "error": if attempt.error_class.is_some() { reason } else { None },
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
pub(crate) fn mask_url(url: &str) -> String {
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
}

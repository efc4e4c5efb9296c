//! The dead letter: list discarded and expired jobs with filters, and replay a selection as-is or
//! re-mapped.

use axum::Json;
use axum::extract::{Query, State};
use junction_delivery::{ReplayMode, replay};
use junction_store::{DeadJob, DeadLetterFilter, JobId, JobState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::integral;
use super::story::job_view;
use super::{AdminError, AdminState};
use crate::routes::Route;
use junction_workspace::Snapshot;

/// The most dead-letter jobs listed or replayed in one request.
const MAX_PAGE: usize = 1_000;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/api/v1/dead-letter", list_dead_letter),
        Route::post("/api/v1/dead-letter/replay", replay_dead_letter),
    ]
}

/// Dead-letter filters, as query parameters or inside a replay request.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetterQuery {
    pub(crate) destination_id: Option<String>,
    pub(crate) mapping_id: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) error_class: Option<String>,
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
    #[serde(default)]
    pub(crate) include_replayed: bool,
    pub(crate) after: Option<i64>,
    pub(crate) limit: Option<usize>,
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

fn dead_view(snapshot: &Snapshot, dead: &DeadJob) -> Value {
    let mut view = job_view(snapshot, &dead.job);
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
    let (jobs, next) = dead_letter_page(&state, query).await?;
    Ok(Json(json!({
        "data": jobs,
        "pagination": {"next": next},
    })))
}

/// One page of the dead letter, filtered, by job id, and the cursor of the next page.
pub(crate) async fn dead_letter_page(
    state: &AdminState,
    query: DeadLetterQuery,
) -> Result<(Vec<Value>, Option<JobId>), AdminError> {
    let filter = query.filter(Vec::new())?;
    let limit = filter.limit;
    let jobs = state.app.store().dead_letter(filter).await?;
    let next = (jobs.len() == limit)
        .then(|| jobs.last().map(|dead| dead.job.id))
        .flatten();
    let snapshot = state.app.snapshot();
    Ok((
        jobs.iter().map(|dead| dead_view(&snapshot, dead)).collect(),
        next,
    ))
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
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AdminError> {
    let Json(mut body) = body.map_err(|err| super::config::body_error(&err))?;
    // Job ids and the filter's numbers are integers however JSON writes them (`7.0`, `7e0`).
    if let Some(ids) = body.get_mut("job_ids").and_then(Value::as_array_mut) {
        ids.iter_mut().for_each(integral);
    }
    if let Some(filter) = body.get_mut("filter").and_then(Value::as_object_mut) {
        for key in ["since", "until", "after", "limit"] {
            if let Some(value) = filter.get_mut(key) {
                integral(value);
            }
        }
    }
    let request: ReplayRequest = serde_json::from_value(body)
        .map_err(|err| AdminError::invalid("body", format!("invalid replay request: {err}")))?;
    if request.job_ids.is_empty() && request.filter.is_none() {
        return Err(AdminError::invalid(
            "job_ids",
            "give job_ids, or a filter selecting the jobs to replay",
        ));
    }
    let report = replay_selection(
        &state,
        request.job_ids,
        request.filter.unwrap_or_default(),
        request.mode,
    )
    .await?;
    Ok(Json(json!({"data": report})))
}

/// Replays the jobs `job_ids` names, or, without any, those `query` selects (one page of at
/// most [`MAX_PAGE`]); the replay's report.
pub(crate) async fn replay_selection(
    state: &AdminState,
    job_ids: Vec<i64>,
    mut query: DeadLetterQuery,
    mode: ReplayMode,
) -> Result<Value, AdminError> {
    if !job_ids.is_empty() {
        query.limit = Some(query.limit.unwrap_or(job_ids.len().min(MAX_PAGE)));
    }
    let filter = query.filter(job_ids.into_iter().map(JobId).collect())?;
    let snapshot = state.app.snapshot();
    let report = replay(&**state.app.store(), &snapshot, filter, mode).await?;
    Ok(json!(report))
}

/// Where the replays of a replay stand: `(replay job id, event id)` pairs in, counts of
/// delivered, failed (discarded or expired again) and still pending out (a service the app
/// shares). Replays whose event is gone (retention) count as failed.
pub(crate) async fn replay_progress(
    state: &AdminState,
    replays: &[(i64, i64)],
) -> Result<ReplayProgress, AdminError> {
    let mut by_event: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (replay, event) in replays {
        by_event.entry(*event).or_default().push(*replay);
    }
    let mut progress = ReplayProgress::default();
    for (event, jobs) in by_event {
        let record = state
            .app
            .store()
            .event(junction_store::EventId(event))
            .await?;
        for job in jobs {
            let last = record.as_ref().and_then(|record| {
                record
                    .jobs
                    .iter()
                    .find(|j| j.job.id.0 == job)
                    .and_then(|j| j.transitions.last())
                    .map(|t| t.state)
            });
            match last {
                Some(junction_store::JobState::Succeeded) => progress.delivered += 1,
                Some(junction_store::JobState::Discarded | junction_store::JobState::Expired)
                | None => progress.failed += 1,
                Some(_) => progress.pending += 1,
            }
        }
    }
    Ok(progress)
}

/// See [`replay_progress`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayProgress {
    pub(crate) delivered: usize,
    pub(crate) failed: usize,
    pub(crate) pending: usize,
}

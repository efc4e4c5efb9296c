//! The Tracking API handler: authenticate the write key, read the (decompressed, size-limited)
//! body, parse and validate it, normalise and route every valid event against the current
//! snapshot, commit events, jobs and discards through the store, and answer only once the commit
//! is durable. Every refusal is counted, logged and kept in the recent-refusals log; accepted
//! events are counted (metrics) and handed to the source debugger's feed after the commit.
//! Events carrying a suppressed identifier (a regulation) are acknowledged like the others, so
//! that clients do not retry, but neither stored nor routed: only counted as `suppressed`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use junction_event::{
    Endpoint, EventRejection, Limits, NormaliseContext, ParsedRequest, message_id, normalise,
    parse_request, random_message_id, write_key_from_basic,
};
use junction_profiles::Suppressions;
use junction_store::{CommitOutcome, NewEvent, StoreError, UnixMillis};
use junction_workspace::{RouteOutcome, Snapshot, route};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{ApiError, RejectedItem};
use crate::extract::read_limited;
use crate::metrics::RoutingTally;
use crate::rejections::RejectionRecord;
use crate::state::AppState;

/// Bodies up to this size are parsed and routed on the async worker; larger ones go to a
/// blocking thread, so that a big batch (up to 2,500 events to parse, normalise and route) never
/// holds an async worker for milliseconds, while single events and small batches (the common
/// case) avoid the hand-off.
const INLINE_BODY_BYTES: usize = 16 * 1024;

/// A refusal of the whole request, with the source when the write key was already known.
struct Refused {
    source_id: Option<String>,
    error: ApiError,
}

impl Refused {
    fn anonymous(error: ApiError) -> Self {
        Self {
            source_id: None,
            error,
        }
    }
}

/// The answer to a batch whose valid events were stored.
#[derive(Serialize)]
struct BatchAnswer {
    success: bool,
    /// Events acknowledged: stored, duplicates of stored ones, or suppressed.
    accepted: usize,
    /// The refused items, by position.
    rejected: Vec<RejectedItem>,
}

/// `POST /v1/identify`, `/v1/batch`, …: every Tracking API endpoint ([`crate::TRACKING_PATHS`]).
pub(crate) async fn track(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.ingest_stats().request();
    let received_at = SystemTime::now();
    let path = uri.path();
    match ingest(&state, path, &headers, body, received_at).await {
        Ok(response) => response,
        Err(refused) => refuse(&state, path, refused, received_at),
    }
}

/// The most of a `/v1/m` body read: analytics.js sends a few counters.
const CLIENT_METRICS_BYTES: usize = 64 * 1024;

/// `POST /v1/m`: analytics.js's telemetry about itself (`{"series": [...]}`), sent without a write
/// key every 30 s. Not events: read (within the listener's limits), counted apart and discarded,
/// and answered as Segment's API does, so that the browser console shows no error and nothing
/// counts as a refusal.
pub(crate) async fn client_metrics(State(state): State<AppState>, body: Body) -> Response {
    // Read to the end, so that the connection can be kept alive; the content does not matter.
    let _ = read_limited(body, CLIENT_METRICS_BYTES).await;
    state.metrics().client_metrics_post();
    Json(json!({"success": true})).into_response()
}

async fn ingest(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    body: Body,
    received_at: SystemTime,
) -> Result<Response, Refused> {
    let endpoint = Endpoint::from_path(path)
        .ok_or_else(|| Refused::anonymous(ApiError::NotFound(path.to_owned())))?;
    let snapshot = state.snapshot();

    // The Basic header is checked before the body is read: an unknown key costs no parsing.
    let basic_key = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(write_key_from_basic);
    let basic_source = match &basic_key {
        Some(key) => match snapshot.source_for_write_key(key) {
            Some(source) => Some(source.id().to_owned()),
            None => return Err(Refused::anonymous(ApiError::UnknownWriteKey)),
        },
        None => None,
    };
    let refused = |error| Refused {
        source_id: basic_source.clone(),
        error,
    };

    // The decompression layer removes `Content-Encoding: gzip` once it inflates the body; any
    // other coding passes through undecoded and is refused here, in our error format.
    if let Some(coding) = headers.get(header::CONTENT_ENCODING)
        && !coding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(refused(ApiError::UnsupportedEncoding));
    }

    let limits = state.config().limits;
    // A body announced larger than the limit is refused before a byte of it is read (a gzip
    // body's length is compressed, so only an identity body is judged by its header).
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let gzip = headers.contains_key(header::CONTENT_ENCODING);
    if !gzip
        && announced.is_some_and(|length| {
            length > u64::try_from(limits.max_request_bytes).unwrap_or(u64::MAX)
        })
    {
        return Err(refused(ApiError::BodyTooLarge {
            limit: limits.max_request_bytes,
        }));
    }
    let body = read_limited(body, limits.max_request_bytes)
        .await
        .map_err(refused)?;

    let work = Work {
        endpoint,
        body,
        basic_key,
        snapshot,
        limits,
        received_at,
        profiles: state.config().profiles,
        suppressions: state.suppressions().cloned(),
    };
    let prepared = if work.body.len() > INLINE_BODY_BYTES {
        tokio::task::spawn_blocking(move || work.prepare())
            .await
            .map_err(|join| {
                refused(ApiError::Store(
                    StoreError::Backend(Box::new(join)),
                    state.config().retry_after,
                ))
            })?
    } else {
        work.prepare()
    }?;

    let Prepared {
        source_id,
        events,
        mut rejected,
        suppressed,
    } = prepared;
    let source_metrics = state.metrics().source(&source_id);
    source_metrics.received(to_u64(events.len() + suppressed + rejected.len()));
    if suppressed > 0 {
        source_metrics.suppressed(to_u64(suppressed));
        tracing::debug!(source = %source_id, suppressed, "suppressed events acknowledged, not stored");
    }
    if let Endpoint::Single(_) = endpoint
        && let Some((_, rejection)) = rejected.pop()
    {
        return Err(Refused {
            source_id: Some(source_id),
            error: ApiError::Event(rejection),
        });
    }
    let rejected: Vec<RejectedItem> = rejected
        .iter()
        .map(|(index, rejection)| RejectedItem::new(*index, rejection))
        .collect();
    record_items(state, path, &source_id, &rejected, received_at);
    if events.is_empty() && suppressed == 0 && !rejected.is_empty() {
        // Every item was refused: 400, so that clients do not resend what can never pass.
        return Ok(ApiError::NoValidEvents { rejected }.into_response());
    }

    let accepted = events.len() + suppressed;
    // Both are taken before the commit consumes the events; both are cheap (see their docs).
    let routing = RoutingTally::of(&events);
    let captured = state.live().capture(&source_id, &events);
    let started = Instant::now();
    let committed = state.store().commit(events).await;
    state.metrics().commit_duration(started.elapsed());
    let outcomes = match committed {
        Ok(outcomes) => outcomes,
        Err(err) => {
            if matches!(err, StoreError::Overloaded { .. }) {
                state.ingest_stats().overloaded();
            }
            return Err(Refused {
                source_id: Some(source_id),
                error: ApiError::Store(err, state.config().retry_after),
            });
        }
    };
    let duplicates = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, CommitOutcome::Duplicate { .. }))
        .count();
    let stored = outcomes.len() - duplicates;
    state
        .ingest_stats()
        .committed(to_u64(stored), to_u64(duplicates));
    source_metrics.accepted(to_u64(stored), to_u64(duplicates));
    routing.record(state.metrics(), &outcomes);
    if let Some(captured) = captured {
        state.live().publish(&source_id, captured, &outcomes);
    }
    if duplicates > 0 {
        tracing::debug!(source = %source_id, duplicates, "duplicate events acknowledged");
    }

    let response = match endpoint {
        Endpoint::Single(_) => Json(json!({"success": true})).into_response(),
        Endpoint::Batch => Json(BatchAnswer {
            success: true,
            accepted,
            rejected,
        })
        .into_response(),
    };
    Ok(response)
}

/// What the CPU-bound part of a request needs; owned so that it can move to a blocking thread.
struct Work {
    endpoint: Endpoint,
    body: Vec<u8>,
    basic_key: Option<String>,
    snapshot: std::sync::Arc<Snapshot>,
    limits: Limits,
    received_at: SystemTime,
    /// Whether events go to the profile worker.
    profiles: bool,
    suppressions: Option<std::sync::Arc<Suppressions>>,
}

/// A parsed request: the events to commit (normalised and routed) and the refused items.
struct Prepared {
    source_id: String,
    events: Vec<NewEvent>,
    rejected: Vec<(usize, EventRejection)>,
    /// Valid events dropped because they carry a suppressed identifier.
    suppressed: usize,
}

impl Work {
    fn prepare(self) -> Result<Prepared, Refused> {
        let snapshot = &*self.snapshot;
        let basic_source = self
            .basic_key
            .as_deref()
            .and_then(|key| snapshot.source_for_write_key(key));
        let parsed =
            parse_request(self.endpoint, &self.body, &self.limits).map_err(|err| Refused {
                source_id: basic_source.map(|source| source.id().to_owned()),
                error: ApiError::Request(err),
            })?;
        let ParsedRequest {
            write_key,
            sent_at,
            events: items,
        } = parsed;
        let source = match (basic_source, write_key) {
            (Some(source), _) => source,
            (None, Some(key)) => snapshot
                .source_for_write_key(&key)
                .ok_or_else(|| Refused::anonymous(ApiError::UnknownWriteKey))?,
            (None, None) => return Err(Refused::anonymous(ApiError::MissingWriteKey)),
        };

        let ctx = NormaliseContext::new(self.received_at, sent_at.as_ref(), &random_message_id);
        let received_ms = unix_millis(self.received_at);
        let mut events = Vec::with_capacity(items.len());
        // Events of one request are alike: each payload buffer starts at the size of the one
        // before, so that serialising rarely grows (copies) it.
        let mut payload_capacity = 1024;
        let mut rejected = Vec::new();
        let mut suppressed = 0;
        for (index, item) in items.into_iter().enumerate() {
            let mut event = match item {
                Ok(event) => event,
                Err(rejection) => {
                    rejected.push((index, rejection));
                    continue;
                }
            };
            normalise(&mut event, &ctx);
            let message_id = message_id(&event).map_or_else(random_message_id, str::to_owned);
            let event = Value::Object(event);
            if self
                .suppressions
                .as_ref()
                .is_some_and(|suppressions| suppressions.covers(&event))
            {
                suppressed += 1;
                continue;
            }
            let mut jobs = Vec::new();
            let mut discards = Vec::new();
            for outcome in route(snapshot, source, &event) {
                match outcome {
                    RouteOutcome::Job(job) => jobs.push(job.into_new_job()),
                    RouteOutcome::Discard(discard) => discards.push(discard),
                }
            }
            let mut payload = Vec::with_capacity(payload_capacity);
            let payload = match serde_json::to_writer(&mut payload, &event) {
                Ok(()) => {
                    payload_capacity = payload.len() + payload.len() / 8;
                    payload
                }
                Err(err) => {
                    // Unreachable for a parsed value; refusing beats storing a broken payload.
                    rejected.push((
                        index,
                        EventRejection::MalformedJson {
                            message: err.to_string(),
                        },
                    ));
                    continue;
                }
            };
            events.push(NewEvent {
                source_id: source.id().to_owned(),
                message_id,
                received_at: received_ms,
                payload,
                jobs,
                discards,
                for_profiles: self.profiles && junction_audience::feeds_profiles(&event),
            });
        }
        Ok(Prepared {
            source_id: source.id().to_owned(),
            events,
            rejected,
            suppressed,
        })
    }
}

/// Records, logs and answers a refusal of the whole request.
fn refuse(state: &AppState, path: &str, refused: Refused, received_at: SystemTime) -> Response {
    let Refused { source_id, error } = refused;
    let code = error.code();
    let message = error.to_string();
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!(
            source = source_id.as_deref().unwrap_or("-"),
            path,
            code,
            error = %message,
            "tracking request not stored"
        );
    } else {
        // A client's mistake: one line each at debug level, and a summary at warn level at most
        // once a minute, so that a misbehaving client cannot flood the log.
        tracing::debug!(
            source = source_id.as_deref().unwrap_or("-"),
            path,
            code,
            error = %message,
            "tracking request refused"
        );
        log_summary(state, code);
    }
    state.ingest_stats().rejected_request();
    state.rejections().record(RejectionRecord {
        at: unix_millis(received_at),
        source_id,
        path: path.to_owned(),
        index: None,
        code,
        message,
    });
    error.into_response()
}

/// Writes the refusals' summary when one is due (see [`crate::Rejections::summarise`]).
fn log_summary(state: &AppState, code: &'static str) {
    if let Some(summary) = state.rejections().summarise(code, Instant::now()) {
        tracing::warn!(
            refusals = %summary,
            "tracking requests or events refused since the last such line (each one is logged \
             at debug level; GET /metrics counts them by source and reason)"
        );
    }
}

/// Records and logs the refused items of a batch whose other items go on.
fn record_items(
    state: &AppState,
    path: &str,
    source_id: &str,
    rejected: &[RejectedItem],
    received_at: SystemTime,
) {
    let Some(first) = rejected.first() else {
        return;
    };
    tracing::debug!(
        source = source_id,
        path,
        rejected = rejected.len(),
        code = first.code,
        error = %first.error,
        "batch events refused"
    );
    log_summary(state, first.code);
    state.ingest_stats().rejected(to_u64(rejected.len()));
    let at = unix_millis(received_at);
    for item in rejected {
        state.rejections().record(RejectionRecord {
            at,
            source_id: Some(source_id.to_owned()),
            path: path.to_owned(),
            index: Some(item.index),
            code: item.code,
            message: item.error.clone(),
        });
    }
}

fn unix_millis(time: SystemTime) -> UnixMillis {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

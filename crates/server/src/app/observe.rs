//! Watching and repairing delivery: the event tester (an event through every enabled mapping,
//! built first, sent for real only after a confirmation), the delivery overview (funnel, a
//! server-drawn SVG time series with its numbers, discard reasons and failures with sample
//! links), an event's whole story, and the dead letter with filtered replay.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use junction_delivery::ReplayMode;
use serde::Deserialize;
use serde_json::Value;

use super::destinations::{DestHead, dest_head};
use super::form::FormData;
use super::mappings::recent_of;
use super::{
    Chrome, SessionInfo, count, error_page, iso_time, messages, pretty, render, render_with, text,
};
use crate::admin::dead_letter::{
    DeadLetterQuery, dead_letter_page, replay_progress, replay_selection,
};
use crate::admin::overview::{OverviewParams, destination_overview};
use crate::admin::story::story;
use crate::admin::testers::run_event_test;
use crate::admin::{AdminError, AdminState};

// ---------------------------------------------------------------------------------------------
// Event tester

/// One mapping's result in the event tester.
pub(crate) struct TesterResult {
    pub(crate) mapping: String,
    pub(crate) matched: bool,
    pub(crate) outcome: String,
    pub(crate) request: String,
    pub(crate) response: String,
    pub(crate) error: Option<String>,
}

#[derive(Template)]
#[template(path = "tester.html")]
struct TesterPage {
    chrome: Chrome,
    dest: DestHead,
    /// The destination's sources' recent events, `(messageId, label)`, to load one.
    recent: Vec<(String, String)>,
    event: String,
    error: Option<String>,
    results: Vec<TesterResult>,
    sent: bool,
    ran: bool,
}

const SAMPLE: &str = r#"{
  "type": "identify",
  "userId": "user-1",
  "traits": {"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"}
}"#;

/// The event to start from (`?message_id=` of a recent event of the destination's sources, as
/// the debugger links to it).
#[derive(Deserialize)]
pub(crate) struct TesterQuery {
    message_id: Option<String>,
}

/// `GET /destinations/{id}/tester`.
pub(crate) async fn tester(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    Query(query): Query<TesterQuery>,
) -> Response {
    let dest = match dest_head(&state, &id, "tester") {
        Ok(dest) => dest,
        Err(err) => return error_page(&session, &err),
    };
    let recent = recent_of(&state, &id);
    let chosen = query.message_id.and_then(|wanted| {
        recent
            .iter()
            .find(|(message_id, _, _)| *message_id == wanted)
            .map(|(_, _, event)| pretty(event))
    });
    render(&TesterPage {
        chrome: Chrome::new(
            &session,
            format!("{} event tester", dest.name),
            "destinations",
        ),
        recent: recent
            .into_iter()
            .map(|(message_id, label, _)| (message_id, label))
            .collect(),
        dest,
        event: chosen.unwrap_or_else(|| SAMPLE.to_owned()),
        error: None,
        results: Vec::new(),
        sent: false,
        ran: false,
    })
}

/// `POST /destinations/{id}/tester`: `op=check` builds each mapping's request without sending;
/// `op=send` with the confirmation ticked sends them for real.
pub(crate) async fn run_tester(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let dest = match dest_head(&state, &id, "tester") {
        Ok(dest) => dest,
        Err(err) => return error_page(&session, &err),
    };
    let event_text = form.text("event").to_owned();
    let mut page = TesterPage {
        chrome: Chrome::new(
            &session,
            format!("{} event tester", dest.name),
            "destinations",
        ),
        recent: recent_of(&state, &id)
            .into_iter()
            .map(|(message_id, label, _)| (message_id, label))
            .collect(),
        dest,
        event: event_text.clone(),
        error: None,
        results: Vec::new(),
        sent: false,
        ran: false,
    };
    let send = form.text("op") == "send";
    if send && !form.checked("confirm") {
        page.error = Some(
            "Tick “Send real requests” to send: they reach the destination like any delivery."
                .to_owned(),
        );
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let event: Value = match serde_json::from_str(&event_text) {
        Ok(event) => event,
        Err(err) => {
            page.error = Some(format!("The event is not JSON: {err}"));
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    match run_event_test(&state, &id, event, send).await {
        Ok(data) => {
            page.ran = true;
            page.sent = send;
            page.results = data["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|result| {
                    let request = &result["request"];
                    let response = &result["response"];
                    TesterResult {
                        mapping: text(&result["mapping_id"]),
                        matched: result["matched"].as_bool().unwrap_or(false),
                        outcome: text(&result["outcome"]),
                        request: if request.is_null() {
                            String::new()
                        } else {
                            format!(
                                "{} {}\n\n{}",
                                text(&request["method"]),
                                text(&request["url"]),
                                pretty(&request["body"])
                            )
                        },
                        response: if response.is_null() {
                            String::new()
                        } else {
                            format!(
                                "HTTP {}\n\n{}",
                                response["status"],
                                pretty(&response["body"])
                            )
                        },
                        error: result["error"]["message"].as_str().map(str::to_owned),
                    }
                })
                .collect();
            render(&page)
        }
        Err(err) => {
            page.error = Some(messages(&err));
            render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery overview

/// One step of the funnel.
pub(crate) struct Step {
    pub(crate) label: String,
    pub(crate) count: u64,
    pub(crate) percent: String,
    /// Width of its bar, 0–100.
    pub(crate) width: u64,
    pub(crate) samples: Vec<String>,
    pub(crate) tone: &'static str,
}

/// One failure with its reason.
pub(crate) struct Failure {
    pub(crate) message_id: String,
    pub(crate) at: String,
    pub(crate) status: String,
    pub(crate) reason: String,
    pub(crate) mapping: String,
}

/// One point of the series table.
pub(crate) struct Point {
    pub(crate) start: String,
    pub(crate) received: u64,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    dest: DestHead,
    window: String,
    windows: Vec<(&'static str, &'static str)>,
    mapping: String,
    mappings: Vec<(String, String)>,
    steps: Vec<Step>,
    discards: Vec<Step>,
    failures: Vec<Failure>,
    points: Vec<Point>,
    chart: Chart,
    p50: String,
    p95: String,
    error: Option<String>,
}

/// The time series drawn as SVG by the server: polylines of received, delivered and failed.
pub(crate) struct Chart {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) received: String,
    pub(crate) delivered: String,
    pub(crate) failed: String,
    pub(crate) max: u64,
    pub(crate) first: String,
    pub(crate) last: String,
}

/// `points` of `series` scaled into a `width` × `height` box, as an SVG `points` attribute.
fn polyline(series: &[u64], max: u64, width: u32, height: u32) -> String {
    let n = series.len().max(2) - 1;
    let max = max.max(1) as f64;
    series
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let x = f64::from(width) * i as f64 / n as f64;
            let y = f64::from(height) - f64::from(height) * (*value as f64) / max;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn chart(series: &[Value]) -> Chart {
    let pick = |key: &str| -> Vec<u64> { series.iter().map(|p| count(&p[key])).collect() };
    let received = pick("received");
    let delivered = pick("delivered");
    let failed = pick("failed");
    let max = received
        .iter()
        .chain(&delivered)
        .chain(&failed)
        .copied()
        .max()
        .unwrap_or(0);
    let (width, height) = (720, 180);
    let time = |point: Option<&Value>| {
        point
            .and_then(|p| p["start"].as_i64())
            .map(iso_time)
            .unwrap_or_default()
    };
    Chart {
        width,
        height,
        received: polyline(&received, max, width, height),
        delivered: polyline(&delivered, max, width, height),
        failed: polyline(&failed, max, width, height),
        max,
        first: time(series.first()),
        last: time(series.last()),
    }
}

/// The overview's window and mapping.
#[derive(Deserialize)]
pub(crate) struct OverviewQuery {
    window: Option<String>,
    mapping: Option<String>,
}

const WINDOWS: [(&str, &str); 6] = [
    ("10m", "10 minutes"),
    ("1h", "1 hour"),
    ("6h", "6 hours"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("14d", "14 days"),
];

/// `GET /destinations/{id}/overview?window=1h&mapping=…`.
pub(crate) async fn overview(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    Query(query): Query<OverviewQuery>,
) -> Response {
    let dest = match dest_head(&state, &id, "overview") {
        Ok(dest) => dest,
        Err(err) => return error_page(&session, &err),
    };
    let window = query.window.unwrap_or_else(|| "1h".to_owned());
    let mapping = query.mapping.filter(|m| !m.is_empty());
    let mappings = mapping_choices(&state, &id);
    let params = OverviewParams {
        window: Some(window.clone()),
        bucket: None,
        mapping_id: mapping.clone(),
    };
    let mut page = OverviewPage {
        chrome: Chrome::new(
            &session,
            format!("{} delivery overview", dest.name),
            "destinations",
        ),
        dest,
        windows: WINDOWS.to_vec(),
        window,
        mapping: mapping.unwrap_or_default(),
        mappings,
        steps: Vec::new(),
        discards: Vec::new(),
        failures: Vec::new(),
        points: Vec::new(),
        chart: chart(&[]),
        p50: String::new(),
        p95: String::new(),
        error: None,
    };
    let data = match destination_overview(&state, &id, params).await {
        Ok(data) => data,
        Err(err) => {
            page.error = Some(messages(&err));
            return render_with(err.status(), &page);
        }
    };
    let totals = &data["totals"]["destination"];
    let received = count(&totals["received"]);
    let samples = |value: &Value| -> Vec<String> {
        value["samples"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let step = |label: &str, value: &Value, tone: &'static str| {
        let n = count(value);
        Step {
            label: label.to_owned(),
            count: n,
            percent: if received == 0 {
                "–".to_owned()
            } else {
                format!("{:.1}%", n as f64 * 100.0 / received as f64)
            },
            width: n
                .saturating_mul(100)
                .checked_div(received)
                .unwrap_or(0)
                .min(100),
            samples: samples(value),
            tone,
        }
    };
    let discarded_total: u64 = totals["discarded"]
        .as_object()
        .map(|d| d.values().map(count).sum())
        .unwrap_or(0);
    page.steps = vec![
        step("Received", &totals["received"], "neutral"),
        step(
            "Filtered by integrations",
            &totals["filtered_by_integrations"],
            "muted",
        ),
        step(
            "Not matched by any trigger",
            &totals["not_matched"],
            "muted",
        ),
        step("Discarded", &Value::from(discarded_total), "warn"),
        step("Jobs created", &totals["jobs"], "neutral"),
        step("Retried", &totals["retried"], "warn"),
        step("Failed", &totals["failed"], "bad"),
        step("Delivered", &totals["delivered"], "good"),
    ];
    page.discards = totals["discarded"]
        .as_object()
        .map(|reasons| {
            reasons
                .iter()
                .map(|(reason, value)| step(&reason.replace('_', " "), value, "warn"))
                .collect()
        })
        .unwrap_or_default();
    page.failures = totals["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|failure| Failure {
            message_id: text(&failure["message_id"]),
            at: failure["at"].as_i64().map(iso_time).unwrap_or_default(),
            status: text(&failure["status"]),
            reason: text(&failure["reason"]),
            mapping: text(&failure["mapping_id"]),
        })
        .collect();
    let series = data["series"].as_array().cloned().unwrap_or_default();
    page.chart = chart(&series);
    page.points = series
        .iter()
        .filter(|p| count(&p["received"]) + count(&p["delivered"]) + count(&p["failed"]) > 0)
        .map(|p| Point {
            start: p["start"].as_i64().map(iso_time).unwrap_or_default(),
            received: count(&p["received"]),
            delivered: count(&p["delivered"]),
            failed: count(&p["failed"]),
        })
        .collect();
    page.p50 = text(&totals["latency_ms"]["p50"]);
    page.p95 = text(&totals["latency_ms"]["p95"]);
    render(&page)
}

// ---------------------------------------------------------------------------------------------
// Event story

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    chrome: Chrome,
    message_id: String,
    events: Vec<StoryEvent>,
}

/// One stored event of a story.
pub(crate) struct StoryEvent {
    pub(crate) source: String,
    pub(crate) received_at: String,
    pub(crate) duplicates: String,
    pub(crate) event: String,
    pub(crate) discards: Vec<(String, String, String)>,
    pub(crate) jobs: Vec<StoryJob>,
}

/// One job of a story, with every attempt.
pub(crate) struct StoryJob {
    pub(crate) id: String,
    pub(crate) destination: String,
    pub(crate) mapping: String,
    pub(crate) state: String,
    pub(crate) request: String,
    pub(crate) replay_of: String,
    pub(crate) transitions: Vec<(String, String, String)>,
    pub(crate) attempts: Vec<(String, String, String, String, String)>,
}

/// `GET /events/{message_id}`: the whole story.
pub(crate) async fn event(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(message_id): Path<String>,
) -> Response {
    let data = match story(&state, &message_id, None).await {
        Ok(data) => data,
        Err(err) => return error_page(&session, &err),
    };
    let events = data["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|event| StoryEvent {
            source: text(&event["source_id"]),
            received_at: event["received_at"]
                .as_i64()
                .map(iso_time)
                .unwrap_or_default(),
            duplicates: event["duplicates"]
                .as_array()
                .map_or_else(|| text(&event["duplicates"]), |d| d.len().to_string()),
            event: pretty(&event["event"]),
            discards: event["discards"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        text(&d["mapping_id"]),
                        text(&d["reason"]),
                        text(&d["message"]),
                    )
                })
                .collect(),
            jobs: event["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|job| {
                    let request = &job["request"];
                    StoryJob {
                        id: text(&job["id"]),
                        destination: text(&job["destination_id"]),
                        mapping: text(&job["mapping_id"]),
                        state: text(&job["state"]),
                        replay_of: text(&job["replay_of"]),
                        request: format!(
                            "{} {}\n\n{}",
                            text(&request["method"]),
                            text(&request["url"]),
                            pretty(&request["body"])
                        ),
                        transitions: job["transitions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|t| {
                                (
                                    t["at"].as_i64().map(iso_time).unwrap_or_default(),
                                    text(&t["state"]),
                                    text(&t["detail"]),
                                )
                            })
                            .collect(),
                        attempts: job["attempts"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| {
                                (
                                    text(&a["attempt"]),
                                    a["started_at"].as_i64().map(iso_time).unwrap_or_default(),
                                    text(&a["status"]),
                                    format!("{} ms", text(&a["duration_ms"])),
                                    format!(
                                        "{}{}",
                                        text(&a["error"]),
                                        if a["response_excerpt"]
                                            .as_str()
                                            .is_some_and(|s| !s.is_empty())
                                        {
                                            format!(" — {}", text(&a["response_excerpt"]))
                                        } else {
                                            String::new()
                                        }
                                    ),
                                )
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    render(&EventPage {
        chrome: Chrome::new(&session, format!("Event {message_id}"), "destinations"),
        message_id,
        events,
    })
}

/// Destination `id`'s mappings as a filter's choices, `(id, name)`, in delivery order.
fn mapping_choices(state: &AdminState, id: &str) -> Vec<(String, String)> {
    state
        .app
        .snapshot()
        .config()
        .destinations
        .iter()
        .find(|d| d.id == id)
        .map(|d| {
            d.mappings
                .iter()
                .map(|m| (m.id.clone(), m.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Dead letter

/// One dead-letter job.
pub(crate) struct DeadRow {
    pub(crate) job_id: String,
    pub(crate) mapping: String,
    pub(crate) state: String,
    pub(crate) at: String,
    pub(crate) status: String,
    pub(crate) error_class: String,
    pub(crate) detail: String,
    pub(crate) replayed_by: String,
    pub(crate) message_id: String,
}

#[derive(Template)]
#[template(path = "dead_letter.html")]
struct DeadLetterPage {
    chrome: Chrome,
    dest: DestHead,
    mapping: String,
    state_filter: String,
    error_class: String,
    include_replayed: bool,
    within: String,
    mappings: Vec<(String, String)>,
    rows: Vec<DeadRow>,
    report: Option<String>,
    /// The replays just made, as `replay:event` pairs, for the progress the page follows.
    tracked: String,
    progress: Option<ProgressView>,
    error: Option<String>,
}

/// Where a replay stands, as the page shows it.
pub(crate) struct ProgressView {
    pub(crate) total: usize,
    pub(crate) delivered: usize,
    pub(crate) failed: usize,
    pub(crate) pending: usize,
    pub(crate) done: bool,
}

#[derive(Template)]
#[template(path = "replay_progress.html")]
struct ProgressFragment {
    chrome: Chrome,
    dest: DestHead,
    tracked: String,
    progress: Option<ProgressView>,
}

fn parse_tracked(text: &str) -> Vec<(i64, i64)> {
    text.split(',')
        .filter_map(|pair| {
            let (replay, event) = pair.split_once(':')?;
            Some((replay.parse().ok()?, event.parse().ok()?))
        })
        .collect()
}

async fn progress_of(
    state: &AdminState,
    tracked: &str,
) -> Result<Option<ProgressView>, AdminError> {
    let pairs = parse_tracked(tracked);
    if pairs.is_empty() {
        return Ok(None);
    }
    let counts = replay_progress(state, &pairs).await?;
    Ok(Some(ProgressView {
        total: pairs.len(),
        delivered: counts.delivered,
        failed: counts.failed,
        pending: counts.pending,
        done: counts.pending == 0,
    }))
}

/// `POST /destinations/{id}/dead-letter/progress`: the replay's progress (a fragment htmx
/// swaps every two seconds until done; without JavaScript its "Refresh" button posts here and
/// gets the same fragment as a page of its own).
pub(crate) async fn replay_progress_view(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let tracked = form.text("tracked").to_owned();
    let dest = match dest_head(&state, &id, "dead-letter") {
        Ok(dest) => dest,
        Err(err) => return error_page(&session, &err),
    };
    match progress_of(&state, &tracked).await {
        Ok(progress) => render(&ProgressFragment {
            chrome: Chrome::new(&session, "Replay progress", "destinations"),
            dest,
            tracked,
            progress,
        }),
        Err(err) => error_page(&session, &err),
    }
}

/// The dead letter's filters, as the page's form sends them.
#[derive(Deserialize, Default)]
pub(crate) struct DeadQuery {
    mapping: Option<String>,
    state: Option<String>,
    error_class: Option<String>,
    include_replayed: Option<String>,
    /// `1h`, `24h` or `7d`: only jobs that died that recently.
    within: Option<String>,
}

/// The start of a `within` choice, in Unix milliseconds.
fn since(within: Option<&str>) -> Option<i64> {
    let hours = match within? {
        "1h" => 1,
        "24h" => 24,
        "7d" => 7 * 24,
        _ => return None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(now.as_millis())
        .ok()
        .map(|now| now - hours * 3_600_000)
}

fn dead_filter(id: &str, query: &DeadQuery) -> DeadLetterQuery {
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    DeadLetterQuery {
        destination_id: Some(id.to_owned()),
        mapping_id: given(&query.mapping),
        state: given(&query.state),
        error_class: given(&query.error_class),
        include_replayed: query.include_replayed.is_some(),
        since: since(query.within.as_deref()),
        limit: Some(200),
        ..DeadLetterQuery::default()
    }
}

async fn dead_page(
    state: &AdminState,
    session: &SessionInfo,
    id: &str,
    query: &DeadQuery,
) -> Result<DeadLetterPage, AdminError> {
    let dest = dest_head(state, id, "dead-letter")?;
    let mappings = mapping_choices(state, id);
    let (jobs, _) = dead_letter_page(state, dead_filter(id, query)).await?;
    let mut rows = Vec::new();
    for job in &jobs {
        rows.push(DeadRow {
            job_id: text(&job["id"]),
            mapping: text(&job["mapping_id"]),
            state: text(&job["state"]),
            at: job["dead_at"].as_i64().map(iso_time).unwrap_or_default(),
            status: text(&job["status"]),
            error_class: text(&job["error_class"]),
            detail: text(&job["detail"]),
            replayed_by: text(&job["replayed_by"]),
            message_id: message_id_of(state, &job["event_id"]).await,
        });
    }
    Ok(DeadLetterPage {
        chrome: Chrome::new(
            session,
            format!("{} dead letter", dest.name),
            "destinations",
        ),
        dest,
        mapping: query.mapping.clone().unwrap_or_default(),
        state_filter: query.state.clone().unwrap_or_default(),
        error_class: query.error_class.clone().unwrap_or_default(),
        include_replayed: query.include_replayed.is_some(),
        within: query.within.clone().unwrap_or_default(),
        mappings,
        rows,
        report: None,
        tracked: String::new(),
        progress: None,
        error: None,
    })
}

/// The `messageId` of a stored event, for the link to its story.
async fn message_id_of(state: &AdminState, event_id: &Value) -> String {
    let Some(event_id) = event_id.as_i64() else {
        return String::new();
    };
    match state
        .app
        .store()
        .event(junction_store::EventId(event_id))
        .await
    {
        Ok(Some(record)) => serde_json::from_slice::<Value>(&record.payload)
            .ok()
            .map(|event| text(&event["messageId"]))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// `GET /destinations/{id}/dead-letter`.
pub(crate) async fn dead_letter(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    Query(query): Query<DeadQuery>,
) -> Response {
    match dead_page(&state, &session, &id, &query).await {
        Ok(page) => render(&page),
        Err(err) => error_page(&session, &err),
    }
}

/// `POST /destinations/{id}/dead-letter/replay`: the ticked jobs, or every job the filters
/// select (`all=1`), as-is or re-mapped; the page again with the report.
pub(crate) async fn replay(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let query = DeadQuery {
        mapping: form.get("mapping").map(str::to_owned),
        state: form.get("state").map(str::to_owned),
        error_class: form.get("error_class").map(str::to_owned),
        include_replayed: None,
        within: form.get("within").map(str::to_owned),
    };
    let mode = if form.text("mode") == "remap" {
        ReplayMode::Remapped
    } else {
        ReplayMode::AsIs
    };
    let job_ids: Vec<i64> = if form.text("scope") == "all" {
        Vec::new()
    } else {
        form.all("job")
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect()
    };
    let outcome = if job_ids.is_empty() && form.text("scope") != "all" {
        Err(AdminError::invalid(
            "job",
            "tick the jobs to replay, or choose “all matching”",
        ))
    } else {
        let mut filter = dead_filter(&id, &query);
        filter.limit = Some(1_000);
        replay_selection(&state, job_ids, filter, mode).await
    };
    let mut page = match dead_page(&state, &session, &id, &query).await {
        Ok(page) => page,
        Err(err) => return error_page(&session, &err),
    };
    match outcome {
        Ok(report) => {
            let replayed = report["replayed"].as_array().map_or(0, Vec::len);
            let failed = report["failed"].as_array().map_or(0, Vec::len);
            page.tracked = report["replayed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some(format!(
                        "{}:{}",
                        r["replay_id"].as_i64()?,
                        r["event_id"].as_i64()?
                    ))
                })
                .collect::<Vec<_>>()
                .join(",");
            page.progress = progress_of(&state, &page.tracked).await.ok().flatten();
            page.report = Some(format!(
                "Replayed {replayed} job(s){}. Their progress follows below; each event's story has the details.",
                if failed > 0 {
                    format!("; {failed} could not be replayed and stay here")
                } else {
                    String::new()
                }
            ));
            render(&page)
        }
        Err(err) => {
            page.error = Some(messages(&err));
            render_with(err.status(), &page)
        }
    }
}

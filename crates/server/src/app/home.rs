//! Home (sources and destinations at a glance, what needs attention), sign-in and sign-out.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::form::FormData;
use super::{Chrome, SessionInfo, assets, count, render, render_with, session};
use crate::admin::AdminState;
use crate::admin::dead_letter::{DeadLetterQuery, dead_letter_page};
use crate::admin::overview::{OverviewParams, destination_overview};

/// A destination's line on the home page.
pub(crate) struct DestinationLine {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) mappings: usize,
    pub(crate) received: u64,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
    pub(crate) awaiting_retry: u64,
    /// `healthy`, `failing`, `paused` or `disabled`.
    pub(crate) health: &'static str,
}

/// A source's line on the home page.
pub(crate) struct SourceLine {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) destinations: usize,
    pub(crate) recent: usize,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    sources: Vec<SourceLine>,
    destinations: Vec<DestinationLine>,
    attention: Vec<(String, String)>,
}

/// The last hour of destination `id`, as its overview counts it, and what needs attention.
pub(crate) async fn destination_line(
    state: &AdminState,
    id: &str,
    name: &str,
    enabled: bool,
    mappings: usize,
    attention: &mut Vec<(String, String)>,
) -> DestinationLine {
    let params = OverviewParams {
        window: Some("1h".to_owned()),
        ..OverviewParams::default()
    };
    let overview = destination_overview(state, id, params)
        .await
        .unwrap_or(Value::Null);
    let totals = &overview["totals"]["destination"];
    let failed = count(&totals["failed"]);
    let lanes = overview["lanes"].as_array().cloned().unwrap_or_default();
    let paused = lanes.iter().any(|lane| !lane["paused_until"].is_null());
    let failing = lanes
        .iter()
        .any(|lane| lane["failing"].as_bool().unwrap_or(false));
    let dead = dead_in_last_hour(state, id).await;
    if dead > 0 {
        let more = if dead >= DEAD_SHOWN { "+" } else { "" };
        attention.push((
            format!("/destinations/{id}/dead-letter?within=1h"),
            format!("{name}: {dead}{more} job(s) went to the dead letter in the last hour"),
        ));
    }
    let health = if !enabled {
        "disabled"
    } else if paused {
        attention.push((
            format!("/destinations/{id}/overview"),
            format!("{name}: delivery is paused (the endpoint asked to wait with Retry-After)"),
        ));
        "paused"
    } else if failing || failed > 0 {
        attention.push((
            format!("/destinations/{id}/overview"),
            format!("{name}: {failed} failed in the last hour"),
        ));
        "failing"
    } else {
        "healthy"
    };
    DestinationLine {
        id: id.to_owned(),
        name: name.to_owned(),
        mappings,
        received: count(&totals["received"]),
        delivered: count(&totals["delivered"]),
        failed,
        awaiting_retry: count(&totals["awaiting_retry"]),
        health,
    }
}

/// The most dead-letter jobs counted for the home page (it says "50+" past it).
const DEAD_SHOWN: usize = 50;

/// How many jobs of destination `id` entered the dead letter in the last hour (at most
/// [`DEAD_SHOWN`]), not yet replayed.
async fn dead_in_last_hour(state: &AdminState, id: &str) -> usize {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|now| i64::try_from(now.as_millis()).ok())
        .map(|now| now - 3_600_000);
    let query = DeadLetterQuery {
        destination_id: Some(id.to_owned()),
        since,
        limit: Some(DEAD_SHOWN),
        ..DeadLetterQuery::default()
    };
    dead_letter_page(state, query)
        .await
        .map_or(0, |(jobs, _)| jobs.len())
}

/// `GET /`: the workspace at a glance.
pub(crate) async fn home(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
) -> Response {
    let snapshot = state.app.snapshot();
    let config = snapshot.config();
    let mut attention = Vec::new();
    let mut destinations = Vec::new();
    for destination in &config.destinations {
        let line = destination_line(
            &state,
            &destination.id,
            &destination.name,
            destination.enabled,
            destination.mappings.len(),
            &mut attention,
        )
        .await;
        destinations.push(line);
    }
    let sources = config
        .sources
        .iter()
        .map(|source| SourceLine {
            id: source.id.clone(),
            name: source.name.clone(),
            destinations: config
                .destinations
                .iter()
                .filter(|d| d.sources.contains(&source.id))
                .count(),
            recent: state.app.live().recent(&source.id).len(),
        })
        .collect();
    render(&HomePage {
        chrome: Chrome::new(&session, "Home", "home"),
        sources,
        destinations,
        attention,
    })
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    css: String,
    next: String,
    error: Option<String>,
}

/// Where to go after signing in.
#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// `GET /sign-in`; without an admin token there is nothing to sign in to.
pub(crate) async fn sign_in_page(
    State(state): State<AdminState>,
    Query(query): Query<NextQuery>,
) -> Response {
    if state.token.is_none() {
        return Redirect::to("/").into_response();
    }
    let next = session::safe_next(query.next.as_deref().unwrap_or("/")).to_owned();
    render(&SignInPage {
        css: assets::url("app.css"),
        next,
        error: None,
    })
}

/// `POST /sign-in`: the admin token for a session cookie.
pub(crate) async fn sign_in(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if state.token.is_none() {
        return Redirect::to("/").into_response();
    }
    let form = FormData::parse(&body);
    let next = form.text("next");
    if let Some(response) = session::sign_in(&state, &headers, form.text("token"), next) {
        return response;
    }
    // A wrong token costs a moment, so that guessing is slow.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    render_with(
        StatusCode::UNAUTHORIZED,
        &SignInPage {
            css: assets::url("app.css"),
            next: session::safe_next(next).to_owned(),
            error: Some("That is not this server's admin token.".to_owned()),
        },
    )
}

/// `POST /sign-out`.
pub(crate) async fn sign_out(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    session::sign_out(&state, &headers)
}

//! Sources: the list, creating one, write keys (a new key is shown in full once, on the page
//! that created it; otherwise masked as the API masks it; revoke), connected destinations, and
//! the live debugger (the last events, searchable with JavaScript off; Server-Sent Events of new
//! ones, rendered by `app.js`, with pause, search, pretty and raw views, and "test this event").

use std::convert::Infallible;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::form::FormData;
use super::{
    Chrome, SessionInfo, error_page, iso_time, messages, pretty, render, render_with, text,
};
use crate::admin::config::{
    NewSource, add_source, mask_write_key, new_source_key, revoke_source_key, source_view,
};
use crate::admin::debugger::{recent_events, subscribe};
use crate::admin::{AdminError, AdminState};
use crate::live::Subscription;

/// A source's line in the list.
pub(crate) struct SourceRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) keys: usize,
    pub(crate) destinations: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "sources.html")]
struct ListPage {
    chrome: Chrome,
    sources: Vec<SourceRow>,
    error: Option<String>,
    name: String,
}

fn list_page(state: &AdminState, session: &SessionInfo) -> ListPage {
    let snapshot = state.app.snapshot();
    let config = snapshot.config();
    ListPage {
        chrome: Chrome::new(session, "Sources", "sources"),
        sources: config
            .sources
            .iter()
            .map(|source| SourceRow {
                id: source.id.clone(),
                name: source.name.clone(),
                keys: source.write_keys.len(),
                destinations: connected(state, &source.id),
            })
            .collect(),
        error: None,
        name: String::new(),
    }
}

fn connected(state: &AdminState, source: &str) -> Vec<(String, String)> {
    state
        .app
        .snapshot()
        .config()
        .destinations
        .iter()
        .filter(|d| d.sources.iter().any(|s| s == source))
        .map(|d| (d.id.clone(), d.name.clone()))
        .collect()
}

/// `GET /sources`.
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
) -> Response {
    render(&list_page(&state, &session))
}

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage {
    chrome: Chrome,
    id: String,
    name: String,
    keys: Vec<(usize, String)>,
    /// A key just created, shown in full this once.
    revealed: Option<String>,
    destinations: Vec<(String, String)>,
    error: Option<String>,
}

fn source_page(
    state: &AdminState,
    session: &SessionInfo,
    id: &str,
) -> Result<SourcePage, AdminError> {
    let snapshot = state.app.snapshot();
    let source = snapshot
        .config()
        .sources
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| AdminError::not_found(format!("source \"{id}\" not found")))?;
    // The API's view: keys come masked from there.
    let view = source_view(source);
    Ok(SourcePage {
        chrome: Chrome::new(session, source.name.clone(), "sources"),
        id: source.id.clone(),
        name: source.name.clone(),
        keys: view["write_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .enumerate()
            .collect(),
        revealed: None,
        destinations: connected(state, id),
        error: None,
    })
}

/// `POST /sources`: creates a source with a new write key, shown once.
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let name = form.text("name").trim().to_owned();
    let new = NewSource {
        id: None,
        name: name.clone(),
        write_keys: Vec::new(),
    };
    match add_source(&state, new).await {
        Ok(view) => reveal(&state, &session, &text(&view["id"]), &view),
        Err(err) => {
            let mut page = list_page(&state, &session);
            page.name = name;
            page.error = Some(messages(&err));
            render_with(err.status(), &page)
        }
    }
}

/// The source's page showing the key the view carries in full (`write_key`): the one-time
/// reveal. Never cached, never redirected to (a reload does not show it again).
fn reveal(state: &AdminState, session: &SessionInfo, id: &str, view: &Value) -> Response {
    match source_page(state, session, id) {
        Ok(mut page) => {
            page.revealed = view["write_key"].as_str().map(str::to_owned);
            render_with(StatusCode::CREATED, &page)
        }
        Err(err) => error_page(session, &err),
    }
}

/// `GET /sources/{id}`.
pub(crate) async fn source(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
) -> Response {
    match source_page(&state, &session, &id) {
        Ok(page) => render(&page),
        Err(err) => error_page(&session, &err),
    }
}

/// `POST /sources/{id}/write-keys`: a new key, shown once.
pub(crate) async fn add_key(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
) -> Response {
    match new_source_key(&state, &id, None).await {
        Ok(view) => reveal(&state, &session, &id, &view),
        Err(err) => key_error(&state, &session, &id, &err),
    }
}

fn key_error(state: &AdminState, session: &SessionInfo, id: &str, err: &AdminError) -> Response {
    match source_page(state, session, id) {
        Ok(mut page) => {
            page.error = Some(messages(err));
            render_with(err.status(), &page)
        }
        Err(_) => error_page(session, err),
    }
}

/// `POST /sources/{id}/write-keys/revoke`: the key at position `index` (the page never holds the
/// keys themselves), checked against its masked form so that a key list changed meanwhile does
/// not revoke another.
pub(crate) async fn revoke_key(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let index: Option<usize> = form.text("index").parse().ok();
    let masked = form.text("masked").to_owned();
    let keys: Vec<String> = state
        .app
        .snapshot()
        .config()
        .sources
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.write_keys.clone())
        .unwrap_or_default();
    let target = index
        .and_then(|i| keys.get(i))
        .filter(|key| mask_write_key(key) == masked)
        .cloned();
    let Some(target) = target else {
        let err = AdminError::not_found("that write key is no longer there; reload the page");
        return key_error(&state, &session, &id, &err);
    };
    match revoke_source_key(&state, &id, |key| key == target).await {
        Ok(_) => Redirect::to(&format!("/sources/{id}")).into_response(),
        Err(err) => key_error(&state, &session, &id, &err),
    }
}

// ---------------------------------------------------------------------------------------------
// Debugger

/// One event in the debugger.
pub(crate) struct DebugRow {
    pub(crate) message_id: String,
    pub(crate) received_at: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) user: String,
    pub(crate) call: String,
    pub(crate) raw: String,
    pub(crate) routing: String,
}

#[derive(Template)]
#[template(path = "debugger.html")]
struct DebuggerPage {
    chrome: Chrome,
    id: String,
    name: String,
    search: String,
    rows: Vec<DebugRow>,
    destinations: Vec<(String, String)>,
}

/// The event as the library call that would send it, e.g. `analytics.identify("u1", {…})`.
fn library_call(event: &Value) -> String {
    let kind = text(&event["type"]);
    let who = if event["userId"].is_null() {
        text(&event["anonymousId"])
    } else {
        text(&event["userId"])
    };
    let body = match kind.as_str() {
        "identify" => pretty(&event["traits"]),
        "group" => format!(
            "{:?}, {}",
            text(&event["groupId"]),
            pretty(&event["traits"])
        ),
        "track" => format!(
            "{:?}, {}",
            text(&event["event"]),
            pretty(&event["properties"])
        ),
        "page" | "screen" => format!(
            "{:?}, {}",
            text(&event["name"]),
            pretty(&event["properties"])
        ),
        "alias" => format!("{:?}", text(&event["previousId"])),
        _ => String::new(),
    };
    format!("analytics.{kind}({who:?}, {body})")
}

fn debug_row(view: &Value) -> DebugRow {
    let event = &view["event"];
    let jobs = view["routing"]["jobs"].as_array().map_or(0, Vec::len);
    let discards = view["routing"]["discards"].as_array().map_or(0, Vec::len);
    DebugRow {
        message_id: text(&view["message_id"]),
        received_at: view["received_at"]
            .as_i64()
            .map(iso_time)
            .unwrap_or_default(),
        kind: text(&event["type"]),
        name: text(&event["event"]) + &text(&event["name"]),
        user: text(&event["userId"]),
        call: library_call(event),
        raw: pretty(event),
        routing: format!("{jobs} job(s), {discards} discard(s)"),
    }
}

/// The debugger's search (`?q=`): type, event name, userId or any value in the event.
#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
}

/// `GET /sources/{id}/debugger`: the last events (newest first), filtered by the search.
pub(crate) async fn debugger(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    Query(query): Query<SearchQuery>,
) -> Response {
    let views = match recent_events(&state, &id) {
        Ok(views) => views,
        Err(err) => return error_page(&session, &err),
    };
    let name = state
        .app
        .snapshot()
        .config()
        .sources
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let search = query.q.unwrap_or_default();
    let needle = search.to_lowercase();
    let rows = views
        .iter()
        .rev()
        .filter(|view| {
            needle.is_empty() || view["event"].to_string().to_lowercase().contains(&needle)
        })
        .map(debug_row)
        .collect();
    render(&DebuggerPage {
        chrome: Chrome::new(&session, format!("{name} debugger"), "sources"),
        destinations: connected(&state, &id),
        id,
        name,
        search,
        rows,
    })
}

/// `GET /sources/{id}/debugger/live`: Server-Sent Events, one per accepted event, each the
/// debugger's row as JSON (`app.js` renders it with text nodes only).
pub(crate) async fn live(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
) -> Response {
    match subscribe(&state, &id) {
        Ok(subscription) => Sse::new(stream(subscription))
            .keep_alive(KeepAlive::default())
            .into_response(),
        Err(err) => error_page(&session, &err),
    }
}

fn stream(subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(subscription, |mut subscription| async move {
        if *subscription.closed.borrow() {
            return None;
        }
        let event = tokio::select! {
            received = subscription.events.recv() => match received {
                Ok(event) => {
                    let view: Value = serde_json::from_str(&event.to_json()).unwrap_or(Value::Null);
                    let row = debug_row(&view);
                    let data = serde_json::json!({
                        "message_id": row.message_id, "received_at": row.received_at,
                        "kind": row.kind, "name": row.name, "user": row.user,
                        "call": row.call, "raw": row.raw, "routing": row.routing,
                    });
                    Event::default().data(data.to_string())
                }
                Err(RecvError::Lagged(skipped)) => Event::default()
                    .event("lagged")
                    .data(format!("{{\"skipped\":{skipped}}}")),
                Err(RecvError::Closed) => return None,
            },
            _ = subscription.closed.wait_for(|closed| *closed) => return None,
        };
        Some((Ok(event), subscription))
    })
}

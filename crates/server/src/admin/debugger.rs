//! The source debugger: `GET /api/v1/sources/{id}/events/recent` (the last events the source
//! accepted, oldest first) and `GET /api/v1/sources/{id}/events/live` (Server-Sent Events of the
//! events it accepts from now on, each once its commit is durable, with its routing summary).

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::broadcast::error::RecvError;

use super::{AdminError, AdminState};
use crate::live::Subscription;
use crate::routes::Route;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/api/v1/sources/{id}/events/recent", recent),
        Route::get("/api/v1/sources/{id}/events/live", live),
    ]
}

/// The last events source `id` accepted, oldest first, as the API shows them (`{source_id,
/// message_id, received_at, duplicate, event, routing}`).
pub(crate) fn recent_events(state: &AdminState, id: &str) -> Result<Vec<Value>, AdminError> {
    known_source(state, id)?;
    Ok(state
        .app
        .live()
        .recent(id)
        .iter()
        .filter_map(|event| serde_json::from_str(&event.to_json()).ok())
        .collect())
}

/// The live feed of source `id`: one event per message, as [`recent_events`] shows them.
pub(crate) fn subscribe(state: &AdminState, id: &str) -> Result<Subscription, AdminError> {
    known_source(state, id)?;
    Ok(state.app.live().subscribe(id))
}

fn known_source(state: &AdminState, id: &str) -> Result<(), AdminError> {
    if state.app.snapshot().sources().iter().any(|s| s.id() == id) {
        Ok(())
    } else {
        Err(AdminError::not_found(format!("source \"{id}\" not found")))
    }
}

/// `{"data": [event, …]}`, oldest first.
async fn recent(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    known_source(&state, &id)?;
    let events: Vec<Box<RawValue>> = state
        .app
        .live()
        .recent(&id)
        .iter()
        .filter_map(|event| RawValue::from_string(event.to_json()).ok())
        .collect();
    let body = serde_json::json!({ "data": events });
    Ok(Json(body))
}

/// One SSE message per accepted event (`data:` its JSON); a listener that fell behind gets an
/// `event: lagged` message saying how many it missed, then carries on.
async fn live(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AdminError> {
    known_source(&state, &id)?;
    let subscription = state.app.live().subscribe(&id);
    Ok(Sse::new(stream(subscription)).keep_alive(KeepAlive::default()))
}

fn stream(subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(subscription, |mut subscription| async move {
        if *subscription.closed.borrow() {
            return None;
        }
        let event = tokio::select! {
            received = subscription.events.recv() => match received {
                Ok(event) => Event::default().data(event.to_json()),
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

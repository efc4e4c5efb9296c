//! Testers: a destination's authentication test, the event tester (an event through every
//! enabled mapping of a destination, sent for real through the delivery client) and the mapping
//! tester (one saved or unsaved mapping, evaluated without sending, as `junction eval` does).

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use junction_actions::{
    AuthError, ErrorReport, Evaluation, HttpRequest, Outcome, Subscription, SubscriptionConfig,
    evaluate,
};
use junction_delivery::{AttemptResult, test_authentication};
use junction_event::{Endpoint, NormaliseContext, normalise, parse_request, random_message_id};
use junction_workspace::{Destination, Snapshot};
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{Body, NewMapping};
use super::story::mask_url;
use super::{AdminError, AdminState};
use crate::routes::Route;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::post(
            "/api/v1/destinations/{id}/test-authentication",
            test_destination_authentication,
        ),
        Route::post("/api/v1/destinations/{id}/test-event", test_event),
        Route::post(
            "/api/v1/destinations/{id}/mappings/{mapping_id}/test",
            test_saved_mapping,
        ),
        // Not under `/mappings/`: a static segment there would hide a mapping of that id.
        Route::post(
            "/api/v1/destinations/{id}/test-mapping",
            test_unsaved_mapping,
        ),
    ]
}

fn find_destination<'a>(snapshot: &'a Snapshot, id: &str) -> Result<&'a Destination, AdminError> {
    snapshot
        .destination(id)
        .ok_or_else(|| AdminError::not_found(format!("destination \"{id}\" not found")))
}

/// Sends the destination type's authentication test with the destination's settings.
async fn test_destination_authentication(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let data = test_connection(&state, &id).await?;
    Ok(Json(json!({"data": data})))
}

/// The authentication test of destination `id`: `{status, message?}`, with the destination's
/// own message on failure.
pub(crate) async fn test_connection(state: &AdminState, id: &str) -> Result<Value, AdminError> {
    let snapshot = state.app.snapshot();
    let Some(config) = snapshot.config().destinations.iter().find(|d| d.id == id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    let destination = find_destination(&snapshot, id)?;
    let outcome =
        test_authentication(&state.sender, destination.definition(), &config.settings).await;
    let data = match outcome {
        Ok(true) => json!({"status": "success"}),
        Ok(false) => json!({"status": "not_supported",
                            "message": "this destination type has no authentication test"}),
        Err(err @ AuthError::Unreachable { .. }) => {
            json!({"status": "unreachable", "message": err.to_string()})
        }
        Err(err) => json!({"status": "failure", "message": err.to_string()}),
    };
    Ok(data)
}

/// The event a tester runs, normalised as the Tracking API would store it (`messageId`,
/// `receivedAt`, `sentAt`, clock-skew correction), or why the Tracking API would refuse it.
fn normalised_event(state: &AdminState, event: Value) -> Result<Value, AdminError> {
    // Parsed as a one-event batch: the event's own `type` picks its validation, as it would on
    // `/v1/batch`.
    let body = serde_json::to_vec(&json!({"batch": [event]}))
        .map_err(|err| AdminError::invalid("event", err.to_string()))?;
    let parsed = parse_request(Endpoint::Batch, &body, &state.app.config().limits)
        .map_err(|err| AdminError::invalid("event", err.to_string()))?;
    let Some(item) = parsed.events.into_iter().next() else {
        return Err(AdminError::invalid("event", "no event given"));
    };
    let mut event =
        item.map_err(|rejection| AdminError::invalid("event", rejection.to_string()))?;
    let ctx = NormaliseContext::new(SystemTime::now(), None, &random_message_id);
    normalise(&mut event, &ctx);
    Ok(Value::Object(event))
}

/// A request as the testers show it: the URL masked after its host (its path carries a token).
fn request_view(request: &HttpRequest) -> Value {
    json!({
        "method": request.method,
        "url": mask_url(&request.url),
        "headers": request.headers,
        "body": request.body,
    })
}

fn error_view(error: Option<&ErrorReport>) -> Value {
    error.map_or(
        Value::Null,
        |error| json!({"message": error.message, "status": error.status}),
    )
}

fn response_view(result: &AttemptResult) -> Value {
    let Some(status) = result.status else {
        return Value::Null;
    };
    let body = serde_json::from_slice(&result.body_excerpt).unwrap_or_else(|_| {
        Value::String(String::from_utf8_lossy(&result.body_excerpt).into_owned())
    });
    json!({
        "status": status,
        "headers": result.response_headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body": body,
    })
}

/// One mapping's result: `{mapping_id, matched, outcome, request, response, error}`.
fn result_view(mapping_id: &str, evaluation: &Evaluation, response: Value) -> Value {
    json!({
        "mapping_id": mapping_id,
        "matched": evaluation.matched,
        "outcome": evaluation.outcome,
        "request": evaluation.request.as_ref().map_or(Value::Null, request_view),
        "response": response,
        "error": error_view(evaluation.error.as_ref()),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEvent {
    event: Value,
}

/// `POST /destinations/{id}/test-event`: the event through every enabled mapping of the
/// destination; each request that is built is sent for real, and its answer reported.
async fn test_event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(body): Body<TestEvent>,
) -> Result<Json<Value>, AdminError> {
    let data = run_event_test(&state, &id, body.event, true).await?;
    Ok(Json(json!({"data": data})))
}

/// The event tester: `event` through every enabled mapping of destination `id`; with `send`,
/// each request built is sent for real and its answer reported, else only built.
pub(crate) async fn run_event_test(
    state: &AdminState,
    id: &str,
    event: Value,
    send_for_real: bool,
) -> Result<Value, AdminError> {
    let snapshot = state.app.snapshot();
    let destination = find_destination(&snapshot, id)?;
    let event = normalised_event(state, event)?;
    let mut results = Vec::new();
    for mapping in destination.mappings() {
        let subscription = mapping.subscription();
        if !subscription.enabled {
            continue;
        }
        let evaluation = evaluate(subscription, Ok(destination.settings()), &event);
        let (evaluation, response) = match evaluation.request.as_ref() {
            Some(request) if send_for_real && evaluation.outcome == Outcome::Ready => {
                let result = send(state, request).await;
                let response = response_view(&result);
                (sent(evaluation, &result), response)
            }
            _ => (evaluation, Value::Null),
        };
        results.push(result_view(mapping.id(), &evaluation, response));
    }
    Ok(json!({
        "destination_id": id,
        "event": event,
        "results": results,
    }))
}

/// Sends one request through the delivery client, as a delivery attempt would.
async fn send(state: &AdminState, request: &HttpRequest) -> AttemptResult {
    let headers: Vec<(String, String)> = request.headers.clone().into_iter().collect();
    state
        .sender
        .send(
            &request.method,
            &request.url,
            &headers,
            request.body_bytes(),
        )
        .await
}

/// The evaluation once its request was sent: `sent`, `http_error`, or `fetch_error` when no
/// answer came (the attempt's message never contains the URL).
fn sent(evaluation: Evaluation, result: &AttemptResult) -> Evaluation {
    match result.status {
        Some(status) => evaluation.answered(status),
        None => Evaluation {
            outcome: Outcome::FetchError,
            error: Some(ErrorReport {
                message: result
                    .error
                    .as_ref()
                    .map_or_else(|| "no answer".to_owned(), ToString::to_string),
                status: None,
            }),
            ..evaluation
        },
    }
}

/// `POST /destinations/{id}/mappings/{mapping_id}/test`: one saved mapping, without sending.
async fn test_saved_mapping(
    State(state): State<AdminState>,
    Path((id, mapping_id)): Path<(String, String)>,
    Body(body): Body<TestEvent>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let destination = find_destination(&snapshot, &id)?;
    let mapping = destination.mapping(&mapping_id).ok_or_else(|| {
        AdminError::not_found(format!(
            "mapping \"{mapping_id}\" of destination \"{id}\" not found"
        ))
    })?;
    let event = normalised_event(&state, body.event)?;
    let evaluation = evaluate(mapping.subscription(), Ok(destination.settings()), &event);
    Ok(Json(json!({"data": {
        "event": event,
        "result": result_view(&mapping_id, &evaluation, Value::Null),
    }})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestUnsavedMapping {
    mapping: NewMapping,
    event: Value,
}

/// `POST /destinations/{id}/test-mapping`: a mapping that is not saved (filled from the action's
/// defaults as a new one would be), with the destination's settings, without sending.
async fn test_unsaved_mapping(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(body): Body<TestUnsavedMapping>,
) -> Result<Json<Value>, AdminError> {
    let data = try_mapping(&state, &id, body.mapping, body.event)?;
    Ok(Json(json!({"data": data})))
}

/// The mapping tester: a mapping that is not saved (filled from the action's defaults as a new
/// one would be) over `event`, with destination `id`'s settings, without sending:
/// `{event, result}`.
pub(crate) fn try_mapping(
    state: &AdminState,
    id: &str,
    mapping: NewMapping,
    event: Value,
) -> Result<Value, AdminError> {
    let (mapping_id, evaluation, event) = evaluate_unsaved(state, id, mapping, event)?;
    Ok(json!({
        "event": event,
        "result": result_view(&mapping_id, &evaluation, Value::Null),
    }))
}

/// The mapping tester, then its request sent for real (as the event tester sends) when one was
/// built: `{event, result}` with the destination's `response`.
pub(crate) async fn send_mapping_test(
    state: &AdminState,
    id: &str,
    mapping: NewMapping,
    event: Value,
) -> Result<Value, AdminError> {
    let (mapping_id, evaluation, event) = evaluate_unsaved(state, id, mapping, event)?;
    let (evaluation, response) = match evaluation.request.as_ref() {
        Some(request) if evaluation.outcome == Outcome::Ready => {
            let result = send(state, request).await;
            let response = response_view(&result);
            (sent(evaluation, &result), response)
        }
        _ => (evaluation, Value::Null),
    };
    Ok(json!({
        "event": event,
        "result": result_view(&mapping_id, &evaluation, response),
    }))
}

/// An unsaved mapping over `event`: its id, the evaluation, and the normalised event.
fn evaluate_unsaved(
    state: &AdminState,
    id: &str,
    mut mapping: NewMapping,
    event: Value,
) -> Result<(String, Evaluation, Value), AdminError> {
    let snapshot = state.app.snapshot();
    let destination = find_destination(&snapshot, id)?;
    let mapping_id = mapping.take_id().unwrap_or_default();
    let config = mapping.into_config(destination.definition(), mapping_id.clone())?;
    let event = normalised_event(state, event)?;
    let subscription = SubscriptionConfig {
        name: config.name,
        action: config.action,
        enabled: config.enabled,
        trigger: config.trigger.map(Value::String),
        mapping: config.mapping,
        use_defaults: config.use_defaults,
    };
    let evaluation = match Subscription::compile(destination.definition(), &subscription) {
        Ok(subscription) => evaluate(&subscription, Ok(destination.settings()), &event),
        Err(err) => Evaluation::invalid(err.to_string()),
    };
    Ok((mapping_id, evaluation, event))
}

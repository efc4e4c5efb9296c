//! A destination's saved test events ("saved samples"): listed, saved under a name (a new one or
//! a replacement) and deleted. They live in the workspace, beside the destination's mappings, so
//! that every node and every export has them; the mapping editor loads them as test events.

use axum::Json;
use axum::extract::{Path, State};
use junction_workspace::SampleEvent;
use junction_workspace::limits::{MAX_NAME_CHARS, MAX_SAMPLES_PER_DESTINATION};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::{Body, Changed, apply, destination_index};
use super::{AdminError, AdminState};
use crate::routes::Route;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/api/v1/destinations/{id}/samples", list_samples),
        Route::put("/api/v1/destinations/{id}/samples/{name}", put_sample),
        Route::delete("/api/v1/destinations/{id}/samples/{name}", delete_sample),
    ]
}

/// A sample as the API shows it.
fn sample_view(sample: &SampleEvent) -> Value {
    json!({"name": sample.name, "event": sample.event})
}

/// The saved samples of destination `id`, in the order they were first saved.
pub(crate) fn samples_of(state: &AdminState, id: &str) -> Result<Vec<SampleEvent>, AdminError> {
    let snapshot = state.app.snapshot();
    let config = snapshot.config();
    let index = destination_index(config, id)?;
    Ok(config.destinations[index].samples.clone())
}

/// `GET /destinations/{id}/samples`.
async fn list_samples(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let samples: Vec<Value> = samples_of(&state, &id)?.iter().map(sample_view).collect();
    Ok(Json(json!({"data": samples})))
}

/// The body of `PUT /destinations/{id}/samples/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSample {
    event: Map<String, Value>,
}

/// `PUT /destinations/{id}/samples/{name}`: saves `event` under `name`, replacing a sample of
/// that name.
async fn put_sample(
    State(state): State<AdminState>,
    Path((id, name)): Path<(String, String)>,
    Body(body): Body<NewSample>,
) -> Result<Json<Value>, AdminError> {
    let view = save_sample(&state, &id, &name, Value::Object(body.event)).await?;
    Ok(Json(json!({"data": view})))
}

/// Saves `event` as destination `id`'s sample `name` (a new one, or the one of that name
/// replaced); the sample's view.
pub(crate) async fn save_sample(
    state: &AdminState,
    id: &str,
    name: &str,
    event: Value,
) -> Result<Value, AdminError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AdminError::invalid("name", "a sample needs a name"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AdminError::invalid(
            "name",
            format!("a sample's name is at most {MAX_NAME_CHARS} characters"),
        ));
    }
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        let sample = SampleEvent {
            name: name.to_owned(),
            event,
        };
        let view = sample_view(&sample);
        let position = match destination.samples.iter().position(|s| s.name == name) {
            Some(position) => {
                destination.samples[position] = sample;
                position
            }
            None if destination.samples.len() >= MAX_SAMPLES_PER_DESTINATION => {
                return Err(AdminError::invalid(
                    "name",
                    format!(
                        "destination \"{id}\" holds at most {MAX_SAMPLES_PER_DESTINATION} saved \
                         samples: delete one, or save under an existing name to replace it"
                    ),
                ));
            }
            None => {
                destination.samples.push(sample);
                destination.samples.len() - 1
            }
        };
        Ok(Changed::at(
            view,
            format!("destinations[{index}].samples[{position}]"),
        ))
    })
    .await
}

/// `DELETE /destinations/{id}/samples/{name}`.
async fn delete_sample(
    State(state): State<AdminState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    remove_sample(&state, &id, &name).await?;
    Ok(Json(json!({"data": {"name": name, "deleted": true}})))
}

/// Deletes destination `id`'s sample `name`.
pub(crate) async fn remove_sample(
    state: &AdminState,
    id: &str,
    name: &str,
) -> Result<(), AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        let Some(position) = destination.samples.iter().position(|s| s.name == name) else {
            return Err(AdminError::not_found(format!(
                "sample \"{name}\" of destination \"{id}\" not found"
            )));
        };
        destination.samples.remove(position);
        Ok(Changed::at((), format!("destinations[{index}].samples")))
    })
    .await
}

/// Deletes every saved sample whose event `deleted` says is a deleted person's (a regulation
/// covers one of its identifiers); how many. Changes the workspace only when one matches.
pub(crate) async fn forget_samples(
    state: &AdminState,
    deleted: impl Fn(&Value) -> bool,
) -> Result<usize, AdminError> {
    let any = state
        .app
        .snapshot()
        .config()
        .destinations
        .iter()
        .flat_map(|destination| &destination.samples)
        .any(|sample| deleted(&sample.event));
    if !any {
        return Ok(0);
    }
    apply(state, |config| {
        let mut removed = 0;
        for destination in &mut config.destinations {
            let before = destination.samples.len();
            destination.samples.retain(|sample| !deleted(&sample.event));
            removed += before - destination.samples.len();
        }
        Ok(Changed::at(removed, String::from("destinations")))
    })
    .await
}

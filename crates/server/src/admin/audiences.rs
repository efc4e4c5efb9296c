//! Audiences and computed traits, and profiles: definitions in the workspace (created with a
//! preview, edited, deleted with their key retired, connected to destinations), their sizes
//! and sizes over time as the profile worker counts them, a sync asked for now, and a profile
//! by any identifier.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use junction_audience::{IdType, key_from_name};
use junction_profiles::{ProfilesError, WorkerDoc, connection_key};
use junction_workspace::limits::{MAX_ID_CHARS, MAX_NAME_CHARS, MAX_QUERY_CHARS};
use junction_workspace::{
    AudienceConfig, AudienceConnection, AudienceKind, DestinationConfig, WorkspaceConfig,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{Body, Changed, apply, created, deleted, integral, listed};
use super::{AdminError, AdminState};
use crate::routes::Route;
use serde::de::DeserializeOwned;

/// Members shown in a preview.
const PREVIEW_SAMPLE: usize = 10;

pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/api/v1/audiences", list_audiences),
        Route::post("/api/v1/audiences", create_audience),
        Route::post("/api/v1/audiences/preview", preview_audience),
        Route::get("/api/v1/audiences/{key}", get_audience),
        Route::patch("/api/v1/audiences/{key}", update_audience),
        Route::delete("/api/v1/audiences/{key}", delete_audience),
        Route::put(
            "/api/v1/audiences/{key}/connections/{destination}",
            connect_audience,
        ),
        Route::delete(
            "/api/v1/audiences/{key}/connections/{destination}",
            disconnect_audience,
        ),
        Route::post(
            "/api/v1/audiences/{key}/connections/{destination}/sync",
            sync_audience,
        ),
        Route::get("/api/v1/profiles/{id_type}/{value}", get_profile),
    ]
}

impl From<ProfilesError> for AdminError {
    fn from(err: ProfilesError) -> Self {
        match err {
            ProfilesError::Store(err) => err.into(),
            ProfilesError::Invalid(message) => AdminError::invalid("query", message),
            err @ (ProfilesError::Corrupt(_) | ProfilesError::Secret(_)) => AdminError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                err.to_string(),
            ),
        }
    }
}

/// Reads a body, an `every_hours` written as `24.0` taken as the integer it is (see
/// [`integral`]).
fn parse<T: DeserializeOwned>(mut body: Value) -> Result<T, AdminError> {
    if let Some(hours) = body.get_mut("every_hours") {
        integral(hours);
    }
    if let Some(Value::Array(connections)) = body.get_mut("connections") {
        for connection in connections {
            if let Some(hours) = connection.get_mut("every_hours") {
                integral(hours);
            }
        }
    }
    serde_json::from_value(body).map_err(|err| {
        AdminError::invalid(
            "body",
            format!("Failed to deserialize the JSON body into the target type: {err}"),
        )
    })
}

fn no_audience(key: &str) -> AdminError {
    AdminError::not_found(format!("no audience or computed trait \"{key}\""))
}

fn audience_index(config: &WorkspaceConfig, key: &str) -> Result<usize, AdminError> {
    config
        .audiences
        .iter()
        .position(|audience| audience.key == key)
        .ok_or_else(|| no_audience(key))
}

/// An audience as shown: its definition, its connections with their sync state, its size.
fn audience_view(audience: &AudienceConfig, status: Option<&WorkerDoc>) -> Value {
    let computed = status.is_some_and(|doc| {
        doc.backfill.is_none()
            && doc
                .built_for
                .iter()
                .any(|(key, text)| *key == audience.key && *text == audience.query)
    });
    let connections: Vec<Value> = audience
        .connections
        .iter()
        .map(|connection| {
            let state = status.and_then(|doc| {
                doc.connections
                    .get(&connection_key(&audience.key, &connection.destination))
            });
            json!({
                "destination": connection.destination,
                "every_hours": connection.every_hours,
                "schedule": match connection.every_hours {
                    None => "realtime".to_owned(),
                    Some(1) => "every hour".to_owned(),
                    Some(hours) => format!("every {hours} hours"),
                },
                "initial_sync_done": state.is_some_and(|s| s.initial_done),
                "last_sync_at": state.map(|s| s.last_sync_at),
            })
        })
        .collect();
    json!({
        "key": audience.key,
        "name": audience.name,
        "kind": audience.kind.as_str(),
        "query": audience.query,
        "connections": connections,
        "size": if computed { status.and_then(|doc| doc.sizes.get(&audience.key)).copied() } else { None },
        "computing": !computed,
    })
}

async fn status(state: &AdminState) -> Result<Option<WorkerDoc>, AdminError> {
    Ok(junction_profiles::worker_status(&**state.app.store()).await?)
}

/// Every audience's view, in workspace order (a service the app shares).
pub(crate) async fn audience_views(state: &AdminState) -> Result<Vec<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let status = status(state).await?;
    Ok(snapshot
        .config()
        .audiences
        .iter()
        .map(|audience| audience_view(audience, status.as_ref()))
        .collect())
}

async fn list_audiences(State(state): State<AdminState>) -> Result<Json<Value>, AdminError> {
    Ok(listed(audience_views(&state).await?, None))
}

async fn get_audience(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(json!({"data": audience_detail(&state, &key).await?})))
}

/// One audience's view with its size over time (a service the app shares).
pub(crate) async fn audience_detail(state: &AdminState, key: &str) -> Result<Value, AdminError> {
    let snapshot = state.app.snapshot();
    let audience = snapshot.audience(key).ok_or_else(|| no_audience(key))?;
    let status = status(state).await?;
    let mut view = audience_view(audience, status.as_ref());
    let history: Vec<Value> = status
        .iter()
        .flat_map(|doc| &doc.history)
        .filter_map(|sample| {
            let size = sample.sizes.get(key)?;
            Some(json!({"at": sample.at, "size": size}))
        })
        .collect();
    view["history"] = Value::Array(history);
    Ok(view)
}

/// A new audience or computed trait.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAudience {
    /// Derived from the name when absent.
    pub(crate) key: Option<String>,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) kind: AudienceKind,
    pub(crate) query: String,
    #[serde(default)]
    pub(crate) connections: Vec<AudienceConnection>,
}

/// A definition to preview: a new audience without connections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AudienceDefinition {
    key: Option<String>,
    #[serde(default)]
    name: String,
    kind: AudienceKind,
    query: String,
}

impl NewAudience {
    fn into_config(self) -> Result<AudienceConfig, AdminError> {
        let key = match self.key {
            Some(key) => key,
            None => key_from_name(&self.name),
        };
        if key.is_empty() {
            return Err(AdminError::invalid(
                "key",
                "a key is required, or a name to derive it from",
            ));
        }
        Ok(AudienceConfig {
            key,
            name: self.name,
            kind: self.kind,
            query: self.query,
            connections: self.connections,
        })
    }
}

async fn create_audience(
    State(state): State<AdminState>,
    Body(body): Body<Value>,
) -> Result<Response, AdminError> {
    let view = add_audience(&state, parse::<NewAudience>(body)?).await?;
    Ok(created(view))
}

/// Creates an audience or computed trait (a service the app shares).
pub(crate) async fn add_audience(
    state: &AdminState,
    new: NewAudience,
) -> Result<Value, AdminError> {
    let audience = new.into_config()?;
    let view = apply(state, |config| {
        if config.audiences.iter().any(|a| a.key == audience.key) {
            return Err(AdminError::conflict(format!(
                "an audience or computed trait with the key \"{}\" exists",
                audience.key
            )));
        }
        let view = audience_view(&audience, None);
        let focus = format!("audiences[{}]", config.audiences.len());
        config.audiences.push(audience);
        Ok(Changed::at(view, focus))
    })
    .await?;
    if let Some(profiles) = &state.profiles {
        profiles.wake();
    }
    Ok(view)
}

async fn preview_audience(
    State(state): State<AdminState>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, AdminError> {
    let definition: AudienceDefinition = parse(body)?;
    let new = NewAudience {
        key: definition.key,
        name: definition.name,
        kind: definition.kind,
        query: definition.query,
        connections: Vec::new(),
    };
    Ok(Json(
        json!({"data": preview_definition(&state, new).await?}),
    ))
}

/// What a definition would hold if it were saved now (a service the app shares).
pub(crate) async fn preview_definition(
    state: &AdminState,
    definition: NewAudience,
) -> Result<Value, AdminError> {
    // What saving would check first (the workspace's limits), since nothing is saved here.
    let too_long = |field: &'static str, value: &str, limit: usize| {
        let found = value.chars().count();
        (found > limit).then(|| {
            AdminError::invalid(
                field,
                format!("too long: {found} characters, at most {limit}"),
            )
        })
    };
    let checks = [
        too_long("name", &definition.name, MAX_NAME_CHARS),
        too_long("query", &definition.query, MAX_QUERY_CHARS),
        definition
            .key
            .as_deref()
            .and_then(|key| too_long("key", key, MAX_ID_CHARS)),
    ];
    if let Some(err) = checks.into_iter().flatten().next() {
        return Err(err);
    }
    let audience = definition.into_config()?;
    let snapshot = state.app.snapshot();
    let now = junction_profiles::Clock::now_ms(&junction_profiles::SystemClock);
    let preview = junction_profiles::preview(
        &**state.app.store(),
        &snapshot,
        &audience,
        now,
        PREVIEW_SAMPLE,
    )
    .await?;
    Ok(json!({
        "key": audience.key,
        "size": preview.size,
        "profiles": preview.profiles,
        "events": preview.events,
        "sample": preview.sample,
    }))
}

/// A change to an audience: its key and kind never change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AudiencePatch {
    pub(crate) name: Option<String>,
    pub(crate) query: Option<String>,
    pub(crate) connections: Option<Vec<AudienceConnection>>,
}

async fn update_audience(
    State(state): State<AdminState>,
    Path(key): Path<String>,
    Body(patch): Body<Value>,
) -> Result<Json<Value>, AdminError> {
    let patch: AudiencePatch = parse(patch)?;
    Ok(Json(
        json!({"data": change_audience(&state, &key, patch).await?}),
    ))
}

/// Changes an audience's name, definition or connections (a service the app shares).
pub(crate) async fn change_audience(
    state: &AdminState,
    key: &str,
    patch: AudiencePatch,
) -> Result<Value, AdminError> {
    edit_audience(state, key, |audience, _| {
        if let Some(name) = patch.name {
            audience.name = name;
        }
        if let Some(query) = patch.query {
            audience.query = query;
        }
        if let Some(connections) = patch.connections {
            audience.connections = connections;
        }
        Ok(())
    })
    .await
}

/// Changes one audience (under the configuration lock, compiled and stored as every change is)
/// and wakes the profile worker to act on it; the audience's view after the change. `change`
/// also sees the destinations.
async fn edit_audience(
    state: &AdminState,
    key: &str,
    change: impl FnOnce(&mut AudienceConfig, &[DestinationConfig]) -> Result<(), AdminError>,
) -> Result<Value, AdminError> {
    let view = apply(state, |config| {
        let index = audience_index(config, key)?;
        let WorkspaceConfig {
            audiences,
            destinations,
            ..
        } = config;
        let audience = &mut audiences[index];
        change(audience, destinations)?;
        Ok(Changed::at(
            audience_view(audience, None),
            format!("audiences[{index}]"),
        ))
    })
    .await?;
    if let Some(profiles) = &state.profiles {
        profiles.wake();
    }
    Ok(view)
}

async fn delete_audience(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, AdminError> {
    remove_audience(&state, &key).await?;
    Ok(deleted(&key))
}

/// Deletes an audience and retires its key (a service the app shares).
pub(crate) async fn remove_audience(state: &AdminState, key: &str) -> Result<(), AdminError> {
    let key = key.to_owned();
    apply(state, |config| {
        let index = audience_index(config, &key)?;
        config.audiences.remove(index);
        // A deleted key is never used again (`audiences.md` §4).
        if !config.retired_keys.contains(&key) {
            config.retired_keys.push(key.clone());
        }
        Ok(Changed::at((), String::new()))
    })
    .await
}

/// How a connection syncs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionBody {
    /// Every this many hours; absent or `null`: in real time.
    every_hours: Option<u32>,
}

async fn connect_audience(
    State(state): State<AdminState>,
    Path((key, destination)): Path<(String, String)>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, AdminError> {
    let body: ConnectionBody = parse(body)?;
    let view = connect(&state, &key, &destination, body.every_hours).await?;
    Ok(Json(json!({"data": view})))
}

/// Connects a definition to a destination, or changes the schedule (a service the app shares).
pub(crate) async fn connect(
    state: &AdminState,
    key: &str,
    destination: &str,
    every_hours: Option<u32>,
) -> Result<Value, AdminError> {
    edit_audience(state, key, |audience, destinations| {
        if !destinations.iter().any(|d| d.id == destination) {
            return Err(AdminError::not_found(format!(
                "no destination \"{destination}\""
            )));
        }
        let connection = AudienceConnection {
            destination: destination.to_owned(),
            every_hours,
        };
        match audience
            .connections
            .iter_mut()
            .find(|c| c.destination == destination)
        {
            Some(existing) => *existing = connection,
            None => audience.connections.push(connection),
        }
        Ok(())
    })
    .await
}

async fn disconnect_audience(
    State(state): State<AdminState>,
    Path((key, destination)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(
        json!({"data": disconnect(&state, &key, &destination).await?}),
    ))
}

/// Disconnects a definition from a destination (a service the app shares).
pub(crate) async fn disconnect(
    state: &AdminState,
    key: &str,
    destination: &str,
) -> Result<Value, AdminError> {
    edit_audience(state, key, |audience, _| {
        let before = audience.connections.len();
        audience
            .connections
            .retain(|c| c.destination != destination);
        if audience.connections.len() == before {
            return Err(AdminError::not_found(format!(
                "\"{key}\" is not connected to \"{destination}\""
            )));
        }
        Ok(())
    })
    .await
}

async fn sync_audience(
    State(state): State<AdminState>,
    Path((key, destination)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    request_sync(&state, &key, &destination)?;
    let body = json!({"data": {"key": key, "destination": destination, "requested": true}});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Asks this node's profile worker for a sync now (a service the app shares).
pub(crate) fn request_sync(
    state: &AdminState,
    key: &str,
    destination: &str,
) -> Result<(), AdminError> {
    let snapshot = state.app.snapshot();
    let audience = snapshot.audience(key).ok_or_else(|| no_audience(key))?;
    if !audience
        .connections
        .iter()
        .any(|c| c.destination == destination)
    {
        return Err(AdminError::not_found(format!(
            "\"{key}\" is not connected to \"{destination}\""
        )));
    }
    let Some(profiles) = &state.profiles else {
        return Err(AdminError::conflict(
            "this node runs no profile worker: ask the node that leads it",
        ));
    };
    profiles.sync_now(key, destination);
    Ok(())
}

async fn get_profile(
    State(state): State<AdminState>,
    Path((id_type, value)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(
        json!({"data": profile_view(&state, &id_type, &value).await?}),
    ))
}

/// The profile holding an identifier, as shown (a service the app shares).
pub(crate) async fn profile_view(
    state: &AdminState,
    id_type: &str,
    value: &str,
) -> Result<Value, AdminError> {
    let Some(id_type) = IdType::parse(id_type) else {
        return Err(AdminError::invalid(
            "id_type",
            format!(
                "unknown identifier type \"{id_type}\"; expected one of: user_id, email, anonymous_id"
            ),
        ));
    };
    let store = state.app.store();
    let profile = junction_profiles::find_profile(&**store, id_type, value)
        .await?
        .ok_or_else(|| {
            AdminError::not_found(format!("no profile with {} \"{value}\"", id_type.as_str()))
        })?;
    let snapshot = state.app.snapshot();
    let memberships: BTreeMap<&str, &Value> = snapshot
        .config()
        .audiences
        .iter()
        .filter(|a| a.kind == AudienceKind::Audience)
        .filter_map(|a| Some((a.key.as_str(), profile.values.get(&a.key)?)))
        .collect();
    Ok(json!({
        "id": profile.id,
        "identifiers": profile.identifiers,
        "traits": profile.traits,
        "audiences": memberships,
        "values": profile.values,
        "created_at": profile.created_at,
        "recent_events": profile.recent_events,
    }))
}

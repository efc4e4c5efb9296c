//! Runtime configuration: sources and their write keys, destinations (settings, delivery, connected
//! sources), their mappings, and the destination catalog. Every change goes through [`apply`]:
//! under the config lock, a copy of the workspace in force is changed, compiled whole, stored, and
//! only then put in force, so a change that does not compile changes nothing.
//!
//! Secrets never leave in full: write keys are shown masked (except the one a call just created),
//! and secret settings (ChartMogul's webhook URL) are masked after the host.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use junction_actions::{ActionDefinition, DestinationDefinition, registry};
use junction_fields::{Fields, InputField};
use junction_workspace::limits::MAX_WRITE_KEYS_PER_SOURCE;
use junction_workspace::{
    DeliveryConfig, DestinationConfig, MAX_MAPPINGS_PER_DESTINATION, MappingConfig, Snapshot,
    SourceConfig, WorkspaceConfig, WorkspaceError,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::story::mask_url;
use super::{AdminError, AdminState};
use crate::routes::Route;

/// The most items one page of a list holds.
const MAX_PAGE: usize = 1_000;
/// The longest id accepted from a caller.
const MAX_ID_CHARS: usize = 64;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/api/v1/catalog/destinations", list_catalog),
        Route::get("/api/v1/catalog/destinations/{slug}", get_catalog),
        Route::get("/api/v1/sources", list_sources),
        Route::post("/api/v1/sources", create_source),
        Route::get("/api/v1/sources/{id}", get_source),
        Route::patch("/api/v1/sources/{id}", rename_source),
        Route::delete("/api/v1/sources/{id}", delete_source),
        Route::post("/api/v1/sources/{id}/write-keys", add_write_key),
        Route::post("/api/v1/sources/{id}/write-keys/revoke", revoke_write_key),
        Route::get("/api/v1/destinations", list_destinations),
        Route::post("/api/v1/destinations", create_destination),
        Route::get("/api/v1/destinations/{id}", get_destination),
        Route::patch("/api/v1/destinations/{id}", update_destination),
        Route::delete("/api/v1/destinations/{id}", delete_destination),
        Route::post("/api/v1/destinations/{id}/enable", enable_destination),
        Route::post("/api/v1/destinations/{id}/disable", disable_destination),
        Route::put(
            "/api/v1/destinations/{id}/sources/{source_id}",
            connect_source,
        ),
        Route::delete(
            "/api/v1/destinations/{id}/sources/{source_id}",
            disconnect_source,
        ),
        Route::get("/api/v1/destinations/{id}/mappings", list_mappings),
        Route::post("/api/v1/destinations/{id}/mappings", create_mapping),
        Route::post(
            "/api/v1/destinations/{id}/mappings/presets/{preset}",
            add_preset_mapping,
        ),
        Route::get(
            "/api/v1/destinations/{id}/mappings/{mapping_id}",
            get_mapping,
        ),
        Route::patch(
            "/api/v1/destinations/{id}/mappings/{mapping_id}",
            update_mapping,
        ),
        Route::delete(
            "/api/v1/destinations/{id}/mappings/{mapping_id}",
            delete_mapping,
        ),
        Route::post(
            "/api/v1/destinations/{id}/mappings/{mapping_id}/enable",
            enable_mapping,
        ),
        Route::post(
            "/api/v1/destinations/{id}/mappings/{mapping_id}/disable",
            disable_mapping,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Shared machinery

/// A JSON body whose rejections answer in the admin error format (`validation`, field `body`).
pub(super) struct Body<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(body_error(&rejection)),
        }
    }
}

/// A body that is not the JSON expected: 400 at `body`, or 413 when it passes the admin API's
/// size limit (axum's own classification).
pub(super) fn body_error(rejection: &JsonRejection) -> AdminError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AdminError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request body is over the admin API's limit of {} bytes",
                super::ADMIN_BODY_LIMIT
            ),
        );
    }
    AdminError::invalid("body", rejection.body_text())
}

/// A change to the workspace: its result, and the path of the object it concerns
/// (`destinations[0].mappings[2]`), so that validation problems are reported relative to it.
pub(super) struct Changed<T> {
    value: T,
    focus: String,
}

impl<T> Changed<T> {
    pub(super) fn at(value: T, focus: String) -> Self {
        Self { value, focus }
    }
}

/// Applies a change: under the config lock, to a copy of the workspace in force; the result is
/// compiled whole (refused with every problem, nothing changed, if it does not), stored, and
/// then put in force for routing and delivery.
pub(super) async fn apply<T>(
    state: &AdminState,
    change: impl FnOnce(&mut WorkspaceConfig) -> Result<Changed<T>, AdminError>,
) -> Result<T, AdminError> {
    let _guard = state.config_lock.lock().await;
    let mut config = state.app.snapshot().config().clone();
    let Changed { value, focus } = change(&mut config)?;
    // Compiling parses every trigger and mapping and builds every schema: a blocking thread's
    // work for a large workspace, not an async worker's.
    let compiled = tokio::task::spawn_blocking(move || Snapshot::compile(config))
        .await
        .map_err(|err| {
            AdminError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("compiling the workspace failed: {err}"),
            )
        })?;
    let snapshot = compiled.map_err(|err| workspace_error(err, &focus))?;
    check_webhook_urls(state, &snapshot, &focus)?;
    state
        .app
        .store()
        .save_config(snapshot.config().to_document())
        .await?;
    state.app.replace_snapshot(snapshot);
    Ok(value)
}

/// Refuses a webhook URL the delivery policy would refuse (see `junction_delivery`'s
/// `WebhookPolicy`: `https` only unless the server allows the host, no private or loopback
/// address, not Junction's own listeners), so that it is refused when saved rather than at each
/// attempt. Only URLs the change sets are checked: one saved before the server's policy was
/// tightened does not block unrelated changes (its deliveries are refused with the reason).
fn check_webhook_urls(state: &AdminState, next: &Snapshot, focus: &str) -> Result<(), AdminError> {
    let policy = &state.sender.options().policy;
    let current = state.app.snapshot();
    let mut errors = Vec::new();
    for (index, destination) in next.destinations().iter().enumerate() {
        let before = current.destination(destination.id());
        for (key, url) in destination.settings().url_settings() {
            let unchanged = before.is_some_and(|before| {
                before
                    .settings()
                    .url_settings()
                    .any(|(old_key, old)| old_key == key && old == url)
            });
            if unchanged {
                continue;
            }
            if let Err(blocked) = policy.check_url(url) {
                let path = format!("destinations[{index}].settings.{key}");
                let object = format!("destination \"{}\"", destination.id());
                errors.push(relative_error(&path, focus, &object, blocked.to_string()));
            }
        }
    }
    match AdminError::validation(errors) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A problem at `path` as a validation error of the object changed (`focus`): its field
/// relative to it, or, for another object, its whole path and the object's name.
fn relative_error(
    path: &str,
    focus: &str,
    object: &str,
    message: String,
) -> (String, Option<String>) {
    let relative = path
        .strip_prefix(focus)
        .and_then(|rest| rest.strip_prefix('.'));
    match relative {
        Some(field) => (message, Some(field.to_owned())),
        None if path == focus => (message, None),
        None => (format!("{object}: {message}"), Some(path.to_owned())),
    }
}

/// The problems of a refused workspace as validation errors: a problem of the object changed
/// names its field relative to it (`trigger`); any other keeps its whole path and names its
/// object.
fn workspace_error(err: WorkspaceError, focus: &str) -> AdminError {
    let WorkspaceError::Invalid { problems } = err else {
        // Not the change's fault: the built-in definitions failed to compile (a bug).
        return AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        );
    };
    let errors = problems
        .into_iter()
        .map(|problem| {
            relative_error(
                &problem.path,
                focus,
                &problem.object,
                problem.kind.to_string(),
            )
        })
        .collect();
    AdminError::validation(errors).unwrap_or_else(|| {
        AdminError::new(
            StatusCode::BAD_REQUEST,
            "validation",
            "the workspace is invalid",
        )
    })
}

fn no_source(id: &str) -> AdminError {
    AdminError::not_found(format!("source \"{id}\" not found"))
}

fn no_destination(id: &str) -> AdminError {
    AdminError::not_found(format!("destination \"{id}\" not found"))
}

fn no_mapping(destination: &str, id: &str) -> AdminError {
    AdminError::not_found(format!(
        "mapping \"{id}\" of destination \"{destination}\" not found"
    ))
}

fn source_index(config: &WorkspaceConfig, id: &str) -> Result<usize, AdminError> {
    config
        .sources
        .iter()
        .position(|source| source.id == id)
        .ok_or_else(|| no_source(id))
}

pub(super) fn destination_index(config: &WorkspaceConfig, id: &str) -> Result<usize, AdminError> {
    config
        .destinations
        .iter()
        .position(|destination| destination.id == id)
        .ok_or_else(|| no_destination(id))
}

fn mapping_index(destination: &DestinationConfig, id: &str) -> Result<usize, AdminError> {
    destination
        .mappings
        .iter()
        .position(|mapping| mapping.id == id)
        .ok_or_else(|| no_mapping(&destination.id, id))
}

/// The id a caller gave (checked: URL-safe, at most [`MAX_ID_CHARS`], not taken), or a new one
/// made of the name's slug and a short random suffix.
fn choose_id(
    given: Option<String>,
    kind: &str,
    name: &str,
    taken: impl Fn(&str) -> bool,
) -> Result<String, AdminError> {
    if let Some(id) = given {
        let valid = !id.is_empty()
            && id.chars().count() <= MAX_ID_CHARS
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(AdminError::invalid(
                "id",
                format!(
                    "an id is 1 to {MAX_ID_CHARS} letters, digits, '-', '_' or '.' (it appears \
                     in URLs)"
                ),
            ));
        }
        if taken(&id) {
            return Err(AdminError::conflict(format!(
                "{kind} \"{id}\" already exists"
            )));
        }
        return Ok(id);
    }
    let base = slug(name, kind);
    loop {
        let id = format!("{base}-{}", random_hex(6));
        if !taken(&id) {
            return Ok(id);
        }
    }
}

/// `My Web App!` → `my-web-app`; `fallback` when nothing is left.
fn slug(name: &str, fallback: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        fallback.to_owned()
    } else {
        slug.to_owned()
    }
}

/// `chars` random hex digits (at most 32), from a v4 UUID (the OS's CSPRNG).
fn random_hex(chars: usize) -> String {
    junction_event::random_message_id()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(chars)
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// One page of `items` (in workspace order) after the item with id `after`; `next` is the cursor
/// of the following page, `null` on the last.
fn page<T>(
    items: &[T],
    id: impl Fn(&T) -> &str,
    query: PageQuery,
) -> Result<(&[T], Option<String>), AdminError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(AdminError::invalid(
            "limit",
            format!("limit must be from 1 to {MAX_PAGE}"),
        ));
    }
    let start = match query.after {
        None => 0,
        Some(after) => {
            items
                .iter()
                .position(|item| id(item) == after)
                .ok_or_else(|| {
                    AdminError::invalid("after", format!("unknown cursor \"{after}\""))
                })?
                + 1
        }
    };
    let rest = items.get(start..).unwrap_or_default();
    let page = rest.get(..limit).unwrap_or(rest);
    let next = (rest.len() > page.len())
        .then(|| page.last().map(|item| id(item).to_owned()))
        .flatten();
    Ok((page, next))
}

pub(super) fn listed(items: Vec<Value>, next: Option<String>) -> Json<Value> {
    Json(json!({"data": items, "pagination": {"next": next}}))
}

pub(super) fn created(data: Value) -> Response {
    (StatusCode::CREATED, Json(json!({"data": data}))).into_response()
}

pub(super) fn deleted(id: &str) -> Json<Value> {
    Json(json!({"data": {"id": id, "deleted": true}}))
}

pub(crate) fn definition_of(slug: &str) -> Result<&'static DestinationDefinition, AdminError> {
    let registry = registry().map_err(|err| {
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        )
    })?;
    registry
        .get(slug)
        .ok_or_else(|| AdminError::not_found(format!("destination type \"{slug}\" not found")))
}

// ---------------------------------------------------------------------------------------------
// Catalog

/// `GET /catalog/destinations`: every destination type, with its actions.
async fn list_catalog() -> Result<Json<Value>, AdminError> {
    let registry = registry().map_err(|err| {
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        )
    })?;
    let types: Vec<Value> = registry
        .iter()
        .map(|definition| {
            json!({
                "slug": definition.slug,
                "name": definition.name,
                "description": definition.description,
                "actions": definition.actions.iter().map(|action| json!({
                    "slug": action.slug,
                    "title": action.title,
                    "default_trigger": action.default_trigger,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({"data": types})))
}

/// `GET /catalog/destinations/{slug}`: a destination type's settings and actions, every field
/// with its key, type, label, description, default, required and choices.
async fn get_catalog(Path(slug): Path<String>) -> Result<Json<Value>, AdminError> {
    let definition = definition_of(&slug)?;
    Ok(Json(json!({"data": catalog_view(definition)})))
}

pub(crate) fn catalog_view(definition: &DestinationDefinition) -> Value {
    json!({
        "slug": definition.slug,
        "name": definition.name,
        "description": definition.description,
        "integration_aliases": definition.integration_aliases,
        "settings": fields_view(&definition.settings_fields, definition.secret_settings),
        "actions": definition.actions.iter().map(action_view).collect::<Vec<_>>(),
        "presets": definition.presets.iter().map(|preset| json!({
            "id": preset.id,
            "name": preset.name,
            "description": preset.description,
            "action": preset.action,
            "trigger": preset.trigger,
            "mapping": preset.mapping,
        })).collect::<Vec<_>>(),
        "max_mappings": MAX_MAPPINGS_PER_DESTINATION,
    })
}

fn action_view(action: &ActionDefinition) -> Value {
    json!({
        "slug": action.slug,
        "title": action.title,
        "description": action.description,
        "default_trigger": action.default_trigger,
        "default_mapping": action.default_mapping(),
        "fields": fields_view(&action.fields, &[]),
    })
}

/// Each field as the reference declares it, plus its `key`; the keys a catalogue always shows
/// (`label`, `description`, `default`, `required`, `choices`) are present even when unset.
fn fields_view(fields: &Fields, secrets: &[&str]) -> Vec<Value> {
    fields
        .iter()
        .map(|(key, field)| field_view(key, field, secrets.contains(&key.as_str())))
        .collect()
}

fn field_view(key: &str, field: &InputField, secret: bool) -> Value {
    let mut view = Map::new();
    view.insert("key".to_owned(), Value::from(key));
    if let Ok(Value::Object(declared)) = serde_json::to_value(field) {
        view.extend(declared);
    }
    for absent in ["label", "description", "default", "choices"] {
        view.entry(absent).or_insert(Value::Null);
    }
    view.entry("required").or_insert(Value::Bool(false));
    view.insert("secret".to_owned(), Value::Bool(secret));
    Value::Object(view)
}

// ---------------------------------------------------------------------------------------------
// Sources

/// Write keys are shown by their first characters only, and only when long enough that the
/// prefix leaves most of the key unknown.
pub(crate) fn mask_write_key(key: &str) -> String {
    if key.chars().count() >= 16 {
        format!("{}…", key.chars().take(4).collect::<String>())
    } else {
        "…".to_owned()
    }
}

pub(crate) fn source_view(source: &SourceConfig) -> Value {
    json!({
        "id": source.id,
        "name": source.name,
        "write_keys": source.write_keys.iter().map(|k| mask_write_key(k)).collect::<Vec<_>>(),
    })
}

/// A source view with `write_key`, the key this call created, in full: the only time it is shown.
fn source_view_with_key(source: &SourceConfig, key: &str) -> Value {
    let mut view = source_view(source);
    if let Some(object) = view.as_object_mut() {
        object.insert("write_key".to_owned(), Value::from(key));
    }
    view
}

fn new_write_key() -> String {
    format!("wk_{}", random_hex(32))
}

fn key_in_use(config: &WorkspaceConfig, key: &str) -> bool {
    config
        .sources
        .iter()
        .any(|source| source.write_keys.iter().any(|k| k == key))
}

async fn list_sources(
    State(state): State<AdminState>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let (items, next) = page(&snapshot.config().sources, |s| &s.id, query)?;
    Ok(listed(items.iter().map(source_view).collect(), next))
}

async fn get_source(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let index = source_index(snapshot.config(), &id)?;
    let source = &snapshot.config().sources[index];
    Ok(Json(json!({"data": source_view(source)})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSource {
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) name: String,
    /// Without it, one key is generated.
    #[serde(default)]
    pub(crate) write_keys: Vec<String>,
}

async fn create_source(
    State(state): State<AdminState>,
    Body(body): Body<NewSource>,
) -> Result<Response, AdminError> {
    Ok(created(add_source(&state, body).await?))
}

/// Creates a source; its view, with `write_key` in full when one was generated (the only time
/// it is shown).
pub(crate) async fn add_source(state: &AdminState, body: NewSource) -> Result<Value, AdminError> {
    apply(state, |config| {
        let id = choose_id(body.id, "source", &body.name, |id| {
            config.sources.iter().any(|source| source.id == id)
        })?;
        if body.write_keys.iter().any(|key| key_in_use(config, key)) {
            return Err(AdminError::conflict("a write key given is already in use"));
        }
        let generated = body.write_keys.is_empty().then(new_write_key);
        let write_keys = generated.clone().map_or(body.write_keys, |key| vec![key]);
        let source = SourceConfig {
            id,
            name: body.name,
            write_keys,
        };
        let view = match &generated {
            Some(key) => source_view_with_key(&source, key),
            None => source_view(&source),
        };
        let focus = format!("sources[{}]", config.sources.len());
        config.sources.push(source);
        Ok(Changed::at(view, focus))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcePatch {
    name: String,
}

async fn rename_source(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(body): Body<SourcePatch>,
) -> Result<Json<Value>, AdminError> {
    let view = apply(&state, |config| {
        let index = source_index(config, &id)?;
        let source = &mut config.sources[index];
        source.name = body.name;
        Ok(Changed::at(
            source_view(source),
            format!("sources[{index}]"),
        ))
    })
    .await?;
    Ok(Json(json!({"data": view})))
}

async fn delete_source(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    apply(&state, |config| {
        let index = source_index(config, &id)?;
        let connected: Vec<&str> = config
            .destinations
            .iter()
            .filter(|destination| destination.sources.contains(&id))
            .map(|destination| destination.id.as_str())
            .collect();
        if !connected.is_empty() {
            return Err(AdminError::conflict(format!(
                "source \"{id}\" is connected to destination(s) {}; disconnect it first",
                connected.join(", ")
            )));
        }
        config.sources.remove(index);
        Ok(Changed::at((), String::from("sources")))
    })
    .await?;
    Ok(deleted(&id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWriteKey {
    /// Without it, a random key is generated.
    write_key: Option<String>,
}

/// Adds a write key: the one given, or a new random one when the body is empty or has none.
async fn add_write_key(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let given = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<NewWriteKey>(&body)
            .map_err(|err| AdminError::invalid("body", err.to_string()))?
            .write_key
    };
    Ok(created(new_source_key(&state, &id, given).await?))
}

/// Adds a write key to source `id` (the one given, or a new random one); the source's view with
/// the new key in full (the only time it is shown).
pub(crate) async fn new_source_key(
    state: &AdminState,
    id: &str,
    given: Option<String>,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = source_index(config, id)?;
        // Full: a conflict with the source as it is, like a full destination's mappings.
        let count = config.sources[index].write_keys.len();
        if count >= MAX_WRITE_KEYS_PER_SOURCE {
            return Err(AdminError::conflict(format!(
                "a source holds at most {MAX_WRITE_KEYS_PER_SOURCE} write keys; \"{id}\" has \
                 {count}: revoke one first"
            )));
        }
        let key = match given {
            Some(key) if key_in_use(config, &key) => {
                return Err(AdminError::conflict("this write key is already in use"));
            }
            Some(key) => key,
            None => new_write_key(),
        };
        let source = &mut config.sources[index];
        source.write_keys.push(key.clone());
        let focus = format!("sources[{index}]");
        Ok(Changed::at(source_view_with_key(source, &key), focus))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokedWriteKey {
    write_key: String,
}

/// Revokes a write key. The key travels in the body, not the path, so that it stays out of
/// access logs.
async fn revoke_write_key(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(body): Body<RevokedWriteKey>,
) -> Result<Json<Value>, AdminError> {
    let view = revoke_source_key(&state, &id, |key| key == body.write_key).await?;
    Ok(Json(json!({"data": view})))
}

/// Revokes the write key of source `id` that `which` picks (the API names it in full, the app by
/// its position); the source's view.
pub(crate) async fn revoke_source_key(
    state: &AdminState,
    id: &str,
    which: impl Fn(&str) -> bool,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = source_index(config, id)?;
        let source = &mut config.sources[index];
        let Some(position) = source.write_keys.iter().position(|k| which(k)) else {
            return Err(AdminError::not_found(format!(
                "source \"{id}\" has no such write key"
            )));
        };
        if source.write_keys.len() == 1 {
            return Err(AdminError::invalid(
                "write_key",
                "a source needs at least one write key: add another before revoking this one",
            ));
        }
        source.write_keys.remove(position);
        Ok(Changed::at(
            source_view(source),
            format!("sources[{index}]"),
        ))
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Destinations

/// The masked form of a secret setting: a URL keeps its scheme and host, anything else nothing.
fn mask_secret(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(mask_url(text)),
        Value::Null => Value::Null,
        _ => Value::from("…"),
    }
}

pub(crate) fn masked_settings(destination: &DestinationConfig) -> Value {
    // A destination type that is not known cannot say which settings are secrets: all are.
    let secrets = definition_of(&destination.destination_type)
        .ok()
        .map(|definition| definition.secret_settings);
    let Value::Object(settings) = &destination.settings else {
        return Value::Object(Map::new());
    };
    let masked: Map<String, Value> = settings
        .iter()
        .map(|(key, value)| {
            let secret = secrets.is_none_or(|secrets| secrets.contains(&key.as_str()));
            let shown = if secret {
                mask_secret(value)
            } else {
                value.clone()
            };
            (key.clone(), shown)
        })
        .collect();
    Value::Object(masked)
}

pub(crate) fn destination_view(destination: &DestinationConfig) -> Value {
    json!({
        "id": destination.id,
        "name": destination.name,
        "type": destination.destination_type,
        "enabled": destination.enabled,
        "settings": masked_settings(destination),
        "sources": destination.sources,
        "delivery": {
            "max_concurrency": destination.delivery.max_concurrency,
            "rate_limit": destination.delivery.rate_limit,
            "retry_window_secs": destination.delivery.retry_window_secs,
        },
        "mapping_count": destination.mappings.len(),
    })
}

async fn list_destinations(
    State(state): State<AdminState>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let (items, next) = page(&snapshot.config().destinations, |d| &d.id, query)?;
    Ok(listed(items.iter().map(destination_view).collect(), next))
}

async fn get_destination(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let index = destination_index(snapshot.config(), &id)?;
    let destination = &snapshot.config().destinations[index];
    Ok(Json(json!({"data": destination_view(destination)})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDestination {
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) destination_type: String,
    #[serde(default)]
    pub(crate) settings: Map<String, Value>,
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
    #[serde(default)]
    pub(crate) sources: Vec<String>,
    #[serde(default)]
    pub(crate) delivery: Option<Map<String, Value>>,
}

fn enabled_by_default() -> bool {
    true
}

async fn create_destination(
    State(state): State<AdminState>,
    Body(body): Body<NewDestination>,
) -> Result<Response, AdminError> {
    Ok(created(add_destination(&state, body).await?))
}

/// Creates a destination (no mappings); its view, settings masked.
pub(crate) async fn add_destination(
    state: &AdminState,
    body: NewDestination,
) -> Result<Value, AdminError> {
    definition_of(&body.destination_type).map_err(|_| {
        let known: Vec<&str> = registry()
            .map(|r| r.iter().map(|d| d.slug).collect())
            .unwrap_or_default();
        AdminError::invalid(
            "type",
            format!(
                "unknown destination type \"{}\"; expected one of: {}",
                body.destination_type,
                known.join(", ")
            ),
        )
    })?;
    apply(state, |config| {
        let id = choose_id(body.id, "destination", &body.name, |id| {
            config.destinations.iter().any(|d| d.id == id)
        })?;
        let delivery = merge_delivery(DeliveryConfig::default(), body.delivery)?;
        let destination = DestinationConfig {
            id,
            name: body.name,
            destination_type: body.destination_type,
            settings: Value::Object(body.settings),
            enabled: body.enabled,
            sources: body.sources,
            mappings: Vec::new(),
            delivery,
            samples: Vec::new(),
        };
        let view = destination_view(&destination);
        let focus = format!("destinations[{}]", config.destinations.len());
        config.destinations.push(destination);
        Ok(Changed::at(view, focus))
    })
    .await
}

/// JSON has one number type: `20.0` and `2e1` are the integer 20 as much as `20` is (JSON
/// Schema's `integer`, which the OpenAPI document uses, says so), but serde refuses them for an
/// integer field. Rewrites such a number as the integer it is, when it is within ±2^53, where a
/// float is the integer that was written (beyond, an integer too large for 64 bits reads as a
/// float too, and must stay refused); any other value is left as it is.
pub(super) fn integral(value: &mut Value) {
    /// 2^53: every integer up to it is exact as a float.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let integer = value
        .as_number()
        .filter(|number| number.is_f64())
        .and_then(serde_json::Number::as_f64)
        .filter(|float| float.fract() == 0.0 && float.abs() <= EXACT);
    if let Some(float) = integer {
        *value = Value::from(float as i64);
    }
}

/// `delivery` members given over `current`; `rate_limit: null` removes the limit.
fn merge_delivery(
    current: DeliveryConfig,
    given: Option<Map<String, Value>>,
) -> Result<DeliveryConfig, AdminError> {
    let Some(mut given) = given else {
        return Ok(current);
    };
    given.values_mut().for_each(integral);
    let Ok(Value::Object(mut merged)) = serde_json::to_value(current) else {
        return Ok(current);
    };
    merged.extend(given);
    serde_json::from_value(Value::Object(merged))
        .map_err(|err| AdminError::invalid("delivery", err.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationPatch {
    pub(crate) name: Option<String>,
    /// Merged over the current settings: a `null` removes a setting, and a secret sent back in
    /// its masked form keeps its value (so a client can send back what it read).
    pub(crate) settings: Option<Map<String, Value>>,
    pub(crate) enabled: Option<bool>,
    pub(crate) delivery: Option<Map<String, Value>>,
}

async fn update_destination(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(body): Body<DestinationPatch>,
) -> Result<Json<Value>, AdminError> {
    let view = change_destination(&state, &id, body).await?;
    Ok(Json(json!({"data": view})))
}

/// Changes a destination: name, enabled, delivery, settings merged (a secret sent back masked
/// keeps its value); its view.
pub(crate) async fn change_destination(
    state: &AdminState,
    id: &str,
    body: DestinationPatch,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        if let Some(name) = body.name {
            destination.name = name;
        }
        if let Some(enabled) = body.enabled {
            destination.enabled = enabled;
        }
        destination.delivery = merge_delivery(destination.delivery, body.delivery)?;
        if let Some(given) = body.settings {
            let secrets = definition_of(&destination.destination_type)
                .map(|definition| definition.secret_settings)
                .unwrap_or_default();
            let mut settings = match &destination.settings {
                Value::Object(settings) => settings.clone(),
                _ => Map::new(),
            };
            for (key, value) in given {
                let current = settings.get(&key);
                let masked_echo = secrets.contains(&key.as_str())
                    && current.is_some_and(|current| mask_secret(current) == value);
                if masked_echo {
                    continue;
                }
                if value.is_null() {
                    settings.shift_remove(&key);
                } else {
                    settings.insert(key, value);
                }
            }
            destination.settings = Value::Object(settings);
        }
        Ok(Changed::at(
            destination_view(destination),
            format!("destinations[{index}]"),
        ))
    })
    .await
}

async fn set_destination_enabled(
    state: &AdminState,
    id: &str,
    enabled: bool,
) -> Result<Json<Value>, AdminError> {
    let view = apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        destination.enabled = enabled;
        Ok(Changed::at(
            destination_view(destination),
            format!("destinations[{index}]"),
        ))
    })
    .await?;
    Ok(Json(json!({"data": view})))
}

async fn enable_destination(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    set_destination_enabled(&state, &id, true).await
}

async fn disable_destination(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    set_destination_enabled(&state, &id, false).await
}

/// `PUT /destinations/{id}/sources/{source_id}`: connects a source (idempotent).
async fn connect_source(
    State(state): State<AdminState>,
    Path((id, source_id)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let view = connect(&state, &id, &source_id).await?;
    Ok(Json(json!({"data": view})))
}

/// Connects source `source_id` to destination `id` (idempotent); the destination's view.
pub(crate) async fn connect(
    state: &AdminState,
    id: &str,
    source_id: &str,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        source_index(config, source_id)?;
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        if !destination.sources.iter().any(|s| s == source_id) {
            destination.sources.push(source_id.to_owned());
        }
        Ok(Changed::at(
            destination_view(destination),
            format!("destinations[{index}]"),
        ))
    })
    .await
}

/// `DELETE /destinations/{id}/sources/{source_id}`: disconnects a source.
async fn disconnect_source(
    State(state): State<AdminState>,
    Path((id, source_id)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let view = disconnect(&state, &id, &source_id).await?;
    Ok(Json(json!({"data": view})))
}

/// Disconnects source `source_id` from destination `id`; the destination's view.
pub(crate) async fn disconnect(
    state: &AdminState,
    id: &str,
    source_id: &str,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        let Some(position) = destination.sources.iter().position(|s| *s == source_id) else {
            return Err(AdminError::not_found(format!(
                "source \"{source_id}\" is not connected to destination \"{id}\""
            )));
        };
        destination.sources.remove(position);
        Ok(Changed::at(
            destination_view(destination),
            format!("destinations[{index}]"),
        ))
    })
    .await
}

async fn delete_destination(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    apply(&state, |config| {
        let index = destination_index(config, &id)?;
        config.destinations.remove(index);
        Ok(Changed::at((), String::from("destinations")))
    })
    .await?;
    Ok(deleted(&id))
}

// ---------------------------------------------------------------------------------------------
// Mappings

pub(crate) fn mapping_view(destination_id: &str, mapping: &MappingConfig) -> Value {
    json!({
        "id": mapping.id,
        "destination_id": destination_id,
        "action": mapping.action,
        "name": mapping.name,
        "trigger": mapping.trigger,
        "mapping": mapping.mapping,
        "enabled": mapping.enabled,
        "use_defaults": mapping.use_defaults,
    })
}

async fn list_mappings(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let index = destination_index(snapshot.config(), &id)?;
    let destination = &snapshot.config().destinations[index];
    let (items, next) = page(&destination.mappings, |m| &m.id, query)?;
    Ok(listed(
        items.iter().map(|m| mapping_view(&id, m)).collect(),
        next,
    ))
}

async fn get_mapping(
    State(state): State<AdminState>,
    Path((id, mapping_id)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let index = destination_index(snapshot.config(), &id)?;
    let destination = &snapshot.config().destinations[index];
    let mapping = &destination.mappings[mapping_index(destination, &mapping_id)?];
    Ok(Json(json!({"data": mapping_view(&id, mapping)})))
}

/// A mapping as a caller sends it to create (or test) one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMapping {
    pub(crate) id: Option<String>,
    pub(crate) action: String,
    pub(crate) name: Option<String>,
    pub(crate) trigger: Option<String>,
    pub(crate) mapping: Option<Map<String, Value>>,
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
}

/// The action `slug` of a destination type, or a validation error naming the ones it has.
fn action_of(
    definition: &'static DestinationDefinition,
    slug: &str,
) -> Result<&'static ActionDefinition, AdminError> {
    definition.action(slug).ok_or_else(|| {
        let expected: Vec<&str> = definition.actions.iter().map(|a| a.slug).collect();
        AdminError::invalid(
            "action",
            format!(
                "unknown action \"{slug}\"; expected one of: {}",
                expected.join(", ")
            ),
        )
    })
}

impl NewMapping {
    /// The mapping to save, as the reference UI builds it: fields not given take the action's
    /// defaults (a `null` clears one), the trigger defaults to the action's, the name to its
    /// title. The result is saved whole, so it no longer depends on the defaults.
    pub(super) fn into_config(
        self,
        definition: &'static DestinationDefinition,
        id: String,
    ) -> Result<MappingConfig, AdminError> {
        let action = action_of(definition, &self.action)?;
        let mapping = action.mapping_with_defaults(&self.mapping.unwrap_or_default());
        Ok(MappingConfig {
            id,
            action: self.action,
            name: self.name.unwrap_or_else(|| action.title.to_owned()),
            trigger: Some(
                self.trigger
                    .unwrap_or_else(|| action.default_trigger.to_owned()),
            ),
            mapping: Some(Value::Object(mapping)),
            enabled: self.enabled,
            use_defaults: false,
        })
    }

    /// Takes the caller's id out (the rest makes the mapping).
    pub(super) fn take_id(&mut self) -> Option<String> {
        self.id.take()
    }
}

async fn create_mapping(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(body): Body<NewMapping>,
) -> Result<Response, AdminError> {
    Ok(created(add_mapping(&state, &id, body).await?))
}

/// Adds a mapping at the end of destination `id`'s (refused past the limit); its view.
pub(crate) async fn add_mapping(
    state: &AdminState,
    id: &str,
    mut body: NewMapping,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        // Full: a conflict with the destination as it is (like deleting a connected source), not
        // a fault of the request, which would succeed once a mapping is deleted.
        check_room(destination)?;
        let definition = definition_of(&destination.destination_type)?;
        let name = body.name.clone().unwrap_or_default();
        let mapping_id = choose_id(body.take_id(), "mapping", &name, |candidate| {
            destination.mappings.iter().any(|m| m.id == candidate)
        })?;
        let mapping = body.into_config(definition, mapping_id)?;
        let view = mapping_view(id, &mapping);
        let focus = format!(
            "destinations[{index}].mappings[{}]",
            destination.mappings.len()
        );
        destination.mappings.push(mapping);
        Ok(Changed::at(view, focus))
    })
    .await
}

/// Adds one of the destination type's ready-made mappings (e.g. ChartMogul's audience
/// attributes), under the preset's id.
async fn add_preset_mapping(
    State(state): State<AdminState>,
    Path((id, preset_id)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    let view = apply(&state, |config| {
        let index = destination_index(config, &id)?;
        let destination = &mut config.destinations[index];
        let definition = definition_of(&destination.destination_type)?;
        let preset = definition.preset(&preset_id).ok_or_else(|| {
            let known: Vec<&str> = definition.presets.iter().map(|p| p.id).collect();
            AdminError::not_found(format!(
                "no preset \"{preset_id}\" for {}; presets: {}",
                definition.name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        if destination.mappings.iter().any(|m| m.id == preset.id) {
            return Err(AdminError::conflict(format!(
                "mapping \"{}\" already exists",
                preset.id
            )));
        }
        if destination.mappings.len() >= MAX_MAPPINGS_PER_DESTINATION {
            return Err(AdminError::conflict(format!(
                "a destination holds at most {MAX_MAPPINGS_PER_DESTINATION} mappings; \"{id}\" \
                 has {}: delete one first",
                destination.mappings.len()
            )));
        }
        let Value::Object(mapping) = preset.mapping.clone() else {
            return Err(AdminError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "a preset's mapping is not an object",
            ));
        };
        let new = NewMapping {
            id: None,
            action: preset.action.to_owned(),
            name: Some(preset.name.to_owned()),
            trigger: Some(preset.trigger.to_owned()),
            mapping: Some(mapping),
            enabled: true,
        };
        let mapping = new.into_config(definition, preset.id.to_owned())?;
        let view = mapping_view(&id, &mapping);
        let focus = format!(
            "destinations[{index}].mappings[{}]",
            destination.mappings.len()
        );
        destination.mappings.push(mapping);
        Ok(Changed::at(view, focus))
    })
    .await?;
    Ok(created(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingPatch {
    pub(crate) name: Option<String>,
    /// A new action: the mapping starts again from its defaults.
    pub(crate) action: Option<String>,
    pub(crate) trigger: Option<String>,
    /// Merged over the current mapping: a `null` clears a field.
    pub(crate) mapping: Option<Map<String, Value>>,
    pub(crate) enabled: Option<bool>,
}

async fn update_mapping(
    State(state): State<AdminState>,
    Path((id, mapping_id)): Path<(String, String)>,
    Body(body): Body<MappingPatch>,
) -> Result<Json<Value>, AdminError> {
    let view = change_mapping(&state, &id, &mapping_id, body).await?;
    Ok(Json(json!({"data": view})))
}

/// Changes a mapping (its `mapping` merged over the current one, a `null` clearing a field);
/// its view.
pub(crate) async fn change_mapping(
    state: &AdminState,
    id: &str,
    mapping_id: &str,
    body: MappingPatch,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        let position = mapping_index(destination, mapping_id)?;
        let definition = definition_of(&destination.destination_type)?;
        let mapping = &mut destination.mappings[position];
        let given = body.mapping.unwrap_or_default();
        let merged = match body.action {
            Some(action) => {
                let definition = action_of(definition, &action)?;
                mapping.action = action;
                definition.mapping_with_defaults(&given)
            }
            None => {
                let mut current = match &mapping.mapping {
                    Some(Value::Object(current)) => current.clone(),
                    _ => Map::new(),
                };
                if mapping.use_defaults {
                    // Saved from a file over the defaults: from now on it is saved whole.
                    current =
                        action_of(definition, &mapping.action)?.mapping_with_defaults(&current);
                }
                for (key, value) in given {
                    if value.is_null() {
                        current.shift_remove(&key);
                    } else {
                        current.insert(key, value);
                    }
                }
                current
            }
        };
        mapping.mapping = Some(Value::Object(merged));
        mapping.use_defaults = false;
        if let Some(name) = body.name {
            mapping.name = name;
        }
        if let Some(trigger) = body.trigger {
            mapping.trigger = Some(trigger);
        }
        if let Some(enabled) = body.enabled {
            mapping.enabled = enabled;
        }
        Ok(Changed::at(
            mapping_view(id, mapping),
            format!("destinations[{index}].mappings[{position}]"),
        ))
    })
    .await
}

/// Enables or disables a mapping; its view.
pub(crate) async fn set_mapping_enabled(
    state: &AdminState,
    id: &str,
    mapping_id: &str,
    enabled: bool,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        let position = mapping_index(destination, mapping_id)?;
        let mapping = &mut destination.mappings[position];
        mapping.enabled = enabled;
        Ok(Changed::at(
            mapping_view(id, mapping),
            format!("destinations[{index}].mappings[{position}]"),
        ))
    })
    .await
}

async fn enable_mapping(
    State(state): State<AdminState>,
    Path((id, mapping_id)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let view = set_mapping_enabled(&state, &id, &mapping_id, true).await?;
    Ok(Json(json!({"data": view})))
}

async fn disable_mapping(
    State(state): State<AdminState>,
    Path((id, mapping_id)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let view = set_mapping_enabled(&state, &id, &mapping_id, false).await?;
    Ok(Json(json!({"data": view})))
}

async fn delete_mapping(
    State(state): State<AdminState>,
    Path((id, mapping_id)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    remove_mapping(&state, &id, &mapping_id).await?;
    Ok(deleted(&mapping_id))
}

/// Deletes a mapping.
pub(crate) async fn remove_mapping(
    state: &AdminState,
    id: &str,
    mapping_id: &str,
) -> Result<(), AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        let position = mapping_index(destination, mapping_id)?;
        destination.mappings.remove(position);
        Ok(Changed::at((), format!("destinations[{index}].mappings")))
    })
    .await
}

/// A destination with room for one more mapping, or the 409 that says why not.
fn check_room(destination: &DestinationConfig) -> Result<(), AdminError> {
    // Full: a conflict with the destination as it is (like deleting a connected source), not
    // a fault of the request, which would succeed once a mapping is deleted.
    if destination.mappings.len() >= MAX_MAPPINGS_PER_DESTINATION {
        return Err(AdminError::conflict(format!(
            "a destination holds at most {MAX_MAPPINGS_PER_DESTINATION} mappings; \"{}\" has \
             {}: delete one first",
            destination.id,
            destination.mappings.len()
        )));
    }
    Ok(())
}

/// Copies a mapping right after it, named "<name> (copy)" and disabled (so that the copy
/// changes no delivery until it is edited and enabled); the copy's view.
pub(crate) async fn duplicate_mapping(
    state: &AdminState,
    id: &str,
    mapping_id: &str,
) -> Result<Value, AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        check_room(destination)?;
        let position = mapping_index(destination, mapping_id)?;
        let original = &destination.mappings[position];
        let name = format!("{} (copy)", original.name);
        let copy_id = choose_id(None, "mapping", &name, |candidate| {
            destination.mappings.iter().any(|m| m.id == candidate)
        })?;
        let copy = MappingConfig {
            id: copy_id,
            name,
            enabled: false,
            ..original.clone()
        };
        let view = mapping_view(id, &copy);
        destination.mappings.insert(position + 1, copy);
        Ok(Changed::at(
            view,
            format!("destinations[{index}].mappings[{}]", position + 1),
        ))
    })
    .await
}

/// Moves a mapping one place earlier (`up`) or later in delivery order; a move past either end
/// changes nothing.
pub(crate) async fn move_mapping(
    state: &AdminState,
    id: &str,
    mapping_id: &str,
    up: bool,
) -> Result<(), AdminError> {
    apply(state, |config| {
        let index = destination_index(config, id)?;
        let destination = &mut config.destinations[index];
        let position = mapping_index(destination, mapping_id)?;
        let other = if up {
            position.checked_sub(1)
        } else {
            Some(position + 1).filter(|&next| next < destination.mappings.len())
        };
        if let Some(other) = other {
            destination.mappings.swap(position, other);
        }
        Ok(Changed::at((), format!("destinations[{index}].mappings")))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_letters_and_digits() {
        assert_eq!(slug("My Web App!", "source"), "my-web-app");
        assert_eq!(slug("  ", "source"), "source");
        assert_eq!(slug("ÉtÉ 2024", "source"), "t-2024");
        assert_eq!(random_hex(6).len(), 6);
    }

    #[test]
    fn pages_follow_the_cursor() {
        let items = ["a", "b", "c"];
        let query = |after: Option<&str>, limit| PageQuery {
            after: after.map(str::to_owned),
            limit: Some(limit),
        };
        let (first, next) = page(&items, |s| s, query(None, 2)).unwrap();
        assert_eq!((first, next.as_deref()), (&items[..2], Some("b")));
        let (rest, next) = page(&items, |s| s, query(Some("b"), 2)).unwrap();
        assert_eq!((rest, next), (&items[2..], None));
        assert!(page(&items, |s| s, query(Some("zz"), 2)).is_err());
        assert!(page(&items, |s| s, query(None, 0)).is_err());
    }

    #[test]
    fn write_keys_are_masked() {
        assert_eq!(mask_write_key("short"), "…");
        assert_eq!(mask_write_key("wk_0123456789abcdef"), "wk_0…");
    }
}

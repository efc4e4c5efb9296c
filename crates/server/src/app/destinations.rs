//! The catalog (destination types and their actions), adding a destination (name → sources →
//! settings → quick or custom setup), the list of destinations, and a destination's settings
//! with its connection test.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use junction_actions::registry;
use serde_json::{Map, Value};

use super::form::FormData;
use super::{Chrome, SessionInfo, error_page, render, render_with, text};
use crate::admin::config::{
    DestinationPatch, NewDestination, NewMapping, add_destination, add_mapping, catalog_view,
    connect, definition_of, destination_view, disconnect,
};
use crate::admin::testers::test_connection as run_connection_test;
use crate::admin::{AdminError, AdminState};

/// A destination type's action, as the catalog shows it.
pub(crate) struct ActionLine {
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) default_trigger: String,
}

/// A settings field of a form, with what was entered and its error.
pub(crate) struct SettingField {
    pub(crate) key: String,
    pub(crate) label: String,
    pub(crate) description: String,
    pub(crate) required: bool,
    pub(crate) secret: bool,
    pub(crate) value: String,
    pub(crate) error: Option<String>,
}

/// A source a destination can be connected to.
pub(crate) struct SourceChoice {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) checked: bool,
}

/// A destination type in the catalog.
pub(crate) struct CatalogType {
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) actions: Vec<ActionLine>,
}

fn catalog_type(view: &Value) -> CatalogType {
    CatalogType {
        slug: text(&view["slug"]),
        name: text(&view["name"]),
        description: text(&view["description"]),
        actions: view["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|action| ActionLine {
                title: text(&action["title"]),
                description: text(&action["description"]),
                default_trigger: text(&action["default_trigger"]),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    types: Vec<CatalogType>,
}

/// `GET /catalog`.
pub(crate) async fn catalog(Extension(session): Extension<SessionInfo>) -> Response {
    let types = registry()
        .map(|registry| {
            registry
                .iter()
                .map(|definition| catalog_type(&catalog_view(definition)))
                .collect()
        })
        .unwrap_or_default();
    render(&CatalogPage {
        chrome: Chrome::new(&session, "Catalog", "catalog"),
        types,
    })
}

#[derive(Template)]
#[template(path = "catalog_entry.html")]
struct AddPage {
    chrome: Chrome,
    entry: CatalogType,
    name: String,
    name_error: Option<String>,
    sources: Vec<SourceChoice>,
    settings: Vec<SettingField>,
    quick: bool,
    errors: Vec<String>,
}

/// The settings fields of a destination type, filled from `values` (masked when shown from a
/// saved destination).
fn setting_fields(view: &Value, values: &Map<String, Value>) -> Vec<SettingField> {
    view["settings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|field| {
            let key = text(&field["key"]);
            SettingField {
                value: values.get(&key).map(text).unwrap_or_default(),
                label: text(&field["label"]),
                description: text(&field["description"]),
                required: field["required"].as_bool().unwrap_or(false),
                secret: field["secret"].as_bool().unwrap_or(false),
                error: None,
                key,
            }
        })
        .collect()
}

fn source_choices(state: &AdminState, checked: &[String]) -> Vec<SourceChoice> {
    state
        .app
        .snapshot()
        .config()
        .sources
        .iter()
        .map(|source| SourceChoice {
            id: source.id.clone(),
            name: source.name.clone(),
            checked: checked.contains(&source.id),
        })
        .collect()
}

/// Puts each error at its field (`settings.<key>`, `name`), the rest in `rest`.
fn place_errors(
    error: &AdminError,
    settings: &mut [SettingField],
    name_error: &mut Option<String>,
    rest: &mut Vec<String>,
) {
    for (message, field) in error.messages() {
        let field = field.unwrap_or_default();
        if let Some(key) = field.strip_prefix("settings.")
            && let Some(setting) = settings.iter_mut().find(|s| s.key == key)
        {
            setting.error = Some(message);
        } else if field == "name" {
            *name_error = Some(message);
        } else {
            rest.push(message);
        }
    }
}

/// `GET /catalog/{slug}`: a destination type's actions and the form that adds one.
pub(crate) async fn catalog_entry(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(slug): Path<String>,
) -> Response {
    let definition = match definition_of(&slug) {
        Ok(definition) => definition,
        Err(err) => return error_page(&session, &err),
    };
    let view = catalog_view(definition);
    let all_sources: Vec<String> = state
        .app
        .snapshot()
        .config()
        .sources
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let default_sources = if all_sources.len() == 1 {
        all_sources
    } else {
        Vec::new()
    };
    let entry = catalog_type(&view);
    render(&AddPage {
        chrome: Chrome::new(&session, format!("Add {}", entry.name), "catalog"),
        name: entry.name.clone(),
        name_error: None,
        sources: source_choices(&state, &default_sources),
        settings: setting_fields(&view, &Map::new()),
        quick: true,
        errors: Vec::new(),
        entry,
    })
}

/// `POST /destinations`: adds a destination from the catalog form; with quick setup, the type's
/// default mappings too (enabled), as Segment's quick setup does.
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let slug = form.text("type").to_owned();
    let definition = match definition_of(&slug) {
        Ok(definition) => definition,
        Err(err) => return error_page(&session, &err),
    };
    let view = catalog_view(definition);
    let mut settings = Map::new();
    for field in view["settings"].as_array().into_iter().flatten() {
        let key = text(&field["key"]);
        let value = form.text(&format!("settings.{key}")).trim().to_owned();
        if !value.is_empty() {
            settings.insert(key, Value::String(value));
        }
    }
    let sources: Vec<String> = form.all("sources").into_iter().map(str::to_owned).collect();
    let quick = form.text("setup") != "custom";
    let name = form.text("name").trim().to_owned();
    let new = NewDestination {
        id: None,
        name: name.clone(),
        destination_type: slug,
        settings: settings.clone(),
        enabled: true,
        sources: sources.clone(),
        delivery: None,
    };
    let created = match add_destination(&state, new).await {
        Ok(created) => created,
        Err(err) => {
            let mut fields = setting_fields(&view, &settings);
            let mut name_error = None;
            let mut errors = Vec::new();
            place_errors(&err, &mut fields, &mut name_error, &mut errors);
            let entry = catalog_type(&view);
            return render_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &AddPage {
                    chrome: Chrome::new(&session, format!("Add {}", entry.name), "catalog"),
                    name,
                    name_error,
                    sources: source_choices(&state, &sources),
                    settings: fields,
                    quick,
                    errors,
                    entry,
                },
            );
        }
    };
    let id = text(&created["id"]);
    if quick {
        for action in definition.actions.iter() {
            let mapping = NewMapping {
                id: None,
                action: action.slug.to_owned(),
                name: Some(action.title.to_owned()),
                trigger: None,
                mapping: None,
                enabled: true,
            };
            if let Err(err) = add_mapping(&state, &id, mapping).await {
                return error_page(&session, &err);
            }
        }
    }
    Redirect::to(&format!("/destinations/{id}/mappings")).into_response()
}

/// A destination's line in the list.
pub(crate) struct DestinationRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) enabled: bool,
    pub(crate) mappings: usize,
    pub(crate) sources: String,
}

#[derive(Template)]
#[template(path = "destinations.html")]
struct ListPage {
    chrome: Chrome,
    destinations: Vec<DestinationRow>,
}

/// `GET /destinations`.
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
) -> Response {
    let snapshot = state.app.snapshot();
    let destinations = snapshot
        .config()
        .destinations
        .iter()
        .map(|destination| {
            let kind = definition_of(&destination.destination_type).map_or_else(
                |_| destination.destination_type.clone(),
                |d| d.name.to_owned(),
            );
            DestinationRow {
                id: destination.id.clone(),
                name: destination.name.clone(),
                kind,
                enabled: destination.enabled,
                mappings: destination.mappings.len(),
                sources: destination.sources.join(", "),
            }
        })
        .collect();
    render(&ListPage {
        chrome: Chrome::new(&session, "Destinations", "destinations"),
        destinations,
    })
}

/// The head of every destination page: its name and the tabs.
pub(crate) struct DestHead {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) enabled: bool,
    /// `settings`, `mappings`, `tester`, `overview` or `dead-letter`.
    pub(crate) tab: &'static str,
}

/// The head of destination `id`'s pages, or the 404 that says it does not exist.
pub(crate) fn dest_head(
    state: &AdminState,
    id: &str,
    tab: &'static str,
) -> Result<DestHead, AdminError> {
    let snapshot = state.app.snapshot();
    let destination = snapshot
        .config()
        .destinations
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| AdminError::not_found(format!("destination \"{id}\" not found")))?;
    let kind = definition_of(&destination.destination_type).map_or_else(
        |_| destination.destination_type.clone(),
        |d| d.name.to_owned(),
    );
    Ok(DestHead {
        id: destination.id.clone(),
        name: destination.name.clone(),
        kind,
        enabled: destination.enabled,
        tab,
    })
}

#[derive(Template)]
#[template(path = "destination_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    dest: DestHead,
    name: String,
    name_error: Option<String>,
    enabled: bool,
    settings: Vec<SettingField>,
    sources: Vec<SourceChoice>,
    max_concurrency: String,
    rate_limit: String,
    retry_window_secs: String,
    errors: Vec<String>,
    saved: bool,
    test: Option<(String, String)>,
}

fn settings_page(
    state: &AdminState,
    session: &SessionInfo,
    id: &str,
) -> Result<SettingsPage, AdminError> {
    let dest = dest_head(state, id, "settings")?;
    let snapshot = state.app.snapshot();
    let Some(config) = snapshot.config().destinations.iter().find(|d| d.id == id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    // The API's view: secret settings come masked from there.
    let view = destination_view(config);
    let catalog = definition_of(&config.destination_type)
        .map(catalog_view)
        .unwrap_or(Value::Null);
    let values = view["settings"].as_object().cloned().unwrap_or_default();
    let delivery = &view["delivery"];
    Ok(SettingsPage {
        chrome: Chrome::new(session, format!("{} settings", dest.name), "destinations"),
        name: config.name.clone(),
        name_error: None,
        enabled: config.enabled,
        settings: setting_fields(&catalog, &values),
        sources: source_choices(state, &config.sources),
        max_concurrency: text(&delivery["max_concurrency"]),
        rate_limit: text(&delivery["rate_limit"]),
        retry_window_secs: text(&delivery["retry_window_secs"]),
        errors: Vec::new(),
        saved: false,
        test: None,
        dest,
    })
}

/// `GET /destinations/{id}`: the settings tab.
pub(crate) async fn settings(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match settings_page(&state, &session, &id) {
        Ok(mut page) => {
            page.saved = query.is_some_and(|query| query.contains("saved=1"));
            render(&page)
        }
        Err(err) => error_page(&session, &err),
    }
}

/// A number field of the delivery form: a JSON number, `null` when empty (no limit).
fn number(text: &str) -> Value {
    let text = text.trim();
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str::<serde_json::Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// `POST /destinations/{id}`: saves the settings form (a secret left masked keeps its value).
pub(crate) async fn save_settings(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let mut page = match settings_page(&state, &session, &id) {
        Ok(page) => page,
        Err(err) => return error_page(&session, &err),
    };
    let mut settings = Map::new();
    for field in &mut page.settings {
        let value = form
            .text(&format!("settings.{}", field.key))
            .trim()
            .to_owned();
        field.value.clone_from(&value);
        settings.insert(
            field.key.clone(),
            if value.is_empty() {
                Value::Null
            } else {
                Value::String(value)
            },
        );
    }
    let mut delivery = Map::new();
    for key in ["max_concurrency", "rate_limit", "retry_window_secs"] {
        let given = form.text(&format!("delivery.{key}"));
        if key != "rate_limit" && given.trim().is_empty() {
            continue;
        }
        delivery.insert(key.to_owned(), number(given));
    }
    let patch = DestinationPatch {
        name: Some(form.text("name").trim().to_owned()),
        settings: Some(settings),
        enabled: Some(form.checked("enabled")),
        delivery: Some(delivery),
    };
    match change_destination_and_sources(&state, &id, patch, form.all("sources")).await {
        Ok(()) => Redirect::to(&format!("/destinations/{id}?saved=1")).into_response(),
        Err(err) => {
            page.name = form.text("name").to_owned();
            page.enabled = form.checked("enabled");
            page.max_concurrency = form.text("delivery.max_concurrency").to_owned();
            page.rate_limit = form.text("delivery.rate_limit").to_owned();
            page.retry_window_secs = form.text("delivery.retry_window_secs").to_owned();
            let mut errors = Vec::new();
            let mut name_error = None;
            place_errors(&err, &mut page.settings, &mut name_error, &mut errors);
            page.errors = errors;
            page.name_error = name_error;
            render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

/// The settings change, then the sources connected or disconnected to match the form.
async fn change_destination_and_sources(
    state: &AdminState,
    id: &str,
    patch: DestinationPatch,
    wanted: Vec<&str>,
) -> Result<(), AdminError> {
    crate::admin::config::change_destination(state, id, patch).await?;
    let current: Vec<String> = state
        .app
        .snapshot()
        .config()
        .destinations
        .iter()
        .find(|d| d.id == id)
        .map(|d| d.sources.clone())
        .unwrap_or_default();
    for source in &wanted {
        if !current.iter().any(|s| s == source) {
            connect(state, id, source).await?;
        }
    }
    for source in &current {
        if !wanted.contains(&source.as_str()) {
            disconnect(state, id, source).await?;
        }
    }
    Ok(())
}

/// `POST /destinations/{id}/test-connection`: the type's authentication test with the saved
/// settings; the settings page with the outcome (the destination's own message on failure).
pub(crate) async fn test_connection(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
) -> Response {
    let mut page = match settings_page(&state, &session, &id) {
        Ok(page) => page,
        Err(err) => return error_page(&session, &err),
    };
    let outcome = match run_connection_test(&state, &id).await {
        Ok(data) => data,
        Err(err) => return error_page(&session, &err),
    };
    let status = text(&outcome["status"]);
    let message = match status.as_str() {
        "success" => "Connected: the destination accepted the test request.".to_owned(),
        _ => text(&outcome["message"]),
    };
    page.test = Some((status, message));
    render(&page)
}

//! A destination's mappings: the table in delivery order (toggle, duplicate, order, delete with
//! a confirmation, the limit of 50) and the mapping editor — the trigger builder with its FQL
//! view, a test event (recent, saved sample, generated or pasted; one can be saved as a sample), each action field's value (an event path with
//! suggestions from the test event, a static text, or JSON for directives), and the mapping
//! tester's result, live as one edits (htmx posts the form to `preview`).

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use junction_workspace::MAX_MAPPINGS_PER_DESTINATION;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::destinations::{DestHead, dest_head};
use super::form::FormData;
use super::trigger_builder::{Builder, FIELDS, OPERATORS, Row, operators_for};
use super::{Chrome, SessionInfo, error_page, messages, pretty, render, render_with, text};
use crate::admin::config::{
    MappingPatch, NewMapping, add_mapping, catalog_view, change_mapping, definition_of,
    duplicate_mapping, mapping_view, move_mapping, remove_mapping, set_mapping_enabled,
};
use crate::admin::debugger::recent_events;
use crate::admin::samples::{remove_sample, samples_of, save_sample};
use crate::admin::testers::{send_mapping_test, try_mapping};
use crate::admin::{AdminError, AdminState};

/// A mapping's line in the table.
pub(crate) struct MappingRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) action: String,
    pub(crate) trigger: String,
    pub(crate) enabled: bool,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
}

#[derive(Template)]
#[template(path = "mappings.html")]
struct TablePage {
    chrome: Chrome,
    dest: DestHead,
    rows: Vec<MappingRow>,
    actions: Vec<(String, String)>,
    max: usize,
    full: bool,
    notice: Option<String>,
    error: Option<String>,
}

async fn table_page(
    state: &AdminState,
    session: &SessionInfo,
    id: &str,
) -> Result<TablePage, AdminError> {
    let dest = dest_head(state, id, "mappings")?;
    let snapshot = state.app.snapshot();
    let Some(config) = snapshot.config().destinations.iter().find(|d| d.id == id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    let definition = definition_of(&config.destination_type)?;
    let params = crate::admin::overview::OverviewParams {
        window: Some("1h".to_owned()),
        ..Default::default()
    };
    let overview = crate::admin::overview::destination_overview(state, id, params)
        .await
        .unwrap_or(Value::Null);
    let per_mapping = &overview["totals"]["mappings"];
    let rows = config
        .mappings
        .iter()
        .map(|mapping| {
            let view = mapping_view(id, mapping);
            let counts = &per_mapping[&mapping.id];
            let action = definition
                .action(&mapping.action)
                .map_or_else(|| mapping.action.clone(), |a| a.title.to_owned());
            MappingRow {
                id: text(&view["id"]),
                name: text(&view["name"]),
                action,
                trigger: text(&view["trigger"]),
                enabled: view["enabled"].as_bool().unwrap_or(false),
                delivered: counts["delivered"].as_u64().unwrap_or(0),
                failed: counts["failed"]["count"].as_u64().unwrap_or(0),
            }
        })
        .collect::<Vec<_>>();
    let full = rows.len() >= MAX_MAPPINGS_PER_DESTINATION;
    Ok(TablePage {
        chrome: Chrome::new(session, format!("{} mappings", dest.name), "destinations"),
        dest,
        actions: definition
            .actions
            .iter()
            .map(|a| (a.slug.to_owned(), a.title.to_owned()))
            .collect(),
        max: MAX_MAPPINGS_PER_DESTINATION,
        full,
        rows,
        notice: None,
        error: None,
    })
}

/// What the table says after a change (`?done=`).
#[derive(Deserialize)]
pub(crate) struct TableQuery {
    done: Option<String>,
}

/// `GET /destinations/{id}/mappings`.
pub(crate) async fn table(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    Query(query): Query<TableQuery>,
) -> Response {
    match table_page(&state, &session, &id).await {
        Ok(mut page) => {
            page.notice = match query.done.as_deref() {
                Some("duplicated") => {
                    Some("Duplicated: the copy is disabled until you enable it.".to_owned())
                }
                Some("deleted") => Some("Mapping deleted.".to_owned()),
                Some("saved") => Some("Mapping saved.".to_owned()),
                _ => None,
            };
            render(&page)
        }
        Err(err) => error_page(&session, &err),
    }
}

/// `POST /destinations/{id}/mappings/{mapping_id}/action`: one of the row's buttons (`enable`,
/// `disable`, `duplicate`, `up`, `down`, `delete`), then back to the table (or, refused, the
/// table with the reason).
pub(crate) async fn row_action(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path((id, mapping_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let (result, done) = match form.text("do") {
        "enable" => (
            set_mapping_enabled(&state, &id, &mapping_id, true)
                .await
                .map(drop),
            "",
        ),
        "disable" => (
            set_mapping_enabled(&state, &id, &mapping_id, false)
                .await
                .map(drop),
            "",
        ),
        "duplicate" => (
            duplicate_mapping(&state, &id, &mapping_id).await.map(drop),
            "duplicated",
        ),
        "up" => (move_mapping(&state, &id, &mapping_id, true).await, ""),
        "down" => (move_mapping(&state, &id, &mapping_id, false).await, ""),
        "delete" => (remove_mapping(&state, &id, &mapping_id).await, "deleted"),
        other => (
            Err(AdminError::invalid(
                "do",
                format!("unknown action \"{other}\""),
            )),
            "",
        ),
    };
    match result {
        Ok(()) if done.is_empty() => {
            Redirect::to(&format!("/destinations/{id}/mappings")).into_response()
        }
        Ok(()) => Redirect::to(&format!("/destinations/{id}/mappings?done={done}")).into_response(),
        Err(err) => match table_page(&state, &session, &id).await {
            Ok(mut page) => {
                page.error = Some(messages(&err));
                render_with(err.status(), &page)
            }
            Err(_) => error_page(&session, &err),
        },
    }
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmPage {
    chrome: Chrome,
    dest: DestHead,
    mapping_id: String,
    mapping_name: String,
}

/// `GET /destinations/{id}/mappings/{mapping_id}/delete`: are you sure?
pub(crate) async fn confirm_delete(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path((id, mapping_id)): Path<(String, String)>,
) -> Response {
    let dest = match dest_head(&state, &id, "mappings") {
        Ok(dest) => dest,
        Err(err) => return error_page(&session, &err),
    };
    let snapshot = state.app.snapshot();
    let name = snapshot
        .config()
        .destinations
        .iter()
        .find(|d| d.id == id)
        .and_then(|d| d.mappings.iter().find(|m| m.id == mapping_id))
        .map(|m| m.name.clone());
    let Some(mapping_name) = name else {
        return error_page(
            &session,
            &AdminError::not_found(format!("mapping \"{mapping_id}\" not found")),
        );
    };
    render(&ConfirmPage {
        chrome: Chrome::new(&session, format!("Delete {mapping_name}?"), "destinations"),
        dest,
        mapping_id,
        mapping_name,
    })
}

// ---------------------------------------------------------------------------------------------
// The editor

/// One action field in the editor.
pub(crate) struct FieldRow {
    pub(crate) key: String,
    pub(crate) label: String,
    pub(crate) description: String,
    pub(crate) type_name: String,
    pub(crate) required: bool,
    /// Not shown (the action fixes it), but kept.
    pub(crate) hidden: bool,
    /// `path`, `text`, `json` or `none`.
    pub(crate) kind: String,
    pub(crate) value: String,
    pub(crate) error: Option<String>,
}

/// A condition row's operators: those that suit its field's type in the test event, then the
/// others (a plain form cannot update the list when the field changes, so none is hidden).
pub(crate) struct OperatorChoices {
    pub(crate) suited: Vec<(&'static str, &'static str)>,
    pub(crate) others: Vec<(&'static str, &'static str)>,
}

impl EditorPage {
    /// See [`OperatorChoices`].
    fn operator_choices(&self, row: &Row) -> OperatorChoices {
        let event = serde_json::from_str::<Value>(&self.event).ok();
        let suited = operators_for(row, event.as_ref());
        let others = OPERATORS
            .iter()
            .filter(|operator| !suited.contains(operator))
            .copied()
            .collect();
        OperatorChoices { suited, others }
    }
}

/// The mapping tester's answer as the editor shows it.
#[derive(Default)]
pub(crate) struct Preview {
    pub(crate) ran: bool,
    pub(crate) matched: bool,
    pub(crate) outcome: String,
    pub(crate) request_line: String,
    pub(crate) headers: String,
    pub(crate) body: String,
    /// The destination's answer, when the test was sent for real.
    pub(crate) response: String,
    pub(crate) error: Option<String>,
}

/// Everything the editor shows.
#[derive(Template)]
#[template(path = "mapping_editor.html")]
struct EditorPage {
    chrome: Chrome,
    dest: DestHead,
    /// Where the form posts (`/destinations/{id}/mappings/{mapping_id}` or `…/new-mapping`).
    action_url: String,
    mapping_id: String,
    action_slug: String,
    action_title: String,
    name: String,
    enabled: bool,
    /// `builder` or `fql`.
    mode: String,
    builder: Builder,
    fql: String,
    trigger_error: Option<String>,
    event: String,
    event_error: Option<String>,
    recent: Vec<(String, String)>,
    /// The destination's saved samples' names.
    samples: Vec<String>,
    /// The name the test event is saved under (kept after a refused save).
    sample_name: String,
    /// Why saving or deleting a sample was refused.
    sample_error: Option<String>,
    /// What a sample operation did, for the live region.
    sample_notice: Option<String>,
    fields: Vec<FieldRow>,
    paths: Vec<String>,
    preview: Preview,
    errors: Vec<String>,
    saved: bool,
    field_choices: Vec<(&'static str, &'static str)>,
    /// Whether the preview's field errors are out-of-band swaps (never in a whole page).
    oob: bool,
}

/// Only the preview, for htmx.
#[derive(Template)]
#[template(path = "preview.html")]
struct PreviewFragment {
    preview: Preview,
    fields: Vec<FieldRow>,
    trigger_error: Option<String>,
    fql: String,
    oob: bool,
}

/// How a saved mapping value is edited: `(kind, text)`.
fn field_value(value: Option<&Value>) -> (String, String) {
    match value {
        None | Some(Value::Null) => ("none".to_owned(), String::new()),
        Some(Value::String(text)) => ("text".to_owned(), text.clone()),
        Some(Value::Object(object))
            if object.len() == 1 && object.get("@path").is_some_and(Value::is_string) =>
        {
            ("path".to_owned(), text(&object["@path"]))
        }
        Some(other) => ("json".to_owned(), pretty(other)),
    }
}

/// The mapping value a field's `(kind, text)` stands for (`null`: no value), or why not.
fn mapping_value(kind: &str, value: &str) -> Result<Value, String> {
    match kind {
        "none" => Ok(Value::Null),
        "text" => Ok(Value::String(value.to_owned())),
        "path" => {
            let path = value.trim();
            if path.is_empty() {
                Ok(Value::Null)
            } else {
                Ok(json!({"@path": path}))
            }
        }
        _ => {
            if value.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(value).map_err(|err| format!("not JSON: {err}"))
        }
    }
}

/// Every path of an event, `$.a.b`, for the field pickers (at most 300).
fn event_paths(event: &Value) -> Vec<String> {
    fn walk(value: &Value, prefix: &str, out: &mut Vec<String>) {
        if out.len() >= 300 {
            return;
        }
        if let Value::Object(object) = value {
            for (key, child) in object {
                let path = format!("{prefix}.{key}");
                out.push(path.clone());
                walk(child, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(event, "$", &mut out);
    out
}

/// A sample event for an action whose default trigger is `trigger`.
fn sample_event(trigger: &str) -> Value {
    if trigger.contains("group") {
        json!({"type": "group", "userId": "user-1", "groupId": "company-1",
               "traits": {"name": "Acme Inc", "plan": "pro"}})
    } else {
        json!({"type": "identify", "userId": "user-1",
               "traits": {"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro",
                          "title": "Engineer", "job_title": "Head of Engineering"}})
    }
}

/// An event made from the action's fields: every event path the mapping reads gets a value of
/// the field's type, so that the mapping resolves every field it maps (the editor's "Generate
/// from the fields"). `trigger` decides the event's type.
fn generated_event(fields: &[FieldRow], trigger: &str) -> Value {
    let mut event = sample_event(trigger);
    if let Some(object) = event.as_object_mut() {
        object.remove("traits");
    }
    for field in fields {
        let mut paths = Vec::new();
        match field.kind.as_str() {
            "path" => paths.push(field.value.clone()),
            "json" => {
                if let Ok(directive) = serde_json::from_str::<Value>(&field.value) {
                    collect_paths(&directive, &mut paths);
                }
            }
            _ => {}
        }
        for path in paths {
            let Some(rest) = path.strip_prefix("$.") else {
                continue;
            };
            let parts: Vec<&str> = rest.split('.').filter(|p| !p.is_empty()).collect();
            let Some(leaf) = parts.last() else { continue };
            let value = example_value(leaf, &field.type_name, &field.label);
            set_path(&mut event, &parts, value);
        }
    }
    event
}

/// Every `@path` string inside a directive.
fn collect_paths(directive: &Value, out: &mut Vec<String>) {
    match directive {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("@path", Value::String(path)) => out.push(path.clone()),
                    _ => collect_paths(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_paths(item, out)),
        _ => {}
    }
}

/// A plausible value for an event member named `leaf` that feeds a field of `type_name`.
fn example_value(leaf: &str, type_name: &str, label: &str) -> Value {
    let lower = leaf.to_ascii_lowercase();
    match type_name {
        "number" | "integer" => json!(42),
        "boolean" => json!(true),
        "datetime" => json!("2026-03-01T12:00:00.000Z"),
        _ if lower.contains("email") => json!("ada@example.com"),
        _ if lower.contains("linkedin") => json!("https://www.linkedin.com/in/ada"),
        _ if lower.contains("twitter") => json!("@ada"),
        _ if lower.contains("phone") => json!("+1 555 0100"),
        _ if lower == "id" || lower.ends_with("id") => json!(format!("{leaf}-1")),
        _ => json!(format!("Example {label}")),
    }
}

/// Sets `value` at `parts` inside `event`, making objects on the way (an existing value wins).
fn set_path(event: &mut Value, parts: &[&str], value: Value) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let Some(object) = event.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        object.entry((*first).to_owned()).or_insert(value);
        return;
    }
    let child = object
        .entry((*first).to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    set_path(child, rest, value);
}

/// The recent events of the destination's sources, newest first, `(messageId, label)`, and their
/// events by `messageId`.
pub(crate) fn recent_of(state: &AdminState, id: &str) -> Vec<(String, String, Value)> {
    let snapshot = state.app.snapshot();
    let sources = snapshot
        .config()
        .destinations
        .iter()
        .find(|d| d.id == id)
        .map(|d| d.sources.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for source in sources {
        for view in recent_events(state, &source).unwrap_or_default() {
            let event = view["event"].clone();
            let what = match text(&event["type"]).as_str() {
                "track" => format!("track \"{}\"", text(&event["event"])),
                kind => kind.to_owned(),
            };
            let who = text(&event["userId"]);
            let label = format!("{what} · {who} · {}", text(&view["message_id"]));
            out.push((text(&view["message_id"]), label, event));
        }
    }
    out.reverse();
    out.truncate(50);
    out
}

/// The editor as a saved mapping (or a new one of `action`) shows it first.
fn initial(
    state: &AdminState,
    session: &SessionInfo,
    id: &str,
    mapping_id: Option<&str>,
    action: Option<&str>,
) -> Result<EditorPage, AdminError> {
    let dest = dest_head(state, id, "mappings")?;
    let snapshot = state.app.snapshot();
    let Some(config) = snapshot.config().destinations.iter().find(|d| d.id == id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    let definition = definition_of(&config.destination_type)?;
    let (action_slug, name, trigger, mapping, enabled) = match mapping_id {
        Some(mapping_id) => {
            let mapping = config
                .mappings
                .iter()
                .find(|m| m.id == mapping_id)
                .ok_or_else(|| {
                    AdminError::not_found(format!(
                        "mapping \"{mapping_id}\" of destination \"{id}\" not found"
                    ))
                })?;
            let action = definition.action(&mapping.action).ok_or_else(|| {
                AdminError::not_found(format!("action \"{}\" not found", mapping.action))
            })?;
            let current = match &mapping.mapping {
                Some(Value::Object(current)) => current.clone(),
                _ => Map::new(),
            };
            let values = if mapping.use_defaults {
                action.mapping_with_defaults(&current)
            } else {
                current
            };
            (
                mapping.action.clone(),
                mapping.name.clone(),
                mapping
                    .trigger
                    .clone()
                    .unwrap_or_else(|| action.default_trigger.to_owned()),
                values,
                mapping.enabled,
            )
        }
        None => {
            let slug = action.unwrap_or_default();
            let action = definition
                .action(slug)
                .or_else(|| definition.actions.first())
                .ok_or_else(|| AdminError::not_found("this destination type has no action"))?;
            (
                action.slug.to_owned(),
                action.title.to_owned(),
                action.default_trigger.to_owned(),
                action.default_mapping(),
                true,
            )
        }
    };
    let catalog = catalog_view(definition);
    let action_view = catalog["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["slug"] == action_slug.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    let fields = action_view["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|field| {
            let key = text(&field["key"]);
            let (kind, value) = field_value(mapping.get(&key));
            FieldRow {
                label: text(&field["label"]),
                description: text(&field["description"]),
                type_name: text(&field["type"]),
                required: field["required"].as_bool().unwrap_or(false),
                hidden: field["unsafe_hidden"].as_bool().unwrap_or(false),
                kind,
                value,
                error: None,
                key,
            }
        })
        .collect();
    let recent = recent_of(state, id);
    let samples = config.samples.clone();
    // A recent event the trigger matches, else a saved sample it matches: what the user's own
    // data looks like beats the stock example.
    let matching = junction_trigger::parse(&trigger).ok().and_then(|parsed| {
        recent
            .iter()
            .map(|(_, _, event)| event)
            .chain(samples.iter().map(|sample| &sample.event))
            .find(|event| parsed.matches(event))
            .cloned()
    });
    let event = matching.unwrap_or_else(|| sample_event(&text(&action_view["default_trigger"])));
    let (builder, mode, trigger_error) = match Builder::from_text(&trigger) {
        Ok(builder) => (builder, "builder", None),
        Err(reason) => (
            Builder {
                join: "and".to_owned(),
                rows: Vec::new(),
            },
            "fql",
            Some(format!("shown as FQL: {reason}")),
        ),
    };
    let action_url = match mapping_id {
        Some(mapping_id) => format!("/destinations/{id}/mappings/{mapping_id}"),
        None => format!("/destinations/{id}/new-mapping"),
    };
    Ok(EditorPage {
        chrome: Chrome::new(session, format!("{name} · mapping"), "destinations"),
        action_url,
        mapping_id: mapping_id.unwrap_or_default().to_owned(),
        action_title: text(&action_view["title"]),
        action_slug,
        name,
        enabled,
        mode: mode.to_owned(),
        builder,
        fql: trigger,
        trigger_error,
        paths: event_paths(&event),
        event: pretty(&event),
        event_error: None,
        recent: recent
            .into_iter()
            .map(|(id, label, _)| (id, label))
            .collect(),
        samples: samples.into_iter().map(|sample| sample.name).collect(),
        sample_name: String::new(),
        sample_error: None,
        sample_notice: None,
        fields,
        preview: Preview::default(),
        errors: Vec::new(),
        saved: false,
        field_choices: FIELDS.to_vec(),
        oob: false,
        dest,
    })
}

/// The editor updated from a sent form: builder buttons applied, the mode switched, a recent
/// event loaded; the trigger text and mapping it stands for (or the errors at their place).
fn from_form(
    page: &mut EditorPage,
    state: &AdminState,
    form: &FormData,
) -> Option<(String, Map<String, Value>)> {
    let op = form.text("op");
    page.name = form.text("name").to_owned();
    page.enabled = form.checked("enabled");
    page.mode = if form.text("mode") == "fql" {
        "fql"
    } else {
        "builder"
    }
    .to_owned();
    page.builder = Builder::from_form(form);
    page.fql = form.text("fql").to_owned();
    page.event = form.text("event").to_owned();
    page.trigger_error = None;
    if let Some(button) = op.strip_prefix("b:") {
        page.builder.apply(button);
    }
    page.sample_name = form.text("sample_name").to_owned();
    if op == "load-sample" {
        let wanted = form.text("sample");
        if let Some(sample) = samples_of(state, &page.dest.id)
            .unwrap_or_default()
            .into_iter()
            .find(|sample| sample.name == wanted)
        {
            page.event = pretty(&sample.event);
            page.sample_name = sample.name;
        }
    }
    if op == "load-event" {
        let wanted = form.text("recent");
        if let Some((_, _, event)) = recent_of(state, &page.dest.id)
            .into_iter()
            .find(|(id, _, _)| id == wanted)
        {
            page.event = pretty(&event);
        }
    }
    if op == "to-fql" {
        match page.builder.to_text() {
            Ok(text) => page.fql = text,
            Err(reason) => page.trigger_error = Some(reason),
        }
        page.mode = "fql".to_owned();
    } else if op == "to-builder" {
        match Builder::from_text(&page.fql) {
            Ok(builder) => {
                page.builder = builder;
                page.mode = "builder".to_owned();
            }
            Err(reason) => page.trigger_error = Some(reason),
        }
    }
    let trigger = if page.mode == "fql" {
        match junction_trigger::parse(&page.fql) {
            Ok(_) => Some(page.fql.clone()),
            Err(err) => {
                page.trigger_error.get_or_insert(err.to_string());
                None
            }
        }
    } else {
        match page.builder.to_text() {
            Ok(text) => {
                page.fql.clone_from(&text);
                Some(text)
            }
            Err(reason) => {
                page.trigger_error.get_or_insert(reason);
                None
            }
        }
    };
    let mut mapping = Map::new();
    let mut valid = true;
    for field in &mut page.fields {
        if let Some(kind) = form.get(&format!("f.{}.kind", field.key)) {
            field.kind = kind.to_owned();
            field.value = form.text(&format!("f.{}.value", field.key)).to_owned();
        }
        field.error = None;
        match mapping_value(&field.kind, &field.value) {
            Ok(value) => {
                mapping.insert(field.key.clone(), value);
            }
            Err(reason) => {
                field.error = Some(reason);
                valid = false;
            }
        }
    }
    if op == "generate-event" {
        // After the fields: the event follows the mapping as edited, not as saved.
        let trigger = trigger.clone().unwrap_or_default();
        page.event = pretty(&generated_event(&page.fields, &trigger));
    }
    match serde_json::from_str::<Value>(&page.event) {
        Ok(event) => page.paths = event_paths(&event),
        Err(err) => page.event_error = Some(format!("the test event is not JSON: {err}")),
    }
    match trigger {
        Some(trigger) if valid => Some((trigger, mapping)),
        _ => None,
    }
}

/// The editor's mapping as the testers take it, and its test event (`None` when the event is
/// not JSON: the editor says so at the event).
fn unsaved(
    page: &EditorPage,
    trigger: &str,
    mapping: &Map<String, Value>,
) -> Option<(NewMapping, Value)> {
    let event = serde_json::from_str::<Value>(&page.event).ok()?;
    let unsaved = NewMapping {
        id: None,
        action: page.action_slug.clone(),
        name: Some(page.name.clone()),
        trigger: Some(trigger.to_owned()),
        mapping: Some(mapping.clone()),
        enabled: true,
    };
    Some((unsaved, event))
}

/// Runs the mapping tester over the editor's state.
fn run_preview(
    page: &mut EditorPage,
    state: &AdminState,
    trigger: &str,
    mapping: &Map<String, Value>,
) {
    if let Some((unsaved, event)) = unsaved(page, trigger, mapping) {
        let data = try_mapping(state, &page.dest.id, unsaved, event);
        show_result(page, data);
    }
}

/// Puts a tester's answer in the editor: the result beside the form, messages at their fields.
fn show_result(page: &mut EditorPage, data: Result<Value, AdminError>) {
    let data = match data {
        Ok(data) => data,
        Err(err) => {
            page.preview = Preview {
                ran: true,
                error: Some(messages(&err)),
                ..Preview::default()
            };
            return;
        }
    };
    let result = &data["result"];
    let request = &result["request"];
    let error = result["error"]["message"].as_str().map(str::to_owned);
    if let Some(message) = &error {
        for field in &mut page.fields {
            if message.contains(&format!("'{}'", field.key))
                || message.contains(&format!(".{} ", field.key))
                || message.contains(&format!("\"{}\"", field.key))
            {
                field.error = Some(message.clone());
            }
        }
    }
    page.preview = Preview {
        ran: true,
        matched: result["matched"].as_bool().unwrap_or(false),
        outcome: text(&result["outcome"]),
        request_line: if request.is_null() {
            String::new()
        } else {
            format!("{} {}", text(&request["method"]), text(&request["url"]))
        },
        headers: request["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", text(v)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        body: if request.is_null() {
            String::new()
        } else {
            pretty(&request["body"])
        },
        response: if result["response"].is_null() {
            String::new()
        } else {
            format!(
                "HTTP {}\n\n{}",
                text(&result["response"]["status"]),
                pretty(&result["response"]["body"])
            )
        },
        error,
    };
}

/// `GET /destinations/{id}/mappings/{mapping_id}`: the editor of a saved mapping.
pub(crate) async fn editor(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path((id, mapping_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    match initial(&state, &session, &id, Some(&mapping_id), None) {
        Ok(mut page) => {
            page.saved = query.is_some_and(|q| q.contains("saved=1"));
            let trigger = page.fql.clone();
            let mapping = mapping_of(&page.fields);
            run_preview(&mut page, &state, &trigger, &mapping);
            render(&page)
        }
        Err(err) => error_page(&session, &err),
    }
}

fn mapping_of(fields: &[FieldRow]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| {
            mapping_value(&f.kind, &f.value)
                .ok()
                .map(|value| (f.key.clone(), value))
        })
        .collect()
}

/// Which action a new mapping starts from.
#[derive(Deserialize)]
pub(crate) struct NewQuery {
    action: Option<String>,
}

/// `GET /destinations/{id}/new-mapping?action=…`: the editor of a new mapping.
pub(crate) async fn new_editor(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    Query(query): Query<NewQuery>,
) -> Response {
    match initial(&state, &session, &id, None, query.action.as_deref()) {
        Ok(mut page) => {
            let trigger = page.fql.clone();
            let mapping = mapping_of(&page.fields);
            run_preview(&mut page, &state, &trigger, &mapping);
            render(&page)
        }
        Err(err) => error_page(&session, &err),
    }
}

/// `POST /destinations/{id}/new-mapping`.
pub(crate) async fn submit_new(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    submit_form(&state, &session, &id, None, &form).await
}

/// `POST /destinations/{id}/mappings/{mapping_id}`.
pub(crate) async fn submit(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path((id, mapping_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    submit_form(&state, &session, &id, Some(&mapping_id), &form).await
}

/// The editor's form: a builder button, a mode switch, loading an event, a preview, or saving.
async fn submit_form(
    state: &AdminState,
    session: &SessionInfo,
    id: &str,
    mapping_id: Option<&str>,
    form: &FormData,
) -> Response {
    let action = form.get("action");
    let mut page = match initial(state, session, id, mapping_id, action) {
        Ok(page) => page,
        Err(err) => return error_page(session, &err),
    };
    let parsed = from_form(&mut page, state, form);
    match form.text("op") {
        "save-sample" => save_page_sample(&mut page, state).await,
        "delete-sample" => delete_page_sample(&mut page, state, form.text("sample")).await,
        _ => {}
    }
    let Some((trigger, mapping)) = parsed else {
        let status = if form.text("op") == "save" {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        return render_with(status, &page);
    };
    if form.text("op") == "send-test" {
        if !form.checked("send_confirm") {
            page.errors.push(
                "Tick “Send a real request” to send the test: it reaches the destination like \
                 any delivery."
                    .to_owned(),
            );
            run_preview(&mut page, state, &trigger, &mapping);
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        if let Some((unsaved, event)) = unsaved(&page, &trigger, &mapping) {
            let data = send_mapping_test(state, &page.dest.id, unsaved, event).await;
            show_result(&mut page, data);
        }
        return render(&page);
    }
    run_preview(&mut page, state, &trigger, &mapping);
    if form.text("op") != "save" {
        return render(&page);
    }
    let saved = match mapping_id {
        Some(mapping_id) => {
            let patch = MappingPatch {
                name: Some(page.name.clone()),
                action: None,
                trigger: Some(trigger),
                mapping: Some(mapping),
                enabled: Some(page.enabled),
            };
            change_mapping(state, id, mapping_id, patch).await
        }
        None => {
            let new = NewMapping {
                id: None,
                action: page.action_slug.clone(),
                name: Some(page.name.clone()),
                trigger: Some(trigger),
                mapping: Some(mapping),
                enabled: page.enabled,
            };
            add_mapping(state, id, new).await
        }
    };
    match saved {
        Ok(view) => Redirect::to(&format!(
            "/destinations/{id}/mappings/{}?saved=1",
            text(&view["id"])
        ))
        .into_response(),
        Err(err) => {
            for (message, field) in err.messages() {
                let field = field.unwrap_or_default();
                if field.starts_with("trigger") {
                    page.trigger_error = Some(message);
                } else if let Some(row) = field
                    .strip_prefix("mapping.")
                    .and_then(|key| page.fields.iter_mut().find(|f| f.key == key))
                {
                    row.error = Some(message);
                } else {
                    page.errors.push(message);
                }
            }
            render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

/// Saves the editor's test event as a sample under the name given, and says so (or why not, at
/// the name).
async fn save_page_sample(page: &mut EditorPage, state: &AdminState) {
    let event = match serde_json::from_str::<Value>(&page.event) {
        Ok(event @ Value::Object(_)) => event,
        Ok(_) => {
            page.sample_error = Some("the test event must be a JSON object to be saved".into());
            return;
        }
        // The event's own error is already shown at the event.
        Err(_) => {
            page.sample_error = Some("the test event is not JSON: fix it to save it".into());
            return;
        }
    };
    let name = page.sample_name.clone();
    match save_sample(state, &page.dest.id, &name, event).await {
        Ok(view) => {
            let name = text(&view["name"]);
            page.sample_notice = Some(format!("Saved the test event as sample “{name}”."));
            page.sample_name = name;
            page.samples = sample_names(state, &page.dest.id);
        }
        Err(err) => page.sample_error = Some(messages(&err)),
    }
}

/// Deletes the sample chosen in the editor's list.
async fn delete_page_sample(page: &mut EditorPage, state: &AdminState, name: &str) {
    match remove_sample(state, &page.dest.id, name).await {
        Ok(()) => {
            page.sample_notice = Some(format!("Deleted sample “{name}”."));
            page.samples = sample_names(state, &page.dest.id);
        }
        Err(err) => page.sample_error = Some(messages(&err)),
    }
}

/// The names of destination `id`'s saved samples.
fn sample_names(state: &AdminState, id: &str) -> Vec<String> {
    samples_of(state, id)
        .unwrap_or_default()
        .into_iter()
        .map(|sample| sample.name)
        .collect()
}

/// `POST /destinations/{id}/preview`: the mapping tester's result for the editor's form as it
/// is now (htmx swaps it in as one types).
pub(crate) async fn preview(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let mapping_id = form.get("mapping_id").filter(|m| !m.is_empty());
    let mut page = match initial(&state, &session, &id, mapping_id, form.get("action")) {
        Ok(page) => page,
        Err(err) => return error_page(&session, &err),
    };
    if let Some((trigger, mapping)) = from_form(&mut page, &state, &form) {
        run_preview(&mut page, &state, &trigger, &mapping);
    }
    render(&PreviewFragment {
        preview: page.preview,
        fields: page.fields,
        trigger_error: page.trigger_error,
        fql: page.fql,
        oob: true,
    })
}

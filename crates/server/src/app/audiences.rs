//! Audiences and computed traits, and profiles: the list with sizes; a new definition previewed
//! (its size and some members, nothing saved) and created; one definition with its size over
//! time, its connections (connect with a schedule, disconnect, sync now) and deletion; a
//! profile looked up by any identifier. Every change goes through the admin API's services
//! (`crate::admin::audiences`).

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use junction_workspace::AudienceKind;
use serde::Deserialize;
use serde_json::Value;

use super::form::FormData;
use super::{
    Chrome, SessionInfo, error_page, iso_time, messages, pretty, render, render_with, text,
};
use crate::admin::audiences::{
    AudiencePatch, NewAudience, add_audience, audience_detail, audience_views, change_audience,
    connect, disconnect, preview_definition, profile_view, remove_audience, request_sync,
};
use crate::admin::{AdminError, AdminState};

/// An audience's line in the list.
pub(crate) struct AudienceRow {
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) size: String,
    pub(crate) query: String,
    pub(crate) connections: Vec<(String, String)>,
}

fn row(view: &Value) -> AudienceRow {
    AudienceRow {
        key: text(&view["key"]),
        name: text(&view["name"]),
        kind: text(&view["kind"]),
        size: if view["computing"] == Value::Bool(true) {
            "computing…".to_owned()
        } else {
            text(&view["size"])
        },
        query: text(&view["query"]),
        connections: view["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| (text(&c["destination"]), text(&c["schedule"])))
            .collect(),
    }
}

/// A preview shown under the form.
pub(crate) struct PreviewView {
    pub(crate) size: String,
    pub(crate) profiles: String,
    pub(crate) events: String,
    pub(crate) sample: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "audiences.html")]
struct ListPage {
    chrome: Chrome,
    audiences: Vec<AudienceRow>,
    error: Option<String>,
    name: String,
    kind: String,
    query: String,
    preview: Option<PreviewView>,
}

async fn list_page(state: &AdminState, session: &SessionInfo) -> Result<ListPage, AdminError> {
    let views = audience_views(state).await?;
    Ok(ListPage {
        chrome: Chrome::new(session, "Audiences", "audiences"),
        audiences: views.iter().map(row).collect(),
        error: None,
        name: String::new(),
        kind: "audience".to_owned(),
        query: String::new(),
        preview: None,
    })
}

/// `GET /audiences`.
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
) -> Response {
    match list_page(&state, &session).await {
        Ok(page) => render(&page),
        Err(err) => error_page(&session, &err),
    }
}

fn definition(form: &FormData) -> NewAudience {
    NewAudience {
        key: None,
        name: form.text("name").trim().to_owned(),
        kind: if form.text("kind") == "trait" {
            AudienceKind::Trait
        } else {
            AudienceKind::Audience
        },
        query: form.text("query").trim().to_owned(),
        connections: Vec::new(),
    }
}

/// `POST /audiences`: previews (the `preview` button) or creates the definition.
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let previewing = form.get("preview").is_some();
    let outcome = if previewing {
        preview_definition(&state, definition(&form))
            .await
            .map(Some)
    } else {
        add_audience(&state, definition(&form)).await.map(|_| None)
    };
    let (status, preview, error) = match outcome {
        Ok(None) => return Redirect::to("/audiences").into_response(),
        Ok(Some(preview)) => (StatusCode::OK, Some(preview), None),
        Err(err) => (err.status(), None, Some(messages(&err))),
    };
    let mut page = match list_page(&state, &session).await {
        Ok(page) => page,
        Err(err) => return error_page(&session, &err),
    };
    page.name = form.text("name").to_owned();
    page.kind = form.text("kind").to_owned();
    page.query = form.text("query").to_owned();
    page.error = error;
    page.preview = preview.map(|p| PreviewView {
        size: text(&p["size"]),
        profiles: text(&p["profiles"]),
        events: text(&p["events"]),
        sample: p["sample"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| (identity(&m["identifiers"]), text(&m["value"])))
            .collect(),
    });
    render_with(status, &page)
}

/// A profile's identifiers in one line, user id first.
fn identity(identifiers: &Value) -> String {
    ["user_id", "email", "anonymous_id"]
        .iter()
        .flat_map(|kind| {
            identifiers[*kind]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |v| format!("{kind} {}", text(v)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Template)]
#[template(path = "audience.html")]
struct AudiencePage {
    chrome: Chrome,
    audience: AudienceRow,
    history: Vec<(String, String)>,
    destinations: Vec<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

async fn audience_page(
    state: &AdminState,
    session: &SessionInfo,
    key: &str,
) -> Result<AudiencePage, AdminError> {
    let view = audience_detail(state, key).await?;
    let audience = row(&view);
    let destinations = state
        .app
        .snapshot()
        .config()
        .destinations
        .iter()
        .filter(|d| !audience.connections.iter().any(|(id, _)| *id == d.id))
        .map(|d| (d.id.clone(), d.name.clone()))
        .collect();
    Ok(AudiencePage {
        chrome: Chrome::new(session, audience.name.clone(), "audiences"),
        history: view["history"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .take(48)
            .map(|s| (iso_time(s["at"].as_i64().unwrap_or(0)), text(&s["size"])))
            .collect(),
        audience,
        destinations,
        error: None,
        notice: None,
    })
}

/// `GET /audiences/{key}`.
pub(crate) async fn audience(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(key): Path<String>,
) -> Response {
    match audience_page(&state, &session, &key).await {
        Ok(page) => render(&page),
        Err(err) => error_page(&session, &err),
    }
}

/// `POST /audiences/{key}/action`: connect, disconnect, sync now or delete, by the `do` field.
pub(crate) async fn action(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let destination = form.text("destination").to_owned();
    let outcome: Result<Option<String>, AdminError> = match form.text("do") {
        "connect" => {
            let every_hours = match form.text("schedule") {
                "realtime" | "" => Ok(None),
                hours => hours.parse::<u32>().map(Some).map_err(|_| {
                    AdminError::invalid("every_hours", "the schedule is a number of hours")
                }),
            };
            match every_hours {
                Ok(hours) => connect(&state, &key, &destination, hours)
                    .await
                    .map(|_| None),
                Err(err) => Err(err),
            }
        }
        "disconnect" => disconnect(&state, &key, &destination).await.map(|_| None),
        "sync" => request_sync(&state, &key, &destination)
            .map(|()| Some(format!("A sync to {destination} was asked for."))),
        "edit" => {
            let patch = AudiencePatch {
                name: Some(form.text("name").trim().to_owned()),
                query: Some(form.text("query").trim().to_owned()),
                connections: None,
            };
            change_audience(&state, &key, patch).await.map(|_| {
                Some("Saved: its profiles are being recomputed from the stored events.".to_owned())
            })
        }
        "delete" => {
            return match remove_audience(&state, &key).await {
                Ok(()) => Redirect::to("/audiences").into_response(),
                Err(err) => error_page(&session, &err),
            };
        }
        other => Err(AdminError::invalid(
            "do",
            format!("unknown action \"{other}\""),
        )),
    };
    match (outcome, audience_page(&state, &session, &key).await) {
        (Ok(None), _) => Redirect::to(&format!("/audiences/{key}")).into_response(),
        (Ok(Some(notice)), Ok(mut page)) => {
            page.notice = Some(notice);
            render(&page)
        }
        (Err(err), Ok(mut page)) => {
            page.error = Some(messages(&err));
            render_with(err.status(), &page)
        }
        (_, Err(err)) => error_page(&session, &err),
    }
}

/// The lookup form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ProfileQuery {
    #[serde(default)]
    id_type: String,
    #[serde(default)]
    value: String,
}

/// A profile as shown.
pub(crate) struct ProfileShown {
    pub(crate) id: String,
    pub(crate) identifiers: Vec<(String, String)>,
    pub(crate) traits: String,
    pub(crate) values: Vec<(String, String)>,
    pub(crate) events: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    chrome: Chrome,
    id_type: String,
    value: String,
    profile: Option<ProfileShown>,
    error: Option<String>,
}

/// `GET /profiles?id_type=…&value=…`: the lookup form, and the profile when one is asked for.
pub(crate) async fn profile(
    State(state): State<AdminState>,
    Extension(session): Extension<SessionInfo>,
    Query(query): Query<ProfileQuery>,
) -> Response {
    let mut page = ProfilePage {
        chrome: Chrome::new(&session, "Profiles", "audiences"),
        id_type: if query.id_type.is_empty() {
            "user_id".to_owned()
        } else {
            query.id_type.clone()
        },
        value: query.value.clone(),
        profile: None,
        error: None,
    };
    if query.value.is_empty() {
        return render(&page);
    }
    match profile_view(&state, &page.id_type, &query.value).await {
        Ok(view) => {
            page.profile = Some(ProfileShown {
                id: text(&view["id"]),
                identifiers: ["user_id", "email", "anonymous_id"]
                    .iter()
                    .flat_map(|kind| {
                        view["identifiers"][*kind]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(move |v| ((*kind).to_owned(), text(v)))
                    })
                    .collect(),
                traits: pretty(&view["traits"]),
                values: view["values"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect(),
                events: view["recent_events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        (
                            text(&e["messageId"]),
                            text(&e["timestamp"]),
                            text(&e["type"]),
                            text(&e["event"]),
                        )
                    })
                    .collect(),
            });
            render(&page)
        }
        Err(err) => {
            page.error = Some(messages(&err));
            render_with(err.status(), &page)
        }
    }
}

//! The Junction app: pages and forms for a browser, on the admin listener under `/` (the JSON
//! API stays under `/api/v1`). Server-rendered HTML (askama templates in `templates/`, compiled
//! into the binary), htmx for the parts that update in place, our own small CSS and JavaScript.
//! Every form works as a plain POST followed by a redirect with JavaScript off.
//!
//! Handlers call the admin API's own services (`crate::admin::*`): validation, masking and the
//! rules of every change are decided there, once. One module per area: `session` (sign-in,
//! CSRF, security headers), `assets` (static files), `form` (reading form bodies), `home`,
//! `destinations` (catalog, add, settings, test connection), `mappings` (table and editor),
//! `trigger_builder` (the builder's rows ⇄ the trigger AST), `observe` (event tester, delivery
//! overview, event story, dead letter) and `sources` (write keys, debugger) and `audiences` (audiences, computed traits and
//! profiles).

mod assets;
mod audiences;
mod destinations;
mod form;
mod home;
mod mappings;
mod observe;
mod session;
mod sources;
mod trigger_builder;

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};

use crate::admin::AdminState;
use crate::routes::{Route, router as table_router};

pub(crate) use session::{SessionInfo, Sessions};

/// The app's router (its routes need the session guard, which it carries).
pub(crate) fn router(state: AdminState) -> Router<AdminState> {
    table_router(routes()).layer(middleware::from_fn_with_state(state, session::guard))
}

fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/", home::home),
        Route::get("/sign-in", home::sign_in_page),
        Route::post("/sign-in", home::sign_in),
        Route::post("/sign-out", home::sign_out),
        Route::get("/assets/{version}/{name}", assets::serve),
        Route::get("/catalog", destinations::catalog),
        Route::get("/catalog/{slug}", destinations::catalog_entry),
        Route::get("/destinations", destinations::list),
        Route::post("/destinations", destinations::create),
        Route::get("/destinations/{id}", destinations::settings),
        Route::post("/destinations/{id}", destinations::save_settings),
        Route::post(
            "/destinations/{id}/test-connection",
            destinations::test_connection,
        ),
        Route::get("/destinations/{id}/mappings", mappings::table),
        Route::post(
            "/destinations/{id}/mappings/{mapping_id}/action",
            mappings::row_action,
        ),
        Route::get(
            "/destinations/{id}/mappings/{mapping_id}/delete",
            mappings::confirm_delete,
        ),
        Route::get("/destinations/{id}/new-mapping", mappings::new_editor),
        Route::post("/destinations/{id}/new-mapping", mappings::submit_new),
        Route::get("/destinations/{id}/mappings/{mapping_id}", mappings::editor),
        Route::post("/destinations/{id}/mappings/{mapping_id}", mappings::submit),
        Route::post("/destinations/{id}/preview", mappings::preview),
        Route::get("/destinations/{id}/tester", observe::tester),
        Route::post("/destinations/{id}/tester", observe::run_tester),
        Route::get("/destinations/{id}/overview", observe::overview),
        Route::get("/destinations/{id}/dead-letter", observe::dead_letter),
        Route::post("/destinations/{id}/dead-letter/replay", observe::replay),
        Route::post(
            "/destinations/{id}/dead-letter/progress",
            observe::replay_progress_view,
        ),
        Route::get("/events/{message_id}", observe::event),
        Route::get("/audiences", audiences::list),
        Route::post("/audiences", audiences::create),
        Route::get("/audiences/{key}", audiences::audience),
        Route::post("/audiences/{key}/action", audiences::action),
        Route::get("/profiles", audiences::profile),
        Route::get("/sources", sources::list),
        Route::post("/sources", sources::create),
        Route::get("/sources/{id}", sources::source),
        Route::post("/sources/{id}/write-keys", sources::add_key),
        Route::post("/sources/{id}/write-keys/revoke", sources::revoke_key),
        Route::get("/sources/{id}/debugger", sources::debugger),
        Route::get("/sources/{id}/debugger/live", sources::live),
    ]
}

/// What every page's frame shows: title, navigation, the CSRF token for its forms, whether
/// signing out applies, and the static files' URLs.
pub(crate) struct Chrome {
    /// The page's title.
    pub(crate) title: String,
    /// The navigation entry to highlight: `home`, `catalog`, `destinations`, `sources` or
    /// `audiences`.
    pub(crate) section: &'static str,
    /// The session's CSRF token, sent back by every form.
    pub(crate) csrf: String,
    /// An admin token is configured (so there is a sign-out button).
    pub(crate) signed_in: bool,
    /// Our stylesheet's URL.
    pub(crate) css: String,
    /// Our script's URL.
    pub(crate) js: String,
    /// htmx's URL.
    pub(crate) htmx: String,
}

impl Chrome {
    /// The frame of a page titled `title` in `section`.
    pub(crate) fn new(
        session: &SessionInfo,
        title: impl Into<String>,
        section: &'static str,
    ) -> Self {
        Self {
            title: title.into(),
            section,
            csrf: session.csrf.clone(),
            signed_in: session.signed_in,
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            htmx: assets::url("htmx.min.js"),
        }
    }
}

/// A rendered template as an HTML answer (a template that fails to render is a 500 that says
/// so, never a half page).
pub(crate) fn render(template: &impl Template) -> Response {
    render_with(StatusCode::OK, template)
}

/// Like [`render`] with another status (422 for a form sent back with its errors).
pub(crate) fn render_with(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "an app page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                html_message("This page failed to render; the server log says why."),
            )
                .into_response()
        }
    }
}

/// A bare page with one message, for answers outside any page (a refused form, a missing file).
pub(crate) fn html_message(message: &str) -> Html<String> {
    let css = assets::url("app.css");
    let mut escaped = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            _ => escaped.push(c),
        }
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Junction</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"{css}\"></head><body><main class=\"narrow\">\
         <h1>Junction</h1><p class=\"notice error\" role=\"alert\">{escaped}</p>\
         <p><a href=\"/\">Back to the app</a></p></main></body></html>"
    ))
}

/// The page shown for an error of the admin services outside a form (not found, unavailable).
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    messages: Vec<String>,
}

/// An admin service's error as a page, with its status.
pub(crate) fn error_page(session: &SessionInfo, error: &crate::admin::AdminError) -> Response {
    let status = error.status();
    let page = ErrorPage {
        chrome: Chrome::new(session, "Something went wrong", "home"),
        status: status.as_u16(),
        messages: error.messages().into_iter().map(|(m, _)| m).collect(),
    };
    render_with(status, &page)
}

/// `ms` since the epoch as an ISO 8601 UTC text (the browser shows it in its own zone, see
/// `app.js`), e.g. `2026-12-07T15:04:05Z`; empty for an instant outside the calendar's range.
pub(crate) fn iso_time(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A JSON value of a service's view as page text: strings as they are, `null` as nothing.
pub(crate) fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A count of a service's view: a number, or an object's `count`; 0 when absent.
pub(crate) fn count(value: &serde_json::Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.get("count").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

/// An admin service's error messages as one sentence for a notice.
pub(crate) fn messages(err: &crate::admin::AdminError) -> String {
    err.messages()
        .into_iter()
        .map(|(message, _)| message)
        .collect::<Vec<_>>()
        .join(" ")
}

/// JSON pretty-printed for a `<pre>` (escaped by the template).
pub(crate) fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_796_655_845_000), "2026-12-07T15:04:05Z");
        assert_eq!(iso_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            iso_time(i64::MAX),
            "",
            "outside the calendar: nothing, not a panic"
        );
    }

    #[test]
    fn messages_are_escaped() {
        let Html(page) = html_message("<script>");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }
}

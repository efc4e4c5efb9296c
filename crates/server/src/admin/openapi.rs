//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the admin and Tracking APIs, kept in
//! `openapi.json` next to this file and checked against the route tables and a running server
//! by the `openapi` integration test. Served without a token: it describes routes, not data.

use axum::http::header;
use axum::response::IntoResponse;

use super::AdminState;
use crate::routes::Route;

/// The document, as served.
const DOCUMENT: &str = include_str!("openapi.json");

pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![Route::get("/api/v1/openapi.json", document)]
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

//! Testers: a destination's authentication test, sent through the delivery client.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use junction_delivery::test_authentication;
use serde_json::{Value, json};

use super::{AdminError, AdminState};

/// The routes of this module.
pub(super) fn routes() -> Router<AdminState> {
    Router::new().route(
        "/api/v1/destinations/{id}/test-authentication",
        post(test_destination_authentication),
    )
}

/// Sends the destination type's authentication test with the destination's settings.
async fn test_destination_authentication(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let snapshot = state.app.snapshot();
    let Some(config) = snapshot.config().destinations.iter().find(|d| d.id == id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    let Some(destination) = snapshot.destination(&id) else {
        return Err(AdminError::not_found(format!(
            "destination \"{id}\" not found"
        )));
    };
    let outcome =
        test_authentication(&state.sender, destination.definition(), &config.settings).await;
    let data = match outcome {
        Ok(true) => json!({"status": "success"}),
        Ok(false) => json!({"status": "not_supported",
                            "message": "this destination type has no authentication test"}),
        Err(err) => json!({"status": "failure", "message": err.to_string()}),
    };
    Ok(Json(json!({"data": data})))
}

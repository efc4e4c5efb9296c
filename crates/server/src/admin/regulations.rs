//! Regulations (`privacy.md`): deleting and suppressing a person, as Segment's API shapes them.
//! A regulation is created here and carried out by the profile worker; the list is the audit
//! log, with identifiers only as keyed hashes.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use junction_audience::IdType;
use junction_profiles::{
    MAX_IDENTIFIERS, RegulationRecord, RegulationType, RequestedIdentifier, new_regulation,
};
use junction_store::StoredRegulation;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{Body, listed};
use super::{AdminError, AdminState};
use crate::routes::Route;

/// Regulations a list shows, newest first.
const LISTED: usize = 1_000;

/// The longest identifier value taken (a longer one is no identifier Junction stores).
const MAX_VALUE_CHARS: usize = 1_000;

pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![
        Route::get("/api/v1/regulations", list_regulations),
        Route::post("/api/v1/regulations", create_regulation),
        Route::get("/api/v1/regulations/{id}", get_regulation),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRegulationBody {
    #[serde(rename = "type")]
    kind: String,
    identifiers: Vec<IdentifierBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifierBody {
    #[serde(rename = "type")]
    id_type: String,
    value: String,
}

/// A regulation as the API shows it: the record's hashes and counts, never a value in clear.
fn view(regulation: &StoredRegulation) -> Value {
    let record: RegulationRecord =
        serde_json::from_value(regulation.record.clone()).unwrap_or_default();
    json!({
        "id": regulation.id.to_string(),
        "type": regulation.kind,
        "status": regulation.status.as_str(),
        "created_at": regulation.created_at,
        "finished_at": regulation.finished_at,
        "identifiers": record.identifiers,
        "covered_identifiers": record.covered_identifiers,
        "counts": {
            "profiles_deleted": record.profiles_deleted,
            "events_deleted": record.events_deleted,
            "jobs_deleted": record.jobs_deleted,
            "jobs_cancelled": record.jobs_cancelled,
            "suppressed": record.suppressed,
            "unsuppressed": record.unsuppressed,
        },
        "forwarded": record.forwarded,
        "note": record.note,
        "reason": record.reason,
    })
}

fn parse(body: Value) -> Result<(RegulationType, Vec<RequestedIdentifier>), AdminError> {
    let body: NewRegulationBody = serde_json::from_value(body).map_err(|err| {
        AdminError::invalid(
            "body",
            format!("Failed to deserialize the JSON body into the target type: {err}"),
        )
    })?;
    let kind = RegulationType::parse(&body.kind).ok_or_else(|| {
        let names: Vec<&str> = RegulationType::ALL.iter().map(|t| t.as_str()).collect();
        AdminError::invalid(
            "type",
            format!(
                "unknown regulation type \"{}\"; expected one of: {}",
                body.kind,
                names.join(", ")
            ),
        )
    })?;
    if body.identifiers.is_empty() {
        return Err(AdminError::invalid(
            "identifiers",
            "at least one identifier is needed",
        ));
    }
    if body.identifiers.len() > MAX_IDENTIFIERS {
        return Err(AdminError::invalid(
            "identifiers",
            format!(
                "{} identifiers; at most {MAX_IDENTIFIERS} are taken per regulation",
                body.identifiers.len()
            ),
        ));
    }
    let mut identifiers = Vec::with_capacity(body.identifiers.len());
    for identifier in body.identifiers {
        let id_type = IdType::parse(&identifier.id_type).ok_or_else(|| {
            AdminError::invalid(
                "identifiers",
                format!(
                    "unknown identifier type \"{}\"; expected one of: user_id, email, \
                     anonymous_id",
                    identifier.id_type
                ),
            )
        })?;
        if identifier.value.is_empty() || identifier.value.chars().count() > MAX_VALUE_CHARS {
            return Err(AdminError::invalid(
                "identifiers",
                format!(
                    "an identifier's value must have between 1 and {MAX_VALUE_CHARS} characters"
                ),
            ));
        }
        identifiers.push(RequestedIdentifier {
            id_type,
            value: identifier.value,
        });
    }
    Ok((kind, identifiers))
}

async fn create_regulation(
    State(state): State<AdminState>,
    Body(body): Body<Value>,
) -> Result<Response, AdminError> {
    let (kind, identifiers) = parse(body)?;
    let Some(suppressions) = state.app.suppressions() else {
        return Err(AdminError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server carries out no regulations (no profile worker)",
        ));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
    let new = new_regulation(suppressions, kind, identifiers, now)?;
    let regulation = state.app.store().create_regulation(new).await?;
    if let Some(profiles) = &state.profiles {
        profiles.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": view(&regulation)})),
    )
        .into_response())
}

async fn list_regulations(State(state): State<AdminState>) -> Result<Json<Value>, AdminError> {
    let regulations = state.app.store().regulations(LISTED).await?;
    Ok(listed(regulations.iter().map(view).collect(), None))
}

async fn get_regulation(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let not_found = || AdminError::not_found(format!("no regulation \"{id}\""));
    let number: i64 = id.parse().map_err(|_| not_found())?;
    let regulation = state
        .app
        .store()
        .regulation(number)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(json!({"data": view(&regulation)})))
}

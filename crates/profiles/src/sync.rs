//! The event a sync sends (`audiences.md` §4): an `identify` with the value as a trait, the
//! computation in `context.personas`, addressed with `integrations` to the one destination, then
//! routed through that destination's mappings and committed like any event, under the
//! [`PERSONAS_SOURCE`] source.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use junction_audience::Identifiers;
use junction_event::{Event, NormaliseContext, normalise};
use junction_store::NewEvent;
use junction_workspace::{AudienceKind, RouteOutcome, Snapshot, route_to};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The source id sync events are stored under. The profile worker never takes them in.
pub const PERSONAS_SOURCE: &str = "personas";

/// The `space_id` and `namespace` of `context.personas`: Junction has one space.
const SPACE_ID: &str = "junction";
const NAMESPACE: &str = "spa_junction";

/// One value to send.
#[derive(Debug, Clone)]
pub struct Sync<'a> {
    /// The definition's key.
    pub key: &'a str,
    /// Audience or computed trait.
    pub kind: AudienceKind,
    /// The destination it goes to.
    pub destination: &'a str,
    /// The connection's id (unique per connection made).
    pub connection: &'a str,
    /// The profile's id.
    pub profile: u64,
    /// The profile's sync number (see `ProfileDoc::syncs`).
    pub number: u64,
    /// The value.
    pub value: Value,
    /// When the change happened (ms): the event's `timestamp`.
    pub at: i64,
}

/// A stable 64-bit FNV-1a hash: `messageId`s must come out the same in another build, so
/// that a step redone after a crash is deduplicated rather than sent twice.
fn fnv1a(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The sync's `messageId`: `personas_` and 32 hex digits, the same for the same connection,
/// profile and sync number.
pub fn message_id(sync: &Sync<'_>) -> String {
    let profile = sync.profile.to_be_bytes();
    let number = sync.number.to_be_bytes();
    let parts: [&[u8]; 3] = [sync.connection.as_bytes(), &profile, &number];
    format!(
        "personas_{:016x}{:016x}",
        fnv1a(0, &parts),
        fnv1a(0x9e37_79b9_7f4a_7c15, &parts)
    )
}

fn rfc3339(ms: i64) -> Option<String> {
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    time.format(&Rfc3339).ok()
}

/// The `identify` for one sync, before normalisation.
pub fn identify(sync: &Sync<'_>, identifiers: &Identifiers, anonymous_id: Option<&str>) -> Event {
    let mut event = Map::new();
    event.insert("type".to_owned(), json!("identify"));
    match identifiers.user_id.first() {
        Some(user_id) => {
            event.insert("userId".to_owned(), json!(user_id));
        }
        None => {
            let anonymous_id = anonymous_id.or(identifiers.anonymous_id.last().map(String::as_str));
            if let Some(anonymous_id) = anonymous_id {
                event.insert("anonymousId".to_owned(), json!(anonymous_id));
            }
        }
    }
    event.insert("messageId".to_owned(), json!(message_id(sync)));
    if let Some(timestamp) = rfc3339(sync.at) {
        event.insert("timestamp".to_owned(), json!(timestamp));
    }
    let mut traits = Map::new();
    traits.insert(sync.key.to_owned(), sync.value.clone());
    if let Some(email) = identifiers.email.first() {
        traits.insert("email".to_owned(), json!(email));
    }
    event.insert("traits".to_owned(), Value::Object(traits));
    let prefix = match sync.kind {
        AudienceKind::Audience => "aud",
        AudienceKind::Trait => "trait",
    };
    event.insert(
        "context".to_owned(),
        json!({"personas": {
            "computation_class": sync.kind.as_str(),
            "computation_id": format!("{prefix}_{}", sync.key),
            "computation_key": sync.key,
            "namespace": NAMESPACE,
            "space_id": SPACE_ID,
        }}),
    );
    event.insert(
        "integrations".to_owned(),
        json!({"All": false, (sync.destination): true}),
    );
    event
}

/// The sync as the store commits it: normalised as the Tracking API would, routed to its
/// destination only.
pub fn new_event(
    snapshot: &Snapshot,
    sync: &Sync<'_>,
    identifiers: &Identifiers,
    anonymous_id: Option<&str>,
    received_at: SystemTime,
) -> Result<NewEvent, serde_json::Error> {
    let mut event = identify(sync, identifiers, anonymous_id);
    let no_new_id = String::new;
    normalise(
        &mut event,
        &NormaliseContext::new(received_at, None, &no_new_id),
    );
    let message_id = message_id(sync);
    let event = Value::Object(event);
    let mut jobs = Vec::new();
    let mut discards = Vec::new();
    for outcome in route_to(snapshot, sync.destination, &event) {
        match outcome {
            RouteOutcome::Job(job) => jobs.push(job.into_new_job()),
            RouteOutcome::Discard(discard) => discards.push(discard),
        }
    }
    let received_ms = received_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    Ok(NewEvent {
        source_id: PERSONAS_SOURCE.to_owned(),
        message_id,
        received_at: i64::try_from(received_ms).unwrap_or(i64::MAX),
        payload: serde_json::to_vec(&event)?,
        jobs,
        discards,
        for_profiles: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(number: u64) -> Sync<'static> {
        Sync {
            key: "order_completed_last_30_days",
            kind: AudienceKind::Audience,
            destination: "cm",
            connection: "c1",
            profile: 7,
            number,
            value: json!(true),
            at: 1_772_323_200_000,
        }
    }

    #[test]
    fn the_identify_has_the_shape_of_section_4() {
        let identifiers = Identifiers {
            user_id: vec!["u1".into()],
            anonymous_id: vec!["a1".into()],
            email: vec!["jane@example.com".into()],
        };
        let event = Value::Object(identify(&sync(1), &identifiers, Some("a1")));
        assert_eq!(event["type"], "identify");
        assert_eq!(event["userId"], "u1");
        assert!(event.get("anonymousId").is_none());
        assert_eq!(
            event["traits"],
            json!({"order_completed_last_30_days": true, "email": "jane@example.com"})
        );
        assert_eq!(event["timestamp"], "2026-03-01T00:00:00Z");
        assert_eq!(
            event["context"]["personas"]["computation_class"],
            "audience"
        );
        assert_eq!(
            event["context"]["personas"]["computation_key"],
            "order_completed_last_30_days"
        );
        assert_eq!(event["integrations"], json!({"All": false, "cm": true}));
        let id = event["messageId"].as_str().unwrap_or_default();
        assert!(id.starts_with("personas_") && id.len() == 9 + 32, "{id}");
    }

    #[test]
    fn message_ids_are_stable_and_unique_per_sync() {
        assert_eq!(message_id(&sync(1)), message_id(&sync(1)));
        assert_ne!(message_id(&sync(1)), message_id(&sync(2)));
        // Pinned: another build must make the same ids, or a step redone after an upgrade
        // would send its syncs twice.
        assert_eq!(
            message_id(&sync(1)),
            "personas_26583c7370f02898b9b738914fb78b4f"
        );
    }

    #[test]
    fn without_a_user_id_the_latest_anonymous_id_is_sent() {
        let identifiers = Identifiers {
            user_id: vec![],
            anonymous_id: vec!["a1".into(), "a2".into()],
            email: vec![],
        };
        let event = Value::Object(identify(&sync(1), &identifiers, Some("a1")));
        assert_eq!(event["anonymousId"], "a1");
        assert!(event["traits"].get("email").is_none());
        let event = Value::Object(identify(&sync(1), &identifiers, None));
        assert_eq!(event["anonymousId"], "a2");
    }
}

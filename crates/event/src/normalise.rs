//! Normalisation of an accepted event before it is stored: `messageId`, `receivedAt`, `sentAt`,
//! clock-skew correction of `timestamp`, and removal of the write key.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::Event;

/// Longest string tried as a timestamp; real ones are under 40 characters.
const TIMESTAMP_MAX_CHARS: usize = 64;

const NANOS_PER_MILLI: i128 = 1_000_000;

/// What [`normalise`] needs from outside the event. Build one per request: what is the same for
/// every event (the server clock's text, the batch `sentAt` read as a time) is worked out once.
pub struct NormaliseContext<'a> {
    received_at: OffsetDateTime,
    received_text: String,
    batch_sent_at: Option<(&'a Value, Option<OffsetDateTime>)>,
    new_message_id: &'a dyn Fn() -> String,
}

impl<'a> NormaliseContext<'a> {
    /// A context for the events of one request.
    ///
    /// - `received_at`: when the request arrived, by the server's clock; stored with millisecond
    ///   precision.
    /// - `sent_at`: the batch-level `sentAt` ([`crate::ParsedRequest::sent_at`]), copied into
    ///   events that lack their own.
    /// - `new_message_id`: makes a `messageId` for events without one; production passes
    ///   [`random_message_id`].
    pub fn new(
        received_at: SystemTime,
        sent_at: Option<&'a Value>,
        new_message_id: &'a dyn Fn() -> String,
    ) -> Self {
        let received_at = to_millis(received_at);
        Self {
            received_at,
            received_text: format_utc(received_at),
            batch_sent_at: sent_at
                .filter(|sent_at| !sent_at.is_null())
                .map(|sent_at| (sent_at, parse_timestamp(sent_at))),
            new_message_id,
        }
    }
}

/// A fresh `messageId`: a random (v4) UUID, hyphenated and lowercase.
pub fn random_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The event's `messageId`, when it is a string.
pub fn message_id(event: &Map<String, Value>) -> Option<&str> {
    event.get("messageId").and_then(Value::as_str)
}

/// Normalises an event accepted by [`crate::parse_request`], in place:
///
/// - removes `writeKey` (a credential, never stored);
/// - sets `messageId` when it is absent, `null` or `""`;
/// - sets `receivedAt` to the server's clock (`2024-03-01T12:00:00.000Z`), replacing any value
///   the client sent;
/// - keeps an event's own `sentAt`, otherwise copies the batch's, otherwise uses `receivedAt`, so
///   every event carries one;
/// - moves the client's `timestamp` to `originalTimestamp` (without a `timestamp`, an
///   `originalTimestamp` the client sent is kept and used instead);
/// - sets `timestamp = receivedAt − (sentAt − originalTimestamp)`, or `receivedAt` when the
///   client gave no time of its own.
///
/// Timestamps are read as RFC 3339 / ISO 8601 with any offset and precision; a date-time without
/// an offset is taken as UTC. A client value that cannot be read is never a reason to refuse the
/// event and is never lost: it stays in `originalTimestamp` or `sentAt` as sent. An unreadable
/// `originalTimestamp` gives `timestamp = receivedAt`; an unreadable `sentAt` is treated like a
/// missing one (`timestamp = originalTimestamp`), since no skew can be measured. A corrected time
/// that falls outside years 0–9999 also falls back to `receivedAt`.
pub fn normalise(event: &mut Event, ctx: &NormaliseContext<'_>) {
    event.shift_remove("writeKey");

    let needs_message_id = match event.get("messageId") {
        None | Some(Value::Null) => true,
        Some(Value::String(id)) => id.is_empty(),
        // A non-string id is parse_request's to refuse; replacing it here would hide it.
        Some(_) => false,
    };
    if needs_message_id {
        event.insert(
            "messageId".to_owned(),
            Value::String((ctx.new_message_id)()),
        );
    }

    let received_at = ctx.received_at;
    let sent_at = match present(event, "sentAt") {
        Some(own) => parse_timestamp(own),
        None => match ctx.batch_sent_at {
            Some((batch, parsed)) => {
                event.insert("sentAt".to_owned(), batch.clone());
                parsed
            }
            None => {
                event.insert(
                    "sentAt".to_owned(),
                    Value::String(ctx.received_text.clone()),
                );
                Some(received_at)
            }
        },
    };

    let client_timestamp = event
        .get_mut("timestamp")
        .map(Value::take)
        .filter(|timestamp| !timestamp.is_null());
    let original = match client_timestamp {
        Some(timestamp) => {
            let parsed = parse_timestamp(&timestamp);
            event.insert("originalTimestamp".to_owned(), timestamp);
            parsed
        }
        None => present(event, "originalTimestamp").and_then(parse_timestamp),
    };

    let corrected = match (original, sent_at) {
        (Some(original), Some(sent_at)) => received_at.checked_sub(sent_at - original),
        (Some(original), None) => Some(original),
        (None, _) => None,
    };
    let timestamp = corrected
        .and_then(format_client_time)
        .unwrap_or_else(|| ctx.received_text.clone());
    event.insert("timestamp".to_owned(), Value::String(timestamp));
    event.insert(
        "receivedAt".to_owned(),
        Value::String(ctx.received_text.clone()),
    );
}

/// The value of `key` unless it is absent or `null`.
fn present<'e>(event: &'e Event, key: &str) -> Option<&'e Value> {
    event.get(key).filter(|value| !value.is_null())
}

fn parse_timestamp(value: &Value) -> Option<OffsetDateTime> {
    let text = value.as_str()?;
    if text.len() > TIMESTAMP_MAX_CHARS {
        return None;
    }
    if let Ok(parsed) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(parsed);
    }
    // ISO 8601 forms RFC 3339 lacks: `+0000` and `+01` offsets, basic format, no seconds.
    match OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        Ok(parsed) => Some(parsed),
        // Only a text that names no offset at all is read as UTC; a malformed offset is not.
        Err(time::error::Parse::TryFromParsed(
            time::error::TryFromParsed::InsufficientInformation,
        )) => PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
            .ok()
            .map(PrimitiveDateTime::assume_utc),
        Err(_) => None,
    }
}

/// The server clock as a UTC date-time truncated to milliseconds, so that the stored
/// `receivedAt` and the arithmetic on it agree.
fn to_millis(instant: SystemTime) -> OffsetDateTime {
    let nanos = match instant.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => i128::try_from(before.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    };
    let millis = nanos - nanos.rem_euclid(NANOS_PER_MILLI);
    OffsetDateTime::from_unix_timestamp_nanos(millis).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A client-derived time in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`, or `None` outside years 0–9999,
/// which that form cannot carry.
fn format_client_time(time: OffsetDateTime) -> Option<String> {
    let utc = time.checked_to_offset(UtcOffset::UTC)?;
    (0..=9999).contains(&utc.year()).then(|| format_utc(utc))
}

/// Formats a UTC date-time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds truncated).
fn format_utc(utc: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn instant(rfc3339: &str) -> SystemTime {
        let parsed = OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap();
        let nanos = u64::try_from(parsed.unix_timestamp_nanos()).unwrap();
        UNIX_EPOCH + Duration::from_nanos(nanos)
    }

    fn fixed_id() -> String {
        "generated-id".to_owned()
    }

    /// Normalises `event` received at `received_at`, with an optional batch `sentAt`.
    fn run(event: Value, received_at: &str, batch_sent_at: Option<Value>) -> Value {
        let Value::Object(mut event) = event else {
            panic!("test events are objects");
        };
        let ctx = NormaliseContext::new(instant(received_at), batch_sent_at.as_ref(), &fixed_id);
        normalise(&mut event, &ctx);
        Value::Object(event)
    }

    #[test]
    fn skew_is_corrected_for_a_client_clock_ten_minutes_behind() {
        let event = json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T11:50:00Z"});
        let out = run(
            event,
            "2024-03-01T12:00:05Z",
            Some(json!("2024-03-01T11:50:05Z")),
        );
        assert_eq!(out["originalTimestamp"], "2024-03-01T11:50:00Z");
        assert_eq!(out["sentAt"], "2024-03-01T11:50:05Z");
        assert_eq!(out["receivedAt"], "2024-03-01T12:00:05.000Z");
        assert_eq!(out["timestamp"], "2024-03-01T12:00:00.000Z");
    }

    #[test]
    fn skew_is_corrected_for_a_client_clock_ahead() {
        // Client 3 minutes ahead; the call was made 2.5 s before sending.
        let event = json!({
            "type": "identify", "userId": "u",
            "timestamp": "2024-03-01T12:03:02.500Z", "sentAt": "2024-03-01T12:03:05Z"
        });
        let out = run(event, "2024-03-01T12:00:05.250Z", None);
        assert_eq!(out["timestamp"], "2024-03-01T12:00:02.750Z");
        assert_eq!(
            out["sentAt"], "2024-03-01T12:03:05Z",
            "the event's own sentAt is kept"
        );
    }

    #[test]
    fn microseconds_and_offsets_are_read() {
        // analytics-python: microseconds and `+00:00`.
        let event = json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T11:50:00.123456+00:00"});
        let out = run(
            event,
            "2024-03-01T12:00:05Z",
            Some(json!("2024-03-01T11:50:05.123456+00:00")),
        );
        assert_eq!(out["timestamp"], "2024-03-01T12:00:00.000Z");
        assert_eq!(
            out["originalTimestamp"], "2024-03-01T11:50:00.123456+00:00",
            "kept as sent"
        );

        // A non-UTC offset on both sides, and microseconds that do not cancel out.
        let event = json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T17:20:00.000999+05:30"});
        let out = run(
            event,
            "2024-03-01T12:00:05Z",
            Some(json!("2024-03-01T06:50:05-05:00")),
        );
        assert_eq!(
            out["timestamp"], "2024-03-01T12:00:00.000Z",
            "0.999 ms truncated"
        );

        // ISO 8601 forms outside RFC 3339.
        let event =
            json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T13:00:00+0100"});
        let out = run(event, "2024-03-01T12:00:05Z", None);
        assert_eq!(out["timestamp"], "2024-03-01T12:00:00.000Z");
        let event = json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T12:00:00"});
        let out = run(event, "2024-03-01T12:00:05Z", None);
        assert_eq!(
            out["timestamp"], "2024-03-01T12:00:00.000Z",
            "no offset is read as UTC"
        );
    }

    #[test]
    fn missing_sent_at_uses_received_at() {
        let event = json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T11:50:00Z"});
        let out = run(event, "2024-03-01T12:00:05.678Z", None);
        assert_eq!(out["sentAt"], "2024-03-01T12:00:05.678Z");
        // receivedAt − (receivedAt − originalTimestamp): the client's time, uncorrected.
        assert_eq!(out["timestamp"], "2024-03-01T11:50:00.000Z");
    }

    #[test]
    fn missing_timestamp_uses_received_at() {
        let event = json!({"type": "identify", "userId": "u", "timestamp": null});
        let out = run(
            event,
            "2024-03-01T12:00:05.678Z",
            Some(json!("2024-03-01T11:50:05Z")),
        );
        assert_eq!(out["timestamp"], "2024-03-01T12:00:05.678Z");
        assert_eq!(out.get("originalTimestamp"), None, "no client time to keep");
        assert_eq!(out["sentAt"], "2024-03-01T11:50:05Z");
    }

    #[test]
    fn a_client_original_timestamp_is_used_when_there_is_no_timestamp() {
        let event =
            json!({"type": "identify", "userId": "u", "originalTimestamp": "2024-03-01T11:50:00Z"});
        let out = run(
            event,
            "2024-03-01T12:00:05Z",
            Some(json!("2024-03-01T11:50:05Z")),
        );
        assert_eq!(out["originalTimestamp"], "2024-03-01T11:50:00Z");
        assert_eq!(out["timestamp"], "2024-03-01T12:00:00.000Z");
    }

    #[test]
    fn unparsable_client_times_are_kept_and_never_used() {
        let event = json!({"type": "identify", "userId": "u", "timestamp": "yesterday"});
        let out = run(
            event,
            "2024-03-01T12:00:05Z",
            Some(json!("2024-03-01T11:50:05Z")),
        );
        assert_eq!(out["originalTimestamp"], "yesterday");
        assert_eq!(out["timestamp"], "2024-03-01T12:00:05.000Z");

        let event = json!({"type": "identify", "userId": "u", "timestamp": 1709294400});
        let out = run(event, "2024-03-01T12:00:05Z", None);
        assert_eq!(out["originalTimestamp"], 1709294400);
        assert_eq!(out["timestamp"], "2024-03-01T12:00:05.000Z");

        let event = json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T11:50:00Z"});
        let out = run(event, "2024-03-01T12:00:05Z", Some(json!("soon")));
        assert_eq!(out["sentAt"], "soon", "the batch value is copied as sent");
        assert_eq!(
            out["timestamp"], "2024-03-01T11:50:00.000Z",
            "no skew can be measured"
        );

        // A malformed offset is not silently read as UTC.
        let event =
            json!({"type": "identify", "userId": "u", "timestamp": "2024-03-01T11:50:00+99:00"});
        let out = run(event, "2024-03-01T12:00:05Z", None);
        assert_eq!(out["timestamp"], "2024-03-01T12:00:05.000Z");
    }

    #[test]
    fn a_corrected_time_out_of_range_falls_back_to_received_at() {
        let event = json!({"type": "identify", "userId": "u", "timestamp": "9999-12-31T23:59:59Z"});
        let out = run(
            event,
            "2024-03-01T12:00:05Z",
            Some(json!("0001-01-01T00:00:00Z")),
        );
        assert_eq!(out["timestamp"], "2024-03-01T12:00:05.000Z");
        assert_eq!(out["originalTimestamp"], "9999-12-31T23:59:59Z");
    }

    #[test]
    fn message_id_is_filled_only_when_missing() {
        for missing in [
            json!({}),
            json!({"messageId": null}),
            json!({"messageId": ""}),
        ] {
            let out = run(missing, "2024-03-01T12:00:05Z", None);
            assert_eq!(out["messageId"], "generated-id");
        }
        let out = run(json!({"messageId": "m-1"}), "2024-03-01T12:00:05Z", None);
        assert_eq!(out["messageId"], "m-1");
        let Value::Object(out) = out else {
            unreachable!()
        };
        assert_eq!(message_id(&out), Some("m-1"));
    }

    #[test]
    fn received_at_and_write_key_are_the_servers_business() {
        let event = json!({"writeKey": "secret", "receivedAt": "1999-01-01T00:00:00Z"});
        let out = run(event, "2024-03-01T12:00:05.123456Z", None);
        assert_eq!(out.get("writeKey"), None);
        assert_eq!(out["receivedAt"], "2024-03-01T12:00:05.123Z");
    }

    #[test]
    fn random_message_ids_are_uuids() {
        let id = random_message_id();
        assert_eq!(id.len(), 36);
        assert_ne!(id, random_message_id());
    }
}

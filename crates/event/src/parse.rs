//! Request bodies of every Tracking API endpoint: envelope, limits, batch-level merges, and one
//! result per event so a batch keeps its valid events when some are refused.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::Event;
use crate::endpoint::{Endpoint, MessageType};
use crate::error::{EventRejection, JsonKind, LimitExceeded, RequestError};
use crate::limits::Limits;
use crate::validate::validate;

/// A request body, parsed and checked. Events are neither normalised nor deduplicated yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    /// The body's `writeKey` (the batch's, or the single event's). `None` when the body has none;
    /// the server then relies on HTTP Basic auth ([`crate::write_key_from_basic`]).
    pub write_key: Option<String>,
    /// The batch-level `sentAt`, for [`crate::NormaliseContext::new`]; kept as sent (usually
    /// a string) so that an unparsable value still reaches the stored events. Always `None` for
    /// single-event endpoints, whose event carries its own `sentAt`.
    pub sent_at: Option<Value>,
    /// One result per event, in the order of the body.
    pub events: Vec<Result<Event, EventRejection>>,
}

/// The fields of a batch envelope this crate reads; the rest are ignored.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    batch: Option<Batch<'a>>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    integrations: Option<Value>,
    #[serde(rename = "sentAt", default)]
    sent_at: Option<Value>,
    #[serde(rename = "writeKey", default)]
    write_key: Option<Value>,
}

/// The envelope's `batch`: its items, still raw, found in the same pass over the body as the
/// envelope (a 500 KB batch is scanned once before its items are parsed, not twice); or the kind
/// of what stood there instead of an array.
enum Batch<'a> {
    Items(Vec<&'a RawValue>),
    NotAnArray(JsonKind),
}

impl<'de: 'a, 'a> Deserialize<'de> for Batch<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BatchVisitor(std::marker::PhantomData))
    }
}

struct BatchVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for BatchVisitor<'a> {
    type Value = Batch<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the batch array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Batch::Items(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Batch::NotAnArray(JsonKind::Object))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Batch::NotAnArray(JsonKind::Boolean))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Batch::NotAnArray(JsonKind::Number))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Batch::NotAnArray(JsonKind::Number))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Batch::NotAnArray(JsonKind::Number))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Batch::NotAnArray(JsonKind::String))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Batch::NotAnArray(JsonKind::Null))
    }
}

/// Batch-level objects merged into every item.
struct Shared {
    context: Option<Map<String, Value>>,
    integrations: Option<Map<String, Value>>,
}

/// Parses and validates the body of a request to `endpoint`. `body` is already decompressed.
///
/// Request-level problems (size and count limits, malformed JSON, a body that is not an object, a
/// missing `batch`, a `writeKey` that is not a string) refuse the whole request. Problems with one
/// event are reported in its slot of [`ParsedRequest::events`]. A single-event endpoint whose event
/// is too large is a request-level [`RequestError::TooLarge`], so that the server answers 413.
///
/// A single-event endpoint's path decides the event's `type`, overwriting the body's. A batch's
/// `context` and `integrations` are merged into each accepted item one level deep: the item keeps
/// its own keys whole and gains the batch's other keys. Each item's size is its own JSON text in
/// the body, measured before that merge.
pub fn parse_request(
    endpoint: Endpoint,
    body: &[u8],
    limits: &Limits,
) -> Result<ParsedRequest, RequestError> {
    if body.len() > limits.max_request_bytes {
        return Err(RequestError::TooLarge(LimitExceeded::Request {
            size: body.len(),
            limit: limits.max_request_bytes,
        }));
    }
    match endpoint {
        Endpoint::Single(message_type) => parse_single(message_type, body, limits),
        Endpoint::Batch => parse_batch(body, limits),
    }
}

fn parse_single(
    message_type: MessageType,
    body: &[u8],
    limits: &Limits,
) -> Result<ParsedRequest, RequestError> {
    // The body is the event, so its size is known before parsing anything.
    let size = trim_json_whitespace(body).len();
    if size > limits.max_event_bytes {
        return Err(RequestError::TooLarge(LimitExceeded::Event {
            size,
            limit: limits.max_event_bytes,
        }));
    }
    let mut event = match crate::json::value_from_slice(body)? {
        Value::Object(event) => event,
        other => {
            return Err(RequestError::NotAnObject {
                found: JsonKind::of(&other),
            });
        }
    };
    let write_key = write_key(event.get("writeKey"))?;
    let result = validate(&mut event, Some(message_type)).map(|_| event);
    Ok(ParsedRequest {
        write_key,
        sent_at: None,
        events: vec![result],
    })
}

fn parse_batch(body: &[u8], limits: &Limits) -> Result<ParsedRequest, RequestError> {
    let envelope = parse_envelope(body)?;
    // Items stay raw until counted, so an oversize batch costs no event parsing, and each item's
    // size is its own text in the body.
    let items = match envelope.batch {
        None => return Err(RequestError::MissingBatch),
        Some(Batch::NotAnArray(found)) => {
            return Err(RequestError::WrongType {
                field: "batch",
                expected: "an array",
                found,
            });
        }
        Some(Batch::Items(items)) => items,
    };
    if items.len() > limits.max_batch_events {
        return Err(RequestError::TooLarge(LimitExceeded::BatchEvents {
            count: items.len(),
            limit: limits.max_batch_events,
        }));
    }
    let write_key = write_key(envelope.write_key.as_ref())?;
    let shared = Shared {
        context: batch_object("context", envelope.context)?,
        integrations: batch_object("integrations", envelope.integrations)?,
    };
    let events = items
        .into_iter()
        .map(|item| parse_item(item, &shared, limits))
        .collect();
    Ok(ParsedRequest {
        write_key,
        sent_at: envelope.sent_at.filter(|sent_at| !sent_at.is_null()),
        events,
    })
}

fn parse_envelope(body: &[u8]) -> Result<Envelope<'_>, RequestError> {
    // serde's derived struct also accepts a JSON array (fields by position), so anything that
    // does not open an object is classified from its parsed value instead.
    if trim_json_whitespace(body).first() != Some(&b'{') {
        let value: Value = serde_json::from_slice(body)?;
        return Err(RequestError::NotAnObject {
            found: JsonKind::of(&value),
        });
    }
    Ok(serde_json::from_slice(body)?)
}

fn parse_item(item: &RawValue, shared: &Shared, limits: &Limits) -> Result<Event, EventRejection> {
    let text = item.get();
    if text.len() > limits.max_event_bytes {
        return Err(EventRejection::TooLarge {
            size: text.len(),
            limit: limits.max_event_bytes,
        });
    }
    // The envelope pass only checked syntax; building values can still fail (nesting deeper
    // than serde_json's recursion limit, numbers out of range).
    let value = crate::json::value_from_str(text).map_err(|err| EventRejection::MalformedJson {
        message: err.to_string(),
    })?;
    let mut event = match value {
        Value::Object(event) => event,
        other => {
            return Err(EventRejection::NotAnObject {
                found: JsonKind::of(&other),
            });
        }
    };
    validate(&mut event, None)?;
    merge_missing_keys(&mut event, "context", shared.context.as_ref());
    merge_missing_keys(&mut event, "integrations", shared.integrations.as_ref());
    Ok(event)
}

/// Adds the batch-level object's keys that the item's own object lacks. The merge is one level
/// deep: an item key replaces the batch key's whole value (an item's `context.device` is not
/// blended with the batch's), because the item is the more specific statement and a blend could
/// describe a device or library that never existed. An item value that is not an object wins
/// as it is; `null` counts as absent.
fn merge_missing_keys(event: &mut Event, key: &str, shared: Option<&Map<String, Value>>) {
    let Some(shared) = shared else {
        return;
    };
    match event.get_mut(key) {
        Some(Value::Object(own)) => {
            for (name, value) in shared {
                if !own.contains_key(name) {
                    own.insert(name.clone(), value.clone());
                }
            }
        }
        None | Some(Value::Null) => {
            event.insert(key.to_owned(), Value::Object(shared.clone()));
        }
        Some(_) => {}
    }
}

fn write_key(value: Option<&Value>) -> Result<Option<String>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(key)) => Ok(Some(key.clone())),
        Some(other) => Err(RequestError::WrongType {
            field: "writeKey",
            expected: "a string",
            found: JsonKind::of(other),
        }),
    }
}

fn batch_object(
    field: &'static str,
    value: Option<Value>,
) -> Result<Option<Map<String, Value>>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(RequestError::WrongType {
            field,
            expected: "an object",
            found: JsonKind::of(&other),
        }),
    }
}

fn trim_json_whitespace(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |last| last + 1);
    bytes.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(endpoint: Endpoint, body: &str) -> Result<ParsedRequest, RequestError> {
        parse_request(endpoint, body.as_bytes(), &Limits::default())
    }

    fn batch(body: &str) -> Result<ParsedRequest, RequestError> {
        parse(Endpoint::Batch, body)
    }

    fn identify(body: &str) -> Result<ParsedRequest, RequestError> {
        parse(Endpoint::Single(MessageType::Identify), body)
    }

    fn only_event(parsed: ParsedRequest) -> Result<Event, EventRejection> {
        assert_eq!(parsed.events.len(), 1);
        parsed.events.into_iter().next().unwrap()
    }

    /// An identify event whose JSON text is exactly `size` bytes.
    fn event_of_size(size: usize) -> String {
        let empty = r#"{"type":"identify","userId":"u","traits":{"pad":""}}"#;
        let pad = "x".repeat(size - empty.len());
        let event = format!(r#"{{"type":"identify","userId":"u","traits":{{"pad":"{pad}"}}}}"#);
        assert_eq!(event.len(), size);
        event
    }

    #[test]
    fn a_single_event_takes_its_type_from_the_path() {
        let parsed = identify(r#"{"type": "track", "userId": "u"}"#).unwrap();
        assert_eq!(only_event(parsed).unwrap()["type"], "identify");

        let parsed = parse(
            Endpoint::Single(MessageType::Track),
            r#"{"userId": "u", "event": "Signed Up"}"#,
        )
        .unwrap();
        assert_eq!(only_event(parsed).unwrap()["type"], "track");
    }

    #[test]
    fn a_single_event_keeps_its_rejection_in_its_slot() {
        let parsed = parse(Endpoint::Single(MessageType::Group), r#"{"userId": "u"}"#).unwrap();
        let err = only_event(parsed).unwrap_err();
        assert_eq!(err.to_string(), "groupId is required for group calls");
    }

    #[test]
    fn the_write_key_comes_from_the_body() {
        let parsed = identify(r#"{"userId": "u", "writeKey": "wk"}"#).unwrap();
        assert_eq!(parsed.write_key.as_deref(), Some("wk"));
        assert_eq!(parsed.sent_at, None);

        let parsed =
            batch(r#"{"batch": [], "writeKey": "wk", "sentAt": "2024-03-01T12:00:00Z"}"#).unwrap();
        assert_eq!(parsed.write_key.as_deref(), Some("wk"));
        assert_eq!(parsed.sent_at, Some(json!("2024-03-01T12:00:00Z")));

        let parsed = batch(r#"{"batch": [], "writeKey": null, "sentAt": null}"#).unwrap();
        assert_eq!(parsed.write_key, None);
        assert_eq!(parsed.sent_at, None);

        let err = batch(r#"{"batch": [], "writeKey": 7}"#).unwrap_err();
        assert_eq!(err.to_string(), "writeKey must be a string, found a number");
        assert_eq!(err.field(), Some("writeKey"));
        let err = identify(r#"{"userId": "u", "writeKey": ["wk"]}"#).unwrap_err();
        assert_eq!(err.to_string(), "writeKey must be a string, found an array");
    }

    #[test]
    fn malformed_json_reports_serdes_position() {
        let err = batch("{\n  \"batch\": [\n    {\"type\": }\n  ]\n}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed JSON: expected value at line 3 column 14"
        );
        assert_eq!(
            err,
            RequestError::MalformedJson {
                message: "expected value at line 3 column 14".to_owned(),
                line: 3,
                column: 14,
            }
        );
        let err = identify("").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed JSON: EOF while parsing a value at line 1 column 0"
        );
        let err = batch(r#"{"batch": [] } x"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed JSON: trailing characters at line 1 column 16"
        );
        let err = batch("[1, 2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed JSON: EOF while parsing a list at line 1 column 5"
        );
        let err = batch(r#"{"batch": [], "batch": []}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed JSON: duplicate field `batch` at line 1 column 21"
        );
    }

    #[test]
    fn a_body_must_be_an_object() {
        let err = batch(r#"[{"batch": []}]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "request body must be a JSON object, found an array"
        );
        let err = batch(" 12 ").unwrap_err();
        assert_eq!(
            err,
            RequestError::NotAnObject {
                found: JsonKind::Number
            }
        );
        let err = identify(r#""identify""#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "request body must be a JSON object, found a string"
        );
        assert_eq!(err.field(), None);
    }

    #[test]
    fn a_batch_needs_a_batch_array() {
        let err = batch(r#"{"writeKey": "wk"}"#).unwrap_err();
        assert_eq!(err.to_string(), "batch is required");
        assert_eq!(err.field(), Some("batch"));
        assert_eq!(
            batch(r#"{"batch": null}"#).unwrap_err(),
            RequestError::MissingBatch
        );

        let err = batch(r#"{"batch": {"type": "identify"}}"#).unwrap_err();
        assert_eq!(err.to_string(), "batch must be an array, found an object");
        assert_eq!(err.field(), Some("batch"));
        let err = batch(r#"{"batch": "[]"}"#).unwrap_err();
        assert_eq!(err.to_string(), "batch must be an array, found a string");
        let err = batch(r#"{"batch": true}"#).unwrap_err();
        assert_eq!(err.to_string(), "batch must be an array, found a boolean");
        let err = batch(r#"{"batch": -1}"#).unwrap_err();
        assert_eq!(err.to_string(), "batch must be an array, found a number");

        let parsed = batch(r#"{"batch": []}"#).unwrap();
        assert!(parsed.events.is_empty());
    }

    #[test]
    fn batch_level_objects_must_be_objects() {
        let err = batch(r#"{"batch": [], "context": "web"}"#).unwrap_err();
        assert_eq!(err.to_string(), "context must be an object, found a string");
        assert_eq!(err.field(), Some("context"));
        let err = batch(r#"{"batch": [], "integrations": [true]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "integrations must be an object, found an array"
        );
    }

    #[test]
    fn a_batch_keeps_its_valid_events_and_reports_the_others() {
        let body = r#"{"batch": [
            {"type": "identify", "userId": "u1", "messageId": "m1"},
            {"type": "identify"},
            "not an event",
            {"type": "group", "userId": "u2", "groupId": "g2", "messageId": "m2"},
            {"type": "wave", "userId": "u3"},
            {"type": "track", "userId": "u4", "event": "Signed Up", "messageId": "m3"},
            {"type": "identify", "userId": "u5", "traits": {"n": 1e400}}
        ]}"#;
        let parsed = batch(body).unwrap();
        let outcome: Vec<Result<&str, String>> = parsed
            .events
            .iter()
            .map(|event| match event {
                Ok(event) => Ok(crate::message_id(event).unwrap_or("-")),
                Err(err) => Err(err.to_string()),
            })
            .collect();
        assert_eq!(
            outcome,
            vec![
                Ok("m1"),
                Err("userId or anonymousId is required".to_owned()),
                Err("event must be a JSON object, found a string".to_owned()),
                Ok("m2"),
                Err("unknown type \"wave\", expected one of identify, track, page, screen, group, alias".to_owned()),
                Ok("m3"),
                Err("malformed JSON in event: number out of range at line 1 column 58".to_owned()),
            ]
        );
    }

    #[test]
    fn an_event_nested_too_deeply_is_rejected_alone() {
        let deep = format!(
            r#"{{"type": "identify", "userId": "u", "traits": {}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let body = format!(r#"{{"batch": [{deep}, {{"type": "identify", "userId": "u"}}]}}"#);
        let parsed = batch(&body).unwrap();
        let err = parsed.events[0].as_ref().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed JSON in event: recursion limit exceeded"),
            "{err}"
        );
        assert!(parsed.events[1].is_ok());

        let err = identify(&deep).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed JSON: recursion limit exceeded"),
            "{err}"
        );
    }

    #[test]
    fn batch_context_and_integrations_are_merged_key_by_key() {
        let body = r#"{
            "context": {"library": {"name": "batch-lib", "version": "1"}, "ip": "10.0.0.1"},
            "integrations": {"All": false, "ChartMogul": true},
            "batch": [
                {"type": "identify", "userId": "u1",
                 "context": {"library": {"name": "item-lib"}},
                 "integrations": {"Mixpanel": false, "ChartMogul": false}},
                {"type": "identify", "userId": "u2"},
                {"type": "identify", "userId": "u3", "context": null, "integrations": "odd"}
            ]
        }"#;
        let parsed = batch(body).unwrap();
        let events: Vec<Value> = parsed
            .events
            .into_iter()
            .map(|event| Value::Object(event.unwrap()))
            .collect();
        // Item keys win whole: no `version` leaks into the item's own library.
        assert_eq!(
            events[0]["context"],
            json!({"library": {"name": "item-lib"}, "ip": "10.0.0.1"})
        );
        assert_eq!(
            events[0]["integrations"],
            json!({"Mixpanel": false, "ChartMogul": false, "All": false})
        );
        assert_eq!(
            events[1]["context"],
            json!({"library": {"name": "batch-lib", "version": "1"}, "ip": "10.0.0.1"})
        );
        assert_eq!(
            events[1]["integrations"],
            json!({"All": false, "ChartMogul": true})
        );
        assert_eq!(events[2]["context"]["ip"], "10.0.0.1");
        assert_eq!(events[2]["integrations"], "odd");
    }

    #[test]
    fn the_request_limit_is_inclusive() {
        let limit = Limits::default().max_request_bytes;
        let mut body = r#"{"batch": [{"type": "identify", "userId": "u"}]}"#.to_owned();
        body.push_str(&" ".repeat(limit - body.len()));
        assert_eq!(body.len(), 500 * 1024);
        assert!(batch(&body).is_ok());

        body.push(' ');
        let err = batch(&body).unwrap_err();
        assert_eq!(
            err,
            RequestError::TooLarge(LimitExceeded::Request {
                size: 512_001,
                limit: 512_000
            })
        );
        assert_eq!(
            err.to_string(),
            "request body is 512001 bytes, over the limit of 512000 bytes"
        );
        // The request limit applies to single events too, before the event limit.
        let err = identify(&body).unwrap_err();
        assert!(matches!(
            err,
            RequestError::TooLarge(LimitExceeded::Request { .. })
        ));
    }

    #[test]
    fn the_batch_count_limit_is_inclusive() {
        let item = r#"{"type": "identify", "userId": "u"}"#;
        let body = |count: usize| format!(r#"{{"batch": [{}]}}"#, vec![item; count].join(","));

        let parsed = batch(&body(2500)).unwrap();
        assert_eq!(parsed.events.len(), 2500);
        assert!(parsed.events.iter().all(Result::is_ok));

        let err = batch(&body(2501)).unwrap_err();
        assert_eq!(
            err,
            RequestError::TooLarge(LimitExceeded::BatchEvents {
                count: 2501,
                limit: 2500
            })
        );
        assert_eq!(
            err.to_string(),
            "batch has 2501 events, over the limit of 2500"
        );
    }

    #[test]
    fn a_single_event_over_the_event_limit_refuses_the_request() {
        let at_limit = event_of_size(32 * 1024);
        // Whitespace around the event is not part of it.
        let padded = format!("\n {at_limit} \r\n");
        assert!(only_event(identify(&padded).unwrap()).is_ok());

        let over = event_of_size(32 * 1024 + 1);
        let err = identify(&over).unwrap_err();
        assert_eq!(
            err,
            RequestError::TooLarge(LimitExceeded::Event {
                size: 32_769,
                limit: 32_768
            })
        );
        assert_eq!(
            err.to_string(),
            "event is 32769 bytes, over the limit of 32768 bytes"
        );
    }

    #[test]
    fn a_batch_item_over_the_event_limit_is_rejected_alone() {
        let body = format!(
            r#"{{"batch": [ {}, {},{{"type":"identify","userId":"small"}}]}}"#,
            event_of_size(32 * 1024),
            event_of_size(32 * 1024 + 1),
        );
        let parsed = batch(&body).unwrap();
        assert!(parsed.events[0].is_ok());
        let err = parsed.events[1].as_ref().unwrap_err();
        assert_eq!(
            err,
            &EventRejection::TooLarge {
                size: 32_769,
                limit: 32_768
            }
        );
        assert_eq!(
            err.to_string(),
            "event is 32769 bytes, over the limit of 32768 bytes"
        );
        assert_eq!(err.field(), None);
        assert!(parsed.events[2].is_ok());
    }

    #[test]
    fn limits_can_be_configured() {
        let limits = Limits {
            max_event_bytes: 40,
            max_request_bytes: 200,
            max_batch_events: 1,
        };
        let body = br#"{"batch": [{"type":"identify","userId":"u"}]}"#;
        assert!(parse_request(Endpoint::Batch, body, &limits).is_ok());
        let body =
            br#"{"batch": [{"type":"identify","userId":"u"}, {"type":"identify","userId":"v"}]}"#;
        let err = parse_request(Endpoint::Batch, body, &limits).unwrap_err();
        assert!(matches!(
            err,
            RequestError::TooLarge(LimitExceeded::BatchEvents { count: 2, limit: 1 })
        ));
    }
}

//! Per-event validation: the message type, the identities, the fields each type requires, and
//! `messageId`. Identifiers sent as numbers become strings here, so later stages see one type.

use serde_json::{Map, Value};

use crate::endpoint::MessageType;
use crate::error::{EventRejection, JsonKind};
use crate::limits::MESSAGE_ID_MAX_CHARS;

/// Longest `type` value quoted back in an [`EventRejection::UnknownType`] message.
const QUOTED_TYPE_MAX_CHARS: usize = 64;

/// Checks one event and settles its `type`. With `path_type` (single-event endpoints) the path
/// decides the type and overwrites whatever the body said, as Segment does; without it (batch
/// items) the event's own `type` must name a message type.
pub(crate) fn validate(
    event: &mut Map<String, Value>,
    path_type: Option<MessageType>,
) -> Result<MessageType, EventRejection> {
    let message_type = match path_type {
        Some(path_type) => {
            set_type(event, path_type);
            path_type
        }
        None => type_of(event)?,
    };

    let has_user_id = coerce_identifier(event, "userId")?;
    let has_anonymous_id = coerce_identifier(event, "anonymousId")?;
    if !has_user_id && !has_anonymous_id {
        return Err(EventRejection::MissingIdentity);
    }

    let required = match message_type {
        MessageType::Track => Some(("event", require_string(event, "event")?)),
        MessageType::Group => Some(("groupId", coerce_identifier(event, "groupId")?)),
        MessageType::Alias => Some(("previousId", coerce_identifier(event, "previousId")?)),
        MessageType::Identify | MessageType::Page | MessageType::Screen => None,
    };
    if let Some((field, false)) = required {
        return Err(EventRejection::MissingField {
            field,
            message_type,
        });
    }

    check_message_id(event)?;
    Ok(message_type)
}

fn set_type(event: &mut Map<String, Value>, message_type: MessageType) {
    let name = message_type.as_str();
    // Only write when the body disagrees: most clients already send the right type.
    if event.get("type").and_then(Value::as_str) != Some(name) {
        event.insert("type".to_owned(), Value::String(name.to_owned()));
    }
}

fn type_of(event: &Map<String, Value>) -> Result<MessageType, EventRejection> {
    let name = match event.get("type") {
        None | Some(Value::Null) => return Err(EventRejection::MissingType),
        Some(Value::String(name)) if name.is_empty() => return Err(EventRejection::MissingType),
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(EventRejection::WrongType {
                field: "type",
                expected: "a string",
                found: JsonKind::of(other),
            });
        }
    };
    MessageType::from_name(name).ok_or_else(|| EventRejection::UnknownType {
        found: shorten(name, QUOTED_TYPE_MAX_CHARS),
    })
}

/// Whether the identifier `field` is present (absent, `null` and `""` are not). A number is
/// rewritten as the string JavaScript's `String(n)` gives, since Segment's clients accept
/// numeric ids and destinations expect strings.
fn coerce_identifier(
    event: &mut Map<String, Value>,
    field: &'static str,
) -> Result<bool, EventRejection> {
    let Some(value) = event.get_mut(field) else {
        return Ok(false);
    };
    match value {
        Value::Null => Ok(false),
        Value::String(id) => Ok(!id.is_empty()),
        Value::Number(number) => {
            *value = Value::String(number_to_js_string(number));
            Ok(true)
        }
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(EventRejection::WrongType {
            field,
            expected: "a string or a number",
            found: JsonKind::of(value),
        }),
    }
}

/// Whether the string `field` is present (absent, `null` and `""` are not).
fn require_string(event: &Map<String, Value>, field: &'static str) -> Result<bool, EventRejection> {
    match event.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(text)) => Ok(!text.is_empty()),
        Some(other) => Err(EventRejection::WrongType {
            field,
            expected: "a string",
            found: JsonKind::of(other),
        }),
    }
}

fn check_message_id(event: &Map<String, Value>) -> Result<(), EventRejection> {
    let id = match event.get("messageId") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(id)) => id,
        Some(other) => {
            return Err(EventRejection::WrongType {
                field: "messageId",
                expected: "a string",
                found: JsonKind::of(other),
            });
        }
    };
    // A UTF-8 string never has more characters than bytes, so short ids skip the count.
    if id.len() < MESSAGE_ID_MAX_CHARS {
        return Ok(());
    }
    let length = id.chars().count();
    if length < MESSAGE_ID_MAX_CHARS {
        return Ok(());
    }
    Err(EventRejection::MessageIdTooLong {
        length,
        limit: MESSAGE_ID_MAX_CHARS,
    })
}

/// A numeric id as a string: integers digit for digit, other numbers as JavaScript's `String(n)`
/// writes them (`1.5`, `1e+21`), which is what a Segment client would have sent as text.
fn number_to_js_string(number: &serde_json::Number) -> String {
    if let Some(int) = number.as_i64() {
        return int.to_string();
    }
    if let Some(int) = number.as_u64() {
        return int.to_string();
    }
    match number.as_f64() {
        // Matches -0.0 too, which ryu-js writes as "-0" where JavaScript writes "0".
        Some(0.0) => "0".to_owned(),
        Some(float) => ryu_js::Buffer::new().format(float).to_owned(),
        None => number.to_string(),
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(event: Value, path_type: Option<MessageType>) -> Result<Value, String> {
        let Value::Object(mut event) = event else {
            panic!("test events are objects");
        };
        validate(&mut event, path_type)
            .map(|_| Value::Object(event))
            .map_err(|err| err.to_string())
    }

    fn rejection(event: Value) -> EventRejection {
        let Value::Object(mut event) = event else {
            panic!("test events are objects");
        };
        validate(&mut event, None).unwrap_err()
    }

    #[test]
    fn a_valid_event_of_each_type_passes() {
        let events = [
            json!({"type": "identify", "userId": "u1"}),
            json!({"type": "track", "anonymousId": "a1", "event": "Signed Up"}),
            json!({"type": "page", "userId": "u1"}),
            json!({"type": "screen", "userId": "u1"}),
            json!({"type": "group", "userId": "u1", "groupId": "g1"}),
            json!({"type": "alias", "userId": "u1", "previousId": "a1"}),
        ];
        for event in events {
            assert!(check(event.clone(), None).is_ok(), "{event}");
        }
    }

    #[test]
    fn the_path_type_overrides_the_body_type() {
        let event = json!({"type": "track", "userId": "u1"});
        let checked = check(event, Some(MessageType::Identify)).unwrap();
        assert_eq!(checked["type"], "identify");

        let event = json!({"userId": "u1", "groupId": "g1"});
        let checked = check(event, Some(MessageType::Group)).unwrap();
        assert_eq!(checked["type"], "group");

        // The path type also decides which fields are required.
        let event = json!({"type": "identify", "userId": "u1"});
        assert_eq!(
            check(event, Some(MessageType::Track)).unwrap_err(),
            "event is required for track calls"
        );
    }

    #[test]
    fn type_rejections_name_the_problem() {
        assert_eq!(
            rejection(json!({"userId": "u1"})).to_string(),
            "type is required"
        );
        assert_eq!(
            rejection(json!({"type": null, "userId": "u1"})),
            EventRejection::MissingType
        );
        assert_eq!(
            rejection(json!({"type": "", "userId": "u1"})),
            EventRejection::MissingType
        );
        let err = rejection(json!({"type": "purchase", "userId": "u1"}));
        assert_eq!(
            err.to_string(),
            "unknown type \"purchase\", expected one of identify, track, page, screen, group, alias"
        );
        assert_eq!(err.field(), Some("type"));
        let err = rejection(json!({"type": 3, "userId": "u1"}));
        assert_eq!(err.to_string(), "type must be a string, found a number");
        assert_eq!(err.field(), Some("type"));
    }

    #[test]
    fn an_unknown_type_is_quoted_shortened() {
        let long = "x".repeat(1000);
        let err = rejection(json!({"type": long, "userId": "u1"}));
        assert_eq!(
            err,
            EventRejection::UnknownType {
                found: format!("{}…", "x".repeat(64))
            }
        );
    }

    #[test]
    fn an_identity_is_required() {
        for event in [
            json!({"type": "identify"}),
            json!({"type": "identify", "userId": null, "anonymousId": null}),
            json!({"type": "identify", "userId": "", "anonymousId": ""}),
        ] {
            let err = rejection(event);
            assert_eq!(err.to_string(), "userId or anonymousId is required");
            assert_eq!(err.field(), None);
        }
        // analytics-python sends `anonymousId: null` next to a userId.
        assert!(
            check(
                json!({"type": "identify", "userId": "u1", "anonymousId": null}),
                None
            )
            .is_ok()
        );
        assert!(check(json!({"type": "identify", "anonymousId": "a1"}), None).is_ok());
    }

    #[test]
    fn numeric_identifiers_become_strings() {
        let event = json!({
            "type": "group", "userId": 42, "anonymousId": 1.5, "groupId": -7
        });
        let checked = check(event, None).unwrap();
        assert_eq!(checked["userId"], "42");
        assert_eq!(checked["anonymousId"], "1.5");
        assert_eq!(checked["groupId"], "-7");

        let checked = check(
            json!({"type": "alias", "userId": 1e21, "previousId": 12.0}),
            None,
        )
        .unwrap();
        assert_eq!(checked["userId"], "1e+21", "as JavaScript's String(n)");
        assert_eq!(checked["previousId"], "12");
        let checked = check(json!({"type": "identify", "userId": -0.0}), None).unwrap();
        assert_eq!(checked["userId"], "0");
        // Integers keep every digit, even past 2^53 where JavaScript would round.
        let checked = check(json!({"type": "identify", "userId": u64::MAX}), None).unwrap();
        assert_eq!(checked["userId"], u64::MAX.to_string());
    }

    #[test]
    fn identifiers_of_other_types_are_rejected() {
        let cases = [
            (
                json!({"type": "identify", "userId": true}),
                "userId",
                "userId must be a string or a number, found a boolean",
            ),
            (
                json!({"type": "identify", "userId": "u", "anonymousId": []}),
                "anonymousId",
                "anonymousId must be a string or a number, found an array",
            ),
            (
                json!({"type": "group", "userId": "u", "groupId": {}}),
                "groupId",
                "groupId must be a string or a number, found an object",
            ),
            (
                json!({"type": "alias", "userId": "u", "previousId": false}),
                "previousId",
                "previousId must be a string or a number, found a boolean",
            ),
            (
                json!({"type": "track", "userId": "u", "event": 5}),
                "event",
                "event must be a string, found a number",
            ),
        ];
        for (event, field, message) in cases {
            let err = rejection(event);
            assert_eq!(err.to_string(), message);
            assert_eq!(err.field(), Some(field));
        }
    }

    #[test]
    fn fields_required_by_the_type_are_named() {
        let cases = [
            (
                json!({"type": "track", "userId": "u"}),
                "event",
                "event is required for track calls",
            ),
            (
                json!({"type": "track", "userId": "u", "event": ""}),
                "event",
                "event is required for track calls",
            ),
            (
                json!({"type": "group", "userId": "u"}),
                "groupId",
                "groupId is required for group calls",
            ),
            (
                json!({"type": "group", "userId": "u", "groupId": null}),
                "groupId",
                "groupId is required for group calls",
            ),
            (
                json!({"type": "alias", "userId": "u"}),
                "previousId",
                "previousId is required for alias calls",
            ),
        ];
        for (event, field, message) in cases {
            let err = rejection(event);
            assert_eq!(err.to_string(), message);
            assert_eq!(err.field(), Some(field));
        }
    }

    #[test]
    fn message_id_must_be_a_string_under_100_characters() {
        let at_limit = "m".repeat(99);
        assert!(
            check(
                json!({"type": "identify", "userId": "u", "messageId": at_limit}),
                None
            )
            .is_ok()
        );
        assert!(
            check(
                json!({"type": "identify", "userId": "u", "messageId": null}),
                None
            )
            .is_ok()
        );
        // Characters, not bytes: 99 two-byte characters are fine.
        let wide = "é".repeat(99);
        assert!(
            check(
                json!({"type": "identify", "userId": "u", "messageId": wide}),
                None
            )
            .is_ok()
        );

        let over = "m".repeat(100);
        let err = rejection(json!({"type": "identify", "userId": "u", "messageId": over}));
        assert_eq!(
            err.to_string(),
            "messageId must be under 100 characters, found 100"
        );
        assert_eq!(err.field(), Some("messageId"));

        let err = rejection(json!({"type": "identify", "userId": "u", "messageId": 12}));
        assert_eq!(
            err.to_string(),
            "messageId must be a string, found a number"
        );
    }
}

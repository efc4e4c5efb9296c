//! Properties of the whole pipeline on arbitrary input: parsing and normalising never panic, and
//! every event that comes out of them carries the fields the router relies on.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use junction_event::{
    Endpoint, Event, Limits, MessageType, NormaliseContext, normalise, parse_request,
    write_key_from_basic,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn endpoint() -> impl Strategy<Value = Endpoint> {
    prop_oneof![
        Just(Endpoint::Batch),
        proptest::sample::select(MessageType::ALL.to_vec()).prop_map(Endpoint::Single),
    ]
}

/// Strings that look like timestamps often enough to reach the date arithmetic.
fn timestamp_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?",
        "[0-9]{8}T[0-9]{6}Z",
        ".{0,40}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        timestamp_like().prop_map(Value::String),
        prop_oneof![
            Just("identify"),
            Just("track"),
            Just("group"),
            Just("alias"),
            Just("page"),
            Just("screen"),
            Just("userId"),
            Just("anonymousId"),
            Just("messageId"),
            Just("timestamp"),
            Just("sentAt"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Mostly the names the crate reads, so that arbitrary objects exercise its branches.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "type",
            "userId",
            "anonymousId",
            "event",
            "groupId",
            "previousId",
            "messageId",
            "timestamp",
            "originalTimestamp",
            "sentAt",
            "receivedAt",
            "writeKey",
            "context",
            "integrations",
            "batch",
            "traits",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}",
    ]
}

/// An event that is valid more often than not, with arbitrary time fields.
fn plausible_event() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(MessageType::ALL.to_vec()),
        prop::option::of(timestamp_like()),
        prop::option::of(timestamp_like()),
        prop::option::of(json_value()),
    )
        .prop_map(|(message_type, timestamp, sent_at, extra)| {
            let mut event = json!({
                "type": message_type.as_str(), "userId": "u", "event": "e", "groupId": "g",
                "previousId": "p", "writeKey": "wk",
            });
            if let Some(map) = event.as_object_mut() {
                if let Some(timestamp) = timestamp {
                    map.insert("timestamp".to_owned(), Value::String(timestamp));
                }
                if let Some(sent_at) = sent_at {
                    map.insert("sentAt".to_owned(), Value::String(sent_at));
                }
                if let Some(extra) = extra {
                    map.insert("context".to_owned(), extra);
                }
            }
            event
        })
}

/// Server clocks from 1970 to 9999, and now and then far beyond what a date can hold.
fn received_secs() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..=253_402_300_799,
        1 => 0u64..(1 << 62),
    ]
}

fn check_pipeline(
    endpoint: Endpoint,
    body: &[u8],
    received_secs: u64,
) -> Result<(), TestCaseError> {
    let Ok(parsed) = parse_request(endpoint, body, &Limits::default()) else {
        return Ok(());
    };
    let ctx = NormaliseContext::new(
        UNIX_EPOCH + Duration::from_secs(received_secs),
        parsed.sent_at.as_ref(),
        &|| "generated".to_owned(),
    );
    for mut event in parsed.events.into_iter().flatten() {
        normalise(&mut event, &ctx);
        check_normalised(&event)?;
    }
    Ok(())
}

fn check_normalised(event: &Event) -> Result<(), TestCaseError> {
    prop_assert!(!event.contains_key("writeKey"));
    prop_assert!(junction_event::message_id(event).is_some_and(|id| !id.is_empty()));
    for key in ["timestamp", "receivedAt"] {
        let text = event.get(key).and_then(Value::as_str);
        prop_assert!(
            text.is_some_and(|t| t.len() == 24 && t.ends_with('Z')),
            "{key}: {text:?}"
        );
    }
    prop_assert!(
        event
            .get("sentAt")
            .is_some_and(|sent_at| !sent_at.is_null())
    );
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(endpoint in endpoint(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_pipeline(endpoint, &body, 1_709_294_405)?;
    }

    #[test]
    fn arbitrary_json_never_panics(endpoint in endpoint(), value in json_value(), secs in received_secs()) {
        let body = serde_json::to_vec(&value).unwrap_or_default();
        check_pipeline(endpoint, &body, secs)?;
    }

    #[test]
    fn arbitrary_batches_never_panic(
        items in prop::collection::vec(prop_oneof![plausible_event(), json_value()], 0..12),
        sent_at in prop::option::of(json_value()),
        context in prop::option::of(json_value()),
        secs in received_secs(),
    ) {
        let count = items.len();
        let mut body = json!({"batch": items, "writeKey": "wk"});
        if let Some(map) = body.as_object_mut() {
            if let Some(sent_at) = sent_at {
                map.insert("sentAt".to_owned(), sent_at);
            }
            if let Some(context) = context {
                map.insert("context".to_owned(), context);
            }
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        // A batch that is not refused whole answers for every item, in order.
        if let Ok(parsed) = parse_request(Endpoint::Batch, &body, &Limits::default()) {
            prop_assert_eq!(parsed.events.len(), count);
        }
        check_pipeline(Endpoint::Batch, &body, secs)?;
    }

    #[test]
    fn arbitrary_single_events_never_panic(event in plausible_event(), endpoint in endpoint()) {
        let body = serde_json::to_vec(&event).unwrap_or_default();
        check_pipeline(endpoint, &body, 1_709_294_405)?;
    }

    #[test]
    fn arbitrary_auth_headers_never_panic(header in ".{0,64}", credentials in prop::collection::vec(any::<u8>(), 0..48)) {
        let _ = write_key_from_basic(&header);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&credentials);
        let _ = write_key_from_basic(&format!("Basic {encoded}"));
    }
}

//! A timing smoke test for the hot path (Send Contact payload): run with
//! `cargo test -p junction-fields --release --test performance -- --ignored --nocapture`.
//! Ignored by default: timings on a shared debug build mean nothing.

// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use junction_fields::{Fields, Schema};
use serde_json::{Value, json};

fn send_contact() -> Schema {
    let fields: Fields = serde_json::from_value(json!({
        "type": {"label": "Event Type", "type": "string", "required": true, "unsafe_hidden": true},
        "message_id": {"label": "MessageId", "type": "string", "required": true},
        "timestamp": {"label": "Event Timestamp", "type": "datetime", "required": true},
        "sent_at": {"label": "Sent At", "type": "datetime", "required": true},
        "user_id": {"label": "User Id", "type": "string", "readOnly": true},
        "anonymous_id": {"label": "Anonymous Id", "type": "string", "readOnly": true},
        "email": {"label": "Email", "type": "string", "format": "email"},
        "first_name": {"label": "First Name", "type": "string"},
        "last_name": {"label": "Last Name", "type": "string"},
        "name": {"label": "Full Name", "type": "string"},
        "title": {"label": "Title", "type": "string"},
        "phone": {"label": "Phone Number", "type": "string"},
        "linked_in": {"label": "LinkedIn", "type": "string", "format": "uri"},
        "twitter": {"label": "Twitter (X)", "type": "string"},
        "company": {"label": "Company", "type": "object", "additionalProperties": false,
                    "defaultObjectUI": "keyvalue",
                    "properties": {"id": {"label": "Company Id", "type": "string", "required": true},
                                   "name": {"label": "Company Name", "type": "string"}}}
    }))
    .unwrap();
    Schema::from_fields(&fields)
}

fn payload() -> Value {
    json!({
        "type": "Send Contact", "message_id": "msg-0001",
        "timestamp": "2024-03-01T12:00:00.000Z", "sent_at": "2024-03-01T12:00:01.000Z",
        "user_id": "user-42", "anonymous_id": "anonId1234", "email": "jane@example.com",
        "first_name": "Jane", "last_name": "Doe", "name": "Jane Doe", "title": "CTO",
        "phone": "+1 555 0100", "linked_in": "https://www.linkedin.com/in/jane",
        "twitter": "@jane", "company": {"id": "acme-1", "name": "Acme"}
    })
}

fn per_call(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iterations)
}

#[test]
#[ignore = "timing; run in release with --ignored"]
fn send_contact_validation_speed() {
    let schema = send_contact();
    let mut valid = payload();
    schema.validate(&mut valid).unwrap();
    assert_eq!(valid, payload());

    let validate = per_call(200_000, || {
        black_box(schema.validate(black_box(&mut valid))).unwrap();
    });
    let clone = per_call(200_000, || {
        black_box(payload().clone());
    });
    let source = payload();
    let process = per_call(200_000, || {
        black_box(schema.process(black_box(source.clone()))).unwrap();
    });
    let clone_only = per_call(200_000, || {
        black_box(black_box(&source).clone());
    });
    println!("validate (in place, nothing to change): {validate:.0} ns");
    println!(
        "process (clone + remove empty + validate): {process:.0} ns, of which clone {clone_only:.0} ns"
    );
    println!("(building the payload with json!: {clone:.0} ns)");
}

#[test]
#[ignore = "timing; run in release with --ignored"]
fn format_speed() {
    use junction_fields::check_format;
    for (format, value) in [
        ("date-like", "2024-03-01T12:00:00.000Z"),
        ("email", "jane@example.com"),
        ("uri", "https://www.linkedin.com/in/jane"),
        ("text", "x"),
    ] {
        let t = per_call(500_000, || {
            black_box(check_format(black_box(format), black_box(value)));
        });
        println!("{format}: {t:.0} ns");
    }
}

#[inline(never)]
fn validate_loop(schema: &Schema, payload: &mut Value, times: u32) {
    for _ in 0..times {
        black_box(schema.validate(black_box(&mut *payload))).unwrap();
    }
}

#[inline(never)]
fn process_loop(schema: &Schema, payload: &Value, times: u32) {
    for _ in 0..times {
        black_box(schema.process(black_box(payload.clone()))).unwrap();
    }
}

#[inline(never)]
fn clone_loop(payload: &Value, times: u32) {
    for _ in 0..times {
        black_box(black_box(payload).clone());
    }
}

/// Fixed work for an instruction counter (`valgrind --tool=callgrind
/// --toggle-collect='performance::*_loop'`), which load on the machine does not disturb.
#[test]
#[ignore = "for callgrind"]
fn send_contact_loops() {
    let schema = send_contact();
    let mut valid = payload();
    validate_loop(&schema, &mut valid, 1000);
    process_loop(&schema, &payload(), 1000);
    clone_loop(&payload(), 1000);
}

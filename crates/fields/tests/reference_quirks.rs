//! Behaviours of the reference's validator that the vectors do not pin but real payloads can
//! reach, each checked against Ajv 8.18 / ajv-formats 2.1.1 / dayjs 1.10.7 on Node 20 (the
//! expected values below are what that stack returned).

// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use junction_fields::{Schema, ValidatorOptions, check_format};
use serde_json::{Value, json};

/// Runtime options, Ajv step only: `(payload after validation, messages)`.
fn run(schema: Value, data: Value) -> (Value, Vec<String>) {
    let schema = Schema::from_json_schema_with(&schema, ValidatorOptions::RUNTIME).unwrap();
    let mut data = data;
    let messages = match schema.validate_value(&mut data) {
        Ok(()) => Vec::new(),
        Err(err) => err.messages,
    };
    (data, messages)
}

fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

#[test]
fn one_of_stops_at_the_second_passing_branch() {
    // 3 → "3" (string branch passes), → 3 (number branch passes): the `const` branch never runs.
    let (data, messages) = run(
        object(
            json!({"e": {"title": "E", "oneOf": [{"type": "string"}, {"type": "number"}, {"const": "12"}]}}),
        ),
        json!({"e": 3}),
    );
    assert_eq!(data, json!({"e": 3}));
    assert_eq!(messages, ["E must match exactly one schema in oneOf."]);
}

#[test]
fn a_failed_unwrap_sticks_for_the_rest_of_the_position() {
    // The number branch unwraps ["x"] and fails; the string branch then sees "x" (1 character)
    // while the payload keeps the array.
    let (data, messages) = run(
        object(
            json!({"c": {"title": "C", "anyOf": [{"type": "number"}, {"type": "string", "minLength": 2}]}}),
        ),
        json!({"c": ["x"]}),
    );
    assert_eq!(data, json!({"c": ["x"]}));
    assert_eq!(
        messages,
        [
            "The value at /c must be a number but it was a string.",
            "The value at /c must be 2 characters or more but it was 1 character.",
            "C must match a schema in anyOf."
        ]
    );
}

#[test]
fn items_are_checked_before_uniqueness() {
    let (_, messages) = run(
        object(
            json!({"e": {"title": "E", "type": "array", "uniqueItems": true,
                            "items": {"type": "object", "required": ["k"]}}}),
        ),
        json!({"e": [{}, {}]}),
    );
    assert_eq!(
        messages,
        [
            "The value at /e/0 is missing the required field 'k'.",
            "The value at /e/1 is missing the required field 'k'.",
            "E must be unique but elements 0 and 1 are the same."
        ]
    );
}

#[test]
fn infinity_is_a_number_that_json_sends_as_null() {
    let (data, messages) = run(
        object(json!({"d": {"title": "D", "type": "number", "enum": ["1", 2, null]}})),
        json!({"d": "Infinity"}),
    );
    assert_eq!(data, json!({"d": null}));
    assert_eq!(messages, ["D must be one of: \"1\", 2, or null."]);
}

#[test]
fn array_index_keys_come_first() {
    let (_, messages) = run(
        json!({"type": "object", "required": ["b", "1"],
               "properties": {"b": {"title": "B", "type": "number"}, "1": {"title": "One", "type": "number"}}}),
        json!({"b": "x", "1": "y"}),
    );
    assert_eq!(
        messages,
        [
            "One must be a number but it was a string.",
            "B must be a number but it was a string."
        ]
    );
}

#[test]
fn one_element_arrays_in_datetime_fields() {
    let datetime = || {
        object(json!({"t": {"title": "T", "type": ["string", "number"], "format": "date-like"}}))
    };
    assert_eq!(
        run(datetime(), json!({"t": [1]})),
        (json!({"t": "1"}), vec![])
    );
    let (data, messages) = run(datetime(), json!({"t": [["2024-01-01"]]}));
    assert_eq!(data, json!({"t": [["2024-01-01"]]}));
    assert_eq!(
        messages,
        ["T must be a string or number but it was an array."]
    );
}

#[test]
fn v8_date_parser_details() {
    // Leading zeros do not count towards the nine significant digits: year 170.
    assert!(check_format("date-like", "0000000170"));
    // Non-ASCII white space separates words; the line separator does not.
    assert!(check_format("date-like", "Jan\u{A0}1\u{A0}2024"));
    assert!(!check_format("date-like", "\u{2028}47329"));
    // "-000000" is not a year; "Jan 5" is 5 January 2001 (KJS default year).
    assert!(!check_format("date-like", "-000000"));
    assert!(check_format("date-like", "Jan 5"));
}

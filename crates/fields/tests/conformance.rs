//! The reference's validation vectors (`validation.json`): kinds `payload`,
//! `remove_empty_values` and `ajv_message`, every vector of each kind, all failures reported.

// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use junction_fields::{FieldLabels, Fields, Schema, ValidatorOptions};
use junction_spec_vectors::{Report, Vector, load};
use serde_json::Value;

fn vectors(kind: &str) -> Vec<Vector> {
    load("validation.json")
        .unwrap()
        .into_iter()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some(kind))
        .collect()
}

fn member<'v>(vector: &'v Vector, key: &str) -> Result<&'v Value, String> {
    vector
        .get(key)
        .ok_or_else(|| format!("vector has no {key:?}"))
}

fn check_payload(vector: &Vector) -> Result<(), String> {
    let fields: Fields =
        serde_json::from_value(member(vector, "fields")?.clone()).map_err(|e| e.to_string())?;
    let payload = member(vector, "payload")?.clone();
    let outcome = Schema::from_fields(&fields).process(payload);
    match (
        outcome,
        vector.get("expected_payload"),
        vector.get("expected_error"),
    ) {
        (Ok(got), Some(expected), _) if got == *expected => Ok(()),
        (Ok(got), Some(expected), _) => Err(format!("payload {got} != expected {expected}")),
        (Err(err), _, Some(expected)) => {
            let message = expected.get("message").and_then(Value::as_str);
            if message != Some(err.to_string().as_str()) {
                return Err(format!(
                    "message {:?} != expected {message:?}",
                    err.to_string()
                ));
            }
            let messages: Option<Vec<&str>> = expected
                .get("messages")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).collect());
            match messages {
                Some(list) if list != err.messages => {
                    Err(format!("messages {:?} != expected {list:?}", err.messages))
                }
                _ => Ok(()),
            }
        }
        (Ok(got), None, _) => Err(format!("expected an error, got {got}")),
        (Err(err), _, None) => Err(format!("unexpected error: {err}")),
    }
}

fn check_remove_empty_values(vector: &Vector) -> Result<(), String> {
    let schema = Schema::from_json_schema(member(vector, "schema")?).map_err(|e| e.to_string())?;
    let input = member(vector, "input")?.clone();
    let is_root = vector
        .get("is_root")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let got = schema.remove_empty_values(input, is_root);
    let undefined = vector.get("expected_undefined").and_then(Value::as_bool) == Some(true);
    match (got, vector.get("expected")) {
        (None, _) if undefined => Ok(()),
        (Some(got), Some(expected)) if !undefined && got == *expected => Ok(()),
        (got, expected) => Err(format!(
            "got {got:?}, expected {expected:?} (undefined: {undefined})"
        )),
    }
}

fn check_ajv_message(vector: &Vector) -> Result<(), String> {
    let labels = match vector.get("options").and_then(|o| o.get("fieldLabels")) {
        Some(name) => name
            .as_str()
            .and_then(FieldLabels::from_name)
            .ok_or_else(|| format!("unknown fieldLabels {name}"))?,
        None => FieldLabels::Title,
    };
    let options = ValidatorOptions {
        field_labels: labels,
        ..ValidatorOptions::PLAIN
    };
    let schema = Schema::from_json_schema_with(member(vector, "schema")?, options)
        .map_err(|e| e.to_string())?;
    let mut data = member(vector, "data")?.clone();
    let expected = member(vector, "expected_message")?.as_str();
    match schema.validate_value(&mut data) {
        Ok(()) => Err("no error".into()),
        Err(err) if err.messages.last().map(String::as_str) == expected => Ok(()),
        Err(err) => Err(format!(
            "last message {:?} != {expected:?} (all: {:?})",
            err.messages.last(),
            err.messages
        )),
    }
}

fn run(kind: &str, count: usize, check: fn(&Vector) -> Result<(), String>) {
    let mut report = Report::default();
    for vector in vectors(kind) {
        let outcome = check(&vector);
        report.record(&vector, outcome);
    }
    assert_eq!(report.ran(), count, "number of {kind} vectors");
    report.finish(kind);
}

#[test]
fn payload() {
    run("payload", 104, check_payload);
}

#[test]
fn remove_empty_values() {
    run("remove_empty_values", 15, check_remove_empty_values);
}

#[test]
fn ajv_message() {
    run("ajv_message", 44, check_ajv_message);
}

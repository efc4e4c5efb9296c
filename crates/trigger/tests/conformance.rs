//! Conformance: every `fql.json` vector (parse, generate, evaluate), with Junction's
//! expectation substituted for the deliberate divergences listed in
//! `conformance/divergences/fql.json`. Each test reports every failing vector, not the first.

// Test helpers outside #[test] functions may panic on broken fixtures.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use junction_spec_vectors::{Report, Vector, load};
use junction_trigger::{EvaluateError, Node, Trigger, generate, parse};
use serde_json::{Value, json};

fn vectors(kind: &str) -> Vec<Vector> {
    load("fql.json")
        .expect("fql.json vectors load")
        .into_iter()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some(kind))
        .collect()
}

fn member<'v>(vector: &'v Vector, key: &str) -> Result<&'v Value, String> {
    vector
        .get(key)
        .ok_or_else(|| format!("vector has no {key:?}"))
}

fn node_of(value: &Value) -> Result<Node, String> {
    serde_json::from_value(value.clone()).map_err(|e| format!("AST does not deserialize: {e}"))
}

/// Compares an error with an `expected_error` object: its message, and its name when given.
fn same_error(name: &str, message: &str, expected: &Value) -> Result<(), String> {
    let got = json!({"name": name, "message": message});
    let name_matches = expected.get("name").is_none_or(|n| n == name);
    let message_matches = expected.get("message").and_then(Value::as_str) == Some(message);
    if name_matches && message_matches {
        return Ok(());
    }
    Err(format!("expected error {expected}, got error {got}"))
}

#[test]
fn parse_vectors() {
    let mut report = Report::default();
    for vector in vectors("parse") {
        let outcome = check_parse(&vector);
        report.record(&vector, outcome);
    }
    report.finish("fql parse");
}

fn check_parse(vector: &Vector) -> Result<(), String> {
    let source = member(vector, "fql")?
        .as_str()
        .ok_or("fql is not a string")?;
    let result = parse(source);
    match (
        result,
        vector.get("expected_ast"),
        vector.get("expected_error"),
    ) {
        (Ok(trigger), Some(expected), _) => {
            let got = serde_json::to_value(trigger.ast()).map_err(|e| e.to_string())?;
            if &got == expected {
                return Ok(());
            }
            Err(format!("expected AST {expected}, got {got}"))
        }
        (Ok(trigger), None, _) => Err(format!(
            "expected an error, got AST {}",
            serde_json::to_value(trigger.ast()).unwrap_or_default()
        )),
        (Err(error), _, Some(expected)) => same_error("ParseError", &error.to_string(), expected),
        (Err(error), _, None) => Err(format!("expected an AST, got error {error}")),
    }
}

#[test]
fn generate_vectors() {
    let mut report = Report::default();
    for vector in vectors("generate") {
        let outcome = check_generate(&vector);
        report.record(&vector, outcome);
    }
    report.finish("fql generate");
}

fn check_generate(vector: &Vector) -> Result<(), String> {
    let node = node_of(member(vector, "ast")?)?;
    let result = generate(&node);
    match (result, vector.get("expected_error")) {
        (Err(error), Some(expected)) => {
            // The reference throws a plain `Error`, or re-throws the stored error object.
            let name = match error {
                junction_trigger::GenerateError::ErrorNode { .. } => "(stored error)",
                _ => "Error",
            };
            same_error(name, &error.to_string(), expected)
        }
        (Err(error), None) => Err(format!("expected text, got error {error}")),
        (Ok(text), Some(expected)) => Err(format!("expected error {expected}, got {text:?}")),
        (Ok(text), None) => {
            // The reference returns "" for an empty group; Junction returns no text.
            let expected = vector.get("expected_fql").and_then(Value::as_str);
            let got = text.as_deref().unwrap_or("");
            if expected.unwrap_or("") == got {
                return Ok(());
            }
            Err(format!("expected {expected:?}, got {text:?}"))
        }
    }
}

#[test]
fn evaluate_vectors() {
    let mut report = Report::default();
    for vector in vectors("evaluate") {
        let outcome = check_evaluate(&vector);
        report.record(&vector, outcome);
    }
    report.finish("fql evaluate");
}

fn check_evaluate(vector: &Vector) -> Result<(), String> {
    let trigger = if let Some(source) = vector.get("fql") {
        let source = source.as_str().ok_or("fql is not a string")?;
        // A subscription that does not parse never matches.
        parse(source).ok()
    } else {
        Some(Trigger::from_ast(node_of(member(vector, "ast")?)?))
    };
    // JSON has no `undefined` and the Rust API always receives an event; the closest input, a
    // `null` event, goes through `matches`, which answers "no match" like the reference.
    if vector.get("event_undefined") == Some(&Value::Bool(true)) {
        let matched = trigger.as_ref().is_some_and(|t| t.matches(&Value::Null));
        let expected = vector.get("expected").and_then(Value::as_bool);
        if expected == Some(matched) {
            return Ok(());
        }
        return Err(format!(
            "expected {expected:?} for an undefined event, got {matched}"
        ));
    }
    let event = member(vector, "event")?;
    let Some(trigger) = trigger else {
        let expected = vector.get("expected").and_then(Value::as_bool);
        if expected == Some(false) {
            return Ok(());
        }
        return Err(format!(
            "expected {expected:?}, got a parse error (no match)"
        ));
    };
    let result = trigger.evaluate(event);
    // `matches` is `evaluate` with errors read as "no match".
    if trigger.matches(event) != *result.as_ref().unwrap_or(&false) {
        return Err("matches() disagrees with evaluate()".into());
    }
    match (result, vector.get("expected"), vector.get("expected_error")) {
        (Ok(got), Some(expected), _) if Some(got) == expected.as_bool() => Ok(()),
        (Ok(got), expected, _) => Err(format!("expected {expected:?}, got {got}")),
        (Err(error @ EvaluateError::NullEvent { .. }), _, Some(expected)) => {
            same_error("TypeError", &error.to_string(), expected)
        }
        (Err(error), _, _) => Err(format!("unexpected error {error}")),
    }
}

#[test]
fn default_subscriptions_parse() {
    for source in [r#"type = "identify""#, r#"type = "group""#] {
        assert!(parse(source).is_ok(), "{source}");
    }
}

/// `fql.md` §6: every test-derived parse vector that parses generates back to its own text.
#[test]
fn canonical_parse_vectors_generate_their_text() {
    let mut report = Report::default();
    let upstream = "packages/destination-subscriptions/src/__tests__/fql.test.ts";
    for vector in vectors("parse") {
        let from_upstream = vector.get("source").and_then(Value::as_str) == Some(upstream);
        if !from_upstream || !vector.has("expected_ast") {
            continue;
        }
        let outcome = check_round_trip(&vector);
        report.record(&vector, outcome);
    }
    report.finish("fql canonical round trip");
}

fn check_round_trip(vector: &Vector) -> Result<(), String> {
    let source = member(vector, "fql")?
        .as_str()
        .ok_or("fql is not a string")?;
    let trigger = parse(source).map_err(|e| format!("does not parse: {e}"))?;
    let text = generate(trigger.ast()).map_err(|e| format!("does not generate: {e}"))?;
    if text.as_deref() == Some(source) {
        return Ok(());
    }
    Err(format!("generated {text:?}"))
}

//! Conformance: every `audiences.json` vector (`audiences.md` §5) through the `eval` format,
//! computed both incrementally and from scratch. Outputs are compared as JSON values (numbers
//! numerically), refused definitions by key only. Each test reports every failing vector.

// Test helpers outside #[test] functions may panic on broken fixtures.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use junction_audience::{Method, run_case_with};
use junction_spec_vectors::{Report, Vector};
use serde_json::{Map, Value};

/// The project's copy of the vectors, inside the repository.
fn cases() -> Vec<Vector> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/vectors/audiences.json");
    let text = std::fs::read_to_string(&path).expect("audiences.json is readable");
    let document: Value = serde_json::from_str(&text).expect("audiences.json is JSON");
    document["cases"]
        .as_array()
        .expect("audiences.json has cases")
        .iter()
        .map(|case| {
            let body: Map<String, Value> = case.as_object().expect("a case is an object").clone();
            let name = case["input"]["id"].as_str().unwrap_or_default().to_owned();
            Vector {
                name,
                body,
                divergence: None,
            }
        })
        .collect()
}

/// JSON equality with numbers compared numerically (`1` equals `1.0`, as in the vectors'
/// generator).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

/// An output with each error reduced to its key (messages are informative only).
fn comparable(output: &Value) -> Value {
    let mut output = output.clone();
    if let Some(errors) = output.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors {
            if let Some(object) = error.as_object_mut() {
                object.remove("message");
            }
        }
    }
    output
}

/// Checks one case's output; public to the CLI's test through the same rule.
fn check(vector: &Vector, method: Method) -> Result<(), String> {
    let input = vector.get("input").ok_or("no input")?;
    let expected = vector.get("expected").ok_or("no expected")?;
    let got = run_case_with(input, method);
    if same(&comparable(&got), &comparable(expected)) {
        return Ok(());
    }
    Err(format!(
        "\n  expected {}\n  got      {}",
        comparable(expected),
        comparable(&got)
    ))
}

#[test]
fn every_vector_incrementally() {
    let mut report = Report::default();
    for vector in cases() {
        let outcome = check(&vector, Method::Incremental);
        report.record(&vector, outcome);
    }
    assert_eq!(report.ran(), 400);
    report.finish("audiences (incremental)");
}

#[test]
fn every_vector_from_scratch() {
    let mut report = Report::default();
    for vector in cases() {
        let outcome = check(&vector, Method::FromScratch);
        report.record(&vector, outcome);
    }
    assert_eq!(report.ran(), 400);
    report.finish("audiences (from scratch)");
}

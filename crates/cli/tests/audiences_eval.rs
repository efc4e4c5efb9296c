//! Runs the real `junction audiences eval` binary: every conformance vector of
//! `conformance/vectors/audiences.json` piped through it at once, and the line-level behaviour
//! (malformed lines answered in place, blank lines skipped, no admin flags).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Runs `junction audiences eval` with `input` on stdin and returns the parsed output lines.
fn audiences_eval(input: &str) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["audiences", "eval"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    // Write from another thread so a large input cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// JSON equality with numbers compared numerically (the vectors' generator writes `50.0` where
/// Junction writes `50`).
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

#[test]
fn every_vector_through_the_binary() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/vectors/audiences.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = document["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 400);
    let input: String = cases
        .iter()
        .map(|case| format!("{}\n", case["input"]))
        .collect();
    let outputs = audiences_eval(&input);
    assert_eq!(outputs.len(), cases.len(), "one output line per input line");
    let failures: Vec<String> = cases
        .iter()
        .zip(&outputs)
        .filter(|(case, output)| !same(&comparable(output), &comparable(&case["expected"])))
        .map(|(case, output)| {
            format!(
                "{}:\n  expected {}\n  got      {}",
                case["input"]["id"],
                comparable(&case["expected"]),
                comparable(output)
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_readme_example() {
    let line = json!({"id": "c1", "now": "2026-03-01T00:00:00Z",
        "definitions": [
            {"key": "big_spender", "kind": "audience",
             "query": "event('Order Completed').within(30 days).sum(property('total')) >= 100"},
            {"name": "Last plan", "kind": "trait", "query": "event('Order Completed').last(property('plan'))"},
            {"key": "Bad Key", "kind": "audience", "query": "trait('plan') = 'pro'"}
        ],
        "events": [{"type": "track", "event": "Order Completed", "userId": "u1",
                    "timestamp": "2026-02-20T10:00:00Z", "properties": {"total": 120, "plan": "pro"}}]});
    let out = audiences_eval(&format!("{line}\n"));
    assert_eq!(
        out,
        [json!({"id": "c1",
            "errors": [{"key": "Bad Key", "message": "invalid key \"Bad Key\": must match ^[a-z0-9][a-z0-9_]*$"}],
            "profiles": [{"user_id": ["u1"], "anonymous_id": [], "email": [],
                          "values": {"big_spender": true, "last_plan": "pro"}}]})]
    );
}

#[test]
fn a_malformed_line_is_answered_in_place_and_the_run_goes_on() {
    let input = concat!(
        "{\"id\": \"a\", \"now\": \"2026-03-01T00:00:00Z\"}\n",
        "\n",
        "{not json\n",
        "{\"id\": \"c\", \"now\": \"tomorrow\"}\n",
        "{\"id\": \"d\", \"now\": \"2026-03-01T00:00:00Z\", \"definitions\": {}}\n",
        "{\"id\": \"e\", \"now\": \"2026-03-01T00:00:00Z\"}\n",
    );
    let out = audiences_eval(input);
    assert_eq!(out.len(), 5);
    assert_eq!(out[0], json!({"id": "a", "errors": [], "profiles": []}));
    assert_eq!(out[1]["id"], Value::Null);
    assert!(
        out[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    assert_eq!(out[2]["id"], "c");
    assert!(out[2]["error"].as_str().unwrap().starts_with("invalid now"));
    assert_eq!(out[3]["id"], "d");
    assert!(
        out[3]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid input line")
    );
    assert_eq!(out[4], json!({"id": "e", "errors": [], "profiles": []}));
}

#[test]
fn audiences_eval_takes_no_admin_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["audiences", "eval", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("JSON Lines"), "{help}");
    assert!(!help.contains("--admin-url"), "{help}");
    let refused = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["audiences", "eval", "--admin-url", "http://x"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

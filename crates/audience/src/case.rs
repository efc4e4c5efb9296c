//! The `eval` format (`audiences.md` §5): one input object — `now`, definitions, events — in,
//! one output object — the refused definitions and every profile with its identifiers and
//! values — out. What `junction audiences eval` prints for each line, and what the conformance
//! vectors check.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::ast::Kind;
use crate::check::{DefinitionSpec, Definitions};
use crate::datetime::parse_rfc3339;
use crate::engine::Engine;
use crate::identity::Limits;

/// How [`run_case_with`] computes the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Through the incremental state, as the server does: each event applied as it comes, one
    /// refresh at `now`.
    Incremental,
    /// From scratch over each profile's events.
    FromScratch,
}

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    #[allow(dead_code)] // read from the raw value, so a line that does not parse keeps its id
    id: Value,
    now: String,
    #[serde(default)]
    definitions: Vec<DefinitionSpec>,
    #[serde(default)]
    events: Vec<Value>,
}

/// Runs one input object through the incremental engine and returns its output object; a
/// malformed input gives `{"id", "error"}`.
pub fn run_case(input: &Value) -> Value {
    run_case_with(input, Method::Incremental)
}

/// Runs one input object, computing values with `method`.
pub fn run_case_with(input: &Value, method: Method) -> Value {
    let id = input.get("id").cloned().unwrap_or(Value::Null);
    match run(input, method) {
        Ok(output) => output,
        Err(message) => json!({"id": id, "error": message}),
    }
}

fn run(raw: &Value, method: Method) -> Result<Value, String> {
    let id = raw.get("id").cloned().unwrap_or(Value::Null);
    let input = Input::deserialize(raw).map_err(|err| format!("invalid input line: {err}"))?;
    let now = parse_rfc3339(&input.now).ok_or_else(|| {
        format!(
            "invalid now {:?}: expected an RFC 3339 date-time with Z or an offset",
            input.now
        )
    })?;
    let compiled = Definitions::compile(&input.definitions);
    let errors: Vec<Value> = compiled
        .refused
        .iter()
        .map(|refusal| json!({"key": refusal.key, "message": refusal.error.to_string()}))
        .collect();
    let definitions = compiled.definitions;
    let mut engine = Engine::new(definitions.clone(), Limits::default());
    for event in &input.events {
        engine.ingest(event);
    }
    let values: Vec<Vec<Option<Value>>> = match method {
        Method::Incremental => {
            engine.refresh(now);
            engine
                .profiles()
                .map(|(_, _, values)| values.to_vec())
                .collect()
        }
        Method::FromScratch => engine
            .evaluate_from_scratch(now)
            .into_iter()
            .map(|(_, values)| values)
            .collect(),
    };
    let profiles: Vec<Value> = engine
        .profiles()
        .zip(values)
        .map(|((_, identifiers, _), values)| {
            let mut shown = Map::new();
            for (definition, value) in definitions.list().iter().zip(values) {
                let value = match (definition.kind(), value) {
                    (Kind::Audience, value) => Some(value.unwrap_or(Value::Bool(false))),
                    (Kind::Trait, value) => value,
                };
                if let Some(value) = value {
                    shown.insert(definition.key().to_owned(), value);
                }
            }
            json!({
                "user_id": identifiers.user_id,
                "anonymous_id": identifiers.anonymous_id,
                "email": identifiers.email,
                "values": shown,
            })
        })
        .collect();
    Ok(json!({"id": id, "errors": errors, "profiles": profiles}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_example() {
        let input = json!({"id": "c1", "now": "2026-03-01T00:00:00Z",
            "definitions": [{"key": "big_spender", "kind": "audience",
                "query": "event('Order Completed').within(30 days).sum(property('total')) >= 100"}],
            "events": [{"type": "track", "event": "Order Completed", "userId": "u1",
                "timestamp": "2026-02-20T10:00:00Z", "properties": {"total": 120}}]});
        let expected = json!({"id": "c1", "errors": [],
            "profiles": [{"user_id": ["u1"], "anonymous_id": [], "email": [],
                          "values": {"big_spender": true}}]});
        assert_eq!(run_case(&input), expected);
        assert_eq!(run_case_with(&input, Method::FromScratch), expected);
    }

    #[test]
    fn malformed_lines_keep_their_id() {
        let output = run_case(&json!({"id": 7, "now": "yesterday"}));
        assert_eq!(output["id"], 7);
        assert!(output["error"].as_str().unwrap().starts_with("invalid now"));
        let output = run_case(&json!({"id": "x", "now": "2026-03-01T00:00:00Z", "definitions": 3}));
        assert!(
            output["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid input line")
        );
    }
}

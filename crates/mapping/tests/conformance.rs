//! Conformance: every vector of `mapping-kit.json` (transform, render, flatten, get) and the
//! `mapping` vectors of `validation.json`, with Junction's divergences applied by the loader.

use junction_mapping::MappingError;
use junction_spec_vectors::{Report, Vector, load};
use serde_json::{Value, json};

fn vectors(file: &str, select: impl Fn(&Vector) -> bool) -> Vec<Vector> {
    load(file)
        .unwrap_or_else(|err| panic!("cannot load {file}: {err}"))
        .into_iter()
        .filter(|v| select(v))
        .collect()
}

fn of_fn(name: &'static str) -> impl Fn(&Vector) -> bool {
    move |v| v.get("fn").and_then(Value::as_str) == Some(name)
}

fn member<'v>(vector: &'v Vector, key: &str) -> Result<&'v Value, String> {
    vector
        .get(key)
        .ok_or_else(|| format!("vector has no {key:?}"))
}

/// Compares an outcome with the vector's `expected`, `expected_undefined` or `expected_error`.
fn check(vector: &Vector, outcome: Result<Option<Value>, MappingError>) -> Result<(), String> {
    if let Some(error) = vector.get("expected_error") {
        return check_error(error, outcome);
    }
    let got = outcome.map_err(|err| format!("unexpected error: {err:?}"))?;
    if vector.get("expected_undefined") == Some(&Value::Bool(true)) {
        return match got {
            None => Ok(()),
            Some(v) => Err(format!("expected undefined, got {v}")),
        };
    }
    let expected = member(vector, "expected")?;
    match got {
        Some(v) if &v == expected => Ok(()),
        Some(v) => Err(format!("expected {expected}, got {v}")),
        None => Err(format!("expected {expected}, got undefined")),
    }
}

fn check_error(error: &Value, outcome: Result<Option<Value>, MappingError>) -> Result<(), String> {
    let err = match outcome {
        Ok(v) => return Err(format!("expected error {error}, got {v:?}")),
        Err(err) => err,
    };
    let kind = error.get("kind").and_then(Value::as_str);
    match (kind, &err) {
        (Some("validation"), MappingError::Invalid { messages }) => {
            let expected = error.get("messages").cloned().unwrap_or(Value::Null);
            if json!(messages) == expected {
                Ok(())
            } else {
                Err(format!("expected messages {expected}, got {messages:?}"))
            }
        }
        (Some("runtime"), MappingError::Runtime { message }) => {
            if error.get("match").and_then(Value::as_str) == Some("prefix") {
                let prefix = error
                    .get("message_prefix")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if message.starts_with(prefix) {
                    return Ok(());
                }
                return Err(format!("expected prefix {prefix:?}, got {message:?}"));
            }
            let expected = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if message == expected {
                Ok(())
            } else {
                Err(format!("expected {expected:?}, got {message:?}"))
            }
        }
        _ => Err(format!("expected {error}, got {err:?}")),
    }
}

fn run(area: &str, vectors: &[Vector], case: impl Fn(&Vector) -> Result<(), String>) {
    let mut report = Report::default();
    for vector in vectors {
        report.record(vector, case(vector));
    }
    report.finish(area);
}

#[test]
fn transform_vectors() {
    let vectors = vectors("mapping-kit.json", of_fn("transform"));
    run("mapping-kit transform", &vectors, |v| {
        let mapping = member(v, "mapping")?;
        let input = v.get("input").cloned().unwrap_or_else(|| json!({}));
        check(v, junction_mapping::transform(mapping, &input))
    });
}

#[test]
fn render_vectors() {
    let vectors = vectors("mapping-kit.json", of_fn("render"));
    run("mapping-kit render", &vectors, |v| {
        let template = member(v, "template")?;
        let input = v.get("input").cloned().unwrap_or_else(|| json!({}));
        check(
            v,
            junction_mapping::render(template, &input).map(|s| Some(Value::String(s))),
        )
    });
}

#[test]
fn flatten_vectors() {
    let vectors = vectors("mapping-kit.json", of_fn("flatten"));
    run("mapping-kit flatten", &vectors, |v| {
        let input = member(v, "input")?;
        let prefix = member(v, "prefix")?.as_str().unwrap_or_default();
        let separator = member(v, "separator")?.as_str().unwrap_or_default();
        let omit_arrays = member(v, "omit_arrays")?.as_bool().unwrap_or_default();
        let flat = junction_mapping::flatten(input, prefix, separator, omit_arrays);
        check(v, Ok(Some(flat)))
    });
}

#[test]
fn get_vectors() {
    let vectors = vectors("mapping-kit.json", of_fn("get"));
    run("mapping-kit get", &vectors, |v| {
        let input = member(v, "input")?;
        let path = member(v, "path")?;
        check(v, Ok(junction_mapping::get(input, path)))
    });
}

#[test]
fn validation_vectors() {
    let vectors = vectors("validation.json", |v| {
        v.get("kind").and_then(Value::as_str) == Some("mapping")
    });
    run("validation mapping", &vectors, |v| {
        let mapping = member(v, "mapping")?;
        let messages = junction_mapping::validate(mapping);
        let valid = member(v, "expected_valid")?.as_bool().unwrap_or_default();
        let expected = v
            .get("expected_errors")
            .cloned()
            .unwrap_or_else(|| json!([]));
        match (valid, messages.is_empty()) {
            (true, true) => Ok(()),
            (true, false) => Err(format!("expected valid, got {messages:?}")),
            (false, _) if json!(messages) == expected => Ok(()),
            (false, _) => Err(format!("expected {expected}, got {messages:?}")),
        }
    });
}

#[test]
fn every_mapping_kit_vector_is_covered() {
    let all = load("mapping-kit.json").unwrap();
    let covered = ["transform", "render", "flatten", "get"];
    let uncovered: Vec<_> = all
        .iter()
        .filter(|v| !covered.contains(&v.get("fn").and_then(Value::as_str).unwrap_or_default()))
        .map(|v| v.name.clone())
        .collect();
    assert!(
        uncovered.is_empty(),
        "vectors of no known fn: {uncovered:?}"
    );
    assert_eq!(all.len(), 475);
}

//! Segment's Mapping Kit over `serde_json` values: compile a mapping once (validation, paths,
//! templates), apply it to many events. Pure: no IO.
//!
//! The behaviour, quirks included, is that of the reference described in
//! `shared/spec/mapping-kit.md`; the conformance vectors in `conformance/vectors/` pin it.

mod compile;
mod flatten;
mod js;
mod liquid;
mod out;
mod path;
mod replace;
mod resolve;
mod template;
mod validate;

use serde_json::Value;

use crate::out::{Out, Payload};

/// Why a mapping could not be compiled or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    /// The mapping is invalid; `messages` are the reference's validation messages, in order
    /// (e.g. `/@if/then has an invalid directive: @oops.`).
    #[error("{}", messages.join(" "))]
    Invalid {
        /// Each message, as the reference words it.
        messages: Vec<String>,
    },
    /// An error the reference raises while resolving (exact text), or a Liquid template error
    /// (found when compiling; the engine's message after the reference's prefix may differ).
    #[error("{message}")]
    Runtime {
        /// The message.
        message: String,
    },
}

/// A validated and compiled mapping, ready to be applied to any number of events.
#[derive(Debug, Clone)]
pub struct Mapping {
    root: compile::Node,
}

/// Compiles `mapping`: the reference's object spread of non-object mappings, the
/// `__segment_internal_directive` root directive, validation, then every path, template and
/// Liquid template parsed once.
pub fn compile(mapping: &Value) -> Result<Mapping, MappingError> {
    Ok(Mapping {
        root: compile::compile_mapping(mapping)?,
    })
}

impl Mapping {
    /// Applies the mapping to `data`, which must be a JSON object. `None` is the reference's
    /// `undefined` result (e.g. a top-level `@path` that finds nothing).
    pub fn apply(&self, data: &Value) -> Result<Option<Value>, MappingError> {
        if !data.is_object() {
            return Err(MappingError::Runtime {
                message: format!("data must be an object, got {}", js::real_type(data)),
            });
        }
        resolve::resolve_json(&self.root, Payload::Json(data))
    }
}

/// Compiles `mapping` and applies it to `data` (the reference's `transform`); the data is
/// checked first, as there.
pub fn transform(mapping: &Value, data: &Value) -> Result<Option<Value>, MappingError> {
    if !data.is_object() {
        return Err(MappingError::Runtime {
            message: format!("data must be an object, got {}", js::real_type(data)),
        });
    }
    compile(mapping)?.apply(data)
}

/// Validates `mapping` as given (no object spread, no root directive handling) and returns the
/// reference's messages in order; empty means valid.
pub fn validate(mapping: &Value) -> Vec<String> {
    validate::validate(mapping)
}

/// The `@template` renderer: `{{{ path }}}` then `{{ path }}` placeholders replaced with the
/// values found in `data`.
pub fn render(template: &Value, data: &Value) -> Result<String, MappingError> {
    let Value::String(source) = template else {
        return Err(MappingError::Runtime {
            message: format!(
                "Invalid template! Template should be a \"string\" but {} was given.",
                js::real_type(template)
            ),
        });
    };
    Ok(template::render_str(source, Payload::Json(data)))
}

/// The reference's `get`: `path` is a path string (`a.b[0]['c']`; `""` and `"."` are the root), an
/// array of segments, or `null` (nothing). `None` is `undefined`.
pub fn get(data: &Value, path: &Value) -> Option<Value> {
    let spec = match path {
        Value::String(p) => path::parse_path(p),
        Value::Array(segments) => {
            let segs = segments
                .iter()
                .map(|segment| {
                    let mut key = String::new();
                    junction_js::push_js_string(segment, &mut key);
                    path::Seg::new(&key)
                })
                .collect();
            path::PathSpec::Segs(segs)
        }
        _ => return None,
    };
    resolve::get_value(data, &spec)
}

/// The reference's `flattenObject(value, prefix, separator, omitArrays)`.
pub fn flatten(value: &Value, prefix: &str, separator: &str, omit_arrays: bool) -> Value {
    let flat = flatten::flatten_with_prefix(Out::Ref(value), prefix, separator, omit_arrays);
    out::materialize(flat).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_mappings_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mapping>();
        assert_send_sync::<MappingError>();
    }

    #[test]
    fn invalid_error_joins_messages() {
        let err = compile(&serde_json::json!({"a": {"@oops": 1}, "b": {"@x": 2}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/a has an invalid directive: @oops. /b has an invalid directive: @x."
        );
    }

    #[test]
    fn liquid_errors_surface_when_compiling() {
        let mapping = serde_json::json!({"a": [{"@liquid": "{% for x in y %}"}]});
        assert_eq!(
            compile(&mapping).unwrap_err(),
            MappingError::Runtime {
                message: "tag \"for\" is disabled".into()
            }
        );
    }
}

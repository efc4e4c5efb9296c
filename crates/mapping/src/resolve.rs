//! Resolution: runs a compiled mapping against a payload, directive by directive, in the order
//! the reference evaluates (and fails) them.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::MappingError;
use crate::compile::{
    ArrayRoot, CaseOperator, Directive, JsonMode, Node, ObjectNode, PathArg, Replace, TemplateArg,
};
use crate::flatten;
use crate::js;
use crate::out::{self, Found, ObjBuilder, Out, Payload};
use crate::path;
use crate::template;

fn runtime(message: impl Into<String>) -> MappingError {
    MappingError::Runtime {
        message: message.into(),
    }
}

/// Resolves `node` against `payload`.
pub(crate) fn resolve<'a>(node: &'a Node, payload: Payload<'a>) -> Result<Out<'a>, MappingError> {
    match node {
        Node::Raw(value) => Ok(Out::Ref(value)),
        Node::Array(items) => items
            .iter()
            .map(|item| resolve(item, payload))
            .collect::<Result<Vec<_>, _>>()
            .map(Out::Arr),
        Node::Object(object) => {
            let mut entries = Vec::with_capacity(object.members.len());
            let mut siblings = path::Siblings::default();
            for member in &object.members {
                let value = match member.static_path() {
                    Some(spec) => siblings
                        .lookup(payload, spec, member.same_parent)
                        .into_out(),
                    None => resolve(&member.node, payload)?,
                };
                entries.push((Cow::Borrowed(member.key.as_str()), value));
            }
            Ok(Out::Obj(entries))
        }
        Node::Directive(directive) => run(directive, payload),
    }
}

/// `materialize(resolve(node, payload))` without the intermediate form where the mapping gives
/// the shape: objects start from their compiled template and members are converted as they are
/// resolved. Members are resolved in the same order, so the same error comes first.
pub(crate) fn resolve_json(
    node: &Node,
    payload: Payload<'_>,
) -> Result<Option<Value>, MappingError> {
    match node {
        Node::Raw(value) => Ok(Some(value.clone())),
        Node::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(resolve_json(item, payload)?.unwrap_or(Value::Null));
            }
            Ok(Some(Value::Array(values)))
        }
        Node::Object(object) => resolve_object_json(object, payload),
        Node::Directive(directive) => run(directive, payload).map(out::materialize),
    }
}

fn resolve_object_json(
    object: &ObjectNode,
    payload: Payload<'_>,
) -> Result<Option<Value>, MappingError> {
    let mut map = object.template.clone();
    if map.len() != object.members.len() {
        // Unreachable (member keys are unique), but the slots below rely on it.
        return resolve(&Node::Object(object.clone()), payload).map(out::materialize);
    }
    // Absent members (JS `undefined`) are removed at the end, as `removeUndefined` does.
    let mut absent: Vec<usize> = Vec::new();
    let mut siblings = path::Siblings::default();
    for (i, (member, slot)) in object.members.iter().zip(map.values_mut()).enumerate() {
        let value = match member.static_path() {
            Some(spec) => siblings
                .lookup(payload, spec, member.same_parent)
                .into_value(),
            None => resolve_json(&member.node, payload)?,
        };
        match value {
            Some(value) => *slot = value,
            None => absent.push(i),
        }
    }
    if !absent.is_empty() {
        // `retain` visits the members in order and rebuilds the index from the stored hashes.
        let (mut position, mut next) = (0, absent.iter().peekable());
        map.retain(|_, _| {
            let keep = next.next_if_eq(&&position).is_none();
            position += 1;
            keep
        });
    }
    Ok(Some(Value::Object(map)))
}

fn resolve_opt<'a>(node: Option<&'a Node>, payload: Payload<'a>) -> Result<Out<'a>, MappingError> {
    match node {
        Some(node) => resolve(node, payload),
        None => Ok(Out::Absent),
    }
}

fn run<'a>(directive: &'a Directive, payload: Payload<'a>) -> Result<Out<'a>, MappingError> {
    match directive {
        Directive::Fail(message) => Err(runtime(message.as_str())),
        Directive::If {
            exists,
            blank,
            then,
            otherwise,
        } => run_if(exists, blank, then, otherwise, payload),
        Directive::Case { operator, value } => run_case(*operator, value.as_ref(), payload),
        Directive::Replace(replace) => run_replace(replace, payload),
        Directive::ArrayPath { root, shape } => run_array_path(root, shape.as_ref(), payload),
        Directive::Path(arg) => match arg {
            PathArg::Static(spec) => Ok(path::lookup(payload, spec).into_out()),
            PathArg::Dynamic(node) => {
                let resolved = resolve(node, payload)?;
                let Some(p) = resolved.as_str() else {
                    return Err(runtime(format!(
                        "@path: expected string, got {}",
                        resolved.type_name()
                    )));
                };
                let spec = path::parse_path(&path::strip_dollar_dot(p));
                Ok(path::lookup(payload, &spec).into_out())
            }
        },
        Directive::Template(arg) => match arg {
            TemplateArg::Static(t) => Ok(Out::Own(Value::String(t.render(payload)))),
            TemplateArg::Dynamic(node) => {
                let resolved = resolve(node, payload)?;
                let Some(t) = resolved.as_str() else {
                    return Err(runtime(format!(
                        "@template: expected string, got {}",
                        resolved.type_name()
                    )));
                };
                Ok(Out::Own(Value::String(template::render_str(t, payload))))
            }
        },
        Directive::Literal(node) => resolve(node, payload),
        Directive::Flatten {
            separator,
            value,
            omit_arrays,
        } => {
            let separator = resolve(separator, payload)?;
            let Some(separator) = separator.as_str() else {
                return Err(runtime("@flatten requires a string separator"));
            };
            let value = resolve_opt(value.as_ref(), payload)?;
            Ok(flatten::flatten_out(value, separator, *omit_arrays))
        }
        Directive::Json { mode, value } => run_json(*mode, value, payload),
        Directive::Merge { direction, objects } => run_merge(direction, objects, payload),
        Directive::Transform { apply, mapping } => run_transform(apply, mapping, payload),
        Directive::ExcludeWhenNull(node) => {
            let resolved = resolve(node, payload)?;
            if resolved.is_null() {
                return Ok(Out::Absent);
            }
            Ok(exclude_nulls(resolved))
        }
        Directive::Liquid(template) => template.render(payload).map(|s| Out::Own(Value::String(s))),
    }
}

fn run_if<'a>(
    exists: &'a Option<Node>,
    blank: &'a Option<Node>,
    then: &'a Option<Node>,
    otherwise: &'a Option<Node>,
    payload: Payload<'a>,
) -> Result<Out<'a>, MappingError> {
    let condition = if let Some(exists) = exists {
        !resolve(exists, payload)?.is_nullish()
    } else if let Some(blank) = blank {
        let value = resolve(blank, payload)?;
        !value.is_nullish() && !value.is_loosely_blank()
    } else {
        false
    };
    match (condition, then, otherwise) {
        (true, Some(then), _) => resolve(then, payload),
        (false, _, Some(otherwise)) => resolve(otherwise, payload),
        _ => Ok(Out::Absent),
    }
}

fn run_case<'a>(
    operator: CaseOperator,
    value: Option<&'a Node>,
    payload: Payload<'a>,
) -> Result<Out<'a>, MappingError> {
    let Some(value) = value else {
        return Ok(Out::Absent);
    };
    let resolved = resolve(value, payload)?;
    let Some(s) = resolved.as_str() else {
        return Ok(resolved);
    };
    let cased = match operator {
        CaseOperator::Lower => s.to_lowercase(),
        CaseOperator::Upper => s.to_uppercase(),
        CaseOperator::Other => {
            return Err(runtime(
                "operator key should have a value of \"lower\" or \"upper\"",
            ));
        }
    };
    Ok(Out::Own(Value::String(cased)))
}

fn run_replace<'a>(replace: &'a Replace, payload: Payload<'a>) -> Result<Out<'a>, MappingError> {
    let Some(value) = &replace.value else {
        return Ok(Out::Absent);
    };
    let resolved = resolve(value, payload)?;
    let text: Cow<'_, str> = match resolved.json() {
        Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Some(v @ (Value::Bool(_) | Value::Number(_))) => {
            let mut s = String::new();
            junction_js::push_js_string(v, &mut s);
            Cow::Owned(s)
        }
        // Anything else (missing, null, objects) gives an empty string, not absent.
        _ => return Ok(Out::Own(Value::String(String::new()))),
    };
    let Some(first) = &replace.first else {
        return Ok(Out::Own(Value::String(String::new())));
    };
    let first = first.as_ref().map_err(|m| runtime(m.as_str()))?;
    let mut replaced = first.apply(&text);
    if let Some(second) = &replace.second {
        let second = second.as_ref().map_err(|m| runtime(m.as_str()))?;
        replaced = second.apply(&replaced);
    }
    Ok(Out::Own(Value::String(replaced)))
}

fn run_array_path<'a>(
    root: &'a ArrayRoot,
    shape: Option<&'a Node>,
    payload: Payload<'a>,
) -> Result<Out<'a>, MappingError> {
    let root = match root {
        ArrayRoot::Lookup(spec) => path::lookup(payload, spec).into_out(),
        ArrayRoot::Resolve(node) => resolve(node, payload)?,
        ArrayRoot::Absent => Out::Absent,
    };
    let Some(shape) = shape else {
        return Ok(root);
    };
    if !root.is_container() {
        return Ok(root);
    }
    // Each item is the payload of the shape. Items borrowed from the event need no copy; items
    // of a computed root live only here, so their results are detached.
    match root {
        Out::Ref(Value::Array(items)) => items
            .iter()
            .map(|item| resolve(shape, Payload::Json(item)))
            .collect::<Result<Vec<_>, _>>()
            .map(Out::Arr),
        Out::Ref(object) => Ok(Out::Arr(vec![resolve(shape, Payload::Json(object))?])),
        computed => {
            let results = match &computed {
                Out::Own(Value::Array(items)) => items
                    .iter()
                    .map(|item| resolve(shape, Payload::Json(item)).map(Out::into_static))
                    .collect::<Result<Vec<_>, _>>()?,
                Out::Arr(items) => items
                    .iter()
                    .map(|item| resolve(shape, item.payload()).map(Out::into_static))
                    .collect::<Result<Vec<_>, _>>()?,
                single => vec![resolve(shape, single.payload())?.into_static()],
            };
            Ok(Out::Arr(results))
        }
    }
}

fn run_json<'a>(
    mode: JsonMode,
    value: &'a Node,
    payload: Payload<'a>,
) -> Result<Out<'a>, MappingError> {
    let resolved = resolve(value, payload)?;
    match mode {
        JsonMode::Encode => Ok(out::json_stringify(&resolved)
            .map(|s| Out::Own(Value::String(s)))
            .unwrap_or(Out::Absent)),
        JsonMode::Decode => {
            let Some(text) = resolved.as_str() else {
                return Ok(resolved);
            };
            match serde_json::from_str::<Value>(text) {
                Ok(decoded) => Ok(Out::Own(decoded)),
                Err(_) => Ok(resolved),
            }
        }
        JsonMode::Other => Ok(Out::Absent),
    }
}

fn run_merge<'a>(
    direction: &'a Node,
    objects: &'a Result<Vec<Node>, String>,
    payload: Payload<'a>,
) -> Result<Out<'a>, MappingError> {
    let direction = resolve(direction, payload)?;
    let objects = objects.as_ref().map_err(|m| runtime(m.as_str()))?;
    let mut resolved = objects
        .iter()
        .map(|object| resolve(object, payload))
        .collect::<Result<Vec<_>, _>>()?;
    if direction.as_str() == Some("left") {
        resolved.reverse();
    }
    let mut merged = ObjBuilder::default();
    for source in resolved {
        assign(&mut merged, source);
    }
    Ok(merged.finish())
}

/// `Object.assign(target, source)`: own enumerable properties, absent values included; strings
/// and arrays contribute their indexes.
fn assign<'a>(target: &mut ObjBuilder<'a>, source: Out<'a>) {
    match source {
        Out::Absent => {}
        Out::Ref(value) => match value {
            Value::Object(map) => {
                for (k, v) in map {
                    target.insert(Cow::Borrowed(k.as_str()), Out::Ref(v));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    target.insert(Cow::Owned(i.to_string()), Out::Ref(item));
                }
            }
            other => assign_scalar(target, other),
        },
        Out::Own(value) => match value {
            Value::Object(map) => {
                for (k, v) in map {
                    target.insert(Cow::Owned(k), Out::Own(v));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    target.insert(Cow::Owned(i.to_string()), Out::Own(item));
                }
            }
            other => assign_scalar(target, &other),
        },
        Out::Arr(items) => {
            for (i, item) in items.into_iter().enumerate() {
                target.insert(Cow::Owned(i.to_string()), item);
            }
        }
        Out::Obj(entries) => {
            for (k, v) in entries {
                target.insert(k, v);
            }
        }
    }
}

fn assign_scalar<'a>(target: &mut ObjBuilder<'a>, value: &Value) {
    if let Value::String(s) = value {
        for (i, unit) in js::utf16_units(s).into_iter().enumerate() {
            target.insert(Cow::Owned(i.to_string()), Out::Own(Value::String(unit)));
        }
    }
}

fn run_transform<'a>(
    apply: &'a Result<Box<Node>, MappingError>,
    mapping: &'a Node,
    payload: Payload<'a>,
) -> Result<Out<'a>, MappingError> {
    // The nested `transform(apply, payload)`: its data check, then its own resolution and
    // cleaning; a missing payload is its default `{}`.
    let empty = Value::Object(Map::new());
    let data = match payload {
        Payload::Absent => Payload::Json(&empty),
        other => other,
    };
    if data.type_name() != "object" {
        return Err(runtime(format!(
            "data must be an object, got {}",
            data.type_name()
        )));
    }
    let apply = apply.as_ref().map_err(Clone::clone)?;
    let new_payload = out::clean(resolve(apply, data)?);
    let result = resolve(mapping, new_payload.payload())?;
    Ok(result.into_static())
}

/// `@excludeWhenNull` on a non-null value: `null` members of plain objects become absent,
/// recursively through nested plain objects (arrays are left alone).
fn exclude_nulls(value: Out<'_>) -> Out<'_> {
    match value {
        Out::Ref(Value::Object(map)) => Out::Obj(
            map.iter()
                .map(|(k, v)| {
                    let member = match v {
                        Value::Null => Out::Absent,
                        Value::Object(_) => exclude_nulls(Out::Ref(v)),
                        _ => Out::Ref(v),
                    };
                    (Cow::Borrowed(k.as_str()), member)
                })
                .collect(),
        ),
        Out::Own(Value::Object(map)) => Out::Obj(
            map.into_iter()
                .map(|(k, v)| {
                    let member = match v {
                        Value::Null => Out::Absent,
                        object @ Value::Object(_) => exclude_nulls(Out::Own(object)),
                        other => Out::Own(other),
                    };
                    (Cow::Owned(k), member)
                })
                .collect(),
        ),
        Out::Obj(entries) => Out::Obj(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let member = if v.is_null() {
                        Out::Absent
                    } else if v.type_name() == "object" {
                        exclude_nulls(v)
                    } else {
                        v
                    };
                    (k, member)
                })
                .collect(),
        ),
        other => other,
    }
}

/// Walks to `spec` from `payload` (public `get`).
pub(crate) fn get_value(data: &Value, spec: &path::PathSpec) -> Option<Value> {
    let found: Found<'_> = path::lookup(Payload::Json(data), spec);
    found.to_value()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    fn run(mapping: Value, data: Value) -> Result<Option<Value>, crate::MappingError> {
        crate::transform(&mapping, &data)
    }

    /// Sibling paths, some under the same parent, against payloads where that parent is
    /// missing, falsy, a string, an array or an object: each member must be what the public
    /// `get` (a lookup from the root, nothing shared) finds, absent members dropped in place.
    #[test]
    fn sibling_paths_match_independent_lookups() {
        let paths = [
            ("a", "$.t.x"),
            ("b", "$.t.y"),
            ("c", "$.t.length"),
            ("d", "$.t.0"),
            ("e", "$.u"),
            ("f", "$.t.x"),
            ("g", "$.t.z.w"),
            ("h", "$.t.z.v"),
            ("i", "$."),
            ("j", "$.t.y"),
        ];
        let mapping: serde_json::Map<String, Value> = paths
            .iter()
            .map(|(key, path)| ((*key).to_owned(), json!({"@path": path})))
            .collect();
        let mapping = Value::Object(mapping);
        let compiled = crate::compile(&mapping).unwrap();
        for t in [
            json!(null),
            json!(0),
            json!(""),
            json!("str"),
            json!([5, 6]),
            json!({"x": 1, "y": null, "z": {"w": false, "v": "v"}}),
            json!({"x": 0, "z": 0}),
            json!({"z": "ab"}),
        ] {
            for data in [json!({"t": t.clone(), "u": 1}), json!({"u": t.clone()})] {
                let expected: serde_json::Map<String, Value> = paths
                    .iter()
                    .filter_map(|(key, path)| {
                        let path = json!(path.replacen("$.", "", 1));
                        crate::get(&data, &path).map(|v| ((*key).to_owned(), v))
                    })
                    .collect();
                let expected = Value::Object(expected);
                let got = compiled.apply(&data).unwrap().unwrap();
                assert_eq!(got, expected, "{data}");
                // Key order matters on the wire.
                assert_eq!(got.to_string(), expected.to_string(), "{data}");
                // The same object resolved where the intermediate form is kept.
                let merged = json!({"@merge": {"direction": "right", "objects": [mapping]}});
                let merged = run(merged, data.clone()).unwrap().unwrap();
                assert_eq!(merged.to_string(), expected.to_string(), "{data}");
            }
        }
    }

    #[test]
    fn absent_members_are_dropped_wherever_they_are() {
        let mapping = json!({
            "first": {"@path": "$.missing"},
            "a": {"@path": "$.a"},
            "middle": {"@path": "$.missing"},
            "nested": {"x": {"@path": "$.missing"}, "y": {"@path": "$.a"}, "z": {"@path": "$.no"}},
            "list": [{"@path": "$.missing"}, {"@path": "$.a"}, 3],
            "raw": {"k": [1, 2]},
            "last": {"@path": "$.missing"}
        });
        let got = run(mapping, json!({"a": "A"})).unwrap().unwrap();
        assert_eq!(
            got.to_string(),
            r#"{"a":"A","nested":{"y":"A"},"list":[null,"A",3],"raw":{"k":[1,2]}}"#
        );
        let mapping = json!({"x": {"@path": "$.missing"}, "y": {"@path": "$.missing"}});
        assert_eq!(run(mapping, json!({})).unwrap(), Some(json!({})));
    }

    #[test]
    fn errors_stop_at_the_first_failing_member() {
        let mapping = json!({
            "a": {"@path": "$.a"},
            "b": {"@template": {"@path": "$.a"}},
            "c": {"@case": {"operator": "oops", "value": "x"}}
        });
        assert_eq!(
            run(mapping, json!({"a": 1})).unwrap_err().to_string(),
            "@template: expected string, got number"
        );
    }

    #[test]
    fn merge_absent_member_from_exclude_when_null_removes_earlier_value() {
        let mapping = json!({"@merge": {"direction": "right", "objects": [
            {"a": 1, "b": 2},
            {"@excludeWhenNull": {"@path": "$.o"}}
        ]}});
        assert_eq!(
            run(mapping, json!({"o": {"a": null}})).unwrap(),
            Some(json!({"b": 2}))
        );
    }

    #[test]
    fn merge_array_absent_slot_overwrites() {
        let mapping = json!({"@merge": {"direction": "right", "objects": [
            {"0": "x"},
            {"@literal": [{"@path": "$.missing"}]}
        ]}});
        assert_eq!(run(mapping, json!({})).unwrap(), Some(json!({})));
    }

    #[test]
    fn transform_payload_keeps_absent_array_slots() {
        let mapping = json!({"@transform": {
            "apply": {"a": [{"@path": "$.missing"}, 1]},
            "mapping": {"x": {"@path": "$.a.0"}, "y": {"@path": "$.a.1"}, "n": {"@path": "$.a.length"}}
        }});
        assert_eq!(
            run(mapping, json!({})).unwrap(),
            Some(json!({"y": 1, "n": 2}))
        );
    }

    #[test]
    fn array_path_over_a_computed_root() {
        let mapping = json!({"@arrayPath": [
            {"@literal": [{"b": 1}, {"b": {"@path": "$.v"}}]},
            {"x": {"@path": "$.b"}}
        ]});
        assert_eq!(
            run(mapping, json!({"v": 2})).unwrap(),
            Some(json!([{"x": 1}, {"x": 2}]))
        );
    }

    #[test]
    fn array_path_items_are_any_payload() {
        let mapping = json!({"@arrayPath": ["$.a", {"x": {"@path": "$.b"}}]});
        assert_eq!(
            run(mapping, json!({"a": [null, 1, "s"]})).unwrap(),
            Some(json!([{"x": null}, {}, {}]))
        );
        let nested = json!({"@arrayPath": ["$.a", {"t": {"@transform": {"apply": {}, "mapping": {"k": 1}}}}]});
        assert_eq!(
            run(nested, json!({"a": [1]})).unwrap_err(),
            crate::MappingError::Runtime {
                message: "data must be an object, got number".into()
            }
        );
    }

    #[test]
    fn nested_transform_with_missing_payload_uses_empty_object() {
        let mapping = json!({"@transform": {
            "apply": {"@path": "$.missing"},
            "mapping": {"@transform": {"apply": {"k": 1}, "mapping": {"@path": "$.k"}}}
        }});
        assert_eq!(run(mapping, json!({})).unwrap(), Some(json!(1)));
    }

    #[test]
    fn flatten_absent_array_slot_is_dropped() {
        let mapping = json!({"@flatten": {"value": [{"@path": "$.missing"}, 1], "separator": "."}});
        assert_eq!(run(mapping, json!({})).unwrap(), Some(json!({"1": 1})));
    }

    #[test]
    fn unvalidated_directives_in_raw_arrays_fail_when_run() {
        let cases = [
            (json!([{"@path": 5}]), "@path: expected string, got number"),
            (
                json!([{"@if": 1}]),
                "@if requires an object with an \"exists\" key",
            ),
            (
                json!([{"@arrayPath": "x"}]),
                "@arrayPath expected array, got string",
            ),
            (
                json!([{"@merge": {"direction": "left", "objects": "x"}}]),
                "@merge: expected opts.array, got string",
            ),
            (
                json!([{"@liquid": 5}]),
                "liquid template value must be a string",
            ),
            (
                json!([{"@replace": {"pattern": "a", "value": "a", "replacement": "01234567890"}}]),
                "@replace requires a \"replacement\" less than 10 characters",
            ),
        ];
        for (array, message) in cases {
            let err = run(json!({"a": array}), json!({})).unwrap_err();
            assert_eq!(
                err,
                crate::MappingError::Runtime {
                    message: message.into()
                }
            );
        }
    }

    #[test]
    fn case_and_replace_edge_values() {
        assert_eq!(
            run(
                json!({"@case": {"operator": "upper", "value": {"@path": "$.a"}}}),
                json!({"a": [1]})
            )
            .unwrap(),
            Some(json!([1]))
        );
        assert_eq!(
            run(
                json!({"@replace": {"pattern": "😀", "value": "a😀b", "replacement": "-"}}),
                json!({})
            )
            .unwrap(),
            Some(json!("a-b"))
        );
    }
}

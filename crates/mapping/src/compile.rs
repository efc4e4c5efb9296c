//! Compilation: the reference's mapping preparation (object spread, root directive), validation,
//! and the translation of every directive into a [`Node`] whose option checks, paths, templates
//! and Liquid templates are done once. Option problems the reference only reports when the
//! directive runs become [`Directive::Fail`], raised at that moment.

use serde_json::{Map, Value};

use crate::MappingError;
use crate::js;
use crate::liquid::LiquidTemplate;
use crate::path::{self, PathSpec};
use crate::replace::Pair;
use crate::template::Template;
use crate::validate;

/// The key of the root directive.
const ROOT_DIRECTIVE_KEY: &str = "__segment_internal_directive";

/// A compiled mapping node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A value returned as it is (a scalar, or a subtree without any directive).
    Raw(Value),
    /// An array whose elements are resolved.
    Array(Vec<Node>),
    /// An object whose members are resolved.
    Object(ObjectNode),
    /// A directive.
    Directive(Box<Directive>),
}

/// An object of the mapping with at least one member to resolve.
#[derive(Debug, Clone)]
pub(crate) struct ObjectNode {
    /// The members, in the mapping's order (keys are unique).
    pub(crate) members: Vec<Member>,
    /// The output object with every member's key and `null` values. Cloning it copies the key
    /// index, where building the object afresh hashes every key with serde_json's SipHash on
    /// every event.
    pub(crate) template: Map<String, Value>,
}

/// One member of an [`ObjectNode`].
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) key: String,
    pub(crate) node: Node,
    /// The member is a static `@path` with the same parent path as the previous static `@path`
    /// member, so the walk to that parent can be reused (`$.traits.name` after
    /// `$.traits.email`).
    pub(crate) same_parent: bool,
}

impl Member {
    /// The path when the member is a static `@path`.
    pub(crate) fn static_path(&self) -> Option<&PathSpec> {
        match &self.node {
            Node::Directive(directive) => match &**directive {
                Directive::Path(PathArg::Static(spec)) => Some(spec),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Pairs each member with whether it shares its parent path with the previous static `@path`.
fn object_node(members: Vec<(String, Node)>) -> ObjectNode {
    let template = members
        .iter()
        .map(|(key, _)| (key.clone(), Value::Null))
        .collect();
    let mut previous_parent: Option<Box<[path::Seg]>> = None;
    let members = members
        .into_iter()
        .map(|(key, node)| {
            let mut member = Member {
                key,
                node,
                same_parent: false,
            };
            if let Some(spec) = member.static_path() {
                let parent = path::parent_segs(spec);
                let same_parent = parent.is_some() && parent == previous_parent.as_deref();
                previous_parent = parent.map(Box::from);
                member.same_parent = same_parent;
            }
            member
        })
        .collect();
    ObjectNode { members, template }
}

/// A compiled directive.
#[derive(Debug, Clone)]
pub(crate) enum Directive {
    /// Raises this runtime error when run.
    Fail(String),
    /// `@if`; `otherwise` is only kept when the reference would use it (truthy `else`).
    If {
        exists: Option<Node>,
        blank: Option<Node>,
        then: Option<Node>,
        otherwise: Option<Node>,
    },
    /// `@case`; `value` is `None` when falsy.
    Case {
        operator: CaseOperator,
        value: Option<Node>,
    },
    /// `@replace`.
    Replace(Replace),
    /// `@arrayPath`.
    ArrayPath {
        root: ArrayRoot,
        shape: Option<Node>,
    },
    /// `@path`.
    Path(PathArg),
    /// `@template`.
    Template(TemplateArg),
    /// `@literal`.
    Literal(Node),
    /// `@flatten`.
    Flatten {
        separator: Node,
        value: Option<Node>,
        omit_arrays: bool,
    },
    /// `@json`.
    Json { mode: JsonMode, value: Node },
    /// `@merge`; `objects` holds the error the reference raises after resolving `direction`.
    Merge {
        direction: Node,
        objects: Result<Vec<Node>, String>,
    },
    /// `@transform`; `apply` holds the error its nested transform raises.
    Transform {
        apply: Result<Box<Node>, MappingError>,
        mapping: Node,
    },
    /// `@excludeWhenNull`.
    ExcludeWhenNull(Node),
    /// `@liquid`.
    Liquid(LiquidTemplate),
}

/// `@case` operator.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CaseOperator {
    Lower,
    Upper,
    Other,
}

/// `@replace` options.
#[derive(Debug, Clone)]
pub(crate) struct Replace {
    /// `None` when `value` is falsy: the directive then yields absent.
    pub(crate) value: Option<Node>,
    /// `None` when an option has the wrong type: the directive then yields `""`.
    pub(crate) first: Option<Result<Pair, String>>,
    /// The `pattern2`/`replacement2` pair when both are usable strings.
    pub(crate) second: Option<Result<Pair, String>>,
}

/// Where `@arrayPath` finds its root.
#[derive(Debug, Clone)]
pub(crate) enum ArrayRoot {
    /// A path string.
    Lookup(PathSpec),
    /// Anything else, resolved.
    Resolve(Node),
    /// No first element.
    Absent,
}

/// The argument of `@path`.
#[derive(Debug, Clone)]
pub(crate) enum PathArg {
    /// A literal path, parsed.
    Static(PathSpec),
    /// A path computed at run time.
    Dynamic(Node),
}

/// The argument of `@template`.
#[derive(Debug, Clone)]
pub(crate) enum TemplateArg {
    /// A literal template, parsed.
    Static(Template),
    /// A template computed at run time.
    Dynamic(Node),
}

/// `@json` mode.
#[derive(Debug, Clone, Copy)]
pub(crate) enum JsonMode {
    Encode,
    Decode,
    Other,
}

/// Prepares, validates and compiles a top-level mapping.
pub(crate) fn compile_mapping(mapping: &Value) -> Result<Node, MappingError> {
    compile_node(&prepare_and_validate(mapping)?)
}

fn prepare_and_validate(mapping: &Value) -> Result<Value, MappingError> {
    let prepared = prepare(mapping)?;
    let messages = validate::validate(&prepared);
    if !messages.is_empty() {
        return Err(MappingError::Invalid { messages });
    }
    Ok(prepared)
}

fn runtime(message: impl Into<String>) -> MappingError {
    MappingError::Runtime {
        message: message.into(),
    }
}

/// The reference's `getMappingToProcess`: an object spread of the mapping, or the root directive
/// with the other keys injected as its `mapping` option.
fn prepare(mapping: &Value) -> Result<Value, MappingError> {
    let spread = match mapping {
        Value::Null => return Err(runtime("Cannot convert undefined or null to object")),
        Value::Object(map) if map.contains_key(ROOT_DIRECTIVE_KEY) => {
            return prepare_root_directive(map);
        }
        Value::Object(map) => map.clone(),
        Value::String(s) => js::utf16_units(s)
            .into_iter()
            .enumerate()
            .map(|(i, unit)| (i.to_string(), Value::String(unit)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (i.to_string(), item.clone()))
            .collect(),
        Value::Bool(_) | Value::Number(_) => Map::new(),
    };
    Ok(Value::Object(spread))
}

fn prepare_root_directive(map: &Map<String, Value>) -> Result<Value, MappingError> {
    let customer: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| k.as_str() != ROOT_DIRECTIVE_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut root = map.get(ROOT_DIRECTIVE_KEY).cloned().unwrap_or(Value::Null);
    // `Object.keys` of the root value decides what counts as its single directive.
    let key_count = match &root {
        Value::Null => return Err(runtime("Cannot convert undefined or null to object")),
        Value::Object(m) => m.len(),
        Value::Array(items) => items.len(),
        Value::String(s) => junction_js::utf16_len(s),
        Value::Bool(_) | Value::Number(_) => 0,
    };
    if key_count > 1 {
        return Err(runtime(
            "The root mapping must only have a single directive object",
        ));
    }
    let directive_options = match &mut root {
        Value::Object(m) => m.values_mut().next(),
        Value::Array(items) => items.first_mut(),
        _ => None,
    };
    match directive_options {
        Some(Value::Object(options)) => {
            options.insert("mapping".to_owned(), Value::Object(customer));
        }
        // An array takes the `mapping` property without showing it in JSON.
        Some(Value::Array(_)) => {}
        _ => return Err(runtime("The root directive must be an object")),
    }
    Ok(root)
}

/// Compiles any mapping value. Only Liquid template errors fail here; everything the reference
/// reports while resolving is kept for run time.
pub(crate) fn compile_node(value: &Value) -> Result<Node, MappingError> {
    match value {
        Value::Array(items) => {
            let nodes = items
                .iter()
                .map(compile_node)
                .collect::<Result<Vec<_>, _>>()?;
            if nodes.iter().all(|n| matches!(n, Node::Raw(_))) {
                return Ok(Node::Raw(value.clone()));
            }
            Ok(Node::Array(nodes))
        }
        Value::Object(map) => {
            if let Some(name) = validate::directive_name(map) {
                let options = map.get(name).unwrap_or(&Value::Null);
                return Ok(Node::Directive(Box::new(compile_directive(name, options)?)));
            }
            let members = map
                .iter()
                .map(|(k, v)| Ok((k.clone(), compile_node(v)?)))
                .collect::<Result<Vec<_>, MappingError>>()?;
            if members.iter().all(|(_, n)| matches!(n, Node::Raw(_))) {
                return Ok(Node::Raw(value.clone()));
            }
            Ok(Node::Object(object_node(members)))
        }
        scalar => Ok(Node::Raw(scalar.clone())),
    }
}

fn member<'v>(options: &'v Value, key: &str) -> Option<&'v Value> {
    options.as_object().and_then(|m| m.get(key))
}

fn truthy_member(options: &Value, key: &str) -> bool {
    member(options, key).is_some_and(junction_js::is_truthy)
}

fn compile_opt(value: Option<&Value>) -> Result<Option<Node>, MappingError> {
    value.map(compile_node).transpose()
}

fn compile_directive(name: &str, options: &Value) -> Result<Directive, MappingError> {
    let directive = match name {
        "@if" => compile_if(options)?,
        "@case" => compile_case(options)?,
        "@replace" => compile_replace(options)?,
        "@arrayPath" => compile_array_path(options)?,
        "@path" => match options {
            Value::String(p) => Directive::Path(PathArg::Static(path::parse_path(
                &path::strip_dollar_dot(p),
            ))),
            other => Directive::Path(PathArg::Dynamic(compile_node(other)?)),
        },
        "@template" => match options {
            Value::String(t) => Directive::Template(TemplateArg::Static(Template::new(t))),
            other => Directive::Template(TemplateArg::Dynamic(compile_node(other)?)),
        },
        "@literal" => Directive::Literal(compile_node(options)?),
        "@flatten" => compile_flatten(options)?,
        "@json" => compile_json(options)?,
        "@merge" => compile_merge(options)?,
        "@transform" => compile_transform(options)?,
        "@excludeWhenNull" => Directive::ExcludeWhenNull(compile_node(options)?),
        "@liquid" => compile_liquid(options)?,
        unknown => Directive::Fail(format!("{unknown} is not a valid directive, got undefined")),
    };
    Ok(directive)
}

fn compile_if(options: &Value) -> Result<Directive, MappingError> {
    if !options.is_object() {
        return Ok(Directive::Fail(
            "@if requires an object with an \"exists\" key".into(),
        ));
    }
    if !truthy_member(options, "exists") && !truthy_member(options, "blank") {
        return Ok(Directive::Fail(
            "@if requires an \"exists\" key or a \"blank\" key".into(),
        ));
    }
    let exists = member(options, "exists");
    let blank = if exists.is_some() {
        None
    } else {
        member(options, "blank")
    };
    Ok(Directive::If {
        exists: compile_opt(exists)?,
        blank: compile_opt(blank)?,
        then: compile_opt(member(options, "then"))?,
        otherwise: compile_opt(member(options, "else").filter(|v| junction_js::is_truthy(v)))?,
    })
}

fn compile_case(options: &Value) -> Result<Directive, MappingError> {
    if !options.is_object() {
        return Ok(Directive::Fail(
            "@case requires an object with a \"operator\" key".into(),
        ));
    }
    if !truthy_member(options, "operator") {
        return Ok(Directive::Fail("@case requires a \"operator\" key".into()));
    }
    let operator = match member(options, "operator").and_then(Value::as_str) {
        Some("lower") => CaseOperator::Lower,
        Some("upper") => CaseOperator::Upper,
        _ => CaseOperator::Other,
    };
    Ok(Directive::Case {
        operator,
        value: compile_opt(member(options, "value").filter(|v| junction_js::is_truthy(v)))?,
    })
}

fn compile_replace(options: &Value) -> Result<Directive, MappingError> {
    if !options.is_object() {
        return Ok(Directive::Fail(
            "@replace requires an object with a \"pattern\" key".into(),
        ));
    }
    if !truthy_member(options, "pattern") {
        return Ok(Directive::Fail(
            "@replace requires a \"pattern\" key".into(),
        ));
    }
    // Defaults the reference writes into the options: null or missing replacement is "", null or
    // missing ignorecase is false, null or missing global is true.
    let empty = Value::String(String::new());
    let flag = |key: &str, default: bool| match member(options, key) {
        None | Some(Value::Null) => Some(default),
        Some(v) => v.as_bool(),
    };
    let replacement = match member(options, "replacement") {
        None | Some(Value::Null) => &empty,
        Some(v) => v,
    };
    let value = compile_opt(member(options, "value").filter(|v| junction_js::is_truthy(v)))?;
    let (Some(ignore_case), Some(global)) = (flag("ignorecase", false), flag("global", true))
    else {
        return Ok(Directive::Replace(Replace {
            value,
            first: None,
            second: None,
        }));
    };
    let first = match (
        member(options, "pattern").and_then(Value::as_str),
        replacement.as_str(),
    ) {
        (Some(p), Some(r)) => Some(Pair::new(p, r, ignore_case, global)),
        _ => None,
    };
    let second = if truthy_member(options, "pattern2") {
        let replacement2 = match member(options, "replacement2") {
            None | Some(Value::Null) => &empty,
            Some(v) => v,
        };
        match (
            member(options, "pattern2").and_then(Value::as_str),
            replacement2.as_str(),
        ) {
            (Some(p), Some(r)) => Some(Pair::new(p, r, ignore_case, global)),
            _ => None,
        }
    } else {
        None
    };
    Ok(Directive::Replace(Replace {
        value,
        first,
        second,
    }))
}

fn compile_array_path(options: &Value) -> Result<Directive, MappingError> {
    let Value::Array(items) = options else {
        return Ok(Directive::Fail(format!(
            "@arrayPath expected array, got {}",
            js::real_type(options)
        )));
    };
    let root = match items.first() {
        Some(Value::String(p)) => ArrayRoot::Lookup(path::parse_path(&path::strip_dollar_dot(p))),
        Some(other) => ArrayRoot::Resolve(compile_node(other)?),
        None => ArrayRoot::Absent,
    };
    let shape = match items.get(1) {
        Some(shape @ Value::Object(map)) if !map.is_empty() => Some(compile_node(shape)?),
        _ => None,
    };
    Ok(Directive::ArrayPath { root, shape })
}

fn compile_flatten(options: &Value) -> Result<Directive, MappingError> {
    if !options.is_object() {
        return Ok(Directive::Fail(
            "@flatten requires an object with a \"separator\" key".into(),
        ));
    }
    let separator = match member(options, "separator") {
        Some(s) if junction_js::is_truthy(s) => compile_node(s)?,
        _ => {
            return Ok(Directive::Fail(
                "@flatten requires a \"separator\" key".into(),
            ));
        }
    };
    Ok(Directive::Flatten {
        separator,
        value: compile_opt(member(options, "value"))?,
        omit_arrays: truthy_member(options, "omitArrays"),
    })
}

fn compile_json(options: &Value) -> Result<Directive, MappingError> {
    if !options.is_object() {
        return Ok(Directive::Fail(
            "@json requires an object with a \"value\" key".into(),
        ));
    }
    if !truthy_member(options, "mode") {
        return Ok(Directive::Fail("@json requires a \"mode\" key".into()));
    }
    let value = match member(options, "value") {
        Some(v) if junction_js::is_truthy(v) => compile_node(v)?,
        _ => return Ok(Directive::Fail("@json requires a \"value\" key".into())),
    };
    let mode = match member(options, "mode").and_then(Value::as_str) {
        Some("encode") => JsonMode::Encode,
        Some("decode") => JsonMode::Decode,
        _ => JsonMode::Other,
    };
    Ok(Directive::Json { mode, value })
}

fn compile_merge(options: &Value) -> Result<Directive, MappingError> {
    if !options.is_object() {
        return Ok(Directive::Fail(
            "@merge requires an object with an \"objects\" key and a \"direction\" key".into(),
        ));
    }
    let direction = match member(options, "direction") {
        Some(d) if junction_js::is_truthy(d) => compile_node(d)?,
        _ => {
            return Ok(Directive::Fail(
                "@merge requires a \"direction\" key".into(),
            ));
        }
    };
    let objects = match member(options, "objects") {
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(compile_node)
            .collect::<Result<Vec<_>, _>>()?),
        Some(other) if junction_js::is_truthy(other) => Err(format!(
            "@merge: expected opts.array, got {}",
            js::type_of(other)
        )),
        _ => Err("@merge requires a \"objects\" key".into()),
    };
    Ok(Directive::Merge { direction, objects })
}

fn compile_transform(options: &Value) -> Result<Directive, MappingError> {
    if !options.is_object() {
        return Ok(Directive::Fail(
            "@transform requires an object with an \"apply\" key and a \"mapping\" key".into(),
        ));
    }
    let mapping = match member(options, "mapping") {
        Some(m) if junction_js::is_truthy(m) => compile_node(m)?,
        _ => {
            return Ok(Directive::Fail(
                "@transform requires a \"mapping\" key".into(),
            ));
        }
    };
    let apply = match member(options, "apply") {
        Some(a @ Value::Object(_)) => a,
        Some(a) if junction_js::is_truthy(a) => {
            return Ok(Directive::Fail(
                "@transform \"apply\" key should be an object".into(),
            ));
        }
        _ => {
            return Ok(Directive::Fail(
                "@transform requires a \"apply\" key".into(),
            ));
        }
    };
    // The nested transform prepares and validates `apply` when it runs; those errors wait until
    // then, a Liquid template error does not.
    let apply = match prepare_and_validate(apply) {
        Ok(prepared) => Ok(Box::new(compile_node(&prepared)?)),
        Err(err) => Err(err),
    };
    Ok(Directive::Transform { apply, mapping })
}

fn compile_liquid(options: &Value) -> Result<Directive, MappingError> {
    let Value::String(source) = options else {
        return Ok(Directive::Fail(
            "liquid template value must be a string".into(),
        ));
    };
    Ok(Directive::Liquid(LiquidTemplate::compile(source)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spread_of_non_objects() {
        assert_eq!(prepare(&json!("ab")).unwrap(), json!({"0": "a", "1": "b"}));
        assert_eq!(prepare(&json!(["x"])).unwrap(), json!({"0": "x"}));
        assert_eq!(prepare(&json!(true)).unwrap(), json!({}));
        assert!(prepare(&json!(null)).is_err());
    }

    #[test]
    fn root_directive_takes_the_customer_keys() {
        let prepared = prepare(&json!({
            "__segment_internal_directive": {"@transform": {"apply": {}}},
            "a": 1
        }))
        .unwrap();
        assert_eq!(
            prepared,
            json!({"@transform": {"apply": {}, "mapping": {"a": 1}}})
        );
    }

    #[test]
    fn raw_subtrees_stay_raw() {
        let node = compile_node(&json!({"a": [1, {"b": true}], "c": "x"})).unwrap();
        assert!(matches!(node, Node::Raw(_)));
        let node = compile_node(&json!({"a": [1, {"@path": "$.x"}]})).unwrap();
        assert!(matches!(node, Node::Object(_)));
    }
}

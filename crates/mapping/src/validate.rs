//! Mapping validation, message for message as the reference's `validate.ts`: messages gathered
//! across object members and directive options, fail-fast inside a single check.

use serde_json::{Map, Value};

use crate::js;

/// The messages of a failed check (never empty).
type Checked = Result<(), Vec<String>>;

/// A path of object keys and directive names, as printed in messages.
type Stack<'v> = Vec<&'v str>;

/// A check of one value at a stack.
type Check = for<'v> fn(&'v Value, &mut Stack<'v>) -> Checked;

/// Validates `mapping` and returns the ordered messages; empty means valid.
pub(crate) fn validate(mapping: &Value) -> Vec<String> {
    let mut stack = Vec::new();
    match validate_value(mapping, &mut stack) {
        Ok(()) => Vec::new(),
        Err(messages) => messages,
    }
}

fn fail(stack: &[&str], message: impl std::fmt::Display) -> Checked {
    Err(vec![format!("/{} {message}.", stack.join("/"))])
}

/// A directive object is an object with at least one `@` key (the reference's classification for
/// validation; runtime detection is stricter, see [`directive_name`]).
fn has_directive_key(map: &Map<String, Value>) -> bool {
    map.keys().any(|k| k.starts_with('@'))
}

/// The reference's `realTypeOrDirective`.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Object(map) if has_directive_key(map) => "directive",
        other => js::real_type(other),
    }
}

/// The directive a runtime object stands for: every key is `@…` or `_metadata` and at least one is
/// `@…`; the name is the first `@` key.
pub(crate) fn directive_name(map: &Map<String, Value>) -> Option<&str> {
    let mut name = None;
    for key in map.keys() {
        if key.starts_with('@') {
            if name.is_none() {
                name = Some(key.as_str());
            }
        } else if key != "_metadata" {
            return None;
        }
    }
    name
}

fn type_message(expected: &str, actual: &str) -> String {
    format!(
        "should be {expected} but it is {} {actual}",
        js::article(actual)
    )
}

fn validate_value<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    match kind(value) {
        "directive" => validate_directive(value, stack),
        "object" => validate_object(value, stack),
        _ => Ok(()),
    }
}

fn validate_directive<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    let Value::Object(map) = value else {
        let actual = js::real_type(value);
        return fail(stack, type_message("a directive object", actual));
    };
    let directive_keys = map.keys().filter(|k| k.starts_with('@')).count();
    if directive_keys > 1 {
        return fail(
            stack,
            format_args!("should only have one @-prefixed key but it has {directive_keys} keys"),
        );
    }
    if map
        .keys()
        .any(|k| !k.starts_with('@') && k.as_str() != "_metadata")
    {
        let total = map.len();
        return fail(
            stack,
            format_args!("should only have one @-prefixed key but it has {total} keys"),
        );
    }
    let Some((name, options)) = map.iter().find(|(k, _)| k.starts_with('@')) else {
        return fail(stack, type_message("a directive object", "object"));
    };
    let Some(check) = directive_check(name) else {
        return fail(stack, format_args!("has an invalid directive: {name}"));
    };
    stack.push(name);
    let checked = check(options, stack);
    stack.pop();
    checked
}

fn directive_check(name: &str) -> Option<Check> {
    let check: Check = match name {
        "@if" => check_if,
        "@case" => check_case,
        "@replace" => check_replace,
        "@arrayPath" => check_array_path,
        "@path" | "@template" => directive_or_string,
        "@literal" | "@excludeWhenNull" => directive_or_raw,
        "@liquid" => string,
        "@json" => check_json,
        "@flatten" => check_flatten,
        "@merge" => check_merge,
        "@transform" => check_transform,
        _ => return None,
    };
    Some(check)
}

/// A plain object whose members are each validated; all messages gathered.
fn validate_object<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    let actual = kind(value);
    let Value::Object(map) = value else {
        return fail(stack, type_message("an object", actual));
    };
    if actual != "object" {
        return fail(stack, type_message("an object", actual));
    }
    let mut messages = Vec::new();
    for (key, member) in map {
        stack.push(key);
        if let Err(found) = validate_value(member, stack) {
            messages.extend(found);
        }
        stack.pop();
    }
    if messages.is_empty() {
        Ok(())
    } else {
        Err(messages)
    }
}

/// The check of one declared option of a directive.
#[derive(Debug, Clone, Copy)]
enum FieldCheck {
    DirectiveOrRaw,
    DirectiveOrString,
    ObjectOrDirective,
    String,
    Boolean,
    Array,
    Pattern,
    Replacement,
    JsonMode,
    MergeDirection,
}

impl FieldCheck {
    /// Runs the check on a member that the generic pass already validated: a check that would
    /// descend into a directive or an object would only repeat that pass (and make nested
    /// directives exponential), so it stops there with the same result.
    fn run<'v>(self, member: &'v Value, stack: &mut Stack<'v>) -> Checked {
        let nested = kind(member);
        match self {
            FieldCheck::DirectiveOrRaw => Ok(()),
            FieldCheck::DirectiveOrString if nested == "directive" => Ok(()),
            FieldCheck::DirectiveOrString => directive_or_string(member, stack),
            FieldCheck::ObjectOrDirective if matches!(nested, "directive" | "object") => Ok(()),
            FieldCheck::ObjectOrDirective => object_or_directive(member, stack),
            FieldCheck::String => string(member, stack),
            FieldCheck::Boolean => boolean(member, stack),
            FieldCheck::Array => array(member, stack),
            FieldCheck::Pattern => pattern(member, stack),
            FieldCheck::Replacement => replacement(member, stack),
            FieldCheck::JsonMode => json_mode(member, stack),
            FieldCheck::MergeDirection => merge_direction(member, stack),
        }
    }
}

/// One declared option of a directive.
struct Field {
    name: &'static str,
    required: bool,
    check: FieldCheck,
}

const fn required(name: &'static str, check: FieldCheck) -> Field {
    Field {
        name,
        required: true,
        check,
    }
}

const fn optional(name: &'static str, check: FieldCheck) -> Field {
    Field {
        name,
        required: false,
        check,
    }
}

/// The reference's `validateObjectWithFields`: the object and its members first (fail-fast),
/// then every declared field in order, all messages gathered.
fn validate_fields<'v>(value: &'v Value, fields: &[Field], stack: &mut Stack<'v>) -> Checked {
    validate_object(value, stack)?;
    let Value::Object(map) = value else {
        return Ok(());
    };
    let mut messages = Vec::new();
    for field in fields {
        let Some(member) = map.get(field.name) else {
            if field.required {
                let name = field.name;
                if let Err(found) = fail(
                    stack,
                    format_args!("should have field \"{name}\" but it doesn't"),
                ) {
                    messages.extend(found);
                }
            }
            continue;
        };
        stack.push(field.name);
        if let Err(found) = field.check.run(member, stack) {
            messages.extend(found);
        }
        stack.pop();
    }
    if messages.is_empty() {
        Ok(())
    } else {
        Err(messages)
    }
}

fn directive_or_raw<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    if kind(value) == "directive" {
        return validate_directive(value, stack);
    }
    Ok(())
}

fn directive_or_string<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    match kind(value) {
        "directive" => validate_directive(value, stack),
        "string" => Ok(()),
        actual => fail(
            stack,
            type_message("a string or a mapping directive", actual),
        ),
    }
}

fn object_or_directive<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    match kind(value) {
        "directive" => validate_directive(value, stack),
        "object" => validate_object(value, stack),
        actual => fail(
            stack,
            type_message("a object or a mapping directive", actual),
        ),
    }
}

fn string<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    match kind(value) {
        "string" => Ok(()),
        actual => fail(stack, type_message("a string", actual)),
    }
}

fn boolean<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    match kind(value) {
        "boolean" => Ok(()),
        actual => fail(stack, type_message("a boolean", actual)),
    }
}

fn array<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    match js::real_type(value) {
        "array" => Ok(()),
        actual => fail(stack, type_message("an array", actual)),
    }
}

fn string_length(value: &Value, stack: &[&str], min: usize, max: usize) -> Checked {
    let Some(s) = value.as_str() else {
        return Ok(());
    };
    let length = junction_js::utf16_len(s);
    if length < min {
        return fail(
            stack,
            format_args!("should be a string of length {min} or greater"),
        );
    }
    if length > max {
        return fail(
            stack,
            format_args!("should be a string of length {max} or less"),
        );
    }
    Ok(())
}

fn one_of(value: &Value, stack: &[&str], allowed: &[&str]) -> Checked {
    let Some(s) = value.as_str() else {
        return Ok(());
    };
    if allowed.contains(&s.to_lowercase().as_str()) {
        return Ok(());
    }
    let mut shown = String::new();
    junction_js::push_json_string(s, &mut shown);
    fail(
        stack,
        format_args!("should be one of {} but it is {shown}", allowed.join(", ")),
    )
}

fn pattern<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    string(value, stack)?;
    string_length(value, stack, 1, crate::replace::MAX_LENGTH)
}

fn replacement<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    string(value, stack)?;
    string_length(value, stack, 0, crate::replace::MAX_LENGTH)
}

fn json_mode<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    string(value, stack)?;
    one_of(value, stack, &["encode", "decode"])
}

fn merge_direction<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    string(value, stack)?;
    one_of(value, stack, &["left", "right"])
}

fn check_if<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    validate_fields(
        value,
        &[
            optional("exists", FieldCheck::DirectiveOrRaw),
            optional("then", FieldCheck::DirectiveOrRaw),
            optional("else", FieldCheck::DirectiveOrRaw),
        ],
        stack,
    )
}

fn check_case<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    validate_fields(
        value,
        &[
            optional("operator", FieldCheck::String),
            optional("value", FieldCheck::DirectiveOrString),
        ],
        stack,
    )
}

fn check_replace<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    validate_fields(
        value,
        &[
            required("pattern", FieldCheck::Pattern),
            optional("replacement", FieldCheck::Replacement),
            required("value", FieldCheck::DirectiveOrString),
            optional("ignorecase", FieldCheck::Boolean),
            optional("global", FieldCheck::Boolean),
        ],
        stack,
    )
}

fn check_array_path<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    array(value, stack)?;
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    match items.first() {
        Some(path) => directive_or_string(path, stack)?,
        None => fail(
            stack,
            type_message("a string or a mapping directive", "undefined"),
        )?,
    }
    match items.get(1) {
        Some(shape) => validate_value(shape, stack),
        None => Ok(()),
    }
}

fn check_json<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    validate_fields(
        value,
        &[
            required("value", FieldCheck::DirectiveOrRaw),
            required("mode", FieldCheck::JsonMode),
        ],
        stack,
    )
}

fn check_flatten<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    validate_fields(
        value,
        &[
            optional("separator", FieldCheck::String),
            required("value", FieldCheck::DirectiveOrRaw),
        ],
        stack,
    )
}

fn check_merge<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    validate_fields(
        value,
        &[
            optional("direction", FieldCheck::MergeDirection),
            required("objects", FieldCheck::Array),
        ],
        stack,
    )?;
    let objects = value
        .get("objects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // The reference checks the elements without the stack (messages read `/ …`) and stops at the
    // first failing element.
    let mut empty = Vec::new();
    for object in objects {
        object_or_directive(object, &mut empty)?;
    }
    Ok(())
}

fn check_transform<'v>(value: &'v Value, stack: &mut Stack<'v>) -> Checked {
    validate_fields(
        value,
        &[
            required("apply", FieldCheck::ObjectOrDirective),
            required("mapping", FieldCheck::ObjectOrDirective),
        ],
        stack,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gathers_messages_in_key_order() {
        let messages = validate(&json!({
            "a": {"@oops": 1},
            "b": {"@template": 5},
            "c": {"@path": []}
        }));
        assert_eq!(
            messages,
            [
                "/a has an invalid directive: @oops.",
                "/b/@template should be a string or a mapping directive but it is a number.",
                "/c/@path should be a string or a mapping directive but it is an array."
            ]
        );
    }

    #[test]
    fn nested_directives_validate_in_linear_time() {
        let mut mapping = json!({"@path": "$.x"});
        for _ in 0..60 {
            mapping = json!({"@if": {"exists": true, "then": mapping}});
        }
        assert!(validate(&mapping).is_empty());
        let mut mapping = json!({"@oops": 1});
        for _ in 0..60 {
            mapping = json!({"@transform": {"apply": {}, "mapping": mapping}});
        }
        assert_eq!(validate(&mapping).len(), 1);
    }

    #[test]
    fn runtime_directive_detection() {
        let map = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(directive_name(&map(json!({"@path": "x"}))), Some("@path"));
        assert_eq!(
            directive_name(&map(json!({"_metadata": 1, "@a": 1, "@b": 2}))),
            Some("@a")
        );
        assert_eq!(directive_name(&map(json!({"@path": "x", "b": 1}))), None);
        assert_eq!(directive_name(&map(json!({"_metadata": 1}))), None);
    }
}

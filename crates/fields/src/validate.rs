//! The validator: walks a compiled schema over a payload the way Ajv 8's generated code does
//! (`allErrors`, `coerceTypes: "array"`, `removeAdditional`) — same keyword order, same
//! coercions and quirks, same error order — mutating the payload in place and allocating
//! nothing unless something is coerced, removed or wrong.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::ValidatorOptions;
use crate::compile::{Dependency, Items, JsonType, Node, SchemaNode, type_bit};
use crate::error::ValidationError;
use crate::js;
use crate::messages;

/// Keys of payload objects up to this size have their property positions cached between the
/// two passes over the object.
const KEY_CACHE: usize = 32;
const NO_POSITION: u32 = u32::MAX;

/// Where the value being checked sits: a linked list on the stack, turned into a JSON pointer
/// only when an error message needs it.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        segment: Segment::Root,
    };

    fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Key(key),
        }
    }

    fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    /// Ajv's `instancePath` (JSON pointer, `~` and `/` escaped).
    fn pointer(&self) -> String {
        let mut segments = Vec::new();
        let mut current = Some(self);
        while let Some(path) = current {
            segments.push(path.segment);
            current = path.parent;
        }
        let mut out = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Segment::Root => {}
                Segment::Key(key) => {
                    out.push('/');
                    out.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Index(index) => {
                    out.push('/');
                    out.push_str(&index.to_string());
                }
            }
        }
        out
    }
}

/// One validation pass: options, error count and (when rendering) the messages.
pub(crate) struct Run<'o> {
    options: &'o ValidatorOptions,
    /// `false` inside `if`/`not`: stop at the first error, as Ajv does there.
    all_errors: bool,
    /// `false` inside `if`/`not`: only validity matters, no message is built.
    render: bool,
    count: usize,
    messages: Vec<String>,
    /// The `propertyNames` schema being applied: its own `pattern` errors are not shown.
    property_names_schema: Option<usize>,
}

impl<'o> Run<'o> {
    fn new(options: &'o ValidatorOptions) -> Self {
        Run {
            options,
            all_errors: true,
            render: true,
            count: 0,
            messages: Vec::new(),
            property_names_schema: None,
        }
    }

    fn quiet(&self) -> Run<'o> {
        Run {
            options: self.options,
            all_errors: false,
            render: false,
            count: 0,
            messages: Vec::new(),
            property_names_schema: None,
        }
    }

    fn stopped(&self, start: usize) -> bool {
        !self.all_errors && self.count > start
    }

    fn report(
        &mut self,
        title: Option<&str>,
        error_message: Option<&str>,
        path: &Path<'_>,
        text: impl FnOnce() -> String,
    ) {
        self.count += 1;
        if !self.render {
            return;
        }
        let preamble = messages::preamble(title, &path.pointer(), self.options.field_labels);
        // A schema's `errorMessage` replaces the keyword's wording.
        let body = match error_message {
            Some(message) => message.to_owned(),
            None => text(),
        };
        self.messages.push(messages::sentence(&preamble, &body));
    }

    fn report_at(&mut self, s: &SchemaNode, path: &Path<'_>, text: impl FnOnce() -> String) {
        self.report(s.title.as_deref(), s.error_message.as_deref(), path, text);
    }
}

/// Validates `data` against `root` in place (coercion, removal of unknown keys).
pub(crate) fn run(
    root: &Node,
    data: &mut Value,
    options: &ValidatorOptions,
) -> Result<(), ValidationError> {
    let mut run = Run::new(options);
    validate(root, &mut Slot::root(data), &Path::ROOT, &mut run);
    if run.count == 0 {
        return Ok(());
    }
    Err(ValidationError {
        messages: run.messages,
    })
}

/// The type error, given how the value's type is named (`a string`, `undefined`, …).
pub(crate) fn type_error_message(s: &SchemaNode, got: &str) -> String {
    format!("must be {} but it was {got}", s.type_expectation)
}

fn schema_id(s: &SchemaNode) -> usize {
    s as *const SchemaNode as usize
}

fn is_integral(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || junction_js::as_f64(n).fract() == 0.0
}

fn is_type(t: JsonType, v: &Value) -> bool {
    match t {
        JsonType::Null => v.is_null(),
        JsonType::Boolean => v.is_boolean(),
        JsonType::Number => v.is_number(),
        JsonType::Integer => matches!(v, Value::Number(n) if is_integral(n)),
        JsonType::String => v.is_string(),
        JsonType::Array => v.is_array(),
        JsonType::Object => v.is_object(),
        JsonType::Unknown => false,
    }
}

fn matches_types(types: &[JsonType], v: &Value) -> bool {
    types.iter().any(|&t| is_type(t, v))
}

/// `matches_types` over the precomputed bit set.
fn matches_mask(mask: u8, v: &Value) -> bool {
    let bit = |t| mask & type_bit(t) != 0;
    match v {
        Value::Null => bit(JsonType::Null),
        Value::Bool(_) => bit(JsonType::Boolean),
        Value::Number(n) => bit(JsonType::Number) || (bit(JsonType::Integer) && is_integral(n)),
        Value::String(_) => bit(JsonType::String),
        Value::Array(_) => bit(JsonType::Array),
        Value::Object(_) => bit(JsonType::Object),
    }
}

/// Ajv's check of an unwrapped one-element array (`checkDataTypes` in its "correct" form).
/// QUIRK: with several types it requires *all* of them (an `&&` chain), so it only passes for
/// a single type; `[1]` for `["string","number"]` is therefore coerced to `"1"`.
fn types_hold_after_unwrap(types: &[JsonType], v: &Value) -> bool {
    if let [only] = types {
        return is_type(*only, v);
    }
    let has = |t: JsonType| types.contains(&t);
    let array_and_object = has(JsonType::Array) && has(JsonType::Object);
    let mut holds = true;
    if array_and_object {
        let typeof_object = matches!(v, Value::Null | Value::Array(_) | Value::Object(_));
        holds = if has(JsonType::Null) {
            !typeof_object
        } else {
            !junction_js::is_truthy(v) || !typeof_object
        };
    }
    for &t in types {
        let skipped = (array_and_object
            && matches!(t, JsonType::Null | JsonType::Array | JsonType::Object))
            || (t == JsonType::Integer && has(JsonType::Number));
        if !skipped {
            holds = holds && is_type(t, v);
        }
    }
    holds
}

/// A coercion's result: JSON, or a number JSON cannot hold (`+"Infinity"`).
#[derive(Debug, PartialEq)]
enum Coerced {
    Json(Value),
    NonFinite(f64),
}

fn coerced_number(x: f64) -> Coerced {
    if x.is_finite() {
        Coerced::Json(junction_js::f64_to_value(x))
    } else {
        Coerced::NonFinite(x)
    }
}

/// Ajv's coercion chain: the first target type whose rule applies. `infinity` is set when the
/// current value is a non-finite number (then `v` is only its `null` placeholder).
fn coerce_scalar(targets: &[JsonType], v: &Value, infinity: Option<f64>) -> Option<Coerced> {
    if let Some(x) = infinity {
        // Only `"" + data` and `[data]` apply to a number that is not finite.
        return targets.iter().find_map(|t| match t {
            JsonType::String => Some(Coerced::Json(Value::String(junction_js::number_to_string(
                x,
            )))),
            JsonType::Array => Some(Coerced::Json(Value::Array(vec![Value::Null]))),
            _ => None,
        });
    }
    let number = |v: &Value, integer: bool| -> Option<Coerced> {
        match v {
            Value::Bool(b) => Some(Coerced::Json(Value::from(u8::from(*b)))),
            Value::Null => Some(Coerced::Json(Value::from(0))),
            Value::String(s) if !s.is_empty() => {
                let x = junction_js::string_to_number(s);
                // `!(x % 1)` also holds for ±Infinity (NaN remainder).
                let whole = !integer || x % 1.0 == 0.0 || x.is_infinite();
                (!x.is_nan() && whole).then(|| coerced_number(x))
            }
            _ => None,
        }
    };
    for &target in targets {
        let coerced = match target {
            JsonType::String => match v {
                Value::Number(n) => Some(Value::String(junction_js::number_to_string(
                    junction_js::as_f64(n),
                ))),
                Value::Bool(b) => Some(Value::String(b.to_string())),
                Value::Null => Some(Value::String(String::new())),
                _ => None,
            }
            .map(Coerced::Json),
            JsonType::Number => number(v, false),
            JsonType::Integer => number(v, true),
            JsonType::Boolean => match v {
                Value::Null => Some(Value::Bool(false)),
                Value::String(s) if s == "false" => Some(Value::Bool(false)),
                Value::String(s) if s == "true" => Some(Value::Bool(true)),
                Value::Number(n) if junction_js::as_f64(n) == 0.0 => Some(Value::Bool(false)),
                Value::Number(n) if junction_js::as_f64(n) == 1.0 => Some(Value::Bool(true)),
                _ => None,
            }
            .map(Coerced::Json),
            JsonType::Null => match v {
                Value::String(s) if s.is_empty() => Some(Value::Null),
                Value::Number(n) if junction_js::as_f64(n) == 0.0 => Some(Value::Null),
                Value::Bool(false) => Some(Value::Null),
                _ => None,
            }
            .map(Coerced::Json),
            JsonType::Array => match v {
                Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
                    Some(Coerced::Json(Value::Array(vec![v.clone()])))
                }
                _ => None,
            },
            JsonType::Object | JsonType::Unknown => None,
        };
        if coerced.is_some() {
            return coerced;
        }
    }
    None
}

/// The value at one position of the payload as Ajv's generated code holds it: a local
/// variable that every schema applying to that position shares (the property's schema and all
/// its `anyOf`/`allOf`/`if`/… branches). A failed one-element-array unwrap leaves the variable
/// on the element for the rest of that position's checks while the payload keeps the array; a
/// coercion replaces the payload's value (except at the root, which has no parent to write to).
pub(crate) struct Slot<'v> {
    value: &'v mut Value,
    /// The root's coerced value (Ajv does not write it back to the caller).
    local: Option<Value>,
    /// Unwraps applied to the local variable (`data = data[0]`) since the last coercion.
    depth: usize,
    writes_back: bool,
    /// The local variable holds this non-finite number (the payload holds `null`, as
    /// `JSON.stringify` would send it).
    infinity: Option<f64>,
}

/// The element `depth` one-element-array unwraps down (`None` if the shape changed).
fn descend(value: &mut Value, depth: usize) -> Option<&mut Value> {
    if depth == 0 {
        return Some(value);
    }
    match value {
        Value::Array(items) => descend(items.first_mut()?, depth - 1),
        _ => None,
    }
}

impl<'v> Slot<'v> {
    pub(crate) fn root(value: &'v mut Value) -> Self {
        Slot {
            value,
            local: None,
            depth: 0,
            writes_back: false,
            infinity: None,
        }
    }

    fn child(value: &'v mut Value) -> Self {
        Slot {
            value,
            local: None,
            depth: 0,
            writes_back: true,
            infinity: None,
        }
    }

    /// The local variable's current value.
    fn view(&mut self) -> Option<&mut Value> {
        let base = match &mut self.local {
            Some(local) => local,
            None => &mut *self.value,
        };
        descend(base, self.depth)
    }

    /// How a type error names the local variable's type.
    fn describe(&mut self) -> &'static str {
        if self.infinity.is_some() {
            return "a number";
        }
        messages::humanize_type_of(self.view().map(|v| &*v))
    }

    /// Whether the local variable is of one of the types in `mask` (a non-finite number is of
    /// none: Ajv checks numbers with `strictNumbers`).
    fn matches(&mut self, mask: u8) -> bool {
        self.infinity.is_none() && self.view().is_some_and(|v| matches_mask(mask, v))
    }

    /// `data = coerced; parentData[property] = coerced`.
    fn set(&mut self, coerced: Coerced) {
        self.depth = 0;
        let coerced = match coerced {
            Coerced::Json(value) => {
                self.infinity = None;
                value
            }
            Coerced::NonFinite(x) => {
                self.infinity = Some(x);
                Value::Null
            }
        };
        if self.writes_back {
            *self.value = coerced;
        } else {
            self.local = Some(coerced);
        }
    }
}

/// Ajv's `coerceData` after a failed type check.
fn check_and_coerce(s: &SchemaNode, slot: &mut Slot<'_>, path: &Path<'_>, run: &mut Run<'_>) {
    if s.coerce_to.is_empty() {
        let got = slot.describe();
        run.report_at(s, path, || type_error_message(s, got));
        return;
    }
    let single = slot.infinity.is_none()
        && matches!(slot.view(), Some(Value::Array(items)) if items.len() == 1);
    if single {
        slot.depth += 1;
        let Some(element) = slot.view() else { return };
        let coerced = if types_hold_after_unwrap(&s.types, element) {
            Some(Coerced::Json(element.clone()))
        } else {
            coerce_scalar(&s.coerce_to, element, None)
        };
        match coerced {
            Some(value) => slot.set(value),
            None => {
                let got = messages::humanize_type_of(Some(element));
                run.report_at(s, path, || type_error_message(s, got));
            }
        }
        return;
    }
    let infinity = slot.infinity;
    let Some(data) = slot.view() else { return };
    match coerce_scalar(&s.coerce_to, data, infinity) {
        Some(value) => slot.set(value),
        None => {
            let got = slot.describe();
            run.report_at(s, path, || type_error_message(s, got));
        }
    }
}

/// Validates the value in `slot` against `node`.
pub(crate) fn validate(node: &Node, slot: &mut Slot<'_>, path: &Path<'_>, run: &mut Run<'_>) {
    let s = match node {
        Node::Bool(true) => return,
        Node::Bool(false) => {
            run.report(None, None, path, || "boolean schema is false".to_owned());
            return;
        }
        Node::Schema(s) => s,
    };
    if s.trivially_valid {
        return;
    }
    let start = run.count;
    if s.check_types && !slot.matches(s.type_mask) {
        check_and_coerce(s, slot, path, run);
        if run.stopped(start) {
            return;
        }
    }
    if s.has_any_rules {
        any_keywords(s, slot, path, run, start);
        if run.stopped(start) {
            return;
        }
    }
    if slot.infinity.is_some() {
        // A non-finite number passes no group's type check; only a type error can follow.
        if s.deferred_type.is_some() {
            run.report_at(s, path, || type_error_message(s, "a number"));
        }
        return;
    }
    let Some(data) = slot.view() else { return };
    if s.has_number_rules {
        if let Value::Number(n) = &*data {
            number_keywords(s, junction_js::as_f64(n), path, run, start);
        } else if s.deferred_type == Some(JsonType::Number) {
            run.report_at(s, path, || {
                type_error_message(s, messages::humanize_type_of(Some(data)))
            });
        }
        if run.stopped(start) {
            return;
        }
    }
    if s.has_string_rules {
        if let Value::String(text) = &*data {
            string_keywords(s, text, path, run, start);
        } else if s.deferred_type == Some(JsonType::String) {
            run.report_at(s, path, || {
                type_error_message(s, messages::humanize_type_of(Some(data)))
            });
        }
        if run.stopped(start) {
            return;
        }
    }
    if s.has_array_rules {
        if data.is_array() {
            array_keywords(s, data, path, run, start);
        } else if s.deferred_type == Some(JsonType::Array) {
            run.report_at(s, path, || {
                type_error_message(s, messages::humanize_type_of(Some(data)))
            });
        }
        if run.stopped(start) {
            return;
        }
    }
    if s.has_object_rules {
        if data.is_object() {
            object_keywords(s, slot, path, run, start);
        } else if s.deferred_type == Some(JsonType::Object) {
            run.report_at(s, path, || {
                type_error_message(s, messages::humanize_type_of(Some(data)))
            });
        }
    }
}

/// Whether the value is valid, checked the way Ajv checks `if` and `not` sub-schemas (first
/// error only, no messages; coercions still happen).
fn quietly_valid(node: &Node, slot: &mut Slot<'_>, path: &Path<'_>, run: &Run<'_>) -> bool {
    let mut sub = run.quiet();
    validate(node, slot, path, &mut sub);
    sub.count == 0
}

fn any_keywords(
    s: &SchemaNode,
    slot: &mut Slot<'_>,
    path: &Path<'_>,
    run: &mut Run<'_>,
    start: usize,
) {
    // A non-finite number equals no JSON value.
    let infinite = slot.infinity.is_some();
    if let Some(expected) = &s.const_value
        && (infinite
            || !slot
                .view()
                .is_some_and(|data| js::deep_equal(data, expected)))
    {
        run.report_at(s, path, || "must be equal to constant".to_owned());
        if run.stopped(start) {
            return;
        }
    }
    if let Some(values) = &s.enum_values
        && (infinite
            || !slot
                .view()
                .is_some_and(|data| values.iter().any(|v| js::deep_equal(data, v))))
    {
        run.report_at(s, path, || format!("must be one of: {}", s.enum_text));
        if run.stopped(start) {
            return;
        }
    }
    if let Some(not) = &s.not
        && (not.is_trivially_valid() || quietly_valid(not, slot, path, run))
    {
        run.report_at(s, path, || "must NOT be valid".to_owned());
        if run.stopped(start) {
            return;
        }
    }
    // An always-valid branch makes Ajv skip `anyOf` entirely (no branch coerces anything);
    // otherwise the branches run until one passes.
    if let Some(branches) = s.any_of.as_ref().filter(|_| !s.any_of_always_valid) {
        let (messages, count) = (run.messages.len(), run.count);
        let mut valid = false;
        for branch in branches {
            let before = run.count;
            validate(branch, slot, path, run);
            if run.count == before {
                valid = true;
                break;
            }
        }
        if valid {
            run.messages.truncate(messages);
            run.count = count;
        } else {
            run.report_at(s, path, || "must match a schema in anyOf".to_owned());
            if run.stopped(start) {
                return;
            }
        }
    }
    // The branches run until a second one passes; the rest are skipped.
    if let Some(branches) = &s.one_of {
        let (messages, count) = (run.messages.len(), run.count);
        let mut valid = false;
        for branch in branches {
            let before = run.count;
            validate(branch, slot, path, run);
            if run.count == before {
                if valid {
                    valid = false;
                    break;
                }
                valid = true;
            }
        }
        if valid {
            run.messages.truncate(messages);
            run.count = count;
        } else {
            run.report_at(s, path, || {
                "must match exactly one schema in oneOf".to_owned()
            });
            if run.stopped(start) {
                return;
            }
        }
    }
    if let Some(branches) = &s.all_of {
        for branch in branches {
            validate(branch, slot, path, run);
            if run.stopped(start) {
                return;
            }
        }
    }
    if let Some(condition) = &s.if_ {
        let then = s.then.as_ref().filter(|n| !n.is_trivially_valid());
        let otherwise = s.else_.as_ref().filter(|n| !n.is_trivially_valid());
        if then.is_none() && otherwise.is_none() {
            return;
        }
        let clause = if quietly_valid(condition, slot, path, run) {
            then.map(|n| (n, "then"))
        } else {
            otherwise.map(|n| (n, "else"))
        };
        if let Some((node, keyword)) = clause {
            let before = run.count;
            validate(node, slot, path, run);
            if run.count > before {
                run.report_at(s, path, || format!("must match \"{keyword}\" schema"));
            }
        }
    }
}

/// `res !== parseInt(res)` for `res = data / multipleOf`.
fn is_multiple(x: f64, of: f64) -> bool {
    let res = x / of;
    let text = junction_js::number_to_string(res);
    let digits_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(text.len(), |(i, _)| i);
    let int = text.get(..digits_end).and_then(|t| t.parse::<f64>().ok());
    int == Some(res)
}

fn number_keywords(s: &SchemaNode, x: f64, path: &Path<'_>, run: &mut Run<'_>, start: usize) {
    let checks = [
        (
            &s.maximum,
            x > s.maximum.as_ref().map_or(f64::NAN, |l| l.value),
            "must be equal to or less than",
        ),
        (
            &s.minimum,
            x < s.minimum.as_ref().map_or(f64::NAN, |l| l.value),
            "must be equal to or greater than",
        ),
        (
            &s.exclusive_maximum,
            x >= s.exclusive_maximum.as_ref().map_or(f64::NAN, |l| l.value),
            "must be less than",
        ),
        (
            &s.exclusive_minimum,
            x <= s.exclusive_minimum.as_ref().map_or(f64::NAN, |l| l.value),
            "must be greater than",
        ),
    ];
    for (limit, failed, wording) in checks {
        if let Some(limit) = limit.as_ref().filter(|_| failed) {
            run.report_at(s, path, || format!("{wording} {}", limit.text));
            if run.stopped(start) {
                return;
            }
        }
    }
    if let Some(of) = &s.multiple_of
        && !is_multiple(x, of.value)
    {
        run.report_at(s, path, || format!("must be a multiple of {}", of.text));
        if run.stopped(start) {
            return;
        }
    }
    if let Some(format) = s.format.filter(|f| f.is_numeric())
        && !format.check_number(x)
    {
        run.report_at(s, path, || {
            format!("must be a valid {} string but it was not", s.format_text)
        });
    }
}

fn string_keywords(s: &SchemaNode, text: &str, path: &Path<'_>, run: &mut Run<'_>, start: usize) {
    if s.max_length.is_some() || s.min_length.is_some() {
        // Ajv counts code points; the message reports JavaScript's `length` (UTF-16 units).
        let length = text.chars().count() as f64;
        let bounds = [(&s.max_length, true), (&s.min_length, false)];
        for (limit, is_max) in bounds {
            let Some(limit) = limit else { continue };
            let failed = if is_max {
                length > limit.value
            } else {
                length < limit.value
            };
            if failed {
                run.report_at(s, path, || {
                    let actual = junction_js::utf16_len(text);
                    format!(
                        "must be {} {} or {} but it was {actual} {}",
                        limit.text,
                        messages::plural("character", limit.value),
                        if is_max { "fewer" } else { "more" },
                        messages::plural("character", actual as f64),
                    )
                });
                if run.stopped(start) {
                    return;
                }
            }
        }
    }
    if let Some(pattern) = &s.pattern
        && !pattern.regex.is_match(text)
    {
        // ajv-human-errors drops a `propertyNames` schema's own pattern errors (the
        // `propertyNames` error says it), unless the schema has an `errorMessage`.
        let hidden = run.property_names_schema == Some(schema_id(s)) && s.error_message.is_none();
        if hidden {
            run.count += 1;
        } else {
            run.report_at(s, path, || match &s.pattern_label {
                Some(label) => format!("must be {label} but it was not"),
                None => "is an invalid string".to_owned(),
            });
        }
        if run.stopped(start) {
            return;
        }
    }
    if let Some(format) = s.format.filter(|f| !f.is_numeric())
        && !format.check_str(text)
    {
        run.report_at(s, path, || {
            format!("must be a valid {} string but it was not", s.format_text)
        });
    }
}

/// The first duplicate pair Ajv reports, as its `(i, j)` parameters.
fn duplicate(items: &[Value], item_types: &[JsonType]) -> Option<(usize, usize)> {
    if item_types.is_empty() {
        for i in (0..items.len()).rev() {
            let a = items.get(i)?;
            for j in (0..i).rev() {
                if items.get(j).is_some_and(|b| js::deep_equal(a, b)) {
                    return Some((i, j));
                }
            }
        }
        return None;
    }
    // Scalar item types: Ajv indexes items by their property-key text, last index first.
    let tag_strings = item_types.len() > 1;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in (0..items.len()).rev() {
        let Some(item) = items.get(i) else { continue };
        if !matches_types(item_types, item) {
            continue;
        }
        let key = match item {
            Value::Number(n) => junction_js::number_to_string(junction_js::as_f64(n)),
            Value::String(text) if tag_strings => format!("{text}_"),
            Value::String(text) => text.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_owned(),
            Value::Array(_) | Value::Object(_) => continue,
        };
        match seen.get(&key) {
            Some(&j) => return Some((i, j)),
            None => {
                seen.insert(key, i);
            }
        }
    }
    None
}

/// The array keywords, in Ajv's order: `additionalItems`, `items` and `contains` run before
/// `uniqueItems` (so uniqueness is judged on coerced items).
fn array_keywords(
    s: &SchemaNode,
    data: &mut Value,
    path: &Path<'_>,
    run: &mut Run<'_>,
    start: usize,
) {
    let Value::Array(items) = data else { return };
    let len = items.len();
    if let Some(max) = s.max_items.as_ref().filter(|l| len as f64 > l.value) {
        run.report_at(s, path, || {
            format!("must have {} or fewer items but it has {len}", max.text)
        });
        if run.stopped(start) {
            return;
        }
    }
    if let Some(min) = s.min_items.as_ref().filter(|l| (len as f64) < l.value) {
        run.report_at(s, path, || {
            format!("must have {} or more items but it has {len}", min.text)
        });
        if run.stopped(start) {
            return;
        }
    }
    if let (Some(additional), Some(Items::Tuple(tuple))) = (&s.additional_items, &s.items)
        && len > tuple.len()
    {
        match additional {
            Node::Bool(false) => {
                run.report_at(s, path, || {
                    format!("must NOT have more than {} items", tuple.len())
                });
            }
            node if !node.is_trivially_valid() => {
                for (i, item) in items.iter_mut().enumerate().skip(tuple.len()) {
                    validate(node, &mut Slot::child(item), &path.index(i), run);
                    if run.stopped(start) {
                        return;
                    }
                }
            }
            _ => {}
        }
        if run.stopped(start) {
            return;
        }
    }
    match &s.items {
        Some(Items::Single(node)) if !node.is_trivially_valid() => {
            for (i, item) in items.iter_mut().enumerate() {
                validate(node, &mut Slot::child(item), &path.index(i), run);
                if run.stopped(start) {
                    return;
                }
            }
        }
        Some(Items::Tuple(tuple)) => {
            for (i, (item, node)) in items.iter_mut().zip(tuple).enumerate() {
                validate(node, &mut Slot::child(item), &path.index(i), run);
                if run.stopped(start) {
                    return;
                }
            }
        }
        _ => {}
    }
    if let Some(contains) = &s.contains {
        let found = if contains.is_trivially_valid() {
            !items.is_empty()
        } else {
            let (messages, count) = (run.messages.len(), run.count);
            let mut found = false;
            for (i, item) in items.iter_mut().enumerate() {
                let before = run.count;
                validate(contains, &mut Slot::child(item), &path.index(i), run);
                if run.count == before {
                    found = true;
                    break;
                }
            }
            if found {
                run.messages.truncate(messages);
                run.count = count;
            }
            found
        };
        if !found {
            run.report_at(s, path, || {
                "must contain at least 1 valid item(s)".to_owned()
            });
            if run.stopped(start) {
                return;
            }
        }
    }
    if s.unique_items
        && let Some((i, j)) = duplicate(items, &s.unique_item_types)
    {
        run.report_at(s, path, || {
            format!("must be unique but elements {j} and {i} are the same")
        });
    }
}

/// Keys in JavaScript's `for…in` order: array indices ascending, then insertion order.
fn js_key_order(map: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<(&String, ())> = map.keys().map(|k| (k, ())).collect();
    js::sort_property_order(&mut keys);
    keys.into_iter().map(|(k, _)| k.clone()).collect()
}

fn matches_pattern_property(s: &SchemaNode, key: &str) -> bool {
    s.pattern_properties
        .iter()
        .any(|(p, _)| p.regex.is_match(key))
}

/// Which of a schema's properties a payload object has.
enum Presence {
    Small(u128),
    Large(Vec<bool>),
}

impl Presence {
    fn new(len: usize) -> Self {
        if len <= 128 {
            Presence::Small(0)
        } else {
            Presence::Large(vec![false; len])
        }
    }

    fn insert(&mut self, position: usize) {
        match self {
            Presence::Small(bits) => *bits |= 1u128.checked_shl(position as u32).unwrap_or(0),
            Presence::Large(flags) => {
                if let Some(flag) = flags.get_mut(position) {
                    *flag = true;
                }
            }
        }
    }

    fn contains(&self, position: usize) -> bool {
        match self {
            Presence::Small(bits) => bits & 1u128.checked_shl(position as u32).unwrap_or(0) != 0,
            Presence::Large(flags) => flags.get(position).copied().unwrap_or(false),
        }
    }
}

fn object_keywords(
    s: &SchemaNode,
    slot: &mut Slot<'_>,
    path: &Path<'_>,
    run: &mut Run<'_>,
    start: usize,
) {
    let Some(Value::Object(map)) = slot.view() else {
        return;
    };
    let len = map.len();
    if let Some(max) = s.max_properties.as_ref().filter(|l| len as f64 > l.value) {
        run.report_at(s, path, || {
            format!(
                "must have {} or fewer properties but it has {len}",
                max.text
            )
        });
        if run.stopped(start) {
            return;
        }
    }
    if let Some(min) = s.min_properties.as_ref().filter(|l| (len as f64) < l.value) {
        run.report_at(s, path, || {
            format!("must have {} or more properties but it has {len}", min.text)
        });
        if run.stopped(start) {
            return;
        }
    }

    // One pass over the keys: which properties are present, whether any key is unknown.
    let cacheable = len <= KEY_CACHE;
    let mut positions = [NO_POSITION; KEY_CACHE];
    let mut present = Presence::new(s.properties.entries.len());
    let mut has_additional = false;
    let mut previous = None;
    for (i, key) in map.keys().enumerate() {
        let position = s.properties.position_after(key, previous);
        previous = position.or(previous);
        match position {
            Some(p) => present.insert(p),
            None => has_additional = has_additional || !matches_pattern_property(s, key),
        }
        if let Some(slot) = positions.get_mut(i) {
            *slot = position
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(NO_POSITION);
        }
    }

    for required in &s.required {
        let found = match required.property {
            Some(p) => present.contains(p),
            None => map.contains_key(&required.name),
        };
        if !found {
            run.report_at(s, path, || {
                format!("is missing the required field '{}'", required.name)
            });
            if run.stopped(start) {
                return;
            }
        }
    }

    if let Some(names) = s
        .property_names
        .as_ref()
        .filter(|n| !n.is_trivially_valid())
    {
        let names_id = match names {
            Node::Schema(inner) => Some(schema_id(inner)),
            Node::Bool(_) => None,
        };
        for key in js_key_order(map) {
            let mut name = Value::String(key.clone());
            let before = run.count;
            let outer = run.property_names_schema.replace(names_id.unwrap_or(0));
            // A property name has no parent to write a coercion back to.
            validate(names, &mut Slot::root(&mut name), path, run);
            run.property_names_schema = outer;
            if run.count > before {
                run.report_at(s, path, || {
                    format!(
                        "has an invalid property name {}",
                        junction_js::stringify(&Value::String(key.clone()))
                    )
                });
                if run.stopped(start) {
                    return;
                }
            }
        }
    }

    let mut removed = false;
    if has_additional {
        let is_additional =
            |key: &str| s.properties.position(key).is_none() && !matches_pattern_property(s, key);
        match &s.additional_properties {
            Some(Node::Bool(false)) if run.options.remove_additional => {
                map.retain(|key, _| !is_additional(key));
                removed = true;
            }
            Some(Node::Bool(false)) => {
                let allowed: Vec<&str> = s
                    .properties
                    .entries
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect();
                let allowed = allowed.join(", ");
                for key in js_key_order(map).into_iter().filter(|k| is_additional(k)) {
                    run.report_at(s, path, || {
                        format!("has an unexpected property, {key}, which is not in the list of allowed properties ({allowed})")
                    });
                    if run.stopped(start) {
                        return;
                    }
                }
            }
            Some(node) if !node.is_trivially_valid() => {
                for key in js_key_order(map).into_iter().filter(|k| is_additional(k)) {
                    if let Some(value) = map.get_mut(&key) {
                        validate(node, &mut Slot::child(value), &path.key(&key), run);
                    }
                    if run.stopped(start) {
                        return;
                    }
                }
            }
            _ => {}
        }
    }

    if !s.dependencies.is_empty() {
        for (property, dependency) in &s.dependencies {
            let Some(Value::Object(map)) = slot.view() else {
                return;
            };
            if !map.contains_key(property) {
                continue;
            }
            match dependency {
                Dependency::Properties(names) => {
                    let missing: Vec<&String> =
                        names.iter().filter(|n| !map.contains_key(*n)).collect();
                    for name in missing {
                        run.report_at(s, path, || {
                            format!("must have property {name} when {property} is present")
                        });
                        if run.stopped(start) {
                            return;
                        }
                    }
                }
                Dependency::Schema(node) => {
                    validate(node, slot, path, run);
                    if run.stopped(start) {
                        return;
                    }
                }
            }
        }
    }

    let Some(Value::Object(map)) = slot.view() else {
        return;
    };
    if !s.properties.entries.is_empty() {
        let use_cache = cacheable && !removed && map.len() == len;
        // Ajv reports properties in schema order; they are visited in payload order, so
        // the messages of each property are remembered and put in order afterwards.
        let mut segments: Vec<(usize, usize)> = Vec::new();
        for (i, (key, value)) in map.iter_mut().enumerate() {
            let position = if use_cache {
                positions
                    .get(i)
                    .copied()
                    .filter(|&p| p != NO_POSITION)
                    .map(|p| p as usize)
            } else {
                s.properties.position(key)
            };
            let Some(node) = position.and_then(|p| s.properties.node(p)) else {
                continue;
            };
            // Most fields are a plain type check that passes: skip the call.
            if let Node::Schema(p) = node
                && p.type_check_only
                && matches_mask(p.type_mask, value)
            {
                continue;
            }
            let before = run.messages.len();
            validate(node, &mut Slot::child(value), &path.key(key), run);
            if run.messages.len() > before {
                segments.push((position.unwrap_or(0), before));
            }
            if run.stopped(start) {
                return;
            }
        }
        order_segments(&mut run.messages, &mut segments);
    }

    if !s.pattern_properties.is_empty() {
        for (pattern, node) in &s.pattern_properties {
            let keys: Vec<String> = js_key_order(map)
                .into_iter()
                .filter(|k| pattern.regex.is_match(k))
                .collect();
            for key in keys {
                if let Some(value) = map.get_mut(&key) {
                    validate(node, &mut Slot::child(value), &path.key(&key), run);
                }
                if run.stopped(start) {
                    return;
                }
            }
        }
    }
}

/// Reorders trailing message segments (`(property position, first message index)`, in the
/// order they were produced) into property order.
fn order_segments(messages: &mut Vec<String>, segments: &mut [(usize, usize)]) {
    if segments
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.0 <= b.0))
    {
        return;
    }
    let Some(&(_, first)) = segments.first() else {
        return;
    };
    let mut tail = messages.split_off(first);
    let mut parts: Vec<(usize, Vec<String>)> = Vec::with_capacity(segments.len());
    for (position, start) in segments.iter().rev() {
        parts.push((*position, tail.split_off(start - first)));
    }
    parts.reverse();
    parts.sort_by_key(|(position, _)| *position);
    for (_, part) in parts {
        messages.extend(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercions_follow_ajv() {
        use JsonType::*;
        let coerce = |targets: &[JsonType], v: &Value| match coerce_scalar(targets, v, None) {
            Some(Coerced::Json(value)) => Some(value),
            Some(Coerced::NonFinite(_)) => Some(json!("non-finite")),
            None => None,
        };
        assert_eq!(
            coerce(&[Number], &json!("-Infinity")),
            Some(json!("non-finite"))
        );
        assert_eq!(
            coerce_scalar(&[String], &Value::Null, Some(f64::INFINITY)),
            Some(Coerced::Json(json!("Infinity")))
        );
        assert_eq!(coerce(&[String], &json!(12.5)), Some(json!("12.5")));
        assert_eq!(coerce(&[String], &json!(1234)), Some(json!("1234")));
        assert_eq!(coerce(&[String], &json!(true)), Some(json!("true")));
        assert_eq!(coerce(&[String], &json!(null)), Some(json!("")));
        assert_eq!(coerce(&[Number], &json!("12")), Some(json!(12)));
        assert_eq!(coerce(&[Number], &json!(" 0x10 ")), Some(json!(16)));
        assert_eq!(coerce(&[Number], &json!("")), None);
        assert_eq!(coerce(&[Number], &json!("abc")), None);
        assert_eq!(coerce(&[Number], &json!(true)), Some(json!(1)));
        assert_eq!(coerce(&[Integer], &json!("1.5")), None);
        assert_eq!(coerce(&[Integer], &json!("2.0")), Some(json!(2)));
        assert_eq!(coerce(&[Boolean], &json!("false")), Some(json!(false)));
        assert_eq!(coerce(&[Boolean], &json!(1)), Some(json!(true)));
        assert_eq!(coerce(&[Boolean], &json!("yes")), None);
        assert_eq!(coerce(&[Null], &json!(0)), Some(json!(null)));
        assert_eq!(coerce(&[Array], &json!("a")), Some(json!(["a"])));
        assert_eq!(coerce(&[String, Number], &json!(true)), Some(json!("true")));
        assert_eq!(coerce(&[Number, String], &json!(true)), Some(json!(1)));
        assert_eq!(coerce(&[String], &json!({})), None);
    }

    #[test]
    fn unwrapped_arrays_check_all_types() {
        use JsonType::*;
        assert!(types_hold_after_unwrap(&[String], &json!("a")));
        assert!(!types_hold_after_unwrap(&[String, Number], &json!(1)));
        assert!(types_hold_after_unwrap(&[Number, Integer], &json!(1)));
    }

    #[test]
    fn multiple_of_uses_parse_int() {
        assert!(is_multiple(20.0, 10.0));
        assert!(!is_multiple(1.0, 10.0));
        assert!(is_multiple(0.3, 0.1) == (0.3f64 / 0.1 == (0.3f64 / 0.1).trunc()));
        assert!(!is_multiple(1e30, 1.0), "1e+30 parses as 1");
    }

    #[test]
    fn js_key_order_puts_indices_first() {
        let map: Map<String, Value> =
            serde_json::from_value(json!({"b": 1, "2": 1, "01": 1, "1": 1})).unwrap();
        assert_eq!(js_key_order(&map), ["1", "2", "b", "01"]);
    }

    #[test]
    fn segments_are_reordered() {
        let mut messages: Vec<String> = ["x", "b1", "b2", "a1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut segments = vec![(1, 1), (0, 3)];
        order_segments(&mut messages, &mut segments);
        assert_eq!(messages, ["x", "a1", "b1", "b2"]);
    }
}

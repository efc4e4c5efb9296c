//! Evaluation: an AST compiled once into a [`Program`] (paths split, expected values converted,
//! globs compiled), then run against events without allocating. Semantics are the reference's
//! `validate` (`fql.md` §5), extended to `event-path` fields (D2) and globs (D4).

use serde_json::{Map, Value};

use crate::ast::{Field, GroupOperator, Node, Operator};
use crate::error::EvaluateError;
use crate::glob::Glob;
use crate::js;

/// A compiled trigger.
#[derive(Debug, Clone)]
pub(crate) enum Program {
    Const(bool),
    All(Box<[Program]>),
    Any(Box<[Program]>),
    Leaf(Leaf),
}

#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    access: Access,
    test: Test,
}

/// Where a condition's value comes from.
#[derive(Debug, Clone)]
enum Access {
    /// A top-level member (`type`, `event`, `name`, `userId`).
    Member(&'static str),
    /// A path under a top-level member (`properties`, `traits`, `context`).
    Under {
        root: &'static str,
        path: Box<[Segment]>,
    },
    /// A path from the event itself (D2).
    Whole(Box<[Segment]>),
}

/// One path segment, with what an array or string lookup needs precomputed.
#[derive(Debug, Clone)]
struct Segment {
    key: Box<str>,
    /// The segment as a canonical array index (`0`, `17`; not `01`).
    index: Option<usize>,
    is_length: bool,
}

/// A condition's test with its expected value already converted (`String(e)`, `Number(e)`).
#[derive(Debug, Clone)]
enum Test {
    StrEq(Box<str>),
    StrNe(Box<str>),
    NumEq(f64),
    NumNe(f64),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Contains(Box<str>),
    NotContains(Box<str>),
    StartsWith(Box<str>),
    NotStartsWith(Box<str>),
    EndsWith(Box<str>),
    NotEndsWith(Box<str>),
    Glob(Glob),
    NotGlob(Glob),
    Exists,
    NotExists,
    IsTrue,
    IsFalse,
    Never,
}

/// A value read from an event: what JS `get` would return.
#[derive(Debug, Clone, Copy)]
enum Actual<'a> {
    Absent,
    Json(&'a Value),
    /// One UTF-16 code unit read from a string by index (JS gives a one-unit string).
    Unit(u16),
    /// The `length` of an array or string (a number).
    Length(usize),
}

/// A string value as seen by the string operators.
enum Text<'a> {
    Str(&'a str),
    /// A lone surrogate: a one-unit string equal to no Rust string.
    LoneSurrogate,
}

/// Compiles the top-level node. Like the reference, only a group is evaluated: an error node
/// or a bare condition at the top never matches.
pub(crate) fn compile(node: &Node) -> Program {
    match node {
        Node::Group { operator, children } => group(operator, children),
        Node::Condition(_) | Node::Error(_) => Program::Const(false),
    }
}

fn group(operator: &GroupOperator, children: &[Node]) -> Program {
    let compiled = || children.iter().map(child).collect::<Box<[_]>>();
    match (operator, children) {
        (GroupOperator::And | GroupOperator::Or, [only]) => child(only),
        (GroupOperator::And, []) => Program::Const(true),
        (GroupOperator::Or, []) | (GroupOperator::Other(_), _) => Program::Const(false),
        (GroupOperator::And, _) => Program::All(compiled()),
        (GroupOperator::Or, _) => Program::Any(compiled()),
    }
}

fn child(node: &Node) -> Program {
    let condition = match node {
        Node::Group { operator, children } => return group(operator, children),
        Node::Error(_) => return Program::Const(false),
        Node::Condition(condition) => condition,
    };
    let access = match &condition.field {
        Field::EventType => Access::Member("type"),
        Field::Event => Access::Member("event"),
        Field::Name => Access::Member("name"),
        Field::UserId => Access::Member("userId"),
        Field::Property(name) => under("properties", name),
        Field::Trait(name) => under("traits", name),
        Field::Context(name) => under("context", name),
        Field::Path(name) => Access::Whole(segments(name)),
        Field::Unknown { .. } => return Program::Const(false),
    };
    Program::Leaf(Leaf {
        access,
        test: test(&condition.operator, condition.value.as_ref()),
    })
}

fn under(root: &'static str, name: &str) -> Access {
    Access::Under {
        root,
        path: segments(name),
    }
}

/// The reference's path split: maximal runs of characters other than `[`, `.` and `]`, so
/// `a[0].b` is `a`, `0`, `b` and quotes are kept.
fn segments(path: &str) -> Box<[Segment]> {
    path.split(['[', '.', ']'])
        .filter(|key| !key.is_empty())
        .map(|key| Segment {
            key: key.into(),
            index: canonical_index(key),
            is_length: key == "length",
        })
        .collect()
}

fn canonical_index(key: &str) -> Option<usize> {
    let canonical =
        key == "0" || (key.bytes().all(|b| b.is_ascii_digit()) && !key.starts_with('0'));
    if !canonical {
        return None;
    }
    key.parse().ok()
}

fn test(operator: &Operator, expected: Option<&Value>) -> Test {
    let text = || js::to_string(expected).into_boxed_str();
    let number = || js::to_number(expected);
    match operator {
        Operator::Eq => Test::StrEq(text()),
        Operator::Ne => Test::StrNe(text()),
        Operator::NumberEquals => Test::NumEq(number()),
        Operator::NumberNotEquals => Test::NumNe(number()),
        Operator::Lt => Test::Lt(number()),
        Operator::Le => Test::Le(number()),
        Operator::Gt => Test::Gt(number()),
        Operator::Ge => Test::Ge(number()),
        Operator::Contains => Test::Contains(text()),
        Operator::NotContains => Test::NotContains(text()),
        Operator::StartsWith => Test::StartsWith(text()),
        Operator::NotStartsWith => Test::NotStartsWith(text()),
        Operator::EndsWith => Test::EndsWith(text()),
        Operator::NotEndsWith => Test::NotEndsWith(text()),
        Operator::Glob => Test::Glob(Glob::new(&text())),
        Operator::NotGlob => Test::NotGlob(Glob::new(&text())),
        Operator::Exists => Test::Exists,
        Operator::NotExists => Test::NotExists,
        Operator::IsTrue => Test::IsTrue,
        Operator::IsFalse => Test::IsFalse,
        Operator::Other(_) => Test::Never,
    }
}

/// Runs a program against an event.
pub(crate) fn run(program: &Program, event: &Value) -> Result<bool, EvaluateError> {
    match program {
        Program::Const(result) => Ok(*result),
        Program::All(children) => {
            for child in children {
                if !run(child, event)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Program::Any(children) => {
            for child in children {
                if run(child, event)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Program::Leaf(leaf) => Ok(check(&leaf.test, resolve(&leaf.access, event)?)),
    }
}

fn resolve<'a>(access: &Access, event: &'a Value) -> Result<Actual<'a>, EvaluateError> {
    match access {
        Access::Member(key) => member(event, key),
        Access::Under { root, path } => Ok(walk(member(event, root)?, path)),
        Access::Whole(path) => Ok(walk(Actual::Json(event), path)),
    }
}

/// `event[key]`: the reference reads it directly, which throws on a `null` event and is
/// undefined on any other non-object.
fn member<'a>(event: &'a Value, key: &'static str) -> Result<Actual<'a>, EvaluateError> {
    match event {
        Value::Object(map) => Ok(get(map, key).map_or(Actual::Absent, Actual::Json)),
        Value::Null => Err(EvaluateError::NullEvent { field: key }),
        _ => Ok(Actual::Absent),
    }
}

/// Up to this many members, a linear scan beats hashing the key (events are small objects).
const SCAN_LIMIT: usize = 16;

/// An object member by key.
fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() > SCAN_LIMIT {
        return map.get(key);
    }
    map.iter()
        .find(|(candidate, _)| candidate.as_str() == key)
        .map(|(_, value)| value)
}

/// The reference's `get`: step through the segments, but return a falsy intermediate value
/// as is (**quirk**: `a.b` of `{a: 0}` is `0`, so it "exists"). No segments → absent.
fn walk<'a>(start: Actual<'a>, path: &[Segment]) -> Actual<'a> {
    if path.is_empty() {
        return Actual::Absent;
    }
    let mut current = start;
    for segment in path {
        if is_falsy(current) {
            return current;
        }
        current = step(current, segment);
    }
    current
}

fn is_falsy(value: Actual<'_>) -> bool {
    match value {
        Actual::Absent => true,
        Actual::Json(Value::Null) => true,
        Actual::Json(Value::Bool(b)) => !b,
        Actual::Json(Value::Number(n)) => n.as_f64() == Some(0.0),
        Actual::Json(Value::String(s)) => s.is_empty(),
        Actual::Json(Value::Array(_) | Value::Object(_)) => false,
        Actual::Unit(_) => false,
        Actual::Length(n) => n == 0,
    }
}

/// One JS property read. Inherited properties (`constructor`, …) are absent here.
fn step<'a>(value: Actual<'a>, segment: &Segment) -> Actual<'a> {
    match value {
        Actual::Json(Value::Object(map)) => {
            get(map, &segment.key).map_or(Actual::Absent, Actual::Json)
        }
        Actual::Json(Value::Array(items)) if segment.is_length => Actual::Length(items.len()),
        Actual::Json(Value::Array(items)) => segment
            .index
            .and_then(|i| items.get(i))
            .map_or(Actual::Absent, Actual::Json),
        Actual::Json(Value::String(s)) if segment.is_length => {
            Actual::Length(s.encode_utf16().count())
        }
        Actual::Json(Value::String(s)) => segment
            .index
            .and_then(|i| s.encode_utf16().nth(i))
            .map_or(Actual::Absent, Actual::Unit),
        Actual::Unit(_) if segment.is_length => Actual::Length(1),
        Actual::Unit(unit) if segment.index == Some(0) => Actual::Unit(unit),
        _ => Actual::Absent,
    }
}

fn as_text<'a>(value: Actual<'a>, buffer: &'a mut [u8; 4]) -> Option<Text<'a>> {
    match value {
        Actual::Json(Value::String(s)) => Some(Text::Str(s)),
        Actual::Unit(unit) => Some(match char::from_u32(u32::from(unit)) {
            Some(c) => Text::Str(c.encode_utf8(buffer)),
            None => Text::LoneSurrogate,
        }),
        _ => None,
    }
}

fn as_number(value: Actual<'_>) -> Option<f64> {
    match value {
        Actual::Json(Value::Number(n)) => n.as_f64(),
        #[allow(clippy::cast_precision_loss)]
        Actual::Length(n) => Some(n as f64),
        _ => None,
    }
}

/// A string test: `on_str` for a string, `on_surrogate` for a lone surrogate, false for every
/// non-string (so the `not_*` operators are false on missing values, as in the reference).
fn string_test(
    value: Actual<'_>,
    on_str: impl FnOnce(&str) -> bool,
    on_surrogate: impl FnOnce() -> bool,
) -> bool {
    let mut buffer = [0; 4];
    match as_text(value, &mut buffer) {
        Some(Text::Str(s)) => on_str(s),
        Some(Text::LoneSurrogate) => on_surrogate(),
        None => false,
    }
}

fn number_test(value: Actual<'_>, holds: impl FnOnce(f64) -> bool) -> bool {
    as_number(value).is_some_and(holds)
}

fn check(test: &Test, value: Actual<'_>) -> bool {
    match test {
        Test::StrEq(e) => string_test(value, |s| s == &**e, || false),
        Test::StrNe(e) => !string_test(value, |s| s == &**e, || false),
        Test::NumEq(e) => number_test(value, |n| n == *e),
        Test::NumNe(e) => number_test(value, |n| n != *e),
        Test::Lt(e) => number_test(value, |n| n < *e),
        Test::Le(e) => number_test(value, |n| n <= *e),
        Test::Gt(e) => number_test(value, |n| n > *e),
        Test::Ge(e) => number_test(value, |n| n >= *e),
        Test::Contains(e) => string_test(value, |s| s.contains(&**e), || e.is_empty()),
        Test::NotContains(e) => string_test(value, |s| !s.contains(&**e), || !e.is_empty()),
        Test::StartsWith(e) => string_test(value, |s| s.starts_with(&**e), || e.is_empty()),
        Test::NotStartsWith(e) => string_test(value, |s| !s.starts_with(&**e), || !e.is_empty()),
        Test::EndsWith(e) => string_test(value, |s| s.ends_with(&**e), || e.is_empty()),
        Test::NotEndsWith(e) => string_test(value, |s| !s.ends_with(&**e), || !e.is_empty()),
        Test::Glob(glob) => {
            string_test(value, |s| glob.matches(s), || glob.matches_single_opaque())
        }
        Test::NotGlob(glob) => string_test(
            value,
            |s| !glob.matches(s),
            || !glob.matches_single_opaque(),
        ),
        Test::Exists => !matches!(value, Actual::Absent | Actual::Json(Value::Null)),
        Test::NotExists => matches!(value, Actual::Absent | Actual::Json(Value::Null)),
        Test::IsTrue => matches!(value, Actual::Json(Value::Bool(true))),
        Test::IsFalse => matches!(value, Actual::Json(Value::Bool(false))),
        Test::Never => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(node: Value, event: Value) -> Result<bool, EvaluateError> {
        let node: Node = serde_json::from_value(node).unwrap();
        run(&compile(&node), &event)
    }

    fn property(name: &str, operator: &str, value: Option<Value>) -> Value {
        let mut condition = json!({"type": "event-property", "name": name, "operator": operator});
        if let Some(value) = value {
            condition["value"] = value;
        }
        json!({"type": "group", "operator": "and", "children": [condition]})
    }

    fn path(name: &str, operator: &str, value: Value) -> Value {
        json!({"type": "group", "operator": "and", "children": [
            {"type": "event-path", "name": name, "operator": operator, "value": value}
        ]})
    }

    #[test]
    fn falsy_intermediates_are_returned() {
        for falsy in [json!(0), json!(""), json!(false)] {
            let event = json!({"properties": {"a": falsy}});
            assert_eq!(eval(property("a.b", "exists", None), event), Ok(true));
        }
        let event = json!({"properties": {"a": null}});
        assert_eq!(eval(property("a.b", "exists", None), event), Ok(false));
        let event = json!({"properties": {"a": {}}});
        assert_eq!(eval(property("a.b", "exists", None), event), Ok(false));
    }

    #[test]
    fn arrays_and_strings_index_and_have_length() {
        let event = json!({"properties": {"items": [{"sku": "A"}], "s": "héllo"}});
        let check = |name: &str, operator: &str, value: Value| {
            eval(property(name, operator, Some(value)), event.clone()).unwrap()
        };
        assert!(check("items[0].sku", "=", json!("A")));
        assert!(check("items.0.sku", "=", json!("A")));
        assert!(!check("items.00.sku", "=", json!("A")));
        assert!(check("items.length", "number_equals", json!(1)));
        assert!(check("s.length", "number_equals", json!(5)));
        assert!(check("s.1", "=", json!("é")));
        assert!(check("s.1.0.length", "number_equals", json!(1)));
        assert!(!check("s.9", "exists", json!(null)));
        // An empty array's length is 0, a falsy intermediate returned as is.
        let empty = json!({"properties": {"items": []}});
        assert_eq!(
            eval(
                property("items.length.x", "number_equals", Some(json!(0))),
                empty
            ),
            Ok(true)
        );
    }

    #[test]
    fn lone_surrogates_from_string_indexes() {
        let event = json!({"properties": {"s": "😀"}});
        let check = |operator: &str, value: Value| {
            eval(property("s.0", operator, Some(value)), event.clone()).unwrap()
        };
        assert!(check("exists", json!(null)));
        assert!(check("!=", json!("😀")));
        assert!(!check("=", json!("😀")));
        assert!(check("contains", json!("")));
        assert!(!check("not_contains", json!("")));
        assert!(check("glob", json!("?")));
        assert!(!check("glob", json!("??")));
    }

    #[test]
    fn typing_is_strict() {
        let event = json!({"properties": {"n": 10, "s": "10", "b": true}});
        let check = |name: &str, operator: &str, value: Value| {
            eval(property(name, operator, Some(value)), event.clone()).unwrap()
        };
        assert!(check("n", ">", json!("5")));
        assert!(!check("s", ">", json!(5)));
        assert!(!check("n", "=", json!(10)));
        assert!(check("s", "=", json!(10)));
        assert!(check("n", "!=", json!(10)));
        assert!(!check("missing", "number_not_equals", json!(3)));
        assert!(check("missing", "!=", json!("x")));
        assert!(!check("missing", "not_contains", json!("x")));
        assert!(!check("n", "<", json!("abc")));
        assert!(!check("b", "=", json!("true")));
        assert!(!check("n", "~", json!(10)));
    }

    #[test]
    fn event_paths_read_from_the_root() {
        let event = json!({"anonymousId": "a1", "integrations": {"Salesforce": false}});
        assert_eq!(
            eval(path("anonymousId", "=", json!("a1")), event.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(
                path("integrations.Salesforce.x", "exists", json!(null)),
                event.clone()
            ),
            Ok(true)
        );
        assert_eq!(eval(path("missing", "!=", json!("x")), event), Ok(true));
        // A path lookup does not throw on a null event; a member read does.
        assert_eq!(
            eval(path("a", "exists", json!(null)), json!(null)),
            Ok(false)
        );
        assert_eq!(
            eval(property("a", "exists", None), json!(null)),
            Err(EvaluateError::NullEvent {
                field: "properties"
            })
        );
    }

    #[test]
    fn non_object_events_have_no_members() {
        let node = json!({"type": "group", "operator": "and", "children": [
            {"type": "event-type", "operator": "!=", "value": "x"}
        ]});
        for event in [json!(""), json!("abc"), json!(5), json!([1]), json!(true)] {
            assert_eq!(eval(node.clone(), event), Ok(true));
        }
        assert_eq!(
            eval(path("length", "number_equals", json!(3)), json!("abc")),
            Ok(true)
        );
    }

    #[test]
    fn null_event_errors_on_the_first_member_read() {
        let empty_and = json!({"type": "group", "operator": "and", "children": []});
        assert_eq!(eval(empty_and, json!(null)), Ok(true));
        let unknown_first = json!({"type": "group", "operator": "or", "children": [
            {"type": "bogus", "operator": "="},
            {"type": "userId", "operator": "exists"},
        ]});
        assert_eq!(
            eval(unknown_first, json!(null)),
            Err(EvaluateError::NullEvent { field: "userId" })
        );
    }

    #[test]
    fn top_level_condition_and_error_never_match() {
        let leaf = json!({"type": "event", "operator": "exists"});
        assert_eq!(eval(leaf, json!({"event": "x"})), Ok(false));
        let nested_error = json!({"type": "group", "operator": "or", "children": [{"error": {}}]});
        assert_eq!(eval(nested_error, json!({})), Ok(false));
    }
}

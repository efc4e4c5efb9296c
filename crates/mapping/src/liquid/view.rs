//! The payload as Liquid sees it: lazy views over the JSON (no copy of the event), rendering with
//! LiquidJS's conventions (JS numbers, arrays concatenated, `[object Object]`, nothing for nil)
//! and answering every missing lookup with nil instead of an error, as LiquidJS's lax mode does.

use std::cell::OnceCell;
use std::fmt;

use liquid_core::model::{
    ArrayView, DisplayCow, KStringCow, ObjectView, ScalarCow, State, Value as LiquidValue,
    ValueView,
};
use serde_json::{Number, Value};

use crate::out::{self, Out, Payload};

/// What a view points at.
#[derive(Debug, Clone, Copy)]
enum Src<'a> {
    /// JS `undefined`.
    Missing,
    Json(&'a Value),
    /// A resolved array or object.
    Out(&'a Out<'a>),
}

impl<'a> Src<'a> {
    fn from_payload(payload: Payload<'a>) -> Self {
        match payload {
            Payload::Absent => Src::Missing,
            Payload::Json(v) => Src::Json(v),
            Payload::Out(o) => Src::from_out(o),
        }
    }

    fn from_out(out: &'a Out<'a>) -> Self {
        match out {
            Out::Absent => Src::Missing,
            Out::Ref(v) => Src::Json(v),
            Out::Own(v) => Src::Json(v),
            Out::Arr(_) | Out::Obj(_) => Src::Out(out),
        }
    }

    fn shape(self) -> Shape<'a> {
        match self {
            Src::Missing => Shape::Undefined,
            Src::Json(Value::Null) => Shape::Null,
            Src::Json(Value::Bool(b)) => Shape::Bool(*b),
            Src::Json(Value::Number(n)) => Shape::Number(n),
            Src::Json(Value::String(s)) => Shape::Str(s),
            Src::Json(Value::Array(_)) | Src::Out(Out::Arr(_)) => Shape::Array,
            Src::Json(Value::Object(_)) | Src::Out(_) => Shape::Object,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape<'a> {
    Undefined,
    Null,
    Bool(bool),
    Number(&'a Number),
    Str(&'a str),
    Array,
    Object,
}

/// A value of the payload, with its children built on first access.
#[derive(Debug)]
pub(crate) struct Node<'a> {
    src: Src<'a>,
    kids: OnceCell<Kids<'a>>,
}

#[derive(Debug)]
enum Kids<'a> {
    None,
    Array(Vec<Node<'a>>),
    Object {
        members: Vec<(&'a str, Node<'a>)>,
        /// What `.size` gives when the object has no `size` member.
        size: LiquidValue,
    },
}

/// The view of JS `undefined`: every property of it is `undefined` too.
#[derive(Debug)]
pub(crate) struct Missing;

/// The shared `undefined`.
pub(crate) static MISSING: Missing = Missing;

impl<'a> Node<'a> {
    fn new(src: Src<'a>) -> Self {
        Node {
            src,
            kids: OnceCell::new(),
        }
    }

    fn kids(&self) -> &Kids<'a> {
        self.kids.get_or_init(|| match self.src {
            Src::Missing => Kids::None,
            Src::Json(Value::Array(items)) => {
                Kids::Array(items.iter().map(|v| Node::new(Src::Json(v))).collect())
            }
            Src::Json(Value::Object(map)) => Kids::Object {
                members: map
                    .iter()
                    .map(|(k, v)| (k.as_str(), Node::new(Src::Json(v))))
                    .collect(),
                size: LiquidValue::scalar(map.len() as i64),
            },
            Src::Json(_) => Kids::None,
            Src::Out(Out::Arr(items)) => {
                Kids::Array(items.iter().map(|o| Node::new(Src::from_out(o))).collect())
            }
            Src::Out(Out::Obj(entries)) => {
                let members: Vec<_> = entries
                    .iter()
                    .filter(|(_, v)| !matches!(v, Out::Absent))
                    .map(|(k, v)| (k.as_ref(), Node::new(Src::from_out(v))))
                    .collect();
                let size = LiquidValue::scalar(members.len() as i64);
                Kids::Object { members, size }
            }
            Src::Out(_) => Kids::None,
        })
    }

    fn array_items(&self) -> &[Node<'a>] {
        match self.kids() {
            Kids::Array(items) => items,
            _ => &[],
        }
    }

    fn members(&self) -> &[(&'a str, Node<'a>)] {
        match self.kids() {
            Kids::Object { members, .. } => members,
            _ => &[],
        }
    }

    fn member(&self, key: &str) -> Option<&Node<'a>> {
        self.members()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, node)| node)
    }

    fn is_nil(&self) -> bool {
        matches!(self.src.shape(), Shape::Undefined | Shape::Null)
    }

    /// LiquidJS `stringify`: strings as they are, nil as nothing, arrays concatenated, numbers
    /// as JS prints them, objects as `[object Object]`.
    fn write_rendered(&self, out: &mut String) {
        match self.src.shape() {
            Shape::Undefined | Shape::Null => {}
            Shape::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Shape::Number(n) => junction_js::push_number(n, out),
            Shape::Str(s) => out.push_str(s),
            Shape::Array => self
                .array_items()
                .iter()
                .for_each(|item| item.write_rendered(out)),
            Shape::Object => out.push_str("[object Object]"),
        }
    }

    fn rendered(&self) -> String {
        let mut out = String::new();
        self.write_rendered(&mut out);
        out
    }
}

/// Converts any JSON into a Liquid value (for `assign` and filters that keep their input).
pub(crate) fn json_to_liquid(value: &Value) -> LiquidValue {
    match value {
        Value::Null => LiquidValue::Nil,
        Value::Bool(b) => LiquidValue::scalar(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => LiquidValue::scalar(i),
            None => LiquidValue::scalar(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => LiquidValue::scalar(s.clone()),
        Value::Array(items) => LiquidValue::Array(items.iter().map(json_to_liquid).collect()),
        Value::Object(map) => LiquidValue::Object(
            map.iter()
                .map(|(k, v)| (k.clone().into(), json_to_liquid(v)))
                .collect(),
        ),
    }
}

fn out_to_liquid(value: &Out<'_>) -> LiquidValue {
    match value {
        Out::Absent => LiquidValue::Nil,
        Out::Ref(v) => json_to_liquid(v),
        Out::Own(v) => json_to_liquid(v),
        Out::Arr(items) => LiquidValue::Array(items.iter().map(out_to_liquid).collect()),
        Out::Obj(entries) => LiquidValue::Object(
            entries
                .iter()
                .filter(|(_, v)| !matches!(v, Out::Absent))
                .map(|(k, v)| (k.to_string().into(), out_to_liquid(v)))
                .collect(),
        ),
    }
}

struct Rendered<'n, 'a>(&'n Node<'a>);

impl fmt::Display for Rendered<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.rendered())
    }
}

struct Source<'n, 'a>(&'n Node<'a>);

impl fmt::Display for Source<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0.src {
            Src::Missing => "undefined".to_owned(),
            Src::Json(v) => {
                let mut s = String::new();
                junction_js::push_json(v, &mut s);
                s
            }
            Src::Out(o) => out::json_stringify(o).unwrap_or_default(),
        };
        f.write_str(&text)
    }
}

impl ValueView for Node<'_> {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        DisplayCow::Owned(Box::new(Rendered(self)))
    }

    fn source(&self) -> DisplayCow<'_> {
        DisplayCow::Owned(Box::new(Source(self)))
    }

    fn type_name(&self) -> &'static str {
        match self.src.shape() {
            Shape::Undefined => "undefined",
            Shape::Null => "nil",
            Shape::Bool(_) => "boolean",
            Shape::Number(n) if n.is_f64() => "fractional number",
            Shape::Number(_) => "whole number",
            Shape::Str(_) => "string",
            Shape::Array => "array",
            Shape::Object => "object",
        }
    }

    fn query_state(&self, state: State) -> bool {
        let shape = self.src.shape();
        let empty = match shape {
            Shape::Str(s) => s.is_empty(),
            Shape::Array => self.array_items().is_empty(),
            Shape::Object => self.members().is_empty(),
            _ => false,
        };
        let falsy = matches!(shape, Shape::Undefined | Shape::Null | Shape::Bool(false));
        match state {
            State::Truthy => !falsy,
            State::DefaultValue => falsy || empty,
            State::Empty => empty,
            State::Blank => falsy || empty || matches!(shape, Shape::Str(s) if s.trim().is_empty()),
        }
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        KStringCow::from_string(self.rendered())
    }

    fn to_value(&self) -> LiquidValue {
        match self.src {
            Src::Missing => LiquidValue::Nil,
            Src::Json(v) => json_to_liquid(v),
            Src::Out(o) => out_to_liquid(o),
        }
    }

    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match self.src.shape() {
            Shape::Bool(b) => Some(ScalarCow::new(b)),
            Shape::Number(n) => match n.as_i64() {
                Some(i) => Some(ScalarCow::new(i)),
                None => Some(ScalarCow::new(n.as_f64().unwrap_or(f64::NAN))),
            },
            Shape::Str(s) => Some(ScalarCow::new(s)),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&dyn ArrayView> {
        match self.src.shape() {
            Shape::Array => Some(self),
            _ => None,
        }
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        // Nil answers property lookups too (with nil), so `a.b.c` on a missing `a` renders
        // nothing instead of failing.
        match self.src.shape() {
            Shape::Object | Shape::Undefined | Shape::Null => Some(self),
            _ => None,
        }
    }

    fn is_nil(&self) -> bool {
        Node::is_nil(self)
    }
}

impl ArrayView for Node<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        self.array_items().len() as i64
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.array_items().iter().map(|n| n as &dyn ValueView))
    }

    fn contains_key(&self, index: i64) -> bool {
        self.index(index).is_some()
    }

    fn get(&self, index: i64) -> Option<&dyn ValueView> {
        Some(match self.index(index) {
            Some(node) => node,
            None => &MISSING,
        })
    }
}

impl<'a> Node<'a> {
    fn index(&self, index: i64) -> Option<&Node<'a>> {
        let items = self.array_items();
        let at = if index < 0 {
            i64::try_from(items.len()).ok()?.checked_add(index)?
        } else {
            index
        };
        items.get(usize::try_from(at).ok()?)
    }
}

impl ObjectView for Node<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        self.members().len() as i64
    }

    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.members().iter().map(|(k, _)| KStringCow::from_ref(k)))
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.members().iter().map(|(_, v)| v as &dyn ValueView))
    }

    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            self.members()
                .iter()
                .map(|(k, v)| (KStringCow::from_ref(k), v as &dyn ValueView)),
        )
    }

    fn contains_key(&self, index: &str) -> bool {
        self.member(index).is_some()
    }

    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        if let Some(node) = self.member(index) {
            return Some(node);
        }
        if index == "size"
            && let Kids::Object { size, .. } = self.kids()
        {
            return Some(size);
        }
        Some(&MISSING)
    }
}

impl ValueView for Missing {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        DisplayCow::Borrowed(&"")
    }

    fn source(&self) -> DisplayCow<'_> {
        DisplayCow::Borrowed(&"undefined")
    }

    fn type_name(&self) -> &'static str {
        "undefined"
    }

    fn query_state(&self, state: State) -> bool {
        !matches!(state, State::Truthy | State::Empty)
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        KStringCow::from_static("")
    }

    fn to_value(&self) -> LiquidValue {
        LiquidValue::Nil
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }

    fn is_nil(&self) -> bool {
        true
    }
}

impl ObjectView for Missing {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        0
    }

    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(std::iter::empty())
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(std::iter::empty())
    }

    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(std::iter::empty())
    }

    fn contains_key(&self, _index: &str) -> bool {
        false
    }

    fn get<'s>(&'s self, _index: &str) -> Option<&'s dyn ValueView> {
        Some(&MISSING)
    }
}

/// The global scope of a render: the payload. Every name resolves (to nil when absent), so the
/// runtime never reports an unknown variable.
#[derive(Debug)]
pub(crate) struct Scope<'a> {
    root: Node<'a>,
}

impl<'a> Scope<'a> {
    /// The scope of `payload`.
    pub(crate) fn new(payload: Payload<'a>) -> Self {
        Scope {
            root: Node::new(Src::from_payload(payload)),
        }
    }
}

impl ValueView for Scope<'_> {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        self.root.render()
    }

    fn source(&self) -> DisplayCow<'_> {
        self.root.source()
    }

    fn type_name(&self) -> &'static str {
        "object"
    }

    fn query_state(&self, state: State) -> bool {
        self.root.query_state(state)
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        self.root.to_kstr()
    }

    fn to_value(&self) -> LiquidValue {
        self.root.to_value()
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

impl ObjectView for Scope<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        self.root.members().len() as i64
    }

    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        ObjectView::keys(&self.root)
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        ObjectView::values(&self.root)
    }

    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        ObjectView::iter(&self.root)
    }

    fn contains_key(&self, _index: &str) -> bool {
        true
    }

    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        Some(match self.root.member(index) {
            Some(node) => node,
            None => &MISSING,
        })
    }
}

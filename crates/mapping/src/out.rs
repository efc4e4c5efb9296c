//! Intermediate values of a resolution: JSON that may contain *absent* (JS `undefined`) and that
//! borrows from the event and the mapping until the final cleaning clones what is output.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::js;

/// A resolved value. Nothing is cloned while resolving: `Ref` points into the event or the
/// mapping; absent members and slots are kept until [`materialize`] drops or nulls them, as the
/// reference's final `removeUndefined` does.
#[derive(Debug, Clone)]
pub(crate) enum Out<'a> {
    /// JS `undefined`.
    Absent,
    /// A value borrowed from the event or the mapping.
    Ref(&'a Value),
    /// A value computed during the resolution.
    Own(Value),
    /// An array whose slots may be absent.
    Arr(Vec<Out<'a>>),
    /// An object (unique keys, insertion order) whose members may be absent.
    Obj(Vec<(Cow<'a, str>, Out<'a>)>),
}

/// What directives read from: the event, or a value produced by `@arrayPath`/`@transform`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload<'a> {
    /// JS `undefined`.
    Absent,
    /// Plain JSON.
    Json(&'a Value),
    /// A resolved array or object (only `Arr` and `Obj` are stored here).
    Out(&'a Out<'a>),
}

/// The result of a lookup: a borrowed value or one computed on the way (`length`, `s[i]`).
#[derive(Debug)]
pub(crate) enum Found<'a> {
    /// Nothing there.
    Absent,
    /// Plain JSON.
    Json(&'a Value),
    /// A resolved array or object.
    Out(&'a Out<'a>),
    /// A computed value (boxed: lookups pass `Found`s around, and a computed result is rare).
    Own(Box<Value>),
}

impl<'a> Out<'a> {
    /// The reference's `realTypeOf` name.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Out::Absent => "undefined",
            Out::Ref(v) => js::real_type(v),
            Out::Own(v) => js::real_type(v),
            Out::Arr(_) => "array",
            Out::Obj(_) => "object",
        }
    }

    /// The JSON value when this is one.
    pub(crate) fn json(&self) -> Option<&Value> {
        match self {
            Out::Ref(v) => Some(v),
            Out::Own(v) => Some(v),
            _ => None,
        }
    }

    /// The string when this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        self.json().and_then(Value::as_str)
    }

    /// Whether this is JSON `null`.
    pub(crate) fn is_null(&self) -> bool {
        self.json().is_some_and(Value::is_null)
    }

    /// Whether this is absent or `null` (JS `== null`).
    pub(crate) fn is_nullish(&self) -> bool {
        matches!(self, Out::Absent) || self.is_null()
    }

    /// Whether this is a plain object or an array (JS `typeof x === "object"`, non-null).
    pub(crate) fn is_container(&self) -> bool {
        matches!(self.type_name(), "object" | "array")
    }

    /// Read access as a payload.
    pub(crate) fn payload(&self) -> Payload<'_> {
        match self {
            Out::Absent => Payload::Absent,
            Out::Ref(v) => Payload::Json(v),
            Out::Own(v) => Payload::Json(v),
            Out::Arr(_) | Out::Obj(_) => Payload::Out(self),
        }
    }

    /// Detaches the value from what it borrows, cloning borrowed JSON.
    pub(crate) fn into_static(self) -> Out<'static> {
        match self {
            Out::Absent => Out::Absent,
            Out::Ref(v) => Out::Own(v.clone()),
            Out::Own(v) => Out::Own(v),
            Out::Arr(items) => Out::Arr(items.into_iter().map(Out::into_static).collect()),
            Out::Obj(entries) => Out::Obj(
                entries
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_static()))
                    .collect(),
            ),
        }
    }

    /// JS loose equality with `""` for a non-nullish value: `""`, `0`, `false` and arrays that
    /// stringify to `""` are blank.
    pub(crate) fn is_loosely_blank(&self) -> bool {
        match self {
            Out::Absent => false,
            Out::Ref(v) => json_is_loosely_blank(v),
            Out::Own(v) => json_is_loosely_blank(v),
            Out::Arr(_) => {
                let mut s = String::new();
                push_out_js_string(self, &mut s);
                s.is_empty()
            }
            Out::Obj(_) => false,
        }
    }
}

fn json_is_loosely_blank(value: &Value) -> bool {
    match value {
        Value::Null | Value::Object(_) => false,
        Value::Bool(b) => !b,
        Value::Number(n) => js::number_is_zero(n),
        Value::String(s) => s.is_empty(),
        Value::Array(_) => {
            let mut s = String::new();
            junction_js::push_js_string(value, &mut s);
            s.is_empty()
        }
    }
}

impl<'a> Payload<'a> {
    /// The reference's `realTypeOf` name.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Payload::Absent => "undefined",
            Payload::Json(v) => js::real_type(v),
            Payload::Out(o) => o.type_name(),
        }
    }
}

impl<'a> From<Payload<'a>> for Found<'a> {
    fn from(payload: Payload<'a>) -> Self {
        match payload {
            Payload::Absent => Found::Absent,
            Payload::Json(v) => Found::Json(v),
            Payload::Out(o) => Found::Out(o),
        }
    }
}

impl<'a> Found<'a> {
    /// Wraps a resolved value, unwrapping plain JSON.
    pub(crate) fn from_out(out: &'a Out<'a>) -> Self {
        match out {
            Out::Absent => Found::Absent,
            Out::Ref(v) => Found::Json(v),
            Out::Own(v) => Found::Json(v),
            Out::Arr(_) | Out::Obj(_) => Found::Out(out),
        }
    }

    /// JS truthiness.
    pub(crate) fn is_truthy(&self) -> bool {
        match self {
            Found::Absent => false,
            Found::Json(v) => junction_js::is_truthy(v),
            Found::Own(v) => junction_js::is_truthy(v),
            Found::Out(_) => true,
        }
    }

    /// Converts into a resolved value (cloning a resolved array or object it points to).
    pub(crate) fn into_out(self) -> Out<'a> {
        match self {
            Found::Absent => Out::Absent,
            Found::Json(v) => Out::Ref(v),
            Found::Out(o) => o.clone(),
            Found::Own(v) => Out::Own(*v),
        }
    }

    /// The borrowed value as a payload; `None` for a computed one.
    pub(crate) fn as_payload(&self) -> Option<Payload<'a>> {
        match self {
            Found::Absent => Some(Payload::Absent),
            Found::Json(v) => Some(Payload::Json(v)),
            Found::Out(o) => Some(Payload::Out(o)),
            Found::Own(_) => None,
        }
    }

    /// Converts into plain JSON (`None` when absent; absent array slots become `null`).
    pub(crate) fn into_value(self) -> Option<Value> {
        match self {
            Found::Absent => None,
            Found::Json(v) => Some(v.clone()),
            Found::Own(v) => Some(*v),
            Found::Out(o) => materialize(o.clone()),
        }
    }

    /// Clones into plain JSON (`None` when absent; absent array slots become `null`).
    pub(crate) fn to_value(&self) -> Option<Value> {
        match self {
            Found::Absent => None,
            Found::Json(v) => Some((*v).clone()),
            Found::Own(v) => Some((**v).clone()),
            Found::Out(o) => materialize((*o).clone()),
        }
    }

    /// What `@template` inserts: `""` for null or absent, else JS `String(x)`.
    pub(crate) fn push_template_string(&self, out: &mut String) {
        match self {
            Found::Absent => {}
            Found::Json(v) => {
                if !v.is_null() {
                    junction_js::push_js_string(v, out);
                }
            }
            Found::Own(v) => {
                if !v.is_null() {
                    junction_js::push_js_string(v, out);
                }
            }
            Found::Out(o) => push_out_js_string(o, out),
        }
    }
}

/// JS `String(x)` of a resolved value.
pub(crate) fn push_out_js_string(out_value: &Out<'_>, out: &mut String) {
    match out_value {
        Out::Absent => out.push_str("undefined"),
        Out::Ref(v) => junction_js::push_js_string(v, out),
        Out::Own(v) => junction_js::push_js_string(v, out),
        Out::Arr(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !item.is_nullish() {
                    push_out_js_string(item, out);
                }
            }
        }
        Out::Obj(_) => out.push_str("[object Object]"),
    }
}

/// `JSON.stringify(x)`: `None` for absent; absent members are skipped, absent slots are `null`.
pub(crate) fn json_stringify(value: &Out<'_>) -> Option<String> {
    let mut out = String::new();
    match value {
        Out::Absent => return None,
        _ => push_out_json(value, &mut out),
    }
    Some(out)
}

fn push_out_json(value: &Out<'_>, out: &mut String) {
    match value {
        Out::Absent => out.push_str("null"),
        Out::Ref(v) => junction_js::push_json(v, out),
        Out::Own(v) => junction_js::push_json(v, out),
        Out::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_out_json(item, out);
            }
            out.push(']');
        }
        Out::Obj(entries) => {
            out.push('{');
            let mut first = true;
            for (key, item) in entries {
                if matches!(item, Out::Absent) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                junction_js::push_json_string(key, out);
                out.push(':');
                push_out_json(item, out);
            }
            out.push('}');
        }
    }
}

/// The reference's `removeUndefined` applied to a resolved value, producing plain JSON: absent
/// object members are dropped, absent array slots become `null`, the top level may be absent.
pub(crate) fn materialize(value: Out<'_>) -> Option<Value> {
    match value {
        Out::Absent => None,
        Out::Ref(v) => Some(v.clone()),
        Out::Own(v) => Some(v),
        Out::Arr(items) => Some(Value::Array(
            items
                .into_iter()
                .map(|item| materialize(item).unwrap_or(Value::Null))
                .collect(),
        )),
        Out::Obj(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, item) in entries {
                if let Some(v) = materialize(item) {
                    map.insert(key.into_owned(), v);
                }
            }
            Some(Value::Object(map))
        }
    }
}

/// `removeUndefined` without leaving the intermediate form: absent members are dropped, absent
/// array slots stay absent (the nested `@transform` payload keeps them, as the reference does).
pub(crate) fn clean(value: Out<'_>) -> Out<'_> {
    match value {
        Out::Arr(items) => Out::Arr(items.into_iter().map(clean).collect()),
        Out::Obj(entries) => Out::Obj(
            entries
                .into_iter()
                .filter(|(_, v)| !matches!(v, Out::Absent))
                .map(|(k, v)| (k, clean(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Builds an object the way JS assignment does: a repeated key keeps its first position and
/// takes the later value (absent included).
#[derive(Debug, Default)]
pub(crate) struct ObjBuilder<'a> {
    entries: Vec<(Cow<'a, str>, Out<'a>)>,
    index: HashMap<String, usize>,
}

impl<'a> ObjBuilder<'a> {
    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: Cow<'a, str>, value: Out<'a>) {
        if let Some(&at) = self.index.get(key.as_ref()) {
            if let Some(slot) = self.entries.get_mut(at) {
                slot.1 = value;
            }
            return;
        }
        self.index.insert(key.to_string(), self.entries.len());
        self.entries.push((key, value));
    }

    /// The object built.
    pub(crate) fn finish(self) -> Out<'a> {
        Out::Obj(self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn materialize_drops_absent_members_and_nulls_absent_slots() {
        let value = Out::Obj(vec![
            (Cow::Borrowed("a"), Out::Absent),
            (
                Cow::Borrowed("b"),
                Out::Arr(vec![Out::Absent, Out::Own(json!(1))]),
            ),
        ]);
        assert_eq!(materialize(value), Some(json!({"b": [null, 1]})));
    }

    #[test]
    fn builder_keeps_first_position() {
        let mut builder = ObjBuilder::default();
        builder.insert(Cow::Borrowed("a"), Out::Own(json!(1)));
        builder.insert(Cow::Borrowed("b"), Out::Own(json!(2)));
        builder.insert(Cow::Borrowed("a"), Out::Own(json!(3)));
        let out = materialize(builder.finish()).unwrap();
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn loose_blank_matches_js() {
        for blank in [
            json!(""),
            json!(0),
            json!(false),
            json!([]),
            json!([""]),
            json!([null]),
        ] {
            assert!(Out::Own(blank.clone()).is_loosely_blank(), "{blank}");
        }
        for not_blank in [
            json!(" "),
            json!("0"),
            json!(true),
            json!(1),
            json!({}),
            json!([0]),
        ] {
            assert!(
                !Out::Own(not_blank.clone()).is_loosely_blank(),
                "{not_blank}"
            );
        }
    }
}

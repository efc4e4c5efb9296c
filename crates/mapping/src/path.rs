//! Path lookup (`get`): the reference's tokenizer for `a.b[0]['c']` paths, done once at compile
//! time, and the walk with its falsy short-circuit.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::js;
use crate::out::{Found, Out, Payload};

/// One property access. `index` is set when the key is a canonical array index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seg {
    key: Box<str>,
    index: Option<usize>,
}

/// A parsed path: the root itself (`""`, `"."`) or a list of property accesses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathSpec {
    /// The whole payload.
    Root,
    /// Property accesses from the payload.
    Segs(Box<[Seg]>),
}

impl Seg {
    /// A segment for `key`, used as given (no quote stripping).
    pub(crate) fn new(key: &str) -> Self {
        Seg {
            key: key.into(),
            index: array_index(key),
        }
    }
}

/// `"1"` → 1; `"01"`, `"-1"`, `"1.0"` are not array indexes in JS.
fn array_index(key: &str) -> Option<usize> {
    if key.is_empty() || key.len() > 10 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if key.len() > 1 && key.starts_with('0') {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    if n >= u64::from(u32::MAX) {
        return None;
    }
    usize::try_from(n).ok()
}

/// Removes the first occurrence of `$.` anywhere in the path, as `@path` and `@arrayPath` do.
pub(crate) fn strip_dollar_dot(path: &str) -> Cow<'_, str> {
    if path.contains("$.") {
        Cow::Owned(path.replacen("$.", "", 1))
    } else {
        Cow::Borrowed(path)
    }
}

fn is_quote_or_digit(b: u8) -> bool {
    b == b'\'' || b == b'"' || b.is_ascii_digit()
}

/// Splits a path string into segments: at `.`, at `[` followed by a quote or digit, at a run of
/// `]` preceded by a quote or digit; empty segments dropped; quotes removed.
pub(crate) fn parse_path(path: &str) -> PathSpec {
    if path.is_empty() || path == "." {
        return PathSpec::Root;
    }
    let bytes = path.as_bytes();
    let mut pieces: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Every split point is an ASCII byte, so the slices below fall on char boundaries.
    let piece = |from: usize, to: usize| path.get(from..to).unwrap_or_default();
    while let Some(&b) = bytes.get(i) {
        let splits_open = b == b'[' && bytes.get(i + 1).copied().is_some_and(is_quote_or_digit);
        let splits_close = b == b']'
            && i.checked_sub(1)
                .and_then(|before| bytes.get(before))
                .copied()
                .is_some_and(is_quote_or_digit);
        if b == b'.' || splits_open {
            pieces.push(piece(start, i));
            i += 1;
            start = i;
        } else if splits_close {
            pieces.push(piece(start, i));
            while bytes.get(i) == Some(&b']') {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    pieces.push(piece(start, bytes.len()));
    let segs = pieces
        .into_iter()
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            if piece.contains(['\'', '"']) {
                Seg::new(&piece.replace(['\'', '"'], ""))
            } else {
                Seg::new(piece)
            }
        })
        .collect();
    PathSpec::Segs(segs)
}

/// Looks `spec` up from `root`. A falsy value met on the way is the result (`{x:0}` + `x.y`
/// gives `0`), as in the reference.
pub(crate) fn lookup<'a>(root: Payload<'a>, spec: &PathSpec) -> Found<'a> {
    let segs = match spec {
        PathSpec::Root => return Found::from(root),
        PathSpec::Segs(segs) => segs,
    };
    let mut current = Found::from(root);
    for seg in segs.iter() {
        if !current.is_truthy() {
            return current;
        }
        current = step(current, seg);
    }
    current
}

fn step<'a>(current: Found<'a>, seg: &Seg) -> Found<'a> {
    match current {
        Found::Absent => Found::Absent,
        Found::Json(v) => step_json(v, seg),
        Found::Own(v) => match step_json(&v, seg) {
            Found::Json(child) => Found::Own(child.clone()),
            Found::Own(child) => Found::Own(child),
            _ => Found::Absent,
        },
        Found::Out(out) => match out {
            Out::Arr(items) => {
                if &*seg.key == "length" {
                    return Found::Own(Value::from(items.len()));
                }
                match seg.index.and_then(|i| items.get(i)) {
                    Some(item) => Found::from_out(item),
                    None => Found::Absent,
                }
            }
            Out::Obj(entries) => match entries.iter().find(|(k, _)| k.as_ref() == &*seg.key) {
                Some((_, item)) => Found::from_out(item),
                None => Found::Absent,
            },
            other => step(Found::from_out(other), seg),
        },
    }
}

/// Up to this many members, comparing keys one by one is cheaper than hashing the key with
/// serde_json's SipHash (about 300 instructions a lookup under callgrind; a mismatched key
/// usually fails on its length).
const SCAN_LIMIT: usize = 32;

/// An object member by key.
fn member<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() > SCAN_LIMIT {
        return map.get(key);
    }
    map.iter()
        .find(|(candidate, _)| candidate.as_str() == key)
        .map(|(_, value)| value)
}

fn step_json<'a>(value: &'a Value, seg: &Seg) -> Found<'a> {
    match value {
        Value::Object(map) => member(map, &seg.key).map_or(Found::Absent, Found::Json),
        Value::Array(items) => {
            if &*seg.key == "length" {
                return Found::Own(Value::from(items.len()));
            }
            seg.index
                .and_then(|i| items.get(i))
                .map_or(Found::Absent, Found::Json)
        }
        Value::String(s) => {
            if &*seg.key == "length" {
                return Found::Own(Value::from(junction_js::utf16_len(s)));
            }
            seg.index
                .and_then(|i| js::utf16_unit_at(s, i))
                .map_or(Found::Absent, |unit| Found::Own(Value::String(unit)))
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Found::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: &str) -> Vec<String> {
        match parse_path(path) {
            PathSpec::Root => vec!["<root>".into()],
            PathSpec::Segs(segs) => segs.iter().map(|s| s.key.to_string()).collect(),
        }
    }

    #[test]
    fn tokenizer_follows_the_reference() {
        assert_eq!(keys("a.b[0].c"), ["a", "b", "0", "c"]);
        assert_eq!(keys("['a'].b"), ["a", "b"]);
        assert_eq!(keys("[\"a\"].b"), ["a", "b"]);
        assert_eq!(keys("[txt] non"), ["[txt] non"]);
        assert_eq!(keys("a..b"), ["a", "b"]);
        assert_eq!(keys(".x"), ["x"]);
        assert_eq!(keys("a'b"), ["ab"]);
        assert_eq!(keys("a[0]]b"), ["a", "0", "b"]);
        assert_eq!(keys("a[x]"), ["a[x]"]);
        assert_eq!(keys(""), ["<root>"]);
        assert_eq!(keys("."), ["<root>"]);
        assert_eq!(keys("é.ключ"), ["é", "ключ"]);
    }

    #[test]
    fn dollar_dot_removed_once_anywhere() {
        assert_eq!(strip_dollar_dot("$.a.b"), "a.b");
        assert_eq!(strip_dollar_dot("x$.y$.z"), "xy$.z");
        assert_eq!(strip_dollar_dot("$"), "$");
    }

    #[test]
    fn array_indexes_are_canonical() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("12"), Some(12));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("99999999999999999999"), None);
    }
}

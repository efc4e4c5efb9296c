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
    match spec {
        PathSpec::Root => Found::from(root),
        PathSpec::Segs(segs) => walk(Found::from(root), segs),
    }
}

/// The walk of [`lookup`] from `current`. A falsy value stops it and stays the result of any
/// longer walk, so walking a path in two parts gives what walking it whole gives.
fn walk<'a>(current: Found<'a>, segs: &[Seg]) -> Found<'a> {
    // Through objects of the event, the common case, without moving `Found`s around: an
    // object is truthy and a step into it is a member lookup.
    let (mut current, mut rest) = match current {
        Found::Json(mut value) => {
            let mut rest = segs;
            while let (Value::Object(map), Some((seg, tail))) = (value, rest.split_first()) {
                match member(map, &seg.key) {
                    Some(child) => value = child,
                    None => return Found::Absent,
                }
                rest = tail;
            }
            (Found::Json(value), rest)
        }
        other => (other, segs),
    };
    while let Some((seg, tail)) = rest.split_first() {
        if !current.is_truthy() {
            return current;
        }
        current = step(current, seg);
        rest = tail;
    }
    current
}

/// All segments but the last, for a path of at least one segment.
pub(crate) fn parent_segs(spec: &PathSpec) -> Option<&[Seg]> {
    match spec {
        PathSpec::Root => None,
        PathSpec::Segs(segs) => segs.split_last().map(|(_, parent)| parent),
    }
}

/// Lookups of the static `@path` members of one object against one payload, remembering the
/// parent of the last one: members under the same parent (`$.traits.email`, `$.traits.name`)
/// then walk to it once per event instead of once per member.
#[derive(Debug, Default)]
pub(crate) struct Siblings<'a> {
    /// The last parent found, unless it was computed (such values are not kept).
    parent: Option<Payload<'a>>,
}

impl<'a> Siblings<'a> {
    /// [`lookup`] of `spec` from `root`, which must be the payload of every earlier call;
    /// `same_parent` says that `spec` has the parent path of the previous call's `spec`.
    pub(crate) fn lookup(
        &mut self,
        root: Payload<'a>,
        spec: &PathSpec,
        same_parent: bool,
    ) -> Found<'a> {
        let Some((last, parent_segs)) = (match spec {
            PathSpec::Root => None,
            PathSpec::Segs(segs) => segs.split_last(),
        }) else {
            self.parent = None;
            return lookup(root, spec);
        };
        let parent = match self.parent {
            Some(parent) if same_parent => Found::from(parent),
            _ => {
                let parent = walk(Found::from(root), parent_segs);
                self.parent = parent.as_payload();
                parent
            }
        };
        walk(parent, std::slice::from_ref(last))
    }
}

fn step<'a>(current: Found<'a>, seg: &Seg) -> Found<'a> {
    match current {
        Found::Absent => Found::Absent,
        Found::Json(v) => step_json(v, seg),
        Found::Own(v) => match step_json(&v, seg) {
            Found::Json(child) => Found::Own(Box::new(child.clone())),
            Found::Own(child) => Found::Own(child),
            _ => Found::Absent,
        },
        Found::Out(out) => match out {
            Out::Arr(items) => {
                if &*seg.key == "length" {
                    return Found::Own(Box::new(Value::from(items.len())));
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
        .find(|(candidate, _)| same_key(candidate, key))
        .map(|(_, value)| value)
}

/// String equality that settles most mismatches of equal length on the first byte, without the
/// call to `memcmp` that `==` makes whenever the lengths agree.
fn same_key(candidate: &str, key: &str) -> bool {
    candidate.len() == key.len()
        && candidate.as_bytes().first() == key.as_bytes().first()
        && candidate == key
}

fn step_json<'a>(value: &'a Value, seg: &Seg) -> Found<'a> {
    match value {
        Value::Object(map) => member(map, &seg.key).map_or(Found::Absent, Found::Json),
        Value::Array(items) => {
            if &*seg.key == "length" {
                return Found::Own(Box::new(Value::from(items.len())));
            }
            seg.index
                .and_then(|i| items.get(i))
                .map_or(Found::Absent, Found::Json)
        }
        Value::String(s) => {
            if &*seg.key == "length" {
                return Found::Own(Box::new(Value::from(junction_js::utf16_len(s))));
            }
            seg.index
                .and_then(|i| js::utf16_unit_at(s, i))
                .map_or(Found::Absent, |unit| {
                    Found::Own(Box::new(Value::String(unit)))
                })
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

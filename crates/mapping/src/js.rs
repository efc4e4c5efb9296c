//! The JavaScript semantics only mapping leans on: "real type" names, `typeof`, articles and
//! UTF-16 indexing. Truthiness, `String(x)`, number formatting, `JSON.stringify`, `trim` and
//! UTF-16 lengths are shared in `junction_js`.

use serde_json::{Number, Value};

/// The reference's `realTypeOf` name of a JSON value.
pub(crate) fn real_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// JS `typeof` of a JSON value (`null` and arrays are `"object"`).
pub(crate) fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Null | Value::Array(_) | Value::Object(_) => "object",
    }
}

/// `a` or `an`, the way the reference's validation messages pick the article.
pub(crate) fn article(type_name: &str) -> &'static str {
    match type_name.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}

/// Whether a number is `0` or `-0` (JSON has no NaN, the other falsy number).
pub(crate) fn number_is_zero(number: &Number) -> bool {
    number.as_f64().is_some_and(|f| f == 0.0)
}

/// The one-unit string JS gives for `s[index]`. A lone surrogate half cannot live in a Rust
/// string, so it becomes U+FFFD.
pub(crate) fn utf16_unit_at(s: &str, index: usize) -> Option<String> {
    let mut offset = 0;
    for c in s.chars() {
        let width = c.len_utf16();
        if index < offset + width {
            let unit = if width == 1 { c } else { '\u{FFFD}' };
            return Some(unit.to_string());
        }
        offset += width;
    }
    None
}

/// Each UTF-16 code unit of `s` as its own string (JS spreads strings this way).
pub(crate) fn utf16_units(s: &str) -> Vec<String> {
    let mut units = Vec::with_capacity(s.len());
    for c in s.chars() {
        if c.len_utf16() == 1 {
            units.push(c.to_string());
        } else {
            units.push('\u{FFFD}'.to_string());
            units.push('\u{FFFD}'.to_string());
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_indexing_counts_code_units() {
        assert_eq!(utf16_unit_at("a😀b", 3).as_deref(), Some("b"));
        assert_eq!(utf16_unit_at("a😀b", 1).as_deref(), Some("\u{FFFD}"));
        assert_eq!(utf16_unit_at("ab", 2), None);
        assert_eq!(utf16_units("a😀"), ["a", "\u{FFFD}", "\u{FFFD}"]);
    }
}

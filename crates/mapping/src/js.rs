//! The JavaScript semantics the reference leans on: truthiness, "real type" names, `String(x)`,
//! Number-to-String formatting, `JSON.stringify`, `String.prototype.trim` and UTF-16 lengths.

use serde_json::{Number, Value};

/// Largest integer a JS number holds exactly; beyond it JS prints the rounded double.
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_992;

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

/// JS truthiness of a present JSON value (absent is always falsy).
pub(crate) fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => !number_is_zero(n),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Appends a double formatted by JS `Number.prototype.toString`.
pub(crate) fn push_f64(f: f64, out: &mut String) {
    let mut buffer = ryu_js::Buffer::new();
    out.push_str(buffer.format(f));
}

/// Appends a JSON number formatted the way JS prints it (integers beyond 2^53 are doubles there).
pub(crate) fn push_number(number: &Number, out: &mut String) {
    use std::fmt::Write;
    if let Some(u) = number.as_u64().filter(|u| *u <= MAX_SAFE_INTEGER) {
        let _ = write!(out, "{u}");
        return;
    }
    if let Some(i) = number
        .as_i64()
        .filter(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER)
    {
        let _ = write!(out, "{i}");
        return;
    }
    push_f64(number.as_f64().unwrap_or(f64::NAN), out);
}

/// JS `String(value)`: `null` is `"null"`, arrays are joined with `,` (null elements as empty
/// strings), objects are `[object Object]`.
pub(crate) fn push_js_string(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => push_number(n, out),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !item.is_null() {
                    push_js_string(item, out);
                }
            }
        }
        Value::Object(_) => out.push_str("[object Object]"),
    }
}

/// Length of a string in UTF-16 code units, the unit of JS `length`.
pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
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

/// Whether JS `trim` removes this character (WhiteSpace and LineTerminator, not U+0085).
pub(crate) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// JS `String.prototype.trim`.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// Appends `s` as a JSON string literal escaped like JS `JSON.stringify`.
pub(crate) fn push_json_string(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `JSON.stringify(value)` (compact, JS number formatting).
pub(crate) fn push_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => push_number(n, out),
        Value::String(s) => push_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(key, out);
                out.push(':');
                push_json(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn js_string(value: &Value) -> String {
        let mut out = String::new();
        push_js_string(value, &mut out);
        out
    }

    #[test]
    fn numbers_print_like_js() {
        assert_eq!(js_string(&json!(1)), "1");
        assert_eq!(js_string(&json!(1.5)), "1.5");
        assert_eq!(js_string(&json!(1e21)), "1e+21");
        assert_eq!(js_string(&json!(1e-7)), "1e-7");
        assert_eq!(js_string(&json!(-0.0)), "0");
        assert_eq!(
            js_string(&json!(12_345_678_901_234_567_890_u64)),
            "12345678901234567000"
        );
    }

    #[test]
    fn arrays_and_objects_stringify_like_js() {
        assert_eq!(js_string(&json!([1, [2, 3]])), "1,2,3");
        assert_eq!(js_string(&json!(["x", 1, null, true])), "x,1,,true");
        assert_eq!(js_string(&json!({"a": 1})), "[object Object]");
        assert_eq!(js_string(&json!(null)), "null");
    }

    #[test]
    fn utf16_indexing_counts_code_units() {
        assert_eq!(utf16_len("a😀"), 3);
        assert_eq!(utf16_unit_at("a😀b", 3).as_deref(), Some("b"));
        assert_eq!(utf16_unit_at("a😀b", 1).as_deref(), Some("\u{FFFD}"));
        assert_eq!(utf16_unit_at("ab", 2), None);
    }

    #[test]
    fn json_escapes_like_js() {
        let mut out = String::new();
        push_json(&json!({"s": "é\"\n\u{1}"}), &mut out);
        assert_eq!(out, "{\"s\":\"é\\\"\\n\\u0001\"}");
    }

    #[test]
    fn trim_follows_js_whitespace() {
        assert_eq!(js_trim("\u{feff} a \u{2028}"), "a");
        assert_eq!(js_trim("\u{85}a"), "\u{85}a");
    }
}

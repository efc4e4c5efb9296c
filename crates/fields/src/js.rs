//! The few JavaScript semantics the reference leans on — number ↔ string conversion, whitespace,
//! deep equality, `JSON.stringify`, `typeof` — so coercions and messages match Node exactly.

use serde_json::{Number, Value};

/// JavaScript's `WhiteSpace` and `LineTerminator` (what `\s` and `String.prototype.trim` use).
pub(crate) fn is_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{A}' | '\u{B}' | '\u{C}' | '\u{D}' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// JavaScript's line terminators (what `.` does not match and `m`-mode anchors split on).
pub(crate) fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// `String(x)` for a number.
pub(crate) fn number_to_string(x: f64) -> String {
    ryu_js::Buffer::new().format(x).to_owned()
}

/// The number a JSON number stands for in JavaScript (`JSON.parse` rounds to a double).
pub(crate) fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// A JavaScript number as JSON, the way `JSON.stringify` would write it: integral values become
/// JSON integers (so they print without a fraction) and non-finite values become `null`.
pub(crate) fn f64_to_value(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    // 2^64 and 2^63 as doubles; integral values in range convert exactly.
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x.fract() == 0.0 && x.abs() < 1e21 {
        if (0.0..TWO_64).contains(&x) {
            return Value::Number(Number::from(x as u64));
        }
        if (-TWO_63..0.0).contains(&x) {
            return Value::Number(Number::from(x as i64));
        }
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// `+s` / `Number(s)` for a string (ECMAScript `StringToNumber`): NaN when not numeric.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let bytes = t.as_bytes();
    if let (Some(b'0'), Some(prefix)) = (bytes.first(), bytes.get(1)) {
        let radix = match prefix {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            return parse_radix(t.get(2..).unwrap_or(""), radix);
        }
    }
    if !is_decimal_literal(bytes) {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// `StrDecimalLiteral`: `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`.
fn is_decimal_literal(bytes: &[u8]) -> bool {
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}

fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let mut exact: Option<u128> = Some(0);
    let mut approx = 0.0_f64;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return f64::NAN;
        };
        exact = exact
            .and_then(|v| v.checked_mul(u128::from(radix)))
            .and_then(|v| v.checked_add(u128::from(d)));
        approx = approx * f64::from(radix) + f64::from(d);
    }
    // u128 → f64 rounds to nearest, like the spec's "rounded mathematical value".
    exact.map_or(approx, |v| v as f64)
}

/// The array index a property key denotes, if any: JavaScript enumerates such keys first, in
/// ascending order, before the others in insertion order.
pub(crate) fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

/// Sorts `(key, item)` pairs into JavaScript's property order (stable for ordinary keys).
pub(crate) fn sort_property_order<K: AsRef<str>, T>(entries: &mut [(K, T)]) {
    entries.sort_by_key(|(key, _)| match array_index(key.as_ref()) {
        Some(n) => (false, n),
        None => (true, 0),
    });
}

/// JavaScript truthiness of a JSON value.
pub(crate) fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => {
            let x = as_f64(n);
            x != 0.0 && !x.is_nan()
        }
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `fast-deep-equal` (what Ajv uses for `enum`, `const` and `uniqueItems`): numbers compare by
/// value, objects by key set regardless of order.
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => as_f64(x) == as_f64(y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        _ => false,
    }
}

/// `JSON.stringify(value)` (compact; numbers the JavaScript way).
pub(crate) fn stringify(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_to_string(as_f64(n))),
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `String(x)` for any JSON value (used where the reference interpolates a schema value).
pub(crate) fn to_js_string(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_to_string(as_f64(n)),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                other => to_js_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// The length JavaScript reports for a string (UTF-16 code units).
pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(number_to_string(1234.0), "1234");
        assert_eq!(number_to_string(12.5), "12.5");
        assert_eq!(number_to_string(-0.0), "0");
        assert_eq!(number_to_string(1e21), "1e+21");
        assert_eq!(number_to_string(1e-7), "1e-7");
        assert_eq!(number_to_string(f64::NAN), "NaN");
        assert_eq!(number_to_string(f64::INFINITY), "Infinity");
    }

    #[test]
    fn string_to_number_follows_ecmascript() {
        assert_eq!(string_to_number("12"), 12.0);
        assert_eq!(string_to_number(" 12\n"), 12.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("   "), 0.0);
        assert_eq!(string_to_number("0x1A"), 26.0);
        assert_eq!(string_to_number("0b11"), 3.0);
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert!(string_to_number("1.5.1").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert!(string_to_number("-0x10").is_nan());
        assert!(string_to_number("1e").is_nan());
        assert!(string_to_number("abc").is_nan());
    }

    #[test]
    fn integral_doubles_become_json_integers() {
        assert_eq!(f64_to_value(12.0), json!(12));
        assert_eq!(f64_to_value(-0.0), json!(0));
        assert_eq!(f64_to_value(1.5), json!(1.5));
        assert_eq!(f64_to_value(f64::INFINITY), Value::Null);
    }

    #[test]
    fn deep_equal_compares_numbers_by_value() {
        assert!(deep_equal(&json!(1), &json!(1.0)));
        assert!(deep_equal(
            &json!({"a": 1, "b": [2]}),
            &json!({"b": [2.0], "a": 1})
        ));
        assert!(!deep_equal(&json!("1"), &json!(1)));
    }

    #[test]
    fn property_order_puts_array_indices_first() {
        let mut entries = vec![("b", 0), ("2", 1), ("01", 2), ("1", 3), ("4294967295", 4)];
        sort_property_order(&mut entries);
        let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["1", "2", "b", "01", "4294967295"]);
    }

    #[test]
    fn stringify_matches_json_stringify() {
        assert_eq!(
            stringify(&json!(["foo", 10, 1.5, null])),
            r#"["foo",10,1.5,null]"#
        );
        assert_eq!(stringify(&json!("a\"b\u{1}")), r#""a\"b\u0001""#);
    }
}

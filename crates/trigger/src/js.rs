//! The JavaScript conversions the reference applies to AST values and event values
//! (`String(x)`, `Number(x)`, Number-to-String), reproduced exactly because they decide what a
//! condition compares against.

use serde_json::Value;

/// JS `String(value)` of a JSON value; `None` stands for `undefined`.
pub(crate) fn to_string(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "undefined".to_owned();
    };
    let mut out = String::new();
    push_string(&mut out, value);
    out
}

fn push_string(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&format_number(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => out.push_str(s),
        // `Array.prototype.join`: null elements become empty strings, nested arrays flatten.
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !item.is_null() {
                    push_string(out, item);
                }
            }
        }
        Value::Object(_) => out.push_str("[object Object]"),
    }
}

/// JS `Number(value)` of a JSON value; `None` stands for `undefined`.
pub(crate) fn to_number(value: Option<&Value>) -> f64 {
    match value {
        None => f64::NAN,
        Some(Value::Null) => 0.0,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => string_to_number(s),
        Some(array @ Value::Array(_)) => string_to_number(&to_string(Some(array))),
        Some(Value::Object(_)) => f64::NAN,
    }
}

/// JS Number-to-String (`1e21` → `1e+21`, `-0` → `0`, `NaN`, `Infinity`).
pub(crate) fn format_number(n: f64) -> String {
    // ryu-js prints negative zero as "-0"; JS prints "0".
    let n = if n == 0.0 { 0.0 } else { n };
    ryu_js::Buffer::new().format(n).to_owned()
}

/// The JSON value JS `JSON.stringify` would write for a finite number: integers without a
/// fraction, so a parsed `100` compares equal to the reference's `100`.
pub(crate) fn number_value(n: f64) -> Value {
    const SAFE: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() < SAFE {
        // Exact: |n| < 2^53 and integral.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// JS `StringToNumber`: surrounding whitespace ignored, empty → 0, decimal with optional
/// exponent, `0x`/`0o`/`0b` integers, `Infinity`; anything else is NaN.
pub(crate) fn string_to_number(text: &str) -> f64 {
    let trimmed = text.trim_matches(is_js_whitespace);
    if trimmed.is_empty() {
        return 0.0;
    }
    match trimmed {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    for (prefixes, radix) in [(["0x", "0X"], 16), (["0o", "0O"], 8), (["0b", "0B"], 2)] {
        if let Some(digits) = prefixes.iter().find_map(|p| trimmed.strip_prefix(p)) {
            return radix_integer(digits, radix);
        }
    }
    if !is_decimal_literal(trimmed) {
        return f64::NAN;
    }
    trimmed.parse::<f64>().unwrap_or(f64::NAN)
}

fn radix_integer(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let mut value = 0.0_f64;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return f64::NAN;
        };
        value = value * f64::from(radix) + f64::from(d);
    }
    value
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?` — the StrDecimalLiteral grammar,
/// checked by hand because Rust's float parser also accepts `inf` and `nan`.
fn is_decimal_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
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

/// ECMAScript WhiteSpace and LineTerminator code points (differs from `char::is_whitespace`:
/// includes U+FEFF, excludes U+0085).
fn is_js_whitespace(c: char) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn number_to_string_follows_js() {
        assert_eq!(format_number(1e21), "1e+21");
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(456.0), "456");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(f64::NAN), "NaN");
        assert_eq!(format_number(1e-7), "1e-7");
        assert_eq!(format_number(-3.5), "-3.5");
    }

    #[test]
    fn string_of_values_follows_js() {
        assert_eq!(to_string(None), "undefined");
        assert_eq!(to_string(Some(&json!(null))), "null");
        assert_eq!(to_string(Some(&json!(true))), "true");
        assert_eq!(to_string(Some(&json!(5))), "5");
        assert_eq!(to_string(Some(&json!([1, [2, 3], null]))), "1,2,3,");
        assert_eq!(to_string(Some(&json!({"a": 1}))), "[object Object]");
    }

    #[test]
    fn string_to_number_follows_js() {
        assert_eq!(string_to_number("10"), 10.0);
        assert_eq!(string_to_number(" 12 \n"), 12.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("   "), 0.0);
        assert_eq!(string_to_number("456.0"), 456.0);
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
        assert_eq!(string_to_number("+.5"), 0.5);
        assert_eq!(string_to_number("-1e3"), -1000.0);
        assert_eq!(string_to_number("0x1F"), 31.0);
        assert_eq!(string_to_number("0b101"), 5.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        for nan in [
            "abc", "inf", "nan", "NaN", "1_000", "-0x1", "0x", "1e", ".", "+", "1 2",
        ] {
            assert!(string_to_number(nan).is_nan(), "{nan:?} should be NaN");
        }
    }

    #[test]
    fn number_of_values_follows_js() {
        assert!(to_number(None).is_nan());
        assert_eq!(to_number(Some(&json!(null))), 0.0);
        assert_eq!(to_number(Some(&json!(true))), 1.0);
        assert_eq!(to_number(Some(&json!([]))), 0.0);
        assert_eq!(to_number(Some(&json!([7]))), 7.0);
        assert!(to_number(Some(&json!([1, 2]))).is_nan());
        assert!(to_number(Some(&json!({}))).is_nan());
    }

    #[test]
    fn number_values_are_integers_when_integral() {
        assert_eq!(number_value(100.0), json!(100));
        assert_eq!(number_value(-3.0), json!(-3));
        assert_eq!(number_value(-0.0), json!(0));
        assert_eq!(number_value(9.99), json!(9.99));
    }
}

//! The JavaScript value semantics the reference implementation leans on, over
//! [`serde_json::Value`]: Number-to-String (`ryu-js`), `Number(string)`, whitespace and `trim`,
//! truthiness, UTF-16 lengths, `String(value)` and `JSON.stringify`.
//!
//! One implementation shared by the trigger, mapping, fields and actions crates, so a coercion
//! decides the same way everywhere. Where the crates historically differed in a subtle way, both
//! behaviours are kept behind separately named functions.

use serde_json::{Number, Value};

/// Largest integer a JS number holds exactly (2^53); beyond it JS prints the rounded double.
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_992;

/// Whether `c` is ECMAScript WhiteSpace or LineTerminator (what `\s` and `trim` use; unlike
/// `char::is_whitespace` it includes U+FEFF and excludes U+0085).
pub fn is_js_whitespace(c: char) -> bool {
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
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// The double a JSON number stands for in JavaScript (`JSON.parse` rounds to a double).
pub fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// JS Number-to-String of a double (`1e21` → `1e+21`, `-0` → `0`, `NaN`, `Infinity`).
pub fn number_to_string(x: f64) -> String {
    ryu_js::Buffer::new().format(x).to_owned()
}

/// Appends a double formatted by JS Number-to-String.
pub fn push_f64(x: f64, out: &mut String) {
    out.push_str(ryu_js::Buffer::new().format(x));
}

/// Appends a JSON number formatted the way JS prints it (integers beyond 2^53 are doubles there).
pub fn push_number(number: &Number, out: &mut String) {
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
    push_f64(as_f64(number), out);
}

/// JS `Number(s)` (`StringToNumber`); `0x`/`0o`/`0b` digits are rounded once, exactly.
pub fn string_to_number(s: &str) -> f64 {
    string_to_number_with(s, parse_radix_exact)
}

/// JS `Number(s)` as the trigger crate computes it: `0x`/`0o`/`0b` digits accumulate in a double
/// digit by digit, so literals beyond 2^53 can round differently from [`string_to_number`].
pub fn string_to_number_stepwise_radix(s: &str) -> f64 {
    string_to_number_with(s, parse_radix_stepwise)
}

/// `StringToNumber` with the given parser for the digits after a `0x`/`0o`/`0b` prefix.
fn string_to_number_with(s: &str, parse_radix: fn(&str, u32) -> f64) -> f64 {
    let t = trim(s);
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

/// `StrDecimalLiteral`: `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`, checked by
/// hand because Rust's float parser also accepts `inf` and `nan`.
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

/// Radix digits rounded once to the nearest double (the spec's "rounded mathematical value").
fn parse_radix_exact(digits: &str, radix: u32) -> f64 {
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

/// Radix digits accumulated in a double, rounding after every digit.
fn parse_radix_stepwise(digits: &str, radix: u32) -> f64 {
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

/// A JS number as the JSON value `JSON.stringify` writes: integral values below 1e21 that fit
/// `u64`/`i64` become JSON integers, non-finite values become `null`.
pub fn f64_to_value(x: f64) -> Value {
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

/// Like [`f64_to_value`], but only integral values below 2^53 become JSON integers; larger ones
/// stay JSON doubles (the trigger crate's number literals).
pub fn f64_to_value_safe_integers(x: f64) -> Value {
    const SAFE: f64 = MAX_SAFE_INTEGER as f64;
    if x.fract() == 0.0 && x.abs() < SAFE {
        // Exact: |x| < 2^53 and integral.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(x as i64);
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// JS truthiness of a present JSON value (`undefined` is always falsy).
pub fn is_truthy(value: &Value) -> bool {
    match value {
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

/// Length of a string in UTF-16 code units, the unit of JS `length`.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Appends JS `String(value)`: arrays joined with `,` (null elements empty), objects `[object Object]`.
pub fn push_js_string(value: &Value, out: &mut String) {
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

/// JS `String(value)` of a JSON value.
pub fn to_js_string(value: &Value) -> String {
    let mut out = String::new();
    push_js_string(value, &mut out);
    out
}

/// Appends `s` as a JSON string literal escaped like JS `JSON.stringify`.
pub fn push_json_string(s: &str, out: &mut String) {
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
pub fn push_json(value: &Value, out: &mut String) {
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

/// `JSON.stringify(value)` (compact, JS number formatting).
pub fn stringify(value: &Value) -> String {
    let mut out = String::new();
    push_json(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(number_to_string(1234.0), "1234");
        assert_eq!(number_to_string(456.0), "456");
        assert_eq!(number_to_string(12.5), "12.5");
        assert_eq!(number_to_string(0.1), "0.1");
        assert_eq!(number_to_string(-3.5), "-3.5");
        assert_eq!(number_to_string(-0.0), "0");
        assert_eq!(number_to_string(1e21), "1e+21");
        assert_eq!(number_to_string(1e-7), "1e-7");
        assert_eq!(number_to_string(f64::NAN), "NaN");
        assert_eq!(number_to_string(f64::INFINITY), "Infinity");
        let mut out = String::new();
        push_f64(-0.0, &mut out);
        assert_eq!(out, "0");
    }

    #[test]
    fn json_numbers_print_like_javascript() {
        assert_eq!(to_js_string(&json!(1)), "1");
        assert_eq!(to_js_string(&json!(1.5)), "1.5");
        assert_eq!(to_js_string(&json!(1e21)), "1e+21");
        assert_eq!(to_js_string(&json!(1e-7)), "1e-7");
        assert_eq!(to_js_string(&json!(-0.0)), "0");
        assert_eq!(
            to_js_string(&json!(12_345_678_901_234_567_890_u64)),
            "12345678901234567000"
        );
        // The integer fast path agrees with formatting the double.
        for n in [0_i64, 1, -1, 9_007_199_254_740_992, -9_007_199_254_740_992] {
            let mut out = String::new();
            push_number(&Number::from(n), &mut out);
            assert_eq!(out, number_to_string(n as f64));
        }
    }

    #[test]
    fn string_of_values_follows_js() {
        assert_eq!(to_js_string(&json!(null)), "null");
        assert_eq!(to_js_string(&json!(true)), "true");
        assert_eq!(to_js_string(&json!(5)), "5");
        assert_eq!(to_js_string(&json!([1, [2, 3], null])), "1,2,3,");
        assert_eq!(to_js_string(&json!([1, [2, 3]])), "1,2,3");
        assert_eq!(to_js_string(&json!(["x", 1, null, true])), "x,1,,true");
        assert_eq!(to_js_string(&json!({"a": 1})), "[object Object]");
    }

    #[test]
    fn string_to_number_follows_ecmascript() {
        for parse in [string_to_number, string_to_number_stepwise_radix] {
            assert_eq!(parse("10"), 10.0);
            assert_eq!(parse(" 12 \n"), 12.0);
            assert_eq!(parse(""), 0.0);
            assert_eq!(parse("   "), 0.0);
            assert_eq!(parse("456.0"), 456.0);
            assert_eq!(parse(".5"), 0.5);
            assert_eq!(parse("5."), 5.0);
            assert_eq!(parse("+.5"), 0.5);
            assert_eq!(parse("-1e3"), -1000.0);
            assert_eq!(parse("0x1F"), 31.0);
            assert_eq!(parse("0x1A"), 26.0);
            assert_eq!(parse("0b101"), 5.0);
            assert_eq!(parse("0o17"), 15.0);
            assert_eq!(parse("-Infinity"), f64::NEG_INFINITY);
            assert_eq!(parse("\u{feff}7\u{2028}"), 7.0);
            for nan in [
                "abc", "inf", "nan", "NaN", "1_000", "-0x1", "-0x10", "0x", "1e", ".", "+", "1 2",
                "1.5.1",
            ] {
                assert!(parse(nan).is_nan(), "{nan:?} should be NaN");
            }
        }
    }

    #[test]
    fn radix_literals_beyond_2_pow_53_round_differently() {
        // 2^60 + 129: rounded once it is 2^60 + 256; digit by digit it is 2^60.
        let literal = "0x1000000000000081";
        assert_eq!(string_to_number(literal), 1_152_921_504_606_847_232.0);
        assert_eq!(
            string_to_number_stepwise_radix(literal),
            1_152_921_504_606_846_976.0
        );
    }

    #[test]
    fn integral_doubles_become_json_integers() {
        assert_eq!(f64_to_value(12.0), json!(12));
        assert_eq!(f64_to_value(-0.0), json!(0));
        assert_eq!(f64_to_value(1.5), json!(1.5));
        assert_eq!(f64_to_value(f64::INFINITY), Value::Null);
        assert_eq!(f64_to_value_safe_integers(100.0), json!(100));
        assert_eq!(f64_to_value_safe_integers(-3.0), json!(-3));
        assert_eq!(f64_to_value_safe_integers(-0.0), json!(0));
        assert_eq!(f64_to_value_safe_integers(9.99), json!(9.99));
        assert_eq!(f64_to_value_safe_integers(f64::NAN), Value::Null);
    }

    #[test]
    fn integers_from_2_pow_53_differ_between_the_number_values() {
        let x = 9_007_199_254_740_992.0;
        assert_eq!(f64_to_value(x), json!(9_007_199_254_740_992_u64));
        assert_eq!(f64_to_value_safe_integers(x), json!(x));
        assert_ne!(f64_to_value(x), f64_to_value_safe_integers(x));
    }

    #[test]
    fn truthiness_follows_js() {
        for falsy in [json!(null), json!(false), json!(0), json!(-0.0), json!("")] {
            assert!(!is_truthy(&falsy), "{falsy} should be falsy");
        }
        for truthy in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("0"),
            json!([]),
            json!({}),
        ] {
            assert!(is_truthy(&truthy), "{truthy} should be truthy");
        }
    }

    #[test]
    fn utf16_len_counts_code_units() {
        assert_eq!(utf16_len("a😀"), 3);
        assert_eq!(utf16_len(""), 0);
    }

    #[test]
    fn json_escapes_like_js() {
        let mut out = String::new();
        push_json(&json!({"s": "é\"\n\u{1}"}), &mut out);
        assert_eq!(out, "{\"s\":\"é\\\"\\n\\u0001\"}");
        assert_eq!(
            stringify(&json!(["foo", 10, 1.5, null])),
            r#"["foo",10,1.5,null]"#
        );
        assert_eq!(stringify(&json!("a\"b\u{1}")), r#""a\"b\u0001""#);
    }

    #[test]
    fn trim_follows_js_whitespace() {
        assert_eq!(trim("\u{feff} a \u{2028}"), "a");
        assert_eq!(trim("\u{85}a"), "\u{85}a");
        assert!(is_js_whitespace('\u{a0}'));
        assert!(!is_js_whitespace('\u{85}'));
    }
}

//! The JavaScript semantics only fields leans on — line terminators, property order, deep
//! equality — so coercions and messages match Node exactly. Number ↔ string conversion,
//! whitespace, truthiness, `String(x)` and `JSON.stringify` are shared in `junction_js`.

use junction_js::as_f64;
use serde_json::Value;

/// JavaScript's line terminators (what `.` does not match and `m`-mode anchors split on).
pub(crate) fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn line_terminators_are_the_four_js_ones() {
        for c in ['\n', '\r', '\u{2028}', '\u{2029}'] {
            assert!(is_line_terminator(c));
        }
        assert!(!is_line_terminator('\u{85}'));
    }
}

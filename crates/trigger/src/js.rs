//! The JavaScript conversions the reference applies to AST values and event values
//! (`String(x)`, `Number(x)`, Number-to-String), reproduced exactly because they decide what a
//! condition compares against. The shared semantics live in `junction_js`; `undefined` handling
//! is trigger's own.

use serde_json::Value;

/// JS `String(value)` of a JSON value; `None` stands for `undefined`.
pub(crate) fn to_string(value: Option<&Value>) -> String {
    value.map_or_else(|| "undefined".to_owned(), junction_js::to_js_string)
}

/// JS `Number(value)` of a JSON value; `None` stands for `undefined`.
pub(crate) fn to_number(value: Option<&Value>) -> f64 {
    match value {
        None => f64::NAN,
        Some(Value::Null) => 0.0,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => junction_js::as_f64(n),
        Some(Value::String(s)) => junction_js::string_to_number_stepwise_radix(s),
        Some(array @ Value::Array(_)) => {
            junction_js::string_to_number_stepwise_radix(&to_string(Some(array)))
        }
        Some(Value::Object(_)) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_of_values_follows_js() {
        assert_eq!(to_string(None), "undefined");
        assert_eq!(to_string(Some(&json!(null))), "null");
        assert_eq!(to_string(Some(&json!([1, [2, 3], null]))), "1,2,3,");
    }

    #[test]
    fn number_of_values_follows_js() {
        assert!(to_number(None).is_nan());
        assert_eq!(to_number(Some(&json!(null))), 0.0);
        assert_eq!(to_number(Some(&json!(true))), 1.0);
        assert_eq!(to_number(Some(&json!(" 12 \n"))), 12.0);
        assert_eq!(to_number(Some(&json!([]))), 0.0);
        assert_eq!(to_number(Some(&json!([7]))), 7.0);
        assert!(to_number(Some(&json!([1, 2]))).is_nan());
        assert!(to_number(Some(&json!({}))).is_nan());
    }
}

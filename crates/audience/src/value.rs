//! JSON values as the language sees them (`audiences.md` §3): absence (missing or `null`),
//! dotted paths, equality (numbers numerically), and the text form of scalars that `mode` and
//! `unique` use (numbers as JavaScript `String(n)`).

use serde_json::Value;

/// The value when it is present: `None` for missing or `null`.
pub(crate) fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// The value at a dotted path (already split) inside `root`, through objects only.
pub(crate) fn lookup<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(root, |value, segment| value.as_object()?.get(segment))
}

/// Equality of two present values: numbers numerically, otherwise JSON equality (arrays and
/// objects member by member, with the same rule inside).
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => junction_js::as_f64(x) == junction_js::as_f64(y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| equal(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(key, x)| ys.get(key).is_some_and(|y| equal(x, y)))
        }
        _ => a == b,
    }
}

/// The number a value holds, if it is a JSON number.
pub(crate) fn number(value: &Value) -> Option<f64> {
    value.as_number().map(junction_js::as_f64)
}

/// Where a scalar's type sorts among equal texts in `unique`: numbers, booleans, strings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum ScalarType {
    Number,
    Boolean,
    String,
}

/// The text form of a present scalar (strings as they are, numbers as JavaScript `String(n)`,
/// booleans `true`/`false`) and its type; `None` for `null`, arrays and objects.
pub(crate) fn text(value: &Value) -> Option<(String, ScalarType)> {
    match value {
        Value::String(s) => Some((s.clone(), ScalarType::String)),
        Value::Number(n) => {
            let mut out = String::new();
            junction_js::push_number(n, &mut out);
            Some((out, ScalarType::Number))
        }
        Value::Bool(b) => Some((b.to_string(), ScalarType::Boolean)),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_go_through_objects() {
        let value = json!({"meta": {"level": 3}, "meta.level": 9, "tags": [1]});
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(lookup(&value, &path("meta.level")), Some(&json!(3)));
        assert_eq!(lookup(&value, &path("tags.0")), None);
        assert_eq!(lookup(&value, &path("missing")), None);
    }

    #[test]
    fn numbers_are_equal_numerically() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(equal(&json!([1, {"a": 2}]), &json!([1.0, {"a": 2.0}])));
        assert!(!equal(&json!(1), &json!(true)));
        assert!(!equal(&json!("1"), &json!(1)));
    }

    #[test]
    fn texts_follow_javascript() {
        assert_eq!(text(&json!(1e21)).unwrap().0, "1e+21");
        assert_eq!(text(&json!(1e-7)).unwrap().0, "1e-7");
        assert_eq!(text(&json!(2.0)).unwrap().0, "2");
        assert_eq!(
            text(&json!(true)).unwrap(),
            ("true".into(), ScalarType::Boolean)
        );
        assert_eq!(text(&json!([1])), None);
    }
}

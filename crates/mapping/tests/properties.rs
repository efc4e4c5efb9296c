//! Property tests: compiling and applying arbitrary mappings (built from the real directive names
//! and option keys, nested, with arbitrary options) to arbitrary data never panics.

use proptest::prelude::*;
use serde_json::{Map, Value};

const DIRECTIVES: &[&str] = &[
    "@if",
    "@case",
    "@replace",
    "@arrayPath",
    "@path",
    "@template",
    "@literal",
    "@flatten",
    "@json",
    "@merge",
    "@transform",
    "@excludeWhenNull",
    "@liquid",
    "@oops",
];

const KEYS: &[&str] = &[
    "exists",
    "blank",
    "then",
    "else",
    "operator",
    "value",
    "pattern",
    "replacement",
    "pattern2",
    "replacement2",
    "ignorecase",
    "global",
    "mode",
    "separator",
    "omitArrays",
    "objects",
    "direction",
    "apply",
    "mapping",
    "_metadata",
    "__segment_internal_directive",
    "a",
    "b",
    "0",
    "length",
];

/// Strings that hit the interesting parsers: paths, templates, Liquid, replacement patterns.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9$.\\[\\]'\"{}%| :,_-]{0,24}",
        Just("lower".to_owned()),
        Just("upper".to_owned()),
        Just("encode".to_owned()),
        Just("decode".to_owned()),
        Just("left".to_owned()),
        Just("right".to_owned()),
        Just("$.a.b".to_owned()),
        Just("{{ a | upcase }}{% if a %}x{% endif %}".to_owned()),
        Just("{% assign x = a | append: a %}{{ x | size }}".to_owned()),
        Just("{{{a}}} {{b}}".to_owned()),
        Just("$&$`$'$$".to_owned()),
        any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0u64..4).prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

fn object(inner: impl Strategy<Value = Value> + Clone) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|members| {
        let map: Map<String, Value> = members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Value::Object(map)
    })
}

/// Arbitrary JSON data.
fn data() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            object(inner),
        ]
    })
}

/// Arbitrary mappings: raw values, arrays, option objects and directive objects, nested.
fn mapping() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            object(inner.clone()),
            (prop::sample::select(DIRECTIVES), inner.clone()).prop_map(|(name, options)| {
                let mut map = Map::new();
                map.insert(name.to_owned(), options);
                Value::Object(map)
            }),
            (prop::sample::select(DIRECTIVES), object(inner)).prop_map(|(name, options)| {
                let mut map = Map::new();
                map.insert(name.to_owned(), options);
                Value::Object(map)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn compile_and_apply_never_panic(mapping in mapping(), data in data()) {
        let _ = junction_mapping::validate(&mapping);
        let _ = junction_mapping::transform(&mapping, &data);
        if let Ok(compiled) = junction_mapping::compile(&mapping) {
            let _ = compiled.apply(&data);
            let _ = compiled.apply(&Value::Object(Map::new()));
        }
    }

    #[test]
    fn helpers_never_panic(data in data(), path in text(), template in text()) {
        let _ = junction_mapping::get(&data, &Value::String(path.clone()));
        let _ = junction_mapping::render(&Value::String(template), &data);
        let _ = junction_mapping::flatten(&data, &path, ".", false);
    }

    #[test]
    fn compiled_mapping_is_deterministic(mapping in mapping(), data in data()) {
        if let Ok(compiled) = junction_mapping::compile(&mapping) {
            let first = compiled.apply(&data);
            let second = compiled.apply(&data);
            prop_assert_eq!(first, second);
        }
    }
}

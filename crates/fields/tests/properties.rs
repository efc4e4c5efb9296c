//! Property tests: validation never panics on arbitrary JSON for several field sets, and no
//! format check panics on arbitrary text.

// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use junction_fields::{Fields, Schema, ValidatorOptions, check_format};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: [&str; 16] = [
    "type",
    "message_id",
    "timestamp",
    "sent_at",
    "user_id",
    "email",
    "linked_in",
    "company",
    "id",
    "name",
    "a",
    "b",
    "array",
    "object",
    "n",
    "dynamicAuthSettings",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
        1 => "[a-z0-9_~/]{0,6}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "true",
            "false",
            "12",
            "1.5",
            "-0",
            "0x1F",
            "Infinity",
            " ",
            "null",
            "2024-01-01T10:00:00Z",
            "January 1, 2024",
            "a@b.co",
            "https://x.y/z",
            "[1]",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |x| serde_json::Number::from_f64(x)
            .map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn payload() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::collection::vec((key(), json_value()), 0..10)
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        1 => json_value(),
    ]
}

fn field_sets() -> Vec<Schema> {
    let sets = [
        json!({
            "type": {"label": "Event Type", "type": "string", "required": true},
            "message_id": {"label": "MessageId", "type": "string", "required": true},
            "timestamp": {"label": "Event Timestamp", "type": "datetime", "required": true},
            "sent_at": {"label": "Sent At", "type": "datetime", "required": true},
            "user_id": {"label": "User Id", "type": "string", "readOnly": true},
            "email": {"label": "Email", "type": "string", "format": "email"},
            "linked_in": {"label": "LinkedIn", "type": "string", "format": "uri"},
            "company": {"label": "Company", "type": "object", "additionalProperties": false,
                        "properties": {"id": {"label": "Company Id", "type": "string", "required": true},
                                       "name": {"label": "Company Name", "type": "string"}}}
        }),
        json!({
            "a": {"label": "a", "type": "string"},
            "b": {"label": "b", "type": "object"},
            "e": {"label": "e", "type": "boolean"},
            "n": {"label": "n", "type": "integer"},
            "array": {"label": "array", "type": "string", "multiple": true},
            "object": {"label": "object", "type": "object", "multiple": true,
                       "properties": {"key": {"label": "key", "type": "string", "required": true}}}
        }),
        json!({
            "a": {"label": "a", "type": "string", "required": true},
            "b": {"label": "b", "type": "string",
                  "required": {"conditions": [{"fieldKey": "a", "operator": "is", "value": "x"}]}},
            "name": {"label": "Name", "type": "string",
                     "required": {"match": "any", "conditions": [
                         {"fieldKey": "a", "operator": "is_not"},
                         {"fieldKey": "company.id", "operator": "is", "value": "1"}]}},
            "company": {"label": "Company", "type": "object", "properties": {
                "id": {"label": "Id", "type": "number", "minimum": 1, "maximum": 10},
                "name": {"label": "N", "type": "string", "allowNull": true, "choices": ["p", "q"],
                         "required": {"conditions": [{"fieldKey": "company.id", "operator": "is", "value": 2}]}}}}
        }),
        json!({
            "n": {"label": "N", "type": "number", "minimum": 1, "maximum": 5, "multiple": true},
            "id": {"label": "Id", "type": "string", "minimum": 2, "maximum": 4, "allowNull": true},
            "t": {"label": "T", "type": "text"},
            "p": {"label": "P", "type": "password"},
            "email": {"label": "E", "type": "datetime", "multiple": true, "allowNull": true},
            "type": {"label": "Ty", "type": "string", "choices": [{"label": "A", "value": 1}, "b"]}
        }),
    ];
    sets.into_iter()
        .map(|fields| Schema::from_fields(&serde_json::from_value::<Fields>(fields).unwrap()))
        .collect()
}

fn raw_schema() -> Schema {
    let schema = json!({
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"], "pattern": "^\\d+$", "maxLength": 3},
            "b": {"anyOf": [{"type": "number", "multipleOf": 3}, {"type": "boolean"}]},
            "c": {"oneOf": [{"const": 1}, {"enum": [1, 2]}, {"type": "array", "uniqueItems": true}]},
            "d": {"type": "array", "items": [{"type": "integer"}], "additionalItems": false,
                  "contains": {"type": "string"}, "minItems": 1}
        },
        "propertyNames": {"pattern": "^[a-z]+$"},
        "patternProperties": {"^x": {"type": "string"}},
        "additionalProperties": {"not": {"type": "object"}},
        "dependencies": {"a": ["b"], "c": {"required": ["d"]}},
        "minProperties": 1,
        "maxProperties": 6
    });
    Schema::from_json_schema_with(&schema, ValidatorOptions::RUNTIME).unwrap()
}

const FORMATS: [&str; 29] = [
    "date-like",
    "text",
    "password",
    "binary",
    "date",
    "time",
    "date-time",
    "duration",
    "uri",
    "uri-reference",
    "uri-template",
    "url",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "regex",
    "uuid",
    "json-pointer",
    "json-pointer-uri-fragment",
    "relative-json-pointer",
    "byte",
    "int32",
    "int64",
    "float",
    "double",
    "unknown",
    "",
    "iri",
];

fn date_like_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "2024",
            "01",
            "1",
            "-",
            "+",
            "/",
            ":",
            ".",
            " ",
            "T",
            "Z",
            "z",
            "(",
            ")",
            "Jan",
            "January",
            "GMT",
            "UTC",
            "pm",
            "am",
            "PST",
            "000",
            "123456789012",
            ",",
            "\u{0}",
            "é",
            "\u{A0}",
            "e",
            "99",
            "24",
        ]),
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn process_never_panics(payload in payload()) {
        for schema in field_sets() {
            let first = schema.process(payload.clone());
            // Deterministic: the same payload gives the same outcome.
            prop_assert_eq!(&first, &schema.process(payload.clone()));
            let _ = schema.remove_empty_values(payload.clone(), false);
        }
    }

    #[test]
    fn raw_schemas_never_panic(data in json_value()) {
        let schema = raw_schema();
        let mut value = data.clone();
        let _ = schema.validate_value(&mut value);
        let plain = Schema::from_json_schema_with(&schema.json_schema(), ValidatorOptions::PLAIN).unwrap();
        let mut value = data;
        let _ = plain.validate_value(&mut value);
    }

    #[test]
    fn formats_never_panic(value in any::<String>()) {
        for format in FORMATS {
            let _ = check_format(format, &value);
        }
    }

    #[test]
    fn date_like_never_panics(value in date_like_text()) {
        let _ = check_format("date-like", &value);
        let _ = check_format("regex", &value);
    }
}

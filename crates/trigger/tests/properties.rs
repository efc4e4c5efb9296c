//! Properties: parsing never panics (random text and soups of the language's own tokens),
//! evaluation never panics on any JSON event, and generated text parses back to the same AST.

// Strategies and helpers outside #[test] functions may panic on broken fixtures.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use junction_trigger::{Node, Trigger, generate, parse};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Tokens and fragments of the language, including the ones that trip the reference lexer.
const TOKENS: &[&str] = &[
    "type",
    "event",
    "name",
    "userId",
    "properties",
    "traits",
    "context",
    "anonymousId",
    "properties.a",
    "traits.b.c",
    "context.d",
    "integrations.X",
    "a",
    "_x",
    "\\",
    "\\ ",
    "\\t",
    "contains",
    "match",
    "contains(",
    "match(",
    "!",
    "!contains(",
    "!match(",
    "and",
    "or",
    "AND",
    "null",
    "true",
    "false",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!==",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "\"x\"",
    "\"\"",
    "\"a b\"",
    "\"X*\"",
    "\"*X\"",
    "\"a?c\"",
    "'q'",
    "'",
    "\"",
    "5",
    "-3",
    "+1",
    "9.99",
    "9.",
    "1.2.3",
    "-",
    "2fa",
    "*",
    "@",
    "\r",
    "é",
    "😀",
];

const SEPARATORS: &[&str] = &["", " ", " ", " ", "\n", "\t"];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(TOKENS),
            prop::sample::select(SEPARATORS),
        ),
        0..16,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(token, separator)| format!("{token}{separator}"))
            .collect()
    })
}

/// Field paths as written in a trigger (escapes included) that generate back verbatim.
fn field() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_-]{0,5}",
        "[a-z]{1,3}\\\\ [a-z]{1,3}".prop_map(|s| s),
    ]
    .prop_filter("keywords are not segments", |s| {
        !matches!(s.as_str(), "and" | "or" | "null")
    });
    let path = prop::collection::vec(segment, 1..4).prop_map(|segments| segments.join("."));
    prop_oneof![
        prop::sample::select(vec!["type", "event", "name", "userId"]).prop_map(String::from),
        (
            prop::sample::select(vec![
                "properties.",
                "traits.",
                "context.",
                "",
                "integrations.",
                "anonymousId.",
            ]),
            path
        )
            .prop_map(|(root, path)| format!("{root}{path}"))
            .prop_filter("function names followed by '(' are calls", |p| {
                p != "contains" && p != "match"
            }),
    ]
}

fn number() -> impl Strategy<Value = String> {
    "[-+]?[0-9]{1,6}(\\.[0-9]{1,3})?"
}

/// Values whose conversion survives generation (single-quoted strings without `"`).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\"[^\"]{0,8}\"",
        "'[^'\"]{0,6}'",
        number(),
        prop::sample::select(vec!["true", "false", "null", "hello", "a.b"]).prop_map(String::from),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    let equality = (field(), prop::sample::select(vec!["=", "!="]), value())
        .prop_map(|(f, op, v)| format!("{f} {op} {v}"));
    // Ordering comparisons are generated with their number, so only numbers survive.
    let ordering = (
        field(),
        prop::sample::select(vec!["<", "<=", ">", ">="]),
        number(),
    )
        .prop_map(|(f, op, v)| format!("{f} {op} {v}"));
    let contains = (any::<bool>(), field(), value())
        .prop_map(|(not, f, v)| format!("{}contains({f}, {v})", if not { "!" } else { "" }));
    let matching = (any::<bool>(), field(), "\"[a-z*?]{0,6}\"")
        .prop_map(|(not, f, p)| format!("{}match({f}, {p})", if not { "!" } else { "" }));
    prop_oneof![equality, ordering, contains, matching]
}

/// Valid triggers with nesting, mixed conjunctions and redundant parentheses.
fn trigger_text() -> impl Strategy<Value = String> {
    condition().prop_recursive(4, 24, 4, |inner| {
        (
            prop::collection::vec(inner, 2..4),
            prop::sample::select(vec![" and ", " or "]),
            any::<bool>(),
        )
            .prop_map(|(parts, conjunction, parenthesise)| {
                let joined = parts.join(conjunction);
                if parenthesise {
                    format!("({joined})")
                } else {
                    joined
                }
            })
    })
}

fn json_event() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "type",
        "event",
        "name",
        "userId",
        "properties",
        "traits",
        "context",
        "anonymousId",
        "integrations",
        "a",
        "b",
        "c",
        "d",
        "X",
        "length",
        "0",
        "a b",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "", "0", "x", "track", "identify", "Xa", "aX", "abc", "😀", "a b"
        ])
        .prop_map(Value::from),
        ".{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|entries| Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

/// Arbitrary AST objects: known and unknown types and operators, odd values.
fn ast_json() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "event-type",
        "event",
        "name",
        "userId",
        "event-property",
        "event-trait",
        "event-context",
        "event-path",
        "bogus",
    ]);
    let operator = prop::sample::select(vec![
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "number_equals",
        "number_not_equals",
        "contains",
        "not_contains",
        "starts_with",
        "not_starts_with",
        "ends_with",
        "not_ends_with",
        "exists",
        "not_exists",
        "is_true",
        "is_false",
        "glob",
        "not_glob",
        "~",
    ]);
    let name = prop::sample::select(vec![
        "a", "a.b", "a[0]", "s.length", "s.0", "", "...", "0.1",
    ]);
    let value = prop_oneof![
        Just(None),
        json_event().prop_map(Some),
        prop::sample::select(vec!["*", "a*", "?", "", "1e3", "0x10"]).prop_map(|s| Some(json!(s))),
    ];
    let leaf = (kind, operator.clone(), name, value).prop_map(|(kind, operator, name, value)| {
        let mut node = json!({"type": kind, "operator": operator});
        // Only path-bearing types keep a name when serialised.
        if kind.starts_with("event-") && kind != "event-type" || kind == "bogus" {
            node["name"] = json!(name);
        }
        if let Some(value) = value {
            node["value"] = value;
        }
        node
    });
    let error = Just(json!({"error": {"message": "m"}}));
    prop_oneof![leaf, error].prop_recursive(4, 32, 4, move |inner| {
        (
            prop::sample::select(vec!["and", "or", "xor"]),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(operator, children)| {
                json!({"type": "group", "operator": operator, "children": children})
            })
    })
}

fn exercise(trigger: &Trigger, event: &Value) {
    let matched = trigger.matches(event);
    let evaluated = trigger.evaluate(event);
    assert_eq!(matched, evaluated.unwrap_or(false));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_any_text(source in any::<String>()) {
        let _ = parse(&source);
    }

    #[test]
    fn token_soups_parse_or_fail_cleanly(source in token_soup(), event in json_event()) {
        match parse(&source) {
            Ok(trigger) => {
                exercise(&trigger, &event);
                exercise(&trigger, &json!(null));
                let text = generate(trigger.ast());
                prop_assert!(matches!(text, Ok(Some(_))), "{text:?}");
                let json = serde_json::to_value(trigger.ast()).unwrap();
                let back: Node = serde_json::from_value(json).unwrap();
                prop_assert_eq!(&back, trigger.ast());
            }
            Err(error) => {
                prop_assert!(error.position() <= source.chars().count());
                prop_assert!(!error.reason().is_empty());
            }
        }
    }

    #[test]
    fn valid_triggers_parse_and_round_trip(source in trigger_text()) {
        let trigger = parse(&source);
        prop_assert!(trigger.is_ok(), "{source:?}: {trigger:?}");
        let trigger = trigger.unwrap();
        let text = generate(trigger.ast()).unwrap().unwrap();
        let again = parse(&text);
        prop_assert!(again.is_ok(), "{source:?} → {text:?}: {again:?}");
        let again = again.unwrap();
        prop_assert_eq!(again.ast(), trigger.ast(), "{:?} → {:?}", source, text);
    }

    #[test]
    fn matches_never_panics(source in trigger_text(), event in json_event()) {
        let trigger = parse(&source).unwrap();
        exercise(&trigger, &event);
        let wrapped = json!({
            "type": "track", "properties": event.clone(), "traits": event.clone(),
            "context": event.clone(), "anonymousId": event.clone(), "integrations": event.clone(),
        });
        exercise(&trigger, &wrapped);
    }

    #[test]
    fn any_ast_evaluates_and_generates_without_panic(ast in ast_json(), event in json_event()) {
        let node: Node = serde_json::from_value(ast.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&node).unwrap(), ast);
        let trigger = Trigger::from_ast(node);
        exercise(&trigger, &event);
        exercise(&trigger, &json!(null));
        let _ = generate(trigger.ast());
    }
}

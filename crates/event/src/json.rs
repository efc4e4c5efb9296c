//! Parsing an event into a `serde_json::Value` with each object and array allocated once, at its
//! final size. serde_json's own `Value` grows every map as members arrive (its `IndexMap` moves
//! its entries at each growth), which was a third of parsing an event and 5% of the server's CPU
//! at full ingest rate (`perf`, see BENCHMARKS.md). Here the members of every open object and
//! array wait on one shared stack and are moved into a map or vector of exactly their number
//! when it closes.
//!
//! The result is the value `serde_json::from_str` gives, member order and duplicate keys (the
//! last value, in the first one's place) included: the same deserializer reads the text, only
//! the containers are built otherwise. Anything this path does not handle as serde_json does
//! (its raw-value key) and every error are handed to serde_json itself, so results and error
//! messages are the same.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The map key serde_json's `Value` parse reserves for raw values: a map holding it is read
/// otherwise there, so it is left to serde_json.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Parses `text` as `serde_json::from_str::<Value>` does.
pub fn value_from_str(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut stack = Stack::default();
    match parse(&mut deserializer, &mut stack) {
        Some(value) => Ok(value),
        None => serde_json::from_str(text),
    }
}

/// Parses `bytes` as `serde_json::from_slice::<Value>` does.
pub fn value_from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut stack = Stack::default();
    match parse(&mut deserializer, &mut stack) {
        Some(value) => Ok(value),
        None => serde_json::from_slice(bytes),
    }
}

/// One whole value and nothing after it, or `None` for serde_json to read it again.
fn parse<'de, R: serde_json::de::Read<'de>>(
    deserializer: &mut serde_json::Deserializer<R>,
    stack: &mut Stack,
) -> Option<Value> {
    let value = Seed(stack).deserialize(&mut *deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// The members of the objects and the items of the arrays still open, innermost last.
#[derive(Default)]
struct Stack {
    members: Vec<(String, Value)>,
    items: Vec<Value>,
}

/// Reads one value, its containers' contents waiting on the stack.
struct Seed<'s>(&'s mut Stack);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Seed(self.0).deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let base = self.0.items.len();
        let result = (|| {
            while let Some(item) = seq.next_element_seed(Seed(&mut *self.0))? {
                self.0.items.push(item);
            }
            Ok(())
        })();
        // Collected from an exact-size drain: one allocation of the final length.
        let items: Vec<Value> = self.0.items.drain(base..).collect();
        result.map(|()| Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let base = self.0.members.len();
        let result = (|| {
            while let Some(key) = map.next_key::<String>()? {
                if key == RAW_VALUE_TOKEN {
                    return Err(de::Error::custom("left to serde_json"));
                }
                let value = map.next_value_seed(Seed(&mut *self.0))?;
                self.0.members.push((key, value));
            }
            Ok(())
        })();
        let members = self.0.members.drain(base..);
        let mut object = Map::with_capacity(members.len());
        for (key, value) in members {
            object.insert(key, value);
        }
        result.map(|()| Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    /// Both parses of `text`, as results whose errors are compared by message.
    fn both(text: &str) -> (Result<Value, String>, Result<Value, String>) {
        (
            value_from_str(text).map_err(|err| err.to_string()),
            serde_json::from_str::<Value>(text).map_err(|err| err.to_string()),
        )
    }

    /// The same as serde_json, value by value and key order included (`Value`'s equality ignores
    /// the order of members, its text does not).
    fn assert_same(text: &str) {
        let (ours, theirs) = both(text);
        assert_eq!(ours, theirs, "{text}");
        if let (Ok(ours), Ok(theirs)) = (&ours, &theirs) {
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
        }
        let from_slice = value_from_slice(text.as_bytes()).map_err(|err| err.to_string());
        assert_eq!(from_slice, ours, "{text}");
    }

    #[test]
    fn values_errors_and_oddities_are_serde_jsons() {
        let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let too_deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        for text in [
            r#"{"type":"identify","traits":{"b":1,"a":[1,2.5,-3,"x",null,true,{}],"c":{"d":[]}}}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"z":{"k":1,"k":{"n":[1]}},"y":0}"#,
            r#"  [ {"a" : "\u00e9\n\"q\""} , 18446744073709551615, -9223372036854775808, 1e400 ]  "#,
            r#"1.7976931348623157e308"#,
            r#""just a string""#,
            r#"{"$serde_json::private::RawValue":"{\"a\":1}"}"#,
            r#"{"a":1,"$serde_json::private::RawValue":2}"#,
            "",
            "{",
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":[1,2}"#,
            r#"{"a":"\ud800"}"#,
            &deep,
            &too_deep,
        ] {
            assert_same(text);
        }
    }

    #[test]
    fn invalid_utf8_fails_as_serde_json_fails() {
        let bytes = b"{\"a\":\"\xff\"}";
        assert_eq!(
            value_from_slice(bytes).map_err(|err| err.to_string()),
            serde_json::from_slice::<Value>(bytes).map_err(|err| err.to_string())
        );
    }

    /// Arbitrary JSON values, nested.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z\u{e9}\"\\\\]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_reads_back_as_serde_json_reads_it(value in json(), cut in any::<prop::sample::Index>()) {
            let text = value.to_string();
            assert_same(&text);
            // And any prefix of it: the errors too.
            let end = cut.index(text.len() + 1);
            if let Some(prefix) = text.get(..end) {
                assert_same(prefix);
            }
        }

        #[test]
        fn duplicate_keys_keep_the_first_place_and_the_last_value(keys in prop::collection::vec("[a-c]", 1..8)) {
            let members: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, key)| format!("\"{key}\":{i}"))
                .collect();
            assert_same(&format!("{{{}}}", members.join(",")));
        }
    }
}

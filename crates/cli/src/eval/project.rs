//! Reading an event without building what nothing will read. Parsing an event into a
//! `serde_json::Value` (an ordered map per object: every key allocated and hashed) cost half of
//! `junction eval`'s time per line; the stock configuration reads a dozen of its members.
//!
//! [`Reads`] is what a set of subscriptions can read of an event: the members named by their
//! triggers' fields and their mappings' `@path`s, or everything when a mapping uses any other
//! directive (templates, Liquid, `@json`, … can read any member). [`parse`] then builds only
//! those members; every other member is still parsed and checked exactly as the full parse
//! checks it (numbers, escapes, nesting depth), so it fails exactly when the full parse fails,
//! but nothing of it is kept. This relies on actions reading the event only through their
//! trigger and mapping (`PerformInput::event` is the event as parsed here).

use std::borrow::Cow;
use std::fmt;

use junction_actions::Subscription;
use junction_trigger::{Field, Node};
use serde::Deserialize;
use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The key serde_json's `Value` parse reserves for its raw values: a map holding it is parsed
/// differently there, so a projected parse refuses it rather than read it otherwise.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// The mapping key of the reference's root directive.
const ROOT_DIRECTIVE_KEY: &str = "__segment_internal_directive";

/// What can be read of a JSON value: all of it, or some members of it when it is an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reads {
    whole: bool,
    /// A short list, scanned rather than hashed: hashing each key of the event is the cost this
    /// module avoids.
    members: Vec<(String, Reads)>,
}

impl Reads {
    /// Reads the whole value.
    pub fn everything() -> Self {
        Self {
            whole: true,
            members: Vec::new(),
        }
    }

    /// Whether the whole value is read.
    pub fn is_everything(&self) -> bool {
        self.whole
    }

    /// Adds the value at `path` (member names from the root), read whole.
    pub fn add_path<'p>(&mut self, path: impl IntoIterator<Item = &'p str>) {
        let mut node = self;
        for key in path {
            if node.whole {
                return;
            }
            let index = match node.members.iter().position(|(name, _)| name == key) {
                Some(index) => index,
                None => {
                    node.members.push((key.to_owned(), Reads::default()));
                    node.members.len() - 1
                }
            };
            node = &mut node.members[index].1;
        }
        // What is read whole needs none of its members listed.
        *node = Reads::everything();
    }

    /// Adds what a compiled subscription can read: its trigger's fields, and the `@path`s of its
    /// saved mapping and, with `use_defaults`, of its action's default mapping.
    pub fn add_subscription(
        &mut self,
        subscription: &Subscription,
        mapping: Option<&Value>,
        use_defaults: bool,
    ) {
        self.add_trigger(subscription.trigger().ast());
        if let Some(mapping) = mapping {
            self.add_mapping(mapping);
        }
        if use_defaults {
            self.add_mapping(&Value::Object(subscription.action().default_mapping()));
        }
    }

    fn add_trigger(&mut self, node: &Node) {
        match node {
            Node::Group { children, .. } => {
                for child in children {
                    self.add_trigger(child);
                }
            }
            Node::Condition(condition) => match &condition.field {
                Field::EventType => self.add_path(["type"]),
                Field::Event => self.add_path(["event"]),
                Field::Name => self.add_path(["name"]),
                Field::UserId => self.add_path(["userId"]),
                Field::Property(path) => self.add_path(trigger_path("properties", path)),
                Field::Trait(path) => self.add_path(trigger_path("traits", path)),
                Field::Context(path) => self.add_path(trigger_path("context", path)),
                Field::Path(path) => self.add_path(trigger_path("", path)),
                // Never matches, reads nothing.
                Field::Unknown { .. } => {}
            },
            // A failed parse never matches.
            Node::Error(_) => {}
        }
    }

    /// Adds the reads of a mapping as saved: each `@path` whose path is plain dotted names;
    /// anything else that is a directive may read any member, so it reads everything.
    fn add_mapping(&mut self, mapping: &Value) {
        match mapping {
            Value::Array(items) => items.iter().for_each(|item| self.add_mapping(item)),
            Value::Object(members) => {
                let directive = members
                    .keys()
                    .any(|key| key.starts_with('@') || key == ROOT_DIRECTIVE_KEY);
                if !directive {
                    members.values().for_each(|value| self.add_mapping(value));
                    return;
                }
                match (members.len(), members.get("@path").and_then(plain_path)) {
                    (1, Some(path)) => self.add_path(path),
                    _ => *self = Reads::everything(),
                }
            }
            // Literals.
            _ => {}
        }
    }
}

/// The member names of a trigger's path under `root` (none for the event itself), split as the
/// trigger evaluator splits it: maximal runs of characters other than `[`, `.` and `]`.
fn trigger_path<'p>(root: &'p str, path: &'p str) -> impl Iterator<Item = &'p str> {
    std::iter::once(root)
        .chain(path.split(['[', '.', ']']))
        .filter(|segment| !segment.is_empty())
}

/// The member names of `$.a.b`, when the path is only that: `$.` then dot-separated names of
/// letters, digits, `_` and `-` (every other form reads everything, to stay on the safe side of
/// the path grammar's quirks).
fn plain_path(path: &Value) -> Option<std::str::Split<'_, char>> {
    let rest = path.as_str()?.strip_prefix("$.")?;
    let plain = rest.split('.').all(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    plain.then(|| rest.split('.'))
}

/// Parses one JSON value, building what `reads` reads of it (see the module's documentation).
pub fn parse<'de, D: Deserializer<'de>>(reads: &Reads, deserializer: D) -> Result<Value, D::Error> {
    Project(reads).deserialize(deserializer)
}

/// A value, of which `.0` is read.
pub struct Project<'r>(pub &'r Reads);

impl<'de> DeserializeSeed<'de> for Project<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            return Value::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

/// Builds values as `serde_json::Value`'s own visitor does; only objects are projected.
impl<'de> Visitor<'de> for Project<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
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

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        // Arrays are kept whole: a path reads their elements by index or `length`.
        Value::deserialize(SeqAccessDeserializer::new(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Sized for every member read: growing the map rehashes its keys.
        let mut object = Map::with_capacity(self.0.members.len());
        while let Some(key) = map.next_key_seed(Key)? {
            if key == RAW_VALUE_TOKEN {
                return Err(de::Error::custom("unexpected raw value key"));
            }
            let reads = self.0.members.iter().find(|(name, _)| *name == key);
            match reads {
                Some((_, reads)) => {
                    let value = map.next_value_seed(Project(reads))?;
                    object.insert(key.into_owned(), value);
                }
                None => map.next_value_seed(Check)?,
            }
        }
        Ok(Value::Object(object))
    }
}

/// An object key, borrowed from the input when it has no escapes.
pub struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value))
    }
}

/// A value parsed and checked as `Value` would be, and dropped as it goes.
struct Check;

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key)? {
            if key == RAW_VALUE_TOKEN {
                return Err(de::Error::custom("unexpected raw value key"));
            }
            map.next_value_seed(Check)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn project(reads: &Reads, text: &str) -> Result<Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = parse(reads, &mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    #[test]
    fn only_what_is_read_is_built_in_the_event_order() {
        let mut reads = Reads::default();
        reads.add_path(["traits", "email"]);
        reads.add_path(["type"]);
        reads.add_path(["traits", "company"]);
        reads.add_path(["traits", "company", "id"]); // within a whole member: no change
        let event = r#"{"type": "identify", "context": {"ip": "1.2.3.4"},
            "traits": {"plan": "pro", "company": {"id": 1, "x": [1, 2]}, "email": "a@b.c"},
            "list": [1, {"a": 1}]}"#;
        assert_eq!(
            project(&reads, event).unwrap(),
            json!({"type": "identify",
                   "traits": {"company": {"id": 1, "x": [1, 2]}, "email": "a@b.c"}})
        );
        // A member read under a non-object is the whole value.
        assert_eq!(
            project(&reads, r#"{"traits": ["a", "b"], "type": 3.5}"#).unwrap(),
            json!({"traits": ["a", "b"], "type": 3.5})
        );
        assert_eq!(project(&reads, "[1, 2]").unwrap(), json!([1, 2]));
        assert_eq!(
            project(&Reads::everything(), event).unwrap(),
            serde_json::from_str::<Value>(event).unwrap()
        );
    }

    #[test]
    fn what_is_skipped_fails_as_the_full_parse_fails() {
        let reads = Reads::default();
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(127), "]".repeat(127));
        let deeper = format!("{{\"a\": {}{}}}", "[".repeat(128), "]".repeat(128));
        for text in [
            r#"{"a": 1e400}"#,
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\x"}"#,
            r#"{"a": 01}"#,
            r#"{"a": [1,]}"#,
            r#"{"a": {"$serde_json::private::RawValue": 1}}"#,
            "{\"a\": \"\u{1}\"}",
            deep.as_str(),
            deeper.as_str(),
        ] {
            let full = serde_json::from_str::<Value>(text);
            let projected = project(&reads, text);
            assert_eq!(full.is_ok(), projected.is_ok(), "{text}");
        }
    }

    #[test]
    fn mappings_read_their_plain_paths_or_everything() {
        let mut reads = Reads::default();
        reads.add_mapping(&json!({
            "email": {"@path": "$.traits.email"},
            "type": "Send Contact",
            "company": {"id": {"@path": "$.traits.company.id"}},
            "list": [{"@path": "$.userId"}]
        }));
        let mut expected = Reads::default();
        expected.add_path(["traits", "email"]);
        expected.add_path(["traits", "company", "id"]);
        expected.add_path(["userId"]);
        assert_eq!(reads, expected);
        for mapping in [
            json!({"a": {"@template": "{{traits.email}}"}}),
            json!({"a": {"@path": "$.traits['email']"}}),
            json!({"a": {"@path": "$"}}),
            json!({"a": {"@path": {"@path": "$.x"}}}),
            json!({"a": {"@path": "$.x", "b": 1}}),
            json!({"__segment_internal_directive": {"@path": "$.x"}}),
        ] {
            let mut reads = Reads::default();
            reads.add_mapping(&mapping);
            assert!(reads.is_everything(), "{mapping}");
        }
    }

    #[test]
    fn the_stock_configuration_reads_a_few_members() {
        let registry = junction_actions::registry().unwrap();
        let chartmogul = registry.get("actions-chartmogul").unwrap();
        let mut reads = Reads::default();
        for (action, trigger) in [
            ("sendContact", "type = \"identify\""),
            ("sendCustomer", "type = \"group\""),
        ] {
            let config: junction_actions::SubscriptionConfig =
                serde_json::from_value(json!({"partnerAction": action, "subscribe": trigger}))
                    .unwrap();
            let subscription = Subscription::compile(chartmogul, &config).unwrap();
            reads.add_subscription(&subscription, None, true);
        }
        let event = json!({"type": "identify", "userId": "u1", "context": {"ip": "1.2.3.4"},
                           "integrations": {}, "receivedAt": "2024-03-01T12:00:00Z",
                           "traits": {"email": "a@b.c", "plan": "pro", "logins": 3,
                                      "company": {"id": "c1", "employees": 12}}});
        let projected = project(&reads, &event.to_string()).unwrap();
        assert_eq!(
            projected,
            json!({"type": "identify", "userId": "u1",
                   "traits": {"email": "a@b.c", "company": {"id": "c1"}}})
        );
    }

    #[test]
    fn triggers_read_their_fields() {
        let trigger = junction_trigger::parse(
            "type = \"identify\" and (traits.plan = \"pro\" or properties.a.b = 1 \
             or context.library.name = \"x\" or userId = \"u\" or event = \"E\")",
        )
        .unwrap();
        let mut reads = Reads::default();
        reads.add_trigger(trigger.ast());
        let mut expected = Reads::default();
        for path in [
            &["type"][..],
            &["traits", "plan"],
            &["properties", "a", "b"],
            &["context", "library", "name"],
            &["userId"],
            &["event"],
        ] {
            expected.add_path(path.iter().copied());
        }
        assert_eq!(reads, expected);
    }
}

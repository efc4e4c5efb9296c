//! What a profile is made of (`audiences.md` §1): the events resolved to it — `track`, `page`
//! and `screen` calls, each with its time and processing sequence — and the traits of its
//! `identify` calls, merged shallowly in processing order.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::datetime::parse_rfc3339;

/// The name `page` calls have as a stream: `event('Page Viewed')`.
pub const PAGE_VIEWED: &str = "Page Viewed";
/// The name `screen` calls have as a stream: `event('Screen Viewed')`.
pub const SCREEN_VIEWED: &str = "Screen Viewed";

/// What an event contributes to a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Contribution {
    /// A `track`, `page` or `screen` call: an event of the stream with this name.
    Event(String),
    /// An `identify` call: its traits.
    Traits(Map<String, Value>),
    /// Nothing: `alias`, `group`, an unknown type, a `track` without an event name.
    Nothing,
}

/// An event as the profile engine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in processing order (ingest order); later events have larger numbers.
    pub seq: u64,
    /// Its `timestamp` in Unix milliseconds (0 when it has no valid one).
    pub time: i64,
    /// What it contributes.
    pub contribution: Contribution,
    /// Its source id, for `sources(exclude: …)`.
    pub source_id: Option<String>,
    /// Its `properties` (`null` when absent).
    pub properties: Value,
    /// Its `context` (`null` when absent).
    pub context: Value,
}

/// The members of a Segment event that an [`Event`] is made of.
const READ_MEMBERS: [&str; 7] = [
    "type",
    "event",
    "traits",
    "timestamp",
    "source_id",
    "properties",
    "context",
];

impl Event {
    /// Reads a Segment event (as normalised at ingest; in `eval`, as given, with `source_id`)
    /// processed `seq`-th.
    pub fn from_json(event: &Value, seq: u64) -> Event {
        // Only the members read are copied.
        let read: Map<String, Value> = READ_MEMBERS
            .iter()
            .filter_map(|&name| Some((name.to_owned(), event.get(name)?.clone())))
            .collect();
        Self::from_value(Value::Object(read), seq)
    }

    /// [`Event::from_json`] of an event no longer needed: its traits, properties and context are
    /// moved, not copied (the profile worker takes in every stored event this way).
    pub fn from_value(event: Value, seq: u64) -> Event {
        let Value::Object(mut event) = event else {
            return Self::from_value(Value::Object(Map::new()), seq);
        };
        let mut take = |name: &str| event.remove(name).unwrap_or(Value::Null);
        let kind = take("type");
        let contribution = match kind.as_str() {
            Some("track") => match take("event") {
                Value::String(name) => Contribution::Event(name),
                _ => Contribution::Nothing,
            },
            Some("page") => Contribution::Event(PAGE_VIEWED.to_owned()),
            Some("screen") => Contribution::Event(SCREEN_VIEWED.to_owned()),
            Some("identify") => match take("traits") {
                Value::Object(traits) => Contribution::Traits(traits),
                _ => Contribution::Traits(Map::new()),
            },
            _ => Contribution::Nothing,
        };
        let time = take("timestamp")
            .as_str()
            .and_then(parse_rfc3339)
            .unwrap_or(0);
        let source_id = match take("source_id") {
            Value::String(id) => Some(id),
            _ => None,
        };
        Event {
            seq,
            time,
            contribution,
            source_id,
            properties: take("properties"),
            context: take("context"),
        }
    }

    /// The stream name of a `track`, `page` or `screen` call.
    pub fn stream_name(&self) -> Option<&str> {
        match &self.contribution {
            Contribution::Event(name) => Some(name),
            _ => None,
        }
    }
}

/// A profile's data as the from-scratch evaluator reads it: every event resolved to it
/// (`identify` calls included), in processing order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    events: Vec<Event>,
}

impl Profile {
    /// An empty profile.
    pub fn new() -> Profile {
        Profile::default()
    }

    /// Adds an event resolved to the profile; events arrive in processing order, and one out of
    /// order is put in its place.
    pub fn push(&mut self, event: Event) {
        let at = self.events.partition_point(|e| e.seq < event.seq);
        self.events.insert(at, event);
    }

    /// Takes in the events of a profile merged into this one (the union, in processing order).
    pub fn absorb(&mut self, other: Profile) {
        let mine = std::mem::take(&mut self.events);
        let mut merged = Vec::with_capacity(mine.len() + other.events.len());
        let mut a = mine.into_iter().peekable();
        let mut b = other.events.into_iter().peekable();
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.seq <= y.seq,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            merged.extend(next);
        }
        self.events = merged;
    }

    /// Every event, in processing order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The traits: those of every `identify`, merged shallowly in processing order (a later
    /// value wins; `null` stores `null`).
    pub fn traits(&self) -> Map<String, Value> {
        let mut traits = Map::new();
        for event in &self.events {
            if let Contribution::Traits(set) = &event.contribution {
                for (key, value) in set {
                    traits.insert(key.clone(), value.clone());
                }
            }
        }
        traits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_name_their_stream() {
        let page = Event::from_json(&json!({"type": "page", "name": "Home"}), 1);
        assert_eq!(page.stream_name(), Some(PAGE_VIEWED));
        let track = Event::from_json(
            &json!({"type": "track", "event": "Order Completed",
                    "timestamp": "1970-01-01T00:00:01Z", "source_id": "web"}),
            2,
        );
        assert_eq!(track.stream_name(), Some("Order Completed"));
        assert_eq!(track.time, 1000);
        assert_eq!(track.source_id.as_deref(), Some("web"));
        let alias = Event::from_json(&json!({"type": "alias", "timestamp": "bad"}), 3);
        assert_eq!(alias.contribution, Contribution::Nothing);
        assert_eq!(alias.time, 0);
    }

    #[test]
    fn an_event_taken_whole_reads_as_one_borrowed() {
        for event in [
            json!({"type": "identify", "userId": "u", "traits": {"b": 1, "a": {"c": [2]}},
                   "context": {"ip": "203.0.113.9"}, "properties": {"x": 1},
                   "timestamp": "1970-01-01T00:00:02Z", "source_id": "web"}),
            json!({"type": "identify", "traits": "not an object"}),
            json!({"type": "track", "event": "Order Completed", "properties": {"total": 5}}),
            json!({"type": "track", "event": 5}),
            json!({"type": "screen", "source_id": 7}),
            json!({"type": "page"}),
            json!({"type": 3}),
            json!({}),
            json!([1]),
            json!(null),
        ] {
            assert_eq!(
                Event::from_value(event.clone(), 9),
                Event::from_json(&event, 9),
                "{event}"
            );
        }
    }

    #[test]
    fn merged_profiles_keep_processing_order_and_later_traits_win() {
        let identify = |seq, traits: Value| {
            Event::from_json(&json!({"type": "identify", "traits": traits}), seq)
        };
        let mut a = Profile::new();
        a.push(identify(1, json!({"plan": "free", "age": 30})));
        a.push(identify(3, json!({"plan": null})));
        let mut b = Profile::new();
        b.push(identify(2, json!({"plan": "pro", "vip": true})));
        a.absorb(b);
        let seqs: Vec<u64> = a.events().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(
            Value::Object(a.traits()),
            json!({"plan": null, "age": 30, "vip": true})
        );
    }
}

//! Evaluation from scratch (`audiences.md` §3): every definition's value for one profile at
//! `now`, reading all of the profile's events. The reference the incremental state
//! ([`crate::state`]) must always agree with.

use serde_json::Value;

use crate::ast::{Body, Kind, Stream};
use crate::check::{Definition, Definitions};
use crate::compare::holds;
use crate::profile::{Event, Profile};
use crate::reduce::Accumulator;
use crate::scope::{DefinitionScope, EventScope, EventView, ProfileTraits};

/// Every definition's value for `profile` at `now` (Unix milliseconds), in the order of
/// [`Definitions::list`]: audiences `Some(true/false)`, computed traits their value or `None`.
pub fn evaluate(definitions: &Definitions, profile: &Profile, now: i64) -> Vec<Option<Value>> {
    let traits = profile.traits();
    let mut values: Vec<Option<Value>> = vec![None; definitions.len()];
    for &index in definitions.order() {
        let Some(definition) = definitions.list().get(index) else {
            continue;
        };
        let value = evaluate_one(
            definitions,
            definition,
            &values,
            &traits,
            profile.events(),
            now,
        );
        if let Some(slot) = values.get_mut(index) {
            *slot = value;
        }
    }
    values
}

/// One definition's value, the definitions it reads already in `values`.
fn evaluate_one(
    definitions: &Definitions,
    definition: &Definition,
    values: &[Option<Value>],
    traits: &impl ProfileTraits,
    events: &[Event],
    now: i64,
) -> Option<Value> {
    let query = definition.query();
    let outer = DefinitionScope {
        definitions,
        values,
        traits,
        streams: &[],
    };
    let streams: Vec<Option<Value>> = query
        .streams
        .iter()
        .map(|stream| stream_value(stream, &outer, events, now))
        .collect();
    let scope = DefinitionScope {
        streams: &streams,
        ..outer
    };
    match (&query.body, definition.kind()) {
        (Body::Audience(expr), _) => Some(Value::Bool(holds(expr, &scope, now))),
        (Body::Trait(index), Kind::Trait) => streams.get(*index).cloned().flatten(),
        (Body::Trait(_), Kind::Audience) => None,
    }
}

/// A stream's value: its reducer over the profile's events that count at `now`.
fn stream_value<T: ProfileTraits>(
    stream: &Stream,
    scope: &DefinitionScope<'_, T>,
    events: &[Event],
    now: i64,
) -> Option<Value> {
    let mut accumulator = Accumulator::new(&stream.reducer);
    for event in events {
        if counts(stream, scope, event, now) {
            let value = stream.reducer.prop().and_then(|prop| event.prop(prop));
            accumulator.add(event.time, event.seq, value);
        }
    }
    accumulator.finish()
}

/// Whether `event` counts for `stream` at `now`: its name, its source, its time, its `where`s.
fn counts<T: ProfileTraits>(
    stream: &Stream,
    scope: &DefinitionScope<'_, T>,
    event: &Event,
    now: i64,
) -> bool {
    if event.stream_name() != Some(stream.event.as_str()) {
        return false;
    }
    let excluded = event
        .source_id
        .as_ref()
        .is_some_and(|source| stream.excluded_sources.contains(source));
    if excluded {
        return false;
    }
    if stream
        .window
        .is_some_and(|window| !window.contains(now, event.time))
    {
        return false;
    }
    let event_scope = EventScope {
        outer: scope,
        event,
    };
    stream
        .conditions
        .iter()
        .all(|condition| holds(condition, &event_scope, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::DefinitionSpec;
    use crate::datetime::parse_rfc3339;
    use serde_json::json;

    fn values(definitions: &[(&str, &str, &str)], events: &[Value], now: &str) -> Value {
        let specs: Vec<DefinitionSpec> = definitions
            .iter()
            .map(|(key, kind, query)| DefinitionSpec {
                key: Some((*key).to_owned()),
                name: None,
                kind: json!(kind),
                query: (*query).to_owned(),
            })
            .collect();
        let compiled = Definitions::compile(&specs);
        assert!(compiled.refused.is_empty(), "{:?}", compiled.refused);
        let mut profile = Profile::new();
        for (seq, event) in events.iter().enumerate() {
            profile.push(Event::from_json(event, seq as u64));
        }
        let now = parse_rfc3339(now).unwrap();
        let values = evaluate(&compiled.definitions, &profile, now);
        let keys = compiled
            .definitions
            .list()
            .iter()
            .map(|d| d.key().to_owned());
        Value::Object(
            keys.zip(values)
                .filter_map(|(key, value)| Some((key, value?)))
                .collect(),
        )
    }

    #[test]
    fn the_specification_example() {
        let got = values(
            &[(
                "big_spender",
                "audience",
                "event('Order Completed').within(30 days).sum(property('total')) >= 100",
            )],
            &[
                json!({"type": "track", "event": "Order Completed", "userId": "u1",
                     "timestamp": "2026-02-20T10:00:00Z", "properties": {"total": 120}}),
            ],
            "2026-03-01T00:00:00Z",
        );
        assert_eq!(got, json!({"big_spender": true}));
    }

    #[test]
    fn windows_sources_and_where() {
        let events = [
            json!({"type": "track", "event": "A", "timestamp": "2026-02-27T00:00:00Z",
                   "properties": {"n": 1}, "source_id": "web"}),
            json!({"type": "track", "event": "A", "timestamp": "2026-02-20T00:00:00Z",
                   "properties": {"n": 2}}),
            json!({"type": "track", "event": "A", "timestamp": "2026-03-05T00:00:00Z",
                   "properties": {"n": 4}}),
            json!({"type": "identify", "traits": {"limit": 1}}),
        ];
        let got = values(
            &[
                ("all", "trait", "event('A').sum(property('n'))"),
                (
                    "week",
                    "trait",
                    "event('A').within(7 days).sum(property('n'))",
                ),
                (
                    "older",
                    "trait",
                    "event('A').between(3 days, 30 days).count()",
                ),
                (
                    "not_web",
                    "trait",
                    "event('A').sources(exclude: 'web').count()",
                ),
                (
                    "above",
                    "trait",
                    "event('A').where(property('n') > trait('limit')).count()",
                ),
                (
                    "reads",
                    "audience",
                    "trait('week') = 1 AND trait('above') = 2",
                ),
            ],
            &events,
            "2026-03-01T00:00:00Z",
        );
        assert_eq!(
            got,
            json!({"all": 7, "week": 1, "older": 1, "not_web": 2, "above": 2, "reads": true})
        );
    }

    #[test]
    fn an_absent_computed_trait_does_not_fall_back_to_the_profile() {
        let got = values(
            &[
                ("plan", "trait", "event('A').last(property('plan'))"),
                ("has_plan", "audience", "trait('plan').exists()"),
            ],
            &[json!({"type": "identify", "traits": {"plan": "pro"}})],
            "2026-03-01T00:00:00Z",
        );
        assert_eq!(got, json!({"has_plan": false}));
    }
}

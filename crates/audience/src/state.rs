//! Incremental evaluation: per profile, a [`ProfileState`] that an event updates at the cost
//! of the definitions that read it, that merges with another profile's, and that recomputes at
//! `now` only what may have changed — definitions whose inputs changed, whose next time edge
//! has passed, or that read a definition whose value changed.
//!
//! Each stream of each definition keeps one of two things:
//!
//! * a **folded** accumulator, when which events count can never change after they arrive (no
//!   window, no `where` that reads `trait()` or `now`): adding an event is O(1) (O(log k) for
//!   `mode`/`unique`), finishing is O(1) (O(k) for `mode`);
//! * its **entries** otherwise — each event of the stream with its time, sequence and the
//!   properties the stream reads — and the value is refolded at `now` over those that count.
//!   Windowed entries that can no longer count are dropped by [`ProfileState::expire`].
//!
//! The state is serde-serialisable so a server can persist it next to the profile. It belongs
//! to the [`Definitions`] it was built with; [`ProfileState::fits`] tells whether it still
//! does (otherwise rebuild it from the profile's events).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ast::{Body, Prop, Stream};
use crate::check::{Definition, Definitions};
use crate::compare::{earliest, holds, next_edge};
use crate::profile::{Contribution, Event};
use crate::reduce::Accumulator;
use crate::scope::{DefinitionScope, EventScope, EventView, ProfileTraits};
use crate::value::equal;

/// One profile's incremental state for a set of definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    traits: Traits,
    definitions: Vec<DefinitionState>,
    /// Each definition's value as of the last [`Self::refresh`].
    values: Vec<Option<Value>>,
    /// Per definition, the first instant after the last refresh at which its value may change
    /// with time alone.
    edges: Vec<Option<i64>>,
    /// Per definition, whether an input (event, trait, merge) changed since the last refresh.
    dirty: Vec<bool>,
    refreshed_at: Option<i64>,
}

/// The profile's traits, each with the processing sequence of the `identify` that set it, so
/// that merging two profiles keeps the later value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Traits(BTreeMap<String, (u64, Value)>);

impl ProfileTraits for Traits {
    fn get_trait(&self, key: &str) -> Option<&Value> {
        self.0.get(key).map(|(_, value)| value)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DefinitionState {
    /// The key and text of the definition this state is for.
    key: String,
    text: String,
    streams: Vec<StreamState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum StreamState {
    /// Which events count is settled on arrival: they are folded as they come.
    Folded(Accumulator),
    /// Which events count depends on `now` or on `trait()`: the events are kept.
    Entries(Vec<Entry>),
}

/// An event of a stream whose value is computed at `now`: its time, its processing sequence,
/// and the values of the properties the stream reads (in [`Stream::props`] order; only the
/// reducer's when the stream's `where`s were settled on arrival).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    time: i64,
    seq: u64,
    values: Vec<Option<Value>>,
}

/// An entry seen as an event, for `where` conditions.
struct EntryView<'a> {
    entry: &'a Entry,
    props: &'a [Prop],
}

impl EventView for EntryView<'_> {
    fn prop(&self, prop: &Prop) -> Option<&Value> {
        let slot = self.props.iter().position(|p| p == prop)?;
        self.entry.values.get(slot)?.as_ref()
    }
}

/// A definition's value before and after a [`ProfileState::refresh`].
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The definition's index in [`Definitions::list`].
    pub index: usize,
    /// Its key.
    pub key: String,
    /// The value before (`None`: none, or never computed).
    pub before: Option<Value>,
    /// The value now.
    pub after: Option<Value>,
}

impl Change {
    /// What a destination is sent for this change (`audiences.md` §4): entering an audience
    /// (`true`), leaving it (`false`), a computed trait's value appearing or becoming different;
    /// `None` when nothing is sent (a value disappearing, an audience computed `false` for the
    /// first time).
    pub fn sent(&self) -> Option<&Value> {
        let after = self.after.as_ref()?;
        let changed = match &self.before {
            None => after != &Value::Bool(false),
            Some(before) => !equal(before, after),
        };
        changed.then_some(after)
    }
}

/// Whether the stream's `where`s can be decided when an event arrives (they read neither
/// `trait()` nor `now`).
fn settled_conditions(stream: &Stream) -> bool {
    !stream
        .conditions
        .iter()
        .any(|condition| condition.is_dynamic())
}

impl ProfileState {
    /// The state of a profile with no event yet.
    pub fn new(definitions: &Definitions) -> ProfileState {
        let count = definitions.len();
        ProfileState {
            traits: Traits::default(),
            definitions: definitions
                .list()
                .iter()
                .map(|definition| DefinitionState {
                    key: definition.key().to_owned(),
                    text: definition.text().to_owned(),
                    streams: definition
                        .query()
                        .streams
                        .iter()
                        .map(|stream| {
                            if stream.is_dynamic() {
                                StreamState::Entries(Vec::new())
                            } else {
                                StreamState::Folded(Accumulator::new(&stream.reducer))
                            }
                        })
                        .collect(),
                })
                .collect(),
            values: vec![None; count],
            edges: vec![None; count],
            dirty: vec![true; count],
            refreshed_at: None,
        }
    }

    /// The state of a profile with these events (in processing order): how to rebuild a state
    /// that no longer [`fits`](Self::fits) its definitions, from the profile's stored events.
    pub fn from_events<'a>(
        definitions: &Definitions,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> ProfileState {
        let mut state = ProfileState::new(definitions);
        for event in events {
            state.apply(definitions, event);
        }
        state
    }

    /// Whether this state was built for `definitions` (same keys and texts, same order).
    pub fn fits(&self, definitions: &Definitions) -> bool {
        self.definitions.len() == definitions.len()
            && self
                .definitions
                .iter()
                .zip(definitions.list())
                .all(|(state, definition)| {
                    state.key == definition.key() && state.text == definition.text()
                })
    }

    /// Takes in one event resolved to this profile. Costs O(definitions reading its event name
    /// or its traits); values are recomputed by the next [`Self::refresh`].
    pub fn apply(&mut self, definitions: &Definitions, event: &Event) {
        match &event.contribution {
            Contribution::Traits(traits) => {
                for (key, value) in traits {
                    let current = self.traits.0.get(key).map(|(seq, _)| *seq);
                    if current.is_none_or(|seq| seq <= event.seq) {
                        self.traits
                            .0
                            .insert(key.clone(), (event.seq, value.clone()));
                    }
                    for &index in definitions.readers_of_trait(key) {
                        self.mark_dirty(index);
                    }
                }
            }
            Contribution::Event(name) => {
                for &index in definitions.readers_of_event(name) {
                    self.apply_to_definition(definitions, index, name, event);
                    self.mark_dirty(index);
                }
            }
            Contribution::Nothing => {}
        }
    }

    fn mark_dirty(&mut self, index: usize) {
        if let Some(dirty) = self.dirty.get_mut(index) {
            *dirty = true;
        }
    }

    fn apply_to_definition(
        &mut self,
        definitions: &Definitions,
        index: usize,
        name: &str,
        event: &Event,
    ) {
        let Some(definition) = definitions.list().get(index) else {
            return;
        };
        let outer = DefinitionScope {
            definitions,
            values: &self.values,
            traits: &self.traits,
            streams: &[],
        };
        let mut updates = Vec::new();
        for (slot, stream) in definition.query().streams.iter().enumerate() {
            if stream.event != name {
                continue;
            }
            let excluded = event
                .source_id
                .as_ref()
                .is_some_and(|source| stream.excluded_sources.contains(source));
            if excluded {
                continue;
            }
            let settled = settled_conditions(stream);
            if settled {
                // Conditions that read neither `trait()` nor `now` are decided once, here.
                let scope = EventScope {
                    outer: &outer,
                    event,
                };
                if !stream
                    .conditions
                    .iter()
                    .all(|c| holds(c, &scope, event.time))
                {
                    continue;
                }
            }
            let props = if settled {
                stream.reducer.prop().cloned().into_iter().collect()
            } else {
                stream.props()
            };
            let values: Vec<Option<Value>> =
                props.iter().map(|prop| event.prop(prop).cloned()).collect();
            updates.push((slot, values));
        }
        let Some(state) = self.definitions.get_mut(index) else {
            return;
        };
        for (slot, values) in updates {
            match state.streams.get_mut(slot) {
                Some(StreamState::Folded(accumulator)) => {
                    let value: Option<&Value> = values.first().and_then(Option::as_ref);
                    accumulator.add(event.time, event.seq, value);
                }
                Some(StreamState::Entries(entries)) => {
                    let entry = Entry {
                        time: event.time,
                        seq: event.seq,
                        values,
                    };
                    let at = entries.partition_point(|e| e.seq < entry.seq);
                    entries.insert(at, entry);
                }
                None => {}
            }
        }
    }

    /// Takes in the state of a profile merged into this one (`audiences.md` §1: events and
    /// traits are the union, traits merged in processing order). Every value is recomputed by
    /// the next refresh; changes are reported against this profile's values.
    pub fn absorb(&mut self, other: ProfileState) {
        for (key, (seq, value)) in other.traits.0 {
            let current = self.traits.0.get(&key).map(|(s, _)| *s);
            if current.is_none_or(|s| s <= seq) {
                self.traits.0.insert(key, (seq, value));
            }
        }
        for (mine, theirs) in self.definitions.iter_mut().zip(other.definitions) {
            for (stream, other_stream) in mine.streams.iter_mut().zip(theirs.streams) {
                match (stream, other_stream) {
                    (StreamState::Folded(a), StreamState::Folded(b)) => a.absorb(b),
                    (StreamState::Entries(a), StreamState::Entries(b)) => {
                        a.extend(b);
                        a.sort_by_key(|entry| entry.seq);
                    }
                    _ => {}
                }
            }
        }
        self.dirty.iter_mut().for_each(|dirty| *dirty = true);
    }

    /// Recomputes, at `now`, every value that may have changed since the last refresh, and
    /// returns the values that did (in evaluation order). Cost: the definitions recomputed
    /// (each O(its size), plus O(entries) for its streams that keep entries).
    pub fn refresh(&mut self, definitions: &Definitions, now: i64) -> Vec<Change> {
        // Time going backwards (never at ingest, possible in tests) invalidates every edge.
        let everything = self.refreshed_at.is_none_or(|at| now < at);
        let mut changed = vec![false; definitions.len()];
        let mut changes = Vec::new();
        for &index in definitions.order() {
            let Some(definition) = definitions.list().get(index) else {
                continue;
            };
            let due = everything
                || self.dirty.get(index).copied().unwrap_or(true)
                || self
                    .edges
                    .get(index)
                    .copied()
                    .flatten()
                    .is_some_and(|edge| edge <= now)
                || definition
                    .reads_definitions()
                    .iter()
                    .any(|&read| changed.get(read).copied().unwrap_or(false));
            if !due {
                continue;
            }
            let (value, edge) = self.compute(definitions, index, definition, now);
            let before = self.values.get(index).cloned().flatten();
            let same = match (&before, &value) {
                (Some(a), Some(b)) => equal(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                if let Some(flag) = changed.get_mut(index) {
                    *flag = true;
                }
                changes.push(Change {
                    index,
                    key: definition.key().to_owned(),
                    before,
                    after: value.clone(),
                });
            }
            if let Some(slot) = self.values.get_mut(index) {
                *slot = value;
            }
            if let Some(slot) = self.edges.get_mut(index) {
                *slot = edge;
            }
            if let Some(slot) = self.dirty.get_mut(index) {
                *slot = false;
            }
        }
        self.refreshed_at = Some(now);
        changes
    }

    /// One definition's value at `now` and the first instant after `now` at which it may
    /// change with time alone.
    fn compute(
        &self,
        definitions: &Definitions,
        index: usize,
        definition: &Definition,
        now: i64,
    ) -> (Option<Value>, Option<i64>) {
        let query = definition.query();
        let outer = DefinitionScope {
            definitions,
            values: &self.values,
            traits: &self.traits,
            streams: &[],
        };
        let mut edge = None;
        let mut streams = Vec::with_capacity(query.streams.len());
        let states = self
            .definitions
            .get(index)
            .map_or(&[][..], |state| state.streams.as_slice());
        for (stream, state) in query.streams.iter().zip(states) {
            let value = match state {
                StreamState::Folded(accumulator) => accumulator.finish(),
                StreamState::Entries(entries) => {
                    let (value, stream_edge) = refold(stream, entries, &outer, now);
                    edge = earliest(edge, stream_edge);
                    value
                }
            };
            streams.push(value);
        }
        let scope = DefinitionScope {
            streams: &streams,
            ..outer
        };
        match &query.body {
            Body::Audience(expr) => {
                edge = earliest(edge, next_edge(expr, &scope, now));
                (Some(Value::Bool(holds(expr, &scope, now))), edge)
            }
            Body::Trait(slot) => (streams.get(*slot).cloned().flatten(), edge),
        }
    }

    /// Each definition's value as of the last refresh, in the order of [`Definitions::list`]
    /// The profile's traits: every `identify`'s `traits`, merged (a later one wins).
    pub fn traits(&self) -> serde_json::Map<String, Value> {
        self.traits
            .0
            .iter()
            .map(|(key, (_, value))| (key.clone(), value.clone()))
            .collect()
    }

    /// (audiences `Some(true/false)`, computed traits their value or `None`).
    pub fn values(&self) -> &[Option<Value>] {
        &self.values
    }

    /// The first instant after the last refresh at which some value may change with time alone
    /// (an event entering or leaving a window, a date comparator's edge): when a scheduler
    /// should call [`Self::refresh`] next. `None`: no value changes unless an event arrives.
    pub fn next_edge(&self) -> Option<i64> {
        self.edges.iter().copied().fold(None, earliest)
    }

    /// The first instant after the last refresh at which definition `index`'s value may change
    /// with time alone (see [`Self::next_edge`]).
    pub fn next_edge_of(&self, index: usize) -> Option<i64> {
        self.edges.get(index).copied().flatten()
    }

    /// Drops the kept events that cannot count at any time from `horizon` on (windowed events
    /// older than their window's far end). Call it with a time no later than any `now` to come.
    pub fn expire(&mut self, definitions: &Definitions, horizon: i64) {
        for (definition, state) in definitions.list().iter().zip(&mut self.definitions) {
            for (stream, stream_state) in definition.query().streams.iter().zip(&mut state.streams)
            {
                let (Some(window), StreamState::Entries(entries)) = (stream.window, stream_state)
                else {
                    continue;
                };
                entries.retain(|entry| entry.time.saturating_add(window.to) >= horizon);
            }
        }
    }

    /// How many events the state keeps (in streams that keep entries), for monitoring.
    pub fn kept_entries(&self) -> usize {
        self.definitions
            .iter()
            .flat_map(|d| &d.streams)
            .map(|s| match s {
                StreamState::Entries(entries) => entries.len(),
                StreamState::Folded(_) => 0,
            })
            .sum()
    }
}

/// A kept stream's value at `now` and the first instant after `now` at which the events that
/// count may change (an entry entering or leaving the window, a `where` date edge).
fn refold<T: ProfileTraits>(
    stream: &Stream,
    entries: &[Entry],
    outer: &DefinitionScope<'_, T>,
    now: i64,
) -> (Option<Value>, Option<i64>) {
    let settled = settled_conditions(stream);
    let props = if settled {
        stream.reducer.prop().cloned().into_iter().collect()
    } else {
        stream.props()
    };
    let has_value = stream.reducer.prop().is_some();
    let mut accumulator = Accumulator::new(&stream.reducer);
    let mut edge = None;
    for entry in entries {
        if let Some(window) = stream.window {
            // The entry counts while `time + from ≤ now ≤ time + to`.
            let enters = entry.time.saturating_add(window.from);
            let leaves = entry.time.saturating_add(window.to).saturating_add(1);
            let next = [enters, leaves].into_iter().filter(|&at| at > now).min();
            edge = earliest(edge, next);
            if !window.contains(now, entry.time) {
                continue;
            }
        }
        if !settled {
            let view = EntryView {
                entry,
                props: &props,
            };
            let scope = EventScope {
                outer,
                event: &view,
            };
            for condition in &stream.conditions {
                edge = earliest(edge, next_edge(condition, &scope, now));
            }
            if !stream.conditions.iter().all(|c| holds(c, &scope, now)) {
                continue;
            }
        }
        let value = if has_value {
            entry.values.first().and_then(Option::as_ref)
        } else {
            None
        };
        accumulator.add(entry.time, entry.seq, value);
    }
    (accumulator.finish(), edge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::DefinitionSpec;
    use crate::datetime::{DAY_MS, parse_rfc3339};
    use serde_json::json;

    fn definitions(list: &[(&str, &str, &str)]) -> Definitions {
        let specs: Vec<DefinitionSpec> = list
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
        compiled.definitions
    }

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn windows_report_their_edges_and_expire() {
        let definitions = definitions(&[(
            "recent",
            "audience",
            "event('A').within(1 day).count() >= 1",
        )]);
        let mut state = ProfileState::new(&definitions);
        let event = Event::from_json(
            &json!({"type": "track", "event": "A", "timestamp": "2026-03-01T00:00:00Z"}),
            0,
        );
        state.apply(&definitions, &event);
        let before = at("2026-02-28T00:00:00Z");
        state.refresh(&definitions, before);
        assert_eq!(state.values(), [Some(json!(false))]);
        // It enters when its time comes, and leaves one millisecond after a day has passed.
        assert_eq!(state.next_edge(), Some(at("2026-03-01T00:00:00Z")));
        let changes = state.refresh(&definitions, at("2026-03-01T00:00:00Z"));
        assert_eq!(changes[0].sent(), Some(&json!(true)));
        assert_eq!(state.next_edge(), Some(at("2026-03-02T00:00:00Z") + 1));
        let changes = state.refresh(&definitions, at("2026-03-02T00:00:00Z") + 1);
        assert_eq!(changes[0].sent(), Some(&json!(false)));
        assert_eq!(state.next_edge(), None);
        state.expire(&definitions, at("2026-03-02T00:00:00Z") + 1);
        assert_eq!(state.kept_entries(), 0);
    }

    #[test]
    fn expiry_keeps_what_still_counts_at_the_horizon() {
        let definitions = definitions(&[("day", "trait", "event('A').within(1 day).count()")]);
        let mut state = ProfileState::new(&definitions);
        let at_base = |seq| {
            Event::from_json(
                &json!({"type": "track", "event": "A", "timestamp": "2026-03-01T00:00:00Z"}),
                seq,
            )
        };
        state.apply(&definitions, &at_base(0));
        let horizon = at("2026-03-02T00:00:00Z");
        state.expire(&definitions, horizon);
        // A later event at the same instant makes the definition recompute over what is kept.
        state.apply(&definitions, &at_base(1));
        state.refresh(&definitions, horizon);
        assert_eq!(state.values(), [Some(json!(2))]);
        state.expire(&definitions, horizon + 1);
        assert_eq!(state.kept_entries(), 0);
    }

    #[test]
    fn unchanged_values_are_not_recomputed_or_reported() {
        let definitions = definitions(&[
            ("orders", "trait", "event('Order Completed').count()"),
            ("pro", "audience", "trait('plan') = 'pro'"),
        ]);
        let mut state = ProfileState::new(&definitions);
        let first = state.refresh(&definitions, 0);
        assert_eq!(first.len(), 2);
        let order = Event::from_json(&json!({"type": "track", "event": "Order Completed"}), 1);
        state.apply(&definitions, &order);
        let changes = state.refresh(&definitions, DAY_MS);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key, "orders");
        assert_eq!(changes[0].sent(), Some(&json!(1)));
        let identify = Event::from_json(&json!({"type": "identify", "traits": {"plan": "pro"}}), 2);
        state.apply(&definitions, &identify);
        let changes = state.refresh(&definitions, DAY_MS);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key, "pro");
    }

    #[test]
    fn state_round_trips_through_json() {
        let definitions = definitions(&[
            ("skus", "trait", "event('A').unique(property('sku'))"),
            (
                "recent",
                "trait",
                "event('A').within(7 days).sum(property('n'))",
            ),
        ]);
        let mut state = ProfileState::new(&definitions);
        for (seq, sku) in [json!("a"), json!(2), json!(true)].into_iter().enumerate() {
            let event = Event::from_json(
                &json!({"type": "track", "event": "A", "properties": {"sku": sku, "n": 1}}),
                seq as u64,
            );
            state.apply(&definitions, &event);
        }
        state.refresh(&definitions, 0);
        let events: Vec<Event> = [json!("a"), json!(2), json!(true)]
            .into_iter()
            .enumerate()
            .map(|(seq, sku)| {
                Event::from_json(
                    &json!({"type": "track", "event": "A", "properties": {"sku": sku, "n": 1}}),
                    seq as u64,
                )
            })
            .collect();
        let mut rebuilt = ProfileState::from_events(&definitions, &events);
        rebuilt.refresh(&definitions, 0);
        assert_eq!(rebuilt, state);
        assert_eq!(state.next_edge_of(1), Some(7 * DAY_MS + 1));
        let text = serde_json::to_string(&state).unwrap();
        let back: ProfileState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
        assert!(back.fits(&definitions));
        assert_eq!(back.values()[0], Some(json!([2, "a", true])));
    }
}

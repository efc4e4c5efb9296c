//! Where operands get their values: `trait('k')` (a definition's value, computed first, or the
//! profile's trait), streams' values, literals, and — inside `where` — the event's properties.
//! The from-scratch evaluator and the incremental state both evaluate through these scopes.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::ast::{Operand, Prop, Root};
use crate::check::Definitions;
use crate::compare::Scope;
use crate::profile::Event;
use crate::value::lookup;

/// A profile's traits, however they are stored.
pub(crate) trait ProfileTraits {
    /// The trait `key` (a top-level name, never a path).
    fn get_trait(&self, key: &str) -> Option<&Value>;
}

impl ProfileTraits for Map<String, Value> {
    fn get_trait(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

/// An event's properties, however they are stored.
pub(crate) trait EventView {
    /// The value of `property(…)`/`context(…)` on the event.
    fn prop(&self, prop: &Prop) -> Option<&Value>;
}

impl EventView for Event {
    fn prop(&self, prop: &Prop) -> Option<&Value> {
        let root = match prop.root {
            Root::Properties => &self.properties,
            Root::Context => &self.context,
        };
        lookup(root, &prop.path)
    }
}

/// The scope of one definition: its streams' values, the values of the definitions computed
/// before it, and the profile's traits.
pub(crate) struct DefinitionScope<'a, T: ProfileTraits> {
    pub(crate) definitions: &'a Definitions,
    pub(crate) values: &'a [Option<Value>],
    pub(crate) traits: &'a T,
    pub(crate) streams: &'a [Option<Value>],
}

impl<T: ProfileTraits> DefinitionScope<'_, T> {
    /// `trait('key')`: the definition's value when a definition has that key (absent when it has
    /// none: no fall back to the profile), else the profile's trait.
    pub(crate) fn trait_value(&self, key: &str) -> Option<&Value> {
        match self.definitions.index_of(key) {
            Some(index) => self.values.get(index)?.as_ref(),
            None => self.traits.get_trait(key),
        }
    }
}

impl<T: ProfileTraits> Scope for DefinitionScope<'_, T> {
    fn operand<'s>(&'s self, operand: &'s Operand) -> Option<Cow<'s, Value>> {
        match operand {
            Operand::Stream(index) => self.streams.get(*index)?.as_ref().map(Cow::Borrowed),
            Operand::Literal(value) => Some(Cow::Borrowed(value)),
            Operand::Trait(reference) => self.trait_value(&reference.key).map(Cow::Borrowed),
            // The parser allows properties inside `where` only.
            Operand::Prop(_) => None,
        }
    }
}

/// The scope of a `where` condition on one event: the event's properties, and `trait()` as
/// the definition sees it.
pub(crate) struct EventScope<'a, T: ProfileTraits, E: EventView> {
    pub(crate) outer: &'a DefinitionScope<'a, T>,
    pub(crate) event: &'a E,
}

impl<T: ProfileTraits, E: EventView> Scope for EventScope<'_, T, E> {
    fn operand<'s>(&'s self, operand: &'s Operand) -> Option<Cow<'s, Value>> {
        match operand {
            Operand::Prop(prop) => self.event.prop(prop).map(Cow::Borrowed),
            Operand::Stream(_) => None,
            other => self.outer.operand(other),
        }
    }
}

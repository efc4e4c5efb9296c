//! An in-memory engine: identity resolution, each profile's events and incremental state, for a
//! fixed set of definitions. It is what `junction audiences eval` and the property tests run,
//! and the shape of what the server does at ingest (with the profiles in its store): resolve
//! the event, merge the profiles it joins, apply the event to the profile's state, refresh.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::check::Definitions;
use crate::eval::evaluate;
use crate::identity::{Identifiers, Identities, Limits, ProfileId, Resolution, identifiers_of};
use crate::profile::{Event, Profile};
use crate::state::{Change, ProfileState};

/// Whether an event of this `type` takes part in identity resolution: `identify`, `track`,
/// `page` and `screen` do; `alias`, `group` and anything else are ignored for profiles.
pub fn takes_part(event: &Value) -> bool {
    matches!(
        event.get("type").and_then(Value::as_str),
        Some("identify" | "track" | "page" | "screen")
    )
}

/// Whether a stored event goes to the profiles: it [`takes_part`] and holds at least one
/// identifier that is not blocked.
pub fn feeds_profiles(event: &Value) -> bool {
    takes_part(event) && !identifiers_of(event).is_empty()
}

/// One profile: its events (for evaluation from scratch) and its incremental state.
#[derive(Debug, Clone)]
struct Stored {
    profile: Profile,
    state: ProfileState,
}

/// Profiles built from events in processing order, with every definition's value kept up to
/// date incrementally.
#[derive(Debug, Clone)]
pub struct Engine {
    definitions: Definitions,
    identities: Identities,
    profiles: BTreeMap<ProfileId, Stored>,
    next_seq: u64,
}

impl Engine {
    /// An engine with no profile yet.
    pub fn new(definitions: Definitions, limits: Limits) -> Engine {
        Engine {
            definitions,
            identities: Identities::new(limits),
            profiles: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The definitions evaluated.
    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    /// Takes in the next event in processing order: resolves it to a profile (creating or
    /// merging profiles) and applies it to that profile's state.
    pub fn ingest(&mut self, event: &Value) -> Resolution {
        let seq = self.next_seq;
        self.next_seq += 1;
        if !takes_part(event) {
            return Resolution::Ignored;
        }
        let resolution = self.identities.resolve(&identifiers_of(event));
        let profile = match &resolution {
            Resolution::Ignored => return resolution,
            Resolution::Created(profile) => {
                let stored = Stored {
                    profile: Profile::new(),
                    state: ProfileState::new(&self.definitions),
                };
                self.profiles.insert(*profile, stored);
                *profile
            }
            Resolution::Joined { profile, merged } => {
                for other in merged {
                    let Some(absorbed) = self.profiles.remove(other) else {
                        continue;
                    };
                    if let Some(target) = self.profiles.get_mut(profile) {
                        target.profile.absorb(absorbed.profile);
                        target.state.absorb(absorbed.state);
                    }
                }
                *profile
            }
        };
        let event = Event::from_json(event, seq);
        if let Some(stored) = self.profiles.get_mut(&profile) {
            stored.state.apply(&self.definitions, &event);
            stored.profile.push(event);
        }
        resolution
    }

    /// Recomputes every profile's values at `now` (only what may have changed) and returns the
    /// changes, profile by profile.
    pub fn refresh(&mut self, now: i64) -> Vec<(ProfileId, Change)> {
        let mut changes = Vec::new();
        for (id, stored) in &mut self.profiles {
            for change in stored.state.refresh(&self.definitions, now) {
                changes.push((*id, change));
            }
        }
        changes
    }

    /// Drops kept events that cannot count from `horizon` on (see [`ProfileState::expire`]).
    pub fn expire(&mut self, horizon: i64) {
        for stored in self.profiles.values_mut() {
            stored.state.expire(&self.definitions, horizon);
        }
    }

    /// The earliest time edge of any profile (see [`ProfileState::next_edge`]).
    pub fn next_edge(&self) -> Option<i64> {
        self.profiles
            .values()
            .filter_map(|stored| stored.state.next_edge())
            .min()
    }

    /// Every profile in creation order: its id, identifiers and values as of the last refresh.
    pub fn profiles(&self) -> impl Iterator<Item = (ProfileId, &Identifiers, &[Option<Value>])> {
        self.profiles.iter().filter_map(|(id, stored)| {
            let identifiers = self.identities.get(*id)?;
            Some((*id, identifiers, stored.state.values()))
        })
    }

    /// Every profile's values at `now` computed from scratch from its events, in creation order.
    pub fn evaluate_from_scratch(&self, now: i64) -> Vec<(ProfileId, Vec<Option<Value>>)> {
        self.profiles
            .iter()
            .map(|(id, stored)| (*id, evaluate(&self.definitions, &stored.profile, now)))
            .collect()
    }
}

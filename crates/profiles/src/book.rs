//! Every profile in memory: identity resolution over the events taken in, each profile's
//! incremental state, what was last sent to each connection, and which profiles changed since
//! the last checkpoint.

use std::collections::{BTreeMap, BTreeSet};

use junction_audience::{
    Definitions, Event, IdType, Identifiers, Identities, Limits, ProfileId, ProfileState,
    Resolution, identifiers_of, takes_part,
};
use junction_store::StoredProfile;
use serde_json::Value;

use crate::document::{ProfileDoc, RECENT_EVENTS};
use crate::error::ProfilesError;

/// Which profiles a [`Book::refresh`] recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Those that took in something since the last checkpoint.
    Changed,
    /// Those, and those whose next time edge has passed.
    ChangedOrDue,
    /// Every profile (after a backfill).
    All,
}

/// The profiles, and what changed since [`Book::take_changes`].
#[derive(Debug, Default)]
pub struct Book {
    identities: Identities,
    docs: BTreeMap<ProfileId, ProfileDoc>,
    dirty: BTreeSet<ProfileId>,
    /// Dirty profiles whose identifiers changed too (created, merged, one added).
    reindex: BTreeSet<ProfileId>,
    removed: BTreeSet<u64>,
}

/// What the next sync sends for a value, given what was sent before (`audiences.md` §4): a
/// value that appears or differs; not an audience's first `false`; nothing when it disappears.
pub fn to_send(value: Option<&Value>, sent: Option<&Value>) -> Option<Value> {
    let value = value?;
    match sent {
        Some(sent) if sent == value => None,
        None if *value == Value::Bool(false) => None,
        _ => Some(value.clone()),
    }
}

impl Book {
    /// No profile yet.
    pub fn new(limits: Limits) -> Book {
        Book {
            identities: Identities::new(limits),
            ..Book::default()
        }
    }

    /// Restores a profile read from the store.
    pub fn restore(&mut self, stored: &StoredProfile) -> Result<(), ProfilesError> {
        let (doc, identifiers) = decode(stored)?;
        let id = ProfileId(stored.id);
        self.identities.insert(id, identifiers);
        self.docs.insert(id, doc);
        Ok(())
    }

    /// How many profiles there are.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Every profile's id.
    pub fn ids(&self) -> impl Iterator<Item = ProfileId> + '_ {
        self.docs.keys().copied()
    }

    /// One profile's document.
    pub fn doc(&self, id: ProfileId) -> Option<&ProfileDoc> {
        self.docs.get(&id)
    }

    /// One profile's identifiers.
    pub fn identifiers(&self, id: ProfileId) -> Option<&Identifiers> {
        self.identities.get(id)
    }

    /// The profile holding an identifier.
    pub fn find(&self, id_type: IdType, value: &str) -> Option<ProfileId> {
        self.identities.find(id_type, value)
    }

    /// Forgets a profile (a person deleted): its identifiers, state and what was sent; the next
    /// [`Book::take_changes`] lists it as removed. Answers whether it existed.
    pub fn remove(&mut self, id: ProfileId) -> bool {
        self.identities.remove(id);
        self.dirty.remove(&id);
        let existed = self.docs.remove(&id).is_some();
        if existed {
            self.removed.insert(id.0);
        }
        existed
    }

    /// Takes in one stored event (id `event_id`, processing order): resolves it, merging and
    /// creating profiles, and applies it to its profile's state. Returns the profile, or `None`
    /// when the event does not take part in profiles.
    pub fn take_in(
        &mut self,
        definitions: &Definitions,
        event: Value,
        event_id: i64,
        now: i64,
    ) -> Option<ProfileId> {
        if !takes_part(&event) {
            return None;
        }
        let identifiers = identifiers_of(&event);
        // Known identifiers all on one profile leave its identifiers as they are; anything else
        // (a new one, a merge) rewrites them.
        let known = identifiers
            .iter()
            .all(|(id_type, value)| self.identities.find(id_type, value).is_some());
        let profile = match self.identities.resolve(&identifiers) {
            Resolution::Ignored => return None,
            Resolution::Created(profile) => {
                self.docs.insert(
                    profile,
                    ProfileDoc {
                        state: ProfileState::new(definitions),
                        values: BTreeMap::new(),
                        last_anonymous_id: None,
                        sent: BTreeMap::new(),
                        syncs: 0,
                        recent: Default::default(),
                        created_at: now,
                    },
                );
                profile
            }
            Resolution::Joined { profile, merged } => {
                if !merged.is_empty() {
                    self.reindex.insert(profile);
                }
                for other in merged {
                    self.absorb(profile, other);
                }
                profile
            }
        };
        if !known {
            self.reindex.insert(profile);
        }
        let doc = self.docs.get_mut(&profile)?;
        // Event ids increase in commit order: they are the processing sequence.
        let seq = u64::try_from(event_id).unwrap_or(0);
        if let Some(anonymous_id) = event.get("anonymousId").and_then(Value::as_str)
            && !anonymous_id.is_empty()
        {
            doc.last_anonymous_id = Some(anonymous_id.to_owned());
        }
        doc.state.apply(definitions, &Event::from_value(event, seq));
        if !doc.recent.contains(&event_id) {
            doc.recent.push_back(event_id);
        }
        while doc.recent.len() > RECENT_EVENTS {
            doc.recent.pop_front();
        }
        self.dirty.insert(profile);
        Some(profile)
    }

    /// Moves `other` into `profile` (a merge): states, recent events, what was sent (the
    /// surviving profile's record wins).
    fn absorb(&mut self, profile: ProfileId, other: ProfileId) {
        let Some(absorbed) = self.docs.remove(&other) else {
            return;
        };
        self.dirty.remove(&other);
        self.reindex.remove(&other);
        self.removed.insert(other.0);
        let Some(target) = self.docs.get_mut(&profile) else {
            return;
        };
        target.state.absorb(absorbed.state);
        for (connection, value) in absorbed.sent {
            target.sent.entry(connection).or_insert(value);
        }
        target.syncs = target.syncs.max(absorbed.syncs);
        let mut recent: Vec<i64> = target
            .recent
            .iter()
            .chain(&absorbed.recent)
            .copied()
            .collect();
        recent.sort_unstable();
        recent.dedup();
        let skip = recent.len().saturating_sub(RECENT_EVENTS);
        target.recent = recent.into_iter().skip(skip).collect();
        if target.last_anonymous_id.is_none() {
            target.last_anonymous_id = absorbed.last_anonymous_id;
        }
        target.created_at = target.created_at.min(absorbed.created_at);
        self.dirty.insert(profile);
    }

    /// Starts every profile's state again, empty, for `definitions` (before a backfill walks
    /// the stored events into them).
    pub fn reset_states(&mut self, definitions: &Definitions) {
        for (id, doc) in &mut self.docs {
            doc.state = ProfileState::new(definitions);
            self.dirty.insert(*id);
        }
    }

    /// Recomputes at `now` the profiles in `scope`; returns those whose values changed.
    pub fn refresh(&mut self, definitions: &Definitions, now: i64, scope: Scope) -> Vec<ProfileId> {
        let mut changed = Vec::new();
        let candidates: Vec<ProfileId> = match scope {
            Scope::All => self.docs.keys().copied().collect(),
            Scope::ChangedOrDue => self
                .docs
                .iter()
                .filter(|(id, doc)| {
                    self.dirty.contains(id) || doc.state.next_edge().is_some_and(|edge| edge <= now)
                })
                .map(|(id, _)| *id)
                .collect(),
            Scope::Changed => self.dirty.iter().copied().collect(),
        };
        for id in candidates {
            let Some(doc) = self.docs.get_mut(&id) else {
                continue;
            };
            if doc.state.refresh(definitions, now).is_empty() {
                continue;
            }
            doc.values = definitions
                .list()
                .iter()
                .zip(doc.state.values())
                .filter_map(|(definition, value)| {
                    Some((definition.key().to_owned(), value.clone()?))
                })
                .collect();
            self.dirty.insert(id);
            changed.push(id);
        }
        changed
    }

    /// What a sync of `key` over `connection` sends for `profile`, recorded as sent: the value
    /// and the profile's sync number. `None` when nothing is to be sent.
    pub fn sync(
        &mut self,
        profile: ProfileId,
        key: &str,
        connection: &str,
    ) -> Option<(Value, u64)> {
        let doc = self.docs.get_mut(&profile)?;
        let value = to_send(doc.values.get(key), doc.sent.get(connection))?;
        doc.sent.insert(connection.to_owned(), value.clone());
        doc.syncs += 1;
        self.dirty.insert(profile);
        Some((value, doc.syncs))
    }

    /// Forgets what was sent on connections that no longer exist (kept = the live ids).
    pub fn forget_connections(&mut self, live: &BTreeSet<&str>) {
        for (id, doc) in &mut self.docs {
            let before = doc.sent.len();
            doc.sent
                .retain(|connection, _| live.contains(connection.as_str()));
            if doc.sent.len() != before {
                self.dirty.insert(*id);
            }
        }
    }

    /// Per key: audience members (value `true`) or profiles with a value of a computed trait.
    pub fn sizes(&self, definitions: &Definitions) -> BTreeMap<String, u64> {
        let mut sizes: BTreeMap<String, u64> = definitions
            .list()
            .iter()
            .map(|definition| (definition.key().to_owned(), 0))
            .collect();
        for doc in self.docs.values() {
            for (key, value) in &doc.values {
                if *value == Value::Bool(false) {
                    continue;
                }
                if let Some(size) = sizes.get_mut(key) {
                    *size += 1;
                }
            }
        }
        sizes
    }

    /// The profiles changed and removed since the last call, as the store keeps them; clears
    /// both lists.
    pub fn take_changes(&mut self) -> Result<(Vec<StoredProfile>, Vec<u64>), ProfilesError> {
        let mut upserts = Vec::with_capacity(self.dirty.len());
        for id in std::mem::take(&mut self.dirty) {
            let (Some(doc), Some(identifiers)) = (self.docs.get(&id), self.identities.get(id))
            else {
                continue;
            };
            let document = serde_json::to_vec(doc)
                .map_err(|err| ProfilesError::Corrupt(format!("profile {}: {err}", id.0)))?;
            let identifiers = if self.reindex.contains(&id) {
                stored_identifiers(identifiers)
            } else {
                Vec::new()
            };
            upserts.push(StoredProfile {
                id: id.0,
                identifiers,
                document,
            });
        }
        self.reindex.clear();
        let removed = std::mem::take(&mut self.removed).into_iter().collect();
        Ok((upserts, removed))
    }
}

/// A stored profile's document and identifiers (the inverse of what a checkpoint writes).
pub(crate) fn decode(stored: &StoredProfile) -> Result<(ProfileDoc, Identifiers), ProfilesError> {
    let doc: ProfileDoc = serde_json::from_slice(&stored.document)
        .map_err(|err| ProfilesError::Corrupt(format!("profile {}: {err}", stored.id)))?;
    let mut identifiers = Identifiers::default();
    for (id_type, value) in &stored.identifiers {
        let Some(id_type) = IdType::parse(id_type) else {
            return Err(ProfilesError::Corrupt(format!(
                "profile {}: identifier type {id_type:?}",
                stored.id
            )));
        };
        identifiers.add(id_type, value);
    }
    Ok((doc, identifiers))
}

/// A profile's identifiers as the store indexes them: (type, value).
pub fn stored_identifiers(identifiers: &Identifiers) -> Vec<(String, String)> {
    IdType::ALL
        .iter()
        .flat_map(|id_type| {
            identifiers
                .of(*id_type)
                .iter()
                .map(|value| (id_type.as_str().to_owned(), value.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_appearing_or_different_values_are_sent() {
        assert_eq!(to_send(Some(&json!(true)), None), Some(json!(true)));
        assert_eq!(to_send(Some(&json!(false)), None), None, "never a member");
        assert_eq!(
            to_send(Some(&json!(false)), Some(&json!(true))),
            Some(json!(false))
        );
        assert_eq!(to_send(Some(&json!(true)), Some(&json!(true))), None);
        assert_eq!(to_send(None, Some(&json!(3))), None, "a value disappearing");
        assert_eq!(to_send(Some(&json!(4)), Some(&json!(3))), Some(json!(4)));
    }
}

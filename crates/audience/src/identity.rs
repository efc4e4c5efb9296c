//! Identity resolution (`audiences.md` §1): an event's identifiers (`user_id`, `email`,
//! `anonymous_id`, blocked values ignored), and the profiles they resolve to — created, joined,
//! or merged within the per-profile limits, dropping the event's lowest-priority identifier
//! when a merge would exceed one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The types of identifier, highest priority first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// `userId`.
    UserId,
    /// `traits.email` of an identify, else `context.traits.email`.
    Email,
    /// `anonymousId`.
    AnonymousId,
}

impl IdType {
    /// Every type, highest priority first.
    pub const ALL: [IdType; 3] = [IdType::UserId, IdType::Email, IdType::AnonymousId];

    /// Its name as stored and shown: `user_id`, `email`, `anonymous_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::UserId => "user_id",
            IdType::Email => "email",
            IdType::AnonymousId => "anonymous_id",
        }
    }

    /// The type with this name (see [`Self::as_str`]).
    pub fn parse(name: &str) -> Option<IdType> {
        IdType::ALL
            .into_iter()
            .find(|id_type| id_type.as_str() == name)
    }
}

/// How many identifiers of each type a profile may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// At most this many `user_id`s (default 1).
    pub user_id: usize,
    /// At most this many `email`s (default 5).
    pub email: usize,
    /// At most this many `anonymous_id`s (default 5).
    pub anonymous_id: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            user_id: 1,
            email: 5,
            anonymous_id: 5,
        }
    }
}

impl Limits {
    /// The limit for one type.
    pub fn of(&self, id_type: IdType) -> usize {
        match id_type {
            IdType::UserId => self.user_id,
            IdType::Email => self.email,
            IdType::AnonymousId => self.anonymous_id,
        }
    }
}

/// A profile's identifiers, per type in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifiers {
    /// `user_id`s.
    pub user_id: Vec<String>,
    /// `anonymous_id`s.
    pub anonymous_id: Vec<String>,
    /// `email`s.
    pub email: Vec<String>,
}

impl Identifiers {
    /// The identifiers of one type.
    pub fn of(&self, id_type: IdType) -> &[String] {
        match id_type {
            IdType::UserId => &self.user_id,
            IdType::Email => &self.email,
            IdType::AnonymousId => &self.anonymous_id,
        }
    }

    fn of_mut(&mut self, id_type: IdType) -> &mut Vec<String> {
        match id_type {
            IdType::UserId => &mut self.user_id,
            IdType::Email => &mut self.email,
            IdType::AnonymousId => &mut self.anonymous_id,
        }
    }

    /// Adds an identifier unless the profile already holds it.
    pub fn add(&mut self, id_type: IdType, value: &str) {
        let list = self.of_mut(id_type);
        if !list.iter().any(|v| v == value) {
            list.push(value.to_owned());
        }
    }
}

/// The identifiers of one event, at most one of each type, blocked values left out; highest
/// priority first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventIdentifiers(Vec<(IdType, String)>);

impl EventIdentifiers {
    /// The identifiers, highest priority first.
    pub fn iter(&self) -> impl Iterator<Item = (IdType, &str)> {
        self.0.iter().map(|(t, v)| (*t, v.as_str()))
    }

    /// Whether the event has none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The identifiers of an event (`audiences.md` §1): `userId`, `anonymousId`, and the email —
/// `traits.email` on an identify when it is a string or number, else `context.traits.email`.
/// Strings, or numbers as JavaScript `String(n)`; blocked values are left out (a blocked
/// `traits.email` does not fall back to `context.traits.email`).
pub fn identifiers_of(event: &Value) -> EventIdentifiers {
    let is_identify = event.get("type").and_then(Value::as_str) == Some("identify");
    let own_email = event
        .get("traits")
        .and_then(|traits| traits.get("email"))
        .filter(|email| is_identify && (email.is_string() || email.is_number()));
    let email = own_email.or_else(|| {
        event
            .get("context")
            .and_then(|context| context.get("traits"))
            .and_then(|traits| traits.get("email"))
    });
    let candidates = [
        (IdType::UserId, event.get("userId")),
        (IdType::Email, email),
        (IdType::AnonymousId, event.get("anonymousId")),
    ];
    EventIdentifiers(
        candidates
            .into_iter()
            .filter_map(|(id_type, value)| {
                let text = identifier_text(value?)?;
                (!is_blocked(&text)).then_some((id_type, text))
            })
            .collect(),
    )
}

/// A string as it is, a number as JavaScript `String(n)`; other types are no identifier.
fn identifier_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => {
            let mut text = String::new();
            junction_js::push_number(n, &mut text);
            Some(text)
        }
        _ => None,
    }
}

/// Whether a value is ignored as an identifier: empty, made only of `0` and `-`, or
/// (case-insensitively) `null`, `undefined`, `anonymous`, `unknown`, `-1`.
pub fn is_blocked(value: &str) -> bool {
    if value.chars().all(|c| c == '0' || c == '-') {
        return true;
    }
    let lower = value.to_lowercase();
    matches!(
        lower.as_str(),
        "null" | "undefined" | "anonymous" | "unknown" | "-1"
    )
}

/// A profile's id: profiles are numbered in creation order, so a smaller id is an older profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProfileId(pub u64);

/// What resolving an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The event has no usable identifier (or none that fits): it is ignored for profiles.
    Ignored,
    /// A new profile was created for it.
    Created(ProfileId),
    /// It joined an existing profile; `merged` are the profiles merged into that one (now gone),
    /// in creation order.
    Joined {
        /// The profile the event belongs to (the oldest of those merged).
        profile: ProfileId,
        /// The profiles merged into it, oldest first; empty when none was.
        merged: Vec<ProfileId>,
    },
}

/// Every profile's identifiers, and which profile holds each identifier.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Identities {
    limits: Limits,
    profiles: BTreeMap<ProfileId, Identifiers>,
    /// Per type (`IdType::ALL` order), identifier → the profile holding it.
    index: [HashMap<String, ProfileId>; 3],
    next: u64,
}

fn slot(id_type: IdType) -> usize {
    match id_type {
        IdType::UserId => 0,
        IdType::Email => 1,
        IdType::AnonymousId => 2,
    }
}

impl Identities {
    /// No profile yet, with these limits.
    pub fn new(limits: Limits) -> Identities {
        Identities {
            limits,
            ..Identities::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Every profile's identifiers, in creation order.
    pub fn profiles(&self) -> impl Iterator<Item = (ProfileId, &Identifiers)> {
        self.profiles.iter().map(|(id, ids)| (*id, ids))
    }

    /// One profile's identifiers.
    pub fn get(&self, profile: ProfileId) -> Option<&Identifiers> {
        self.profiles.get(&profile)
    }

    /// Restores a profile kept elsewhere (a store) with its identifiers; later profiles get
    /// larger ids than every restored one.
    pub fn insert(&mut self, profile: ProfileId, identifiers: Identifiers) {
        for id_type in IdType::ALL {
            for value in identifiers.of(id_type) {
                self.index_identifier(id_type, value, profile);
            }
        }
        self.profiles.insert(profile, identifiers);
        self.next = self.next.max(profile.0 + 1);
    }

    /// Forgets a profile and its identifiers (a person deleted); returns what it held.
    pub fn remove(&mut self, profile: ProfileId) -> Option<Identifiers> {
        let identifiers = self.profiles.remove(&profile)?;
        for id_type in IdType::ALL {
            for value in identifiers.of(id_type) {
                if let Some(index) = self.index.get_mut(slot(id_type)) {
                    index.remove(value);
                }
            }
        }
        Some(identifiers)
    }

    /// The profile holding an identifier.
    pub fn find(&self, id_type: IdType, value: &str) -> Option<ProfileId> {
        self.index.get(slot(id_type))?.get(value).copied()
    }

    /// Resolves an event's identifiers to a profile (`audiences.md` §1, steps 1–5), creating or
    /// merging profiles as needed.
    pub fn resolve(&mut self, identifiers: &EventIdentifiers) -> Resolution {
        let mut ids: Vec<(IdType, &str)> = identifiers.iter().collect();
        loop {
            if ids.is_empty() {
                return Resolution::Ignored;
            }
            let holders: BTreeSet<ProfileId> = ids
                .iter()
                .filter_map(|&(id_type, value)| self.find(id_type, value))
                .collect();
            if holders.is_empty() {
                return Resolution::Created(self.create(&ids));
            }
            if self.fits(&holders, &ids) {
                return self.merge(&holders, &ids);
            }
            // Drop the event's lowest-priority identifier and try again.
            ids.pop();
        }
    }

    fn create(&mut self, ids: &[(IdType, &str)]) -> ProfileId {
        let profile = ProfileId(self.next);
        self.next += 1;
        let mut identifiers = Identifiers::default();
        for &(id_type, value) in ids {
            identifiers.add(id_type, value);
            self.index_identifier(id_type, value, profile);
        }
        self.profiles.insert(profile, identifiers);
        profile
    }

    fn index_identifier(&mut self, id_type: IdType, value: &str, profile: ProfileId) {
        if let Some(index) = self.index.get_mut(slot(id_type)) {
            index.insert(value.to_owned(), profile);
        }
    }

    /// Whether the union of the holders' identifiers and the event's exceeds no limit.
    fn fits(&self, holders: &BTreeSet<ProfileId>, ids: &[(IdType, &str)]) -> bool {
        IdType::ALL.iter().all(|&id_type| {
            let mut union: BTreeSet<&str> = holders
                .iter()
                .filter_map(|holder| self.profiles.get(holder))
                .flat_map(|identifiers| identifiers.of(id_type).iter().map(String::as_str))
                .collect();
            union.extend(ids.iter().filter(|(t, _)| *t == id_type).map(|(_, v)| *v));
            union.len() <= self.limits.of(id_type)
        })
    }

    /// Merges the holders into the oldest and adds the event's new identifiers (step 5: per
    /// type, the oldest's, then each other's in creation order, then the event's).
    fn merge(&mut self, holders: &BTreeSet<ProfileId>, ids: &[(IdType, &str)]) -> Resolution {
        let mut holders = holders.iter().copied();
        let Some(oldest) = holders.next() else {
            return Resolution::Ignored;
        };
        let merged: Vec<ProfileId> = holders.collect();
        let mut identifiers = self.profiles.remove(&oldest).unwrap_or_default();
        for other in &merged {
            let Some(theirs) = self.profiles.remove(other) else {
                continue;
            };
            for id_type in IdType::ALL {
                for value in theirs.of(id_type) {
                    identifiers.add(id_type, value);
                    self.index_identifier(id_type, value, oldest);
                }
            }
        }
        for &(id_type, value) in ids {
            identifiers.add(id_type, value);
            self.index_identifier(id_type, value, oldest);
        }
        self.profiles.insert(oldest, identifiers);
        Resolution::Joined {
            profile: oldest,
            merged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(event: Value) -> EventIdentifiers {
        identifiers_of(&event)
    }

    #[test]
    fn identifiers_come_from_user_anonymous_and_email() {
        let found: Vec<_> = ids(json!({
            "type": "identify", "userId": 42, "anonymousId": 1e-7,
            "traits": {"email": "a@x.io"}, "context": {"traits": {"email": "b@x.io"}}
        }))
        .iter()
        .map(|(t, v)| (t, v.to_owned()))
        .collect();
        assert_eq!(
            found,
            [
                (IdType::UserId, "42".to_owned()),
                (IdType::Email, "a@x.io".to_owned()),
                (IdType::AnonymousId, "1e-7".to_owned())
            ]
        );
        // A track's own `traits.email` is not an identifier; its context's is.
        let track = ids(json!({"type": "track", "traits": {"email": "t@x.io"},
                               "context": {"traits": {"email": "c@x.io"}}}));
        assert_eq!(
            track.iter().collect::<Vec<_>>(),
            [(IdType::Email, "c@x.io")]
        );
        // A blocked email does not fall back; a null one does.
        let blocked = ids(json!({"type": "identify", "traits": {"email": "--"},
                                 "context": {"traits": {"email": "c@x.io"}}}));
        assert!(blocked.is_empty());
        let null = ids(json!({"type": "identify", "traits": {"email": null},
                              "context": {"traits": {"email": "c@x.io"}}}));
        assert_eq!(null.iter().count(), 1);
    }

    #[test]
    fn blocked_values() {
        for value in [
            "",
            "0",
            "--",
            "0-0",
            "null",
            "NULL",
            "Undefined",
            "anonymous",
            "UNKNOWN",
            "-1",
        ] {
            assert!(is_blocked(value), "{value:?}");
        }
        for value in [" null", "nulls", "1", "-2", "anon"] {
            assert!(!is_blocked(value), "{value:?}");
        }
    }

    #[test]
    fn merges_keep_the_oldest_and_order_identifiers() {
        let mut identities = Identities::new(Limits::default());
        let a = identities.resolve(&ids(json!({"anonymousId": "a1"})));
        let b = identities.resolve(&ids(
            json!({"anonymousId": "a2", "context": {"traits": {"email": "e@x.io"}}}),
        ));
        assert_eq!(a, Resolution::Created(ProfileId(0)));
        assert_eq!(b, Resolution::Created(ProfileId(1)));
        let joined = identities.resolve(&ids(json!({"userId": "u", "anonymousId": "a2",
            "context": {"traits": {"email": "e@x.io"}}})));
        assert_eq!(
            joined,
            Resolution::Joined {
                profile: ProfileId(1),
                merged: vec![]
            }
        );
        let merged = identities.resolve(&ids(json!({"anonymousId": "a1", "userId": "u"})));
        assert_eq!(
            merged,
            Resolution::Joined {
                profile: ProfileId(0),
                merged: vec![ProfileId(1)]
            }
        );
        let profile = identities.get(ProfileId(0)).unwrap();
        assert_eq!(profile.anonymous_id, ["a1", "a2"]);
        assert_eq!(profile.user_id, ["u"]);
        assert_eq!(profile.email, ["e@x.io"]);
        assert_eq!(identities.profiles().count(), 1);
    }

    #[test]
    fn a_second_user_id_is_dropped_by_priority() {
        let mut identities = Identities::new(Limits::default());
        identities.resolve(&ids(json!({"userId": "u1", "anonymousId": "a1"})));
        // u2 with a1 would put two user ids in one profile: a1 is dropped, u2 gets its own.
        let second = identities.resolve(&ids(json!({"userId": "u2", "anonymousId": "a1"})));
        assert_eq!(second, Resolution::Created(ProfileId(1)));
        assert_eq!(
            identities.get(ProfileId(1)).unwrap().anonymous_id,
            Vec::<String>::new()
        );
    }
}

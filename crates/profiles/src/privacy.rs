//! Deleting and suppressing a person (`privacy.md`): regulation types, their audit records
//! (identifiers only as keyed hashes), the suppression list the Tracking API checks, and how the
//! profile worker carries a regulation out — resolve the identifiers to the whole profile,
//! change the suppression list, delete the profile's stored events and the profile.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hmac::{Hmac, Mac};
use junction_audience::{IdType, ProfileId, identifiers_of};
use junction_store::{
    EventId, NewRegulation, ProfileCheckpoint, RegulationStatus, RegulationUpdate, Store,
    StoredRegulation,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::book::Book;
use crate::error::ProfilesError;

/// The most identifiers one regulation may name (Segment's limit per call).
pub const MAX_IDENTIFIERS: usize = 5_000;

/// What the answer says about destinations, since nothing is forwarded.
pub const NOT_FORWARDED: &str = "ChartMogul's webhook has no deletion call: nothing was \
                                 forwarded to any destination; delete the person there too";

/// Stored events read per page while looking for a profile's events.
const SCAN_PAGE: usize = 10_000;

/// Events deleted per transaction, so that ingestion is not held up for long.
const DELETE_CHUNK: usize = 1_000;

/// A regulation's type (Segment's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegulationType {
    /// Drop new data of the identifiers.
    Suppress,
    /// Stop an ongoing suppression.
    Unsuppress,
    /// Suppress, and delete existing data.
    SuppressWithDelete,
    /// Delete existing data, keep receiving.
    DeleteOnly,
    /// Delete from Junction only (nothing is ever forwarded anyway).
    DeleteInternal,
}

impl RegulationType {
    /// Every type.
    pub const ALL: [RegulationType; 5] = [
        RegulationType::Suppress,
        RegulationType::Unsuppress,
        RegulationType::SuppressWithDelete,
        RegulationType::DeleteOnly,
        RegulationType::DeleteInternal,
    ];

    /// Its name: `SUPPRESS`, `DELETE_ONLY`, …
    pub fn as_str(self) -> &'static str {
        match self {
            RegulationType::Suppress => "SUPPRESS",
            RegulationType::Unsuppress => "UNSUPPRESS",
            RegulationType::SuppressWithDelete => "SUPPRESS_WITH_DELETE",
            RegulationType::DeleteOnly => "DELETE_ONLY",
            RegulationType::DeleteInternal => "DELETE_INTERNAL",
        }
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Option<RegulationType> {
        RegulationType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether it deletes existing data.
    pub fn deletes(self) -> bool {
        matches!(
            self,
            RegulationType::SuppressWithDelete
                | RegulationType::DeleteOnly
                | RegulationType::DeleteInternal
        )
    }

    /// Whether it adds to the suppression list.
    pub fn suppresses(self) -> bool {
        matches!(
            self,
            RegulationType::Suppress | RegulationType::SuppressWithDelete
        )
    }
}

/// An identifier as the audit record keeps it: its type and keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HashedIdentifier {
    /// `user_id`, `email` or `anonymous_id`.
    #[serde(rename = "type")]
    pub id_type: String,
    /// HMAC-SHA256 of the type and value under the store's secret, in hex.
    pub hash: String,
}

/// The audit record of a regulation, as stored and shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegulationRecord {
    /// The identifiers named, hashed.
    pub identifiers: Vec<HashedIdentifier>,
    /// Every identifier covered: the named ones and those of their resolved profiles, hashed.
    #[serde(default)]
    pub covered_identifiers: Vec<HashedIdentifier>,
    /// Profiles deleted.
    #[serde(default)]
    pub profiles_deleted: u64,
    /// Stored events deleted.
    #[serde(default)]
    pub events_deleted: u64,
    /// Their jobs deleted.
    #[serde(default)]
    pub jobs_deleted: u64,
    /// Of those, jobs not yet delivered: cancelled.
    #[serde(default)]
    pub jobs_cancelled: u64,
    /// Hashes added to the suppression list.
    #[serde(default)]
    pub suppressed: u64,
    /// Hashes removed from the suppression list.
    #[serde(default)]
    pub unsuppressed: u64,
    /// Whether anything was forwarded to a destination (never: see [`NOT_FORWARDED`]).
    #[serde(default)]
    pub forwarded: bool,
    /// What happened at the destinations.
    #[serde(default)]
    pub note: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An identifier as asked for; kept in the store only until the regulation is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedIdentifier {
    /// `user_id`, `email` or `anonymous_id`.
    #[serde(rename = "type")]
    pub id_type: IdType,
    /// The value.
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    identifiers: Vec<RequestedIdentifier>,
}

/// The suppression list in memory: keyed hashes, checked for every tracked event, and the key.
pub struct Suppressions {
    mac: Hmac<Sha256>,
    hashes: ArcSwap<HashSet<String>>,
}

impl std::fmt::Debug for Suppressions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Suppressions")
            .field("hashes", &self.hashes.load().len())
            .finish_non_exhaustive()
    }
}

impl Suppressions {
    /// The store's list, keyed by its secret (created now if the store has none).
    pub async fn load(store: &dyn Store) -> Result<Suppressions, ProfilesError> {
        let mut candidate = vec![0u8; 32];
        getrandom::getrandom(&mut candidate)
            .map_err(|err| ProfilesError::Secret(err.to_string()))?;
        let secret = store.privacy_secret(candidate).await?;
        let mac = Hmac::<Sha256>::new_from_slice(&secret)
            .map_err(|err| ProfilesError::Secret(err.to_string()))?;
        let suppressions = Suppressions {
            mac,
            hashes: ArcSwap::default(),
        };
        suppressions.reload(store).await?;
        Ok(suppressions)
    }

    /// The keyed hash of an identifier.
    pub fn hash(&self, id_type: IdType, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(id_type.as_str().as_bytes());
        // A separator no type name contains, so (type, value) pairs cannot collide.
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Whether an event carries a suppressed identifier. Free while nothing is suppressed.
    pub fn covers(&self, event: &Value) -> bool {
        let hashes = self.hashes.load();
        !hashes.is_empty() && self.carries(event, &hashes)
    }

    /// Whether an event carries an identifier whose hash is in `hashes`.
    pub fn carries(&self, event: &Value, hashes: &HashSet<String>) -> bool {
        identifiers_of(event)
            .iter()
            .any(|(id_type, value)| hashes.contains(&self.hash(id_type, value)))
    }

    /// Reads the list from the store again.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), ProfilesError> {
        let list = store.suppressions().await?;
        self.hashes
            .store(Arc::new(list.into_iter().map(|s| s.hash).collect()));
        Ok(())
    }

    fn hashed(&self, identifiers: &BTreeSet<(IdType, String)>) -> Vec<HashedIdentifier> {
        identifiers
            .iter()
            .map(|(id_type, value)| HashedIdentifier {
                id_type: id_type.as_str().to_owned(),
                hash: self.hash(*id_type, value),
            })
            .collect()
    }
}

/// A new regulation of `kind` for `identifiers`, ready for `Store::create_regulation`.
pub fn new_regulation(
    suppressions: &Suppressions,
    kind: RegulationType,
    identifiers: Vec<RequestedIdentifier>,
    now: i64,
) -> Result<NewRegulation, ProfilesError> {
    let named: BTreeSet<(IdType, String)> = identifiers
        .iter()
        .map(|id| (id.id_type, id.value.clone()))
        .collect();
    let record = RegulationRecord {
        identifiers: suppressions.hashed(&named),
        note: NOT_FORWARDED.to_owned(),
        ..RegulationRecord::default()
    };
    Ok(NewRegulation {
        kind: kind.as_str().to_owned(),
        created_at: now,
        record: to_json(&record)?,
        request: to_json(&Request { identifiers })?,
    })
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, ProfilesError> {
    serde_json::to_value(value)
        .map_err(|err| ProfilesError::Corrupt(format!("regulation document: {err}")))
}

/// What carrying out regulations needs of the worker.
pub(crate) struct Regulating<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) suppressions: &'a Suppressions,
    pub(crate) owner: &'a str,
    /// The worker document last saved: a checkpoint written between steps carries it unchanged.
    pub(crate) saved_doc: &'a [u8],
    pub(crate) now: i64,
}

/// Carries out one regulation. A store failure is returned (the regulation stays pending and
/// is taken up again); a regulation that cannot be carried out is marked failed with why.
pub(crate) async fn carry_out(
    ctx: &Regulating<'_>,
    book: &mut Book,
    regulation: StoredRegulation,
) -> Result<(), ProfilesError> {
    let mut record: RegulationRecord =
        serde_json::from_value(regulation.record).unwrap_or_else(|_| RegulationRecord {
            note: NOT_FORWARDED.to_owned(),
            ..RegulationRecord::default()
        });
    let kind = RegulationType::parse(&regulation.kind);
    let request = regulation
        .request
        .and_then(|request| serde_json::from_value::<Request>(request).ok());
    let (Some(kind), Some(request)) = (kind, request) else {
        record.reason = Some(format!(
            "the regulation's type ({}) or its stored identifiers could not be read",
            regulation.kind
        ));
        return finish(ctx, regulation.id, RegulationStatus::Failed, &record).await;
    };

    // The whole resolved profile of each identifier named.
    let mut covered: BTreeSet<(IdType, String)> = request
        .identifiers
        .iter()
        .map(|id| (id.id_type, id.value.clone()))
        .collect();
    let profiles: BTreeSet<ProfileId> = covered
        .iter()
        .filter_map(|(id_type, value)| book.find(*id_type, value))
        .collect();
    for profile in &profiles {
        if let Some(identifiers) = book.identifiers(*profile) {
            for id_type in IdType::ALL {
                for value in identifiers.of(id_type) {
                    covered.insert((id_type, value.clone()));
                }
            }
        }
    }
    // A regulation redone after a crash may no longer find its profile (already removed): it
    // keeps what the first run covered.
    let mut covered_identifiers = std::mem::take(&mut record.covered_identifiers);
    covered_identifiers.extend(ctx.suppressions.hashed(&covered));
    covered_identifiers.sort();
    covered_identifiers.dedup();
    record.covered_identifiers = covered_identifiers;
    let hashes: HashSet<String> = record
        .covered_identifiers
        .iter()
        .map(|id| id.hash.clone())
        .collect();

    // The suppression list changes first, so that a suppressed person's new events stop
    // arriving before the old ones are deleted.
    let (suppress, unsuppress) = if kind.suppresses() {
        (hashes.iter().cloned().collect(), Vec::new())
    } else if kind == RegulationType::Unsuppress {
        // Lifts every hash a suppression added together with one of these (a deleted
        // profile's other identifiers are no longer resolvable).
        let list = ctx.store.suppressions().await?;
        let by: BTreeSet<i64> = list
            .iter()
            .filter(|s| hashes.contains(&s.hash))
            .map(|s| s.regulation_id)
            .collect();
        let lifted: Vec<String> = list
            .into_iter()
            .filter(|s| by.contains(&s.regulation_id))
            .map(|s| s.hash)
            .collect();
        (Vec::new(), lifted)
    } else {
        (Vec::new(), Vec::new())
    };
    record.suppressed = u64::try_from(suppress.len()).unwrap_or(u64::MAX);
    record.unsuppressed = u64::try_from(unsuppress.len()).unwrap_or(u64::MAX);
    ctx.store
        .update_regulation(RegulationUpdate {
            id: regulation.id,
            status: RegulationStatus::Running,
            finished_at: None,
            record: to_json(&record)?,
            suppress,
            unsuppress,
        })
        .await?;
    ctx.suppressions.reload(ctx.store).await?;

    if kind.deletes() {
        let doomed = events_of(ctx.store, &covered).await?;
        for chunk in doomed.chunks(DELETE_CHUNK) {
            let deleted = ctx.store.delete_events(chunk.to_vec()).await?;
            record.events_deleted += deleted.events;
            record.jobs_deleted += deleted.jobs;
            record.jobs_cancelled += deleted.jobs_cancelled;
            // The counts so far, so that a run redone after a crash adds to them.
            progress(ctx, regulation.id, &record).await?;
        }
        // Forgotten without a sync: what each connection was sent goes with the profile, and
        // no `false` is sent for it.
        for profile in &profiles {
            if book.remove(*profile) {
                record.profiles_deleted += 1;
            }
        }
        let (upserts, removed) = book.take_changes()?;
        ctx.store
            .save_profiles(ProfileCheckpoint {
                owner: ctx.owner.to_owned(),
                consumed: Vec::new(),
                upserts,
                removed,
                worker: ctx.saved_doc.to_vec(),
            })
            .await?;
    }
    tracing::info!(
        regulation = regulation.id,
        kind = kind.as_str(),
        profiles = record.profiles_deleted,
        events = record.events_deleted,
        "regulation carried out"
    );
    finish(ctx, regulation.id, RegulationStatus::Finished, &record).await
}

/// The ids of every stored event carrying one of `covered`: a walk over the stored events (a
/// profile keeps only its latest event ids).
async fn events_of(
    store: &dyn Store,
    covered: &BTreeSet<(IdType, String)>,
) -> Result<Vec<EventId>, ProfilesError> {
    let mut doomed = Vec::new();
    let mut after = EventId(0);
    loop {
        let page = store.stored_events(after, SCAN_PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(doomed);
        };
        after = last.id;
        for event in &page {
            let Ok(value) = serde_json::from_slice::<Value>(&event.payload) else {
                continue;
            };
            if identifiers_of(&value)
                .iter()
                .any(|(id_type, id)| covered.contains(&(id_type, id.to_owned())))
            {
                doomed.push(event.id);
            }
        }
    }
}

async fn progress(
    ctx: &Regulating<'_>,
    id: i64,
    record: &RegulationRecord,
) -> Result<(), ProfilesError> {
    ctx.store
        .update_regulation(RegulationUpdate {
            id,
            status: RegulationStatus::Running,
            finished_at: None,
            record: to_json(record)?,
            suppress: Vec::new(),
            unsuppress: Vec::new(),
        })
        .await?;
    Ok(())
}

async fn finish(
    ctx: &Regulating<'_>,
    id: i64,
    status: RegulationStatus,
    record: &RegulationRecord,
) -> Result<(), ProfilesError> {
    ctx.store
        .update_regulation(RegulationUpdate {
            id,
            status,
            finished_at: Some(ctx.now),
            record: to_json(record)?,
            suppress: Vec::new(),
            unsuppress: Vec::new(),
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use junction_store::RegulationStatus;
    use junction_store_sqlite::{SqliteOptions, SqliteStore};
    use serde_json::json;

    use super::*;

    async fn store(dir: &std::path::Path) -> SqliteStore {
        SqliteStore::open(dir.join("junction.db"), SqliteOptions::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn hashes_are_keyed_per_store_and_typed() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (one, two) = (store(one.path()).await, store(two.path()).await);
        let a = Suppressions::load(&one).await.unwrap();
        let again = Suppressions::load(&one).await.unwrap();
        let other = Suppressions::load(&two).await.unwrap();
        let hash = a.hash(IdType::UserId, "u1");
        assert_eq!(hash.len(), 64);
        assert_eq!(
            again.hash(IdType::UserId, "u1"),
            hash,
            "one secret per store"
        );
        assert_ne!(
            other.hash(IdType::UserId, "u1"),
            hash,
            "another store, another key"
        );
        assert_ne!(
            a.hash(IdType::AnonymousId, "u1"),
            hash,
            "the type is hashed too"
        );
    }

    #[tokio::test]
    async fn an_event_is_covered_by_any_of_its_identifiers() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let suppressions = Suppressions::load(&store).await.unwrap();
        let event = json!({"type": "track", "userId": "u1", "anonymousId": "a1"});
        assert!(!suppressions.covers(&event), "nothing suppressed yet");
        let new = new_regulation(&suppressions, RegulationType::Suppress, Vec::new(), 0).unwrap();
        let regulation = store.create_regulation(new).await.unwrap();
        store
            .update_regulation(RegulationUpdate {
                id: regulation.id,
                status: RegulationStatus::Finished,
                finished_at: Some(1),
                record: regulation.record,
                suppress: vec![suppressions.hash(IdType::AnonymousId, "a1")],
                unsuppress: Vec::new(),
            })
            .await
            .unwrap();
        suppressions.reload(&store).await.unwrap();
        assert!(suppressions.covers(&event));
        assert!(!suppressions.covers(&json!({"type": "track", "userId": "a1"})));
    }

    #[test]
    fn types_round_trip_and_say_what_they_do() {
        for kind in RegulationType::ALL {
            assert_eq!(RegulationType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RegulationType::parse("delete_only"), None);
        let deleting: Vec<&str> = RegulationType::ALL
            .iter()
            .filter(|t| t.deletes())
            .map(|t| t.as_str())
            .collect();
        assert_eq!(
            deleting,
            ["SUPPRESS_WITH_DELETE", "DELETE_ONLY", "DELETE_INTERNAL"]
        );
        assert!(RegulationType::Suppress.suppresses() && !RegulationType::DeleteOnly.suppresses());
    }
}

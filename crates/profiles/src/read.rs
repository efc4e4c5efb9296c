//! What the admin API reads: a profile by any identifier, the worker's status (sizes, their
//! history, connections), and a preview of a definition before it is saved.

use std::collections::BTreeMap;

use junction_audience::{Definitions, Engine, IdType, Identifiers, Limits};
use junction_store::{EventId, Store};
use junction_workspace::{AudienceConfig, Snapshot, definition_specs};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::book::decode;
use crate::document::WorkerDoc;
use crate::error::ProfilesError;
use crate::sync::PERSONAS_SOURCE;

/// A profile as shown: identities, traits, computed values and recent events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileView {
    /// Its id.
    pub id: u64,
    /// Its identifiers by type.
    pub identifiers: Identifiers,
    /// Its traits (every `identify`'s, merged).
    pub traits: Map<String, Value>,
    /// Every audience's and computed trait's value, by key.
    pub values: BTreeMap<String, Value>,
    /// When it was created (ms).
    pub created_at: i64,
    /// Its latest stored events, newest first (as stored: normalised).
    pub recent_events: Vec<Value>,
}

/// The profile holding the identifier `id_type` = `value`, if any.
pub async fn find_profile(
    store: &dyn Store,
    id_type: IdType,
    value: &str,
) -> Result<Option<ProfileView>, ProfilesError> {
    let Some(stored) = store.find_profile(id_type.as_str(), value).await? else {
        return Ok(None);
    };
    let (doc, identifiers) = decode(&stored)?;
    let mut recent_events = Vec::with_capacity(doc.recent.len());
    for id in doc.recent.iter().rev() {
        let Some(record) = store.event(EventId(*id)).await? else {
            continue;
        };
        if let Ok(event) = serde_json::from_slice(&record.payload) {
            recent_events.push(event);
        }
    }
    Ok(Some(ProfileView {
        id: stored.id,
        identifiers,
        traits: doc.state.traits(),
        values: doc.values,
        created_at: doc.created_at,
        recent_events,
    }))
}

/// The worker's document: sizes, their history, connections, backfill progress. `None` until
/// the worker first wrote it.
pub async fn worker_status(store: &dyn Store) -> Result<Option<WorkerDoc>, ProfilesError> {
    let Some(bytes) = store.profile_worker().await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| ProfilesError::Corrupt(format!("worker document: {err}")))
}

/// What a definition would hold if it were saved now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// Audience members, or profiles with a value of the computed trait.
    pub size: u64,
    /// Profiles in all.
    pub profiles: u64,
    /// Stored events walked.
    pub events: u64,
    /// Some members: identifiers and value.
    pub sample: Vec<PreviewMember>,
}

/// One member in a [`Preview`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewMember {
    /// Its identifiers.
    pub identifiers: Identifiers,
    /// Its value.
    pub value: Value,
}

/// Computes `candidate` (with the workspace's other definitions, which it may read) over every
/// stored event at `now`, from scratch, without saving anything. Refused definitions are
/// [`ProfilesError::Invalid`] with the language's message.
pub async fn preview(
    store: &dyn Store,
    snapshot: &Snapshot,
    candidate: &AudienceConfig,
    now: i64,
    sample: usize,
) -> Result<Preview, ProfilesError> {
    let mut audiences: Vec<AudienceConfig> = snapshot
        .config()
        .audiences
        .iter()
        .filter(|audience| audience.key != candidate.key)
        .cloned()
        .collect();
    audiences.push(candidate.clone());
    let compiled = Definitions::compile(&definition_specs(&audiences));
    if let Some(refusal) = compiled.refused.iter().find(|r| r.key == candidate.key) {
        return Err(ProfilesError::Invalid(refusal.error.to_string()));
    }
    let mut engine = Engine::new(compiled.definitions, Limits::default());
    let mut after = EventId(0);
    let mut events = 0;
    loop {
        let page = store.stored_events(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for event in &page {
            if event.source_id == PERSONAS_SOURCE {
                continue;
            }
            if let Ok(value) = serde_json::from_slice::<Value>(&event.payload) {
                engine.ingest(&value);
                events += 1;
            }
        }
    }
    engine.refresh(now);
    let index = engine.definitions().index_of(&candidate.key);
    let mut preview = Preview {
        size: 0,
        profiles: 0,
        events,
        sample: Vec::new(),
    };
    for (_, identifiers, values) in engine.profiles() {
        preview.profiles += 1;
        let Some(value) = index.and_then(|i| values.get(i)).and_then(Option::as_ref) else {
            continue;
        };
        if *value == Value::Bool(false) {
            continue;
        }
        preview.size += 1;
        if preview.sample.len() < sample {
            preview.sample.push(PreviewMember {
                identifiers: identifiers.clone(),
                value: value.clone(),
            });
        }
    }
    Ok(preview)
}

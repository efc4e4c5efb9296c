//! What the store keeps for profiles (audiences and computed traits): the inbox of stored events
//! the profile worker has not taken in yet, each profile as an opaque document with the
//! identifiers that find it, and the worker's own document. The worker (`junction-profiles`)
//! owns the meaning of the documents; the store only keeps them, atomically with the inbox.

use crate::model::{EventId, UnixMillis};

/// A stored event as the profile worker reads it: from the inbox, or walking every stored event
/// for a backfill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event's id.
    pub id: EventId,
    /// The source it was sent to.
    pub source_id: String,
    /// When it was received.
    pub received_at: UnixMillis,
    /// The normalised event, byte for byte as committed.
    pub payload: Vec<u8>,
}

/// One profile as stored: its id, the identifiers that find it, and its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredProfile {
    /// The profile's id (the worker's; never reused).
    pub id: u64,
    /// Each identifier it holds, as (type, value), e.g. `("user_id", "u1")`.
    pub identifiers: Vec<(String, String)>,
    /// The worker's document for it (JSON).
    pub document: Vec<u8>,
}

/// One step of the profile worker, written in one transaction: the inbox entries it took in, the
/// profiles that changed or went (merged into another, or deleted), and its own document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileCheckpoint {
    /// The worker writing it: the write fails with [`crate::StoreError::NotFound`] when another
    /// worker has taken the lead (see [`crate::Store::lead_profiles`]).
    pub owner: String,
    /// Inbox entries taken in: removed from the inbox.
    pub consumed: Vec<EventId>,
    /// Profiles created or changed: their documents replaced, and their identifiers too unless
    /// `identifiers` is empty (a profile always holds one, so empty means "unchanged": most
    /// events change a profile's state, few its identifiers).
    pub upserts: Vec<StoredProfile>,
    /// Profiles that no longer exist.
    pub removed: Vec<u64>,
    /// The worker's document (JSON), replaced whole.
    pub worker: Vec<u8>,
}

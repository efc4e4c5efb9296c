//! Profiles in the server (`audiences.md`): the worker that resolves identities and keeps every
//! audience's and computed trait's value up to date as events are stored and time passes, keeps
//! it all in the store, and syncs the changes to the connected destinations as `identify`
//! calls routed through their mappings; and the reads the admin API serves.
//!
//! * `book`: every profile in memory (identities, incremental states, what was sent);
//! * `document`: the JSON documents the store keeps for them and for the worker;
//! * `sync`: the `identify` a sync sends, routed and ready to commit;
//! * `worker`: the loop — inbox or backfill, refresh, syncs, checkpoint — under the store's lead;
//! * `privacy`: regulations (deleting and suppressing a person) and the suppression list;
//! * `read`: a profile by identifier, sizes and their history, a definition's preview;
//! * `clock`: the time the worker evaluates at.

mod book;
mod clock;
mod document;
mod error;
mod privacy;
mod read;
mod sync;
mod worker;

pub use book::to_send;
pub use clock::{Clock, ManualClock, SystemClock};
pub use document::{Backfill, ConnectionState, SizeSample, WorkerDoc, connection_key};
pub use error::ProfilesError;
pub use privacy::{
    HashedIdentifier, MAX_IDENTIFIERS, NOT_FORWARDED, RegulationRecord, RegulationType,
    RequestedIdentifier, Suppressions, new_regulation,
};
pub use read::{Preview, PreviewMember, ProfileView, find_profile, preview, worker_status};
pub use sync::PERSONAS_SOURCE;
pub use worker::{ProfileWorker, Snapshots, StepOutcome, WorkerHandle, WorkerSettings};

//! What the store keeps for deleting and suppressing a person: regulations (the audit log), the
//! suppression list of keyed identifier hashes, the secret that keys them, and the deletion of
//! stored events with everything recorded about them. The profile worker (`junction-profiles`)
//! owns the meaning of a regulation's documents; the store only keeps them.

use crate::model::UnixMillis;

/// Where a regulation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegulationStatus {
    /// Created, not yet taken up by the profile worker.
    Initialized,
    /// Being carried out.
    Running,
    /// Done; its record says what was done.
    Finished,
    /// Given up; its record says why.
    Failed,
}

impl RegulationStatus {
    /// The status as the API and the store write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RegulationStatus::Initialized => "initialized",
            RegulationStatus::Running => "running",
            RegulationStatus::Finished => "finished",
            RegulationStatus::Failed => "failed",
        }
    }

    /// The status written `name`, if it is one.
    pub fn parse(name: &str) -> Option<RegulationStatus> {
        match name {
            "initialized" => Some(RegulationStatus::Initialized),
            "running" => Some(RegulationStatus::Running),
            "finished" => Some(RegulationStatus::Finished),
            "failed" => Some(RegulationStatus::Failed),
            _ => None,
        }
    }

    /// Whether nothing more will happen to it.
    pub fn is_done(self) -> bool {
        matches!(self, RegulationStatus::Finished | RegulationStatus::Failed)
    }
}

/// A regulation to store, with status [`RegulationStatus::Initialized`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewRegulation {
    /// Its type (`SUPPRESS`, `DELETE_ONLY`, …), opaque to the store.
    pub kind: String,
    /// When it was asked for.
    pub created_at: UnixMillis,
    /// The audit record (JSON, identifiers as keyed hashes only), kept for good.
    pub record: serde_json::Value,
    /// What the worker needs to carry it out (the identifiers as given): kept only until the
    /// regulation is done, then erased.
    pub request: serde_json::Value,
}

/// A stored regulation.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRegulation {
    /// Its id, larger than every earlier one.
    pub id: i64,
    /// Its type.
    pub kind: String,
    /// Where it is.
    pub status: RegulationStatus,
    /// When it was asked for.
    pub created_at: UnixMillis,
    /// When it finished or failed.
    pub finished_at: Option<UnixMillis>,
    /// The audit record.
    pub record: serde_json::Value,
    /// The request, until the regulation is done (`None` afterwards).
    pub request: Option<serde_json::Value>,
}

/// A change of a regulation, written in one transaction with the suppression list's changes.
#[derive(Clone, Debug, PartialEq)]
pub struct RegulationUpdate {
    /// The regulation.
    pub id: i64,
    /// Its new status; once done, its request is erased.
    pub status: RegulationStatus,
    /// When it finished or failed.
    pub finished_at: Option<UnixMillis>,
    /// Its audit record, replaced whole.
    pub record: serde_json::Value,
    /// Hashes added to the suppression list.
    pub suppress: Vec<String>,
    /// Hashes removed from the suppression list.
    pub unsuppress: Vec<String>,
}

/// One hash on the suppression list, with the regulation that put it there: an `UNSUPPRESS`
/// lifts every hash a suppression added together (a deleted profile's other identifiers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    /// The identifier's keyed hash.
    pub hash: String,
    /// The regulation that suppressed it.
    pub regulation_id: i64,
}

/// What deleting events removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletedEvents {
    /// Events removed.
    pub events: u64,
    /// Their jobs removed (replays included).
    pub jobs: u64,
    /// Of those, jobs not yet delivered (still queued): cancelled.
    pub jobs_cancelled: u64,
}

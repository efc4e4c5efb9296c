//! What the worker keeps in the store, as JSON documents: one per profile, and its own.

use std::collections::{BTreeMap, VecDeque};

use junction_audience::ProfileState;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many recent event ids a profile keeps for its page.
pub const RECENT_EVENTS: usize = 20;

/// One profile's document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileDoc {
    /// Its incremental state (traits included) for the definitions in
    /// [`WorkerDoc::built_for`].
    pub state: ProfileState,
    /// Each definition's value by key, as of the last refresh (for readers without the
    /// definitions).
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
    /// The `anonymousId` of its latest event, sent when it has no `user_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_anonymous_id: Option<String>,
    /// Per connection id (see [`ConnectionState::id`]), the value last sent for it.
    #[serde(default)]
    pub sent: BTreeMap<String, Value>,
    /// How many sync events were made for it: with the connection and the profile, what makes
    /// each sync's `messageId` unique and the same again when a step is redone after a crash.
    #[serde(default)]
    pub syncs: u64,
    /// The ids of its latest stored events, oldest first.
    #[serde(default)]
    pub recent: VecDeque<i64>,
    /// When it was created (ms).
    #[serde(default)]
    pub created_at: i64,
}

/// A connection of a definition to a destination, as the worker tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionState {
    /// Unique for each time a definition is connected to a destination: a connection removed
    /// and made again is new, and sends every member again.
    pub id: String,
    /// Whether every current member was sent once.
    pub initial_done: bool,
    /// When it last synced (ms): the start of the next scheduled sync's period.
    pub last_sync_at: i64,
    /// A sync asked for now (by an operator), whatever the schedule.
    #[serde(default)]
    pub sync_requested: bool,
}

/// A walk over the stored events that rebuilds every profile's state for new definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfill {
    /// The definitions (key, text) it builds for.
    pub for_definitions: Vec<(String, String)>,
    /// The last event id walked.
    pub after: i64,
    /// The last event id it walks: the newest stored event when it started. Later events reach
    /// the profiles through the inbox, so a busy source cannot keep the walk from ending.
    #[serde(default = "walk_to_the_end")]
    pub until: i64,
    /// Events walked so far.
    pub walked: u64,
    /// When it started (ms).
    pub started_at: i64,
}

fn walk_to_the_end() -> i64 {
    i64::MAX
}

/// The size of every definition at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeSample {
    /// When (ms).
    pub at: i64,
    /// Per key: audience members, or profiles with a value of the computed trait.
    pub sizes: BTreeMap<String, u64>,
}

/// The worker's document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerDoc {
    /// The definitions (key, text) the profiles' states are built for.
    #[serde(default)]
    pub built_for: Vec<(String, String)>,
    /// The backfill under way, if any.
    #[serde(default)]
    pub backfill: Option<Backfill>,
    /// The last event id a backfill walked: inbox events up to it are already in the states.
    #[serde(default)]
    pub walked_upto: i64,
    /// Per `<key>|<destination>`, the connection's state.
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionState>,
    /// How many connections were ever made (for their ids).
    #[serde(default)]
    pub connections_made: u64,
    /// How many profiles exist.
    #[serde(default)]
    pub profiles: u64,
    /// The latest sizes.
    #[serde(default)]
    pub sizes: BTreeMap<String, u64>,
    /// Sizes over time, oldest first, at most [`HISTORY_SAMPLES`].
    #[serde(default)]
    pub history: Vec<SizeSample>,
}

/// How many size samples are kept (at one per [`crate::WorkerSettings::sample_every`], a
/// month at hourly samples).
pub const HISTORY_SAMPLES: usize = 24 * 31;

/// The key of a connection in [`WorkerDoc::connections`].
pub fn connection_key(definition: &str, destination: &str) -> String {
    format!("{definition}|{destination}")
}

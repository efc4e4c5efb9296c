//! The workspace configuration — sources with their write keys, destinations with their settings
//! and mappings — parsed from JSON or TOML, validated as a whole with errors that name the object
//! and field, compiled once into an immutable [`Snapshot`], and the routing of events through it.
//!
//! **Architecture Invariant:** pure. No IO, no async runtime, no HTTP: callers read files, store
//! documents and swap snapshots. A snapshot is compiled once per configuration change and never
//! changes; routing reads it without locks.
//!
//! ```
//! use junction_workspace::{Format, RouteOutcome, Snapshot, WorkspaceConfig, route};
//!
//! let text = r#"{
//!   "sources": [{"id": "web", "write_keys": ["wk_123"]}],
//!   "destinations": [{"id": "cm", "type": "actions-chartmogul", "sources": ["web"],
//!     "settings": {"chartmogul_webhook_url": "https://h.example/wh"},
//!     "mappings": [{"id": "contacts", "action": "sendContact", "trigger": "type = \"identify\""}]}]
//! }"#;
//! let snapshot = Snapshot::compile(WorkspaceConfig::parse(text, Format::Json)?)?;
//! let source = snapshot.source_for_write_key("wk_123").ok_or("unknown write key")?;
//! let event = serde_json::json!({"type": "identify", "userId": "u1", "messageId": "m1",
//!     "timestamp": "2024-03-01T12:00:00Z", "sentAt": "2024-03-01T12:00:00Z",
//!     "traits": {"email": "jane@example.com"}});
//! let outcomes = route(&snapshot, source, &event);
//! assert!(matches!(outcomes[0], RouteOutcome::Job(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod limits;
mod model;
mod route;
mod snapshot;

pub use error::{Problem, ProblemKind, WorkspaceError};
pub use model::{
    AudienceConfig, AudienceConnection, AudienceKind, DeliveryConfig, DestinationConfig, Format,
    MappingConfig, SampleEvent, SourceConfig, WorkspaceConfig,
};
pub use route::{RemapError, RouteOutcome, RoutedJob, endpoint_key, remap, route, route_to};
pub use snapshot::{
    CompiledMapping, Destination, MAX_MAPPINGS_PER_DESTINATION, Snapshot, Source, definition_specs,
};

//! The workspace configuration as a user writes it (JSON or TOML) and as it is stored: sources,
//! destinations and their mappings. Plain data; checking it is `compile`'s job.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::WorkspaceError;

/// A whole workspace: every source and every destination. The unit that is validated, stored
/// and compiled; a change to any part replaces the whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// The sources events are sent to.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// The destinations events are routed to.
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    /// Audiences and computed traits, computed over every source's events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<AudienceConfig>,
    /// The keys of deleted audiences and computed traits: a key is never used again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_keys: Vec<String>,
}

/// An audience or computed trait (`audiences.md`): a definition in Segment's query language,
/// and the destinations its values are synced to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceConfig {
    /// The key its value is sent under (`^[a-z0-9][a-z0-9_]*$`); set at creation, never changed,
    /// never reused. Required.
    #[serde(default)]
    pub key: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// An audience (a boolean membership) or a computed trait (a value).
    pub kind: AudienceKind,
    /// The definition, e.g. `event('Order Completed').within(30 days).count() >= 1`.
    #[serde(default)]
    pub query: String,
    /// The destinations its values are sent to, each on its schedule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<AudienceConnection>,
}

/// Whether a definition is an audience or a computed trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceKind {
    /// A membership: `true` or `false` per profile.
    Audience,
    /// A computed value per profile.
    Trait,
}

impl AudienceKind {
    /// Its name in definitions and in `context.personas.computation_class`.
    pub fn as_str(self) -> &'static str {
        match self {
            AudienceKind::Audience => "audience",
            AudienceKind::Trait => "trait",
        }
    }
}

/// A connection of an audience or computed trait to a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceConnection {
    /// The destination's id. Required.
    #[serde(default)]
    pub destination: String,
    /// Sync every this many hours (the net change since the last sync); absent: in real time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_hours: Option<u32>,
}

/// A source: an application (or a part of one) that sends tracking calls with one of its write
/// keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique among sources; stored with every event. Required.
    #[serde(default)]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The write keys that authenticate calls to this source (at least one). A key belongs to one
    /// source only. Secrets: never logged.
    #[serde(default)]
    pub write_keys: Vec<String>,
}

/// A destination instance: one configured copy of a destination type, with its settings and
/// mappings, connected to some sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Unique among destinations; stored with every job and discard. Required.
    #[serde(default)]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The destination type's slug, e.g. `actions-chartmogul`. Required.
    #[serde(rename = "type", default)]
    pub destination_type: String,
    /// The settings, checked against the type's settings schema (they may hold secrets, such as
    /// ChartMogul's webhook URL).
    #[serde(default = "empty_object")]
    pub settings: Value,
    /// A disabled destination receives nothing (and records nothing).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The ids of the sources whose events it receives.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Its mappings (Segment "Actions" subscriptions), at most
    /// [`crate::MAX_MAPPINGS_PER_DESTINATION`].
    #[serde(default)]
    pub mappings: Vec<MappingConfig>,
    /// How its jobs are delivered (concurrency, rate limit, retry window).
    #[serde(default, skip_serializing_if = "DeliveryConfig::is_default")]
    pub delivery: DeliveryConfig,
    /// Test events saved from the mapping editor, at most [`crate::MAX_SAMPLES_PER_DESTINATION`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<SampleEvent>,
}

/// A test event saved under a name, for trying this destination's mappings again later (the
/// mapping editor's "saved samples"). Configuration, not data: it is kept with the workspace and
/// never delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleEvent {
    /// Unique among the destination's samples. Required.
    #[serde(default)]
    pub name: String,
    /// The event, a JSON object as a Segment library sends it.
    #[serde(default)]
    pub event: Value,
}

/// Delivery settings of one destination instance; they apply to each of its lanes (one per
/// webhook host).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Requests in flight at most per lane; adaptive back-off lowers it on 429, 503 and timeouts
    /// and raises it back on success. Default 20, ChartMogul's documented parallel limit.
    pub max_concurrency: u32,
    /// Requests started per second at most per lane; none by default.
    pub rate_limit: Option<f64>,
    /// How long a job is retried after it was created, in seconds; then it expires into the dead
    /// letter. Default 4 hours.
    pub retry_window_secs: u64,
}

impl DeliveryConfig {
    /// The largest `max_concurrency` accepted: beyond it a lane would only exhaust sockets.
    pub const MAX_CONCURRENCY: u32 = 1_000;

    fn is_default(&self) -> bool {
        *self == DeliveryConfig::default()
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_concurrency: 20,
            rate_limit: None,
            retry_window_secs: 4 * 60 * 60,
        }
    }
}

/// A mapping (a Segment "Actions" subscription): which action runs, when, and how its payload is
/// built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Unique within its destination; stored with every job and discard. Required.
    #[serde(default)]
    pub id: String,
    /// The action's slug, e.g. `sendContact`. Required.
    #[serde(default)]
    pub action: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The trigger (FQL), e.g. `type = "identify"`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The mapping (mapping-kit directives per field). With `use_defaults` it is merged over the
    /// action's defaults, a `null` clearing a field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Value>,
    /// A disabled mapping never runs (and records nothing).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Start from the action's default mapping (`{...defaults, ...mapping}`); default `true`.
    #[serde(default = "enabled_by_default")]
    pub use_defaults: bool,
}

fn enabled_by_default() -> bool {
    true
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// The text formats a workspace file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (`.json`).
    Json,
    /// TOML (`.toml`).
    Toml,
}

impl Format {
    /// The format a file name's extension names (`json`, `toml`, case-insensitive), if any.
    pub fn from_extension(extension: &str) -> Option<Self> {
        if extension.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else if extension.eq_ignore_ascii_case("toml") {
            Some(Self::Toml)
        } else {
            None
        }
    }
}

impl WorkspaceConfig {
    /// Reads a workspace from its text. Only the syntax and the shape are checked here; a
    /// workspace is validated as a whole by [`crate::Snapshot::compile`].
    pub fn parse(text: &str, format: Format) -> Result<Self, WorkspaceError> {
        match format {
            Format::Json => Self::from_json(text),
            Format::Toml => Self::from_toml(text),
        }
    }

    /// Reads a workspace from JSON text.
    pub fn from_json(text: &str) -> Result<Self, WorkspaceError> {
        serde_json::from_str(text).map_err(|err| WorkspaceError::Json {
            message: err.to_string(),
            line: err.line(),
            column: err.column(),
        })
    }

    /// Reads a workspace from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, WorkspaceError> {
        toml::from_str(text).map_err(|err| WorkspaceError::Toml {
            // toml's message names the line and column and quotes the offending text.
            message: err.to_string().trim_end().to_owned(),
        })
    }

    /// Reads a workspace from a stored JSON document (the form [`WorkspaceConfig::to_document`]
    /// writes).
    pub fn from_document(document: Value) -> Result<Self, WorkspaceError> {
        serde_json::from_value(document).map_err(|err| WorkspaceError::Json {
            message: err.to_string(),
            line: err.line(),
            column: err.column(),
        })
    }

    /// The workspace as the JSON document the config store keeps.
    pub fn to_document(&self) -> Value {
        // Every field is a string, a bool, a JSON value or a list of those: serialising cannot
        // fail, and an empty object is never a valid stored workspace anyway.
        serde_json::to_value(self).unwrap_or_else(|_| empty_object())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_optional_fields() {
        let config = WorkspaceConfig::from_json(
            r#"{"sources": [{"id": "web", "write_keys": ["k"]}],
                "destinations": [{"id": "cm", "type": "actions-chartmogul", "sources": ["web"],
                                  "mappings": [{"id": "m", "action": "sendContact",
                                                "trigger": "type = \"identify\""}]}]}"#,
        )
        .unwrap();
        let destination = &config.destinations[0];
        assert!(destination.enabled);
        assert_eq!(destination.settings, empty_object());
        assert!(destination.mappings[0].enabled);
        assert!(destination.mappings[0].use_defaults);
        assert_eq!(destination.mappings[0].mapping, None);
    }

    #[test]
    fn toml_and_json_read_the_same_workspace() {
        let toml = r#"
            [[sources]]
            id = "web"
            write_keys = ["k"]

            [[destinations]]
            id = "cm"
            type = "actions-chartmogul"
            sources = ["web"]
            settings = { chartmogul_webhook_url = "https://h.example/wh" }

            [[destinations.mappings]]
            id = "m"
            action = "sendContact"
            trigger = 'type = "identify"'
            mapping = { email = { "@path" = "$.traits.email" } }
        "#;
        let json = r#"{"sources": [{"id": "web", "write_keys": ["k"]}],
            "destinations": [{"id": "cm", "type": "actions-chartmogul", "sources": ["web"],
              "settings": {"chartmogul_webhook_url": "https://h.example/wh"},
              "mappings": [{"id": "m", "action": "sendContact", "trigger": "type = \"identify\"",
                            "mapping": {"email": {"@path": "$.traits.email"}}}]}]}"#;
        assert_eq!(
            WorkspaceConfig::from_toml(toml).unwrap(),
            WorkspaceConfig::from_json(json).unwrap()
        );
    }

    #[test]
    fn syntax_errors_give_the_position() {
        let err = WorkspaceConfig::from_json("{\"sources\": [}").unwrap_err();
        assert!(
            matches!(
                err,
                WorkspaceError::Json {
                    line: 1,
                    column: 14,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = WorkspaceConfig::from_toml("sources = [\n  { id = }\n]").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = WorkspaceConfig::from_json(r#"{"sources": [{"id": "a", "writeKeys": []}]}"#)
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `writeKeys`"),
            "{err}"
        );
    }

    #[test]
    fn documents_round_trip() {
        let config = WorkspaceConfig::from_json(
            r#"{"sources": [{"id": "web", "name": "Web", "write_keys": ["k1", "k2"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            WorkspaceConfig::from_document(config.to_document()).unwrap(),
            config
        );
    }

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(Format::from_extension("JSON"), Some(Format::Json));
        assert_eq!(Format::from_extension("toml"), Some(Format::Toml));
        assert_eq!(Format::from_extension("yaml"), None);
    }
}

//! A subscription (a Segment "mapping"): which action, when (trigger), and how its payload is
//! built (mapping). Compiled once per configuration change, evaluated for every event.

use junction_mapping::{Mapping, MappingError};
use junction_trigger::{ParseError, Trigger};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::definition::{ActionDefinition, DestinationDefinition, Settings};
use crate::error::ActionError;
use crate::request::HttpRequest;

/// A subscription as a user saves it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SubscriptionConfig {
    /// The user's name for it.
    #[serde(default)]
    pub name: String,
    /// The action's slug.
    #[serde(rename = "partnerAction", alias = "action")]
    pub action: String,
    /// Disabled subscriptions never run.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The trigger (FQL). Anything but a non-empty string is invalid.
    #[serde(default, rename = "subscribe", alias = "trigger")]
    pub trigger: Option<Value>,
    /// The mapping as saved.
    #[serde(default)]
    pub mapping: Option<Value>,
    /// Merge the mapping shallowly over the action's field defaults first (`{...defaults,
    /// ...mapping}`, a `null` clearing a field), which is what saving from a UI stores.
    #[serde(default = "enabled_by_default")]
    pub use_defaults: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Why a subscription cannot run. Junction reports these when the subscription is saved
/// (divergence D5); the reference stored them and failed silently on every event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubscriptionError {
    /// The trigger is missing, empty or not a string.
    #[error("Failed to validate subscription")]
    MissingTrigger,
    /// The trigger does not parse.
    #[error("Invalid subscription : {0}")]
    Trigger(ParseError),
    /// The mapping is invalid.
    #[error("Invalid mapping : {0}")]
    Mapping(MappingError),
    /// The destination has no such action.
    #[error("unknown action {action:?} for destination {destination}; expected one of: {expected}")]
    UnknownAction {
        /// The action named.
        action: String,
        /// The destination's slug.
        destination: &'static str,
        /// The action slugs it has, comma-separated.
        expected: String,
    },
}

/// A compiled subscription: trigger parsed, mapping validated and compiled.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The user's name for it.
    pub name: String,
    /// Whether it runs.
    pub enabled: bool,
    action: &'static ActionDefinition,
    trigger: Trigger,
    mapping: Mapping,
}

impl Subscription {
    /// Compiles a saved subscription for a destination of the registry.
    pub fn compile(
        destination: &'static DestinationDefinition,
        config: &SubscriptionConfig,
    ) -> Result<Self, SubscriptionError> {
        let action =
            destination
                .action(&config.action)
                .ok_or_else(|| SubscriptionError::UnknownAction {
                    action: config.action.clone(),
                    destination: destination.slug,
                    expected: destination
                        .actions
                        .iter()
                        .map(|a| a.slug)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        let source = match &config.trigger {
            Some(Value::String(source)) if !source.is_empty() => source,
            _ => return Err(SubscriptionError::MissingTrigger),
        };
        let trigger = junction_trigger::parse(source).map_err(SubscriptionError::Trigger)?;
        let mapping = effective_mapping(action, config);
        let mapping = junction_mapping::compile(&mapping).map_err(SubscriptionError::Mapping)?;
        Ok(Self {
            name: config.name.clone(),
            enabled: config.enabled,
            action,
            trigger,
            mapping,
        })
    }

    /// The action this subscription runs.
    pub fn action(&self) -> &'static ActionDefinition {
        self.action
    }

    /// The compiled trigger.
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// Whether the trigger matches the event.
    pub fn matches(&self, event: &Value) -> bool {
        self.trigger.matches(event)
    }

    /// Runs the action for an event the trigger matched (see [`ActionDefinition::execute`]).
    pub fn execute(&self, settings: &Settings, event: &Value) -> Result<HttpRequest, ActionError> {
        self.action.execute(&self.mapping, settings, event)
    }
}

/// The mapping a subscription runs: with `use_defaults`, the saved object merged over the
/// action's defaults, where `null` removes a field.
fn effective_mapping(action: &ActionDefinition, config: &SubscriptionConfig) -> Value {
    if !config.use_defaults {
        return config
            .mapping
            .clone()
            .unwrap_or_else(|| Value::Object(Map::new()));
    }
    match &config.mapping {
        None | Some(Value::Null) => Value::Object(action.default_mapping()),
        Some(Value::Object(saved)) => Value::Object(action.mapping_with_defaults(saved)),
        // A mapping that is not an object cannot be merged; it fails compilation as saved.
        Some(other) => other.clone(),
    }
}

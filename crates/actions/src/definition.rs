//! What a destination is: its settings, its actions with their fields, and the registry that
//! lists every destination Junction knows. Adding a destination is adding one module to
//! `destinations/` and one line to [`Registry::builtin`].

use std::collections::HashMap;
use std::sync::LazyLock;

use junction_fields::{Fields, Schema, ValidationError};
use junction_mapping::Mapping;
use serde_json::{Map, Value};

use crate::destinations;
use crate::error::{ActionError, AuthError};
use crate::request::{FetchError, HttpRequest, check_status, normalise_url, reason_phrase};

/// A destination's settings after validation: coerced, unknown keys removed, and every
/// URL-valued setting normalised once (not per event, as fetch would).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    values: Map<String, Value>,
    urls: HashMap<String, Result<String, FetchError>>,
}

impl Settings {
    /// A setting as a string, if it is one.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(Value::as_str)
    }

    /// A `uri` setting as the URL a request goes to (WHATWG-normalised), or why it cannot be
    /// requested.
    pub fn url(&self, key: &str) -> Result<&str, FetchError> {
        match self.urls.get(key) {
            Some(Ok(url)) => Ok(url),
            Some(Err(err)) => Err(err.clone()),
            None => Err(FetchError::NotAbsolute),
        }
    }

    /// The settings as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.values
    }

    /// Every `uri` setting that is set: its key and its value as given (requests go to the
    /// normalised form, [`Settings::url`]).
    pub fn url_settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.urls.keys().filter_map(|key| {
            let value = self.values.get(key)?.as_str()?;
            Some((key.as_str(), value))
        })
    }
}

/// What `perform` sees: the validated settings, the validated payload and the raw event.
#[derive(Debug)]
pub struct PerformInput<'a> {
    /// The destination settings.
    pub settings: &'a Settings,
    /// The payload after mapping, empty-value removal and validation.
    pub payload: Map<String, Value>,
    /// The event as received. `junction eval` hands in only the members the subscription's
    /// trigger and mapping read (`crates/cli/src/eval/project.rs`): a `perform` that reads the
    /// event itself must be added to what that module counts as read.
    pub event: &'a Value,
}

/// One action of a destination (a Segment "Actions" action).
pub struct ActionDefinition {
    /// Identifier used by subscriptions (`partnerAction`).
    pub slug: &'static str,
    /// Display title; also the subject of the reference's schema cache key.
    pub title: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// The trigger a new subscription of this action starts with (UI default only).
    pub default_trigger: &'static str,
    /// The action's fields, in definition order.
    pub fields: Fields,
    /// Runs on the payload after empty-value removal and before validation.
    pub prepare: fn(&mut Map<String, Value>),
    /// Builds the request from a validated payload, or rejects it.
    pub perform: fn(PerformInput<'_>) -> Result<HttpRequest, ActionError>,
    schema: Schema,
}

impl std::fmt::Debug for ActionDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionDefinition")
            .field("slug", &self.slug)
            .finish_non_exhaustive()
    }
}

/// The parts of an action a destination module declares.
pub struct ActionSpec {
    /// See [`ActionDefinition::slug`].
    pub slug: &'static str,
    /// See [`ActionDefinition::title`].
    pub title: &'static str,
    /// See [`ActionDefinition::description`].
    pub description: &'static str,
    /// See [`ActionDefinition::default_trigger`].
    pub default_trigger: &'static str,
    /// The fields as the reference's JSON definition (an ordered object of input fields).
    pub fields: Value,
    /// See [`ActionDefinition::prepare`].
    pub prepare: fn(&mut Map<String, Value>),
    /// See [`ActionDefinition::perform`].
    pub perform: fn(PerformInput<'_>) -> Result<HttpRequest, ActionError>,
}

impl ActionDefinition {
    /// Compiles a declared action once: its field schema is built here, never per event.
    pub fn new(spec: ActionSpec) -> Result<Self, DefinitionError> {
        let fields = parse_fields(spec.slug, spec.fields)?;
        let schema = Schema::from_fields(&fields);
        Ok(Self {
            slug: spec.slug,
            title: spec.title,
            description: spec.description,
            default_trigger: spec.default_trigger,
            fields,
            prepare: spec.prepare,
            perform: spec.perform,
            schema,
        })
    }

    /// The compiled field schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The mapping a new subscription starts with: every field's default, in field order.
    pub fn default_mapping(&self) -> Map<String, Value> {
        self.fields
            .iter()
            .filter_map(|(key, field)| Some((key.clone(), field.default.clone()?)))
            .collect()
    }

    /// The mapping a new subscription saves when it starts from the defaults, as the reference
    /// UI builds it: every field's default, then `given` over it (`{...defaults, ...given}`),
    /// where a `null` clears the field.
    pub fn mapping_with_defaults(&self, given: &Map<String, Value>) -> Map<String, Value> {
        let mut merged = self.default_mapping();
        for (key, value) in given {
            if value.is_null() {
                // `remove`, as the runtime always did: it decides the payload's key order.
                merged.remove(key);
            } else {
                merged.insert(key.clone(), value.clone());
            }
        }
        merged
    }

    /// Runs the action for one event: resolve the mapping, remove empty values, prepare,
    /// validate and build the request. No trigger and no settings validation: the caller has
    /// done both (this is the reference's `Action.execute`).
    pub fn execute(
        &self,
        mapping: &Mapping,
        settings: &Settings,
        event: &Value,
    ) -> Result<HttpRequest, ActionError> {
        let resolved = mapping.apply(event).map_err(ActionError::Mapping)?;
        let cleaned = resolved.and_then(|payload| self.schema.remove_empty_values(payload, true));
        let Some(Value::Object(mut payload)) = cleaned else {
            return Err(ActionError::Schema(not_an_object(cleaned.as_ref())));
        };
        (self.prepare)(&mut payload);
        let mut payload = Value::Object(payload);
        self.schema
            .validate(&mut payload)
            .map_err(ActionError::Schema)?;
        let Value::Object(payload) = payload else {
            return Err(ActionError::Schema(not_an_object(Some(&payload))));
        };
        (self.perform)(PerformInput {
            settings,
            payload,
            event,
        })
    }
}

fn not_an_object(value: Option<&Value>) -> ValidationError {
    let found = match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    };
    ValidationError {
        messages: vec![format!(
            "The root value must be an object but it was {found}."
        )],
    }
}

/// Builds the request that tests a destination's settings, or the reason they are rejected
/// before any request.
pub type TestAuthentication = fn(&Settings) -> Result<HttpRequest, String>;

/// A destination: its settings, its actions and how to test its settings.
pub struct DestinationDefinition {
    /// Display name (also the key of the `integrations` object).
    pub name: &'static str,
    /// Other names the `integrations` object may use for it.
    pub integration_aliases: &'static [&'static str],
    /// Identifier of the destination type (`actions-chartmogul`).
    pub slug: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// The settings fields (the reference's authentication fields).
    pub settings_fields: Fields,
    /// Settings that carry a secret and must be masked wherever they are shown.
    pub secret_settings: &'static [&'static str],
    /// The actions, in catalogue order.
    pub actions: Vec<ActionDefinition>,
    /// Builds the request that tests the settings, or rejects them outright.
    pub test_authentication: Option<TestAuthentication>,
    /// Ready-made mappings a person may add (Junction's own: the reference has none).
    pub presets: Vec<MappingPreset>,
    settings_schema: Schema,
}

/// A ready-made mapping of a destination type, offered to add in one step.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingPreset {
    /// Its identifier, also the id of the mapping it adds.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// The action it runs.
    pub action: &'static str,
    /// Its trigger (FQL).
    pub trigger: &'static str,
    /// Its mapping, merged over the action's defaults.
    pub mapping: Value,
}

impl std::fmt::Debug for DestinationDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationDefinition")
            .field("slug", &self.slug)
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}

/// The parts of a destination a destination module declares.
pub struct DestinationSpec {
    /// See [`DestinationDefinition::name`].
    pub name: &'static str,
    /// See [`DestinationDefinition::integration_aliases`].
    pub integration_aliases: &'static [&'static str],
    /// See [`DestinationDefinition::slug`].
    pub slug: &'static str,
    /// See [`DestinationDefinition::description`].
    pub description: &'static str,
    /// The settings fields as the reference's JSON definition.
    pub settings_fields: Value,
    /// See [`DestinationDefinition::secret_settings`].
    pub secret_settings: &'static [&'static str],
    /// See [`DestinationDefinition::actions`].
    pub actions: Vec<ActionSpec>,
    /// See [`DestinationDefinition::test_authentication`].
    pub test_authentication: Option<TestAuthentication>,
    /// See [`DestinationDefinition::presets`].
    pub presets: Vec<MappingPreset>,
}

impl DestinationDefinition {
    /// Compiles a declared destination once.
    pub fn new(spec: DestinationSpec) -> Result<Self, DefinitionError> {
        let settings_fields = parse_fields(spec.slug, spec.settings_fields)?;
        let settings_schema = Schema::from_fields(&settings_fields);
        let actions = spec
            .actions
            .into_iter()
            .map(ActionDefinition::new)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: spec.name,
            integration_aliases: spec.integration_aliases,
            slug: spec.slug,
            description: spec.description,
            settings_fields,
            secret_settings: spec.secret_settings,
            actions,
            test_authentication: spec.test_authentication,
            presets: spec.presets,
            settings_schema,
        })
    }

    /// The preset with this id.
    pub fn preset(&self, id: &str) -> Option<&MappingPreset> {
        self.presets.iter().find(|preset| preset.id == id)
    }

    /// The action with this slug.
    pub fn action(&self, slug: &str) -> Option<&ActionDefinition> {
        self.actions.iter().find(|action| action.slug == slug)
    }

    /// The compiled settings schema.
    pub fn settings_schema(&self) -> &Schema {
        &self.settings_schema
    }

    /// Validates raw settings the way the reference does before running anything: coercion,
    /// unknown keys (such as `subscription`) removed.
    pub fn validate_settings(&self, raw: &Value) -> Result<Settings, ValidationError> {
        let mut settings = raw.clone();
        self.settings_schema.validate(&mut settings)?;
        let Value::Object(values) = settings else {
            return Err(not_an_object(Some(&settings)));
        };
        let urls = self
            .settings_fields
            .iter()
            .filter(|(_, field)| field.format.as_deref() == Some("uri"))
            .filter_map(|(key, _)| {
                let url = values.get(key)?.as_str()?;
                Some((key.clone(), normalise_url(url)))
            })
            .collect();
        Ok(Settings { values, urls })
    }

    /// Validates the settings and builds the request that tests them; `Ok(None)` when the
    /// destination has no test (then the settings are accepted as they are).
    pub fn test_authentication_request(
        &self,
        raw_settings: &Value,
    ) -> Result<Option<HttpRequest>, AuthError> {
        let settings = self
            .validate_settings(raw_settings)
            .map_err(AuthError::Settings)?;
        let Some(test) = self.test_authentication else {
            return Ok(None);
        };
        // The reference prefixes the status (empty for errors without a response) and a space.
        test(&settings)
            .map(Some)
            .map_err(|reason| AuthError::Invalid {
                message: format!("Credentials are invalid:  {reason}"),
            })
    }

    /// Judges the response to the test request.
    pub fn judge_test_authentication(status: u16) -> Result<(), AuthError> {
        check_status(status).map_err(|_| AuthError::Invalid {
            message: format!(
                "Credentials are invalid: {status} {}",
                reason_phrase(status)
            ),
        })
    }

    /// Whether the `integrations` object of an event lets it reach the destination instance
    /// `instance_id` of this type: opt-out with `All` (default true); the instance's id (as
    /// audience syncs name it), then the type's name and aliases, case-sensitive; object values
    /// count as enabled.
    pub fn accepts_integrations(&self, instance_id: &str, integrations: Option<&Value>) -> bool {
        let Some(Value::Object(flags)) = integrations else {
            return true;
        };
        let named = std::iter::once(instance_id)
            .chain(std::iter::once(self.name))
            .chain(self.integration_aliases.iter().copied())
            .find_map(|name| flags.get(name));
        named
            .or_else(|| flags.get("All"))
            // An `integrations` value reads as a switch by JavaScript truthiness (objects, i.e.
            // destination options, count as enabled), as Segment's libraries treat it.
            .is_none_or(junction_js::is_truthy)
    }
}

/// Why a built-in definition could not be compiled (a programming error caught by tests).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("definition of {owner} has invalid fields: {reason}")]
pub struct DefinitionError {
    owner: &'static str,
    reason: String,
}

fn parse_fields(owner: &'static str, fields: Value) -> Result<Fields, DefinitionError> {
    serde_json::from_value(fields).map_err(|err| DefinitionError {
        owner,
        reason: err.to_string(),
    })
}

/// Every destination Junction knows.
#[derive(Debug)]
pub struct Registry {
    destinations: Vec<DestinationDefinition>,
}

impl Registry {
    /// Builds the built-in destinations.
    pub fn builtin() -> Result<Self, DefinitionError> {
        Ok(Self {
            destinations: vec![destinations::chartmogul::definition()?],
        })
    }

    /// The destination with this slug.
    pub fn get(&self, slug: &str) -> Option<&DestinationDefinition> {
        self.destinations.iter().find(|d| d.slug == slug)
    }

    /// All destinations, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = &DestinationDefinition> {
        self.destinations.iter()
    }
}

static REGISTRY: LazyLock<Result<Registry, DefinitionError>> = LazyLock::new(Registry::builtin);

/// The process-wide registry of built-in destinations, compiled on first use.
pub fn registry() -> Result<&'static Registry, DefinitionError> {
    REGISTRY.as_ref().map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn given_fields_are_merged_over_the_defaults() {
        let Ok(registry) = registry() else {
            panic!("the registry compiles");
        };
        let Some(action) = registry
            .get("actions-chartmogul")
            .and_then(|destination| destination.action("sendContact"))
        else {
            panic!("sendContact is registered");
        };
        let given = json!({"email": {"@path": "$.properties.email"}, "company": null,
                           "custom_attributes": {"plan": {"@path": "$.traits.plan"}}});
        let Value::Object(given) = given else {
            panic!("an object");
        };
        let merged = action.mapping_with_defaults(&given);
        assert_eq!(merged["email"], json!({"@path": "$.properties.email"}));
        assert_eq!(merged["user_id"], json!({"@path": "$.userId"}));
        assert!(!merged.contains_key("company"));
        assert_eq!(
            merged["custom_attributes"]["plan"],
            json!({"@path": "$.traits.plan"})
        );
        assert_eq!(
            action.mapping_with_defaults(&Map::new()),
            action.default_mapping()
        );
    }
}

//! Validation of a whole workspace and its compilation into an immutable [`Snapshot`]: write keys
//! resolved to sources, settings validated, every mapping's trigger parsed and mapping compiled,
//! once per configuration change.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use junction_actions::{
    DestinationDefinition, Registry, Settings, Subscription, SubscriptionConfig, SubscriptionError,
};
use junction_mapping::MappingError;
use serde_json::Value;

use crate::error::{Problem, ProblemKind, WorkspaceError};
use crate::limits::{
    MAX_AUDIENCES, MAX_CONNECTIONS, MAX_DESTINATIONS, MAX_EVERY_HOURS, MAX_ID_CHARS,
    MAX_MAPPING_BYTES, MAX_NAME_CHARS, MAX_QUERY_CHARS, MAX_SAMPLE_BYTES,
    MAX_SAMPLES_PER_DESTINATION, MAX_SETTINGS_BYTES, MAX_SOURCES, MAX_TRIGGER_CHARS,
    MAX_WORKSPACE_BYTES, MAX_WRITE_KEY_CHARS, MAX_WRITE_KEYS_PER_SOURCE, over_bytes, over_chars,
};
use crate::model::{
    AudienceConfig, DeliveryConfig, DestinationConfig, MappingConfig, WorkspaceConfig,
};
use junction_audience::{DefinitionError, DefinitionSpec, Definitions};

/// The most mappings one destination instance may hold (Segment's limit).
pub const MAX_MAPPINGS_PER_DESTINATION: usize = 50;

/// A compiled workspace: immutable, shared by every request that routes against it, replaced
/// whole when the configuration changes.
#[derive(Debug)]
pub struct Snapshot {
    config: WorkspaceConfig,
    definitions: Definitions,
    sources: Vec<Source>,
    destinations: Vec<Destination>,
    write_keys: HashMap<String, usize>,
}

/// A compiled source.
#[derive(Debug)]
pub struct Source {
    id: String,
    name: String,
    /// Indexes into [`Snapshot::destinations`] of the enabled destinations connected to it, in
    /// workspace order.
    destinations: Vec<usize>,
}

impl Source {
    /// Its id (stored with each of its events).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its display name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A compiled destination instance.
#[derive(Debug)]
pub struct Destination {
    id: String,
    name: String,
    enabled: bool,
    definition: &'static DestinationDefinition,
    settings: Settings,
    mappings: Vec<CompiledMapping>,
    delivery: DeliveryConfig,
}

impl Destination {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it receives events.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Its destination type.
    pub fn definition(&self) -> &'static DestinationDefinition {
        self.definition
    }

    /// Its validated settings. May hold secrets.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Its mappings, enabled or not, in workspace order.
    pub fn mappings(&self) -> &[CompiledMapping] {
        &self.mappings
    }

    /// The mapping with this id, enabled or not.
    pub fn mapping(&self, id: &str) -> Option<&CompiledMapping> {
        self.mappings.iter().find(|mapping| mapping.id == id)
    }

    /// How its jobs are delivered.
    pub fn delivery(&self) -> &DeliveryConfig {
        &self.delivery
    }

    /// The URL its setting `key` holds now, as a request goes to it, or why a job addressed to
    /// that setting cannot be sent. May hold a secret: never log it.
    pub fn setting_url(&self, key: &str) -> Result<&str, String> {
        self.settings.url(key).map_err(|err| {
            format!(
                "setting {key} of destination \"{}\" is not a URL a request can go to: {err}",
                self.id
            )
        })
    }
}

/// A compiled mapping: trigger parsed, mapping validated and compiled.
#[derive(Debug)]
pub struct CompiledMapping {
    id: String,
    subscription: Subscription,
}

impl CompiledMapping {
    /// Its id (stored with each job and discard it produces).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The compiled subscription (action, trigger, mapping, enabled).
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }
}

impl Snapshot {
    /// The URL the setting `key` of destination `destination_id` holds now (see
    /// [`Destination::setting_url`]), or why a job addressed to it cannot be sent.
    pub fn setting_url(&self, destination_id: &str, key: &str) -> Result<&str, String> {
        match self.destination(destination_id) {
            Some(destination) => destination.setting_url(key),
            None => Err(format!(
                "destination \"{destination_id}\" is no longer configured"
            )),
        }
    }

    /// A snapshot with no source: every write key is unknown.
    pub fn empty() -> Self {
        Self {
            config: WorkspaceConfig::default(),
            definitions: Definitions::default(),
            sources: Vec::new(),
            destinations: Vec::new(),
            write_keys: HashMap::new(),
        }
    }

    /// Validates `config` as a whole and compiles it. Every problem is reported at once
    /// ([`WorkspaceError::Invalid`]), each with the object and field it concerns; nothing is
    /// compiled unless there is none.
    pub fn compile(config: WorkspaceConfig) -> Result<Self, WorkspaceError> {
        let registry = junction_actions::registry()?;
        let mut problems = Vec::new();
        check_sizes(&config, &mut problems);
        if !problems.is_empty() {
            // Sizes first: compiling a workspace too large to keep would only cost time.
            return Err(WorkspaceError::Invalid { problems });
        }
        let write_keys = check_sources(&config, &mut problems);
        let mut destinations = Vec::with_capacity(config.destinations.len());
        let mut destination_ids: HashMap<&str, String> = HashMap::new();
        for (index, destination) in config.destinations.iter().enumerate() {
            let at = Place::destination(index, destination);
            check_id(
                &destination.id,
                &at,
                "id",
                &mut destination_ids,
                &mut problems,
            );
            check_source_refs(&config, destination, &at, &mut problems);
            check_samples(destination, &at, &mut problems);
            if let Some(compiled) = compile_destination(registry, destination, &at, &mut problems) {
                destinations.push(compiled);
            }
        }
        let definitions = check_audiences(&config, &mut problems);
        if !problems.is_empty() {
            return Err(WorkspaceError::Invalid { problems });
        }

        let sources = config
            .sources
            .iter()
            .map(|source| Source {
                id: source.id.clone(),
                name: source.name.clone(),
                destinations: config
                    .destinations
                    .iter()
                    .enumerate()
                    .filter(|(_, destination)| {
                        destination.enabled && destination.sources.contains(&source.id)
                    })
                    .map(|(index, _)| index)
                    .collect(),
            })
            .collect();
        Ok(Self {
            config,
            definitions,
            sources,
            destinations,
            write_keys,
        })
    }

    /// The workspace this snapshot was compiled from.
    pub fn config(&self) -> &WorkspaceConfig {
        &self.config
    }

    /// The audiences and computed traits, compiled, in workspace order (the same order as
    /// [`WorkspaceConfig::audiences`]).
    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    /// The audience or computed trait with this key.
    pub fn audience(&self, key: &str) -> Option<&AudienceConfig> {
        self.config
            .audiences
            .iter()
            .find(|audience| audience.key == key)
    }

    /// The source a write key authenticates.
    pub fn source_for_write_key(&self, write_key: &str) -> Option<&Source> {
        let index = *self.write_keys.get(write_key)?;
        self.sources.get(index)
    }

    /// The source with this id.
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|source| source.id == id)
    }

    /// Every source, in workspace order.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Every destination, in workspace order.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// The destination with this id, enabled or not.
    pub fn destination(&self, id: &str) -> Option<&Destination> {
        self.destinations
            .iter()
            .find(|destination| destination.id == id)
    }

    /// The enabled destinations connected to `source`, in workspace order.
    pub fn destinations_of<'a>(
        &'a self,
        source: &'a Source,
    ) -> impl Iterator<Item = &'a Destination> + 'a {
        source
            .destinations
            .iter()
            .filter_map(|&index| self.destinations.get(index))
    }
}

/// The definitions as the audience language checks them: keys, kinds, texts, references.
pub fn definition_specs(audiences: &[AudienceConfig]) -> Vec<DefinitionSpec> {
    audiences
        .iter()
        .map(|audience| DefinitionSpec {
            key: Some(audience.key.clone()),
            name: Some(audience.name.clone()),
            kind: Value::String(audience.kind.as_str().to_owned()),
            query: audience.query.clone(),
        })
        .collect()
}

/// Checks the audiences and computed traits (sizes, keys, definitions, connections) and
/// compiles their definitions.
fn check_audiences(config: &WorkspaceConfig, problems: &mut Vec<Problem>) -> Definitions {
    let whole = Place {
        path: String::new(),
        object: "the workspace".to_owned(),
    };
    if config.audiences.len() > MAX_AUDIENCES {
        problems.push(whole.problem(
            "audiences",
            ProblemKind::TooMany {
                found: config.audiences.len(),
                limit: MAX_AUDIENCES,
            },
        ));
        return Definitions::default();
    }
    let destination_ids: Vec<&str> = config.destinations.iter().map(|d| d.id.as_str()).collect();
    for (index, audience) in config.audiences.iter().enumerate() {
        let at = Place {
            path: format!("audiences[{index}]"),
            object: named("audience", truncated(&audience.key), index),
        };
        if let Some(found) = over_chars(&audience.name, MAX_NAME_CHARS) {
            problems.push(at.problem(
                "name",
                ProblemKind::TooLong {
                    found,
                    limit: MAX_NAME_CHARS,
                },
            ));
        }
        if let Some(found) = over_chars(&audience.query, MAX_QUERY_CHARS) {
            problems.push(at.problem(
                "query",
                ProblemKind::TooLong {
                    found,
                    limit: MAX_QUERY_CHARS,
                },
            ));
        }
        if audience.key.is_empty() {
            problems.push(at.problem("key", ProblemKind::Required));
        } else if let Some(found) = over_chars(&audience.key, MAX_ID_CHARS) {
            problems.push(at.problem(
                "key",
                ProblemKind::TooLong {
                    found,
                    limit: MAX_ID_CHARS,
                },
            ));
        } else if config.retired_keys.contains(&audience.key) {
            let key = audience.key.clone();
            problems.push(at.problem("key", ProblemKind::RetiredKey { key }));
        }
        if audience.connections.len() > MAX_CONNECTIONS {
            problems.push(at.problem(
                "connections",
                ProblemKind::TooMany {
                    found: audience.connections.len(),
                    limit: MAX_CONNECTIONS,
                },
            ));
        }
        let mut connected: HashMap<&str, String> = HashMap::new();
        for (c, connection) in audience.connections.iter().enumerate() {
            let field = format!("connections[{c}]");
            if !destination_ids.contains(&connection.destination.as_str()) {
                problems.push(at.problem(
                    &format!("{field}.destination"),
                    ProblemKind::UnknownDestination {
                        id: connection.destination.clone(),
                        expected: list_or_none(&destination_ids),
                    },
                ));
            }
            if let Entry::Vacant(slot) = connected.entry(connection.destination.as_str()) {
                slot.insert(format!("{}.{field}", at.path));
            } else if let Some(first) = connected.get(connection.destination.as_str()) {
                problems.push(at.problem(
                    &format!("{field}.destination"),
                    ProblemKind::DuplicateId {
                        id: connection.destination.clone(),
                        first: first.clone(),
                    },
                ));
            }
            if let Some(hours) = connection.every_hours
                && !(1..=MAX_EVERY_HOURS).contains(&hours)
            {
                problems.push(at.problem(
                    &format!("{field}.every_hours"),
                    ProblemKind::OutOfRange {
                        expected: format!("1 to {MAX_EVERY_HOURS} hours"),
                    },
                ));
            }
        }
    }
    let compiled = Definitions::compile(&definition_specs(&config.audiences));
    for refusal in compiled.refused {
        let Some(audience) = config.audiences.get(refusal.position) else {
            continue;
        };
        let at = Place {
            path: format!("audiences[{}]", refusal.position),
            object: named("audience", truncated(&audience.key), refusal.position),
        };
        let field = match refusal.error {
            DefinitionError::InvalidKey { .. }
            | DefinitionError::DuplicateKey { .. }
            | DefinitionError::MissingKey => "key",
            _ => "query",
        };
        let message = refusal.error.to_string();
        problems.push(at.problem(field, ProblemKind::Definition { message }));
    }
    compiled.definitions
}

/// Where a problem is: the path prefix and the object's name for a person.
struct Place {
    path: String,
    object: String,
}

impl Place {
    fn source(index: usize, id: &str) -> Self {
        Self {
            path: format!("sources[{index}]"),
            object: named("source", id, index),
        }
    }

    fn destination(index: usize, destination: &DestinationConfig) -> Self {
        Self {
            path: format!("destinations[{index}]"),
            object: named("destination", &destination.id, index),
        }
    }

    fn mapping(&self, index: usize, mapping: &MappingConfig) -> Self {
        Self {
            path: format!("{}.mappings[{index}]", self.path),
            object: format!(
                "{} of {}",
                named("mapping", &mapping.id, index),
                self.object
            ),
        }
    }

    fn problem(&self, field: &str, kind: ProblemKind) -> Problem {
        let path = if field.is_empty() {
            self.path.clone()
        } else if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        };
        Problem {
            path,
            object: self.object.clone(),
            kind,
        }
    }
}

/// `source "web"`, or `source #2` when it has no id yet.
fn named(kind: &str, id: &str, index: usize) -> String {
    if id.is_empty() {
        format!("{kind} #{}", index + 1)
    } else {
        format!("{kind} \"{id}\"")
    }
}

/// Checks every size limit of [`crate::limits`]: counts of lists, lengths of ids, names, keys
/// and triggers, sizes of settings, mappings and the whole workspace.
fn check_sizes(config: &WorkspaceConfig, problems: &mut Vec<Problem>) {
    let whole = Place {
        path: String::new(),
        object: "the workspace".to_owned(),
    };
    let too_many = |found: usize, limit: usize| ProblemKind::TooMany { found, limit };
    if config.sources.len() > MAX_SOURCES {
        problems.push(whole.problem("sources", too_many(config.sources.len(), MAX_SOURCES)));
    }
    if config.destinations.len() > MAX_DESTINATIONS {
        problems.push(whole.problem(
            "destinations",
            too_many(config.destinations.len(), MAX_DESTINATIONS),
        ));
    }
    let mut long = |at: &Place, field: &str, value: &str, limit: usize| {
        if let Some(found) = over_chars(value, limit) {
            problems.push(at.problem(field, ProblemKind::TooLong { found, limit }));
        }
    };
    for (index, source) in config.sources.iter().enumerate() {
        let at = Place::source(index, truncated(&source.id));
        long(&at, "id", &source.id, MAX_ID_CHARS);
        long(&at, "name", &source.name, MAX_NAME_CHARS);
        for (key_index, key) in source.write_keys.iter().enumerate() {
            long(
                &at,
                &format!("write_keys[{key_index}]"),
                key,
                MAX_WRITE_KEY_CHARS,
            );
        }
    }
    for (index, destination) in config.destinations.iter().enumerate() {
        let at = Place {
            path: format!("destinations[{index}]"),
            object: named("destination", truncated(&destination.id), index),
        };
        long(&at, "id", &destination.id, MAX_ID_CHARS);
        long(&at, "name", &destination.name, MAX_NAME_CHARS);
        for (sample_index, sample) in destination.samples.iter().enumerate() {
            long(
                &at,
                &format!("samples[{sample_index}].name"),
                &sample.name,
                MAX_NAME_CHARS,
            );
        }
        for (mapping_index, mapping) in destination.mappings.iter().enumerate() {
            let at = Place {
                path: format!("{}.mappings[{mapping_index}]", at.path),
                object: format!(
                    "{} of {}",
                    named("mapping", truncated(&mapping.id), mapping_index),
                    at.object
                ),
            };
            long(&at, "id", &mapping.id, MAX_ID_CHARS);
            long(&at, "name", &mapping.name, MAX_NAME_CHARS);
            if let Some(trigger) = &mapping.trigger {
                long(&at, "trigger", trigger, MAX_TRIGGER_CHARS);
            }
        }
    }
    for (index, source) in config.sources.iter().enumerate() {
        if source.write_keys.len() > MAX_WRITE_KEYS_PER_SOURCE {
            let at = Place::source(index, truncated(&source.id));
            problems.push(at.problem(
                "write_keys",
                too_many(source.write_keys.len(), MAX_WRITE_KEYS_PER_SOURCE),
            ));
        }
    }
    for (index, destination) in config.destinations.iter().enumerate() {
        let at = Place {
            path: format!("destinations[{index}]"),
            object: named("destination", truncated(&destination.id), index),
        };
        if let Some(found) = over_bytes(&destination.settings, MAX_SETTINGS_BYTES) {
            problems.push(at.problem(
                "settings",
                ProblemKind::TooLarge {
                    found,
                    limit: MAX_SETTINGS_BYTES,
                },
            ));
        }
        if destination.samples.len() > MAX_SAMPLES_PER_DESTINATION {
            problems.push(at.problem(
                "samples",
                too_many(destination.samples.len(), MAX_SAMPLES_PER_DESTINATION),
            ));
        }
        for (sample_index, sample) in destination.samples.iter().enumerate() {
            if let Some(found) = over_bytes(&sample.event, MAX_SAMPLE_BYTES) {
                problems.push(at.problem(
                    &format!("samples[{sample_index}].event"),
                    ProblemKind::TooLarge {
                        found,
                        limit: MAX_SAMPLE_BYTES,
                    },
                ));
            }
        }
        for (mapping_index, mapping) in destination.mappings.iter().enumerate() {
            if let Some(found) = over_bytes(&mapping.mapping, MAX_MAPPING_BYTES) {
                problems.push(at.mapping(mapping_index, mapping).problem(
                    "mapping",
                    ProblemKind::TooLarge {
                        found,
                        limit: MAX_MAPPING_BYTES,
                    },
                ));
            }
        }
    }
    if problems.is_empty()
        && let Some(found) = over_bytes(config, MAX_WORKSPACE_BYTES)
    {
        problems.push(whole.problem(
            "",
            ProblemKind::TooLarge {
                found,
                limit: MAX_WORKSPACE_BYTES,
            },
        ));
    }
}

/// An id as a problem's object names it: cut short when it is itself too long.
fn truncated(id: &str) -> &str {
    match id.char_indices().nth(MAX_ID_CHARS) {
        Some((at, _)) => &id[..at],
        None => id,
    }
}

/// Checks an id: present, and unique among `seen` (id → path of its first use).
fn check_id<'a>(
    id: &'a str,
    at: &Place,
    field: &str,
    seen: &mut HashMap<&'a str, String>,
    problems: &mut Vec<Problem>,
) {
    if id.is_empty() {
        problems.push(at.problem(field, ProblemKind::Required));
        return;
    }
    match seen.entry(id) {
        Entry::Occupied(first) => problems.push(at.problem(
            field,
            ProblemKind::DuplicateId {
                id: id.to_owned(),
                first: first.get().clone(),
            },
        )),
        Entry::Vacant(slot) => {
            slot.insert(at.path.clone());
        }
    }
}

/// Checks the sources' ids and write keys; returns write key → source index.
fn check_sources(config: &WorkspaceConfig, problems: &mut Vec<Problem>) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    let mut write_keys: HashMap<String, usize> = HashMap::new();
    let mut key_paths: HashMap<&str, String> = HashMap::new();
    for (index, source) in config.sources.iter().enumerate() {
        let at = Place::source(index, &source.id);
        check_id(&source.id, &at, "id", &mut ids, problems);
        if source.write_keys.is_empty() {
            problems.push(at.problem("write_keys", ProblemKind::NoWriteKeys));
        }
        for (key_index, key) in source.write_keys.iter().enumerate() {
            let field = format!("write_keys[{key_index}]");
            if key.trim().is_empty() {
                problems.push(at.problem(&field, ProblemKind::Required));
                continue;
            }
            match key_paths.entry(key) {
                Entry::Occupied(first) => problems.push(at.problem(
                    &field,
                    ProblemKind::DuplicateWriteKey {
                        first: first.get().clone(),
                    },
                )),
                Entry::Vacant(slot) => {
                    slot.insert(format!("{}.{field}", at.path));
                    write_keys.insert(key.clone(), index);
                }
            }
        }
    }
    write_keys
}

/// Checks a destination's saved test events: each named, names unique, each event an object.
fn check_samples(destination: &DestinationConfig, at: &Place, problems: &mut Vec<Problem>) {
    let mut names: HashMap<&str, String> = HashMap::new();
    for (index, sample) in destination.samples.iter().enumerate() {
        let field = format!("samples[{index}]");
        if sample.name.trim().is_empty() {
            problems.push(at.problem(&format!("{field}.name"), ProblemKind::Required));
        } else {
            match names.entry(&sample.name) {
                Entry::Occupied(first) => problems.push(at.problem(
                    &format!("{field}.name"),
                    ProblemKind::DuplicateName {
                        name: sample.name.clone(),
                        first: first.get().clone(),
                    },
                )),
                Entry::Vacant(slot) => {
                    slot.insert(format!("{}.{field}", at.path));
                }
            }
        }
        if !sample.event.is_object() {
            problems.push(at.problem(&format!("{field}.event"), ProblemKind::NotAnEvent));
        }
    }
}

fn check_source_refs(
    config: &WorkspaceConfig,
    destination: &DestinationConfig,
    at: &Place,
    problems: &mut Vec<Problem>,
) {
    for (index, id) in destination.sources.iter().enumerate() {
        if config.sources.iter().any(|source| &source.id == id) {
            continue;
        }
        let mut expected: Vec<&str> = Vec::new();
        for source in &config.sources {
            if !source.id.is_empty() && !expected.contains(&source.id.as_str()) {
                expected.push(&source.id);
            }
        }
        problems.push(at.problem(
            &format!("sources[{index}]"),
            ProblemKind::UnknownSource {
                id: id.clone(),
                expected: list_or_none(&expected),
            },
        ));
    }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Checks and compiles one destination; `None` when a problem keeps it from compiling (the
/// problems are recorded).
fn compile_destination(
    registry: &'static Registry,
    config: &DestinationConfig,
    at: &Place,
    problems: &mut Vec<Problem>,
) -> Option<Destination> {
    if config.mappings.len() > MAX_MAPPINGS_PER_DESTINATION {
        problems.push(at.problem(
            "mappings",
            ProblemKind::TooManyMappings {
                count: config.mappings.len(),
                limit: MAX_MAPPINGS_PER_DESTINATION,
            },
        ));
    }
    let definition = match registry.get(&config.destination_type) {
        Some(definition) => definition,
        None if config.destination_type.is_empty() => {
            problems.push(at.problem("type", ProblemKind::Required));
            return None;
        }
        None => {
            let expected: Vec<&str> = registry.iter().map(|d| d.slug).collect();
            problems.push(at.problem(
                "type",
                ProblemKind::UnknownDestinationType {
                    found: config.destination_type.clone(),
                    expected: list_or_none(&expected),
                },
            ));
            return None;
        }
    };
    check_delivery(&config.delivery, at, problems);
    let settings = match definition.validate_settings(&config.settings) {
        Ok(settings) => Some(settings),
        Err(err) => {
            problems.push(at.problem(
                "settings",
                ProblemKind::Settings {
                    messages: err.messages,
                },
            ));
            None
        }
    };

    let mut ids = HashMap::new();
    let mut mappings = Vec::with_capacity(config.mappings.len());
    for (index, mapping) in config.mappings.iter().enumerate() {
        let mapping_at = at.mapping(index, mapping);
        check_id(&mapping.id, &mapping_at, "id", &mut ids, problems);
        match Subscription::compile(definition, &subscription_config(mapping)) {
            Ok(subscription) => mappings.push(CompiledMapping {
                id: mapping.id.clone(),
                subscription,
            }),
            Err(err) => problems.push(subscription_problem(&mapping_at, mapping, err)),
        }
    }
    Some(Destination {
        id: config.id.clone(),
        name: config.name.clone(),
        enabled: config.enabled,
        definition,
        settings: settings?,
        mappings,
        delivery: config.delivery,
    })
}

fn check_delivery(delivery: &DeliveryConfig, at: &Place, problems: &mut Vec<Problem>) {
    if !(1..=DeliveryConfig::MAX_CONCURRENCY).contains(&delivery.max_concurrency) {
        problems.push(at.problem(
            "delivery.max_concurrency",
            ProblemKind::OutOfRange {
                expected: format!("from 1 to {}", DeliveryConfig::MAX_CONCURRENCY),
            },
        ));
    }
    if let Some(rate) = delivery.rate_limit
        && !(rate.is_finite() && rate > 0.0)
    {
        problems.push(at.problem(
            "delivery.rate_limit",
            ProblemKind::OutOfRange {
                expected: "a number of requests per second above 0".to_owned(),
            },
        ));
    }
    if delivery.retry_window_secs == 0 {
        problems.push(at.problem(
            "delivery.retry_window_secs",
            ProblemKind::OutOfRange {
                expected: "at least 1 second".to_owned(),
            },
        ));
    }
}

fn subscription_config(mapping: &MappingConfig) -> SubscriptionConfig {
    SubscriptionConfig {
        name: mapping.name.clone(),
        action: mapping.action.clone(),
        enabled: mapping.enabled,
        trigger: mapping.trigger.clone().map(Value::String),
        mapping: mapping.mapping.clone(),
        use_defaults: mapping.use_defaults,
    }
}

fn subscription_problem(at: &Place, mapping: &MappingConfig, err: SubscriptionError) -> Problem {
    match err {
        SubscriptionError::UnknownAction { .. } if mapping.action.is_empty() => {
            at.problem("action", ProblemKind::Required)
        }
        SubscriptionError::UnknownAction {
            action, expected, ..
        } => at.problem("action", ProblemKind::UnknownAction { action, expected }),
        SubscriptionError::MissingTrigger => at.problem("trigger", ProblemKind::Required),
        SubscriptionError::Trigger(err) => at.problem(
            "trigger",
            ProblemKind::Trigger {
                reason: err.reason().to_owned(),
                position: err.position(),
                line: err.line(),
                column: err.column(),
            },
        ),
        SubscriptionError::Mapping(err) => {
            let messages = match err {
                MappingError::Invalid { messages } => messages,
                MappingError::Runtime { message } => vec![message],
            };
            at.problem("mapping", ProblemKind::Mapping { messages })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compile(config: Value) -> Result<Snapshot, WorkspaceError> {
        Snapshot::compile(WorkspaceConfig::from_document(config)?)
    }

    fn problems(config: Value) -> Vec<String> {
        match compile(config) {
            Err(WorkspaceError::Invalid { problems }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected an invalid workspace, got {other:?}"),
        }
    }

    fn mapping(id: &str, trigger: &str) -> Value {
        json!({"id": id, "action": "sendContact", "trigger": trigger})
    }

    #[test]
    fn a_valid_workspace_compiles() {
        let snapshot = compile(json!({
            "sources": [{"id": "web", "name": "Web", "write_keys": ["k1", "k2"]}],
            "destinations": [{"id": "cm", "type": "actions-chartmogul", "sources": ["web"],
                "settings": {"chartmogul_webhook_url": "https://h.example/wh"},
                "mappings": [mapping("m", "type = \"identify\"")]}]
        }))
        .unwrap();
        assert_eq!(snapshot.source_for_write_key("k2").unwrap().id(), "web");
        assert!(snapshot.source_for_write_key("k3").is_none());
        let web = snapshot.source("web").unwrap();
        assert_eq!(snapshot.destinations_of(web).count(), 1);
        assert_eq!(snapshot.destinations()[0].mappings()[0].id(), "m");
    }

    #[test]
    fn audiences_compile_and_every_problem_names_its_field() {
        let destination = json!({"id": "cm", "type": "actions-chartmogul", "sources": [],
            "settings": {"chartmogul_webhook_url": "https://h.example/wh"}});
        let snapshot = compile(json!({
            "destinations": [destination],
            "audiences": [{"key": "buyers", "name": "Buyers", "kind": "audience",
                "query": "event('Order Completed').within(30 days).count() >= 1",
                "connections": [{"destination": "cm"}, ]}]
        }))
        .unwrap();
        assert_eq!(snapshot.definitions().len(), 1);
        assert_eq!(snapshot.audience("buyers").unwrap().name, "Buyers");

        let found = problems(json!({
            "destinations": [destination],
            "retired_keys": ["old"],
            "audiences": [
                {"key": "old", "kind": "audience", "query": "event('A').count() >= 1"},
                {"key": "Bad Key", "kind": "trait", "query": "event('A').count()"},
                {"key": "broken", "kind": "audience", "query": "event('A').count( >= 1"},
                {"key": "linked", "kind": "audience", "query": "event('A').count() >= 1",
                 "connections": [{"destination": "nope"}, {"destination": "cm", "every_hours": 0}]}
            ]
        }));
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(
            found[0].contains("audiences[0].key") && found[0].contains("not reused"),
            "{}",
            found[0]
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("audiences[3].connections[0].destination")
                    && p.contains("unknown destination \"nope\"")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("audiences[3].connections[1].every_hours")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("audiences[1].key") && p.contains("invalid key")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("audiences[2].query") && p.contains("column")),
            "{found:#?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_object_and_field() {
        let found = problems(json!({
            "sources": [
                {"id": "web", "write_keys": ["k1"]},
                {"id": "web", "write_keys": ["k1", ""]},
                {"id": "", "write_keys": []}
            ],
            "destinations": [
                {"id": "cm", "type": "actions-chartmogul", "sources": ["web", "nope"],
                 "settings": {"chartmogul_webhook_url": "not a url"},
                 "mappings": [
                    mapping("contacts", "type = "),
                    {"id": "contacts", "action": "sendCustomer", "trigger": "type = \"group\"",
                     "mapping": {"name": {"@path": 42}}},
                    {"id": "x", "action": "sendInvoice", "trigger": "type = \"track\""},
                    {"id": "y", "action": "sendContact"}
                 ]},
                {"id": "other", "type": "actions-unknown"}
            ]
        }));
        let expected = [
            "source \"web\" (sources[1].id): duplicate id \"web\" (also used at sources[0])",
            "source \"web\" (sources[1].write_keys[0]): this write key is already used at \
             sources[0].write_keys[0]",
            "source \"web\" (sources[1].write_keys[1]): a value is required",
            "source #3 (sources[2].id): a value is required",
            "source #3 (sources[2].write_keys): a source needs at least one write key",
            "destination \"cm\" (destinations[0].sources[1]): unknown source \"nope\"; expected \
             one of: web",
            "destination \"cm\" (destinations[0].settings): invalid settings: ChartMogul webhook \
             URL must be a valid URI string but it was not.",
            "mapping \"contacts\" of destination \"cm\" (destinations[0].mappings[0].trigger): \
             invalid trigger: expected a value after '=', found end of input at column 8",
            "mapping \"contacts\" of destination \"cm\" (destinations[0].mappings[1].id): \
             duplicate id \"contacts\" (also used at destinations[0].mappings[0])",
            "mapping \"contacts\" of destination \"cm\" (destinations[0].mappings[1].mapping): \
             invalid mapping: /name/@path should be a string or a mapping directive but it is a \
             number.",
            "mapping \"x\" of destination \"cm\" (destinations[0].mappings[2].action): unknown \
             action \"sendInvoice\"; expected one of: sendContact, sendCustomer",
            "mapping \"y\" of destination \"cm\" (destinations[0].mappings[3].trigger): a value \
             is required",
            "destination \"other\" (destinations[1].type): unknown destination type \
             \"actions-unknown\"; expected one of: actions-chartmogul",
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn trigger_errors_carry_their_position() {
        let config = json!({
            "sources": [{"id": "web", "write_keys": ["k"]}],
            "destinations": [{"id": "cm", "type": "actions-chartmogul",
                "settings": {"chartmogul_webhook_url": "https://h.example/wh"},
                "mappings": [mapping("m", "type = \"identify\" and\nevent = ")]}]
        });
        let Err(WorkspaceError::Invalid { problems }) = compile(config) else {
            panic!("expected problems");
        };
        match &problems[0].kind {
            ProblemKind::Trigger { line, column, .. } => assert_eq!((*line, *column), (2, 9)),
            other => panic!("{other:?}"),
        }
        assert!(
            problems[0].to_string().ends_with("at line 2, column 9"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn saved_samples_are_named_uniquely_objects_and_bounded() {
        let destination = |samples: Value| {
            json!({"destinations": [{"id": "cm", "type": "actions-chartmogul",
                "settings": {"chartmogul_webhook_url": "https://h.example/wh"},
                "samples": samples}]})
        };
        let snapshot = compile(destination(json!([
            {"name": "Pro user", "event": {"type": "identify", "userId": "u1"}}
        ])))
        .unwrap();
        assert_eq!(
            snapshot.config().destinations[0].samples[0].name,
            "Pro user"
        );

        let found = problems(destination(json!([
            {"name": "a", "event": {"type": "identify"}},
            {"name": "a", "event": {"type": "group"}},
            {"name": " ", "event": ["not", "an", "event"]},
        ])));
        assert_eq!(
            found,
            [
                "destination \"cm\" (destinations[0].samples[1].name): duplicate name \"a\" (also used at destinations[0].samples[0])",
                "destination \"cm\" (destinations[0].samples[2].name): a value is required",
                "destination \"cm\" (destinations[0].samples[2].event): an event must be a JSON object",
            ]
        );

        let many: Vec<Value> = (0..=MAX_SAMPLES_PER_DESTINATION)
            .map(|i| json!({"name": format!("s{i}"), "event": {"type": "identify"}}))
            .collect();
        let found = problems(destination(Value::Array(many)));
        assert_eq!(
            found,
            ["destination \"cm\" (destinations[0].samples): too many: 21, at most 20"]
        );
        let big = json!([{"name": "n".repeat(201),
                          "event": {"type": "identify", "traits": {"x": "y".repeat(40_000)}}}]);
        let found = problems(destination(big));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].ends_with(
                "(destinations[0].samples[0].name): too long: 201 characters, at most 200"
            )
        );
        assert!(found[1].contains("(destinations[0].samples[0].event): too large: "));
    }

    #[test]
    fn every_size_is_limited() {
        let long_id = "i".repeat(65);
        let big = json!({"title": {"@template": "x".repeat(70_000)}});
        let found = problems(json!({
            "sources": [{"id": long_id, "name": "n".repeat(201),
                         "write_keys": ["k".repeat(257)]}],
            "destinations": [{
                "id": "cm", "name": "ChartMogul", "type": "actions-chartmogul",
                "settings": {"chartmogul_webhook_url": format!("https://h.example/{}", "p".repeat(17_000))},
                "mappings": [{"id": "m", "action": "sendContact",
                              "trigger": format!("type = \"{}\"", "t".repeat(5_000)),
                              "mapping": big}]
            }]
        }));
        let expected = [
            format!("source \"{}\" (sources[0].id): too long: 65 characters, at most 64", "i".repeat(64)),
            format!("source \"{}\" (sources[0].name): too long: 201 characters, at most 200", "i".repeat(64)),
            format!("source \"{}\" (sources[0].write_keys[0]): too long: 257 characters, at most 256", "i".repeat(64)),
            "mapping \"m\" of destination \"cm\" (destinations[0].mappings[0].trigger): too long: 5009 characters, at most 4096".to_owned(),
        ];
        for line in &expected {
            assert!(found.contains(line), "{line} not in {found:#?}");
        }
        assert!(
            found.iter().any(|line| line
                .starts_with("destination \"cm\" (destinations[0].settings): too large: ")),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|line| line.starts_with(
                "mapping \"m\" of destination \"cm\" (destinations[0].mappings[0].mapping): too large: "
            )),
            "{found:#?}"
        );
    }

    #[test]
    fn at_most_fifty_mappings_per_destination() {
        let mappings: Vec<Value> = (0..=MAX_MAPPINGS_PER_DESTINATION)
            .map(|n| mapping(&format!("m{n}"), "type = \"identify\""))
            .collect();
        let found = problems(json!({
            "sources": [{"id": "web", "write_keys": ["k"]}],
            "destinations": [{"id": "cm", "type": "actions-chartmogul",
                "settings": {"chartmogul_webhook_url": "https://h.example/wh"},
                "mappings": mappings}]
        }));
        assert_eq!(
            found,
            [
                "destination \"cm\" (destinations[0].mappings): a destination holds at most 50 \
              mappings, found 51"
            ]
        );
    }

    #[test]
    fn the_whole_error_lists_every_problem() {
        let err = compile(json!({"sources": [{"id": "a"}, {"id": "b"}]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "workspace is invalid (2 problems):\n  - source \"a\" (sources[0].write_keys): a \
             source needs at least one write key\n  - source \"b\" (sources[1].write_keys): a \
             source needs at least one write key"
        );
    }

    #[test]
    fn delivery_settings_default_and_are_checked() {
        let base = json!({
            "sources": [{"id": "web", "write_keys": ["wk"]}],
            "destinations": [{
                "id": "cm", "type": "actions-chartmogul",
                "settings": {"chartmogul_webhook_url": "https://h.example/wh"},
                "sources": ["web"]
            }]
        });
        let snapshot = compile(base.clone()).unwrap();
        let delivery = snapshot.destination("cm").unwrap().delivery();
        assert_eq!(*delivery, DeliveryConfig::default());
        assert_eq!(delivery.max_concurrency, 20);
        assert_eq!(delivery.retry_window_secs, 14_400);
        assert!(snapshot.destination("other").is_none());

        let mut custom = base.clone();
        custom["destinations"][0]["delivery"] =
            json!({"max_concurrency": 5, "rate_limit": 2.5, "retry_window_secs": 60});
        let snapshot = compile(custom).unwrap();
        let delivery = snapshot.destination("cm").unwrap().delivery();
        assert_eq!(
            (
                delivery.max_concurrency,
                delivery.rate_limit,
                delivery.retry_window_secs
            ),
            (5, Some(2.5), 60)
        );

        let mut wrong = base;
        wrong["destinations"][0]["delivery"] =
            json!({"max_concurrency": 0, "rate_limit": -1, "retry_window_secs": 0});
        assert_eq!(
            problems(wrong),
            [
                "destination \"cm\" (destinations[0].delivery.max_concurrency): out of range: \
                 expected from 1 to 1000",
                "destination \"cm\" (destinations[0].delivery.rate_limit): out of range: \
                 expected a number of requests per second above 0",
                "destination \"cm\" (destinations[0].delivery.retry_window_secs): out of range: \
                 expected at least 1 second",
            ]
        );
    }
}

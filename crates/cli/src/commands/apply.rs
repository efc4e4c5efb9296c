//! `junction apply FILE`: makes the running workspace match a workspace file (the shape of
//! `serve --workspace`), through the admin API. The plan (what to create, update and delete) is
//! computed from what the API shows, printed (secrets masked), then applied step by step unless
//! `--dry-run`.
//!
//! The API never shows secrets in full, so they are compared in their masked form: a secret
//! setting or write key is taken as unchanged when the file's value masks to what the API shows.
//! Write keys that the server has and the file lacks cannot be told apart (they are masked): they
//! are reported, not revoked.

use std::path::Path;

use anyhow::Context as _;
use clap::Args;
use junction_workspace::{
    AudienceConfig, DestinationConfig, Format, MappingConfig, Snapshot, SourceConfig,
    WorkspaceConfig,
};
use serde_json::{Map, Value, json};

use super::print_json;
use crate::client::{AdminArgs, AdminClient, encode};

/// Arguments of `junction apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The workspace file (`*.json` or `*.toml`).
    pub file: String,
    /// Print the plan only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The workspace as the admin API shows it: sources, destinations and their mappings.
#[derive(Debug, Default)]
pub struct Current {
    /// Source views (`write_keys` masked).
    pub sources: Vec<Value>,
    /// Destination views (settings masked), each with its mapping views.
    pub destinations: Vec<(Value, Vec<Value>)>,
    /// Audience and computed trait views.
    pub audiences: Vec<Value>,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// The HTTP method of a step's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

/// One change: how it is shown (never with a secret in full) and the request that makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub op: Op,
    /// `source web`, `destination cm`, `mapping cm/send-contact`.
    pub what: String,
    /// What changes, secrets masked.
    pub changes: Vec<String>,
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

/// The steps in the order they are applied, and what cannot be done.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
}

/// Reads, parses and validates a workspace file.
pub fn read_file(path: &str) -> anyhow::Result<WorkspaceConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let extension = Path::new(path)
        .extension()
        .and_then(|ext| ext.to_str())
        .unwrap_or("");
    let format = Format::from_extension(extension)
        .with_context(|| format!("cannot tell the format of {path}: name it *.json or *.toml"))?;
    let config = WorkspaceConfig::parse(&text, format).with_context(|| path.to_owned())?;
    Snapshot::compile(config.clone()).with_context(|| path.to_owned())?;
    Ok(config)
}

/// Runs `junction apply`.
pub async fn run(admin: &AdminArgs, args: &ApplyArgs) -> anyhow::Result<()> {
    let file = read_file(&args.file)?;
    let client = AdminClient::new(admin)?;
    let current = fetch(&client).await?;
    let plan = plan(&file, &current);
    if admin.json && args.dry_run {
        return print_json(&plan_json(&plan));
    }
    if !admin.json {
        print!("{}", render(&plan));
    }
    if args.dry_run || plan.steps.is_empty() {
        if admin.json {
            return print_json(&plan_json(&plan));
        }
        return Ok(());
    }
    let total = plan.steps.len();
    let large = total > 10;
    for (n, step) in plan.steps.iter().enumerate() {
        let body = step.body.clone().unwrap_or_else(|| json!({}));
        let result = match step.method {
            Method::Post => client.post(&step.path, &body).await,
            Method::Put => client.put(&step.path, &body).await,
            Method::Patch => client.patch(&step.path, &body).await,
            Method::Delete => client.delete(&step.path).await,
        };
        if let Err(err) = result {
            anyhow::bail!(
                "step {}/{total} ({}) failed: {err:#}; the {n} step(s) before it were applied",
                n + 1,
                headline(step)
            );
        }
        if large && !admin.json {
            eprintln!("[{}/{total}] {}", n + 1, headline(step));
        }
    }
    if admin.json {
        return print_json(&plan_json(&plan));
    }
    println!("Applied {total} change(s).");
    Ok(())
}

async fn fetch(client: &AdminClient) -> anyhow::Result<Current> {
    let sources = client.get_all("/api/v1/sources").await?;
    let mut destinations = Vec::new();
    for destination in client.get_all("/api/v1/destinations").await? {
        let id = destination
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mappings = client
            .get_all(&format!("/api/v1/destinations/{}/mappings", encode(id)))
            .await?;
        destinations.push((destination, mappings));
    }
    let audiences = client.get_all("/api/v1/audiences").await?;
    Ok(Current {
        sources,
        destinations,
        audiences,
    })
}

// ---------------------------------------------------------------------------------------------
// Masking, as the server masks

/// A URL keeps its scheme and host; anything else is `…`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if rest.len() > authority.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

/// A setting value as a secret is shown.
fn mask_value(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(mask_url(text)),
        Value::Null => Value::Null,
        _ => Value::from("…"),
    }
}

/// A write key as the API shows it.
pub fn mask_write_key(key: &str) -> String {
    if key.chars().count() >= 16 {
        format!("{}…", key.chars().take(4).collect::<String>())
    } else {
        "…".to_owned()
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The plan

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn step(op: Op, what: String, changes: Vec<String>, method: Method, path: String) -> Step {
    Step {
        op,
        what,
        changes,
        method,
        path,
        body: None,
    }
}

fn with_body(mut step: Step, body: Value) -> Step {
    step.body = Some(body);
    step
}

/// The steps that make `current` match `file`, in a safe order: sources created and updated,
/// destinations deleted, created and updated (with their mappings), sources deleted last.
pub fn plan(file: &WorkspaceConfig, current: &Current) -> Plan {
    let mut plan = Plan::default();
    for source in &file.sources {
        match current
            .sources
            .iter()
            .find(|s| str_of(s, "id") == source.id)
        {
            None => plan.steps.push(create_source(source)),
            Some(shown) => update_source(&mut plan, source, shown),
        }
    }
    let kept = |id: &str, kind: &str| {
        file.destinations
            .iter()
            .any(|d| d.id == id && d.destination_type == kind)
    };
    // Before destinations go: audiences the file lacks, and connections to destinations that
    // are about to be deleted (the workspace refuses a connection to a missing destination).
    let deleted_destination = |id: &str| {
        current
            .destinations
            .iter()
            .any(|(d, _)| str_of(d, "id") == id && !kept(id, str_of(d, "type")))
    };
    for audience in &current.audiences {
        let key = str_of(audience, "key");
        if !file.audiences.iter().any(|a| a.key == key) {
            plan.steps.push(step(
                Op::Delete,
                format!("audience {key}"),
                vec!["its key is retired".to_owned()],
                Method::Delete,
                audience_path(key),
            ));
            continue;
        }
        let connections: Vec<Value> = audience["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !deleted_destination(str_of(c, "destination")))
            .map(|c| json!({"destination": c["destination"], "every_hours": c["every_hours"]}))
            .collect();
        if connections.len() != audience["connections"].as_array().map_or(0, Vec::len) {
            plan.steps.push(with_body(
                step(
                    Op::Update,
                    format!("audience {key}"),
                    vec!["connections to deleted destinations removed".to_owned()],
                    Method::Patch,
                    audience_path(key),
                ),
                json!({"connections": connections}),
            ));
        }
    }
    for (destination, _) in &current.destinations {
        let id = str_of(destination, "id");
        if !kept(id, str_of(destination, "type")) {
            plan.steps.push(step(
                Op::Delete,
                format!("destination {id}"),
                Vec::new(),
                Method::Delete,
                destination_path(id),
            ));
        }
    }
    for destination in &file.destinations {
        let existing = current.destinations.iter().find(|(d, _)| {
            str_of(d, "id") == destination.id && str_of(d, "type") == destination.destination_type
        });
        match existing {
            None => create_destination(&mut plan, destination),
            Some((shown, mappings)) => update_destination(&mut plan, destination, shown, mappings),
        }
    }
    for audience in &file.audiences {
        let shown = current
            .audiences
            .iter()
            .find(|a| str_of(a, "key") == audience.key);
        if let Some(step) = audience_step(audience, shown) {
            plan.steps.push(step);
        }
    }
    for source in &current.sources {
        let id = str_of(source, "id");
        if !file.sources.iter().any(|s| s.id == id) {
            plan.steps.push(step(
                Op::Delete,
                format!("source {id}"),
                Vec::new(),
                Method::Delete,
                format!("/api/v1/sources/{}", encode(id)),
            ));
        }
    }
    plan
}

fn audience_path(key: &str) -> String {
    format!("/api/v1/audiences/{}", encode(key))
}

/// The create or update an audience needs to match the file's, if any (its key and kind are
/// frozen once created: a different kind is reported, not changed).
fn audience_step(audience: &AudienceConfig, shown: Option<&Value>) -> Option<Step> {
    let connections: Vec<Value> = audience
        .connections
        .iter()
        .map(|c| json!({"destination": c.destination, "every_hours": c.every_hours}))
        .collect();
    let Some(shown) = shown else {
        let body = json!({"key": audience.key, "name": audience.name,
                          "kind": audience.kind.as_str(), "query": audience.query,
                          "connections": connections});
        let changes = vec![
            format!("kind = {}", audience.kind.as_str()),
            format!("query = {:?}", audience.query),
        ];
        return Some(with_body(
            step(
                Op::Create,
                format!("audience {}", audience.key),
                changes,
                Method::Post,
                "/api/v1/audiences".to_owned(),
            ),
            body,
        ));
    };
    let mut patch = Map::new();
    let mut changes = Vec::new();
    if str_of(shown, "name") != audience.name {
        patch.insert("name".to_owned(), json!(audience.name));
        changes.push(format!("name = {:?}", audience.name));
    }
    if str_of(shown, "query") != audience.query {
        patch.insert("query".to_owned(), json!(audience.query));
        changes.push(format!("query = {:?}", audience.query));
    }
    let shown_connections: Vec<Value> = shown["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"destination": c["destination"], "every_hours": c["every_hours"]}))
        .collect();
    if shown_connections != connections {
        patch.insert("connections".to_owned(), Value::Array(connections));
        changes.push("connections".to_owned());
    }
    if str_of(shown, "kind") != audience.kind.as_str() {
        changes.push(format!(
            "kind stays {} (a key keeps its kind: delete it and use a new key)",
            str_of(shown, "kind")
        ));
    }
    if patch.is_empty() {
        return None;
    }
    Some(with_body(
        step(
            Op::Update,
            format!("audience {}", audience.key),
            changes,
            Method::Patch,
            audience_path(&audience.key),
        ),
        Value::Object(patch),
    ))
}

fn source_path(id: &str) -> String {
    format!("/api/v1/sources/{}", encode(id))
}

fn destination_path(id: &str) -> String {
    format!("/api/v1/destinations/{}", encode(id))
}

fn create_source(source: &SourceConfig) -> Step {
    let keys: Vec<String> = source
        .write_keys
        .iter()
        .map(|k| mask_write_key(k))
        .collect();
    with_body(
        step(
            Op::Create,
            format!("source {}", source.id),
            vec![
                format!("name = {:?}", source.name),
                format!("write keys {}", keys.join(" ")),
            ],
            Method::Post,
            "/api/v1/sources".to_owned(),
        ),
        json!({"id": source.id, "name": source.name, "write_keys": source.write_keys}),
    )
}

fn update_source(plan: &mut Plan, source: &SourceConfig, shown: &Value) {
    if str_of(shown, "name") != source.name {
        plan.steps.push(with_body(
            step(
                Op::Update,
                format!("source {}", source.id),
                vec![format!("name = {:?}", source.name)],
                Method::Patch,
                source_path(&source.id),
            ),
            json!({"name": source.name}),
        ));
    }
    // Masked keys the server has, each matched at most once.
    let mut unmatched: Vec<&str> = shown
        .get("write_keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for key in &source.write_keys {
        let masked = mask_write_key(key);
        match unmatched.iter().position(|k| *k == masked) {
            Some(at) => {
                unmatched.remove(at);
            }
            None => plan.steps.push(with_body(
                step(
                    Op::Create,
                    format!("write key of source {}", source.id),
                    vec![masked],
                    Method::Post,
                    format!("{}/write-keys", source_path(&source.id)),
                ),
                json!({"write_key": key}),
            )),
        }
    }
    if !unmatched.is_empty() {
        plan.notes.push(format!(
            "source {} has {} write key(s) not in the file ({}): keys are masked, so they are \
             left; revoke them with `junction sources revoke-key`",
            source.id,
            unmatched.len(),
            unmatched.join(" ")
        ));
    }
}

fn settings_changes(settings: &Map<String, Value>) -> Vec<String> {
    settings
        .iter()
        .map(|(key, value)| format!("settings.{key} = {}", shown(&mask_value(value))))
        .collect()
}

fn delivery_value(destination: &DestinationConfig) -> Value {
    serde_json::to_value(destination.delivery).unwrap_or(Value::Null)
}

fn create_destination(plan: &mut Plan, destination: &DestinationConfig) {
    let settings = destination
        .settings
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut changes = vec![
        format!("name = {:?}", destination.name),
        format!("type = {:?}", destination.destination_type),
    ];
    if !destination.enabled {
        changes.push("enabled = false".to_owned());
    }
    if !destination.sources.is_empty() {
        changes.push(format!("sources = {}", destination.sources.join(",")));
    }
    changes.extend(settings_changes(&settings));
    plan.steps.push(with_body(
        step(
            Op::Create,
            format!("destination {}", destination.id),
            changes,
            Method::Post,
            "/api/v1/destinations".to_owned(),
        ),
        json!({
            "id": destination.id,
            "name": destination.name,
            "type": destination.destination_type,
            "settings": settings,
            "enabled": destination.enabled,
            "sources": destination.sources,
            "delivery": delivery_value(destination),
        }),
    ));
    for mapping in &destination.mappings {
        plan.steps.push(create_mapping(&destination.id, mapping));
    }
}

fn update_destination(
    plan: &mut Plan,
    destination: &DestinationConfig,
    shown: &Value,
    mappings: &[Value],
) {
    let id = &destination.id;
    let mut patch = Map::new();
    let mut changes = Vec::new();
    if str_of(shown, "name") != destination.name {
        patch.insert("name".to_owned(), json!(destination.name));
        changes.push(format!("name = {:?}", destination.name));
    }
    if shown.get("enabled").and_then(Value::as_bool) != Some(destination.enabled) {
        patch.insert("enabled".to_owned(), json!(destination.enabled));
        changes.push(format!("enabled = {}", destination.enabled));
    }
    let delivery = delivery_value(destination);
    if shown.get("delivery") != Some(&delivery) {
        changes.push(format!("delivery = {delivery}"));
        patch.insert("delivery".to_owned(), delivery);
    }
    let wanted = destination
        .settings
        .as_object()
        .cloned()
        .unwrap_or_default();
    let have = shown
        .get("settings")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut settings = Map::new();
    for (key, value) in &wanted {
        let same = have
            .get(key)
            .is_some_and(|current| current == value || *current == mask_value(value));
        if !same {
            settings.insert(key.clone(), value.clone());
        }
    }
    for key in have.keys() {
        if !wanted.contains_key(key) {
            settings.insert(key.clone(), Value::Null);
        }
    }
    if !settings.is_empty() {
        changes.extend(settings_changes(&settings));
        patch.insert("settings".to_owned(), Value::Object(settings));
    }
    if !patch.is_empty() {
        plan.steps.push(with_body(
            step(
                Op::Update,
                format!("destination {id}"),
                changes,
                Method::Patch,
                destination_path(id),
            ),
            Value::Object(patch),
        ));
    }
    let connected: Vec<&str> = shown
        .get("sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for source in &destination.sources {
        if !connected.contains(&source.as_str()) {
            plan.steps.push(step(
                Op::Create,
                format!("connection {source} → {id}"),
                Vec::new(),
                Method::Put,
                format!("{}/sources/{}", destination_path(id), encode(source)),
            ));
        }
    }
    for source in connected {
        if !destination.sources.iter().any(|s| s == source) {
            plan.steps.push(step(
                Op::Delete,
                format!("connection {source} → {id}"),
                Vec::new(),
                Method::Delete,
                format!("{}/sources/{}", destination_path(id), encode(source)),
            ));
        }
    }
    for mapping in mappings {
        let mapping_id = str_of(mapping, "id");
        if !destination.mappings.iter().any(|m| m.id == mapping_id) {
            plan.steps.push(step(
                Op::Delete,
                format!("mapping {id}/{mapping_id}"),
                Vec::new(),
                Method::Delete,
                mapping_path(id, mapping_id),
            ));
        }
    }
    for mapping in &destination.mappings {
        match mappings.iter().find(|m| str_of(m, "id") == mapping.id) {
            None => plan.steps.push(create_mapping(id, mapping)),
            Some(shown) => {
                if let Some(step) = update_mapping(id, mapping, shown) {
                    plan.steps.push(step);
                }
            }
        }
    }
}

fn mapping_path(destination: &str, id: &str) -> String {
    format!("{}/mappings/{}", destination_path(destination), encode(id))
}

fn create_mapping(destination: &str, mapping: &MappingConfig) -> Step {
    let mut body = json!({
        "id": mapping.id,
        "action": mapping.action,
        "name": mapping.name,
        "enabled": mapping.enabled,
    });
    let mut changes = vec![format!("action = {:?}", mapping.action)];
    if let Some(trigger) = &mapping.trigger {
        body["trigger"] = json!(trigger);
        changes.push(format!("trigger = {trigger:?}"));
    }
    if let Some(Value::Object(fields)) = &mapping.mapping {
        body["mapping"] = Value::Object(fields.clone());
        changes.push(format!(
            "mapping fields {}",
            fields.keys().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    if !mapping.enabled {
        changes.push("enabled = false".to_owned());
    }
    with_body(
        step(
            Op::Create,
            format!("mapping {destination}/{}", mapping.id),
            changes,
            Method::Post,
            format!("{}/mappings", destination_path(destination)),
        ),
        body,
    )
}

/// The update a saved mapping needs to match the file's, if any. The file's `mapping` is
/// compared field by field over the saved one (saved mappings hold the action's defaults too);
/// without `use_defaults`, saved fields the file lacks are cleared.
fn update_mapping(destination: &str, mapping: &MappingConfig, shown: &Value) -> Option<Step> {
    let mut patch = Map::new();
    let mut changes = Vec::new();
    let wanted = match &mapping.mapping {
        Some(Value::Object(fields)) => fields.clone(),
        _ => Map::new(),
    };
    if str_of(shown, "action") != mapping.action {
        patch.insert("action".to_owned(), json!(mapping.action));
        patch.insert("mapping".to_owned(), Value::Object(wanted.clone()));
        changes.push(format!("action = {:?}", mapping.action));
    } else {
        let have = shown
            .get("mapping")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut fields = Map::new();
        for (key, value) in &wanted {
            let same = match value {
                Value::Null => !have.contains_key(key),
                value => have.get(key) == Some(value),
            };
            if !same {
                fields.insert(key.clone(), value.clone());
            }
        }
        if !mapping.use_defaults {
            for key in have.keys() {
                if !wanted.contains_key(key) {
                    fields.insert(key.clone(), Value::Null);
                }
            }
        }
        if !fields.is_empty() {
            changes.push(format!(
                "mapping fields {}",
                fields.keys().cloned().collect::<Vec<_>>().join(",")
            ));
            patch.insert("mapping".to_owned(), Value::Object(fields));
        }
    }
    if str_of(shown, "name") != mapping.name {
        patch.insert("name".to_owned(), json!(mapping.name));
        changes.push(format!("name = {:?}", mapping.name));
    }
    if let Some(trigger) = &mapping.trigger
        && shown.get("trigger").and_then(Value::as_str) != Some(trigger.as_str())
    {
        patch.insert("trigger".to_owned(), json!(trigger));
        changes.push(format!("trigger = {trigger:?}"));
    }
    if shown.get("enabled").and_then(Value::as_bool) != Some(mapping.enabled) {
        patch.insert("enabled".to_owned(), json!(mapping.enabled));
        changes.push(format!("enabled = {}", mapping.enabled));
    }
    if patch.is_empty() {
        return None;
    }
    Some(with_body(
        step(
            Op::Update,
            format!("mapping {destination}/{}", mapping.id),
            changes,
            Method::Patch,
            mapping_path(destination, &mapping.id),
        ),
        Value::Object(patch),
    ))
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn symbol(op: Op) -> char {
    match op {
        Op::Create => '+',
        Op::Update => '~',
        Op::Delete => '-',
    }
}

fn headline(step: &Step) -> String {
    format!("{} {}", symbol(step.op), step.what)
}

/// The plan for a human: a summary line, then a line per step (`+` create, `~` update, `-`
/// delete) with what changes, secrets masked; then the notes.
pub fn render(plan: &Plan) -> String {
    let count = |op| plan.steps.iter().filter(|s| s.op == op).count();
    let mut out = if plan.steps.is_empty() {
        "Nothing to change: the workspace already matches the file.\n".to_owned()
    } else {
        format!(
            "Plan: {} to create, {} to update, {} to delete.\n",
            count(Op::Create),
            count(Op::Update),
            count(Op::Delete)
        )
    };
    for step in &plan.steps {
        out.push_str(&headline(step));
        if !step.changes.is_empty() {
            out.push_str(&format!(" ({})", step.changes.join(", ")));
        }
        out.push('\n');
    }
    for note in &plan.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// The plan as JSON: each step's `op`, `what` and `changes` (never its request body).
pub fn plan_json(plan: &Plan) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|step| {
            let op = match step.op {
                Op::Create => "create",
                Op::Update => "update",
                Op::Delete => "delete",
            };
            json!({"op": op, "what": step.what, "changes": step.changes})
        })
        .collect();
    json!({"steps": steps, "notes": plan.notes})
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_URL: &str = "https://hooks.example/v1/secret-token";
    const KEY: &str = "wk_0123456789abcdef0123";

    fn file() -> WorkspaceConfig {
        WorkspaceConfig::from_json(&format!(
            r#"{{"sources": [{{"id": "web", "name": "Web", "write_keys": ["{KEY}"]}}],
                "destinations": [{{"id": "cm", "name": "ChartMogul", "type": "actions-chartmogul",
                  "settings": {{"chartmogul_webhook_url": "{SECRET_URL}"}}, "sources": ["web"],
                  "mappings": [{{"id": "c", "action": "sendContact", "name": "Send Contact",
                                 "trigger": "type = \"identify\"",
                                 "mapping": {{"email": {{"@path": "$.traits.email"}}}}}}]}}]}}"#
        ))
        .unwrap()
    }

    /// What the API shows once `file()` is applied: secrets masked, mappings saved whole.
    fn applied() -> Current {
        Current {
            sources: vec![json!({"id": "web", "name": "Web", "write_keys": ["wk_0…"]})],
            destinations: vec![(
                json!({"id": "cm", "name": "ChartMogul", "type": "actions-chartmogul",
                       "enabled": true,
                       "settings": {"chartmogul_webhook_url": "https://hooks.example/…"},
                       "sources": ["web"],
                       "delivery": {"max_concurrency": 20, "rate_limit": null,
                                    "retry_window_secs": 14400}}),
                vec![
                    json!({"id": "c", "action": "sendContact", "name": "Send Contact",
                            "trigger": "type = \"identify\"", "enabled": true,
                            "mapping": {"email": {"@path": "$.traits.email"},
                                        "name": {"@path": "$.traits.name"}}}),
                ],
            )],
            audiences: Vec::new(),
        }
    }

    #[test]
    fn audiences_are_created_updated_and_deleted_around_their_destinations() {
        let mut file = file();
        file.audiences = vec![AudienceConfig {
            key: "buyers".to_owned(),
            name: "Buyers".to_owned(),
            kind: junction_workspace::AudienceKind::Audience,
            query: "event('A').count() >= 1".to_owned(),
            connections: vec![junction_workspace::AudienceConnection {
                destination: "cm".to_owned(),
                every_hours: None,
            }],
        }];
        let created = plan(&file, &applied());
        let whats: Vec<&str> = created.steps.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(whats, ["audience buyers"]);
        assert_eq!(created.steps[0].method, Method::Post);

        let mut current = applied();
        current.audiences = vec![
            json!({"key": "buyers", "name": "Buyers", "kind": "audience",
                   "query": "event('B').count() >= 1",
                   "connections": [{"destination": "cm", "every_hours": null}]}),
            json!({"key": "old", "name": "Old", "kind": "audience", "query": "x",
                   "connections": []}),
        ];
        let updated = plan(&file, &current);
        let whats: Vec<&str> = updated.steps.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(whats, ["audience old", "audience buyers"]);
        assert_eq!(updated.steps[0].method, Method::Delete);
        assert_eq!(
            updated.steps[1].body,
            Some(json!({"query": "event('A').count() >= 1"}))
        );

        // The destination goes: its connection is removed before it, the audience kept.
        file.destinations.clear();
        file.audiences[0].connections.clear();
        let removed = plan(&file, &current);
        let whats: Vec<&str> = removed.steps.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "audience buyers",
                "audience old",
                "destination cm",
                "audience buyers"
            ]
        );
    }

    #[test]
    fn an_empty_server_gets_everything_created_in_order() {
        let plan = plan(&file(), &Current::default());
        let whats: Vec<&str> = plan.steps.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(whats, ["source web", "destination cm", "mapping cm/c"]);
        assert!(plan.steps.iter().all(|s| s.op == Op::Create));
        assert_eq!(plan.steps[0].body.as_ref().unwrap()["write_keys"][0], KEY);
        let shown = render(&plan);
        assert_eq!(
            shown.lines().next(),
            Some("Plan: 3 to create, 0 to update, 0 to delete.")
        );
        assert!(
            shown.contains("settings.chartmogul_webhook_url = \"https://hooks.example/…\""),
            "{shown}"
        );
        assert!(shown.contains("write keys wk_0…"), "{shown}");
        assert!(
            !shown.contains("secret-token") && !shown.contains(KEY),
            "{shown}"
        );
        let json = plan_json(&plan).to_string();
        assert!(
            !json.contains("secret-token") && !json.contains(KEY),
            "{json}"
        );
    }

    #[test]
    fn an_applied_file_plans_nothing() {
        let plan = plan(&file(), &applied());
        assert_eq!(plan.steps, Vec::new(), "{}", render(&plan));
        assert!(plan.notes.is_empty());
        assert_eq!(
            render(&plan),
            "Nothing to change: the workspace already matches the file.\n"
        );
    }

    #[test]
    fn differences_become_updates_and_extras_deletes() {
        let mut current = applied();
        current.sources[0]["name"] = json!("Old");
        current
            .sources
            .push(json!({"id": "gone", "name": "", "write_keys": ["…"]}));
        let (destination, mappings) = &mut current.destinations[0];
        destination["settings"]["chartmogul_webhook_url"] = json!("https://other.example/…");
        destination["sources"] = json!(["gone"]);
        mappings[0]["trigger"] = json!("type = \"track\"");
        mappings.push(json!({"id": "old", "action": "sendCustomer", "name": "x",
                             "enabled": true, "mapping": {}}));
        current.destinations.push((
            json!({"id": "extra", "type": "actions-chartmogul", "name": "", "sources": []}),
            Vec::new(),
        ));
        let plan = plan(&file(), &current);
        let shown: Vec<String> = plan.steps.iter().map(headline).collect();
        assert_eq!(
            shown,
            [
                "~ source web",
                "- destination extra",
                "~ destination cm",
                "+ connection web → cm",
                "- connection gone → cm",
                "- mapping cm/old",
                "~ mapping cm/c",
                "- source gone",
            ]
        );
        let update = &plan.steps[2];
        assert_eq!(
            update.body,
            Some(json!({"settings": {"chartmogul_webhook_url": SECRET_URL}}))
        );
        assert_eq!(
            update.changes,
            ["settings.chartmogul_webhook_url = \"https://hooks.example/…\""]
        );
        assert_eq!(
            plan.steps[6].body,
            Some(json!({"trigger": "type = \"identify\""}))
        );
        assert_eq!(plan.steps[6].method, Method::Patch);
        assert!(!render(&plan).contains("secret-token"));
    }

    #[test]
    fn write_keys_are_compared_masked() {
        let mut current = applied();
        current.sources[0]["write_keys"] = json!(["wk_9…"]);
        let plan = plan(&file(), &current);
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].what, "write key of source web");
        assert_eq!(plan.steps[0].changes, ["wk_0…"]);
        assert_eq!(plan.notes.len(), 1);
        assert!(plan.notes[0].contains("1 write key(s) not in the file (wk_9…)"));
    }

    #[test]
    fn a_changed_type_is_a_delete_then_a_create() {
        let mut current = applied();
        current.destinations[0].0["type"] = json!("actions-other");
        let plan = plan(&file(), &current);
        let shown: Vec<String> = plan.steps.iter().map(headline).collect();
        assert_eq!(
            shown,
            ["- destination cm", "+ destination cm", "+ mapping cm/c"]
        );
    }

    #[test]
    fn masks_follow_the_server() {
        assert_eq!(mask_url("https://u:p@h.example/x?y"), "https://h.example/…");
        assert_eq!(mask_url("https://h.example"), "https://h.example");
        assert_eq!(mask_url("token"), "…");
        assert_eq!(mask_write_key("short"), "…");
        assert_eq!(mask_write_key(KEY), "wk_0…");
    }
}

//! `junction destinations`: list, show, create, update, enable, disable, connect and disconnect
//! sources, delete, and the catalog of destination types.
//!
//! Settings are shown as the API returns them: secret ones (the ChartMogul webhook URL) masked
//! after the host.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::{cell, print_json};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Arguments of `junction destinations`.
#[derive(Debug, Args)]
pub struct DestinationsArgs {
    #[command(subcommand)]
    pub command: DestinationsCommand,
}

/// The settings of a destination, as JSON or as the ChartMogul webhook URL alone.
#[derive(Debug, Default, Args)]
pub struct SettingsArgs {
    /// The settings as a JSON object (merged over the current ones on update; `null` removes).
    #[arg(long)]
    pub settings: Option<String>,
    /// Shorthand for `--settings '{"chartmogul_webhook_url": URL}'`.
    #[arg(long, conflicts_with = "settings")]
    pub webhook_url: Option<String>,
}

impl SettingsArgs {
    fn object(&self) -> anyhow::Result<Option<Map<String, Value>>> {
        if let Some(url) = &self.webhook_url {
            let mut settings = Map::new();
            settings.insert("chartmogul_webhook_url".to_owned(), json!(url));
            return Ok(Some(settings));
        }
        self.settings
            .as_deref()
            .map(|text| json_object(text, "--settings"))
            .transpose()
    }
}

/// Parses a command-line JSON object.
pub fn json_object(text: &str, flag: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON"))? {
        Value::Object(object) => Ok(object),
        _ => anyhow::bail!("{flag} must be a JSON object"),
    }
}

/// What to do with destinations.
#[derive(Debug, Subcommand)]
pub enum DestinationsCommand {
    /// List the destinations.
    List,
    /// Show one destination, its settings masked.
    Show {
        /// The destination's id.
        id: String,
    },
    /// Create a destination (without mappings: add them with `junction mappings create`).
    Create {
        /// Its display name.
        #[arg(long)]
        name: String,
        /// Its id (made from the name when absent).
        #[arg(long)]
        id: Option<String>,
        /// The destination type.
        #[arg(long = "type", default_value = "actions-chartmogul")]
        destination_type: String,
        #[command(flatten)]
        settings: SettingsArgs,
        /// A source whose events it receives (repeatable).
        #[arg(long = "source")]
        sources: Vec<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Change a destination's name or settings (settings merged over the current ones).
    Update {
        /// The destination's id.
        id: String,
        /// Its new name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Enable a destination.
    Enable {
        /// The destination's id.
        id: String,
    },
    /// Disable a destination: it receives nothing until enabled.
    Disable {
        /// The destination's id.
        id: String,
    },
    /// Connect a source to a destination.
    Connect {
        /// The destination's id.
        id: String,
        /// The source's id.
        source: String,
    },
    /// Disconnect a source from a destination.
    Disconnect {
        /// The destination's id.
        id: String,
        /// The source's id.
        source: String,
    },
    /// Delete a destination and its mappings.
    Delete {
        /// The destination's id.
        id: String,
    },
    /// The destination types, or one type's settings and actions.
    Catalog {
        /// A destination type's slug.
        slug: Option<String>,
    },
}

const HEADER: [&str; 7] = [
    "ID", "NAME", "TYPE", "ENABLED", "SOURCES", "MAPPINGS", "SETTINGS",
];

/// Runs `junction destinations …`.
pub async fn run(admin: &AdminArgs, args: &DestinationsArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let path = |id: &str| format!("/api/v1/destinations/{}", encode(id));
    let data = match &args.command {
        DestinationsCommand::List => {
            let destinations = client.get_all("/api/v1/destinations").await?;
            if admin.json {
                return print_json(&Value::Array(destinations));
            }
            if destinations.is_empty() {
                println!("No destination.");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = destinations.iter().map(row).collect();
            print!("{}", table::render(&HEADER, &rows));
            return Ok(());
        }
        DestinationsCommand::Catalog { slug } => {
            let data = match slug {
                Some(slug) => {
                    client
                        .get(&format!("/api/v1/catalog/destinations/{}", encode(slug)))
                        .await?
                }
                None => client.get("/api/v1/catalog/destinations").await?,
            };
            if admin.json {
                return print_json(&data);
            }
            print!("{}", render_catalog(&data));
            return Ok(());
        }
        DestinationsCommand::Show { id } => client.get(&path(id)).await?,
        DestinationsCommand::Create {
            name,
            id,
            destination_type,
            settings,
            sources,
            disabled,
        } => {
            let mut body = json!({
                "name": name,
                "type": destination_type,
                "settings": settings.object()?.unwrap_or_default(),
                "sources": sources,
                "enabled": !disabled,
            });
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            client.post("/api/v1/destinations", &body).await?
        }
        DestinationsCommand::Update { id, name, settings } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(settings) = settings.object()? {
                body["settings"] = Value::Object(settings);
            }
            client.patch(&path(id), &body).await?
        }
        DestinationsCommand::Enable { id } => {
            client
                .post(&format!("{}/enable", path(id)), &json!({}))
                .await?
        }
        DestinationsCommand::Disable { id } => {
            client
                .post(&format!("{}/disable", path(id)), &json!({}))
                .await?
        }
        DestinationsCommand::Connect { id, source } => {
            client
                .put(
                    &format!("{}/sources/{}", path(id), encode(source)),
                    &json!({}),
                )
                .await?
        }
        DestinationsCommand::Disconnect { id, source } => {
            client
                .delete(&format!("{}/sources/{}", path(id), encode(source)))
                .await?
        }
        DestinationsCommand::Delete { id } => client.delete(&path(id)).await?,
    };
    if admin.json {
        return print_json(&data);
    }
    if let DestinationsCommand::Delete { id } = &args.command {
        println!("Destination {id} deleted.");
        return Ok(());
    }
    print!("{}", render_one(&data));
    Ok(())
}

fn row(destination: &Value) -> Vec<String> {
    vec![
        cell(destination.get("id")),
        cell(destination.get("name")),
        cell(destination.get("type")),
        cell(destination.get("enabled")),
        list(destination.get("sources")),
        cell(destination.get("mapping_count")),
        settings_summary(destination.get("settings")),
    ]
}

fn list(value: Option<&Value>) -> String {
    let items: Vec<String> = value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|item| cell(Some(item)))
        .collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

/// `key=value` pairs, as the API returned them (secrets already masked).
fn settings_summary(value: Option<&Value>) -> String {
    let pairs: Vec<String> = value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", cell(Some(value))))
        .collect();
    if pairs.is_empty() {
        "-".to_owned()
    } else {
        pairs.join(" ")
    }
}

/// One destination, a field a line.
pub fn render_one(destination: &Value) -> String {
    let delivery = destination.get("delivery");
    let field = |key: &str| delivery.and_then(|d| d.get(key));
    let lines = [
        ("id", cell(destination.get("id"))),
        ("name", cell(destination.get("name"))),
        ("type", cell(destination.get("type"))),
        ("enabled", cell(destination.get("enabled"))),
        ("sources", list(destination.get("sources"))),
        ("mappings", cell(destination.get("mapping_count"))),
        ("settings", settings_summary(destination.get("settings"))),
        (
            "delivery",
            format!(
                "max_concurrency={} rate_limit={} retry_window_secs={}",
                cell(field("max_concurrency")),
                cell(field("rate_limit")),
                cell(field("retry_window_secs"))
            ),
        ),
    ];
    lines
        .iter()
        .map(|(key, value)| format!("{key:<9} {value}\n"))
        .collect()
}

/// The catalog: every type with its actions, or one type's settings and actions.
fn render_catalog(data: &Value) -> String {
    if let Some(types) = data.as_array() {
        let rows: Vec<Vec<String>> = types
            .iter()
            .map(|t| {
                let actions: Vec<String> = t
                    .get("actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|a| cell(a.get("slug")))
                    .collect();
                vec![cell(t.get("slug")), cell(t.get("name")), actions.join(",")]
            })
            .collect();
        return table::render(&["TYPE", "NAME", "ACTIONS"], &rows);
    }
    let settings: Vec<Vec<String>> = data
        .get("settings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            vec![
                cell(f.get("key")),
                cell(f.get("type")),
                cell(f.get("required")),
                cell(f.get("secret")),
                cell(f.get("label")),
            ]
        })
        .collect();
    let actions: Vec<Vec<String>> = data
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                cell(a.get("slug")),
                cell(a.get("title")),
                cell(a.get("default_trigger")),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        table::render(
            &["SETTING", "TYPE", "REQUIRED", "SECRET", "LABEL"],
            &settings
        ),
        table::render(&["ACTION", "TITLE", "DEFAULT TRIGGER"], &actions)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination() -> Value {
        json!({"id": "cm", "name": "ChartMogul", "type": "actions-chartmogul", "enabled": true,
               "settings": {"chartmogul_webhook_url": "https://hooks.example/…"},
               "sources": ["web", "ios"], "mapping_count": 2,
               "delivery": {"max_concurrency": 20, "rate_limit": null, "retry_window_secs": 14400}})
    }

    #[test]
    fn destinations_render_as_rows_and_fields() {
        assert_eq!(
            table::render(&HEADER, &[row(&destination())]),
            "ID  NAME        TYPE                ENABLED  SOURCES  MAPPINGS  SETTINGS\n\
             cm  ChartMogul  actions-chartmogul  true     web,ios  2         \
             chartmogul_webhook_url=https://hooks.example/…\n"
        );
        let shown = render_one(&destination());
        assert!(shown.contains("sources   web,ios\n"), "{shown}");
        assert!(
            shown.contains("delivery  max_concurrency=20 rate_limit=- "),
            "{shown}"
        );
    }

    #[test]
    fn settings_come_from_json_or_the_webhook_url() {
        let args = SettingsArgs {
            settings: None,
            webhook_url: Some("https://h/x".to_owned()),
        };
        assert_eq!(
            args.object().unwrap(),
            json_object(r#"{"chartmogul_webhook_url": "https://h/x"}"#, "x").ok()
        );
        assert!(json_object("[1]", "--settings").is_err());
        assert!(json_object("{", "--settings").is_err());
    }
}

//! `junction mappings`: a destination's mappings, listed, created, updated, enabled, disabled and
//! deleted.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::destinations::json_object;
use super::test_event::EventArgs;
use super::{cell, print_json};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Arguments of `junction mappings`.
#[derive(Debug, Args)]
pub struct MappingsArgs {
    #[command(subcommand)]
    pub command: MappingsCommand,
}

/// The fields of a mapping a caller may give.
#[derive(Debug, Default, Args)]
pub struct MappingFields {
    /// Its display name (the action's title when created without one).
    #[arg(long)]
    pub name: Option<String>,
    /// Its trigger (FQL, e.g. `type = "identify"`; the action's default when created without).
    #[arg(long)]
    pub trigger: Option<String>,
    /// Field directives as a JSON object, over the action's defaults (`null` clears a field).
    #[arg(long)]
    pub mapping: Option<String>,
}

/// What to do with mappings.
#[derive(Debug, Subcommand)]
pub enum MappingsCommand {
    /// List a destination's mappings.
    List {
        /// The destination's id.
        destination: String,
    },
    /// Create a mapping.
    Create {
        /// The destination's id.
        destination: String,
        /// The action's slug (see `junction destinations catalog TYPE`).
        #[arg(long)]
        action: String,
        /// Its id (made from the name when absent).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        fields: MappingFields,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Add one of the destination type's ready-made mappings (ChartMogul: `audience_attributes`,
    /// audiences and computed traits as contact custom attributes).
    Preset {
        /// The destination's id.
        destination: String,
        /// The preset's id (see `junction destinations catalog TYPE --json`).
        preset: String,
    },
    /// Update a mapping (its `mapping` merged over the saved one).
    Update {
        /// The destination's id.
        destination: String,
        /// The mapping's id.
        id: String,
        /// A new action: the mapping starts again from its defaults.
        #[arg(long)]
        action: Option<String>,
        #[command(flatten)]
        fields: MappingFields,
    },
    /// Enable a mapping.
    Enable {
        /// The destination's id.
        destination: String,
        /// The mapping's id.
        id: String,
    },
    /// Disable a mapping.
    Disable {
        /// The destination's id.
        destination: String,
        /// The mapping's id.
        id: String,
    },
    /// Evaluate one saved mapping on an event, without sending anything.
    Test {
        /// The destination's id.
        destination: String,
        /// The mapping's id.
        id: String,
        #[command(flatten)]
        event: EventArgs,
    },
    /// Delete a mapping.
    Delete {
        /// The destination's id.
        destination: String,
        /// The mapping's id.
        id: String,
    },
}

const HEADER: [&str; 5] = ["ID", "ACTION", "NAME", "ENABLED", "TRIGGER"];

impl MappingFields {
    fn body(&self) -> anyhow::Result<Value> {
        let mut body = json!({});
        if let Some(name) = &self.name {
            body["name"] = json!(name);
        }
        if let Some(trigger) = &self.trigger {
            body["trigger"] = json!(trigger);
        }
        if let Some(mapping) = &self.mapping {
            body["mapping"] = Value::Object(json_object(mapping, "--mapping")?);
        }
        Ok(body)
    }
}

/// Runs `junction mappings …`.
pub async fn run(admin: &AdminArgs, args: &MappingsArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let base = |destination: &str| format!("/api/v1/destinations/{}/mappings", encode(destination));
    let one = |destination: &str, id: &str| format!("{}/{}", base(destination), encode(id));
    let data = match &args.command {
        MappingsCommand::List { destination } => {
            let mappings = client.get_all(&base(destination)).await?;
            if admin.json {
                return print_json(&Value::Array(mappings));
            }
            print!("{}", render_list(&mappings));
            return Ok(());
        }
        MappingsCommand::Create {
            destination,
            action,
            id,
            fields,
            disabled,
        } => {
            let mut body = fields.body()?;
            body["action"] = json!(action);
            body["enabled"] = json!(!disabled);
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            client.post(&base(destination), &body).await?
        }
        MappingsCommand::Preset {
            destination,
            preset,
        } => {
            let path = format!("{}/presets/{}", base(destination), encode(preset));
            client.post(&path, &json!({})).await?
        }
        MappingsCommand::Update {
            destination,
            id,
            action,
            fields,
        } => {
            let mut body = fields.body()?;
            if let Some(action) = action {
                body["action"] = json!(action);
            }
            client.patch(&one(destination, id), &body).await?
        }
        MappingsCommand::Enable { destination, id } => {
            client
                .post(&format!("{}/enable", one(destination, id)), &json!({}))
                .await?
        }
        MappingsCommand::Disable { destination, id } => {
            client
                .post(&format!("{}/disable", one(destination, id)), &json!({}))
                .await?
        }
        MappingsCommand::Delete { destination, id } => client.delete(&one(destination, id)).await?,
        MappingsCommand::Test {
            destination,
            id,
            event,
        } => {
            let body = json!({"event": event.read()?});
            let data = client
                .post(&format!("{}/test", one(destination, id)), &body)
                .await?;
            if admin.json {
                return print_json(&data);
            }
            let result = data.get("result").cloned().unwrap_or_default();
            print!(
                "{}",
                super::test_event::render(&json!({"results": [result]}))
            );
            if let Some(request) = result.get("request").filter(|r| !r.is_null()) {
                println!(
                    "{} {}",
                    cell(request.get("method")),
                    cell(request.get("url"))
                );
                println!("{}", cell(request.get("body")));
            }
            return Ok(());
        }
    };
    if admin.json {
        return print_json(&data);
    }
    if let MappingsCommand::Delete { destination, id } = &args.command {
        println!("Mapping {id} of destination {destination} deleted.");
        return Ok(());
    }
    print!("{}", render_list(std::slice::from_ref(&data)));
    Ok(())
}

/// Mappings as a table.
pub fn render_list(mappings: &[Value]) -> String {
    if mappings.is_empty() {
        return "No mapping.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = mappings
        .iter()
        .map(|m| {
            vec![
                cell(m.get("id")),
                cell(m.get("action")),
                cell(m.get("name")),
                cell(m.get("enabled")),
                cell(m.get("trigger")),
            ]
        })
        .collect();
    table::render(&HEADER, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_render_as_a_table() {
        let mappings = vec![json!({"id": "send-contact", "action": "sendContact",
                                   "name": "Send Contact", "enabled": true,
                                   "trigger": "type = \"identify\""})];
        assert_eq!(
            render_list(&mappings),
            "ID            ACTION       NAME          ENABLED  TRIGGER\n\
             send-contact  sendContact  Send Contact  true     type = \"identify\"\n"
        );
        assert_eq!(render_list(&[]), "No mapping.\n");
    }

    #[test]
    fn only_given_fields_are_sent() {
        let fields = MappingFields {
            name: None,
            trigger: Some("type = \"track\"".to_owned()),
            mapping: Some(r#"{"email": null}"#.to_owned()),
        };
        assert_eq!(
            fields.body().unwrap(),
            json!({"trigger": "type = \"track\"", "mapping": {"email": null}})
        );
        let bad = MappingFields {
            mapping: Some("[]".to_owned()),
            ..MappingFields::default()
        };
        assert!(bad.body().is_err());
    }
}

//! `junction audiences list|preview|create|show|update|delete|connect|disconnect|sync` and
//! `junction profiles show`: audiences and computed traits, and profiles, through the admin API.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{cell, print_json, time};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// The fields of a definition a caller may give.
#[derive(Debug, Default, Args)]
pub struct DefinitionFields {
    /// Its display name (its key is derived from it when `--key` is absent).
    #[arg(long)]
    pub name: Option<String>,
    /// The definition, in Segment's query language, e.g.
    /// `event('Order Completed').within(30 days).count() >= 1`.
    #[arg(long)]
    pub query: Option<String>,
}

/// The admin subcommands of `junction audiences`.
#[derive(Debug, Subcommand)]
pub enum AudienceCommand {
    /// List audiences and computed traits with their sizes and connections.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show what a definition would hold if it were saved now (its size and some members).
    Preview {
        #[command(flatten)]
        admin: AdminArgs,
        /// `audience` or `trait`.
        #[arg(long, default_value = "audience")]
        kind: String,
        #[command(flatten)]
        fields: DefinitionFields,
    },
    /// Create an audience or computed trait; its profiles are computed from the stored events.
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// `audience` or `trait`.
        #[arg(long, default_value = "audience")]
        kind: String,
        /// Its key (derived from the name when absent); it never changes.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        fields: DefinitionFields,
    },
    /// Show one, with its size over time.
    Show {
        #[command(flatten)]
        admin: AdminArgs,
        /// Its key.
        key: String,
    },
    /// Change a definition's name or query.
    Update {
        #[command(flatten)]
        admin: AdminArgs,
        /// Its key.
        key: String,
        #[command(flatten)]
        fields: DefinitionFields,
    },
    /// Delete one (its key is never used again).
    Delete {
        #[command(flatten)]
        admin: AdminArgs,
        /// Its key.
        key: String,
    },
    /// Connect to a destination: every current member is sent once, then the changes.
    Connect {
        #[command(flatten)]
        admin: AdminArgs,
        /// Its key.
        key: String,
        /// The destination's id.
        destination: String,
        /// Sync every this many hours (the net change) instead of in real time.
        #[arg(long)]
        every_hours: Option<u32>,
    },
    /// Disconnect from a destination.
    Disconnect {
        #[command(flatten)]
        admin: AdminArgs,
        /// Its key.
        key: String,
        /// The destination's id.
        destination: String,
    },
    /// Sync the net changes to a destination now, whatever its schedule.
    Sync {
        #[command(flatten)]
        admin: AdminArgs,
        /// Its key.
        key: String,
        /// The destination's id.
        destination: String,
    },
}

/// Arguments of `junction profiles`.
#[derive(Debug, Args)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    pub command: ProfilesCommand,
}

/// What to do with profiles.
#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// Show the profile holding an identifier: identities, traits, memberships, recent events.
    Show {
        /// `user_id`, `email` or `anonymous_id`.
        id_type: String,
        /// The identifier's value.
        value: String,
    },
}

const HEADER: [&str; 6] = ["KEY", "KIND", "SIZE", "NAME", "CONNECTIONS", "QUERY"];

fn body(kind: Option<&str>, key: Option<&String>, fields: &DefinitionFields) -> Value {
    let mut body = json!({});
    if let Some(kind) = kind {
        body["kind"] = json!(kind);
    }
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    if let Some(name) = &fields.name {
        body["name"] = json!(name);
    }
    if let Some(query) = &fields.query {
        body["query"] = json!(query);
    }
    body
}

impl AudienceCommand {
    fn admin(&self) -> &AdminArgs {
        match self {
            AudienceCommand::List { admin }
            | AudienceCommand::Preview { admin, .. }
            | AudienceCommand::Create { admin, .. }
            | AudienceCommand::Show { admin, .. }
            | AudienceCommand::Update { admin, .. }
            | AudienceCommand::Delete { admin, .. }
            | AudienceCommand::Connect { admin, .. }
            | AudienceCommand::Disconnect { admin, .. }
            | AudienceCommand::Sync { admin, .. } => admin,
        }
    }
}

/// Runs an admin subcommand of `junction audiences`.
pub async fn run(command: &AudienceCommand) -> anyhow::Result<()> {
    let admin = command.admin();
    let client = AdminClient::new(admin)?;
    let one = |key: &str| format!("/api/v1/audiences/{}", encode(key));
    let connection =
        |key: &str, destination: &str| format!("{}/connections/{}", one(key), encode(destination));
    let data = match command {
        AudienceCommand::List { .. } => {
            let audiences = client.get_all("/api/v1/audiences").await?;
            if admin.json {
                return print_json(&Value::Array(audiences));
            }
            print!("{}", render_list(&audiences));
            return Ok(());
        }
        AudienceCommand::Preview { kind, fields, .. } => {
            let body = body(Some(kind), None, fields);
            let data = client.post("/api/v1/audiences/preview", &body).await?;
            if admin.json {
                return print_json(&data);
            }
            println!(
                "{} of {} profiles ({} events)",
                cell(data.get("size")),
                cell(data.get("profiles")),
                cell(data.get("events"))
            );
            for member in data["sample"].as_array().into_iter().flatten() {
                println!("  {}  {}", member["identifiers"], cell(member.get("value")));
            }
            return Ok(());
        }
        AudienceCommand::Create {
            kind, key, fields, ..
        } => {
            client
                .post("/api/v1/audiences", &body(Some(kind), key.as_ref(), fields))
                .await?
        }
        AudienceCommand::Show { key, .. } => {
            let data = client.get(&one(key)).await?;
            if admin.json {
                return print_json(&data);
            }
            print!("{}", render_list(std::slice::from_ref(&data)));
            for sample in data["history"].as_array().into_iter().flatten() {
                println!("  {}  {}", time(sample.get("at")), cell(sample.get("size")));
            }
            return Ok(());
        }
        AudienceCommand::Update { key, fields, .. } => {
            client.patch(&one(key), &body(None, None, fields)).await?
        }
        AudienceCommand::Delete { key, .. } => client.delete(&one(key)).await?,
        AudienceCommand::Connect {
            key,
            destination,
            every_hours,
            ..
        } => {
            client
                .put(
                    &connection(key, destination),
                    &json!({"every_hours": every_hours}),
                )
                .await?
        }
        AudienceCommand::Disconnect {
            key, destination, ..
        } => client.delete(&connection(key, destination)).await?,
        AudienceCommand::Sync {
            key, destination, ..
        } => {
            client
                .post(
                    &format!("{}/sync", connection(key, destination)),
                    &json!({}),
                )
                .await?
        }
    };
    if admin.json {
        return print_json(&data);
    }
    if data.get("deleted").is_some() || data.get("requested").is_some() {
        println!("{data}");
        return Ok(());
    }
    print!("{}", render_list(std::slice::from_ref(&data)));
    Ok(())
}

/// Runs `junction profiles …`.
pub async fn run_profiles(admin: &AdminArgs, args: &ProfilesArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let ProfilesCommand::Show { id_type, value } = &args.command;
    let data = client
        .get(&format!(
            "/api/v1/profiles/{}/{}",
            encode(id_type),
            encode(value)
        ))
        .await?;
    if admin.json {
        return print_json(&data);
    }
    println!("profile {}", cell(data.get("id")));
    println!("identifiers: {}", data["identifiers"]);
    println!("traits:      {}", data["traits"]);
    println!("values:      {}", data["values"]);
    for event in data["recent_events"].as_array().into_iter().flatten() {
        println!(
            "  {}  {} {}",
            cell(event.get("timestamp")),
            cell(event.get("type")),
            cell(event.get("event"))
        );
    }
    Ok(())
}

/// Audiences as a table.
pub fn render_list(audiences: &[Value]) -> String {
    if audiences.is_empty() {
        return "No audience or computed trait.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = audiences
        .iter()
        .map(|a| {
            let connections: Vec<String> = a["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{} ({})",
                        cell(c.get("destination")),
                        cell(c.get("schedule"))
                    )
                })
                .collect();
            let size = if a["computing"] == json!(true) {
                "computing".to_owned()
            } else {
                cell(a.get("size"))
            };
            vec![
                cell(a.get("key")),
                cell(a.get("kind")),
                size,
                cell(a.get("name")),
                if connections.is_empty() {
                    "-".to_owned()
                } else {
                    connections.join(", ")
                },
                cell(a.get("query")),
            ]
        })
        .collect();
    table::render(&HEADER, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_render_as_a_table() {
        let audiences = vec![json!({"key": "buyers", "kind": "audience", "size": 3,
            "computing": false, "name": "Buyers", "query": "event('A').count() >= 1",
            "connections": [{"destination": "cm", "schedule": "realtime"}]})];
        let text = render_list(&audiences);
        assert!(text.starts_with("KEY"), "{text}");
        assert!(text.contains("buyers"), "{text}");
        assert!(text.contains("cm (realtime)"), "{text}");
        assert!(text.contains(" 3 "), "{text}");
    }
}

//! `junction sources`: list, create, rename and delete sources, add and revoke write keys.
//!
//! Write keys are shown masked, except the one a call just created (the only time it exists in
//! full outside the server).

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{cell, print_json};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Arguments of `junction sources`.
#[derive(Debug, Args)]
pub struct SourcesArgs {
    #[command(subcommand)]
    pub command: SourcesCommand,
}

/// What to do with sources.
#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// List the sources (write keys masked).
    List,
    /// Create a source; its write key is printed once.
    Create {
        /// Its display name.
        name: String,
        /// Its id (made from the name when absent).
        #[arg(long)]
        id: Option<String>,
        /// Its write key (generated when absent).
        #[arg(long)]
        write_key: Option<String>,
    },
    /// Rename a source.
    Rename {
        /// The source's id.
        id: String,
        /// Its new name.
        name: String,
    },
    /// Delete a source (refused while a destination is connected to it).
    Delete {
        /// The source's id.
        id: String,
    },
    /// Add a write key to a source: the one given, or a generated one (printed once).
    AddKey {
        /// The source's id.
        id: String,
        /// The key (generated when absent).
        key: Option<String>,
    },
    /// Revoke one of a source's write keys (not its last).
    RevokeKey {
        /// The source's id.
        id: String,
        /// The key to revoke.
        key: String,
    },
}

/// Runs `junction sources …`.
pub async fn run(admin: &AdminArgs, args: &SourcesArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let data = match &args.command {
        SourcesCommand::List => {
            let sources = client.get_all("/api/v1/sources").await?;
            if admin.json {
                return print_json(&Value::Array(sources));
            }
            print!("{}", render_list(&sources));
            return Ok(());
        }
        SourcesCommand::Create {
            name,
            id,
            write_key,
        } => {
            let mut body = json!({"name": name});
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            if let Some(key) = write_key {
                body["write_keys"] = json!([key]);
            }
            client.post("/api/v1/sources", &body).await?
        }
        SourcesCommand::Rename { id, name } => {
            client
                .patch(
                    &format!("/api/v1/sources/{}", encode(id)),
                    &json!({"name": name}),
                )
                .await?
        }
        SourcesCommand::Delete { id } => {
            client
                .delete(&format!("/api/v1/sources/{}", encode(id)))
                .await?
        }
        SourcesCommand::AddKey { id, key } => {
            let body = key
                .as_ref()
                .map_or_else(|| json!({}), |key| json!({"write_key": key}));
            client
                .post(&format!("/api/v1/sources/{}/write-keys", encode(id)), &body)
                .await?
        }
        SourcesCommand::RevokeKey { id, key } => {
            client
                .post(
                    &format!("/api/v1/sources/{}/write-keys/revoke", encode(id)),
                    &json!({"write_key": key}),
                )
                .await?
        }
    };
    if admin.json {
        return print_json(&data);
    }
    print!("{}", render_one(&args.command, &data));
    Ok(())
}

/// The sources as a table.
pub fn render_list(sources: &[Value]) -> String {
    if sources.is_empty() {
        return "No source.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = sources.iter().map(row).collect();
    table::render(&["ID", "NAME", "WRITE KEYS"], &rows)
}

fn row(source: &Value) -> Vec<String> {
    let keys: Vec<String> = source
        .get("write_keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|key| cell(Some(key)))
        .collect();
    vec![
        cell(source.get("id")),
        cell(source.get("name")),
        keys.join(" "),
    ]
}

/// What a change did, in a sentence or a one-row table.
fn render_one(command: &SourcesCommand, data: &Value) -> String {
    let id = cell(data.get("id"));
    let mut out = match command {
        SourcesCommand::Delete { .. } => return format!("Source {id} deleted.\n"),
        SourcesCommand::RevokeKey { .. } => format!("Write key revoked from source {id}.\n"),
        _ => table::render(&["ID", "NAME", "WRITE KEYS"], &[row(data)]),
    };
    // The key this call generated: shown in full once, so that it can be used (a key the caller
    // gave is not echoed).
    let generated = matches!(
        command,
        SourcesCommand::Create {
            write_key: None,
            ..
        } | SourcesCommand::AddKey { key: None, .. }
    );
    if let Some(key) = data.get("write_key").and_then(Value::as_str)
        && generated
    {
        out.push_str(&format!("New write key (shown only now): {key}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_show_masked_keys_and_a_new_key_once() {
        let listed = vec![json!({"id": "web", "name": "Web", "write_keys": ["wk_0…", "…"]})];
        assert_eq!(
            render_list(&listed),
            "ID   NAME  WRITE KEYS\nweb  Web   wk_0… …\n"
        );
        assert_eq!(render_list(&[]), "No source.\n");
        let created = json!({"id": "web", "name": "Web", "write_keys": ["wk_0…"],
                             "write_key": "wk_0123456789abcdef"});
        let generated = SourcesCommand::AddKey {
            id: "web".to_owned(),
            key: None,
        };
        let out = render_one(&generated, &created);
        assert!(out.ends_with("New write key (shown only now): wk_0123456789abcdef\n"));
        let given = SourcesCommand::AddKey {
            id: "web".to_owned(),
            key: Some("wk_0123456789abcdef".to_owned()),
        };
        assert!(!render_one(&given, &created).contains("wk_0123456789abcdef"));
    }
}

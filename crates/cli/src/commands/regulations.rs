//! `junction regulations`: deleting and suppressing a person — create a regulation, list the
//! audit log, show one with what was done.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{cell, print_json, time};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Arguments of `junction regulations`.
#[derive(Debug, Args)]
pub struct RegulationsArgs {
    #[command(subcommand)]
    pub command: RegulationsCommand,
}

/// The `regulations` subcommands.
#[derive(Debug, Subcommand)]
pub enum RegulationsCommand {
    /// Ask for a person's data to be deleted and/or new data suppressed; carried out in the
    /// background over the whole resolved profile (`show` follows it).
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// SUPPRESS, UNSUPPRESS, SUPPRESS_WITH_DELETE, DELETE_ONLY or DELETE_INTERNAL.
        #[arg(long = "type")]
        kind: String,
        /// A `userId` of the person (repeatable).
        #[arg(long = "user-id")]
        user_ids: Vec<String>,
        /// An email of the person (repeatable).
        #[arg(long = "email")]
        emails: Vec<String>,
        /// An `anonymousId` of the person (repeatable).
        #[arg(long = "anonymous-id")]
        anonymous_ids: Vec<String>,
    },
    /// List regulations, newest first: the audit log.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show one regulation: its status, the identifiers it covered (hashed) and what was done.
    Show {
        #[command(flatten)]
        admin: AdminArgs,
        /// Its id.
        id: String,
    },
}

impl RegulationsCommand {
    fn admin(&self) -> &AdminArgs {
        match self {
            RegulationsCommand::Create { admin, .. }
            | RegulationsCommand::List { admin }
            | RegulationsCommand::Show { admin, .. } => admin,
        }
    }
}

/// Runs a `regulations` subcommand.
pub async fn run(args: &RegulationsArgs) -> anyhow::Result<()> {
    let command = &args.command;
    let admin = command.admin();
    let client = AdminClient::new(admin)?;
    let data = match command {
        RegulationsCommand::Create {
            kind,
            user_ids,
            emails,
            anonymous_ids,
            ..
        } => {
            let identifiers: Vec<Value> = [
                ("user_id", user_ids),
                ("email", emails),
                ("anonymous_id", anonymous_ids),
            ]
            .into_iter()
            .flat_map(|(id_type, values)| {
                values
                    .iter()
                    .map(move |value| json!({"type": id_type, "value": value}))
            })
            .collect();
            if identifiers.is_empty() {
                anyhow::bail!("name the person: --user-id, --email or --anonymous-id");
            }
            let body = json!({"type": kind, "identifiers": identifiers});
            client.post("/api/v1/regulations", &body).await?
        }
        RegulationsCommand::List { .. } => {
            let answer = client.get_full("/api/v1/regulations").await?;
            if admin.json {
                return print_json(&answer);
            }
            let regulations = answer
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            print!("{}", render_list(&regulations));
            return Ok(());
        }
        RegulationsCommand::Show { id, .. } => {
            client
                .get(&format!("/api/v1/regulations/{}", encode(id)))
                .await?
        }
    };
    if admin.json {
        return print_json(&data);
    }
    print!("{}", render_one(&data));
    Ok(())
}

fn count(regulation: &Value, key: &str) -> String {
    cell(regulation.get("counts").and_then(|counts| counts.get(key)))
}

/// The audit log as a table.
fn render_list(regulations: &[Value]) -> String {
    if regulations.is_empty() {
        return "No regulation yet: `junction regulations create` asks for one.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = regulations
        .iter()
        .map(|regulation| {
            vec![
                cell(regulation.get("id")),
                cell(regulation.get("type")),
                cell(regulation.get("status")),
                time(regulation.get("created_at")),
                time(regulation.get("finished_at")),
                regulation
                    .get("covered_identifiers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
                    .to_string(),
                count(regulation, "events_deleted"),
                count(regulation, "profiles_deleted"),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "TYPE",
            "STATUS",
            "CREATED",
            "FINISHED",
            "IDENTIFIERS",
            "EVENTS DELETED",
            "PROFILES DELETED",
        ],
        &rows,
    )
}

/// One regulation, field by field.
fn render_one(regulation: &Value) -> String {
    let mut out = format!(
        "regulation {} ({}): {}\ncreated:  {}\nfinished: {}\n",
        cell(regulation.get("id")),
        cell(regulation.get("type")),
        cell(regulation.get("status")),
        time(regulation.get("created_at")),
        time(regulation.get("finished_at")),
    );
    out.push_str("covered identifiers (keyed hashes):\n");
    for identifier in regulation
        .get("covered_identifiers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "  {:<12} {}\n",
            cell(identifier.get("type")),
            cell(identifier.get("hash"))
        ));
    }
    for key in [
        "profiles_deleted",
        "events_deleted",
        "jobs_deleted",
        "jobs_cancelled",
        "suppressed",
        "unsuppressed",
    ] {
        out.push_str(&format!("{key}: {}\n", count(regulation, key)));
    }
    out.push_str(&format!("note: {}\n", cell(regulation.get("note"))));
    if let Some(reason) = regulation.get("reason").filter(|reason| !reason.is_null()) {
        out.push_str(&format!("reason: {}\n", cell(Some(reason))));
    }
    out
}

//! `junction test-event DESTINATION`: an event through every enabled mapping of a destination,
//! sent for real by the server, with each mapping's result.

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

use super::{cell, print_json};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// The event a tester runs, given inline or in a file.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// The event, as JSON.
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub event: Option<String>,
    /// A file holding the event as JSON; `-` reads stdin.
    #[arg(long)]
    pub file: Option<String>,
}

impl EventArgs {
    /// The event, parsed.
    pub fn read(&self) -> anyhow::Result<Value> {
        let text = match (&self.event, &self.file) {
            (Some(event), _) => event.clone(),
            (None, Some(path)) if path == "-" => {
                std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
            }
            (None, Some(path)) => {
                std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
            }
            (None, None) => anyhow::bail!("give the event with --event or --file"),
        };
        serde_json::from_str(&text).context("the event is not valid JSON")
    }
}

/// Arguments of `junction test-event`.
#[derive(Debug, Args)]
pub struct TestEventArgs {
    /// The destination's id.
    pub destination: String,
    #[command(flatten)]
    pub event: EventArgs,
}

/// Runs the event tester and prints, per mapping: matched, outcome, status and error.
pub async fn run(admin: &AdminArgs, args: &TestEventArgs) -> anyhow::Result<()> {
    let event = args.event.read()?;
    let client = AdminClient::new(admin)?;
    let path = format!(
        "/api/v1/destinations/{}/test-event",
        encode(&args.destination)
    );
    let data = client.post(&path, &json!({"event": event})).await?;
    if admin.json {
        return print_json(&data);
    }
    print!("{}", render(&data));
    Ok(())
}

/// One row per mapping tested.
pub fn render(data: &Value) -> String {
    let rows: Vec<Vec<String>> = data
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|result| {
            let status = result
                .pointer("/response/status")
                .or_else(|| result.pointer("/error/status"));
            vec![
                cell(result.get("mapping_id")),
                cell(result.get("matched")),
                cell(result.get("outcome")),
                cell(status),
                cell(result.pointer("/error/message")),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "The destination has no enabled mapping.\n".to_owned();
    }
    table::render(&["MAPPING", "MATCHED", "OUTCOME", "STATUS", "ERROR"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_show_outcome_status_and_error() {
        let data = json!({"results": [
            {"mapping_id": "send-contact", "matched": true, "outcome": "sent",
             "response": {"status": 200}, "error": null},
            {"mapping_id": "send-customer", "matched": false, "outcome": "not_matched",
             "response": null, "error": null},
            {"mapping_id": "x", "matched": true, "outcome": "http_error",
             "response": {"status": 404}, "error": {"message": "Not Found", "status": 404}},
        ]});
        assert_eq!(
            render(&data),
            "MAPPING        MATCHED  OUTCOME      STATUS  ERROR\n\
             send-contact   true     sent         200     -\n\
             send-customer  false    not_matched  -       -\n\
             x              true     http_error   404     Not Found\n"
        );
        assert_eq!(
            render(&json!({"results": []})),
            "The destination has no enabled mapping.\n"
        );
    }
}

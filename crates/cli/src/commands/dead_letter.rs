//! `junction dead-letter` (list) and `junction replay`.

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::{cell, print_json, time};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Which dead-letter jobs: the admin API's filters.
#[derive(Debug, Default, Args)]
pub struct FilterArgs {
    /// Only this destination's jobs.
    #[arg(long)]
    pub destination: Option<String>,
    /// Only this mapping's jobs.
    #[arg(long)]
    pub mapping: Option<String>,
    /// Only jobs that ended in this state (`discarded` or `expired`).
    #[arg(long)]
    pub state: Option<String>,
    /// Only jobs whose last attempt failed with this class (`http_status`, `timeout`, …).
    #[arg(long)]
    pub error_class: Option<String>,
    /// Only jobs that entered the dead letter at or after this time (Unix milliseconds).
    #[arg(long)]
    pub since: Option<i64>,
    /// Only jobs that entered the dead letter before this time (Unix milliseconds).
    #[arg(long)]
    pub until: Option<i64>,
    /// Include jobs already replayed.
    #[arg(long)]
    pub include_replayed: bool,
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

impl FilterArgs {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let mut add = |key, value: Option<String>| {
            if let Some(value) = value {
                pairs.push((key, value));
            }
        };
        add("destination_id", self.destination.clone());
        add("mapping_id", self.mapping.clone());
        add("state", self.state.clone());
        add("error_class", self.error_class.clone());
        add("since", self.since.map(|v| v.to_string()));
        add("until", self.until.map(|v| v.to_string()));
        if self.include_replayed {
            pairs.push(("include_replayed", "true".to_owned()));
        }
        pairs.push(("limit", self.limit.to_string()));
        pairs
    }
}

/// Arguments of `junction dead-letter`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// How replayed jobs get their request.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// The stored request, byte for byte.
    AsIs,
    /// Mapped again from the stored event through the mapping as it is now.
    Remapped,
}

/// Arguments of `junction replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The dead-letter jobs to replay; without any, those the filter selects.
    pub job_ids: Vec<i64>,
    /// As-is, or re-mapped through the mappings as they are now.
    #[arg(long, value_enum, default_value = "as-is")]
    pub mode: Mode,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Lists the dead letter.
pub async fn list(admin: &AdminArgs, args: &ListArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let query: Vec<String> = args
        .filter
        .pairs()
        .into_iter()
        .map(|(key, value)| format!("{key}={}", encode(&value)))
        .collect();
    let data = client
        .get(&format!("/api/v1/dead-letter?{}", query.join("&")))
        .await?;
    if admin.json {
        return print_json(&data);
    }
    let rows: Vec<Vec<String>> = data
        .as_array()
        .into_iter()
        .flatten()
        .map(|job| {
            vec![
                cell(job.get("id")),
                cell(job.get("destination_id")),
                cell(job.get("mapping_id")),
                cell(job.get("state")),
                cell(job.get("status")),
                cell(job.get("error_class")),
                cell(job.get("attempts")),
                time(job.get("dead_at")),
                cell(job.get("detail")),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("The dead letter holds no job matching the filter.");
        return Ok(());
    }
    print!(
        "{}",
        table::render(
            &[
                "JOB",
                "DESTINATION",
                "MAPPING",
                "STATE",
                "STATUS",
                "ERROR",
                "ATTEMPTS",
                "AT",
                "DETAIL"
            ],
            &rows
        )
    );
    Ok(())
}

/// Replays a selection of the dead letter.
pub async fn replay(admin: &AdminArgs, args: &ReplayArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let mode = match args.mode {
        Mode::AsIs => "as_is",
        Mode::Remapped => "remapped",
    };
    let mut body = json!({"mode": mode});
    if args.job_ids.is_empty() {
        let filter: Map<String, Value> = args
            .filter
            .pairs()
            .into_iter()
            .map(|(key, value)| {
                let value = match key {
                    "since" | "until" | "limit" => value
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(Value::String(value)),
                    "include_replayed" => Value::Bool(true),
                    _ => Value::String(value),
                };
                (key.to_owned(), value)
            })
            .collect();
        body["filter"] = Value::Object(filter);
    } else {
        body["job_ids"] = json!(args.job_ids);
    }
    let data = client.post("/api/v1/dead-letter/replay", &body).await?;
    if admin.json {
        return print_json(&data);
    }
    let replayed = data.get("replayed").and_then(Value::as_array);
    let failed = data.get("failed").and_then(Value::as_array);
    for pair in replayed.into_iter().flatten() {
        println!(
            "job {} replayed as job {}",
            cell(pair.get("job_id")),
            cell(pair.get("replay_id"))
        );
    }
    for failure in failed.into_iter().flatten() {
        println!(
            "job {} not replayed: {}",
            cell(failure.get("job_id")),
            cell(failure.get("reason"))
        );
    }
    println!(
        "{} replayed, {} not replayed",
        replayed.map_or(0, Vec::len),
        failed.map_or(0, Vec::len)
    );
    Ok(())
}

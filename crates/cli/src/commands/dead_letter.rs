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
    // In pages, so that a large replay shows its progress and no request runs for long.
    let (mut replayed, mut failed) = (Vec::new(), Vec::new());
    if args.job_ids.is_empty() {
        let total = args.filter.limit;
        let mut after: Option<i64> = None;
        while replayed.len() + failed.len() < total {
            let mut filter = filter_object(&args.filter);
            let page = (total - replayed.len() - failed.len()).min(REPLAY_PAGE);
            filter.insert("limit".to_owned(), Value::from(page));
            if let Some(after) = after {
                filter.insert("after".to_owned(), Value::from(after));
            }
            let body = json!({"mode": mode, "filter": filter});
            let data = client.post("/api/v1/dead-letter/replay", &body).await?;
            let (done, not_done) = page_results(&data);
            if done.is_empty() && not_done.is_empty() {
                break;
            }
            after = done
                .iter()
                .chain(&not_done)
                .filter_map(|item| item.get("job_id").and_then(Value::as_i64))
                .max();
            replayed.extend(done);
            failed.extend(not_done);
            progress(admin, replayed.len(), failed.len(), total);
        }
    } else {
        let total = args.job_ids.len();
        for chunk in args.job_ids.chunks(REPLAY_PAGE) {
            let body = json!({"mode": mode, "job_ids": chunk});
            let data = client.post("/api/v1/dead-letter/replay", &body).await?;
            let (done, not_done) = page_results(&data);
            replayed.extend(done);
            failed.extend(not_done);
            if total > REPLAY_PAGE {
                progress(admin, replayed.len(), failed.len(), total);
            }
        }
    }
    if admin.json {
        return print_json(&json!({"replayed": replayed, "failed": failed}));
    }
    for pair in &replayed {
        println!(
            "job {} replayed as job {}",
            cell(pair.get("job_id")),
            cell(pair.get("replay_id"))
        );
    }
    for failure in &failed {
        println!(
            "job {} not replayed: {}",
            cell(failure.get("job_id")),
            cell(failure.get("reason"))
        );
    }
    println!("{} replayed, {} not replayed", replayed.len(), failed.len());
    Ok(())
}

/// Jobs replayed per request.
const REPLAY_PAGE: usize = 100;

/// The filter as the replay request's `filter` object (without `limit`, set per page).
fn filter_object(filter: &FilterArgs) -> Map<String, Value> {
    filter
        .pairs()
        .into_iter()
        .filter(|(key, _)| *key != "limit")
        .map(|(key, value)| {
            let value = match key {
                "since" | "until" => value
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(value)),
                "include_replayed" => Value::Bool(true),
                _ => Value::String(value),
            };
            (key.to_owned(), value)
        })
        .collect()
}

/// A replay answer's `replayed` and `failed` lists.
fn page_results(data: &Value) -> (Vec<Value>, Vec<Value>) {
    let list = |key: &str| {
        data.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    (list("replayed"), list("failed"))
}

/// Progress on stderr, so that stdout keeps only the result.
fn progress(admin: &AdminArgs, replayed: usize, failed: usize, total: usize) {
    if !admin.json {
        eprintln!("replay: {replayed} replayed, {failed} not replayed (of at most {total})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_filter_leaves_the_page_size_to_each_request() {
        let filter = FilterArgs {
            destination: Some("cm".to_owned()),
            since: Some(5),
            include_replayed: true,
            limit: 250,
            ..FilterArgs::default()
        };
        let object = filter_object(&filter);
        assert_eq!(
            Value::Object(object),
            json!({"destination_id": "cm", "since": 5, "include_replayed": true})
        );
        let (done, failed) = page_results(&json!({"replayed": [{"job_id": 1}], "failed": []}));
        assert_eq!((done.len(), failed.len()), (1, 0));
        assert_eq!(page_results(&Value::Null), (Vec::new(), Vec::new()));
    }
}

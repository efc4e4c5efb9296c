//! `junction overview DESTINATION`: the delivery overview's totals over a window, for the
//! destination and each of its mappings; the time series with `--json`.

use clap::Args;
use serde_json::Value;

use super::{cell, print_json, time};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Arguments of `junction overview`.
#[derive(Debug, Args)]
pub struct OverviewArgs {
    /// The destination's id.
    pub destination: String,
    /// The window: 10m, 1h, 24h, 7d, 14d, any <n>m|h|d, or seconds.
    #[arg(long, default_value = "1h")]
    pub window: String,
    /// The series' bucket: minute, hour or day (by default minutes up to 6 hours).
    #[arg(long)]
    pub bucket: Option<String>,
    /// One mapping only.
    #[arg(long)]
    pub mapping: Option<String>,
}

/// Prints the overview.
pub async fn run(admin: &AdminArgs, args: &OverviewArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let mut path = format!(
        "/api/v1/destinations/{}/overview?window={}",
        encode(&args.destination),
        encode(&args.window)
    );
    if let Some(bucket) = &args.bucket {
        path.push_str(&format!("&bucket={}", encode(bucket)));
    }
    if let Some(mapping) = &args.mapping {
        path.push_str(&format!("&mapping_id={}", encode(mapping)));
    }
    let data = client.get(&path).await?;
    if admin.json {
        return print_json(&data);
    }
    print!("{}", render(&data));
    Ok(())
}

const HEADER: [&str; 12] = [
    "SCOPE",
    "RECEIVED",
    "FILTERED",
    "NOT MATCHED",
    "DISCARDED",
    "JOBS",
    "AWAITING RETRY",
    "RETRIED",
    "FAILED",
    "DELIVERED",
    "P50 MS",
    "P95 MS",
];

/// A count given as a number or as `{count, …}`.
fn count(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::Object(object)) => object.get("count").and_then(Value::as_u64).unwrap_or(0),
        _ => 0,
    }
}

fn row(scope: String, totals: &Value) -> Vec<String> {
    let discarded: u64 = totals
        .get("discarded")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(_, reason)| count(Some(reason)))
        .sum();
    vec![
        scope,
        count(totals.get("received")).to_string(),
        count(totals.get("filtered_by_integrations")).to_string(),
        count(totals.get("not_matched")).to_string(),
        discarded.to_string(),
        count(totals.get("jobs")).to_string(),
        count(totals.get("awaiting_retry")).to_string(),
        count(totals.get("retried")).to_string(),
        count(totals.get("failed")).to_string(),
        count(totals.get("delivered")).to_string(),
        cell(totals.pointer("/latency_ms/p50")),
        cell(totals.pointer("/latency_ms/p95")),
    ]
}

/// The window, then the totals of the destination and of each mapping.
pub fn render(data: &Value) -> String {
    let mut rows = Vec::new();
    if let Some(totals) = data.pointer("/totals/destination") {
        rows.push(row(
            format!("destination {}", cell(data.get("destination_id"))),
            totals,
        ));
    }
    if let Some(mappings) = data.pointer("/totals/mappings").and_then(Value::as_object) {
        for (id, totals) in mappings {
            rows.push(row(format!("mapping {id}"), totals));
        }
    }
    let mut out = format!(
        "From {} to {} (by {}):\n{}",
        time(data.pointer("/window/from")),
        time(data.pointer("/window/until")),
        cell(data.pointer("/window/bucket")),
        table::render(&HEADER, &rows)
    );
    for lane in data
        .get("lanes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut state = format!(
            "Lane {}: limit {}, {} in flight",
            cell(lane.get("host")),
            cell(lane.get("limit")),
            cell(lane.get("in_flight"))
        );
        if lane.get("failing") == Some(&Value::Bool(true)) {
            state.push_str(", failing");
        }
        if lane
            .get("paused_until")
            .is_some_and(|until| !until.is_null())
        {
            state.push_str(&format!(
                ", paused until {} ({})",
                time(lane.get("paused_until")),
                cell(lane.get("pause_reason"))
            ));
        }
        out.push_str(&state);
        out.push('\n');
    }
    let failures = data
        .pointer("/totals/destination/failures")
        .and_then(Value::as_array)
        .filter(|failures| !failures.is_empty());
    if let Some(failures) = failures {
        out.push_str("Latest failures (junction lookup MESSAGE_ID tells the whole story):\n");
        for failure in failures {
            out.push_str(&format!(
                "  {}  {}  {} attempt {}: {}: {}\n",
                time(failure.get("at")),
                cell(failure.get("message_id")),
                cell(failure.get("mapping_id")),
                cell(failure.get("attempt")),
                cell(failure.get("state")),
                cell(failure.get("reason"))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn totals_render_a_row_per_scope() {
        let totals = json!({"received": 4, "filtered_by_integrations": {"count": 0},
                            "not_matched": {"count": 1}, "discarded": {"invalid": {"count": 2}},
                            "jobs": 3, "awaiting_retry": 0, "retried": 1,
                            "failed": {"count": 1}, "delivered": 2,
                            "latency_ms": {"count": 2, "p50": 12, "p95": null}});
        let data = json!({"destination_id": "cm",
                          "window": {"from": 0, "until": 3_600_000, "bucket": "minute"},
                          "totals": {"destination": totals, "mappings": {"m": totals}}});
        let out = render(&data);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "From 1970-01-01T00:00:00Z to 1970-01-01T01:00:00Z (by minute):"
        );
        assert!(lines[1].starts_with("SCOPE           RECEIVED"), "{out}");
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            [
                "destination",
                "cm",
                "4",
                "0",
                "1",
                "2",
                "3",
                "0",
                "1",
                "1",
                "2",
                "12",
                "-"
            ]
        );
        assert!(lines[3].starts_with("mapping m "), "{out}");
        assert_eq!(lines.len(), 4, "no failures, no failure lines: {out}");

        let mut data = data;
        data["lanes"] = json!([{"host": "h.example", "limit": 1, "in_flight": 0, "held": 3,
                                "failing": true, "paused_until": 120_000,
                                "pause_reason": "Retry-After of 60 s on 429 Too Many Requests"}]);
        let out = render(&data);
        assert!(
            out.ends_with(
                "Lane h.example: limit 1, 0 in flight, failing, paused until \
                 1970-01-01T00:02:00Z (Retry-After of 60 s on 429 Too Many Requests)\n"
            ),
            "{out}"
        );
        data["totals"]["destination"]["failures"] = json!([{
            "message_id": "msg-1", "mapping_id": "send-contact", "at": 60_000, "attempt": 2,
            "state": "awaiting_retry", "reason": "DNS lookup of webhook.invalid failed: no such host"
        }]);
        let out = render(&data);
        assert!(
            out.ends_with(
                "Latest failures (junction lookup MESSAGE_ID tells the whole story):\n  \
                 1970-01-01T00:01:00Z  msg-1  send-contact attempt 2: awaiting_retry: DNS lookup \
                 of webhook.invalid failed: no such host\n"
            ),
            "{out}"
        );
    }
}

//! `junction lookup MESSAGE_ID`: the whole story of an event.

use clap::Args;
use serde_json::Value;

use super::{cell, print_json, time};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Arguments of `junction lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// The event's messageId.
    pub message_id: String,
    /// Only this source's event with that messageId.
    #[arg(long)]
    pub source: Option<String>,
}

/// Prints what happened to the event: routing outcomes, jobs, transitions and attempts.
pub async fn run(admin: &AdminArgs, args: &LookupArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let mut path = format!("/api/v1/events/{}", encode(&args.message_id));
    if let Some(source) = &args.source {
        path.push_str(&format!("?source={}", encode(source)));
    }
    let data = client.get(&path).await?;
    if admin.json {
        return print_json(&data);
    }
    print!("{}", render(&data));
    Ok(())
}

/// An attempt's failure: its class and why (`dns: DNS lookup of … failed: no such host`), or
/// `-` for a success.
fn attempt_error(attempt: &Value) -> String {
    match (
        attempt.get("error_class").and_then(Value::as_str),
        attempt.get("error").and_then(Value::as_str),
    ) {
        (Some(class), Some(why)) => format!("{class}: {why}"),
        (Some(class), None) => class.to_owned(),
        (None, _) => "-".to_owned(),
    }
}

fn render(data: &Value) -> String {
    let mut out = String::new();
    let events = data.get("events").and_then(Value::as_array);
    for event in events.into_iter().flatten() {
        out.push_str(&format!(
            "event {} of source {} received {}\n",
            cell(event.get("id")),
            cell(event.get("source_id")),
            time(event.get("received_at"))
        ));
        let duplicates = event.get("duplicates").and_then(Value::as_array);
        if let Some(duplicates) = duplicates.filter(|d| !d.is_empty()) {
            out.push_str(&format!(
                "  {} duplicate(s) acknowledged\n",
                duplicates.len()
            ));
        }
        for discard in event
            .get("discards")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push_str(&format!(
                "  not sent: destination {} mapping {}: {} ({})\n",
                cell(discard.get("destination_id")),
                cell(discard.get("mapping_id")),
                cell(discard.get("reason")),
                cell(discard.get("message"))
            ));
        }
        for job in event
            .get("jobs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push_str(&format!(
                "  job {} to destination {} mapping {}: {}{}\n",
                cell(job.get("id")),
                cell(job.get("destination_id")),
                cell(job.get("mapping_id")),
                cell(job.get("state")),
                job.get("replay_of")
                    .filter(|r| !r.is_null())
                    .map(|r| format!(" (replay of job {r})"))
                    .unwrap_or_default()
            ));
            if let Some(url) = job.pointer("/request/url").filter(|url| !url.is_null()) {
                let from = job
                    .pointer("/request/url_setting")
                    .and_then(Value::as_str)
                    .map(|key| format!(" (setting {key}, as it is now)"))
                    .unwrap_or_default();
                out.push_str(&format!("    to {}{from}\n", cell(Some(url))));
            }
            let attempts: Vec<Vec<String>> = job
                .get("attempts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|attempt| {
                    vec![
                        format!("    {}", cell(attempt.get("attempt"))),
                        time(attempt.get("started_at")),
                        format!("{} ms", cell(attempt.get("duration_ms"))),
                        cell(attempt.get("status")),
                        attempt_error(attempt),
                    ]
                })
                .collect();
            if !attempts.is_empty() {
                out.push_str(&table::render(
                    &["    ATTEMPT", "STARTED", "DURATION", "STATUS", "ERROR"],
                    &attempts,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_story_reads_top_down() {
        let data = json!({"events": [{
            "id": 1, "source_id": "app", "received_at": 0, "duplicates": [5],
            "discards": [{"destination_id": "cm", "mapping_id": "c", "reason": "not_matched",
                          "message": "trigger did not match"}],
            "jobs": [{"id": 7, "destination_id": "cm", "mapping_id": "p", "state": "succeeded",
                      "replay_of": null,
                      "request": {"url": "https://h.example/…",
                                  "url_setting": "chartmogul_webhook_url"},
                      "attempts": [{"attempt": 1, "started_at": 0, "duration_ms": 3,
                                    "status": 200, "error_class": null},
                                   {"attempt": 2, "started_at": 0, "duration_ms": 3,
                                    "status": null, "error_class": "dns",
                                    "error": "DNS lookup of h.example failed: no such host"}]}]
        }]});
        let text = render(&data);
        assert!(text.starts_with("event 1 of source app received 1970-01-01T00:00:00Z\n"));
        assert!(text.contains("  1 duplicate(s) acknowledged\n"));
        assert!(text.contains("not sent: destination cm mapping c: not_matched"));
        assert!(text.contains("  job 7 to destination cm mapping p: succeeded\n"));
        assert!(
            text.contains(
                "    to https://h.example/… (setting chartmogul_webhook_url, as it is now)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("    1        1970-01-01T00:00:00Z  3 ms      200     -\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    2        1970-01-01T00:00:00Z  3 ms      -       dns: DNS lookup of h.example failed: no such host\n"
            ),
            "{text}"
        );
    }
}

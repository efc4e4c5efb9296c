//! `junction send`: sends sample or given events to a Tracking API, as a Segment library would,
//! to try Junction out.

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

/// Arguments of `junction send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The write key of the source to send to.
    #[arg(long, env = "JUNCTION_WRITE_KEY", hide_env_values = true)]
    pub write_key: String,
    /// The Tracking API's base URL.
    #[arg(
        long,
        env = "JUNCTION_TRACKING_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub tracking_url: String,
    /// A file of events (one JSON object per line, or a JSON array); `-` reads stdin. Without
    /// it, a sample identify and group call are sent.
    #[arg(long)]
    pub file: Option<String>,
    /// How many copies of the sample calls to send (each with its own user and messageId).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Print the Tracking API's answers as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Sends the events in one `/v1/batch` call per 100 and prints what the server answered.
pub async fn run(args: &SendArgs) -> anyhow::Result<()> {
    let events = match &args.file {
        Some(path) => read_events(path)?,
        None => samples(args.count),
    };
    junction_delivery::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/batch", args.tracking_url.trim_end_matches('/'));
    let (mut accepted, mut rejected) = (0u64, Vec::new());
    for chunk in events.chunks(100) {
        let response = client
            .post(&url)
            .basic_auth(&args.write_key, Some(""))
            .json(&json!({"batch": chunk}))
            .send()
            .await
            .with_context(|| format!("cannot reach the Tracking API at {}", args.tracking_url))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!(
                "the Tracking API answered {status}: {}",
                body.get("error").and_then(Value::as_str).unwrap_or("")
            );
        }
        accepted += body.get("accepted").and_then(Value::as_u64).unwrap_or(0);
        if let Some(items) = body.get("rejected").and_then(Value::as_array) {
            rejected.extend(items.iter().cloned());
        }
    }
    if args.json {
        return super::print_json(&json!({"accepted": accepted, "rejected": rejected}));
    }
    println!("{accepted} event(s) accepted, {} rejected", rejected.len());
    for item in rejected {
        println!(
            "  item {}: {}",
            super::cell(item.get("index")),
            super::cell(item.get("error"))
        );
    }
    Ok(())
}

fn read_events(path: &str) -> anyhow::Result<Vec<Value>> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
    };
    if let Ok(Value::Array(events)) = serde_json::from_str(&text) {
        return Ok(events);
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).with_context(|| format!("{path}, line {}", n + 1))
        })
        .collect()
}

/// `count` pairs of an identify (a contact) and a group (a customer) call.
fn samples(count: usize) -> Vec<Value> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..8];
    (0..count)
        .flat_map(|n| {
            let user = format!("user-{run}-{n}");
            [
                json!({"type": "identify", "userId": user, "messageId": format!("{run}-identify-{n}"),
                       "traits": {"email": format!("{user}@example.com"), "name": format!("Sample User {n}"),
                                  "company": {"id": format!("company-{run}-{n}"), "name": "Sample Co"}}}),
                json!({"type": "group", "userId": user, "groupId": format!("company-{run}-{n}"),
                       "messageId": format!("{run}-group-{n}"),
                       "traits": {"name": "Sample Co", "plan": "pro"}}),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_pair_a_contact_with_its_company() {
        let events = samples(2);
        assert_eq!(events.len(), 4);
        assert_eq!(events[0]["type"], "identify");
        assert_eq!(events[1]["groupId"], events[0]["traits"]["company"]["id"]);
        assert_ne!(events[0]["messageId"], events[2]["messageId"]);
    }
}

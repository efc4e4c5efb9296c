//! `junction sandbox`: what the sandbox webhook received (the requests a destination pointed at
//! the sandbox delivered), newest first; `--clear` forgets them.

use clap::Args;
use serde_json::Value;

use super::{cell, print_json, time};
use crate::client::{AdminArgs, AdminClient, encode};
use crate::table;

/// Arguments of `junction sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Only what this destination delivered.
    #[arg(long)]
    pub destination: Option<String>,
    /// The most requests shown (1 to 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Forget every request the sandbox kept.
    #[arg(long, conflicts_with_all = ["destination"])]
    pub clear: bool,
}

/// Lists (or clears) what the sandbox received.
pub async fn run(admin: &AdminArgs, args: &SandboxArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    if args.clear {
        let data = client.delete("/api/v1/sandbox/requests").await?;
        if admin.json {
            return print_json(&data);
        }
        println!("Forgot {} request(s).", cell(data.get("cleared")));
        return Ok(());
    }
    let mut path = format!("/api/v1/sandbox/requests?limit={}", args.limit);
    if let Some(destination) = &args.destination {
        path.push_str(&format!("&destination_id={}", encode(destination)));
    }
    let answer = client.get_full(&path).await?;
    if admin.json {
        return print_json(&answer);
    }
    print!("{}", render(&answer));
    Ok(())
}

/// One line per request: when, to which destination, what the sandbox answered, and what the
/// payload was about.
fn render(answer: &Value) -> String {
    let requests = answer
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if requests.is_empty() {
        return "The sandbox has received nothing yet: send an event to a source connected to a \
                destination that points at it.\n"
            .to_owned();
    }
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|request| {
            let body = request.get("body");
            let field = |key: &str| cell(body.and_then(|body| body.get(key)));
            let who = match body.and_then(|body| body.get("group_id")) {
                Some(group) => format!("group {}", cell(Some(group))),
                None => format!("user {}", field("user_id")),
            };
            vec![
                time(request.get("received_at")),
                cell(request.get("destination_id")),
                cell(request.get("status")),
                field("type"),
                field("message_id"),
                who,
                field("email"),
            ]
        })
        .collect();
    let mut out = table::render(
        &[
            "RECEIVED",
            "DESTINATION",
            "ANSWER",
            "TYPE",
            "MESSAGE ID",
            "FOR",
            "EMAIL",
        ],
        &rows,
    );
    out.push_str(&format!(
        "{} received since the start, {} kept; --json shows the bodies\n",
        cell(answer.get("received")),
        cell(answer.get("kept"))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_read_one_per_line() {
        let answer = json!({"received": 3, "kept": 2, "data": [
            {"id": 2, "received_at": 0, "destination_id": "chartmogul", "status": 200,
             "body": {"type": "Send Contact", "message_id": "m-2", "user_id": "u-1",
                      "email": "jane@example.com"}},
            {"id": 1, "received_at": 0, "destination_id": null, "status": 403,
             "body": {"type": "Send Customer", "message_id": "m-1", "group_id": "g-1"}}
        ]});
        let out = render(&answer);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[1],
            [
                "1970-01-01T00:00:00Z",
                "chartmogul",
                "200",
                "Send",
                "Contact",
                "m-2",
                "user",
                "u-1",
                "jane@example.com"
            ]
        );
        assert_eq!(lines[2][1..4], ["-", "403", "Send"]);
        assert!(out.ends_with("3 received since the start, 2 kept; --json shows the bodies\n"));
        assert!(render(&json!({"data": []})).starts_with("The sandbox has received nothing"));
    }
}

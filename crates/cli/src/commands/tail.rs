//! `junction tail SOURCE`: the events a source accepts, one line each (time, type, messageId,
//! userId, routing), followed live from the admin API's Server-Sent Events until Ctrl-C, or the
//! last ones with `--recent`.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;

use super::{cell, print_json, time};
use crate::client::{AdminArgs, AdminClient, encode};

/// Arguments of `junction tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The source's id.
    pub source: String,
    /// Print the last events the source accepted and exit.
    #[arg(long)]
    pub recent: bool,
}

/// Follows (or, with `--recent`, lists) the source's events.
pub async fn run(admin: &AdminArgs, args: &TailArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let base = format!("/api/v1/sources/{}/events", encode(&args.source));
    if args.recent {
        let data = client.get(&format!("{base}/recent")).await?;
        if admin.json {
            return print_json(&data);
        }
        let events = data.as_array().map(Vec::as_slice).unwrap_or_default();
        if events.is_empty() {
            println!("Source {} accepted no event recently.", args.source);
        }
        for event in events {
            println!("{}", line(event));
        }
        return Ok(());
    }
    let mut response = client.stream(&format!("{base}/live")).await?;
    eprintln!(
        "Following the events of source {} (Ctrl-C ends it)…",
        args.source
    );
    let mut parser = SseParser::default();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk.context("the event stream broke")?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(chunk) = chunk else {
            anyhow::bail!("the server closed the event stream");
        };
        let mut out = std::io::stdout().lock();
        for message in parser.push(&chunk) {
            let text = match message.event.as_deref() {
                Some("lagged") => {
                    let skipped: Value = serde_json::from_str(&message.data).unwrap_or_default();
                    format!(
                        "… {} event(s) missed (the terminal fell behind)",
                        cell(skipped.get("skipped"))
                    )
                }
                _ if admin.json => message.data,
                _ => match serde_json::from_str::<Value>(&message.data) {
                    Ok(event) => line(&event),
                    Err(_) => continue,
                },
            };
            writeln!(out, "{text}")?;
        }
        out.flush()?;
    }
}

/// One SSE message: its `event` name, if any, and its `data` lines joined.
#[derive(Debug, PartialEq)]
pub struct Message {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a byte stream into SSE messages (blank-line separated; comments and keep-alives
/// ignored).
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    /// The messages `chunk` completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Message> {
        self.buffer.extend(chunk.iter().filter(|b| **b != b'\r'));
        let mut messages = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let mut event = None;
            let mut data: Vec<&str> = Vec::new();
            for field in text.lines() {
                if let Some(value) = field.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                } else if let Some(value) = field.strip_prefix("event:") {
                    event = Some(value.trim().to_owned());
                }
            }
            if !data.is_empty() {
                messages.push(Message {
                    event,
                    data: data.join("\n"),
                });
            }
        }
        messages
    }
}

/// `time type messageId userId routing` for one debugger event.
pub fn line(view: &Value) -> String {
    let event = view.get("event");
    let field = |key: &str| event.and_then(|e| e.get(key));
    let user = match field("userId") {
        None | Some(Value::Null) => field("anonymousId").map_or_else(
            || "-".to_owned(),
            |anonymous| format!("anon:{}", cell(Some(anonymous))),
        ),
        user => cell(user),
    };
    format!(
        "{}  {}  {}  {}  {}",
        time(view.get("received_at")),
        cell(field("type")),
        cell(view.get("message_id")),
        user,
        routing(view)
    )
}

/// `→ dest/mapping` per job, `✗ dest/mapping (reason)` per discard; `duplicate` for a replay
/// of an accepted messageId.
fn routing(view: &Value) -> String {
    let mut parts = Vec::new();
    if view.get("duplicate").and_then(Value::as_bool) == Some(true) {
        parts.push("duplicate".to_owned());
    }
    for job in view
        .pointer("/routing/jobs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parts.push(format!(
            "→ {}/{}",
            cell(job.get("destination_id")),
            cell(job.get("mapping_id"))
        ));
    }
    for discard in view
        .pointer("/routing/discards")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parts.push(format!(
            "✗ {}/{} ({})",
            cell(discard.get("destination_id")),
            cell(discard.get("mapping_id")),
            cell(discard.get("reason"))
        ));
    }
    if parts.is_empty() {
        "no destination".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_is_one_line_with_its_routing() {
        let view = json!({"source_id": "web", "message_id": "m-1", "received_at": 0,
                          "duplicate": false,
                          "event": {"type": "identify", "userId": "u-1"},
                          "routing": {"jobs": [{"destination_id": "cm", "mapping_id": "c"}],
                                      "discards": [{"destination_id": "cm", "mapping_id": "g",
                                                    "reason": "not_matched"}]}});
        assert_eq!(
            line(&view),
            "1970-01-01T00:00:00Z  identify  m-1  u-1  → cm/c, ✗ cm/g (not_matched)"
        );
        let anonymous = json!({"message_id": "m-2", "received_at": 0,
                               "event": {"type": "page", "anonymousId": "a"},
                               "routing": {"jobs": [], "discards": []}});
        assert!(line(&anonymous).ends_with("page  m-2  anon:a  no destination"));
    }

    #[test]
    fn sse_messages_are_split_across_chunks() {
        let mut parser = SseParser::default();
        assert!(parser.push(b": keep-alive\n\ndata: {\"a\"").is_empty());
        assert_eq!(
            parser.push(b":1}\r\n\r\nevent: lagged\ndata: {\"skipped\":3}\n\n"),
            vec![
                Message {
                    event: None,
                    data: "{\"a\":1}".to_owned()
                },
                Message {
                    event: Some("lagged".to_owned()),
                    data: "{\"skipped\":3}".to_owned()
                },
            ]
        );
    }
}

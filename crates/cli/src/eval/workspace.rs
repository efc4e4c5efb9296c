//! `junction eval --workspace FILE`: plain Segment events, one per line (as a warehouse export
//! gives them), against every destination and mapping of a workspace compiled once; per event,
//! what each mapping would send or why it sends nothing. Nothing is sent.

use std::io::{self, BufRead, Write};

use junction_actions::{Evaluation, HttpRequest, evaluate};
use junction_workspace::{Destination, Snapshot, Source};
use serde::Serialize;
use serde_json::Value;

use super::json;
use super::project::{self, Reads};
use crate::commands::apply::mask_url;

/// What became of an event at one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    /// Its mappings ran: each says what it would send.
    Routed,
    /// The destination is disabled: it receives nothing.
    Disabled,
    /// `--source` names a source that does not feed this destination.
    NotConnected,
    /// The event's `integrations` object excludes this destination.
    FilteredByIntegrations,
}

/// One output line for an event.
#[derive(Debug)]
struct EventLine<'a> {
    /// The line's number in the input (1-based, blank lines counted), to find it again.
    line: u64,
    message_id: Option<&'a Value>,
    destinations: Vec<DestinationResult<'a>>,
}

/// One output line for a line that is not an event.
#[derive(Debug, Serialize)]
struct ErrorLine {
    line: u64,
    error: String,
}

#[derive(Debug)]
struct DestinationResult<'a> {
    id: &'a str,
    status: Status,
    /// Every mapping with its evaluation, in workspace order; empty unless `routed`.
    mappings: Vec<(&'a str, Evaluation)>,
}

impl EventLine<'_> {
    /// Writes the line as JSON: `{"line","message_id","destinations":[{"id","status",
    /// "mappings":[{"id", then the evaluation's members}]}]}`.
    fn write(&self, out: &mut Vec<u8>) -> io::Result<()> {
        out.extend_from_slice(b"{\"line\":");
        serde_json::to_writer(&mut *out, &self.line)?;
        out.extend_from_slice(b",\"message_id\":");
        match self.message_id {
            Some(id) => json::value(out, id)?,
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"destinations\":[");
        for (i, destination) in self.destinations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            json::string(out, destination.id)?;
            out.extend_from_slice(b",\"status\":");
            serde_json::to_writer(&mut *out, &destination.status)?;
            out.extend_from_slice(b",\"mappings\":[");
            for (j, (id, evaluation)) in destination.mappings.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"id\":");
                json::string(out, id)?;
                out.push(b',');
                json::evaluation_members(out, evaluation)?;
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

/// Reads events from `input`, one per line, and writes one JSON line per non-blank line.
/// `source`, when given, limits routing to the destinations it feeds.
pub fn run(
    snapshot: &Snapshot,
    source: Option<&Source>,
    mut input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    // Whether `source` feeds each destination, by index, worked out once.
    let connected: Vec<bool> = snapshot
        .destinations()
        .iter()
        .map(|destination| match source {
            Some(source) => snapshot
                .destinations_of(source)
                .any(|fed| fed.id() == destination.id()),
            None => true,
        })
        .collect();
    let reads = reads(snapshot);
    let mut written = Vec::new();
    let mut number = 0;
    super::for_each_line(&mut input, |line| {
        number += 1;
        if line.trim().is_empty() {
            return Ok(());
        }
        let error = match parse_event(&reads, line) {
            Ok(event @ Value::Object(_)) => {
                let destinations = snapshot
                    .destinations()
                    .iter()
                    .zip(&connected)
                    .map(|(destination, &connected)| route(destination, connected, &event))
                    .collect();
                let result = EventLine {
                    line: number,
                    message_id: event.get("messageId"),
                    destinations,
                };
                written.clear();
                result.write(&mut written)?;
                written.push(b'\n');
                return output.write_all(&written);
            }
            Ok(_) => "an event must be a JSON object".to_owned(),
            Err(err) => format!("invalid JSON: {err}"),
        };
        write_line(
            &mut output,
            &ErrorLine {
                line: number,
                error,
            },
        )
    })?;
    output.flush()
}

/// Parses an event, building what the workspace reads of it; a line that fails is parsed again
/// in full, for the full parse's own error message.
fn parse_event(reads: &Reads, line: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let projected = project::parse(reads, &mut deserializer).and_then(|event| {
        deserializer.end()?;
        Ok(event)
    });
    projected.or_else(|_| serde_json::from_str(line))
}

/// What the workspace can read of an event: every mapping's trigger and mapping, the
/// `integrations` object (routing) and `messageId` (the output).
fn reads(snapshot: &Snapshot) -> Reads {
    let mut reads = Reads::default();
    reads.add_path(["messageId"]);
    reads.add_path(["integrations"]);
    for destination in snapshot.destinations() {
        let saved = snapshot
            .config()
            .destinations
            .iter()
            .find(|saved| saved.id == destination.id());
        for mapping in destination.mappings() {
            let saved =
                saved.and_then(|saved| saved.mappings.iter().find(|m| m.id == mapping.id()));
            // Every compiled mapping was compiled from a saved one; were it not found, reading
            // everything stays correct.
            let Some(saved) = saved else {
                return Reads::everything();
            };
            reads.add_subscription(
                mapping.subscription(),
                saved.mapping.as_ref(),
                saved.use_defaults,
            );
        }
    }
    reads
}

fn write_line(output: &mut impl Write, line: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *output, line)?;
    output.write_all(b"\n")
}

/// What one destination does with the event, in the order `junction serve` decides it: enabled,
/// fed by the source, the `integrations` object, then each mapping.
fn route<'a>(
    destination: &'a Destination,
    connected: bool,
    event: &Value,
) -> DestinationResult<'a> {
    let status = if !destination.enabled() {
        Status::Disabled
    } else if !connected {
        Status::NotConnected
    } else if !destination
        .definition()
        .accepts_integrations(destination.id(), event.get("integrations"))
    {
        Status::FilteredByIntegrations
    } else {
        Status::Routed
    };
    let mappings = if status == Status::Routed {
        destination
            .mappings()
            .iter()
            .map(|mapping| {
                let evaluation =
                    evaluate(mapping.subscription(), Ok(destination.settings()), event);
                (mapping.id(), masked(evaluation))
            })
            .collect()
    } else {
        Vec::new()
    };
    DestinationResult {
        id: destination.id(),
        status,
        mappings,
    }
}

/// The evaluation as shown: the request's URL masked after its host, as everywhere Junction
/// shows a webhook URL (its path and query carry the destination's token).
fn masked(evaluation: Evaluation) -> Evaluation {
    let request = evaluation.request.map(|request| HttpRequest {
        url: mask_url(&request.url),
        ..request
    });
    Evaluation {
        request,
        ..evaluation
    }
}

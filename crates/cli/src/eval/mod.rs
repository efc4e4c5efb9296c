//! `junction eval`: runs destination configurations against events and reports, per
//! subscription, whether it matched and exactly what request it would send, or why not. Nothing
//! is sent: the webhook's answer is simulated from the input line. The evaluation itself is
//! `junction_actions::evaluate`, which the admin API's testers share.
//!
//! Each distinct configuration (destination, settings, subscriptions) is compiled once
//! (`cache.rs`); `--workspace` evaluates plain events against a workspace file (`workspace.rs`).

mod cache;
mod workspace;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use junction_actions::{
    DestinationDefinition, Evaluation, Registry, Settings, Subscription, SubscriptionConfig,
    evaluate,
};
use junction_fields::ValidationError;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use cache::{Bounds, ConfigCache};

/// The destination an input line runs against when it names none.
const DEFAULT_DESTINATION: &str = "actions-chartmogul";

/// Buffer sizes for reading and writing: a line of the stock configuration is about 1.5 KiB in
/// and out, so 64 KiB buffers make one system call per few dozen lines.
const BUFFER_BYTES: usize = 64 << 10;

/// `junction eval`'s arguments.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Evaluate plain Segment events (one JSON object per line, as a warehouse export gives
    /// them) against every destination and mapping of this workspace file (*.json or *.toml,
    /// the format `junction apply` takes).
    #[arg(long, value_name = "FILE")]
    pub workspace: Option<PathBuf>,
    /// With --workspace: the source the events come from; destinations it does not feed are
    /// reported `not_connected`, as `junction serve` would not route to them.
    #[arg(long, value_name = "ID", requires = "workspace")]
    pub source: Option<String>,
    /// Read the input lines from FILE instead of stdin.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// Runs `junction eval` with its arguments, reading stdin or the input file and writing stdout.
pub fn run_command(args: &EvalArgs) -> anyhow::Result<()> {
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => {
            let file = File::open(path)
                .with_context(|| format!("cannot read input file {}", path.display()))?;
            Box::new(BufReader::with_capacity(BUFFER_BYTES, file))
        }
        None => Box::new(BufReader::with_capacity(BUFFER_BYTES, io::stdin().lock())),
    };
    let output = BufWriter::with_capacity(BUFFER_BYTES, io::stdout().lock());
    match &args.workspace {
        Some(path) => {
            let snapshot = crate::serve::read_workspace(path)?.2;
            let source = match &args.source {
                Some(id) => Some(
                    snapshot
                        .source(id)
                        .with_context(|| format!("no source {id:?} in {}", path.display()))?,
                ),
                None => None,
            };
            workspace::run(&snapshot, source, input, output)?;
        }
        None => run(junction_actions::registry()?, input, output)?,
    }
    Ok(())
}

/// One input line, as the old path reads it: a JSON tree first, then this.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    id: Value,
    #[serde(default = "default_destination")]
    destination: String,
    #[serde(default)]
    settings: Value,
    #[serde(default)]
    subscriptions: Vec<Value>,
    event: Value,
    #[serde(default)]
    webhook_response: WebhookResponse,
}

/// One input line read straight from its text, its configuration left unparsed: when the cache
/// has that text compiled, only the event and the webhook's answer are parsed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FastInput<'a> {
    #[serde(default)]
    id: Value,
    #[serde(default = "default_destination")]
    destination: String,
    #[serde(default, borrow, deserialize_with = "raw")]
    settings: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    subscriptions: Option<&'a RawValue>,
    event: Value,
    #[serde(default)]
    webhook_response: WebhookResponse,
}

/// Reads a member's text as written. `Option<&RawValue>` alone would read `null` as absent,
/// which `subscriptions` must not (the old path refuses a `null` list).
fn raw<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

fn default_destination() -> String {
    DEFAULT_DESTINATION.to_owned()
}

/// What the simulated webhook answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookResponse {
    #[serde(default = "ok_status")]
    status: u16,
    #[allow(dead_code)] // accepted so lines can describe a full response; nothing reads it yet
    #[serde(default)]
    body: Value,
    #[allow(dead_code)]
    #[serde(default)]
    headers: Map<String, Value>,
}

fn ok_status() -> u16 {
    200
}

impl Default for WebhookResponse {
    fn default() -> Self {
        Self {
            status: ok_status(),
            body: json!({}),
            headers: Map::new(),
        }
    }
}

/// A line's configuration, compiled: what every line carrying the same one shares.
#[derive(Debug)]
struct Compiled {
    settings: Result<Settings, ValidationError>,
    /// Per subscription, in order: compiled, or the message of `invalid_subscription`.
    subscriptions: Vec<Result<Subscription, String>>,
}

/// The output of one line.
#[derive(Debug)]
enum LineResult {
    /// The line was evaluated: one result per subscription.
    Results { id: Value, results: Vec<Evaluation> },
    /// The line could not be read (`{"id", "error"}`).
    Error(Value),
}

/// How [`LineResult::Results`] is written: the members in the order `junction eval` has always
/// written them.
#[derive(Serialize)]
struct ResultsLine<'a> {
    id: &'a Value,
    results: &'a [Evaluation],
}

/// Reads JSON Lines from `input` and writes one result line per non-blank input line.
pub fn run(
    registry: &'static Registry,
    mut input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let mut cache = ConfigCache::new(Bounds::default());
    let mut key = String::new();
    let mut buffer = String::new();
    while let Some(line) = next_line(&mut input, &mut buffer)? {
        // Blank lines separate nothing in JSON Lines; skipping them keeps hand-written files easy.
        if line.trim().is_empty() {
            continue;
        }
        match evaluate_line(registry, &mut cache, &mut key, line) {
            LineResult::Results { id, results } => {
                let line = ResultsLine {
                    id: &id,
                    results: &results,
                };
                serde_json::to_writer(&mut output, &line)?;
            }
            LineResult::Error(error) => serde_json::to_writer(&mut output, &error)?,
        }
        output.write_all(b"\n")?;
    }
    output.flush()
}

/// The next line of `input` in `buffer`, without its `\n` or `\r\n` (as `BufRead::lines` gives
/// it, without allocating a string per line), or `None` at the end.
fn next_line<'b>(input: &mut impl BufRead, buffer: &'b mut String) -> io::Result<Option<&'b str>> {
    buffer.clear();
    if input.read_line(buffer)? == 0 {
        return Ok(None);
    }
    let mut line = buffer.as_str();
    if let Some(rest) = line.strip_suffix('\n') {
        line = rest.strip_suffix('\r').unwrap_or(rest);
    }
    Ok(Some(line))
}

/// Evaluates one input line. A line whose configuration text the cache holds takes the fast
/// path: only its event and webhook answer are parsed. Any other line is read exactly as it
/// always was (JSON tree, then [`Input`]), so errors keep their wording, and its configuration
/// is compiled unless one with the same content was.
fn evaluate_line(
    registry: &'static Registry,
    cache: &mut ConfigCache<Compiled>,
    key: &mut String,
    line: &str,
) -> LineResult {
    let fast = serde_json::from_str::<FastInput<'_>>(line).ok();
    if let Some(fast) = &fast {
        text_key(key, &fast.destination, fast.settings, fast.subscriptions);
    }
    let text_key = fast.is_some().then_some(key.as_str());
    if let (Some(fast), Some(text)) = (fast, text_key)
        && let Some(compiled) = cache.by_text(text)
    {
        let results = evaluate_all(&compiled, &fast.event, fast.webhook_response.status);
        return LineResult::Results {
            id: fast.id,
            results,
        };
    }

    let raw: Value = match serde_json::from_str(line) {
        Ok(raw) => raw,
        Err(err) => {
            return LineResult::Error(json!({"id": null, "error": format!("invalid JSON: {err}")}));
        }
    };
    let id = raw.get("id").cloned().unwrap_or(Value::Null);
    let input: Input = match serde_json::from_value(raw) {
        Ok(input) => input,
        Err(err) => {
            return LineResult::Error(
                json!({"id": id, "error": format!("invalid input line: {err}")}),
            );
        }
    };
    let Some(destination) = registry.get(&input.destination) else {
        let known: Vec<_> = registry.iter().map(|d| d.slug).collect();
        return LineResult::Error(json!({"id": id, "error": format!(
            "unknown destination {:?}; expected one of: {}", input.destination, known.join(", ")
        )}));
    };
    // The canonical form: the parsed configuration written back, key order kept (a mapping's
    // key order is the body's, so it is part of the content).
    let content =
        serde_json::to_string(&(&input.destination, &input.settings, &input.subscriptions)).ok();
    let compiled = cache.get_or_compile(text_key, content.as_deref(), || {
        compile(destination, &input.settings, &input.subscriptions)
    });
    let results = evaluate_all(&compiled, &input.event, input.webhook_response.status);
    LineResult::Results {
        id: input.id,
        results,
    }
}

/// Writes into `key` the cache key of a configuration's text: each part length-prefixed, so no
/// two configurations share a key, `-` for an absent member.
fn text_key(
    key: &mut String,
    destination: &str,
    settings: Option<&RawValue>,
    subscriptions: Option<&RawValue>,
) {
    key.clear();
    for part in [
        Some(destination),
        settings.map(RawValue::get),
        subscriptions.map(RawValue::get),
    ] {
        match part {
            Some(text) => {
                // Writing into a `String` cannot fail.
                let _ = write!(key, "{}:", text.len());
                key.push_str(text);
            }
            None => key.push('-'),
        }
    }
}

/// Compiles a line's configuration: its settings validated, each subscription compiled.
fn compile(
    destination: &'static DestinationDefinition,
    settings: &Value,
    subscriptions: &[Value],
) -> Compiled {
    Compiled {
        settings: destination.validate_settings(settings),
        subscriptions: subscriptions
            .iter()
            .map(|config| compile_subscription(destination, config))
            .collect(),
    }
}

fn compile_subscription(
    destination: &'static DestinationDefinition,
    config: &Value,
) -> Result<Subscription, String> {
    serde_json::from_value::<SubscriptionConfig>(config.clone())
        .map_err(|err| format!("invalid subscription: {err}"))
        .and_then(|config| Subscription::compile(destination, &config).map_err(|e| e.to_string()))
}

/// Evaluates every subscription of a compiled configuration against one event.
fn evaluate_all(compiled: &Compiled, event: &Value, status: u16) -> Vec<Evaluation> {
    compiled
        .subscriptions
        .iter()
        .map(|subscription| match subscription {
            Ok(subscription) => {
                evaluate(subscription, compiled.settings.as_ref(), event).answered(status)
            }
            Err(message) => Evaluation::invalid(message.clone()),
        })
        .collect()
}

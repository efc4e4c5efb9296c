//! `junction eval`: runs destination configurations against events and reports, per
//! subscription, whether it matched and exactly what request it would send, or why not. Nothing
//! is sent: the webhook's answer is simulated from the input line. The evaluation itself is
//! `junction_actions::evaluate`, which the admin API's testers share.
//!
//! Each distinct configuration (destination, settings, subscriptions) is compiled once
//! (`cache.rs`), a configuration written as the previous line wrote it is not read again
//! (`elide.rs`), of each event only what the configuration reads is built (`project.rs`), and
//! output lines are written directly (`json.rs`); `--workspace` evaluates plain events against a
//! workspace file (`workspace.rs`).

mod cache;
mod elide;
mod json;
mod project;
mod workspace;

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::Context;
use junction_actions::{
    DestinationDefinition, Evaluation, Registry, Settings, Subscription, SubscriptionConfig,
    evaluate,
};
use junction_fields::ValidationError;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use cache::{Bounds, ConfigCache};
use elide::Elider;
use project::Reads;

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

/// One input line read straight from its text, its configuration left unparsed and its event
/// projected (`project.rs`): when the cache has that configuration text compiled, nothing of the
/// configuration is parsed again.
#[derive(Debug)]
struct FastInput<'a> {
    id: Value,
    destination: String,
    settings: Option<&'a RawValue>,
    subscriptions: Option<&'a RawValue>,
    event: Value,
    webhook_response: WebhookResponse,
}

/// Reads a [`FastInput`], building of its event what `reads` holds (the guess: what the
/// previous line's configuration read). Strict where [`Input`] is lenient (only an object, every
/// member once): whatever it refuses goes the old way.
struct FastSeed<'r> {
    reads: &'r Reads,
    /// The line's settings and subscriptions were cut out of it (`elide.rs`): meeting either
    /// again means the whole line repeats a member.
    elided: bool,
}

impl<'de> DeserializeSeed<'de> for FastSeed<'_> {
    type Value = FastInput<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FastSeed<'_> {
    type Value = FastInput<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an input line")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        let mut destination = None;
        let mut settings = None;
        let mut subscriptions = None;
        let mut event = None;
        let mut webhook_response = None;
        while let Some(key) = map.next_key_seed(project::Key)? {
            match key.as_ref() {
                "id" => once(&mut id, map.next_value()?)?,
                "destination" => once(&mut destination, map.next_value()?)?,
                "settings" | "subscriptions" if self.elided => {
                    return Err(de::Error::custom("repeated member"));
                }
                "settings" => once(&mut settings, map.next_value()?)?,
                "subscriptions" => once(&mut subscriptions, map.next_value()?)?,
                "event" => once(
                    &mut event,
                    map.next_value_seed(project::Project(self.reads))?,
                )?,
                "webhook_response" => once(&mut webhook_response, map.next_value()?)?,
                other => return Err(de::Error::unknown_field(other, &[])),
            }
        }
        Ok(FastInput {
            id: id.unwrap_or_default(),
            destination: destination.unwrap_or_else(default_destination),
            settings,
            subscriptions,
            event: event.ok_or_else(|| de::Error::missing_field("event"))?,
            webhook_response: webhook_response.unwrap_or_default(),
        })
    }
}

/// Sets a member read for the first time; a repeated member is an error.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom("repeated member"));
    }
    *slot = Some(value);
    Ok(())
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
    /// What the subscriptions can read of an event.
    reads: Reads,
}

/// The output of one line.
#[derive(Debug)]
enum LineResult {
    /// The line was evaluated: one result per subscription.
    Results { id: Value, results: Vec<Evaluation> },
    /// The line could not be read (`{"id", "error"}`).
    Error(Value),
}

/// Reads JSON Lines from `input` and writes one result line per non-blank input line.
pub fn run(
    registry: &'static Registry,
    mut input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let mut cache = ConfigCache::new(Bounds::default());
    let mut state = State::default();
    let mut written = Vec::new();
    for_each_line(&mut input, |line| {
        // Blank lines separate nothing in JSON Lines; skipping them keeps hand-written files easy.
        if line.trim().is_empty() {
            return Ok(());
        }
        written.clear();
        match evaluate_line(registry, &mut cache, &mut state, line) {
            LineResult::Results { id, results } => write_results(&mut written, &id, &results)?,
            LineResult::Error(error) => serde_json::to_writer(&mut written, &error)?,
        }
        written.push(b'\n');
        output.write_all(&written)
    })?;
    output.flush()
}

/// Writes `{"id":…,"results":[…]}`, the members in the order `junction eval` has always written
/// them.
fn write_results(out: &mut Vec<u8>, id: &Value, results: &[Evaluation]) -> io::Result<()> {
    out.extend_from_slice(b"{\"id\":");
    json::value(out, id)?;
    out.extend_from_slice(b",\"results\":[");
    for (i, evaluation) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        json::evaluation_members(out, evaluation)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// Calls `f` with each line of `input`, without its `\n` or `\r\n`, as `BufRead::lines` gives
/// them (and failing as it does on a line that is not UTF-8). A line wholly inside the reader's
/// buffer is handed over in place; only one that straddles the buffer's end is copied.
fn for_each_line(
    input: &mut impl BufRead,
    mut f: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<()> {
    let mut straddling = String::new();
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        let Some(end) = memchr::memchr(b'\n', available) else {
            straddling.clear();
            input.read_line(&mut straddling)?;
            f(without_newline(&straddling))?;
            continue;
        };
        let line = std::str::from_utf8(&available[..=end]).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        })?;
        f(without_newline(line))?;
        input.consume(end + 1);
    }
}

/// `line` without its final `\n` or `\r\n`.
fn without_newline(line: &str) -> &str {
    match line.strip_suffix('\n') {
        Some(rest) => rest.strip_suffix('\r').unwrap_or(rest),
        None => line,
    }
}

/// What one line leaves to the next.
#[derive(Debug, Default)]
struct State {
    /// The cache key of the line's configuration text.
    key: String,
    /// The configuration of the previous line: its reads are the guess the next line's event is
    /// parsed with.
    previous: Option<Rc<Compiled>>,
    /// The cache key of `previous`'s text, when its line had one: a line with the same text
    /// takes it without hashing its key (consecutive lines mostly share their configuration).
    previous_key: String,
    /// `previous`'s settings and subscriptions as its line wrote them, when it wrote them side
    /// by side: a line writing them the same way is read without them.
    elider: Elider,
}

/// Evaluates one input line. A line whose configuration text the cache holds takes the fast
/// path: its configuration is not parsed, and of its event only what the previous line's
/// configuration reads is built, which is enough when this line's configuration reads no more.
/// Any other line, and any line the fast path cannot read, is read exactly as it always was
/// (JSON tree, then [`Input`]), so errors keep their wording; its configuration is compiled
/// unless one with the same content was.
fn evaluate_line(
    registry: &'static Registry,
    cache: &mut ConfigCache<Compiled>,
    state: &mut State,
    line: &str,
) -> LineResult {
    if let Some(result) = evaluate_elided(state, line) {
        return result;
    }
    let everything = Reads::everything();
    let guess = state
        .previous
        .as_ref()
        .map_or(&everything, |previous| &previous.reads);
    let fast = read_fast(line, guess, false);
    if let Some(fast) = &fast {
        text_key(
            &mut state.key,
            &fast.destination,
            fast.settings,
            fast.subscriptions,
        );
    }
    let text_key = fast.is_some().then_some(state.key.as_str());
    let raw_configuration = fast
        .as_ref()
        .map(|fast| (fast.settings, fast.subscriptions));
    let found = match text_key {
        // Not counted as a use by the cache: the entry may be evicted meanwhile, which costs a
        // compilation later, never a wrong result (`previous` keeps it alive).
        Some(text) if text == state.previous_key => state.previous.clone(),
        Some(text) => cache.by_text(text),
        None => None,
    };
    if let (Some(fast), Some(compiled)) = (fast, found) {
        let same = state
            .previous
            .as_ref()
            .is_some_and(|previous| Rc::ptr_eq(previous, &compiled));
        // The event holds what the guess reads: enough if this configuration reads no more.
        if same || guess.is_everything() || *guess == compiled.reads {
            let results = evaluate_all(&compiled, &fast.event, fast.webhook_response.status);
            state.previous = Some(compiled);
            state
                .elider
                .remember(line, &fast.destination, fast.settings, fast.subscriptions);
            std::mem::swap(&mut state.key, &mut state.previous_key);
            return LineResult::Results {
                id: fast.id,
                results,
            };
        }
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
    state.previous = Some(compiled);
    match raw_configuration {
        Some((settings, subscriptions)) => {
            state
                .elider
                .remember(line, &input.destination, settings, subscriptions);
        }
        None => state.elider.forget(),
    }
    match text_key {
        Some(_) => std::mem::swap(&mut state.key, &mut state.previous_key),
        None => state.previous_key.clear(),
    }
    LineResult::Results {
        id: input.id,
        results,
    }
}

/// Evaluates a line that writes its settings and subscriptions as the previous line did, with
/// them cut out of it (`elide.rs`): the previous line's compiled configuration is this line's
/// when the destination is the same too. `None` sends the line the usual way.
fn evaluate_elided(state: &mut State, line: &str) -> Option<LineResult> {
    let compiled = state.previous.as_ref()?;
    let elided = state.elider.elide(line)?;
    let fast = read_fast(elided.line, &compiled.reads, true)?;
    if fast.destination != elided.destination {
        return None;
    }
    let results = evaluate_all(compiled, &fast.event, fast.webhook_response.status);
    Some(LineResult::Results {
        id: fast.id,
        results,
    })
}

/// Reads `text` as one [`FastInput`] and nothing after it; `None` when the fast path cannot.
fn read_fast<'a>(text: &'a str, reads: &Reads, elided: bool) -> Option<FastInput<'a>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let fast = FastSeed { reads, elided }
        .deserialize(&mut deserializer)
        .ok()?;
    deserializer.end().ok()?;
    Some(fast)
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

/// Compiles a line's configuration: its settings validated, each subscription compiled, and
/// what they read of an event.
fn compile(
    destination: &'static DestinationDefinition,
    settings: &Value,
    subscriptions: &[Value],
) -> Compiled {
    let mut reads = Reads::default();
    let subscriptions = subscriptions
        .iter()
        .map(|config| {
            let config = serde_json::from_value::<SubscriptionConfig>(config.clone())
                .map_err(|err| format!("invalid subscription: {err}"))?;
            let subscription =
                Subscription::compile(destination, &config).map_err(|err| err.to_string())?;
            reads.add_subscription(&subscription, config.mapping.as_ref(), config.use_defaults);
            Ok(subscription)
        })
        .collect();
    Compiled {
        settings: destination.validate_settings(settings),
        subscriptions,
        reads,
    }
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

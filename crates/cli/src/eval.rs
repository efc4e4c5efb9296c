//! `junction eval`: runs destination configurations against events and reports, per
//! subscription, whether it matched and exactly what request it would send, or why not. Nothing
//! is sent: the webhook's answer is simulated from the input line. The evaluation itself is
//! `junction_actions::evaluate`, which the admin API's testers share.

use std::io::{self, BufRead, Write};

use junction_actions::{
    DestinationDefinition, Evaluation, Registry, Settings, Subscription, SubscriptionConfig,
    evaluate,
};
use junction_fields::ValidationError;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The destination an input line runs against when it names none.
const DEFAULT_DESTINATION: &str = "actions-chartmogul";

/// One input line.
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

/// Reads JSON Lines from `input` and writes one result line per non-blank input line.
pub fn run(
    registry: &'static Registry,
    input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    for line in input.lines() {
        let line = line?;
        // Blank lines separate nothing in JSON Lines; skipping them keeps hand-written files easy.
        if line.trim().is_empty() {
            continue;
        }
        let result = evaluate_line(registry, &line);
        serde_json::to_writer(&mut output, &result)?;
        output.write_all(b"\n")?;
    }
    output.flush()
}

/// Evaluates one input line into its output object.
pub fn evaluate_line(registry: &'static Registry, line: &str) -> Value {
    let raw: Value = match serde_json::from_str(line) {
        Ok(raw) => raw,
        Err(err) => return json!({"id": null, "error": format!("invalid JSON: {err}")}),
    };
    let id = raw.get("id").cloned().unwrap_or(Value::Null);
    let input: Input = match serde_json::from_value(raw) {
        Ok(input) => input,
        Err(err) => return json!({"id": id, "error": format!("invalid input line: {err}")}),
    };
    let Some(destination) = registry.get(&input.destination) else {
        let known: Vec<_> = registry.iter().map(|d| d.slug).collect();
        return json!({"id": id, "error": format!(
            "unknown destination {:?}; expected one of: {}", input.destination, known.join(", ")
        )});
    };
    let settings = destination.validate_settings(&input.settings);
    let results: Vec<Evaluation> = input
        .subscriptions
        .iter()
        .map(|config| evaluate_subscription(destination, &settings, config, &input))
        .collect();
    json!({"id": input.id, "results": results})
}

fn evaluate_subscription(
    destination: &'static DestinationDefinition,
    settings: &Result<Settings, ValidationError>,
    config: &Value,
    input: &Input,
) -> Evaluation {
    let compiled = serde_json::from_value::<SubscriptionConfig>(config.clone())
        .map_err(|err| format!("invalid subscription: {err}"))
        .and_then(|config| Subscription::compile(destination, &config).map_err(|e| e.to_string()));
    match compiled {
        Ok(subscription) => evaluate(&subscription, settings.as_ref(), &input.event)
            .answered(input.webhook_response.status),
        Err(message) => Evaluation::invalid(message),
    }
}

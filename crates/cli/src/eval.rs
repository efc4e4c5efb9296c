//! `junction eval`: runs destination configurations against events and reports, per
//! subscription, whether it matched and exactly what request it would send, or why not. Nothing
//! is sent: the webhook's answer is simulated from the input line.

use std::io::{self, BufRead, Write};

use junction_actions::{
    ActionError, DestinationDefinition, HttpRequest, Registry, Settings, Subscription,
    SubscriptionConfig, reason_phrase,
};
use junction_fields::ValidationError;
use serde::{Deserialize, Serialize};
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

/// What happened to one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Sent,
    NotSubscribed,
    Disabled,
    InvalidSubscription,
    SettingsError,
    SchemaError,
    MappingError,
    PayloadError,
    HttpError,
    FetchError,
}

#[derive(Debug, Serialize)]
struct ErrorReport {
    message: String,
    status: Option<u16>,
}

#[derive(Debug, Serialize)]
struct SubscriptionResult {
    matched: bool,
    outcome: Outcome,
    request: Option<HttpRequest>,
    error: Option<ErrorReport>,
}

impl SubscriptionResult {
    fn failed(matched: bool, outcome: Outcome, message: String, status: Option<u16>) -> Self {
        Self {
            matched,
            outcome,
            request: None,
            error: Some(ErrorReport { message, status }),
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
    let results: Vec<SubscriptionResult> = input
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
) -> SubscriptionResult {
    let compiled = serde_json::from_value::<SubscriptionConfig>(config.clone())
        .map_err(|err| format!("invalid subscription: {err}"))
        .and_then(|config| Subscription::compile(destination, &config).map_err(|e| e.to_string()));
    let subscription = match compiled {
        Ok(subscription) => subscription,
        Err(message) => {
            return SubscriptionResult::failed(false, Outcome::InvalidSubscription, message, None);
        }
    };
    let matched = subscription.matches(&input.event);
    if !subscription.enabled {
        return SubscriptionResult {
            matched,
            outcome: Outcome::Disabled,
            request: None,
            error: None,
        };
    }
    let settings = match settings {
        Ok(settings) => settings,
        Err(err) => {
            return SubscriptionResult::failed(
                matched,
                Outcome::SettingsError,
                err.to_string(),
                Some(400),
            );
        }
    };
    if !matched {
        return SubscriptionResult {
            matched,
            outcome: Outcome::NotSubscribed,
            request: None,
            error: None,
        };
    }
    match subscription.execute(settings, &input.event) {
        Ok(request) => simulate_send(request, input.webhook_response.status),
        Err(err) => {
            let outcome = match &err {
                ActionError::Mapping(_) => Outcome::MappingError,
                ActionError::Schema(_) => Outcome::SchemaError,
                ActionError::Payload { .. } => Outcome::PayloadError,
                ActionError::Fetch(_) => Outcome::FetchError,
                ActionError::Http { .. } => Outcome::HttpError,
            };
            SubscriptionResult::failed(true, outcome, err.to_string(), err.status())
        }
    }
}

fn simulate_send(request: HttpRequest, status: u16) -> SubscriptionResult {
    let (outcome, error) = if (200..300).contains(&status) {
        (Outcome::Sent, None)
    } else {
        let report = ErrorReport {
            message: reason_phrase(status),
            status: Some(status),
        };
        (Outcome::HttpError, Some(report))
    };
    SubscriptionResult {
        matched: true,
        outcome,
        request: Some(request),
        error,
    }
}

//! Runs every vector of `conformance/vectors/chartmogul.json` against the ChartMogul destination:
//! test authentication, `perform` (one action, no trigger) and `onEvent` (subscriptions).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use junction_actions::{
    ActionError, AuthError, DestinationDefinition, HttpRequest, Subscription, SubscriptionConfig,
    SubscriptionError, check_status, registry,
};
use junction_spec_vectors::{Report, Vector, load};
use serde_json::{Value, json};

fn chartmogul() -> &'static DestinationDefinition {
    registry().unwrap().get("actions-chartmogul").unwrap()
}

fn vectors(kind: &str) -> Vec<Vector> {
    load("chartmogul.json")
        .unwrap()
        .into_iter()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some(kind))
        .collect()
}

fn request_json(request: &HttpRequest) -> Value {
    json!({
        "method": request.method,
        "url": request.url,
        "headers": request.headers,
        "json": request.body,
    })
}

fn check_request(vector: &Vector, sent: Option<&HttpRequest>) -> Result<(), String> {
    let expected = vector
        .get("expected_request")
        .cloned()
        .unwrap_or(Value::Null);
    let actual = sent.map_or(Value::Null, request_json);
    if actual != expected {
        return Err(format!("request {actual} != expected {expected}"));
    }
    Ok(())
}

fn expect_error(
    vector: &Vector,
    name: &str,
    message: &str,
    extra: &[(&str, Value)],
) -> Result<(), String> {
    let Some(expected) = vector.get("expected_error") else {
        return Err(format!("unexpected error {name}: {message}"));
    };
    let mut actual = json!({"name": name, "message": message});
    for (key, value) in extra {
        if expected.get(*key).is_some() {
            actual[*key] = value.clone();
        }
    }
    if &actual != expected {
        return Err(format!("error {actual} != expected {expected}"));
    }
    Ok(())
}

fn http_status(vector: &Vector) -> u16 {
    vector
        .get("http_response")
        .and_then(|r| r.get("status"))
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200)
}

fn response_body(vector: &Vector) -> Value {
    vector
        .get("http_response")
        .and_then(|r| r.get("body"))
        .cloned()
        .unwrap_or(json!({}))
}

/// Maps an action error onto the reference's error object.
fn action_error(vector: &Vector, err: &ActionError) -> Result<(), String> {
    match err {
        ActionError::Schema(err) => expect_error(
            vector,
            "AggregateAjvError",
            &err.to_string(),
            &[("status", json!(400))],
        ),
        ActionError::Payload { message } => expect_error(
            vector,
            "PayloadValidationError",
            message,
            &[
                ("status", json!(400)),
                ("code", json!("PAYLOAD_VALIDATION_FAILED")),
            ],
        ),
        ActionError::Http { status, message } => expect_error(
            vector,
            "HTTPError",
            message,
            &[("http_status", json!(status))],
        ),
        other => expect_error(vector, "Error", &other.to_string(), &[]),
    }
}

#[test]
fn test_authentication_vectors() {
    let mut report = Report::default();
    for vector in vectors("testAuthentication") {
        let settings = vector.get("settings").cloned().unwrap_or(json!({}));
        let outcome = match chartmogul().test_authentication_request(&settings) {
            Err(AuthError::Settings(err)) => check_request(&vector, None).and_then(|()| {
                expect_error(
                    &vector,
                    "AggregateAjvError",
                    &err.to_string(),
                    &[("status", json!(400))],
                )
            }),
            Err(AuthError::Invalid { message }) => check_request(&vector, None)
                .and_then(|()| expect_error(&vector, "Error", &message, &[])),
            Err(AuthError::Unreachable { message }) => Err(format!(
                "building the request cannot be unreachable: {message}"
            )),
            Ok(request) => check_request(&vector, request.as_ref()).and_then(|()| {
                match DestinationDefinition::judge_test_authentication(http_status(&vector)) {
                    Ok(()) if vector.get("expected_ok") == Some(&json!(true)) => Ok(()),
                    Ok(()) => Err("test authentication passed, expected an error".into()),
                    Err(err) => expect_error(&vector, "Error", &err.to_string(), &[]),
                }
            }),
        };
        report.record(&vector, outcome);
    }
    report.finish("chartmogul testAuthentication");
}

fn perform(vector: &Vector) -> Result<(), String> {
    let destination = chartmogul();
    let slug = vector
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let action = destination
        .action(slug)
        .ok_or(format!("no action {slug}"))?;
    let given = vector.get("mapping").cloned().unwrap_or(json!({}));
    let mapping = if vector.get("use_default_mappings") == Some(&json!(true)) {
        let mut merged = action.default_mapping();
        if let Value::Object(given) = given {
            merged.extend(given);
        }
        Value::Object(merged)
    } else {
        given
    };
    let mapping = junction_mapping::compile(&mapping).map_err(|e| format!("mapping: {e}"))?;
    let settings = destination
        .validate_settings(vector.get("settings").unwrap_or(&Value::Null))
        .map_err(|e| format!("settings: {e}"))?;
    let event = vector.get("event").cloned().unwrap_or(json!({}));
    match action.execute(&mapping, &settings, &event) {
        Err(err) => check_request(vector, None).and_then(|()| action_error(vector, &err)),
        Ok(request) => {
            check_request(vector, Some(&request))?;
            match check_status(http_status(vector)) {
                Ok(()) if !vector.has("expected_error") => Ok(()),
                Ok(()) => Err("sent successfully, expected an error".into()),
                Err(err) => action_error(vector, &err),
            }
        }
    }
}

#[test]
fn perform_vectors() {
    let mut report = Report::default();
    for vector in vectors("perform") {
        let outcome = perform(&vector);
        report.record(&vector, outcome);
    }
    report.finish("chartmogul perform");
}

/// The reference's `onEvent`: every subscription in the settings, results concatenated, the
/// first thrown error ending the call.
fn on_event(vector: &Vector) -> Result<(), String> {
    let destination = chartmogul();
    let raw_settings = vector.get("settings").cloned().unwrap_or(json!({}));
    let configs: Vec<Value> = match (
        raw_settings.get("subscription"),
        raw_settings.get("subscriptions"),
    ) {
        (Some(one), _) if !one.is_null() => vec![one.clone()],
        (_, Some(Value::Array(many))) => many.clone(),
        _ => Vec::new(),
    };
    let settings = match destination.validate_settings(&raw_settings) {
        Ok(settings) => settings,
        Err(err) => {
            return check_request(vector, None).and_then(|()| {
                expect_error(
                    vector,
                    "AggregateAjvError",
                    &err.to_string(),
                    &[("status", json!(400))],
                )
            });
        }
    };
    let event = vector.get("event").cloned().unwrap_or(Value::Null);
    let mut results = Vec::new();
    let mut sent = None;
    for config in configs {
        let mut config: SubscriptionConfig =
            serde_json::from_value(config).map_err(|e| format!("subscription: {e}"))?;
        // The reference runs mappings exactly as saved.
        config.use_defaults = false;
        let subscription = match Subscription::compile(destination, &config) {
            Ok(subscription) => subscription,
            Err(err @ (SubscriptionError::MissingTrigger | SubscriptionError::Trigger(_))) => {
                results.push(json!({"output": err.to_string()}));
                continue;
            }
            Err(err) => {
                results.push(json!({"invalid_subscription": err.to_string()}));
                continue;
            }
        };
        if !subscription.matches(&event) {
            results.push(json!({"output": "not subscribed"}));
            continue;
        }
        match subscription.execute(&settings, &event) {
            Err(err) => {
                return check_request(vector, None).and_then(|()| action_error(vector, &err));
            }
            Ok(request) => {
                let status = check_status(http_status(vector));
                sent = Some(request);
                if let Err(err) = status {
                    return check_request(vector, sent.as_ref())
                        .and_then(|()| action_error(vector, &err));
                }
                results.push(json!({"output": "Mappings resolved"}));
                results.push(json!({"output": "Payload validated"}));
                results.push(json!({"data": response_body(vector), "output": "Action Executed"}));
            }
        }
    }
    check_request(vector, sent.as_ref())?;
    let expected = vector
        .get("expected_results")
        .cloned()
        .unwrap_or(Value::Null);
    let actual = Value::Array(results);
    if actual != expected {
        return Err(format!("results {actual} != expected {expected}"));
    }
    Ok(())
}

#[test]
fn on_event_vectors() {
    let mut report = Report::default();
    for vector in vectors("onEvent") {
        let outcome = on_event(&vector);
        report.record(&vector, outcome);
    }
    report.finish("chartmogul onEvent");
}

/// The generated JSON schemas are what the catalogue shows; they must be the reference's,
/// apart from the `custom_attributes` field Junction adds to both actions.
#[test]
fn json_schemas_match_the_reference() {
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(junction_spec_vectors::vectors_dir().join("chartmogul.json"))
            .unwrap(),
    )
    .unwrap();
    let expected = &document["generated_json_schemas"];
    let destination = chartmogul();
    assert_eq!(
        &destination.settings_schema().json_schema(),
        &expected["settings"]
    );
    for action in &destination.actions {
        let mut schema = action.schema().json_schema();
        let properties = schema["properties"].as_object_mut().unwrap();
        let added = properties.shift_remove("custom_attributes").unwrap();
        assert_eq!(added["type"], json!("object"));
        assert!(
            added.get("default").is_none(),
            "custom_attributes has no default"
        );
        assert_eq!(&schema, &expected[action.slug], "{}", action.slug);
    }
    let subscriptions = &document["default_subscriptions"];
    for action in &destination.actions {
        assert_eq!(subscriptions[action.slug], json!(action.default_trigger));
    }
}

#[test]
fn custom_attributes_pass_through_when_mapped() {
    let destination = chartmogul();
    let config: SubscriptionConfig = serde_json::from_value(json!({
        "partnerAction": "sendContact",
        "subscribe": "type = \"identify\"",
        "mapping": {"custom_attributes": {"@path": "$.traits.audiences"}}
    }))
    .unwrap();
    let subscription = Subscription::compile(destination, &config).unwrap();
    let settings = destination
        .validate_settings(&json!({"chartmogul_webhook_url": "https://example.com/wh"}))
        .unwrap();
    let event = json!({
        "type": "identify", "userId": "u1", "messageId": "m1",
        "timestamp": "2024-01-01T00:00:00Z", "sentAt": "2024-01-01T00:00:01Z",
        "traits": {"email": "a@example.com", "audiences": {"power_users": true, "churn_risk": false}}
    });
    let request = subscription.execute(&settings, &event).unwrap();
    assert_eq!(
        request.body["custom_attributes"],
        json!({"power_users": true, "churn_risk": false})
    );
    assert_eq!(request.body["email"], json!("a@example.com"));
}

//! Runs the real `junction eval` binary on JSON Lines and checks every outcome it can report.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Runs `junction eval` with `lines` on stdin and returns the parsed output lines.
fn eval(lines: &[String]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
        .arg("eval")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

const WEBHOOK: &str = "https://app.chartmogul.com/api/webhooks/abc?token=t";

fn default_subscriptions() -> Value {
    json!([
        {"partnerAction": "sendContact", "name": "Send Contact", "enabled": true,
         "subscribe": "type = \"identify\""},
        {"partnerAction": "sendCustomer", "name": "Send Customer", "enabled": true,
         "subscribe": "type = \"group\""}
    ])
}

fn identify() -> Value {
    json!({
        "type": "identify", "userId": "user-42", "anonymousId": "anon-1", "messageId": "msg-1",
        "timestamp": "2024-03-01T12:00:00.000Z", "sentAt": "2024-03-01T12:00:01.000Z",
        "traits": {"email": "jane@example.com", "first_name": "Jane",
                   "company": {"id": "acme-1", "name": "Acme"}}
    })
}

fn line(id: &str, subscriptions: Value, event: Value) -> Value {
    json!({"id": id, "settings": {"chartmogul_webhook_url": WEBHOOK},
           "subscriptions": subscriptions, "event": event})
}

fn results(output: &Value) -> &Vec<Value> {
    output["results"].as_array().unwrap()
}

#[test]
fn default_configuration_sends_a_contact_for_identify() {
    let out = eval(&[line("a", default_subscriptions(), identify()).to_string()]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["id"], "a");
    let results = results(&out[0]);
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0],
        json!({
            "matched": true, "outcome": "sent", "error": null,
            "request": {
                "method": "POST", "url": WEBHOOK,
                "headers": {"content-type": "application/json", "user-agent": "Segment (Actions)"},
                "body": {"type": "Send Contact", "message_id": "msg-1",
                         "timestamp": "2024-03-01T12:00:00.000Z",
                         "sent_at": "2024-03-01T12:00:01.000Z", "user_id": "user-42",
                         "anonymous_id": "anon-1", "email": "jane@example.com",
                         "first_name": "Jane", "company": {"id": "acme-1", "name": "Acme"}}
            }
        })
    );
    assert_eq!(
        results[1],
        json!({"matched": false, "outcome": "not_subscribed", "request": null, "error": null})
    );
    // Key order on the wire follows the mapping (the field defaults' order).
    let body = &results[0]["request"]["body"];
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys[..4], ["type", "message_id", "timestamp", "sent_at"]);
}

#[test]
fn default_configuration_sends_a_customer_for_group() {
    let group = json!({
        "type": "group", "userId": "user-42", "groupId": "acme-1", "messageId": "msg-2",
        "timestamp": "2024-03-01T12:00:00.000Z", "sentAt": "2024-03-01T12:00:01.000Z",
        "traits": {"name": "Acme", "website": "acme.com"}
    });
    let out = eval(&[line("g", default_subscriptions(), group).to_string()]);
    let results = results(&out[0]);
    assert_eq!(results[0]["outcome"], "not_subscribed");
    assert_eq!(results[1]["outcome"], "sent");
    assert_eq!(
        results[1]["request"]["body"],
        json!({"type": "Send Customer", "message_id": "msg-2",
               "timestamp": "2024-03-01T12:00:00.000Z", "sent_at": "2024-03-01T12:00:01.000Z",
               "user_id": "user-42", "group_id": "acme-1", "name": "Acme",
               "website": "acme.com", "address": {}})
    );
}

#[test]
fn every_outcome_is_reported_with_its_reason() {
    let contact = |extra: Value| {
        let mut sub = json!({"partnerAction": "sendContact", "subscribe": "type = \"identify\""});
        for (k, v) in extra.as_object().unwrap() {
            sub[k] = v.clone();
        }
        sub
    };
    let lines = [
        // disabled: the trigger still says whether it would have matched
        line(
            "disabled",
            json!([contact(json!({"enabled": false}))]),
            identify(),
        ),
        // invalid trigger: rejected with position and reason (D5)
        line(
            "bad-trigger",
            json!([contact(json!({"subscribe": "type = "}))]),
            identify(),
        ),
        // missing trigger
        line(
            "no-trigger",
            json!([contact(json!({"subscribe": ""}))]),
            identify(),
        ),
        // invalid mapping (D5)
        line(
            "bad-mapping",
            json!([contact(json!({"mapping": {"email": {"@oops": 1}}}))]),
            identify(),
        ),
        // schema error: invalid email
        line(
            "schema",
            json!([contact(json!({"mapping": {"email": "not-an-email"}}))]),
            identify(),
        ),
        // payload error: no ids at all
        line(
            "payload",
            json!([contact(
                json!({"mapping": {"user_id": null, "anonymous_id": null}})
            )]),
            identify(),
        ),
        // mapping error at run time: @merge without direction
        line(
            "mapping-runtime",
            json!([contact(
                json!({"mapping": {"custom_attributes": {"@merge": {"objects": [{"a": 1}]}}}})
            )]),
            identify(),
        ),
        // use_defaults false: only what is mapped
        line(
            "custom",
            json!([contact(json!({"use_defaults": false, "mapping": {
            "type": "Send Contact", "message_id": {"@path": "$.messageId"},
            "timestamp": {"@path": "$.timestamp"}, "sent_at": {"@path": "$.sentAt"},
            "user_id": {"@path": "$.userId"}, "anonymous_id": {"@path": "$.anonymousId"}}}))]),
            identify(),
        ),
    ];
    let mut lines: Vec<String> = lines.iter().map(Value::to_string).collect();
    // settings error
    lines.push(
        json!({"id": "settings", "settings": {"chartmogul_webhook_url": "not a url"},
                      "subscriptions": default_subscriptions(), "event": identify()})
        .to_string(),
    );
    // http error from the simulated webhook
    lines.push(
        json!({"id": "http", "settings": {"chartmogul_webhook_url": WEBHOOK},
                      "subscriptions": default_subscriptions(), "event": identify(),
                      "webhook_response": {"status": 503}})
        .to_string(),
    );
    // fetch error: a URI fetch cannot request
    lines.push(
        json!({"id": "fetch", "settings": {"chartmogul_webhook_url": "mailto:ops@example.com"},
                      "subscriptions": default_subscriptions(), "event": identify()})
        .to_string(),
    );
    // not JSON at all: reported, and the run goes on
    lines.push("{not json".to_owned());

    let out = eval(&lines);
    assert_eq!(out.len(), lines.len(), "one output line per input line");
    let first = |i: usize| &results(&out[i])[0];

    assert_eq!(first(0)["outcome"], "disabled");
    assert_eq!(first(0)["matched"], true);

    assert_eq!(first(1)["outcome"], "invalid_subscription");
    assert_eq!(first(1)["matched"], false);
    let message = first(1)["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Invalid subscription : "), "{message}");
    assert!(message.contains("column"), "{message}");

    assert_eq!(first(2)["outcome"], "invalid_subscription");
    assert_eq!(
        first(2)["error"]["message"],
        "Failed to validate subscription"
    );

    assert_eq!(first(3)["outcome"], "invalid_subscription");
    assert_eq!(
        first(3)["error"]["message"],
        "Invalid mapping : /email has an invalid directive: @oops."
    );

    assert_eq!(first(4)["outcome"], "schema_error");
    assert_eq!(
        first(4)["error"],
        json!({"message": "Email must be a valid email address string but it was not.", "status": 400})
    );

    assert_eq!(first(5)["outcome"], "payload_error");
    assert_eq!(
        first(5)["error"],
        json!({"message": "The user_id and/or anonymous_id must be present.", "status": 400})
    );

    assert_eq!(first(6)["outcome"], "mapping_error");
    assert_eq!(
        first(6)["error"]["message"],
        "@merge requires a \"direction\" key"
    );

    assert_eq!(first(7)["outcome"], "sent");
    assert_eq!(
        first(7)["request"]["body"],
        json!({"type": "Send Contact", "message_id": "msg-1",
               "timestamp": "2024-03-01T12:00:00.000Z", "sent_at": "2024-03-01T12:00:01.000Z",
               "user_id": "user-42", "anonymous_id": "anon-1"})
    );

    let settings = results(&out[8]);
    assert_eq!(settings[0]["outcome"], "settings_error");
    assert_eq!(settings[0]["matched"], true);
    assert_eq!(settings[1]["outcome"], "settings_error");
    assert_eq!(settings[1]["matched"], false);
    assert_eq!(
        settings[0]["error"],
        json!({"message": "ChartMogul webhook URL must be a valid URI string but it was not.", "status": 400})
    );

    assert_eq!(first(9)["outcome"], "http_error");
    assert_eq!(
        first(9)["error"],
        json!({"message": "Service Unavailable", "status": 503})
    );
    assert_eq!(first(9)["request"]["method"], "POST");

    assert_eq!(first(10)["outcome"], "fetch_error");
    assert_eq!(
        first(10)["error"]["message"],
        "Only HTTP(S) protocols are supported"
    );

    assert_eq!(out[11]["id"], Value::Null);
    assert!(
        out[11]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
}

#[test]
fn company_without_id_is_dropped_not_rejected() {
    // Divergence D1: the reference rejected every identify without traits.company.id.
    let mut event = identify();
    event["traits"]["company"] = json!({"name": "Acme"});
    let out = eval(&[line("d1", default_subscriptions(), event).to_string()]);
    let result = &results(&out[0])[0];
    assert_eq!(result["outcome"], "sent");
    assert!(result["request"]["body"].get("company").is_none());
}

#[test]
fn a_line_missing_its_event_is_reported_and_the_run_goes_on() {
    let out = eval(&[
        json!({"id": "x", "settings": {}, "subscriptions": []}).to_string(),
        line("ok", default_subscriptions(), identify()).to_string(),
    ]);
    assert_eq!(out[0]["id"], "x");
    assert!(
        out[0]["error"]
            .as_str()
            .unwrap()
            .contains("missing field `event`")
    );
    assert_eq!(results(&out[1])[0]["outcome"], "sent");
}

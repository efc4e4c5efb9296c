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

/// Runs `junction` with `args`, `input` on stdin, and returns its exit status, stdout and stderr.
fn junction(args: &[&str], input: &str) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    (
        output.status,
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn a_configuration_seen_again_gives_the_same_results_whatever_its_spacing() {
    // The same configuration three times (the second compact, the third with escaped text),
    // then the first again: compiled once, the results must not change.
    let first = line("a", default_subscriptions(), identify());
    let mut compact = first.clone();
    compact["id"] = json!("b");
    let mut escaped = first
        .to_string()
        .replace("Send Contact", "Send \\u0043ontact");
    escaped = escaped.replacen("\"a\"", "\"c\"", 1);
    let lines = [
        first.to_string(),
        serde_json::to_string_pretty(&compact)
            .unwrap()
            .replace('\n', " "),
        escaped,
        first.to_string(),
    ];
    let out = eval(&lines);
    assert_eq!(out.len(), 4);
    for (output, id) in out.iter().zip(["a", "b", "c", "a"]) {
        assert_eq!(output["id"], id);
        assert_eq!(results(output), results(&out[0]), "line {id}");
    }
    assert_eq!(results(&out[0])[0]["outcome"], "sent");
}

#[test]
fn configurations_differing_only_in_key_order_keep_their_own_body_order() {
    // A mapping's key order is the body's: two mappings with the same members in another order
    // are different configurations, however the cache keys them.
    let mapping = |keys: &[&str]| {
        let mut object = serde_json::Map::new();
        for key in keys {
            let value = match *key {
                "type" => json!("Send Contact"),
                "message_id" => json!({"@path": "$.messageId"}),
                "timestamp" => json!({"@path": "$.timestamp"}),
                "sent_at" => json!({"@path": "$.sentAt"}),
                "user_id" => json!({"@path": "$.userId"}),
                _ => json!({"@path": "$.traits.email"}),
            };
            object.insert((*key).to_owned(), value);
        }
        json!([{"partnerAction": "sendContact", "subscribe": "type = \"identify\"",
                "use_defaults": false, "mapping": object}])
    };
    let forward = [
        "type",
        "message_id",
        "timestamp",
        "sent_at",
        "user_id",
        "email",
    ];
    let mut backward = forward;
    backward.reverse();
    let lines: Vec<String> = [&forward, &backward, &forward, &backward]
        .iter()
        .enumerate()
        .map(|(i, keys)| line(&i.to_string(), mapping(*keys), identify()).to_string())
        .collect();
    let out = eval(&lines);
    for (i, output) in out.iter().enumerate() {
        let body = &results(output)[0]["request"]["body"];
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected = if i % 2 == 0 { forward } else { backward };
        assert_eq!(keys, expected, "line {i}");
        assert_eq!(body["email"], "jane@example.com");
    }
}

#[test]
fn the_input_can_be_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.jsonl");
    let text = format!(
        "{}\n\n{}\n",
        line("one", default_subscriptions(), identify()),
        line("two", default_subscriptions(), identify())
    );
    std::fs::write(&path, text).unwrap();
    let (status, stdout, stderr) = junction(&["eval", path.to_str().unwrap()], "ignored");
    assert!(status.success(), "{stderr}");
    let out = parse_lines(&stdout);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["id"], "two");
    assert_eq!(results(&out[1])[0]["outcome"], "sent");

    let (status, _, stderr) = junction(&["eval", "/nonexistent/lines.jsonl"], "");
    assert!(!status.success());
    assert!(
        stderr.contains("cannot read input file /nonexistent/lines.jsonl"),
        "{stderr}"
    );
}

/// Two sources; three destinations: `cm` fed by `web` with four mappings (contacts, customers, a
/// disabled one, one whose mapping fails the schema), `cm-ios` fed by `ios` only, and `cm-off`,
/// disabled.
const WORKSPACE_TOML: &str = r#"
[[sources]]
id = "web"
write_keys = ["wk_web_0123456789"]

[[sources]]
id = "ios"
write_keys = ["wk_ios_0123456789"]

[[destinations]]
id = "cm"
name = "ChartMogul"
type = "actions-chartmogul"
sources = ["web"]
settings = { chartmogul_webhook_url = "https://app.chartmogul.com/api/webhooks/abc?token=secret" }

[[destinations.mappings]]
id = "contacts"
action = "sendContact"
trigger = 'type = "identify"'

[[destinations.mappings]]
id = "customers"
action = "sendCustomer"
trigger = 'type = "group"'

[[destinations.mappings]]
id = "off"
action = "sendContact"
trigger = 'type = "identify"'
enabled = false

[[destinations.mappings]]
id = "strict"
action = "sendContact"
trigger = 'type = "identify" and traits.plan = "pro"'
mapping = { email = { "@path" = "$.traits.plan" } }

[[destinations]]
id = "cm-ios"
type = "actions-chartmogul"
sources = ["ios"]
settings = { chartmogul_webhook_url = "https://ios.example/hook?token=other" }

[[destinations.mappings]]
id = "contacts"
action = "sendContact"
trigger = 'type = "identify"'

[[destinations]]
id = "cm-off"
type = "actions-chartmogul"
enabled = false
sources = ["web"]
settings = { chartmogul_webhook_url = "https://off.example/hook" }

[[destinations.mappings]]
id = "contacts"
action = "sendContact"
trigger = 'type = "identify"'
"#;

fn workspace_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("workspace.toml");
    std::fs::write(&path, WORKSPACE_TOML).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A destination's result in a `--workspace` output line.
fn destination<'a>(output: &'a Value, id: &str) -> &'a Value {
    output["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|destination| destination["id"] == id)
        .unwrap()
}

#[test]
fn workspace_mode_reports_what_every_destination_and_mapping_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = workspace_file(&dir);
    let mut pro = identify();
    pro["traits"]["plan"] = json!("pro");
    pro["messageId"] = json!("msg-pro");
    let group = json!({"type": "group", "userId": "user-42", "groupId": "acme-1",
                       "messageId": "msg-2", "timestamp": "2024-03-01T12:00:00.000Z",
                       "sentAt": "2024-03-01T12:00:01.000Z", "traits": {"name": "Acme"}});
    let mut excluded = identify();
    excluded["integrations"] = json!({"All": false});
    let input = format!(
        "{}\n\n{}\n{}\n{}\n[1]\n{{oops\n",
        identify(),
        group,
        pro,
        excluded
    );
    let (status, stdout, stderr) = junction(&["eval", "--workspace", &workspace], &input);
    assert!(status.success(), "{stderr}");
    let out = parse_lines(&stdout);
    assert_eq!(out.len(), 6, "one line per non-blank input line: {stdout}");

    // Line 1, an identify: every destination in workspace order, every mapping of `cm`.
    assert_eq!(out[0]["line"], 1);
    assert_eq!(out[0]["message_id"], "msg-1");
    let ids: Vec<&str> = out[0]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cm", "cm-ios", "cm-off"]);
    let cm = destination(&out[0], "cm");
    assert_eq!(cm["status"], "routed");
    assert_eq!(
        cm["mappings"],
        json!([
            {"id": "contacts", "matched": true, "outcome": "ready", "error": null,
             "request": {
                 "method": "POST",
                 "url": "https://app.chartmogul.com/…",
                 "headers": {"content-type": "application/json",
                             "user-agent": "Segment (Actions)"},
                 "body": {"type": "Send Contact", "message_id": "msg-1",
                          "timestamp": "2024-03-01T12:00:00.000Z",
                          "sent_at": "2024-03-01T12:00:01.000Z", "user_id": "user-42",
                          "anonymous_id": "anon-1", "email": "jane@example.com",
                          "first_name": "Jane", "company": {"id": "acme-1", "name": "Acme"}}}},
            {"id": "customers", "matched": false, "outcome": "not_subscribed",
             "request": null, "error": null},
            {"id": "off", "matched": true, "outcome": "disabled", "request": null, "error": null},
            {"id": "strict", "matched": false, "outcome": "not_subscribed", "request": null,
             "error": null}
        ])
    );
    // Without --source every enabled destination routes; a disabled one runs nothing.
    let ios = destination(&out[0], "cm-ios");
    assert_eq!(ios["status"], "routed");
    assert_eq!(ios["mappings"][0]["outcome"], "ready");
    assert_eq!(
        ios["mappings"][0]["request"]["url"],
        "https://ios.example/…"
    );
    assert_eq!(
        destination(&out[0], "cm-off"),
        &json!({"id": "cm-off", "status": "disabled", "mappings": []})
    );
    // The webhook's secret token is in no output line.
    assert!(!stdout.contains("secret"), "{stdout}");

    // Line 3 (the blank line 2 is counted), a group: the customer.
    assert_eq!(out[1]["line"], 3);
    let cm = destination(&out[1], "cm");
    assert_eq!(cm["mappings"][1]["outcome"], "ready");
    assert_eq!(
        cm["mappings"][1]["request"]["body"],
        json!({"type": "Send Customer", "message_id": "msg-2",
               "timestamp": "2024-03-01T12:00:00.000Z", "sent_at": "2024-03-01T12:00:01.000Z",
               "user_id": "user-42", "group_id": "acme-1", "name": "Acme", "address": {}})
    );

    // Line 4: `strict` matches and its payload fails the schema, with the reference's message.
    let strict = &destination(&out[2], "cm")["mappings"][3];
    assert_eq!(strict["matched"], true);
    assert_eq!(strict["outcome"], "schema_error");
    assert_eq!(
        strict["error"],
        json!({"message": "Email must be a valid email address string but it was not.",
               "status": 400})
    );
    assert_eq!(strict["request"], Value::Null);

    // Line 5: the integrations object excludes every destination.
    assert_eq!(
        destination(&out[3], "cm"),
        &json!({"id": "cm", "status": "filtered_by_integrations", "mappings": []})
    );

    // Lines 6 and 7 are not events.
    assert_eq!(
        out[4],
        json!({"line": 6, "error": "an event must be a JSON object"})
    );
    assert_eq!(out[5]["line"], 7);
    assert!(
        out[5]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON: ")
    );
}

#[test]
fn workspace_mode_with_a_source_routes_only_what_it_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = workspace_file(&dir);
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, format!("{}\n", identify())).unwrap();
    let args = [
        "eval",
        "--workspace",
        &workspace,
        "--source",
        "ios",
        events.to_str().unwrap(),
    ];
    let (status, stdout, stderr) = junction(&args, "");
    assert!(status.success(), "{stderr}");
    let out = parse_lines(&stdout);
    assert_eq!(out.len(), 1);
    let statuses: Vec<(&str, &str)> = out[0]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("cm", "not_connected"),
            ("cm-ios", "routed"),
            ("cm-off", "disabled")
        ]
    );
    assert_eq!(
        destination(&out[0], "cm-ios")["mappings"][0]["request"]["body"]["email"],
        "jane@example.com"
    );

    let (status, _, stderr) = junction(
        &["eval", "--workspace", &workspace, "--source", "android"],
        "",
    );
    assert!(!status.success());
    assert!(stderr.contains("no source \"android\""), "{stderr}");
}

#[test]
fn workspace_mode_refuses_an_invalid_workspace_with_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        WORKSPACE_TOML.replace(r#"trigger = 'type = "group"'"#, "trigger = 'type = '"),
    )
    .unwrap();
    let (status, stdout, stderr) = junction(
        &["eval", "--workspace", path.to_str().unwrap()],
        &format!("{}\n", identify()),
    );
    assert!(!status.success());
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("mapping \"customers\""), "{stderr}");
}

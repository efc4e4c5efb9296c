//! Secrets stay secret (design §3.8): the real binary runs with a write key, a webhook URL whose
//! path and query carry tokens, and an admin token, all distinctive strings, with JSON logs at
//! debug level captured from stderr. Ingestion, delivery (one success, one dead letter), the
//! admin API (lookup, dead letter, debugger, metrics, probes, a wrong token) are exercised, and
//! no secret may appear in any log line, in the banner or in any API response.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Options, Running, body_of, post, request, start_with, terminate};
use crate::webhook::{Behaviour, Reply, Webhook};

const WRITE_KEY: &str = "wk-SECRET-4f7c2a9e";
const ADMIN_TOKEN: &str = "adm-SECRET-91d3b6f0";
const PATH_TOKEN: &str = "whp-SECRET-5e8a1c37";
const QUERY_TOKEN: &str = "whq-SECRET-c04f9b22";
const SECRETS: [&str; 4] = [WRITE_KEY, ADMIN_TOKEN, PATH_TOKEN, QUERY_TOKEN];

/// One request to the admin API with a bearer token; the status and the whole raw answer
/// (headers included).
fn admin_get(running: &Running, path: &str, token: &str) -> (u16, String) {
    let authorization = format!("Bearer {token}");
    request(
        &running.admin_address,
        "GET",
        path,
        &[("Authorization", &authorization)],
        "",
    )
}

/// POSTs JSON without an Authorization header (the write key is in the body).
fn post_without_key(address: &str, path: &str, body: &str) -> (u16, String) {
    request(
        address,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body,
    )
}

fn body_json(raw: &str) -> Value {
    let body = body_of(raw);
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {body}"))
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret}:\n{text}"
        );
    }
}

/// Polls `condition` every 50 ms for up to 30 s.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_files(dir: &Path, webhook_url: &str) -> (String, String) {
    let config = dir.join("junction.toml");
    std::fs::write(
        &config,
        "[delivery]\ntimeout_secs = 5\nlease_secs = 30\nbackoff_base_ms = 50\nbackoff_cap_secs = 1\n",
    )
    .unwrap();
    let workspace = dir.join("workspace.json");
    let document = json!({
        "sources": [{"id": "web", "name": "Web", "write_keys": [WRITE_KEY]}],
        "destinations": [{
            "id": "cm", "name": "ChartMogul", "type": "actions-chartmogul",
            "settings": {"chartmogul_webhook_url": webhook_url},
            "sources": ["web"],
            "mappings": [
                {"id": "contacts", "action": "sendContact", "name": "Send Contact",
                 "trigger": "type = \"identify\""},
                {"id": "customers", "action": "sendCustomer", "name": "Send Customer",
                 "trigger": "type = \"group\""}
            ]
        }]
    });
    std::fs::write(&workspace, document.to_string()).unwrap();
    (
        config.to_str().unwrap().to_owned(),
        workspace.to_str().unwrap().to_owned(),
    )
}

#[test]
fn no_secret_appears_in_logs_or_answers() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    let hook_path = format!("/api/webhooks/{PATH_TOKEN}");
    let webhook_url = webhook.url(&format!("{hook_path}?token={QUERY_TOKEN}"));
    let (config, workspace) = write_files(dir.path(), &webhook_url);
    let running = start_with(
        &dir.path().join("data"),
        &["--config", &config, "--workspace", &workspace],
        &Options {
            env: &[
                ("JUNCTION_LOG", "debug"),
                ("JUNCTION_LOG_FORMAT", "json"),
                ("JUNCTION_ADMIN_TOKEN", ADMIN_TOKEN),
            ],
            capture_stderr: true,
            ..Options::default()
        },
    );
    assert_no_secret("the banner", &running.banner.join("\n"));

    // The first request the webhook gets is refused for good (400): that job goes to the dead
    // letter; the next one is delivered.
    webhook.set(Behaviour::FailFirst {
        count: 1,
        reply: Reply::status(400),
    });
    let group = json!({"userId": "u1", "groupId": "acme-1", "messageId": "s-group",
                       "traits": {"name": "Acme"}});
    let (status, answer) = post(&running.address, "/v1/group", WRITE_KEY, &group.to_string());
    assert_eq!(status, 200, "{answer}");
    wait_until("the first delivery", || webhook.count() == 1);
    let identify = json!({"userId": "u1", "messageId": "s-identify",
                          "traits": {"email": "jane@example.com"}});
    for _ in 0..2 {
        // The second one is a duplicate (logged at debug level).
        let (status, answer) = post(
            &running.address,
            "/v1/identify",
            WRITE_KEY,
            &identify.to_string(),
        );
        assert_eq!(status, 200, "{answer}");
    }
    // The write key in the body rather than the header; a refused item; an unknown key.
    let batch = json!({"writeKey": WRITE_KEY, "batch": [
        {"type": "track", "userId": "u1", "event": "E", "messageId": "s-track"},
        {"type": "track", "event": "no identity"}
    ]});
    let (status, answer) = post_without_key(&running.address, "/v1/batch", &batch.to_string());
    assert_eq!(status, 200, "{answer}");
    let (status, _) = post(
        &running.address,
        "/v1/track",
        "wk-unknown",
        &json!({"userId": "u1", "event": "x"}).to_string(),
    );
    assert_eq!(status, 401);
    wait_until("the second delivery", || webhook.count() == 2);
    assert!(
        webhook.requests()[0].path.contains(PATH_TOKEN),
        "deliveries do go to the secret URL"
    );

    let mut answers = Vec::new();
    let (status, lookup) = admin_get(&running, "/api/v1/events/s-group", ADMIN_TOKEN);
    assert_eq!(status, 200, "{lookup}");
    wait_until("the dead letter", || {
        let (_, raw) = admin_get(&running, "/api/v1/dead-letter", ADMIN_TOKEN);
        body_json(&raw)["data"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    });
    answers.push(lookup);
    for path in [
        "/api/v1/events/s-identify",
        "/api/v1/dead-letter",
        "/api/v1/sources/web/events/recent",
        "/healthz",
        "/readyz",
    ] {
        let (status, raw) = admin_get(&running, path, ADMIN_TOKEN);
        assert_eq!(status, 200, "{path}: {raw}");
        answers.push(raw);
    }
    let (status, metrics) = admin_get(&running, "/metrics", ADMIN_TOKEN);
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains(
            "junction_deliveries_total{destination=\"cm\",outcome=\"succeeded\",status_class=\"2xx\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "junction_deliveries_total{destination=\"cm\",outcome=\"discarded\",status_class=\"4xx\"} 1\n"
        ),
        "{metrics}"
    );
    answers.push(metrics);
    let (status, refused) = admin_get(&running, "/metrics", "wrong-token");
    assert_eq!(status, 401);
    answers.push(refused);
    for answer in &answers {
        assert_no_secret("an admin API answer", answer);
    }

    let stderr = running.stderr.clone().unwrap();
    assert!(terminate(running), "junction serve exits 0 on SIGTERM");
    // The reader thread gets the last lines once the pipe closes.
    std::thread::sleep(Duration::from_millis(200));
    let lines = stderr.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("\"level\":\"DEBUG\"")),
        "debug logs were on: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("tracking request refused")),
        "the unknown key was logged: {lines:#?}"
    );
    for line in &lines {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "a log line that is not JSON: {line}");
        assert_no_secret("a log line", line);
    }
}

//! Deleting and suppressing a person end to end, against the real `junction serve`: events of a
//! person sent over HTTP, a `SUPPRESS_WITH_DELETE` regulation by email (through the CLI) covers
//! the whole profile — its events, jobs and profile go, her undelivered job is cancelled, the
//! audit record lists the covered identifiers as hashes with counts — a later event of hers is
//! answered 200 but neither stored nor routed and counted as suppressed; `UNSUPPRESS` by
//! `userId` lifts it. In a cluster on PostgreSQL, the deletion leaves no row behind in any
//! table and every node suppresses within its reload.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{ScratchDatabase, node, stop_cleanly};
use crate::util::{Running, admin, alongside_others, post, start, terminate};
use crate::webhook::{Behaviour, Reply, Webhook};

const WRITE_KEY: &str = "app-write-key";
const EMAIL: &str = "jane@example.com";

fn workspace(hook: &Webhook) -> Value {
    json!({
        "sources": [{"id": "app", "name": "App", "write_keys": [WRITE_KEY]}],
        "destinations": [
            {"id": "chartmogul", "name": "ChartMogul", "type": "actions-chartmogul",
             "settings": {"chartmogul_webhook_url": hook.url("/cm")},
             "sources": ["app"],
             "mappings": [
                {"id": "send-contact", "action": "sendContact", "trigger": "type = \"identify\""}
             ]}
        ]
    })
}

/// Runs `junction ARGS --json` against `running`'s admin API; its JSON answer.
fn junction(running: &Running, args: &[&str]) -> Value {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(args)
        .arg("--json")
        .env(
            "JUNCTION_ADMIN_URL",
            format!("http://{}", running.admin_address),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "junction {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Waits until `check` holds, up to `limit`.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn send(running: &Running, path: &str, body: &Value) {
    let (status, answer) = post(&running.address, path, WRITE_KEY, &body.to_string());
    assert_eq!(status, 200, "{answer}");
}

fn stored(running: &Running, message_id: &str) -> bool {
    let (status, body) = admin(
        &running.admin_address,
        "GET",
        &format!("/api/v1/events/{message_id}"),
        None,
    );
    assert!(status == 200 || status == 404, "{status}: {body}");
    status == 200
}

/// Waits until the regulation is finished; its view.
fn finished(running: &Running, id: &str) -> Value {
    let mut regulation = Value::Null;
    wait_until(Duration::from_secs(20), "the regulation finishes", || {
        regulation = junction(running, &["regulations", "show", id]);
        assert_ne!(regulation["status"], "failed", "{regulation}");
        regulation["status"] == "finished"
    });
    regulation
}

fn suppressed_metric(running: &Running) -> String {
    let (status, response) =
        crate::util::request(&running.admin_address, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    response
        .lines()
        .find(|line| line.starts_with("junction_events_suppressed_total{source=\"app\"}"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_person_is_deleted_suppressed_and_unsuppressed() {
    let _shared = alongside_others();
    let hook = Webhook::start();
    // ChartMogul is down: the identify jobs wait for a retry, not yet delivered.
    hook.set(Behaviour::Always(Reply::status(503)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workspace.json");
    std::fs::write(&path, workspace(&hook).to_string()).unwrap();
    let running = start(
        &dir.path().join("data"),
        &["--workspace", path.to_str().unwrap()],
    );
    let api = running.admin_address.clone();

    // Jane: one profile by her userId, email and anonymousId; Joe beside her.
    send(
        &running,
        "/v1/identify",
        &json!({"userId": "u1", "anonymousId": "a1", "traits": {"email": EMAIL},
                "messageId": "jane-identify"}),
    );
    send(
        &running,
        "/v1/track",
        &json!({"userId": "u1", "event": "Order Completed", "messageId": "jane-order"}),
    );
    send(
        &running,
        "/v1/page",
        &json!({"anonymousId": "a1", "name": "Pricing", "messageId": "jane-page"}),
    );
    send(
        &running,
        "/v1/identify",
        &json!({"userId": "u2", "traits": {"email": "joe@example.com"},
                "messageId": "joe-identify"}),
    );
    wait_until(
        Duration::from_secs(10),
        "both identify jobs were attempted",
        || hook.count() >= 2,
    );
    wait_until(
        Duration::from_secs(10),
        "Jane's profile holds 3 events",
        || {
            let (status, body) = admin(
                &api,
                "GET",
                &format!("/api/v1/profiles/email/{EMAIL}"),
                None,
            );
            status == 200 && body["data"]["recent_events"].as_array().map(Vec::len) == Some(3)
        },
    );

    // Her page view and Joe's identify saved as test events in the mapping editor.
    for (name, event) in [
        (
            "Jane browsing",
            json!({"type": "page", "anonymousId": "a1", "name": "Pricing"}),
        ),
        ("Joe", json!({"type": "identify", "userId": "u2"})),
    ] {
        let (status, answer) = admin(
            &api,
            "PUT",
            &format!(
                "/api/v1/destinations/chartmogul/samples/{}",
                name.replace(' ', "%20")
            ),
            Some(&json!({"event": event})),
        );
        assert_eq!(status, 200, "{answer}");
    }

    let created = junction(
        &running,
        &[
            "regulations",
            "create",
            "--type",
            "SUPPRESS_WITH_DELETE",
            "--email",
            EMAIL,
        ],
    );
    assert_eq!(created["type"], "SUPPRESS_WITH_DELETE");
    assert_eq!(created["identifiers"][0]["type"], "email");
    let id = created["id"].as_str().unwrap().to_owned();
    let regulation = finished(&running, &id);

    // The whole profile was covered and every stored event of it went, Joe's stayed.
    let mut types: Vec<&str> = regulation["covered_identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id["type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["anonymous_id", "email", "user_id"], "{regulation}");
    assert_eq!(regulation["counts"]["events_deleted"], 3, "{regulation}");
    assert_eq!(regulation["counts"]["profiles_deleted"], 1);
    assert_eq!(
        regulation["counts"]["jobs_deleted"], 1,
        "the identify's job"
    );
    assert_eq!(
        regulation["counts"]["jobs_cancelled"], 1,
        "it was awaiting a retry"
    );
    assert_eq!(regulation["counts"]["suppressed"], 3);
    assert_eq!(regulation["forwarded"], false);
    assert!(
        regulation["note"]
            .as_str()
            .is_some_and(|note| note.contains("ChartMogul")),
        "{regulation}"
    );
    let text = regulation.to_string();
    for value in [EMAIL, "u1", "a1"] {
        assert!(!text.contains(&format!("\"{value}\"")), "{value} in {text}");
    }
    for message_id in ["jane-identify", "jane-order", "jane-page"] {
        assert!(
            !stored(&running, message_id),
            "{message_id} is still stored"
        );
    }
    assert!(stored(&running, "joe-identify"));
    for (id_type, value) in [("email", EMAIL), ("user_id", "u1"), ("anonymous_id", "a1")] {
        let (status, _) = admin(
            &api,
            "GET",
            &format!("/api/v1/profiles/{id_type}/{value}"),
            None,
        );
        assert_eq!(status, 404, "{id_type}");
    }
    let (status, _) = admin(&api, "GET", "/api/v1/profiles/user_id/u2", None);
    assert_eq!(status, 200, "Joe's profile stays");

    // Suppressed: acknowledged as Segment does, neither stored nor routed, counted.
    send(
        &running,
        "/v1/track",
        &json!({"userId": "u1", "event": "Order Completed", "messageId": "jane-after"}),
    );
    let (status, answer) = post(
        &running.address,
        "/v1/batch",
        WRITE_KEY,
        &json!({"batch": [
            {"type": "track", "anonymousId": "a1", "event": "Viewed", "messageId": "jane-batch"},
            {"type": "track", "userId": "u2", "event": "Viewed", "messageId": "joe-batch"}
        ]})
        .to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(!stored(&running, "jane-after"));
    assert!(!stored(&running, "jane-batch"));
    assert!(stored(&running, "joe-batch"));
    assert_eq!(
        suppressed_metric(&running),
        "junction_events_suppressed_total{source=\"app\"} 2"
    );
    let (status, overview) = admin(
        &api,
        "GET",
        "/api/v1/destinations/chartmogul/overview",
        None,
    );
    assert_eq!(status, 200, "{overview}");
    assert_eq!(overview["data"]["suppressed"]["app"], 2);

    // The source debugger forgets her events too (its next round, within 5 s).
    wait_until(
        Duration::from_secs(10),
        "the debugger drops her events",
        || {
            let (status, recent) = admin(&api, "GET", "/api/v1/sources/app/events/recent", None);
            assert_eq!(status, 200);
            let text = recent.to_string();
            text.contains("joe-identify") && !text.contains("jane-")
        },
    );

    // And her saved sample goes (matched by the anonymousId the profile covers), Joe's stays.
    wait_until(
        Duration::from_secs(10),
        "her saved sample is removed",
        || {
            let (status, samples) =
                admin(&api, "GET", "/api/v1/destinations/chartmogul/samples", None);
            assert_eq!(status, 200);
            samples["data"].as_array().map(Vec::len) == Some(1)
        },
    );
    let (_, samples) = admin(&api, "GET", "/api/v1/destinations/chartmogul/samples", None);
    assert_eq!(samples["data"][0]["name"], "Joe");

    // Lifted by another of her identifiers: every hash the suppression added goes.
    let lifted = junction(
        &running,
        &[
            "regulations",
            "create",
            "--type",
            "UNSUPPRESS",
            "--user-id",
            "u1",
        ],
    );
    let lifted = finished(&running, lifted["id"].as_str().unwrap());
    assert_eq!(lifted["counts"]["unsuppressed"], 3, "{lifted}");
    send(
        &running,
        "/v1/track",
        &json!({"anonymousId": "a1", "event": "Viewed", "messageId": "jane-back"}),
    );
    assert!(stored(&running, "jane-back"));

    let listed = junction(&running, &["regulations", "list"]);
    let kinds: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["UNSUPPRESS", "SUPPRESS_WITH_DELETE"],
        "newest first"
    );
    assert!(terminate(running));
}

/// Sends events of `user` to `running` until one is dropped as suppressed (each with a new
/// `messageId`), within `limit`: how long the node takes to learn of the suppression.
fn until_suppressed(running: &Running, user: &str, limit: Duration) {
    let mut n = 0;
    wait_until(limit, "the node suppresses", || {
        n += 1;
        let message_id = format!("probe-{}-{n}", running.address);
        send(
            running,
            "/v1/track",
            &json!({"userId": user, "event": "Viewed", "messageId": message_id}),
        );
        !stored(running, &message_id)
    });
}

#[test]
fn in_a_cluster_a_deletion_reaches_every_table_and_every_node_suppresses() {
    let _shared = alongside_others();
    let database = ScratchDatabase::create();
    let url = database.url();
    let hook = Webhook::start();
    hook.set(Behaviour::Always(Reply::status(503)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workspace.json");
    std::fs::write(&path, workspace(&hook).to_string()).unwrap();
    let first = node(
        &dir.path().join("a"),
        &url,
        &["--workspace", path.to_str().unwrap()],
    );
    let second = node(&dir.path().join("b"), &url, &[]);

    send(
        &first,
        "/v1/identify",
        &json!({"userId": "u1", "traits": {"email": EMAIL}, "messageId": "jane-1"}),
    );
    send(
        &second,
        "/v1/identify",
        &json!({"userId": "u1", "anonymousId": "a1", "messageId": "jane-2"}),
    );
    send(
        &second,
        "/v1/identify",
        &json!({"userId": "u2", "messageId": "joe-1"}),
    );
    wait_until(
        Duration::from_secs(10),
        "every identify was attempted",
        || hook.count() >= 3,
    );
    wait_until(Duration::from_secs(20), "one profile holds both", || {
        let (status, body) = admin(
            &second.admin_address,
            "GET",
            "/api/v1/profiles/anonymous_id/a1",
            None,
        );
        status == 200 && body["data"]["recent_events"].as_array().map(Vec::len) == Some(2)
    });

    let created = junction(
        &second,
        &[
            "regulations",
            "create",
            "--type",
            "SUPPRESS_WITH_DELETE",
            "--email",
            EMAIL,
        ],
    );
    let regulation = finished(&first, created["id"].as_str().unwrap());
    assert_eq!(regulation["counts"]["events_deleted"], 2, "{regulation}");
    assert_eq!(regulation["counts"]["jobs_cancelled"], 2, "{regulation}");
    assert_eq!(
        regulation["covered_identifiers"].as_array().unwrap().len(),
        3
    );

    // Nothing of hers is left in any table (the partitioned ones included); Joe's is.
    let left = database.query(
        "SELECT (SELECT count(*) FROM events WHERE message_id LIKE 'jane-%')
              + (SELECT count(*) FROM jobs j JOIN events e ON e.id = j.event_id
                 WHERE e.message_id LIKE 'jane-%')
              + (SELECT count(*) FROM profile_identifiers WHERE value IN ('u1', 'a1', 'jane@example.com'))
              + (SELECT count(*) FROM regulations WHERE request IS NOT NULL
                 OR record LIKE '%jane@%')",
    );
    assert_eq!(left.trim(), "0");
    let orphans = database.query(
        "SELECT (SELECT count(*) FROM jobs WHERE event_id NOT IN (SELECT id FROM events))
              + (SELECT count(*) FROM job_queue WHERE event_id NOT IN (SELECT id FROM events))
              + (SELECT count(*) FROM job_transitions WHERE event_id NOT IN (SELECT id FROM events))
              + (SELECT count(*) FROM job_attempts WHERE event_id NOT IN (SELECT id FROM events))",
    );
    assert_eq!(orphans.trim(), "0", "no job row outlives its event");
    assert!(stored(&first, "joe-1"));

    // Whichever node leads the worker, both drop her events within a reload (5 s).
    for running in [&first, &second] {
        until_suppressed(running, "u1", Duration::from_secs(10));
    }
    stop_cleanly(first);
    stop_cleanly(second);
}

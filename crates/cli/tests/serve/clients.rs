//! Segment's official tracking libraries — `segment-analytics-python` 2.4.0 and
//! `@segment/analytics-node` 3.1.0, installed by `scripts/test` — send identify, group and track
//! calls to the real server; after it stops, every call must be stored once under the source of
//! the write key it was sent with, normalised (`messageId`, `receivedAt`, `sentAt`, skew-corrected
//! `timestamp` and `originalTimestamp`, checked with numbers) and routed: identify → a Send
//! Contact job with the exact body, group → a Send Customer job, track → not-matched discards.
//!
//! The libraries are never installed here: `scripts/test` installs the pinned versions under
//! `target/test-clients/` and names them in `JUNCTION_TEST_PYTHON` and
//! `JUNCTION_TEST_NODE_MODULES`. Without those the tests fail, saying so.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use junction_store::{DiscardReason, EventRecord, JobState, JobUrl};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::util::{StoredData, start, terminate};

/// Two sources, each with its own write key, both connected to a ChartMogul destination with
/// the two default mappings: the stored source tells which key an event came with.
const WORKSPACE: &str = r#"{
  "sources": [
    {"id": "python-app", "name": "Python app", "write_keys": ["python-write-key"]},
    {"id": "node-app", "name": "Node app", "write_keys": ["node-write-key"]}
  ],
  "destinations": [{
    "id": "chartmogul",
    "name": "ChartMogul",
    "type": "actions-chartmogul",
    "settings": {"chartmogul_webhook_url": "https://webhook.example/chartmogul/wh-secret-token"},
    "sources": ["python-app", "node-app"],
    "mappings": [
      {"id": "send-contact", "action": "sendContact", "name": "Send Contact",
       "trigger": "type = \"identify\""},
      {"id": "send-customer", "action": "sendCustomer", "name": "Send Customer",
       "trigger": "type = \"group\""}
    ]
  }]
}"#;

/// The calls every library sends: two identifies (one with a past timestamp of its own, so
/// skew correction moves it by a known amount), two groups and enough tracks that
/// analytics-node (15 events per request) sends several batches.
fn calls() -> Vec<Value> {
    let mut calls = vec![
        json!({"type": "identify", "userId": "user-1", "traits": {
            "email": "jane@example.com", "first_name": "Jane", "last_name": "Doe",
            "name": "Jane Doe", "title": "CTO", "phone": "+1 555 0100",
            "company": {"id": "acme-1", "name": "Acme Inc."}, "plan": "pro"}}),
        json!({"type": "identify", "userId": "user-2", "timestamp": "2024-03-01T12:00:00.000Z",
            "traits": {"email": "max@example.com"}}),
        json!({"type": "group", "userId": "user-1", "groupId": "acme-1", "traits": {
            "name": "Acme Inc.", "website": "https://acme.example",
            "address": {"street": "1 Main St", "city": "Berlin", "country": "DE"}}}),
        json!({"type": "group", "userId": "user-2", "groupId": "globex", "traits": {
            "name": "Globex"}}),
    ];
    for n in 0..20 {
        calls.push(
            json!({"type": "track", "userId": "user-1", "event": "Order Completed",
            "properties": {"order": n, "revenue": 42.5}}),
        );
    }
    calls
}

/// One library: how to run it, what it calls itself, which key and source it sends with.
struct Library {
    name: &'static str,
    version: &'static str,
    /// The name it puts in `context.library.name`.
    context_name: &'static str,
    write_key: &'static str,
    source_id: &'static str,
    command: Command,
}

/// A location `scripts/test` passes; its absence fails the test with what to do.
fn installed(variable: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{variable} is not set: the Segment client tests need the pinned client libraries, \
             which scripts/test installs (under target/test-clients/) before running \
             `cargo test --workspace` with their locations. Run the tests with scripts/test."
        ),
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/serve/clients")
        .join(name)
}

fn python(gzip: bool) -> (Library, bool) {
    let mut command = Command::new(installed("JUNCTION_TEST_PYTHON"));
    command.arg(script("send.py"));
    let library = Library {
        name: "analytics-python",
        version: "2.4.0",
        context_name: "analytics-python",
        write_key: "python-write-key",
        source_id: "python-app",
        command,
    };
    (library, gzip)
}

fn node() -> Library {
    let modules = installed("JUNCTION_TEST_NODE_MODULES");
    let node = std::env::var_os("JUNCTION_TEST_NODE").unwrap_or_else(|| "node".into());
    let mut command = Command::new(node);
    command
        .arg(script("send.cjs"))
        .env("JUNCTION_TEST_NODE_MODULES", modules);
    Library {
        name: "analytics-node",
        version: "3.1.0",
        context_name: "@segment/analytics-node",
        write_key: "node-write-key",
        source_id: "node-app",
        command,
    }
}

/// What a library said it sent for one call.
#[derive(Debug)]
struct Sent {
    message_id: String,
    /// The library's `timestamp` for the call: what must come back as `originalTimestamp`.
    timestamp: String,
}

/// Runs `library` against the server at `host`; what it reported for each call, in order.
fn send(mut library: Library, host: &str, gzip: bool, calls: &[Value]) -> Vec<Sent> {
    let input = json!({"host": host, "writeKey": library.write_key, "gzip": gzip, "calls": calls});
    let mut child = library
        .command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run the {} driver: {err}", library.name));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        library.name,
        output.status
    );
    let mut lines = stdout.lines().map(|line| {
        serde_json::from_str::<Value>(line).unwrap_or_else(|err| panic!("{err}: {line}"))
    });
    let header = lines.next().expect("the driver printed nothing");
    assert_eq!(
        header,
        json!({"library": library.name, "version": library.version}),
        "not the pinned client version: rerun scripts/test to reinstall"
    );
    let sent: Vec<Sent> = lines
        .map(|line| Sent {
            message_id: line["messageId"].as_str().unwrap().to_owned(),
            timestamp: line["timestamp"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(sent.len(), calls.len(), "{stdout}");
    sent
}

/// Sends `calls` with Segment's Python library to `running`, with the `python-write-key` write
/// key, and waits until the library flushed them.
pub fn send_python(running: &crate::util::Running, calls: &[Value]) {
    let (library, gzip) = python(false);
    send(library, &format!("http://{}", running.address), gzip, calls);
}

fn millis(text: &str) -> i64 {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|err| panic!("not an RFC 3339 time: {text:?}: {err}"));
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn text<'a>(payload: &'a Value, key: &str) -> &'a str {
    payload[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {payload}"))
}

/// Sends [`calls`] with `library`, stops the server, and checks every call in the store.
fn check_library(library: Library, gzip: bool) {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace.json");
    std::fs::write(&workspace, WORKSPACE).unwrap();
    let data = dir.path().join("data");
    let running = start(&data, &["--workspace", workspace.to_str().unwrap()]);
    let host = format!("http://{}", running.address);
    let calls = calls();
    let before = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let (source_id, context_name) = (library.source_id, library.context_name);
    let sent = send(library, &host, gzip, &calls);
    let after = OffsetDateTime::now_utc().unix_timestamp() * 1000 + 1000;
    assert!(terminate(running), "junction serve exits 0 on SIGTERM");

    let stored = StoredData::open(&data);
    let counts = stored.counts();
    assert_eq!(
        (counts.events, counts.duplicates),
        (calls.len() as u64, 0),
        "one stored event per call"
    );
    for (call, sent) in calls.iter().zip(&sent) {
        let record = stored.event(source_id, &sent.message_id);
        let context = format!("{call} sent as {sent:?}, stored as {record:#?}");
        check_normalised(&record, call, sent, context_name, (before, after), &context);
        check_routing(&record, call, &context);
    }
}

/// The stored event is the call, normalised: its own `messageId`, the server's `receivedAt`,
/// the batch's `sentAt`, and `timestamp = receivedAt − (sentAt − originalTimestamp)`.
fn check_normalised(
    record: &EventRecord,
    call: &Value,
    sent: &Sent,
    context_name: &str,
    (before, after): (i64, i64),
    context: &str,
) {
    let payload: Value = serde_json::from_slice(&record.payload).unwrap();
    assert_eq!(payload["type"], call["type"], "{context}");
    assert_eq!(payload["userId"], call["userId"], "{context}");
    assert_eq!(text(&payload, "messageId"), sent.message_id, "{context}");
    assert_eq!(
        payload["context"]["library"]["name"], context_name,
        "{context}"
    );
    assert!(payload.get("writeKey").is_none(), "{context}");

    let received = millis(text(&payload, "receivedAt"));
    assert_eq!(received, record.received_at, "{context}");
    assert!(
        (before..=after).contains(&received),
        "receivedAt is the server's clock: {context}"
    );
    // Both clients put `sentAt` on the batch only; the server copies it into every event.
    let sent_at = millis(text(&payload, "sentAt"));
    assert!(
        (before..=received + 1).contains(&sent_at),
        "sentAt is the client's clock when the batch left: {context}"
    );
    assert_eq!(
        text(&payload, "originalTimestamp"),
        sent.timestamp,
        "the client's timestamp is kept as originalTimestamp: {context}"
    );
    let original = millis(&sent.timestamp);
    let timestamp = millis(text(&payload, "timestamp"));
    let expected = received - (sent_at - original);
    assert!(
        (timestamp - expected).abs() <= 1,
        "timestamp {timestamp} should be receivedAt {received} − (sentAt {sent_at} − \
         originalTimestamp {original}) = {expected}: {context}"
    );
    if let Some(own) = call.get("timestamp").and_then(Value::as_str) {
        assert_eq!(original, millis(own), "{context}");
        // The correction only moves it by the request's time in flight.
        assert!((0..5_000).contains(&(timestamp - original)), "{context}");
    }
}

/// identify → one Send Contact job with the exact request; group → one Send Customer job;
/// track → a not-matched discard per mapping. The other mapping's miss is recorded too.
fn check_routing(record: &EventRecord, call: &Value, context: &str) {
    let payload: Value = serde_json::from_slice(&record.payload).unwrap();
    let message_id = text(&payload, "messageId");
    let timestamp = text(&payload, "timestamp");
    let sent_at = text(&payload, "sentAt");
    let not_matched = |mapping: &str, trigger: &str| {
        (
            "chartmogul".to_owned(),
            Some(mapping.to_owned()),
            DiscardReason::NotMatched,
            format!("trigger did not match: {trigger}"),
        )
    };
    let contact_miss = not_matched("send-contact", r#"type = "identify""#);
    let customer_miss = not_matched("send-customer", r#"type = "group""#);
    let (expected_job, expected_discards) = match (
        call["type"].as_str().unwrap(),
        call["userId"].as_str().unwrap(),
    ) {
        ("identify", "user-1") => (
            Some((
                "send-contact",
                json!({"type": "Send Contact", "message_id": message_id,
                    "timestamp": timestamp, "sent_at": sent_at, "user_id": "user-1",
                    "email": "jane@example.com", "first_name": "Jane", "last_name": "Doe",
                    "name": "Jane Doe", "title": "CTO", "phone": "+1 555 0100",
                    "company": {"id": "acme-1", "name": "Acme Inc."}}),
            )),
            vec![customer_miss],
        ),
        ("identify", _) => (
            Some((
                "send-contact",
                json!({"type": "Send Contact", "message_id": message_id,
                    "timestamp": timestamp, "sent_at": sent_at, "user_id": "user-2",
                    "email": "max@example.com"}),
            )),
            vec![customer_miss],
        ),
        ("group", "user-1") => (
            Some((
                "send-customer",
                json!({"type": "Send Customer", "message_id": message_id,
                    "timestamp": timestamp, "sent_at": sent_at, "user_id": "user-1",
                    "group_id": "acme-1", "name": "Acme Inc.", "website": "https://acme.example",
                    "address": {"street": "1 Main St", "city": "Berlin", "country": "DE"}}),
            )),
            vec![contact_miss],
        ),
        ("group", _) => (
            Some((
                "send-customer",
                json!({"type": "Send Customer", "message_id": message_id,
                    "timestamp": timestamp, "sent_at": sent_at, "user_id": "user-2",
                    "group_id": "globex", "name": "Globex", "address": {}}),
            )),
            vec![contact_miss],
        ),
        _ => (None, vec![contact_miss, customer_miss]),
    };

    let discards: Vec<_> = record
        .discards
        .iter()
        .map(|d| {
            (
                d.destination_id.clone(),
                d.subscription_id.clone(),
                d.reason,
                d.message.clone(),
            )
        })
        .collect();
    assert_eq!(discards, expected_discards, "{context}");

    match expected_job {
        None => assert!(record.jobs.is_empty(), "{context}"),
        Some((mapping, body)) => {
            assert_eq!(record.jobs.len(), 1, "{context}");
            let job = &record.jobs[0];
            assert_eq!(job.job.destination_id, "chartmogul", "{context}");
            assert_eq!(job.job.subscription_id, mapping, "{context}");
            assert_eq!(job.job.method, "POST", "{context}");
            assert_eq!(
                job.job.url,
                JobUrl::Setting("chartmogul_webhook_url".to_owned()),
                "{context}"
            );
            assert_eq!(job.job.endpoint, "chartmogul|webhook.example", "{context}");
            for header in [
                ("content-type", "application/json"),
                ("user-agent", "Segment (Actions)"),
            ] {
                assert!(
                    job.job
                        .headers
                        .iter()
                        .any(|(name, value)| (name.as_str(), value.as_str()) == header),
                    "missing header {header:?}: {context}"
                );
            }
            // The exact bytes: the keys in the action's field order, nothing else.
            assert_eq!(
                String::from_utf8_lossy(&job.job.body),
                body.to_string(),
                "{context}"
            );
            // Created pending; the engine may already have tried the (unreachable) webhook.
            let first = &job.transitions[0];
            assert_eq!(
                (first.seq, first.state, first.attempt),
                (0, JobState::Pending, 0),
                "{context}"
            );
        }
    }
}

#[test]
fn analytics_python_calls_are_stored_normalised_and_routed() {
    let _shared = crate::util::alongside_others();
    let (library, gzip) = python(false);
    check_library(library, gzip);
}

#[test]
fn analytics_python_gzip_batches_are_stored_normalised_and_routed() {
    let _shared = crate::util::alongside_others();
    let (library, gzip) = python(true);
    check_library(library, gzip);
}

#[test]
fn analytics_node_calls_are_stored_normalised_and_routed() {
    let _shared = crate::util::alongside_others();
    check_library(node(), false);
}

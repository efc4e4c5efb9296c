//! Delivery end to end (issue 4's "Done when"): real Segment events go in through the Tracking
//! API of the real `junction serve`, out to the programmable webhook (`webhook.rs`), and every
//! scenario is checked with exact counts on both sides: what the webhook received and what the
//! admin API tells (attempts, transitions, dead letter, replays).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{
    Connection, Running, SAMPLE_SOURCE, SAMPLE_WRITE_KEY, StoredData, admin, kill_hard, post,
    start, terminate,
};
use crate::webhook::{Behaviour, Received, Reply, Webhook};

/// The webhook path: ChartMogul's URLs carry a secret token there.
const HOOK: &str = "/hook/secret-token";
/// How long a poll waits at most. Generous: the machine has two cores and other builds run.
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Set-up: config, workspace, events.

/// A config file with a short request timeout and lease and fast retries (50 ms doubling, capped
/// at 1 s), so that the scenarios take seconds.
fn config(dir: &Path, timeout_secs: u64, lease_secs: u64) -> PathBuf {
    let path = dir.join("junction.toml");
    std::fs::write(
        &path,
        format!(
            "[delivery]\ntimeout_secs = {timeout_secs}\nlease_secs = {lease_secs}\n\
             backoff_base_ms = 50\nbackoff_cap_secs = 1\n"
        ),
    )
    .unwrap();
    path
}

/// The sample workspace (`examples/workspace.json`: identify → Send Contact, group → Send
/// Customer, default mappings) delivering to `url`.
fn sample_workspace(url: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace.json");
    let mut workspace: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    workspace["destinations"][0]["settings"]["chartmogul_webhook_url"] = json!(url);
    workspace
}

/// A workspace of the sample source and `destinations`.
fn workspace(destinations: Vec<Value>) -> Value {
    json!({
        "sources": [{"id": SAMPLE_SOURCE, "name": "Sample app", "write_keys": [SAMPLE_WRITE_KEY]}],
        "destinations": destinations,
    })
}

/// A ChartMogul destination of the sample source with one Send Contact mapping (default mapping,
/// plus `mapping` over it).
fn contact_destination(id: &str, url: &str, delivery: Value, mapping: Option<Value>) -> Value {
    let mut contact = json!({
        "id": "send-contact",
        "action": "sendContact",
        "name": "Send Contact",
        "trigger": "type = \"identify\"",
    });
    if let Some(mapping) = mapping {
        contact["mapping"] = mapping;
    }
    json!({
        "id": id,
        "name": id,
        "type": "actions-chartmogul",
        "settings": {"chartmogul_webhook_url": url},
        "sources": [SAMPLE_SOURCE],
        "mappings": [contact],
        "delivery": delivery,
    })
}

fn write_workspace(dir: &Path, name: &str, workspace: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(workspace).unwrap()).unwrap();
    path
}

/// `junction serve` over `dir/data` with this config and workspace.
fn serve(dir: &Path, config: &Path, workspace: &Path) -> Running {
    start(
        &dir.join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--workspace",
            workspace.to_str().unwrap(),
        ],
    )
}

/// An identify call the Send Contact default mapping turns into a job.
fn identify(message_id: &str, n: usize) -> Value {
    json!({
        "type": "identify",
        "messageId": message_id,
        "userId": format!("user-{n}"),
        "timestamp": "2024-03-01T12:00:00.000Z",
        "traits": {
            "email": format!("user{n}@example.com"),
            "name": format!("User {n}"),
            "company": {"id": format!("acme-{n}"), "name": "Acme"},
        },
    })
}

/// A group call the Send Customer default mapping turns into a job.
fn group(message_id: &str, n: usize) -> Value {
    json!({
        "type": "group",
        "messageId": message_id,
        "userId": format!("user-{n}"),
        "groupId": format!("acme-{n}"),
        "timestamp": "2024-03-01T12:00:00.000Z",
        "traits": {"name": format!("Acme {n}"), "email": format!("billing{n}@acme.example")},
    })
}

/// `prefix-0` … `prefix-{count-1}`.
fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

/// Sends `events` in one `/v1/batch` and checks that all were accepted.
fn send_batch(running: &Running, events: &[Value]) {
    let body = json!({"batch": events, "sentAt": "2024-03-01T12:00:01.000Z"}).to_string();
    let (status, answer) = post(&running.address, "/v1/batch", SAMPLE_WRITE_KEY, &body);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["accepted"], events.len(), "{answer}");
}

// ---------------------------------------------------------------------------------------------
// The admin API.

/// Every job of every stored event with this `messageId`, as the lookup shows them.
fn jobs(running: &Running, message_id: &str) -> Vec<Value> {
    let (status, body) = admin(
        &running.admin_address,
        "GET",
        &format!("/api/v1/events/{message_id}"),
        None,
    );
    assert_eq!(status, 200, "lookup {message_id}: {body}");
    body["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|event| event["jobs"].as_array().unwrap().clone())
        .collect()
}

/// Waits until every job of each of `message_ids` satisfies `done` (there is at least one); the
/// jobs by message id then.
fn wait_for_jobs(
    running: &Running,
    message_ids: &[String],
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> BTreeMap<String, Vec<Value>> {
    let deadline = Instant::now() + PATIENCE;
    let mut settled = BTreeMap::new();
    let mut waiting: Vec<&String> = message_ids.iter().collect();
    loop {
        waiting.retain(|id| {
            let jobs = jobs(running, id);
            if !jobs.is_empty() && jobs.iter().all(&done) {
                settled.insert((*id).clone(), jobs);
                false
            } else {
                true
            }
        });
        if waiting.is_empty() {
            return settled;
        }
        if Instant::now() > deadline {
            let id = waiting[0];
            panic!(
                "{} of {} events not {what} within {PATIENCE:?}; {id}: {:#}",
                waiting.len(),
                message_ids.len(),
                Value::Array(jobs(running, id))
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |job| job["state"] == state
}

/// The dead letter as listed with `query` (`key=value&…`).
fn dead_letter(running: &Running, query: &str) -> Vec<Value> {
    let (status, body) = admin(
        &running.admin_address,
        "GET",
        &format!("/api/v1/dead-letter?{query}"),
        None,
    );
    assert_eq!(status, 200, "dead letter {query}: {body}");
    body["data"].as_array().unwrap().clone()
}

/// Waits until the dead letter listed with `query` has `count` jobs; they then.
fn wait_for_dead_letter(running: &Running, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let dead = dead_letter(running, query);
        if dead.len() >= count || Instant::now() > deadline {
            assert_eq!(dead.len(), count, "dead letter {query}: {dead:#?}");
            return dead;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Replays (POST /dead-letter/replay) and checks that none failed; the replayed pairs.
fn replay(running: &Running, request: &Value) -> Vec<(i64, i64)> {
    let (status, body) = admin(
        &running.admin_address,
        "POST",
        "/api/v1/dead-letter/replay",
        Some(request),
    );
    assert_eq!(status, 200, "replay {request}: {body}");
    assert_eq!(body["data"]["failed"], json!([]), "{body}");
    body["data"]["replayed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair["job_id"].as_i64().unwrap(),
                pair["replay_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn states(job: &Value) -> Vec<&str> {
    job["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect()
}

fn attempt_statuses(job: &Value) -> Vec<Option<u64>> {
    job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the webhook received.

/// The received requests per `message_id`, in order of arrival.
fn by_message_id(requests: &[Received]) -> HashMap<String, Vec<&Received>> {
    let mut map: HashMap<String, Vec<&Received>> = HashMap::new();
    for request in requests {
        map.entry(request.message_id()).or_default().push(request);
    }
    map
}

/// Whether every one of `message_ids` was answered `status` at least once.
fn all_answered(requests: &[Received], message_ids: &[String], status: u16) -> bool {
    let answered: HashSet<String> = requests
        .iter()
        .filter(|r| r.status == status)
        .map(Received::message_id)
        .collect();
    message_ids.iter().all(|id| answered.contains(id))
}

/// The 99th percentile (nearest rank).
fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let rank = (samples.len() * 99).div_ceil(100).max(1);
    samples[rank - 1]
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// The reference's request for the sample mappings: one conformance vector's expected JSON with
/// the values that differ per event (its `message_id`, and the `timestamp` as Junction
/// corrected it for clock skew from the stored event) put in.
fn reference_body(vector: &str, message_id: &str, stored_event: &Value) -> String {
    let vectors = junction_spec_vectors::load("chartmogul.json").unwrap();
    let vector = vectors.iter().find(|v| v.name == vector).unwrap();
    let mut expected = vector.get("expected_request").unwrap()["json"].clone();
    expected["message_id"] = json!(message_id);
    expected["timestamp"] = stored_event["timestamp"].clone();
    serde_json::to_string(&expected).unwrap()
}

/// The conformance vector's event, with its own `messageId`.
fn reference_event(vector: &str, message_id: &str) -> Value {
    let vectors = junction_spec_vectors::load("chartmogul.json").unwrap();
    let vector = vectors.iter().find(|v| v.name == vector).unwrap();
    let mut event = vector.get("event").unwrap().clone();
    event["messageId"] = json!(message_id);
    event
}

const CONTACT_VECTOR: &str = "sendContact default mappings, full identify event";
const CUSTOMER_VECTOR: &str = "sendCustomer default mappings, full group event";

#[test]
fn every_event_is_delivered_once_with_the_reference_payload() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    let config = config(dir.path(), 2, 10);
    let workspace = write_workspace(
        dir.path(),
        "workspace.json",
        &sample_workspace(&webhook.url(HOOK)),
    );
    let running = serve(dir.path(), &config, &workspace);

    // The reference's two full events on their own endpoints, then a batch of both kinds.
    let contact_id = "a-reference-contact";
    let customer_id = "a-reference-customer";
    for (path, event) in [
        ("/v1/identify", reference_event(CONTACT_VECTOR, contact_id)),
        ("/v1/group", reference_event(CUSTOMER_VECTOR, customer_id)),
    ] {
        let (status, answer) = post(&running.address, path, SAMPLE_WRITE_KEY, &event.to_string());
        assert_eq!((status, answer.as_str()), (200, r#"{"success":true}"#));
    }
    let identifies = ids("a-identify", 10);
    let groups = ids("a-group", 10);
    let mut batch: Vec<Value> = identifies
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    batch.extend(groups.iter().enumerate().map(|(n, id)| group(id, n)));
    send_batch(&running, &batch);

    let mut all: Vec<String> = vec![contact_id.to_owned(), customer_id.to_owned()];
    all.extend(identifies.iter().cloned());
    all.extend(groups.iter().cloned());
    webhook.wait_for("every event delivered", PATIENCE, |r| {
        all_answered(r, &all, 200)
    });
    // Once every job is recorded as succeeded nothing is left to send: the counts are final.
    let stories = wait_for_jobs(&running, &all, "succeeded", state_is("succeeded"));
    for (id, jobs) in &stories {
        assert_eq!(jobs.len(), 1, "{id}: one job (the other mapping discards)");
        assert_eq!(states(&jobs[0]), ["pending", "succeeded"], "{id}");
        assert_eq!(attempt_statuses(&jobs[0]), [Some(200)], "{id}");
    }
    let requests = webhook.requests();
    assert_eq!(requests.len(), all.len(), "one request per event");
    let received = by_message_id(&requests);
    for id in &all {
        assert_eq!(received[id].len(), 1, "{id} delivered once");
    }
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", HOOK)
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("user-agent"), Some("Segment (Actions)"));
    }
    assert!(terminate(running));

    // Byte for byte: what arrived is the stored job's body, and for the reference's events, the
    // reference's request.
    let stored = StoredData::open(&dir.path().join("data"));
    for id in &all {
        let record = stored.event(SAMPLE_SOURCE, id);
        let event: Value = serde_json::from_slice(&record.payload).unwrap();
        let request = received[id][0];
        assert_eq!(record.jobs.len(), 1, "{id}");
        let job = &record.jobs[0].job;
        assert_eq!(
            String::from_utf8_lossy(&request.body),
            String::from_utf8_lossy(&job.body),
            "{id}: the stored body is sent as is"
        );
        assert!(
            job.headers
                .iter()
                .any(|(k, v)| k == "user-agent" && v == "Segment (Actions)")
        );
        let body = request.json();
        let is_contact = event["type"] == "identify";
        let expected_type = if is_contact {
            "Send Contact"
        } else {
            "Send Customer"
        };
        assert_eq!(body["type"], expected_type, "{id}");
        assert_eq!(body["message_id"], id.as_str());
        assert_eq!(body["user_id"], event["userId"]);
        assert_eq!(body["timestamp"], event["timestamp"]);
        assert_eq!(body["sent_at"], event["sentAt"]);
        assert_eq!(body["email"], event["traits"]["email"]);
        if is_contact {
            assert_eq!(body["company"], event["traits"]["company"]);
            assert_eq!(body["name"], event["traits"]["name"]);
        } else {
            assert_eq!(body["group_id"], event["groupId"]);
            assert_eq!(body["name"], event["traits"]["name"]);
        }
        let vector = match id.as_str() {
            id if id == contact_id => Some(CONTACT_VECTOR),
            id if id == customer_id => Some(CUSTOMER_VECTOR),
            _ => None,
        };
        if let Some(vector) = vector {
            assert_eq!(
                String::from_utf8_lossy(&request.body),
                reference_body(vector, id, &event),
                "{id}: the reference's payload"
            );
        }
    }
}

#[test]
fn a_failing_webhook_gets_every_event_once_it_recovers() {
    let _shared = crate::util::alongside_others();
    const FAILURES: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    webhook.set(Behaviour::FailFirst {
        count: FAILURES,
        reply: Reply::status(500),
    });
    let config = config(dir.path(), 2, 10);
    let workspace = write_workspace(
        dir.path(),
        "workspace.json",
        &sample_workspace(&webhook.url(HOOK)),
    );
    let running = serve(dir.path(), &config, &workspace);
    let identifies = ids("b-identify", 12);
    let groups = ids("b-group", 8);
    let mut batch: Vec<Value> = identifies
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    batch.extend(groups.iter().enumerate().map(|(n, id)| group(id, n)));
    send_batch(&running, &batch);
    let all: Vec<String> = identifies.iter().chain(&groups).cloned().collect();

    webhook.wait_for("every event delivered", PATIENCE, |r| {
        all_answered(r, &all, 200)
    });
    let stories = wait_for_jobs(&running, &all, "succeeded", state_is("succeeded"));
    let requests = webhook.requests();
    let received = by_message_id(&requests);
    assert_eq!(
        requests.len(),
        all.len() + FAILURES,
        "each 500 retried once"
    );
    assert_eq!(
        requests.iter().filter(|r| r.status == 500).count(),
        FAILURES
    );
    let mut recorded_failures = 0;
    for (id, jobs) in &stories {
        assert_eq!(jobs.len(), 1, "{id}");
        let job = &jobs[0];
        let seen: Vec<u16> = received[id].iter().map(|r| r.status).collect();
        assert_eq!(
            seen.iter().filter(|s| **s == 200).count(),
            1,
            "{id}: delivered once"
        );
        assert_eq!(seen.last(), Some(&200), "{id}: nothing after the success");
        let failed = seen.len() - 1;
        recorded_failures += failed;
        // The audit trail tells the same story as the webhook.
        let attempts = job["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), seen.len(), "{id}: {job:#}");
        for (n, (attempt, status)) in attempts.iter().zip(&seen).enumerate() {
            assert_eq!(attempt["attempt"], n + 1, "{id}");
            assert_eq!(attempt["status"], *status, "{id}");
            let class = if *status == 500 {
                json!("http_status")
            } else {
                Value::Null
            };
            assert_eq!(attempt["error_class"], class, "{id}");
        }
        let mut expected = vec!["pending"];
        expected.extend(std::iter::repeat_n("awaiting_retry", failed));
        expected.push("succeeded");
        assert_eq!(states(job), expected, "{id}");
    }
    assert_eq!(recorded_failures, FAILURES);
    assert!(terminate(running));
}

#[test]
fn retry_after_pauses_the_whole_lane() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    webhook.set(Behaviour::FailFirst {
        count: 1,
        reply: Reply::status(429).header("retry-after", "2"),
    });
    let config = config(dir.path(), 2, 10);
    let workspace = write_workspace(
        dir.path(),
        "workspace.json",
        &sample_workspace(&webhook.url(HOOK)),
    );
    let running = serve(dir.path(), &config, &workspace);

    // One event meets the 429; the next ones arrive while the lane is paused.
    let first = "c-first".to_owned();
    send_batch(&running, &[identify(&first, 0)]);
    let answered = webhook.wait_for("the 429 answered", PATIENCE, |r| {
        r.first().is_some_and(|r| r.answered_at.is_some())
    });
    assert_eq!((answered.len(), answered[0].status), (1, 429));
    let paused_at = answered[0].answered_at.unwrap();
    let later = ids("c-later", 10);
    let events: Vec<Value> = later
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n + 1))
        .collect();
    send_batch(&running, &events);
    let sent_later = Instant::now();
    let mut all = later.clone();
    all.push(first.clone());

    webhook.wait_for("every event delivered", PATIENCE, |r| {
        all_answered(r, &all, 200)
    });
    let stories = wait_for_jobs(&running, &all, "succeeded", state_is("succeeded"));
    let requests = webhook.requests();
    assert_eq!(requests.len(), all.len() + 1, "only the 429 was retried");
    for request in &requests[1..] {
        let after = request.at.duration_since(paused_at);
        assert!(
            after >= Duration::from_secs(2),
            "{} reached the paused lane {after:?} after the 429",
            request.message_id()
        );
        assert_eq!(request.status, 200);
    }
    assert!(
        sent_later.duration_since(paused_at) < Duration::from_secs(2),
        "the later events were sent during the pause"
    );
    let received = by_message_id(&requests);
    for id in &later {
        assert_eq!(received[id].len(), 1, "{id}");
    }
    let job = &stories[&first][0];
    assert_eq!(attempt_statuses(job), [Some(429), Some(200)], "{job:#}");
    assert_eq!(states(job), ["pending", "awaiting_retry", "succeeded"]);
    let retry = &job["transitions"][1];
    let waited = retry["next_at"].as_i64().unwrap() - retry["at"].as_i64().unwrap();
    assert!(waited >= 1_900, "Retry-After honoured for the job: {retry}");
    assert!(terminate(running));
}

#[test]
fn client_errors_are_discarded_after_one_attempt_and_replayable() {
    let _shared = crate::util::alongside_others();
    const EVENTS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    let statuses = [400u16, 401, 404];
    let destinations = statuses
        .iter()
        .map(|status| {
            let path = format!("/hook/{status}");
            webhook.set_path(&path, Behaviour::Always(Reply::status(*status)));
            contact_destination(&format!("d{status}"), &webhook.url(&path), json!({}), None)
        })
        .collect();
    let config = config(dir.path(), 2, 10);
    let workspace = write_workspace(dir.path(), "workspace.json", &workspace(destinations));
    let running = serve(dir.path(), &config, &workspace);
    let all = ids("d-identify", EVENTS);
    let events: Vec<Value> = all
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    send_batch(&running, &events);

    let dead = wait_for_dead_letter(&running, "state=discarded", EVENTS * statuses.len());
    let mut dead_ids: HashMap<String, Vec<i64>> = HashMap::new();
    for job in &dead {
        let destination = job["destination_id"].as_str().unwrap();
        let status: u16 = destination[1..].parse().unwrap();
        assert_eq!(job["state"], "discarded", "{job:#}");
        assert_eq!(job["status"], status, "{job:#}");
        assert_eq!(job["error_class"], "http_status", "{job:#}");
        assert_eq!(job["attempts"], 1, "{job:#}");
        assert_eq!(job["mapping_id"], "send-contact");
        assert!(
            job["detail"]
                .as_str()
                .unwrap()
                .starts_with(&status.to_string()),
            "{job:#}"
        );
        assert_eq!(job["replayed_by"], Value::Null);
        dead_ids
            .entry(destination.to_owned())
            .or_default()
            .push(job["id"].as_i64().unwrap());
    }
    // The filters select by destination and by error class.
    assert_eq!(dead_letter(&running, "destination_id=d401").len(), EVENTS);
    assert_eq!(
        dead_letter(&running, "error_class=http_status&state=discarded").len(),
        EVENTS * statuses.len()
    );
    assert_eq!(dead_letter(&running, "state=expired").len(), 0);
    // Exactly one attempt each: discarded jobs are out of the queue, so nothing more can come.
    let failed = webhook.requests();
    assert_eq!(failed.len(), EVENTS * statuses.len());
    for status in statuses {
        let path = format!("/hook/{status}");
        let on_path: Vec<&Received> = failed.iter().filter(|r| r.path == path).collect();
        assert_eq!(on_path.len(), EVENTS, "{path}");
        assert!(on_path.iter().all(|r| r.status == status));
    }

    // The endpoints are fixed: replay, selecting by ids, by destination, by error class.
    webhook.clear_paths();
    let mut replayed = replay(
        &running,
        &json!({"job_ids": dead_ids["d400"], "mode": "as_is"}),
    );
    replayed.extend(replay(
        &running,
        &json!({"filter": {"destination_id": "d401"}, "mode": "as_is"}),
    ));
    replayed.extend(replay(
        &running,
        &json!({"filter": {"destination_id": "d404", "error_class": "http_status",
                           "state": "discarded"}, "mode": "as_is"}),
    ));
    assert_eq!(replayed.len(), EVENTS * statuses.len());
    let replay_of: HashMap<i64, i64> = replayed.iter().map(|(job, new)| (*new, *job)).collect();

    let stories = wait_for_jobs(&running, &all, "replayed and delivered", |job| {
        job["replay_of"].is_null() || job["state"] == "succeeded"
    });
    let requests = webhook.requests();
    assert_eq!(requests.len(), 2 * EVENTS * statuses.len());
    let received = by_message_id(&requests);
    for (id, jobs) in &stories {
        assert_eq!(
            jobs.len(),
            2 * statuses.len(),
            "{id}: originals and replays"
        );
        for job in jobs {
            match job["replay_of"].as_i64() {
                None => {
                    assert_eq!(states(job), ["pending", "discarded"], "{job:#}");
                    assert_eq!(attempt_statuses(job).len(), 1);
                }
                Some(original) => {
                    assert_eq!(replay_of[&job["id"].as_i64().unwrap()], original);
                    assert_eq!(states(job), ["pending", "succeeded"], "{job:#}");
                    assert_eq!(attempt_statuses(job), [Some(200)]);
                }
            }
        }
        // As is: each path got the same bytes again.
        for status in statuses {
            let path = format!("/hook/{status}");
            let on_path: Vec<&&Received> = received[id].iter().filter(|r| r.path == path).collect();
            assert_eq!(on_path.len(), 2, "{id} {path}");
            assert_eq!(
                (on_path[0].status, on_path[1].status),
                (status, 200),
                "{id}"
            );
            assert_eq!(on_path[0].body, on_path[1].body, "{id}: replayed as is");
        }
    }
    // Replayed jobs leave the default listing and show who replayed them.
    assert_eq!(dead_letter(&running, "").len(), 0);
    let with_replayed = dead_letter(&running, "include_replayed=true");
    assert_eq!(with_replayed.len(), EVENTS * statuses.len());
    for job in &with_replayed {
        let by = job["replayed_by"].as_i64().unwrap();
        assert_eq!(replay_of[&by], job["id"].as_i64().unwrap());
    }
    assert!(terminate(running));
}

/// Every `PRO`th event is on the "pro" plan, which is all that destination A's trigger takes.
const PRO: usize = 5;

/// Sends `message_ids` one request each on a keep-alive connection, about every 10 ms, the way a
/// tracking library trickles events; when each was sent.
fn trickle(running: &Running, message_ids: &[String]) -> HashMap<String, Instant> {
    let mut connection = Connection::open(&running.address, SAMPLE_WRITE_KEY).unwrap();
    let mut sent = HashMap::new();
    for (n, id) in message_ids.iter().enumerate() {
        let mut event = identify(id, n);
        event["traits"]["plan"] = json!(if n % PRO == 0 { "pro" } else { "free" });
        sent.insert(id.clone(), Instant::now());
        let (status, answer) = connection.post("/v1/identify", &event.to_string()).unwrap();
        assert_eq!(status, 200, "{answer}");
        std::thread::sleep(Duration::from_millis(10));
    }
    sent
}

/// From sending each event to the webhook receiving it.
fn latencies(sent: &HashMap<String, Instant>, requests: &[Received]) -> Vec<Duration> {
    requests
        .iter()
        .filter_map(|r| {
            let id = r.message_id();
            sent.get(&id).map(|at| r.at.duration_since(*at))
        })
        .collect()
}

#[test]
fn a_hanging_endpoint_is_retried_and_does_not_slow_another_lane() {
    let _alone = crate::util::alone();
    const EVENTS: usize = 100;
    const TO_A: usize = EVENTS / PRO;
    let dir = tempfile::tempdir().unwrap();
    let hook_a = Webhook::start();
    let hook_b = Webhook::start();
    // A takes a fifth of the events: with its adaptive limit fallen to one, each job takes a
    // one-second timeout and a due retry waits behind the jobs the lane holds (at least 8) and
    // any first attempts due before it; a fifth keeps that wait, and the test, short.
    let mut a = contact_destination("a", &hook_a.url(HOOK), json!({}), None);
    a["mappings"][0]["trigger"] = json!("type = \"identify\" and traits.plan = \"pro\"");
    let b = contact_destination("b", &hook_b.url(HOOK), json!({}), None);
    // A request times out after 1 s.
    let config = config(dir.path(), 1, 10);
    let workspace = write_workspace(dir.path(), "workspace.json", &workspace(vec![a, b]));
    let running = serve(dir.path(), &config, &workspace);

    // Baseline: both endpoints answer at once.
    let baseline_ids = ids("e-baseline", EVENTS);
    let sent = trickle(&running, &baseline_ids);
    let from_b = hook_b.wait_for("baseline delivered to B", PATIENCE, |r| {
        all_answered(r, &baseline_ids, 200)
    });
    let baseline = p99(latencies(&sent, &from_b));
    wait_for_jobs(&running, &baseline_ids, "succeeded", state_is("succeeded"));
    assert_eq!((hook_a.count(), hook_b.count()), (TO_A, EVENTS));

    // A hangs far past the timeout; B still answers at once.
    hook_a.set(Behaviour::Always(Reply::ok().after(Duration::from_secs(5))));
    let hanging_ids = ids("e-hanging", EVENTS);
    let sent = trickle(&running, &hanging_ids);
    let from_b = hook_b.wait_for("delivered to B while A hangs", PATIENCE, |r| {
        all_answered(r, &hanging_ids, 200)
    });
    let during = p99(latencies(&sent, &from_b[EVENTS..]));
    // On a busy two-core machine a baseline of a few milliseconds is mostly noise: allow 50 ms
    // over it when that is more than twice it.
    let bound = (baseline * 2).max(baseline + Duration::from_millis(50));
    assert!(
        during <= bound,
        "B's p99 latency {during:?} while A hangs, baseline {baseline:?} (bound {bound:?})"
    );
    assert_eq!(from_b.len(), 2 * EVENTS, "B got each event once");

    // A's requests time out and are retried: wait until one event was sent to A twice.
    hook_a.wait_for("a timed-out request retried", PATIENCE, |r| {
        by_message_id(&r[TO_A..]).values().any(|r| r.len() > 1)
    });
    // Every request received until now hangs (and times out); every later one is answered.
    let hung_until = hook_a.set(Behaviour::Always(Reply::ok()));
    let stories = wait_for_jobs(&running, &hanging_ids, "succeeded", state_is("succeeded"));
    let requests = hook_a.requests();
    let hung = by_message_id(&requests[TO_A..hung_until]);
    let answered = by_message_id(&requests[hung_until..]);
    let mut timeouts = 0;
    for (id, jobs) in &stories {
        let to_b = jobs.iter().find(|j| j["destination_id"] == "b").unwrap();
        assert_eq!(attempt_statuses(to_b), [Some(200)], "{id}");
        let Some(job) = jobs.iter().find(|j| j["destination_id"] == "a") else {
            assert!(!hung.contains_key(id) && !answered.contains_key(id), "{id}");
            continue;
        };
        let attempts = job["attempts"].as_array().unwrap();
        let (last, failed) = attempts.split_last().unwrap();
        assert_eq!(last["status"], 200, "{id}: {job:#}");
        for attempt in failed {
            assert_eq!(attempt["error_class"], "timeout", "{id}: {job:#}");
            assert_eq!(attempt["status"], Value::Null);
        }
        // Each request that hung is one recorded timeout; then one delivery.
        assert_eq!(failed.len(), hung.get(id).map_or(0, Vec::len), "{id}");
        assert_eq!(answered[id].len(), 1, "{id}");
        timeouts += failed.len();
        let mut expected = vec!["pending"];
        expected.extend(std::iter::repeat_n("awaiting_retry", failed.len()));
        expected.push("succeeded");
        assert_eq!(states(job), expected, "{id}");
    }
    assert_eq!(timeouts, hung_until - TO_A);
    assert_eq!(answered.len(), TO_A);
    assert_eq!(
        requests.len(),
        hung_until + TO_A,
        "nothing after the deliveries"
    );
    assert!(
        hung.values().any(|r| r.len() > 1),
        "a timed-out job was retried"
    );
    println!("B p99: baseline {baseline:?}, while A hangs {during:?}; {timeouts} timeouts at A");
    assert!(terminate(running));
}

#[test]
fn sigkill_mid_delivery_loses_nothing_and_repeats_only_what_was_in_flight() {
    let _shared = crate::util::alongside_others();
    const EVENTS: usize = 60;
    const CONCURRENCY: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    webhook.set(Behaviour::Always(
        Reply::ok().after(Duration::from_millis(200)),
    ));
    // A short lease so that the jobs in flight at the kill are due again soon after the
    // restart; the timeout leaves room for the hanging phase below.
    let config = config(dir.path(), 2, 3);
    let destination = contact_destination(
        "slow",
        &webhook.url(HOOK),
        json!({"max_concurrency": CONCURRENCY}),
        None,
    );
    let workspace = write_workspace(dir.path(), "workspace.json", &workspace(vec![destination]));
    let running = serve(dir.path(), &config, &workspace);
    let all = ids("f-identify", EVENTS);
    let events: Vec<Value> = all
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    send_batch(&running, &events);

    // Deliveries are under way. From now on the webhook holds every request, so that at the kill
    // the requests in flight are exactly those it holds: every earlier answer has had time to be
    // recorded by Junction (an answer the kill cut off before it was recorded would be delivered
    // again without the webhook seeing it in flight).
    webhook.wait_for("deliveries under way", PATIENCE, |r| r.len() >= 20);
    let held_from = webhook.set(Behaviour::Always(
        Reply::ok().after(Duration::from_secs(30)),
    ));
    let quiet = Duration::from_millis(300);
    webhook.wait_for("earlier answers settled", PATIENCE, |r| {
        r[..held_from]
            .iter()
            .all(|r| r.answered_at.is_some_and(|at| at.elapsed() >= quiet))
            && r.len() > held_from
    });
    // The webhook's concurrency counter just before the kill; requests held since are counted
    // below from the record (a handler of a dead connection may end after the kill).
    let counter_before_kill = webhook.in_flight();
    kill_hard(running);
    let requests = webhook.requests();
    let before_kill = requests.len();
    // Every request since the switch was held, unanswered, until the kill: in flight at the kill.
    let in_flight: HashSet<String> = requests[held_from..]
        .iter()
        .map(Received::message_id)
        .collect();
    let in_flight_at_kill = before_kill - held_from;
    assert_eq!(in_flight.len(), in_flight_at_kill, "one request per job");
    assert!(counter_before_kill <= in_flight_at_kill);
    assert!(
        (1..=CONCURRENCY).contains(&in_flight_at_kill),
        "{in_flight_at_kill} requests in flight at the kill"
    );
    assert!(
        webhook.peak() <= CONCURRENCY,
        "the lane's concurrency limit holds: {} at once",
        webhook.peak()
    );

    webhook.set(Behaviour::Always(Reply::ok()));
    let running = start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    webhook.wait_for("every acknowledged event delivered", PATIENCE, |r| {
        let received: HashSet<String> = r.iter().map(Received::message_id).collect();
        all.iter().all(|id| received.contains(id))
    });
    // Once every job is recorded as succeeded nothing is left to send: the counts are final.
    let stories = wait_for_jobs(&running, &all, "succeeded", state_is("succeeded"));
    let requests = webhook.requests();
    let received = by_message_id(&requests);
    let duplicated: HashSet<String> = received
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        duplicated.len() <= in_flight_at_kill,
        "{} duplicates, {in_flight_at_kill} requests in flight at the kill",
        duplicated.len()
    );
    assert!(
        duplicated.is_subset(&in_flight),
        "duplicates {duplicated:?}, in flight at the kill {in_flight:?}"
    );
    for (id, r) in &received {
        assert!(r.len() <= 2, "{id} received {} times", r.len());
    }
    assert_eq!(received.len(), EVENTS);
    for (id, jobs) in &stories {
        assert_eq!(jobs.len(), 1, "{id}");
        assert_eq!(
            jobs[0]["attempts"].as_array().unwrap().last().unwrap()["status"],
            200
        );
    }
    println!(
        "{before_kill} requests before the kill, {in_flight_at_kill} in flight, {} duplicates, \
         {} requests in all",
        duplicated.len(),
        requests.len()
    );
    assert!(terminate(running));
}

#[test]
fn expired_jobs_reach_the_dead_letter_and_replay_as_is_or_remapped() {
    let _shared = crate::util::alongside_others();
    const EVENTS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    webhook.set(Behaviour::Always(Reply::status(503)));
    let config = config(dir.path(), 1, 5);
    let delivery = json!({"max_concurrency": 20, "rate_limit": null, "retry_window_secs": 2});
    let destination =
        |mapping| contact_destination("cm", &webhook.url(HOOK), delivery.clone(), mapping);
    let first = write_workspace(
        dir.path(),
        "workspace.json",
        &workspace(vec![destination(None)]),
    );
    let running = serve(dir.path(), &config, &first);
    let all = ids("g-identify", EVENTS);
    let events: Vec<Value> = all
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    send_batch(&running, &events);

    let dead = wait_for_dead_letter(&running, "state=expired&destination_id=cm", EVENTS);
    let failed = webhook.requests();
    let failed_by_id = by_message_id(&failed);
    let mut job_ids: HashMap<String, i64> = HashMap::new();
    for job in &dead {
        let id = job["request"]["body"]["message_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let sent = failed_by_id[&id].len();
        assert_eq!(job["state"], "expired", "{job:#}");
        assert_eq!(
            job["attempts"], sent,
            "{id}: attempts as the webhook saw them: {job:#}"
        );
        assert_eq!(job["status"], 503, "{job:#}");
        assert_eq!(job["error_class"], "http_status", "{job:#}");
        assert!(
            job["detail"].as_str().unwrap().contains("retry window"),
            "{job:#}"
        );
        job_ids.insert(id, job["id"].as_i64().unwrap());
    }
    assert!(failed.iter().all(|r| r.status == 503));
    assert_eq!(
        dead_letter(&running, "state=expired&error_class=http_status").len(),
        EVENTS
    );

    // The webhook is fixed: half the jobs are replayed as they were.
    webhook.set(Behaviour::Always(Reply::ok()));
    let (as_is, remapped) = all.split_at(EVENTS / 2);
    let chosen: Vec<i64> = as_is.iter().map(|id| job_ids[id]).collect();
    let replayed = replay(&running, &json!({"job_ids": chosen, "mode": "as_is"}));
    assert_eq!(replayed.len(), as_is.len());
    webhook.wait_for("as-is replays delivered", PATIENCE, |r| {
        all_answered(r, as_is, 200)
    });
    wait_for_jobs(&running, as_is, "replayed", |job| {
        job["replay_of"].is_null() || job["state"] == "succeeded"
    });
    assert!(terminate(running));

    // The mapping is changed (a literal custom attribute added), and the rest are replayed
    // through it, selected by a filter (the as-is ones are replayed already, so not selected).
    let changed = write_workspace(
        dir.path(),
        "changed.json",
        &workspace(vec![destination(Some(
            json!({"custom_attributes": {"replayed": "remapped"}}),
        ))]),
    );
    let running = serve(dir.path(), &config, &changed);
    let replayed = replay(
        &running,
        &json!({"filter": {"destination_id": "cm", "state": "expired"}, "mode": "remapped"}),
    );
    assert_eq!(replayed.len(), remapped.len());
    webhook.wait_for("remapped replays delivered", PATIENCE, |r| {
        all_answered(r, &all, 200)
    });
    let stories = wait_for_jobs(&running, &all, "replayed", |job| {
        job["replay_of"].is_null() || job["state"] == "succeeded"
    });
    let requests = webhook.requests();
    assert_eq!(
        requests.len(),
        failed.len() + EVENTS,
        "each replay delivered once"
    );
    let received = by_message_id(&requests[failed.len()..]);
    for (id, jobs) in &stories {
        assert_eq!(jobs.len(), 2, "{id}: the expired job and its replay");
        let original = jobs.iter().find(|j| j["replay_of"].is_null()).unwrap();
        let replay = jobs.iter().find(|j| !j["replay_of"].is_null()).unwrap();
        assert_eq!(original["state"], "expired");
        assert_eq!(replay["replay_of"], original["id"]);
        assert_eq!(attempt_statuses(replay), [Some(200)]);
        let delivered = &received[id];
        assert_eq!(delivered.len(), 1, "{id}");
        let before = &failed_by_id[id][0];
        if as_is.contains(id) {
            assert_eq!(delivered[0].body, before.body, "{id}: replayed as is");
        } else {
            let mut body = delivered[0].json();
            assert_eq!(
                body["custom_attributes"],
                json!({"replayed": "remapped"}),
                "{id}: the mapping as it is now"
            );
            body.as_object_mut().unwrap().remove("custom_attributes");
            assert_eq!(body, before.json(), "{id}: otherwise the same payload");
        }
    }
    assert_eq!(dead_letter(&running, "").len(), 0, "all replayed");
    assert!(terminate(running));
}

#[test]
fn a_rate_limited_lane_sends_no_faster_than_its_limit() {
    let _shared = crate::util::alongside_others();
    const EVENTS: usize = 12;
    const RATE: f64 = 4.0;
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    let destination = contact_destination(
        "limited",
        &hook.url(HOOK),
        json!({"rate_limit": RATE}),
        None,
    );
    let config = config(dir.path(), 2, 10);
    let workspace = write_workspace(dir.path(), "workspace.json", &workspace(vec![destination]));
    let running = serve(dir.path(), &config, &workspace);

    let message_ids = ids("rated", EVENTS);
    let events: Vec<Value> = message_ids
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    send_batch(&running, &events);
    let requests = hook.wait_for("every event delivered", PATIENCE, |r| r.len() >= EVENTS);
    assert_eq!(requests.len(), EVENTS, "each event once");

    // A token bucket of 4 per second starts full (a burst of 4), then admits one request every
    // 250 ms: request n (from 0) cannot arrive before (n - 3) × 250 ms after the first.
    let first = requests[0].at;
    for (n, request) in requests.iter().enumerate().skip(4) {
        let earliest = Duration::from_secs_f64((n as f64 - 3.0) / RATE);
        let after = request.at.duration_since(first);
        // 20 ms of slack for the two clocks (the lane's and the webhook's receipt time).
        assert!(
            after + Duration::from_millis(20) >= earliest,
            "request {n} arrived {after:?} after the first, before {earliest:?}"
        );
    }
    let span = requests[EVENTS - 1].at.duration_since(first);
    assert!(
        span >= Duration::from_millis(1_980),
        "12 requests at 4/s with a burst of 4 take at least 2 s, took {span:?}"
    );
    assert!(terminate(running));
}

/// F4 of the hardening issue: a `Retry-After` of a day on a destination whose retry window is six
/// seconds does not send the lane's jobs to the dead letter unattempted. The pause is cut to what
/// is left of the window, shows (until when, why) in the overview and the metrics, and every job
/// is attempted once it ends.
#[test]
fn a_retry_after_past_the_window_is_cut_and_every_job_still_attempted() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    webhook.set(Behaviour::FailFirst {
        count: 1,
        reply: Reply::status(429).header("retry-after", "86400"),
    });
    let config = config(dir.path(), 2, 10);
    let delivery = json!({"max_concurrency": 20, "rate_limit": null, "retry_window_secs": 6});
    let workspace = write_workspace(
        dir.path(),
        "workspace.json",
        &workspace(vec![contact_destination(
            "cm",
            &webhook.url(HOOK),
            delivery,
            None,
        )]),
    );
    let running = serve(dir.path(), &config, &workspace);
    let first = "ra-first".to_owned();
    send_batch(&running, &[identify(&first, 0)]);
    let answered = webhook.wait_for("the 429 answered", PATIENCE, |r| {
        r.first().is_some_and(|r| r.answered_at.is_some())
    });
    let paused_at = answered[0].answered_at.unwrap();
    let later = ids("ra-later", 5);
    let events: Vec<Value> = later
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n + 1))
        .collect();
    send_batch(&running, &events);

    // While paused: the overview and the metrics say so, and why.
    std::thread::sleep(Duration::from_millis(500));
    let (status, overview) = admin(
        &running.admin_address,
        "GET",
        "/api/v1/destinations/cm/overview",
        None,
    );
    assert_eq!(status, 200, "{overview}");
    let lane = &overview["data"]["lanes"][0];
    let reason = lane["pause_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("Retry-After of 86400 s on 429 Too Many Requests, cut to ")
            && reason.ends_with(" s to keep within the retry window"),
        "{lane}"
    );
    let until = lane["paused_until"].as_i64().unwrap();
    let left = until - junction_now_ms();
    assert!(
        (2_000..6_000).contains(&left),
        "paused for {left} ms more: {lane}"
    );
    let (_, metrics) = crate::util::request(&running.admin_address, "GET", "/metrics", &[], "");
    let paused_line = metrics
        .lines()
        .find(|line| line.starts_with("junction_lane_paused_seconds{"))
        .unwrap_or_default()
        .to_owned();
    let seconds: f64 = paused_line
        .rsplit(' ')
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0);
    assert!(seconds > 1.0, "{paused_line}");

    // Once the pause ends, every job is attempted (and delivered): nothing expired unattempted.
    let mut all = later.clone();
    all.push(first.clone());
    webhook.wait_for("every event delivered", PATIENCE, |r| {
        all_answered(r, &all, 200)
    });
    for request in &webhook.requests()[1..] {
        let after = request.at.duration_since(paused_at);
        assert!(
            after >= Duration::from_secs(3),
            "{} sent {after:?} after the 429, during the pause",
            request.message_id()
        );
    }
    wait_for_jobs(&running, &all, "succeeded", state_is("succeeded"));
    assert!(dead_letter(&running, "destination_id=cm").is_empty());
    assert!(terminate(running));
}

fn junction_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// O1 of the hardening issue: an endpoint failing with 500 for six seconds is probed, not
/// hammered (fewer requests than events while it fails, the lane's limit down to one), and once
/// it recovers, the jobs waiting in backoff are brought forward: every event is delivered within
/// seconds of the recovery, not after its backoff (up to minutes), without exceeding the limit.
#[test]
fn after_an_outage_every_event_is_delivered_within_seconds_of_the_recovery() {
    let _shared = crate::util::alongside_others();
    const EVENTS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    webhook.set(Behaviour::Always(Reply::status(500)));
    // The default backoff (1 s doubling, at most 10 min): what recovery must not wait out.
    let config = dir.path().join("junction.toml");
    std::fs::write(&config, "[delivery]\ntimeout_secs = 2\nlease_secs = 30\n").unwrap();
    let workspace = write_workspace(
        dir.path(),
        "workspace.json",
        &sample_workspace(&webhook.url(HOOK)),
    );
    let running = serve(dir.path(), &config, &workspace);
    let all = ids("o-identify", EVENTS);
    let events: Vec<Value> = all
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    send_batch(&running, &events);
    std::thread::sleep(Duration::from_secs(6));
    let during = webhook.requests().len();
    assert!(
        during < EVENTS,
        "{during} requests to the failing endpoint in 6 s for {EVENTS} events: not probed"
    );
    let recovered = webhook.set(Behaviour::Always(Reply::ok()));
    let recovered_at = Instant::now();
    let requests = webhook.wait_for("every event delivered", PATIENCE, |r| {
        all_answered(r, &all, 200)
    });
    let last = requests
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.at)
        .max()
        .unwrap();
    let after = last.duration_since(recovered_at);
    eprintln!(
        "outage: {during} requests during 6 s of failures for {EVENTS} events; the last event \
         arrived {after:?} after the recovery"
    );
    assert!(
        after < Duration::from_secs(10),
        "the last event arrived {after:?} after the recovery ({} requests before it)",
        recovered
    );
    assert!(
        webhook.peak() <= 20,
        "the lane's limit was exceeded: {}",
        webhook.peak()
    );
    assert!(terminate(running));
}

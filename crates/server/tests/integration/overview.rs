//! The delivery overview over real HTTP: events sent through the Tracking API, their jobs
//! completed through the Store API (this harness runs no delivery engine), the overview read from
//! the admin API; and every way its query can be wrong.

use std::time::{SystemTime, UNIX_EPOCH};

use junction_store::{AttemptRecord, Completion, JobId, JobState, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{AdminClient, TestServer};

const TOKEN: &str = "overview-admin-token";

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

async fn job_of(server: &TestServer, message_id: &str) -> JobId {
    let record = server.record(message_id).await;
    assert_eq!(record.jobs.len(), 1, "jobs of {message_id}");
    record.jobs[0].job.id
}

fn completion(job_id: JobId, status: u16, state: JobState) -> Completion {
    Completion {
        job_id,
        attempt: Some(AttemptRecord {
            attempt: 1,
            started_at: now_ms(),
            duration_ms: 5,
            status: Some(status),
            error_class: (status >= 300).then(|| "http_status".to_owned()),
            response_headers: Vec::new(),
            response_excerpt: Vec::new(),
        }),
        state,
        next_at: now_ms() + 3_600_000,
        detail: None,
    }
}

#[tokio::test]
async fn the_overview_counts_what_became_of_each_event() {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    let identify = |id: &str| json!({"userId": "u-1", "messageId": id, "traits": {"email": "jane@example.com"}});
    for (path, event) in [
        ("/v1/identify", identify("c-1")),
        ("/v1/identify", identify("c-2")),
        (
            "/v1/group",
            json!({"userId": "u-1", "groupId": "acme", "messageId": "g-1",
                   "traits": {"name": "Acme"}}),
        ),
        (
            "/v1/track",
            json!({"userId": "u-1", "event": "Signed Up", "messageId": "t-1"}),
        ),
        (
            "/v1/identify",
            json!({"userId": "u-1", "messageId": "i-1", "integrations": {"All": false},
                   "traits": {"email": "jane@example.com"}}),
        ),
        // Nothing ChartMogul can use: the contact mapping discards it (payload).
        (
            "/v1/identify",
            json!({"userId": "u-1", "messageId": "bare-1"}),
        ),
    ] {
        let (status, body) = server.send(path, &event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let (c1, c2, g1) = (
        job_of(&server, "c-1").await,
        job_of(&server, "c-2").await,
        job_of(&server, "g-1").await,
    );
    let store: &dyn Store = &*server.store;
    let now = now_ms();
    let claimed = store
        .claim_jobs("chartmogul|chartmogul.example", now, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    store
        .complete_jobs(vec![
            completion(c1, 202, JobState::Succeeded),
            completion(c2, 503, JobState::AwaitingRetry),
            completion(g1, 400, JobState::Discarded),
        ])
        .await
        .unwrap();

    let (status, body) = admin
        .get("/api/v1/destinations/chartmogul/overview?window=10m")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["destination_id"], "chartmogul");
    assert_eq!(data["window"]["seconds"], 600);
    assert_eq!(data["window"]["bucket"], "minute");
    let totals = &data["totals"]["destination"];
    assert_eq!(totals["received"], 6);
    assert_eq!(
        totals["filtered_by_integrations"],
        json!({"count": 1, "samples": ["i-1"]})
    );
    assert_eq!(
        totals["not_matched"],
        json!({"count": 1, "samples": ["t-1"]}),
        "no mapping matched the track call"
    );
    assert_eq!(
        totals["discarded"],
        json!({"payload": {"count": 1, "samples": ["bare-1"]}})
    );
    assert_eq!(totals["jobs"], 3);
    assert_eq!(totals["delivered"], 1);
    assert_eq!(totals["retried"], 1);
    assert_eq!(totals["awaiting_retry"], 1);
    assert_eq!(
        totals["failed"],
        json!({"count": 1, "discarded": 1, "expired": 0, "samples": ["g-1"]})
    );
    assert_eq!(totals["latency_ms"]["count"], 1);
    let p50 = totals["latency_ms"]["p50"].as_u64().unwrap();
    assert!(p50 < 60_000, "p50 {p50} ms");
    assert!(totals["latency_ms"]["p95"].as_u64().unwrap() >= p50);

    let contacts = &data["totals"]["mappings"]["contacts"];
    assert_eq!(contacts["received"], 5, "2 jobs, 2 not matched, 1 payload");
    assert_eq!(contacts["jobs"], 2);
    assert_eq!(contacts["not_matched"]["count"], 2);
    assert_eq!(
        contacts["discarded"]["payload"]["samples"],
        json!(["bare-1"])
    );
    assert_eq!(contacts["awaiting_retry"], 1);
    let customers = &data["totals"]["mappings"]["customers"];
    assert_eq!(customers["received"], 5, "1 job, 4 not matched");
    assert_eq!(customers["failed"]["samples"], json!(["g-1"]));

    let series = data["series"].as_array().unwrap();
    assert!((10..=11).contains(&series.len()), "{} points", series.len());
    let sum = |field: &str| -> u64 { series.iter().map(|p| p[field].as_u64().unwrap()).sum() };
    assert_eq!(sum("received"), 6);
    assert_eq!(sum("delivered"), 1);
    assert_eq!(sum("failed"), 1);
    let starts: Vec<i64> = series
        .iter()
        .map(|p| p["start"].as_i64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] == 60_000));

    // One mapping, hourly over a day.
    let (status, body) = admin
        .get("/api/v1/destinations/chartmogul/overview?window=24h&bucket=hour&mapping_id=contacts")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["mapping_id"], "contacts");
    // Scoped to a mapping, the totals are the mapping's, with its failures explained.
    let mut scoped = data["totals"]["destination"].clone();
    let failures = scoped.as_object_mut().unwrap().remove("failures").unwrap();
    assert_eq!(scoped, *contacts);
    assert_eq!(failures[0]["message_id"], "c-2", "{failures}");
    assert_eq!(failures[0]["state"], "awaiting_retry", "{failures}");
    assert_eq!(failures[0]["status"], 503, "{failures}");
    let mappings: Vec<&String> = data["totals"]["mappings"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(mappings, ["contacts"]);
    let series = data["series"].as_array().unwrap();
    assert!((24..=25).contains(&series.len()));
    let received: u64 = series.iter().map(|p| p["received"].as_u64().unwrap()).sum();
    assert_eq!(received, 5);

    // 14 days in days; seconds are accepted too.
    for query in ["window=14d&bucket=day", "window=3600"] {
        let (status, body) = admin
            .get(&format!("/api/v1/destinations/chartmogul/overview?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body["data"]["totals"]["destination"]["received"], 6);
    }
    admin.assert_never_shown("wh_1?token=secret");
}

#[tokio::test]
async fn overview_queries_are_validated() {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    let path = "/api/v1/destinations/chartmogul/overview";
    for (query, field) in [
        ("window=5m", "window"),
        ("window=15d", "window"),
        ("window=1w", "window"),
        ("window=", "window"),
        ("window=1h&bucket=week", "bucket"),
        ("window=7d&bucket=minute", "bucket"),
        ("colour=blue", "query"),
    ] {
        let (status, body) = admin.get(&format!("{path}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let error = &body["errors"][0];
        assert_eq!(error["type"], "validation", "{query}: {body}");
        assert_eq!(error["field"], field, "{query}: {body}");
    }
    let (status, body) = admin
        .get("/api/v1/destinations/nope/overview?window=1h")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["errors"][0]["type"], "not_found");
    let (status, _) = admin.get(&format!("{path}?mapping_id=nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without the token: a bare 401.
    let response = server
        .client
        .get(format!("{}{path}", admin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["type"], "unauthorized");
}

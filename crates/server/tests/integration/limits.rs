//! Every size and count limit, exactly at it and one over, measured on decompressed bytes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{TestServer, gzip};

const EVENT_LIMIT: usize = 32 * 1024;
const REQUEST_LIMIT: usize = 500 * 1024;
const BATCH_LIMIT: usize = 2500;

/// The JSON text of a track event exactly `size` bytes long.
fn event_text(message_id: &str, size: usize) -> String {
    let base = json!({"type": "track", "userId": "u", "event": "E", "messageId": message_id,
                      "properties": {"pad": ""}})
    .to_string();
    assert!(size >= base.len());
    let event = json!({"type": "track", "userId": "u", "event": "E", "messageId": message_id,
                       "properties": {"pad": "x".repeat(size - base.len())}})
    .to_string();
    assert_eq!(event.len(), size);
    event
}

/// A batch body of exactly `size` bytes (events of 30,000 bytes, then trailing whitespace).
fn batch_body(prefix: &str, size: usize) -> String {
    let mut items = Vec::new();
    let mut body = String::new();
    for n in 0.. {
        let candidate_items: Vec<String> = items
            .iter()
            .cloned()
            .chain([event_text(&format!("{prefix}-{n}"), 30_000)])
            .collect();
        let candidate = format!("{{\"batch\": [{}]}}", candidate_items.join(","));
        if candidate.len() > size {
            break;
        }
        items = candidate_items;
        body = candidate;
    }
    body.push_str(&" ".repeat(size - body.len()));
    assert_eq!(body.len(), size);
    body
}

#[tokio::test]
async fn a_request_may_be_exactly_500_kib() {
    let server = TestServer::start().await;
    let (status, body) = server
        .send_raw("/v1/batch", batch_body("at", REQUEST_LIMIT))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 17);
    server.record("at-16").await;

    let (status, body) = server
        .send_raw("/v1/batch", batch_body("over", REQUEST_LIMIT + 1))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "request_too_large");
    assert_eq!(
        body["error"],
        "request body is over the limit of 512000 bytes"
    );
    assert!(server.records_of("web", "over-0").await.is_empty());
}

#[tokio::test]
async fn the_request_limit_counts_decompressed_bytes() {
    let server = TestServer::start().await;
    let at = gzip(batch_body("gz-at", REQUEST_LIMIT).as_bytes());
    let over = gzip(batch_body("gz-over", REQUEST_LIMIT + 1).as_bytes());
    assert!(over.len() < REQUEST_LIMIT / 10, "compressed it is small");

    for (bytes, expected) in [(at, StatusCode::OK), (over, StatusCode::PAYLOAD_TOO_LARGE)] {
        let response = server
            .post("/v1/batch")
            .header("content-encoding", "gzip")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
    }
    server.record("gz-at-0").await;
    assert!(server.records_of("web", "gz-over-0").await.is_empty());
}

#[tokio::test]
async fn a_single_event_may_be_exactly_32_kib() {
    let server = TestServer::start().await;
    let (status, body) = server
        .send_raw("/v1/track", event_text("single-at", EVENT_LIMIT))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.record("single-at").await;

    let (status, body) = server
        .send_raw("/v1/track", event_text("single-over", EVENT_LIMIT + 1))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "event_too_large");
    assert_eq!(
        body["error"],
        "event is 32769 bytes, over the limit of 32768 bytes"
    );
}

#[tokio::test]
async fn an_oversize_batch_item_is_refused_alone() {
    let server = TestServer::start().await;
    let body = format!(
        "{{\"batch\": [{}, {}]}}",
        event_text("item-at", EVENT_LIMIT),
        event_text("item-over", EVENT_LIMIT + 1)
    );
    let (status, answer) = server.send_raw("/v1/batch", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true, "accepted": 1, "rejected": [
            {"index": 1, "code": "event_too_large",
             "error": "event is 32769 bytes, over the limit of 32768 bytes"}]})
    );
    server.record("item-at").await;
    assert!(server.records_of("web", "item-over").await.is_empty());
}

#[tokio::test]
async fn a_batch_may_hold_exactly_2500_events() {
    let server = TestServer::start().await;
    let batch = |prefix: &str, count: usize| -> Value {
        let items: Vec<Value> = (0..count)
            .map(|n| {
                json!({"type": "track", "userId": "u", "event": "E",
                            "messageId": format!("{prefix}-{n}")})
            })
            .collect();
        json!({"batch": items})
    };
    let (status, body) = server.send("/v1/batch", &batch("n-at", BATCH_LIMIT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2500);
    server.record("n-at-2499").await;

    let (status, body) = server
        .send("/v1/batch", &batch("n-over", BATCH_LIMIT + 1))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "batch_too_large");
    assert_eq!(
        body["error"],
        "batch has 2501 events, over the limit of 2500"
    );
    assert!(server.records_of("web", "n-over-0").await.is_empty());
}

#[tokio::test]
async fn message_ids_must_be_under_100_characters() {
    let server = TestServer::start().await;
    let at = "m".repeat(99);
    let (status, _) = server
        .send(
            "/v1/track",
            &json!({"userId": "u", "event": "E", "messageId": at}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .send(
            "/v1/track",
            &json!({"userId": "u", "event": "E", "messageId": "m".repeat(100)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "message_id_too_long");
    assert_eq!(body["field"], "messageId");
}

//! Back-pressure and shutdown: 503 with `Retry-After` when the store's queue is full, and a
//! graceful shutdown that answers the requests in flight once their commit is durable.

use std::time::Duration;

use junction_store::Store;
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use reqwest::StatusCode;
use serde_json::json;

use crate::util::{Options, TestServer, answer, eventually};

fn small_queue() -> Options {
    Options {
        store: SqliteOptions {
            store: junction_store::StoreOptions {
                queue_capacity: 1,
                ..junction_store::StoreOptions::default()
            },
            ..SqliteOptions::default()
        },
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_answered_503_with_retry_after() {
    let server = TestServer::start_with(small_queue()).await;
    let pause = server.store.pause_writer();

    // The first request takes the queue's only place and waits for the paused writer.
    let first = server
        .post("/v1/track")
        .json(&json!({"userId": "u", "event": "E", "messageId": "q-1"}))
        .send();
    let first = tokio::spawn(first);
    eventually("the first commit to be queued", || {
        server.store.stats().queued_events == 1
    })
    .await;

    let response = server
        .post("/v1/track")
        .json(&json!({"userId": "u", "event": "E", "messageId": "q-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let (_, body) = answer(response).await;
    assert_eq!(
        body,
        json!({"success": false, "code": "overloaded",
               "error": "the server cannot keep up; retry later", "message": "the server cannot keep up; retry later"})
    );

    drop(pause);
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    server.record("q-1").await;
    assert!(server.records_of("web", "q-2").await.is_empty());
    assert_eq!(server.state.stats().overloaded, 1);
    assert_eq!(
        server.state.rejections().count(Some("web"), "overloaded"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_requests_in_flight_then_stops() {
    let mut server = TestServer::start().await;
    let pause = server.store.pause_writer();
    let in_flight = tokio::spawn(
        server
            .post("/v1/identify")
            .json(
                &json!({"userId": "u", "messageId": "late-1", "traits": {"email": "a@b.example"}}),
            )
            .send(),
    );
    eventually("the commit to be queued", || {
        server.store.stats().queued_events == 1
    })
    .await;

    server.begin_shutdown();
    // New connections are refused once the server stopped accepting.
    let mut refused = false;
    for _ in 0..200 {
        junction_delivery::install_crypto_provider();
        let client = reqwest::Client::new();
        let attempt = client
            .post(format!("{}/v1/track", server.url))
            .timeout(Duration::from_millis(200))
            .body("{}")
            .send()
            .await;
        if attempt.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener still accepts after shutdown began");

    // The request in flight is answered once its commit is durable.
    drop(pause);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.finish_shutdown().await.unwrap();

    let reopened = SqliteStore::open(server.db_path(), SqliteOptions::default())
        .await
        .unwrap();
    let records = reopened
        .events_by_message_id("web", "late-1")
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].jobs.len(), 1);
    reopened.close().await.unwrap();
}

//! Regulations through the admin API (validation, the audit record's hashes, 503 without a
//! suppression list) and suppression at ingest: a suppressed person's events are acknowledged,
//! not stored, and counted per source.

use std::sync::Arc;

use junction_audience::IdType;
use junction_profiles::Suppressions;
use junction_store::{RegulationStatus, RegulationUpdate, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{AdminClient, TestServer};

async fn with_suppressions(server: &TestServer) -> Arc<Suppressions> {
    let suppressions = Arc::new(Suppressions::load(&*server.store).await.unwrap());
    server.state.attach_suppressions(Arc::clone(&suppressions));
    suppressions
}

fn regulation(kind: &str, identifiers: Value) -> Value {
    json!({"type": kind, "identifiers": identifiers})
}

#[tokio::test]
async fn regulations_are_validated_and_kept_with_hashed_identifiers() {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, None).await;
    let jane = json!([{"type": "email", "value": "jane@example.com"}]);

    let (status, body) = admin
        .post(
            "/api/v1/regulations",
            &regulation("DELETE_ONLY", jane.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    with_suppressions(&server).await;
    let too_many: Vec<Value> = (0..5_001)
        .map(|n| json!({"type": "user_id", "value": format!("u{n}")}))
        .collect();
    for (body, field) in [
        (regulation("FORGET", jane.clone()), "type"),
        (regulation("DELETE_ONLY", json!([])), "identifiers"),
        (regulation("DELETE_ONLY", json!(too_many)), "identifiers"),
        (
            regulation("DELETE_ONLY", json!([{"type": "phone", "value": "1"}])),
            "identifiers",
        ),
        (
            regulation("DELETE_ONLY", json!([{"type": "email", "value": ""}])),
            "identifiers",
        ),
        (
            json!({"type": "DELETE_ONLY", "identifiers": jane, "reason": "gdpr"}),
            "body",
        ),
    ] {
        let (status, answer) = admin.post("/api/v1/regulations", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["errors"][0]["field"], field, "{answer}");
    }

    let (status, created) = admin
        .post(
            "/api/v1/regulations",
            &regulation("SUPPRESS_WITH_DELETE", jane.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let data = &created["data"];
    assert_eq!(data["status"], "initialized");
    assert_eq!(data["forwarded"], false);
    assert_eq!(data["identifiers"][0]["type"], "email");
    let hash = data["identifiers"][0]["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "HMAC-SHA256 in hex");
    assert!(!created.to_string().contains("jane@example.com"));

    let id = data["id"].as_str().unwrap();
    let (status, one) = admin.get(&format!("/api/v1/regulations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"], *data);
    let (status, listed) = admin.get("/api/v1/regulations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["id"], id);
    for missing in ["999", "not-a-number"] {
        let (status, _) = admin.get(&format!("/api/v1/regulations/{missing}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}

#[tokio::test]
async fn suppressed_events_are_acknowledged_not_stored_and_counted() {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, None).await;
    let suppressions = with_suppressions(&server).await;
    let store: &dyn Store = &*server.store;
    let created = store
        .create_regulation(
            junction_profiles::new_regulation(
                &suppressions,
                junction_profiles::RegulationType::Suppress,
                Vec::new(),
                0,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    store
        .update_regulation(RegulationUpdate {
            id: created.id,
            status: RegulationStatus::Finished,
            finished_at: Some(1),
            record: created.record,
            suppress: vec![suppressions.hash(IdType::UserId, "u-gone")],
            unsuppress: Vec::new(),
        })
        .await
        .unwrap();
    suppressions.reload(store).await.unwrap();

    let (status, body) = server
        .send(
            "/v1/track",
            &json!({"userId": "u-gone", "event": "Viewed", "messageId": "gone-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"success": true}));
    assert!(server.records_of("web", "gone-1").await.is_empty());

    let (status, body) = server
        .send(
            "/v1/batch",
            &json!({"batch": [
                {"type": "track", "userId": "u-gone", "event": "Viewed", "messageId": "gone-2"},
                {"type": "track", "userId": "u-kept", "event": "Viewed", "messageId": "kept-1"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2, "both acknowledged");
    assert!(server.records_of("web", "gone-2").await.is_empty());
    server.record("kept-1").await;

    let response = server
        .client
        .get(format!("{}/metrics", admin.url))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        text.contains("junction_events_suppressed_total{source=\"web\"} 2"),
        "{text}"
    );
}

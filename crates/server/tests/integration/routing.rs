//! What is stored for an accepted event: the normalised payload, the exact ChartMogul requests
//! its mappings built, the discards of the others, the integrations object, and dedupe.

use junction_store::{DiscardReason, DiscardRecord, JobState, JobUrl, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{APP_WRITE_KEY, TestServer, millis, payload};

fn headers() -> Vec<(String, String)> {
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("user-agent".to_owned(), "Segment (Actions)".to_owned()),
    ]
}

#[tokio::test]
async fn an_identify_becomes_exactly_the_chartmogul_contact_request() {
    let server = TestServer::start().await;
    let identify = json!({
        "userId": "user-42", "messageId": "contact-1",
        "timestamp": "2024-03-01T12:00:00.000Z", "sentAt": "2024-03-01T12:00:00.000Z",
        "traits": {"email": "jane@example.com", "first_name": "Jane", "last_name": "Doe",
                   "company": {"id": "acme-1", "name": "Acme"}}
    });
    let (status, _) = server.send("/v1/identify", &identify).await;
    assert_eq!(status, StatusCode::OK);

    let record = server.record("contact-1").await;
    let stored = payload(&record);
    assert_eq!(record.jobs.len(), 1);
    let job = &record.jobs[0].job;
    assert_eq!(job.destination_id, "chartmogul");
    assert_eq!(job.subscription_id, "contacts");
    assert_eq!(job.endpoint, "chartmogul|chartmogul.example");
    assert_eq!(job.method, "POST");
    // The job names the setting, not its value: it goes where the setting points when sent.
    assert_eq!(
        job.url,
        JobUrl::Setting("chartmogul_webhook_url".to_owned())
    );
    assert_eq!(job.headers, headers());
    let body: Value = serde_json::from_slice(&job.body).unwrap();
    assert_eq!(
        body,
        json!({"type": "Send Contact", "message_id": "contact-1",
               "timestamp": stored["timestamp"], "sent_at": "2024-03-01T12:00:00.000Z",
               "user_id": "user-42", "email": "jane@example.com", "first_name": "Jane",
               "last_name": "Doe", "company": {"id": "acme-1", "name": "Acme"}})
    );
    // The body is stored byte for byte as it will be sent: compact JSON in field order.
    assert_eq!(job.body, serde_json::to_vec(&body).unwrap());
    assert_eq!(record.jobs[0].transitions[0].state, JobState::Pending);

    assert_eq!(
        record.discards,
        [DiscardRecord {
            destination_id: "chartmogul".to_owned(),
            subscription_id: Some("customers".to_owned()),
            reason: DiscardReason::NotMatched,
            message: "trigger did not match: type = \"group\"".to_owned(),
        }]
    );
}

#[tokio::test]
async fn a_group_becomes_the_customer_request() {
    let server = TestServer::start().await;
    let group = json!({
        "userId": "user-42", "groupId": "acme-1", "messageId": "customer-1",
        "traits": {"name": "Acme", "website": "acme.example", "address": {"city": "Paris"}}
    });
    let (status, _) = server.send("/v1/group", &group).await;
    assert_eq!(status, StatusCode::OK);

    let record = server.record("customer-1").await;
    let stored = payload(&record);
    assert_eq!(record.jobs.len(), 1);
    let job = &record.jobs[0].job;
    assert_eq!(job.subscription_id, "customers");
    // The job names the setting, not its value: it goes where the setting points when sent.
    assert_eq!(
        job.url,
        JobUrl::Setting("chartmogul_webhook_url".to_owned())
    );
    assert_eq!(job.headers, headers());
    let body: Value = serde_json::from_slice(&job.body).unwrap();
    assert_eq!(
        body,
        json!({"type": "Send Customer", "message_id": "customer-1",
               "timestamp": stored["timestamp"], "sent_at": stored["sentAt"],
               "user_id": "user-42", "group_id": "acme-1", "name": "Acme",
               "website": "acme.example", "address": {"city": "Paris"}})
    );
    assert_eq!(record.discards.len(), 1);
    assert_eq!(
        record.discards[0].subscription_id.as_deref(),
        Some("contacts")
    );
    assert_eq!(record.discards[0].reason, DiscardReason::NotMatched);
}

#[tokio::test]
async fn failing_mappings_and_unconnected_sources_are_recorded_too() {
    let server = TestServer::start().await;
    // Nothing of interest to ChartMogul: the action refuses it, and the refusal is stored.
    let (status, _) = server
        .send(
            "/v1/identify",
            &json!({"userId": "u", "messageId": "bare-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let record = server.record("bare-1").await;
    assert!(record.jobs.is_empty());
    let contact = &record.discards[0];
    assert_eq!(contact.reason, DiscardReason::Payload);
    assert_eq!(
        contact.message,
        "The event contains no information of interest to Chartmogul."
    );

    // A source no destination is connected to: stored, nothing routed.
    let response = server
        .post_anonymous("/v1/identify")
        .basic_auth(APP_WRITE_KEY, Some(""))
        .json(&json!({"userId": "u", "messageId": "app-1", "traits": {"email": "a@b.example"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let records = server.records_of("app", "app-1").await;
    assert_eq!(records.len(), 1);
    assert!(records[0].jobs.is_empty() && records[0].discards.is_empty());
}

#[tokio::test]
async fn the_integrations_object_is_honoured() {
    let server = TestServer::start().await;
    let identify = |message_id: &str, integrations: Value| {
        json!({"userId": "u", "messageId": message_id, "integrations": integrations,
               "traits": {"email": "jane@example.com"}})
    };

    let (status, _) = server
        .send(
            "/v1/identify",
            &identify("int-on", json!({"All": false, "ChartMogul": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let record = server.record("int-on").await;
    assert_eq!(record.jobs.len(), 1);
    assert_eq!(record.jobs[0].job.subscription_id, "contacts");

    let (status, _) = server
        .send(
            "/v1/identify",
            &identify("int-off", json!({"ChartMogul": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let record = server.record("int-off").await;
    assert!(record.jobs.is_empty());
    assert_eq!(
        record.discards,
        [DiscardRecord {
            destination_id: "chartmogul".to_owned(),
            subscription_id: None,
            reason: DiscardReason::IntegrationsFiltered,
            message: "the event's integrations object excludes \"ChartMogul\"".to_owned(),
        }]
    );

    // Batch-level integrations apply to every item that does not say otherwise.
    let batch = json!({"integrations": {"All": false},
        "batch": [{"type": "identify", "userId": "u", "messageId": "int-batch",
                   "traits": {"email": "jane@example.com"}}]});
    let (status, _) = server.send("/v1/batch", &batch).await;
    assert_eq!(status, StatusCode::OK);
    let record = server.record("int-batch").await;
    assert_eq!(
        record.discards[0].reason,
        DiscardReason::IntegrationsFiltered
    );
}

#[tokio::test]
async fn a_repeated_message_id_is_acknowledged_stored_once_and_counted() {
    let server = TestServer::start().await;
    let identify = json!({"userId": "u", "messageId": "dup-1",
                          "traits": {"email": "jane@example.com"}});
    for _ in 0..2 {
        let (status, body) = server.send("/v1/identify", &identify).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    }
    let batch = json!({"batch": [{"type": "identify", "userId": "u", "messageId": "dup-1",
                                  "traits": {"email": "jane@example.com"}}]});
    let (status, body) = server.send("/v1/batch", &batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accepted"], 1);

    let record = server.record("dup-1").await;
    assert_eq!(record.duplicates.len(), 2);
    assert_eq!(record.jobs.len(), 1, "a duplicate is not routed again");
    let counts = server.store.counts().await.unwrap();
    assert_eq!((counts.events, counts.duplicates, counts.jobs), (1, 2, 1));
    let stats = server.state.stats();
    assert_eq!((stats.stored, stats.duplicates, stats.accepted), (1, 2, 3));
}

#[tokio::test]
async fn normalisation_fills_ids_and_corrects_clock_skew() {
    let server = TestServer::start().await;
    // The client's clock is an hour and a bit ahead: it says it sent the batch at 13:10:00 and
    // made the first call a minute before that.
    let batch = json!({
        "sentAt": "2030-06-01T13:10:00.000Z",
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "messageId": "skew-1",
             "timestamp": "2030-06-01T13:09:00.000Z"},
            {"type": "track", "userId": "u", "event": "B", "messageId": "skew-2",
             "timestamp": "2030-06-01T13:09:59.250Z", "sentAt": "2030-06-01T13:10:30.000Z"},
            {"type": "track", "userId": "u", "event": "C"}
        ]
    });
    let before = millis(&now_text());
    let (status, _) = server.send("/v1/batch", &batch).await;
    assert_eq!(status, StatusCode::OK);
    let after = millis(&now_text());

    let first = payload(&server.record("skew-1").await);
    let received = millis(first["receivedAt"].as_str().unwrap());
    assert!(
        (before..=after).contains(&received),
        "receivedAt is the server's clock"
    );
    assert_eq!(
        first["sentAt"], "2030-06-01T13:10:00.000Z",
        "the batch sentAt is copied"
    );
    assert_eq!(first["originalTimestamp"], "2030-06-01T13:09:00.000Z");
    // timestamp = receivedAt − (sentAt − originalTimestamp) = receivedAt − 60 s.
    assert_eq!(
        millis(first["timestamp"].as_str().unwrap()),
        received - 60_000
    );
    assert_eq!(first["context"]["library"]["name"], "analytics-python");

    // An event's own sentAt wins: receivedAt − (13:10:30.000 − 13:09:59.250) = − 30,750 ms.
    let second = payload(&server.record("skew-2").await);
    assert_eq!(second["sentAt"], "2030-06-01T13:10:30.000Z");
    assert_eq!(
        millis(second["timestamp"].as_str().unwrap()),
        millis(second["receivedAt"].as_str().unwrap()) - 30_750
    );

    // No messageId: one is assigned (a UUID); no timestamp: receivedAt.
    let records = server.store.counts().await.unwrap();
    assert_eq!(records.events, 3);
    let third_id = {
        let lanes = server.store.lanes().await.unwrap();
        assert!(lanes.is_empty(), "track events make no ChartMogul job");
        find_event_by_name(&server, "C").await
    };
    assert_eq!(third_id["messageId"].as_str().unwrap().len(), 36);
    assert_eq!(third_id["timestamp"], third_id["receivedAt"]);
    assert!(third_id.get("originalTimestamp").is_none());

    // Without any sentAt, sentAt is receivedAt.
    let (status, _) = server
        .send(
            "/v1/track",
            &json!({"userId": "u", "event": "D", "messageId": "skew-4",
                                   "timestamp": "2024-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let fourth = payload(&server.record("skew-4").await);
    assert_eq!(fourth["sentAt"], fourth["receivedAt"]);
    assert_eq!(fourth["timestamp"], "2024-01-01T00:00:00.000Z");
}

/// The stored payload of the `web` event whose `event` is `name`, found by walking event ids.
async fn find_event_by_name(server: &TestServer, name: &str) -> Value {
    for id in 1..100 {
        if let Some(record) = server
            .store
            .event(junction_store::EventId(id))
            .await
            .unwrap()
        {
            let event = payload(&record);
            if event["event"] == name {
                assert_eq!(record.message_id, event["messageId"].as_str().unwrap());
                return event;
            }
        }
    }
    panic!("no stored event named {name}");
}

fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

//! Every Tracking API route, both ways of sending the write key, gzip, CORS, and the answers to
//! requests no route takes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::util::{APP_WRITE_KEY, TestServer, WRITE_KEY, answer, gzip, payload};

/// An event of `kind` with what that type requires.
fn event_of(kind: &str, message_id: &str) -> Value {
    let mut event = json!({"userId": "user-1", "messageId": message_id});
    match kind {
        "track" => event["event"] = json!("Signed Up"),
        "group" => event["groupId"] = json!("acme-1"),
        "alias" => event["previousId"] = json!("anon-1"),
        _ => {}
    }
    event
}

const SINGLE: [(&str, &str, &str); 6] = [
    ("identify", "/v1/identify", "/v1/i"),
    ("track", "/v1/track", "/v1/t"),
    ("page", "/v1/page", "/v1/p"),
    ("screen", "/v1/screen", "/v1/s"),
    ("group", "/v1/group", "/v1/g"),
    ("alias", "/v1/alias", "/v1/a"),
];

#[tokio::test]
async fn every_single_event_route_stores_the_type_its_path_implies() {
    let server = TestServer::start().await;
    for (kind, path, _) in SINGLE {
        let message_id = format!("single-{kind}");
        let (status, body) = server.send(path, &event_of(kind, &message_id)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body, json!({"success": true}), "{path}");
        let stored = payload(&server.record(&message_id).await);
        assert_eq!(stored["type"], kind, "{path}");
    }
}

#[tokio::test]
async fn analytics_js_routes_take_text_plain_with_the_write_key_in_the_body() {
    let server = TestServer::start().await;
    for (kind, _, path) in SINGLE {
        let message_id = format!("ajs-{kind}");
        let mut event = event_of(kind, &message_id);
        event["writeKey"] = json!(WRITE_KEY);
        let response = server
            .post_anonymous(path)
            .header("content-type", "text/plain")
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let stored = payload(&server.record(&message_id).await);
        assert_eq!(stored["type"], kind, "{path}");
        assert!(
            stored.get("writeKey").is_none(),
            "the write key is never stored"
        );
    }

    let batch = json!({"writeKey": WRITE_KEY, "sentAt": "2024-03-01T12:00:00.000Z",
        "batch": [{"type": "track", "userId": "u", "event": "A", "messageId": "ajs-b-1"},
                  {"type": "page", "anonymousId": "a", "messageId": "ajs-b-2"}]});
    let response = server
        .post_anonymous("/v1/b")
        .header("content-type", "text/plain")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "accepted": 2, "rejected": []})
    );
    server.record("ajs-b-1").await;
    server.record("ajs-b-2").await;
}

#[tokio::test]
async fn batch_and_import_store_every_event_with_its_own_type() {
    let server = TestServer::start().await;
    for path in ["/v1/batch", "/v1/import"] {
        let ids: Vec<String> = SINGLE
            .iter()
            .map(|(kind, _, _)| format!("{path}-{kind}"))
            .collect();
        let items: Vec<Value> = SINGLE
            .iter()
            .zip(&ids)
            .map(|((kind, _, _), id)| {
                let mut event = event_of(kind, id);
                event["type"] = json!(kind);
                event
            })
            .collect();
        let (status, body) = server.send(path, &json!({"batch": items})).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["accepted"], 6, "{path}");
        for ((kind, _, _), id) in SINGLE.iter().zip(&ids) {
            assert_eq!(payload(&server.record(id).await)["type"], *kind);
        }
    }
}

#[tokio::test]
async fn the_write_key_comes_from_basic_auth_or_the_body() {
    let server = TestServer::start().await;
    let event = json!({"userId": "u", "event": "E", "messageId": "wk-1"});

    // The key without the colon, which Segment still accepts.
    let response = server
        .post_anonymous("/v1/track")
        .header("authorization", "Basic d2tfd2ViX3Rlc3Q=") // base64("wk_web_test")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Basic wins over the body; each key leads to its own source.
    let mut event = json!({"userId": "u", "event": "E", "messageId": "wk-2",
                           "writeKey": WRITE_KEY});
    let response = server
        .post_anonymous("/v1/track")
        .basic_auth(APP_WRITE_KEY, Some(""))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.records_of("app", "wk-2").await.len(), 1);
    assert!(server.records_of("web", "wk-2").await.is_empty());

    // Unknown keys, in either place, and no key at all: 401, nothing stored.
    let response = server
        .post_anonymous("/v1/track")
        .basic_auth("wk_nope", Some(""))
        .json(&event)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"success": false, "code": "unknown_write_key", "error": "unknown write key", "message": "unknown write key"})
    );

    event["writeKey"] = json!("wk_nope");
    event["messageId"] = json!("wk-3");
    let (status, body) = answer(
        server
            .post_anonymous("/v1/track")
            .json(&event)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unknown_write_key"))
    );

    event.as_object_mut().unwrap().remove("writeKey");
    let (status, body) = answer(
        server
            .post_anonymous("/v1/track")
            .json(&event)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "missing_write_key");
    assert!(server.records_of("web", "wk-3").await.is_empty());

    let rejections = server.state.rejections();
    assert_eq!(rejections.count(None, "unknown_write_key"), 2);
    assert_eq!(rejections.count(None, "missing_write_key"), 1);
    let recent = rejections.recent();
    assert!(
        recent.iter().all(|r| !r.message.contains("wk_nope")),
        "write keys never appear in the rejection log"
    );
}

#[tokio::test]
async fn gzip_bodies_are_inflated_and_bad_encodings_refused() {
    let server = TestServer::start().await;
    let batch = json!({"batch": [{"type": "identify", "userId": "u", "messageId": "gz-1"}]});
    let response = server
        .post("/v1/batch")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(batch.to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.record("gz-1").await;

    let response = server
        .post("/v1/batch")
        .header("content-encoding", "gzip")
        .body(b"this is not gzip".to_vec())
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "unreadable_body", "{body}");

    let response = server
        .post("/v1/batch")
        .header("content-encoding", "br")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_encoding");
}

#[tokio::test]
async fn browsers_get_cors_headers_and_preflight_answers() {
    let server = TestServer::start().await;
    let response = server
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/t", server.url))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    let response = server
        .post_anonymous("/v1/t")
        .header("origin", "https://shop.example")
        .header("content-type", "text/plain")
        .body(json!({"writeKey": WRITE_KEY, "userId": "u", "event": "E"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let server = TestServer::start().await;
    for path in ["/v1/nope", "/v2/track", "/v1/track/", "/"] {
        let (status, body) = server.send(path, &json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["code"], "not_found", "{path}");
        assert_eq!(body["success"], false);
    }
    let response = server
        .client
        .get(format!("{}/v1/track", server.url))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
    // A path that is no endpoint is not found whatever the method (not 405 for all but POST).
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let response = server
            .client
            .request(method.clone(), format!("{}/v1/nope", server.url))
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} /v1/nope");
        assert_eq!(body["code"], "not_found", "{method} /v1/nope");
    }
}

//! HTTP as it is written (F6 of the hardening issue) and what real clients send (item 7): every
//! admin error in JSON, axum's own rejections included; content codings and the bearer scheme
//! compared case-insensitively; analytics.js's telemetry (`/v1/m`) accepted and counted apart;
//! error bodies carrying `message` beside `error`, as the Python library reads them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{AdminClient, TestServer, gzip};

const TOKEN: &str = "http-rules-admin-token";

#[tokio::test]
async fn every_admin_error_is_json_even_axums_own() {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    for (method, path, status, kind) in [
        // A query string that does not parse (was text/plain).
        ("GET", "/api/v1/dead-letter?limit=many", 400, "validation"),
        ("GET", "/api/v1/dead-letter?nonsense=1", 400, "validation"),
        (
            "GET",
            "/api/v1/events/m-1?source=web&x=1",
            400,
            "validation",
        ),
        (
            "GET",
            "/api/v1/destinations/chartmogul/overview?window=1h&x",
            400,
            "validation",
        ),
        // A method the path does not take.
        ("PUT", "/api/v1/dead-letter", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/openapi.json", 405, "method_not_allowed"),
        // A body that is not the JSON expected.
        ("POST", "/api/v1/sources", 400, "validation"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = admin
            .request(method.clone(), path)
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["type"], kind, "{method} {path}: {body}");
        assert!(
            !body["errors"][0]["message"].as_str().unwrap().is_empty(),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn codings_and_schemes_are_case_insensitive() {
    let server = TestServer::start().await;
    let batch = json!({"batch": [{"type": "identify", "userId": "u-case", "messageId": "case-1"}]});
    let response = server
        .post("/v1/batch")
        .header("content-type", "application/json")
        .header("content-encoding", "GZIP")
        .body(gzip(batch.to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    assert_eq!(server.records_of("web", "case-1").await.len(), 1);

    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = server
            .client
            .get(format!("{}/api/v1/sources", admin.url))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    let response = server
        .client
        .get(format!("{}/api/v1/sources", admin.url))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn analytics_js_telemetry_is_accepted_and_counted_apart() {
    let server = TestServer::start().await;
    // What analytics.js sends: no write key, text/plain, a few counters.
    let telemetry = r#"{"series":[{"type":"Counter","metric":"analytics_js.invoke","value":1,"tags":{"library":"analytics.js"}}]}"#;
    for _ in 0..3 {
        let response = server
            .post_anonymous("/v1/m")
            .header("content-type", "text/plain")
            .body(telemetry)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"success": true}));
    }
    assert!(
        server.state.rejections().recent().is_empty(),
        "not refusals"
    );
    assert_eq!(server.state.stats().stored, 0, "nothing stored");
    let admin = AdminClient::start(&server, None).await;
    let metrics = server
        .client
        .get(format!("{}/metrics", admin.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("junction_tracking_client_metrics_total 3\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tracking_errors_carry_message_beside_error() {
    let server = TestServer::start().await;
    let (status, body) = server
        .send_raw("/v1/track", b"{\"userId\": ".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], body["error"]);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );
}

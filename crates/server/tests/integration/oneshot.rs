//! The router driven in-process with `oneshot`, without a socket: answers that need no store
//! round trip, and the JSON extractor's error format.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use http_body_util::BodyExt as _;
use junction_server::{ApiJson, AppState, TrackingConfig, app};
use junction_store::Store;
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use junction_workspace::{Snapshot, WorkspaceConfig};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::util::workspace;

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("junction.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let snapshot = Snapshot::compile(WorkspaceConfig::from_document(workspace()).unwrap()).unwrap();
    (
        AppState::new(store, snapshot, TrackingConfig::default()),
        dir,
    )
}

async fn call(router: Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn an_unknown_write_key_is_refused_before_the_body_is_read() {
    let (state, _dir) = state().await;
    let request = Request::post("/v1/track")
        .header("authorization", "Basic bm9wZTo=") // base64("nope:")
        .body(Body::from("not even JSON"))
        .unwrap();
    let (status, body) = call(app(state.clone()), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unknown_write_key");
    assert_eq!(state.stats().rejected_requests, 1);
}

#[tokio::test]
async fn a_snapshot_swap_applies_to_the_next_request() {
    let (state, _dir) = state().await;
    state.replace_snapshot(Snapshot::empty());
    let request = Request::post("/v1/track")
        .header("authorization", "Basic d2tfd2ViX3Rlc3Q6") // base64("wk_web_test:")
        .body(Body::from(r#"{"userId": "u", "event": "E"}"#))
        .unwrap();
    let (status, body) = call(app(state), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn the_json_extractor_answers_in_our_error_format() {
    let router = Router::new().route(
        "/echo",
        post(|ApiJson(value): ApiJson<Vec<u32>>| async move { ApiJson(value) }),
    );
    let request = Request::post("/echo")
        .header("content-type", "application/json")
        .body(Body::from("[1, 2]"))
        .unwrap();
    assert_eq!(
        call(router.clone(), request).await,
        (StatusCode::OK, json!([1, 2]))
    );

    let request = Request::post("/echo")
        .header("content-type", "application/json")
        .body(Body::from("{\"a\": 1}"))
        .unwrap();
    let (status, body) = call(router.clone(), request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "invalid_json");

    let request = Request::post("/echo").body(Body::from("[1]")).unwrap();
    let (status, body) = call(router, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "invalid_json");
}

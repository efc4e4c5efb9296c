//! Operations endpoints and the source debugger over real HTTP: `/healthz`, `/readyz` (also with
//! the store closed), `/metrics` (exact counts after known traffic), the live SSE stream and the
//! last 500 events.

use std::sync::Arc;
use std::time::Duration;

use junction_delivery::{
    ClientOptions, Engine, EngineOptions, HttpSender, LanePolicy, PolicySource,
};
use junction_server::AdminState;
use junction_store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::util::{APP_WRITE_KEY, TestServer, answer};

const TOKEN: &str = "ops-test-admin-token";

/// The admin API of `server` on its own port; its URL and the signal that stops it.
async fn admin(server: &TestServer, token: Option<&str>) -> (String, oneshot::Sender<()>) {
    junction_delivery::install_crypto_provider();
    let sender = Arc::new(HttpSender::new(ClientOptions::default()).unwrap());
    let state = AdminState::new(server.state.clone(), sender, token.map(str::to_owned));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(junction_server::serve_admin(
        listener,
        state,
        junction_server::ListenerLimits::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (url, stop)
}

/// The value of one series (`name{labels}` exactly as exposed), or `None` when absent.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse().unwrap())
        })
}

async fn scrape(server: &TestServer, url: &str) -> String {
    let response = server
        .client
        .get(format!("{url}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

fn identify(message_id: &str) -> Value {
    json!({"userId": "u1", "messageId": message_id, "traits": {"email": "jane@example.com"}})
}

#[tokio::test]
async fn probes_answer_without_a_token() {
    let mut server = TestServer::start().await;
    let (url, _stop) = admin(&server, Some(TOKEN)).await;

    let (status, body) = answer(
        server
            .client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = answer(
        server
            .client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["config"]["sources"], 2);

    // The other admin routes still want the token.
    let response = server
        .client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The 503 case is a unit test of `admin/ops.rs`: a closed SQLite store still answers reads
    // (its readers outlive the writer), so it cannot be made unreachable from here.
    server.finish_shutdown().await.unwrap();
    let (status, _) = answer(
        server
            .client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the process is still up");
}

#[tokio::test]
async fn metrics_count_known_traffic_exactly() {
    let server = TestServer::start().await;
    let (url, _stop) = admin(&server, Some(TOKEN)).await;

    // Two identifies (one a duplicate), a group, a track; a batch with one valid item and one
    // without identity; a request with an unknown write key; one for source `app`.
    for (path, body) in [
        ("/v1/identify", identify("m-1")),
        ("/v1/identify", identify("m-1")),
        (
            "/v1/group",
            json!({"userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}}),
        ),
        ("/v1/track", json!({"userId": "u1", "event": "Signed Up"})),
        (
            "/v1/batch",
            json!({"batch": [
                {"type": "track", "userId": "u1", "event": "A"},
                {"type": "track", "event": "no identity"}
            ]}),
        ),
    ] {
        let (status, answer) = server.send(path, &body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    }
    let unknown = server
        .post_anonymous("/v1/track")
        .basic_auth("nobody", Some(""))
        .json(&json!({"userId": "u1", "event": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let app = server
        .post_anonymous("/v1/track")
        .basic_auth(APP_WRITE_KEY, Some(""))
        .json(&json!({"userId": "u1", "event": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(app.status(), StatusCode::OK);

    let text = scrape(&server, &url).await;
    let value = |name: &str| series(&text, name).unwrap_or_else(|| panic!("{name} in\n{text}"));
    assert_eq!(value("junction_events_received_total{source=\"web\"}"), 6.0);
    assert_eq!(value("junction_events_accepted_total{source=\"web\"}"), 5.0);
    assert_eq!(
        value("junction_events_duplicate_total{source=\"web\"}"),
        1.0
    );
    assert_eq!(value("junction_events_accepted_total{source=\"app\"}"), 1.0);
    assert_eq!(
        value("junction_events_rejected_total{source=\"web\",reason=\"missing_identity\"}"),
        1.0
    );
    assert_eq!(
        value("junction_events_rejected_total{source=\"\",reason=\"unknown_write_key\"}"),
        1.0
    );
    assert_eq!(value("junction_tracking_requests_total"), 7.0);
    // Routed once each: the duplicate is not routed again.
    let routing = |mapping: &str, outcome: &str| {
        value(&format!(
            "junction_routing_outcomes_total{{destination=\"chartmogul\",mapping=\"{mapping}\",outcome=\"{outcome}\"}}"
        ))
    };
    assert_eq!(routing("contacts", "job"), 1.0);
    assert_eq!(routing("customers", "job"), 1.0);
    assert_eq!(
        routing("contacts", "not_matched"),
        3.0,
        "group, track, batch track"
    );
    assert_eq!(
        routing("customers", "not_matched"),
        3.0,
        "identify, track, batch track"
    );
    // Six commits: five requests of `web` (the all-refused one never reaches the store) and `app`.
    assert_eq!(value("junction_store_commit_duration_seconds_count"), 6.0);
    assert_eq!(
        value("junction_store_commit_duration_seconds_bucket{le=\"+Inf\"}"),
        6.0
    );
    assert!(text.contains("# TYPE junction_store_commit_duration_seconds histogram"));
    assert!(text.contains("# TYPE junction_lane_due_lag_seconds gauge"));
    // Two jobs wait for delivery (no engine runs here): the lane is known to the store.
    assert!(
        series(
            &text,
            "junction_lane_due_lag_seconds{destination=\"chartmogul\",host=\"chartmogul.example\"}"
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(
        value("junction_lane_queued_jobs{destination=\"chartmogul\",host=\"chartmogul.example\"}"),
        2.0,
        "the two jobs wait in the store"
    );
    assert!(!text.contains("token=secret"), "no webhook URL in metrics");
}

#[derive(Debug)]
struct Defaults;

impl PolicySource for Defaults {
    fn policy(&self, _destination_id: &str) -> LanePolicy {
        LanePolicy::default()
    }

    fn setting_url(&self, destination_id: &str, _key: &str) -> Result<String, String> {
        Err(format!(
            "destination \"{destination_id}\" is not configured"
        ))
    }
}

#[tokio::test]
async fn lane_stats_handles_do_not_hold_the_engine_at_shutdown() {
    let server = TestServer::start().await;
    let options = EngineOptions {
        metrics: Some(server.state.metrics().delivery_hook()),
        ..EngineOptions::default()
    };
    let store: Arc<dyn Store> = server.store.clone();
    let engine = Engine::start(store, Arc::new(Defaults), options).unwrap();
    let handle = engine.lane_stats_handle();
    server.state.metrics().attach_lanes(handle.clone());
    let (status, _) = server.send("/v1/identify", &identify("lane-1")).await;
    assert_eq!(status, StatusCode::OK);
    crate::util::eventually("the lane to start", || !handle.lane_stats().is_empty()).await;
    tokio::time::timeout(
        Duration::from_secs(20),
        engine.shutdown(Duration::from_secs(1)),
    )
    .await
    .expect("shutdown waited on a lane stats handle");
    assert_eq!(
        handle.lane_stats()[0].endpoint,
        "chartmogul|chartmogul.example"
    );
}

/// Reads SSE messages from `response` until one whose data satisfies `wanted`.
async fn next_message(response: &mut reqwest::Response, buffer: &mut String) -> (String, Value) {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let mut kind = "message".to_owned();
            let mut data = String::new();
            for line in message.lines() {
                if let Some(rest) = line.strip_prefix("event:") {
                    kind = rest.trim().to_owned();
                } else if let Some(rest) = line.strip_prefix("data:") {
                    data.push_str(rest.trim_start());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            return (kind, serde_json::from_str(&data).unwrap());
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("no SSE message within 10 s")
            .unwrap()
            .expect("the stream ended");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn the_live_stream_shows_events_accepted_after_it_opened() {
    let server = TestServer::start().await;
    let (url, _stop) = admin(&server, Some(TOKEN)).await;
    let (status, _) = server.send("/v1/identify", &identify("before")).await;
    assert_eq!(status, StatusCode::OK);

    let mut response = server
        .client
        .get(format!("{url}/api/v1/sources/web/events/live"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    let (status, _) = server.send("/v1/identify", &identify("after")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.send("/v1/identify", &identify("after")).await;
    assert_eq!(status, StatusCode::OK);
    let mut buffer = String::new();
    let (kind, first) = next_message(&mut response, &mut buffer).await;
    assert_eq!(kind, "message");
    assert_eq!(first["message_id"], "after");
    assert_eq!(first["source_id"], "web");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["event"]["userId"], "u1");
    assert_eq!(first["event"]["type"], "identify");
    assert_eq!(
        first["routing"]["jobs"],
        json!([{"destination_id": "chartmogul", "mapping_id": "contacts"}])
    );
    assert_eq!(
        first["routing"]["discards"],
        json!([{"destination_id": "chartmogul", "mapping_id": "customers", "reason": "not_matched"}])
    );
    let (_, second) = next_message(&mut response, &mut buffer).await;
    assert_eq!(second["message_id"], "after");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["routing"]["jobs"], json!([]));

    // Shutdown ends open streams.
    server.state.live().close();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(_chunk) = response.chunk().await.unwrap() {}
    })
    .await;
    assert!(end.is_ok(), "the stream ended at close");

    let unknown = server
        .client
        .get(format!("{url}/api/v1/sources/nope/events/live"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn recent_keeps_the_last_500_in_order() {
    let server = TestServer::start().await;
    let (url, _stop) = admin(&server, None).await;
    let get_recent = |source: &str| {
        let request = server
            .client
            .get(format!("{url}/api/v1/sources/{source}/events/recent"));
        async move { answer(request.send().await.unwrap()).await }
    };
    let (status, body) = get_recent("web").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"data": []})));

    for chunk in 0..3 {
        let batch: Vec<Value> = (0..200)
            .map(|i| {
                let n = chunk * 200 + i;
                json!({"type": "track", "userId": "u1", "event": "E", "messageId": format!("r-{n}")})
            })
            .collect();
        let (status, answer) = server.send("/v1/batch", &json!({"batch": batch})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, body) = get_recent("web").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["message_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (100..600).map(|n| format!("r-{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(body["data"][499]["event"]["event"], "E");

    let (status, body) = get_recent("app").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"data": []})));
    let (status, body) = get_recent("nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"][0]["type"], "not_found");
}

/// A commit wakes its lane at once, without waiting for the dispatcher's next listing of every
/// lane (an hour away here): the lane, drained by the first event's claim, claims the second's
/// job only because the commit named it.
#[tokio::test]
async fn a_commit_wakes_its_lane_without_a_listing() {
    let server = TestServer::start().await;
    let options = EngineOptions {
        idle_poll: Duration::from_secs(3600),
        ..EngineOptions::default()
    };
    let store: Arc<dyn Store> = server.store.clone();
    let engine = Engine::start(Arc::clone(&store), Arc::new(Defaults), options).unwrap();
    for message_id in ["woken-1", "woken-2"] {
        let (status, _) = server.send("/v1/identify", &identify(message_id)).await;
        assert_eq!(status, StatusCode::OK);
        // No URL is configured here, so the job's one attempt discards it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let records = store.events_by_message_id("web", message_id).await.unwrap();
            let attempted = records
                .iter()
                .flat_map(|record| &record.jobs)
                .any(|job| !job.attempts.is_empty());
            if attempted {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{message_id}'s job was not attempted within 10 s: {records:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    engine.shutdown(Duration::from_secs(1)).await;
}

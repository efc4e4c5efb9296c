//! The app's server time for a page over a busy destination: 50 mappings and 10,000 events in
//! the last hour (issue 13: under 50 ms). The pages are rendered by the real router in-process
//! (`admin_app`, no network) over a real SQLite store filled through the Tracking API router, so
//! the figure includes the overview the pages read from the store's rollups.

// criterion_group! generates public functions that cannot carry doc comments; a bench whose
// setup fails has nothing to measure, and a panic says why best.
#![allow(missing_docs, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use criterion::{Criterion, criterion_group, criterion_main};
use junction_server::{AdminState, AppState, TrackingConfig, admin_app, app};
use junction_store::Store;
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use junction_workspace::{Snapshot, WorkspaceConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WRITE_KEY: &str = "wk_bench_app_0123456789";
const EVENTS: usize = 10_000;
const MAPPINGS: usize = 50;

/// Source `web` → destination `cm` with 50 mappings: the first sends identify calls, the others
/// wait for track events of their own name (so each event is one job and 49 non-matches).
fn workspace() -> Value {
    let mut mappings = vec![json!({"id": "contacts", "action": "sendContact",
                                    "name": "Send Contact", "trigger": "type = \"identify\""})];
    for i in 1..MAPPINGS {
        mappings.push(json!({"id": format!("m{i}"), "action": "sendContact",
                             "name": format!("Mapping {i}"),
                             "trigger": format!("type = \"track\" and event = \"Event {i}\"")}));
    }
    json!({
        "sources": [{"id": "web", "name": "Web", "write_keys": [WRITE_KEY]}],
        "destinations": [{
            "id": "cm", "name": "ChartMogul", "type": "actions-chartmogul",
            // Nothing listens there and nothing is delivered in this bench: no engine runs.
            "settings": {"chartmogul_webhook_url": "https://hooks.example/api/webhooks/bench"},
            "sources": ["web"], "mappings": mappings
        }]
    })
}

struct Fixture {
    router: axum::Router,
    cookie: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("junction.db"), SqliteOptions::default())
            .await
            .expect("store"),
    );
    let config = WorkspaceConfig::from_document(workspace()).expect("workspace");
    let snapshot = Snapshot::compile(config).expect("compiles");
    let dyn_store: Arc<dyn Store> = store;
    let state = AppState::new(dyn_store, snapshot, TrackingConfig::default());
    let tracking = app(state.clone());
    let auth = format!("Basic {}", BASE64.encode(format!("{WRITE_KEY}:")));
    for batch in 0..EVENTS / 100 {
        let events: Vec<Value> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                json!({"type": "identify", "userId": format!("user-{n}"),
                       "traits": {"email": format!("u{n}@example.com"), "plan": "pro"}})
            })
            .collect();
        let request = Request::post("/v1/batch")
            .header(header::AUTHORIZATION, &auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"batch": events}).to_string()))
            .expect("request");
        let response = tracking.clone().oneshot(request).await.expect("answer");
        assert!(response.status().is_success(), "{}", response.status());
    }
    junction_delivery::install_crypto_provider();
    let sender = junction_delivery::HttpSender::new(junction_delivery::ClientOptions::default())
        .expect("sender");
    let router = admin_app(AdminState::new(state, Arc::new(sender), None));
    // Without an admin token a loopback browser gets its session on the first page.
    let first = router
        .clone()
        .oneshot(page_request("/", None))
        .await
        .expect("answer");
    let cookie = first
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned();
    Fixture {
        router,
        cookie,
        _dir: dir,
    }
}

fn page_request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path).header(header::HOST, "127.0.0.1");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).expect("request")
}

fn pages(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fixture = runtime.block_on(fixture());
    let mut group = c.benchmark_group("app_page_50_mappings_10k_events");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));
    for path in [
        "/",
        "/destinations/cm/mappings",
        "/destinations/cm/overview?window=1h",
        "/destinations/cm/mappings/contacts",
    ] {
        group.bench_function(path, |b| {
            b.to_async(&runtime).iter(|| async {
                let response = fixture
                    .router
                    .clone()
                    .oneshot(page_request(path, Some(&fixture.cookie)))
                    .await
                    .expect("answer");
                assert!(
                    response.status().is_success(),
                    "{path}: {}",
                    response.status()
                );
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .expect("body")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);

//! The test harness: each test gets a fresh temp dir holding a real SQLite store and a real
//! server on 127.0.0.1 port 0, driven over HTTP with reqwest.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use junction_server::{AppState, ListenerLimits, TrackingConfig};
use junction_store::{EventRecord, Store};
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use junction_workspace::{Snapshot, WorkspaceConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The write key of source `web`, which is connected to the ChartMogul destination.
pub const WRITE_KEY: &str = "wk_web_test";
/// The write key of source `app`, which no destination is connected to.
pub const APP_WRITE_KEY: &str = "wk_app_test";
/// The ChartMogul webhook of the test workspace.
pub const WEBHOOK: &str = "https://chartmogul.example/api/webhooks/wh_1?token=secret";

/// The test workspace: sources `web` and `app`, a ChartMogul destination on `web` with both
/// default mappings (`contacts` on identify, `customers` on group).
pub fn workspace() -> Value {
    json!({
        "sources": [
            {"id": "web", "name": "Web", "write_keys": [WRITE_KEY]},
            {"id": "app", "name": "App", "write_keys": [APP_WRITE_KEY]}
        ],
        "destinations": [{
            "id": "chartmogul", "name": "ChartMogul", "type": "actions-chartmogul",
            "settings": {"chartmogul_webhook_url": WEBHOOK},
            "sources": ["web"],
            "mappings": [
                {"id": "contacts", "action": "sendContact", "name": "Send Contact",
                 "trigger": "type = \"identify\""},
                {"id": "customers", "action": "sendCustomer", "name": "Send Customer",
                 "trigger": "type = \"group\""}
            ]
        }]
    })
}

/// What a test may change about its server.
#[derive(Default)]
pub struct Options {
    pub store: SqliteOptions,
    pub tracking: TrackingConfig,
    pub listener: ListenerLimits,
}

/// A running server over a fresh store.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub store: Arc<SqliteStore>,
    pub client: reqwest::Client,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(dir.path().join("junction.db"), options.store)
                .await
                .unwrap(),
        );
        let config = WorkspaceConfig::from_document(workspace()).unwrap();
        let snapshot = Snapshot::compile(config).unwrap();
        let dyn_store: Arc<dyn Store> = store.clone();
        let state = AppState::new(dyn_store, snapshot, options.tracking);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(junction_server::serve(
            listener,
            state.clone(),
            options.listener,
            async move {
                let _ = signal.await;
            },
        ));
        junction_delivery::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            url: format!("http://{addr}"),
            state,
            store,
            client,
            dir,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// A POST to `path` authenticated with `web`'s write key (HTTP Basic, as the clients do).
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .basic_auth(WRITE_KEY, Some(""))
    }

    /// A POST to `path` without credentials.
    pub fn post_anonymous(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.url))
    }

    /// Sends `body` as JSON to `path` with `web`'s write key; the status and the JSON answer.
    pub async fn send(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.post(path).json(body).send().await.unwrap()).await
    }

    /// Sends raw bytes to `path` with `web`'s write key.
    pub async fn send_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
        let body: Vec<u8> = body.into();
        let request = self
            .post(path)
            .header("content-type", "application/json")
            .body(body);
        answer(request.send().await.unwrap()).await
    }

    /// Every stored event of source `source` with this `messageId`.
    pub async fn records_of(&self, source: &str, message_id: &str) -> Vec<EventRecord> {
        self.store
            .events_by_message_id(source, message_id)
            .await
            .unwrap()
    }

    /// The one stored event of source `web` with this `messageId`.
    pub async fn record(&self, message_id: &str) -> EventRecord {
        let mut records = self.records_of("web", message_id).await;
        assert_eq!(records.len(), 1, "events stored for {message_id}");
        records.remove(0)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("junction.db")
    }

    /// Signals a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits for the server to finish after [`TestServer::begin_shutdown`], then closes the store.
    pub async fn finish_shutdown(&mut self) -> std::io::Result<()> {
        self.begin_shutdown();
        let served = match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server did not stop within 10 s")
                .unwrap(),
            None => Ok(()),
        };
        self.store.close().await.unwrap();
        served
    }
}

/// The status and JSON body of a response (`Value::Null` when the body is not JSON).
pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

/// The stored payload of a record as JSON.
pub fn payload(record: &EventRecord) -> Value {
    serde_json::from_slice(&record.payload).unwrap()
}

/// Gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An RFC 3339 timestamp as Unix milliseconds.
pub fn millis(text: &str) -> i64 {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|err| panic!("{text:?} is not RFC 3339: {err}"));
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Polls `condition` every 5 ms for up to 5 s.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A running admin API over a [`TestServer`]'s state, with a client that keeps every response
/// body it read, so that a test can check no secret ever left the server.
pub struct AdminClient {
    pub url: String,
    token: Option<String>,
    client: reqwest::Client,
    bodies: std::sync::Mutex<Vec<String>>,
}

impl AdminClient {
    /// Starts the admin listener on 127.0.0.1 port 0 for `server`, requiring `token` when given;
    /// its webhook requests may go to local servers (the tests' webhooks).
    pub async fn start(server: &TestServer, token: Option<&str>) -> Self {
        Self::start_with_policy(server, token, |_| {
            junction_delivery::WebhookPolicy::allow_local()
        })
        .await
    }

    /// [`AdminClient::start`] with the webhook policy `policy` makes of the admin listener's
    /// address.
    pub async fn start_with_policy(
        server: &TestServer,
        token: Option<&str>,
        policy: impl FnOnce(std::net::SocketAddr) -> junction_delivery::WebhookPolicy,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = junction_delivery::HttpSender::new(junction_delivery::ClientOptions {
            timeout: Duration::from_secs(5),
            policy: Arc::new(policy(addr)),
            ..junction_delivery::ClientOptions::default()
        })
        .unwrap();
        let state = junction_server::AdminState::new(
            server.state.clone(),
            Arc::new(sender),
            token.map(str::to_owned),
        );
        tokio::spawn(junction_server::serve_admin(
            listener,
            state,
            ListenerLimits::default(),
            std::future::pending(),
        ));
        Self {
            url: format!("http://{addr}"),
            token: token.map(str::to_owned),
            client: server.client.clone(),
            bodies: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A request to `path` (under the admin URL) with the configured token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` and returns the status and JSON body, keeping the body's text.
    pub async fn call(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.bodies.lock().unwrap().push(text);
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(self.request(reqwest::Method::PATCH, path).json(body))
            .await
    }

    pub async fn put(&self, path: &str) -> (StatusCode, Value) {
        self.call(self.request(reqwest::Method::PUT, path)).await
    }

    /// Panics if any response body read so far contains `secret`.
    pub fn assert_never_shown(&self, secret: &str) {
        let bodies = self.bodies.lock().unwrap();
        assert!(!bodies.is_empty());
        for body in bodies.iter() {
            assert!(!body.contains(secret), "a response showed a secret: {body}");
        }
    }
}

//! A programmable webhook for the delivery tests: an axum server on 127.0.0.1 (port 0) on a
//! runtime of its own, which records every request it receives (when, path, headers, body, what
//! it answered, which client connection sent it) and its concurrency, and answers as the test
//! tells it to, changeable at run time and per path, or holds requests until it is told to answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One answer: a status, headers and a body, sent after an optional delay.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// How long the webhook waits before answering (a slow or hanging endpoint).
    pub delay: Duration,
}

impl Reply {
    /// `status` at once, with an empty JSON object as body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: "{}".to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// 200 at once.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    /// The same answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same answer, sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// How the webhook answers the requests of a path (or every path).
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Every request gets this answer.
    Always(Reply),
    /// The first `count` requests after the behaviour was set get `reply`, the others 200.
    FailFirst { count: usize, reply: Reply },
    /// Every `every`-th request after the behaviour was set (the `every`-th, the 2×`every`-th…)
    /// gets `reply`, the others 200: a fraction of failures (or of slow answers) spread
    /// evenly, the same in every run.
    EveryNth { every: usize, reply: Reply },
    /// Every request waits, unanswered, until [`Webhook::release`], then gets 200: unlike a
    /// long delay, what was held is answered as soon as the test says so, before any client
    /// timeout, so the test decides exactly which requests are in flight at a given moment.
    Hold,
}

/// One request the webhook received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    /// When the handler finished (answered, or was dropped because the client went away).
    pub answered_at: Option<Instant>,
    pub method: String,
    pub path: String,
    /// Names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the webhook chose to answer.
    pub status: u16,
    /// The client's address: its port tells which of several clients (nodes) sent the request.
    pub peer: SocketAddr,
}

impl Received {
    /// The body as JSON (every delivery is JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "webhook body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body's `message_id`, which every ChartMogul payload carries.
    pub fn message_id(&self) -> String {
        self.json()["message_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no message_id in {}", String::from_utf8_lossy(&self.body)))
            .to_owned()
    }

    /// The first header called `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A behaviour with the number of requests it has answered since it was set.
struct Active {
    behaviour: Behaviour,
    served: usize,
}

impl Active {
    fn new(behaviour: Behaviour) -> Self {
        Active {
            behaviour,
            served: 0,
        }
    }

    fn next(&mut self) -> Reply {
        self.served += 1;
        match &self.behaviour {
            Behaviour::Always(reply) => reply.clone(),
            Behaviour::FailFirst { count, reply } if self.served <= *count => reply.clone(),
            Behaviour::EveryNth { every, reply } if self.served.is_multiple_of((*every).max(1)) => {
                reply.clone()
            }
            Behaviour::FailFirst { .. } | Behaviour::EveryNth { .. } | Behaviour::Hold => {
                Reply::ok()
            }
        }
    }

    fn holds(&self) -> bool {
        matches!(self.behaviour, Behaviour::Hold)
    }
}

struct Shared {
    default: Active,
    by_path: HashMap<String, Active>,
    requests: Vec<Received>,
    in_flight: usize,
    peak: usize,
    /// Counts the calls of [`Webhook::release`]: a held request waits until it changes after
    /// the request arrived.
    releases: tokio::sync::watch::Sender<u64>,
}

type SharedState = Arc<Mutex<Shared>>;

fn lock(state: &SharedState) -> MutexGuard<'_, Shared> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running webhook server. Dropping it stops it at once (hanging answers are abandoned).
pub struct Webhook {
    address: SocketAddr,
    state: SharedState,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Webhook {
    /// Starts a webhook answering 200 to everything.
    pub fn start() -> Webhook {
        let state = Arc::new(Mutex::new(Shared {
            default: Active::new(Behaviour::Always(Reply::ok())),
            by_path: HashMap::new(),
            requests: Vec::new(),
            in_flight: 0,
            peak: 0,
            releases: tokio::sync::watch::Sender::new(0),
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("webhook")
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state))
            .into_make_service_with_connect_info::<SocketAddr>();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Webhook {
            address,
            state,
            runtime: Some(runtime),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Answers every path without a behaviour of its own like this from now on; the number of
    /// requests received before (the index of the first request answered so).
    pub fn set(&self, behaviour: Behaviour) -> usize {
        let mut state = lock(&self.state);
        state.default = Active::new(behaviour);
        state.requests.len()
    }

    /// Answers requests to `path` like this from now on.
    pub fn set_path(&self, path: &str, behaviour: Behaviour) {
        lock(&self.state)
            .by_path
            .insert(path.to_owned(), Active::new(behaviour));
    }

    /// Answers every request held by [`Behaviour::Hold`] (200), after switching the default
    /// behaviour to `then` so that no later request is held; the number of requests received
    /// before (the index of the first request answered by `then`).
    pub fn release(&self, then: Behaviour) -> usize {
        let mut state = lock(&self.state);
        state.default = Active::new(then);
        state.releases.send_modify(|n| *n += 1);
        state.requests.len()
    }

    /// Forgets every per-path behaviour.
    pub fn clear_paths(&self) {
        lock(&self.state).by_path.clear();
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Received> {
        lock(&self.state).requests.clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        lock(&self.state).in_flight
    }

    /// The most requests handled at once so far.
    pub fn peak(&self) -> usize {
        lock(&self.state).peak
    }

    /// Polls the recorded requests until `done` holds, for at most `timeout`; the requests then.
    /// Panics with `what` and the last count when the deadline passes.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let state = lock(&self.state);
                if done(&state.requests) {
                    return state.requests.clone();
                }
                if Instant::now() > deadline {
                    panic!(
                        "webhook: {what} did not happen within {timeout:?} ({} requests received, \
                         {} in flight)",
                        state.requests.len(),
                        state.in_flight
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Counts a request out of flight when its handler ends, however it ends (a client that times
/// out drops the connection and, with it, the handler).
struct InFlight {
    state: SharedState,
    index: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.in_flight -= 1;
        state.requests[self.index].answered_at = Some(Instant::now());
    }
}

async fn handle(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path().to_owned();
    let (reply, held, guard) = {
        let mut shared = lock(&state);
        let active = match shared.by_path.get_mut(&path) {
            Some(active) => active,
            None => &mut shared.default,
        };
        let reply = active.next();
        // Subscribed under the lock, so a release after this point is seen.
        let held = active.holds().then(|| shared.releases.subscribe());
        shared.in_flight += 1;
        shared.peak = shared.peak.max(shared.in_flight);
        let index = shared.requests.len();
        shared.requests.push(Received {
            at,
            answered_at: None,
            method: method.to_string(),
            path,
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: body.to_vec(),
            status: reply.status,
            peer,
        });
        (
            reply,
            held,
            InFlight {
                state: Arc::clone(&state),
                index,
            },
        )
    };
    if let Some(mut releases) = held {
        // A new receiver has seen the value current at its subscription: only a later release
        // ends the wait.
        let _ = releases.changed().await;
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap();
    let mut response = (status, reply.body).into_response();
    for (name, value) in &reply.headers {
        response.headers_mut().append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(value).unwrap(),
        );
    }
    drop(guard);
    response
}

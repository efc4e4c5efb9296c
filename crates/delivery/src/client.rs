//! The one shared webhook HTTP client and a single attempt: send a job's request, keep the
//! status, the headers and a bounded excerpt of the body, and turn failures into an
//! [`AttemptError`] that never contains the URL.

use std::error::Error as _;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::policy::{Blocked, PolicyResolver, WebhookPolicy};
use crate::{AttemptError, AttemptResult, DeliveryError, ErrorClass};

/// How the shared client behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The whole attempt at most: connecting, sending, and reading the response excerpt.
    pub timeout: Duration,
    /// Bytes of the response body kept (and read) at most.
    pub excerpt_limit: usize,
    /// Idle keep-alive connections kept per host.
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept before it is closed.
    pub idle_timeout: Duration,
    /// Where requests may go (see [`WebhookPolicy`]); by default public `https` addresses only.
    pub policy: Arc<WebhookPolicy>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            excerpt_limit: 4096,
            // Above the default lane concurrency (20), so a busy lane's connections all stay warm.
            max_idle_per_host: 64,
            idle_timeout: Duration::from_secs(90),
            policy: Arc::default(),
        }
    }
}

/// Sends attempts over one pooled client (keep-alive, HTTP/2 when a TLS server offers it through
/// ALPN, no redirects). Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    options: ClientOptions,
}

impl HttpSender {
    /// Builds the client. Installs rustls' `ring` provider as the process default first, unless
    /// one is installed already (see [`install_crypto_provider`]).
    pub fn new(options: ClientOptions) -> Result<Self, DeliveryError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            // A redirect is an answer like any other (a 3xx is discarded): following it would
            // send the payload somewhere the user did not configure.
            .redirect(reqwest::redirect::Policy::none())
            // Every address a webhook's name resolves to is checked when the connection is made.
            .dns_resolver(Arc::new(PolicyResolver::new(Arc::clone(&options.policy))))
            .timeout(options.timeout)
            .pool_max_idle_per_host(options.max_idle_per_host)
            .pool_idle_timeout(options.idle_timeout)
            .build()
            .map_err(DeliveryError::Client)?;
        Ok(Self { client, options })
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Sends one request and reports what happened; never fails, as every outcome is an attempt
    /// to record. `headers` are sent as given (the job carries `content-type` and `user-agent`).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> AttemptResult {
        let started_at = unix_millis(SystemTime::now());
        let clock = Instant::now();
        let mut result = AttemptResult {
            started_at,
            duration: Duration::ZERO,
            status: None,
            response_headers: Vec::new(),
            body_excerpt: Vec::new(),
            error: None,
        };
        match self.attempt(method, url, headers, body, &mut result).await {
            Ok(()) => {}
            Err(error) => result.error = Some(error),
        }
        result.duration = clock.elapsed();
        result
    }

    /// The attempt proper, filling `result` as the answer arrives so that a failure while
    /// reading the body keeps the status and headers.
    async fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        result: &mut AttemptResult,
    ) -> Result<(), AttemptError> {
        // A URL that cannot be requested at all is the request's fault, not the policy's.
        let request = build_request(method, url, headers, body)?;
        self.options
            .policy
            .check_parsed(request.url())
            .map_err(|blocked| AttemptError {
                class: ErrorClass::Blocked,
                message: blocked.0,
            })?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|err| self.transport_error(&err, url))?;

        let status = response.status();
        result.status = Some(status.as_u16());
        result.response_headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();

        let limit = self.options.excerpt_limit;
        let mut excerpt = Vec::with_capacity(response.content_length().map_or(limit, |length| {
            usize::try_from(length).unwrap_or(limit).min(limit)
        }));
        // Chunk by chunk and no further than the limit: a huge (or endless) body is neither
        // buffered nor waited for. Dropping the unread rest costs that one connection.
        while excerpt.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(limit - excerpt.len());
                    excerpt.extend_from_slice(&chunk[..take]);
                }
                Ok(None) => break,
                // The status has arrived and decides the verdict (a 2xx is delivered even if the
                // body is cut short); the excerpt keeps what came before the failure.
                Err(_) => break,
            }
        }
        result.body_excerpt = excerpt;

        if status.is_success() {
            return Ok(());
        }
        let mut message = match status.canonical_reason() {
            Some(reason) => format!("{} {reason}", status.as_u16()),
            None => status.as_u16().to_string(),
        };
        if let Some(said) = answer_message(&result.response_headers, &result.body_excerpt) {
            message.push_str(": ");
            message.push_str(&said);
        }
        Err(AttemptError {
            class: ErrorClass::Status,
            message,
        })
    }

    /// Classifies a reqwest error and describes it without the URL's path and query (where the
    /// secret lives): the host is named, as masked URLs show it, so that a person can tell a
    /// typo in the host from a server that is down.
    fn transport_error(&self, err: &reqwest::Error, url: &str) -> AttemptError {
        let host = host_of(url);
        if err.is_timeout() {
            return AttemptError {
                class: ErrorClass::Timeout,
                message: format!(
                    "no answer from {host} within {}",
                    human_duration(self.options.timeout)
                ),
            };
        }
        if err.is_builder() {
            return invalid_request("the request cannot be built");
        }
        let detail = innermost_message(err);
        let (class, message) = if let Some(blocked) = blocked_by_policy(err) {
            (ErrorClass::Blocked, blocked)
        } else if let Some(tls) = tls_error(err) {
            (
                ErrorClass::Tls,
                format!("TLS handshake with {host} failed: {tls}"),
            )
        } else if is_dns_failure(err) {
            (
                ErrorClass::Dns,
                format!(
                    "DNS lookup of {} failed: {}",
                    host_name(url),
                    dns_reason(&detail)
                ),
            )
        } else {
            let class = if err.is_connect() {
                ErrorClass::Connect
            } else {
                ErrorClass::Network
            };
            let message = match io_error_kind(err) {
                Some(io::ErrorKind::ConnectionRefused) => format!("connection refused by {host}"),
                Some(io::ErrorKind::ConnectionReset) => "connection reset by peer".to_owned(),
                Some(io::ErrorKind::ConnectionAborted) => "connection aborted".to_owned(),
                Some(io::ErrorKind::HostUnreachable) => format!("host {host} unreachable"),
                Some(io::ErrorKind::NetworkUnreachable) => {
                    format!("network unreachable for {host}")
                }
                Some(io::ErrorKind::AddrNotAvailable) => "address not available".to_owned(),
                _ => match class {
                    ErrorClass::Connect => format!("cannot connect to {host}: {detail}"),
                    _ => detail,
                },
            };
            (class, message)
        };
        AttemptError {
            class,
            message: redact(message, url),
        }
    }
}

/// `host:port` of a URL as masked URLs show it, or `the webhook` when it has none.
fn host_of(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => "the webhook".to_owned(),
        },
        Err(_) => "the webhook".to_owned(),
    }
}

/// The host name alone (what a DNS lookup looks up).
fn host_name(url: &str) -> String {
    Url::parse(url)
        .ok()
        .and_then(|parsed| parsed.host_str().map(str::to_owned))
        .unwrap_or_else(|| "the webhook's host".to_owned())
}

/// Every cause of `err`, outermost first, including errors an `io::Error` wraps (whose `source`
/// skips the wrapped error itself).
fn causes<'a>(err: &'a reqwest::Error) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut next = err.source();
    while let Some(cause) = next {
        found.push(cause);
        // I/O errors nest (tokio-rustls wraps rustls' error, hyper wraps that again).
        let mut wrapped = cause;
        while let Some(inner) = wrapped
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            found.push(inner);
            wrapped = inner;
        }
        next = cause.source();
    }
    found
}

/// The policy's refusal of every address the host resolved to, if that is why it failed.
fn blocked_by_policy(err: &reqwest::Error) -> Option<String> {
    causes(err)
        .into_iter()
        .find_map(|cause| cause.downcast_ref::<Blocked>())
        .map(|blocked| blocked.0.clone())
}

/// The TLS failure in `err`'s causes, if the attempt failed in the TLS handshake.
fn tls_error(err: &reqwest::Error) -> Option<String> {
    causes(err)
        .into_iter()
        .find_map(|cause| cause.downcast_ref::<rustls::Error>())
        .map(ToString::to_string)
}

/// Whether the connection failed because the host name did not resolve: hyper's connector
/// reports it as a connect error whose message is `dns error`.
fn is_dns_failure(err: &reqwest::Error) -> bool {
    err.is_connect()
        && causes(err)
            .into_iter()
            .any(|cause| cause.to_string().starts_with("dns error"))
}

/// The resolver's words, shortened where they are the usual "no such name".
fn dns_reason(detail: &str) -> String {
    let unknown = [
        "Name or service not known",
        "No address associated",
        "nodename nor servname",
    ];
    if unknown.iter().any(|words| detail.contains(words)) {
        "no such host".to_owned()
    } else {
        detail.to_owned()
    }
}

/// The message an error answer carries for people, if it has one: JSON's `message`, `error`
/// (a string, or an object with a `message`), `errors[].message` (ChartMogul's shape, joined)
/// or `detail`; or a short plain-text body. At most 300 characters, on one line.
pub(crate) fn answer_message(headers: &[(String, String)], body: &[u8]) -> Option<String> {
    const LIMIT: usize = 300;
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let said = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => json_message(&json)?,
        Err(_) => {
            let content_type = headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                .map(|(_, value)| value.to_ascii_lowercase());
            // HTML error pages say nothing a log line can use; plain text usually does.
            if content_type.is_some_and(|kind| kind.contains("html")) || text.starts_with('<') {
                return None;
            }
            text.to_owned()
        }
    };
    let one_line: String = said.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return None;
    }
    if one_line.chars().count() > LIMIT {
        let cut: String = one_line.chars().take(LIMIT).collect();
        return Some(format!("{cut}…"));
    }
    Some(one_line)
}

fn json_message(json: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    if let Some(errors) = json.get("errors").and_then(Value::as_array) {
        let messages: Vec<String> = errors
            .iter()
            .filter_map(|error| match error {
                Value::String(message) => Some(message.clone()),
                other => text(other.get("message")),
            })
            .collect();
        if !messages.is_empty() {
            return Some(messages.join("; "));
        }
    }
    text(json.get("message"))
        .or_else(|| text(json.get("error")))
        .or_else(|| {
            json.get("error")
                .and_then(|error| text(error.get("message")))
        })
        .or_else(|| text(json.get("detail")))
}

/// Installs rustls' `ring` crypto provider as the process default, unless one is installed.
///
/// reqwest is built with `rustls-no-provider` (its default provider, aws-lc, is a second crypto
/// library built from C) and panics when it builds a client with no provider installed. Cargo
/// unifies features across a workspace build, so **any** `reqwest::Client` built in a process
/// that links this crate (tests included) needs this call first. Idempotent and cheap.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: a provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn build_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<reqwest::Request, AttemptError> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| invalid_request(format!("invalid method {method:?}")))?;
    // Parsed here rather than by reqwest so that the error is ours and cannot quote the URL.
    let url = Url::parse(url).map_err(|err| invalid_request(format!("invalid url: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_request("the url is not http or https"));
    }
    let mut header_map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid_request(format!("invalid header name {name:?}")))?;
        // The value may be a credential: name the header, not the value.
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid_request(format!("invalid value for header {name}")))?;
        header_map.append(name, value);
    }
    let mut request = reqwest::Request::new(method, url);
    *request.headers_mut() = header_map;
    *request.body_mut() = Some(body.into());
    Ok(request)
}

fn invalid_request(message: impl Into<String>) -> AttemptError {
    AttemptError {
        class: ErrorClass::InvalidRequest,
        message: message.into(),
    }
}

/// The kind of the first I/O error in `err`'s chain of causes.
fn io_error_kind(err: &reqwest::Error) -> Option<io::ErrorKind> {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io_error) = cause.downcast_ref::<io::Error>() {
            return Some(io_error.kind());
        }
        source = cause.source();
    }
    None
}

/// The message of the deepest cause: the most specific one. reqwest's own message (the
/// outermost) quotes the URL, so with no cause the error's kind is described instead.
fn innermost_message(err: &reqwest::Error) -> String {
    let Some(mut innermost) = err.source() else {
        return if err.is_body() {
            "error reading the response body".to_owned()
        } else {
            "error sending the request".to_owned()
        };
    };
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    innermost.to_string()
}

/// Removes the URL, and its path and query (where the secret token lives), from a message that
/// came from a lower layer. Belt and braces: the lower layers seen so far never quote them.
fn redact(message: String, url: &str) -> String {
    let mut message = message;
    if !url.is_empty() && message.contains(url) {
        message = message.replace(url, "[url]");
    }
    if let Ok(parsed) = Url::parse(url) {
        let mut secret = parsed.path().to_owned();
        if let Some(query) = parsed.query() {
            secret.push('?');
            secret.push_str(query);
        }
        if secret.len() > 1 && message.contains(&secret) {
            message = message.replace(&secret, "/[redacted]");
        }
    }
    message
}

/// `10 s` for whole seconds, `250 ms` otherwise: how timeouts are written in messages.
fn human_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::extract::ConnectInfo;
    use axum::http::{HeaderMap as AxumHeaders, Method as AxumMethod, StatusCode};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{any, get};
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::{Verdict, classify};

    /// A webhook test server on 127.0.0.1, port 0; returns its base URL.
    async fn serve() -> String {
        async fn echo(
            ConnectInfo(peer): ConnectInfo<SocketAddr>,
            method: AxumMethod,
            headers: AxumHeaders,
            body: String,
        ) -> axum::Json<Value> {
            let headers: Vec<Value> = headers
                .iter()
                .map(|(name, value)| json!([name.as_str(), value.to_str().unwrap()]))
                .collect();
            axum::Json(json!({
                "method": method.as_str(),
                "headers": headers,
                "body": body,
                "peer": peer.to_string(),
            }))
        }
        let app = Router::new()
            .route("/ok", any(|| async { "accepted" }))
            .route("/echo", any(echo))
            .route(
                "/fail",
                any(|| async {
                    let body = "e".repeat(10_000);
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [("x-request-id", "r1")],
                        body,
                    )
                }),
            )
            .route(
                "/busy",
                any(|| async { (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "2")], "") }),
            )
            .route(
                "/slow",
                any(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "too late"
                }),
            )
            .route("/moved", any(|| async { Redirect::to("/ok") }))
            .route(
                "/teapot",
                get(|| async { StatusCode::from_u16(599).unwrap().into_response() }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        format!("http://{address}")
    }

    /// A raw TCP server that reads each request's head, answers it with `response` and then keeps
    /// the connection open without another byte (or closes it when `response` is empty).
    async fn serve_raw(response: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0; 1024];
                    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                        let read = socket.read(&mut buffer).await.unwrap();
                        if read == 0 {
                            return;
                        }
                        head.extend_from_slice(&buffer[..read]);
                    }
                    if response.is_empty() {
                        return;
                    }
                    socket.write_all(response).await.unwrap();
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    drop(socket);
                });
            }
        });
        format!("http://{address}")
    }

    /// A sender allowed to reach the local test servers.
    fn sender(options: ClientOptions) -> HttpSender {
        HttpSender::new(ClientOptions {
            policy: Arc::new(WebhookPolicy::allow_local()),
            ..options
        })
        .unwrap()
    }

    fn job_headers() -> Vec<(String, String)> {
        vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "Segment (Actions)".to_owned()),
        ]
    }

    async fn post(sender: &HttpSender, url: &str) -> AttemptResult {
        sender
            .send("POST", url, &job_headers(), b"{}".to_vec())
            .await
    }

    #[test]
    fn default_options() {
        let options = ClientOptions::default();
        assert_eq!(options.timeout, Duration::from_secs(10));
        assert_eq!(options.excerpt_limit, 4096);
    }

    #[tokio::test]
    async fn a_200_is_delivered_with_headers_and_body() {
        let base = serve().await;
        let sender = sender(ClientOptions::default());
        let before = unix_millis(SystemTime::now());
        let result = post(&sender, &format!("{base}/ok")).await;
        assert_eq!(result.status, Some(200));
        assert_eq!(result.error, None);
        assert_eq!(result.body_excerpt, b"accepted");
        assert_eq!(result.header("content-length"), Some("8"));
        assert!(result.started_at >= before);
        assert!(result.duration > Duration::ZERO);
        assert_eq!(classify(&result, SystemTime::now()), Verdict::Delivered);
    }

    #[tokio::test]
    async fn headers_method_and_body_are_sent_as_given() {
        let base = serve().await;
        let sender = sender(ClientOptions::default());
        let mut headers = job_headers();
        headers.push(("X-Custom".to_owned(), "a b".to_owned()));
        let body = br#"{"customer_external_id":"u1"}"#.to_vec();
        let result = sender
            .send("POST", &format!("{base}/echo"), &headers, body)
            .await;
        assert_eq!(result.status, Some(200));
        let echoed: Value = serde_json::from_slice(&result.body_excerpt).unwrap();
        assert_eq!(echoed["method"], "POST");
        assert_eq!(echoed["body"], r#"{"customer_external_id":"u1"}"#);
        let sent = echoed["headers"].as_array().unwrap();
        for expected in [
            json!(["content-type", "application/json"]),
            json!(["user-agent", "Segment (Actions)"]),
            json!(["x-custom", "a b"]),
            json!(["content-length", "29"]),
        ] {
            assert!(sent.contains(&expected), "{expected} not in {sent:?}");
        }
        let user_agents = sent.iter().filter(|pair| pair[0] == "user-agent").count();
        assert_eq!(user_agents, 1, "no second user-agent of the client's own");
    }

    #[tokio::test]
    async fn connections_are_kept_alive_and_reused() {
        let base = serve().await;
        let sender = sender(ClientOptions::default());
        let mut peers = Vec::new();
        for _ in 0..3 {
            let result = post(&sender, &format!("{base}/echo")).await;
            let echoed: Value = serde_json::from_slice(&result.body_excerpt).unwrap();
            peers.push(echoed["peer"].as_str().unwrap().to_owned());
        }
        assert_eq!(peers[0], peers[1]);
        assert_eq!(peers[1], peers[2]);
    }

    #[tokio::test]
    async fn a_500_keeps_a_truncated_excerpt_and_its_headers() {
        let base = serve().await;
        let sender = sender(ClientOptions {
            excerpt_limit: 100,
            ..ClientOptions::default()
        });
        let result = post(&sender, &format!("{base}/fail")).await;
        assert_eq!(result.status, Some(500));
        assert_eq!(result.body_excerpt, "e".repeat(100).as_bytes());
        assert_eq!(result.header("x-request-id"), Some("r1"));
        // A plain-text body is the answer's message (cut to a line).
        assert_eq!(
            result.error,
            Some(AttemptError {
                class: ErrorClass::Status,
                message: format!("500 Internal Server Error: {}", "e".repeat(100))
            })
        );
        assert_eq!(
            classify(&result, SystemTime::now()),
            Verdict::Retry {
                retry_after: None,
                overload: true
            }
        );
    }

    #[tokio::test]
    async fn a_status_without_a_reason_phrase_is_its_number() {
        let base = serve().await;
        let result = sender(ClientOptions::default())
            .send("GET", &format!("{base}/teapot"), &[], Vec::new())
            .await;
        assert_eq!(result.status, Some(599));
        assert_eq!(result.error.unwrap().message, "599");
    }

    #[tokio::test]
    async fn a_429_carries_its_retry_after() {
        let base = serve().await;
        let result = post(&sender(ClientOptions::default()), &format!("{base}/busy")).await;
        assert_eq!(result.status, Some(429));
        assert_eq!(
            classify(&result, SystemTime::now()),
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(2)),
                overload: true
            }
        );
    }

    #[tokio::test]
    async fn an_endless_body_is_read_no_further_than_the_limit() {
        // No content-length and the connection stays open: a client reading to the end would
        // wait for the timeout.
        let base =
            serve_raw(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n0123456789abcdefghij").await;
        let sender = sender(ClientOptions {
            excerpt_limit: 10,
            timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        });
        let result = post(&sender, &format!("{base}/hook")).await;
        assert_eq!(result.status, Some(200));
        assert_eq!(result.body_excerpt, b"0123456789");
        assert_eq!(result.error, None);
        assert!(
            result.duration < Duration::from_secs(2),
            "{:?}",
            result.duration
        );
    }

    #[tokio::test]
    async fn a_slow_endpoint_times_out() {
        let base = serve().await;
        let sender = sender(ClientOptions {
            timeout: Duration::from_millis(200),
            ..ClientOptions::default()
        });
        let result = post(&sender, &format!("{base}/slow")).await;
        assert_eq!(result.status, None);
        let host = base.trim_start_matches("http://");
        assert_eq!(
            result.error,
            Some(AttemptError {
                class: ErrorClass::Timeout,
                message: format!("no answer from {host} within 200 ms")
            })
        );
        assert!(result.duration >= Duration::from_millis(200));
        assert!(
            result.duration < Duration::from_secs(2),
            "{:?}",
            result.duration
        );
        assert_eq!(
            classify(&result, SystemTime::now()),
            Verdict::Retry {
                retry_after: None,
                overload: true
            }
        );
    }

    #[tokio::test]
    async fn a_body_that_stalls_after_a_failure_status_times_out_keeping_the_status() {
        let base =
            serve_raw(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\n\r\npartial")
                .await;
        let sender = sender(ClientOptions {
            timeout: Duration::from_millis(300),
            ..ClientOptions::default()
        });
        let result = post(&sender, &format!("{base}/hook")).await;
        assert_eq!(result.status, Some(503));
        assert_eq!(result.body_excerpt, b"partial");
        assert_eq!(result.error.unwrap().class, ErrorClass::Status);
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_error_without_the_url() {
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The listener is dropped: nothing listens on that port any more.
        let url = format!("http://{address}/hooks/secret-token?key=hunter2");
        let result = post(&sender(ClientOptions::default()), &url).await;
        let error = result.error.unwrap();
        assert_eq!(error.class, ErrorClass::Connect);
        assert_eq!(error.message, format!("connection refused by {address}"));
        assert_eq!(result.status, None);
    }

    #[tokio::test]
    async fn a_host_that_does_not_resolve_is_a_dns_error_naming_the_host() {
        // `.invalid` never resolves (RFC 6761): the local resolver answers at once.
        let url = "https://no-such-host.invalid/hooks/secret-token";
        let result = post(&sender(ClientOptions::default()), url).await;
        let error = result.error.clone().unwrap();
        assert_eq!(error.class, ErrorClass::Dns, "{error}");
        assert!(
            error
                .message
                .starts_with("DNS lookup of no-such-host.invalid failed: "),
            "{error}"
        );
        assert!(!error.message.contains("secret-token"), "{error}");
        assert_eq!(
            classify(&result, SystemTime::now()),
            Verdict::Retry {
                retry_after: None,
                overload: true
            }
        );
    }

    #[tokio::test]
    async fn an_error_answer_carries_the_message_of_its_body() {
        let body = r#"{"errors":[{"field":null,"message":"access forbidden"}]}"#;
        let response = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let base = serve_raw(Box::leak(response.into_bytes().into_boxed_slice())).await;
        let result = post(&sender(ClientOptions::default()), &format!("{base}/hook")).await;
        assert_eq!(result.status, Some(403));
        let error = result.error.unwrap();
        assert_eq!(error.class, ErrorClass::Status);
        assert_eq!(error.message, "403 Forbidden: access forbidden");
    }

    #[test]
    fn answers_say_why_in_the_usual_shapes() {
        let json = [("content-type".to_owned(), "application/json".to_owned())];
        let said = |body: &str| answer_message(&json, body.as_bytes());
        assert_eq!(
            said(r#"{"errors":[{"field":null,"message":"access forbidden"}]}"#).as_deref(),
            Some("access forbidden")
        );
        assert_eq!(said(r#"{"errors":["a","b"]}"#).as_deref(), Some("a; b"));
        assert_eq!(
            said(r#"{"message":"no such webhook"}"#).as_deref(),
            Some("no such webhook")
        );
        assert_eq!(
            said(r#"{"error":"bad token"}"#).as_deref(),
            Some("bad token")
        );
        assert_eq!(
            said(r#"{"error":{"message":"quota"}}"#).as_deref(),
            Some("quota")
        );
        assert_eq!(said(r#"{"detail":"gone"}"#).as_deref(), Some("gone"));
        assert_eq!(said(r#"{"ok":false}"#), None);
        assert_eq!(said(""), None);
        let text = [("content-type".to_owned(), "text/plain".to_owned())];
        assert_eq!(
            answer_message(&text, b"  upstream\n  is down ").as_deref(),
            Some("upstream is down")
        );
        let html = [("content-type".to_owned(), "text/html".to_owned())];
        assert_eq!(answer_message(&html, b"<html>oops</html>"), None);
        let long = "x".repeat(400);
        let cut = answer_message(&text, long.as_bytes()).unwrap();
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
    }

    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_a_network_error() {
        let base = serve_raw(b"").await;
        let url = format!("{base}/hooks/secret-token");
        let result = post(&sender(ClientOptions::default()), &url).await;
        let error = result.error.clone().unwrap();
        assert_eq!(error.class, ErrorClass::Network, "{error}");
        assert!(!error.message.contains("secret-token"), "{error}");
        assert!(!error.message.contains("127.0.0.1"), "{error}");
        assert_eq!(
            classify(&result, SystemTime::now()),
            Verdict::Retry {
                retry_after: None,
                overload: true
            }
        );
    }

    #[tokio::test]
    async fn a_tls_handshake_with_a_plain_http_server_fails_as_tls() {
        // Exercises the rustls set-up (the ring provider) without a certificate of our own.
        let base = serve().await;
        let url = format!("{}/ok", base.replacen("http://", "https://", 1));
        let result = post(&sender(ClientOptions::default()), &url).await;
        let error = result.error.unwrap();
        assert_eq!(error.class, ErrorClass::Tls, "{error}");
        let host = base.trim_start_matches("http://");
        assert!(
            error
                .message
                .starts_with(&format!("TLS handshake with {host} failed: ")),
            "{error}"
        );
        assert!(!error.message.contains("/ok"), "{error}");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let base = serve().await;
        let result = post(&sender(ClientOptions::default()), &format!("{base}/moved")).await;
        assert_eq!(result.status, Some(303));
        assert_eq!(result.header("location"), Some("/ok"));
        assert_eq!(result.error.as_ref().unwrap().message, "303 See Other");
        assert_eq!(classify(&result, SystemTime::now()), Verdict::Discard);
    }

    #[tokio::test]
    async fn a_302_is_not_followed() {
        let base =
            serve_raw(b"HTTP/1.1 302 Found\r\nlocation: /ok\r\ncontent-length: 0\r\n\r\n").await;
        let result = post(&sender(ClientOptions::default()), &format!("{base}/hook")).await;
        assert_eq!(result.status, Some(302));
        assert_eq!(result.error.unwrap().message, "302 Found");
    }

    #[tokio::test]
    async fn requests_that_cannot_be_built_are_invalid_without_quoting_secrets() {
        let sender = sender(ClientOptions::default());
        let cases = [
            ("POST", "not a url/secret-token", job_headers()),
            ("POST", "ftp://example.com/secret-token", job_headers()),
            (
                "BAD METHOD",
                "http://127.0.0.1:9/secret-token",
                job_headers(),
            ),
            (
                "POST",
                "http://127.0.0.1:9/hook",
                vec![("authorization".to_owned(), "secret-token\n".to_owned())],
            ),
            (
                "POST",
                "http://127.0.0.1:9/hook",
                vec![("bad header".to_owned(), "x".to_owned())],
            ),
        ];
        for (method, url, headers) in cases {
            let result = sender.send(method, url, &headers, Vec::new()).await;
            let error = result.error.clone().unwrap();
            assert_eq!(error.class, ErrorClass::InvalidRequest, "{url}: {error}");
            assert!(!error.message.contains("secret-token"), "{error}");
            assert_eq!(classify(&result, SystemTime::now()), Verdict::Discard);
        }
    }

    #[test]
    fn redaction_removes_the_url_and_its_path() {
        let url = "https://hooks.example.com/v1/abc123?token=t";
        assert_eq!(redact(format!("failed for {url}"), url), "failed for [url]");
        assert_eq!(
            redact("GET /v1/abc123?token=t failed".to_owned(), url),
            "GET /[redacted] failed"
        );
        assert_eq!(redact("plain".to_owned(), url), "plain");
    }

    #[test]
    fn durations_are_written_for_people() {
        assert_eq!(human_duration(Duration::from_secs(10)), "10 s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500 ms");
    }
}

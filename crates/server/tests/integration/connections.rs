//! Connections that do not behave (F1 of the hardening issue): a head sent too slowly, a
//! kept-alive connection left idle, a body that stalls or trickles, a `Content-Length` far past
//! the limit, and more connections than the listener's cap. Each is closed or refused within its
//! limit, and the server goes on answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use junction_server::ListenerLimits;
use reqwest::StatusCode;

use base64::Engine as _;

use crate::util::{Options, TestServer};

/// A server whose listener has short deadlines and a small cap.
async fn server(max_connections: usize, min_body_rate: u64) -> TestServer {
    TestServer::start_with(Options {
        listener: ListenerLimits {
            max_connections,
            header_timeout: Duration::from_millis(800),
            body_timeout: Duration::from_secs(2),
            min_body_rate,
        },
        ..Options::default()
    })
    .await
}

fn address(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes); what it sent, and when
/// it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&answer).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                return (
                    String::from_utf8_lossy(&answer).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), None),
        }
    }
}

fn authorization() -> String {
    let key = format!("{}:", crate::util::WRITE_KEY);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_head_and_an_idle_connection_are_closed() {
    let server = server(100, 1024).await;
    let address = address(&server);
    let closed = tokio::task::spawn_blocking(move || {
        // Half a request line, then nothing.
        let mut slow = TcpStream::connect(&address).unwrap();
        slow.write_all(b"POST /v1/identify HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let (_, slow_closed) = read_until_closed(&mut slow, Duration::from_secs(10));
        // Connected, and never a byte.
        let mut idle = TcpStream::connect(&address).unwrap();
        let (_, idle_closed) = read_until_closed(&mut idle, Duration::from_secs(10));
        (slow_closed, idle_closed)
    })
    .await
    .unwrap();
    for (what, closed) in [("slow head", closed.0), ("idle", closed.1)] {
        let after = closed.unwrap_or_else(|| panic!("{what}: still open after 10 s"));
        assert!(
            after < Duration::from_secs(3),
            "{what}: closed after {after:?}"
        );
    }
    let (status, _) = server
        .send("/v1/identify", &serde_json::json!({"userId": "u"}))
        .await;
    assert_eq!(status, StatusCode::OK, "the server goes on answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_is_closed_once_idle() {
    let server = server(100, 1024).await;
    let address = address(&server);
    let auth = authorization();
    let (first, closed) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        let body = r#"{"userId": "u-1"}"#;
        write!(
            stream,
            "POST /v1/identify HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        read_until_closed(&mut stream, Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let after = closed.expect("the idle kept-alive connection is closed");
    assert!(after < Duration::from_secs(3), "closed after {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_a_huge_announced_one_413_at_once() {
    let server = server(100, 1024).await;
    let address = address(&server);
    let auth = authorization();
    let (stalled, huge) = tokio::task::spawn_blocking(move || {
        // Ten bytes of a 100-byte body, then nothing.
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /v1/identify HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Length: 100\r\n\r\n{{\"userId\":"
        )
        .unwrap();
        let stalled = read_until_closed(&mut stream, Duration::from_secs(10));
        // Ten gigabytes announced, ten bytes sent.
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Length: 10000000000\r\n\r\n0123456789"
        )
        .unwrap();
        let huge = read_until_closed(&mut stream, Duration::from_secs(10));
        (stalled, huge)
    })
    .await
    .unwrap();
    let (answer, after) = stalled;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    assert!(
        answer.contains("the request body did not arrive within 2 s"),
        "{answer}"
    );
    let after = after.unwrap_or(Duration::MAX);
    assert!(after < Duration::from_secs(4), "answered after {after:?}");
    let (answer, after) = huge;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("request_too_large"), "{answer}");
    assert!(
        after.unwrap_or(Duration::MAX) < Duration::from_secs(1),
        "{after:?}"
    );
    assert_eq!(
        server
            .state
            .rejections()
            .recent()
            .iter()
            .filter(|r| r.code == "body_timeout")
            .count(),
        1,
        "the timeout is recorded as a refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_at_the_minimum_rate() {
    // Deadline 2 s would not come first: the rate check does, at its grace period's end.
    let server = TestServer::start_with(Options {
        listener: ListenerLimits {
            body_timeout: Duration::from_secs(60),
            min_body_rate: 1024,
            ..ListenerLimits::default()
        },
        ..Options::default()
    })
    .await;
    let address = address(&server);
    let auth = authorization();
    let (answer, after) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Length: 100000\r\n\r\n"
        )
        .unwrap();
        let started = Instant::now();
        // A byte every 100 ms: 10 B/s, far under 1 KiB/s.
        stream.set_nonblocking(false).unwrap();
        while started.elapsed() < Duration::from_secs(8) {
            if stream.write_all(b" ").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        read_until_closed(&mut stream, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer} after {after:?}"
    );
    assert!(
        answer.contains("slower than 1024 bytes per second"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_a_connection_is_closed_and_the_rest_go_on() {
    let server = server(4, 1024).await;
    let address = address(&server);
    let (held, refused_closed) = tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..4)
            .map(|_| TcpStream::connect(&address).unwrap())
            .collect();
        // Give the server a moment to accept them all.
        std::thread::sleep(Duration::from_millis(200));
        let mut refused = TcpStream::connect(&address).unwrap();
        let (_, closed) = read_until_closed(&mut refused, Duration::from_secs(5));
        (held, closed)
    })
    .await
    .unwrap();
    let closed = refused_closed.expect("the fifth connection is closed");
    assert!(
        closed < Duration::from_millis(500),
        "closed after {closed:?}"
    );
    let metrics = server.state.metrics().listener("tracking");
    assert_eq!(metrics.refused(), 1);
    assert_eq!(metrics.open(), 4);
    drop(held);
    // Once the held ones are gone (closed by the client here), requests are served again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sent = server
            .post("/v1/identify")
            .json(&serde_json::json!({"userId": "u"}))
            .send()
            .await;
        if let Ok(response) = sent
            && response.status() == StatusCode::OK
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer after the held connections closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `request` (a whole HTTP/1.1 request) to `address` and returns the answer.
fn exchange(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_until_closed(&mut stream, Duration::from_secs(10)).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_admin_api_answers_loopback_hosts_only() {
    let server = TestServer::start().await;
    let admin = crate::util::AdminClient::start(&server, None).await;
    let address = admin.url.trim_start_matches("http://").to_owned();
    let body = r#"{"id": "rebound", "name": "Rebound"}"#;
    let create = move |host: &str| {
        format!(
            "POST /api/v1/sources HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let (rebound, health, local) = tokio::task::spawn_blocking({
        let address = address.clone();
        move || {
            // A page on the attacker's name, resolved to 127.0.0.1 (DNS rebinding).
            let rebound = exchange(&address, &create("rebind.attacker.example:8081"));
            let health = exchange(
                &address,
                "GET /healthz HTTP/1.1\r\nHost: rebind.attacker.example\r\nConnection: close\r\n\r\n",
            );
            let local = exchange(&address, &create(&address));
            (rebound, health, local)
        }
    })
    .await
    .unwrap();
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(
        rebound.contains("answers only requests addressed to a loopback host"),
        "{rebound}"
    );
    assert!(rebound.contains("rebind.attacker.example"), "{rebound}");
    assert!(health.starts_with("HTTP/1.1 403"), "{health}");
    assert!(local.starts_with("HTTP/1.1 201"), "{local}");
    let (status, listed) = admin.get("/api/v1/sources/rebound").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "created once, by the loopback request: {listed}"
    );

    // With a token, the token protects the API and any name may be used.
    let guarded = crate::util::AdminClient::start(&server, Some("a-long-enough-admin-token")).await;
    let address = guarded.url.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        exchange(
            &address,
            "GET /healthz HTTP/1.1\r\nHost: junction.internal.example\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

//! Runs the real `junction serve` binary: it starts with no flag on the sample workspace, prints
//! where to send events, stores what it is sent, keeps its workspace across restarts, refuses an
//! invalid workspace with precise errors, and exits 0 on SIGTERM after a graceful shutdown.

// Test code: a failed expectation is a failed test, and a panic says so best. A child left
// running by a failed test is killed with the test process's group by the harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::zombie_processes)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `junction serve` and the Tracking API address it printed.
struct Running {
    child: Child,
    address: String,
    banner: Vec<String>,
}

/// Starts `junction serve` with `args` on a free port over `data_dir`, and waits for its banner.
fn start(data_dir: &Path, args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
        .arg("serve")
        .args(args)
        .env("JUNCTION_DATA_DIR", data_dir)
        .env("JUNCTION_TRACKING_ADDR", "127.0.0.1:0")
        .env("JUNCTION_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("junction serve printed no banner within 30 s");
        banner.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("Tracking API: http://") {
            let address = rest.split_whitespace().next().unwrap().to_owned();
            // Read the rest of the banner (sources, the curl example) without blocking on it.
            while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(300)) {
                banner.push(line);
            }
            return Running {
                child,
                address,
                banner,
            };
        }
    }
}

/// POSTs `body` to `path` with HTTP Basic `write_key`; the status code and the body.
fn post(address: &str, path: &str, write_key: &str, body: &str) -> (u16, String) {
    let credentials = base64(&format!("{write_key}:"));
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Standard base64 (enough of it for a test's credentials).
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends SIGTERM and returns whether the process exited successfully within 30 s.
fn terminate(mut running: Running) -> bool {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..300 {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = running.child.kill();
    panic!("junction serve did not stop within 30 s of SIGTERM");
}

#[test]
fn serve_starts_on_the_sample_workspace_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), &[]);
    let banner = running.banner.join("\n");
    assert!(banner.contains("built-in sample"), "{banner}");
    assert!(
        banner.contains("write key junction-sample-write-key"),
        "{banner}"
    );
    assert!(
        banner.contains("curl -u 'junction-sample-write-key:'"),
        "{banner}"
    );

    let (status, body) = post(
        &running.address,
        "/v1/identify",
        "junction-sample-write-key",
        r#"{"userId": "user-1", "traits": {"email": "jane@example.com"}}"#,
    );
    assert_eq!((status, body.as_str()), (200, r#"{"success":true}"#));
    let (status, _) = post(&running.address, "/v1/identify", "wrong-key", "{}");
    assert_eq!(status, 401);
    assert!(terminate(running), "junction serve exits 0 on SIGTERM");
    assert!(dir.path().join("junction.db").exists());

    // Restarted without flags, it serves the stored workspace.
    let running = start(dir.path(), &[]);
    let banner = running.banner.join("\n");
    assert!(
        banner.contains("Workspace:    stored, version 1"),
        "{banner}"
    );
    assert!(terminate(running));
}

#[test]
fn a_workspace_file_is_validated_whole_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace.toml");
    std::fs::write(
        &workspace,
        r#"
        [[sources]]
        id = "shop"
        name = "Shop"
        write_keys = ["shop-key-123"]

        [[destinations]]
        id = "cm"
        type = "actions-chartmogul"
        sources = ["shop"]
        settings = { chartmogul_webhook_url = "https://h.example/wh" }

        [[destinations.mappings]]
        id = "contacts"
        action = "sendContact"
        trigger = 'type = "identify"'
        "#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let running = start(&data, &["--workspace", workspace.to_str().unwrap()]);
    let banner = running.banner.join("\n");
    assert!(banner.contains("stored as version 1"), "{banner}");
    assert!(
        banner.contains("write key shop…"),
        "keys of real workspaces are masked: {banner}"
    );
    assert!(!banner.contains("shop-key-123"), "{banner}");
    let (status, _) = post(
        &running.address,
        "/v1/track",
        "shop-key-123",
        r#"{"userId": "u", "event": "Paid"}"#,
    );
    assert_eq!(status, 200);
    assert!(terminate(running));

    std::fs::write(
        &workspace,
        "[[sources]]\nid = \"shop\"\nwrite_keys = []\n\n[[destinations]]\nid = \"cm\"\n\
         type = \"actions-chartmogul\"\nsources = [\"nope\"]\n\
         settings = { chartmogul_webhook_url = \"https://h.example/wh\" }\n\
         [[destinations.mappings]]\nid = \"contacts\"\naction = \"sendContact\"\n\
         trigger = 'type = '\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["serve", "--workspace", workspace.to_str().unwrap()])
        .env("JUNCTION_DATA_DIR", &data)
        .env("JUNCTION_TRACKING_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "workspace is invalid (3 problems)",
        "source \"shop\" (sources[0].write_keys): a source needs at least one write key",
        "destination \"cm\" (destinations[0].sources[0]): unknown source \"nope\"",
        "mapping \"contacts\" of destination \"cm\" (destinations[0].mappings[0].trigger): \
         invalid trigger: expected a value after '=', found end of input at column 8",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn the_documented_config_file_starts_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../junction.toml");
    // The environment overrides the file's data_dir and listen address.
    let running = start(dir.path(), &["--config", config.to_str().unwrap()]);
    assert_ne!(running.address, "127.0.0.1:8080");
    assert!(terminate(running));
    assert!(dir.path().join("junction.db").exists());
}

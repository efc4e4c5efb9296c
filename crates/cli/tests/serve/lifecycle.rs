//! The server's life: it starts with no flag on the sample workspace, prints where to send
//! events, stores what it is sent, keeps its workspace across restarts, refuses an invalid
//! workspace with precise errors, and exits 0 on SIGTERM after a graceful shutdown.

use std::path::Path;
use std::process::Command;

use crate::util::{post, start, terminate};

#[test]
fn serve_starts_on_the_sample_workspace_and_stops_on_sigterm() {
    let _shared = crate::util::alongside_others();
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
    let _shared = crate::util::alongside_others();
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
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../junction.toml");
    // The environment overrides the file's data_dir and listen address.
    let running = start(dir.path(), &["--config", config.to_str().unwrap()]);
    assert_ne!(running.address, "127.0.0.1:8080");
    assert!(terminate(running));
    assert!(dir.path().join("junction.db").exists());
}

/// F1 of the hardening issue, on the real binary: under an open-file limit of 256, a client
/// holding 400 idle connections to the Tracking API takes no more than its cap; the others are
/// closed at once, the admin API still answers, and the held ones are closed by the head
/// deadline, after which the Tracking API answers again.
#[test]
fn a_flood_of_idle_connections_leaves_the_admin_api_reachable() {
    use std::io::Read as _;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("junction.toml");
    std::fs::write(&config, "[tracking.connections]\nheader_timeout_secs = 3\n").unwrap();
    let running = crate::util::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &crate::util::Options {
            file_limit: Some(256),
            capture_stderr: true,
            ..crate::util::Options::default()
        },
    );
    let held: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(&running.address).unwrap())
        .collect();
    // Those past the cap are closed at once: a read sees the end (or a reset) right away.
    std::thread::sleep(Duration::from_millis(500));
    let mut closed = 0;
    for stream in &held {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0; 1];
        match (&*stream).read(&mut byte) {
            Ok(0) => closed += 1,
            Err(err) if err.kind() != std::io::ErrorKind::WouldBlock => closed += 1,
            _ => {}
        }
    }
    assert!(
        (200..400).contains(&closed),
        "{closed} of 400 closed at once (cap fitted to 256 files: 144)"
    );
    // The admin API answers while the Tracking API is full.
    let (status, body) = crate::util::admin(&running.admin_address, "GET", "/healthz", None);
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (_, metrics) = crate::util::request(&running.admin_address, "GET", "/metrics", &[], "");
    assert!(
        metrics.contains("junction_connections_refused_total{listener=\"tracking\"}"),
        "{metrics}"
    );
    // The held connections send nothing: the head deadline closes them, and the API is back.
    let deadline = Instant::now() + Duration::from_secs(15);
    let answered = |address: &str| -> bool {
        let Ok(mut stream) = crate::util::Connection::open(address, crate::util::SAMPLE_WRITE_KEY)
        else {
            return false;
        };
        matches!(
            stream.post("/v1/identify", r#"{"userId": "u-1"}"#),
            Ok((200, _))
        )
    };
    loop {
        if answered(&running.address) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Tracking API did not come back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = running.stderr.clone().unwrap().lock().unwrap().join("\n");
    assert!(
        log.contains("connection caps lowered to fit the open-file limit"),
        "{log}"
    );
    drop(held);
    assert!(crate::util::terminate(running));
}

//! Failures explain themselves: one event delivered to four destinations that each fail their
//! own way — a host that does not resolve, a port that refuses connections, an endpoint that
//! never answers, and ChartMogul's 403 with its error message — and `junction lookup`, the
//! delivery overview and the log each say why, for every one of them.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Options, Running, SAMPLE_SOURCE, SAMPLE_WRITE_KEY, post, start_with, terminate};
use crate::webhook::{Behaviour, Reply, Webhook};

fn junction(running: &Running, args: &[&str]) -> String {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(args)
        .env(
            "JUNCTION_ADMIN_URL",
            format!("http://{}", running.admin_address),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "junction {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A destination of the sample source with the default Send Contact mapping only.
fn destination(id: &str, url: &str) -> Value {
    json!({
        "id": id, "name": id, "type": "actions-chartmogul",
        "settings": {"chartmogul_webhook_url": url},
        "sources": [SAMPLE_SOURCE],
        "mappings": [{"id": "contacts", "action": "sendContact", "name": "Contacts",
                      "trigger": "type = \"identify\""}],
    })
}

/// What each destination's failure must read as, in every view.
struct Case {
    destination: &'static str,
    reason: String,
}

#[test]
fn lookup_the_overview_and_the_log_say_why_each_delivery_failed() {
    let _shared = crate::util::alongside_others();
    let hook = Webhook::start();
    hook.set_path("/slow", Behaviour::Hold);
    hook.set_path(
        "/forbidden",
        Behaviour::Always(Reply {
            body: r#"{"errors":[{"field":null,"message":"access forbidden"}]}"#.to_owned(),
            ..Reply::status(403).header("content-type", "application/json")
        }),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_address = closed.local_addr().unwrap();
    drop(closed);
    let cases = [
        Case {
            destination: "dns",
            reason: "DNS lookup of no-such-host.invalid failed".to_owned(),
        },
        Case {
            destination: "refused",
            reason: format!("connection refused by {refused_address}"),
        },
        Case {
            destination: "timeout",
            reason: format!("no answer from {} within 1 s", hook.address()),
        },
        Case {
            destination: "forbidden",
            reason: "403 Forbidden: access forbidden".to_owned(),
        },
    ];
    let workspace = json!({
        "sources": [{"id": SAMPLE_SOURCE, "name": "Sample app", "write_keys": [SAMPLE_WRITE_KEY]}],
        "destinations": [
            destination("dns", "https://no-such-host.invalid/api/webhooks/secret-dns"),
            destination("refused", &format!("http://{refused_address}/api/webhooks/secret-refused")),
            destination("timeout", &hook.url("/slow")),
            destination("forbidden", &hook.url("/forbidden")),
        ],
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workspace.json");
    std::fs::write(&file, workspace.to_string()).unwrap();
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
        "[delivery]\ntimeout_secs = 1\nlease_secs = 30\nbackoff_base_ms = 500\nbackoff_cap_secs = 2\n",
    )
    .unwrap();
    let running = start_with(
        &dir.path().join("data"),
        &[
            "--workspace",
            file.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &Options {
            capture_stderr: true,
            env: &[("JUNCTION_LOG", "warn")],
            ..Options::default()
        },
    );
    let (status, _) = post(
        &running.address,
        "/v1/identify",
        SAMPLE_WRITE_KEY,
        r#"{"userId": "u-1", "messageId": "why-1", "traits": {"email": "u-1@example.com"}}"#,
    );
    assert_eq!(status, 200);

    // `lookup`: every job's failed attempt with its reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    let story = loop {
        let story = junction(&running, &["lookup", "why-1"]);
        if cases.iter().all(|case| story.contains(&case.reason)) {
            break story;
        }
        assert!(Instant::now() < deadline, "not every reason in:\n{story}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for (case, class) in cases
        .iter()
        .zip(["dns", "connect", "timeout", "http_status"])
    {
        assert!(
            story.contains(&format!("{class}: {}", case.reason)),
            "{class}: {} not in:\n{story}",
            case.reason
        );
    }
    assert!(
        story.contains("to destination forbidden mapping contacts: discarded"),
        "{story}"
    );

    // The overview of each destination: its latest failures, with why.
    for case in &cases {
        let overview = junction(&running, &["overview", case.destination]);
        let failures = overview
            .split_once("Latest failures")
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_default();
        assert!(
            failures.contains("why-1  contacts attempt 1: ") && failures.contains(&case.reason),
            "{}: {}",
            case.destination,
            overview
        );
        let data: Value = serde_json::from_str(&junction(
            &running,
            &["overview", case.destination, "--json"],
        ))
        .unwrap();
        let first = &data["totals"]["destination"]["failures"][0];
        assert_eq!(first["message_id"], "why-1");
        assert!(
            first["reason"].as_str().unwrap().contains(&case.reason),
            "{first}"
        );
    }

    // The log: a warning per destination, with the reason and never the URL's secret path.
    let lines = running.stderr.clone().unwrap().lock().unwrap().clone();
    for case in &cases {
        assert!(
            lines.iter().any(|line| line.contains("WARN")
                && line.contains(&format!("destination={}", case.destination))
                && line.contains(&case.reason)),
            "no warning for {}:\n{}",
            case.destination,
            lines.join("\n")
        );
    }
    assert!(
        lines.iter().all(|line| !line.contains("secret-")),
        "a webhook URL's path was logged:\n{}",
        lines.join("\n")
    );
    hook.release(Behaviour::Always(Reply::ok()));
    assert!(terminate(running));
}

#[test]
fn test_auth_tells_a_network_failure_from_a_rejection() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let workspace = json!({
        "sources": [{"id": SAMPLE_SOURCE, "name": "Sample app", "write_keys": [SAMPLE_WRITE_KEY]}],
        "destinations": [destination("dns", "https://no-such-host.invalid/api/webhooks/x")],
    });
    let file = dir.path().join("workspace.json");
    std::fs::write(&file, workspace.to_string()).unwrap();
    let running = start_with(
        &dir.path().join("data"),
        &["--workspace", file.to_str().unwrap()],
        &Options::default(),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["test-auth", "dns"])
        .env(
            "JUNCTION_ADMIN_URL",
            format!("http://{}", running.admin_address),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(
            "network failure, not a rejection: ChartMogul could not be reached, so the settings \
             were not checked: DNS lookup of no-such-host.invalid failed"
        ),
        "{said}"
    );
    assert!(!said.contains("Credentials are invalid"), "{said}");
    assert!(terminate(running));
}

//! The admin subcommands of the `junction` binary against a running server: `send` events,
//! `dead-letter` shows what the broken webhook refused, `replay` redrives it once fixed,
//! `lookup` tells the story, `test-auth` reports the reference's verdict.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Running, SAMPLE_WRITE_KEY, start, terminate};
use crate::webhook::{Behaviour, Reply, Webhook};

/// Runs `junction ARGS` against `running`'s APIs.
fn junction(running: &Running, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(args)
        .env(
            "JUNCTION_ADMIN_URL",
            format!("http://{}", running.admin_address),
        )
        .env(
            "JUNCTION_TRACKING_URL",
            format!("http://{}", running.address),
        )
        .env("JUNCTION_WRITE_KEY", SAMPLE_WRITE_KEY)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).unwrap()
}

/// Polls `junction dead-letter --json` until it lists `count` jobs.
fn wait_for_dead_letter(running: &Running, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = json_of(&junction(running, &["dead-letter", "--json"]));
        let jobs = listed.as_array().cloned().unwrap_or_default();
        if jobs.len() >= count {
            return jobs;
        }
        assert!(Instant::now() < deadline, "dead letter: {jobs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn workspace(dir: &Path, url: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace.json");
    let mut workspace: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    workspace["destinations"][0]["settings"]["chartmogul_webhook_url"] = json!(url);
    let file = dir.join("workspace.json");
    std::fs::write(&file, workspace.to_string()).unwrap();
    file.to_str().unwrap().to_owned()
}

#[test]
fn send_then_repair_a_broken_webhook_from_the_command_line() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    hook.set(Behaviour::Always(Reply::status(404)));
    let workspace = workspace(dir.path(), &hook.url("/hook/secret-token"));
    let running = start(&dir.path().join("data"), &["--workspace", &workspace]);

    // Two sample users: an identify and a group call each.
    let sent = stdout(&junction(&running, &["send", "--count", "2"]));
    assert_eq!(sent.trim(), "4 event(s) accepted, 0 rejected");

    // The webhook refuses everything: four jobs discarded after one attempt each.
    let dead = wait_for_dead_letter(&running, 4);
    assert_eq!(dead.len(), 4);
    assert!(
        dead.iter()
            .all(|job| job["status"] == 404 && job["attempts"] == 1)
    );
    let table = stdout(&junction(
        &running,
        &["dead-letter", "--state", "discarded"],
    ));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("JOB  DESTINATION  MAPPING"), "{table}");
    assert!(
        lines[1].contains("discarded  404     http_status  1"),
        "{table}"
    );
    assert!(
        !table.contains("secret-token"),
        "webhook URLs are never shown"
    );

    // The story of one event, told by `lookup`.
    let message_id = dead[0]["request"]["body"]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let story = stdout(&junction(&running, &["lookup", &message_id]));
    assert!(story.contains(": discarded\n"), "{story}");
    assert!(story.contains("404     http_status"), "{story}");

    // Fixed: replay everything the filter selects.
    hook.set(Behaviour::Always(Reply::ok()));
    let replayed = stdout(&junction(
        &running,
        &["replay", "--destination", "chartmogul"],
    ));
    assert!(
        replayed.ends_with("4 replayed, 0 not replayed\n"),
        "{replayed}"
    );
    hook.wait_for("the replays", Duration::from_secs(30), |requests| {
        requests.iter().filter(|r| r.status == 200).count() == 4
    });
    let empty = stdout(&junction(&running, &["dead-letter"]));
    assert_eq!(
        empty.trim(),
        "The dead letter holds no job matching the filter."
    );
    let story = stdout(&junction(&running, &["lookup", &message_id]));
    assert!(story.contains("succeeded (replay of job"), "{story}");

    // The reference refuses an http:// URL before sending anything.
    let refused = junction(&running, &["test-auth", "chartmogul"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("Credentials are invalid:  Please configure the ChartMogul webhook URL."),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A wrong admin URL is a clear error, not a panic.
    let unreachable = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["dead-letter", "--admin-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(
        String::from_utf8_lossy(&unreachable.stderr)
            .contains("cannot reach the admin API at http://127.0.0.1:9"),
    );
    assert!(terminate(running));
}

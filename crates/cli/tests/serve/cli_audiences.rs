//! The README's audiences walk-through, run as written: the `sh` block between its markers runs
//! against a fresh `junction serve` (the sample workspace, delivering to the sandbox), with the
//! `junction` binary under test first on the `PATH`; then the sandbox must hold the contact with
//! the audience as a custom attribute, and the commands' output what the comments promise.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{admin, alongside_others, start, terminate};

const BEGIN: &str = "<!-- audiences walk-through: begin -->";
const END: &str = "<!-- audiences walk-through: end -->";

/// The walk-through's shell script, from the README.
fn walk_through() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text.find(BEGIN).expect("the README marks the walk-through") + BEGIN.len();
    let end = text[start..].find(END).expect("the walk-through ends") + start;
    let block = text[start..end].trim();
    let script = block
        .strip_prefix("```sh")
        .and_then(|rest| rest.strip_suffix("```"))
        .expect("the walk-through is one sh block");
    script.to_owned()
}

#[test]
fn the_readme_audiences_walk_through_runs_as_written() {
    let _shared = alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let running = start(&dir.path().join("data"), &[]);
    let binary = Path::new(env!("CARGO_BIN_EXE_junction"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .arg("-ec")
        .arg(walk_through())
        .env("PATH", path)
        .env(
            "JUNCTION_ADMIN_URL",
            format!("http://{}", running.admin_address),
        )
        .env(
            "JUNCTION_TRACKING_URL",
            format!("http://{}", running.address),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the walk-through failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("audience_attributes"), "{stdout}");
    assert!(stdout.contains("1 of 2 profiles"), "the preview: {stdout}");
    assert!(stdout.contains("order_completed_last_30_days"), "{stdout}");
    assert!(stdout.contains("chartmogul (realtime)"), "{stdout}");
    assert!(stdout.contains("jane@example.com"), "the profile: {stdout}");

    // The sandbox receives the contact with the audience as a custom attribute.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, received) = admin(
            &running.admin_address,
            "GET",
            "/api/v1/sandbox/requests",
            None,
        );
        assert_eq!(status, 200, "{received}");
        let delivered = received["data"].as_array().into_iter().flatten().any(|r| {
            let body = match &r["body"] {
                serde_json::Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
                other => other.clone(),
            };
            body["custom_attributes"]["order_completed_last_30_days"] == json!(true)
                && body["user_id"] == "u-1"
        });
        if delivered {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {received}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, list) = admin(&running.admin_address, "GET", "/api/v1/audiences", None);
    assert_eq!(list["data"][0]["key"], "order_completed_last_30_days");
    assert!(terminate(running));
}

//! A newcomer's first run, exactly as the banner tells it: start `junction serve` with nothing but
//! its defaults, run the printed curl and the printed command that shows what the sandbox
//! received, then point the destination at a webhook of one's own with the printed command and
//! see an event queued for retry arrive there.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{Options, Running, start_with, terminate};
use crate::webhook::{Behaviour, Reply, Webhook};

/// Runs one command line of the banner through the shell, as a person would paste it.
fn shell(command: &str) -> Output {
    Command::new("sh").arg("-c").arg(command).output().unwrap()
}

fn succeeded(command: &str) -> String {
    let output = shell(command);
    assert!(
        output.status.success(),
        "`{command}` failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The banner's lines after the one starting with `heading` (trimmed), up to the next numbered
/// step: the commands of that step.
fn step<'a>(banner: &'a [String], heading: &str) -> Vec<&'a str> {
    let start = banner
        .iter()
        .position(|line| line.trim_start().starts_with(heading))
        .unwrap_or_else(|| panic!("no step {heading:?} in the banner:\n{}", banner.join("\n")));
    banner[start + 1..]
        .iter()
        .map(|line| line.trim())
        .take_while(|line| !line.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter(|line| !line.is_empty() && !line.starts_with('('))
        .collect()
}

/// The printed curl command, continuation lines included.
fn curl_of(banner: &[String]) -> String {
    let lines = step(banner, "1. Send an event");
    assert!(lines[0].starts_with("curl "), "{lines:?}");
    lines.join("\n")
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(dir: &Path) -> String {
    // Quick retries, so that the queued retry is due within the test.
    let file = dir.join("junction.toml");
    std::fs::write(
        &file,
        "[delivery]\nbackoff_base_ms = 200\nbackoff_cap_secs = 1\n",
    )
    .unwrap();
    file.to_str().unwrap().to_owned()
}

#[test]
fn the_banner_leads_from_a_first_event_to_the_sandbox_and_on_to_a_real_webhook() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let running: Running = start_with(
        &dir.path().join("data"),
        &["--config", &config],
        &Options {
            capture_stderr: true,
            ..Options::default()
        },
    );
    let banner = running.banner.clone();
    let text = banner.join("\n");
    assert!(
        text.contains("delivers to Junction's sandbox webhook, not to ChartMogul"),
        "{text}"
    );

    // 1. The printed curl.
    let answer = succeeded(&curl_of(&banner));
    assert_eq!(answer.trim(), r#"{"success":true}"#);

    // 2. The printed command shows the delivery the sandbox received.
    let see = step(&banner, "2. See it delivered");
    assert!(see[0].contains(" sandbox --admin-url http://"), "{see:?}");
    let mut received = String::new();
    wait_until(
        "the sandbox to receive the event",
        Duration::from_secs(20),
        || {
            received = succeeded(see[0]);
            received.contains("Send Contact")
        },
    );
    assert!(received.contains("chartmogul"), "{received}");
    assert!(received.contains("user user-1"), "{received}");
    assert!(received.contains("jane@example.com"), "{received}");
    let message_id = received
        .lines()
        .nth(1)
        .and_then(|row| row.split_whitespace().nth(5))
        .unwrap()
        .to_owned();
    // … and the event's story, with the command printed under it.
    let lookup = see[1].replace("MESSAGE_ID", &message_id);
    let story = succeeded(&lookup);
    assert!(story.contains("send-contact: succeeded"), "{story}");

    // 3. The printed command points the destination elsewhere. First somewhere that refuses
    // connections: the next event is retried, with the reason in the log.
    let update = step(&banner, "3. Deliver to ChartMogul instead")[0];
    assert!(
        update.contains("destinations update chartmogul --webhook-url 'https://…'"),
        "{update}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!(
        "http://{}/api/webhooks/refused",
        closed.local_addr().unwrap()
    );
    drop(closed);
    succeeded(&update.replace("https://…", &refused));
    let curl = curl_of(&banner).replace("user-1", "user-2");
    succeeded(&curl);
    let stderr = running.stderr.clone().unwrap();
    wait_until(
        "a warning naming the refusal",
        Duration::from_secs(20),
        || {
            stderr.lock().unwrap().iter().any(|line| {
                line.contains("WARN") && line.contains("connection refused by 127.0.0.1")
            })
        },
    );

    // Then the webhook of one's own: the queued retry of the earlier event goes there, to the
    // URL in force when it is sent, not the one the job was created with.
    let hook = Webhook::start();
    hook.set(Behaviour::Always(Reply::ok()));
    succeeded(&update.replace("https://…", &hook.url("/api/webhooks/mine")));
    let requests = hook.wait_for("the retried event", Duration::from_secs(20), |requests| {
        requests
            .iter()
            .any(|request| request.json()["user_id"] == "user-2")
    });
    let retried = requests
        .iter()
        .find(|request| request.json()["user_id"] == "user-2")
        .unwrap();
    assert_eq!(retried.path, "/api/webhooks/mine");
    assert_eq!(retried.json()["type"], "Send Contact");
    let story = succeeded(&see[1].replace("MESSAGE_ID", &retried.message_id()));
    assert!(story.contains("send-contact: succeeded"), "{story}");
    assert!(story.contains("connection refused by 127.0.0.1"), "{story}");
    assert!(terminate(running));
}

#[test]
fn a_restart_prints_the_curl_and_the_next_steps_again() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let first = start_with(dir.path(), &[], &Options::default());
    assert!(terminate(first));
    let again = start_with(dir.path(), &[], &Options::default());
    let text = again.banner.join("\n");
    assert!(text.contains("Workspace:    stored, version 1"), "{text}");
    assert!(
        text.contains("curl -u 'junction-sample-write-key:'"),
        "{text}"
    );
    assert!(
        again
            .banner
            .iter()
            .any(|line| line.contains(" sandbox --admin-url ")),
        "{text}"
    );
    assert!(terminate(again));
}

/// The default configuration allows nothing but the sandbox: the first event still arrives
/// there, and a local http webhook is refused when it is set, with the way to allow it.
#[test]
fn by_default_only_the_sandbox_is_allowed() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(
        dir.path(),
        &[],
        &Options {
            env: &[("JUNCTION_DELIVERY_ALLOW", "")],
            ..Options::default()
        },
    );
    succeeded(&curl_of(&running.banner));
    let see = step(&running.banner, "2. See it delivered");
    wait_until(
        "the sandbox to receive the event",
        Duration::from_secs(20),
        || succeeded(see[0]).contains("Send Contact"),
    );
    let update = step(&running.banner, "3. Deliver to ChartMogul instead")[0];
    let output = shell(&update.replace("https://…", "http://127.0.0.1:9/api/webhooks/x"));
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("settings.chartmogul_webhook_url: http:// is refused for 127.0.0.1")
            && said.contains("[delivery] allow"),
        "{said}"
    );
    assert!(terminate(running));
}

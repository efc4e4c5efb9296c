//! The configuration subcommands of the `junction` binary against a running server: the README's
//! walk-through (create a source and a ChartMogul destination, send, tail, overview, break the
//! webhook, read the dead letter, fix, replay), the other `sources`, `destinations` and
//! `mappings` subcommands, and `apply` of a workspace file (plan, apply, nothing left to do).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Running, start, terminate};
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
        .env_remove("JUNCTION_WRITE_KEY")
        .output()
        .unwrap()
}

/// `junction ARGS`'s stdout, once it succeeded.
fn ok(running: &Running, args: &[&str]) -> String {
    let output = junction(running, args);
    assert!(
        output.status.success(),
        "junction {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `junction ARGS`'s stderr, once it failed.
fn fails(running: &Running, args: &[&str]) -> String {
    let output = junction(running, args);
    assert!(!output.status.success(), "junction {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_of(running: &Running, args: &[&str]) -> Value {
    serde_json::from_str(&ok(running, args)).unwrap()
}

/// Polls `junction ARGS --json` until `done` holds on its answer.
fn wait_for(running: &Running, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut args = args.to_vec();
    args.push("--json");
    loop {
        let answer = json_of(running, &args);
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{args:?}: {answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const KEY: &str = "wk_walkthrough_0123456789";

#[test]
fn the_readme_walk_through() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    hook.set(Behaviour::Always(Reply::ok()));
    let webhook_url = hook.url("/hook/secret-token");
    let running = start(&dir.path().join("data"), &[]);

    // A source, a ChartMogul destination fed by it, and its two mappings.
    let created = ok(
        &running,
        &[
            "sources",
            "create",
            "Web shop",
            "--id",
            "web-shop",
            "--write-key",
            KEY,
        ],
    );
    assert_eq!(
        created,
        "ID        NAME      WRITE KEYS\nweb-shop  Web shop  wk_w…\n"
    );
    let created = ok(
        &running,
        &[
            "destinations",
            "create",
            "--id",
            "chartmogul-shop",
            "--name",
            "ChartMogul (web shop)",
            "--webhook-url",
            &webhook_url,
            "--source",
            "web-shop",
        ],
    );
    assert!(created.contains("sources   web-shop\n"), "{created}");
    let masked = format!("settings  chartmogul_webhook_url={}\n", hook.url("/…"));
    assert!(created.contains(&masked), "{created}");
    assert!(!created.contains("secret-token"), "{created}");
    for (action, id) in [
        ("sendContact", "send-contact"),
        ("sendCustomer", "send-customer"),
    ] {
        ok(
            &running,
            &[
                "mappings",
                "create",
                "chartmogul-shop",
                "--action",
                action,
                "--id",
                id,
            ],
        );
    }
    let listed = ok(&running, &["mappings", "list", "chartmogul-shop"]);
    assert!(
        listed.contains("send-contact   sendContact   Send Contact   true     type = \"identify\""),
        "{listed}"
    );
    let listed = ok(&running, &["destinations", "list"]);
    assert!(listed.contains("chartmogul-shop"), "{listed}");
    assert!(!listed.contains("secret-token"), "{listed}");

    // The event tester sends one identify through both mappings, for real.
    let tested = ok(
        &running,
        &[
            "test-event",
            "chartmogul-shop",
            "--event",
            r#"{"type": "identify", "userId": "u-1", "traits": {"email": "u-1@example.com"}}"#,
        ],
    );
    let rows: Vec<Vec<&str>> = tested
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["MAPPING", "MATCHED", "OUTCOME", "STATUS", "ERROR"],
        "{tested}"
    );
    assert_eq!(
        rows[1],
        ["send-contact", "true", "sent", "200", "-"],
        "{tested}"
    );
    assert_eq!(rows[2][..2], ["send-customer", "false"], "{tested}");
    hook.wait_for("the test event", Duration::from_secs(10), |r| r.len() == 1);

    // `tail` follows the source live from now on (its notice on stderr once subscribed).
    let mut tail = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["tail", "web-shop"])
        .env(
            "JUNCTION_ADMIN_URL",
            format!("http://{}", running.admin_address),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut notice = String::new();
    BufReader::new(tail.stderr.take().unwrap())
        .read_line(&mut notice)
        .unwrap();
    assert_eq!(
        notice,
        "Following the events of source web-shop (Ctrl-C ends it)…\n"
    );

    // Two sample users (an identify and a group call each), seen by the debugger, delivered.
    let sent = ok(&running, &["send", "--write-key", KEY, "--count", "2"]);
    assert_eq!(sent, "4 event(s) accepted, 0 rejected\n");
    let mut live = BufReader::new(tail.stdout.take().unwrap());
    for _ in 0..4 {
        let mut line = String::new();
        live.read_line(&mut line).unwrap();
        assert!(line.contains("→ chartmogul-shop/send-c"), "{line}");
    }
    // Ctrl-C ends it, successfully.
    let interrupted = Command::new("kill")
        .args(["-INT", &tail.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    assert!(tail.wait().unwrap().success());
    let recent = wait_for(&running, &["tail", "web-shop", "--recent"], |events| {
        events.as_array().is_some_and(|e| e.len() == 4)
    });
    assert_eq!(
        recent[0]["routing"]["jobs"][0]["mapping_id"],
        "send-contact"
    );
    let tail = ok(&running, &["tail", "web-shop", "--recent"]);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 4, "{tail}");
    assert!(lines[0].contains("  identify  "), "{tail}");
    assert!(
        lines[0].ends_with(
            "→ chartmogul-shop/send-contact, ✗ chartmogul-shop/send-customer (not_matched)"
        ),
        "{tail}"
    );
    assert!(lines[1].contains("  group  "), "{tail}");
    assert!(
        lines[1].ends_with(
            "→ chartmogul-shop/send-customer, ✗ chartmogul-shop/send-contact (not_matched)"
        ),
        "{tail}"
    );
    hook.wait_for("the deliveries", Duration::from_secs(30), |r| r.len() == 5);
    wait_for(&running, &["overview", "chartmogul-shop"], |o| {
        o["totals"]["destination"]["delivered"] == 4
    });
    let overview = ok(&running, &["overview", "chartmogul-shop"]);
    let lines: Vec<&str> = overview.lines().collect();
    assert!(lines[1].starts_with("SCOPE"), "{overview}");
    let totals: Vec<&str> = lines[2].split_whitespace().collect();
    // destination chartmogul-shop: received 4, filtered 0, not matched 0, discarded 0, jobs 4, …
    assert_eq!(
        &totals[..8],
        [
            "destination",
            "chartmogul-shop",
            "4",
            "0",
            "0",
            "0",
            "4",
            "0"
        ],
        "{overview}"
    );
    assert_eq!(totals[10], "4", "{overview}");

    // The webhook breaks: the next four jobs end in the dead letter.
    hook.set(Behaviour::Always(Reply::status(404)));
    ok(&running, &["send", "--write-key", KEY, "--count", "2"]);
    wait_for(
        &running,
        &["dead-letter", "--destination", "chartmogul-shop"],
        |jobs| jobs.as_array().is_some_and(|j| j.len() == 4),
    );
    let dead = ok(
        &running,
        &["dead-letter", "--destination", "chartmogul-shop"],
    );
    assert_eq!(dead.lines().count(), 5, "{dead}");
    assert!(dead.contains("discarded  404     http_status"), "{dead}");
    assert!(!dead.contains("secret-token"), "{dead}");

    // Fixed: replayed, delivered, the dead letter empty again.
    hook.set(Behaviour::Always(Reply::ok()));
    let replayed = ok(&running, &["replay", "--destination", "chartmogul-shop"]);
    assert!(
        replayed.ends_with("4 replayed, 0 not replayed\n"),
        "{replayed}"
    );
    hook.wait_for("the replays", Duration::from_secs(30), |r| {
        r.iter().filter(|r| r.status == 200).count() == 9
    });
    let empty = ok(
        &running,
        &["dead-letter", "--destination", "chartmogul-shop"],
    );
    assert_eq!(empty, "The dead letter holds no job matching the filter.\n");
    wait_for(&running, &["overview", "chartmogul-shop"], |o| {
        o["totals"]["destination"]["delivered"] == 8
    });
    assert!(terminate(running));
}

#[test]
fn sources_destinations_and_mappings_change_and_errors_read_as_the_api_wrote_them() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let running = start(&dir.path().join("data"), &[]);

    // A generated write key is shown once; later lists mask it.
    let created = ok(&running, &["sources", "create", "Mobile", "--id", "mobile"]);
    let key = created
        .lines()
        .find_map(|line| line.strip_prefix("New write key (shown only now): "))
        .unwrap()
        .to_owned();
    assert!(key.starts_with("wk_"), "{created}");
    ok(&running, &["sources", "rename", "mobile", "Mobile app"]);
    let added = ok(
        &running,
        &["sources", "add-key", "mobile", "wk_second_key_0123456789"],
    );
    assert!(!added.contains("New write key"), "{added}");
    let listed = ok(&running, &["sources", "list"]);
    assert!(listed.contains("Mobile app  wk_"), "{listed}");
    assert!(listed.contains(" wk_s…\n"), "{listed}");
    assert!(!listed.contains(&key), "{listed}");
    let revoked = ok(&running, &["sources", "revoke-key", "mobile", &key]);
    assert_eq!(revoked, "Write key revoked from source mobile.\n");
    let refused = fails(
        &running,
        &[
            "sources",
            "revoke-key",
            "mobile",
            "wk_second_key_0123456789",
        ],
    );
    assert!(
        refused.contains(
            "the admin API answered 400: write_key: a source needs at least one write key"
        ),
        "{refused}"
    );

    // Connected sources cannot be deleted; disconnected they can.
    ok(
        &running,
        &["destinations", "connect", "chartmogul", "mobile"],
    );
    let refused = fails(&running, &["sources", "delete", "mobile"]);
    assert!(
        refused.contains("409: source \"mobile\" is connected to destination(s) chartmogul"),
        "{refused}"
    );
    ok(
        &running,
        &["destinations", "disconnect", "chartmogul", "mobile"],
    );
    assert_eq!(
        ok(&running, &["sources", "delete", "mobile"]),
        "Source mobile deleted.\n"
    );

    // Destinations: disable, enable, rename; mappings: disable, update, a bad trigger refused.
    ok(&running, &["destinations", "disable", "chartmogul"]);
    let shown = json_of(&running, &["destinations", "show", "chartmogul", "--json"]);
    assert_eq!(shown["enabled"], false);
    ok(&running, &["destinations", "enable", "chartmogul"]);
    let updated = ok(
        &running,
        &["destinations", "update", "chartmogul", "--name", "CM"],
    );
    assert!(updated.contains("name      CM\n"), "{updated}");
    ok(
        &running,
        &["mappings", "disable", "chartmogul", "send-customer"],
    );
    let updated = ok(
        &running,
        &[
            "mappings",
            "update",
            "chartmogul",
            "send-contact",
            "--trigger",
            "type = \"track\"",
        ],
    );
    assert!(updated.contains("type = \"track\""), "{updated}");
    let refused = fails(
        &running,
        &[
            "mappings",
            "update",
            "chartmogul",
            "send-contact",
            "--trigger",
            "type =",
        ],
    );
    assert!(
        refused.contains("the admin API answered 400: trigger: invalid trigger"),
        "{refused}"
    );
    let refused = fails(
        &running,
        &["mappings", "create", "chartmogul", "--action", "nope"],
    );
    assert!(
        refused.contains("action: unknown action \"nope\""),
        "{refused}"
    );
    let tested = ok(
        &running,
        &[
            "mappings",
            "test",
            "chartmogul",
            "send-contact",
            "--event",
            r#"{"type": "track", "event": "x", "userId": "u", "traits": {"email": "u@example.com"}}"#,
        ],
    );
    let lines: Vec<&str> = tested.lines().collect();
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["send-contact", "true", "ready", "-", "-"],
        "{tested}"
    );
    // The sample workspace delivers to the sandbox webhook of the admin listener.
    assert!(
        lines[2].starts_with(&format!("POST http://{}/…", running.admin_address)),
        "{tested}"
    );
    let catalog = ok(&running, &["destinations", "catalog"]);
    assert!(catalog.contains("actions-chartmogul"), "{catalog}");
    let catalog = ok(&running, &["destinations", "catalog", "actions-chartmogul"]);
    assert!(catalog.contains("chartmogul_webhook_url"), "{catalog}");
    assert_eq!(
        ok(
            &running,
            &["mappings", "delete", "chartmogul", "send-customer"]
        ),
        "Mapping send-customer of destination chartmogul deleted.\n"
    );
    assert_eq!(
        ok(&running, &["destinations", "delete", "chartmogul"]),
        "Destination chartmogul deleted.\n"
    );
    assert_eq!(ok(&running, &["destinations", "list"]), "No destination.\n");
    let missing = fails(&running, &["overview", "chartmogul"]);
    assert!(
        missing.contains("404: destination \"chartmogul\" not found"),
        "{missing}"
    );
    assert!(terminate(running));
}

#[test]
fn apply_plans_applies_and_then_has_nothing_left_to_do() {
    let _shared = crate::util::alongside_others();
    let dir = tempfile::tempdir().unwrap();
    let running = start(&dir.path().join("data"), &[]);
    let file = dir.path().join("workspace.toml");
    std::fs::write(
        &file,
        r#"
[[sources]]
id = "web"
name = "Web"
write_keys = ["wk_apply_web_0123456789"]

[[destinations]]
id = "cm"
name = "ChartMogul"
type = "actions-chartmogul"
sources = ["web"]
settings = { chartmogul_webhook_url = "https://hooks.example/v1/apply-secret" }

[[destinations.mappings]]
id = "contact"
action = "sendContact"
name = "Contact"
trigger = 'type = "identify"'
mapping = { email = { "@path" = "$.traits.mail" } }
"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();

    // The sample workspace goes, the file's comes; nothing changes on a dry run.
    let planned = ok(&running, &["apply", file, "--dry-run"]);
    assert_eq!(
        planned,
        "Plan: 3 to create, 0 to update, 2 to delete.\n\
         + source web (name = \"Web\", write keys wk_a…)\n\
         - destination chartmogul\n\
         + destination cm (name = \"ChartMogul\", type = \"actions-chartmogul\", sources = web, \
         settings.chartmogul_webhook_url = \"https://hooks.example/…\")\n\
         + mapping cm/contact (action = \"sendContact\", trigger = \"type = \\\"identify\\\"\", \
         mapping fields email)\n\
         - source sample-app\n"
    );
    assert!(ok(&running, &["destinations", "list"]).contains("chartmogul "));
    let applied = ok(&running, &["apply", file]);
    assert!(applied.starts_with(&planned), "{applied}");
    assert!(applied.ends_with("Applied 5 change(s).\n"), "{applied}");
    assert!(!applied.contains("apply-secret") && !applied.contains("wk_apply_web_0123456789"));
    let mapping = json_of(&running, &["mappings", "list", "cm", "--json"]);
    assert_eq!(mapping[0]["mapping"]["email"]["@path"], "$.traits.mail");

    // Applied: nothing left to do; a change in the file is one update.
    assert_eq!(
        ok(&running, &["apply", file]),
        "Nothing to change: the workspace already matches the file.\n"
    );
    let text = std::fs::read_to_string(file)
        .unwrap()
        .replace("name = \"Contact\"", "name = \"Contacts\"");
    std::fs::write(file, text).unwrap();
    let plan = json_of(&running, &["apply", file, "--dry-run", "--json"]);
    assert_eq!(plan["steps"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["steps"][0]["what"], "mapping cm/contact");
    assert_eq!(plan["steps"][0]["op"], "update");

    // An invalid file is refused before anything is asked of the server.
    std::fs::write(dir.path().join("bad.json"), r#"{"sources": [{"id": ""}]}"#).unwrap();
    let refused = fails(
        &running,
        &["apply", dir.path().join("bad.json").to_str().unwrap()],
    );
    assert!(refused.contains("bad.json"), "{refused}");
    assert!(terminate(running));
}

//! Audiences end to end, against the real `junction serve`: Segment's Python library sends
//! identify and track calls; an audience made through the admin API (after a preview) and
//! connected to ChartMogul in real time delivers `identify` calls through the mapping preset
//! (`custom_attributes.order_completed_last_30_days: true`); a window passing sends `false`;
//! a second destination connected every 24 hours gets every current member once, then only the
//! net changes when a sync runs; the profile is readable by any identifier, and every sync's
//! story by its `messageId`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clients::send_python;
use crate::util::{admin, alongside_others, kill_hard, post, start, terminate};
use crate::webhook::{Received, Webhook};

const KEY: &str = "order_completed_last_30_days";
const DAY_SECS: i64 = 86_400;

fn workspace(hook: &Webhook) -> Value {
    json!({
        "sources": [{"id": "python-app", "name": "Python app", "write_keys": ["python-write-key"]}],
        "destinations": [
            {"id": "chartmogul", "name": "ChartMogul", "type": "actions-chartmogul",
             "settings": {"chartmogul_webhook_url": hook.url("/cm")},
             "sources": ["python-app"],
             "mappings": [
                {"id": "send-contact", "action": "sendContact", "trigger": "type = \"identify\""},
                {"id": "send-customer", "action": "sendCustomer", "trigger": "type = \"group\""}
             ]},
            {"id": "chartmogul-eu", "name": "ChartMogul EU", "type": "actions-chartmogul",
             "settings": {"chartmogul_webhook_url": hook.url("/cm-eu")},
             "sources": [],
             "mappings": [
                {"id": "send-contact", "action": "sendContact", "trigger": "type = \"identify\""}
             ]}
        ]
    })
}

/// `now − days` (plus `secs`), as RFC 3339: when an order was placed.
fn ago(days: i64, secs: i64) -> String {
    let at = OffsetDateTime::now_utc() - time::Duration::seconds(days * DAY_SECS)
        + time::Duration::seconds(secs);
    at.format(&Rfc3339).unwrap()
}

fn order(user: &str, timestamp: &str) -> Value {
    json!({"type": "track", "userId": user, "event": "Order Completed",
           "properties": {"revenue": 42.5}, "timestamp": timestamp})
}

/// Syncs delivered to `path` carrying the audience (by the preset's custom attributes, or by
/// the personas `message_id` for a destination without the preset): (user, value).
fn synced(hook: &Webhook, path: &str) -> Vec<(String, Option<Value>)> {
    hook.requests()
        .iter()
        .filter(|request| request.path == path)
        .map(Received::json)
        .filter(|body| {
            body["message_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("personas_"))
        })
        .map(|body| {
            let user = body["user_id"].as_str().unwrap_or_default().to_owned();
            (user, body["custom_attributes"].get(KEY).cloned())
        })
        .collect()
}

/// Waits until `check` holds, up to `limit`.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_audience_reaches_chartmogul_in_real_time_and_on_schedule() {
    let _shared = alongside_others();
    let hook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workspace.json");
    std::fs::write(&path, workspace(&hook).to_string()).unwrap();
    let running = start(
        &dir.path().join("data"),
        &["--workspace", path.to_str().unwrap()],
    );
    let api = running.admin_address.clone();

    // The preset: audiences as ChartMogul custom attributes.
    let (status, preset) = admin(
        &api,
        "POST",
        "/api/v1/destinations/chartmogul/mappings/presets/audience_attributes",
        None,
    );
    assert_eq!(status, 201, "{preset}");
    assert_eq!(
        preset["data"]["trigger"],
        "type = \"identify\" and context.personas.computation_key != null"
    );

    // u1 ordered now; u2 30 days ago less 12 s (it leaves the audience in 12 s); u3 too long
    // ago.
    let calls = vec![
        json!({"type": "identify", "userId": "u1", "traits": {"email": "jane@example.com"}}),
        order("u1", &ago(0, 0)),
        order("u2", &ago(30, 12)),
        order("u3", &ago(40, 0)),
    ];
    send_python(&running, &calls);

    let definition = json!({"name": "Order completed, last 30 days", "kind": "audience",
        "query": "event('Order Completed').within(30 days).count() >= 1"});
    let mut preview = Value::Null;
    wait_until(Duration::from_secs(10), "the preview counts both", || {
        let (status, body) = admin(&api, "POST", "/api/v1/audiences/preview", Some(&definition));
        assert_eq!(status, 200, "{body}");
        preview = body;
        preview["data"]["size"] == 2
    });
    assert_eq!(preview["data"]["key"], KEY);
    assert_eq!(preview["data"]["profiles"], 3);

    let mut create = definition.clone();
    create["connections"] = json!([{"destination": "chartmogul"}]);
    let (status, created) = admin(&api, "POST", "/api/v1/audiences", Some(&create));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["key"], KEY);
    assert_eq!(created["data"]["connections"][0]["schedule"], "realtime");

    // Real time: both members arrive through the preset.
    wait_until(Duration::from_secs(20), "u1 and u2 enter", || {
        let mut entered: Vec<String> = synced(&hook, "/cm")
            .into_iter()
            .filter(|(_, value)| *value == Some(json!(true)))
            .map(|(user, _)| user)
            .collect();
        entered.sort();
        entered == ["u1", "u2"]
    });
    // The window passes for u2: `false`, found by the scheduler within seconds.
    wait_until(Duration::from_secs(30), "u2 leaves", || {
        synced(&hook, "/cm").contains(&("u2".to_owned(), Some(json!(false))))
    });
    // The default Send Contact mapping (`type = "identify"`) matches the sync too: u1, who has
    // an email, is also sent as a plain contact; the preset's requests carry the value.
    let to_cm = synced(&hook, "/cm");
    let with_value: Vec<_> = to_cm.iter().filter(|(_, value)| value.is_some()).collect();
    assert_eq!(with_value.len(), 3, "each change once: {to_cm:?}");
    assert!(to_cm.contains(&("u1".to_owned(), None)), "{to_cm:?}");

    // The sync's story: a personas identify routed to ChartMogul only.
    let first = hook
        .requests()
        .into_iter()
        .find(|r| r.path == "/cm" && r.json()["custom_attributes"].get(KEY).is_some())
        .unwrap();
    let (status, story) = admin(
        &api,
        "GET",
        &format!("/api/v1/events/{}", first.message_id()),
        None,
    );
    assert_eq!(status, 200, "{story}");
    let event = &story["data"]["events"][0];
    assert_eq!(event["source_id"], "personas");
    assert_eq!(event["event"]["type"], "identify");
    assert_eq!(
        event["event"]["context"]["personas"]["computation_key"],
        KEY
    );
    let jobs = event["jobs"].as_array().unwrap();
    assert!(
        jobs.iter()
            .any(|job| job["mapping_id"] == "audience_attributes")
            && jobs.iter().all(|job| job["destination_id"] == "chartmogul"),
        "{story}"
    );
    assert_eq!(
        event["event"]["integrations"],
        json!({"All": false, "chartmogul": true})
    );

    // A second destination, every 24 hours: every current member once (u1; u2 left).
    let (status, body) = admin(
        &api,
        "PUT",
        &format!("/api/v1/audiences/{KEY}/connections/chartmogul-eu"),
        Some(&json!({"every_hours": 24})),
    );
    assert_eq!(status, 200, "{body}");
    wait_until(
        Duration::from_secs(20),
        "u1 sent to the second destination",
        || hook.requests().iter().any(|r| r.path == "/cm-eu"),
    );
    std::thread::sleep(Duration::from_secs(2));
    let eu: Vec<String> = hook
        .requests()
        .iter()
        .filter(|r| r.path == "/cm-eu")
        .map(|r| r.json()["user_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(eu, ["u1"], "every current member, once");

    // Net changes: u4 enters and stays; u5 enters and leaves before the sync; u1 is unchanged.
    send_python(
        &running,
        &[
            json!({"type": "identify", "userId": "u4", "traits": {"email": "u4@example.com"}}),
            json!({"type": "identify", "userId": "u5", "traits": {"email": "u5@example.com"}}),
            order("u4", &ago(0, 0)),
            order("u5", &ago(30, 4)),
        ],
    );
    wait_until(Duration::from_secs(30), "u5 enters and leaves", || {
        let u5 = synced(&hook, "/cm");
        u5.contains(&("u5".to_owned(), Some(json!(true))))
            && u5.contains(&("u5".to_owned(), Some(json!(false))))
    });
    let (status, body) = admin(
        &api,
        "POST",
        &format!("/api/v1/audiences/{KEY}/connections/chartmogul-eu/sync"),
        None,
    );
    assert_eq!(status, 202, "{body}");
    wait_until(Duration::from_secs(20), "u4 sent on the sync", || {
        hook.requests()
            .iter()
            .filter(|r| r.path == "/cm-eu")
            .count()
            >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    let eu: Vec<String> = hook
        .requests()
        .iter()
        .filter(|r| r.path == "/cm-eu")
        .map(|r| r.json()["user_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(eu, ["u1", "u4"], "only the net change");

    // The profile, by any identifier; the list with sizes.
    let (status, profile) = admin(&api, "GET", "/api/v1/profiles/email/jane@example.com", None);
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["data"]["identifiers"]["user_id"], json!(["u1"]));
    assert_eq!(profile["data"]["audiences"][KEY], json!(true));
    assert_eq!(profile["data"]["traits"]["email"], "jane@example.com");
    assert_eq!(
        profile["data"]["recent_events"][0]["event"],
        "Order Completed"
    );
    let (status, _) = admin(&api, "GET", "/api/v1/profiles/user_id/nobody", None);
    assert_eq!(status, 404);
    wait_until(Duration::from_secs(20), "the size is counted", || {
        let (_, list) = admin(&api, "GET", "/api/v1/audiences", None);
        list["data"][0]["size"] == 2
    });

    // Deleting retires the key.
    let (status, _) = admin(&api, "DELETE", &format!("/api/v1/audiences/{KEY}"), None);
    assert_eq!(status, 200);
    let (status, refused) = admin(&api, "POST", "/api/v1/audiences", Some(&definition));
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("not reused"), "{refused}");
    assert!(terminate(running));
}

/// Profiles, definitions and what was sent survive a SIGKILL: 1,500 customers order while the
/// worker syncs them; the server is killed once syncs are arriving and started again on the
/// same data. Every customer is then sent exactly one sync event (one `messageId`; a delivery in
/// flight at the kill may arrive twice with that same id), none is lost.
#[test]
fn audience_syncs_survive_a_sigkill_without_loss_or_a_second_sync() {
    let _shared = alongside_others();
    let hook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = workspace(&hook);
    config["destinations"][0]["mappings"] = json!([{"id": "audience_attributes",
        "action": "sendContact",
        "trigger": "type = \"identify\" and context.personas.computation_key != null",
        "mapping": {"custom_attributes": {"@path": "$.traits"}}}]);
    config["audiences"] = json!([{"key": KEY, "name": "Order completed, last 30 days",
        "kind": "audience", "query": "event('Order Completed').within(30 days).count() >= 1",
        "connections": [{"destination": "chartmogul"}]}]);
    let path = dir.path().join("workspace.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let data = dir.path().join("data");
    // A short lease, so that the jobs the killed process had claimed come back within seconds.
    let settings = dir.path().join("junction.toml");
    std::fs::write(&settings, "[delivery]\ntimeout_secs = 2\nlease_secs = 4\n").unwrap();
    let settings = settings.to_str().unwrap();
    let running = start(
        &data,
        &["--config", settings, "--workspace", path.to_str().unwrap()],
    );

    const CUSTOMERS: usize = 1_500;
    for chunk in (0..CUSTOMERS).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|n| {
                json!({"type": "track", "userId": format!("c{n}"),
                            "event": "Order Completed", "messageId": format!("order-{n}")})
            })
            .collect();
        let body = json!({"batch": batch}).to_string();
        let (status, answer) = post(&running.address, "/v1/batch", "python-write-key", &body);
        assert_eq!(status, 200, "{answer}");
    }
    wait_until(Duration::from_secs(30), "syncs arriving", || {
        hook.count() >= 20
    });
    kill_hard(running);
    let before_restart = hook.count();

    let running = start(&data, &["--config", settings]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let users: HashSet<String> = synced(&hook, "/cm").into_iter().map(|(u, _)| u).collect();
        if users.len() == CUSTOMERS {
            break;
        }
        if Instant::now() > deadline {
            let (_, list) = admin(&running.admin_address, "GET", "/api/v1/audiences", None);
            let (_, overview) = admin(
                &running.admin_address,
                "GET",
                "/api/v1/destinations/chartmogul/overview",
                None,
            );
            panic!(
                "{} of {CUSTOMERS} synced ({before_restart} requests before the restart): \
                 {list}\n{overview}",
                users.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut ids_per_user: HashMap<String, HashSet<String>> = HashMap::new();
    for request in hook.requests().iter().filter(|r| r.path == "/cm") {
        let body = request.json();
        assert_eq!(body["custom_attributes"][KEY], json!(true), "{body}");
        let user = body["user_id"].as_str().unwrap_or_default().to_owned();
        ids_per_user
            .entry(user)
            .or_default()
            .insert(request.message_id());
    }
    assert_eq!(ids_per_user.len(), CUSTOMERS);
    let twice: Vec<_> = ids_per_user
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    assert!(twice.is_empty(), "a customer synced twice: {twice:?}");
    assert!(
        before_restart < hook.count(),
        "the kill happened before every sync ({before_restart} requests then)"
    );
    assert!(terminate(running));
}

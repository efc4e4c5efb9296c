//! The profile worker against a real SQLite store and a manual clock: real-time syncs entering
//! and leaving, a window passing, every-N-hours net changes, a new connection sending every
//! member once, a backfill equal to a computation from scratch, and a restart that neither
//! loses nor repeats a sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use junction_audience::{Definitions, Engine, Limits, parse_rfc3339};
use junction_profiles::{
    ManualClock, PERSONAS_SOURCE, ProfileWorker, Snapshots, WorkerSettings, find_profile,
    worker_status,
};
use junction_store::{EventId, NewEvent, Store};
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use junction_workspace::{Snapshot, WorkspaceConfig, definition_specs};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn t0() -> i64 {
    parse_rfc3339("2026-03-01T00:00:00Z").unwrap()
}

fn rfc3339(ms: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn workspace(audiences: Value) -> Snapshot {
    let config = json!({
        "sources": [{"id": "web", "write_keys": ["wk"]}],
        "destinations": [
            {"id": "cm", "type": "actions-chartmogul", "sources": ["web"],
             "settings": {"chartmogul_webhook_url": "https://hooks.example/cm"},
             "mappings": [{"id": "audiences", "action": "sendContact",
                "trigger": "type = \"identify\" and context.personas.computation_key != null",
                "mapping": {"custom_attributes": {"@path": "$.traits"}}}]},
            {"id": "cm2", "type": "actions-chartmogul", "sources": [],
             "settings": {"chartmogul_webhook_url": "https://hooks.example/cm2"},
             "mappings": [{"id": "audiences", "action": "sendContact",
                "trigger": "type = \"identify\"",
                "mapping": {"custom_attributes": {"@path": "$.traits"}}}]}
        ],
        "audiences": audiences,
    });
    Snapshot::compile(WorkspaceConfig::from_document(config).unwrap()).unwrap()
}

fn buyers(connections: Value) -> Value {
    json!([{"key": "order_completed_last_30_days", "name": "Order completed, last 30 days",
            "kind": "audience",
            "query": "event('Order Completed').within(30 days).count() >= 1",
            "connections": connections}])
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    snapshot: Arc<Mutex<Arc<Snapshot>>>,
    clock: Arc<ManualClock>,
    messages: u64,
    seen: EventId,
}

impl Harness {
    async fn new(snapshot: Snapshot) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("j.db"), SqliteOptions::default())
            .await
            .unwrap();
        Harness {
            _dir: dir,
            store: Arc::new(store),
            snapshot: Arc::new(Mutex::new(Arc::new(snapshot))),
            clock: Arc::new(ManualClock::new(t0())),
            messages: 0,
            seen: EventId(0),
        }
    }

    fn worker(&self, owner: &str) -> ProfileWorker {
        let snapshot = Arc::clone(&self.snapshot);
        let snapshots: Snapshots = Arc::new(move || Arc::clone(&snapshot.lock().unwrap()));
        ProfileWorker::new(
            Arc::clone(&self.store),
            snapshots,
            self.clock.clone(),
            owner.to_owned(),
            WorkerSettings::default(),
        )
    }

    fn set_workspace(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap() = Arc::new(snapshot);
    }

    /// Stores an event as the Tracking API would (for the profiles), stamped `at`.
    async fn send(&mut self, mut event: Value, at: i64) {
        self.messages += 1;
        let message_id = format!("m{}", self.messages);
        event["messageId"] = json!(message_id);
        event["timestamp"] = json!(rfc3339(at));
        let new = NewEvent {
            source_id: "web".to_owned(),
            message_id,
            received_at: self.clock.now_ms_for_test(),
            payload: serde_json::to_vec(&event).unwrap(),
            jobs: Vec::new(),
            discards: Vec::new(),
            for_profiles: junction_audience::feeds_profiles(&event),
        };
        self.store.commit(vec![new]).await.unwrap();
    }

    async fn order(&mut self, user: &str, at: i64) {
        let event = json!({"type": "track", "event": "Order Completed", "userId": user});
        self.send(event, at).await;
    }

    /// Runs steps until one has nothing more to do.
    async fn settle(&self, worker: &mut ProfileWorker) {
        for _ in 0..100 {
            let outcome = worker.step().await.unwrap();
            assert!(outcome.leading);
            if !outcome.more {
                return;
            }
        }
        panic!("the worker never settled");
    }

    /// The sync events committed since the last call: (destination jobs, userId, traits).
    async fn new_syncs(&mut self) -> Vec<(Vec<String>, String, Value)> {
        let events = self.store.stored_events(self.seen, 10_000).await.unwrap();
        let mut syncs = Vec::new();
        for event in events {
            self.seen = event.id;
            if event.source_id != PERSONAS_SOURCE {
                continue;
            }
            let record = self.store.event(event.id).await.unwrap().unwrap();
            let payload: Value = serde_json::from_slice(&event.payload).unwrap();
            let jobs = record
                .jobs
                .iter()
                .map(|job| {
                    let body: Value = serde_json::from_slice(&job.job.body).unwrap();
                    format!(
                        "{}:{}",
                        job.job.destination_id,
                        body.get("custom_attributes").unwrap_or(&Value::Null)
                    )
                })
                .collect();
            let user = payload["userId"].as_str().unwrap_or_default().to_owned();
            syncs.push((jobs, user, payload["traits"].clone()));
        }
        syncs
    }
}

trait NowForTest {
    fn now_ms_for_test(&self) -> i64;
}

impl NowForTest for ManualClock {
    fn now_ms_for_test(&self) -> i64 {
        junction_profiles::Clock::now_ms(self)
    }
}

#[tokio::test]
async fn realtime_syncs_enter_and_leave_as_the_window_passes() {
    let mut h = Harness::new(workspace(buyers(json!([{"destination": "cm"}])))).await;
    let mut worker = h.worker("node-a");
    h.send(
        json!({"type": "identify", "userId": "u1", "traits": {"email": "jane@example.com"}}),
        t0(),
    )
    .await;
    h.order("u1", t0()).await;
    h.settle(&mut worker).await;

    let syncs = h.new_syncs().await;
    assert_eq!(syncs.len(), 1, "{syncs:?}");
    let (jobs, user, traits) = &syncs[0];
    assert_eq!(user, "u1");
    assert_eq!(
        traits,
        &json!({"order_completed_last_30_days": true, "email": "jane@example.com"})
    );
    assert_eq!(
        jobs,
        &vec![
            "cm:{\"order_completed_last_30_days\":true,\"email\":\"jane@example.com\"}".to_owned()
        ],
        "delivered through the preset's custom attributes, to cm only"
    );

    // Nothing more while the value holds.
    h.clock.advance(DAY);
    h.settle(&mut worker).await;
    assert!(h.new_syncs().await.is_empty());

    // The window passes: 30 days after the order, it leaves.
    h.clock.set(t0() + 30 * DAY + 1);
    h.settle(&mut worker).await;
    let syncs = h.new_syncs().await;
    assert_eq!(syncs.len(), 1, "{syncs:?}");
    assert_eq!(syncs[0].2["order_completed_last_30_days"], json!(false));

    let view = find_profile(
        &*h.store,
        junction_audience::IdType::Email,
        "jane@example.com",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(view.identifiers.user_id, vec!["u1".to_owned()]);
    assert_eq!(view.values["order_completed_last_30_days"], json!(false));
    assert_eq!(view.traits["email"], json!("jane@example.com"));
    assert_eq!(view.recent_events.len(), 2);
    assert_eq!(view.recent_events[0]["event"], json!("Order Completed"));
}

#[tokio::test]
async fn every_n_hours_sends_only_net_changes_and_a_new_connection_every_member_once() {
    let audiences = json!([{"key": "recent_buyers", "name": "Recent buyers", "kind": "audience",
        "query": "event('Order Completed').within(1 hours).count() >= 1",
        "connections": [{"destination": "cm", "every_hours": 24}]}]);
    let mut h = Harness::new(workspace(audiences.clone())).await;
    let mut worker = h.worker("node-a");
    h.settle(&mut worker).await;
    assert!(h.new_syncs().await.is_empty(), "no member yet");

    // u1 enters and leaves within the period; u2 enters and stays; u3 is a member from before.
    h.order("u1", t0() + HOUR).await;
    h.clock.set(t0() + HOUR);
    h.settle(&mut worker).await;
    h.clock.set(t0() + 3 * HOUR);
    h.settle(&mut worker).await;
    assert!(
        h.new_syncs().await.is_empty(),
        "nothing before the period ends"
    );
    h.clock.set(t0() + 23 * HOUR + 30 * 60_000);
    h.order("u2", t0() + 23 * HOUR + 30 * 60_000).await;
    h.settle(&mut worker).await;
    assert!(h.new_syncs().await.is_empty());

    h.clock.set(t0() + 24 * HOUR);
    h.settle(&mut worker).await;
    let syncs = h.new_syncs().await;
    let users: Vec<&str> = syncs.iter().map(|(_, user, _)| user.as_str()).collect();
    assert_eq!(
        users,
        vec!["u2"],
        "u1 entered and left: its net change is none"
    );
    assert_eq!(syncs[0].2["recent_buyers"], json!(true));

    // Connecting a second destination sends every current member once.
    let mut connected = audiences.clone();
    connected[0]["connections"] = json!([{"destination": "cm", "every_hours": 24},
                                         {"destination": "cm2"}]);
    h.set_workspace(workspace(connected));
    h.settle(&mut worker).await;
    let syncs = h.new_syncs().await;
    assert_eq!(syncs.len(), 1, "{syncs:?}");
    assert_eq!(syncs[0].1, "u2");
    assert!(syncs[0].0[0].starts_with("cm2:"), "{syncs:?}");
    h.settle(&mut worker).await;
    assert!(h.new_syncs().await.is_empty(), "once");

    let status = worker_status(&*h.store).await.unwrap().unwrap();
    assert_eq!(status.sizes["recent_buyers"], 1);
    assert_eq!(status.profiles, 2);
}

#[tokio::test]
async fn a_new_definition_is_backfilled_to_what_a_computation_from_scratch_gives() {
    let mut h = Harness::new(workspace(json!([]))).await;
    let mut worker = h.worker("node-a");
    let mut history = Vec::new();
    for n in 0..60_i64 {
        let user = format!("u{}", n % 7);
        let event = match n % 3 {
            0 => json!({"type": "track", "event": "Order Completed", "userId": user,
                        "properties": {"total": n}}),
            1 => json!({"type": "identify", "userId": user, "anonymousId": format!("a{n}"),
                        "traits": {"plan": if n % 2 == 0 { "pro" } else { "free" }}}),
            _ => json!({"type": "page", "anonymousId": format!("a{}", n - 1), "name": "Home"}),
        };
        let at = t0() - (60 - n) * DAY / 2;
        h.send(event.clone(), at).await;
        let mut stamped = event;
        stamped["timestamp"] = json!(rfc3339(at));
        history.push(stamped);
    }
    h.settle(&mut worker).await;

    let audiences = json!([
        {"key": "big_spenders", "name": "Big spenders", "kind": "audience",
         "query": "event('Order Completed').within(20 days).sum(property('total')) >= 40"},
        {"key": "orders", "name": "Orders", "kind": "trait",
         "query": "event('Order Completed').count()"},
        {"key": "pro_viewers", "name": "Pro viewers", "kind": "audience",
         "query": "trait('plan') = 'pro' and event('Page Viewed').count() >= 1"}
    ]);
    h.set_workspace(workspace(audiences.clone()));
    h.settle(&mut worker).await;
    let status = worker_status(&*h.store).await.unwrap().unwrap();
    assert!(status.backfill.is_none());

    let config = WorkspaceConfig::from_document(json!({"audiences": audiences})).unwrap();
    let compiled = Definitions::compile(&definition_specs(&config.audiences));
    assert!(compiled.refused.is_empty());
    let mut engine = Engine::new(compiled.definitions, Limits::default());
    for event in &history {
        engine.ingest(event);
    }
    engine.refresh(t0());
    let mut compared = 0;
    for (_, identifiers, values) in engine.profiles() {
        let Some(user) = identifiers.user_id.first() else {
            continue;
        };
        let view = find_profile(&*h.store, junction_audience::IdType::UserId, user)
            .await
            .unwrap()
            .unwrap();
        for (key, value) in ["big_spenders", "orders", "pro_viewers"].iter().zip(values) {
            assert_eq!(view.values.get(*key), value.as_ref(), "{user} {key}");
        }
        compared += 1;
    }
    assert_eq!(compared, 7);
}

#[tokio::test]
async fn a_restarted_worker_neither_loses_nor_repeats_a_sync() {
    let mut h = Harness::new(workspace(buyers(json!([{"destination": "cm"}])))).await;
    let mut worker = h.worker("node-a");
    h.order("u1", t0()).await;
    h.settle(&mut worker).await;
    assert_eq!(h.new_syncs().await.len(), 1);
    drop(worker);

    // A new worker (a restart) reloads the profiles and what was sent.
    let mut worker = h.worker("node-a");
    h.clock.set(t0() + HOUR);
    h.order("u1", t0() + HOUR).await;
    h.order("u2", t0() + HOUR).await;
    h.settle(&mut worker).await;
    let syncs = h.new_syncs().await;
    let users: Vec<&str> = syncs.iter().map(|(_, user, _)| user.as_str()).collect();
    assert_eq!(users, vec!["u2"], "u1 was already sent");
    // Reloaded, not made again: u1 kept its profile (id 0) and both orders.
    let view = find_profile(&*h.store, junction_audience::IdType::UserId, "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.id, 0);
    assert_eq!(view.recent_events.len(), 2);
}

#[tokio::test]
async fn a_backfill_ends_at_the_newest_event_of_its_start_and_the_inbox_takes_the_rest() {
    let mut h = Harness::new(workspace(json!([]))).await;
    let mut worker = h.worker("node-a");
    h.order("u1", t0()).await;
    h.settle(&mut worker).await;
    h.set_workspace(workspace(buyers(json!([{"destination": "cm"}]))));
    // The step that starts the backfill fixes its end; events stored after it are not walked.
    let first = worker.step().await.unwrap();
    assert!(first.more);
    h.order("u2", t0()).await;
    h.settle(&mut worker).await;
    let status = worker_status(&*h.store).await.unwrap().unwrap();
    assert!(status.backfill.is_none());
    assert_eq!(status.walked_upto, 1, "the walk ended at u1's order");
    let users: Vec<String> = h.new_syncs().await.into_iter().map(|(_, u, _)| u).collect();
    assert_eq!(
        users,
        ["u1", "u2"],
        "u2's order came through the inbox, once"
    );
}

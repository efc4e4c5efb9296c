//! The profile worker's cost: stores EVENTS events (identify and track calls of USERS users) in a
//! fresh SQLite store, then lets a profile worker with DEFINITIONS audiences and computed traits
//! build every profile from them — the backfill a new definition starts — and reports its rate
//! and its CPU per event (the process's user + system time over the backfill alone).
//!
//!   backfill --events 1000000 --definitions 10
//!   backfill --events 200000 --definitions 100 --users 20000

use std::sync::Arc;
use std::time::Instant;

use junction_profiles::{ManualClock, ProfileWorker, Snapshots, WorkerSettings, worker_status};
use junction_store::{NewEvent, Store};
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use junction_workspace::{Snapshot, WorkspaceConfig};
use serde_json::{Value, json};

fn arg(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

/// The process's user + system CPU time in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15; after the command name, 12 and 13 (0-based 11, 12).
    (ticks(11) + ticks(12)) / 100.0
}

/// Definitions reading the identify calls' traits, counting track calls in windows, both, and
/// summing a property.
fn definitions(count: usize) -> Value {
    let list: Vec<Value> = (0..count)
        .map(|i| {
            let (kind, query) = match i % 4 {
                0 => ("audience", format!("trait('logins') > {}", i * 3)),
                1 => (
                    "audience",
                    format!(
                        "trait('plan') = 'pro' and event('Order Completed').count() >= {}",
                        1 + i % 5
                    ),
                ),
                2 => (
                    "audience",
                    format!(
                        "event('Order Completed').within({} days).count() >= {}",
                        i + 7,
                        1 + i % 3
                    ),
                ),
                _ => (
                    "trait",
                    "event('Order Completed').sum(property('revenue'))".to_owned(),
                ),
            };
            json!({"key": format!("d{i}"), "kind": kind, "query": query})
        })
        .collect();
    Value::Array(list)
}

fn event(n: usize, users: usize, now_secs: i64) -> Value {
    let user = n % users;
    let at = now_secs - i64::try_from(n % (60 * 86_400)).unwrap_or(0);
    let timestamp = rfc3339(at);
    if n.is_multiple_of(3) {
        json!({"type": "identify", "userId": format!("u{user}"), "messageId": format!("m{n}"),
               "timestamp": timestamp,
               "traits": {"email": format!("u{user}@example.com"), "plan": "pro",
                          "logins": n % 500}})
    } else {
        json!({"type": "track", "userId": format!("u{user}"), "messageId": format!("m{n}"),
               "event": "Order Completed", "timestamp": timestamp,
               "properties": {"revenue": (n % 200) as f64 / 2.0}})
    }
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

async fn run() -> Result<(), String> {
    let events = arg("--events", 1_000_000)?;
    let count = arg("--definitions", 10)?;
    let users = arg("--users", 50_000)?;
    let dir = std::env::temp_dir().join(format!("junction-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.join("bench.db"), SqliteOptions::default())
            .await
            .map_err(|e| e.to_string())?,
    );
    let now_secs = 1_796_000_000_i64;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1_000);
    for n in 0..events {
        let value = event(n, users, now_secs);
        batch.push(NewEvent {
            source_id: "web".to_owned(),
            message_id: format!("m{n}"),
            received_at: now_secs * 1_000,
            payload: serde_json::to_vec(&value).map_err(|e| e.to_string())?,
            jobs: Vec::new(),
            discards: Vec::new(),
            // Taken in by the backfill's walk, not the inbox.
            for_profiles: false,
        });
        if batch.len() == 1_000 {
            store
                .commit(std::mem::take(&mut batch))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    if !batch.is_empty() {
        store.commit(batch).await.map_err(|e| e.to_string())?;
    }
    eprintln!(
        "stored {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let config = json!({"audiences": definitions(count)});
    let config = WorkspaceConfig::from_document(config).map_err(|e| e.to_string())?;
    let snapshot = Arc::new(Snapshot::compile(config).map_err(|e| e.to_string())?);
    let snapshots: Snapshots = Arc::new(move || Arc::clone(&snapshot));
    let clock = Arc::new(ManualClock::new(now_secs * 1_000));
    let mut worker = ProfileWorker::new(
        Arc::clone(&store),
        snapshots,
        clock,
        "bench".to_owned(),
        WorkerSettings::default(),
    );
    let cpu_before = cpu_secs();
    let started = Instant::now();
    loop {
        let outcome = worker.step().await.map_err(|e| e.to_string())?;
        if !outcome.more {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    let status = worker_status(&*store)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no worker status")?;
    println!(
        "{{\"events\":{events},\"definitions\":{count},\"profiles\":{},\"secs\":{secs:.2},\
         \"events_per_sec\":{:.0},\"cpu_secs\":{cpu:.2},\"cpu_us_per_event\":{:.2},\
         \"backfill_done\":{}}}",
        status.profiles,
        events as f64 / secs,
        cpu * 1e6 / events as f64,
        status.backfill.is_none()
    );
    store.close().await.map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() {
    // The worker is one task; the store does its work on threads of its own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("backfill: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(run()) {
        eprintln!("backfill: {err}");
        std::process::exit(1);
    }
}

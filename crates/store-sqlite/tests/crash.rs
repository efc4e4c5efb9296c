//! Crash durability (design §3 property 1): a child process (this test binary re-executed) commits
//! from several tasks and prints every acknowledged event; the parent SIGKILLs it at a random
//! moment, reopens the file and checks that every acknowledged event is there with its job.
//! SIGKILL proves what a process crash can lose; power loss is covered by `synchronous=FULL`,
//! which no test on this machine can cut the power to check.

// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use junction_store::{CommitOutcome, JobUrl, NewEvent, NewJob, Store};
use junction_store_sqlite::{SqliteOptions, SqliteStore};

/// Set (to the database path) only in the child process.
const CHILD_ENV: &str = "JUNCTION_STORE_CRASH_CHILD_DB";
/// Which round the child belongs to, so message ids never repeat across rounds.
const ROUND_ENV: &str = "JUNCTION_STORE_CRASH_ROUND";
const ROUNDS: u64 = 5;
const CHILD_TASKS: usize = 8;
/// The child stops by itself after this long, should the parent die without killing it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// The child's body: only does anything when re-executed by the parent with `CHILD_ENV` set.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round = std::env::var(ROUND_ENV).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Arc::new(
            SqliteStore::open(&path, SqliteOptions::default())
                .await
                .unwrap(),
        );
        let deadline = Instant::now() + CHILD_LIFETIME;
        let mut tasks = Vec::new();
        for task in 0..CHILD_TASKS {
            let store = Arc::clone(&store);
            let round = round.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    // Batches of 1 to 20 events, so groups mix request sizes.
                    let size = 1 + (n * 7 + task) % 20;
                    let batch: Vec<NewEvent> = (0..size)
                        .map(|i| event(&format!("r{round}-t{task}-{}", n + i)))
                        .collect();
                    n += size;
                    let outcomes = store.commit(batch.clone()).await.unwrap();
                    let mut lines = String::new();
                    for (new, outcome) in batch.iter().zip(outcomes) {
                        let CommitOutcome::Stored { event_id, .. } = outcome else {
                            panic!("unexpected duplicate");
                        };
                        lines.push_str(&format!("ACK {} {}\n", new.message_id, event_id.0));
                    }
                    // Printed only after the commit answered: each line is a promise of
                    // durability the parent checks.
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(lines.as_bytes()).unwrap();
                    stdout.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

fn event(message_id: &str) -> NewEvent {
    NewEvent {
        source_id: "crash-src".to_owned(),
        message_id: message_id.to_owned(),
        received_at: 1_735_689_600_000,
        payload: format!(r#"{{"type":"track","messageId":"{message_id}","event":"x"}}"#)
            .into_bytes(),
        jobs: vec![NewJob {
            destination_id: "dest".to_owned(),
            subscription_id: "sub".to_owned(),
            endpoint: "dest|hooks.example.test".to_owned(),
            method: "POST".to_owned(),
            url: JobUrl::Fixed("https://hooks.example.test/x".to_owned()),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: b"{}".to_vec(),
        }],
        discards: Vec::new(),
        for_profiles: false,
    }
}

/// A small pseudo-random delay from the clock (xorshift), so each round kills at another moment
/// without a dependency on a random crate.
fn random_delay(round: u64) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut x = (u64::from(nanos) ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // Up to 1.5 s: across the moments the writer's recent message keys reach the index file.
    Duration::from_millis(5 + x % 1_500)
}

/// Runs one child on `db` until killed; returns the acknowledged (message id, event id) pairs.
fn run_and_kill(db: &Path, round: u64) -> Vec<(String, i64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, db)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let acks = Arc::clone(&acks);
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            // Only complete lines count: the kill may cut the last one short.
            while stdout.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(ack) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
                    let (message_id, event_id) = ack.split_once(' ').unwrap();
                    let event_id: i64 = event_id.parse().unwrap();
                    acks.lock().unwrap().push((message_id.to_owned(), event_id));
                }
                line.clear();
            }
        })
    };

    // Kill only once the child is committing, then after a random extra moment.
    let started = Instant::now();
    while acks.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the child never acknowledged a commit"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(random_delay(round));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap();
    acks.lock().unwrap().clone()
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // One file across rounds: each later round also starts by recovering the WAL a kill left.
    let db = dir.path().join("junction.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut total = 0usize;
    for round in 0..ROUNDS {
        let acks = run_and_kill(&db, round);
        assert!(!acks.is_empty());
        total += acks.len();
        runtime.block_on(async {
            let store = SqliteStore::open(&db, SqliteOptions::default())
                .await
                .unwrap();
            for (message_id, event_id) in &acks {
                let records = store
                    .events_by_message_id("crash-src", message_id)
                    .await
                    .unwrap();
                assert_eq!(
                    records.len(),
                    1,
                    "acknowledged {message_id} lost in round {round}"
                );
                assert_eq!(records[0].id.0, *event_id);
                assert_eq!(records[0].jobs.len(), 1, "{message_id} lost its job");
                assert_eq!(records[0].jobs[0].transitions.len(), 1);
            }
            // The key index lost what was still in memory; reopening re-indexed it, so the same
            // messages are duplicates again.
            for (message_id, event_id) in acks.iter().step_by(97) {
                let again = store.commit(vec![event(message_id)]).await.unwrap();
                let expected = CommitOutcome::Duplicate {
                    original: junction_store::EventId(*event_id),
                };
                assert_eq!(again, vec![expected], "{message_id} not deduplicated");
            }
            let counts = store.counts().await.unwrap();
            assert!(counts.events >= total as u64, "{counts:?} < {total}");
            assert_eq!(
                counts.jobs, counts.events,
                "an event and its job commit together"
            );
            store.close().await.unwrap();
        });
        eprintln!("round {round}: {} acknowledged events checked", acks.len());
    }
}

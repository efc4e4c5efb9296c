//! Crash safety: concurrent clients send batches while the server is killed with SIGKILL at a
//! random moment; after a restart on the same data directory, every event that had been answered
//! 200 must be stored once, with its job and its discard. Five rounds on one growing database.
//! The seed of the random moments is printed, and `JUNCTION_CRASH_SEED` replays it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use junction_store::{DiscardReason, JobState};
use serde_json::json;

use crate::util::{
    Connection, Running, SAMPLE_SOURCE, SAMPLE_WRITE_KEY, StoredData, kill_hard, start, terminate,
};

const ROUNDS: usize = 5;
const CLIENTS: usize = 4;
const EVENTS_PER_BATCH: usize = 25;
/// A client stops by itself after this long even if the server were never killed.
const CLIENT_DEADLINE: Duration = Duration::from_secs(10);

/// xorshift64*: enough randomness for kill times, and replayable from its seed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn seed() -> u64 {
    if let Some(seed) = std::env::var("JUNCTION_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos) | 1
}

/// One identify call of the batch (the sample workspace routes it to a Send Contact job and a
/// not-matched Send Customer discard).
fn identify(message_id: &str, n: usize) -> serde_json::Value {
    json!({
        "type": "identify",
        "messageId": message_id,
        "userId": format!("user-{n}"),
        "timestamp": "2024-03-01T12:00:00.000Z",
        "traits": {"email": format!("user{n}@example.com"), "name": "Crash Test",
                   "company": {"id": "acme-1", "name": "Acme"}}
    })
}

/// Sends batches on one keep-alive connection until the server goes away (or the deadline);
/// returns the message ids of every batch answered 200 with all its events accepted.
fn client(address: String, round: usize, client: usize) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let Ok(mut connection) = Connection::open(&address, SAMPLE_WRITE_KEY) else {
        return acknowledged;
    };
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < CLIENT_DEADLINE {
        let ids: Vec<String> = (0..EVENTS_PER_BATCH)
            .map(|i| format!("crash-r{round}-c{client}-{}", n + i))
            .collect();
        let batch: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| identify(id, n + i))
            .collect();
        n += EVENTS_PER_BATCH;
        let body = json!({"batch": batch, "sentAt": "2024-03-01T12:00:01.000Z"}).to_string();
        match connection.post("/v1/batch", &body) {
            Ok((200, answer)) => {
                let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
                assert_eq!(answer["accepted"], EVENTS_PER_BATCH, "{answer}");
                acknowledged.extend(ids);
            }
            // 503 under load: not acknowledged, so nothing is promised; go on.
            Ok(_) => {}
            // The server was killed: its answers stop here.
            Err(_) => break,
        }
    }
    acknowledged
}

/// One round: load, SIGKILL after `kill_after`, restart on the same directory, check.
fn round(data: &std::path::Path, round: usize, kill_after: Duration) -> usize {
    let running: Running = start(data, &[]);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let address = running.address.clone();
            let acknowledged = Arc::clone(&acknowledged);
            std::thread::spawn(move || {
                let ids = client(address, round, c);
                acknowledged.lock().unwrap().extend(ids);
            })
        })
        .collect();
    std::thread::sleep(kill_after);
    kill_hard(running);
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        !acknowledged.is_empty(),
        "round {round}: no batch was answered within {kill_after:?}"
    );

    // The restarted server recovers the database and serves again.
    let restarted = start(data, &[]);
    let mut connection = Connection::open(&restarted.address, SAMPLE_WRITE_KEY).unwrap();
    let probe = json!({"batch": [identify(&format!("after-crash-{round}"), 0)]}).to_string();
    assert_eq!(connection.post("/v1/batch", &probe).unwrap().0, 200);
    drop(connection);
    assert!(terminate(restarted), "round {round}: exit 0 on SIGTERM");

    let stored = StoredData::open(data);
    for id in &acknowledged {
        let record = stored.event(SAMPLE_SOURCE, id);
        let context = format!("round {round}, acknowledged {id}: {record:#?}");
        assert_eq!(record.jobs.len(), 1, "{context}");
        let job = &record.jobs[0];
        assert_eq!(job.job.subscription_id, "send-contact", "{context}");
        let body: serde_json::Value = serde_json::from_slice(&job.job.body).unwrap();
        assert_eq!(body["message_id"], id.as_str(), "{context}");
        // Created pending; delivery attempts (to an unreachable webhook) may follow.
        assert_eq!(job.transitions[0].state, JobState::Pending, "{context}");
        assert_eq!(record.discards.len(), 1, "{context}");
        assert_eq!(
            record.discards[0].reason,
            DiscardReason::NotMatched,
            "{context}"
        );
    }
    acknowledged.len()
}

#[test]
fn every_acknowledged_event_survives_sigkill_with_its_jobs() {
    let _shared = crate::util::alongside_others();
    let seed = seed();
    // Printed for a failing run (the harness shows output of failed tests only).
    println!("crash test seed {seed} (replay with JUNCTION_CRASH_SEED={seed})");
    let mut random = Random(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let started = Instant::now();
    let mut total = 0;
    for r in 0..ROUNDS {
        // Late enough for the clients to be answered a few times, early enough that the kill
        // lands while they are busy.
        let kill_after = Duration::from_millis(150 + random.below(650));
        let acknowledged = round(&data, r, kill_after);
        println!("round {r}: killed after {kill_after:?}, {acknowledged} events acknowledged");
        total += acknowledged;
    }
    println!(
        "{ROUNDS} rounds, {total} acknowledged events checked in {:?}",
        started.elapsed()
    );
}

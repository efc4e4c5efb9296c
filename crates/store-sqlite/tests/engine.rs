//! What only the SQLite engine has: its files, the derived message-key index (rebuilt when lost or
//! damaged), schema versions, and checkpointing on close.

// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use junction_store::{CommitOutcome, NewEvent, Store, StoreError};
use junction_store_sqlite::{SqliteOptions, SqliteStore};

const T0: i64 = 1_735_689_600_000;

fn event(message_id: &str, received_at: i64) -> NewEvent {
    NewEvent {
        source_id: "src".to_owned(),
        message_id: message_id.to_owned(),
        received_at,
        payload: br#"{"type":"track"}"#.to_vec(),
        jobs: Vec::new(),
        discards: Vec::new(),
        for_profiles: false,
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default())
        .await
        .expect("open")
}

/// Commits 50 events, closes, lets `damage` act on the files, reopens and checks that every event
/// is still found by message id and still deduplicates.
async fn survives(damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("junction.db");
    let store = open(&path).await;
    let batch: Vec<NewEvent> = (0..50).map(|n| event(&format!("m-{n}"), T0)).collect();
    let outcomes = store.commit(batch).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    damage(&path);

    let store = open(&path).await;
    for (n, outcome) in outcomes.iter().enumerate() {
        let CommitOutcome::Stored { event_id, .. } = outcome else {
            panic!("not stored: {outcome:?}");
        };
        let found = store
            .events_by_message_id("src", &format!("m-{n}"))
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, *event_id);
    }
    let again = store.commit(vec![event("m-7", T0 + 1)]).await.unwrap();
    assert!(
        matches!(again[0], CommitOutcome::Duplicate { .. }),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_the_directory_and_close_folds_the_wal_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("junction.db");
    let store = open(&path).await;
    assert_eq!(store.path(), path);
    let batch: Vec<NewEvent> = (0..500).map(|n| event(&format!("m-{n}"), T0)).collect();
    store.commit(batch).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    assert!(path.exists());
    assert!(sibling(&path, "-keys").exists());
    for wal in [sibling(&path, "-wal"), sibling(&path, "-keys-wal")] {
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert_eq!(size, 0, "{} not checkpointed", wal.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_key_index_is_rebuilt() {
    survives(|path| {
        for suffix in ["-keys", "-keys-wal", "-keys-shm"] {
            let _ = std::fs::remove_file(sibling(path, suffix));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_key_index_is_rebuilt() {
    survives(|path| {
        std::fs::write(sibling(path, "-keys"), vec![0x5a; 8192]).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_index_that_lost_its_last_transactions_catches_up() {
    survives(|path| {
        // What a power cut can do to the index (synchronous=NORMAL): lose its newest entries.
        let conn = rusqlite::Connection::open(sibling(path, "-keys")).unwrap();
        conn.execute_batch(
            "DELETE FROM message_keys WHERE event_id > 20;
             UPDATE watermark SET event_id = 20;",
        )
        .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junction.db");
    drop(open(&path).await);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO migrations (version, name, applied_at) VALUES (?1, 'from the future', 0)",
        [SqliteStore::SCHEMA_VERSION + 1],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .err()
        .expect("a newer schema must be refused");
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junction.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .err()
        .expect("garbage must be refused");
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("junction.db"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_found_before_during_and_after_their_flush_to_the_index() {
    // New keys wait in memory and reach the index file about once a second; dedupe and lookups
    // must see every key at every moment of that hand-over.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("junction.db")).await;
    let started = std::time::Instant::now();
    let mut n = 0usize;
    while started.elapsed() < std::time::Duration::from_millis(2_500) {
        let batch: Vec<NewEvent> = (n..n + 20).map(|i| event(&format!("m-{i}"), T0)).collect();
        store.commit(batch).await.unwrap();
        n += 20;
        // An older message and a fresh one, both as duplicates.
        for old in [n / 2, n - 1] {
            let again = store
                .commit(vec![event(&format!("m-{old}"), T0 + 1)])
                .await
                .unwrap();
            assert!(
                matches!(again[0], CommitOutcome::Duplicate { .. }),
                "m-{old} not deduplicated after {:?}",
                started.elapsed()
            );
            let found = store
                .events_by_message_id("src", &format!("m-{old}"))
                .await
                .unwrap();
            assert_eq!(found.len(), 1, "m-{old} after {:?}", started.elapsed());
        }
    }
    assert!(n > 100);
}

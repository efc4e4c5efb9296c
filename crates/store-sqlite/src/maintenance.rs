//! The maintenance thread, on its own connection: copies recent message keys into the key index
//! file in large sorted batches, and checkpoints the WALs, so that neither runs inside the
//! writer's commits, which are the ingestion bottleneck.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::recent::RecentKeys;

/// How often the thread wakes: often enough that each checkpoint pass copies little.
const TICK: Duration = Duration::from_millis(50);

/// Recent keys are flushed once this many wait, or once the oldest waited [`FLUSH_INTERVAL`]. The
/// larger the batch, the more keys share index pages; the smaller, the less a crash leaves for
/// the next open to re-index and the less memory waits.
const FLUSH_BATCH: usize = 50_000;
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// A WAL longer than this (64 MiB of 4 KiB pages) gets a `RESTART` checkpoint. Passive ones never
/// wait for the writer, so under continuous load they rarely catch up completely and the WAL would
/// never start over; `RESTART` holds the writer for the moment it takes to copy the last frames.
const RESTART_FRAMES: i64 = 16_384;

/// The thread and its stop signal.
pub(crate) struct Maintenance {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Maintenance {
    /// Starts the thread on `conn` (see `connection::open_maintenance`).
    pub(crate) fn start(conn: Connection, recent: Arc<RecentKeys>) -> std::io::Result<Maintenance> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            // Short: Linux shows at most 15 characters of a thread name.
            .name("store-maintain".to_owned())
            .spawn(move || run(&conn, &recent, &thread_stop))?;
        Ok(Maintenance {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread after a last flush and a truncating checkpoint, and waits for it. Call it
    /// once the writer has stopped, so that the last flush holds every key. Idempotent.
    pub(crate) fn stop(&self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, recent: &RecentKeys, stop: &(Mutex<bool>, Condvar)) {
    let (stopped, wake) = stop;
    let mut last_flush = Instant::now();
    let mut guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let (next, _) = wake
            .wait_timeout(guard, TICK)
            .unwrap_or_else(PoisonError::into_inner);
        guard = next;
        let stopping = *guard;
        // Not holding the lock while working, so that `stop` never waits on it.
        drop(guard);
        let due = recent.pending() >= FLUSH_BATCH || last_flush.elapsed() >= FLUSH_INTERVAL;
        if stopping || due {
            // A failed flush (a lock held past the busy timeout, an I/O error) keeps its keys in
            // memory and is retried on the next tick; lookups see them meanwhile.
            match flush(conn, recent) {
                Ok(()) => last_flush = Instant::now(),
                Err(err) => {
                    tracing::warn!(error = %err, "store: writing recent message keys failed")
                }
            }
        }
        if stopping {
            // Leaves small files behind a clean shutdown; failure only leaves WALs that the
            // next open recovers.
            if let Err(err) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
                tracing::warn!(error = %err, "store: final checkpoint failed");
            }
            return;
        }
        for schema in ["main", "keys"] {
            // A failed pass is retried on the next tick; meanwhile the WAL only grows.
            if let Err(err) = checkpoint(conn, schema) {
                tracing::warn!(error = %err, schema, "store: checkpoint failed");
            }
        }
        guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

/// Writes the recent keys into the index file, sorted so that neighbours share pages, with the
/// watermark, in one transaction; then lets the writer forget them.
fn flush(conn: &Connection, recent: &RecentKeys) -> rusqlite::Result<()> {
    let mut pairs = recent.unflushed();
    let Some(upto) = pairs.iter().map(|(event_id, _)| *event_id).max() else {
        return Ok(());
    };
    pairs.sort_unstable_by_key(|&(event_id, key)| (key, event_id));
    // Deferred: the first write takes the lock of `keys` only, never the writer's `main`.
    conn.execute_batch("BEGIN")?;
    let result = (|| {
        let mut insert = conn.prepare_cached(
            // OR IGNORE: re-indexing at open may already have written some of these.
            "INSERT OR IGNORE INTO keys.message_keys (dedupe_key, event_id) VALUES (?1, ?2)",
        )?;
        for (event_id, key) in &pairs {
            insert.execute((key, event_id))?;
        }
        conn.prepare_cached("UPDATE keys.watermark SET event_id = max(event_id, ?1) WHERE id = 1")?
            .execute([upto])?;
        conn.execute_batch("COMMIT")
    })();
    match result {
        Ok(()) => {
            recent.mark_flushed(upto);
            Ok(())
        }
        Err(err) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(err)
        }
    }
}

/// One passive checkpoint of `schema`, then a restarting one if its WAL has grown long.
fn checkpoint(conn: &Connection, schema: &str) -> rusqlite::Result<()> {
    let frames = |mode: &str| {
        let sql = format!("PRAGMA {schema}.wal_checkpoint({mode})");
        // Columns: busy flag, frames in the WAL, frames checkpointed.
        conn.query_row(&sql, [], |row| row.get::<_, i64>(1))
    };
    if frames("PASSIVE")? >= RESTART_FRAMES {
        frames("RESTART")?;
    }
    Ok(())
}

//! Opening connections with the settings each role needs: the writer (WAL, `synchronous=FULL`
//! for power-loss durability), the read-only readers and the maintenance thread. Every connection
//! attaches the message-key index file as schema `keys` (see `migrations` for why it is separate).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::Error;

/// How long a connection waits on a lock before reporting busy: the maintenance thread's
/// occasional `RESTART` checkpoint holds the writer for a moment, and another process (a backup)
/// may hold a lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements each connection keeps compiled: the writer's ingest path uses about a dozen, and
/// readers a handful per query kind.
const STATEMENT_CACHE: usize = 32;

/// The page size of the key index file.
const KEYS_PAGE_SIZE: i64 = 1024;

/// The key index's page cache on the writer's and the maintenance thread's connections, in KiB:
/// lookups and flushes touch random leaves, so a cache much smaller than the index helps little,
/// and one as large as the index costs its size in RSS twice.
const KEYS_CACHE_KIB: i64 = 4 * 1024;

/// The message-key index file beside the database: `junction.db` → `junction.db-keys` (SQLite
/// adds its own `-wal` and `-shm` to both).
pub(crate) fn keys_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-keys");
    PathBuf::from(name)
}

/// The files a store consists of, for removing a damaged index.
pub(crate) fn keys_files(path: &Path) -> [PathBuf; 3] {
    let keys = keys_path(path);
    let with = |suffix: &str| {
        let mut name = keys.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with("-wal"), with("-shm"), keys]
}

fn attach_keys(conn: &Connection, path: &Path) -> Result<(), Error> {
    let keys = keys_path(path);
    let Some(keys) = keys.to_str() else {
        return Err(Error::Corrupt(format!(
            "the path {} is not valid UTF-8",
            keys.display()
        )));
    };
    conn.execute("ATTACH DATABASE ?1 AS keys", [keys])?;
    Ok(())
}

fn set_wal(conn: &Connection, schema: &str) -> Result<(), Error> {
    let sql = format!("PRAGMA {schema}.journal_mode = WAL");
    let mode: String = conn.query_row(&sql, [], |row| row.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(Error::Corrupt(format!(
            "{schema} refused WAL mode (journal_mode is {mode})"
        )))
    }
}

/// Opens (creating) the database and its key index for the writer and applies the durable
/// settings.
pub(crate) fn open_writer(path: &Path, cache_kib: u32) -> Result<Connection, Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The bundled SQLite turns foreign keys on by default; the single writer inserts parents
    // first, and enforcement would cost a parent lookup for every row.
    conn.pragma_update(None, "foreign_keys", false)?;
    // WAL: readers never block the writer nor the writer readers, and a commit is one sequential
    // append plus one fsync.
    set_wal(&conn, "main")?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged event survives power loss
    // (NORMAL would only survive a process crash).
    conn.pragma_update(Some("main"), "synchronous", "FULL")?;
    // Negative means KiB: a larger page cache keeps the B-trees' hot pages in memory.
    conn.pragma_update(None, "cache_size", -i64::from(cache_kib))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoints run on their own thread (see `maintenance`), not inside the writer's commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // After a checkpoint resets it, shrink a WAL that a burst grew beyond 64 MiB.
    conn.pragma_update(Some("main"), "journal_size_limit", 64 * 1024 * 1024)?;

    attach_keys(&conn, path)?;
    // Small pages for the index: once it is much larger than one flush of recent keys, each key
    // still dirties a random leaf of its own, and the whole page goes to the WAL, so 1 KiB pages
    // write a quarter of what 4 KiB ones do (entries are ~16 bytes).
    // Only takes effect when the file is created (set before WAL mode, which fixes it).
    conn.pragma_update(Some("keys"), "page_size", KEYS_PAGE_SIZE)?;
    set_wal(&conn, "keys")?;
    // NORMAL: the index is derived data. After a power loss it may lose its last transactions
    // (never become corrupt); opening re-indexes the events it is missing (`migrations`).
    conn.pragma_update(Some("keys"), "synchronous", "NORMAL")?;
    conn.pragma_update(Some("keys"), "cache_size", -KEYS_CACHE_KIB)?;
    conn.pragma_update(Some("keys"), "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(conn)
}

/// Opens a read-only connection to an existing store (the writer created both files and set WAL,
/// which is persistent). The attached index inherits the read-only flag.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    attach_keys(&conn, path)?;
    Ok(conn)
}

/// Opens the maintenance thread's connection: it checkpoints both files and is the only writer
/// of the key index once the store is open.
pub(crate) fn open_maintenance(path: &Path) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    attach_keys(&conn, path)?;
    // Per connection, so set again here: see `open_writer`.
    conn.pragma_update(Some("keys"), "synchronous", "NORMAL")?;
    conn.pragma_update(Some("keys"), "cache_size", -KEYS_CACHE_KIB)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_sit_beside_the_database() {
        let path = Path::new("/data/junction.db");
        assert_eq!(keys_path(path), Path::new("/data/junction.db-keys"));
        let files = keys_files(path);
        assert_eq!(files[0], Path::new("/data/junction.db-keys-wal"));
        assert_eq!(files[2], Path::new("/data/junction.db-keys"));
    }
}

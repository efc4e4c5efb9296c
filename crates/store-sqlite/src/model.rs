//! How model values become columns and back: the dedupe key hash, header encoding, enum names,
//! and decoding rows into the shared model types.

use std::time::{SystemTime, UNIX_EPOCH};

use junction_store::{
    AttemptRecord, DeadJob, DiscardReason, DiscardRecord, EventId, Job, JobId, JobState,
    JobTransition, JobUrl, UnixMillis,
};
use rusqlite::Row;

use crate::error::Error;

/// The current time in Unix milliseconds. A clock before 1970 or past year 292 million reads as
/// the nearest representable instant rather than failing a commit.
pub(crate) fn now_ms() -> UnixMillis {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The 64-bit FNV-1a hash of (source, messageId), stored as `events.dedupe_key`. It is part of the
/// file format, so it is spelled out here rather than taken from `std` (whose hasher may change
/// between releases). The `0xff` separator cannot occur in UTF-8, so ("ab", "c") and ("a", "bc")
/// hash differently.
pub(crate) fn dedupe_key(source_id: &str, message_id: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = source_id
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(message_id.as_bytes());
    let hash = bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    });
    // SQLite integers are signed; the bit pattern is what matters.
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Headers as a JSON array of `[name, value]` pairs: order and repeated names survive, and the
/// column stays readable with SQLite's JSON functions.
pub(crate) fn encode_headers(headers: &[(String, String)]) -> Result<String, Error> {
    serde_json::to_string(headers)
        .map_err(|err| Error::Corrupt(format!("cannot encode headers: {err}")))
}

fn decode_headers(text: &str) -> Result<Vec<(String, String)>, Error> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(format!("job headers: {err}")))
}

fn decode_state(name: &str) -> Result<JobState, Error> {
    name.parse()
        .map_err(|err| Error::Corrupt(format!("job transition: {err}")))
}

fn decode_reason(name: &str) -> Result<DiscardReason, Error> {
    name.parse()
        .map_err(|err| Error::Corrupt(format!("discard: {err}")))
}

fn decode_u32(value: i64, what: &str) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("{what} out of range: {value}")))
}

/// The columns [`job_from_row`] reads, in order, for `SELECT`s over `jobs`.
pub(crate) const JOB_COLUMNS: &str = "jobs.id, jobs.event_id, jobs.destination_id, \
     jobs.subscription_id, jobs.endpoint, jobs.method, jobs.url, jobs.headers, jobs.body, \
     jobs.created_at, jobs.replay_of";

/// Decodes [`JOB_COLUMNS`] starting at column `at`.
pub(crate) fn job_from_row(row: &Row<'_>, at: usize) -> Result<Job, Error> {
    let headers: String = row.get(at + 7)?;
    Ok(Job {
        id: JobId(row.get(at)?),
        event_id: EventId(row.get(at + 1)?),
        destination_id: row.get(at + 2)?,
        subscription_id: row.get(at + 3)?,
        endpoint: row.get(at + 4)?,
        method: row.get(at + 5)?,
        url: JobUrl::from_stored(row.get(at + 6)?),
        headers: decode_headers(&headers)?,
        body: row.get(at + 8)?,
        created_at: row.get(at + 9)?,
        replay_of: row.get::<_, Option<i64>>(at + 10)?.map(JobId),
    })
}

/// The columns [`transition_from_row`] reads, in order.
pub(crate) const TRANSITION_COLUMNS: &str = "seq, state, at, next_at, attempt, detail";

/// Decodes [`TRANSITION_COLUMNS`].
pub(crate) fn transition_from_row(row: &Row<'_>) -> Result<JobTransition, Error> {
    let state: String = row.get(1)?;
    Ok(JobTransition {
        seq: decode_u32(row.get(0)?, "transition seq")?,
        state: decode_state(&state)?,
        at: row.get(2)?,
        next_at: row.get(3)?,
        attempt: decode_u32(row.get(4)?, "attempt")?,
        detail: row.get(5)?,
    })
}

/// The columns [`discard_from_row`] reads, in order.
pub(crate) const DISCARD_COLUMNS: &str = "destination_id, subscription_id, reason, message";

/// Decodes [`DISCARD_COLUMNS`].
pub(crate) fn discard_from_row(row: &Row<'_>) -> Result<DiscardRecord, Error> {
    let reason: String = row.get(2)?;
    Ok(DiscardRecord {
        destination_id: row.get(0)?,
        subscription_id: row.get(1)?,
        reason: decode_reason(&reason)?,
        message: row.get(3)?,
    })
}

/// The columns [`attempt_from_row`] reads, in order.
pub(crate) const ATTEMPT_COLUMNS: &str = "attempt, started_at, duration_ms, status, error_class, \
     response_headers, response_excerpt";

/// Decodes [`ATTEMPT_COLUMNS`].
pub(crate) fn attempt_from_row(row: &Row<'_>) -> Result<AttemptRecord, Error> {
    let headers: Option<String> = row.get(5)?;
    let status: Option<i64> = row.get(3)?;
    Ok(AttemptRecord {
        attempt: decode_u32(row.get(0)?, "attempt")?,
        started_at: row.get(1)?,
        duration_ms: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        status: status.map(decode_status).transpose()?,
        error_class: row.get(4)?,
        response_headers: match headers {
            Some(text) => decode_headers(&text)?,
            None => Vec::new(),
        },
        response_excerpt: row.get::<_, Option<Vec<u8>>>(6)?.unwrap_or_default(),
    })
}

/// The columns [`dead_job_from_row`] reads, in order, followed by [`JOB_COLUMNS`].
pub(crate) const DEAD_LETTER_COLUMNS: &str = "dead_letter.state, dead_letter.at, \
     dead_letter.attempts, dead_letter.status, dead_letter.error_class, dead_letter.detail, \
     dead_letter.replayed_by";

/// Decodes [`DEAD_LETTER_COLUMNS`] then [`JOB_COLUMNS`].
pub(crate) fn dead_job_from_row(row: &Row<'_>) -> Result<DeadJob, Error> {
    let state: String = row.get(0)?;
    let status: Option<i64> = row.get(3)?;
    Ok(DeadJob {
        state: decode_state(&state)?,
        at: row.get(1)?,
        attempts: decode_u32(row.get(2)?, "attempts")?,
        status: status.map(decode_status).transpose()?,
        error_class: row.get(4)?,
        detail: row.get(5)?,
        replayed_by: row.get::<_, Option<i64>>(6)?.map(JobId),
        job: job_from_row(row, 7)?,
    })
}

fn decode_status(value: i64) -> Result<u16, Error> {
    u16::try_from(value).map_err(|_| Error::Corrupt(format!("HTTP status out of range: {value}")))
}

/// Decodes a stored attempt count.
pub(crate) fn attempt_from_column(value: i64) -> Result<u32, Error> {
    decode_u32(value, "attempt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_key_is_stable_and_separates_fields() {
        // Pinned: the value is stored on disk, so it must never change.
        assert_eq!(dedupe_key("", ""), 0xaf64_724c_8602_eb6e_u64 as i64);
        assert_ne!(dedupe_key("ab", "c"), dedupe_key("a", "bc"));
        assert_eq!(dedupe_key("src", "m-1"), dedupe_key("src", "m-1"));
    }

    #[test]
    fn headers_round_trip_in_order() {
        let headers = vec![
            ("b".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
            ("b".to_owned(), "3".to_owned()),
        ];
        let text = encode_headers(&headers).unwrap();
        assert_eq!(text, r#"[["b","1"],["a","2"],["b","3"]]"#);
        assert_eq!(decode_headers(&text).unwrap(), headers);
        assert!(decode_headers("{").is_err());
    }
}

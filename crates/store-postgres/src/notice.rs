//! What a job notification's payload on [`JOBS_CHANNEL`](crate::JOBS_CHANNEL) says, so that a
//! node's dispatcher can wake the lanes a commit made due without listing every lane.
//!
//! - `\n<due_at>\n<lane>\n<lane>…`: a commit stored jobs due at `due_at` on these lanes;
//! - `<lane>`: jobs of the lane were given back or brought forward (claims of it walk from the
//!   floor again, `cursor.rs`);
//! - empty: jobs may be due anywhere (replays, older nodes' commits).
//!
//! Lane keys never hold a line break (`destination id|host`), and an older node reads a commit's
//! payload as a lane it has no cursor of: it resets nothing that exists and wakes all the same.

use std::collections::BTreeSet;

use junction_store::UnixMillis;

/// PostgreSQL refuses payloads of 8,000 bytes or more; longer lists go as an empty payload.
const MAX_PAYLOAD: usize = 7_900;

/// A job notification, read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Notice<'a> {
    /// Jobs due at `due_at` were committed on `lanes`.
    Due {
        /// When the jobs are due, by the committing node's clock.
        due_at: UnixMillis,
        /// The lanes they are on.
        lanes: Vec<&'a str>,
    },
    /// Jobs of this lane were given back or brought forward.
    Lane(&'a str),
    /// Jobs may be due on any lane.
    Any,
}

/// The payload announcing jobs due at `due_at` on `lanes`.
pub(crate) fn due(lanes: &BTreeSet<String>, due_at: UnixMillis) -> String {
    let mut payload = format!("\n{due_at}");
    for lane in lanes {
        if lane.contains('\n') || payload.len() + 1 + lane.len() > MAX_PAYLOAD {
            return String::new();
        }
        payload.push('\n');
        payload.push_str(lane);
    }
    payload
}

/// Reads a payload; one this node cannot read asks for a listing.
pub(crate) fn read(payload: &str) -> Notice<'_> {
    if payload.is_empty() {
        return Notice::Any;
    }
    let Some(rest) = payload.strip_prefix('\n') else {
        return Notice::Lane(payload);
    };
    let mut parts = rest.split('\n');
    let Some(Ok(due_at)) = parts.next().map(str::parse::<UnixMillis>) else {
        return Notice::Any;
    };
    let lanes: Vec<&str> = parts.collect();
    if lanes.is_empty() || lanes.iter().any(|lane| lane.is_empty()) {
        return Notice::Any;
    }
    Notice::Due { due_at, lanes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_commit_s_lanes_read_back() {
        let payload = due(&lanes(&["b|h.test", "a|h.test"]), 1_700_000_000_123);
        assert_eq!(
            read(&payload),
            Notice::Due {
                due_at: 1_700_000_000_123,
                lanes: vec!["a|h.test", "b|h.test"]
            }
        );
    }

    #[test]
    fn other_payloads_keep_their_meaning() {
        assert_eq!(read(""), Notice::Any);
        assert_eq!(read("dest|h.test"), Notice::Lane("dest|h.test"));
        assert_eq!(read("\nsoon\na|h"), Notice::Any, "unreadable time");
        assert_eq!(read("\n5"), Notice::Any, "no lane");
        assert_eq!(read("\n5\na|h\n"), Notice::Any, "an empty lane");
    }

    #[test]
    fn too_long_a_list_goes_empty() {
        let many: BTreeSet<String> = (0..1_000)
            .map(|n| format!("destination-{n}|h.test"))
            .collect();
        assert_eq!(due(&many, 1), "");
        assert_eq!(read(&due(&many, 1)), Notice::Any);
        assert_eq!(due(&lanes(&["a\nb|h"]), 1), "", "a lane that would split");
    }
}

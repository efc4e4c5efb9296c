//! Where a node's next claim of a lane starts its walk of the lane's index
//! `(endpoint, next_at, job_id)`: just past the rows it claimed last (a cursor), or from a floor
//! below every row that can be due. Neither reads the dead entries completed jobs leave at the
//! lane's head until `VACUUM` (see `queries::claim` and `ARCHITECTURE.md`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// A place in a lane's index: a claim starting there takes rows strictly after it.
pub(crate) type Position = (i64, i64);

/// Before every row of a lane.
pub(crate) const START: Position = (i64::MIN, i64::MIN);

/// How often, in the claims' clock, a claim walks from the floor even though the cursor still
/// fills it: the bound on how long a row due behind the cursor that nothing announced (a lease
/// of a dead node ended, a claim elsewhere rolled back, a commit later than its clock) waits.
/// Within the 2 s the cluster test allows a job to be passed by younger ones.
pub(crate) const WALK_EVERY_MS: i64 = 1_000;

/// How far below the clock of a claim that reached the lane's due end the next claims start,
/// until the next walk from the floor: rows committed this late after their `next_at` was read
/// are still claimed at once; later ones wait for that walk, at most [`WALK_EVERY_MS`]. At a
/// lane's front, where every claim comes back short, this is what a claim reads of completed
/// rows' entries instead of the floor's [`FLOOR_MARGIN_MS`].
pub(crate) const FRONT_MARGIN_MS: i64 = 1_000;

/// How far below its clock a floor is kept at most: rows committed this late after their
/// `next_at` was read (a slow commit, another node's clock behind) are still above it.
pub(crate) const FLOOR_MARGIN_MS: i64 = 10_000;

/// How long a floor is trusted before a walk from the lane's very start finds it again: the
/// bound for rows that arrived below it anyway (a clock more than the margin behind).
pub(crate) const FLOOR_TTL_MS: i64 = 60_000;

/// What one claim does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Where the claim starts: the cursor, or the floor when `walk`.
    pub(crate) from: Position,
    /// Whether the claim starts from the floor (nothing due is below it) or from just below the
    /// lane's due end: either way, one that comes back short is not followed by a claim from the
    /// floor. Otherwise it starts from the cursor, and is.
    pub(crate) walk: bool,
    /// The floor, where a cursor claim that comes back short walks for the rest.
    pub(crate) floor: Position,
    /// Whether to look for the lane's first row after the claim, to raise the floor.
    pub(crate) refresh_floor: bool,
    epoch: u64,
}

#[derive(Debug)]
struct LaneCursor {
    /// Just past the last row a claim that came back full took; `None`: walk from the floor.
    after: Option<Position>,
    /// The clock of the last claim that came back short (it reached the lane's due end), while
    /// nothing was given back since: the next claims start [`FRONT_MARGIN_MS`] below it.
    due_end: Option<i64>,
    /// No row that can be due lies at or below it.
    floor: Position,
    /// When (claims' clock) the floor was found; `None` while it is the lane's start.
    floor_at: Option<i64>,
    /// When the last walk from the floor started.
    walked_at: Option<i64>,
    /// Bumped by every reset, so that a claim begun before one does not set the cursor again.
    epoch: u64,
}

impl LaneCursor {
    fn new() -> LaneCursor {
        LaneCursor {
            after: None,
            due_end: None,
            floor: START,
            floor_at: None,
            walked_at: None,
            epoch: 0,
        }
    }
}

/// Whether `since` is at least `every` before `now`; a clock that went back counts as elapsed.
fn elapsed(since: Option<i64>, now: i64, every: i64) -> bool {
    since.is_none_or(|at| now < at || now.saturating_sub(at) >= every)
}

/// The cursors and floors of every lane this node claims from.
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    lanes: Mutex<HashMap<String, LaneCursor>>,
}

impl Cursors {
    fn with_lane<T>(&self, lane: &str, f: impl FnOnce(&mut LaneCursor) -> T) -> T {
        // A panic elsewhere while the lock was held leaves plain data: still usable.
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cursor) = lanes.get_mut(lane) {
            return f(cursor);
        }
        f(lanes.entry(lane.to_owned()).or_insert_with(LaneCursor::new))
    }

    /// Decides where a claim of `lane` at `now` starts.
    pub(crate) fn plan(&self, lane: &str, now: i64) -> Plan {
        self.with_lane(lane, |c| {
            if elapsed(c.floor_at, now, FLOOR_TTL_MS) {
                c.floor = START;
                c.floor_at = None;
            }
            let refresh_floor = elapsed(c.floor_at, now, WALK_EVERY_MS);
            let between_walks = !elapsed(c.walked_at, now, WALK_EVERY_MS);
            match (c.after, c.due_end) {
                (Some(after), _) if between_walks => Plan {
                    from: after,
                    walk: false,
                    floor: c.floor,
                    refresh_floor: false,
                    epoch: c.epoch,
                },
                (None, Some(end)) if between_walks => Plan {
                    from: c.floor.max((end.saturating_sub(FRONT_MARGIN_MS), i64::MIN)),
                    walk: true,
                    floor: c.floor,
                    refresh_floor: false,
                    epoch: c.epoch,
                },
                _ => {
                    // Other claims meanwhile go on from the cursor: one walk per interval.
                    c.walked_at = Some(now);
                    Plan {
                        from: c.floor,
                        walk: true,
                        floor: c.floor,
                        refresh_floor,
                        epoch: c.epoch,
                    }
                }
            }
        })
    }

    /// Records what a claim planned by `plan` at `now` took: the last row, and whether it took
    /// as many as it asked for. A claim that came back short has reached the lane's due end: the
    /// next ones start just below it, until the next walk from the floor.
    pub(crate) fn claimed(
        &self,
        lane: &str,
        plan: &Plan,
        now: i64,
        last: Option<Position>,
        full: bool,
    ) {
        self.with_lane(lane, |c| {
            if c.epoch != plan.epoch {
                return;
            }
            c.after = match (full, last) {
                (true, Some(last)) => Some(c.after.map_or(last, |after| after.max(last))),
                _ => None,
            };
            if c.after.is_none() {
                c.due_end = Some(c.due_end.map_or(now, |end| end.max(now)));
            }
        });
    }

    /// Raises the floor after a look at the lane at `now` found `first` as its first row (live,
    /// leased or not): below it and below `now` less the margin, whichever is lower.
    pub(crate) fn floor_found(&self, lane: &str, now: i64, first: Option<Position>) {
        let by_clock = (now.saturating_sub(FLOOR_MARGIN_MS), i64::MIN);
        let floor = first.map_or(by_clock, |(next_at, job_id)| {
            by_clock.min((next_at, job_id.saturating_sub(1)))
        });
        self.with_lane(lane, |c| {
            c.floor = floor;
            c.floor_at = Some(now);
        });
    }

    /// Rows of `lane` may be due behind the cursor (given back, brought forward): the next
    /// claim walks from the floor.
    pub(crate) fn reset(&self, lane: &str) {
        self.with_lane(lane, |c| {
            c.after = None;
            c.due_end = None;
            c.epoch = c.epoch.wrapping_add(1);
        });
    }

    /// As [`Cursors::reset`] for every lane (notifications may have been missed).
    pub(crate) fn reset_all(&self) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        for c in lanes.values_mut() {
            c.after = None;
            c.due_end = None;
            c.epoch = c.epoch.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANE: &str = "dest|hooks.example.test";

    #[test]
    fn the_first_claim_walks_from_the_start_and_a_full_one_leaves_a_cursor() {
        let cursors = Cursors::default();
        let now = 100_000;
        let plan = cursors.plan(LANE, now);
        assert!(plan.walk && plan.refresh_floor);
        assert_eq!(plan.from, START);
        cursors.claimed(LANE, &plan, now, Some((5, 7)), true);
        cursors.floor_found(LANE, now, Some((5, 3)));
        let next = cursors.plan(LANE, now + 100);
        assert!(!next.walk);
        assert_eq!(next.from, (5, 7));
        assert_eq!(next.floor, (5, 2), "just below the first row");
    }

    #[test]
    fn short_claims_resets_and_the_interval_send_claims_to_the_floor() {
        let cursors = Cursors::default();
        let plan = cursors.plan(LANE, 0);
        cursors.claimed(LANE, &plan, 0, Some((5, 7)), false);
        assert!(cursors.plan(LANE, 1).walk, "short: at the due end");

        let plan = cursors.plan(LANE, 2);
        cursors.claimed(LANE, &plan, 2, Some((6, 8)), true);
        assert!(!cursors.plan(LANE, 3).walk);
        cursors.reset(LANE);
        assert!(cursors.plan(LANE, 4).walk, "given back behind the cursor");

        let plan = cursors.plan(LANE, 5);
        cursors.claimed(LANE, &plan, 5, Some((6, 8)), true);
        assert!(!cursors.plan(LANE, 5 + WALK_EVERY_MS - 1).walk);
        assert!(
            cursors.plan(LANE, 5 + WALK_EVERY_MS).walk,
            "bounded staleness"
        );
        assert!(cursors.plan(LANE, 0).walk, "a clock gone back");
    }

    #[test]
    fn after_a_short_claim_the_next_ones_start_just_below_the_due_end() {
        let cursors = Cursors::default();
        let now = 100_000;
        let plan = cursors.plan(LANE, now);
        cursors.claimed(LANE, &plan, now, Some((now - 3, 7)), false);
        cursors.floor_found(LANE, now, Some((now - 3, 7)));
        let next = cursors.plan(LANE, now + 10);
        assert!(next.walk, "short again: no second claim from the floor");
        assert!(!next.refresh_floor);
        assert_eq!(next.from, (now - FRONT_MARGIN_MS, i64::MIN));
        assert_eq!(next.floor, (now - FLOOR_MARGIN_MS, i64::MIN));
        cursors.claimed(LANE, &next, now + 10, None, false);
        assert_eq!(
            cursors.plan(LANE, now + 20).from,
            (now + 10 - FRONT_MARGIN_MS, i64::MIN),
            "the end moves with the claims"
        );
        let walk = cursors.plan(LANE, now + WALK_EVERY_MS);
        assert_eq!(walk.from, walk.floor, "from the floor once per interval");

        cursors.reset(LANE);
        let after_reset = cursors.plan(LANE, now + WALK_EVERY_MS + 1);
        assert_eq!(
            after_reset.from, after_reset.floor,
            "given back: from the floor"
        );
    }

    #[test]
    fn a_claim_begun_before_a_reset_does_not_set_the_cursor_again() {
        let cursors = Cursors::default();
        let plan = cursors.plan(LANE, 0);
        cursors.reset(LANE);
        cursors.claimed(LANE, &plan, 0, Some((6, 8)), true);
        assert!(cursors.plan(LANE, 1).walk);
    }

    #[test]
    fn the_floor_stays_below_the_clock_margin_and_expires() {
        let cursors = Cursors::default();
        let now = 100_000;
        cursors.floor_found(LANE, now, Some((now, 9)));
        let plan = cursors.plan(LANE, now);
        assert_eq!(plan.floor, (now - FLOOR_MARGIN_MS, i64::MIN));
        cursors.floor_found(LANE, now, None);
        assert_eq!(
            cursors.plan(LANE, now).floor,
            (now - FLOOR_MARGIN_MS, i64::MIN)
        );
        let later = cursors.plan(LANE, now + FLOOR_TTL_MS);
        assert_eq!(later.floor, START, "found again from the lane's start");
        assert!(later.refresh_floor);
    }
}

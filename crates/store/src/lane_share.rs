//! The arithmetic of a lane's cluster-wide flow control, for engines that share lanes between
//! nodes (see [`Store::sync_lane`](crate::Store::sync_lane)). An engine keeps one
//! [`SharedLane`] per lane and one [`PeerShare`] per node using it, and calls [`settle`] with the
//! lane locked; storing the results back is its business.
//!
//! - **Shared AIMD.** The limit starts at the configured maximum. A halving reported against the
//!   current epoch halves it (never below 1) and starts a new epoch; one reported against an older
//!   epoch answered an overload already halved for (each node sees its own 429s from the same
//!   burst) and is ignored. Successes from every node add up; each `limit` of them raises the
//!   limit by one, up to the maximum.
//! - **Shares.** A node is granted what it wants out of what the other live nodes do not hold.
//!   While some other node wants more than it holds, the grant is capped at a fair share
//!   (`limit` divided among the nodes with work: rounded up, or down while a waiting node holds
//!   less than that), so a node that came first gives way within a report or two and no node
//!   starves. What a node holds is its grant, or what it may have in flight
//!   until it hears back if more (attempts cannot be recalled, and it may start up to its old
//!   share while the report travels), so the holdings of live nodes bound what is really in
//!   flight and a share shrinks over two reports.
//! - **Pause.** The longest `Retry-After` any node reported pauses the lane for every node.

use crate::{LaneGrant, LaneReport, UnixMillis};

/// The shared state of one lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedLane {
    /// The shared adaptive limit, in `1..=max_concurrency`.
    pub limit: u32,
    /// The configured maximum the limit was last settled against.
    pub max_concurrency: u32,
    /// Bumped at every halving.
    pub epoch: u64,
    /// Successes counted towards the next raise.
    pub successes: u32,
    /// Until when the lane is paused (the engine's clock, Unix milliseconds).
    pub paused_until: UnixMillis,
}

impl SharedLane {
    /// A lane nobody has used yet: at its configured maximum, not paused.
    pub fn new(max_concurrency: u32) -> Self {
        let max = max_concurrency.max(1);
        SharedLane {
            limit: max,
            max_concurrency: max,
            epoch: 0,
            successes: 0,
            paused_until: 0,
        }
    }
}

/// Another node's live use of the lane (its lease has not ended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerShare {
    /// What it holds: its grant, or its attempts in flight if more.
    pub held: u32,
    /// What it last said it could use.
    pub want: u32,
}

/// What the reporting node now holds, to be stored as its [`PeerShare`] with a lease of
/// `report.lease_ms`.
pub type Holding = PeerShare;

/// Applies `report` to `lane` at `now` (the engine's clock) given the other live nodes, and
/// answers the reporting node's grant and what it now holds.
pub fn settle(
    lane: &mut SharedLane,
    report: &LaneReport,
    others: &[PeerShare],
    now: UnixMillis,
) -> (LaneGrant, Holding) {
    let max = report.max_concurrency.max(1);
    // A lane running at its old maximum moves to a new one (it was healthy); one backed off
    // keeps its limit, lowered to the new maximum if above it.
    if lane.limit >= lane.max_concurrency {
        lane.limit = max;
    }
    lane.limit = lane.limit.clamp(1, max);
    lane.max_concurrency = max;

    if report.halved && report.epoch == lane.epoch {
        lane.limit = (lane.limit / 2).max(1);
        lane.epoch += 1;
        lane.successes = 0;
    } else if !report.halved {
        lane.successes = lane.successes.saturating_add(report.successes);
        while lane.limit < max && lane.successes >= lane.limit {
            lane.successes -= lane.limit;
            lane.limit += 1;
        }
        if lane.limit >= max {
            lane.successes = 0;
        }
    }
    let pause_end = now.saturating_add(i64::try_from(report.paused_ms).unwrap_or(i64::MAX));
    lane.paused_until = lane.paused_until.max(pause_end);

    let others_held: u32 = others.iter().map(|peer| peer.held).sum();
    let with_work = 1 + others
        .iter()
        .filter(|peer| peer.want > 0 || peer.held > 0)
        .count();
    let with_work = u32::try_from(with_work).unwrap_or(u32::MAX);
    // The limit rarely divides evenly: nodes may hold the rounded-up part, unless another node
    // waits below the rounded-down part (then everyone gives way to it down to that).
    let floor = (lane.limit / with_work).max(1);
    let ceiling = lane.limit.div_ceil(with_work);
    let waiting = |peer: &&PeerShare| peer.want > peer.held;
    let cap = if others.iter().filter(waiting).any(|peer| peer.held < floor) {
        floor
    } else if others.iter().any(|peer| waiting(&peer)) {
        ceiling
    } else {
        lane.limit
    };
    let share = report
        .want
        .min(cap)
        .min(lane.limit.saturating_sub(others_held));
    let grant = LaneGrant {
        limit: lane.limit,
        share,
        epoch: lane.epoch,
        paused_ms: u64::try_from(lane.paused_until.saturating_sub(now)).unwrap_or(0),
    };
    let holding = PeerShare {
        held: share.max(report.in_flight_bound),
        want: report.want,
    };
    (grant, holding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(want: u32, in_flight: u32) -> LaneReport {
        LaneReport {
            endpoint: "cm|example.com".to_owned(),
            node: "a".to_owned(),
            max_concurrency: 20,
            in_flight_bound: in_flight,
            want,
            epoch: 0,
            halved: false,
            successes: 0,
            paused_ms: 0,
            lease_ms: 5_000,
        }
    }

    fn peer(held: u32, want: u32) -> PeerShare {
        PeerShare { held, want }
    }

    #[test]
    fn a_lone_node_gets_what_it_wants_up_to_the_limit() {
        let mut lane = SharedLane::new(20);
        let (grant, holding) = settle(&mut lane, &report(50, 0), &[], 0);
        assert_eq!((grant.limit, grant.share, holding.held), (20, 20, 20));
        let (grant, holding) = settle(&mut lane, &report(3, 0), &[], 0);
        assert_eq!((grant.share, holding.held), (3, 3));
    }

    #[test]
    fn shares_never_add_up_to_more_than_the_limit() {
        let mut lane = SharedLane::new(20);
        let (grant, _) = settle(&mut lane, &report(20, 0), &[peer(15, 15)], 0);
        assert_eq!(grant.share, 5, "only what the other node does not hold");
        let (grant, _) = settle(&mut lane, &report(20, 0), &[peer(15, 15), peer(5, 5)], 0);
        assert_eq!(grant.share, 0);
    }

    #[test]
    fn a_node_that_came_first_gives_way_to_one_waiting() {
        let mut lane = SharedLane::new(20);
        // A holds everything; B arrives and gets nothing yet, but says it wants 20.
        let (b, _) = settle(&mut lane, &report(20, 0), &[peer(20, 20)], 0);
        assert_eq!(b.share, 0);
        // A's next report sees B waiting: A is cut to the fair share, holding its attempts in
        // flight until they finish.
        let (a, a_holds) = settle(&mut lane, &report(20, 20), &[peer(0, 20)], 0);
        assert_eq!((a.share, a_holds.held), (10, 20));
        // Once A's attempts beyond its share have finished, B gets the rest.
        let (_, a_holds) = settle(&mut lane, &report(20, 10), &[peer(0, 20)], 0);
        assert_eq!(a_holds.held, 10);
        let (b, _) = settle(&mut lane, &report(20, 0), &[peer(a_holds.held, 20)], 0);
        assert_eq!(b.share, 10);
    }

    #[test]
    fn fair_shares_round_up_only_while_nobody_waits_below_the_rounded_down_part() {
        let mut lane = SharedLane::new(20);
        // A node holds nothing and waits: A gets the rounded-down part.
        let (a, _) = settle(&mut lane, &report(20, 0), &[peer(7, 20), peer(0, 20)], 0);
        assert_eq!(a.share, 6);
        // Nobody below 6: C may take the rounded-up 7, which fits.
        let (c, _) = settle(&mut lane, &report(20, 0), &[peer(7, 20), peer(6, 20)], 0);
        assert_eq!(c.share, 7);
    }

    /// Many nodes asking in turn, as their reports arrive: every node ends with a part, the parts
    /// never add up to more than the limit, and little of the limit stays unused.
    #[test]
    fn shares_converge_to_a_part_for_every_node() {
        for nodes in 2..=8 {
            let mut lane = SharedLane::new(20);
            let mut held = vec![PeerShare { held: 0, want: 20 }; nodes];
            for round in 0..10 * nodes {
                let me = round % nodes;
                let others: Vec<PeerShare> =
                    (0..nodes).filter(|n| *n != me).map(|n| held[n]).collect();
                // Attempts beyond a lowered share have finished by the next report.
                let (grant, holding) = settle(&mut lane, &report(20, 0), &others, 0);
                held[me] = holding;
                assert_eq!(grant.share, holding.held);
                let total: u32 = held.iter().map(|peer| peer.held).sum();
                assert!(total <= 20, "{nodes} nodes hold {total}");
            }
            let total: u32 = held.iter().map(|peer| peer.held).sum();
            assert!(
                held.iter().all(|peer| peer.held >= 20 / nodes as u32),
                "{nodes} nodes: {held:?}"
            );
            assert!(
                total >= 20 - nodes as u32,
                "{nodes} nodes use {total} of 20"
            );
        }
    }

    #[test]
    fn one_overload_halves_once_whichever_nodes_saw_it() {
        let mut lane = SharedLane::new(20);
        let mut halved = report(20, 0);
        halved.halved = true;
        let (grant, _) = settle(&mut lane, &halved, &[], 0);
        assert_eq!((grant.limit, grant.epoch), (10, 1));
        // Another node halved for the same burst before it heard of epoch 1.
        let (grant, _) = settle(&mut lane, &halved, &[], 0);
        assert_eq!((grant.limit, grant.epoch), (10, 1));
        // A new overload, seen after epoch 1, halves again.
        halved.epoch = 1;
        let (grant, _) = settle(&mut lane, &halved, &[], 0);
        assert_eq!((grant.limit, grant.epoch), (5, 2));
        let mut floor = halved.clone();
        for epoch in 2..10 {
            floor.epoch = epoch;
            settle(&mut lane, &floor, &[], 0);
        }
        assert_eq!(lane.limit, 1, "never below one");
    }

    #[test]
    fn successes_of_all_nodes_raise_the_limit_additively() {
        let mut lane = SharedLane::new(20);
        lane.limit = 4;
        let mut ok = report(20, 0);
        ok.successes = 3;
        assert_eq!(settle(&mut lane, &ok, &[], 0).0.limit, 4);
        ok.successes = 1;
        assert_eq!(
            settle(&mut lane, &ok, &[], 0).0.limit,
            5,
            "4 successes at limit 4"
        );
        ok.successes = 5 + 6 + 2;
        assert_eq!(settle(&mut lane, &ok, &[], 0).0.limit, 7);
        ok.successes = 1_000;
        assert_eq!(
            settle(&mut lane, &ok, &[], 0).0.limit,
            20,
            "up to the maximum"
        );
        assert_eq!(lane.successes, 0);
    }

    #[test]
    fn the_longest_retry_after_pauses_every_node() {
        let mut lane = SharedLane::new(20);
        let mut paused = report(20, 0);
        paused.paused_ms = 2_000;
        assert_eq!(settle(&mut lane, &paused, &[], 10_000).0.paused_ms, 2_000);
        // Another node, 500 ms later, with no pause of its own, is paused too.
        let (grant, _) = settle(&mut lane, &report(20, 0), &[], 10_500);
        assert_eq!(grant.paused_ms, 1_500);
        assert_eq!(
            settle(&mut lane, &report(20, 0), &[], 13_000).0.paused_ms,
            0
        );
    }

    #[test]
    fn a_new_maximum_moves_a_healthy_lane_and_caps_a_backed_off_one() {
        let mut lane = SharedLane::new(20);
        let mut raised = report(20, 0);
        raised.max_concurrency = 30;
        assert_eq!(settle(&mut lane, &raised, &[], 0).0.limit, 30);
        lane.limit = 12;
        let mut lowered = report(20, 0);
        lowered.max_concurrency = 8;
        assert_eq!(settle(&mut lane, &lowered, &[], 0).0.limit, 8);
        lane.limit = 3;
        assert_eq!(settle(&mut lane, &lowered, &[], 0).0.limit, 3);
    }
}

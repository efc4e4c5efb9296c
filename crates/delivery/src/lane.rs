//! Per-endpoint flow control: how many attempts a lane may start now, and when to look again.
//!
//! Pure: time comes in as an [`Instant`], nothing sleeps or spawns. The engine asks
//! [`LaneControl::room`], starts that many attempts with [`LaneControl::start`], hands each
//! [`Slot`] back to [`LaneControl::finish`] with the attempt's [`Verdict`], and sleeps until
//! `wake_at` (or until an attempt finishes, or a job arrives) when there is no room.
//!
//! Three limits apply at once:
//!
//! - **Adaptive concurrency (AIMD).** The lane's limit starts at `max_concurrency`. Each run of
//!   `limit` consecutive-or-not successes raises it by one (additive increase: about +1 per
//!   "round" of requests, as TCP congestion avoidance does), up to `max_concurrency`. An overload
//!   signal (429, 503, timeout) halves it, never below 1 (multiplicative decrease). Attempts that
//!   were already in flight when the limit was halved do not halve it again: they were sent under
//!   the old limit, and a burst of 20 failures answering one overload must not collapse the
//!   limit to 1. Each halving starts a new *epoch*; a [`Slot`] remembers the epoch it started in.
//! - **Rate limit (token bucket).** With `rate_limit = r` requests per second the bucket holds at
//!   most `burst = max(1, r)` tokens, refills at `r` per second and starts full; each attempt
//!   takes one token. So a lane sends at most `burst + r × t` requests in any `t` seconds.
//! - **Pause.** A `Retry-After` from the endpoint pauses the whole lane until `now + retry_after`:
//!   no attempt starts before, whichever job it is for.
//! - **Probing a failing endpoint.** Once the limit is down to one and attempts keep failing,
//!   each next attempt (a probe) waits a little longer after the previous one started (100 ms,
//!   doubling with each probe, at most [`MAX_PROBE_GAP`]): a failing endpoint is probed, not
//!   hammered, and its recovery is still noticed within seconds.
//!
//! In a cluster ([`LaneControl::shared`]) the lane is one of several nodes' views of the same
//! endpoint. The node then also keeps within the *share* of the lane it was last granted, reports
//! its halvings, successes and pauses with [`LaneControl::report`] instead of raising its limit
//! itself, and adopts the shared limit and pause from each grant ([`LaneControl::adopt`]). A
//! halving still applies locally at once, so a node backs off before its next report.

use std::time::{Duration, Instant};

use crate::Verdict;

/// Tokens within this of a whole token count as whole: refilling by `rate × elapsed` in floating
/// point can land a hair below 1 at exactly the wake-up time, which would make the engine spin.
const TOKEN_EPSILON: f64 = 1e-9;

/// The longest wait between attempts on a lane whose endpoint keeps failing.
pub const MAX_PROBE_GAP: Duration = Duration::from_secs(5);

/// The first wait between attempts on a failing lane; it doubles with each further failure.
const FIRST_PROBE_GAP: Duration = Duration::from_millis(100);

/// The configured limits of one lane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneLimits {
    /// Attempts in flight at most (the adaptive limit never exceeds it). 0 is taken as 1.
    pub max_concurrency: u32,
    /// Attempts started per second at most; `None` (or a value that is not a positive finite
    /// number) means unlimited.
    pub rate_limit: Option<f64>,
}

impl Default for LaneLimits {
    fn default() -> Self {
        // ChartMogul documents 20 parallel requests per account (design §3).
        Self {
            max_concurrency: 20,
            rate_limit: None,
        }
    }
}

impl LaneLimits {
    fn max_concurrency(&self) -> u32 {
        self.max_concurrency.max(1)
    }

    fn rate(&self) -> Option<f64> {
        self.rate_limit
            .filter(|rate| rate.is_finite() && *rate > 0.0)
    }
}

/// How many attempts may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Attempts that may start now.
    pub available: u32,
    /// When `available` is 0 because of time (pause, rate limit): when to look again. `None`
    /// when only a finishing attempt can make room (or when there is room now).
    pub wake_at: Option<Instant>,
}

/// An attempt's hold on a lane slot, from [`LaneControl::start`] until it is handed back to
/// [`LaneControl::finish`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a slot must be handed back to LaneControl::finish, or the lane loses capacity"]
pub struct Slot {
    epoch: u64,
}

/// The flow-control state of one lane (see the module documentation for the algorithm).
#[derive(Debug, Clone)]
pub struct LaneControl {
    limits: LaneLimits,
    /// The adaptive concurrency limit, in `1..=max_concurrency`.
    limit: u32,
    in_flight: u32,
    /// Successes since the limit last rose (or fell).
    successes: u32,
    /// Bumped at every halving, so that attempts started before it do not halve again.
    epoch: u64,
    /// Whole and partial tokens; below zero when attempts started without room (a debt).
    tokens: f64,
    refilled_at: Instant,
    paused_until: Option<Instant>,
    /// Retryable failures since the last success.
    failures: u32,
    /// Attempts started as probes (limit down to one, failing) since the last success.
    probes: u32,
    /// When the last attempt started (to space probes of a failing endpoint).
    last_started: Option<Instant>,
    /// In a cluster: the attempts this node may have in flight, and what it has not reported yet.
    cluster: Option<ClusterView>,
}

/// A node's view of a lane shared by a cluster.
#[derive(Debug, Clone, Default)]
struct ClusterView {
    /// The attempts this node may have in flight (0 until the first grant).
    share: u32,
    /// The shared limit's epoch at the last grant.
    shared_epoch: u64,
    /// A halving since the last report.
    halved: bool,
    /// Successes since the last report.
    successes: u32,
}

/// What a node tells the cluster about its lane (see [`LaneControl::report`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneUsage {
    /// Attempts in flight.
    pub in_flight: u32,
    /// The shared epoch the halving (if any) answered.
    pub epoch: u64,
    /// An overload halved the limit since the last report.
    pub halved: bool,
    /// Successes since the last report.
    pub successes: u32,
    /// How much longer the lane is paused here.
    pub paused_for: Duration,
}

impl LaneControl {
    /// A lane with a full token bucket and its limit at `max_concurrency`.
    pub fn new(limits: LaneLimits, now: Instant) -> Self {
        Self {
            limits,
            limit: limits.max_concurrency(),
            in_flight: 0,
            successes: 0,
            epoch: 0,
            tokens: burst(limits.rate()),
            refilled_at: now,
            paused_until: None,
            failures: 0,
            probes: 0,
            last_started: None,
            cluster: None,
        }
    }

    /// A lane shared with other nodes: like [`new`](Self::new), but nothing starts before the
    /// first grant ([`adopt`](Self::adopt)).
    pub fn shared(limits: LaneLimits, now: Instant) -> Self {
        Self {
            cluster: Some(ClusterView::default()),
            ..Self::new(limits, now)
        }
    }

    /// The attempts this node may have in flight: its limit, or its share of a shared lane if
    /// lower.
    pub fn effective_limit(&self) -> u32 {
        match &self.cluster {
            Some(cluster) => self.limit.min(cluster.share),
            None => self.limit,
        }
    }

    /// Whether a halving happened since the last [`report`](Self::report) (worth reporting at
    /// once, so that the other nodes back off too).
    pub fn has_news(&self) -> bool {
        self.cluster.as_ref().is_some_and(|cluster| cluster.halved)
    }

    /// Takes what happened since the last report, for the cluster.
    pub fn report(&mut self, now: Instant) -> LaneUsage {
        let paused_for = self
            .paused_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        let (epoch, halved, successes) = match &mut self.cluster {
            Some(cluster) => (
                cluster.shared_epoch,
                std::mem::take(&mut cluster.halved),
                std::mem::take(&mut cluster.successes),
            ),
            None => (0, false, 0),
        };
        LaneUsage {
            in_flight: self.in_flight,
            epoch,
            halved,
            successes,
            paused_for,
        }
    }

    /// Applies a grant of the cluster: the shared limit (a fall counts as a halving here too, so
    /// that attempts started before it do not halve again), this node's share, the shared pause.
    /// Does nothing on a lane that is not shared.
    pub fn adopt(
        &mut self,
        limit: u32,
        share: u32,
        epoch: u64,
        paused_for: Duration,
        now: Instant,
    ) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let limit = limit.clamp(1, self.limits.max_concurrency());
        if limit < self.limit {
            self.epoch += 1;
        }
        self.limit = limit;
        cluster.share = share;
        cluster.shared_epoch = epoch;
        if let Some(until) = now
            .checked_add(paused_for)
            .filter(|_| !paused_for.is_zero())
        {
            self.paused_until = Some(self.paused_until.map_or(until, |old| old.max(until)));
        }
    }

    /// Withdraws this node's share (its grant is too old to rely on: the other nodes may have
    /// taken it back). Attempts in flight finish; no new one starts before the next grant.
    pub fn revoke_share(&mut self) {
        if let Some(cluster) = &mut self.cluster {
            cluster.share = 0;
        }
    }

    /// Applies changed limits. A lane running at its old maximum moves to the new one (it was
    /// healthy); a lane backed off keeps its limit, lowered to the new maximum if above it. The
    /// bucket keeps its tokens, capped at the new burst.
    pub fn set_limits(&mut self, limits: LaneLimits) {
        let at_maximum = self.limit >= self.limits.max_concurrency();
        self.limit = if at_maximum {
            limits.max_concurrency()
        } else {
            self.limit.min(limits.max_concurrency())
        };
        if self.limits.rate().is_none() {
            // Coming from unlimited: start with a full bucket, as a new lane does.
            self.tokens = burst(limits.rate());
        }
        self.tokens = self.tokens.min(burst(limits.rate()));
        self.limits = limits;
    }

    /// The configured limits.
    pub fn limits(&self) -> LaneLimits {
        self.limits
    }

    /// Attempts started and not yet finished.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The current adaptive concurrency limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Until when the lane is paused by a `Retry-After`, if it was ever paused (the instant may be
    /// past).
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Whether the endpoint's last answered attempt failed in a retryable way (no success since).
    pub fn failing(&self) -> bool {
        self.failures > 0
    }

    /// When the next probe of a failing endpoint may start, if the lane is probing: its limit is
    /// down to one, nothing is in flight, and attempts kept failing.
    fn probe_at(&self) -> Option<Instant> {
        if !self.probing() || self.probes == 0 {
            return None;
        }
        let doublings = (self.probes - 1).min(16);
        let gap = FIRST_PROBE_GAP
            .saturating_mul(1 << doublings)
            .min(MAX_PROBE_GAP);
        self.last_started.map(|started| started + gap)
    }

    /// Whether an attempt starting now is a probe of a failing endpoint.
    fn probing(&self) -> bool {
        self.failures > 0 && self.effective_limit() <= 1 && self.in_flight == 0
    }

    /// How many attempts may start at `now`, and when to look again if none may because of time.
    pub fn room(&mut self, now: Instant) -> Room {
        self.refill(now);
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return Room {
                available: 0,
                wake_at: Some(until),
            };
        }
        if let Some(at) = self.probe_at().filter(|at| *at > now) {
            return Room {
                available: 0,
                wake_at: Some(at),
            };
        }
        let free_slots = self.effective_limit().saturating_sub(self.in_flight);
        if free_slots == 0 {
            return Room {
                available: 0,
                wake_at: None,
            };
        }
        let Some(rate) = self.limits.rate() else {
            return Room {
                available: free_slots,
                wake_at: None,
            };
        };
        let whole_tokens = (self.tokens + TOKEN_EPSILON).floor();
        if whole_tokens < 1.0 {
            let missing = 1.0 - self.tokens;
            // A rate this slow that the wait does not fit a Duration: look again in a day.
            let wait = Duration::try_from_secs_f64(missing / rate)
                .unwrap_or(Duration::from_secs(24 * 60 * 60));
            return Room {
                available: 0,
                wake_at: Some(now + wait),
            };
        }
        // The float-to-int `as` saturates; `whole_tokens` is at most the burst anyway.
        let tokens = whole_tokens as u32;
        Room {
            available: free_slots.min(tokens),
            wake_at: None,
        }
    }

    /// Records that an attempt starts at `now`: it takes a slot and a rate token. Starting without
    /// [`room`](Self::room) is allowed (the token goes into debt) but defeats the limits.
    pub fn start(&mut self, now: Instant) -> Slot {
        self.refill(now);
        if self.probing() {
            self.probes = self.probes.saturating_add(1);
        }
        self.in_flight += 1;
        self.last_started = Some(now);
        if self.limits.rate().is_some() {
            self.tokens -= 1.0;
        }
        Slot { epoch: self.epoch }
    }

    /// Records that the attempt holding `slot` finished at `now` with `verdict`: frees the slot,
    /// adapts the limit (success raises, overload halves) and pauses the lane on `Retry-After`.
    /// A discard says nothing about the endpoint's load and only frees the slot.
    pub fn finish(&mut self, slot: Slot, verdict: &Verdict, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match *verdict {
            Verdict::Delivered => {
                self.failures = 0;
                self.probes = 0;
                match &mut self.cluster {
                    // The shared limit rises with every node's successes, in the cluster's count.
                    Some(cluster) => cluster.successes = cluster.successes.saturating_add(1),
                    None => self.raise(),
                }
            }
            Verdict::Retry {
                retry_after,
                overload,
            } => {
                self.failures = self.failures.saturating_add(1);
                if overload && slot.epoch == self.epoch {
                    self.halve();
                    if let Some(cluster) = &mut self.cluster {
                        cluster.halved = true;
                    }
                }
                if let Some(until) = retry_after.and_then(|wait| now.checked_add(wait)) {
                    self.paused_until = Some(self.paused_until.map_or(until, |old| old.max(until)));
                }
            }
            Verdict::Discard => {}
        }
    }

    fn raise(&mut self) {
        self.successes += 1;
        if self.successes >= self.limit {
            self.successes = 0;
            self.limit = (self.limit + 1).min(self.limits.max_concurrency());
        }
    }

    fn halve(&mut self) {
        self.limit = (self.limit / 2).max(1);
        self.successes = 0;
        self.epoch += 1;
    }

    fn refill(&mut self, now: Instant) {
        // An instant older than the last refill (callers' clocks read out of order) adds nothing
        // and does not move the refill time back.
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.refilled_at = self.refilled_at.max(now);
        if let Some(rate) = self.limits.rate() {
            self.tokens = (self.tokens + rate * elapsed.as_secs_f64()).min(burst(Some(rate)));
        }
    }
}

/// The bucket's capacity: one second's worth of requests, and at least one so that rates below
/// 1/s can send at all.
fn burst(rate: Option<f64>) -> f64 {
    rate.map_or(0.0, |rate| rate.max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn retry(retry_after: Option<Duration>, overload: bool) -> Verdict {
        Verdict::Retry {
            retry_after,
            overload,
        }
    }

    fn lane(max_concurrency: u32, rate_limit: Option<f64>, now: Instant) -> LaneControl {
        LaneControl::new(
            LaneLimits {
                max_concurrency,
                rate_limit,
            },
            now,
        )
    }

    /// Starts as many attempts as the lane has room for at `now`.
    fn fill(lane: &mut LaneControl, now: Instant) -> Vec<Slot> {
        let room = lane.room(now);
        (0..room.available).map(|_| lane.start(now)).collect()
    }

    #[test]
    fn defaults_are_twenty_and_no_rate_limit() {
        assert_eq!(
            LaneLimits::default(),
            LaneLimits {
                max_concurrency: 20,
                rate_limit: None
            }
        );
    }

    #[test]
    fn concurrency_is_limited() {
        let t0 = Instant::now();
        let mut lane = lane(3, None, t0);
        assert_eq!(
            lane.room(t0),
            Room {
                available: 3,
                wake_at: None
            }
        );
        let mut slots = fill(&mut lane, t0);
        assert_eq!((slots.len(), lane.in_flight()), (3, 3));
        assert_eq!(
            lane.room(t0),
            Room {
                available: 0,
                wake_at: None
            },
            "full: only a finishing attempt makes room"
        );
        lane.finish(slots.remove(0), &Verdict::Discard, t0);
        assert_eq!(lane.room(t0).available, 1);
        assert_eq!(lane.in_flight(), 2);
    }

    #[test]
    fn zero_concurrency_is_taken_as_one() {
        let t0 = Instant::now();
        let mut lane = lane(0, None, t0);
        assert_eq!(lane.limit(), 1);
        assert_eq!(lane.room(t0).available, 1);
    }

    #[test]
    fn a_failing_endpoint_is_probed_ever_more_slowly_until_it_answers() {
        let t0 = Instant::now();
        let mut lane = lane(1, None, t0);
        // The first failure at limit one: the next attempt may start at once.
        let slot = lane.start(t0);
        lane.finish(slot, &retry(None, true), t0);
        assert!(lane.failing());
        assert_eq!(lane.room(t0).available, 1);
        // From the second on, probes are spaced: 100 ms, 200 ms, 400 ms, … at most 5 s.
        let mut at = t0;
        let mut gaps = Vec::new();
        for _ in 0..10 {
            let slot = lane.start(at);
            lane.finish(slot, &retry(None, true), at);
            let room = lane.room(at);
            assert_eq!(room.available, 0);
            let next = room.wake_at.unwrap();
            gaps.push(next.duration_since(at).as_millis());
            at = next;
            assert_eq!(lane.room(at).available, 1, "room once the gap has passed");
        }
        assert_eq!(
            gaps,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
        // A success ends probing.
        let slot = lane.start(at);
        lane.finish(slot, &Verdict::Delivered, at);
        assert!(!lane.failing());
        assert_eq!(lane.room(at).available, 1);
    }

    #[test]
    fn overload_halves_the_limit_down_to_one() {
        let t0 = Instant::now();
        let mut lane = lane(20, None, t0);
        let mut limits = Vec::new();
        for _ in 0..6 {
            let slot = lane.start(t0);
            lane.finish(slot, &retry(None, true), t0);
            limits.push(lane.limit());
        }
        assert_eq!(limits, [10, 5, 2, 1, 1, 1]);
    }

    #[test]
    fn failures_that_are_not_overload_leave_the_limit_alone() {
        let t0 = Instant::now();
        let mut lane = lane(20, None, t0);
        for verdict in [retry(None, false), Verdict::Discard] {
            let slot = lane.start(t0);
            lane.finish(slot, &verdict, t0);
        }
        assert_eq!(lane.limit(), 20);
    }

    #[test]
    fn a_burst_of_overloads_from_one_round_halves_once() {
        let t0 = Instant::now();
        let mut lane = lane(20, None, t0);
        let slots = fill(&mut lane, t0);
        assert_eq!(slots.len(), 20);
        for slot in slots {
            lane.finish(slot, &retry(None, true), t0);
        }
        assert_eq!(
            lane.limit(),
            10,
            "only the first overload of the round counts"
        );
        // Attempts started under the halved limit signal afresh.
        let slot = lane.start(t0);
        lane.finish(slot, &retry(None, true), t0);
        assert_eq!(lane.limit(), 5);
    }

    #[test]
    fn the_limit_bounds_room_after_halving() {
        let t0 = Instant::now();
        let mut lane = lane(8, None, t0);
        let mut slots = fill(&mut lane, t0);
        lane.finish(slots.remove(0), &retry(None, true), t0);
        assert_eq!(lane.limit(), 4);
        assert_eq!(lane.in_flight(), 7);
        assert_eq!(lane.room(t0).available, 0, "7 in flight over a limit of 4");
        for slot in slots.drain(..4) {
            lane.finish(slot, &Verdict::Discard, t0);
        }
        assert_eq!(lane.room(t0).available, 1);
    }

    #[test]
    fn success_raises_the_limit_by_one_per_limit_successes() {
        let t0 = Instant::now();
        let mut lane = lane(6, None, t0);
        for _ in 0..2 {
            let slot = lane.start(t0);
            lane.finish(slot, &retry(None, true), t0);
        }
        assert_eq!(lane.limit(), 1);
        let mut limits = Vec::new();
        for _ in 0..20 {
            let slot = lane.start(t0);
            lane.finish(slot, &Verdict::Delivered, t0);
            limits.push(lane.limit());
        }
        // 1 success to reach 2, 2 more to reach 3, 3 more to reach 4, …, capped at 6.
        assert_eq!(
            limits,
            [2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6]
        );
    }

    #[test]
    fn retry_after_pauses_the_lane_to_the_millisecond() {
        let t0 = Instant::now();
        let mut lane = lane(20, None, t0);
        let slot = lane.start(t0);
        let finished = t0 + 30 * MS;
        lane.finish(slot, &retry(Some(Duration::from_secs(2)), true), finished);
        let resume = finished + Duration::from_secs(2);
        assert_eq!(lane.paused_until(), Some(resume));
        for now in [finished, finished + 1000 * MS, resume - MS] {
            assert_eq!(
                lane.room(now),
                Room {
                    available: 0,
                    wake_at: Some(resume)
                }
            );
        }
        assert_eq!(
            lane.room(resume).available,
            10,
            "halved by the 429, then open"
        );
    }

    #[test]
    fn a_shorter_retry_after_does_not_shorten_a_pause() {
        let t0 = Instant::now();
        let mut lane = lane(20, None, t0);
        let (first, second) = (lane.start(t0), lane.start(t0));
        lane.finish(first, &retry(Some(Duration::from_secs(5)), false), t0);
        lane.finish(second, &retry(Some(Duration::from_secs(1)), false), t0);
        assert_eq!(lane.paused_until(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(
            lane.limit(),
            20,
            "a 500 with retry-after pauses but is no overload"
        );
    }

    #[test]
    fn a_zero_retry_after_does_not_pause() {
        let t0 = Instant::now();
        let mut lane = lane(20, None, t0);
        let slot = lane.start(t0);
        lane.finish(slot, &retry(Some(Duration::ZERO), false), t0);
        assert_eq!(lane.room(t0).available, 20);
    }

    #[test]
    fn the_token_bucket_allows_burst_then_rate_over_a_simulated_second() {
        let t0 = Instant::now();
        let mut lane = lane(1000, Some(10.0), t0);
        let mut started = Vec::new();
        // Poll every millisecond for one second, starting all that the lane allows.
        for ms in 0..=1000 {
            let now = t0 + ms * MS;
            started.extend(fill(&mut lane, now).into_iter().map(|slot| (ms, slot)));
        }
        let at_start = started.iter().filter(|(ms, _)| *ms == 0).count();
        assert_eq!(at_start, 10, "the bucket starts full: burst = rate");
        assert_eq!(started.len(), 20, "burst + rate × 1 s");
        let refills: Vec<u32> = started.iter().skip(10).map(|(ms, _)| *ms).collect();
        assert_eq!(refills, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    }

    #[test]
    fn the_rate_limit_says_when_the_next_token_arrives() {
        let t0 = Instant::now();
        let mut lane = lane(20, Some(4.0), t0);
        assert_eq!(fill(&mut lane, t0).len(), 4);
        let room = lane.room(t0 + 50 * MS);
        assert_eq!(room.available, 0);
        assert_eq!(room.wake_at, Some(t0 + 250 * MS));
        assert_eq!(
            lane.room(t0 + 250 * MS).available,
            1,
            "awake exactly on time"
        );
    }

    #[test]
    fn rates_below_one_per_second_still_send() {
        let t0 = Instant::now();
        let mut lane = lane(20, Some(0.5), t0);
        assert_eq!(fill(&mut lane, t0).len(), 1, "burst is at least one");
        let room = lane.room(t0);
        assert_eq!(room.wake_at, Some(t0 + Duration::from_secs(2)));
        assert_eq!(lane.room(t0 + Duration::from_secs(2)).available, 1);
    }

    #[test]
    fn the_bucket_does_not_overfill_while_idle() {
        let t0 = Instant::now();
        let mut lane = lane(100, Some(5.0), t0);
        assert_eq!(lane.room(t0 + Duration::from_secs(60)).available, 5);
    }

    #[test]
    fn concurrency_and_rate_both_apply() {
        let t0 = Instant::now();
        let mut lane = lane(2, Some(10.0), t0);
        let slots = fill(&mut lane, t0);
        assert_eq!(slots.len(), 2, "concurrency is the tighter limit");
        assert_eq!(
            lane.room(t0),
            Room {
                available: 0,
                wake_at: None
            }
        );
    }

    #[test]
    fn invalid_rates_mean_unlimited() {
        let t0 = Instant::now();
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut lane = lane(7, Some(rate), t0);
            assert_eq!(lane.room(t0).available, 7, "{rate}");
        }
    }

    #[test]
    fn pause_beats_rate_and_concurrency_in_wake_at() {
        let t0 = Instant::now();
        let mut lane = lane(1, Some(1.0), t0);
        let slot = lane.start(t0);
        lane.finish(slot, &retry(Some(Duration::from_secs(3)), false), t0);
        assert_eq!(lane.room(t0).wake_at, Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn raising_max_concurrency_lifts_a_healthy_lane_and_keeps_a_backed_off_one() {
        let t0 = Instant::now();
        let mut healthy = lane(20, None, t0);
        healthy.set_limits(LaneLimits {
            max_concurrency: 50,
            rate_limit: None,
        });
        assert_eq!(healthy.limit(), 50);

        let mut backed_off = lane(20, None, t0);
        let slot = backed_off.start(t0);
        backed_off.finish(slot, &retry(None, true), t0);
        backed_off.set_limits(LaneLimits {
            max_concurrency: 50,
            rate_limit: None,
        });
        assert_eq!(backed_off.limit(), 10);
        backed_off.set_limits(LaneLimits {
            max_concurrency: 4,
            rate_limit: None,
        });
        assert_eq!(backed_off.limit(), 4);
    }

    #[test]
    fn adding_a_rate_limit_starts_a_full_bucket_and_lowering_it_caps_tokens() {
        let t0 = Instant::now();
        let mut lane = lane(100, None, t0);
        lane.set_limits(LaneLimits {
            max_concurrency: 100,
            rate_limit: Some(3.0),
        });
        assert_eq!(lane.room(t0).available, 3);
        lane.set_limits(LaneLimits {
            max_concurrency: 100,
            rate_limit: Some(1.0),
        });
        assert_eq!(lane.room(t0).available, 1);
        assert_eq!(lane.limits().rate_limit, Some(1.0));
    }

    #[test]
    fn out_of_order_instants_neither_refill_nor_rewind() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut lane = lane(100, Some(2.0), t0);
        assert_eq!(fill(&mut lane, later).len(), 2);
        assert_eq!(
            lane.room(t0).available,
            0,
            "an older instant adds no tokens"
        );
        assert_eq!(lane.room(later + 500 * MS).available, 1);
    }

    fn shared(max_concurrency: u32, now: Instant) -> LaneControl {
        LaneControl::shared(
            LaneLimits {
                max_concurrency,
                rate_limit: None,
            },
            now,
        )
    }

    #[test]
    fn a_shared_lane_starts_nothing_before_its_first_grant() {
        let t0 = Instant::now();
        let mut lane = shared(20, t0);
        assert_eq!(lane.room(t0).available, 0);
        lane.adopt(20, 7, 0, Duration::ZERO, t0);
        assert_eq!((lane.room(t0).available, lane.effective_limit()), (7, 7));
        let slots = fill(&mut lane, t0);
        assert_eq!(slots.len(), 7, "no more than the share");
        lane.revoke_share();
        for slot in slots {
            lane.finish(slot, &Verdict::Delivered, t0);
        }
        assert_eq!(lane.room(t0).available, 0, "a revoked share starts nothing");
    }

    #[test]
    fn a_shared_lane_reports_successes_instead_of_raising_alone() {
        let t0 = Instant::now();
        let mut lane = shared(20, t0);
        lane.adopt(4, 4, 3, Duration::ZERO, t0);
        for slot in fill(&mut lane, t0) {
            lane.finish(slot, &Verdict::Delivered, t0);
        }
        assert_eq!(lane.limit(), 4, "the cluster raises the shared limit");
        let usage = lane.report(t0);
        assert_eq!(
            usage,
            LaneUsage {
                in_flight: 0,
                epoch: 3,
                halved: false,
                successes: 4,
                paused_for: Duration::ZERO
            }
        );
        assert_eq!(lane.report(t0).successes, 0, "taken by the report");
    }

    #[test]
    fn a_shared_lane_halves_at_once_and_reports_it_once() {
        let t0 = Instant::now();
        let mut lane = shared(20, t0);
        lane.adopt(20, 20, 0, Duration::ZERO, t0);
        let slots = fill(&mut lane, t0);
        for slot in slots {
            lane.finish(slot, &retry(Some(Duration::from_secs(2)), true), t0);
        }
        assert_eq!(
            lane.limit(),
            10,
            "one halving for the burst, applied locally at once"
        );
        assert!(lane.has_news());
        let usage = lane.report(t0);
        assert!(usage.halved);
        assert_eq!(usage.paused_for, Duration::from_secs(2));
        assert!(!lane.has_news());
    }

    #[test]
    fn a_grant_brings_the_shared_limit_and_pause() {
        let t0 = Instant::now();
        let mut lane = shared(20, t0);
        lane.adopt(20, 10, 0, Duration::ZERO, t0);
        let mut slots = fill(&mut lane, t0);
        // Another node halved: attempts started before do not halve again here.
        lane.adopt(10, 5, 1, Duration::from_millis(300), t0);
        assert_eq!(lane.limit(), 10);
        let slot = slots.pop().unwrap_or_else(|| panic!("ten slots"));
        lane.finish(slot, &retry(None, true), t0);
        assert_eq!(lane.limit(), 10);
        assert_eq!(
            lane.room(t0).wake_at,
            Some(t0 + 300 * MS),
            "paused cluster-wide"
        );
        assert_eq!(lane.report(t0).epoch, 1);
        for slot in slots {
            lane.finish(slot, &Verdict::Delivered, t0);
        }
        assert_eq!(lane.room(t0 + 300 * MS).available, 5);
    }

    #[test]
    fn adopt_does_nothing_on_a_lane_of_one_node() {
        let t0 = Instant::now();
        let mut lane = lane(20, None, t0);
        lane.adopt(3, 1, 9, Duration::from_secs(5), t0);
        assert_eq!((lane.limit(), lane.room(t0).available), (20, 20));
    }
}

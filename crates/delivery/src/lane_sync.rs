//! A lane's conversation with the cluster, for stores shared by several nodes
//! ([`Store::shares_lanes`]): while the lane has work, it reports its use every `interval` (and at
//! once after a halving) and applies the grant it gets back to its [`LaneControl`]. Reports run
//! in the background, like claims, so the lane keeps starting attempts within its current share
//! meanwhile.
//!
//! A grant is relied on for half of its lease at most: past that the other nodes may already
//! have taken the share back (this node's reports failing, say), so the share is withdrawn until
//! the next grant.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use junction_store::{LaneGrant, LaneReport, Store, StoreError};

use crate::engine::or_never;
use crate::lane::LaneControl;

/// A report on its way: when it was sent, the most it said it may have in flight, the answer.
type Pending = Pin<Box<dyn Future<Output = (Instant, u32, Result<LaneGrant, StoreError>)> + Send>>;

/// How a lane task keeps its share of a cluster-wide lane.
pub(crate) struct LaneSync {
    store: Arc<dyn Store>,
    node: Arc<str>,
    endpoint: String,
    interval: Duration,
    lease: Duration,
    pending: Option<Pending>,
    next_at: Instant,
    /// The cluster holds something for this node (a share, or attempts in flight): worth a
    /// report saying it is done, even when idle.
    holding: bool,
    granted_at: Option<Instant>,
}

impl LaneSync {
    /// The conversation of `endpoint`'s lane, as `node`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        node: Arc<str>,
        endpoint: String,
        interval: Duration,
        lease: Duration,
    ) -> Self {
        LaneSync {
            store,
            node,
            endpoint,
            interval,
            lease,
            pending: None,
            next_at: Instant::now(),
            holding: false,
            granted_at: None,
        }
    }

    /// Sends a report if one is due: `want` is what the lane could have in flight now, at most
    /// its limit; `max_concurrency` its configured maximum.
    pub(crate) fn maybe_report(
        &mut self,
        control: &mut LaneControl,
        want: u32,
        max_concurrency: u32,
        now: Instant,
    ) {
        if self
            .granted_at
            .is_some_and(|at| now.saturating_duration_since(at) > self.lease / 2)
        {
            control.revoke_share();
            self.granted_at = None;
        }
        if self.pending.is_some() {
            return;
        }
        let active = want > 0 || control.in_flight() > 0;
        let due = if active {
            now >= self.next_at || control.has_news()
        } else {
            self.holding
        };
        if !due {
            return;
        }
        let usage = control.report(now);
        let report = LaneReport {
            endpoint: self.endpoint.clone(),
            node: self.node.to_string(),
            max_concurrency,
            in_flight_bound: usage.in_flight.max(control.effective_limit()),
            want,
            epoch: usage.epoch,
            halved: usage.halved,
            successes: usage.successes,
            paused_ms: u64::try_from(usage.paused_for.as_millis()).unwrap_or(u64::MAX),
            lease_ms: u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX),
        };
        let store = Arc::clone(&self.store);
        self.next_at = now + self.interval;
        self.pending = Some(Box::pin(async move {
            (now, report.in_flight_bound, store.sync_lane(report).await)
        }));
    }

    /// When the next periodic report is due, if the lane is active and none is on its way.
    pub(crate) fn wake_at(&self, active: bool) -> Option<Instant> {
        (active && self.pending.is_none()).then_some(self.next_at)
    }

    /// The answer of the report on its way (never, if none is).
    pub(crate) async fn answer(&mut self) -> (Instant, u32, Result<LaneGrant, StoreError>) {
        or_never(self.pending.as_mut()).await
    }

    /// Applies an answer from [`answer`](Self::answer).
    pub(crate) fn apply(
        &mut self,
        control: &mut LaneControl,
        (sent_at, in_flight, answer): (Instant, u32, Result<LaneGrant, StoreError>),
    ) {
        self.pending = None;
        match answer {
            Ok(grant) => {
                control.adopt(
                    grant.limit,
                    grant.share,
                    grant.epoch,
                    Duration::from_millis(grant.paused_ms),
                    Instant::now(),
                );
                self.holding = grant.share > 0 || in_flight > 0;
                self.granted_at = Some(sent_at);
            }
            Err(StoreError::Closed) => {}
            Err(err) => {
                tracing::warn!(lane = %self.endpoint, error = %err, "cannot share the lane's limit");
            }
        }
    }

    /// Tells the cluster this node is done with the lane (at shutdown), keeping only what is
    /// still in flight. Best effort: the lease ends it anyway.
    pub(crate) async fn leave(mut self, control: &Mutex<LaneControl>, max_concurrency: u32) {
        if let Some(pending) = self.pending.take() {
            let _ = pending.await;
        }
        self.holding = true;
        self.next_at = Instant::now();
        {
            let mut control = control.lock().unwrap_or_else(PoisonError::into_inner);
            // Nothing more starts here: the share goes back, only attempts in flight stay held.
            control.revoke_share();
            self.maybe_report(&mut control, 0, max_concurrency, Instant::now());
        }
        if let Some(pending) = self.pending.take() {
            let _ = pending.await;
        }
    }
}

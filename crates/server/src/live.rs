//! The source debugger's feed: the events each source accepted, with their routing summary, kept
//! in memory (the last N per source) and broadcast to live listeners. Publishing never waits: a
//! listener that falls behind skips events and is told how many.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use junction_store::{CommitOutcome, NewEvent, UnixMillis};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{broadcast, watch};

/// How many events a live listener may fall behind before it skips some.
const LIVE_BUFFER: usize = 1024;

/// One accepted event as the debugger shows it.
#[derive(Debug)]
pub struct LiveEvent {
    /// The source that accepted it.
    pub source_id: String,
    /// Its `messageId`.
    pub message_id: String,
    /// When it was received (Unix milliseconds).
    pub received_at: UnixMillis,
    /// Whether it duplicated a stored event (then it was not routed again).
    pub duplicate: bool,
    /// The normalised event, as stored (JSON).
    payload: Vec<u8>,
    /// (destination, mapping) of each delivery job.
    jobs: Vec<(String, String)>,
    /// (destination, mapping, reason) of each discard.
    discards: Vec<(String, Option<String>, &'static str)>,
}

#[derive(Serialize)]
struct LiveEventView<'a> {
    source_id: &'a str,
    message_id: &'a str,
    received_at: UnixMillis,
    duplicate: bool,
    event: Option<&'a RawValue>,
    routing: RoutingView<'a>,
}

#[derive(Serialize)]
struct RoutingView<'a> {
    jobs: Vec<JobView<'a>>,
    discards: Vec<DiscardView<'a>>,
}

#[derive(Serialize)]
struct JobView<'a> {
    destination_id: &'a str,
    mapping_id: &'a str,
}

#[derive(Serialize)]
struct DiscardView<'a> {
    destination_id: &'a str,
    mapping_id: Option<&'a str>,
    reason: &'static str,
}

impl LiveEvent {
    /// The event and its routing summary as the debugger's JSON.
    pub fn to_json(&self) -> String {
        // Payloads are serialised JSON; a broken one shows as `null` rather than failing.
        let event = serde_json::from_slice::<&RawValue>(&self.payload).ok();
        let view = LiveEventView {
            source_id: &self.source_id,
            message_id: &self.message_id,
            received_at: self.received_at,
            duplicate: self.duplicate,
            event,
            routing: RoutingView {
                jobs: self
                    .jobs
                    .iter()
                    .map(|(destination_id, mapping_id)| JobView {
                        destination_id,
                        mapping_id,
                    })
                    .collect(),
                discards: self
                    .discards
                    .iter()
                    .map(|(destination_id, mapping_id, reason)| DiscardView {
                        destination_id,
                        mapping_id: mapping_id.as_deref(),
                        reason,
                    })
                    .collect(),
            },
        };
        serde_json::to_string(&view).unwrap_or_else(|_| "null".to_owned())
    }
}

/// One source's feed.
struct Feed {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    recent: Mutex<VecDeque<Arc<LiveEvent>>>,
}

/// Every source's feed. Looking a feed up takes no lock (the map is replaced whole when a source
/// is first seen); recording takes one short lock per request, and broadcasting happens only
/// while someone listens.
pub struct LiveEvents {
    feeds: ArcSwap<HashMap<String, Arc<Feed>>>,
    feeds_write: Mutex<()>,
    capacity: usize,
    closed: watch::Sender<bool>,
}

/// A live listener of one source.
pub struct Subscription {
    /// The events, as accepted from now on.
    pub events: broadcast::Receiver<Arc<LiveEvent>>,
    /// Turns true when the server shuts down: the stream must end so that shutdown can finish.
    pub closed: watch::Receiver<bool>,
}

impl LiveEvents {
    /// Keeps the last `capacity` events of each source (0: none, and nothing is captured unless
    /// someone listens).
    pub fn new(capacity: usize) -> Self {
        Self {
            feeds: ArcSwap::from_pointee(HashMap::new()),
            feeds_write: Mutex::new(()),
            capacity,
            closed: watch::Sender::new(false),
        }
    }

    fn feed(&self, source_id: &str) -> Option<Arc<Feed>> {
        self.feeds.load().get(source_id).cloned()
    }

    fn feed_or_create(&self, source_id: &str) -> Arc<Feed> {
        if let Some(feed) = self.feed(source_id) {
            return feed;
        }
        let _guard = self
            .feeds_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.feeds.load_full();
        if let Some(feed) = current.get(source_id) {
            return Arc::clone(feed);
        }
        let feed = Arc::new(Feed {
            sender: broadcast::Sender::new(LIVE_BUFFER),
            recent: Mutex::new(VecDeque::with_capacity(self.capacity.min(64))),
        });
        let mut next = HashMap::clone(&current);
        next.insert(source_id.to_owned(), Arc::clone(&feed));
        self.feeds.store(Arc::new(next));
        feed
    }

    /// Whether events of `source_id` are wanted: kept as recent, or listened to.
    fn wanted(&self, source_id: &str) -> bool {
        self.capacity > 0
            || self
                .feed(source_id)
                .is_some_and(|feed| feed.sender.receiver_count() > 0)
    }

    /// Copies what the debugger shows of `events` before they go to the store, if anybody may
    /// want it.
    pub(crate) fn capture(&self, source_id: &str, events: &[NewEvent]) -> Option<Vec<LiveEvent>> {
        if !self.wanted(source_id) {
            return None;
        }
        let captured = events
            .iter()
            .map(|event| LiveEvent {
                source_id: event.source_id.clone(),
                message_id: event.message_id.clone(),
                received_at: event.received_at,
                duplicate: false,
                payload: event.payload.clone(),
                jobs: event
                    .jobs
                    .iter()
                    .map(|job| (job.destination_id.clone(), job.subscription_id.clone()))
                    .collect(),
                discards: event
                    .discards
                    .iter()
                    .map(|discard| {
                        (
                            discard.destination_id.clone(),
                            discard.subscription_id.clone(),
                            discard.reason.as_str(),
                        )
                    })
                    .collect(),
            })
            .collect();
        Some(captured)
    }

    /// Records and broadcasts the captured events once their commit is durable; `outcomes` says
    /// which were duplicates (shown as such, without the routing they did not get again).
    pub(crate) fn publish(
        &self,
        source_id: &str,
        captured: Vec<LiveEvent>,
        outcomes: &[CommitOutcome],
    ) {
        let feed = self.feed_or_create(source_id);
        let listening = feed.sender.receiver_count() > 0;
        let events: Vec<Arc<LiveEvent>> = captured
            .into_iter()
            .zip(outcomes)
            .map(|(mut event, outcome)| {
                if let CommitOutcome::Duplicate { .. } = outcome {
                    event.duplicate = true;
                    event.jobs.clear();
                    event.discards.clear();
                }
                Arc::new(event)
            })
            .collect();
        if listening {
            for event in &events {
                // Fails only when the last listener left meanwhile: nothing to do.
                let _ = feed.sender.send(Arc::clone(event));
            }
        }
        if self.capacity == 0 {
            return;
        }
        let mut recent = feed.recent.lock().unwrap_or_else(PoisonError::into_inner);
        for event in events {
            if recent.len() >= self.capacity {
                recent.pop_front();
            }
            recent.push_back(event);
        }
    }

    /// The last events of `source_id`, oldest first.
    pub fn recent(&self, source_id: &str) -> Vec<Arc<LiveEvent>> {
        self.feed(source_id).map_or_else(Vec::new, |feed| {
            let recent = feed.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent.iter().cloned().collect()
        })
    }

    /// Drops from every source's recent events those `deleted` says belong to a deleted person
    /// (given the event's JSON); answers how many went. Live listeners already got them.
    pub fn forget(&self, deleted: impl Fn(&serde_json::Value) -> bool) -> usize {
        let mut dropped = 0;
        for feed in self.feeds.load().values() {
            let mut recent = feed.recent.lock().unwrap_or_else(PoisonError::into_inner);
            let before = recent.len();
            recent.retain(|event| {
                serde_json::from_slice::<serde_json::Value>(&event.payload)
                    .map_or(true, |value| !deleted(&value))
            });
            dropped += before - recent.len();
        }
        dropped
    }

    /// Listens to the events `source_id` accepts from now on.
    pub fn subscribe(&self, source_id: &str) -> Subscription {
        Subscription {
            events: self.feed_or_create(source_id).sender.subscribe(),
            closed: self.closed.subscribe(),
        }
    }

    /// Ends every live stream (at shutdown: open streams would keep their connections, and the
    /// listener's graceful shutdown, waiting forever).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_store::{DiscardReason, EventId, NewDiscard};

    fn event(n: usize) -> NewEvent {
        NewEvent {
            source_id: "web".to_owned(),
            message_id: format!("m{n}"),
            received_at: 1,
            payload: format!("{{\"n\":{n}}}").into_bytes(),
            jobs: Vec::new(),
            discards: vec![NewDiscard {
                destination_id: "cm".to_owned(),
                subscription_id: None,
                reason: DiscardReason::NotMatched,
                message: "no mapping matched".to_owned(),
            }],
            for_profiles: false,
        }
    }

    fn stored(n: usize) -> Vec<CommitOutcome> {
        (0..n)
            .map(|i| CommitOutcome::Stored {
                event_id: EventId(i as i64),
                job_ids: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn keeps_the_last_n_in_order_and_marks_duplicates() {
        let live = LiveEvents::new(2);
        let events: Vec<NewEvent> = (0..3).map(event).collect();
        let captured = live.capture("web", &events).unwrap();
        let mut outcomes = stored(3);
        outcomes[2] = CommitOutcome::Duplicate {
            original: EventId(0),
        };
        live.publish("web", captured, &outcomes);
        let recent = live.recent("web");
        let ids: Vec<&str> = recent.iter().map(|e| e.message_id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2"]);
        let json: serde_json::Value = serde_json::from_str(&recent[0].to_json()).unwrap();
        assert_eq!(json["event"]["n"], 1);
        assert_eq!(json["routing"]["discards"][0]["reason"], "not_matched");
        assert!(recent[1].duplicate);
        assert!(live.recent("app").is_empty());
    }

    #[test]
    fn forgets_a_deleted_persons_events() {
        let live = LiveEvents::new(10);
        let events: Vec<NewEvent> = (0..3).map(event).collect();
        let captured = live.capture("web", &events).unwrap();
        live.publish("web", captured, &stored(3));
        assert_eq!(live.forget(|event| event["n"] == 1), 1);
        let ids: Vec<String> = live
            .recent("web")
            .iter()
            .map(|e| e.message_id.clone())
            .collect();
        assert_eq!(ids, ["m0", "m2"]);
    }

    #[test]
    fn captures_nothing_without_recent_or_listeners() {
        let live = LiveEvents::new(0);
        assert!(live.capture("web", &[event(0)]).is_none());
        let mut subscription = live.subscribe("web");
        let captured = live.capture("web", &[event(0)]).unwrap();
        live.publish("web", captured, &stored(1));
        let received = subscription.events.try_recv().unwrap();
        assert_eq!(received.message_id, "m0");
        assert!(live.recent("web").is_empty());
    }
}

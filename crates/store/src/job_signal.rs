//! How stored work wakes the delivery engine. A wake-up either names the lanes it made due (a
//! commit's new jobs), which the dispatcher wakes directly, or names none (replays, jobs given
//! back, retries scheduled, notifications possibly missed), and then the dispatcher lists every
//! lane with [`Store::lanes`](crate::Store::lanes). Naming them matters in clustered mode: every
//! commit wakes every node, and a listing there walks each lane's index.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

use crate::{NewEvent, UnixMillis};

/// Past this many distinct lanes between two looks, a wake-up asks for a listing instead: one
/// listing is cheaper than waking that many lanes one by one, and the set stays small.
const MAX_NAMED: usize = 256;

/// What the dispatcher does after a wake-up: see [`JobSignal::take`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Woken {
    /// Every wake-up since the last look named its lanes: each with the earliest time a job it
    /// announced is due.
    Lanes(Vec<(String, UnixMillis)>),
    /// Some wake-up named no lane: list them all.
    ListAll,
}

/// The wake-up a write owes the delivery engine once committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WakeUp {
    /// It made no job due.
    #[default]
    None,
    /// Its new jobs are due at once on these lanes.
    Lanes(BTreeSet<String>),
    /// It may have made jobs due anywhere, or later (replays, jobs given back).
    ListAll,
}

impl WakeUp {
    /// Adds the lanes of `events`' jobs (due at once, as every commit's are).
    pub fn commit<'a>(&mut self, events: impl IntoIterator<Item = &'a NewEvent>) {
        for job in events.into_iter().flat_map(|event| &event.jobs) {
            match self {
                WakeUp::ListAll => return,
                WakeUp::Lanes(lanes) => {
                    if !lanes.contains(&job.endpoint) {
                        lanes.insert(job.endpoint.clone());
                    }
                }
                WakeUp::None => *self = WakeUp::Lanes(BTreeSet::from([job.endpoint.clone()])),
            }
        }
    }

    /// Sends it on `signal`, the jobs due at `due_at`.
    pub fn send(&self, signal: &JobSignal, due_at: UnixMillis) {
        match self {
            WakeUp::None => {}
            WakeUp::Lanes(lanes) => signal.lanes_due(lanes.iter().map(String::as_str), due_at),
            WakeUp::ListAll => signal.wake(),
        }
    }
}

#[derive(Debug)]
struct Named {
    lanes: HashMap<String, UnixMillis>,
    list_all: bool,
}

/// A store's wake-ups of the delivery engine (see [`Store::job_signal`](crate::Store::job_signal)).
#[derive(Debug)]
pub struct JobSignal {
    notify: Notify,
    named: Mutex<Named>,
}

impl Default for JobSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl JobSignal {
    /// A signal whose first look lists every lane (nothing is known yet).
    pub fn new() -> Self {
        JobSignal {
            notify: Notify::new(),
            named: Mutex::new(Named {
                lanes: HashMap::new(),
                list_all: true,
            }),
        }
    }

    /// Jobs due at `due_at` were stored on `lanes`.
    pub fn lanes_due<'a>(&self, lanes: impl IntoIterator<Item = &'a str>, due_at: UnixMillis) {
        {
            let mut named = self.lock();
            if !named.list_all {
                for lane in lanes {
                    if let Some(due) = named.lanes.get_mut(lane) {
                        *due = (*due).min(due_at);
                    } else if named.lanes.len() < MAX_NAMED {
                        named.lanes.insert(lane.to_owned(), due_at);
                    } else {
                        named.list_all = true;
                        named.lanes.clear();
                        break;
                    }
                }
            }
        }
        self.notify.notify_one();
    }

    /// Work that may have made jobs due on any lane, or at any time: the next look lists them.
    pub fn wake(&self) {
        {
            let mut named = self.lock();
            named.list_all = true;
            named.lanes.clear();
        }
        self.notify.notify_one();
    }

    /// Waits for the next wake-up (one made since the last wait counts: it is kept as a permit).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// What the wake-ups since the last look asked for, forgetting them.
    pub fn take(&self) -> Woken {
        let mut named = self.lock();
        if std::mem::take(&mut named.list_all) {
            named.lanes.clear();
            return Woken::ListAll;
        }
        let mut lanes: Vec<(String, UnixMillis)> = named.lanes.drain().collect();
        lanes.sort_unstable();
        Woken::Lanes(lanes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Named> {
        // Plain data: a panic elsewhere while it was held leaves it usable.
        self.named.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_look_lists_and_named_wake_ups_then_name_their_lanes() {
        let signal = JobSignal::new();
        assert_eq!(signal.take(), Woken::ListAll, "nothing known yet");
        signal.lanes_due(["b|h", "a|h"], 20);
        signal.lanes_due(["a|h"], 10);
        signal.lanes_due(["a|h"], 30);
        assert_eq!(
            signal.take(),
            Woken::Lanes(vec![("a|h".to_owned(), 10), ("b|h".to_owned(), 20)]),
            "each lane once, at its earliest"
        );
        assert_eq!(
            signal.take(),
            Woken::Lanes(Vec::new()),
            "forgotten once taken"
        );
    }

    #[test]
    fn an_unnamed_wake_up_lists_whatever_was_named_around_it() {
        let signal = JobSignal::new();
        let _ = signal.take();
        signal.lanes_due(["a|h"], 1);
        signal.wake();
        signal.lanes_due(["b|h"], 2);
        assert_eq!(signal.take(), Woken::ListAll);
        signal.lanes_due(["c|h"], 3);
        assert_eq!(signal.take(), Woken::Lanes(vec![("c|h".to_owned(), 3)]));
    }

    #[test]
    fn too_many_lanes_turn_into_a_listing() {
        let signal = JobSignal::new();
        let _ = signal.take();
        let names: Vec<String> = (0..=MAX_NAMED).map(|n| format!("d{n}|h")).collect();
        signal.lanes_due(names.iter().map(String::as_str), 5);
        assert_eq!(signal.take(), Woken::ListAll);
    }

    fn event(endpoints: &[&str]) -> NewEvent {
        NewEvent {
            source_id: "src".to_owned(),
            message_id: "m".to_owned(),
            received_at: 0,
            payload: b"{}".to_vec(),
            jobs: endpoints
                .iter()
                .map(|endpoint| crate::NewJob {
                    destination_id: "d".to_owned(),
                    subscription_id: "s".to_owned(),
                    endpoint: (*endpoint).to_owned(),
                    method: "POST".to_owned(),
                    url: crate::JobUrl::Setting("url".to_owned()),
                    headers: Vec::new(),
                    body: Vec::new(),
                })
                .collect(),
            discards: Vec::new(),
            for_profiles: false,
        }
    }

    #[test]
    fn a_wake_up_names_the_distinct_lanes_of_its_commits_jobs() {
        let mut wake_up = WakeUp::None;
        wake_up.commit(&[event(&[])]);
        assert_eq!(wake_up, WakeUp::None, "no job, no wake-up");
        wake_up.commit(&[event(&["b|h", "a|h"]), event(&["a|h"])]);
        let lanes = BTreeSet::from(["a|h".to_owned(), "b|h".to_owned()]);
        assert_eq!(wake_up, WakeUp::Lanes(lanes));

        let signal = JobSignal::new();
        let _ = signal.take();
        WakeUp::None.send(&signal, 1);
        assert_eq!(signal.take(), Woken::Lanes(Vec::new()));
        wake_up.send(&signal, 7);
        assert_eq!(
            signal.take(),
            Woken::Lanes(vec![("a|h".to_owned(), 7), ("b|h".to_owned(), 7)])
        );
        WakeUp::ListAll.send(&signal, 7);
        assert_eq!(signal.take(), Woken::ListAll);
    }

    #[tokio::test]
    async fn a_wake_up_before_the_wait_is_kept() {
        let signal = JobSignal::new();
        signal.lanes_due(["a|h"], 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), signal.notified())
            .await
            .expect("the permit was kept");
    }
}

//! Recent message keys: the (dedupe key, event id) pairs of committed events that the key index
//! file does not hold yet. The writer adds to it after each commit; the maintenance thread copies
//! it into the index in large sorted batches; lookups consult it and the index together.
//!
//! Why: a new key lands on a random leaf of the index B-tree. Inserted one transaction at a time,
//! every key costs the writer a page seek and a WAL frame (measured at about 40% of its time).
//! Inserted a second's worth at a time, sorted, neighbouring keys share pages and the work runs
//! on another thread.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// The pairs, shared by the writer, the readers and the maintenance thread.
#[derive(Default)]
pub(crate) struct RecentKeys {
    inner: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    /// Event ids by key, ascending.
    by_key: HashMap<i64, Vec<i64>>,
    /// (event id, key) in commit order, so ids ascend.
    order: VecDeque<(i64, i64)>,
    /// Every pair with an event id up to this one is committed to the index file; only the
    /// writer removes them from memory (see [`RecentKeys::prune`]).
    flushed_upto: i64,
}

impl RecentKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds the pairs of a committed transaction (ids ascending, above all earlier ones).
    pub(crate) fn add(&self, pairs: &[(i64, i64)]) {
        let mut recent = self.lock();
        for &(event_id, key) in pairs {
            recent.by_key.entry(key).or_default().push(event_id);
            recent.order.push_back((event_id, key));
        }
    }

    /// The event ids recorded under `key`, ascending.
    pub(crate) fn get(&self, key: i64) -> Vec<i64> {
        self.lock().by_key.get(&key).cloned().unwrap_or_default()
    }

    /// How many pairs wait for the index file.
    pub(crate) fn pending(&self) -> usize {
        let recent = self.lock();
        let flushed = recent
            .order
            .iter()
            .take_while(|(id, _)| *id <= recent.flushed_upto)
            .count();
        recent.order.len() - flushed
    }

    /// The pairs not yet in the index file, for the maintenance thread to write.
    pub(crate) fn unflushed(&self) -> Vec<(i64, i64)> {
        let recent = self.lock();
        let upto = recent.flushed_upto;
        recent
            .order
            .iter()
            .filter(|(id, _)| *id > upto)
            .copied()
            .collect()
    }

    /// Records that every pair up to `event_id` is committed to the index file.
    pub(crate) fn mark_flushed(&self, event_id: i64) {
        let mut recent = self.lock();
        recent.flushed_upto = recent.flushed_upto.max(event_id);
    }

    /// Forgets the pairs already in the index file. Only the writer calls it, at the start of a
    /// transaction and before its first read: the snapshot that transaction reads then includes
    /// them. Were the maintenance thread to forget them itself, a transaction whose snapshot
    /// predates the flush would find a key neither here nor in the file.
    pub(crate) fn prune(&self) {
        let mut recent = self.lock();
        let upto = recent.flushed_upto;
        while let Some(&(event_id, key)) = recent.order.front() {
            if event_id > upto {
                break;
            }
            recent.order.pop_front();
            if let Some(ids) = recent.by_key.get_mut(&key) {
                ids.retain(|id| *id != event_id);
                if ids.is_empty() {
                    recent.by_key.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_stay_until_flushed_and_pruned() {
        let recent = RecentKeys::default();
        recent.add(&[(1, 10), (2, 20), (3, 10)]);
        assert_eq!(recent.get(10), vec![1, 3]);
        assert_eq!(recent.pending(), 3);
        assert_eq!(recent.unflushed(), vec![(1, 10), (2, 20), (3, 10)]);

        recent.mark_flushed(2);
        assert_eq!(recent.pending(), 1);
        assert_eq!(recent.unflushed(), vec![(3, 10)]);
        assert_eq!(recent.get(10), vec![1, 3], "kept until the writer prunes");

        recent.prune();
        assert_eq!(recent.get(10), vec![3]);
        assert_eq!(recent.get(20), Vec::<i64>::new());
        recent.add(&[(4, 20)]);
        assert_eq!(recent.unflushed(), vec![(3, 10), (4, 20)]);
    }
}

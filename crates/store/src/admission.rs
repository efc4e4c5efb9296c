//! Bounded admission to an engine's commit queue: callers reserve room for their events and are
//! refused at once when it is full, never made to wait, so that the Tracking API can answer 503
//! with `Retry-After` while memory stays bounded. Shared by every engine's writer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::StoreError;

/// The events admitted to a commit queue and not yet released, against a capacity.
#[derive(Debug)]
pub struct Admission {
    capacity: usize,
    queued: AtomicUsize,
    overloaded: AtomicU64,
}

impl Admission {
    /// An empty queue holding at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            queued: AtomicUsize::new(0),
            overloaded: AtomicU64::new(0),
        }
    }

    /// Reserves room for `events`, or refuses at once with [`StoreError::Overloaded`]. A request
    /// larger than the whole capacity is let through when the queue is empty, so that no valid
    /// request is refused forever.
    pub fn admit(&self, events: usize) -> Result<(), StoreError> {
        let mut queued = self.queued.load(Ordering::Acquire);
        loop {
            let fits = queued.saturating_add(events) <= self.capacity;
            if !fits && queued != 0 {
                self.overloaded.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Overloaded {
                    capacity: self.capacity,
                });
            }
            match self.queued.compare_exchange_weak(
                queued,
                queued + events,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => queued = actual,
            }
        }
    }

    /// Gives back the room of `events` admitted earlier (written, or failed).
    pub fn release(&self, events: usize) {
        self.queued.fetch_sub(events, Ordering::AcqRel);
    }

    /// Events admitted and not yet released.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Requests refused so far.
    pub fn overloaded(&self) -> u64 {
        self.overloaded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queues_refuse_at_once_and_oversized_requests_pass_alone() {
        let admission = Admission::new(10);
        admission.admit(6).unwrap();
        let refused = admission.admit(5).unwrap_err();
        assert!(matches!(refused, StoreError::Overloaded { capacity: 10 }));
        assert_eq!((admission.queued(), admission.overloaded()), (6, 1));
        admission.admit(4).unwrap();
        admission.release(10);
        admission
            .admit(25)
            .expect("an empty queue takes any request");
        assert!(admission.admit(1).is_err());
        admission.release(25);
        assert_eq!(admission.queued(), 0);
    }
}

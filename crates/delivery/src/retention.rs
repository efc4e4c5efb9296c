//! Retention: events older than the retention period are removed, with everything recorded
//! about them, in small passes so that ingestion never waits long behind a delete.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use junction_store::{Store, StoreError};
use tokio::sync::watch;

/// Events removed per pass: one short transaction each.
const PASS_EVENTS: usize = 500;

/// Removes events older than `retention` every `every`, until `stop` turns true.
pub async fn run_retention(
    store: Arc<dyn Store>,
    retention: Duration,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let before = i64::try_from(now.saturating_sub(retention.as_millis())).unwrap_or(0);
        let mut removed = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            match store.prune(before, PASS_EVENTS).await {
                Ok(outcome) => {
                    removed += outcome.events;
                    if !outcome.more {
                        break;
                    }
                    // Let queued commits through between passes.
                    tokio::task::yield_now().await;
                }
                Err(StoreError::Closed) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "retention pass failed");
                    break;
                }
            }
        }
        if removed > 0 {
            tracing::info!(events = removed, "retention removed old events");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

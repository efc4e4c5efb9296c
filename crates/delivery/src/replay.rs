//! Dead-letter replay: a selection of discarded or expired jobs delivered again, either as they
//! were (the same request) or re-mapped from the stored event through the mapping as it is now
//! (fix the mapping, then redrive). A replay is a new job linked to the one it replays, so it has
//! its own attempts and shows in the event's story.

use junction_store::{DeadLetterFilter, EventId, JobId, NewReplay, Store, StoreError};
use junction_workspace::{Snapshot, remap};
use serde::{Deserialize, Serialize};

/// How replayed jobs get their request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayMode {
    /// The stored request, byte for byte.
    AsIs,
    /// A new request from the stored event, through the job's mapping as it is configured now.
    Remapped,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Each replayed job with the new job that replays it.
    pub replayed: Vec<Replayed>,
    /// Jobs that could not be re-mapped, and why (the mapping now fails for the event, or it is no
    /// longer configured). They stay in the dead letter.
    pub failed: Vec<ReplayFailure>,
}

/// One replayed job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// The dead-letter job.
    pub job_id: JobId,
    /// The new job.
    pub replay_id: JobId,
    /// The event both belong to (where the new job's progress is read).
    pub event_id: EventId,
}

/// A job that could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayFailure {
    /// The dead-letter job.
    pub job_id: JobId,
    /// Why, for a person.
    pub reason: String,
}

/// Replays the dead-letter jobs `filter` selects (at most `filter.limit`). Re-mapping reads each
/// job's event and maps it with `snapshot`.
pub async fn replay(
    store: &dyn Store,
    snapshot: &Snapshot,
    filter: DeadLetterFilter,
    mode: ReplayMode,
) -> Result<ReplayReport, StoreError> {
    let dead = store.dead_letter(filter).await?;
    let mut report = ReplayReport::default();
    let mut replays = Vec::with_capacity(dead.len());
    let mut events = Vec::with_capacity(dead.len());
    for dead_job in dead {
        let job = dead_job.job;
        let new_job = match mode {
            ReplayMode::AsIs => junction_store::NewJob {
                destination_id: job.destination_id,
                subscription_id: job.subscription_id,
                endpoint: job.endpoint,
                method: job.method,
                url: job.url,
                headers: job.headers,
                body: job.body,
            },
            ReplayMode::Remapped => {
                let event = store.event(job.event_id).await?;
                let mapped = match event {
                    None => Err(format!(
                        "event {} is no longer stored (retention)",
                        job.event_id
                    )),
                    Some(event) => match serde_json::from_slice(&event.payload) {
                        Ok(payload) => remap(
                            snapshot,
                            &job.destination_id,
                            &job.subscription_id,
                            &payload,
                        )
                        .map_err(|err| err.to_string()),
                        Err(err) => Err(format!("stored event cannot be read: {err}")),
                    },
                };
                match mapped {
                    Ok(routed) => routed.into_new_job(),
                    Err(reason) => {
                        report.failed.push(ReplayFailure {
                            job_id: job.id,
                            reason,
                        });
                        continue;
                    }
                }
            }
        };
        events.push(job.event_id);
        replays.push(NewReplay {
            replay_of: job.id,
            job: new_job,
        });
    }
    let originals: Vec<JobId> = replays.iter().map(|replay| replay.replay_of).collect();
    let ids = store.replay_jobs(replays).await?;
    report.replayed = originals
        .into_iter()
        .zip(ids)
        .zip(events)
        .map(|((job_id, replay_id), event_id)| Replayed {
            job_id,
            replay_id,
            event_id,
        })
        .collect();
    Ok(report)
}

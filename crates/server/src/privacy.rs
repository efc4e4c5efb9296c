//! This node's view of regulations (deleting and suppressing a person): the suppression list
//! reloaded from the store, since another node's profile worker may have changed it, and the
//! source debugger's recent events of people deleted since, dropped.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::time::Duration;

use junction_profiles::{RegulationRecord, RegulationType};
use junction_store::RegulationStatus;

use crate::state::AppState;

/// Regulations looked at per round: the newest ones, which a round every few seconds cannot
/// fall behind.
const RECENT_REGULATIONS: usize = 100;

/// Every `every` until `shutdown`: reloads the suppression list, and drops from the debugger's
/// recent events those of people whose deletion finished since the last round. Does nothing
/// when `state` has no suppression list.
pub async fn follow_regulations(
    state: AppState,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut applied = BTreeSet::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(every) => {}
        }
        let Some(suppressions) = state.suppressions() else {
            return;
        };
        if let Err(err) = suppressions.reload(&**state.store()).await {
            tracing::warn!(error = %err, "the suppression list could not be reloaded");
        }
        let regulations = match state.store().regulations(RECENT_REGULATIONS).await {
            Ok(regulations) => regulations,
            Err(err) => {
                tracing::warn!(error = %err, "the regulations could not be read");
                continue;
            }
        };
        let mut deleted: HashSet<String> = HashSet::new();
        for regulation in regulations {
            let deletes = RegulationType::parse(&regulation.kind).is_some_and(|t| t.deletes());
            if !deletes
                || regulation.status != RegulationStatus::Finished
                || !applied.insert(regulation.id)
            {
                continue;
            }
            let record: RegulationRecord =
                serde_json::from_value(regulation.record).unwrap_or_default();
            deleted.extend(record.covered_identifiers.into_iter().map(|id| id.hash));
        }
        if deleted.is_empty() {
            continue;
        }
        let dropped = state
            .live()
            .forget(|event| suppressions.carries(event, &deleted));
        if dropped > 0 {
            tracing::info!(
                dropped,
                "deleted people's events dropped from the source debugger"
            );
        }
    }
}

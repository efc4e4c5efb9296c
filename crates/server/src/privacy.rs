//! This node's view of regulations (deleting and suppressing a person): the suppression list
//! reloaded from the store, since another node's profile worker may have changed it, and the
//! copies of deleted people's events outside the store dropped: the source debugger's recent
//! events, and the destinations' saved samples (test events saved from the mapping editor,
//! which may be a real person's event loaded from the debugger).

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::time::Duration;

use junction_profiles::{RegulationRecord, RegulationType};
use junction_store::RegulationStatus;

use crate::admin::AdminState;
use crate::admin::samples::forget_samples;

/// Regulations looked at per round: the newest ones, which a round every few seconds cannot
/// fall behind.
const RECENT_REGULATIONS: usize = 100;

/// Every `every` until `shutdown`: reloads the suppression list, and drops from the debugger's
/// recent events and from the saved samples those of people whose deletion finished since the
/// last round. Does nothing when the server has no suppression list.
pub async fn follow_regulations(
    admin: AdminState,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let state = admin.app.clone();
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
        // Every node finds the same samples: the first to save removes them, and the others,
        // once the change reaches them, find none left and change nothing.
        match forget_samples(&admin, |event| suppressions.carries(event, &deleted)).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "deleted people's saved samples removed"),
            Err(err) => {
                tracing::warn!(error = ?err, "deleted people's saved samples could not be removed");
                // Try again next round.
                applied.clear();
            }
        }
    }
}

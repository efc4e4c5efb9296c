//! The delivery overview of a destination (or one of its mappings) over a window of 10 minutes to
//! 14 days: received, filtered, not matched, discarded by reason with sample `messageId`s,
//! awaiting retry, failed, delivered, ingest-to-delivery latency, and the same as a time series.
//! The store answers from its per-minute rollups, so the cost follows the window, not the volume.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use junction_store::{
    DiscardReason, JobRecord, JobState, LatencySummary, OverviewBucket, OverviewCounts,
    OverviewQuery, OverviewTotals, UnixMillis,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{AdminError, AdminState};
use crate::routes::Route;

/// The shortest window: 10 minutes.
const MIN_WINDOW_SECS: i64 = 10 * 60;
/// The longest window: 14 days, what the store keeps.
const MAX_WINDOW_SECS: i64 = OverviewQuery::MAX_WINDOW_MS / 1000;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route<AdminState>> {
    vec![Route::get("/api/v1/destinations/{id}/overview", overview)]
}

/// What an overview is asked for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverviewParams {
    /// `10m`, `1h`, `24h`, `7d`, `14d`, any `<n>m|h|d`, or seconds.
    pub(crate) window: Option<String>,
    /// `minute`, `hour` or `day`; by default minutes up to 6 hours, hours beyond.
    pub(crate) bucket: Option<String>,
    /// One mapping only.
    pub(crate) mapping_id: Option<String>,
}

/// Parses a window: a number of seconds, or a number followed by `s`, `m`, `h` or `d`.
fn parse_window(text: &str) -> Result<i64, AdminError> {
    let invalid = || {
        AdminError::invalid(
            "window",
            format!(
                "invalid window \"{text}\": expected 10m, 1h, 24h, 7d, 14d, <n>m, <n>h, <n>d or \
                 a number of seconds"
            ),
        )
    };
    let (digits, unit) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => (&text[..at], unit),
        _ => (text, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let n: i64 = digits.parse().map_err(|_| invalid())?;
    let per_unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(invalid()),
    };
    let seconds = n.checked_mul(per_unit).ok_or_else(invalid)?;
    if !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&seconds) {
        return Err(AdminError::invalid(
            "window",
            format!("window must be from 10 minutes to 14 days, not {seconds} seconds"),
        ));
    }
    Ok(seconds)
}

fn parse_bucket(text: Option<&str>, window_secs: i64) -> Result<OverviewBucket, AdminError> {
    Ok(match text {
        // Up to 360 points by default: fine enough to see a burst, small enough to draw.
        None if window_secs <= 6 * 3_600 => OverviewBucket::Minute,
        None => OverviewBucket::Hour,
        Some("minute") => OverviewBucket::Minute,
        Some("hour") => OverviewBucket::Hour,
        Some("day") => OverviewBucket::Day,
        Some(other) => {
            return Err(AdminError::invalid(
                "bucket",
                format!("unknown bucket \"{other}\": expected minute, hour or day"),
            ));
        }
    })
}

fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The overview of destination `id` over the window ending now.
async fn overview(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    params: Result<Query<OverviewParams>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(params) = params.map_err(|err| AdminError::invalid("query", err.body_text()))?;
    let data = destination_overview(&state, &id, params).await?;
    Ok(Json(json!({"data": data})))
}

/// The overview of destination `id` over the window ending now, as the API answers it.
pub(crate) async fn destination_overview(
    state: &AdminState,
    id: &str,
    params: OverviewParams,
) -> Result<Value, AdminError> {
    let window_secs = parse_window(params.window.as_deref().unwrap_or("1h"))?;
    let bucket = parse_bucket(params.bucket.as_deref(), window_secs)?;
    {
        let snapshot = state.app.snapshot();
        let Some(destination) = snapshot.destination(id) else {
            return Err(AdminError::not_found(format!(
                "destination \"{id}\" not found"
            )));
        };
        if let Some(mapping) = &params.mapping_id
            && destination.mapping(mapping).is_none()
        {
            return Err(AdminError::not_found(format!(
                "mapping \"{mapping}\" of destination \"{id}\" not found"
            )));
        }
    }
    let until = now_ms();
    let query = OverviewQuery {
        destination_id: id.to_owned(),
        subscription_id: params.mapping_id.clone(),
        from: until - window_secs * 1000,
        until,
        bucket,
    };
    let points = query.points();
    if points > OverviewQuery::MAX_POINTS {
        return Err(AdminError::invalid(
            "bucket",
            format!(
                "{} buckets over this window would be {points} points, at most {} are served: \
                 choose a larger bucket",
                bucket.as_str(),
                OverviewQuery::MAX_POINTS
            ),
        ));
    }
    let overview = state.app.store().overview(query).await?;
    let failures = failures(
        state,
        id,
        params.mapping_id.as_deref(),
        &overview.totals,
        overview.from,
    )
    .await?;
    let mut totals = totals_view(&overview.totals);
    if let Some(object) = totals.as_object_mut() {
        object.insert("failures".to_owned(), failures);
    }
    let mappings: Map<String, Value> = overview
        .mappings
        .iter()
        .map(|(mapping, totals)| (mapping.clone(), totals_view(totals)))
        .collect();
    let series: Vec<Value> = overview
        .series
        .iter()
        .map(|point| {
            let mut view = counts_view(&point.counts);
            if let Some(object) = view.as_object_mut() {
                object.insert("start".to_owned(), json!(point.start));
                object.insert("latency_ms".to_owned(), latency_view(&point.latency));
            }
            view
        })
        .collect();
    // Suppressed events never reach a destination, so the store's rollups do not count them:
    // per connected source, what this process dropped since it started.
    let suppressed: Map<String, Value> = {
        let snapshot = state.app.snapshot();
        snapshot
            .config()
            .destinations
            .iter()
            .find(|destination| destination.id == id)
            .map(|destination| destination.sources.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|source| {
                let count = state.app.metrics().suppressed_of(&source);
                (source, json!(count))
            })
            .collect()
    };
    let prefix = format!("{id}|");
    let lanes: Vec<Value> = state
        .app
        .metrics()
        .lane_stats()
        .into_iter()
        .filter(|lane| lane.endpoint.starts_with(&prefix))
        .map(|lane| {
            json!({
                "host": lane.endpoint[prefix.len()..],
                "limit": lane.limit,
                "in_flight": lane.in_flight,
                "held": lane.held,
                "failing": lane.failing,
                "paused_until": lane.paused_until,
                "pause_reason": lane.pause_reason,
            })
        })
        .collect();
    Ok(json!({
        "destination_id": id,
        "mapping_id": params.mapping_id,
        "lanes": lanes,
        "window": {
            "seconds": window_secs,
            "from": overview.from,
            "until": overview.until,
            "bucket": overview.bucket.as_str(),
        },
        "totals": {
            "destination": totals,
            "mappings": mappings,
        },
        "series": series,
        "suppressed": suppressed,
    }))
}

/// The most failures an overview explains.
const MAX_FAILURES: usize = OverviewTotals::MAX_SAMPLES;

/// The window's newest failed attempts among the sampled events (retried, discarded or expired),
/// each with why it failed, newest first: what a person needs to fix a failing destination
/// without looking up events one by one. Reads the sampled events' stories (at most twice
/// [`OverviewTotals::MAX_SAMPLES`] lookups).
async fn failures(
    state: &AdminState,
    destination_id: &str,
    mapping_id: Option<&str>,
    totals: &OverviewTotals,
    from: UnixMillis,
) -> Result<Value, AdminError> {
    let sources: Vec<String> = {
        let snapshot = state.app.snapshot();
        snapshot
            .config()
            .destinations
            .iter()
            .find(|destination| destination.id == destination_id)
            .map(|destination| destination.sources.clone())
            .unwrap_or_default()
    };
    let mut sampled: Vec<&String> = Vec::new();
    for message_id in totals.retried_samples.iter().chain(&totals.failed_samples) {
        if !sampled.contains(&message_id) {
            sampled.push(message_id);
        }
    }
    let mut found: Vec<(UnixMillis, Value)> = Vec::new();
    for message_id in sampled {
        for source in &sources {
            let records = state
                .app
                .store()
                .events_by_message_id(source, message_id)
                .await?;
            for record in &records {
                let jobs = record.jobs.iter().filter(|job| {
                    job.job.destination_id == destination_id
                        && mapping_id.is_none_or(|mapping| job.job.subscription_id == mapping)
                });
                for job in jobs {
                    found.extend(job_failures(message_id, job, from));
                }
            }
        }
    }
    found.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    found.truncate(MAX_FAILURES);
    Ok(Value::Array(
        found.into_iter().map(|(_, view)| view).collect(),
    ))
}

/// A job's failed attempts in the window (from `from`), each as (when, view): the transitions
/// an attempt led to that were not a delivery, with their reason, the attempt's status and class.
fn job_failures(
    message_id: &str,
    record: &JobRecord,
    from: UnixMillis,
) -> impl Iterator<Item = (UnixMillis, Value)> {
    record
        .transitions
        .iter()
        .filter(move |transition| {
            transition.at >= from
                && matches!(
                    transition.state,
                    JobState::AwaitingRetry | JobState::Discarded | JobState::Expired
                )
        })
        .map(move |transition| {
            let attempt = record
                .attempts
                .iter()
                .find(|attempt| attempt.attempt == transition.attempt);
            let view = json!({
                "message_id": message_id,
                "mapping_id": record.job.subscription_id,
                "job_id": record.job.id,
                "at": transition.at,
                "attempt": transition.attempt,
                "state": transition.state,
                "status": attempt.and_then(|attempt| attempt.status),
                "error_class": attempt.and_then(|attempt| attempt.error_class.clone()),
                "reason": transition.detail,
            });
            (transition.at, view)
        })
}

/// The counts of a series point: plain numbers.
fn counts_view(counts: &OverviewCounts) -> Value {
    let discarded: Map<String, Value> = counts
        .discarded
        .iter()
        .filter(|(reason, _)| !is_routing_filter(**reason))
        .map(|(reason, n)| (reason.as_str().to_owned(), json!(n)))
        .collect();
    json!({
        "received": counts.received,
        "filtered_by_integrations": counts.filtered_by_integrations(),
        "not_matched": counts.not_matched(),
        "discarded": discarded,
        "jobs": counts.jobs,
        "retried": counts.retried,
        "failed": counts.failed(),
        "delivered": counts.delivered,
    })
}

/// The integrations object and triggers filter by design; they are shown apart from the
/// discards that are failures (invalid mapping, schema, …).
fn is_routing_filter(reason: DiscardReason) -> bool {
    matches!(
        reason,
        DiscardReason::IntegrationsFiltered | DiscardReason::NotMatched
    )
}

/// Totals: counts with the sample `messageId`s of each discard reason and of failures.
fn totals_view(totals: &OverviewTotals) -> Value {
    let counts = &totals.counts;
    let with_samples = |reason: DiscardReason| {
        json!({
            "count": counts.discard_count(reason),
            "samples": totals.discard_samples.get(&reason).cloned().unwrap_or_default(),
        })
    };
    let discarded: Map<String, Value> = counts
        .discarded
        .keys()
        .filter(|reason| !is_routing_filter(**reason))
        .map(|reason| (reason.as_str().to_owned(), with_samples(*reason)))
        .collect();
    json!({
        "received": counts.received,
        "filtered_by_integrations": with_samples(DiscardReason::IntegrationsFiltered),
        "not_matched": with_samples(DiscardReason::NotMatched),
        "discarded": discarded,
        "jobs": counts.jobs,
        "awaiting_retry": totals.awaiting_retry,
        "retried": counts.retried,
        "failed": {
            "count": counts.failed(),
            "discarded": counts.failed_discarded,
            "expired": counts.failed_expired,
            "samples": totals.failed_samples,
        },
        "delivered": counts.delivered,
        "latency_ms": latency_view(&totals.latency),
    })
}

fn latency_view(latency: &LatencySummary) -> Value {
    json!({"count": latency.count, "p50": latency.p50_ms, "p95": latency.p95_ms})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_stay_in_range() {
        assert_eq!(parse_window("10m").ok(), Some(600));
        assert_eq!(parse_window("1h").ok(), Some(3_600));
        assert_eq!(parse_window("24h").ok(), Some(86_400));
        assert_eq!(parse_window("7d").ok(), Some(604_800));
        assert_eq!(parse_window("14d").ok(), Some(1_209_600));
        assert_eq!(parse_window("900").ok(), Some(900));
        for bad in [
            "",
            "m",
            "5m",
            "15d",
            "1w",
            "-10m",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_window(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buckets_default_by_window() {
        assert_eq!(parse_bucket(None, 3_600).ok(), Some(OverviewBucket::Minute));
        assert_eq!(parse_bucket(None, 86_400).ok(), Some(OverviewBucket::Hour));
        assert_eq!(
            parse_bucket(Some("day"), 600).ok(),
            Some(OverviewBucket::Day)
        );
        assert!(parse_bucket(Some("week"), 600).is_err());
    }
}

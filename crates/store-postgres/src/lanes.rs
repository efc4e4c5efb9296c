//! Cluster-wide lane flow control: one `lane_control` row per lane (the shared adaptive limit,
//! its epoch, the pause) and one `lane_shares` row per node using the lane (what it holds, what
//! it wants, until when). A report locks the lane's row, so reports of one lane are serialised
//! and the shares granted never add up to more than the limit; the arithmetic is
//! `junction_store::lane_share`.
//!
//! Times are the database server's clock, never a node's: leases and pauses compare across nodes,
//! whose clocks may disagree.

use junction_store::lane_share::{self, PeerShare, SharedLane};
use junction_store::{LaneGrant, LaneReport};
use sqlx::{PgPool, Row};

use crate::error::Error;

/// The database clock in Unix milliseconds, as SQL.
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Applies `report` and answers the node's grant (see `Store::sync_lane`).
pub(crate) async fn sync(pool: &PgPool, report: &LaneReport) -> Result<LaneGrant, Error> {
    let max = i32::try_from(report.max_concurrency.max(1)).unwrap_or(i32::MAX);
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO lane_control
             (endpoint, lane_limit, max_concurrency, epoch, successes, paused_until)
         VALUES ($1, $2, $2, 0, 0, 0)
         ON CONFLICT (endpoint) DO NOTHING",
    )
    .bind(&report.endpoint)
    .bind(max)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(&format!(
        "SELECT lane_limit, max_concurrency, epoch, successes, paused_until, {DB_NOW_MS} AS now
         FROM lane_control WHERE endpoint = $1 FOR UPDATE"
    ))
    .bind(&report.endpoint)
    .fetch_one(&mut *tx)
    .await?;
    let now: i64 = row.try_get("now")?;
    let mut lane = SharedLane {
        limit: count(row.try_get("lane_limit")?),
        max_concurrency: count(row.try_get("max_concurrency")?),
        epoch: u64::try_from(row.try_get::<i64, _>("epoch")?).unwrap_or(0),
        successes: count(row.try_get("successes")?),
        paused_until: row.try_get("paused_until")?,
    };
    let others: Vec<PeerShare> = sqlx::query(
        "SELECT held, want FROM lane_shares
         WHERE endpoint = $1 AND node <> $2 AND lease_until > $3",
    )
    .bind(&report.endpoint)
    .bind(&report.node)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| {
        Ok(PeerShare {
            held: count(row.try_get("held")?),
            want: count(row.try_get("want")?),
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;

    let (grant, holding) = lane_share::settle(&mut lane, report, &others, now);

    sqlx::query(
        "UPDATE lane_control
         SET lane_limit = $2, max_concurrency = $3, epoch = $4, successes = $5, paused_until = $6
         WHERE endpoint = $1",
    )
    .bind(&report.endpoint)
    .bind(sql_count(lane.limit))
    .bind(sql_count(lane.max_concurrency))
    .bind(i64::try_from(lane.epoch).unwrap_or(i64::MAX))
    .bind(sql_count(lane.successes))
    .bind(lane.paused_until)
    .execute(&mut *tx)
    .await?;
    // Dead nodes' rows go with the next report on the lane; a node holding nothing and wanting
    // nothing keeps no row.
    sqlx::query("DELETE FROM lane_shares WHERE endpoint = $1 AND (lease_until <= $2 OR node = $3)")
        .bind(&report.endpoint)
        .bind(now)
        .bind(&report.node)
        .execute(&mut *tx)
        .await?;
    if holding.held > 0 || holding.want > 0 {
        sqlx::query(
            "INSERT INTO lane_shares (endpoint, node, held, want, lease_until)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&report.endpoint)
        .bind(&report.node)
        .bind(sql_count(holding.held))
        .bind(sql_count(holding.want))
        .bind(now.saturating_add(i64::try_from(report.lease_ms).unwrap_or(i64::MAX)))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(grant)
}

/// A stored count (never negative by construction; a corrupt negative one reads as 0).
fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn sql_count(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

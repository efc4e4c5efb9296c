//! `pg-drain`: the backlog drain of the PostgreSQL engine (`bench/pg-drain.sh`). It fills a fresh
//! database with a backlog of due jobs on one lane (one SQL statement per table, not the ingest
//! path: a 5,000,000-job backlog would take longer to ingest than to drain), then drains it through
//! the engine's own `claim_jobs` and `complete_jobs`, with WORKERS claimers standing for the nodes
//! of a cluster, and reports the claim's latency over time and PostgreSQL's work per delivered job
//! (statements, rows, WAL bytes and execution time from `pg_stat_statements`, and the CPU time of
//! the database's backends from `/proc`). No HTTP: only what the database does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use junction_bench::{TICKS_PER_SEC, database_name, load_average, postgres_ticks, round3};
use junction_store::{AttemptRecord, Completion, JobState, Store as _};
use junction_store_postgres::{PostgresOptions, PostgresStore};
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection, Row as _};
use tokio::sync::Mutex;

/// The one lane every job of the backlog is on.
const LANE: &str = "bench|sink.example.test";
/// Rows per fill statement (each its own transaction), so the fill reports progress.
const FILL_CHUNK: i64 = 500_000;
/// How far ahead of now a claim's lease ends: longer than any claim-to-completion here.
const LEASE_MS: i64 = 300_000;

/// What to run, from the command line.
struct Options {
    store_url: String,
    jobs: i64,
    workers: usize,
    claim: usize,
    sample_every: Duration,
    max_duration: Duration,
}

fn usage() -> String {
    "usage: pg-drain --store-url postgres://…/NAME [--jobs N] [--workers N] [--claim N] \
     [--sample-secs S] [--max-secs S]"
        .to_owned()
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        store_url: String::new(),
        jobs: 1_000_000,
        workers: 3,
        claim: 200,
        sample_every: Duration::from_secs(10),
        max_duration: Duration::from_secs(3_600),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: not a positive number: {value}"))
        };
        match flag.as_str() {
            "--store-url" => options.store_url = value.clone(),
            "--jobs" => options.jobs = i64::try_from(number()?).map_err(|e| e.to_string())?,
            "--workers" => options.workers = number()? as usize,
            "--claim" => options.claim = number()? as usize,
            "--sample-secs" => options.sample_every = Duration::from_secs(number()?),
            "--max-secs" => options.max_duration = Duration::from_secs(number()?),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if database_name(&options.store_url).is_none() {
        return Err(format!(
            "--store-url with a database name is required\n{}",
            usage()
        ));
    }
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pg-drain: cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(report) => println!("{report}"),
        Err(err) => {
            eprintln!("pg-drain: {err}");
            std::process::exit(1);
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One claim as the drain saw it.
#[derive(Clone, Copy)]
struct ClaimSample {
    /// Since the drain started.
    at: Duration,
    took: Duration,
    jobs: usize,
}

async fn run(options: &Options) -> Result<Value, String> {
    let database = database_name(&options.store_url).unwrap_or_default();
    let store = PostgresStore::open(&options.store_url, PostgresOptions::default())
        .await
        .map_err(|err| format!("cannot open the store: {err}"))?;
    let mut conn = PgConnection::connect(&options.store_url)
        .await
        .map_err(|err| format!("cannot connect: {err}"))?;
    let fill_started = Instant::now();
    fill(&mut conn, options.jobs).await?;
    let fill_secs = fill_started.elapsed().as_secs_f64();
    eprintln!(
        "filled {} jobs in {fill_secs:.0} s; draining with {} workers",
        options.jobs, options.workers
    );

    let stats_before = statement_totals(&mut conn, &database).await?;
    let wal_before = wal_bytes(&mut conn).await?;
    let ticks_before = postgres_ticks(&database);
    let load_before = load_average();
    let store = Arc::new(store);
    let samples = Arc::new(Mutex::new(Vec::<ClaimSample>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(options.workers);
    for _ in 0..options.workers {
        let (store, samples, stop) = (Arc::clone(&store), Arc::clone(&samples), Arc::clone(&stop));
        let claim = options.claim;
        workers.push(tokio::spawn(async move {
            drain_worker(&store, claim, started, &samples, &stop).await
        }));
    }
    let deadline = started + options.max_duration;
    let mut last_report = Instant::now();
    while workers.iter().any(|worker| !worker.is_finished()) {
        if Instant::now() >= deadline {
            stop.store(true, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if last_report.elapsed() >= options.sample_every {
            last_report = Instant::now();
            let done: usize = samples.lock().await.iter().map(|s| s.jobs).sum();
            eprintln!(
                "{:.0} s: {done} jobs delivered",
                started.elapsed().as_secs_f64()
            );
        }
    }
    for worker in workers {
        worker
            .await
            .map_err(|err| format!("a worker panicked: {err}"))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let ticks_after = postgres_ticks(&database);
    let wal_after = wal_bytes(&mut conn).await?;
    let stats_after = statement_totals(&mut conn, &database).await?;
    let remaining: i64 = sqlx::query_scalar("SELECT count(*) FROM job_queue")
        .fetch_one(&mut conn)
        .await
        .map_err(|err| err.to_string())?;
    let samples = samples.lock().await.clone();
    let delivered: usize = samples.iter().map(|s| s.jobs).sum();
    let per_job = |value: f64| round3(value / (delivered.max(1) as f64));
    let backend_secs =
        ticks_after.database.saturating_sub(ticks_before.database) as f64 / TICKS_PER_SEC;
    let all_secs = ticks_after.all.saturating_sub(ticks_before.all) as f64 / TICKS_PER_SEC;
    let statements: Vec<Value> = stats_after
        .iter()
        .map(|(query, after)| {
            let before = stats_before
                .iter()
                .find(|(q, _)| q == query)
                .map_or([0.0; 4], |(_, b)| *b);
            let d = |i: usize| after[i] - before[i];
            json!({
                "query": query.split_whitespace().collect::<Vec<_>>().join(" "),
                "calls_per_job": per_job(d(0)),
                "rows_per_job": per_job(d(1)),
                "wal_bytes_per_job": per_job(d(2)),
                "exec_us_per_job": per_job(d(3) * 1000.0),
            })
        })
        .filter(|s| s["calls_per_job"].as_f64().is_some_and(|c| c > 0.0))
        .collect();
    let sum = |key: &str| {
        round3(
            statements
                .iter()
                .filter_map(|s| s[key].as_f64())
                .sum::<f64>(),
        )
    };
    Ok(json!({
        "jobs": options.jobs,
        "workers": options.workers,
        "claim_limit": options.claim,
        "fill_secs": round3(fill_secs),
        "drain_secs": round3(secs),
        "delivered": delivered,
        "remaining": remaining,
        "delivered_per_sec": (delivered as f64 / secs).round(),
        "loadavg_before": load_before,
        "per_job": {
            "statements": sum("calls_per_job"),
            "rows": sum("rows_per_job"),
            "wal_bytes": sum("wal_bytes_per_job"),
            "wal_bytes_server": per_job(wal_after - wal_before),
            "exec_us": sum("exec_us_per_job"),
            "backend_cpu_us": per_job(backend_secs * 1e6),
            "postgres_cpu_us": per_job(all_secs * 1e6),
        },
        "statements": statements,
        "claims_over_time": windows(&samples, options.sample_every),
    }))
}

/// Claims and completes (as delivered) until the lane is empty or `stop` is set.
async fn drain_worker(
    store: &PostgresStore,
    claim: usize,
    started: Instant,
    samples: &Mutex<Vec<ClaimSample>>,
    stop: &AtomicBool,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let before = Instant::now();
        let now = now_ms();
        let due = store
            .claim_jobs(LANE, now, now + LEASE_MS, claim)
            .await
            .map_err(|err| format!("claim: {err}"))?;
        samples.lock().await.push(ClaimSample {
            at: before.duration_since(started),
            took: before.elapsed(),
            jobs: due.len(),
        });
        if due.is_empty() {
            // Another worker may still hold jobs it could give back: the lane is drained once no
            // row is left.
            if store
                .lanes()
                .await
                .map_err(|err| err.to_string())?
                .is_empty()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let at = now_ms();
        let completions = due
            .iter()
            .map(|job| Completion {
                job_id: job.job.id,
                attempt: Some(AttemptRecord {
                    attempt: job.attempt + 1,
                    started_at: at,
                    duration_ms: 1,
                    status: Some(200),
                    error_class: None,
                    response_headers: Vec::new(),
                    response_excerpt: b"{}".to_vec(),
                }),
                state: JobState::Succeeded,
                next_at: at,
                detail: None,
            })
            .collect();
        store
            .complete_jobs(completions)
            .await
            .map_err(|err| format!("complete: {err}"))?;
    }
    Ok(())
}

/// The claims' latency and the jobs delivered, per window of `every` since the start.
fn windows(samples: &[ClaimSample], every: Duration) -> Vec<Value> {
    let Some(last) = samples.iter().map(|s| s.at).max() else {
        return Vec::new();
    };
    let count = (last.as_secs_f64() / every.as_secs_f64()).floor() as usize + 1;
    (0..count)
        .filter_map(|window| {
            let from = every * u32::try_from(window).unwrap_or(u32::MAX);
            let mut took: Vec<f64> = samples
                .iter()
                .filter(|s| s.at >= from && s.at < from + every && s.jobs > 0)
                .map(|s| s.took.as_secs_f64() * 1000.0)
                .collect();
            if took.is_empty() {
                return None;
            }
            took.sort_by(f64::total_cmp);
            let jobs: usize = samples
                .iter()
                .filter(|s| s.at >= from && s.at < from + every)
                .map(|s| s.jobs)
                .sum();
            let at = |q: f64| round3(junction_bench::quantile(&took, q));
            Some(json!({
                "from_secs": from.as_secs(),
                "jobs_per_sec": (jobs as f64 / every.as_secs_f64()).round(),
                "claims": took.len(),
                "claim_ms": {"p50": at(0.5), "p99": at(0.99), "max": at(1.0)},
            }))
        })
        .collect()
}

/// Writes `jobs` events, their jobs and queue rows, all due, on one lane, then moves the id
/// sequences past them as the engine's own inserts would have.
async fn fill(conn: &mut PgConnection, jobs: i64) -> Result<(), String> {
    let created = now_ms() - 60_000;
    let mut from = 1;
    while from <= jobs {
        let to = (from + FILL_CHUNK - 1).min(jobs);
        let statements = [
            "INSERT INTO events (id, source_id, message_id, received_at, payload)
             OVERRIDING SYSTEM VALUE
             SELECT n, 'bench', 'drain-' || n, $3, '\\x7b7d' FROM generate_series($1, $2) n",
            "INSERT INTO jobs (id, event_id, destination_id, subscription_id, endpoint, method,
                               url, headers, body, created_at)
             OVERRIDING SYSTEM VALUE
             SELECT n, n, 'bench', 'bench', 'bench|sink.example.test', 'POST',
                    'http://sink.example.test/', '[]', '\\x7b7d', $3
             FROM generate_series($1, $2) n",
            "INSERT INTO job_queue (job_id, endpoint, next_at, attempt, last_seq, event_id)
             SELECT n, 'bench|sink.example.test', $3 + n / 1000, 0, 0, n
             FROM generate_series($1, $2) n",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(from)
                .bind(to)
                .bind(created)
                .execute(&mut *conn)
                .await
                .map_err(|err| format!("fill: {err}"))?;
        }
        eprintln!("filled {to} of {jobs}");
        from = to + 1;
    }
    for table in ["events", "jobs"] {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), $1)"
        ))
        .bind(jobs)
        .execute(&mut *conn)
        .await
        .map_err(|err| format!("fill: {err}"))?;
    }
    Ok(())
}

/// Calls, rows, WAL bytes and execution time (ms) of each statement run in `database` so far.
async fn statement_totals(
    conn: &mut PgConnection,
    database: &str,
) -> Result<Vec<(String, [f64; 4])>, String> {
    let rows = sqlx::query(
        "SELECT s.query, sum(s.calls)::float8, sum(s.rows)::float8, sum(s.wal_bytes)::float8,
                sum(s.total_exec_time)::float8
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
         WHERE d.datname = $1 GROUP BY s.query",
    )
    .bind(database)
    .fetch_all(&mut *conn)
    .await
    .map_err(|err| format!("pg_stat_statements (is the extension created?): {err}"))?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0).map_err(|e| e.to_string())?,
                [
                    row.try_get(1).map_err(|e| e.to_string())?,
                    row.try_get(2).map_err(|e| e.to_string())?,
                    row.try_get(3).map_err(|e| e.to_string())?,
                    row.try_get(4).map_err(|e| e.to_string())?,
                ],
            ))
        })
        .collect()
}

/// The server's WAL bytes written so far (every database: other users' writes included).
async fn wal_bytes(conn: &mut PgConnection) -> Result<f64, String> {
    sqlx::query_scalar("SELECT wal_bytes::float8 FROM pg_stat_wal")
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| format!("pg_stat_wal: {err}"))
}

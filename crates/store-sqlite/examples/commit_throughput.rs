//! Measures commit throughput of the SQLite engine: requests of 100 events (~1 KB each, one job
//! each) from 1 and from several concurrent callers as fast as they are answered, with durable
//! (`synchronous=FULL`) commits; then the latency at a steady 10,000 events/s.
//!
//! `cargo run --release -p junction-store-sqlite --example commit_throughput [events] [dir]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use junction_store::{JobUrl, NewEvent, NewJob, Store};
use junction_store_sqlite::{SqliteOptions, SqliteStore};

const BATCH: usize = 100;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500_000);
    let base = args.next();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let scratch = || match &base {
            Some(base) => tempfile::tempdir_in(base),
            None => tempfile::tempdir(),
        };
        for callers in [1, 4, 16] {
            let dir = scratch()?;
            run(&dir.path().join("junction.db"), callers, total, None).await?;
        }
        // 10 callers, each sending 100 events every 100 ms: 10,000 events/s for 10 s.
        let dir = scratch()?;
        let pace = Some(Duration::from_millis(100));
        run(&dir.path().join("junction.db"), 10, 100_000, pace).await?;
        Ok(())
    })
}

/// `callers` tasks commit `total` events between them in requests of [`BATCH`], each as soon as
/// the previous is answered, or every `pace` (callers spread evenly over it).
async fn run(
    path: &std::path::Path,
    callers: usize,
    total: usize,
    pace: Option<Duration>,
) -> anyhow::Result<()> {
    let store = Arc::new(SqliteStore::open(path, SqliteOptions::default()).await?);
    let per_caller = total / callers / BATCH;
    let written_before = bytes_written();
    let threads_before = thread_cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let store = Arc::clone(&store);
        let mut ticks = pace.map(|period| {
            let offset = period * caller as u32 / callers as u32;
            tokio::time::interval_at(tokio::time::Instant::now() + offset, period)
        });
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_caller);
            for round in 0..per_caller {
                if let Some(ticks) = ticks.as_mut() {
                    ticks.tick().await;
                }
                let batch: Vec<NewEvent> = (0..BATCH)
                    .map(|i| event(caller, round * BATCH + i))
                    .collect();
                let sent = Instant::now();
                store.commit(batch).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let threads = thread_cpu();
    let cpu = |name: &str| {
        let after = threads
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        let before = threads_before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        after - before
    };
    let writer_cpu = cpu("store-writer");
    let checkpoint_cpu = cpu("store-maintain");
    let stats = store.stats();
    store.close().await?;

    latencies.sort();
    let events = callers * per_caller * BATCH;
    let size = std::fs::metadata(path)?.len();
    let written = bytes_written().saturating_sub(written_before);
    println!(
        "{} {callers:>2}: {events} events in {:.2} s = {:.0} events/s; {} transactions \
         ({:.0} events each, {:.0}/s); commit latency p50 {:.1} ms p99 {:.1} ms; file {} MB; \
         {:.0} bytes written per event; writer thread CPU {:.1} µs per event, maintenance {:.1}",
        if pace.is_some() {
            "paced callers"
        } else {
            "callers"
        },
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        stats.transactions,
        events as f64 / stats.transactions as f64,
        stats.transactions as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        size / 1_000_000,
        written as f64 / events as f64,
        writer_cpu * 1e6 / events as f64,
        checkpoint_cpu * 1e6 / events as f64,
    );
    Ok(())
}

/// Bytes this process has had written to storage so far (Linux `/proc/self/io`; 0 elsewhere):
/// WAL appends and checkpoints, the cost that decides throughput.
fn bytes_written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) used so far by each thread of this process, by thread name (Linux
/// `/proc/self/task`; empty elsewhere). The writer's share per event is its capacity on a core of
/// its own, whatever else the machine is running.
fn thread_cpu() -> Vec<(String, f64)> {
    // Linux reports these in clock ticks, 100 per second on every common configuration.
    const TICKS: f64 = 100.0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut totals: Vec<(String, f64)> = Vec::new();
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (name) state ...`: the name may contain spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // After the name: state is field 0, utime field 11, stime field 12.
        let seconds = (ticks(11) + ticks(12)) / TICKS;
        match totals.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += seconds,
            None => totals.push((name, seconds)),
        }
    }
    totals
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A ~1 KB normalised identify event with a random-looking messageId (as real UUIDs are, so the
/// dedupe index sees scattered inserts) and one ChartMogul-like job.
fn event(caller: usize, n: usize) -> NewEvent {
    let mixed = (n as u64 ^ ((caller as u64) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let message_id = format!("{mixed:016x}-{caller}-{n}");
    let payload = format!(
        r#"{{"type":"identify","messageId":"{message_id}","userId":"user-{n}","anonymousId":"anon-{n}","traits":{{"email":"user{n}@example.com","name":"User Number {n}","company":{{"id":"company-{caller}","name":"Company {caller}","plan":"enterprise"}},"created_at":"2024-03-01T10:00:00Z","plan":"pro","seats":12}},"context":{{"library":{{"name":"analytics-node","version":"2.1.0"}},"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","locale":"en-US","timezone":"Europe/Berlin"}},"integrations":{{}},"originalTimestamp":"2025-01-01T00:00:00.000Z","timestamp":"2025-01-01T00:00:00.120Z","sentAt":"2025-01-01T00:00:00.100Z","receivedAt":"2025-01-01T00:00:00.220Z","writeKey":"wk_0123456789abcdef","version":2}}"#
    );
    let body = format!(
        r#"{{"type":"identify","data":{{"email":"user{n}@example.com","name":"User Number {n}","user_id":"user-{n}","company":{{"id":"company-{caller}","name":"Company {caller}"}},"created_at":"2024-03-01T10:00:00Z"}},"message_id":"{message_id}","timestamp":"2025-01-01T00:00:00.120Z"}}"#
    );
    NewEvent {
        source_id: "source-1".to_owned(),
        message_id,
        received_at: 1_735_689_600_000 + n as i64,
        payload: payload.into_bytes(),
        jobs: vec![NewJob {
            destination_id: "chartmogul-1".to_owned(),
            subscription_id: "send-contact".to_owned(),
            endpoint: "chartmogul-1|segment.chartmogul.com".to_owned(),
            method: "POST".to_owned(),
            url: JobUrl::Setting("chartmogul_webhook_url".to_owned()),
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("user-agent".to_owned(), "Segment (Actions)".to_owned()),
            ],
            body: body.into_bytes(),
        }],
        discards: Vec::new(),
        for_profiles: false,
    }
}

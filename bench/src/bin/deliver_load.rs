//! `deliver-load`: the load tool of `bench/deliver.sh`, the end-to-end delivery benchmark. It runs
//! a webhook sink in-process, starts `junction serve` itself (so it knows the process to watch)
//! with the sample workspace's ChartMogul webhook pointing at the sink, and measures one of two
//! scenarios, printing one JSON line of results:
//!
//! - `live`: identify events in through `/v1/batch` (pre-serialised batches of 100 over
//!   keep-alive connections, as fast as they are answered or at a fixed rate), out to the sink:
//!   events acknowledged and delivered per second over the measured window, the time from
//!   sending an event's batch (from when it was due, at a fixed rate) to the sink's receipt of its
//!   webhook, duplicates, and the server's memory (RSS sampled every 100 ms, and `VmHWM`).
//! - `drain`: a backlog of N pending jobs written straight into a fresh store (events routed by
//!   the real workspace code, committed through `SqliteStore`, nothing delivered), then `junction
//!   serve` started on it: drain rate, and RSS over time while the backlog drains.
//! - `count`: exactly N events (`--total`) in as fast as answered, out to the sink: the server
//!   process's user+system CPU (from `/proc/PID/stat`, so threads that ended count too) from the
//!   first request to the last delivery, divided by the deliveries, with the sink's CPU apart,
//!   and `VmHWM` (the CPU cost per delivered event end to end).
//! - `crash`: `live` at a fixed rate, the server killed with SIGKILL at the end of the measured
//!   window (deliveries in full flow), then started again on the same data: every acknowledged
//!   event must arrive, and the duplicates counted are the deliveries answered 2xx whose
//!   completion was not yet durable when the process died (the real duplicate bound). Give it a
//!   config with a short `lease_secs`, or the jobs in flight wait out the default 5 minutes.
//!
//! Both report the CPU time of each of the server's threads (by name), of the sink's thread and
//! of the load generator's thread over the measured time, so that the share of the two cores
//! each takes can be seen.
//!
//! `live` also runs a cluster: `--store-url postgres://…` puts the server on that PostgreSQL
//! database (which must be fresh: `bench/deliver.sh` creates and drops one per run) and `--nodes
//! N` starts N servers on it, the load connections spread over them in turn. Memory and CPU are
//! then summed over the nodes (with each node's CPU too), and PostgreSQL's CPU is reported
//! beside them: on one machine, the database is a fourth party sharing the cores.
//!
//! The sink is hyper's HTTP/1.1 server on a thread of its own (keep-alive, answers 200 `{}`); it
//! finds each body's `message_id` (every event's `messageId` is `dl-CCC-III-NNNNNNNNNNNN`:
//! connection, index in the batch, per-connection counter) and records when it arrived. The
//! generator keeps each request's send time, so no clock crosses a process boundary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use junction_bench::{
    BatchRequest, Junction, Memory, PostgresTicks, ResponseReader, SAMPLE_WORKSPACE,
    SAMPLE_WRITE_KEY, TICKS_PER_SEC, ThreadCpu, connect, counter_placeholder, cpu_ticks,
    current_thread_id, database_name, identify_event, load_average, memory, own_thread_ticks,
    postgres_ticks, quantile, quantile_ms, round3, threads, ticks_by_name,
};
use junction_event::{NormaliseContext, normalise, random_message_id};
use junction_store::{CommitOutcome, NewEvent, Store as _};
use junction_store_sqlite::{SqliteOptions, SqliteStore};
use junction_workspace::{Format, RouteOutcome, Snapshot, WorkspaceConfig, route};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinSet;

/// How long `crash` waits after the sink has as many requests as events were acknowledged: the
/// lease of the jobs the killed process held (give it `lease_secs` of 5 or less) and a margin.
const CRASH_LEASE_WAIT: Duration = Duration::from_secs(8);

/// The connection number the pre-filled backlog's message ids carry.
const PREFILL_CONNECTION: u16 = 999;
/// Events per commit while pre-filling, and commits in flight (they share transactions).
const PREFILL_BATCH: usize = 2_500;
const PREFILL_IN_FLIGHT: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Live,
    Drain,
    Crash,
    Count,
}

/// What to run, from the command line.
#[derive(Clone, Debug)]
struct Options {
    mode: Mode,
    junction: PathBuf,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    keep_data: bool,
    connections: usize,
    events_per_request: usize,
    /// Measured time (after the warm-up).
    duration: Duration,
    warmup: Duration,
    /// Events per second in total; none means as fast as answers come.
    rate: Option<f64>,
    /// How long to wait for the last deliveries once sending stopped (live), or for the whole
    /// backlog (drain).
    drain_timeout: Duration,
    /// Jobs to pre-fill (drain).
    jobs: usize,
    /// Events to send in all (count).
    total: u64,
    /// RSS sampling period.
    sample_every: Duration,
    /// The destination's `delivery.max_concurrency`; none keeps the default (20).
    max_concurrency: Option<u32>,
    /// Servers to start (live); more than one needs `store_url`.
    nodes: usize,
    /// The PostgreSQL database the servers share, instead of each its own SQLite file.
    store_url: Option<String>,
}

fn usage() -> String {
    "usage: deliver-load live|drain|crash|count [--junction PATH] [--config FILE] [--data-dir DIR] \
     [--keep-data] [--connections N] [--events N] [--duration SECS] [--warmup SECS] \
     [--rate EVENTS_PER_SEC] [--drain-timeout SECS] [--jobs N] [--total N] [--sample-ms MS] \
     [--max-concurrency N] [--nodes N] [--store-url postgres://…]"
        .to_owned()
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("live") => Mode::Live,
        Some("drain") => Mode::Drain,
        Some("crash") => Mode::Crash,
        Some("count") => Mode::Count,
        _ => return Err(usage()),
    };
    let mut options = Options {
        mode,
        junction: PathBuf::from("target/release/junction"),
        config: None,
        data_dir: None,
        keep_data: false,
        connections: 4,
        events_per_request: 100,
        duration: Duration::from_secs(20),
        warmup: Duration::from_secs(3),
        rate: None,
        drain_timeout: Duration::from_secs(if mode == Mode::Drain { 900 } else { 120 }),
        jobs: 1_000_000,
        total: 200_000,
        sample_every: Duration::from_millis(if mode == Mode::Drain { 200 } else { 100 }),
        max_concurrency: None,
        nodes: 1,
        store_url: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: not a number: {text}"))
        };
        match flag.as_str() {
            "--junction" => options.junction = PathBuf::from(value()?),
            "--config" => options.config = Some(PathBuf::from(value()?)),
            "--data-dir" => options.data_dir = Some(PathBuf::from(value()?)),
            "--keep-data" => options.keep_data = true,
            "--connections" => options.connections = number(value()?)? as usize,
            "--events" => options.events_per_request = number(value()?)? as usize,
            "--duration" => options.duration = Duration::from_secs_f64(number(value()?)?),
            "--warmup" => options.warmup = Duration::from_secs_f64(number(value()?)?),
            "--rate" => options.rate = Some(number(value()?)?).filter(|rate| *rate > 0.0),
            "--drain-timeout" => {
                options.drain_timeout = Duration::from_secs_f64(number(value()?)?);
            }
            "--jobs" => options.jobs = number(value()?)? as usize,
            "--total" => options.total = number(value()?)? as u64,
            "--sample-ms" => {
                options.sample_every = Duration::from_millis(number(value()?)?.max(10.0) as u64);
            }
            "--max-concurrency" => {
                options.max_concurrency = Some(number(value()?)?.clamp(1.0, 1_000.0) as u32);
            }
            "--nodes" => options.nodes = number(value()?)? as usize,
            "--store-url" => options.store_url = Some(value()?).filter(|url| !url.is_empty()),
            "--help" | "-h" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if options.nodes == 0 || (options.nodes > 1 && options.store_url.is_none()) {
        return Err(
            "--nodes: at least 1, and more only with --store-url (SQLite files are \
                    not shared)"
                .to_owned(),
        );
    }
    if options.mode == Mode::Drain && options.store_url.is_some() {
        return Err("drain pre-fills a SQLite file: it does not take --store-url".to_owned());
    }
    if options.mode == Mode::Count && (options.nodes > 1 || options.total == 0) {
        return Err("count runs one node and needs --total above 0".to_owned());
    }
    if options.mode == Mode::Crash && (options.nodes > 1 || options.rate.is_none()) {
        return Err("crash runs one node at a fixed --rate".to_owned());
    }
    if options.connections == 0 || options.events_per_request == 0 || options.jobs == 0 {
        return Err("--connections, --events and --jobs must be positive".to_owned());
    }
    if options.connections > 900 || options.events_per_request > 999 {
        return Err("at most 900 connections and 999 events per request".to_owned());
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
    match run(&options) {
        Ok(report) => println!("{report}"),
        Err(err) => {
            eprintln!("deliver-load: {err}");
            std::process::exit(1);
        }
    }
}

fn run(options: &Options) -> Result<Value, String> {
    let (data_dir, remove) = match &options.data_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = std::env::temp_dir()
                .join(format!("deliver-load-{}-{nanos:09}", std::process::id()));
            (dir, !options.keep_data)
        }
    };
    std::fs::create_dir_all(&data_dir)
        .map_err(|err| format!("cannot create {}: {err}", data_dir.display()))?;
    if data_dir.join("junction.db").exists() {
        return Err(format!(
            "{} already holds a database: give a fresh --data-dir",
            data_dir.display()
        ));
    }
    // One thread for the generator, the sampler and the pre-fill; the sink has its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the async runtime: {err}"))?;
    let sink = Sink::start()?;
    let result = match options.mode {
        Mode::Live => runtime.block_on(live(options, &sink, &data_dir)),
        Mode::Drain => runtime.block_on(drain(options, &sink, &data_dir)),
        Mode::Crash => runtime.block_on(crash(options, &sink, &data_dir)),
        Mode::Count => runtime.block_on(count(options, &sink, &data_dir)),
    };
    if remove {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

/// The sample workspace with the ChartMogul webhook pointing at the sink (and the lane's
/// concurrency limit, if given), written to `dir/workspace.json`; returns the file and its text.
fn write_workspace(
    dir: &Path,
    sink: SocketAddr,
    max_concurrency: Option<u32>,
) -> Result<(PathBuf, String), String> {
    let mut workspace: Value =
        serde_json::from_str(SAMPLE_WORKSPACE).map_err(|err| err.to_string())?;
    let url = format!("http://{sink}/api/webhooks/bench?token=bench");
    let settings = workspace
        .pointer_mut("/destinations/0/settings")
        .and_then(Value::as_object_mut)
        .ok_or("the sample workspace has no destination settings")?;
    settings.insert("chartmogul_webhook_url".to_owned(), Value::String(url));
    if let Some(limit) = max_concurrency {
        let destination = workspace
            .pointer_mut("/destinations/0")
            .and_then(Value::as_object_mut)
            .ok_or("the sample workspace has no destination")?;
        destination.insert("delivery".to_owned(), json!({"max_concurrency": limit}));
    }
    let text = serde_json::to_string_pretty(&workspace).map_err(|err| err.to_string())?;
    let path = dir.join("workspace.json");
    std::fs::write(&path, &text)
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok((path, text))
}

fn start_junction(
    options: &Options,
    data_dir: &Path,
    workspace: &Path,
) -> Result<Junction, String> {
    let mut args = vec![
        "--workspace".to_owned(),
        workspace.display().to_string(),
        "--data-dir".to_owned(),
        data_dir.display().to_string(),
    ];
    if let Some(config) = &options.config {
        args.extend(["--config".to_owned(), config.display().to_string()]);
    }
    if let Some(url) = &options.store_url {
        args.extend(["--store-url".to_owned(), url.clone()]);
    }
    Junction::start(
        &options.junction,
        &args,
        &data_dir.join("junction.stderr"),
        Duration::from_secs(60),
    )
}

/// Starts `options.nodes` servers: one over `data_dir` (SQLite), or each over `data_dir/node-N`
/// on the shared PostgreSQL database. Every node is given the workspace: the same document, so
/// the versions the later ones store change nothing.
fn start_nodes(
    options: &Options,
    data_dir: &Path,
    workspace: &Path,
) -> Result<Vec<Junction>, String> {
    if options.store_url.is_none() {
        return Ok(vec![start_junction(options, data_dir, workspace)?]);
    }
    (0..options.nodes)
        .map(|node| {
            let dir = data_dir.join(format!("node-{node}"));
            std::fs::create_dir_all(&dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
            start_junction(options, &dir, workspace)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The webhook sink.

/// One webhook request the sink received.
#[derive(Clone, Copy, Debug)]
struct Receipt {
    connection: u16,
    counter: u64,
    at: Instant,
}

/// The sink's shared state.
struct Sink {
    address: SocketAddr,
    /// The sink thread's id, for its CPU time.
    tid: Option<u32>,
    receipts: Mutex<Vec<Receipt>>,
    /// Requests received, whatever their body.
    received: AtomicU64,
    /// Requests whose body had no message id of ours.
    unparsed: AtomicU64,
}

impl Sink {
    /// Binds 127.0.0.1 on a free port and serves on a thread of its own.
    fn start() -> Result<Arc<Sink>, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|err| format!("cannot bind the sink: {err}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|err| format!("cannot configure the sink's listener: {err}"))?;
        let address = listener
            .local_addr()
            .map_err(|err| format!("cannot read the sink's address: {err}"))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sink".to_owned())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    let _ = ready_tx.send(Err("cannot start the sink's runtime".to_owned()));
                    return;
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(err) => {
                            let _ = ready_tx.send(Err(format!("sink listener: {err}")));
                            return;
                        }
                    };
                    let sink = Arc::new(Sink {
                        address,
                        tid: current_thread_id(),
                        receipts: Mutex::new(Vec::with_capacity(1 << 20)),
                        received: AtomicU64::new(0),
                        unparsed: AtomicU64::new(0),
                    });
                    let _ = ready_tx.send(Ok(Arc::clone(&sink)));
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(serve_connection(stream, Arc::clone(&sink)));
                    }
                });
            })
            .map_err(|err| format!("cannot start the sink thread: {err}"))?;
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the sink did not start".to_owned())?
    }

    /// Records one webhook body received at `at`.
    fn record(&self, body: &[u8], at: Instant) {
        self.received.fetch_add(1, Ordering::Relaxed);
        match parse_message_id(body) {
            Some((connection, counter)) => self
                .receipts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Receipt {
                    connection,
                    counter,
                    at,
                }),
            None => {
                self.unparsed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn thread_ticks(&self) -> u64 {
        self.tid.and_then(own_thread_ticks).unwrap_or(0)
    }

    fn take_receipts(&self) -> Vec<Receipt> {
        std::mem::take(&mut *self.receipts.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Serves one keep-alive connection of the delivery engine.
async fn serve_connection(stream: tokio::net::TcpStream, sink: Arc<Sink>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request: Request<Incoming>| {
        let sink = Arc::clone(&sink);
        async move {
            let body = request.into_body().collect().await?.to_bytes();
            sink.record(&body, Instant::now());
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok::<_, hyper::Error>(response)
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The connection and counter of the `message_id` in a webhook body (`dl-CCC-III-N…`).
fn parse_message_id(body: &[u8]) -> Option<(u16, u64)> {
    const KEY: &[u8] = b"\"message_id\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let length = body[start..].iter().position(|b| *b == b'"')?;
    let id = std::str::from_utf8(&body[start..start + length]).ok()?;
    let mut parts = id.strip_prefix("dl-")?.split('-');
    let connection = parts.next()?.parse().ok()?;
    let _index = parts.next()?;
    let counter = parts.next()?.parse().ok()?;
    Some((connection, counter))
}

// ---------------------------------------------------------------------------------------------
// Watching the server.

/// One memory sample of the server (of all nodes together, in a cluster).
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    rss_kib: u64,
    /// Webhook requests the sink had received by then.
    received: u64,
}

/// Samples the RSS of the servers `pids` (summed) every `every` until aborted or all are gone.
fn start_sampler(
    pids: &[u32],
    sink: &Arc<Sink>,
    every: Duration,
) -> (Arc<Mutex<Vec<Sample>>>, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let samples = Arc::clone(&samples);
        let sink = Arc::clone(sink);
        let pids = pids.to_vec();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(Memory { rss_kib, .. }) = total_memory(&pids) else {
                    break;
                };
                samples
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Sample {
                        at: Instant::now(),
                        rss_kib,
                        received: sink.received(),
                    });
            }
        })
    };
    (samples, task)
}

/// The memory of the servers `pids`, summed; `None` once every one is gone.
fn total_memory(pids: &[u32]) -> Option<Memory> {
    pids.iter()
        .filter_map(|pid| memory(*pid))
        .reduce(|total, node| Memory {
            rss_kib: total.rss_kib + node.rss_kib,
            hwm_kib: total.hwm_kib + node.hwm_kib,
        })
}

/// What the load tool watches: the servers, and the PostgreSQL database they share, if any.
struct Watched<'a> {
    pids: Vec<u32>,
    sink: &'a Sink,
    generator_tid: Option<u32>,
    /// The shared database's name, to tell its backends from the server's other processes.
    database: Option<String>,
}

/// CPU times at one instant: each server's threads, the sink's thread, the generator's thread,
/// and PostgreSQL's processes.
struct CpuSnapshot {
    at: Instant,
    nodes: Vec<Vec<ThreadCpu>>,
    sink: u64,
    generator: u64,
    postgres: Option<PostgresTicks>,
}

fn cpu_snapshot(watched: &Watched<'_>) -> CpuSnapshot {
    CpuSnapshot {
        at: Instant::now(),
        nodes: watched.pids.iter().map(|pid| threads(*pid)).collect(),
        sink: watched.sink.thread_ticks(),
        generator: watched
            .generator_tid
            .and_then(own_thread_ticks)
            .unwrap_or(0),
        postgres: watched.database.as_deref().map(postgres_ticks),
    }
}

/// Each party's CPU between two snapshots, in percent of one core.
fn cpu_split(before: &CpuSnapshot, after: &CpuSnapshot) -> Value {
    let secs = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
    let pct = |ticks: u64| round1(ticks as f64 / TICKS_PER_SEC / secs * 100.0);
    let node_ticks = |(before, after): (&Vec<ThreadCpu>, &Vec<ThreadCpu>)| -> u64 {
        ticks_by_name(before, after)
            .iter()
            .map(|(_, ticks, _)| ticks)
            .sum()
    };
    let per_node: Vec<f64> = before
        .nodes
        .iter()
        .zip(&after.nodes)
        .map(|pair| pct(node_ticks(pair)))
        .collect();
    // Threads of the same name on every node are one entry: the cluster's share of the cores.
    let all_before: Vec<ThreadCpu> = before.nodes.concat();
    let all_after: Vec<ThreadCpu> = after.nodes.concat();
    let by_name = ticks_by_name(&all_before, &all_after);
    let server_ticks: u64 = by_name.iter().map(|(_, ticks, _)| ticks).sum();
    let threads: Vec<Value> = by_name
        .iter()
        .filter(|(_, ticks, _)| *ticks > 0)
        .map(|(name, ticks, count)| json!({"name": name, "threads": count, "cpu_pct": pct(*ticks)}))
        .collect();
    let mut split = json!({
        "seconds": round3(secs),
        "junction_pct": pct(server_ticks),
        "junction_node_pct": per_node,
        "junction_threads": threads,
        "sink_pct": pct(after.sink.saturating_sub(before.sink)),
        "generator_pct": pct(after.generator.saturating_sub(before.generator)),
    });
    if let (Some(before), Some(after)) = (before.postgres, after.postgres) {
        split["postgres_pct"] = json!(pct(after.all.saturating_sub(before.all)));
        split["postgres_database_pct"] = json!(pct(after.database.saturating_sub(before.database)));
    }
    split
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn mib(kib: u64) -> f64 {
    round1(kib as f64 / 1024.0)
}

/// Min, median and max RSS of `samples`, in MiB.
fn rss_summary(samples: &[Sample]) -> Value {
    let mut rss: Vec<u64> = samples.iter().map(|s| s.rss_kib).collect();
    rss.sort_unstable();
    json!({
        "samples": rss.len(),
        "min": mib(quantile(&rss, 0.0)),
        "median": mib(quantile(&rss, 0.5)),
        "max": mib(quantile(&rss, 1.0)),
    })
}

// ---------------------------------------------------------------------------------------------
// Live: events in, deliveries out.

/// What one connection sent: per request (in order) when it was due and whether it was
/// acknowledged with 200.
#[derive(Default)]
struct ConnectionLog {
    due: Vec<Instant>,
    acked: Vec<bool>,
    refused: Vec<u16>,
}

async fn live(options: &Options, sink: &Arc<Sink>, data_dir: &Path) -> Result<Value, String> {
    let load_before = load_average();
    let (workspace, _) = write_workspace(data_dir, sink.address, options.max_concurrency)?;
    let junctions = start_nodes(options, data_dir, &workspace)?;
    let watched = Watched {
        pids: junctions.iter().map(Junction::pid).collect(),
        sink,
        generator_tid: current_thread_id(),
        database: options.store_url.as_deref().and_then(database_name),
    };
    let (samples, sampler) = start_sampler(&watched.pids, sink, options.sample_every);

    let started = Instant::now();
    let measure_from = started + options.warmup;
    let until = measure_from + options.duration;
    let mut tasks = Vec::with_capacity(options.connections);
    for connection in 0..options.connections {
        let options = options.clone();
        // In turn, so that every node gets the same share of the load.
        let addr = junctions[connection % junctions.len()].tracking;
        tasks.push(tokio::spawn(async move {
            drive(connection, &options, addr, started, until, None).await
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = cpu_snapshot(&watched);
    tokio::time::sleep_until(until.into()).await;
    let cpu_after = cpu_snapshot(&watched);
    let mut logs = Vec::with_capacity(tasks.len());
    for task in tasks {
        logs.push(task.await.map_err(|err| err.to_string())??);
    }
    let per_request = options.events_per_request as u64;
    let acked_total: u64 = logs
        .iter()
        .map(|log| log.acked.iter().filter(|ok| **ok).count() as u64 * per_request)
        .sum();
    // The rest of the backlog: wait until everything acknowledged arrived (or the timeout), then
    // a little longer for duplicates.
    let sent_stopped = Instant::now();
    while sink.received() < acked_total && sent_stopped.elapsed() < options.drain_timeout {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = total_memory(&watched.pids).unwrap_or_default();
    sampler.abort();
    let stopped = stop_nodes(junctions);
    let load_after = load_average();

    let receipts = sink.take_receipts();
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let analysis = analyse_live(options, &logs, &receipts, measure_from, until);
    Ok(json!({
        "mode": "live",
        "nodes": watched.pids.len(),
        "store": if options.store_url.is_some() { "postgres" } else { "sqlite" },
        "target_events_per_sec": options.rate,
        "connections": options.connections,
        "events_per_request": options.events_per_request,
        "seconds": round3(options.duration.as_secs_f64()),
        "events": analysis,
        "unparsed_webhooks": sink.unparsed.load(Ordering::Relaxed),
        "junction": {
            "vmhwm_mib": mib(peak.hwm_kib),
            "rss_mib": rss_summary(&samples),
            "stopped": stopped,
        },
        "cpu": cpu_split(&cpu_before, &cpu_after),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }))
}

/// The count scenario: `--total` events in as fast as they are answered, then the wait for their
/// last delivery; the server's CPU over that time divided by the deliveries.
async fn count(options: &Options, sink: &Arc<Sink>, data_dir: &Path) -> Result<Value, String> {
    let load_before = load_average();
    let (workspace, _) = write_workspace(data_dir, sink.address, options.max_concurrency)?;
    let junction = start_junction(options, data_dir, &workspace)?;
    let pid = junction.pid();
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    let (samples, sampler) = start_sampler(&[pid], sink, options.sample_every);
    let watched = Watched {
        pids: vec![pid],
        sink,
        generator_tid: current_thread_id(),
        database: None,
    };
    let per_request = options.events_per_request as u64;
    let requests = options.total.div_ceil(per_request);
    let tickets = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_snapshot(&watched);
    let process_before = cpu_ticks(&stat).ok_or("cannot read the server's CPU time")?;
    let started = Instant::now();
    // Far enough never to be reached: the tickets end the run.
    let until = started + Duration::from_secs(86_400);
    let mut tasks = Vec::with_capacity(options.connections);
    for connection in 0..options.connections {
        let options = options.clone();
        let addr = junction.tracking;
        let tickets = Some((Arc::clone(&tickets), requests));
        tasks.push(tokio::spawn(async move {
            drive(connection, &options, addr, started, until, tickets).await
        }));
    }
    let mut logs = Vec::with_capacity(tasks.len());
    for task in tasks {
        logs.push(task.await.map_err(|err| err.to_string())??);
    }
    let sent_secs = started.elapsed().as_secs_f64();
    let acked_total: u64 = logs
        .iter()
        .map(|log| log.acked.iter().filter(|ok| **ok).count() as u64 * per_request)
        .sum();
    while sink.received() < acked_total && started.elapsed() < options.drain_timeout {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let process_after = cpu_ticks(&stat).ok_or("cannot read the server's CPU time")?;
    let cpu_after = cpu_snapshot(&watched);
    let finished = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = memory(pid).unwrap_or_default();
    sampler.abort();
    let stopped = stop_nodes(vec![junction]);
    let load_after = load_average();

    let receipts = sink.take_receipts();
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let analysis = analyse_live(options, &logs, &receipts, started, finished);
    let delivered = analysis["delivered"].as_u64().unwrap_or(0).max(1) as f64;
    let micros = |ticks: u64| round1(ticks as f64 / TICKS_PER_SEC * 1e6 / delivered);
    let sink_ticks = cpu_after.sink.saturating_sub(cpu_before.sink);
    Ok(json!({
        "mode": "count",
        "total": options.total,
        "connections": options.connections,
        "events_per_request": options.events_per_request,
        "sent_secs": round3(sent_secs),
        "secs": round3(finished.duration_since(started).as_secs_f64()),
        "events": analysis,
        "unparsed_webhooks": sink.unparsed.load(Ordering::Relaxed),
        "junction_cpu_us_per_delivery": micros(process_after.saturating_sub(process_before)),
        "sink_cpu_us_per_delivery": micros(sink_ticks),
        "junction": {
            "vmhwm_mib": mib(peak.hwm_kib),
            "rss_mib": rss_summary(&samples),
            "stopped": stopped,
        },
        "cpu": cpu_split(&cpu_before, &cpu_after),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }))
}

/// The crash scenario: `live` at a fixed rate, SIGKILL at the end of the window, a restart on
/// the same data, then every acknowledged event must arrive; what arrived twice is counted.
async fn crash(options: &Options, sink: &Arc<Sink>, data_dir: &Path) -> Result<Value, String> {
    let (workspace, _) = write_workspace(data_dir, sink.address, options.max_concurrency)?;
    let junction = start_junction(options, data_dir, &workspace)?;
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let until = measure_from + options.duration;
    let mut tasks = Vec::with_capacity(options.connections);
    for connection in 0..options.connections {
        let options = options.clone();
        let addr = junction.tracking;
        tasks.push(tokio::spawn(async move {
            drive(connection, &options, addr, started, until, None).await
        }));
    }
    // Killed while events still come in and deliveries are in full flow.
    tokio::time::sleep_until(until.into()).await;
    let received_at_kill = sink.received();
    junction.kill()?;
    let killed = Instant::now();
    let mut logs = Vec::with_capacity(tasks.len());
    for task in tasks {
        logs.push(task.await.map_err(|err| err.to_string())??);
    }
    let restarted = start_junction(options, data_dir, &workspace)?;
    let per_request = options.events_per_request as u64;
    let acked_total: u64 = logs
        .iter()
        .map(|log| log.acked.iter().filter(|ok| **ok).count() as u64 * per_request)
        .sum();
    let backlog_at_kill = acked_total.saturating_sub(received_at_kill);
    while sink.received() < acked_total && killed.elapsed() < options.drain_timeout {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let caught_up = killed.elapsed();
    // Duplicates count towards `received`, so the last jobs the dead process had leased may still
    // be waiting for their lease to end (the config's `lease_secs`, at most CRASH_LEASE_WAIT).
    tokio::time::sleep(CRASH_LEASE_WAIT).await;
    let stopped = stop_nodes(vec![restarted]);
    let receipts = sink.take_receipts();
    let analysis = analyse_live(options, &logs, &receipts, measure_from, until);
    Ok(json!({
        "mode": "crash",
        "target_events_per_sec": options.rate,
        "events": analysis,
        "received_before_kill": received_at_kill,
        "backlog_at_kill": backlog_at_kill,
        "caught_up_after_secs": round3(caught_up.as_secs_f64()),
        "stopped": stopped,
    }))
}

/// Stops every node (SIGTERM, at once, so that the last does not wait for the first to finish);
/// how each ended, `; `-separated.
fn stop_nodes(junctions: Vec<Junction>) -> String {
    let stopping: Vec<_> = junctions
        .into_iter()
        .map(|junction| std::thread::spawn(move || junction.stop(Duration::from_secs(60))))
        .collect();
    stopping
        .into_iter()
        .map(|stopping| match stopping.join() {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(err)) => err,
            Err(_) => "the stopping thread panicked".to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Joins what was sent with what arrived.
fn analyse_live(
    options: &Options,
    logs: &[ConnectionLog],
    receipts: &[Receipt],
    measure_from: Instant,
    until: Instant,
) -> Value {
    let per_request = options.events_per_request;
    // First receipt of every event sent, by connection and counter - 1.
    let mut first: Vec<Vec<Option<Instant>>> = logs
        .iter()
        .map(|log| vec![None; log.due.len() * per_request])
        .collect();
    let (mut duplicates, mut unknown) = (0u64, 0u64);
    for receipt in receipts {
        let slot = first
            .get_mut(usize::from(receipt.connection))
            .and_then(|events| {
                let index = usize::try_from(receipt.counter).ok()?.checked_sub(1)?;
                events.get_mut(index)
            });
        match slot {
            Some(Some(_)) => duplicates += 1,
            Some(slot) => *slot = Some(receipt.at),
            None => unknown += 1,
        }
    }
    let in_window = |at: Instant| at >= measure_from && at < until;
    let mut latencies = Vec::new();
    let (mut sent, mut acked, mut acked_in_window, mut undelivered) = (0u64, 0u64, 0u64, 0u64);
    let (mut delivered, mut delivered_in_window, mut delivered_before_end) = (0u64, 0u64, 0u64);
    let mut acked_before_end = 0u64;
    let mut last_delivery = None::<Instant>;
    for (log, events) in logs.iter().zip(&first) {
        for (k, (due, ok)) in log.due.iter().zip(&log.acked).enumerate() {
            sent += per_request as u64;
            if !ok {
                continue;
            }
            acked += per_request as u64;
            if *due < until {
                acked_before_end += per_request as u64;
            }
            let measured = in_window(*due);
            if measured {
                acked_in_window += per_request as u64;
            }
            for received in &events[k * per_request..(k + 1) * per_request] {
                let Some(at) = *received else {
                    undelivered += 1;
                    continue;
                };
                delivered += 1;
                last_delivery = Some(last_delivery.map_or(at, |last| last.max(at)));
                if in_window(at) {
                    delivered_in_window += 1;
                }
                if at < until {
                    delivered_before_end += 1;
                }
                if measured {
                    latencies.push(at.saturating_duration_since(*due));
                }
            }
        }
    }
    latencies.sort_unstable();
    let secs = until.duration_since(measure_from).as_secs_f64().max(1e-9);
    let refused: Vec<u16> = logs.iter().flat_map(|log| log.refused.clone()).collect();
    json!({
        "sent": sent,
        "acked": acked,
        "refused_requests": refused.len(),
        "refused_statuses": refused.iter().take(5).collect::<Vec<_>>(),
        "acked_per_sec": (acked_in_window as f64 / secs).round(),
        "delivered": delivered,
        "delivered_per_sec": (delivered_in_window as f64 / secs).round(),
        "backlog_at_end": acked_before_end.saturating_sub(delivered_before_end),
        "drained_after_secs": last_delivery.map(|last| round3(last.saturating_duration_since(until).as_secs_f64())),
        "undelivered": undelivered,
        "duplicates": duplicates,
        "unknown_ids": unknown,
        "latency_events": latencies.len(),
        "latency_ms": {
            "p50": quantile_ms(&latencies, 0.5),
            "p90": quantile_ms(&latencies, 0.9),
            "p99": quantile_ms(&latencies, 0.99),
            "max": quantile_ms(&latencies, 1.0),
        },
    })
}

/// One keep-alive connection sending batches until `until`.
/// With `tickets` (requests taken so far by all connections, and how many to send in all), the
/// connection also stops once every request has been taken.
async fn drive(
    connection: usize,
    options: &Options,
    addr: SocketAddr,
    started: Instant,
    until: Instant,
    tickets: Option<(Arc<AtomicU64>, u64)>,
) -> Result<ConnectionLog, String> {
    let placeholder = counter_placeholder();
    let events = (0..options.events_per_request)
        .map(|i| {
            let message_id = format!("dl-{connection:03}-{i:03}-{placeholder}");
            identify_event(&message_id, connection * 1_000 + i)
        })
        .collect();
    let mut request = BatchRequest::new(
        &addr.to_string(),
        SAMPLE_WRITE_KEY,
        "junction-deliver-load",
        events,
    )?;
    let mut stream = connect(addr).await?;
    let mut reader = ResponseReader::default();
    let mut log = ConnectionLog::default();
    // Fixed rate: connections take turns, so request k of this connection is due at
    // `started + (k × connections + connection) / requests_per_sec`.
    let interval = options.rate.map(|rate| {
        let requests_per_sec = rate / options.events_per_request as f64;
        Duration::from_secs_f64(options.connections as f64 / requests_per_sec)
    });
    for k in 0u32.. {
        let due = match interval {
            Some(interval) => {
                let offset = interval.mul_f64(connection as f64 / options.connections as f64);
                let due = started + offset + interval * k;
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        if due >= until {
            break;
        }
        if let Some((taken, requests)) = &tickets
            && taken.fetch_add(1, Ordering::Relaxed) >= *requests
        {
            break;
        }
        request.next_ids();
        let answered = match stream.write_all(request.bytes()).await {
            Ok(()) => reader.read(&mut stream).await,
            Err(err) => Err(format!("cannot send: {err}")),
        };
        let status = match answered {
            Ok(status) => status,
            // The crash scenario kills the server under load: the request it was answering was
            // not acknowledged, so it does not count, and this connection is done.
            Err(_) if options.mode == Mode::Crash => break,
            Err(err) => return Err(err),
        };
        // Latency counts from when the request was due, so that a slow answer delaying the
        // next request counts against the server (no coordinated omission).
        log.due.push(due);
        log.acked.push(status == 200);
        if status != 200 {
            log.refused.push(status);
        }
    }
    Ok(log)
}

// ---------------------------------------------------------------------------------------------
// Drain: a pre-filled backlog.

async fn drain(options: &Options, sink: &Arc<Sink>, data_dir: &Path) -> Result<Value, String> {
    let (workspace, text) = write_workspace(data_dir, sink.address, options.max_concurrency)?;
    let prefill_started = Instant::now();
    let stored = prefill(&data_dir.join("junction.db"), &text, options.jobs).await?;
    let prefill_secs = prefill_started.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(data_dir.join("junction.db")).map_or(0, |m| m.len());
    eprintln!(
        "deliver-load: {stored} pending jobs written in {prefill_secs:.1} s ({:.0} MiB); \
         starting junction serve",
        db_bytes as f64 / 1048576.0
    );

    let load_before = load_average();
    let spawned = Instant::now();
    let junction = start_junction(options, data_dir, &workspace)?;
    let pid = junction.pid();
    let startup_secs = spawned.elapsed().as_secs_f64();
    let (samples, sampler) = start_sampler(&[pid], sink, options.sample_every);
    let watched = Watched {
        pids: vec![pid],
        sink,
        generator_tid: current_thread_id(),
        database: None,
    };
    let cpu_before = cpu_snapshot(&watched);
    let target = stored;
    let mut timed_out = false;
    while sink.received() < target {
        if spawned.elapsed() > options.drain_timeout {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_after = cpu_snapshot(&watched);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = memory(pid).unwrap_or_default();
    sampler.abort();
    let stopped = junction.stop(Duration::from_secs(60));
    let load_after = load_average();

    let receipts = sink.take_receipts();
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let mut seen = vec![false; usize::try_from(target).unwrap_or(0)];
    let (mut delivered, mut duplicates, mut unknown) = (0u64, 0u64, 0u64);
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for receipt in &receipts {
        let slot = (receipt.connection == PREFILL_CONNECTION)
            .then(|| usize::try_from(receipt.counter).ok()?.checked_sub(1))
            .flatten()
            .and_then(|index| seen.get_mut(index));
        match slot {
            Some(true) => duplicates += 1,
            Some(slot) => {
                *slot = true;
                delivered += 1;
                first = Some(first.map_or(receipt.at, |t| t.min(receipt.at)));
                last = Some(last.map_or(receipt.at, |t| t.max(receipt.at)));
            }
            None => unknown += 1,
        }
    }
    let (first, last) = (first.unwrap_or(spawned), last.unwrap_or(spawned));
    let drain_secs = last
        .saturating_duration_since(first)
        .as_secs_f64()
        .max(1e-9);
    let during: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at >= first && s.at <= last)
        .collect();
    let third = during.len() / 3;
    let timeline: Vec<Value> = (0..=10)
        .filter_map(|tenth| {
            let sample = during.get((during.len().saturating_sub(1)) * tenth / 10)?;
            Some(json!({
                "secs": round1(sample.at.saturating_duration_since(spawned).as_secs_f64()),
                "delivered": sample.received,
                "rss_mib": mib(sample.rss_kib),
            }))
        })
        .collect();
    Ok(json!({
        "mode": "drain",
        "jobs": target,
        "prefill_secs": round1(prefill_secs),
        "db_mib": round1(db_bytes as f64 / 1048576.0),
        "startup_secs": round3(startup_secs),
        "first_delivery_secs": round3(first.saturating_duration_since(spawned).as_secs_f64()),
        "drain_secs": round3(drain_secs),
        "delivered": delivered,
        "delivered_per_sec": (delivered as f64 / drain_secs).round(),
        "timed_out": timed_out,
        "duplicates": duplicates,
        "unknown_ids": unknown,
        "unparsed_webhooks": sink.unparsed.load(Ordering::Relaxed),
        "junction": {
            "vmhwm_mib": mib(peak.hwm_kib),
            "rss_mib": rss_summary(&during),
            "rss_first_third_mib": rss_summary(&during[..third]),
            "rss_last_third_mib": rss_summary(&during[during.len() - third..]),
            "timeline": timeline,
            "stopped": stopped.map(|status| status.to_string()).unwrap_or_else(|err| err),
        },
        "cpu": cpu_split(&cpu_before, &cpu_after),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }))
}

/// Writes `jobs` identify events, routed through the workspace (`text`), into a fresh store at
/// `path`: one pending delivery job each, nothing delivered. Returns the jobs stored.
async fn prefill(path: &Path, text: &str, jobs: usize) -> Result<u64, String> {
    let config = WorkspaceConfig::parse(text, Format::Json).map_err(|err| err.to_string())?;
    let snapshot = Snapshot::compile(config).map_err(|err| err.to_string())?;
    let source = snapshot
        .source_for_write_key(SAMPLE_WRITE_KEY)
        .ok_or("the workspace has no source for the sample write key")?;
    let store = Arc::new(
        SqliteStore::open(path, SqliteOptions::default())
            .await
            .map_err(|err| format!("cannot open the store: {err}"))?,
    );
    let mut in_flight = JoinSet::new();
    let mut stored = 0u64;
    let mut check = |joined: Option<Result<Result<Vec<CommitOutcome>, _>, _>>| {
        let outcomes = match joined {
            Some(Ok(Ok(outcomes))) => outcomes,
            Some(Ok(Err(err))) => return Err(format!("commit failed: {err}")),
            Some(Err(err)) => return Err(format!("commit task failed: {err}")),
            None => return Ok(()),
        };
        for outcome in outcomes {
            match outcome {
                CommitOutcome::Stored { job_ids, .. } if job_ids.len() == 1 => stored += 1,
                other => return Err(format!("unexpected commit outcome {other:?}")),
            }
        }
        Ok(())
    };
    let mut n = 0;
    while n < jobs {
        let end = (n + PREFILL_BATCH).min(jobs);
        let received_at = SystemTime::now();
        let received_ms = received_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let ctx = NormaliseContext::new(received_at, None, &random_message_id);
        let mut events = Vec::with_capacity(end - n);
        for i in n..end {
            let message_id = format!("dl-{PREFILL_CONNECTION:03}-000-{:012}", i + 1);
            let Value::Object(mut event) = identify_event(&message_id, i % 100_000) else {
                return Err("the identify event is not an object".to_owned());
            };
            normalise(&mut event, &ctx);
            let event = Value::Object(event);
            let mut routed = Vec::new();
            let mut discards = Vec::new();
            for outcome in route(&snapshot, source, &event) {
                match outcome {
                    RouteOutcome::Job(job) => routed.push(job.into_new_job()),
                    RouteOutcome::Discard(discard) => discards.push(discard),
                }
            }
            events.push(NewEvent {
                source_id: source.id().to_owned(),
                message_id,
                received_at: received_ms,
                payload: serde_json::to_vec(&event).map_err(|err| err.to_string())?,
                jobs: routed,
                discards,
                for_profiles: false,
            });
        }
        while in_flight.len() >= PREFILL_IN_FLIGHT {
            check(in_flight.join_next().await)?;
        }
        let store = Arc::clone(&store);
        in_flight.spawn(async move { store.commit(events).await });
        n = end;
        if n % 100_000 < PREFILL_BATCH {
            eprintln!("deliver-load: pre-filled {n} of {jobs}");
        }
    }
    while !in_flight.is_empty() {
        check(in_flight.join_next().await)?;
    }
    let counts = store.counts().await.map_err(|err| err.to_string())?;
    store.close().await.map_err(|err| err.to_string())?;
    if counts.jobs != stored {
        return Err(format!(
            "the store counts {} jobs, {stored} were committed",
            counts.jobs
        ));
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_found_in_webhook_bodies() {
        let body = br#"{"type":"contact","message_id":"dl-003-017-000000001234","email":"x"}"#;
        assert_eq!(parse_message_id(body), Some((3, 1234)));
        assert_eq!(parse_message_id(br#"{"message_id":"other"}"#), None);
        assert_eq!(parse_message_id(b"{}"), None);
    }
}

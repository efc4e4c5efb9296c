//! `ingest-load`: the load generator of `bench/ingest.sh`. It drives a running `junction serve`
//! on 127.0.0.1 with pre-serialised `/v1/batch` requests of realistic identify events over
//! keep-alive connections, either as fast as they are answered (throughput) or at a fixed rate
//! (latency), and prints one JSON line of results. Given several servers (the nodes of a cluster),
//! it spreads the connections over them in turn.
//!
//! It is deliberately a raw HTTP/1.1 writer and reader on one async thread: it shares the
//! benchmark machine's two cores with the server, so each request must cost it as little as
//! possible (its CPU time is reported so that the share can be seen).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use junction_bench::{
    BatchRequest, ResponseReader, connect, counter_placeholder, identify_event, round3,
    self_cpu_ticks,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

/// What to run, from the command line.
#[derive(Clone, Debug)]
struct Options {
    /// The servers: connection `i` goes to `addrs[i % addrs.len()]`.
    addrs: Vec<SocketAddr>,
    write_key: String,
    connections: usize,
    events_per_request: usize,
    /// Measured time (after the warm-up).
    duration: Duration,
    /// Time before measuring starts: the server's caches and the database's first pages.
    warmup: Duration,
    /// Events per second in total; none means as fast as answers come.
    rate: Option<f64>,
    /// Stop after this many requests per connection even if `duration` is not over (a bound on
    /// the load whatever happens).
    max_requests: u64,
}

fn usage() -> String {
    "usage: ingest-load --addr 127.0.0.1:PORT[,127.0.0.1:PORT…] [--write-key KEY] [--connections N] \
     [--events N] [--duration SECS] [--warmup SECS] [--rate EVENTS_PER_SEC] [--max-requests N]"
        .to_owned()
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        addrs: Vec::new(),
        write_key: "junction-sample-write-key".to_owned(),
        connections: 4,
        events_per_request: 100,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        rate: None,
        max_requests: 1_000_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: not a number: {text}"))
        };
        match flag.as_str() {
            "--addr" => {
                for text in value()?.split(',') {
                    let addr = text
                        .parse()
                        .map_err(|_| format!("--addr: not an address: {text}"))?;
                    options.addrs.push(addr);
                }
            }
            "--write-key" => options.write_key = value()?,
            "--connections" => options.connections = number(value()?)? as usize,
            "--events" => options.events_per_request = number(value()?)? as usize,
            "--duration" => options.duration = Duration::from_secs_f64(number(value()?)?),
            "--warmup" => options.warmup = Duration::from_secs_f64(number(value()?)?),
            "--rate" => options.rate = Some(number(value()?)?).filter(|rate| *rate > 0.0),
            "--max-requests" => options.max_requests = number(value()?)? as u64,
            "--help" | "-h" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if options.addrs.is_empty() {
        options.addrs.push(SocketAddr::from(([127, 0, 0, 1], 8080)));
    }
    // Load tests only ever target this machine.
    if let Some(addr) = options.addrs.iter().find(|addr| !addr.ip().is_loopback()) {
        return Err(format!("--addr must be a loopback address, not {addr}"));
    }
    if options.connections == 0 || options.events_per_request == 0 {
        return Err("--connections and --events must be positive".to_owned());
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
    // One thread: the generator should take as little of the two cores as it can.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(report) => println!("{report}"),
        Err(err) => {
            eprintln!("ingest-load: {err}");
            std::process::exit(1);
        }
    }
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    /// Answer times of the measured requests, from when each was due (fixed rate) or sent.
    latencies: Vec<Duration>,
    ok_events: u64,
    ok_requests: u64,
    /// Events answered 200 including the warm-up, to relate to the server's CPU time.
    all_ok_events: u64,
    /// Non-200 answers by status.
    refused: Vec<u16>,
}

async fn run(options: Options) -> Result<Value, String> {
    let cpu_before = self_cpu_ticks();
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let until = measure_from + options.duration;
    let mut tasks = Vec::with_capacity(options.connections);
    for connection in 0..options.connections {
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            drive(connection, &options, started, measure_from, until).await
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.map_err(|err| err.to_string())??;
        total.latencies.extend(tally.latencies);
        total.ok_events += tally.ok_events;
        total.ok_requests += tally.ok_requests;
        total.all_ok_events += tally.all_ok_events;
        total.refused.extend(tally.refused);
    }
    let elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .min(options.duration)
        .as_secs_f64();
    let cpu_secs = (self_cpu_ticks() - cpu_before) as f64 / 100.0;
    total.latencies.sort_unstable();
    let ms = |q: f64| -> f64 {
        if total.latencies.is_empty() {
            return 0.0;
        }
        let index = ((total.latencies.len() - 1) as f64 * q).round() as usize;
        round3(total.latencies[index].as_secs_f64() * 1000.0)
    };
    Ok(json!({
        "mode": if options.rate.is_some() { "rate" } else { "throughput" },
        "servers": options.addrs.len(),
        "target_events_per_sec": options.rate,
        "connections": options.connections,
        "events_per_request": options.events_per_request,
        "seconds": round3(elapsed),
        "events": total.ok_events,
        "events_with_warmup": total.all_ok_events,
        "requests": total.ok_requests,
        "events_per_sec": if elapsed > 0.0 { (total.ok_events as f64 / elapsed).round() } else { 0.0 },
        "refused_requests": total.refused.len(),
        "refused_statuses": total.refused.iter().take(5).collect::<Vec<_>>(),
        "latency_ms": { "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": ms(1.0) },
        "generator_cpu_secs": round3(cpu_secs),
    }))
}

/// One keep-alive connection sending requests until `until` (or `max_requests`).
async fn drive(
    connection: usize,
    options: &Options,
    started: Instant,
    measure_from: Instant,
    until: Instant,
) -> Result<Tally, String> {
    let addr = options.addrs[connection % options.addrs.len()];
    let mut request = batch_request(connection, addr, options)?;
    let mut stream = connect(addr).await?;
    let mut reader = ResponseReader::default();
    let mut tally = Tally::default();
    // Fixed rate: connections take turns, so request k of this connection is due at
    // `started + (k * connections + connection) / requests_per_sec`.
    let interval = options.rate.map(|rate| {
        let requests_per_sec = rate / options.events_per_request as f64;
        Duration::from_secs_f64(options.connections as f64 / requests_per_sec)
    });
    let offset =
        interval.map(|interval| interval.mul_f64(connection as f64 / options.connections as f64));
    for k in 0..options.max_requests {
        let due = match (interval, offset) {
            (Some(interval), Some(offset)) => {
                let due = started + offset + interval.mul_f64(k as f64);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            _ => Instant::now(),
        };
        if due >= until {
            break;
        }
        request.next_ids();
        stream
            .write_all(request.bytes())
            .await
            .map_err(|err| format!("cannot send: {err}"))?;
        let status = reader.read(&mut stream).await?;
        let answered = Instant::now();
        if status == 200 {
            tally.all_ok_events += options.events_per_request as u64;
        }
        if due < measure_from {
            continue;
        }
        // Latency from when the request was due, so that a slow answer delaying the next
        // request counts against the server (no coordinated omission).
        tally.latencies.push(answered - due);
        if status == 200 {
            tally.ok_requests += 1;
            tally.ok_events += options.events_per_request as u64;
        } else {
            tally.refused.push(status);
        }
    }
    Ok(tally)
}

/// The connection's pre-serialised batch: realistic identify events whose message ids end with
/// the counter placeholder, patched before each send so that every event is new to the server.
fn batch_request(
    connection: usize,
    addr: SocketAddr,
    options: &Options,
) -> Result<BatchRequest, String> {
    let placeholder = counter_placeholder();
    let events = (0..options.events_per_request)
        .map(|i| {
            let message_id = format!("bench-{connection:03}-{i:03}-{placeholder}");
            identify_event(&message_id, connection * 1_000 + i)
        })
        .collect();
    BatchRequest::new(
        &addr.to_string(),
        &options.write_key,
        "junction-ingest-load",
        events,
    )
}

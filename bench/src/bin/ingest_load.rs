//! `ingest-load`: the load generator of `bench/ingest.sh`. It drives a running `junction serve`
//! on 127.0.0.1 with pre-serialised `/v1/batch` requests of realistic identify events over
//! keep-alive connections, either as fast as they are answered (throughput) or at a fixed rate
//! (latency), and prints one JSON line of results.
//!
//! It is deliberately a raw HTTP/1.1 writer and reader on one async thread: it shares the
//! benchmark machine's two cores with the server, so each request must cost it as little as
//! possible (its CPU time is reported so that the share can be seen).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Width of the per-connection counter in every `messageId`: patched in place per request, so
/// every event is new to the server (duplicates take a cheaper path and would flatter it).
const COUNTER_DIGITS: usize = 12;

/// What to run, from the command line.
#[derive(Clone, Debug)]
struct Options {
    addr: SocketAddr,
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
    "usage: ingest-load --addr 127.0.0.1:PORT [--write-key KEY] [--connections N] \
     [--events N] [--duration SECS] [--warmup SECS] [--rate EVENTS_PER_SEC] [--max-requests N]"
        .to_owned()
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
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
                let text = value()?;
                options.addr = text
                    .parse()
                    .map_err(|_| format!("--addr: not an address: {text}"))?;
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
    // Load tests only ever target this machine.
    if !options.addr.ip().is_loopback() {
        return Err(format!(
            "--addr must be a loopback address, not {}",
            options.addr
        ));
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

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One keep-alive connection sending requests until `until` (or `max_requests`).
async fn drive(
    connection: usize,
    options: &Options,
    started: Instant,
    measure_from: Instant,
    until: Instant,
) -> Result<Tally, String> {
    let mut request = BatchRequest::new(connection, options);
    let mut stream = connect(options.addr).await?;
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

async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    stream
        .set_nodelay(true)
        .map_err(|err| format!("cannot set TCP_NODELAY: {err}"))?;
    Ok(stream)
}

/// A pre-serialised `POST /v1/batch` (headers and body) whose message ids are patched in place
/// before each send.
struct BatchRequest {
    bytes: Vec<u8>,
    /// Where each event's counter digits start in `bytes`.
    counter_at: Vec<usize>,
    counter: u64,
}

impl BatchRequest {
    fn new(connection: usize, options: &Options) -> Self {
        let placeholder = "0".repeat(COUNTER_DIGITS);
        let batch: Vec<Value> = (0..options.events_per_request)
            .map(|i| identify_event(connection, i, &placeholder))
            .collect();
        let body = json!({
            "batch": batch,
            "sentAt": "2024-03-01T12:00:01.000Z",
            "writeKey": options.write_key,
        });
        let body = body.to_string();
        let credentials = base64(&format!("{}:", options.write_key));
        let head = format!(
            "POST /v1/batch HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {credentials}\r\n\
             Content-Type: application/json\r\nUser-Agent: junction-ingest-load\r\n\
             Content-Length: {}\r\n\r\n",
            options.addr,
            body.len()
        );
        let mut bytes = head.into_bytes();
        let body_at = bytes.len();
        bytes.extend_from_slice(body.as_bytes());
        let marker = format!("-{placeholder}\"");
        let counter_at = find_all(&bytes[body_at..], marker.as_bytes())
            .map(|at| body_at + at + 1)
            .collect();
        Self {
            bytes,
            counter_at,
            counter: 0,
        }
    }

    /// Gives every event of the request a message id never sent before.
    fn next_ids(&mut self) {
        for at in &self.counter_at {
            self.counter += 1;
            let mut n = self.counter;
            for digit in self.bytes[*at..*at + COUNTER_DIGITS].iter_mut().rev() {
                *digit = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, window)| *window == needle)
        .map(|(at, _)| at)
}

/// A realistic identify call as the official clients send it: context, integrations, 20 traits
/// with a nested company (about 1 KB). The message id ends with the counter placeholder.
fn identify_event(connection: usize, i: usize, placeholder: &str) -> Value {
    let user = connection * 1_000 + i;
    json!({
        "type": "identify",
        "messageId": format!("bench-{connection:03}-{i:03}-{placeholder}"),
        "userId": format!("user-{user}"),
        "anonymousId": format!("6f1c9a4e-2b7d-4e3f-8a5c-{user:012}"),
        "timestamp": "2024-03-01T12:00:00.000Z",
        "context": {
            "ip": "203.0.113.9",
            "library": {"name": "analytics-node-next", "version": "3.1.0"},
            "locale": "en-US",
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15"
        },
        "integrations": {},
        "traits": {
            "email": format!("user{user}@example.com"),
            "first_name": "Jane",
            "last_name": "Doe",
            "name": "Jane Doe",
            "title": "CTO",
            "phone": "+1 555 0100",
            "linkedIn": "https://www.linkedin.com/in/janedoe",
            "twitter": "@janedoe",
            "company": {"id": format!("acme-{}", user % 97), "name": "Acme Inc.", "industry": "Software", "employees": 120},
            "plan": "enterprise",
            "createdAt": "2023-06-15T08:30:00.000Z",
            "logins": 342,
            "verified": true,
            "city": "Berlin",
            "country": "DE",
            "language": "de",
            "timezone": "Europe/Berlin",
            "referrer": "newsletter",
            "avatar": "https://cdn.example.com/a/4217.png",
            "role": "admin"
        }
    })
}

/// Reads HTTP/1.1 responses with a `Content-Length` body off a keep-alive connection.
#[derive(Default)]
struct ResponseReader {
    buffer: Vec<u8>,
}

impl ResponseReader {
    /// Reads one whole response and returns its status.
    async fn read(&mut self, stream: &mut TcpStream) -> Result<u16, String> {
        loop {
            if let Some((status, length)) = self.complete()? {
                self.buffer.drain(..length);
                return Ok(status);
            }
            let mut chunk = [0u8; 4096];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|err| format!("cannot read the answer: {err}"))?;
            if n == 0 {
                return Err("the server closed the connection".to_owned());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// The status and total length of the response at the front of the buffer, once whole.
    fn complete(&self) -> Result<Option<(u16, usize)>, String> {
        let Some(end) = find_all(&self.buffer, b"\r\n\r\n").next() else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&self.buffer[..end])
            .map_err(|_| "the answer's head is not UTF-8".to_owned())?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {head}"))?;
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .ok_or_else(|| format!("an answer without Content-Length: {head}"))?;
        let total = end + 4 + length;
        Ok((self.buffer.len() >= total).then_some((status, total)))
    }
}

/// Standard base64 with padding (enough for HTTP Basic credentials).
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// This process's user + system CPU time in clock ticks (100 per second on Linux), from
/// `/proc/self/stat`; 0 where that cannot be read.
fn self_cpu_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tick(11) + tick(12)
}

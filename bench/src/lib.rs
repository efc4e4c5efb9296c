//! What the load generators of `bench/` share (`src/bin/ingest_load.rs`,
//! `src/bin/deliver_load.rs`): the realistic identify event, pre-serialised `/v1/batch` requests
//! whose message ids are patched in place, a minimal keep-alive HTTP/1.1 response reader, starting
//! and stopping `junction serve`, and `/proc` readers for CPU time and memory.
//!
//! The criterion benchmarks live in `benches/`.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// The sample workspace (`examples/workspace.json`): one source, a ChartMogul destination with
/// both default mappings.
pub const SAMPLE_WORKSPACE: &str = include_str!("../../examples/workspace.json");

/// The sample workspace's write key.
pub const SAMPLE_WRITE_KEY: &str = "junction-sample-write-key";

/// Width of the counter at the end of every patched `messageId`.
pub const COUNTER_DIGITS: usize = 12;

/// The counter placeholder a message id passed to [`BatchRequest::new`] ends with.
pub fn counter_placeholder() -> String {
    "0".repeat(COUNTER_DIGITS)
}

/// A realistic identify call as the official clients send it: context, integrations, 20 traits
/// with a nested company (about 1 KB). `user` varies the user id, email, anonymous id and company.
pub fn identify_event(message_id: &str, user: usize) -> Value {
    json!({
        "type": "identify",
        "messageId": message_id,
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

/// A pre-serialised `POST /v1/batch` (headers and body) whose message ids end with a counter
/// patched in place before each send, so that every event is new to the server (duplicates take
/// a cheaper path and would flatter it).
pub struct BatchRequest {
    bytes: Vec<u8>,
    /// Where each event's counter digits start in `bytes`, in batch order.
    counter_at: Vec<usize>,
    counter: u64,
}

impl BatchRequest {
    /// Serialises `events` (each `messageId` ending with [`counter_placeholder`]) as one batch
    /// sent to `host` with HTTP Basic `write_key`. Fails if an event's message id does not end
    /// with the placeholder.
    pub fn new(
        host: &str,
        write_key: &str,
        user_agent: &str,
        events: Vec<Value>,
    ) -> Result<Self, String> {
        let count = events.len();
        let body = json!({
            "batch": events,
            "sentAt": "2024-03-01T12:00:01.000Z",
            "writeKey": write_key,
        })
        .to_string();
        let credentials = base64(&format!("{write_key}:"));
        let head = format!(
            "POST /v1/batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {credentials}\r\n\
             Content-Type: application/json\r\nUser-Agent: {user_agent}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut bytes = head.into_bytes();
        let body_at = bytes.len();
        bytes.extend_from_slice(body.as_bytes());
        // Only inside `"messageId":"…"`: another value (an anonymous id) may end the same way.
        let placeholder = counter_placeholder();
        let mut counter_at = Vec::with_capacity(count);
        for at in find_all(&bytes[body_at..], b"\"messageId\":\"") {
            let start = body_at + at + b"\"messageId\":\"".len();
            let Some(length) = bytes[start..].iter().position(|b| *b == b'"') else {
                break;
            };
            let id = &bytes[start..start + length];
            if id.ends_with(placeholder.as_bytes()) {
                counter_at.push(start + length - COUNTER_DIGITS);
            }
        }
        if counter_at.len() != count {
            return Err(format!(
                "{} of {count} message ids end with the counter placeholder",
                counter_at.len()
            ));
        }
        Ok(Self {
            bytes,
            counter_at,
            counter: 0,
        })
    }

    /// Gives every event of the request a message id never sent before: the counter goes up by
    /// one per event, so the events of the `k`-th request (from 0) carry `k × n + 1 ..= (k + 1)
    /// × n`, `n` being the batch size.
    pub fn next_ids(&mut self) {
        for at in &self.counter_at {
            self.counter += 1;
            let mut n = self.counter;
            for digit in self.bytes[*at..*at + COUNTER_DIGITS].iter_mut().rev() {
                *digit = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
    }

    /// The whole request, ready to write.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Every position of `needle` in `haystack`.
pub fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len().max(1))
        .enumerate()
        .filter(move |(_, window)| *window == needle)
        .map(|(at, _)| at)
}

/// Connects to `addr` with `TCP_NODELAY` (requests are written whole).
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    stream
        .set_nodelay(true)
        .map_err(|err| format!("cannot set TCP_NODELAY: {err}"))?;
    Ok(stream)
}

/// Reads HTTP/1.1 responses with a `Content-Length` body off a keep-alive connection.
#[derive(Default)]
pub struct ResponseReader {
    buffer: Vec<u8>,
}

impl ResponseReader {
    /// Reads one whole response and returns its status.
    pub async fn read(&mut self, stream: &mut TcpStream) -> Result<u16, String> {
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
pub fn base64(text: &str) -> String {
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

/// Rounds to three decimals (milliseconds to microseconds, seconds to milliseconds).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `q`-quantile (0..=1, nearest rank) of sorted `values`, or 0 when there are none.
pub fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let index = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The `q`-quantile of sorted durations, in milliseconds rounded to the microsecond.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    round3(quantile(sorted, q).as_secs_f64() * 1000.0)
}

/// Clock ticks per second of `/proc/*/stat` CPU times (`USER_HZ`, 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time in clock ticks from a `/proc/…/stat` file; `None` if it cannot be read.
pub fn cpu_ticks(stat_path: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// This process's user + system CPU time in clock ticks; 0 where that cannot be read.
pub fn self_cpu_ticks() -> u64 {
    cpu_ticks(Path::new("/proc/self/stat")).unwrap_or(0)
}

/// The calling thread's id (Linux: from `/proc/thread-self`); `None` elsewhere.
pub fn current_thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The CPU time of thread `tid` of this process, in clock ticks.
pub fn own_thread_ticks(tid: u32) -> Option<u64> {
    cpu_ticks(&PathBuf::from(format!("/proc/self/task/{tid}/stat")))
}

/// One thread of another process and its CPU time so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadCpu {
    /// The thread id.
    pub tid: u32,
    /// Its name as the kernel shows it (at most 15 bytes).
    pub name: String,
    /// User + system CPU time in clock ticks.
    pub ticks: u64,
}

/// Every thread of process `pid` with its CPU time; empty if the process is gone.
pub fn threads(pid: u32) -> Vec<ThreadCpu> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut threads = Vec::new();
    for entry in entries.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let dir = entry.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if let Some(ticks) = cpu_ticks(&dir.join("stat")) {
            threads.push(ThreadCpu {
                tid,
                name: name.trim().to_owned(),
                ticks,
            });
        }
    }
    threads
}

/// CPU ticks spent by each thread name of a process between two [`threads`] readings, largest
/// first; threads that started in between count from zero.
pub fn ticks_by_name(before: &[ThreadCpu], after: &[ThreadCpu]) -> Vec<(String, u64, usize)> {
    let mut by_name: Vec<(String, u64, usize)> = Vec::new();
    for thread in after {
        let start = before
            .iter()
            .find(|old| old.tid == thread.tid)
            .map_or(0, |old| old.ticks);
        let spent = thread.ticks.saturating_sub(start);
        match by_name.iter_mut().find(|(name, _, _)| *name == thread.name) {
            Some(entry) => {
                entry.1 += spent;
                entry.2 += 1;
            }
            None => by_name.push((thread.name.clone(), spent, 1)),
        }
    }
    by_name.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    by_name
}

/// A process's memory from `/proc/PID/status`, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`).
    pub hwm_kib: u64,
}

/// The memory of process `pid`; `None` if it is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), or zeros.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0.0));
    [(); 3].map(|()| fields.next().unwrap_or(0.0))
}

/// A running `junction serve` started by [`Junction::start`].
pub struct Junction {
    child: Child,
    /// The Tracking API's address, from the banner.
    pub tracking: SocketAddr,
    /// Where its stderr goes.
    pub stderr: PathBuf,
}

impl Junction {
    /// Starts `binary serve` with `args`, the Tracking and admin APIs on free loopback ports and
    /// warnings-only logs (stderr into `stderr`), and waits up to `wait` for its banner.
    pub fn start(
        binary: &Path,
        args: &[String],
        stderr: &Path,
        wait: Duration,
    ) -> Result<Self, String> {
        let log = std::fs::File::create(stderr)
            .map_err(|err| format!("cannot create {}: {err}", stderr.display()))?;
        let mut child = Command::new(binary)
            .arg("serve")
            .args(args)
            .env("JUNCTION_TRACKING_ADDR", "127.0.0.1:0")
            .env("JUNCTION_ADMIN_ADDR", "127.0.0.1:0")
            .env("JUNCTION_LOG", "warn")
            // The benchmark's webhook sink listens on 127.0.0.1.
            .env("JUNCTION_DELIVERY_ALLOW", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err("no stdout to read the banner from".to_owned());
        };
        let (lines_tx, lines_rx) = mpsc::channel();
        // Reads the banner, then keeps draining stdout so that the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines_rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(stderr).unwrap_or_default();
                return Err(format!(
                    "junction serve printed no Tracking API address within {wait:?}:\n{log}"
                ));
            };
            let address = line
                .trim()
                .strip_prefix("Tracking API: http://")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|address| address.parse().ok());
            if let Some(tracking) = address {
                return Ok(Self {
                    child,
                    tracking,
                    stderr: stderr.to_owned(),
                });
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL (no shutdown code runs) and waits for it to be gone.
    pub fn kill(mut self) -> Result<(), String> {
        self.child
            .kill()
            .map_err(|err| format!("cannot kill junction serve: {err}"))?;
        self.child
            .wait()
            .map(|_| ())
            .map_err(|err| format!("cannot wait for junction serve: {err}"))
    }

    /// Stops it with SIGTERM (graceful shutdown) and waits up to `wait`, then kills it.
    pub fn stop(mut self, wait: Duration) -> Result<ExitStatus, String> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|err| format!("cannot run kill: {err}"))?;
        let deadline = Instant::now() + wait;
        while sent.success() && Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(err) => return Err(format!("cannot wait for junction serve: {err}")),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(format!(
            "junction serve did not stop within {wait:?} of SIGTERM"
        ))
    }
}

impl Drop for Junction {
    fn drop(&mut self) {
        // Only reached when `stop` was not called (an error path): never leave it running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The CPU time of this machine's PostgreSQL processes, in clock ticks.
#[derive(Clone, Copy, Default)]
pub struct PostgresTicks {
    /// Every process called `postgres`: the backends, and the WAL writer, checkpointer and
    /// others that work for every database (other users of the server included).
    pub all: u64,
    /// The backends connected to the benchmark's database (by their process title, `postgres:
    /// USER DATABASE HOST …`): the servers' own sessions.
    pub database: u64,
}

/// Reads every `/proc/PID` whose command is `postgres`. A backend that ended between two
/// readings takes its time with it: the servers' pools keep theirs for the whole run.
pub fn postgres_ticks(database: &str) -> PostgresTicks {
    let mut ticks = PostgresTicks::default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_process = entry
            .file_name()
            .to_str()
            .is_some_and(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()));
        if !is_process
            || std::fs::read_to_string(dir.join("comm")).map_or(true, |c| c.trim() != "postgres")
        {
            continue;
        }
        let Some(spent) = cpu_ticks(&dir.join("stat")) else {
            continue;
        };
        ticks.all += spent;
        // The title overwrites the arguments and is padded with NULs.
        let title = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let title = String::from_utf8_lossy(&title).replace('\0', " ");
        if is_backend_of(&title, database) {
            ticks.database += spent;
        }
    }
    ticks
}

/// Whether a PostgreSQL process title is that of a backend connected to `database`: `postgres:
/// [CLUSTER:] USER DATABASE HOST(PORT) ACTIVITY` (the cluster name only where one is set, as
/// Debian does), so the database is the word before the client's address.
pub fn is_backend_of(title: &str, database: &str) -> bool {
    let words: Vec<&str> = title.split_whitespace().collect();
    words
        .windows(2)
        .skip(2)
        .any(|pair| pair[0] == database && (pair[1].ends_with(')') || pair[1] == "[local]"))
}

/// The database name of a `postgres://…/NAME?…` URL.
pub fn database_name(url: &str) -> Option<String> {
    let path = url.split_once("://")?.1.split_once('/')?.1;
    let name = path.split(['?', '#']).next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_patched_and_nothing_else() {
        let placeholder = counter_placeholder();
        // User 0's anonymous id ends with twelve zeros too: it must stay as it is.
        let events = (0..3)
            .map(|i| identify_event(&format!("bench-000-{i:03}-{placeholder}"), i))
            .collect();
        let mut request = BatchRequest::new("127.0.0.1:1", "k", "t", events).unwrap();
        request.next_ids();
        request.next_ids();
        let text = String::from_utf8_lossy(request.bytes()).into_owned();
        assert!(text.contains("\"bench-000-000-000000000004\""));
        assert!(text.contains("\"bench-000-002-000000000006\""));
        assert!(text.contains("\"6f1c9a4e-2b7d-4e3f-8a5c-000000000000\""));
    }

    #[test]
    fn ids_without_the_placeholder_are_refused() {
        let events = vec![identify_event("fixed", 1)];
        assert!(BatchRequest::new("h", "k", "t", events).is_err());
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64("k:"), "azo=");
        assert_eq!(base64("abc"), "YWJj");
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values = [1, 2, 3, 4, 5];
        assert_eq!(quantile(&values, 0.5), 3);
        assert_eq!(quantile(&values, 1.0), 5);
        assert_eq!(quantile::<u32>(&[], 0.5), 0);
    }

    #[test]
    fn threads_group_by_name() {
        let t = |tid, name: &str, ticks| ThreadCpu {
            tid,
            name: name.to_owned(),
            ticks,
        };
        let before = [t(1, "a", 10), t(2, "b", 5)];
        let after = [t(1, "a", 30), t(2, "b", 6), t(3, "a", 4)];
        assert_eq!(
            ticks_by_name(&before, &after),
            vec![("a".to_owned(), 24, 2), ("b".to_owned(), 1, 1)]
        );
    }

    #[test]
    fn backends_are_told_apart_by_their_database() {
        let debian = "postgres: 15/main: postgres bench_1 127.0.0.1(51234) idle";
        assert!(is_backend_of(debian, "bench_1"));
        assert!(is_backend_of(
            "postgres: app bench_1 [local] COMMIT",
            "bench_1"
        ));
        assert!(!is_backend_of(debian, "postgres"));
        assert!(!is_backend_of("postgres: 15/main: walwriter", "walwriter"));
        assert!(!is_backend_of(
            "postgres: 15/main: postgres other 127.0.0.1(1) idle",
            "bench_1"
        ));
    }

    #[test]
    fn the_database_is_the_last_part_of_the_url() {
        let name = |url: &str| database_name(url);
        assert_eq!(
            name("postgres://postgres@127.0.0.1:5432/bench_1").as_deref(),
            Some("bench_1")
        );
        assert_eq!(
            name("postgres://u:p@host/db?sslmode=disable").as_deref(),
            Some("db")
        );
        assert_eq!(name("postgres://host:5432/"), None);
        assert_eq!(name("postgres://host"), None);
    }
}

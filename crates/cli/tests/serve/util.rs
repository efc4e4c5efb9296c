//! What every test of this binary uses: start the real `junction serve` on a free port over a
//! data directory and read its banner, talk HTTP/1.1 to it (one-shot or keep-alive), stop it
//! with SIGTERM or SIGKILL, call its admin API, and read what it stored through the store crate's
//! API once it is gone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::time::Duration;

use junction_store::{EventRecord, Store};
use junction_store_sqlite::{SqliteOptions, SqliteStore};

/// Tests that measure latency run alone: the others (which start servers, kill them, run the
/// Segment clients) share the machine's two cores among themselves and would make such a
/// measurement compare a busy machine with an idle one.
static MACHINE: RwLock<()> = RwLock::new(());

/// Held by a test that may run alongside the others.
pub fn alongside_others() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Held by a test that must have the machine to itself (a latency comparison).
pub fn alone() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(PoisonError::into_inner)
}

/// The sample workspace's source and write key (`examples/workspace.json`).
pub const SAMPLE_SOURCE: &str = "sample-app";
/// See [`SAMPLE_SOURCE`].
pub const SAMPLE_WRITE_KEY: &str = "junction-sample-write-key";

/// A running `junction serve` and the addresses it printed.
pub struct Running {
    pub child: Child,
    /// The Tracking API's `host:port`.
    pub address: String,
    /// The admin API's `host:port`.
    pub admin_address: String,
    pub banner: Vec<String>,
    /// Every line written on stderr so far, when started with [`Options::capture_stderr`].
    pub stderr: Option<Arc<Mutex<Vec<String>>>>,
}

/// How [`start_with`] starts the server.
#[derive(Default)]
pub struct Options<'a> {
    /// Environment variables set after the defaults (so they override them).
    pub env: &'a [(&'a str, &'a str)],
    /// Keep stderr's lines (logs) in [`Running::stderr`] instead of discarding them.
    pub capture_stderr: bool,
    /// Start the server under this open-file limit (`ulimit -n`, soft and hard).
    pub file_limit: Option<u64>,
}

/// Starts `junction serve` with `args` on a free port over `data_dir`, and waits for its banner.
pub fn start(data_dir: &Path, args: &[&str]) -> Running {
    start_with(data_dir, args, &Options::default())
}

/// [`start`] with more environment variables, and stderr captured if asked.
pub fn start_with(data_dir: &Path, args: &[&str], options: &Options<'_>) -> Running {
    let mut command = match options.file_limit {
        Some(files) => {
            let mut shell = Command::new("sh");
            shell
                .arg("-c")
                .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
                .arg(env!("CARGO_BIN_EXE_junction"));
            shell
        }
        None => Command::new(env!("CARGO_BIN_EXE_junction")),
    };
    let mut child = command
        .arg("serve")
        .args(args)
        .env("JUNCTION_DATA_DIR", data_dir)
        .env("JUNCTION_TRACKING_ADDR", "127.0.0.1:0")
        .env("JUNCTION_ADMIN_ADDR", "127.0.0.1:0")
        .env("JUNCTION_LOG", "warn")
        // The tests' webhooks listen on 127.0.0.1 (a test of the default policy sets it empty).
        .env("JUNCTION_DELIVERY_ALLOW", "127.0.0.1")
        .envs(options.env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(if options.capture_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().map(|stderr| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        lines
    });
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("junction serve printed no banner within 30 s");
        banner.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("Tracking API: http://") {
            let address = rest.split_whitespace().next().unwrap().to_owned();
            // Read the rest of the banner (sources, the curl example) without blocking on it.
            while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(300)) {
                banner.push(line);
            }
            let admin_address = banner
                .iter()
                .find_map(|line| line.trim().strip_prefix("Admin API:    http://"))
                .and_then(|rest| rest.split('/').next())
                .expect("the banner names the admin API")
                .to_owned();
            return Running {
                child,
                address,
                admin_address,
                banner,
                stderr,
            };
        }
    }
}

/// Sends one HTTP/1.1 request with `headers` and `body` on a connection of its own; the status
/// code and the whole answer, head included (see [`body_of`]).
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(
        stream,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap();
    (status, response)
}

/// The body of a whole answer [`request`] returned.
pub fn body_of(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// POSTs `body` to `path` with HTTP Basic `write_key` on a connection of its own; the status code
/// and the body.
pub fn post(address: &str, path: &str, write_key: &str, body: &str) -> (u16, String) {
    let authorization = format!("Basic {}", base64(&format!("{write_key}:")));
    let headers = [
        ("Authorization", authorization.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, response) = request(address, "POST", path, &headers, body);
    (status, body_of(&response).to_owned())
}

/// Sends one request without credentials on a connection of its own (the admin API needs none
/// without a token); the status code and the body read as JSON (`null` when it is empty).
pub fn admin(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(ToString::to_string).unwrap_or_default();
    let headers = [("Content-Type", "application/json")];
    let (status, response) = request(address, method, path, &headers, &body);
    let body = body_of(&response);
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|err| panic!("{method} {path}: {err}: {body}"))
    };
    (status, json)
}

/// A keep-alive HTTP/1.1 connection, as tracking clients hold them. Every error is returned, not
/// panicked on: a test that kills the server expects them.
pub struct Connection {
    stream: TcpStream,
    address: String,
    credentials: String,
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to `address`, sending `write_key` as HTTP Basic user name on every request.
    pub fn open(address: &str, write_key: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            address: address.to_owned(),
            credentials: base64(&format!("{write_key}:")),
            buffer: Vec::new(),
        })
    }

    /// POSTs a JSON `body` to `path`; the status code and the body of the answer.
    pub fn post(&mut self, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            self.credentials,
            body.len()
        );
        self.stream.write_all(request.as_bytes())?;
        loop {
            if let Some(answer) = self.take_answer()? {
                return Ok(answer);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// The answer at the front of the buffer, once it is whole (axum answers with a length).
    fn take_answer(&mut self) -> std::io::Result<Option<(u16, String)>> {
        let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("no status line"))?;
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .ok_or_else(|| invalid("no content-length"))?;
        let total = end + 4 + length;
        if self.buffer.len() < total {
            return Ok(None);
        }
        let body = String::from_utf8_lossy(&self.buffer[end + 4..total]).into_owned();
        self.buffer.drain(..total);
        Ok(Some((status, body)))
    }
}

/// Standard base64 (enough of it for a test's credentials).
pub fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
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

/// Sends SIGTERM and returns whether the process exited successfully within 30 s.
pub fn terminate(mut running: Running) -> bool {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..300 {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = running.child.kill();
    panic!("junction serve did not stop within 30 s of SIGTERM");
}

/// Kills the server with SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
pub fn kill_hard(mut running: Running) {
    running.child.kill().unwrap();
    running.child.wait().unwrap();
}

/// The store a stopped server left in `data_dir`, read through the store crate's API.
pub struct StoredData {
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
}

impl StoredData {
    /// Opens `data_dir/junction.db`; the server must have stopped (one writer at a time).
    pub fn open(data_dir: &Path) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let path = data_dir.join("junction.db");
        let store = runtime
            .block_on(SqliteStore::open(path, SqliteOptions::default()))
            .unwrap();
        Self { runtime, store }
    }

    /// Every stored event of `source_id` with this `messageId`.
    pub fn events(&self, source_id: &str, message_id: &str) -> Vec<EventRecord> {
        self.runtime
            .block_on(self.store.events_by_message_id(source_id, message_id))
            .unwrap()
    }

    /// The one stored event of `source_id` with this `messageId`; panics unless there is exactly
    /// one.
    pub fn event(&self, source_id: &str, message_id: &str) -> EventRecord {
        let mut records = self.events(source_id, message_id);
        assert_eq!(
            records.len(),
            1,
            "expected one stored event {message_id} of source {source_id}, found {}",
            records.len()
        );
        records.remove(0)
    }

    /// Totals committed so far.
    pub fn counts(&self) -> junction_store::Counts {
        self.runtime.block_on(self.store.counts()).unwrap()
    }
}

impl Drop for StoredData {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.store.close());
    }
}

//! Clustered mode: several `junction serve` nodes on one PostgreSQL database share one workspace,
//! one store of jobs and each lane's concurrency limit, and survive the loss of a node.
//! Needs the PostgreSQL server of `JUNCTION_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test works in a scratch database of its own.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{
    Connection, Options, Running, SAMPLE_SOURCE, SAMPLE_WRITE_KEY, admin, kill_hard, post,
    start_with, terminate,
};
use crate::webhook::{Behaviour, Received, Reply, Webhook};

/// A database created for one test and dropped afterwards.
pub(crate) struct ScratchDatabase {
    server: String,
    name: String,
}

impl ScratchDatabase {
    pub(crate) fn create() -> Self {
        let url = std::env::var("JUNCTION_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("junction_cluster_{}_{nanos}", std::process::id());
        let scratch = Self { server: url, name };
        scratch.psql(&format!("CREATE DATABASE {}", scratch.name));
        scratch
    }

    /// The scratch database's URL: the server's with its database name replaced.
    pub(crate) fn url(&self) -> String {
        let base = self
            .server
            .rsplit_once('/')
            .map_or(self.server.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    fn psql(&self, sql: &str) {
        run_psql(&self.server, sql);
    }

    /// Runs `sql` in the scratch database: its rows, one a line, columns separated by `|`.
    pub(crate) fn query(&self, sql: &str) -> String {
        run_psql(&self.url(), sql)
    }
}

fn run_psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([url, "-Atqc", sql])
        .output()
        .expect("psql runs (PostgreSQL's client is needed for the cluster tests)");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                self.server.as_str(),
                "-Atqc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Stops a node with SIGTERM; a node that does not exit successfully fails the test with its log.
pub(crate) fn stop_cleanly(node: Running) {
    let log = node.stderr.clone();
    let pid = node.child.id();
    if !terminate(node) {
        let log = log.map(|lines| lines.lock().unwrap().join("\n"));
        panic!(
            "node {pid} did not stop cleanly; its log:\n{}",
            log.unwrap_or_default()
        );
    }
}

pub(crate) fn node(dir: &std::path::Path, url: &str, args: &[&str]) -> Running {
    start_with(
        dir,
        args,
        &Options {
            env: &[("JUNCTION_STORE_URL", url)],
            // Kept, so that a node that does not stop cleanly can say why.
            capture_stderr: true,
            ..Options::default()
        },
    )
}

#[test]
fn a_workspace_change_on_one_node_applies_on_the_others_within_a_second() {
    let _shared = crate::util::alongside_others();
    let database = ScratchDatabase::create();
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    let workspace =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace.json");
    let first = node(
        &dir.path().join("a"),
        &url,
        &["--workspace", workspace.to_str().unwrap()],
    );
    // The second node loads the workspace the first one stored.
    let second = node(&dir.path().join("b"), &url, &[]);
    assert!(
        second
            .banner
            .iter()
            .any(|line| line.contains("Workspace:    stored")),
        "{:?}",
        second.banner
    );
    assert!(
        second.banner.iter().any(|line| line.contains("PostgreSQL")),
        "{:?}",
        second.banner
    );

    // Both ingest into the same store: an event sent to either is found through the other.
    let event = json!({"userId": "u-1", "messageId": "cluster-1", "traits": {"email": "a@b.co"}});
    let (status, body) = post(
        &first.address,
        "/v1/identify",
        SAMPLE_WRITE_KEY,
        &event.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, story) = admin(
        &second.admin_address,
        "GET",
        "/api/v1/events/cluster-1",
        None,
    );
    assert_eq!(status, 200, "{story}");

    // A source created through the first node's admin API.
    let source =
        json!({"id": "mobile", "name": "Mobile app", "write_keys": ["cluster-mobile-key-1234"]});
    let (status, created) = admin(
        &first.admin_address,
        "POST",
        "/api/v1/sources",
        Some(&source),
    );
    assert_eq!(status, 201, "{created}");
    let changed = Instant::now();
    // The second node knows it (its admin API and its Tracking API) within a second.
    loop {
        let (status, _) = admin(&second.admin_address, "GET", "/api/v1/sources/mobile", None);
        if status == 200 {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "the second node did not see the new source within 1 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = changed.elapsed();
    let track = json!({"userId": "u-2", "event": "Opened", "messageId": "cluster-2"});
    let (status, body) = post(
        &second.address,
        "/v1/track",
        "cluster-mobile-key-1234",
        &track.to_string(),
    );
    assert_eq!(
        status, 200,
        "the new write key works on the second node: {body}"
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");

    stop_cleanly(first);
    stop_cleanly(second);
}

// ---------------------------------------------------------------------------------------------
// Three nodes, one lane, one node killed.

/// How long a poll waits at most. Generous: the machine has two cores and other builds run.
const PATIENCE: Duration = Duration::from_secs(60);

/// An identify call the Send Contact default mapping turns into one job.
fn identify(message_id: &str, n: usize) -> Value {
    json!({
        "type": "identify",
        "messageId": message_id,
        "userId": format!("user-{n}"),
        "timestamp": "2024-03-01T12:00:00.000Z",
        "traits": {"email": format!("user{n}@example.com"), "name": format!("User {n}")},
    })
}

/// The sample source and one ChartMogul destination sending identify calls to `url`, with the
/// lane's concurrency limit at `limit`.
fn one_lane_workspace(url: &str, limit: usize) -> Value {
    json!({
        "sources": [{"id": SAMPLE_SOURCE, "name": "Sample app", "write_keys": [SAMPLE_WRITE_KEY]}],
        "destinations": [{
            "id": "cm",
            "name": "cm",
            "type": "actions-chartmogul",
            "settings": {"chartmogul_webhook_url": url},
            "sources": [SAMPLE_SOURCE],
            "mappings": [{
                "id": "send-contact",
                "action": "sendContact",
                "name": "Send Contact",
                "trigger": "type = \"identify\"",
            }],
            "delivery": {"max_concurrency": limit},
        }],
    })
}

/// The local ports of `pid`'s TCP connections to 127.0.0.1:`remote_port`: its socket inodes
/// (`/proc/PID/fd`) looked up in the kernel's connection table (`/proc/net/tcp`). The webhook
/// records each request's client port, so this tells which node sent what.
fn connection_ports(pid: u32, remote_port: u16) -> HashSet<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|link| {
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let port = |address: &str| u16::from_str_radix(address.rsplit_once(':')?.1, 16).ok();
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = port(fields.get(1)?)?;
            let remote = port(fields.get(2)?)?;
            (remote == remote_port && inodes.contains(*fields.get(9)?)).then_some(local)
        })
        .collect()
}

/// Sends `batches` batches of `per_batch` identify calls, one every `pause`, to the nodes in
/// turn over a keep-alive connection to each; a node that is gone refuses its turn. The
/// `messageId`s of the batches answered 200, and how many batches were not.
fn send_round_robin(
    nodes: &[String],
    batches: usize,
    per_batch: usize,
    pause: Duration,
    sent: &AtomicUsize,
) -> (Vec<String>, usize) {
    let mut connections: Vec<Option<Connection>> = nodes.iter().map(|_| None).collect();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for batch in 0..batches {
        let node = batch % nodes.len();
        let ids: Vec<String> = (0..per_batch)
            .map(|i| format!("k-{batch:03}-{i:03}"))
            .collect();
        let events: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| identify(id, batch * per_batch + i))
            .collect();
        let body = json!({"batch": events, "sentAt": "2024-03-01T12:00:01.000Z"}).to_string();
        let answer = match &mut connections[node] {
            Some(connection) => connection.post("/v1/batch", &body),
            slot => Connection::open(&nodes[node], SAMPLE_WRITE_KEY)
                .and_then(|connection| slot.insert(connection).post("/v1/batch", &body)),
        };
        match answer {
            Ok((200, _)) => acknowledged.extend(ids),
            Ok(_) => refused += 1,
            Err(_) => {
                // The node died (or closed the connection): reconnect on its next turn.
                connections[node] = None;
                refused += 1;
            }
        }
        sent.store(batch + 1, Ordering::Release);
        std::thread::sleep(pause);
    }
    (acknowledged, refused)
}

/// Waits until every job of each of `message_ids` has succeeded, asking `node`'s admin API.
fn wait_until_succeeded(node: &Running, message_ids: &[String]) {
    let deadline = Instant::now() + PATIENCE;
    let mut waiting: Vec<&String> = message_ids.iter().collect();
    loop {
        waiting.retain(|id| {
            let (status, body) = admin(
                &node.admin_address,
                "GET",
                &format!("/api/v1/events/{id}"),
                None,
            );
            if status != 200 {
                return true;
            }
            let jobs: Vec<&Value> = body["data"]["events"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|event| event["jobs"].as_array().into_iter().flatten())
                .collect();
            jobs.is_empty() || jobs.iter().any(|job| job["state"] != "succeeded")
        });
        if waiting.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events not succeeded within {PATIENCE:?}, {} first",
            waiting.len(),
            message_ids.len(),
            waiting[0]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The nodes of a test. Those still running when it ends early (a failed assertion) are
/// killed: nothing else would stop them, and they would keep the scratch database busy.
struct Cluster(Vec<Option<Running>>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.0.iter_mut().flatten() {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

/// Three nodes deliver one lane (one destination, one webhook host) with `max_concurrency` 4,
/// to a webhook slow enough that each node alone could fill the limit, while batches arrive at
/// all three in turn; one node is killed with SIGKILL mid-delivery. Every acknowledged event
/// must reach the webhook; the only repeats allowed are the requests the dead node had in
/// flight (their jobs' leases end and another node sends them again); and the limit holds
/// across the cluster, not per node.
#[test]
fn three_nodes_share_a_lane_limit_and_survive_a_sigkill_repeating_only_what_was_in_flight() {
    let _shared = crate::util::alongside_others();
    const LIMIT: usize = 4;
    const BATCHES: usize = 18;
    const PER_BATCH: usize = 20;
    let database = ScratchDatabase::create();
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    let slow = || Behaviour::Always(Reply::ok().after(Duration::from_millis(60)));
    webhook.set(slow());

    // A lease far shorter than the default five minutes, so the dead node's jobs come back
    // within the test; a request timeout longer than the webhook ever holds a request below, so
    // no surviving node times out (and repeats) a request the test held.
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
        "[delivery]\ntimeout_secs = 6\nlease_secs = 8\nbackoff_base_ms = 50\nbackoff_cap_secs = 1\n",
    )
    .unwrap();
    let workspace = dir.path().join("workspace.json");
    std::fs::write(
        &workspace,
        one_lane_workspace(&webhook.url("/hook/secret-token"), LIMIT).to_string(),
    )
    .unwrap();
    let start_node = |name: &str, workspace: Option<&Path>| {
        let mut args = vec!["--config", config.to_str().unwrap()];
        if let Some(workspace) = workspace {
            args.extend(["--workspace", workspace.to_str().unwrap()]);
        }
        node(&dir.path().join(name), &url, &args)
    };
    // The first node stores the workspace; the others load it from the database.
    let mut cluster = Cluster(vec![Some(start_node("a", Some(&workspace)))]);
    cluster.0.push(Some(start_node("b", None)));
    cluster.0.push(Some(start_node("c", None)));
    let nodes = &mut cluster.0;
    let addresses: Vec<String> = nodes
        .iter()
        .map(|node| node.as_ref().unwrap().address.clone())
        .collect();
    let sender = std::thread::spawn(move || {
        let sent = AtomicUsize::new(0);
        send_round_robin(
            &addresses,
            BATCHES,
            PER_BATCH,
            Duration::from_millis(150),
            &sent,
        )
    });

    // Deliveries are under way. From now on the webhook holds every request, so that at the kill
    // the requests in flight are exactly those it holds: every earlier answer has had time to be
    // recorded (an answer the kill cut off before its node recorded it would be sent again
    // without the webhook having seen it in flight).
    webhook.wait_for("deliveries under way", PATIENCE, |r| r.len() >= 60);
    let held_from = webhook.set(Behaviour::Hold);
    let quiet = Duration::from_secs(1);
    let hook_port = webhook.address().port();
    let ports_of = |running: &Running| connection_ports(running.child.id(), hook_port);
    // The victim: a node that has a request held, so that the kill cuts one off.
    let mut victim = None;
    let deadline = Instant::now() + PATIENCE;
    while victim.is_none() {
        assert!(
            Instant::now() < deadline,
            "no request held within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        let requests = webhook.requests();
        let settled = requests[..held_from]
            .iter()
            .all(|r| r.answered_at.is_some_and(|at| at.elapsed() >= quiet));
        if !settled {
            continue;
        }
        let held_ports: HashSet<u16> = requests[held_from..]
            .iter()
            .map(|r| r.peer.port())
            .collect();
        victim = nodes.iter().position(|node| {
            let ports = ports_of(node.as_ref().unwrap());
            !ports.is_disjoint(&held_ports)
        });
    }
    let victim = victim.unwrap();
    // Stopped first, so that the connections read are all it will ever have; then killed.
    let running = nodes[victim].take().unwrap();
    let stopped = Command::new("kill")
        .args(["-STOP", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let victim_ports = ports_of(&running);
    kill_hard(running);
    let killed_at = Instant::now();
    let released_from = webhook.release(slow());

    // What the victim had in flight: the held requests it sent.
    let requests = webhook.requests();
    let in_flight: Vec<&Received> = requests[held_from..released_from]
        .iter()
        .filter(|r| victim_ports.contains(&r.peer.port()))
        .collect();
    let in_flight_ids: HashSet<String> = in_flight.iter().map(|r| r.message_id()).collect();
    assert_eq!(in_flight_ids.len(), in_flight.len(), "one request per job");
    assert!(
        (1..=LIMIT).contains(&in_flight.len()),
        "{} requests in flight on the killed node",
        in_flight.len()
    );
    let held_by_all = released_from - held_from;

    let (acknowledged, refused) = sender.join().unwrap();
    assert!(
        acknowledged.len() >= BATCHES * PER_BATCH / 2,
        "{} events acknowledged, {refused} batches refused",
        acknowledged.len()
    );
    webhook.wait_for("every acknowledged event delivered", PATIENCE, |r| {
        let received: HashSet<String> = r.iter().map(Received::message_id).collect();
        acknowledged.iter().all(|id| received.contains(id))
    });
    // Once every job is recorded as succeeded nothing is left to send: the counts are final.
    let survivor = nodes.iter().flatten().next().unwrap();
    wait_until_succeeded(survivor, &acknowledged);
    let requests = webhook.requests();
    let mut received: HashMap<String, usize> = HashMap::new();
    for request in &requests {
        *received.entry(request.message_id()).or_default() += 1;
    }
    let duplicated: HashSet<String> = received
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| id.clone())
        .collect();
    println!(
        "killed node {victim} {:?} after the first request; {} requests in all, {held_from} \
         before the hold, {held_by_all} held at the kill ({} on the killed node), {} \
         duplicates, {} events acknowledged ({refused} batches refused), peak concurrency {} \
         (limit {LIMIT})",
        killed_at.duration_since(requests[0].at),
        requests.len(),
        in_flight.len(),
        duplicated.len(),
        acknowledged.len(),
        webhook.peak()
    );
    assert!(
        duplicated.is_subset(&in_flight_ids),
        "duplicates {duplicated:?}, in flight on the killed node {in_flight_ids:?}"
    );
    for (id, count) in &received {
        assert!(*count <= 2, "{id} received {count} times");
    }

    for node in nodes.iter_mut().filter_map(Option::take) {
        stop_cleanly(node);
    }
    // Last, because it is what the nodes must coordinate for: the lane's limit is one limit for
    // the whole cluster, not one per node.
    assert!(
        webhook.peak() <= LIMIT,
        "the lane's concurrency limit ({LIMIT}) holds across the cluster: {} requests at once",
        webhook.peak()
    );
}

/// Sends one `/v1/batch` of identify calls to `address`; panics unless it is acknowledged.
fn send_identifies(address: &str, ids: &[String]) {
    let events: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| identify(id, n))
        .collect();
    let body = json!({"batch": events}).to_string();
    let (status, answer) = post(address, "/v1/batch", SAMPLE_WRITE_KEY, &body);
    assert_eq!(status, 200, "{answer}");
}

/// A `Retry-After` that one node got pauses the lane on every node: the node that meets a 429
/// with `Retry-After: 2` (either may claim the first job) is then frozen (SIGSTOP), so that the
/// other delivers everything sent afterwards. Without the shared pause b would send at
/// once; with it, nothing reaches the webhook until 2 s after the 429, and then everything does
/// (well before a stuck share's 5 s lease would let b through).
#[test]
fn a_retry_after_seen_by_one_node_pauses_the_lane_on_the_others() {
    let _shared = crate::util::alongside_others();
    let database = ScratchDatabase::create();
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    webhook.set(Behaviour::FailFirst {
        count: 1,
        reply: Reply::status(429).header("retry-after", "2"),
    });
    let config = dir.path().join("junction.toml");
    std::fs::write(&config, "[delivery]\ntimeout_secs = 6\nlease_secs = 8\n").unwrap();
    let workspace = dir.path().join("workspace.json");
    std::fs::write(
        &workspace,
        one_lane_workspace(&webhook.url("/hook/secret-token"), 4).to_string(),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let a = node(
        &dir.path().join("a"),
        &url,
        &[
            "--config",
            config,
            "--workspace",
            workspace.to_str().unwrap(),
        ],
    );
    let b = node(&dir.path().join("b"), &url, &["--config", config]);
    // Killed if the test ends early, frozen node included (SIGKILL ends a stopped process).
    let mut cluster = Cluster(vec![Some(a), Some(b)]);
    let (Some(a), Some(b)) = (&cluster.0[0], &cluster.0[1]) else {
        unreachable!("both nodes were just started")
    };

    send_identifies(&a.address, &["p-first".to_owned()]);
    let answered = webhook.wait_for("the 429 answered", PATIENCE, |r| {
        r.first().is_some_and(|r| r.answered_at.is_some())
    });
    assert_eq!((answered.len(), answered[0].status), (1, 429));
    let paused_at = answered[0].answered_at.unwrap();
    let hook_port = webhook.address().port();
    let (met, other) =
        if connection_ports(a.child.id(), hook_port).contains(&answered[0].peer.port()) {
            (a, b)
        } else {
            (b, a)
        };
    // Time for the node that met the 429 to report the pause and give its share back (a few
    // milliseconds), then it is frozen: whatever happens next is the other node's doing.
    std::thread::sleep(Duration::from_millis(700));
    let frozen = Command::new("kill")
        .args(["-STOP", &met.child.id().to_string()])
        .status()
        .unwrap();
    assert!(frozen.success());
    let later: Vec<String> = (0..10).map(|n| format!("p-later-{n}")).collect();
    send_identifies(&other.address, &later);
    let sent_at = paused_at.elapsed();

    let mut all = later.clone();
    all.push("p-first".to_owned());
    let requests = webhook.wait_for("every event delivered", PATIENCE, |r| {
        let delivered: HashSet<String> = r
            .iter()
            .filter(|r| r.status == 200)
            .map(Received::message_id)
            .collect();
        all.iter().all(|id| delivered.contains(id))
    });
    let _ = Command::new("kill")
        .args(["-CONT", &met.child.id().to_string()])
        .status();
    let after: Vec<Duration> = requests[1..]
        .iter()
        .map(|r| r.at.duration_since(paused_at))
        .collect();
    let first = after.iter().min().copied().unwrap_or_default();
    assert!(
        sent_at < Duration::from_millis(1_500),
        "the later events were sent during the pause ({sent_at:?} after the 429)"
    );
    // The pause's end is the database's clock plus what was left of it when a reported it:
    // within a few milliseconds of the 429's 2 s.
    assert!(
        first >= Duration::from_millis(1_900),
        "a request reached the paused lane {first:?} after the 429 (the other node did not \
         pause)"
    );
    assert!(
        first < Duration::from_millis(4_000),
        "the first request after the pause came {first:?} after the 429: the other node \
         waited for more than the pause (the share of the node that met the 429 not given back?)"
    );
    for node in cluster.0.iter_mut().filter_map(Option::take) {
        stop_cleanly(node);
    }
}

// ---------------------------------------------------------------------------------------------
// Two nodes, slow answers, one node killed mid-ingest: the survivor's retries keep their turn.

/// The database's clock in Unix milliseconds, as SQL.
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The jobs attempted out of turn since `since` (Unix ms): for each wait for an attempt (a new
/// job's first, a retry's next) that ended after `since`, by how much the latest due of the jobs
/// whose first attempt started meanwhile (after `since` too) was due later than it; the largest
/// first, as `(job, state, overtaken by ms)`. Waits that included a claim never answered (a node
/// that died holding the job: its next attempt's number skips one) are left out: such a job
/// rightly waits for that claim's lease to end.
fn out_of_turn(database: &ScratchDatabase, since: i64) -> Vec<(i64, String, i64)> {
    database
        .query(&format!(
            "WITH waits AS (
                 SELECT t.job_id, t.state, t.next_at AS due,
                        (SELECT max(b.attempt) FROM job_attempts b
                         WHERE b.job_id = t.job_id AND b.event_id = t.event_id
                           AND b.started_at < t.at) AS before,
                        a.attempt AS next, a.started_at AS next_start
                 FROM job_transitions t
                 JOIN LATERAL (SELECT a.attempt, a.started_at FROM job_attempts a
                               WHERE a.job_id = t.job_id AND a.event_id = t.event_id
                                 AND a.started_at >= t.at
                               ORDER BY a.started_at LIMIT 1) a ON TRUE
                 WHERE t.state IN ('pending', 'awaiting_retry')
             ), firsts AS (
                 SELECT j.created_at AS due, min(a.started_at) AS started
                 FROM jobs j JOIN job_attempts a ON a.job_id = j.id AND a.event_id = j.event_id
                 GROUP BY j.id, j.created_at
             )
             SELECT w.job_id, w.state,
                    (SELECT max(f.due) FROM firsts f
                     WHERE f.started >= greatest(w.due, {since}) AND f.started < w.next_start)
                        - w.due AS overtaken_by
             FROM waits w
             WHERE w.next = coalesce(w.before, 0) + 1 AND w.next_start > {since}
             ORDER BY overtaken_by DESC NULLS LAST LIMIT 5"
        ))
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            Some((
                fields[0].parse().ok()?,
                fields[1].to_owned(),
                fields.get(2)?.parse().ok()?,
            ))
        })
        .collect()
}

/// What the database says about the lane, for a failure message.
fn lane_state(database: &ScratchDatabase) -> String {
    format!(
        "queue (rows|earliest next_at - now): {}\
         lane_control (endpoint|limit|max|epoch|successes|paused_until): {}\
         lane_shares (endpoint|node|held|want|lease_until - now):\n{}",
        database.query(&format!(
            "SELECT count(*), min(next_at) - {DB_NOW_MS} FROM job_queue"
        )),
        database.query("SELECT * FROM lane_control"),
        database.query(&format!(
            "SELECT endpoint, node, held, want, lease_until - {DB_NOW_MS} FROM lane_shares"
        )),
    )
}

/// The report as a test: two nodes on one database with a lease of 4 s, a request
/// timeout of 2 s and retries backed off by at most 2 s; thousands of events sent to both nodes
/// in turn; the webhook answers one request in four only after the timeout (attempts time out,
/// the shared limit is halved, jobs await retries) from a fifth of the way in until well after
/// one node is killed with SIGKILL, two fifths in (the survivor must meet slow answers itself,
/// after it has got the dead node's share of the lane back).
///
/// Every acknowledged event is delivered, the rest within a bound once the webhook is healthy and
/// the events are in, and the webhook is never left idle meanwhile longer than a lease and the
/// backoff cap. And on the survivor every job keeps its turn, retries included: no job waiting
/// for an attempt is passed by a job that became due more than 2 s after it. Not "every
/// retry within its backoff": behind a backlog a retry rightly waits for the jobs due before it;
/// but a retry held where no claim takes it, given back behind younger jobs, or hidden by a node
/// that cannot send it, is passed by the jobs due after it. (A job the dead node had claimed
/// waits for that claim's lease to end, and is not counted.)
#[test]
fn retries_keep_their_turn_on_the_survivor_of_a_sigkill_mid_ingest() {
    let _shared = crate::util::alongside_others();
    const BATCHES: usize = 40;
    const PER_BATCH: usize = 100;
    const SLOW_FROM: usize = 8;
    const KILL_AFTER: usize = 16;
    const SLOW_EVERY: usize = 4;
    const LEASE: Duration = Duration::from_secs(4);
    const TIMEOUT: Duration = Duration::from_secs(2);
    const BACKOFF_CAP: Duration = Duration::from_secs(2);
    // Longer than a share lease (5 s): the survivor has to meet slow answers itself.
    const SLOW_AFTER_KILL: Duration = Duration::from_secs(7);
    // Jobs are started in their turn give or take a give-back and a claim (a job that could not
    // start while later ones could, once room came back). Measured: under 1 s on a busy machine;
    // 2.7 s to 3.5 s here when give-backs sent jobs to the back of the queue.
    const OUT_OF_TURN: Duration = Duration::from_secs(2);
    const IDLE: Duration = Duration::from_secs(LEASE.as_secs() + BACKOFF_CAP.as_secs());
    const DRAIN: Duration = Duration::from_secs(20);

    let database = ScratchDatabase::create();
    let url = database.url();
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start();
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
        format!(
            "[delivery]\ntimeout_secs = {}\nlease_secs = {}\nbackoff_base_ms = 500\n\
             backoff_cap_secs = {}\n",
            TIMEOUT.as_secs(),
            LEASE.as_secs(),
            BACKOFF_CAP.as_secs()
        ),
    )
    .unwrap();
    let workspace = dir.path().join("workspace.json");
    std::fs::write(
        &workspace,
        one_lane_workspace(&webhook.url("/hook/secret-token"), 20).to_string(),
    )
    .unwrap();
    let start_node = |name: &str, workspace: Option<&Path>| {
        let mut args = vec!["--config", config.to_str().unwrap()];
        if let Some(workspace) = workspace {
            args.extend(["--workspace", workspace.to_str().unwrap()]);
        }
        node(&dir.path().join(name), &url, &args)
    };
    let mut cluster = Cluster(vec![Some(start_node("a", Some(&workspace)))]);
    cluster.0.push(Some(start_node("b", None)));
    let addresses: Vec<String> = cluster
        .0
        .iter()
        .map(|node| node.as_ref().unwrap().address.clone())
        .collect();

    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || {
            send_round_robin(
                &addresses,
                BATCHES,
                PER_BATCH,
                Duration::from_millis(60),
                &sent,
            )
        })
    };
    let started = Instant::now();
    let (mut slow, mut killed_at, mut healthy_at) = (false, None, None);
    while healthy_at.is_none() || !sender.is_finished() {
        assert!(started.elapsed() < PATIENCE, "the sender is stuck");
        let sent = sent.load(Ordering::Acquire);
        if !slow && sent >= SLOW_FROM {
            // Answered after the client gave up: a timeout for the node, whatever the status.
            let reply = Reply::status(504).after(TIMEOUT + Duration::from_secs(1));
            webhook.set(Behaviour::EveryNth {
                every: SLOW_EVERY,
                reply,
            });
            slow = true;
        }
        if killed_at.is_none() && sent >= KILL_AFTER {
            kill_hard(cluster.0[1].take().unwrap());
            killed_at = Some(Instant::now());
        }
        if healthy_at.is_none() && killed_at.is_some_and(|at| at.elapsed() >= SLOW_AFTER_KILL) {
            webhook.set(Behaviour::Always(Reply::ok()));
            healthy_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (acknowledged, refused) = sender.join().unwrap();
    let (Some(killed_at), Some(healthy_at)) = (killed_at, healthy_at) else {
        unreachable!("the loop ends once the webhook is healthy again, after the kill")
    };
    let ingested_at = Instant::now();
    assert!(
        acknowledged.len() >= BATCHES * PER_BATCH / 2,
        "{} events acknowledged, {refused} batches refused",
        acknowledged.len()
    );

    // The survivor delivers the rest.
    let drained_by = healthy_at.max(ingested_at) + DRAIN;
    loop {
        let delivered: HashSet<String> = webhook
            .requests()
            .iter()
            .filter(|r| r.status == 200)
            .map(Received::message_id)
            .collect();
        let missing = acknowledged
            .iter()
            .filter(|id| !delivered.contains(*id))
            .count();
        if missing == 0 {
            break;
        }
        let idle = requests_idle(&webhook);
        assert!(
            Instant::now() < drained_by && idle < IDLE,
            "{missing} acknowledged events not delivered {:?} after the webhook became \
             healthy and the events were in, the last request {idle:?} ago\n{}",
            healthy_at.max(ingested_at).elapsed(),
            lane_state(&database)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let requests = webhook.requests();
    let killed_ms = now_ms() - i64::try_from(killed_at.elapsed().as_millis()).unwrap();
    let retries_after_kill: usize = database
        .query(&format!(
            "SELECT count(*) FROM job_transitions
             WHERE state = 'awaiting_retry' AND at > {killed_ms}"
        ))
        .trim()
        .parse()
        .unwrap();
    let out_of_turn = out_of_turn(&database, killed_ms);
    println!(
        "killed {:?} in, webhook healthy {:?} later; {} events acknowledged ({refused} batches \
         refused), all delivered {:?} after the webhook was healthy and they were in; {} \
         requests, {} timed out, {retries_after_kill} retries scheduled after the kill; most \
         out of turn (job, state, by ms): {out_of_turn:?}",
        killed_at.duration_since(started),
        healthy_at.duration_since(killed_at),
        acknowledged.len(),
        healthy_at.max(ingested_at).elapsed(),
        requests.len(),
        requests.iter().filter(|r| r.status == 504).count(),
    );
    let most = out_of_turn.first().map_or(0, |(_, _, by)| *by);
    assert!(
        most <= i64::try_from(OUT_OF_TURN.as_millis()).unwrap(),
        "jobs attempted out of turn, passed by jobs due later: {out_of_turn:?}"
    );
    // The test tested something: the survivor itself met timeouts and retried.
    assert!(
        retries_after_kill >= 3,
        "too few retries after the kill to tell anything"
    );
    for node in cluster.0.iter_mut().filter_map(Option::take) {
        stop_cleanly(node);
    }
}

/// How long ago the webhook received its last request.
fn requests_idle(webhook: &Webhook) -> Duration {
    webhook
        .requests()
        .last()
        .map_or(Duration::ZERO, |request| request.at.elapsed())
}

/// Unix milliseconds now, by this machine's clock (the nodes', too).
fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

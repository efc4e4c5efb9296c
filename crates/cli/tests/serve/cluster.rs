//! Clustered mode: several `junction serve` nodes on one PostgreSQL database share one workspace.
//! Needs the PostgreSQL server of `JUNCTION_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test works in a scratch database of its own.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{Options, Running, SAMPLE_WRITE_KEY, admin, post, start_with, terminate};

/// A database created for one test and dropped afterwards.
struct ScratchDatabase {
    server: String,
    name: String,
}

impl ScratchDatabase {
    fn create() -> Self {
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
    fn url(&self) -> String {
        let base = self
            .server
            .rsplit_once('/')
            .map_or(self.server.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    fn psql(&self, sql: &str) {
        let output = Command::new("psql")
            .args([self.server.as_str(), "-Atqc", sql])
            .output()
            .expect("psql runs (PostgreSQL's client is needed for the cluster tests)");
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
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

fn node(dir: &std::path::Path, url: &str, args: &[&str]) -> Running {
    start_with(
        dir,
        args,
        &Options {
            env: &[("JUNCTION_STORE_URL", url)],
            capture_stderr: false,
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

    assert!(terminate(first));
    assert!(terminate(second));
}

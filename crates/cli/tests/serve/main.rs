//! The integration-test binary that runs the real `junction` binary's `serve`: its life cycle
//! (`lifecycle`), Segment's official tracking libraries sending to it (`clients`), SIGKILL at
//! random moments under concurrent load (`crash`), and delivery to a programmable webhook
//! (`webhook`): retries, pauses, timeouts, crashes, the dead letter and replay (`delivery`);
//! deleting and suppressing a person (`privacy`).

// Test code: a failed expectation is a failed test, and a panic says so best. A child left
// running by a failed test is killed with the test process's group by the harness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::zombie_processes,
    missing_docs
)]

mod audiences;
mod cli_admin;
mod cli_audiences;
mod cli_config;
mod clients;
mod cluster;
mod crash;
mod delivery;
mod failures;
mod first_run;
mod lifecycle;
mod privacy;
mod secrets;
mod util;
mod webhook;

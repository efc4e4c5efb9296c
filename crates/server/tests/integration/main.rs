//! The server's one integration-test binary: a real server on 127.0.0.1 port 0 over a real
//! SQLite store in a temp dir, driven over HTTP (and, in `oneshot`, the router in-process).

// Test code: a failed expectation is a failed test, and a panic says so best.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin_config;
mod app;
mod app_snapshots;
mod connections;
mod endpoints;
mod errors;
mod http_rules;
mod limits;
mod oneshot;
mod openapi;
mod ops;
mod overload;
mod overview;
mod regulations;
mod routing;
mod util;
mod webhook_policy;

//! Junction's delivery engine: sends the jobs that routing created to the destinations'
//! webhooks, with the Actions retry contract and per-endpoint flow control (design §2–3).
//!
//! The building blocks are pure and clock-free where they can be: [`classify`] judges an attempt,
//! [`Backoff`] says how long to wait, [`LaneControl`] says how many attempts an endpoint may
//! take now. [`HttpSender`] is the one shared HTTP client that makes attempts.

mod backoff;
mod classify;
mod client;
mod engine;
mod error;
mod failure_log;
mod lane;
mod lane_sync;
mod policy;
mod replay;
mod retention;
mod test_auth;

pub use backoff::Backoff;
pub use classify::{
    AttemptError, AttemptResult, ErrorClass, MAX_RETRY_AFTER, Verdict, classify, parse_retry_after,
};
pub use client::{ClientOptions, HttpSender, install_crypto_provider};
pub use engine::{
    DeliveryMetrics, DeliveryOutcome, Engine, EngineOptions, LaneMetrics, LanePolicy, LaneStats,
    LaneStatsHandle, PolicySource,
};
pub use error::DeliveryError;
pub use lane::{LaneControl, LaneLimits, LaneUsage, Room, Slot};
pub use policy::{AllowEntry, Blocked, PolicyError, SANDBOX_PATH, WebhookPolicy, restricted};
pub use replay::{ReplayFailure, ReplayMode, ReplayReport, Replayed, replay};
pub use retention::run_retention;
pub use test_auth::test_authentication;

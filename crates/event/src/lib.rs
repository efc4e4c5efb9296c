//! Segment Tracking API messages: parse request bodies, validate events, apply the limits, and
//! normalise accepted events before they are stored (`messageId`, `receivedAt`, `sentAt`, skew
//! correction).
//!
//! **Architecture Invariant:** pure. No IO, no async runtime, no HTTP types: the server crate
//! decompresses bodies, reads headers and maps [`RequestError`] and [`EventRejection`] to status
//! codes. Deduplication belongs to the store; this crate only exposes [`message_id`].
//!
//! A request goes through [`Endpoint::from_path`], [`parse_request`], then [`normalise`] for
//! every accepted event:
//!
//! ```
//! use std::time::SystemTime;
//! use junction_event::{Endpoint, Limits, NormaliseContext, normalise, parse_request};
//!
//! let body = br#"{"batch": [{"type": "identify", "userId": "u1"}], "sentAt": "2024-03-01T12:00:00Z"}"#;
//! let endpoint = Endpoint::from_path("/v1/batch").ok_or("not a tracking route")?;
//! let parsed = parse_request(endpoint, body, &Limits::default())?;
//! let ctx = NormaliseContext::new(
//!     SystemTime::now(),
//!     parsed.sent_at.as_ref(),
//!     &junction_event::random_message_id,
//! );
//! for event in parsed.events {
//!     let mut event = event?;
//!     normalise(&mut event, &ctx);
//!     assert!(event.contains_key("receivedAt"));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod endpoint;
mod error;
mod json;
mod limits;
mod normalise;
mod parse;
mod validate;

pub use auth::write_key_from_basic;
pub use endpoint::{Endpoint, MessageType};
pub use error::{EventRejection, JsonKind, LimitExceeded, RequestError};
pub use json::{value_from_slice, value_from_str};
pub use limits::{Limits, MESSAGE_ID_MAX_CHARS};
pub use normalise::{NormaliseContext, message_id, normalise, random_message_id};
pub use parse::{ParsedRequest, parse_request};

/// One Segment event: a JSON object, key order as received.
pub type Event = serde_json::Map<String, serde_json::Value>;

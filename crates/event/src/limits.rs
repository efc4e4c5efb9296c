//! The Tracking API's size and count limits (Segment's documented values by default).

/// Size and count limits applied by [`crate::parse_request`]. Bytes are counted on the
/// decompressed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted event, measured on its own JSON text in the body (32 KiB).
    pub max_event_bytes: usize,
    /// Largest accepted request body (500 KiB).
    pub max_request_bytes: usize,
    /// Most events accepted in one batch (2,500).
    pub max_batch_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 32 * 1024,
            max_request_bytes: 500 * 1024,
            max_batch_events: 2500,
        }
    }
}

/// `messageId` must be strictly shorter than this many characters.
pub const MESSAGE_ID_MAX_CHARS: usize = 100;

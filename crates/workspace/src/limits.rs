//! The size limits of a workspace. Every part of it is stored, copied into each version kept,
//! shown by the admin API and compiled at each change: without limits, one request could make
//! all of that as large as it likes.

/// Characters of an id (source, destination, mapping) at most.
pub const MAX_ID_CHARS: usize = 64;
/// Characters of a display name at most.
pub const MAX_NAME_CHARS: usize = 200;
/// Characters of a write key at most.
pub const MAX_WRITE_KEY_CHARS: usize = 256;
/// Write keys of one source at most (old and new ones while they are rotated).
pub const MAX_WRITE_KEYS_PER_SOURCE: usize = 20;
/// Sources in a workspace at most.
pub const MAX_SOURCES: usize = 1_000;
/// Destinations in a workspace at most.
pub const MAX_DESTINATIONS: usize = 1_000;
/// Audiences and computed traits in a workspace at most.
pub const MAX_AUDIENCES: usize = 500;
/// Characters of an audience's or computed trait's definition at most.
pub const MAX_QUERY_CHARS: usize = 8_192;
/// Destinations one audience or computed trait is connected to at most.
pub const MAX_CONNECTIONS: usize = 20;
/// The longest sync schedule, in hours (four weeks).
pub const MAX_EVERY_HOURS: u32 = 24 * 28;
/// Characters of a trigger at most.
pub const MAX_TRIGGER_CHARS: usize = 4_096;
/// Bytes of a destination's settings, as JSON, at most.
pub const MAX_SETTINGS_BYTES: usize = 16 * 1024;
/// Bytes of a mapping, as JSON, at most.
pub const MAX_MAPPING_BYTES: usize = 64 * 1024;
/// Saved test events of one destination at most.
pub const MAX_SAMPLES_PER_DESTINATION: usize = 20;
/// Bytes of one saved test event, as JSON, at most (the Tracking API's limit for one event).
pub const MAX_SAMPLE_BYTES: usize = 32 * 1024;
/// Bytes of a whole workspace, as stored JSON, at most.
pub const MAX_WORKSPACE_BYTES: usize = 8 * 1024 * 1024;

/// The length of `value` in characters, when it passes `limit`.
pub(crate) fn over_chars(value: &str, limit: usize) -> Option<usize> {
    // Bytes bound characters from above: most values are short and need no count.
    if value.len() <= limit {
        return None;
    }
    let chars = value.chars().count();
    (chars > limit).then_some(chars)
}

/// The size of `value` as JSON, when it passes `limit` bytes.
pub(crate) fn over_bytes(value: &impl serde::Serialize, limit: usize) -> Option<usize> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    (size > limit).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_characters_and_sizes_bytes() {
        assert_eq!(over_chars("abc", 3), None);
        assert_eq!(over_chars("éééé", 4), None, "8 bytes, 4 characters");
        assert_eq!(over_chars("abcd", 3), Some(4));
        assert_eq!(over_bytes(&serde_json::json!({"a": 1}), 7), None);
        assert_eq!(over_bytes(&serde_json::json!({"a": 1}), 6), Some(7));
    }
}

//! The six Segment message types and the Tracking API paths that carry them.

use std::fmt;

/// A Segment message type (the event's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `identify`: who the user is.
    Identify,
    /// `track`: something the user did (requires `event`).
    Track,
    /// `page`: a web page view.
    Page,
    /// `screen`: a mobile screen view.
    Screen,
    /// `group`: the account the user belongs to (requires `groupId`).
    Group,
    /// `alias`: merges two identities (requires `previousId`).
    Alias,
}

impl MessageType {
    /// Every message type, in the order the Segment docs list them.
    pub const ALL: [MessageType; 6] = [
        Self::Identify,
        Self::Track,
        Self::Page,
        Self::Screen,
        Self::Group,
        Self::Alias,
    ];

    /// The type as it appears in `type`: `"identify"`, `"track"`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identify => "identify",
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    /// The type named by a `type` value. Case-sensitive, as the official clients always send
    /// lowercase.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a Tracking API path expects in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// One event whose type the path implies (`/v1/identify`, analytics.js's `/v1/i`, …).
    Single(MessageType),
    /// `{"batch": [...]}` (`/v1/batch`, `/v1/import`, analytics.js's `/v1/b`).
    Batch,
}

impl Endpoint {
    /// The endpoint served at `path`, or `None` for a path that is not a Tracking API route.
    /// The path is matched exactly: no query string, no trailing slash.
    pub fn from_path(path: &str) -> Option<Self> {
        let route = path.strip_prefix("/v1/")?;
        let endpoint = match route {
            "batch" | "import" | "b" => Self::Batch,
            "identify" | "i" => Self::Single(MessageType::Identify),
            "track" | "t" => Self::Single(MessageType::Track),
            "page" | "p" => Self::Single(MessageType::Page),
            "screen" | "s" => Self::Single(MessageType::Screen),
            "group" | "g" => Self::Single(MessageType::Group),
            "alias" | "a" => Self::Single(MessageType::Alias),
            _ => return None,
        };
        Some(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tracking_path_maps_to_its_endpoint() {
        let cases = [
            ("/v1/identify", Endpoint::Single(MessageType::Identify)),
            ("/v1/i", Endpoint::Single(MessageType::Identify)),
            ("/v1/track", Endpoint::Single(MessageType::Track)),
            ("/v1/t", Endpoint::Single(MessageType::Track)),
            ("/v1/page", Endpoint::Single(MessageType::Page)),
            ("/v1/p", Endpoint::Single(MessageType::Page)),
            ("/v1/screen", Endpoint::Single(MessageType::Screen)),
            ("/v1/s", Endpoint::Single(MessageType::Screen)),
            ("/v1/group", Endpoint::Single(MessageType::Group)),
            ("/v1/g", Endpoint::Single(MessageType::Group)),
            ("/v1/alias", Endpoint::Single(MessageType::Alias)),
            ("/v1/a", Endpoint::Single(MessageType::Alias)),
            ("/v1/batch", Endpoint::Batch),
            ("/v1/import", Endpoint::Batch),
            ("/v1/b", Endpoint::Batch),
        ];
        for (path, expected) in cases {
            assert_eq!(Endpoint::from_path(path), Some(expected), "{path}");
        }
    }

    #[test]
    fn other_paths_are_not_endpoints() {
        for path in [
            "/v1/",
            "/v1/x",
            "/v2/track",
            "/v1/track/",
            "v1/track",
            "/v1/Track",
            "",
        ] {
            assert_eq!(Endpoint::from_path(path), None, "{path}");
        }
    }

    #[test]
    fn type_names_round_trip() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_name(t.as_str()), Some(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(MessageType::from_name("Identify"), None);
    }
}

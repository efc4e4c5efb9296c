//! Why a request, or one event inside it, was refused: typed variants with the messages a client
//! sees. Mapping them to status codes is the server's job.

use std::fmt;

use serde_json::Value;

use crate::endpoint::MessageType;

/// The JSON type of a value, named the way the messages name it ("found an array").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// Any JSON number.
    Number,
    /// A JSON string.
    String,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
}

impl JsonKind {
    /// The kind of a parsed value.
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Boolean,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Null => "null",
            Self::Boolean => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        })
    }
}

/// Which size limit a request broke (all of them are answered with 413 by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The whole request body is larger than `Limits::max_request_bytes`.
    #[error("request body is {size} bytes, over the limit of {limit} bytes")]
    Request {
        /// Size of the (decompressed) body.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The event of a single-event endpoint is larger than `Limits::max_event_bytes`.
    #[error("event is {size} bytes, over the limit of {limit} bytes")]
    Event {
        /// Size of the event's own JSON text.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A batch holds more events than `Limits::max_batch_events`.
    #[error("batch has {count} events, over the limit of {limit}")]
    BatchEvents {
        /// Number of items in `batch`.
        count: usize,
        /// The limit in force.
        limit: usize,
    },
}

/// Why a whole request was refused; nothing in it is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A size or count limit was exceeded.
    #[error("{0}")]
    TooLarge(LimitExceeded),
    /// The body is not valid JSON (serde's message, which ends with the line and column).
    #[error("malformed JSON: {message}")]
    MalformedJson {
        /// serde_json's description, e.g. `expected value at line 1 column 1`.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The body is valid JSON but not an object.
    #[error("request body must be a JSON object, found {found}")]
    NotAnObject {
        /// What the body was instead.
        found: JsonKind,
    },
    /// A batch body without a `batch` key.
    #[error("batch is required")]
    MissingBatch,
    /// A request-level field has the wrong JSON type (`batch`, `writeKey`, batch-level `context`
    /// or `integrations`).
    #[error("{field} must be {expected}, found {found}")]
    WrongType {
        /// The offending key.
        field: &'static str,
        /// What was expected, e.g. `an array`.
        expected: &'static str,
        /// What was found.
        found: JsonKind,
    },
}

impl RequestError {
    /// The request-level field the error is about, when it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingBatch => Some("batch"),
            Self::WrongType { field, .. } => Some(field),
            Self::TooLarge(_) | Self::MalformedJson { .. } | Self::NotAnObject { .. } => None,
        }
    }
}

impl From<serde_json::Error> for RequestError {
    fn from(err: serde_json::Error) -> Self {
        Self::MalformedJson {
            message: err.to_string(),
            line: err.line(),
            column: err.column(),
        }
    }
}

/// Why one event was refused. Inside a batch only that event is dropped; the others are kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventRejection {
    /// The event's own JSON text is larger than `Limits::max_event_bytes`.
    #[error("event is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the event's JSON text as it appears in the body.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A batch item that is syntactically JSON but cannot be read as a value: nested deeper than
    /// 128 levels, or a number out of range.
    #[error("malformed JSON in event: {message}")]
    MalformedJson {
        /// serde_json's description; the line and column are counted within the event's text.
        message: String,
    },
    /// A batch item that is not a JSON object.
    #[error("event must be a JSON object, found {found}")]
    NotAnObject {
        /// What the item was instead.
        found: JsonKind,
    },
    /// A batch item without `type` (single-event endpoints take the type from the path).
    #[error("type is required")]
    MissingType,
    /// A `type` that is not one of the six Segment message types.
    #[error(
        "unknown type \"{found}\", expected one of identify, track, page, screen, group, alias"
    )]
    UnknownType {
        /// The value received, shortened to 64 characters.
        found: String,
    },
    /// Neither identity is present (absent, `null` and `""` all count as missing).
    #[error("userId or anonymousId is required")]
    MissingIdentity,
    /// A field the message type requires is missing (absent, `null` or `""`).
    #[error("{field} is required for {message_type} calls")]
    MissingField {
        /// The missing key: `event`, `groupId` or `previousId`.
        field: &'static str,
        /// The message type that requires it.
        message_type: MessageType,
    },
    /// A known field has the wrong JSON type.
    #[error("{field} must be {expected}, found {found}")]
    WrongType {
        /// The offending key.
        field: &'static str,
        /// What was expected, e.g. `a string or a number`.
        expected: &'static str,
        /// What was found.
        found: JsonKind,
    },
    /// `messageId` is not under the length limit.
    #[error("messageId must be under {limit} characters, found {length}")]
    MessageIdTooLong {
        /// Length of the received `messageId` in characters.
        length: usize,
        /// The limit in force (the id must be strictly shorter).
        limit: usize,
    },
}

impl EventRejection {
    /// The event field the rejection is about. `None` for rejections about the event as a whole,
    /// and for [`EventRejection::MissingIdentity`], which is about two fields.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingType | Self::UnknownType { .. } => Some("type"),
            Self::MissingField { field, .. } | Self::WrongType { field, .. } => Some(field),
            Self::MessageIdTooLong { .. } => Some("messageId"),
            Self::TooLarge { .. }
            | Self::MalformedJson { .. }
            | Self::NotAnObject { .. }
            | Self::MissingIdentity => None,
        }
    }
}

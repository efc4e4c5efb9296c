//! The crate's two errors: a payload that fails validation (the reference's `AggregateAjvError`,
//! with its sentences verbatim) and a raw schema this validator cannot compile.

/// A payload or settings object failed validation. Each message is one of the reference's
/// sentences (e.g. `Company is missing the required field 'id'.`), in the reference's order;
/// the error displays them joined by one space, like `AggregateAjvError.message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .messages.join(" "))]
pub struct ValidationError {
    /// The individual messages.
    pub messages: Vec<String>,
}

impl ValidationError {
    /// The aggregated message (the messages joined by one space).
    pub fn message(&self) -> String {
        self.messages.join(" ")
    }
}

/// A raw JSON schema (see [`crate::Schema::from_json_schema`]) uses something this validator
/// does not implement or is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A (sub)schema is neither an object nor a boolean.
    #[error("schema at {path} is not an object or a boolean")]
    NotASchema {
        /// Where, as a JSON-pointer fragment (`#/properties/a`).
        path: String,
    },
    /// A keyword has a value of the wrong kind (e.g. a non-numeric `maximum`).
    #[error("keyword {keyword} at {path} has an invalid value")]
    InvalidKeyword {
        /// The keyword.
        keyword: String,
        /// Where.
        path: String,
    },
    /// A keyword this validator does not implement (`$ref`).
    #[error("keyword {keyword} at {path} is not supported")]
    Unsupported {
        /// The keyword.
        keyword: String,
        /// Where.
        path: String,
    },
    /// A `pattern` or `patternProperties` regular expression that cannot be compiled.
    #[error("pattern {pattern:?} at {path} is not supported: {reason}")]
    InvalidPattern {
        /// The JavaScript source of the pattern.
        pattern: String,
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
}

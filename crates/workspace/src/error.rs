//! Why a workspace was refused: a syntax error in its text, or the list of every problem found
//! when it was validated as a whole, each naming the object and the field concerned.

use std::fmt;

use junction_actions::DefinitionError;

/// Why a workspace cannot be used. Nothing of a refused workspace is applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkspaceError {
    /// The JSON text (or stored document) does not parse into a workspace: a syntax error, an
    /// unknown field or a value of the wrong type.
    #[error("workspace is not valid JSON: {message}")]
    Json {
        /// serde_json's description, ending with the line and column.
        message: String,
        /// 1-based line (0 for a stored document, which has no text).
        line: usize,
        /// 1-based column (0 for a stored document).
        column: usize,
    },
    /// The TOML text does not parse into a workspace.
    #[error("workspace is not valid TOML: {message}")]
    Toml {
        /// The toml crate's description, which names the line and column.
        message: String,
    },
    /// The workspace parsed, but some of its parts are invalid. Every problem found is listed.
    #[error("{}", InvalidList(problems))]
    Invalid {
        /// Every problem, in document order.
        problems: Vec<Problem>,
    },
    /// A built-in destination definition failed to compile (a bug, caught by tests).
    #[error("{0}")]
    Registry(#[from] DefinitionError),
}

struct InvalidList<'a>(&'a [Problem]);

impl fmt::Display for InvalidList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(f, "workspace is invalid ({count} {noun}):")?;
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// One thing wrong with a workspace, with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{object} ({path}): {kind}")]
pub struct Problem {
    /// The path of the offending value in the document, e.g.
    /// `destinations[0].mappings[1].trigger`.
    pub path: String,
    /// The object concerned, named for a person, e.g.
    /// `mapping "contacts" of destination "chartmogul"`.
    pub object: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with one part of a workspace.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A required value is missing or empty.
    #[error("a value is required")]
    Required,
    /// Another object of the same kind (in the same scope) has this id.
    #[error("duplicate id \"{id}\" (also used at {first})")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// The path of the first object that uses it.
        first: String,
    },
    /// Another object of the same kind (in the same scope) has this name.
    #[error("duplicate name \"{name}\" (also used at {first})")]
    DuplicateName {
        /// The repeated name.
        name: String,
        /// The path of the first object that uses it.
        first: String,
    },
    /// A saved test event that is not a JSON object, as every tracking call is.
    #[error("an event must be a JSON object")]
    NotAnEvent,
    /// A source without any write key can receive nothing.
    #[error("a source needs at least one write key")]
    NoWriteKeys,
    /// The write key also authenticates another source (or appears twice). The key itself is a
    /// secret and is not repeated here.
    #[error("this write key is already used at {first}")]
    DuplicateWriteKey {
        /// The path of its first use.
        first: String,
    },
    /// A destination names a source that does not exist.
    #[error("unknown source \"{id}\"; expected one of: {expected}")]
    UnknownSource {
        /// The id named.
        id: String,
        /// The source ids that exist, comma-separated (`none` when there are none).
        expected: String,
    },
    /// The destination type is not one Junction knows.
    #[error("unknown destination type \"{found}\"; expected one of: {expected}")]
    UnknownDestinationType {
        /// The type named.
        found: String,
        /// The known slugs, comma-separated.
        expected: String,
    },
    /// The settings fail the destination type's settings schema (the reference's messages).
    #[error("invalid settings: {}", messages.join(" "))]
    Settings {
        /// Each validation message, as the reference words it.
        messages: Vec<String>,
    },
    /// A number outside the range the setting accepts.
    #[error("out of range: expected {expected}")]
    OutOfRange {
        /// The accepted range, for a person.
        expected: String,
    },
    /// A value longer than its limit.
    #[error("too long: {found} characters, at most {limit}")]
    TooLong {
        /// Its length, in characters.
        found: usize,
        /// The most accepted.
        limit: usize,
    },
    /// A JSON value (settings, a mapping, the whole workspace) larger than its limit.
    #[error("too large: {found} bytes as JSON, at most {limit}")]
    TooLarge {
        /// Its size, in bytes of JSON.
        found: usize,
        /// The most accepted.
        limit: usize,
    },
    /// More items of a list than allowed.
    #[error("too many: {found}, at most {limit}")]
    TooMany {
        /// How many were given.
        found: usize,
        /// The most accepted.
        limit: usize,
    },
    /// More mappings than a destination instance may hold.
    #[error("a destination holds at most {limit} mappings, found {count}")]
    TooManyMappings {
        /// How many were given.
        count: usize,
        /// The limit ([`crate::MAX_MAPPINGS_PER_DESTINATION`]).
        limit: usize,
    },
    /// The destination type has no such action.
    #[error("unknown action \"{action}\"; expected one of: {expected}")]
    UnknownAction {
        /// The action named.
        action: String,
        /// The type's action slugs, comma-separated.
        expected: String,
    },
    /// The trigger does not parse.
    #[error("invalid trigger: {reason} at {}", Position { line: *line, column: *column })]
    Trigger {
        /// What was expected and found (junction-trigger's reason).
        reason: String,
        /// 0-based character offset in the trigger text.
        position: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// An audience's or computed trait's definition is refused (the language's message, with
    /// the column for a parse error).
    #[error("invalid definition: {message}")]
    Definition {
        /// Why.
        message: String,
    },
    /// A key that belonged to a deleted audience or computed trait.
    #[error("the key \"{key}\" belonged to a deleted audience or computed trait and is not reused")]
    RetiredKey {
        /// The key.
        key: String,
    },
    /// A connection to a destination that does not exist.
    #[error("unknown destination \"{id}\"; expected one of: {expected}")]
    UnknownDestination {
        /// The id named.
        id: String,
        /// The destination ids that exist, comma-separated (`none` when there are none).
        expected: String,
    },
    /// The mapping is invalid (the reference's validation messages, each naming the path within
    /// the mapping), or a template in it does not compile.
    #[error("invalid mapping: {}", messages.join(" "))]
    Mapping {
        /// Each message.
        messages: Vec<String>,
    },
}

/// A 1-based line and column, shown as editors do: `column C` on a one-line text.
struct Position {
    line: usize,
    column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line <= 1 {
            write!(f, "column {}", self.column)
        } else {
            write!(f, "line {}, column {}", self.line, self.column)
        }
    }
}

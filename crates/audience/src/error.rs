//! The crate's error types: why a definition's text does not parse ([`ParseError`]) and why a
//! definition is refused when it is saved ([`DefinitionError`]).

/// Why a definition's text was rejected: where (a 1-based column, in characters) and why.
///
/// Its `Display` is what a user sees when saving the definition, e.g.
/// `column 26: unknown function 'median'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {reason}")]
pub struct ParseError {
    kind: ParseErrorKind,
    column: usize,
    reason: String,
}

/// The broad class of a [`ParseError`], for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A character the language does not use (`*`, `@`, `!` alone, …).
    UnexpectedCharacter,
    /// A string without its closing quote.
    UnterminatedString,
    /// A malformed number (`1.`, `01`, `1e`).
    InvalidNumber,
    /// A token where the grammar expects something else.
    UnexpectedToken,
    /// The text ends where the grammar expects more (an empty definition included).
    UnexpectedEnd,
    /// A function name the language does not have (`median`, `Exists`).
    UnknownFunction,
    /// A construct of Segment's language that this version refuses: funnels, `ANY`/`ALL`,
    /// `… as array`.
    Unsupported,
    /// A function's argument is of the wrong form (a date that is not RFC 3339, `1.5 days`).
    InvalidArgument,
    /// A function used where it has no meaning (`event()` inside `where()`, `property()` outside).
    Misplaced,
    /// More comparisons than [`crate::MAX_COMPARISONS`].
    TooManyComparisons,
    /// Parentheses nested deeper than [`crate::MAX_NESTING`].
    TooDeep,
}

impl ParseError {
    /// An error at the 0-based character `position` of the text.
    pub(crate) fn new(kind: ParseErrorKind, position: usize, reason: impl Into<String>) -> Self {
        Self {
            kind,
            column: position + 1,
            reason: reason.into(),
        }
    }

    /// The 1-based column (in characters, Unicode scalar values) of what was wrong; one past
    /// the end when the text ended too early.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What was expected and what was found, without the column.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The broad class of the error.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }
}

/// Why a definition (an audience or a computed trait) is refused when it is saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The key given (or derived from the name) does not match `^[a-z0-9][a-z0-9_]*$`.
    #[error("invalid key {key:?}: must match ^[a-z0-9][a-z0-9_]*$")]
    InvalidKey {
        /// The key as given.
        key: String,
    },
    /// An earlier definition has the same key; the later one is refused.
    #[error("duplicate key {key:?} (an earlier definition has it)")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// Neither a key nor a name was given.
    #[error("a definition needs a key or a name")]
    MissingKey,
    /// The kind is neither `audience` nor `trait`.
    #[error("unknown kind {kind} (expected \"audience\" or \"trait\")")]
    UnknownKind {
        /// The kind as given, as JSON text (`"Audience"`, `null`).
        kind: String,
    },
    /// The text does not parse, or is not of the definition's kind.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The definition is on a cycle of `trait()` references.
    #[error("column {column}: reference cycle: {}", path.join(" -> "))]
    Cycle {
        /// The column of the `trait()` that leads along the cycle.
        column: usize,
        /// The keys along the cycle, starting and ending with this definition's.
        path: Vec<String>,
    },
    /// The definition reads, through `trait()`, a definition that is refused.
    #[error("column {column}: trait({key:?}) reads a definition that is refused")]
    ReadsRefused {
        /// The column of that `trait()`.
        column: usize,
        /// The key of the refused definition.
        key: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_column_and_reason() {
        let error = ParseError::new(
            ParseErrorKind::UnknownFunction,
            25,
            "unknown function 'median'",
        );
        assert_eq!(error.to_string(), "column 26: unknown function 'median'");
        assert_eq!(error.column(), 26);
        let cycle = DefinitionError::Cycle {
            column: 1,
            path: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(cycle.to_string(), "column 1: reference cycle: a -> b -> a");
        let key = DefinitionError::InvalidKey {
            key: "Big Spender".into(),
        };
        assert_eq!(
            key.to_string(),
            "invalid key \"Big Spender\": must match ^[a-z0-9][a-z0-9_]*$"
        );
    }
}

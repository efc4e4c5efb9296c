//! The crate's error types: why a trigger does not parse, why an AST cannot be turned into
//! text, and why an event cannot be evaluated.

use std::fmt;

/// Why a trigger's text was rejected: where (a 0-based character position) and why.
///
/// Its `Display` is what a user sees when saving the trigger, e.g.
/// `expected a value after '=', found end of input at column 8`. Columns in the text are
/// 1-based, as editors show them; lines are named only when the trigger has several.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at {}", Location { line: self.line, column: self.column })]
pub struct ParseError {
    kind: ParseErrorKind,
    position: usize,
    line: usize,
    column: usize,
    reason: String,
}

/// The broad class of a [`ParseError`], for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A character the language does not use (`*`, `@`, a carriage return, …).
    UnexpectedCharacter,
    /// A string without its closing quote.
    UnterminatedString,
    /// A malformed or out-of-range number (`9.`, `1.2.3`, a lone `-`).
    InvalidNumber,
    /// Two tokens that must be separated by whitespace touch (`a>5`, `!=5`, `"a"b`, `or(`).
    MissingSpace,
    /// A token where the grammar expects something else.
    UnexpectedToken,
    /// The text ends where the grammar expects more (including an empty trigger).
    UnexpectedEnd,
    /// Parentheses nested deeper than [`crate::MAX_NESTING`].
    TooDeep,
}

impl ParseError {
    /// An error at `position` (0-based, in characters) of `source`.
    pub(crate) fn new(
        source: &[char],
        position: usize,
        kind: ParseErrorKind,
        reason: String,
    ) -> Self {
        let Location { line, column } = Location::of(source, position);
        Self {
            kind,
            position,
            line,
            column,
            reason,
        }
    }

    /// The 0-based position, in characters (Unicode scalar values) from the start of the text,
    /// of what was wrong; the text's length when it ended too early.
    pub fn position(&self) -> usize {
        self.position
    }

    /// What was expected and what was found, without the position.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The broad class of the error.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The 1-based line of [`Self::position`].
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column of [`Self::position`] within its line.
    pub fn column(&self) -> usize {
        self.column
    }
}

/// A 1-based line and column, displayed as `column C` or `line L, column C`.
pub(crate) struct Location {
    line: usize,
    column: usize,
}

impl Location {
    /// The location of the 0-based character `position` of `source`.
    pub(crate) fn of(source: &[char], position: usize) -> Self {
        let before = source.get(..position).unwrap_or(source);
        let line_start = before
            .iter()
            .rposition(|&c| c == '\n')
            .map_or(0, |newline| newline + 1);
        Self {
            line: 1 + before.iter().filter(|&&c| c == '\n').count(),
            column: position.saturating_sub(line_start) + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 1 {
            write!(f, "column {}", self.column)
        } else {
            write!(f, "line {}, column {}", self.line, self.column)
        }
    }
}

/// Why [`crate::generate`] could not produce trigger text. The messages are the reference's
/// (`generateFql` throws them), so they keep its wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// The AST is the `{"error": …}` form; the reference re-throws that error, so its message is
    /// reported as is.
    #[error("{message}")]
    ErrorNode {
        /// The stored error's `message` (its JSON text when it has none).
        message: String,
    },
    /// A condition's `type` is none the language knows.
    #[error("Unknown condition type")]
    UnknownConditionType,
    /// The top-level node is a condition, not a group (the reference fails reading its
    /// children).
    #[error("the top-level node of a trigger must be a group")]
    NotAGroup,
}

/// Why [`crate::Trigger::evaluate`] could not evaluate an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    /// The event is JSON `null` and a condition read one of its fields; the reference throws a
    /// `TypeError` with exactly this message (Junction's events are always objects, so this only
    /// shows when evaluating raw JSON).
    #[error("Cannot read properties of null (reading '{field}')")]
    NullEvent {
        /// The event field read first.
        field: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(text: &str) -> Vec<char> {
        text.chars().collect()
    }

    #[test]
    fn single_line_errors_name_the_column() {
        let error = ParseError::new(
            &chars("type = "),
            7,
            ParseErrorKind::UnexpectedEnd,
            "expected a value after '=', found end of input".into(),
        );
        assert_eq!(error.position(), 7);
        assert_eq!(
            error.to_string(),
            "expected a value after '=', found end of input at column 8"
        );
    }

    #[test]
    fn multi_line_errors_name_line_and_column() {
        let error = ParseError::new(
            &chars("type = \"a\"\nand *"),
            15,
            ParseErrorKind::UnexpectedCharacter,
            "unexpected character '*'".into(),
        );
        assert_eq!((error.line(), error.column()), (2, 5));
        assert_eq!(
            error.to_string(),
            "unexpected character '*' at line 2, column 5"
        );
    }
}

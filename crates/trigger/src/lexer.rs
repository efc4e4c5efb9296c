//! Lexer: trigger text → tokens with character positions. It follows the reference lexer
//! (fql-ts 1.10.1, `fql.md` §2) token for token, but every input the reference swallows as an
//! error, or silently re-reads (a quote glued to the next character, `>=5`), is a positioned
//! error here (D5).

use crate::error::{ParseError, ParseErrorKind};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A word: field path segment, function name, `true`, `false` or a bare-word value.
    Ident,
    /// `-3`, `9.99`, `+1`.
    Number,
    /// A quoted string; its text keeps the quotes, like the reference's token value.
    Str,
    /// `null`.
    Null,
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `!` directly before a word or `(`.
    Bang,
    /// `.`.
    Dot,
    /// `,`.
    Comma,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `[`.
    LBracket,
    /// `]`.
    RBracket,
    /// End of input.
    Eos,
}

/// One token and where it sits in the source, in characters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    /// The reference's token value: identifiers with escapes resolved, strings with quotes.
    pub(crate) text: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Appended to errors about a path segment that starts with a digit.
pub(crate) const DIGIT_HINT: &str = " (a name cannot start with a digit; escape it with '\\')";

/// Splits `source` into tokens, ending with [`Kind::Eos`].
pub(crate) fn lex(source: &[char]) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        let Some(&c) = source.get(pos) else {
            tokens.push(token(Kind::Eos, String::new(), pos, pos));
            return Ok(tokens);
        };
        if is_whitespace(c) {
            pos += 1;
            continue;
        }
        let next = match c {
            '!' => bang(source, pos)?,
            '=' => token(Kind::Eq, "=".into(), pos, pos + 1),
            '<' | '>' => comparison(source, pos, c)?,
            '"' | '\'' => string(source, pos, c)?,
            '.' => token(Kind::Dot, ".".into(), pos, pos + 1),
            ',' => token(Kind::Comma, ",".into(), pos, pos + 1),
            '(' => token(Kind::LParen, "(".into(), pos, pos + 1),
            ')' => token(Kind::RParen, ")".into(), pos, pos + 1),
            '[' => token(Kind::LBracket, "[".into(), pos, pos + 1),
            ']' => token(Kind::RBracket, "]".into(), pos, pos + 1),
            c if c.is_ascii_digit() || c == '-' || c == '+' => number(source, pos)?,
            c if c.is_ascii_alphabetic() || c == '_' || c == '\\' => word(source, pos, c)?,
            other => return Err(unexpected_character(source, pos, other)),
        };
        pos = next.end;
        tokens.push(next);
    }
}

fn token(kind: Kind, text: String, start: usize, end: usize) -> Token {
    Token {
        kind,
        text,
        start,
        end,
    }
}

/// Space, TAB and LF separate tokens; CR does not (the reference rejects or mis-reads it).
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

/// What may follow a keyword, a two-character operator, a closing quote or a number.
fn is_terminator(c: Option<&char>) -> bool {
    match c {
        None => true,
        Some(&c) => is_whitespace(c) || matches!(c, ',' | ']' | ')'),
    }
}

fn is_ident_char(c: &char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\\')
}

/// How a character is named in a message.
pub(crate) fn describe_char(c: Option<&char>) -> String {
    match c {
        None => "end of input".into(),
        Some(' ') => "a space".into(),
        Some('\t') => "a tab".into(),
        Some('\n') => "a line feed".into(),
        Some('\r') => "a carriage return".into(),
        Some('\'') => "\"'\"".into(),
        Some(c) if c.is_control() => format!("'{}'", c.escape_unicode()),
        Some(c) => format!("'{c}'"),
    }
}

fn slice(source: &[char], start: usize, end: usize) -> String {
    source.get(start..end).unwrap_or_default().iter().collect()
}

fn error(source: &[char], position: usize, kind: ParseErrorKind, reason: String) -> ParseError {
    ParseError::new(source, position, kind, reason)
}

fn unexpected_character(source: &[char], pos: usize, c: char) -> ParseError {
    let reason = if c == '\r' {
        "unexpected carriage return (separate tokens with spaces, tabs or line feeds)".to_owned()
    } else {
        format!("unexpected character {}", describe_char(Some(&c)))
    };
    error(source, pos, ParseErrorKind::UnexpectedCharacter, reason)
}

/// `!` negates a function (`!contains(`, `!match(`) or starts `!=`.
fn bang(source: &[char], pos: usize) -> Result<Token, ParseError> {
    match source.get(pos + 1) {
        Some(&c) if c.is_ascii_alphabetic() || c == '(' => {
            Ok(token(Kind::Bang, "!".into(), pos, pos + 1))
        }
        Some('=') => two_char_operator(source, pos, Kind::Ne, "!="),
        other => Err(error(
            source,
            pos + 1,
            ParseErrorKind::UnexpectedToken,
            format!(
                "expected '=', 'contains(' or 'match(' after '!', found {}",
                describe_char(other)
            ),
        )),
    }
}

/// `<`, `>`, and `<=`, `>=` (which, like the reference, need a terminator after them; the
/// reference reads `>=5` as `>` followed by the value `=`).
fn comparison(source: &[char], pos: usize, c: char) -> Result<Token, ParseError> {
    let (single, double, text) = if c == '<' {
        (Kind::Lt, Kind::Le, "<=")
    } else {
        (Kind::Gt, Kind::Ge, ">=")
    };
    if source.get(pos + 1) == Some(&'=') {
        return two_char_operator(source, pos, double, text);
    }
    Ok(token(single, c.to_string(), pos, pos + 1))
}

fn two_char_operator(
    source: &[char],
    pos: usize,
    kind: Kind,
    text: &str,
) -> Result<Token, ParseError> {
    let after = source.get(pos + 2);
    if !is_terminator(after) {
        return Err(error(
            source,
            pos + 2,
            ParseErrorKind::MissingSpace,
            format!(
                "expected a space after '{text}', found {}",
                describe_char(after)
            ),
        ));
    }
    Ok(token(kind, text.into(), pos, pos + 2))
}

/// A string runs to the next identical quote (there are no escapes); the closing quote must be
/// followed by a terminator, where the reference would re-open a string and mis-read the rest.
fn string(source: &[char], pos: usize, quote: char) -> Result<Token, ParseError> {
    let Some(close) = source
        .get(pos + 1..)
        .and_then(|rest| rest.iter().position(|&c| c == quote))
        .map(|offset| pos + 1 + offset)
    else {
        return Err(error(
            source,
            pos,
            ParseErrorKind::UnterminatedString,
            format!(
                "unterminated string (no closing {})",
                describe_char(Some(&quote))
            ),
        ));
    };
    let end = close + 1;
    let after = source.get(end);
    if !is_terminator(after) {
        let escaped = close > 0 && source.get(close - 1) == Some(&'\\');
        let hint = if after == Some(&quote) || escaped {
            " (strings have no escape sequences)"
        } else {
            ""
        };
        return Err(error(
            source,
            end,
            ParseErrorKind::MissingSpace,
            format!(
                "expected a space after the closing quote, found {}{hint}",
                describe_char(after)
            ),
        ));
    }
    Ok(token(Kind::Str, slice(source, pos, end), pos, end))
}

/// Digits with at most one `.`, each `.` followed by a digit, optionally signed; a
/// terminator must follow (the reference splits `5abc` into `5` and `abc`).
fn number(source: &[char], start: usize) -> Result<Token, ParseError> {
    let mut pos = start + 1;
    let mut seen_dot = false;
    loop {
        match source.get(pos) {
            Some(c) if c.is_ascii_digit() => pos += 1,
            Some('.') => {
                if seen_dot {
                    return Err(error(
                        source,
                        pos,
                        ParseErrorKind::InvalidNumber,
                        format!(
                            "unexpected second '.' in number '{}'",
                            slice(source, start, pos)
                        ),
                    ));
                }
                let after = source.get(pos + 1);
                if !after.is_some_and(char::is_ascii_digit) {
                    return Err(error(
                        source,
                        pos + 1,
                        ParseErrorKind::InvalidNumber,
                        format!(
                            "expected a digit after '.' in number '{}', found {}",
                            slice(source, start, pos + 1),
                            describe_char(after)
                        ),
                    ));
                }
                seen_dot = true;
                pos += 1;
            }
            _ => break,
        }
    }
    let text = slice(source, start, pos);
    if !text.chars().any(|c| c.is_ascii_digit()) {
        return Err(error(
            source,
            pos,
            ParseErrorKind::InvalidNumber,
            format!(
                "expected a digit after '{text}', found {}",
                describe_char(source.get(pos))
            ),
        ));
    }
    let after = source.get(pos);
    if !is_terminator(after) && start > 0 && source.get(start - 1) == Some(&'.') {
        // `properties.2fa`: a path segment, not a number glued to a word.
        return Err(error(
            source,
            start,
            ParseErrorKind::UnexpectedToken,
            format!("expected a name after '.', found '{text}'{DIGIT_HINT}"),
        ));
    }
    if !is_terminator(after) {
        return Err(error(
            source,
            pos,
            ParseErrorKind::MissingSpace,
            format!(
                "expected a space after number '{text}', found {}",
                describe_char(after)
            ),
        ));
    }
    if !text.parse::<f64>().is_ok_and(f64::is_finite) {
        return Err(error(
            source,
            start,
            ParseErrorKind::InvalidNumber,
            format!("number '{text}' is out of range"),
        ));
    }
    Ok(token(Kind::Number, text, start, pos))
}

/// `and`, `or` and `null` when followed by a terminator; otherwise an identifier.
fn word(source: &[char], pos: usize, c: char) -> Result<Token, ParseError> {
    let keyword = match c {
        'a' => Some((Kind::And, "and")),
        'o' => Some((Kind::Or, "or")),
        'n' => Some((Kind::Null, "null")),
        _ => None,
    };
    if let Some((kind, text)) = keyword {
        let end = pos + text.chars().count();
        let spelled = source
            .get(pos..end)
            .is_some_and(|chars| chars.iter().copied().eq(text.chars()));
        if spelled && is_terminator(source.get(end)) {
            return Ok(token(kind, text.into(), pos, end));
        }
    }
    identifier(source, pos)
}

/// Identifier characters, `\` taking the next character literally; the identifier must end at
/// a terminator, `.`, `(`, `=` or `!` (so `a>5` is an error, as in the reference).
fn identifier(source: &[char], start: usize) -> Result<Token, ParseError> {
    let mut text = String::new();
    let mut pos = start;
    while let Some(&c) = source.get(pos) {
        if c == '\\' {
            let Some(&escaped) = source.get(pos + 1) else {
                return Err(error(
                    source,
                    pos + 1,
                    ParseErrorKind::UnexpectedEnd,
                    "expected a character after '\\', found end of input".into(),
                ));
            };
            text.push(escaped);
            pos += 2;
        } else {
            text.push(c);
            pos += 1;
        }
        if !source.get(pos).is_some_and(is_ident_char) {
            break;
        }
    }
    let after = source.get(pos);
    if is_terminator(after) || after.is_some_and(|c| matches!(c, '.' | '(' | '=' | '!')) {
        return Ok(token(Kind::Ident, text, start, pos));
    }
    let raw = slice(source, start, pos);
    let (kind, reason) = match after {
        Some('[') => (
            ParseErrorKind::UnexpectedToken,
            format!(
                "unexpected '[' after '{raw}' (bracket indexes are not supported; \
                 write an index as an escaped segment, e.g. {raw}.\\0)"
            ),
        ),
        Some(&c @ ('<' | '>' | '"' | '\'' | '+')) => (
            ParseErrorKind::MissingSpace,
            format!(
                "expected a space after '{raw}', found {}",
                describe_char(Some(&c))
            ),
        ),
        Some(&c) => return Err(unexpected_character(source, pos, c)),
        None => return Ok(token(Kind::Ident, text, start, pos)),
    };
    Err(error(source, pos, kind, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(text: &str) -> Vec<char> {
        text.chars().collect()
    }

    fn kinds(text: &str) -> Vec<(Kind, String)> {
        lex(&chars(text))
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.text))
            .collect()
    }

    fn lex_error(text: &str) -> (usize, String) {
        let error = lex(&chars(text)).unwrap_err();
        (error.position(), error.reason().to_owned())
    }

    #[test]
    fn keywords_need_a_terminator() {
        use Kind::*;
        assert_eq!(
            kinds("and or null andy or( null)"),
            vec![
                (And, "and".into()),
                (Or, "or".into()),
                (Null, "null".into()),
                (Ident, "andy".into()),
                (Ident, "or".into()),
                (LParen, "(".into()),
                (Null, "null".into()),
                (RParen, ")".into()),
                (Eos, String::new()),
            ]
        );
    }

    #[test]
    fn identifiers_resolve_escapes_and_strings_keep_quotes() {
        use Kind::*;
        assert_eq!(
            kinds(r#"product\ 1 \type 'a' "b""#),
            vec![
                (Ident, "product 1".into()),
                (Ident, "type".into()),
                (Str, "'a'".into()),
                (Str, "\"b\"".into()),
                (Eos, String::new()),
            ]
        );
    }

    #[test]
    fn operators_and_numbers() {
        use Kind::*;
        assert_eq!(
            kinds("a=5 b != -3 c <= .5 d >"),
            vec![
                (Ident, "a".into()),
                (Eq, "=".into()),
                (Number, "5".into()),
                (Ident, "b".into()),
                (Ne, "!=".into()),
                (Number, "-3".into()),
                (Ident, "c".into()),
                (Le, "<=".into()),
                (Dot, ".".into()),
                (Number, "5".into()),
                (Ident, "d".into()),
                (Gt, ">".into()),
                (Eos, String::new()),
            ]
        );
        assert_eq!(kinds("-.5")[0], (Number, "-.5".into()));
    }

    #[test]
    fn positions_are_in_characters() {
        let tokens = lex(&chars("\"café\" x")).unwrap();
        assert_eq!((tokens[1].start, tokens[1].end), (7, 8));
    }

    #[test]
    fn lexer_errors_name_position_and_reason() {
        assert_eq!(lex_error("a * b"), (2, "unexpected character '*'".into()));
        assert_eq!(
            lex_error("a >=5"),
            (4, "expected a space after '>=', found '5'".into())
        );
        assert_eq!(
            lex_error("a !=5"),
            (4, "expected a space after '!=', found '5'".into())
        );
        assert_eq!(
            lex_error("! contains"),
            (
                1,
                "expected '=', 'contains(' or 'match(' after '!', found a space".into()
            )
        );
        assert_eq!(
            lex_error("traits.a>5"),
            (8, "expected a space after 'a', found '>'".into())
        );
        assert_eq!(
            lex_error("\"abc"),
            (0, "unterminated string (no closing '\"')".into())
        );
        assert_eq!(
            lex_error("\"a\"\"b\""),
            (
                3,
                "expected a space after the closing quote, found '\"' (strings have no escape sequences)"
                    .into()
            )
        );
        assert_eq!(
            lex_error("9."),
            (
                2,
                "expected a digit after '.' in number '9.', found end of input".into()
            )
        );
        assert_eq!(
            lex_error("1.2.3"),
            (3, "unexpected second '.' in number '1.2'".into())
        );
        assert_eq!(
            lex_error("- 1"),
            (1, "expected a digit after '-', found a space".into())
        );
        assert_eq!(
            lex_error("5abc"),
            (1, "expected a space after number '5', found 'a'".into())
        );
        assert_eq!(
            lex_error("a\\"),
            (
                2,
                "expected a character after '\\', found end of input".into()
            )
        );
        assert_eq!(lex_error("a\r").0, 1);
        assert_eq!(lex_error("é").1, "unexpected character 'é'");
        assert!(lex_error(&"9".repeat(400)).1.contains("out of range"));
    }
}

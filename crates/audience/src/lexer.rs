//! Lexer: definition text → tokens with character positions. Strings are single- or
//! double-quoted with `\` taking the next character literally; numbers are JSON numbers; words
//! are ASCII identifiers (function names, `AND`/`OR`/`NOT`, units, `as`, `true`, `false`).

use crate::error::{ParseError, ParseErrorKind};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A word: `event`, `AND`, `days`, `true`, `exclude`.
    Word,
    /// A quoted string; the token's `value` has the quotes removed and escapes resolved.
    Str,
    /// A JSON number as written (`-1`, `100.5`, `1e+21`).
    Number,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `.`.
    Dot,
    /// `:`.
    Colon,
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// End of the text.
    Eos,
}

/// One token and where it sits in the text, in characters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    /// Strings: the value (unquoted, unescaped); everything else: the text as written.
    pub(crate) value: String,
    /// The text as written (with quotes and backslashes), for messages.
    pub(crate) raw: String,
    /// 0-based character position of the first character.
    pub(crate) start: usize,
}

/// The longest token text quoted in an error message.
const MAX_QUOTED: usize = 40;

impl Token {
    /// How the token is named in a message: `'property'`, `'2.0'`, `end of definition`.
    pub(crate) fn describe(&self) -> String {
        if self.kind == Kind::Eos {
            return "end of definition".to_owned();
        }
        let mut text: String = self.raw.chars().take(MAX_QUOTED).collect();
        if self.raw.chars().count() > MAX_QUOTED {
            text.push('…');
        }
        format!("'{text}'")
    }

    /// Whether the token is the word `word`, compared case-insensitively (the keywords).
    pub(crate) fn is_keyword(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.value.eq_ignore_ascii_case(word)
    }

    /// Whether the token is exactly the word `word` (function names, units, `as`).
    pub(crate) fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.value == word
    }
}

/// Splits `source` into tokens, ending with [`Kind::Eos`].
pub(crate) fn lex(source: &[char]) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(&c) = source.get(pos) {
        if c.is_whitespace() {
            pos += 1;
            continue;
        }
        let (token, end) = match c {
            '(' => (punct(Kind::LParen, c, pos), pos + 1),
            ')' => (punct(Kind::RParen, c, pos), pos + 1),
            ',' => (punct(Kind::Comma, c, pos), pos + 1),
            '.' => (punct(Kind::Dot, c, pos), pos + 1),
            ':' => (punct(Kind::Colon, c, pos), pos + 1),
            '=' | '!' | '<' | '>' => operator(source, pos, c)?,
            '\'' | '"' => string(source, pos, c)?,
            '-' | '0'..='9' => number(source, pos)?,
            c if c.is_ascii_alphabetic() || c == '_' => word(source, pos),
            other => {
                return Err(ParseError::new(
                    ParseErrorKind::UnexpectedCharacter,
                    pos,
                    format!("unexpected character '{}'", other.escape_debug()),
                ));
            }
        };
        tokens.push(token);
        pos = end;
    }
    tokens.push(Token {
        kind: Kind::Eos,
        value: String::new(),
        raw: String::new(),
        start: source.len(),
    });
    Ok(tokens)
}

fn slice(source: &[char], start: usize, end: usize) -> String {
    source.get(start..end).unwrap_or_default().iter().collect()
}

fn punct(kind: Kind, c: char, start: usize) -> Token {
    Token {
        kind,
        value: c.to_string(),
        raw: c.to_string(),
        start,
    }
}

/// `=`, `==`, `!=`, `<`, `<=`, `>`, `>=`.
fn operator(source: &[char], pos: usize, c: char) -> Result<(Token, usize), ParseError> {
    let doubled = source.get(pos + 1) == Some(&'=');
    let (kind, len) = match (c, doubled) {
        ('=', true) => (Kind::Eq, 2),
        ('=', false) => (Kind::Eq, 1),
        ('!', true) => (Kind::Ne, 2),
        ('<', true) => (Kind::Le, 2),
        ('<', false) => (Kind::Lt, 1),
        ('>', true) => (Kind::Ge, 2),
        ('>', false) => (Kind::Gt, 1),
        _ => {
            return Err(ParseError::new(
                ParseErrorKind::UnexpectedCharacter,
                pos,
                "unexpected character '!' (use NOT(…) or '!=')",
            ));
        }
    };
    let text = slice(source, pos, pos + len);
    let token = Token {
        kind,
        value: text.clone(),
        raw: text,
        start: pos,
    };
    Ok((token, pos + len))
}

/// A quoted string: `\` takes the next character literally.
fn string(source: &[char], start: usize, quote: char) -> Result<(Token, usize), ParseError> {
    let mut value = String::new();
    let mut pos = start + 1;
    loop {
        match source.get(pos) {
            None => {
                return Err(ParseError::new(
                    ParseErrorKind::UnterminatedString,
                    start,
                    "unterminated string",
                ));
            }
            Some('\\') => {
                let Some(&next) = source.get(pos + 1) else {
                    return Err(ParseError::new(
                        ParseErrorKind::UnterminatedString,
                        start,
                        "unterminated string",
                    ));
                };
                value.push(next);
                pos += 2;
            }
            Some(&c) if c == quote => {
                let token = Token {
                    kind: Kind::Str,
                    value,
                    raw: slice(source, start, pos + 1),
                    start,
                };
                return Ok((token, pos + 1));
            }
            Some(&c) => {
                value.push(c);
                pos += 1;
            }
        }
    }
}

fn digits(source: &[char], mut pos: usize) -> usize {
    while source.get(pos).is_some_and(char::is_ascii_digit) {
        pos += 1;
    }
    pos
}

/// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. A `.` or `e` that
/// does not continue the number ends it (`1.equals(1)` is `1` then `.equals`).
fn number(source: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let mut pos = start;
    if source.get(pos) == Some(&'-') {
        pos += 1;
    }
    let int_start = pos;
    pos = digits(source, pos);
    if pos == int_start {
        return Err(ParseError::new(
            ParseErrorKind::InvalidNumber,
            start,
            "expected digits after '-'",
        ));
    }
    if pos - int_start > 1 && source.get(int_start) == Some(&'0') {
        return Err(ParseError::new(
            ParseErrorKind::InvalidNumber,
            start,
            format!(
                "invalid number '{}' (no leading zeros)",
                slice(source, start, pos)
            ),
        ));
    }
    if source.get(pos) == Some(&'.') && source.get(pos + 1).is_some_and(char::is_ascii_digit) {
        pos = digits(source, pos + 1);
    }
    if matches!(source.get(pos), Some('e' | 'E')) {
        let mut exp = pos + 1;
        if matches!(source.get(exp), Some('+' | '-')) {
            exp += 1;
        }
        if source.get(exp).is_some_and(char::is_ascii_digit) {
            pos = digits(source, exp);
        }
    }
    let text = slice(source, start, pos);
    let token = Token {
        kind: Kind::Number,
        value: text.clone(),
        raw: text,
        start,
    };
    Ok((token, pos))
}

/// A word: ASCII letters, digits and `_`, not starting with a digit.
fn word(source: &[char], start: usize) -> (Token, usize) {
    let mut pos = start;
    while source
        .get(pos)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
    {
        pos += 1;
    }
    let text = slice(source, start, pos);
    let token = Token {
        kind: Kind::Word,
        value: text.clone(),
        raw: text,
        start,
    };
    (token, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, String)> {
        let chars: Vec<char> = text.chars().collect();
        lex(&chars)
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.value))
            .collect()
    }

    #[test]
    fn strings_resolve_backslashes() {
        let tokens = kinds(r#"'C\art "Shared"' "a\"b" 'it\'s' '\\'"#);
        let values: Vec<_> = tokens.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["Cart \"Shared\"", "a\"b", "it's", "\\", ""]);
    }

    #[test]
    fn numbers_are_json_numbers() {
        let tokens = kinds(">=-1 1e+21 100.5 1.equals");
        let values: Vec<_> = tokens.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [">=", "-1", "1e+21", "100.5", "1", ".", "equals", ""]
        );
        let chars: Vec<char> = "01".chars().collect();
        assert!(lex(&chars).is_err());
    }

    #[test]
    fn unterminated_strings_point_at_their_quote() {
        let chars: Vec<char> = "trait('plan) = 'pro'".chars().collect();
        let error = lex(&chars).unwrap_err();
        assert_eq!(error.to_string(), "column 20: unterminated string");
    }

    #[test]
    fn operators() {
        let tokens = kinds("= == != < <= > >=");
        let found: Vec<_> = tokens.iter().map(|(k, _)| *k).collect();
        use Kind::*;
        assert_eq!(found, [Eq, Eq, Ne, Lt, Le, Gt, Ge, Eos]);
    }
}

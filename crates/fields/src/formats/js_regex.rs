//! JavaScript regular expressions: a syntax check of `new RegExp(source)` (Annex B, no flags —
//! the `regex` format) and a translation of `u`-flag patterns (Ajv's `pattern`,
//! `patternProperties`) into the `regex` crate's syntax, rejecting what it cannot express.

use std::collections::HashSet;
use std::fmt::Write as _;

/// Whether `new RegExp(source)` would compile (non-Unicode mode with the web-compatibility
/// grammar of Annex B, as V8 implements it).
pub(crate) fn is_valid_pattern(source: &str) -> bool {
    let chars: Vec<char> = source.chars().collect();
    let names = group_names(&chars);
    let Some(names) = names else {
        return false;
    };
    let mut checker = Checker {
        chars: &chars,
        pos: 0,
        names: &names,
        depth: 0,
    };
    checker.disjunction() && checker.pos == chars.len()
}

/// The capture group names, or `None` when one is malformed or repeated.
fn group_names(chars: &[char]) -> Option<HashSet<String>> {
    let mut names = HashSet::new();
    let mut i = 0;
    let mut in_class = false;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '(' if !in_class
                && chars.get(i + 1) == Some(&'?')
                && chars.get(i + 2) == Some(&'<')
                && !matches!(chars.get(i + 3), Some('=' | '!')) =>
            {
                let start = i + 3;
                let len = chars.get(start..)?.iter().position(|&c| c == '>')?;
                let name: String = chars.get(start..start + len)?.iter().collect();
                if !is_identifier(&name) || !names.insert(name) {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Some(names)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '$' || c == '_' || c.is_alphabetic())
        && chars.all(|c| {
            c == '$' || c == '_' || c == '\u{200C}' || c == '\u{200D}' || c.is_alphanumeric()
        })
}

struct Checker<'a> {
    chars: &'a [char],
    pos: usize,
    names: &'a HashSet<String>,
    depth: usize,
}

impl Checker<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn disjunction(&mut self) -> bool {
        loop {
            if !self.alternative() {
                return false;
            }
            if !self.eat('|') {
                return true;
            }
        }
    }

    fn alternative(&mut self) -> bool {
        loop {
            match self.peek() {
                None | Some('|') => return true,
                Some(')') => return self.depth > 0,
                _ => {
                    if !self.term() {
                        return false;
                    }
                }
            }
        }
    }

    fn term(&mut self) -> bool {
        let Some(c) = self.peek() else {
            return false;
        };
        // Assertions that can never be quantified.
        if c == '^' || c == '$' {
            self.pos += 1;
            return !self.at_quantifier();
        }
        if c == '\\' && matches!(self.peek_at(1), Some('b' | 'B')) {
            self.pos += 2;
            return !self.at_quantifier();
        }
        if c == '('
            && self.peek_at(1) == Some('?')
            && self.peek_at(2) == Some('<')
            && matches!(self.peek_at(3), Some('=' | '!'))
        {
            self.pos += 4;
            return self.group_body() && !self.at_quantifier();
        }
        if !self.atom() {
            return false;
        }
        self.quantifier()
    }

    /// Whether a quantifier (which would have nothing to repeat) starts here.
    fn at_quantifier(&self) -> bool {
        match self.peek() {
            Some('*' | '+' | '?') => true,
            Some('{') => self.braced_quantifier().is_some(),
            _ => false,
        }
    }

    /// `{n}`, `{n,}` or `{n,m}` at the current position: its length and bounds.
    fn braced_quantifier(&self) -> Option<(usize, u64, Option<u64>)> {
        let mut i = self.pos;
        if self.chars.get(i) != Some(&'{') {
            return None;
        }
        i += 1;
        let read = |i: &mut usize| {
            let start = *i;
            let mut n: u64 = 0;
            while let Some(d) = self.chars.get(*i).and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                *i += 1;
            }
            (*i > start).then_some(n)
        };
        let min = read(&mut i)?;
        let mut max = Some(min);
        if self.chars.get(i) == Some(&',') {
            i += 1;
            max = read(&mut i);
        }
        if self.chars.get(i) != Some(&'}') {
            return None;
        }
        Some((i + 1 - self.pos, min, max))
    }

    fn quantifier(&mut self) -> bool {
        match self.peek() {
            Some('*' | '+' | '?') => self.pos += 1,
            Some('{') => match self.braced_quantifier() {
                Some((len, min, max)) => {
                    if max.is_some_and(|max| max < min) {
                        return false;
                    }
                    self.pos += len;
                }
                None => return true,
            },
            _ => return true,
        }
        self.eat('?');
        // A second quantifier has nothing to repeat.
        !self.at_quantifier()
    }

    fn atom(&mut self) -> bool {
        let Some(c) = self.peek() else {
            return false;
        };
        match c {
            '*' | '+' | '?' => false,
            '{' => {
                // A well-formed braced quantifier here has nothing to repeat.
                if self.braced_quantifier().is_some() {
                    return false;
                }
                self.pos += 1;
                true
            }
            '(' => {
                self.pos += 1;
                if self.eat('?') {
                    match self.peek() {
                        Some(':' | '=' | '!') => self.pos += 1,
                        Some('<') => {
                            // Named group: the name was checked by `group_names`.
                            while let Some(c) = self.peek() {
                                self.pos += 1;
                                if c == '>' {
                                    break;
                                }
                            }
                        }
                        _ => return false,
                    }
                }
                self.group_body()
            }
            '[' => self.class(),
            '\\' => self.atom_escape(),
            _ => {
                self.pos += 1;
                true
            }
        }
    }

    fn group_body(&mut self) -> bool {
        self.depth += 1;
        let ok = self.disjunction() && self.eat(')');
        self.depth -= 1;
        ok
    }

    fn atom_escape(&mut self) -> bool {
        self.pos += 1;
        let Some(c) = self.peek() else {
            return false; // `\` at end of pattern
        };
        self.pos += 1;
        if c == 'k' && !self.names.is_empty() {
            if !self.eat('<') {
                return false;
            }
            let start = self.pos;
            while self.peek().is_some_and(|c| c != '>') {
                self.pos += 1;
            }
            let name: String = self
                .chars
                .get(start..self.pos)
                .unwrap_or_default()
                .iter()
                .collect();
            return self.eat('>') && self.names.contains(&name);
        }
        true
    }

    fn class(&mut self) -> bool {
        self.pos += 1;
        self.eat('^');
        loop {
            let Some(c) = self.peek() else {
                return false; // unterminated class
            };
            if c == ']' {
                self.pos += 1;
                return true;
            }
            let Some(atom) = self.class_atom() else {
                return false;
            };
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                self.pos += 1;
                let Some(upper) = self.class_atom() else {
                    return false;
                };
                // Ranges between two characters must be in order; a class escape at either
                // end makes Annex B read the `-` literally.
                if let (Some(lo), Some(hi)) = (atom, upper)
                    && lo > hi
                {
                    return false;
                }
            }
        }
    }

    /// One class atom: `Some(Some(c))` a character, `Some(None)` a class escape, `None` error.
    fn class_atom(&mut self) -> Option<Option<char>> {
        let c = self.peek()?;
        self.pos += 1;
        if c != '\\' {
            return Some(Some(c));
        }
        let e = self.peek()?;
        self.pos += 1;
        Some(match e {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => None,
            'b' => Some('\u{8}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'f' => Some('\u{C}'),
            'v' => Some('\u{B}'),
            '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => Some('\0'),
            'x' => self.hex_escape(2).or(Some('x')),
            'u' => self.hex_escape(4).or(Some('u')),
            other => Some(other),
        })
    }

    fn hex_escape(&mut self, len: usize) -> Option<char> {
        let digits: String = self.chars.get(self.pos..self.pos + len)?.iter().collect();
        let value = u32::from_str_radix(&digits, 16).ok()?;
        if digits.len() != len {
            return None;
        }
        self.pos += len;
        char::from_u32(value).or(Some('\u{FFFD}'))
    }
}

/// Translates a JavaScript `u`-flag pattern to the `regex` crate's syntax: `\d`, `\w`, `\s`, `.`
/// get JavaScript's meaning; look-around and back-references are rejected.
pub(crate) fn translate(source: &str) -> Result<String, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '\\' => {
                    let e = *chars.get(i).ok_or("\\ at end of pattern")?;
                    i += 1;
                    i = translate_escape(e, &chars, i, true, &mut out)?;
                }
                '-' => out.push('-'),
                '[' | '&' | '~' => {
                    let _ = write!(out, "\\{c}");
                }
                other => push_literal(other, &mut out),
            }
            continue;
        }
        match c {
            '\\' => {
                let e = *chars.get(i).ok_or("\\ at end of pattern")?;
                i += 1;
                i = translate_escape(e, &chars, i, false, &mut out)?;
            }
            '[' => {
                in_class = true;
                out.push('[');
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    return Err("empty character classes are not supported".into());
                }
            }
            '.' => out.push_str(r"[^\n\r\u{2028}\u{2029}]"),
            '(' if chars.get(i) == Some(&'?') => match (chars.get(i + 1), chars.get(i + 2)) {
                (Some(':'), _) => {
                    out.push_str("(?:");
                    i += 2;
                }
                (Some('<'), Some(n)) if *n != '=' && *n != '!' => {
                    out.push_str("(?P<");
                    i += 2;
                }
                _ => return Err("look-around is not supported".into()),
            },
            other => out.push(other),
        }
    }
    if in_class {
        return Err("unterminated character class".into());
    }
    Ok(out)
}

fn push_literal(c: char, out: &mut String) {
    if c.is_ascii_alphanumeric() || !c.is_ascii() || c == ' ' || c == '_' {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

/// Translates the escape `\e` (the characters after it start at `i`); returns the new position.
fn translate_escape(
    e: char,
    chars: &[char],
    mut i: usize,
    in_class: bool,
    out: &mut String,
) -> Result<usize, String> {
    const SPACE: &str = r"\t\n\x0B\x0C\r \u{A0}\u{1680}\u{2000}-\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}\u{FEFF}";
    let set = |body: &str, negated: bool| match (in_class, negated) {
        (true, false) => body.to_owned(),
        (true, true) => format!("[^{body}]"),
        (false, false) => format!("[{body}]"),
        (false, true) => format!("[^{body}]"),
    };
    match e {
        'd' => out.push_str(&set("0-9", false)),
        'D' => out.push_str(&set("0-9", true)),
        'w' => out.push_str(&set("A-Za-z0-9_", false)),
        'W' => out.push_str(&set("A-Za-z0-9_", true)),
        's' => out.push_str(&set(SPACE, false)),
        'S' => out.push_str(&set(SPACE, true)),
        'b' if in_class => out.push_str(r"\x08"),
        'b' => out.push_str(r"(?-u:\b)"),
        'B' if !in_class => out.push_str(r"(?-u:\B)"),
        'n' | 'r' | 't' | 'f' | 'v' => {
            let c = match e {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'f' => '\u{C}',
                _ => '\u{B}',
            };
            let _ = write!(out, "\\x{{{:X}}}", c as u32);
        }
        '0' if !chars.get(i).is_some_and(char::is_ascii_digit) => out.push_str(r"\x00"),
        '1'..='9' => return Err("back-references are not supported".into()),
        'k' => return Err("back-references are not supported".into()),
        'c' => {
            let letter = chars
                .get(i)
                .filter(|c| c.is_ascii_alphabetic())
                .ok_or("invalid control escape")?;
            i += 1;
            let _ = write!(out, "\\x{{{:X}}}", (*letter as u32) % 32);
        }
        'x' => {
            let hex: String = chars
                .get(i..i + 2)
                .ok_or("invalid escape")?
                .iter()
                .collect();
            let value = u32::from_str_radix(&hex, 16).map_err(|_| "invalid escape")?;
            i += 2;
            let _ = write!(out, "\\x{{{value:X}}}");
        }
        'u' => {
            let (value, next) = read_unicode_escape(chars, i)?;
            i = next;
            let _ = write!(out, "\\x{{{value:X}}}");
        }
        'p' | 'P' => {
            let end = chars
                .get(i..)
                .and_then(|rest| rest.iter().position(|&c| c == '}'))
                .ok_or("invalid property escape")?;
            let body: String = chars.get(i..=i + end).unwrap_or_default().iter().collect();
            out.push('\\');
            out.push(e);
            out.push_str(&body);
            i += end + 1;
        }
        '^' | '$' | '\\' | '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|'
        | '/' | '-' => {
            let _ = write!(out, "\\x{{{:X}}}", e as u32);
        }
        _ => return Err(format!("invalid escape \\{e}")),
    }
    Ok(i)
}

/// `\uXXXX` (with a following low surrogate combined) or `\u{X…}`.
fn read_unicode_escape(chars: &[char], i: usize) -> Result<(u32, usize), String> {
    if chars.get(i) == Some(&'{') {
        let end = chars
            .get(i..)
            .and_then(|rest| rest.iter().position(|&c| c == '}'))
            .ok_or("invalid unicode escape")?;
        let hex: String = chars
            .get(i + 1..i + end)
            .unwrap_or_default()
            .iter()
            .collect();
        let value = u32::from_str_radix(&hex, 16).map_err(|_| "invalid unicode escape")?;
        return Ok((value, i + end + 1));
    }
    let read4 = |at: usize| -> Option<u32> {
        let hex: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&hex, 16).ok()
    };
    let high = read4(i).ok_or("invalid unicode escape")?;
    if (0xD800..0xDC00).contains(&high)
        && chars.get(i + 4) == Some(&'\\')
        && chars.get(i + 5) == Some(&'u')
        && let Some(low) = read4(i + 6).filter(|low| (0xDC00..0xE000).contains(low))
    {
        return Ok((0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00), i + 10));
    }
    Ok((high, i + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_check() {
        for ok in [
            "",
            "^\\d+$",
            "a|b",
            "(a)(?:b)(?=c)(?!d)(?<=e)(?<!f)",
            "(?<year>\\d{4})\\k<year>",
            "[a-z]",
            "[]",
            "[^]",
            "]",
            "{",
            "a{",
            "a{1",
            "x{2,3}?",
            "\\k",
            "[\\d-z]",
            "(?=a)*",
            "\\1",
            "\\c",
            "[\\b]",
        ] {
            assert!(is_valid_pattern(ok), "{ok:?} should be valid");
        }
        for bad in [
            "[",
            "(",
            ")",
            "a)",
            "*",
            "+a",
            "a**",
            "a{2,1}",
            "{1}",
            "\\",
            "(?a)",
            "[z-a]",
            "(?<a>x)(?<a>y)",
            "(?<1>x)",
            "\\k<nope>(?<a>x)",
            "^*",
            "(?<=a)*",
            "a|*",
        ] {
            assert!(!is_valid_pattern(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn translation() {
        let t = |s: &str| translate(s).unwrap();
        assert_eq!(t("^\\d+$"), "^[0-9]+$");
        assert_eq!(t("[\\d_]"), "[0-9_]");
        assert!(translate("(?=a)").is_err());
        assert!(translate("(a)\\1").is_err());
        let re = regex::Regex::new(&t("^a.b$")).unwrap();
        assert!(re.is_match("a-b"));
        assert!(!re.is_match("a\nb"));
    }
}

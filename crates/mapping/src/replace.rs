//! `@replace` matching: the pattern is literal (the reference escapes every metacharacter), the
//! replacement honours JS `$$`, `$&`, `` $` `` and `$'`, and `ignorecase` uses the JS non-unicode
//! regex case canonicalisation.

/// Longest pattern or replacement the reference accepts, in UTF-16 code units.
pub(crate) const MAX_LENGTH: usize = 10;

/// A checked pattern/replacement pair.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pattern: Vec<char>,
    replacement: String,
    ignore_case: bool,
    global: bool,
}

impl Pair {
    /// Checks the lengths the way the reference's `performReplace` does, pattern first.
    pub(crate) fn new(
        pattern: &str,
        replacement: &str,
        ignore_case: bool,
        global: bool,
    ) -> Result<Self, String> {
        if junction_js::utf16_len(pattern) > MAX_LENGTH {
            return Err(format!(
                "@replace requires a \"pattern\" less than {MAX_LENGTH} characters"
            ));
        }
        if junction_js::utf16_len(replacement) > MAX_LENGTH {
            return Err(format!(
                "@replace requires a \"replacement\" less than {MAX_LENGTH} characters"
            ));
        }
        let pattern = pattern
            .chars()
            .map(|c| if ignore_case { canonicalize(c) } else { c })
            .collect();
        Ok(Pair {
            pattern,
            replacement: replacement.to_owned(),
            ignore_case,
            global,
        })
    }

    /// Replaces the first (or every, when global) occurrence in `value`.
    pub(crate) fn apply(&self, value: &str) -> String {
        if self.pattern.is_empty() {
            // Unreachable through the directive (an empty pattern is falsy there); JS would
            // match the empty string, which is not worth reproducing.
            return value.to_owned();
        }
        let chars: Vec<(usize, char)> = value.char_indices().collect();
        let byte_at = |i: usize| chars.get(i).map_or(value.len(), |&(at, _)| at);
        let mut out = String::with_capacity(value.len());
        let mut copied = 0;
        let mut i = 0;
        while i + self.pattern.len() <= chars.len() {
            if !self.matches_at(&chars, i) {
                i += 1;
                continue;
            }
            let start = byte_at(i);
            let end = byte_at(i + self.pattern.len());
            out.push_str(value.get(copied..start).unwrap_or_default());
            self.expand(value, start, end, &mut out);
            copied = end;
            i += self.pattern.len();
            if !self.global {
                break;
            }
        }
        out.push_str(value.get(copied..).unwrap_or_default());
        out
    }

    fn matches_at(&self, chars: &[(usize, char)], at: usize) -> bool {
        self.pattern.iter().enumerate().all(|(k, &p)| {
            chars.get(at + k).is_some_and(|&(_, c)| {
                let c = if self.ignore_case { canonicalize(c) } else { c };
                c == p
            })
        })
    }

    fn expand(&self, value: &str, start: usize, end: usize, out: &mut String) {
        push_substitution(&self.replacement, value, start, end, out);
    }
}

/// JS `GetSubstitution` without capture groups, for the match `value[start..end]`: only `$$`,
/// `$&`, `` $` `` and `$'` are special; `$1` and `$<name>` stay literal.
pub(crate) fn push_substitution(
    replacement: &str,
    value: &str,
    start: usize,
    end: usize,
    out: &mut String,
) {
    let mut rest = replacement.chars().peekable();
    while let Some(c) = rest.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match rest.peek() {
            Some('$') => out.push('$'),
            Some('&') => out.push_str(value.get(start..end).unwrap_or_default()),
            Some('`') => out.push_str(value.get(..start).unwrap_or_default()),
            Some('\'') => out.push_str(value.get(end..).unwrap_or_default()),
            _ => {
                out.push('$');
                continue;
            }
        }
        rest.next();
    }
}

/// JS `Canonicalize` for a case-insensitive, non-unicode regex: the simple uppercase when it is a
/// single UTF-16 unit and does not map non-ASCII to ASCII. Astral characters are two surrogate
/// units there and never change.
fn canonicalize(c: char) -> char {
    if c.len_utf16() != 1 {
        return c;
    }
    let mut upper = c.to_uppercase();
    let (Some(u), None) = (upper.next(), upper.next()) else {
        return c;
    };
    if u.len_utf16() != 1 || ((c as u32) >= 128 && (u as u32) < 128) {
        return c;
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(
        value: &str,
        pattern: &str,
        replacement: &str,
        ignore: bool,
        global: bool,
    ) -> String {
        Pair::new(pattern, replacement, ignore, global)
            .unwrap()
            .apply(value)
    }

    #[test]
    fn literal_global_and_first() {
        assert_eq!(replace("a.b.c", ".", "-", false, true), "a-b-c");
        assert_eq!(replace("x(a|b)*y", "(a|b)*", "", false, true), "xy");
        assert_eq!(
            replace("many+different+things", "+", "_", false, false),
            "many_different+things"
        );
    }

    #[test]
    fn replacement_patterns() {
        assert_eq!(replace("a.b.c", ".", "$$", false, true), "a$b$c");
        assert_eq!(replace("a-b", "-", "$&$&", false, true), "a--b");
        assert_eq!(replace("abc", "b", "$`", false, true), "aac");
        assert_eq!(replace("abc", "b", "$'", false, true), "acc");
        assert_eq!(replace("abc", "b", "$1", false, true), "a$1c");
        assert_eq!(replace("abc", "b", "$<x>", false, true), "a$<x>c");
        assert_eq!(replace("abc", "b", "$", false, true), "a$c");
    }

    #[test]
    fn ignore_case() {
        assert_eq!(
            replace("aab-----AaB---aab", "AaB", "nice", true, true),
            "nice-----nice---nice"
        );
        assert_eq!(replace("aBcb", "b", "", true, false), "acb");
        assert_eq!(
            replace("STRASSE straße", "ß", "ss", true, true),
            "STRASSE strasse"
        );
        assert_eq!(replace("ſ", "s", "x", true, true), "ſ");
    }

    #[test]
    fn lengths_are_utf16() {
        assert!(Pair::new("0123456789", "", false, true).is_ok());
        assert!(Pair::new("01234567890", "", false, true).is_err());
        assert!(Pair::new("😀😀😀😀😀😀", "", false, true).is_err());
    }
}

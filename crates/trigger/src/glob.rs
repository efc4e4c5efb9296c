//! `match()` patterns (D4): `*` matches any run of characters (including none), `?` exactly one
//! character (a Unicode scalar value), anything else itself; the whole value must match. There
//! are no escapes, as trigger strings have none either.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    parts: Box<[Part]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    One,
    Any,
}

impl Glob {
    /// Compiles `pattern`; runs of `*` collapse into one.
    pub(crate) fn new(pattern: &str) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        for c in pattern.chars() {
            if c != '*' && c != '?' {
                literal.push(c);
                continue;
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal).into_boxed_str()));
            }
            if c == '?' {
                parts.push(Part::One);
            } else if parts.last() != Some(&Part::Any) {
                parts.push(Part::Any);
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into_boxed_str()));
        }
        Self {
            parts: parts.into_boxed_slice(),
        }
    }

    /// Whether the pattern matches all of `text`. Linear backtracking on the last `*` only,
    /// so the cost is at most pattern length × text length.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let mut part = 0;
        let mut at = 0;
        // Where to resume after the last `*`: the part after it, and the text it consumed to.
        let mut resume: Option<(usize, usize)> = None;
        loop {
            let rest = text.get(at..).unwrap_or_default();
            let advanced = match self.parts.get(part) {
                Some(Part::Any) => {
                    resume = Some((part + 1, at));
                    Some(0)
                }
                Some(Part::One) => rest.chars().next().map(char::len_utf8),
                Some(Part::Literal(literal)) => {
                    rest.starts_with(&**literal).then_some(literal.len())
                }
                None if rest.is_empty() => return true,
                None => None,
            };
            if let Some(length) = advanced {
                part += 1;
                at += length;
                continue;
            }
            // Mismatch: let the last `*` swallow one more character and retry after it.
            let Some((after_star, consumed)) = resume else {
                return false;
            };
            let Some(next) = text.get(consumed..).and_then(|r| r.chars().next()) else {
                return false;
            };
            let consumed = consumed + next.len_utf8();
            resume = Some((after_star, consumed));
            part = after_star;
            at = consumed;
        }
    }

    /// Whether the pattern matches a one-character string whose character equals no literal
    /// (a lone UTF-16 surrogate read out of a string by index, which Rust strings cannot hold).
    pub(crate) fn matches_single_opaque(&self) -> bool {
        let ones = self.parts.iter().filter(|p| **p == Part::One).count();
        let literals = self.parts.iter().any(|p| matches!(p, Part::Literal(_)));
        let any = self.parts.contains(&Part::Any);
        !literals && (ones == 1 || (ones == 0 && any))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn literal_patterns_match_exactly() {
        assert!(matches("abc", "abc"));
        assert!(!matches("abc", "xbc"));
        assert!(!matches("abc", "abcd"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
    }

    #[test]
    fn stars_match_any_run() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("a*c", "abbbc"));
        assert!(matches("a*c", "ac"));
        assert!(matches("*X*", "aXb"));
        assert!(!matches("*X*", "ab"));
        assert!(matches("a*b*c", "a_b_b_c"));
        assert!(!matches("a*b*c", "a_c_b"));
        assert!(matches("**a**", "ba"));
        assert!(matches("*@*.com", "me@example.com"));
    }

    #[test]
    fn question_mark_matches_one_character() {
        assert!(matches("a?c", "abc"));
        assert!(matches("a?c", "aéc"));
        assert!(!matches("a?c", "ac"));
        assert!(!matches("a?c", "abbc"));
        assert!(matches("?*", "x"));
        assert!(!matches("?*", ""));
        assert!(matches("Caf?*", "Café ☕"));
    }

    #[test]
    fn opaque_single_character() {
        assert!(Glob::new("?").matches_single_opaque());
        assert!(Glob::new("*?*").matches_single_opaque());
        assert!(Glob::new("*").matches_single_opaque());
        assert!(!Glob::new("??").matches_single_opaque());
        assert!(!Glob::new("").matches_single_opaque());
        assert!(!Glob::new("a*").matches_single_opaque());
    }
}

//! LiquidJS's tokenizer replayed before the `liquid` crate parses a template, so that the errors a
//! user sees are LiquidJS's (`output "{{ x" not closed`, `tag "for" is disabled`, `tag "x" not
//! found`), and the few inputs the crate treats differently are rewritten first: inline comments
//! (`{% # … %}`), empty outputs (`{{ }}`) and integer literals too large for an `i64`.

/// Tags LiquidJS knows that `@liquid` refuses.
pub(crate) const DISABLED_TAGS: [&str; 6] =
    ["case", "for", "include", "layout", "render", "tablerow"];

/// The tag every `{{ output }}` is rewritten to; a template cannot name it (it is not a tag
/// LiquidJS knows, so the scan rejects it).
pub(crate) const OUTPUT_TAG: &str = "__output";

/// Tags that open a block, with their closing tag.
const BLOCKS: [(&str, &str); 5] = [
    ("if", "endif"),
    ("unless", "endunless"),
    ("capture", "endcapture"),
    ("block", "endblock"),
    ("comment", "endcomment"),
];

/// Tags that stand alone.
const TAGS: [&str; 7] = [
    "assign",
    "cycle",
    "decrement",
    "echo",
    "increment",
    "break",
    "continue",
];

#[derive(Debug)]
enum Kind {
    Html,
    Tag {
        name: String,
        trim_left: bool,
        trim_right: bool,
    },
    Output {
        trim_left: bool,
        trim_right: bool,
    },
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    begin: usize,
    end: usize,
}

/// A template ready for the `liquid` crate.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The text to parse.
    pub(crate) source: String,
    /// Every filter name the markup uses (LiquidJS ignores unknown ones, the crate rejects them).
    pub(crate) filters: Vec<String>,
}

/// Checks `source` the way LiquidJS tokenizes and parses it and returns the text to give the
/// `liquid` crate; `Err` carries LiquidJS's message.
pub(crate) fn prepare(source: &str) -> Result<Prepared, String> {
    let tokens = tokenize(source)?;
    check_tags(source, &tokens)?;
    let mut filters = Vec::new();
    for token in &tokens {
        if !matches!(token.kind, Kind::Html) {
            let text = source.get(token.begin..token.end).unwrap_or_default();
            collect_filter_names(text, &mut filters);
        }
    }
    Ok(Prepared {
        source: rewrite(source, &tokens),
        filters,
    })
}

/// The names after each `|` outside quoted strings.
fn collect_filter_names(markup: &str, names: &mut Vec<String>) {
    let bytes = markup.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if is_quote(b) {
            i = read_quoted(bytes, i);
            continue;
        }
        i += 1;
        if b != b'|' {
            continue;
        }
        while bytes.get(i).copied().is_some_and(is_blank) {
            i += 1;
        }
        let start = i;
        while bytes
            .get(i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            i += 1;
        }
        if let Some(name) = markup.get(start..i).filter(|n| !n.is_empty())
            && !names.iter().any(|known| known == name)
        {
            names.push(name.to_owned());
        }
    }
}

fn snapshot(source: &str, begin: usize) -> String {
    let rest = source.get(begin..).unwrap_or_default();
    let shown = if junction_js::utf16_len(rest) > 32 {
        let mut cut = String::new();
        let mut units = 0;
        for c in rest.chars() {
            units += c.len_utf16();
            if units > 29 {
                break;
            }
            cut.push(c);
        }
        cut.push_str("...");
        cut
    } else {
        rest.to_owned()
    };
    let mut quoted = String::new();
    junction_js::push_json_string(&shown, &mut quoted);
    quoted
}

fn starts_with(bytes: &[u8], at: usize, pattern: &[u8]) -> bool {
    bytes.get(at..at + pattern.len()) == Some(pattern)
}

/// Whether the `pattern.len()` bytes before `at` are `pattern` (LiquidJS `rmatch`).
fn ends_with(bytes: &[u8], at: usize, pattern: &[u8]) -> bool {
    at >= pattern.len() && bytes.get(at - pattern.len()..at) == Some(pattern)
}

fn is_quote(b: u8) -> bool {
    b == b'"' || b == b'\''
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b >= 0x80
}

/// The end of a delimited token starting at `at`, skipping quoted strings when asked.
fn read_to_delimiter(
    bytes: &[u8],
    at: usize,
    delimiter: &[u8],
    respect_quotes: bool,
) -> Option<usize> {
    let mut p = at;
    while p < bytes.len() {
        if respect_quotes && bytes.get(p).copied().is_some_and(is_quote) {
            p = read_quoted(bytes, p);
            continue;
        }
        p += 1;
        if ends_with(bytes, p, delimiter) {
            return Some(p);
        }
    }
    None
}

fn read_quoted(bytes: &[u8], begin: usize) -> usize {
    let quote = bytes.get(begin).copied();
    let mut p = begin + 1;
    let mut escaped = false;
    while p < bytes.len() {
        p += 1;
        let c = bytes.get(p - 1).copied();
        if c == quote && !escaped {
            break;
        }
        if escaped {
            escaped = false;
        } else if c == Some(b'\\') {
            escaped = true;
        }
    }
    p
}

/// The content between the delimiters of a tag or output, with LiquidJS's trim markers.
fn inner(source: &str, begin: usize, end: usize) -> (&str, bool, bool) {
    let value = source
        .get(begin + 2..end.saturating_sub(2).max(begin + 2))
        .unwrap_or_default();
    let trim_left = value.starts_with('-');
    let trim_right = value.ends_with('-');
    let from = usize::from(trim_left);
    let to = value
        .len()
        .saturating_sub(usize::from(trim_right))
        .max(from);
    (
        value.get(from..to).unwrap_or_default(),
        trim_left,
        trim_right,
    )
}

fn tag_name(content: &str) -> String {
    let trimmed = content.trim_start_matches(|c: char| c.is_ascii() && is_blank(c as u8));
    if trimmed.starts_with('#') {
        return "#".to_owned();
    }
    let length = trimmed.bytes().take_while(|&b| is_word(b)).count();
    trimmed.get(..length).unwrap_or_default().to_owned()
}

fn tokenize(source: &str) -> Result<Vec<Token>, String> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut p = 0;
    let mut raw_begin: Option<usize> = None;
    while p < bytes.len() {
        if let Some(raw) = raw_begin {
            let (token, done) = read_raw_content(source, p, raw)?;
            p = token.end;
            if done {
                raw_begin = None;
            }
            tokens.push(token);
            continue;
        }
        let begin = p;
        if starts_with(bytes, p, b"{%") {
            let end = read_to_delimiter(bytes, p, b"%}", false)
                .ok_or_else(|| format!("tag {} not closed", snapshot(source, begin)))?;
            let (content, trim_left, trim_right) = inner(source, begin, end);
            let name = tag_name(content);
            if name == "raw" {
                raw_begin = Some(begin);
            }
            tokens.push(Token {
                kind: Kind::Tag {
                    name,
                    trim_left,
                    trim_right,
                },
                begin,
                end,
            });
            p = end;
        } else if starts_with(bytes, p, b"{{") {
            let end = read_to_delimiter(bytes, p, b"}}", true)
                .ok_or_else(|| format!("output {} not closed", snapshot(source, begin)))?;
            let (_, trim_left, trim_right) = inner(source, begin, end);
            tokens.push(Token {
                kind: Kind::Output {
                    trim_left,
                    trim_right,
                },
                begin,
                end,
            });
            p = end;
        } else {
            while p < bytes.len() && !starts_with(bytes, p, b"{%") && !starts_with(bytes, p, b"{{")
            {
                p += 1;
            }
            tokens.push(Token {
                kind: Kind::Html,
                begin,
                end: p,
            });
        }
    }
    Ok(tokens)
}

/// Inside `{% raw %}`: text up to the next `{% endraw %}`, then that tag. Returns the token and
/// whether it closed the raw block.
fn read_raw_content(source: &str, begin: usize, raw_begin: usize) -> Result<(Token, bool), String> {
    let bytes = source.as_bytes();
    let mut p = begin;
    while p < bytes.len() {
        if !starts_with(bytes, p, b"{%") {
            p += 1;
            continue;
        }
        let tag_begin = p;
        let mut q = p + 2;
        if bytes.get(q) == Some(&b'-') {
            q += 1;
        }
        while bytes.get(q).copied().is_some_and(is_blank) {
            q += 1;
        }
        if !starts_with(bytes, q, b"endraw") || bytes.get(q + 6).copied().is_some_and(is_word) {
            p += 2;
            continue;
        }
        let Some(end) = read_to_delimiter(bytes, q + 6, b"%}", false) else {
            break;
        };
        if tag_begin > begin {
            let text = Token {
                kind: Kind::Html,
                begin,
                end: tag_begin,
            };
            return Ok((text, false));
        }
        let (_, trim_left, trim_right) = inner(source, tag_begin, end);
        let tag = Token {
            kind: Kind::Tag {
                name: "endraw".to_owned(),
                trim_left,
                trim_right,
            },
            begin: tag_begin,
            end,
        };
        return Ok((tag, true));
    }
    Err(format!("raw {} not closed", snapshot(source, raw_begin)))
}

fn check_tags(source: &str, tokens: &[Token]) -> Result<(), String> {
    let mut open: Vec<(&str, usize)> = Vec::new();
    let mut in_comment = false;
    for token in tokens {
        let Kind::Tag { name, .. } = &token.kind else {
            continue;
        };
        let name = name.as_str();
        let text = || source.get(token.begin..token.end).unwrap_or_default();
        if in_comment {
            // LiquidJS skips everything up to the first `endcomment`.
            if name == "endcomment" {
                in_comment = false;
                open.pop();
            }
            continue;
        }
        if name.is_empty() {
            return Err("illegal tag syntax, tag name expected".to_owned());
        }
        if name == "#" || name == "raw" || name == "endraw" || TAGS.contains(&name) {
            continue;
        }
        if DISABLED_TAGS.contains(&name) {
            return Err(format!("tag \"{name}\" is disabled"));
        }
        if let Some((_, end)) = BLOCKS.iter().find(|(start, _)| *start == name) {
            open.push((end, token.begin));
            in_comment = name == "comment";
            continue;
        }
        let top = open.last().map(|(end, _)| *end);
        if BLOCKS.iter().any(|(_, end)| *end == name) && top == Some(name) {
            open.pop();
            continue;
        }
        if (name == "else" || name == "elsif") && matches!(top, Some("endif" | "endunless")) {
            continue;
        }
        if name == "liquid" {
            return Err(format!("tag \"{name}\" is not supported: {}", text()));
        }
        return Err(format!("tag \"{name}\" not found"));
    }
    if let Some((_, begin)) = open.last() {
        let end = tokens
            .iter()
            .find(|t| t.begin == *begin)
            .map_or(*begin, |t| t.end);
        let text = source.get(*begin..end).unwrap_or_default();
        return Err(format!("tag {text} not closed"));
    }
    Ok(())
}

/// The template handed to the `liquid` crate.
fn rewrite(source: &str, tokens: &[Token]) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    for token in tokens {
        let text = source.get(token.begin..token.end).unwrap_or_default();
        match &token.kind {
            Kind::Html => out.push_str(text),
            Kind::Tag {
                name,
                trim_left,
                trim_right,
            } if name == "#" => push_nothing(&mut out, *trim_left, *trim_right),
            Kind::Tag { .. } => push_markup(&mut out, text),
            Kind::Output {
                trim_left,
                trim_right,
            } => {
                let (content, _, _) = inner(source, token.begin, token.end);
                if content.trim().is_empty() {
                    push_nothing(&mut out, *trim_left, *trim_right);
                    continue;
                }
                // Outputs become a tag that renders with LiquidJS's conventions (the crate's
                // own output rendering cannot be changed).
                out.push_str(if *trim_left { "{%- " } else { "{% " });
                out.push_str(OUTPUT_TAG);
                out.push(' ');
                push_markup(&mut out, content);
                out.push_str(if *trim_right { " -%}" } else { " %}" });
            }
        }
    }
    out
}

/// Something that renders nothing but keeps the whitespace control of what it replaces.
fn push_nothing(out: &mut String, trim_left: bool, trim_right: bool) {
    if !trim_left && !trim_right {
        return;
    }
    out.push_str(if trim_left {
        "{%- comment %}"
    } else {
        "{% comment %}"
    });
    out.push_str(if trim_right {
        "{% endcomment -%}"
    } else {
        "{% endcomment %}"
    });
}

/// Copies a tag or output, turning integer literals that overflow an `i64` into the equal float
/// literal (the `liquid` crate cannot hold them; LiquidJS reads every number as a double).
fn push_markup(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or_default();
        if is_quote(b) {
            i = read_quoted(bytes, i);
            continue;
        }
        let starts_number = b.is_ascii_digit()
            && !i
                .checked_sub(1)
                .and_then(|before| bytes.get(before))
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let is_float =
            bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        let digits = text.get(start..i).unwrap_or_default();
        if !is_float && digits.parse::<i64>().is_err() {
            out.push_str(text.get(copied..i).unwrap_or_default());
            out.push_str(".0");
            copied = i;
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclosed_output_and_tag_use_liquidjs_messages() {
        assert_eq!(
            prepare("{{ properties.name").unwrap_err(),
            "output \"{{ properties.name\" not closed"
        );
        assert_eq!(
            prepare("ab {% if x").unwrap_err(),
            "tag \"{% if x\" not closed"
        );
        assert_eq!(
            prepare("{{ aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap_err(),
            "output \"{{ aaaaaaaaaaaaaaaaaaaaaaaaaa...\" not closed"
        );
    }

    #[test]
    fn tags_are_checked_in_order() {
        assert_eq!(
            prepare("{% for i in x %}").unwrap_err(),
            "tag \"for\" is disabled"
        );
        assert_eq!(
            prepare("{% nosuchtag %}").unwrap_err(),
            "tag \"nosuchtag\" not found"
        );
        assert_eq!(
            prepare("{% endif %}").unwrap_err(),
            "tag \"endif\" not found"
        );
        assert_eq!(
            prepare("{% if a %}x").unwrap_err(),
            "tag {% if a %} not closed"
        );
        assert!(prepare("{% comment %}{% for %}{% endcomment %}").is_ok());
        assert!(prepare("{% if a %}{% elsif b %}{% else %}{% endif %}").is_ok());
    }

    #[test]
    fn raw_content_is_text() {
        assert_eq!(
            prepare("{% raw %}{{x}}{% nosuch %}{% endraw %}")
                .unwrap()
                .source,
            "{% raw %}{{x}}{% nosuch %}{% endraw %}"
        );
        assert!(
            prepare("{% raw %}{{x}}")
                .unwrap_err()
                .starts_with("raw \"{% raw %}")
        );
    }

    #[test]
    fn filter_names_outside_quotes() {
        let prepared = prepare("{{ a | x: '|y' | z }}{% assign b = c |w %}").unwrap();
        assert_eq!(prepared.filters, ["x", "z", "w"]);
    }

    #[test]
    fn rewrites() {
        assert_eq!(prepare("a{% # note %}b").unwrap().source, "ab");
        assert_eq!(
            prepare("a {{- -}} b").unwrap().source,
            "a {%- comment %}{% endcomment -%} b"
        );
        assert_eq!(
            prepare("a {{- x }}").unwrap().source,
            "a {%- __output  x  %}"
        );
        assert_eq!(
            prepare("{% assign y = 99999999999999999999 | plus: 1 %}")
                .unwrap()
                .source,
            "{% assign y = 99999999999999999999.0 | plus: 1 %}"
        );
        assert_eq!(
            prepare("{{ \"99999999999999999999\" }}").unwrap().source,
            "{% __output  \"99999999999999999999\"  %}"
        );
        assert_eq!(
            prepare("{{ a123456789012345678901 }}").unwrap().source,
            "{% __output  a123456789012345678901  %}"
        );
    }
}

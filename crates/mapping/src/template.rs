//! `@template`: the reference's two-pass `{{{ key }}}` / `{{ key }}` replacement. Placeholders of
//! a literal template are found and their paths parsed once, at compile time.

use crate::out::Payload;
use crate::path::{self, PathSpec};

/// A template split into text and placeholders.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// Pieces of the source for the triple-brace pass.
    first: Vec<Piece>,
    /// Whether the source has any triple-brace placeholder; without one, `first` is also what
    /// the double-brace pass sees and can be used directly.
    rescan: bool,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Key(PathSpec),
}

impl Template {
    /// Parses `source`.
    pub(crate) fn new(source: &str) -> Self {
        let triple = split(source, 3);
        if triple.iter().any(|p| matches!(p, Piece::Key(_))) {
            return Template {
                first: triple,
                rescan: true,
            };
        }
        Template {
            first: split(source, 2),
            rescan: false,
        }
    }

    /// Renders against `data`.
    pub(crate) fn render(&self, data: Payload<'_>) -> String {
        let once = render_pieces(&self.first, data);
        if !self.rescan {
            return once;
        }
        // Text produced by the triple pass is scanned again by the double pass (a quirk the
        // reference has because it runs two regex replacements in a row).
        render_pieces(&split(&once, 2), data)
    }
}

/// Renders `source` without keeping the parse.
pub(crate) fn render_str(source: &str, data: Payload<'_>) -> String {
    Template::new(source).render(data)
}

fn render_pieces(pieces: &[Piece], data: Payload<'_>) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Key(spec) => path::lookup(data, spec).push_template_string(&mut out),
        }
    }
    out
}

/// Splits at every non-overlapping `{`×n + one or more non-`}` + `}`×n, left to right.
fn split(source: &str, braces: usize) -> Vec<Piece> {
    let bytes = source.as_bytes();
    let mut pieces = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some(end) = match_at(bytes, i, braces) else {
            i += 1;
            continue;
        };
        // Braces are ASCII, so every offset used here is a char boundary.
        let text = source.get(text_start..i).unwrap_or_default();
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        let inner = source.get(i + braces..end - braces).unwrap_or_default();
        pieces.push(Piece::Key(path::parse_path(junction_js::trim(inner))));
        i = end;
        text_start = end;
    }
    let rest = source.get(text_start..).unwrap_or_default();
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    pieces
}

/// The end of a placeholder starting at `at`, if one does.
fn match_at(bytes: &[u8], at: usize, braces: usize) -> Option<usize> {
    let opens = bytes.get(at..at + braces)?;
    if !opens.iter().all(|&b| b == b'{') {
        return None;
    }
    let inner_start = at + braces;
    let mut j = inner_start;
    while bytes.get(j).is_some_and(|&b| b != b'}') {
        j += 1;
    }
    if j == inner_start {
        return None;
    }
    let closes = bytes.get(j..j + braces)?;
    closes.iter().all(|&b| b == b'}').then_some(j + braces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, data: serde_json::Value) -> String {
        render_str(template, Payload::Json(&data))
    }

    #[test]
    fn pins_the_brace_quirks() {
        assert_eq!(render("{{}}", json!({})), "{{}}");
        assert_eq!(render("{{ }}", json!({"a": 1})), "[object Object]");
        assert_eq!(render("{{foo}}}", json!({"foo": "x"})), "x}");
        assert_eq!(render("{{{a}}", json!({"a": "A"})), "");
        assert_eq!(render("{{ {{a}} }}", json!({"a": "x"})), " }}");
        assert_eq!(render("{{{a}}}", json!({"a": "{{b}}", "b": "B"})), "B");
        assert_eq!(render("{{a}}", json!({"a": "{{b}}", "b": "B"})), "{{b}}");
        assert_eq!(render("{{a}b}}", json!({"a": 1})), "{{a}b}}");
    }
}

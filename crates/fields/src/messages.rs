//! ajv-human-errors: how one validation error becomes the reference's sentence — the subject
//! ("Company", "The root value", "The value at /a/0"), the keyword's wording, the article and
//! plural rules, and the option that chooses how fields are named.

use serde_json::Value;

/// How error messages name the failing value (ajv-human-errors' `fieldLabels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldLabels {
    /// The schema `title` (the field label) when there is one, else the JSON pointer. The
    /// runtime's setting.
    #[default]
    Title,
    /// A JavaScript accessor without the leading `$` (`.foo[0]`).
    Js,
    /// A JSON path (`$.foo[0]`).
    JsonPath,
    /// The JSON pointer (`/foo/0`).
    JsonPointer,
    /// Same as [`FieldLabels::JsonPointer`].
    InstancePath,
}

impl FieldLabels {
    /// The option called `name` in ajv-human-errors (`title`, `js`, `jsonPath`, `jsonPointer`,
    /// `instancePath`).
    pub fn from_name(name: &str) -> Option<FieldLabels> {
        Some(match name {
            "title" => FieldLabels::Title,
            "js" => FieldLabels::Js,
            "jsonPath" => FieldLabels::JsonPath,
            "jsonPointer" => FieldLabels::JsonPointer,
            "instancePath" => FieldLabels::InstancePath,
            _ => return None,
        })
    }
}

/// `humanizeList`: `a`, `a or b`, `a, b, or c` (`nothing` when empty).
pub(crate) fn humanize_list(items: &[String], conjunction: &str) -> String {
    match items {
        [] => "nothing".to_owned(),
        [only] => only.clone(),
        [first, second] => format!("{first} {conjunction} {second}"),
        [init @ .., last] => format!("{}, {conjunction} {last}", init.join(", ")),
    }
}

/// `indefiniteArticle(s) + " " + s`: "an" before a vowel letter, else "a".
pub(crate) fn with_article(s: &str) -> String {
    let article = match s.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    };
    format!("{article} {s}")
}

/// `humanizeTypeOf`: how the message names the type of the value it got.
pub(crate) fn humanize_type_of(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
    }
}

/// `pluralize(word, n)`.
pub(crate) fn plural(word: &str, n: f64) -> String {
    if n == 1.0 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// `capitalize`: upper-cases the first UTF-16 unit (astral characters stay as they are).
pub(crate) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) if first.len_utf16() == 1 => {
            let mut out: String = first.to_uppercase().collect();
            out.push_str(chars.as_str());
            out
        }
        _ => s.to_owned(),
    }
}

/// ajv-human-errors' `jsonPath` of an instance path (a JSON pointer).
fn json_path(pointer: &str) -> String {
    if pointer.is_empty() {
        return "$".to_owned();
    }
    let mut out = String::from("$");
    for segment in pointer.get(1..).unwrap_or("").split('/') {
        let segment = segment
            .replace("~1", "/")
            .replace("~0", "~")
            .replace('.', "\\.");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

/// `fieldPreamble`: the subject of the sentence.
pub(crate) fn preamble(title: Option<&str>, pointer: &str, labels: FieldLabels) -> String {
    let at = |path: String| format!("the value at {path}");
    match labels {
        FieldLabels::Js if pointer.is_empty() => "the root value".to_owned(),
        FieldLabels::Js => at(json_path(pointer).trim_start_matches('$').to_owned()),
        FieldLabels::JsonPath => at(json_path(pointer)),
        FieldLabels::JsonPointer | FieldLabels::InstancePath if pointer.is_empty() => {
            "the root value".to_owned()
        }
        FieldLabels::JsonPointer | FieldLabels::InstancePath => at(pointer.to_owned()),
        FieldLabels::Title => match title {
            Some(title) => title.to_owned(),
            None if pointer.is_empty() => "the root value".to_owned(),
            None => at(pointer.to_owned()),
        },
    }
}

/// The finished sentence: `Capitalised(<preamble> <text>).`
pub(crate) fn sentence(preamble: &str, text: &str) -> String {
    let mut out = capitalize(&format!("{preamble} {text}"));
    out.push('.');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lists_and_articles() {
        assert_eq!(humanize_list(&list(&[]), "or"), "nothing");
        assert_eq!(humanize_list(&list(&["string"]), "or"), "string");
        assert_eq!(
            humanize_list(&list(&["string", "number"]), "or"),
            "string or number"
        );
        assert_eq!(humanize_list(&list(&["a", "b", "c"]), "or"), "a, b, or c");
        assert_eq!(with_article("object"), "an object");
        assert_eq!(with_article("integer"), "an integer");
        assert_eq!(with_article("array"), "an array");
        assert_eq!(with_article("string or number"), "a string or number");
        assert_eq!(with_article("null"), "a null");
        assert_eq!(with_article("number or string"), "a number or string");
        assert_eq!(with_article("object or null"), "an object or null");
    }

    #[test]
    fn subjects() {
        assert_eq!(
            preamble(Some("Company"), "/company", FieldLabels::Title),
            "Company"
        );
        assert_eq!(preamble(None, "", FieldLabels::Title), "the root value");
        assert_eq!(
            preamble(None, "/a/0", FieldLabels::Title),
            "the value at /a/0"
        );
        assert_eq!(
            preamble(Some("X"), "/foo", FieldLabels::Js),
            "the value at .foo"
        );
        assert_eq!(
            preamble(None, "/foo/0", FieldLabels::JsonPath),
            "the value at $.foo[0]"
        );
        assert_eq!(preamble(None, "", FieldLabels::JsonPath), "the value at $");
        assert_eq!(
            preamble(None, "/a~1b.c", FieldLabels::JsonPath),
            "the value at $.a/b\\.c"
        );
        assert_eq!(
            preamble(Some("X"), "/foo", FieldLabels::JsonPointer),
            "the value at /foo"
        );
    }

    #[test]
    fn sentences_are_capitalised() {
        assert_eq!(
            sentence("the root value", "is bad"),
            "The root value is bad."
        );
        assert_eq!(sentence("ßig", "x"), "SSig x.");
        assert_eq!(plural("character", 1.0), "character");
        assert_eq!(plural("character", 0.0), "characters");
    }
}

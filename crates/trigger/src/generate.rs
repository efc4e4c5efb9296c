//! Generation: AST → trigger text, as the reference's `generateFql` (`fql.md` §6) with its
//! quirks (string values are not escaped, the outer parentheses of a lone group are stripped),
//! plus text for `event-path` fields (D2) and globs (D4).

use std::fmt::Write as _;

use serde_json::Value;

use crate::ast::{Condition, Field, GroupOperator, Node, Operator};
use crate::error::GenerateError;
use crate::js;

/// Turns an AST into trigger text. `Ok(None)` when the text would be empty (an empty top-level
/// group; the reference returns `""`, which is no valid trigger).
///
/// Texts generated from ASTs that [`crate::parse`] produced parse back to the same AST, except
/// where the reference's own generator loses information (a string value containing `"`; a
/// `properties.*`/`traits.*`/`context.*` name with a segment starting with a digit or `-`, or
/// equal to `and`, `or`, `null`; a comparison `<`, `>`, `<=`, `>=` whose value was a string).
pub fn generate(node: &Node) -> Result<Option<String>, GenerateError> {
    let (operator, children) = match node {
        Node::Group { operator, children } => (operator, children),
        Node::Error(error) => return Err(error_node(error)),
        Node::Condition(_) => return Err(GenerateError::NotAGroup),
    };
    let mut text = String::new();
    push_group(&mut text, operator, children)?;
    let parentheses = text.chars().filter(|&c| c == '(' || c == ')').count();
    if text.starts_with('(') && text.ends_with(')') && parentheses == 2 {
        // Both are ASCII, so these byte offsets are character boundaries.
        text = text.get(1..text.len() - 1).unwrap_or_default().to_owned();
    }
    Ok((!text.is_empty()).then_some(text))
}

fn error_node(error: &Value) -> GenerateError {
    let message = match error.get("message") {
        Some(Value::String(message)) => message.clone(),
        _ => error.to_string(),
    };
    GenerateError::ErrorNode { message }
}

fn push_group(
    out: &mut String,
    operator: &GroupOperator,
    children: &[Node],
) -> Result<(), GenerateError> {
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            out.push(' ');
            out.push_str(operator.as_str());
            out.push(' ');
        }
        match child {
            Node::Group { operator, children } => {
                out.push('(');
                push_group(out, operator, children)?;
                out.push(')');
            }
            Node::Condition(condition) => push_condition(out, condition)?,
            Node::Error(_) => return Err(GenerateError::UnknownConditionType),
        }
    }
    Ok(())
}

fn push_condition(out: &mut String, condition: &Condition) -> Result<(), GenerateError> {
    let field = field_text(&condition.field)?;
    let value = condition.value.as_ref();
    let string = || js::to_string(value);
    let number = || junction_js::number_to_string(js::to_number(value));
    // `write!` to a String cannot fail.
    let _ = match &condition.operator {
        Operator::Contains => write!(out, "contains({field}, {})", literal(value)),
        Operator::NotContains => write!(out, "!contains({field}, {})", literal(value)),
        Operator::Exists => write!(out, "{field} != null"),
        Operator::NotExists => write!(out, "{field} = null"),
        Operator::IsTrue => write!(out, "{field} = true"),
        Operator::IsFalse => write!(out, "{field} = false"),
        Operator::StartsWith => write!(out, "match({field}, \"{}*\")", string()),
        Operator::NotStartsWith => write!(out, "!match({field}, \"{}*\")", string()),
        Operator::EndsWith => write!(out, "match({field}, \"*{}\")", string()),
        Operator::NotEndsWith => write!(out, "!match({field}, \"*{}\")", string()),
        Operator::Glob => write!(out, "match({field}, \"{}\")", string()),
        Operator::NotGlob => write!(out, "!match({field}, \"{}\")", string()),
        op @ (Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge) => {
            write!(out, "{field} {} {}", op.as_str(), number())
        }
        Operator::NumberEquals => write!(out, "{field} = {}", number()),
        Operator::NumberNotEquals => write!(out, "{field} != {}", number()),
        op @ (Operator::Eq | Operator::Ne | Operator::Other(_)) => {
            write!(out, "{field} {} {}", op.as_str(), literal(value))
        }
    };
    Ok(())
}

/// The reference's `stringifyValue`: booleans and numbers bare, everything else quoted without
/// escaping.
fn literal(value: Option<&Value>) -> String {
    match value {
        Some(scalar @ (Value::Bool(_) | Value::Number(_))) => js::to_string(Some(scalar)),
        other => format!("\"{}\"", js::to_string(other)),
    }
}

fn field_text(field: &Field) -> Result<String, GenerateError> {
    Ok(match field {
        Field::EventType => "type".into(),
        Field::Event => "event".into(),
        Field::Name => "name".into(),
        Field::UserId => "userId".into(),
        Field::Property(name) => format!("properties.{}", escape_name(name)),
        Field::Trait(name) => format!("traits.{}", escape_name(name)),
        Field::Context(name) => format!("context.{}", escape_name(name)),
        Field::Path(name) => escape_path(name),
        Field::Unknown { .. } => return Err(GenerateError::UnknownConditionType),
    })
}

fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The reference's escaping: `\` before every character but `A-Z a-z 0-9 . _ -`.
fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !is_plain(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escaping for `event-path` names, which Junction designed to parse back: on top of the
/// reference's rule, a `.` that would leave an empty segment, a segment-initial digit or `-`,
/// and a segment spelling `and`, `or` or `null` are escaped too.
fn escape_path(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 2);
    let mut segment_start = true;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1);
        if c == '.' {
            let separates = !segment_start && next.is_some_and(|&n| n != '.');
            if separates {
                out.push('.');
                segment_start = true;
                continue;
            }
            out.push_str("\\.");
            segment_start = false;
            continue;
        }
        let escape = !is_plain(c)
            || (segment_start && (c.is_ascii_digit() || c == '-'))
            || (segment_start && is_keyword_segment(&chars, i));
        if escape {
            out.push('\\');
        }
        out.push(c);
        segment_start = false;
    }
    out
}

/// Whether the segment starting at `start` is exactly `and`, `or` or `null`.
fn is_keyword_segment(chars: &[char], start: usize) -> bool {
    let rest = chars.get(start..).unwrap_or_default();
    let end = rest.iter().position(|&c| c == '.').unwrap_or(rest.len());
    let segment: String = rest.get(..end).unwrap_or_default().iter().collect();
    matches!(segment.as_str(), "and" | "or" | "null")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    #[test]
    fn event_paths_escape_what_would_not_parse_back() {
        assert_eq!(escape_path("anonymousId"), "anonymousId");
        assert_eq!(
            escape_path("integrations.Actions Amplitude"),
            "integrations.Actions\\ Amplitude"
        );
        assert_eq!(escape_path("a.2fa"), "a.\\2fa");
        assert_eq!(escape_path("a..b"), "a\\..b");
        assert_eq!(escape_path(".a."), "\\.a\\.");
        assert_eq!(escape_path("x.and.or"), "x.\\and.\\or");
        assert_eq!(escape_path("null"), "\\null");
        assert_eq!(escape_path("-x.y-z"), "\\-x.y-z");
    }

    #[test]
    fn event_paths_round_trip() {
        for name in [
            "anonymousId",
            "a.2fa",
            "a..b",
            ".a.",
            "x.and.or",
            "null",
            "-x",
            "a b.c$",
        ] {
            let node = Node::group(
                GroupOperator::And,
                vec![Node::condition(
                    Field::Path(name.into()),
                    Operator::Exists,
                    None,
                )],
            );
            let text = generate(&node).unwrap().unwrap();
            assert_eq!(parse(&text).unwrap(), node, "{name:?} → {text:?}");
        }
    }

    #[test]
    fn globs_generate_match_calls() {
        let node = parse(r#"match(event, "a?c") and !match(traits.x, "*b*")"#).unwrap();
        assert_eq!(
            generate(&node).unwrap().as_deref(),
            Some(r#"match(event, "a?c") and !match(traits.x, "*b*")"#)
        );
    }

    #[test]
    fn empty_text_is_none() {
        let empty = Node::group(GroupOperator::And, vec![]);
        assert_eq!(generate(&empty), Ok(None));
        let nested = Node::group(GroupOperator::And, vec![empty]);
        assert_eq!(generate(&nested), Ok(None));
    }

    #[test]
    fn precedence_survives_generation() {
        let source = r#"type = "a" and event = "b" or userId != null"#;
        let node = parse(source).unwrap();
        let text = generate(&node).unwrap().unwrap();
        assert_eq!(text, r#"(type = "a" and event = "b") or userId != null"#);
        assert_eq!(parse(&text).unwrap(), node);
    }
}

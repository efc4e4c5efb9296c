//! Parser: tokens → AST. A recursive-descent parser where `and` binds tighter than `or` and
//! parentheses nest (D3), any event path is a field (D2), `match()` is a glob (D4) and every
//! token must have its place (D5). Condition construction and value conversion follow the
//! reference exactly (`fql.md` §3.3–3.5).

use serde_json::Value;

use crate::ast::{Field, GroupOperator, Node, Operator};
use crate::error::{Location, ParseError, ParseErrorKind};
use crate::js;
use crate::lexer::{self, Kind, Token};

/// How deep parentheses may nest; deeper input is rejected rather than risking the stack.
pub const MAX_NESTING: usize = 64;

/// The longest token text quoted in an error message.
const MAX_QUOTED: usize = 40;

/// Parses trigger text into its AST (always a group at the top, as the reference returns).
pub(crate) fn parse(source: &str) -> Result<Node, ParseError> {
    let chars: Vec<char> = source.chars().collect();
    let tokens = lexer::lex(&chars)?;
    let mut parser = Parser {
        source: &chars,
        eos: Token {
            kind: Kind::Eos,
            text: String::new(),
            start: chars.len(),
            end: chars.len(),
        },
        tokens,
        pos: 0,
        depth: 0,
    };
    let node = parser.or_expression()?;
    if parser.peek().kind != Kind::Eos {
        return Err(parser.unexpected_after_condition(None));
    }
    Ok(match node {
        group @ Node::Group { .. } => group,
        leaf => Node::group(GroupOperator::And, vec![leaf]),
    })
}

struct Parser<'a> {
    source: &'a [char],
    tokens: Vec<Token>,
    /// Returned by `peek` past the end; the lexer always ends with one, this is belt and braces.
    eos: Token,
    pos: usize,
    depth: usize,
}

/// A path as written: its text (escapes resolved, segments joined by `.`) and source span.
struct Path {
    text: String,
    start: usize,
    end: usize,
}

/// A value token: its kind and the reference's token text.
struct ValueToken {
    kind: Kind,
    text: String,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&self.eos)
    }

    fn peek_second(&self) -> &Token {
        self.tokens.get(self.pos + 1).unwrap_or(&self.eos)
    }

    fn previous(&self) -> Option<&Token> {
        self.pos.checked_sub(1).and_then(|i| self.tokens.get(i))
    }

    /// Consumes the current token and returns it (never moves past the end).
    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Kind::Eos {
            self.pos += 1;
        }
        token
    }

    fn raw(&self, start: usize, end: usize) -> String {
        let text: String = self
            .source
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .collect();
        if text.chars().count() <= MAX_QUOTED {
            return text;
        }
        let mut short: String = text.chars().take(MAX_QUOTED).collect();
        short.push('…');
        short
    }

    /// How a token is named in a message: `'and'`, `"a string"`, `end of input`.
    fn describe(&self, token: &Token) -> String {
        match token.kind {
            Kind::Eos => "end of input".into(),
            Kind::Str => self.raw(token.start, token.end),
            _ => format!("'{}'", self.raw(token.start, token.end)),
        }
    }

    fn error_at(&self, token: &Token, reason: String) -> ParseError {
        let kind = if token.kind == Kind::Eos {
            ParseErrorKind::UnexpectedEnd
        } else {
            ParseErrorKind::UnexpectedToken
        };
        ParseError::new(self.source, token.start, kind, reason)
    }

    /// `and_expression { "or" and_expression }`; one operand stays itself, several make an
    /// `or` group (so a single-operator chain has the reference's flat shape).
    fn or_expression(&mut self) -> Result<Node, ParseError> {
        self.chain(Kind::Or, GroupOperator::Or, Self::and_expression)
    }

    /// `term { "and" term }`.
    fn and_expression(&mut self) -> Result<Node, ParseError> {
        self.chain(Kind::And, GroupOperator::And, Self::term)
    }

    fn chain(
        &mut self,
        separator: Kind,
        operator: GroupOperator,
        operand: fn(&mut Self) -> Result<Node, ParseError>,
    ) -> Result<Node, ParseError> {
        let first = operand(self)?;
        if self.peek().kind != separator {
            return Ok(first);
        }
        let mut children = vec![first];
        while self.peek().kind == separator {
            self.bump();
            children.push(operand(self)?);
        }
        Ok(Node::group(operator, children))
    }

    /// `"(" or_expression ")" | "!" function | function | comparison`.
    fn term(&mut self) -> Result<Node, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            Kind::LParen => self.parenthesised(&token),
            Kind::Bang => {
                self.bump();
                let next = self.peek().clone();
                let function = next.kind == Kind::Ident && is_function_name(&next.text);
                if function && self.peek_second().kind == Kind::LParen {
                    return self.function(true);
                }
                if function {
                    let after = self.peek_second().clone();
                    return Err(self.error_at(
                        &after,
                        format!(
                            "expected '(' after '{}', found {}",
                            next.text,
                            self.describe(&after)
                        ),
                    ));
                }
                Err(self.error_at(
                    &next,
                    format!(
                        "expected 'contains(' or 'match(' after '!', found {}",
                        self.describe(&next)
                    ),
                ))
            }
            Kind::Ident
                if is_function_name(&token.text) && self.peek_second().kind == Kind::LParen =>
            {
                self.function(false)
            }
            Kind::Ident => self.comparison(),
            _ => Err(self.expected_condition(&token)),
        }
    }

    fn expected_condition(&self, found: &Token) -> ParseError {
        let after = match self.previous() {
            Some(previous) if matches!(previous.kind, Kind::And | Kind::Or | Kind::LParen) => {
                format!(" after '{}'", previous.text)
            }
            _ => String::new(),
        };
        self.error_at(
            found,
            format!(
                "expected a condition{after}, found {}",
                self.describe(found)
            ),
        )
    }

    fn parenthesised(&mut self, open: &Token) -> Result<Node, ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(ParseError::new(
                self.source,
                open.start,
                ParseErrorKind::TooDeep,
                format!("parentheses nested more than {MAX_NESTING} deep"),
            ));
        }
        self.depth += 1;
        self.bump();
        let inner = self.or_expression()?;
        if self.peek().kind != Kind::RParen {
            return Err(self.unexpected_after_condition(Some(open)));
        }
        self.bump();
        self.depth -= 1;
        Ok(inner)
    }

    /// The error for what follows a complete condition when it is neither a conjunction nor
    /// the end of the enclosing level (`open` is the `(` of that level, if any).
    fn unexpected_after_condition(&self, open: Option<&Token>) -> ParseError {
        let found = self.peek().clone();
        let raw = self.raw(found.start, found.end);
        let expected = if open.is_some() {
            "'and', 'or' or ')'"
        } else {
            "'and', 'or' or end of input"
        };
        match (found.kind, open) {
            (Kind::Eos, Some(open)) => self.error_at(
                &found,
                format!(
                    "expected ')' to close the '(' opened at {}, found end of input",
                    Location::of(self.source, open.start)
                ),
            ),
            (Kind::RParen, None) => {
                self.error_at(&found, "unexpected ')' without a matching '('".into())
            }
            // `or(`: the reference reads a word `or`, not the conjunction.
            (Kind::Ident, _) if raw == "and" || raw == "or" => ParseError::new(
                self.source,
                found.end,
                ParseErrorKind::MissingSpace,
                format!(
                    "expected a space after '{raw}', found {}",
                    lexer::describe_char(self.source.get(found.end))
                ),
            ),
            (Kind::Ident, _)
                if raw.eq_ignore_ascii_case("and") || raw.eq_ignore_ascii_case("or") =>
            {
                self.error_at(
                    &found,
                    format!(
                        "expected {expected}, found '{raw}' (write '{}' in lowercase)",
                        raw.to_ascii_lowercase()
                    ),
                )
            }
            _ => self.error_at(
                &found,
                format!(
                    "expected {expected} after the condition, found {}",
                    self.describe(&found)
                ),
            ),
        }
    }

    /// `Ident { "." Ident }` — the reference's normalisation merges exactly these.
    fn path(&mut self) -> Result<Path, ParseError> {
        let first = self.bump();
        let mut path = Path {
            text: first.text,
            start: first.start,
            end: first.end,
        };
        while self.peek().kind == Kind::Dot {
            self.bump();
            let segment = self.peek().clone();
            if segment.kind != Kind::Ident {
                let raw = self.raw(segment.start, segment.end);
                let hint = match segment.kind {
                    Kind::Number => lexer::DIGIT_HINT.into(),
                    Kind::Null | Kind::And | Kind::Or => {
                        format!(" (escape it as '\\{raw}')")
                    }
                    _ => String::new(),
                };
                return Err(self.error_at(
                    &segment,
                    format!(
                        "expected a name after '.', found {}{hint}",
                        self.describe(&segment)
                    ),
                ));
            }
            self.bump();
            path.text.push('.');
            path.text.push_str(&segment.text);
            path.end = segment.end;
        }
        Ok(path)
    }

    /// `field operator value`.
    fn comparison(&mut self) -> Result<Node, ParseError> {
        let path = self.path()?;
        let op = self.peek().clone();
        let operator = match op.kind {
            Kind::Eq => Operator::Eq,
            Kind::Ne => Operator::Ne,
            Kind::Lt => Operator::Lt,
            Kind::Le => Operator::Le,
            Kind::Gt => Operator::Gt,
            Kind::Ge => Operator::Ge,
            _ => {
                return Err(self.error_at(
                    &op,
                    format!(
                        "expected an operator (=, !=, <, <=, >, >=) after '{}', found {}",
                        self.raw(path.start, path.end),
                        self.describe(&op)
                    ),
                ));
            }
        };
        self.bump();
        let value = self.value(&format!("after '{}'", op.text))?;
        Ok(comparison_node(field_of(&path.text), operator, &value))
    }

    /// A string, number, `null` or word (`true`, `false`, bare words, dotted words).
    fn value(&mut self, context: &str) -> Result<ValueToken, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            Kind::Str | Kind::Number | Kind::Null => {
                self.bump();
                Ok(ValueToken {
                    kind: token.kind,
                    text: token.text,
                })
            }
            Kind::Ident => Ok(ValueToken {
                kind: Kind::Ident,
                text: self.path()?.text,
            }),
            _ => Err(self.error_at(
                &token,
                format!(
                    "expected a value {context}, found {}",
                    self.describe(&token)
                ),
            )),
        }
    }

    /// `contains(field, value)` / `match(field, pattern)`, the name token current and known
    /// to be followed by `(`.
    fn function(&mut self, negated: bool) -> Result<Node, ParseError> {
        let name = self.bump().text;
        self.bump();
        let first = self.peek().clone();
        if first.kind != Kind::Ident {
            return Err(self.error_at(
                &first,
                format!(
                    "expected a field as the 1st argument of {name}(), found {}",
                    self.describe(&first)
                ),
            ));
        }
        let path = self.path()?;
        let comma = self.peek().clone();
        if comma.kind != Kind::Comma {
            return Err(self.error_at(
                &comma,
                format!(
                    "expected ',' after the 1st argument of {name}(), found {}",
                    self.describe(&comma)
                ),
            ));
        }
        self.bump();
        let value = self.value(&format!("as the 2nd argument of {name}()"))?;
        let close = self.peek().clone();
        if close.kind != Kind::RParen {
            return Err(self.error_at(
                &close,
                format!(
                    "expected ')' after the 2nd argument of {name}(), found {}",
                    self.describe(&close)
                ),
            ));
        }
        self.bump();
        let field = field_of(&path.text);
        let text = js::to_string(Some(&value_of(&value)));
        if name == "contains" {
            let operator = if negated {
                Operator::NotContains
            } else {
                Operator::Contains
            };
            return Ok(Node::condition(field, operator, Some(Value::String(text))));
        }
        Ok(match_node(field, negated, text))
    }
}

fn is_function_name(text: &str) -> bool {
    text == "contains" || text == "match"
}

/// The field a path names. `type`, `event`, `name`, `userId` and `properties.*`, `traits.*`,
/// `context.*` are the reference's; every other path, including those roots with a suffix the
/// reference silently dropped (`event.foo`) and bare `properties`, reads from the event root
/// (D2).
fn field_of(path: &str) -> Field {
    match path {
        "type" => return Field::EventType,
        "event" => return Field::Event,
        "name" => return Field::Name,
        "userId" => return Field::UserId,
        _ => {}
    }
    match path.split_once('.') {
        Some(("properties", rest)) => Field::Property(rest.to_owned()),
        Some(("traits", rest)) => Field::Trait(rest.to_owned()),
        Some(("context", rest)) => Field::Context(rest.to_owned()),
        _ => Field::Path(path.to_owned()),
    }
}

/// The reference's `valueOf(token)` (`fql.md` §3.3).
fn value_of(token: &ValueToken) -> Value {
    match token.kind {
        Kind::Str => {
            let text = token.text.strip_prefix('"').unwrap_or(&token.text);
            let text = text.strip_suffix('"').unwrap_or(text);
            Value::String(text.to_owned())
        }
        Kind::Number => {
            junction_js::f64_to_value_safe_integers(token.text.parse::<f64>().unwrap_or(f64::NAN))
        }
        Kind::Ident if token.text == "true" => Value::Bool(true),
        Kind::Ident if token.text == "false" => Value::Bool(false),
        _ => Value::String(token.text.clone()),
    }
}

/// The reference's condition construction (`fql.md` §3.4), with `event-path` fields built like
/// `properties.*`.
fn comparison_node(field: Field, operator: Operator, value: &ValueToken) -> Node {
    let text = value.text.as_str();
    let equals = operator == Operator::Eq;
    let differs = operator == Operator::Ne;
    let exists = differs && text == "null";
    let not_exists = equals && text == "null";
    let is_true = equals && text == "true";
    let is_false = equals && text == "false";
    let as_string = || Some(Value::String(js::to_string(Some(&value_of(value)))));
    let presence = if exists {
        Some(Operator::Exists)
    } else if not_exists {
        Some(Operator::NotExists)
    } else {
        None
    };
    let truth = if is_true {
        Some(Operator::IsTrue)
    } else if is_false {
        Some(Operator::IsFalse)
    } else {
        None
    };
    match field {
        Field::Event | Field::EventType => Node::condition(field, operator, as_string()),
        Field::Name => match presence {
            Some(test) => Node::condition(field, test, None),
            None => Node::condition(field, operator, as_string()),
        },
        Field::UserId => match presence.or(truth) {
            Some(test) => Node::condition(field, test, None),
            None => Node::condition(field, operator, as_string()),
        },
        Field::Property(_)
        | Field::Trait(_)
        | Field::Context(_)
        | Field::Path(_)
        | Field::Unknown { .. } => {
            if let Some(test) = presence.or(truth) {
                return Node::condition(field, test, None);
            }
            let operator = match operator {
                Operator::Eq if value.kind == Kind::Number => Operator::NumberEquals,
                Operator::Ne if value.kind == Kind::Number => Operator::NumberNotEquals,
                other => other,
            };
            Node::condition(field, operator, Some(value_of(value)))
        }
    }
}

/// `match(field, pattern)` (D4): a pure prefix (`"abc*"`) or suffix (`"*abc"`) pattern keeps the
/// reference's `starts_with` / `ends_with`; any other pattern is a glob over the whole value.
fn match_node(field: Field, negated: bool, pattern: String) -> Node {
    let literal = |text: &str| !text.contains(['*', '?']);
    let (operator, value) = if let Some(prefix) = pattern.strip_suffix('*').filter(|p| literal(p)) {
        (Operator::StartsWith, prefix.to_owned())
    } else if let Some(suffix) = pattern.strip_prefix('*').filter(|s| literal(s)) {
        (Operator::EndsWith, suffix.to_owned())
    } else {
        (Operator::Glob, pattern)
    };
    let operator = match (operator, negated) {
        (Operator::StartsWith, true) => Operator::NotStartsWith,
        (Operator::EndsWith, true) => Operator::NotEndsWith,
        (Operator::Glob, true) => Operator::NotGlob,
        (operator, _) => operator,
    };
    Node::condition(field, operator, Some(Value::String(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ast(source: &str) -> Value {
        serde_json::to_value(parse(source).unwrap()).unwrap()
    }

    fn failure(source: &str) -> (usize, String) {
        let error = parse(source).unwrap_err();
        (error.position(), error.reason().to_owned())
    }

    fn event_eq(value: &str) -> Value {
        json!({"type": "event", "operator": "=", "value": value})
    }

    #[test]
    fn single_operator_levels_are_flat() {
        assert_eq!(
            ast(r#"event = "A" or event = "B" or event = "C""#),
            json!({"type": "group", "operator": "or", "children": [
                event_eq("A"), event_eq("B"), event_eq("C")
            ]})
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let expected = json!({"type": "group", "operator": "or", "children": [
            {"type": "group", "operator": "and", "children": [event_eq("A"), event_eq("B")]},
            event_eq("C"),
        ]});
        assert_eq!(
            ast(r#"event = "A" and event = "B" or event = "C""#),
            expected
        );
        assert_eq!(
            ast(r#"event = "C" or event = "A" and event = "B""#),
            json!({"type": "group", "operator": "or", "children": [
                event_eq("C"),
                {"type": "group", "operator": "and", "children": [event_eq("A"), event_eq("B")]},
            ]})
        );
    }

    #[test]
    fn parentheses_nest_and_keep_their_groups() {
        assert_eq!(
            ast(r#"((event = "A" or (event = "B")) and event = "C")"#),
            json!({"type": "group", "operator": "and", "children": [
                {"type": "group", "operator": "or", "children": [event_eq("A"), event_eq("B")]},
                event_eq("C"),
            ]})
        );
        assert_eq!(
            ast(r#"(event = "A")"#),
            json!({"type": "group", "operator": "and", "children": [event_eq("A")]})
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}type = \"a\"{}", "(".repeat(65), ")".repeat(65));
        let error = parse(&deep).unwrap_err();
        assert_eq!(error.kind(), ParseErrorKind::TooDeep);
        assert_eq!(error.position(), 64);
        let fine = format!("{}type = \"a\"{}", "(".repeat(64), ")".repeat(64));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn any_event_path_is_a_field() {
        assert_eq!(
            ast("anonymousId != null and integrations.Salesforce = false and event.length > 3"),
            json!({"type": "group", "operator": "and", "children": [
                {"type": "event-path", "name": "anonymousId", "operator": "exists"},
                {"type": "event-path", "name": "integrations.Salesforce", "operator": "is_false"},
                {"type": "event-path", "name": "event.length", "operator": ">", "value": 3},
            ]})
        );
        assert_eq!(
            ast("contains = 5")["children"][0],
            json!({"type": "event-path", "name": "contains", "operator": "number_equals", "value": 5})
        );
        assert_eq!(
            ast(r#"contains(type, "ide")"#),
            json!({"type": "group", "operator": "and", "children": [
                {"type": "event-type", "operator": "contains", "value": "ide"},
            ]})
        );
    }

    #[test]
    fn match_patterns() {
        let one = |source: &str| ast(source)["children"][0].clone();
        assert_eq!(
            one(r#"match(event, "ab*")"#),
            json!({"type": "event", "operator": "starts_with", "value": "ab"})
        );
        assert_eq!(
            one(r#"!match(event, "*ab")"#),
            json!({"type": "event", "operator": "not_ends_with", "value": "ab"})
        );
        assert_eq!(
            one(r#"match(event, "a?b*")"#),
            json!({"type": "event", "operator": "glob", "value": "a?b*"})
        );
        assert_eq!(
            one(r#"!match(event, "abc")"#),
            json!({"type": "event", "operator": "not_glob", "value": "abc"})
        );
        assert_eq!(
            one(r#"match(event, "*")"#),
            json!({"type": "event", "operator": "starts_with", "value": ""})
        );
    }

    #[test]
    fn reference_conversions_are_kept() {
        let one = |source: &str| ast(source)["children"][0].clone();
        assert_eq!(
            one("type = 5.50"),
            json!({"type": "event-type", "operator": "=", "value": "5.5"})
        );
        assert_eq!(
            one("event != null"),
            json!({"type": "event", "operator": "!=", "value": "null"})
        );
        assert_eq!(
            one("properties.a = 'x'"),
            json!({"type": "event-property", "name": "a", "operator": "=", "value": "'x'"})
        );
        assert_eq!(
            one("traits.a != -0"),
            json!({"type": "event-trait", "name": "a", "operator": "number_not_equals", "value": 0})
        );
        assert_eq!(
            one("properties.a < true"),
            json!({"type": "event-property", "name": "a", "operator": "<", "value": true})
        );
        assert_eq!(
            one("name = x.y"),
            json!({"type": "name", "operator": "=", "value": "x.y"})
        );
    }

    #[test]
    fn parse_errors_name_position_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected a condition, found end of input"),
            (
                "type = ",
                7,
                "expected a value after '=', found end of input",
            ),
            (
                "type",
                4,
                "expected an operator (=, !=, <, <=, >, >=) after 'type', found end of input",
            ),
            (
                "type = \"a\" and",
                14,
                "expected a condition after 'and', found end of input",
            ),
            ("or type = \"a\"", 0, "expected a condition, found 'or'"),
            (
                "!type = \"a\"",
                1,
                "expected 'contains(' or 'match(' after '!', found 'type'",
            ),
            (
                "type = \"a\" AND event = \"b\"",
                11,
                "expected 'and', 'or' or end of input, found 'AND' (write 'and' in lowercase)",
            ),
            (
                "type = \"a\" or(event = \"b\")",
                13,
                "expected a space after 'or', found '('",
            ),
            (
                "(type = \"a\"",
                11,
                "expected ')' to close the '(' opened at column 1, found end of input",
            ),
            ("type = \"a\")", 10, "unexpected ')' without a matching '('"),
            (
                "(type = \"a\" \"b\")",
                12,
                "expected 'and', 'or' or ')' after the condition, found \"b\"",
            ),
            (
                "properties.2fa = true",
                11,
                "expected a name after '.', found '2' (a name cannot start with a digit; escape it with '\\')",
            ),
            (
                "contains(event",
                14,
                "expected ',' after the 1st argument of contains(), found end of input",
            ),
            (
                "contains(\"x\", event)",
                9,
                "expected a field as the 1st argument of contains(), found \"x\"",
            ),
            (
                "match(event, )",
                13,
                "expected a value as the 2nd argument of match(), found ')'",
            ),
            (
                "match(event, \"a\" x",
                17,
                "expected ')' after the 2nd argument of match(), found 'x'",
            ),
            ("()", 1, "expected a condition after '(', found ')'"),
            (
                "!contains = 5",
                10,
                "expected '(' after 'contains', found '='",
            ),
        ];
        for &(source, position, reason) in cases {
            assert_eq!(failure(source), (position, reason.to_owned()), "{source:?}");
        }
    }

    #[test]
    fn display_uses_one_based_columns() {
        let error = parse("type = ").unwrap_err();
        assert_eq!(
            error.to_string(),
            "expected a value after '=', found end of input at column 8"
        );
        let error = parse("type = \"a\"\nand (").unwrap_err();
        assert_eq!(
            error.to_string(),
            "expected a condition after '(', found end of input at line 2, column 6"
        );
    }
}

//! Triggers: Segment's subscription language (FQL subset) — parse once, evaluate per event,
//! generate text back from an AST. Pure: no IO, no async.
//!
//! The language and its AST are the reference's (`shared/spec/fql.md`), quirks included (a
//! single-quoted string keeps its quotes, `event != null` compares with the string `"null"`,
//! `!=` is true on a missing value, lookups return falsy intermediates, typing is strict), with
//! the deliberate divergences of `shared/design.md` §5:
//!
//! * **D2** — any event path is a field (`anonymousId`, `integrations.X`, `event.length`); see
//!   the `event-path` node in [`Node`].
//! * **D3** — `and` binds tighter than `or`, and parentheses nest.
//! * **D4** — `match(field, pattern)` is a glob (`*` any run, `?` one character) over the whole
//!   value; see the `glob` operator in [`Node`].
//! * **D5** — text the reference would accept only by ignoring or mis-reading part of it, and
//!   every text it rejects, is a [`ParseError`] naming the position and the reason.
//!
//! ```
//! use serde_json::json;
//!
//! let trigger = junction_trigger::parse(r#"type = "identify" and traits.plan != null"#).unwrap();
//! assert!(trigger.matches(&json!({"type": "identify", "traits": {"plan": "pro"}})));
//! assert!(!trigger.matches(&json!({"type": "group"})));
//!
//! let error = junction_trigger::parse("type = ").unwrap_err();
//! assert_eq!(error.to_string(), "expected a value after '=', found end of input at column 8");
//! ```

mod ast;
mod error;
mod eval;
mod generate;
mod glob;
mod js;
mod lexer;
mod parser;

use serde_json::Value;

pub use ast::{Condition, Field, GroupOperator, Node, Operator};
pub use error::{EvaluateError, GenerateError, ParseError, ParseErrorKind};
pub use generate::generate;
pub use parser::MAX_NESTING;

/// Parses trigger text. The result's AST is always a group at the top, as the reference's.
pub fn parse(source: &str) -> Result<Trigger, ParseError> {
    let ast = parser::parse(source)?;
    Ok(Trigger {
        program: eval::compile(&ast),
        source: source.to_owned(),
        ast,
    })
}

/// A parsed trigger, compiled for evaluation: parse once, evaluate many times, from any thread.
#[derive(Debug, Clone)]
pub struct Trigger {
    source: String,
    ast: Node,
    program: eval::Program,
}

impl Trigger {
    /// Whether the event matches. Never allocates. A `null` event matches nothing that reads
    /// one of its members (see [`Self::evaluate`] for the reference's error there).
    pub fn matches(&self, event: &Value) -> bool {
        self.evaluate(event).unwrap_or(false)
    }

    /// Whether the event matches, or the reference's error for a `null` event: like the
    /// reference, a `null` event fails on the first condition that reads a member of it
    /// (conditions not reached, `event-path` lookups and empty groups do not read one).
    pub fn evaluate(&self, event: &Value) -> Result<bool, EvaluateError> {
        eval::run(&self.program, event)
    }

    /// The text the trigger was parsed from; for [`Self::from_ast`], the generated text
    /// (empty when the AST cannot be turned into text).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The AST, in the reference's JSON shape when serialised.
    pub fn ast(&self) -> &Node {
        &self.ast
    }

    /// A trigger from an AST (e.g. a stored reference subscription). Evaluated exactly like the
    /// reference evaluates it: an `{"error": …}` AST, a top-level condition, a group with an
    /// unknown operator and a condition of unknown type or operator never match.
    pub fn from_ast(node: Node) -> Trigger {
        let source = generate(&node).ok().flatten().unwrap_or_default();
        Trigger {
            program: eval::compile(&node),
            source,
            ast: node,
        }
    }
}

impl std::str::FromStr for Trigger {
    type Err = ParseError;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        parse(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_triggers_parse_and_match() {
        let identify = parse(r#"type = "identify""#).unwrap();
        let group = parse(r#"type = "group""#).unwrap();
        let event = json!({"type": "identify", "userId": "u1"});
        assert!(identify.matches(&event));
        assert!(!group.matches(&event));
        assert_eq!(identify.source(), r#"type = "identify""#);
    }

    #[test]
    fn trigger_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Trigger>();
    }

    #[test]
    fn from_ast_generates_its_source() {
        let node: Node =
            serde_json::from_value(json!({"type": "group", "operator": "or", "children": [
                {"type": "event-type", "operator": "=", "value": "track"},
                {"type": "userId", "operator": "exists"},
            ]}))
            .unwrap();
        let trigger = Trigger::from_ast(node);
        assert_eq!(trigger.source(), r#"type = "track" or userId != null"#);
        assert!(trigger.matches(&json!({"userId": "u"})));
        let error: Node = serde_json::from_value(json!({"error": {"message": "x"}})).unwrap();
        let trigger = Trigger::from_ast(error);
        assert_eq!(trigger.source(), "");
        assert!(!trigger.matches(&json!({})));
        assert_eq!(trigger.evaluate(&Value::Null), Ok(false));
    }

    #[test]
    fn null_event_reports_the_reference_error() {
        let trigger = parse(r#"type = "track""#).unwrap();
        let error = trigger.evaluate(&Value::Null).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Cannot read properties of null (reading 'type')"
        );
        assert!(!trigger.matches(&Value::Null));
    }
}

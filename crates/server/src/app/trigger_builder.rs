//! The trigger builder: a trigger's AST as form rows (conditions, and the opening and closing of
//! nested groups, each group joined by all/any), and back. The text comes from and goes to the
//! trigger crate's own parser and generator, so "view as FQL" round-trips with what is saved.
//!
//! Rows are flat so that a plain form (JavaScript off) can carry them: each row sends the same
//! six fields (`t.kind`, `t.join`, `t.field`, `t.path`, `t.op`, `t.value`) in document order.

use junction_trigger::{Condition, Field, GroupOperator, Node, Operator, generate, parse};
use serde_json::Value;

use super::form::FormData;

/// The condition fields a row can test, `(value, label)`.
pub(crate) const FIELDS: [(&str, &str); 8] = [
    ("type", "Event type"),
    ("event", "Event name"),
    ("name", "Page or screen name"),
    ("userId", "User id"),
    ("properties", "Property"),
    ("traits", "Trait"),
    ("context", "Context field"),
    ("path", "Event path"),
];

/// The operators a row can use, `(value, label)`.
pub(crate) const OPERATORS: [(&str, &str); 20] = [
    ("=", "is"),
    ("!=", "is not"),
    ("contains", "contains"),
    ("not_contains", "does not contain"),
    ("starts_with", "starts with"),
    ("not_starts_with", "does not start with"),
    ("ends_with", "ends with"),
    ("not_ends_with", "does not end with"),
    ("glob", "matches pattern"),
    ("not_glob", "does not match pattern"),
    ("exists", "exists"),
    ("not_exists", "does not exist"),
    ("is_true", "is true"),
    ("is_false", "is false"),
    ("<", "<"),
    ("<=", "≤"),
    (">", ">"),
    (">=", "≥"),
    ("number_equals", "= (number)"),
    ("number_not_equals", "≠ (number)"),
];

/// The operators that suit a value of this JSON type (`None`: unknown, every operator).
fn operators_of(kind: Option<&str>) -> Vec<(&'static str, &'static str)> {
    let keep: &[&str] = match kind {
        Some("type") => &["=", "!="],
        Some("string") => &[
            "=",
            "!=",
            "contains",
            "not_contains",
            "starts_with",
            "not_starts_with",
            "ends_with",
            "not_ends_with",
            "glob",
            "not_glob",
            "exists",
            "not_exists",
        ],
        Some("number") => &[
            "number_equals",
            "number_not_equals",
            "<",
            "<=",
            ">",
            ">=",
            "=",
            "!=",
            "exists",
            "not_exists",
        ],
        Some("boolean") => &["is_true", "is_false", "exists", "not_exists"],
        _ => return OPERATORS.to_vec(),
    };
    OPERATORS
        .iter()
        .filter(|(value, _)| keep.contains(value))
        .copied()
        .collect()
}

/// The operators that suit a condition row, by the type of its field (the event type, a name) or
/// of the test event's value at its path; every operator when that value is unknown. The row's
/// own operator is always among them, so that no trigger loses it.
pub(crate) fn operators_for(
    row: &Row,
    event: Option<&serde_json::Value>,
) -> Vec<(&'static str, &'static str)> {
    use serde_json::Value;
    fn at<'a>(root: Option<&'a Value>, path: &str) -> Option<&'a Value> {
        path.split('.')
            .filter(|part| !part.is_empty())
            .try_fold(root?, |value, part| value.get(part))
    }
    let kind = match row.field.as_str() {
        "type" => Some("type"),
        "event" | "name" | "userId" => Some("string"),
        field => {
            let root = match field {
                "path" => event,
                other => event.and_then(|e| e.get(other)),
            };
            match at(root, &row.path) {
                Some(Value::String(_)) => Some("string"),
                Some(Value::Number(_)) => Some("number"),
                Some(Value::Bool(_)) => Some("boolean"),
                _ => None,
            }
        }
    };
    let mut operators = operators_of(kind);
    if !operators.iter().any(|(value, _)| *value == row.op)
        && let Some(own) = OPERATORS.iter().find(|(value, _)| *value == row.op)
    {
        operators.push(*own);
    }
    operators
}

/// One row of the builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// `cond`, `open` (a nested group starts) or `close` (it ends).
    pub(crate) kind: String,
    /// How many groups enclose the row (for indentation).
    pub(crate) depth: usize,
    /// An `open` row's join: `and` (all) or `or` (any).
    pub(crate) join: String,
    /// A condition's field: one of [`FIELDS`].
    pub(crate) field: String,
    /// The path under properties, traits, context or the event root.
    pub(crate) path: String,
    /// One of [`OPERATORS`].
    pub(crate) op: String,
    /// The value compared with (none for exists, is true, …).
    pub(crate) value: String,
}

impl Row {
    fn condition(field: &str, path: &str, op: &str, value: &str) -> Self {
        Self {
            kind: "cond".to_owned(),
            depth: 0,
            join: String::new(),
            field: field.to_owned(),
            path: path.to_owned(),
            op: op.to_owned(),
            value: value.to_owned(),
        }
    }

    fn marker(kind: &str, join: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            join: join.to_owned(),
            ..Self::condition("", "", "", "")
        }
    }
}

/// The builder's state: the top-level join and the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Builder {
    /// `and` (all of) or `or` (any of).
    pub(crate) join: String,
    /// The rows in order.
    pub(crate) rows: Vec<Row>,
}

impl Builder {
    /// The builder showing `text`, or why the builder cannot show it (a parse error with its
    /// column, or a construct only FQL can hold).
    pub(crate) fn from_text(text: &str) -> Result<Self, String> {
        let trigger = parse(text).map_err(|err| err.to_string())?;
        Self::from_ast(trigger.ast())
    }

    fn from_ast(node: &Node) -> Result<Self, String> {
        let Node::Group { operator, children } = node else {
            return Err("the builder shows a group of conditions".to_owned());
        };
        let mut rows = Vec::new();
        for child in children {
            push_node(&mut rows, child, 0)?;
        }
        Ok(Self {
            join: join_text(operator)?,
            rows,
        })
    }

    /// The builder as a form sent it (rows whose fields do not line up are dropped).
    pub(crate) fn from_form(form: &FormData) -> Self {
        let kinds = form.all("t.kind");
        let joins = form.all("t.join");
        let fields = form.all("t.field");
        let paths = form.all("t.path");
        let ops = form.all("t.op");
        let values = form.all("t.value");
        let mut rows = Vec::new();
        let mut depth = 0usize;
        for (i, kind) in kinds.iter().enumerate() {
            let at = |list: &Vec<&str>| list.get(i).copied().unwrap_or_default().to_owned();
            let mut row = Row {
                kind: (*kind).to_owned(),
                depth: 0,
                join: at(&joins),
                field: at(&fields),
                path: at(&paths),
                op: at(&ops),
                value: at(&values),
            };
            if row.kind == "close" {
                depth = depth.saturating_sub(1);
            }
            row.depth = depth;
            if row.kind == "open" {
                depth += 1;
            }
            rows.push(row);
        }
        let join = match form.text("t.top") {
            "or" => "or",
            _ => "and",
        };
        let mut builder = Self {
            join: join.to_owned(),
            rows,
        };
        builder.reindent();
        builder
    }

    fn reindent(&mut self) {
        let mut depth = 0usize;
        for row in &mut self.rows {
            if row.kind == "close" {
                depth = depth.saturating_sub(1);
            }
            row.depth = depth;
            if row.kind == "open" {
                depth += 1;
            }
        }
    }

    /// Applies a builder button: `add` (a condition at the end), `add-group` (a nested group at
    /// the end), `add-in:<i>` (a condition at the end of the group opened at row i), `remove:<i>`
    /// (a condition, or a whole group).
    pub(crate) fn apply(&mut self, op: &str) {
        let blank = || Row::condition("type", "", "=", "");
        if op == "add" {
            self.rows.push(blank());
        } else if op == "add-group" {
            self.rows.push(Row::marker("open", "or"));
            self.rows.push(blank());
            self.rows.push(Row::marker("close", ""));
        } else if let Some(index) = op.strip_prefix("add-in:").and_then(|i| i.parse().ok()) {
            if let Some(close) = self.matching_close(index) {
                self.rows.insert(close, blank());
            }
        } else if let Some(index) = op.strip_prefix("remove:").and_then(|i| i.parse().ok()) {
            match self.rows.get(index).map(|row: &Row| row.kind.as_str()) {
                Some("cond") => {
                    self.rows.remove(index);
                }
                Some("open") => {
                    if let Some(close) = self.matching_close(index) {
                        self.rows.drain(index..=close);
                    }
                }
                _ => {}
            }
        }
        self.reindent();
    }

    /// The index of the row closing the group opened at `open`.
    fn matching_close(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for (i, row) in self.rows.iter().enumerate().skip(open) {
            match row.kind.as_str() {
                "open" => depth += 1,
                "close" => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The trigger text of the rows, or what is wrong with them (each row named by its number).
    pub(crate) fn to_text(&self) -> Result<String, String> {
        let mut stack: Vec<(GroupOperator, Vec<Node>)> = vec![(group_operator(&self.join), vec![])];
        for (i, row) in self.rows.iter().enumerate() {
            match row.kind.as_str() {
                "open" => stack.push((group_operator(&row.join), Vec::new())),
                "close" => {
                    if stack.len() < 2 {
                        return Err(format!("row {}: a group closes that never opened", i + 1));
                    }
                    let Some((operator, children)) = stack.pop() else {
                        continue;
                    };
                    if children.is_empty() {
                        return Err(format!("row {}: a group needs a condition", i + 1));
                    }
                    if let Some(parent) = stack.last_mut() {
                        parent.1.push(Node::group(operator, children));
                    }
                }
                _ => {
                    let node =
                        condition(row).map_err(|reason| format!("row {}: {reason}", i + 1))?;
                    if let Some(parent) = stack.last_mut() {
                        parent.1.push(node);
                    }
                }
            }
        }
        if stack.len() != 1 {
            return Err("a group is not closed".to_owned());
        }
        let Some((operator, children)) = stack.pop() else {
            return Err("no condition".to_owned());
        };
        let node = Node::group(operator, children);
        let text = generate(&node)
            .map_err(|err| err.to_string())?
            .ok_or_else(|| "add at least one condition".to_owned())?;
        // What the generator writes must parse back: say so now rather than on save.
        parse(&text).map_err(|err| err.to_string())?;
        Ok(text)
    }
}

fn join_text(operator: &GroupOperator) -> Result<String, String> {
    match operator {
        GroupOperator::And => Ok("and".to_owned()),
        GroupOperator::Or => Ok("or".to_owned()),
        GroupOperator::Other(other) => Err(format!("unknown group operator \"{other}\"")),
    }
}

fn group_operator(join: &str) -> GroupOperator {
    if join == "or" {
        GroupOperator::Or
    } else {
        GroupOperator::And
    }
}

fn push_node(rows: &mut Vec<Row>, node: &Node, depth: usize) -> Result<(), String> {
    match node {
        Node::Group { operator, children } => {
            let mut open = Row::marker("open", &join_text(operator)?);
            open.depth = depth;
            rows.push(open);
            for child in children {
                push_node(rows, child, depth + 1)?;
            }
            let mut close = Row::marker("close", "");
            close.depth = depth;
            rows.push(close);
            Ok(())
        }
        Node::Condition(condition) => {
            let mut row = row_of(condition)?;
            row.depth = depth;
            rows.push(row);
            Ok(())
        }
        Node::Error(_) => Err("the trigger holds an error node".to_owned()),
    }
}

fn row_of(condition: &Condition) -> Result<Row, String> {
    let (field, path) = match &condition.field {
        Field::EventType => ("type", ""),
        Field::Event => ("event", ""),
        Field::Name => ("name", ""),
        Field::UserId => ("userId", ""),
        Field::Property(path) => ("properties", path.as_str()),
        Field::Trait(path) => ("traits", path.as_str()),
        Field::Context(path) => ("context", path.as_str()),
        Field::Path(path) => ("path", path.as_str()),
        Field::Unknown { kind, .. } => return Err(format!("unknown field type \"{kind}\"")),
    };
    let op = condition.operator.as_str();
    if !OPERATORS.iter().any(|(known, _)| *known == op) {
        return Err(format!("unknown operator \"{op}\""));
    }
    let value = match &condition.value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    Ok(Row::condition(field, path, op, &value))
}

fn condition(row: &Row) -> Result<Node, String> {
    let field = match row.field.as_str() {
        "type" => Field::EventType,
        "event" => Field::Event,
        "name" => Field::Name,
        "userId" => Field::UserId,
        kind => {
            let path = row.path.trim();
            if path.is_empty() {
                return Err("name the field's path".to_owned());
            }
            let path = path.to_owned();
            match kind {
                "properties" => Field::Property(path),
                "traits" => Field::Trait(path),
                "context" => Field::Context(path),
                "path" => Field::Path(path),
                other => return Err(format!("unknown field \"{other}\"")),
            }
        }
    };
    let operator = Operator::from_text(&row.op);
    let value = match operator {
        Operator::Exists | Operator::NotExists | Operator::IsTrue | Operator::IsFalse => None,
        Operator::Lt
        | Operator::Le
        | Operator::Gt
        | Operator::Ge
        | Operator::NumberEquals
        | Operator::NumberNotEquals => {
            let number: serde_json::Number = row
                .value
                .trim()
                .parse()
                .map_err(|_| format!("\"{}\" is not a number", row.value))?;
            Some(Value::Number(number))
        }
        Operator::Other(other) => return Err(format!("unknown operator \"{other}\"")),
        _ => Some(Value::String(row.value.clone())),
    };
    Ok(Node::condition(field, operator, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_through_the_builder() {
        for text in [
            "type = \"identify\"",
            "type = \"identify\" and traits.plan = \"pro\"",
            "type = \"track\" and (event = \"Signed Up\" or event = \"Upgraded\")",
            "properties.total > 10 or context.app.name != null",
        ] {
            let builder = Builder::from_text(text).unwrap();
            assert_eq!(builder.to_text().unwrap(), text);
        }
    }

    #[test]
    fn buttons_add_and_remove_rows_and_groups() {
        let mut builder = Builder::from_text("type = \"identify\"").unwrap();
        builder.apply("add");
        builder.rows[1] = Row::condition("traits", "plan", "=", "pro");
        assert_eq!(
            builder.to_text().unwrap(),
            "type = \"identify\" and traits.plan = \"pro\""
        );
        builder.apply("add-group");
        assert_eq!(builder.rows.len(), 5);
        assert_eq!(builder.rows[3].depth, 1);
        builder.apply("add-in:2");
        assert_eq!(builder.rows.len(), 6);
        builder.apply("remove:2");
        assert_eq!(builder.rows.len(), 2);
        builder.apply("remove:0");
        assert_eq!(builder.rows.len(), 1);
    }

    #[test]
    fn bad_rows_say_which() {
        let builder = Builder {
            join: "and".to_owned(),
            rows: vec![Row::condition("properties", "total", ">", "lots")],
        };
        assert_eq!(
            builder.to_text().unwrap_err(),
            "row 1: \"lots\" is not a number"
        );
        let empty = Builder {
            join: "and".to_owned(),
            rows: vec![],
        };
        assert!(empty.to_text().is_err());
        assert!(Builder::from_text("type = ").is_err());
    }

    #[test]
    fn operators_follow_the_type_of_the_test_events_value() {
        let event = serde_json::json!({"type": "identify", "traits": {"plan": "pro", "seats": 4,
                                       "trial": true}});
        let ops = |field: &str, path: &str, op: &str| -> Vec<&str> {
            operators_for(&Row::condition(field, path, op, ""), Some(&event))
                .into_iter()
                .map(|(value, _)| value)
                .collect()
        };
        assert_eq!(ops("type", "", "="), ["=", "!="]);
        assert!(ops("traits", "plan", "=").contains(&"contains"));
        assert!(!ops("traits", "plan", "=").contains(&">"));
        assert!(ops("traits", "seats", ">").contains(&">="));
        assert!(!ops("traits", "seats", ">").contains(&"starts_with"));
        assert_eq!(
            ops("traits", "trial", "is_true"),
            ["exists", "not_exists", "is_true", "is_false"]
        );
        assert_eq!(ops("traits", "unknown", "=").len(), OPERATORS.len());
        // A trigger's own operator is kept even when the value's type does not suit it.
        assert!(ops("traits", "plan", ">").contains(&">"));
    }
}

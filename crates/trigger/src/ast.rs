//! The trigger AST in the reference's JSON shape (`fql.md` §1), plus Junction's two extensions:
//! the `event-path` condition (D2) and the `glob` / `not_glob` operators (D4).

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A node of the trigger AST, serialised exactly as the reference's subscription objects.
///
/// Reference shapes:
/// * `{"type": "group", "operator": "and" | "or", "children": [...]}`
/// * `{"type": "event-type" | "event" | "name" | "userId", "operator": ..., "value"?: ...}`
/// * `{"type": "event-property" | "event-trait" | "event-context", "name": ..., "operator": ...,
///   "value"?: ...}`
/// * `{"error": {...}}` — a subscription the reference failed to parse; it never matches.
///
/// Junction extensions (an AST using them is still valid JSON for the reference, which treats an
/// unknown type or operator as "no match"):
/// * **D2** — `{"type": "event-path", "name": "<path from the event root>", "operator": ...,
///   "value"?: ...}`: a field outside `properties.*`, `traits.*`, `context.*`, `type`, `event`,
///   `name` and `userId` (e.g. `anonymousId`, `integrations.Salesforce`, `event.length`), looked
///   up over the whole event with the reference's lookup rules. Conditions on it are built like
///   those on `properties.*` (`!= null` → `exists`, `= true` → `is_true`, numbers typed).
/// * **D4** — operators `"glob"` and `"not_glob"`, whose value is a `match()` pattern where `*`
///   matches any run of characters and `?` exactly one, over the whole value. Pure-prefix
///   (`"abc*"`) and pure-suffix (`"*abc"`) patterns keep the reference's `starts_with` /
///   `ends_with` operators.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `{"type": "group", "operator", "children"}`.
    Group {
        /// How the children combine.
        operator: GroupOperator,
        /// The child nodes, in source order.
        children: Vec<Node>,
    },
    /// A leaf comparison.
    Condition(Condition),
    /// `{"error": <any>}`: the reference's failed-parse subscription. Never matches; generating
    /// text from it fails with its `message`.
    Error(Value),
}

/// How a group combines its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOperator {
    /// Every child must match (an empty group matches).
    And,
    /// Some child must match (an empty group does not match).
    Or,
    /// Any other text (only reachable through a hand-written AST); the group never matches.
    Other(String),
}

/// A leaf condition: which value of the event, how it is tested, against what.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The event value tested (the node's `type`, plus `name` for path-bearing types).
    pub field: Field,
    /// The test.
    pub operator: Operator,
    /// The expected value; absent for `exists`, `not_exists`, `is_true`, `is_false`.
    pub value: Option<Value>,
}

/// The event value a condition reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `event-type`: `event.type`.
    EventType,
    /// `event`: `event.event` (the track event name).
    Event,
    /// `name`: `event.name` (page / screen name).
    Name,
    /// `userId`: `event.userId`.
    UserId,
    /// `event-property`: the path under `event.properties`.
    Property(String),
    /// `event-trait`: the path under `event.traits`.
    Trait(String),
    /// `event-context`: the path under `event.context`.
    Context(String),
    /// `event-path` (Junction, D2): a path from the event root.
    Path(String),
    /// Any other `type` (only reachable through a hand-written AST): never matches, and
    /// generating text from it fails.
    Unknown {
        /// The `type` text.
        kind: String,
        /// The `name` member, if it had one.
        name: Option<String>,
    },
}

/// A condition's test. Texts are the reference's operator strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// `=`: the value is a string equal to `String(expected)`.
    Eq,
    /// `!=`: the value is not a string equal to `String(expected)` (true when missing).
    Ne,
    /// `<`: the value is a number below `Number(expected)`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `number_equals`: the value is a number equal to `Number(expected)`.
    NumberEquals,
    /// `number_not_equals`: the value is a number different from `Number(expected)`.
    NumberNotEquals,
    /// `contains`: the value is a string containing `String(expected)`.
    Contains,
    /// `not_contains`: the value is a string not containing it.
    NotContains,
    /// `starts_with`.
    StartsWith,
    /// `not_starts_with`.
    NotStartsWith,
    /// `ends_with`.
    EndsWith,
    /// `not_ends_with`.
    NotEndsWith,
    /// `exists`: present and not null.
    Exists,
    /// `not_exists`: absent or null.
    NotExists,
    /// `is_true`: the boolean `true`.
    IsTrue,
    /// `is_false`: the boolean `false`.
    IsFalse,
    /// `glob` (Junction, D4): the value is a string matched whole by the pattern.
    Glob,
    /// `not_glob` (Junction, D4): the value is a string not matched by the pattern.
    NotGlob,
    /// Any other text; the condition never matches.
    Other(String),
}

impl GroupOperator {
    /// The operator's text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::And => "and",
            Self::Or => "or",
            Self::Other(text) => text,
        }
    }

    fn from_text(text: String) -> Self {
        match text.as_str() {
            "and" => Self::And,
            "or" => Self::Or,
            _ => Self::Other(text),
        }
    }
}

impl Operator {
    /// The operator's text as it appears in the AST.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::NumberEquals => "number_equals",
            Self::NumberNotEquals => "number_not_equals",
            Self::Contains => "contains",
            Self::NotContains => "not_contains",
            Self::StartsWith => "starts_with",
            Self::NotStartsWith => "not_starts_with",
            Self::EndsWith => "ends_with",
            Self::NotEndsWith => "not_ends_with",
            Self::Exists => "exists",
            Self::NotExists => "not_exists",
            Self::IsTrue => "is_true",
            Self::IsFalse => "is_false",
            Self::Glob => "glob",
            Self::NotGlob => "not_glob",
            Self::Other(text) => text,
        }
    }

    /// The operator for an AST text.
    pub fn from_text(text: &str) -> Self {
        match text {
            "=" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "number_equals" => Self::NumberEquals,
            "number_not_equals" => Self::NumberNotEquals,
            "contains" => Self::Contains,
            "not_contains" => Self::NotContains,
            "starts_with" => Self::StartsWith,
            "not_starts_with" => Self::NotStartsWith,
            "ends_with" => Self::EndsWith,
            "not_ends_with" => Self::NotEndsWith,
            "exists" => Self::Exists,
            "not_exists" => Self::NotExists,
            "is_true" => Self::IsTrue,
            "is_false" => Self::IsFalse,
            "glob" => Self::Glob,
            "not_glob" => Self::NotGlob,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl Field {
    /// The node's `type` text.
    pub fn kind(&self) -> &str {
        match self {
            Self::EventType => "event-type",
            Self::Event => "event",
            Self::Name => "name",
            Self::UserId => "userId",
            Self::Property(_) => "event-property",
            Self::Trait(_) => "event-trait",
            Self::Context(_) => "event-context",
            Self::Path(_) => "event-path",
            Self::Unknown { kind, .. } => kind,
        }
    }

    /// The node's `name` member (the path), for the types that have one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Property(name) | Self::Trait(name) | Self::Context(name) | Self::Path(name) => {
                Some(name)
            }
            Self::Unknown { name, .. } => name.as_deref(),
            Self::EventType | Self::Event | Self::Name | Self::UserId => None,
        }
    }
}

impl Node {
    /// A group node.
    pub fn group(operator: GroupOperator, children: Vec<Node>) -> Self {
        Self::Group { operator, children }
    }

    /// A condition node.
    pub fn condition(field: Field, operator: Operator, value: Option<Value>) -> Self {
        Self::Condition(Condition {
            field,
            operator,
            value,
        })
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Group { operator, children } => {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("type", "group")?;
                map.serialize_entry("operator", operator.as_str())?;
                map.serialize_entry("children", children)?;
                map.end()
            }
            Self::Condition(condition) => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("type", condition.field.kind())?;
                if let Some(name) = condition.field.name() {
                    map.serialize_entry("name", name)?;
                }
                map.serialize_entry("operator", condition.operator.as_str())?;
                if let Some(value) = &condition.value {
                    map.serialize_entry("value", value)?;
                }
                map.end()
            }
            Self::Error(error) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("error", error)?;
                map.end()
            }
        }
    }
}

/// The members a node object may have; which ones are required depends on `type`.
#[derive(Deserialize)]
struct RawNode {
    #[serde(rename = "type")]
    kind: Option<String>,
    operator: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    children: Option<Vec<Node>>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// Keeps an explicit `null` as `Some(Value::Null)` (plain `Option` would read it as absent,
/// but `String(null)` is `"null"` while `String(undefined)` is `"undefined"`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawNode::deserialize(deserializer)?;
        if let Some(error) = raw.error {
            return Ok(Self::Error(error));
        }
        let kind = raw
            .kind
            .ok_or_else(|| D::Error::custom("a trigger node needs a \"type\" or an \"error\""))?;
        let operator = raw
            .operator
            .ok_or_else(|| D::Error::custom(format!("a {kind:?} node needs an \"operator\"")))?;
        if kind == "group" {
            let children = raw
                .children
                .ok_or_else(|| D::Error::custom("a group node needs \"children\""))?;
            return Ok(Self::Group {
                operator: GroupOperator::from_text(operator),
                children,
            });
        }
        let needs_name = |name: Option<String>| {
            name.ok_or_else(|| D::Error::custom(format!("a {kind:?} node needs a \"name\"")))
        };
        let field = match kind.as_str() {
            "event-type" => Field::EventType,
            "event" => Field::Event,
            "name" => Field::Name,
            "userId" => Field::UserId,
            "event-property" => Field::Property(needs_name(raw.name)?),
            "event-trait" => Field::Trait(needs_name(raw.name)?),
            "event-context" => Field::Context(needs_name(raw.name)?),
            "event-path" => Field::Path(needs_name(raw.name)?),
            _ => Field::Unknown {
                kind: kind.clone(),
                name: raw.name,
            },
        };
        Ok(Self::Condition(Condition {
            field,
            operator: Operator::from_text(&operator),
            value: raw.value,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(json: Value) {
        let node: Node = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&node).unwrap(), json);
    }

    #[test]
    fn reference_shapes_round_trip() {
        round_trip(json!({"type": "group", "operator": "and", "children": [
            {"type": "event-type", "operator": "=", "value": "track"},
            {"type": "event-property", "name": "a.b", "operator": "exists"},
            {"type": "group", "operator": "xor", "children": []},
            {"type": "bogus", "operator": "~", "value": null},
            {"type": "bogus", "name": "n", "operator": "="},
        ]}));
        round_trip(json!({"error": {"message": "boom"}}));
    }

    #[test]
    fn extensions_round_trip() {
        round_trip(json!({"type": "event-path", "name": "anonymousId", "operator": "exists"}));
        round_trip(json!({"type": "event", "operator": "glob", "value": "a*b"}));
    }

    #[test]
    fn malformed_nodes_are_rejected() {
        for bad in [
            json!({}),
            json!({"type": "group", "operator": "and"}),
            json!({"type": "event"}),
            json!({"type": "event-property", "operator": "="}),
            json!("group"),
        ] {
            assert!(
                serde_json::from_value::<Node>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn explicit_null_value_is_kept() {
        let node: Node =
            serde_json::from_value(json!({"type": "event", "operator": "=", "value": null}))
                .unwrap();
        let Node::Condition(condition) = node else {
            panic!("not a condition");
        };
        assert_eq!(condition.value, Some(Value::Null));
    }
}

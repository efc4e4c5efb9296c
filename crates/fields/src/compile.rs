//! Compiles a JSON schema (the subset `fieldsToJsonSchema` emits plus the raw keywords the
//! reference's error vectors use) into a node tree with everything precomputed: types and
//! coercion targets, Ajv's keyword groups, formats, patterns, property lookup tables and the
//! fixed parts of error messages.

use serde_json::{Map, Value};

use crate::error::SchemaError;
use crate::formats::{Format, format_label, js_regex};
use crate::js;
use crate::messages;
use crate::{ValidatorOptions, props::PropIndex};

/// A compiled (sub)schema: a boolean schema or a schema object.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// `true` accepts everything, `false` nothing.
    Bool(bool),
    /// A schema object.
    Schema(Box<SchemaNode>),
}

impl Node {
    /// Ajv's `alwaysValidSchema`: accepts everything and changes nothing.
    pub(crate) fn is_trivially_valid(&self) -> bool {
        match self {
            Node::Bool(b) => *b,
            Node::Schema(s) => s.trivially_valid,
        }
    }
}

/// A JSON type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Null,
    Boolean,
    Number,
    Integer,
    String,
    Array,
    Object,
    /// A name Ajv would reject; matches nothing.
    Unknown,
}

impl JsonType {
    fn from_name(name: &str) -> JsonType {
        match name {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "number" => JsonType::Number,
            "integer" => JsonType::Integer,
            "string" => JsonType::String,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            _ => JsonType::Unknown,
        }
    }

    /// Whether Ajv's `coerceTypes: "array"` can coerce into this type.
    fn is_coercible(self) -> bool {
        !matches!(self, JsonType::Object | JsonType::Unknown)
    }
}

/// The bit of a type in [`SchemaNode::type_mask`].
pub(crate) fn type_bit(t: JsonType) -> u8 {
    match t {
        JsonType::Null => 1,
        JsonType::Boolean => 2,
        JsonType::Number => 4,
        JsonType::Integer => 8,
        JsonType::String => 16,
        JsonType::Array => 32,
        JsonType::Object => 64,
        JsonType::Unknown => 0,
    }
}

/// A numeric keyword value with its JavaScript text (for messages).
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    pub(crate) value: f64,
    pub(crate) text: String,
}

/// A compiled `pattern`.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) regex: regex::Regex,
}

/// `items`: one schema for every element, or a tuple.
#[derive(Debug, Clone)]
pub(crate) enum Items {
    Single(Node),
    Tuple(Vec<Node>),
}

/// One entry of `dependencies`.
#[derive(Debug, Clone)]
pub(crate) enum Dependency {
    Properties(Vec<String>),
    Schema(Node),
}

/// A `required` name, with its index in `properties` when it has one (fast presence check).
#[derive(Debug, Clone)]
pub(crate) struct RequiredKey {
    pub(crate) name: String,
    pub(crate) property: Option<usize>,
}

/// `properties` with a lookup table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Properties {
    pub(crate) entries: Vec<(String, Node)>,
    pub(crate) index: PropIndex,
}

impl Properties {
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        self.index
            .get(key, |i| self.entries.get(i).map(|(k, _)| k.as_str()))
    }

    /// [`Properties::position`], trying first the property after `previous`: payloads built
    /// from the fields by a mapping list their keys in the schema's order, and one comparison
    /// is cheaper than hashing the key.
    pub(crate) fn position_after(&self, key: &str, previous: Option<usize>) -> Option<usize> {
        let next = previous.map_or(0, |p| p + 1);
        // The names come from one JSON object, so they are unique.
        match self.entries.get(next) {
            Some((name, _)) if name == key => Some(next),
            _ => self.position(key),
        }
    }

    pub(crate) fn node(&self, i: usize) -> Option<&Node> {
        self.entries.get(i).map(|(_, node)| node)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.position(key).and_then(|i| self.node(i))
    }
}

/// A compiled schema object. Keyword groups follow Ajv's evaluation order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchemaNode {
    // Message subjects.
    pub(crate) title: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) pattern_label: Option<String>,

    // `type` and coercion.
    pub(crate) types: Vec<JsonType>,
    /// `types` as a bit set over JSON kinds (see [`type_bit`]).
    pub(crate) type_mask: u8,
    /// "a string or number": the expected-type part of the type error.
    pub(crate) type_expectation: String,
    pub(crate) coerce_to: Vec<JsonType>,
    /// Whether the type is checked (and coerced) before the keyword groups.
    pub(crate) check_types: bool,
    /// Where Ajv reports the type error instead, when it does not check up front.
    pub(crate) deferred_type: Option<JsonType>,
    /// `type` is exactly the string `"array"` (what `arrifyFields` looks for).
    pub(crate) type_is_array: bool,

    // What `removeEmptyValues` looks at.
    pub(crate) has_type_or_enum: bool,
    pub(crate) type_lists_null: bool,
    pub(crate) type_lists_string: bool,
    pub(crate) has_properties: bool,

    // Keywords of any type.
    pub(crate) const_value: Option<Value>,
    pub(crate) enum_values: Option<Vec<Value>>,
    pub(crate) enum_text: String,
    pub(crate) not: Option<Node>,
    pub(crate) any_of: Option<Vec<Node>>,
    pub(crate) any_of_always_valid: bool,
    pub(crate) one_of: Option<Vec<Node>>,
    pub(crate) all_of: Option<Vec<Node>>,
    pub(crate) if_: Option<Node>,
    pub(crate) then: Option<Node>,
    pub(crate) else_: Option<Node>,

    // Numbers.
    pub(crate) maximum: Option<Limit>,
    pub(crate) minimum: Option<Limit>,
    pub(crate) exclusive_maximum: Option<Limit>,
    pub(crate) exclusive_minimum: Option<Limit>,
    pub(crate) multiple_of: Option<Limit>,
    pub(crate) format: Option<Format>,
    pub(crate) format_text: String,

    // Strings.
    pub(crate) max_length: Option<Limit>,
    pub(crate) min_length: Option<Limit>,
    pub(crate) pattern: Option<Pattern>,

    // Arrays.
    pub(crate) max_items: Option<Limit>,
    pub(crate) min_items: Option<Limit>,
    pub(crate) unique_items: bool,
    /// Item types that let Ajv use its hash-based `uniqueItems` check.
    pub(crate) unique_item_types: Vec<JsonType>,
    pub(crate) additional_items: Option<Node>,
    pub(crate) items: Option<Items>,
    pub(crate) contains: Option<Node>,

    // Objects.
    pub(crate) max_properties: Option<Limit>,
    pub(crate) min_properties: Option<Limit>,
    pub(crate) required: Vec<RequiredKey>,
    pub(crate) property_names: Option<Node>,
    pub(crate) additional_properties: Option<Node>,
    pub(crate) dependencies: Vec<(String, Dependency)>,
    pub(crate) properties: Properties,
    pub(crate) pattern_properties: Vec<(Pattern, Node)>,

    // Which of Ajv's keyword groups have keywords.
    pub(crate) has_any_rules: bool,
    pub(crate) has_number_rules: bool,
    pub(crate) has_string_rules: bool,
    pub(crate) has_array_rules: bool,
    pub(crate) has_object_rules: bool,
    pub(crate) trivially_valid: bool,
    /// Only `type` is checked: a value of the right type needs nothing else.
    pub(crate) type_check_only: bool,
}

const ANY_KEYWORDS: [&str; 9] = [
    "const", "enum", "not", "anyOf", "oneOf", "allOf", "if", "then", "else",
];
const NUMBER_KEYWORDS: [&str; 6] = [
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "multipleOf",
    "format",
];
const STRING_KEYWORDS: [&str; 4] = ["maxLength", "minLength", "pattern", "format"];
const ARRAY_KEYWORDS: [&str; 6] = [
    "maxItems",
    "minItems",
    "uniqueItems",
    "additionalItems",
    "items",
    "contains",
];
const OBJECT_KEYWORDS: [&str; 8] = [
    "maxProperties",
    "minProperties",
    "required",
    "propertyNames",
    "additionalProperties",
    "dependencies",
    "properties",
    "patternProperties",
];

struct Compiler<'o> {
    options: &'o ValidatorOptions,
    errors: Vec<SchemaError>,
}

/// Compiles `schema`; problems are collected in the returned list (the node is still usable:
/// an unusable keyword is left out).
pub(crate) fn compile(schema: &Value, options: &ValidatorOptions) -> (Node, Vec<SchemaError>) {
    let mut compiler = Compiler {
        options,
        errors: Vec::new(),
    };
    let node = compiler.node(schema, "#");
    (node, compiler.errors)
}

impl Compiler<'_> {
    fn node(&mut self, value: &Value, path: &str) -> Node {
        match value {
            Value::Bool(b) => Node::Bool(*b),
            Value::Object(map) => Node::Schema(Box::new(self.schema(map, path))),
            _ => {
                self.errors.push(SchemaError::NotASchema {
                    path: path.to_owned(),
                });
                Node::Bool(true)
            }
        }
    }

    fn invalid(&mut self, keyword: &str, path: &str) {
        self.errors.push(SchemaError::InvalidKeyword {
            keyword: keyword.to_owned(),
            path: path.to_owned(),
        });
    }

    fn limit(&mut self, map: &Map<String, Value>, keyword: &str, path: &str) -> Option<Limit> {
        let value = map.get(keyword)?;
        match value.as_f64() {
            Some(x) => Some(Limit {
                value: x,
                text: junction_js::number_to_string(x),
            }),
            None => {
                self.invalid(keyword, path);
                None
            }
        }
    }

    fn node_list(
        &mut self,
        map: &Map<String, Value>,
        keyword: &str,
        path: &str,
    ) -> Option<Vec<Node>> {
        let value = map.get(keyword)?;
        let Value::Array(items) = value else {
            self.invalid(keyword, path);
            return None;
        };
        Some(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| self.node(item, &format!("{path}/{keyword}/{i}")))
                .collect(),
        )
    }

    fn sub(&mut self, map: &Map<String, Value>, keyword: &str, path: &str) -> Option<Node> {
        map.get(keyword)
            .map(|value| self.node(value, &format!("{path}/{keyword}")))
    }

    fn pattern(&mut self, source: &str, path: &str) -> Option<Pattern> {
        let compiled = js_regex::translate(source)
            .and_then(|translated| regex::Regex::new(&translated).map_err(|e| e.to_string()));
        match compiled {
            Ok(regex) => Some(Pattern { regex }),
            Err(reason) => {
                self.errors.push(SchemaError::InvalidPattern {
                    pattern: source.to_owned(),
                    path: path.to_owned(),
                    reason,
                });
                None
            }
        }
    }

    fn schema(&mut self, map: &Map<String, Value>, path: &str) -> SchemaNode {
        let mut s = SchemaNode::default();
        if map.contains_key("$ref") {
            self.errors.push(SchemaError::Unsupported {
                keyword: "$ref".into(),
                path: path.to_owned(),
            });
        }
        let truthy_text = |key: &str| {
            map.get(key)
                .filter(|v| junction_js::is_truthy(v))
                .map(junction_js::to_js_string)
        };
        s.title = truthy_text("title");
        s.error_message = truthy_text("errorMessage");
        s.pattern_label = truthy_text("patternLabel");

        let has = |keys: &[&str]| keys.iter().any(|k| map.contains_key(*k));
        s.has_any_rules = has(&ANY_KEYWORDS);
        s.has_number_rules = has(&NUMBER_KEYWORDS);
        s.has_string_rules = has(&STRING_KEYWORDS);
        s.has_array_rules = has(&ARRAY_KEYWORDS);
        s.has_object_rules = has(&OBJECT_KEYWORDS);

        self.types(map, path, &mut s);
        self.any_keywords(map, path, &mut s);
        self.number_and_string_keywords(map, path, &mut s);
        self.array_keywords(map, path, &mut s);
        self.object_keywords(map, path, &mut s);

        s.type_check_only = s.check_types
            && !s.has_any_rules
            && !s.has_number_rules
            && !s.has_string_rules
            && !s.has_array_rules
            && !s.has_object_rules;
        s.trivially_valid = map.get("type").is_none()
            && !map.contains_key("nullable")
            && !s.has_any_rules
            && !s.has_number_rules
            && !s.has_string_rules
            && !s.has_array_rules
            && !s.has_object_rules;
        s
    }

    fn types(&mut self, map: &Map<String, Value>, path: &str, s: &mut SchemaNode) {
        let raw = map.get("type");
        let names: Vec<String> = match raw {
            None => Vec::new(),
            Some(Value::String(name)) => vec![name.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                self.invalid("type", path);
                Vec::new()
            }
        };
        if names
            .iter()
            .any(|n| JsonType::from_name(n) == JsonType::Unknown)
        {
            self.invalid("type", path);
        }
        s.types = names.iter().map(|n| JsonType::from_name(n)).collect();
        if map.get("nullable") == Some(&Value::Bool(true)) && !s.types.contains(&JsonType::Null) {
            s.types.push(JsonType::Null);
        }
        s.type_mask = s.types.iter().fold(0, |mask, &t| mask | type_bit(t));
        // The message lists the `type` keyword as written (a string is split on commas).
        let listed: Vec<String> = match raw {
            Some(Value::String(name)) => name.split(',').map(str::to_owned).collect(),
            _ => names.clone(),
        };
        s.type_expectation = messages::with_article(&messages::humanize_list(&listed, "or"));
        s.type_is_array = raw == Some(&Value::String("array".into()));

        s.has_type_or_enum = raw.is_some_and(junction_js::is_truthy)
            || map.get("enum").is_some_and(junction_js::is_truthy);
        s.type_lists_null = names.iter().any(|n| n == "null");
        s.type_lists_string = names.iter().any(|n| n == "string");
        s.has_properties = map.get("properties").is_some_and(junction_js::is_truthy);

        if self.options.coerce_types {
            s.coerce_to = s
                .types
                .iter()
                .copied()
                .filter(|t| t.is_coercible())
                .collect();
        }
        let has_rules_for = |t: JsonType| match t {
            JsonType::Number => s.has_number_rules,
            JsonType::String => s.has_string_rules,
            JsonType::Array => s.has_array_rules,
            JsonType::Object => s.has_object_rules,
            _ => false,
        };
        let single = match s.types.as_slice() {
            [only] => Some(*only),
            _ => None,
        };
        let deferred = s.coerce_to.is_empty() && single.is_some_and(has_rules_for);
        s.check_types = !s.types.is_empty() && !deferred;
        s.deferred_type = if deferred { single } else { None };
    }

    fn any_keywords(&mut self, map: &Map<String, Value>, path: &str, s: &mut SchemaNode) {
        s.const_value = map.get("const").cloned();
        if let Some(values) = map.get("enum") {
            match values {
                Value::Array(values) => {
                    let shown: Vec<String> = values.iter().map(junction_js::stringify).collect();
                    s.enum_text = messages::humanize_list(&shown, "or");
                    s.enum_values = Some(values.clone());
                }
                _ => self.invalid("enum", path),
            }
        }
        s.not = self.sub(map, "not", path);
        s.any_of = self.node_list(map, "anyOf", path);
        s.any_of_always_valid = s
            .any_of
            .as_ref()
            .is_some_and(|branches| branches.iter().any(Node::is_trivially_valid));
        s.one_of = self.node_list(map, "oneOf", path);
        s.all_of = self.node_list(map, "allOf", path);
        s.if_ = self.sub(map, "if", path);
        s.then = self.sub(map, "then", path);
        s.else_ = self.sub(map, "else", path);
    }

    fn number_and_string_keywords(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        s: &mut SchemaNode,
    ) {
        s.maximum = self.limit(map, "maximum", path);
        s.minimum = self.limit(map, "minimum", path);
        s.exclusive_maximum = self.limit(map, "exclusiveMaximum", path);
        s.exclusive_minimum = self.limit(map, "exclusiveMinimum", path);
        s.multiple_of = self.limit(map, "multipleOf", path);
        if let Some(name) = map.get("format") {
            match name.as_str() {
                // Unknown formats are ignored (Ajv with `strict: false` only warns).
                Some(name) => {
                    s.format = Format::from_name(name);
                    s.format_text = format_label(name).to_owned();
                }
                None => self.invalid("format", path),
            }
        }
        s.max_length = self.limit(map, "maxLength", path);
        s.min_length = self.limit(map, "minLength", path);
        if let Some(source) = map.get("pattern") {
            match source.as_str() {
                Some(source) => s.pattern = self.pattern(source, &format!("{path}/pattern")),
                None => self.invalid("pattern", path),
            }
        }
    }

    fn array_keywords(&mut self, map: &Map<String, Value>, path: &str, s: &mut SchemaNode) {
        s.max_items = self.limit(map, "maxItems", path);
        s.min_items = self.limit(map, "minItems", path);
        s.unique_items = map.get("uniqueItems") == Some(&Value::Bool(true));
        s.additional_items = self.sub(map, "additionalItems", path);
        s.items = match map.get("items") {
            None => None,
            Some(Value::Array(_)) => self.node_list(map, "items", path).map(Items::Tuple),
            Some(item) => Some(Items::Single(self.node(item, &format!("{path}/items")))),
        };
        if let Some(Items::Single(Node::Schema(item))) = &s.items {
            let scalar = !item.types.is_empty()
                && !item
                    .types
                    .iter()
                    .any(|t| matches!(t, JsonType::Object | JsonType::Array));
            if scalar {
                s.unique_item_types = item.types.clone();
            }
        }
        s.contains = self.sub(map, "contains", path);
    }

    fn object_keywords(&mut self, map: &Map<String, Value>, path: &str, s: &mut SchemaNode) {
        s.max_properties = self.limit(map, "maxProperties", path);
        s.min_properties = self.limit(map, "minProperties", path);
        s.property_names = self.sub(map, "propertyNames", path);
        s.additional_properties = self.sub(map, "additionalProperties", path);

        if let Some(properties) = map.get("properties") {
            match properties {
                Value::Object(properties) => {
                    let mut entries: Vec<(String, Node)> = properties
                        .iter()
                        .map(|(key, value)| {
                            let node = self.node(value, &format!("{path}/properties/{key}"));
                            (key.clone(), node)
                        })
                        .collect();
                    // Ajv walks the schema's JavaScript object: array-index keys come first.
                    js::sort_property_order(&mut entries);
                    let index = PropIndex::build(entries.iter().map(|(k, _)| k.as_str()));
                    s.properties = Properties { entries, index };
                }
                _ => self.invalid("properties", path),
            }
        }
        if let Some(required) = map.get("required") {
            match required {
                Value::Array(names) => {
                    s.required = names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|name| RequiredKey {
                            name: name.to_owned(),
                            property: s.properties.position(name),
                        })
                        .collect();
                }
                _ => self.invalid("required", path),
            }
        }
        if let Some(patterns) = map.get("patternProperties") {
            match patterns {
                Value::Object(patterns) => {
                    let mut patterns: Vec<(&String, &Value)> = patterns.iter().collect();
                    js::sort_property_order(&mut patterns);
                    for (source, value) in patterns {
                        let at = format!("{path}/patternProperties/{source}");
                        let node = self.node(value, &at);
                        if let Some(pattern) = self.pattern(source, &at) {
                            s.pattern_properties.push((pattern, node));
                        }
                    }
                }
                _ => self.invalid("patternProperties", path),
            }
        }
        if let Some(dependencies) = map.get("dependencies") {
            match dependencies {
                Value::Object(dependencies) => {
                    // Ajv checks every property dependency before any schema dependency.
                    let mut schemas = Vec::new();
                    let mut dependencies: Vec<(&String, &Value)> = dependencies.iter().collect();
                    js::sort_property_order(&mut dependencies);
                    for (key, value) in dependencies {
                        match value {
                            Value::Array(names) => s.dependencies.push((
                                key.clone(),
                                Dependency::Properties(
                                    names
                                        .iter()
                                        .filter_map(Value::as_str)
                                        .map(str::to_owned)
                                        .collect(),
                                ),
                            )),
                            other => {
                                let node = self.node(other, &format!("{path}/dependencies/{key}"));
                                schemas.push((key.clone(), Dependency::Schema(node)));
                            }
                        }
                    }
                    s.dependencies.extend(schemas);
                }
                _ => self.invalid("dependencies", path),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn position_after_agrees_with_the_index_in_any_key_order() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string"}, "1": {"type": "string"}, "c": {}
        }});
        let (Node::Schema(s), errors) = compile(&schema, &ValidatorOptions::RUNTIME) else {
            panic!("not a schema object");
        };
        assert!(errors.is_empty());
        // `1` is an array index: Ajv's order puts it first.
        let names = ["1", "a", "b", "c", "x", ""];
        for key in names {
            for previous in [None, Some(0), Some(1), Some(2), Some(3), Some(9)] {
                assert_eq!(
                    s.properties.position_after(key, previous),
                    s.properties.position(key),
                    "{key} after {previous:?}"
                );
            }
        }
        assert_eq!(s.properties.position_after("a", Some(0)), Some(1));
    }
}

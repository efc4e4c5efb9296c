//! Action input fields and destination settings as the reference declares them (`InputField`,
//! `GlobalSetting`): deserialised from its camelCase JSON or built in Rust, kept in definition
//! order because that order drives the schema's key order and the order of errors.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// The `type` of a field (`FieldTypeName`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldType {
    /// `string`: a JSON string.
    #[default]
    String,
    /// `text`: a string with the always-valid `text` format.
    Text,
    /// `password`: a string with the always-valid `password` format.
    Password,
    /// `number`.
    Number,
    /// `integer`.
    Integer,
    /// `boolean`.
    Boolean,
    /// `datetime`: a string or number with the lenient `date-like` format.
    Datetime,
    /// `object`, optionally with sub-fields in `properties`.
    Object,
    /// Any other name; the reference passes it through as the JSON-schema type.
    Other(String),
}

impl FieldType {
    /// The reference's name of the type.
    pub fn as_str(&self) -> &str {
        match self {
            FieldType::String => "string",
            FieldType::Text => "text",
            FieldType::Password => "password",
            FieldType::Number => "number",
            FieldType::Integer => "integer",
            FieldType::Boolean => "boolean",
            FieldType::Datetime => "datetime",
            FieldType::Object => "object",
            FieldType::Other(name) => name,
        }
    }

    /// The type called `name`.
    pub fn from_name(name: &str) -> FieldType {
        match name {
            "string" => FieldType::String,
            "text" => FieldType::Text,
            "password" => FieldType::Password,
            "number" => FieldType::Number,
            "integer" => FieldType::Integer,
            "boolean" => FieldType::Boolean,
            "datetime" => FieldType::Datetime,
            "object" => FieldType::Object,
            other => FieldType::Other(other.to_owned()),
        }
    }
}

impl Serialize for FieldType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(FieldType::from_name(&name))
    }
}

/// `required`: always (or never), or under conditions on other fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Required {
    /// `true` lists the field in the schema's `required`; `false` is the same as absent.
    Always(bool),
    /// Required when the conditions hold (compiled into `if`/`then` clauses).
    When(DependsOnConditions),
}

/// A conditional requirement (`DependsOnConditions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependsOnConditions {
    /// How the conditions combine; absent means all of them.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_mode: Option<MatchMode>,
    /// The conditions, in order.
    pub conditions: Vec<FieldCondition>,
}

/// How several conditions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// Any condition (`anyOf`).
    Any,
    /// Every condition (`allOf`).
    All,
}

/// One condition on another field's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldCondition {
    /// The field the condition looks at; `parent.child` addresses an object's sub-field.
    #[serde(rename = "fieldKey")]
    pub field_key: String,
    /// `is` or `is_not`.
    pub operator: Operator,
    /// The value compared with; absent means "absent or null" (`is`) / "present" (`is_not`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Value>,
}

/// A condition's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    /// The field equals the value.
    #[serde(rename = "is")]
    Is,
    /// The field differs from the value.
    #[serde(rename = "is_not")]
    IsNot,
}

/// One of a field's allowed values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Choice {
    /// A bare value.
    Plain(String),
    /// A value with a display label.
    Labeled {
        /// UI label.
        label: String,
        /// The allowed value.
        value: Value,
    },
}

impl Choice {
    /// The value the choice allows.
    pub fn value(&self) -> Value {
        match self {
            Choice::Plain(value) => Value::String(value.clone()),
            Choice::Labeled { value, .. } => value.clone(),
        }
    }
}

/// Keeps an explicit `null` as `Some(Value::Null)` (JavaScript distinguishes it from absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// An action input field or destination setting, with the reference's keys.
///
/// Build one from JSON (`serde_json::from_value`) or in code:
/// `InputField::string("Company Id").required()`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputField {
    /// Display label; becomes the schema `title` and the subject of error messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Description (schema `description`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The field type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Whether (or when) the field is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Required>,
    /// JSON-schema string format (`email`, `uri`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// UI default (typically a mapping directive); never applied by the runtime.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<Value>,
    /// The field is an array of `field_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple: Option<bool>,
    /// `null` is an accepted value (and survives empty-value removal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_null: Option<bool>,
    /// The allowed values (schema `enum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Choice>>,
    /// `minLength` for strings, `minimum` for numbers (ignored when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Number>,
    /// `maxLength` for strings, `maximum` for numbers (ignored when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Number>,
    /// Sub-fields of an `object` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Fields>,
    /// For `object` fields with `properties`: keep unknown keys (default: removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_properties: Option<bool>,
    /// UI only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// UI only.
    #[serde(
        rename = "unsafe_hidden",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unsafe_hidden: Option<bool>,
    /// UI only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// UI only (`keyvalue`, `object`, …).
    #[serde(
        rename = "defaultObjectUI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_object_ui: Option<String>,
    /// UI only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Every other key of the reference's definition (UI hints), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InputField {
    /// A field of `field_type` with `label`.
    pub fn new(field_type: FieldType, label: impl Into<String>) -> Self {
        InputField {
            label: Some(label.into()),
            field_type,
            ..InputField::default()
        }
    }

    /// A `string` field.
    pub fn string(label: impl Into<String>) -> Self {
        Self::new(FieldType::String, label)
    }

    /// A `text` field.
    pub fn text(label: impl Into<String>) -> Self {
        Self::new(FieldType::Text, label)
    }

    /// A `password` field.
    pub fn password(label: impl Into<String>) -> Self {
        Self::new(FieldType::Password, label)
    }

    /// A `number` field.
    pub fn number(label: impl Into<String>) -> Self {
        Self::new(FieldType::Number, label)
    }

    /// An `integer` field.
    pub fn integer(label: impl Into<String>) -> Self {
        Self::new(FieldType::Integer, label)
    }

    /// A `boolean` field.
    pub fn boolean(label: impl Into<String>) -> Self {
        Self::new(FieldType::Boolean, label)
    }

    /// A `datetime` field.
    pub fn datetime(label: impl Into<String>) -> Self {
        Self::new(FieldType::Datetime, label)
    }

    /// An `object` field with sub-fields.
    pub fn object(label: impl Into<String>, properties: Fields) -> Self {
        InputField {
            properties: Some(properties),
            ..Self::new(FieldType::Object, label)
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Makes the field required.
    pub fn required(mut self) -> Self {
        self.required = Some(Required::Always(true));
        self
    }

    /// Makes the field required under conditions.
    pub fn required_when(mut self, conditions: DependsOnConditions) -> Self {
        self.required = Some(Required::When(conditions));
        self
    }

    /// Sets the string format.
    pub fn format(mut self, format: impl Into<String>) -> Self {
        self.format = Some(format.into());
        self
    }

    /// Sets the UI default (e.g. `json!({"@path": "$.userId"})`).
    pub fn default_value(mut self, default: Value) -> Self {
        self.default = Some(default);
        self
    }

    /// Makes the field an array.
    pub fn multiple(mut self) -> Self {
        self.multiple = Some(true);
        self
    }

    /// Accepts `null`.
    pub fn allow_null(mut self) -> Self {
        self.allow_null = Some(true);
        self
    }

    /// Restricts the values.
    pub fn choices(mut self, choices: Vec<Choice>) -> Self {
        self.choices = Some(choices);
        self
    }

    /// Sets the minimum (length for strings).
    pub fn minimum(mut self, minimum: impl Into<Number>) -> Self {
        self.minimum = Some(minimum.into());
        self
    }

    /// Sets the maximum (length for strings).
    pub fn maximum(mut self, maximum: impl Into<Number>) -> Self {
        self.maximum = Some(maximum.into());
        self
    }

    /// Sets the sub-fields of an object field.
    pub fn properties(mut self, properties: Fields) -> Self {
        self.properties = Some(properties);
        self
    }

    /// Keeps (`true`) or removes (`false`, the default) unknown keys of an object field.
    pub fn additional_properties(mut self, keep: bool) -> Self {
        self.additional_properties = Some(keep);
        self
    }

    /// Marks the field read-only in the UI.
    pub fn read_only(mut self) -> Self {
        self.read_only = Some(true);
        self
    }

    /// Hides the field in the UI.
    pub fn unsafe_hidden(mut self) -> Self {
        self.unsafe_hidden = Some(true);
        self
    }

    /// Sets how the UI edits an object field (`keyvalue`, …).
    pub fn default_object_ui(mut self, ui: impl Into<String>) -> Self {
        self.default_object_ui = Some(ui.into());
        self
    }

    /// Sets the UI placeholder.
    pub fn placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.placeholder = Some(placeholder.into());
        self
    }

    /// Whether `required` is exactly `true`.
    pub fn is_required(&self) -> bool {
        self.required == Some(Required::Always(true))
    }

    /// The conditions when the field is conditionally required.
    pub fn required_conditions(&self) -> Option<&DependsOnConditions> {
        match &self.required {
            Some(Required::When(conditions)) => Some(conditions),
            _ => None,
        }
    }
}

/// Fields in definition order (a JSON object in the reference).
///
/// ```
/// use junction_fields::{Fields, InputField};
/// let fields = Fields::default()
///     .with("type", InputField::string("Event Type").required())
///     .with("sent_at", InputField::datetime("Sent At").required());
/// assert_eq!(fields.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(String, InputField)>);

impl Fields {
    /// Fields from `(key, field)` pairs in order (a repeated key replaces the earlier field
    /// in its position, as in a JavaScript object).
    pub fn new(fields: Vec<(String, InputField)>) -> Self {
        fields.into_iter().collect()
    }

    /// Adds (or replaces) a field.
    pub fn push(&mut self, key: impl Into<String>, field: InputField) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => *existing = field,
            None => self.0.push((key, field)),
        }
    }

    /// Builder form of [`Fields::push`].
    pub fn with(mut self, key: impl Into<String>, field: InputField) -> Self {
        self.push(key, field);
        self
    }

    /// The field with `key`.
    pub fn get(&self, key: &str) -> Option<&InputField> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, field)| field)
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &InputField)> {
        self.0.iter().map(|(key, field)| (key, field))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(key, _)| key.as_str())
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, InputField)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, InputField)>>(iter: I) -> Self {
        let mut fields = Fields::default();
        for (key, field) in iter {
            fields.push(key, field);
        }
        fields
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a String, &'a InputField);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, InputField)>,
        fn(&'a (String, InputField)) -> (&'a String, &'a InputField),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(key, field)| (key, field))
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, field) in &self.0 {
            map.serialize_entry(key, field)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of input fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::default();
                while let Some((key, field)) = access.next_entry::<String, InputField>()? {
                    fields.push(key, field);
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deserialises_reference_json_and_keeps_order_and_ui_keys() {
        let fields: Fields = serde_json::from_value(json!({
            "type": {"label": "Event Type", "type": "string", "required": true,
                     "unsafe_hidden": true, "default": "Send Contact"},
            "company": {"label": "Company", "type": "object", "defaultObjectUI": "keyvalue",
                        "additionalProperties": false, "category": "x",
                        "properties": {"id": {"label": "Company Id", "type": "string", "required": true}}},
            "b": {"label": "b", "type": "string",
                  "required": {"conditions": [{"fieldKey": "a", "operator": "is", "value": null}]}},
            "c": {"label": "c", "type": "string", "choices": ["x", {"label": "Y", "value": 2}]}
        }))
        .unwrap();
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["type", "company", "b", "c"]
        );
        let company = fields.get("company").unwrap();
        assert_eq!(company.default_object_ui.as_deref(), Some("keyvalue"));
        assert_eq!(company.extra.get("category"), Some(&json!("x")));
        assert!(fields.get("type").unwrap().is_required());
        let conditions = fields.get("b").unwrap().required_conditions().unwrap();
        assert_eq!(conditions.conditions[0].value, Some(Value::Null));
        let back = serde_json::to_value(&fields).unwrap();
        assert_eq!(back["type"]["unsafe_hidden"], json!(true));
        assert_eq!(back["company"]["defaultObjectUI"], json!("keyvalue"));
        assert_eq!(back["c"]["choices"][1]["value"], json!(2));
    }

    #[test]
    fn builder_matches_json() {
        let built = Fields::default().with(
            "company",
            InputField::object(
                "Company",
                Fields::default().with("id", InputField::string("Company Id").required()),
            )
            .additional_properties(false)
            .default_object_ui("keyvalue"),
        );
        let parsed: Fields = serde_json::from_value(json!({
            "company": {"label": "Company", "type": "object", "additionalProperties": false,
                        "defaultObjectUI": "keyvalue",
                        "properties": {"id": {"label": "Company Id", "type": "string", "required": true}}}
        }))
        .unwrap();
        assert_eq!(built, parsed);
    }
}

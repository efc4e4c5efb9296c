//! `fieldsToJsonSchema`: the JSON schema the reference derives from a field list — key order,
//! omitted keys and its conditional-`required` clauses included — which the validator then
//! compiles, so the schema text is the single source of truth for validation.

use serde_json::{Map, Number, Value, json};

use crate::field::{
    DependsOnConditions, FieldCondition, FieldType, Fields, InputField, MatchMode, Operator,
};
use crate::js;

const SCHEMA_DRAFT: &str = "http://json-schema.org/schema#";

/// `fieldsToJsonSchema(fields, {additionalProperties, omitRequiredSchemas})`.
pub(crate) fn fields_to_json_schema(
    fields: &Fields,
    additional_properties: bool,
    omit_required: bool,
) -> Value {
    let mut required = Vec::new();
    let mut properties = Map::new();
    // `conditions` is a JavaScript object: a repeated key keeps its first position.
    let mut conditions: Vec<(String, &DependsOnConditions)> = Vec::new();
    let mut add_condition =
        |key: String, condition| match conditions.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = condition,
            None => conditions.push((key, condition)),
        };

    for (key, field) in js_ordered(fields) {
        properties.insert(key.clone(), field_schema(field));
        if let (FieldType::Object, Some(sub_fields)) = (&field.field_type, &field.properties) {
            for (sub_key, sub_field) in js_ordered(sub_fields) {
                if let Some(condition) = sub_field.required_conditions() {
                    add_condition(format!("{key}.{sub_key}"), condition);
                }
            }
        }
        if field.is_required() {
            required.push(Value::String(key.clone()));
        } else if let Some(condition) = field.required_conditions() {
            add_condition(key.clone(), condition);
        }
    }

    let mut schema = Map::new();
    schema.insert("$schema".into(), json!(SCHEMA_DRAFT));
    schema.insert("type".into(), json!("object"));
    schema.insert("additionalProperties".into(), json!(additional_properties));
    schema.insert("properties".into(), Value::Object(properties));
    if omit_required {
        return Value::Object(schema);
    }
    schema.insert("required".into(), Value::Array(required));
    if !conditions.is_empty() {
        // `conditions` is a JavaScript object too: array-index keys come first.
        js::sort_property_order(&mut conditions);
        let clauses = conditions
            .iter()
            .map(|(key, condition)| conditions_to_json_schema(key, condition))
            .collect();
        schema.insert("allOf".into(), Value::Array(clauses));
    }
    Value::Object(schema)
}

/// The fields in the order `Object.entries` gives for the reference's fields object.
fn js_ordered(fields: &Fields) -> Vec<(&String, &InputField)> {
    let mut entries: Vec<(&String, &InputField)> = fields.iter().collect();
    js::sort_property_order(&mut entries);
    entries
}

/// The JSON-schema type of a field type (`toJsonSchemaType`).
fn json_schema_type(field_type: &FieldType) -> Value {
    match field_type {
        FieldType::String | FieldType::Text | FieldType::Password => json!("string"),
        FieldType::Datetime => json!(["string", "number"]),
        other => json!(other.as_str()),
    }
}

fn is_truthy_number(n: &Option<Number>) -> bool {
    n.as_ref()
        .and_then(Number::as_f64)
        .is_some_and(|x| x != 0.0)
}

/// One property's schema, keys in the order the reference's object literal and later
/// assignments produce them.
fn field_schema(field: &InputField) -> Value {
    let base_type = json_schema_type(&field.field_type);
    let multiple = field.multiple == Some(true);
    let allow_null = field.allow_null == Some(true);
    let nested = match (&field.field_type, &field.properties) {
        (FieldType::Object, Some(sub_fields)) => Some(sub_fields),
        _ => None,
    };

    let format = match field.field_type {
        FieldType::Datetime => Some("date-like".to_owned()),
        FieldType::Password => Some("password".to_owned()),
        FieldType::Text => Some("text".to_owned()),
        _ => field.format.clone(),
    };
    let mut enum_values: Option<Vec<Value>> = field
        .choices
        .as_ref()
        .map(|choices| choices.iter().map(|choice| choice.value()).collect());

    let mut schema_type = base_type.clone();
    if allow_null {
        let mut types = match base_type.clone() {
            Value::Array(types) => types,
            single => vec![single],
        };
        types.push(json!("null"));
        schema_type = Value::Array(types);
        if let Some(values) = &mut enum_values {
            values.push(Value::Null);
        }
    }
    if multiple {
        schema_type = json!("array");
    } else if nested.is_some() {
        // The spread of the nested schema overwrites `type` in place.
        schema_type = json!("object");
    }

    let mut schema = Map::new();
    if let Some(label) = &field.label {
        schema.insert("title".into(), json!(label));
    }
    if let Some(description) = &field.description {
        schema.insert("description".into(), json!(description));
    }
    schema.insert("type".into(), schema_type);
    if let Some(format) = format {
        schema.insert("format".into(), json!(format));
    }
    if let Some(default) = &field.default {
        schema.insert("default".into(), default.clone());
    }
    let (min_key, max_key) = match field.field_type {
        FieldType::String => ("minLength", "maxLength"),
        FieldType::Number => ("minimum", "maximum"),
        _ => ("", ""),
    };
    if !min_key.is_empty() {
        if let Some(minimum) = field
            .minimum
            .as_ref()
            .filter(|_| is_truthy_number(&field.minimum))
        {
            schema.insert(min_key.into(), Value::Number(minimum.clone()));
        }
        if let Some(maximum) = field
            .maximum
            .as_ref()
            .filter(|_| is_truthy_number(&field.maximum))
        {
            schema.insert(max_key.into(), Value::Number(maximum.clone()));
        }
    }
    if multiple {
        let items = match nested {
            Some(sub_fields) => nested_schema(field, sub_fields),
            None => {
                let mut items = Map::new();
                items.insert("type".into(), base_type);
                if let Some(values) = enum_values {
                    items.insert("enum".into(), Value::Array(values));
                }
                Value::Object(items)
            }
        };
        schema.insert("items".into(), items);
    } else {
        if let Some(values) = enum_values {
            schema.insert("enum".into(), Value::Array(values));
        }
        if let Some(sub_fields) = nested
            && let Value::Object(sub) = nested_schema(field, sub_fields)
        {
            for (key, value) in sub {
                if key != "type" {
                    schema.insert(key, value);
                }
            }
        }
    }
    Value::Object(schema)
}

fn nested_schema(field: &InputField, sub_fields: &Fields) -> Value {
    let has_conditional = sub_fields
        .iter()
        .any(|(_, sub)| sub.required_conditions().is_some());
    fields_to_json_schema(
        sub_fields,
        field.additional_properties == Some(true),
        has_conditional,
    )
}

/// `{const: value}` or `{not: {const: value}}`; an absent value leaves `const` out (the
/// reference writes `const: undefined`, which Ajv ignores).
fn value_condition(operator: Operator, value: Option<&Value>) -> Value {
    let mut equals = Map::new();
    if let Some(value) = value {
        equals.insert("const".into(), value.clone());
    }
    match operator {
        Operator::Is => Value::Object(equals),
        Operator::IsNot => json!({"not": equals}),
    }
}

/// `parent.child` split the way `fieldKey.split('.')` destructures it.
fn dotted(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.split('.');
    let parent = parts.next()?;
    let child = parts.next()?;
    Some((parent, child))
}

/// `generateThenStatement`.
fn then_required(field_key: &str) -> Value {
    match dotted(field_key) {
        Some((parent, child)) => json!({
            "required": [parent],
            "properties": {parent: {"required": [child]}},
        }),
        None => json!({"required": [field_key]}),
    }
}

fn object_condition(parent: &str, child: &str, condition: &FieldCondition) -> Value {
    json!({
        "properties": {
            parent: {
                "properties": {child: value_condition(condition.operator, condition.value.as_ref())},
                "required": [child],
            }
        },
        "required": [parent],
    })
}

fn simple_condition(key: &str, condition: &FieldCondition) -> Value {
    json!({
        "required": [key],
        "properties": {key: value_condition(condition.operator, condition.value.as_ref())},
    })
}

/// The `if`/`then` clause making `field_key` required under `conditions`.
fn conditions_to_json_schema(field_key: &str, conditions: &DependsOnConditions) -> Value {
    if let [condition] = conditions.conditions.as_slice() {
        return single_condition(field_key, condition);
    }
    let inner: Vec<Value> = conditions
        .conditions
        .iter()
        .map(|condition| match dotted(&condition.field_key) {
            Some((parent, child)) => object_condition(parent, child, condition),
            None => match (&condition.value, condition.operator) {
                (None, Operator::Is) => json!({"not": {"required": [condition.field_key]}}),
                (None, Operator::IsNot) => json!({"required": [condition.field_key]}),
                (Some(_), _) => json!({
                    "properties": {
                        condition.field_key.clone(): value_condition(condition.operator, condition.value.as_ref())
                    },
                    "required": [condition.field_key],
                }),
            },
        })
        .collect();
    let combined = match conditions.match_mode {
        Some(MatchMode::Any) => json!({"anyOf": inner}),
        _ => json!({"allOf": inner}),
    };
    // QUIRK: with several conditions the reference requires the key itself, even a dotted one.
    json!({"if": combined, "then": {"required": [field_key]}})
}

fn single_condition(field_key: &str, condition: &FieldCondition) -> Value {
    let dependent = condition.field_key.as_str();
    let if_schema = match dotted(dependent) {
        Some((parent, child)) => object_condition(parent, child, condition),
        None => match (&condition.value, condition.operator) {
            (None, Operator::Is) => json!({"anyOf": [
                {"not": {"required": [dependent]}},
                {"properties": {dependent: {"type": "null"}}},
            ]}),
            (None, Operator::IsNot) => json!({"allOf": [
                {"required": [dependent]},
                {"not": {"properties": {dependent: {"type": "null"}}}},
            ]}),
            (Some(_), _) => simple_condition(dependent, condition),
        },
    };
    json!({"if": if_schema, "then": then_required(field_key)})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(fields: Value) -> Value {
        let fields: Fields = serde_json::from_value(fields).unwrap();
        fields_to_json_schema(&fields, false, false)
    }

    #[test]
    fn field_keys_follow_the_reference_order() {
        let schema = schema_of(json!({
            "s": {"label": "S", "description": "d", "type": "string", "minimum": 2,
                  "maximum": 0, "choices": ["a"], "allowNull": true, "default": "x"},
        }));
        let s = &schema["properties"]["s"];
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "title",
                "description",
                "type",
                "default",
                "minLength",
                "enum"
            ]
        );
        assert_eq!(s["type"], json!(["string", "null"]));
        assert_eq!(s["enum"], json!(["a", null]));
    }

    #[test]
    fn multiple_moves_enum_to_items() {
        let schema = schema_of(json!({
            "m": {"label": "M", "type": "number", "multiple": true, "choices": ["1"], "minimum": 1},
        }));
        assert_eq!(
            schema["properties"]["m"],
            json!({"title": "M", "type": "array", "minimum": 1, "items": {"type": "number", "enum": ["1"]}})
        );
    }

    #[test]
    fn conditional_required_clauses() {
        let schema = schema_of(json!({
            "a": {"label": "a", "type": "string"},
            "b": {"label": "b", "type": "string",
                  "required": {"conditions": [{"fieldKey": "a", "operator": "is", "value": "x"}]}},
            "c": {"label": "c", "type": "string",
                  "required": {"conditions": [{"fieldKey": "a", "operator": "is_not"}]}},
            "d": {"label": "d", "type": "string",
                  "required": {"match": "any", "conditions": [
                      {"fieldKey": "a", "operator": "is", "value": "x"},
                      {"fieldKey": "o.p", "operator": "is_not", "value": 1}]}},
        }));
        assert_eq!(
            schema["allOf"],
            json!([
                {"if": {"required": ["a"], "properties": {"a": {"const": "x"}}},
                 "then": {"required": ["b"]}},
                {"if": {"allOf": [{"required": ["a"]},
                                  {"not": {"properties": {"a": {"type": "null"}}}}]},
                 "then": {"required": ["c"]}},
                {"if": {"anyOf": [
                    {"properties": {"a": {"const": "x"}}, "required": ["a"]},
                    {"properties": {"o": {"properties": {"p": {"not": {"const": 1}}}, "required": ["p"]}},
                     "required": ["o"]}]},
                 "then": {"required": ["d"]}},
            ])
        );
    }

    #[test]
    fn nested_conditional_required_is_lifted_to_the_parent() {
        let schema = schema_of(json!({
            "o": {"label": "O", "type": "object", "properties": {
                "k": {"label": "K", "type": "string"},
                "v": {"label": "V", "type": "string", "required": true},
                "w": {"label": "W", "type": "string",
                      "required": {"conditions": [{"fieldKey": "o.k", "operator": "is", "value": "y"}]}}}},
        }));
        let o = &schema["properties"]["o"];
        assert!(
            o.get("required").is_none(),
            "omitRequiredSchemas drops the nested list"
        );
        assert_eq!(
            schema["allOf"],
            json!([{
                "if": {"properties": {"o": {"properties": {"k": {"const": "y"}}, "required": ["k"]}},
                       "required": ["o"]},
                "then": {"required": ["o"], "properties": {"o": {"required": ["w"]}}},
            }])
        );
    }
}

//! Action field schemas compiled into validators that behave like the reference runtime
//! (Segment's destination-kit: `fieldsToJsonSchema`, `removeEmptyValues`, Ajv 8 with
//! `coerceTypes: "array"` and `removeAdditional`, ajv-formats, ajv-human-errors). Pure: no IO.
//!
//! ```
//! use junction_fields::{Fields, InputField, Schema};
//! use serde_json::json;
//!
//! let fields = Fields::default()
//!     .with("message_id", InputField::string("MessageId").required())
//!     .with("sent_at", InputField::datetime("Sent At").required())
//!     .with(
//!         "company",
//!         InputField::object(
//!             "Company",
//!             Fields::default().with("id", InputField::string("Company Id").required()),
//!         ),
//!     );
//! let schema = Schema::from_fields(&fields);
//! let payload = schema
//!     .process(json!({"message_id": 7, "sent_at": "2024-01-01T10:00:00Z", "extra": "", "x": 1}))
//!     .unwrap();
//! assert_eq!(payload, json!({"message_id": "7", "sent_at": "2024-01-01T10:00:00Z"}));
//!
//! let err = schema.process(json!({"message_id": "1", "company": {}})).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "The root value is missing the required field 'sent_at'. \
//!      Company is missing the required field 'id'."
//! );
//! ```

mod compile;
mod error;
mod field;
mod formats;
mod generate;
mod js;
mod messages;
mod props;
mod remove_empty;
mod validate;

use serde_json::Value;

pub use error::{SchemaError, ValidationError};
pub use field::{
    Choice, DependsOnConditions, FieldCondition, FieldType, Fields, InputField, MatchMode,
    Operator, Required,
};
pub use formats::check_format;
pub use messages::FieldLabels;

use compile::Node;

/// The payload member the runtime exempts from validation (`exempt: ["dynamicAuthSettings"]`).
const EXEMPT_KEY: &str = "dynamicAuthSettings";

/// How the validator behaves (the reference's Ajv options plus ajv-human-errors'
/// `fieldLabels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorOptions {
    /// Ajv `coerceTypes: "array"`: scalars are coerced to the schema's type, one-element
    /// arrays unwrapped, scalars wrapped where an array is expected.
    pub coerce_types: bool,
    /// Ajv `removeAdditional: true`: keys not allowed by `additionalProperties: false` are
    /// deleted instead of reported.
    pub remove_additional: bool,
    /// How messages name the failing value.
    pub field_labels: FieldLabels,
}

impl ValidatorOptions {
    /// The runtime's validator (payloads and settings).
    pub const RUNTIME: ValidatorOptions = ValidatorOptions {
        coerce_types: true,
        remove_additional: true,
        field_labels: FieldLabels::Title,
    };

    /// A bare Ajv (`allErrors`, `verbose`, formats; no coercion, nothing removed), as
    /// ajv-human-errors' own tests use it.
    pub const PLAIN: ValidatorOptions = ValidatorOptions {
        coerce_types: false,
        remove_additional: false,
        field_labels: FieldLabels::Title,
    };
}

impl Default for ValidatorOptions {
    fn default() -> Self {
        ValidatorOptions::RUNTIME
    }
}

/// A compiled field schema: built once (JSON schema, formats, patterns, lookup tables) and used
/// for any number of payloads, from any thread.
#[derive(Debug, Clone)]
pub struct Schema {
    json: Value,
    root: Node,
    options: ValidatorOptions,
    /// Top-level properties whose `type` is exactly `"array"` (wrapped before validation).
    arrify: Vec<String>,
}

impl Schema {
    /// The schema of a field list (`fieldsToJsonSchema(fields)`), with the runtime's options.
    pub fn from_fields(fields: &Fields) -> Schema {
        let json = generate::fields_to_json_schema(fields, false, false);
        // A generated schema uses no pattern and no `$ref`, so it always compiles.
        let (root, _) = compile::compile(&json, &ValidatorOptions::RUNTIME);
        Schema::assemble(json, root, ValidatorOptions::RUNTIME)
    }

    /// Compiles a raw JSON schema with the runtime's options.
    pub fn from_json_schema(schema: &Value) -> Result<Schema, SchemaError> {
        Schema::from_json_schema_with(schema, ValidatorOptions::RUNTIME)
    }

    /// Compiles a raw JSON schema with the given options. Supported: `type`, `nullable`,
    /// `const`, `enum`, `not`, `anyOf`, `oneOf`, `allOf`, `if`/`then`/`else`, the numeric,
    /// string, array and object keywords of draft 7 (`dependencies` included), `format`, and
    /// ajv-human-errors' `errorMessage` and `patternLabel`; not `$ref`.
    pub fn from_json_schema_with(
        schema: &Value,
        options: ValidatorOptions,
    ) -> Result<Schema, SchemaError> {
        let (root, mut errors) = compile::compile(schema, &options);
        if !errors.is_empty() {
            return Err(errors.swap_remove(0));
        }
        Ok(Schema::assemble(schema.clone(), root, options))
    }

    fn assemble(json: Value, root: Node, options: ValidatorOptions) -> Schema {
        let arrify = match &root {
            Node::Schema(s) => s
                .properties
                .entries
                .iter()
                .filter(|(_, node)| matches!(node, Node::Schema(p) if p.type_is_array))
                .map(|(key, _)| key.clone())
                .collect(),
            Node::Bool(_) => Vec::new(),
        };
        Schema {
            json,
            root,
            options,
            arrify,
        }
    }

    /// The JSON schema (for fields: exactly what `fieldsToJsonSchema` returns).
    pub fn json_schema(&self) -> Value {
        self.json.clone()
    }

    /// The options the schema was compiled with.
    pub fn options(&self) -> ValidatorOptions {
        self.options
    }

    /// `removeEmptyValues(value, schema, is_root)`: drops `null` where the schema does not
    /// list `"null"`, `""` where it does not list `"string"` and, at the root, every `""`.
    /// `None` when the value itself is removed.
    pub fn remove_empty_values(&self, value: Value, is_root: bool) -> Option<Value> {
        let mut value = value;
        remove_empty::clean(&self.root, &mut value, is_root).then_some(value)
    }

    /// The runtime's `validateSchema`: wraps top-level scalars of array fields, validates
    /// (coercing and removing unknown keys in place), then puts `dynamicAuthSettings` back the
    /// way the reference does.
    pub fn validate(&self, payload: &mut Value) -> Result<(), ValidationError> {
        let exempt = match payload {
            // A scan beats hashing the key for the few keys a payload has.
            Value::Object(map) if map.keys().any(|k| k == EXEMPT_KEY) => {
                map.get(EXEMPT_KEY).cloned()
            }
            _ => None,
        };
        self.arrify_fields(payload);
        let result = validate::run(&self.root, payload, &self.options);
        if let (Some(saved), Value::Object(map)) = (exempt, payload) {
            // The reference restores the value it saved *by reference*: an object or array
            // validated in place keeps its changes (an object wrapped by `arrifyFields` is the
            // array's element); a replaced scalar or a removed member comes back as it was.
            let current = map.get_mut(EXEMPT_KEY);
            let restored = match (saved, current) {
                (Value::Object(_), Some(current @ Value::Object(_)))
                | (Value::Array(_), Some(current @ Value::Array(_))) => Some(current.take()),
                (Value::Object(_), Some(Value::Array(items)))
                    if self.arrify.iter().any(|k| k == EXEMPT_KEY)
                        && items.first().is_some_and(Value::is_object) =>
                {
                    items.first_mut().map(Value::take)
                }
                (saved, _) => Some(saved),
            };
            if let Some(value) = restored {
                map.insert(EXEMPT_KEY.to_owned(), value);
            }
        }
        result
    }

    /// Only the Ajv step of [`Schema::validate`] (no array wrapping, nothing exempt).
    pub fn validate_value(&self, value: &mut Value) -> Result<(), ValidationError> {
        validate::run(&self.root, value, &self.options)
    }

    /// `Action.execute` steps 2–3: [`Schema::remove_empty_values`] at the root, then
    /// [`Schema::validate`]; returns the cleaned, coerced payload.
    pub fn process(&self, payload: Value) -> Result<Value, ValidationError> {
        let Some(mut payload) = self.remove_empty_values(payload, true) else {
            return Err(self.undefined_root_error());
        };
        self.validate(&mut payload)?;
        Ok(payload)
    }

    /// Ajv on `undefined` (the whole payload was an empty value): the root type error.
    fn undefined_root_error(&self) -> ValidationError {
        let message = match &self.root {
            Node::Schema(s) if !s.types.is_empty() => {
                let preamble =
                    messages::preamble(s.title.as_deref(), "", self.options.field_labels);
                let body = s
                    .error_message
                    .clone()
                    .unwrap_or_else(|| validate::type_error_message(s, "undefined"));
                messages::sentence(&preamble, &body)
            }
            _ => messages::sentence("the root value", "must be an object but it was undefined"),
        };
        ValidationError {
            messages: vec![message],
        }
    }

    /// `arrifyFields`: a top-level non-array value of a field whose type is `"array"` becomes a
    /// one-element array (`null` stays `null`).
    fn arrify_fields(&self, payload: &mut Value) {
        if self.arrify.is_empty() {
            return;
        }
        let Value::Object(map) = payload else { return };
        for key in &self.arrify {
            if let Some(value) = map.get_mut(key)
                && !value.is_array()
                && !value.is_null()
            {
                *value = Value::Array(vec![value.take()]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(fields: Value) -> Schema {
        Schema::from_fields(&serde_json::from_value(fields).unwrap())
    }

    #[test]
    fn schema_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Schema>();
    }

    #[test]
    fn exempt_member_is_restored() {
        let s = schema(json!({"a": {"label": "A", "type": "string"}}));
        let mut payload = json!({"dynamicAuthSettings": {"x": 1}, "a": 1, "b": 2});
        s.validate(&mut payload).unwrap();
        assert_eq!(payload, json!({"a": "1", "dynamicAuthSettings": {"x": 1}}));

        // A declared member is validated like any other; a scalar is then restored unchanged,
        // an object keeps what validation did to it.
        let s = schema(
            json!({"dynamicAuthSettings": {"label": "D", "type": "string", "required": true}}),
        );
        let mut payload = json!({"dynamicAuthSettings": 5});
        s.validate(&mut payload).unwrap();
        assert_eq!(payload, json!({"dynamicAuthSettings": 5}));
        let mut payload = json!({"dynamicAuthSettings": {}});
        assert_eq!(
            s.validate(&mut payload).unwrap_err().to_string(),
            "D must be a string but it was an object."
        );
        let s = schema(
            json!({"dynamicAuthSettings": {"label": "D", "type": "object",
                                                      "properties": {"a": {"label": "A", "type": "string"}}}}),
        );
        let mut payload = json!({"dynamicAuthSettings": {"a": 1, "b": 2}});
        s.validate(&mut payload).unwrap();
        assert_eq!(payload, json!({"dynamicAuthSettings": {"a": "1"}}));
    }

    #[test]
    fn array_fields_are_wrapped_before_validation() {
        let s = schema(json!({"tags": {"label": "Tags", "type": "string", "multiple": true}}));
        assert_eq!(
            s.process(json!({"tags": 5})).unwrap(),
            json!({"tags": ["5"]})
        );
        assert_eq!(
            s.process(json!({"tags": [1, "a"]})).unwrap(),
            json!({"tags": ["1", "a"]})
        );
    }

    #[test]
    fn errors_keep_schema_order_whatever_the_payload_order() {
        let s = schema(json!({
            "a": {"label": "A", "type": "number"},
            "b": {"label": "B", "type": "number"},
        }));
        let err = s.process(json!({"b": "x", "a": "y"})).unwrap_err();
        assert_eq!(
            err.messages,
            [
                "A must be a number but it was a string.",
                "B must be a number but it was a string."
            ]
        );
    }

    #[test]
    fn undefined_root() {
        let s = schema(json!({"a": {"label": "A", "type": "string"}}));
        let err = s.process(json!("")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "The root value must be an object but it was undefined."
        );
    }

    #[test]
    fn settings_schema_messages() {
        let s = schema(json!({
            "chartmogul_webhook_url": {"label": "ChartMogul webhook URL", "type": "string",
                                       "format": "uri", "required": true,
                                       "description": "Copy the webhook URL from ChartMogul and paste it here"}
        }));
        let mut empty = json!({});
        assert_eq!(
            s.validate(&mut empty).unwrap_err().to_string(),
            "The root value is missing the required field 'chartmogul_webhook_url'."
        );
        let mut bad = json!({"chartmogul_webhook_url": "not a url", "subscription": {}});
        assert_eq!(
            s.validate(&mut bad).unwrap_err().to_string(),
            "ChartMogul webhook URL must be a valid URI string but it was not."
        );
        let mut good = json!({"chartmogul_webhook_url": "http://x.y/z", "subscription": {"a": 1}});
        s.validate(&mut good).unwrap();
        assert_eq!(good, json!({"chartmogul_webhook_url": "http://x.y/z"}));
    }
}

//! `Schema::json_schema` reproduces `fieldsToJsonSchema` for the ChartMogul definitions
//! (`chartmogul.json` → `generated_json_schemas`), key order included, whether the fields are
//! built in Rust or read from the reference's JSON.

// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use junction_fields::{Fields, InputField, Schema};
use serde_json::{Value, json};

fn generated(name: &str) -> Value {
    let path = junction_spec_vectors::vectors_dir().join("chartmogul.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    document["generated_json_schemas"][name].clone()
}

/// Equal as JSON values and with the same key order in every object.
fn assert_same(got: &Value, expected: &Value, at: &str) {
    assert_eq!(got, expected, "value at {at}");
    match (got, expected) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            assert_eq!(ka, kb, "key order at {at}");
            for (key, value) in a {
                assert_same(value, &b[key], &format!("{at}/{key}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same(x, y, &format!("{at}/{i}"));
            }
        }
        _ => {}
    }
}

fn path(p: &str) -> Value {
    json!({ "@path": p })
}

fn common(event_type: &str, user_id_required: bool) -> Fields {
    let mut user_id = InputField::string("User Id")
        .description("Segment User Id")
        .default_value(path("$.userId"))
        .read_only();
    if user_id_required {
        user_id = user_id.required();
    }
    Fields::default()
        .with(
            "type",
            InputField::string("Event Type")
                .description("The type of event")
                .required()
                .unsafe_hidden()
                .default_value(json!(event_type)),
        )
        .with(
            "message_id",
            InputField::string("MessageId")
                .description("The Segment message id")
                .required()
                .default_value(path("$.messageId")),
        )
        .with(
            "timestamp",
            InputField::datetime("Event Timestamp")
                .description("The timestamp at which the event was created")
                .required()
                .default_value(path("$.timestamp")),
        )
        .with(
            "sent_at",
            InputField::datetime("Sent At")
                .description("When the event was sent")
                .required()
                .default_value(path("$.sentAt")),
        )
        .with("user_id", user_id)
}

fn trait_field(label: &str, description: &str, trait_path: &str) -> InputField {
    InputField::string(label)
        .description(description)
        .default_value(path(trait_path))
}

#[test]
fn send_contact_built_in_rust() {
    let fields = common("Send Contact", false)
        .with(
            "anonymous_id",
            InputField::string("Anonymous Id")
                .description("Segment Anonymous Id")
                .default_value(path("$.anonymousId"))
                .read_only(),
        )
        .with(
            "email",
            trait_field("Email", "The user's email", "$.traits.email").format("email"),
        )
        .with(
            "first_name",
            trait_field("First Name", "The contact's first name", "$.traits.first_name"),
        )
        .with(
            "last_name",
            trait_field("Last Name", "The contact's last name", "$.traits.last_name"),
        )
        .with(
            "name",
            trait_field(
                "Full Name",
                "The contact's full name. It is used if first_name and last_name are not provided.",
                "$.traits.name",
            ),
        )
        .with(
            "title",
            trait_field("Title", "The contact's job or personal title", "$.traits.title"),
        )
        .with(
            "phone",
            trait_field("Phone Number", "The contact's phone number", "$.traits.phone"),
        )
        .with(
            "linked_in",
            trait_field("LinkedIn", "The contact's LinkedIn URL", "$.traits.linkedIn")
                .format("uri"),
        )
        .with(
            "twitter",
            trait_field(
                "Twitter (X)",
                "The contact's Twitter (X) URL or handle",
                "$.traits.twitter",
            ),
        )
        .with(
            "company",
            InputField::object(
                "Company",
                Fields::default()
                    .with("id", InputField::string("Company Id").required())
                    .with("name", InputField::string("Company Name")),
            )
            .description(
                "The contact's Company. It creates a Customer in ChartMogul if the company id is present.",
            )
            .default_value(json!({
                "id": {"@path": "$.traits.company.id"},
                "name": {"@path": "$.traits.company.name"},
            }))
            .additional_properties(false)
            .default_object_ui("keyvalue"),
        );
    let schema = Schema::from_fields(&fields).json_schema();
    assert_same(&schema, &generated("sendContact"), "#");
}

#[test]
fn send_customer_from_reference_json() {
    let fields: Fields = serde_json::from_value(json!({
        "type": {"label": "Event Type", "description": "The type of event", "type": "string",
                 "required": true, "unsafe_hidden": true, "default": "Send Customer"},
        "message_id": {"label": "MessageId", "description": "The Segment message id",
                       "type": "string", "required": true, "default": {"@path": "$.messageId"}},
        "timestamp": {"label": "Event Timestamp",
                      "description": "The timestamp at which the event was created",
                      "type": "datetime", "required": true, "default": {"@path": "$.timestamp"}},
        "sent_at": {"label": "Sent At", "description": "When the event was sent",
                    "type": "datetime", "required": true, "default": {"@path": "$.sentAt"}},
        "user_id": {"label": "User Id", "description": "Segment User Id", "type": "string",
                    "required": true, "readOnly": true, "default": {"@path": "$.userId"}},
        "group_id": {"label": "Group Id", "description": "Segment Group Id", "type": "string",
                     "required": true, "default": {"@path": "$.groupId"}},
        "name": {"label": "Name", "description": "The company's name", "type": "string",
                 "default": {"@path": "$.traits.name"}},
        "description": {"label": "Description", "description": "The company's name",
                        "type": "string", "default": {"@path": "$.traits.description"}},
        "email": {"label": "Email", "description": "The company's email", "type": "string",
                  "format": "email", "default": {"@path": "$.traits.email"}},
        "website": {"label": "Website", "description": "The company's website URL",
                    "type": "string", "format": "uri-reference",
                    "default": {"@path": "$.traits.website"}},
        "created_at": {"label": "Created at",
                       "description": "Date the group\u{2019}s account was first created",
                       "type": "datetime", "default": {"@path": "$.traits.createdAt"}},
        "address": {
            "label": "Address", "description": "The company\u{2019}s address details",
            "type": "object", "defaultObjectUI": "keyvalue",
            "default": {"street": {"@path": "$.traits.address.street"},
                        "city": {"@path": "$.traits.address.city"},
                        "state": {"@path": "$.traits.address.state"},
                        "postal_code": {"@path": "$.traits.address.postalCode"},
                        "country": {"@path": "$.traits.address.country"}},
            "properties": {
                "street": {"label": "Street", "description": "The company\u{2019}s street address", "type": "string"},
                "city": {"label": "City", "description": "The company\u{2019}s city", "type": "string"},
                "state": {"label": "State", "description": "The company\u{2019}s state or region", "type": "string"},
                "postal_code": {"label": "Postal code", "description": "The company\u{2019}s zip or postal code", "type": "string"},
                "country": {"label": "Country", "description": "The company\u{2019}s country", "type": "string"}
            }
        }
    }))
    .unwrap();
    let schema = Schema::from_fields(&fields).json_schema();
    assert_same(&schema, &generated("sendCustomer"), "#");
}

#[test]
fn settings_from_reference_json() {
    let fields: Fields = serde_json::from_value(json!({
        "chartmogul_webhook_url": {
            "label": "ChartMogul webhook URL",
            "description": "Copy the webhook URL from ChartMogul and paste it here",
            "type": "string", "format": "uri", "required": true
        }
    }))
    .unwrap();
    let schema = Schema::from_fields(&fields).json_schema();
    assert_same(&schema, &generated("settings"), "#");
}

//! ChartMogul (Actions): POSTs contacts (`sendContact`) and customers (`sendCustomer`) as JSON to
//! the webhook URL ChartMogul gives its users (`shared/spec/chartmogul.md`).

use serde_json::{Map, Value, json};

use crate::definition::{
    ActionSpec, DefinitionError, DestinationDefinition, DestinationSpec, MappingPreset,
    PerformInput, Settings,
};
use crate::error::ActionError;
use crate::request::HttpRequest;

/// The destination type's slug.
pub const SLUG: &str = "actions-chartmogul";
/// The setting that holds the webhook URL (its path and query carry a token: a secret).
pub const WEBHOOK_URL: &str = "chartmogul_webhook_url";

/// The ChartMogul destination definition.
pub fn definition() -> Result<DestinationDefinition, DefinitionError> {
    DestinationDefinition::new(DestinationSpec {
        name: "ChartMogul",
        integration_aliases: &["Chart Mogul"],
        slug: SLUG,
        description: "Send Contacts and Customers to ChartMogul.",
        settings_fields: json!({
            WEBHOOK_URL: {
                "label": "ChartMogul webhook URL",
                "description": "Copy the webhook URL from ChartMogul and paste it here",
                "type": "string",
                "format": "uri",
                "required": true
            }
        }),
        secret_settings: &[WEBHOOK_URL],
        actions: vec![send_contact(), send_customer()],
        test_authentication: Some(test_authentication),
        presets: vec![audience_preset()],
    })
}

/// The id of the preset that sends audiences and computed traits to ChartMogul.
pub const AUDIENCE_PRESET: &str = "audience_attributes";

/// Audiences and computed traits as ChartMogul custom attributes: a Send Contact for the
/// `identify` calls of audience syncs (they carry `context.personas`), with every trait of the
/// call (the audience's key and value, and the email) in `custom_attributes`.
fn audience_preset() -> MappingPreset {
    MappingPreset {
        id: AUDIENCE_PRESET,
        name: "Audiences and computed traits",
        description: "Sends each audience membership (true/false) and computed trait value as \
                      a ChartMogul contact custom attribute named after its key",
        action: "sendContact",
        trigger: "type = \"identify\" and context.personas.computation_key != null",
        mapping: json!({"custom_attributes": {"@path": "$.traits"}}),
    }
}

fn test_authentication(settings: &Settings) -> Result<HttpRequest, String> {
    const NOT_CONFIGURED: &str = "Please configure the ChartMogul webhook URL.";
    let url = settings.str(WEBHOOK_URL).unwrap_or_default();
    if !url.starts_with("https://") {
        return Err(NOT_CONFIGURED.to_owned());
    }
    HttpRequest::post_json(url, json!({})).map_err(|_| NOT_CONFIGURED.to_owned())
}

/// The fields both actions share (`common_fields.ts`), with the action's own event type.
fn common_fields(event_type: &str, user_id_required: bool) -> Map<String, Value> {
    let fields = json!({
        "type": {
            "label": "Event Type",
            "description": "The type of event",
            "type": "string",
            "required": true,
            "unsafe_hidden": true,
            "default": event_type
        },
        "message_id": {
            "label": "MessageId",
            "description": "The Segment message id",
            "type": "string",
            "required": true,
            "default": {"@path": "$.messageId"}
        },
        "timestamp": {
            "label": "Event Timestamp",
            "description": "The timestamp at which the event was created",
            "type": "datetime",
            "required": true,
            "default": {"@path": "$.timestamp"}
        },
        "sent_at": {
            "label": "Sent At",
            "description": "When the event was sent",
            "type": "datetime",
            "required": true,
            "default": {"@path": "$.sentAt"}
        },
        "user_id": {
            "label": "User Id",
            "description": "Segment User Id",
            "type": "string",
            "required": user_id_required,
            "readOnly": true,
            "default": {"@path": "$.userId"}
        }
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The optional free-form object both actions accept so users can map extra traits (for
/// example Engage audience booleans). It has no default, so default payloads are unchanged.
fn custom_attributes_field() -> Value {
    json!({
        "label": "Custom Attributes",
        "description": "Extra attributes to send to ChartMogul, as key-value pairs",
        "type": "object",
        "defaultObjectUI": "keyvalue"
    })
}

fn with_fields(mut base: Map<String, Value>, more: Value) -> Value {
    if let Value::Object(more) = more {
        base.extend(more);
    }
    Value::Object(base)
}

fn send_contact() -> ActionSpec {
    let fields = with_fields(
        common_fields("Send Contact", false),
        json!({
            "anonymous_id": {
                "label": "Anonymous Id",
                "description": "Segment Anonymous Id",
                "type": "string",
                "readOnly": true,
                "default": {"@path": "$.anonymousId"}
            },
            "email": {"label": "Email", "description": "The user's email", "type": "string",
                      "format": "email", "default": {"@path": "$.traits.email"}},
            "first_name": {"label": "First Name", "description": "The contact's first name",
                           "type": "string", "default": {"@path": "$.traits.first_name"}},
            "last_name": {"label": "Last Name", "description": "The contact's last name",
                          "type": "string", "default": {"@path": "$.traits.last_name"}},
            "name": {"label": "Full Name",
                     "description": "The contact's full name. It is used if first_name and last_name are not provided.",
                     "type": "string", "default": {"@path": "$.traits.name"}},
            "title": {"label": "Title", "description": "The contact's job or personal title", "type": "string",
                      "default": {"@path": "$.traits.title"}},
            "phone": {"label": "Phone Number", "description": "The contact's phone number",
                      "type": "string", "default": {"@path": "$.traits.phone"}},
            "linked_in": {"label": "LinkedIn", "description": "The contact's LinkedIn URL",
                          "type": "string", "format": "uri",
                          "default": {"@path": "$.traits.linkedIn"}},
            "twitter": {"label": "Twitter (X)", "description": "The contact's Twitter (X) URL or handle",
                        "type": "string", "default": {"@path": "$.traits.twitter"}},
            "company": {
                "label": "Company",
                "description": "The contact's Company. It creates a Customer in ChartMogul if the company id is present.",
                "type": "object",
                "defaultObjectUI": "keyvalue",
                "additionalProperties": false,
                "properties": {
                    "id": {"label": "Company Id", "type": "string", "required": true},
                    "name": {"label": "Company Name", "type": "string"}
                },
                "default": {
                    "id": {"@path": "$.traits.company.id"},
                    "name": {"@path": "$.traits.company.name"}
                }
            },
            "custom_attributes": custom_attributes_field()
        }),
    );
    ActionSpec {
        slug: "sendContact",
        title: "Send Contact",
        description: "Send a Contact to ChartMogul CRM",
        default_trigger: "type = \"identify\"",
        fields,
        prepare: drop_company_without_id,
        perform: perform_send_contact,
    }
}

/// Divergence D1: the reference meant to drop a company without an id (its perform does so),
/// but validated first, so every identify without `traits.company.id` was rejected. Dropping it
/// before validation delivers the rest of the contact.
fn drop_company_without_id(payload: &mut Map<String, Value>) {
    // One pass over the keys: hashing "company" with serde_json's SipHash costs more than
    // comparing a dozen short keys.
    let without_id = payload.iter().any(|(key, value)| {
        key == "company"
            && matches!(value, Value::Object(company)
                if matches!(company.get("id"), None | Some(Value::Null))
                    || company.get("id") == Some(&Value::String(String::new())))
    });
    if without_id {
        payload.shift_remove("company");
    }
}

fn payload_error(message: &str) -> ActionError {
    ActionError::Payload {
        message: message.to_owned(),
    }
}

fn perform_send_contact(input: PerformInput<'_>) -> Result<HttpRequest, ActionError> {
    let mut payload = input.payload;
    let (mut has_id, mut company_without_id) = (false, false);
    for (key, value) in &payload {
        match key.as_str() {
            "user_id" | "anonymous_id" => has_id |= junction_js::is_truthy(value),
            "company" => {
                company_without_id = matches!(value, Value::Object(company) if !company.get("id").is_some_and(junction_js::is_truthy));
            }
            _ => {}
        }
    }
    if !has_id {
        return Err(payload_error(
            "The user_id and/or anonymous_id must be present.",
        ));
    }
    if company_without_id {
        payload.shift_remove("company");
    }
    // Four required keys and one id carry nothing ChartMogul can use.
    if payload.len() <= 5 {
        return Err(payload_error(
            "The event contains no information of interest to Chartmogul.",
        ));
    }
    post(input.settings, payload)
}

fn send_customer() -> ActionSpec {
    let fields = with_fields(
        common_fields("Send Customer", true),
        json!({
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
                           "description": "Date the group’s account was first created",
                           "type": "datetime", "default": {"@path": "$.traits.createdAt"}},
            "address": {
                "label": "Address",
                "description": "The company’s address details",
                "type": "object",
                "defaultObjectUI": "keyvalue",
                "properties": {
                    "street": {"label": "Street", "description": "The company’s street address", "type": "string"},
                    "city": {"label": "City", "description": "The company’s city", "type": "string"},
                    "state": {"label": "State", "description": "The company’s state or region", "type": "string"},
                    "postal_code": {"label": "Postal code", "description": "The company’s zip or postal code", "type": "string"},
                    "country": {"label": "Country", "description": "The company’s country", "type": "string"}
                },
                "default": {
                    "street": {"@path": "$.traits.address.street"},
                    "city": {"@path": "$.traits.address.city"},
                    "state": {"@path": "$.traits.address.state"},
                    "postal_code": {"@path": "$.traits.address.postalCode"},
                    "country": {"@path": "$.traits.address.country"}
                }
            },
            "custom_attributes": custom_attributes_field()
        }),
    );
    ActionSpec {
        slug: "sendCustomer",
        title: "Send Customer",
        description: "Send a Customer (company) to ChartMogul CRM",
        default_trigger: "type = \"group\"",
        fields,
        prepare: |_| {},
        perform: |input| post(input.settings, input.payload),
    }
}

fn post(settings: &Settings, payload: Map<String, Value>) -> Result<HttpRequest, ActionError> {
    let url = settings.url(WEBHOOK_URL).map_err(ActionError::Fetch)?;
    Ok(
        HttpRequest::post_json_normalised(url.to_owned(), Value::Object(payload))
            .with_url_from_setting(WEBHOOK_URL),
    )
}

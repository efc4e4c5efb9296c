//! Evaluating one subscription against one event without sending anything: whether it matched,
//! the request it would send, or why it sends none. Shared by `junction eval` and the admin API's
//! testers, so both report the same outcomes in the same words.

use junction_fields::ValidationError;
use serde::Serialize;
use serde_json::Value;

use crate::definition::Settings;
use crate::error::ActionError;
use crate::request::{HttpRequest, reason_phrase};
use crate::subscription::Subscription;

/// What happened to one subscription for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The request was built and is waiting to be sent (see [`Evaluation::answered`]).
    Ready,
    /// The request was sent and the webhook answered 2xx.
    Sent,
    /// The trigger did not match.
    NotSubscribed,
    /// The subscription is disabled.
    Disabled,
    /// The subscription does not compile (unknown action, missing or invalid trigger, invalid
    /// mapping).
    InvalidSubscription,
    /// The destination's settings fail validation.
    SettingsError,
    /// The payload fails the action's field schema.
    SchemaError,
    /// The mapping failed while resolving this event.
    MappingError,
    /// The action's own rules rejected the payload.
    PayloadError,
    /// The webhook answered with a non-2xx status.
    HttpError,
    /// The request could not be made (a URL that is not `http(s)`, a network failure).
    FetchError,
}

/// Why a subscription produced no delivered request: a message and the status the reference
/// attaches to it (`None` for failures without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// What went wrong, in the reference's words where it has them.
    pub message: String,
    /// The status that classifies the error, if any.
    pub status: Option<u16>,
}

/// The evaluation of one subscription for one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// What the trigger says (also reported for disabled subscriptions and settings errors).
    pub matched: bool,
    /// What happened.
    pub outcome: Outcome,
    /// The request built, when there is one. Its URL may carry a secret.
    pub request: Option<HttpRequest>,
    /// Why nothing was delivered, when that is the case.
    pub error: Option<ErrorReport>,
}

impl Evaluation {
    /// A subscription that failed to compile (or to parse): `invalid_subscription`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::failed(false, Outcome::InvalidSubscription, message.into(), None)
    }

    fn failed(matched: bool, outcome: Outcome, message: String, status: Option<u16>) -> Self {
        Self {
            matched,
            outcome,
            request: None,
            error: Some(ErrorReport { message, status }),
        }
    }

    fn quiet(matched: bool, outcome: Outcome) -> Self {
        Self {
            matched,
            outcome,
            request: None,
            error: None,
        }
    }

    /// Applies the webhook's answer to a [`Outcome::Ready`] evaluation: `sent` on 2xx, else
    /// `http_error` with the reason phrase. Any other evaluation is returned unchanged.
    pub fn answered(self, status: u16) -> Self {
        if self.outcome != Outcome::Ready {
            return self;
        }
        if (200..300).contains(&status) {
            return Self {
                outcome: Outcome::Sent,
                ..self
            };
        }
        Self {
            outcome: Outcome::HttpError,
            error: Some(ErrorReport {
                message: reason_phrase(status),
                status: Some(status),
            }),
            ..self
        }
    }
}

/// Evaluates a compiled subscription against an event, in the order the reference decides:
/// disabled, settings, trigger, then the action (mapping, schema, its own rules). Sends nothing:
/// a request that is ready to go comes back as [`Outcome::Ready`].
pub fn evaluate(
    subscription: &Subscription,
    settings: Result<&Settings, &ValidationError>,
    event: &Value,
) -> Evaluation {
    let matched = subscription.matches(event);
    if !subscription.enabled {
        return Evaluation::quiet(matched, Outcome::Disabled);
    }
    let settings = match settings {
        Ok(settings) => settings,
        Err(err) => {
            return Evaluation::failed(matched, Outcome::SettingsError, err.to_string(), Some(400));
        }
    };
    if !matched {
        return Evaluation::quiet(false, Outcome::NotSubscribed);
    }
    match subscription.execute(settings, event) {
        Ok(request) => Evaluation {
            matched: true,
            outcome: Outcome::Ready,
            request: Some(request),
            error: None,
        },
        Err(err) => {
            let outcome = match &err {
                ActionError::Mapping(_) => Outcome::MappingError,
                ActionError::Schema(_) => Outcome::SchemaError,
                ActionError::Payload { .. } => Outcome::PayloadError,
                ActionError::Fetch(_) => Outcome::FetchError,
                ActionError::Http { .. } => Outcome::HttpError,
            };
            Evaluation::failed(true, outcome, err.to_string(), err.status())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::subscription::SubscriptionConfig;

    fn subscription(trigger: &str, enabled: bool) -> Subscription {
        let Ok(registry) = crate::registry() else {
            panic!("the registry compiles");
        };
        let Some(destination) = registry.get("actions-chartmogul") else {
            panic!("chartmogul is registered");
        };
        let config = SubscriptionConfig {
            name: "contacts".to_owned(),
            action: "sendContact".to_owned(),
            enabled,
            trigger: Some(Value::String(trigger.to_owned())),
            mapping: None,
            use_defaults: true,
        };
        match Subscription::compile(destination, &config) {
            Ok(subscription) => subscription,
            Err(err) => panic!("{err}"),
        }
    }

    fn settings() -> Settings {
        let Ok(registry) = crate::registry() else {
            panic!("the registry compiles");
        };
        let Some(destination) = registry.get("actions-chartmogul") else {
            panic!("chartmogul is registered");
        };
        match destination
            .validate_settings(&json!({"chartmogul_webhook_url": "https://h.example/wh?t=1"}))
        {
            Ok(settings) => settings,
            Err(err) => panic!("{err}"),
        }
    }

    fn identify() -> Value {
        json!({"type": "identify", "userId": "u1", "messageId": "m1",
               "timestamp": "2024-03-01T12:00:00Z", "sentAt": "2024-03-01T12:00:00Z",
               "traits": {"email": "jane@example.com"}})
    }

    #[test]
    fn a_matching_subscription_is_ready_then_answered() {
        let settings = settings();
        let ready = evaluate(
            &subscription("type = \"identify\"", true),
            Ok(&settings),
            &identify(),
        );
        assert_eq!(ready.outcome, Outcome::Ready);
        assert!(ready.matched);
        assert_eq!(
            ready.request.as_ref().map(|r| r.url.as_str()),
            Some("https://h.example/wh?t=1")
        );
        assert_eq!(ready.clone().answered(202).outcome, Outcome::Sent);
        let failed = ready.answered(503);
        assert_eq!(failed.outcome, Outcome::HttpError);
        assert_eq!(
            failed.error,
            Some(ErrorReport {
                message: "Service Unavailable".to_owned(),
                status: Some(503)
            })
        );
    }

    #[test]
    fn unmatched_disabled_and_failing_subscriptions_say_why() {
        let settings = settings();
        let event = identify();
        let unmatched = evaluate(
            &subscription("type = \"group\"", true),
            Ok(&settings),
            &event,
        );
        assert_eq!(
            (unmatched.matched, unmatched.outcome),
            (false, Outcome::NotSubscribed)
        );
        // Answering changes nothing but a ready evaluation.
        assert_eq!(unmatched.clone().answered(500), unmatched);
        let disabled = evaluate(
            &subscription("type = \"identify\"", false),
            Ok(&settings),
            &event,
        );
        assert_eq!(
            (disabled.matched, disabled.outcome),
            (true, Outcome::Disabled)
        );
        let anonymous = json!({"type": "identify", "messageId": "m1",
                               "timestamp": "2024-03-01T12:00:00Z",
                               "sentAt": "2024-03-01T12:00:00Z"});
        let payload = evaluate(
            &subscription("type = \"identify\"", true),
            Ok(&settings),
            &anonymous,
        );
        assert_eq!(payload.outcome, Outcome::PayloadError);
        assert_eq!(payload.error.map(|e| e.status), Some(Some(400)));
        assert_eq!(
            Evaluation::invalid("bad").outcome,
            Outcome::InvalidSubscription
        );
    }
}

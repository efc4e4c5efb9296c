//! Test authentication: whether a destination's settings work, checked the way the reference
//! does (ChartMogul: `POST {}` to the `https://` webhook URL) and sent through the same client as
//! deliveries.

use junction_actions::{AuthError, DestinationDefinition};
use serde_json::Value;

use crate::client::{HttpSender, answer_message};

/// Runs `definition`'s authentication test on `settings` (raw, as configured). `Ok(false)` when
/// the destination has no test. A rejection carries the reference's message, e.g. `Credentials
/// are invalid: 403 Forbidden`, followed by what the answer said when it said something; a test
/// that got no answer is [`AuthError::Unreachable`], so that a network failure is never taken for
/// a rejection of the credentials.
pub async fn test_authentication(
    sender: &HttpSender,
    definition: &DestinationDefinition,
    settings: &Value,
) -> Result<bool, AuthError> {
    let Some(request) = definition.test_authentication_request(settings)? else {
        return Ok(false);
    };
    let headers: Vec<(String, String)> = request.headers.clone().into_iter().collect();
    let result = sender
        .send(
            &request.method,
            &request.url,
            &headers,
            request.body_bytes(),
        )
        .await;
    match result.status {
        Some(status) => DestinationDefinition::judge_test_authentication(status)
            .map(|()| true)
            .map_err(|err| {
                match (
                    err,
                    answer_message(&result.response_headers, &result.body_excerpt),
                ) {
                    (AuthError::Invalid { message }, Some(said)) => AuthError::Invalid {
                        message: format!("{message} ({} answered: {said})", definition.name),
                    },
                    (err, _) => err,
                }
            }),
        None => Err(AuthError::Unreachable {
            message: format!(
                "{} could not be reached, so the settings were not checked: {}",
                definition.name,
                result
                    .error
                    .map_or_else(|| "no answer".to_owned(), |error| error.message)
            ),
        }),
    }
}

//! Test authentication: whether a destination's settings work, checked the way the reference
//! does (ChartMogul: `POST {}` to the `https://` webhook URL) and sent through the same client as
//! deliveries.

use junction_actions::{AuthError, DestinationDefinition};
use serde_json::Value;

use crate::client::HttpSender;

/// Runs `definition`'s authentication test on `settings` (raw, as configured). `Ok(false)` when
/// the destination has no test. A failure carries the reference's message, e.g. `Credentials are
/// invalid: 403 Forbidden`.
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
        Some(status) => DestinationDefinition::judge_test_authentication(status).map(|()| true),
        // No answer: the reference prefixes an empty status and a space.
        None => Err(AuthError::Invalid {
            message: format!(
                "Credentials are invalid:  {}",
                result
                    .error
                    .map_or_else(|| "no answer".to_owned(), |error| error.message)
            ),
        }),
    }
}

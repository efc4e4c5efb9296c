//! The HTTP request an action sends, built without IO, and the status rules it is judged by.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::ActionError;

/// The `user-agent` every action request carries, as the reference sends it.
pub const USER_AGENT: &str = "Segment (Actions)";

/// One HTTP request, exactly as it will be sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequest {
    /// Upper-case method.
    pub method: String,
    /// The URL after WHATWG normalisation (what the reference's fetch sends).
    pub url: String,
    /// The destination setting `url` was read from, when it is one: a stored job then names the
    /// setting instead of copying its value, so that it goes to the URL in force when it is
    /// sent.
    #[serde(skip)]
    pub url_setting: Option<&'static str>,
    /// The headers the framework sets (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// The JSON body.
    pub body: Value,
}

/// Why a request cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse as an absolute URL.
    #[error("Only absolute URLs are supported")]
    NotAbsolute,
    /// The URL's scheme is not `http` or `https`.
    #[error("Only HTTP(S) protocols are supported")]
    UnsupportedScheme,
    /// A network failure while sending (connection refused, reset, DNS, …).
    #[error("{0}")]
    Network(String),
    /// No response within the timeout.
    #[error("Request timed out after {0}ms")]
    Timeout(u64),
}

impl FetchError {
    /// Network failures and timeouts may pass on a later try; a malformed URL never will.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Network(_) | Self::Timeout(_))
    }
}

/// The URL fetch would request for `url` (WHATWG normalisation), or why it cannot request it.
pub fn normalise_url(url: &str) -> Result<String, FetchError> {
    let parsed = url::Url::parse(url).map_err(|_| FetchError::NotAbsolute)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::UnsupportedScheme);
    }
    Ok(parsed.into())
}

impl HttpRequest {
    /// A `POST` of `body` as JSON to `url`, with the reference's framework headers.
    pub fn post_json(url: &str, body: Value) -> Result<Self, FetchError> {
        Ok(Self::post_json_normalised(normalise_url(url)?, body))
    }

    /// [`Self::post_json`] to a URL already normalised by [`normalise_url`].
    pub fn post_json_normalised(url: String, body: Value) -> Self {
        let headers = BTreeMap::from([
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), USER_AGENT.to_owned()),
        ]);
        Self {
            method: "POST".to_owned(),
            url,
            url_setting: None,
            headers,
            body,
        }
    }

    /// The same request, its URL read from the destination setting `key`.
    pub fn with_url_from_setting(self, key: &'static str) -> Self {
        Self {
            url_setting: Some(key),
            ..self
        }
    }

    /// The body as it goes on the wire.
    pub fn body_bytes(&self) -> Vec<u8> {
        // Sized for a typical contact or customer so serialising does not regrow the buffer.
        let mut bytes = Vec::with_capacity(1024);
        // Writing a `Value` into a `Vec` cannot fail: its keys are strings and it holds no
        // non-finite numbers.
        if serde_json::to_writer(&mut bytes, &self.body).is_err() {
            bytes.clear();
        }
        bytes
    }
}

/// The standard reason phrase of a status, or the status number when it has none (what the
/// reference's `HTTPError` message falls back to).
pub fn reason_phrase(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .map_or_else(|| status.to_string(), str::to_owned)
}

/// Judges a response status the way the reference's request client does: 2xx succeeds, anything
/// else is an `HTTPError` carrying the reason phrase.
pub fn check_status(status: u16) -> Result<(), ActionError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(ActionError::Http {
        status,
        message: reason_phrase(status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_url_like_fetch() {
        let request =
            HttpRequest::post_json("https://chartmogul.webhook.endpoint", Value::Null).unwrap();
        assert_eq!(request.url, "https://chartmogul.webhook.endpoint/");
        let request =
            HttpRequest::post_json("https://h.example/wh/abc?token=1", Value::Null).unwrap();
        assert_eq!(request.url, "https://h.example/wh/abc?token=1");
    }

    #[test]
    fn rejects_urls_fetch_cannot_request() {
        assert_eq!(
            HttpRequest::post_json("mailto:a@b.c", Value::Null),
            Err(FetchError::UnsupportedScheme)
        );
        assert_eq!(
            HttpRequest::post_json("/relative", Value::Null),
            Err(FetchError::NotAbsolute)
        );
    }

    #[test]
    fn reason_phrases_follow_the_standard() {
        assert_eq!(reason_phrase(500), "Internal Server Error");
        assert_eq!(reason_phrase(429), "Too Many Requests");
        assert_eq!(reason_phrase(599), "599");
        assert!(check_status(202).is_ok());
        assert_eq!(
            check_status(401),
            Err(ActionError::Http {
                status: 401,
                message: "Unauthorized".into()
            })
        );
    }

    #[test]
    fn retry_classification_follows_the_actions_contract() {
        use crate::error::is_retryable_status;
        for status in [408, 423, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 410, 422, 501, 505] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}

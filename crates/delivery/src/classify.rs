//! The Actions retry classification: what one attempt produced ([`AttemptResult`]) and what
//! happens to the job next ([`Verdict`]), with `Retry-After` parsing.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::DeliveryError;

/// The longest `Retry-After` honoured: a larger value is taken as this, so a misconfigured
/// endpoint cannot park a job (or a lane) for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// When the attempt started, in Unix milliseconds.
    pub started_at: i64,
    /// From the start of the attempt to the end of reading the response excerpt.
    pub duration: Duration,
    /// The response status, when an answer arrived.
    pub status: Option<u16>,
    /// The response headers, names lower-case, in the order received.
    pub response_headers: Vec<(String, String)>,
    /// The start of the response body, at most the client's excerpt limit.
    pub body_excerpt: Vec<u8>,
    /// Why the attempt did not deliver: a transport error, or a non-2xx answer.
    pub error: Option<AttemptError>,
}

impl AttemptResult {
    /// An attempt that sent nothing, for `error` (a job whose URL cannot be known, say).
    pub fn not_sent(error: AttemptError) -> Self {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        AttemptResult {
            started_at: now,
            duration: Duration::ZERO,
            status: None,
            response_headers: Vec::new(),
            body_excerpt: Vec::new(),
            error: Some(error),
        }
    }

    /// The first response header called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// The kind of failure, which drives classification and dead-letter filters.
    pub class: ErrorClass,
    /// A short description for people. Never contains the URL (its path carries a secret).
    pub message: String,
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// The kind of an attempt's failure, as stored and filtered on (`as_str` is the stored name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// No complete answer within the timeout.
    Timeout,
    /// The connection could not be established (refused, unreachable).
    Connect,
    /// The webhook's host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Any other transport error: reset, closed early, protocol error.
    Network,
    /// The endpoint answered with a non-2xx status.
    #[serde(rename = "http_status")]
    Status,
    /// The request itself cannot be sent (malformed URL, method or header): retrying cannot help.
    InvalidRequest,
    /// The webhook policy refuses the URL or every address its host resolves to (`http` to a
    /// host not allowed, a private or loopback address, Junction's own listeners).
    Blocked,
}

impl ErrorClass {
    /// Every class, in declaration order (for filters and documentation).
    pub const ALL: [Self; 8] = [
        Self::Timeout,
        Self::Connect,
        Self::Dns,
        Self::Tls,
        Self::Network,
        Self::Status,
        Self::InvalidRequest,
        Self::Blocked,
    ];

    /// The stored name: `timeout`, `connect`, `dns`, `tls`, `network`, `http_status`,
    /// `invalid_request` or `blocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Network => "network",
            Self::Status => "http_status",
            Self::InvalidRequest => "invalid_request",
            Self::Blocked => "blocked",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorClass {
    type Err = DeliveryError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|class| class.as_str() == name)
            .ok_or_else(|| DeliveryError::UnknownErrorClass(name.to_owned()))
    }
}

/// What happens to a job after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx answer: the job succeeded.
    Delivered,
    /// A failure that may pass: try again later (within the retry window).
    Retry {
        /// The endpoint's `Retry-After`, when it sent a valid one: wait at least this long.
        retry_after: Option<Duration>,
        /// The endpoint is overloaded or failing (429, a 5xx, no answer: timeout, refused or
        /// reset connection, DNS or TLS failure): the lane should slow down.
        overload: bool,
    },
    /// A failure that will not pass by retrying: the job goes to the dead letter.
    Discard,
}

/// Judges an attempt by the Actions contract.
///
/// When an answer arrived its status decides, even if reading the body failed afterwards: 2xx
/// delivers; 408, 423, 429 and 5xx other than 501 and 505 retry
/// ([`junction_actions::is_retryable_status`]); everything else, 3xx included (redirects are not
/// followed), discards. Without an answer, transport errors retry and a request that cannot be
/// sent discards. `Retry-After` is read from any retryable answer, relative to `now`.
pub fn classify(result: &AttemptResult, now: SystemTime) -> Verdict {
    let Some(status) = result.status else {
        let class = result.error.as_ref().map(|error| error.class);
        return match class {
            // Retrying cannot help: the request cannot be made, or may not go there.
            Some(ErrorClass::InvalidRequest | ErrorClass::Blocked) => Verdict::Discard,
            // No answer: the endpoint is down or unreachable, and hammering it at full
            // concurrency helps nobody.
            Some(_) => Verdict::Retry {
                retry_after: None,
                overload: true,
            },
            // A missing status with no error is a caller bug; retrying is the safe reading, as
            // the job is not known to have arrived.
            None => Verdict::Retry {
                retry_after: None,
                overload: false,
            },
        };
    };
    if (200..300).contains(&status) {
        return Verdict::Delivered;
    }
    if !junction_actions::is_retryable_status(status) {
        return Verdict::Discard;
    }
    let retry_after = result
        .header("retry-after")
        .and_then(|value| parse_retry_after(value, now));
    Verdict::Retry {
        retry_after,
        // A failing server (5xx) slows down like an overloaded one; 408 and 423 are about this
        // request, not the endpoint's health.
        overload: status == 429 || status >= 500,
    }
}

/// Reads a `Retry-After` value: delta-seconds (`120`) or an HTTP date relative to `now`.
///
/// A date in the past means zero; anything longer than [`MAX_RETRY_AFTER`] is capped to it; a
/// value that is neither form (negative, fractional, empty, garbage) is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // Digits only, so parsing fails only on overflow: an absurd value, capped like any other.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let wait = date.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        // Sun, 06 Nov 1994 08:49:37 GMT: the RFC's example date, so dates below read naturally.
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn answer(status: u16, headers: &[(&str, &str)]) -> AttemptResult {
        AttemptResult {
            started_at: 0,
            duration: Duration::from_millis(5),
            status: Some(status),
            response_headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body_excerpt: Vec::new(),
            error: None,
        }
    }

    fn failure(class: ErrorClass) -> AttemptResult {
        AttemptResult {
            started_at: 0,
            duration: Duration::from_millis(5),
            status: None,
            response_headers: Vec::new(),
            body_excerpt: Vec::new(),
            error: Some(AttemptError {
                class,
                message: "boom".to_owned(),
            }),
        }
    }

    fn retry(overload: bool) -> Verdict {
        Verdict::Retry {
            retry_after: None,
            overload,
        }
    }

    #[test]
    fn every_2xx_is_delivered() {
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(classify(&answer(status, &[]), now()), Verdict::Delivered);
        }
    }

    #[test]
    fn retryable_statuses_retry_and_failing_servers_signal_overload() {
        for status in [408, 423] {
            assert_eq!(
                classify(&answer(status, &[]), now()),
                retry(false),
                "{status}"
            );
        }
        for status in [429, 500, 502, 503, 504, 507, 511, 599] {
            assert_eq!(
                classify(&answer(status, &[]), now()),
                retry(true),
                "{status}"
            );
        }
    }

    #[test]
    fn other_statuses_discard() {
        for status in [
            100, 199, 300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 409, 410, 413, 422, 451,
            501, 505, 600, 999,
        ] {
            assert_eq!(
                classify(&answer(status, &[]), now()),
                Verdict::Discard,
                "{status}"
            );
        }
    }

    #[test]
    fn transport_errors_retry_and_signal_overload() {
        for class in [
            ErrorClass::Timeout,
            ErrorClass::Connect,
            ErrorClass::Dns,
            ErrorClass::Tls,
            ErrorClass::Network,
        ] {
            assert_eq!(classify(&failure(class), now()), retry(true), "{class}");
        }
    }

    #[test]
    fn a_request_that_cannot_be_sent_is_discarded() {
        assert_eq!(
            classify(&failure(ErrorClass::InvalidRequest), now()),
            Verdict::Discard
        );
    }

    #[test]
    fn the_status_decides_even_when_the_body_failed() {
        let mut result = answer(200, &[]);
        result.error = Some(AttemptError {
            class: ErrorClass::Network,
            message: "connection reset".to_owned(),
        });
        assert_eq!(classify(&result, now()), Verdict::Delivered);
    }

    #[test]
    fn retry_after_is_honoured_on_retryable_answers_whatever_the_header_case() {
        let verdict = classify(&answer(429, &[("Retry-After", "2")]), now());
        assert_eq!(
            verdict,
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(2)),
                overload: true
            }
        );
        let verdict = classify(
            &answer(408, &[("RETRY-AFTER", "Sun, 06 Nov 1994 08:50:07 GMT")]),
            now(),
        );
        assert_eq!(
            verdict,
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(30)),
                overload: false
            }
        );
    }

    #[test]
    fn retry_after_is_ignored_on_discarded_and_delivered_answers() {
        assert_eq!(
            classify(&answer(400, &[("retry-after", "5")]), now()),
            Verdict::Discard
        );
        assert_eq!(
            classify(&answer(200, &[("retry-after", "5")]), now()),
            Verdict::Delivered
        );
    }

    #[test]
    fn garbage_retry_after_is_no_retry_after() {
        assert_eq!(
            classify(&answer(503, &[("retry-after", "soon")]), now()),
            retry(true)
        );
    }

    #[test]
    fn parses_delta_seconds() {
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(" 7 ", now()),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn parses_http_dates_in_every_format_the_rfc_allows() {
        let in_a_minute = Some(Duration::from_secs(60));
        for date in [
            "Sun, 06 Nov 1994 08:50:37 GMT",
            "Sunday, 06-Nov-94 08:50:37 GMT",
            "Sun Nov  6 08:50:37 1994",
        ] {
            assert_eq!(parse_retry_after(date, now()), in_a_minute, "{date}");
        }
    }

    #[test]
    fn past_dates_mean_now() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn absurd_values_are_capped() {
        assert_eq!(parse_retry_after("86401", now()), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999999", now()),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now()),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("86400", now()), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn garbage_is_none() {
        for value in [
            "",
            "  ",
            "-1",
            "1.5",
            "+3",
            "1e3",
            "soon",
            "Sun, 06 Nov 1994",
            "0x10",
        ] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
        }
    }

    #[test]
    fn error_class_names_round_trip() {
        for class in ErrorClass::ALL {
            assert_eq!(class.as_str().parse::<ErrorClass>().ok(), Some(class));
            assert_eq!(class.to_string(), class.as_str());
            let json = serde_json::to_string(&class).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            assert_eq!(serde_json::from_str::<ErrorClass>(&json).ok(), Some(class));
        }
        let err = "status".parse::<ErrorClass>().unwrap_err();
        assert!(matches!(err, DeliveryError::UnknownErrorClass(ref name) if name == "status"));
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_takes_the_first() {
        let result = answer(200, &[("X-A", "1"), ("x-a", "2")]);
        assert_eq!(result.header("x-a"), Some("1"));
        assert_eq!(result.header("X-B"), None);
    }
}

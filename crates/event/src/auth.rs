//! The write key from an HTTP Basic `Authorization` header, as Segment's clients send it.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64, with or without `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The write key in an `Authorization` header value: `Basic base64("KEY:")`, or `base64("KEY")`
/// without the colon, which Segment accepts for backward compatibility. The key is the user name;
/// a password, which clients leave empty, is ignored. `None` for another scheme, undecodable
/// credentials or an empty user name.
pub fn write_key_from_basic(header_value: &str) -> Option<String> {
    let (scheme, credentials) = header_value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(credentials.trim()).ok()?).ok()?;
    let key = decoded
        .split_once(':')
        .map_or(decoded.as_str(), |(user, _password)| user);
    if key.is_empty() {
        return None;
    }
    Some(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn the_user_name_is_the_write_key() {
        assert_eq!(
            write_key_from_basic(&basic("wk_123:")).as_deref(),
            Some("wk_123")
        );
        assert_eq!(
            write_key_from_basic(&basic("wk_123")).as_deref(),
            Some("wk_123")
        );
        assert_eq!(
            write_key_from_basic(&basic("wk_123:ignored")).as_deref(),
            Some("wk_123")
        );
        // Scheme case and surrounding spaces do not matter; missing padding is accepted.
        assert_eq!(
            write_key_from_basic("basic  d2tfMTIzOg==  ").as_deref(),
            Some("wk_123")
        );
        assert_eq!(
            write_key_from_basic("Basic d2tfMTIzOg").as_deref(),
            Some("wk_123")
        );
    }

    #[test]
    fn anything_else_has_no_write_key() {
        for header in [
            "",
            "Basic",
            "Basic ",
            "Bearer d2tfMTIzOg==",
            "Basic not base64!",
            &basic(":"),
            &basic(":wk_123"),
            "Basic //79", // not UTF-8
        ] {
            assert_eq!(write_key_from_basic(header), None, "{header:?}");
        }
    }
}

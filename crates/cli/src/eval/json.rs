//! Writing output lines: byte for byte what serde_json's compact serializer writes for the same
//! values, except that a string needing no escape is checked eight bytes at a time and copied in
//! one go (serde_json looks each byte up in its escape table: a tenth of a line's time).

use std::io;

use junction_actions::{ErrorReport, Evaluation, HttpRequest};
use serde_json::Value;

/// Writes `value` as compact JSON.
pub fn value(out: &mut Vec<u8>, value: &Value) -> io::Result<()> {
    match value {
        Value::String(text) => string(out, text)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                self::value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, member)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, key)?;
                out.push(b':');
                self::value(out, member)?;
            }
            out.push(b'}');
        }
        // Numbers (itoa, ryu), booleans and null: serde_json's own output.
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

/// Writes `text` as a JSON string.
pub fn string(out: &mut Vec<u8>, text: &str) -> io::Result<()> {
    if needs_escape(text.as_bytes()) {
        serde_json::to_writer(&mut *out, text)?;
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
    Ok(())
}

/// Whether serde_json escapes some byte of `bytes`: a control character, `"` or `\`. Checked
/// eight bytes at a time as serde_json's own reader does; a false alarm only costs the slow path.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let has = |chunk: u64, byte: u8| {
        let diff = chunk ^ (ONES * u64::from(byte));
        (diff.wrapping_sub(ONES) & !diff & HIGH) != 0
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = (word.wrapping_sub(ONES * 0x20) & !word & HIGH) != 0;
        if control || has(word, b'"') || has(word, b'\\') {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
}

/// Writes the members of an [`Evaluation`] (`"matched":…,"outcome":…,"request":…,"error":…`),
/// in the order its `Serialize` derive writes them.
pub fn evaluation_members(out: &mut Vec<u8>, evaluation: &Evaluation) -> io::Result<()> {
    out.extend_from_slice(if evaluation.matched {
        b"\"matched\":true,\"outcome\":"
    } else {
        b"\"matched\":false,\"outcome\":"
    });
    serde_json::to_writer(&mut *out, &evaluation.outcome)?;
    out.extend_from_slice(b",\"request\":");
    match &evaluation.request {
        Some(request) => self::request(out, request)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    match &evaluation.error {
        Some(error) => self::error(out, error)?,
        None => out.extend_from_slice(b"null"),
    }
    Ok(())
}

/// An [`HttpRequest`] as its `Serialize` derive writes it (`url_setting` is skipped there).
fn request(out: &mut Vec<u8>, request: &HttpRequest) -> io::Result<()> {
    out.extend_from_slice(b"{\"method\":");
    string(out, &request.method)?;
    out.extend_from_slice(b",\"url\":");
    string(out, &request.url)?;
    out.extend_from_slice(b",\"headers\":{");
    for (i, (name, header)) in request.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, name)?;
        out.push(b':');
        string(out, header)?;
    }
    out.extend_from_slice(b"},\"body\":");
    value(out, &request.body)?;
    out.push(b'}');
    Ok(())
}

/// An [`ErrorReport`] as its `Serialize` derive writes it.
fn error(out: &mut Vec<u8>, error: &ErrorReport) -> io::Result<()> {
    out.extend_from_slice(b"{\"message\":");
    string(out, &error.message)?;
    out.extend_from_slice(b",\"status\":");
    match error.status {
        Some(status) => serde_json::to_writer(&mut *out, &status)?,
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use junction_actions::Outcome;
    use serde_json::json;

    use super::*;

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let long = "a".repeat(40);
        let cases = [
            json!(null),
            json!([
                true,
                false,
                0,
                -1,
                18446744073709551615u64,
                1.5,
                1e300,
                -0.0,
                0.1
            ]),
            json!({"plain": "abc", "quote": "a\"b", "slash": "a\\b", "control": "a\u{1}b\nc",
                   "unicode": "é😀\u{7f}", "long": long, "long_tail": format!("{long}\"")}),
            json!({"": {}, "nested": [[], {}, [{"k": "v"}]]}),
        ];
        for case in cases {
            let mut ours = Vec::new();
            value(&mut ours, &case).unwrap();
            assert_eq!(ours, serde_json::to_vec(&case).unwrap(), "{case}");
        }
        for (i, byte) in (0u8..=0x7f).enumerate() {
            let text = format!(
                "{}{}{}",
                "x".repeat(i % 9),
                char::from(byte),
                "y".repeat(i % 5)
            );
            let mut ours = Vec::new();
            string(&mut ours, &text).unwrap();
            assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn evaluations_are_written_as_their_derive_writes_them() {
        let request = HttpRequest::post_json("https://h.example/x?t=1", json!({"a": [1, "b"]}));
        let evaluations = [
            Evaluation {
                matched: true,
                outcome: Outcome::Sent,
                request: request.ok(),
                error: None,
            },
            Evaluation {
                matched: false,
                outcome: Outcome::SchemaError,
                request: None,
                error: Some(ErrorReport {
                    message: "Bad \"x\"".to_owned(),
                    status: Some(400),
                }),
            },
            Evaluation::invalid("nope"),
        ];
        for evaluation in evaluations {
            let mut ours = b"{".to_vec();
            evaluation_members(&mut ours, &evaluation).unwrap();
            ours.push(b'}');
            assert_eq!(ours, serde_json::to_vec(&evaluation).unwrap());
        }
    }
}

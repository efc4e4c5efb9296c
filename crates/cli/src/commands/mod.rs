//! The admin subcommands: each turns its arguments into admin API calls and prints the answer as
//! a table, or as the API's JSON with `--json`.

pub mod apply;
pub mod audiences;
pub mod dead_letter;
pub mod destinations;
pub mod lookup;
pub mod mappings;
pub mod overview;
pub mod regulations;
pub mod sandbox;
pub mod send;
pub mod sources;
pub mod tail;
pub mod test_auth;
pub mod test_event;

use serde_json::Value;

/// A JSON value as a table cell: strings bare, `null` as `-`.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Unix milliseconds as an RFC 3339 UTC time (or the number, if out of range).
pub fn time(value: Option<&Value>) -> String {
    let Some(millis) = value.and_then(Value::as_i64) else {
        return cell(value);
    };
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| millis.to_string())
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

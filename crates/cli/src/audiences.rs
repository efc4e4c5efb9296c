//! `junction audiences`: audiences and computed traits. The admin subcommands are in
//! `commands::audiences`; `eval` runs definitions over events
//! locally — JSON Lines in, JSON Lines out, in the format of `audiences.md` §5 — with the same
//! engine the server uses (`junction_audience::run_case`); nothing is stored or sent.

use std::io::{self, BufRead, BufWriter, Write};

use serde_json::{Value, json};

use crate::commands::audiences::AudienceCommand;

/// `junction audiences …`.
#[derive(Debug, clap::Args)]
pub struct AudiencesArgs {
    #[command(subcommand)]
    pub command: AudiencesCommand,
}

/// The `audiences` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AudiencesCommand {
    /// Compute audiences and computed traits over events, without a server.
    ///
    /// Reads JSON Lines on stdin (`{"id", "now", "definitions": [{"key" or "name", "kind",
    /// "query"}], "events": [...]}`) and writes one JSON line per input line on stdout, in
    /// order: `{"id", "errors": [{"key", "message"}], "profiles": [{"user_id", "anonymous_id",
    /// "email", "values"}]}`, or `{"id", "error"}` for a line that cannot be read.
    Eval,
    #[command(flatten)]
    Admin(AudienceCommand),
}

/// Runs `junction audiences eval`.
pub fn run_eval() -> anyhow::Result<()> {
    let stdin = io::stdin().lock();
    let stdout = BufWriter::new(io::stdout().lock());
    eval(stdin, stdout)?;
    Ok(())
}

/// Reads JSON Lines from `input` and writes one result line per non-blank input line.
pub fn eval(input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    for line in input.lines() {
        let line = line?;
        // Blank lines separate nothing in JSON Lines; skipping them keeps hand-written files easy.
        if line.trim().is_empty() {
            continue;
        }
        let result = evaluate_line(&line);
        serde_json::to_writer(&mut output, &result)?;
        output.write_all(b"\n")?;
    }
    output.flush()
}

/// Evaluates one input line into its output object.
fn evaluate_line(line: &str) -> Value {
    match serde_json::from_str::<Value>(line) {
        Ok(input) => junction_audience::run_case(&input),
        Err(err) => json!({"id": null, "error": format!("invalid JSON: {err}")}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_gets_its_answer_and_blank_lines_none() {
        let input = concat!(
            r#"{"id": "a", "now": "2026-03-01T00:00:00Z", "definitions": [], "events": []}"#,
            "\n\n",
            "not json\n",
            r#"{"id": "b", "now": "2026-03-01T00:00:00Z"}"#,
            "\n",
        );
        let mut output = Vec::new();
        eval(input.as_bytes(), &mut output).unwrap();
        let lines: Vec<Value> = String::from_utf8(output)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], json!({"id": "a", "errors": [], "profiles": []}));
        assert_eq!(lines[1]["id"], Value::Null);
        assert!(
            lines[1]["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid JSON")
        );
        assert_eq!(lines[2], json!({"id": "b", "errors": [], "profiles": []}));
    }
}

//! `junction test-auth DESTINATION`: runs the destination type's authentication test.

use clap::Args;
use serde_json::{Value, json};

use super::{cell, print_json};
use crate::client::{AdminArgs, AdminClient, encode};

/// Arguments of `junction test-auth`.
#[derive(Debug, Args)]
pub struct TestAuthArgs {
    /// The destination's id.
    pub destination: String,
}

/// Runs the test and says whether the settings work; fails when they do not.
pub async fn run(admin: &AdminArgs, args: &TestAuthArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(admin)?;
    let path = format!(
        "/api/v1/destinations/{}/test-authentication",
        encode(&args.destination)
    );
    let data = client.post(&path, &json!({})).await?;
    if admin.json {
        return print_json(&data);
    }
    match data.get("status").and_then(Value::as_str) {
        Some("success") => {
            println!("The settings of destination {} work.", args.destination);
            Ok(())
        }
        Some("not_supported") => {
            println!("{}", cell(data.get("message")));
            Ok(())
        }
        Some("unreachable") => anyhow::bail!(
            "network failure, not a rejection: {}",
            cell(data.get("message"))
        ),
        _ => anyhow::bail!("rejected: {}", cell(data.get("message"))),
    }
}

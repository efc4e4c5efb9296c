//! The admin API as the CLI sees it: where it is, the bearer token, and requests whose errors
//! come back as the API's own messages (`{"errors": [{"type", "message", "field"?}]}`).

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;

/// Where the admin API is and how to authenticate; every admin subcommand takes them (after its
/// name: `junction overview chartmogul --admin-url …`), and only those do.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// The admin API's base URL.
    #[arg(
        long,
        env = "JUNCTION_ADMIN_URL",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub admin_url: String,
    /// The admin API's bearer token, if the server requires one (the server's `admin.token`;
    /// the same environment variable sets both).
    #[arg(
        long = "admin-token",
        alias = "token",
        env = "JUNCTION_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client of one admin API.
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl AdminClient {
    /// A client for `args`.
    pub fn new(args: &AdminArgs) -> anyhow::Result<Self> {
        junction_delivery::install_crypto_provider();
        let http = reqwest::Client::builder()
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Self {
            http,
            base: args.admin_url.trim_end_matches('/').to_owned(),
            token: args.token.clone(),
        })
    }

    /// `GET path` (with its query), returning the `data` member.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `POST path` with a JSON body, returning the `data` member.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// `PUT path` with a JSON body, returning the `data` member.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    /// `PATCH path` with a JSON body, returning the `data` member.
    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.patch(self.url(path)).json(body)).await
    }

    /// `DELETE path`, returning the `data` member.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(self.url(path))).await
    }

    /// `GET path`, returning the whole answer (`data` and what lies beside it).
    pub async fn get_full(&self, path: &str) -> anyhow::Result<Value> {
        self.send_full(self.http.get(self.url(path))).await
    }

    /// Every item of a paginated list (`GET path`, following `pagination.next`).
    pub async fn get_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let url = match &after {
                Some(cursor) => format!("{path}{separator}limit=1000&after={}", encode(cursor)),
                None => format!("{path}{separator}limit=1000"),
            };
            let body = self.send_full(self.http.get(self.url(&url))).await?;
            if let Some(page) = body.get("data").and_then(Value::as_array) {
                items.extend(page.iter().cloned());
            }
            match body.pointer("/pagination/next").and_then(Value::as_str) {
                Some(next) if after.as_deref() != Some(next) => after = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
    }

    /// Opens a Server-Sent Events stream (`GET path`); API errors are rendered as for `get`.
    pub async fn stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let request = self
            .http
            .get(self.url(path))
            .header("accept", "text/event-stream");
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            bail!("{}", api_errors(status.as_u16(), &body));
        }
        Ok(response)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let body = self.send_full(request).await?;
        Ok(body.get("data").cloned().unwrap_or(Value::Null))
    }

    /// Sends `request` and returns the whole JSON answer, or the API's errors.
    async fn send_full(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("the admin API answered {status} without JSON"))?;
        if !status.is_success() {
            bail!("{}", api_errors(status.as_u16(), &body));
        }
        Ok(body)
    }
}

/// The API's error messages, one per line, with their field when given.
fn api_errors(status: u16, body: &Value) -> String {
    let messages: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
                    match error.get("field").and_then(Value::as_str) {
                        Some(field) => format!("{field}: {message}"),
                        None => message.to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if messages.is_empty() {
        format!("the admin API answered {status}")
    } else {
        format!("the admin API answered {status}: {}", messages.join("; "))
    }
}

/// Percent-encodes a value for a URL path segment or query.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_read_as_the_api_wrote_them() {
        let body = json!({"errors": [{"type": "validation", "message": "bad", "field": "limit"},
                                     {"type": "x", "message": "worse"}]});
        assert_eq!(
            api_errors(400, &body),
            "the admin API answered 400: limit: bad; worse"
        );
        assert_eq!(api_errors(401, &json!({})), "the admin API answered 401");
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(encode("msg-1_x.y~"), "msg-1_x.y~");
    }
}

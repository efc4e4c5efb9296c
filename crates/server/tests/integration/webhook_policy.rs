//! Where webhooks may point (F3 of the hardening issue): with the default policy, the admin API
//! refuses to save a webhook URL aimed at Junction's own admin port, the cloud metadata service,
//! a private address, an `http` host, or a `file:`/`gopher:` URL, saying why at the field; the
//! event tester and the authentication test refuse to send there too. The sandbox of the admin
//! listener is the one local URL allowed, and the configuration's allow list opens more.

use junction_delivery::{AllowEntry, WebhookPolicy};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{AdminClient, TestServer};

/// The default policy of a server whose admin listener is at `admin` (its tracking listener is
/// on another port of the same host).
fn default_policy(admin: std::net::SocketAddr) -> WebhookPolicy {
    let tracking = std::net::SocketAddr::new(admin.ip(), admin.port().wrapping_add(1));
    WebhookPolicy::new(Vec::new(), vec![admin, tracking], Some(admin))
}

fn first_error(body: &Value) -> (String, String) {
    let error = &body["errors"][0];
    (
        error["field"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_webhook_urls_are_refused_where_they_are_saved_and_tested() {
    let server = TestServer::start().await;
    let admin = AdminClient::start_with_policy(&server, None, default_policy).await;
    let own = admin.url.trim_start_matches("http://").to_owned();
    let cases = [
        (format!("http://{own}/api/v1/sources"), "http:// is refused"),
        (
            format!("https://{own}/api/v1/sources"),
            "one of Junction's own listeners",
        ),
        ("https://127.0.0.1:9/hook".to_owned(), "a loopback address"),
        (
            "https://169.254.169.254/latest/meta-data/".to_owned(),
            "a link-local address",
        ),
        ("https://10.0.0.7/hook".to_owned(), "a private address"),
        (
            "http://app.chartmogul.com/api/webhooks/x".to_owned(),
            "http:// is refused",
        ),
        ("file:///etc/passwd".to_owned(), "file: URLs are refused"),
        (
            "gopher://127.0.0.1:70/_x".to_owned(),
            "gopher: URLs are refused",
        ),
    ];
    for (url, why) in &cases {
        let (status, body) = admin
            .patch(
                "/api/v1/destinations/chartmogul",
                &json!({"settings": {"chartmogul_webhook_url": url}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        let (field, message) = first_error(&body);
        assert_eq!(field, "settings.chartmogul_webhook_url", "{url}: {body}");
        assert!(message.contains(why), "{url}: {message}");
        let (status, body) = admin
            .post(
                "/api/v1/destinations",
                &json!({"id": "probe", "name": "Probe", "type": "actions-chartmogul",
                        "settings": {"chartmogul_webhook_url": url}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(first_error(&body).1.contains(why), "{url}: {body}");
    }

    // The sandbox of this admin listener is allowed.
    let sandbox = format!("http://{own}/sandbox/chartmogul/probe");
    let (status, body) = admin
        .patch(
            "/api/v1/destinations/chartmogul",
            &json!({"settings": {"chartmogul_webhook_url": sandbox}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testers_do_not_send_where_deliveries_may_not_go() {
    let server = TestServer::start().await;
    // A workspace saved before the policy: its URL aims at the admin API itself.
    let permissive = AdminClient::start(&server, None).await;
    let target = permissive.url.clone();
    let (status, body) = permissive
        .patch(
            "/api/v1/destinations/chartmogul",
            &json!({"settings": {"chartmogul_webhook_url": format!("{target}/api/v1/sources")}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same server's admin API as it runs with the default policy, on the port targeted.
    let strict = AdminClient::start_with_policy(&server, None, |admin| {
        let targeted: std::net::SocketAddr = target.trim_start_matches("http://").parse().unwrap();
        WebhookPolicy::new(
            vec![AllowEntry::parse("127.0.0.1").unwrap()],
            vec![admin, targeted],
            Some(admin),
        )
    })
    .await;
    let (status, body) = strict
        .post(
            "/api/v1/destinations/chartmogul/test-event",
            &json!({"event": {"type": "identify", "userId": "u-1",
                              "traits": {"email": "u-1@example.com"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["data"]["results"][0];
    assert_eq!(
        result["response"],
        Value::Null,
        "nothing was sent: {result}"
    );
    let message = result["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("one of Junction's own listeners"),
        "{result}"
    );
    // Test authentication builds its request from an https URL only: an http one is refused
    // before any request, with ChartMogul's own message.
    let (status, body) = strict
        .post(
            "/api/v1/destinations/chartmogul/test-authentication",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "failure", "{body}");
}

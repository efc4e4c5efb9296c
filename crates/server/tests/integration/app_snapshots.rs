//! HTML snapshots (insta) of every page and fragment of the app, rendered by a real server over
//! a real store holding known events, a saved sample and an audience: a change to any page shows
//! in review as a diff of its HTML. What changes from run to run (session tokens, times, ports,
//! random ids, the assets' digests, the chart's geometry) is masked before comparing.

use reqwest::StatusCode;
use serde_json::json;

use crate::app::{Browser, TOKEN};
use crate::util::{AdminClient, TestServer};

/// What differs between two runs of the same state, masked.
const FILTERS: &[(&str, &str)] = &[
    (r"[0-9a-f]{64}", "[token]"),
    (r"/assets/[^/]+/", "/assets/[digest]/"),
    (
        // Case-insensitive: the debugger's search text is lower case.
        r"(?i)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        "[time]",
    ),
    (
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uuid]",
    ),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
    // The chart's bars sit where the current minute falls in the window; its numbers are in the
    // table beside it, which is kept.
    (r"(?s)<svg.*?</svg>", "[chart]"),
];

/// Snapshots `html` under `name`, masked.
fn snapshot(name: &str, html: &str) {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in FILTERS {
        settings.add_filter(pattern, *replacement);
    }
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, html));
}

#[tokio::test]
async fn every_page_and_fragment_renders_as_before() {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    let mut browser = Browser::new(&admin);

    let (status, _, page) = browser.get("/sign-in").await;
    assert_eq!(status, StatusCode::OK);
    snapshot("sign_in", &page);
    browser.sign_in().await;

    // Known events: two identify calls, one group, and a track no mapping takes.
    let at = "2026-01-05T10:00:00.000Z";
    let batch = json!({"batch": [
        {"type": "identify", "userId": "ada", "messageId": "snap-1", "timestamp": at,
         "traits": {"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"}},
        {"type": "identify", "userId": "grace", "messageId": "snap-2", "timestamp": at,
         "traits": {"email": "grace@example.com", "plan": "free"}},
        {"type": "group", "userId": "ada", "groupId": "acme", "messageId": "snap-3",
         "timestamp": at, "traits": {"name": "Acme Inc", "plan": "pro"}},
        {"type": "track", "userId": "ada", "event": "Order Completed", "messageId": "snap-4",
         "timestamp": at, "properties": {"total": 42}},
    ]});
    let (status, body) = server.send("/v1/batch", &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sample = json!({"event": {"type": "identify", "userId": "sample-user",
                                  "traits": {"plan": "enterprise"}}});
    let (status, body) = admin
        .call(
            admin
                .request(
                    reqwest::Method::PUT,
                    "/api/v1/destinations/chartmogul/samples/Enterprise",
                )
                .json(&sample),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin
        .post(
            "/api/v1/audiences",
            &json!({"name": "Buyers", "kind": "audience",
                    "query": "event('Order Completed').within(30 days).count() >= 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let pages = [
        ("home", "/"),
        ("catalog", "/catalog"),
        ("catalog_entry", "/catalog/actions-chartmogul"),
        ("destinations", "/destinations"),
        ("destination_settings", "/destinations/chartmogul"),
        ("mappings", "/destinations/chartmogul/mappings"),
        (
            "mapping_editor",
            "/destinations/chartmogul/mappings/contacts",
        ),
        (
            "mapping_editor_new",
            "/destinations/chartmogul/new-mapping?action=sendCustomer",
        ),
        (
            "confirm_delete",
            "/destinations/chartmogul/mappings/contacts/delete",
        ),
        ("tester", "/destinations/chartmogul/tester"),
        ("overview", "/destinations/chartmogul/overview"),
        ("dead_letter", "/destinations/chartmogul/dead-letter"),
        ("event", "/events/snap-1"),
        ("sources", "/sources"),
        ("source", "/sources/web"),
        ("debugger", "/sources/web/debugger"),
        ("audiences", "/audiences"),
        ("audience", "/audiences/buyers"),
        ("profile_lookup", "/profiles"),
        ("not_found", "/destinations/nope"),
    ];
    for (name, path) in pages {
        let (status, _, page) = browser.get(path).await;
        let expected = if name == "not_found" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{path}");
        snapshot(name, &page);
    }

    // The fragments htmx swaps in: the mapping editor's live result, and replay progress.
    let csrf = browser
        .csrf("/destinations/chartmogul/mappings/contacts")
        .await;
    let event = json!({"type": "identify", "userId": "ada",
                       "traits": {"email": "ada@example.com", "title": "Countess"}})
    .to_string();
    let form = [
        ("_csrf", csrf.as_str()),
        ("mapping_id", "contacts"),
        ("action", "sendContact"),
        ("mode", "fql"),
        ("fql", "type = \"identify\""),
        ("event", event.as_str()),
        ("f.title.kind", "path"),
        ("f.title.value", "$.traits.title"),
        ("name", "Send Contact"),
        ("enabled", "1"),
    ];
    let (status, _, fragment) = browser
        .post("/destinations/chartmogul/preview", &form)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(fragment.contains("Countess"), "{fragment}");
    snapshot("preview_fragment", &fragment);
}

//! The admin API's runtime configuration (sources, write keys, the catalog, destinations,
//! mappings) and its testers, over real HTTP against a running server and a real store: every
//! route, every error path, secrets masked in every answer, and changes in force at once.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use junction_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::util::{AdminClient, TestServer, WEBHOOK, WRITE_KEY};

const TOKEN: &str = "admin-token-for-tests";
/// The secret part of the test workspace's webhook URL.
const WEBHOOK_SECRET: &str = "wh_1?token=secret";

async fn admin() -> (TestServer, AdminClient) {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    (server, admin)
}

fn identify(message_id: &str) -> Value {
    json!({"type": "identify", "userId": "user-1", "messageId": message_id,
           "timestamp": "2024-03-01T12:00:00.000Z", "sentAt": "2024-03-01T12:00:00.000Z",
           "traits": {"email": "jane@example.com", "company": {"id": "acme", "name": "Acme"}}})
}

/// The first error of an error answer: `(type, message, field)`.
fn error(body: &Value) -> (String, String, Option<String>) {
    let error = &body["errors"][0];
    (
        error["type"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
        error["field"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_a_bare_401() {
    let (_server, admin) = admin().await;
    let bare = json!({"errors": [{"type": "unauthorized", "message": "unauthorized"}]});
    let client = reqwest::Client::new();
    for path in [
        "/api/v1/sources",
        "/api/v1/sources/web",
        "/api/v1/sources/nope",
        "/api/v1/destinations/chartmogul/mappings",
        "/api/v1/catalog/destinations/actions-chartmogul",
        "/api/v1/no-such-route",
    ] {
        let url = format!("{}{path}", admin.url);
        for request in [
            client.get(&url),
            client.get(&url).bearer_auth("wrong"),
            client
                .get(&url)
                .header("authorization", format!("Basic {TOKEN}")),
            client
                .post(&url)
                .bearer_auth(format!("{TOKEN}x"))
                .json(&json!({})),
        ] {
            let (status, body) = admin.call(request).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(body, bare, "{path}");
        }
    }
    let (status, _) = admin.get("/api/v1/sources").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn sources_and_write_keys_are_managed_at_run_time() {
    let (server, admin) = admin().await;

    let (status, body) = admin.get("/api/v1/sources").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["web", "app"]);
    assert_eq!(body["data"][0]["write_keys"], json!(["…"]));
    let (_, body) = admin.get("/api/v1/sources?limit=1").await;
    assert_eq!(body["pagination"]["next"], "web");
    let (_, body) = admin.get("/api/v1/sources?limit=1&after=web").await;
    assert_eq!(body["data"][0]["id"], "app");
    assert_eq!(body["pagination"]["next"], Value::Null);
    let (status, body) = admin.get("/api/v1/sources?after=nope").await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("after"))
    );

    // Created with a generated id and key, shown in full once; it works at once.
    let (status, body) = admin
        .post("/api/v1/sources", &json!({"name": "Mobile App"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mobile-app-"), "{id}");
    let key = body["data"]["write_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("wk_") && key.len() > 30, "{key}");
    assert_eq!(
        body["data"]["write_keys"],
        json!([format!("{}…", &key[..4])])
    );
    let (status, _) = admin.get(&format!("/api/v1/sources/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let tracked = server
        .post_anonymous("/v1/identify")
        .basic_auth(&key, Some(""))
        .json(&identify("new-source-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(tracked.status(), StatusCode::OK);
    assert_eq!(server.records_of(&id, "new-source-1").await.len(), 1);

    // Given id and key; duplicates are conflicts.
    let (status, body) = admin
        .post(
            "/api/v1/sources",
            &json!({"id": "server", "name": "Server", "write_keys": ["wk_server_key_0001"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["write_key"], Value::Null);
    let (status, body) = admin
        .post("/api/v1/sources", &json!({"id": "server"}))
        .await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, _) = admin
        .post("/api/v1/sources", &json!({"write_keys": [WRITE_KEY]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = admin
        .post("/api/v1/sources", &json!({"id": "has space"}))
        .await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    let (status, body) = admin.post("/api/v1/sources", &json!({"nme": "typo"})).await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );

    // Rename.
    let (status, body) = admin
        .patch("/api/v1/sources/server", &json!({"name": "Backend"}))
        .await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (StatusCode::OK, &json!("Backend"))
    );

    // Keys: add (given, generated), duplicates refused, revoke, the last one kept.
    let (status, body) = admin
        .post(
            "/api/v1/sources/server/write-keys",
            &json!({"write_key": "wk_server_key_0002"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["write_keys"].as_array().unwrap().len(), 2);
    let (status, body) = admin
        .post("/api/v1/sources/server/write-keys", &json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let generated = body["data"]["write_key"].as_str().unwrap().to_owned();
    let (status, _) = admin
        .post(
            "/api/v1/sources/server/write-keys",
            &json!({"write_key": WRITE_KEY}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for key in ["wk_server_key_0001", "wk_server_key_0002"] {
        let (status, body) = admin
            .post(
                "/api/v1/sources/server/write-keys/revoke",
                &json!({"write_key": key}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let refused = server
        .post_anonymous("/v1/identify")
        .basic_auth("wk_server_key_0001", Some(""))
        .json(&identify("revoked-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = admin
        .post(
            "/api/v1/sources/server/write-keys/revoke",
            &json!({"write_key": generated}),
        )
        .await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("write_key"))
    );
    let (status, _) = admin
        .post(
            "/api/v1/sources/server/write-keys/revoke",
            &json!({"write_key": "wk_never_issued"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // At most 20 keys: the 21st is refused as a conflict with the full source, nothing added.
    for n in 1..20 {
        let (status, body) = admin
            .post("/api/v1/sources/server/write-keys", &json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "key {n}: {body}");
    }
    let (status, body) = admin
        .post(
            "/api/v1/sources/server/write-keys",
            &json!({"write_key": "wk_one_too_many"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (kind, message, _) = error(&body);
    assert_eq!(kind, "conflict");
    assert!(message.contains("at most 20 write keys"), "{message}");
    let (_, body) = admin.get("/api/v1/sources/server").await;
    assert_eq!(body["data"]["write_keys"].as_array().unwrap().len(), 20);

    // Delete: a connected source must be disconnected first.
    let (status, body) = admin.delete("/api/v1/sources/web").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error(&body).1.contains("chartmogul"), "{body}");
    let (status, body) = admin.delete("/api/v1/sources/app").await;
    assert_eq!(
        (status, &body["data"]),
        (StatusCode::OK, &json!({"id": "app", "deleted": true}))
    );

    // Unknown ids.
    for (method, path, body) in [
        (Method::GET, "/api/v1/sources/app", json!(null)),
        (Method::PATCH, "/api/v1/sources/app", json!({"name": "x"})),
        (Method::DELETE, "/api/v1/sources/app", json!(null)),
        (Method::POST, "/api/v1/sources/app/write-keys", json!({})),
        (
            Method::POST,
            "/api/v1/sources/app/write-keys/revoke",
            json!({"write_key": "k"}),
        ),
    ] {
        let request = admin.request(method.clone(), path).json(&body);
        let (status, body) = admin.call(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(
            error(&body),
            (
                "not_found".to_owned(),
                "source \"app\" not found".to_owned(),
                None
            )
        );
    }

    // Stored: what a restart would load.
    let stored = server.store.load_config().await.unwrap().unwrap();
    let stored = serde_json::to_string(&stored.document).unwrap();
    assert!(
        stored.contains("Backend") && !stored.contains("\"app\""),
        "{stored}"
    );
    admin.assert_never_shown(WRITE_KEY);
}

#[tokio::test]
async fn the_catalog_describes_every_setting_and_action_field() {
    let (_server, admin) = admin().await;
    let (status, body) = admin.get("/api/v1/catalog/destinations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["slug"], "actions-chartmogul");
    assert_eq!(body["data"][0]["actions"][0]["slug"], "sendContact");

    let (status, body) = admin
        .get("/api/v1/catalog/destinations/actions-chartmogul")
        .await;
    assert_eq!(status, StatusCode::OK);
    let data = &body["data"];
    assert_eq!(data["name"], "ChartMogul");
    assert_eq!(data["max_mappings"], 50);
    let setting = &data["settings"][0];
    assert_eq!(setting["key"], "chartmogul_webhook_url");
    assert_eq!(setting["type"], "string");
    assert_eq!(setting["label"], "ChartMogul webhook URL");
    assert_eq!(setting["required"], true);
    assert_eq!(setting["secret"], true);
    assert_eq!(setting["default"], Value::Null);
    assert_eq!(setting["choices"], Value::Null);
    let actions = data["actions"].as_array().unwrap();
    let triggers: Vec<(&str, &str)> = actions
        .iter()
        .map(|a| {
            (
                a["slug"].as_str().unwrap(),
                a["default_trigger"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        triggers,
        [
            ("sendContact", "type = \"identify\""),
            ("sendCustomer", "type = \"group\"")
        ]
    );
    let email = actions[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "email")
        .unwrap();
    assert_eq!(email["label"], "Email");
    assert_eq!(email["description"], "The user's email");
    assert_eq!(email["format"], "email");
    assert_eq!(email["required"], false);
    assert_eq!(email["default"], json!({"@path": "$.traits.email"}));
    assert_eq!(actions[0]["default_mapping"]["email"], email["default"]);
    for action in actions {
        for field in action["fields"].as_array().unwrap() {
            for key in [
                "key",
                "type",
                "label",
                "description",
                "default",
                "required",
                "choices",
            ] {
                assert!(field.get(key).is_some(), "{key} missing in {field}");
            }
        }
    }

    let (status, body) = admin.get("/api/v1/catalog/destinations/actions-nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error(&body).1.contains("actions-nope"));
}

#[tokio::test]
async fn destinations_are_managed_with_their_secrets_masked() {
    let (server, admin) = admin().await;
    let secret_url = "https://hooks.example/api/webhooks/wh_2?token=topsecret";

    let (status, body) = admin.get("/api/v1/destinations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"][0]["settings"]["chartmogul_webhook_url"],
        "https://chartmogul.example/…"
    );
    assert_eq!(body["data"][0]["mapping_count"], 2);

    let (status, body) = admin
        .post(
            "/api/v1/destinations",
            &json!({"name": "CM Two", "type": "actions-chartmogul", "sources": ["app"],
                    "settings": {"chartmogul_webhook_url": secret_url},
                    "delivery": {"max_concurrency": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cm-two-"));
    let base = format!("/api/v1/destinations/{id}");
    assert_eq!(
        body["data"]["settings"]["chartmogul_webhook_url"],
        "https://hooks.example/…"
    );
    assert_eq!(
        body["data"]["delivery"],
        json!({"max_concurrency": 5, "rate_limit": null, "retry_window_secs": 14400})
    );
    assert_eq!(body["data"]["enabled"], true);

    let (status, body) = admin.get(&base).await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (StatusCode::OK, &json!("CM Two"))
    );

    // Settings sent back masked keep the secret; other members change.
    let (status, body) = admin
        .patch(
            &base,
            &json!({"name": "CM 2", "settings": {"chartmogul_webhook_url": "https://hooks.example/…"},
                    "delivery": {"rate_limit": 10.0, "retry_window_secs": 600}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "CM 2");
    assert_eq!(
        body["data"]["delivery"],
        json!({"max_concurrency": 5, "rate_limit": 10.0, "retry_window_secs": 600})
    );
    let snapshot = server.state.snapshot();
    let stored = snapshot.destination(&id).unwrap();
    assert_eq!(
        stored.settings().str("chartmogul_webhook_url"),
        Some(secret_url)
    );
    assert_eq!(stored.delivery().retry_window_secs, 600);

    // Invalid changes are refused with the field, and change nothing.
    let (status, body) = admin
        .patch(
            &base,
            &json!({"settings": {"chartmogul_webhook_url": "not a url"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (kind, message, field) = error(&body);
    assert_eq!(
        (kind.as_str(), field.as_deref()),
        ("validation", Some("settings"))
    );
    assert!(message.starts_with("invalid settings:"), "{message}");
    let (status, body) = admin
        .patch(&base, &json!({"delivery": {"max_concurrency": 0}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).2.as_deref(), Some("delivery.max_concurrency"));
    let (status, body) = admin
        .patch(&base, &json!({"delivery": {"max_concurency": 3}}))
        .await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("delivery"))
    );
    let (status, body) = admin
        .post("/api/v1/destinations", &json!({"type": "actions-nope"}))
        .await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("type"))
    );
    let (status, body) = admin
        .post(
            "/api/v1/destinations",
            &json!({"type": "actions-chartmogul", "sources": ["nope"],
                    "settings": {"chartmogul_webhook_url": secret_url}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).2.as_deref(), Some("sources[0]"));
    let (status, _) = admin
        .post(
            "/api/v1/destinations",
            &json!({"id": "chartmogul", "type": "actions-chartmogul"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let snapshot = server.state.snapshot();
    assert_eq!(snapshot.destinations().len(), 2);
    assert_eq!(snapshot.destination(&id).unwrap().name(), "CM 2");

    // Enable, disable; connect, disconnect.
    let (status, body) = admin.post(&format!("{base}/disable"), &json!({})).await;
    assert_eq!(
        (status, &body["data"]["enabled"]),
        (StatusCode::OK, &json!(false))
    );
    assert!(!server.state.snapshot().destination(&id).unwrap().enabled());
    let (_, body) = admin.post(&format!("{base}/enable"), &json!({})).await;
    assert_eq!(body["data"]["enabled"], true);
    let (status, body) = admin.put(&format!("{base}/sources/web")).await;
    assert_eq!(
        (status, &body["data"]["sources"]),
        (StatusCode::OK, &json!(["app", "web"]))
    );
    let (_, body) = admin.put(&format!("{base}/sources/web")).await;
    assert_eq!(body["data"]["sources"], json!(["app", "web"]));
    let (status, body) = admin.delete(&format!("{base}/sources/app")).await;
    assert_eq!(
        (status, &body["data"]["sources"]),
        (StatusCode::OK, &json!(["web"]))
    );
    let (status, body) = admin.delete(&format!("{base}/sources/app")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error(&body).1.contains("not connected"));
    let (status, body) = admin.put(&format!("{base}/sources/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body).1, "source \"nope\" not found");

    // Delete, then every route of it is 404.
    let (status, _) = admin.delete(&base).await;
    assert_eq!(status, StatusCode::OK);
    let event = json!({"event": identify("x")});
    for (method, path, body) in [
        (Method::GET, base.clone(), json!(null)),
        (Method::PATCH, base.clone(), json!({"name": "x"})),
        (Method::DELETE, base.clone(), json!(null)),
        (Method::POST, format!("{base}/enable"), json!(null)),
        (Method::POST, format!("{base}/disable"), json!(null)),
        (Method::PUT, format!("{base}/sources/web"), json!(null)),
        (Method::DELETE, format!("{base}/sources/web"), json!(null)),
        (Method::GET, format!("{base}/mappings"), json!(null)),
        (
            Method::POST,
            format!("{base}/mappings"),
            json!({"action": "sendContact"}),
        ),
        (
            Method::GET,
            format!("{base}/mappings/contacts"),
            json!(null),
        ),
        (Method::POST, format!("{base}/test-event"), event.clone()),
        (
            Method::POST,
            format!("{base}/mappings/contacts/test"),
            event.clone(),
        ),
        (
            Method::POST,
            format!("{base}/test-authentication"),
            json!(null),
        ),
    ] {
        let request = admin.request(method.clone(), &path).json(&body);
        let (status, body) = admin.call(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(error(&body).1, format!("destination \"{id}\" not found"));
    }

    admin.assert_never_shown("topsecret");
    admin.assert_never_shown(WEBHOOK_SECRET);
}

#[tokio::test]
async fn mappings_are_filled_from_defaults_and_validated_on_save() {
    let (server, admin) = admin().await;
    let base = "/api/v1/destinations/chartmogul/mappings";

    let (status, body) = admin.get(base).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][0]["id"], "contacts");

    // Only the action: name, trigger and every field from the action's defaults.
    let (status, body) = admin.post(base, &json!({"action": "sendContact"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = &body["data"];
    assert!(created["id"].as_str().unwrap().starts_with("mapping-"));
    assert_eq!(created["name"], "Send Contact");
    assert_eq!(created["trigger"], "type = \"identify\"");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["use_defaults"], false);
    assert_eq!(
        created["mapping"]["email"],
        json!({"@path": "$.traits.email"})
    );
    assert_eq!(created["mapping"]["type"], "Send Contact");

    // Given fields over the defaults; a null clears one.
    let (status, body) = admin
        .post(
            base,
            &json!({"id": "tracked", "action": "sendContact", "name": "Tracked",
                    "trigger": "type = \"track\" and event = \"Signed Up\"",
                    "mapping": {"email": {"@path": "$.properties.email"}, "company": null}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mapping = &body["data"]["mapping"];
    assert_eq!(mapping["email"], json!({"@path": "$.properties.email"}));
    assert_eq!(mapping["user_id"], json!({"@path": "$.userId"}));
    assert!(mapping.get("company").is_none());
    let (status, body) = admin.get(&format!("{base}/tracked")).await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (StatusCode::OK, &json!("Tracked"))
    );
    let (status, _) = admin
        .post(base, &json!({"id": "tracked", "action": "sendContact"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // An invalid trigger: its position and reason, on the field; nothing saved.
    let before = server.state.snapshot().config().clone();
    let (status, body) = admin
        .post(
            base,
            &json!({"action": "sendContact", "trigger": "type = "}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (kind, message, field) = error(&body);
    assert_eq!(
        (kind.as_str(), field.as_deref()),
        ("validation", Some("trigger"))
    );
    assert!(
        message.starts_with("invalid trigger:") && message.contains("column 8"),
        "{message}"
    );
    // An invalid mapping: the reference's message, on the field.
    let (status, body) = admin
        .post(
            base,
            &json!({"action": "sendContact", "mapping": {"email": {"@path": 3}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, message, field) = error(&body);
    assert_eq!(field.as_deref(), Some("mapping"));
    assert!(message.starts_with("invalid mapping:"), "{message}");
    let (status, body) = admin.post(base, &json!({"action": "sendInvoice"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, message, field) = error(&body);
    assert_eq!(field.as_deref(), Some("action"));
    assert!(message.contains("sendContact, sendCustomer"), "{message}");
    let (status, _) = admin.post(base, &json!({"trigger": "type = \"x\""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(*server.state.snapshot().config(), before);

    // Update: fields merged, trigger checked; a new action starts from its defaults.
    let (status, body) = admin
        .patch(
            &format!("{base}/tracked"),
            &json!({"name": "Signed up", "mapping": {"first_name": null}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "Signed up");
    assert!(body["data"]["mapping"].get("first_name").is_none());
    assert_eq!(
        body["data"]["mapping"]["email"],
        json!({"@path": "$.properties.email"})
    );
    let (status, body) = admin
        .patch(
            &format!("{base}/tracked"),
            &json!({"trigger": "type = \"track\" and ("}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).2.as_deref(), Some("trigger"));
    let (status, body) = admin
        .patch(
            &format!("{base}/contacts"),
            &json!({"action": "sendCustomer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["mapping"]["type"], "Send Customer");

    // Enable, disable, delete.
    let (status, body) = admin
        .post(&format!("{base}/tracked/disable"), &json!({}))
        .await;
    assert_eq!(
        (status, &body["data"]["enabled"]),
        (StatusCode::OK, &json!(false))
    );
    let (_, body) = admin
        .post(&format!("{base}/tracked/enable"), &json!({}))
        .await;
    assert_eq!(body["data"]["enabled"], true);
    let (status, _) = admin.delete(&format!("{base}/tracked")).await;
    assert_eq!(status, StatusCode::OK);
    let event = json!({"event": identify("x")});
    for (method, path, body) in [
        (Method::GET, format!("{base}/tracked"), json!(null)),
        (
            Method::PATCH,
            format!("{base}/tracked"),
            json!({"name": "x"}),
        ),
        (Method::DELETE, format!("{base}/tracked"), json!(null)),
        (Method::POST, format!("{base}/tracked/enable"), json!(null)),
        (Method::POST, format!("{base}/tracked/disable"), json!(null)),
        (Method::POST, format!("{base}/tracked/test"), event.clone()),
    ] {
        let request = admin.request(method.clone(), &path).json(&body);
        let (status, body) = admin.call(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(
            error(&body).1,
            "mapping \"tracked\" of destination \"chartmogul\" not found"
        );
    }

    // At most 50: the 51st is refused naming the limit, as a conflict with the full destination
    // (it would be created once another is deleted).
    let count = server.state.snapshot().config().destinations[0]
        .mappings
        .len();
    for n in count..50 {
        let (status, body) = admin
            .post(
                base,
                &json!({"id": format!("m{n}"), "action": "sendCustomer"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = admin.post(base, &json!({"action": "sendCustomer"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (kind, message, _) = error(&body);
    assert_eq!(kind, "conflict");
    assert!(message.contains("at most 50 mappings"), "{message}");
    let (_, body) = admin.get(&format!("{base}?limit=20")).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 20);
    assert!(body["pagination"]["next"].is_string());
}

#[tokio::test]
async fn a_new_mapping_routes_the_next_event() {
    let (server, admin) = admin().await;
    let (status, body) = admin
        .post(
            "/api/v1/destinations/chartmogul/mappings",
            &json!({"id": "signups", "action": "sendContact",
                    "trigger": "type = \"track\" and event = \"Signed Up\"",
                    "mapping": {"email": {"@path": "$.properties.email"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let track = json!({"userId": "user-7", "messageId": "signup-1", "event": "Signed Up",
                       "properties": {"email": "sam@example.com"}});
    let (status, _) = server.send("/v1/track", &track).await;
    assert_eq!(status, StatusCode::OK);
    let record = server.record("signup-1").await;
    assert_eq!(record.jobs.len(), 1);
    assert_eq!(record.jobs[0].job.subscription_id, "signups");
    let sent: Value = serde_json::from_slice(&record.jobs[0].job.body).unwrap();
    assert_eq!(sent["email"], "sam@example.com");
    // The admin API's event lookup tells the same story.
    let (status, body) = admin.get("/api/v1/events/signup-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["events"][0]["jobs"][0]["mapping_id"],
        "signups"
    );

    // Disabled: the next event is not routed to it.
    let (status, _) = admin
        .post(
            "/api/v1/destinations/chartmogul/mappings/signups/disable",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let track = json!({"userId": "user-7", "messageId": "signup-2", "event": "Signed Up"});
    let (status, _) = server.send("/v1/track", &track).await;
    assert_eq!(status, StatusCode::OK);
    assert!(server.record("signup-2").await.jobs.is_empty());
    admin.assert_never_shown(WEBHOOK_SECRET);
}

/// A webhook on 127.0.0.1 port 0 that records what it receives and answers `status`.
struct Webhook {
    url: String,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone)]
struct WebhookState {
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn webhook_handler(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: String,
) -> (AxumStatus, [(&'static str, &'static str); 1], String) {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state
        .received
        .lock()
        .unwrap()
        .push(json!({"user_agent": agent, "body": body}));
    let status = AxumStatus::from_u16(state.status.load(Ordering::SeqCst)).unwrap();
    (status, [("x-webhook", "test")], r#"{"ok":true}"#.to_owned())
}

impl Webhook {
    async fn start() -> Self {
        let status = Arc::new(AtomicU16::new(200));
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/api/webhooks/{id}", post(webhook_handler))
            .with_state(WebhookState {
                status: status.clone(),
                received: received.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/api/webhooks/wh_test?token=hooksecret"),
            status,
            received,
        }
    }
}

/// A destination on `web` posting to `webhook`, with both default mappings created through the
/// API (and a disabled third one).
async fn destination_for(admin: &AdminClient, webhook: &Webhook) -> String {
    let (status, body) = admin
        .post(
            "/api/v1/destinations",
            &json!({"id": "local", "type": "actions-chartmogul", "sources": ["web"],
                    "settings": {"chartmogul_webhook_url": webhook.url}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for mapping in [
        json!({"id": "contacts", "action": "sendContact"}),
        json!({"id": "customers", "action": "sendCustomer"}),
        json!({"id": "off", "action": "sendContact", "enabled": false}),
    ] {
        let (status, body) = admin
            .post("/api/v1/destinations/local/mappings", &mapping)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    "/api/v1/destinations/local".to_owned()
}

#[tokio::test]
async fn the_event_tester_sends_through_every_enabled_mapping() {
    let (_server, admin) = admin().await;
    let webhook = Webhook::start().await;
    let base = destination_for(&admin, &webhook).await;

    let event = json!({"type": "identify", "userId": "user-1",
                       "traits": {"email": "jane@example.com"}});
    let (status, body) = admin
        .post(&format!("{base}/test-event"), &json!({"event": event}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    // Normalised as the Tracking API would.
    assert!(data["event"]["messageId"].is_string());
    assert!(data["event"]["receivedAt"].is_string());
    let results = data["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "the disabled mapping is not run: {body}");
    let contact = &results[0];
    assert_eq!(contact["mapping_id"], "contacts");
    assert_eq!(contact["matched"], true);
    assert_eq!(contact["outcome"], "sent");
    assert_eq!(contact["error"], Value::Null);
    let host = webhook.url.split("/api/").next().unwrap();
    assert_eq!(contact["request"]["url"], format!("{host}/…"));
    assert_eq!(contact["request"]["method"], "POST");
    assert_eq!(contact["request"]["body"]["email"], "jane@example.com");
    assert_eq!(contact["response"]["status"], 200);
    assert_eq!(contact["response"]["body"], json!({"ok": true}));
    assert!(
        contact["response"]["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-webhook", "test"]))
    );
    let customer = &results[1];
    assert_eq!(
        (
            &customer["mapping_id"],
            &customer["matched"],
            &customer["outcome"]
        ),
        (&json!("customers"), &json!(false), &json!("not_subscribed"))
    );
    assert_eq!(customer["request"], Value::Null);
    assert_eq!(customer["response"], Value::Null);
    {
        let received = webhook.received.lock().unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0]["user_agent"], "Segment (Actions)");
        assert_eq!(received[0]["body"], contact["request"]["body"]);
    }

    // A failing webhook: the status, and the response as it came.
    webhook.status.store(500, Ordering::SeqCst);
    let (_, body) = admin
        .post(&format!("{base}/test-event"), &json!({"event": event}))
        .await;
    let contact = &body["data"]["results"][0];
    assert_eq!(contact["outcome"], "http_error");
    assert_eq!(
        contact["error"],
        json!({"message": "Internal Server Error", "status": 500})
    );
    assert_eq!(contact["response"]["status"], 500);

    // A mapping that fails for this event reports why, and sends nothing.
    let anonymous_group = json!({"type": "group", "groupId": "g1", "anonymousId": "a1"});
    webhook.status.store(200, Ordering::SeqCst);
    let (_, body) = admin
        .post(
            &format!("{base}/test-event"),
            &json!({"event": anonymous_group}),
        )
        .await;
    let customer = &body["data"]["results"][1];
    assert_eq!(customer["matched"], true);
    assert_ne!(customer["outcome"], "sent", "{customer}");
    assert!(customer["error"]["message"].is_string());

    // An event the Tracking API would refuse.
    let (status, body) = admin
        .post(
            &format!("{base}/test-event"),
            &json!({"event": {"type": "identify"}}),
        )
        .await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("event"))
    );
    let (status, _) = admin.post(&format!("{base}/test-event"), &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    admin.assert_never_shown("hooksecret");
}

#[tokio::test]
async fn the_mapping_tester_evaluates_without_sending() {
    let (_server, admin) = admin().await;
    let webhook = Webhook::start().await;
    let base = destination_for(&admin, &webhook).await;
    let event = identify("tester-1");

    let (status, body) = admin
        .post(
            &format!("{base}/mappings/contacts/test"),
            &json!({"event": event}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["data"]["result"];
    assert_eq!(result["mapping_id"], "contacts");
    assert_eq!(
        (&result["matched"], &result["outcome"]),
        (&json!(true), &json!("ready"))
    );
    assert_eq!(result["request"]["body"]["message_id"], "tester-1");
    assert!(result["request"]["url"].as_str().unwrap().ends_with("/…"));
    assert_eq!(result["response"], Value::Null);

    let (_, body) = admin
        .post(
            &format!("{base}/mappings/customers/test"),
            &json!({"event": event}),
        )
        .await;
    assert_eq!(body["data"]["result"]["outcome"], "not_subscribed");
    let (_, body) = admin
        .post(
            &format!("{base}/mappings/off/test"),
            &json!({"event": event}),
        )
        .await;
    assert_eq!(
        (
            &body["data"]["result"]["outcome"],
            &body["data"]["result"]["matched"]
        ),
        (&json!("disabled"), &json!(true))
    );

    // An unsaved mapping, filled from the defaults like a new one.
    let (status, body) = admin
        .post(
            &format!("{base}/test-mapping"),
            &json!({"mapping": {"action": "sendContact", "mapping": {"email": {"@path": "$.traits.work_email"}}},
                    "event": {"type": "identify", "userId": "u2",
                              "traits": {"work_email": "w@example.com"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["data"]["result"];
    assert_eq!(result["outcome"], "ready");
    assert_eq!(result["request"]["body"]["email"], "w@example.com");
    let (_, body) = admin
        .post(
            &format!("{base}/test-mapping"),
            &json!({"mapping": {"action": "sendContact", "trigger": "type ="}, "event": event}),
        )
        .await;
    let result = &body["data"]["result"];
    assert_eq!(result["outcome"], "invalid_subscription");
    assert!(
        result["error"]["message"]
            .as_str()
            .unwrap()
            .contains("column")
    );
    let (status, body) = admin
        .post(
            &format!("{base}/test-mapping"),
            &json!({"mapping": {"action": "nope"}, "event": event}),
        )
        .await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("action"))
    );

    assert!(
        webhook.received.lock().unwrap().is_empty(),
        "the mapping tester sent something"
    );
    admin.assert_never_shown("hooksecret");
}

#[tokio::test]
async fn every_configuration_answer_masks_the_webhook() {
    let (_server, admin) = admin().await;
    for path in [
        "/api/v1/destinations",
        "/api/v1/destinations/chartmogul",
        "/api/v1/destinations/chartmogul/mappings",
        "/api/v1/destinations/chartmogul/mappings/contacts",
    ] {
        let (status, _) = admin.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    for path in ["enable", "disable", "sources/web"] {
        let request = admin.request(
            if path.starts_with("sources") {
                Method::PUT
            } else {
                Method::POST
            },
            &format!("/api/v1/destinations/chartmogul/{path}"),
        );
        let (status, _) = admin.call(request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _) = admin
        .patch(
            "/api/v1/destinations/chartmogul",
            &json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin
        .post(
            "/api/v1/destinations/chartmogul/mappings/contacts/test",
            &json!({"event": identify("m-1")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    admin.assert_never_shown(WEBHOOK_SECRET);
    admin.assert_never_shown(&WEBHOOK[WEBHOOK.len() - 12..]);
}

/// F5 of the hardening issue: what a change may hold is bounded (each field, each request), and
/// so is the history of versions the store keeps, whatever the number of changes.
#[tokio::test]
async fn stored_fields_and_the_workspace_history_are_bounded() {
    let (server, admin) = admin().await;
    // A name far past its limit: refused at its field, nothing stored.
    let before = server.store.config_versions().await.unwrap();
    let (status, body) = admin
        .patch("/api/v1/sources/web", &json!({"name": "n".repeat(10_000)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error(&body),
        (
            "validation".to_owned(),
            "too long: 10000 characters, at most 200".to_owned(),
            Some("name".to_owned())
        )
    );
    let (status, body) = admin
        .post(
            "/api/v1/destinations/chartmogul/mappings",
            &json!({"action": "sendContact", "trigger": format!("type = \"{}\"", "t".repeat(5_000))}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error(&body).2.as_deref(), Some("trigger"));
    // A request body past the admin API's limit: refused before it is read whole.
    let (status, body) = admin
        .patch(
            "/api/v1/sources/web",
            &json!({"name": "n".repeat(2 * 1024 * 1024)}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(server.store.config_versions().await.unwrap(), before);

    // Many changes: the store keeps the last 100 versions only.
    for n in 0..120 {
        let (status, body) = admin
            .patch("/api/v1/sources/web", &json!({"name": format!("Web {n}")}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let kept = server.store.config_versions().await.unwrap();
    assert_eq!(kept.len(), 100);
}

/// JSON has one number type: an integer member written `5.0` or `6e1` is the integer it says
/// (JSON Schema's `integer`, the OpenAPI document's), in a destination's delivery and in a replay;
/// a number with a fraction is still refused.
#[tokio::test]
async fn integers_may_be_written_with_a_fraction_or_an_exponent() {
    let (_server, admin) = admin().await;
    let base = "/api/v1/destinations/chartmogul";
    let (status, body) = admin
        .patch(
            base,
            &json!({"delivery": {"max_concurrency": 5.0, "retry_window_secs": 6e1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["delivery"],
        json!({"max_concurrency": 5, "rate_limit": null, "retry_window_secs": 60})
    );
    let (status, body) = admin
        .patch(base, &json!({"delivery": {"max_concurrency": 5.5}}))
        .await;
    assert_eq!(
        (status, error(&body).2.as_deref()),
        (StatusCode::BAD_REQUEST, Some("delivery")),
        "{body}"
    );

    // A replay of job 1.0 (none such in the dead letter) is a replay of job 1, not a refusal.
    let (status, body) = admin
        .post(
            "/api/v1/dead-letter/replay",
            &json!({"job_ids": [1.0], "filter": {"limit": 1e1, "since": 0.0}, "mode": "as_is"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!({"replayed": [], "failed": []}));
    let (status, _) = admin
        .post(
            "/api/v1/dead-letter/replay",
            &json!({"job_ids": [1.5], "mode": "as_is"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn saved_samples_are_kept_replaced_bounded_and_deleted() {
    let (server, admin) = admin().await;
    let samples = "/api/v1/destinations/chartmogul/samples";
    let (status, body) = admin.get(samples).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"data": []})));

    let pro = json!({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}});
    let put = |name: &str, body: Value| {
        admin.call(
            admin
                .request(Method::PUT, &format!("{samples}/{name}"))
                .json(&body),
        )
    };
    let (status, body) = put("Pro%20user", json!({"event": pro})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!({"name": "Pro user", "event": pro}));
    // The same name replaces; the list keeps the order of first saving.
    put(
        "Group",
        json!({"event": {"type": "group", "groupId": "g1"}}),
    )
    .await;
    let free = json!({"type": "identify", "userId": "u1", "traits": {"plan": "free"}});
    let (status, _) = put("Pro%20user", json!({"event": free})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = admin.get(samples).await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Pro user", "Group"]);
    assert_eq!(body["data"][0]["event"], free);

    // Refusals name the field and the reason.
    let (status, body) = put("x", json!({"event": [1, 2]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).2.as_deref(), Some("body"), "{body}");
    let (status, body) = put("%20", json!({"event": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body),
        (
            "validation".to_owned(),
            "a sample needs a name".to_owned(),
            Some("name".to_owned())
        )
    );
    let big = json!({"event": {"type": "identify", "traits": {"x": "y".repeat(40_000)}}});
    let (status, body) = put("big", big).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, message, field) = error(&body);
    assert_eq!(field.as_deref(), Some("event"), "{body}");
    assert!(message.starts_with("too large: "), "{message}");
    for i in 2..20 {
        let (status, _) = put(&format!("s{i}"), json!({"event": {"type": "track"}})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = put("one-too-many", json!({"event": {"type": "track"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).1.contains("at most 20 saved samples"),
        "{body}"
    );
    let (status, body) = put("s2", json!({"event": {"type": "page"}})).await;
    assert_eq!(status, StatusCode::OK, "replacing is still allowed: {body}");
    let (status, _) = admin.get("/api/v1/destinations/nope/samples").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Stored with the workspace: what a restart loads.
    let stored = server.store.load_config().await.unwrap().unwrap();
    assert_eq!(
        stored.document["destinations"][0]["samples"][0]["name"],
        "Pro user"
    );

    let (status, body) = admin.delete(&format!("{samples}/Group")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!({"name": "Group", "deleted": true}));
    let (status, body) = admin.delete(&format!("{samples}/Group")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error(&body).1,
        "sample \"Group\" of destination \"chartmogul\" not found"
    );
    let (_, body) = admin.get(samples).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 19);
}

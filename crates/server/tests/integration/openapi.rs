//! The OpenAPI document (`GET /api/v1/openapi.json`) kept true: the routes the routers are built
//! from (`admin_routes`, `tracking_routes`, the tables `admin_app` and `app` are made of) are
//! exactly the documented operations, with the documented authentication; and on running servers
//! every documented operation is answered (not `no such admin route`, not 405), every other method
//! on a documented path is 405, and only the documented public routes answer without a token.

use std::collections::BTreeSet;

use junction_event::Endpoint;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::util::{AdminClient, TestServer};

const TOKEN: &str = "openapi-test-token";

/// The methods an operation can be documented for (and probed with).
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What stands for every path parameter in probes: an id nothing has, so no probe changes
/// anything (handlers answer their own 404, or a 400 for the body).
const PROBE_ID: &str = "openapi-probe";

/// `(method, path, public)` of one operation.
type Operation = (String, String, bool);

async fn document(admin: &AdminClient, server: &TestServer) -> Value {
    // Fetched without the token: the document is public.
    let response = server
        .client
        .get(format!("{}/api/v1/openapi.json", admin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert_eq!(content_type, "application/json");
    response.json().await.unwrap()
}

/// Every documented operation; public when its `security` is `[]` (no requirement).
fn documented(doc: &Value) -> BTreeSet<Operation> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, operation) in item.as_object().unwrap() {
            let method = key.to_ascii_uppercase();
            if METHODS.contains(&method.as_str()) {
                let public = operation.get("security") == Some(&json!([]));
                operations.insert((method, path.clone(), public));
            }
        }
    }
    operations
}

fn served() -> BTreeSet<Operation> {
    let admin = junction_server::admin_routes();
    let tracking = junction_server::tracking_routes();
    let all: Vec<_> = admin.iter().chain(&tracking).collect();
    let operations: BTreeSet<Operation> = all
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned(), r.public))
        .collect();
    assert_eq!(operations.len(), all.len(), "a route is in two tables");
    operations
}

async fn servers() -> (TestServer, AdminClient) {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    (server, admin)
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_operation_served() {
    let (server, admin) = servers().await;
    let documented = documented(&document(&admin, &server).await);
    let served = served();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes served but not documented (or documented with other authentication), as \
         (method, path, public): {undocumented:?}\n\
         operations documented but not served: {unserved:?}\n\
         (crates/server/src/admin/openapi.json is the document)"
    );
    // Enough routes that an empty table (or document) cannot pass unnoticed.
    assert!(served.len() >= 40, "{served:?}");
}

/// The document's own consistency: every `$ref` resolves, every path parameter is declared,
/// every operation has an id (unique) and answers, every authenticated admin operation a 401.
#[tokio::test]
async fn the_document_is_well_formed() {
    let (server, admin) = servers().await;
    let doc = document(&admin, &server).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap();
        assert!(
            doc.pointer(pointer).is_some(),
            "unresolved $ref {reference}"
        );
    }

    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, operation) in item.as_object().unwrap() {
            if !METHODS.contains(&key.to_ascii_uppercase().as_str()) {
                continue;
            }
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{key} {path}: no success response"
            );
            let declared: BTreeSet<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|parameter| resolve(&doc, parameter))
                .filter(|parameter| parameter["in"] == "path")
                .map(|parameter| parameter["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                declared,
                path_parameters(path),
                "{key} {path}: path parameters"
            );
            let public = operation.get("security") == Some(&json!([]));
            if path.starts_with("/api/v1/") || path == "/metrics" {
                assert_eq!(
                    responses.contains_key("401"),
                    !public,
                    "{key} {path}: a 401 answer iff authenticated"
                );
            }
        }
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                refs.push(reference.clone());
            }
            object.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.strip_prefix('#').unwrap()).unwrap(),
        None => value,
    }
}

fn path_parameters(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

/// The concrete paths a documented path stands for: each parameter is [`PROBE_ID`], except an
/// enumerated one, which takes each of its values.
fn concrete_paths(doc: &Value, path: &str, operation: &Value) -> Vec<String> {
    let mut paths = vec![String::new()];
    for segment in path.split('/').skip(1) {
        let values: Vec<String> = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
        {
            None => vec![segment.to_owned()],
            Some(name) => {
                let parameter = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|parameter| resolve(doc, parameter))
                    .find(|parameter| parameter["name"] == name && parameter["in"] == "path")
                    .unwrap();
                match parameter["schema"]["enum"].as_array() {
                    Some(values) => values
                        .iter()
                        .map(|v| v.as_str().unwrap().to_owned())
                        .collect(),
                    None => vec![PROBE_ID.to_owned()],
                }
            }
        };
        paths = paths
            .iter()
            .flat_map(|prefix| values.iter().map(move |value| format!("{prefix}/{value}")))
            .collect();
    }
    paths
}

/// One probe's answer: status and body (empty for an event stream, which never ends).
async fn probe(request: reqwest::RequestBuilder, method: &Method) -> (StatusCode, String) {
    let request = if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
        // A body no handler accepts, so no probe changes anything.
        request.json(&json!([]))
    } else {
        request
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    let text = if stream {
        String::new()
    } else {
        response.text().await.unwrap()
    };
    (status, text)
}

/// The answer is one `operation` documents: its status is listed, and a JSON body has every
/// top-level member the documented schema requires (`data`, `errors`, `success`, …).
fn check_answer(doc: &Value, operation: &Value, status: StatusCode, text: &str, what: &str) {
    let documented = &operation["responses"][status.as_str()];
    assert!(
        documented.is_object(),
        "{what} answers {status}, which the document does not list: {text}"
    );
    let Some(schema) = resolve(doc, documented).pointer("/content/application~1json/schema") else {
        return;
    };
    let body: Value = serde_json::from_str(text)
        .unwrap_or_else(|err| panic!("{what} answers {status} with no JSON ({err}): {text}"));
    for key in resolve(doc, schema)["required"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = key.as_str().unwrap();
        assert!(
            body.get(key).is_some(),
            "{what}: the {status} answer lacks `{key}`: {text}"
        );
    }
}

/// True when the answer says the router has no such route (rather than a handler saying the id
/// is unknown).
fn unrouted(status: StatusCode, text: &str) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND
            && (text.contains("no such admin route") || text.contains("\"code\":\"not_found\"")))
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_a_running_server() {
    let (server, admin) = servers().await;
    let doc = document(&admin, &server).await;

    // The probes can tell an unrouted request from a handler's 404: check it first.
    for (base, path) in [
        (&admin.url, "/api/v1/openapi-probe-nothing"),
        (&admin.url, "/api/v1/sources/x/y/z"),
        (&server.url, "/v1/nothing"),
    ] {
        let request = server
            .client
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN);
        let (status, text) = probe(request, &Method::GET).await;
        assert!(unrouted(status, &text), "{path}: {status} {text}");
    }
    let (status, text) = probe(
        admin.request(Method::GET, "/api/v1/sources/nope"),
        &Method::GET,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        !unrouted(status, &text),
        "a handler's 404 reads as unrouted: {text}"
    );

    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let tracking = path.starts_with("/v1/");
        let base = if tracking { &server.url } else { &admin.url };
        let documented: Vec<&str> = METHODS
            .into_iter()
            .filter(|method| item.get(method.to_ascii_lowercase()).is_some())
            .collect();
        let first = &item[documented[0].to_ascii_lowercase()];
        for concrete in concrete_paths(&doc, path, first) {
            for method in METHODS {
                let method_name = method;
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let url = format!("{base}{concrete}");
                let with_token = server
                    .client
                    .request(method.clone(), &url)
                    .bearer_auth(TOKEN);
                let (status, text) = probe(with_token, &method).await;
                if !documented.contains(&method_name) {
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {concrete} is served but not documented"
                    );
                    continue;
                }
                probed += 1;
                assert!(
                    !unrouted(status, &text),
                    "{method} {concrete} is documented but answers {status} {text}"
                );
                let operation = &item[method_name.to_ascii_lowercase()];
                let what = format!("{method} {concrete}");
                check_answer(&doc, operation, status, &text, &what);
                if tracking {
                    // No write key, a body no endpoint takes: refused, not unrouted.
                    continue;
                }
                let public = operation.get("security") == Some(&json!([]));
                let anonymous = server.client.request(method.clone(), &url);
                let (status, text) = probe(anonymous, &method).await;
                check_answer(
                    &doc,
                    operation,
                    status,
                    &text,
                    &format!("{what} (no token)"),
                );
                assert_eq!(
                    status == StatusCode::UNAUTHORIZED,
                    !public,
                    "{method} {concrete} without a token answers {status}, documented public: \
                     {public}"
                );
            }
        }
    }
    assert!(probed >= 40, "only {probed} operations probed");
}

/// The Tracking API's documented paths are exactly its endpoints: each documented `/v1/…` path
/// (but analytics.js's telemetry, `/v1/m`) is an endpoint the handler reads, each endpoint has its
/// own route ([`junction_server::TRACKING_PATHS`]), and every name routed is documented.
#[tokio::test]
async fn the_tracking_endpoints_are_the_documented_ones() {
    let (server, admin) = servers().await;
    let doc = document(&admin, &server).await;
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|path| path.starts_with("/v1/") && *path != "/v1/m")
        .collect();
    for path in &documented {
        assert!(
            Endpoint::from_path(path).is_some(),
            "{path} is documented but not an endpoint"
        );
    }
    let routed: BTreeSet<&str> = junction_server::TRACKING_PATHS.into_iter().collect();
    assert_eq!(routed, documented, "routed endpoints and documented ones");
    // And the other way, as far as names can be listed: a new one-letter alias (analytics.js's
    // form) or a new name among these words, once the handler reads it, must be routed and
    // documented.
    let mut candidates: Vec<String> = ('a'..='z').map(String::from).collect();
    candidates.extend(
        [
            "identify", "track", "page", "screen", "group", "alias", "batch", "import", "event",
            "events", "capture", "send", "trace",
        ]
        .map(str::to_owned),
    );
    for candidate in candidates {
        let path = format!("/v1/{candidate}");
        if Endpoint::from_path(&path).is_some() {
            assert!(
                documented.contains(path.as_str()),
                "{path} is an endpoint but not documented"
            );
        }
    }
}

/// The route tables are the only way in: no source file but `routes.rs` (which builds routers
/// from the tables) adds a route to a router directly, so that no route escapes
/// `admin_routes`/`tracking_routes` and with them the comparison above.
#[test]
fn routes_are_added_only_through_the_tables() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") || path.ends_with("src/routes.rs") {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            assert!(
                !text.contains(call),
                "{} calls {call} directly: declare the route in a table (routes.rs's `Route`) \
                 so that it is listed and checked against the OpenAPI document",
                path.display()
            );
        }
    }
    assert!(
        checked > 10,
        "only {checked} source files found under {}",
        src.display()
    );
}

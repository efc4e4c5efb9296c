//! The app (`/` on the admin listener) as a browser meets it, over HTTP: sign-in and sessions,
//! CSRF and cross-site refusals, security headers, secrets never on a page, forms that work as
//! plain POSTs (JavaScript off), and the limits the services enforce shown on the page.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::util::{AdminClient, TestServer};

pub(crate) const TOKEN: &str = "app-admin-token-for-tests";

/// A browser: no redirects followed, the session cookie kept by hand.
pub(crate) struct Browser {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    pub(crate) fn new(admin: &AdminClient) -> Self {
        Self {
            base: admin.url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            if let Some(pair) = text.split(';').next()
                && pair.starts_with("junction_session=")
            {
                self.cookie = Some(pair.to_owned());
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        self.keep_cookie(&headers);
        (status, headers, response.text().await.unwrap())
    }

    /// A form POST as a same-origin page sends it (`Origin` of the app).
    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        self.post_from(path, form, &self.base.clone()).await
    }

    async fn post_from(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let body: String = url_encode(form);
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin)
            .body(body);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        self.keep_cookie(&headers);
        (status, headers, response.text().await.unwrap())
    }

    pub(crate) async fn sign_in(&mut self) {
        let (status, headers, _) = self
            .post("/sign-in", &[("token", TOKEN), ("next", "/")])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/");
        assert!(self.cookie.is_some());
    }

    /// The CSRF token of the page at `path`.
    pub(crate) async fn csrf(&mut self, path: &str) -> String {
        let (_, _, page) = self.get(path).await;
        let marker = "name=\"_csrf\" value=\"";
        let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
        page[start..start + 64].to_owned()
    }
}

fn url_encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn app() -> (TestServer, AdminClient, Browser) {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, Some(TOKEN)).await;
    let browser = Browser::new(&admin);
    (server, admin, browser)
}

#[tokio::test]
async fn pages_need_a_session_from_the_admin_token() {
    let (_server, _admin, mut browser) = app().await;
    let (status, headers, _) = browser.get("/destinations/chartmogul").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[LOCATION],
        "/sign-in?next=%2Fdestinations%2Fchartmogul"
    );

    let (status, _, page) = browser
        .post("/sign-in", &[("token", "not-the-token"), ("next", "/")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        page.contains("not this server&#39;s admin token")
            || page.contains("not this server's admin token")
    );
    assert!(browser.cookie.is_none());

    let (status, headers, _) = browser
        .post("/sign-in", &[("token", TOKEN), ("next", "//evil.example/")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/", "an off-site next is ignored");
    let cookie = headers[SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let (status, headers, page) = browser.get("/destinations/chartmogul").await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        !page.contains("<script>") && !page.contains("style=\""),
        "nothing inline"
    );

    // A stale or made-up cookie is no session.
    browser.cookie = Some("junction_session=made-up".to_owned());
    let (status, _, _) = browser.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Signing out ends the session: the cookie is cleared, and refused if sent again.
    browser.sign_in().await;
    let signed_in = browser.cookie.clone();
    let csrf = browser.csrf("/").await;
    let (status, _, _) = browser.post("/sign-out", &[("_csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = browser.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    browser.cookie = signed_in;
    let (status, _, _) = browser.get("/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a signed-out cookie sent again"
    );
}

#[tokio::test]
async fn a_session_signed_in_on_one_node_is_valid_on_another_with_the_same_token() {
    let (_server, _admin, mut first) = app().await;
    first.sign_in().await;
    let csrf = first.csrf("/").await;
    // A second server with the same admin token (a cluster's other node, or this one restarted).
    let (_other, other_admin, _) = app().await;
    let mut second = Browser::new(&other_admin);
    second.cookie = first.cookie.clone();
    let (status, _, page) = second.get("/sources").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&csrf), "the same CSRF token on every node");
    let (status, _, _) = second
        .post("/sources", &[("_csrf", &csrf), ("name", "Made elsewhere")])
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a form accepted by the other node"
    );

    // A server with another admin token accepts none of it.
    let server = TestServer::start().await;
    let stranger = AdminClient::start(&server, Some("another-admin-token")).await;
    let mut third = Browser::new(&stranger);
    third.cookie = first.cookie.clone();
    let (status, _, _) = third.get("/sources").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forged_and_tokenless_posts_are_refused() {
    let (_server, admin, mut browser) = app().await;
    browser.sign_in().await;
    let csrf = browser.csrf("/destinations/chartmogul/mappings").await;
    let path = "/destinations/chartmogul/mappings/contacts/action";

    let (status, _, _) = browser
        .post_from(
            path,
            &[("_csrf", &csrf), ("do", "disable")],
            "https://evil.example",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another site's form");
    let (status, _, _) = browser.post(path, &[("do", "disable")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let (status, _, _) = browser
        .post(
            path,
            &[("_csrf", "0".repeat(64).as_str()), ("do", "disable")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong CSRF token");
    let (_, mapping) = admin
        .get("/api/v1/destinations/chartmogul/mappings/contacts")
        .await;
    assert_eq!(mapping["data"]["enabled"], true, "nothing changed");

    let (status, headers, _) = browser
        .post(path, &[("_csrf", &csrf), ("do", "disable")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/destinations/chartmogul/mappings");
    let (_, mapping) = admin
        .get("/api/v1/destinations/chartmogul/mappings/contacts")
        .await;
    assert_eq!(mapping["data"]["enabled"], false);
}

#[tokio::test]
async fn no_page_shows_a_webhook_token_or_a_write_key() {
    let (_server, _admin, mut browser) = app().await;
    browser.sign_in().await;
    for path in [
        "/",
        "/destinations",
        "/destinations/chartmogul",
        "/destinations/chartmogul/mappings",
        "/destinations/chartmogul/mappings/contacts",
        "/destinations/chartmogul/tester",
        "/destinations/chartmogul/overview",
        "/destinations/chartmogul/dead-letter",
        "/sources",
        "/sources/web",
        "/sources/web/debugger",
    ] {
        let (status, _, page) = browser.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !page.contains("token=secret") && !page.contains("wh_1"),
            "{path}"
        );
        assert!(!page.contains(crate::util::WRITE_KEY), "{path}");
    }
    // A new key is shown once, on the page that made it, and masked afterwards.
    let csrf = browser.csrf("/sources/web").await;
    let (status, _, page) = browser
        .post("/sources/web/write-keys", &[("_csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let start = page.find("id=\"revealed-key\">").unwrap() + "id=\"revealed-key\">".len();
    let key = &page[start..start + 35];
    assert!(key.starts_with("wk_"), "{key}");
    let (_, _, again) = browser.get("/sources/web").await;
    assert!(!again.contains(key));
}

#[tokio::test]
async fn a_mapping_is_saved_from_a_plain_form() {
    let (_server, admin, mut browser) = app().await;
    browser.sign_in().await;
    let path = "/destinations/chartmogul/mappings/contacts";
    let csrf = browser.csrf(path).await;
    let event = json!({"type": "identify", "userId": "u1",
                       "traits": {"email": "a@example.com", "plan": "pro", "job_title": "CTO"}})
    .to_string();
    let mut form = vec![
        ("_csrf", csrf.as_str()),
        ("mapping_id", "contacts"),
        ("action", "sendContact"),
        ("mode", "builder"),
        ("t.top", "and"),
    ];
    for row in [
        ["cond", "", "type", "", "=", "identify"],
        ["cond", "", "traits", "plan", "=", "pro"],
    ] {
        for (name, value) in ["t.kind", "t.join", "t.field", "t.path", "t.op", "t.value"]
            .into_iter()
            .zip(row)
        {
            form.push((name, value));
        }
    }
    form.extend([
        ("event", event.as_str()),
        ("f.title.kind", "path"),
        ("f.title.value", "$.traits.job_title"),
        ("name", "Send Contact"),
        ("enabled", "1"),
    ]);

    // A preview first: the resolved payload, nothing saved.
    let mut preview = form.clone();
    preview.push(("op", "preview"));
    let (status, _, page) = browser.post(path, &preview).await;
    assert_eq!(status, StatusCode::OK);
    let at = page.find("preview-body").unwrap_or(0);
    assert!(
        page.contains("&#34;title&#34;: &#34;CTO&#34;"),
        "{}",
        &page[at..(at + 600).min(page.len())]
    );
    let (_, saved) = admin
        .get("/api/v1/destinations/chartmogul/mappings/contacts")
        .await;
    assert_eq!(saved["data"]["trigger"], "type = \"identify\"");

    form.push(("op", "save"));
    let (status, headers, _) = browser.post(path, &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("{path}?saved=1"));
    let (_, saved) = admin
        .get("/api/v1/destinations/chartmogul/mappings/contacts")
        .await;
    assert_eq!(
        saved["data"]["trigger"],
        "type = \"identify\" and traits.plan = \"pro\""
    );
    assert_eq!(
        saved["data"]["mapping"]["title"],
        json!({"@path": "$.traits.job_title"})
    );
    let (_, _, page) = browser.get(&format!("{path}?saved=1")).await;
    assert!(page.contains("type = &#34;identify&#34; and traits.plan = &#34;pro&#34;"));

    // "Generate from the fields": an event with a value at every path the mapping reads.
    let mut generate = form.clone();
    generate.retain(|(name, _)| *name != "op");
    generate.push(("op", "generate-event"));
    let (status, _, page) = browser.post(path, &generate).await;
    assert_eq!(status, StatusCode::OK);
    let start = page.find("name=\"event\"").unwrap();
    let textarea = &page[start..];
    let body = &textarea[textarea.find('>').unwrap() + 1..textarea.find("</textarea>").unwrap()];
    let generated: serde_json::Value = serde_json::from_str(&body.replace("&#34;", "\"")).unwrap();
    assert_eq!(generated["type"], "identify");
    assert_eq!(generated["traits"]["email"], "ada@example.com");
    assert_eq!(generated["traits"]["job_title"], "Example Title");
    assert_eq!(generated["traits"]["company"]["id"], "id-1");
}

/// A form POST of owned pairs.
async fn post_owned(
    browser: &mut Browser,
    path: &str,
    form: Vec<(String, String)>,
) -> (StatusCode, HeaderMap, String) {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post(path, &pairs).await
}

#[tokio::test]
async fn a_test_event_is_saved_as_a_sample_loaded_and_deleted_from_plain_forms() {
    let (_server, admin, mut browser) = app().await;
    browser.sign_in().await;
    let path = "/destinations/chartmogul/mappings/contacts";
    let csrf = browser.csrf(path).await;
    let event =
        json!({"type": "identify", "userId": "sample-user", "traits": {"plan": "pro"}}).to_string();
    let form = |op: &'static str, event: &str, name: &str| {
        vec![
            ("_csrf".to_owned(), csrf.clone()),
            ("mapping_id".to_owned(), "contacts".to_owned()),
            ("action".to_owned(), "sendContact".to_owned()),
            ("mode".to_owned(), "fql".to_owned()),
            ("fql".to_owned(), "type = \"identify\"".to_owned()),
            ("event".to_owned(), event.to_owned()),
            ("sample_name".to_owned(), name.to_owned()),
            ("sample".to_owned(), name.to_owned()),
            ("op".to_owned(), op.to_owned()),
        ]
    };
    let (status, _, page) =
        post_owned(&mut browser, path, form("save-sample", &event, "Pro user")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Saved the test event as sample “Pro user”."),
        "{page}"
    );
    assert!(page.contains("<option value=\"Pro user\" selected>Pro user</option>"));
    let (_, body) = admin.get("/api/v1/destinations/chartmogul/samples").await;
    assert_eq!(body["data"][0]["event"]["userId"], "sample-user");

    // A test event that is not JSON is not saved, and the page says why at the name.
    let (_, _, page) = post_owned(
        &mut browser,
        path,
        form("save-sample", "{not json", "Broken"),
    )
    .await;
    assert!(
        page.contains("the test event is not JSON: fix it to save it"),
        "{page}"
    );

    // Loading the sample replaces whatever the event box held; a new editor starts from it when
    // the trigger matches and no recent event does.
    let (_, _, page) = post_owned(&mut browser, path, form("load-sample", "{}", "Pro user")).await;
    assert!(
        page.contains("&#34;userId&#34;: &#34;sample-user&#34;"),
        "{page}"
    );
    let (_, _, page) = browser.get(path).await;
    assert!(page.contains("&#34;userId&#34;: &#34;sample-user&#34;"));

    let (_, _, page) = post_owned(
        &mut browser,
        path,
        form("delete-sample", &event, "Pro user"),
    )
    .await;
    assert!(page.contains("Deleted sample “Pro user”."), "{page}");
    assert!(page.contains("none saved yet"));
    let (_, body) = admin.get("/api/v1/destinations/chartmogul/samples").await;
    assert_eq!(body["data"], json!([]));
}

#[tokio::test]
async fn the_fifty_first_mapping_is_refused_with_the_reason() {
    let (_server, admin, mut browser) = app().await;
    for i in 0..48 {
        let (status, _) = admin
            .post(
                "/api/v1/destinations/chartmogul/mappings",
                &json!({"id": format!("m{i}"), "action": "sendContact", "enabled": false}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    browser.sign_in().await;
    let (_, _, page) = browser.get("/destinations/chartmogul/mappings").await;
    assert!(page.contains("id=\"limit-note\""), "the full table says so");
    let csrf = browser.csrf("/destinations/chartmogul/mappings").await;
    let (status, _, page) = browser
        .post(
            "/destinations/chartmogul/mappings/contacts/action",
            &[("_csrf", &csrf), ("do", "duplicate")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("at most 50 mappings"), "{page}");
}

#[tokio::test]
async fn without_a_token_a_loopback_browser_needs_no_sign_in() {
    let server = TestServer::start().await;
    let admin = AdminClient::start(&server, None).await;
    let mut browser = Browser::new(&admin);
    let (status, headers, _) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key(SET_COOKIE));
    let (status, _, _) = browser.get("/sign-in").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Still no form without the session's token.
    let (status, _, _) = browser
        .post(
            "/destinations/chartmogul/mappings/contacts/action",
            &[("do", "disable")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn audiences_are_previewed_created_connected_and_deleted_from_plain_forms() {
    let (_server, _admin, mut browser) = app().await;
    browser.sign_in().await;
    let csrf = browser.csrf("/audiences").await;
    let (status, _, page) = browser.get("/audiences").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No audience yet"), "{page}");

    let definition = [
        ("_csrf", csrf.as_str()),
        ("name", "Order completed, last 30 days"),
        ("kind", "audience"),
        (
            "query",
            "event('Order Completed').within(30 days).count() >= 1",
        ),
    ];
    let mut previewing = definition.to_vec();
    previewing.push(("preview", "1"));
    let (status, _, page) = browser.post("/audiences", &previewing).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Preview: 0 of 0 profiles"), "{page}");
    assert!(page.contains("nothing was saved"), "{page}");

    let mut broken = definition.to_vec();
    broken[3] = ("query", "event('Order Completed').count( >= 1");
    let (status, _, page) = browser.post("/audiences", &broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("column"),
        "the error names its column: {page}"
    );

    let (status, headers, _) = browser.post("/audiences", &definition).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/audiences");
    let (_, _, page) = browser.get("/audiences").await;
    assert!(page.contains("order_completed_last_30_days"), "{page}");

    let path = "/audiences/order_completed_last_30_days";
    let action = format!("{path}/action");
    let connect = [
        ("_csrf", csrf.as_str()),
        ("do", "connect"),
        ("destination", "chartmogul"),
        ("schedule", "24"),
    ];
    let (status, _, _) = browser.post(&action, &connect).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browser.get(path).await;
    assert!(page.contains("every 24 hours"), "{page}");
    let edit = [
        ("_csrf", csrf.as_str()),
        ("do", "edit"),
        ("name", "Ordered lately"),
        (
            "query",
            "event('Order Completed').within(7 days).count() >= 1",
        ),
    ];
    let (status, _, page) = browser.post(&action, &edit).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Saved"), "{page}");
    assert!(page.contains("within(7 days)"), "{page}");
    // This test server runs no profile worker: a sync now is refused with the reason.
    let sync = [
        ("_csrf", csrf.as_str()),
        ("do", "sync"),
        ("destination", "chartmogul"),
    ];
    let (status, _, page) = browser.post(&action, &sync).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("no profile worker"), "{page}");

    let (status, _, page) = browser
        .get("/profiles?id_type=email&value=nobody%40example.com")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("no profile with email"), "{page}");

    let delete = [("_csrf", csrf.as_str()), ("do", "delete")];
    let (status, headers, _) = browser.post(&action, &delete).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/audiences");
    let (status, _, _) = browser.get(path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

//! Who may use the app, and proof that a form came from it: sessions (the admin token exchanged
//! once for a signed cookie), the CSRF check of every unsafe request, and the security headers of
//! every answer.
//!
//! A session is a cookie `<id>.<issued>.<signature>` (`HttpOnly; SameSite=Strict`, `Secure`
//! behind a TLS proxy): a random id, when it was issued (Unix seconds) and an HMAC-SHA256 of both
//! keyed by the admin token. Nothing is kept on the server, so every node of a cluster (which
//! share the admin token) accepts a session any of them issued, a restart keeps everyone signed
//! in, and a changed admin token ends every session. The CSRF token is the HMAC of the id, the
//! same on every node. A session ends [`IDLE`] after its cookie was last renewed (each request
//! renews it once it is [`RENEW_AFTER`] old), or when the browser signs out: the cookie is
//! cleared and its id refused by this node until it would have expired anyway.
//! Without an admin token (the admin listener then answers loopback hosts only) a browser gets a
//! session on its first page without signing in, so that forms still carry a CSRF token; the
//! key is then random per process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::admin::{AdminState, constant_time_eq};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "junction_session";
/// A session whose cookie was not renewed for this long has ended: the next request signs in
/// again.
pub(crate) const IDLE: Duration = Duration::from_secs(8 * 60 * 60);
/// A request renews its session's cookie once the cookie is this old, so that an active session
/// lasts and an idle one ends [`IDLE`] after its last renewal.
const RENEW_AFTER: Duration = Duration::from_secs(10 * 60);
/// The most signed-out ids this node remembers; past it the one expiring first is dropped.
const MAX_SIGNED_OUT: usize = 10_000;
/// The form field (and, for htmx, the header) carrying the CSRF token.
pub(crate) const CSRF_FIELD: &str = "_csrf";
/// The header htmx sends the CSRF token in (`hx-headers` on `<body>`).
const CSRF_HEADER: &str = "x-csrf-token";
/// Every page's policy: nothing inline, nothing from elsewhere, never in a frame.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; object-src 'none'";

/// The app's sessions: the key that signs their cookies, and the ids signed out on this node.
pub(crate) struct Sessions {
    key: Vec<u8>,
    /// Signed-out session id → when its cookie would have expired anyway.
    signed_out: Mutex<HashMap<String, u64>>,
}

/// A session as its cookie carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    id: String,
    issued: u64,
}

/// What a handler knows of the request's session.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    /// The token forms must send back.
    pub(crate) csrf: String,
    /// Whether signing out means anything (an admin token is configured).
    pub(crate) signed_in: bool,
}

impl Sessions {
    /// Sessions signed with `token` (the admin token), or with a random key when there is none.
    pub(crate) fn new(token: Option<&str>) -> Self {
        let key = match token {
            // A key of its own for the app, derived from the token, rather than the token itself.
            Some(token) => mac(token.as_bytes(), b"junction app sessions v1"),
            None => random_token().into_bytes(),
        };
        Self {
            key,
            signed_out: Mutex::default(),
        }
    }

    /// A new session issued `now` (Unix seconds): its cookie value and its CSRF token.
    fn create(&self, now: u64) -> (String, String) {
        let id = random_token();
        (self.cookie_value(&id, now), self.csrf(&id))
    }

    fn cookie_value(&self, id: &str, issued: u64) -> String {
        let signature = hex(&mac(&self.key, format!("{id}.{issued}").as_bytes()));
        format!("{id}.{issued}.{signature}")
    }

    /// The session a cookie value stands for, when its signature is right, it has not expired
    /// at `now` and it was not signed out here.
    fn verify(&self, value: &str, now: u64) -> Option<Cookie> {
        let (signed, signature) = value.rsplit_once('.')?;
        let (id, issued) = signed.split_once('.')?;
        let expected = hex(&mac(&self.key, signed.as_bytes()));
        if id.is_empty() || !constant_time_eq(signature.as_bytes(), expected.as_bytes()) {
            return None;
        }
        let issued: u64 = issued.parse().ok()?;
        // A cookie from the future (a clock set back) is refused rather than trusted for longer.
        if issued > now.saturating_add(60) || now.saturating_sub(issued) >= IDLE.as_secs() {
            return None;
        }
        let signed_out = self.signed_out.lock().ok()?.contains_key(id);
        (!signed_out).then(|| Cookie {
            id: id.to_owned(),
            issued,
        })
    }

    /// The CSRF token of session `id`: the same on every node that shares the key.
    fn csrf(&self, id: &str) -> String {
        hex(&mac(&self.key, format!("csrf.{id}").as_bytes()))
    }

    /// Refuses session `cookie` on this node from now on.
    fn sign_out(&self, cookie: &Cookie, now: u64) {
        if let Ok(mut map) = self.signed_out.lock() {
            map.retain(|_, expires| *expires > now);
            if map.len() >= MAX_SIGNED_OUT
                && let Some(first) = map
                    .iter()
                    .min_by_key(|(_, expires)| **expires)
                    .map(|(id, _)| id.clone())
            {
                map.remove(&first);
            }
            map.insert(cookie.id.clone(), cookie.issued + IDLE.as_secs());
        }
    }
}

/// HMAC-SHA256 of `data` under `key`.
fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// 244 random bits as 64 hex digits, from the OS's CSPRNG (two v4 UUIDs).
fn random_token() -> String {
    let mut token: String = junction_event::random_message_id()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    token.extend(
        junction_event::random_message_id()
            .chars()
            .filter(char::is_ascii_hexdigit),
    );
    token
}

/// The session id the request's cookie names, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Whether the browser reached us over TLS (through a proxy that says so): then the cookie is
/// `Secure`.
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

fn set_cookie(headers: &HeaderMap, id: &str) -> HeaderValue {
    let secure = if behind_tls(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("junction_session=; Path=/"))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("junction_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A request a browser sent from another site: its `Sec-Fetch-Site` says so, or its `Origin` is
/// not this host. A request with neither header (not a browser) is left to the CSRF token.
fn cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let origin = origin.to_str().unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host.is_none_or(|origin_host| !origin_host.eq_ignore_ascii_case(host))
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Paths served to anyone: the sign-in page and the static files.
fn is_public(path: &str) -> bool {
    path == "/sign-in" || path.starts_with("/assets/")
}

/// Every app request passes here: security headers on the answer; unsafe methods must come from
/// this site; pages need a live session (else to the sign-in page) and unsafe methods its CSRF
/// token.
pub(crate) async fn guard(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = check(&state, request, next).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn check(state: &AdminState, request: Request, next: Next) -> Response {
    let unsafe_method = is_unsafe(request.method());
    if unsafe_method && cross_site(request.headers()) {
        return refused("this form was sent from another site; open the app and try again");
    }
    let path = request.uri().path().to_owned();
    if is_public(&path) {
        return next.run(request).await;
    }
    let now = unix_now();
    let live = session_cookie(request.headers())
        .as_deref()
        .and_then(|value| state.sessions.verify(value, now));
    let signed_in = state.token.is_some();
    let (csrf, new_cookie) = match live {
        Some(cookie) => {
            let renew = now.saturating_sub(cookie.issued) >= RENEW_AFTER.as_secs();
            let renewed = renew.then(|| {
                set_cookie(
                    request.headers(),
                    &state.sessions.cookie_value(&cookie.id, now),
                )
            });
            (state.sessions.csrf(&cookie.id), renewed)
        }
        None if signed_in || unsafe_method => {
            if unsafe_method && !signed_in {
                return refused("your session has expired; reload the page and try again");
            }
            return to_sign_in(&request);
        }
        // No token configured: loopback only, no sign-in, but a session for the CSRF token.
        None => {
            let (value, csrf) = state.sessions.create(now);
            (csrf, Some(set_cookie(request.headers(), &value)))
        }
    };
    let request = if unsafe_method {
        match with_csrf_checked(request, &csrf).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    } else {
        request
    };
    let mut request = request;
    request
        .extensions_mut()
        .insert(SessionInfo { csrf, signed_in });
    let mut response = next.run(request).await;
    if let Some(cookie) = new_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The request, its body buffered back in, when its CSRF token (header or form field) is the
/// session's.
async fn with_csrf_checked(request: Request, csrf: &str) -> Result<Request, Response> {
    let header_token = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, crate::admin::ADMIN_BODY_LIMIT)
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                super::html_message("This form is too large."),
            )
                .into_response()
        })?;
    let form_token = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    let given = header_token.or(form_token).unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), csrf.as_bytes()) {
        return Err(refused(
            "this form's security token is not your session's; reload the page and try again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn refused(message: &str) -> Response {
    (StatusCode::FORBIDDEN, super::html_message(message)).into_response()
}

/// To the sign-in page, coming back here afterwards (htmx is told to load it whole).
fn to_sign_in(request: &Request) -> Response {
    let back = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let target = format!(
        "/sign-in?next={}",
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    if request.headers().contains_key("hx-request") {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = HeaderValue::from_str(&target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    Redirect::to(&target).into_response()
}

/// Signs a browser in when `token` is the admin token: a new session and its cookie, then on to
/// `next` (a path of this app only). `None` when the token is wrong.
pub(crate) fn sign_in(
    state: &AdminState,
    headers: &HeaderMap,
    token: &str,
    next: &str,
) -> Option<Response> {
    let expected = state.token.as_deref()?;
    if !constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) {
        return None;
    }
    let (value, _) = state.sessions.create(unix_now());
    let mut response = Redirect::to(safe_next(next)).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(headers, &value));
    Some(response)
}

/// Ends the request's session.
pub(crate) fn sign_out(state: &AdminState, headers: &HeaderMap) -> Response {
    let now = unix_now();
    if let Some(cookie) = session_cookie(headers)
        .as_deref()
        .and_then(|value| state.sessions.verify(value, now))
    {
        state.sessions.sign_out(&cookie, now);
    }
    let target = if state.token.is_some() {
        "/sign-in"
    } else {
        "/"
    };
    let mut response = Redirect::to(target).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie());
    response
}

/// A path of this app to go on to after signing in; anything else (another site, `//host`) is
/// the home page.
pub(crate) fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn other_sites_are_cross_site() {
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:8081")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:8081"),
            ("origin", "http://127.0.0.1:8081"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8081"),
            ("origin", "http://evil.example"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8081"),
            ("origin", "null"),
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:8081"),
            ("sec-fetch-site", "cross-site"),
        ])));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/destinations/cm"), "/destinations/cm");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
    }

    #[test]
    fn a_session_is_signed_shared_by_nodes_with_the_token_and_expires() {
        let now = 1_800_000_000;
        let node_a = Sessions::new(Some("admin-token"));
        let node_b = Sessions::new(Some("admin-token"));
        let (value, csrf) = node_a.create(now);
        let cookie = node_b.verify(&value, now + 60).unwrap();
        assert_eq!(node_b.csrf(&cookie.id), csrf);
        assert_eq!(node_a.csrf(&cookie.id), node_b.csrf(&cookie.id));
        assert_eq!(node_a.csrf(&cookie.id).len(), 64);
        assert_ne!(node_a.csrf(&cookie.id), node_a.csrf("another"));

        // Another token, a changed id or time, or an old cookie: refused.
        assert_eq!(Sessions::new(Some("other")).verify(&value, now), None);
        let (id, rest) = value.split_once('.').unwrap();
        let forged_id = format!("{}x.{rest}", &id[..id.len() - 1]);
        assert_eq!(node_a.verify(&forged_id, now), None);
        let (signed, signature) = value.rsplit_once('.').unwrap();
        let (id, _) = signed.split_once('.').unwrap();
        assert_eq!(
            node_a.verify(&format!("{id}.{}.{signature}", now + 1), now),
            None
        );
        assert_eq!(node_a.verify(&value, now + IDLE.as_secs()), None);
        assert!(node_a.verify(&value, now + IDLE.as_secs() - 1).is_some());
        assert_eq!(
            node_a.verify(&value, now - 3_600),
            None,
            "issued in the future"
        );
        for junk in ["", ".", "..", "a.b.c", "a.1", &format!("{value}.x")] {
            assert_eq!(node_a.verify(junk, now), None, "{junk:?}");
        }

        // Signed out on a node: refused there until it would have expired.
        node_a.sign_out(&cookie, now);
        assert_eq!(node_a.verify(&value, now), None);
        assert!(node_b.verify(&value, now).is_some());
        node_a.sign_out(&cookie, now + IDLE.as_secs() + 1);
        assert_eq!(random_token().len(), 64);
    }

    #[test]
    fn without_a_token_the_key_is_random_per_process() {
        let a = Sessions::new(None);
        let (value, _) = a.create(100);
        assert!(a.verify(&value, 100).is_some());
        assert_eq!(Sessions::new(None).verify(&value, 100), None);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=b; junction_session=xyz; c=d")]);
        assert_eq!(session_cookie(&map).as_deref(), Some("xyz"));
    }
}

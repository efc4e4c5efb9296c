//! Who may use the app, and proof that a form came from it: sessions (the admin token exchanged
//! once for a random cookie), the CSRF check of every unsafe request, and the security headers of
//! every answer.
//!
//! A session is a random id in an `HttpOnly; SameSite=Strict` cookie (`Secure` behind a TLS
//! proxy), kept in memory with its CSRF token and forgotten after [`IDLE`] without a request.
//! Without an admin token (the admin listener then answers loopback hosts only) a browser gets a
//! session on its first page without signing in, so that forms still carry a CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::admin::{AdminState, constant_time_eq};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "junction_session";
/// A session unused this long is forgotten: the next request signs in again.
pub(crate) const IDLE: Duration = Duration::from_secs(8 * 60 * 60);
/// The most sessions kept; past it the least recently used is dropped (memory stays bounded even
/// when, without a token, every loopback visit makes one).
const MAX_SESSIONS: usize = 10_000;
/// The form field (and, for htmx, the header) carrying the CSRF token.
pub(crate) const CSRF_FIELD: &str = "_csrf";
/// The header htmx sends the CSRF token in (`hx-headers` on `<body>`).
const CSRF_HEADER: &str = "x-csrf-token";
/// Every page's policy: nothing inline, nothing from elsewhere, never in a frame.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; object-src 'none'";

/// The app's sessions, in memory (a restart signs everyone out, which is fine for an admin app).
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

#[derive(Clone)]
struct Session {
    csrf: String,
    last_seen: Instant,
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
    /// A new session: its id (the cookie) and CSRF token.
    fn create(&self) -> (String, String) {
        let id = random_token();
        let csrf = random_token();
        let now = Instant::now();
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, session| now.duration_since(session.last_seen) < IDLE);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, session)| session.last_seen)
                    .map(|(id, _)| id.clone())
            {
                map.remove(&oldest);
            }
            map.insert(
                id.clone(),
                Session {
                    csrf: csrf.clone(),
                    last_seen: now,
                },
            );
        }
        (id, csrf)
    }

    /// The CSRF token of a live session, which this request keeps alive.
    fn touch(&self, id: &str) -> Option<String> {
        let mut map = self.map.lock().ok()?;
        let now = Instant::now();
        let session = map.get_mut(id)?;
        if now.duration_since(session.last_seen) >= IDLE {
            map.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.csrf.clone())
    }

    fn remove(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(id);
        }
    }
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
    let cookie = session_cookie(request.headers());
    let live = cookie
        .as_deref()
        .and_then(|id| state.sessions.touch(id).map(|csrf| (id.to_owned(), csrf)));
    let signed_in = state.token.is_some();
    let (csrf, new_cookie) = match live {
        Some((_, csrf)) => (csrf, None),
        None if signed_in || unsafe_method => {
            if unsafe_method && !signed_in {
                return refused("your session has expired; reload the page and try again");
            }
            return to_sign_in(&request);
        }
        // No token configured: loopback only, no sign-in, but a session for the CSRF token.
        None => {
            let (id, csrf) = state.sessions.create();
            (csrf, Some(set_cookie(request.headers(), &id)))
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
    let (id, _) = state.sessions.create();
    let mut response = Redirect::to(safe_next(next)).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(headers, &id));
    Some(response)
}

/// Ends the request's session.
pub(crate) fn sign_out(state: &AdminState, headers: &HeaderMap) -> Response {
    if let Some(id) = session_cookie(headers) {
        state.sessions.remove(&id);
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
    fn sessions_expire_and_are_removed() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.create();
        assert_eq!(sessions.touch(&id), Some(csrf));
        sessions.remove(&id);
        assert_eq!(sessions.touch(&id), None);
        assert_eq!(random_token().len(), 64);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=b; junction_session=xyz; c=d")]);
        assert_eq!(session_cookie(&map).as_deref(), Some("xyz"));
    }
}

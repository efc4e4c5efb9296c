//! Request extraction with our error format: the size-limited body reader of the Tracking API
//! (the limit counts decompressed bytes) and [`ApiJson`] for JSON APIs.

use axum::Json;
use axum::body::{Body, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::listener::BodyTimeout;

/// Reads a request body of at most `limit` bytes. The decompression layer sits outside the
/// router, so a gzip body arrives here decompressed and the limit counts what it inflates to;
/// reading stops as soon as the limit is passed, so a compression bomb costs at most `limit`
/// bytes of memory.
pub async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    // Sized from `Content-Length` when it is known (not for gzip bodies), so that a 500 KB
    // batch is copied once rather than through every doubling of the buffer; never beyond the
    // limit, whatever the header claims.
    let announced = usize::try_from(HttpBody::size_hint(&body).lower()).unwrap_or(usize::MAX);
    let mut buffer = Vec::with_capacity(announced.min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            let err = err.into_inner();
            match body_timeout_in(&*err) {
                Some(timeout) => ApiError::BodyTimeout(timeout.clone()),
                None => ApiError::UnreadableBody(err.to_string()),
            }
        })?;
        let Ok(data) = frame.into_data() else {
            // Trailers carry nothing the Tracking API reads.
            continue;
        };
        if buffer.len().saturating_add(data.len()) > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
        buffer.extend_from_slice(&data);
    }
    Ok(buffer)
}

/// The listener's [`BodyTimeout`] behind a body error, however the layers between wrapped it
/// (the decompression layer reads through an `io::Error`).
fn body_timeout_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimeout> {
    let mut next = Some(err);
    while let Some(cause) = next {
        if let Some(timeout) = cause.downcast_ref::<BodyTimeout>() {
            return Some(timeout);
        }
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && let Some(timeout) = body_timeout_in(inner)
        {
            return Some(timeout);
        }
        next = cause.source();
    }
    None
}

/// Like [`axum::Json`], but a body that is not the expected JSON is refused with our error
/// format (`{"success": false, "code": "invalid_json", "error": …}`), keeping axum's status
/// (400 for syntax, 415 without a JSON content type, 422 for the wrong shape).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::InvalidJson {
                status: rejection.status(),
                message: rejection.body_text(),
            }),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        Json(self.0).into_response()
    }
}

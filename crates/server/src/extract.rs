//! Request extraction with our error format: the size-limited body reader of the Tracking API
//! (the limit counts decompressed bytes) and [`ApiJson`] for JSON APIs.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads a request body of at most `limit` bytes. The decompression layer sits outside the
/// router, so a gzip body arrives here decompressed and the limit counts what it inflates to;
/// reading stops as soon as the limit is passed, so a compression bomb costs at most `limit`
/// bytes of memory.
pub async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut buffer = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| ApiError::UnreadableBody(err.to_string()))?;
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

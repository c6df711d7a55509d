//! JSON request bodies (see [`JsonBody`]).

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use super::ApiError;

/// A JSON request body. `Content-Type: application/json` is required (415 otherwise): a web
/// page on another site can send a `text/plain` or form POST without asking the server first,
/// but a JSON one only after a CORS preflight, which the API never grants. Every handler that
/// takes a body takes it through this extractor.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let is_json = content_type.as_deref().is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        });
        if !is_json {
            let found = match content_type {
                Some(t) => format!("Content-Type {t:?} is not supported"),
                None => "the request has no Content-Type".into(),
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{found}: send the body as JSON with Content-Type: application/json"),
            ));
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    e.status(),
                    format!("cannot read the request body: {}", e.body_text()),
                )
            })?;
        serde_json::from_slice(&body).map(JsonBody).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid request body: {e}"),
            )
        })
    }
}

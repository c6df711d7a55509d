//! API errors: a status and a message, sent as `{"error": "..."}` with credentials hidden.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An API error: a status and a message.
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// An error with this status and message (the message is the `error` field).
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Every error message leaves through here: credentials are hidden whatever produced it.
        let message = crate::redact::redact_text(&self.1);
        let mut response = (self.0, Json(serde_json::json!({ "error": message }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        }
        response
    }
}

/// 404 for a stream name that does not exist (the message of `HubError::NotFound`).
pub fn not_found(name: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no stream named {name:?}"))
}

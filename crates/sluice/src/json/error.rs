//! API errors: a status and a message, sent as `{"error": "..."}` with credentials hidden.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An API error: a status, a message, and optional fields that say more (which request key is
/// wrong, the typed cause of a camera failure).
pub struct ApiError {
    status: StatusCode,
    message: String,
    fields: Vec<(&'static str, String)>,
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error with this status and message (the message is the `error` field).
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    /// The same error with one more field in its JSON body, e.g. `key` (the request key that
    /// is wrong, so a form can show the message next to its field) or `kind`.
    pub fn with(mut self, field: &'static str, value: impl Into<String>) -> ApiError {
        self.fields.push((field, value.into()));
        self
    }

    /// The same error with a `Retry-After` header of this many seconds.
    pub fn retry_after(mut self, secs: u32) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Every error message leaves through here: credentials are hidden whatever produced it.
        let mut body = serde_json::Map::new();
        body.insert(
            "error".into(),
            crate::redact::redact_text(&self.message)
                .into_owned()
                .into(),
        );
        for (field, value) in self.fields {
            body.insert(
                field.into(),
                crate::redact::redact_text(&value).into_owned().into(),
            );
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// 404 for a stream name that does not exist (the message of `HubError::NotFound`).
pub fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no stream named {name:?}"))
}

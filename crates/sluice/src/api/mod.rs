//! The REST API: streams under `/api/streams` ([`streams`]) and probing a source before adding
//! it (`/api/probe`, [`probe`]). JSON in, JSON out, errors as `{"error": "..."}` (with a `key`
//! naming the request field at fault where there is one, and a `kind` for camera failures).
//!
//! When `server.api_token` is set, every call needs `Authorization: Bearer <token>`, outputs'
//! API routes included; HLS URLs stay capability URLs (the token in their path) and are not
//! affected. Request bodies are JSON and must say so (`Content-Type: application/json`, see
//! [`JsonBody`](crate::json::JsonBody)); which web pages may call the API is [`crate::site`]'s
//! business.

pub mod probe;
pub mod streams;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::hub::{Hub, HubError};
use crate::json::ApiError;
use crate::outputs::Outputs;
use crate::state_file::StateFile;
use crate::token::tokens_equal;

pub use probe::Probes;
pub use streams::{StreamOptions, info};

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let status = match e {
            HubError::Exists(_) => StatusCode::CONFLICT,
            HubError::NotFound(_) => StatusCode::NOT_FOUND,
            HubError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        let exists = matches!(e, HubError::Exists(_));
        let error = ApiError::new(status, e.to_string());
        if exists {
            error.with("key", "name")
        } else {
            error
        }
    }
}

/// What the API's handlers share.
pub struct Api {
    /// The streams.
    pub hub: Arc<Hub>,
    /// The outputs, which add their fields to a stream's description.
    pub outputs: Arc<Outputs>,
    /// Where changes are saved (`None`: `server.state_file: null`).
    pub state_file: Option<Arc<StateFile>>,
    /// Probes in progress, bounded.
    pub probes: Arc<Probes>,
}

impl Api {
    /// Saves the streams after a change; `Some(warning)` when that failed (the change stays
    /// in effect, and the response says it was not saved).
    async fn save(&self) -> Option<String> {
        match &self.state_file {
            Some(file) => file.save(&self.hub).await.err(),
            None => None,
        }
    }
}

/// The API routes, the outputs' API routes included, behind the bearer-token check when
/// `api_token` is set.
pub fn routes(api_token: Option<String>, api: Api) -> Router {
    let outputs = Arc::clone(&api.outputs);
    let router = Router::new()
        .route("/api/streams", get(streams::list).post(streams::create))
        .route(
            "/api/streams/{name}",
            get(streams::show)
                .delete(streams::remove)
                .patch(streams::update),
        )
        .route("/api/probe", post(probe::probe))
        .with_state(Arc::new(api))
        .merge(outputs.api_routes());
    match api_token {
        Some(token) => {
            let token = Arc::new(token);
            router.layer(axum::middleware::from_fn(move |req, next| {
                require_bearer(Arc::clone(&token), req, next)
            }))
        }
        None => router,
    }
}

async fn require_bearer(token: Arc<String>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials);
    match presented {
        Some(p) if tokens_equal(p, &token) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid API token").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API token: send Authorization: Bearer <server.api_token>",
        )
        .into_response(),
    }
}

/// The credentials of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110, 11.1), so `bearer` and `BEARER` work too.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer t0k",
            "bearer t0k",
            "BEARER t0k",
            "Bearer   t0k ",
            "bearer\tt0k",
        ] {
            assert_eq!(bearer_credentials(value), Some("t0k"), "{value:?}");
        }
        for value in ["Basic dTpw", "Bearert0k", "t0k", ""] {
            assert_eq!(bearer_credentials(value), None, "{value:?}");
        }
    }
}

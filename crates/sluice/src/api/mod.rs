//! The REST API under `/api/streams`: JSON in, JSON out, errors as `{"error": "..."}`.
//!
//! When `server.api_token` is set, every call needs `Authorization: Bearer <token>`, outputs'
//! API routes included; HLS URLs stay capability URLs (the token in their path) and are not
//! affected. Request bodies are JSON and must say so (`Content-Type: application/json`, see
//! [`JsonBody`]); which web pages may call the API is [`crate::site`]'s business.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::StreamConfig;
use crate::hub::{Hub, HubError, Stream};
use crate::json::{ApiError, JsonBody, not_found};
use crate::outputs::Outputs;
use crate::token::tokens_equal;

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let status = match e {
            HubError::Exists(_) => StatusCode::CONFLICT,
            HubError::NotFound(_) => StatusCode::NOT_FOUND,
            HubError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

struct Api {
    hub: Arc<Hub>,
    outputs: Arc<Outputs>,
}

/// The API routes, the outputs' API routes included, behind the bearer-token check when
/// `api_token` is set.
pub fn routes(api_token: Option<String>, hub: Arc<Hub>, outputs: Arc<Outputs>) -> Router {
    let router = Router::new()
        .route("/api/streams", get(list).post(create))
        .route(
            "/api/streams/{name}",
            get(show).delete(remove).patch(update),
        )
        .with_state(Arc::new(Api {
            hub,
            outputs: Arc::clone(&outputs),
        }))
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

/// A stream as the API shows it: its name, source, status, codecs, active demand and options,
/// plus what each output adds ([`Outputs::describe`]).
pub fn info(stream: &Stream, outputs: &Outputs) -> serde_json::Value {
    let mut status = stream.status();
    if let Some(e) = &mut status.last_error {
        e.message = crate::redact::redact_text(&e.message).into_owned();
    }
    let mut info = serde_json::json!({
        "name": stream.name(),
        "source": stream.redacted_source(),
        "codecs": stream.codecs(),
        "outputs": stream.tap().demand().active_kinds(),
        "options": StreamOptions::of(&stream.config()),
    });
    if let (Some(map), Ok(serde_json::Value::Object(status))) =
        (info.as_object_mut(), serde_json::to_value(status))
    {
        map.extend(status);
        outputs.describe(stream, map);
    }
    info
}

/// The options of a stream entry (everything but `source`), as in the config file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transport: Option<crate::source::Transport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preload: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    orientation: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connect_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stall_timeout: Option<f64>,
}

impl StreamOptions {
    fn of(c: &StreamConfig) -> Self {
        StreamOptions {
            transport: Some(c.transport),
            preload: Some(c.preload),
            orientation: Some(c.orientation),
            connect_timeout: Some(c.connect_timeout),
            stall_timeout: Some(c.stall_timeout),
        }
    }

    fn apply(self, c: &mut StreamConfig) {
        c.transport = self.transport.unwrap_or(c.transport);
        c.preload = self.preload.unwrap_or(c.preload);
        c.orientation = self.orientation.unwrap_or(c.orientation);
        c.connect_timeout = self.connect_timeout.unwrap_or(c.connect_timeout);
        c.stall_timeout = self.stall_timeout.unwrap_or(c.stall_timeout);
    }
}

async fn list(State(api): State<Arc<Api>>) -> Json<Vec<serde_json::Value>> {
    Json(
        api.hub
            .list()
            .iter()
            .map(|s| info(s, &api.outputs))
            .collect(),
    )
}

async fn show(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stream = api.hub.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(info(&stream, &api.outputs)))
}

/// `POST /api/streams` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStream {
    name: String,
    source: String,
    #[serde(default)]
    options: StreamOptions,
}

async fn create(
    State(api): State<Arc<Api>>,
    JsonBody(req): JsonBody<CreateStream>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let mut config = StreamConfig::new(req.source);
    req.options.apply(&mut config);
    let stream = api.hub.add_stream(&req.name, config)?;
    Ok((StatusCode::CREATED, Json(info(&stream, &api.outputs))))
}

async fn remove(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    api.hub.remove_stream(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /api/streams/{name}` body: a new source URL (the reference's `update_source`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStream {
    source: String,
}

async fn update(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateStream>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stream = api.hub.get(&name).ok_or_else(|| not_found(&name))?;
    stream.update_source(&req.source)?;
    Ok(Json(info(&stream, &api.outputs)))
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

//! The REST API under `/api/streams`: JSON in, JSON out, errors as `{"error": "..."}`.
//!
//! When `server.api_token` is set, every call needs `Authorization: Bearer <token>`; HLS URLs
//! stay capability URLs (the token in their path) and are not affected. Request bodies are JSON
//! and must say so (`Content-Type: application/json`, see [`JsonBody`]); which web pages may
//! call the API is [`crate::server::site`]'s business.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::StreamConfig;
use crate::hub::{Hub, HubError, OutputKind, Status, Stream, token::tokens_equal};
use crate::recorder::path::PathError;
use crate::recorder::{ActiveRecording, RecordError, RecordRequest, RecordingResult};

/// The API routes, behind the bearer-token check when `api_token` is set.
pub fn routes(api_token: Option<String>) -> Router<Arc<Hub>> {
    let router = Router::new()
        .route("/api/streams", get(list).post(create))
        .route(
            "/api/streams/{name}",
            get(show).delete(remove).patch(update),
        )
        .route("/api/streams/{name}/hls", post(hls_url))
        .route("/api/streams/{name}/record", post(record));
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
        Some(_) => ApiError(StatusCode::UNAUTHORIZED, "invalid API token".into()).into_response(),
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            "missing API token: send Authorization: Bearer <server.api_token>".into(),
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

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let status = match e {
            HubError::Exists(_) => StatusCode::CONFLICT,
            HubError::NotFound(_) => StatusCode::NOT_FOUND,
            HubError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.to_string())
    }
}

fn not_found(name: &str) -> ApiError {
    HubError::NotFound(name.to_string()).into()
}

/// A stream as the API shows it.
#[derive(Serialize)]
pub struct StreamInfo {
    name: String,
    source: String,
    #[serde(flatten)]
    status: Status,
    codecs: Option<String>,
    outputs: Vec<OutputKind>,
    viewers: u64,
    options: StreamOptions,
    recording: Option<ActiveRecording>,
    recordings: Vec<RecordingResult>,
}

/// The options of a stream entry (everything but `source`), as in the config file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transport: Option<crate::config::Transport>,
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

fn info(stream: &Stream) -> StreamInfo {
    StreamInfo {
        name: stream.name().to_string(),
        source: stream.redacted_source(),
        status: {
            let mut status = stream.status();
            if let Some(e) = &mut status.last_error {
                e.message = crate::redact::redact_text(&e.message).into_owned();
            }
            status
        },
        codecs: stream.codecs(),
        outputs: stream.outputs(),
        viewers: stream.viewers(),
        options: StreamOptions::of(&stream.config()),
        recording: stream.active_recording(),
        recordings: stream.recent_recordings(),
    }
}

async fn list(State(hub): State<Arc<Hub>>) -> Json<Vec<StreamInfo>> {
    Json(hub.list().iter().map(|s| info(s)).collect())
}

async fn show(
    State(hub): State<Arc<Hub>>,
    Path(name): Path<String>,
) -> Result<Json<StreamInfo>, ApiError> {
    let stream = hub.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(info(&stream)))
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
            return Err(ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{found}: send the body as JSON with Content-Type: application/json"),
            ));
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError(
                    e.status(),
                    format!("cannot read the request body: {}", e.body_text()),
                )
            })?;
        serde_json::from_slice(&body).map(JsonBody).map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("invalid request body: {e}"),
            )
        })
    }
}

async fn create(
    State(hub): State<Arc<Hub>>,
    JsonBody(req): JsonBody<CreateStream>,
) -> Result<(StatusCode, Json<StreamInfo>), ApiError> {
    let mut config = StreamConfig::new(req.source);
    req.options.apply(&mut config);
    let stream = hub.add_stream(&req.name, config)?;
    Ok((StatusCode::CREATED, Json(info(&stream))))
}

async fn remove(
    State(hub): State<Arc<Hub>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    hub.remove_stream(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /api/streams/{name}` body: a new source URL (the reference's `update_source`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStream {
    source: String,
}

async fn update(
    State(hub): State<Arc<Hub>>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateStream>,
) -> Result<Json<StreamInfo>, ApiError> {
    let stream = hub.get(&name).ok_or_else(|| not_found(&name))?;
    stream.update_source(&req.source)?;
    Ok(Json(info(&stream)))
}

async fn hls_url(
    State(hub): State<Arc<Hub>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stream = hub.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(serde_json::json!({ "url": stream.endpoint_url() })))
}

/// `POST /api/streams/{name}/record` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    path: String,
    #[serde(default = "default_duration")]
    duration: f64,
    #[serde(default)]
    lookback: f64,
    /// Replace a regular file already at `path` (otherwise 409).
    #[serde(default)]
    overwrite: bool,
}

fn default_duration() -> f64 {
    30.0
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        let status = match &e {
            RecordError::Path(
                PathError::Outside { .. } | PathError::Symlink { .. } | PathError::NoDirs,
            ) => StatusCode::FORBIDDEN,
            RecordError::Path(PathError::Invalid(_) | PathError::Unusable { .. })
            | RecordError::Invalid(_) => StatusCode::BAD_REQUEST,
            RecordError::Path(
                PathError::Exists { .. } | PathError::NotAFile { .. } | PathError::Busy { .. },
            )
            | RecordError::Busy(_) => StatusCode::CONFLICT,
            RecordError::Path(PathError::Io { .. }) | RecordError::Io { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(status, e.to_string())
    }
}

async fn record(
    State(hub): State<Arc<Hub>>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<RecordBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let stream = hub.get(&name).ok_or_else(|| not_found(&name))?;
    let request = RecordRequest {
        duration: req.duration,
        lookback: req.lookback,
    };
    request.validate()?;
    let target = hub
        .recording_target(&req.path, req.overwrite, &name)
        .await
        .map_err(RecordError::from)?;
    let path = target.path().to_path_buf();
    let lookback = stream.record(target, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "path": path,
            "duration": req.duration,
            "lookback": lookback,
        })),
    ))
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

//! The REST API under `/api/streams`: JSON in, JSON out, errors as `{"error": "..."}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::hub::{Hub, Status, Stream};

/// The API routes.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/api/streams", get(list))
        .route("/api/streams/{name}", get(show))
        .route("/api/streams/{name}/hls", post(hls_url))
}

/// An API error: a status and a message.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no stream named {name:?}"))
}

/// A stream as the API shows it.
#[derive(Serialize)]
pub struct StreamInfo {
    name: String,
    source: String,
    #[serde(flatten)]
    status: Status,
    codecs: Option<String>,
    outputs: Vec<&'static str>,
    viewers: u64,
    preload: bool,
    orientation: u8,
}

fn info(stream: &Stream) -> StreamInfo {
    StreamInfo {
        name: stream.name().to_string(),
        source: stream.redacted_source(),
        status: stream.status(),
        codecs: stream.codecs(),
        outputs: if stream.is_running() {
            vec!["hls"]
        } else {
            vec![]
        },
        viewers: 0,
        preload: stream.config().preload,
        orientation: stream.config().orientation,
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

async fn hls_url(
    State(hub): State<Arc<Hub>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stream = hub.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(serde_json::json!({ "url": stream.endpoint_url() })))
}

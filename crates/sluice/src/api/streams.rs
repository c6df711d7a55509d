//! `/api/streams`: list, show, add, change and remove streams. Every change is saved to the
//! state file ([`crate::state_file`]); when that fails the change stays in effect and the
//! response carries a `warning`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Api;
use crate::config::{Problem, StreamConfig, validate_name};
use crate::hub::Stream;
use crate::json::{ApiError, JsonBody, not_found};
use crate::outputs::Outputs;

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

    /// Sets the options given, keeping the others.
    fn apply(self, c: &mut StreamConfig) {
        c.transport = self.transport.unwrap_or(c.transport);
        c.preload = self.preload.unwrap_or(c.preload);
        c.orientation = self.orientation.unwrap_or(c.orientation);
        c.connect_timeout = self.connect_timeout.unwrap_or(c.connect_timeout);
        c.stall_timeout = self.stall_timeout.unwrap_or(c.stall_timeout);
    }
}

/// 400 for a stream entry that does not validate, with the key at fault (`source`,
/// `orientation`, …) so a form can show the message next to its field.
fn invalid(problem: Problem) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, problem.to_string()).with("key", problem.key)
}

/// The stream's description, with the state file's warning if saving failed.
fn described(stream: &Stream, api: &Api, warning: Option<String>) -> serde_json::Value {
    let mut v = info(stream, &api.outputs);
    if let (Some(map), Some(w)) = (v.as_object_mut(), warning) {
        map.insert("warning".into(), w.into());
    }
    v
}

pub(super) async fn list(State(api): State<Arc<Api>>) -> Json<Vec<serde_json::Value>> {
    Json(
        api.hub
            .list()
            .iter()
            .map(|s| info(s, &api.outputs))
            .collect(),
    )
}

pub(super) async fn show(
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

pub(super) async fn create(
    State(api): State<Arc<Api>>,
    JsonBody(req): JsonBody<CreateStream>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    validate_name(&req.name)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m).with("key", "name"))?;
    let mut config = StreamConfig::new(req.source);
    req.options.apply(&mut config);
    config.validate().map_err(invalid)?;
    let stream = api.hub.add_stream(&req.name, config)?;
    let warning = api.save().await;
    Ok((StatusCode::CREATED, Json(described(&stream, &api, warning))))
}

/// `DELETE /api/streams/{name}`: 204, or 200 with `{"warning"}` when the removal could not be
/// saved.
pub(super) async fn remove(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    api.hub.remove_stream(&name).await?;
    Ok(match api.save().await {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(w) => Json(serde_json::json!({ "warning": w })).into_response(),
    })
}

/// `PATCH /api/streams/{name}` body: a new source URL and/or options; what is not given is
/// kept. See [`Stream::reconfigure`] for when each change takes effect.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStream {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    options: Option<StreamOptions>,
}

pub(super) async fn update(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateStream>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stream = api.hub.get(&name).ok_or_else(|| not_found(&name))?;
    if req.source.is_none() && req.options.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "nothing to change: send {\"source\": ...} and/or {\"options\": {...}}",
        ));
    }
    let mut config = stream.config();
    // A source given, even the same one, reconnects (the reference's `update_source`: a way to
    // make a stream reconnect).
    let reconnect = req.source.is_some();
    if let Some(source) = req.source {
        config.source = source;
    }
    if let Some(options) = req.options {
        options.apply(&mut config);
    }
    config.validate().map_err(invalid)?;
    stream.reconfigure(config, reconnect)?;
    // Removed meanwhile: the change must not leave a worker running for a stream nobody has.
    if !api.hub.get(&name).is_some_and(|s| Arc::ptr_eq(&s, &stream)) {
        stream.stop().await;
        return Err(not_found(&name));
    }
    let warning = api.save().await;
    Ok(Json(described(&stream, &api, warning)))
}

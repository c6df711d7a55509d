//! `POST /api/probe`: connect to a source, describe its tracks and disconnect, so a user sees
//! what a camera sends (or why it cannot be reached) before adding it.
//!
//! Camera failures are 502 Bad Gateway with the typed cause in `kind` (`unauthorized`,
//! `unreachable`, `not_found`, `timeout`, …): 401 is kept for the API's own token. An unusable
//! URL is 400. At most [`MAX_PROBES`] run at once (429 beyond), so the API cannot be used to
//! open many camera connections.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Api;
use crate::json::{ApiError, JsonBody};
use crate::probe::{Probe, probe_with};
use crate::source::{ErrorKind, SourceOptions, SourceSpec, Transport};

/// Probes that may run at once.
pub const MAX_PROBES: usize = 4;

/// The longest `timeout` a probe may ask for, in seconds.
const MAX_TIMEOUT: f64 = 30.0;

/// Probes in progress, at most [`MAX_PROBES`].
pub struct Probes(Arc<Semaphore>);

impl Default for Probes {
    fn default() -> Self {
        Probes(Arc::new(Semaphore::new(MAX_PROBES)))
    }
}

impl Probes {
    /// How many are running now.
    pub fn in_progress(&self) -> usize {
        MAX_PROBES.saturating_sub(self.0.available_permits())
    }

    fn try_start(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.0).try_acquire_owned().ok()
    }
}

/// `POST /api/probe` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    source: String,
    #[serde(default)]
    transport: Transport,
    /// Seconds allowed for connecting (default 10, at most 30).
    #[serde(default = "default_timeout")]
    timeout: f64,
}

fn default_timeout() -> f64 {
    10.0
}

/// The snake_case name of a cause, as the API shows it.
fn kind_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) async fn probe(
    State(api): State<Arc<Api>>,
    JsonBody(req): JsonBody<ProbeRequest>,
) -> Result<Json<Probe>, ApiError> {
    if !(req.timeout.is_finite() && (0.1..=MAX_TIMEOUT).contains(&req.timeout)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "timeout: {} is outside 0.1..={MAX_TIMEOUT} seconds",
                req.timeout
            ),
        )
        .with("key", "timeout"));
    }
    if let Err(e) = SourceSpec::parse(&req.source) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, e.message)
            .with("kind", kind_name(e.kind))
            .with("key", "source"));
    }
    let _permit = api.probes.try_start().ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{MAX_PROBES} probes are already running: try again when one has finished"),
        )
        .retry_after(1)
    })?;
    let options = SourceOptions {
        transport: req.transport,
        connect_timeout: Duration::from_secs_f64(req.timeout),
        ..SourceOptions::default()
    };
    match probe_with(api.hub.opener(), &req.source, &options).await {
        Ok(probe) => Ok(Json(probe)),
        Err(e) => {
            let status = match e.kind {
                ErrorKind::InvalidUrl => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            };
            tracing::debug!(source = %crate::redact::redact(&req.source), cause = ?e.kind, "probe failed: {e}");
            Err(ApiError::new(status, e.message).with("kind", kind_name(e.kind)))
        }
    }
}

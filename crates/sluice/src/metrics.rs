//! Prometheus metrics at `/metrics`, rendered with prometheus-client from the streams' state at
//! scrape time (so nothing is counted twice), each output's own metrics, HTTP responses by
//! status and the async runtime's live task count (what leak checks and the soak harness watch
//! from outside).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use sluice_media::timestamp::DropReason;

use crate::hub::{Hub, StreamState};
use crate::outputs::Outputs;

/// HTTP responses counted by status code.
#[derive(Debug, Default)]
pub struct RequestCounts(Mutex<BTreeMap<u16, u64>>);

impl RequestCounts {
    fn count(&self, status: u16) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Middleware: counts every response by status.
pub async fn count_requests(
    State(counts): State<Arc<RequestCounts>>,
    req: Request,
    next: Next,
) -> Response {
    let response = next.run(req).await;
    counts.count(response.status().as_u16());
    response
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    stream: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabel {
    stream: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

/// What the metrics are rendered from.
pub struct Sources {
    /// The streams.
    pub hub: Arc<Hub>,
    /// The outputs, which add their own metrics.
    pub outputs: Arc<Outputs>,
    /// HTTP responses by status.
    pub requests: Arc<RequestCounts>,
    /// Source probes through the API.
    pub probes: Arc<crate::api::Probes>,
}

/// Renders the metrics text.
pub fn render(sources: &Sources) -> String {
    let (hub, outputs, requests) = (&*sources.hub, &*sources.outputs, &*sources.requests);
    let mut registry = Registry::with_prefix("sluice");
    let state = Family::<StateLabel, Gauge>::default();
    let available = Family::<StreamLabel, Gauge>::default();
    let frames = Family::<StreamLabel, Counter>::default();
    let bytes = Family::<StreamLabel, Counter>::default();
    let segments = Family::<StreamLabel, Counter>::default();
    let restarts = Family::<StreamLabel, Counter>::default();
    let dropped = Family::<DropLabel, Counter>::default();
    for stream in hub.list() {
        let name = stream.name().to_string();
        let label = StreamLabel {
            stream: name.clone(),
        };
        let status = stream.status();
        for s in StreamState::ALL {
            state
                .get_or_create(&StateLabel {
                    stream: name.clone(),
                    state: s.name().to_string(),
                })
                .set(i64::from(status.state == s));
        }
        available
            .get_or_create(&label)
            .set(i64::from(status.available));
        let c = &stream.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        frames.get_or_create(&label).inc_by(load(&c.frames_in));
        bytes.get_or_create(&label).inc_by(load(&c.bytes_in));
        segments.get_or_create(&label).inc_by(load(&c.segments));
        restarts.get_or_create(&label).inc_by(load(&c.restarts));
        for reason in DropReason::ALL {
            dropped
                .get_or_create(&DropLabel {
                    stream: name.clone(),
                    reason: reason.name().to_string(),
                })
                .inc_by(c.dropped(reason));
        }
    }
    outputs.metrics(hub, &mut registry);
    let http = Family::<StatusLabel, Counter>::default();
    for (status, n) in requests.snapshot() {
        http.get_or_create(&StatusLabel {
            status: status.to_string(),
        })
        .inc_by(n);
    }
    registry.register("stream_state", "1 for the state each stream is in", state);
    registry.register(
        "stream_available",
        "1 while the stream's source delivers frames, 0 while it is failing",
        available,
    );
    registry.register("stream_frames", "Frames received from the source", frames);
    registry.register(
        "stream_bytes",
        "Payload bytes received from the source",
        bytes,
    );
    registry.register("stream_segments", "HLS segments completed", segments);
    registry.register(
        "stream_restarts",
        "Runs restarted after a failure",
        restarts,
    );
    registry.register(
        "stream_dropped_frames",
        "Frames the timestamp guard dropped, by reason",
        dropped,
    );
    registry.register("http_responses", "HTTP responses by status code", http);
    let probes = Gauge::<i64>::default();
    probes.set(i64::try_from(sources.probes.in_progress()).unwrap_or(i64::MAX));
    registry.register(
        "probes_in_progress",
        "Source probes running for POST /api/probe",
        probes,
    );
    // Every spawned task still alive (stream workers, RTSP relays, retina's TEARDOWN tasks, HTTP
    // connections): a count that grows with every camera restart is a leak. Absent when
    // rendered outside a runtime.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let tasks = Gauge::<i64>::default();
        tasks.set(i64::try_from(runtime.metrics().num_alive_tasks()).unwrap_or(i64::MAX));
        registry.register(
            "runtime_alive_tasks",
            "Tasks alive in the async runtime (spawned and not yet finished)",
            tasks,
        );
    }
    let mut out = String::new();
    if encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

/// `GET /metrics`.
pub async fn handler(State(sources): State<Arc<Sources>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&sources),
    )
}

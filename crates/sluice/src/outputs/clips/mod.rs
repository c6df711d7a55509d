//! The clip output: recordings with lookback, one at a time per stream
//! ([`recording`] writes one; [`path`] and [`files`] decide where and create files safely).
//!
//! `POST /api/streams/{name}/record` starts one; the stream's API description shows the
//! recording in progress and the last finished ones. A recording holds the stream's demand
//! until it ends (it never keeps the stream running past its duration).

pub mod files;
pub mod path;
pub mod recording;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::sync::Notify;
use tracing::info;

pub use files::{Target, Writers};
use path::PathError;
pub use recording::{ActiveRecording, RecordError, RecordRequest, RecordingResult};

use super::Output;
use crate::hub::{Hub, Stream};
use crate::json::{ApiError, JsonBody, not_found};

/// The kind of demand a recording holds.
const KIND: &str = "recording";

/// Finished recordings kept for the API.
const RECENT_RECORDINGS: usize = 10;

/// See the module documentation.
pub struct Clips {
    hub: Arc<Hub>,
    /// Where recordings may be written (`None`: anywhere, for the CLI).
    record_dirs: Option<Vec<PathBuf>>,
    /// The files being recorded: one writer per file, across streams.
    writers: Writers,
}

/// A stream's recordings, kept in its tap's slots.
#[derive(Default)]
struct Recordings {
    slot: Mutex<Slot>,
    /// Signalled when a recording finishes.
    done: Notify,
    /// The last finished recordings, newest last.
    recent: Mutex<VecDeque<RecordingResult>>,
    ok: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

/// Whether a stream is recording.
#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    /// Checked and reserved; the files are being opened.
    Starting(PathBuf),
    Active(recording::Recording),
}

impl Recordings {
    fn of(stream: &Stream) -> Arc<Recordings> {
        stream.tap().slots().get::<Recordings>()
    }

    fn finished(&self, result: RecordingResult) {
        match &result.error {
            None => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(result.bytes, Ordering::Relaxed);
            }
            Some(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        {
            let mut recent = lock(&self.recent);
            recent.push_back(result);
            while recent.len() > RECENT_RECORDINGS {
                recent.pop_front();
            }
        }
        *lock(&self.slot) = Slot::Idle;
        self.done.notify_waiters();
    }
}

impl Clips {
    /// Recordings of `hub`'s streams, written inside `record_dirs` (`None`: anywhere).
    pub fn new(hub: &Arc<Hub>, record_dirs: Option<Vec<PathBuf>>) -> Clips {
        Clips {
            hub: Arc::clone(hub),
            record_dirs,
            writers: Writers::default(),
        }
    }

    /// Prepares the file a recording of `holder` (a stream name) asks for: `path` is placed in
    /// the allowed directories (see [`path::locate`]), its directory opened ([`Target::open`]:
    /// symlinks inside are refused, missing directories created) and the file claimed, so no
    /// other recording writes it meanwhile. An existing regular file there is an error unless
    /// `overwrite`.
    pub async fn target(
        &self,
        path: &str,
        overwrite: bool,
        holder: &str,
    ) -> Result<Target, PathError> {
        let given = path.to_string();
        let dirs = self.record_dirs.clone();
        let writers = self.writers.clone();
        let holder = holder.to_string();
        // Directory creation and opening may block (a slow disk, a network filesystem).
        tokio::task::spawn_blocking(move || {
            let location = path::locate(&given, dirs.as_deref())?;
            Target::open(location, &given, overwrite, &writers, &holder)
        })
        .await
        .unwrap_or_else(|e| {
            Err(PathError::Io {
                path: path.to_string(),
                message: e.to_string(),
            })
        })
    }

    /// Starts recording `stream` into `target` (from [`Clips::target`]); returns the seconds
    /// of lookback that were in memory. One recording at a time per stream.
    pub async fn record(
        &self,
        stream: &Arc<Stream>,
        target: Target,
        request: RecordRequest,
    ) -> Result<f64, RecordError> {
        let recordings = Recordings::of(stream);
        {
            let mut slot = lock(&recordings.slot);
            match &*slot {
                Slot::Idle => *slot = Slot::Starting(target.path().to_path_buf()),
                Slot::Starting(p) => return Err(RecordError::Busy(p.clone())),
                Slot::Active(r) => return Err(RecordError::Busy(r.info.path.clone())),
            }
        }
        let done = {
            let recordings = Arc::clone(&recordings);
            move |result| recordings.finished(result)
        };
        match recording::start(stream, target, request, done) {
            Ok((recording, lookback)) => {
                info!(stream = %stream.name(), path = %recording.info.path.display(), duration = request.duration, lookback, "recording started");
                let mut slot = lock(&recordings.slot);
                // A recording that already finished (nothing to capture) left the slot idle.
                if matches!(*slot, Slot::Starting(_)) {
                    *slot = Slot::Active(recording);
                }
                Ok(lookback)
            }
            Err(e) => {
                *lock(&recordings.slot) = Slot::Idle;
                Err(e)
            }
        }
    }

    /// The recording in progress.
    pub fn active(stream: &Stream) -> Option<ActiveRecording> {
        match &*lock(&Recordings::of(stream).slot) {
            Slot::Active(r) => Some(r.snapshot()),
            _ => None,
        }
    }

    /// The last finished recordings, newest last.
    pub fn recent(stream: &Stream) -> Vec<RecordingResult> {
        lock(&Recordings::of(stream).recent)
            .iter()
            .cloned()
            .collect()
    }

    /// Waits until no recording of `stream` is in progress; with `finish`, asks it to finish
    /// now with what it has.
    pub async fn wait(stream: &Stream, finish: bool) {
        let recordings = Recordings::of(stream);
        loop {
            let done = recordings.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            match &*lock(&recordings.slot) {
                Slot::Idle => return,
                Slot::Active(r) if finish => r.finish_now(),
                _ => {}
            }
            done.await;
        }
    }
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
        ApiError::new(status, e.to_string())
    }
}

async fn record(
    State(clips): State<Arc<Clips>>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<RecordBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let stream = clips.hub.get(&name).ok_or_else(|| not_found(&name))?;
    let request = RecordRequest {
        duration: req.duration,
        lookback: req.lookback,
    };
    request.validate()?;
    let target = clips
        .target(&req.path, req.overwrite, &name)
        .await
        .map_err(RecordError::from)?;
    let path = target.path().to_path_buf();
    let lookback = clips.record(&stream, target, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "path": path,
            "duration": req.duration,
            "lookback": lookback,
        })),
    ))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    stream: String,
    result: String,
}

impl Output for Clips {
    fn api_routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api/streams/{name}/record", post(record))
            .with_state(self)
    }

    fn describe(&self, stream: &Stream, info: &mut serde_json::Map<String, serde_json::Value>) {
        let json = |v: Result<serde_json::Value, _>| v.unwrap_or_default();
        info.insert(
            "recording".into(),
            json(serde_json::to_value(Clips::active(stream))),
        );
        info.insert(
            "recordings".into(),
            json(serde_json::to_value(Clips::recent(stream))),
        );
    }

    fn metrics(&self, hub: &Hub, registry: &mut Registry) {
        let results = Family::<ResultLabel, Counter>::default();
        let bytes = Family::<StreamLabel, Counter>::default();
        let active = Family::<StreamLabel, Gauge>::default();
        for stream in hub.list() {
            let name = stream.name().to_string();
            let r = Recordings::of(&stream);
            for (result, n) in [("ok", &r.ok), ("failed", &r.failed)] {
                results
                    .get_or_create(&ResultLabel {
                        stream: name.clone(),
                        result: result.to_string(),
                    })
                    .inc_by(n.load(Ordering::Relaxed));
            }
            let label = StreamLabel { stream: name };
            bytes
                .get_or_create(&label)
                .inc_by(r.bytes.load(Ordering::Relaxed));
            active
                .get_or_create(&label)
                .set(i64::from(Clips::active(&stream).is_some()));
        }
        registry.register("recordings", "Recordings finished, by result", results);
        registry.register("recording_bytes", "Bytes of recordings written", bytes);
        registry.register(
            "recording_active",
            "1 while the stream is recording",
            active,
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

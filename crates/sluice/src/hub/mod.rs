//! The hub: the registry of streams, their access tokens and their workers.
//!
//! A [`Stream`] is a source plus its shared media state. Its worker task (see [`worker`]) runs
//! while the stream is wanted; every viewer reads the same ring, so a camera gets one upstream
//! connection however many people watch it.

mod media;
pub mod token;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sluice_media::mp4::Orientation;
use sluice_media::pipeline::PipelineConfig;
use sluice_media::playlist::PlaylistConfig;
use sluice_media::segmenter::SegmenterConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{HlsConfig, StreamConfig, validate_name};
use crate::source::{SourceError, SourceSpec, redact};

pub use media::MediaState;

/// Settings shared by every stream, derived from the `hls:` config.
#[derive(Clone, Copy, Debug)]
pub struct HlsSettings {
    /// The config they come from.
    pub config: HlsConfig,
    /// Restart backoff grows by this much per consecutive failure.
    pub restart_increment: Duration,
    /// A run that lasted longer than this resets the backoff.
    pub restart_reset: Duration,
}

impl HlsSettings {
    /// Settings with the reference's restart policy (+10 s per retry, reset after 300 s).
    pub fn new(config: HlsConfig) -> Self {
        HlsSettings {
            config,
            restart_increment: Duration::from_secs(10),
            restart_reset: Duration::from_secs(300),
        }
    }

    /// Minimum segment duration: the target minus 0.1 s, so a keyframe exactly at the target
    /// still cuts despite timestamp jitter (the reference's adjuster).
    pub fn min_segment_secs(&self) -> f64 {
        (self.config.segment_duration - 0.1).max(0.1)
    }

    /// The media pipeline settings.
    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            segmenter: SegmenterConfig {
                min_segment_secs: self.min_segment_secs(),
                part_target_secs: self.config.part_duration,
            },
            max_gap_secs: self.config.max_timestamp_gap,
        }
    }

    /// The playlist settings.
    pub fn playlist(&self) -> PlaylistConfig {
        PlaylistConfig {
            ll_hls: self.config.ll_hls,
            part_target: self.config.part_duration,
            min_segment: self.min_segment_secs(),
        }
    }
}

/// A stream request the hub cannot satisfy.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A stream with that name exists.
    #[error("stream {0:?} already exists")]
    Exists(String),
    /// The name or the options are invalid.
    #[error("{0}")]
    Invalid(String),
}

/// Where a stream's worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// No worker: nothing wants the stream.
    Idle,
    /// Connecting to the source.
    Starting,
    /// Frames are flowing.
    Running,
    /// The last run failed; waiting for the backoff before retrying.
    Retrying,
}

/// What the API shows about a stream's health.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    /// The worker's state.
    pub state: StreamState,
    /// False while the source is failing; true once frames flow.
    pub available: bool,
    /// The last error, with its typed cause.
    pub last_error: Option<SourceError>,
    /// Runs started.
    pub runs: u64,
    /// Seconds of the current backoff, while retrying.
    pub retry_in_secs: Option<u64>,
}

struct Worker {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// One stream.
pub struct Stream {
    name: String,
    config: StreamConfig,
    spec: SourceSpec,
    settings: HlsSettings,
    media: MediaState,
    token: Mutex<Option<String>>,
    worker: Mutex<Option<Worker>>,
    status: Mutex<Status>,
    /// Frames received from the source.
    pub frames_in: AtomicU64,
    /// Payload bytes received from the source.
    pub bytes_in: AtomicU64,
}

impl Stream {
    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source URL with credentials hidden.
    pub fn redacted_source(&self) -> String {
        redact(&self.config.source)
    }

    /// The stream's configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// The orientation applied to init segments.
    pub fn orientation(&self) -> Orientation {
        Orientation::new(self.config.orientation).unwrap_or(Orientation::NORMAL)
    }

    /// The shared media state.
    pub fn media(&self) -> &MediaState {
        &self.media
    }

    /// The HLS settings.
    pub fn settings(&self) -> &HlsSettings {
        &self.settings
    }

    /// A snapshot of the stream's status.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut lock(&self.status));
    }

    /// The codec strings of the current init segment, if any segment exists.
    pub fn codecs(&self) -> Option<String> {
        self.media.ring().last().map(|s| s.init.codecs())
    }

    /// The HLS URL, creating the access token if there is none. Starts the stream.
    pub fn endpoint_url(self: &Arc<Self>) -> String {
        let token = lock(&self.token)
            .get_or_insert_with(token::new_token)
            .clone();
        self.start();
        format!("/api/hls/{token}/master_playlist.m3u8")
    }

    /// Whether `candidate` is this stream's current token (constant time).
    pub fn has_token(&self, candidate: &str) -> bool {
        lock(&self.token)
            .as_deref()
            .is_some_and(|t| token::tokens_equal(t, candidate))
    }

    /// Starts the worker unless it is running.
    pub fn start(self: &Arc<Self>) {
        let mut worker = lock(&self.worker);
        if worker.as_ref().is_some_and(|w| !w.handle.is_finished()) {
            return;
        }
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(worker::run(Arc::clone(self), stop_rx));
        *worker = Some(Worker { stop, handle });
    }

    /// Stops the worker and waits for it to finish its run cleanly.
    pub async fn stop(&self) {
        let worker = lock(&self.worker).take();
        if let Some(w) = worker {
            let _ = w.stop.send(true);
            let _ = w.handle.await;
        }
        *lock(&self.token) = None;
    }

    /// Whether a worker task is alive.
    pub fn is_running(&self) -> bool {
        lock(&self.worker)
            .as_ref()
            .is_some_and(|w| !w.handle.is_finished())
    }
}

/// The registry of streams.
pub struct Hub {
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    settings: HlsSettings,
}

impl Hub {
    /// An empty hub.
    pub fn new(settings: HlsSettings) -> Arc<Hub> {
        Arc::new(Hub {
            streams: RwLock::new(BTreeMap::new()),
            settings,
        })
    }

    /// The shared settings.
    pub fn settings(&self) -> &HlsSettings {
        &self.settings
    }

    /// Registers a stream; starts it if it is preloaded.
    pub fn add_stream(&self, name: &str, config: StreamConfig) -> Result<Arc<Stream>, HubError> {
        validate_name(name).map_err(HubError::Invalid)?;
        config
            .validate()
            .map_err(|(key, message)| HubError::Invalid(format!("{key}: {message}")))?;
        let spec = SourceSpec::parse(&config.source).map_err(|e| HubError::Invalid(e.message))?;
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if streams.contains_key(name) {
            return Err(HubError::Exists(name.to_string()));
        }
        let stream = Arc::new(Stream {
            name: name.to_string(),
            spec,
            settings: self.settings,
            media: MediaState::new(self.settings.config.segments),
            token: Mutex::new(None),
            worker: Mutex::new(None),
            status: Mutex::new(Status {
                state: StreamState::Idle,
                available: true,
                last_error: None,
                runs: 0,
                retry_in_secs: None,
            }),
            frames_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            config,
        });
        streams.insert(name.to_string(), Arc::clone(&stream));
        drop(streams);
        if stream.config.preload {
            stream.start();
        }
        Ok(stream)
    }

    /// The stream with this name.
    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// All streams, by name.
    pub fn list(&self) -> Vec<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The stream whose access token is `token`. Every stream is compared, in constant time
    /// each, so the lookup time does not reveal how much of a token matched.
    pub fn by_token(&self, token: &str) -> Option<Arc<Stream>> {
        let mut found = None;
        for stream in self.list() {
            if stream.has_token(token) {
                found = Some(stream);
            }
        }
        found
    }

    /// Stops every stream (preloaded ones included) and waits for their workers.
    pub async fn shutdown(&self) {
        let streams = self.list();
        let stops = streams.iter().map(|s| s.stop());
        futures_util::future::join_all(stops).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a frame for the stream's statistics.
fn count_frame(stream: &Stream, bytes: usize) {
    stream.frames_in.fetch_add(1, Ordering::Relaxed);
    stream.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
}

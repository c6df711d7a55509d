//! The hub: the registry of streams, their access tokens, outputs and workers.
//!
//! A [`Stream`] is a source plus its shared media state and its outputs (HLS viewers, a
//! recording), each with an idle timer ([`outputs`]). Its worker task ([`worker`]) runs while an
//! output needs it, or always when the stream is preloaded; every viewer reads the same ring, so
//! a camera gets one upstream connection however many people watch it.

mod media;
pub mod outputs;
pub mod token;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use sluice_media::mp4::Orientation;
use sluice_media::pipeline::{Pipeline, PipelineConfig};
use sluice_media::playlist::PlaylistConfig;
use sluice_media::segmenter::SegmenterConfig;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{HlsConfig, StreamConfig, validate_name};
use crate::recorder::{
    self, ActiveRecording, RecordError, RecordRequest, Recording, RecordingResult, Target, Writers,
};
use crate::redact::redact;
use crate::source::{SourceError, SourceSpec};
use tracing::info;

pub use media::MediaState;
pub use outputs::OutputKind;
use outputs::Outputs;

/// Settings shared by every stream, derived from the `hls:` config.
#[derive(Clone, Copy, Debug)]
pub struct HlsSettings {
    /// The config they come from.
    pub config: HlsConfig,
}

impl HlsSettings {
    /// Settings from the config.
    pub fn new(config: HlsConfig) -> Self {
        HlsSettings { config }
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
            timeline_origin_secs: sluice_media::pipeline::TIMELINE_ORIGIN_SECS,
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

    /// HLS outputs go idle after this long without a segment or part fetch.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.config.idle_timeout)
    }

    /// Restart backoff grows by this much per consecutive failure.
    pub fn restart_increment(&self) -> Duration {
        Duration::from_secs_f64(self.config.restart_increment)
    }

    /// A run that lasted longer than this resets the backoff.
    pub fn restart_reset(&self) -> Duration {
        Duration::from_secs_f64(self.config.restart_reset)
    }
}

/// A stream request the hub cannot satisfy.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A stream with that name exists.
    #[error("stream {0:?} already exists")]
    Exists(String),
    /// No stream with that name.
    #[error("no stream named {0:?}")]
    NotFound(String),
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
    /// The last error, with its typed cause (kept after recovery, for diagnosis).
    pub last_error: Option<SourceError>,
    /// Runs started.
    pub runs: u64,
    /// Seconds of the current backoff, while retrying.
    pub retry_in_secs: Option<f64>,
}

/// What the worker is told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Control {
    /// Stop for good.
    stop: bool,
    /// Bumped to restart the run at once (new source), with the backoff reset.
    restart: u64,
}

struct Worker {
    control: watch::Sender<Control>,
    handle: JoinHandle<()>,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames received from the source.
    pub frames_in: AtomicU64,
    /// Payload bytes received from the source.
    pub bytes_in: AtomicU64,
    /// Segments completed.
    pub segments: AtomicU64,
    /// Recordings written.
    pub recordings_ok: AtomicU64,
    /// Recordings that failed (no file left).
    pub recordings_failed: AtomicU64,
    /// Bytes of recordings written.
    pub recording_bytes: AtomicU64,
    /// Runs restarted after a failure.
    pub restarts: AtomicU64,
}

/// One stream.
pub struct Stream {
    name: String,
    config: Mutex<StreamConfig>,
    spec: Mutex<SourceSpec>,
    settings: HlsSettings,
    media: MediaState,
    token: Mutex<Option<String>>,
    worker: Mutex<Option<Worker>>,
    outputs: Mutex<Outputs>,
    /// Wakes the idle watcher when outputs change.
    lifecycle: Notify,
    has_media: AtomicBool,
    /// When the first media of the stream's life arrived.
    first_media: Mutex<Option<Instant>>,
    status: Mutex<Status>,
    /// The pipeline outlives workers so the output timeline continues across them; a worker
    /// holds it for its whole life, which also keeps two workers from overlapping.
    pipeline: tokio::sync::Mutex<Pipeline>,
    group: Arc<retina::client::SessionGroup>,
    /// Random per stream instance: part of media ETags, so caches never confuse two lives of a
    /// stream (sequence numbers restart when the server does).
    instance: String,
    /// The recording slot: one recording at a time.
    recorder: Mutex<RecorderSlot>,
    /// Signalled when a recording finishes.
    recording_done: Notify,
    /// The last finished recordings, newest last.
    recordings: Mutex<std::collections::VecDeque<RecordingResult>>,
    /// Statistics.
    pub counters: Counters,
}

/// Whether a stream is recording.
enum RecorderSlot {
    Idle,
    /// Checked and reserved; the files are being opened.
    Starting(std::path::PathBuf),
    Active(Recording),
}

/// How long after the first media idle countdowns start even if the stream never gets enough
/// segments to start players (the HLS handlers stop holding the first playlist back then too).
pub const STARTUP_GRACE: Duration = Duration::from_secs(20);

/// Finished recordings kept for the API.
const RECENT_RECORDINGS: usize = 10;

impl Stream {
    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source URL with credentials hidden.
    pub fn redacted_source(&self) -> String {
        redact(&lock(&self.config).source)
    }

    /// A copy of the stream's configuration.
    pub fn config(&self) -> StreamConfig {
        lock(&self.config).clone()
    }

    fn preload(&self) -> bool {
        lock(&self.config).preload
    }

    /// The orientation applied to init segments.
    pub fn orientation(&self) -> Orientation {
        Orientation::new(lock(&self.config).orientation).unwrap_or(Orientation::NORMAL)
    }

    /// The random identity of this stream instance (for ETags).
    pub fn instance_id(&self) -> &str {
        &self.instance
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

    /// The codec strings of the newest init segment, if any segment exists.
    pub fn codecs(&self) -> Option<String> {
        self.media.ring().last().map(|s| s.init.codecs())
    }

    /// The outputs that exist.
    pub fn outputs(&self) -> Vec<OutputKind> {
        lock(&self.outputs).kinds()
    }

    /// Active (not idle) HLS outputs: 0 or 1, the reference's notion of viewers.
    pub fn viewers(&self) -> u64 {
        u64::from(lock(&self.outputs).is_active(OutputKind::Hls))
    }

    /// Adds an output (or wakes an idle one) and starts the worker.
    pub fn add_output(self: &Arc<Self>, kind: OutputKind, timeout: Duration) {
        lock(&self.outputs).add(kind, timeout, Instant::now());
        self.lifecycle.notify_one();
        self.start();
    }

    /// Removes an output (a recording ended); the worker stops if nothing else wants it.
    pub fn remove_output(&self, kind: OutputKind) {
        if lock(&self.outputs).remove(kind) {
            self.lifecycle.notify_one();
            self.stop_if_unwanted();
        }
    }

    /// Starts recording into `target` (from [`Hub::recording_target`]); returns the seconds of
    /// lookback that were in memory. One recording at a time.
    pub async fn record(
        self: &Arc<Self>,
        target: Target,
        request: RecordRequest,
    ) -> Result<f64, RecordError> {
        {
            let mut slot = lock(&self.recorder);
            match &*slot {
                RecorderSlot::Idle => *slot = RecorderSlot::Starting(target.path().to_path_buf()),
                RecorderSlot::Starting(p) => return Err(RecordError::Busy(p.clone())),
                RecorderSlot::Active(r) => return Err(RecordError::Busy(r.info.path.clone())),
            }
        }
        match recorder::start(self, target, request).await {
            Ok((recording, lookback)) => {
                info!(stream = %self.name, path = %recording.info.path.display(), duration = request.duration, lookback, "recording started");
                *lock(&self.recorder) = RecorderSlot::Active(recording);
                Ok(lookback)
            }
            Err(e) => {
                *lock(&self.recorder) = RecorderSlot::Idle;
                Err(e)
            }
        }
    }

    /// The recording in progress.
    pub fn active_recording(&self) -> Option<ActiveRecording> {
        match &*lock(&self.recorder) {
            RecorderSlot::Active(r) => Some(r.snapshot()),
            _ => None,
        }
    }

    /// The last finished recordings, newest last.
    pub fn recent_recordings(&self) -> Vec<RecordingResult> {
        lock(&self.recordings).iter().cloned().collect()
    }

    /// Called by the recording task when it is done.
    pub(crate) fn recording_finished(&self, result: RecordingResult) {
        match &result.error {
            None => {
                self.counters.recordings_ok.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .recording_bytes
                    .fetch_add(result.bytes, Ordering::Relaxed);
            }
            Some(_) => {
                self.counters
                    .recordings_failed
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        {
            let mut recent = lock(&self.recordings);
            recent.push_back(result);
            while recent.len() > RECENT_RECORDINGS {
                recent.pop_front();
            }
        }
        *lock(&self.recorder) = RecorderSlot::Idle;
        self.recording_done.notify_waiters();
        self.remove_output(OutputKind::Recorder);
    }

    /// Finishes a recording in progress now (with what it has) and waits until its file is
    /// written.
    pub async fn finish_recording(&self) {
        self.wait_recording(true).await;
    }

    /// Waits until no recording is in progress; with `finish`, asks it to finish now.
    pub async fn wait_recording(&self, finish: bool) {
        loop {
            let done = self.recording_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            match &*lock(&self.recorder) {
                RecorderSlot::Idle => return,
                RecorderSlot::Active(r) if finish => r.finish_now(),
                _ => {}
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), done).await;
        }
    }

    /// A consumer used an output (a segment or part fetch): re-arm its idle timer.
    pub fn touch(&self, kind: OutputKind) {
        lock(&self.outputs).touch(kind, Instant::now());
        self.lifecycle.notify_one();
    }

    /// The HLS URL, creating the HLS output and the access token if missing. Starts the stream.
    pub fn endpoint_url(self: &Arc<Self>) -> String {
        self.add_output(OutputKind::Hls, self.settings.idle_timeout());
        let token = lock(&self.token)
            .get_or_insert_with(token::new_token)
            .clone();
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
        let (control, control_rx) = watch::channel(Control::default());
        let handle = tokio::spawn(worker::run(Arc::clone(self), control_rx));
        *worker = Some(Worker { control, handle });
    }

    /// Stops the worker unless something still wants it (an output, or preload); checked under
    /// the worker lock so a concurrent `start` is not lost.
    fn stop_if_unwanted(&self) {
        let mut worker = lock(&self.worker);
        let wanted = self.preload() || !lock(&self.outputs).is_empty();
        if !wanted && let Some(w) = worker.take() {
            w.control.send_modify(|c| c.stop = true);
        }
    }

    /// Whether the worker should retry after a failed run.
    fn wants_running(&self) -> bool {
        self.preload() || !lock(&self.outputs).is_empty()
    }

    /// Stops the stream: removes every output, resets the token, stops the worker (preload
    /// included) and waits until its run has ended cleanly.
    pub async fn stop(&self) {
        *lock(&self.outputs) = Outputs::default();
        self.has_media.store(false, Ordering::Relaxed);
        *lock(&self.first_media) = None;
        *lock(&self.token) = None;
        let worker = lock(&self.worker).take();
        if let Some(w) = worker {
            w.control.send_modify(|c| c.stop = true);
            let _ = w.handle.await;
        }
    }

    /// Switches the stream to a new source URL; a running worker restarts at once with its
    /// backoff reset.
    pub fn update_source(&self, source: &str) -> Result<(), HubError> {
        let spec = SourceSpec::parse(source).map_err(|e| HubError::Invalid(e.message))?;
        lock(&self.config).source = source.to_string();
        *lock(&self.spec) = spec;
        if let Some(w) = lock(&self.worker).as_ref() {
            w.control.send_modify(|c| c.restart += 1);
        }
        Ok(())
    }

    /// Called by the worker when media is applied. Idle countdowns start once the stream can
    /// be played: when it holds `hls.startup_segments` complete segments (the first playlist is
    /// held back until then, so a viewer cannot fetch media before), or when the first media is
    /// [`STARTUP_GRACE`] old (a camera whose GOP is too long to ever get there).
    fn media_arrived(&self) {
        if self.has_media.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        let first = *lock(&self.first_media).get_or_insert(now);
        let complete = self
            .media
            .ring()
            .segments()
            .iter()
            .filter(|s| s.is_complete())
            .count();
        let playable = complete >= self.settings.config.startup_segments
            || now.duration_since(first) >= STARTUP_GRACE;
        if playable && !self.has_media.swap(true, Ordering::Relaxed) {
            lock(&self.outputs).media_arrived(now);
            self.lifecycle.notify_one();
        }
    }

    /// Waits for output deadlines and applies the idle rules; returns when the worker should
    /// stop for lack of outputs.
    async fn watch_idle(&self) {
        loop {
            let notified = self.lifecycle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = lock(&self.outputs).next_deadline();
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d.into()) => {}
                        _ = &mut notified => continue,
                    }
                }
                None => {
                    notified.await;
                    continue;
                }
            }
            let preload = self.preload();
            let expired = lock(&self.outputs).expire(Instant::now(), preload);
            if !expired.removed.is_empty() {
                tracing::debug!(stream = %self.name, removed = ?expired.removed, "outputs idle");
            }
            if expired.all_idle {
                *lock(&self.token) = None;
            }
            if expired.empty && !preload {
                self.stop_if_unwanted();
                return;
            }
        }
    }
}

/// The registry of streams.
pub struct Hub {
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    settings: HlsSettings,
    /// Where recordings may be written (`None`: anywhere, for the CLI).
    record_dirs: Option<Vec<std::path::PathBuf>>,
    /// The files being recorded: one writer per file, across streams.
    writers: Writers,
    /// Seconds from a ring change to the release of the blocked request it satisfied.
    blocking_release: Histogram,
    /// Tracks RTSP sessions so shutdown can wait for their TEARDOWN.
    group: Arc<retina::client::SessionGroup>,
}

impl Hub {
    /// An empty hub; recordings may be written inside `record_dirs` (`None`: anywhere).
    pub fn new(settings: HlsSettings, record_dirs: Option<Vec<std::path::PathBuf>>) -> Arc<Hub> {
        Arc::new(Hub {
            streams: RwLock::new(BTreeMap::new()),
            settings,
            record_dirs,
            writers: Writers::default(),
            blocking_release: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            group: Arc::new(retina::client::SessionGroup::default()),
        })
    }

    /// The shared settings.
    pub fn settings(&self) -> &HlsSettings {
        &self.settings
    }

    /// Prepares the file a recording of `holder` (a stream name) asks for: `path` is placed in
    /// the allowed directories (see [`recorder::path::locate`]), its directory opened
    /// ([`Target::open`]: symlinks inside are refused, missing directories created) and the file
    /// claimed, so no other recording writes it meanwhile. An existing regular file there is an
    /// error unless `overwrite`.
    pub async fn recording_target(
        &self,
        path: &str,
        overwrite: bool,
        holder: &str,
    ) -> Result<Target, recorder::path::PathError> {
        let given = path.to_string();
        let dirs = self.record_dirs.clone();
        let writers = self.writers.clone();
        let holder = holder.to_string();
        // Directory creation and opening may block (a slow disk, a network filesystem).
        tokio::task::spawn_blocking(move || {
            let location = recorder::path::locate(&given, dirs.as_deref())?;
            Target::open(location, &given, overwrite, &writers, &holder)
        })
        .await
        .unwrap_or_else(|e| {
            Err(recorder::path::PathError::Io {
                path: path.to_string(),
                message: e.to_string(),
            })
        })
    }

    /// Records how long after a part was published a blocked request got going.
    pub fn observe_blocking_release(&self, delay: Duration) {
        self.blocking_release.observe(delay.as_secs_f64());
    }

    /// The histogram of [`Hub::observe_blocking_release`] (a handle to the same data).
    pub fn blocking_release(&self) -> Histogram {
        self.blocking_release.clone()
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
        let preload = config.preload;
        let stream = Arc::new(Stream {
            name: name.to_string(),
            config: Mutex::new(config),
            spec: Mutex::new(spec),
            settings: self.settings,
            media: MediaState::new(
                self.settings.config.segments,
                self.settings.config.restart_discontinuity,
            ),
            token: Mutex::new(None),
            worker: Mutex::new(None),
            outputs: Mutex::new(Outputs::default()),
            lifecycle: Notify::new(),
            has_media: AtomicBool::new(false),
            first_media: Mutex::new(None),
            status: Mutex::new(Status {
                state: StreamState::Idle,
                available: true,
                last_error: None,
                runs: 0,
                retry_in_secs: None,
            }),
            pipeline: tokio::sync::Mutex::new(Pipeline::new(self.settings.pipeline())),
            group: Arc::clone(&self.group),
            instance: token::new_token()[..12].to_string(),
            recorder: Mutex::new(RecorderSlot::Idle),
            recording_done: Notify::new(),
            recordings: Mutex::new(std::collections::VecDeque::new()),
            counters: Counters::default(),
        });
        streams.insert(name.to_string(), Arc::clone(&stream));
        drop(streams);
        if preload {
            stream.start();
        }
        Ok(stream)
    }

    /// Stops and removes a stream.
    pub async fn remove_stream(&self, name: &str) -> Result<(), HubError> {
        let stream = self
            .streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| HubError::NotFound(name.to_string()))?;
        stream.finish_recording().await;
        stream.media.close();
        stream.stop().await;
        Ok(())
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

    /// Stops every stream (preloaded ones included): parked requests are released, workers end
    /// their runs, and RTSP sessions are torn down (bounded by a few seconds).
    pub async fn shutdown(&self) {
        let streams = self.list();
        // Recordings first: they finish with what they have and are written completely.
        futures_util::future::join_all(streams.iter().map(|s| s.finish_recording())).await;
        for stream in &streams {
            stream.media.close();
        }
        futures_util::future::join_all(streams.iter().map(|s| s.stop())).await;
        let teardown = self.group.await_teardown();
        if tokio::time::timeout(Duration::from_secs(5), teardown)
            .await
            .is_err()
        {
            tracing::warn!("RTSP TEARDOWN did not complete within 5 s");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

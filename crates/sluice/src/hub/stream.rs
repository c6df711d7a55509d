//! One stream: its configuration, its worker and status, and the [`Tap`] its outputs use.
//!
//! The worker ([`super::worker`]) runs while the stream's demand wants it, or always when the
//! stream is preloaded; every output reads the same tap, so a camera gets one upstream
//! connection however many consumers it has.
//!
//! Lock order: `worker`, then the demand state (see [`super::lease::Demands::state`]); every
//! other lock is taken alone and never held across an await.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use sluice_media::pipeline::Pipeline;
use sluice_media::timestamp::DropReason;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::tap::Tap;
use super::{HubError, Settings};
use crate::config::StreamConfig;
use crate::redact::redact;
use crate::source::{Opener, SourceError, SourceSpec};

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

impl StreamState {
    /// Every state, for metrics that list each one.
    pub const ALL: [StreamState; 4] = [
        StreamState::Idle,
        StreamState::Starting,
        StreamState::Running,
        StreamState::Retrying,
    ];

    /// The snake_case name the API shows.
    pub fn name(self) -> &'static str {
        match self {
            StreamState::Idle => "idle",
            StreamState::Starting => "starting",
            StreamState::Running => "running",
            StreamState::Retrying => "retrying",
        }
    }
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
pub(super) struct Control {
    /// Stop for good.
    pub(super) stop: bool,
    /// Bumped to restart the run at once (new source), with the backoff reset.
    pub(super) restart: u64,
}

struct Worker {
    control: watch::Sender<Control>,
    handle: JoinHandle<()>,
}

/// Spawns a stream's worker task ([`super::worker::spawn`]; the hub hands it in).
pub(super) type SpawnWorker = fn(Arc<Stream>, watch::Receiver<Control>) -> JoinHandle<()>;

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames received from the source.
    pub frames_in: AtomicU64,
    /// Payload bytes received from the source.
    pub bytes_in: AtomicU64,
    /// Segments completed.
    pub segments: AtomicU64,
    /// Runs restarted after a failure.
    pub restarts: AtomicU64,
    /// Frames the timestamp guard dropped, by [`DropReason`] (in [`DropReason::ALL`]'s order).
    pub dropped: [AtomicU64; DropReason::ALL.len()],
}

impl Counters {
    /// Frames dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        let i = DropReason::ALL.iter().position(|r| *r == reason);
        i.map_or(0, |i| self.dropped[i].load(Ordering::Relaxed))
    }

    pub(super) fn count_drop(&self, reason: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|r| *r == reason) {
            self.dropped[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How long after the first media idle countdowns start even if the stream never gets enough
/// segments to start players (the HLS handlers stop holding the first playlist back then too).
pub const STARTUP_GRACE: Duration = Duration::from_secs(20);

/// See the module documentation.
pub struct Stream {
    config: Mutex<StreamConfig>,
    spec: Mutex<SourceSpec>,
    settings: Settings,
    tap: Tap,
    opener: Arc<dyn Opener>,
    spawn_worker: SpawnWorker,
    worker: Mutex<Option<Worker>>,
    /// Idle countdowns have started (see [`Stream::media_arrived`]).
    has_media: AtomicBool,
    /// When the first media of the stream's life arrived.
    first_media: Mutex<Option<Instant>>,
    status: Mutex<Status>,
    /// The pipeline outlives workers so the output timeline continues across them; a worker
    /// holds it for its whole life, which also keeps two workers from overlapping.
    pub(super) pipeline: tokio::sync::Mutex<Pipeline>,
    /// Statistics.
    pub counters: Counters,
}

impl Stream {
    pub(super) fn new(
        name: &str,
        config: StreamConfig,
        spec: SourceSpec,
        settings: Settings,
        opener: Arc<dyn Opener>,
        spawn_worker: SpawnWorker,
    ) -> Arc<Stream> {
        let media =
            super::MediaState::new(settings.hls.segments, settings.hls.restart_discontinuity);
        let instance = crate::token::new_token()[..12].to_string();
        let tap = Tap::new(name, media, config.orientation, instance);
        let stream = Arc::new(Stream {
            config: Mutex::new(config),
            spec: Mutex::new(spec),
            settings,
            tap,
            opener,
            spawn_worker,
            worker: Mutex::new(None),
            has_media: AtomicBool::new(false),
            first_media: Mutex::new(None),
            status: Mutex::new(Status {
                state: StreamState::Idle,
                available: true,
                last_error: None,
                runs: 0,
                retry_in_secs: None,
            }),
            pipeline: tokio::sync::Mutex::new(Pipeline::new(settings.pipeline())),
            counters: Counters::default(),
        });
        let weak: Weak<Stream> = Arc::downgrade(&stream);
        stream.tap.demand().set_hook(Box::new(move || {
            if let Some(stream) = weak.upgrade() {
                stream.demand_changed();
            }
        }));
        stream
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        self.tap.name()
    }

    /// What outputs use of the stream.
    pub fn tap(&self) -> &Tap {
        &self.tap
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

    /// The shared settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(super) fn opener(&self) -> &dyn Opener {
        &*self.opener
    }

    pub(super) fn spec(&self) -> SourceSpec {
        lock(&self.spec).clone()
    }

    /// A snapshot of the stream's status.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    pub(super) fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut lock(&self.status));
    }

    /// The codec strings of the newest init segment, if any segment exists.
    pub fn codecs(&self) -> Option<String> {
        self.tap.media().ring().last().map(|s| s.init.codecs())
    }

    /// Starts the worker unless it is running.
    pub fn start(self: &Arc<Self>) {
        let mut worker = lock(&self.worker);
        if worker.as_ref().is_some_and(|w| !w.handle.is_finished()) {
            return;
        }
        let (control, control_rx) = watch::channel(Control::default());
        let handle = (self.spawn_worker)(Arc::clone(self), control_rx);
        *worker = Some(Worker { control, handle });
    }

    /// Demand changed (the hook the tap's leases call): start the worker, or stop it when
    /// nothing wants it any more.
    fn demand_changed(self: &Arc<Self>) {
        if self.wants_running() {
            self.start();
        } else {
            self.stop_if_unwanted();
        }
    }

    /// Stops the worker unless something still wants it (demand, or preload); checked under
    /// the worker lock so a concurrent `start` is not lost.
    fn stop_if_unwanted(&self) {
        let mut worker = lock(&self.worker);
        if !self.wants_running()
            && let Some(w) = worker.take()
        {
            w.control.send_modify(|c| c.stop = true);
        }
    }

    /// Whether the worker should run (and retry after a failed run).
    pub(super) fn wants_running(&self) -> bool {
        self.preload() || self.tap.demand().state().is_wanted()
    }

    /// Stops the stream for good: every lease goes idle (HLS tokens are void), the worker
    /// stops (preload included) and its run ends cleanly before this returns.
    pub async fn stop(&self) {
        self.tap.demand().state().reset();
        self.has_media.store(false, Ordering::Relaxed);
        *lock(&self.first_media) = None;
        let worker = lock(&self.worker).take();
        if let Some(w) = worker {
            w.control.send_modify(|c| c.stop = true);
            let _ = w.handle.await;
        }
    }

    /// Applies a new configuration at once, keeping the stream's viewers and timeline (the
    /// reference's `update_source`, extended to every option):
    ///
    /// - a new source or transport, or `reconnect` (a source given again), restarts a running
    ///   worker at once, with its backoff reset;
    /// - the orientation applies to the next init segment, clip or snapshot served;
    /// - preload turned on starts the worker; turned off, demand decides (the worker stops
    ///   unless an output wants it);
    /// - the timeouts apply from the next connection.
    pub fn reconfigure(
        self: &Arc<Self>,
        config: StreamConfig,
        reconnect: bool,
    ) -> Result<(), HubError> {
        config
            .validate()
            .map_err(|e| HubError::Invalid(e.to_string()))?;
        let spec = SourceSpec::parse(&config.source).map_err(|e| HubError::Invalid(e.message))?;
        let old = std::mem::replace(&mut *lock(&self.config), config.clone());
        *lock(&self.spec) = spec;
        if old.orientation != config.orientation {
            self.tap.set_orientation(config.orientation);
        }
        if (reconnect || old.source != config.source || old.transport != config.transport)
            && let Some(w) = lock(&self.worker).as_ref()
        {
            w.control.send_modify(|c| c.restart += 1);
        }
        match (old.preload, config.preload) {
            (false, true) => self.start(),
            (true, false) => self.stop_if_unwanted(),
            _ => {}
        }
        Ok(())
    }

    /// Changes the orientation applied to the video (init segments, clips, snapshots).
    pub fn set_orientation(&self, exif: u8) {
        lock(&self.config).orientation = exif;
        self.tap.set_orientation(exif);
    }

    /// Called by the worker when media is applied. Idle countdowns start once the stream can
    /// be played: when it holds `hls.startup_segments` complete segments (the first playlist is
    /// held back until then, so a viewer cannot fetch media before), or when the first media is
    /// [`STARTUP_GRACE`] old (a camera whose GOP is too long to ever get there).
    pub(super) fn media_arrived(&self) {
        if self.has_media.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        let first = *lock(&self.first_media).get_or_insert(now);
        let complete = self
            .tap
            .media()
            .ring()
            .segments()
            .iter()
            .filter(|s| s.is_complete())
            .count();
        let playable = complete >= self.settings.hls.startup_segments
            || now.duration_since(first) >= STARTUP_GRACE;
        if playable && !self.has_media.swap(true, Ordering::Relaxed) {
            self.tap.demand().state().media_arrived(now);
            self.tap.demand().changed().notify_one();
        }
    }

    /// Waits for demand deadlines and applies them; returns when the worker should stop for
    /// lack of demand.
    pub(super) async fn watch_idle(&self) {
        let demand = self.tap.demand();
        loop {
            let notified = demand.changed().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = demand.state().next_deadline();
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d) => {}
                        _ = &mut notified => continue,
                    }
                }
                None => {
                    notified.await;
                    continue;
                }
            }
            let expired = demand.state().expire(Instant::now());
            if !expired.changed.is_empty() {
                tracing::debug!(stream = %self.name(), changed = ?expired.changed, "demand idle");
            }
            if !self.wants_running() {
                self.stop_if_unwanted();
                return;
            }
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! The hub: the registry of streams.
//!
//! A [`Stream`] is a source, its worker ([`worker`]) and status, and a [`Tap`] through which
//! outputs read its media and hold [`demand`] with leases ([`lease`]). The hub knows no output:
//! outputs find streams here and keep their per-stream state in the tap.

pub mod demand;
pub mod lease;
mod media;
mod stream;
pub mod tap;
mod worker;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sluice_media::pipeline::{PipelineConfig, TIMELINE_ORIGIN_SECS};
use sluice_media::playlist::PlaylistConfig;
use sluice_media::segmenter::SegmenterConfig;

use crate::config::{HlsConfig, IngestConfig, StreamConfig, validate_name};
use crate::source::{Opener, SourceSpec, Sources};

pub use demand::Policy;
pub use lease::Lease;
pub use media::MediaState;
pub use stream::{Counters, STARTUP_GRACE, Status, Stream, StreamState};
pub use tap::{Keyframe, Tap, TapFrame};

/// Settings shared by every stream: the `hls:` and `ingest:` config sections.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// How media is cut and served.
    pub hls: HlsConfig,
    /// How sources are run.
    pub ingest: IngestConfig,
}

impl Settings {
    /// Minimum segment duration: the target minus 0.1 s, so a keyframe exactly at the target
    /// still cuts despite timestamp jitter (the reference's adjuster).
    pub fn min_segment_secs(&self) -> f64 {
        (self.hls.segment_duration - 0.1).max(0.1)
    }

    /// The media pipeline settings.
    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            segmenter: SegmenterConfig {
                min_segment_secs: self.min_segment_secs(),
                part_target_secs: self.hls.part_duration,
            },
            max_gap_secs: self.ingest.max_timestamp_gap,
            timeline_origin_secs: TIMELINE_ORIGIN_SECS,
        }
    }

    /// The playlist settings.
    pub fn playlist(&self) -> PlaylistConfig {
        PlaylistConfig {
            ll_hls: self.hls.ll_hls,
            part_target: self.hls.part_duration,
            min_segment: self.min_segment_secs(),
        }
    }

    /// Restart backoff grows by this much per consecutive failure.
    pub fn restart_increment(&self) -> Duration {
        Duration::from_secs_f64(self.ingest.restart_increment)
    }

    /// A run that lasted longer than this resets the backoff.
    pub fn restart_reset(&self) -> Duration {
        Duration::from_secs_f64(self.ingest.restart_reset)
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

/// How long removing a stream (or shutting down) waits for its outputs' work to finish (a
/// recording writing its file).
const OUTPUT_WORK_BOUND: Duration = Duration::from_secs(30);

/// The registry of streams.
pub struct Hub {
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    settings: Settings,
    opener: Arc<dyn Opener>,
}

impl Hub {
    /// An empty hub whose streams open real sources.
    pub fn new(settings: Settings) -> Arc<Hub> {
        Hub::with_opener(settings, Arc::new(Sources::default()))
    }

    /// An empty hub whose streams open their sources through `opener` (tests inject scripted
    /// sources here).
    pub fn with_opener(settings: Settings, opener: Arc<dyn Opener>) -> Arc<Hub> {
        Arc::new(Hub {
            streams: RwLock::new(BTreeMap::new()),
            settings,
            opener,
        })
    }

    /// The shared settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the hub's streams open their sources through (a probe uses it too, so shutdown
    /// waits for its RTSP TEARDOWN and tests can script it).
    pub fn opener(&self) -> &dyn Opener {
        &*self.opener
    }

    /// Registers a stream; starts it if it is preloaded.
    pub fn add_stream(&self, name: &str, config: StreamConfig) -> Result<Arc<Stream>, HubError> {
        validate_name(name).map_err(HubError::Invalid)?;
        config
            .validate()
            .map_err(|e| HubError::Invalid(e.to_string()))?;
        let spec = SourceSpec::parse(&config.source).map_err(|e| HubError::Invalid(e.message))?;
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if streams.contains_key(name) {
            return Err(HubError::Exists(name.to_string()));
        }
        let preload = config.preload;
        let stream = Stream::new(
            name,
            config,
            spec,
            self.settings,
            Arc::clone(&self.opener),
            worker::spawn,
        );
        streams.insert(name.to_string(), Arc::clone(&stream));
        drop(streams);
        if preload {
            stream.start();
        }
        Ok(stream)
    }

    /// Stops and removes a stream: its parked requests are released, outputs finish their
    /// work with what they have (a recording writes its file), and the worker stops.
    pub async fn remove_stream(&self, name: &str) -> Result<(), HubError> {
        let stream = self
            .streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| HubError::NotFound(name.to_string()))?;
        close(&stream).await;
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

    /// Stops every stream (preloaded ones included): parked requests are released, outputs
    /// finish their work, workers end their runs, and RTSP sessions are torn down (bounded by a
    /// few seconds).
    pub async fn shutdown(&self) {
        let streams = self.list();
        futures_util::future::join_all(streams.iter().map(|s| close(s))).await;
        if tokio::time::timeout(Duration::from_secs(5), self.opener.closed())
            .await
            .is_err()
        {
            tracing::warn!("RTSP TEARDOWN did not complete within 5 s");
        }
    }
}

/// Closes a stream for good: see [`Hub::remove_stream`].
async fn close(stream: &Stream) {
    stream.tap().media().close();
    let work = stream.tap().work();
    work.close();
    if tokio::time::timeout(OUTPUT_WORK_BOUND, work.wait())
        .await
        .is_err()
    {
        tracing::warn!(stream = %stream.name(), "outputs did not finish their work in time");
    }
    stream.stop().await;
}

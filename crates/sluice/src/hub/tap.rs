//! A stream's tap: everything an output may use of a stream, and nothing of its lifecycle.
//!
//! Outputs read the media (the part ring, the latest keyframe, and a broadcast of every frame
//! after the timestamp guard), hold demand through leases, and keep their own per-stream state
//! in the tap's [`Slots`], which the hub never looks into.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sluice_media::mp4::Orientation;
use sluice_media::{Frame, Track};
use tokio::sync::{broadcast, watch};
use tokio_util::task::TaskTracker;

use super::lease::Demands;
use super::media::MediaState;

/// Frames a slow subscriber of [`Tap::frames`] may fall behind before it loses some.
const FRAME_BACKLOG: usize = 512;

/// The latest video keyframe, with what is needed to decode it alone.
#[derive(Clone, Debug)]
pub struct Keyframe {
    /// Counts keyframes over the stream's life (a cache key).
    pub number: u64,
    /// Its track (codec and decoder configuration).
    pub track: Track,
    /// The frame, with timestamps in the output timeline.
    pub frame: Frame,
    /// When it arrived.
    pub at: SystemTime,
}

/// A frame of the stream and the tracks it belongs to.
#[derive(Clone, Debug)]
pub struct TapFrame {
    /// The tracks of the run (the frame's `track` indexes them).
    pub tracks: Arc<Vec<Track>>,
    /// The frame, with timestamps in the output timeline.
    pub frame: Frame,
}

/// Per-stream state of outputs, one value per type, created on first use and dropped with the
/// stream.
#[derive(Default)]
pub struct Slots(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Slots {
    /// The value of type `T`, created with `T::default()` on first use.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let value = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        Arc::clone(value)
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("slots are keyed by their type"))
    }
}

/// See the module documentation.
pub struct Tap {
    name: String,
    instance: String,
    media: MediaState,
    keyframe: watch::Sender<Option<Arc<Keyframe>>>,
    keyframes: AtomicU64,
    frames: broadcast::Sender<TapFrame>,
    orientation: AtomicU8,
    demand: Arc<Demands>,
    slots: Slots,
    work: TaskTracker,
}

impl Tap {
    pub(super) fn new(name: &str, media: MediaState, orientation: u8, instance: String) -> Tap {
        Tap {
            name: name.to_string(),
            instance,
            media,
            keyframe: watch::Sender::new(None),
            keyframes: AtomicU64::new(0),
            frames: broadcast::Sender::new(FRAME_BACKLOG),
            orientation: AtomicU8::new(orientation),
            demand: Arc::new(Demands::default()),
            slots: Slots::default(),
            work: TaskTracker::new(),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Random per stream instance: part of media ETags, so caches never confuse two lives of a
    /// stream (sequence numbers restart when the server does).
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// The part ring and its notifier.
    pub fn media(&self) -> &MediaState {
        &self.media
    }

    /// The tracks of the newest init segment, if any segment exists.
    pub fn tracks(&self) -> Option<Vec<Track>> {
        self.media.ring().last().map(|s| s.init.tracks.clone())
    }

    /// The orientation applied to the video.
    pub fn orientation(&self) -> Orientation {
        Orientation::new(self.orientation.load(Ordering::Relaxed)).unwrap_or(Orientation::NORMAL)
    }

    pub(super) fn set_orientation(&self, exif: u8) {
        self.orientation.store(exif, Ordering::Relaxed);
    }

    /// The latest video keyframe; changes with every new one.
    pub fn keyframe(&self) -> watch::Receiver<Option<Arc<Keyframe>>> {
        self.keyframe.subscribe()
    }

    /// Every frame after the timestamp guard, from now on.
    pub fn frames(&self) -> broadcast::Receiver<TapFrame> {
        self.frames.subscribe()
    }

    /// The stream's demand: outputs take leases from it.
    pub fn demand(&self) -> &Arc<Demands> {
        &self.demand
    }

    /// Outputs' background work on this stream (a recording): spawned here, it is waited for
    /// (bounded) when the stream is removed or the server shuts down, after the media closed.
    pub fn work(&self) -> &TaskTracker {
        &self.work
    }

    /// Per-stream state of outputs.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Publishes a frame the guard admitted (called by the worker).
    pub(super) fn publish(&self, tracks: &Arc<Vec<Track>>, frame: &Frame) {
        if frame.keyframe
            && let Some(track) = tracks.get(frame.track)
            && track.kind() == sluice_media::TrackKind::Video
        {
            let number = self.keyframes.fetch_add(1, Ordering::Relaxed) + 1;
            self.keyframe.send_replace(Some(Arc::new(Keyframe {
                number,
                track: track.clone(),
                frame: frame.clone(),
                at: SystemTime::now(),
            })));
        }
        if self.frames.receiver_count() > 0 {
            let _ = self.frames.send(TapFrame {
                tracks: Arc::clone(tracks),
                frame: frame.clone(),
            });
        }
    }
}

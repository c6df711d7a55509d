//! The per-stream media pipeline: timestamp guard → segmenter, across runs.
//!
//! A source task feeds it frames and applies the events it returns to the stream's
//! [`crate::ring::SegmentRing`]. It lives as long as the stream, so the output timeline and the
//! fragment numbering continue across reconnects.

use std::time::SystemTime;

use crate::frame::Frame;
use crate::segmenter::{Event, Segmenter, SegmenterConfig, SegmenterError};
use crate::timestamp::{DropReason, TimestampError, TimestampGuard, Verdict};
use crate::track::{Track, TrackKind};

/// Pipeline settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PipelineConfig {
    /// Segment and part durations.
    pub segmenter: SegmenterConfig,
    /// A DTS change larger than this (seconds, either direction) is a jump that is rebased and
    /// marked as a discontinuity.
    pub max_gap_secs: f64,
    /// Where the output timeline starts (seconds): the first run's first frame gets this
    /// decode time. Sluice uses [`TIMELINE_ORIGIN_SECS`]; tests use 0 to pin exact values.
    pub timeline_origin_secs: f64,
}

/// The output timeline of a stream starts here rather than at zero. Shaka Player (5.2, HLS in
/// its default "segments" mode) computes a timestamp offset per appended part and, while that
/// offset stays within a few hundredths of a second of zero (media time equal to playlist time,
/// as on a young stream that starts at 0), aborts the SourceBuffer before the first
/// non-independent part of every segment; MSE then drops video until the next keyframe and
/// Shaka jumps the hole, so it shows one frame in five. Any origin of a second or more avoids
/// it; ten seconds leaves room for the audio/video start skew of a first GOP.
pub const TIMELINE_ORIGIN_SECS: f64 = 10.0;

/// See the module documentation.
#[derive(Debug)]
pub struct Pipeline {
    guard: TimestampGuard,
    segmenter: Segmenter,
}

impl Pipeline {
    /// A pipeline with no run started.
    pub fn new(cfg: PipelineConfig) -> Self {
        Pipeline {
            guard: TimestampGuard::new(&[], cfg.max_gap_secs, cfg.timeline_origin_secs),
            segmenter: Segmenter::new(cfg.segmenter),
        }
    }

    /// Starts a run with the source's tracks; fails if there is no video track.
    pub fn start_run(&mut self, tracks: &[Track]) -> Result<(), SegmenterError> {
        self.segmenter.start_run(tracks)?;
        self.guard.new_run(&guard_tracks(tracks));
        Ok(())
    }

    /// The source's parameters changed mid-run.
    pub fn update_tracks(
        &mut self,
        tracks: &[Track],
        out: &mut Vec<Event>,
    ) -> Result<(), SegmenterError> {
        self.segmenter.update_tracks(tracks, out)
    }

    /// Pushes one frame; returns why it was dropped, if it was.
    pub fn push(
        &mut self,
        frame: Frame,
        now: SystemTime,
        out: &mut Vec<Event>,
    ) -> Option<DropReason> {
        self.push_observed(frame, now, out, |_| {})
    }

    /// [`Pipeline::push`], showing `observe` each frame the guard admits, with its timestamps
    /// in the output timeline, before the segmenter takes it (for consumers of access units
    /// rather than parts; cloning a frame does not copy its payload).
    pub fn push_observed(
        &mut self,
        frame: Frame,
        now: SystemTime,
        out: &mut Vec<Event>,
        observe: impl FnOnce(&Frame),
    ) -> Option<DropReason> {
        match self.guard.admit(frame) {
            Verdict::Pass {
                frame,
                discontinuity,
            } => {
                observe(&frame);
                self.segmenter.push(frame, discontinuity, now, out);
                None
            }
            Verdict::Drop(reason) => Some(reason),
        }
    }

    /// Records a frame that arrived without a DTS; fails the run after too many in a row.
    pub fn missing_dts(&mut self) -> Result<(), TimestampError> {
        self.guard.missing_dts()
    }

    /// Ends the run, flushing the queued frames as a last part.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.segmenter.finish(out);
    }
}

fn guard_tracks(tracks: &[Track]) -> Vec<(u32, bool)> {
    tracks
        .iter()
        .map(|t| (t.timescale(), t.kind() == TrackKind::Video))
        .collect()
}

//! The timestamp guard: keeps every track's output timeline monotonic and continuous.
//!
//! Cameras send frames without timestamps, out of order, and with jumps (a reboot, an NTP step,
//! an RTP clock reset). Home Assistant fails the run on a large jump and lets the next run start
//! a new timeline; this guard instead *rebases*: the output timeline never jumps and never goes
//! backwards, the stream keeps flowing without reconnecting, and the segmenter is told to mark a
//! discontinuity.
//!
//! Offsets are per track, but a rebase is shared: the first track to see a jump (or the first
//! frame of a new run) sets an *anchor*, and every other track adopts the same shift (converted
//! to its timescale) when its own timestamps move to the new domain. This keeps audio in sync
//! with video across the jump. A track's frames from before the jump that are still in flight
//! keep the old offset, because they are judged against that track's own last input timestamp.

use crate::frame::Frame;

/// Consecutive frames without DTS tolerated; the next one fails the run (as the reference's
/// `MAX_MISSING_DTS = 6`).
pub const MAX_MISSING_DTS: u32 = 6;

/// Why a run had to end.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    /// Too many frames in a row arrived without a decode timestamp.
    #[error("no DTS in {0} consecutive frames")]
    MissingDts(u32),
}

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its DTS is not after the previous frame's DTS of the same track.
    NonMonotonic,
}

/// The guard's decision about one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the frame on, with timestamps in the output timeline. `discontinuity` is set on the
    /// first frame of a video track after a jump: the segmenter starts a new segment there.
    Pass {
        /// The frame, rebased.
        frame: Frame,
        /// The frame follows a timestamp jump on a video track.
        discontinuity: bool,
    },
    /// Drop the frame.
    Drop(DropReason),
}

#[derive(Clone, Debug)]
struct TrackState {
    timescale: u32,
    video: bool,
    /// Last accepted input DTS in this run.
    last_in: Option<i64>,
    /// Last output DTS and duration (kept across runs).
    last_out: Option<i64>,
    last_duration: i64,
    /// Added to input timestamps.
    offset: i64,
    /// The anchor generation this track has adopted.
    generation: u64,
}

/// A shared rebase: `offset` ticks of `timescale`, set by a jump or a new run.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    offset: i64,
    timescale: u32,
    generation: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct TimestampGuard {
    max_gap_secs: f64,
    tracks: Vec<TrackState>,
    missing_in_row: u32,
    anchor: Option<Anchor>,
    generation: u64,
    /// Where the output timeline starts, in seconds.
    origin_secs: f64,
}

impl TimestampGuard {
    /// A guard for tracks with the given `(timescale, is_video)` that treats a DTS change of more
    /// than `max_gap_secs` seconds (either direction) as a jump; the output timeline starts at
    /// `origin_secs`.
    pub fn new(tracks: &[(u32, bool)], max_gap_secs: f64, origin_secs: f64) -> Self {
        let mut guard = TimestampGuard {
            max_gap_secs,
            origin_secs: origin_secs.max(0.0),
            tracks: Vec::new(),
            missing_in_row: 0,
            anchor: None,
            generation: 0,
        };
        guard.new_run(tracks);
        guard
    }

    /// Starts a new run (a reconnect): the tracks may have changed, and the first frame of the
    /// run is placed right after the end of the previous run, so the output timeline continues.
    pub fn new_run(&mut self, tracks: &[(u32, bool)]) {
        let end_secs = self
            .tracks
            .iter()
            .filter_map(|t| {
                t.last_out
                    .map(|o| (o + t.last_duration) as f64 / f64::from(t.timescale))
            })
            .fold(self.origin_secs, f64::max);
        let old = std::mem::take(&mut self.tracks);
        self.tracks = tracks
            .iter()
            .enumerate()
            .map(|(i, &(timescale, video))| {
                let timescale = timescale.max(1);
                // A track that continues (same index and timescale) keeps its last output so
                // monotonicity holds across the run boundary; a new one starts at the end.
                let prev = old.get(i).filter(|t| t.timescale == timescale);
                TrackState {
                    timescale,
                    video,
                    last_in: None,
                    last_out: prev.and_then(|t| t.last_out),
                    last_duration: prev.map_or(0, |t| t.last_duration),
                    offset: 0,
                    generation: 0,
                }
            })
            .collect();
        self.missing_in_row = 0;
        self.generation += 1;
        // The anchor's offset is fixed by the run's first frame (see `admit`); until then it
        // holds the run's start time in microseconds.
        self.anchor = Some(Anchor {
            offset: (end_secs * 1e6).round() as i64,
            timescale: 0,
            generation: self.generation,
        });
    }

    /// Records a frame that arrived without a DTS. Fails once more than [`MAX_MISSING_DTS`]
    /// arrive in a row.
    pub fn missing_dts(&mut self) -> Result<(), TimestampError> {
        self.missing_in_row += 1;
        if self.missing_in_row > MAX_MISSING_DTS {
            return Err(TimestampError::MissingDts(self.missing_in_row));
        }
        Ok(())
    }

    /// Judges one frame. Frames of unknown tracks are dropped as non-monotonic.
    pub fn admit(&mut self, mut frame: Frame) -> Verdict {
        self.missing_in_row = 0;
        let Some(t) = self.tracks.get(frame.track) else {
            return Verdict::Drop(DropReason::NonMonotonic);
        };
        let max_gap = (self.max_gap_secs * f64::from(t.timescale)) as i64;
        let in_old_domain = t
            .last_in
            .is_some_and(|last| (frame.dts - last).abs() <= max_gap);
        let mut discontinuity = false;
        if !in_old_domain {
            let jumped = t.last_in.is_some();
            self.adopt_anchor(frame.track, frame.dts);
            discontinuity = jumped && self.tracks[frame.track].video;
        }
        let t = &mut self.tracks[frame.track];
        if in_old_domain && t.last_in.is_some_and(|last| frame.dts <= last) {
            return Verdict::Drop(DropReason::NonMonotonic);
        }
        let out = frame.dts.saturating_add(t.offset);
        if out < 0 || t.last_out.is_some_and(|last| out <= last) {
            // Only possible right after a rebase, for a frame that lies before the anchor.
            return Verdict::Drop(DropReason::NonMonotonic);
        }
        if let Some(last) = t.last_out {
            t.last_duration = out - last;
        }
        if let (Some(d), None) = (frame.duration, t.last_out) {
            t.last_duration = i64::from(d);
        }
        t.last_in = Some(frame.dts);
        t.last_out = Some(out);
        frame.dts = out;
        frame.pts = frame.pts.saturating_add(t.offset);
        Verdict::Pass {
            frame,
            discontinuity,
        }
    }

    /// Gives track `i`, whose input `dts` left its old timestamp domain (or who has none yet in
    /// this run), an offset from the current anchor, creating the anchor if needed.
    fn adopt_anchor(&mut self, i: usize, dts: i64) {
        let anchor = match self.anchor {
            // The run's first frame fixes the run anchor: it lands at the previous run's end.
            Some(a) if a.timescale == 0 => {
                let ts = self.tracks[i].timescale;
                let start = (a.offset as f64 * f64::from(ts) / 1e6).round() as i64;
                let start = start.max(self.tracks[i].last_out.map_or(0, |o| o + 1));
                Anchor {
                    offset: start - dts,
                    timescale: ts,
                    generation: a.generation,
                }
            }
            // An anchor this track has not adopted yet: follow it.
            Some(a) if self.tracks[i].generation != a.generation => a,
            // This track is the first to jump: it sets a new anchor that continues its own
            // timeline one frame after its last output.
            _ => {
                self.generation += 1;
                let t = &self.tracks[i];
                let next = t.last_out.map_or(0, |o| o + t.last_duration.max(1));
                Anchor {
                    offset: next - dts,
                    timescale: t.timescale,
                    generation: self.generation,
                }
            }
        };
        self.anchor = Some(anchor);
        let t = &mut self.tracks[i];
        t.offset = if anchor.timescale == t.timescale {
            anchor.offset
        } else {
            (anchor.offset as i128 * i128::from(t.timescale) / i128::from(anchor.timescale)) as i64
        };
        t.generation = anchor.generation;
        t.last_in = None;
    }
}

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
//! A track whose timestamps jumped differently (the shared shift would move its output further
//! than the gap) rebases on its own instead, so no track's output ever jumps.

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

impl DropReason {
    /// Every reason, for metrics that list each one (also at zero).
    pub const ALL: [DropReason; 1] = [DropReason::NonMonotonic];

    /// A short snake_case name (a metric label).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NonMonotonic => "non_monotonic",
        }
    }
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
    /// Added to input timestamps. Wider than a timestamp: input DTS is anywhere in `i64` (a
    /// garbage or wrapped clock), and `output − input` of such a frame does not fit in one.
    offset: i128,
    /// The anchor generation this track has adopted.
    generation: u64,
    /// The run's start in this track's timescale (the previous run's end, rounded up): outputs
    /// below it are dropped, as they would overlap the previous run.
    floor: i64,
    /// Whether a frame of this track passed in this run: a track that has none has no
    /// timeline of its own to continue, so it never leads a rebase.
    passed: bool,
}

/// A shared rebase: `offset` ticks of `timescale`, set by a jump or a new run.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    offset: i128,
    timescale: u32,
    generation: u64,
}

/// A point of the output timeline: `ticks` of `timescale`, exactly.
#[derive(Clone, Copy, Debug)]
struct TimelinePoint {
    ticks: i128,
    timescale: u32,
}

impl TimelinePoint {
    /// The point in timescale `ts`, rounded up (so never before it).
    fn ceil_in(self, ts: u32) -> i128 {
        let from = i128::from(self.timescale);
        (self.ticks * i128::from(ts) + from - 1) / from
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct TimestampGuard {
    max_gap_secs: f64,
    tracks: Vec<TrackState>,
    missing_in_row: u32,
    anchor: Option<Anchor>,
    /// Set by [`TimestampGuard::new_run`] until the run's first frame fixes the anchor.
    run_anchor_pending: bool,
    /// The end of the output timeline as of the last [`TimestampGuard::new_run`]: a run without
    /// frames, or with other tracks, must not make the next one start earlier.
    timeline_end: TimelinePoint,
    generation: u64,
}

impl TimestampGuard {
    /// A guard for tracks with the given `(timescale, is_video)` that treats a DTS change of more
    /// than `max_gap_secs` seconds (either direction) as a jump; the output timeline starts at
    /// `origin_secs`.
    pub fn new(tracks: &[(u32, bool)], max_gap_secs: f64, origin_secs: f64) -> Self {
        let mut guard = TimestampGuard {
            max_gap_secs,
            tracks: Vec::new(),
            missing_in_row: 0,
            anchor: None,
            run_anchor_pending: false,
            // The first run starts at the origin, in milliseconds.
            timeline_end: TimelinePoint {
                ticks: (origin_secs.max(0.0) * 1000.0).round() as i128,
                timescale: 1000,
            },
            generation: 0,
        };
        guard.new_run(tracks);
        guard
    }

    /// Starts a new run (a reconnect): the tracks may have changed, and the first frame of the
    /// run is placed right after the end of the previous run, so the output timeline continues.
    pub fn new_run(&mut self, tracks: &[(u32, bool)]) {
        // The latest end of any track, exactly (a last frame lasts at least one tick).
        let end = self
            .tracks
            .iter()
            .filter_map(|t| {
                let o = t.last_out?;
                Some(TimelinePoint {
                    ticks: i128::from(o) + i128::from(t.last_duration.max(1)),
                    timescale: t.timescale,
                })
            })
            .chain([self.timeline_end])
            .max_by(|a, b| {
                (a.ticks * i128::from(b.timescale)).cmp(&(b.ticks * i128::from(a.timescale)))
            })
            .unwrap_or(self.timeline_end);
        self.timeline_end = end;
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
                    floor: clamp_i64(end.ceil_in(timescale)),
                    passed: false,
                }
            })
            .collect();
        self.missing_in_row = 0;
        self.generation += 1;
        // The run's anchor is fixed by its first frame (see `adopt_anchor`).
        self.anchor = None;
        self.run_anchor_pending = true;
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
        let max_gap = (self.max_gap_secs * f64::from(t.timescale)) as u64;
        let in_old_domain = t
            .last_in
            .is_some_and(|last| frame.dts.abs_diff(last) <= max_gap);
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
        let out = i64::try_from(i128::from(frame.dts) + t.offset).unwrap_or(-1);
        if out < t.floor || t.last_out.is_some_and(|last| out <= last) {
            // Only possible right after a rebase, for a frame that lies before the anchor (in a
            // new run: before the run's start), or for garbage timestamps beyond the end of time.
            // The frame still marks the track's new domain: the next ones keep this offset and
            // pass once past the anchor, instead of rebasing again (as a jump of their own).
            t.last_in = Some(frame.dts);
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
        t.passed = true;
        frame.dts = out;
        frame.pts = clamp_i64(i128::from(frame.pts) + t.offset);
        Verdict::Pass {
            frame,
            discontinuity,
        }
    }

    /// Gives track `i`, whose input `dts` left its old timestamp domain (or who has none yet in
    /// this run), an offset from the current anchor, creating the anchor if needed.
    fn adopt_anchor(&mut self, i: usize, dts: i64) {
        let t = &self.tracks[i];
        let ts = t.timescale;
        let dts = i128::from(dts);
        // Where this track's own timeline continues: one frame after its last output, and not
        // before the run's start.
        let floor = i128::from(t.floor);
        let next = t.last_out.map_or(floor, |o| {
            (i128::from(o) + i128::from(t.last_duration.max(1))).max(floor)
        });
        let (offset, generation) = match self.anchor {
            // An anchor this track has not adopted yet (or has, but without a frame passing
            // since): follow it, unless that lands further than the gap from where this track
            // continues (its timestamps jumped differently from the leader's): then it rebases
            // on its own, to that point.
            Some(a) if !self.run_anchor_pending && (t.generation != a.generation || !t.passed) => {
                let offset = if a.timescale == ts {
                    a.offset
                } else {
                    // Offsets are differences of two i64s, timescales are u32s: this fits.
                    a.offset * i128::from(ts) / i128::from(a.timescale)
                };
                let max_gap = (self.max_gap_secs * f64::from(ts)) as i128;
                if (dts + offset - next).abs() > max_gap {
                    (next - dts, a.generation)
                } else {
                    (offset, a.generation)
                }
            }
            // This track is the first to jump, or the run's first frame: it sets a new anchor
            // that continues its own timeline.
            _ => {
                if !std::mem::take(&mut self.run_anchor_pending) {
                    self.generation += 1;
                }
                self.anchor = Some(Anchor {
                    offset: next - dts,
                    timescale: ts,
                    generation: self.generation,
                });
                (next - dts, self.generation)
            }
        };
        let t = &mut self.tracks[i];
        t.offset = offset;
        t.generation = generation;
        t.last_in = None;
    }
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(track: usize, dts: i64, pts: i64) -> Frame {
        Frame {
            track,
            dts,
            pts,
            duration: None,
            keyframe: true,
            data: Bytes::new(),
        }
    }

    /// A guard whose first run had one video track (90 kHz) with frames at 0 and 1 s, so the
    /// run ends at 2 s, then starts a run with `tracks`.
    fn after_a_two_second_run(tracks: &[(u32, bool)], max_gap_secs: f64) -> TimestampGuard {
        let mut guard = TimestampGuard::new(&[(90_000, true)], max_gap_secs, 0.0);
        assert_eq!(pass(guard.admit(frame(0, 0, 0))).0, 0);
        assert_eq!(pass(guard.admit(frame(0, 90_000, 90_000))).0, 90_000);
        guard.new_run(tracks);
        guard
    }

    /// (dts, pts, discontinuity) of a passed frame.
    fn pass(verdict: Verdict) -> (i64, i64, bool) {
        match verdict {
            Verdict::Pass {
                frame,
                discontinuity,
            } => (frame.dts, frame.pts, discontinuity),
            Verdict::Drop(reason) => panic!("dropped: {reason:?}"),
        }
    }

    /// Found by `fuzz/fuzz_targets/timestamp_guard.rs` (input in
    /// `fuzz/regressions/timestamp_guard/`): the distance between two timestamps at opposite
    /// ends of `i64`, and the rebase offset, overflowed.
    #[test]
    fn timestamps_anywhere_in_i64_are_rebased_without_overflow() {
        let mut guard = TimestampGuard::new(&[(90_000, true)], 10.0, 0.0);
        assert_eq!(pass(guard.admit(frame(0, 0, 0))), (0, 0, false));
        // Each jump continues one tick after the last output (the duration is unknown), and
        // the PTS moves with the DTS.
        assert_eq!(
            pass(guard.admit(frame(0, i64::MIN, i64::MIN + 3000))),
            (1, 3001, true)
        );
        assert_eq!(
            pass(guard.admit(frame(0, i64::MAX, i64::MAX))),
            (2, 2, true)
        );
        assert_eq!(
            pass(guard.admit(frame(0, -7_671_319_014_043_271_169, 0))),
            (3, 7_671_319_014_043_271_172, true)
        );
        assert_eq!(
            guard.admit(frame(0, -7_671_319_014_043_271_169, 0)),
            Verdict::Drop(DropReason::NonMonotonic)
        );
    }

    /// Found by `fuzz/fuzz_targets/clip_writer.rs` (input in `fuzz/regressions/clip_writer/`):
    /// a new run started at the previous run's last DTS instead of after it when that frame's
    /// duration was unknown, or before it when a tick is shorter than the microsecond the run's
    /// start was rounded to — whenever the track did not keep its index and timescale.
    #[test]
    fn a_new_run_starts_after_the_previous_runs_last_frame() {
        let mut guard = TimestampGuard::new(&[(90_000, true)], 10.0, 0.0);
        assert_eq!(pass(guard.admit(frame(0, 5000, 5000))).0, 0);
        // The video track moves to index 1 (a new track list): it continues one tick later.
        guard.new_run(&[(8000, false), (90_000, true)]);
        assert_eq!(pass(guard.admit(frame(1, 777, 777))).0, 1);

        // A 10 MHz clock: 2 ticks are 0.2 µs.
        let mut guard = TimestampGuard::new(&[(10_000_000, true)], 10.0, 0.0);
        assert_eq!(pass(guard.admit(frame(0, 0, 0))).0, 0);
        assert_eq!(pass(guard.admit(frame(0, 1, 1))).0, 1);
        guard.new_run(&[(8000, false), (10_000_000, true)]);
        assert_eq!(pass(guard.admit(frame(1, 0, 0))).0, 2);
        // Audio, first in its run's new timescale, starts at the end rounded up.
        guard.new_run(&[(8000, false)]);
        assert_eq!(pass(guard.admit(frame(0, 0, 0))).0, 1);
    }

    /// Found by `fuzz/fuzz_targets/pipeline.rs` (`fuzz/regressions/pipeline/`): a track whose
    /// first frames of a run lie before the frame that fixed the run's anchor landed before the
    /// run's start, overlapping the previous run; they are dropped.
    #[test]
    fn frames_before_a_new_runs_start_are_dropped() {
        let mut guard = after_a_two_second_run(&[(90_000, true), (48_000, false)], 10.0);
        // Audio comes first and starts the run at 2 s (the end of the last video frame)...
        assert_eq!(pass(guard.admit(frame(1, 48_000, 48_000))).0, 96_000);
        // ...video's first frames are half a second earlier: before the run's start.
        assert_eq!(
            guard.admit(frame(0, 45_000, 45_000)),
            Verdict::Drop(DropReason::NonMonotonic)
        );
        assert_eq!(pass(guard.admit(frame(0, 90_000, 90_000))).0, 180_000);
    }

    /// Found by `fuzz/fuzz_targets/clip_writer.rs` (`fuzz/regressions/clip_writer/`): a track
    /// whose first frame of a run was dropped that way took its next frame for a jump of its
    /// own, and its bogus anchor placed the other tracks before the run's start.
    #[test]
    fn a_track_dropped_before_the_runs_start_keeps_following_it() {
        let mut guard =
            after_a_two_second_run(&[(90_000, true), (8000, false), (1000, true)], 10.0);
        assert_eq!(pass(guard.admit(frame(0, 90_000, 90_000))).0, 180_000);
        for dts in [500, 600] {
            assert_eq!(
                guard.admit(frame(2, dts, dts)),
                Verdict::Drop(DropReason::NonMonotonic)
            );
        }
        assert_eq!(pass(guard.admit(frame(1, 8000, 8000))).0, 16_000);
        assert_eq!(pass(guard.admit(frame(2, 1500, 1500))).0, 2500);
    }

    /// Found by `fuzz/fuzz_targets/clip_writer.rs` (`fuzz/regressions/clip_writer/`): a track
    /// with no frame passed in the run yet whose timestamps jumped led a rebase from nowhere,
    /// and the next track to follow it landed before the run's start.
    #[test]
    fn a_track_without_output_in_the_run_does_not_lead_a_rebase() {
        let mut guard = after_a_two_second_run(&[(90_000, true), (8000, false), (1000, true)], 1.0);
        // Video starts the run at 2 s; audio's first frame lies before that (dropped), then
        // its timestamps jump by 5 s: it joins the run at its start.
        assert_eq!(pass(guard.admit(frame(0, 90_000, 90_000))).0, 180_000);
        assert_eq!(
            guard.admit(frame(1, 4000, 4000)),
            Verdict::Drop(DropReason::NonMonotonic)
        );
        assert_eq!(pass(guard.admit(frame(1, 44_000, 44_000))).0, 16_000);
        // Video follows the run's anchor, not one set by the audio's jump.
        assert_eq!(pass(guard.admit(frame(2, 1000, 1000))).0, 2000);
    }

    /// Found by `fuzz/fuzz_targets/clip_writer.rs` (`fuzz/regressions/clip_writer/`): a track
    /// that joined a run after a jump had replaced the run's anchor was not held to the run's
    /// start, and landed before it.
    #[test]
    fn a_track_joining_after_a_jump_still_starts_after_the_previous_run() {
        let mut guard = after_a_two_second_run(&[(1000, true), (1000, true)], 1.0);
        assert_eq!(pass(guard.admit(frame(0, 0, 0))).0, 2000);
        // Track 0 jumps by 5 s: it continues one tick later.
        assert_eq!(pass(guard.admit(frame(0, 5000, 5000))), (2001, 2001, true));
        // Track 1 joins: the jump's shift puts its first frame at 1.001 s, before the run's
        // start (2 s): dropped; it passes once past it.
        assert_eq!(
            guard.admit(frame(1, 4000, 4000)),
            Verdict::Drop(DropReason::NonMonotonic)
        );
        assert_eq!(pass(guard.admit(frame(1, 5000, 5000))).0, 2001);
    }

    /// Found by `fuzz/fuzz_targets/clip_writer.rs` and `pipeline.rs`
    /// (`fuzz/regressions/*/run_without_frames*`).
    #[test]
    fn a_run_without_frames_does_not_forget_where_the_timeline_ends() {
        let mut guard = TimestampGuard::new(&[(90_000, true)], 10.0, 0.0);
        assert_eq!(pass(guard.admit(frame(0, 0, 0))).0, 0);
        guard.new_run(&[(1000, true)]);
        guard.new_run(&[(90_000, true)]);
        assert_eq!(pass(guard.admit(frame(0, 0, 0))).0, 1);
    }
}

//! The last N segments of a stream, with sequence numbers and discontinuity ids.
//!
//! The ring outlives a stream's runs: sequence numbers keep counting across restarts, and a
//! new init segment (new codec parameters, across a restart or inside a run), a timestamp jump
//! inside a run, or a restart (unless [`SegmentRing::set_mark_restarts`] turned that off) gives
//! the next segment a new discontinuity id. Ids are dense: each increment corresponds to
//! exactly one `EXT-X-DISCONTINUITY` between two segments, so `EXT-X-DISCONTINUITY-SEQUENCE`
//! stays exact as the window slides.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use crate::mp4::part::{InitSegment, Part};
use crate::segmenter::Event;

/// One segment: whole GOPs starting on a keyframe, made of parts.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Media sequence number.
    pub sequence: u64,
    /// Discontinuity id; differs from the previous segment's after a discontinuity.
    pub discontinuity: u64,
    /// The init segment its fragments need.
    pub init: Arc<InitSegment>,
    /// Wall-clock time of its first frame.
    pub start_time: SystemTime,
    /// The parts so far.
    pub parts: Vec<Arc<Part>>,
    /// Its duration in seconds once complete; `None` while parts are still being added.
    pub duration: Option<f64>,
}

impl Segment {
    /// True once the segment's last part has been added.
    pub fn is_complete(&self) -> bool {
        self.duration.is_some()
    }

    /// Sum of the part durations so far.
    pub fn parts_duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    /// The duration if complete, else the duration of its parts so far.
    pub fn duration_so_far(&self) -> f64 {
        self.duration.unwrap_or_else(|| self.parts_duration())
    }

    /// Size in bytes of the parts so far.
    pub fn size(&self) -> usize {
        self.parts.iter().map(|p| p.fragment.size).sum()
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct SegmentRing {
    capacity: usize,
    segments: VecDeque<Segment>,
    next_sequence: u64,
    discontinuity: u64,
    discontinuity_pending: bool,
    mark_restarts: bool,
    max_part_duration: f64,
}

impl SegmentRing {
    /// A ring that keeps `capacity` complete segments plus the one in progress.
    pub fn new(capacity: usize) -> Self {
        SegmentRing {
            capacity: capacity.max(1),
            segments: VecDeque::new(),
            next_sequence: 0,
            discontinuity: 0,
            discontinuity_pending: false,
            mark_restarts: true,
            max_part_duration: 0.0,
        }
    }

    /// Whether a new run whose init segment is the previous run's starts a new discontinuity
    /// (on by default). The output timeline continues across runs, so such a restart needs no
    /// discontinuity for timestamps; RFC 8216bis recommends one for a new encoding sequence.
    /// A new init segment always starts one.
    pub fn set_mark_restarts(&mut self, on: bool) {
        self.mark_restarts = on;
    }

    /// Applies one segmenter event.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::SegmentStart {
                init,
                discontinuity,
                start_time,
            } => {
                self.close_incomplete_tail();
                let new_init = self.segments.back().is_some_and(|s| s.init.id != init.id);
                let restart = self.discontinuity_pending && self.mark_restarts;
                if (discontinuity || new_init || restart) && !self.segments.is_empty() {
                    self.discontinuity += 1;
                }
                self.discontinuity_pending = false;
                self.segments.push_back(Segment {
                    sequence: self.next_sequence,
                    discontinuity: self.discontinuity,
                    init,
                    start_time,
                    parts: Vec::new(),
                    duration: None,
                });
                self.next_sequence += 1;
                self.trim();
            }
            Event::Part(part) => {
                if let Some(seg) = self.segments.back_mut().filter(|s| !s.is_complete()) {
                    self.max_part_duration = self.max_part_duration.max(part.duration);
                    seg.parts.push(Arc::new(part));
                }
            }
            Event::SegmentEnd { duration } => {
                if let Some(seg) = self.segments.back_mut().filter(|s| !s.is_complete()) {
                    seg.duration = Some(duration);
                }
                self.trim();
            }
        }
    }

    /// A run ended: an incomplete tail segment is completed with the parts it has (or dropped
    /// if it has none), and the next segment starts a new discontinuity (if restarts are
    /// marked, or its init segment is new).
    pub fn end_run(&mut self) {
        self.close_incomplete_tail();
        self.discontinuity_pending = true;
        self.trim();
    }

    /// Keeps at most `capacity` complete segments (and the one in progress).
    fn trim(&mut self) {
        let complete = self.segments.iter().filter(|s| s.is_complete()).count();
        for _ in self.capacity..complete {
            self.segments.pop_front();
        }
    }

    fn close_incomplete_tail(&mut self) {
        if let Some(last) = self.segments.back_mut().filter(|s| !s.is_complete()) {
            if last.parts.is_empty() {
                self.segments.pop_back();
            } else {
                last.duration = Some(last.parts_duration());
            }
        }
    }

    /// The segments, oldest first; only the last may be incomplete.
    pub fn segments(&self) -> &VecDeque<Segment> {
        &self.segments
    }

    /// The segment with this sequence number, if still held.
    pub fn get(&self, sequence: u64) -> Option<&Segment> {
        let first = self.segments.front()?.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        self.segments.get(index)
    }

    /// The newest segment.
    pub fn last(&self) -> Option<&Segment> {
        self.segments.back()
    }

    /// The sequence number the next segment will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The longest part ever added, in seconds: what `PART-TARGET` must cover.
    pub fn max_part_duration(&self) -> f64 {
        self.max_part_duration
    }

    /// The newest segment that has at least one part (what a playlist's live edge shows).
    pub fn live_edge(&self) -> Option<&Segment> {
        self.segments.iter().rev().find(|s| !s.parts.is_empty())
    }

    /// How many complete segments are kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

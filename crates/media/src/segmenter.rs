//! Cuts a stream of frames into segments and parts.
//!
//! Rules (the reference's, made frame-exact):
//! - Nothing is emitted before the first video keyframe: leading non-key video and any audio
//!   before it are discarded.
//! - A segment starts on a video keyframe once the minimum segment duration has passed since
//!   the segment's start (or at the first keyframe after a discontinuity). Audio never cuts.
//! - A part is the frames whose DTS falls in it. Parts end on video frame boundaries: a part is
//!   closed when the next video frame would take it past the part target, so parts never exceed
//!   the target unless one frame alone does. Its duration is the sum of its video frames'
//!   durations, each the distance to the next frame, which is why a part closes only when the
//!   first frame of the next part arrives.
//! - Each part is one `moof`+`mdat` with a `traf` per track that has samples in it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::frame::Frame;
use crate::mp4::fragment::{Sample, TrackRun, write_fragment};
use crate::mp4::{Orientation, write_init};
use crate::track::{Track, TrackKind};

pub use crate::mp4::part::{InitSegment, Part, RunInfo, SampleInfo};

/// Segmenter settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmenterConfig {
    /// A segment is cut at the first video keyframe at least this long after its start.
    pub min_segment_secs: f64,
    /// Parts are closed before they would exceed this duration.
    pub part_target_secs: f64,
}

/// What the segmenter produced.
#[derive(Debug)]
pub enum Event {
    /// A new segment begins; parts that follow belong to it.
    SegmentStart {
        /// Its init segment.
        init: Arc<InitSegment>,
        /// The segment follows a timestamp jump or a parameter change.
        discontinuity: bool,
        /// Wall-clock time of its first frame (for `EXT-X-PROGRAM-DATE-TIME`).
        start_time: SystemTime,
    },
    /// A part of the current segment is complete.
    Part(Part),
    /// The current segment is complete.
    SegmentEnd {
        /// Its duration in seconds.
        duration: f64,
    },
}

/// Errors that make a stream unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SegmenterError {
    /// HLS needs a video track to cut segments on.
    #[error("stream has no video track (audio-only streams are not supported)")]
    NoVideo,
}

#[derive(Debug)]
struct Pending {
    frame: Frame,
    duration: Option<u32>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Segmenter {
    cfg: SegmenterConfig,
    /// Input track index → output track index (into `init.tracks`).
    map: Vec<Option<usize>>,
    init: Option<Arc<InitSegment>>,
    next_init_id: u64,
    fragment_sequence: u32,
    /// Wall clock and video DTS of the run's first frame.
    anchor: Option<(SystemTime, i64)>,
    in_segment: bool,
    segment_start: i64,
    part_start: i64,
    /// Per output track, frames not yet written.
    pending: Vec<Vec<Pending>>,
    cut_pending: bool,
    discontinuity_pending: bool,
    last_video_duration: u32,
}

impl Segmenter {
    /// A segmenter with no run started yet.
    pub fn new(cfg: SegmenterConfig) -> Self {
        Segmenter {
            cfg,
            map: Vec::new(),
            init: None,
            next_init_id: 0,
            fragment_sequence: 0,
            anchor: None,
            in_segment: false,
            segment_start: 0,
            part_start: 0,
            pending: Vec::new(),
            cut_pending: false,
            discontinuity_pending: false,
            last_video_duration: 0,
        }
    }

    /// The current init segment, once a run has started.
    pub fn init(&self) -> Option<&Arc<InitSegment>> {
        self.init.as_ref()
    }

    /// Starts a run with the source's tracks. The first video track is segmented, with the first
    /// audio track if any; other tracks are ignored. A previous run must have been ended with
    /// [`Segmenter::finish`].
    pub fn start_run(&mut self, tracks: &[Track]) -> Result<(), SegmenterError> {
        self.set_tracks(tracks)?;
        self.anchor = None;
        self.in_segment = false;
        self.cut_pending = false;
        self.discontinuity_pending = false;
        self.last_video_duration = 0;
        Ok(())
    }

    /// The source's parameters changed mid-run (new SPS/PPS, resolution): the current segment
    /// ends here, and the next one starts at the next keyframe with a new init segment and a
    /// discontinuity. Frames queued so far are written with the old parameters.
    pub fn update_tracks(
        &mut self,
        tracks: &[Track],
        out: &mut Vec<Event>,
    ) -> Result<(), SegmenterError> {
        let unchanged = self.init.as_ref().is_some_and(|init| {
            let selected = select(tracks);
            selected.len() == init.tracks.len()
                && selected
                    .iter()
                    .zip(&init.tracks)
                    .all(|(&i, t)| &tracks[i] == t)
        });
        if unchanged {
            return Ok(());
        }
        let was_in_segment = self.in_segment;
        self.finish(out);
        self.set_tracks(tracks)?;
        self.discontinuity_pending = was_in_segment;
        Ok(())
    }

    fn set_tracks(&mut self, tracks: &[Track]) -> Result<(), SegmenterError> {
        let selected = select(tracks);
        if selected
            .first()
            .is_none_or(|&i| tracks[i].kind() != TrackKind::Video)
        {
            return Err(SegmenterError::NoVideo);
        }
        self.map = vec![None; tracks.len()];
        for (out, &i) in selected.iter().enumerate() {
            self.map[i] = Some(out);
        }
        let out_tracks: Vec<Track> = selected.iter().map(|&i| tracks[i].clone()).collect();
        let same = self
            .init
            .as_ref()
            .is_some_and(|init| init.tracks == out_tracks);
        if !same {
            let bytes = Bytes::from(write_init(&out_tracks, Orientation::NORMAL));
            self.init = Some(Arc::new(InitSegment {
                id: self.next_init_id,
                tracks: out_tracks,
                bytes,
            }));
            self.next_init_id += 1;
        }
        // Callers flush the queues (`finish`) before the mapping changes.
        self.pending = (0..selected.len()).map(|_| Vec::new()).collect();
        Ok(())
    }

    /// Pushes one frame (already through the timestamp guard). `discontinuity` marks the first
    /// video frame after a timestamp jump. `now` is the wall clock, used only for the run's first
    /// frame. Completed segments and parts are appended to `out`.
    pub fn push(
        &mut self,
        frame: Frame,
        discontinuity: bool,
        now: SystemTime,
        out: &mut Vec<Event>,
    ) {
        let Some(Some(track)) = self.map.get(frame.track).copied() else {
            return;
        };
        if track != 0 {
            self.push_audio(track, frame);
            return;
        }
        if !self.in_segment {
            if frame.keyframe {
                self.anchor.get_or_insert((now, frame.dts));
                self.start_segment(frame.dts, out);
                for audio in self.pending.iter_mut().skip(1) {
                    audio.clear();
                }
                self.pending[0].push(Pending {
                    duration: None,
                    frame,
                });
            }
            return;
        }
        if discontinuity {
            self.cut_pending = true;
            self.discontinuity_pending = true;
        }
        let dts = frame.dts;
        if let Some(last) = self.pending[0].last_mut() {
            let d = u32::try_from(dts - last.frame.dts).unwrap_or(u32::MAX);
            last.duration = Some(d);
            self.last_video_duration = d;
        }
        let min_segment = self.ticks(self.cfg.min_segment_secs);
        if frame.keyframe && (self.cut_pending || dts - self.segment_start >= min_segment) {
            self.close_part(dts, out);
            out.push(Event::SegmentEnd {
                duration: self.secs(dts - self.segment_start),
            });
            self.start_segment(dts, out);
        } else {
            let target = self.ticks(self.cfg.part_target_secs);
            let next_duration = i64::from(self.last_video_duration);
            let projected = (dts - self.part_start).saturating_add(next_duration);
            if projected > target && !self.pending[0].is_empty() {
                self.close_part(dts, out);
            }
        }
        self.pending[0].push(Pending {
            duration: None,
            frame,
        });
    }

    fn push_audio(&mut self, track: usize, frame: Frame) {
        if !self.in_segment {
            return;
        }
        let queue = &mut self.pending[track];
        if let Some(last) = queue.last_mut() {
            last.duration = Some(u32::try_from(frame.dts - last.frame.dts).unwrap_or(u32::MAX));
        }
        queue.push(Pending {
            duration: None,
            frame,
        });
    }

    /// Ends the run: the frames still queued become the last part, and the segment is closed.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.in_segment {
            return;
        }
        let end = match self.pending[0].last() {
            Some(last) => {
                let d = last
                    .frame
                    .duration
                    .filter(|&d| d > 0)
                    .unwrap_or(self.last_video_duration.max(1));
                last.frame.dts.saturating_add(i64::from(d))
            }
            None => self.part_start,
        };
        if let Some(last) = self.pending[0].last_mut() {
            last.duration = Some(u32::try_from(end - last.frame.dts).unwrap_or(1));
        }
        self.close_part(end, out);
        if end > self.segment_start {
            out.push(Event::SegmentEnd {
                duration: self.secs(end - self.segment_start),
            });
        }
        for queue in &mut self.pending {
            queue.clear();
        }
        self.in_segment = false;
    }

    fn start_segment(&mut self, dts: i64, out: &mut Vec<Event>) {
        let Some(init) = self.init.clone() else {
            return;
        };
        let (wall, anchor_dts) = self.anchor.unwrap_or((SystemTime::UNIX_EPOCH, dts));
        let offset = Duration::from_secs_f64(self.secs(dts - anchor_dts).max(0.0));
        out.push(Event::SegmentStart {
            init,
            discontinuity: self.discontinuity_pending,
            start_time: wall + offset,
        });
        self.in_segment = true;
        self.segment_start = dts;
        self.part_start = dts;
        self.cut_pending = false;
        self.discontinuity_pending = false;
    }

    /// Writes the queued video frames (all before `end`) and the audio frames whose time is
    /// before `end` as one part.
    fn close_part(&mut self, end: i64, out: &mut Vec<Event>) {
        let video = std::mem::take(&mut self.pending[0]);
        if video.is_empty() {
            return;
        }
        let Some(init) = self.init.clone() else {
            return;
        };
        let end_secs = self.secs(end);
        let mut runs = Vec::with_capacity(self.pending.len());
        let independent = video[0].frame.keyframe;
        runs.push(make_run(1, true, video, self.last_video_duration));
        for (i, queue) in self.pending.iter_mut().enumerate().skip(1) {
            let track = &init.tracks[i];
            let ts = f64::from(track.timescale());
            let n = queue
                .iter()
                .take_while(|p| (p.frame.dts as f64) / ts < end_secs)
                .count();
            let taken: Vec<Pending> = queue.drain(..n).collect();
            runs.push(make_run(i as u32 + 1, false, taken, track.frame_samples()));
        }
        let fragment = write_fragment(self.fragment_sequence, &runs);
        let runs = runs
            .iter()
            .filter(|r| !r.samples.is_empty())
            .map(|r| RunInfo {
                track: r.track_id as usize - 1,
                base_decode_time: r.base_decode_time,
                samples: r
                    .samples
                    .iter()
                    .map(|s| SampleInfo {
                        duration: s.duration,
                        size: s.data.len() as u32,
                        cto: s.cto,
                        keyframe: s.keyframe,
                    })
                    .collect(),
            })
            .collect();
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        let duration = self.secs(end - self.part_start);
        self.part_start = end;
        out.push(Event::Part(Part {
            fragment,
            runs,
            duration,
            independent,
        }));
    }

    fn video_timescale(&self) -> f64 {
        self.init
            .as_ref()
            .map_or(90000.0, |init| f64::from(init.tracks[0].timescale()))
    }

    fn ticks(&self, secs: f64) -> i64 {
        (secs * self.video_timescale()).round() as i64
    }

    fn secs(&self, ticks: i64) -> f64 {
        ticks as f64 / self.video_timescale()
    }
}

/// The input track indices to segment: the first video track, then the first audio track.
fn select(tracks: &[Track]) -> Vec<usize> {
    let video = tracks.iter().position(|t| t.kind() == TrackKind::Video);
    let audio = tracks.iter().position(|t| t.kind() == TrackKind::Audio);
    match video {
        Some(v) => std::iter::once(v).chain(audio).collect(),
        None => audio.into_iter().collect(),
    }
}

fn make_run(track_id: u32, video: bool, frames: Vec<Pending>, fallback: u32) -> TrackRun {
    let base_decode_time = frames.first().map_or(0, |p| p.frame.dts.max(0) as u64);
    let samples = frames
        .into_iter()
        .map(|p| Sample {
            duration: p.duration.or(p.frame.duration).unwrap_or(fallback).max(1),
            cto: i32::try_from(p.frame.pts - p.frame.dts).unwrap_or(0),
            keyframe: p.frame.keyframe,
            data: p.frame.data,
        })
        .collect();
    TrackRun {
        track_id,
        video,
        base_decode_time,
        samples,
    }
}

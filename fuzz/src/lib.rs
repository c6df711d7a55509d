//! Input models and invariant checks shared by Sluice's fuzz targets.
//!
//! The targets in `fuzz_targets/` build their inputs with [`arbitrary`]: tracks from a few
//! valid decoder configurations with arbitrary timescales and sizes, frames with arbitrary
//! timestamp steps (small steps, steps back, repeats and jumps anywhere in `i64`), and the
//! worker's sequence of run starts, parameter changes, missing timestamps and run ends. The
//! checks here state what must hold for any input, beyond "no panic": every fragment parses
//! back and its offsets point at the payloads, DTS never goes backwards within a track, parts
//! and segments have sane durations, the ring's numbering is dense.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use bytes::Bytes;
use mp4_atom::{Decode, Moof};
use sluice_media::codec::{aac, avc};
use sluice_media::mp4::fragment::{Fragment, Sample, TrackRun};
use sluice_media::pipeline::{Pipeline, PipelineConfig};
use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::{Event, InitSegment, Part, SegmenterConfig};
use sluice_media::{Frame, Track, TrackKind};

/// A track timescale: the common ones, or any value.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Timescale {
    /// RTP video.
    Video90k,
    /// MP4 files often use this.
    Millis,
    /// Anything, including 0 (rejected) and `u32::MAX`.
    Any(u32),
}

impl Timescale {
    fn ticks(self) -> u32 {
        match self {
            Timescale::Video90k => 90_000,
            Timescale::Millis => 1000,
            Timescale::Any(t) => t,
        }
    }
}

/// A track built from a valid decoder configuration with arbitrary parameters.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum TrackSpec {
    /// H.264 High profile; `level` varies the record so parameter changes can be modelled.
    H264 {
        /// `level_idc`.
        level: u8,
        /// Timescale.
        timescale: Timescale,
        /// Picture width.
        width: u16,
        /// Picture height.
        height: u16,
    },
    /// H.265 Main profile.
    H265 {
        /// `general_level_idc`.
        level: u8,
        /// Timescale.
        timescale: Timescale,
        /// Picture width.
        width: u16,
        /// Picture height.
        height: u16,
    },
    /// AAC-LC; the timescale is the sampling rate.
    Aac {
        /// Index into the sampling rate table (taken modulo its length).
        rate_index: u8,
        /// Channel configuration.
        channels: u8,
    },
}

/// AAC sampling rates, as indexed by the AudioSpecificConfig.
const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// A valid hvcC body: Main profile, `level`, no parameter set arrays.
pub fn hvcc(level: u8) -> Vec<u8> {
    let mut hvcc = vec![0u8; 23];
    hvcc[0] = 1;
    hvcc[1] = 0x01;
    hvcc[2] = 0x60;
    hvcc[6] = 0xb0;
    hvcc[12] = level;
    hvcc[13] = 0xf0; // reserved bits, min_spatial_segmentation_idc 0
    hvcc[15] = 0xfc; // reserved bits, parallelismType 0
    hvcc[16] = 0xfd; // chroma_format_idc 1
    hvcc[17] = 0xf8; // bit depth luma 8
    hvcc[18] = 0xf8; // bit depth chroma 8
    hvcc[21] = 0x0f; // lengthSizeMinusOne 3
    hvcc
}

impl TrackSpec {
    /// The track, or `None` when its parameters are rejected (a zero timescale or size).
    pub fn build(&self) -> Option<Track> {
        match *self {
            TrackSpec::H264 {
                level,
                timescale,
                width,
                height,
            } => {
                let sps = [0x67, 0x64, 0x00, level, 0xac, 0xd9];
                let pps = [0x68, 0xeb, 0xe3, 0xcb];
                let avcc = avc::avcc_from_parameter_sets(&sps, &pps).ok()?;
                Track::h264(Bytes::from(avcc), timescale.ticks(), width, height).ok()
            }
            TrackSpec::H265 {
                level,
                timescale,
                width,
                height,
            } => Track::h265(Bytes::from(hvcc(level)), timescale.ticks(), width, height).ok(),
            TrackSpec::Aac {
                rate_index,
                channels,
            } => {
                let rate = AAC_RATES[usize::from(rate_index) % AAC_RATES.len()];
                let asc = aac::lc_config(rate, channels % 8)?;
                Track::aac(Bytes::copy_from_slice(&asc)).ok()
            }
        }
    }
}

/// How a frame's DTS follows the previous frame of its track.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Step {
    /// A normal step forward.
    Forward(u16),
    /// A step back (out of order, or a clock reset).
    Back(u16),
    /// The same DTS again.
    Same,
    /// Anywhere (a camera reboot, an RTP clock jump, garbage).
    Jump(i64),
}

/// One frame of an arbitrary stream.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct FrameSpec {
    /// Track index (taken modulo the run's track count).
    pub track: u8,
    /// DTS relative to the track's previous frame.
    pub step: Step,
    /// PTS − DTS.
    pub cto: i16,
    /// The duration a file source knows.
    pub duration: Option<u32>,
    /// Random access point.
    pub keyframe: bool,
    /// Payload size.
    pub size: u8,
}

/// One thing that happens to a stream's worker.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// A (re)connect with these tracks; ends the running run first.
    Start(Vec<TrackSpec>),
    /// A frame of the running run.
    Frame(FrameSpec),
    /// A frame without a timestamp.
    MissingDts,
    /// New parameters for track `index` mid-run (RTSP in-band SPS/PPS): same codec kind and
    /// timescale, other level or picture size.
    Update {
        /// Track index (modulo the track count).
        index: u8,
        /// The new level.
        level: u8,
        /// The new width.
        width: u16,
        /// The new height.
        height: u16,
    },
    /// The source ended or failed.
    End,
}

/// The pipeline's settings, within the config's ranges.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Settings {
    /// 0.5..=10 s, in 1/10 s steps.
    pub segment: u8,
    /// 0.1..=2 s, in 1/100 s steps.
    pub part: u8,
    /// 1..=3600 s.
    pub max_gap: u16,
    /// 2..=100 segments.
    pub segments: u8,
}

impl Settings {
    /// The pipeline configuration.
    pub fn pipeline(&self) -> PipelineConfig {
        let segment = 0.5 + f64::from(self.segment % 96) / 10.0;
        let part = (0.1 + f64::from(self.part % 191) / 100.0).min(segment);
        PipelineConfig {
            segmenter: SegmenterConfig {
                min_segment_secs: segment - 0.1,
                part_target_secs: part,
            },
            max_gap_secs: f64::from(self.max_gap % 3600 + 1),
            timeline_origin_secs: sluice_media::pipeline::TIMELINE_ORIGIN_SECS,
        }
    }

    /// The ring capacity.
    pub fn capacity(&self) -> usize {
        usize::from(self.segments % 99) + 2
    }
}

/// A payload that names its frame: the frame number, big-endian, repeated to `size` bytes.
pub fn payload(id: u32, size: usize) -> Bytes {
    Bytes::from(
        id.to_be_bytes()
            .iter()
            .copied()
            .cycle()
            .take(size)
            .collect::<Vec<_>>(),
    )
}

/// Drives a [`Pipeline`] like the stream worker does (`crates/sluice/src/hub/worker.rs`):
/// `start_run` on connect, `push` per frame, `missing_dts`, `update_tracks`, and `finish` plus
/// the ring's `end_run` when a run ends for any reason. Events go to a [`Checker`] and a
/// [`SegmentRing`]; `on_event` sees each event first.
pub struct Driver {
    pipeline: Pipeline,
    /// The ring the events are applied to.
    pub ring: SegmentRing,
    /// Invariant checks over the events and the ring.
    pub checker: Checker,
    tracks: Vec<Track>,
    specs: Vec<TrackSpec>,
    running: bool,
    last_dts: Vec<i64>,
    frames: u32,
    clock: SystemTime,
}

impl Driver {
    /// A driver for a pipeline with these settings.
    pub fn new(settings: &Settings) -> Self {
        let cfg = settings.pipeline();
        Driver {
            pipeline: Pipeline::new(cfg),
            ring: SegmentRing::new(settings.capacity()),
            checker: Checker::new(cfg),
            tracks: Vec::new(),
            specs: Vec::new(),
            running: false,
            last_dts: Vec::new(),
            frames: 0,
            clock: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    /// Applies one operation.
    pub fn apply(&mut self, op: &Op, on_event: &mut impl FnMut(&Event)) {
        trace(|| format!("{op:?}"));
        self.clock += Duration::from_millis(10);
        let mut events = Vec::new();
        match op {
            Op::Start(specs) => {
                let built: Vec<(TrackSpec, Track)> = specs
                    .iter()
                    .take(4)
                    .filter_map(|s| Some((*s, s.build()?)))
                    .collect();
                self.specs = built.iter().map(|(s, _)| *s).collect();
                self.start(built.into_iter().map(|(_, t)| t).collect(), on_event);
            }
            Op::Frame(spec) if self.running && !self.tracks.is_empty() => {
                let track = usize::from(spec.track) % self.tracks.len();
                let last = self.last_dts[track];
                let dts = match spec.step {
                    Step::Forward(d) => last.saturating_add(i64::from(d)),
                    Step::Back(d) => last.saturating_sub(i64::from(d)),
                    Step::Same => last,
                    Step::Jump(t) => t,
                };
                self.last_dts[track] = dts;
                self.frames += 1;
                let frame = Frame {
                    track,
                    dts,
                    pts: dts.saturating_add(i64::from(spec.cto)),
                    duration: spec.duration,
                    keyframe: spec.keyframe || self.tracks[track].kind() == TrackKind::Audio,
                    data: payload(self.frames, usize::from(spec.size)),
                };
                self.push(frame, on_event);
                return;
            }
            // Too many frames without a timestamp fail the run.
            Op::MissingDts if self.running && self.pipeline.missing_dts().is_err() => {
                self.end(on_event);
            }
            Op::Update {
                index,
                level,
                width,
                height,
            } if self.running && !self.tracks.is_empty() => {
                let i = usize::from(*index) % self.tracks.len();
                let Some(&old) = self.specs.get(i) else {
                    return;
                };
                let spec = match old {
                    TrackSpec::H264 { timescale, .. } => TrackSpec::H264 {
                        level: *level,
                        timescale,
                        width: *width,
                        height: *height,
                    },
                    TrackSpec::H265 { timescale, .. } => TrackSpec::H265 {
                        level: *level,
                        timescale,
                        width: *width,
                        height: *height,
                    },
                    TrackSpec::Aac { rate_index, .. } => TrackSpec::Aac {
                        rate_index,
                        channels: *level,
                    },
                };
                let Some(track) = spec.build() else {
                    return;
                };
                if track.timescale() != self.tracks[i].timescale() {
                    // Another AAC sampling rate index with the same rate is not a change
                    // RTSP can make; skip it.
                    return;
                }
                self.specs[i] = spec;
                self.tracks[i] = track;
                let result = self.pipeline.update_tracks(&self.tracks, &mut events);
                self.deliver(std::mem::take(&mut events), on_event);
                // A change finishes the segment: its last frame's duration is an estimate.
                self.checker.end_run();
                if result.is_err() {
                    self.end(on_event);
                }
            }
            Op::End => self.end(on_event),
            _ => {}
        }
        self.deliver(events, on_event);
    }

    /// Starts a run with `tracks` (ending the running one first), as the worker does when a
    /// source opens.
    pub fn start(&mut self, tracks: Vec<Track>, on_event: &mut impl FnMut(&Event)) {
        self.end(on_event);
        self.last_dts = vec![0; tracks.len()];
        self.tracks = tracks;
        self.running = self.pipeline.start_run(&self.tracks).is_ok();
        self.checker.start_run();
        if !self.running {
            // The worker finishes and ends the run after a failed start, too.
            self.end(on_event);
        }
    }

    /// Pushes a frame into the running run.
    pub fn push(&mut self, frame: Frame, on_event: &mut impl FnMut(&Event)) {
        if !self.running {
            return;
        }
        let mut events = Vec::new();
        trace(|| format!("  push track {} dts {}", frame.track, frame.dts));
        self.pipeline.push(frame, self.clock, &mut events);
        self.deliver(events, on_event);
    }

    /// Ends the running run, as the worker does when a source ends or fails.
    pub fn end(&mut self, on_event: &mut impl FnMut(&Event)) {
        let mut events = Vec::new();
        self.pipeline.finish(&mut events);
        self.deliver(events, on_event);
        self.ring.end_run();
        self.checker.end_run();
        self.checker.ring(&self.ring);
        self.running = false;
    }

    fn deliver(&mut self, events: Vec<Event>, on_event: &mut impl FnMut(&Event)) {
        for event in events {
            if let Event::Part(part) = &event {
                for run in &part.runs {
                    trace(|| format!("  part: track {} at {}", run.track, run.base_decode_time));
                }
            }
            on_event(&event);
            self.checker.event(&event);
            self.ring.apply(event);
            self.checker.ring(&self.ring);
        }
    }
}

/// Prints what the driver does when `SLUICE_FUZZ_TRACE` is set (to read a crash input's story:
/// `SLUICE_FUZZ_TRACE=1 fuzz/target/<triple>/release/<target> <input>`).
fn trace(line: impl FnOnce() -> String) {
    if std::env::var_os("SLUICE_FUZZ_TRACE").is_some() {
        eprintln!("{}", line());
    }
}

/// What the checker remembers of one output track.
#[derive(Clone, Copy, Debug)]
struct TrackTimeline {
    timescale: u32,
    /// DTS of the last sample seen.
    last_dts: u64,
    /// End (DTS + duration) of the last sample seen.
    end: u64,
    /// Whether that sample's duration was clamped (a gap wider than `u32::MAX` ticks).
    clamped: bool,
    /// Whether it was the last part of a run (its last duration is an estimate).
    run_ended: bool,
}

/// Invariants over the segmenter's events and the ring's state.
pub struct Checker {
    cfg: PipelineConfig,
    /// Per output track (0 = video, 1 = audio).
    timelines: HashMap<usize, TrackTimeline>,
    fragment_sequence: Option<u32>,
    init: Option<Arc<InitSegment>>,
    in_segment: bool,
    segment_parts: f64,
    segment_first_part: bool,
    last_start_time: Option<SystemTime>,
    last_ring_sequence: Option<u64>,
}

impl Checker {
    fn new(cfg: PipelineConfig) -> Self {
        Checker {
            cfg,
            timelines: HashMap::new(),
            fragment_sequence: None,
            init: None,
            in_segment: false,
            segment_parts: 0.0,
            segment_first_part: false,
            last_start_time: None,
            last_ring_sequence: None,
        }
    }

    fn start_run(&mut self) {
        // Program date times restart from the new run's wall clock.
        self.last_start_time = None;
    }

    fn end_run(&mut self) {
        for t in self.timelines.values_mut() {
            t.run_ended = true;
        }
    }

    /// Checks one event.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::SegmentStart {
                init, start_time, ..
            } => {
                assert!(!self.in_segment, "a segment starts inside another");
                if let Some(last) = self.last_start_time {
                    assert!(*start_time >= last, "program date time goes backwards");
                }
                self.last_start_time = Some(*start_time);
                assert_eq!(
                    init.bytes.len(),
                    init_len(init),
                    "init segment does not parse"
                );
                self.init = Some(init.clone());
                self.in_segment = true;
                self.segment_parts = 0.0;
                self.segment_first_part = true;
            }
            Event::Part(part) => {
                assert!(self.in_segment, "a part outside a segment");
                let init = self.init.clone().expect("a part before any init");
                self.part(&init, part);
            }
            Event::SegmentEnd { duration } => {
                assert!(self.in_segment, "a segment ends that did not start");
                assert!(
                    duration.is_finite() && *duration > 0.0,
                    "segment duration {duration}"
                );
                assert!(
                    (duration - self.segment_parts).abs() <= 1e-6 * duration.max(1.0),
                    "segment duration {duration} is not the sum of its parts {}",
                    self.segment_parts
                );
                self.in_segment = false;
            }
        }
    }

    fn part(&mut self, init: &InitSegment, part: &Part) {
        assert!(
            part.duration.is_finite() && part.duration > 0.0,
            "part duration {}",
            part.duration
        );
        if self.segment_first_part {
            assert!(
                part.independent,
                "a segment's first part is not independent"
            );
            self.segment_first_part = false;
        }
        self.segment_parts += part.duration;
        if let Some(last) = self.fragment_sequence {
            assert_eq!(
                fragment_sequence(part),
                last.wrapping_add(1),
                "mfhd sequence numbers are not consecutive"
            );
        }
        self.fragment_sequence = Some(fragment_sequence(part));
        check_fragment(
            &part.fragment,
            fragment_sequence(part),
            &part_runs(init, part),
        );

        let video_ts = init.tracks[0].timescale();
        let target = (self.cfg.segmenter.part_target_secs * f64::from(video_ts)).round() as u64;
        for run in &part.runs {
            let track = &init.tracks[run.track];
            let ts = track.timescale();
            let mut dts = run.base_decode_time;
            if let Some(prev) = self.timelines.get(&run.track) {
                if prev.timescale == ts {
                    assert!(
                        dts > prev.last_dts,
                        "track {}: DTS goes backwards ({} after {})",
                        run.track,
                        dts,
                        prev.last_dts
                    );
                    if track.kind() == TrackKind::Video && !prev.run_ended && !prev.clamped {
                        assert_eq!(
                            dts, prev.end,
                            "video parts of a run are not contiguous (the last frame's \
                             duration is the distance to the next)"
                        );
                    }
                } else {
                    // A new run changed the timescale: compare in seconds, within a tick.
                    let before = prev.last_dts as f64 / f64::from(prev.timescale);
                    let now = dts as f64 / f64::from(ts);
                    assert!(
                        now + 1.0 / f64::from(ts) >= before,
                        "track {}: DTS goes backwards across a timescale change: {} at {} Hz \
                         after {} at {} Hz",
                        run.track,
                        dts,
                        ts,
                        prev.last_dts,
                        prev.timescale
                    );
                }
            }
            let mut clamped = false;
            let mut last_dts = dts;
            for (i, s) in run.samples.iter().enumerate() {
                assert!(s.duration > 0, "a zero sample duration");
                if track.kind() == TrackKind::Video && i > 0 {
                    // Parts close before the next frame would take them past the target, so
                    // every frame but the first starts within the target.
                    assert!(
                        dts - run.base_decode_time < target.max(1),
                        "video frame {i} starts {} ticks into the part (target {target})",
                        dts - run.base_decode_time
                    );
                }
                last_dts = dts;
                clamped = s.duration == u32::MAX;
                dts += u64::from(s.duration);
            }
            self.timelines.insert(
                run.track,
                TrackTimeline {
                    timescale: ts,
                    last_dts,
                    end: dts,
                    clamped,
                    run_ended: false,
                },
            );
        }
    }

    /// Checks the ring after an event.
    pub fn ring(&mut self, ring: &SegmentRing) {
        let segments = ring.segments();
        let complete = segments.iter().filter(|s| s.is_complete()).count();
        assert!(
            complete <= ring.capacity(),
            "the ring keeps too many segments"
        );
        for (i, s) in segments.iter().enumerate() {
            if i + 1 < segments.len() {
                assert!(
                    s.is_complete(),
                    "an incomplete segment that is not the last"
                );
            }
            if let Some(next) = segments.get(i + 1) {
                assert_eq!(
                    next.sequence,
                    s.sequence + 1,
                    "sequence numbers are not dense"
                );
                assert!(
                    next.discontinuity == s.discontinuity
                        || next.discontinuity == s.discontinuity + 1,
                    "discontinuity ids are not dense"
                );
            }
            if let Some(d) = s.duration {
                assert!(d.is_finite() && d >= 0.0, "segment duration {d}");
                assert!(
                    (d - s.parts_duration()).abs() <= 1e-6 * d.max(1.0),
                    "segment {} lasts {d} s but its parts {} s",
                    s.sequence,
                    s.parts_duration()
                );
            }
            if let Some(first) = s.parts.first() {
                assert!(first.independent, "segment {} starts mid-GOP", s.sequence);
            }
        }
        if let Some(last) = segments.back() {
            assert_eq!(ring.next_sequence(), last.sequence + 1);
            if let Some(prev) = self.last_ring_sequence {
                assert!(last.sequence >= prev, "the ring's newest segment went back");
            }
            self.last_ring_sequence = Some(last.sequence);
        }
    }
}

/// The size of the init segment's top-level boxes, which must be all of it.
fn init_len(init: &InitSegment) -> usize {
    let mut buf = &init.bytes[..];
    let ftyp = mp4_atom::Ftyp::decode(&mut buf).expect("init: ftyp");
    assert_eq!(ftyp.major_brand, mp4_atom::FourCC::new(b"iso5"));
    let moov = mp4_atom::Moov::decode(&mut buf).expect("init: moov");
    assert_eq!(
        moov.trak.len(),
        init.tracks.len(),
        "init: one trak per track"
    );
    init.bytes.len() - buf.len()
}

/// The runs a part was written from, rebuilt from its metadata and its chunks.
pub fn part_runs(init: &InitSegment, part: &Part) -> Vec<TrackRun> {
    let mut chunks = part.fragment.chunks.iter().skip(1);
    part.runs
        .iter()
        .map(|run| TrackRun {
            track_id: run.track as u32 + 1,
            video: init.tracks[run.track].kind() == TrackKind::Video,
            base_decode_time: run.base_decode_time,
            samples: run
                .samples
                .iter()
                .map(|s| Sample {
                    duration: s.duration,
                    cto: s.cto,
                    keyframe: s.keyframe,
                    data: chunks.next().expect("a chunk per sample").clone(),
                })
                .collect(),
        })
        .collect()
}

/// A written fragment parses as `moof`+`mdat` with sequence number `sequence`, has a `traf`
/// per non-empty run with its track ID, decode time, durations, sizes, sync flags and
/// composition offsets, and its data offsets point at exactly the runs' payloads.
pub fn check_fragment(fragment: &Fragment, sequence: u32, runs: &[TrackRun]) {
    let runs: Vec<&TrackRun> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let bytes = fragment.to_vec();
    assert_eq!(bytes.len(), fragment.size, "fragment size");
    let mut buf = &bytes[..];
    let moof = Moof::decode(&mut buf).expect("moof parses");
    assert_eq!(moof.mfhd.sequence_number, sequence);
    let mdat_at = bytes.len() - buf.len();
    let mdat_size = u32::from_be_bytes(bytes[mdat_at..mdat_at + 4].try_into().unwrap());
    assert_eq!(&bytes[mdat_at + 4..mdat_at + 8], b"mdat");
    assert_eq!(mdat_size as usize, bytes.len() - mdat_at, "mdat size");
    assert_eq!(moof.traf.len(), runs.len(), "one traf per run");
    let samples: usize = runs.iter().map(|r| r.samples.len()).sum();
    assert_eq!(fragment.chunks.len(), 1 + samples, "a chunk per sample");
    for (traf, run) in moof.traf.iter().zip(&runs) {
        assert_eq!(traf.tfhd.track_id, run.track_id);
        assert!(traf.tfhd.default_base_is_moof);
        let tfdt = traf.tfdt.as_ref().expect("tfdt");
        assert_eq!(tfdt.base_media_decode_time, run.base_decode_time);
        assert_eq!(traf.trun.len(), 1);
        let trun = &traf.trun[0];
        let mut offset = usize::try_from(trun.data_offset.expect("data offset")).unwrap();
        let entries: Vec<_> = trun.samples.iter().collect();
        assert_eq!(entries.len(), run.samples.len());
        for (entry, sample) in entries.iter().zip(&run.samples) {
            assert_eq!(entry.duration, Some(sample.duration));
            assert_eq!(entry.size, Some(sample.data.len() as u32));
            assert_eq!(
                &bytes[offset..offset + sample.data.len()],
                &sample.data[..],
                "data offset"
            );
            offset += sample.data.len();
            if run.video {
                let sync = entry.flags.expect("video samples have flags") & 0x0001_0000 == 0;
                assert_eq!(sync, sample.keyframe, "sync flag");
                assert_eq!(
                    entry.cts.unwrap_or(0),
                    i64::from(sample.cto),
                    "composition offset"
                );
            } else {
                assert_eq!(entry.flags, None);
                assert_eq!(entry.cts, None, "audio has no composition offsets");
            }
        }
    }
}

/// The `mfhd` sequence number of a part.
fn fragment_sequence(part: &Part) -> u32 {
    let header = &part.fragment.chunks[0];
    // moof header (8) + mfhd header (8) + version/flags (4).
    u32::from_be_bytes(header[20..24].try_into().unwrap())
}

/// Writes the init segment of `track` alone and checks that it holds `config` verbatim as the
/// body of a `fourcc` box (`avcC`, `hvcC`).
pub fn assert_config_in_init(track: Track, fourcc: &[u8; 4], config: &[u8]) {
    let init = sluice_media::mp4::write_init(&[track], sluice_media::mp4::Orientation::NORMAL);
    let mut expected = Vec::with_capacity(config.len() + 8);
    expected.extend_from_slice(&(config.len() as u32 + 8).to_be_bytes());
    expected.extend_from_slice(fourcc);
    expected.extend_from_slice(config);
    assert!(
        init.windows(expected.len()).any(|w| w == expected),
        "the init segment does not carry the {} record verbatim",
        String::from_utf8_lossy(fourcc)
    );
}

//! The reference's worker cases (Home Assistant `test_worker.py`), through the pipeline:
//! timestamp guard → segmenter → ring.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mp4_atom::{Decode, Moof};
use sluice_media::codec::{aac, avc};
use sluice_media::pipeline::{Pipeline, PipelineConfig};
use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::{Event, Segmenter, SegmenterConfig, SegmenterError};
use sluice_media::timestamp::{DropReason, TimestampError};
use sluice_media::{Frame, Track};

/// The reference's fake stream: 12 fps at 90 kHz, a keyframe every 12 frames.
const FPS: i64 = 12;
const TICKS: i64 = 90_000 / FPS; // 7500
const SEGMENT: f64 = 2.0;

fn video_track() -> Track {
    let avcc = avc::avcc_from_parameter_sets(&[0x67, 0x42, 0xc0, 0x1e], &[0x68, 0xce]).unwrap();
    Track::h264(Bytes::from(avcc), 90_000, 480, 320).unwrap()
}

fn audio_track() -> Track {
    Track::aac(Bytes::copy_from_slice(&aac::lc_config(8000, 1).unwrap())).unwrap()
}

fn video(i: i64) -> Frame {
    Frame {
        track: 0,
        dts: i * TICKS,
        pts: i * TICKS,
        duration: None,
        keyframe: i % FPS == 0,
        data: Bytes::from(vec![i as u8; 3]),
    }
}

fn audio(dts: i64) -> Frame {
    Frame {
        track: 1,
        dts,
        pts: dts,
        duration: None,
        keyframe: true,
        data: Bytes::from_static(&[0xaa, 0xbb]),
    }
}

/// Non-LL settings as in the reference tests: 1.9 s minimum segment.
fn pipeline() -> Pipeline {
    Pipeline::new(PipelineConfig {
        segmenter: SegmenterConfig {
            min_segment_secs: SEGMENT - 0.1,
            part_target_secs: 1.0,
        },
        max_gap_secs: 30.0,
        timeline_origin_secs: 0.0,
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

struct Run {
    events: Vec<Event>,
    drops: Vec<DropReason>,
}

fn run(tracks: &[Track], frames: impl IntoIterator<Item = Frame>, finish: bool) -> Run {
    let mut p = pipeline();
    p.start_run(tracks).unwrap();
    let mut events = Vec::new();
    let mut drops = Vec::new();
    for f in frames {
        drops.extend(p.push(f, now(), &mut events));
    }
    if finish {
        p.finish(&mut events);
    }
    Run { events, drops }
}

fn segment_durations(events: &[Event]) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SegmentEnd { duration } => Some(*duration),
            _ => None,
        })
        .collect()
}

/// (track id, tfdt, sample durations) of every traf, in order.
fn trafs(events: &[Event]) -> Vec<(u32, u64, Vec<u32>)> {
    let mut out = Vec::new();
    for e in events {
        if let Event::Part(part) = e {
            let bytes = part.fragment.to_vec();
            let moof = Moof::decode(&mut &bytes[..]).unwrap();
            for traf in moof.traf {
                let durations = traf.trun[0]
                    .samples
                    .iter()
                    .map(|s| s.duration.unwrap())
                    .collect();
                out.push((
                    traf.tfhd.track_id,
                    traf.tfdt.unwrap().base_media_decode_time,
                    durations,
                ));
            }
        }
    }
    out
}

/// Every output video sample's decode time, reconstructed from tfdt and durations.
fn video_timeline(events: &[Event]) -> Vec<u64> {
    let mut times = Vec::new();
    for (track, base, durations) in trafs(events) {
        if track != 1 {
            continue;
        }
        let mut t = base;
        for d in durations {
            times.push(t);
            t += u64::from(d);
        }
    }
    times
}

fn discontinuities(events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SegmentStart { discontinuity, .. } => Some(*discontinuity),
            _ => None,
        })
        .collect()
}

#[test]
fn sixty_frames_make_two_segments_of_two_seconds() {
    let r = run(&[video_track()], (0..60).map(video), false);
    assert_eq!(segment_durations(&r.events), [2.0, 2.0]);
    // The third segment is in progress; finishing the run completes it with its 12 frames.
    let r = run(&[video_track()], (0..60).map(video), true);
    assert_eq!(segment_durations(&r.events), [2.0, 2.0, 1.0]);
    let timeline = video_timeline(&r.events);
    assert_eq!(
        timeline,
        (0..60).map(|i| (i * TICKS) as u64).collect::<Vec<_>>()
    );
    assert!(r.drops.is_empty());
    // Parts are closed before they pass the 1 s target: 12 frames each.
    let parts: Vec<f64> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Part(p) => Some(p.duration),
            _ => None,
        })
        .collect();
    assert_eq!(parts, [1.0; 5]);
}

#[test]
fn out_of_order_frame_is_skipped() {
    let frames = (0..60).map(|i| {
        let mut f = video(i);
        if i == 36 + 5 {
            f.dts = -9090;
            f.pts = -9090;
        }
        f
    });
    let r = run(&[video_track()], frames, false);
    assert_eq!(r.drops, [DropReason::NonMonotonic]);
    assert_eq!(segment_durations(&r.events), [2.0, 2.0]);
    // The dropped frame's neighbour absorbs its duration; nothing else moves.
    let timeline = video_timeline(&r.events);
    assert_eq!(timeline.len(), 47);
    assert!(timeline.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn missing_dts_is_tolerated_six_times_then_fails() {
    let mut p = pipeline();
    p.start_run(&[video_track()]).unwrap();
    let mut events = Vec::new();
    for _ in 0..6 {
        p.missing_dts().unwrap();
    }
    assert!(p.push(video(0), now(), &mut events).is_none());
    // A good frame resets the count.
    for _ in 0..6 {
        p.missing_dts().unwrap();
    }
    assert!(p.push(video(1), now(), &mut events).is_none());
    for _ in 0..6 {
        p.missing_dts().unwrap();
    }
    assert_eq!(p.missing_dts(), Err(TimestampError::MissingDts(7)));
}

#[test]
fn video_before_the_first_keyframe_and_audio_before_it_are_discarded() {
    let tracks = [video_track(), audio_track()];
    let mut frames = vec![audio(0), audio(1024)];
    // Frames 1..11 are not keyframes; 12 is.
    frames.extend((1..12).map(video));
    frames.push(audio(7 * 1024));
    frames.extend((12..30).map(video));
    // Audio at 8 kHz: 1.5 s (the keyframe at index 12 is at 1.0 s) and later.
    frames.push(audio(12_000));
    frames.push(audio(12_000 + 1024));
    frames.extend((30..40).map(video));
    let r = run(&tracks, frames, true);
    let timeline = video_timeline(&r.events);
    assert_eq!(
        timeline[0],
        (12 * TICKS) as u64,
        "output starts at the keyframe"
    );
    let audio_trafs: Vec<_> = trafs(&r.events).into_iter().filter(|t| t.0 == 2).collect();
    assert_eq!(
        audio_trafs.len(),
        1,
        "only the audio after the keyframe is muxed"
    );
    assert_eq!(audio_trafs[0].1, 12_000);
    assert_eq!(audio_trafs[0].2, [1024, 1024]);
}

#[test]
fn audio_only_input_is_a_clear_error() {
    let mut p = pipeline();
    let err = p.start_run(&[audio_track()]).unwrap_err();
    assert_eq!(err, SegmenterError::NoVideo);
    assert_eq!(
        err.to_string(),
        "stream has no video track (audio-only streams are not supported)"
    );
}

fn jump_at_35(offset: i64) -> impl Iterator<Item = Frame> {
    (0..60).map(move |i| {
        let mut f = video(i);
        if i >= 35 {
            f.dts += offset;
            f.pts += offset;
        }
        f
    })
}

#[test]
fn huge_forward_jump_is_rebased_and_cut_at_the_next_keyframe() {
    let r = run(&[video_track()], jump_at_35(90_000 * 1000), true);
    assert!(r.drops.is_empty(), "no frame is lost");
    // The timeline never jumps: frame i is still at i × 7500.
    let timeline = video_timeline(&r.events);
    assert_eq!(
        timeline,
        (0..60).map(|i| (i * TICKS) as u64).collect::<Vec<_>>()
    );
    // The segment in progress ends at the next keyframe (36) although it is only 1 s long,
    // and the next one is marked as a discontinuity.
    assert_eq!(segment_durations(&r.events), [2.0, 1.0, 2.0]);
    assert_eq!(discontinuities(&r.events), [false, false, true]);
}

#[test]
fn huge_backward_jump_is_rebased_too() {
    let r = run(&[video_track()], jump_at_35(-9_000_000), true);
    assert!(r.drops.is_empty());
    let timeline = video_timeline(&r.events);
    assert_eq!(
        timeline,
        (0..60).map(|i| (i * TICKS) as u64).collect::<Vec<_>>()
    );
    assert_eq!(discontinuities(&r.events), [false, false, true]);
}

/// Video and 8 kHz audio: video's timestamps jump by `video_jump` ticks at 2.5 s, audio's by
/// `audio_jump` ticks, and audio's last pre-jump frame arrives after video's first post-jump
/// frame.
fn jumping_streams(video_jump: i64, audio_jump: i64) -> Run {
    let tracks = [video_track(), audio_track()];
    let mut frames = Vec::new();
    for i in 0..60 {
        let t = i * TICKS;
        let mut v = video(i);
        if i >= 30 {
            v.dts += video_jump;
            v.pts += video_jump;
        }
        frames.push(v);
        // Two audio frames per video frame (1024 samples at 8 kHz = 128 ms > 83 ms: fewer).
        let a = t * 8000 / 90_000;
        if a % 1024 < 667 {
            let dts = a - a % 1024;
            frames.push(audio(if i >= 31 { dts + audio_jump } else { dts }));
        }
    }
    run(&tracks, frames, true)
}

/// Audio output times (in seconds) increase and end within a frame of video's; returns where
/// video ends.
fn assert_audio_follows_video(r: &Run) -> f64 {
    let mut audio_times = Vec::new();
    for (track, base, durations) in trafs(&r.events) {
        if track == 2 {
            let mut t = base;
            for d in durations {
                audio_times.push(t as f64 / 8000.0);
                t += u64::from(d);
            }
        }
    }
    let last_video = *video_timeline(&r.events).last().unwrap() as f64 / 90_000.0;
    let last_audio = *audio_times.last().unwrap();
    assert!(audio_times.windows(2).all(|w| w[0] < w[1]));
    assert!(
        (last_video - last_audio).abs() < 0.2,
        "video ends at {last_video}, audio at {last_audio}"
    );
    last_video
}

#[test]
fn a_jump_keeps_audio_in_sync_with_video() {
    // Both jump forward by 100 s.
    let r = jumping_streams(100 * 90_000, 100 * 8000);
    let last_video = assert_audio_follows_video(&r);
    assert!(last_video < 10.0, "the timeline did not jump: {last_video}");
}

/// Found by `fuzz/fuzz_targets/pipeline.rs` (input in `fuzz/regressions/pipeline/`): a track
/// whose timestamps jumped by another amount than the leader's adopted the leader's shift
/// anyway, so its output jumped: here to ~5·10^14 s, where no part ever reached it (the audio
/// was lost); with other values, the segmenter's arithmetic overflowed.
#[test]
fn a_track_whose_timestamps_jump_differently_rebases_on_its_own() {
    // Video jumps by 100 s, audio by 5·10^14 s.
    let r = jumping_streams(100 * 90_000, 4_000_000_000_000_000_000);
    assert_audio_follows_video(&r);
}

/// The segmenter's own arithmetic saturates for frames at the far end of `i64` (it is public,
/// and trusts its caller only for monotonic DTS).
#[test]
fn segmenter_takes_timestamps_at_the_end_of_i64() {
    let mut segmenter = Segmenter::new(SegmenterConfig {
        min_segment_secs: 1.9,
        part_target_secs: 1.0,
    });
    segmenter.start_run(&[video_track()]).unwrap();
    let mut events = Vec::new();
    for (dts, keyframe) in [(0, true), (i64::MAX - 1, false)] {
        let mut frame = video(0);
        frame.dts = dts;
        frame.pts = dts;
        frame.keyframe = keyframe;
        segmenter.push(frame, false, now(), &mut events);
    }
    segmenter.finish(&mut events);
    let parts: Vec<Vec<u32>> = trafs(&events).into_iter().map(|t| t.2).collect();
    assert_eq!(parts, [vec![u32::MAX], vec![1]]);
    assert!(segment_durations(&events)[0] > 1e14);
}

#[test]
fn ring_keeps_sequence_numbers_across_runs_and_marks_the_restart() {
    let mut ring = SegmentRing::new(5);
    let mut p = pipeline();
    for run in 0..2 {
        p.start_run(&[video_track()]).unwrap();
        let mut events = Vec::new();
        for i in 0..60 {
            p.push(video(i), now(), &mut events);
        }
        p.finish(&mut events);
        events.into_iter().for_each(|e| ring.apply(e));
        ring.end_run();
        assert_eq!(ring.next_sequence(), 3 * (run + 1));
    }
    let segs: Vec<(u64, u64)> = ring
        .segments()
        .iter()
        .map(|s| (s.sequence, s.discontinuity))
        .collect();
    assert_eq!(segs, [(1, 0), (2, 0), (3, 1), (4, 1), (5, 1)]);
    // The second run continues the timeline instead of starting again at zero.
    let first_of_run_2 = ring.get(3).unwrap();
    let bytes = first_of_run_2.parts[0].fragment.to_vec();
    let moof = Moof::decode(&mut &bytes[..]).unwrap();
    assert_eq!(
        moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time,
        (60 * TICKS) as u64
    );
}

#[test]
fn parameter_change_starts_a_new_segment_with_a_new_init_and_a_discontinuity() {
    let mut p = pipeline();
    let first = video_track();
    p.start_run(std::slice::from_ref(&first)).unwrap();
    let mut events = Vec::new();
    for i in 0..30 {
        p.push(video(i), now(), &mut events);
    }
    // New SPS: a different resolution.
    let avcc = avc::avcc_from_parameter_sets(&[0x67, 0x42, 0xc0, 0x1f], &[0x68, 0xce]).unwrap();
    let second = Track::h264(Bytes::from(avcc), 90_000, 1280, 720).unwrap();
    p.update_tracks(std::slice::from_ref(&second), &mut events)
        .unwrap();
    // The same parameters again change nothing.
    let before = events.len();
    p.update_tracks(std::slice::from_ref(&second), &mut events)
        .unwrap();
    assert_eq!(events.len(), before);
    // The camera sends a keyframe with the new parameters.
    for i in 30..60 {
        let mut f = video(i);
        f.keyframe = i == 30 || i % FPS == 0;
        p.push(f, now(), &mut events);
    }
    p.finish(&mut events);
    let starts: Vec<(u64, bool, u16)> = events
        .iter()
        .filter_map(|e| match e {
            Event::SegmentStart {
                init,
                discontinuity,
                ..
            } => Some((init.id, *discontinuity, init.tracks[0].width())),
            _ => None,
        })
        .collect();
    assert_eq!(starts, [(0, false, 480), (0, false, 480), (1, true, 1280)]);
    // Nothing is lost: frames 0..30 under the old init, 30..60 under the new one.
    assert_eq!(video_timeline(&events).len(), 60);
    // The segment in progress ends at the change (0.5 s); the next runs from frame 30 to the
    // end (keyframes at 36 and 48 come before the 1.9 s minimum).
    assert_eq!(segment_durations(&events), [2.0, 0.5, 2.5]);
}

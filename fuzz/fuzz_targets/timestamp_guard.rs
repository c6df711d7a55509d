//! The timestamp guard alone, fed arbitrary timestamps (anywhere in `i64`) across runs:
//! what passes is monotonic per track, never negative, keeps its composition offset, and is
//! not moved while the input stays within the gap; missing timestamps fail the run exactly
//! after `MAX_MISSING_DTS`.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::{Step, Timescale};
use sluice_media::Frame;
use sluice_media::timestamp::{MAX_MISSING_DTS, TimestampGuard, Verdict};

#[derive(Arbitrary, Debug)]
enum GuardOp {
    NewRun(Vec<(Timescale, bool)>),
    Frame {
        track: u8,
        step: Step,
        cto: i16,
        duration: Option<u32>,
    },
    Missing,
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_gap: u16,
    tracks: Vec<(Timescale, bool)>,
    ops: Vec<GuardOp>,
}

/// What the check remembers of one track.
#[derive(Clone, Copy, Default)]
struct Seen {
    timescale: u32,
    video: bool,
    /// Last input DTS fed to the guard in this run.
    last_input: i64,
    /// (input, output) DTS of the last frame of this run, if it passed.
    last_pass: Option<(i64, i64)>,
    /// Last output DTS ever (kept across runs while index and timescale stay).
    last_out: Option<i64>,
    /// The guard's idea of the last frame's duration (kept with `last_out`).
    last_duration: i64,
    /// Whether a frame of this track passed in this run.
    passed_in_run: bool,
}

fn seen_for(tracks: &[(Timescale, bool)], old: &[Seen]) -> Vec<Seen> {
    tracks
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, &(ts, video))| {
            let timescale = ticks(ts).max(1);
            let kept = old.get(i).filter(|o| o.timescale == timescale);
            Seen {
                timescale,
                video,
                last_out: kept.and_then(|o| o.last_out),
                last_duration: kept.map_or(0, |o| o.last_duration),
                ..Seen::default()
            }
        })
        .collect()
}

fn ticks(ts: Timescale) -> u32 {
    match ts {
        Timescale::Video90k => 90_000,
        Timescale::Millis => 1000,
        Timescale::Any(t) => t,
    }
}

fn guard_tracks(tracks: &[(Timescale, bool)]) -> Vec<(u32, bool)> {
    tracks
        .iter()
        .take(4)
        .map(|&(ts, v)| (ticks(ts), v))
        .collect()
}

fuzz_target!(|input: Input| {
    let max_gap_secs = f64::from(input.max_gap % 3600 + 1);
    let mut guard = TimestampGuard::new(&guard_tracks(&input.tracks), max_gap_secs, 10.0);
    let mut seen = seen_for(&input.tracks, &[]);
    let mut missing = 0u32;
    for op in &input.ops {
        match op {
            GuardOp::NewRun(tracks) => {
                guard.new_run(&guard_tracks(tracks));
                seen = seen_for(tracks, &seen);
                missing = 0;
            }
            GuardOp::Missing => {
                missing += 1;
                let failed = guard.missing_dts().is_err();
                assert_eq!(failed, missing > MAX_MISSING_DTS, "after {missing} missing");
            }
            GuardOp::Frame {
                track,
                step,
                cto,
                duration,
            } => {
                missing = 0;
                let n = seen.len().max(1);
                // One index past the tracks, to see unknown tracks dropped.
                let t = usize::from(*track) % (n + 1);
                let last = seen.get(t).map_or(0, |s| s.last_input);
                let dts = match *step {
                    Step::Forward(d) => last.saturating_add(i64::from(d)),
                    Step::Back(d) => last.saturating_sub(i64::from(d)),
                    Step::Same => last,
                    Step::Jump(v) => v,
                };
                let pts = dts.saturating_add(i64::from(*cto));
                let verdict = guard.admit(Frame {
                    track: t,
                    dts,
                    pts,
                    duration: *duration,
                    keyframe: true,
                    data: Bytes::new(),
                });
                let Some(s) = seen.get_mut(t) else {
                    assert!(
                        matches!(verdict, Verdict::Drop(_)),
                        "a frame of no track passed"
                    );
                    continue;
                };
                s.last_input = dts;
                match verdict {
                    Verdict::Drop(_) => s.last_pass = None,
                    Verdict::Pass {
                        frame,
                        discontinuity,
                    } => {
                        assert!(frame.dts >= 0, "negative output DTS {}", frame.dts);
                        if let Some(last) = s.last_out {
                            assert!(frame.dts > last, "DTS {} after {last}", frame.dts);
                        }
                        assert!(!discontinuity || s.video, "a discontinuity on audio");
                        let offset = frame.dts.checked_sub(dts);
                        if let Some(expected) = offset.and_then(|o| pts.checked_add(o)) {
                            assert_eq!(frame.pts, expected, "PTS not moved with DTS");
                        }
                        let max_gap = (max_gap_secs * f64::from(s.timescale)) as i64;
                        if let Some((p_in, p_out)) = s.last_pass {
                            let step = dts.checked_sub(p_in);
                            if step.is_some_and(|d| d > 0 && d <= max_gap) {
                                assert!(!discontinuity, "a discontinuity within the gap");
                                assert_eq!(
                                    frame.dts.checked_sub(p_out),
                                    step,
                                    "a step within the gap was moved"
                                );
                            }
                        }
                        if let (true, Some(last)) = (s.passed_in_run, s.last_out) {
                            // The output never jumps within a run: at most the gap past where
                            // the track continues (one frame after its last output).
                            let bound = i128::from(last)
                                + i128::from(s.last_duration.max(1))
                                + i128::from(max_gap);
                            assert!(
                                i128::from(frame.dts) <= bound,
                                "output jumped from {last} to {}",
                                frame.dts
                            );
                        }
                        match s.last_out {
                            Some(last) => s.last_duration = frame.dts - last,
                            None => s.last_duration = duration.map_or(0, i64::from),
                        }
                        s.passed_in_run = true;
                        s.last_pass = Some((dts, frame.dts));
                        s.last_out = Some(frame.dts);
                    }
                }
            }
        }
    }
});

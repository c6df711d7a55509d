//! Segmenter + fMP4 writer throughput on a 4 Mbit/s 1080p-class H.264 stream with AAC audio:
//! 30 fps, a keyframe every second (~120 KB), P-frames filling the rest of the bitrate,
//! 1 s segments with 0.3 s parts (the defaults). Reported as frames per second on one core.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_media::codec::{aac, avc};
use sluice_media::pipeline::{Pipeline, PipelineConfig};
use sluice_media::segmenter::{Event, SegmenterConfig};
use sluice_media::{Frame, Track};

const FPS: i64 = 30;
const SECONDS: i64 = 20;
const BITRATE: usize = 4_000_000;
const KEYFRAME_BYTES: usize = 120_000;

fn tracks() -> Vec<Track> {
    let avcc = avc::avcc_from_parameter_sets(&[0x67, 0x64, 0x00, 0x28], &[0x68, 0xee]).unwrap();
    vec![
        Track::h264(Bytes::from(avcc), 90_000, 1920, 1080).unwrap(),
        Track::aac(Bytes::copy_from_slice(&aac::lc_config(48_000, 1).unwrap())).unwrap(),
    ]
}

/// The frames of `SECONDS` seconds, video and audio interleaved in time order.
fn frames() -> Vec<Frame> {
    let per_second = BITRATE / 8;
    let p_bytes = (per_second - KEYFRAME_BYTES) / (FPS as usize - 1);
    let key = Bytes::from(vec![0x65; KEYFRAME_BYTES]);
    let p = Bytes::from(vec![0x41; p_bytes]);
    let aac = Bytes::from(vec![0x21; 256]);
    let mut out = Vec::new();
    let mut audio_dts = 0i64;
    for i in 0..FPS * SECONDS {
        let dts = i * 90_000 / FPS;
        let keyframe = i % FPS == 0;
        out.push(Frame {
            track: 0,
            dts,
            pts: dts,
            duration: None,
            keyframe,
            data: if keyframe { key.clone() } else { p.clone() },
        });
        // Audio frames (1024 samples at 48 kHz) up to this video frame's time.
        while audio_dts * 90_000 / 48_000 <= dts {
            out.push(Frame {
                track: 1,
                dts: audio_dts,
                pts: audio_dts,
                duration: None,
                keyframe: true,
                data: aac.clone(),
            });
            audio_dts += 1024;
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let tracks = tracks();
    let frames = frames();
    let video_frames = (FPS * SECONDS) as u64;
    let cfg = PipelineConfig {
        segmenter: SegmenterConfig {
            min_segment_secs: 0.9,
            part_target_secs: 0.3,
        },
        max_gap_secs: 10.0,
        timeline_origin_secs: 0.0,
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut group = c.benchmark_group("segmenter");
    group.throughput(Throughput::Elements(video_frames));
    group.bench_function("1080p_4mbps_30fps_with_aac", |b| {
        b.iter_batched(
            || frames.clone(),
            |frames| {
                let mut p = Pipeline::new(cfg);
                p.start_run(&tracks).unwrap();
                let mut events: Vec<Event> = Vec::with_capacity(8);
                let mut parts = 0usize;
                for f in frames {
                    p.push(f, now, &mut events);
                    parts += events.len();
                    events.clear();
                }
                p.finish(&mut events);
                parts + events.len()
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

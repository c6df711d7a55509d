//! Snapshot picture pipeline on one core: a 1080p H.264 keyframe (made by ffmpeg at start:
//! `testsrc2` with temporal noise so it has a camera-like keyframe of about 150 KB, libx264
//! High, BT.709 limited range) decoded, scaled, turned and encoded as a quality-80 JPEG.
//!
//! Needs ffmpeg. Run: `cargo bench -p sluice --bench snapshot`.

use std::process::Command;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sluice::outputs::snapshot::picture::{DEFAULT_QUALITY, SnapshotSize, h264_keyframe_to_jpeg};
use sluice_media::demux::demux;

/// The avcC record and keyframe sample of a 1920×1080 H.264 picture.
fn keyframe_1080p() -> (Bytes, Bytes) {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("key.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=25,noise=alls=8:allf=t",
            "-frames:v",
            "1",
            "-c:v",
            "libx264",
            "-crf",
            "23",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ])
        .arg(&mp4)
        .status()
        .expect("ffmpeg is needed to make the benchmark's keyframe");
    assert!(status.success());
    let file = demux(&Bytes::from(std::fs::read(&mp4).unwrap())).unwrap();
    let key = file.frames[0].iter().find(|f| f.keyframe).unwrap();
    (file.tracks[0].config().clone(), key.data.clone())
}

fn bench(c: &mut Criterion) {
    let (avcc, sample) = keyframe_1080p();
    let cases = [
        ("native", 1, SnapshotSize::NATIVE),
        ("native_rotated_90", 6, SnapshotSize::NATIVE),
        (
            "width_320",
            1,
            SnapshotSize {
                width: Some(320),
                height: None,
            },
        ),
    ];
    for (name, orientation, size) in cases {
        let jpeg =
            h264_keyframe_to_jpeg(&avcc, &sample, orientation, size, DEFAULT_QUALITY).unwrap();
        eprintln!(
            "{name}: {} KB keyframe -> {}x{} JPEG of {} KB",
            sample.len() / 1000,
            jpeg.width,
            jpeg.height,
            jpeg.bytes.len() / 1000
        );
    }
    let mut group = c.benchmark_group("snapshot_1080p");
    group.sample_size(30);
    for (name, orientation, size) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                h264_keyframe_to_jpeg(&avcc, &sample, orientation, size, DEFAULT_QUALITY)
                    .unwrap()
                    .bytes
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

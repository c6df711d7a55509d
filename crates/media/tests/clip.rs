//! Progressive MP4 clips from parts, checked with mp4-atom and decoded by ffprobe.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use mp4_atom::{Any, Decode};
use sluice_media::mp4::{ClipWriter, Orientation};
use sluice_media::pipeline::{Pipeline, PipelineConfig};
use sluice_media::segmenter::{Event, InitSegment, Part, SegmenterConfig};

const DEMO: &[u8] = include_bytes!("../../sluice/assets/demo.mp4");

/// The demo clip through the pipeline `runs` times (a restart between runs), as
/// (init, part) pairs.
fn parts(runs: usize) -> Vec<(std::sync::Arc<InitSegment>, Part)> {
    let file = sluice_media::demux::demux(&Bytes::from_static(DEMO)).unwrap();
    let order = file.interleaved();
    let mut p = Pipeline::new(PipelineConfig {
        segmenter: SegmenterConfig {
            min_segment_secs: 0.9,
            part_target_secs: 0.25,
        },
        max_gap_secs: 10.0,
        timeline_origin_secs: 0.0,
    });
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut events = Vec::new();
    for _ in 0..runs {
        p.start_run(&file.tracks).unwrap();
        for &(t, i) in &order {
            p.push(file.frames[t][i].clone(), now, &mut events);
        }
        p.finish(&mut events);
    }
    let mut init = None;
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::SegmentStart { init: i, .. } => init = Some(i),
            Event::Part(part) => out.push((init.clone().unwrap(), part)),
            Event::SegmentEnd { .. } => {}
        }
    }
    out
}

fn write_clip(
    parts: &[(std::sync::Arc<InitSegment>, Part)],
    orientation: Orientation,
) -> (tempfile::NamedTempFile, ClipWriter) {
    let mut clip = ClipWriter::new(&parts[0].0, orientation);
    let mut data = Vec::new();
    for (init, part) in parts {
        for chunk in clip.add_part(init, part) {
            data.extend_from_slice(&chunk);
        }
    }
    let mut file = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
    file.write_all(&clip.header()).unwrap();
    file.write_all(&data).unwrap();
    file.flush().unwrap();
    (file, clip)
}

fn ffprobe(path: &std::path::Path) -> (bool, String, String) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "warning",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (installed by scripts/test.sh)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clip_is_fast_start_and_decodes_every_frame() {
    let parts = parts(1);
    let (file, clip) = write_clip(&parts, Orientation::NORMAL);
    assert!(
        (clip.duration_secs() - 8.0).abs() < 0.05,
        "{}",
        clip.duration_secs()
    );
    let bytes = std::fs::read(file.path()).unwrap();
    let mut buf = &bytes[..];
    let kinds: Vec<String> = std::iter::from_fn(|| {
        (!buf.is_empty()).then(|| match Any::decode(&mut buf).unwrap() {
            Any::Ftyp(_) => "ftyp".to_string(),
            Any::Moov(_) => "moov".to_string(),
            Any::Mdat(_) => "mdat".to_string(),
            other => format!("{other:?}"),
        })
    })
    .collect();
    assert_eq!(kinds, ["ftyp", "moov", "mdat"], "moov before mdat");
    let (ok, stdout, stderr) = ffprobe(file.path());
    assert!(ok && stderr.is_empty(), "{stderr}");
    assert!(stdout.contains("h264,8.000000,200"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("aac,") && l.ends_with(",375")),
        "{stdout}"
    );
}

#[test]
fn runs_are_stitched_into_one_timeline() {
    let parts = parts(2);
    let (file, clip) = write_clip(&parts, Orientation::new(8).unwrap());
    assert!(
        (clip.duration_secs() - 16.0).abs() < 0.1,
        "{}",
        clip.duration_secs()
    );
    let (ok, stdout, stderr) = ffprobe(file.path());
    assert!(ok && stderr.is_empty(), "{stderr}");
    // The second run starts where the first ended (its AAC priming frame makes video start
    // 21 ms later, absorbed by the last frame before it): no gap, no overlap.
    let video: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("h264"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(video[2], "400", "{stdout}");
    let duration: f64 = video[1].parse().unwrap();
    assert!((duration - 16.0).abs() < 0.05, "{stdout}");
    // Rotation sits in the video track's matrix: orientation 8 is the reference's ROTATE_RIGHT
    // matrix, which ffmpeg reports as a display rotation of -90 (clockwise).
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "csv=p=0",
        ])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "-90");
}

#[test]
fn empty_clip_is_empty() {
    let parts = parts(1);
    let clip = ClipWriter::new(&parts[0].0, Orientation::NORMAL);
    assert!(clip.is_empty());
    assert_eq!(clip.data_len(), 0);
}

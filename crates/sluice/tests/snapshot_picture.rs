//! The snapshot picture pipeline against ffmpeg: keyframes encoded by ffmpeg (and the demo
//! clip) are turned into JPEGs by Sluice, and the JPEGs, decoded by ffmpeg, must match ffmpeg's
//! own decode of the same keyframe, scaled and turned the same way.

pub mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use sluice::outputs::snapshot::picture::{
    DEFAULT_QUALITY, Jpeg, SnapshotSize, h264_keyframe_to_jpeg,
};
use sluice_media::Codec;
use sluice_media::demux::demux;

/// Mean absolute difference allowed between Sluice's JPEG and ffmpeg's decode, on BT.601 luma
/// (0–255). Measured 0.45–1.9 (JPEG at quality 80 on sharp test patterns, and the two scalers'
/// rounding); the bound leaves margin. Reading BT.709 as BT.601 gives 15 on the HD picture.
const MAX_LUMA_MAE: f64 = 6.0;
/// The same on R, G and B, which also sees chroma (subsampled twice) and colour conversion.
/// Measured 0.8–4.6 (the most at odd sizes, where ffmpeg places chroma differently).
const MAX_RGB_MAE: f64 = 8.0;

/// An H.264 keyframe in an MP4 file.
struct Keyframe {
    mp4: PathBuf,
    avcc: Bytes,
    sample: Bytes,
}

impl Keyframe {
    fn from_mp4(mp4: PathBuf) -> Keyframe {
        let file = demux(&Bytes::from(std::fs::read(&mp4).unwrap())).unwrap();
        let video = file
            .tracks
            .iter()
            .position(|t| t.codec() == Codec::H264)
            .unwrap();
        let key = file.frames[video].iter().find(|f| f.keyframe).unwrap();
        Keyframe {
            avcc: file.tracks[video].config().clone(),
            sample: key.data.clone(),
            mp4,
        }
    }

    /// One frame of `testsrc2` at `size`, encoded by libx264 with extra output options.
    fn testsrc(dir: &Path, name: &str, size: &str, options: &[&str]) -> Keyframe {
        let mp4 = dir.join(format!("{name}.mp4"));
        let source = format!("testsrc2=size={size}:rate=1");
        let mut args = vec!["-v", "error", "-y", "-f", "lavfi", "-i", &source];
        args.extend_from_slice(&["-frames:v", "1", "-c:v", "libx264"]);
        args.extend_from_slice(options);
        args.push(mp4.to_str().unwrap());
        ffmpeg(&args);
        Keyframe::from_mp4(mp4)
    }

    fn snapshot(&self, orientation: u8, width: Option<u32>, height: Option<u32>) -> Jpeg {
        h264_keyframe_to_jpeg(
            &self.avcc,
            &self.sample,
            orientation,
            SnapshotSize { width, height },
            DEFAULT_QUALITY,
        )
        .unwrap()
    }
}

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The first frame of `input` through `filters`, as packed RGB.
fn ffmpeg_rgb(input: &Path, filters: &str) -> Vec<u8> {
    let mut args = vec![
        "-v",
        "error",
        "-i",
        input.to_str().unwrap(),
        "-frames:v",
        "1",
    ];
    if !filters.is_empty() {
        args.extend_from_slice(&["-vf", filters]);
    }
    args.extend_from_slice(&["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    ffmpeg(&args)
}

/// ffmpeg's filters for an EXIF orientation.
fn orientation_filter(orientation: u8) -> &'static str {
    match orientation {
        1 => "",
        2 => "hflip",
        3 => "hflip,vflip",
        4 => "vflip",
        5 => "transpose=cclock_flip",
        6 => "transpose=clock",
        7 => "transpose=clock_flip",
        8 => "transpose=cclock",
        _ => unreachable!(),
    }
}

/// Mean absolute errors (BT.601 luma, RGB) between two RGB pictures of the same size.
fn mae(a: &[u8], b: &[u8]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let luma =
        |p: &[u8]| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    let pixels = a.chunks_exact(3).zip(b.chunks_exact(3));
    let luma_sum: f64 = pixels.clone().map(|(p, q)| (luma(p) - luma(q)).abs()).sum();
    let rgb_sum: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    let n = (a.len() / 3) as f64;
    (luma_sum / n, rgb_sum as f64 / (3.0 * n))
}

/// Compares Sluice's snapshot with ffmpeg's decode, turned and scaled alike.
fn check(
    dir: &Path,
    label: &str,
    key: &Keyframe,
    orientation: u8,
    size: (Option<u32>, Option<u32>),
    expected: (u32, u32),
) {
    let jpeg = key.snapshot(orientation, size.0, size.1);
    assert_eq!((jpeg.width, jpeg.height), expected, "{label}");
    let path = dir.join(format!("{label}.jpg"));
    std::fs::write(&path, &jpeg.bytes).unwrap();
    let ours = ffmpeg_rgb(&path, "");
    assert_eq!(
        ours.len(),
        (expected.0 * expected.1 * 3) as usize,
        "{label}: JPEG size"
    );
    let mut filters: Vec<String> = vec![];
    if orientation != 1 {
        filters.push(orientation_filter(orientation).into());
    }
    filters.push(format!("scale={}:{}:flags=area", expected.0, expected.1));
    let reference = ffmpeg_rgb(&key.mp4, &filters.join(","));
    let (luma, rgb) = mae(&ours, &reference);
    println!(
        "{label}: {}x{} orientation {orientation}, {} bytes: MAE luma {luma:.2}, RGB {rgb:.2}",
        expected.0,
        expected.1,
        jpeg.bytes.len()
    );
    assert!(luma < MAX_LUMA_MAE, "{label}: luma MAE {luma:.2}");
    assert!(rgb < MAX_RGB_MAE, "{label}: RGB MAE {rgb:.2}");
}

#[test]
fn every_orientation_matches_ffmpeg() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let key = Keyframe::testsrc(dir.path(), "src", "640x360", &[]);
    for orientation in 1..=8u8 {
        let expected = if orientation >= 5 {
            (360, 640)
        } else {
            (640, 360)
        };
        check(
            dir.path(),
            &format!("o{orientation}"),
            &key,
            orientation,
            (None, None),
            expected,
        );
    }
}

#[test]
fn scaled_snapshots_match_ffmpeg() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let key = Keyframe::testsrc(dir.path(), "src", "640x360", &[]);
    check(dir.path(), "w320", &key, 1, (Some(320), None), (320, 180));
    check(
        dir.path(),
        "o6-w180",
        &key,
        6,
        (Some(180), None),
        (180, 320),
    );
    check(
        dir.path(),
        "o8-h320",
        &key,
        8,
        (None, Some(320)),
        (180, 320),
    );
    check(
        dir.path(),
        "exact-odd",
        &key,
        3,
        (Some(333), Some(187)),
        (333, 187),
    );
    check(
        dir.path(),
        "exact-squash",
        &key,
        1,
        (Some(100), Some(300)),
        (100, 300),
    );
}

#[test]
fn hd_bt709_and_full_range_pictures_match_ffmpeg() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let bt709 = [
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
    ];
    let hd = Keyframe::testsrc(dir.path(), "hd", "1920x1080", &bt709);
    check(dir.path(), "hd-native", &hd, 1, (None, None), (1920, 1080));
    check(dir.path(), "hd-w320", &hd, 1, (Some(320), None), (320, 180));
    check(
        dir.path(),
        "hd-o6-w320",
        &hd,
        6,
        (Some(320), None),
        (320, 569),
    );
    let full = ["-pix_fmt", "yuvj420p", "-color_range", "pc"];
    let full = Keyframe::testsrc(dir.path(), "full", "640x360", &full);
    check(dir.path(), "full-range", &full, 1, (None, None), (640, 360));
    let baseline = ["-profile:v", "baseline"];
    let baseline = Keyframe::testsrc(dir.path(), "baseline", "320x240", &baseline);
    check(
        dir.path(),
        "baseline",
        &baseline,
        6,
        (None, None),
        (240, 320),
    );
}

#[test]
fn demo_clip_matches_ffmpeg() {
    common::require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.mp4");
    let key = Keyframe::from_mp4(demo);
    check(dir.path(), "demo", &key, 1, (None, None), (640, 360));
    check(
        dir.path(),
        "demo-w320",
        &key,
        1,
        (Some(320), None),
        (320, 180),
    );
}

//! `sluice probe URL`: connect to a source, describe its tracks, disconnect.

use std::fmt::Write;
use std::time::Duration;

use sluice_media::{Track, TrackKind};

use crate::redact::redact;
use crate::source::{SourceError, SourceEvent, SourceOptions, SourceSpec, Sources};

/// How long probing may watch frames to measure the frame rate.
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// Video frames used to measure the frame rate.
const RATE_FRAMES: usize = 26;

/// Connects to `source`, and returns a description of its tracks: codec string, resolution
/// and frame rate (measured from the timestamps of the first second of frames) for video,
/// sampling rate and channels for audio.
pub async fn probe(source: &str, options: &SourceOptions) -> Result<String, SourceError> {
    let spec = SourceSpec::parse(source)?;
    let (mut src, tracks) = Sources::default().open_source(&spec, options).await?;
    let video_index = tracks.iter().position(|t| t.kind() == TrackKind::Video);
    let mut times = Vec::new();
    let deadline = tokio::time::Instant::now() + RATE_WINDOW;
    while times.len() < RATE_FRAMES {
        match tokio::time::timeout_at(deadline, src.next()).await {
            Ok(Ok(SourceEvent::Frame(f))) if Some(f.track) == video_index => times.push(f.dts),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "source: {}", redact(source));
    for track in &tracks {
        let _ = writeln!(out, "{}", describe(track, &times));
    }
    Ok(out)
}

fn describe(track: &Track, video_times: &[i64]) -> String {
    match track.kind() {
        TrackKind::Video => {
            let rate = match (video_times.first(), video_times.last()) {
                (Some(first), Some(last)) if last > first => {
                    let secs = (last - first) as f64 / f64::from(track.timescale());
                    format!("{:.2} fps", (video_times.len() - 1) as f64 / secs)
                }
                _ => "unknown fps".to_string(),
            };
            format!(
                "video: {} ({}) {}x{} {rate}",
                track.codec_string(),
                track.codec().name(),
                track.width(),
                track.height()
            )
        }
        TrackKind::Audio => format!(
            "audio: {} ({}) {} Hz {} ch",
            track.codec_string(),
            track.codec().name(),
            track.sample_rate(),
            track.channels()
        ),
    }
}

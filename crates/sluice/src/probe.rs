//! Probing a source: connect, describe its tracks, disconnect. `sluice probe URL` prints the
//! description ([`Probe`]'s `Display`) and `POST /api/probe` sends it as JSON.

use std::fmt;
use std::time::Duration;

use sluice_media::{Track, TrackKind};

use crate::redact::redact;
use crate::source::{Opener, SourceError, SourceEvent, SourceOptions, SourceSpec, Sources};

/// How long probing may watch frames to measure the frame rate.
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// Video frames used to measure the frame rate.
const RATE_FRAMES: usize = 26;

/// What a probe found: the source (credentials hidden) and its tracks.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Probe {
    /// The source URL, redacted.
    pub source: String,
    /// The tracks, in the source's order.
    pub tracks: Vec<TrackInfo>,
}

/// One track of a probed source. Video tracks have `width`, `height` and `fps` (absent when no
/// frame rate could be measured); audio tracks `sample_rate` and `channels`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrackInfo {
    /// `video` or `audio`.
    pub kind: &'static str,
    /// Short codec name: `h264`, `h265`, `aac`.
    pub codec: &'static str,
    /// The RFC 6381 codec string, e.g. `avc1.64001e`.
    pub codec_string: String,
    /// Picture width in pixels (video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u16>,
    /// Picture height in pixels (video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u16>,
    /// Frames per second, measured from the first frames' timestamps (video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Sampling rate in Hz (audio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Channels (audio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
}

/// Connects to `source` with the real sources; see [`probe_with`].
pub async fn probe(source: &str, options: &SourceOptions) -> Result<Probe, SourceError> {
    probe_with(&Sources::default(), source, options).await
}

/// Connects to `source` through `opener` and describes its tracks: codec string, resolution
/// and frame rate (measured from the timestamps of up to a second of frames, watched for at
/// most three seconds) for video, sampling rate and channels for audio. Connecting is bounded
/// by `options.connect_timeout`; the source is closed before this returns.
pub async fn probe_with(
    opener: &dyn Opener,
    source: &str,
    options: &SourceOptions,
) -> Result<Probe, SourceError> {
    let spec = SourceSpec::parse(source)?;
    let (mut src, tracks) = opener.open(&spec, options).await?;
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
    Ok(Probe {
        source: redact(source),
        tracks: tracks.iter().map(|t| describe(t, &times)).collect(),
    })
}

fn describe(track: &Track, video_times: &[i64]) -> TrackInfo {
    let mut info = TrackInfo {
        kind: match track.kind() {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        },
        codec: track.codec().name(),
        codec_string: track.codec_string().to_string(),
        width: None,
        height: None,
        fps: None,
        sample_rate: None,
        channels: None,
    };
    match track.kind() {
        TrackKind::Video => {
            info.width = Some(track.width());
            info.height = Some(track.height());
            info.fps = match (video_times.first(), video_times.last()) {
                (Some(first), Some(last)) if last > first => {
                    let secs = (last - first) as f64 / f64::from(track.timescale());
                    Some((video_times.len() - 1) as f64 / secs)
                }
                _ => None,
            };
        }
        TrackKind::Audio => {
            info.sample_rate = Some(track.sample_rate());
            info.channels = Some(track.channels());
        }
    }
    info
}

/// The text `sluice probe` prints: a `source:` line, then one line per track.
impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source: {}", self.source)?;
        for track in &self.tracks {
            writeln!(f, "{track}")?;
        }
        Ok(())
    }
}

impl fmt::Display for TrackInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or0 = |v: Option<u16>| v.unwrap_or(0);
        if self.kind == "video" {
            write!(
                f,
                "video: {} ({}) {}x{} ",
                self.codec_string,
                self.codec,
                or0(self.width),
                or0(self.height)
            )?;
            match self.fps {
                Some(fps) => write!(f, "{fps:.2} fps"),
                None => f.write_str("unknown fps"),
            }
        } else {
            write!(
                f,
                "audio: {} ({}) {} Hz {} ch",
                self.codec_string,
                self.codec,
                self.sample_rate.unwrap_or(0),
                or0(self.channels)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_is_described_as_text_and_json() {
        let probe = probe("builtin:demo", &SourceOptions::default())
            .await
            .unwrap();
        let text = probe.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "source: builtin:demo");
        assert!(
            lines[1].starts_with("video: avc1.") && lines[1].ends_with(" (h264) 640x360 25.00 fps"),
            "{text}"
        );
        assert_eq!(lines[2], "audio: mp4a.40.2 (aac) 48000 Hz 1 ch", "{text}");
        let json = serde_json::to_value(&probe).unwrap();
        assert_eq!(json["tracks"][0]["width"], 640);
        assert_eq!(json["tracks"][0]["kind"], "video");
        assert!(json["tracks"][0].get("sample_rate").is_none(), "{json}");
        assert_eq!(json["tracks"][1]["channels"], 1);
    }
}

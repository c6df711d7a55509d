//! The floor of Sluice's RTSP stack: retina alone, set up as Sluice sets it up (TCP, H.264 in
//! MP4 form with parameter sets inserted at keyframes, AAC), reading frames and doing nothing
//! with them but count them and note when they arrived.
//!
//! **Frame arrival delay.** For each video frame, `offset = arrival − RTP time` (the frame's
//! timestamp on retina's timeline, in seconds, against a monotonic clock). The sender paces by
//! that same timestamp, so offsets differ only by how late frames arrive; the delay of a frame
//! is its offset minus the smallest offset of its camera in the window. p50/p99 of the delays
//! are what a change to ingest wakeups (coalescing reads) moves, compared with this reader,
//! which wakes for every frame, in the same run. It includes the simulator's own send jitter.
//!
//! **Frame transit.** When frames carry the simulator's send time ([`crate::wallclock`]),
//! arrival minus send time: the delay of the receiving side alone.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use retina::client::{
    PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParameterSetInsertion};
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use crate::stats::summary_ms;
use crate::wallclock;

/// What one camera's reader saw.
#[derive(Debug, Default)]
pub struct CameraStats {
    /// Sessions that reached PLAY.
    pub sessions: u64,
    /// Video frames in the window.
    pub video_frames: u64,
    /// Audio frames in the window.
    pub audio_frames: u64,
    /// Payload bytes in the window.
    pub bytes: u64,
    /// Errors (connection, protocol), each followed by a reconnection after a second.
    pub errors: Vec<String>,
    /// Per session, per video frame in the window: arrival minus RTP time, seconds (see the
    /// module docs). Offsets are comparable only within a session.
    pub offsets: Vec<Vec<f64>>,
    /// Per video frame in the window carrying the simulator's send time: arrival minus send
    /// time, milliseconds.
    pub transit_ms: Vec<f64>,
}

impl CameraStats {
    /// Delays in milliseconds: each offset minus the smallest of its session.
    pub fn delays_ms(&self) -> Vec<f64> {
        self.offsets
            .iter()
            .flat_map(|session| {
                let min = session.iter().copied().fold(f64::INFINITY, f64::min);
                session.iter().map(move |o| (o - min) * 1000.0)
            })
            .collect()
    }
}

/// The JSON summary over every camera.
pub fn summary(cameras: &[CameraStats], window: Duration) -> Value {
    let mut delays: Vec<f64> = cameras.iter().flat_map(CameraStats::delays_ms).collect();
    let mut transit: Vec<f64> = cameras
        .iter()
        .flat_map(|c| c.transit_ms.iter().copied())
        .collect();
    let video: u64 = cameras.iter().map(|c| c.video_frames).sum();
    let errors: Vec<&String> = cameras.iter().flat_map(|c| &c.errors).collect();
    json!({
        "cameras": cameras.len(),
        "window_s": window.as_secs_f64(),
        "sessions": cameras.iter().map(|c| c.sessions).sum::<u64>(),
        "video_frames": video,
        "audio_frames": cameras.iter().map(|c| c.audio_frames).sum::<u64>(),
        "bytes": cameras.iter().map(|c| c.bytes).sum::<u64>(),
        "video_fps_per_camera": video as f64 / window.as_secs_f64().max(1e-9) / cameras.len().max(1) as f64,
        "errors": errors.len(),
        "first_errors": errors.iter().take(5).collect::<Vec<_>>(),
        "frame_delay_ms": summary_ms(&mut delays),
        "frame_transit_ms": summary_ms(&mut transit),
    })
}

/// Reads `url` until `until`, reconnecting after errors; counts what arrives in
/// `window` (start, end).
pub async fn read_camera(url: Url, window: (Instant, Instant), until: Instant) -> CameraStats {
    let mut stats = CameraStats::default();
    while Instant::now() < until {
        let result = tokio::time::timeout_at(until, session(&url, window, &mut stats)).await;
        match result {
            Err(_) => break, // the run is over
            Ok(Ok(())) => stats.errors.push("the camera ended the session".into()),
            Ok(Err(e)) => stats.errors.push(e),
        }
        let pause = (Instant::now() + Duration::from_secs(1)).min(until);
        tokio::time::sleep_until(pause).await;
    }
    stats
}

async fn session(
    url: &Url,
    (measure_from, measure_until): (Instant, Instant),
    stats: &mut CameraStats,
) -> Result<(), String> {
    let first_line = |e: retina::Error| e.to_string().lines().next().unwrap_or("").to_string();
    let mut session = Session::describe(url.clone(), SessionOptions::default())
        .await
        .map_err(first_line)?;
    let mut video = None;
    let mut audio = None;
    for (i, s) in session.streams().iter().enumerate() {
        match (s.media(), s.encoding_name()) {
            ("video", "h264") if video.is_none() => video = Some(i),
            ("audio", "mpeg4-generic") if audio.is_none() => audio = Some(i),
            _ => {}
        }
    }
    let video = video.ok_or("no H.264 stream")?;
    for i in std::iter::once(video).chain(audio) {
        let format = if i == video {
            FrameFormat {
                parameter_set_insertion: ParameterSetInsertion::EachKeyFrame,
                ..FrameFormat::MP4
            }
        } else {
            FrameFormat::MP4
        };
        let options = SetupOptions::default()
            .transport(Transport::Tcp(TcpTransportOptions::default()))
            .frame_format(format);
        session.setup(i, options).await.map_err(first_line)?;
    }
    let playing = session
        .play(PlayOptions::default())
        .await
        .map_err(first_line)?;
    let mut demuxed = playing.demuxed().map_err(first_line)?;
    stats.sessions += 1;
    // Offsets are relative to one origin per session (the session is dropped, not ended, when
    // the run is over, so they are stored as they come).
    let origin = Instant::now();
    stats.offsets.push(Vec::new());
    while let Some(item) = demuxed.next().await {
        let now = Instant::now();
        let item = item.map_err(first_line)?;
        if now < measure_from || now >= measure_until {
            continue;
        }
        match item {
            CodecItem::VideoFrame(f) => {
                stats.video_frames += 1;
                stats.bytes += f.data().len() as u64;
                let ts = f.timestamp();
                let rtp_secs = ts.elapsed() as f64 / f64::from(ts.clock_rate().get());
                if let Some(offsets) = stats.offsets.last_mut() {
                    offsets.push((now - origin).as_secs_f64() - rtp_secs);
                }
                if let Some(sent) = wallclock::find(f.data()) {
                    stats
                        .transit_ms
                        .push(wallclock::ms_since(sent, SystemTime::now()));
                }
            }
            CodecItem::AudioFrame(f) => {
                stats.audio_frames += 1;
                stats.bytes += f.data().len() as u64;
            }
            _ => {}
        }
    }
    Ok(())
}

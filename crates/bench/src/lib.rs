//! Load harness for Sluice (issue 12): the pieces `benches/load.py` runs side by side.
//!
//! - `rtsp-sim` ([`sim`]): many RTSP cameras from one cheap process, replaying one pre-encoded
//!   MP4 clip ([`clip`]) with real pacing, RFC 6184 / RFC 3640 packetization ([`rtp`]) and an SDP
//!   carrying the parameter sets ([`sdp`]).
//! - `hls-viewers` ([`viewer`]): LL-HLS viewers that follow the media playlist with blocking
//!   reloads ([`playlist`] parses it) and fetch every part, timing each against its publication.
//! - `retina-reader` ([`reader`]): the floor of Sluice's RTSP stack, retina alone reading frames,
//!   with each frame's arrival delay against its RTP timestamp.
//!
//! The simulator stamps each video frame with its send time ([`wallclock`]), which lets the
//! viewers and the reader time what they receive against the moment it left the camera.
//! [`stats`] holds the percentile and histogram helpers they share; every binary prints a JSON
//! summary on stdout when it ends.

pub mod clip;
pub mod playlist;
pub mod reader;
pub mod rtp;
pub mod sdp;
pub mod sim;
pub mod stats;
pub mod viewer;
pub mod wallclock;

/// The tokio runtime a binary runs on: `0` is tokio's default multi-threaded runtime (one worker
/// per core, as `sluice serve` runs), `1` a single-threaded one, `n` a multi-threaded one with
/// `n` workers.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// Resolves when the process gets SIGINT or SIGTERM (never, if the handlers cannot be set).
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// The start of a measurement window: `unix_secs` (a Unix time, shared by the processes of one
/// run) when given, else `warmup` seconds from now.
pub fn window_start(unix_secs: Option<f64>, warmup: f64) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let from_now = match unix_secs {
        Some(t) => {
            let unix_now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            t - unix_now
        }
        None => warmup,
    };
    now + std::time::Duration::from_secs_f64(from_now.clamp(0.0, 1e6))
}

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

/// The measurement window a bench process shares with the others of a run: what it measures,
/// and how long it keeps working after.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Window {
    /// Seconds before measuring (clients start and reach the live edge).
    #[arg(long, default_value_t = 10.0)]
    pub warmup: f64,
    /// The window's start as a Unix time in seconds (overrides `--warmup`), so that several
    /// processes measure the same window.
    #[arg(long)]
    pub window_start: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Seconds to keep working, unmeasured, after the window (so that a driver sampling this
    /// process at the window's end finds it still at work).
    #[arg(long, default_value_t = 0.0)]
    pub linger: f64,
}

impl Window {
    /// Whether the warm-up and linger are not negative and the duration is positive.
    pub fn is_valid(&self) -> bool {
        self.warmup >= 0.0 && self.duration > 0.0 && self.linger >= 0.0
    }

    /// When measuring starts and ends, and when the work stops.
    pub fn bounds(
        &self,
    ) -> (
        tokio::time::Instant,
        tokio::time::Instant,
        tokio::time::Instant,
    ) {
        let from = window_start(self.window_start, self.warmup);
        let until = from + std::time::Duration::from_secs_f64(self.duration);
        (
            from,
            until,
            until + std::time::Duration::from_secs_f64(self.linger),
        )
    }
}

/// The start of a measurement window: `unix_secs` (a Unix time, shared by the processes of one
/// run) when given, else `warmup` seconds from now.
fn window_start(unix_secs: Option<f64>, warmup: f64) -> tokio::time::Instant {
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

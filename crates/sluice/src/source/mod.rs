//! Camera sources: where frames come from.
//!
//! Every source kind sits behind the same small interface: an [`Opener`] connects and returns
//! the tracks ([`Sources`] is the real one), [`Source::next`] yields [`SourceEvent`]s until the
//! run ends. Errors carry a typed [`ErrorKind`] so the API can tell a user what to fix.

mod file;
pub mod rtsp;
pub mod rtsp_guard;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use retina::client::SessionGroup;
use sluice_media::{Frame, Track};

pub use file::FileSource;
pub use rtsp::{RtspSource, RtspUrl};

use crate::redact::redact;

/// The bundled demo clip: H.264 640×360 25 fps with a 1 s GOP, AAC-LC mono 48 kHz, 9.6 s.
pub const DEMO_CLIP: &[u8] = include_bytes!("../../assets/demo.mp4");

/// A parsed source URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// `builtin:demo`: the bundled clip, looped in real time.
    Demo,
    /// `file:///path/to/clip.mp4`: an MP4 file, looped in real time.
    File(PathBuf),
    /// `rtsp://[user:pass@]host[:port]/path`: a camera.
    Rtsp(RtspUrl),
}

impl SourceSpec {
    /// Parses a source URL.
    /// Every source passes through here, so its credentials are registered with
    /// [`crate::redact`] here too: from now on they are hidden in every log line and message.
    pub fn parse(source: &str) -> Result<SourceSpec, SourceError> {
        crate::redact::register_secrets(source);
        if source == "builtin:demo" {
            return Ok(SourceSpec::Demo);
        }
        let url = url::Url::parse(source).map_err(|e| {
            SourceError::new(
                ErrorKind::InvalidUrl,
                format!("invalid source URL {:?}: {e}", redact(source)),
            )
        })?;
        match url.scheme() {
            "file" => url.to_file_path().map(SourceSpec::File).map_err(|()| {
                SourceError::new(
                    ErrorKind::InvalidUrl,
                    format!("{:?} is not an absolute file path", redact(source)),
                )
            }),
            "rtsp" => RtspUrl::new(url).map(SourceSpec::Rtsp),
            "rtsps" => Err(SourceError::new(
                ErrorKind::InvalidUrl,
                format!(
                    "{:?}: rtsps:// (RTSP over TLS) is not supported yet (the RTSP client, retina, \
                     has no TLS); use the camera's rtsp:// URL on a trusted network",
                    redact(source)
                ),
            )),
            other => Err(SourceError::new(
                ErrorKind::InvalidUrl,
                format!(
                    "unsupported source scheme {other:?} in {:?}: use rtsp://, file:// or builtin:demo",
                    redact(source)
                ),
            )),
        }
    }
}

/// What kind of failure ended (or prevented) a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The URL cannot be used.
    InvalidUrl,
    /// The source could not be reached (DNS, route, connection timeout).
    Unreachable,
    /// The source refused the connection.
    Refused,
    /// Bad or missing credentials.
    Unauthorized,
    /// No such stream path or file.
    NotFound,
    /// No answer or no frame in time.
    Timeout,
    /// The source's codecs cannot be remuxed to HLS.
    UnsupportedCodec,
    /// The source sent data that cannot be used.
    InvalidData,
    /// The source ended.
    Ended,
    /// The camera refused the requested RTP transport (RTSP 461).
    TransportRefused,
}

/// A source failure: a typed cause and a message a user can act on (never with credentials).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{message}")]
pub struct SourceError {
    /// The cause.
    pub kind: ErrorKind,
    /// What happened and what to do.
    pub message: String,
}

impl SourceError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
        }
    }
}

/// What a running source produces.
#[derive(Debug)]
pub enum SourceEvent {
    /// A frame of one of the tracks.
    Frame(Frame),
    /// The tracks' parameters changed (new SPS/PPS, resolution).
    Tracks(Vec<Track>),
}

/// How to connect: per-stream options that matter to network sources.
#[derive(Clone)]
pub struct SourceOptions {
    /// RTSP transport.
    pub transport: Transport,
    /// Bound on the whole connection handshake (RTSP DESCRIBE/SETUP/PLAY).
    pub connect_timeout: Duration,
    /// A run ends when no video frame arrives for this long (audio alone does not keep it).
    pub stall_timeout: Duration,
}

/// RTSP transport choice.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Try TCP, fall back to UDP if the camera refuses it.
    #[default]
    Auto,
    /// RTP interleaved in the RTSP TCP connection.
    Tcp,
    /// RTP over UDP.
    Udp,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            transport: Transport::Auto,
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(5),
        }
    }
}

/// An open source.
pub enum Source {
    /// A looped MP4 file.
    File(FileSource),
    /// An RTSP camera.
    Rtsp(Box<RtspSource>),
    /// A source implemented outside this module (scripted sources in tests).
    Custom(Box<dyn EventSource>),
}

/// A source implemented outside this module: what [`Source::Custom`] holds.
pub trait EventSource: Send {
    /// The next event; an error ends the run.
    fn next(&mut self) -> BoxFuture<'_, Result<SourceEvent, SourceError>>;
}

impl Source {
    /// The next event; an error ends the run.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        match self {
            Source::File(f) => f.next().await,
            Source::Rtsp(r) => r.next().await,
            Source::Custom(c) => c.next().await,
        }
    }
}

/// Opens sources: what a stream's worker connects through. [`Sources`] opens real ones; tests
/// inject scripted ones to drive the worker under a paused clock.
pub trait Opener: Send + Sync + 'static {
    /// Opens `spec` and returns it with its tracks, within `options.connect_timeout`.
    /// Dropping the future cancels the open.
    fn open<'a>(
        &'a self,
        spec: &'a SourceSpec,
        options: &'a SourceOptions,
    ) -> BoxFuture<'a, Result<(Source, Vec<Track>), SourceError>>;

    /// Waits (bounded by the caller) until connections closed by dropping their sources have
    /// finished closing (RTSP TEARDOWN).
    fn closed(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The real sources: RTSP cameras, MP4 files and the demo clip. RTSP sessions are tracked so
/// shutdown can wait for their TEARDOWN.
#[derive(Default)]
pub struct Sources {
    group: Arc<SessionGroup>,
}

impl Sources {
    /// Opens the source and returns it with its tracks, within `connect_timeout` whatever the
    /// kind (RTSP bounds each transport attempt; a file on a hung mount is bounded like a
    /// silent camera). Dropping the future cancels the open.
    pub async fn open_source(
        &self,
        spec: &SourceSpec,
        options: &SourceOptions,
    ) -> Result<(Source, Vec<Track>), SourceError> {
        match spec {
            SourceSpec::Rtsp(url) => {
                let (source, tracks) = RtspSource::open(url, options, Some(&self.group)).await?;
                Ok((Source::Rtsp(Box::new(source)), tracks))
            }
            SourceSpec::Demo => {
                let file = file::demo_file()?;
                let tracks = file.tracks.clone();
                Ok((Source::File(FileSource::new(file)), tracks))
            }
            SourceSpec::File(path) => {
                let file = tokio::time::timeout(options.connect_timeout, file::load(path))
                    .await
                    .unwrap_or_else(|_| {
                        Err(SourceError::new(
                            ErrorKind::Timeout,
                            format!(
                                "{} could not be read within {} s (connect_timeout)",
                                path.display(),
                                options.connect_timeout.as_secs_f64()
                            ),
                        ))
                    })?;
                let tracks = file.tracks.clone();
                Ok((Source::File(FileSource::new(Arc::new(file))), tracks))
            }
        }
    }
}

impl Opener for Sources {
    fn open<'a>(
        &'a self,
        spec: &'a SourceSpec,
        options: &'a SourceOptions,
    ) -> BoxFuture<'a, Result<(Source, Vec<Track>), SourceError>> {
        Box::pin(self.open_source(spec, options))
    }

    fn closed(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.group.await_teardown().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(SourceSpec::parse("builtin:demo").unwrap(), SourceSpec::Demo);
        assert_eq!(
            SourceSpec::parse("file:///tmp/a.mp4").unwrap(),
            SourceSpec::File(PathBuf::from("/tmp/a.mp4"))
        );
        let err = SourceSpec::parse("gopher://x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidUrl);
        assert!(SourceSpec::parse("::").is_err());
    }
}

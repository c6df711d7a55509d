//! Camera sources: where frames come from.
//!
//! Every source kind sits behind the same small interface: [`Source::open`] connects and
//! returns the tracks, [`Source::next`] yields [`SourceEvent`]s until the run ends. Errors carry
//! a typed [`ErrorKind`] so the API can tell a user what to fix.

mod file;
pub mod rtsp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_media::{Frame, Track};

pub use file::FileSource;
pub use rtsp::{RtspSource, RtspUrl};

use crate::config::Transport;

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
    pub fn parse(source: &str) -> Result<SourceSpec, SourceError> {
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
                    format!("{source:?} is not an absolute file path"),
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
    /// A frame arrived without a usable timestamp.
    MissingTimestamp,
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
    /// A run ends when no frame arrives for this long.
    pub stall_timeout: Duration,
    /// Tracks RTSP sessions so shutdown can wait for their TEARDOWN.
    pub session_group: Option<Arc<retina::client::SessionGroup>>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            transport: Transport::Auto,
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(5),
            session_group: None,
        }
    }
}

/// An open source.
pub enum Source {
    /// A looped MP4 file.
    File(FileSource),
    /// An RTSP camera.
    Rtsp(Box<RtspSource>),
}

impl Source {
    /// Opens the source and returns it with its tracks.
    pub async fn open(
        spec: &SourceSpec,
        options: &SourceOptions,
    ) -> Result<(Source, Vec<Track>), SourceError> {
        match spec {
            SourceSpec::Rtsp(url) => {
                let (source, tracks) = RtspSource::open(url, options).await?;
                Ok((Source::Rtsp(Box::new(source)), tracks))
            }
            SourceSpec::Demo => {
                let file = file::demo_file()?;
                let tracks = file.tracks.clone();
                Ok((Source::File(FileSource::new(file)), tracks))
            }
            SourceSpec::File(path) => {
                let file = file::load(path).await?;
                let tracks = file.tracks.clone();
                Ok((Source::File(FileSource::new(Arc::new(file))), tracks))
            }
        }
    }

    /// The next event; an error ends the run.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        match self {
            Source::File(f) => f.next().await,
            Source::Rtsp(r) => r.next().await,
        }
    }
}

/// Hides credentials in a source URL: user and password become `****`, and so do the values
/// of `auth`, `user`, `username`, `password` and `pass` query parameters. Text that is not a
/// URL is redacted by pattern, so nothing leaks from a malformed URL either.
pub fn redact(source: &str) -> String {
    const SECRET_KEYS: [&str; 5] = ["auth", "user", "username", "password", "pass"];
    let Ok(mut url) = url::Url::parse(source) else {
        return redact_by_pattern(source);
    };
    if url.cannot_be_a_base() {
        return redact_by_pattern(source);
    }
    if !url.username().is_empty() {
        let _ = url.set_username("****");
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("****"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.into_owned(),
                    if secret {
                        "****".into()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        let query = pairs
            .iter()
            .map(|(k, v)| {
                if v == "****" {
                    format!("{k}=****")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(Some(&query));
    }
    url.to_string()
}

fn redact_by_pattern(source: &str) -> String {
    // user:pass@ anywhere before the host.
    match (source.find("://"), source.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!(
                "{}://****:****@{}",
                &source[..scheme_end],
                &source[at + 1..]
            )
        }
        _ => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_like_the_reference() {
        assert_eq!(
            redact("https://abcd:efgh@foo.bar"),
            "https://****:****@foo.bar/"
        );
        assert_eq!(
            redact("http://foo.bar/?param1=abcd&password=efgh"),
            "http://foo.bar/?param1=abcd&password=****"
        );
        assert_eq!(
            redact("rtsp://user:p%40ss@cam.local:554/s1?auth=xyz"),
            "rtsp://****:****@cam.local:554/s1?auth=****"
        );
        assert_eq!(redact("rtsp://cam.local/s1"), "rtsp://cam.local/s1");
        assert_eq!(redact("not a url://u:p@x"), "not a url://****:****@x");
    }

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

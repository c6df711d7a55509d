//! The YAML configuration file and its validation.
//!
//! Every section is optional; unknown keys are errors that name the key and its line, so a typo
//! never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::source::{SourceOptions, SourceSpec, Transport};

/// A config file larger than this is refused (it is YAML text, not data).
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// HLS settings shared by every stream.
    #[serde(default)]
    pub hls: HlsConfig,
    /// How every stream's source is run: restart backoff, timestamp jumps.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The streams, by name (a name given twice is an error, not "the last one wins").
    #[serde(default, deserialize_with = "unique_names")]
    pub streams: BTreeMap<String, StreamConfig>,
}

/// Deserializes a map whose keys must be unique: YAML parsers keep the last of two equal keys,
/// which would silently drop a camera.
pub(crate) fn unique_names<'de, D>(
    deserializer: D,
) -> Result<BTreeMap<String, StreamConfig>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = BTreeMap<String, StreamConfig>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of stream names to stream entries")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(name) = map.next_key::<String>()? {
                if out.contains_key(&name) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate stream name {name:?}: each stream needs its own name"
                    )));
                }
                let entry = map.next_value::<StreamConfig>()?;
                out.insert(name, entry);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique)
}

/// `server:` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// When set, `/api/streams` calls need `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// Directories recordings may be written into.
    pub record_dirs: Vec<PathBuf>,
    /// Host names (besides IP addresses and `localhost`) a browser may use to reach the server;
    /// `"*"` allows any. Protects against DNS rebinding; see [`crate::site`].
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) of other web apps allowed to send state-changing API
    /// requests, besides the server's own pages.
    pub allowed_origins: Vec<String>,
    /// Seconds a client has to send a request's head, counted from when the connection opens
    /// or the previous response ends (so also how long an idle keep-alive connection stays).
    pub header_timeout: f64,
    /// Seconds a request body may go without data, or a response may wait for the client to
    /// take any of it, before the connection is closed. Waiting for media (blocking playlist
    /// reloads) does not count: then nothing is waiting on the client.
    pub body_timeout: f64,
    /// Connections served at once; more wait in the listen queue. Lowered at start to stay
    /// under the open-file limit, keeping descriptors for cameras and files.
    pub max_connections: usize,
    /// Where streams added, changed or removed through the API are saved so they survive a
    /// restart (see [`crate::state_file`]).
    pub state_file: StateFileSetting,
}

/// `server.state_file`: where streams changed through the API are saved.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StateFileSetting {
    /// Not written in the file: `sluice-streams.yaml` next to the config file, or in the
    /// working directory without one.
    #[default]
    Default,
    /// `null`: nothing is saved; changes through the API last until the server stops.
    Off,
    /// This file; a relative path is taken from the config file's directory.
    Path(PathBuf),
}

impl<'de> Deserialize<'de> for StateFileSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<PathBuf>::deserialize(d)? {
            None => StateFileSetting::Off,
            Some(path) => StateFileSetting::Path(path),
        })
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8640)),
            api_token: None,
            record_dirs: vec![PathBuf::from("./recordings")],
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            header_timeout: 30.0,
            body_timeout: 60.0,
            max_connections: 1024,
            state_file: StateFileSetting::Default,
        }
    }
}

impl ServerConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), Problem> {
        for (key, v) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            if !(v.is_finite() && (0.1..=3600.0).contains(&v)) {
                return Err(Problem::new(
                    format!("server.{key}"),
                    format!("{v} is outside 0.1..=3600 seconds"),
                ));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(Problem::new(
                "server.max_connections",
                format!("{} is outside 1..=1000000", self.max_connections),
            ));
        }
        for host in &self.allowed_hosts {
            crate::site::check_allowed_host(host)
                .map_err(|m| Problem::new("server.allowed_hosts", m))?;
        }
        for origin in &self.allowed_origins {
            crate::site::parse_allowed_origin(origin)
                .map_err(|m| Problem::new("server.allowed_origins", m))?;
        }
        if let StateFileSetting::Path(path) = &self.state_file
            && (path.as_os_str().is_empty() || path.file_name().is_none())
        {
            return Err(Problem::new(
                "server.state_file",
                format!(
                    "{:?} is not a file path: name a file, or write null to save nothing",
                    path.display()
                ),
            ));
        }
        Ok(())
    }
}

/// `hls:` section.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(from = "HlsSection")]
pub struct HlsConfig {
    /// Low-latency HLS (parts, blocking reload). Off serves plain HLS for old players.
    pub ll_hls: bool,
    /// Target segment duration in seconds; segments are cut on the first keyframe after
    /// `segment_duration - 0.1` seconds.
    pub segment_duration: f64,
    /// Part target duration in seconds (LL-HLS).
    pub part_duration: f64,
    /// Complete segments kept in memory per stream (the playlist window).
    pub segments: usize,
    /// Seconds without a segment or part request after which an HLS output is idle.
    pub idle_timeout: f64,
    /// Complete segments (plus the first part of the next) a cold stream must have before its
    /// first playlist is answered. Three is what every mainstream player needs: Chromium's
    /// native HLS (156) fails a first live playlist with fewer (`DEMUXER_ERROR_COULD_NOT_PARSE`,
    /// measured on cold streams: 2 fails every time, 3 plays), and GStreamer's `hlsdemux2`
    /// (1.22) cannot match its second playlist against a first one that holds a single
    /// segment and stalls for good. hls.js, Safari, Shaka, ffmpeg and VLC start on one: set 1
    /// for the fastest start when only those are used (two GOPs sooner).
    pub startup_segments: usize,
    /// Mark a camera restart whose codec parameters did not change with `EXT-X-DISCONTINUITY`
    /// (on by default; a restart with new parameters, a new init segment, is always marked).
    /// RFC 8216bis recommends the tag for a new encoding sequence, and it tells players that
    /// `EXT-X-PROGRAM-DATE-TIME` jumps by the outage while media time goes on (Shaka Player
    /// places segments by date and jumps that gap). Off keeps VLC (3.0) playing across camera
    /// restarts: it stops for good at any discontinuity in fMP4 HLS, because its adaptive
    /// demuxer restarts the MP4 demuxer after the tag without sending the init segment again
    /// ("no moov before mdat"). The output timeline continues across restarts either way.
    pub restart_discontinuity: bool,
}

/// The `hls:` section as written: [`HlsConfig`] plus the keys that moved out of it, which are
/// rejected with a message saying where they went.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HlsSection {
    ll_hls: bool,
    segment_duration: f64,
    part_duration: f64,
    segments: usize,
    idle_timeout: f64,
    startup_segments: usize,
    restart_discontinuity: bool,
    #[serde(deserialize_with = "moved::max_timestamp_gap")]
    max_timestamp_gap: Option<Moved>,
    #[serde(deserialize_with = "moved::restart_increment")]
    restart_increment: Option<Moved>,
    #[serde(deserialize_with = "moved::restart_reset")]
    restart_reset: Option<Moved>,
}

impl Default for HlsSection {
    fn default() -> Self {
        let d = HlsConfig::default();
        HlsSection {
            ll_hls: d.ll_hls,
            segment_duration: d.segment_duration,
            part_duration: d.part_duration,
            segments: d.segments,
            idle_timeout: d.idle_timeout,
            startup_segments: d.startup_segments,
            restart_discontinuity: d.restart_discontinuity,
            max_timestamp_gap: None,
            restart_increment: None,
            restart_reset: None,
        }
    }
}

impl From<HlsSection> for HlsConfig {
    fn from(s: HlsSection) -> Self {
        // Always `None`: a key that moved fails to deserialize.
        let _moved = (s.max_timestamp_gap, s.restart_increment, s.restart_reset);
        HlsConfig {
            ll_hls: s.ll_hls,
            segment_duration: s.segment_duration,
            part_duration: s.part_duration,
            segments: s.segments,
            idle_timeout: s.idle_timeout,
            startup_segments: s.startup_segments,
            restart_discontinuity: s.restart_discontinuity,
        }
    }
}

/// A key that moved out of `hls:`: any value is an error that says where it went.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Moved;

/// What a key that moved says (see [`with_line`], which finds its line).
const MOVED: &str = "moved to the `ingest:` section: write it there";

macro_rules! moved_keys {
    ($($key:ident),*) => {
        mod moved {
            $(
                pub(super) fn $key<'de, D: serde::Deserializer<'de>>(
                    _: D,
                ) -> Result<Option<super::Moved>, D::Error> {
                    Err(serde::de::Error::custom(format!(
                        "hls.{} {} as ingest.{}",
                        stringify!($key),
                        super::MOVED,
                        stringify!($key)
                    )))
                }
            )*
        }
    };
}

moved_keys!(max_timestamp_gap, restart_increment, restart_reset);

/// `ingest:` section: how every stream's source is run.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// A timestamp jump larger than this many seconds is rebased and marked as a discontinuity.
    pub max_timestamp_gap: f64,
    /// After a failed run, the restart delay grows by this many seconds per consecutive failure.
    pub restart_increment: f64,
    /// A run that lasted longer than this many seconds resets the restart delay.
    pub restart_reset: f64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_timestamp_gap: 10.0,
            restart_increment: 10.0,
            restart_reset: 300.0,
        }
    }
}

impl IngestConfig {
    /// Checks every value's range; the error names the key.
    pub fn validate(&self) -> Result<(), Problem> {
        let range = |key: &str, v, lo, hi| in_range("ingest", key, v, lo, hi);
        range("max_timestamp_gap", self.max_timestamp_gap, 1.0, 3600.0)?;
        // A floor: 0 would reconnect to a failing camera hundreds of times a second.
        range("restart_increment", self.restart_increment, 0.5, 3600.0)?;
        range("restart_reset", self.restart_reset, 0.0, 86_400.0)
    }
}

/// Checks that `section.key`'s value `v` is a number within `lo..=hi`.
fn in_range(section: &str, key: &str, v: f64, lo: f64, hi: f64) -> Result<(), Problem> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Problem::new(
            format!("{section}.{key}"),
            format!("{v} is outside {lo}..={hi}"),
        ))
    }
}

/// A value that cannot be used: its dotted key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Problem {
    /// The dotted key, e.g. `hls.part_duration` (relative to the entry for a stream's options).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same problem with its key under `prefix`.
    fn under(self, prefix: &str) -> Problem {
        Problem::new(format!("{prefix}.{}", self.key), self.message)
    }
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            ll_hls: true,
            segment_duration: 1.0,
            part_duration: 0.25,
            segments: 7,
            idle_timeout: 300.0,
            startup_segments: 3,
            restart_discontinuity: true,
        }
    }
}

/// One entry of `streams:` (also what the state file holds, see [`crate::state_file`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Source URL: `rtsp://…`, `file:///path.mp4`, or `builtin:demo`.
    pub source: String,
    /// RTSP transport: `auto`, `tcp` or `udp`.
    #[serde(default)]
    pub transport: Transport,
    /// Keep the stream running (and restarted with backoff) without viewers.
    #[serde(default)]
    pub preload: bool,
    /// EXIF orientation 1..=8 applied through the MP4 transformation matrix.
    #[serde(default = "default_orientation")]
    pub orientation: u8,
    /// Seconds allowed for connecting (RTSP DESCRIBE/SETUP/PLAY).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: f64,
    /// Seconds without a video frame after which a run ends with a timeout.
    #[serde(default = "default_stall_timeout")]
    pub stall_timeout: f64,
}

fn default_orientation() -> u8 {
    1
}

fn default_connect_timeout() -> f64 {
    30.0
}

fn default_stall_timeout() -> f64 {
    5.0
}

impl StreamConfig {
    /// A stream entry with default options.
    pub fn new(source: impl Into<String>) -> Self {
        StreamConfig {
            source: source.into(),
            transport: Transport::Auto,
            preload: false,
            orientation: default_orientation(),
            connect_timeout: default_connect_timeout(),
            stall_timeout: default_stall_timeout(),
        }
    }

    /// The options sources take.
    pub fn source_options(&self) -> SourceOptions {
        SourceOptions {
            transport: self.transport,
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            stall_timeout: Duration::from_secs_f64(self.stall_timeout),
        }
    }
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause (part of the message, so not also reported as a source).
        error: std::io::Error,
    },
    /// YAML syntax, a wrong type, or an unknown key.
    #[error("{path}: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// serde's message, which names the key, line and column.
        message: String,
    },
    /// A value out of range or a bad URL.
    #[error("{path}: {key}: {message} at line {line}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// The dotted key, e.g. `hls.part_duration`.
        key: String,
        /// What is wrong.
        message: String,
        /// The 1-based line of the key in the file (0 when the key is not written there).
        line: usize,
    },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |error| ConfigError::Read {
            path: path.to_owned(),
            error,
        };
        let data =
            crate::read_bounded::read_regular_file(path, MAX_CONFIG_BYTES).map_err(
                |e| match e {
                    crate::read_bounded::ReadError::Io(e) => read_error(e),
                    other => read_error(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        other.to_string(),
                    )),
                },
            )?;
        let text = String::from_utf8(data).map_err(|_| {
            read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not UTF-8 text",
            ))
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                // serde echoes values ("invalid type: string \"rtsp://user:pass@…\""), so the
                // message is redacted before it can reach a terminal or a log.
                message: crate::redact::redact_text(&with_line(e.to_string(), text)).into_owned(),
            })?
        };
        config.validate().map_err(|p| ConfigError::Invalid {
            path: path.to_owned(),
            line: line_of(text, &p.key),
            key: p.key,
            message: p.message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Problem> {
        self.server.validate()?;
        self.hls.validate()?;
        self.ingest.validate()?;
        validate_streams(&self.streams)
    }
}

/// Checks every stream's name and entry; the error's key is `streams.NAME[.KEY]`.
pub(crate) fn validate_streams(streams: &BTreeMap<String, StreamConfig>) -> Result<(), Problem> {
    for (name, stream) in streams {
        validate_name(name).map_err(|m| Problem::new(format!("streams.{name}"), m))?;
        stream
            .validate()
            .map_err(|p| p.under(&format!("streams.{name}")))?;
    }
    Ok(())
}

impl HlsConfig {
    /// Checks every value's range; the error names the key.
    pub fn validate(&self) -> Result<(), Problem> {
        let range = |key: &str, v, lo, hi| in_range("hls", key, v, lo, hi);
        range("segment_duration", self.segment_duration, 0.5, 10.0)?;
        range("part_duration", self.part_duration, 0.1, 2.0)?;
        range("idle_timeout", self.idle_timeout, 1.0, 86_400.0)?;
        if self.part_duration > self.segment_duration {
            return Err(Problem::new(
                "hls.part_duration",
                format!(
                    "{} is longer than hls.segment_duration ({})",
                    self.part_duration, self.segment_duration
                ),
            ));
        }
        if !(1..=self.segments).contains(&self.startup_segments) {
            return Err(Problem::new(
                "hls.startup_segments",
                format!(
                    "{} is outside 1..=hls.segments ({})",
                    self.startup_segments, self.segments
                ),
            ));
        }
        if !(2..=100).contains(&self.segments) {
            return Err(Problem::new(
                "hls.segments",
                format!("{} is outside 2..=100", self.segments),
            ));
        }
        Ok(())
    }
}

impl StreamConfig {
    /// Checks the source URL and the options; the error names the key.
    pub fn validate(&self) -> Result<(), Problem> {
        SourceSpec::parse(&self.source).map_err(|e| Problem::new("source", e.to_string()))?;
        for (key, v) in [
            ("connect_timeout", self.connect_timeout),
            ("stall_timeout", self.stall_timeout),
        ] {
            if !(v.is_finite() && (0.1..=3600.0).contains(&v)) {
                return Err(Problem::new(
                    key,
                    format!("{v} is outside 0.1..=3600 seconds"),
                ));
            }
        }
        if !(1..=8).contains(&self.orientation) {
            return Err(Problem::new(
                "orientation",
                format!("{} is not an EXIF orientation (1..=8)", self.orientation),
            ));
        }
        Ok(())
    }
}

/// serde's message, with the line of the unknown key added where serde gives no location
/// (unknown keys at the top level), and a duplicate stream's line instead of its map's.
fn with_line(message: String, text: &str) -> String {
    // A key that moved: serde places the error at its section; name the key's own line.
    if let Some(key) = message
        .split(": hls.")
        .nth(1)
        .filter(|_| message.contains(MOVED))
        .and_then(|rest| rest.split(' ').next())
    {
        let line = line_of(text, &format!("hls.{key}"));
        let head = message.split(" at line ").next().unwrap_or(&message);
        let head = head.replacen("hls: hls.", "hls.", 1);
        return format!("{head} at line {line}");
    }
    if let Some(name) = message
        .split("duplicate stream name \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
    {
        let second = text
            .lines()
            .enumerate()
            .filter(|(_, line)| {
                let code = line.trim_start().trim_start_matches(['"', '\'']);
                code.strip_prefix(name)
                    .is_some_and(|r| r.trim_start_matches(['"', '\'']).starts_with(':'))
            })
            .nth(1);
        if let (Some((i, _)), Some(at)) = (second, message.find(" at line ")) {
            return format!("{} at line {}", &message[..at], i + 1);
        }
    }
    if message.contains(" at line ") {
        return message;
    }
    let field = message
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    match field.map(|f| line_of(text, f)) {
        Some(line) if line > 0 => format!("{message} at line {line}"),
        _ => message,
    }
}

/// The 1-based line where a dotted key (`streams.cam.source`) is written, found by following
/// its segments through the text in order; block and flow mappings both work. 0 if not found
/// (a value left at its default).
pub(crate) fn line_of(text: &str, key: &str) -> usize {
    let mut from = 0;
    let mut found = 0;
    for segment in key.split('.') {
        let hit = text.lines().enumerate().skip(from).find(|(_, line)| {
            let code = line.split(" #").next().unwrap_or(line);
            code.match_indices(segment).any(|(at, _)| {
                let quote = |c: char| matches!(c, '"' | '\'');
                let before = code[..at].trim_end_matches(quote).trim_end();
                let after = code[at + segment.len()..]
                    .trim_start_matches(quote)
                    .trim_start();
                after.starts_with(':') && (before.is_empty() || before.ends_with(['{', ',']))
            })
        });
        match hit {
            Some((i, _)) => {
                from = i;
                found = i + 1;
            }
            None => return 0,
        }
    }
    found
}

/// Stream names appear in URLs and metric labels: letters, digits, `_` and `-`, 1 to 64.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid stream name {name:?}: use 1 to 64 letters, digits, '_' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Config::parse(text, Path::new("sluice.yaml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        assert_eq!(
            error("hls:\n  ll_hls: true\n  part_duraton: 0.3\n"),
            "sluice.yaml: hls: unknown field `part_duraton`, expected one of `ll_hls`, \
             `segment_duration`, `part_duration`, `segments`, `idle_timeout`, \
             `startup_segments`, `restart_discontinuity`, `max_timestamp_gap`, \
             `restart_increment`, `restart_reset` at line 3 column 3"
        );
        assert_eq!(
            error("streams:\n  cam: { source: \"builtin:demo\", prelod: true }\n"),
            "sluice.yaml: streams.cam: unknown field `prelod`, expected one of `source`, \
             `transport`, `preload`, `orientation`, `connect_timeout`, `stall_timeout` \
             at line 2 column 34"
        );
        assert_eq!(
            error("servr: {}\n"),
            "sluice.yaml: unknown field `servr`, expected one of `server`, `hls`, `ingest`, \
             `streams` at line 1"
        );
    }

    #[test]
    fn keys_that_moved_to_ingest_say_where_they_went() {
        for key in ["restart_increment", "restart_reset", "max_timestamp_gap"] {
            assert_eq!(
                error(&format!("hls:\n  segments: 7\n  {key}: 1\n")),
                format!(
                    "sluice.yaml: hls.{key} moved to the `ingest:` section: write it there as \
                     ingest.{key} at line 3"
                )
            );
        }
        let c = Config::parse(
            "ingest: { restart_increment: 2, restart_reset: 60, max_timestamp_gap: 5 }\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(
            (
                c.ingest.restart_increment,
                c.ingest.restart_reset,
                c.ingest.max_timestamp_gap
            ),
            (2.0, 60.0, 5.0)
        );
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        assert_eq!(
            error("hls:\n  segments: \"x\"\n"),
            "sluice.yaml: hls.segments: invalid type: string \"x\", expected usize at line 2 column 13"
        );
        assert_eq!(
            error("server: {}\nhls:\n  segment_duration: 1\n  part_duration: 5\n"),
            "sluice.yaml: hls.part_duration: 5 is outside 0.1..=2 at line 4"
        );
        assert_eq!(
            error(
                "streams:\n  front:\n    source: \"rtsp://cam/1\"\n  back:\n    source: \"htp:/x\"\n"
            ),
            "sluice.yaml: streams.back.source: unsupported source scheme \"htp\" in \"htp:/x\": \
             use rtsp://, file:// or builtin:demo at line 5"
        );
        assert_eq!(
            error("streams:\n  cam: { source: \"rtsp://u:secret@cam/1\", orientation: 9 }\n"),
            "sluice.yaml: streams.cam.orientation: 9 is not an EXIF orientation (1..=8) at line 2"
        );
        assert_eq!(
            error("streams:\n  cam: { source: \"rtsps://u:secret@cam/1\" }\n"),
            "sluice.yaml: streams.cam.source: \"rtsps://****:****@cam/1\": rtsps:// (RTSP over \
             TLS) is not supported yet (the RTSP client, retina, has no TLS); use the camera's \
             rtsp:// URL on a trusted network at line 2"
        );
        assert_eq!(
            error("streams:\n  \"bad name\": { source: \"builtin:demo\" }\n"),
            "sluice.yaml: streams.bad name: invalid stream name \"bad name\": use 1 to 64 \
             letters, digits, '_' or '-' at line 2"
        );
    }

    #[test]
    fn duplicate_names_floors_and_secrets_in_errors() {
        let e = error(
            "streams:\n  cam: { source: \"builtin:demo\" }\n  cam: { source: \"rtsp://x/1\" }\n",
        );
        assert!(e.contains("duplicate stream name \"cam\""), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert_eq!(
            error("ingest:\n  restart_increment: 0\n"),
            "sluice.yaml: ingest.restart_increment: 0 is outside 0.5..=3600 at line 2"
        );
        // serde echoes the value of a wrongly typed entry: the password must not be in it.
        let e = error("streams:\n  cam: \"rtsp://admin:hunter22@cam/1?token=tok3n\"\n");
        assert!(e.contains("invalid type"), "{e}");
        assert!(!e.contains("hunter22") && !e.contains("tok3n"), "{e}");
    }

    #[test]
    fn config_files_are_bounded() {
        let e = Config::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn server_values_name_the_key_and_line() {
        assert_eq!(
            error("server:\n  listen: \"127.0.0.1:0\"\n  header_timeout: 0\n"),
            "sluice.yaml: server.header_timeout: 0 is outside 0.1..=3600 seconds at line 3"
        );
        assert_eq!(
            error("server: { body_timeout: .nan }\n"),
            "sluice.yaml: server.body_timeout: NaN is outside 0.1..=3600 seconds at line 1"
        );
        assert_eq!(
            error("server:\n  max_connections: 0\n"),
            "sluice.yaml: server.max_connections: 0 is outside 1..=1000000 at line 2"
        );
        assert_eq!(
            error("server:\n  allowed_hosts: [\"nvr.lan:8640\"]\n"),
            "sluice.yaml: server.allowed_hosts: \"nvr.lan:8640\" is not a host name: write the \
             name alone (\"nvr.example.com\", no scheme or port), or \"*\" to allow any at line 2"
        );
        assert_eq!(
            error("server:\n  allowed_origins:\n    - ha.example.com\n"),
            "sluice.yaml: server.allowed_origins: \"ha.example.com\" is not an origin: write \
             scheme://host[:port] as the browser shows it, e.g. \"https://ha.example.com:8123\" \
             at line 2"
        );
        let c = Config::parse(
            "server:\n  allowed_hosts: [nvr.lan, \"*\"]\n  allowed_origins: [\"https://ha.lan:8123\"]\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.server.allowed_hosts, ["nvr.lan", "*"]);
        assert_eq!(c.server.header_timeout, 30.0);
        assert_eq!(c.server.max_connections, 1024);
    }

    #[test]
    fn empty_file_is_the_default_config() {
        assert_eq!(
            Config::parse("", Path::new("x")).unwrap(),
            Config::default()
        );
        let c = Config::parse("hls: { ll_hls: false }\n", Path::new("x")).unwrap();
        assert!(!c.hls.ll_hls);
        assert_eq!(c.hls.segments, 7);
    }
}

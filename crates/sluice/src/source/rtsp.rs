//! The RTSP source, on retina: H.264/H.265 video and AAC audio over TCP or UDP.
//!
//! retina handles the long tail of camera quirks; this module adds what it leaves to callers:
//! handshake and stall timeouts, TCP→UDP fallback, typed errors, and the mapping of retina's
//! frames onto [`Frame`]s. Credentials come from the URL but travel only in retina's
//! `SessionOptions::creds`; the URL handed to retina and every message carry none.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions,
    TcpTransportOptions, Transport as RetinaTransport, UdpTransportOptions,
};
use retina::codec::{
    CodecItem, FrameFormat, ParameterSetInsertion, ParametersRef, VideoParametersCodec,
};
use sluice_media::{Codec, Frame, Track};
use tracing::{debug, info, warn};
use url::Url;

use super::rtsp_guard::Guard;
use super::{ErrorKind, SourceError, SourceEvent, SourceOptions, Transport};

/// An RTSP URL split into the credential-free URL retina connects to and the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    /// The URL without user info.
    pub url: Url,
    /// Percent-decoded user and password, if the URL had them.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspUrl")
            .field("url", &self.url.as_str())
            .field("credentials", &self.credentials.as_ref().map(|_| "****"))
            .finish()
    }
}

impl RtspUrl {
    /// Splits a parsed `rtsp://` URL.
    pub fn new(mut url: Url) -> Result<RtspUrl, SourceError> {
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SourceError::new(
                ErrorKind::InvalidUrl,
                "RTSP URL has no host",
            ));
        }
        let decode = |s: &str| {
            crate::redact::percent_decode(s).ok_or_else(|| {
                SourceError::new(
                    ErrorKind::InvalidUrl,
                    "RTSP URL credentials are not valid percent-encoded UTF-8",
                )
            })
        };
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = decode(url.username())?;
            let pass = decode(url.password().unwrap_or(""))?;
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some((user, pass))
        };
        Ok(RtspUrl { url, credentials })
    }
}

/// Items kept while waiting for in-band parameter sets (about 10 s of 30 fps video with audio).
const MAX_EARLY_ITEMS: usize = 600;

/// A playing RTSP session.
pub struct RtspSource {
    demuxed: Demuxed,
    /// The relay retina reads the camera through; it lives as long as the session.
    guard: Guard,
    /// retina stream index → our track index.
    map: Vec<Option<usize>>,
    tracks: Vec<Track>,
    pending: VecDeque<SourceEvent>,
    stall_timeout: Duration,
    /// When the run ends unless a video frame arrives first: `stall_timeout` after the last
    /// one. Audio and RTCP do not move it: segments are cut on video, so a camera whose video
    /// encoder died while its audio goes on would otherwise hold a run that serves nothing
    /// (and queue its audio) forever.
    video_deadline: tokio::time::Instant,
}

impl RtspSource {
    /// Connects (DESCRIBE, SETUP, PLAY) within the handshake timeout, falling back from TCP to
    /// UDP under `Transport::Auto` when the camera refuses interleaved TCP.
    /// RTSP sessions join `group` (when given) so shutdown can wait for their TEARDOWN.
    pub async fn open(
        url: &RtspUrl,
        options: &SourceOptions,
        group: Option<&Arc<SessionGroup>>,
    ) -> Result<(RtspSource, Vec<Track>), SourceError> {
        let attempt = |transport| async move {
            tokio::time::timeout(
                options.connect_timeout,
                connect(url, transport, options, group),
            )
                .await
                .unwrap_or_else(|_| {
                    Err(SourceError::new(
                        ErrorKind::Timeout,
                        format!(
                            "no answer to DESCRIBE/SETUP/PLAY within {} s: check that the camera is up and the URL is right",
                            options.connect_timeout.as_secs_f64()
                        ),
                    ))
                })
        };
        match options.transport {
            Transport::Tcp => attempt(Tcp).await,
            Transport::Udp => attempt(Udp).await,
            Transport::Auto => match attempt(Tcp).await {
                Err(e) if e.kind == ErrorKind::TransportRefused => {
                    info!("camera refused RTSP over TCP; falling back to UDP");
                    attempt(Udp).await
                }
                other => other,
            },
        }
    }

    /// The next frame; an error once `stall_timeout` passed without a video frame.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(event);
        }
        loop {
            let item = tokio::time::timeout_at(self.video_deadline, self.demuxed.next())
                .await
                .map_err(|_| {
                    SourceError::new(
                        ErrorKind::Timeout,
                        format!(
                            "no video frame from the camera for {} s",
                            self.stall_timeout.as_secs_f64()
                        ),
                    )
                })?;
            let item = match item {
                None => {
                    return Err(self.guard.failure().unwrap_or_else(|| {
                        SourceError::new(ErrorKind::Ended, "the camera ended the RTSP session")
                    }));
                }
                Some(Err(e)) => return Err(self.fail(&e)),
                Some(Ok(item)) => item,
            };
            if let Some(event) = self.convert(item)? {
                return Ok(event);
            }
        }
    }

    /// Maps a retina item to an event; parameter changes queue a `Tracks` event first.
    fn convert(&mut self, item: CodecItem) -> Result<Option<SourceEvent>, SourceError> {
        match item {
            CodecItem::VideoFrame(frame) => {
                let Some(track) = self.map.get(frame.stream_id()).copied().flatten() else {
                    return Ok(None);
                };
                if frame.loss() > 0 {
                    debug!(lost = frame.loss(), "RTP packets lost before a video frame");
                }
                self.video_deadline = tokio::time::Instant::now() + self.stall_timeout;
                let new_parameters = frame.has_new_parameters();
                let ts = frame.timestamp().elapsed();
                let retina_keyframe = frame.is_random_access_point();
                let data = Bytes::from(frame.into_data());
                // Quirk: retina flags only IDR pictures as random access points in H.265, but
                // CRA and BLA pictures are IRAPs too; x265 (open GOP) and some cameras send
                // CRA keyframes, which would otherwise never start a segment.
                let keyframe = retina_keyframe
                    || (self.tracks[track].codec() == Codec::H265 && has_h265_irap(&data));
                let out = Frame {
                    track,
                    dts: ts,
                    pts: ts,
                    duration: None,
                    keyframe,
                    data,
                };
                if new_parameters {
                    let stream = &self.demuxed.streams()[self.stream_of(track)];
                    if let Some(ParametersRef::Video(params)) = stream.parameters() {
                        self.tracks[track] = video_track(params, stream.clock_rate_hz())?;
                        info!(codec = %self.tracks[track].codec_string(), "video parameters changed");
                        self.pending.push_back(SourceEvent::Frame(out));
                        return Ok(Some(SourceEvent::Tracks(self.tracks.clone())));
                    }
                }
                Ok(Some(SourceEvent::Frame(out)))
            }
            CodecItem::AudioFrame(frame) => {
                let Some(track) = self.map.get(frame.stream_id()).copied().flatten() else {
                    return Ok(None);
                };
                let ts = frame.timestamp().elapsed();
                Ok(Some(SourceEvent::Frame(Frame {
                    track,
                    dts: ts,
                    pts: ts,
                    duration: Some(frame.frame_length().get()),
                    keyframe: true,
                    data: Bytes::copy_from_slice(frame.data()),
                })))
            }
            _ => Ok(None),
        }
    }

    /// A retina error, or the relay's reason when the relay closed the connection.
    fn fail(&self, e: &retina::Error) -> SourceError {
        self.guard.failure().unwrap_or_else(|| map_error(e))
    }

    fn stream_of(&self, track: usize) -> usize {
        self.map.iter().position(|t| *t == Some(track)).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug)]
enum Proto {
    Tcp,
    Udp,
}
use Proto::{Tcp, Udp};

async fn connect(
    url: &RtspUrl,
    proto: Proto,
    options: &SourceOptions,
    group: Option<&Arc<SessionGroup>>,
) -> Result<(RtspSource, Vec<Track>), SourceError> {
    let creds = url.credentials.as_ref().map(|(u, p)| Credentials {
        username: u.clone(),
        password: p.clone(),
    });
    let mut session_options = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("Sluice/{}", env!("CARGO_PKG_VERSION")));
    if let Some(group) = group {
        session_options = session_options.session_group(Arc::clone(group));
    }
    // retina talks to the camera through the bounded relay (see `rtsp_guard`).
    let guard = Guard::start(&url.url).await?;
    let fail = |e: &retina::Error| guard.failure().unwrap_or_else(|| map_error(e));
    let mut session = Session::describe(guard.url.clone(), session_options)
        .await
        .map_err(|e| fail(&e))?;

    let mut video = None;
    let mut audio = None;
    for (i, stream) in session.streams().iter().enumerate() {
        match (stream.media(), stream.encoding_name()) {
            ("video", "h264" | "h265") if video.is_none() => video = Some(i),
            ("audio", "mpeg4-generic") if audio.is_none() => audio = Some(i),
            ("video", other) if video.is_none() => {
                warn!("ignoring video track with unsupported codec {other:?}");
            }
            ("audio", other) => {
                info!(
                    "dropping audio track with codec {other:?}: only AAC can be remuxed to HLS; video keeps flowing"
                );
            }
            _ => {}
        }
    }
    let Some(video) = video else {
        let found: Vec<String> = session
            .streams()
            .iter()
            .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
            .collect();
        return Err(SourceError::new(
            ErrorKind::UnsupportedCodec,
            format!(
                "no H.264 or H.265 video track (the camera offers: {}); set the camera's stream to H.264 or H.265",
                found.join(", ")
            ),
        ));
    };
    let transport = match proto {
        Tcp => RetinaTransport::Tcp(TcpTransportOptions::default()),
        Udp => RetinaTransport::Udp(UdpTransportOptions::default()),
    };
    let h264 = session.streams()[video].encoding_name() == "h264";
    for i in std::iter::once(video).chain(audio) {
        let setup = SetupOptions::default()
            .transport(transport.clone())
            .frame_format(frame_format(i == video && h264));
        session.setup(i, setup).await.map_err(|e| {
            let mapped = fail(&e);
            // 461 Unsupported Transport: the camera wants another transport.
            if e.status_code() == Some(461) {
                SourceError::new(ErrorKind::TransportRefused, mapped.message)
            } else {
                mapped
            }
        })?;
    }
    let playing = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| fail(&e))?;
    let demuxed = playing.demuxed().map_err(|e| fail(&e))?;

    let mut map = vec![None; demuxed.streams().len()];
    map[video] = Some(0);
    if let Some(a) = audio {
        map[a] = Some(1);
    }
    let mut source = RtspSource {
        demuxed,
        guard,
        map,
        tracks: Vec::new(),
        pending: VecDeque::new(),
        stall_timeout: options.stall_timeout,
        video_deadline: tokio::time::Instant::now() + options.stall_timeout,
    };
    // Video parameters are usually known from the SDP; some cameras only send them in band,
    // so wait for the first frame that carries them.
    // The wait is bounded as a whole (frames that keep arriving without parameters do not
    // extend it) and so is what it buffers.
    let mut early = Vec::new();
    let deadline = tokio::time::Instant::now() + options.stall_timeout;
    let video_params = loop {
        let stream = &source.demuxed.streams()[video];
        if let Some(ParametersRef::Video(p)) = stream.parameters() {
            break video_track(p, stream.clock_rate_hz())?;
        }
        let item = match tokio::time::timeout_at(deadline, source.demuxed.next()).await {
            Ok(item) if early.len() < MAX_EARLY_ITEMS => item,
            // Media flows but none of it says how to decode it.
            _ if !early.is_empty() => {
                return Err(SourceError::new(
                    ErrorKind::InvalidData,
                    format!(
                        "the camera sends video without usable parameter sets: the SDP's \
                         sprop-parameter-sets are missing or invalid and no SPS/PPS came in band \
                         within {} s; check the camera's codec settings",
                        options.stall_timeout.as_secs_f64()
                    ),
                ));
            }
            _ => {
                return Err(SourceError::new(
                    ErrorKind::Timeout,
                    "the camera sent no video after PLAY",
                ));
            }
        };
        match item {
            Some(Ok(item)) => early.push(item),
            Some(Err(e)) => return Err(source.fail(&e)),
            None => {
                return Err(source.guard.failure().unwrap_or_else(|| {
                    SourceError::new(
                        ErrorKind::Ended,
                        "the camera ended the session before sending video",
                    )
                }));
            }
        }
    };
    source.tracks.push(video_params);
    if let Some(a) = audio {
        let stream = &source.demuxed.streams()[a];
        match stream.parameters() {
            Some(ParametersRef::Audio(p)) => {
                match Track::aac(Bytes::copy_from_slice(p.extra_data())) {
                    Ok(t) => source.tracks.push(t),
                    Err(e) => {
                        warn!("dropping AAC track: {e}");
                        source.map[a] = None;
                    }
                }
            }
            _ => {
                warn!("dropping AAC track without an AudioSpecificConfig");
                source.map[a] = None;
            }
        }
    }
    // Items that arrived while waiting for parameters are replayed in order (their parameters
    // are the ones just read, so no Tracks event is needed for them).
    for item in early {
        if let Some(event) = source.convert(item)? {
            match event {
                SourceEvent::Tracks(_) => {}
                other => source.pending.push_back(other),
            }
        }
    }
    let tracks = source.tracks.clone();
    Ok((source, tracks))
}

/// How retina frames the camera's media: length-prefixed NAL units and raw AAC, as MP4 wants.
///
/// H.264 keyframes keep their SPS and PPS in band, as cameras send them and as the reference's
/// ffmpeg remux leaves them, besides the copy in the `avc1` sample entry. Quirk: ffmpeg's HLS
/// demuxer (and so ffplay, mpv and ffmpeg-based recorders) does not apply a new `EXT-X-MAP`;
/// its MP4 reader skips the second `moov` ("Found duplicated MOOV Atom"), so after a camera
/// restarted with another resolution it would decode with the old parameters, as garbage,
/// unless the keyframes carry the new ones. H.265 stays out of band: an `hvc1` sample entry
/// (what Apple requires) has `array_completeness` 1, meaning no parameter set is in the stream
/// (ISO/IEC 14496-15).
fn frame_format(h264_video: bool) -> FrameFormat {
    if h264_video {
        FrameFormat {
            parameter_set_insertion: ParameterSetInsertion::EachKeyFrame,
            ..FrameFormat::MP4
        }
    } else {
        FrameFormat::MP4
    }
}

/// Whether a length-prefixed H.265 access unit holds an IRAP picture (NAL unit types 16..=23:
/// BLA, IDR, CRA).
fn has_h265_irap(au: &[u8]) -> bool {
    let mut pos = 0usize;
    while let Some(len) = au.get(pos..pos + 4) {
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if let Some(&header) = au.get(pos + 4)
            && (16..=23).contains(&((header >> 1) & 0x3f))
        {
            return true;
        }
        pos = pos.saturating_add(4).saturating_add(len);
    }
    false
}

/// A [`Track`] from retina's video parameters.
fn video_track(
    params: &retina::codec::VideoParameters,
    clock_rate: u32,
) -> Result<Track, SourceError> {
    let (w, h) = params.pixel_dimensions();
    let (w, h) = (
        u16::try_from(w).unwrap_or(u16::MAX),
        u16::try_from(h).unwrap_or(u16::MAX),
    );
    let config = Bytes::copy_from_slice(params.extra_data());
    match params.codec_params() {
        VideoParametersCodec::H264 { .. } => Track::h264(config, clock_rate, w, h),
        VideoParametersCodec::H265 { .. } => Track::h265(config, clock_rate, w, h),
        _ => {
            return Err(SourceError::new(
                ErrorKind::UnsupportedCodec,
                "video codec cannot be remuxed to HLS",
            ));
        }
    }
    .map_err(|e| {
        SourceError::new(
            ErrorKind::InvalidData,
            format!("camera video parameters: {e}"),
        )
    })
}

/// Maps a retina error to a typed cause with a message a user can act on. retina's messages
/// carry connection context on later lines; only the first line is kept.
fn map_error(e: &retina::Error) -> SourceError {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("RTSP error").to_string();
    if let Some(status) = e.status_code() {
        let (kind, hint) = match status {
            401 => (
                ErrorKind::Unauthorized,
                "the camera rejected the credentials: check the user and password in the URL",
            ),
            403 => (ErrorKind::Unauthorized, "the camera forbids this user"),
            404 => (
                ErrorKind::NotFound,
                "the camera has no stream at this path: check the URL's path",
            ),
            461 => (
                ErrorKind::TransportRefused,
                "the camera refused the transport",
            ),
            _ => (ErrorKind::InvalidData, "the camera answered with an error"),
        };
        return SourceError::new(kind, format!("{hint} ({first})"));
    }
    // retina's error is opaque beyond the status code: classify by its message.
    let lower = first.to_ascii_lowercase();
    if lower.contains("connection refused") {
        SourceError::new(
            ErrorKind::Refused,
            format!("connection refused: nothing listens on the camera's RTSP port ({first})"),
        )
    } else if lower.contains("timed out") {
        SourceError::new(
            ErrorKind::Timeout,
            format!("the camera timed out ({first})"),
        )
    } else if lower.starts_with("unable to connect") {
        SourceError::new(
            ErrorKind::Unreachable,
            format!("camera unreachable: check the host name and the network ({first})"),
        )
    } else if lower.contains("out-of-order packet") || lower.contains("wrong ssrc") {
        // retina over TCP fails on sequence numbers that go back (more than 2^15 behind) and on
        // another SSRC: a camera whose encoder restarted inside the session, or a stale one.
        SourceError::new(
            ErrorKind::InvalidData,
            format!(
                "the camera's RTP sequence numbers went back or its stream changed identity (SSRC) within the session: reconnecting ({first})"
            ),
        )
    } else if lower.contains("reading from rtsp peer")
        || lower.contains("writing to rtsp peer")
        || lower.contains("eof")
        || lower.contains("reset")
    {
        SourceError::new(
            ErrorKind::Ended,
            format!("connection to the camera lost ({first})"),
        )
    } else {
        SourceError::new(ErrorKind::InvalidData, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_h265_irap_pictures() {
        // [prefix SEI (39), CRA (21)] is a keyframe; [TRAIL_R (1)] is not; truncated input is
        // handled.
        assert!(has_h265_irap(&[
            0,
            0,
            0,
            2,
            39 << 1,
            1,
            0,
            0,
            0,
            2,
            21 << 1,
            1
        ]));
        assert!(!has_h265_irap(&[0, 0, 0, 2, 1 << 1, 1]));
        assert!(!has_h265_irap(&[0, 0, 0, 9, 1 << 1]));
        assert!(!has_h265_irap(&[0xff, 0xff, 0xff, 0xff]));
        assert!(!has_h265_irap(&[]));
    }

    #[test]
    fn splits_and_decodes_credentials() {
        let u =
            RtspUrl::new(Url::parse("rtsp://ad%40min:p%3Ass%20w@cam.local:8554/s1?x=1").unwrap())
                .unwrap();
        assert_eq!(u.url.as_str(), "rtsp://cam.local:8554/s1?x=1");
        assert_eq!(
            u.credentials,
            Some(("ad@min".to_string(), "p:ss w".to_string()))
        );
        assert!(!format!("{u:?}").contains("ss w"));
        let u = RtspUrl::new(Url::parse("rtsp://cam/s").unwrap()).unwrap();
        assert_eq!(u.credentials, None);
        let u = RtspUrl::new(Url::parse("rtsp://user@cam/s").unwrap()).unwrap();
        assert_eq!(u.credentials, Some(("user".into(), String::new())));
        assert!(RtspUrl::new(Url::parse("rtsp://u:%ff@cam/s").unwrap()).is_err());
    }
}

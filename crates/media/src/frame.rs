//! The unit of media that flows from a source to the segmenter.

use bytes::Bytes;

/// One access unit (a video picture or an audio frame) of one track.
///
/// Timestamps are in the track's own timescale ([`crate::Track::timescale`]). Video payloads are
/// length-prefixed NAL units (4-byte big-endian lengths, the "AVCC" form MP4 stores); audio
/// payloads are raw AAC frames without ADTS headers. The payload is a [`Bytes`] so it can travel
/// from the source to the HTTP response without being copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Index of the track in the stream's track list.
    pub track: usize,
    /// Decode timestamp.
    pub dts: i64,
    /// Presentation timestamp; differs from `dts` only when the stream has B-frames.
    pub pts: i64,
    /// Duration when the source knows it (files do; RTSP does not). The segmenter prefers the
    /// distance to the next frame of the same track and falls back to this value only for the
    /// last frame of a run.
    pub duration: Option<u32>,
    /// True for a random access point (IDR/CRA picture); always true for audio.
    pub keyframe: bool,
    /// The payload.
    pub data: Bytes,
}

//! Codec configuration records and the RFC 6381 codec strings derived from them.
//!
//! Only what the muxer and the playlists need is parsed: the records themselves are copied
//! verbatim into the init segment.

pub mod aac;
pub mod avc;
pub mod hevc;

/// A decoder configuration record that cannot describe a playable track.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The avcC record is shorter than its fixed header or not version 1.
    #[error("invalid H.264 decoder configuration (avcC): {0}")]
    InvalidAvcc(&'static str),
    /// The hvcC record is shorter than its fixed header or not version 1.
    #[error("invalid H.265 decoder configuration (hvcC): {0}")]
    InvalidHvcc(&'static str),
    /// The AudioSpecificConfig is truncated or uses a sampling rate index that does not exist.
    #[error("invalid AAC AudioSpecificConfig: {0}")]
    InvalidAsc(&'static str),
    /// A track timescale of zero cannot express time.
    #[error("track timescale is zero")]
    ZeroTimescale,
    /// A video track needs its picture size for the init segment.
    #[error("video track has no picture dimensions")]
    NoDimensions,
}

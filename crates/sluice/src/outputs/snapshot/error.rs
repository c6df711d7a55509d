//! Why a snapshot could not be made.

/// Why no snapshot was made. Each variant documents the HTTP status it is meant to map to.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The decoder configuration or the sample is malformed, or the decoder rejected them
    /// (502: the camera sent it).
    #[error("the keyframe cannot be decoded: {0}")]
    Undecodable(String),
    /// The access unit decoded without error but gave no picture, e.g. it holds no slice or
    /// only a predicted frame without its references (502).
    #[error("the keyframe gave no picture")]
    NoPicture,
    /// The requested width or height is 0 or above [`super::picture::MAX_DIMENSION`] (400).
    #[error("invalid snapshot size: {0}")]
    InvalidSize(String),
    /// The stream's orientation is not an EXIF orientation (500: a configuration error).
    #[error("invalid EXIF orientation {0}: expected 1 to 8")]
    InvalidOrientation(u8),
    /// The track's codec cannot be decoded here (415), e.g. H.265.
    #[error("{0}")]
    Unsupported(String),
    /// The JPEG encoder failed (500).
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

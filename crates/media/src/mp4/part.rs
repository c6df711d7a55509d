//! What the segmenter hands to every consumer of a stream: init segments and parts, with the
//! sample metadata a clip writer needs. Defined with the MP4 writers rather than in the
//! segmenter, so a writer that reads parts does not depend on the segmenter that makes them.

use bytes::Bytes;

use super::{Fragment, Orientation, write_init};
use crate::track::Track;

/// An init segment and the tracks it describes. Shared by every segment of a run with the same
/// parameters; compared by pointer.
#[derive(Debug)]
pub struct InitSegment {
    /// Increases each time the stream's parameters change.
    pub id: u64,
    /// The tracks, in track-ID order (video first).
    pub tracks: Vec<Track>,
    /// `ftyp`+`moov` with no rotation.
    pub bytes: Bytes,
}

impl InitSegment {
    /// The RFC 6381 codec strings of all tracks, comma-separated, for `CODECS=`.
    pub fn codecs(&self) -> String {
        let list: Vec<&str> = self.tracks.iter().map(|t| t.codec_string()).collect();
        list.join(",")
    }

    /// The init segment with the given orientation applied to the video track.
    pub fn with_orientation(&self, orientation: Orientation) -> Bytes {
        if orientation.exif() == 1 {
            self.bytes.clone()
        } else {
            Bytes::from(write_init(&self.tracks, orientation))
        }
    }
}

/// The samples of one track in a part, without their data: what a recorder needs to build a
/// progressive MP4's sample tables from the part's `mdat` payload.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// Index of the track in the part's init segment.
    pub track: usize,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    /// The samples, in the order their data follows in the fragment's chunks.
    pub samples: Vec<SampleInfo>,
}

/// One sample's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleInfo {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Payload size in bytes.
    pub size: u32,
    /// Composition time offset.
    pub cto: i32,
    /// Sync sample.
    pub keyframe: bool,
}

/// One part: a `moof`+`mdat` and its metadata.
#[derive(Debug)]
pub struct Part {
    /// The fragment bytes: the `moof` and `mdat` header, then one chunk per sample, in the
    /// order of `runs`.
    pub fragment: Fragment,
    /// The tracks' samples in this part (tracks without samples are left out).
    pub runs: Vec<RunInfo>,
    /// Duration in seconds (the sum of its video frames' durations).
    pub duration: f64,
    /// True when the part starts with a keyframe, so a player can start decoding there.
    pub independent: bool,
}

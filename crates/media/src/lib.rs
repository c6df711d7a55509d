//! Sans-IO media core of Sluice.
//!
//! Everything between "a source produced a frame" and "these bytes go into an HTTP response"
//! lives here, free of tokio and of any I/O, so it can be unit-tested with exact bytes,
//! fuzzed and benchmarked in isolation:
//!
//! - [`frame`] and [`track`]: the media model (a [`Frame`] of one [`Track`]).
//! - [`codec`]: codec configuration records (avcC, hvcC, AudioSpecificConfig) and RFC 6381
//!   codec strings.
//! - [`mp4`]: the fragmented-MP4 writer (init segment, `moof`+`mdat` fragments), the parts
//!   every consumer gets, and the progressive clip writer.
//! - [`demux`]: reading progressive MP4 files held in memory.
//! - [`timestamp`]: the timestamp guard that keeps the output timeline monotonic and continuous.
//! - [`segmenter`]: cuts frames into segments and parts.
//! - [`pipeline`]: the guard and the segmenter together, living across a stream's runs.
//! - [`ring`]: the last N segments of a stream, with sequence numbers and discontinuities.
//! - [`playlist`]: HLS master and media playlist rendering.

pub mod codec;
pub mod demux;
pub mod frame;
pub mod mp4;
pub mod pipeline;
pub mod playlist;
pub mod ring;
pub mod segmenter;
pub mod timestamp;
pub mod track;

pub use frame::Frame;
pub use track::{Codec, Track, TrackKind};

//! JPEG snapshots of a video stream's latest keyframe.
//!
//! [`picture`] is the whole picture pipeline (decode, scale, orient, encode), pure and
//! synchronous; the other modules are its steps.

mod annexb;
mod color;
mod decode;
mod encode;
mod orient;
pub mod picture;
mod scale;
mod sps;

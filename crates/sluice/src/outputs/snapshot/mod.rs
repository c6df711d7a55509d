//! JPEG snapshots of a video stream's latest keyframe.
//!
//! [`serve`] is the output (the HTTP route, the per-keyframe cache, the stream's demand);
//! [`picture`] is the whole picture pipeline (decode, scale, orient, encode), pure and
//! synchronous; the other modules are its steps.

mod annexb;
mod color;
mod decode;
mod encode;
mod error;
mod orient;
pub mod picture;
mod scale;
pub mod serve;
mod sps;

pub use serve::Snapshots;

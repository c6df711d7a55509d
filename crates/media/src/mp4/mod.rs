//! Fragmented MP4 (ISO/IEC 14496-12, CMAF-style) writing.
//!
//! [`init`] writes the `ftyp`+`moov` init segment every fragment needs; [`fragment`] writes one
//! `moof`+`mdat` per part without copying frame payloads. Both are written by hand: the boxes
//! are few and fixed, and owning their layout keeps the hot path allocation-light. [`part`]
//! holds what a stream's consumers get (init segments and parts with their sample metadata),
//! and [`progressive`] turns parts into a fast-start MP4 clip.

mod boxes;
pub mod fragment;
pub mod init;
pub mod part;
pub mod progressive;

pub use fragment::{Fragment, TrackRun};
pub use init::{Orientation, write_init};
pub use progressive::ClipWriter;

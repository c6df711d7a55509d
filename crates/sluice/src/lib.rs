//! Sluice: a camera stream server.
//!
//! Sources ([`source`]) feed the sans-IO media core (`sluice-media`) through a per-stream worker
//! managed by the [`hub`]; the [`hls`] handlers and the [`api`] serve the result over HTTP
//! ([`server`]), configured by [`config`].

pub mod api;
pub mod config;
pub mod hls;
pub mod hub;
pub mod metrics;
pub mod outputs;
pub mod probe;
pub mod read_bounded;
pub mod recorder;
pub mod redact;
pub mod server;
pub mod source;
pub mod web;

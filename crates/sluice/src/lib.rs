//! Sluice: a camera stream server.
//!
//! Sources ([`source`]) feed the sans-IO media core (`sluice-media`) through a per-stream worker
//! managed by the [`hub`]; [`outputs`] (HLS, clips, snapshots) turn each stream's tap into
//! what consumers get, and the [`api`] and the [`server`] serve it over HTTP, configured by
//! [`config`].

pub mod api;
pub mod config;
pub mod hub;
pub mod json;
pub mod metrics;
pub mod outputs;
pub mod probe;
pub mod read_bounded;
pub mod redact;
pub mod server;
pub mod site;
pub mod source;
pub mod state_file;
pub mod token;
pub mod web;

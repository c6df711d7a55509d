//! Outputs: everything a stream's media is turned into, each in its own folder.
//!
//! An output uses streams only through their [`crate::hub::Tap`] (media, demand leases, its
//! per-stream slots) and brings its own HTTP routes, API fields and metrics; the hub imports no
//! output. Adding one is a folder plus one line in [`Outputs::new`].

pub mod clips;
pub mod hls;
pub mod snapshot;

use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::hub::{Hub, Stream};

/// One kind of output; every method has a default that adds nothing.
pub trait Output: Send + Sync + 'static {
    /// Routes behind the site guard and the API token (`/api/streams/{name}/…`).
    fn api_routes(self: Arc<Self>) -> Router {
        Router::new()
    }

    /// Routes open to any origin: capability URLs whose token is the permission.
    fn open_routes(self: Arc<Self>) -> Router {
        Router::new()
    }

    /// Adds the output's fields to a stream's API description.
    fn describe(&self, _stream: &Stream, _info: &mut serde_json::Map<String, serde_json::Value>) {}

    /// Registers the output's metrics for every stream.
    fn metrics(&self, _hub: &Hub, _registry: &mut Registry) {}
}

/// The outputs the server runs.
pub struct Outputs(Vec<Arc<dyn Output>>);

impl Outputs {
    /// Every output, configured from `config`.
    pub fn new(hub: &Arc<Hub>, config: &Config) -> Outputs {
        Outputs(vec![
            Arc::new(hls::Hls::new(hub)),
            Arc::new(snapshot::Snapshots::new(hub)),
            Arc::new(clips::Clips::new(
                hub,
                Some(config.server.record_dirs.clone()),
            )),
        ])
    }

    /// Every output's API routes.
    pub fn api_routes(&self) -> Router {
        self.0
            .iter()
            .fold(Router::new(), |r, o| r.merge(Arc::clone(o).api_routes()))
    }

    /// Every output's open routes.
    pub fn open_routes(&self) -> Router {
        self.0
            .iter()
            .fold(Router::new(), |r, o| r.merge(Arc::clone(o).open_routes()))
    }

    /// Every output's fields for a stream's API description.
    pub fn describe(&self, stream: &Stream, info: &mut serde_json::Map<String, serde_json::Value>) {
        for output in &self.0 {
            output.describe(stream, info);
        }
    }

    /// Every output's metrics.
    pub fn metrics(&self, hub: &Hub, registry: &mut Registry) {
        for output in &self.0 {
            output.metrics(hub, registry);
        }
    }
}

//! The HTTP server: routes, and serving until a shutdown signal.
//!
//! [`crate::site`] decides which web pages may use the API; [`connections`] accepts and
//! serves connections within limits.

pub mod connections;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::metrics::{self, RequestCounts};
use crate::outputs::Outputs;
use crate::state_file::StateFile;
use crate::{api, site, web};

/// The whole application's routes. `server.api_token` protects the API (`/api/streams`,
/// `/api/probe`) and the outputs' API routes; changes to streams are saved to `state_file`.
///
/// Everything but the health check and the outputs' open routes (capability URLs: their token
/// is the permission, and any origin may read them) is behind the [`site`] guard (DNS
/// rebinding, cross-site requests); a new route that changes anything belongs there too.
pub fn router(
    hub: Arc<Hub>,
    outputs: Arc<Outputs>,
    server: &ServerConfig,
    state_file: Option<Arc<StateFile>>,
) -> Router {
    let requests = Arc::new(RequestCounts::default());
    let probes = Arc::new(api::Probes::default());
    let policy = Arc::new(site::SitePolicy::new(
        &server.allowed_hosts,
        &server.allowed_origins,
    ));
    let metrics_routes = Router::new()
        .route("/metrics", get(metrics::handler))
        .with_state(Arc::new(metrics::Sources {
            hub: Arc::clone(&hub),
            outputs: Arc::clone(&outputs),
            requests: Arc::clone(&requests),
            probes: Arc::clone(&probes),
        }));
    let guarded = Router::new()
        .route("/", get(web::index))
        .route("/static/hls.min.js", get(web::hls_js))
        .merge(api::routes(
            server.api_token.clone(),
            api::Api {
                hub,
                outputs: Arc::clone(&outputs),
                state_file,
                probes,
            },
        ))
        .merge(metrics_routes)
        .layer(axum::middleware::from_fn_with_state(policy, site::guard));
    let open = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(outputs.open_routes());
    guarded
        .merge(open)
        .layer(axum::middleware::from_fn_with_state(
            requests,
            metrics::count_requests,
        ))
}

/// Serves until `shutdown` completes (saving stream changes to `state_file`), within the `server:` section's limits. Streams are stopped
/// first (releasing parked requests and tearing down camera sessions), then in-flight requests
/// finish and the server returns.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    outputs: Arc<Outputs>,
    server: &ServerConfig,
    state_file: Option<Arc<StateFile>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&hub), outputs, server, state_file);
    let limits = connections::Limits::of(server);
    connections::serve(listener, app, limits, async move {
        shutdown.await;
        hub.shutdown().await;
    })
    .await
}

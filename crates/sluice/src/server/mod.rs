//! The HTTP server: routes, and serving until a shutdown signal.
//!
//! [`site`] decides which web pages may use the API; [`connections`] accepts and serves
//! connections within limits.

pub mod connections;
pub mod site;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, header};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::compression::{CompressionLayer, predicate::Predicate};
use tower_http::cors::{Any, CorsLayer};

use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::metrics::{self, RequestCounts};
use crate::{api, hls, web};

/// The whole application's routes. `server.api_token` protects `/api/streams`.
///
/// Everything but the health check and the HLS capability URLs is behind the [`site`] guard
/// (DNS rebinding, cross-site requests); a new route that changes anything belongs there too.
/// The HLS URLs need no guard: their token is the permission, and any origin may read them.
pub fn router(hub: Arc<Hub>, server: &ServerConfig) -> Router {
    let requests = Arc::new(RequestCounts::default());
    let policy = Arc::new(site::SitePolicy::new(
        &server.allowed_hosts,
        &server.allowed_origins,
    ));
    let metrics_routes = Router::new()
        .route("/metrics", get(metrics::handler))
        .with_state((Arc::clone(&hub), Arc::clone(&requests)));
    let guarded = Router::new()
        .route("/", get(web::index))
        .route("/static/hls.min.js", get(web::hls_js))
        .merge(api::routes(server.api_token.clone()))
        .with_state(Arc::clone(&hub))
        .merge(metrics_routes)
        .layer(axum::middleware::from_fn_with_state(policy, site::guard));
    let open = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .nest("/api/hls", hls::routes().layer(hls_layers()))
        .with_state(hub);
    guarded
        .merge(open)
        .layer(axum::middleware::from_fn_with_state(
            requests,
            metrics::count_requests,
        ))
}

/// CORS for players on other origins, and gzip for playlists only (media is already
/// compressed; gzipping it would cost CPU for nothing).
fn hls_layers() -> tower::layer::util::Stack<CompressionLayer<PlaylistsOnly>, CorsLayer> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD])
        .expose_headers([header::CONTENT_LENGTH, header::ETAG]);
    let gzip = CompressionLayer::new()
        .gzip(true)
        .compress_when(PlaylistsOnly);
    tower::layer::util::Stack::new(gzip, cors)
}

/// Compression predicate: HLS playlists.
#[derive(Clone, Copy, Debug)]
pub struct PlaylistsOnly;

impl Predicate for PlaylistsOnly {
    fn should_compress<B: axum::body::HttpBody>(&self, response: &axum::http::Response<B>) -> bool {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/vnd.apple.mpegurl"))
    }
}

/// Serves until `shutdown` completes, within the `server:` section's limits. Streams are stopped
/// first (releasing parked requests and tearing down camera sessions), then in-flight requests
/// finish and the server returns.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    server: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&hub), server);
    let limits = connections::Limits::of(server);
    connections::serve(listener, app, limits, async move {
        shutdown.await;
        hub.shutdown().await;
    })
    .await
}

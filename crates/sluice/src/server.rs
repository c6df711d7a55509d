//! The HTTP server: routes, and serving until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, header};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::compression::{CompressionLayer, predicate::Predicate};
use tower_http::cors::{Any, CorsLayer};

use crate::hub::Hub;
use crate::metrics::{self, RequestCounts};
use crate::{api, hls, web};

/// The whole application's routes. `api_token` protects `/api/streams`.
pub fn router(hub: Arc<Hub>, api_token: Option<String>) -> Router {
    let requests = Arc::new(RequestCounts::default());
    let metrics_routes = Router::new()
        .route("/metrics", get(metrics::handler))
        .with_state((Arc::clone(&hub), Arc::clone(&requests)));
    Router::new()
        .route("/", get(web::index))
        .route("/static/hls.min.js", get(web::hls_js))
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes(api_token))
        .nest("/api/hls", hls::routes().layer(hls_layers()))
        .with_state(hub)
        .merge(metrics_routes)
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

/// Serves until `shutdown` completes. Streams are stopped first (releasing parked requests and
/// tearing down camera sessions), then in-flight requests finish and the server returns.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    api_token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&hub), api_token);
    let stopping = Arc::clone(&hub);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.shutdown().await;
        })
        .await
}

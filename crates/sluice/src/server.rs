//! The HTTP server: routes, and serving until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

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
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes(api_token))
        .nest("/api/hls", hls::routes())
        .with_state(hub)
        .merge(metrics_routes)
        .layer(axum::middleware::from_fn_with_state(
            requests,
            metrics::count_requests,
        ))
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

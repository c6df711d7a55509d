//! The HTTP server: routes, and serving until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::hub::Hub;
use crate::{api, hls, web};

/// The whole application's routes.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes())
        .nest("/api/hls", hls::routes())
        .with_state(hub)
}

/// Serves until `shutdown` completes, then stops every stream.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&hub));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    hub.shutdown().await;
    Ok(())
}

//! The web page at `/`: the streams with a live player each, and hls.js for browsers that
//! need Media Source Extensions.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("index.html");
/// hls.js from npm, embedded at build time (empty when it was not installed).
const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /static/hls.min.js`: 404 when the build had no hls.js, and the page falls back to
/// native HLS.
pub async fn hls_js() -> Response {
    if HLS_JS.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        HLS_JS,
    )
        .into_response()
}

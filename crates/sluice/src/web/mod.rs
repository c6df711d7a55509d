//! The web page at `/`: the streams with a live player each.

use axum::response::Html;

const INDEX: &str = include_str!("index.html");

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

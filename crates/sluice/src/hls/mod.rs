//! HLS over HTTP: the reference's paths under `/api/hls/{token}/`.
//!
//! The token in the path is the capability: an unknown token is a 404 with no body, and a
//! known one starts the stream. Child URIs in the playlists are relative, so they carry the
//! token. Media bodies are the parts' own buffers, sent without copying.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use sluice_media::playlist::{master_playlist, media_playlist};
use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::Part;

use crate::hub::{Hub, OutputKind, Stream};

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const INIT_TYPE: &str = "video/mp4";
const SEGMENT_TYPE: &str = "video/iso.segment";
/// Media never changes once published: caches may keep it.
const IMMUTABLE: &str = "public, max-age=3600, immutable";
/// How long a playlist request on a cold stream waits for the first part.
const STARTUP_WAIT: Duration = Duration::from_secs(20);

/// The HLS routes; mount under `/api/hls`.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/{token}/master_playlist.m3u8", get(master))
        .route("/{token}/playlist.m3u8", get(playlist))
        .route("/{token}/init.mp4", get(init))
        .route("/{token}/init/{file}", get(init_by_id))
        .route("/{token}/segment/{file}", get(segment))
}

/// The stream behind a token, with its HLS output present and its worker started (as the
/// reference does on every HLS request); `None` (a 404) for an unknown token.
fn stream_for(hub: &Hub, token: &str) -> Option<Arc<Stream>> {
    let stream = hub.by_token(token)?;
    stream.add_output(OutputKind::Hls, stream.settings().idle_timeout());
    Some(stream)
}

fn has_content(ring: &SegmentRing) -> Option<()> {
    ring.segments()
        .iter()
        .any(|s| !s.parts.is_empty())
        .then_some(())
}

/// 503 with a hint to retry: the stream has no media yet (starting, or its source is failing).
fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "",
    )
        .into_response()
}

fn playlist_response(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, PLAYLIST_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn master(State(hub): State<Arc<Hub>>, Path(token): Path<String>) -> Response {
    let Some(stream) = stream_for(&hub, &token) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let media = stream.media();
    match media.wait_for(STARTUP_WAIT, master_playlist).await {
        Some(text) => playlist_response(text),
        None => not_ready(),
    }
}

async fn playlist(State(hub): State<Arc<Hub>>, Path(token): Path<String>) -> Response {
    let Some(stream) = stream_for(&hub, &token) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cfg = stream.settings().playlist();
    let media = stream.media();
    if media.wait_for(STARTUP_WAIT, has_content).await.is_none() {
        return not_ready();
    }
    match media_playlist(&media.ring(), &cfg) {
        Some(text) => playlist_response(text),
        None => not_ready(),
    }
}

async fn init(State(hub): State<Arc<Hub>>, Path(token): Path<String>) -> Response {
    let Some(stream) = stream_for(&hub, &token) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The playlist's EXT-X-MAP names the init of its first segment.
    let init = stream
        .media()
        .ring()
        .segments()
        .front()
        .map(|s| s.init.clone());
    match init {
        Some(init) => init_response(init.with_orientation(stream.orientation())),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn init_by_id(
    State(hub): State<Arc<Hub>>,
    Path((token, file)): Path<(String, String)>,
) -> Response {
    let Some(stream) = stream_for(&hub, &token) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(id) = file
        .strip_suffix(".mp4")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let init = stream
        .media()
        .ring()
        .segments()
        .iter()
        .find(|s| s.init.id == id)
        .map(|s| s.init.clone());
    match init {
        Some(init) => init_response(init.with_orientation(stream.orientation())),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn init_response(bytes: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, INIT_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

/// `N.m4s` or `N.P.m4s`.
fn parse_media_name(file: &str) -> Option<(u64, Option<usize>)> {
    let stem = file.strip_suffix(".m4s")?;
    match stem.split_once('.') {
        None => Some((stem.parse().ok()?, None)),
        Some((n, p)) => Some((n.parse().ok()?, Some(p.parse().ok()?))),
    }
}

enum Lookup<T> {
    Found(T),
    Wait,
    Gone,
}

async fn segment(
    State(hub): State<Arc<Hub>>,
    Path((token, file)): Path<(String, String)>,
) -> Response {
    let Some(stream) = stream_for(&hub, &token) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some((sequence, part)) = parse_media_name(&file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Media fetches, not playlist polls, keep the output alive.
    stream.touch(OutputKind::Hls);
    let cfg = stream.settings().config;
    let parts = match part {
        None => {
            // A whole segment: wait while it (or the next one, just hinted) is in progress.
            let timeout = Duration::from_secs_f64(cfg.segment_duration * 3.0 + 2.0);
            stream
                .media()
                .wait_for(timeout, |ring| match find_segment(ring, sequence) {
                    Lookup::Found(()) => ring.get(sequence).map(|s| s.parts.clone()),
                    Lookup::Wait => None,
                    Lookup::Gone => Some(Vec::new()),
                })
                .await
        }
        Some(p) => {
            // A part: a hinted part blocks until it is complete.
            let timeout = Duration::from_secs_f64(cfg.part_duration * 3.0 + 2.0);
            stream
                .media()
                .wait_for(timeout, |ring| match find_part(ring, sequence, p) {
                    Lookup::Found(part) => Some(vec![part]),
                    Lookup::Wait => None,
                    Lookup::Gone => Some(Vec::new()),
                })
                .await
        }
    };
    match parts {
        Some(parts) if !parts.is_empty() => media_response(&parts),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn find_segment(ring: &SegmentRing, sequence: u64) -> Lookup<()> {
    match ring.get(sequence) {
        Some(s) if s.is_complete() => Lookup::Found(()),
        Some(_) => Lookup::Wait,
        None if sequence == ring.next_sequence() => Lookup::Wait,
        None => Lookup::Gone,
    }
}

fn find_part(ring: &SegmentRing, sequence: u64, index: usize) -> Lookup<Arc<Part>> {
    match ring.get(sequence) {
        Some(s) => match s.parts.get(index) {
            Some(part) => Lookup::Found(part.clone()),
            None if !s.is_complete() && index == s.parts.len() => Lookup::Wait,
            None => Lookup::Gone,
        },
        // The first part of the next segment is what the preload hint names after a
        // segment completes.
        None if sequence == ring.next_sequence() && index == 0 => Lookup::Wait,
        None => Lookup::Gone,
    }
}

/// A media body made of the parts' chunks, without copying them.
fn media_response(parts: &[Arc<Part>]) -> Response {
    let size: usize = parts.iter().map(|p| p.fragment.size).sum();
    let chunks: Vec<Bytes> = parts
        .iter()
        .flat_map(|p| p.fragment.chunks.iter().cloned())
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, Infallible>),
    ));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SEGMENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_names() {
        assert_eq!(parse_media_name("12.m4s"), Some((12, None)));
        assert_eq!(parse_media_name("12.3.m4s"), Some((12, Some(3))));
        assert_eq!(parse_media_name("12.3.4.m4s"), None);
        assert_eq!(parse_media_name("../x.m4s"), None);
        assert_eq!(parse_media_name("12.mp4"), None);
    }
}

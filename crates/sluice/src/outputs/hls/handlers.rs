//! The HLS handlers: the reference's paths under `/api/hls/{token}/`.
//!
//! The token in the path is the capability: an unknown token is a 404 with no body, and a
//! known one starts the stream. Child URIs in the playlists are relative, so they carry the
//! token. Media bodies are the parts' own buffers, sent without copying.
//!
//! Low-latency HLS (RFC 8216bis): `_HLS_msn`/`_HLS_part` park the request on the stream's
//! notifier until the part exists, `_HLS_skip=YES` gets a delta update, and a request for the
//! part named by the preload hint blocks until that part is complete. Status rules:
//! `_HLS_part` without `_HLS_msn`, a malformed value, an msn more than two segments ahead or a
//! part beyond the advance limit → 400; a wait longer than three target durations → 503 with
//! `Retry-After` (RFC 8216bis §6.2.5.2 says 503 for that case; the reference used 404). The
//! same holds for a hinted part or next segment not made in time (the camera is away); media
//! that will never exist (out of the window, or a part a run ended before making) is a 404.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sluice_media::playlist::{
    Blocking, advance_part_limit, blocking, master_playlist, media_playlist, part_target,
    target_duration,
};
use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::Part;

use super::Hls;
use crate::hub::Stream;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const INIT_TYPE: &str = "video/mp4";
const SEGMENT_TYPE: &str = "video/iso.segment";
/// Media never changes once published: caches (a CDN) may keep it.
const IMMUTABLE: &str = "public, max-age=3600, immutable";
/// How long a playlist request on a cold stream waits for the startup segments.
const STARTUP_WAIT: Duration = crate::hub::STARTUP_GRACE;

/// Whether a cold stream has enough to start every mainstream player: `startup_segments`
/// complete segments and the first part of the next (see
/// [`crate::config::HlsConfig::startup_segments`] for who needs what).
fn ready_to_start(ring: &SegmentRing, startup_segments: usize) -> bool {
    let complete = ring.segments().iter().filter(|s| s.is_complete()).count();
    complete > startup_segments
        || (complete == startup_segments
            && ring
                .segments()
                .back()
                .is_some_and(|s| !s.is_complete() && !s.parts.is_empty()))
}

fn status(code: StatusCode) -> Response {
    code.into_response()
}

/// 503 with a hint to retry: no media yet (starting, or the source is failing), or a blocking
/// request that was not satisfied in time.
fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "",
    )
        .into_response()
}

fn playlist_response(text: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, PLAYLIST_TYPE),
            (header::CACHE_CONTROL, cache),
        ],
        text,
    )
        .into_response()
}

/// The multivariant playlist waits until the stream can start every mainstream player
/// (`hls.startup_segments` complete segments; three by default, see the config docs). Should
/// that not happen in time (a camera with a very long GOP), whatever exists is described.
pub(super) async fn master(State(hls): State<Arc<Hls>>, Path(token): Path<String>) -> Response {
    let Some(stream) = hls.stream_for(&token) else {
        return status(StatusCode::NOT_FOUND);
    };
    let media = stream.tap().media();
    let startup = stream.settings().hls.startup_segments;
    let ready = |ring: &SegmentRing| {
        ready_to_start(ring, startup)
            .then(|| master_playlist(ring))
            .flatten()
    };
    if let Some(text) = media.wait_for(STARTUP_WAIT, ready).await {
        return playlist_response(text, "no-cache");
    }
    match master_playlist(&media.ring()) {
        Some(text) => playlist_response(text, "no-cache"),
        None => not_ready(),
    }
}

/// The blocking-reload query of a media playlist request (RFC 8216bis §6.2.5.2).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PlaylistQuery {
    /// `_HLS_msn`: the media sequence number the playlist must contain.
    pub msn: Option<u64>,
    /// `_HLS_part`: the part of that segment the playlist must contain.
    pub part: Option<usize>,
    /// `_HLS_skip=YES` or `v2`: a delta update.
    pub skip: bool,
}

/// A playlist query that must be answered with 400 Bad Request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid LL-HLS playlist query: {0}")]
pub struct InvalidQuery(&'static str);

/// Parses `_HLS_msn`, `_HLS_part` and `_HLS_skip` from a raw query string; other parameters
/// are ignored, malformed values are an error. Public for the fuzz targets (`fuzz/`): the
/// query is untrusted input.
pub fn parse_query(raw: Option<&str>) -> Result<PlaylistQuery, InvalidQuery> {
    let mut q = PlaylistQuery::default();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => {
                q.msn = Some(
                    value
                        .parse()
                        .map_err(|_| InvalidQuery("_HLS_msn is not a sequence number"))?,
                )
            }
            "_HLS_part" => {
                q.part = Some(
                    value
                        .parse()
                        .map_err(|_| InvalidQuery("_HLS_part is not a part index"))?,
                )
            }
            "_HLS_skip" => match value {
                "YES" | "v2" => q.skip = true,
                "NO" => {}
                _ => return Err(InvalidQuery("_HLS_skip is not YES, v2 or NO")),
            },
            _ => {}
        }
    }
    if q.part.is_some() && q.msn.is_none() {
        return Err(InvalidQuery("_HLS_part without _HLS_msn"));
    }
    Ok(q)
}

pub(super) async fn playlist(
    State(hls): State<Arc<Hls>>,
    Path(token): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(stream) = hls.stream_for(&token) else {
        return status(StatusCode::NOT_FOUND);
    };
    let Ok(query) = parse_query(raw.as_deref()) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let cfg = stream.settings().playlist();
    let media = stream.tap().media();
    // A first (non-blocking) load of a cold stream waits like the multivariant playlist, for
    // clients that are given the media playlist directly; then whatever exists is served.
    let startup = stream.settings().hls.startup_segments;
    let started = |ring: &SegmentRing| {
        (ready_to_start(ring, startup) || (query.msn.is_some() && ring.live_edge().is_some()))
            .then_some(())
    };
    if media.wait_for(STARTUP_WAIT, started).await.is_none() && media.ring().live_edge().is_none() {
        return not_ready();
    }
    // Plain HLS playlists may be cached for half a segment; LL-HLS ones change every part.
    let cache = if cfg.ll_hls {
        "no-cache"
    } else {
        "public, max-age=0, s-maxage=1"
    };
    let Some(msn) = query.msn.filter(|_| cfg.ll_hls) else {
        return match media_playlist(&media.ring(), &cfg, query.skip) {
            Some(text) => playlist_response(text, cache),
            None => not_ready(),
        };
    };
    let (limit, hold) = {
        let ring = media.ring();
        (
            advance_part_limit(part_target(&ring, &cfg)),
            Duration::from_secs(3 * target_duration(&ring, &cfg)),
        )
    };
    let outcome = media
        .wait_for_timed(hold, |ring| match blocking(ring, msn, query.part, limit) {
            Blocking::Ready => Some(media_playlist(ring, &cfg, query.skip)),
            Blocking::Reject => Some(None),
            Blocking::Wait => None,
        })
        .await;
    match outcome {
        Some((Some(text), delay)) => {
            if let Some(d) = delay {
                hls.observe_blocking_release(d);
            }
            playlist_response(text, cache)
        }
        Some((None, _)) => status(StatusCode::BAD_REQUEST),
        None => not_ready(),
    }
}

/// A strong validator for immutable media: the stream's identity, the init or the segment and
/// part. Matching `If-None-Match` gets a 304.
fn etag(stream: &Stream, what: &str) -> String {
    format!("\"{}-{what}\"", stream.tap().instance_id())
}

fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

fn not_modified_response(tag: &str) -> Response {
    let mut r = status(StatusCode::NOT_MODIFIED);
    if let Ok(v) = HeaderValue::from_str(tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

pub(super) async fn init(
    State(hls): State<Arc<Hls>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    // The playlist's EXT-X-MAP names the init of its first segment.
    serve_init(&hls, &token, &headers, None)
}

/// `init/{id}.mp4`: the init a later `EXT-X-MAP` names after a parameter change.
pub(super) async fn init_by_id(
    State(hls): State<Arc<Hls>>,
    Path((token, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match file
        .strip_suffix(".mp4")
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(id) => serve_init(&hls, &token, &headers, Some(id)),
        None => status(StatusCode::NOT_FOUND),
    }
}

/// The init with this id (or the first segment's) among the ring's segments.
fn serve_init(hls: &Hls, token: &str, headers: &HeaderMap, id: Option<u64>) -> Response {
    let Some(stream) = hls.stream_for(token) else {
        return status(StatusCode::NOT_FOUND);
    };
    let init = stream
        .tap()
        .media()
        .ring()
        .segments()
        .iter()
        .find(|s| id.is_none_or(|id| s.init.id == id))
        .map(|s| s.init.clone());
    match init {
        Some(init) => init_response(&stream, &init, headers),
        None => status(StatusCode::NOT_FOUND),
    }
}

fn init_response(
    stream: &Stream,
    init: &sluice_media::segmenter::InitSegment,
    headers: &HeaderMap,
) -> Response {
    let orientation = stream.tap().orientation();
    let tag = etag(stream, &format!("init{}-o{}", init.id, orientation.exif()));
    if not_modified(headers, &tag) {
        return not_modified_response(&tag);
    }
    let mut r = (
        [
            (header::CONTENT_TYPE, INIT_TYPE),
            // The orientation can change at runtime: revalidate.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        init.with_orientation(orientation),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// A media file name, `N.m4s` (segment `N`) or `N.P.m4s` (part `P` of segment `N`), as
/// `(N, P)`; `None` (a 404) for anything else. Public for the fuzz targets (`fuzz/`): the
/// name is untrusted input.
pub fn parse_media_name(file: &str) -> Option<(u64, Option<usize>)> {
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

pub(super) async fn segment(
    State(hls): State<Arc<Hls>>,
    Path((token, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(stream) = hls.stream_for(&token) else {
        return status(StatusCode::NOT_FOUND);
    };
    let Some((sequence, part)) = parse_media_name(&file) else {
        return status(StatusCode::NOT_FOUND);
    };
    // Media fetches, not playlist polls, keep the output alive.
    hls.touch(&stream);
    let tag = etag(
        &stream,
        &match part {
            Some(p) => format!("{sequence}.{p}"),
            None => format!("{sequence}"),
        },
    );
    if not_modified(&headers, &tag) {
        return not_modified_response(&tag);
    }
    let cfg = stream.settings().hls;
    let parts = match part {
        None => {
            // A whole segment: wait while it (or the next one, just hinted) is in progress.
            let timeout = Duration::from_secs_f64(cfg.segment_duration * 3.0 + 2.0);
            stream
                .tap()
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
            let found = stream
                .tap()
                .media()
                .wait_for_timed(timeout, |ring| match find_part(ring, sequence, p) {
                    Lookup::Found(part) => Some(vec![part]),
                    Lookup::Wait => None,
                    Lookup::Gone => Some(Vec::new()),
                })
                .await;
            if let Some((ref parts, Some(delay))) = found
                && !parts.is_empty()
            {
                hls.observe_blocking_release(delay);
            }
            found.map(|(parts, _)| parts)
        }
    };
    match parts {
        Some(parts) if !parts.is_empty() => media_response(&parts, &tag),
        // Gone: out of the window, or a part the run ended before making.
        Some(_) => status(StatusCode::NOT_FOUND),
        // Not made in time (the camera is away, or reconnecting): it may still come, so the
        // player is told to retry, as for a blocking playlist request; a 404 would tell it
        // the resource does not exist, and hls.js does not retry 4xx.
        None => not_ready(),
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
fn media_response(parts: &[Arc<Part>], tag: &str) -> Response {
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
    if let Ok(v) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, v);
    }
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

    #[test]
    fn blocking_queries() {
        assert_eq!(parse_query(None), Ok(PlaylistQuery::default()));
        assert_eq!(
            parse_query(Some("_HLS_msn=5&_HLS_part=2&_HLS_skip=YES&x=1")),
            Ok(PlaylistQuery {
                msn: Some(5),
                part: Some(2),
                skip: true
            })
        );
        assert_eq!(
            parse_query(Some("_HLS_part=2")),
            Err(InvalidQuery("_HLS_part without _HLS_msn"))
        );
        assert!(parse_query(Some("_HLS_msn=-1")).is_err());
        assert_eq!(
            parse_query(Some("_HLS_msn=x")),
            Err(InvalidQuery("_HLS_msn is not a sequence number"))
        );
        assert_eq!(
            parse_query(Some("_HLS_skip=maybe")),
            Err(InvalidQuery("_HLS_skip is not YES, v2 or NO"))
        );
        assert_eq!(parse_query(Some("_HLS_skip=v2")).map(|q| q.skip), Ok(true));
    }
}

//! The snapshot output: `GET /api/streams/{name}/snapshot.jpg[?width=&height=][&wait=1]`.
//!
//! The latest video keyframe of the stream's tap is decoded in process ([`picture`]), on the
//! blocking pool so streaming never waits for it. A cold stream is started by the request and
//! held by an idle lease, re-armed by every snapshot request, for [`HOLD`] after the last, so
//! the next snapshots find it warm. Results are
//! cached per keyframe, size and orientation, and one decode runs at a time per stream: a
//! burst of requests for the same keyframe decodes once (`sluice_snapshot_decodes`).
//! `wait=1` waits for the next keyframe. Status: 400 for a bad size, 404 for an unknown
//! stream, 415 for a codec with no decoder here (H.265), 502 for a keyframe that does not
//! decode, 503 with `Retry-After` when no keyframe came in time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use super::picture::{self, DEFAULT_QUALITY, Jpeg, SnapshotError, SnapshotSize};
use crate::hub::{Hub, Keyframe, Lease, Policy, Stream, StreamState};
use crate::json::{ApiError, not_found};
use crate::outputs::Output;

/// The kind of demand a snapshot holds.
const KIND: &str = "snapshot";
/// How long the last snapshot request keeps the stream running.
pub const HOLD: Duration = Duration::from_secs(30);
/// How long a request waits for a keyframe (a cold start: the camera's handshake and its
/// first keyframe; with `wait=1`, the next keyframe).
pub const WAIT: Duration = Duration::from_secs(20);
/// Pictures kept per stream (sizes of the latest keyframes).
const CACHED: usize = 4;

/// See the module documentation.
pub struct Snapshots {
    hub: Arc<Hub>,
}

/// A stream's cache and counters, kept in its tap's slots.
#[derive(Default)]
struct Cache {
    /// The stream's demand for snapshots.
    lease: Mutex<Option<Lease>>,
    /// Held while decoding: one decode at a time per stream.
    decoding: tokio::sync::Mutex<()>,
    pictures: Mutex<VecDeque<(Key, Jpeg)>>,
    decodes: AtomicU64,
    hits: AtomicU64,
}

/// What a picture depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    keyframe: u64,
    size: SnapshotSize,
    orientation: u8,
}

impl Cache {
    fn of(stream: &Stream) -> Arc<Cache> {
        stream.tap().slots().get::<Cache>()
    }

    fn get(&self, key: Key) -> Option<Jpeg> {
        lock(&self.pictures)
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, j)| j.clone())
    }

    fn put(&self, key: Key, jpeg: Jpeg) {
        let mut pictures = lock(&self.pictures);
        pictures.push_back((key, jpeg));
        while pictures.len() > CACHED {
            pictures.pop_front();
        }
    }
}

/// The query of a snapshot request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotQuery {
    /// Width in pixels (the height follows the aspect ratio unless given too).
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// `1`: wait for the next keyframe instead of using the latest.
    #[serde(default)]
    pub wait: u8,
}

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No keyframe within [`WAIT`].
    #[error("no keyframe within {} s: the stream is starting or its camera is failing", WAIT.as_secs())]
    NoKeyframe,
    /// The picture pipeline failed.
    #[error(transparent)]
    Picture(#[from] SnapshotError),
}

impl Snapshots {
    /// Snapshots of `hub`'s streams.
    pub fn new(hub: &Arc<Hub>) -> Snapshots {
        Snapshots {
            hub: Arc::clone(hub),
        }
    }

    /// A JPEG of `stream`'s latest keyframe (or its next, with `wait_next`), and the keyframe.
    /// Holds the stream's demand for [`HOLD`], starting it if it is cold.
    pub async fn take(
        stream: &Stream,
        size: SnapshotSize,
        wait_next: bool,
    ) -> Result<(Jpeg, Arc<Keyframe>), Failure> {
        size.validate()?;
        let cache = Cache::of(stream);
        {
            let mut lease = lock(&cache.lease);
            match &*lease {
                Some(l) => l.touch(),
                None => *lease = Some(stream.tap().demand().lease(KIND, Policy::Idle(HOLD))),
            }
        }
        let keyframe = next_keyframe(stream, wait_next).await?;
        let orientation = stream.tap().orientation().exif();
        let key = Key {
            keyframe: keyframe.number,
            size,
            orientation,
        };
        if let Some(jpeg) = cache.get(key) {
            cache.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((jpeg, keyframe));
        }
        let _decoding = cache.decoding.lock().await;
        // Another request may have made it while this one waited.
        if let Some(jpeg) = cache.get(key) {
            cache.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((jpeg, keyframe));
        }
        cache.decodes.fetch_add(1, Ordering::Relaxed);
        let frame = Arc::clone(&keyframe);
        let jpeg = tokio::task::spawn_blocking(move || {
            picture::keyframe_to_jpeg(
                &frame.track,
                &frame.frame.data,
                orientation,
                size,
                DEFAULT_QUALITY,
            )
        })
        .await
        .map_err(|e| SnapshotError::Undecodable(format!("the decoder failed: {e}")))??;
        cache.put(key, jpeg.clone());
        Ok((jpeg, keyframe))
    }
}

/// The keyframe to decode: the latest one while the stream runs, else (a cold or restarting
/// stream, whose last keyframe may be old) or with `wait_next` the next one, within [`WAIT`].
async fn next_keyframe(stream: &Stream, wait_next: bool) -> Result<Arc<Keyframe>, Failure> {
    let mut keyframes = stream.tap().keyframe();
    let current = keyframes.borrow_and_update().clone();
    let running = stream.status().state == StreamState::Running;
    if let Some(k) = current.as_ref().filter(|_| running && !wait_next) {
        return Ok(Arc::clone(k));
    }
    let after = current.map_or(0, |k| k.number);
    let wait = keyframes.wait_for(|k| k.as_ref().is_some_and(|k| k.number > after));
    match tokio::time::timeout(WAIT, wait).await {
        Ok(Ok(k)) => k.clone().ok_or(Failure::NoKeyframe),
        _ => Err(Failure::NoKeyframe),
    }
}

async fn snapshot(
    State(snapshots): State<Arc<Snapshots>>,
    Path(name): Path<String>,
    Query(query): Query<SnapshotQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(stream) = snapshots.hub.get(&name) else {
        return not_found(&name).into_response();
    };
    let size = SnapshotSize {
        width: query.width,
        height: query.height,
    };
    match Snapshots::take(&stream, size, query.wait == 1).await {
        Ok((jpeg, keyframe)) => jpeg_response(&stream, &jpeg, &keyframe, size, &headers),
        Err(Failure::NoKeyframe) => {
            let mut r = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Failure::NoKeyframe.to_string(),
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            r
        }
        Err(Failure::Picture(e)) => {
            let status = match e {
                SnapshotError::InvalidSize(_) => StatusCode::BAD_REQUEST,
                SnapshotError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                SnapshotError::Undecodable(_) | SnapshotError::NoPicture => StatusCode::BAD_GATEWAY,
                SnapshotError::InvalidOrientation(_) | SnapshotError::Encode(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            ApiError::new(status, e.to_string()).into_response()
        }
    }
}

fn jpeg_response(
    stream: &Stream,
    jpeg: &Jpeg,
    keyframe: &Keyframe,
    size: SnapshotSize,
    headers: &HeaderMap,
) -> Response {
    let tag = format!(
        "\"{}-k{}-{}x{}-o{}-{}\"",
        stream.tap().instance_id(),
        keyframe.number,
        size.width.unwrap_or(0),
        size.height.unwrap_or(0),
        stream.tap().orientation().exif(),
        jpeg.bytes.len()
    );
    let modified = httpdate::fmt_http_date(keyframe.at);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            jpeg.bytes.clone(),
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    response
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

impl Output for Snapshots {
    fn api_routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api/streams/{name}/snapshot.jpg", get(snapshot))
            .with_state(self)
    }

    fn metrics(&self, hub: &Hub, registry: &mut Registry) {
        let decodes = Family::<StreamLabel, Counter>::default();
        let hits = Family::<StreamLabel, Counter>::default();
        for stream in hub.list() {
            let label = StreamLabel {
                stream: stream.name().to_string(),
            };
            let cache = Cache::of(&stream);
            decodes
                .get_or_create(&label)
                .inc_by(cache.decodes.load(Ordering::Relaxed));
            hits.get_or_create(&label)
                .inc_by(cache.hits.load(Ordering::Relaxed));
        }
        registry.register(
            "snapshot_decodes",
            "Keyframes decoded for snapshots",
            decodes,
        );
        registry.register(
            "snapshot_cache_hits",
            "Snapshots answered from the cache",
            hits,
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! The HLS output: capability URLs, viewers, and LL-HLS over HTTP ([`handlers`]).
//!
//! `POST /api/streams/{name}/hls` hands out the stream's URL, whose token is the capability.
//! A stream's viewers hold one [`Lease`] together (the reference's single HLS output): every
//! HLS request wakes it, segment and part fetches re-arm it, and it goes idle after
//! `hls.idle_timeout` without them. The token is void once every lease of the stream has gone
//! idle (the demand's idle epoch moved on), so a URL handed out before does not start the
//! stream again.

mod handlers;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, header};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tower_http::compression::{CompressionLayer, predicate::Predicate};
use tower_http::cors::{Any, CorsLayer};

pub use handlers::{InvalidQuery, PlaylistQuery, parse_media_name, parse_query};

use super::Output;
use crate::hub::{Hub, Lease, Policy, Stream};
use crate::json::{ApiError, not_found};
use crate::token::{new_token, tokens_equal};

/// The kind of demand HLS viewers hold.
const KIND: &str = "hls";

/// See the module documentation.
pub struct Hls {
    hub: Arc<Hub>,
    /// Seconds from a ring change to the release of the blocked request it satisfied.
    blocking_release: Histogram,
}

/// A stream's HLS state, kept in its tap's slots.
#[derive(Default)]
struct Viewers {
    lease: Mutex<Option<Lease>>,
    /// The token and the idle epoch it was handed out in.
    token: Mutex<Option<(String, u64)>>,
}

impl Hls {
    /// The HLS output of `hub`'s streams.
    pub fn new(hub: &Arc<Hub>) -> Hls {
        Hls {
            hub: Arc::clone(hub),
            blocking_release: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }

    fn viewers(stream: &Stream) -> Arc<Viewers> {
        stream.tap().slots().get::<Viewers>()
    }

    /// The viewers' lease exists and is awake (which starts the stream).
    fn wake(&self, stream: &Stream) {
        let viewers = Hls::viewers(stream);
        let mut lease = lock(&viewers.lease);
        match &*lease {
            Some(l) => l.wake(),
            None => {
                let timeout = Duration::from_secs_f64(self.hub.settings().hls.idle_timeout);
                *lease = Some(stream.tap().demand().lease(KIND, Policy::Idle(timeout)));
            }
        }
    }

    /// A viewer fetched media: re-arm the idle countdown.
    fn touch(&self, stream: &Stream) {
        if let Some(lease) = &*lock(&Hls::viewers(stream).lease) {
            lease.touch();
        }
    }

    /// The stream's HLS URL, waking its viewers' lease and making a token if there is no valid
    /// one. Starts the stream.
    pub fn endpoint_url(&self, stream: &Stream) -> String {
        self.wake(stream);
        let epoch = stream.tap().demand().epoch();
        let viewers = Hls::viewers(stream);
        let mut token = lock(&viewers.token);
        let valid = token.as_ref().filter(|(_, e)| *e == epoch);
        let current = match valid {
            Some((t, _)) => t.clone(),
            None => {
                let t = new_token();
                *token = Some((t.clone(), epoch));
                t
            }
        };
        format!("/api/hls/{current}/master_playlist.m3u8")
    }

    /// The stream whose valid token is `token`, with its viewers' lease woken (as the
    /// reference does on every HLS request); `None` (a 404) for an unknown or void token.
    /// Every stream is compared, in constant time each, so the lookup time does not reveal
    /// how much of a token matched.
    fn stream_for(&self, token: &str) -> Option<Arc<Stream>> {
        let mut found = None;
        for stream in self.hub.list() {
            let epoch = stream.tap().demand().epoch();
            let matches = lock(&Hls::viewers(&stream).token)
                .as_ref()
                .is_some_and(|(t, e)| tokens_equal(t, token) && *e == epoch);
            if matches {
                found = Some(stream);
            }
        }
        let stream = found?;
        self.wake(&stream);
        Some(stream)
    }

    /// Active HLS viewers: 0 or 1, the reference's notion.
    pub fn viewer_count(stream: &Stream) -> u64 {
        let viewers = Hls::viewers(stream);
        let active = lock(&viewers.lease).as_ref().is_some_and(Lease::is_active);
        u64::from(active)
    }

    /// Records how long after a part was published a blocked request got going.
    fn observe_blocking_release(&self, delay: Duration) {
        self.blocking_release.observe(delay.as_secs_f64());
    }
}

async fn hls_url(
    State(hls): State<Arc<Hls>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stream = hls.hub.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(
        serde_json::json!({ "url": hls.endpoint_url(&stream) }),
    ))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

impl Output for Hls {
    fn api_routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api/streams/{name}/hls", post(hls_url))
            .with_state(self)
    }

    fn open_routes(self: Arc<Self>) -> Router {
        let routes = Router::new()
            .route("/{token}/master_playlist.m3u8", get(handlers::master))
            .route("/{token}/playlist.m3u8", get(handlers::playlist))
            .route("/{token}/init.mp4", get(handlers::init))
            .route("/{token}/init/{file}", get(handlers::init_by_id))
            .route("/{token}/segment/{file}", get(handlers::segment))
            .with_state(self)
            .layer(layers());
        Router::new().nest("/api/hls", routes)
    }

    fn describe(&self, stream: &Stream, info: &mut serde_json::Map<String, serde_json::Value>) {
        info.insert("viewers".into(), Hls::viewer_count(stream).into());
    }

    fn metrics(&self, hub: &Hub, registry: &mut Registry) {
        let viewers = Family::<StreamLabel, Gauge>::default();
        for stream in hub.list() {
            let label = StreamLabel {
                stream: stream.name().to_string(),
            };
            let n = i64::try_from(Hls::viewer_count(&stream)).unwrap_or(i64::MAX);
            viewers.get_or_create(&label).set(n);
        }
        registry.register("stream_viewers", "Active HLS outputs per stream", viewers);
        registry.register(
            "hls_blocking_release_seconds",
            "Time from a part being published to the release of a blocked playlist or part request",
            self.blocking_release.clone(),
        );
    }
}

/// CORS for players on other origins, and gzip for playlists only (media is already
/// compressed; gzipping it would cost CPU for nothing).
fn layers() -> tower::layer::util::Stack<CompressionLayer<PlaylistsOnly>, CorsLayer> {
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! An LL-HLS viewer as a program, not a person: it asks Sluice for a stream's HLS URL, loads the
//! multivariant and media playlists and the init segment, then follows the live edge with
//! blocking playlist reloads (`_HLS_msn`/`_HLS_part` naming the preload-hinted part) and fetches
//! every part the playlist lists after the last one it has, all on one keep-alive HTTP/1.1
//! connection, asking for gzip like a browser.
//!
//! What it measures, inside the measurement window only (errors outside it, during the warm-up
//! or the linger after it, are counted apart):
//! - **part latency**: from the moment the part could be published to the end of the part's
//!   response. A part is published when the frame after it reaches Sluice: that frame is the
//!   first of the next part, and carries the simulator's send time ([`crate::wallclock`]), so
//!   the figure is "the camera sent the frame that completed the part" → "the viewer has the
//!   part". It covers Sluice's ingest of that frame, the release of the blocked playlist
//!   request, its transfer, and the part's request and transfer.
//! - **playlist latency**: the same up to the end of the blocking playlist response that waited
//!   for the part (only when the request went out before the frame was sent: it had to wait).
//! - the same two against `EXT-X-PROGRAM-DATE-TIME` instead (`pdt_*`, see
//!   [`crate::playlist`]): what a player computes, for cameras without the send-time SEI. Its
//!   zero is the arrival of the run's first frame, so it is off by that frame's own delay and
//!   includes the camera's send jitter; it can be negative.
//! - **stalls**: blocking playlist requests that took more than three part targets (or a 503:
//!   nothing came within Sluice's hold).
//! - **errors**: any other status, a broken connection, a timeout, a playlist without a preload
//!   hint; `gaps`: parts that left the playlist before the viewer could fetch them.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::playlist::{self, MediaPlaylist};
use crate::stats::summary_ms;
use crate::wallclock;

/// The longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One viewer's settings.
#[derive(Clone, Debug)]
pub struct ViewerConfig {
    /// Sluice's address.
    pub server: SocketAddr,
    /// The stream to watch.
    pub stream: String,
    /// Ask for gzipped playlists, as browsers do.
    pub gzip: bool,
    /// Start of the measurement window.
    pub measure_from: Instant,
    /// End of the measurement window.
    pub measure_until: Instant,
    /// End of the run (the viewer keeps watching, unmeasured, until then).
    pub until: Instant,
}

impl ViewerConfig {
    /// Whether `t` is inside the measurement window.
    pub fn measuring(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.measure_until
    }
}

/// What one viewer (or, merged, all of them) saw.
#[derive(Debug, Default)]
pub struct ViewerStats {
    /// Viewers merged into this record.
    pub viewers: u64,
    /// Times a viewer obtained an HLS URL.
    pub sessions: u64,
    /// Parts fetched in the window.
    pub parts: u64,
    /// Bytes of those parts.
    pub part_bytes: u64,
    /// Blocking playlist requests answered in the window.
    pub playlists: u64,
    /// Blocking requests slower than three part targets, or answered 503.
    pub stalls: u64,
    /// Parts that left the playlist unfetched.
    pub gaps: u64,
    /// Errors in the window, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Errors outside the window, by kind.
    pub warmup_errors: BTreeMap<String, u64>,
    /// Part latencies against the camera's send time, milliseconds.
    pub part_latency_ms: Vec<f64>,
    /// Blocking playlist latencies against the camera's send time, milliseconds.
    pub playlist_latency_ms: Vec<f64>,
    /// Part latencies against `EXT-X-PROGRAM-DATE-TIME`, milliseconds.
    pub pdt_part_latency_ms: Vec<f64>,
    /// Blocking playlist latencies against `EXT-X-PROGRAM-DATE-TIME`, milliseconds.
    pub pdt_playlist_latency_ms: Vec<f64>,
    /// From asking for the URL to the first part fetched, milliseconds.
    pub first_part_ms: Vec<f64>,
}

impl ViewerStats {
    /// Adds another viewer's record to this one.
    pub fn merge(&mut self, other: ViewerStats) {
        self.viewers += other.viewers;
        self.sessions += other.sessions;
        self.parts += other.parts;
        self.part_bytes += other.part_bytes;
        self.playlists += other.playlists;
        self.stalls += other.stalls;
        self.gaps += other.gaps;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.warmup_errors {
            *self.warmup_errors.entry(k).or_default() += v;
        }
        self.part_latency_ms.extend(other.part_latency_ms);
        self.playlist_latency_ms.extend(other.playlist_latency_ms);
        self.pdt_part_latency_ms.extend(other.pdt_part_latency_ms);
        self.pdt_playlist_latency_ms
            .extend(other.pdt_playlist_latency_ms);
        self.first_part_ms.extend(other.first_part_ms);
    }

    /// The JSON summary (sorts the samples).
    pub fn summary(&mut self) -> Value {
        let negative = self
            .pdt_part_latency_ms
            .iter()
            .filter(|&&v| v < 0.0)
            .count();
        json!({
            "viewers": self.viewers,
            "sessions": self.sessions,
            "parts": self.parts,
            "part_bytes": self.part_bytes,
            "playlists": self.playlists,
            "stalls": self.stalls,
            "gaps": self.gaps,
            "errors": self.errors.values().sum::<u64>(),
            "errors_by_kind": self.errors,
            "warmup_errors": self.warmup_errors,
            "part_latency_ms": summary_ms(&mut self.part_latency_ms),
            "playlist_latency_ms": summary_ms(&mut self.playlist_latency_ms),
            "pdt_part_latency_ms": summary_ms(&mut self.pdt_part_latency_ms),
            "pdt_part_latency_negative": negative,
            "pdt_playlist_latency_ms": summary_ms(&mut self.pdt_playlist_latency_ms),
            "first_part_ms": summary_ms(&mut self.first_part_ms),
        })
    }

    fn error(&mut self, measuring: bool, kind: impl Into<String>) {
        let map = if measuring {
            &mut self.errors
        } else {
            &mut self.warmup_errors
        };
        *map.entry(kind.into()).or_default() += 1;
    }
}

/// Why a request gave no response.
enum Failure {
    /// The run is over.
    End,
    /// A connection error or timeout, described.
    Error(String),
}

/// One keep-alive HTTP/1.1 connection, reopened after a failure.
struct Http {
    server: SocketAddr,
    host: String,
    gzip: bool,
    sender: Option<SendRequest<Empty<Bytes>>>,
    until: Instant,
}

impl Http {
    async fn request(
        &mut self,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let deadline = (Instant::now() + REQUEST_TIMEOUT).min(self.until);
        match tokio::time::timeout_at(deadline, self.exchange(method, path)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(Failure::Error(e))
            }
            Err(_) => {
                self.sender = None;
                if Instant::now() >= self.until {
                    Err(Failure::End)
                } else {
                    Err(Failure::Error("timeout".into()))
                }
            }
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.server)
                .await
                .map_err(|e| format!("connect: {}", e.kind()))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| "handshake".to_string())?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err("no connection".into());
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host);
        if self.gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip");
        }
        let request = request
            .body(Empty::new())
            .map_err(|_| "bad request path".to_string())?;
        sender
            .ready()
            .await
            .map_err(|_| "connection closed".to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {}", short(&e)))?;
        let status = response.status();
        let gzipped = response
            .headers()
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {}", short(&e)))?
            .to_bytes();
        if gzipped {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .map_err(|_| "bad gzip body".to_string())?;
            return Ok((status, Bytes::from(plain)));
        }
        Ok((status, body))
    }
}

fn short(e: &hyper::Error) -> &'static str {
    if e.is_incomplete_message() {
        "connection closed mid-response"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "failed"
    }
}

/// Runs one viewer until `config.until` and returns what it saw.
pub async fn run(config: ViewerConfig) -> ViewerStats {
    let mut stats = ViewerStats {
        viewers: 1,
        ..ViewerStats::default()
    };
    let mut http = Http {
        server: config.server,
        host: config.server.to_string(),
        gzip: config.gzip,
        sender: None,
        until: config.until,
    };
    while Instant::now() < config.until {
        match watch(&config, &mut http, &mut stats).await {
            Ok(()) => {}
            Err(Failure::End) => break,
            Err(Failure::Error(e)) => {
                stats.error(config.measuring(Instant::now()), e);
                // Do not spin on a server that refuses everything.
                let pause = (Instant::now() + Duration::from_millis(500)).min(config.until);
                tokio::time::sleep_until(pause).await;
            }
        }
    }
    stats
}

/// One viewing session: from asking for the URL until the run ends or the URL dies.
async fn watch(
    config: &ViewerConfig,
    http: &mut Http,
    stats: &mut ViewerStats,
) -> Result<(), Failure> {
    let asked = Instant::now();
    let path = format!("/api/streams/{}/hls", config.stream);
    let (status, body) = http.request(Method::POST, &path).await?;
    if status != StatusCode::OK {
        return Err(Failure::Error(format!("POST hls: {}", status.as_u16())));
    }
    let url = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["url"].as_str().map(str::to_string))
        .ok_or_else(|| Failure::Error("POST hls: no url".into()))?;
    let base = match url.rfind('/') {
        Some(i) => url[..=i].to_string(),
        None => return Err(Failure::Error("POST hls: bad url".into())),
    };
    stats.sessions += 1;
    let get = |status: StatusCode, what: &str| -> Result<(), Failure> {
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(Failure::Error(format!("{what}: {}", status.as_u16())))
        }
    };
    let (status, _) = http
        .request(Method::GET, &format!("{base}master_playlist.m3u8"))
        .await?;
    get(status, "master playlist")?;
    let (status, body) = http
        .request(Method::GET, &format!("{base}playlist.m3u8"))
        .await?;
    get(status, "media playlist")?;
    let mut list = playlist::parse(&String::from_utf8_lossy(&body));
    if let Some(map) = &list.map_uri {
        let (status, _) = http
            .request(
                Method::GET,
                &format!("{base}{}", map.trim_start_matches("./")),
            )
            .await?;
        get(status, "init")?;
    }
    let mut last: Option<(u64, u64)> = None;
    let mut first_part = true;
    // The part fetched last, until the next one tells when it was published.
    let mut previous: Option<Fetched> = None;
    loop {
        let Some((msn, part)) = list.hint else {
            return Err(Failure::Error("no preload hint".into()));
        };
        let measuring = config.measuring(Instant::now());
        let issued = Instant::now();
        let issued_wall = SystemTime::now();
        let query = format!("{base}playlist.m3u8?_HLS_msn={msn}&_HLS_part={part}");
        let (status, body) = http.request(Method::GET, &query).await?;
        let waited = issued.elapsed();
        let answered_wall = SystemTime::now();
        let target = list.part_target.unwrap_or(1.0);
        match status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                // Nothing within the hold: the camera is away. Ask again.
                if measuring {
                    stats.stalls += 1;
                }
                stats.error(measuring, "playlist 503");
                continue;
            }
            StatusCode::NOT_FOUND => {
                // The output went idle and its URL died: start over.
                stats.error(measuring, "playlist 404 (expired)");
                return Ok(());
            }
            other => return Err(Failure::Error(format!("playlist: {}", other.as_u16()))),
        }
        let next = playlist::parse(&String::from_utf8_lossy(&body));
        if measuring {
            stats.playlists += 1;
            if waited.as_secs_f64() > 3.0 * target {
                stats.stalls += 1;
            }
            let awaited = next.parts.iter().find(|p| (p.msn, p.index) == (msn, part));
            if let Some(end) = awaited.and_then(|p| p.end_time)
                && end > issued_wall
            {
                stats
                    .pdt_playlist_latency_ms
                    .push(ms_between(end, answered_wall));
            }
        }
        let (start, gap) = to_fetch(&next, last, (msn, part));
        if gap {
            stats.gaps += 1;
            previous = None;
        }
        for p in &next.parts[start..] {
            let (status, body) = http
                .request(
                    Method::GET,
                    &format!("{base}{}", p.uri.trim_start_matches("./")),
                )
                .await?;
            let done = SystemTime::now();
            let measuring = config.measuring(Instant::now());
            if status != StatusCode::OK {
                stats.error(measuring, format!("part: {}", status.as_u16()));
                previous = None;
                continue;
            }
            if first_part {
                first_part = false;
                stats
                    .first_part_ms
                    .push(asked.elapsed().as_secs_f64() * 1000.0);
            }
            // This part's first frame completed the previous part: its send time is when the
            // previous part could first be published.
            let sent = wallclock::find(&body);
            if let (Some(prev), Some(sent)) = (previous.take(), sent)
                && prev.measuring
            {
                stats
                    .part_latency_ms
                    .push(wallclock::ms_since(sent, prev.done));
                if let Some((issued, answered)) = prev.blocked
                    && wallclock::ms_since(sent, issued) < 0.0
                {
                    stats
                        .playlist_latency_ms
                        .push(wallclock::ms_since(sent, answered));
                }
            }
            if measuring {
                stats.parts += 1;
                stats.part_bytes += body.len() as u64;
                if let Some(end) = p.end_time {
                    stats.pdt_part_latency_ms.push(ms_between(end, done));
                }
            }
            previous = Some(Fetched {
                done,
                measuring,
                blocked: ((p.msn, p.index) == (msn, part)).then_some((issued_wall, answered_wall)),
            });
            last = Some((p.msn, p.index));
        }
        list = MediaPlaylist {
            part_target: next.part_target.or(list.part_target),
            ..next
        };
    }
}

/// A part fetched, waiting for its successor's first frame.
struct Fetched {
    /// When its response ended.
    done: SystemTime,
    /// Whether that was inside the measurement window.
    measuring: bool,
    /// When the blocking playlist request that announced it went out and was answered, if
    /// it was the part that request waited for.
    blocked: Option<(SystemTime, SystemTime)>,
}

/// Where the parts to fetch start in `list`: after `last`, the last part fetched, or at
/// `awaited` before the first; and whether parts were missed (`last` left the playlist).
fn to_fetch(list: &MediaPlaylist, last: Option<(u64, u64)>, awaited: (u64, u64)) -> (usize, bool) {
    let find = |name: (u64, u64)| list.parts.iter().position(|p| (p.msn, p.index) == name);
    match last {
        None => (find(awaited).unwrap_or(list.parts.len()), false),
        Some(l) => match find(l) {
            Some(i) => (i + 1, false),
            None => (0, true),
        },
    }
}

/// `to − from` in milliseconds, negative when `to` is earlier.
fn ms_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::Part;

    fn list(names: &[(u64, u64)]) -> MediaPlaylist {
        MediaPlaylist {
            parts: names
                .iter()
                .map(|&(msn, index)| Part {
                    msn,
                    index,
                    uri: format!("./segment/{msn}.{index}.m4s"),
                    end_time: None,
                })
                .collect(),
            ..MediaPlaylist::default()
        }
    }

    #[test]
    fn fetches_every_part_after_the_last_one() {
        let l = list(&[(4, 2), (4, 3), (5, 0), (5, 1)]);
        // First time: from the part waited for.
        assert_eq!(to_fetch(&l, None, (5, 0)), (2, false));
        assert_eq!(to_fetch(&l, None, (6, 0)), (4, false));
        // Then everything after the last part fetched, even if several came at once.
        assert_eq!(to_fetch(&l, Some((4, 3)), (5, 0)), (2, false));
        assert_eq!(to_fetch(&l, Some((4, 2)), (5, 1)), (1, false));
        assert_eq!(to_fetch(&l, Some((5, 1)), (5, 2)), (4, false));
        // The last part fetched left the playlist: all of it, and a gap.
        assert_eq!(to_fetch(&l, Some((3, 0)), (5, 0)), (0, true));
    }

    #[test]
    fn signed_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(ms_between(t, t + Duration::from_millis(5)), 5.0);
        assert_eq!(ms_between(t + Duration::from_millis(5), t), -5.0);
    }
}

//! Every mainstream HLS client plays Sluice's output, from the first second: hls.js and Shaka
//! Player (npm) in headless Chromium, Chromium's native HLS, GStreamer's `playbin3`, ffmpeg and
//! VLC, each on a cold stream (the client's own request starts it), on a warm one, and across a
//! camera restart followed by a resolution change.
//!
//! The clients run through `tests/players/browser.mjs` and `tests/players/play.py`, which report
//! the frames they have decoded, the picture size and their errors as JSON lines (see those
//! scripts). The tests assert what must hold on a loaded 2-core machine: frames are decoded and
//! keep coming (at least a quarter of real time), the picture has the right size, no fatal
//! error. Start-up times, live latency and stalls are figures for the benchmark
//! (`benches/players.sh`, BENCHMARKS.md), not pass/fail lines.

pub mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;

/// Frames per second of both sources used here: the demo clip and the RTSP fixture.
const FPS: f64 = 25.0;
/// How long each client is watched once it shows its first frame (seconds of its own clock).
const WATCH: f64 = 8.0;
/// Seconds of media a client must get into the stream beyond where it had stopped, to show it
/// got going again after a change.
const RECOVERED: f64 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    HlsJs,
    Shaka,
    Native,
    GStreamer,
    Ffmpeg,
    Vlc,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::HlsJs => "hls.js",
            Client::Shaka => "shaka",
            Client::Native => "native",
            Client::GStreamer => "gstreamer",
            Client::Ffmpeg => "ffmpeg",
            Client::Vlc => "vlc",
        }
    }

    fn is_browser(self) -> bool {
        matches!(self, Client::HlsJs | Client::Shaka | Client::Native)
    }

    /// Whether it plays old media again while a camera is away. Chromium's native HLS (156)
    /// does: its frame count and playhead keep growing through the outage, so neither shows
    /// that media from after a restart was played; only a new picture size does.
    fn replays_old_media(self) -> bool {
        self == Client::Native
    }

    /// The command that plays `url` for at most `max_secs`, checking its tools are installed.
    fn command(self, url: &str, max_secs: u64) -> Command {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/players");
        let mut command = if self.is_browser() {
            require_tool("node");
            require_tool("chromium");
            let root = repo_root();
            for package in ["playwright-core", "hls.js", "shaka-player"] {
                assert!(
                    root.join("node_modules").join(package).exists(),
                    "{package} is not installed: run the README's test command (scripts/test.sh)"
                );
            }
            let mut c = Command::new("node");
            c.current_dir(root).arg(dir.join("browser.mjs"));
            c
        } else {
            match self {
                Client::GStreamer => require_tool("gst-inspect-1.0"),
                Client::Ffmpeg => require_tool("ffmpeg"),
                _ => require_tool("cvlc"),
            }
            let mut c = Command::new("/usr/bin/python3");
            c.arg(dir.join("play.py"));
            c
        };
        command.args([self.name(), url, &max_secs.to_string()]);
        command
    }
}

/// One line of a client's report.
#[derive(Clone, Debug, Default)]
struct Report {
    /// Seconds since the client started (browsers: since the stream was requested).
    t: f64,
    frames: u64,
    /// Media time of the playhead or of the latest frame (seconds), when the client says.
    position: Option<f64>,
    width: u64,
    height: u64,
    first_frame: Option<f64>,
    fatal: Vec<String>,
    errors: Vec<String>,
    raw: String,
}

impl Report {
    fn parse(line: &str) -> Option<Report> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let strings = |key: &str| -> Vec<String> {
            v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Report {
            t: v["t"].as_f64()?,
            frames: v["frames"].as_u64()?,
            position: v["position"].as_f64(),
            width: v["width"].as_u64().unwrap_or(0),
            height: v["height"].as_u64().unwrap_or(0),
            first_frame: v["firstFrame"].as_f64(),
            fatal: strings("fatal"),
            errors: strings("errors"),
            raw: line.to_string(),
        })
    }
}

#[derive(Default)]
struct Reports {
    lines: Vec<Report>,
    /// The client's output ended (it exited).
    ended: bool,
}

impl Reports {
    fn last(&self) -> Report {
        self.lines.last().cloned().unwrap_or_default()
    }

    /// How far the client has got into the stream: the furthest media time it has played
    /// (seconds). A client that goes back and plays old media again (Chromium's native HLS
    /// does, while a camera is away) does not get further; a client that reports no media
    /// time (VLC) counts its frames, which it does not play twice.
    fn reach(&self) -> f64 {
        self.lines
            .iter()
            .map(|r| r.position.unwrap_or(r.frames as f64 / FPS))
            .fold(0.0, f64::max)
    }

    /// Seconds (client clock) since [`Reports::reach`] last grew.
    fn stuck_for(&self) -> f64 {
        let Some(last) = self.lines.last() else {
            return 0.0;
        };
        let mut reach = 0.0;
        let mut since = last.t;
        for r in &self.lines {
            let here = r.position.unwrap_or(r.frames as f64 / FPS);
            if here > reach {
                reach = here;
                since = r.t;
            }
        }
        last.t - since
    }
}

/// Browsers run one at a time: two Chromiums decoding on a 2-core machine would measure the
/// machine, not the stream.
static BROWSER: Mutex<()> = Mutex::new(());

/// A client playing a stream, reporting as it goes; stopped when dropped.
struct Player {
    client: Client,
    child: Child,
    stdin: Option<ChildStdin>,
    reports: Arc<(Mutex<Reports>, Condvar)>,
    _one_browser: Option<MutexGuard<'static, ()>>,
}

impl Player {
    /// Starts `client` on `url`: a stream's start URL (`/api/streams/NAME/hls`), which the
    /// client POSTs itself so a cold stream starts with its request.
    fn start(client: Client, url: &str) -> Player {
        let one_browser = client
            .is_browser()
            .then(|| BROWSER.lock().unwrap_or_else(|e| e.into_inner()));
        let max_secs = PATIENCE.as_secs() * 3;
        let mut child = client
            .command(url, max_secs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", client.name()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let reports = Arc::new((Mutex::new(Reports::default()), Condvar::new()));
        let shared = Arc::clone(&reports);
        std::thread::spawn(move || {
            let (lock, changed) = &*shared;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(r) = Report::parse(&line) {
                    lock.lock().unwrap_or_else(|e| e.into_inner()).lines.push(r);
                    changed.notify_all();
                }
            }
            lock.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
            changed.notify_all();
        });
        Player {
            client,
            child,
            stdin,
            reports,
            _one_browser: one_browser,
        }
    }

    /// Waits (bounded by [`PATIENCE`]) until the reports satisfy `ok`; returns the latest.
    fn wait_for(&self, what: &str, ok: impl Fn(&Reports) -> bool) -> Report {
        let (lock, changed) = &*self.reports;
        let deadline = Instant::now() + PATIENCE;
        let mut reports = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if ok(&reports) {
                return reports.last();
            }
            let last = reports.last();
            assert!(
                last.fatal.is_empty(),
                "{} failed while waiting for {what}: {}",
                self.client.name(),
                last.raw
            );
            assert!(
                !reports.ended,
                "{} ended while waiting for {what}: {}",
                self.client.name(),
                last.raw
            );
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} never got to {what}: {}",
                self.client.name(),
                last.raw
            );
            reports = changed
                .wait_timeout(reports, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// See [`Reports::reach`].
    fn reach(&self) -> f64 {
        let (lock, _) = &*self.reports;
        lock.lock().unwrap_or_else(|e| e.into_inner()).reach()
    }

    /// Waits for `secs` more seconds of the client's clock after `from`.
    fn watch(&self, from: &Report, secs: f64) -> Report {
        self.wait_for(&format!("{secs} s of playback"), |r| {
            r.last().t >= from.t + secs
        })
    }

    /// Stops the client (its stdin closes) and returns its final report.
    fn stop(mut self) -> Report {
        drop(self.stdin.take());
        let last = self.wait_for("its final report", |r| r.ended);
        let _ = self.child.wait();
        last
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        // Closing stdin asks the client to stop; it gets a few seconds to report and exit.
        drop(self.stdin.take());
        let (lock, changed) = &*self.reports;
        let reports = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = changed.wait_timeout_while(reports, Duration::from_secs(10), |r| !r.ended);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every playback must show between two reports: no fatal error, the picture size, and
/// frames decoded at no less than a quarter of real time.
fn assert_decodes(client: Client, from: &Report, to: &Report, size: (u64, u64)) {
    let name = client.name();
    assert!(to.fatal.is_empty(), "{name}: fatal errors: {}", to.raw);
    assert_eq!(
        (to.width, to.height),
        size,
        "{name}: picture size: {}",
        to.raw
    );
    let wall = to.t - from.t;
    let frames = to.frames.saturating_sub(from.frames);
    assert!(
        frames as f64 >= wall * FPS / 4.0,
        "{name} decoded {frames} frames in {wall:.1} s (from {} to {})",
        from.raw,
        to.raw
    );
}

/// Plays a stream from its start URL: first frame, then [`WATCH`] seconds of decoding.
fn plays(client: Client, server: &Server, stream: &str, size: (u64, u64)) {
    let player = Player::start(client, &server.url(&format!("/api/streams/{stream}/hls")));
    let first = player.wait_for("a first frame", |r| r.last().frames > 0);
    let end = player.watch(&first, WATCH);
    let last = player.stop();
    assert_decodes(client, &first, &end, size);
    assert!(last.fatal.is_empty(), "{}: {}", client.name(), last.raw);
    eprintln!(
        "{} on {stream}: first frame after {:.2} s, {} frames; errors: {:?}",
        client.name(),
        last.first_frame.unwrap_or(f64::NAN),
        last.frames,
        last.errors
    );
}

/// A cold demo stream (not preloaded): the client's request starts it, and its first playlist
/// is held back until the stream can start every client (`hls.startup_segments`).
fn plays_cold(client: Client) {
    plays_cold_with(client, "");
}

/// [`plays_cold`] with more configuration (YAML lines before `streams:`).
fn plays_cold_with(client: Client, config: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        &format!("{config}streams:\n  demo: {{ source: \"builtin:demo\" }}\n"),
    );
    assert_eq!(stream_info(&server, "demo")["state"], "idle");
    plays(client, &server, "demo", (640, 360));
}

/// A preloaded demo stream whose window is already full.
fn plays_warm(client: Client) {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "streams:\n  demo: { source: \"builtin:demo\", preload: true }\n",
    );
    wait_for_state(&server, "demo", |i| i["state"] == "running");
    let base = hls_base(&server, "demo");
    wait_for_segments(&base, 7);
    plays(client, &server, "demo", (640, 360));
}

/// Where a client stood once it had played out a stopped camera's media.
struct Down {
    /// See [`Reports::reach`]; `None` for a client that replays old media.
    reach: Option<f64>,
    frames: u64,
}

impl Down {
    /// Whether the client has got going again since: a second of frames decoded, and (unless
    /// it replays old media) [`RECOVERED`] seconds further into the stream.
    fn recovered(&self, r: &Reports) -> bool {
        r.last().frames >= self.frames + FPS as u64
            && self
                .reach
                .is_none_or(|reach| r.reach() >= reach + RECOVERED)
    }
}

/// Kills the camera and waits until the stream has noticed and the client has played out
/// what it had (it got no further into the stream for two seconds; not for a client that
/// replays old media, which never stops), and says where it stood.
fn take_camera_down(player: &Player, server: &Server, camera: &mut Camera) -> Down {
    camera.kill();
    wait_for_state(server, "cam", |i| i["state"] == "retrying");
    if player.client.replays_old_media() {
        return Down {
            reach: None,
            frames: player.wait_for("a report", |_| true).frames,
        };
    }
    let last = player.wait_for("the old run to play out", |r| r.stuck_for() >= 2.0);
    Down {
        reach: Some(player.reach()),
        frames: last.frames,
    }
}

/// What a client does after a change of the camera.
#[derive(Clone, Copy)]
enum Outcome {
    /// It keeps decoding (at the new picture size, after a size change).
    Plays,
    /// It stops for good, reporting this error: a known limitation of the client.
    Stops(&'static str),
    /// Not part of this test (see the client's separate, ignored test).
    NotTested,
}

/// Waits for the client's documented failure `error` after the last change, and checks it did
/// not get on into the stream (from `reach`) as if it had recovered.
fn assert_stops(player: &Player, client: Client, down: &Down, error: &str) {
    let stopped = player.wait_for(&format!("the error {error:?}"), |r| {
        r.last().errors.iter().any(|e| e.contains(error))
    });
    assert!(
        down.reach
            .is_some_and(|reach| player.reach() < reach + RECOVERED),
        "{} plays on now: update this test and the README: {}",
        client.name(),
        stopped.raw
    );
}

/// A cold RTSP camera restarts (same port, same settings: a new run, marked with
/// `EXT-X-DISCONTINUITY` when `restart_discontinuity`), then comes back with another picture
/// size (a new init segment after a discontinuity); after each change the client does what
/// `restart` and `new_size` say.
fn recovers(client: Client, restart_discontinuity: bool, restart: Outcome, new_size: Outcome) {
    let mut camera = Camera::start(&[]);
    // rtsp://127.0.0.1:PORT/stream: the camera comes back on the same port.
    let port = camera.port();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        &format!(
            "hls: {{ restart_discontinuity: {restart_discontinuity} }}\n\
             ingest: {{ restart_increment: 0.5 }}\n\
             streams:\n  cam: {{ source: \"{}\", transport: tcp, stall_timeout: 2 }}\n",
            camera.url
        ),
    );
    let player = Player::start(client, &server.url("/api/streams/cam/hls"));
    let first = player.wait_for("a first frame", |r| r.last().frames > 0);
    let before = player.wait_for("a second of video", |r| {
        r.last().frames >= first.frames + FPS as u64
    });
    assert_decodes(client, &first, &before, (320, 240));

    // The camera restarts with the same settings.
    let down = take_camera_down(&player, &server, &mut camera);
    camera = Camera::start(&["--port", &port]);
    match restart {
        Outcome::Plays => {
            let back =
                player.wait_for("media from after the camera restart", |r| down.recovered(r));
            assert_eq!((back.width, back.height), (320, 240), "{}", back.raw);
        }
        Outcome::Stops(error) => assert_stops(&player, client, &down, error),
        Outcome::NotTested => unreachable!("the restart is always tested"),
    }

    // The camera comes back with another picture size: a new init segment (EXT-X-MAP).
    let resize = matches!(restart, Outcome::Plays) && !matches!(new_size, Outcome::NotTested);
    if resize {
        let down = take_camera_down(&player, &server, &mut camera);
        camera = Camera::start(&["--port", &port, "--width", "480", "--height", "360"]);
        match new_size {
            Outcome::Plays => {
                // Only the new run has that size.
                player.wait_for("a second of frames at the new size", |r| {
                    let at_new_size = r.lines.iter().find(|l| (l.width, l.height) == (480, 360));
                    at_new_size.is_some_and(|l| r.last().frames >= l.frames + FPS as u64)
                        && down.recovered(r)
                });
            }
            Outcome::Stops(error) => assert_stops(&player, client, &down, error),
            Outcome::NotTested => unreachable!(),
        }
    }
    let reach = player.reach();
    let last = player.stop();
    drop(camera);
    assert!(last.fatal.is_empty(), "{}: {}", client.name(), last.raw);
    eprintln!(
        "{}: {} frames before the restart, {} in all, {reach:.1} s into the stream; errors: {:?}",
        client.name(),
        before.frames,
        last.frames,
        last.errors
    );
}

macro_rules! client_tests {
    ($($(#[$doc:meta])* $module:ident: $client:expr, $new_size:expr;)*) => {$(
        $(#[$doc])*
        mod $module {
            use super::*;

            #[test]
            fn plays_a_cold_stream() {
                plays_cold($client);
            }

            #[test]
            fn plays_a_warm_stream() {
                plays_warm($client);
            }

            #[test]
            fn recovers_from_a_camera_restart_then_meets_a_new_picture_size() {
                recovers($client, true, Outcome::Plays, $new_size);
            }
        }
    )*};
}

client_tests! {
    hlsjs: Client::HlsJs, Outcome::Plays;
    shaka: Client::Shaka, Outcome::Plays;
    native_hls: Client::Native, Outcome::Plays;
    gstreamer: Client::GStreamer, Outcome::Plays;
    ffmpeg: Client::Ffmpeg, Outcome::Plays;
}

/// VLC 3.0 (Debian 12) stops for good at an `EXT-X-DISCONTINUITY` in fMP4 HLS: its adaptive
/// demuxer restarts the MP4 demuxer on the segment after the tag without sending the init
/// segment again ("no moov before mdat"), and its HLS parser keeps only a playlist's first
/// `EXT-X-MAP` ("FIXME: handle discontinuities", `modules/demux/hls/playlist/Parser.cpp`).
mod vlc {
    use super::*;

    #[test]
    fn plays_a_cold_stream() {
        plays_cold(Client::Vlc);
    }

    #[test]
    fn plays_a_warm_stream() {
        plays_warm(Client::Vlc);
    }

    /// With the default `hls.restart_discontinuity`, a camera restart stops VLC.
    #[test]
    fn stops_at_a_camera_restart_marked_as_a_discontinuity() {
        let error = "no moov before mdat";
        recovers(Client::Vlc, true, Outcome::Stops(error), Outcome::NotTested);
    }

    /// `hls.restart_discontinuity: false` keeps VLC playing across a camera restart; a new
    /// picture size (a new init segment, always after a discontinuity) still stops it.
    #[test]
    fn recovers_from_a_camera_restart_without_the_discontinuity_tag() {
        let error = "no moov before mdat";
        recovers(Client::Vlc, false, Outcome::Plays, Outcome::Stops(error));
    }
}

/// Shaka starts on a first playlist of a single complete segment (`startup_segments: 1`, with
/// the segment in progress listed by its parts): without `CLOSED-CAPTIONS=NONE` its caption
/// probe picks the segment that has no URI yet and the load fails.
#[test]
fn shaka_plays_a_cold_stream_from_one_segment() {
    plays_cold_with(Client::Shaka, "hls: { startup_segments: 1 }\n");
}

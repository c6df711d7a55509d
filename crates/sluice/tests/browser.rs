//! Real-browser playback: headless Debian Chromium, driven by playwright-core
//! (`tests/browser/play.mjs`), plays Sluice's web page with hls.js in low-latency mode and with
//! the browser's native HLS. The page's screenshot is saved under `test-artifacts/`.

pub mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// What play.mjs reported.
struct Playback(serde_json::Value);

impl Playback {
    fn f(&self, key: &str) -> f64 {
        self.0[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {}", self.0))
    }
}

/// A path under `test-artifacts/` (created).
fn artifact(name: &str) -> PathBuf {
    let dir = repo_root().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs one of the `tests/browser/*.mjs` scripts and parses the JSON line it prints.
fn node(script: &str, args: &[&str]) -> serde_json::Value {
    let root = repo_root();
    let out = Command::new("node")
        .current_dir(&root)
        .arg(root.join("crates/sluice/tests/browser").join(script))
        .args(args)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("JSON from the script")
}

/// One browser at a time: three Chromiums decoding at once on a 2-core machine would measure
/// the machine, not the stream.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn play(page: &str, stream: &str, engine: &str, seconds: u32) -> Playback {
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("node");
    require_tool("chromium");
    let root = repo_root();
    assert!(
        root.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run the README's test command (scripts/test.sh)"
    );
    let shot = artifact(&format!("browser-{stream}-{engine}.png"));
    // A screenshot left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(&shot);
    let seconds = seconds.to_string();
    let v = node(
        "play.mjs",
        &[page, stream, engine, &seconds, shot.to_str().unwrap()],
    );
    assert!(v["failure"].is_null(), "playback failed: {v}");
    assert!(shot.exists(), "screenshot saved");
    eprintln!("{stream} with {engine}: {v}");
    Playback(v)
}

/// What every playback must show, whatever the machine's load: the engine asked for, no fatal
/// error, the picture's width, and media time advancing (at least a quarter of the wall time:
/// a stall-free rate is a figure for the benchmark, `benches/players`, not a pass/fail line).
fn assert_plays(p: &Playback, engine: &str) {
    assert_eq!(p.0["engineUsed"], engine, "{}", p.0);
    assert_eq!(p.f("fatal"), 0.0, "fatal errors: {}", p.0);
    assert!(p.f("width") > 0.0, "no picture: {}", p.0);
    assert_eq!(p.0["poster"], true, "the snapshot poster: {}", p.0);
    let (media, wall) = (p.f("mediaElapsed"), p.f("wallElapsed"));
    assert!(
        media > 2.0 && media > wall / 4.0,
        "playback did not advance ({media:.2} s of media in {wall:.2} s): {}",
        p.0
    );
}

/// A config with one cold (not preloaded) demo stream: its first viewer starts it.
fn cold_demo(dir: &std::path::Path) -> Server {
    let config = write_config(dir, "streams:\n  demo: { source: \"builtin:demo\" }\n");
    Server::start(&["--config", config.to_str().unwrap()])
}

#[test]
fn demo_plays_with_hlsjs() {
    let server = Server::start(&[]);
    let p = play(&server.url("/"), "demo", "hls.js", 20);
    assert_plays(&p, "hls.js");
    assert_eq!(p.f("width"), 640.0);
}

#[test]
fn a_cold_rtsp_camera_plays_with_hlsjs() {
    let camera = Camera::start(&["--gop", "25"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "streams:\n  cam: {{ source: \"{}\", transport: tcp }}\n",
            camera.url
        ),
    );
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let p = play(&server.url("/"), "cam", "hls.js", 20);
    assert_plays(&p, "hls.js");
    assert_eq!(p.f("width"), 320.0);
}

/// Chromium's native HLS on a cold stream, opened by its first viewer: the first playlist
/// waits for `hls.startup_segments` (three) complete segments, which native HLS needs.
#[test]
fn a_cold_demo_plays_with_native_hls() {
    let dir = tempfile::tempdir().unwrap();
    let server = cold_demo(dir.path());
    let p = play(&server.url("/"), "demo", "native", 12);
    assert_plays(&p, "native");
}

#[test]
fn record_button_starts_a_recording() {
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let config = write_config(
        dir.path(),
        &format!(
            "server: {{ record_dirs: [\"{}\"] }}\nstreams:\n  demo: {{ source: \"builtin:demo\", preload: true }}\n",
            rec.display()
        ),
    );
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let shot = artifact("browser-record-button.png");
    let _ = std::fs::remove_file(&shot);
    let page = server.url("/");
    let v = node(
        "record_button.mjs",
        &[page.as_str(), "demo", shot.to_str().unwrap()],
    );
    assert!(v["failure"].is_null(), "{v}");
    assert!(
        v["status"].as_str().unwrap().contains("recording to"),
        "{v}"
    );
    assert_eq!(v["disabled"], true, "one recording at a time: {v}");
    assert_eq!(v["badges"], serde_json::json!(["running", "available"]));
    let info = stream_info(&server, "demo");
    assert_eq!(info["recording"]["duration"], 30.0, "{info}");
    assert_eq!(
        info["recording"]["lookback"].as_f64().map(|l| l > 0.0),
        Some(true),
        "{info}"
    );
}

/// The web page manages cameras: an invalid source's error in place, a probe result before
/// saving, a camera added through the form playing, a duplicate name refused in place, its
/// orientation edited, and its removal after a confirmation; the state file follows.
#[test]
fn the_page_adds_edits_and_removes_a_camera() {
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("node");
    require_tool("chromium");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "streams: {}\n");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let shot = artifact("browser-manage-cameras.png");
    let _ = std::fs::remove_file(&shot);
    let page = server.url("/");
    let v = node(
        "manage_cameras.mjs",
        &[page.as_str(), "porch", shot.to_str().unwrap()],
    );
    eprintln!("manage_cameras: {v}");
    assert!(v["failure"].is_null(), "{v}");
    assert_eq!(v["dialogs"], serde_json::json!([]), "no alert: {v}");
    let s = |key: &str| v[key].as_str().unwrap_or_default().to_string();
    // The invalid source: the API's message next to the source field, from the probe and from
    // saving; nothing added.
    for key in ["invalidSourceProbe", "invalidSourceSave", "editError"] {
        assert!(
            s(key).starts_with("unsupported source scheme \"gopher\""),
            "{key}: {v}"
        );
    }
    assert!(
        s("invalidSourceResult").contains("Probe failed (invalid_url)"),
        "{v}"
    );
    assert_eq!(v["cardsAfterInvalid"], 0, "{v}");
    // Saving waits for a probe of the source as it is now.
    assert_eq!(v["saveDisabledBeforeProbe"], true, "{v}");
    assert_eq!(v["saveDisabledAfterEdit"], true, "{v}");
    assert_eq!(v["saveEnabledAfterProbe"], true, "{v}");
    let probe = s("probe");
    assert!(
        probe.contains("video: avc1.") && probe.contains("(h264) 640x360 25.00 fps"),
        "{probe}"
    );
    assert!(
        probe.contains("audio: mp4a.40.2 (aac) 48000 Hz 1 ch"),
        "{probe}"
    );
    // Added: the card plays.
    assert_eq!(v["addPanelHidden"], true, "{v}");
    assert_eq!(v["width"], 640, "{v}");
    assert!(s("duplicateName").contains("already exists"), "{v}");
    // Edited: the API has the new orientation; the form never showed the source in clear.
    assert_eq!(v["afterEdit"]["options"]["orientation"], 6, "{v}");
    assert!(s("options").contains("orientation 6"), "{v}");
    assert!(s("editPlaceholder").starts_with("builtin:demo"), "{v}");
    assert!(shot.exists(), "screenshot saved");
    // Removed after a confirmation; cancelling kept it.
    assert!(s("confirm").starts_with("Remove camera porch?"), "{v}");
    assert_eq!(v["keptAfterCancel"], 1, "{v}");
    assert_eq!(v["removed"], true, "{v}");
    assert_eq!(v["playerGone"], true, "{v}");
    assert_eq!(get(&server.url("/api/streams/porch")).status, 404);
    let saved = std::fs::read_to_string(dir.path().join("sluice-streams.yaml")).unwrap();
    assert!(!saved.contains("porch"), "{saved}");
}

//! RTSP cameras: a real gst-rtsp-server, Sluice's HLS output decoded by ffprobe.

pub mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const FPS: f64 = 25.0;

/// Starts Sluice with one stream `cam` for `source` and extra stream options (YAML flow-map
/// entries), with short timeouts.
fn serve_camera(dir: &std::path::Path, source: &str, options: &str) -> Server {
    let config = write_config(
        dir,
        &format!(
            "hls: {{ segment_duration: 1.0, part_duration: 0.3 }}\n\
             streams:\n  cam: {{ source: \"{source}\", stall_timeout: 2, connect_timeout: 10{options} }}\n"
        ),
    );
    Server::start(&["--config", config.to_str().unwrap()])
}

fn h264_window(server: &Server) -> String {
    let base = hls_base(server, "cam");
    let master = get(&format!("{base}master_playlist.m3u8"));
    assert_eq!(master.status, 200, "{}", master.text());
    let text = master.text();
    assert!(text.contains("CODECS=\"avc1."), "{text}");
    assert!(text.contains(",mp4a.40.2\",RESOLUTION=320x240"), "{text}");
    let (live, probe) = decode_window(&base, 4, FPS, "h264");
    assert!(probe.frames_of("aac") > 0, "audio decoded");
    live
}

#[test]
fn tcp_transport() {
    let camera = Camera::start(&["--gop", "25"]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_camera(dir.path(), &camera.url, ", transport: tcp");
    h264_window(&server);
    let info = stream_info(&server, "cam");
    assert_eq!(info["state"], "running");
    assert_eq!(info["available"], true);
}

#[test]
fn udp_transport() {
    let camera = Camera::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_camera(dir.path(), &camera.url, ", transport: udp");
    h264_window(&server);
}

#[test]
fn auto_transport_falls_back_to_udp_when_tcp_is_refused() {
    let camera = Camera::start(&["--transport", "udp"]);
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_camera(dir.path(), &camera.url, "");
    h264_window(&server);
    let log = server.finish_log();
    assert!(
        log.iter().any(|l| l.contains("falling back to UDP")),
        "{log:#?}"
    );
}

#[test]
fn digest_auth_with_right_and_wrong_password() {
    let camera = Camera::start(&["--auth", "digest:viewer:s3cr%t"]);
    let dir = tempfile::tempdir().unwrap();
    // The password is percent-encoded in the URL.
    let good = camera.url_with("viewer", "s3cr%25t");
    let server = serve_camera(dir.path(), &good, ", transport: tcp");
    h264_window(&server);
    drop(server);

    let bad = camera.url_with("viewer", "wrong-password");
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_camera(dir.path(), &bad, ", transport: tcp");
    let _ = hls_base(&server, "cam");
    let info = wait_for_state(&server, "cam", |i| !i["last_error"].is_null());
    assert_eq!(info["last_error"]["kind"], "unauthorized", "{info}");
    assert_eq!(info["available"], false);
    let text = info.to_string();
    assert!(
        !text.contains("wrong-password"),
        "credentials leaked: {text}"
    );
    assert!(
        info["source"].as_str().unwrap().contains("****:****@"),
        "{info}"
    );
    // The server log never shows the password either.
    let log = server.finish_log();
    assert!(
        log.iter().all(|l| !l.contains("wrong-password")),
        "{log:#?}"
    );

    // `sluice probe` says the same, and exits non-zero.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["probe", &bad, "--transport", "tcp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error (unauthorized)"), "{stderr}");
    assert!(!stderr.contains("wrong-password"), "{stderr}");
}

#[test]
fn probe_prints_tracks() {
    let camera = Camera::start(&["--fps", "25"]);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["probe", &camera.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" (h264) 320x240 25.00 fps"), "{stdout}");
    assert!(
        stdout.contains("audio: mp4a.40.2 (aac) 44100 Hz 1 ch"),
        "{stdout}"
    );
}

#[test]
fn camera_joined_mid_gop_starts_at_a_keyframe() {
    // A shared camera with a long GOP: another client keeps it streaming, and Sluice joins
    // somewhere inside a GOP.
    let camera = Camera::start(&["--shared", "--gop", "50"]);
    let mut other = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            &camera.url,
            "-t",
            "60",
            "-f",
            "null",
            "-",
        ])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_camera(dir.path(), &camera.url, ", transport: tcp");
    let base = hls_base(&server, "cam");
    let (live, _) = decode_window(&base, 3, FPS, "h264");
    let first_part = live
        .lines()
        .find(|l| l.starts_with("#EXT-X-PART:"))
        .unwrap_or("");
    assert!(first_part.ends_with("INDEPENDENT=YES"), "{live}");
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn h265_camera_is_tagged_hvc1_and_decodes() {
    let camera = Camera::start(&["--codec", "h265"]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_camera(dir.path(), &camera.url, ", transport: tcp");
    let base = hls_base(&server, "cam");
    let master = get(&format!("{base}master_playlist.m3u8")).text();
    assert!(master.contains("CODECS=\"hvc1."), "{master}");
    let init = get(&format!("{base}init.mp4")).body;
    assert!(
        init.windows(4).any(|w| w == b"hvc1"),
        "init has an hvc1 sample entry"
    );
    assert!(!init.windows(4).any(|w| w == b"hev1"));
    decode_window(&base, 3, FPS, "hevc");
}

#[test]
fn non_aac_audio_is_dropped_and_video_flows() {
    let camera = Camera::start(&["--audio", "pcmu"]);
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_camera(dir.path(), &camera.url, ", transport: tcp");
    let base = hls_base(&server, "cam");
    let master = get(&format!("{base}master_playlist.m3u8")).text();
    assert!(
        master.contains("CODECS=\"avc1.") && !master.contains("mp4a"),
        "{master}"
    );
    let (_, probe) = decode_window(&base, 3, FPS, "h264");
    assert_eq!(probe.frames_of("pcm_mulaw"), 0);
    let log = server.finish_log();
    let lines = log
        .iter()
        .filter(|l| l.contains("dropping audio track"))
        .count();
    assert_eq!(lines, 1, "{log:#?}");
}

#[test]
fn camera_killed_mid_stream_ends_the_run_within_the_stall_timeout() {
    let mut camera = Camera::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_camera(dir.path(), &camera.url, ", transport: tcp");
    let base = hls_base(&server, "cam");
    wait_for_segments(&base, 1);
    let killed = Instant::now();
    camera.kill();
    let info = wait_for_state(&server, "cam", |i| !i["last_error"].is_null());
    let took = killed.elapsed();
    let kind = info["last_error"]["kind"].as_str().unwrap().to_string();
    assert!(kind == "ended" || kind == "timeout", "{info}");
    assert_eq!(info["available"], false);
    // stall_timeout is 2 s; allow for a loaded machine.
    assert!(
        took < Duration::from_secs(2) + Duration::from_secs(8),
        "took {took:?}"
    );
    eprintln!(
        "run ended {took:?} after the camera died: {}",
        info["last_error"]
    );
}

#[test]
fn basic_auth_and_a_wrong_path() {
    let camera = Camera::start(&["--auth", "basic:viewer:pw"]);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "probe",
            &camera.url_with("viewer", "pw"),
            "--transport",
            "tcp",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong_path = camera.url_with("viewer", "pw").replace("/stream", "/nope");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["probe", &wrong_path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error (not_found): the camera has no stream at this path"),
        "{stderr}"
    );
}

#[test]
fn a_failing_camera_is_logged_once_per_change_not_once_per_retry() {
    let camera = Camera::start(&["--auth", "digest:viewer:pw"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "ingest: {{ restart_increment: 0.5 }}\nstreams:\n  cam: {{ source: \"{}\", transport: tcp }}\n",
            camera.url_with("viewer", "bad")
        ),
    );
    let mut server = Server::start(&["--config", config.to_str().unwrap()]);
    let _ = hls_base(&server, "cam");
    let info = wait_for_state(&server, "cam", |i| i["runs"].as_u64().unwrap_or(0) >= 4);
    assert_eq!(info["last_error"]["kind"], "unauthorized");
    let log = server.finish_log();
    let failures = log.iter().filter(|l| l.contains("stream failed")).count();
    assert_eq!(failures, 1, "{log:#?}");
}

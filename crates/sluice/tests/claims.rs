//! README claims that had no test of their own: `/healthz`, plain HLS with `ll_hls: false`, a
//! `file://` source over HTTP, the cold-start rule, 503 with `Retry-After` for a blocking wait
//! that cannot be satisfied in time, and failing streams and error statuses in `/metrics`.

pub mod common;

use common::*;

#[test]
fn healthz_answers() {
    let server = Server::start(&[]);
    let r = get(&server.url("/healthz"));
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[test]
fn plain_hls_when_ll_hls_is_off_and_a_file_source_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.mp4"),
        &clip,
    )
    .unwrap();
    let server = serve_yaml(
        dir.path(),
        &format!(
            "hls: {{ ll_hls: false }}\nstreams:\n  clip: {{ source: \"file://{}\" }}\n",
            clip.display()
        ),
    );
    let base = hls_base(&server, "clip");
    let (live, probe) = decode_window(&base, 3, 25.0, "h264");
    for tag in [
        "#EXT-X-PART",
        "#EXT-X-PRELOAD-HINT",
        "#EXT-X-SERVER-CONTROL",
        "#EXT-X-PART-INF",
    ] {
        assert!(!live.contains(tag), "plain HLS has no {tag}: {live}");
    }
    assert!(live.contains("#EXT-X-VERSION:6"), "{live}");
    assert!(probe.frames_of("aac") > 0, "audio decoded too");
    // Blocking-reload parameters are ignored, not errors, in plain HLS.
    let r = get(&format!("{base}playlist.m3u8?_HLS_msn=999&_HLS_part=0"));
    assert_eq!(r.status, 200);
}

/// A cold stream's first playlist waits for `hls.startup_segments` (3) complete segments: the
/// multivariant playlist, and a media playlist loaded without `_HLS_msn`.
#[test]
fn a_cold_streams_first_playlist_waits_for_the_startup_segments() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "streams:\n  a: { source: \"builtin:demo\" }\n  b: { source: \"builtin:demo\" }\n",
    );
    let complete = |text: &str| parse_playlist(text).segments.len();
    let a = hls_base(&server, "a");
    let master = get(&format!("{a}master_playlist.m3u8"));
    assert_eq!(master.status, 200);
    assert!(master.text().contains("RESOLUTION=640x360"));
    let media = get(&format!("{a}playlist.m3u8")).text();
    assert!(complete(&media) >= 3, "{media}");
    let b = hls_base(&server, "b");
    let media = get(&format!("{b}playlist.m3u8")).text();
    assert!(complete(&media) >= 3, "{media}");
}

/// RFC 8216bis §6.2.5.2: a blocking request the server cannot satisfy within three target
/// durations gets 503, with `Retry-After`. The camera is killed so nothing more is published.
#[test]
fn a_blocking_wait_that_cannot_be_satisfied_gets_503_with_retry_after() {
    let mut camera = Camera::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        &format!(
            "ingest: {{ restart_increment: 30 }}\nstreams:\n  cam: {{ source: \"{}\", transport: tcp }}\n",
            camera.url
        ),
    );
    let base = hls_base(&server, "cam");
    wait_for_segments(&base, 1);
    camera.kill();
    wait_for_state(&server, "cam", |i| i["state"] == "retrying");
    let live = parse_playlist(&get(&format!("{base}playlist.m3u8")).text());
    let next = live.segments.last().unwrap().0 + 2;
    let r = get(&format!("{base}playlist.m3u8?_HLS_msn={next}"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[test]
fn metrics_show_a_failing_stream_and_error_statuses() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of the loopback: the stream keeps failing with `refused`.
    let server = serve_yaml(
        dir.path(),
        "ingest: { restart_increment: 30 }\nstreams:\n  down: { source: \"rtsp://127.0.0.1:9/x\", preload: true }\n",
    );
    wait_for_state(&server, "down", |i| i["last_error"]["kind"] == "refused");
    assert_eq!(get(&server.url("/api/hls/0000/playlist.m3u8")).status, 404);
    assert_eq!(get(&server.url("/api/streams/nope")).status, 404);
    let text = get(&server.url("/metrics")).text();
    for line in [
        "sluice_stream_available{stream=\"down\"} 0",
        "sluice_stream_state{stream=\"down\",state=\"retrying\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    let not_found: f64 = text
        .lines()
        .find(|l| l.starts_with("sluice_http_responses_total{status=\"404\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("404s not counted:\n{text}"));
    assert!(not_found >= 2.0, "{text}");
    let restarts: f64 = text
        .lines()
        .find(|l| l.starts_with("sluice_stream_restarts_total{stream=\"down\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("restarts missing:\n{text}"));
    assert!(
        restarts >= 1.0,
        "a preloaded failing stream counts its restarts: {text}"
    );
}

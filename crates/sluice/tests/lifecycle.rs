//! Stream lifecycle, REST API, config and metrics, against the real binary: idle expiry,
//! preload, restart backoff and discontinuities across a camera restart, update_source, the API
//! token, and bad config files.

pub mod common;

use std::process::Command;

use common::*;

/// Fetches the playlist and one complete segment (which is what keeps an output alive).
fn watch_a_bit(base: &str) {
    wait_for_segments(base, 1);
    let pl = parse_playlist(&get(&format!("{base}playlist.m3u8")).text());
    let n = pl.segments[0].0;
    assert_eq!(get(&format!("{base}segment/{n}.m4s")).status, 200);
}

#[test]
fn idle_output_expires_the_token_and_stops_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        // Long enough that a loaded machine fetches the first segment in time; the exact
        // expiry is tested under a paused clock (tests/lifecycle_clock.rs).
        "hls: { idle_timeout: 4 }\nstreams:\n  demo: { source: \"builtin:demo\" }\n",
    );
    assert_eq!(
        stream_info(&server, "demo")["state"],
        "idle",
        "not preloaded: not started"
    );
    let base = hls_base(&server, "demo");
    watch_a_bit(&base);
    assert_eq!(stream_info(&server, "demo")["viewers"], 1);
    // Nobody fetches media for the idle timeout: the output expires, the worker stops.
    let info = wait_for_state(&server, "demo", |i| i["state"] == "idle");
    assert_eq!(info["outputs"], serde_json::json!([]));
    assert_eq!(info["viewers"], 0);
    let old = get(&format!("{base}playlist.m3u8"));
    assert_eq!(old.status, 404, "the old URL is dead");
    assert!(old.body.is_empty());
    // A new endpoint URL has a new token and works.
    let fresh = hls_base(&server, "demo");
    assert_ne!(fresh, base);
    watch_a_bit(&fresh);
}

#[test]
fn preload_keeps_the_worker_through_idle_but_resets_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "hls: { idle_timeout: 4 }\nstreams:\n  demo: { source: \"builtin:demo\", preload: true }\n",
    );
    let base = hls_base(&server, "demo");
    watch_a_bit(&base);
    wait_for_state(&server, "demo", |i| i["viewers"] == 0);
    assert_eq!(get(&format!("{base}playlist.m3u8")).status, 404);
    let info = stream_info(&server, "demo");
    assert_eq!(info["state"], "running", "{info}");
    // A preloaded stream answers a new viewer at once: its playlist already has segments.
    let fresh = hls_base(&server, "demo");
    let pl = parse_playlist(&get(&format!("{fresh}playlist.m3u8")).text());
    assert!(pl.segments.len() >= 2, "{pl:?}");
}

#[test]
fn camera_restart_is_retried_on_schedule_and_resumes_with_a_discontinuity() {
    let mut camera = Camera::start(&[]);
    let port = camera.port();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        &format!(
            "ingest: {{ restart_increment: 1 }}\nstreams:\n  cam: {{ source: \"{}\", transport: tcp, stall_timeout: 2 }}\n",
            camera.url
        ),
    );
    let base = hls_base(&server, "cam");
    let before = parse_playlist(&wait_for_segments(&base, 2));
    camera.kill();
    let failing = wait_for_state(&server, "cam", |i| {
        i["available"] == false && i["state"] == "retrying"
    });
    let runs = failing["runs"].as_u64().unwrap();
    // Connection refused while the camera is down: each retry waits 1 s longer.
    // (Read while retrying: between retries the worker is `starting`, with no backoff shown.)
    let later = wait_for_state(&server, "cam", |i| {
        i["runs"].as_u64().unwrap() >= runs + 2 && i["state"] == "retrying"
    });
    let retry = later["retry_in_secs"].as_f64().unwrap_or(0.0);
    assert!(retry >= 2.0, "backoff grows: {later}");
    assert_eq!(later["last_error"]["kind"], "refused", "{later}");

    // The camera comes back on the same port; the next retry reconnects.
    let camera = Camera::start(&["--port", &port]);
    wait_for_state(&server, "cam", |i| {
        i["state"] == "running" && i["available"] == true
    });
    let last_before = before.segments.last().unwrap().0;
    let live = decode_across(&base, last_before);
    let after = parse_playlist(&live);
    assert!(after.discontinuities >= 1, "{live}");
    // Sequence numbers continue across the restart: no reset, no gap.
    let numbers: Vec<u64> = after.segments.iter().map(|s| s.0).collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1) && numbers[0] == last_before,
        "media sequence numbers continue from {last_before}: {live}"
    );
    drop(camera);
}

/// Waits until the window holds the last segment of the old run and at least 3 of the new
/// one, then has ffprobe decode exactly those (from `last_before` on) across the
/// discontinuity. Older segments are left out: they may slide out of the window while a
/// loaded machine starts ffprobe.
fn decode_across(base: &str, last_before: u64) -> String {
    loop {
        let live = wait_for_segments(base, 1);
        let pl = parse_playlist(&live);
        let newest = pl.segments.last().unwrap().0;
        assert!(
            pl.segments[0].0 <= last_before,
            "the old run's last segment slid out of the window before the new run had 3: {live}"
        );
        if pl.discontinuities >= 1 && newest >= last_before + 3 {
            let from = trim_before(&live, last_before);
            decode_playlist(base, &from, 25.0, "h264");
            return from;
        }
        let next = newest + 1;
        assert_eq!(get(&format!("{base}segment/{next}.m4s")).status, 200);
    }
}

/// The playlist text without the segments numbered below `first` (header lines kept).
fn trim_before(live: &str, first: u64) -> String {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for line in live.lines() {
        if let Some(name) = line
            .strip_prefix("./segment/")
            .and_then(|n| n.strip_suffix(".m4s"))
        {
            let keep = name.parse::<u64>().is_ok_and(|n| n >= first);
            pending.push(line);
            if keep {
                out.append(&mut pending);
            } else {
                // Keep the header (everything up to the first segment's own tags).
                pending.retain(|l| is_header(l));
                out.append(&mut pending);
            }
        } else {
            pending.push(line);
        }
    }
    out.append(&mut pending);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn is_header(line: &str) -> bool {
    [
        "#EXTM3U",
        "#EXT-X-VERSION",
        "#EXT-X-TARGETDURATION",
        "#EXT-X-MEDIA-SEQUENCE",
        "#EXT-X-DISCONTINUITY-SEQUENCE",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-PART-INF",
        "#EXT-X-SERVER-CONTROL",
        "#EXT-X-MAP",
    ]
    .iter()
    .any(|h| line.starts_with(h))
}

#[test]
fn update_source_switches_cameras() {
    let h264 = Camera::start(&[]);
    let h265 = Camera::start(&["--codec", "h265"]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        &format!(
            "ingest: {{ restart_increment: 30 }}\nstreams:\n  cam: {{ source: \"{}\", transport: tcp }}\n",
            h264.url
        ),
    );
    let base = hls_base(&server, "cam");
    let before = parse_playlist(&wait_for_segments(&base, 1)).segments.len();
    assert!(
        stream_info(&server, "cam")["codecs"]
            .as_str()
            .unwrap()
            .starts_with("avc1.")
    );
    let r = patch(
        &server.url("/api/streams/cam"),
        &format!("{{\"source\": \"{}\"}}", h265.url),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Switched at once (not after the 30 s backoff), keeping the same URL for viewers.
    let info = wait_for_state(&server, "cam", |i| {
        i["codecs"].as_str().is_some_and(|c| c.starts_with("hvc1."))
    });
    assert_eq!(info["source"], h265.url.as_str());
    // The new camera's first segment follows a discontinuity (the old camera's last segment
    // ends at the switch, so two more complete segments include the new camera's first).
    let live = wait_for_segments(&base, before + 2);
    assert!(live.contains("#EXT-X-DISCONTINUITY\n"), "{live}");
    // A bad URL is refused and changes nothing.
    let r = patch(
        &server.url("/api/streams/cam"),
        "{\"source\": \"gopher://x\"}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(stream_info(&server, "cam")["source"], h265.url.as_str());
}

#[test]
fn api_crud_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(dir.path(), "streams: {}\n");
    let url = server.url("/api/streams");
    let r = post(
        &url,
        Some(r#"{"name": "lobby", "source": "builtin:demo", "options": {"orientation": 6}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["name"], "lobby");
    assert_eq!(v["options"]["orientation"], 6);
    assert_eq!(v["state"], "idle");

    let dup = post(&url, Some(r#"{"name": "lobby", "source": "builtin:demo"}"#));
    assert_eq!(dup.status, 409);
    assert_eq!(json(&dup)["error"], "stream \"lobby\" already exists");
    let bad = post(
        &url,
        Some(r#"{"name": "x", "source": "rtsps://u:pw@cam/1"}"#),
    );
    assert_eq!(bad.status, 400);
    assert!(!bad.text().contains("pw@"), "{}", bad.text());
    let bad = post(
        &url,
        Some(r#"{"name": "x", "source": "builtin:demo", "options": {"prelod": true}}"#),
    );
    assert_eq!(bad.status, 400);
    assert!(
        json(&bad)["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `prelod`")
    );
    let bad = post(&url, Some("not json"));
    assert_eq!(bad.status, 400);

    // The rotation reaches the init segment's matrix.
    let base = hls_base(&server, "lobby");
    wait_for_segments(&base, 1);
    let init = get(&format!("{base}init.mp4")).body;
    let rotate_left: Vec<u8> = [0i32, -65536, 0, 65536, 0, 0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    assert!(
        init.windows(24).any(|w| w == rotate_left.as_slice()),
        "tkhd matrix"
    );

    let r = delete(&server.url("/api/streams/lobby"));
    assert_eq!(r.status, 204);
    assert_eq!(get(&server.url("/api/streams/lobby")).status, 404);
    assert_eq!(get(&format!("{base}playlist.m3u8")).status, 404);
    assert_eq!(delete(&server.url("/api/streams/lobby")).status, 404);
}

#[test]
fn api_token_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "server: { api_token: \"s3cret-token\" }\nstreams:\n  demo: { source: \"builtin:demo\" }\n",
    );
    let url = server.url("/api/streams");
    let missing = get(&url);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert!(
        json(&missing)["error"]
            .as_str()
            .unwrap()
            .contains("missing API token")
    );
    let wrong = get_with(&url, Some("Bearer nope"));
    assert_eq!(wrong.status, 401);
    assert_eq!(json(&wrong)["error"], "invalid API token");
    assert_eq!(post(&server.url("/api/streams/demo/hls"), None).status, 401);
    let ok = get_with(&url, Some("Bearer s3cret-token"));
    assert_eq!(ok.status, 200);
    // The scheme is case-insensitive (RFC 9110, 11.1).
    for scheme in ["bearer", "BEARER"] {
        let ok = get_with(&url, Some(&format!("{scheme} s3cret-token")));
        assert_eq!(ok.status, 200, "{scheme}: {}", ok.text());
    }
    // HLS URLs stay capability URLs: no bearer needed.
    let r = post_with(
        &server.url("/api/streams/demo/hls"),
        Some("Bearer s3cret-token"),
    );
    let path = json(&r)["url"].as_str().unwrap().to_string();
    assert_eq!(get(&server.url(&path)).status, 200);
}

#[test]
fn metrics_report_streams_and_requests() {
    let server = Server::start(&[]);
    let base = hls_base(&server, "demo");
    // Three answers with status 200: the HLS URL, the playlist and a segment.
    let live = parse_playlist(&wait_for_segments(&base, 2));
    let first = live.segments[0].0;
    assert_eq!(get(&format!("{base}segment/{first}.m4s")).status, 200);
    let m = get(&server.url("/metrics"));
    assert_eq!(m.status, 200);
    let text = m.text();
    for line in [
        "sluice_stream_available{stream=\"demo\"} 1",
        "sluice_stream_state{stream=\"demo\",state=\"running\"} 1",
        "sluice_stream_state{stream=\"demo\",state=\"idle\"} 0",
        "sluice_stream_viewers{stream=\"demo\"} 1",
        "sluice_stream_restarts_total{stream=\"demo\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    assert!(value("sluice_stream_frames_total{stream=\"demo\"}") > 25.0);
    assert!(value("sluice_stream_bytes_total{stream=\"demo\"}") > 10_000.0);
    assert!(value("sluice_stream_segments_total{stream=\"demo\"}") >= 2.0);
    assert!(value("sluice_http_responses_total{status=\"200\"}") >= 3.0);
    // The worker and its idle watcher at least (what leak checks count from outside).
    assert!(value("sluice_runtime_alive_tasks") >= 2.0);
}

#[test]
fn bad_config_files_fail_with_the_exact_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "hls:\n  part_duraton: 0.3\n",
            "hls: unknown field `part_duraton`, expected one of `ll_hls`, `segment_duration`, \
             `part_duration`, `segments`, `idle_timeout`, `startup_segments`, \
             `restart_discontinuity`, `max_timestamp_gap`, `restart_increment`, `restart_reset` \
             at line 2 column 3",
        ),
        (
            "streams:\n  cam:\n    source: \"rtsp://admin:hunter2@cam.local/s1\"\n    transport: quic\n",
            "streams.cam.transport: unknown variant `quic`, expected one of `auto`, `tcp`, `udp` \
             at line 4 column 16",
        ),
        (
            "hls: { idle_timeout: 0 }\n",
            "hls.idle_timeout: 0 is outside 1..=86400 at line 1",
        ),
    ];
    for (yaml, message) in cases {
        let path = write_config(dir.path(), yaml);
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config",
                path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end(),
            format!("error: {}: {message}", path.display()),
            "for {yaml:?}"
        );
        assert!(!stderr.contains("hunter2"));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config", "/nonexistent/sluice.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: cannot read config file /nonexistent/sluice.yaml: No such file or directory (os error 2)"
    );
}

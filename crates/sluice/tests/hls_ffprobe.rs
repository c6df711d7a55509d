//! End to end: `sluice serve` on the built-in demo stream, every HLS resource fetched over
//! HTTP, and ffprobe decoding the result.

pub mod common;

use common::*;

/// The demo clip's frame rates.
const VIDEO_FPS: f64 = 25.0;
const AUDIO_FRAMES_PER_SEC: f64 = 48000.0 / 1024.0;

#[test]
fn demo_stream_is_served_and_decodes_over_http() {
    let server = Server::start(&[]);

    let list = get(&server.url("/api/streams"));
    assert_eq!(list.status, 200);
    let streams: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(streams[0]["name"], "demo");
    assert_eq!(streams[0]["source"], "builtin:demo");

    let base = hls_base(&server, "demo");
    let master = get(&format!("{base}master_playlist.m3u8"));
    assert_eq!(master.status, 200);
    assert_eq!(master.content_type, "application/vnd.apple.mpegurl");
    let text = master.text();
    assert!(
        text.contains("CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,CLOSED-CAPTIONS=NONE\nplaylist.m3u8\n"),
        "{text}"
    );
    let bandwidth: u64 = text
        .split("BANDWIDTH=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .expect("BANDWIDTH");
    assert!(
        (100_000..2_000_000).contains(&bandwidth),
        "BANDWIDTH={bandwidth}"
    );

    let live = wait_for_segments(&base, 6);
    let playlist = parse_playlist(&live);

    let init = get(&format!("{base}init.mp4"));
    assert_eq!(init.status, 200);
    assert_eq!(init.content_type, "video/mp4");
    assert_eq!(&init.body[4..8], b"ftyp");

    // Every part listed is served, is one moof+mdat, and the parts of a segment concatenate
    // to exactly the segment.
    for (uri, _) in &playlist.parts {
        let part = get(&format!("{base}{}", uri.trim_start_matches("./")));
        assert_eq!(part.status, 200, "{uri}");
        assert_eq!(part.content_type, "video/iso.segment");
        assert_eq!(&part.body[4..8], b"moof", "{uri}");
        let moof = u32::from_be_bytes(part.body[0..4].try_into().unwrap()) as usize;
        assert_eq!(&part.body[moof + 4..moof + 8], b"mdat", "{uri}");
        let mdat = u32::from_be_bytes(part.body[moof..moof + 4].try_into().unwrap()) as usize;
        assert_eq!(moof + mdat, part.body.len(), "{uri}");
    }
    for &(n, _) in &playlist.segments {
        let seg = get(&format!("{base}segment/{n}.m4s"));
        assert_eq!(seg.status, 200, "segment {n}");
        assert_eq!(seg.content_type, "video/iso.segment");
        let prefix = format!("./segment/{n}.");
        let parts: Vec<&String> = playlist
            .parts
            .iter()
            .filter(|(u, _)| u.starts_with(&prefix))
            .map(|(u, _)| u)
            .collect();
        if !parts.is_empty() {
            let mut joined = Vec::new();
            for uri in parts {
                joined.extend(get(&format!("{base}{}", uri.trim_start_matches("./"))).body);
            }
            assert_eq!(
                joined, seg.body,
                "parts of segment {n} differ from the segment"
            );
        }
    }

    // ffprobe reads exactly the listed complete segments over HTTP and decodes every frame.
    let probe = decode_playlist(&base, &live, VIDEO_FPS, "h264");
    let media: f64 = playlist.segments.iter().map(|s| s.1).sum();
    let audio = probe.frames_of("aac") as f64;
    let expected_audio = media * AUDIO_FRAMES_PER_SEC;
    assert!(
        (audio - expected_audio).abs() <= 2.0,
        "audio frames {audio} for {media} s (expected {expected_audio:.1})"
    );

    // And ffprobe as a live HLS client on the master playlist: 5 s from the window's start.
    let probe = ffprobe(
        &format!("{base}master_playlist.m3u8"),
        &["-live_start_index", "0", "-read_intervals", "%+5"],
    );
    assert!(probe.success, "ffprobe failed: {:?}", probe.warnings);
    assert!(
        probe.warnings.is_empty(),
        "ffprobe warnings: {:?}",
        probe.warnings
    );
    assert_eq!(probe.frames_of("h264"), 5 * VIDEO_FPS as u64);
    let audio = probe.frames_of("aac") as f64;
    assert!(
        (audio - 5.0 * AUDIO_FRAMES_PER_SEC).abs() <= 2.0,
        "audio frames {audio}"
    );
}

#[test]
fn unknown_tokens_and_names_are_404_with_no_body() {
    let server = Server::start(&[]);
    let bogus = "0".repeat(64);
    for path in [
        "master_playlist.m3u8",
        "playlist.m3u8",
        "init.mp4",
        "segment/0.m4s",
        "segment/0.0.m4s",
    ] {
        let r = get(&server.url(&format!("/api/hls/{bogus}/{path}")));
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body.is_empty(), "{path}: body {:?}", r.text());
    }
    let base = hls_base(&server, "demo");
    for path in [
        "segment/x.m4s",
        "segment/1.2.3.m4s",
        "segment/99999.m4s",
        "init/9.mp4",
    ] {
        let r = get(&format!("{base}{path}"));
        assert_eq!(r.status, 404, "{path}");
    }
    let r = post(&server.url("/api/streams/nope/hls"), None);
    assert_eq!(r.status, 404);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"], "no stream named \"nope\"");
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut server = Server::start(&[]);
    let base = hls_base(&server, "demo");
    assert_eq!(get(&format!("{base}playlist.m3u8")).status, 200);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("shut down cleanly")),
        "log: {log:#?}"
    );
}

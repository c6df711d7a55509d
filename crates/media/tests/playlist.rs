//! Exact playlist text for the shapes a ring can be in.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_media::Track;
use sluice_media::codec::{aac, avc};
use sluice_media::mp4::Fragment;
use sluice_media::playlist::{
    Blocking, PlaylistConfig, advance_part_limit, blocking, master_playlist, media_playlist,
    part_target,
};
use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::{Event, InitSegment, Part};

fn init(id: u64) -> Arc<InitSegment> {
    let avcc = avc::avcc_from_parameter_sets(&[0x67, 0x64, 0x00, 0x1f], &[0x68, 0xce]).unwrap();
    let tracks = vec![
        Track::h264(Bytes::from(avcc), 90_000, 1280, 720).unwrap(),
        Track::aac(Bytes::copy_from_slice(&aac::lc_config(48000, 1).unwrap())).unwrap(),
    ];
    Arc::new(InitSegment {
        id,
        tracks,
        bytes: Bytes::new(),
    })
}

/// 2026-11-23T12:00:00.000Z
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_435_200)
}

fn part(duration: f64, independent: bool, size: usize) -> Event {
    Event::Part(Part {
        runs: Vec::new(),
        fragment: Fragment {
            chunks: vec![Bytes::from(vec![0; size])],
            size,
        },
        duration,
        independent,
    })
}

/// Applies a segment of `parts` parts of 0.28 s and a last one of 0.16 s (1 s at 25 fps with
/// 0.3 s part target), complete unless `open`.
fn segment(
    ring: &mut SegmentRing,
    init: &Arc<InitSegment>,
    start: f64,
    discontinuity: bool,
    open: Option<usize>,
) {
    ring.apply(Event::SegmentStart {
        init: init.clone(),
        discontinuity,
        start_time: t0() + Duration::from_secs_f64(start),
    });
    let durations = [0.28, 0.28, 0.28, 0.16];
    let n = open.unwrap_or(durations.len());
    for (i, d) in durations.iter().take(n).enumerate() {
        ring.apply(part(*d, i == 0, 25_000));
    }
    if open.is_none() {
        ring.apply(Event::SegmentEnd { duration: 1.0 });
    }
}

fn ll() -> PlaylistConfig {
    PlaylistConfig {
        ll_hls: true,
        part_target: 0.3,
        min_segment: 0.9,
    }
}

/// Parts are listed for the segments that end within three target durations of the live edge
/// (segment 0 ends 4.56 s before it, segment 1 2.56 s).
#[test]
fn ll_hls_playlist_with_parts_and_preload_hint() {
    let mut ring = SegmentRing::new(7);
    let i = init(0);
    for s in 0..4 {
        segment(&mut ring, &i, f64::from(s), false, None);
    }
    segment(&mut ring, &i, 4.0, false, Some(2));
    let text = media_playlist(&ring, &ll(), false).unwrap();
    assert_eq!(
        text,
        "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-PART-INF:PART-TARGET=0.280
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.840
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:00.000Z
#EXTINF:1.000,
./segment/0.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:01.000Z
#EXT-X-PART:DURATION=0.280,URI=\"./segment/1.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.280,URI=\"./segment/1.1.m4s\"
#EXT-X-PART:DURATION=0.280,URI=\"./segment/1.2.m4s\"
#EXT-X-PART:DURATION=0.160,URI=\"./segment/1.3.m4s\"
#EXTINF:1.000,
./segment/1.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:02.000Z
#EXT-X-PART:DURATION=0.280,URI=\"./segment/2.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.280,URI=\"./segment/2.1.m4s\"
#EXT-X-PART:DURATION=0.280,URI=\"./segment/2.2.m4s\"
#EXT-X-PART:DURATION=0.160,URI=\"./segment/2.3.m4s\"
#EXTINF:1.000,
./segment/2.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:03.000Z
#EXT-X-PART:DURATION=0.280,URI=\"./segment/3.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.280,URI=\"./segment/3.1.m4s\"
#EXT-X-PART:DURATION=0.280,URI=\"./segment/3.2.m4s\"
#EXT-X-PART:DURATION=0.160,URI=\"./segment/3.3.m4s\"
#EXTINF:1.000,
./segment/3.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:04.000Z
#EXT-X-PART:DURATION=0.280,URI=\"./segment/4.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.280,URI=\"./segment/4.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"./segment/4.2.m4s\"
"
    );

    // Once the segment completes, the hint names the next segment's first part.
    for _ in 0..2 {
        ring.apply(part(0.22, false, 1000));
    }
    ring.apply(Event::SegmentEnd { duration: 1.0 });
    let text = media_playlist(&ring, &ll(), false).unwrap();
    assert!(
        text.ends_with("#EXTINF:1.000,\n./segment/4.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"./segment/5.0.m4s\"\n"),
        "{text}"
    );
}

#[test]
fn plain_hls_lists_complete_segments_only() {
    let mut ring = SegmentRing::new(3);
    let i = init(0);
    for s in 0..5 {
        segment(&mut ring, &i, f64::from(s), false, None);
    }
    segment(&mut ring, &i, 5.0, false, Some(1));
    let cfg = PlaylistConfig {
        ll_hls: false,
        ..ll()
    };
    assert_eq!(
        media_playlist(&ring, &cfg, false).unwrap(),
        "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:02.000Z
#EXTINF:1.000,
./segment/2.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:03.000Z
#EXTINF:1.000,
./segment/3.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:04.000Z
#EXTINF:1.000,
./segment/4.m4s
"
    );
}

/// With restarts unmarked (Sluice's default), a restart with the same init continues the
/// playlist without a tag (the timeline is continuous); one with a new init is still marked.
#[test]
fn unmarked_restarts_get_a_discontinuity_only_with_a_new_init() {
    let mut ring = SegmentRing::new(5);
    ring.set_mark_restarts(false);
    let first = init(0);
    segment(&mut ring, &first, 0.0, false, None);
    ring.end_run();
    segment(&mut ring, &first, 30.0, false, None);
    ring.end_run();
    segment(&mut ring, &init(1), 60.0, false, None);
    let ids: Vec<u64> = ring.segments().iter().map(|s| s.discontinuity).collect();
    assert_eq!(ids, [0, 0, 1]);
    let cfg = PlaylistConfig {
        ll_hls: false,
        ..ll()
    };
    let text = media_playlist(&ring, &cfg, false).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert!(
        text.contains("./segment/1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init/1.mp4\"\n"),
        "{text}"
    );
}

#[test]
fn discontinuity_tag_then_discontinuity_sequence_once_it_slides_out() {
    let mut ring = SegmentRing::new(3);
    let first = init(0);
    let second = init(1);
    segment(&mut ring, &first, 0.0, false, None);
    segment(&mut ring, &first, 1.0, false, None);
    ring.end_run();
    // The restart came 30 s later with new parameters.
    segment(&mut ring, &second, 31.0, false, None);
    let cfg = PlaylistConfig {
        ll_hls: false,
        ..ll()
    };
    let text = media_playlist(&ring, &cfg, false).unwrap();
    assert!(
        text.contains(
            "./segment/1.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init/1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:31.000Z
#EXTINF:1.000,
./segment/2.m4s
"
        ),
        "{text}"
    );
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));

    // A jump inside a run marks the next segment too; ids stay dense.
    segment(&mut ring, &second, 32.0, true, None);
    segment(&mut ring, &second, 33.0, false, None);
    let text = media_playlist(&ring, &cfg, false).unwrap();
    assert!(
        text.contains("#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
        "{text}"
    );
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    // The window starts after the restart, so its init is the header's MAP.
    assert!(!text.contains("init/1.mp4"), "{text}");
}

/// The LL-HLS playlist of a ring holding one complete segment of `duration` seconds.
fn one_segment_playlist(duration: f64) -> String {
    let mut ring = SegmentRing::new(3);
    ring.apply(Event::SegmentStart {
        init: init(0),
        discontinuity: false,
        start_time: t0(),
    });
    ring.apply(part(0.3, true, 10));
    ring.apply(Event::SegmentEnd { duration });
    media_playlist(&ring, &ll(), false).unwrap()
}

#[test]
fn target_duration_counts_the_longest_segment() {
    let text = one_segment_playlist(2.56);
    assert!(text.contains("#EXT-X-TARGETDURATION:3\n"), "{text}");
    assert!(text.contains("#EXTINF:2.560,\n"), "{text}");
}

/// Found by `fuzz/fuzz_targets/pipeline.rs` (`fuzz/regressions/pipeline/`): a segment of
/// 2.4996 s is written `#EXTINF:2.500`, which a client rounds to 3, over a target duration of 2
/// (RFC 8216bis §4.4.3.1 requires the rounded EXTINF to be at most the target).
#[test]
fn target_duration_covers_the_extinf_as_written() {
    let text = one_segment_playlist(2.4996);
    assert!(text.contains("#EXTINF:2.500,\n"), "{text}");
    assert!(text.contains("#EXT-X-TARGETDURATION:3\n"), "{text}");
}

#[test]
fn master_playlist_has_bandwidth_codecs_and_resolution() {
    let mut ring = SegmentRing::new(7);
    assert_eq!(
        master_playlist(&ring),
        None,
        "nothing before the first part"
    );
    let i = init(0);
    segment(&mut ring, &i, 0.0, false, None);
    segment(&mut ring, &i, 1.0, false, Some(1));
    // 4 parts of 25 000 bytes in 1 s = 800 kbit/s; BANDWIDTH is the peak × 1.2.
    assert_eq!(
        master_playlist(&ring).unwrap(),
        "#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=960000,AVERAGE-BANDWIDTH=800000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,CLOSED-CAPTIONS=NONE
playlist.m3u8
"
    );
}

#[test]
fn empty_ring_has_no_playlist() {
    let ring = SegmentRing::new(3);
    assert_eq!(media_playlist(&ring, &ll(), false), None);
}

/// Seven complete 1 s segments and one in progress with two parts.
fn full_ring() -> SegmentRing {
    let mut ring = SegmentRing::new(7);
    let i = init(0);
    for s in 0..7 {
        segment(&mut ring, &i, f64::from(s), false, None);
    }
    segment(&mut ring, &i, 7.0, false, Some(2));
    ring
}

#[test]
fn delta_update_skips_segments_older_than_can_skip_until() {
    let ring = full_ring();
    let full = media_playlist(&ring, &ll(), false).unwrap();
    let delta = media_playlist(&ring, &ll(), true).unwrap();
    // 7.56 s of media; segment 0 ends 6.56 s before the end (> 6 s): skipped. Segment 1 ends
    // 5.56 s before it: kept.
    assert!(delta.contains(
        "#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-PROGRAM-DATE-TIME:2026-11-23T12:00:01.000Z\n"
    ), "{delta}");
    assert!(!delta.contains("./segment/0.m4s"));
    assert!(full.contains("./segment/0.m4s"));
    assert!(
        delta.contains("#EXT-X-MEDIA-SEQUENCE:0\n"),
        "the sequence still counts skipped ones"
    );
    // Everything after the skipped segments is identical.
    let tail = |s: &str| s[s.find("./segment/1.m4s").unwrap()..].to_string();
    assert_eq!(tail(&full), tail(&delta));
    // Plain HLS never skips.
    let cfg = PlaylistConfig {
        ll_hls: false,
        ..ll()
    };
    assert!(
        !media_playlist(&ring, &cfg, true)
            .unwrap()
            .contains("EXT-X-SKIP")
    );
}

#[test]
fn part_target_is_the_longest_part_rounded_up_to_milliseconds() {
    let mut ring = SegmentRing::new(3);
    assert_eq!(
        part_target(&ring, &ll()),
        0.3,
        "the configured target before any part"
    );
    let i = init(0);
    ring.apply(Event::SegmentStart {
        init: i,
        discontinuity: false,
        start_time: t0(),
    });
    ring.apply(part(0.2666666, true, 10));
    assert_eq!(part_target(&ring, &ll()), 0.267);
    ring.apply(part(0.28, false, 10));
    assert_eq!(part_target(&ring, &ll()), 0.28);
    assert_eq!(advance_part_limit(0.3), 10);
    assert_eq!(advance_part_limit(1.5), 3);
}

#[test]
fn blocking_reload_status_rules() {
    let ring = full_ring(); // segments 0..=6 complete, 7 in progress with parts 0 and 1
    let limit = advance_part_limit(0.3);
    // Whole segments: complete ones are ready, the one in progress and the next two wait,
    // further ahead is a 400.
    assert_eq!(blocking(&ring, 6, None, limit), Blocking::Ready);
    assert_eq!(blocking(&ring, 0, None, limit), Blocking::Ready);
    assert_eq!(blocking(&ring, 7, None, limit), Blocking::Wait);
    assert_eq!(blocking(&ring, 9, None, limit), Blocking::Wait);
    assert_eq!(blocking(&ring, 10, None, limit), Blocking::Reject);
    // Parts of the segment in progress.
    assert_eq!(blocking(&ring, 7, Some(1), limit), Blocking::Ready);
    assert_eq!(blocking(&ring, 7, Some(2), limit), Blocking::Wait);
    assert_eq!(blocking(&ring, 7, Some(10), limit), Blocking::Wait);
    assert_eq!(blocking(&ring, 7, Some(11), limit), Blocking::Reject);
    // Parts of the next segment.
    assert_eq!(blocking(&ring, 8, Some(0), limit), Blocking::Wait);
    assert_eq!(blocking(&ring, 8, Some(10), limit), Blocking::Reject);
    // Older segments are complete.
    assert_eq!(blocking(&ring, 3, Some(99), limit), Blocking::Ready);
}

/// Found by `fuzz/fuzz_targets/pipeline.rs` (input in `fuzz/regressions/pipeline/`):
/// `_HLS_part=18446744073709551615` on the segment in progress overflowed `part + 1` (a panic
/// in debug builds, a request held for nothing in release builds).
#[test]
fn blocking_on_the_largest_part_index_is_rejected() {
    let ring = full_ring();
    let limit = advance_part_limit(0.3);
    assert_eq!(
        blocking(&ring, 7, Some(usize::MAX), limit),
        Blocking::Reject
    );
    assert_eq!(
        blocking(&ring, 8, Some(usize::MAX), limit),
        Blocking::Reject
    );
}

#[test]
fn blocking_rollover_past_a_complete_segment() {
    let mut ring = full_ring();
    for _ in 0..2 {
        ring.apply(part(0.22, false, 10));
    }
    ring.apply(Event::SegmentEnd { duration: 1.0 });
    let limit = advance_part_limit(0.3);
    // Segment 7 is complete with 4 parts: its part 4 is segment 8's part 0.
    assert_eq!(blocking(&ring, 7, Some(4), limit), Blocking::Wait);
    ring.apply(Event::SegmentStart {
        init: init(0),
        discontinuity: false,
        start_time: t0(),
    });
    assert_eq!(
        blocking(&ring, 7, Some(4), limit),
        Blocking::Wait,
        "no part yet"
    );
    ring.apply(part(0.28, true, 10));
    assert_eq!(blocking(&ring, 7, Some(4), limit), Blocking::Ready);
    assert_eq!(blocking(&ring, 8, Some(0), limit), Blocking::Ready);
}

#[test]
fn empty_ring_blocks() {
    let ring = SegmentRing::new(3);
    assert_eq!(blocking(&ring, 0, Some(0), 10), Blocking::Wait);
}

/// Every playlist shape, parsed by an independent LL-HLS-aware parser (the `m3u8` package from
/// PyPI, installed by the README's test command): what it reads back matches what was meant.
#[test]
fn every_playlist_shape_parses_with_m3u8() {
    let ll_full = full_ring();
    let mut restarted = SegmentRing::new(3);
    segment(&mut restarted, &init(0), 0.0, false, None);
    restarted.end_run();
    segment(&mut restarted, &init(1), 5.0, false, None);
    segment(&mut restarted, &init(1), 6.0, false, Some(1));
    let plain = PlaylistConfig {
        ll_hls: false,
        ..ll()
    };
    let shapes = [
        media_playlist(&ll_full, &ll(), false).unwrap(),
        media_playlist(&ll_full, &ll(), true).unwrap(),
        media_playlist(&ll_full, &plain, false).unwrap(),
        media_playlist(&restarted, &ll(), false).unwrap(),
        master_playlist(&ll_full).unwrap(),
    ];
    let dir = std::env::temp_dir().join(format!("sluice-m3u8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<_> = shapes
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let p = dir.join(format!("{i}.m3u8"));
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/m3u8_summary.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(&paths)
        .output()
        .expect("python3");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "m3u8 failed (scripts/test.sh installs it with pip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), shapes.len());

    let full = &parsed[0];
    assert_eq!(full["version"], 9);
    assert_eq!(full["target_duration"], 1);
    assert_eq!(full["part_target"], 0.28);
    assert_eq!(full["can_block_reload"], "YES");
    assert_eq!(full["part_hold_back"], 0.84);
    assert_eq!(full["can_skip_until"], 6.0);
    assert_eq!(full["preload_hint"], "./segment/7.2.m4s");
    assert_eq!(full["map"], serde_json::json!(["init.mp4"]));
    let segs = full["segments"].as_array().unwrap();
    // Seven complete segments, and the one in progress that only has parts.
    assert_eq!(segs.len(), 8);
    assert_eq!(segs[6]["uri"], "./segment/6.m4s");
    assert_eq!(segs[6]["duration"], 1.0);
    assert_eq!(
        segs[6]["parts"][0],
        serde_json::json!(["./segment/6.0.m4s", 0.28, true])
    );
    assert_eq!(segs[7]["parts"].as_array().unwrap().len(), 2);

    let delta = &parsed[1];
    assert_eq!(delta["skipped_segments"], 1);
    assert_eq!(delta["segments"][0]["uri"], "./segment/1.m4s");

    let plain = &parsed[2];
    assert_eq!(plain["version"], 6);
    assert_eq!(plain["part_target"], serde_json::Value::Null);
    assert_eq!(plain["segments"].as_array().unwrap().len(), 7);

    let restarted = &parsed[3];
    let segs = restarted["segments"].as_array().unwrap();
    assert_eq!(segs[1]["discontinuity"], true);
    assert_eq!(
        restarted["map"],
        serde_json::json!(["init.mp4", "init/1.mp4"])
    );

    let master = &parsed[4]["variants"][0];
    assert_eq!(master["uri"], "playlist.m3u8");
    assert_eq!(master["codecs"], "avc1.64001f,mp4a.40.2");
    assert_eq!(master["resolution"], serde_json::json!([1280, 720]));
    assert_eq!(master["bandwidth"], 960000);
}

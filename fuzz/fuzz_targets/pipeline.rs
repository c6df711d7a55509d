//! The timestamp guard and the segmenter (the pipeline) fed arbitrary timestamp sequences
//! across runs, parameter changes and missing timestamps, with the events applied to a part
//! ring; the playlists rendered from the ring and blocking requests decided against it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::{Driver, Op, Settings};
use sluice_media::playlist::{
    PlaylistConfig, advance_part_limit, blocking, master_playlist, media_playlist, part_target,
    target_duration,
};
use sluice_media::ring::SegmentRing;

/// A blocking playlist request relative to the live edge.
#[derive(Arbitrary, Debug)]
struct Query {
    msn_offset: i16,
    part: Option<usize>,
    skip: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    settings: Settings,
    ops: Vec<(Op, Option<Query>)>,
}

fuzz_target!(|input: Input| {
    let cfg = input.settings.pipeline();
    let mut driver = Driver::new(&input.settings);
    for (op, query) in &input.ops {
        driver.apply(op, &mut |_| {});
        for ll_hls in [true, false] {
            let playlist = PlaylistConfig {
                ll_hls,
                part_target: cfg.segmenter.part_target_secs,
                min_segment: cfg.segmenter.min_segment_secs,
            };
            check_playlists(&driver.ring, &playlist, query.as_ref());
        }
    }
    driver.end(&mut |_| {});
});

fn check_playlists(ring: &SegmentRing, cfg: &PlaylistConfig, query: Option<&Query>) {
    let skip = query.is_some_and(|q| q.skip);
    if let Some(text) = media_playlist(ring, cfg, skip) {
        let target = target_duration(ring, cfg) as f64;
        let part_target = part_target(ring, cfg);
        assert!(text.starts_with("#EXTM3U\n"));
        for line in text.lines() {
            if let Some(d) = line.strip_prefix("#EXTINF:") {
                let d: f64 = d.trim_end_matches(',').parse().expect("EXTINF is a number");
                // RFC 8216bis §4.4.3.1: rounded to the nearest integer, at most the target.
                assert!(d.round() <= target, "EXTINF {d} over target {target}");
            }
            if let Some(rest) = line.strip_prefix("#EXT-X-PART:DURATION=") {
                let d: f64 = rest.split(',').next().unwrap().parse().unwrap();
                // §4.4.4.9: a part's duration is at most the part target.
                assert!(
                    d <= part_target + 1e-9,
                    "part {d} over part target {part_target}"
                );
            }
        }
    } else {
        assert!(ring.live_edge().is_none() || !cfg.ll_hls);
    }
    if let Some(text) = master_playlist(ring) {
        assert!(text.contains("BANDWIDTH="));
    }
    if let (Some(q), Some(edge)) = (query, ring.live_edge()) {
        let msn = (edge.sequence as i64 + i64::from(q.msn_offset)).max(0) as u64;
        let limit = advance_part_limit(part_target(ring, cfg));
        let _ = blocking(ring, msn, q.part, limit);
    }
}
